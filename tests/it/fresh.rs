//! No-op syncs of a snapshot found complete before: while none of its folders (nor `blobs/`)
//! changed, it is not listed again; any change in any of them, and any other selection of
//! files, makes the sync look again and fetch what is missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{Env, Run, strace, tree};

const MANIFEST: &str = "models:\n  - repo: acme/tiny\n    exclude: \"*.safetensors\"\n";

/// The records facehugger keeps in the test's `HF_HOME`.
fn records(env: &Env) -> Vec<PathBuf> {
    let dir = env.home().join("facehugger/fresh");
    tree(&dir)
        .into_iter()
        .filter(|path| path.ends_with(".json"))
        .map(|path| dir.join(path))
        .collect()
}

/// Runs `facehugger sync --frozen` under `strace`; returns what it printed and whether it
/// opened acme/tiny's `blobs/` folder (to list it).
fn frozen_sync(env: &Env, strace: &Path) -> (Run, bool) {
    let trace = env.dir.path().join("trace.txt");
    let trace_arg = trace.to_str().unwrap();
    let output = env
        .wrapped_cmd(
            strace,
            &["-f", "-qq", "-e", "trace=openat", "-o", trace_arg],
            &["sync", "--frozen"],
        )
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&trace).unwrap();
    let listed = text
        .lines()
        .any(|line| line.contains("models--acme--tiny/blobs\"") && line.contains("O_DIRECTORY"));
    (Run::from(output).success(), listed)
}

#[test]
fn a_snapshot_found_complete_is_not_listed_again_until_a_folder_changes() {
    let Some(strace) = strace() else { return };
    let env = Env::new();
    env.manifest(MANIFEST);
    env.run(&[]).success();
    // The download just changed every folder: the first no-op sync lists them, finds every
    // file, and records it (once the folders' times are older than the clock can blur).
    std::thread::sleep(Duration::from_millis(100));
    let (run, listed) = frozen_sync(&env, &strace);
    assert!(listed && run.stderr.contains("Fresh acme/tiny@main (10 files)"));
    assert_eq!(records(&env).len(), 1, "{:?}", tree(&env.home()));
    let (run, listed) = frozen_sync(&env, &strace);
    assert!(!listed, "a recorded, unchanged snapshot was listed again");
    assert!(
        run.stderr.contains("Fresh acme/tiny@main (10 files)"),
        "{}",
        run.stderr
    );

    // A file taken out of a subfolder of the snapshot: seen, and put back.
    let main = env.commit("model", "acme/tiny", "main");
    let snapshot = env
        .repo_dir("models--acme--tiny")
        .join(format!("snapshots/{main}"));
    std::fs::remove_file(snapshot.join("onnx/model.onnx")).unwrap();
    let (run, listed) = frozen_sync(&env, &strace);
    assert!(listed, "{}", run.stderr);
    assert!(!run.stderr.contains("Fresh acme/tiny"), "{}", run.stderr);
    assert!(snapshot.join("onnx/model.onnx").is_file());

    // A blob taken away (its link left dangling): seen, and downloaded again.
    std::thread::sleep(Duration::from_millis(100));
    frozen_sync(&env, &strace);
    let config = std::fs::read_link(snapshot.join("config.json")).unwrap();
    std::fs::remove_file(snapshot.join(&config)).unwrap();
    let (run, listed) = frozen_sync(&env, &strace);
    assert!(
        listed && run.stderr.contains("Downloading"),
        "{}",
        run.stderr
    );
    assert!(std::fs::read(snapshot.join("config.json")).is_ok());
}

#[test]
fn a_record_of_some_files_does_not_vouch_for_others() {
    let Some(strace) = strace() else { return };
    let env = Env::new();
    env.manifest(MANIFEST);
    env.run(&[]).success();
    std::thread::sleep(Duration::from_millis(100));
    frozen_sync(&env, &strace);
    assert_eq!(records(&env).len(), 1);

    // The same commit with the weights selected too: they are fetched.
    env.manifest("models:\n  - repo: acme/tiny\n");
    let run = env.run(&["sync", "--frozen"]).success();
    assert!(
        run.stderr.contains("Downloading acme/tiny@main (1 file"),
        "{}",
        run.stderr
    );
}

#[test]
fn gc_drops_the_record_of_a_snapshot_it_removes() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    ref: v1.0\n");
    env.run(&[]).success();
    std::thread::sleep(Duration::from_millis(100));
    env.run(&["sync", "--frozen"]).success();
    assert_eq!(records(&env).len(), 1);
    // The project moves to main; v1.0 is no longer pinned.
    env.manifest("models:\n  - repo: acme/tiny\n");
    env.run(&[]).success();
    env.run(&["gc", "--older-than", "0"]).success();
    let first = env.commit("model", "acme/tiny", "v1.0");
    assert!(
        records(&env)
            .iter()
            .all(|path| !path.to_string_lossy().contains(&first)),
        "{:?}",
        records(&env)
    );
}
