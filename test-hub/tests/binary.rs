//! The standalone binary prints its endpoint first and exposes the request log over HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn binary_prints_endpoint_and_serves_the_log() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_test-hub"))
        .args(["--page-size", "1", "--token", "tok"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let endpoint = line.trim().strip_prefix("endpoint=").unwrap().to_string();

    let tree = ureq::get(format!("{endpoint}/api/models/acme/private/tree/main"))
        .header("Authorization", "Bearer tok")
        .call();
    let log = ureq::get(format!("{endpoint}/_test/requests"))
        .call()
        .map(|mut r| r.body_mut().read_to_string().unwrap());
    child.kill().unwrap();
    child.wait().unwrap();

    let tree = tree.expect("tree request");
    assert!(
        tree.headers().get("link").is_some(),
        "page size 1 leaves more pages"
    );
    let log: serde_json::Value = serde_json::from_str(&log.unwrap()).unwrap();
    assert_eq!(log[0]["url"], "/api/models/acme/private/tree/main");
    assert_eq!(log[0]["origin"], "hub");
}
