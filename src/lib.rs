//! facehugger: declare the Hugging Face Hub repos a project needs, lock them to commits, and
//! sync them into the shared HF cache, laid out exactly as huggingface_hub lays it out.
//!
//! The library is what the `facehugger` and `cargo facehugger` commands run. Most crates use it
//! from a build script, through [`build`]; tools use the operations in [`ops`].
//!
//! # From a build script
//!
//! ```no_run
//! // build.rs: sync the models Cargo.toml declares, and generate their paths as constants.
//! facehugger::build::run();
//! ```
//!
//! # From a program
//!
//! ```no_run
//! use facehugger::ops::{self, Options};
//! use facehugger::{LockMode, Quiet};
//!
//! // The facehugger.yaml (or Cargo project) of the current folder, the cache and the Hub the
//! // environment names, as huggingface_hub finds them.
//! let options = Options::default();
//! let report = ops::sync(&options, LockMode::Update, &Quiet)?;
//! for (model, snapshot) in &report.snapshots {
//!     println!("{model}: {snapshot}");
//! }
//! # Ok::<(), facehugger::Error>(())
//! ```
//!
//! The modules below are private; what a library user needs is re-exported here.

#![allow(clippy::needless_doctest_main)]

pub mod build;
mod cache;
mod cargo;
#[cfg(feature = "cli")]
pub mod cli;
mod edit;
mod env;
mod error;
mod files;
mod hash;
mod hub;
mod location;
mod lock;
mod manifest;
pub mod ops;
mod patterns;
mod platform;
mod pool;
mod project;
mod registry;
mod repo;
mod report;
mod sync;
mod text;

pub use env::Env;
pub use error::{Error, OutOfDate, Result};
pub use files::IoError;
pub use hash::{HashKind, Mismatch};
pub use hub::{HubError, RateLimit};
pub use location::Location;
pub use lock::{LOCK_FILE, Lock, LockEntry, LockError};
pub use manifest::{DEFAULT_REF, MANIFEST_FILE, Manifest, ManifestError, Model};
pub use project::ProjectSpec;
pub use repo::{CommitId, Repo, RepoFile, RepoId, RepoType};
pub use report::{EditKind, Event, Quiet, Reporter};
pub use sync::plan::{Action, ModelPlan, PlannedFile, Resolved};
pub use sync::{LockMode, SyncReport, TransferOptions};

/// Parsers of untrusted input, for the fuzz targets in `fuzz/` (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::hub::parse_tree_page;
    pub use crate::patterns::{FileFilter, fnmatchcase};
    pub use crate::repo::{is_lower_hex, validate_ref, validate_repo_path};
}
