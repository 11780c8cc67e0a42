//! `facehugger verify`: re-hash every cached file of the manifest's models against its etag,
//! without the network; with `repair`, remove what is corrupt and download it again.

use std::fs::File;
use std::io::Read;

use camino::Utf8Path;

use super::status::selected_files;
use super::{Options, locals};
use crate::error::Error;
use crate::hash::Verifier;
use crate::project::load_lock;
use crate::repo::{Repo, RepoFile};
use crate::report::Reporter;
use crate::sync::{self, LockMode, Settings, SyncReport};

/// What `verify` found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// What is wrong (after the repair, with `repair`); empty when every file verified.
    pub problems: Vec<Problem>,
    /// The sync that repaired the cache, if there was one.
    pub repaired: Option<SyncReport>,
}

/// A problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The model, `acme/tiny@main`.
    pub model: String,
    /// Its repo.
    pub repo: Repo,
    /// The file's path in the repo (empty for a problem with the whole model).
    pub path: String,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// What is wrong with a model or one of its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The snapshot lacks the file.
    Missing {
        /// The etag of its blob.
        expected: String,
        /// Where its blob would be.
        blob: camino::Utf8PathBuf,
    },
    /// The file's blob does not hash to its etag.
    Corrupt {
        /// The etag.
        expected: String,
        /// What the blob hashes to.
        actual: String,
        /// The blob.
        blob: camino::Utf8PathBuf,
    },
    /// The model cannot be checked: no commit, or no file list, in the lock or the cache.
    Unknown {
        /// Why.
        reason: String,
    },
}

/// Re-hashes the cached files of every model; with `repair`, removes the corrupt blobs,
/// downloads what is missing again (the locked revisions), and checks once more.
pub fn verify(
    options: &Options,
    repair: bool,
    reporter: &dyn Reporter,
) -> Result<VerifyReport, Error> {
    let mut settings = options.find(LockMode::Frozen)?;
    let mut problems = check(&settings)?;
    let mut repaired = None;
    if repair && !problems.is_empty() {
        for problem in &problems {
            if let ProblemKind::Corrupt { expected, .. } = &problem.kind {
                settings.cache.remove_blob(&problem.repo, expected)?;
            }
        }
        // Re-download what is missing now, at the revisions verify looked at.
        let mode = if settings.lock.is_some() {
            LockMode::Frozen
        } else {
            LockMode::Update
        };
        let repair_settings = Settings {
            mode,
            ..settings.clone()
        };
        repaired = Some(sync::sync(&repair_settings, reporter)?);
        settings.lock = load_lock(&settings.lock_path)?;
        problems = check(&settings)?;
    }
    Ok(VerifyReport { problems, repaired })
}

/// Re-hashes the cached files of every model against their etags; returns what is wrong.
fn check(settings: &Settings) -> Result<Vec<Problem>, Error> {
    let cache = &settings.cache;
    let mut problems = Vec::new();
    for local in locals(settings, settings.lock.as_ref()) {
        let model = local.model;
        let problem = |path: &str, kind| Problem {
            model: model.name(),
            repo: model.repo.clone(),
            path: path.to_owned(),
            kind,
        };
        let unknown = |reason: &str| {
            problem(
                "",
                ProblemKind::Unknown {
                    reason: reason.to_owned(),
                },
            )
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
            let expected = file.etag().to_owned();
            if !cache.has_pointer(&model.repo, commit, &file.path) {
                problems.push(problem(&file.path, ProblemKind::Missing { expected, blob }));
                continue;
            }
            if let Some(actual) = hash_blob(&blob, &file)? {
                problems.push(problem(
                    &file.path,
                    ProblemKind::Corrupt {
                        expected,
                        actual,
                        blob,
                    },
                ));
            }
        }
    }
    Ok(problems)
}

/// Re-hashes a cached blob; `Some(actual hash)` when it is not what its etag says.
fn hash_blob(path: &Utf8Path, file: &RepoFile) -> Result<Option<String>, Error> {
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
    Ok(verifier
        .check(file, size)
        .err()
        .map(|mismatch| mismatch.actual))
}
