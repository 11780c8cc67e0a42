//! Large files: a few long segments over several connections, each fetched after one resolve
//! that carries its `Range`.
//!
//! Today's Hub serves large files through the Xet bridge, whose URL is signed for the exact
//! `Range` of the resolve that minted it, and counts resolves against a rate limit. So a file is
//! not cut into many small chunks (a resolve each) but into a few segments per connection,
//! however large the file: the first connection asks for the whole file; each connection that
//! joins, or that finishes its own segment, takes over the second half of an early segment
//! with much left (work stealing, one resolve; see [`Layout::claim`]). A retry, or a
//! connection that goes back to the pool, asks again from the byte it reached.
//!
//! Bytes are written in place. A hasher follows the contiguous prefix on disk (reading it back
//! from the page cache), a write-back thread flushes the file every so often and keeps the
//! resume record (the byte each segment reached), and a ramp decides how many connections the
//! file uses from what its first bytes show.

use std::fs::File;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

use super::execute::{BUFFER_BYTES, Fetch, MAX_STALLED_ATTEMPTS, Transfer, dropped, range_ignored};
use crate::error::Error;
use crate::files::{read_capped, replace_unsynced};
use crate::hash::Verifier;
use crate::hub::ByteRange;
use crate::platform::{read_at, write_all_at};

const PAGE_BYTES: usize = 4096;
/// The file is flushed to disk whenever an eighth of it more has arrived, within these bounds,
/// so that the disk writes while the download goes on: else the page cache holds the whole file
/// until the fsync before it is installed (seconds for a gigabyte, 0.1 s for 64 MiB, which at
/// 320 MB/s is half the download again).
const WRITEBACK_MIN: u64 = 4 * 1024 * 1024;
const WRITEBACK_MAX: u64 = 64 * 1024 * 1024;
/// The resume record is written when a connection has gone this far since the last record, or
/// after [`RECORD_EVERY`]: a killed download fetches again at most about this much per
/// connection.
const RECORD_BYTES: u64 = 2 * 1024 * 1024;
const RECORD_EVERY: Duration = Duration::from_millis(50);
/// A connection writes what it has at least this often, even if its buffer is not full: on a
/// slow connection, bytes waiting in memory are lost when the process is killed.
const STORE_EVERY: Duration = Duration::from_millis(50);
/// How long the first connection's bytes are watched before the ramp decides; and how long each
/// later step is measured.
const FIRST_LOOK: Duration = Duration::from_millis(15);
const RAMP_STEP: Duration = Duration::from_millis(150);
/// Below this rate, one connection is capped by the server (a CDN's per-connection limit), and
/// every connection the file may use is opened at once.
const CAPPED_BYTES_PER_SECOND: f64 = 64.0 * 1024.0 * 1024.0;
/// The throughput gain that makes doubling the connections worth it.
const RAMP_GAIN: f64 = 1.5;

/// The first line of a resume record: what follows is one `start reached` line per segment.
const RECORD_HEADER: &str = "facehugger segments 1";
/// The longest resume record read: tens of thousands of segments.
const MAX_RECORD_BYTES: u64 = 1024 * 1024;

/// A run of bytes of the file that one connection fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    /// Its first byte; never changes, and names the segment.
    start: u64,
    /// The bytes before this are on disk.
    reached: u64,
    /// One past its last byte; lowered when another connection takes over its second half.
    end: u64,
    /// The connection fetching it, if any.
    owner: Option<usize>,
}

impl Segment {
    fn left(&self) -> u64 {
        self.end.saturating_sub(self.reached)
    }
}

/// What the connections, the hasher, the write-back and the ramp share.
#[derive(Debug)]
struct Layout {
    /// Sorted by `start`; together they cover the file.
    segments: Vec<Segment>,
    /// Connections the ramp allows now (numbered from 0).
    allowed: usize,
    /// The download failed: everyone stops.
    failed: bool,
}

impl Layout {
    /// The first byte not on disk yet (the file's size when all are).
    fn frontier(&self, size: u64) -> u64 {
        self.segments
            .iter()
            .find(|segment| segment.reached < segment.end)
            .map_or(size, |segment| segment.reached)
    }

    fn finished(&self) -> bool {
        self.segments
            .iter()
            .all(|segment| segment.reached >= segment.end)
    }

    fn find(&mut self, start: u64) -> &mut Segment {
        let index = self
            .segments
            .binary_search_by_key(&start, |segment| segment.start)
            .unwrap_or_else(|_| unreachable!("a segment's start names it"));
        &mut self.segments[index]
    }

    /// Work for `connection`: the first segment nobody fetches, else the second half of the
    /// first segment that has at least a quarter of the largest one's bytes left (and at
    /// least twice `smallest`). Returns the segment's start.
    ///
    /// Not simply the largest: segments split evenly all finish at the same moment, and the
    /// in-order hasher, which can only follow the first one, then hashes the rest of the file
    /// after the download (a 1 GiB file on 16 connections: 15/16 of it, half a second).
    /// Splitting near the start keeps the segments finishing in file order, so that the hasher
    /// follows the download; the quarter keeps the pieces few (a simulation of 4 to 16
    /// connections, with rates that differ by 30%, puts the finish within 1-6% of the
    /// download's end at about 3.5 resolves per connection, against 6-30% with the largest).
    fn claim(&mut self, connection: usize, smallest: u64) -> Option<u64> {
        if let Some(free) = self
            .segments
            .iter_mut()
            .find(|segment| segment.owner.is_none() && segment.reached < segment.end)
        {
            free.owner = Some(connection);
            return Some(free.start);
        }
        let largest = self.segments.iter().map(Segment::left).max()?;
        let (index, chosen) = self.segments.iter().enumerate().find(|(_, segment)| {
            segment.left() >= 2 * smallest && segment.left().saturating_mul(4) >= largest
        })?;
        let middle = chosen.reached + chosen.left() / 2;
        let taken = Segment {
            start: middle,
            reached: middle,
            end: chosen.end,
            owner: Some(connection),
        };
        self.segments[index].end = middle;
        self.segments.insert(index + 1, taken);
        Some(middle)
    }

    /// The runs of bytes on disk, for the resume record.
    fn record(&self) -> String {
        let mut text = format!("{RECORD_HEADER}\n");
        for segment in &self.segments {
            let reached = segment.reached.min(segment.end);
            if reached > segment.start {
                text.push_str(&format!("{} {reached}\n", segment.start));
            }
        }
        text
    }
}

/// One large file's download in progress.
struct Download<'a> {
    ctx: Fetch<'a>,
    transfer: &'a Transfer<'a>,
    out: &'a File,
    size: u64,
    /// The smallest piece worth a connection of its own.
    smallest: u64,
    record: Utf8PathBuf,
    layout: Mutex<Layout>,
    changed: Condvar,
    /// Bytes received by this run, for the ramp.
    arrived: AtomicU64,
    /// When the first byte arrived (µs after `started`), for the ramp's first look.
    first_byte: AtomicU64,
    started: Instant,
}

/// The byte runs an earlier run left on disk, from its resume record (`None` if there is no
/// usable one): each `(start, end)` is on disk.
pub(super) fn resumable_runs(
    record: &Utf8Path,
    existing: u64,
    size: u64,
) -> Option<Vec<(u64, u64)>> {
    // Read as any file the cache keeps: no link followed, and no longer than a record of many
    // thousand segments.
    let bytes = read_capped(record, MAX_RECORD_BYTES, "read the resume record").ok()??;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text.lines();
    if lines.next() != Some(RECORD_HEADER) || existing != size {
        return None;
    }
    let mut runs: Vec<(u64, u64)> = lines
        .filter_map(|line| {
            let (start, end) = line.split_once(' ')?;
            Some((start.parse().ok()?, end.parse().ok()?))
        })
        .filter(|&(start, end): &(u64, u64)| start < end && end <= size)
        .collect();
    runs.sort_unstable();
    Some(runs)
}

/// The segments left to fetch around the runs already on disk (as finished segments).
fn segments_around(runs: &[(u64, u64)], size: u64) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut at = 0;
    let mut push = |start: u64, end: u64, done: bool| {
        if start < end {
            segments.push(Segment {
                start,
                reached: if done { end } else { start },
                end,
                owner: None,
            });
        }
    };
    for &(start, end) in runs {
        let start = start.max(at);
        if end <= start {
            continue;
        }
        push(at, start, false);
        push(start, end, true);
        at = end;
    }
    push(at, size, false);
    segments
}

/// Fetches a large file into `out` (written in place, `runs` already there from an earlier
/// run) and verifies it.
pub(super) fn fetch_segmented(
    ctx: Fetch<'_>,
    transfer: &Transfer<'_>,
    out: &File,
    record: Utf8PathBuf,
    runs: &[(u64, u64)],
) -> Result<(), Error> {
    let size = ctx.job.file.size;
    out.set_len(size)
        .map_err(|err| Error::io("allocate", ctx.temp, err))?;
    let download = Download {
        ctx,
        transfer,
        out,
        size,
        smallest: transfer.chunk_bytes,
        record,
        layout: Mutex::new(Layout {
            segments: segments_around(runs, size),
            allowed: 1,
            failed: false,
        }),
        changed: Condvar::new(),
        arrived: AtomicU64::new(0),
        first_byte: AtomicU64::new(0),
        started: Instant::now(),
    };
    download.run()
}

impl Download<'_> {
    fn layout(&self) -> MutexGuard<'_, Layout> {
        self.layout.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `answer` (shown the layout) has one.
    fn wait_until<T>(&self, mut answer: impl FnMut(&mut Layout) -> Option<T>) -> T {
        let mut layout = self.layout();
        loop {
            if let Some(answer) = answer(&mut layout) {
                return answer;
            }
            layout = self.changed.wait(layout).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Sleeps for `step`; false if the download finished or failed meanwhile.
    fn pause(&self, step: Duration) -> bool {
        let deadline = Instant::now() + step;
        let mut layout = self.layout();
        loop {
            if layout.failed || layout.finished() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            layout = (self.changed.wait_timeout(layout, deadline - now))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn fail(&self) {
        self.layout().failed = true;
        self.changed.notify_all();
    }

    fn stop_on(&self, result: Result<(), Error>) -> Result<(), Error> {
        if result.is_err() {
            self.fail();
        }
        result
    }

    /// Runs the hasher, the write-back and the first connection, then opens more connections
    /// as the ramp allows them.
    fn run(&self) -> Result<(), Error> {
        let failure: Mutex<Option<Error>> = Mutex::new(None);
        let verdict = thread::scope(|scope| {
            let hasher = scope.spawn(|| self.stop_on(self.hash_in_order()));
            let writeback = scope.spawn(|| self.stop_on(self.write_back()));
            let failure = &failure;
            let open = |connection: usize| {
                scope.spawn(move || {
                    if let Err(error) = self.connection(connection) {
                        failure
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(error);
                        self.fail();
                    }
                });
            };
            open(0);
            let mut opened = 1;
            self.ramp(self.transfer.connections_per_file, |allowed| {
                while opened < allowed {
                    open(opened);
                    opened += 1;
                }
            });
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

    /// One connection: fetches the segments it claims until nothing is left.
    fn connection(&self, connection: usize) -> Result<(), Error> {
        let mut buffer = vec![0u8; BUFFER_BYTES];
        loop {
            let claimed = self.wait_until(|layout| {
                if layout.failed || layout.finished() {
                    Some(None)
                } else if connection < layout.allowed {
                    // Nothing to take now: wait for a segment to come free, or the end.
                    layout.claim(connection, self.smallest).map(Some)
                } else {
                    None
                }
            });
            let Some(start) = claimed else {
                return Ok(());
            };
            self.fetch_segment(connection, start, &mut buffer)?;
        }
    }

    /// Fetches segment `start` until it is done, another connection took the rest, or the ramp
    /// wants this connection back (then the segment is left for another).
    fn fetch_segment(&self, connection: usize, start: u64, buffer: &mut [u8]) -> Result<(), Error> {
        let Fetch { hub, job, .. } = self.ctx;
        let mut stalled = 0;
        while let Some((from, to)) = self.next_range(connection, start) {
            let _permit = self.transfer.budget.acquire();
            let range = ByteRange {
                start: from,
                end: Some(to),
            };
            let download = hub.download(&job.repo, &job.commit, &job.file.path, range)?;
            if !download.partial {
                return Err(range_ignored(job));
            }
            let failure = self.receive(connection, start, (from, to), download.body, buffer)?;
            let reached = self.layout().find(start).reached;
            if reached > from {
                stalled = 0;
            }
            if let Some(failure) = failure {
                stalled += 1;
                if stalled >= MAX_STALLED_ATTEMPTS {
                    return Err(dropped(hub, job, Some(failure), reached, to));
                }
                thread::sleep(hub.retry_delay(stalled - 1));
            }
        }
        Ok(())
    }

    /// The bytes of segment `start` still to fetch (from where it reached to where it ends
    /// now); `None` when it is done, the download failed, or the ramp no longer allows this
    /// connection (the segment is then left for another).
    fn next_range(&self, connection: usize, start: u64) -> Option<(u64, u64)> {
        let mut layout = self.layout();
        let (allowed, failed) = (layout.allowed, layout.failed);
        let segment = layout.find(start);
        if failed || segment.reached >= segment.end {
            return None;
        }
        if connection >= allowed {
            segment.owner = None;
            drop(layout);
            self.changed.notify_all();
            return None;
        }
        Some((segment.reached, segment.end))
    }

    /// Reads a response for bytes `from..to` of segment `start` into place, a whole buffer at a
    /// time (each write takes the file's lock, which the other connections then wait for). It
    /// stops where the segment now ends (another connection may have taken its second half) or
    /// when the ramp wants the connection back; it never reads past `to`. Returns why the
    /// connection failed, if it did before that.
    fn receive(
        &self,
        connection: usize,
        start: u64,
        (from, to): (u64, u64),
        body: ureq::Body,
        buffer: &mut [u8],
    ) -> Result<Option<String>, Error> {
        let mut body = body.into_reader();
        let mut position = from;
        let mut filled = 0;
        let mut stored = Instant::now();
        loop {
            let room = (buffer.len() - filled).min((to - position) as usize - filled);
            let failure = match body.read(&mut buffer[filled..filled + room]) {
                Ok(0) if room > 0 => Some("the connection closed early".to_owned()),
                Ok(read) => {
                    filled += read;
                    self.ctx.reporter.bytes_arrived(read as u64);
                    self.arrived.fetch_add(read as u64, Ordering::Relaxed);
                    let at = self.started.elapsed().as_micros().max(1) as u64;
                    let _ = self.first_byte.compare_exchange(
                        0,
                        at,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    None
                }
                Err(err) => Some(err.to_string()),
            };
            let full = filled == buffer.len() || position + filled as u64 == to;
            if failure.is_none() && !full && stored.elapsed() < STORE_EVERY {
                continue;
            }
            stored = Instant::now();
            let end = self.layout().find(start).end;
            let keep = (filled as u64).min(end.saturating_sub(position)) as usize;
            write_all_at(self.out, &buffer[..keep], position)
                .map_err(|err| Error::io("write", self.ctx.temp, err))?;
            position += keep as u64;
            filled = 0;
            let stop = {
                let mut layout = self.layout();
                let allowed = layout.allowed;
                let segment = layout.find(start);
                segment.reached = segment.reached.max(position);
                segment.reached >= segment.end || connection >= allowed
            };
            self.changed.notify_all();
            if stop {
                return Ok(None);
            }
            if failure.is_some() {
                return Ok(failure);
            }
        }
    }

    /// Hashes the file in order as its prefix reaches the disk; `Ok` once the whole file
    /// matches its etag.
    fn hash_in_order(&self) -> Result<(), Error> {
        let job = self.ctx.job;
        let mut verifier = Verifier::new(&job.file);
        let mut storage = vec![0u8; BUFFER_BYTES + PAGE_BYTES];
        let buffer = page_aligned(&mut storage);
        let mut hashed = 0;
        while hashed < self.size {
            let frontier = self.wait_until(|layout| {
                if layout.failed {
                    Some(None)
                } else {
                    let frontier = layout.frontier(self.size);
                    (frontier > hashed).then_some(Some(frontier))
                }
            });
            let Some(frontier) = frontier else {
                return Ok(()); // the failure is reported by the connection that failed
            };
            while hashed < frontier {
                let want = ((frontier - hashed) as usize).min(buffer.len());
                let read = read_at(self.out, &mut buffer[..want], hashed)
                    .map_err(|err| Error::io("read back", self.ctx.temp, err))?;
                if read == 0 {
                    return Err(Error::io(
                        "read back",
                        self.ctx.temp,
                        std::io::ErrorKind::UnexpectedEof.into(),
                    ));
                }
                verifier.update(&buffer[..read]);
                hashed += read as u64;
            }
        }
        verifier
            .check(&job.file, self.size)
            .map_err(|mismatch| Error::HashMismatch {
                path: job.file.path.clone(),
                mismatch,
            })
    }

    /// Keeps the resume record up to date, so that a run that is killed loses little, and
    /// flushes the file to disk every eighth of it (see [`WRITEBACK_MAX`]); the final flush is left to the
    /// caller. Both can wait for the filesystem's journal, so they happen here, where they hold
    /// up neither a connection nor the hasher. A failed flush fails the download: the kernel may
    /// have dropped the pages it could not write.
    fn write_back(&self) -> Result<(), Error> {
        let mut recorded_at = (0u64, Instant::now());
        let mut flushed = 0u64;
        let flush_every = (self.size / 8).clamp(WRITEBACK_MIN, WRITEBACK_MAX);
        loop {
            let step = RECORD_EVERY / 10;
            let going = self.pause(step);
            let (record, finished, failed) = {
                let layout = self.layout();
                (layout.record(), layout.finished(), layout.failed)
            };
            if finished && !failed {
                return Ok(());
            }
            let arrived = self.arrived.load(Ordering::Relaxed);
            let connections = self.layout().allowed as u64;
            let due = arrived >= recorded_at.0 + RECORD_BYTES * connections.max(1)
                || recorded_at.1.elapsed() >= RECORD_EVERY;
            if due || !going {
                // Best effort, and unsynced: a record that claims too much only costs a failed
                // verification and a fresh download, never a corrupt blob.
                let _ = replace_unsynced(&self.record, record.as_bytes());
                recorded_at = (arrived, Instant::now());
            }
            if !going {
                return Ok(()); // failed: the failure is reported by whoever failed
            }
            if arrived >= flushed + flush_every {
                self.out
                    .sync_data()
                    .map_err(|err| Error::io("write", self.ctx.temp, err))?;
                flushed = arrived;
            }
        }
    }

    /// Decides how many connections the file uses, and has `open` open them. The first one's
    /// first bytes show whether the server caps a connection (a CDN's per-connection limit:
    /// then every connection allowed opens at once); if not, connections double while that
    /// raises the throughput by [`RAMP_GAIN`] (on a fast link or loopback, more only cost
    /// CPU), and go back when it does not.
    fn ramp(&self, most: usize, mut open: impl FnMut(usize)) {
        if most <= 1 {
            return;
        }
        // The first look starts with the first byte, whatever the latency before it.
        let first_byte = loop {
            let at = self.first_byte.load(Ordering::Relaxed);
            if at > 0 {
                break at;
            }
            if !self.pause(Duration::from_millis(5)) {
                return;
            }
        };
        let first = self.started + Duration::from_micros(first_byte);
        if !self.pause(FIRST_LOOK.saturating_sub(first.elapsed())) {
            return;
        }
        let seconds = first.elapsed().as_secs_f64().max(1e-3);
        let rate = self.arrived.load(Ordering::Relaxed) as f64 / seconds;
        let mut ramp = Ramp::new(most, rate);
        self.allow(ramp.connections, &mut open);
        while !ramp.settled {
            let before = self.arrived.load(Ordering::Relaxed);
            let measured_from = Instant::now();
            if !self.pause(RAMP_STEP) {
                return;
            }
            let bytes = self.arrived.load(Ordering::Relaxed) - before;
            let rate = bytes as f64 / measured_from.elapsed().as_secs_f64();
            let connections = ramp.measured(rate);
            self.allow(connections, &mut open);
        }
    }

    /// Lets `connections` connections work (opening those not open yet); those beyond stop at
    /// their next buffer and leave their segment for another.
    fn allow(&self, connections: usize, open: &mut impl FnMut(usize)) {
        open(connections);
        self.layout().allowed = connections;
        self.changed.notify_all();
    }
}

/// How many connections a file uses: all it may at once when one connection is capped, else
/// twice as many while that raises the throughput by [`RAMP_GAIN`]; when doubling does not
/// pay, it goes back and stays.
#[derive(Debug)]
struct Ramp {
    connections: usize,
    most: usize,
    /// The previous number of connections and the throughput it had.
    previous: Option<(usize, f64)>,
    settled: bool,
}

impl Ramp {
    /// After the first connection's first look showed `rate` (bytes per second).
    fn new(most: usize, rate: f64) -> Ramp {
        if rate < CAPPED_BYTES_PER_SECOND {
            return Ramp {
                connections: most,
                most,
                previous: None,
                settled: true,
            };
        }
        Ramp {
            connections: 2.min(most),
            most,
            previous: Some((1, rate)),
            settled: most <= 1,
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

    fn layout(segments: Vec<Segment>) -> Layout {
        Layout {
            segments,
            allowed: 1,
            failed: false,
        }
    }

    fn free(start: u64, end: u64) -> Segment {
        Segment {
            start,
            reached: start,
            end,
            owner: None,
        }
    }

    #[test]
    fn connections_take_free_segments_then_half_of_an_early_one() {
        let mut layout = layout(vec![free(0, 1000)]);
        assert_eq!(layout.claim(0, 100), Some(0));
        layout.segments[0].reached = 200;
        // 800 left: the second connection takes the second half of it.
        assert_eq!(layout.claim(1, 100), Some(600));
        assert_eq!(layout.segments[0].end, 600);
        assert_eq!(
            layout.segments[1],
            Segment {
                start: 600,
                reached: 600,
                end: 1000,
                owner: Some(1),
            }
        );
        // 400 left in each: the first is split, and the first again (200 left there, half of
        // the largest's 400); then the next early one with 200 left, then the last.
        assert_eq!(layout.claim(2, 100), Some(400));
        assert_eq!(layout.claim(3, 100), Some(300));
        assert_eq!(layout.claim(4, 100), Some(500));
        assert_eq!(layout.claim(5, 100), Some(800));
        // 100 or 200 left in each: no piece would be as large as 101.
        assert_eq!(layout.claim(6, 101), None);
        // The first with a quarter of the largest's bytes left, not the largest itself:
        // 0-400 has 150 left, 400-600 has 50, 600-800 has 200.
        let mut later = self::layout(vec![free(0, 400), free(400, 600), free(600, 1000)]);
        for (index, (owner, reached)) in [(0, 250), (1, 550), (2, 600)].into_iter().enumerate() {
            later.segments[index].owner = Some(owner);
            later.segments[index].reached = reached;
        }
        assert_eq!(later.claim(3, 10), Some(325));
        assert_eq!(later.claim(4, 10), Some(800));
        // A segment handed back is taken before any split.
        layout.find(400).owner = None;
        assert_eq!(layout.claim(6, 1), Some(400));
    }

    #[test]
    fn the_frontier_is_the_first_byte_not_on_disk() {
        let mut layout = layout(vec![free(0, 100), free(100, 200), free(200, 300)]);
        assert_eq!(layout.frontier(300), 0);
        layout.segments[1].reached = 200;
        layout.segments[0].reached = 60;
        assert_eq!(layout.frontier(300), 60);
        layout.segments[0].reached = 100;
        assert_eq!(layout.frontier(300), 200);
        layout.segments[2].reached = 300;
        assert_eq!(layout.frontier(300), 300);
        assert!(layout.finished());
    }

    #[test]
    fn the_resume_record_gives_back_what_is_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let record = Utf8PathBuf::from_path_buf(dir.path().join("r.chunks.incomplete")).unwrap();
        let mut written = layout(vec![free(0, 100), free(100, 300), free(300, 400)]);
        written.segments[0].reached = 40;
        // Taken over part-way: reached may run past a lowered end; only the end counts.
        written.segments[1].reached = 300;
        written.segments[1].end = 250;
        replace_unsynced(&record, written.record().as_bytes()).unwrap();
        let runs = resumable_runs(&record, 400, 400).unwrap();
        assert_eq!(runs, [(0, 40), (100, 250)]);
        // The file must have its full size; a record of another format is none.
        assert_eq!(resumable_runs(&record, 399, 400), None);
        std::fs::write(&record, "16384\n0 1 2\n").unwrap();
        assert_eq!(resumable_runs(&record, 400, 400), None);
        // What is left to fetch lies around the runs.
        let segments = segments_around(&runs, 400);
        let spans: Vec<(u64, u64, u64)> = segments
            .iter()
            .map(|s| (s.start, s.reached, s.end))
            .collect();
        assert_eq!(
            spans,
            [(0, 40, 40), (40, 40, 100), (100, 250, 250), (250, 250, 400)]
        );
        assert_eq!(layout(segments).frontier(400), 40);
        // Overlapping or empty runs from a hand-edited record are harmless.
        let odd = segments_around(&[(0, 50), (20, 60), (70, 70)], 100);
        let spans: Vec<(u64, u64)> = odd.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(spans, [(0, 50), (50, 60), (60, 100)]);
    }

    #[test]
    fn a_capped_first_connection_opens_every_connection_at_once() {
        const MB: f64 = 1e6;
        let capped = Ramp::new(16, 20.0 * MB);
        assert_eq!((capped.connections, capped.settled), (16, true));
        // Fast: double while it pays, go back when it does not.
        let mut fast = Ramp::new(16, 900.0 * MB);
        assert_eq!((fast.connections, fast.settled), (2, false));
        assert_eq!(fast.measured(1000.0 * MB), 1);
        assert!(fast.settled);
        let mut growing = Ramp::new(8, 100.0 * MB);
        assert_eq!(growing.measured(200.0 * MB), 4);
        assert_eq!(growing.measured(400.0 * MB), 8);
        assert_eq!(growing.measured(800.0 * MB), 8);
        assert!(growing.settled);
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
