//! Interrupted syncs: killed or Ctrl-C'd at any moment, the cache stays valid, and the next sync
//! resumes each partial file from where it stopped and verifies it whole.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::support::{Env, Options, Origin, Run, tree};

const MODEL: &str = "models:\n  - repo: acme/tiny\n    include: \"*.safetensors\"\n";

/// A hub whose connections crawl, so that a sync can be caught half-way.
fn slow_env() -> Env {
    Env::with_options(Options {
        bandwidth: Some(100_000),
        ..Options::default()
    })
}

fn partials(env: &Env) -> Vec<(PathBuf, u64)> {
    let blobs = env.repo_dir("models--acme--tiny").join("blobs");
    let Ok(entries) = std::fs::read_dir(blobs) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".incomplete"))
        .filter(|e| {
            !e.file_name()
                .to_string_lossy()
                .ends_with(".chunks.incomplete")
        })
        .map(|e| (e.path(), e.metadata().unwrap().len()))
        .collect()
}

/// Starts a sync and waits until its partial file holds at least `bytes` (chunked downloads
/// preallocate, so for them it waits for the chunk record instead).
// The caller signals and waits for the child it gets back.
#[allow(clippy::zombie_processes)]
fn start_and_wait(env: &Env, args: &[&str], bytes: u64) -> Child {
    let mut child = env
        .std_cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let record = tree(&env.cache())
            .iter()
            .any(|f| f.ends_with(".chunks.incomplete"));
        let grown = partials(env).iter().any(|(_, len)| *len >= bytes);
        if (grown && !args.contains(&"--chunk-size")) || record {
            return child;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the download never started");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to the child, from this process (no `kill` command: slim images have none).
fn signal(child: &Child, signal: Signal) {
    kill_process(Pid::from_child(child), signal)
        .unwrap_or_else(|e| panic!("signal {signal:?} to {}: {e}", child.id()));
}

fn assert_installed(env: &Env) {
    let main = env.commit("model", "acme/tiny", "main");
    let got = std::fs::read(
        env.repo_dir("models--acme--tiny")
            .join(format!("snapshots/{main}/model.safetensors")),
    )
    .unwrap();
    let file = env
        .hub
        .repo("model", "acme/tiny")
        .unwrap()
        .commit(&main)
        .unwrap()
        .file("model.safetensors")
        .unwrap()
        .content()
        .unwrap();
    assert!(got == file, "{} bytes installed", got.len());
    assert!(partials(env).is_empty(), "{:?}", partials(env));
    assert!(
        !tree(&env.cache())
            .iter()
            .any(|f| f.contains(".incomplete") || f.ends_with(".tmp"))
    );
}

fn cdn_ranges(env: &Env) -> Vec<String> {
    env.requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Cdn)
        .map(|r| r.header("range").unwrap_or("-").to_owned())
        .collect()
}

#[test]
fn a_killed_sync_resumes_where_it_stopped() {
    let env = slow_env();
    env.manifest(MODEL);
    let mut child = start_and_wait(&env, &[], 40_000);
    signal(&child, Signal::KILL);
    child.wait().unwrap();
    let (_, kept) = partials(&env)[0].clone();
    assert!((40_000..200_000).contains(&kept), "{kept}");
    // Nothing half-written is visible to other clients: no blob, no snapshot file.
    let main = env.commit("model", "acme/tiny", "main");
    assert!(
        !env.repo_dir("models--acme--tiny")
            .join(format!("snapshots/{main}/model.safetensors"))
            .exists()
    );

    env.hub.clear_requests();
    env.run(&[]).success();
    let ranges = cdn_ranges(&env);
    assert_eq!(
        ranges,
        [format!("bytes={kept}-199999")],
        "only the rest was fetched"
    );
    assert_installed(&env);
}

#[test]
fn ctrl_c_stops_promptly_and_keeps_the_partial_download() {
    let env = slow_env();
    env.manifest(MODEL);
    let child = start_and_wait(&env, &[], 20_000);
    let stopped = Instant::now();
    signal(&child, Signal::INT);
    let run = Run::from(child.wait_with_output().unwrap());
    assert!(
        stopped.elapsed() < Duration::from_secs(2),
        "{:?}",
        stopped.elapsed()
    );
    assert_eq!(run.code, 130, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("interrupted: partial downloads are kept; the next sync resumes them"),
        "{}",
        run.stderr
    );
    assert_eq!(partials(&env).len(), 1);

    env.hub.clear_requests();
    env.run(&[]).success();
    assert!(
        cdn_ranges(&env)[0].starts_with("bytes="),
        "{:?}",
        cdn_ranges(&env)
    );
    assert_installed(&env);
}

#[test]
fn a_segmented_download_killed_again_and_again_fetches_little_twice() {
    // 5 MB over two connections capped at 1 MB/s (about 2.5 s), killed three times on the way.
    let env = Env::with_options(Options {
        bandwidth: Some(1_000_000),
        ..Options::default()
    });
    env.manifest("models:\n  - repo: acme/big\n    include: \"*.safetensors\"\n");
    let args = ["--connections-per-file", "2"];
    let blobs = env.repo_dir("models--acme--big").join("blobs");
    let kills = 3;
    for _ in 0..kills {
        #[allow(clippy::zombie_processes)] // waited for below
        let mut child = env
            .std_cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Killed once its resume record says it has made progress, and a moment later.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !recorded(&blobs) {
            assert!(Instant::now() < deadline, "the download never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(300));
        signal(&child, Signal::KILL);
        child.wait().unwrap();
    }
    env.run(&args).success();
    let main = env.commit("model", "acme/big", "main");
    let size = std::fs::metadata(
        env.repo_dir("models--acme--big")
            .join(format!("snapshots/{main}/model.safetensors")),
    )
    .unwrap()
    .len();
    assert_eq!(size, 5_000_000);
    // Each kill loses at most what a connection had not written or recorded yet (about a
    // tenth of a second of it, 100-150 KB here; a few MiB on a fast link).
    let sent = env.hub.counts().cdn_body_bytes;
    let lost_per_kill = 2 * 250_000;
    assert!(
        sent <= size + kills * lost_per_kill,
        "{sent} bytes sent for a file of {size}, killed {kills} times"
    );
}

/// Whether a resume record (with some progress) is in `blobs`.
fn recorded(blobs: &std::path::Path) -> bool {
    std::fs::read_dir(blobs)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .ends_with(".chunks.incomplete")
                && std::fs::read_to_string(entry.path()).is_ok_and(|text| text.lines().count() > 1)
        })
}

#[test]
fn a_corrupt_partial_left_by_another_writer_is_never_installed() {
    let env = Env::new();
    env.manifest(MODEL);
    let main = env.commit("model", "acme/tiny", "main");
    let sha = env
        .hub
        .repo("model", "acme/tiny")
        .unwrap()
        .commit(&main)
        .unwrap()
        .file("model.safetensors")
        .unwrap()
        .etag()
        .to_owned();
    let blobs = env.repo_dir("models--acme--tiny").join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(
        blobs.join(format!("{sha}.deadbeef.incomplete")),
        vec![7u8; 50_000],
    )
    .unwrap();
    env.run(&[]).success();
    // The garbage prefix failed verification; the blob was fetched whole and is right.
    assert_eq!(cdn_ranges(&env), ["bytes=50000-199999", "bytes=0-199999"]);
    assert_installed(&env);
}

#[test]
fn a_resume_record_that_claims_more_than_the_disk_holds_costs_a_fresh_download() {
    // A partial of the right size whose record says every byte arrived, though the second
    // half is still the zeros it was preallocated with (a power cut after the record was
    // written, before the bytes reached the disk).
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/big\n    include: \"*.safetensors\"\n");
    let main = env.commit("model", "acme/big", "main");
    let file = env
        .hub
        .repo("model", "acme/big")
        .unwrap()
        .commit(&main)
        .unwrap()
        .file("model.safetensors")
        .unwrap()
        .clone();
    let content = file.content().unwrap();
    let blobs = env.repo_dir("models--acme--big").join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let mut partial = content[..content.len() / 2].to_vec();
    partial.resize(content.len(), 0);
    let etag = file.etag();
    std::fs::write(blobs.join(format!("{etag}.deadbeef.incomplete")), partial).unwrap();
    std::fs::write(
        blobs.join(format!("{etag}.deadbeef.chunks.incomplete")),
        format!("facehugger segments 1\n0 {}\n", content.len()),
    )
    .unwrap();

    env.run(&["--chunk-size", "1"]).success();
    // Nothing was left to fetch by the record, the whole failed verification, and the file
    // was fetched again from the start; the installed blob is right.
    let ranges = cdn_ranges(&env);
    assert!(
        ranges.iter().any(|range| range.starts_with("bytes=0-")),
        "{ranges:?}"
    );
    let snapshot = env
        .repo_dir("models--acme--big")
        .join(format!("snapshots/{main}/model.safetensors"));
    assert!(std::fs::read(snapshot).unwrap() == content);
    let left: Vec<_> = tree(&blobs)
        .into_iter()
        .filter(|name| name.contains(".incomplete"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
