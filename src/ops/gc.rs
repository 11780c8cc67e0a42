//! `facehugger gc`: remove the cache revisions that no project still needs. Every project that
//! facehugger synced into this cache is remembered (see `registry`); a revision its lock file
//! pins is kept. Any other revision not used within `older_than` goes, with the blobs no
//! remaining revision of its repo uses, as `cache::remove` describes (refs first, under the
//! download locks, shared Xet payloads only with their last reference).
//!
//! Last use is what `hf cache ls` reports as `last_accessed`: the latest access time of the
//! revision's files (links followed, into the shared store too), or the last time a file was
//! added to its snapshot, if later (a download in progress links blobs nobody read for long).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::time::{Duration, SystemTime};

use camino::Utf8PathBuf;

use super::Options;
use crate::cache::{Cache, Footprint, Pointee, Removal, RepoScan, Usage};
use crate::error::Error;
use crate::files::IoError;
use crate::pool::run_parallel;
use crate::project::load_lock;
use crate::registry::{Registry, RegistryError};
use crate::repo::{CommitId, Repo, is_lower_hex};

/// How long `gc` waits between moving blobs into the trash and deleting them, so that a client
/// that saw a blob just before it went can link to it and have it put back.
const GRACE: Duration = Duration::from_secs(1);

/// Threads that read the cache at once: the work is system calls, so a few more than cores.
const SCAN_THREADS: usize = 4;

/// What `gc` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Keep revisions used within this long; zero removes every revision no lock pins.
    pub older_than: Duration,
    /// Plan and report, change nothing.
    pub dry_run: bool,
}

impl Default for GcOptions {
    fn default() -> GcOptions {
        GcOptions {
            older_than: Duration::from_secs(30 * 24 * 3600),
            dry_run: false,
        }
    }
}

/// What `gc` found and did.
#[derive(Debug)]
pub struct GcReport {
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// The cache.
    pub cache: Utf8PathBuf,
    /// The lock files of the remembered projects: what they pin was kept.
    pub projects: Vec<Utf8PathBuf>,
    /// Projects forgotten (or, in a dry run, to forget) because their lock file is gone.
    pub forgotten: Vec<Utf8PathBuf>,
    /// The revisions removed (or that would be), by repo and commit.
    pub removed: Vec<RemovedRevision>,
    /// Revisions kept because a lock pins them.
    pub kept_pinned: usize,
    /// Revisions kept because they were used recently.
    pub kept_recent: usize,
    /// Bytes freed (in a dry run, that would be): blobs, shared payloads, partial downloads.
    pub freed: u64,
    /// Partial downloads removed (that would be), untouched for a day.
    pub partials: usize,
    /// Blobs put back because a client linked them while `gc` removed them.
    pub restored: usize,
    /// What could not be removed; the rest was.
    pub failures: Vec<IoError>,
}

/// One revision `gc` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedRevision {
    /// The repo.
    pub repo: Repo,
    /// The commit.
    pub commit: CommitId,
    /// The refs that pointed at it.
    pub refs: Vec<String>,
    /// Its last use: the latest access time of its files.
    pub last_used: SystemTime,
    /// Bytes of its files, each blob once (as `hf cache ls --revisions` counts a revision).
    pub size: u64,
    /// Its snapshot folder (gone unless in a dry run).
    pub snapshot_path: Utf8PathBuf,
}

/// What one repo's plan says.
#[derive(Debug, Default)]
struct RepoPlan {
    removal: Option<Removal>,
    removed: Vec<RemovedRevision>,
    kept_pinned: usize,
    kept_recent: usize,
    /// Bytes of plain blobs and partial downloads the removal frees.
    freed: u64,
    partials: usize,
    /// Repo blobs that link into the shared store and go: (Xet hash, manifest line).
    shared: Vec<(String, String)>,
}

/// Removes the revisions no remembered lock pins and nobody used within `older_than`.
pub fn gc(options: &Options, gc: &GcOptions) -> Result<GcReport, Error> {
    let cache = options.cache();
    if !cache.root().is_dir() {
        return Err(Error::Other(format!(
            "cache directory not found: `{}`",
            cache.root()
        )));
    }
    let registry = Registry::new(&options.env, cache.root());
    let entries = registry.entries().map_err(|error| match error {
        RegistryError::Io(error) => Error::Io(error),
        RegistryError::Bad(bad) => Error::Other(bad.to_string()),
    })?;
    let mut pins: HashSet<(Repo, CommitId)> = HashSet::new();
    let mut projects = Vec::new();
    let mut forgotten = Vec::new();
    for stored in &entries {
        let path = &stored.entry.lock;
        match load_lock(path)? {
            Some(lock) => {
                pins.extend(
                    lock.entries
                        .into_iter()
                        .map(|entry| (entry.repo, entry.revision)),
                );
                projects.push(path.clone());
            }
            None => forgotten.push(stored),
        }
    }

    let now = SystemTime::now();
    let store_marked = cache.store().is_marked();
    let folders = cache.repo_folders();
    let plans = run_parallel(&folders, SCAN_THREADS, |(repo, _)| {
        plan_repo(&cache, repo, &pins, now, gc.older_than, store_marked)
    });

    let mut report = GcReport {
        dry_run: gc.dry_run,
        cache: cache.root().to_owned(),
        projects,
        forgotten: forgotten.iter().map(|s| s.entry.lock.clone()).collect(),
        removed: Vec::new(),
        kept_pinned: 0,
        kept_recent: 0,
        freed: 0,
        partials: 0,
        restored: 0,
        failures: Vec::new(),
    };
    let mut removals = Vec::new();
    let mut shared: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for plan in plans {
        report.removed.extend(plan.removed);
        report.kept_pinned += plan.kept_pinned;
        report.kept_recent += plan.kept_recent;
        report.freed += plan.freed;
        report.partials += plan.partials;
        for (hash, line) in plan.shared {
            shared.entry(hash).or_default().push(line);
        }
        removals.extend(plan.removal);
    }

    if gc.dry_run {
        let store = cache.store();
        report.freed += shared
            .iter()
            .map(|(hash, lines)| store.freed_if_dropped(hash, lines))
            .sum::<u64>();
        return Ok(report);
    }
    if let Some(hold) = options.env.gc_hold() {
        hold_until_released(&hold);
    }
    for stored in forgotten {
        if let Err(error) = registry.forget(stored) {
            report.failures.push(error);
        }
    }
    let (removed, failures) = cache.remove(&removals, GRACE);
    // The records of removed snapshots would never match again; they go too.
    for removal in &removals {
        for (commit, _) in &removal.revisions {
            cache.forget_record(&removal.repo, commit);
        }
    }
    report.freed = removed.freed;
    report.partials = removed.partials;
    report.restored = removed.restored;
    report.failures.extend(failures);
    Ok(report)
}

/// For tests: creates `file`, then waits (a minute at most) until it is removed.
fn hold_until_released(file: &camino::Utf8Path) {
    if fs::write(file, "planned\n").is_err() {
        return;
    }
    for _ in 0..3000 {
        if !file.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Decides what goes from one repo.
fn plan_repo(
    cache: &Cache,
    repo: &Repo,
    pins: &HashSet<(Repo, CommitId)>,
    now: SystemTime,
    older_than: Duration,
    store_marked: bool,
) -> RepoPlan {
    let scan = cache.scan_repo(repo);
    let mut plan = RepoPlan::default();
    let mut going = Vec::new();
    let mut staying = Vec::new();
    let mut blobs: Option<HashMap<String, (bool, Usage)>> = None;
    for revision in &scan.revisions {
        if pins.contains(&(repo.clone(), revision.commit.clone())) {
            plan.kept_pinned += 1;
            staying.push(revision);
            continue;
        }
        let blobs = blobs.get_or_insert_with(|| cache.blob_usages(repo));
        let unique: HashSet<&Pointee> = revision.files.iter().collect();
        // With whether it goes with the snapshot: a file of its own, where links are off.
        let usages: Vec<(Usage, bool)> = unique
            .into_iter()
            .filter_map(|pointee| match pointee {
                Pointee::Blob(name) => blobs.get(name).map(|(_, usage)| (*usage, false)),
                Pointee::File(path) => cache.other_usage(path).map(|usage| (usage, true)),
                Pointee::Other(path) => cache.other_usage(path).map(|usage| (usage, false)),
            })
            .collect();
        let own_bytes: u64 = usages
            .iter()
            .filter(|(_, own)| *own)
            .map(|(usage, _)| usage.size)
            .sum();
        let usages: Vec<Usage> = usages.into_iter().map(|(usage, _)| usage).collect();
        let snapshot = cache.snapshot_dir(repo, &revision.commit);
        // A snapshot that gained files lately counts as used then: a client may be
        // downloading it right now, linking blobs that nobody read for long.
        let accessed = usages.iter().map(|usage| usage.accessed).max();
        let last_used = accessed.max(revision.changed).unwrap_or(now);
        let idle = now.duration_since(last_used).unwrap_or_default();
        if idle < older_than {
            plan.kept_recent += 1;
            staying.push(revision);
            continue;
        }
        plan.removed.push(RemovedRevision {
            repo: repo.clone(),
            commit: revision.commit.clone(),
            refs: revision.refs.clone(),
            last_used,
            size: usages.iter().map(|usage| usage.size).sum(),
            snapshot_path: snapshot,
        });
        plan.freed += own_bytes;
        going.push(revision);
    }
    if going.is_empty() && scan.trash.is_empty() {
        return plan;
    }
    let found = blobs.unwrap_or_else(|| cache.blob_usages(repo));
    let blobs = blobs_to_remove(&scan, &going, &staying);
    for name in &blobs {
        match cache.footprint(repo, name, found.get(name), store_marked) {
            Footprint::Plain(size) => plan.freed += size,
            Footprint::Shared(hash) => plan
                .shared
                .push((hash, crate::cache::SharedStore::reference(repo, name))),
            Footprint::Missing => {}
        }
    }
    let partials = !going.is_empty();
    if partials {
        for (_, size) in cache.abandoned_partials(repo) {
            plan.freed += size;
            plan.partials += 1;
        }
    }
    plan.removal = Some(Removal {
        repo: repo.clone(),
        revisions: going
            .iter()
            .map(|revision| (revision.commit.clone(), revision.refs.clone()))
            .collect(),
        blobs,
        trash: scan.trash.clone(),
        partials,
        everything: staying.is_empty() && !going.is_empty(),
    });
    plan
}

/// The blobs that go with `going`: those they link to and no staying revision does; when no
/// revision stays, every blob of the repo.
fn blobs_to_remove(
    scan: &RepoScan,
    going: &[&crate::cache::RevisionScan],
    staying: &[&crate::cache::RevisionScan],
) -> Vec<String> {
    let names = |revisions: &[&crate::cache::RevisionScan]| -> HashSet<String> {
        revisions
            .iter()
            .flat_map(|revision| &revision.files)
            .filter_map(|pointee| match pointee {
                Pointee::Blob(name) => Some(name.clone()),
                Pointee::File(_) | Pointee::Other(_) => None,
            })
            .collect()
    };
    let mut blobs: Vec<String> = if staying.is_empty() && !going.is_empty() {
        fs::read_dir(scan.dir.join("blobs"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| is_lower_hex(name, 40) || is_lower_hex(name, 64))
            .collect()
    } else {
        let kept = names(staying);
        names(going)
            .into_iter()
            .filter(|name| !kept.contains(name))
            .collect()
    };
    blobs.sort();
    blobs
}

/// Parses a duration as `gc --older-than` takes it: `0`, or one or more of a whole number
/// followed by `s`, `m`, `h`, `d` or `w` (`30d`, `12h`, `1w2d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let wrong = || {
        format!(
            "`{}` is not a duration: write a number and a unit, s, m, h, d or w (`30d`, `12h`), or 0",
            crate::text::shown(text, crate::text::MAX_SHOWN_CHARS)
        )
    };
    let mut total: u64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return Err(wrong());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(wrong());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| wrong())?;
        let unit = rest[digits..].chars().next().ok_or_else(wrong)?;
        let seconds = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 24 * 3600,
            'w' => 7 * 24 * 3600,
            _ => return Err(wrong()),
        };
        total = number
            .checked_mul(seconds)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(wrong)?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written() {
        let day = 24 * 3600;
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * day)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("1w2d"), Ok(Duration::from_secs(9 * day)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        for bad in ["", "30", "d", "3x", "-1d", "1.5d", "99999999999999999999w"] {
            let error = parse_duration(bad).unwrap_err();
            assert!(error.contains("is not a duration"), "{bad}: {error}");
        }
    }
}
