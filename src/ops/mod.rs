//! The commands, one module each: an options struct, a function, and a report. The command line
//! only parses arguments into these options, calls one function and prints its report; a
//! library user calls the same functions.
//!
//! Every operation starts from [`Options`]: where the project is, which cache, how to reach
//! the Hub, and the environment to read as the reference client reads it.

mod add;
mod export;
mod gc;
mod lock;
mod remove;
mod status;
mod sync;
mod verify;

use camino::Utf8PathBuf;

pub use add::{AddOptions, AddReport, add};
pub use export::{ExportOptions, ExportReport, ExportedModel, LinkMode, export};
pub use gc::{GcOptions, GcReport, RemovedRevision, gc, parse_duration};
pub use lock::{LockReport, lock};
pub use remove::{RemoveOptions, remove};
pub use status::{ModelStatus, path, status};
pub use sync::{plan, sync};
pub use verify::{Problem, ProblemKind, SharedCopy, VerifiedModel, VerifyReport, verify};

use crate::cache::{Cache, without_links_warning};
use crate::env::Env;
use crate::error::Error;
use crate::hub::HubConfig;
use crate::lock::Lock;
use crate::manifest::Model;
use crate::project::{Project, ProjectSpec};
use crate::registry::Registry;
use crate::repo::CommitId;
use crate::report::{Event, Reporter};
use crate::sync::{LockMode, Settings, TransferOptions};

/// What every operation needs: which project, which cache, how to reach the Hub.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where the models are declared.
    pub project: ProjectSpec,
    /// The HF hub cache; `None` for the one the environment names (as the reference client).
    pub cache_dir: Option<Utf8PathBuf>,
    /// Use no network at all (also when the environment says `HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// How files are downloaded.
    pub transfer: TransferOptions,
    /// Where environment variables come from.
    pub env: Env,
}

impl Options {
    fn cache(&self) -> Cache {
        let root = match &self.cache_dir {
            Some(dir) => dir.clone(),
            None => self.env.hub_cache(),
        };
        let cache = Cache::new(root).without_links(self.env.disable_symlinks());
        let records = Registry::records_dir(&self.env, cache.root());
        cache.with_records(records)
    }

    fn offline(&self) -> bool {
        self.offline || self.env.offline()
    }

    /// The engine's settings for this project.
    fn settings(&self, project: Project, mode: LockMode) -> Result<Settings, Error> {
        Ok(Settings {
            lock: project.load_lock()?,
            manifest: project.manifest,
            lock_path: project.lock_path,
            cache: self.cache(),
            hub: HubConfig::from_env(&self.env),
            mode,
            offline: self.offline(),
            transfer: TransferOptions {
                reuse_shared_blobs: self.transfer.reuse_shared_blobs
                    && !self.env.disable_shared_blobs(),
                ..self.transfer
            },
            selection: project.selection,
        })
    }

    /// Finds the project and makes the engine's settings for it.
    fn find(&self, mode: LockMode) -> Result<Settings, Error> {
        self.settings(self.project.find()?, mode)
    }
}

/// Remembers the project in its cache's registry, so that `gc` keeps what its lock pins. Only
/// a project with a lock file is remembered; failing to is a warning, not a failed command.
fn remember(settings: &Settings, env: &Env, reporter: &dyn Reporter) {
    if !settings.lock_path.is_file() {
        return;
    }
    let registry = Registry::new(env, settings.cache.root());
    if let Err(error) = registry.record(&settings.lock_path, &settings.manifest.path) {
        reporter.event(Event::Warning {
            message: &format!(
                "{error}; `facehugger gc` will not know that this project uses the cache"
            ),
        });
    }
}

/// Warns where symbolic links turned out impossible during a sync, as the reference client
/// does, unless `HF_HUB_DISABLE_SYMLINKS_WARNING` is set.
fn warn_without_links(settings: &Settings, env: &Env, reporter: &dyn Reporter) {
    if env.disable_symlinks_warning() {
        return;
    }
    for dir in settings.cache.links_refused() {
        reporter.event(Event::Warning {
            message: &without_links_warning(&dir),
        });
    }
}

/// One model with what the lock and the cache know of it, without the network.
struct Local<'a> {
    model: &'a Model,
    /// The commit the lock pins.
    locked: Option<CommitId>,
    /// The commit the cache's `refs/<ref>` points at (as of the last sync).
    cached: Option<CommitId>,
}

impl Local<'_> {
    /// The commit to look at: the locked one, else the cached one.
    fn revision(&self) -> Option<&CommitId> {
        self.locked.as_ref().or(self.cached.as_ref())
    }
}

/// Each model of the manifest with the commits the lock and the cache's refs give it.
fn locals<'a>(settings: &'a Settings, lock: Option<&Lock>) -> Result<Vec<Local<'a>>, Error> {
    settings
        .manifest
        .models
        .iter()
        .map(|model| local(settings, lock, model))
        .collect()
}

/// The model with the commits the lock and the cache's ref give it. A ref that cannot be read
/// (a link, something that is not a commit) is an error naming it.
fn local<'a>(
    settings: &Settings,
    lock: Option<&Lock>,
    model: &'a Model,
) -> Result<Local<'a>, Error> {
    let cached = match model.pinned_commit() {
        Some(commit) => Some(commit),
        None => settings
            .cache
            .read_ref(&model.repo, &model.reference)
            .map_err(|error| Error::from(error).for_model(model.name()))?,
    };
    Ok(Local {
        model,
        locked: lock
            .and_then(|lock| lock.find(&model.repo, &model.reference))
            .map(|entry| entry.revision.clone()),
        cached,
    })
}
