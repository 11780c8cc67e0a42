//! Installing verified blobs: a blob appears under its name only once its bytes are on disk, so
//! that a power cut can lose a download but never leave a renamed blob with missing bytes.
//!
//! Making each small file durable on its own (an fsync each) costs a journal commit per file.
//! The installer instead takes the blobs the workers verified, makes them durable together (one
//! `syncfs` for a batch on Linux; each file's `fdatasync` elsewhere or for a batch of one), and
//! then renames them into place and links them. The workers go on to their next file
//! meanwhile; each blob's lock stays held until it is installed.

use std::fs::{self, File};
use std::sync::{Condvar, Mutex, MutexGuard};

use camino::Utf8PathBuf;

use super::execute::Job;
use crate::cache::{BlobLock, Cache};
use crate::error::Error;

/// A blob verified in its partial file, waiting to be installed.
pub(crate) struct Staged {
    /// The job it is for (its index in the installer's jobs).
    pub(crate) index: usize,
    /// The partial file, whole and verified.
    pub(crate) temp: Utf8PathBuf,
    /// It, open: what is made durable.
    pub(crate) file: File,
    /// Its resume record, if it had one (a large file's): removed once it is installed.
    pub(crate) record: Option<Utf8PathBuf>,
    /// The reference client's lock on the blob, held until it is installed.
    pub(crate) _lock: BlobLock,
}

/// Installs staged blobs in batches; see the module documentation.
pub(crate) struct Installer<'a> {
    cache: &'a Cache,
    jobs: &'a [Job],
    queue: Mutex<Queue>,
    ready: Condvar,
}

#[derive(Default)]
struct Queue {
    staged: Vec<Staged>,
    /// No more will come.
    closed: bool,
    /// Each installed job's bytes, or why it failed.
    results: Vec<(usize, Result<u64, Error>)>,
}

impl<'a> Installer<'a> {
    pub(crate) fn new(cache: &'a Cache, jobs: &'a [Job]) -> Installer<'a> {
        Installer {
            cache,
            jobs,
            queue: Mutex::default(),
            ready: Condvar::new(),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a verified blob over.
    pub(crate) fn stage(&self, staged: Staged) {
        self.queue().staged.push(staged);
        self.ready.notify_one();
    }

    /// Says that nothing more will be staged: [`Installer::run`] returns once the rest is in.
    pub(crate) fn close(&self) {
        self.queue().closed = true;
        self.ready.notify_one();
    }

    /// Installs what is staged, batch after batch, until closed and empty. A batch is whatever
    /// was staged while the previous one was being installed.
    pub(crate) fn run(&self) {
        loop {
            let batch = {
                let mut queue = self.queue();
                while queue.staged.is_empty() && !queue.closed {
                    queue = self.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
                if queue.staged.is_empty() {
                    return;
                }
                std::mem::take(&mut queue.staged)
            };
            let results = self.install(batch);
            self.queue().results.extend(results);
        }
    }

    /// Each installed job's bytes, or why it failed (once [`Installer::run`] returned).
    pub(crate) fn results(&self) -> Vec<(usize, Result<u64, Error>)> {
        std::mem::take(&mut self.queue().results)
    }

    fn install(&self, batch: Vec<Staged>) -> Vec<(usize, Result<u64, Error>)> {
        let durable = make_durable(&batch);
        batch
            .into_iter()
            .map(|staged| {
                let job = &self.jobs[staged.index];
                let result = match &durable {
                    Ok(()) => self.rename_and_link(job, &staged),
                    Err(error) => Err(Error::io("write", &staged.temp, clone(error))),
                };
                if result.is_err() {
                    let _ = fs::remove_file(&staged.temp);
                }
                if let Some(record) = &staged.record {
                    let _ = fs::remove_file(record);
                }
                // Dropping `staged` closes the file and releases the blob's lock.
                (staged.index, result.map(|()| job.file.size))
            })
            .collect()
    }

    fn rename_and_link(&self, job: &Job, staged: &Staged) -> Result<(), Error> {
        let etag = job.file.etag();
        self.cache.install_blob(&job.repo, etag, &staged.temp)?;
        self.cache
            .link(&job.repo, &job.commit, &job.file.path, etag)?;
        Ok(())
    }
}

/// Puts every byte of the batch's files on disk: one `syncfs` of the filesystem (all files of
/// a cache are on one) where there is one and the batch has several files, else each file's
/// `fdatasync`.
fn make_durable(batch: &[Staged]) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    if let [first, _, ..] = batch {
        return rustix::fs::syncfs(&first.file).map_err(std::io::Error::from);
    }
    batch.iter().try_for_each(|staged| staged.file.sync_data())
}

/// An `io::Error` for each file of a batch that failed as one.
fn clone(error: &std::io::Error) -> std::io::Error {
    match error.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(error.kind(), error.to_string()),
    }
}
