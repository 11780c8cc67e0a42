//! Large files: fetched as ranged chunks over several connections, written in place, while a
//! hasher follows the contiguous prefix of finished chunks (reading them back from the page
//! cache) and a write-back thread flushes them to disk and keeps the resume record, so that
//! little is left to do once the last byte is in. A file starts on a few connections and opens
//! more while they raise its throughput.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

use super::execute::{
    BUFFER_BYTES, Fetch, Job, MAX_STALLED_ATTEMPTS, Transfer, dropped, range_ignored, receive,
};
use crate::cache::chunk_record_path;
use crate::error::Error;
use crate::files::read_capped;
use crate::hash::Verifier;
use crate::hub::{ByteRange, Download};

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

/// The chunks an earlier run finished: those its record lists, or those inside the prefix a
/// one-stream download left. They are verified with the rest when the file is whole.
pub(super) fn resumable_chunks(
    record: &Utf8Path,
    existing: u64,
    size: u64,
    chunk: u64,
) -> BTreeSet<usize> {
    let count = size.div_ceil(chunk) as usize;
    // Read as any file the cache keeps (no link followed), and no longer than a record can be:
    // the chunk size, then every index and a space. A record that cannot be read is none.
    let most = 21 + count as u64 * (count.to_string().len() as u64 + 1);
    match read_capped(record, most, "read the chunk record") {
        Ok(Some(bytes)) => {
            let text = String::from_utf8_lossy(&bytes);
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
        Ok(None) | Err(_) if existing < size => (0..count)
            .filter(|i| (*i as u64 + 1) * chunk <= existing)
            .collect(),
        Ok(None) | Err(_) => BTreeSet::new(),
    }
}

/// Fetches a large file as ranged chunks over several connections, written in place, while a
/// hasher follows the contiguous prefix of finished chunks (from the page cache, just written).
/// Chunks in `done` are on disk already (from an earlier run); the record beside the file keeps
/// the list up to date so that an interrupted download resumes chunk by chunk.
pub(super) fn fetch_chunked(
    ctx: Fetch<'_>,
    transfer: &Transfer<'_>,
    out: &File,
    done: BTreeSet<usize>,
) -> Result<(), Error> {
    let Fetch {
        hub,
        job,
        temp,
        cdn,
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
            let response = hub.download(&job.repo, &job.commit, &job.file.path, range, cdn)?;
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
    verifier
        .check(&job.file, job.file.size)
        .map_err(|mismatch| Error::HashMismatch {
            path: job.file.path.clone(),
            mismatch,
        })
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
    let Fetch { hub, job, cdn, .. } = ctx;
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
                hub.download(&job.repo, &job.commit, &file.path, range, cdn)?
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

/// The part of `storage` that starts on a page boundary, `PAGE_BYTES` shorter. Copying from the
/// page cache into a buffer that starts just past a page boundary is several times slower (the
/// CPU's copy mistakes the two for overlapping), and an allocator hands out exactly such buffers.
fn page_aligned(storage: &mut [u8]) -> &mut [u8] {
    let offset = storage.as_ptr().align_offset(PAGE_BYTES).min(PAGE_BYTES);
    let end = storage.len() - PAGE_BYTES + offset;
    &mut storage[offset..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_record_is_read_without_following_links_and_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let record = Utf8PathBuf::from_path_buf(dir.path().join("b.chunks.incomplete")).unwrap();
        // 4 chunks of 10 bytes; 25 bytes on disk from a one-stream download: 2 whole chunks.
        let prefix = BTreeSet::from([0, 1]);
        assert_eq!(resumable_chunks(&record, 25, 40, 10), prefix);
        std::fs::write(&record, "10\n0 2 3\n").unwrap();
        assert_eq!(
            resumable_chunks(&record, 40, 40, 10),
            BTreeSet::from([0, 2, 3])
        );
        // Longer than any record of 4 chunks can be: not read, as if there were none.
        std::fs::write(&record, format!("10\n0 2 3{}\n", " ".repeat(40))).unwrap();
        assert_eq!(resumable_chunks(&record, 25, 40, 10), prefix);
        // A link is not followed (/dev/zero would never end).
        std::fs::remove_file(&record).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &record).unwrap();
        assert_eq!(resumable_chunks(&record, 25, 40, 10), prefix);
        assert_eq!(resumable_chunks(&record, 40, 40, 10), BTreeSet::new());
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
}
