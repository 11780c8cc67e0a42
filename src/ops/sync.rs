//! `facehugger sync`: resolve, lock, and make the cache hold every selected file; and its
//! `--dry-run`, which plans without writing anything.

use super::Options;
use crate::error::Error;
use crate::report::Reporter;
use crate::sync::plan::ModelPlan;
use crate::sync::{self, LockMode, SyncReport};

/// Resolves every ref (as `mode` says), writes the lock, and downloads what the cache lacks.
pub fn sync(
    options: &Options,
    mode: LockMode,
    reporter: &dyn Reporter,
) -> Result<SyncReport, Error> {
    let settings = options.find(mode)?;
    let report = sync::sync(&settings, reporter);
    super::warn_without_links(&settings, &options.env, reporter);
    let report = report?;
    // Only a sync that succeeded: a failed command writes nothing outside the cache.
    super::remember(&settings, &options.env, reporter);
    Ok(report)
}

/// What `sync` would do, per model: the files to download and those already cached. Writes
/// nothing.
pub fn plan(
    options: &Options,
    mode: LockMode,
    reporter: &dyn Reporter,
) -> Result<Vec<ModelPlan>, Error> {
    sync::plan(&options.find(mode)?, reporter)
}
