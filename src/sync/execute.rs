//! The executor: downloads what the plan says, verifies every byte, and installs it.
//!
//! Each blob is written under a unique `blobs/<etag>.<8hex>.incomplete` name while its sha256
//! (LFS files) or git blob sha1 (regular files) is computed from the bytes as they arrive; only
//! a file of the announced size and hash is renamed to `blobs/<etag>`. The reference client's
//! flock on `.locks/<repo>/<etag>.lock` is held meanwhile, so concurrent clients download each
//! blob once.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Mutex;
use std::thread;

use camino::Utf8Path;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::cache::Cache;
use crate::error::Error;
use crate::hub::{Hub, HubError};
use crate::repo::{Repo, RepoFile};

/// Consecutive failed attempts (no byte received) before a download gives up.
const MAX_STALLED_ATTEMPTS: u32 = 5;
/// Read size while streaming a body to disk.
const BUFFER_BYTES: usize = 256 * 1024;

/// One file to put in a snapshot.
#[derive(Debug, Clone)]
pub struct Job {
    /// Its repo.
    pub repo: Repo,
    /// The commit whose snapshot gets it.
    pub commit: String,
    /// The file.
    pub file: RepoFile,
}

/// Runs `work` on every item with at most `jobs` threads; returns the results in item order.
pub fn run_parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    let workers = jobs.clamp(1, items.len().max(1));
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = {
                        let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
                        let index = *next;
                        *next += 1;
                        index
                    };
                    let Some(item) = items.get(index) else { break };
                    let result = work(item);
                    results.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// Puts one file in its snapshot, downloading its blob unless the cache has it. Returns the
/// number of bytes downloaded.
pub fn install(hub: &Hub, cache: &Cache, job: &Job) -> Result<u64, Error> {
    let etag = job.file.etag();
    let _lock = cache.lock_blob(&job.repo, etag)?;
    let downloaded = if cache.has_blob(&job.repo, etag) {
        0
    } else {
        download_blob(hub, cache, job)?
    };
    cache.link(&job.repo, &job.commit, &job.file.path, etag)?;
    Ok(downloaded)
}

/// Downloads and verifies a blob, then installs it. A hash mismatch is retried once.
fn download_blob(hub: &Hub, cache: &Cache, job: &Job) -> Result<u64, Error> {
    let mut attempts_left = 2;
    loop {
        let (temp, mut out) = cache.create_incomplete(&job.repo, job.file.etag())?;
        let result = fetch_verified(hub, job, &mut out, &temp)
            .and_then(|()| out.sync_all().map_err(|err| Error::io("write", &temp, err)))
            .and_then(|()| cache.install_blob(&job.repo, job.file.etag(), &temp));
        match result {
            Ok(()) => return Ok(job.file.size),
            Err(error) => {
                drop(out);
                let _ = std::fs::remove_file(&temp);
                attempts_left -= 1;
                if !matches!(error, Error::HashMismatch { .. }) || attempts_left == 0 {
                    return Err(error);
                }
            }
        }
    }
}

/// Streams the file's content into `out`, resuming with a Range request when the connection
/// drops, and checks its size and hash.
fn fetch_verified(hub: &Hub, job: &Job, out: &mut File, temp: &Utf8Path) -> Result<(), Error> {
    let file = &job.file;
    let mut verifier = Verifier::new(file);
    let mut written = 0u64;
    let mut stalled = 0;
    let mut buffer = vec![0u8; BUFFER_BYTES];
    loop {
        let download = hub.download(&job.repo, &job.commit, &file.path, written)?;
        if download.offset != written {
            // The server ignored our Range and sent everything again: start over.
            out.set_len(0)
                .and_then(|()| out.seek(SeekFrom::Start(0)).map(drop))
                .map_err(|err| Error::io("truncate", temp, err))?;
            verifier = Verifier::new(file);
            written = 0;
        }
        let mut body = download.body.into_reader();
        let failure = loop {
            match body.read(&mut buffer) {
                Ok(0) => break None,
                Ok(read) => {
                    if written + read as u64 > file.size {
                        return Err(HubError::InvalidResponse {
                            what: format!("downloading `{}` of `{}`", file.path, job.repo.id),
                            url: String::from("the resolve URL"),
                            message: format!(
                                "more than the {} bytes the listing announced",
                                file.size
                            ),
                        }
                        .into());
                    }
                    out.write_all(&buffer[..read])
                        .map_err(|err| Error::io("write", temp, err))?;
                    verifier.update(&buffer[..read]);
                    written += read as u64;
                    stalled = 0;
                }
                Err(err) => break Some(err.to_string()),
            }
        };
        if failure.is_none() && written == file.size {
            break;
        }
        stalled += 1;
        if stalled >= MAX_STALLED_ATTEMPTS {
            return Err(HubError::Network {
                what: format!("downloading `{}` of `{}`", file.path, job.repo.id),
                origin: hub.endpoint().to_owned(),
                message: failure.unwrap_or_else(|| {
                    format!(
                        "the connection closed after {written} of {} bytes",
                        file.size
                    )
                }),
            }
            .into());
        }
        thread::sleep(hub.retry_delay(stalled - 1));
    }
    verifier.check(file, written)
}

/// The hash a file's etag is: sha256 of the content for LFS files, the git blob sha1
/// (`blob <size>\0` + content) for regular files.
enum Verifier {
    Sha256(Sha256),
    GitSha1(Sha1),
}

impl Verifier {
    fn new(file: &RepoFile) -> Verifier {
        if file.lfs_sha256.is_some() {
            Verifier::Sha256(Sha256::new())
        } else {
            let mut sha1 = Sha1::new();
            sha1.update(format!("blob {}\0", file.size).as_bytes());
            Verifier::GitSha1(sha1)
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Verifier::Sha256(hasher) => hasher.update(bytes),
            Verifier::GitSha1(hasher) => hasher.update(bytes),
        }
    }

    fn check(self, file: &RepoFile, size: u64) -> Result<(), Error> {
        let (algorithm, actual) = match self {
            Verifier::Sha256(hasher) => ("sha256", hex(&hasher.finalize())),
            Verifier::GitSha1(hasher) => ("git-sha1", hex(&hasher.finalize())),
        };
        if actual == file.etag() && size == file.size {
            return Ok(());
        }
        Err(Error::HashMismatch {
            path: file.path.clone(),
            algorithm,
            expected: file.etag().to_owned(),
            actual,
            size,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_ids_match_git_hash_object() {
        let file = RepoFile {
            path: "hello".into(),
            size: 6,
            blob_id: "ce013625030ba8dba906f756967f9e9ca394464a".into(),
            lfs_sha256: None,
        };
        let mut verifier = Verifier::new(&file);
        verifier.update(b"hello\n");
        assert!(verifier.check(&file, 6).is_ok());
    }

    #[test]
    fn a_wrong_hash_names_both_hashes() {
        let file = RepoFile {
            path: "m.bin".into(),
            size: 3,
            blob_id: "0".repeat(40),
            lfs_sha256: Some("0".repeat(64)),
        };
        let mut verifier = Verifier::new(&file);
        verifier.update(b"abc");
        let message = verifier.check(&file, 3).unwrap_err().to_string();
        assert!(message.contains(&"0".repeat(64)), "{message}");
        assert!(
            message.contains("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            "{message}"
        );
    }

    #[test]
    fn parallel_results_keep_their_order() {
        let items: Vec<u32> = (0..50).collect();
        assert_eq!(
            run_parallel(&items, 4, |n| n * 2),
            (0..50).map(|n| n * 2).collect::<Vec<_>>()
        );
        assert!(run_parallel(&Vec::<u32>::new(), 4, |n| *n).is_empty());
    }
}
