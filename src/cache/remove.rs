//! Removing revisions from the cache while other clients may be using it.
//!
//! A revision goes in the order that keeps the cache valid for every reader at each step: its
//! refs (it becomes detached), its snapshot folder (renamed away at once, so nobody sees half of
//! it), its `trees/<commit>.json`, then the blobs no other revision links to. Each blob is
//! taken away under the reference client's lock on it, the lock a download takes, so that no
//! download of that blob is under way meanwhile.
//!
//! That lock is not enough on its own: `hf download` checks that a blob exists *before* it takes
//! the lock to link a snapshot file to it. A blob removed while such a download waits for the
//! lock would leave that link dangling. So blobs are first moved into a trash folder in the repo
//! folder; after a grace period (enough for a waiting client to take the lock and make its link)
//! the snapshots are read again, and a blob someone linked meanwhile is put back. Only then is
//! the trash deleted, and the shared Xet store swept of payloads no link holds any more. A `gc`
//! interrupted between the two steps leaves the trash folder, which the next one finishes the
//! same way.

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io;
use std::time::{Duration, SystemTime};

use camino::{Utf8Path, Utf8PathBuf};

use super::Cache;
use super::remove_partial;
use super::scan::{Listing, Pointee};
use super::shared::SharedStore;
use crate::files::{IoError, unique_sibling};
use crate::platform::{open_no_follow, remove_dir, remove_dir_all, remove_file, rename};
use crate::repo::{CommitId, Repo, is_lower_hex};

/// Trash folders in a repo folder start with this (`.facehugger-gc.<8 hex>.trash`).
pub(crate) const TRASH_PREFIX: &str = ".facehugger-gc.";
/// A partial download untouched for this long is abandoned.
pub(crate) const PARTIAL_AGE: Duration = Duration::from_secs(24 * 3600);
/// A trash folder this old belongs to a `gc` that was interrupted, not to one running now.
pub(crate) const STALE_TRASH_AGE: Duration = Duration::from_secs(3600);

/// What to remove from one repo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Removal {
    /// The repo.
    pub(crate) repo: Repo,
    /// The revisions to remove, each with the refs that pointed at it when it was planned.
    pub(crate) revisions: Vec<(CommitId, Vec<String>)>,
    /// Blobs (names in `blobs/`) that only those revisions link to.
    pub(crate) blobs: Vec<String>,
    /// Trash folders an interrupted `gc` left, to finish.
    pub(crate) trash: Vec<Utf8PathBuf>,
    /// Whether to remove abandoned partial downloads.
    pub(crate) partials: bool,
    /// Whether no revision of the repo stays: then the file lists and 404 markers of commits
    /// without a snapshot go too, so that the repo folder can go.
    pub(crate) everything: bool,
}

/// What a removal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Removed {
    /// Bytes freed: blobs, shared payloads, partial downloads.
    pub(crate) freed: u64,
    /// Blobs put back because a client linked them while they were being removed.
    pub(crate) restored: usize,
    /// Partial downloads removed.
    pub(crate) partials: usize,
}

/// How a blob of a repo is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Footprint {
    /// A file of this size.
    Plain(u64),
    /// A link to the shared store's payload with this Xet hash.
    Shared(String),
    /// Not there (or something else).
    Missing,
}

impl Cache {
    /// How `blobs/<name>` of a repo is stored, for planning, given what
    /// [`Cache::blob_usages`] found of it.
    pub(crate) fn footprint(
        &self,
        repo: &Repo,
        name: &str,
        found: Option<&(bool, super::scan::Usage)>,
        store_marked: bool,
    ) -> Footprint {
        match found {
            Some((false, usage)) => Footprint::Plain(usage.size),
            Some((true, _)) if store_marked => self
                .store()
                .linked_hash(&self.blob_path(repo, name))
                .map_or(Footprint::Missing, Footprint::Shared),
            _ => Footprint::Missing,
        }
    }

    /// The cache's shared Xet store.
    pub(crate) fn store(&self) -> SharedStore {
        SharedStore::new(self.root.clone())
    }

    /// The partial downloads in a repo's `blobs/` untouched for a day, with their sizes.
    pub(crate) fn abandoned_partials(&self, repo: &Repo) -> Vec<(Utf8PathBuf, u64)> {
        let blobs = self.repo_dir(repo).join("blobs");
        let now = SystemTime::now();
        let mut found: Vec<(Utf8PathBuf, u64)> = fs::read_dir(&blobs)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry
                    .file_name()
                    .into_string()
                    .ok()
                    .filter(|name| name.ends_with(".incomplete"))?;
                let meta = entry.metadata().ok().filter(|meta| meta.is_file())?;
                is_older(&meta, now, PARTIAL_AGE).then(|| (blobs.join(name), meta.len()))
            })
            .collect();
        found.sort();
        found
    }

    /// Removes what `removals` say, waiting `grace` between taking blobs away and deleting
    /// them (see the module's documentation). Each repo is done as far as it can be; the
    /// failures are returned with what was done.
    pub(crate) fn remove(&self, removals: &[Removal], grace: Duration) -> (Removed, Vec<IoError>) {
        let mut removed = Removed::default();
        let mut failures = Vec::new();
        let mut trash: Vec<(&Repo, Utf8PathBuf)> = Vec::new();
        let mut moved_blobs = false;
        for removal in removals {
            let dir = unique_sibling(
                &self.repo_dir(&removal.repo).join(".facehugger-gc"),
                "trash",
            );
            // Whatever happens, what reached the trash is dealt with below.
            if let Err(error) = self.take_away(removal, &dir, &mut removed, &mut moved_blobs) {
                failures.push(error);
            }
            if dir.exists() {
                trash.push((&removal.repo, dir));
            }
            trash.extend(removal.trash.iter().map(|dir| (&removal.repo, dir.clone())));
        }
        if moved_blobs {
            std::thread::sleep(grace);
        }
        let store = self.store();
        let marked = store.is_marked();
        let mut payloads: Vec<String> = Vec::new();
        for (repo, dir) in &trash {
            if let Err(error) = self.empty_trash(repo, dir, marked, &mut removed, &mut payloads) {
                failures.push(error);
            }
        }
        payloads.sort();
        payloads.dedup();
        for hash in payloads {
            match store.lock(&hash).and_then(|lock| lock.sweep()) {
                Ok(swept) => removed.freed += swept.freed,
                Err(error) => failures.push(error),
            }
        }
        for removal in removals {
            if let Err(error) = self.remove_repo_if_empty(&removal.repo) {
                failures.push(error);
            }
        }
        (removed, failures)
    }

    /// The first step for one repo: refs, snapshots and trees go, blobs are moved into the
    /// trash folder `trash` (`moved_blobs` says if any was), abandoned partial downloads are
    /// removed.
    fn take_away(
        &self,
        removal: &Removal,
        trash: &Utf8Path,
        removed: &mut Removed,
        moved_blobs: &mut bool,
    ) -> Result<(), IoError> {
        let repo = &removal.repo;
        let dir = self.repo_dir(repo);
        for sub in ["snapshots", "blobs"] {
            let path = trash.join(sub);
            fs::create_dir_all(&path)
                .map_err(|err| IoError::new("create the trash folder", &path, err))?;
        }
        for (commit, refs) in &removal.revisions {
            for reference in refs {
                self.remove_ref_if(repo, reference, commit)?;
            }
            let snapshot = self.snapshot_dir(repo, commit);
            let moved = trash.join("snapshots").join(commit.as_str());
            rename_if_there(&snapshot, &moved, "remove the snapshot")?;
            remove_file_if_there(&self.tree_path(repo, commit), "remove the file list")?;
            let no_exist = dir.join(".no_exist").join(commit.as_str());
            match remove_dir_all(&no_exist) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => {
                    return Err(IoError::new("remove", &no_exist, err));
                }
                _ => {}
            }
        }
        if removal.everything {
            for sub in ["trees", ".no_exist"] {
                let path = dir.join(sub);
                match remove_dir_all(&path) {
                    Err(err) if err.kind() != io::ErrorKind::NotFound => {
                        return Err(IoError::new("remove", &path, err));
                    }
                    _ => {}
                }
            }
        }
        for name in &removal.blobs {
            let _lock = self.lock_blob(repo, name)?;
            let moved = trash.join("blobs").join(name);
            *moved_blobs |=
                rename_if_there(&self.blob_path(repo, name), &moved, "remove the blob")?;
        }
        if removal.partials {
            for (partial, size) in self.abandoned_partials(repo) {
                let etag = partial
                    .file_name()
                    .and_then(|name| name.split('.').next())
                    .unwrap_or_default();
                if !is_lower_hex(etag, 40) && !is_lower_hex(etag, 64) {
                    continue;
                }
                let _lock = self.lock_blob(repo, etag)?;
                // Still abandoned now that nobody can be resuming it?
                let now = SystemTime::now();
                if fs::metadata(&partial).is_ok_and(|meta| is_older(&meta, now, PARTIAL_AGE)) {
                    remove_partial(&partial);
                    removed.freed += size;
                    removed.partials += 1;
                    // Its lock file goes too, unless the blob or another partial of it stays.
                    let blob_there = fs::symlink_metadata(self.blob_path(repo, etag)).is_ok();
                    if !blob_there && !self.partial_etags(repo).contains(etag) {
                        remove_file_if_there(&self.lock_path(repo, etag), "remove the lock file")?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Removes `refs/<reference>` if it still names `commit` (a sync may have moved it since),
    /// and the folders of a nested ref (`refs/pr/`) left empty.
    fn remove_ref_if(
        &self,
        repo: &Repo,
        reference: &str,
        commit: &CommitId,
    ) -> Result<(), IoError> {
        // A ref that cannot be read safely (a link, say) is left alone.
        if self.read_ref(repo, reference).ok().flatten().as_ref() != Some(commit) {
            return Ok(());
        }
        let path = self.ref_path(repo, reference);
        remove_file_if_there(&path, "remove the ref")?;
        let refs = self.repo_dir(repo).join("refs");
        for parent in path.ancestors().skip(1) {
            if parent == refs || !parent.starts_with(&refs) || remove_dir(parent).is_err() {
                break;
            }
        }
        Ok(())
    }

    /// The second step: the blobs in a trash folder that a snapshot links to again are put back
    /// (unless a client has downloaded them anew); the others are deleted with their lock files,
    /// and the Xet hashes of those that linked into the shared store are noted for a sweep.
    fn empty_trash(
        &self,
        repo: &Repo,
        trash: &Utf8Path,
        store_marked: bool,
        removed: &mut Removed,
        payloads: &mut Vec<String>,
    ) -> Result<(), IoError> {
        let blobs = self.repo_dir(repo).join("blobs");
        let mut linked: HashSet<String> = HashSet::new();
        let mut files = Vec::new();
        // Every link read: this is what decides whether a blob may go.
        let no_file_lists = HashMap::new();
        Listing {
            blobs: &blobs,
            etags: &no_file_lists,
            found: &mut files,
            changed: &mut None,
        }
        .add(&self.repo_dir(repo).join("snapshots"), "");
        linked.extend(files.into_iter().filter_map(|pointee| match pointee {
            Pointee::Blob(name) => Some(name),
            Pointee::File(_) | Pointee::Other(_) => None,
        }));
        let trashed_blobs = trash.join("blobs");
        let mut names: Vec<String> = fs::read_dir(&trashed_blobs)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        names.sort();
        let partials = self.partial_etags(repo);
        for name in names {
            let _lock = self.lock_blob(repo, &name)?;
            let trashed = trashed_blobs.join(&name);
            let live = blobs.join(&name);
            let live_there = fs::symlink_metadata(&live).is_ok();
            if linked.contains(&name) && !live_there {
                rename(&trashed, &live)
                    .map_err(|err| IoError::new("put back the blob", &live, err))?;
                removed.restored += 1;
                continue;
            }
            let meta = fs::symlink_metadata(&trashed)
                .map_err(|err| IoError::new("remove the blob", &trashed, err))?;
            if meta.is_symlink() {
                let hash = fs::read_link(&trashed)
                    .ok()
                    .and_then(|target| Utf8PathBuf::from_path_buf(target).ok())
                    .and_then(|target| self.store().hash_of_target(&live, &target));
                if let Some(hash) = hash.filter(|_| store_marked) {
                    payloads.push(hash);
                }
            } else {
                removed.freed += meta.len();
            }
            remove_file(&trashed).map_err(|err| IoError::new("remove the blob", &trashed, err))?;
            if !live_there && !partials.contains(&name) {
                remove_file_if_there(&self.lock_path(repo, &name), "remove the lock file")?;
            }
        }
        // Where links are off, the snapshots held the files themselves: freed now.
        removed.freed += file_bytes(&trash.join("snapshots"));
        remove_dir_all(trash).map_err(|err| IoError::new("remove the trash", trash, err))
    }

    /// Removes the repo folder if nothing but empty folders is left in it, then its folder of
    /// lock files if every lock there is free (taking each, so that none is in use when it goes).
    fn remove_repo_if_empty(&self, repo: &Repo) -> Result<(), IoError> {
        let dir = self.repo_dir(repo);
        if !only_empty_folders(&dir) {
            return Ok(());
        }
        remove_empty_folders(&dir)?;
        let locks = parent_dir_of(&self.lock_path(repo, "x"));
        let free_locks: Vec<(Utf8PathBuf, fs::File)> = fs::read_dir(&locks)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let path = locks.join(entry.file_name().into_string().ok()?);
                let file = open_no_follow(OpenOptions::new().read(true).write(true), &path).ok()?;
                file.try_lock().ok()?;
                Some((path, file))
            })
            .collect();
        for (path, _held) in &free_locks {
            remove_file_if_there(path, "remove the lock file")?;
        }
        drop(free_locks);
        let _ = remove_dir(&locks);
        Ok(())
    }
}

/// True if `meta`'s file was last modified at least `age` before `now`.
pub(crate) fn is_older(meta: &fs::Metadata, now: SystemTime, age: Duration) -> bool {
    meta.modified()
        .ok()
        .and_then(|modified| now.duration_since(modified).ok())
        .is_some_and(|elapsed| elapsed >= age)
}

fn parent_dir_of(path: &Utf8Path) -> Utf8PathBuf {
    path.parent().map(Utf8Path::to_owned).unwrap_or_default()
}

/// Renames `from` to `to`; `Ok(false)` if `from` is not there.
fn rename_if_there(from: &Utf8Path, to: &Utf8Path, action: &'static str) -> Result<bool, IoError> {
    match rename(from, to) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(IoError::new(action, from, err)),
    }
}

fn remove_file_if_there(path: &Utf8Path, action: &'static str) -> Result<(), IoError> {
    match remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(IoError::new(action, path, err)),
        _ => Ok(()),
    }
}

/// The bytes of the regular files under `dir` (links are not followed, nor counted).
fn file_bytes(dir: &Utf8Path) -> u64 {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(
            |entry| match (entry.file_type(), entry.file_name().into_string()) {
                (Ok(kind), Ok(name)) if kind.is_dir() => file_bytes(&dir.join(name)),
                (Ok(kind), _) if kind.is_file() => entry.metadata().map_or(0, |meta| meta.len()),
                _ => 0,
            },
        )
        .sum()
}

/// True if `dir` is a real folder holding nothing but (nested) empty folders.
fn only_empty_folders(dir: &Utf8Path) -> bool {
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return false;
    };
    meta.is_dir()
        && fs::read_dir(dir).is_ok_and(|listing| {
            listing.flatten().all(|entry| {
                entry
                    .file_name()
                    .into_string()
                    .is_ok_and(|name| only_empty_folders(&dir.join(name)))
            })
        })
}

/// Removes `dir` and the empty folders in it, deepest first. A folder someone has just put
/// something in is not empty any more, and stays: `remove_dir` never deletes content.
fn remove_empty_folders(dir: &Utf8Path) -> Result<(), IoError> {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if let Ok(name) = entry.file_name().into_string()
            && entry.file_type().is_ok_and(|kind| kind.is_dir())
        {
            remove_empty_folders(&dir.join(name))?;
        }
    }
    match remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        // Not empty any more: someone is using the repo again.
        Err(err) if err.kind() == io::ErrorKind::DirectoryNotEmpty => Ok(()),
        Err(err) => Err(IoError::new("remove the empty folder", dir, err)),
    }
}
