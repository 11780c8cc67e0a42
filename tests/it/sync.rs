//! `facehugger sync`: what lands in the cache, and how few requests it takes.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::{Env, Options, Origin, TOKEN, tree};

const TINY_JSON: &str = "models:\n  - repo: acme/tiny\n    include: [\"*.json\", \"sub/\"]\n    exclude: \"generation*\"\n";

#[test]
fn sync_fills_the_cache_exactly_as_the_reference_client_lays_it_out() {
    let env = Env::new();
    env.manifest(TINY_JSON);
    let run = env.run(&[]).success();
    let main = env.commit("model", "acme/tiny", "main");
    assert!(
        run.stderr.contains("Resolving acme/tiny@main"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("Downloading acme/tiny@main (4 files, 76 B)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Finished 4 files"), "{}", run.stderr);

    let repo = env.repo_dir("models--acme--tiny");
    let files: Vec<String> = tree(&repo)
        .into_iter()
        .filter(|f| f.starts_with("snapshots/"))
        .collect();
    let info = env.hub.repo("model", "acme/tiny").unwrap();
    let etag = |path: &str| {
        info.commit(&main)
            .and_then(|c| c.file(path))
            .expect("fixture file")
            .etag()
            .to_owned()
    };
    let expected: Vec<String> = [
        // `*.json` is case-sensitive: Tokenizer.JSON stays out, as with `hf download`.
        ("config.json", "../../blobs/"),
        ("sub/dir/nested.txt", "../../../../blobs/"),
        ("sub/top.txt", "../../../blobs/"),
        ("tokenizer.json", "../../blobs/"),
    ]
    .iter()
    .map(|(path, up)| format!("snapshots/{main}/{path} -> {up}{}", etag(path)))
    .collect();
    assert_eq!(files, expected);
    // The content is right, reached through the links.
    let config =
        std::fs::read_to_string(repo.join(format!("snapshots/{main}/config.json"))).unwrap();
    assert_eq!(config, "{\"hidden_size\": 16}\n");

    // refs/main holds exactly the 40 bytes of the commit.
    assert_eq!(
        std::fs::read(repo.join("refs/main")).unwrap(),
        main.as_bytes()
    );
    // The tree cache lists the whole commit, not just the selected files.
    let trees = std::fs::read_to_string(repo.join(format!("trees/{main}.json"))).unwrap();
    assert!(trees.contains("\"model.safetensors\""), "{trees}");
    assert!(
        trees.contains("\"dir with space/\\u00fc#?&+=~@:.txt\""),
        "{trees}"
    );
    assert!(env.cache().join("CACHEDIR.TAG").is_file());
    // One lock file per installed blob, mode 0664, kept.
    let locks = env.cache().join(".locks/models--acme--tiny");
    let lock = locks.join(format!("{}.lock", etag("config.json")));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777,
            0o664
        );
    }
    assert!(lock.is_file());
    // No temporary file is left behind.
    assert!(
        !tree(&repo)
            .iter()
            .any(|f| f.contains(".incomplete") || f.contains(".tmp"))
    );

    let lock_text = env.lock_text().unwrap();
    assert_eq!(
        lock_text,
        format!(
            "[\n  {{\n    \"repo_id\": \"acme/tiny\",\n    \"repo_type\": \"model\",\n    \"revision\": \"{main}\",\n    \"refs\": [\n      \"main\"\n    ]\n  }}\n]\n"
        )
    );
}

#[test]
fn requests_are_minimal_and_a_warm_sync_downloads_nothing() {
    let env = Env::with_options(Options {
        page_size: 3,
        ..Options::default()
    });
    env.manifest(
        "models:\n  - repo: acme/tiny\n  - repo: acme/many\n  - repo: acme/data\n    repo_type: dataset\n",
    );
    env.run(&[]).success();
    let requests = env.requests();
    let count = |prefix: &str| {
        requests
            .iter()
            .filter(|r| r.url.starts_with(prefix))
            .count()
    };
    assert_eq!(count("/api/models/acme/tiny/revision/main"), 1);
    assert_eq!(count("/api/models/acme/many/revision/main"), 1);
    assert_eq!(count("/api/datasets/acme/data/revision/main"), 1);
    // Paginated listings, one chain per commit; no HEAD at all.
    let many_files = env.hub.repo("model", "acme/many").unwrap().commits[0]
        .files
        .len();
    assert!(count("/api/models/acme/many/tree/") >= many_files.div_ceil(3));
    assert!(requests.iter().all(|r| r.method != "HEAD"));
    // One GET per file.
    let tiny_files = env.hub.repo("model", "acme/tiny").unwrap().commits[1]
        .files
        .len();
    let tiny_gets: Vec<&str> = requests
        .iter()
        .filter(|r| r.url.starts_with("/acme/tiny/resolve/"))
        .map(|r| r.url.as_str())
        .collect();
    assert_eq!(tiny_gets.len(), tiny_files, "{tiny_gets:#?}");
    assert_eq!(count("/datasets/acme/data/resolve/"), 4);

    env.hub.clear_requests();
    let run = env.run(&[]).success();
    assert!(
        run.stderr.contains("Fresh acme/tiny@main"),
        "{}",
        run.stderr
    );
    let urls: Vec<String> = env.requests().iter().map(|r| r.url.clone()).collect();
    assert_eq!(
        urls.len(),
        3,
        "one revision request per repo, nothing else: {urls:?}"
    );
    assert!(urls.iter().all(|u| u.contains("/revision/")), "{urls:?}");

    env.hub.clear_requests();
    env.run(&["sync", "--frozen"]).success();
    assert_eq!(
        env.requests().len(),
        0,
        "a frozen warm sync makes no request"
    );
}

#[test]
fn files_share_pooled_keep_alive_connections() {
    // Each request takes a while, so that connections are busy at once and then idle in turn.
    let env = Env::with_options(Options {
        latency: Duration::from_millis(20),
        ..Options::default()
    });
    env.manifest("models:\n  - repo: acme/many\n");
    env.run(&["sync", "-j", "16"]).success();
    let requests = env.requests();
    let connections: BTreeSet<&str> = requests
        .iter()
        .filter(|r| r.origin == Origin::Hub)
        .map(|r| r.peer.as_str())
        .collect();
    assert!(requests.len() > 30, "{}", requests.len());
    assert!(
        connections.len() <= 16,
        "{} requests over {} connections: a connection is opened per request",
        requests.len(),
        connections.len()
    );
}

#[test]
fn refs_tags_pull_requests_and_commits_each_get_their_snapshot() {
    let env = Env::new();
    let first = env.commit("model", "acme/tiny", "v1.0");
    env.manifest(&format!(
        "models:\n  - repo: acme/tiny\n    ref: v1.0\n    include: config.json\n  - repo: acme/tiny\n    ref: refs/pr/1\n    include: config.json\n  - repo: acme/tiny\n    ref: {first}\n    include: README.md\n"
    ));
    env.run(&[]).success();
    let repo = env.repo_dir("models--acme--tiny");
    let main = env.commit("model", "acme/tiny", "main");
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/v1.0")).unwrap(),
        first
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/refs/pr/1")).unwrap(),
        main
    );
    assert!(
        !repo.join(format!("refs/{first}")).exists(),
        "a commit is never written as a ref"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join(format!("snapshots/{first}/config.json"))).unwrap(),
        "{\"hidden_size\": 8}\n"
    );
    assert!(repo.join(format!("snapshots/{first}/README.md")).exists());
    assert!(repo.join(format!("snapshots/{main}/config.json")).exists());
    // The revision API was asked once per ref, never for the commit.
    assert_eq!(env.count("/api/models/acme/tiny/revision/"), 2);
    let lock = env.lock_text().unwrap();
    assert!(
        lock.contains(&format!(
            "\"revision\": \"{first}\",\n    \"refs\": [\n      \"v1.0\"\n    ]"
        )),
        "{lock}"
    );
}

#[test]
fn lfs_files_come_from_the_cdn_without_the_token() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/private\n");
    let run = env.cmd(&[]).env("HF_TOKEN", TOKEN).output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let requests = env.requests();
    let cdn: Vec<_> = requests
        .iter()
        .filter(|r| r.origin == Origin::Cdn)
        .collect();
    assert_eq!(cdn.len(), 1, "the LFS file is fetched from the CDN");
    assert!(
        cdn.iter().all(|r| r.header("authorization").is_none()),
        "no token to the CDN"
    );
    let hub: Vec<_> = requests
        .iter()
        .filter(|r| r.origin == Origin::Hub)
        .collect();
    assert!(
        hub.iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}")))
    );
    let out = String::from_utf8_lossy(&run.stderr);
    assert!(!out.contains(TOKEN));
}

#[test]
fn the_token_is_read_from_the_hf_home_token_file() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/gated\n    include: config.json\n");
    std::fs::create_dir_all(env.home()).unwrap();
    std::fs::write(env.home().join("token"), format!("{TOKEN}\n")).unwrap();
    env.run(&[]).success();
    assert!(
        env.requests()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}")))
    );
}

#[test]
fn a_renamed_repo_is_followed_and_cached_under_the_name_asked_for() {
    let env = Env::new();
    env.manifest("models:\n  - repo: old-org/tiny\n    include: sub/top.txt\n");
    env.run(&[]).success();
    let main = env.commit("model", "acme/tiny", "main");
    let pointer = env
        .repo_dir("models--old-org--tiny")
        .join(format!("snapshots/{main}/sub/top.txt"));
    assert_eq!(std::fs::read_to_string(pointer).unwrap(), "top\n");
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let env = Env::new();
    env.manifest(
        "models:\n  - repo: acme/tiny\n    ref: v1.0\n    include: [\"*.json\", \"it's\"]\n  - repo: acme/data\n    repo_type: dataset\n    exclude: \"*.parquet\"\n",
    );
    let run = env.run(&["--dry-run"]).success();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "hf download acme/tiny --revision v1.0 --include '*.json' --include 'it'\"'\"'s'"
    );
    assert_eq!(
        &lines[1..],
        [
            "  download       19 B  config.json",
            "  download       45 B  tokenizer.json",
            "hf download acme/data --repo-type dataset --exclude '*.parquet'",
            "  download       46 B  .gitattributes",
            "  download       29 B  README.md",
            "  download       12 B  data/test.csv",
            "Total: 5 files to download (151 B), 0 files already cached",
        ]
    );
    assert!(!env.cache().exists(), "no cache written");
    assert!(env.lock_text().is_none(), "no lock written");

    // Under --frozen the command pins the commit, and cached files show as such.
    env.run(&["lock"]).success();
    env.run(&[]).success();
    let run = env.run(&["sync", "--frozen", "--dry-run"]).success();
    let first = env.commit("model", "acme/tiny", "v1.0");
    assert!(
        run.stdout.starts_with(&format!(
            "hf download acme/tiny --revision {first} --include"
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  cached            -  config.json"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .ends_with("Total: 0 files to download (0 B), 5 files already cached\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_manifest_path_argument_puts_the_lock_beside_it() {
    let env = Env::new();
    let dir = env.project().join("models");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("m.yaml"),
        "models:\n  - repo: acme/tiny\n    include: README.md\n",
    )
    .unwrap();
    env.run(&["models/m.yaml"]).success();
    assert!(dir.join("facehugger.lock").is_file());
    assert!(env.lock_text().is_none());
}

#[test]
fn a_blob_shared_by_two_revisions_is_downloaded_once() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    ref: v1.0\n    include: \"*.safetensors\"\n  - repo: acme/tiny\n    include: \"*.safetensors\"\n");
    env.run(&[]).success();
    let cdn = env
        .requests()
        .iter()
        .filter(|r| r.origin == Origin::Cdn)
        .count();
    assert_eq!(cdn, 1, "the same LFS blob serves both snapshots");
    let repo = env.repo_dir("models--acme--tiny");
    for rev in ["v1.0", "main"] {
        let commit = env.commit("model", "acme/tiny", rev);
        assert_eq!(
            std::fs::metadata(repo.join(format!("snapshots/{commit}/model.safetensors")))
                .unwrap()
                .len(),
            200_000
        );
    }
}

#[test]
fn two_refs_at_one_commit_fetch_each_file_once() {
    // In the fixture, main and refs/pr/1 name the same commit; their includes overlap.
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: [\"*.json\", \"sub/\"]\n  - repo: acme/tiny\n    ref: refs/pr/1\n    include: \"*.json\"\n");
    let run = env.run(&[]).success();
    let mut fetched: Vec<String> = env
        .requests()
        .iter()
        .filter(|r| r.path().contains("/resolve/"))
        .map(|r| r.path().to_owned())
        .collect();
    let count = fetched.len();
    fetched.sort();
    fetched.dedup();
    assert_eq!(fetched.len(), count, "a file fetched twice: {fetched:?}");
    let main = env.commit("model", "acme/tiny", "main");
    assert_eq!(env.commit("model", "acme/tiny", "refs/pr/1"), main);
    let snapshot = env
        .repo_dir("models--acme--tiny")
        .join(format!("snapshots/{main}"));
    for path in ["config.json", "tokenizer.json", "sub/top.txt"] {
        assert!(snapshot.join(path).is_file(), "{path}: {}", run.stderr);
    }
}

#[test]
fn version_and_help_answer() {
    let env = Env::new();
    let run = env.run(&["--version"]).success();
    assert_eq!(
        run.stdout,
        format!("facehugger {}\n", env!("CARGO_PKG_VERSION"))
    );
    let run = env.run(&["--help"]).success();
    for needle in [
        "--frozen",
        "--locked",
        "--offline",
        "--dry-run",
        "--cache-dir",
        "--jobs",
        "Examples:",
        "Exit status",
    ] {
        assert!(run.stdout.contains(needle), "{needle} in\n{}", run.stdout);
    }
    let run = env.run(&["sync", "--jobs", "0"]).failure(2);
    assert!(run.stderr.contains("--jobs"), "{}", run.stderr);
}

#[test]
fn cache_dir_and_quiet_are_honoured() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: README.md\n");
    let other = env.dir.path().join("elsewhere");
    let run = env
        .run(&["-q", "--cache-dir", other.to_str().unwrap()])
        .success();
    assert_eq!(run.stderr, "");
    assert!(other.join("models--acme--tiny/refs/main").is_file());
    assert!(!env.cache().exists());
}

#[test]
fn spaces_and_datasets_use_their_url_prefixes() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/app\n    repo_type: space\n  - repo: acme/data\n    repo_type: dataset\n    include: README.md\n");
    env.run(&[]).success();
    assert_eq!(env.count("/api/spaces/acme/app/revision/main"), 1);
    assert!(env.count("/spaces/acme/app/resolve/") > 0);
    assert_eq!(env.count("/datasets/acme/data/resolve/"), 1);
    let app = env.commit("space", "acme/app", "main");
    assert!(
        env.repo_dir("spaces--acme--app")
            .join(format!("snapshots/{app}"))
            .is_dir()
    );
}

#[test]
fn status_lines_are_coloured_only_when_asked_or_on_a_terminal() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: README.md\n");
    let plain = env.run(&[]).success();
    assert!(!plain.stderr.contains('\x1b'), "{:?}", plain.stderr);
    let coloured = env.run(&["--color", "always"]).success();
    assert!(
        coloured
            .stderr
            .contains("\x1b[1m\x1b[32m       Fresh\x1b[0m acme/tiny@main"),
        "{:?}",
        coloured.stderr
    );
}

#[test]
fn a_model_whose_patterns_match_nothing_is_a_warning() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: \"*.gguf\"\n");
    let run = env.run(&[]).success();
    assert!(
        run.stderr
            .contains("warning: acme/tiny@main: no file matches its include/exclude patterns"),
        "{}",
        run.stderr
    );
}
