//! Interop with the reference client, huggingface_hub 2.4.0 (Python): it reads what facehugger
//! wrote, and facehugger reuses what it wrote. Needs `scripts/setup-python`; CI sets
//! FACEHUGGER_REQUIRE_PYTHON=1 so these cannot be skipped there.

use std::path::Path;
use std::process::Command;

use crate::support::{Env, Options, Origin, python, tree};

/// Runs the reference client (`python -c` or the `hf` CLI beside it) against the env's hub/cache;
/// returns its stdout once it succeeded.
pub fn reference(env: &Env, python: &Path, program: &str, args: &[&str], offline: bool) -> String {
    let mut cmd = reference_cmd(env, python, program, args);
    if offline {
        cmd.env("HF_HUB_OFFLINE", "1");
    }
    let output = cmd.output().expect("the reference client runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{} {args:?} failed\nstdout:\n{stdout}\nstderr:\n{}",
        cmd.get_program().display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The reference client's command (`python` or a CLI beside it, such as `hf`) with Xet off, set
/// up for the env's hub and cache.
pub fn reference_cmd(env: &Env, python: &Path, program: &str, args: &[&str]) -> Command {
    let program = if program == "python" {
        python.to_path_buf()
    } else {
        python.with_file_name(program)
    };
    let mut cmd = Command::new(&program);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", env.dir.path())
        .env("HF_HOME", env.home())
        .env("HF_HUB_CACHE", env.cache())
        .env("HF_ENDPOINT", env.hub.endpoint())
        .env("HF_HUB_DISABLE_XET", "1")
        .env("HF_HUB_DISABLE_UPDATE_CHECK", "1")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("NO_COLOR", "1");
    cmd
}

const LOAD: &str = r#"
import json, sys
from huggingface_hub import hf_hub_download, snapshot_download
out = {}
for repo, kind, rev in [("acme/tiny", "model", None), ("acme/tiny", "model", "v1.0"),
                        ("acme/tiny", "model", "refs/pr/1"), ("acme/data", "dataset", None)]:
    path = snapshot_download(repo, repo_type=kind, revision=rev)
    key = f"{kind}:{repo}@{rev}"
    out[key] = path
    name = "config.json" if kind == "model" else "data/test.csv"
    with open(hf_hub_download(repo, name, repo_type=kind, revision=rev)) as f:
        out[key + ":" + name] = f.read()
print(json.dumps(out))
"#;

#[test]
fn the_reference_client_loads_offline_what_facehugger_downloaded() {
    let Some(python) = python() else { return };
    let env = Env::new();
    env.manifest(
        "models:\n  - repo: acme/tiny\n  - repo: acme/tiny\n    ref: v1.0\n  - repo: acme/tiny\n    ref: refs/pr/1\n  - repo: acme/data\n    repo_type: dataset\n",
    );
    env.run(&[]).success();
    let out = reference(&env, &python, "python", &["-c", LOAD], true);
    let loaded: serde_json::Value = serde_json::from_str(&out).unwrap();
    let main = env.commit("model", "acme/tiny", "main");
    let first = env.commit("model", "acme/tiny", "v1.0");
    let tiny = env
        .cache()
        .canonicalize()
        .unwrap()
        .join("models--acme--tiny");
    assert_eq!(
        loaded["model:acme/tiny@None"],
        tiny.join(format!("snapshots/{main}")).to_str().unwrap()
    );
    assert_eq!(
        loaded["model:acme/tiny@v1.0"],
        tiny.join(format!("snapshots/{first}")).to_str().unwrap()
    );
    assert_eq!(
        loaded["model:acme/tiny@None:config.json"],
        "{\"hidden_size\": 16}\n"
    );
    assert_eq!(
        loaded["model:acme/tiny@v1.0:config.json"],
        "{\"hidden_size\": 8}\n"
    );
    assert_eq!(
        loaded["model:acme/tiny@refs/pr/1:config.json"],
        "{\"hidden_size\": 16}\n"
    );
    assert_eq!(
        loaded["dataset:acme/data@None:data/test.csv"],
        "x,y\n1,2\n3,4\n"
    );

    // `hf cache verify` re-hashes every cached file against the hub's checksums.
    let verified = reference(
        &env,
        &python,
        "hf",
        &[
            "cache",
            "verify",
            "acme/tiny",
            "--fail-on-missing-files",
            "--format",
            "json",
        ],
        false,
    );
    assert!(
        verified.contains("\"mismatches\": []") || !verified.contains("mismatch"),
        "{verified}"
    );

    // `hf cache ls` sees every revision with its refs, and reports no inconsistency.
    let listing = reference(
        &env,
        &python,
        "hf",
        &["cache", "ls", "--revisions", "--format", "json"],
        true,
    );
    let entries: serde_json::Value = serde_json::from_str(&listing).unwrap();
    let refs: Vec<String> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["repo_id"].as_str().unwrap(),
                e["revision"].as_str().unwrap(),
                e["refs"]
            )
        })
        .collect();
    assert!(
        refs.contains(&format!("acme/tiny {main} [\"main\",\"refs/pr/1\"]")),
        "{refs:?}"
    );
    assert!(
        refs.contains(&format!("acme/tiny {first} [\"v1.0\"]")),
        "{refs:?}"
    );

    // And that listing is a lock file facehugger accepts with --frozen.
    std::fs::write(env.project().join("facehugger.lock"), &listing).unwrap();
    env.hub.clear_requests();
    env.run(&["--frozen"]).success();
    assert!(
        env.requests().is_empty(),
        "everything was cached: {:?}",
        env.requests()
    );
}

#[test]
fn facehugger_reuses_what_hf_download_put_in_the_cache() {
    let Some(python) = python() else { return };
    let env = Env::new();
    reference(&env, &python, "hf", &["download", "acme/tiny"], false);
    reference(
        &env,
        &python,
        "hf",
        &[
            "download",
            "acme/data",
            "--repo-type",
            "dataset",
            "--include",
            "data/*",
        ],
        false,
    );
    let before = tree(&env.cache());

    env.manifest("models:\n  - repo: acme/tiny\n  - repo: acme/data\n    repo_type: dataset\n    include: data/*\n");
    env.hub.clear_requests();
    let run = env.run(&[]).success();
    let urls: Vec<String> = env.requests().iter().map(|r| r.url.clone()).collect();
    assert_eq!(urls.len(), 2, "only the two revision requests: {urls:?}");
    assert!(
        run.stderr.contains("Fresh acme/tiny@main"),
        "{}",
        run.stderr
    );
    assert!(env.requests().iter().all(|r| r.origin == Origin::Hub));
    // facehugger added nothing to the cache but its own lock file, beside the manifest.
    assert_eq!(tree(&env.cache()), before);
}

#[test]
fn both_clients_write_the_same_bytes() {
    let Some(python) = python() else { return };
    // On a hub like the Hub before Xet, and on today's (tree listings with `xetHash`).
    for xet in [false, true] {
        let options = Options {
            xet,
            ..Options::default()
        };
        let theirs = Env::with_options(options.clone());
        reference(
            &theirs,
            &python,
            "hf",
            &["download", "acme/tiny", "--revision", "refs/pr/1"],
            false,
        );
        let ours = Env::with_options(options);
        ours.manifest("models:\n  - repo: acme/tiny\n    ref: refs/pr/1\n");
        ours.run(&[]).success();
        // Same files, same links, same refs, same tree cache, byte for byte.
        let skip_locks = |files: Vec<String>| -> Vec<String> {
            files
                .into_iter()
                .filter(|f| !f.starts_with(".locks"))
                .collect()
        };
        assert_eq!(
            skip_locks(tree(&ours.cache())),
            skip_locks(tree(&theirs.cache()))
        );
        let mut compared_a_xet_hash = false;
        for file in tree(&theirs.cache()) {
            if file.contains(" -> ") || file.starts_with(".locks") {
                continue;
            }
            let a = std::fs::read(theirs.cache().join(&file)).unwrap();
            let b = std::fs::read(ours.cache().join(&file)).unwrap();
            assert!(
                a == b,
                "{file} differs:\n{}\n---\n{}",
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b)
            );
            compared_a_xet_hash |= String::from_utf8_lossy(&a).contains("\"xet_hash\"");
        }
        assert_eq!(compared_a_xet_hash, xet);
    }
}

#[test]
fn verify_accepts_what_the_reference_client_writes_without_links() {
    let Some(python) = python() else { return };
    let env = Env::new();
    // As on Windows without developer mode: the files themselves in the snapshot, no blobs.
    let output = reference_cmd(
        &env,
        &python,
        "hf",
        &[
            "download",
            "acme/tiny",
            "--include",
            "*.json",
            "--include",
            "sub/*",
        ],
    )
    .env("HF_HUB_DISABLE_SYMLINKS", "1")
    .env("HF_HUB_DISABLE_SYMLINKS_WARNING", "1")
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let main = env.commit("model", "acme/tiny", "main");
    let snapshot = env
        .repo_dir("models--acme--tiny")
        .join(format!("snapshots/{main}"));
    let config = snapshot.join("config.json");
    assert!(std::fs::symlink_metadata(&config).unwrap().is_file());

    env.manifest("models:\n  - repo: acme/tiny\n    include: [\"*.json\", \"sub/*\"]\n");
    let run = env.run(&["verify", "--format", "json"]).success();
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["models"][0]["files_hashed"], 5, "{json}");
    // A sync finds nothing to do in that layout.
    let run = env.run(&[]).success();
    assert!(
        run.stderr.contains("Fresh acme/tiny@main (5 files)"),
        "{}",
        run.stderr
    );

    // Damaged content is found where it is, and repaired.
    std::fs::write(&config, "{}\n").unwrap();
    let run = env.run(&["verify"]).failure(1);
    assert!(
        run.stdout
            .contains("acme/tiny@main: config.json: corrupt: expected "),
        "{}",
        run.stdout
    );
    env.run(&["verify", "--repair"]).success();
}
