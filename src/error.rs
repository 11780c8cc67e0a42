//! The library's error type. Every message names what it concerns (file and line, repo and ref,
//! path on disk) and, where a user can act, says how.

use std::io;

use camino::{Utf8Path, Utf8PathBuf};

/// Everything that can go wrong in facehugger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The manifest does not parse or validate; the message starts with `file:line:column`.
    #[error("{message}")]
    Manifest {
        /// The full message.
        message: String,
    },
    /// The lock file does not parse or validate; the message names the file and the entry.
    #[error("{message}")]
    Lock {
        /// The full message.
        message: String,
    },
    /// `--locked` or `lock --check` found that the lock file would change.
    #[error("the lock file `{path}` {problem}; run `facehugger lock` to update it")]
    LockOutOfDate {
        /// The lock file.
        path: Utf8PathBuf,
        /// `is missing` or `needs to be updated`.
        problem: &'static str,
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
    #[error("failed to {action} `{path}`: {source}{}", io_hint(source))]
    Io {
        /// What we tried to do, e.g. `create the blob`.
        action: &'static str,
        /// The path concerned.
        path: Utf8PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The Hub (or the network on the way) refused or failed a request.
    #[error("{0}")]
    Hub(#[from] crate::hub::HubError),
    /// A downloaded file does not match the hash the Hub announced; it was not installed.
    #[error(
        "`{path}` is corrupt: expected {algorithm} {expected}, got {actual} ({size} bytes); it was not installed"
    )]
    HashMismatch {
        /// The file's path in the repo.
        path: String,
        /// `sha256` or `git-sha1`.
        algorithm: &'static str,
        /// What the Hub announced.
        expected: String,
        /// What the bytes hash to.
        actual: String,
        /// How many bytes arrived.
        size: u64,
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

impl Error {
    /// Wraps an I/O error with the action and path it concerns.
    pub fn io(action: &'static str, path: &Utf8Path, source: io::Error) -> Error {
        Error::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }

    /// Puts an error in the context of one model.
    pub fn for_model(self, model: impl Into<String>) -> Error {
        Error::Model {
            model: model.into(),
            source: Box::new(self),
        }
    }

    /// The process exit code for this error: 2 for invalid input, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Manifest { .. } | Error::Lock { .. } => 2,
            Error::Model { source, .. } => source.exit_code(),
            _ => 1,
        }
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn io_hint(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            " (the disk is full: free some space or point --cache-dir / HF_HUB_CACHE elsewhere)"
        }
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            " (permission denied: check who owns the cache, or point --cache-dir / HF_HUB_CACHE elsewhere)"
        }
        _ => "",
    }
}

/// Longest user value (repo id, ref, lock field) quoted whole in a message.
pub(crate) const MAX_SHOWN_CHARS: usize = 100;

/// Longest parser message (serde-saphyr's, serde_json's) printed whole: some quote the input.
pub(crate) const MAX_MESSAGE_CHARS: usize = 300;

/// `text` made safe to print inside a one-line message: control and bidirectional-formatting
/// characters escaped (`\u{1b}`), and, beyond `max_chars` characters (escapes included), the
/// middle cut out. A manifest or lock can hold anything; a message must not carry a terminal
/// escape sequence or a megabyte of it.
pub(crate) fn shown(text: &str, max_chars: usize) -> String {
    let escaped = |c: char| {
        let (plain, escape) = if is_unprintable(c) {
            (None, Some(c.escape_default()))
        } else {
            (Some(c), None)
        };
        plain.into_iter().chain(escape.into_iter().flatten())
    };
    let mut length = 0;
    if text.chars().all(|c| {
        length += escaped(c).count();
        length <= max_chars
    }) {
        return text.chars().flat_map(escaped).collect();
    }
    // Whole characters from each end, as many as fit.
    let take = |chars: &mut dyn Iterator<Item = char>, budget: usize| {
        let mut used = 0;
        let mut kept = Vec::new();
        for c in chars {
            used += escaped(c).count();
            if used > budget {
                break;
            }
            kept.push(c);
        }
        kept
    };
    let head_budget = max_chars * 2 / 3;
    let head = take(&mut text.chars(), head_budget);
    let mut tail = take(
        &mut text.chars().rev(),
        max_chars.saturating_sub(head_budget + 1),
    );
    tail.reverse();
    let mut out: String = head.into_iter().flat_map(escaped).collect();
    out.push('…');
    out.extend(tail.into_iter().flat_map(escaped));
    out
}

/// Control characters, and the invisible marks that reorder the text around them.
fn is_unprintable(c: char) -> bool {
    let bidi =
        matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    c.is_control() || bidi
}

/// `file:line:column: not UTF-8 text ...`, placing the first byte that is not UTF-8.
pub(crate) fn not_utf8(path: &Utf8Path, bytes: &[u8], error: &std::str::Utf8Error) -> String {
    let valid = &bytes[..error.valid_up_to()];
    let line = valid.iter().filter(|&&byte| byte == b'\n').count() + 1;
    let line_start = valid
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |at| at + 1);
    let column = String::from_utf8_lossy(&valid[line_start..])
        .chars()
        .count()
        + 1;
    let byte = bytes.get(error.valid_up_to()).copied().unwrap_or_default();
    format!("{path}:{line}:{column}: not UTF-8 text (byte 0x{byte:02x}); save it as UTF-8")
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_name_the_path_and_suggest_a_way_out() {
        let full = Error::io(
            "write",
            Utf8Path::new("/c/blobs/x"),
            io::Error::from(io::ErrorKind::StorageFull),
        );
        let message = full.to_string();
        assert!(
            message.starts_with("failed to write `/c/blobs/x`: "),
            "{message}"
        );
        assert!(
            message.ends_with(
                "(the disk is full: free some space or point --cache-dir / HF_HUB_CACHE elsewhere)"
            ),
            "{message}"
        );
        let denied = Error::io(
            "write",
            Utf8Path::new("/c"),
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(
            denied
                .to_string()
                .contains("permission denied: check who owns the cache")
        );
        assert_eq!(full.for_model("acme/tiny@main").exit_code(), 1);
        let invalid = Error::Manifest {
            message: String::new(),
        };
        assert_eq!(invalid.for_model("x").exit_code(), 2);
    }

    #[test]
    fn shown_values_are_printable_and_short() {
        assert_eq!(shown("acme/tiny", 100), "acme/tiny");
        assert_eq!(
            shown("a\u{1b}[2J\tb\u{202e}", 100),
            "a\\u{1b}[2J\\tb\\u{202e}"
        );
        let long = shown(&"x".repeat(1_000_000), 100);
        assert_eq!(long.chars().count(), 100);
        assert_eq!(long.chars().nth(66), Some('…'));
        assert_eq!(shown("aé", 1), "…");
        let escapes = shown(&"\u{1b}".repeat(1000), 100);
        assert!(escapes.chars().count() <= 100, "{escapes}");
        assert!(escapes.starts_with("\\u{1b}") && escapes.ends_with("\\u{1b}"));
    }

    #[test]
    fn invalid_utf8_is_placed_by_line_and_column() {
        let error = String::from_utf8(b"models:\n  - r\xc3\xa9po: \xff\n".to_vec()).unwrap_err();
        assert_eq!(
            not_utf8(
                Utf8Path::new("f.yaml"),
                error.as_bytes(),
                &error.utf8_error()
            ),
            "f.yaml:2:11: not UTF-8 text (byte 0xff); save it as UTF-8"
        );
    }
}
