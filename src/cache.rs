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
//! Paths are pure functions of the repo, commit, ref, etag and file path; the I/O below writes
//! every file under a unique temporary name and renames it into place, so a crash never leaves a
//! half-written ref, tree or blob where a reader would take it for complete.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::sync::Mutex;

use camino::{Utf8Path, Utf8PathBuf};

use crate::error::Error;
use crate::repo::{Repo, RepoFile, is_commit_sha, is_lower_hex, validate_repo_path};

const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by huggingface_hub.\n# For information about cache directory tags, see:\n#\thttps://bford.info/cachedir/\n";

/// An HF hub cache directory.
#[derive(Debug)]
pub struct Cache {
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
    pub fn new(root: impl Into<Utf8PathBuf>) -> Cache {
        Cache {
            root: root.into(),
            checked_dirs: Mutex::default(),
        }
    }

    /// The cache directory the reference client would use, from the environment:
    /// `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, else
    /// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`; `~` and `$VAR` expanded.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Cache {
        let set = |name: &str| env(name).filter(|value| !value.is_empty());
        let root = set("HF_HUB_CACHE")
            .or_else(|| set("HUGGINGFACE_HUB_CACHE"))
            .map(|dir| expand(&dir, env))
            .unwrap_or_else(|| format!("{}/hub", hf_home(env)));
        Cache::new(root)
    }

    /// The cache root.
    pub fn root(&self) -> &Utf8Path {
        &self.root
    }

    /// `<cache>/models--acme--tiny`.
    pub fn repo_dir(&self, repo: &Repo) -> Utf8PathBuf {
        self.root.join(repo.folder_name())
    }

    /// `<repo>/blobs/<etag>`.
    pub fn blob_path(&self, repo: &Repo, etag: &str) -> Utf8PathBuf {
        self.repo_dir(repo).join("blobs").join(etag)
    }

    /// `<repo>/snapshots/<commit>`.
    pub fn snapshot_dir(&self, repo: &Repo, commit: &str) -> Utf8PathBuf {
        self.repo_dir(repo).join("snapshots").join(commit)
    }

    /// `<repo>/snapshots/<commit>/<path>`.
    pub fn pointer_path(&self, repo: &Repo, commit: &str, path: &str) -> Utf8PathBuf {
        self.snapshot_dir(repo, commit).join(path)
    }

    /// `<repo>/refs/<ref>`; `refs/pr/1` nests as `refs/refs/pr/1`.
    pub fn ref_path(&self, repo: &Repo, reference: &str) -> Utf8PathBuf {
        self.repo_dir(repo).join("refs").join(reference)
    }

    /// `<repo>/trees/<commit>.json`.
    pub fn tree_path(&self, repo: &Repo, commit: &str) -> Utf8PathBuf {
        self.repo_dir(repo)
            .join("trees")
            .join(format!("{commit}.json"))
    }

    /// `<cache>/.locks/<repo folder>/<etag>.lock`.
    pub fn lock_path(&self, repo: &Repo, etag: &str) -> Utf8PathBuf {
        self.root
            .join(".locks")
            .join(repo.folder_name())
            .join(format!("{etag}.lock"))
    }

    /// The commit `refs/<ref>` points at, if the cache has it (read without trimming, as the
    /// reference client reads it: a ref with a newline is not a valid ref).
    pub fn read_ref(&self, repo: &Repo, reference: &str) -> Option<String> {
        let text = fs::read_to_string(self.ref_path(repo, reference)).ok()?;
        is_commit_sha(&text).then_some(text)
    }

    /// Points `refs/<ref>` at `commit`: exactly 40 bytes, atomically, only if it changes.
    pub fn write_ref(&self, repo: &Repo, reference: &str, commit: &str) -> Result<(), Error> {
        if reference == commit || self.read_ref(repo, reference).as_deref() == Some(commit) {
            return Ok(());
        }
        let path = self.ref_path(repo, reference);
        // The rename replaces a link at `refs/<ref>` itself; links above it are refused.
        self.create_dirs(
            &self.repo_dir(repo),
            parent_of(&path),
            "create the refs folder",
        )?;
        write_atomically(&path, commit.as_bytes(), 0o644)
    }

    /// Writes `CACHEDIR.TAG` at the cache root if it is missing.
    pub fn ensure_tag(&self) -> Result<(), Error> {
        let path = self.root.join("CACHEDIR.TAG");
        if path.exists() {
            return Ok(());
        }
        write_atomically(&path, CACHEDIR_TAG.as_bytes(), 0o644)
    }

    /// The commit's file listing from `trees/<commit>.json`, if cached and valid.
    pub fn read_tree(&self, repo: &Repo, commit: &str) -> Option<Vec<RepoFile>> {
        let text = fs::read_to_string(self.tree_path(repo, commit)).ok()?;
        parse_tree(&text)
    }

    /// Writes `trees/<commit>.json` in the reference client's exact format.
    pub fn write_tree(&self, repo: &Repo, commit: &str, files: &[RepoFile]) -> Result<(), Error> {
        let path = self.tree_path(repo, commit);
        self.create_dirs(
            &self.repo_dir(repo),
            parent_of(&path),
            "create the trees folder",
        )?;
        write_atomically(&path, render_tree(files).as_bytes(), 0o600)
    }

    /// True if `snapshots/<commit>/<path>` exists and leads to content (a dangling link does not).
    pub fn has_pointer(&self, repo: &Repo, commit: &str, path: &str) -> bool {
        self.pointer_path(repo, commit, path).exists()
    }

    /// What `snapshots/<commit>/` and `blobs/` of `repo` hold, read with one listing per folder.
    pub fn snapshot_view(&self, repo: &Repo, commit: &str) -> SnapshotView {
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
    pub fn has_blob(&self, repo: &Repo, etag: &str) -> bool {
        self.blob_path(repo, etag).is_file()
    }

    /// Makes `snapshots/<commit>/<path>` a relative symlink to `blobs/<etag>`, replacing whatever
    /// was there.
    pub fn link(&self, repo: &Repo, commit: &str, path: &str, etag: &str) -> Result<(), Error> {
        let pointer = self.pointer_path(repo, commit, path);
        let target = relative_blob_target(path, etag);
        if let Ok(existing) = fs::read_link(&pointer)
            && existing.as_os_str() == target.as_str()
        {
            return Ok(());
        }
        let _writing = WRITES.read().unwrap_or_else(|e| e.into_inner());
        let parent = parent_of(&pointer);
        self.create_dirs(&self.repo_dir(repo), parent, "create the snapshot folder")?;
        // Link under a unique name, then rename over the pointer: atomic, no window without it.
        let temp = unique_sibling(&pointer, "tmp");
        std::os::unix::fs::symlink(target.as_str(), &temp)
            .map_err(|err| Error::io("create the snapshot link", &temp, err))?;
        fs::rename(&temp, &pointer).map_err(|err| {
            let _ = fs::remove_file(&temp);
            Error::io("create the snapshot link", &pointer, err)
        })
    }

    /// Takes the reference client's lock for installing this blob: BSD `flock` on
    /// `.locks/<repo folder>/<etag>.lock`, mode 0664, never deleted. Blocks until it is free;
    /// released when the returned file is dropped. Also makes sure the `blobs` folder is a real
    /// folder: everything done under the lock (resuming, downloading, installing) writes there.
    pub fn lock_blob(&self, repo: &Repo, etag: &str) -> Result<File, Error> {
        let blobs = self.repo_dir(repo).join("blobs");
        self.create_dirs(&self.repo_dir(repo), &blobs, "create the blobs folder")?;
        let path = self.lock_path(repo, etag);
        let parent = parent_of(&path);
        self.create_dirs(&self.root, parent, "create the lock folder")?;
        // O_NOFOLLOW below is what makes this safe; checking first gives the clearer message.
        refuse_link(&path, "open the lock file")?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o664)
            .custom_flags(libc_o_nofollow())
            .open(&path)
            .map_err(|err| Error::io("open the lock file", &path, err))?;
        file.lock().map_err(|err| Error::io("lock", &path, err))?;
        // The umask may have narrowed the mode; other users of a shared cache need 0664.
        let _ = file.set_permissions(fs::Permissions::from_mode(0o664));
        Ok(file)
    }

    /// A new, unique `blobs/<etag>.<8hex>.incomplete` file to download into.
    pub fn create_incomplete(&self, repo: &Repo, etag: &str) -> Result<(Utf8PathBuf, File), Error> {
        let blob = self.blob_path(repo, etag);
        let parent = parent_of(&blob);
        self.create_dirs(&self.repo_dir(repo), parent, "create the blobs folder")?;
        let temp = unique_sibling(&blob, "incomplete");
        // Readable too: large files are hashed by reading back the chunks just written.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temp)
            .map_err(|err| Error::io("create the download file", &temp, err))?;
        Ok((temp, file))
    }

    /// The etags of the blobs of `repo` that have a partial download left by an earlier run:
    /// read once per sync, so that each file does not scan the folder again.
    pub fn partial_etags(&self, repo: &Repo) -> std::collections::HashSet<String> {
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

    /// The partial download of this blob that an earlier run left (interrupted, killed, or cut
    /// off), to resume; else a new file. Call it holding the blob's lock, so that no cooperating
    /// writer is using the file. When several are left, the longest is kept and the others removed.
    /// What the file holds is only trusted once the whole blob verifies.
    pub fn take_incomplete(&self, repo: &Repo, etag: &str) -> Result<(Utf8PathBuf, File), Error> {
        let blob = self.blob_path(repo, etag);
        let dir = parent_of(&blob);
        let prefix = format!("{etag}.");
        let mut partials: Vec<(u64, Utf8PathBuf)> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let is_partial = name.starts_with(&prefix)
                    && name.ends_with(".incomplete")
                    && !name.ends_with(CHUNKS_SUFFIX);
                // A symlink planted here is never written through.
                let meta = entry
                    .path()
                    .symlink_metadata()
                    .ok()
                    .filter(|m| m.is_file())?;
                is_partial.then(|| (meta.len(), dir.join(name)))
            })
            .collect();
        partials.sort();
        let Some((_, keep)) = partials.pop() else {
            return self.create_incomplete(repo, etag);
        };
        for (_, extra) in partials {
            remove_partial(&extra);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc_o_nofollow())
            .open(&keep)
            .map_err(|err| Error::io("reopen the partial download", &keep, err))?;
        Ok((keep, file))
    }

    /// Moves a verified download into `blobs/<etag>`.
    pub fn install_blob(&self, repo: &Repo, etag: &str, temp: &Utf8Path) -> Result<(), Error> {
        let blob = self.blob_path(repo, etag);
        fs::rename(temp, &blob).map_err(|err| Error::io("install the blob", &blob, err))
    }

    /// Creates the folder `dir` inside `base` and those between, as `create_dir_all` does, but
    /// never through a symbolic link: a link below `base` (planted by someone else who can write
    /// to a shared cache, say) would send facehugger's writes outside the cache, so it is refused
    /// with an error naming it. `base` itself (the cache root, a repo folder) may be a link:
    /// moving a cache or one big repo to another disk is the user's choice. This guards against
    /// links already there when a folder is first checked, not against one swapped in later.
    fn create_dirs(
        &self,
        base: &Utf8Path,
        dir: &Utf8Path,
        action: &'static str,
    ) -> Result<(), Error> {
        let mut checked = self.checked_dirs.lock().unwrap_or_else(|e| e.into_inner());
        if checked.contains(dir) {
            return Ok(());
        }
        let Ok(inside) = dir.strip_prefix(base) else {
            fs::create_dir_all(dir).map_err(|err| Error::io(action, dir, err))?;
            checked.insert(dir.to_owned());
            return Ok(());
        };
        if !checked.contains(base) {
            fs::create_dir_all(base).map_err(|err| Error::io(action, base, err))?;
            checked.insert(base.to_owned());
        }
        let mut current = base.to_owned();
        for component in inside.components() {
            current.push(component);
            if checked.contains(&current) {
                continue;
            }
            match fs::create_dir(&current) {
                Ok(()) => {}
                // There already, perhaps made by another writer just now: a folder is fine.
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                    refuse_link(&current, action)?;
                }
                Err(err) => return Err(Error::io(action, &current, err)),
            }
            checked.insert(current.clone());
        }
        Ok(())
    }
}

/// One snapshot of a repo and its blobs as listed once, so that planning a sync of thousands of
/// files costs a few folder listings instead of a `stat` per file (which walks the whole path
/// and follows the link). See [`Cache::snapshot_view`].
#[derive(Debug)]
pub struct SnapshotView {
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
    pub fn has_pointer(&self, path: &str, etag: &str) -> bool {
        match self.pointers.get(path) {
            Some(kind) if kind.is_symlink() => self.has_blob(etag),
            Some(kind) => kind.is_file(),
            None => false,
        }
    }

    /// True if the blob for `etag` is there: a file, or a link (into the shared Xet store, say)
    /// that leads to one.
    pub fn has_blob(&self, etag: &str) -> bool {
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
pub fn chunk_record_path(temp: &Utf8Path) -> Utf8PathBuf {
    let base = temp
        .as_str()
        .strip_suffix(".incomplete")
        .unwrap_or(temp.as_str());
    Utf8PathBuf::from(format!("{base}{CHUNKS_SUFFIX}"))
}

/// Removes a partial download and its chunk record.
pub fn remove_partial(temp: &Utf8Path) {
    let _ = fs::remove_file(temp);
    let _ = fs::remove_file(chunk_record_path(temp));
}

/// `O_NOFOLLOW`: a lock path that is a symlink planted by someone else is refused, not followed.
fn libc_o_nofollow() -> i32 {
    #[cfg(target_os = "linux")]
    {
        0o400000
    }
    #[cfg(not(target_os = "linux"))]
    {
        0x100
    }
}

/// `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`, expanded.
pub fn hf_home(env: &dyn Fn(&str) -> Option<String>) -> String {
    let set = |name: &str| env(name).filter(|value| !value.is_empty());
    match set("HF_HOME") {
        Some(home) => expand(&home, env),
        None => {
            let xdg = set("XDG_CACHE_HOME").unwrap_or_else(|| "~/.cache".to_owned());
            expand(&format!("{xdg}/huggingface"), env)
        }
    }
}

/// Python's `expandvars(expanduser(path))`: a leading `~` becomes `$HOME`; `$NAME` and `${NAME}`
/// are replaced when set and left as they are when not.
pub fn expand(path: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let path = match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match env("HOME") {
            Some(home) => format!("{home}{rest}"),
            None => path.to_owned(),
        },
        _ => path.to_owned(),
    };
    let mut out = String::with_capacity(path.len());
    let mut rest = path.as_str();
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        match env(name).filter(|_| !name.is_empty()) {
            Some(value) => out.push_str(&value),
            None => out.push_str(&rest[dollar..dollar + 1 + consumed]),
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

/// `../` once per folder between the pointer and the repo folder, then `blobs/<etag>`.
pub fn relative_blob_target(path: &str, etag: &str) -> String {
    let depth = 2 + path.matches('/').count();
    format!("{}blobs/{etag}", "../".repeat(depth))
}

fn parent_of(path: &Utf8Path) -> &Utf8Path {
    path.parent().unwrap_or(Utf8Path::new("."))
}

/// An error if `path` is a symbolic link: facehugger replaces links (by renaming over them) but
/// never opens or creates anything through one inside the cache.
fn refuse_link(path: &Utf8Path, action: &'static str) -> Result<(), Error> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::io(
            action,
            path,
            io::Error::other(
                "it is a symbolic link, and facehugger never writes through a link inside the cache; remove it",
            ),
        )),
        _ => Ok(()),
    }
}

/// `<path>.<8 random hex>.<suffix>`, as the reference client names its temporary files.
fn unique_sibling(path: &Utf8Path, suffix: &str) -> Utf8PathBuf {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let random = hasher.finish() as u32;
    Utf8PathBuf::from(format!("{path}.{random:08x}.{suffix}"))
}

/// Held (shared) while a small file is written and renamed into place; [`stop_writes`] takes
/// it exclusively so that an interrupted process never leaves a temporary file behind.
static WRITES: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Waits for the small writes in progress to finish and blocks new ones: call it before exiting
/// on Ctrl-C. Partial downloads need no such care: they are resumed, and verified, next time.
pub fn stop_writes() -> std::sync::RwLockWriteGuard<'static, ()> {
    WRITES.write().unwrap_or_else(|e| e.into_inner())
}

/// Writes a small file under a unique temporary name and renames it into place.
pub fn write_atomically(path: &Utf8Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let _writing = WRITES.read().unwrap_or_else(|e| e.into_inner());
    let parent = parent_of(path);
    fs::create_dir_all(parent).map_err(|err| Error::io("create the folder", parent, err))?;
    let temp = unique_sibling(path, "tmp");
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(contents)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temp, path));
    result.map_err(|err| {
        let _ = fs::remove_file(&temp);
        Error::io("write", path, err)
    })
}

/// Writes `contents` to `path` unless the file already holds exactly that. Returns whether it wrote.
pub fn write_if_changed(path: &Utf8Path, contents: &str) -> Result<bool, Error> {
    match fs::read(path) {
        Ok(existing) if existing == contents.as_bytes() => Ok(false),
        Ok(_) => write_atomically(path, contents.as_bytes(), 0o644).map(|()| true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            write_atomically(path, contents.as_bytes(), 0o644).map(|()| true)
        }
        Err(err) => Err(Error::io("read", path, err)),
    }
}

/// The tree cache as Python's `json.dump(indent=1)` writes it: one-space indent, ASCII escapes,
/// files sorted by path, no trailing newline.
fn render_tree(files: &[RepoFile]) -> String {
    let mut sorted: Vec<&RepoFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = String::from("{\n \"format_version\": 1,\n \"files\": {");
    for (index, file) in sorted.iter().enumerate() {
        out.push_str(if index == 0 { "\n" } else { ",\n" });
        out.push_str(&format!(
            "  {}: {{\n   \"size\": {},\n   \"blob_id\": {}",
            json_ascii(&file.path),
            file.size,
            json_ascii(&file.blob_id)
        ));
        if let Some(sha256) = &file.lfs_sha256 {
            out.push_str(&format!(
                ",\n   \"lfs_sha256\": {},\n   \"lfs_size\": {}",
                json_ascii(sha256),
                file.size
            ));
        }
        out.push_str("\n  }");
    }
    out.push_str(if sorted.is_empty() { "}\n}" } else { "\n }\n}" });
    out
}

/// A JSON string literal with every non-ASCII character escaped, as Python's `ensure_ascii`.
fn json_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

fn parse_tree(text: &str) -> Option<Vec<RepoFile>> {
    /// `trees/<commit>.json`; `deny_unknown_fields` is left out: a later client may add some.
    #[derive(serde::Deserialize)]
    struct TreeFile {
        format_version: u64,
        files: std::collections::BTreeMap<String, TreeEntry>,
    }
    #[derive(serde::Deserialize)]
    struct TreeEntry {
        size: u64,
        blob_id: String,
        lfs_sha256: Option<String>,
    }
    let tree: TreeFile = serde_json::from_str(text).ok()?;
    if tree.format_version != 1 {
        return None;
    }
    let mut files = Vec::with_capacity(tree.files.len());
    for (path, entry) in tree.files {
        let valid = validate_repo_path(&path).is_ok()
            && is_lower_hex(&entry.blob_id, 40)
            && entry
                .lfs_sha256
                .as_deref()
                .is_none_or(|sha| is_lower_hex(sha, 64));
        if !valid {
            return None;
        }
        files.push(RepoFile {
            path,
            size: entry.size,
            blob_id: entry.blob_id,
            lfs_sha256: entry.lfs_sha256,
        });
    }
    Some(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::RepoType;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn the_cache_location_follows_the_reference_client() {
        let root = |pairs| Cache::from_env(&env_of(pairs)).root().to_string();
        assert_eq!(root(&[("HOME", "/h")]), "/h/.cache/huggingface/hub");
        assert_eq!(
            root(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]),
            "/x/huggingface/hub"
        );
        assert_eq!(
            root(&[("HF_HOME", "/hf"), ("XDG_CACHE_HOME", "/x")]),
            "/hf/hub"
        );
        assert_eq!(
            root(&[("HF_HOME", "/hf"), ("HUGGINGFACE_HUB_CACHE", "/legacy")]),
            "/legacy"
        );
        assert_eq!(
            root(&[
                ("HOME", "/h"),
                ("HF_HUB_CACHE", "$HOME/new"),
                ("HUGGINGFACE_HUB_CACHE", "/legacy")
            ]),
            "/h/new"
        );
        assert_eq!(root(&[("HOME", "/h"), ("HF_HOME", "~/hfh")]), "/h/hfh/hub");
        assert_eq!(
            root(&[("HF_HUB_CACHE", "/a/${UNSET}/$ALSO")]),
            "/a/${UNSET}/$ALSO"
        );
    }

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
        let repo = Repo {
            repo_type: RepoType::Model,
            id: "acme/tiny".into(),
        };
        assert_eq!(
            cache.ref_path(&repo, "refs/pr/1"),
            "/c/models--acme--tiny/refs/refs/pr/1"
        );
        assert_eq!(
            cache.lock_path(&repo, "e"),
            "/c/.locks/models--acme--tiny/e.lock"
        );
        assert_eq!(
            cache.tree_path(&repo, "c0"),
            "/c/models--acme--tiny/trees/c0.json"
        );
    }

    #[test]
    fn the_tree_cache_matches_python_json_dump() {
        let files = vec![
            RepoFile {
                path: "z.bin".into(),
                size: 5,
                blob_id: "b".repeat(40),
                lfs_sha256: Some("c".repeat(64)),
            },
            RepoFile {
                path: "ü.txt".into(),
                size: 1,
                blob_id: "a".repeat(40),
                lfs_sha256: None,
            },
        ];
        let text = render_tree(&files);
        let expected = format!(
            "{{\n \"format_version\": 1,\n \"files\": {{\n  \"z.bin\": {{\n   \"size\": 5,\n   \"blob_id\": \"{b}\",\n   \"lfs_sha256\": \"{c}\",\n   \"lfs_size\": 5\n  }},\n  \"\\u00fc.txt\": {{\n   \"size\": 1,\n   \"blob_id\": \"{a}\"\n  }}\n }}\n}}",
            a = "a".repeat(40),
            b = "b".repeat(40),
            c = "c".repeat(64)
        );
        assert_eq!(text, expected);
        let mut back = parse_tree(&text).expect("parses");
        back.sort_by(|x, y| x.path.cmp(&y.path));
        assert_eq!(back, files);
        assert_eq!(
            render_tree(&[]),
            "{\n \"format_version\": 1,\n \"files\": {}\n}"
        );
    }

    #[test]
    fn a_snapshot_view_sees_what_stat_would() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(Utf8Path::from_path(dir.path()).unwrap());
        let repo = Repo {
            repo_type: RepoType::Model,
            id: "org/model".into(),
        };
        let commit = "c".repeat(40);
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
        let empty = cache.snapshot_view(&repo, &"d".repeat(40));
        assert!(!empty.has_pointer("sub/deeper/model.bin", &there));
    }

    #[test]
    fn folders_are_created_but_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        let outside = root.join("outside");
        fs::create_dir(&outside).unwrap();
        // The base may be a link (a repo folder moved to another disk)...
        let base = root.join("repo");
        std::os::unix::fs::symlink(&outside, &base).unwrap();
        let cache = Cache::new(root);
        cache
            .create_dirs(&base, &base.join("snapshots/c/sub"), "create")
            .unwrap();
        assert!(outside.join("snapshots/c/sub").is_dir());
        // ... but a link below it is refused, and nothing is created through it.
        std::os::unix::fs::symlink(&outside, base.join("snapshots/c/link")).unwrap();
        let error = cache
            .create_dirs(&base, &base.join("snapshots/c/link/x"), "create")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("snapshots/c/link`: it is a symbolic link"),
            "{error}"
        );
        assert!(!outside.join("x").exists());
    }
}
