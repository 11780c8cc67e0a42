//! What the operations tell their caller as they go: status events (a command line prints them
//! as cargo-style lines, a build script says nothing) and download progress.

use std::time::Duration;

use camino::Utf8Path;

/// Something that happened, for the caller to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Refs are being resolved on the Hub: these models (`repo@ref`), one request each.
    Resolving {
        /// The models asked about.
        models: &'a [String],
    },
    /// The lock file was written.
    Locked {
        /// The lock file.
        path: &'a Utf8Path,
    },
    /// Every selected file of a model is in the cache already.
    Fresh {
        /// The model, `repo@ref`.
        model: &'a str,
        /// Its files.
        files: usize,
    },
    /// Files of a model are about to be downloaded.
    Downloading {
        /// The model, `repo@ref`.
        model: &'a str,
        /// Files to download.
        files: usize,
        /// Bytes to download.
        bytes: u64,
    },
    /// No file of a model matches its include/exclude patterns.
    NothingSelected {
        /// The model, `repo@ref`.
        model: &'a str,
    },
    /// `add` checks that a repo and ref exist on the Hub.
    Checking {
        /// The model, `repo@ref`.
        model: &'a str,
    },
    /// A manifest was created.
    Created {
        /// The new manifest.
        path: &'a Utf8Path,
    },
    /// Something the user should know, that does not fail the command.
    Warning {
        /// What, in words.
        message: &'a str,
    },
    /// The Hub said a rate limit was reached: every request waits this long (until its window
    /// resets), then the run goes on.
    RateLimited {
        /// How long.
        wait: Duration,
        /// What the limit counts (`resolvers`, `api`, ...).
        resource: &'a str,
        /// Requests allowed per window, if the Hub said.
        quota: Option<u64>,
        /// The window, in seconds, if the Hub said.
        window_seconds: Option<u64>,
    },
    /// A manifest was edited (or left as it was).
    Edited {
        /// What happened to the model's entry.
        change: EditKind,
        /// The model, `repo@ref`.
        model: &'a str,
        /// The manifest.
        path: &'a Utf8Path,
    },
}

/// What `add` or `remove` did to a model's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditKind {
    /// A new entry.
    Added,
    /// Its patterns changed.
    Updated,
    /// Already there as asked.
    Unchanged,
    /// Taken out.
    Removed,
}

/// Where an operation's events and download progress go.
pub trait Reporter: Sync {
    /// Something happened.
    fn event(&self, event: Event<'_>);
    /// Downloads begin: this many files and bytes to fetch.
    fn transfer_started(&self, _files: usize, _bytes: u64) {}
    /// A file's download begins (`repo: path`).
    fn file_started(&self, _name: &str) {}
    /// Bytes arrived (counted again if a download has to start over).
    fn bytes_arrived(&self, _bytes: u64) {}
    /// A file's download ended, well or not.
    fn file_finished(&self, _name: &str) {}
    /// All downloads ended.
    fn transfer_finished(&self) {}
}

/// A reporter that says nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Reporter for Quiet {
    fn event(&self, _: Event<'_>) {}
}
