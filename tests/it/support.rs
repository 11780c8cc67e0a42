//! Shared set-up: a test hub on loopback, a temporary project and cache, and the binary.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use tempfile::TempDir;
pub use test_hub::{LoggedRequest, Options, Origin, TestHub};

/// The token the test hub accepts.
pub const TOKEN: &str = "hf_test_token";

/// A project folder, a cache folder and a hub.
pub struct Env {
    pub hub: TestHub,
    pub dir: TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env::with_options(Options::default())
    }

    pub fn with_options(options: Options) -> Env {
        Env {
            hub: TestHub::start(options).expect("the test hub starts"),
            dir: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    pub fn project(&self) -> PathBuf {
        let project = self.dir.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        project
    }

    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("hf-home")
    }

    /// Writes `facehugger.yaml` in the project.
    pub fn manifest(&self, yaml: &str) -> PathBuf {
        let path = self.project().join("facehugger.yaml");
        std::fs::write(&path, yaml).unwrap();
        path
    }

    pub fn lock_text(&self) -> Option<String> {
        std::fs::read_to_string(self.project().join("facehugger.lock")).ok()
    }

    /// `facehugger ARGS` in the project, against the hub, with a clean environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        Command::from_std(self.std_cmd(args))
    }

    /// The same as a plain std command, for tests that spawn it and signal it.
    pub fn std_cmd(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_facehugger"));
        cmd.current_dir(self.project()).args(args);
        self.with_env(&mut cmd);
        cmd
    }

    /// `PROGRAM PROGRAM_ARGS facehugger ARGS` (`strace -f ...`, `sh -c ...`), with facehugger's
    /// folder and environment.
    pub fn wrapped_cmd(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        program_args: &[&str],
        args: &[&str],
    ) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.current_dir(self.project())
            .args(program_args)
            .arg(env!("CARGO_BIN_EXE_facehugger"))
            .args(args);
        self.with_env(&mut cmd);
        cmd
    }

    /// `cargo-facehugger facehugger ARGS` in `dir`, as `cargo facehugger` runs it, with the
    /// toolchain reachable (cargo metadata needs it).
    pub fn cargo_cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-facehugger"));
        cmd.current_dir(dir).arg("facehugger").args(args);
        self.with_env(&mut cmd);
        Command::from_std(cmd)
    }

    fn with_env(&self, cmd: &mut std::process::Command) {
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("HF_HOME", self.home())
            .env("HF_HUB_CACHE", self.cache())
            .env("HF_ENDPOINT", self.hub.endpoint())
            .env("FACEHUGGER_BACKOFF_MS", "5");
        for (name, value) in toolchain_env() {
            cmd.env(name, value);
        }
        keep_runner_env(cmd);
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("facehugger runs"))
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.hub.requests()
    }

    /// Requests whose path starts with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.url.starts_with(prefix))
            .count()
    }

    pub fn commit(&self, repo_type: &str, id: &str, rev: &str) -> String {
        self.hub
            .commit_sha(repo_type, id, rev)
            .expect("the fixture has this ref")
    }

    pub fn repo_dir(&self, folder: &str) -> PathBuf {
        self.cache().join(folder)
    }
}

/// Where cargo and rustup live: the tests move HOME, so these must be explicit.
pub fn toolchain_env() -> Vec<(&'static str, String)> {
    let home = std::env::var("HOME").unwrap_or_default();
    let mut vars = vec![
        (
            "CARGO_HOME",
            std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{home}/.cargo")),
        ),
        (
            "RUSTUP_HOME",
            std::env::var("RUSTUP_HOME").unwrap_or_else(|_| format!("{home}/.rustup")),
        ),
    ];
    for name in ["CARGO", "RUSTUP_TOOLCHAIN"] {
        if let Ok(value) = std::env::var(name) {
            vars.push((name, value));
        }
    }
    vars
}

/// Writes files under `root`: `(relative path, contents)`.
pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (path, contents) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
}

/// What a run printed, and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn failure(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Makes `at` a symbolic link to `target` (relative to `at`'s folder, or absolute). On Windows,
/// a link to a folder is made as one (and links need Developer Mode there).
pub fn symlink(target: impl AsRef<Path>, at: impl AsRef<Path>) {
    let (target, at) = (target.as_ref(), at.as_ref());
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, at).unwrap();
    #[cfg(windows)]
    {
        let folder = at.parent().unwrap_or(Path::new(".")).join(target).is_dir();
        if folder {
            std::os::windows::fs::symlink_dir(target, at).unwrap();
        } else {
            std::os::windows::fs::symlink_file(target, at).unwrap();
        }
    }
}

/// Lets the owner write the file at `path` (a read-only one a test means to damage).
pub fn make_writable(path: &Path) {
    let mut permissions = std::fs::metadata(path).unwrap().permissions();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        permissions.set_mode(permissions.mode() | 0o200);
    }
    #[cfg(windows)]
    #[allow(clippy::permissions_set_readonly_false)] // Windows has no other write bit
    permissions.set_readonly(false);
    std::fs::set_permissions(path, permissions).unwrap();
}

/// Every file under `root`, relative, sorted, with `-> target` for symlinks.
pub fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                out.push(format!(
                    "{relative} -> {}",
                    std::fs::read_link(&path).unwrap().display()
                ));
            } else if kind.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(relative);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// The Python reference client's interpreter (`.venv` made by scripts/setup-python), if any.
/// With FACEHUGGER_REQUIRE_PYTHON=1 (as CI sets it) a missing interpreter fails the test.
pub fn python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let path = std::env::var_os("FACEHUGGER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or(venv);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("FACEHUGGER_REQUIRE_PYTHON").is_none(),
        "the Python reference client is required: run scripts/setup-python"
    );
    eprintln!(
        "skipping: no Python reference client at {} (run scripts/setup-python)",
        path.display()
    );
    None
}

/// Gives a child with a cleared environment what the test runner set for every process:
/// `LLVM_PROFILE_FILE` under `cargo llvm-cov` (else the child drops a profile file in its working
/// folder, which tests that list folders see), and `G_SLICE` under qemu-user (scripts/cross-check:
/// qemu's glib slice allocator can deadlock a process that forks while other threads run).
pub fn keep_runner_env(cmd: &mut std::process::Command) {
    for name in ["LLVM_PROFILE_FILE", "G_SLICE"] {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
}

/// `strace`, if this machine has it (CI installs it: there, a missing one fails the test).
pub fn strace() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("strace"))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have strace (apt-get install strace)"
        );
        eprintln!("skipping: no strace on this machine");
    }
    found
}
