//! Several clients syncing the same repo into the same cache at the same time: facehugger
//! processes and the reference client all succeed, every file is right, and each blob is
//! downloaded once (the cache's flock works here).

use std::process::Stdio;

use crate::support::{Env, Options, Origin, Run, python, tree};

#[test]
fn facehugger_processes_and_hf_download_share_one_cache_at_once() {
    let env = Env::with_options(Options {
        bandwidth: Some(2_000_000),
        ..Options::default()
    });
    env.manifest("models:\n  - repo: acme/tiny\n");
    let python = python();
    let mut children: Vec<std::process::Child> = (0..3)
        .map(|_| {
            env.std_cmd(&[])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    if let Some(python) = &python {
        let mut hf = std::process::Command::new(python.with_file_name("hf"));
        hf.args(["download", "acme/tiny"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", env.dir.path())
            .env("HF_HOME", env.home())
            .env("HF_HUB_CACHE", env.cache())
            .env("HF_ENDPOINT", env.hub.endpoint())
            .env("HF_HUB_DISABLE_XET", "1")
            .env("HF_HUB_DISABLE_UPDATE_CHECK", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        children.push(hf.spawn().unwrap());
    }
    for child in children {
        let run = Run::from(child.wait_with_output().unwrap());
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    }
    // Each LFS blob came from the CDN once; each regular file from the Hub once.
    let main = env.commit("model", "acme/tiny", "main");
    let commit = env
        .hub
        .repo("model", "acme/tiny")
        .unwrap()
        .commit(&main)
        .unwrap();
    let cdn = env
        .requests()
        .iter()
        .filter(|r| r.origin == Origin::Cdn && r.method == "GET")
        .count();
    assert_eq!(
        cdn,
        commit.files.iter().filter(|f| f.is_lfs()).count(),
        "{:#?}",
        env.requests()
    );
    for file in commit.files.iter().filter(|f| !f.is_lfs()) {
        let gets = env
            .requests()
            .iter()
            .filter(|r| {
                r.method == "GET"
                    && r.url.contains("/resolve/")
                    && r.url
                        .ends_with(&format!("/{}", file.path.replace(' ', "%20")))
            })
            .count();
        let agents: Vec<String> = env
            .requests()
            .iter()
            .filter(|r| {
                r.url.contains("/resolve/")
                    && r.url
                        .ends_with(&format!("/{}", file.path.replace(' ', "%20")))
            })
            .map(|r| format!("{} {}", r.method, r.header("user-agent").unwrap_or("-")))
            .collect();
        assert!(gets <= 1, "{} fetched {gets} times: {agents:#?}", file.path);
    }
    // Every file is right, and nothing temporary is left behind.
    let snapshot = env
        .repo_dir("models--acme--tiny")
        .join(format!("snapshots/{main}"));
    for file in &commit.files {
        assert!(
            std::fs::read(snapshot.join(&file.path)).unwrap() == file.content().unwrap(),
            "{}",
            file.path
        );
    }
    assert!(
        !tree(&env.cache())
            .iter()
            .any(|f| f.contains(".incomplete") || f.ends_with(".tmp"))
    );
}
