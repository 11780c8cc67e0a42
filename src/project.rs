//! Which models a command works on, and where their lock lives: a `facehugger.yaml`, or the
//! `[package.metadata.facehugger]` and `[workspace.metadata.facehugger]` tables of a Cargo
//! project. Every way in goes through here: the command line (an explicit manifest, else
//! `facehugger.yaml` in the current folder, else the Cargo project around it, found with
//! `cargo metadata --no-deps` the way cargo finds its workspace), a build script (its own
//! package, read straight from its Cargo.toml: `cargo metadata` can deadlock inside a build),
//! and `add`/`remove` (which file and table to edit).

use camino::{Utf8Path, Utf8PathBuf};

use crate::cargo::{
    Table, declares_models, is_package, is_workspace_root, names_default_members, parse_models,
};
use crate::error::Error;
use crate::lock::{LOCK_FILE, Lock};
use crate::manifest::{MANIFEST_FILE, Manifest, ManifestError, Model};

/// Where to look for the models.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectSpec {
    /// A manifest the user named: a YAML file, or a Cargo.toml (`--manifest-path`).
    pub manifest: Option<Utf8PathBuf>,
    /// `-p/--package`: workspace members to sync (plus the workspace's own table).
    pub packages: Vec<String>,
    /// The folder to look from; `None` for the process's current folder (paths in messages are
    /// then relative, as the user would write them).
    pub dir: Option<Utf8PathBuf>,
}

/// The models a command works on, and where their lock lives.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    /// Every declared model (the lock covers them all).
    pub(crate) manifest: Manifest,
    /// The lock file: beside the YAML manifest, or beside the workspace root Cargo.toml.
    pub(crate) lock_path: Utf8PathBuf,
    /// The models to sync (indices into `manifest.models`); `None` for all of them.
    pub(crate) selection: Option<Vec<usize>>,
}

impl Project {
    /// The lock file, if there is one.
    pub(crate) fn load_lock(&self) -> Result<Option<Lock>, Error> {
        load_lock(&self.lock_path)
    }
}

impl ProjectSpec {
    /// The folder to look from, as a path to join names to (empty for the current folder).
    fn base(&self) -> Utf8PathBuf {
        self.dir.clone().unwrap_or_default()
    }

    /// The folder to look from, absolute.
    fn absolute_dir(&self) -> Utf8PathBuf {
        match &self.dir {
            Some(dir) => dir.clone(),
            None => current_dir(),
        }
    }

    /// Finds the project: a named manifest wins; else `facehugger.yaml` in the folder; else the
    /// Cargo project around it. Declarations in both places are an error.
    pub(crate) fn find(&self) -> Result<Project, Error> {
        if let Some(path) = &self.manifest {
            let path = self.base().join(path);
            return if path.extension() == Some("toml") {
                self.cargo_project(Some(&path))
            } else {
                yaml_project(&path)
            };
        }
        let yaml = self.base().join(MANIFEST_FILE);
        let dir = self.absolute_dir();
        let cargo_toml = find_upwards(&dir, "Cargo.toml");
        match (yaml.is_file(), cargo_toml) {
            // A cheap look at the nearest Cargo.toml only: no `cargo metadata` when a YAML
            // manifest is used.
            (true, Some(cargo_toml)) if cargo_toml_declares_models(&cargo_toml) => {
                Err(Error::Usage(format!(
                    "both `{yaml}` and `{cargo_toml}` declare models; say which to use: \
                     `facehugger {MANIFEST_FILE}` for the YAML manifest, or `--manifest-path {cargo_toml}` for Cargo.toml"
                )))
            }
            (true, _) => yaml_project(&yaml),
            (false, Some(cargo_toml)) => self.cargo_project(Some(&cargo_toml)),
            (false, None) => Err(Error::Usage(format!(
                "no `{MANIFEST_FILE}` in `{dir}` and no Cargo.toml above it: create a manifest (see `facehugger --help`) or pass the path of one"
            ))),
        }
    }

    /// The file `add` and `remove` edit, and for a Cargo.toml which table: the YAML manifest in
    /// use, or the Cargo.toml nearest to the folder (its package table, or the workspace table
    /// of a virtual workspace).
    pub(crate) fn edit_target(&self) -> Result<EditTarget, Error> {
        let manifest = self.find()?.manifest.path;
        if manifest.extension() != Some("toml") {
            return Ok(EditTarget {
                path: manifest,
                table: None,
            });
        }
        // A Cargo.toml the user named is the one to edit; else the one nearest the folder.
        let path = match &self.manifest {
            Some(named) => self.base().join(named),
            None => find_upwards(&self.absolute_dir(), "Cargo.toml").unwrap_or(manifest),
        };
        let table = if is_package(&path) {
            Table::Package
        } else {
            Table::Workspace
        };
        Ok(EditTarget {
            path,
            table: Some(table),
        })
    }

    /// Where `add` creates a manifest when there is none: `facehugger.yaml` in the folder.
    pub(crate) fn new_manifest_path(&self) -> Utf8PathBuf {
        self.base().join(MANIFEST_FILE)
    }

    fn cargo_project(&self, cargo_toml: Option<&Utf8Path>) -> Result<Project, Error> {
        let mut command = cargo_metadata::MetadataCommand::new();
        command.no_deps();
        if let Some(path) = cargo_toml {
            command.manifest_path(path);
        }
        let metadata = command
            .exec()
            .map_err(|err| Error::Other(format!("cannot read the Cargo project: {err}")))?;
        let root_toml = metadata.workspace_root.join("Cargo.toml");
        let members = metadata.workspace_packages();
        for wanted in &self.packages {
            if !members
                .iter()
                .any(|package| package.name.as_str() == wanted)
            {
                let names: Vec<&str> = members
                    .iter()
                    .map(|package| package.name.as_str())
                    .collect();
                return Err(Error::Usage(format!(
                    "package `{wanted}` is not a member of the workspace at `{root_toml}` (members: {})",
                    names.join(", ")
                )));
            }
        }
        // Which members, as cargo picks the packages to build: those `-p` names; else the
        // member whose Cargo.toml this is (given, or the nearest to the current folder); else,
        // at the workspace root, its `default-members` if it names them, else every member.
        // (The paths may be spelt differently: compared as files.)
        let member = cargo_toml.filter(|path| !same_file(path, &root_toml));
        let defaults = (names_default_members(&root_toml)
            && metadata.workspace_default_members.is_available())
        .then(|| &*metadata.workspace_default_members);
        let mut models = read_cargo_models(&root_toml, Table::Workspace)?;
        let mut selection: Vec<usize> = (0..models.len()).collect();
        let narrowed = !self.packages.is_empty() || member.is_some() || defaults.is_some();
        for package in members {
            let package_models = read_cargo_models(&package.manifest_path, Table::Package)?;
            let selected = if !self.packages.is_empty() {
                self.packages
                    .iter()
                    .any(|wanted| wanted == package.name.as_str())
            } else if let Some(path) = member {
                same_file(path, &package.manifest_path)
            } else if let Some(defaults) = defaults {
                defaults.contains(&package.id)
            } else {
                true
            };
            for model in package_models {
                if selected {
                    selection.push(models.len());
                }
                models.push(model);
            }
        }
        Ok(Project {
            lock_path: metadata.workspace_root.join(LOCK_FILE),
            manifest: Manifest {
                path: root_toml,
                models,
            },
            selection: narrowed.then_some(selection),
        })
    }
}

/// The file `add` and `remove` edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EditTarget {
    /// The manifest or Cargo.toml.
    pub(crate) path: Utf8PathBuf,
    /// For a Cargo.toml, which table.
    pub(crate) table: Option<Table>,
}

/// A build script's own package: the models of its Cargo.toml's `[package.metadata.facehugger]`
/// table, or of a `facehugger.yaml` beside it (not both); the lock beside the Cargo.toml, else
/// beside the Cargo.toml of the nearest enclosing workspace (which the lock's path then names
/// even if it does not exist yet).
pub(crate) fn package_project(manifest_dir: &Utf8Path) -> Result<Project, Error> {
    let cargo_toml = manifest_dir.join("Cargo.toml");
    let yaml = manifest_dir.join(MANIFEST_FILE);
    let from_cargo = read_cargo_models(&cargo_toml, Table::Package)?;
    let manifest = if !yaml.is_file() {
        Manifest {
            path: cargo_toml.clone(),
            models: from_cargo,
        }
    } else if from_cargo.is_empty() {
        load_manifest(&yaml)?
    } else {
        return Err(Error::Usage(format!(
            "both `{yaml}` and `{cargo_toml}` declare models: keep them in one place"
        )));
    };
    Ok(Project {
        lock_path: find_lock(manifest_dir).unwrap_or_else(|| manifest_dir.join(LOCK_FILE)),
        manifest,
        selection: None,
    })
}

/// `facehugger.lock` beside the package's Cargo.toml, else beside the Cargo.toml of the nearest
/// enclosing workspace, if there is one.
pub(crate) fn find_lock(manifest_dir: &Utf8Path) -> Option<Utf8PathBuf> {
    let own = manifest_dir.join(LOCK_FILE);
    if own.is_file() {
        return Some(own);
    }
    let root = manifest_dir
        .ancestors()
        .skip(1)
        .find(|dir| is_workspace_root(&dir.join("Cargo.toml")))?;
    Some(root.join(LOCK_FILE)).filter(|lock| lock.is_file())
}

fn yaml_project(path: &Utf8Path) -> Result<Project, Error> {
    let manifest = load_manifest(path)?;
    Ok(Project {
        lock_path: lock_path_for(path),
        manifest,
        selection: None,
    })
}

/// Reads and validates a YAML manifest.
pub(crate) fn load_manifest(path: &Utf8Path) -> Result<Manifest, Error> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => Error::Manifest(ManifestError {
            location: crate::location::Location::file(path),
            message:
                "no such manifest; create it (see `facehugger --help`) or pass the path of one"
                    .into(),
        }),
        _ => Error::io("read the manifest", path, source),
    })?;
    Ok(Manifest::from_bytes(path, bytes)?)
}

/// Reads a lock file; `Ok(None)` when there is none.
pub(crate) fn load_lock(path: &Utf8Path) -> Result<Option<Lock>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(Lock::from_bytes(path, bytes)?)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::io("read the lock file", path, err)),
    }
}

/// The models of one table of a Cargo.toml; empty when the table is absent.
fn read_cargo_models(cargo_toml: &Utf8Path, table: Table) -> Result<Vec<Model>, Error> {
    let text =
        std::fs::read_to_string(cargo_toml).map_err(|err| Error::io("read", cargo_toml, err))?;
    Ok(parse_models(cargo_toml, &text, table)?)
}

/// `facehugger.lock` in the manifest's folder.
fn lock_path_for(manifest: &Utf8Path) -> Utf8PathBuf {
    match manifest.parent() {
        Some(dir) if !dir.as_str().is_empty() => dir.join(LOCK_FILE),
        _ => Utf8PathBuf::from(LOCK_FILE),
    }
}

/// The process's current folder (`.` if it cannot be told, or is not UTF-8).
pub(crate) fn current_dir() -> Utf8PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|dir| Utf8PathBuf::from_path_buf(dir).ok())
        .unwrap_or_else(|| Utf8PathBuf::from("."))
}

fn find_upwards(dir: &Utf8Path, name: &str) -> Option<Utf8PathBuf> {
    dir.ancestors()
        .map(|ancestor| ancestor.join(name))
        .find(|path| path.is_file())
}

fn same_file(a: &Utf8Path, b: &Utf8Path) -> bool {
    match (a.canonicalize_utf8(), b.canonicalize_utf8()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Whether the Cargo.toml declares models in its package or workspace table.
fn cargo_toml_declares_models(cargo_toml: &Utf8Path) -> bool {
    declares_models(cargo_toml, Table::Package) || declares_models(cargo_toml, Table::Workspace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_sits_beside_the_manifest() {
        assert_eq!(
            lock_path_for(Utf8Path::new("facehugger.yaml")),
            "facehugger.lock"
        );
        assert_eq!(
            lock_path_for(Utf8Path::new("a/b/m.yaml")),
            "a/b/facehugger.lock"
        );
    }
}
