//! Finding the models to sync: a `facehugger.yaml`, or the `[package.metadata.facehugger]` and
//! `[workspace.metadata.facehugger]` tables of a Cargo project (found with `cargo metadata
//! --no-deps`, the way cargo finds its workspace).

use camino::{Utf8Path, Utf8PathBuf};

use crate::cargo::{Table, declares_models, read_models};
use crate::error::Error;
use crate::lock::LOCK_FILE;
use crate::manifest::{MANIFEST_FILE, Manifest};

/// What to sync and where the lock lives.
#[derive(Debug, Clone)]
pub struct Project {
    /// Every declared model (the lock covers them all).
    pub manifest: Manifest,
    /// The lock file: beside the YAML manifest, or beside the workspace root Cargo.toml.
    pub lock_path: Utf8PathBuf,
    /// The models to sync (indices into `manifest.models`); `None` for all of them.
    pub selection: Option<Vec<usize>>,
}

/// Where the user pointed, if anywhere.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// A manifest given as argument: a YAML file, or a Cargo.toml.
    pub manifest: Option<Utf8PathBuf>,
    /// `--manifest-path`: a Cargo.toml (or a YAML manifest).
    pub manifest_path: Option<Utf8PathBuf>,
    /// `-p/--package`: workspace members to sync (plus the workspace's own table).
    pub packages: Vec<String>,
}

impl Discovery {
    /// Finds the project from `dir`, the process's current directory: an explicit manifest wins;
    /// else `facehugger.yaml` there; else the Cargo project around it. Declarations in both
    /// places are an error.
    pub fn find(&self, dir: &Utf8Path) -> Result<Project, Error> {
        if let Some(path) = self.manifest.as_ref().or(self.manifest_path.as_ref()) {
            return if path.extension() == Some("toml") {
                self.cargo_project(Some(path))
            } else {
                yaml_project(path)
            };
        }
        // Named relative to `dir` (the current folder), as the user would write it.
        let yaml = Utf8PathBuf::from(MANIFEST_FILE);
        let cargo_toml = find_upwards(dir, "Cargo.toml");
        match (dir.join(&yaml).is_file(), cargo_toml) {
            // A cheap look at the nearest Cargo.toml only: no `cargo metadata` when a YAML
            // manifest is used.
            (true, Some(cargo_toml)) if cargo_toml_declares_models(&cargo_toml) => {
                Err(Error::Manifest {
                    message: format!(
                        "both `{yaml}` and `{cargo_toml}` declare models; say which to use: \
                         `facehugger {MANIFEST_FILE}` for the YAML manifest, or `--manifest-path {cargo_toml}` for Cargo.toml"
                    ),
                })
            }
            (true, _) => yaml_project(&yaml),
            (false, Some(cargo_toml)) => self.cargo_project(Some(&cargo_toml)),
            (false, None) => Err(Error::Manifest {
                message: format!(
                    "no `{MANIFEST_FILE}` in `{dir}` and no Cargo.toml above it: create a manifest (see `facehugger --help`) or pass the path of one"
                ),
            }),
        }
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
                return Err(Error::Manifest {
                    message: format!(
                        "package `{wanted}` is not a member of the workspace at `{root_toml}` (members: {})",
                        names.join(", ")
                    ),
                });
            }
        }
        // From a member's folder (not the root), sync that member, as cargo builds it.
        let current = cargo_toml.filter(|path| *path != root_toml.as_path());
        let mut models = read_models(&root_toml, Table::Workspace)?;
        let mut selection: Vec<usize> = (0..models.len()).collect();
        let mut narrowed = !self.packages.is_empty();
        for package in members {
            let package_models = read_models(&package.manifest_path, Table::Package)?;
            let selected = if self.packages.is_empty() {
                match current {
                    Some(path) => {
                        narrowed = true;
                        same_file(path, &package.manifest_path)
                    }
                    None => true,
                }
            } else {
                self.packages
                    .iter()
                    .any(|wanted| wanted == package.name.as_str())
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

fn yaml_project(path: &Utf8Path) -> Result<Project, Error> {
    let manifest = Manifest::load(path)?;
    Ok(Project {
        lock_path: lock_path_for(path),
        manifest,
        selection: None,
    })
}

/// `facehugger.lock` in the manifest's folder.
pub fn lock_path_for(manifest: &Utf8Path) -> Utf8PathBuf {
    match manifest.parent() {
        Some(dir) if !dir.as_str().is_empty() => dir.join(LOCK_FILE),
        _ => Utf8PathBuf::from(LOCK_FILE),
    }
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
