//! File-system helpers: errors that name their path, files written atomically (a unique
//! temporary name, then a rename), and refusing to write through symbolic links.

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard};

use camino::{Utf8Path, Utf8PathBuf};

use crate::platform::{self, open_no_follow, remove_file, rename};

/// A file-system operation that failed, with what was being done and to which path, and for
/// the failures a user can act on (permissions, a full disk), what to check.
#[derive(Debug, thiserror::Error)]
#[error("failed to {action} `{path}`: {source}{hint}")]
pub struct IoError {
    /// What was being done, e.g. `create the blob`.
    pub action: &'static str,
    /// The path concerned.
    pub path: Utf8PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
    /// What to check, worked out when the error happened (the folder's owner then).
    hint: String,
}

impl IoError {
    /// Wraps an I/O error with the action and path it concerns.
    pub(crate) fn new(action: &'static str, path: &Utf8Path, source: io::Error) -> IoError {
        IoError {
            action,
            hint: hint(path, &source),
            path: path.to_owned(),
            source,
        }
    }
}

/// What to check for an error a user can act on; empty for the others. A path in an HF cache
/// (a folder above it holds the cache's `CACHEDIR.TAG`) may also be moved elsewhere.
fn hint(path: &Utf8Path, error: &io::Error) -> String {
    let cache = || {
        if in_hf_cache(path) {
            "; or point --cache-dir / HF_HUB_CACHE elsewhere"
        } else {
            ""
        }
    };
    match error.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            format!(" (the disk is full: free some space{})", cache())
        }
        io::ErrorKind::ReadOnlyFilesystem => {
            format!(" (the file system is mounted read-only{})", cache())
        }
        io::ErrorKind::PermissionDenied => {
            format!(" (permission denied: {}{})", who_may_write(path), cache())
        }
        _ => String::new(),
    }
}

/// Whether a folder above `path` is an HF hub cache: it holds the tag both clients write there.
fn in_hf_cache(path: &Utf8Path) -> bool {
    path.ancestors().skip(1).any(|folder| {
        fs::read_to_string(folder.join("CACHEDIR.TAG"))
            .is_ok_and(|tag| tag.contains("created by huggingface_hub"))
    })
}

/// The nearest folder above `path` that exists (where the write had to happen), named in full:
/// a relative path such as `.` would not say which folder it is.
fn nearest_folder(path: &Utf8Path) -> Option<(Utf8PathBuf, fs::Metadata)> {
    path.ancestors()
        .skip(1)
        .map(|folder| {
            if folder.as_str().is_empty() {
                Utf8Path::new(".")
            } else {
                folder
            }
        })
        .find_map(|folder| {
            let meta = fs::metadata(folder).ok()?;
            let full = fs::canonicalize(folder)
                .ok()
                .and_then(|full| Utf8PathBuf::try_from(full).ok());
            meta.is_dir()
                .then(|| (full.unwrap_or_else(|| folder.to_owned()), meta))
        })
}

/// Who may write where `path` is: the folder's owner and mode against the user facehugger runs as
/// (in a container, often another uid than the one owning a mounted folder). Windows has no uids
/// or modes: there it names the folder.
fn who_may_write(path: &Utf8Path) -> String {
    let Some((folder, meta)) = nearest_folder(path) else {
        return format!("check who may write `{path}`");
    };
    let (Some((owner, mode)), Some(me)) = (platform::owner_and_mode(&meta), platform::user_id())
    else {
        return format!("check that this user may write `{folder}`");
    };
    if owner == me {
        format!(
            "`{folder}` has mode {mode:o}: check that its owner, uid {me}, may write it and `{path}`"
        )
    } else {
        format!(
            "`{folder}` belongs to uid {owner} (mode {mode:o}) and facehugger runs as uid {me}: check who owns it"
        )
    }
}

/// The folder a path is in (`.` for a bare name).
pub(crate) fn parent_of(path: &Utf8Path) -> &Utf8Path {
    path.parent()
        .filter(|parent| !parent.as_str().is_empty())
        .unwrap_or(Utf8Path::new("."))
}

/// `<path>.<8 random hex>.<suffix>`, as the reference client names its temporary files.
pub(crate) fn unique_sibling(path: &Utf8Path, suffix: &str) -> Utf8PathBuf {
    // Random keys (drawn once per thread, then stepped for each RandomState) hashing a counter:
    // names differ across processes and calls, with no system call.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let random = hasher.finish() as u32;
    Utf8PathBuf::from(format!("{path}.{random:08x}.{suffix}"))
}

/// An error if `path` is a symbolic link: facehugger replaces links (by renaming over them) but
/// never opens or creates anything through one inside the cache.
pub(crate) fn refuse_link(path: &Utf8Path, action: &'static str) -> Result<(), IoError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(IoError::new(
            action,
            path,
            io::Error::other(
                "it is a symbolic link, and facehugger never writes through a link inside the cache; remove it",
            ),
        )),
        _ => Ok(()),
    }
}

/// Opens a file the cache keeps, to read it: never through a symbolic link, and only a regular
/// file (a FIFO would block the open, a device such as `/dev/zero` would never end). A missing
/// file is `NotFound`, for callers to whom that is no error.
pub(crate) fn open_regular(path: &Utf8Path) -> io::Result<File> {
    // Checked first for a clear message; O_NOFOLLOW and the check on what was opened close the
    // window in which the path could be swapped.
    check_regular(&fs::symlink_metadata(path)?)?;
    let file = open_no_follow(OpenOptions::new().read(true), path)?;
    check_regular(&file.metadata()?)?;
    Ok(file)
}

fn check_regular(meta: &fs::Metadata) -> io::Result<()> {
    if meta.file_type().is_symlink() {
        Err(io::Error::other(
            "it is a symbolic link, and facehugger never follows one where the cache keeps a file; remove it",
        ))
    } else if !meta.is_file() {
        Err(io::Error::other("it is not a regular file"))
    } else {
        Ok(())
    }
}

/// Reads a whole file the cache keeps as data (a ref, a tree listing, a chunk record), as
/// [`open_regular`] opens it, refusing one of more than `cap` bytes: what is read stays bounded
/// whatever was planted there. `Ok(None)` when there is no such file.
pub(crate) fn read_capped(
    path: &Utf8Path,
    cap: u64,
    action: &'static str,
) -> Result<Option<Vec<u8>>, IoError> {
    let file = match open_regular(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(IoError::new(action, path, err)),
    };
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|err| IoError::new(action, path, err))?;
    if bytes.len() as u64 > cap {
        return Err(IoError::new(
            action,
            path,
            io::Error::other(format!(
                "it holds more than {cap} bytes, more than such a file can"
            )),
        ));
    }
    Ok(Some(bytes))
}

/// Held (shared) while a small file is written and renamed into place; [`stop_writes`] takes
/// it exclusively so that an interrupted process never leaves a temporary file behind.
static WRITES: RwLock<()> = RwLock::new(());

/// Waits for the small writes in progress to finish and blocks new ones: call it before exiting
/// on Ctrl-C. Partial downloads need no such care: they are resumed, and verified, next time.
#[cfg(feature = "cli")]
pub(crate) fn stop_writes() -> std::sync::RwLockWriteGuard<'static, ()> {
    WRITES.write().unwrap_or_else(|e| e.into_inner())
}

/// Held while a small write is under way (see [`stop_writes`]).
pub(crate) fn writing() -> RwLockReadGuard<'static, ()> {
    WRITES.read().unwrap_or_else(|e| e.into_inner())
}

/// Writes a small file under a unique temporary name, flushes it, and renames it into place.
pub(crate) fn write_atomically(path: &Utf8Path, contents: &[u8], mode: u32) -> Result<(), IoError> {
    write_atomically_with(path, mode, |out| out.write_all(contents))
}

/// Replaces the small file at `path` (whose folder exists) under a unique temporary name and a
/// rename, without waiting for the disk: for a record that is rewritten many times a second and
/// that may be lost or stale after a power cut (a resume record: a stale one costs a failed
/// verification, never a bad file).
pub(crate) fn replace_unsynced(path: &Utf8Path, contents: &[u8]) -> Result<(), IoError> {
    let _writing = writing();
    let temp = unique_sibling(path, "tmp");
    let result = platform::with_mode(OpenOptions::new().write(true).create_new(true), 0o644)
        .open(&temp)
        .and_then(|mut file| file.write_all(contents))
        .and_then(|()| rename(&temp, path));
    result.map_err(|err| {
        let _ = remove_file(&temp);
        IoError::new("write", path, err)
    })
}

/// Writes a file as `write` makes it (through a buffer) under a unique temporary name, flushes
/// it, and renames it into place.
pub(crate) fn write_atomically_with(
    path: &Utf8Path,
    mode: u32,
    write: impl FnOnce(&mut io::BufWriter<File>) -> io::Result<()>,
) -> Result<(), IoError> {
    let _writing = writing();
    let parent = parent_of(path);
    fs::create_dir_all(parent).map_err(|err| IoError::new("create the folder", parent, err))?;
    let temp = unique_sibling(path, "tmp");
    let result = platform::with_mode(OpenOptions::new().write(true).create_new(true), mode)
        .open(&temp)
        .and_then(|file| {
            let mut out = io::BufWriter::new(file);
            write(&mut out)?;
            out.into_inner()
                .map_err(io::IntoInnerError::into_error)?
                .sync_all()
        })
        .and_then(|()| rename(&temp, path));
    result.map_err(|err| {
        let _ = remove_file(&temp);
        IoError::new("write", path, err)
    })
}

/// Writes `contents` to `path` unless the file already holds exactly that. Returns whether it
/// wrote.
pub(crate) fn write_if_changed(path: &Utf8Path, contents: &str) -> Result<bool, IoError> {
    match fs::read(path) {
        Ok(existing) if existing == contents.as_bytes() => Ok(false),
        Ok(_) => write_atomically(path, contents.as_bytes(), 0o644).map(|()| true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            write_atomically(path, contents.as_bytes(), 0o644).map(|()| true)
        }
        Err(err) => Err(IoError::new("read", path, err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_name_the_path_and_suggest_a_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().canonicalize().unwrap()).unwrap();
        let cache = root.join("hub");
        fs::create_dir_all(cache.join("blobs")).unwrap();
        let full = |path: &Utf8Path| {
            IoError::new("write", path, io::Error::from(io::ErrorKind::StorageFull)).to_string()
        };
        let message = full(&cache.join("blobs/x"));
        assert!(
            message.starts_with(&format!("failed to write `{cache}/blobs/x`: ")),
            "{message}"
        );
        assert!(
            message.ends_with("(the disk is full: free some space)"),
            "{message}"
        );
        // In an HF cache (its tag says so), moving the cache is a way out too.
        fs::write(
            cache.join("CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by huggingface_hub.\n",
        )
        .unwrap();
        assert!(
            full(&cache.join("blobs/x")).ends_with(
                "(the disk is full: free some space; or point --cache-dir / HF_HUB_CACHE elsewhere)"
            ),
            "{message}"
        );
        // Permission denied names the nearest folder there is, in full.
        let denied = IoError::new(
            "write",
            &cache.join("missing/deeper/f"),
            io::Error::from(io::ErrorKind::PermissionDenied),
        )
        .to_string();
        assert!(
            denied.contains(&format!("(permission denied: `{cache}` ")),
            "{denied}"
        );
        assert!(
            denied.ends_with("; or point --cache-dir / HF_HUB_CACHE elsewhere)"),
            "{denied}"
        );
        let read_only = IoError::new(
            "write",
            &root.join("f"),
            io::Error::from(io::ErrorKind::ReadOnlyFilesystem),
        );
        assert!(
            read_only
                .to_string()
                .ends_with("(the file system is mounted read-only)"),
            "{read_only}"
        );
        let other = IoError::new("write", &root.join("f"), io::Error::other("odd"));
        assert_eq!(
            other.to_string(),
            format!("failed to write `{root}/f`: odd")
        );
    }

    #[test]
    fn files_are_written_once_and_only_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("sub/f.txt")).unwrap();
        assert!(write_if_changed(&path, "a").unwrap());
        assert!(!write_if_changed(&path, "a").unwrap());
        assert!(write_if_changed(&path, "b").unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), "b");
        // No temporary file is left beside it.
        assert_eq!(fs::read_dir(parent_of(&path)).unwrap().count(), 1);
        assert_eq!(parent_of(Utf8Path::new("f.txt")), ".");
    }
}
