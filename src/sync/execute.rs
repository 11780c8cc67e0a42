//! The executor: downloads what the plan says, verifies every byte, and installs it.
//!
//! Each blob is written under a unique `blobs/<etag>.<8hex>.incomplete` name while its sha256
//! (LFS files) or git blob sha1 (regular files) is computed from the bytes as they arrive; only
//! a file of the announced size and hash is renamed to `blobs/<etag>`. The reference client's
//! flock on `.locks/<repo>/<etag>.lock` is held meanwhile, so concurrent clients download each
//! blob once.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::cache::{Cache, chunk_record_path, remove_partial};
use crate::error::Error;
use crate::hub::{ByteRange, Download, Hub, HubError, Location};
use crate::repo::{Repo, RepoFile};
use crate::sync::Reporter;

/// Consecutive failed attempts (no byte received) before a download gives up.
const MAX_STALLED_ATTEMPTS: u32 = 5;
/// Read size while streaming a body to disk.
const BUFFER_BYTES: usize = 256 * 1024;
const PAGE_BYTES: usize = 4096;
/// A large file's finished chunks are flushed to disk whenever this much more is done, so that
/// the disk writes while the download goes on (else the page cache holds the whole file until
/// the fsync before it is installed: seconds for a gigabyte).
const WRITEBACK_BYTES: u64 = 64 * 1024 * 1024;
/// Connections a large file starts with. More open while they raise its throughput: a CDN
/// caps each connection, but on a fast link or loopback more connections only cost CPU.
const FIRST_CONNECTIONS: usize = 8;
/// How long new connections get to start (a round trip, TCP slow start) before they are
/// measured, and how long they are measured before the ramp decides.
const RAMP_SETTLE: Duration = Duration::from_millis(100);
const RAMP_STEP: Duration = Duration::from_millis(200);
/// The throughput gain that makes doubling the connections worth it.
const RAMP_GAIN: f64 = 1.5;
/// How far downloads may run ahead of the hasher. When the CPU is the limit, this keeps the
/// hasher from falling behind, so that little is left to hash once the last byte is in.
const AHEAD_BYTES: u64 = 128 * 1024 * 1024;

/// One file to put in a snapshot.
#[derive(Debug, Clone)]
pub struct Job {
    /// Its repo.
    pub repo: Repo,
    /// The commit whose snapshot gets it.
    pub commit: String,
    /// The file.
    pub file: RepoFile,
    /// Whether an earlier run left a partial download of its blob, to resume.
    pub resumable: bool,
}

/// How files are transferred, and where progress is reported.
pub struct Transfer<'a> {
    /// Files of at least twice this size are fetched in chunks of this size, over several
    /// connections at once.
    pub chunk_bytes: u64,
    /// Connections one large file may use at once.
    pub connections_per_file: usize,
    /// Open connections in all, shared by every download.
    pub budget: Budget,
    /// Told of every file and every byte.
    pub reporter: &'a dyn Reporter,
}

impl<'a> Transfer<'a> {
    /// `connections` in all, each large file using up to `connections_per_file` of them.
    pub fn new(
        connections: usize,
        connections_per_file: usize,
        chunk_bytes: u64,
        reporter: &'a dyn Reporter,
    ) -> Transfer<'a> {
        Transfer {
            chunk_bytes: chunk_bytes.max(1),
            connections_per_file: connections_per_file.max(1),
            budget: Budget::new(connections),
            reporter,
        }
    }
}

/// A counting semaphore: at most N connections are open at once.
#[derive(Debug)]
pub struct Budget {
    free: Mutex<usize>,
    freed: Condvar,
}

/// One connection's worth of the budget; given back when dropped.
pub struct Permit<'a>(&'a Budget);

impl Budget {
    fn new(permits: usize) -> Budget {
        Budget {
            free: Mutex::new(permits.max(1)),
            freed: Condvar::new(),
        }
    }

    fn free(&self) -> MutexGuard<'_, usize> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a free connection.
    pub fn acquire(&self) -> Permit<'_> {
        let mut free = self.free();
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free() += 1;
        self.0.freed.notify_one();
    }
}

/// Runs `work` on every item with at most `jobs` threads; returns the results in item order.
pub fn run_parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    let workers = jobs.clamp(1, items.len().max(1));
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
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
pub fn install(hub: &Hub, cache: &Cache, transfer: &Transfer<'_>, job: &Job) -> Result<u64, Error> {
    let etag = job.file.etag();
    let _lock = cache.lock_blob(&job.repo, etag)?;
    let downloaded = if cache.has_blob(&job.repo, etag) {
        0
    } else {
        download_blob(hub, cache, transfer, job)?
    };
    cache.link(&job.repo, &job.commit, &job.file.path, etag)?;
    Ok(downloaded)
}

/// Downloads and verifies a blob, then installs it. A partial download left by an earlier run
/// is resumed; a hash mismatch starts over, once.
fn download_blob(
    hub: &Hub,
    cache: &Cache,
    transfer: &Transfer<'_>,
    job: &Job,
) -> Result<u64, Error> {
    let name = format!("{}: {}", job.repo, job.file.path);
    transfer.reporter.file_started(&name);
    let result = download_verified(hub, cache, transfer, job);
    transfer.reporter.file_finished(&name);
    result
}

fn download_verified(
    hub: &Hub,
    cache: &Cache,
    transfer: &Transfer<'_>,
    job: &Job,
) -> Result<u64, Error> {
    let etag = job.file.etag();
    let mut attempts_left = 2;
    loop {
        let (temp, mut out) = if attempts_left == 2 && job.resumable {
            cache.take_incomplete(&job.repo, etag)?
        } else {
            cache.create_incomplete(&job.repo, etag)?
        };
        let result = fetch(hub, transfer, job, &mut out, &temp)
            .and_then(|()| out.sync_all().map_err(|err| Error::io("write", &temp, err)))
            .and_then(|()| cache.install_blob(&job.repo, etag, &temp));
        let kept = out.metadata().map_or(0, |meta| meta.len());
        drop(out);
        match result {
            Ok(()) => {
                remove_partial(&temp);
                return Ok(job.file.size);
            }
            Err(error) => {
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
struct Fetch<'a> {
    hub: &'a Hub,
    job: &'a Job,
    /// The partial download being written.
    temp: &'a Utf8Path,
    /// Where the Hub's redirect led, shared by the file's requests.
    location: &'a Location,
    reporter: &'a dyn Reporter,
}

/// Fetches the file into `out` and verifies it: in chunks over several connections when it is
/// large, else in one stream; either way resuming what an earlier run left in `out`.
fn fetch(
    hub: &Hub,
    transfer: &Transfer<'_>,
    job: &Job,
    out: &mut File,
    temp: &Utf8Path,
) -> Result<(), Error> {
    let location = Location::default();
    let ctx = Fetch {
        hub,
        job,
        temp,
        location: &location,
        reporter: transfer.reporter,
    };
    let size = job.file.size;
    let existing = out
        .metadata()
        .map_err(|err| Error::io("read", temp, err))?
        .len();
    let record = chunk_record_path(temp);
    let chunked = transfer.connections_per_file > 1 && size >= 2 * transfer.chunk_bytes;
    if chunked {
        let done = resumable_chunks(&record, existing, size, transfer.chunk_bytes);
        match fetch_chunked(ctx, transfer, out, done) {
            Err(Error::Hub(HubError::RangeIgnored { .. })) => {}
            other => return other,
        }
    }
    // One stream resumes a prefix only: what chunks left is not one.
    let mut resume_from = existing.min(size);
    if record.exists() || resume_from == size {
        let _ = std::fs::remove_file(&record);
        resume_from = 0;
    }
    out.set_len(resume_from)
        .map_err(|err| Error::io("truncate", temp, err))?;
    let _permit = transfer.budget.acquire();
    fetch_stream(ctx, out, resume_from)
}

/// The chunks an earlier run finished: those its record lists, or those inside the prefix a
/// one-stream download left. They are verified with the rest when the file is whole.
fn resumable_chunks(record: &Utf8Path, existing: u64, size: u64, chunk: u64) -> BTreeSet<usize> {
    let count = size.div_ceil(chunk) as usize;
    match std::fs::read_to_string(record) {
        Ok(text) => {
            let mut lines = text.lines();
            let same_layout = lines.next().and_then(|l| l.parse::<u64>().ok()) == Some(chunk);
            if !same_layout || existing != size {
                return BTreeSet::new();
            }
            let indices = lines.next().unwrap_or_default().split_whitespace();
            indices
                .filter_map(|index| index.parse::<usize>().ok())
                .filter(|index| *index < count)
                .collect()
        }
        Err(_) if existing < size => (0..count)
            .filter(|i| (*i as u64 + 1) * chunk <= existing)
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// Streams the file's content into `out` from `resume_from` on (the bytes before it are
/// already there), resuming with a Range request when the connection drops, and checks its
/// size and hash as the bytes arrive.
fn fetch_stream(ctx: Fetch<'_>, out: &mut File, resume_from: u64) -> Result<(), Error> {
    let Fetch {
        hub,
        job,
        temp,
        location,
        ..
    } = ctx;
    let file = &job.file;
    let mut verifier = Verifier::new(file);
    // Sized for the file (plus the byte that tells the body ended): thousands of small files
    // in flight need no large buffers.
    let fits = usize::try_from(file.size).map_or(BUFFER_BYTES, |size| size.saturating_add(1));
    let mut buffer = vec![0u8; BUFFER_BYTES.min(fits)];
    let mut written = 0u64;
    while written < resume_from {
        let want = ((resume_from - written) as usize).min(buffer.len());
        let read = out
            .read_at(&mut buffer[..want], written)
            .map_err(|err| Error::io("read back", temp, err))?;
        if read == 0 {
            break;
        }
        verifier.update(&buffer[..read]);
        written += read as u64;
    }
    out.seek(SeekFrom::Start(written))
        .map_err(|err| Error::io("seek", temp, err))?;
    let mut stalled = 0;
    loop {
        let download = hub.download(
            &job.repo,
            &job.commit,
            &file.path,
            ByteRange::from(written),
            location,
        )?;
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
    verifier.check(file, written)
}

/// Fetches a large file as ranged chunks over several connections, written in place, while a
/// hasher follows the contiguous prefix of finished chunks (from the page cache, just written).
/// Chunks in `done` are on disk already (from an earlier run); the record beside the file keeps
/// the list up to date so that an interrupted download resumes chunk by chunk.
fn fetch_chunked(
    ctx: Fetch<'_>,
    transfer: &Transfer<'_>,
    out: &File,
    done: BTreeSet<usize>,
) -> Result<(), Error> {
    let Fetch {
        hub,
        job,
        temp,
        location,
        ..
    } = ctx;
    let size = job.file.size;
    out.set_len(size)
        .map_err(|err| Error::io("allocate", temp, err))?;
    let chunk = transfer.chunk_bytes;
    let chunks: Vec<(u64, u64)> = (0..size.div_ceil(chunk))
        .map(|index| (index * chunk, ((index + 1) * chunk).min(size)))
        .collect();
    let pending: Vec<usize> = (0..chunks.len()).filter(|i| !done.contains(i)).collect();
    let progress = Progress::new(done, chunks.len(), chunk_record_path(temp), chunk);
    let most = transfer.connections_per_file.min(pending.len());
    let mut ramp = Ramp::new(most);
    progress.use_connections(ramp.connections);
    // The first pending chunk is asked for before the others: its redirect tells them where
    // to go.
    let first = match pending.first() {
        Some(&index) => {
            let permit = transfer.budget.acquire();
            let (start, end) = chunks[index];
            let range = ByteRange {
                start,
                end: Some(end),
            };
            let response = hub.download(&job.repo, &job.commit, &job.file.path, range, location)?;
            if !response.partial {
                return Err(range_ignored(job));
            }
            Some((response, permit))
        }
        None => None,
    };
    let first = Mutex::new(first);
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let verdict = thread::scope(|scope| {
        // A failed helper stops the download, so that no connection waits for it.
        let hasher =
            scope.spawn(|| progress.stop_on(hash_in_order(job, out, temp, &chunks, &progress)));
        let writeback = scope.spawn(|| progress.stop_on(write_back(out, temp, &progress)));
        let ahead = ((AHEAD_BYTES / chunk) as usize).max(2 * most);
        scope.spawn(|| ramp_up(&mut ramp, &progress));
        for connection in 0..most {
            let (next, first, failure, pending) = (&next, &first, &failure, &pending);
            let (progress, chunks) = (&progress, &chunks);
            scope.spawn(move || {
                while progress.may_use(connection, || next.load(Ordering::Relaxed) < pending.len())
                {
                    let position = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&index) = pending.get(position) else {
                        break;
                    };
                    if !progress.may_start(index, ahead) {
                        break;
                    }
                    let (start, end) = chunks[index];
                    let first = if position == 0 {
                        first.lock().unwrap_or_else(|e| e.into_inner()).take()
                    } else {
                        None
                    };
                    let result = match first {
                        Some((response, _permit)) => {
                            fetch_chunk(ctx, out, (start, end), &progress.arrived, Some(response))
                        }
                        None => {
                            let _permit = transfer.budget.acquire();
                            fetch_chunk(ctx, out, (start, end), &progress.arrived, None)
                        }
                    };
                    match result {
                        Ok(()) => progress.finished(index),
                        Err(error) => {
                            failure
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(error);
                            progress.fail();
                            break;
                        }
                    }
                }
            });
        }
        let joined = |handle: thread::ScopedJoinHandle<'_, Result<(), Error>>| {
            handle
                .join()
                .unwrap_or_else(|_| Err(Error::Other("a download thread panicked".into())))
        };
        joined(writeback).and(joined(hasher))
    });
    match failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(error) => Err(error),
        None => verdict,
    }
}

/// Which chunks are on disk, for the hasher to follow and for a later run to resume.
struct Progress {
    done: Mutex<BTreeSet<usize>>,
    changed: Condvar,
    failed: AtomicBool,
    /// Chunks in the file.
    chunks: usize,
    /// Chunks an earlier run finished: on record, and on disk, already.
    resumed: usize,
    record: Utf8PathBuf,
    chunk_bytes: u64,
    /// Bytes received by this run.
    arrived: AtomicU64,
    /// Chunks hashed, from the first.
    hashed: AtomicUsize,
    /// Connections the ramp allows now.
    connections: AtomicUsize,
}

impl Progress {
    fn new(
        done: BTreeSet<usize>,
        chunks: usize,
        record: Utf8PathBuf,
        chunk_bytes: u64,
    ) -> Progress {
        Progress {
            resumed: done.len(),
            done: Mutex::new(done),
            changed: Condvar::new(),
            failed: AtomicBool::new(false),
            chunks,
            record,
            chunk_bytes,
            arrived: AtomicU64::new(0),
            hashed: AtomicUsize::new(0),
            connections: AtomicUsize::new(1),
        }
    }

    fn done(&self) -> MutexGuard<'_, BTreeSet<usize>> {
        self.done.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn use_connections(&self, connections: usize) {
        let _guard = self.done();
        self.connections.store(connections, Ordering::Relaxed);
        self.changed.notify_all();
    }

    /// Waits for a change until `answer` (shown the chunks done and whether the download
    /// failed) has one.
    fn wait_until<T>(&self, mut answer: impl FnMut(&BTreeSet<usize>, bool) -> Option<T>) -> T {
        let mut done = self.done();
        loop {
            if let Some(answer) = answer(&done, self.failed.load(Ordering::Relaxed)) {
                return answer;
            }
            done = self.changed.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits until `connection` (numbered from 0) is among those the ramp allows; false once
    /// the download failed or `work_left` says there is nothing left for it.
    fn may_use(&self, connection: usize, work_left: impl Fn() -> bool) -> bool {
        self.wait_until(|_, failed| {
            if failed || !work_left() {
                Some(false)
            } else {
                (connection < self.connections.load(Ordering::Relaxed)).then_some(true)
            }
        })
    }

    /// Waits until chunk `index` is less than `ahead` chunks beyond what is hashed; false once
    /// the download failed.
    fn may_start(&self, index: usize, ahead: usize) -> bool {
        self.wait_until(|_, failed| {
            let within = index < self.hashed.load(Ordering::Relaxed) + ahead;
            (failed || within).then_some(!failed)
        })
    }

    fn hashed_through(&self, chunks: usize) {
        let _guard = self.done();
        self.hashed.store(chunks, Ordering::Relaxed);
        self.changed.notify_all();
    }

    /// Sleeps for `step`; false if the download finished or failed meanwhile.
    fn pause(&self, step: Duration) -> bool {
        let deadline = Instant::now() + step;
        let mut done = self.done();
        loop {
            if self.failed.load(Ordering::Relaxed) || done.len() == self.chunks {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            done = (self.changed.wait_timeout(done, deadline - now))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn finished(&self, index: usize) {
        self.done().insert(index);
        self.changed.notify_all();
    }

    /// Writes the record of the chunks in `done`, for a later run to resume from. Best effort,
    /// and unsynced: a record that claims too much only costs a failed verification and a fresh
    /// download, never a corrupt blob.
    fn write_record(&self, done: &BTreeSet<usize>) {
        let indices: Vec<String> = done.iter().map(usize::to_string).collect();
        let _ = std::fs::write(
            &self.record,
            format!("{}\n{}\n", self.chunk_bytes, indices.join(" ")),
        );
    }

    fn stop_on(&self, result: Result<(), Error>) -> Result<(), Error> {
        if result.is_err() {
            self.fail();
        }
        result
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
        let _guard = self.done();
        self.changed.notify_all();
    }

    /// Waits until more than `seen` chunks are done, or the download failed; returns the
    /// chunks done and whether it failed.
    fn wait_for_more(&self, seen: usize) -> (BTreeSet<usize>, bool) {
        self.wait_until(|done, failed| {
            (failed || done.len() > seen).then(|| (done.clone(), failed))
        })
    }

    /// Waits until chunk `index` is on disk; false if the download failed meanwhile.
    fn wait_for(&self, index: usize) -> bool {
        self.wait_until(|done, failed| {
            if done.contains(&index) {
                Some(true)
            } else {
                failed.then_some(false)
            }
        })
    }
}

/// Hashes the chunks in order as each becomes available; `Ok` once the whole file matches.
fn hash_in_order(
    job: &Job,
    out: &File,
    temp: &Utf8Path,
    chunks: &[(u64, u64)],
    progress: &Progress,
) -> Result<(), Error> {
    let mut verifier = Verifier::new(&job.file);
    let mut storage = vec![0u8; BUFFER_BYTES + PAGE_BYTES];
    let buffer = page_aligned(&mut storage);
    for (index, &(start, end)) in chunks.iter().enumerate() {
        if !progress.wait_for(index) {
            return Ok(()); // the failure is reported by the chunk that failed
        }
        let mut position = start;
        while position < end {
            let want = ((end - position) as usize).min(buffer.len());
            let read = out
                .read_at(&mut buffer[..want], position)
                .map_err(|err| Error::io("read back", temp, err))?;
            if read == 0 {
                return Err(Error::io(
                    "read back",
                    temp,
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            }
            verifier.update(&buffer[..read]);
            position += read as u64;
        }
        progress.hashed_through(index + 1);
    }
    verifier.check(&job.file, job.file.size)
}

/// Measures the file's throughput at each number of connections and lets the ramp decide the
/// next, until it settles or the download ends.
fn ramp_up(ramp: &mut Ramp, progress: &Progress) {
    while !ramp.settled {
        if !progress.pause(RAMP_SETTLE) {
            return;
        }
        let before = progress.arrived.load(Ordering::Relaxed);
        if !progress.pause(RAMP_STEP) {
            return;
        }
        let bytes = progress.arrived.load(Ordering::Relaxed) - before;
        progress.use_connections(ramp.measured(bytes as f64 / RAMP_STEP.as_secs_f64()));
    }
}

/// How many connections a large file uses: it starts with [`FIRST_CONNECTIONS`] and doubles
/// them while that raises the throughput by [`RAMP_GAIN`]; when doubling does not pay, it goes
/// back and stays.
#[derive(Debug)]
struct Ramp {
    connections: usize,
    most: usize,
    /// The previous number of connections and the throughput it had.
    previous: Option<(usize, f64)>,
    settled: bool,
}

impl Ramp {
    fn new(most: usize) -> Ramp {
        let connections = FIRST_CONNECTIONS.min(most).max(1);
        Ramp {
            connections,
            most,
            previous: None,
            settled: connections >= most,
        }
    }

    /// Takes the throughput (bytes per second) of the current number of connections; returns
    /// the number to use next.
    fn measured(&mut self, rate: f64) -> usize {
        if self.settled {
            return self.connections;
        }
        match self.previous {
            Some((connections, before)) if rate < before * RAMP_GAIN => {
                self.connections = connections;
                self.settled = true;
            }
            _ if self.connections >= self.most => self.settled = true,
            _ => {
                self.previous = Some((self.connections, rate));
                self.connections = (self.connections * 2).min(self.most);
            }
        }
        self.connections
    }
}

/// Keeps the partial download's record of finished chunks up to date, so that a run that is
/// killed is resumed chunk by chunk, and flushes the file to disk every [`WRITEBACK_BYTES`] of
/// finished chunks; the final flush is left to the caller. Both can wait for the filesystem's
/// journal, so they happen here, where they hold up neither a connection nor the hasher.
/// A failed flush fails the download: the kernel may have dropped the pages it could not write.
fn write_back(out: &File, temp: &Utf8Path, progress: &Progress) -> Result<(), Error> {
    let step = (WRITEBACK_BYTES / progress.chunk_bytes).max(1) as usize;
    let mut recorded = progress.resumed;
    let mut flushed = recorded;
    while recorded < progress.chunks {
        let (done, failed) = progress.wait_for_more(recorded);
        if done.len() == progress.chunks && !failed {
            return Ok(());
        }
        progress.write_record(&done);
        recorded = done.len();
        if failed {
            return Ok(()); // the failure is reported by the chunk that failed
        }
        if recorded >= flushed + step {
            out.sync_data()
                .map_err(|err| Error::io("write", temp, err))?;
            flushed = recorded;
        }
    }
    Ok(())
}

/// Fetches bytes `start..end` into place (from `first`, when its request is already made),
/// resuming within the chunk when the connection drops; counts what arrives in `arrived`.
fn fetch_chunk(
    ctx: Fetch<'_>,
    out: &File,
    (start, end): (u64, u64),
    arrived: &AtomicU64,
    mut first: Option<Download>,
) -> Result<(), Error> {
    let Fetch {
        hub, job, location, ..
    } = ctx;
    let file = &job.file;
    let mut position = start;
    let mut stalled = 0;
    let mut buffer = vec![0u8; BUFFER_BYTES];
    loop {
        let download = match first.take() {
            Some(download) => download,
            None => {
                let range = ByteRange {
                    start: position,
                    end: Some(end),
                };
                hub.download(&job.repo, &job.commit, &file.path, range, location)?
            }
        };
        if !download.partial {
            return Err(range_ignored(job));
        }
        let before = position;
        let failure = receive(
            ctx,
            download,
            (&mut position, end),
            &mut buffer,
            true,
            |bytes, at| {
                arrived.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                out.write_all_at(bytes, at)
            },
        )?;
        if position > before {
            stalled = 0;
        }
        if position == end {
            return Ok(());
        }
        stalled += 1;
        if stalled >= MAX_STALLED_ATTEMPTS {
            return Err(dropped(hub, job, failure, position, end));
        }
        thread::sleep(hub.retry_delay(stalled - 1));
    }
}

/// Reads a response body into place from `*position` up to `end`, handing each piece and its
/// offset to `store`: as it arrives, or with `whole_buffers` a full buffer at a time (each
/// write takes the file's lock, which the other connections of a chunked download then wait
/// for). Bytes beyond `end` are an error; a connection that drops once every byte is here is
/// not (the announced length may lie). Returns the connection's failure, if it failed before
/// `end`.
fn receive(
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

fn range_ignored(job: &Job) -> Error {
    HubError::RangeIgnored {
        what: format!("downloading `{}` of `{}`", job.file.path, job.repo.id),
    }
    .into()
}

fn too_long(job: &Job) -> Error {
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

fn dropped(hub: &Hub, job: &Job, failure: Option<String>, at: u64, end: u64) -> Error {
    HubError::Network {
        what: format!("downloading `{}` of `{}`", job.file.path, job.repo.id),
        origin: hub.endpoint().to_owned(),
        message: failure.unwrap_or_else(|| format!("the connection closed at byte {at} of {end}")),
    }
    .into()
}

/// The part of `storage` that starts on a page boundary, `PAGE_BYTES` shorter. Copying from the
/// page cache into a buffer that starts just past a page boundary is several times slower (the
/// CPU's copy mistakes the two for overlapping), and an allocator hands out exactly such buffers.
fn page_aligned(storage: &mut [u8]) -> &mut [u8] {
    let offset = storage.as_ptr().align_offset(PAGE_BYTES).min(PAGE_BYTES);
    let end = storage.len() - PAGE_BYTES + offset;
    &mut storage[offset..end]
}

/// The hash a file's etag is: sha256 of the content for LFS files, the git blob sha1
/// (`blob <size>\0` + content) for regular files.
pub(crate) enum Verifier {
    Sha256(Sha256),
    GitSha1(Sha1),
}

impl Verifier {
    pub(crate) fn new(file: &RepoFile) -> Verifier {
        if file.lfs_sha256.is_some() {
            Verifier::Sha256(Sha256::new())
        } else {
            let mut sha1 = Sha1::new();
            sha1.update(format!("blob {}\0", file.size).as_bytes());
            Verifier::GitSha1(sha1)
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Verifier::Sha256(hasher) => hasher.update(bytes),
            Verifier::GitSha1(hasher) => hasher.update(bytes),
        }
    }

    pub(crate) fn check(self, file: &RepoFile, size: u64) -> Result<(), Error> {
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
    fn write_back_follows_the_chunks_and_stops_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let temp = Utf8PathBuf::from_path_buf(dir.path().join("blob.incomplete")).unwrap();
        let out = File::create(&temp).unwrap();
        // Chunks of the write-back size: every finished chunk is flushed.
        let progress = Progress::new(
            BTreeSet::new(),
            3,
            temp.with_extension("chunks"),
            WRITEBACK_BYTES,
        );
        thread::scope(|scope| {
            let flusher = scope.spawn(|| write_back(&out, &temp, &progress));
            progress.finished(0);
            // The first chunk goes on record (and to disk) before the others are done.
            let record = temp.with_extension("chunks");
            while std::fs::read_to_string(&record).ok().as_deref() != Some("67108864\n0\n") {
                thread::sleep(Duration::from_millis(1));
            }
            progress.finished(1);
            progress.finished(2);
            assert!(flusher.join().unwrap().is_ok());
        });
        // A failed download leaves the record of what it finished, for the next run.
        let record = temp.with_extension("chunks2");
        let failing = Progress::new(BTreeSet::from([0]), 1000, record.clone(), 1);
        thread::scope(|scope| {
            let flusher = scope.spawn(|| write_back(&out, &temp, &failing));
            failing.finished(7);
            failing.fail();
            assert!(flusher.join().unwrap().is_ok());
        });
        assert_eq!(std::fs::read_to_string(&record).unwrap(), "1\n0 7\n");
        // Nothing left to do: it returns at once.
        let resumed = Progress::new(BTreeSet::from([0, 1]), 2, temp.with_extension("c3"), 1);
        assert!(write_back(&out, &temp, &resumed).is_ok());
    }

    #[test]
    fn the_ramp_keeps_connections_only_while_they_pay() {
        const MB: f64 = 1e6;
        // Each connection capped at 20 MB/s: doubling doubles the throughput.
        let mut capped = Ramp::new(32);
        assert_eq!(capped.connections, FIRST_CONNECTIONS);
        assert_eq!(capped.measured(160.0 * MB), 16);
        assert_eq!(capped.measured(320.0 * MB), 32);
        assert_eq!(capped.measured(640.0 * MB), 32);
        assert!(capped.settled);
        // The CPU or the link is the limit: the ramp tries more, then goes back.
        let mut saturated = Ramp::new(16);
        assert_eq!(saturated.measured(600.0 * MB), 16);
        assert_eq!(saturated.measured(650.0 * MB), FIRST_CONNECTIONS);
        assert!(saturated.settled);
        assert_eq!(saturated.measured(2000.0 * MB), FIRST_CONNECTIONS);
        // A file with few chunks starts with all it may use.
        let few = Ramp::new(3);
        assert_eq!((few.connections, few.settled), (3, true));
    }

    #[test]
    fn downloads_wait_until_the_hasher_is_within_reach() {
        let progress = Progress::new(BTreeSet::new(), 10, Utf8PathBuf::from("unused"), 1);
        assert!(progress.may_start(1, 2));
        thread::scope(|scope| {
            let waiting = scope.spawn(|| progress.may_start(2, 2));
            thread::sleep(Duration::from_millis(20));
            assert!(!waiting.is_finished(), "chunk 2 is 2 ahead of the hasher");
            progress.hashed_through(1);
            assert!(waiting.join().unwrap());
        });
        // A failed download lets every waiting connection go.
        thread::scope(|scope| {
            let waiting = scope.spawn(|| progress.may_start(9, 2));
            progress.fail();
            assert!(!waiting.join().unwrap());
        });
    }

    #[test]
    fn the_ramp_measures_each_step_and_stops_when_it_settles() {
        let progress = Progress::new(BTreeSet::new(), 10, Utf8PathBuf::from("unused"), 1);
        let mut ramp = Ramp::new(16);
        progress.use_connections(ramp.connections);
        // Nothing arrives: doubling does not pay, but 16 is as far as it may go.
        ramp_up(&mut ramp, &progress);
        assert!(ramp.settled);
        assert_eq!(progress.connections.load(Ordering::Relaxed), 16);
        // A finished or failed download ends the ramp at once.
        let mut unsettled = Ramp::new(16);
        progress.fail();
        ramp_up(&mut unsettled, &progress);
        assert!(!unsettled.settled);
    }

    #[test]
    fn hash_buffers_start_on_a_page() {
        let mut storage = vec![0u8; 3 * PAGE_BYTES + 100];
        for shift in [0, 1, 16, 100] {
            let buffer = page_aligned(&mut storage[shift..]);
            assert_eq!(buffer.as_ptr() as usize % PAGE_BYTES, 0);
            assert_eq!(buffer.len(), 2 * PAGE_BYTES + 100 - shift);
        }
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
