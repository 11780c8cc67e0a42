//! The projects facehugger has synced into a cache, so that `gc` knows which revisions their lock
//! files still pin. It lives outside the hub cache (huggingface_hub would list anything unknown
//! in the cache as a corrupted repo), beside the other state the HF clients keep in `$HF_HOME`:
//!
//! ```text
//! $HF_HOME/facehugger/projects/<cache key>/<project key>.json
//!     {"cache": "/home/me/.cache/huggingface/hub", "lock": "/work/app/facehugger.lock", "manifest": "/work/app/facehugger.yaml"}
//! ```
//!
//! The cache key is the first 16 hex digits of the sha256 of the cache's canonical path (one
//! registry per cache), the project key the same of the lock file's canonical path. One small
//! file per project, written atomically (a unique temporary file, then a rename) and only when
//! it changes, lets any number of syncs record themselves at once without a lock: two writers of
//! the same project write the same bytes. Entries whose lock file is gone are forgotten by `gc`.

use std::fs;
use std::io;

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::env::Env;
use crate::files::{IoError, write_if_changed};
use crate::hash::hex;

/// The registry of one cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Registry {
    /// `$HF_HOME/facehugger/projects/<cache key>`.
    dir: Utf8PathBuf,
    /// The cache, canonical when it exists.
    cache: Utf8PathBuf,
}

/// A remembered project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The cache it synced into.
    pub(crate) cache: Utf8PathBuf,
    /// Its lock file: what `gc` keeps.
    pub(crate) lock: Utf8PathBuf,
    /// Its manifest (for people reading the registry and `gc`'s report).
    pub(crate) manifest: Utf8PathBuf,
}

/// An entry as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    /// The entry's file.
    pub(crate) file: Utf8PathBuf,
    /// What it says.
    pub(crate) entry: Entry,
}

/// A registry file that cannot be read: `gc` cannot know what that project needs.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{file}` is not a facehugger registry entry ({why}); remove it and sync that project again"
)]
pub(crate) struct BadEntry {
    /// The file.
    pub(crate) file: Utf8PathBuf,
    /// What is wrong.
    pub(crate) why: String,
}

impl Registry {
    /// The registry of the cache at `cache`, under `$HF_HOME` as the environment names it.
    pub(crate) fn new(env: &Env, cache: &Utf8Path) -> Registry {
        let cache = canonical(cache);
        let dir = Utf8PathBuf::from(env.hf_home())
            .join("facehugger")
            .join("projects")
            .join(key(&cache));
        Registry { dir, cache }
    }

    /// Where the snapshots of the cache at `cache` that syncs found complete are recorded
    /// (`cache::fresh`): `$HF_HOME/facehugger/fresh/<cache key>`, beside the registry.
    pub(crate) fn records_dir(env: &Env, cache: &Utf8Path) -> Utf8PathBuf {
        Utf8PathBuf::from(env.hf_home())
            .join("facehugger")
            .join("fresh")
            .join(key(&canonical(cache)))
    }

    /// The folder holding this cache's entries.
    #[cfg(test)]
    pub(crate) fn dir(&self) -> &Utf8Path {
        &self.dir
    }

    /// Remembers a project by its lock file (which should exist) and manifest.
    pub(crate) fn record(&self, lock: &Utf8Path, manifest: &Utf8Path) -> Result<(), IoError> {
        let entry = Entry {
            cache: self.cache.clone(),
            lock: canonical(lock),
            manifest: canonical(manifest),
        };
        let path = self.dir.join(format!("{}.json", key(&entry.lock)));
        let mut text = serde_json::to_string_pretty(&entry).unwrap_or_default();
        text.push('\n');
        write_if_changed(&path, &text).map(|_| ())
    }

    /// Every remembered project, sorted by lock file. A missing registry has none.
    pub(crate) fn entries(&self) -> Result<Vec<Stored>, RegistryError> {
        let listing = match fs::read_dir(&self.dir) {
            Ok(listing) => listing,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(IoError::new("read the registry", &self.dir, err).into()),
        };
        let mut found = Vec::new();
        for item in listing {
            let item = item.map_err(|err| IoError::new("read the registry", &self.dir, err))?;
            let Ok(name) = item.file_name().into_string() else {
                continue;
            };
            // Temporary files of a write in progress end in `.tmp`.
            if !name.ends_with(".json") {
                continue;
            }
            let file = self.dir.join(&name);
            let text = fs::read_to_string(&file).map_err(|err| IoError::new("read", &file, err))?;
            let entry: Entry = serde_json::from_str(&text).map_err(|err| BadEntry {
                file: file.clone(),
                why: err.to_string(),
            })?;
            found.push(Stored { file, entry });
        }
        found.sort_by(|a, b| a.entry.lock.cmp(&b.entry.lock));
        Ok(found)
    }

    /// Forgets an entry (its lock file is gone), unless its lock came back meanwhile.
    pub(crate) fn forget(&self, stored: &Stored) -> Result<(), IoError> {
        if stored.entry.lock.exists() {
            return Ok(());
        }
        match crate::platform::remove_file(&stored.file) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                Err(IoError::new("forget the registry entry", &stored.file, err))
            }
            _ => Ok(()),
        }
    }
}

/// Why the registry cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegistryError {
    /// A file-system failure.
    #[error(transparent)]
    Io(#[from] IoError),
    /// An entry that does not parse.
    #[error(transparent)]
    Bad(#[from] BadEntry),
}

/// The canonical form of a path when it exists, else the path made absolute.
fn canonical(path: &Utf8Path) -> Utf8PathBuf {
    if let Ok(path) = path.canonicalize_utf8() {
        return path;
    }
    if path.is_absolute() {
        path.to_owned()
    } else {
        crate::project::current_dir().join(path)
    }
}

/// The first 16 hex digits of the sha256 of a path: short, fixed-length, safe as a file name.
fn key(path: &Utf8Path) -> String {
    let digest = Sha256::digest(path.as_str().as_bytes());
    hex(&digest)[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with_home(home: &Utf8Path) -> Env {
        let home = home.to_string();
        Env::from_fn(move |name| (name == "HF_HOME").then(|| home.clone()))
    }

    #[test]
    fn projects_are_remembered_per_cache_and_forgotten_with_their_lock() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().canonicalize().unwrap()).unwrap();
        let env = env_with_home(&root.join("home"));
        let (cache, other_cache) = (root.join("cache"), root.join("other"));
        fs::create_dir_all(&cache).unwrap();
        let registry = Registry::new(&env, &cache);
        assert!(
            registry
                .dir()
                .starts_with(root.join("home/facehugger/projects"))
        );
        assert!(registry.entries().unwrap().is_empty());

        let project = root.join("app");
        fs::create_dir_all(&project).unwrap();
        let lock = project.join("facehugger.lock");
        fs::write(&lock, "[]").unwrap();
        registry
            .record(&lock, &project.join("facehugger.yaml"))
            .unwrap();
        // Recording again changes nothing; another cache has its own registry.
        registry
            .record(&lock, &project.join("facehugger.yaml"))
            .unwrap();
        assert!(
            Registry::new(&env, &other_cache)
                .entries()
                .unwrap()
                .is_empty()
        );
        let entries = registry.entries().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].entry.lock, lock);
        assert_eq!(entries[0].entry.cache, cache);

        // The entry stays while the lock exists, and goes with it.
        registry.forget(&entries[0]).unwrap();
        assert_eq!(registry.entries().unwrap().len(), 1);
        fs::remove_file(&lock).unwrap();
        registry.forget(&entries[0]).unwrap();
        assert!(registry.entries().unwrap().is_empty());
    }

    #[test]
    fn a_broken_entry_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        let registry = Registry::new(&env_with_home(&root), &root.join("cache"));
        fs::create_dir_all(registry.dir()).unwrap();
        fs::write(registry.dir().join("x.json"), "{").unwrap();
        let error = registry.entries().unwrap_err().to_string();
        assert!(
            error.contains("x.json` is not a facehugger registry entry"),
            "{error}"
        );
    }
}
