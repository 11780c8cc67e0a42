//! `facehugger add` and `facehugger remove`: the manifest (`facehugger.yaml`, or the
//! `[[package.metadata.facehugger.models]]` / workspace tables of a Cargo.toml) is edited in
//! place; every comment, blank line, quoting style, indentation and line ending (LF or CRLF) of
//! the rest of the file is kept byte for byte.
//! - `add` appends an entry after the last one, creating `models:` or the Cargo.toml table (after
//!   the package's own tables) if there is none. A repo already declared at the same ref is
//!   updated, as `uv add` updates a constraint: the `include`/`exclude` given replace the entry's
//!   (a field not given is dropped); with neither given, nothing changes. The same repo at another
//!   ref is a new entry.
//! - `remove` deletes every entry of the repo (all refs), or only those at the ref given; comment
//!   lines directly above an entry go with it; removing the last entry leaves `models: []`. A repo
//!   or ref that is not declared is an error naming the file.
//! - Values are quoted where needed (patterns always: `"*.json"`). The edited text is parsed again
//!   and must declare exactly the intended models; a layout too unusual to edit safely (a flow
//!   list over several lines, an updated entry holding comments or anchors) is refused, naming the
//!   file.
//!
//! [`Document`] is the one type the commands use; [`yaml`] edits a `facehugger.yaml` line by line
//! and [`toml`] a Cargo.toml through `toml_edit`; what to do (append, update, remove) is decided
//! here, the same for both.

mod toml;
mod yaml;

use std::fmt;

use camino::Utf8Path;

use crate::cargo::Table;
use crate::error::Error;
use crate::location::Location;
use crate::manifest::{DEFAULT_REF, ManifestError, Model};
use crate::repo::{Repo, RepoId, RepoType, validate_ref};
use crate::text::{MAX_SHOWN_CHARS, shown};

/// A manifest's text, ready to be edited: a `facehugger.yaml`, or one table of a Cargo.toml.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Document<'a> {
    path: &'a Utf8Path,
    text: &'a str,
    table: Option<Table>,
}

impl<'a> Document<'a> {
    /// The text of the file at `path` (named in messages); `table` says which table of a
    /// Cargo.toml, `None` for a YAML manifest.
    pub(crate) fn new(path: &'a Utf8Path, text: &'a str, table: Option<Table>) -> Document<'a> {
        Document { path, text, table }
    }

    /// The text with `model` added: appended after the last entry (creating the list or table
    /// if there is none), or, if the repo is already declared at that ref, that entry's
    /// selection updated (see the module documentation).
    pub(crate) fn add(&self, model: &NewModel) -> Result<Edit, Error> {
        match self.table {
            None => yaml::add(self.path, self.text, model),
            Some(table) => toml::add(self.path, self.text, table, model),
        }
    }

    /// The text without the entries of `repo`: all of them, or only those at `reference`
    /// (`main` matches an entry without `ref`). A repo or ref that is not declared is an error
    /// naming the file. See [`RemoveRepo`] for what a repo without a type means.
    pub(crate) fn remove(&self, repo: &RemoveRepo, reference: Option<&str>) -> Result<Edit, Error> {
        match self.table {
            None => yaml::remove(self.path, self.text, repo, reference),
            Some(table) => toml::remove(self.path, self.text, table, repo, reference),
        }
    }
}

/// What `facehugger remove` removes: a repo id, and its type if the user gave one. Without a
/// type, the id's entries are removed if they are all of one type (whichever it is); an id
/// declared with several types is an error that lists them. With a type, only the entries of
/// that type are removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoveRepo {
    /// The repo id.
    pub(crate) id: RepoId,
    /// The type given, if any.
    pub(crate) repo_type: Option<RepoType>,
}

/// What `facehugger add` adds: one repo at one ref, with its file selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewModel {
    /// The repo and its type (`repo_type` is written only when it is not `model`).
    pub(crate) repo: Repo,
    /// The ref to write; `None` writes none, which means `main`.
    pub(crate) reference: Option<String>,
    /// Include patterns; empty writes no `include` (every file).
    pub(crate) include: Vec<String>,
    /// Exclude patterns; empty writes no `exclude`.
    pub(crate) exclude: Vec<String>,
}

impl NewModel {
    fn effective_ref(&self) -> &str {
        self.reference.as_deref().unwrap_or(DEFAULT_REF)
    }

    fn patterns(list: &[String]) -> Option<Vec<String>> {
        (!list.is_empty()).then(|| list.to_vec())
    }

    fn check(&self) -> Result<(), Error> {
        if let Some(reference) = &self.reference {
            check_ref(reference)?;
        }
        Ok(())
    }
}

/// The result of an edit: the new text of the file, and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Edit {
    /// The whole new text (equal to the old one for [`Change::Unchanged`]).
    pub(crate) text: String,
    /// What was done.
    pub(crate) change: Change,
}

/// What an edit did. `at` is where the entry now starts, as in [`Model::origin`]
/// (`file:line:column`, plus the key path for Cargo.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A new entry was appended.
    Added {
        /// Where the new entry starts.
        at: Location,
    },
    /// The repo was already declared at this ref: its `include`/`exclude` were replaced.
    Updated {
        /// Where the updated entry starts.
        at: Location,
    },
    /// The repo was already declared at this ref with this selection (or none was given).
    Unchanged {
        /// Where the entry starts.
        at: Location,
    },
    /// Entries were removed; these are the models they declared (with their old origins).
    Removed {
        /// The removed models, in file order.
        models: Vec<Model>,
    },
}

// ---------------------------------------------------------------------------------------------
// What to do, whatever the format.

fn check_ref(reference: &str) -> Result<(), Error> {
    validate_ref(reference).map_err(|why| Error::Usage(format!("invalid ref: {why}")))
}

/// `acme/tiny`, `dataset acme/data`, `acme/tiny@v1`: a repo (and ref) as messages name it.
struct Named<'a>(&'a Repo, Option<&'a str>);

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.repo_type != RepoType::Model {
            write!(f, "{} ", self.0.repo_type)?;
        }
        write!(f, "`{}", self.0.id)?;
        if let Some(reference) = self.1 {
            write!(f, "@{}", shown(reference, MAX_SHOWN_CHARS))?;
        }
        f.write_str("`")
    }
}

enum Plan {
    Append,
    Update(usize),
    Unchanged(usize),
}

fn plan_add(path: &Utf8Path, models: &[Model], new: &NewModel) -> Result<Plan, Error> {
    let same: Vec<usize> = (0..models.len())
        .filter(|&index| {
            models[index].repo == new.repo && models[index].reference == new.effective_ref()
        })
        .collect();
    let include = NewModel::patterns(&new.include);
    let exclude = NewModel::patterns(&new.exclude);
    let nothing_given = include.is_none() && exclude.is_none();
    match same[..] {
        [] => Ok(Plan::Append),
        [first, ..] if nothing_given => Ok(Plan::Unchanged(first)),
        [index] => {
            let model = &models[index];
            if model.include == include && model.exclude == exclude {
                Ok(Plan::Unchanged(index))
            } else {
                Ok(Plan::Update(index))
            }
        }
        _ => Err(Error::Usage(format!(
            "{} is declared {} times in {path} (at {}): edit the one to change by hand",
            Named(&new.repo, Some(new.effective_ref())),
            same.len(),
            same.iter()
                .map(|&index| models[index].origin.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The repo `remove` means: the type given, else the one type the id is declared with (among
/// the entries at `reference`, when one is given and declared). Several types is an error
/// listing them.
fn repo_to_remove(
    path: &Utf8Path,
    models: &[Model],
    wanted: &RemoveRepo,
    reference: Option<&str>,
) -> Result<Repo, Error> {
    if let Some(repo_type) = wanted.repo_type {
        return Ok(Repo {
            repo_type,
            id: wanted.id.clone(),
        });
    }
    let types_of = |at_ref: bool| {
        let mut types: Vec<RepoType> = models
            .iter()
            .filter(|model| model.repo.id == wanted.id)
            .filter(|model| !at_ref || reference.is_none_or(|r| model.reference == r))
            .map(|model| model.repo.repo_type)
            .collect();
        types.sort_unstable();
        types.dedup();
        types
    };
    let mut types = types_of(true);
    if types.is_empty() {
        // Not at that ref: the error below says where it is.
        types = types_of(false);
    }
    match types[..] {
        [] => Ok(Repo {
            repo_type: RepoType::Model,
            id: wanted.id.clone(),
        }),
        [repo_type] => Ok(Repo {
            repo_type,
            id: wanted.id.clone(),
        }),
        _ => {
            let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
            Err(Error::Usage(format!(
                "`{}`{} is declared with several repo types in {path} ({}): pass --repo-type to say which to remove",
                wanted.id,
                reference
                    .map(|r| format!(" at `{}`", shown(r, MAX_SHOWN_CHARS)))
                    .unwrap_or_default(),
                names.join(", "),
            )))
        }
    }
}

fn plan_remove(
    path: &Utf8Path,
    models: &[Model],
    wanted: &RemoveRepo,
    reference: Option<&str>,
) -> Result<Vec<usize>, Error> {
    let repo = &repo_to_remove(path, models, wanted, reference)?;
    let of_repo: Vec<usize> = (0..models.len())
        .filter(|&index| models[index].repo == *repo)
        .collect();
    let chosen: Vec<usize> = of_repo
        .iter()
        .copied()
        .filter(|&index| reference.is_none_or(|wanted| models[index].reference == wanted))
        .collect();
    if !chosen.is_empty() {
        return Ok(chosen);
    }
    let mut message = format!("{} is not declared in {path}", Named(repo, reference));
    if !of_repo.is_empty() {
        let mut refs: Vec<&str> = of_repo
            .iter()
            .map(|&index| models[index].reference.as_str())
            .collect();
        refs.sort_unstable();
        refs.dedup();
        message += &format!(" (only at {})", refs.join(", "));
    } else if let Some(other) = models
        .iter()
        .find(|model| model.repo.id == repo.id && model.repo.repo_type != repo.repo_type)
    {
        message += &format!(" (but {} is)", Named(&other.repo, None));
    }
    Err(Error::Usage(message))
}

fn unchanged(text: &str, model: &Model) -> Edit {
    Edit {
        text: text.to_owned(),
        change: Change::Unchanged {
            at: model.origin.clone(),
        },
    }
}

/// The fields of an entry to write.
struct Fields {
    repo: Repo,
    reference: Option<String>,
    include: Option<Vec<String>>,
    exclude: Option<Vec<String>>,
    name: Option<String>,
}

impl Fields {
    fn from_new(model: &NewModel) -> Fields {
        Fields {
            repo: model.repo.clone(),
            reference: model.reference.clone(),
            include: NewModel::patterns(&model.include),
            exclude: NewModel::patterns(&model.exclude),
            name: None,
        }
    }

    /// `old` with the selection of `new`.
    fn updated(old: &Model, new: &NewModel) -> Fields {
        Fields {
            repo: old.repo.clone(),
            reference: (old.reference != DEFAULT_REF).then(|| old.reference.clone()),
            include: NewModel::patterns(&new.include),
            exclude: NewModel::patterns(&new.exclude),
            name: old.name.clone(),
        }
    }

    /// The model these fields declare (its origin is not known yet).
    fn model(&self) -> Model {
        Model {
            repo: self.repo.clone(),
            reference: self
                .reference
                .clone()
                .unwrap_or_else(|| DEFAULT_REF.to_owned()),
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            name: self.name.clone(),
            // Not compared: see `same_model`.
            origin: Location::file(Utf8Path::new("")),
        }
    }

    /// The scalar fields in the order they are written (the pattern lists come after).
    fn scalars(&self) -> Vec<(&'static str, &str)> {
        let mut scalars = vec![("repo", self.repo.id.as_str())];
        if self.repo.repo_type != RepoType::Model {
            scalars.push(("repo_type", self.repo.repo_type.as_str()));
        }
        if let Some(reference) = &self.reference {
            scalars.push(("ref", reference));
        }
        scalars
    }

    fn lists(&self) -> Vec<(&'static str, &[String])> {
        let mut lists = Vec::new();
        if let Some(include) = &self.include {
            lists.push(("include", include.as_slice()));
        }
        if let Some(exclude) = &self.exclude {
            lists.push(("exclude", exclude.as_slice()));
        }
        lists
    }
}

/// Whether two models declare the same thing (their origins aside).
fn same_model(a: &Model, b: &Model) -> bool {
    a.repo == b.repo
        && a.reference == b.reference
        && a.include == b.include
        && a.exclude == b.exclude
        && a.name == b.name
}

fn unsafe_edit(path: &Utf8Path, line: Option<usize>, why: &str) -> Error {
    let location = Location {
        line: line.map(|line| line as u64 + 1),
        ..Location::file(path)
    };
    Error::Manifest(ManifestError {
        location,
        message: format!("cannot edit this manifest safely: {why}; make the change by hand"),
    })
}

/// Checks that the edited text declares exactly `expected`; returns its models.
fn check_result(
    path: &Utf8Path,
    parsed: Result<Vec<Model>, Error>,
    expected: &[Model],
) -> Result<Vec<Model>, Error> {
    let models = parsed.map_err(|err| {
        unsafe_edit(
            path,
            None,
            &format!("its layout is too unusual (the edited text would not parse: {err})"),
        )
    })?;
    if models.len() != expected.len() || !models.iter().zip(expected).all(|(a, b)| same_model(a, b))
    {
        return Err(unsafe_edit(
            path,
            None,
            "its layout is too unusual (the edited text would not declare the intended models)",
        ));
    }
    Ok(models)
}

#[cfg(test)]
mod tests;
