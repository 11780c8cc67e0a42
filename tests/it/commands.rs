//! Everyday commands and output modes: `status`, `path`, `verify`, `--format json`,
//! `completions`, the live progress on a terminal. Outputs are compared whole, with the
//! temporary paths, commits and timings replaced by placeholders.

use crate::support::{Env, Options, symlink};

/// The text with the paths, commits and timings of this run replaced by placeholders.
fn filtered(env: &Env, text: &str) -> String {
    let mut text = text.replace(&env.cache().display().to_string(), "[CACHE]");
    for (repo_type, id, rev, name) in [
        ("model", "acme/tiny", "main", "[MAIN]"),
        ("model", "acme/tiny", "v1.0", "[V1]"),
        ("dataset", "acme/data", "main", "[DATA]"),
    ] {
        text = text.replace(&env.commit(repo_type, id, rev), name);
    }
    let mut out = String::new();
    for word in text.split_inclusive(' ') {
        let bare = word.trim_end();
        let timing = bare.ends_with('s') && bare.trim_end_matches('s').parse::<f64>().is_ok();
        out.push_str(if timing { "[TIME] " } else { word });
    }
    out
}

const MANIFEST: &str = "models:\n  - repo: acme/tiny\n    include: [\"*.json\"]\n  - repo: acme/tiny\n    ref: v1.0\n    include: README.md\n  - repo: acme/data\n    repo_type: dataset\n    include: data/\n";

#[test]
fn status_shows_each_model_without_the_network() {
    let env = Env::new();
    env.manifest(MANIFEST);
    let run = env.run(&["status"]).success();
    assert_eq!(
        run.stdout,
        "acme/tiny@main\n  locked:   not locked\n  cache:    not synced\nacme/tiny@v1.0\n  locked:   not locked\n  cache:    not synced\ndataset acme/data@main\n  locked:   not locked\n  cache:    not synced\n"
    );
    env.run(&[]).success();
    // One file goes missing from the cache.
    let main = env.commit("model", "acme/tiny", "main");
    std::fs::remove_file(
        env.repo_dir("models--acme--tiny")
            .join(format!("snapshots/{main}/config.json")),
    )
    .unwrap();
    env.hub.clear_requests();
    let run = env.run(&["ls"]).success();
    assert_eq!(
        filtered(&env, &run.stdout),
        "acme/tiny@main\n  locked:   [MAIN] (current as of the last sync)\n  cache:    1 of 3 files missing (64 B on disk)\n  snapshot: [CACHE]/models--acme--tiny/snapshots/[MAIN]\nacme/tiny@v1.0\n  locked:   [V1] (current as of the last sync)\n  cache:    complete (1 file, 27 B)\n  snapshot: [CACHE]/models--acme--tiny/snapshots/[V1]\ndataset acme/data@main\n  locked:   [DATA] (current as of the last sync)\n  cache:    complete (2 files, 50.0 KB)\n  snapshot: [CACHE]/datasets--acme--data/snapshots/[DATA]\n"
    );
    assert!(env.requests().is_empty(), "status uses no network");

    let run = env.run(&["status", "--format", "json"]).success();
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json[0]["repo_id"], "acme/tiny");
    assert_eq!(json[0]["ref"], "main");
    assert_eq!(json[0]["locked_revision"], main);
    assert_eq!(json[0]["lock_current"], true);
    assert_eq!(json[0]["files"], 3);
    assert_eq!(json[0]["missing"], 1);
    assert_eq!(json[2]["repo_type"], "dataset");
}

#[test]
fn path_prints_the_snapshot_folder_for_scripts() {
    let env = Env::new();
    env.manifest(MANIFEST);
    let run = env.run(&["path", "acme/tiny"]).failure(1);
    assert!(
        run.stderr
            .contains("`acme/tiny` is declared at several refs (main, v1.0): pass --ref"),
        "{}",
        run.stderr
    );
    let run = env.run(&["path", "acme/data"]).failure(1);
    assert!(
        run.stderr.contains(
            "dataset acme/data@main is neither locked nor in the cache: run `facehugger sync` first"
        ),
        "{}",
        run.stderr
    );
    env.run(&[]).success();
    let run = env.run(&["path", "acme/tiny", "--ref", "v1.0"]).success();
    assert_eq!(
        filtered(&env, &run.stdout),
        "[CACHE]/models--acme--tiny/snapshots/[V1]\n"
    );
    let run = env.run(&["path", "acme/nope"]).failure(1);
    assert!(
        run.stderr
            .contains("`acme/nope` is not in `facehugger.yaml`"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_finds_corrupt_and_missing_files_and_repair_fixes_them() {
    let env = Env::new();
    env.manifest(MANIFEST);
    env.run(&[]).success();
    let run = env.run(&["verify"]).success();
    assert_eq!(
        filtered(&env, &run.stdout),
        "acme/tiny@main: 3 of 3 files hashed (84 B) at [MAIN]\nacme/tiny@v1.0: 1 of 1 file hashed (27 B) at [V1]\ndataset acme/data@main: 2 of 2 files hashed (50.0 KB) at [DATA]\nevery file verified\n"
    );

    let main = env.commit("model", "acme/tiny", "main");
    let info = env
        .hub
        .repo("model", "acme/tiny")
        .unwrap()
        .commit(&main)
        .unwrap();
    let config = info.file("config.json").unwrap().etag().to_owned();
    let blob = env
        .repo_dir("models--acme--tiny")
        .join(format!("blobs/{config}"));
    std::fs::write(&blob, "{\"hidden_size\": 17}\n").unwrap();
    std::fs::remove_file(
        env.repo_dir("models--acme--tiny")
            .join(format!("snapshots/{main}/tokenizer.json")),
    )
    .unwrap();
    let run = env.run(&["verify"]).failure(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{}", run.stdout);
    // The corrupt file was hashed (20 B), the missing one was not.
    assert_eq!(
        filtered(&env, lines[0]),
        "acme/tiny@main: 2 of 3 files hashed (39 B) at [MAIN]"
    );
    assert!(
        lines[3].starts_with(&format!(
            "acme/tiny@main: config.json: corrupt: expected {config}, got "
        )),
        "{}",
        run.stdout
    );
    assert_eq!(lines[4], "acme/tiny@main: tokenizer.json: missing");
    assert_eq!(lines[5], "2 problems");
    let run = env.run(&["verify", "--format", "json"]).failure(1);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["models"][0]["files_hashed"], 2);
    assert_eq!(json["problems"][0]["problem"], "corrupt");
    assert_eq!(json["problems"][1]["problem"], "missing");

    env.hub.clear_requests();
    let run = env.run(&["verify", "--repair"]).success();
    assert!(
        run.stdout.ends_with("\nevery file verified\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("Downloading acme/tiny@main (1 file, 20 B)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        env.count("/api/"),
        0,
        "the repair downloads the locked revision, nothing else"
    );
}

#[test]
fn verify_json_lists_the_models_it_checked() {
    let env = Env::new();
    // Nothing declared: nothing checked, and the output says so.
    env.manifest("models: []\n");
    let run = env.run(&["verify", "--format", "json"]).success();
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"ok": true, "models": [], "problems": []})
    );
    assert_eq!(
        env.run(&["verify"]).success().stdout,
        "no model to verify\n"
    );

    // Declared but not synced: nothing checked, each model a problem.
    env.manifest(MANIFEST);
    let run = env.run(&["verify", "--format", "json"]).failure(1);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["models"], serde_json::json!([]));
    assert_eq!(json["problems"].as_array().unwrap().len(), 3);
    assert_eq!(json["problems"][0]["problem"], "unknown");

    // Synced: every model checked, all good.
    env.run(&[]).success();
    let run = env.run(&["verify", "--format", "json"]).success();
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let status: serde_json::Value =
        serde_json::from_str(&env.run(&["status", "--format", "json"]).success().stdout).unwrap();
    let expected: Vec<serde_json::Value> = status
        .as_array()
        .unwrap()
        .iter()
        .map(|model| {
            serde_json::json!({
                "model": model["name"],
                "repo_id": model["repo_id"],
                "repo_type": model["repo_type"],
                "ref": model["ref"],
                "revision": model["revision"],
                "files": model["files"],
                "files_hashed": model["files"],
                "bytes_hashed": model["size_on_disk"],
            })
        })
        .collect();
    assert_eq!(
        json,
        serde_json::json!({"ok": true, "models": expected, "problems": []})
    );
    assert_eq!(json["models"][2]["model"], "dataset acme/data@main");
    assert_eq!(
        json["models"][2]["revision"],
        env.commit("dataset", "acme/data", "main")
    );
    assert_eq!(json["models"][0]["bytes_hashed"], 84);
}

#[test]
fn verify_checks_where_each_snapshot_entry_leads() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: [\"*.json\", \"sub/*\"]\n");
    env.run(&[]).success();
    let main = env.commit("model", "acme/tiny", "main");
    let repo = env.repo_dir("models--acme--tiny");
    let snapshot = repo.join(format!("snapshots/{main}"));
    let info = env.hub.repo("model", "acme/tiny").unwrap();
    let etag = |path: &str| {
        info.commit(&main)
            .unwrap()
            .file(path)
            .unwrap()
            .etag()
            .to_owned()
    };
    let (config, tokenizer, top) = (
        etag("config.json"),
        etag("tokenizer.json"),
        etag("sub/top.txt"),
    );
    let relink = |path: &str, target: &str| {
        let at = snapshot.join(path);
        std::fs::remove_file(&at).unwrap();
        symlink(target, at);
    };
    let target = |path: &str| {
        std::fs::read_link(snapshot.join(path))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };

    // Another file's blob, and the right blob at the wrong depth.
    relink("config.json", &format!("../../blobs/{tokenizer}"));
    relink("sub/top.txt", &format!("../../blobs/{top}"));
    let run = env.run(&["verify"]).failure(1);
    assert!(
        run.stdout.contains(&format!(
            "\nacme/tiny@main: config.json: wrong link: points to ../../blobs/{tokenizer}, expected ../../blobs/{config}\nacme/tiny@main: sub/top.txt: wrong link: points to ../../blobs/{top}, expected ../../../blobs/{top}\n2 problems\n"
        )),
        "{}",
        run.stdout
    );
    let run = env.run(&["verify", "--format", "json"]).failure(1);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        json["problems"][0],
        serde_json::json!({
            "model": "acme/tiny@main",
            "path": "config.json",
            "problem": "wrong-link",
            "expected": format!("../../blobs/{config}"),
            "actual": format!("../../blobs/{tokenizer}"),
            "blob": repo.join(format!("blobs/{config}")).to_str().unwrap(),
        })
    );
    // A sync does not read where links point (a readlink per file would cost a 100,000-file
    // dataset a tenth of a second): verify --repair relinks them, downloading nothing.
    env.hub.clear_requests();
    let run = env.run(&["verify", "--repair"]).success();
    assert_eq!(target("config.json"), format!("../../blobs/{config}"));
    assert_eq!(target("sub/top.txt"), format!("../../../blobs/{top}"));
    assert_eq!(env.count("/acme/tiny/resolve/"), 0);
    assert!(
        run.stdout.ends_with("\nevery file verified\n"),
        "{}",
        run.stdout
    );
    assert_eq!(target("config.json"), format!("../../blobs/{config}"));

    // The reference client's other layouts verify: the content itself in the snapshot (links
    // off), and a blob that links into the shared Xet store.
    std::fs::remove_file(snapshot.join("config.json")).unwrap();
    std::fs::write(snapshot.join("config.json"), "{\"hidden_size\": 16}\n").unwrap();
    let hash = format!("ab{}", "0".repeat(62));
    let store = env.cache().join("blobs/ab");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::rename(repo.join(format!("blobs/{tokenizer}")), store.join(&hash)).unwrap();
    symlink(
        format!("../../blobs/ab/{hash}"),
        repo.join(format!("blobs/{tokenizer}")),
    );
    let run = env.run(&["verify", "--format", "json"]).success();
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["models"][0]["files_hashed"], 5, "{json}");

    // Corrupt content in the snapshot is reported there, and repaired into a link.
    std::fs::write(snapshot.join("config.json"), "{\"hidden_size\": 99}\n").unwrap();
    let run = env.run(&["verify", "--format", "json"]).failure(1);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["problems"][0]["problem"], "corrupt");
    assert_eq!(
        json["problems"][0]["blob"],
        snapshot.join("config.json").to_str().unwrap()
    );
    env.run(&["verify", "--repair"]).success();
    assert_eq!(target("config.json"), format!("../../blobs/{config}"));
}

#[test]
fn json_output_of_dry_run_and_lock_is_stable() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: config.json\n");
    let run = env
        .run(&["sync", "--dry-run", "--format", "json"])
        .success();
    let main = env.commit("model", "acme/tiny", "main");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{
            "repo_id": "acme/tiny",
            "repo_type": "model",
            "ref": "main",
            "revision": main,
            "hf_command": "hf download acme/tiny --include config.json",
            "download_files": 1,
            "download_bytes": 20,
            "cached_files": 0,
            "files": [{"path": "config.json", "size": 20, "action": "download"}],
        }])
    );
    let run = env.run(&["lock", "--format", "json"]).success();
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["changed"], true);
    assert_eq!(json["written"], true);
    assert_eq!(
        json["entries"],
        serde_json::json!([{"repo_id": "acme/tiny", "repo_type": "model", "revision": main, "refs": ["main"]}])
    );
    assert!(
        json["lock_path"]
            .as_str()
            .unwrap()
            .ends_with("facehugger.lock")
    );
    let run = env.run(&["lock", "--check", "--format", "json"]).success();
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        (json["changed"].clone(), json["written"].clone()),
        (false.into(), false.into())
    );
    let run = env.run(&["--format", "json"]).failure(2);
    assert!(run.stderr.contains("--dry-run"), "{}", run.stderr);
}

#[test]
fn completions_are_printed_for_each_shell() {
    let env = Env::new();
    for (shell, needle) in [
        ("bash", "_facehugger()"),
        ("zsh", "#compdef facehugger"),
        ("fish", "complete -c facehugger"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let run = env.run(&["completions", shell]).success();
        assert!(
            run.stdout.contains(needle),
            "{shell}: {}",
            &run.stdout[..run.stdout.len().min(300)]
        );
        assert!(run.stdout.contains("frozen"), "{shell}");
    }
}

#[test]
fn output_is_plain_off_a_terminal_and_live_on_one() {
    let env = Env::with_options(Options {
        bandwidth: Some(150_000),
        ..Options::default()
    });
    env.manifest("models:\n  - repo: acme/tiny\n    include: model.safetensors\n");
    // Off a terminal: status lines only, no progress, no colour; -q: nothing at all.
    let run = env.run(&[]).success();
    let lines: Vec<String> = filtered(&env, &run.stderr)
        .lines()
        .map(|l| l.trim_start().to_owned())
        .collect();
    assert_eq!(
        lines,
        [
            "Resolving acme/tiny@main",
            "Locked facehugger.lock",
            "Downloading acme/tiny@main (1 file, 200.0 KB)",
            "Finished 1 file in [TIME] (1 downloaded, 200.0 KB at [RATE]; 0 already cached)",
        ]
        .map(|line| line.replace(
            "[RATE]",
            lines
                .last()
                .and_then(|l| l.split(" at ").nth(1)?.split(';').next())
                .unwrap_or("")
        ))
    );
    assert!(!run.stderr.contains('\x1b'));
    let run = env.run(&["-q", "--frozen"]).success();
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));

    // On a terminal (a pseudo-terminal from `script`): a live display, cleared at the end.
    let cache = env.dir.path().join("tty-cache");
    let command = format!(
        "{} --cache-dir {}",
        env!("CARGO_BIN_EXE_facehugger"),
        cache.display()
    );
    let output = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(env.project())
        .env("TERM", "xterm")
        .env("HF_ENDPOINT", env.hub.endpoint())
        .env("HF_HOME", env.home())
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&output.stdout);
    let tail: String = screen
        .chars()
        .rev()
        .take(600)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert!(output.status.success(), "{tail}");
    assert!(
        screen.contains("acme/tiny: model.safetensors"),
        "a line per file in flight: {tail}"
    );
    assert!(screen.contains("/200.00 kB"), "overall bytes: {tail}");
    assert!(screen.contains("\x1b[2K"), "the display is cleared: {tail}");
    assert!(tail.contains("Finished"), "{tail}");
}

/// What facehugger `args` prints on a pseudo-terminal (from `script`), syncing into a cache of
/// its own; with `extra` set in its environment.
fn on_a_terminal(env: &Env, cache: &str, args: &str, extra: &[(&str, &str)]) -> String {
    let command = format!(
        "{} --cache-dir {} {args}",
        env!("CARGO_BIN_EXE_facehugger"),
        env.dir.path().join(cache).display()
    );
    let mut script = std::process::Command::new("script");
    script
        .args(["-qec", &command, "/dev/null"])
        .current_dir(env.project())
        .env("TERM", "xterm")
        .env("HF_ENDPOINT", env.hub.endpoint())
        .env("HF_HOME", env.home())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE");
    for (name, value) in extra {
        script.env(name, value);
    }
    let output = script.output().unwrap();
    let screen = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{screen}");
    screen
}

/// Whether the text holds an escape that sets colours or weights (SGR: `ESC [ ... m`).
fn has_style(text: &str) -> bool {
    text.split('\x1b').skip(1).any(|escape| {
        escape.strip_prefix('[').is_some_and(|rest| {
            let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'));
            end.is_some_and(|end| rest[end..].starts_with('m'))
        })
    })
}

#[test]
fn the_live_display_honours_color_never_and_no_color() {
    let env = Env::with_options(Options {
        bandwidth: Some(150_000),
        ..Options::default()
    });
    env.manifest("models:\n  - repo: acme/tiny\n    include: model.safetensors\n");
    // By default a terminal gets colour, in the status lines and the display's verb.
    let screen = on_a_terminal(&env, "c1", "", &[]);
    assert!(
        screen.contains(" Downloading\x1b[0m ["),
        "a coloured display: {screen:?}"
    );
    for (cache, args, extra) in [
        ("c2", "--color never", &[][..]),
        ("c3", "", &[("NO_COLOR", "1")][..]),
    ] {
        let screen = on_a_terminal(&env, cache, args, extra);
        assert!(
            screen.contains(" Downloading ["),
            "the display was drawn: {screen:?}"
        );
        assert!(!has_style(&screen), "{args} {extra:?}: {screen:?}");
    }
}

#[test]
fn add_edits_the_manifest_keeping_its_comments_then_locks_and_syncs() {
    let env = Env::new();
    // No manifest yet: one is created.
    env.run(&["add", "acme/tiny", "--include", "*.json"])
        .success();
    assert_eq!(
        std::fs::read_to_string(env.project().join("facehugger.yaml")).unwrap(),
        "models:\n  - repo: acme/tiny\n    include: [\"*.json\"]\n"
    );
    assert!(env.lock_text().unwrap().contains("\"acme/tiny\""));
    let main = env.commit("model", "acme/tiny", "main");
    assert!(
        env.repo_dir("models--acme--tiny")
            .join(format!("snapshots/{main}/config.json"))
            .exists()
    );

    let commented = "# our models\nmodels:\n  # the small one\n  - repo: acme/tiny\n    include: \"*.json\"  # configs only\n";
    env.manifest(commented);
    let run = env
        .run(&[
            "add",
            "acme/data",
            "--repo-type",
            "dataset",
            "--ref",
            "main",
            "--include",
            "data/",
            "--no-sync",
        ])
        .success();
    assert!(
        run.stderr
            .contains("Added dataset acme/data@main in facehugger.yaml"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(env.project().join("facehugger.yaml")).unwrap(),
        format!(
            "{commented}  - repo: acme/data\n    repo_type: dataset\n    ref: main\n    include: [\"data/\"]\n"
        )
    );
    assert!(
        env.lock_text().unwrap().contains("\"acme/data\""),
        "--no-sync still locks"
    );
    assert!(
        !env.cache().join("datasets--acme--data").exists(),
        "--no-sync downloads nothing"
    );
}

#[test]
fn adding_a_repo_that_does_not_exist_leaves_the_manifest_untouched() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny # keep me\n");
    let run = env.run(&["add", "acme/nope"]).failure(1);
    assert!(
        run.stderr
            .contains("acme/nope@main: repository `acme/nope` not found"),
        "{}",
        run.stderr
    );
    let run = env.run(&["add", "acme/tiny", "--ref", "v9"]).failure(1);
    assert!(
        run.stderr.contains("revision `v9` not found"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(env.project().join("facehugger.yaml")).unwrap(),
        "models:\n  - repo: acme/tiny # keep me\n"
    );
    assert!(env.lock_text().is_none());
    let run = env.run(&["add", "not a repo"]).failure(2);
    assert!(run.stderr.contains("invalid repo"), "{}", run.stderr);
    let run = env.run(&["--offline", "add", "acme/tiny"]);
    assert_eq!(run.code, 2, "flags go after the command: {}", run.stderr);
    let run = env
        .run(&["add", "acme/data", "--repo-type", "dataset", "--offline"])
        .failure(1);
    assert!(run.stderr.contains("cannot do offline"), "{}", run.stderr);
}

#[test]
fn remove_takes_a_repo_out_and_relocks() {
    let env = Env::new();
    env.manifest("models:\n  # tiny\n  - repo: acme/tiny\n    include: README.md\n  - repo: acme/data\n    repo_type: dataset\n    include: README.md\n");
    env.run(&[]).success();
    let run = env.run(&["remove", "acme/tiny"]).success();
    assert!(
        run.stderr
            .contains("Removed acme/tiny@main from facehugger.yaml"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(env.project().join("facehugger.yaml")).unwrap(),
        "models:\n  - repo: acme/data\n    repo_type: dataset\n    include: README.md\n"
    );
    let lock = env.lock_text().unwrap();
    assert!(
        !lock.contains("acme/tiny") && lock.contains("acme/data"),
        "{lock}"
    );
    // Cached files stay: other projects may use them.
    assert!(env.cache().join("models--acme--tiny").exists());
    let run = env.run(&["remove", "acme/tiny"]).failure(2);
    assert!(
        run.stderr.contains("is not declared in facehugger.yaml"),
        "{}",
        run.stderr
    );
}

#[test]
fn remove_needs_no_repo_type_unless_the_id_has_two() {
    let env = Env::new();
    // Declared once, as a dataset: `remove acme/data` is enough.
    env.manifest("models:\n  - repo: acme/tiny\n    include: README.md\n  - repo: acme/data\n    repo_type: dataset\n    include: README.md\n");
    env.run(&["lock"]).success();
    let run = env.run(&["remove", "acme/data"]).success();
    assert!(
        run.stderr
            .contains("Removed dataset acme/data@main from facehugger.yaml"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(env.project().join("facehugger.yaml")).unwrap(),
        "models:\n  - repo: acme/tiny\n    include: README.md\n"
    );
    assert!(!env.lock_text().unwrap().contains("acme/data"));

    // The manifest of the report: `dataset acme/data` alone.
    env.manifest("models:\n  - repo: acme/data\n    repo_type: dataset\n");
    env.run(&["lock"]).success();
    env.run(&["remove", "acme/data"]).success();
    assert_eq!(
        std::fs::read_to_string(env.project().join("facehugger.yaml")).unwrap(),
        "models: []\n"
    );

    // Declared with two types: the error lists them, and --repo-type picks one.
    let both = "models:\n  - repo: acme/data\n    repo_type: dataset\n  - repo: acme/data\n    include: README.md\n";
    env.manifest(both);
    let run = env.run(&["remove", "acme/data"]).failure(2);
    assert_eq!(
        run.stderr,
        "error: `acme/data` is declared with several repo types in facehugger.yaml (model, dataset): pass --repo-type to say which to remove\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.project().join("facehugger.yaml")).unwrap(),
        both
    );
    let run = env
        .run(&["remove", "acme/data", "--repo-type", "space"])
        .failure(2);
    assert!(
        run.stderr
            .contains("space `acme/data` is not declared in facehugger.yaml (but "),
        "{}",
        run.stderr
    );
    env.run(&["remove", "acme/data", "--repo-type", "model"])
        .success();
    assert_eq!(
        std::fs::read_to_string(env.project().join("facehugger.yaml")).unwrap(),
        "models:\n  - repo: acme/data\n    repo_type: dataset\n"
    );
}

#[test]
fn add_and_remove_edit_cargo_toml_metadata() {
    let env = Env::new();
    let project = env.project();
    crate::support::write_files(
        &project,
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n",
            ),
            ("src/lib.rs", ""),
        ],
    );
    env.run(&["add", "acme/tiny", "--include", "config.json"])
        .success();
    let text = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert_eq!(
        text,
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"acme/tiny\"\ninclude = [\"config.json\"]\n\n[dependencies]\n"
    );
    assert!(
        std::fs::read_to_string(project.join("facehugger.lock"))
            .unwrap()
            .contains("acme/tiny")
    );
    env.run(&["remove", "acme/tiny"]).success();
    let text = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(!text.contains("acme/tiny"), "{text}");
}
