//! The lock file: `lock`, `lock --check`, `--locked`, `--frozen`, `--offline`, and locks written
//! by `hf cache ls`.

use crate::support::Env;

const MANIFEST: &str = "models:\n  - repo: acme/tiny\n    include: config.json\n";

#[test]
fn lock_resolves_and_writes_only_the_lock() {
    let env = Env::new();
    env.manifest(MANIFEST);
    let run = env.run(&["lock"]).success();
    assert!(run.stderr.contains("Locked"), "{}", run.stderr);
    let main = env.commit("model", "acme/tiny", "main");
    assert!(env.lock_text().unwrap().contains(&main));
    assert!(
        !env.cache().join("models--acme--tiny").exists(),
        "lock downloads nothing"
    );
    assert_eq!(env.count("/acme/tiny/resolve/"), 0);

    // Up to date: --check passes and nothing is rewritten.
    env.run(&["lock", "--check"]).success();
    let run = env.run(&["lock"]).success();
    assert!(run.stderr.contains("is up to date"), "{}", run.stderr);
}

#[test]
fn lock_check_and_locked_fail_when_the_lock_would_change() {
    let env = Env::new();
    env.manifest(MANIFEST);
    let run = env.run(&["lock", "--check"]).failure(1);
    assert!(
        run.stderr.contains("facehugger.lock` is missing"),
        "{}",
        run.stderr
    );
    let run = env.run(&["sync", "--locked"]).failure(1);
    assert!(run.stderr.contains("is missing"), "{}", run.stderr);
    assert!(
        !env.cache().join("models--acme--tiny/snapshots").exists(),
        "--locked downloads nothing"
    );

    env.run(&["lock"]).success();
    // The manifest moves to another ref: the lock is now out of date.
    env.manifest("models:\n  - repo: acme/tiny\n    ref: v1.0\n    include: config.json\n");
    let before = env.lock_text().unwrap();
    let run = env.run(&["lock", "--check"]).failure(1);
    assert!(run.stderr.contains("needs to be updated"), "{}", run.stderr);
    env.run(&["--locked"]).failure(1);
    assert_eq!(
        env.lock_text().unwrap(),
        before,
        "a failed check writes nothing"
    );
    env.run(&["lock"]).success();
    env.run(&["--locked"]).success();
}

#[test]
fn frozen_syncs_the_locked_revision_even_when_the_branch_moved() {
    let env = Env::new();
    env.manifest(MANIFEST);
    let first = env.commit("model", "acme/tiny", "v1.0");
    // A lock pinning main to the older commit, as if main had moved since.
    let lock = format!(
        "[{{\"repo_id\": \"acme/tiny\", \"repo_type\": \"model\", \"revision\": \"{first}\", \"refs\": [\"main\"]}}]"
    );
    std::fs::write(env.project().join("facehugger.lock"), &lock).unwrap();
    env.run(&["--frozen"]).success();
    assert_eq!(
        env.count("/api/models/acme/tiny/revision/"),
        0,
        "no resolution"
    );
    let snapshot = env
        .repo_dir("models--acme--tiny")
        .join(format!("snapshots/{first}/config.json"));
    assert_eq!(
        std::fs::read_to_string(snapshot).unwrap(),
        "{\"hidden_size\": 8}\n"
    );
    assert_eq!(env.lock_text().unwrap(), lock, "the lock is untouched");
}

#[test]
fn frozen_names_the_models_missing_from_the_lock() {
    let env = Env::new();
    env.manifest(
        "models:\n  - repo: acme/tiny\n  - repo: acme/data\n    repo_type: dataset\n    ref: v2\n",
    );
    std::fs::write(env.project().join("facehugger.lock"), "[]\n").unwrap();
    let run = env.run(&["--frozen"]).failure(1);
    assert!(
        run.stderr.contains(
            "facehugger.lock` has no entry for acme/tiny@main, dataset acme/data@v2; run `facehugger lock` to add them"
        ),
        "{}",
        run.stderr
    );
    std::fs::remove_file(env.project().join("facehugger.lock")).unwrap();
    let run = env.run(&["--frozen"]).failure(1);
    assert!(run.stderr.contains("is missing"), "{}", run.stderr);
    assert!(env.requests().is_empty());
}

#[test]
fn a_lock_from_hf_cache_ls_works_with_frozen() {
    let env = Env::new();
    let main = env.commit("model", "acme/tiny", "main");
    let first = env.commit("model", "acme/tiny", "v1.0");
    let data = env.commit("dataset", "acme/data", "main");
    env.manifest("models:\n  - repo: acme/tiny\n    ref: v1.0\n    include: config.json\n  - repo: acme/data\n    repo_type: dataset\n    include: README.md\n");
    // Verbatim shape of `hf cache ls --revisions --format json`: extra keys of every type, other
    // repos, two revisions of one repo, and `#` lines as in the seed's example.
    let lock = format!(
        r#"[{{"id": "dataset/acme/data", "repo_id": "acme/data", "repo_type": "dataset", "revision": "{data}", "snapshot_path": "/x", "size": "4.0", "last_modified": "3 years ago", "refs": ["main"]}},
 {{"id": "model/Org/Other", "repo_id": "Org/Other", "repo_type": "model", "revision": "{main}", "refs": ["main"]}},
 {{"id": "model/acme/tiny", "repo_id": "acme/tiny", "repo_type": "model", "revision": "{main}", "refs": ["main"], "size_on_disk": 57704594653, "nested": {{"a": [1, null]}}}},
 {{
    "repo_id": "acme/tiny",
    "repo_type": "model",
    "revision": "{first}",
    #"snapshot_path": "/var/home/someone/.cache/huggingface/hub/models--acme--tiny/snapshots/{first}",
    #"last_accessed": 1768666473.4315884,
    "refs": [
      "v1.0"
    ]
 }}]"#
    );
    std::fs::write(env.project().join("facehugger.lock"), &lock).unwrap();
    env.run(&["--frozen"]).success();
    let tiny = env.repo_dir("models--acme--tiny");
    assert_eq!(
        std::fs::read_to_string(tiny.join(format!("snapshots/{first}/config.json"))).unwrap(),
        "{\"hidden_size\": 8}\n"
    );
    assert!(!tiny.join(format!("snapshots/{main}")).exists());
    assert!(
        env.repo_dir("datasets--acme--data")
            .join(format!("snapshots/{data}/README.md"))
            .exists()
    );
    assert_eq!(env.lock_text().unwrap(), lock);
}

#[test]
fn offline_uses_only_the_cache_and_lists_what_is_missing() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: config.json\n");
    let run = env.run(&["--offline"]).failure(1);
    assert!(run.stderr.contains("acme/tiny@main"), "{}", run.stderr);
    assert!(run.stderr.contains("refs/main"), "{}", run.stderr);

    env.run(&[]).success();
    env.manifest(
        "models:\n  - repo: acme/tiny\n    include: [config.json, README.md, \"*.onnx\"]\n",
    );
    let run = env.cmd(&[]).env("HF_HUB_OFFLINE", "1").output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("offline and the cache is missing 2 files"),
        "{stderr}"
    );
    assert!(
        stderr.contains("acme/tiny@main: README.md")
            && stderr.contains("acme/tiny@main: onnx/model.onnx"),
        "{stderr}"
    );

    env.hub.clear_requests();
    env.manifest("models:\n  - repo: acme/tiny\n    include: config.json\n");
    env.run(&["--offline"]).success();
    assert!(env.requests().is_empty(), "offline makes no request");
}
