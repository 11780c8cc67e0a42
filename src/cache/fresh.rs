//! Records of snapshots found complete, so that a no-op sync of a dataset of 100,000 files does
//! not list its 200,000 folder entries again: the kernel's reading of those folders was most of
//! such a sync's time. A record says: "while `snapshots/<commit>/`, every folder in it and
//! `blobs/` were in these states, each file of this selection was there, as a link to a blob
//! that is a regular file". A folder's state (device, inode, modification and change times)
//! moves on whenever an entry in it is made, removed or renamed, so while every folder is as
//! recorded, a listing would find what it found then; otherwise the snapshot is listed again.
//! git's untracked cache skips unchanged folders the same way.
//!
//! Records live outside the hub cache, beside facehugger's registry
//! (`$HF_HOME/facehugger/fresh/<cache key>/<repo folder>/<commit>.json`), and only say what a
//! listing found: losing one costs the next sync a listing, nothing else.
//!
//! A state is recorded only when it is older than the moment its folder was read by more than
//! the file system's timestamp granularity (git's "racily clean" entries): a change right after
//! the listing must get another time than the one recorded, or it would go unseen.

use std::fs;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::files::{read_capped, write_atomically};
use crate::hash::hex;
use crate::platform::folder_state;
use crate::repo::{RepoFile, validate_repo_path};

/// A folder's state, from [`folder_state`].
pub(crate) type FolderState = [i64; 6];

/// Bytes a record may hold (a hundred bytes per folder of a snapshot).
const RECORD_BYTES: u64 = 16 * 1024 * 1024;

/// Selections kept per snapshot.
const MAX_SELECTIONS: usize = 16;

/// How much older than its reading a state must be where times have nanoseconds: the kernel
/// stamps changes from a clock that ticks every few milliseconds (10 ms at the slowest).
const FINE_MARGIN: Duration = Duration::from_millis(50);

/// The same where times are whole seconds (ext4 with small inodes, HFS+) or two (FAT).
const COARSE_MARGIN: Duration = Duration::from_secs(3);

/// A folder as read just before its listing: where it is (relative to the snapshot, `""` for
/// the snapshot itself) and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Folder {
    pub(crate) path: String,
    pub(crate) state: FolderState,
}

/// That a snapshot held some selections of files (the models of a workspace may select
/// different files of one commit), and the states of its folders then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record {
    /// [`selection_digest`] of each selection's files.
    selections: Vec<String>,
    /// `blobs/`.
    blobs: FolderState,
    /// The snapshot's folders, itself first.
    folders: Vec<Folder>,
}

impl Record {
    /// A record of `files` found in a snapshot whose folders and `blobs/` had these states
    /// when read at `read_at`; `None` when a state is too recent to be trusted later.
    pub(crate) fn new<'a>(
        files: impl Iterator<Item = &'a RepoFile>,
        blobs: FolderState,
        folders: Vec<Folder>,
        read_at: SystemTime,
    ) -> Option<Record> {
        let settled = |state: &FolderState| settled(state, read_at);
        if !settled(&blobs) || !folders.iter().all(|folder| settled(&folder.state)) {
            return None;
        }
        Some(Record {
            selections: vec![selection_digest(files)],
            blobs,
            folders,
        })
    }

    /// Whether this record is of exactly these files.
    pub(crate) fn covers<'a>(&self, files: impl Iterator<Item = &'a RepoFile>) -> bool {
        self.selections.contains(&selection_digest(files))
    }

    /// This record, with the selections of `earlier` too when both saw the same folders.
    fn joined(mut self, earlier: Option<Record>) -> Record {
        if let Some(earlier) = earlier
            && earlier.blobs == self.blobs
            && earlier.folders == self.folders
        {
            for selection in earlier.selections {
                if self.selections.len() < MAX_SELECTIONS && !self.selections.contains(&selection) {
                    self.selections.push(selection);
                }
            }
        }
        self
    }

    /// Whether `snapshot` and `blobs` are still as recorded: every folder has its state (none
    /// was added, or its parent's state would have moved on).
    fn unchanged(&self, snapshot: &Utf8Path, blobs: &Utf8Path) -> bool {
        let now = |path: &Utf8Path| {
            fs::symlink_metadata(path)
                .ok()
                .filter(fs::Metadata::is_dir)
                .and_then(|meta| folder_state(&meta))
        };
        now(blobs) == Some(self.blobs)
            && self
                .folders
                .first()
                .is_some_and(|root| root.path.is_empty())
            && self.folders.iter().all(|folder| {
                let path = if folder.path.is_empty() {
                    snapshot.to_owned()
                } else if validate_repo_path(&folder.path).is_ok() {
                    snapshot.join(&folder.path)
                } else {
                    return false;
                };
                now(&path) == Some(folder.state)
            })
    }
}

/// Whether a state read at `read_at` is old enough that any later change gets another time.
fn settled(state: &FolderState, read_at: SystemTime) -> bool {
    let [_, _, mtime, mtime_nsec, ctime, ctime_nsec] = *state;
    let time = |secs: i64, nsecs: i64| {
        let secs = u64::try_from(secs).ok()?;
        let nsecs = u32::try_from(nsecs).ok()?;
        Some(UNIX_EPOCH + Duration::new(secs, nsecs))
    };
    let margin = if mtime_nsec == 0 && ctime_nsec == 0 {
        COARSE_MARGIN
    } else {
        FINE_MARGIN
    };
    [time(mtime, mtime_nsec), time(ctime, ctime_nsec)]
        .into_iter()
        .all(|changed| changed.is_some_and(|changed| changed + margin <= read_at))
}

/// A digest of the files' paths and etags, in their order.
fn selection_digest<'a>(files: impl Iterator<Item = &'a RepoFile>) -> String {
    let mut digest = Sha256::new();
    for file in files {
        digest.update(file.path.as_bytes());
        digest.update([0]);
        digest.update(file.etag().as_bytes());
        digest.update([b'\n']);
    }
    hex(&digest.finalize())
}

/// Where one cache's records are kept (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Records {
    dir: Utf8PathBuf,
}

impl Records {
    /// Records kept in `dir`.
    pub(crate) fn new(dir: Utf8PathBuf) -> Records {
        Records { dir }
    }

    fn path(&self, repo_folder: &str, commit: &str) -> Utf8PathBuf {
        self.dir.join(repo_folder).join(format!("{commit}.json"))
    }

    fn read(&self, repo_folder: &str, commit: &str) -> Option<Record> {
        let path = self.path(repo_folder, commit);
        let bytes = read_capped(&path, RECORD_BYTES, "read").ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    /// The record of this snapshot, if there is one and its folders are as it says.
    pub(crate) fn unchanged(
        &self,
        repo_folder: &str,
        commit: &str,
        snapshot: &Utf8Path,
        blobs: &Utf8Path,
    ) -> Option<Record> {
        let record = self.read(repo_folder, commit)?;
        record.unchanged(snapshot, blobs).then_some(record)
    }

    /// Keeps `record` (with the selections of the one kept before, if it saw the same
    /// folders); a failure only costs the next sync a listing, so it is not reported.
    pub(crate) fn save(&self, repo_folder: &str, commit: &str, record: Record) {
        let path = self.path(repo_folder, commit);
        let record = record.joined(self.read(repo_folder, commit));
        let Ok(json) = serde_json::to_vec(&record) else {
            return;
        };
        if let Some(parent) = path.parent()
            && fs::create_dir_all(parent).is_ok()
        {
            let _ = write_atomically(&path, &json, 0o644);
        }
    }

    /// Drops the record of a snapshot (when `gc` removes it).
    pub(crate) fn forget(&self, repo_folder: &str, commit: &str) {
        let _ = fs::remove_file(self.path(repo_folder, commit));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> RepoFile {
        RepoFile {
            path: path.into(),
            size: 3,
            blob_id: "a".repeat(40),
            lfs_sha256: None,
            xet_hash: None,
        }
    }

    fn state_at(time: SystemTime) -> FolderState {
        let since = time.duration_since(UNIX_EPOCH).unwrap();
        let (secs, nsecs) = (since.as_secs() as i64, i64::from(since.subsec_nanos()));
        [1, 2, secs, nsecs, secs, nsecs]
    }

    #[test]
    fn a_state_is_trusted_only_once_older_than_the_clock_can_blur() {
        let read_at = UNIX_EPOCH + Duration::from_secs(1_000_000) + Duration::from_millis(500);
        let long_ago = state_at(read_at - Duration::from_secs(60));
        assert!(settled(&long_ago, read_at));
        // Changed a moment before the folder was read: a change just after could get the
        // same time.
        assert!(!settled(
            &state_at(read_at - Duration::from_millis(5)),
            read_at
        ));
        assert!(settled(
            &state_at(read_at - Duration::from_millis(80)),
            read_at
        ));
        // Whole seconds: the time may be up to a second (or two, on FAT) behind the change.
        let whole = |secs_before: u64| {
            let mut state = state_at(read_at - Duration::from_secs(secs_before));
            state[3] = 0;
            state[5] = 0;
            state
        };
        assert!(!settled(&whole(1), read_at));
        assert!(settled(&whole(5), read_at));
        // A time before 1970 or after the reading.
        assert!(!settled(&[1, 2, -5, 0, -5, 0], read_at));
        assert!(!settled(
            &state_at(read_at + Duration::from_secs(1)),
            read_at
        ));
    }

    #[test]
    fn a_record_covers_exactly_the_files_it_was_made_of() {
        let read_at = SystemTime::now();
        let old = state_at(read_at - Duration::from_secs(60));
        let files = [file("a.json"), file("sub/b.json")];
        let root = Folder {
            path: String::new(),
            state: old,
        };
        let record = Record::new(files.iter(), old, vec![root.clone()], read_at).unwrap();
        assert!(record.covers(files.iter()));
        assert!(!record.covers(files[..1].iter()));
        assert!(!record.covers([file("a.json"), file("sub/c.json")].iter()));
        // A folder that changed just before it was read makes no record.
        let fresh = Folder {
            path: "sub".into(),
            state: state_at(read_at),
        };
        assert_eq!(
            Record::new(files.iter(), old, vec![root, fresh], read_at),
            None
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_record_holds_while_no_folder_changes() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        let (snapshot, blobs) = (root.join("snap"), root.join("blobs"));
        fs::create_dir_all(snapshot.join("sub")).unwrap();
        fs::create_dir_all(&blobs).unwrap();
        fs::write(snapshot.join("sub/b.json"), "x").unwrap();
        let state = |path: &Utf8Path| folder_state(&fs::symlink_metadata(path).unwrap()).unwrap();
        let folders = vec![
            Folder {
                path: String::new(),
                state: state(&snapshot),
            },
            Folder {
                path: "sub".into(),
                state: state(&snapshot.join("sub")),
            },
        ];
        let files = [file("sub/b.json")];
        let later = SystemTime::now() + Duration::from_secs(10);
        let record = Record::new(files.iter(), state(&blobs), folders, later).unwrap();
        let records = Records::new(root.join("records"));
        records.save("datasets--a--b", "c0ffee", record.clone());
        assert_eq!(
            records.unchanged("datasets--a--b", "c0ffee", &snapshot, &blobs),
            Some(record.clone())
        );
        assert_eq!(
            records.unchanged("datasets--a--b", "other", &snapshot, &blobs),
            None
        );

        // Another selection seen in the same folders joins the first; in other folders, it
        // replaces it.
        let both = [file("sub/b.json"), file("a.json")];
        let mut second = record.clone();
        second.selections = vec![selection_digest(both.iter())];
        records.save("datasets--a--b", "c0ffee", second.clone());
        let kept = records
            .unchanged("datasets--a--b", "c0ffee", &snapshot, &blobs)
            .unwrap();
        assert!(kept.covers(files.iter()) && kept.covers(both.iter()));
        second.blobs[2] -= 1;
        records.save("datasets--a--b", "c0ffee", second.clone());
        assert_eq!(records.read("datasets--a--b", "c0ffee"), Some(second));
        records.save("datasets--a--b", "c0ffee", record.clone());

        // Any entry made or removed in a recorded folder, however deep, or in blobs/.
        std::thread::sleep(Duration::from_millis(20));
        fs::remove_file(snapshot.join("sub/b.json")).unwrap();
        assert_eq!(
            records.unchanged("datasets--a--b", "c0ffee", &snapshot, &blobs),
            None
        );
        records.forget("datasets--a--b", "c0ffee");
        assert!(!root.join("records/datasets--a--b/c0ffee.json").exists());
    }
}
