//! Looking at what is synced, without the network: `facehugger status`, `path` and `verify`.
//!
//! Each model's commit comes from the lock file when it has an entry for the model, else from
//! the cache's `refs/` (as of the last sync); its file list from the cache's `trees/`.

use std::fs::File;
use std::io::Read;

use camino::Utf8PathBuf;
use serde::Serialize;

use crate::error::Error;
use crate::lock::Lock;
use crate::manifest::Model;
use crate::patterns::FileFilter;
use crate::repo::{RepoFile, is_commit_sha};
use crate::sync::Settings;
use crate::sync::execute::Verifier;
use crate::sync::plan::model_name;

/// What `facehugger status` says of one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelStatus {
    /// `acme/tiny@main`.
    pub name: String,
    /// The repo id.
    pub repo_id: String,
    /// `model`, `dataset` or `space`.
    pub repo_type: String,
    /// The manifest's ref.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The commit the lock pins, if it has an entry for the model.
    pub locked_revision: Option<String>,
    /// The commit the cache's `refs/<ref>` points at: where the ref was at the last sync.
    pub cached_revision: Option<String>,
    /// Whether the lock agrees with the cache's ref (as of the last sync); `None` when either
    /// is unknown.
    pub lock_current: Option<bool>,
    /// The commit the rest describes: the locked one, else the cached one.
    pub revision: Option<String>,
    /// Selected files of that commit (`None` when the cache has no file list for it).
    pub files: Option<usize>,
    /// Selected files missing from the snapshot.
    pub missing: Option<usize>,
    /// Bytes of the selected files present in the snapshot.
    pub size_on_disk: u64,
    /// The snapshot folder, if the commit is known.
    pub snapshot_path: Option<Utf8PathBuf>,
}

impl ModelStatus {
    /// Complete: the file list is known and nothing of it is missing.
    pub fn is_complete(&self) -> bool {
        self.missing == Some(0)
    }
}

/// A problem `facehugger verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `acme/tiny@main`.
    pub model: String,
    /// The file's path in the repo (empty for a problem with the whole model).
    pub path: String,
    /// `missing`, `corrupt` or `unknown` (no commit or file list in the cache).
    pub problem: &'static str,
    /// The etag the file must hash to.
    pub expected: Option<String>,
    /// What its bytes hash to.
    pub actual: Option<String>,
    /// The blob that holds it.
    pub blob: Option<Utf8PathBuf>,
}

/// One model with what the lock and cache know of it.
struct Local<'a> {
    model: &'a Model,
    locked: Option<String>,
    cached: Option<String>,
}

impl Local<'_> {
    fn revision(&self) -> Option<&str> {
        self.locked.as_deref().or(self.cached.as_deref())
    }
}

fn locals(settings: &Settings) -> Result<Vec<Local<'_>>, Error> {
    let lock = Lock::load(&settings.lock_path)?;
    Ok(settings
        .manifest
        .models
        .iter()
        .map(|model| {
            let locked = lock
                .as_ref()
                .and_then(|lock| lock.find(&model.repo, &model.reference))
                .map(|entry| entry.revision.clone());
            let cached = if is_commit_sha(&model.reference) {
                Some(model.reference.clone())
            } else {
                settings.cache.read_ref(&model.repo, &model.reference)
            };
            Local {
                model,
                locked,
                cached,
            }
        })
        .collect())
}

/// The model's selected files in the commit's cached file list.
fn selected_files(settings: &Settings, model: &Model, commit: &str) -> Option<Vec<RepoFile>> {
    let listing = settings.cache.read_tree(&model.repo, commit)?;
    let filter = FileFilter::new(model.include.as_deref(), model.exclude.as_deref());
    Some(
        listing
            .into_iter()
            .filter(|file| filter.matches(&file.path))
            .collect(),
    )
}

/// The status of every model of the manifest.
pub fn status(settings: &Settings) -> Result<Vec<ModelStatus>, Error> {
    let cache = &settings.cache;
    Ok(locals(settings)?
        .into_iter()
        .map(|local| {
            let model = local.model;
            let revision = local.revision().map(str::to_owned);
            let selected = revision
                .as_deref()
                .and_then(|commit| selected_files(settings, model, commit));
            let present = |file: &&RepoFile| {
                revision
                    .as_deref()
                    .is_some_and(|commit| cache.has_pointer(&model.repo, commit, &file.path))
            };
            let (files, missing, size_on_disk) = match &selected {
                Some(files) => {
                    let here: Vec<&RepoFile> = files.iter().filter(present).collect();
                    let size = here.iter().map(|file| file.size).sum();
                    (Some(files.len()), Some(files.len() - here.len()), size)
                }
                None => (None, None, 0),
            };
            ModelStatus {
                name: model_name(model),
                repo_id: model.repo.id.clone(),
                repo_type: model.repo.repo_type.as_str().to_owned(),
                reference: model.reference.clone(),
                lock_current: match (&local.locked, &local.cached) {
                    (Some(locked), Some(cached)) => Some(locked == cached),
                    _ => None,
                },
                locked_revision: local.locked.clone(),
                cached_revision: local.cached.clone(),
                snapshot_path: revision
                    .as_deref()
                    .map(|commit| cache.snapshot_dir(&model.repo, commit)),
                revision,
                files,
                missing,
                size_on_disk,
            }
        })
        .collect())
}

/// The snapshot folder of the manifest's model(s) of this repo id (optionally at this ref).
pub fn path(
    settings: &Settings,
    repo_id: &str,
    reference: Option<&str>,
) -> Result<Utf8PathBuf, Error> {
    let locals = locals(settings)?;
    let matching: Vec<&Local<'_>> = locals
        .iter()
        .filter(|local| local.model.repo.id == repo_id)
        .filter(|local| reference.is_none_or(|r| local.model.reference == r))
        .collect();
    let local = match matching.as_slice() {
        [one] => one,
        [] => {
            return Err(Error::Other(format!(
                "`{repo_id}`{} is not in `{}`",
                reference.map(|r| format!(" at `{r}`")).unwrap_or_default(),
                settings.manifest.path
            )));
        }
        several => {
            let refs: Vec<&str> = several.iter().map(|l| l.model.reference.as_str()).collect();
            return Err(Error::Other(format!(
                "`{repo_id}` is declared at several refs ({}): pass --ref",
                refs.join(", ")
            )));
        }
    };
    let commit = local.revision().ok_or_else(|| {
        Error::Other(format!(
            "{} is neither locked nor in the cache: run `facehugger sync` first",
            model_name(local.model)
        ))
    })?;
    Ok(settings.cache.snapshot_dir(&local.model.repo, commit))
}

/// Re-hashes the cached files of every model against their etags; returns what is wrong.
pub fn verify(settings: &Settings) -> Result<Vec<Problem>, Error> {
    let cache = &settings.cache;
    let mut problems = Vec::new();
    for local in locals(settings)? {
        let model = local.model;
        let name = model_name(model);
        let unknown = |what: &str| Problem {
            model: name.clone(),
            path: String::new(),
            problem: "unknown",
            expected: None,
            actual: Some(what.to_owned()),
            blob: None,
        };
        let Some(commit) = local.revision() else {
            problems.push(unknown("neither locked nor in the cache"));
            continue;
        };
        let Some(files) = selected_files(settings, model, commit) else {
            problems.push(unknown("no file list for its commit in the cache"));
            continue;
        };
        for file in files {
            let blob = cache.blob_path(&model.repo, file.etag());
            let problem = |kind, actual| Problem {
                model: name.clone(),
                path: file.path.clone(),
                problem: kind,
                expected: Some(file.etag().to_owned()),
                actual,
                blob: Some(blob.clone()),
            };
            if !cache.has_pointer(&model.repo, commit, &file.path) {
                problems.push(problem("missing", None));
                continue;
            }
            if let Some(actual) = check_blob(&blob, &file)? {
                problems.push(problem("corrupt", Some(actual)));
            }
        }
    }
    Ok(problems)
}

/// Removes the blobs `verify` found corrupt, so that a sync fetches them again (their snapshot
/// links then dangle, which every client reads as "missing").
pub fn remove_corrupt(problems: &[Problem]) -> Result<(), Error> {
    for problem in problems.iter().filter(|p| p.problem == "corrupt") {
        if let Some(blob) = &problem.blob {
            std::fs::remove_file(blob)
                .map_err(|err| Error::io("remove the corrupt blob", blob, err))?;
        }
    }
    Ok(())
}

/// Re-hashes a cached blob; `Some(actual hash)` when it is not what its etag says.
fn check_blob(path: &Utf8PathBuf, file: &RepoFile) -> Result<Option<String>, Error> {
    let mut reader = File::open(path).map_err(|err| Error::io("read", path, err))?;
    let mut verifier = Verifier::new(file);
    let mut buffer = vec![0u8; 1024 * 1024];
    let mut size = 0u64;
    loop {
        let read = reader
            .read(&mut buffer)
            .map_err(|err| Error::io("read", path, err))?;
        if read == 0 {
            break;
        }
        verifier.update(&buffer[..read]);
        size += read as u64;
    }
    match verifier.check(file, size) {
        Ok(()) => Ok(None),
        Err(Error::HashMismatch { actual, .. }) => Ok(Some(actual)),
        Err(other) => Err(other),
    }
}
