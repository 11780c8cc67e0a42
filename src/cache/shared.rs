//! The cache-wide shared Xet store of huggingface_hub 2.4.0 (`utils/_shared_blobs.py`), which
//! keeps one copy of a Xet file that several repos (or revisions) hold:
//!
//! ```text
//! <cache>/blobs/.huggingface-shared-blobs    the marker: "1\n"; without it the folder is not a store
//! <cache>/blobs/ab/ab12…ef                   the payload, named by its Xet hash, read-only
//! <cache>/blobs/ab/ab12…ef.refs              one line per repo blob linking to it: `models--a--b/blobs/<etag>`
//! <cache>/blobs/ab/ab12…ef.lock              flock'ed while references are added or dropped; never deleted
//! <cache>/models--a--b/blobs/<etag> -> ../../blobs/ab/ab12…ef
//! ```
//!
//! The `.refs` manifest is a hint, not the truth: a line counts only while the repo blob it names
//! is still a link to the payload. A payload is deleted only when its manifest is readable and no
//! line counts; anything missing or unreadable leaks the payload rather than risk deleting
//! content someone uses. Every change to a manifest happens under the payload's lock, taken
//! with [`SharedStore::lock`]; what needs the lock is a method of the [`StoreLock`] it returns.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};

use camino::{Utf8Path, Utf8PathBuf};

use super::Cache;
use super::scan::normalize;
use crate::files::{IoError, open_regular, unique_sibling};
use crate::hash::check_reader;
use crate::platform::{open_no_follow, remove_file, rename, set_mode, symlink_file};
use crate::repo::{Repo, RepoFile, is_lower_hex};

/// The store's folder, at the cache root.
const STORE_DIR: &str = "blobs";
/// The marker file that makes `<cache>/blobs` a store, and its exact content.
const MARKER: &str = ".huggingface-shared-blobs";
const MARKER_CONTENT: &[u8] = b"1\n";
/// Repo folder prefixes a manifest line may name (huggingface_hub's repo types, kernels included).
const REPO_PREFIXES: [&str; 4] = ["datasets--", "kernels--", "models--", "spaces--"];

/// The shared store of one cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SharedStore {
    root: Utf8PathBuf,
}

/// A payload's lock, held until dropped. Reading and changing its manifest, and deleting the
/// payload, go through here so that they cannot happen without it.
#[derive(Debug)]
pub(crate) struct StoreLock<'a> {
    store: &'a SharedStore,
    hash: String,
    _file: File,
}

/// What [`StoreLock::sweep`] left and freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Swept {
    /// Valid references left in the manifest.
    pub(crate) references: usize,
    /// Bytes of the payload, if it was deleted.
    pub(crate) freed: u64,
}

impl SharedStore {
    /// The store of the cache at `root` (which may not have one).
    pub(crate) fn new(root: impl Into<Utf8PathBuf>) -> SharedStore {
        SharedStore { root: root.into() }
    }

    /// `<cache>/blobs`.
    pub(crate) fn dir(&self) -> Utf8PathBuf {
        self.root.join(STORE_DIR)
    }

    /// True if `<cache>/blobs` is a real folder holding the marker with the layout version
    /// facehugger knows. Without it, nothing here treats the folder as a store.
    pub(crate) fn is_marked(&self) -> bool {
        let dir = self.dir();
        let marker = dir.join(MARKER);
        let real = |path: &Utf8Path, want_dir: bool| {
            fs::symlink_metadata(path).is_ok_and(|meta| {
                if want_dir {
                    meta.is_dir()
                } else {
                    meta.is_file()
                }
            })
        };
        real(&dir, true)
            && real(&marker, false)
            && fs::read(&marker).is_ok_and(|content| content == MARKER_CONTENT)
    }

    /// The store's payload that a repo blob links to, if it is such a link (see
    /// [`SharedStore::linked_hash`]); nothing is followed.
    pub(crate) fn linked_payload(&self, repo_blob: &Utf8Path) -> Option<Utf8PathBuf> {
        self.payload_path(&self.linked_hash(repo_blob)?)
    }

    /// `<cache>/blobs/<h[..2]>/<h>`, if `hash` is a Xet hash (64 lowercase hex).
    pub(crate) fn payload_path(&self, hash: &str) -> Option<Utf8PathBuf> {
        is_lower_hex(hash, 64).then(|| self.dir().join(&hash[..2]).join(hash))
    }

    /// `<cache>/blobs/<h[..2]>/<h>.refs`.
    pub(crate) fn manifest_path(&self, hash: &str) -> Option<Utf8PathBuf> {
        self.payload_path(hash)
            .map(|path| Utf8PathBuf::from(format!("{path}.refs")))
    }

    /// `<cache>/blobs/<h[..2]>/<h>.lock`.
    pub(crate) fn lock_path(&self, hash: &str) -> Option<Utf8PathBuf> {
        self.payload_path(hash)
            .map(|path| Utf8PathBuf::from(format!("{path}.lock")))
    }

    /// The manifest line for a repo's blob: `models--acme--tiny/blobs/<etag>`.
    pub(crate) fn reference(repo: &Repo, etag: &str) -> String {
        format!("{}/blobs/{etag}", repo.folder_name())
    }

    /// What a repo's `blobs/<etag>` link into the store holds: `../../blobs/<h[..2]>/<h>`.
    pub(crate) fn link_target(hash: &str) -> String {
        format!("../../{STORE_DIR}/{}/{hash}", &hash[..hash.len().min(2)])
    }

    /// The Xet hash of the payload that a repo blob (`<cache>/<repo>/blobs/<etag>`) links to, if
    /// it is a link into this store (relative or absolute; the payload need not exist).
    pub(crate) fn linked_hash(&self, repo_blob: &Utf8Path) -> Option<String> {
        let target = fs::read_link(repo_blob).ok()?;
        let target = Utf8PathBuf::from_path_buf(target).ok()?;
        self.hash_of_target(repo_blob, &target)
    }

    /// The Xet hash a link at `link` with this target leads to, if it leads into the store (the
    /// link need not be there: a blob moved away is judged where it was).
    pub(crate) fn hash_of_target(&self, link: &Utf8Path, target: &Utf8Path) -> Option<String> {
        // Made absolute first: `..` taken by the letter must not climb out of a relative root.
        let absolute = |path: &Utf8Path| {
            let path = std::path::absolute(path).ok()?;
            Some(normalize(&Utf8PathBuf::from_path_buf(path).ok()?))
        };
        let resolved = absolute(&link.parent()?.join(target))?;
        let inside = resolved.strip_prefix(absolute(&self.dir())?).ok()?;
        let mut parts = inside.components().map(|part| part.as_str());
        let (Some(prefix), Some(hash), None) = (parts.next(), parts.next(), parts.next()) else {
            return None;
        };
        (is_lower_hex(hash, 64) && hash.starts_with(prefix)).then(|| hash.to_owned())
    }

    /// Takes the payload's lock (BSD `flock` on `<h>.lock`, mode 0666 so that every user of a
    /// shared cache can take it; never through a link; never deleted). Blocks until it is free.
    pub(crate) fn lock(&self, hash: &str) -> Result<StoreLock<'_>, IoError> {
        let path = self
            .lock_path(hash)
            .ok_or_else(|| invalid_hash(&self.dir(), hash))?;
        let file = open_no_follow(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            &path,
        )
        .map_err(|err| IoError::new("open the shared blob lock", &path, err))?;
        let regular = file.metadata().is_ok_and(|meta| meta.is_file());
        if !regular {
            let error = io::Error::other("it is not a regular file");
            return Err(IoError::new("open the shared blob lock", &path, error));
        }
        share_with_everyone(&file);
        file.lock()
            .map_err(|err| IoError::new("lock", &path, err))?;
        Ok(StoreLock {
            store: self,
            hash: hash.to_owned(),
            _file: file,
        })
    }

    /// The bytes a removal would free: the payload's size when it has a readable manifest, at
    /// least one valid reference, and every valid reference is among `dropped` (manifest lines).
    /// What the reference client predicts before it deletes; reads without the lock.
    pub(crate) fn freed_if_dropped(&self, hash: &str, dropped: &[String]) -> u64 {
        match self.valid_references(hash) {
            Some(valid) if !valid.is_empty() && valid.iter().all(|line| dropped.contains(line)) => {
                self.payload_size(hash)
            }
            _ => 0,
        }
    }

    /// The payload's size, if it is a regular file.
    fn payload_size(&self, hash: &str) -> u64 {
        self.payload_path(hash)
            .and_then(|path| fs::symlink_metadata(path).ok())
            .filter(|meta| meta.is_file())
            .map_or(0, |meta| meta.len())
    }

    /// The manifest's lines that still name a link to the payload; `None` when the manifest is
    /// missing or unreadable, or a link cannot be read (then nothing may be deleted).
    fn valid_references(&self, hash: &str) -> Option<Vec<String>> {
        let manifest = self.manifest_path(hash)?;
        if !fs::symlink_metadata(&manifest).is_ok_and(|meta| meta.is_file()) {
            return None;
        }
        let text = fs::read_to_string(&manifest).ok()?;
        let mut valid: Vec<String> = Vec::new();
        for line in text.lines() {
            if !is_reference_line(line) || valid.iter().any(|known| known == line) {
                continue;
            }
            let link = self.root.join(line);
            match fs::read_link(&link) {
                Ok(target) => {
                    let target = Utf8PathBuf::from_path_buf(target).ok();
                    let leads_here = target
                        .and_then(|target| self.hash_of_target(&link, &target))
                        .is_some_and(|linked| linked == hash);
                    if leads_here {
                        valid.push(line.to_owned());
                    }
                }
                // Gone, or not a link: this line no longer holds the payload.
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::InvalidInput
                    ) => {}
                Err(_) => return None,
            }
        }
        Some(valid)
    }
}

impl StoreLock<'_> {
    /// The manifest lines that still hold the payload (see [`SharedStore`]); `None` when the
    /// manifest is missing or unreadable.
    pub(crate) fn references(&self) -> Option<Vec<String>> {
        self.store.valid_references(&self.hash)
    }

    /// Appends a reference to the manifest and flushes it: do it before the repo blob becomes a
    /// link, so that the link is never unaccounted for. Mode 0666, never through a link.
    #[allow(dead_code)] // For the downloader, which links blobs into the store.
    pub(crate) fn append_reference(&self, reference: &str) -> Result<(), IoError> {
        let path = self
            .store
            .manifest_path(&self.hash)
            .ok_or_else(|| invalid_hash(&self.store.dir(), &self.hash))?;
        if !is_reference_line(reference) {
            let error = io::Error::other(format!("`{reference}` is not a repo blob path"));
            return Err(IoError::new("add a reference to", &path, error));
        }
        let result = open_no_follow(OpenOptions::new().append(true).create(true), &path).and_then(
            |mut file| {
                share_with_everyone(&file);
                file.write_all(format!("{reference}\n").as_bytes())?;
                file.sync_all()
            },
        );
        result.map_err(|err| IoError::new("add a reference to", &path, err))
    }

    /// Drops the manifest's lines that no longer hold the payload (their repo blob is gone or
    /// points elsewhere); when none is left, deletes the payload and its manifest. A missing or
    /// unreadable manifest changes nothing. Call it after removing repo blobs that linked here.
    pub(crate) fn sweep(&self) -> Result<Swept, IoError> {
        let Some(valid) = self.references() else {
            return Ok(Swept::default());
        };
        let (Some(manifest), Some(payload)) = (
            self.store.manifest_path(&self.hash),
            self.store.payload_path(&self.hash),
        ) else {
            return Ok(Swept::default());
        };
        if !valid.is_empty() {
            let mut text = String::new();
            for line in &valid {
                text.push_str(line);
                text.push('\n');
            }
            if fs::read_to_string(&manifest).ok().as_deref() != Some(text.as_str()) {
                replace_manifest(&manifest, &text)?;
            }
            return Ok(Swept {
                references: valid.len(),
                freed: 0,
            });
        }
        let freed = self.store.payload_size(&self.hash);
        if freed > 0 || fs::symlink_metadata(&payload).is_ok_and(|meta| meta.is_file()) {
            remove_file(&payload)
                .map_err(|err| IoError::new("remove the shared blob", &payload, err))?;
        }
        match remove_file(&manifest) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                return Err(IoError::new(
                    "remove the shared blob manifest",
                    &manifest,
                    err,
                ));
            }
            _ => {}
        }
        Ok(Swept {
            references: 0,
            freed,
        })
    }
}

/// What the shared store had for a file, in [`Cache::reuse_shared_blob`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reuse {
    /// The repo's `blobs/<etag>` now links to the store's verified copy.
    Linked,
    /// No usable copy (no marked store, no entry of the file's size, or it could not be linked):
    /// the file is downloaded as usual.
    Absent,
    /// The store's copy does not hash to the file's etag: it is left alone (other repos link to
    /// it) and the file is downloaded.
    Corrupt {
        /// The store's file.
        payload: Utf8PathBuf,
        /// The repo blobs that link to it (`.refs` lines that still hold).
        users: Vec<String>,
    },
}

impl Cache {
    /// Links the repo's `blobs/<etag>` to the shared Xet store's copy of `file`, as huggingface_hub
    /// 2.4.0 reuses one, when the store (marked) has a regular file of the right size under
    /// the file's Xet hash and its bytes hash to the file's etag: the store's lock taken, the
    /// link made under a temporary name, the reference appended to `<hash>.refs` and flushed,
    /// then the link renamed into place. Call it holding the blob's lock. Failing to link is
    /// not an error: the file is downloaded instead, as the reference client does.
    pub(crate) fn reuse_shared_blob(&self, repo: &Repo, file: &RepoFile) -> Reuse {
        // The store lives only where links work (huggingface_hub uses it only then, and not
        // with HF_HUB_DISABLE_SYMLINKS): a repo blob links into it.
        if !matches!(self.links_work(repo), Ok(true)) {
            return Reuse::Absent;
        }
        let store = self.store();
        let Some(hash) = file.xet_hash.as_deref() else {
            return Reuse::Absent;
        };
        let Some(payload) = store.payload_path(hash) else {
            return Reuse::Absent;
        };
        let usable = || {
            fs::symlink_metadata(&payload)
                .is_ok_and(|meta| meta.is_file() && meta.len() == file.size)
        };
        if !usable() || !store.is_marked() {
            return Reuse::Absent;
        }
        let Ok(lock) = store.lock(hash) else {
            return Reuse::Absent;
        };
        if !usable() {
            return Reuse::Absent;
        }
        // The reference client trusts the entry's size; facehugger installs nothing unverified.
        let verdict = open_regular(&payload).and_then(|reader| check_reader(reader, file));
        match verdict {
            Ok((_, Ok(()))) => {}
            Ok((_, Err(_))) => {
                return Reuse::Corrupt {
                    users: lock.references().unwrap_or_default(),
                    payload,
                };
            }
            Err(_) => return Reuse::Absent,
        }
        match self.link_into_store(repo, file.etag(), hash, &lock) {
            Ok(()) => Reuse::Linked,
            Err(_) => Reuse::Absent,
        }
    }

    /// Makes `blobs/<etag>` a relative link to the store's payload `hash`, its reference added
    /// to the manifest before the link appears.
    fn link_into_store(
        &self,
        repo: &Repo,
        etag: &str,
        hash: &str,
        lock: &StoreLock<'_>,
    ) -> Result<(), IoError> {
        let blob = self.blob_path(repo, etag);
        let temp = unique_sibling(&blob, "shared");
        symlink_file(&SharedStore::link_target(hash), &temp)
            .map_err(|err| IoError::new("link the shared blob", &temp, err))?;
        let linked = lock
            .append_reference(&SharedStore::reference(repo, etag))
            .and_then(|()| {
                rename(&temp, &blob).map_err(|err| IoError::new("link the shared blob", &blob, err))
            });
        if linked.is_err() {
            let _ = remove_file(&temp);
        }
        linked
    }
}

/// A manifest line as huggingface_hub writes one: `<type>s--<name>/blobs/<etag>`, relative, with
/// no `..`.
fn is_reference_line(line: &str) -> bool {
    let parts: Vec<&str> = line.split('/').collect();
    matches!(parts.as_slice(), [repo, "blobs", blob]
        if REPO_PREFIXES.iter().any(|prefix| repo.len() > prefix.len() && repo.starts_with(prefix))
            && !blob.is_empty() && *blob != "." && *blob != ".." && !line.contains(['\\', '\r', '\0']))
}

/// Replaces the manifest atomically (a unique temporary file, flushed, then renamed), mode 0666.
fn replace_manifest(path: &Utf8Path, text: &str) -> Result<(), IoError> {
    let temp = unique_sibling(path, "tmp");
    let result = open_no_follow(OpenOptions::new().write(true).create_new(true), &temp)
        .and_then(|mut file| {
            share_with_everyone(&file);
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| rename(&temp, path));
    result.map_err(|err| {
        let _ = remove_file(&temp);
        IoError::new("rewrite the shared blob manifest", path, err)
    })
}

/// Mode 0666 whatever the umask: the store's locks and manifests serve every user of the cache.
fn share_with_everyone(file: &File) {
    let _ = set_mode(file, 0o666);
}

fn invalid_hash(dir: &Utf8Path, hash: &str) -> IoError {
    let shown = crate::text::shown(hash, crate::text::MAX_SHOWN_CHARS);
    IoError::new(
        "use the shared blob store",
        dir,
        io::Error::other(format!(
            "`{shown}` is not a Xet hash (64 lowercase hex digits)"
        )),
    )
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::repo::RepoType;

    fn symlink(target: String, link: impl AsRef<std::path::Path>) -> std::io::Result<()> {
        symlink_file(&target, link)
    }

    /// A cache with a marked store and `repos` linking `blobs/e` to one payload.
    fn store_with(dir: &Utf8Path, hash: &str, repos: &[&Repo]) -> SharedStore {
        let store = SharedStore::new(dir);
        fs::create_dir_all(store.dir().join(&hash[..2])).unwrap();
        fs::write(store.dir().join(MARKER), "1\n").unwrap();
        fs::write(store.payload_path(hash).unwrap(), "payload").unwrap();
        let lock = store.lock(hash).unwrap();
        for repo in repos {
            let blobs = dir.join(repo.folder_name()).join("blobs");
            fs::create_dir_all(&blobs).unwrap();
            lock.append_reference(&SharedStore::reference(repo, "e"))
                .unwrap();
            symlink(SharedStore::link_target(hash), blobs.join("e")).unwrap();
        }
        store
    }

    fn temp() -> (tempfile::TempDir, Utf8PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        (dir, path)
    }

    #[test]
    fn paths_follow_the_reference_layout() {
        let store = SharedStore::new("/c");
        let hash = "ab".repeat(32);
        assert_eq!(
            store.payload_path(&hash).unwrap(),
            format!("/c/blobs/ab/{hash}")
        );
        assert_eq!(
            store.manifest_path(&hash).unwrap(),
            format!("/c/blobs/ab/{hash}.refs")
        );
        assert_eq!(
            store.lock_path(&hash).unwrap(),
            format!("/c/blobs/ab/{hash}.lock")
        );
        assert_eq!(store.payload_path("AB"), None);
        let repo = Repo::new(RepoType::Dataset, "a/b").unwrap();
        assert_eq!(SharedStore::reference(&repo, "e"), "datasets--a--b/blobs/e");
        assert_eq!(
            SharedStore::link_target(&hash),
            format!("../../blobs/ab/{hash}")
        );
    }

    #[test]
    fn only_a_marked_folder_is_a_store() {
        let (_keep, dir) = temp();
        let store = SharedStore::new(&dir);
        assert!(!store.is_marked());
        fs::create_dir(store.dir()).unwrap();
        fs::write(store.dir().join(MARKER), "2\n").unwrap();
        assert!(!store.is_marked());
        fs::write(store.dir().join(MARKER), "1\n").unwrap();
        assert!(store.is_marked());
    }

    #[test]
    fn a_payload_goes_with_its_last_reference() {
        let (_keep, dir) = temp();
        let hash = "cd".repeat(32);
        let a = Repo::new(RepoType::Model, "o/a").unwrap();
        let b = Repo::new(RepoType::Model, "o/b").unwrap();
        let store = store_with(&dir, &hash, &[&a, &b]);
        let a_blob = dir.join("models--o--a/blobs/e");
        assert_eq!(store.linked_hash(&a_blob).as_deref(), Some(hash.as_str()));
        let both = vec![
            SharedStore::reference(&a, "e"),
            SharedStore::reference(&b, "e"),
        ];
        assert_eq!(store.freed_if_dropped(&hash, &both[..1]), 0);
        assert_eq!(store.freed_if_dropped(&hash, &both), 7);

        // One repo's link goes: the payload stays, the manifest keeps the other line.
        fs::remove_file(&a_blob).unwrap();
        let swept = store.lock(&hash).unwrap().sweep().unwrap();
        assert_eq!(
            swept,
            Swept {
                references: 1,
                freed: 0
            }
        );
        let manifest = store.manifest_path(&hash).unwrap();
        assert_eq!(
            fs::read_to_string(&manifest).unwrap(),
            "models--o--b/blobs/e\n"
        );
        assert!(store.payload_path(&hash).unwrap().is_file());

        // The last one goes: so do the payload and its manifest, not the lock.
        fs::remove_file(dir.join("models--o--b/blobs/e")).unwrap();
        let swept = store.lock(&hash).unwrap().sweep().unwrap();
        assert_eq!(
            swept,
            Swept {
                references: 0,
                freed: 7
            }
        );
        assert!(!store.payload_path(&hash).unwrap().exists());
        assert!(!manifest.exists());
        assert!(store.lock_path(&hash).unwrap().is_file());
    }

    #[test]
    fn without_a_readable_manifest_nothing_is_deleted() {
        let (_keep, dir) = temp();
        let hash = "ef".repeat(32);
        let a = Repo::new(RepoType::Model, "o/a").unwrap();
        let store = store_with(&dir, &hash, &[&a]);
        fs::remove_file(dir.join("models--o--a/blobs/e")).unwrap();
        fs::remove_file(store.manifest_path(&hash).unwrap()).unwrap();
        let swept = store.lock(&hash).unwrap().sweep().unwrap();
        assert_eq!(swept, Swept::default());
        assert!(store.payload_path(&hash).unwrap().is_file());
    }

    #[test]
    fn foreign_lines_and_links_do_not_count() {
        let (_keep, dir) = temp();
        let hash = "0a".repeat(32);
        let other = "0b".repeat(32);
        let a = Repo::new(RepoType::Model, "o/a").unwrap();
        let store = store_with(&dir, &hash, &[&a]);
        let lock = store.lock(&hash).unwrap();
        assert!(lock.append_reference("../outside/blobs/e").is_err());
        // A repo blob that links to another payload is not a reference to this one.
        let b_blobs = dir.join("models--o--b/blobs");
        fs::create_dir_all(&b_blobs).unwrap();
        symlink(SharedStore::link_target(&other), b_blobs.join("e")).unwrap();
        lock.append_reference("models--o--b/blobs/e").unwrap();
        assert_eq!(
            lock.references().unwrap(),
            vec!["models--o--a/blobs/e".to_owned()]
        );
        assert_eq!(
            store.linked_hash(&b_blobs.join("e")).as_deref(),
            Some(other.as_str())
        );
    }
}
