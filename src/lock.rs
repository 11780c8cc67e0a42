//! The lock file: `facehugger.lock`, the commit each declared ref resolved to.
//!
//! It is a JSON array in the shape of `hf cache ls --revisions --format json`, so that command's
//! output is a valid lock file:
//! ```json
//! [
//!   {
//!     "repo_id": "acme/tiny",
//!     "repo_type": "model",
//!     "revision": "0123456789abcdef0123456789abcdef01234567",
//!     "refs": ["main"]
//!   }
//! ]
//! ```
//! On reading, other keys (of any type) are ignored, and so are lines whose first non-blank
//! character is `#` (JSON itself can never contain such a line). It is written sorted,
//! pretty-printed, with a trailing newline, only when its content changes, and atomically.

use camino::Utf8Path;
use serde::Serialize;
use serde_json::Value;

use crate::location::Location;
use crate::repo::{CommitId, Repo, RepoId, RepoType};
use crate::text::{MAX_MESSAGE_CHARS, MAX_SHOWN_CHARS, not_utf8, shown};

/// The lock file name, beside the manifest.
pub const LOCK_FILE: &str = "facehugger.lock";

/// A lock file that does not parse or validate: where (the line and column of a JSON error, or
/// the entry as the key), and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct LockError {
    /// Where the mistake is.
    pub location: Location,
    /// What is wrong.
    pub message: String,
}

/// A parsed lock file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    /// The entries, in file order when read, sorted when built by [`Lock::from_entries`].
    pub entries: Vec<LockEntry>,
}

/// One revision of one repo.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LockEntry {
    /// The repo.
    pub repo: Repo,
    /// The commit.
    pub revision: CommitId,
    /// The manifest refs that resolved to this commit; empty for a commit pin.
    pub refs: Vec<String>,
}

impl LockEntry {
    /// The `hf cache ls` id, `model/acme/tiny`: the sort key of that command.
    fn sort_key(&self) -> (String, &CommitId) {
        (
            format!("{}/{}", self.repo.repo_type, self.repo.id),
            &self.revision,
        )
    }
}

impl Lock {
    /// Builds a lock from resolved entries: merges the refs of equal revisions and sorts as
    /// `hf cache ls` does (by `type/id`, then revision).
    pub fn from_entries(entries: impl IntoIterator<Item = LockEntry>) -> Lock {
        let mut merged: Vec<LockEntry> = Vec::new();
        for entry in entries {
            match merged
                .iter_mut()
                .find(|known| known.repo == entry.repo && known.revision == entry.revision)
            {
                Some(known) => known.refs.extend(entry.refs),
                None => merged.push(entry),
            }
        }
        for entry in &mut merged {
            entry.refs.sort();
            entry.refs.dedup();
        }
        merged.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        Lock { entries: merged }
    }

    /// Validates the bytes of a lock file (they must be UTF-8); `path` is only used in messages.
    pub fn from_bytes(path: &Utf8Path, bytes: Vec<u8>) -> Result<Lock, LockError> {
        let text = String::from_utf8(bytes).map_err(|err| {
            let (line, column, message) = not_utf8(err.as_bytes(), &err.utf8_error());
            LockError {
                location: Location::at(path, line, column),
                message,
            }
        })?;
        Lock::parse(path, &text)
    }

    /// Parses lock text; `path` is only used in messages.
    pub fn parse(path: &Utf8Path, text: &str) -> Result<Lock, LockError> {
        // An editor's byte-order mark is no reason to refuse the file.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // Blank out `#` lines rather than dropping them, so JSON errors keep their line numbers.
        let json: String = text
            .lines()
            .map(|line| {
                if line.trim_start().starts_with('#') {
                    ""
                } else {
                    line
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        if json.trim().is_empty() {
            return Err(LockError {
                location: Location::file(path),
                message: "the lock file is empty; expected a JSON array of entries (`facehugger lock` writes it)".into(),
            });
        }
        let values: Vec<Value> = serde_json::from_str(&json).map_err(|err| LockError {
            location: Location::at(path, err.line() as u64, err.column().max(1) as u64),
            message: format!(
                "{} (a lock file is a JSON array of entries, as `hf cache ls --revisions --format json` prints)",
                shown(strip_position(&err.to_string()), MAX_MESSAGE_CHARS)
            ),
        })?;
        let entries = values
            .iter()
            .enumerate()
            .map(|(index, value)| {
                parse_entry(value).map_err(|message| LockError {
                    location: Location::file(path).with_key(format!(
                        "entry {}{}",
                        index + 1,
                        entry_name(value)
                    )),
                    message,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Lock { entries })
    }

    /// The entry that pins `repo` at `reference`: the revision whose `refs` list it, or, for a
    /// commit, that revision itself.
    pub fn find(&self, repo: &Repo, reference: &str) -> Option<&LockEntry> {
        let of_repo = || self.entries.iter().filter(move |entry| &entry.repo == repo);
        of_repo()
            .find(|entry| entry.refs.iter().any(|r| r == reference))
            .or_else(|| of_repo().find(|entry| entry.revision == *reference))
    }

    /// The file's text: pretty-printed JSON with a trailing newline.
    pub fn render(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            repo_id: &'a RepoId,
            repo_type: &'a str,
            revision: &'a CommitId,
            refs: &'a [String],
        }
        let out: Vec<Out<'_>> = self
            .entries
            .iter()
            .map(|entry| Out {
                repo_id: &entry.repo.id,
                repo_type: entry.repo.repo_type.as_str(),
                revision: &entry.revision,
                refs: &entry.refs,
            })
            .collect();
        let mut text = serde_json::to_string_pretty(&out).unwrap_or_else(|_| "[]".to_owned());
        text.push('\n');
        text
    }
}

fn parse_entry(value: &Value) -> Result<LockEntry, String> {
    let object = value
        .as_object()
        .ok_or("expected an object with `repo_id`, `repo_type`, `revision` and `refs`")?;
    let text = |key: &str| -> Result<Option<&str>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(format!(
                "`{key}` must be a string, got {}",
                shown_json(other)
            )),
        }
    };
    let id = text("repo_id")?.ok_or("`repo_id` is missing")?;
    let id = RepoId::new(id).map_err(|why| format!("invalid `repo_id`: {why}"))?;
    let repo_type = match text("repo_type")? {
        None => RepoType::Model,
        Some(name) => RepoType::parse(name).ok_or_else(|| {
            format!(
                "unknown `repo_type` `{}`: expected `model`, `dataset` or `space`",
                shown(name, MAX_SHOWN_CHARS)
            )
        })?,
    };
    let text_revision = text("revision")?.ok_or("`revision` is missing")?;
    let Some(revision) = CommitId::parse(text_revision) else {
        let revision = text_revision;
        let hint = if CommitId::parse(&revision.to_ascii_lowercase()).is_some() {
            " (hex digits must be lowercase)"
        } else {
            ""
        };
        return Err(format!(
            "`revision` must be a full 40-hex commit id, got `{}`{hint}",
            shown(revision, MAX_SHOWN_CHARS)
        ));
    };
    let refs = match object.get("refs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("`refs` must hold strings, got {}", shown_json(item)))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "`refs` must be a list of strings, got {}",
                shown_json(other)
            ));
        }
    };
    Ok(LockEntry {
        repo: Repo { repo_type, id },
        revision,
        refs,
    })
}

/// ` (acme/tiny)` when the entry names its repo, for messages.
fn entry_name(value: &Value) -> String {
    match value.get("repo_id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => format!(" ({})", shown(id, MAX_SHOWN_CHARS)),
        _ => String::new(),
    }
}

/// A JSON value as a message quotes it: compact, printable and short.
fn shown_json(value: &Value) -> String {
    shown(&value.to_string(), MAX_SHOWN_CHARS)
}

/// serde_json appends ` at line L column C`; we print the position first instead.
fn strip_position(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |at| &message[..at])
}
