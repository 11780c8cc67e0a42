//! The standalone binary prints its endpoint first and exposes the request log over HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use ureq::Agent;

/// Starts the binary with `args`; returns it and its endpoint.
fn spawn(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_test-hub"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let endpoint = line.trim().strip_prefix("endpoint=").unwrap().to_string();
    (child, endpoint)
}

#[test]
fn binary_prints_endpoint_and_serves_the_log() {
    let (mut child, endpoint) = spawn(&["--page-size", "1", "--token", "tok"]);

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
    assert_eq!(log[0]["status"], 200);
}

#[test]
fn binary_flags_switch_on_todays_hub() {
    let (mut child, endpoint) = spawn(&[
        "--xet",
        "--sign-ranges",
        "--max-unranged-bytes",
        "100000",
        "--resolve-rate-limit",
        "2/60",
        "--rate-limit-retry-after",
    ]);
    let agent: Agent = Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let resolve = format!("{endpoint}/acme/tiny/resolve/main/model.safetensors");
    let answers = (|| -> Result<_, ureq::Error> {
        let tree = agent
            .get(format!(
                "{endpoint}/api/models/acme/tiny/tree/main?recursive=true"
            ))
            .call()?
            .body_mut()
            .read_to_string()?;
        let head = agent.head(&resolve).call()?;
        let location = head.headers()["location"].to_str().unwrap().to_string();
        let whole = agent.get(&location).call()?.status();
        let ranged = agent
            .get(&location)
            .header("Range", "bytes=0-9")
            .call()?
            .status();
        let second = agent.head(&resolve).call()?.status();
        let third = agent.head(&resolve).call()?;
        Ok((tree, head, whole, ranged, second, third))
    })();
    child.kill().unwrap();
    child.wait().unwrap();

    let (tree, head, whole, ranged, second, third) = answers.expect("the hub answers");
    assert!(tree.contains("\"xetHash\""), "{tree}");
    assert!(head.headers().contains_key("x-xet-hash"));
    // Above the unranged limit, and signed for no Range.
    assert_eq!((whole.as_u16(), ranged.as_u16()), (400, 403));
    assert_eq!(second.as_u16(), 302);
    assert_eq!(third.status().as_u16(), 429);
    assert!(third.headers().contains_key("retry-after"));
}
