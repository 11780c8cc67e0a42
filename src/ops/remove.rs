//! `facehugger remove`: take a repo out of the manifest in use, then relock. Cached files stay:
//! other projects may use them.

use super::{LockReport, Options, lock};
use crate::edit::{Change, Document, RemoveRepo};
use crate::error::Error;
use crate::files::write_if_changed;
use crate::repo::{RepoId, RepoType};
use crate::report::{EditKind, Event, Reporter};

/// What to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveOptions {
    /// The repo id.
    pub repo: RepoId,
    /// Only the entries of this type; `None` for the one type the manifest declares the id
    /// with (an id declared with several types is then an error that lists them).
    pub repo_type: Option<RepoType>,
    /// Only the entry at this ref; `None` for every entry of the repo.
    pub reference: Option<String>,
}

/// Removes the repo's entries (comment lines directly above an entry go with it), then relocks.
pub fn remove(
    options: &Options,
    remove: &RemoveOptions,
    reporter: &dyn Reporter,
) -> Result<LockReport, Error> {
    let target = options.project.edit_target()?;
    let text = std::fs::read_to_string(&target.path)
        .map_err(|err| Error::io("read", &target.path, err))?;
    let repo = RemoveRepo {
        id: remove.repo.clone(),
        repo_type: remove.repo_type,
    };
    let edit = Document::new(&target.path, &text, target.table)
        .remove(&repo, remove.reference.as_deref())?;
    write_if_changed(&target.path, &edit.text)?;
    if let Change::Removed { models } = edit.change {
        for model in models {
            reporter.event(Event::Edited {
                change: EditKind::Removed,
                model: &model.name(),
                path: &target.path,
            });
        }
    }
    lock(options, false, reporter)
}
