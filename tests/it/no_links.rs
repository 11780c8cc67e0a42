//! The cache without symbolic links, as the reference client writes it where it cannot make them
//! (Windows without Developer Mode) or is told not to (`HF_HUB_DISABLE_SYMLINKS=1`, which is how
//! these tests get it on any system): snapshots hold the files themselves, a downloaded blob is
//! moved into its snapshot (so `blobs/` stays empty of it), one already in `blobs/` is copied.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::gc::{age, listed_cleanly, verified};
use crate::interop::{reference, reference_cmd};
use crate::support::{Env, Run, python, tree};

const BOTH_REVISIONS: &str = "models:\n  - repo: acme/tiny\n  - repo: acme/tiny\n    ref: v1.0\n";

/// `facehugger ARGS` with links turned off.
fn without_links(env: &Env, args: &[&str]) -> Run {
    let mut cmd = env.cmd(args);
    cmd.env("HF_HUB_DISABLE_SYMLINKS", "1");
    Run::from(cmd.output().unwrap())
}

/// `hf ARGS` with links turned off (and their warning).
fn hf_without_links(env: &Env, python: &Path, args: &[&str], offline: bool) -> String {
    let mut cmd = reference_cmd(env, python, "hf", args);
    cmd.env("HF_HUB_DISABLE_SYMLINKS", "1")
        .env("HF_HUB_DISABLE_SYMLINKS_WARNING", "1");
    if offline {
        cmd.env("HF_HUB_OFFLINE", "1");
    }
    let output = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "hf {args:?}\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn snapshot(env: &Env, rev: &str) -> PathBuf {
    let commit = env.commit("model", "acme/tiny", rev);
    env.repo_dir("models--acme--tiny")
        .join("snapshots")
        .join(commit)
}

/// The names in the repo's `blobs/` (none if it is not there).
fn blobs(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(env.repo_dir("models--acme--tiny").join("blobs"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every file of both caches (but the lock files, named alike but created as each client needs
/// them) is there in both, of the same kind, with the same bytes or link text.
fn assert_same_caches(ours: &Env, theirs: &Env) {
    let files = |env: &Env| -> Vec<String> {
        tree(&env.cache())
            .into_iter()
            .filter(|f| !f.starts_with(".locks"))
            .collect()
    };
    assert_eq!(files(ours), files(theirs));
    for file in files(theirs) {
        if file.contains(" -> ") {
            continue;
        }
        let (a, b) = (
            fs::read(theirs.cache().join(&file)).unwrap(),
            fs::read(ours.cache().join(&file)).unwrap(),
        );
        assert!(a == b, "{file} differs");
    }
}

#[test]
fn without_links_both_clients_write_the_same_cache_and_read_each_others() {
    let Some(python) = python() else { return };
    // Two revisions that share most files: each holds its own copy of them.
    let theirs = Env::new();
    for rev in ["v1.0", "main"] {
        hf_without_links(
            &theirs,
            &python,
            &["download", "acme/tiny", "--revision", rev],
            false,
        );
    }
    let ours = Env::new();
    ours.manifest(BOTH_REVISIONS);
    without_links(&ours, &[]).success();
    assert_same_caches(&ours, &theirs);
    // What that layout is: no link anywhere, blobs/ empty, the files in the snapshots.
    assert!(tree(&ours.cache()).iter().all(|f| !f.contains(" -> ")));
    assert_eq!(blobs(&ours), Vec::<String>::new());
    assert_eq!(
        fs::read_to_string(snapshot(&ours, "v1.0").join("config.json")).unwrap(),
        "{\"hidden_size\": 8}\n"
    );

    // The reference client reads facehugger's cache: offline downloads find every file, the
    // listing has both revisions and no warning, and every file hashes right.
    for rev in ["v1.0", "main"] {
        let path = hf_without_links(
            &ours,
            &python,
            &["download", "acme/tiny", "--revision", rev, "--quiet"],
            true,
        );
        assert_eq!(
            Path::new(path.trim()),
            snapshot(&ours, rev).canonicalize().unwrap()
        );
        verified(&ours, &python, "acme/tiny", rev, true);
    }
    let listing = listed_cleanly(&ours, &python);
    assert_eq!(listing.as_array().unwrap().len(), 2, "{listing}");

    // facehugger reads the reference client's: that listing is a lock; the files are all there
    // (no request at all), and verify hashes every one of them.
    let listing = reference(
        &theirs,
        &python,
        "hf",
        &["cache", "ls", "--revisions", "--format", "json"],
        true,
    );
    theirs.manifest(BOTH_REVISIONS);
    fs::write(theirs.project().join("facehugger.lock"), listing).unwrap();
    theirs.hub.clear_requests();
    let run = without_links(&theirs, &["--frozen"]).success();
    assert!(theirs.requests().is_empty(), "{:?}", theirs.requests());
    assert!(
        run.stderr.contains("Fresh acme/tiny@v1.0"),
        "{}",
        run.stderr
    );
    let run = without_links(&theirs, &["verify", "--format", "json"]).success();
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["ok"], true, "{json}");
    assert_eq!(json["models"][0]["files_hashed"], 11, "{json}");
    assert_eq!(json["models"][1]["files_hashed"], 10, "{json}");
}

#[test]
fn without_links_a_blob_already_cached_is_copied_and_a_new_one_moved() {
    let Some(python) = python() else { return };
    // v1.0 with links (its blobs in blobs/), then main without: main's files that v1.0 shares
    // are copies of those blobs (which stay), its new files are moved in.
    let theirs = Env::new();
    reference(
        &theirs,
        &python,
        "hf",
        &["download", "acme/tiny", "--revision", "v1.0"],
        false,
    );
    hf_without_links(
        &theirs,
        &python,
        &["download", "acme/tiny", "--revision", "main"],
        false,
    );
    let ours = Env::new();
    ours.manifest("models:\n  - repo: acme/tiny\n    ref: v1.0\n");
    ours.run(&[]).success();
    let before = blobs(&ours);
    ours.manifest("models:\n  - repo: acme/tiny\n");
    ours.hub.clear_requests();
    let run = without_links(&ours, &[]).success();
    assert_same_caches(&ours, &theirs);
    assert_eq!(blobs(&ours), before);
    // Only the files v1.0 lacks were downloaded.
    assert!(
        run.stderr.contains("Finished 11 files in") && run.stderr.contains("2 downloaded"),
        "{}",
        run.stderr
    );
    let readme = snapshot(&ours, "main").join("README.md");
    assert!(fs::symlink_metadata(&readme).unwrap().is_file());
    verified(&ours, &python, "acme/tiny", "main", true);
    listed_cleanly(&ours, &python);
}

#[test]
fn a_cache_without_links_is_synced_checked_exported_and_cleaned_up() {
    let env = Env::new();
    env.manifest(BOTH_REVISIONS);
    without_links(&env, &[]).success();
    assert_eq!(blobs(&env), Vec::<String>::new());
    // Nothing to do the second time, without a request with --frozen.
    env.hub.clear_requests();
    let run = without_links(&env, &["--frozen"]).success();
    assert!(env.requests().is_empty(), "{:?}", env.requests());
    assert!(
        run.stderr.contains("Fresh acme/tiny@main (11 files)"),
        "{}",
        run.stderr
    );

    let status: Value = serde_json::from_str(
        &without_links(&env, &["status", "--format", "json"])
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(status[0]["missing"], 0, "{status}");
    assert_eq!(status[1]["missing"], 0, "{status}");

    // verify hashes the files where they are; a change of the same size is found and repaired
    // in the same layout.
    let config = snapshot(&env, "main").join("config.json");
    fs::write(&config, "{\"hidden_size\": 61}\n").unwrap();
    let run = without_links(&env, &["verify", "--format", "json"]).failure(1);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["problems"][0]["problem"], "corrupt", "{json}");
    assert_eq!(
        json["problems"][0]["blob"],
        config.to_str().unwrap(),
        "{json}"
    );
    without_links(&env, &["verify", "--repair"]).success();
    assert_eq!(
        fs::read_to_string(&config).unwrap(),
        "{\"hidden_size\": 16}\n"
    );
    assert!(fs::symlink_metadata(&config).unwrap().is_file());
    assert_eq!(blobs(&env), Vec::<String>::new());

    // A sync trusts a file of the listed size, as the reference client trusts any file there,
    // and replaces one of another size (a copy cut short).
    fs::write(&config, "{}").unwrap();
    let run = without_links(&env, &["--frozen"]).success();
    assert!(run.stderr.contains("1 downloaded"), "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(&config).unwrap(),
        "{\"hidden_size\": 16}\n"
    );

    // gc: v1.0 is no longer locked and unused for long; its files go with its snapshot, and
    // what that frees is counted.
    env.manifest("models:\n  - repo: acme/tiny\n");
    without_links(&env, &["lock"]).success();
    let old = snapshot(&env, "v1.0");
    let size = dir_bytes(&old);
    age(&old, 60);
    let plan: Value = serde_json::from_str(
        &without_links(&env, &["gc", "--dry-run", "--format", "json"])
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(plan["removed"].as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(plan["freed_bytes"], size, "{plan}");
    let done: Value = serde_json::from_str(
        &without_links(&env, &["gc", "--format", "json"])
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(done["freed_bytes"], size, "{done}");
    assert!(!old.exists());
    assert!(snapshot(&env, "main").join("config.json").is_file());

    // export copies the files from the snapshots.
    let out = env.dir.path().join("out");
    without_links(&env, &["export", "--link", "copy", out.to_str().unwrap()]).success();
    assert_eq!(
        fs::read_to_string(out.join("acme--tiny/config.json")).unwrap(),
        "{\"hidden_size\": 16}\n"
    );
}

/// The bytes of the regular files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                dir_bytes(&entry.path())
            } else if kind.is_file() {
                entry.metadata().unwrap().len()
            } else {
                0
            }
        })
        .sum()
}
