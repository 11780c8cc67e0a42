//! `facehugger status` and `facehugger path`: what is synced, without the network. Each model's
//! commit comes from the lock file when it has an entry for the model, else from the cache's
//! `refs/` (as of the last sync); its file list from the cache's `trees/`.

use std::sync::Arc;

use camino::Utf8PathBuf;
use serde::Serialize;

use super::{Options, local, locals};
use crate::error::Error;
use crate::manifest::Model;
use crate::patterns::FileFilter;
use crate::repo::{CommitId, RepoFile};
use crate::sync::{LockMode, Settings};

/// What `status` says of one model.
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
    pub locked_revision: Option<CommitId>,
    /// The commit the cache's `refs/<ref>` points at: where the ref was at the last sync.
    pub cached_revision: Option<CommitId>,
    /// Whether the lock agrees with the cache's ref (as of the last sync); `None` when either
    /// is unknown.
    pub lock_current: Option<bool>,
    /// The commit the rest describes: the locked one, else the cached one.
    pub revision: Option<CommitId>,
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

/// The model's selected files in the commit's cached file list (`None` when the cache has no
/// usable list; a list that cannot be read safely is an error naming it).
pub(super) fn selected_files(
    settings: &Settings,
    model: &Model,
    commit: &CommitId,
) -> Result<Option<Vec<Arc<RepoFile>>>, Error> {
    let Some(listing) = settings
        .cache
        .read_tree(&model.repo, commit)
        .map_err(|error| Error::from(error).for_model(model.name()))?
    else {
        return Ok(None);
    };
    let filter = FileFilter::new(model.include.as_deref(), model.exclude.as_deref());
    Ok(Some(
        listing
            .into_iter()
            .filter(|file| filter.matches(&file.path))
            .collect(),
    ))
}

/// The status of every model of the manifest.
pub fn status(options: &Options) -> Result<Vec<ModelStatus>, Error> {
    let settings = options.find(LockMode::Frozen)?;
    let cache = &settings.cache;
    locals(&settings, settings.lock.as_ref())?
        .into_iter()
        .map(|local| {
            let model = local.model;
            let revision = local.revision().cloned();
            let (selected, view) = match &revision {
                Some(commit) => (
                    selected_files(&settings, model, commit)?,
                    Some(cache.snapshot_view(&model.repo, commit)),
                ),
                None => (None, None),
            };
            let present =
                |file: &&Arc<RepoFile>| view.as_ref().is_some_and(|view| view.has_pointer(file));
            let (files, missing, size_on_disk) = match &selected {
                Some(files) => {
                    let here: Vec<&Arc<RepoFile>> = files.iter().filter(present).collect();
                    let size = here.iter().map(|file| file.size).sum();
                    (Some(files.len()), Some(files.len() - here.len()), size)
                }
                None => (None, None, 0),
            };
            Ok(ModelStatus {
                name: model.name(),
                repo_id: model.repo.id.to_string(),
                repo_type: model.repo.repo_type.as_str().to_owned(),
                reference: model.reference.clone(),
                lock_current: match (&local.locked, &local.cached) {
                    (Some(locked), Some(cached)) => Some(locked == cached),
                    _ => None,
                },
                snapshot_path: revision
                    .as_ref()
                    .map(|commit| cache.snapshot_dir(&model.repo, commit)),
                locked_revision: local.locked,
                cached_revision: local.cached,
                revision,
                files,
                missing,
                size_on_disk,
            })
        })
        .collect()
}

/// The snapshot folder of the manifest's model of this repo id (at this ref, when it is
/// declared at several).
pub fn path(
    options: &Options,
    repo_id: &str,
    reference: Option<&str>,
) -> Result<Utf8PathBuf, Error> {
    let settings = options.find(LockMode::Frozen)?;
    let matching: Vec<&Model> = settings
        .manifest
        .models
        .iter()
        .filter(|model| model.repo.id == *repo_id)
        .filter(|model| reference.is_none_or(|r| model.reference == r))
        .collect();
    let chosen = match matching.as_slice() {
        [one] => local(&settings, settings.lock.as_ref(), one)?,
        [] => {
            return Err(Error::Other(format!(
                "`{repo_id}`{} is not in `{}`",
                reference.map(|r| format!(" at `{r}`")).unwrap_or_default(),
                settings.manifest.path
            )));
        }
        several => {
            let refs: Vec<&str> = several.iter().map(|m| m.reference.as_str()).collect();
            return Err(Error::Other(format!(
                "`{repo_id}` is declared at several refs ({}): pass --ref",
                refs.join(", ")
            )));
        }
    };
    let commit = chosen.revision().ok_or_else(|| {
        Error::Other(format!(
            "{} is neither locked nor in the cache: run `facehugger sync` first",
            chosen.model.name()
        ))
    })?;
    Ok(settings.cache.snapshot_dir(&chosen.model.repo, commit))
}
