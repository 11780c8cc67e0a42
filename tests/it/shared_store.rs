//! huggingface_hub's shared Xet store (hf-protocol.md 3.7), built here by huggingface_hub's own
//! code: facehugger links a file to a verified copy there rather than download it, as the
//! reference client does; never publishes its own downloads; and repairs a repo whose copy there
//! is corrupt without breaking the other repos that link to it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::gc::{TWINS, listed_cleanly, verified};
use crate::interop::reference;
use crate::support::{Env, Options, Origin, Run, make_writable, python};

/// A hub listing Xet hashes, serving acme/one and acme/two, which hold the same weights; and the
/// fixtures folder, kept alive with it.
fn twins() -> (Env, tempfile::TempDir) {
    let fixtures = tempfile::tempdir().unwrap();
    for (name, spec) in TWINS {
        fs::write(fixtures.path().join(name), spec).unwrap();
    }
    let env = Env::with_options(Options {
        fixtures: fixtures.path().to_owned(),
        xet: true,
        ..Options::default()
    });
    (env, fixtures)
}

/// What the store holds after `hf download acme/one` and huggingface_hub's publication of its
/// weights (as a Xet download leaves them).
struct Store {
    cache: PathBuf,
    hash: String,
    payload: PathBuf,
    manifest: PathBuf,
    /// The weights' etag: the name of each repo's blob.
    etag: String,
}

impl Store {
    fn line(&self, repo: &str) -> String {
        format!("models--acme--{repo}/blobs/{}\n", self.etag)
    }

    fn blob(&self, repo: &str) -> PathBuf {
        self.cache
            .join(format!("models--acme--{repo}/blobs/{}", self.etag))
    }
}

/// Moves a repo blob into the shared store with huggingface_hub's own code, as a Xet download
/// leaves it: the payload under its Xet hash, the repo blob a link to it, listed in `.refs`.
const PUBLISH: &str = r#"
import sys
from pathlib import Path
from huggingface_hub.utils._shared_blobs import publish_blob_to_shared_store
blob, xet_hash, cache = sys.argv[1:]
size = Path(blob).stat().st_size
assert publish_blob_to_shared_store(blob_path=blob, xet_hash=xet_hash, cache_dir=cache, expected_size=size)
"#;

fn publish_one(env: &Env, python: &Path) -> Store {
    reference(env, python, "hf", &["download", "acme/one"], false);
    let cache = env.cache().canonicalize().unwrap();
    let etag = env.hub.repo("model", "acme/one").unwrap().commits[0]
        .file("weights.bin")
        .unwrap()
        .etag()
        .to_owned();
    // The Xet hash the hub lists for the weights.
    let hash = test_hub::xet_hash(&etag);
    let blob = cache.join(format!("models--acme--one/blobs/{etag}"));
    reference(
        env,
        python,
        "python",
        &[
            "-c",
            PUBLISH,
            blob.to_str().unwrap(),
            &hash,
            cache.to_str().unwrap(),
        ],
        false,
    );
    let payload = cache.join("blobs").join(&hash[..2]).join(&hash);
    Store {
        manifest: payload.with_file_name(format!("{hash}.refs")),
        cache,
        hash,
        payload,
        etag,
    }
}

/// Requests that fetched the weights' bytes: resolves of `weights.bin` and the CDN.
fn weights_fetched(env: &Env) -> usize {
    env.requests()
        .iter()
        .filter(|r| r.path().ends_with("/weights.bin") || r.origin == Origin::Cdn)
        .count()
}

fn sync_two(env: &Env, extra_env: &[(&str, &str)]) -> Run {
    env.manifest("models:\n  - repo: acme/two\n");
    env.hub.clear_requests();
    let mut cmd = env.cmd(&[]);
    for (name, value) in extra_env {
        cmd.env(name, value);
    }
    Run::from(cmd.output().unwrap())
}

fn read_two(env: &Env) -> Vec<u8> {
    let main = env.commit("model", "acme/two", "main");
    fs::read(
        env.repo_dir("models--acme--two")
            .join(format!("snapshots/{main}/weights.bin")),
    )
    .unwrap()
}

#[test]
fn a_verified_copy_in_the_shared_store_is_linked_not_downloaded() {
    let Some(python) = python() else { return };
    let (env, _fixtures) = twins();
    let store = publish_one(&env, &python);
    let run = sync_two(&env, &[]).success();
    assert_eq!(weights_fetched(&env), 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("1 from hf's shared Xet store"),
        "{}",
        run.stderr
    );
    // As the reference links one: a relative link, the reference recorded in the manifest.
    assert_eq!(
        fs::read_link(store.blob("two")).unwrap(),
        PathBuf::from(format!("../../blobs/{}/{}", &store.hash[..2], store.hash))
    );
    assert_eq!(
        fs::read_to_string(&store.manifest).unwrap(),
        format!("{}{}", store.line("one"), store.line("two"))
    );
    let weights = read_two(&env);
    assert_eq!(weights, fs::read(&store.payload).unwrap());

    // huggingface_hub's own view: nothing unreferenced, both revisions verify, a clean listing.
    let unreferenced = reference(
        &env,
        &python,
        "python",
        &[
            "-c",
            "import sys\nfrom huggingface_hub.utils._shared_blobs import unreferenced_shared_blobs\nprint(len(unreferenced_shared_blobs(sys.argv[1])))",
            store.cache.to_str().unwrap(),
        ],
        false,
    );
    assert_eq!(unreferenced.trim(), "0");
    let two_main = env.commit("model", "acme/two", "main");
    verified(&env, &python, "acme/two", &two_main, true);
    listed_cleanly(&env, &python);

    // `hf cache rm` of acme/one leaves acme/two whole: the payload stays for it.
    reference(
        &env,
        &python,
        "hf",
        &["cache", "rm", "model/acme/one", "--yes"],
        false,
    );
    assert!(!env.repo_dir("models--acme--one").exists());
    assert_eq!(read_two(&env), weights);
    assert_eq!(
        fs::read_to_string(&store.manifest).unwrap(),
        store.line("two")
    );
    env.run(&["verify"]).success();
    verified(&env, &python, "acme/two", &two_main, true);
}

#[test]
fn a_corrupt_shared_copy_is_never_linked_and_verify_repairs_only_the_repo_it_checks() {
    let Some(python) = python() else { return };
    let (env, _fixtures) = twins();
    let store = publish_one(&env, &python);
    sync_two(&env, &[]).success();
    let good = fs::read(&store.payload).unwrap();
    // The store's file goes bad (it is read-only, as huggingface_hub leaves it).
    let mut bad = good.clone();
    bad[100] ^= 0xff;
    make_writable(&store.payload);
    fs::write(&store.payload, &bad).unwrap();

    // verify says which shared file is corrupt and which repos use it.
    let run = env.run(&["verify"]).failure(1);
    let payload = store.payload.display().to_string();
    for needle in [
        payload.as_str(),
        store.line("one").trim(),
        store.line("two").trim(),
    ] {
        assert!(run.stdout.contains(needle), "{needle} in\n{}", run.stdout);
    }
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["verify", "--format", "json"]).failure(1).stdout).unwrap();
    assert_eq!(json["problems"][0]["shared_blob"], payload.as_str());
    assert_eq!(json["problems"][0]["used_by"].as_array().unwrap().len(), 2);

    // --repair: acme/two gets its own, verified blob; acme/one's link to the store is left as
    // it was (a valid link: its repair is for its owner to run).
    let run = env.run(&["verify", "--repair"]).success();
    assert!(run.stdout.contains("every file verified"), "{}", run.stdout);
    let blob = fs::symlink_metadata(store.blob("two")).unwrap();
    assert!(blob.is_file(), "acme/two's blob is its own file now");
    assert_eq!(read_two(&env), good);
    assert!(
        fs::symlink_metadata(store.blob("one"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(fs::read(store.blob("one")).unwrap(), bad);
    assert_eq!(
        fs::read_to_string(&store.manifest).unwrap(),
        store.line("one")
    );

    // A sync that meets the corrupt copy warns and downloads instead of linking to it.
    fs::remove_dir_all(env.repo_dir("models--acme--two")).unwrap();
    let run = sync_two(&env, &[]).success();
    assert!(
        run.stderr.contains(&format!("`{payload}`, is corrupt")),
        "{}",
        run.stderr
    );
    assert!(weights_fetched(&env) > 0);
    assert!(fs::symlink_metadata(store.blob("two")).unwrap().is_file());
    assert_eq!(read_two(&env), good);
    assert_eq!(
        fs::read_to_string(&store.manifest).unwrap(),
        store.line("one")
    );
}

#[test]
fn the_store_is_used_only_when_marked_and_allowed_and_never_fed() {
    let Some(python) = python() else { return };
    let (env, _fixtures) = twins();
    let store = publish_one(&env, &python);
    let refs = fs::read_to_string(&store.manifest).unwrap();

    // HF_HUB_DISABLE_SHARED_BLOBS=1: downloaded, the store untouched.
    sync_two(&env, &[("HF_HUB_DISABLE_SHARED_BLOBS", "1")]).success();
    assert!(weights_fetched(&env) > 0);
    assert!(fs::symlink_metadata(store.blob("two")).unwrap().is_file());
    assert_eq!(fs::read_to_string(&store.manifest).unwrap(), refs);

    // Without its marker, `<cache>/blobs` is no store: nothing there is used.
    fs::remove_dir_all(env.repo_dir("models--acme--two")).unwrap();
    let marker = store.cache.join("blobs/.huggingface-shared-blobs");
    fs::remove_file(&marker).unwrap();
    sync_two(&env, &[]).success();
    assert!(weights_fetched(&env) > 0);
    assert!(fs::symlink_metadata(store.blob("two")).unwrap().is_file());

    // facehugger's own downloads never go into the store.
    let prefix = store.cache.join("blobs").join(&store.hash[..2]);
    let names: Vec<String> = fs::read_dir(&prefix)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(
        names,
        [
            store.hash.clone(),
            format!("{}.lock", store.hash),
            format!("{}.refs", store.hash)
        ]
    );
    assert_eq!(fs::read_to_string(&store.manifest).unwrap(), refs);
}

#[test]
fn without_links_the_shared_store_is_not_used() {
    let Some(python) = python() else { return };
    let (env, _fixtures) = twins();
    let store = publish_one(&env, &python);
    // As huggingface_hub: the store is only for caches with links, and links are off.
    let run = sync_two(&env, &[("HF_HUB_DISABLE_SYMLINKS", "1")]).success();
    assert!(weights_fetched(&env) > 0, "{}", run.stderr);
    assert!(fs::symlink_metadata(store.blob("two")).is_err());
    let main = env.commit("model", "acme/two", "main");
    let weights = env
        .repo_dir("models--acme--two")
        .join(format!("snapshots/{main}/weights.bin"));
    assert!(fs::symlink_metadata(&weights).unwrap().is_file());
    assert_eq!(read_two(&env), fs::read(&store.payload).unwrap());
    assert_eq!(
        fs::read_to_string(&store.manifest).unwrap(),
        store.line("one")
    );
}
