//! Installing verified blobs: a blob appears under its name only once its bytes are on disk, so
//! that a power cut can lose a download but never leave a renamed blob with missing bytes.
//!
//! Making each small file durable on its own (an fsync each) costs a journal commit per file.
//! The installer instead takes the blobs the workers verified, makes them durable together (one
//! `syncfs` for a batch on Linux; each file's `fdatasync` elsewhere or for a batch of one), and
//! then renames them into place and links them. The workers go on to their next file
//! meanwhile; each blob's lock stays held until it is installed.

use std::fs::OpenOptions;
use std::sync::{Condvar, Mutex, MutexGuard};

use camino::Utf8PathBuf;

use super::execute::Job;
use crate::cache::{BlobLock, Cache};
use crate::error::Error;

/// A blob verified in its partial file (closed), waiting to be installed.
pub(crate) struct Staged {
    /// The job it is for (its index in the installer's jobs).
    pub(crate) index: usize,
    /// The partial file, whole and verified.
    pub(crate) temp: Utf8PathBuf,
    /// Its resume record, if it had one (a large file's): removed once it is installed.
    pub(crate) record: Option<Utf8PathBuf>,
    /// The reference client's lock on the blob, held until it is installed: an open file each.
    pub(crate) _lock: BlobLock,
}

/// Installs staged blobs in batches; see the module documentation.
pub(crate) struct Installer<'a> {
    cache: &'a Cache,
    jobs: &'a [Job],
    /// Blobs staged and not yet installed (waiting or in the batch being installed), at most:
    /// each holds its lock file open, and a process may open only so many files. Workers wait
    /// when this many are staged.
    most: usize,
    queue: Mutex<Queue>,
    /// Something was staged, or the queue closed.
    ready: Condvar,
    /// A batch was taken: there is room to stage.
    room: Condvar,
}

#[derive(Default)]
struct Queue {
    staged: Vec<Staged>,
    /// Staged and not yet installed: `staged` and the batch being installed.
    holding: usize,
    /// No more will come.
    closed: bool,
    /// The jobs whose blob could not be installed, and why; the others were.
    failures: Vec<(usize, Error)>,
}

/// Files a worker may hold open at once: a socket, a lock, a partial file and a folder.
const FILES_PER_WORKER: usize = 4;
/// Files kept for everything else: standard streams, idle connections, listings.
const RESERVED_FILES: usize = 64;

/// How the files this process may open are shared between download workers and blobs waiting
/// to be installed. A low limit (macOS starts processes at 256) means fewer workers, never
/// "too many open files".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileBudget {
    /// Download workers (at most the `-j` asked for).
    pub(crate) workers: usize,
    /// Blobs staged and not yet installed, at most.
    pub(crate) staged: usize,
}

impl FileBudget {
    /// The budget for `jobs` workers within this process's open-files limit.
    pub(crate) fn for_jobs(jobs: usize) -> FileBudget {
        FileBudget::within(open_files_limit(), jobs)
    }

    fn within(limit: usize, jobs: usize) -> FileBudget {
        let available = limit.saturating_sub(RESERVED_FILES);
        // Each worker also needs room for at least one staged blob.
        let workers = jobs.min(available / (FILES_PER_WORKER + 1)).max(1);
        FileBudget {
            workers,
            staged: available.saturating_sub(workers * FILES_PER_WORKER).max(1),
        }
    }
}

impl<'a> Installer<'a> {
    /// An installer for `jobs`, holding at most `most` staged blobs (see [`FileBudget`]).
    pub(crate) fn new(cache: &'a Cache, jobs: &'a [Job], most: usize) -> Installer<'a> {
        Installer {
            cache,
            jobs,
            most: most.max(1),
            queue: Mutex::default(),
            ready: Condvar::new(),
            room: Condvar::new(),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a verified blob over; waits while too many are waiting.
    pub(crate) fn stage(&self, staged: Staged) {
        let mut queue = self.queue();
        while queue.holding >= self.most {
            queue = self.room.wait(queue).unwrap_or_else(|e| e.into_inner());
        }
        queue.holding += 1;
        queue.staged.push(staged);
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
            let installed = batch.len();
            let failures = self.install(batch);
            let mut queue = self.queue();
            queue.failures.extend(failures);
            queue.holding -= installed;
            drop(queue);
            self.room.notify_all();
        }
    }

    /// The jobs whose staged blob could not be installed, and why (once [`Installer::run`]
    /// returned); every other staged blob was.
    pub(crate) fn failures(&self) -> Vec<(usize, Error)> {
        std::mem::take(&mut self.queue().failures)
    }

    fn install(&self, batch: Vec<Staged>) -> Vec<(usize, Error)> {
        let durable = make_durable(&batch);
        let mut failures = Vec::new();
        for staged in batch {
            let job = &self.jobs[staged.index];
            let result = match &durable {
                Ok(()) => self.rename_and_link(job, &staged),
                Err(error) => Err(Error::io("write", &staged.temp, clone(error))),
            };
            if let Err(error) = result {
                let _ = crate::platform::remove_file(&staged.temp);
                failures.push((staged.index, error));
            }
            if let Some(record) = &staged.record {
                let _ = crate::platform::remove_file(record);
            }
            // Dropping `staged` releases the blob's lock.
        }
        failures
    }

    fn rename_and_link(&self, job: &Job, staged: &Staged) -> Result<(), Error> {
        let etag = job.file.etag();
        self.cache
            .install(&job.repo, &job.commit, &job.file.path, etag, &staged.temp)?;
        Ok(())
    }
}

/// Puts every byte of the batch's files on disk: one `syncfs` of the filesystem (all files of
/// a cache are on one) where there is one and the batch has several files, else each file's
/// `fdatasync`.
fn make_durable(batch: &[Staged]) -> std::io::Result<()> {
    // Opened for writing: Windows flushes a file only through a handle that may write it.
    let open = |staged: &Staged| OpenOptions::new().write(true).open(&staged.temp);
    #[cfg(target_os = "linux")]
    if let [first, _, ..] = batch {
        return rustix::fs::syncfs(&open(first)?).map_err(std::io::Error::from);
    }
    batch
        .iter()
        .try_for_each(|staged| open(staged)?.sync_data())
}

/// How many files this process may have open (its soft limit); 1024, the usual default, where it
/// cannot be told.
fn open_files_limit() -> usize {
    #[cfg(target_os = "linux")]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        if let Some(current) = limit.current {
            return usize::try_from(current).unwrap_or(usize::MAX);
        }
    }
    1024
}

/// An `io::Error` for each file of a batch that failed as one.
fn clone(error: &std::io::Error) -> std::io::Error {
    match error.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(error.kind(), error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_open_files_limit_means_fewer_workers() {
        let roomy = FileBudget::within(65_536, 64);
        assert_eq!(roomy.workers, 64);
        assert_eq!(roomy.staged, 65_536 - 64 - 64 * 4);
        // macOS's default: 192 files to share, 38 workers with one staged blob each, and more.
        let mac = FileBudget::within(256, 64);
        assert_eq!((mac.workers, mac.staged), (38, 40));
        assert_eq!(
            FileBudget::within(10, 64),
            FileBudget {
                workers: 1,
                staged: 1
            }
        );
    }
}
