//! Writing to the cache: refs, trees and snapshot links replaced atomically, blobs installed
//! under the reference client's lock, folders created but never through a symbolic link. Where
//! links cannot be made, snapshots get the files themselves, as the reference client does.

use std::fs::{self, File, OpenOptions};
use std::io;

use camino::{Utf8Path, Utf8PathBuf};

use super::tree;
use super::{CACHEDIR_TAG, CHUNKS_SUFFIX, Cache, chunk_record_path, relative_blob_target};
use crate::files::{
    IoError, parent_of, refuse_link, unique_sibling, write_atomically, write_atomically_with,
    writing,
};
use crate::platform::{
    made_link, open_no_follow, remove_dir_all, remove_file, rename, set_mode, symlink_file,
    with_mode,
};
use crate::repo::{CommitId, Repo, RepoFile};

/// The reference client's lock on one blob of a repo, held while the blob is downloaded,
/// installed or removed; released when dropped.
#[derive(Debug)]
pub(crate) struct BlobLock {
    _file: File,
}

impl Cache {
    /// Points `refs/<ref>` at `commit`: exactly 40 bytes, atomically, only if it changes.
    pub(crate) fn write_ref(
        &self,
        repo: &Repo,
        reference: &str,
        commit: &CommitId,
    ) -> Result<(), IoError> {
        // A ref that cannot be read (a planted link, say) is replaced like one that differs.
        if *commit == *reference
            || self.read_ref(repo, reference).ok().flatten().as_ref() == Some(commit)
        {
            return Ok(());
        }
        let path = self.ref_path(repo, reference);
        // The rename replaces a link at `refs/<ref>` itself; links above it are refused.
        self.create_dirs(
            &self.repo_dir(repo),
            parent_of(&path),
            "create the refs folder",
        )?;
        write_atomically(&path, commit.as_str().as_bytes(), 0o644)
    }

    /// Writes `CACHEDIR.TAG` at the cache root if it is missing.
    pub(crate) fn ensure_tag(&self) -> Result<(), IoError> {
        let path = self.root.join("CACHEDIR.TAG");
        if path.exists() {
            return Ok(());
        }
        write_atomically(&path, CACHEDIR_TAG.as_bytes(), 0o644)
    }

    /// Writes `trees/<commit>.json` in the reference client's exact format.
    pub(crate) fn write_tree(
        &self,
        repo: &Repo,
        commit: &CommitId,
        files: &[impl std::borrow::Borrow<RepoFile>],
    ) -> Result<(), IoError> {
        let path = self.tree_path(repo, commit);
        self.create_dirs(
            &self.repo_dir(repo),
            parent_of(&path),
            "create the trees folder",
        )?;
        write_atomically_with(&path, 0o600, |out| tree::write_tree(files, out))
    }

    /// Makes `snapshots/<commit>/<path>` a relative symlink to `blobs/<etag>`, replacing whatever
    /// was there. Where links cannot be made, copies the blob there instead (the reference
    /// client's layout without links: it cannot know whether another snapshot still needs the
    /// blob, so it does not move it). Call it holding the blob's lock.
    pub(crate) fn link(
        &self,
        repo: &Repo,
        commit: &CommitId,
        path: &str,
        etag: &str,
    ) -> Result<(), IoError> {
        let pointer = self.pointer_path(repo, commit, path);
        let parent = parent_of(&pointer);
        self.create_dirs(&self.repo_dir(repo), parent, "create the snapshot folder")?;
        if !self.links_work(repo)? {
            return self.copy_blob(repo, etag, &pointer);
        }
        let target = relative_blob_target(path, etag);
        let _writing = writing();
        // Most pointers are new: made in place, in one call.
        match symlink_file(&target, &pointer) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() != io::ErrorKind::AlreadyExists => {
                return Err(IoError::new("create the snapshot link", &pointer, err));
            }
            Err(_) => {}
        }
        if made_link(&pointer, &target) {
            return Ok(());
        }
        // Something else is there: link under a unique name, then rename over it, atomic, with
        // no moment without a pointer.
        let temp = unique_sibling(&pointer, "tmp");
        symlink_file(&target, &temp)
            .map_err(|err| IoError::new("create the snapshot link", &temp, err))?;
        rename(&temp, &pointer).map_err(|err| {
            let _ = remove_file(&temp);
            IoError::new("create the snapshot link", &pointer, err)
        })
    }

    /// Installs a verified download, `temp` (a partial file in `blobs/`), for the snapshot file
    /// `path`: renamed to `blobs/<etag>` and linked; where links cannot be made, moved into the
    /// snapshot itself, leaving `blobs/` without it, exactly as the reference client does.
    /// Call it holding the blob's lock.
    pub(crate) fn install(
        &self,
        repo: &Repo,
        commit: &CommitId,
        path: &str,
        etag: &str,
        temp: &Utf8Path,
    ) -> Result<(), IoError> {
        if self.links_work(repo)? {
            self.install_blob(repo, etag, temp)?;
            return self.link(repo, commit, path, etag);
        }
        let pointer = self.pointer_path(repo, commit, path);
        self.create_dirs(
            &self.repo_dir(repo),
            parent_of(&pointer),
            "create the snapshot folder",
        )?;
        rename(temp, &pointer).map_err(|err| IoError::new("install the file", &pointer, err))
    }

    /// The layout without links: a copy of the blob at `pointer`, written as a partial download
    /// of the blob (so that an interrupted copy is cleaned up, or resumed, as one), made
    /// durable, then renamed into place.
    fn copy_blob(&self, repo: &Repo, etag: &str, pointer: &Utf8Path) -> Result<(), IoError> {
        let blob = self.blob_path(repo, etag);
        let Some(mut source) = self.open_blob(repo, etag)? else {
            return Err(IoError::new(
                "copy the blob",
                &blob,
                io::ErrorKind::NotFound.into(),
            ));
        };
        let (temp, mut out) = self.create_incomplete(repo, etag)?;
        let copied = io::copy(&mut source, &mut out).and_then(|_| out.sync_data());
        drop(out);
        if let Err(err) = copied {
            remove_partial(&temp);
            return Err(IoError::new("copy the blob", &blob, err));
        }
        let _writing = writing();
        rename(&temp, pointer).map_err(|err| {
            remove_partial(&temp);
            IoError::new("copy the blob", pointer, err)
        })
    }

    /// Whether snapshot entries of `repo` are links: not with `HF_HUB_DISABLE_SYMLINKS`, else
    /// as a probe found, once per repo folder, as the reference client's
    /// `are_symlinks_supported` does it (in the folder that holds both the blobs and the
    /// snapshots).
    pub(super) fn links_work(&self, repo: &Repo) -> Result<bool, IoError> {
        if self.links_disabled {
            return Ok(false);
        }
        let dir = self.repo_dir(repo);
        let known = |dir: &Utf8Path| {
            let found = self.links_work.lock().unwrap_or_else(|e| e.into_inner());
            found.get(dir).copied()
        };
        if let Some(works) = known(&dir) {
            return Ok(works);
        }
        self.create_dirs(&self.root, &dir, "create the repo folder")?;
        let works = probe_links(&dir)?;
        let mut found = self.links_work.lock().unwrap_or_else(|e| e.into_inner());
        Ok(*found.entry(dir).or_insert(works))
    }

    /// The repo folders where symbolic links turned out impossible (not those where
    /// `HF_HUB_DISABLE_SYMLINKS` turned them off), for a warning.
    pub(crate) fn links_refused(&self) -> Vec<Utf8PathBuf> {
        let found = self.links_work.lock().unwrap_or_else(|e| e.into_inner());
        let mut refused: Vec<Utf8PathBuf> = found
            .iter()
            .filter(|&(_, &works)| !works)
            .map(|(dir, _)| dir.clone())
            .collect();
        refused.sort();
        refused
    }

    /// Takes the reference client's lock for installing this blob: BSD `flock` on
    /// `.locks/<repo folder>/<etag>.lock`, mode 0664, never deleted. Blocks until it is free;
    /// released when the returned file is dropped. Also makes sure the `blobs` folder is a real
    /// folder: everything done under the lock (resuming, downloading, installing) writes there.
    pub(crate) fn lock_blob(&self, repo: &Repo, etag: &str) -> Result<BlobLock, IoError> {
        let blobs = self.repo_dir(repo).join("blobs");
        self.create_dirs(&self.repo_dir(repo), &blobs, "create the blobs folder")?;
        let path = self.lock_path(repo, etag);
        let parent = parent_of(&path);
        self.create_dirs(&self.root, parent, "create the lock folder")?;
        // O_NOFOLLOW makes this safe against a link planted there; the file is created when it
        // is not there yet (the common case), else opened.
        let open = |create: bool| {
            let mut options = OpenOptions::new();
            options.read(true).write(true).create_new(create);
            open_no_follow(with_mode(&mut options, 0o664), &path)
        };
        let (file, created) = match open(true) {
            Ok(file) => (Ok(file), true),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => (open(false), false),
            Err(err) => (Err(err), true),
        };
        let file = file.map_err(|err| {
            // A link refused by O_NOFOLLOW: say so plainly.
            refuse_link(&path, "open the lock file")
                .err()
                .unwrap_or_else(|| IoError::new("open the lock file", &path, err))
        })?;
        file.lock()
            .map_err(|err| IoError::new("lock", &path, err))?;
        if created {
            // The umask may have narrowed the mode; other users of a shared cache need 0664.
            let _ = set_mode(&file, 0o664);
        }
        Ok(BlobLock { _file: file })
    }

    /// A new, unique `blobs/<etag>.<8hex>.incomplete` file to download into.
    pub(crate) fn create_incomplete(
        &self,
        repo: &Repo,
        etag: &str,
    ) -> Result<(Utf8PathBuf, File), IoError> {
        let blob = self.blob_path(repo, etag);
        let parent = parent_of(&blob);
        self.create_dirs(&self.repo_dir(repo), parent, "create the blobs folder")?;
        let temp = unique_sibling(&blob, "incomplete");
        // Readable too: large files are hashed by reading back the chunks just written.
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(true);
        let file = with_mode(&mut options, 0o644)
            .open(&temp)
            .map_err(|err| IoError::new("create the download file", &temp, err))?;
        Ok((temp, file))
    }

    /// The partial download of this blob that an earlier run left (interrupted, killed, or cut
    /// off), to resume; else a new file. Call it holding the blob's lock, so that no cooperating
    /// writer is using the file. When several are left, the longest is kept and the others removed.
    /// What the file holds is only trusted once the whole blob verifies.
    pub(crate) fn take_incomplete(
        &self,
        repo: &Repo,
        etag: &str,
    ) -> Result<(Utf8PathBuf, File), IoError> {
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
        let file = open_no_follow(OpenOptions::new().read(true).write(true), &keep)
            .map_err(|err| IoError::new("reopen the partial download", &keep, err))?;
        Ok((keep, file))
    }

    /// Moves a verified download into `blobs/<etag>`.
    fn install_blob(&self, repo: &Repo, etag: &str, temp: &Utf8Path) -> Result<(), IoError> {
        let blob = self.blob_path(repo, etag);
        rename(temp, &blob).map_err(|err| IoError::new("install the blob", &blob, err))
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
    ) -> Result<(), IoError> {
        let mut checked = self.checked_dirs.lock().unwrap_or_else(|e| e.into_inner());
        if checked.contains(dir) {
            return Ok(());
        }
        let Ok(inside) = dir.strip_prefix(base) else {
            fs::create_dir_all(dir).map_err(|err| IoError::new(action, dir, err))?;
            checked.insert(dir.to_owned());
            return Ok(());
        };
        if !checked.contains(base) {
            fs::create_dir_all(base).map_err(|err| IoError::new(action, base, err))?;
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
                Err(err) => return Err(IoError::new(action, &current, err)),
            }
            checked.insert(current.clone());
        }
        Ok(())
    }

    /// Removes `blobs/<etag>` (a corrupt blob, say) under its lock, so that no other client is
    /// installing it meanwhile. Snapshot links to it then dangle, which every client reads as
    /// "missing".
    pub(crate) fn remove_blob(&self, repo: &Repo, etag: &str) -> Result<(), IoError> {
        let _lock = self.lock_blob(repo, etag)?;
        let blob = self.blob_path(repo, etag);
        match remove_file(&blob) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                Err(IoError::new("remove the blob", &blob, err))
            }
            _ => Ok(()),
        }
    }
}

/// Removes a partial download and its chunk record.
pub(crate) fn remove_partial(temp: &Utf8Path) {
    let _ = remove_file(temp);
    let _ = remove_file(chunk_record_path(temp));
}

/// Whether symbolic links can be made in `dir`, as the reference client finds out: in a new
/// folder of its own there, a relative link to a file beside it. The link is read back before
/// it is trusted: Wine reports success and makes nothing.
fn probe_links(dir: &Utf8Path) -> Result<bool, IoError> {
    let probe = unique_sibling(&dir.join(".facehugger-links"), "tmp");
    fs::create_dir(&probe)
        .map_err(|err| IoError::new("check whether symbolic links can be made in", dir, err))?;
    let link = probe.join("dummy_file_dst");
    let works = File::create(probe.join("dummy_file_src")).is_ok()
        && symlink_file("dummy_file_src", &link).is_ok()
        && made_link(&link, "dummy_file_src");
    let _ = remove_dir_all(&probe);
    Ok(works)
}

// Links to folders: Windows makes them another way (`symlink_dir`).
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn folders_are_created_but_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        let outside = root.join("outside");
        fs::create_dir(&outside).unwrap();
        // The base may be a link (a repo folder moved to another disk)...
        let base = root.join("repo");
        symlink_file(outside.as_str(), &base).unwrap();
        let cache = Cache::new(root);
        cache
            .create_dirs(&base, &base.join("snapshots/c/sub"), "create")
            .unwrap();
        assert!(outside.join("snapshots/c/sub").is_dir());
        // ... but a link below it is refused, and nothing is created through it.
        symlink_file(outside.as_str(), base.join("snapshots/c/link")).unwrap();
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
