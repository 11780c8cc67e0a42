//! The reference client (huggingface_hub 2.4.0, `hf download` with Xet off) against the test
//! hub behaving like today's Hub, one switch at a time (hf-protocol.md 1.10): it still
//! downloads, and the cache it writes is what the switch implies. This is what proves the
//! switches faithful enough to hold facehugger to.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::interop::{reference, reference_cmd};
use crate::support::{Env, Options, Origin, python};

/// Checks that every file of acme/tiny@main is in the cache with the hub's bytes.
#[track_caller]
fn assert_tiny_downloaded(env: &Env) -> PathBuf {
    let main = env.commit("model", "acme/tiny", "main");
    let snapshot = env
        .repo_dir("models--acme--tiny")
        .join(format!("snapshots/{main}"));
    let commit = env.hub.repo("model", "acme/tiny").unwrap().commit(&main);
    for file in &commit.unwrap().files {
        let on_disk = std::fs::read(snapshot.join(&file.path)).unwrap();
        assert!(on_disk == file.content().unwrap(), "{} differs", file.path);
    }
    snapshot
}

#[test]
fn the_reference_client_keeps_xet_hashes_in_its_tree_cache() {
    let Some(python) = python() else { return };
    let env = Env::with_options(Options {
        xet: true,
        ..Options::default()
    });
    reference(&env, &python, "hf", &["download", "acme/tiny"], false);
    assert_tiny_downloaded(&env);

    let main = env.commit("model", "acme/tiny", "main");
    let trees = env
        .repo_dir("models--acme--tiny")
        .join(format!("trees/{main}.json"));
    let cached: Value = serde_json::from_slice(&std::fs::read(trees).unwrap()).unwrap();
    let files = cached["files"].as_object().unwrap();
    let commit = env.hub.repo("model", "acme/tiny").unwrap().commit(&main);
    let commit = commit.unwrap();
    assert_eq!(files.len(), commit.files.len());
    for file in &commit.files {
        let entry = &files[&file.path];
        match file.xet_hash() {
            Some(hash) => assert_eq!(entry["xet_hash"], hash.as_str(), "{}", file.path),
            None => assert!(entry.get("xet_hash").is_none(), "{}: {entry}", file.path),
        }
    }
    // With Xet off, the client fetches over HTTP and never asks for a Xet token.
    assert_eq!(env.count("/api/models/acme/tiny/xet-read-token"), 0);
}

#[test]
fn the_reference_client_never_reuses_a_signed_url_for_another_range() {
    let Some(python) = python() else { return };
    // With and without Xet metadata: with it, the client GETs the resolve URL again and follows
    // its 302; without it, it GETs the location its HEAD got.
    for xet in [false, true] {
        let env = Env::with_options(Options {
            sign_ranges: true,
            xet,
            ..Options::default()
        });
        reference(&env, &python, "hf", &["download", "acme/tiny"], false);
        assert_tiny_downloaded(&env);
        let cdn: Vec<_> = env
            .requests()
            .into_iter()
            .filter(|r| r.origin == Origin::Cdn)
            .collect();
        // One whole-file GET for each of the two LFS files, on a signed URL.
        assert_eq!(cdn.len(), 2, "xet {xet}: {cdn:?}");
        for request in &cdn {
            assert!(request.url.contains("&signature="), "{}", request.url);
            assert_eq!(request.header("range"), None);
            assert_eq!(request.status, Some(200), "xet {xet}: {}", request.url);
        }
        assert_eq!(env.hub.counts().refused, 0);
    }
}

#[test]
fn the_reference_client_cannot_fetch_a_file_above_the_unranged_limit() {
    let Some(python) = python() else { return };
    // At the limit, everything downloads: the largest file of acme/tiny has 200 000 bytes.
    let env = Env::with_options(Options {
        max_unranged_bytes: Some(200_000),
        ..Options::default()
    });
    reference(&env, &python, "hf", &["download", "acme/tiny"], false);
    assert_tiny_downloaded(&env);

    // One byte below, its one unranged GET is refused and the download fails, as it does on
    // the Hub (which the reference client avoids by refusing files of 50 GB or more itself).
    let env = Env::with_options(Options {
        max_unranged_bytes: Some(199_999),
        ..Options::default()
    });
    let output = reference_cmd(
        &env,
        &python,
        "hf",
        &["download", "acme/tiny", "model.safetensors"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("Bad request"), "{stderr}");
    let cdn: Vec<_> = env
        .requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Cdn)
        .collect();
    assert_eq!(cdn.len(), 1, "{cdn:?}");
    assert_eq!((cdn[0].header("range"), cdn[0].status), (None, Some(400)));
}

#[test]
fn the_reference_client_waits_out_the_resolve_rate_limit() {
    let Some(python) = python() else { return };
    // acme/tiny takes 20 resolves (a HEAD for each of its 11 files, a GET for each of the 9
    // outside LFS), sent from 8 threads at once: a window of 10 cannot hold them all.
    let env = Env::with_options(Options {
        resolve_rate_limit: Some((10, Duration::from_secs(2))),
        ..Options::default()
    });
    let output = reference_cmd(&env, &python, "hf", &["download", "acme/tiny"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_tiny_downloaded(&env);

    let counts = env.hub.counts();
    assert!(counts.rate_limited > 0, "{counts:?}");
    assert_eq!(counts.resolves, 20 + counts.rate_limited, "{counts:?}");
    // The 429s carry no Retry-After: the client waited because it read `RateLimit` (t + 1 s;
    // without it the message would be "Retrying in 1s").
    assert!(stderr.contains("Rate limited. Waiting"), "{stderr}");
}

#[test]
fn a_rate_limit_pauses_every_worker_until_its_window_resets() {
    // 30 files, 10 resolves per 2 s window: three windows at least. The Hub often sends no
    // `Retry-After` with its 429s, sometimes one with the same seconds as `RateLimit`.
    for retry_after in [false, true] {
        let env = Env::with_options(Options {
            resolve_rate_limit: Some((10, Duration::from_secs(2))),
            rate_limit_retry_after: retry_after,
            ..Options::default()
        });
        env.manifest("models:\n  - repo: acme/many\n");
        let run = env.run(&[]).success();
        assert!(
            run.stderr
                .contains("warning: rate limited by the Hub: waiting 3 s; 10 resolves per 2 s"),
            "{}",
            run.stderr
        );
        // Every worker waited for the window to reset (an answer that says none is left
        // pauses them before a 429 does): each file's resolve was refused at most once, in
        // the first window, when they were all sent at once. (`hf download` gets 55 429s.)
        let counts = env.hub.counts();
        assert_eq!(counts.resolves, 30 + counts.rate_limited, "{counts:?}");
        assert!(
            counts.rate_limited <= 20,
            "retry-after {retry_after}: {counts:?}"
        );
    }
}

#[test]
fn the_reference_client_waits_out_a_rate_limit_that_says_retry_after() {
    let Some(python) = python() else { return };
    let env = Env::with_options(Options {
        resolve_rate_limit: Some((10, Duration::from_secs(2))),
        rate_limit_retry_after: true,
        ..Options::default()
    });
    reference(&env, &python, "hf", &["download", "acme/tiny"], false);
    assert_tiny_downloaded(&env);
    assert!(env.hub.counts().rate_limited > 0);
}

#[test]
fn signed_urls_that_expire_in_seconds_are_never_used_late() {
    // Bridge URLs good for one to two seconds (their expiry is in whole seconds, rounded
    // down), on a hub slow enough (100 KB/s per connection) that each connection's part of
    // the 5 MB file takes seconds: a client that kept a URL for later (a retry, a stolen half
    // of a segment) would get 403s.
    let python = python();
    let env = Env::with_options(Options {
        sign_ranges: true,
        signed_url_ttl: Duration::from_secs(2),
        bandwidth: Some(100_000),
        latency: Duration::from_millis(20),
        ..Options::default()
    });
    env.manifest("models:\n  - repo: acme/big\n");
    env.run(&["--chunk-size", "1"]).success();
    let counts = env.hub.counts();
    assert_eq!(counts.refused, 0, "{counts:?}");
    let snapshot = env.repo_dir("models--acme--big").join("snapshots");
    assert!(snapshot.is_dir());
    if let Some(python) = python {
        std::fs::remove_dir_all(env.cache()).unwrap();
        reference(&env, &python, "hf", &["download", "acme/tiny"], false);
        assert_tiny_downloaded(&env);
        assert_eq!(env.hub.counts().refused, 0);
    }
}

#[test]
fn facehugger_syncs_from_a_hub_with_every_switch_on() {
    // Xet listings, range-signed bridge URLs, no unranged GET of any LFS file, a rate limit.
    let env = Env::with_options(Options {
        xet: true,
        sign_ranges: true,
        max_unranged_bytes: Some(1),
        resolve_rate_limit: Some((5, Duration::from_secs(1))),
        ..Options::default()
    });
    env.manifest("models:\n  - repo: acme/tiny\n  - repo: acme/big\n");
    // Small pieces: the 200 KB and 5 MB files are split across connections.
    env.run(&["--chunk-size", "64"]).success();
    assert_tiny_downloaded(&env);
    let counts = env.hub.counts();
    assert_eq!(counts.refused, 0, "{counts:?}");
    let cdn: Vec<_> = env
        .requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Cdn)
        .collect();
    assert!(
        cdn.iter()
            .all(|r| r.header("range").is_some() && r.status == Some(206)),
        "{:?}",
        cdn.iter()
            .map(|r| (r.header("range"), r.status))
            .collect::<Vec<_>>()
    );
    // The tree cache keeps the Xet hashes, as the reference client writes them.
    let main = env.commit("model", "acme/tiny", "main");
    let trees = env
        .repo_dir("models--acme--tiny")
        .join(format!("trees/{main}.json"));
    let text = std::fs::read_to_string(trees).unwrap();
    let commit = env.hub.repo("model", "acme/tiny").unwrap().commit(&main);
    for file in &commit.unwrap().files {
        if let Some(hash) = file.xet_hash() {
            assert!(
                text.contains(&format!("\"xet_hash\": \"{hash}\"")),
                "{text}"
            );
        }
    }
}
