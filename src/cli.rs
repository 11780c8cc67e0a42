//! The command line: `facehugger` and `cargo facehugger` parse the same arguments here and call
//! the library. Status lines go to stderr in cargo's style; data (the dry-run plan) to stdout.

use std::ffi::OsString;
use std::io::Write;

use std::sync::Mutex;
use std::time::Duration;

use anstyle::{AnsiColor, Effects, Style};
use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cache::Cache;
use crate::error::Error;
use crate::hub::{HubConfig, is_truthy};
use crate::manifest::DEFAULT_REF;
use crate::project::Discovery;
use crate::repo::RepoType;
use crate::sync::plan::{Action, ModelPlan};
use crate::sync::{self, LockMode, Reporter, Settings, files, human_bytes};

const EXAMPLES: &str = "\
Examples:
  facehugger                         Sync facehugger.yaml: resolve, lock, download
  facehugger path/to/models.yaml     Sync another manifest (its lock sits beside it)
  facehugger --dry-run               Show what would be downloaded, and the `hf download` equivalent
  facehugger sync --frozen           Download exactly the revisions in facehugger.lock
  facehugger lock --check            Exit 1 if facehugger.lock is out of date (for CI)
  facehugger --offline               Use only the cache; list what is missing

Exit status: 0 success, 1 failure (network, hub, cache, out-of-date lock), 2 invalid usage or input.";

/// Declare the Hugging Face Hub repos a project needs, lock them to commits, and sync them into
/// the shared HF cache.
#[derive(Debug, Parser)]
#[command(
    name = "facehugger",
    version,
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true,
    styles = clap_cargo::style::CLAP_STYLING
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    sync: SyncArgs,
}

/// `cargo facehugger ...`: cargo runs `cargo-facehugger facehugger ...`.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo", styles = clap_cargo::style::CLAP_STYLING)]
enum CargoCli {
    /// Declare the Hugging Face Hub repos a crate needs, lock them, and sync them into the HF cache.
    #[command(
        version,
        after_help = EXAMPLES,
        args_conflicts_with_subcommands = true,
        disable_help_subcommand = true
    )]
    Facehugger(Cli),
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Resolve every ref, update the lock, and download what the cache lacks (the default).
    #[command(after_help = EXAMPLES)]
    Sync(SyncArgs),
    /// Resolve every ref and write facehugger.lock; download nothing.
    #[command(after_help = EXAMPLES)]
    Lock(LockArgs),
}

#[derive(Debug, Args)]
struct SyncArgs {
    /// Sync exactly the revisions in the lock file: no resolution, the lock is not written.
    /// (As in uv; unlike cargo, this does not imply --offline.)
    #[arg(long, conflicts_with = "locked")]
    frozen: bool,
    /// Fail (exit 1) without downloading if the lock file is missing or would change.
    #[arg(long)]
    locked: bool,
    /// Print the plan and the equivalent `hf download` commands; write nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct LockArgs {
    /// Write nothing; exit 1 if the lock file is missing or would change.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// The manifest: a facehugger.yaml, or a Cargo.toml [default: facehugger.yaml here, else the
    /// Cargo project around this folder]
    #[arg(value_name = "MANIFEST")]
    manifest: Option<Utf8PathBuf>,
    /// Path to a Cargo.toml whose [package.metadata.facehugger] / [workspace.metadata.facehugger]
    /// declare the models
    #[arg(long, value_name = "PATH", conflicts_with = "manifest")]
    manifest_path: Option<Utf8PathBuf>,
    /// Sync only these workspace members (and the workspace's own models); the lock still
    /// covers the whole workspace
    #[arg(short, long = "package", value_name = "NAME")]
    packages: Vec<String>,
    /// Use no network: resolve refs and files from the cache only [env: HF_HUB_OFFLINE=1]
    #[arg(long)]
    offline: bool,
    /// The HF hub cache [default: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub]
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<Utf8PathBuf>,
    /// Connections open at once: parallel files, and chunks of large files
    #[arg(short, long, value_name = "N", default_value_t = sync::DEFAULT_JOBS as u16, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Connections one large file may use at once (within --jobs)
    #[arg(long, value_name = "N", default_value_t = sync::DEFAULT_CONNECTIONS_PER_FILE as u16, value_parser = clap::value_parser!(u16).range(1..=256))]
    connections_per_file: u16,
    /// Chunk size, in KiB, of the ranged requests that fetch a large file (files of at least
    /// twice this size are chunked)
    #[arg(long, value_name = "KIB", default_value_t = sync::DEFAULT_CHUNK_BYTES / 1024, value_parser = clap::value_parser!(u64).range(1..))]
    chunk_size: u64,
    /// Print only errors
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// Also print each model's snapshot folder
    #[arg(short, long)]
    verbose: bool,
    /// When to colour the output
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    color: ColorChoice,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Runs `facehugger` with these arguments (the first is the program name); returns the exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    match Cli::try_parse_from(args) {
        Ok(cli) => execute(cli),
        Err(error) => clap_exit(&error),
    }
}

/// Runs `cargo-facehugger` as cargo calls it (`cargo-facehugger facehugger ARGS`); returns the
/// exit code.
pub fn cargo_main(args: impl IntoIterator<Item = OsString>) -> i32 {
    match CargoCli::try_parse_from(args) {
        Ok(CargoCli::Facehugger(cli)) => execute(cli),
        Err(error) => clap_exit(&error),
    }
}

fn clap_exit(error: &clap::Error) -> i32 {
    let _ = error.print();
    if error.use_stderr() { 2 } else { 0 }
}

fn execute(cli: Cli) -> i32 {
    // Ctrl-C: stop at once. Blobs are installed by atomic renames and partial downloads are
    // resumed (and verified) next time, so the cache stays valid for every client.
    let _ = ctrlc::set_handler(|| {
        let _writes = crate::cache::stop_writes();
        let _ = writeln!(
            anstream::stderr(),
            "\ninterrupted: partial downloads are kept; the next sync resumes them"
        );
        std::process::exit(130);
    });
    let (command, common) = match cli.command {
        Some(Command::Sync(args)) => (Run::Sync(args.mode(), args.dry_run), args.common),
        Some(Command::Lock(args)) => (Run::Lock(args.check), args.common),
        None => (
            Run::Sync(cli.sync.mode(), cli.sync.dry_run),
            cli.sync.common,
        ),
    };
    match common.color {
        ColorChoice::Always => anstream::ColorChoice::Always.write_global(),
        ColorChoice::Never => anstream::ColorChoice::Never.write_global(),
        ColorChoice::Auto => {}
    }
    let reporter = Terminal::new(common.quiet, common.verbose);
    match run(command, &common, &reporter) {
        Ok(()) => 0,
        Err(error) => {
            reporter.error(&error);
            error.exit_code()
        }
    }
}

impl SyncArgs {
    fn mode(&self) -> LockMode {
        if self.frozen {
            LockMode::Frozen
        } else if self.locked {
            LockMode::Locked
        } else {
            LockMode::Update
        }
    }
}

enum Run {
    Sync(LockMode, bool),
    Lock(bool),
}

fn run(command: Run, common: &CommonArgs, reporter: &Terminal) -> Result<(), Error> {
    let env = |name: &str| std::env::var(name).ok();
    let mode = match command {
        Run::Sync(mode, _) => mode,
        Run::Lock(_) => LockMode::Update,
    };
    let discovery = Discovery {
        manifest: common.manifest.clone(),
        manifest_path: common.manifest_path.clone(),
        packages: common.packages.clone(),
    };
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|dir| Utf8PathBuf::from_path_buf(dir).ok())
        .unwrap_or_else(|| Utf8PathBuf::from("."));
    let project = discovery.find(&cwd)?;
    let settings = Settings {
        manifest: project.manifest,
        lock_path: project.lock_path,
        cache: match &common.cache_dir {
            Some(dir) => Cache::new(dir.clone()),
            None => Cache::from_env(&env),
        },
        hub: HubConfig::from_env(&env),
        mode,
        offline: common.offline || env("HF_HUB_OFFLINE").is_some_and(|v| is_truthy(&v)),
        jobs: usize::from(common.jobs),
        connections_per_file: usize::from(common.connections_per_file),
        chunk_bytes: common.chunk_size * 1024,
        selection: project.selection,
    };
    match command {
        Run::Lock(check) => {
            let resolution = sync::lock(&settings, reporter, check)?;
            if !check && !resolution.lock_changed {
                reporter.status("Fresh", &format!("{} is up to date", settings.lock_path));
            }
            Ok(())
        }
        Run::Sync(_, true) => {
            let (_, plans) = sync::plan(&settings, reporter)?;
            print_plan(&plans, mode == LockMode::Frozen);
            Ok(())
        }
        Run::Sync(..) => {
            let report = sync::sync(&settings, reporter)?;
            let total = report.downloaded_files + report.linked_files + report.fresh_files;
            reporter.status(
                "Finished",
                &format!(
                    "{} in {:.2}s ({} downloaded, {}{}; {} already cached)",
                    files(total),
                    report.elapsed.as_secs_f64(),
                    report.downloaded_files,
                    human_bytes(report.downloaded_bytes),
                    rate(report.downloaded_bytes, report.elapsed),
                    report.fresh_files + report.linked_files
                ),
            );
            for (name, path) in &report.snapshots {
                reporter.detail("Snapshot", &format!("{name}: {path}"));
            }
            Ok(())
        }
    }
}

/// ` at 12.3 MB/s`, when something was downloaded.
fn rate(bytes: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    if bytes == 0 || seconds <= 0.0 {
        return String::new();
    }
    format!(" at {}/s", human_bytes((bytes as f64 / seconds) as u64))
}

/// The dry-run plan, on stdout: per model the `hf download` command and each file.
fn print_plan(plans: &[ModelPlan], frozen: bool) {
    let mut out = anstream::stdout().lock();
    let mut total_download = (0usize, 0u64);
    let mut total_cached = 0usize;
    for plan in plans {
        let _ = writeln!(out, "{}", hf_download_command(plan, frozen));
        for planned in &plan.files {
            let (label, size) = match planned.action {
                Action::Download => ("download", human_bytes(planned.file.size)),
                Action::Link | Action::Fresh => ("cached", "-".to_owned()),
            };
            let _ = writeln!(out, "  {label:<9}{size:>10}  {}", planned.file.path);
        }
        let download = plan.files_needing(Action::Download).count();
        total_download.0 += download;
        total_download.1 += plan.download_bytes();
        total_cached += plan.files.len() - download;
    }
    let _ = writeln!(
        out,
        "Total: {} to download ({}), {} already cached",
        files(total_download.0),
        human_bytes(total_download.1),
        files(total_cached)
    );
}

/// The `hf download` command line that selects the same files.
fn hf_download_command(plan: &ModelPlan, frozen: bool) -> String {
    let model = &plan.resolved.model;
    let mut words = vec![
        "hf".to_owned(),
        "download".to_owned(),
        shell_quote(&model.repo.id),
    ];
    if model.repo.repo_type != RepoType::Model {
        words.extend([
            "--repo-type".to_owned(),
            model.repo.repo_type.as_str().to_owned(),
        ]);
    }
    if frozen {
        words.extend(["--revision".to_owned(), plan.resolved.commit.clone()]);
    } else if model.reference != DEFAULT_REF {
        words.extend(["--revision".to_owned(), shell_quote(&model.reference)]);
    }
    for (flag, patterns) in [("--include", &model.include), ("--exclude", &model.exclude)] {
        for pattern in patterns.iter().flatten() {
            words.extend([flag.to_owned(), shell_quote(pattern)]);
        }
    }
    words.join(" ")
}

/// Quotes a word for a POSIX shell, leaving plain words bare.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r#"'"'"'"#))
    }
}

/// Cargo-style status lines on stderr: the verb right-aligned in 12 columns, bold green on a
/// terminal (anstream strips the colour elsewhere and honours NO_COLOR).
struct Terminal {
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
    fn new(quiet: bool, verbose: bool) -> Terminal {
        Terminal {
            quiet,
            verbose,
            progress: Mutex::new(None),
        }
    }

    fn detail(&self, verb: &str, message: &str) {
        if self.verbose {
            self.status(verb, message);
        }
    }

    fn error(&self, error: &Error) {
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

impl Reporter for Terminal {
    fn status(&self, verb: &str, message: &str) {
        if !self.quiet {
            self.print(|| {
                let _ = writeln!(anstream::stderr(), "{STATUS}{verb:>12}{STATUS:#} {message}");
            });
        }
    }

    fn warn(&self, message: &str) {
        if !self.quiet {
            self.print(|| {
                let _ = writeln!(anstream::stderr(), "{WARNING}warning{WARNING:#}: {message}");
            });
        }
    }

    fn transfer_started(&self, files: usize, bytes: u64) {
        if self.quiet {
            return;
        }
        // Hidden by indicatif itself when stderr is not a terminal (or TERM=dumb).
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total = multi.add(ProgressBar::new(bytes));
        total.set_style(
            ProgressStyle::with_template(
                "{prefix:>12.green.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        total.set_prefix("Downloading");
        total.set_message(files.to_string());
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
                ProgressStyle::with_template("{prefix:>12} {spinner} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            line.set_message(name.to_owned());
            line.enable_steady_tick(Duration::from_millis(120));
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
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("acme/tiny"), "acme/tiny");
        assert_eq!(shell_quote("*.json"), "'*.json'");
        assert_eq!(shell_quote("it's"), r#"'it'"'"'s'"#);
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn the_cargo_command_line_is_well_formed() {
        CargoCli::command().debug_assert();
    }
}
