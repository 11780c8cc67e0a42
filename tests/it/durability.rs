//! Durability: a blob is renamed into place only once its bytes reached a sync call (so a power
//! cut can lose a download, never leave an installed blob with missing bytes), and a sync
//! killed at any moment leaves no installed blob whose bytes do not match its name.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Env, Options, strace};

/// A hub serving one repo of `count` small text files (from its own fixtures folder, returned
/// with it so that it lives as long).
fn many_files_env(count: usize) -> (Env, tempfile::TempDir) {
    let folder = tempfile::tempdir().unwrap();
    let fixtures = folder.path().to_owned();
    let mut spec =
        String::from("id = \"acme/lots\"\n\n[[commits]]\nname = \"first\"\nrefs = [\"main\"]\n");
    for i in 0..count {
        let body = format!("file {i}\n").repeat(1 + i % 40);
        spec.push_str(&format!(
            "\n[[commits.files]]\npath = \"part-{:02}/file-{i:04}.txt\"\ntext = {body:?}\n",
            i / 100
        ));
    }
    std::fs::write(fixtures.join("lots.toml"), spec).unwrap();
    let env = Env::with_options(Options {
        fixtures,
        ..Options::default()
    });
    env.manifest("models:\n  - repo: acme/lots\n");
    (env, folder)
}

/// How many blobs of acme/lots are installed (names without a dot), not reading them.
fn blob_count(env: &Env) -> usize {
    let blobs = env.repo_dir("models--acme--lots").join("blobs");
    std::fs::read_dir(blobs)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| !entry.file_name().to_string_lossy().contains('.'))
        .count()
}

/// Every installed blob of acme/lots hashes to its name; returns how many there are.
#[track_caller]
fn installed_blobs_match(env: &Env) -> usize {
    let blobs = env.repo_dir("models--acme--lots").join("blobs");
    let mut count = 0;
    for entry in std::fs::read_dir(blobs).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains('.') {
            continue; // a partial download, never taken for a blob
        }
        // The fixture's files are text: bytes that are not would not hash right either.
        let bytes = std::fs::read(entry.path()).unwrap();
        let id = test_hub::git_blob_sha1(&String::from_utf8_lossy(&bytes));
        assert_eq!(id, name, "an installed blob with wrong bytes");
        count += 1;
    }
    count
}

#[test]
fn a_sync_killed_at_any_moment_installs_no_blob_with_wrong_bytes() {
    let (env, _fixtures) = many_files_env(2000);
    // Killed early on, then (on a machine of any speed) just as each run has installed its first
    // blobs, so that kills land in the middle of batches.
    let mut installed = Vec::new();
    for round in 0..7 {
        let before = installed_blobs_match(&env);
        let mut child = env
            .std_cmd(&[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        match round {
            0 => std::thread::sleep(Duration::from_millis(5)),
            1 => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let deadline = Instant::now() + Duration::from_secs(60);
                while blob_count(&env) <= before
                    && Instant::now() < deadline
                    && child.try_wait().unwrap().is_none()
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        let _ = child.kill(); // SIGKILL; it may have finished already
        child.wait().unwrap();
        installed.push(installed_blobs_match(&env));
    }
    env.run(&[]).success();
    assert_eq!(installed_blobs_match(&env), 2000, "{installed:?}");
    assert!(
        installed.iter().any(|&n| 0 < n && n < 2000),
        "some kill landed mid-way: {installed:?}"
    );
}

#[test]
fn a_sync_of_many_files_stays_within_a_low_open_files_limit() {
    // Each blob waiting to be installed holds its lock file open: they must never add up to
    // more files than the process may open, whatever the limit.
    let (env, _fixtures) = many_files_env(2000);
    let output = env
        .wrapped_cmd("sh", &["-c", "ulimit -n 150 && exec \"$0\" \"$@\""], &[])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(installed_blobs_match(&env), 2000);
}

#[test]
fn every_blob_reaches_a_sync_call_before_the_rename_that_installs_it() {
    let Some(strace) = strace() else { return };
    let (env, _fixtures) = many_files_env(300);
    let trace = env.dir.path().join("trace.txt");
    let trace_arg = trace.to_str().unwrap();
    let mut command = env.wrapped_cmd(
        strace,
        &[
            "-f",
            "-qq",
            "-s",
            "300",
            "-o",
            trace_arg,
            "-e",
            "trace=openat,write,pwrite64,fsync,fdatasync,syncfs,rename,renameat,renameat2,close",
        ],
        &[],
    );
    let started = Instant::now();
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&trace).unwrap();
    let renamed = check_order(&text);
    assert_eq!(renamed, 300, "blobs installed, in {:?}", started.elapsed());
    assert_eq!(installed_blobs_match(&env), 300);
}

/// Reads an `strace -f` log and checks that each blob renamed into `blobs/` had every byte
/// written to it before a sync call (`fsync`/`fdatasync` of it, or `syncfs`) that ended before
/// the rename began. Returns how many blobs were renamed.
fn check_order(trace: &str) -> usize {
    // Per thread, the call whose start was logged `<unfinished ...>`.
    let mut open_calls: HashMap<&str, &str> = HashMap::new();
    // Per fd (shared by the process's threads): the path it was opened for. Per path: the step
    // of its last write, and of the end of the last sync that began after a write.
    let mut fds: HashMap<String, PathBuf> = HashMap::new();
    let mut written: HashMap<PathBuf, usize> = HashMap::new();
    let mut synced: HashMap<PathBuf, usize> = HashMap::new();
    // Syncs under way: (thread, start step, fd path or None for syncfs).
    let mut syncing: Vec<(String, usize, Option<PathBuf>)> = Vec::new();
    let mut renamed = 0;
    let pid_of = |line: &str| line.split_whitespace().next().unwrap_or("").to_owned();
    for (step, line) in trace.lines().enumerate() {
        let thread = pid_of(line);
        let rest = line[thread.len()..].trim_start();
        // A call's start and end, whole or in two pieces.
        let (start, end, call) = if let Some(call) = rest.strip_suffix("<unfinished ...>") {
            open_calls.insert(line.split_whitespace().next().unwrap(), call);
            (true, false, call.to_owned())
        } else if let Some(resumed) = rest.strip_prefix("<... ") {
            let name = resumed.split_whitespace().next().unwrap_or("");
            let begun = open_calls
                .remove(line.split_whitespace().next().unwrap())
                .unwrap_or(name);
            let tail = resumed.split_once("resumed>").map_or("", |(_, tail)| tail);
            (false, true, format!("{begun}{tail}"))
        } else {
            (true, true, rest.to_owned())
        };
        let name = call.split('(').next().unwrap_or("");
        let result = call.rsplit("= ").next().unwrap_or("").trim();
        let first_path = || {
            call.split('"')
                .nth(1)
                .map(PathBuf::from)
                .unwrap_or_default()
        };
        match name {
            "openat" if end => {
                let fd = result.split_whitespace().next().unwrap_or("");
                fds.insert(fd.to_owned(), first_path());
            }
            "write" | "pwrite64" if end => {
                let fd = call
                    .split(['(', ','])
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                if let Some(path) = fds.get(&fd) {
                    written.insert(path.clone(), step);
                }
            }
            "fsync" | "fdatasync" | "syncfs" if start => {
                let fd = call
                    .split(['(', ')'])
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                let path = (name != "syncfs").then(|| fds.get(&fd).cloned()).flatten();
                syncing.push((thread.clone(), step, path));
                if end {
                    finish_sync(&mut syncing, &thread, step, &written, &mut synced);
                }
            }
            "fsync" | "fdatasync" | "syncfs" if end => {
                finish_sync(&mut syncing, &thread, step, &written, &mut synced);
            }
            "rename" | "renameat" | "renameat2" if start => {
                let from = first_path();
                let to = call.split('"').nth(3).unwrap_or("");
                let is_blob = to.contains("/blobs/") && !to.contains(".incomplete");
                if is_blob && from.to_string_lossy().ends_with(".incomplete") {
                    let last_write = written.get(&from).copied();
                    let durable = synced.get(&from).copied();
                    assert!(
                        last_write.is_some()
                            && durable.is_some_and(|at| at > last_write.unwrap() && at < step),
                        "{to} renamed at line {} with its last write at {last_write:?} and a sync \
                         ending at {durable:?}",
                        step + 1
                    );
                    renamed += 1;
                }
            }
            _ => {}
        }
    }
    renamed
}

/// A sync of `thread` ended at `step`: the files written before it began are durable.
fn finish_sync(
    syncing: &mut Vec<(String, usize, Option<PathBuf>)>,
    thread: &str,
    step: usize,
    written: &HashMap<PathBuf, usize>,
    synced: &mut HashMap<PathBuf, usize>,
) {
    let Some(index) = syncing.iter().position(|(t, _, _)| t == thread) else {
        return;
    };
    let (_, began, path) = syncing.remove(index);
    for (file, &last_write) in written {
        let covered = path.as_ref().is_none_or(|path| path == file);
        if covered && last_write < began {
            synced.insert(file.clone(), step);
        }
    }
}
