//! The HF cache, laid out exactly as huggingface_hub 2.4.0 lays it out, so every HF client on the
//! machine shares what facehugger downloads:
//!
//! ```text
//! <cache>/
//!   CACHEDIR.TAG
//!   .locks/models--acme--tiny/<etag>.lock        flock'ed while a blob is installed; never deleted
//!   models--acme--tiny/
//!     blobs/<etag>                               the content; etag = sha256 (LFS) or git blob sha1
//!     refs/main                                  40 hex bytes, no newline; refs/pr/1 nests
//!     snapshots/<commit>/sub/x -> ../../../blobs/<etag>   relative symlinks
//!     trees/<commit>.json                        the whole commit's file listing
//! ```
//! Paths are pure functions of the repo, commit, ref, etag and file path (this module), and so
//! are the reads; [`write`] writes every file under a unique temporary name and renames it into
//! place, so a crash never leaves a half-written ref, tree or blob where a reader would take it
//! for complete; [`tree`] is the format of `trees/<commit>.json`.

mod remove;
mod scan;
mod shared;
mod tree;
mod write;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::sync::Mutex;

use camino::{Utf8Path, Utf8PathBuf};

use crate::repo::{CommitId, Repo, RepoFile};
pub(crate) use remove::{Footprint, Removal};
pub(crate) use scan::{Pointee, RepoScan, RevisionScan, Usage};
pub(crate) use shared::SharedStore;
use tree::parse_tree;
pub(crate) use write::remove_partial;

const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by huggingface_hub.\n# For information about cache directory tags, see:\n#\thttps://bford.info/cachedir/\n";

/// An HF hub cache directory.
#[derive(Debug)]
pub(crate) struct Cache {
    root: Utf8PathBuf,
    /// Folders this value has made or checked (real folders, not links), so that syncing
    /// thousands of files does not check the same folders thousands of times. A clone starts
    /// afresh: `sync` works on one, so that what it remembers lasts one run.
    checked_dirs: Mutex<HashSet<Utf8PathBuf>>,
}

impl Clone for Cache {
    fn clone(&self) -> Cache {
        Cache::new(self.root.clone())
    }
}

impl PartialEq for Cache {
    fn eq(&self, other: &Cache) -> bool {
        self.root == other.root
    }
}

impl Eq for Cache {}

impl Cache {
    /// A cache rooted at `root` (nothing is created until something is written).
    pub(crate) fn new(root: impl Into<Utf8PathBuf>) -> Cache {
        Cache {
            root: root.into(),
            checked_dirs: Mutex::default(),
        }
    }

    /// `<cache>/models--acme--tiny`.
    pub(crate) fn repo_dir(&self, repo: &Repo) -> Utf8PathBuf {
        self.root.join(repo.folder_name())
    }

    /// `<repo>/blobs/<etag>`.
    pub(crate) fn blob_path(&self, repo: &Repo, etag: &str) -> Utf8PathBuf {
        self.repo_dir(repo).join("blobs").join(etag)
    }

    /// `<repo>/snapshots/<commit>`.
    pub(crate) fn snapshot_dir(&self, repo: &Repo, commit: &CommitId) -> Utf8PathBuf {
        self.repo_dir(repo).join("snapshots").join(commit.as_str())
    }

    /// `<repo>/snapshots/<commit>/<path>`.
    pub(crate) fn pointer_path(&self, repo: &Repo, commit: &CommitId, path: &str) -> Utf8PathBuf {
        self.snapshot_dir(repo, commit).join(path)
    }

    /// `<repo>/refs/<ref>`; `refs/pr/1` nests as `refs/refs/pr/1`.
    pub(crate) fn ref_path(&self, repo: &Repo, reference: &str) -> Utf8PathBuf {
        self.repo_dir(repo).join("refs").join(reference)
    }

    /// `<repo>/trees/<commit>.json`.
    pub(crate) fn tree_path(&self, repo: &Repo, commit: &CommitId) -> Utf8PathBuf {
        self.repo_dir(repo)
            .join("trees")
            .join(format!("{commit}.json"))
    }

    /// `<cache>/.locks/<repo folder>/<etag>.lock`.
    pub(crate) fn lock_path(&self, repo: &Repo, etag: &str) -> Utf8PathBuf {
        self.root
            .join(".locks")
            .join(repo.folder_name())
            .join(format!("{etag}.lock"))
    }

    /// The commit `refs/<ref>` points at, if the cache has it (read without trimming, as the
    /// reference client reads it: a ref with a newline is not a valid ref).
    pub(crate) fn read_ref(&self, repo: &Repo, reference: &str) -> Option<CommitId> {
        let text = fs::read_to_string(self.ref_path(repo, reference)).ok()?;
        CommitId::parse(&text)
    }

    /// The commit's file listing from `trees/<commit>.json`, if cached and valid.
    pub(crate) fn read_tree(&self, repo: &Repo, commit: &CommitId) -> Option<Vec<RepoFile>> {
        let text = fs::read_to_string(self.tree_path(repo, commit)).ok()?;
        parse_tree(&text)
    }

    /// True if `snapshots/<commit>/<path>` exists and leads to content (a dangling link does not).
    pub(crate) fn has_pointer(&self, repo: &Repo, commit: &CommitId, path: &str) -> bool {
        self.pointer_path(repo, commit, path).exists()
    }

    /// What `snapshots/<commit>/` and `blobs/` of `repo` hold, read with one listing per folder.
    pub(crate) fn snapshot_view(&self, repo: &Repo, commit: &CommitId) -> SnapshotView {
        let mut pointers = HashMap::new();
        list_tree(&self.snapshot_dir(repo, commit), "", &mut pointers);
        let blob_dir = self.repo_dir(repo).join("blobs");
        let blobs = fs::read_dir(&blob_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                Some((
                    entry.file_name().into_string().ok()?,
                    entry.file_type().ok()?,
                ))
            })
            .collect();
        SnapshotView {
            pointers,
            blobs,
            blob_dir,
        }
    }

    /// True if the blob for `etag` is in the cache (a file, or a link into the shared Xet store).
    pub(crate) fn has_blob(&self, repo: &Repo, etag: &str) -> bool {
        self.blob_path(repo, etag).is_file()
    }

    /// The etags of the blobs of `repo` that have a partial download left by an earlier run:
    /// read once per sync, so that each file does not scan the folder again.
    pub(crate) fn partial_etags(&self, repo: &Repo) -> HashSet<String> {
        let dir = self.repo_dir(repo).join("blobs");
        fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.ends_with(".incomplete"))
            .filter_map(|name| name.split('.').next().map(str::to_owned))
            .collect()
    }
}

/// One snapshot of a repo and its blobs as listed once, so that planning a sync of thousands of
/// files costs a few folder listings instead of a `stat` per file (which walks the whole path
/// and follows the link). See [`Cache::snapshot_view`].
#[derive(Debug)]
pub(crate) struct SnapshotView {
    /// Paths in the snapshot (`/`-separated) and what each is.
    pointers: HashMap<String, fs::FileType>,
    /// Names in `blobs/` and what each is.
    blobs: HashMap<String, fs::FileType>,
    blob_dir: Utf8PathBuf,
}

impl SnapshotView {
    /// True if `path` is in the snapshot and leads to content: a file, or a link while the blob
    /// of its `etag` is there. Where a link points is not read: facehugger and the reference
    /// client only ever link a file to the blob of its etag.
    pub(crate) fn has_pointer(&self, path: &str, etag: &str) -> bool {
        match self.pointers.get(path) {
            Some(kind) if kind.is_symlink() => self.has_blob(etag),
            Some(kind) => kind.is_file(),
            None => false,
        }
    }

    /// True if the blob for `etag` is there: a file, or a link (into the shared Xet store, say)
    /// that leads to one.
    pub(crate) fn has_blob(&self, etag: &str) -> bool {
        match self.blobs.get(etag) {
            Some(kind) if kind.is_symlink() => self.blob_dir.join(etag).is_file(),
            Some(kind) => kind.is_file(),
            None => false,
        }
    }
}

/// Adds what the folder `dir` holds, and its subfolders, to `found` as `prefix` + name.
fn list_tree(dir: &Utf8Path, prefix: &str, found: &mut HashMap<String, fs::FileType>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let (Ok(name), Ok(kind)) = (entry.file_name().into_string(), entry.file_type()) else {
            continue;
        };
        let path = format!("{prefix}{name}");
        if kind.is_dir() {
            list_tree(&dir.join(&name), &format!("{path}/"), found);
        }
        found.insert(path, kind);
    }
}

/// The record of finished chunks beside a partial download: `<etag>.<8hex>.chunks.incomplete`,
/// so that `hf cache prune` (which removes `*.incomplete`) cleans it up too.
const CHUNKS_SUFFIX: &str = ".chunks.incomplete";

/// Where the chunk record of the partial download `temp` lives.
pub(crate) fn chunk_record_path(temp: &Utf8Path) -> Utf8PathBuf {
    let base = temp
        .as_str()
        .strip_suffix(".incomplete")
        .unwrap_or(temp.as_str());
    Utf8PathBuf::from(format!("{base}{CHUNKS_SUFFIX}"))
}

/// `../` once per folder between the pointer and the repo folder, then `blobs/<etag>`.
pub(crate) fn relative_blob_target(path: &str, etag: &str) -> String {
    let depth = 2 + path.matches('/').count();
    format!("{}blobs/{etag}", "../".repeat(depth))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::RepoType;

    #[test]
    fn snapshot_links_climb_to_the_repo_folder() {
        assert_eq!(relative_blob_target("config.json", "e"), "../../blobs/e");
        assert_eq!(
            relative_blob_target("sub/dir/x", "e"),
            "../../../../blobs/e"
        );
    }

    #[test]
    fn paths_match_the_reference_layout() {
        let cache = Cache::new("/c");
        let repo = Repo::new(RepoType::Model, "acme/tiny").unwrap();
        assert_eq!(
            cache.ref_path(&repo, "refs/pr/1"),
            "/c/models--acme--tiny/refs/refs/pr/1"
        );
        assert_eq!(
            cache.lock_path(&repo, "e"),
            "/c/.locks/models--acme--tiny/e.lock"
        );
        let commit = CommitId::parse(&"c".repeat(40)).unwrap();
        assert_eq!(
            cache.tree_path(&repo, &commit),
            format!("/c/models--acme--tiny/trees/{commit}.json")
        );
    }

    #[test]
    fn a_snapshot_view_sees_what_stat_would() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(Utf8Path::from_path(dir.path()).unwrap());
        let repo = Repo::new(RepoType::Model, "org/model").unwrap();
        let commit = CommitId::parse(&"c".repeat(40)).unwrap();
        let (there, gone, elsewhere) = ("a".repeat(64), "b".repeat(64), "e".repeat(64));
        let blobs = cache.repo_dir(&repo).join("blobs");
        fs::create_dir_all(&blobs).unwrap();
        fs::write(blobs.join(&there), "x").unwrap();
        fs::write(dir.path().join("xet-chunk"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("xet-chunk"), blobs.join(&elsewhere)).unwrap();
        let snapshot = cache.snapshot_dir(&repo, &commit);
        fs::create_dir_all(snapshot.join("sub/deeper")).unwrap();
        let link = |path: &str, etag: &str| {
            std::os::unix::fs::symlink(
                relative_blob_target(path, etag).as_str(),
                snapshot.join(path),
            )
            .unwrap()
        };
        link("sub/deeper/model.bin", &there);
        link("dangling.bin", &gone);
        fs::write(snapshot.join("plain.txt"), "x").unwrap();

        let view = cache.snapshot_view(&repo, &commit);
        for (path, etag) in [
            ("sub/deeper/model.bin", &there),
            ("dangling.bin", &gone),
            ("plain.txt", &gone),
            ("missing", &there),
        ] {
            assert_eq!(
                view.has_pointer(path, etag),
                cache.has_pointer(&repo, &commit, path),
                "{path}"
            );
        }
        for etag in [&there, &gone, &elsewhere] {
            assert_eq!(view.has_blob(etag), cache.has_blob(&repo, etag), "{etag}");
        }
        assert!(view.has_blob(&elsewhere));
        // A folder is not a file of the snapshot (`exists` would say it is there).
        assert!(!view.has_pointer("sub", &there));
        let empty = cache.snapshot_view(&repo, &CommitId::parse(&"d".repeat(40)).unwrap());
        assert!(!empty.has_pointer("sub/deeper/model.bin", &there));
    }
}
