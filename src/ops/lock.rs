//! `facehugger lock`: resolve every ref and write the lock file; download nothing.

use camino::Utf8PathBuf;

use super::Options;
use crate::error::Error;
use crate::lock::Lock;
use crate::report::Reporter;
use crate::sync::{self, LockMode};

/// What `lock` found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockReport {
    /// The lock file.
    pub path: Utf8PathBuf,
    /// The lock as it should be.
    pub lock: Lock,
    /// Whether the file on disk differed from it (or was missing).
    pub changed: bool,
    /// Whether the file was written.
    pub written: bool,
}

/// Resolves every ref and writes the lock file if it changed. With `check`, writes nothing and
/// fails if the lock is missing or would change.
pub fn lock(options: &Options, check: bool, reporter: &dyn Reporter) -> Result<LockReport, Error> {
    let mode = if check {
        LockMode::Locked
    } else {
        LockMode::Update
    };
    let settings = options.find(mode)?;
    let resolution = sync::resolve(&settings, reporter)?;
    let written = !check && sync::write_lock(&settings, &resolution, reporter)?;
    if !check {
        super::remember(&settings, &options.env, reporter);
    }
    Ok(LockReport {
        path: settings.lock_path,
        lock: resolution.lock,
        changed: resolution.lock_changed,
        written,
    })
}
