//! `facehugger add`: like `uv add`, check that a repo and ref exist on the Hub, add the model to
//! the manifest in use (keeping the file's comments and layout), then lock and sync it.

use super::{LockReport, Options, lock, sync};
use crate::edit::{Change, Document, NewModel};
use crate::error::Error;
use crate::files::write_if_changed;
use crate::hub::{Hub, HubConfig};
use crate::manifest::DEFAULT_REF;
use crate::project::EditTarget;
use crate::repo::{CommitId, Repo};
use crate::report::{EditKind, Event, Reporter};
use crate::sync::{LockMode, SyncReport};

/// What to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOptions {
    /// The repo and its type.
    pub repo: Repo,
    /// The ref to follow; `None` for `main` (and no `ref` written).
    pub reference: Option<String>,
    /// Include patterns; empty for every file.
    pub include: Vec<String>,
    /// Exclude patterns.
    pub exclude: Vec<String>,
    /// Sync after locking (else only lock).
    pub sync: bool,
}

/// What `add` did after editing the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddReport {
    /// It locked only.
    Locked(LockReport),
    /// It locked and synced.
    Synced(SyncReport),
}

/// Checks the repo and ref on the Hub (nothing is touched if they do not exist), adds the model
/// to the manifest in use (a new `facehugger.yaml` if there is none), then locks and syncs.
pub fn add(
    options: &Options,
    add: &AddOptions,
    reporter: &dyn Reporter,
) -> Result<AddReport, Error> {
    if options.offline() {
        return Err(Error::Other(
            "`facehugger add` checks the repo on the Hub, which it cannot do offline".into(),
        ));
    }
    let repo = &add.repo;
    let reference = add.reference.as_deref().unwrap_or(DEFAULT_REF);
    let model = format!("{repo}@{reference}");
    if CommitId::parse(reference).is_none() {
        reporter.event(Event::Checking { model: &model });
        Hub::new(HubConfig::from_env(&options.env), reporter)
            .resolve_revision(repo, reference)
            .map_err(|error| Error::from(error).for_model(model.clone()))?;
    }
    let target = edit_target(options, reporter)?;
    let text = std::fs::read_to_string(&target.path)
        .map_err(|err| Error::io("read", &target.path, err))?;
    let new = NewModel {
        repo: repo.clone(),
        reference: add.reference.clone(),
        include: add.include.clone(),
        exclude: add.exclude.clone(),
    };
    let edit = Document::new(&target.path, &text, target.table).add(&new)?;
    write_if_changed(&target.path, &edit.text)?;
    let change = match edit.change {
        Change::Added { .. } => EditKind::Added,
        Change::Updated { .. } => EditKind::Updated,
        _ => EditKind::Unchanged,
    };
    reporter.event(Event::Edited {
        change,
        model: &model,
        path: &target.path,
    });
    if add.sync {
        Ok(AddReport::Synced(sync(
            options,
            LockMode::Update,
            reporter,
        )?))
    } else {
        Ok(AddReport::Locked(lock(options, false, reporter)?))
    }
}

/// The manifest to edit; a folder with none gets a `facehugger.yaml`, as `uv init` would.
fn edit_target(options: &Options, reporter: &dyn Reporter) -> Result<EditTarget, Error> {
    let new = options.project.new_manifest_path();
    match options.project.edit_target() {
        Err(Error::Usage(_)) if options.project.manifest.is_none() && !new.exists() => {
            write_if_changed(&new, "models: []\n")?;
            reporter.event(Event::Created { path: &new });
            options.project.edit_target()
        }
        other => other,
    }
}
