//! The executor: downloads what the plan says, verifies every byte, and installs it.
//!
//! Each blob is written under a unique `blobs/<etag>.<8hex>.incomplete` name while its sha256
//! (LFS files) or git blob sha1 (regular files) is computed from the bytes as they arrive; only
//! a file of the announced size and hash is renamed to `blobs/<etag>`. The reference client's
//! flock on `.locks/<repo>/<etag>.lock` is held meanwhile, so concurrent clients download each
//! blob once. Small files come in one stream; large ones in ranged segments over several
//! connections ([`super::segments`]). Verified blobs go to the installer
//! ([`super::installer`]), which makes them durable in batches before renaming them into place.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::thread;

use camino::{Utf8Path, Utf8PathBuf};

use super::TransferOptions;
use super::installer::{Installer, Staged};
use super::segments::{fetch_segmented, resumable_runs};
use crate::cache::{Cache, Reuse, chunk_record_path, remove_partial};
use crate::error::Error;
use crate::hash::Verifier;
use crate::hub::{ByteRange, Download, Hub, HubError};
use crate::platform::read_at;
use crate::pool::Budget;
use crate::repo::{CommitId, Repo, RepoFile};
use crate::report::{Event, Reporter};

/// Consecutive failed attempts (no byte received) before a download gives up.
pub(super) const MAX_STALLED_ATTEMPTS: u32 = 5;
/// Read size while streaming a body to disk.
pub(super) const BUFFER_BYTES: usize = 256 * 1024;

/// One file to put in a snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// Its repo (shared by the jobs of a model).
    pub(crate) repo: Arc<Repo>,
    /// The commit whose snapshot gets it.
    pub(crate) commit: Arc<CommitId>,
    /// The file (shared with the listing).
    pub(crate) file: Arc<RepoFile>,
    /// Whether an earlier run left a partial download of its blob, to resume.
    pub(crate) resumable: bool,
}

/// How files are transferred, and where progress is reported.
pub(crate) struct Transfer<'a> {
    /// Files of at least twice this size are fetched in chunks of this size, over several
    /// connections at once.
    pub(crate) chunk_bytes: u64,
    /// Connections one large file may use at once.
    pub(crate) connections_per_file: usize,
    /// Open connections in all, shared by every download.
    pub(crate) budget: Budget,
    /// Whether a verified copy in hf's shared Xet store is linked rather than downloaded.
    pub(crate) reuse_shared_blobs: bool,
    /// Told of every file and every byte.
    pub(crate) reporter: &'a dyn Reporter,
}

impl<'a> Transfer<'a> {
    /// Downloads as the options say, reporting to `reporter`.
    pub(crate) fn new(options: TransferOptions, reporter: &'a dyn Reporter) -> Transfer<'a> {
        Transfer {
            chunk_bytes: options.chunk_bytes.max(1),
            connections_per_file: options.connections_per_file.max(1),
            budget: Budget::new(options.jobs),
            reuse_shared_blobs: options.reuse_shared_blobs,
            reporter,
        }
    }
}

/// What became of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The blob was in the cache: the file is linked.
    Linked,
    /// hf's shared Xet store had a verified copy: the blob links to it, the file to the blob.
    Shared,
    /// The blob was downloaded and verified, and waits in the installer to be made durable,
    /// renamed into place and linked.
    Staged,
}

/// Puts one file in its snapshot: links it if the cache has its blob, else downloads and
/// verifies the blob and hands it to `installer` (the blob's lock goes with it).
pub(crate) fn install(
    hub: &Hub<'_>,
    cache: &Cache,
    transfer: &Transfer<'_>,
    installer: &Installer<'_>,
    (index, job): (usize, &Job),
) -> Result<Outcome, Error> {
    let etag = job.file.etag();
    let lock = cache.lock_blob(&job.repo, etag)?;
    if cache.has_blob(&job.repo, etag) {
        cache.link(&job.repo, &job.commit, &job.file.path, etag)?;
        return Ok(Outcome::Linked);
    }
    if transfer.reuse_shared_blobs {
        match cache.reuse_shared_blob(&job.repo, &job.file) {
            Reuse::Linked => {
                cache.link(&job.repo, &job.commit, &job.file.path, etag)?;
                // Counted as done: the progress total included it.
                transfer.reporter.bytes_arrived(job.file.size);
                return Ok(Outcome::Shared);
            }
            Reuse::Corrupt { payload, users } => {
                transfer.reporter.event(Event::Warning {
                    message: &corrupt_shared_blob(&payload, &users, &job.file.path),
                });
            }
            Reuse::Absent => {}
        }
    }
    let name = format!("{}: {}", job.repo, job.file.path);
    transfer.reporter.file_started(&name);
    let downloaded = download_verified(hub, cache, transfer, job);
    transfer.reporter.file_finished(&name);
    let (temp, file) = downloaded?;
    // Closed: a staged blob holds one file open, its lock.
    drop(file);
    let segmented = is_segmented(transfer, &job.file);
    installer.stage(Staged {
        index,
        record: segmented.then(|| chunk_record_path(&temp)),
        temp,
        _lock: lock,
    });
    Ok(Outcome::Staged)
}

/// The warning for a corrupt copy in hf's shared Xet store: which file, which repos use it,
/// and that it was left alone.
pub(crate) fn corrupt_shared_blob(payload: &Utf8Path, users: &[String], path: &str) -> String {
    let users = if users.is_empty() {
        "no repo".to_owned()
    } else {
        users.join(", ")
    };
    format!(
        "the shared Xet store's copy of {path}, `{payload}`, is corrupt (its bytes do not hash to the file's etag): downloaded instead; it is left alone, linked from {users}: `hf cache verify` each, and remove it once none uses it"
    )
}

/// Whether a file is fetched in segments (and so has a resume record beside its partial file).
fn is_segmented(transfer: &Transfer<'_>, file: &RepoFile) -> bool {
    file.size >= 2 * transfer.chunk_bytes || file.size > MAX_UNRANGED_BYTES
}

/// Downloads and verifies a blob into a partial file; returns it, whole and verified. A partial
/// download left by an earlier run is resumed; a hash mismatch starts over, once.
fn download_verified(
    hub: &Hub<'_>,
    cache: &Cache,
    transfer: &Transfer<'_>,
    job: &Job,
) -> Result<(Utf8PathBuf, File), Error> {
    let etag = job.file.etag();
    let mut attempts_left = 2;
    loop {
        let resuming = attempts_left == 2 && job.resumable;
        let (temp, mut out) = if resuming {
            cache.take_incomplete(&job.repo, etag)?
        } else {
            cache.create_incomplete(&job.repo, etag)?
        };
        match fetch(hub, transfer, job, &mut out, &temp, resuming) {
            Ok(()) => return Ok((temp, out)),
            Err(error) => {
                let kept = out.metadata().map_or(0, |meta| meta.len());
                drop(out);
                attempts_left -= 1;
                let corrupt = matches!(error, Error::HashMismatch { .. });
                // What arrived is kept for the next run to resume, unless it is worthless.
                if corrupt || kept == 0 {
                    remove_partial(&temp);
                }
                if !corrupt || attempts_left == 0 {
                    return Err(error);
                }
            }
        }
    }
}

/// What every request for one file needs.
#[derive(Clone, Copy)]
pub(super) struct Fetch<'a> {
    pub(super) hub: &'a Hub<'a>,
    pub(super) job: &'a Job,
    /// The partial download being written.
    pub(super) temp: &'a Utf8Path,
    pub(super) reporter: &'a dyn Reporter,
}

/// The largest file served in one unranged GET: above this, today's Hub (and the reference
/// client) only serve ranges.
const MAX_UNRANGED_BYTES: u64 = 50_000_000_000;

/// Fetches the file into `out` and verifies it: in segments over several connections when it
/// is large, else in one stream; either way resuming what an earlier run left in `out`.
fn fetch(
    hub: &Hub<'_>,
    transfer: &Transfer<'_>,
    job: &Job,
    out: &mut File,
    temp: &Utf8Path,
    resuming: bool,
) -> Result<(), Error> {
    let ctx = Fetch {
        hub,
        job,
        temp,
        reporter: transfer.reporter,
    };
    let size = job.file.size;
    // A new file is empty and has no record: nothing to look at.
    if !resuming && !is_segmented(transfer, &job.file) {
        let _permit = transfer.budget.acquire();
        return fetch_stream(ctx, out, 0);
    }
    let existing = out
        .metadata()
        .map_err(|err| Error::io("read", temp, err))?
        .len();
    let record = chunk_record_path(temp);
    if is_segmented(transfer, &job.file) {
        // The runs an earlier run recorded, or the prefix a one-stream download left.
        let runs = resumable_runs(&record, existing, size).unwrap_or_else(|| {
            if existing < size {
                vec![(0, existing)]
            } else {
                Vec::new()
            }
        });
        match fetch_segmented(ctx, transfer, out, record.clone(), &runs) {
            Err(Error::Hub(HubError::RangeIgnored { .. })) if size <= MAX_UNRANGED_BYTES => {}
            other => return other,
        }
    }
    // One stream resumes a prefix only: what segments left is not one.
    let mut resume_from = existing.min(size);
    if record.exists() || resume_from == size {
        let _ = crate::platform::remove_file(&record);
        resume_from = 0;
    }
    out.set_len(resume_from)
        .map_err(|err| Error::io("truncate", temp, err))?;
    let _permit = transfer.budget.acquire();
    fetch_stream(ctx, out, resume_from)
}

/// Streams the file's content into `out` from `resume_from` on (the bytes before it are
/// already there), resuming with a Range request when the connection drops, and checks its
/// size and hash as the bytes arrive.
fn fetch_stream(ctx: Fetch<'_>, out: &mut File, resume_from: u64) -> Result<(), Error> {
    let Fetch { hub, job, temp, .. } = ctx;
    let file = &job.file;
    let mut verifier = Verifier::new(file);
    // Sized for the file (plus the byte that tells the body ended): thousands of small files
    // in flight need no large buffers.
    let fits = usize::try_from(file.size).map_or(BUFFER_BYTES, |size| size.saturating_add(1));
    let mut buffer = vec![0u8; BUFFER_BYTES.min(fits)];
    let mut written = 0u64;
    while written < resume_from {
        let want = ((resume_from - written) as usize).min(buffer.len());
        let read = read_at(out, &mut buffer[..want], written)
            .map_err(|err| Error::io("read back", temp, err))?;
        if read == 0 {
            break;
        }
        verifier.update(&buffer[..read]);
        written += read as u64;
    }
    if written > 0 {
        out.seek(SeekFrom::Start(written))
            .map_err(|err| Error::io("seek", temp, err))?;
    }
    let mut stalled = 0;
    loop {
        // Always a closed range (but for an empty file): a bridge serves a large file only in
        // ranges, and a URL it signs is good for that range alone.
        let range = ByteRange {
            start: written,
            end: (file.size > 0).then_some(file.size),
        };
        let download = hub.download(&job.repo, &job.commit, &file.path, range)?;
        if download.offset != written {
            // The server ignored our Range and sent everything again: start over.
            out.set_len(0)
                .and_then(|()| out.seek(SeekFrom::Start(0)).map(drop))
                .map_err(|err| Error::io("truncate", temp, err))?;
            verifier = Verifier::new(file);
            written = 0;
        }
        let before = written;
        let failure = receive(
            ctx,
            download,
            (&mut written, file.size),
            &mut buffer,
            false,
            |bytes, _| {
                verifier.update(bytes);
                out.write_all(bytes)
            },
        )?;
        if written > before {
            stalled = 0;
        }
        if failure.is_none() && written == file.size {
            break;
        }
        stalled += 1;
        if stalled >= MAX_STALLED_ATTEMPTS {
            return Err(dropped(hub, job, failure, written, file.size));
        }
        thread::sleep(hub.retry_delay(stalled - 1));
    }
    verifier
        .check(file, written)
        .map_err(|mismatch| Error::HashMismatch {
            path: file.path.clone(),
            mismatch,
        })
}

/// Reads a response body into place from `*position` up to `end`, handing each piece and its
/// offset to `store`: as it arrives, or with `whole_buffers` a full buffer at a time (each
/// write takes the file's lock, which the other connections of a chunked download then wait
/// for). Bytes beyond `end` are an error; a connection that drops once every byte is here is
/// not (the announced length may lie). Returns the connection's failure, if it failed before
/// `end`.
pub(super) fn receive(
    ctx: Fetch<'_>,
    download: Download,
    (position, end): (&mut u64, u64),
    buffer: &mut [u8],
    whole_buffers: bool,
    mut store: impl FnMut(&[u8], u64) -> std::io::Result<()>,
) -> Result<Option<String>, Error> {
    let mut body = download.body.into_reader();
    let mut filled = 0;
    let mut failure = None;
    while *position + (filled as u64) < end {
        let read = match body.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) => {
                failure = Some(err.to_string());
                break;
            }
        };
        filled += read;
        if *position + filled as u64 > end {
            return Err(too_long(ctx.job));
        }
        ctx.reporter.bytes_arrived(read as u64);
        if !whole_buffers || filled == buffer.len() || *position + filled as u64 == end {
            store(&buffer[..filled], *position).map_err(|err| Error::io("write", ctx.temp, err))?;
            *position += filled as u64;
            filled = 0;
        }
    }
    if filled > 0 {
        store(&buffer[..filled], *position).map_err(|err| Error::io("write", ctx.temp, err))?;
        *position += filled as u64;
    }
    if *position < end {
        return Ok(failure);
    }
    // One more read tells a body that ends here (or whose connection then drops: every byte
    // wanted is here) from one that goes on, which is refused.
    match body.read(&mut buffer[..1]) {
        Ok(0) | Err(_) => Ok(None),
        Ok(_) => Err(too_long(ctx.job)),
    }
}

pub(super) fn range_ignored(job: &Job) -> Error {
    HubError::RangeIgnored {
        what: format!("downloading `{}` of `{}`", job.file.path, job.repo.id),
    }
    .into()
}

pub(super) fn too_long(job: &Job) -> Error {
    HubError::InvalidResponse {
        what: format!("downloading `{}` of `{}`", job.file.path, job.repo.id),
        url: String::from("the download URL"),
        message: format!(
            "more than the {} bytes the listing announced",
            job.file.size
        ),
    }
    .into()
}

pub(super) fn dropped(
    hub: &Hub<'_>,
    job: &Job,
    failure: Option<String>,
    at: u64,
    end: u64,
) -> Error {
    HubError::Network {
        what: format!("downloading `{}` of `{}`", job.file.path, job.repo.id),
        origin: hub.endpoint().to_owned(),
        message: failure.unwrap_or_else(|| format!("the connection closed at byte {at} of {end}")),
    }
    .into()
}
