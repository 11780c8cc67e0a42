//! The command line: `facehugger` and `cargo facehugger` parse the same arguments here and call
//! the library. Status lines go to stderr in cargo's style; data (the dry-run plan) to stdout.

mod terminal;

use std::ffi::OsString;
use std::io::Write;

use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::cache::{Cache, write_if_changed};
use crate::cargo::Table as CargoTable;
use crate::edit::{self, Change, NewModel};
use crate::error::Error;
use crate::hub::{Hub, HubConfig, is_truthy};
use crate::inspect;
use crate::lock::Lock;
use crate::manifest::{DEFAULT_REF, MANIFEST_FILE};
use crate::project::Discovery;
use crate::repo::{Repo, RepoType};
use crate::sync::plan::{Action, ModelPlan};
use crate::sync::{self, LockMode, Reporter, Settings, files, human_bytes};
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
    /// model, dataset or space
    #[arg(long, value_name = "TYPE", default_value = "model", value_parser = ["model", "dataset", "space"])]
    repo_type: String,
    #[command(flatten)]
    common: CommonArgs,
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
    /// Connections open at once: parallel files, and chunks of large files
    #[arg(short, long, value_name = "N", default_value_t = sync::DEFAULT_JOBS as u16, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Most connections one large file may use at once (within --jobs); it starts with 8 and
    /// opens more while they raise its throughput
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

/// How data is printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// For people
    Human,
    /// Stable JSON for scripts (documented in the README)
    Json,
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

fn execute(cli: Cli, bin_name: &str) -> i32 {
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
    let command = cli.command.unwrap_or(Command::Sync(cli.sync));
    if let Command::Completions(args) = &command {
        let mut cli = Cli::command();
        clap_complete::generate(args.shell, &mut cli, bin_name, &mut std::io::stdout());
        return 0;
    }
    let common = match &command {
        Command::Sync(args) => &args.common,
        Command::Lock(args) => &args.common,
        Command::Status(args) => &args.common,
        Command::Path(args) => &args.common,
        Command::Verify(args) => &args.common,
        Command::Add(args) => &args.common,
        Command::Remove(args) => &args.common,
        Command::Completions(_) => unreachable!("handled above"),
    };
    match common.color {
        ColorChoice::Always => anstream::ColorChoice::Always.write_global(),
        ColorChoice::Never => anstream::ColorChoice::Never.write_global(),
        ColorChoice::Auto => {}
    }
    let reporter = Terminal::new(common.quiet, common.verbose);
    match run(&command, common, &reporter) {
        Ok(code) => code,
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

/// The settings for a command, from its flags, the project it finds and the environment.
fn settings(
    manifest: Option<&Utf8PathBuf>,
    common: &CommonArgs,
    mode: LockMode,
) -> Result<Settings, Error> {
    let env = |name: &str| std::env::var(name).ok();
    let discovery = Discovery {
        manifest: manifest.cloned(),
        manifest_path: common.manifest_path.clone(),
        packages: common.packages.clone(),
    };
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|dir| Utf8PathBuf::from_path_buf(dir).ok())
        .unwrap_or_else(|| Utf8PathBuf::from("."));
    let project = discovery.find(&cwd)?;
    Ok(Settings {
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
    })
}

/// Runs a command; returns its exit code.
fn run(command: &Command, common: &CommonArgs, reporter: &Terminal) -> Result<i32, Error> {
    match command {
        Command::Lock(args) => {
            let settings = settings(args.manifest.as_ref(), common, LockMode::Update)?;
            let resolution = sync::lock(&settings, reporter, args.check)?;
            if args.format == Format::Json {
                let entries = lock_json(&resolution.lock);
                let written = resolution.lock_changed && !args.check;
                print_json(&serde_json::json!({
                    "lock_path": settings.lock_path,
                    "changed": resolution.lock_changed,
                    "written": written,
                    "entries": entries,
                }));
            } else if !args.check && !resolution.lock_changed {
                reporter.status("Fresh", &format!("{} is up to date", settings.lock_path));
            }
            Ok(0)
        }
        Command::Sync(args) if args.dry_run => {
            let settings = settings(args.manifest.as_ref(), common, args.mode())?;
            let (_, plans) = sync::plan(&settings, reporter)?;
            let frozen = args.mode() == LockMode::Frozen;
            match args.format {
                Format::Human => print_plan(&plans, frozen),
                Format::Json => print_json(&plan_json(&plans, frozen)),
            }
            Ok(0)
        }
        Command::Sync(args) => {
            let settings = settings(args.manifest.as_ref(), common, args.mode())?;
            let report = sync::sync(&settings, reporter)?;
            finished(reporter, &report);
            Ok(0)
        }
        Command::Status(args) => {
            let settings = settings(args.manifest.as_ref(), common, LockMode::Frozen)?;
            let statuses = inspect::status(&settings)?;
            match args.format {
                Format::Human => print_status(&statuses),
                Format::Json => print_json(&statuses),
            }
            Ok(0)
        }
        Command::Path(args) => {
            let settings = settings(None, common, LockMode::Frozen)?;
            let path = inspect::path(&settings, &args.repo, args.reference.as_deref())?;
            let _ = writeln!(anstream::stdout(), "{path}");
            Ok(0)
        }
        Command::Verify(args) => {
            let settings = settings(args.manifest.as_ref(), common, LockMode::Frozen)?;
            let mut problems = inspect::verify(&settings)?;
            if args.repair && !problems.is_empty() {
                inspect::remove_corrupt(&problems)?;
                // Re-download what is missing now, at the revisions verify looked at.
                let mode = if settings.lock_path.is_file() {
                    LockMode::Frozen
                } else {
                    LockMode::Update
                };
                let report = sync::sync(
                    &Settings {
                        mode,
                        ..settings.clone()
                    },
                    reporter,
                )?;
                finished(reporter, &report);
                problems = inspect::verify(&settings)?;
            }
            match args.format {
                Format::Human => print_problems(&problems),
                Format::Json => print_json(&serde_json::json!({
                    "ok": problems.is_empty(),
                    "problems": problems,
                })),
            }
            Ok(if problems.is_empty() { 0 } else { 1 })
        }
        Command::Add(args) => {
            let repo = parse_repo(&args.repo, &args.repo_type)?;
            let mut model = NewModel::new(repo.clone());
            model.reference = args.reference.clone();
            model.include = args.include.clone();
            model.exclude = args.exclude.clone();
            // Check the repo and ref on the Hub before the manifest is touched.
            let env = |name: &str| std::env::var(name).ok();
            if common.offline || env("HF_HUB_OFFLINE").is_some_and(|v| is_truthy(&v)) {
                return Err(Error::Other(
                    "`facehugger add` checks the repo on the Hub, which it cannot do offline"
                        .into(),
                ));
            }
            let reference = args.reference.as_deref().unwrap_or(DEFAULT_REF);
            if !crate::repo::is_commit_sha(reference) {
                reporter.status("Checking", &format!("{repo}@{reference}"));
                Hub::new(HubConfig::from_env(&env))
                    .resolve_revision(&repo, reference)
                    .map_err(|error| Error::from(error).for_model(format!("{repo}@{reference}")))?;
            }
            let before = match settings(None, common, LockMode::Update) {
                Ok(settings) => settings,
                // A folder with no manifest yet gets a facehugger.yaml, as `uv init` would.
                Err(Error::Manifest { .. })
                    if !Utf8Path::new(MANIFEST_FILE).exists() && common.manifest_path.is_none() =>
                {
                    write_if_changed(Utf8Path::new(MANIFEST_FILE), "models: []\n")?;
                    reporter.status("Created", MANIFEST_FILE);
                    settings(None, common, LockMode::Update)?
                }
                Err(error) => return Err(error),
            };
            let (path, change) = edit_manifest(&before, |path, text, table| match table {
                Some(table) => edit::add_to_cargo_toml(path, text, table, &model),
                None => edit::add_to_yaml(path, text, &model),
            })?;
            let verb = match change {
                Change::Added { .. } => "Added",
                Change::Updated { .. } => "Updated",
                _ => "Unchanged",
            };
            reporter.status(verb, &format!("{repo}@{reference} in {path}"));
            let settings = settings(None, common, LockMode::Update)?;
            if args.no_sync {
                sync::lock(&settings, reporter, false)?;
            } else {
                finished(reporter, &sync::sync(&settings, reporter)?);
            }
            Ok(0)
        }
        Command::Remove(args) => {
            let repo = parse_repo(&args.repo, &args.repo_type)?;
            let before = settings(None, common, LockMode::Update)?;
            let (path, change) = edit_manifest(&before, |path, text, table| match table {
                Some(table) => edit::remove_from_cargo_toml(
                    path,
                    text,
                    table,
                    &repo,
                    args.reference.as_deref(),
                ),
                None => edit::remove_from_yaml(path, text, &repo, args.reference.as_deref()),
            })?;
            if let Change::Removed { models } = change {
                for model in models {
                    reporter.status(
                        "Removed",
                        &format!("{}@{} from {path}", model.repo, model.reference),
                    );
                }
            }
            let settings = settings(None, common, LockMode::Update)?;
            sync::lock(&settings, reporter, false)?;
            Ok(0)
        }
        Command::Completions(_) => Ok(0),
    }
}

/// A repo id and `--repo-type`, validated as the manifest would.
fn parse_repo(id: &str, repo_type: &str) -> Result<Repo, Error> {
    crate::repo::validate_repo_id(id).map_err(|why| Error::Manifest {
        message: format!("invalid repo: {why}"),
    })?;
    Ok(Repo {
        repo_type: RepoType::parse(repo_type).unwrap_or(RepoType::Model),
        id: id.to_owned(),
    })
}

/// Applies an edit to the manifest in use: the YAML file, or the Cargo.toml nearest to the
/// current folder (its package table, or the workspace table of a virtual workspace). Writes
/// it atomically, only if it changed. Returns the file and what changed.
fn edit_manifest(
    settings: &Settings,
    edit: impl FnOnce(&Utf8Path, &str, Option<CargoTable>) -> Result<edit::Edit, Error>,
) -> Result<(Utf8PathBuf, Change), Error> {
    let manifest = &settings.manifest.path;
    let (path, table) = if manifest.extension() == Some("toml") {
        let cwd = std::env::current_dir()
            .ok()
            .and_then(|dir| Utf8PathBuf::from_path_buf(dir).ok());
        let nearest = cwd
            .as_deref()
            .and_then(|dir| {
                dir.ancestors()
                    .map(|d| d.join("Cargo.toml"))
                    .find(|p| p.is_file())
            })
            .unwrap_or_else(|| manifest.clone());
        let text =
            std::fs::read_to_string(&nearest).map_err(|err| Error::io("read", &nearest, err))?;
        let table = if text.lines().any(|line| line.trim() == "[package]") {
            CargoTable::Package
        } else {
            CargoTable::Workspace
        };
        (nearest, Some(table))
    } else {
        (manifest.clone(), None)
    };
    let text = std::fs::read_to_string(&path).map_err(|err| Error::io("read", &path, err))?;
    let result = edit(&path, &text, table)?;
    write_if_changed(&path, &result.text)?;
    Ok((path, result.change))
}

/// The `Finished` line: files, time, bytes and rate, and what was already there.
fn finished(reporter: &Terminal, report: &sync::Report) {
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
}

fn print_json(value: &impl serde::Serialize) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    let _ = writeln!(anstream::stdout(), "{text}");
}

fn lock_json(lock: &Lock) -> serde_json::Value {
    serde_json::from_str(&lock.render()).unwrap_or(serde_json::Value::Null)
}

/// The dry-run plan as JSON: per model, its command and files.
fn plan_json(plans: &[ModelPlan], frozen: bool) -> serde_json::Value {
    let models: Vec<serde_json::Value> = plans
        .iter()
        .map(|plan| {
            let model = &plan.resolved.model;
            let files: Vec<serde_json::Value> = plan
                .files
                .iter()
                .map(|planned| {
                    serde_json::json!({
                        "path": planned.file.path,
                        "size": planned.file.size,
                        "action": if planned.action == Action::Download { "download" } else { "cached" },
                    })
                })
                .collect();
            serde_json::json!({
                "repo_id": model.repo.id,
                "repo_type": model.repo.repo_type.as_str(),
                "ref": model.reference,
                "revision": plan.resolved.commit,
                "hf_command": hf_download_command(plan, frozen),
                "download_files": plan.files_needing(Action::Download).count(),
                "download_bytes": plan.download_bytes(),
                "cached_files": plan.files.len() - plan.files_needing(Action::Download).count(),
                "files": files,
            })
        })
        .collect();
    serde_json::Value::Array(models)
}

/// `facehugger status`, for people: a block per model.
fn print_status(statuses: &[inspect::ModelStatus]) {
    let mut out = anstream::stdout().lock();
    for status in statuses {
        let locked = match (&status.locked_revision, status.lock_current) {
            (Some(revision), Some(true)) => format!("{revision} (current as of the last sync)"),
            (Some(revision), Some(false)) => {
                format!("{revision} (the ref has moved since: run `facehugger lock`)")
            }
            (Some(revision), None) => revision.clone(),
            (None, _) => "not locked".to_owned(),
        };
        let cache = match (status.files, status.missing) {
            (Some(files), Some(0)) => format!(
                "complete ({}, {})",
                sync::files(files),
                human_bytes(status.size_on_disk)
            ),
            (Some(files), Some(missing)) => format!(
                "{missing} of {} missing ({} on disk)",
                sync::files(files),
                human_bytes(status.size_on_disk)
            ),
            _ => "not synced".to_owned(),
        };
        let _ = writeln!(out, "{}", status.name);
        let _ = writeln!(out, "  locked:   {locked}");
        let _ = writeln!(out, "  cache:    {cache}");
        if let Some(path) = &status.snapshot_path {
            let _ = writeln!(out, "  snapshot: {path}");
        }
    }
}

/// `facehugger verify`, for people.
fn print_problems(problems: &[inspect::Problem]) {
    let mut out = anstream::stdout().lock();
    if problems.is_empty() {
        let _ = writeln!(out, "every file verified");
        return;
    }
    for problem in problems {
        let detail = match (problem.problem, &problem.expected, &problem.actual) {
            ("corrupt", Some(expected), Some(actual)) => {
                format!("corrupt: expected {expected}, got {actual}")
            }
            ("unknown", _, Some(why)) => why.clone(),
            (kind, _, _) => kind.to_owned(),
        };
        let path = if problem.path.is_empty() {
            String::new()
        } else {
            format!(": {}", problem.path)
        };
        let _ = writeln!(out, "{}{path}: {detail}", problem.model);
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
