//! The command line: `facehugger` and `cargo facehugger` parse the same arguments here, turn
//! them into the options of one operation (`crate::ops`), call it, print its report and map
//! errors to exit codes. Nothing else happens here. Status lines go to stderr in cargo's style
//! (`terminal`); data (the dry-run plan, `status`, JSON) to stdout (`output`).

mod output;
mod terminal;

use std::ffi::OsString;
use std::io::Write;

use camino::Utf8PathBuf;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::error::Error;
use crate::files::stop_writes;
use crate::ops::{self, AddOptions, AddReport, Options, RemoveOptions};
use crate::project::ProjectSpec;
use crate::repo::{Repo, RepoId, RepoType};
use crate::sync::{self, LockMode, TransferOptions};
use output::Format;
use terminal::Terminal;

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
    Lock(LockArgs),
    /// Show each model: ref, locked revision, cache state, size, snapshot folder (no network).
    #[command(visible_alias = "ls")]
    Status(StatusArgs),
    /// Print the snapshot folder of a model, for scripts (no network).
    Path(PathArgs),
    /// Re-hash the cached files of the manifest's models; report corrupt or missing ones.
    Verify(VerifyArgs),
    /// Add a repo to the manifest in use (keeping its comments and layout), then lock and sync.
    Add(AddArgs),
    /// Remove a repo from the manifest in use, then relock (cached files stay for other users).
    Remove(RemoveArgs),
    /// Remove cached revisions that no lock of a synced project pins and nobody used lately.
    Gc(GcArgs),
    /// Write each model's locked files as plain files in DIR/<name> (reflink, hard link or copy).
    Export(ExportArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
struct SyncArgs {
    /// The manifest: a facehugger.yaml, or a Cargo.toml [default: facehugger.yaml here, else the
    /// Cargo project around this folder]
    #[arg(value_name = "MANIFEST")]
    manifest: Option<Utf8PathBuf>,
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
    /// Output format of --dry-run
    #[arg(long, value_enum, default_value_t = Format::Human, requires = "dry_run")]
    format: Format,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct LockArgs {
    /// The manifest [default: facehugger.yaml here, else the Cargo project]
    #[arg(value_name = "MANIFEST")]
    manifest: Option<Utf8PathBuf>,
    /// Write nothing; exit 1 if the lock file is missing or would change.
    #[arg(long)]
    check: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// The manifest [default: facehugger.yaml here, else the Cargo project]
    #[arg(value_name = "MANIFEST")]
    manifest: Option<Utf8PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct PathArgs {
    /// The repo id, as the manifest names it
    #[arg(value_name = "REPO")]
    repo: String,
    /// The ref, when the manifest declares the repo at several
    #[arg(long = "ref", value_name = "REF")]
    reference: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The manifest [default: facehugger.yaml here, else the Cargo project]
    #[arg(value_name = "MANIFEST")]
    manifest: Option<Utf8PathBuf>,
    /// Remove what is corrupt and download what is missing again (the locked revisions)
    #[arg(long)]
    repair: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct AddArgs {
    /// The repo id, `owner/name`
    #[arg(value_name = "REPO")]
    repo: String,
    /// The branch, tag, refs/pr/N or commit to follow [default: main]
    #[arg(long = "ref", value_name = "REF")]
    reference: Option<String>,
    /// Files to include (repeatable; the patterns of `hf download --include`)
    #[arg(long, value_name = "PATTERN")]
    include: Vec<String>,
    /// Files to exclude (repeatable)
    #[arg(long, value_name = "PATTERN")]
    exclude: Vec<String>,
    /// model, dataset or space
    #[arg(long, value_name = "TYPE", default_value = "model", value_parser = ["model", "dataset", "space"])]
    repo_type: String,
    /// Edit the manifest and the lock, but download nothing
    #[arg(long)]
    no_sync: bool,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct RemoveArgs {
    /// The repo id
    #[arg(value_name = "REPO")]
    repo: String,
    /// Remove only the entry at this ref [default: every entry of the repo]
    #[arg(long = "ref", value_name = "REF")]
    reference: Option<String>,
    /// model, dataset or space: needed only when the manifest declares the id with several
    /// types [default: the one it is declared with]
    #[arg(long, value_name = "TYPE", value_parser = ["model", "dataset", "space"])]
    repo_type: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Keeps every revision that the lock file of a project facehugger synced (or locked) into this cache
pins; removes the others not used within --older-than. Last use is the latest access time of a
revision's files, as `hf cache ls` reports `last_accessed`.")]
struct GcArgs {
    /// Keep revisions used within this long: a number and a unit, s, m, h, d or w (`30d`, `12h`);
    /// 0 removes every revision no lock pins
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = ops::parse_duration)]
    older_than: std::time::Duration,
    /// Print what would be removed; change nothing
    #[arg(long)]
    dry_run: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "\
Each model goes to DIR/<name> (its `name` in the manifest, else the repo id with `/` turned into
`--`) with the reference client's --local-dir metadata, so that
`hf download REPO --revision <commit> --local-dir DIR/<name>` finds it up to date. Running export
again updates only what changed and removes only files it wrote.

--link hard shares the cache's blob and makes the file read-only: editing it (after a chmod)
would corrupt the cache for every program that uses it.",
    override_usage = "facehugger export [OPTIONS] [MANIFEST] <DIR>"
)]
struct ExportArgs {
    /// [MANIFEST] DIR: the manifest [default: facehugger.yaml here, else the Cargo project], and
    /// the folder to export into
    #[arg(value_name = "PATH", num_args = 1..=2, required = true)]
    paths: Vec<Utf8PathBuf>,
    /// How files are made: a reflink where the file system can (else a copy), a reflink or
    /// fail, a read-only hard link to the cache's blob, or a copy
    #[arg(long, value_enum, default_value_t = Link::Auto, value_name = "HOW")]
    link: Link,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Link {
    Auto,
    Reflink,
    Hard,
    Copy,
}

impl Link {
    fn mode(self) -> ops::LinkMode {
        match self {
            Link::Auto => ops::LinkMode::Auto,
            Link::Reflink => ops::LinkMode::Reflink,
            Link::Hard => ops::LinkMode::Hard,
            Link::Copy => ops::LinkMode::Copy,
        }
    }
}

#[derive(Debug, Args)]
struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// A Cargo.toml (or facehugger.yaml) that declares the models
    #[arg(long, value_name = "PATH")]
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
    /// Connections open at once: parallel files, and the segments of large files
    #[arg(short, long, value_name = "N", default_value_t = sync::DEFAULT_JOBS as u16, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Most connections one large file may use at once (within --jobs): all of them when its
    /// first bytes show the server caps each connection, else more while they raise its
    /// throughput
    #[arg(long, value_name = "N", default_value_t = sync::DEFAULT_CONNECTIONS_PER_FILE as u16, value_parser = clap::value_parser!(u16).range(1..=256))]
    connections_per_file: u16,
    /// Smallest piece, in KiB, of a file that a connection of its own fetches (files of at
    /// least twice this size are split across connections)
    #[arg(long, value_name = "KIB", default_value_t = sync::DEFAULT_CHUNK_BYTES / 1024, value_parser = clap::value_parser!(u64).range(1..))]
    chunk_size: u64,
    /// Print only errors
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// Also print each model's snapshot folder
    #[arg(short, long)]
    verbose: bool,
    /// When to colour the output [env: NO_COLOR disables it]
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
        Ok(cli) => execute(cli, "facehugger"),
        Err(error) => clap_exit(&error),
    }
}

/// Runs `cargo-facehugger` as cargo calls it (`cargo-facehugger facehugger ARGS`); returns the
/// exit code.
pub fn cargo_main(args: impl IntoIterator<Item = OsString>) -> i32 {
    match CargoCli::try_parse_from(args) {
        Ok(CargoCli::Facehugger(cli)) => execute(cli, "cargo-facehugger"),
        Err(error) => clap_exit(&error),
    }
}

fn clap_exit(error: &clap::Error) -> i32 {
    let _ = error.print();
    if error.use_stderr() { 2 } else { 0 }
}

/// Raises this process's limit of open files to what the system allows (capped): a sync of many
/// small files holds the lock of each blob it has verified until the batch is installed.
fn raise_open_files_limit() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let wanted = limit.maximum.unwrap_or(65_536).min(65_536);
        if limit.current.is_some_and(|current| current < wanted) {
            let raised = rustix::process::Rlimit {
                current: Some(wanted),
                ..limit
            };
            let _ = setrlimit(Resource::Nofile, raised);
        }
    }
}

fn execute(cli: Cli, bin_name: &str) -> i32 {
    raise_open_files_limit();
    // Ctrl-C: stop at once. Blobs are installed by atomic renames and partial downloads are
    // resumed (and verified) next time, so the cache stays valid for every client.
    let _ = ctrlc::set_handler(|| {
        let _writes = stop_writes();
        let _ = writeln!(
            anstream::stderr(),
            "\ninterrupted: partial downloads are kept; the next sync resumes them"
        );
        std::process::exit(130);
    });
    let command = cli.command.unwrap_or(Command::Sync(cli.sync));
    let common = match &command {
        Command::Sync(args) => &args.common,
        Command::Lock(args) => &args.common,
        Command::Status(args) => &args.common,
        Command::Path(args) => &args.common,
        Command::Verify(args) => &args.common,
        Command::Add(args) => &args.common,
        Command::Remove(args) => &args.common,
        Command::Gc(args) => &args.common,
        Command::Export(args) => &args.common,
        Command::Completions(args) => {
            let mut cli = Cli::command();
            clap_complete::generate(args.shell, &mut cli, bin_name, &mut std::io::stdout());
            return 0;
        }
    };
    match common.color {
        ColorChoice::Always => anstream::ColorChoice::Always.write_global(),
        ColorChoice::Never => anstream::ColorChoice::Never.write_global(),
        ColorChoice::Auto => {}
    }
    let reporter = Terminal::new(common.quiet, common.verbose);
    match run(&command, &reporter) {
        Ok(code) => code,
        Err(error) => {
            reporter.error(&error);
            exit_code(&error)
        }
    }
}

/// 2 for invalid input (a manifest, a lock file, a command that makes no sense), 1 for every
/// other failure.
fn exit_code(error: &Error) -> i32 {
    match error {
        Error::Manifest(_) | Error::Lock(_) | Error::Usage(_) => 2,
        Error::Model { source, .. } => exit_code(source),
        _ => 1,
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

impl CommonArgs {
    /// The operations' options: `manifest` is a command's MANIFEST argument, which wins over
    /// `--manifest-path`.
    fn options(&self, manifest: Option<&Utf8PathBuf>) -> Options {
        Options {
            project: ProjectSpec {
                manifest: manifest.or(self.manifest_path.as_ref()).cloned(),
                packages: self.packages.clone(),
                dir: None,
            },
            cache_dir: self.cache_dir.clone(),
            offline: self.offline,
            transfer: TransferOptions {
                jobs: usize::from(self.jobs),
                connections_per_file: usize::from(self.connections_per_file),
                chunk_bytes: self.chunk_size * 1024,
                ..TransferOptions::default()
            },
            env: crate::env::Env::process(),
        }
    }
}

/// A repo id and `--repo-type`, validated as the manifest would.
fn parse_repo(id: &str, repo_type: &str) -> Result<Repo, Error> {
    let repo_type = RepoType::parse(repo_type).unwrap_or(RepoType::Model);
    Repo::new(repo_type, id).map_err(|why| Error::Usage(format!("invalid repo: {why}")))
}

/// Runs a command; returns its exit code.
fn run(command: &Command, reporter: &Terminal) -> Result<i32, Error> {
    match command {
        Command::Sync(args) if args.dry_run => {
            let options = args.common.options(args.manifest.as_ref());
            let plans = ops::plan(&options, args.mode(), reporter)?;
            output::plan(&plans, args.mode() == LockMode::Frozen, args.format);
        }
        Command::Sync(args) => {
            let options = args.common.options(args.manifest.as_ref());
            let report = ops::sync(&options, args.mode(), reporter)?;
            output::finished(reporter, &report);
        }
        Command::Lock(args) => {
            let options = args.common.options(args.manifest.as_ref());
            let report = ops::lock(&options, args.check, reporter)?;
            output::lock(reporter, &report, args.check, args.format);
        }
        Command::Status(args) => {
            let options = args.common.options(args.manifest.as_ref());
            output::status(&ops::status(&options)?, args.format);
        }
        Command::Path(args) => {
            let options = args.common.options(None);
            let path = ops::path(&options, &args.repo, args.reference.as_deref())?;
            let _ = writeln!(anstream::stdout(), "{path}");
        }
        Command::Verify(args) => {
            let options = args.common.options(args.manifest.as_ref());
            let report = ops::verify(&options, args.repair, reporter)?;
            if let Some(repaired) = &report.repaired {
                output::finished(reporter, repaired);
            }
            output::verify(&report, args.format);
            return Ok(if report.problems.is_empty() { 0 } else { 1 });
        }
        Command::Add(args) => {
            let add = AddOptions {
                repo: parse_repo(&args.repo, &args.repo_type)?,
                reference: args.reference.clone(),
                include: args.include.clone(),
                exclude: args.exclude.clone(),
                sync: !args.no_sync,
            };
            if let AddReport::Synced(report) = ops::add(&args.common.options(None), &add, reporter)?
            {
                output::finished(reporter, &report);
            }
        }
        Command::Remove(args) => {
            let remove = RemoveOptions {
                repo: RepoId::new(&args.repo)
                    .map_err(|why| Error::Usage(format!("invalid repo: {why}")))?,
                repo_type: args.repo_type.as_deref().and_then(RepoType::parse),
                reference: args.reference.clone(),
            };
            ops::remove(&args.common.options(None), &remove, reporter)?;
        }
        Command::Gc(args) => {
            let gc = ops::GcOptions {
                older_than: args.older_than,
                dry_run: args.dry_run,
            };
            let report = ops::gc(&args.common.options(None), &gc)?;
            output::gc(reporter, &report, args.older_than, args.format);
            return Ok(if report.failures.is_empty() { 0 } else { 1 });
        }
        Command::Export(args) => {
            let (manifest, dir) = match args.paths.as_slice() {
                [manifest, dir] => (Some(manifest), dir),
                [.., dir] => (None, dir),
                [] => return Err(Error::Usage("export needs a folder to write to".into())),
            };
            let export = ops::ExportOptions {
                dir: dir.clone(),
                link: args.link.mode(),
            };
            let report = ops::export(&args.common.options(manifest), &export)?;
            output::export(reporter, &report, export.link, args.format);
        }
        Command::Completions(_) => {}
    }
    Ok(0)
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
    fn the_cargo_command_line_is_well_formed() {
        CargoCli::command().debug_assert();
    }

    #[test]
    fn invalid_input_exits_2_and_failures_1() {
        let usage = Error::Usage("x".into());
        assert_eq!(exit_code(&usage), 2);
        assert_eq!(exit_code(&usage.for_model("acme/tiny@main")), 2);
        assert_eq!(exit_code(&Error::Other("x".into())), 1);
    }
}
