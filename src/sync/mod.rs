//! The sync engine: resolve each model's ref to a commit, and make the cache hold every selected
//! file of that commit.
//!
//! The work is split in a pure planner ([`plan`]) and an executor ([`execute`], with large files
//! in [`segments`]). Network use is minimal: one revision request per repo and ref (in parallel),
//! one paginated tree listing per commit not already listed in the cache's `trees/`, one GET per
//! missing blob (in parallel). The commands built on it are in `ops`.

mod execute;
mod installer;
pub(crate) mod plan;
mod segments;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;

use crate::cache::{Cache, Record, SnapshotView};
use crate::error::{Error, OutOfDate, all_done};
use crate::files::write_if_changed;
use crate::hub::{Hub, HubConfig};
use crate::lock::{Lock, LockEntry};
use crate::manifest::{Manifest, Model};
use crate::pool::run_parallel;
use crate::repo::{CommitId, Repo, RepoFile};
use crate::report::{Event, Reporter};
use execute::{Job, Outcome, Transfer, install};
use installer::{FileBudget, Installer};
use plan::{Action, CacheView, ModelPlan, Resolved, merge_plans, plan_model};

/// Default `-j`: connections open at once.
pub(crate) const DEFAULT_JOBS: usize = 64;
/// Default connections one large file may use.
pub(crate) const DEFAULT_CONNECTIONS_PER_FILE: usize = 16;
/// Default smallest piece of a file one connection fetches: files of twice this size are split.
pub(crate) const DEFAULT_CHUNK_BYTES: u64 = 1024 * 1024;

/// How the lock file is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// Resolve every ref and rewrite the lock if it changed.
    #[default]
    Update,
    /// Resolve every ref, and fail if the lock is missing or would change (`--locked`).
    Locked,
    /// Trust the lock: no resolution, no lock write (`--frozen`).
    Frozen,
    /// Resolve every ref but never write the lock: for build scripts, whose source tree may be
    /// read-only.
    InMemory,
}

/// How files are downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferOptions {
    /// Connections open at once in all (`-j`): parallel files, and chunks of large files.
    pub jobs: usize,
    /// Connections one large file may use at once.
    pub connections_per_file: usize,
    /// Files of at least twice this size are fetched in ranged chunks of this size.
    pub chunk_bytes: u64,
    /// Link a file to hf's shared Xet store when it has a verified copy, rather than download it
    /// (off with `HF_HUB_DISABLE_SHARED_BLOBS=1`).
    pub reuse_shared_blobs: bool,
}

impl Default for TransferOptions {
    fn default() -> TransferOptions {
        TransferOptions {
            jobs: DEFAULT_JOBS,
            connections_per_file: DEFAULT_CONNECTIONS_PER_FILE,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            reuse_shared_blobs: true,
        }
    }
}

/// Everything the engine needs, resolved from options, project and environment.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The manifest.
    pub(crate) manifest: Manifest,
    /// The lock file (beside the manifest).
    pub(crate) lock_path: Utf8PathBuf,
    /// The lock file as read, if there is one.
    pub(crate) lock: Option<Lock>,
    /// The HF cache.
    pub(crate) cache: Cache,
    /// How to reach the Hub.
    pub(crate) hub: HubConfig,
    /// How the lock file is used.
    pub(crate) mode: LockMode,
    /// Use no network at all (`--offline`, `HF_HUB_OFFLINE=1`).
    pub(crate) offline: bool,
    /// How files are downloaded.
    pub(crate) transfer: TransferOptions,
    /// The models to sync, as indices into `manifest.models`; `None` for all. The lock always
    /// covers every model (`-p` in a workspace syncs some members but keeps the whole lock).
    pub(crate) selection: Option<Vec<usize>>,
}

impl Settings {
    /// A model is synced unless a selection leaves it out.
    fn is_selected(&self, model: &Model) -> bool {
        match &self.selection {
            None => true,
            Some(indices) => indices
                .iter()
                .any(|&index| self.manifest.models.get(index) == Some(model)),
        }
    }

    fn selected_models(&self) -> Vec<Model> {
        let models = self.manifest.models.iter();
        models
            .filter(|model| self.is_selected(model))
            .cloned()
            .collect()
    }
}

/// The result of resolving: each model's commit and the lock that records them.
#[derive(Debug, Clone)]
pub(crate) struct Resolution {
    /// Each manifest model with its commit, in manifest order.
    pub(crate) models: Vec<Resolved>,
    /// The lock as it should be.
    pub(crate) lock: Lock,
    /// Whether the lock file on disk differs from it (or is missing).
    pub(crate) lock_changed: bool,
}

impl Resolution {
    /// The resolved models that the settings select for syncing.
    fn selected(&self, settings: &Settings) -> Vec<Resolved> {
        let models = self.models.iter();
        models
            .filter(|resolved| settings.is_selected(&resolved.model))
            .cloned()
            .collect()
    }
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Files downloaded.
    pub downloaded_files: usize,
    /// Bytes downloaded.
    pub downloaded_bytes: u64,
    /// Files linked from a blob already in the cache.
    pub linked_files: usize,
    /// Files linked to a verified copy in huggingface_hub's shared Xet store (not downloaded).
    pub shared_files: usize,
    /// Files that were already in place.
    pub fresh_files: usize,
    /// The snapshot folder of each model (`repo@ref`), in manifest order.
    pub snapshots: Vec<(String, Utf8PathBuf)>,
    /// Each synced model with its commit, in manifest order.
    pub resolved: Vec<Resolved>,
    /// Wall time.
    pub elapsed: Duration,
}

/// One client for all the requests of a run, made when first needed (a frozen or offline run
/// needs none), so that every phase reuses the same pooled connections (and waits out the
/// same rate limit).
struct Client<'a> {
    config: &'a HubConfig,
    reporter: &'a dyn Reporter,
    hub: OnceLock<Hub<'a>>,
}

impl<'a> Client<'a> {
    fn new(config: &'a HubConfig, reporter: &'a dyn Reporter) -> Client<'a> {
        Client {
            config,
            reporter,
            hub: OnceLock::new(),
        }
    }

    fn hub(&self) -> &Hub<'a> {
        self.hub
            .get_or_init(|| Hub::new(self.config.clone(), self.reporter))
    }
}

/// Resolves every model to a commit (as the lock mode says) and checks the lock against it.
/// Writes nothing.
pub(crate) fn resolve(settings: &Settings, reporter: &dyn Reporter) -> Result<Resolution, Error> {
    resolve_with(settings, reporter, &Client::new(&settings.hub, reporter))
}

fn resolve_with(
    settings: &Settings,
    reporter: &dyn Reporter,
    client: &Client<'_>,
) -> Result<Resolution, Error> {
    let models = match settings.mode {
        LockMode::Frozen => resolve_frozen(settings)?,
        LockMode::Update | LockMode::Locked | LockMode::InMemory if settings.offline => {
            resolve_from_cache(settings)?
        }
        LockMode::Update | LockMode::Locked | LockMode::InMemory => {
            resolve_online(settings, reporter, client)?
        }
    };
    let lock = Lock::from_entries(models.iter().map(|resolved| LockEntry {
        repo: resolved.model.repo.clone(),
        revision: resolved.commit.clone(),
        refs: if resolved.commit == *resolved.model.reference {
            Vec::new()
        } else {
            vec![resolved.model.reference.clone()]
        },
    }));
    let on_disk = std::fs::read(&settings.lock_path).ok();
    let lock_changed = on_disk.as_deref() != Some(lock.render().as_bytes());
    if settings.mode == LockMode::Locked && lock_changed {
        return Err(Error::LockOutOfDate {
            path: settings.lock_path.clone(),
            reason: if on_disk.is_none() {
                OutOfDate::Missing
            } else {
                OutOfDate::Changed
            },
        });
    }
    Ok(Resolution {
        models,
        lock,
        lock_changed,
    })
}

/// Writes the lock file if it changed (never in the frozen and in-memory modes); says so.
pub(crate) fn write_lock(
    settings: &Settings,
    resolution: &Resolution,
    reporter: &dyn Reporter,
) -> Result<bool, Error> {
    if matches!(settings.mode, LockMode::Frozen | LockMode::InMemory) {
        return Ok(false);
    }
    let written = write_if_changed(&settings.lock_path, &resolution.lock.render())?;
    if written {
        reporter.event(Event::Locked {
            path: &settings.lock_path,
        });
    }
    Ok(written)
}

/// Resolves, then lists and plans every model without writing anything: what `--dry-run` shows.
pub(crate) fn plan(settings: &Settings, reporter: &dyn Reporter) -> Result<Vec<ModelPlan>, Error> {
    let client = Client::new(&settings.hub, reporter);
    let resolution = resolve_with(settings, reporter, &client)?;
    let selected = resolution.selected(settings);
    let (listings, _, mut snapshots) = list_and_look(settings, &selected, &client)?;
    Ok(plan_all(settings, &selected, &listings, &mut snapshots))
}

/// Resolves, writes the lock, and fills the cache.
pub(crate) fn sync(settings: &Settings, reporter: &dyn Reporter) -> Result<SyncReport, Error> {
    let started = Instant::now();
    // A clone of the cache remembers the folders it checked for this run only.
    let settings = &settings.clone();
    let client = Client::new(&settings.hub, reporter);
    let resolution = resolve_with(settings, reporter, &client)?;
    write_lock(settings, &resolution, reporter)?;
    let selected = resolution.selected(settings);
    let (listings, fetched, mut snapshots) = list_and_look(settings, &selected, &client)?;
    let plans = plan_all(settings, &selected, &listings, &mut snapshots);
    let records = new_records(&plans, &snapshots);
    let plans = merge_plans(plans);
    if settings.offline {
        check_offline(&plans)?;
    }

    let cache = &settings.cache;
    cache.ensure_tag()?;
    for (repo, commit) in &fetched {
        cache
            .write_tree(repo, commit, &listings[&(repo.clone(), commit.clone())])
            .map_err(|error| Error::from(error).for_model(format!("{repo}@{commit}")))?;
    }
    for resolved in &selected {
        let model = &resolved.model;
        cache
            .write_ref(&model.repo, &model.reference, &resolved.commit)
            .map_err(|error| Error::from(error).for_model(resolved.name()))?;
    }

    let mut report = SyncReport::default();
    let mut jobs: Vec<Job> = Vec::new();
    // Two refs at one commit put the same file in two plans: one job for it. Only the files of
    // such commits go in the set (one dataset alone may have a hundred thousand files).
    let mut seen = HashSet::new();
    let shared_commits: HashSet<_> = plans
        .iter()
        .map(|plan| (&plan.resolved.model.repo, &plan.resolved.commit))
        .filter(|&commit| !seen.insert(commit))
        .collect();
    let mut queued = HashSet::new();
    for plan in &plans {
        let shared = shared_commits.contains(&(&plan.resolved.model.repo, &plan.resolved.commit));
        let name = plan.resolved.name();
        let repo = Arc::new(plan.resolved.model.repo.clone());
        let commit = Arc::new(plan.resolved.commit.clone());
        let to_download = plan.files_needing(Action::Download).count();
        let fresh = plan.files_needing(Action::Fresh).count();
        report.fresh_files += fresh;
        if plan.files.is_empty() {
            reporter.event(Event::NothingSelected { model: &name });
        } else if to_download == 0 && fresh == plan.files.len() {
            reporter.event(Event::Fresh {
                model: &name,
                files: plan.files.len(),
            });
        } else if to_download > 0 {
            reporter.event(Event::Downloading {
                model: &name,
                files: to_download,
                bytes: plan.download_bytes(),
            });
        }
        // Only downloads resume: a sync with nothing to fetch does not list blobs/ again.
        let partials = if to_download > 0 {
            cache.partial_etags(&plan.resolved.model.repo)
        } else {
            HashSet::new()
        };
        for planned in &plan.files {
            let key = (
                &plan.resolved.model.repo,
                &plan.resolved.commit,
                &planned.file.path,
            );
            if planned.action == Action::Fresh || (shared && !queued.insert(key)) {
                continue;
            }
            jobs.push(Job {
                repo: Arc::clone(&repo),
                commit: Arc::clone(&commit),
                file: Arc::clone(&planned.file),
                resumable: partials.contains(planned.file.etag()),
            });
        }
    }

    let hub = client.hub();
    let budget = FileBudget::for_jobs(settings.transfer.jobs);
    let transfer = Transfer::new(
        TransferOptions {
            jobs: budget.workers,
            ..settings.transfer
        },
        reporter,
    );
    let (count, bytes) = plans
        .iter()
        .flat_map(|plan| plan.files_needing(Action::Download))
        .fold((0, 0), |(n, b), planned| (n + 1, b + planned.file.size));
    if count > 0 {
        reporter.transfer_started(count, bytes);
    }
    let installer = Installer::new(cache, &jobs, budget.staged);
    let indices: Vec<usize> = (0..jobs.len()).collect();
    let outcomes = std::thread::scope(|scope| {
        scope.spawn(|| installer.run());
        let outcomes = run_parallel(&indices, budget.workers, |&index| {
            // Boxed: a hundred thousand outcomes, nearly all `Ok`.
            install(hub, cache, &transfer, &installer, (index, &jobs[index])).map_err(Box::new)
        });
        installer.close();
        outcomes
    });
    if count > 0 {
        reporter.transfer_finished();
    }
    let mut not_installed: BTreeMap<usize, Error> = installer.failures().into_iter().collect();
    let mut failures = Vec::new();
    for (index, (job, outcome)) in jobs.iter().zip(outcomes).enumerate() {
        let result = match outcome {
            Ok(Outcome::Staged) => match not_installed.remove(&index) {
                None => Ok(Outcome::Staged),
                Some(error) => Err(error),
            },
            Ok(outcome) => Ok(outcome),
            Err(error) => Err(*error),
        };
        match result {
            Ok(Outcome::Linked) => report.linked_files += 1,
            Ok(Outcome::Shared) => report.shared_files += 1,
            Ok(Outcome::Staged) => {
                report.downloaded_files += 1;
                report.downloaded_bytes += job.file.size;
            }
            Err(error) => {
                failures.push(error.for_model(format!("{}: {}", job.repo, job.file.path)))
            }
        }
    }
    all_done(failures)?;
    for (repo, commit, record) in records {
        cache.save_record(&repo, &commit, record);
    }
    report.snapshots = plans
        .iter()
        .map(|plan| &plan.resolved)
        .map(|r| (r.name(), cache.snapshot_dir(&r.model.repo, &r.commit)))
        .collect();
    report.resolved = selected;
    report.elapsed = started.elapsed();
    drop(installer);
    drop_later((listings, snapshots, plans, jobs));
    Ok(report)
}

/// Drops `value` on another thread: freeing a hundred thousand files' worth of small
/// allocations takes tens of milliseconds, which the caller need not wait for.
fn drop_later<T: Send + 'static>(value: T) {
    std::thread::spawn(move || drop(value));
}

fn resolve_frozen(settings: &Settings) -> Result<Vec<Resolved>, Error> {
    let Some(lock) = &settings.lock else {
        return Err(Error::LockOutOfDate {
            path: settings.lock_path.clone(),
            reason: OutOfDate::MissingFrozen,
        });
    };
    let mut missing = Vec::new();
    let mut models = Vec::new();
    for model in &settings.selected_models() {
        let commit = match lock.find(&model.repo, &model.reference) {
            Some(entry) => entry.revision.clone(),
            None => match model.pinned_commit() {
                Some(commit) => commit,
                None => {
                    missing.push(model.name());
                    continue;
                }
            },
        };
        models.push(Resolved {
            model: model.clone(),
            commit,
        });
    }
    if !missing.is_empty() {
        return Err(Error::LockIncomplete {
            path: settings.lock_path.clone(),
            missing,
        });
    }
    Ok(models)
}

fn resolve_from_cache(settings: &Settings) -> Result<Vec<Resolved>, Error> {
    let mut missing = Vec::new();
    let mut models = Vec::new();
    for model in &settings.manifest.models {
        let commit = match model.pinned_commit() {
            Some(commit) => Ok(Some(commit)),
            None => settings.cache.read_ref(&model.repo, &model.reference),
        };
        match commit {
            Ok(Some(commit)) => models.push(Resolved {
                model: model.clone(),
                commit,
            }),
            Ok(None) => missing.push(format!(
                "  {}: `{}` is not in the cache",
                model.name(),
                settings.cache.ref_path(&model.repo, &model.reference)
            )),
            Err(error) => missing.push(format!("  {}: {error}", model.name())),
        }
    }
    if missing.is_empty() {
        Ok(models)
    } else {
        Err(Error::OfflineMissing { missing })
    }
}

fn resolve_online(
    settings: &Settings,
    reporter: &dyn Reporter,
    client: &Client<'_>,
) -> Result<Vec<Resolved>, Error> {
    let manifest_models = &settings.manifest.models;
    // One request per distinct repo and ref; commits need none.
    let mut questions: Vec<(Repo, String)> = Vec::new();
    for model in manifest_models {
        let question = (model.repo.clone(), model.reference.clone());
        if model.pinned_commit().is_none() && !questions.contains(&question) {
            questions.push(question);
        }
    }
    if !questions.is_empty() {
        let names: Vec<String> = questions
            .iter()
            .map(|(repo, reference)| format!("{repo}@{reference}"))
            .collect();
        reporter.event(Event::Resolving { models: &names });
    }
    let hub = client.hub();
    let answers = run_parallel(&questions, settings.transfer.jobs, |(repo, reference)| {
        hub.resolve_revision(repo, reference)
    });
    let mut commits = BTreeMap::new();
    let mut failures = Vec::new();
    for ((repo, reference), answer) in questions.into_iter().zip(answers) {
        match answer {
            Ok(commit) => {
                commits.insert((repo, reference), commit);
            }
            Err(error) => {
                failures.push(Error::from(error).for_model(format!("{repo}@{reference}")))
            }
        }
    }
    all_done(failures)?;
    Ok(manifest_models
        .iter()
        .filter_map(|model| {
            let commit = model.pinned_commit().or_else(|| {
                commits
                    .get(&(model.repo.clone(), model.reference.clone()))
                    .cloned()
            })?;
            Some(Resolved {
                model: model.clone(),
                commit,
            })
        })
        .collect())
}

/// Each commit's files, shared by the plans and jobs that name them.
type Listings = BTreeMap<(Repo, CommitId), Vec<Arc<RepoFile>>>;

/// Each distinct commit's file listing: from `trees/` when cached, else from the Hub (in
/// parallel). Returns the listings and which of them were fetched.
fn list_commits(
    settings: &Settings,
    models: &[Resolved],
    client: &Client<'_>,
) -> Result<(Listings, Vec<(Repo, CommitId)>), Error> {
    let mut listings = Listings::new();
    let mut to_fetch: Vec<(Repo, CommitId)> = Vec::new();
    let mut missing = Vec::new();
    for resolved in models {
        let key = (resolved.model.repo.clone(), resolved.commit.clone());
        if listings.contains_key(&key) || to_fetch.contains(&key) {
            continue;
        }
        // Online, a listing that cannot be read (a planted link, say) is fetched again and
        // replaced, as one that is not there.
        match settings.cache.read_tree(&key.0, &key.1) {
            Ok(Some(files)) => {
                listings.insert(key, files);
            }
            Ok(None) if settings.offline => missing.push(format!(
                "  {}: no file listing for {} in the cache (`{}`)",
                resolved.name(),
                resolved.commit,
                settings.cache.tree_path(&key.0, &key.1)
            )),
            Err(error) if settings.offline => {
                missing.push(format!("  {}: {error}", resolved.name()))
            }
            Ok(None) | Err(_) => to_fetch.push(key),
        }
    }
    if !missing.is_empty() {
        return Err(Error::OfflineMissing { missing });
    }
    let hub = client.hub();
    let answers = run_parallel(&to_fetch, settings.transfer.jobs, |(repo, commit)| {
        hub.list_files(repo, commit)
    });
    let mut failures = Vec::new();
    for ((repo, commit), answer) in to_fetch.iter().zip(answers) {
        match answer {
            Ok(files) => {
                listings.insert((repo.clone(), commit.clone()), files);
            }
            Err(error) => failures.push(Error::from(error).for_model(format!("{repo}@{commit}"))),
        }
    }
    all_done(failures)?;
    Ok((listings, to_fetch))
}

impl CacheView for SnapshotView {
    fn has_pointer(&self, file: &RepoFile) -> bool {
        SnapshotView::has_pointer(self, file)
    }
    fn has_blob(&self, etag: &str) -> bool {
        SnapshotView::has_blob(self, etag)
    }
}

/// What is known of a model's snapshot when it is planned.
#[derive(Debug)]
enum Snapshot {
    /// Its folders, listed just now (boxed: a view is ten times a record's size).
    Listed(Box<SnapshotView>),
    /// Unchanged since a sync found it holding the files of this record.
    Recorded(Record),
}

/// A snapshot that holds every file asked about: one whose record covers the selection.
struct AllThere;

impl CacheView for AllThere {
    fn has_pointer(&self, _: &RepoFile) -> bool {
        true
    }
    fn has_blob(&self, _: &str) -> bool {
        true
    }
}

/// Each commit's listing, which of them came from the Hub, and what the cache holds of each
/// model's snapshot.
type Looked = (Listings, Vec<(Repo, CommitId)>, Vec<Snapshot>);

/// Each commit's listing, and what the cache holds of each model's snapshot, read at the same
/// time: for a large dataset the tree's parse and the folders' listings each take tens of
/// milliseconds.
fn list_and_look(
    settings: &Settings,
    models: &[Resolved],
    client: &Client<'_>,
) -> Result<Looked, Error> {
    let cache = &settings.cache;
    let look = || {
        models
            .iter()
            .map(|resolved| {
                let (repo, commit) = (&resolved.model.repo, &resolved.commit);
                match cache.unchanged_record(repo, commit) {
                    Some(record) => Snapshot::Recorded(record),
                    None => Snapshot::Listed(Box::new(cache.snapshot_view(repo, commit))),
                }
            })
            .collect::<Vec<_>>()
    };
    std::thread::scope(|scope| {
        let views = scope.spawn(look);
        let (listings, fetched) = list_commits(settings, models, client)?;
        let views = views
            .join()
            .map_err(|_| Error::Other("reading the cache's snapshots panicked".into()))?;
        Ok((listings, fetched, views))
    })
}

/// Plans each model. A snapshot whose record covers the model's selection holds every file;
/// one with a record of other files is listed now.
fn plan_all(
    settings: &Settings,
    models: &[Resolved],
    listings: &Listings,
    snapshots: &mut [Snapshot],
) -> Vec<ModelPlan> {
    models
        .iter()
        .zip(snapshots)
        .map(|(resolved, snapshot)| {
            let key = (resolved.model.repo.clone(), resolved.commit.clone());
            let listing = listings.get(&key).map_or(&[][..], Vec::as_slice);
            if let Snapshot::Recorded(record) = snapshot {
                let plan = plan_model(resolved.clone(), listing, &AllThere);
                if record.covers(plan.files.iter().map(|planned| &*planned.file)) {
                    return plan;
                }
                let (repo, commit) = (&resolved.model.repo, &resolved.commit);
                let view = settings.cache.snapshot_view(repo, commit);
                *snapshot = Snapshot::Listed(Box::new(view));
            }
            match snapshot {
                Snapshot::Listed(view) => plan_model(resolved.clone(), listing, &**view),
                // A record here covers the selection (one that does not was replaced above).
                Snapshot::Recorded(_) => plan_model(resolved.clone(), listing, &AllThere),
            }
        })
        .collect()
}

/// The records to keep once the sync succeeds: of each snapshot listed and found to hold
/// every selected file (see `cache::fresh`). A snapshot that needed anything has just
/// changed, and is recorded by the next sync that finds nothing to do.
fn new_records(plans: &[ModelPlan], snapshots: &[Snapshot]) -> Vec<(Repo, CommitId, Record)> {
    plans
        .iter()
        .zip(snapshots)
        .filter_map(|(plan, snapshot)| {
            let Snapshot::Listed(view) = snapshot else {
                return None;
            };
            let fresh = plan.files.iter().all(|f| f.action == Action::Fresh);
            if !fresh || plan.files.is_empty() {
                return None;
            }
            let record = view.record(plan.files.iter().map(|f| &*f.file))?;
            let resolved = &plan.resolved;
            Some((resolved.model.repo.clone(), resolved.commit.clone(), record))
        })
        .collect()
}

fn check_offline(plans: &[ModelPlan]) -> Result<(), Error> {
    let missing: Vec<String> = plans
        .iter()
        .flat_map(|plan| {
            plan.files_needing(Action::Download)
                .map(move |f| format!("  {}: {}", plan.resolved.name(), f.file.path))
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::OfflineMissing { missing })
    }
}
