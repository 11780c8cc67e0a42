//! `facehugger verify`: re-hash every cached file of the manifest's models against its etag,
//! and check that each snapshot entry leads to the blob of that etag, without the network; with
//! `repair`, remove what is corrupt and download or link it again.

use std::fs::File;

use camino::{Utf8Path, Utf8PathBuf};

use super::status::selected_files;
use super::{Options, locals};
use crate::cache::{Entry, SharedStore, links_to_blob, relative_blob_target};
use crate::error::Error;
use crate::files::open_regular;
use crate::hash::check_reader;
use crate::project::load_lock;
use crate::repo::{CommitId, Repo, RepoFile};
use crate::report::Reporter;
use crate::sync::{self, LockMode, Settings, SyncReport};

/// What `verify` found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Each model whose files were checked (after the repair, with `repair`), in manifest
    /// order. A model that could not be checked is not here but among the problems.
    pub models: Vec<VerifiedModel>,
    /// What is wrong (after the repair, with `repair`); empty when every file verified.
    pub problems: Vec<Problem>,
    /// The sync that repaired the cache, if there was one.
    pub repaired: Option<SyncReport>,
}

/// A model whose cached files `verify` checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedModel {
    /// The model, `acme/tiny@main`.
    pub model: String,
    /// Its repo.
    pub repo: Repo,
    /// The manifest's ref.
    pub reference: String,
    /// The commit checked: the locked one, else the one the cache's ref points at.
    pub revision: CommitId,
    /// The model's selected files in that commit.
    pub files: usize,
    /// How many of them were hashed (the others are among the problems).
    pub files_hashed: usize,
    /// The bytes hashed.
    pub bytes_hashed: u64,
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
    /// The snapshot lacks the file, or its link leads to no blob.
    Missing {
        /// The etag of its blob.
        expected: String,
        /// Where its blob would be.
        blob: Utf8PathBuf,
    },
    /// The file's content does not hash to its etag.
    Corrupt {
        /// The etag.
        expected: String,
        /// What the content hashes to.
        actual: String,
        /// What was hashed: the blob, or the file in the snapshot where links are off.
        blob: Utf8PathBuf,
        /// When the blob links into huggingface_hub's shared Xet store: the store's file, which
        /// is what is corrupt, and who uses it.
        shared: Option<SharedCopy>,
    },
    /// The snapshot entry is a link, but not to the blob of the file's etag.
    WrongLink {
        /// Where it should point: `../../blobs/<etag>`, climbing as deep as the path.
        expected: String,
        /// Where it points.
        actual: String,
        /// The blob it should lead to.
        blob: Utf8PathBuf,
        /// The link itself, in the snapshot.
        pointer: Utf8PathBuf,
    },
    /// The model or the file cannot be checked: no commit or no file list in the lock or the
    /// cache, or a file that cannot be read safely (a blob linking out of the cache, say).
    Unknown {
        /// Why.
        reason: String,
    },
}

/// A corrupt file of huggingface_hub's shared Xet store, which several repos may link to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCopy {
    /// The store's file: `<cache>/blobs/<2 hex>/<xet hash>`.
    pub payload: Utf8PathBuf,
    /// The repo blobs linking to it, as its `.refs` lists them (`models--a--b/blobs/<etag>`).
    pub used_by: Vec<String>,
}

/// Re-hashes the cached files of every model; with `repair`, removes the corrupt blobs (or
/// files, where links are off), downloads what is missing again and relinks what links
/// elsewhere (a sync of the locked revisions), and checks once more.
pub fn verify(
    options: &Options,
    repair: bool,
    reporter: &dyn Reporter,
) -> Result<VerifyReport, Error> {
    let mut settings = options.find(LockMode::Frozen)?;
    let (mut models, mut problems) = check(&settings)?;
    let mut repaired = None;
    if repair && !problems.is_empty() {
        for problem in &problems {
            match &problem.kind {
                ProblemKind::Corrupt {
                    expected,
                    blob,
                    shared,
                    ..
                } if *blob == settings.cache.blob_path(&problem.repo, expected) => {
                    // A link into the shared store goes, not the store's file: other repos link
                    // to it. Its manifest then drops this repo (and the file goes with its last
                    // user).
                    settings.cache.remove_blob(&problem.repo, expected)?;
                    if let Some(hash) = shared.as_ref().and_then(|copy| copy.payload.file_name()) {
                        settings.cache.store().lock(hash)?.sweep()?;
                    }
                }
                // The content itself, in a snapshot where links are off; or a link that leads
                // elsewhere (removed, not followed): the sync puts the right one back.
                ProblemKind::Corrupt { blob: path, .. }
                | ProblemKind::WrongLink { pointer: path, .. } => {
                    crate::platform::remove_file(path)
                        .map_err(|err| Error::io("remove the wrong file", path, err))?;
                }
                _ => {}
            }
        }
        // The sync downloads or links what is missing now, at the revisions verify looked at.
        let mode = if settings.lock.is_some() {
            LockMode::Frozen
        } else {
            LockMode::Update
        };
        let repair_settings = Settings {
            mode,
            ..settings.clone()
        };
        let synced = sync::sync(&repair_settings, reporter);
        super::warn_without_links(&repair_settings, &options.env, reporter);
        repaired = Some(synced?);
        settings.lock = load_lock(&settings.lock_path)?;
        (models, problems) = check(&settings)?;
    }
    Ok(VerifyReport {
        models,
        problems,
        repaired,
    })
}

/// Checks the cached files of every model: where each snapshot entry leads, and what its
/// content hashes to. Returns the models checked and what is wrong.
fn check(settings: &Settings) -> Result<(Vec<VerifiedModel>, Vec<Problem>), Error> {
    let cache = &settings.cache;
    let mut models = Vec::new();
    let mut problems = Vec::new();
    for local in locals(settings, settings.lock.as_ref())? {
        let model = local.model;
        let problem = |path: &str, kind| Problem {
            model: model.name(),
            repo: model.repo.clone(),
            path: path.to_owned(),
            kind,
        };
        let unknown = |path: &str, reason: String| problem(path, ProblemKind::Unknown { reason });
        let Some(commit) = local.revision() else {
            problems.push(unknown("", "neither locked nor in the cache".to_owned()));
            continue;
        };
        let Some(files) = selected_files(settings, model, commit)? else {
            problems.push(unknown(
                "",
                "no file list for its commit in the cache".to_owned(),
            ));
            continue;
        };
        let view = cache.snapshot_view(&model.repo, commit);
        let mut verified = VerifiedModel {
            model: model.name(),
            repo: model.repo.clone(),
            reference: model.reference.clone(),
            revision: commit.clone(),
            files: files.len(),
            files_hashed: 0,
            bytes_hashed: 0,
        };
        for file in &files {
            let etag = file.etag();
            let blob = cache.blob_path(&model.repo, etag);
            let missing = || ProblemKind::Missing {
                expected: etag.to_owned(),
                blob: blob.clone(),
            };
            // What to hash: the blob a right link leads to, or the file itself where links are
            // off. Nothing in the snapshot is followed.
            let content = match view.entry(&file.path) {
                None => Err(missing()),
                Some(Entry::Link) => {
                    let expected = relative_blob_target(&file.path, etag);
                    let target = view.link_target(&file.path).unwrap_or_default();
                    if !links_to_blob(&file.path, etag, &target) {
                        Err(ProblemKind::WrongLink {
                            expected,
                            actual: target,
                            blob: blob.clone(),
                            pointer: cache.pointer_path(&model.repo, commit, &file.path),
                        })
                    } else {
                        match cache.open_blob(&model.repo, etag) {
                            Ok(Some(reader)) => Ok((reader, blob.clone())),
                            Ok(None) => Err(missing()),
                            Err(error) => Err(ProblemKind::Unknown {
                                reason: error.to_string(),
                            }),
                        }
                    }
                }
                Some(Entry::File(_)) => {
                    let path = cache.pointer_path(&model.repo, commit, &file.path);
                    match open_regular(&path) {
                        Ok(reader) => Ok((reader, path)),
                        Err(error) => Err(ProblemKind::Unknown {
                            reason: Error::io("read", &path, error).to_string(),
                        }),
                    }
                }
                Some(Entry::Other) => Err(ProblemKind::Unknown {
                    reason: format!(
                        "`{}` is neither a file nor a link",
                        cache.pointer_path(&model.repo, commit, &file.path)
                    ),
                }),
            };
            let (reader, hashed) = match content {
                Ok(content) => content,
                Err(kind) => {
                    problems.push(problem(&file.path, kind));
                    continue;
                }
            };
            let (size, actual) = hash(reader, &hashed, file)?;
            verified.files_hashed += 1;
            verified.bytes_hashed += size;
            if let Some(actual) = actual {
                problems.push(problem(
                    &file.path,
                    ProblemKind::Corrupt {
                        expected: etag.to_owned(),
                        actual,
                        shared: shared_copy(&cache.store(), &hashed),
                        blob: hashed,
                    },
                ));
            }
        }
        models.push(verified);
    }
    Ok((models, problems))
}

/// The shared store's file behind a repo blob that links there, and who uses it.
fn shared_copy(store: &SharedStore, blob: &Utf8Path) -> Option<SharedCopy> {
    let hash = store.linked_hash(blob)?;
    let used_by = store
        .lock(&hash)
        .ok()
        .and_then(|lock| lock.references())
        .unwrap_or_default();
    Some(SharedCopy {
        payload: store.payload_path(&hash)?,
        used_by,
    })
}

/// Hashes what `reader` holds. Returns the bytes read, and the actual hash when it is not what
/// the etag says.
fn hash(reader: File, path: &Utf8Path, file: &RepoFile) -> Result<(u64, Option<String>), Error> {
    let (size, verdict) = check_reader(reader, file).map_err(|err| Error::io("read", path, err))?;
    Ok((size, verdict.err().map(|mismatch| mismatch.actual)))
}
