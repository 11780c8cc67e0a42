//! For build scripts: sync the models a crate declares, and give its code their paths at compile
//! time.
//!
//! # Example
//!
//! `Cargo.toml`: declare the models next to the dependencies, and facehugger as a
//! build-dependency without its command line (a small compile: no clap):
//! ```toml
//! [build-dependencies]
//! facehugger = { version = "0.1", default-features = false }
//!
//! [[package.metadata.facehugger.models]]
//! repo = "acme/tiny"
//! include = ["config.json", "*.safetensors"]
//! name = "TINY"            # optional: the constant's name (default: from the repo id, ACME_TINY)
//! ```
//!
//! `build.rs`:
//! ```no_run
//! fn main() {
//!     facehugger::build::run();
//! }
//! ```
//!
//! `src/main.rs`: each model's snapshot folder in the HF cache, as a constant and as an
//! environment variable of the compilation:
//! ```text
//! include!(concat!(env!("OUT_DIR"), "/facehugger.rs")); // pub const TINY: &str = "/…/snapshots/<commit>";
//!
//! const CONFIG: &[u8] = include_bytes!(concat!(env!("FACEHUGGER_TINY"), "/config.json"));
//!
//! fn main() {
//!     let weights = std::path::Path::new(TINY).join("model.safetensors");
//! }
//! ```
//!
//! # What [`run`] does
//! - Reads the models of this package: `[package.metadata.facehugger]` in `$CARGO_MANIFEST_DIR/Cargo.toml`,
//!   or a `facehugger.yaml` beside it (not both). It never runs `cargo metadata`, which can
//!   deadlock inside a build.
//! - With a `facehugger.lock` (beside the Cargo.toml, else at the workspace root), syncs exactly
//!   the locked commits. Without one, resolves the refs in memory and emits one warning suggesting
//!   `cargo facehugger lock`: it never writes into the source tree (a packaged crate's is
//!   read-only). Ship the lock in the package so that dependents get the same commits.
//! - Offline (`CARGO_NET_OFFLINE=true` or `HF_HUB_OFFLINE=1` in the environment) it uses only the
//!   cache, and fails with the list of missing models and the command that fetches them. (Cargo
//!   does not tell build scripts about `--offline` on its command line; set the variable.)
//! - Under docs.rs (`DOCS_RS` set) it downloads nothing and still generates the file.
//! - Writes `$OUT_DIR/facehugger.rs`, emits `cargo::rustc-env=FACEHUGGER_<NAME>=<path>` for each
//!   model, `cargo::rerun-if-changed` for the Cargo.toml, manifest and lock, and
//!   `cargo::rerun-if-env-changed` for every variable it read, so a no-op build does not rerun it.
//! - Build scripts of a workspace syncing the same models at once coordinate through the cache's
//!   locks: each blob is downloaded once.

// The example build.rs above is whole on purpose: a build script is a `main`.
#![allow(clippy::needless_doctest_main)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use camino::Utf8PathBuf;

use crate::cache::{Cache, without_links_warning};
use crate::env::Env;
use crate::error::Error;
use crate::files::write_if_changed;
use crate::hub::HubConfig;
use crate::lock::LOCK_FILE;
use crate::manifest::{DEFAULT_REF, MANIFEST_FILE, Model};
use crate::project::{find_lock, package_project};
use crate::repo::CommitId;
use crate::report::Quiet;
use crate::sync::{self, LockMode, Settings, TransferOptions};

/// The generated file's name in `OUT_DIR`.
pub const GENERATED_FILE: &str = "facehugger.rs";

/// A model as the build script hands it to the crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltModel {
    /// The constant (and, prefixed with `FACEHUGGER_`, the environment variable).
    pub constant: String,
    /// The manifest entry.
    pub model: Model,
    /// The commit, when known (always, unless under docs.rs without a lock).
    pub commit: Option<CommitId>,
    /// The snapshot folder in the HF cache.
    pub snapshot: Utf8PathBuf,
}

/// Syncs this package's models and generates the file; on failure prints the error as
/// `cargo::error` and exits, which fails the build with the message. Call it from `main` of
/// `build.rs`.
pub fn run() {
    if let Err(error) = sync() {
        for line in error.to_string().lines() {
            println!("cargo::error={line}");
        }
        std::process::exit(1);
    }
}

/// What [`run`] does, returning the models (or the error) instead of exiting.
pub fn sync() -> Result<Vec<BuiltModel>, Error> {
    let read = Arc::new(Mutex::new(BTreeSet::new()));
    let recorded = read.clone();
    let env = Env::from_fn(move |name| {
        // Cargo sets these itself for every build-script run.
        if !name.starts_with("CARGO_") || name == "CARGO_NET_OFFLINE" {
            recorded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_owned());
        }
        std::env::var(name).ok()
    });
    let result = sync_with(&env);
    // Even on failure: a changed variable (say HF_TOKEN) must rerun the script.
    for name in read.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        println!("cargo::rerun-if-env-changed={name}");
    }
    result
}

fn sync_with(env: &Env) -> Result<Vec<BuiltModel>, Error> {
    let required = |name: &str| {
        env.cargo_var(name).map(Utf8PathBuf::from).ok_or_else(|| {
            Error::Other(format!(
                "`{name}` is not set: facehugger::build::run() belongs in a build script"
            ))
        })
    };
    let manifest_dir = required("CARGO_MANIFEST_DIR")?;
    let out_dir = required("OUT_DIR")?;
    let package = env.cargo_var("CARGO_PKG_NAME").unwrap_or_default();

    let cargo_toml = manifest_dir.join("Cargo.toml");
    let yaml = manifest_dir.join(MANIFEST_FILE);
    // Watched before anything is read: a build that fails on them reruns when they change.
    let lock_path = find_lock(&manifest_dir);
    for path in [
        Some(&cargo_toml),
        Some(&yaml).filter(|p| p.is_file()),
        lock_path.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        println!("cargo::rerun-if-changed={path}");
    }
    let project = package_project(&manifest_dir)?;
    let lock = project.load_lock()?;
    let manifest = &project.manifest;

    let cache = Cache::new(env.hub_cache()).without_links(env.disable_symlinks());
    let records = crate::registry::Registry::records_dir(env, cache.root());
    let cache = cache.with_records(records);
    let offline = env.cargo_offline();
    let docs_rs = env.docs_rs();
    if lock.is_none() && !docs_rs && !manifest.models.is_empty() {
        println!(
            "cargo::warning=facehugger: `{package}` has no {LOCK_FILE}: its refs were resolved just now; run `cargo facehugger lock` to pin them"
        );
    }

    let built = if docs_rs {
        // docs.rs builds have no network: name the snapshots the lock pins, download nothing.
        manifest
            .models
            .iter()
            .map(|model| {
                let commit = lock
                    .as_ref()
                    .and_then(|lock| lock.find(&model.repo, &model.reference))
                    .map(|entry| entry.revision.clone())
                    .or_else(|| model.pinned_commit());
                (model.clone(), commit)
            })
            .collect()
    } else {
        let settings = Settings {
            mode: if lock.is_some() {
                LockMode::Frozen
            } else {
                LockMode::InMemory
            },
            lock,
            manifest: manifest.clone(),
            lock_path: project.lock_path.clone(),
            cache: cache.clone(),
            hub: HubConfig::from_env(env),
            offline,
            transfer: TransferOptions::default(),
            selection: None,
        };
        let report = sync::sync(&settings, &Quiet).map_err(|error| offline_hint(error, offline))?;
        if !env.disable_symlinks_warning() {
            for dir in cache.links_refused() {
                println!("cargo::warning=facehugger: {}", without_links_warning(&dir));
            }
        }
        if settings.lock.is_some() {
            // So that `facehugger gc` keeps what this crate's lock pins. A registry that cannot
            // be written (a read-only home in a sandboxed build) is no reason to fail the build.
            let registry = crate::registry::Registry::new(env, cache.root());
            let _ = registry.record(&settings.lock_path, &manifest.path);
        }
        report
            .resolved
            .into_iter()
            .map(|resolved| (resolved.model, Some(resolved.commit)))
            .collect()
    };
    let built = name_models(built, &cache)?;
    write_if_changed(&out_dir.join(GENERATED_FILE), &generated_file(&built))?;
    for model in &built {
        println!(
            "cargo::rustc-env=FACEHUGGER_{}={}",
            model.constant, model.snapshot
        );
    }
    Ok(built)
}

fn offline_hint(error: Error, offline: bool) -> Error {
    match error {
        Error::OfflineMissing { missing } if offline => Error::Other(format!(
            "offline (CARGO_NET_OFFLINE / HF_HUB_OFFLINE) and the HF cache is missing:\n{}\nfetch them with `cargo facehugger sync` while online",
            missing.join("\n")
        )),
        other => other,
    }
}

/// Gives each model its constant: the manifest's `name`, or the repo id (plus the ref when it is
/// not `main`), upper-cased with `_` for anything else.
fn name_models(
    models: Vec<(Model, Option<CommitId>)>,
    cache: &Cache,
) -> Result<Vec<BuiltModel>, Error> {
    let mut built: Vec<BuiltModel> = Vec::with_capacity(models.len());
    for (model, commit) in models {
        let constant = match &model.name {
            Some(name) => name.to_ascii_uppercase(),
            None if model.reference == DEFAULT_REF => constant_name(model.repo.id.as_str()),
            None => constant_name(&format!("{}_{}", model.repo.id, model.reference)),
        };
        if let Some(other) = built.iter().find(|b| b.constant == constant) {
            return Err(Error::Usage(format!(
                "{} and {} would both be the constant `{constant}`: give one a `name`",
                other.model.origin, model.origin
            )));
        }
        let snapshot = match &commit {
            Some(commit) => cache.snapshot_dir(&model.repo, commit),
            None => cache
                .repo_dir(&model.repo)
                .join("snapshots")
                .join(&model.reference),
        };
        built.push(BuiltModel {
            constant,
            model,
            commit,
            snapshot,
        });
    }
    Ok(built)
}

/// `acme/tiny-v2.1` → `ACME_TINY_V2_1`; a leading digit gets a `_`.
fn constant_name(text: &str) -> String {
    let mut name = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_uppercase());
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    let name = name.trim_matches('_').to_owned();
    if name.starts_with(|c: char| c.is_ascii_digit()) || name.is_empty() {
        format!("_{name}")
    } else {
        name
    }
}

fn generated_file(models: &[BuiltModel]) -> String {
    let mut out = String::from(
        "// Generated by facehugger's build-script API (facehugger::build::run): the snapshot\n// folder of each model in the HF cache.\n",
    );
    for model in models {
        let commit = model.commit.as_ref().map_or_else(
            || "not resolved (docs.rs build)".to_owned(),
            CommitId::to_string,
        );
        let _ = write!(
            out,
            "\n/// `{}` at `{}` (commit {commit}): its snapshot folder in the HF cache.\n#[allow(dead_code)]\npub const {}: &str = {:?};\n",
            model.model.repo,
            model.model.reference,
            model.constant,
            model.snapshot.as_str()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_named_after_the_repo() {
        assert_eq!(constant_name("acme/tiny"), "ACME_TINY");
        assert_eq!(
            constant_name("acme/tiny-v2.1_refs/pr/1"),
            "ACME_TINY_V2_1_REFS_PR_1"
        );
        assert_eq!(constant_name("1org/x"), "_1ORG_X");
    }
}
