//! `cargo facehugger`: models in Cargo.toml metadata, workspaces, `-p`, discovery.

use crate::support::{Env, Run, write_files};

/// A workspace: its own table declares acme/data; member `app` declares acme/tiny (json files),
/// member `tool` declares acme/tiny again (README) and acme/many; `plain` declares nothing.
fn workspace(env: &Env) -> std::path::PathBuf {
    let root = env.project();
    write_files(
        &root,
        &[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"app\", \"tool\", \"plain\"]\nresolver = \"2\"\n\n[[workspace.metadata.facehugger.models]]\nrepo = \"acme/data\"\nrepo_type = \"dataset\"\ninclude = \"README.md\"\n",
            ),
            (
                "app/Cargo.toml",
                "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"acme/tiny\"\ninclude = [\"*.json\"]\n",
            ),
            ("app/src/lib.rs", ""),
            (
                "tool/Cargo.toml",
                "[package]\nname = \"tool\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"acme/tiny\"\ninclude = \"README.md\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"acme/many\"\ninclude = \"part-a/*\"\n",
            ),
            ("tool/src/lib.rs", ""),
            (
                "plain/Cargo.toml",
                "[package]\nname = \"plain\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            ),
            ("plain/src/lib.rs", ""),
        ],
    );
    root
}

fn cargo(env: &Env, dir: &std::path::Path, args: &[&str]) -> Run {
    Run::from(env.cargo_cmd(dir, args).output().unwrap())
}

fn snapshot_files(env: &Env, folder: &str) -> Vec<String> {
    let mut files: Vec<String> = crate::support::tree(&env.cache().join(folder))
        .into_iter()
        .filter_map(|f| {
            f.strip_prefix("snapshots/").map(|f| {
                f.split_once('/')
                    .unwrap()
                    .1
                    .split(" -> ")
                    .next()
                    .unwrap()
                    .to_owned()
            })
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_workspace_root_syncs_every_member_and_the_workspace_table() {
    let env = Env::new();
    let root = workspace(&env);
    let run = cargo(&env, &root, &[]).success();
    // acme/tiny@main is declared by two members: resolved once, downloaded once, patterns united.
    assert_eq!(
        env.count("/api/models/acme/tiny/revision/main"),
        1,
        "{}",
        run.stderr
    );
    let tiny_lines = run
        .stderr
        .lines()
        .filter(|line| line.contains("acme/tiny@main"));
    assert_eq!(
        tiny_lines.count(),
        1,
        "one status line for both declarations:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Downloading acme/tiny@main (4 files, "),
        "{}",
        run.stderr
    );
    assert_eq!(
        snapshot_files(&env, "models--acme--tiny"),
        [
            "README.md",
            "config.json",
            "generation_config.json",
            "tokenizer.json"
        ]
    );
    assert_eq!(snapshot_files(&env, "datasets--acme--data"), ["README.md"]);
    assert!(!snapshot_files(&env, "models--acme--many").is_empty());
    let lock = std::fs::read_to_string(root.join("facehugger.lock")).unwrap();
    for repo in ["\"acme/data\"", "\"acme/tiny\"", "\"acme/many\""] {
        assert!(lock.contains(repo), "{lock}");
    }
    // Same command through the other binary and from the member's folder: nothing more to do.
    let run = cargo(&env, &root, &["sync", "--frozen"]).success();
    assert!(
        run.stderr.contains("Fresh acme/tiny@main"),
        "{}",
        run.stderr
    );
}

#[test]
fn packages_and_member_folders_narrow_the_sync_but_not_the_lock() {
    let env = Env::new();
    let root = workspace(&env);
    cargo(&env, &root, &["-p", "app"]).success();
    assert_eq!(
        snapshot_files(&env, "models--acme--tiny"),
        ["config.json", "generation_config.json", "tokenizer.json"]
    );
    assert_eq!(
        snapshot_files(&env, "datasets--acme--data"),
        ["README.md"],
        "the workspace table comes along"
    );
    assert!(!env.cache().join("models--acme--many").exists());
    let lock = std::fs::read_to_string(root.join("facehugger.lock")).unwrap();
    assert!(
        lock.contains("\"acme/many\""),
        "the lock covers the whole workspace:\n{lock}"
    );

    // From the `tool` folder: that member only; the lock stays at the workspace root.
    cargo(&env, &root.join("tool"), &[]).success();
    assert!(env.cache().join("models--acme--many").exists());
    assert!(!root.join("tool/facehugger.lock").exists());
    cargo(&env, &root, &["lock", "--check"]).success();

    let run = cargo(&env, &root, &["-p", "nope"]).failure(2);
    assert!(
        run.stderr
            .contains("package `nope` is not a member of the workspace"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("members: app, tool, plain") || run.stderr.contains("app"),
        "{}",
        run.stderr
    );
}

#[test]
fn manifest_path_points_at_the_cargo_project() {
    let env = Env::new();
    let root = workspace(&env);
    let elsewhere = env.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let manifest = root.join("Cargo.toml");
    cargo(
        &env,
        &elsewhere,
        &["lock", "--manifest-path", manifest.to_str().unwrap()],
    )
    .success();
    assert!(root.join("facehugger.lock").is_file());
    assert!(!elsewhere.join("facehugger.lock").exists());
    // The plain `facehugger` binary accepts the same.
    env.cmd(&[
        "lock",
        "--check",
        "--manifest-path",
        manifest.to_str().unwrap(),
    ])
    .assert()
    .success();
}

/// `[package]` of a member named `name` that declares one model.
fn member(name: &str, model: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[[package.metadata.facehugger.models]]\n{model}"
    )
}

#[test]
fn manifest_path_to_a_workspace_root_syncs_the_workspace_from_anywhere() {
    let env = Env::new();
    // A virtual workspace of two members, each declaring a model, run from the folder above.
    let above = env.dir.path().join("above");
    let workspace = "[workspace]\nmembers = [\"a\", \"b\"]\nresolver = \"2\"\n";
    write_files(
        &above,
        &[
            ("ws/Cargo.toml", workspace),
            (
                "ws/a/Cargo.toml",
                &member("a", "repo = \"acme/tiny\"\ninclude = \"config.json\"\n"),
            ),
            ("ws/a/src/lib.rs", ""),
            (
                "ws/b/Cargo.toml",
                &member(
                    "b",
                    "repo = \"acme/data\"\nrepo_type = \"dataset\"\ninclude = \"README.md\"\n",
                ),
            ),
            ("ws/b/src/lib.rs", ""),
        ],
    );
    let run = cargo(&env, &above, &["sync", "--manifest-path", "ws/Cargo.toml"]).success();
    for line in [
        "Downloading acme/tiny@main (1 file, ",
        "Downloading dataset acme/data@main (1 file, ",
        "Finished 2 files in ",
    ] {
        assert!(run.stderr.contains(line), "{line}: {}", run.stderr);
    }
    assert_eq!(snapshot_files(&env, "models--acme--tiny"), ["config.json"]);
    assert_eq!(snapshot_files(&env, "datasets--acme--data"), ["README.md"]);
    assert!(above.join("ws/facehugger.lock").is_file());
    assert!(!above.join("facehugger.lock").exists());

    // A member's Cargo.toml means that member, as in cargo; the lock still covers both.
    let cache = |name: &str| env.dir.path().join(name);
    let run = cargo(
        &env,
        &above,
        &[
            "sync",
            "--manifest-path",
            "ws/b/Cargo.toml",
            "--cache-dir",
            cache("b").to_str().unwrap(),
        ],
    )
    .success();
    assert!(
        cache("b").join("datasets--acme--data").exists(),
        "{}",
        run.stderr
    );
    assert!(!cache("b").join("models--acme--tiny").exists());

    // The root means its default members, when it names them.
    std::fs::write(
        above.join("ws/Cargo.toml"),
        format!("{workspace}default-members = [\"a\"]\n"),
    )
    .unwrap();
    cargo(
        &env,
        &above,
        &[
            "sync",
            "--manifest-path",
            "ws/Cargo.toml",
            "--cache-dir",
            cache("a").to_str().unwrap(),
        ],
    )
    .success();
    assert!(cache("a").join("models--acme--tiny").exists());
    assert!(!cache("a").join("datasets--acme--data").exists());

    // `remove` edits the Cargo.toml named, not one found from the current folder; the dataset
    // needs no --repo-type.
    cargo(
        &env,
        &above,
        &["remove", "acme/data", "--manifest-path", "ws/b/Cargo.toml"],
    )
    .success();
    let text = std::fs::read_to_string(above.join("ws/b/Cargo.toml")).unwrap();
    assert!(!text.contains("acme/data"), "{text}");
    let lock = std::fs::read_to_string(above.join("ws/facehugger.lock")).unwrap();
    assert!(
        !lock.contains("acme/data") && lock.contains("acme/tiny"),
        "{lock}"
    );
}

#[test]
fn a_yaml_manifest_and_cargo_metadata_together_need_a_choice() {
    let env = Env::new();
    let root = workspace(&env);
    std::fs::write(
        root.join("facehugger.yaml"),
        "models:\n  - repo: acme/tiny\n    include: README.md\n",
    )
    .unwrap();
    let run = cargo(&env, &root, &[]).failure(2);
    assert!(
        run.stderr.contains("both `facehugger.yaml` and `"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--manifest-path"), "{}", run.stderr);
    // Naming one settles it.
    cargo(&env, &root, &["facehugger.yaml"]).success();
    assert!(!env.cache().join("datasets--acme--data").exists());
}

#[test]
fn errors_in_cargo_metadata_name_the_file_key_and_line() {
    let env = Env::new();
    let root = workspace(&env);
    std::fs::write(
        root.join("tool/Cargo.toml"),
        "[package]\nname = \"tool\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"acme/tiny\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"acme/many\"\ninclude = 5\n",
    )
    .unwrap();
    let run = cargo(&env, &root, &[]).failure(2);
    let expected = format!(
        "error: {}:11:11: package.metadata.facehugger.models[1].include: expected a pattern string or an array of pattern strings, found an integer",
        root.join("tool/Cargo.toml").display()
    );
    assert!(run.stderr.starts_with(&expected), "{}", run.stderr);
}

#[test]
fn help_looks_like_cargo() {
    let env = Env::new();
    let run = cargo(&env, &env.project(), &["--help"]).success();
    assert!(
        run.stdout
            .contains("Usage: cargo facehugger [OPTIONS] [MANIFEST]"),
        "{}",
        run.stdout
    );
    for flag in [
        "--manifest-path",
        "--package",
        "--frozen",
        "--locked",
        "--offline",
    ] {
        assert!(run.stdout.contains(flag), "{flag}");
    }
    let run = cargo(&env, &env.project(), &["--bogus"]).failure(2);
    assert!(
        run.stderr.contains("Usage: cargo facehugger"),
        "{}",
        run.stderr
    );
    // `cargo help facehugger` finds the subcommand on PATH.
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_cargo-facehugger"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut help = std::process::Command::new("cargo");
    help.args(["help", "facehugger"]).env("PATH", path);
    let output = help.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Usage: cargo facehugger"), "{stdout}");
}
