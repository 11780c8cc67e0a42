//! The library's error type. Every message names what it concerns (file and line, repo and ref,
//! path on disk) and, where a user can act, says how. Each layer has its own error (a manifest's,
//! a lock file's, the Hub's, the file system's); this type gathers them for the operations above.

use std::fmt;

use camino::{Utf8Path, Utf8PathBuf};

use crate::files::IoError;
use crate::hash::Mismatch;
use crate::hub::HubError;
use crate::lock::LockError;
use crate::manifest::ManifestError;
use crate::text::plural;

/// Everything that can go wrong in facehugger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A manifest (or Cargo.toml table) does not parse or validate.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The lock file does not parse or validate.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// What was asked makes no sense here (a repo that is not declared, two manifests, ...).
    #[error("{0}")]
    Usage(String),
    /// `--locked`, `--frozen` or `lock --check` found the lock file missing or out of date.
    #[error("the lock file `{path}` {reason}; run `facehugger lock` to update it")]
    LockOutOfDate {
        /// The lock file.
        path: Utf8PathBuf,
        /// What is wrong with it.
        reason: OutOfDate,
    },
    /// `--frozen` and the lock file has no entry for some manifest models.
    #[error("the lock file `{path}` has no entry for {}; run `facehugger lock` to add {}", missing.join(", "), if missing.len() == 1 { "it" } else { "them" })]
    LockIncomplete {
        /// The lock file.
        path: Utf8PathBuf,
        /// The models missing from it, as `repo@ref`.
        missing: Vec<String>,
    },
    /// A file-system operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The Hub (or the network on the way) refused or failed a request.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// A downloaded file does not match the hash the Hub announced; it was not installed.
    #[error(
        "`{path}` is corrupt: expected {} {}, got {} ({} bytes); it was not installed",
        mismatch.kind, mismatch.expected, mismatch.actual, mismatch.size
    )]
    HashMismatch {
        /// The file's path in the repo.
        path: String,
        /// What was expected and what arrived.
        mismatch: Mismatch,
    },
    /// Offline, the cache cannot satisfy the manifest.
    #[error("offline and the cache is missing {}:\n{}", plural(missing.len(), "file"), missing.join("\n"))]
    OfflineMissing {
        /// One line per missing item: `repo@ref: path` or a whole model.
        missing: Vec<String>,
    },
    /// Some files of some models failed; the others were installed.
    #[error("{} failed:\n{}", plural(failures.len(), "download"), failures.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Several {
        /// Each failure, already in context.
        failures: Vec<Error>,
    },
    /// An error about one model: the message is prefixed with `repo@ref`.
    #[error("{model}: {source}")]
    Model {
        /// `repo@ref`, as the manifest says it.
        model: String,
        /// The cause.
        source: Box<Error>,
    },
    /// Anything else a user can act on, in words.
    #[error("{0}")]
    Other(String),
}

/// What is wrong with a lock file that `--locked`, `--frozen` or `lock --check` needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfDate {
    /// There is none.
    Missing,
    /// There is none, and `--frozen` syncs exactly what it records.
    MissingFrozen,
    /// Resolving the manifest gives another lock.
    Changed,
}

impl fmt::Display for OutOfDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutOfDate::Missing => "is missing",
            OutOfDate::MissingFrozen => "is missing (--frozen syncs exactly what it records)",
            OutOfDate::Changed => "needs to be updated",
        })
    }
}

impl Error {
    /// Wraps an I/O error with the action and path it concerns.
    pub(crate) fn io(action: &'static str, path: &Utf8Path, source: std::io::Error) -> Error {
        Error::Io(IoError::new(action, path, source))
    }

    /// Puts an error in the context of one model.
    pub(crate) fn for_model(self, model: impl Into<String>) -> Error {
        Error::Model {
            model: model.into(),
            source: Box::new(self),
        }
    }
}

/// `Ok` when nothing failed; else the one failure, or all of them together.
pub(crate) fn all_done(mut failures: Vec<Error>) -> Result<(), Error> {
    match failures.len() {
        0 => Ok(()),
        1 => Err(failures.remove(0)),
        _ => Err(Error::Several { failures }),
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::Location;

    #[test]
    fn errors_in_context_name_their_model() {
        let invalid = Error::Manifest(ManifestError {
            location: Location::file(Utf8Path::new("m.yaml")),
            message: "bad".into(),
        });
        assert_eq!(invalid.to_string(), "m.yaml: bad");
        assert_eq!(
            invalid.for_model("acme/tiny@main").to_string(),
            "acme/tiny@main: m.yaml: bad"
        );
    }

    #[test]
    fn out_of_date_locks_say_why() {
        let error = Error::LockOutOfDate {
            path: "f.lock".into(),
            reason: OutOfDate::Changed,
        };
        assert_eq!(
            error.to_string(),
            "the lock file `f.lock` needs to be updated; run `facehugger lock` to update it"
        );
    }
}
