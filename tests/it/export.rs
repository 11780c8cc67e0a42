//! `facehugger export`: the locked files as plain files, with the reference client's
//! `--local-dir` metadata, written again only when they change, removed only if export wrote
//! them.

use std::fs;
#[cfg(unix)]
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use serde_json::Value;

use crate::interop::reference;
use crate::support::{Env, python};

/// Every file of `folder` outside `.cache`, relative and sorted; fails on a link.
fn plain_files(folder: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for path in crate::support::tree(folder) {
        assert!(!path.contains(" -> "), "a link was exported: {path}");
        if !path.starts_with(".cache/") {
            found.push(path);
        }
    }
    found
}

fn export_json(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["export", "--format", "json"];
    all.extend(args);
    serde_json::from_str(&env.run(&all).success().stdout).unwrap()
}

/// The files of a fixture commit: (path, content).
fn files_of(env: &Env, repo_type: &str, repo: &str, commit: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = env
        .hub
        .repo(repo_type, repo)
        .unwrap()
        .commit(commit)
        .unwrap()
        .files
        .iter()
        .map(|file| (file.path.clone(), file.content().unwrap()))
        .collect();
    files.sort();
    files
}

/// `hf download REPO --revision COMMIT --local-dir FOLDER` makes no request about the repo: it
/// finds every file up to date.
fn downloads_nothing(
    env: &Env,
    python: &Path,
    repo: &str,
    kind: &str,
    commit: &str,
    folder: &Path,
    extra: &[&str],
) {
    env.hub.clear_requests();
    let mut args = vec![
        "download",
        repo,
        "--repo-type",
        kind,
        "--revision",
        commit,
        "--local-dir",
        folder.to_str().unwrap(),
    ];
    args.extend(extra);
    reference(env, python, "hf", &args, false);
    // (The CLI asks the hub about agent harnesses; nothing about the repos.)
    let about_repos: Vec<String> = env
        .requests()
        .iter()
        .filter(|request| {
            request.url.contains("/resolve/")
                || request.url.starts_with("/api/models")
                || request.url.starts_with("/api/datasets")
        })
        .map(|request| format!("{} {}", request.method, request.url))
        .collect();
    assert_eq!(
        about_repos,
        Vec::<String>::new(),
        "{repo} in {}",
        folder.display()
    );
}

#[test]
fn export_writes_plain_files_that_hf_download_finds_up_to_date() {
    let env = Env::new();
    env.manifest(
        "models:\n  - repo: acme/tiny\n  - repo: acme/data\n    repo_type: dataset\n    name: DATA\n",
    );
    env.run(&[]).success();
    let out = env.dir.path().join("out");
    let report = export_json(&env, &[out.to_str().unwrap()]);
    let main = env.commit("model", "acme/tiny", "main");
    let data = env.commit("dataset", "acme/data", "main");
    for (folder, repo_type, repo, commit) in [
        ("acme--tiny", "model", "acme/tiny", &main),
        ("DATA", "dataset", "acme/data", &data),
    ] {
        let folder = out.join(folder);
        let expected = files_of(&env, repo_type, repo, commit);
        let names: Vec<&String> = expected.iter().map(|(path, _)| path).collect();
        let mut listed = plain_files(&folder);
        listed.sort();
        let mut names: Vec<String> = names.into_iter().cloned().collect();
        names.sort();
        assert_eq!(listed, names);
        for (path, content) in &expected {
            assert_eq!(&fs::read(folder.join(path)).unwrap(), content, "{path}");
            let metadata = fs::read_to_string(
                folder
                    .join(".cache/huggingface/download")
                    .join(format!("{path}.metadata")),
            )
            .unwrap();
            assert!(metadata.starts_with(&format!("{commit}\n")), "{metadata}");
        }
        let hf_dir = folder.join(".cache/huggingface");
        assert_eq!(fs::read_to_string(hf_dir.join(".gitignore")).unwrap(), "*");
        assert!(hf_dir.join(format!("trees/{commit}.json")).is_file());
    }
    let total: u64 = report["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| {
            model["bytes_written"].as_u64().unwrap() + model["bytes_shared"].as_u64().unwrap()
        })
        .sum();
    let expected_total: usize = files_of(&env, "model", "acme/tiny", &main)
        .iter()
        .chain(&files_of(&env, "dataset", "acme/data", &data))
        .map(|(_, content)| content.len())
        .sum();
    assert_eq!(total, expected_total as u64, "{report:#}");
    assert_eq!(report["link"], "auto");

    // The reference client finds every file up to date: not one request about them.
    let Some(python) = python() else { return };
    downloads_nothing(
        &env,
        &python,
        "acme/tiny",
        "model",
        &main,
        &out.join("acme--tiny"),
        &[],
    );
    downloads_nothing(
        &env,
        &python,
        "acme/data",
        "dataset",
        &data,
        &out.join("DATA"),
        &[],
    );
    let verified = reference(
        &env,
        &python,
        "hf",
        &[
            "cache",
            "verify",
            "acme/tiny",
            "--revision",
            &main,
            "--local-dir",
            out.join("acme--tiny").to_str().unwrap(),
            "--fail-on-missing-files",
            "--fail-on-extra-files",
        ],
        false,
    );
    assert!(verified.contains("All checksums match"), "{verified}");
}

// Inode numbers tell a file left alone from one written again: Unix.
#[cfg(unix)]
#[test]
fn a_second_export_changes_only_what_changed_and_removes_only_its_own_files() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n");
    env.run(&[]).success();
    let out = env.dir.path().join("out");
    let folder = out.join("acme--tiny");
    export_json(&env, &["--link", "copy", out.to_str().unwrap()]);
    let inode = |path: &str| fs::metadata(folder.join(path)).unwrap().ino();
    let readme = inode("README.md");
    fs::write(folder.join("notes.txt"), "mine\n").unwrap();

    // Same lock: nothing is written again.
    let again = export_json(&env, &["--link", "copy", out.to_str().unwrap()]);
    assert_eq!(again["bytes_written"], 0, "{again:#}");
    assert_eq!(again["models"][0]["unchanged"], 11);

    // v1.0 without the onnx folder: config.json changes, generation_config.json and
    // onnx/model.onnx go, the rest stays as it is, and so does the user's own file.
    env.manifest("models:\n  - repo: acme/tiny\n    ref: v1.0\n    exclude: \"onnx/\"\n");
    env.run(&[]).success();
    let changed = export_json(&env, &["--link", "copy", out.to_str().unwrap()]);
    let model = &changed["models"][0];
    assert_eq!(model["copied"], 1, "{changed:#}");
    assert_eq!(model["removed"], 2, "{changed:#}");
    assert_eq!(model["unchanged"], 8, "{changed:#}");
    assert_eq!(changed["bytes_written"], "{\"hidden_size\": 8}\n".len());
    assert_eq!(inode("README.md"), readme);
    assert_eq!(
        fs::read_to_string(folder.join("config.json")).unwrap(),
        "{\"hidden_size\": 8}\n"
    );
    assert!(!folder.join("onnx").exists());
    assert!(!folder.join("generation_config.json").exists());
    assert!(
        !folder
            .join(".cache/huggingface/download/onnx/model.onnx.metadata")
            .exists()
    );
    assert_eq!(
        fs::read_to_string(folder.join("notes.txt")).unwrap(),
        "mine\n"
    );

    // A file export wrote and someone changed is written again.
    fs::write(folder.join("README.md"), "edited\n").unwrap();
    let repaired = export_json(&env, &["--link", "copy", out.to_str().unwrap()]);
    assert_eq!(repaired["models"][0]["copied"], 1, "{repaired:#}");
    assert_eq!(
        fs::read_to_string(folder.join("README.md")).unwrap(),
        "# tiny\n\nA tiny test model.\n"
    );
    if let Some(python) = python() {
        let first = env.commit("model", "acme/tiny", "v1.0");
        let exclude = ["--exclude", "onnx/*"];
        downloads_nothing(
            &env,
            &python,
            "acme/tiny",
            "model",
            &first,
            &folder,
            &exclude,
        );
    }

    // The model leaves the manifest: its files go, the user's stays.
    env.manifest("models:\n  - repo: acme/data\n    repo_type: dataset\n");
    env.run(&[]).success();
    let retired = export_json(&env, &[out.to_str().unwrap()]);
    assert_eq!(retired["retired"][0]["removed"], 9, "{retired:#}");
    assert_eq!(plain_files(&folder), vec!["notes.txt".to_owned()]);
    assert!(out.join("acme--data/data/test.csv").is_file());
}

#[test]
fn two_projects_exporting_into_one_folder_leave_each_other_alone() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n");
    env.run(&[]).success();
    let other = env.dir.path().join("other");
    fs::create_dir_all(&other).unwrap();
    let other_manifest = other.join("facehugger.yaml");
    fs::write(
        &other_manifest,
        "models:\n  - repo: acme/data\n    repo_type: dataset\n",
    )
    .unwrap();
    let other_manifest = other_manifest.to_str().unwrap();
    env.run(&["sync", other_manifest]).success();

    let out = env.dir.path().join("models");
    let out = out.to_str().unwrap();
    export_json(&env, &[out]);
    export_json(&env, &[other_manifest, out]);
    // Each export again: neither takes the other's folder for a model it dropped.
    let again = export_json(&env, &[out]);
    assert_eq!(again["retired"], serde_json::json!([]), "{again:#}");
    let again = export_json(&env, &[other_manifest, out]);
    assert_eq!(again["retired"], serde_json::json!([]), "{again:#}");
    let out = Path::new(out);
    assert!(out.join("acme--tiny/config.json").is_file());
    assert!(out.join("acme--data/data/test.csv").is_file());
}

#[test]
fn export_never_replaces_a_file_it_did_not_write() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: \"*.json\"\n");
    env.run(&[]).success();
    let out = env.dir.path().join("out");
    let folder = out.join("acme--tiny");
    fs::create_dir_all(&folder).unwrap();
    fs::write(folder.join("config.json"), "{\"mine\": true}\n").unwrap();
    let run = env.run(&["export", out.to_str().unwrap()]).failure(1);
    assert!(
        run.stderr
            .contains("export would replace files it did not write")
            && run.stderr.contains("config.json"),
        "{}",
        run.stderr
    );
    assert_eq!(
        crate::support::tree(&folder),
        vec!["config.json".to_owned()]
    );

    // The same bytes are no conflict: the file stays, and is never removed.
    fs::write(folder.join("config.json"), "{\"hidden_size\": 16}\n").unwrap();
    let report = export_json(&env, &[out.to_str().unwrap()]);
    assert_eq!(report["models"][0]["unchanged"], 1, "{report:#}");
    env.manifest("models:\n  - repo: acme/tiny\n    include: tokenizer.json\n");
    env.run(&[]).success();
    export_json(&env, &[out.to_str().unwrap()]);
    assert!(folder.join("config.json").is_file());
}

#[test]
fn each_link_mode_says_what_it_wrote() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n");
    env.run(&[]).success();
    let main = env.commit("model", "acme/tiny", "main");
    let total: usize = files_of(&env, "model", "acme/tiny", &main)
        .iter()
        .map(|(_, content)| content.len())
        .sum();
    let dir = env.dir.path();

    let copy = export_json(
        &env,
        &["--link", "copy", dir.join("copy").to_str().unwrap()],
    );
    assert_eq!(copy["bytes_written"], total);
    assert_eq!(copy["models"][0]["copied"], 11);

    // Hard links share the cache's blob, read-only.
    let hard = export_json(
        &env,
        &["--link", "hard", dir.join("hard").to_str().unwrap()],
    );
    assert_eq!(hard["bytes_written"], 0);
    assert_eq!(hard["models"][0]["hard_linked"], 11);
    let exported = fs::metadata(dir.join("hard/acme--tiny/model.safetensors")).unwrap();
    assert!(exported.permissions().readonly());
    #[cfg(unix)]
    {
        let blob = fs::metadata(
            env.repo_dir("models--acme--tiny")
                .join(format!("snapshots/{main}/model.safetensors")),
        )
        .unwrap();
        assert_eq!(exported.ino(), blob.ino());
        assert_eq!(exported.permissions().mode() & 0o777, 0o444);
    }

    // A reflink where the file system makes one; else `reflink` fails and `auto` copies.
    let reflink = env.run(&[
        "export",
        "--link",
        "reflink",
        "--format",
        "json",
        dir.join("reflink").to_str().unwrap(),
    ]);
    let auto = export_json(&env, &[dir.join("auto").to_str().unwrap()]);
    if reflink.code == 0 {
        let reflink: Value = serde_json::from_str(&reflink.stdout).unwrap();
        assert_eq!(reflink["bytes_written"], 0);
        assert_eq!(auto["models"][0]["reflinked"], 11);
    } else {
        assert_eq!(reflink.code, 1);
        assert!(
            reflink.stderr.contains("make a reflink"),
            "{}",
            reflink.stderr
        );
        assert_eq!(auto["models"][0]["copied"], 11, "{auto:#}");
        assert_eq!(auto["bytes_written"], total);
    }
    // The human summary says how many bytes were written.
    let run = env
        .run(&[
            "export",
            "--link",
            "copy",
            dir.join("again").to_str().unwrap(),
        ])
        .success();
    assert!(run.stderr.contains("Finished"), "{}", run.stderr);
    assert!(run.stderr.contains(" written"), "{}", run.stderr);
}

#[test]
fn export_needs_the_lock_and_the_files_in_the_cache() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: \"*.json\"\n");
    let out = env.dir.path().join("out");
    let run = env.run(&["export", out.to_str().unwrap()]).failure(1);
    assert!(run.stderr.contains("no lock file"), "{}", run.stderr);
    env.run(&["lock"]).success();
    let run = env.run(&["export", out.to_str().unwrap()]).failure(1);
    assert!(
        run.stderr.contains("facehugger sync --frozen"),
        "{}",
        run.stderr
    );
    env.run(&["sync", "--frozen"]).success();
    let main = env.commit("model", "acme/tiny", "main");
    fs::remove_file(
        env.repo_dir("models--acme--tiny")
            .join(format!("snapshots/{main}/config.json"))
            .canonicalize()
            .unwrap(),
    )
    .unwrap();
    let run = env.run(&["export", out.to_str().unwrap()]).failure(1);
    assert!(
        run.stderr
            .contains("the cache is missing 1 of the locked files")
            && run.stderr.contains("acme/tiny@main: config.json"),
        "{}",
        run.stderr
    );
    assert!(!out.exists());
}
