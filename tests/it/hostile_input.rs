//! Hostile input: every broken manifest and lock file of `fixtures/hostile/`, plus a few too big
//! to commit (generated here), goes through the real binary. Each must fail with its expected exit
//! code and one-line message, quickly, without a panic, without touching the network or writing
//! anything. All failures are reported at once.
//!
//! A case is `fixtures/hostile/{manifest,lock}/NNN-name.{yaml,lock}` with a sidecar
//! `NNN-name.expected`: the exit code on the first line, and on the second a part (usually all) of
//! the first line of stderr. A manifest case is the project's `facehugger.yaml`, run as
//! `facehugger`; a lock case is its `facehugger.lock`, beside a valid manifest, run as
//! `facehugger --frozen` so that the lock is read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::Env;

/// The manifest beside every lock case.
const MANIFEST: &str = "models:\n  - repo: acme/tiny\n";

/// The committed corpus must not shrink below this.
const MIN_CORPUS_CASES: usize = 60;

/// Longer than this is a hang, not a slow parse.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A message longer than this echoes the input instead of describing it.
const MAX_STDERR_BYTES: usize = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Manifest,
    Lock,
}

struct Case {
    name: String,
    kind: Kind,
    input: Vec<u8>,
    code: i32,
    message: String,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hostile")
}

/// The committed cases, in file order; panics on a case without its sidecar or the reverse.
fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    for (kind, folder, extension) in [
        (Kind::Manifest, "manifest", "yaml"),
        (Kind::Lock, "lock", "lock"),
    ] {
        let dir = corpus_dir().join(folder);
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        paths.sort();
        for path in &paths {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            match path.extension().and_then(|e| e.to_str()) {
                Some(ext) if ext == extension => {}
                Some("expected") => {
                    assert!(
                        path.with_extension(extension).exists(),
                        "{file} has no {extension} file beside it"
                    );
                    continue;
                }
                _ => panic!("{file}: unexpected file in {}", dir.display()),
            }
            let sidecar = path.with_extension("expected");
            let expected = std::fs::read_to_string(&sidecar)
                .unwrap_or_else(|err| panic!("{}: {err}", sidecar.display()));
            let mut lines = expected.lines();
            let code = lines
                .next()
                .and_then(|line| line.trim().parse().ok())
                .unwrap_or_else(|| panic!("{}: line 1 is not an exit code", sidecar.display()));
            let message = lines
                .next()
                .filter(|line| !line.trim().is_empty())
                .unwrap_or_else(|| panic!("{}: line 2 is not a message", sidecar.display()))
                .to_owned();
            cases.push(Case {
                name: format!("{folder}/{file}"),
                kind,
                input: std::fs::read(path).unwrap(),
                code,
                message,
            });
        }
    }
    cases
}

/// Inputs too big to commit.
fn generated() -> Vec<Case> {
    let case = |name: &str, kind, input: String, message: &str| Case {
        name: format!("generated/{name}"),
        kind,
        input: input.into_bytes(),
        code: 2,
        message: message.to_owned(),
    };
    let sha = "a".repeat(40);
    vec![
        case(
            "20mb-of-a.yaml",
            Kind::Manifest,
            "a".repeat(20 << 20),
            "error: facehugger.yaml:1:1: expected a mapping with a `models:` list",
        ),
        case(
            "1mb-repo-line.yaml",
            Kind::Manifest,
            format!("models: [{{repo: acme/{}}}]\n", "x".repeat(1 << 20)),
            "error: facehugger.yaml:1:17: invalid repo: `acme/xxx",
        ),
        case(
            "1mb-quoted-key.yaml",
            Kind::Manifest,
            format!(
                "models:\n  - repo: acme/tiny\n    ? \"{}\"\n    : x\n",
                "\\e".repeat(1 << 19)
            ),
            "error: facehugger.yaml:3:7: unknown field `\\u{1b}\\u{1b}",
        ),
        case(
            "10000-nested-lists.yaml",
            Kind::Manifest,
            format!("models: {}{}\n", "[".repeat(10_000), "]".repeat(10_000)),
            "error: facehugger.yaml:1:264: recursion limit exceeded",
        ),
        case(
            "1000-nested-block-lists.yaml",
            Kind::Manifest,
            (0..1000).fold("models:\n".to_owned(), |mut text, depth| {
                text.push_str(&" ".repeat(2 * depth + 2));
                text.push_str("-\n");
                text
            }),
            "error: facehugger.yaml:3:5: invalid type: sequence, expected a model",
        ),
        case(
            "100000-nested-arrays.lock",
            Kind::Lock,
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            "error: facehugger.lock:1:128: recursion limit exceeded",
        ),
        case(
            "1mb-string.lock",
            Kind::Lock,
            format!("\"{}\"", "x".repeat(1 << 20)),
            "error: facehugger.lock:1:1048578: invalid type: string \"xxx",
        ),
        case(
            "20mb-revision.lock",
            Kind::Lock,
            format!(
                r#"[{{"repo_id": "acme/tiny", "revision": "{}"}}]"#,
                "f".repeat(20 << 20)
            ),
            "error: facehugger.lock: entry 1 (acme/tiny): `revision` must be a full 40-hex commit id, got `fff",
        ),
        case(
            "1mb-single-line.lock",
            Kind::Lock,
            format!(
                "[{}{{\"repo_id\": \"acme/tiny\", \"revision\": \"{sha}\", \"refs\": \"main\"}}]",
                format!(r#"{{"repo_id": "acme/other", "revision": "{sha}", "refs": ["main"]}}, "#)
                    .repeat(10_000)
            ),
            "error: facehugger.lock: entry 10001 (acme/tiny): `refs` must be a list of strings, got \"main\"",
        ),
    ]
}

/// Every file under `root` with its contents.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                out.insert(path.clone(), Vec::new());
                walk(&path, out);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &mut out);
    out
}

/// Runs one case in its own folder (project, cache and HF home inside it); `Err` says what is
/// wrong.
fn run_case(env: &Env, case: &Case, dir: &Path) -> Result<Duration, String> {
    let project = dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    let args: &[&str] = match case.kind {
        Kind::Manifest => {
            std::fs::write(project.join("facehugger.yaml"), &case.input).unwrap();
            &[]
        }
        Kind::Lock => {
            std::fs::write(project.join("facehugger.yaml"), MANIFEST).unwrap();
            std::fs::write(project.join("facehugger.lock"), &case.input).unwrap();
            &["--frozen"]
        }
    };
    let before = snapshot(dir);
    let started = Instant::now();
    let output = env
        .cmd(args)
        .current_dir(&project)
        .env("HOME", dir)
        .env("HF_HOME", dir.join("hf-home"))
        .env("HF_HUB_CACHE", dir.join("cache"))
        .timeout(TIMEOUT)
        .output()
        .map_err(|err| format!("did not run: {err}"))?;
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code();
    let mut problems = Vec::new();
    if elapsed >= TIMEOUT {
        problems.push(format!("still running after {TIMEOUT:?}"));
    }
    if code != Some(case.code) {
        problems.push(format!("exit code {code:?}, expected {}", case.code));
    }
    if !matches!(code, Some(1 | 2)) {
        problems.push("exit code is neither 1 nor 2".to_owned());
    }
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        problems.push("panicked".to_owned());
    }
    let first = stderr.lines().next().unwrap_or_default();
    if !first.contains(&case.message) {
        problems.push(format!("stderr does not contain {:?}", case.message));
    }
    if stderr.lines().count() != 1 || !first.starts_with("error: ") {
        problems.push("stderr is not one `error: ` line".to_owned());
    }
    if stderr.len() > MAX_STDERR_BYTES {
        problems.push(format!("stderr is {} bytes long", stderr.len()));
    }
    if stderr.chars().any(|c| c.is_control() && c != '\n') {
        problems.push("stderr holds control characters".to_owned());
    }
    if !output.stdout.is_empty() {
        problems.push("stdout is not empty".to_owned());
    }
    let after = snapshot(dir);
    if after != before {
        let changed: Vec<String> = after
            .keys()
            .chain(before.keys())
            .filter(|path| after.get(*path) != before.get(*path))
            .map(|path| path.strip_prefix(dir).unwrap().display().to_string())
            .collect();
        problems.push(format!("wrote {}", changed.join(", ")));
    }
    if problems.is_empty() {
        Ok(elapsed)
    } else {
        let shown: String = first.chars().take(MAX_STDERR_BYTES).collect();
        Err(format!("{}\n    stderr: {shown}", problems.join("; ")))
    }
}

#[test]
fn hostile_manifests_and_locks_fail_cleanly() {
    let committed = corpus();
    assert!(
        committed.len() >= MIN_CORPUS_CASES,
        "only {} cases in {}",
        committed.len(),
        corpus_dir().display()
    );
    let cases: Vec<Case> = committed.into_iter().chain(generated()).collect();
    let env = Env::new();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let slowest = Mutex::new((Duration::ZERO, String::new()));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(index) else {
                        break;
                    };
                    let dir = env.dir.path().join(format!("case-{index}"));
                    match run_case(&env, case, &dir) {
                        Ok(elapsed) => {
                            let mut slowest = slowest.lock().unwrap();
                            if elapsed > slowest.0 {
                                *slowest = (elapsed, case.name.clone());
                            }
                        }
                        Err(why) => failures
                            .lock()
                            .unwrap()
                            .push(format!("{}: {why}", case.name)),
                    }
                    let _ = std::fs::remove_dir_all(&dir);
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {} hostile cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        env.requests().is_empty(),
        "the hub was asked: {:?}",
        env.requests()
    );
    let (elapsed, name) = slowest.into_inner().unwrap();
    eprintln!(
        "{} hostile cases passed; the slowest, {name}, took {elapsed:.2?}",
        cases.len()
    );
}

/// Odd input that is nonetheless valid: an empty model list, byte-order marks, `#` lines and
/// ignored keys of every type in the lock.
#[test]
fn odd_but_valid_input_is_accepted() {
    let env = Env::new();
    env.manifest("models: []\n");
    let run = env.run(&[]).success();
    assert!(run.stderr.contains("Finished 0 files"), "{}", run.stderr);
    assert_eq!(env.lock_text().as_deref(), Some("[]\n"));
    env.manifest("\u{feff}models: []\n");
    env.run(&["--frozen"]).success();
    assert!(env.requests().is_empty());

    env.manifest("\u{feff}models:\n  - repo: acme/tiny\n    include: config.json\n");
    let commit = env.commit("model", "acme/tiny", "main");
    let lock = format!(
        "\u{feff}# written by hand\n[\n  # the one entry\n  {{\"repo_id\": \"acme/tiny\", \"revision\": \"{commit}\", \"refs\": [\"main\"],\n   \"size\": 123456789012345678901234567890, \"x\": [{{\"y\": null}}], \"id\": true}}\n]\n"
    );
    std::fs::write(env.project().join("facehugger.lock"), &lock).unwrap();
    let run = env.run(&["--frozen", "--dry-run"]).success();
    assert!(
        run.stdout.contains(&format!("--revision {commit}")),
        "{}",
        run.stdout
    );
    assert_eq!(
        env.lock_text().as_deref(),
        Some(lock.as_str()),
        "--frozen rewrote the lock"
    );
}
