//! `facehugger gc`: it keeps what the locks of the projects it synced pin, removes the other
//! revisions nobody used lately, never breaks a client using the cache at the same moment, and
//! leaves a cache that the reference client lists without a warning and verifies.

use std::collections::HashSet;
use std::fs::{self, File, FileTimes};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::interop::{reference, reference_cmd};
use crate::support::{Env, Options, Run, python, tree};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Makes everything in `root` look last used `days` ago: the access time of every file, the
/// modification time of every folder (a snapshot that gains files counts as used).
pub fn age(root: &Path, days: u64) {
    let then = SystemTime::now() - DAY * days as u32;
    for entry in walk(root) {
        let meta = fs::symlink_metadata(&entry).unwrap();
        if meta.is_file() {
            let file = File::open(&entry).unwrap();
            file.set_times(FileTimes::new().set_accessed(then)).unwrap();
        } else if meta.is_dir() {
            File::open(&entry).unwrap().set_modified(then).unwrap();
        }
    }
}

/// Every path under `root` (not following links), `root` included.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut found = vec![root.to_owned()];
    if fs::symlink_metadata(root).is_ok_and(|meta| meta.is_dir()) {
        for entry in fs::read_dir(root).unwrap().flatten() {
            found.extend(walk(&entry.path()));
        }
    }
    found
}

/// A second project beside the env's, with its own manifest; returns its manifest path.
fn other_project(env: &Env, name: &str, yaml: &str) -> PathBuf {
    let dir = env.dir.path().join(name);
    fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("facehugger.yaml");
    fs::write(&manifest, yaml).unwrap();
    manifest
}

fn gc_json(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["gc", "--format", "json"];
    all.extend(args);
    let run = env.run(&all).success();
    serde_json::from_str(&run.stdout).unwrap()
}

fn commits(removed: &Value) -> HashSet<String> {
    removed
        .as_array()
        .unwrap()
        .iter()
        .map(|revision| revision["revision"].as_str().unwrap().to_owned())
        .collect()
}

/// `hf cache ls --revisions` lists the cache without any warning; returns its JSON.
pub fn listed_cleanly(env: &Env, python: &Path) -> Value {
    let output = reference_cmd(
        env,
        python,
        "hf",
        &[
            "cache",
            "ls",
            "--revisions",
            "--format",
            "json",
            "--show-warnings",
        ],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("arning") && !stderr.contains("nconsisten"),
        "hf cache ls warns:\n{stderr}"
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `hf cache verify` re-hashes one cached revision against the hub's checksums; with
/// `complete`, every file of the revision must be there.
pub fn verified(env: &Env, python: &Path, repo: &str, revision: &str, complete: bool) {
    let mut args = vec!["cache", "verify", repo, "--revision", revision];
    if complete {
        args.push("--fail-on-missing-files");
    }
    reference(env, python, "hf", &args, false);
}

#[test]
fn gc_keeps_what_locks_pin_and_removes_the_rest_unused_for_a_month() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n");
    env.run(&[]).success();
    let gone = other_project(
        &env,
        "gone",
        "models:\n  - repo: acme/tiny\n    ref: v1.0\n  - repo: acme/data\n    repo_type: dataset\n",
    );
    env.run(&["sync", gone.to_str().unwrap()]).success();
    let main = env.commit("model", "acme/tiny", "main");
    let first = env.commit("model", "acme/tiny", "v1.0");
    let data = env.commit("dataset", "acme/data", "main");

    // Used within the month: everything stays, even what no lock pins any more.
    fs::remove_dir_all(gone.parent().unwrap()).unwrap();
    let kept = gc_json(&env, &["--dry-run"]);
    assert_eq!(kept["removed"], Value::Array(vec![]), "{kept:#}");
    assert_eq!(kept["kept_recent"], 2);
    assert_eq!(kept["kept_pinned"], 1);
    assert_eq!(kept["forgotten"].as_array().unwrap().len(), 1);

    // Two months later, a dry run says what would go and changes nothing.
    age(&env.cache(), 60);
    let before = tree(&env.cache());
    let planned = gc_json(&env, &["--dry-run"]);
    assert_eq!(tree(&env.cache()), before);
    assert_eq!(planned["dry_run"], true);
    assert_eq!(
        commits(&planned["removed"]),
        HashSet::from([first.clone(), data.clone()])
    );
    // v1.0 alone has the old config.json; every blob of the dataset goes.
    let hub = env.hub.hub();
    let old_config = hub
        .repo("model", "acme/tiny")
        .unwrap()
        .commit(&first)
        .unwrap()
        .files
        .iter()
        .find(|file| file.path == "config.json")
        .unwrap();
    let dataset_files = &hub
        .repo("dataset", "acme/data")
        .unwrap()
        .commit(&data)
        .unwrap()
        .files;
    let dataset_bytes: u64 = dataset_files.iter().map(|file| file.size).sum();
    assert_eq!(planned["freed_bytes"], old_config.size + dataset_bytes);
    let removed = planned["removed"].as_array().unwrap();
    let v1 = removed
        .iter()
        .find(|r| r["revision"] == first.as_str())
        .unwrap();
    assert_eq!(v1["repo_id"], "acme/tiny");
    assert_eq!(v1["refs"], serde_json::json!(["v1.0"]));
    let two_months = (SystemTime::now() - DAY * 60)
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        v1["last_used"].as_u64().unwrap().abs_diff(two_months) < 60,
        "{v1}"
    );

    // The real run prints each revision and the total.
    let run = env.run(&["gc"]).success();
    assert!(
        run.stdout.contains(&format!(
            "removed acme/tiny {first} v1.0, last used 2 months ago, "
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "removed dataset acme/data {data} main, last used 2 months ago"
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Total: 2 revisions removed, "),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("Forgot"), "{}", run.stderr);

    // What v1.0 alone used is gone; main, which the lock pins, is whole.
    let tiny = env.repo_dir("models--acme--tiny");
    assert!(!tiny.join(format!("snapshots/{first}")).exists());
    assert!(!tiny.join("refs/v1.0").exists());
    assert!(!tiny.join(format!("trees/{first}.json")).exists());
    assert!(!tiny.join("blobs").join(old_config.etag()).exists());
    let locks = env.cache().join(".locks/models--acme--tiny");
    assert!(!locks.join(format!("{}.lock", old_config.etag())).exists());
    let commit = hub
        .repo("model", "acme/tiny")
        .unwrap()
        .commit(&main)
        .unwrap();
    for file in &commit.files {
        let path = tiny.join(format!("snapshots/{main}")).join(&file.path);
        assert_eq!(
            fs::read(&path).unwrap(),
            file.content().unwrap(),
            "{}",
            file.path
        );
    }
    // The dataset's folder and its locks are gone; no trash is left behind.
    assert!(!env.repo_dir("datasets--acme--data").exists());
    assert!(!env.cache().join(".locks/datasets--acme--data").exists());
    assert!(
        !tree(&env.cache())
            .iter()
            .any(|path| path.contains(".facehugger-gc")),
        "{:#?}",
        tree(&env.cache())
    );

    // The project whose lock is gone is forgotten; nothing more to do.
    let again = gc_json(&env, &[]);
    assert_eq!(again["forgotten"], Value::Array(vec![]));
    assert_eq!(again["projects"].as_array().unwrap().len(), 1);
    assert_eq!(again["removed"], Value::Array(vec![]));
    assert_eq!(again["freed_bytes"], 0);

    if let Some(python) = python() {
        let listed = listed_cleanly(&env, &python);
        assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
        verified(&env, &python, "acme/tiny", &main, true);
    }
}

#[test]
fn older_than_0_removes_every_revision_no_lock_pins() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: \"*.json\"\n");
    env.run(&[]).success();
    // A project synced v1.0 (every file), then went away: its revision is fresh but unpinned.
    let other = other_project(
        &env,
        "other",
        "models:\n  - repo: acme/tiny\n    ref: v1.0\n",
    );
    env.run(&["sync", other.to_str().unwrap()]).success();
    fs::remove_file(other.with_file_name("facehugger.lock")).unwrap();
    let first = env.commit("model", "acme/tiny", "v1.0");
    let main = env.commit("model", "acme/tiny", "main");
    // Partial downloads: one abandoned two days ago (with its lock file), one under way.
    let tiny = env.repo_dir("models--acme--tiny");
    let (old_etag, new_etag) = ("a".repeat(64), "b".repeat(64));
    let old_partial = tiny.join(format!("blobs/{old_etag}.0123abcd.incomplete"));
    let new_partial = tiny.join(format!("blobs/{new_etag}.0123abcd.incomplete"));
    fs::write(&old_partial, "half").unwrap();
    fs::write(&new_partial, "half").unwrap();
    File::options()
        .write(true)
        .open(&old_partial)
        .unwrap()
        .set_modified(SystemTime::now() - 2 * DAY)
        .unwrap();
    let locks = env.cache().join(".locks/models--acme--tiny");
    fs::write(locks.join(format!("{old_etag}.lock")), "").unwrap();
    fs::write(locks.join(format!("{new_etag}.lock")), "").unwrap();

    let kept = gc_json(&env, &["--older-than", "12h"]);
    assert_eq!(kept["removed"], Value::Array(vec![]));
    assert_eq!(kept["older_than_seconds"], 12 * 3600);
    let removed = gc_json(&env, &["--older-than", "0"]);
    assert_eq!(commits(&removed["removed"]), HashSet::from([first.clone()]));
    assert_eq!(removed["older_than_seconds"], 0);
    assert_eq!(removed["partial_downloads_removed"], 1, "{removed:#}");
    assert!(!old_partial.exists() && !locks.join(format!("{old_etag}.lock")).exists());
    assert!(new_partial.exists() && locks.join(format!("{new_etag}.lock")).exists());
    fs::remove_file(&new_partial).unwrap();
    assert!(!tiny.join(format!("snapshots/{first}")).exists());
    // What main links to stays, though v1.0 used it too; what only v1.0 used goes.
    let tokenizer = tiny.join(format!("snapshots/{main}/tokenizer.json"));
    assert_eq!(
        fs::read_to_string(tokenizer).unwrap(),
        "{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\"}}\n"
    );
    let weights = env
        .hub
        .repo("model", "acme/tiny")
        .unwrap()
        .commit(&first)
        .unwrap()
        .file("model.safetensors")
        .unwrap();
    assert!(!tiny.join("blobs").join(weights.etag()).exists());
    if let Some(python) = python() {
        listed_cleanly(&env, &python);
        verified(&env, &python, "acme/tiny", &main, false);
    }
}

#[test]
fn durations_that_do_not_parse_are_usage_errors() {
    let env = Env::new();
    fs::create_dir_all(env.cache()).unwrap();
    for bad in ["30", "1.5d", "soon", "-1d"] {
        let run = env.run(&["gc", &format!("--older-than={bad}")]).failure(2);
        assert!(run.stderr.contains("is not a duration"), "{}", run.stderr);
    }
    let run = env.run(&["gc"]).success();
    assert!(
        run.stdout.contains("Total: 0 revisions removed, 0 B freed"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_missing_cache_is_an_error_naming_it() {
    let env = Env::new();
    let run = env.run(&["gc", "--dry-run"]).failure(1);
    assert!(
        run.stderr.contains("cache directory not found")
            && run.stderr.contains(env.cache().to_str().unwrap()),
        "{}",
        run.stderr
    );
}

#[test]
fn a_blob_linked_while_gc_removes_it_is_put_back() {
    let Some(python) = python() else { return };
    let env = Env::new();
    // An old revision that no lock pins: gc plans to remove it with every blob.
    reference(
        &env,
        &python,
        "hf",
        &["download", "acme/tiny", "--revision", "v1.0"],
        false,
    );
    age(&env.cache(), 60);
    let first = env.commit("model", "acme/tiny", "v1.0");
    let main = env.commit("model", "acme/tiny", "main");
    let hold = env.dir.path().join("gc-planned");
    let gc = env
        .std_cmd(&["gc", "--format", "json"])
        .env("FACEHUGGER_GC_HOLD", &hold)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let waited = SystemTime::now();
    while !hold.exists() {
        assert!(
            waited.elapsed().unwrap() < Duration::from_secs(60),
            "gc never planned"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Between gc's plan and its removal, hf downloads main: it links the blobs that v1.0 has,
    // as a download does when it finds a blob a moment before gc takes it away.
    reference(&env, &python, "hf", &["download", "acme/tiny"], false);
    fs::remove_file(&hold).unwrap();
    let gc = Run::from(gc.wait_with_output().unwrap()).success();
    let report: Value = serde_json::from_str(&gc.stdout).unwrap();
    assert_eq!(commits(&report["removed"]), HashSet::from([first.clone()]));
    let shared_with_main = 9;
    assert_eq!(report["blobs_put_back"], shared_with_main, "{report:#}");

    // Main is whole and right; only the blob v1.0 alone used is gone.
    let tiny = env.repo_dir("models--acme--tiny");
    let commit = env
        .hub
        .repo("model", "acme/tiny")
        .unwrap()
        .commit(&main)
        .unwrap();
    for file in &commit.files {
        let path = tiny.join(format!("snapshots/{main}")).join(&file.path);
        assert_eq!(
            fs::read(&path).unwrap(),
            file.content().unwrap(),
            "{}",
            file.path
        );
    }
    assert!(!tiny.join(format!("snapshots/{first}")).exists());
    listed_cleanly(&env, &python);
    verified(&env, &python, "acme/tiny", &main, true);
}

#[test]
fn a_hf_download_running_during_gc_is_never_broken() {
    let Some(python) = python() else { return };
    // Each request takes a while, so that the download is under way while gc runs.
    let env = Env::with_options(Options {
        latency: Duration::from_millis(40),
        ..Options::default()
    });
    // An old revision nobody pins shares most blobs with main, which hf downloads meanwhile.
    reference(
        &env,
        &python,
        "hf",
        &["download", "acme/tiny", "--revision", "v1.0"],
        false,
    );
    age(&env.cache(), 60);
    let main = env.commit("model", "acme/tiny", "main");
    let mut hf = reference_cmd(&env, &python, "hf", &["download", "acme/tiny"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // gc runs again and again for as long as the download does: the first takes v1.0 away
    // (unused for two months, its blobs the ones hf is linking into main's snapshot).
    let mut runs = 0;
    let mut removed = HashSet::new();
    while hf.try_wait().unwrap().is_none() {
        removed.extend(commits(&gc_json(&env, &[])["removed"]));
        runs += 1;
    }
    let first = env.commit("model", "acme/tiny", "v1.0");
    assert!(
        runs > 0 && removed.contains(&first),
        "gc ran {runs} times during the download, removing {removed:?}"
    );
    let hf = Run::from(hf.wait_with_output().unwrap());
    assert_eq!(
        hf.code, 0,
        "hf download failed after {runs} gc runs:\n{}",
        hf.stderr
    );
    let tiny = env.repo_dir("models--acme--tiny");
    let commit = env
        .hub
        .repo("model", "acme/tiny")
        .unwrap()
        .commit(&main)
        .unwrap();
    for file in &commit.files {
        let path = tiny.join(format!("snapshots/{main}")).join(&file.path);
        assert_eq!(
            fs::read(&path).unwrap(),
            file.content().unwrap(),
            "{}",
            file.path
        );
    }
    listed_cleanly(&env, &python);
    verified(&env, &python, "acme/tiny", &main, true);
}

/// Two repos holding the same weights, for the shared Xet store.
pub const TWINS: [(&str, &str); 2] = [
    (
        "one.toml",
        "id = \"acme/one\"\n[[commits]]\nname = \"first\"\nrefs = [\"main\"]\n[[commits.files]]\npath = \"config.json\"\ntext = \"{\\\"one\\\": 1}\\n\"\n[[commits.files]]\npath = \"weights.bin\"\nsize = 10000\nseed = 7\nlfs = true\n",
    ),
    (
        "two.toml",
        "id = \"acme/two\"\n[[commits]]\nname = \"first\"\nrefs = [\"main\"]\n[[commits.files]]\npath = \"config.json\"\ntext = \"{\\\"two\\\": 2}\\n\"\n[[commits.files]]\npath = \"weights.bin\"\nsize = 10000\nseed = 7\nlfs = true\n",
    ),
];

/// Moves every LFS blob of the cache into the shared store with huggingface_hub's own code, as
/// a Xet download does: the repo blobs become links, the payload's `.refs` lists them.
const PUBLISH: &str = r#"
import hashlib, sys
from pathlib import Path
from huggingface_hub.utils._shared_blobs import publish_blob_to_shared_store
cache = Path(sys.argv[1]).resolve()
for blob in sorted(cache.glob("models--*/blobs/*")):
    if len(blob.name) == 64 and not blob.is_symlink():
        data = blob.read_bytes()
        xet_hash = hashlib.sha256(b"xet:" + data).hexdigest()
        assert publish_blob_to_shared_store(blob_path=str(blob), xet_hash=xet_hash, cache_dir=str(cache), expected_size=len(data))
        print(xet_hash)
"#;

#[test]
fn a_shared_xet_payload_goes_with_its_last_reference() {
    let Some(python) = python() else { return };
    let fixtures = tempfile::tempdir().unwrap();
    for (name, spec) in TWINS {
        fs::write(fixtures.path().join(name), spec).unwrap();
    }
    let env = Env::with_options(Options {
        fixtures: fixtures.path().to_owned(),
        ..Options::default()
    });
    env.manifest("models:\n  - repo: acme/one\n");
    env.run(&[]).success();
    let two = other_project(&env, "two", "models:\n  - repo: acme/two\n");
    env.run(&["sync", two.to_str().unwrap()]).success();
    fs::remove_file(two.with_file_name("facehugger.lock")).unwrap();
    let cache = env.cache().canonicalize().unwrap();
    let out = reference(
        &env,
        &python,
        "python",
        &["-c", PUBLISH, cache.to_str().unwrap()],
        false,
    );
    let hashes: Vec<&str> = out.lines().collect();
    assert_eq!(hashes.len(), 2);
    assert_eq!(hashes[0], hashes[1], "the twins hold the same weights");
    let hash = hashes[0];
    let payload = cache.join("blobs").join(&hash[..2]).join(hash);
    let manifest = payload.with_file_name(format!("{hash}.refs"));
    let weights = env.hub.repo("model", "acme/one").unwrap().commits[0]
        .file("weights.bin")
        .unwrap()
        .etag()
        .to_owned();
    let line = |repo: &str| format!("models--acme--{repo}/blobs/{weights}\n");
    assert_eq!(
        fs::read_to_string(&manifest).unwrap(),
        format!("{}{}", line("one"), line("two"))
    );
    age(&env.cache(), 60);

    // acme/two goes; the payload stays for acme/one, whose reference alone is left.
    let removed = gc_json(&env, &[]);
    assert_eq!(
        removed["removed"].as_array().unwrap().len(),
        1,
        "{removed:#}"
    );
    assert_eq!(removed["removed"][0]["repo_id"], "acme/two");
    assert_eq!(
        removed["freed_bytes"], 11,
        "only acme/two's config.json: {removed:#}"
    );
    assert!(!env.repo_dir("models--acme--two").exists());
    assert_eq!(fs::read_to_string(&manifest).unwrap(), line("one"));
    assert_eq!(fs::metadata(&payload).unwrap().len(), 10000);
    let one = env.repo_dir("models--acme--one");
    let main = env.commit("model", "acme/one", "main");
    assert_eq!(
        fs::read(one.join(format!("snapshots/{main}/weights.bin")))
            .unwrap()
            .len(),
        10000
    );
    listed_cleanly(&env, &python);
    verified(&env, &python, "acme/one", &main, true);

    // Once acme/one's project goes too, so does the payload with its manifest (not its lock).
    fs::remove_file(env.project().join("facehugger.lock")).unwrap();
    age(&env.cache(), 60); // Reading the files above used them.
    let planned = gc_json(&env, &["--dry-run"]);
    assert_eq!(planned["freed_bytes"], 11 + 10000, "{planned:#}");
    let removed = gc_json(&env, &[]);
    assert_eq!(removed["freed_bytes"], 11 + 10000, "{removed:#}");
    assert!(!payload.exists());
    assert!(!manifest.exists());
    assert!(payload.with_file_name(format!("{hash}.lock")).exists());
    assert!(!one.exists());
    let listed = listed_cleanly(&env, &python);
    assert_eq!(listed, Value::Array(vec![]));
}

#[test]
fn sync_and_lock_remember_the_project_outside_the_cache() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: \"*.json\"\n");
    env.run(&["lock"]).success();
    fs::create_dir_all(env.cache()).unwrap();
    let lock = env
        .project()
        .join("facehugger.lock")
        .canonicalize()
        .unwrap();
    let locked = gc_json(&env, &["--dry-run"]);
    assert_eq!(locked["projects"], serde_json::json!([lock]));
    env.run(&[]).success();
    // One small JSON file per project under $HF_HOME; nothing in the cache but the cache.
    let registry = env.home().join("facehugger/projects");
    let entries: Vec<PathBuf> = walk(&registry)
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let entry: Value = serde_json::from_str(&fs::read_to_string(&entries[0]).unwrap()).unwrap();
    assert_eq!(entry["lock"], lock.to_str().unwrap());
    assert_eq!(
        entry["cache"],
        env.cache().canonicalize().unwrap().to_str().unwrap()
    );
    let mut top: Vec<String> = fs::read_dir(env.cache())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    top.sort();
    assert_eq!(top, vec![".locks", "CACHEDIR.TAG", "models--acme--tiny"]);
}
