//! The terminal side of the reporter: cargo-style status lines, and a live progress display
//! while files download.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use anstyle::{AnsiColor, Effects, Style};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::output::human_bytes;
use crate::error::Error;
use crate::report::{EditKind, Event, Reporter};
use crate::text::plural;

/// Cargo-style status lines on stderr: the verb right-aligned in 12 columns, bold green on a
/// terminal (anstream strips the colour elsewhere and honours NO_COLOR).
pub(crate) struct Terminal {
    quiet: bool,
    verbose: bool,
    /// The live display while files download (drawn only on a terminal).
    progress: Mutex<Option<Live>>,
}

/// Overall bytes, rate and ETA, plus a line per file in flight.
struct Live {
    multi: MultiProgress,
    total: ProgressBar,
    files: Vec<(String, ProgressBar)>,
}

/// Files shown in flight at most; the others still count in the total.
const FILES_SHOWN: usize = 8;

const STATUS: Style = AnsiColor::Green.on_default().effects(Effects::BOLD);
const ERROR: Style = AnsiColor::Red.on_default().effects(Effects::BOLD);
const WARNING: Style = AnsiColor::Yellow.on_default().effects(Effects::BOLD);

impl Terminal {
    pub(super) fn new(quiet: bool, verbose: bool) -> Terminal {
        Terminal {
            quiet,
            verbose,
            progress: Mutex::new(None),
        }
    }

    pub(super) fn detail(&self, verb: &str, message: &str) {
        if self.verbose {
            self.status(verb, message);
        }
    }

    pub(super) fn error(&self, error: &Error) {
        self.print(|| {
            let _ = writeln!(anstream::stderr(), "{ERROR}error{ERROR:#}: {error}");
        });
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Option<Live>> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Prints above the live display, if there is one.
    fn print(&self, write: impl FnOnce()) {
        match self.live().as_ref() {
            Some(live) => live.multi.suspend(write),
            None => write(),
        }
    }
}

impl Terminal {
    /// A status line: the verb right-aligned in 12 columns, then the message.
    pub(super) fn status(&self, verb: &str, message: &str) {
        if !self.quiet {
            self.print(|| {
                // One write per line: formatting straight to stderr writes the padding byte by byte.
                let line = format!("{STATUS}{verb:>12}{STATUS:#} {message}\n");
                let _ = anstream::stderr().write_all(line.as_bytes());
            });
        }
    }

    fn warn(&self, message: &str) {
        if !self.quiet {
            self.print(|| {
                let line = format!("{WARNING}warning{WARNING:#}: {message}\n");
                let _ = anstream::stderr().write_all(line.as_bytes());
            });
        }
    }
}

/// Whether stderr is coloured: anstream's choice, the one the status lines follow (`--color`,
/// then NO_COLOR, CLICOLOR_FORCE, CLICOLOR and whether stderr is a terminal).
fn stderr_has_colour() -> bool {
    anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never
}

/// A verb as the status lines show it: right-aligned in 12 columns, bold green with colour.
fn verb(verb: &str, colour: bool) -> String {
    if colour {
        format!("{STATUS}{verb:>12}{STATUS:#}")
    } else {
        format!("{verb:>12}")
    }
}

impl Reporter for Terminal {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Resolving { models } => match models {
                [one] => self.status("Resolving", one),
                several => self.status("Resolving", &format!("{} refs", several.len())),
            },
            Event::Locked { path } => self.status("Locked", path.as_str()),
            Event::Fresh { model, files } => {
                self.status("Fresh", &format!("{model} ({})", plural(files, "file")));
            }
            Event::Downloading {
                model,
                files,
                bytes,
            } => self.status(
                "Downloading",
                &format!(
                    "{model} ({}, {})",
                    plural(files, "file"),
                    human_bytes(bytes)
                ),
            ),
            Event::NothingSelected { model } => {
                self.warn(&format!(
                    "{model}: no file matches its include/exclude patterns"
                ));
            }
            Event::Checking { model } => self.status("Checking", model),
            Event::Warning { message } => self.warn(message),
            Event::RateLimited {
                wait,
                resource,
                quota,
                window_seconds,
            } => {
                let policy = match (quota, window_seconds) {
                    (Some(quota), Some(window)) => {
                        let what = match resource {
                            "resolvers" => "resolves",
                            "api" => "API requests",
                            _ => "requests",
                        };
                        format!("; {quota} {what} per {window} s")
                    }
                    _ => String::new(),
                };
                self.warn(&format!(
                    "rate limited by the Hub: waiting {} s{policy}",
                    wait.as_secs()
                ));
            }
            Event::Created { path } => self.status("Created", path.as_str()),
            Event::Edited {
                change,
                model,
                path,
            } => {
                let (verb, preposition) = match change {
                    EditKind::Added => ("Added", "in"),
                    EditKind::Updated => ("Updated", "in"),
                    EditKind::Unchanged => ("Unchanged", "in"),
                    EditKind::Removed => ("Removed", "from"),
                };
                self.status(verb, &format!("{model} {preposition} {path}"));
            }
        }
    }

    fn transfer_started(&self, files: usize, bytes: u64) {
        if self.quiet {
            return;
        }
        // Hidden by indicatif itself when stderr is not a terminal (or TERM=dumb): then there is
        // nothing to keep up to date.
        let target = ProgressDrawTarget::stderr();
        if target.is_hidden() {
            return;
        }
        let multi = MultiProgress::with_draw_target(target);
        let total = multi.add(ProgressBar::new(bytes));
        total.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        // Styled here rather than in the template: indicatif's own colour choice knows neither
        // --color nor all that anstream weighs (NO_COLOR, CLICOLOR, CLICOLOR_FORCE).
        total.set_prefix(verb("Downloading", stderr_has_colour()));
        total.set_message(files.to_string());
        // One ticker thread redraws every line; one per file would cost a thread per file.
        total.enable_steady_tick(Duration::from_millis(120));
        *self.live() = Some(Live {
            multi,
            total,
            files: Vec::new(),
        });
    }

    fn file_started(&self, name: &str) {
        if let Some(live) = self.live().as_mut()
            && live.files.len() < FILES_SHOWN
        {
            let line = live.multi.add(ProgressBar::new_spinner());
            line.set_style(
                ProgressStyle::with_template("{prefix:>12} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            line.set_message(name.to_owned());
            live.files.push((name.to_owned(), line));
        }
    }

    fn bytes_arrived(&self, bytes: u64) {
        if let Some(live) = self.live().as_ref() {
            live.total.inc(bytes);
        }
    }

    fn file_finished(&self, name: &str) {
        if let Some(live) = self.live().as_mut()
            && let Some(index) = live.files.iter().position(|(file, _)| file == name)
        {
            let (_, line) = live.files.remove(index);
            line.finish_and_clear();
            live.multi.remove(&line);
        }
    }

    fn transfer_finished(&self) {
        if let Some(live) = self.live().take() {
            for (_, line) in live.files {
                line.finish_and_clear();
            }
            live.total.finish_and_clear();
            let _ = live.multi.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_verb_is_coloured_only_when_colour_is_on() {
        assert_eq!(verb("Downloading", false), " Downloading");
        assert_eq!(
            verb("Downloading", true),
            "\u{1b}[1m\u{1b}[32m Downloading\u{1b}[0m"
        );
    }
}
