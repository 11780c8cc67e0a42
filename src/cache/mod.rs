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
//! Where symbolic links cannot be made (Windows without Developer Mode, a FAT drive) or
//! `HF_HUB_DISABLE_SYMLINKS` is set, the snapshot holds the files themselves, as the reference
//! client lays it out then: a downloaded blob is moved into the snapshot (so `blobs/` stays
//! empty), one already in `blobs/` is copied. Every read here accepts both layouts.
//! Paths are pure functions of the repo, commit, ref, etag and file path (this module), and so
//! are the reads; [`write`] writes every file under a unique temporary name and renames it into
//! place, so a crash never leaves a half-written ref, tree or blob where a reader would take it
//! for complete; [`tree`] is the format of `trees/<commit>.json`.

mod fresh;
mod remove;
mod scan;
mod shared;
mod tree;
mod write;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use camino::{Utf8Path, Utf8PathBuf};

use crate::files::{IoError, open_regular, read_capped};
use crate::platform::{LINK_SEPARATOR, folder_state};
use crate::repo::{CommitId, Repo, RepoFile, is_lower_hex};
use fresh::{Folder, FolderState};
pub(crate) use fresh::{Record, Records};
pub(crate) use remove::{Footprint, Removal};
pub(crate) use scan::{Pointee, RepoScan, RevisionScan, Usage};
pub(crate) use shared::{Reuse, SharedStore};
use tree::parse_tree;
pub(crate) use write::{BlobLock, remove_partial};

/// Bytes a ref may hold: a commit id, nothing more.
const REF_BYTES: u64 = 40;

/// Bytes a `trees/<commit>.json` may hold: 256 MiB. A file's entry takes about 300 bytes (its
/// path, size, sha1, sha256 and Xet hash), so this is room for some 900,000 files, nine times
/// the 100,000 the Hub advises as a repo's most; a larger file is refused rather than read into
/// memory (a sync then asks the Hub for the listing).
const TREE_BYTES: u64 = 256 * 1024 * 1024;

const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by huggingface_hub.\n# For information about cache directory tags, see:\n#\thttps://bford.info/cachedir/\n";

/// An HF hub cache directory.
#[derive(Debug)]
pub(crate) struct Cache {
    root: Utf8PathBuf,
    /// Folders this value has made or checked (real folders, not links), so that syncing
    /// thousands of files does not check the same folders thousands of times. A clone starts
    /// afresh: `sync` works on one, so that what it remembers lasts one run.
    checked_dirs: Mutex<HashSet<Utf8PathBuf>>,
    /// `HF_HUB_DISABLE_SYMLINKS`: the files themselves in snapshots, never links.
    links_disabled: bool,
    /// Whether symbolic links can be made, per repo folder, probed once per process as the
    /// reference client does (shared by clones: the answer does not change).
    links_work: Arc<Mutex<HashMap<Utf8PathBuf, bool>>>,
    /// Where snapshots found complete are recorded, so that a no-op sync of a large dataset
    /// need not list it again ([`fresh`]); `None` to list every time.
    records: Option<Records>,
}

impl Clone for Cache {
    fn clone(&self) -> Cache {
        Cache {
            links_work: Arc::clone(&self.links_work),
            records: self.records.clone(),
            ..Cache::new(self.root.clone()).without_links(self.links_disabled)
        }
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
            links_disabled: false,
            links_work: Arc::default(),
            records: None,
        }
    }

    /// This cache, recording in `dir` the snapshots a sync found complete (see [`fresh`]).
    pub(crate) fn with_records(self, dir: Utf8PathBuf) -> Cache {
        Cache {
            records: Some(Records::new(dir)),
            ..self
        }
    }

    /// This cache, with snapshots made of the files themselves rather than links when
    /// `disabled` (`HF_HUB_DISABLE_SYMLINKS`).
    pub(crate) fn without_links(self, disabled: bool) -> Cache {
        Cache {
            links_disabled: disabled,
            ..self
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

    /// The commit `refs/<ref>` points at, if the cache has that ref. Read as the reference
    /// client reads it, without trimming (a ref with a newline is no ref), and never through a
    /// link: anything but a regular file of exactly a commit id is an error naming the ref.
    pub(crate) fn read_ref(
        &self,
        repo: &Repo,
        reference: &str,
    ) -> Result<Option<CommitId>, IoError> {
        let path = self.ref_path(repo, reference);
        let Some(bytes) = read_capped(&path, REF_BYTES, "read the ref")? else {
            return Ok(None);
        };
        match std::str::from_utf8(&bytes).ok().and_then(CommitId::parse) {
            Some(commit) => Ok(Some(commit)),
            None => Err(IoError::new(
                "read the ref",
                &path,
                io::Error::other("it does not hold a 40-hex commit id"),
            )),
        }
    }

    /// The commit's file listing from `trees/<commit>.json`, if cached. One in another format
    /// (or that does not parse) is `None`, as the reference client ignores it and asks the Hub
    /// again; a link, something else than a regular file, or a file too large to be a listing
    /// is an error naming it.
    pub(crate) fn read_tree(
        &self,
        repo: &Repo,
        commit: &CommitId,
    ) -> Result<Option<Vec<Arc<RepoFile>>>, IoError> {
        let path = self.tree_path(repo, commit);
        let Some(bytes) = read_capped(&path, TREE_BYTES, "read the file listing")? else {
            return Ok(None);
        };
        Ok(std::str::from_utf8(&bytes).ok().and_then(parse_tree))
    }

    /// What `snapshots/<commit>/` and `blobs/` of `repo` hold, read with one listing per folder
    /// and no link followed.
    pub(crate) fn snapshot_view(&self, repo: &Repo, commit: &CommitId) -> SnapshotView {
        let snapshot = self.snapshot_dir(repo, commit);
        let blob_dir = self.repo_dir(repo).join("blobs");
        let read_at = SystemTime::now();
        let list_blobs = || {
            let mut blobs = BlobNames {
                state: state_of(&blob_dir),
                ..BlobNames::default()
            };
            for entry in fs::read_dir(&blob_dir).into_iter().flatten().flatten() {
                if let (Some(name), Ok(kind)) = (entry.file_name().to_str(), entry.file_type()) {
                    blobs.insert(name, kind);
                }
            }
            blobs
        };
        // Two folders, each of up to a hundred thousand entries: listed at once.
        let listed = std::thread::scope(|scope| {
            let blobs = scope.spawn(list_blobs);
            let mut entries = HashMap::new();
            let mut folders = Vec::new();
            list_tree(&snapshot, "", &mut entries, &mut folders);
            (entries, folders, blobs.join().unwrap_or_default())
        });
        let (entries, folders, blobs) = listed;
        SnapshotView {
            snapshot,
            entries,
            blobs,
            blob_dir,
            root: self.root.clone(),
            folders,
            read_at,
        }
    }

    /// The record of `repo`'s snapshot of `commit`, if one was kept and every folder is still
    /// as it was then (see [`fresh`]).
    pub(crate) fn unchanged_record(&self, repo: &Repo, commit: &CommitId) -> Option<Record> {
        let records = self.records.as_ref()?;
        let blobs = self.repo_dir(repo).join("blobs");
        let snapshot = self.snapshot_dir(repo, commit);
        records.unchanged(&repo.folder_name(), commit.as_str(), &snapshot, &blobs)
    }

    /// Keeps the record that `repo`'s snapshot of `commit` was found complete.
    pub(crate) fn save_record(&self, repo: &Repo, commit: &CommitId, record: Record) {
        if let Some(records) = &self.records {
            records.save(&repo.folder_name(), commit.as_str(), record);
        }
    }

    /// Drops the record of `repo`'s snapshot of `commit`, if there is one.
    pub(crate) fn forget_record(&self, repo: &Repo, commit: &CommitId) {
        if let Some(records) = &self.records {
            records.forget(&repo.folder_name(), commit.as_str());
        }
    }

    /// True if the blob for `etag` is in the cache: a regular file, or a link into the shared
    /// Xet store that leads to one (see [`shared_blob`]).
    pub(crate) fn has_blob(&self, repo: &Repo, etag: &str) -> bool {
        let blob = self.blob_path(repo, etag);
        match fs::symlink_metadata(&blob) {
            Ok(meta) if meta.file_type().is_symlink() => is_shared_blob(&self.root, &blob),
            Ok(meta) => meta.is_file(),
            Err(_) => false,
        }
    }

    /// Opens the blob of `etag` to read it: `blobs/<etag>`, or the file of the shared Xet store
    /// it links to; `None` when there is none. A link anywhere else, or something else than a
    /// regular file, is an error naming it.
    pub(crate) fn open_blob(&self, repo: &Repo, etag: &str) -> Result<Option<File>, IoError> {
        let blob = self.blob_path(repo, etag);
        let path = match fs::symlink_metadata(&blob) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(IoError::new("read the blob", &blob, err)),
            Ok(meta) if meta.file_type().is_symlink() => {
                shared_blob(&self.root, &blob).ok_or_else(|| {
                    IoError::new(
                        "read the blob",
                        &blob,
                        io::Error::other(
                            "it is a symbolic link, and not into the cache's shared blob store (`blobs/<2 hex>/<64 hex>`)",
                        ),
                    )
                })?
            }
            Ok(_) => blob,
        };
        match open_regular(&path) {
            Ok(file) => Ok(Some(file)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(IoError::new("read the blob", &path, err)),
        }
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
    snapshot: Utf8PathBuf,
    /// Paths in the snapshot (`/`-separated) and what each is.
    entries: HashMap<String, Entry>,
    /// The blobs in `blobs/`.
    blobs: BlobNames,
    blob_dir: Utf8PathBuf,
    /// The cache root, where the shared Xet store is.
    root: Utf8PathBuf,
    /// The snapshot's folders (itself first) and their states just before each was listed.
    folders: Vec<(String, Option<FolderState>)>,
    /// When the listing began.
    read_at: SystemTime,
}

/// A snapshot entry, as read without following it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A regular file of this many bytes: the content itself, as the reference client leaves
    /// it where links are off (`HF_HUB_DISABLE_SYMLINKS`, Windows without developer mode).
    File(u64),
    /// A symbolic link (where it points is read on demand: [`SnapshotView::link_target`]).
    Link,
    /// A folder, or anything else.
    Other,
}

impl SnapshotView {
    /// What `path` is in the snapshot, if it is there.
    pub(crate) fn entry(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Where the link at `path` points, read without following it.
    pub(crate) fn link_target(&self, path: &str) -> Option<String> {
        let target = fs::read_link(self.snapshot.join(path)).ok()?;
        Some(target.to_string_lossy().into_owned())
    }

    /// True if the file is in the snapshot and leads to content: a regular file of its size,
    /// or a link while the blob of its etag is there. Where a link points is not read (a
    /// `readlink` per file would cost a no-op sync of a 100,000-file dataset a tenth of a
    /// second): facehugger and the reference client link a file only to its blob, and `verify`
    /// reads each link. A regular file is not hashed either (`verify` does that), as the
    /// reference client trusts any file there; its size is checked, which costs nothing more
    /// than the listing, and catches a copy cut short by someone else.
    pub(crate) fn has_pointer(&self, file: &RepoFile) -> bool {
        match self.entries.get(&file.path) {
            Some(Entry::File(size)) => *size == file.size,
            Some(Entry::Link) => self.has_blob(file.etag()),
            Some(Entry::Other) | None => false,
        }
    }

    /// True if the blob for `etag` is there: a regular file, or a link into the shared Xet store
    /// that leads to one.
    pub(crate) fn has_blob(&self, etag: &str) -> bool {
        if BlobNames::key(etag).is_some_and(|key| self.blobs.files.contains(&key)) {
            return true;
        }
        self.blobs.links.contains(etag) && is_shared_blob(&self.root, &self.blob_dir.join(etag))
    }

    /// A record that this snapshot holds `files` (see [`fresh`]), when each of them is a link
    /// to a blob that is a regular file here (the only layout a folder's state vouches for: a
    /// file's size or a shared-store payload can change with no folder changing) and the
    /// folders' states can be trusted later.
    pub(crate) fn record<'a>(
        &self,
        files: impl Iterator<Item = &'a RepoFile> + Clone,
    ) -> Option<Record> {
        let linked = files.clone().all(|file| {
            self.entries.get(&file.path) == Some(&Entry::Link)
                && BlobNames::key(file.etag()).is_some_and(|key| self.blobs.files.contains(&key))
        });
        if !linked {
            return None;
        }
        let folders = self
            .folders
            .iter()
            .map(|(path, state)| {
                Some(Folder {
                    path: path.clone(),
                    state: (*state)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Record::new(files, self.blobs.state?, folders, self.read_at)
    }
}

/// The state of the folder at `path`, read without following a link.
fn state_of(path: &Utf8Path) -> Option<FolderState> {
    fs::symlink_metadata(path)
        .ok()
        .filter(fs::Metadata::is_dir)
        .and_then(|meta| folder_state(&meta))
}

/// The names in a repo's `blobs/` folder: the regular files by a compact key (a dataset may have
/// a hundred thousand, and a no-op sync lists them all), the links by name.
#[derive(Debug, Default)]
struct BlobNames {
    files: HashSet<u128>,
    links: HashSet<String>,
    /// The folder's state just before it was listed.
    state: Option<FolderState>,
}

impl BlobNames {
    /// An etag's first 32 hex digits as a number: unique among blob names, which are
    /// cryptographic hashes (40 or 64 hex digits); `None` for any other name.
    fn key(name: &str) -> Option<u128> {
        let hex = is_lower_hex(name, 40) || is_lower_hex(name, 64);
        hex.then(|| u128::from_str_radix(&name[..32], 16).ok())
            .flatten()
    }

    fn insert(&mut self, name: &str, kind: fs::FileType) {
        if kind.is_file() {
            if let Some(key) = BlobNames::key(name) {
                self.files.insert(key);
            }
        } else if kind.is_symlink() {
            self.links.insert(name.to_owned());
        }
    }
}

/// Adds what the folder `dir` holds, and its subfolders, to `found` as `prefix` + name, and each
/// folder with its state just before it was read to `folders`. Links are not followed.
fn list_tree(
    dir: &Utf8Path,
    prefix: &str,
    found: &mut HashMap<String, Entry>,
    folders: &mut Vec<(String, Option<FolderState>)>,
) {
    folders.push((prefix.trim_end_matches('/').to_owned(), state_of(dir)));
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let (Ok(name), Ok(kind)) = (entry.file_name().into_string(), entry.file_type()) else {
            continue;
        };
        let path = format!("{prefix}{name}");
        let what = if kind.is_dir() {
            list_tree(&dir.join(&name), &format!("{path}/"), found, folders);
            Entry::Other
        } else if kind.is_symlink() {
            Entry::Link
        } else if kind.is_file() {
            // Free on Windows (the listing carries it); a `stat` on Unix, where such files are
            // only found with HF_HUB_DISABLE_SYMLINKS.
            entry
                .metadata()
                .map_or(Entry::Other, |meta| Entry::File(meta.len()))
        } else {
            Entry::Other
        };
        found.insert(path, what);
    }
}

/// Where the link `<repo>/blobs/<etag>` leads, if it is one the reference client makes for a
/// Xet file: into the cache's shared store, `<cache>/blobs/<2 hex>/<64 hex>` (hf-protocol.md
/// 3.7), worked out from the link's text, so nothing is followed; any other link is no blob.
fn shared_blob(root: &Utf8Path, blob: &Utf8Path) -> Option<Utf8PathBuf> {
    SharedStore::new(root).linked_payload(blob)
}

/// Whether the link `blob` leads into the shared store, to a regular file.
fn is_shared_blob(root: &Utf8Path, blob: &Utf8Path) -> bool {
    shared_blob(root, blob)
        .and_then(|path| fs::symlink_metadata(path).ok())
        .is_some_and(|meta| meta.is_file())
}

/// What to tell the user when symbolic links cannot be made in a repo folder `dir`, as the
/// reference client warns then.
pub(crate) fn without_links_warning(dir: &Utf8Path) -> String {
    let how = if cfg!(windows) {
        " (Windows allows them in Developer Mode, or to an elevated process)"
    } else {
        ""
    };
    format!(
        "symbolic links cannot be made in `{dir}`{how}: its snapshots hold copies of the files, \
         which takes more disk; HF_HUB_DISABLE_SYMLINKS_WARNING=1 hides this warning"
    )
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

/// `../` once per folder between the pointer and the repo folder, then `blobs/<etag>`; with
/// `\` on Windows, as the reference client writes its links there.
pub(crate) fn relative_blob_target(path: &str, etag: &str) -> String {
    let depth = 2 + path.matches('/').count();
    let up = format!("..{LINK_SEPARATOR}");
    format!("{}blobs{LINK_SEPARATOR}{etag}", up.repeat(depth))
}

/// Whether a snapshot link's text leads to the blob of `etag` from `path`: exactly
/// [`relative_blob_target`], or on Windows the same with `/` (which Windows also reads as a
/// separator, and other tools may write).
pub(crate) fn links_to_blob(path: &str, etag: &str, target: &str) -> bool {
    let expected = relative_blob_target(path, etag);
    target == expected || (cfg!(windows) && target.replace('/', "\\") == expected)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::repo::RepoType;

    #[test]
    fn snapshot_links_climb_to_the_repo_folder() {
        let native = |target: &str| target.replace('/', LINK_SEPARATOR);
        assert_eq!(
            relative_blob_target("config.json", "e"),
            native("../../blobs/e")
        );
        assert_eq!(
            relative_blob_target("sub/dir/x", "e"),
            native("../../../../blobs/e")
        );
        assert!(links_to_blob("sub/x", "e", &native("../../../blobs/e")));
        assert!(!links_to_blob("sub/x", "e", &native("../../blobs/e")));
        // Windows reads `/` as a separator too; Unix file names may hold `\`.
        assert!(links_to_blob("sub/x", "e", "../../../blobs/e"));
        assert_eq!(
            links_to_blob("sub/x", "e", "..\\..\\..\\blobs\\e"),
            cfg!(windows)
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

    /// A cache with one repo: `(cache, repo, commit, root folder)`.
    fn fixture() -> (Cache, Repo, CommitId, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(Utf8Path::from_path(dir.path()).unwrap());
        let repo = Repo::new(RepoType::Model, "org/model").unwrap();
        let commit = CommitId::parse(&"c".repeat(40)).unwrap();
        fs::create_dir_all(cache.repo_dir(&repo).join("blobs")).unwrap();
        fs::create_dir_all(cache.snapshot_dir(&repo, &commit)).unwrap();
        (cache, repo, commit, dir)
    }

    fn symlink(target: impl AsRef<std::path::Path>, at: &Utf8Path) {
        let target = target.as_ref().to_str().unwrap();
        crate::platform::symlink_file(target, at).unwrap();
    }

    /// A file of the listing: `size` bytes, blob `etag`.
    fn listed(path: &str, etag: &str, size: u64) -> RepoFile {
        RepoFile {
            path: path.to_owned(),
            size,
            blob_id: "0".repeat(40),
            lfs_sha256: Some(etag.to_owned()),
            xet_hash: None,
        }
    }

    #[test]
    fn a_snapshot_view_reads_links_without_following_them() {
        let (cache, repo, commit, dir) = fixture();
        let (there, gone, other) = ("a".repeat(64), "b".repeat(64), "d".repeat(64));
        let blobs = cache.repo_dir(&repo).join("blobs");
        fs::write(blobs.join(&there), "x").unwrap();
        fs::write(blobs.join(&other), "y").unwrap();
        let snapshot = cache.snapshot_dir(&repo, &commit);
        fs::create_dir_all(snapshot.join("sub/deeper")).unwrap();
        let link = |path: &str, target: &str| symlink(target, &snapshot.join(path));
        link(
            "sub/deeper/model.bin",
            &relative_blob_target("sub/deeper/model.bin", &there),
        );
        link("dangling.bin", &relative_blob_target("dangling.bin", &gone));
        // Right blob, wrong depth; and the blob of another file.
        link("shallow.bin", &format!("../blobs/{there}"));
        link("swapped.bin", &relative_blob_target("swapped.bin", &other));
        fs::write(snapshot.join("plain.txt"), "x").unwrap();
        symlink(dir.path().join("outside"), &snapshot.join("outside.bin"));

        let view = cache.snapshot_view(&repo, &commit);
        let has = |path: &str, etag: &str| view.has_pointer(&listed(path, etag, 1));
        assert!(has("sub/deeper/model.bin", &there));
        assert!(!has("dangling.bin", &gone));
        // Where a link points is not read to plan a sync (verify reads it): a link counts while
        // the blob of its file is there.
        for odd in ["shallow.bin", "swapped.bin", "outside.bin"] {
            assert!(has(odd, &there), "{odd}");
        }
        // A file where links are off is the content itself, if it has the listed size.
        assert!(has("plain.txt", &gone));
        assert!(!view.has_pointer(&listed("plain.txt", &gone, 2)));
        assert!(!has("missing", &there));
        // A folder is not a file of the snapshot.
        assert!(!has("sub", &there));
        assert_eq!(view.entry("swapped.bin"), Some(&Entry::Link));
        assert_eq!(
            view.link_target("swapped.bin").as_deref(),
            Some(format!("../../blobs/{other}").as_str())
        );
        assert_eq!(view.entry("plain.txt"), Some(&Entry::File(1)));
        assert_eq!(view.entry("sub"), Some(&Entry::Other));
        let empty = cache.snapshot_view(&repo, &CommitId::parse(&"e".repeat(40)).unwrap());
        assert!(!empty.has_pointer(&listed("sub/deeper/model.bin", &there, 1)));
    }

    #[test]
    fn a_blob_may_link_into_the_shared_store_and_nowhere_else() {
        let (cache, repo, commit, dir) = fixture();
        let blobs = cache.repo_dir(&repo).join("blobs");
        let hash = format!("ab{}", "1".repeat(62));
        let store = cache.root.join("blobs/ab");
        fs::create_dir_all(&store).unwrap();
        fs::write(store.join(&hash), "shared").unwrap();
        fs::write(dir.path().join("outside"), "outside").unwrap();
        let etag = |c: &str| c.repeat(64);
        // The reference client's relative link, and an absolute one to the same place.
        symlink(format!("../../blobs/ab/{hash}"), &blobs.join(etag("1")));
        symlink(store.join(&hash), &blobs.join(etag("2")));
        // Into the store but not a store path (the prefix does not match), a missing payload,
        // and a link out of the cache.
        symlink(format!("../../blobs/cd/{hash}"), &blobs.join(etag("3")));
        symlink(
            format!("../../blobs/ab/ab{}", "2".repeat(62)),
            &blobs.join(etag("4")),
        );
        symlink(dir.path().join("outside"), &blobs.join(etag("5")));
        let view = cache.snapshot_view(&repo, &commit);
        for (name, expected) in [
            ("1", true),
            ("2", true),
            ("3", false),
            ("4", false),
            ("5", false),
        ] {
            assert_eq!(view.has_blob(&etag(name)), expected, "{name}");
            assert_eq!(cache.has_blob(&repo, &etag(name)), expected, "{name}");
        }

        let mut text = String::new();
        cache
            .open_blob(&repo, &etag("1"))
            .unwrap()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "shared");
        assert!(cache.open_blob(&repo, &etag("4")).unwrap().is_none());
        assert!(cache.open_blob(&repo, &etag("9")).unwrap().is_none());
        let error = cache.open_blob(&repo, &etag("5")).unwrap_err().to_string();
        assert!(
            error.contains(&format!(
                "blobs/{}`: it is a symbolic link, and not into the cache's shared blob store",
                etag("5")
            )),
            "{error}"
        );
    }

    // `/dev/zero`: a file that never ends.
    #[cfg(unix)]
    #[test]
    fn refs_and_trees_are_read_without_following_links_and_within_bounds() {
        let (cache, repo, commit, dir) = fixture();
        let refs = cache.repo_dir(&repo).join("refs");
        fs::create_dir_all(&refs).unwrap();
        assert_eq!(cache.read_ref(&repo, "main").unwrap(), None);
        fs::write(refs.join("main"), commit.as_str()).unwrap();
        assert_eq!(cache.read_ref(&repo, "main").unwrap(), Some(commit.clone()));

        // A link is refused even to a valid ref; /dev/zero would never end.
        fs::write(dir.path().join("ref"), commit.as_str()).unwrap();
        symlink(dir.path().join("ref"), &refs.join("linked"));
        symlink("/dev/zero", &refs.join("zero"));
        for name in ["linked", "zero"] {
            let error = cache.read_ref(&repo, name).unwrap_err().to_string();
            assert_eq!(
                error,
                format!(
                    "failed to read the ref `{}`: it is a symbolic link, and facehugger never follows one where the cache keeps a file; remove it",
                    refs.join(name)
                )
            );
        }
        fs::write(refs.join("long"), format!("{commit}\n")).unwrap();
        let error = cache.read_ref(&repo, "long").unwrap_err().to_string();
        assert!(
            error.ends_with("refs/long`: it holds more than 40 bytes, more than such a file can"),
            "{error}"
        );
        fs::write(refs.join("short"), "abc").unwrap();
        let error = cache.read_ref(&repo, "short").unwrap_err().to_string();
        assert!(
            error.ends_with("refs/short`: it does not hold a 40-hex commit id"),
            "{error}"
        );
        fs::create_dir(refs.join("folder")).unwrap();
        let error = cache.read_ref(&repo, "folder").unwrap_err().to_string();
        assert!(
            error.ends_with("refs/folder`: it is not a regular file"),
            "{error}"
        );

        let trees = cache.repo_dir(&repo).join("trees");
        fs::create_dir_all(&trees).unwrap();
        assert_eq!(cache.read_tree(&repo, &commit).unwrap(), None);
        symlink("/dev/zero", &cache.tree_path(&repo, &commit));
        let error = cache.read_tree(&repo, &commit).unwrap_err().to_string();
        assert!(
            error.starts_with("failed to read the file listing `"),
            "{error}"
        );
        assert!(error.contains("it is a symbolic link"), "{error}");
        // Another format is no error: the reference client asks the Hub again.
        fs::remove_file(cache.tree_path(&repo, &commit)).unwrap();
        fs::write(cache.tree_path(&repo, &commit), "{\"format_version\": 2}").unwrap();
        assert_eq!(cache.read_tree(&repo, &commit).unwrap(), None);
    }
}
