//! A hostile hub: the test hub's faults make it answer what no real Hub answers (file paths
//! that leave the snapshot, etags that are paths, redirects to other schemes, in loops or to
//! other origins, lying lengths, oversized answers and headers), and symbolic links planted in
//! the cache point outside it. For each, facehugger must fail with a clear error and exit code 1
//! (or, where the answer is merely unusual, succeed safely), and in every case:
//! - write nothing outside the repo's own cache folders (everything else under the test's
//!   temporary folder is compared, contents included, before and after);
//! - create no file named like the target of an escape (`x`, `abs`, `passwd`);
//! - send the token to no origin but the endpoint's, and print it nowhere.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_hub::{Fault, FaultKind};

use crate::support::{Env, Options, Origin, Run, TOKEN, TestHub};

const TINY: &str = "models:\n  - repo: acme/tiny\n";
/// One small regular file: the download tests fail on it alone.
const CONFIG_ONLY: &str = "models:\n  - repo: acme/tiny\n    include: config.json\n";
/// One file in a folder.
const SUB_ONLY: &str = "models:\n  - repo: acme/tiny\n    include: sub/top.txt\n";
/// One LFS file, served through a redirect to the CDN.
const LFS_ONLY: &str = "models:\n  - repo: acme/tiny\n    include: model.safetensors\n";
/// An error longer than this echoes what the hub sent instead of describing it.
const MAX_ERROR_BYTES: usize = 1000;

/// What a sync of acme/tiny may create or change under the test's folder: the repo's cache
/// folder, its lock folder, the cache tag and the project's lock file (and the folders holding
/// them). Anything else changing is a write outside.
fn allowed(entry: &str) -> bool {
    // A successful sync also records its project for `gc`, and the snapshots it found
    // complete, under $HF_HOME.
    ["cache/", "cache/.locks/", "hf-home/", "hf-home/facehugger/"].contains(&entry)
        || [
            "cache/models--acme--tiny/",
            "cache/.locks/models--acme--tiny/",
            "cache/CACHEDIR.TAG",
            "project/facehugger.lock",
            "hf-home/facehugger/projects/",
            "hf-home/facehugger/fresh/",
        ]
        .iter()
        .any(|prefix| entry.starts_with(prefix))
}

/// Every folder (`name/`), link (`name -> target`) and file (`name = contents`) under `root`,
/// without following links, sorted.
fn listing(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push(format!("{name} -> {}", target.display()));
            } else if kind.is_dir() {
                out.push(format!("{name}/"));
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                let contents = if bytes.len() <= 256 {
                    String::from_utf8_lossy(&bytes).into_owned()
                } else {
                    format!("<{} bytes>", bytes.len())
                };
                out.push(format!("{name} = {contents}"));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// What a hostile hub must not be able to change.
fn outside(env: &Env) -> Vec<String> {
    let mut entries = listing(env.dir.path());
    entries.retain(|entry| !allowed(entry));
    entries
}

/// Names an escaping path would have created, anywhere under the test's folder.
fn escapes(env: &Env) -> Vec<String> {
    let mut found: Vec<String> = listing(env.dir.path())
        .into_iter()
        .filter(|entry| {
            let path = entry.split([' ']).next().unwrap_or_default();
            let name = path.trim_end_matches('/').rsplit('/').next();
            matches!(name, Some("x" | "abs" | "passwd"))
        })
        .collect();
    for path in ["/x", "/abs"] {
        if Path::new(path).exists() {
            found.push(path.to_owned());
        }
    }
    found
}

/// `facehugger ARGS` with the token set.
fn run(env: &Env, args: &[&str]) -> Run {
    Run::from(env.cmd(args).env("HF_TOKEN", TOKEN).output().unwrap())
}

/// The token was printed nowhere, and only the endpoint (never its CDN, never `others`)
/// received it.
#[track_caller]
fn token_kept(env: &Env, run: &Run, others: &[&TestHub]) {
    assert!(
        !run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN),
        "the token was printed:\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    for request in env.requests() {
        if request.header("authorization").is_some() {
            assert_eq!(
                request.origin,
                Origin::Hub,
                "the token reached the CDN: {}",
                request.url
            );
        }
    }
    for other in others {
        for request in other.requests() {
            assert!(
                request.header("authorization").is_none(),
                "the token reached another origin: {:?} {}",
                request.origin,
                request.url
            );
        }
    }
}

/// Runs facehugger with `args` against the hostile hub: it must fail with exit code 1, a short
/// error containing each of `messages`, and keep every guarantee of this module.
#[track_caller]
fn refused(env: &Env, args: &[&str], messages: &[&str]) -> Run {
    refused_with_others(env, args, messages, &[])
}

#[track_caller]
fn refused_with_others(env: &Env, args: &[&str], messages: &[&str], others: &[&TestHub]) -> Run {
    let before = outside(env);
    let escaped_before = escapes(env);
    let run = run(env, args).failure(1);
    for message in messages {
        assert!(
            run.stderr.contains(message),
            "expected {message:?} in stderr:\n{}",
            run.stderr
        );
    }
    let error = error_of(&run);
    assert!(
        error.len() < MAX_ERROR_BYTES,
        "a short error: {} bytes:\n{error}",
        error.len(),
    );
    assert_eq!(
        outside(env),
        before,
        "written outside the repo's cache folders"
    );
    assert_eq!(escapes(env), escaped_before, "an escaping path was written");
    token_kept(env, &run, others);
    run
}

/// The error a run printed: stderr from `error: ` on (status lines come before).
#[track_caller]
fn error_of(run: &Run) -> &str {
    let start = run.stderr.find("error: ").expect("an error is printed");
    &run.stderr[start..]
}

/// Runs facehugger with `args`: it must succeed and keep every guarantee of this module.
#[track_caller]
fn succeeds(env: &Env, args: &[&str], others: &[&TestHub]) -> Run {
    let before = outside(env);
    let run = run(env, args).success();
    assert_eq!(
        outside(env),
        before,
        "written outside the repo's cache folders"
    );
    assert!(escapes(env).is_empty());
    token_kept(env, &run, others);
    run
}

fn main_commit(env: &Env) -> String {
    env.commit("model", "acme/tiny", "main")
}

/// `{endpoint}/acme/tiny/resolve/{commit}/{path}`.
fn resolve_url(env: &Env, path: &str) -> String {
    format!(
        "{}/acme/tiny/resolve/{}/{path}",
        env.hub.endpoint(),
        main_commit(env)
    )
}

/// The start of the error for a listing refused by the client.
fn listing_error(env: &Env) -> String {
    let commit = main_commit(env);
    format!(
        "error: acme/tiny@{commit}: listing the files of `acme/tiny` at {commit}: unexpected answer from {}/api/models/acme/tiny/tree/{commit}: ",
        env.hub.endpoint()
    )
}

/// The start of the error for a refused download of config.json.
fn download_error(env: &Env) -> String {
    format!(
        "error: acme/tiny: config.json: downloading `config.json` of `acme/tiny`: unexpected answer from {}",
        env.hub.endpoint()
    )
}

/// The start of the error for a refused resolution of `main`.
fn resolve_error(env: &Env) -> String {
    format!(
        "error: acme/tiny@main: resolving `main` of `acme/tiny`: unexpected answer from {}/api/models/acme/tiny/revision/main: ",
        env.hub.endpoint()
    )
}

/// A regular file entry of a tree page, with a valid blob id.
fn file_entry(path: &str) -> Value {
    json!({ "type": "file", "oid": "0123456789abcdef0123456789abcdef01234567", "size": 3, "path": path })
}

/// A folder outside the cache, with a file in it, for links and absolute paths to point at.
fn outside_folder(env: &Env) -> std::path::PathBuf {
    let folder = env.dir.path().join("outside");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("keep.txt"), "untouched\n").unwrap();
    folder
}

// 1. File paths.

#[test]
fn file_paths_that_leave_the_snapshot_are_refused() {
    let env = Env::new();
    env.manifest(TINY);
    let absolute = outside_folder(&env).join("abs");
    let segments = "that is absolute or has empty, `.`, `..` or overlong segments";
    let long_segment = format!("a/{}", "b".repeat(300));
    let cases: Vec<(String, String)> = [
        "../x",
        "../../../../x",
        "../../../../../x",
        "/abs",
        absolute.to_str().unwrap(),
        "a/../../x",
        "a/b/../../../x",
        ".",
        "..",
        "./x",
        "a/./x",
        "a/..",
        "a//x",
        "a/",
    ]
    .iter()
    .map(|path| (path.to_string(), format!("`{path}` {segments}")))
    .chain([
        (
            "a\\..\\x".to_owned(),
            "`a\\..\\x` that contains a backslash or NUL".to_owned(),
        ),
        (
            "..\\..\\..\\..\\x".to_owned(),
            "that contains a backslash or NUL".to_owned(),
        ),
        (
            "x\0y".to_owned(),
            "`x\\u{0}y` that contains a backslash or NUL".to_owned(),
        ),
        (
            "a".repeat(10_000),
            "refusing a file path of 10000 bytes (at most 4096 are allowed)".to_owned(),
        ),
        (
            String::new(),
            "refusing a file path that is empty".to_owned(),
        ),
        // Shown cut short, but refused all the same.
        (long_segment, "bbb…bbb".to_owned()),
    ])
    .collect();
    let prefix = listing_error(&env);
    for (path, message) in &cases {
        let entries = vec![file_entry(path)];
        env.hub
            .inject(Fault::new("/tree/", FaultKind::TreeEntries(entries), 1));
        let run = refused(&env, &[], &[&prefix, "refusing a file path", message]);
        assert_eq!(error_of(&run).lines().count(), 1, "{}", run.stderr);
    }
    // Nothing reached the cache: the whole listing is refused before anything is written.
    assert!(!env.cache().join("models--acme--tiny").exists());
}

#[test]
fn a_bad_or_failing_later_page_fails_the_whole_listing() {
    // Pages are read while the next ones are asked for: a fault on the third page must still
    // fail the listing (and never hang it), with nothing written to the cache.
    let env = Env::with_options(Options {
        page_size: 2,
        ..Options::default()
    });
    env.manifest(TINY);
    let prefix = listing_error(&env);
    env.hub.inject(
        Fault::new(
            "/tree/",
            FaultKind::TreeEntries(vec![file_entry("../escape")]),
            1,
        )
        .after(2),
    );
    refused(&env, &[], &[&prefix, "refusing a file path"]);
    assert!(!env.cache().join("models--acme--tiny").exists());
    let failing = FaultKind::Status {
        status: 404,
        retry_after: None,
    };
    env.hub.inject(Fault::new("/tree/", failing, 100).after(2));
    let run = refused(&env, &[], &["404"]);
    assert!(
        !env.cache().join("models--acme--tiny").exists(),
        "{}",
        run.stderr
    );
    // Whole again, the listing takes every page.
    env.hub.clear_faults();
    succeeds(&env, &[], &[]);
}

#[test]
fn folder_entries_never_become_paths() {
    let env = Env::new();
    env.manifest(TINY);
    outside_folder(&env);
    let folder =
        json!({ "type": "directory", "oid": "0".repeat(40), "size": 0, "path": "../../../../x" });
    env.hub.inject(Fault::new(
        "/tree/",
        FaultKind::TreeEntries(vec![folder]),
        1,
    ));
    succeeds(&env, &[], &[]);
}

// 2. Etags and commit ids.

#[test]
fn etags_that_are_not_plain_hex_are_refused() {
    let env = Env::new();
    env.manifest(TINY);
    let blob = "0123456789abcdef0123456789abcdef01234567";
    let sha = "0123456789abcdef".repeat(4);
    let oid_rule = "a git blob id is 40 lowercase hex digits";
    let lfs_rule = "a sha256 is 64 lowercase hex digits";
    let oid = |oid: &str| json!({ "type": "file", "oid": oid, "size": 3, "path": "evil.bin" });
    let lfs = |lfs_oid: &str| {
        json!({
            "type": "file", "oid": blob, "size": 3, "path": "evil.bin",
            "lfs": { "oid": lfs_oid, "size": 3, "pointerSize": 128 }
        })
    };
    let cases = [
        (
            oid("../../x"),
            "`evil.bin` has an invalid oid `../../x`",
            oid_rule,
        ),
        (oid(&blob.to_uppercase()), "has an invalid oid", oid_rule),
        (oid(&blob[1..]), "has an invalid oid", oid_rule),
        (oid(&format!("{blob}0")), "has an invalid oid", oid_rule),
        (
            oid(&format!("W/\"{blob}\"")),
            "has an invalid oid `W/\"",
            oid_rule,
        ),
        (oid(&format!("\"{blob}\"")), "has an invalid oid", oid_rule),
        (oid(""), "has an invalid oid ``", oid_rule),
        (
            json!({ "type": "file", "size": 3, "path": "evil.bin" }),
            "has an invalid oid ``",
            oid_rule,
        ),
        (
            lfs("../../x"),
            "`evil.bin` has an invalid LFS oid `../../x`",
            lfs_rule,
        ),
        (lfs(&sha.to_uppercase()), "has an invalid LFS oid", lfs_rule),
        (lfs(&sha[1..]), "has an invalid LFS oid", lfs_rule),
        (lfs(&format!("{sha}0")), "has an invalid LFS oid", lfs_rule),
        (
            lfs(&format!("W/\"{sha}\"")),
            "has an invalid LFS oid `W/\"",
            lfs_rule,
        ),
        (
            lfs(&format!("sha256:{sha}")),
            "has an invalid LFS oid",
            lfs_rule,
        ),
        (
            lfs(&"x".repeat(100_000)),
            "has an invalid LFS oid `xxx",
            lfs_rule,
        ),
    ];
    let prefix = listing_error(&env);
    for (entry, message, rule) in cases {
        env.hub
            .inject(Fault::new("/tree/", FaultKind::TreeEntries(vec![entry]), 1));
        refused(&env, &[], &[&prefix, message, rule]);
    }
}

#[test]
fn commit_ids_that_are_not_plain_hex_are_refused() {
    let env = Env::new();
    env.manifest(TINY);
    let commit = main_commit(&env);
    let prefix = resolve_error(&env);
    for sha in [
        "../../x".to_owned(),
        commit.to_uppercase(),
        commit[1..].to_owned(),
        format!("{commit}/../../x"),
        "x".repeat(100_000),
    ] {
        let answer = json!({ "id": "acme/tiny", "sha": sha });
        env.hub
            .inject(Fault::new("/revision/", FaultKind::JsonBody(answer), 1));
        refused(&env, &[], &[&prefix, "`sha` is not a 40-hex commit: `"]);
    }
    assert!(!env.cache().join("models--acme--tiny").exists());
}

// 3. Redirects.

#[test]
fn redirects_to_other_schemes_are_refused() {
    let env = Env::new();
    env.manifest(CONFIG_ONLY);
    let prefix = download_error(&env);
    for location in [
        "file:///etc/passwd",
        "ftp://127.0.0.1/x",
        "gopher://127.0.0.1:70/x",
    ] {
        env.hub.inject(Fault::new(
            "/resolve/",
            FaultKind::Redirect(location.to_owned()),
            1,
        ));
        let expected = format!("a redirect to `{location}`: only http and https URLs are followed");
        refused(&env, &[], &[&prefix, &expected]);
    }
    // The same on the API.
    env.hub.inject(Fault::new(
        "/revision/",
        FaultKind::Redirect("file:///etc/passwd".to_owned()),
        1,
    ));
    let expected = format!(
        "{}a redirect to `file:///etc/passwd`: only http and https URLs are followed",
        resolve_error(&env)
    );
    refused(&env, &[], &[&expected]);
}

#[test]
fn redirect_loops_are_refused() {
    let env = Env::new();
    env.manifest(CONFIG_ONLY);
    let prefix = download_error(&env);
    let a = resolve_url(&env, "config.json");
    let b = format!("{}/elsewhere/b", env.hub.endpoint());
    // A -> B -> A.
    env.hub.inject(Fault::new(
        "/config.json",
        FaultKind::Redirect(b.clone()),
        10,
    ));
    env.hub.inject(Fault::new(
        "/elsewhere/b",
        FaultKind::Redirect(a.clone()),
        10,
    ));
    refused(
        &env,
        &[],
        &[&prefix, &format!("a redirect loop back to {a}")],
    );

    // A -> A, relative.
    let env = Env::new();
    env.manifest(CONFIG_ONLY);
    env.hub.inject(Fault::new(
        "/config.json",
        FaultKind::Redirect("config.json".to_owned()),
        10,
    ));
    let a = resolve_url(&env, "config.json");
    refused(
        &env,
        &[],
        &[
            &download_error(&env),
            &format!("a redirect loop back to {a}"),
        ],
    );
}

#[test]
fn more_than_twenty_redirects_are_refused() {
    let env = Env::new();
    env.manifest(CONFIG_ONLY);
    let endpoint = env.hub.endpoint();
    env.hub.inject(Fault::new(
        "/config.json",
        FaultKind::Redirect(format!("{endpoint}/hop/0/")),
        1,
    ));
    for hop in 0..30 {
        let next = format!("{endpoint}/hop/{}/", hop + 1);
        env.hub.inject(Fault::new(
            &format!("/hop/{hop}/"),
            FaultKind::Redirect(next),
            1,
        ));
    }
    let expected = format!(
        "unexpected answer from {}: more than 20 redirects",
        resolve_url(&env, "config.json")
    );
    refused(&env, &[], &[&expected]);
    let hops = env
        .requests()
        .iter()
        .filter(|r| r.path().starts_with("/hop/"))
        .count();
    assert_eq!(hops, 20, "the hops followed");
}

// 4. Lengths.

#[test]
fn a_body_longer_than_the_listing_says_is_refused() {
    for (manifest, fault_path, file) in [
        (CONFIG_ONLY, "/config.json", "config.json"),
        (LFS_ONLY, "/blobs/", "model.safetensors"),
    ] {
        let env = Env::new();
        env.manifest(manifest);
        let size = env.hub.repo("model", "acme/tiny").unwrap().commits[1]
            .file(file)
            .unwrap()
            .size;
        env.hub
            .inject(Fault::new(fault_path, FaultKind::ExtraBytes(1000), 100));
        let expected = format!(
            "error: acme/tiny: {file}: downloading `{file}` of `acme/tiny`: unexpected answer from the download URL: more than the {size} bytes the listing announced"
        );
        refused(&env, &[], &[&expected]);
        assert_no_blobs(&env);
    }
}

/// No blob was installed, and no snapshot link made.
#[track_caller]
fn assert_no_blobs(env: &Env) {
    let repo = env.cache().join("models--acme--tiny");
    let blobs: Vec<String> = listing(&repo.join("blobs"))
        .into_iter()
        .filter(|name| !name.contains(".incomplete"))
        .collect();
    assert!(blobs.is_empty(), "{blobs:?}");
    assert!(
        listing(&repo.join("snapshots"))
            .iter()
            .all(|e| e.ends_with('/'))
    );
}

#[test]
fn a_content_length_that_lies_never_installs_a_wrong_blob() {
    // Longer than the body: every byte the listing announced arrives, then the connection
    // closes early, every time. The client stops at the announced size and installs the file
    // because it hashes right; the lie changes nothing.
    let env = Env::new();
    env.manifest(CONFIG_ONLY);
    env.hub
        .inject(Fault::new("/config.json", FaultKind::LyingLength(10), 100));
    succeeds(&env, &[], &[]);
    let installed = repo(&env).join(format!("snapshots/{}/config.json", main_commit(&env)));
    assert_eq!(
        std::fs::read_to_string(installed).unwrap(),
        "{\"hidden_size\": 16}\n"
    );

    // Shorter than the body: the client reads what was announced, and never more.
    let env = Env::new();
    env.manifest(CONFIG_ONLY);
    env.hub
        .inject(Fault::new("/config.json", FaultKind::LyingLength(-5), 100));
    refused(
        &env,
        &[],
        &["error: acme/tiny: config.json: downloading `config.json`"],
    );
    assert_no_blobs(&env);

    // A tree page that lies either way.
    for delta in [100, -10] {
        let env = Env::new();
        env.manifest(TINY);
        env.hub
            .inject(Fault::new("/tree/", FaultKind::LyingLength(delta), 100));
        refused(&env, &[], &[&listing_error(&env)]);
    }
}

#[test]
fn a_content_length_that_lies_once_never_installs_a_wrong_blob() {
    // Shorter once: the client stops at the announced length, resumes the rest with a Range
    // request, and installs the file only because the whole of it hashes right.
    let env = Env::new();
    env.manifest(CONFIG_ONLY);
    env.hub
        .inject(Fault::new("/config.json", FaultKind::LyingLength(-5), 1));
    succeeds(&env, &[], &[]);
    let commit = main_commit(&env);
    let installed = repo(&env).join(format!("snapshots/{commit}/config.json"));
    assert_eq!(
        std::fs::read_to_string(installed).unwrap(),
        "{\"hidden_size\": 16}\n"
    );

    // Longer once: every byte arrives, then the connection closes early. Whether the client
    // takes the complete, verified file or gives up (today: its Range request for the "rest"
    // gets a 416), nothing wrong is installed and nothing outside is written.
    let env = Env::new();
    env.manifest(CONFIG_ONLY);
    env.hub
        .inject(Fault::new("/config.json", FaultKind::LyingLength(10), 1));
    let before = outside(&env);
    let run = run(&env, &[]);
    assert_eq!(outside(&env), before);
    token_kept(&env, &run, &[]);
    let installed = repo(&env).join(format!("snapshots/{commit}/config.json"));
    if run.code == 0 {
        assert_eq!(
            std::fs::read_to_string(installed).unwrap(),
            "{\"hidden_size\": 16}\n"
        );
    } else {
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert_no_blobs(&env);
    }
}

// 5. Oversized answers.

const HUGE: u64 = 100 * 1024 * 1024;

#[test]
fn an_oversized_json_answer_is_refused_without_reading_it() {
    for (path, prefix) in [
        ("/tree/", listing_error as fn(&Env) -> String),
        ("/revision/", resolve_error),
    ] {
        let env = Env::new();
        env.manifest(TINY);
        let fault = FaultKind::HugeJson {
            bytes: HUGE,
            content_length: true,
        };
        env.hub.inject(Fault::new(path, fault, 1));
        let started = Instant::now();
        let expected = format!(
            "{}an answer of {HUGE} bytes; the most facehugger reads from the API is 64 MiB",
            prefix(&env)
        );
        refused(&env, &[], &[&expected]);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn an_oversized_json_answer_without_a_length_is_cut_at_the_limit() {
    let env = Env::new();
    env.manifest(TINY);
    let fault = FaultKind::HugeJson {
        bytes: HUGE,
        content_length: false,
    };
    env.hub.inject(Fault::new("/tree/", fault, 1));
    let before = outside(&env);
    let (run, peak_kib) = run_measuring_memory(&env);
    let run = run.failure(1);
    let expected = format!(
        "{}an answer too large; the most facehugger reads from the API is 64 MiB",
        listing_error(&env)
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert_eq!(outside(&env), before);
    token_kept(&env, &run, &[]);
    // It read 64 MiB at most and kept no more than that: well under the 100 MiB sent.
    if Path::new("/proc/self/status").exists() {
        assert!(peak_kib > 0, "the memory was sampled");
    }
    assert!(peak_kib < 100 * 1024, "peak memory {peak_kib} KiB");
}

/// Runs `facehugger` with the token, sampling its peak resident memory (`VmHWM`) until it
/// exits. A sample taken just before the exit is close to the true peak, since the peak is
/// reached while the body is read, not afterwards.
fn run_measuring_memory(env: &Env) -> (Run, u64) {
    let mut child = env
        .std_cmd(&[])
        .env("HF_TOKEN", TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    while child.try_wait().unwrap().is_none() {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(line) = text.lines().find(|line| line.starts_with("VmHWM:"))
        {
            let kib = line
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            peak_kib = peak_kib.max(kib);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let output = child.wait_with_output().unwrap();
    (Run::from(output), peak_kib)
}

#[test]
fn a_huge_response_header_is_refused() {
    let env = Env::new();
    env.manifest(CONFIG_ONLY);
    env.hub
        .inject(Fault::new("/revision/", FaultKind::HugeHeader(1 << 20), 1));
    let expected = format!(
        "{}response headers larger than 64 KiB, which no Hub sends",
        resolve_error(&env)
    );
    refused(&env, &[], &[&expected]);
    assert_eq!(
        env.count("/api/models/acme/tiny/revision/"),
        1,
        "not retried"
    );

    env.hub.inject(Fault::new(
        "/config.json",
        FaultKind::HugeHeader(1 << 20),
        1,
    ));
    refused(
        &env,
        &[],
        &[
            &download_error(&env),
            "response headers larger than 64 KiB, which no Hub sends",
        ],
    );
}

// 6. The token.

/// A second hub: another origin, whose log shows what reached it.
fn other_origin() -> TestHub {
    TestHub::start(test_hub::Options::default()).unwrap()
}

/// The etag of a file of acme/tiny at main.
fn etag_of(env: &Env, path: &str) -> String {
    env.hub.repo("model", "acme/tiny").unwrap().commits[1]
        .file(path)
        .unwrap()
        .etag()
        .to_owned()
}

#[test]
fn a_cdn_on_another_origin_never_gets_the_token() {
    let env = Env::new();
    env.manifest(LFS_ONLY);
    let other = other_origin();
    // The Hub's redirect points at another server's CDN (same host, another port)...
    let location = format!(
        "{}/blobs/{}",
        other.cdn_origin(),
        etag_of(&env, "model.safetensors")
    );
    env.hub.inject(Fault::new(
        "/model.safetensors",
        FaultKind::Redirect(location),
        1,
    ));
    succeeds(&env, &[], &[&other]);
    assert_eq!(other.requests().len(), 1);

    // ... or at the endpoint's own server under another host name: another origin too.
    let env = Env::new();
    env.manifest(CONFIG_ONLY);
    let port = env.hub.endpoint().rsplit(':').next().unwrap().to_owned();
    let commit = main_commit(&env);
    let location = format!("http://localhost:{port}/acme/tiny/resolve/{commit}/config.json");
    env.hub
        .inject(Fault::new("/config.json", FaultKind::Redirect(location), 1));
    succeeds(&env, &[], &[]);
    let downloads: Vec<_> = env
        .requests()
        .into_iter()
        .filter(|r| r.path().ends_with("/config.json"))
        .collect();
    assert_eq!(downloads.len(), 2);
    assert!(downloads[0].header("authorization").is_some());
    assert!(downloads[1].header("authorization").is_none());
}

#[test]
fn a_next_page_on_another_origin_is_refused() {
    let env = Env::new();
    env.manifest(TINY);
    let other = other_origin();
    let commit = main_commit(&env);
    for origin in [other.endpoint(), env.hub.cdn_origin()] {
        let next = format!("{origin}/api/models/acme/tiny/tree/{commit}?cursor=1");
        env.hub
            .inject(Fault::new("/tree/", FaultKind::NextPage(next), 1));
        let expected = format!(
            "{}the next page is on another origin, {origin}: refused, since the token would go there",
            listing_error(&env),
        );
        refused_with_others(&env, &[], &[&expected], &[&other]);
    }
    assert!(
        other.requests().is_empty(),
        "the other origin was never asked"
    );
    assert!(env.requests().iter().all(|r| r.origin == Origin::Hub));
}

#[test]
fn a_redirect_back_to_the_endpoint_from_elsewhere_gets_no_token() {
    let env = Env::new();
    env.manifest(LFS_ONLY);
    let other = other_origin();
    // The Hub sends the download to another origin, which sends it back to the Hub.
    let bounce = format!("{}/bounce", other.endpoint());
    env.hub.inject(Fault::new(
        "/model.safetensors",
        FaultKind::Redirect(bounce),
        1,
    ));
    let back = format!("{}?bounced=1", resolve_url(&env, "model.safetensors"));
    other.inject(Fault::new("/bounce", FaultKind::Redirect(back), 1));
    succeeds(&env, &[], &[&other]);
    let resolves: Vec<_> = env
        .requests()
        .into_iter()
        .filter(|r| r.path().ends_with("/model.safetensors"))
        .collect();
    assert_eq!(resolves.len(), 2, "{resolves:?}");
    assert!(resolves[0].header("authorization").is_some());
    assert!(
        resolves[1].header("authorization").is_none(),
        "a URL another origin chose gets no token, even on the endpoint"
    );
}

#[test]
fn a_token_echoed_back_is_never_printed() {
    let env = Env::new();
    env.manifest(CONFIG_ONLY);
    let echo = format!("Invalid token {TOKEN}: \u{1b}[2Jcleared");
    env.hub.inject(Fault::new(
        "/revision/",
        FaultKind::ErrorMessage {
            status: 400,
            message: echo,
        },
        1,
    ));
    let run = refused(&env, &[], &["Invalid token <redacted>: \\u{1b}[2Jcleared"]);
    assert!(
        !run.stderr.contains('\u{1b}'),
        "no terminal escape from the server"
    );

    // In a file path, an etag, a redirect, a JSON error: cut out all the same.
    let entries = [
        file_entry(&format!("../{TOKEN}")),
        json!({ "type": "file", "oid": TOKEN, "size": 3, "path": "a" }),
        json!({ "type": "file", "oid": "0".repeat(40), "size": TOKEN, "path": "a" }),
    ];
    for entry in entries {
        env.hub
            .inject(Fault::new("/tree/", FaultKind::TreeEntries(vec![entry]), 1));
        refused(&env, &[], &[&listing_error(&env), "<redacted>"]);
    }
    let location = format!("ftp://127.0.0.1/{TOKEN}");
    env.hub
        .inject(Fault::new("/config.json", FaultKind::Redirect(location), 1));
    refused(
        &env,
        &[],
        &[&download_error(&env), "ftp://127.0.0.1/<redacted>"],
    );
}

// 7. Links planted in the cache.

/// A cache where `plant` put a link inside acme/tiny's folder, pointing into `outside`.
fn planted(manifest: &str, plant: impl FnOnce(&Env, &Path, &str)) -> Env {
    let env = Env::new();
    env.manifest(manifest);
    let outside = outside_folder(&env);
    let commit = main_commit(&env);
    plant(&env, &outside, &commit);
    env
}

fn link(target: &Path, at: &Path) {
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    crate::support::symlink(target, at);
}

fn repo(env: &Env) -> std::path::PathBuf {
    env.cache().join("models--acme--tiny")
}

const LINK_REFUSED: &str =
    "is a symbolic link, and facehugger never writes through a link inside the cache; remove it";

#[test]
fn a_blobs_folder_that_links_outside_is_refused() {
    let env = planted(CONFIG_ONLY, |env, outside, _| {
        link(outside, &repo(env).join("blobs"));
    });
    let blobs = repo(&env).join("blobs");
    refused(
        &env,
        &[],
        &[&format!(
            "failed to create the blobs folder `{}`: it {LINK_REFUSED}",
            blobs.display()
        )],
    );
}

#[test]
fn a_snapshot_folder_that_links_outside_is_refused() {
    let env = planted(SUB_ONLY, |env, outside, commit| {
        link(outside, &repo(env).join(format!("snapshots/{commit}/sub")));
    });
    let sub = repo(&env).join(format!("snapshots/{}/sub", main_commit(&env)));
    refused(
        &env,
        &[],
        &[&format!(
            "failed to create the snapshot folder `{}`: it {LINK_REFUSED}",
            sub.display()
        )],
    );

    // The whole snapshot folder, too.
    let env = planted(CONFIG_ONLY, |env, outside, commit| {
        link(outside, &repo(env).join(format!("snapshots/{commit}")));
    });
    refused(&env, &[], &[LINK_REFUSED]);
}

#[test]
fn refs_and_trees_folders_that_link_outside_are_refused() {
    let env = planted(CONFIG_ONLY, |env, outside, _| {
        link(outside, &repo(env).join("refs"));
    });
    refused(
        &env,
        &[],
        &[&format!(
            "failed to create the refs folder `{}`: it {LINK_REFUSED}",
            repo(&env).join("refs").display()
        )],
    );
    let env = planted(CONFIG_ONLY, |env, outside, _| {
        link(outside, &repo(env).join("trees"));
    });
    refused(
        &env,
        &[],
        &[&format!(
            "failed to create the trees folder `{}`: it {LINK_REFUSED}",
            repo(&env).join("trees").display()
        )],
    );
}

#[test]
fn lock_files_and_folders_that_link_outside_are_refused() {
    let etag = etag_of(&Env::new(), "config.json");
    let env = planted(CONFIG_ONLY, |env, outside, _| {
        let locks = env.cache().join(".locks/models--acme--tiny");
        link(
            &outside.join("keep.txt"),
            &locks.join(format!("{etag}.lock")),
        );
    });
    let lock = env
        .cache()
        .join(format!(".locks/models--acme--tiny/{etag}.lock"));
    refused(
        &env,
        &[],
        &[&format!(
            "failed to open the lock file `{}`: it {LINK_REFUSED}",
            lock.display()
        )],
    );

    let env = planted(CONFIG_ONLY, |env, outside, _| {
        link(outside, &env.cache().join(".locks/models--acme--tiny"));
    });
    refused(
        &env,
        &[],
        &["failed to create the lock folder", LINK_REFUSED],
    );
}

#[test]
fn files_that_link_outside_are_replaced_not_written_through() {
    // refs/main, trees/<commit>.json and a snapshot pointer, each a link to a file outside:
    // each is replaced by what facehugger writes, the file outside is left as it was.
    let env = planted(TINY, |env, outside, commit| {
        let target = outside.join("keep.txt");
        link(&target, &repo(env).join("refs/main"));
        link(&target, &repo(env).join(format!("trees/{commit}.json")));
    });
    let commit = main_commit(&env);
    // A pointer leading nowhere (so the planner relinks it) is replaced, not followed.
    let pointer = repo(&env).join(format!("snapshots/{commit}/config.json"));
    link(&env.dir.path().join("outside/missing"), &pointer);
    succeeds(&env, &[], &[]);
    assert_eq!(
        std::fs::read_to_string(env.dir.path().join("outside/keep.txt")).unwrap(),
        "untouched\n"
    );
    let refs_main = repo(&env).join("refs/main");
    assert!(std::fs::symlink_metadata(&refs_main).unwrap().is_file());
    assert_eq!(std::fs::read_to_string(refs_main).unwrap(), commit);
    let tree = repo(&env).join(format!("trees/{commit}.json"));
    assert!(std::fs::symlink_metadata(&tree).unwrap().is_file());
    assert_eq!(
        std::fs::read_link(&pointer).unwrap().to_str().unwrap(),
        format!("../../blobs/{}", etag_of(&env, "config.json"))
    );
}

#[test]
fn cache_files_that_link_elsewhere_are_read_without_following_them() {
    // Planted after a sync: refs/main and trees/<commit>.json linking to /dev/zero (reading it
    // would never end), a blob linking outside the cache, a snapshot entry linking outside.
    let env = planted(CONFIG_ONLY, |_, _, _| {});
    succeeds(&env, &[], &[]);
    let commit = main_commit(&env);
    let replant = |at: &Path, target: &Path| {
        let _ = std::fs::remove_file(at);
        link(target, at);
    };
    let (refs_main, tree) = (
        repo(&env).join("refs/main"),
        repo(&env).join(format!("trees/{commit}.json")),
    );
    let guarded = |args: &[&str]| {
        // A guard against a hang, not a measure of speed.
        Run::from(
            env.cmd(args)
                .timeout(Duration::from_secs(120))
                .output()
                .unwrap(),
        )
    };

    // Without a lock, status, path and verify take the commit from refs/main.
    std::fs::remove_file(env.project().join("facehugger.lock")).unwrap();
    replant(&refs_main, Path::new("/dev/zero"));
    let expected = format!(
        "error: acme/tiny@main: failed to read the ref `{}`: it is a symbolic link, and facehugger never follows one where the cache keeps a file; remove it\n",
        refs_main.display()
    );
    for args in [&["status"][..], &["path", "acme/tiny"], &["verify"]] {
        let run = guarded(args).failure(1);
        assert_eq!(run.stderr, expected, "{args:?}");
    }
    let run = guarded(&["--offline"]).failure(1);
    assert!(
        run.stderr.contains(&format!(
            "  acme/tiny@main: failed to read the ref `{}`: it is a symbolic link",
            refs_main.display()
        )),
        "{}",
        run.stderr
    );
    // A sync replaces the link (and leaves /dev/zero alone).
    succeeds(&env, &[], &[]);
    assert!(std::fs::symlink_metadata(&refs_main).unwrap().is_file());

    replant(&tree, Path::new("/dev/zero"));
    let run = guarded(&["status"]).failure(1);
    assert_eq!(
        run.stderr,
        format!(
            "error: acme/tiny@main: failed to read the file listing `{}`: it is a symbolic link, and facehugger never follows one where the cache keeps a file; remove it\n",
            tree.display()
        )
    );
    let run = guarded(&["--offline"]).failure(1);
    assert!(
        run.stderr.contains("failed to read the file listing"),
        "{}",
        run.stderr
    );
    succeeds(&env, &[], &[]);
    assert!(std::fs::symlink_metadata(&tree).unwrap().is_file());

    // A snapshot entry linking outside is a wrong link; a blob linking outside is no blob.
    let outside = env.dir.path().join("outside/keep.txt");
    let pointer = repo(&env).join(format!("snapshots/{commit}/config.json"));
    replant(&pointer, &outside);
    let run = guarded(&["verify"]).failure(1);
    assert!(
        run.stdout.contains(&format!(
            "acme/tiny@main: config.json: wrong link: points to {}, expected ../../blobs/",
            outside.display()
        )),
        "{}",
        run.stdout
    );
    guarded(&["verify", "--repair"]).success();
    let blob = repo(&env).join(format!("blobs/{}", etag_of(&env, "config.json")));
    replant(&blob, &outside);
    let run = guarded(&["verify"]).failure(1);
    assert!(
        run.stdout.contains(&format!(
            "acme/tiny@main: config.json: failed to read the blob `{}`: it is a symbolic link, and not into the cache's shared blob store",
            blob.display()
        )),
        "{}",
        run.stdout
    );
    let run = guarded(&["status"]).success();
    assert!(run.stdout.contains("1 of 1 file missing"), "{}", run.stdout);
    // A sync downloads the blob again in place of the link.
    succeeds(&env, &[], &[]);
    assert!(std::fs::symlink_metadata(&blob).unwrap().is_file());
    guarded(&["verify"]).success();
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "untouched\n");
}
