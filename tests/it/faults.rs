//! Transient faults are retried or resumed; corrupt data is never installed.

use crate::support::{Env, Origin, tree};
use test_hub::{Fault, FaultKind};

const LFS: &str = "models:\n  - repo: acme/tiny\n    include: [\"*.safetensors\", config.json]\n";

fn no_temporary_files(env: &Env) {
    let leftovers: Vec<String> = tree(&env.cache())
        .into_iter()
        .filter(|f| f.contains(".incomplete") || f.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_corrupt_body_is_downloaded_again_once() {
    let env = Env::new();
    env.manifest(LFS);
    env.hub.inject(Fault::new("/blobs/", FaultKind::Corrupt, 1));
    env.run(&[]).success();
    let cdn: Vec<_> = env
        .requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Cdn)
        .collect();
    assert_eq!(cdn.len(), 2, "one corrupt answer, one good one");
    let main = env.commit("model", "acme/tiny", "main");
    let model = env
        .repo_dir("models--acme--tiny")
        .join(format!("snapshots/{main}/model.safetensors"));
    let expected = env
        .hub
        .repo("model", "acme/tiny")
        .unwrap()
        .commit(&main)
        .unwrap()
        .file("model.safetensors")
        .unwrap()
        .content()
        .unwrap();
    assert!(std::fs::read(model).unwrap() == expected);
    no_temporary_files(&env);
}

#[test]
fn a_body_that_stays_corrupt_is_reported_and_never_installed() {
    let env = Env::new();
    env.manifest(LFS);
    env.hub.inject(Fault::new("/blobs/", FaultKind::Corrupt, 2));
    let run = env.run(&[]).failure(1);
    let main = env.commit("model", "acme/tiny", "main");
    let info = env.hub.repo("model", "acme/tiny").unwrap();
    let sha = info
        .commit(&main)
        .unwrap()
        .file("model.safetensors")
        .unwrap()
        .etag()
        .to_owned();
    assert!(
        run.stderr.contains(
            "acme/tiny: model.safetensors: `model.safetensors` is corrupt: expected sha256"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&sha), "{}", run.stderr);
    let repo = env.repo_dir("models--acme--tiny");
    assert!(
        !repo.join(format!("blobs/{sha}")).exists(),
        "the corrupt blob is not installed"
    );
    assert!(
        !repo
            .join(format!("snapshots/{main}/model.safetensors"))
            .exists()
    );
    // The other file of the sync is installed all the same.
    assert!(repo.join(format!("snapshots/{main}/config.json")).exists());
    no_temporary_files(&env);
}

#[test]
fn a_regular_file_is_checked_against_its_git_blob_id() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: config.json\n");
    env.hub
        .inject(Fault::new("config.json", FaultKind::Corrupt, 2));
    let run = env.run(&[]).failure(1);
    assert!(
        run.stderr.contains("is corrupt: expected git-sha1"),
        "{}",
        run.stderr
    );
    no_temporary_files(&env);
}

#[test]
fn rate_limits_and_server_errors_are_retried() {
    let env = Env::new();
    env.manifest(LFS);
    env.hub.inject(Fault::new(
        "/revision/",
        FaultKind::Status {
            status: 429,
            retry_after: Some(0),
        },
        1,
    ));
    env.hub.inject(Fault::new(
        "/tree/",
        FaultKind::Status {
            status: 503,
            retry_after: None,
        },
        2,
    ));
    env.hub.inject(Fault::new(
        "config.json",
        FaultKind::Status {
            status: 502,
            retry_after: None,
        },
        1,
    ));
    env.hub.inject(Fault::new(
        "/blobs/",
        FaultKind::Status {
            status: 500,
            retry_after: None,
        },
        1,
    ));
    env.run(&[]).success();
    assert_eq!(env.count("/api/models/acme/tiny/revision/"), 2);
    assert_eq!(env.count("/api/models/acme/tiny/tree/"), 3);
}

#[test]
fn a_persistent_server_error_fails_after_the_retries() {
    let env = Env::new();
    env.manifest(LFS);
    env.hub.inject(Fault::new(
        "/revision/",
        FaultKind::Status {
            status: 500,
            retry_after: None,
        },
        100,
    ));
    let run = env.run(&[]).failure(1);
    assert!(
        run.stderr
            .contains("acme/tiny@main: resolving `main` of `acme/tiny` failed: HTTP 500 from"),
        "{}",
        run.stderr
    );
    assert_eq!(
        env.count("/api/models/acme/tiny/revision/"),
        6,
        "the first try and 5 retries"
    );
}

#[test]
fn a_dropped_connection_resumes_where_it_stopped() {
    let env = Env::new();
    env.manifest(LFS);
    env.hub
        .inject(Fault::new("/blobs/", FaultKind::DropAfter(70_000), 1));
    env.run(&[]).success();
    let ranges: Vec<String> = env
        .requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Cdn)
        .filter_map(|r| r.header("range").map(str::to_owned))
        .collect();
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    let start: u64 = ranges[0]
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(start > 0 && start <= 70_000, "{ranges:?}");
    no_temporary_files(&env);
}

#[test]
fn a_server_that_ignores_range_gets_a_fresh_start() {
    let env = Env::new();
    env.manifest(LFS);
    env.hub
        .inject(Fault::new("/blobs/", FaultKind::DropAfter(70_000), 1));
    env.hub
        .inject(Fault::new("/blobs/", FaultKind::IgnoreRange, 1));
    env.run(&[]).success();
    let main = env.commit("model", "acme/tiny", "main");
    let model = env
        .repo_dir("models--acme--tiny")
        .join(format!("snapshots/{main}/model.safetensors"));
    assert_eq!(std::fs::metadata(model).unwrap().len(), 200_000);
}

#[test]
fn a_stalled_connection_times_out_and_is_retried() {
    let env = Env::new();
    env.manifest(LFS);
    env.hub.inject(Fault::new(
        "/blobs/",
        FaultKind::Stall(std::time::Duration::from_millis(2500)),
        1,
    ));
    let output = env
        .cmd(&[])
        .env("HF_HUB_DOWNLOAD_TIMEOUT", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        env.requests()
            .iter()
            .filter(|r| r.origin == Origin::Cdn)
            .count(),
        2
    );
}

/// Small chunks, so the fixtures' files (200 KB, 5 MB) are fetched in many ranged pieces.
const CHUNKED: [&str; 4] = ["--chunk-size", "16", "--connections-per-file", "4"];

fn cdn_ranges(env: &Env) -> Vec<String> {
    env.requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Cdn)
        .map(|r| r.header("range").unwrap_or("-").to_owned())
        .collect()
}

fn assert_content(env: &Env, repo: &str, path: &str) {
    let main = env.commit("model", repo, "main");
    let folder = format!("models--{}", repo.replace('/', "--"));
    let got = std::fs::read(
        env.repo_dir(&folder)
            .join(format!("snapshots/{main}/{path}")),
    )
    .unwrap();
    let expected = env
        .hub
        .repo("model", repo)
        .unwrap()
        .commit(&main)
        .unwrap()
        .file(path)
        .unwrap()
        .content()
        .unwrap();
    assert!(
        got == expected,
        "{repo}/{path}: {} bytes, expected {}",
        got.len(),
        expected.len()
    );
}

#[test]
fn large_files_come_in_ranged_chunks_over_several_connections() {
    let env = Env::new();
    env.manifest(
        "models:\n  - repo: acme/big\n  - repo: acme/tiny\n    include: \"*.safetensors\"\n",
    );
    env.run(&CHUNKED).success();
    assert_content(&env, "acme/big", "model.safetensors");
    assert_content(&env, "acme/tiny", "model.safetensors");
    let ranges = cdn_ranges(&env);
    let size = env.hub.repo("model", "acme/tiny").unwrap().commits[1]
        .file("model.safetensors")
        .unwrap()
        .size;
    // 200 000 bytes in 16 KiB chunks: 13 requests, the last one short (an odd size).
    assert!(ranges.contains(&"bytes=0-16383".to_owned()), "{ranges:?}");
    assert!(
        ranges.contains(&format!("bytes={}-{}", 12 * 16384, size - 1)),
        "{ranges:?}"
    );
    // The first chunk follows the Hub's redirect; the others go straight to the CDN.
    assert_eq!(env.count("/acme/tiny/resolve/"), 1);
    no_temporary_files(&env);
}

#[test]
fn a_failed_chunk_is_fetched_again_from_where_it_stopped() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: \"*.safetensors\"\n");
    env.hub
        .inject(Fault::new("/blobs/", FaultKind::DropAfter(5000), 1).after(3));
    env.hub.inject(
        Fault::new(
            "/blobs/",
            FaultKind::Status {
                status: 503,
                retry_after: None,
            },
            1,
        )
        .after(6),
    );
    env.run(&CHUNKED).success();
    assert_content(&env, "acme/tiny", "model.safetensors");
    let resumed = cdn_ranges(&env)
        .iter()
        .filter(|r| !r.ends_with("383") && !r.ends_with("199999"))
        .count();
    assert!(
        resumed >= 1,
        "a chunk resumed mid-way: {:?}",
        cdn_ranges(&env)
    );
}

#[test]
fn a_server_that_ignores_range_gets_one_stream_instead() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: \"*.safetensors\"\n");
    env.hub
        .inject(Fault::new("/blobs/", FaultKind::IgnoreRange, 100));
    env.run(&CHUNKED).success();
    assert_content(&env, "acme/tiny", "model.safetensors");
    no_temporary_files(&env);
}

#[test]
fn an_expired_cdn_link_is_resolved_again() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: \"*.safetensors\"\n");
    // Later chunks, sent straight to the remembered CDN link, find it expired.
    env.hub.inject(
        Fault::new(
            "/blobs/",
            FaultKind::Status {
                status: 403,
                retry_after: None,
            },
            2,
        )
        .after(4),
    );
    env.run(&CHUNKED).success();
    assert_content(&env, "acme/tiny", "model.safetensors");
    assert!(
        env.count("/acme/tiny/resolve/") >= 2,
        "the Hub was asked for a fresh link"
    );

    // Single stream too: the first link is refused, the Hub gives another.
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: \"*.safetensors\"\n");
    env.hub.inject(Fault::new(
        "/blobs/",
        FaultKind::Status {
            status: 403,
            retry_after: None,
        },
        1,
    ));
    env.run(&[]).success();
    assert_eq!(env.count("/acme/tiny/resolve/"), 2);
}

#[test]
fn a_corrupt_chunk_fails_the_hash_and_the_file_is_fetched_again() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: \"*.safetensors\"\n");
    env.hub
        .inject(Fault::new("/blobs/", FaultKind::Corrupt, 1).after(5));
    env.run(&CHUNKED).success();
    assert_content(&env, "acme/tiny", "model.safetensors");
    assert_eq!(
        cdn_ranges(&env).len(),
        26,
        "two full passes of 13 chunks: {:?}",
        cdn_ranges(&env)
    );
}

#[test]
fn connections_that_fail_before_any_answer_are_retried() {
    let env = Env::new();
    env.manifest(LFS);
    env.hub
        .inject(Fault::new("/revision/", FaultKind::Hangup, 2));
    env.hub.inject(Fault::new("/tree/", FaultKind::Hangup, 1));
    env.hub
        .inject(Fault::new("config.json", FaultKind::Hangup, 1));
    env.hub.inject(Fault::new("/blobs/", FaultKind::Hangup, 1));
    env.run(&[]).success();
    assert_eq!(env.count("/api/models/acme/tiny/revision/"), 3);
    no_temporary_files(&env);
}

#[test]
fn a_chunk_that_keeps_failing_fails_the_file_and_keeps_the_rest_for_next_time() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: \"*.safetensors\"\n");
    // The first 4 chunks arrive; every request after them fails, retries included.
    let status = FaultKind::Status {
        status: 500,
        retry_after: None,
    };
    env.hub.inject(Fault::new("/blobs/", status, 1000).after(4));
    let run = env.run(&CHUNKED).failure(1);
    assert!(run.stderr.contains("model.safetensors"), "{}", run.stderr);
    assert!(run.stderr.contains("500"), "{}", run.stderr);
    let files = tree(&env.cache());
    assert!(
        !files.iter().any(|f| f.contains("snapshots/")),
        "nothing is installed: {files:#?}"
    );
    assert!(
        files.iter().any(|f| f.ends_with(".chunks.incomplete")),
        "the finished chunks are on record for the next run: {files:#?}"
    );
    // Once the hub is well again, only what is missing is fetched.
    env.hub.clear_faults();
    env.hub.clear_requests();
    env.run(&CHUNKED).success();
    assert_content(&env, "acme/tiny", "model.safetensors");
    assert!(cdn_ranges(&env).len() < 13, "{:?}", cdn_ranges(&env));
    no_temporary_files(&env);
}

#[test]
fn a_full_disk_is_reported_and_leaves_no_blob_posing_as_complete() {
    let env = Env::new();
    env.manifest(LFS);
    // A 64 KiB file system for the cache: the 200 KB model cannot fit.
    let small = env.dir.path().join("small-disk");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&small)
        .status()
        .is_ok_and(|status| status.success());
    if !mounted {
        // Mounting needs root, as CI has; elsewhere the hint is covered by a unit test.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to mount a tmpfs"
        );
        eprintln!("skipping: cannot mount a small tmpfs here");
        return;
    }
    let output = env
        .cmd(&["--cache-dir", small.to_str().unwrap()])
        .output()
        .unwrap();
    let listing = tree(&small);
    let _ = std::process::Command::new("umount").arg(&small).status();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "the disk is full: free some space or point --cache-dir / HF_HUB_CACHE elsewhere"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("model.safetensors"), "{stderr}");
    let sha = env.hub.repo("model", "acme/tiny").unwrap().commits[1]
        .file("model.safetensors")
        .unwrap()
        .etag()
        .to_owned();
    assert!(
        !listing
            .iter()
            .any(|f| f == &format!("models--acme--tiny/blobs/{sha}")),
        "{listing:?}"
    );
}
