//! The Dockerfile. `scripts/docker-build` builds its images for real with podman (`.ci/run` runs
//! it); these tests check what can be checked without a container engine, on every `cargo test`: the
//! stages and commands that README.md's "Docker" section documents exist and the script builds them,
//! the Dockerfile needs no frontend image from a registry, the default image is the runtime image,
//! which runs `facehugger` as a non-root user with the documented mounts, and the `image-test`
//! stage's sync script works and fails when a sync fails, under the stage's SHELL and under plain
//! `/bin/sh` (what a builder writing OCI images runs it with), here on the host against the
//! in-process test hub.

use std::collections::BTreeMap;
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
#[cfg(unix)]
use std::path::PathBuf;
#[cfg(unix)]
use std::process::Command;

#[cfg(unix)]
use crate::support::{Options, TestHub, keep_runner_env};

/// One instruction: its keyword (upper case), its arguments with line continuations joined, and
/// the line it starts on.
#[derive(Debug)]
struct Instruction {
    line: usize,
    keyword: String,
    args: String,
}

/// A build stage: `FROM <base> [AS <name>]` and the instructions up to the next `FROM`.
#[derive(Debug)]
struct Stage {
    base: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The Dockerfile's instructions, as Docker reads them: comment lines (parser directives included)
/// and blank lines are skipped, also inside a continued instruction; a line ending in `\` goes on
/// with the next line.
fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let line = line.trim_end();
        let (piece, continued) = match line.strip_suffix('\\') {
            Some(piece) => (piece, true),
            None => (line, false),
        };
        let (start, mut joined) = current.take().unwrap_or((index + 1, String::new()));
        joined.push_str(piece);
        if continued {
            current = Some((start, joined));
            continue;
        }
        let joined = joined.trim();
        let (keyword, args) = joined
            .split_once(char::is_whitespace)
            .unwrap_or((joined, ""));
        out.push(Instruction {
            line: start,
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_owned(),
        });
    }
    assert!(
        current.is_none(),
        "the Dockerfile ends inside a continued line"
    );
    out
}

fn stages(text: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions(text) {
        if instruction.keyword == "FROM" {
            let words: Vec<&str> = instruction
                .args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                [_] => None,
                _ => panic!(
                    "line {}: FROM {} is not `FROM <image> [AS <name>]`",
                    instruction.line, instruction.args
                ),
            };
            stages.push(Stage {
                base: words[0].to_owned(),
                name,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(instruction);
        } else {
            assert_eq!(
                instruction.keyword, "ARG",
                "line {}: only ARG may come before the first FROM",
                instruction.line
            );
        }
    }
    stages
}

fn dockerfile() -> Vec<Stage> {
    stages(&read("Dockerfile"))
}

fn stage<'a>(stages: &'a [Stage], name: &str) -> &'a Stage {
    stages
        .iter()
        .find(|s| s.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("the Dockerfile has no `FROM ... AS {name}` stage"))
}

/// A stage and the stages it is built on, base first (an image that is not a stage ends the chain).
fn chain<'a>(stages: &'a [Stage], stage: &'a Stage) -> Vec<&'a Stage> {
    let mut out = vec![stage];
    let mut base = &stage.base;
    while let Some(parent) = stages.iter().find(|s| s.name.as_ref() == Some(base)) {
        assert!(out.len() <= stages.len(), "FROM cycle through {base}");
        out.push(parent);
        base = &parent.base;
    }
    out.reverse();
    out
}

/// The instructions with this keyword that the stage's image ends up with, from its bases on.
fn effective<'a>(stages: &'a [Stage], stage: &'a Stage, keyword: &str) -> Vec<&'a Instruction> {
    chain(stages, stage)
        .into_iter()
        .flat_map(|s| &s.instructions)
        .filter(|i| i.keyword == keyword)
        .collect()
}

/// `$NAME` and `${NAME}` replaced by the defaults of the stage's `ARG NAME=default`.
fn expand(value: &str, stage: &Stage) -> String {
    let mut args = BTreeMap::new();
    for arg in stage.instructions.iter().filter(|i| i.keyword == "ARG") {
        if let Some((name, default)) = arg.args.split_once('=') {
            args.insert(
                name.trim().to_owned(),
                default.trim().trim_matches('"').to_owned(),
            );
        }
    }
    let mut out = value.to_owned();
    for (name, default) in &args {
        out = out
            .replace(&format!("${{{name}}}"), default)
            .replace(&format!("${name}"), default);
    }
    assert!(
        !out.contains('$'),
        "{value}: a variable that no ARG of the stage defines"
    );
    out
}

/// `ENV` keys and values (`ENV KEY=VALUE ...` form) over the stage and its bases.
fn env_of(stages: &[Stage], stage: &Stage) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for instruction in effective(stages, stage, "ENV") {
        for pair in instruction.args.split_whitespace() {
            let (key, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("line {}: use ENV KEY=VALUE", instruction.line));
            env.insert(key.to_owned(), value.trim_matches('"').to_owned());
        }
    }
    env
}

/// An exec-form (JSON array) instruction's words.
fn exec_form(instruction: &Instruction) -> Vec<String> {
    serde_json::from_str(&instruction.args).unwrap_or_else(|e| {
        panic!(
            "line {}: {} {} is not in exec form: {e}",
            instruction.line, instruction.keyword, instruction.args
        )
    })
}

/// README.md's `## Docker` section.
fn readme_docker_section() -> String {
    let readme = read("README.md");
    let start = readme
        .find("\n## Docker\n")
        .expect("README.md has a `## Docker` section");
    let section = &readme[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    section[..end].to_owned()
}

/// Each command line of the section that starts with `docker <verb>` (a `$ ` prompt allowed), as
/// words (double quotes dropped; the documented commands quote no spaces).
fn readme_commands(verb: &str) -> Vec<Vec<String>> {
    readme_docker_section()
        .lines()
        .map(|l| l.trim().trim_start_matches("$ "))
        .filter(|l| l.starts_with(&format!("docker {verb} ")))
        .map(|l| {
            let command = l.split(" #").next().unwrap();
            command
                .split_whitespace()
                .map(|w| w.replace('"', ""))
                .collect()
        })
        .collect()
}

/// A flag's values in a command: `--flag value` and `--flag=value`.
fn flag_values(command: &[String], flags: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, word) in command.iter().enumerate() {
        for flag in flags {
            if word == flag {
                out.push(command.get(i + 1).cloned().unwrap_or_default());
            } else if let Some(value) = word.strip_prefix(&format!("{flag}=")) {
                out.push(value.to_owned());
            }
        }
    }
    out
}

#[test]
fn the_readme_docker_build_targets_are_stages_of_the_dockerfile() {
    let stages = dockerfile();
    let names: Vec<&str> = stages.iter().filter_map(|s| s.name.as_deref()).collect();
    let builds = readme_commands("build");
    let targets: Vec<String> = builds
        .iter()
        .flat_map(|c| flag_values(c, &["--target"]))
        .collect();
    for documented in ["check", "image-test"] {
        assert!(
            targets.iter().any(|t| t == documented),
            "README.md documents no `docker build --target {documented} .` (it has {builds:?})"
        );
    }
    for target in &targets {
        assert!(
            names.contains(&target.as_str()),
            "README.md builds `--target {target}`, but the Dockerfile's stages are {names:?}"
        );
    }
    assert!(
        builds
            .iter()
            .any(|c| flag_values(c, &["--target"]).is_empty()),
        "README.md documents no plain `docker build -t facehugger .` (it has {builds:?})"
    );
    // The runtime stage, and the default target (the last stage) builds on it.
    let runtime = stage(&stages, "runtime");
    let last = stages.last().expect("the Dockerfile has stages");
    assert!(
        chain(&stages, last)
            .iter()
            .any(|s| std::ptr::eq(*s, runtime)),
        "the last stage (the default target) must be the runtime image, not FROM {}",
        last.base
    );
    // The checks are built from the sources, the image test from the runtime image.
    assert_eq!(stage(&stages, "image-test").base, "runtime");
    let check = stage(&stages, "check");
    let check_runs: String = effective(&stages, check, "RUN")
        .iter()
        .map(|i| i.args.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for step in ["cargo fmt", "cargo clippy", "-D warnings", "scripts/test"] {
        assert!(
            check_runs.contains(step),
            "the check stage does not run `{step}`"
        );
    }
}

#[test]
fn the_runtime_image_runs_facehugger_as_a_non_root_user() {
    let stages = dockerfile();
    let runtime = stage(&stages, "runtime");
    let last = stages.last().unwrap();
    for image in [runtime, last] {
        let what = format!("the image of the stage FROM {}", image.base);
        let user = effective(&stages, image, "USER")
            .last()
            .map(|i| expand(&i.args, runtime))
            .unwrap_or_else(|| panic!("{what} sets no USER, so it runs as root"));
        let account = user.split(':').next().unwrap();
        assert!(
            !account.is_empty() && account != "root" && account != "0",
            "{what} runs as {user}"
        );
        let entrypoint = effective(&stages, image, "ENTRYPOINT")
            .last()
            .map(|i| exec_form(i))
            .unwrap_or_else(|| panic!("{what} has no ENTRYPOINT"));
        assert_eq!(
            entrypoint.first().map(String::as_str),
            Some("facehugger"),
            "{what}: ENTRYPOINT {entrypoint:?}"
        );
    }
    // The image test runs as the runtime's user, the one it is there to check.
    assert!(
        !stage(&stages, "image-test")
            .instructions
            .iter()
            .any(|i| i.keyword == "USER"),
        "the image-test stage must not change USER"
    );
}

#[test]
fn the_readme_docker_run_mounts_are_the_runtime_workdir_and_hf_home_volume() {
    let stages = dockerfile();
    let runtime = stage(&stages, "runtime");
    let env = env_of(&stages, runtime);
    let hf_home = env.get("HF_HOME").expect("the runtime image sets HF_HOME");
    let volumes: Vec<String> = effective(&stages, runtime, "VOLUME")
        .iter()
        .flat_map(|i| exec_form(i))
        .collect();
    assert!(
        volumes.contains(hf_home),
        "HF_HOME {hf_home} is not a VOLUME ({volumes:?})"
    );
    let workdir = effective(&stages, runtime, "WORKDIR")
        .last()
        .map(|i| i.args.clone())
        .expect("the runtime image sets a WORKDIR for the manifest");
    let runs = readme_commands("run");
    assert!(!runs.is_empty(), "README.md documents no `docker run`");
    for run in &runs {
        let mounts = flag_values(run, &["-v", "--volume"]);
        let targets: Vec<&str> = mounts
            .iter()
            .map(|m| m.split(':').nth(1).expect("a -v SOURCE:TARGET mount"))
            .collect();
        assert!(
            targets.contains(&workdir.as_str()),
            "{run:?} mounts no project at {workdir}"
        );
        assert!(
            targets.contains(&hf_home.as_str()),
            "{run:?} mounts no cache at {hf_home}"
        );
    }
}

// The image test's script is `sh`, as in the Linux image: what runs it is Unix only.

/// The shells a `RUN` of the image-test stage may meet: its `SHELL` (Docker, and podman with
/// `--format docker`) and `/bin/sh -c` (builders that write OCI images, whose config has no SHELL).
#[cfg(unix)]
fn image_test_shells(stages: &[Stage]) -> Vec<Vec<String>> {
    let image_test = stage(stages, "image-test");
    let mut shells = vec![vec!["/bin/sh".to_owned(), "-c".to_owned()]];
    if let Some(shell) = effective(stages, image_test, "SHELL").last() {
        shells.push(exec_form(shell));
    }
    shells
}

/// What one run of the image-test stage's sync script printed, and how it ended.
#[cfg(unix)]
struct ScriptRun {
    success: bool,
    stdout: String,
    stderr: String,
    line: usize,
}

/// Runs the image test's sync script (the `RUN` that starts `test-hub`) with `shell` on this machine:
/// `facehugger` is `facehugger` (the binary under test, or a wrapper of it), `test-hub` a stand-in
/// that announces `hub`, and HF_HOME, the fixtures and the working directory are temporary
/// stand-ins for the image's paths. Returns the run, the temporary root and HF_HOME.
#[cfg(unix)]
fn run_image_test_script(
    hub: &TestHub,
    shell: &[String],
    facehugger: &str,
) -> (ScriptRun, tempfile::TempDir, PathBuf) {
    let stages = dockerfile();
    let image_test = stage(&stages, "image-test");
    let script = image_test
        .instructions
        .iter()
        .find(|i| i.keyword == "RUN" && i.args.contains("test-hub "))
        .expect("the image-test stage runs a sync against test-hub");
    let env = env_of(&stages, image_test);
    for key in ["HF_HOME", "TEST_HUB_FIXTURES"] {
        assert!(
            env.contains_key(key),
            "the image-test stage has no ENV {key}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let work = dir.path().join("work");
    for folder in [&bin, &work] {
        std::fs::create_dir_all(folder).unwrap();
    }
    write_executable(&bin.join("facehugger"), facehugger);
    write_executable(
        &bin.join("test-hub"),
        &format!(
            "#!/bin/sh\n\
             # Stand-in for the test-hub binary: announces the hub the test started in-process.\n\
             [ \"$1\" = --fixtures ] && [ -f \"$2/tiny.toml\" ] || {{ echo \"test-hub: bad arguments: $*\" >&2; exit 2; }}\n\
             printf 'endpoint=%s\\ncdn=%s\\n' '{}' '{}'\n\
             exec sleep 300\n",
            hub.endpoint(),
            hub.cdn_origin()
        ),
    );

    let hf_home: PathBuf = dir.path().join("hf-home");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut shell_cmd = Command::new(&shell[0]);
    shell_cmd
        .args(&shell[1..])
        .arg(&script.args)
        .current_dir(&work)
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .env("HF_HOME", &hf_home)
        .env("TEST_HUB_FIXTURES", root().join("fixtures/hub"));
    keep_runner_env(&mut shell_cmd);
    let output = shell_cmd.output().expect("the stage's shell runs");
    let run = ScriptRun {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        line: script.line,
    };
    (run, dir, hf_home)
}

#[cfg(unix)]
fn write_executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The binary under test, as the script's `facehugger`.
#[cfg(unix)]
fn facehugger_itself() -> String {
    format!(
        "#!/bin/sh\nexec '{}' \"$@\"\n",
        env!("CARGO_BIN_EXE_facehugger")
    )
}

#[cfg(unix)]
#[test]
fn the_image_test_sync_script_passes_against_the_test_hub_under_any_shell() {
    let shells = image_test_shells(&dockerfile());
    assert!(shells.len() >= 2, "{shells:?}");
    for shell in shells {
        let hub = TestHub::start(Options::default()).expect("the test hub starts");
        let (run, dir, hf_home) = run_image_test_script(&hub, &shell, &facehugger_itself());
        assert!(
            run.success,
            "the image-test script (Dockerfile line {}) failed under {shell:?}\nstdout:\n{}\nstderr:\n{}",
            run.line, run.stdout, run.stderr
        );
        assert!(
            run.stdout.contains("Downloading acme/tiny@main"),
            "{shell:?}: {}",
            run.stdout
        );
        assert!(
            run.stdout.contains("Fresh acme/tiny@main"),
            "{shell:?}: {}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains("image-test: facehugger synced from the test hub as a non-root user"),
            "{shell:?}: {}",
            run.stdout
        );
        assert!(
            hub.requests()
                .iter()
                .any(|r| r.url.starts_with("/api/models/acme/tiny/revision/")),
            "{shell:?}: the script never asked the hub"
        );
        // It cleans up after itself, so the image keeps no trace of the test.
        assert_eq!(
            std::fs::read_dir(dir.path().join("work")).unwrap().count(),
            0
        );
        assert!(!hf_home.join("hub").exists());
    }
}

/// A sync that does its work but exits non-zero fails the image test, under every shell: the
/// script's checks must not hang on a pipe whose status is that of its last command.
#[cfg(unix)]
#[test]
fn the_image_test_sync_script_fails_when_a_sync_fails_under_any_shell() {
    let failing = format!(
        "#!/bin/sh\n\
         # facehugger, but a sync (no arguments) exits 1 after doing its work.\n\
         '{}' \"$@\" || exit\n\
         [ $# -eq 0 ] && exit 1\n\
         exit 0\n",
        env!("CARGO_BIN_EXE_facehugger")
    );
    for shell in image_test_shells(&dockerfile()) {
        let hub = TestHub::start(Options::default()).expect("the test hub starts");
        let (run, _dir, _) = run_image_test_script(&hub, &shell, &failing);
        assert!(
            !run.success,
            "under {shell:?}, the image-test script passed although a sync failed\nstdout:\n{}",
            run.stdout
        );
        // The sync ran and its output is shown: the failure is not one of a missing binary.
        assert!(
            run.stdout.contains("Downloading acme/tiny@main"),
            "{shell:?}: {}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

/// A `# syntax=` parser directive makes BuildKit fetch that frontend image from a registry before the
/// first step; the Dockerfile uses nothing the built-in frontend lacks, so it has none and builds
/// with no registry beyond its FROM images.
#[test]
fn the_dockerfile_names_no_frontend_image() {
    let text = read("Dockerfile");
    // Parser directives are `# key=value` lines at the very top, before any other line.
    for line in text.lines() {
        let Some(comment) = line.trim_start().strip_prefix('#') else {
            break;
        };
        let Some((key, _)) = comment.split_once('=') else {
            break;
        };
        let key = key.trim();
        if key.contains(char::is_whitespace) {
            break;
        }
        assert!(
            !key.eq_ignore_ascii_case("syntax"),
            "the Dockerfile starts with the parser directive `{line}`"
        );
    }
}

/// The README's `docker build` commands are what CI builds: `.ci/run` runs `scripts/docker-build`,
/// which builds each documented target (and the default one) with podman and runs the image.
#[test]
fn ci_builds_every_documented_target_with_scripts_docker_build() {
    let script = read("scripts/docker-build");
    let builds: Vec<&str> = script
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("timed ") && l.contains(" build "))
        .collect();
    for command in readme_commands("build") {
        let target = flag_values(&command, &["--target"]);
        let built = match target.as_slice() {
            [] => builds.iter().any(|l| !l.contains("--target")),
            [target] => builds
                .iter()
                .any(|l| l.contains(&format!("--target {target} "))),
            _ => panic!("{command:?} names more than one target"),
        };
        assert!(
            built,
            "scripts/docker-build does not build {command:?}; it builds {builds:?}"
        );
    }
    assert!(
        script.contains("podman run "),
        "scripts/docker-build never runs the image"
    );
    let ci = read(".ci/run");
    assert!(
        ci.lines()
            .map(str::trim)
            .any(|l| l.starts_with("scripts/docker-build")),
        ".ci/run does not run scripts/docker-build"
    );
    assert!(
        readme_docker_section().contains("scripts/docker-build"),
        "README.md's Docker section does not say how the images are built here"
    );
}
