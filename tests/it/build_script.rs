//! The build-script API: an example crate declares models in its Cargo.toml, its build.rs calls
//! `facehugger::build::run()`, and its code uses the generated constants and `include_bytes!`.

use std::path::{Path, PathBuf};

use crate::support::{Env, Run, toolchain_env, write_files};

/// A copy of `fixtures/cargo/<name>` whose path dependency points at this checkout.
fn copy_fixture(env: &Env, name: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/cargo")
        .join(name);
    let dest = env.dir.path().join(name);
    copy_dir(&source, &dest);
    let cargo_toml = dest.join("Cargo.toml");
    let text = std::fs::read_to_string(&cargo_toml).unwrap().replace(
        "path = \"../../..\"",
        &format!("path = {:?}", env!("CARGO_MANIFEST_DIR")),
    );
    std::fs::write(&cargo_toml, text).unwrap();
    // The same dependency versions as facehugger itself, so `--offline` finds them all.
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"),
        dest.join("Cargo.lock"),
    )
    .unwrap();
    dest
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `cargo ARGS` in `dir` against the env's hub and cache, with a target folder shared by the
/// tests of this module (only the first build compiles facehugger).
fn cargo(env: &Env, dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
    let mut cmd = std::process::Command::new("cargo");
    cmd.current_dir(dir)
        .args(args)
        .arg("--offline")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", env.dir.path())
        .env("HF_HOME", env.home())
        .env("HF_HUB_CACHE", env.cache())
        .env("HF_ENDPOINT", env.hub.endpoint())
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("build-script-target"),
        )
        .env("CARGO_TERM_COLOR", "never");
    for (name, value) in toolchain_env()
        .into_iter()
        .filter(|(name, _)| *name != "CARGO")
    {
        cmd.env(name, value);
    }
    for (name, value) in extra_env {
        cmd.env(name, value);
    }
    Run::from(cmd.output().unwrap())
}

#[test]
fn an_example_crate_gets_its_models_at_build_time() {
    let env = Env::new();
    let example = copy_fixture(&env, "example");

    // Online, no lock: resolved in memory, with one warning; nothing written in the crate.
    let run = cargo(&env, &example, &["build"], &[]).success();
    assert!(run.stderr.contains("warning: facehugger-example@0.1.0: facehugger: `facehugger-example` has no facehugger.lock"), "{}", run.stderr);
    let binary =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("build-script-target/debug/facehugger-example");
    let run = Run::from(std::process::Command::new(&binary).output().unwrap()).success();
    let main = env.commit("model", "acme/tiny", "main");
    assert!(
        run.stdout
            .starts_with("config: {\"hidden_size\": 16}\nweights: 200000 bytes\nrows: 2\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("models--acme--tiny/snapshots/{main}")),
        "{}",
        run.stdout
    );
    assert!(
        !example.join("facehugger.lock").exists(),
        "the build never writes into the source tree"
    );

    // Lock it, then build offline from the warm cache (the changed variable reruns the script).
    env.cargo_cmd(&example, &["lock"]).assert().success();
    env.hub.clear_requests();
    let offline = [("CARGO_NET_OFFLINE", "true")];
    let run = cargo(&env, &example, &["build", "-v"], &offline).success();
    assert!(
        run.stderr.contains("build-script-build`"),
        "the script reran:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("has no facehugger.lock"),
        "{}",
        run.stderr
    );
    assert!(env.requests().is_empty(), "offline: {:?}", env.requests());

    // A no-op build does not run the build script again.
    let run = cargo(&env, &example, &["build", "-v"], &offline).success();
    assert!(
        !run.stderr.contains("build-script-build`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Fresh facehugger-example"),
        "{}",
        run.stderr
    );

    // As a dependency of another crate, it uses the lock that travels with it: no resolution.
    let consumer = env.dir.path().join("consumer");
    write_files(
        &consumer,
        &[
            (
                "Cargo.toml",
                &format!(
                    "[package]\nname = \"consumer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n\n[dependencies]\nfacehugger-example = {{ path = {:?} }}\n",
                    example.display().to_string()
                ),
            ),
            (
                "src/lib.rs",
                "pub fn config() -> &'static [u8] { facehugger_example::CONFIG }\n",
            ),
        ],
    );
    std::fs::copy(example.join("Cargo.lock"), consumer.join("Cargo.lock")).unwrap();
    env.hub.clear_requests();
    // A variable the script reads, changed, so that its run here is certain.
    let run = cargo(
        &env,
        &consumer,
        &["build", "-v"],
        &[("HF_HUB_DOWNLOAD_TIMEOUT", "11")],
    )
    .success();
    assert!(
        run.stderr.contains("facehugger-example") && run.stderr.contains("build-script-build`"),
        "{}",
        run.stderr
    );
    assert_eq!(env.count("/api/"), 0, "{:?}", env.requests());

    // Offline with an empty cache: the error lists what is missing and how to fetch it.
    let empty = env.dir.path().join("empty-cache");
    let run = cargo(
        &env,
        &example,
        &["build"],
        &[
            ("CARGO_NET_OFFLINE", "true"),
            ("HF_HUB_CACHE", empty.to_str().unwrap()),
        ],
    )
    .failure(101);
    assert!(
        run.stderr
            .contains("offline (CARGO_NET_OFFLINE / HF_HUB_OFFLINE) and the HF cache is missing"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("cargo facehugger sync"),
        "{}",
        run.stderr
    );

    // docs.rs: nothing downloaded, the file is still generated.
    let run = cargo(
        &env,
        &example,
        &["build"],
        &[("DOCS_RS", "1"), ("HF_HUB_CACHE", empty.to_str().unwrap())],
    );
    // include_bytes! needs the real file, so the build may fail at compile time, but not in the
    // build script, and nothing was fetched.
    assert!(
        !run.stderr.contains("failed to run custom build command"),
        "{}",
        run.stderr
    );
    assert!(!empty.exists());
}

#[test]
fn build_scripts_syncing_the_same_models_at_once_download_each_blob_once() {
    let env = Env::new();
    let root = env.dir.path().join("ws");
    let facehugger = env!("CARGO_MANIFEST_DIR");
    let mut files = vec![(
        "Cargo.toml".to_owned(),
        "[workspace]\nmembers = [\"a\", \"b\", \"c\"]\nresolver = \"2\"\n".to_owned(),
    )];
    for member in ["a", "b", "c"] {
        files.push((
            format!("{member}/Cargo.toml"),
            format!(
                "[package]\nname = \"{member}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[build-dependencies]\nfacehugger = {{ path = {facehugger:?}, default-features = false }}\n\n[[package.metadata.facehugger.models]]\nrepo = \"acme/big\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"acme/tiny\"\ninclude = \"*.json\"\n"
            ),
        ));
        files.push((
            format!("{member}/build.rs"),
            "fn main() { facehugger::build::run(); }\n".to_owned(),
        ));
        files.push((
            format!("{member}/src/lib.rs"),
            "include!(concat!(env!(\"OUT_DIR\"), \"/facehugger.rs\"));\n".to_owned(),
        ));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    write_files(&root, &files);
    std::fs::copy(
        Path::new(facehugger).join("Cargo.lock"),
        root.join("Cargo.lock"),
    )
    .unwrap();

    cargo(&env, &root, &["build", "-j", "3"], &[]).success();
    // The big model's blob came once, not three times (a large file comes in a few ranged
    // pieces; a connection that stops at a piece another took over may have been sent a little
    // past it).
    let big = env.hub.repo("model", "acme/big").unwrap();
    let lfs_bytes: u64 = big.commits[0]
        .files
        .iter()
        .filter(|f| f.is_lfs())
        .map(|f| f.size)
        .sum();
    let sent = env.hub.counts().cdn_body_bytes;
    assert!(
        (lfs_bytes..2 * lfs_bytes).contains(&sent),
        "{sent} bytes sent for {lfs_bytes}"
    );
    // Every small file was fetched exactly once across the three scripts.
    let mut fetches: Vec<String> = env
        .requests()
        .iter()
        .filter(|r| r.is_resolve() && !r.path().ends_with(".safetensors"))
        .map(|r| r.path().to_owned())
        .collect();
    let all = fetches.len();
    fetches.sort();
    fetches.dedup();
    assert_eq!(all, fetches.len(), "{fetches:#?}");
    assert_eq!(
        fetches.len(),
        1 + 3,
        "acme/big's config.json, acme/tiny's 3 json files"
    );
    assert_eq!(
        env.count("/api/models/acme/big/revision/main"),
        3,
        "each script resolves (no lock)"
    );
}
