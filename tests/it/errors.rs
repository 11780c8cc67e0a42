//! Errors a user can act on: what they say and how the process exits.

#[cfg(unix)]
use std::fs::Permissions;
#[cfg(unix)]
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::support::{Env, TOKEN};

#[test]
fn manifest_errors_name_the_file_line_and_column() {
    let env = Env::new();
    let cases = [
        (
            "models:\n  - repo: acme/tiny\n    bogus: 1\n",
            "facehugger.yaml:3:5: unknown field `bogus`, expected one of",
        ),
        (
            "models:\n  - repo: a/b\n    repo: c/d\n",
            "facehugger.yaml:3:5: duplicate mapping key: repo",
        ),
        (
            "models:\n  - repo: acme/tiny\n    include: {a: 1}\n",
            "facehugger.yaml:3:14: invalid type: map, expected a pattern string or a list of pattern strings",
        ),
        (
            "models:\n  - repo: \"\"\n",
            "facehugger.yaml:2:11: invalid repo: the repo id is empty",
        ),
        (
            "models:\n  - repo: a/b/c\n",
            "facehugger.yaml:2:11: invalid repo: `a/b/c` has more than one `/`",
        ),
        (
            "models:\n  - repo: a/b\n    repo_type: modle\n",
            "facehugger.yaml:3:16: unknown repo_type `modle`: expected `model`, `dataset` or `space`",
        ),
        (
            "models:\n  - repo: a/b\n    ref: ../x\n",
            "facehugger.yaml:3:10: invalid ref:",
        ),
        (
            "models:\n  - ref: main\n",
            "facehugger.yaml:2:5: missing field `repo`",
        ),
        ("models: [\n", "facehugger.yaml:1:9:"),
        ("", "facehugger.yaml: the manifest is empty"),
    ];
    for (yaml, expected) in cases {
        env.manifest(yaml);
        let run = env.run(&[]).failure(2);
        assert!(
            run.stderr.starts_with(&format!("error: {expected}")),
            "{yaml:?}:\n{}",
            run.stderr
        );
    }
    std::fs::remove_file(env.project().join("facehugger.yaml")).unwrap();
    let run = env.run(&[]).failure(2);
    assert!(
        run.stderr.contains("error: no `facehugger.yaml` in `"),
        "{}",
        run.stderr
    );
    assert!(env.requests().is_empty());
}

#[test]
fn lock_errors_name_the_file_and_the_entry() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n");
    let cases = [
        (
            "{}",
            "facehugger.lock:1:1: invalid type: map, expected a sequence",
        ),
        (
            "[{\"repo_id\": \"acme/tiny\", \"revision\": \"abc\"}]",
            "facehugger.lock: entry 1 (acme/tiny): `revision` must be a full 40-hex commit id, got `abc`",
        ),
        ("[1]", "facehugger.lock: entry 1: expected an object"),
        (
            "[\n{\"repo_id\": 5}\n",
            "facehugger.lock:2:14: EOF while parsing a list",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(env.project().join("facehugger.lock"), text).unwrap();
        let run = env.run(&["--frozen"]).failure(2);
        assert!(
            run.stderr.starts_with(&format!("error: {expected}")),
            "{text:?}:\n{}",
            run.stderr
        );
    }
}

#[test]
fn hub_errors_say_what_to_do() {
    let env = Env::new();
    let cases = [
        (
            "acme/nope",
            None,
            "acme/nope@main: repository `acme/nope` not found at",
        ),
        ("acme/private", None, "if it is private, set HF_TOKEN"),
        (
            "acme/gated",
            None,
            "acme/gated@main: repository `acme/gated` is gated: accept its conditions on the Hub, then set HF_TOKEN",
        ),
        (
            "acme/tiny\n    ref: nope",
            None,
            "acme/tiny@nope: revision `nope` not found in `acme/tiny`",
        ),
        (
            "acme/nope",
            Some(TOKEN),
            "check the name, and that your token can read it",
        ),
    ];
    for (repo, token, expected) in cases {
        env.manifest(&format!("models:\n  - repo: {repo}\n"));
        let mut cmd = env.cmd(&[]);
        if let Some(token) = token {
            cmd.env("HF_TOKEN", token);
        }
        let output = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{repo}: {stderr}");
        assert!(!stderr.contains(TOKEN));
    }
}

#[test]
fn an_unreachable_hub_is_named_and_retried() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n");
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let output = env
        .cmd(&[])
        .env("HF_ENDPOINT", format!("http://{closed}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach http://{closed}")),
        "{stderr}"
    );
    assert!(stderr.contains("acme/tiny@main"), "{stderr}");
}

/// Runs facehugger as `nobody` when the tests run as root (root writes anywhere); else as is.
/// Returns its exit code, stderr and the uid it ran as.
#[cfg(unix)]
fn run_unprivileged(env: &Env) -> (Option<i32>, String, u32) {
    let as_root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    let (mut cmd, uid) = if as_root {
        let setpriv = ["--reuid=65534", "--regid=65534", "--clear-groups", "--"];
        (env.wrapped_cmd("setpriv", &setpriv, &[]), 65534)
    } else {
        let uid = std::fs::metadata(env.dir.path()).unwrap().uid();
        (env.std_cmd(&[]), uid)
    };
    let output = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr, uid)
}

#[cfg(unix)]
#[test]
fn a_cache_that_cannot_be_written_is_reported_with_its_path() {
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: README.md\n");
    for dir in [env.dir.path().to_path_buf(), env.project()] {
        std::fs::set_permissions(&dir, Permissions::from_mode(0o777)).unwrap();
    }
    std::fs::create_dir_all(env.cache()).unwrap();
    std::fs::set_permissions(env.cache(), Permissions::from_mode(0o555)).unwrap();
    let owner = std::fs::metadata(env.cache()).unwrap().uid();
    let (code, stderr, me) = run_unprivileged(&env);
    assert_eq!(code, Some(1), "{stderr}");
    let cache = env.cache().display().to_string();
    assert!(stderr.contains(&format!("`{cache}")), "{stderr}");
    let expected = if owner == me {
        format!(
            "permission denied: `{cache}` has mode 555: check that its owner, uid {me}, may write it"
        )
    } else {
        format!(
            "permission denied: `{cache}` belongs to uid {owner} (mode 555) and facehugger runs as uid {me}: check who owns it"
        )
    };
    assert!(stderr.contains(&expected), "{expected}\nin\n{stderr}");
}

#[cfg(unix)]
#[test]
fn a_project_folder_that_cannot_be_written_is_named_not_the_cache() {
    // As in a container whose working directory is a folder mounted from the host: the cache is
    // fine, the lock file cannot be written.
    let env = Env::new();
    env.manifest("models:\n  - repo: acme/tiny\n    include: README.md\n");
    std::fs::set_permissions(env.dir.path(), Permissions::from_mode(0o777)).unwrap();
    std::fs::create_dir_all(env.cache()).unwrap();
    std::fs::set_permissions(env.cache(), Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(env.project(), Permissions::from_mode(0o555)).unwrap();
    let owner = std::fs::metadata(env.project()).unwrap().uid();
    let (code, stderr, me) = run_unprivileged(&env);
    assert_eq!(code, Some(1), "{stderr}");
    let project = env.project().display().to_string();
    // The lock file as found (from the working directory), its folder in full.
    assert!(
        stderr.contains("failed to write `facehugger.lock`"),
        "{stderr}"
    );
    let expected = if owner == me {
        format!("permission denied: `{project}` has mode 555")
    } else {
        format!(
            "permission denied: `{project}` belongs to uid {owner} (mode 555) and facehugger runs as uid {me}"
        )
    };
    assert!(stderr.contains(&expected), "{expected}\nin\n{stderr}");
    assert!(!stderr.contains("cache"), "the cache is fine:\n{stderr}");
}
