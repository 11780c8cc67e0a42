//! Real HTTP requests against a running test hub.

use std::time::{Duration, Instant};

use serde_json::Value;
use test_hub::{
    Fault, FaultKind, Options, Origin, TestHub, git_blob_sha1, lfs_pointer, sha256_hex, xet_hash,
};
use ureq::Agent;
use ureq::http::Response;

const TOKEN: &str = "hf_test_token";

/// A client that shows redirects and error statuses instead of acting on them.
fn agent() -> Agent {
    Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

fn start() -> TestHub {
    TestHub::start(Options::default()).unwrap()
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

fn into_reply(mut response: Response<ureq::Body>) -> Reply {
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let body = response
        .body_mut()
        .with_config()
        .limit(100 << 20)
        .read_to_vec()
        .unwrap();
    Reply {
        status: response.status().as_u16(),
        headers,
        body,
    }
}

fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    into_reply(agent().run(builder.body(()).unwrap()).unwrap())
}

fn get(url: &str) -> Reply {
    request("GET", url, &[])
}

fn get_with_token(url: &str) -> Reply {
    request("GET", url, &[("Authorization", &format!("Bearer {TOKEN}"))])
}

#[test]
fn revision_api_resolves_refs_and_shas() {
    let hub = start();
    let e = hub.endpoint();
    let main = hub.commit_sha("model", "acme/tiny", "main").unwrap();
    let v1 = hub.commit_sha("model", "acme/tiny", "v1.0").unwrap();
    assert_ne!(main, v1);
    assert_eq!(hub.repo("model", "acme/tiny").unwrap().commits[0].sha, v1);

    let reply = get(&format!("{e}/api/models/acme/tiny/revision/main"));
    assert_eq!(reply.status, 200);
    assert!(reply.header("content-type").unwrap().contains("json"));
    let info = reply.json();
    assert_eq!(info["id"], "acme/tiny");
    assert_eq!(info["sha"], main.as_str());
    assert_eq!(info["private"], false);
    assert!(info["_id"].is_string() && info["lastModified"].is_string());
    let siblings: Vec<&str> = info["siblings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rfilename"].as_str().unwrap())
        .collect();
    assert!(siblings.contains(&"generation_config.json"));
    assert!(siblings.contains(&"dir with space/ü#?&+=~@:.txt"));

    for (rev, sha) in [
        ("v1.0", &v1),
        ("refs%2Fpr%2F1", &main),
        (&v1[..], &v1),
        (&main[..7], &main),
    ] {
        let info = get(&format!("{e}/api/models/acme/tiny/revision/{rev}")).json();
        assert_eq!(info["sha"], sha.as_str(), "{rev}");
    }

    let dataset = get(&format!("{e}/api/datasets/acme/data/revision/main")).json();
    assert_eq!(dataset["id"], "acme/data");
    let space = get(&format!("{e}/api/spaces/acme/app/revision/main"));
    assert_eq!(space.status, 200);

    let missing = get(&format!("{e}/api/models/acme/tiny/revision/nope"));
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-error-code"), Some("RevisionNotFound"));
    assert!(missing.json()["error"].is_string());
    // A model id is not a dataset.
    let wrong_type = get(&format!("{e}/api/datasets/acme/tiny/revision/main"));
    assert_eq!(wrong_type.header("x-error-code"), Some("RepoNotFound"));
}

#[test]
fn tree_lists_files_and_lfs_metadata() {
    let hub = start();
    let main = hub.commit_sha("model", "acme/tiny", "main").unwrap();
    let url = format!(
        "{}/api/models/acme/tiny/tree/{main}?recursive=true&expand=false",
        hub.endpoint()
    );
    let reply = get(&url);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("link"), None);
    let entries = reply.json();
    let entries = entries.as_array().unwrap();
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    for dir in ["sub", "sub/dir", "onnx", "dir with space"] {
        let entry = entries.iter().find(|e| e["path"] == dir).unwrap();
        assert_eq!(entry["type"], "directory");
        assert_eq!(entry["size"], 0);
        assert_eq!(entry["oid"].as_str().unwrap().len(), 40);
    }

    let config = entries.iter().find(|e| e["path"] == "config.json").unwrap();
    assert_eq!(config["type"], "file");
    assert_eq!(config["size"], 20);
    assert_eq!(config["oid"], git_blob_sha1("{\"hidden_size\": 16}\n"));
    assert!(config.get("lfs").is_none());

    let model = entries
        .iter()
        .find(|e| e["path"] == "model.safetensors")
        .unwrap();
    let content = test_hub::generate_bytes(1, 200_000);
    let sha256 = sha256_hex(&content);
    assert_eq!(model["size"], 200_000);
    assert_eq!(model["lfs"]["oid"], sha256.as_str());
    assert_eq!(model["lfs"]["size"], 200_000);
    let pointer = lfs_pointer(&sha256, 200_000);
    assert_eq!(model["lfs"]["pointerSize"], pointer.len());
    assert_eq!(model["oid"], git_blob_sha1(&pointer));

    // Non-recursive listing and a subfolder.
    let e = hub.endpoint();
    let top = get(&format!("{e}/api/models/acme/tiny/tree/main")).json();
    assert!(
        top.as_array()
            .unwrap()
            .iter()
            .all(|e| !e["path"].as_str().unwrap().contains('/'))
    );
    let sub = get(&format!(
        "{e}/api/models/acme/tiny/tree/main/sub?recursive=true"
    ))
    .json();
    let sub: Vec<&str> = sub
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(sub, ["sub/dir", "sub/dir/nested.txt", "sub/top.txt"]);
    let missing = get(&format!("{e}/api/models/acme/tiny/tree/main/nope"));
    assert_eq!(missing.header("x-error-code"), Some("EntryNotFound"));
}

#[test]
fn tree_pages_follow_link_headers() {
    let hub = TestHub::start(Options {
        page_size: 7,
        ..Options::default()
    })
    .unwrap();
    let mut url = Some(format!(
        "{}/api/models/acme/many/tree/main?recursive=true&expand=false",
        hub.endpoint()
    ));
    let mut paths = Vec::new();
    let mut pages = 0;
    while let Some(current) = url.take() {
        let reply = get(&current);
        assert_eq!(reply.status, 200);
        let page = reply.json();
        assert!(page.as_array().unwrap().len() <= 7);
        paths.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|e| e["path"].as_str().unwrap().to_string()),
        );
        pages += 1;
        if let Some(link) = reply.header("link") {
            let next = link
                .strip_prefix('<')
                .unwrap()
                .split_once(">; rel=\"next\"")
                .unwrap()
                .0;
            assert!(next.starts_with(&hub.endpoint()), "{next}");
            assert!(
                next.contains("recursive=true&expand=false&cursor="),
                "{next}"
            );
            url = Some(next.to_string());
        }
    }
    // 30 files and 3 directories.
    assert_eq!(paths.len(), 33);
    assert_eq!(pages, 5);
    let mut sorted = paths.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(paths, sorted);

    // The cursor is opaque, as the Hub's: an offset a client made up is refused.
    let first = format!(
        "{}/api/models/acme/many/tree/main?recursive=true",
        hub.endpoint()
    );
    for made_up in ["7", "x7", "zz"] {
        let reply = get(&format!("{first}&cursor={made_up}"));
        assert_eq!(reply.status, 400, "cursor={made_up}");
    }
}

#[test]
fn resolve_serves_regular_files_with_ranges() {
    let hub = start();
    let main = hub.commit_sha("model", "acme/tiny", "main").unwrap();
    let url = format!("{}/acme/tiny/resolve/main/config.json", hub.endpoint());
    let content = "{\"hidden_size\": 16}\n";
    let oid = git_blob_sha1(content);

    let head = request("HEAD", &url, &[("Accept-Encoding", "identity")]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("etag"), Some(format!("\"{oid}\"").as_str()));
    assert_eq!(head.header("x-repo-commit"), Some(main.as_str()));
    assert_eq!(head.header("content-length"), Some("20"));
    assert_eq!(head.header("accept-ranges"), Some("bytes"));
    assert!(head.body.is_empty());

    let full = get(&url);
    assert_eq!(full.status, 200);
    assert_eq!(full.text(), content);
    assert_eq!(full.header("etag"), head.header("etag"));

    let part = request("GET", &url, &[("Range", "bytes=1-4")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.text(), "\"hid");
    assert_eq!(part.header("content-range"), Some("bytes 1-4/20"));
    let tail = request("GET", &url, &[("Range", "bytes=16-")]);
    assert_eq!((tail.status, tail.text()), (206, "16}\n"));

    // The old commit, by tag and by sha.
    let v1 = hub.commit_sha("model", "acme/tiny", "v1.0").unwrap();
    for rev in ["v1.0", &v1] {
        let old = get(&format!(
            "{}/acme/tiny/resolve/{rev}/config.json",
            hub.endpoint()
        ));
        assert_eq!(old.text(), "{\"hidden_size\": 8}\n");
        assert_eq!(old.header("x-repo-commit"), Some(v1.as_str()));
    }
}

#[test]
fn resolve_redirects_lfs_files_to_the_cdn() {
    let hub = start();
    let main = hub.commit_sha("model", "acme/tiny", "main").unwrap();
    let file = hub
        .repo("model", "acme/tiny")
        .unwrap()
        .commit("main")
        .unwrap();
    let file = file.file("model.safetensors").unwrap();
    let sha256 = file.lfs_sha256.clone().unwrap();
    let url = format!(
        "{}/acme/tiny/resolve/{main}/model.safetensors",
        hub.endpoint()
    );
    let auth = format!("Bearer {TOKEN}");

    for method in ["HEAD", "GET"] {
        let reply = request(method, &url, &[("Authorization", &auth)]);
        assert_eq!(reply.status, 302);
        let location = reply.header("location").unwrap();
        assert!(location.starts_with(&format!("{}/blobs/{sha256}?expires=", hub.cdn_origin())));
        assert_eq!(
            reply.header("x-linked-etag"),
            Some(format!("\"{sha256}\"").as_str())
        );
        assert_eq!(reply.header("x-linked-size"), Some("200000"));
        assert_eq!(reply.header("x-repo-commit"), Some(main.as_str()));
        assert_eq!(
            reply.header("etag"),
            Some(format!("\"{}\"", file.oid).as_str())
        );
        assert_ne!(reply.header("content-length"), Some("200000"));
    }

    let location = request("HEAD", &url, &[])
        .header("location")
        .unwrap()
        .to_string();
    let blob = get(&location);
    assert_eq!(blob.status, 200);
    assert_eq!(blob.body, file.content().unwrap());
    assert_eq!(sha256_hex(&blob.body), sha256);
    let head = request("HEAD", &location, &[]);
    assert_eq!(head.header("content-length"), Some("200000"));

    let part = request("GET", &location, &[("Range", "bytes=199990-")]);
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        Some("bytes 199990-199999/200000")
    );
    assert_eq!(part.body, file.content().unwrap()[199_990..]);
    let beyond = request("GET", &location, &[("Range", "bytes=200000-")]);
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.header("content-range"), Some("bytes */200000"));

    let unknown = get(&format!("{}/blobs/{}", hub.cdn_origin(), "0".repeat(64)));
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.header("x-error-code"), None);

    let cdn: Vec<_> = hub
        .requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Cdn)
        .collect();
    assert_eq!(cdn.len(), 5);
    assert!(cdn.iter().all(|r| r.header("authorization").is_none()));
}

#[test]
fn resolve_decodes_revisions_and_unicode_paths() {
    let hub = start();
    let e = hub.endpoint();
    let main = hub.commit_sha("model", "acme/tiny", "main").unwrap();
    let quoted = "dir%20with%20space/%C3%BC%23%3F%26%2B%3D~%40%3A.txt";
    let reply = get(&format!("{e}/acme/tiny/resolve/refs%2Fpr%2F1/{quoted}"));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "awkward name\n");
    assert_eq!(reply.header("x-repo-commit"), Some(main.as_str()));

    let nested = get(&format!(
        "{e}/acme/tiny/resolve/refs%2Fpr%2F1/sub/dir/nested.txt"
    ));
    assert_eq!(nested.text(), "nested\n");

    let dataset = get(&format!(
        "{e}/datasets/acme/data/resolve/main/data/test.csv"
    ));
    assert_eq!(dataset.text(), "x,y\n1,2\n3,4\n");
    let parquet = get(&format!(
        "{e}/datasets/acme/data/resolve/main/data/train-00000-of-00001.parquet"
    ));
    assert_eq!(parquet.status, 302);
    let space = get(&format!("{e}/spaces/acme/app/resolve/main/index.html"));
    assert_eq!(space.text(), "<p>hello</p>\n");
}

#[test]
fn errors_carry_hub_error_codes() {
    let hub = start();
    let e = hub.endpoint();

    let missing_repo = get(&format!("{e}/api/models/acme/nope/revision/main"));
    assert_eq!(missing_repo.status, 401);
    assert_eq!(missing_repo.header("x-error-code"), Some("RepoNotFound"));
    assert!(missing_repo.header("x-error-message").is_some());
    let authenticated = get_with_token(&format!("{e}/acme/nope/resolve/main/x"));
    assert_eq!(authenticated.status, 404);
    assert_eq!(authenticated.header("x-error-code"), Some("RepoNotFound"));

    let missing_rev = request(
        "HEAD",
        &format!("{e}/acme/tiny/resolve/nope/config.json"),
        &[],
    );
    assert_eq!(missing_rev.status, 404);
    assert_eq!(missing_rev.header("x-error-code"), Some("RevisionNotFound"));

    let main = hub.commit_sha("model", "acme/tiny", "main").unwrap();
    let missing_file = request("HEAD", &format!("{e}/acme/tiny/resolve/main/nope.bin"), &[]);
    assert_eq!(missing_file.status, 404);
    assert_eq!(missing_file.header("x-error-code"), Some("EntryNotFound"));
    assert_eq!(missing_file.header("x-repo-commit"), Some(main.as_str()));
    // Case matters: Tokenizer.JSON and tokenizer.json are different files.
    let wrong_case = get(&format!("{e}/acme/tiny/resolve/main/TOKENIZER.json"));
    assert_eq!(wrong_case.header("x-error-code"), Some("EntryNotFound"));

    for path in [
        "/api/agent-harnesses",
        "/",
        "/acme/tiny",
        "/api/whatever/acme/tiny",
    ] {
        let reply = get(&format!("{e}{path}"));
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.header("x-error-code"), None, "{path}");
    }
}

#[test]
fn private_and_gated_repos_need_a_valid_token() {
    let hub = start();
    let e = hub.endpoint();
    for (url, anonymous_code) in [
        (
            format!("{e}/api/models/acme/private/revision/main"),
            "RepoNotFound",
        ),
        (
            format!("{e}/acme/private/resolve/main/config.json"),
            "RepoNotFound",
        ),
        (
            format!("{e}/api/models/acme/gated/revision/main"),
            "GatedRepo",
        ),
        (
            format!("{e}/acme/gated/resolve/main/config.json"),
            "GatedRepo",
        ),
    ] {
        let anonymous = get(&url);
        assert_eq!(anonymous.status, 401, "{url}");
        assert_eq!(
            anonymous.header("x-error-code"),
            Some(anonymous_code),
            "{url}"
        );
        let wrong = request("GET", &url, &[("Authorization", "Bearer hf_wrong")]);
        assert_eq!(wrong.status, 401, "{url}");
        let ok = get_with_token(&url);
        assert_eq!(ok.status, 200, "{url}");
    }
    let private = get_with_token(&format!("{e}/api/models/acme/private/revision/main")).json();
    assert_eq!(private["private"], true);

    let strict = TestHub::start(Options {
        reject_invalid_tokens: true,
        valid_tokens: vec!["other".into()],
        ..Options::default()
    })
    .unwrap();
    let url = format!("{}/api/models/acme/tiny/revision/main", strict.endpoint());
    let invalid = get_with_token(&url);
    assert_eq!(invalid.status, 401);
    assert_eq!(
        invalid.header("x-error-message"),
        Some("Invalid credentials in Authorization header")
    );
    let valid = request("GET", &url, &[("Authorization", "Bearer other")]);
    assert_eq!(valid.status, 200);
}

#[test]
fn renamed_repos_answer_relative_redirects() {
    let hub = start();
    let e = hub.endpoint();
    for (old, new) in [
        (
            "/old-org/tiny/resolve/main/sub/top.txt",
            "/acme/tiny/resolve/main/sub/top.txt",
        ),
        (
            "/api/models/old-org/tiny/revision/main",
            "/api/models/acme/tiny/revision/main",
        ),
        (
            "/api/models/old-org/tiny/tree/main?recursive=true&expand=false",
            "/api/models/acme/tiny/tree/main?recursive=true&expand=false",
        ),
    ] {
        for method in ["HEAD", "GET"] {
            let reply = request(method, &format!("{e}{old}"), &[]);
            assert_eq!(reply.status, 307, "{method} {old}");
            assert_eq!(reply.header("location"), Some(new), "{method} {old}");
        }
        assert_eq!(get(&format!("{e}{new}")).status, 200);
    }
    // The type is part of the identity: no dataset was renamed.
    let dataset = get(&format!(
        "{e}/datasets/old-org/tiny/resolve/main/sub/top.txt"
    ));
    assert_eq!(dataset.header("x-error-code"), Some("RepoNotFound"));
}

#[test]
fn requests_are_logged_on_both_origins() {
    let hub = start();
    let e = hub.endpoint();
    let url = format!("{e}/api/models/acme/tiny/revision/main");
    request(
        "GET",
        &url,
        &[("Authorization", "Bearer hf_test_token"), ("X-Custom", "1")],
    );
    let location = request(
        "HEAD",
        &format!("{e}/acme/tiny/resolve/main/onnx/model.onnx"),
        &[],
    )
    .header("location")
    .unwrap()
    .to_string();
    get(&location);

    let log = hub.requests();
    assert_eq!(log.len(), 3);
    let api: Vec<_> = log
        .iter()
        .filter(|r| r.url == "/api/models/acme/tiny/revision/main")
        .collect();
    assert_eq!(api.len(), 1);
    assert_eq!(api[0].origin, Origin::Hub);
    assert_eq!(api[0].method, "GET");
    assert_eq!(api[0].header("authorization"), Some("Bearer hf_test_token"));
    assert!(api[0].headers.contains(&("x-custom".into(), "1".into())));
    assert_eq!(log[1].method, "HEAD");
    assert_eq!(log[1].url, "/acme/tiny/resolve/main/onnx/model.onnx");
    assert_eq!(log[2].origin, Origin::Cdn);
    assert!(log[2].url.starts_with("/blobs/"));
    let statuses: Vec<_> = log.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(200), Some(302), Some(200)]);
    assert!(!log[0].is_resolve() && log[1].is_resolve() && !log[2].is_resolve());
    let counts = hub.counts();
    assert_eq!(
        (counts.resolves, counts.refused, counts.rate_limited),
        (1, 0, 0)
    );

    // Scripts read the log over HTTP; reading it is not logged itself.
    let json = get(&format!("{e}/_test/requests")).json();
    assert_eq!(json.as_array().unwrap().len(), 3);
    assert_eq!(json[2]["origin"], "cdn");
    assert_eq!(json[1]["status"], 302);
    hub.clear_requests();
    assert!(hub.requests().is_empty());

    // A connection closed without an answer has no status; clearing the log in between does
    // not confuse the statuses of later requests.
    hub.inject(Fault::new("config.json", FaultKind::Hangup, 1));
    let url = format!("{e}/acme/tiny/resolve/main/config.json");
    assert!(agent().get(&url).call().is_err());
    assert_eq!(get(&url).status, 200);
    let statuses: Vec<_> = hub.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [None, Some(200)]);
}

#[test]
fn latency_and_bandwidth_slow_responses_down() {
    let hub = TestHub::start(Options {
        latency: Duration::from_millis(150),
        bandwidth: Some(100_000),
        ..Options::default()
    })
    .unwrap();
    let e = hub.endpoint();
    let start = Instant::now();
    get(&format!("{e}/api/models/acme/tiny/revision/main"));
    assert!(start.elapsed() >= Duration::from_millis(150));

    // 50 kB at 100 kB/s takes about half a second.
    let start = Instant::now();
    let location = get(&format!(
        "{e}/datasets/acme/data/resolve/main/data/train-00000-of-00001.parquet"
    ));
    let blob = get(location.header("location").unwrap());
    assert_eq!(blob.body.len(), 50_000);
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(700), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

// Today's Hub (hf-protocol.md 1.10), one switch at a time.

/// The tree entries of acme/tiny at `rev`, by path.
fn tiny_tree(hub: &TestHub, rev: &str) -> Vec<Value> {
    let url = format!(
        "{}/api/models/acme/tiny/tree/{rev}?recursive=true&expand=false",
        hub.endpoint()
    );
    get(&url).json().as_array().unwrap().clone()
}

#[test]
fn xet_metadata_is_listed_and_sent_with_resolves() {
    let plain = start();
    assert!(
        tiny_tree(&plain, "main")
            .iter()
            .all(|e| e.get("xetHash").is_none())
    );
    let url = format!(
        "{}/acme/tiny/resolve/main/model.safetensors",
        plain.endpoint()
    );
    let head = request("HEAD", &url, &[]);
    assert_eq!(head.header("x-xet-hash"), None);
    assert_eq!(head.header("link"), None);

    let hub = TestHub::start(Options {
        xet: true,
        ..Options::default()
    })
    .unwrap();
    let e = hub.endpoint();
    let main = hub.commit_sha("model", "acme/tiny", "main").unwrap();
    let entries = tiny_tree(&hub, "main");
    let mut hashes = Vec::new();
    for entry in entries.iter().filter(|e| e["type"] == "file") {
        let Some(sha256) = entry["lfs"]["oid"].as_str() else {
            assert!(entry.get("xetHash").is_none(), "{entry}");
            continue;
        };
        let hash = entry["xetHash"].as_str().unwrap();
        assert_eq!(hash.len(), 64);
        assert!(
            hash.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_ne!(hash, sha256);
        assert_eq!(hash, xet_hash(sha256));
        hashes.push(hash.to_string());
    }
    // model.safetensors and onnx/model.onnx: two contents, two hashes.
    assert_eq!(hashes.len(), 2);
    assert_ne!(hashes[0], hashes[1]);
    // The same content has the same hash in another commit.
    let old = tiny_tree(&hub, "v1.0");
    let old_model = old
        .iter()
        .find(|e| e["path"] == "model.safetensors")
        .unwrap();
    let model = entries
        .iter()
        .find(|e| e["path"] == "model.safetensors")
        .unwrap();
    assert_eq!(old_model["xetHash"], model["xetHash"]);

    let url = format!("{e}/acme/tiny/resolve/main/model.safetensors");
    let token_link = format!("<{e}/api/models/acme/tiny/xet-read-token/{main}>; rel=\"xet-auth\"");
    for method in ["HEAD", "GET"] {
        let reply = request(method, &url, &[]);
        assert_eq!(reply.status, 302, "{method}");
        assert_eq!(
            reply.header("x-xet-hash"),
            model["xetHash"].as_str(),
            "{method}"
        );
        assert_eq!(reply.header("link"), Some(token_link.as_str()), "{method}");
        assert_eq!(reply.header("x-linked-size"), Some("200000"), "{method}");
    }
    // A ranged resolve is answered alike; the CDN's answer carries no Xet headers.
    let ranged = request("GET", &url, &[("Range", "bytes=0-9")]);
    assert_eq!(ranged.header("x-xet-hash"), model["xetHash"].as_str());
    let blob = request("GET", ranged.header("location").unwrap(), &[]);
    assert_eq!(blob.status, 200);
    assert_eq!(blob.header("x-xet-hash"), None);

    // Files outside LFS are not in Xet.
    let config = request(
        "HEAD",
        &format!("{e}/acme/tiny/resolve/main/config.json"),
        &[],
    );
    assert_eq!(config.status, 200);
    assert_eq!(config.header("x-xet-hash"), None);
    assert_eq!(config.header("link"), None);

    // Other repo types name theirs in the token route.
    let dataset = request(
        "HEAD",
        &format!("{e}/datasets/acme/data/resolve/main/data/train-00000-of-00001.parquet"),
        &[],
    );
    let commit = hub.commit_sha("dataset", "acme/data", "main").unwrap();
    let link = dataset.header("link").unwrap();
    assert_eq!(
        link,
        format!("<{e}/api/datasets/acme/data/xet-read-token/{commit}>; rel=\"xet-auth\"")
    );
}

/// The `Location` of a resolve of acme/tiny's model.safetensors, with these request headers.
fn cdn_url(hub: &TestHub, headers: &[(&str, &str)]) -> String {
    let url = format!(
        "{}/acme/tiny/resolve/main/model.safetensors",
        hub.endpoint()
    );
    let reply = request("GET", &url, headers);
    assert_eq!(reply.status, 302);
    reply.header("location").unwrap().to_string()
}

#[test]
fn signed_cdn_urls_hold_for_one_range_until_they_expire() {
    let hub = TestHub::start(Options {
        sign_ranges: true,
        ..Options::default()
    })
    .unwrap();
    let content = test_hub::generate_bytes(1, 200_000);

    // A URL minted without Range serves the whole file, and nothing else.
    let whole = cdn_url(&hub, &[]);
    assert!(whole.starts_with(&hub.cdn_origin()), "{whole}");
    assert!(
        whole.contains("expires=") && whole.contains("signature="),
        "{whole}"
    );
    let full = get(&whole);
    assert_eq!(full.status, 200);
    assert_eq!(full.body, content);
    assert_eq!(request("HEAD", &whole, &[]).status, 200);
    let refused = request("GET", &whole, &[("Range", "bytes=0-99")]);
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("content-type"), Some("application/xml"));
    assert!(
        refused.text().contains("<Code>AccessDenied</Code>"),
        "{}",
        refused.text()
    );
    assert!(
        refused
            .text()
            .contains("This URL is signed for no Range; the request has Range: bytes=0-99"),
        "{}",
        refused.text()
    );

    // A URL minted for a Range serves that range only.
    let ranged = cdn_url(&hub, &[("Range", "bytes=100-199")]);
    assert_ne!(ranged, whole);
    let part = request("GET", &ranged, &[("Range", "bytes=100-199")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, content[100..200]);
    for other in ["bytes=100-", "bytes=0-199", "bytes=200-299"] {
        let reply = request("GET", &ranged, &[("Range", other)]);
        assert_eq!(reply.status, 403, "{other}");
        let message = format!("signed for Range: bytes=100-199; the request has Range: {other}");
        assert!(reply.text().contains(&message), "{}", reply.text());
    }
    assert_eq!(get(&ranged).status, 403);

    // The query cannot be edited into another range or a later expiry, nor dropped.
    let unsigned = whole.split('?').next().unwrap().to_string();
    let widened = ranged.replace("bytes%3D100-199", "bytes%3D0-");
    let expires = whole
        .split("expires=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let later = whole.replace(
        expires,
        &(expires.parse::<u64>().unwrap() + 3600).to_string(),
    );
    for (forged, range) in [
        (&unsigned, None),
        (&widened, Some("bytes=0-")),
        (&later, None),
    ] {
        let headers: Vec<_> = range.iter().map(|r| ("Range", *r)).collect();
        let reply = request("GET", forged, &headers);
        assert_eq!(reply.status, 403, "{forged}");
    }
    assert!(request("GET", &later, &[]).text().contains("signature"));

    let counts = hub.counts();
    assert_eq!(counts.resolves, 2);
    assert_eq!(counts.refused, 9);
    assert_eq!(counts.rate_limited, 0);

    // Expired URLs are refused: a hub whose URLs live zero seconds.
    let stillborn = TestHub::start(Options {
        sign_ranges: true,
        signed_url_ttl: Duration::ZERO,
        ..Options::default()
    })
    .unwrap();
    let expired = get(&cdn_url(&stillborn, &[]));
    assert_eq!(expired.status, 403);
    assert!(
        expired.text().contains("Request has expired"),
        "{}",
        expired.text()
    );
    // A URL from another hub (another secret) is refused too.
    let foreign = whole.replace(&hub.cdn_origin(), &stillborn.cdn_origin());
    assert_eq!(get(&foreign).status, 403);
}

#[test]
fn files_above_the_unranged_limit_need_a_range() {
    let hub = TestHub::start(Options {
        max_unranged_bytes: Some(100_000),
        ..Options::default()
    })
    .unwrap();
    let content = test_hub::generate_bytes(1, 200_000);
    let location = cdn_url(&hub, &[]);
    let refused = get(&location);
    assert_eq!(refused.status, 400);
    assert_eq!(refused.header("content-type"), Some("text/html"));
    assert_eq!(refused.text(), "<h1>400</h1>");
    // A Range the CDN cannot use counts as none.
    assert_eq!(
        request("GET", &location, &[("Range", "items=0-9")]).status,
        400
    );

    let head = request("HEAD", &location, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("200000"));
    for (range, expected) in [
        ("bytes=0-", &content[..]),
        ("bytes=150000-199999", &content[150_000..]),
    ] {
        let part = request("GET", &location, &[("Range", range)]);
        assert_eq!(part.status, 206, "{range}");
        assert_eq!(part.body, expected, "{range}");
    }

    // Smaller files are served whole, and files outside LFS never meet the limit.
    let e = hub.endpoint();
    let small = get(&format!("{e}/acme/tiny/resolve/main/onnx/model.onnx"));
    assert_eq!(get(small.header("location").unwrap()).body.len(), 30_000);
    let readme = get(&format!("{e}/acme/tiny/resolve/main/README.md"));
    assert_eq!(readme.status, 200);
}

#[test]
fn resolves_are_rate_limited_in_fixed_windows() {
    let hub = TestHub::start(Options {
        resolve_rate_limit: Some((3, Duration::from_secs(60))),
        ..Options::default()
    })
    .unwrap();
    let e = hub.endpoint();
    let policy = Some("\"fixed window\";\"resolvers\";q=3;w=60");
    let model = format!("{e}/acme/tiny/resolve/main/model.safetensors");
    let location = request("HEAD", &model, &[])
        .header("location")
        .unwrap()
        .to_string();
    let resolves = [
        ("GET", format!("{e}/acme/tiny/resolve/main/config.json")),
        ("HEAD", format!("{e}/old-org/tiny/resolve/main/sub/top.txt")),
    ];
    let mut remaining = Vec::new();
    for (method, url) in &resolves {
        let reply = request(method, url, &[]);
        assert!(
            matches!(reply.status, 200 | 307),
            "{method} {url}: {}",
            reply.status
        );
        assert_eq!(reply.header("ratelimit-policy"), policy);
        remaining.push(
            reply
                .header("ratelimit")
                .unwrap()
                .split(";t=")
                .next()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(remaining, ["\"resolvers\";r=1", "\"resolvers\";r=0"]);

    // The quota is spent: every resolve is refused until the window ends.
    for (method, url) in [("HEAD", &model), ("GET", &model), ("HEAD", &resolves[0].1)] {
        let reply = request(method, url, &[]);
        assert_eq!(reply.status, 429, "{method} {url}");
        let ratelimit = reply.header("ratelimit").unwrap();
        let t: u64 = ratelimit
            .strip_prefix("\"resolvers\";r=0;t=")
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&t), "{ratelimit}");
        assert_eq!(reply.header("ratelimit-policy"), policy);
        assert_eq!(reply.header("retry-after"), None);
        if method == "GET" {
            assert!(
                reply.json()["error"]
                    .as_str()
                    .unwrap()
                    .contains("rate limit")
            );
        }
    }
    // Only resolves count: the API and the CDN still answer, without rate-limit headers.
    let api = get(&format!("{e}/api/models/acme/tiny/revision/main"));
    assert_eq!(api.status, 200);
    assert_eq!(api.header("ratelimit"), None);
    assert_eq!(get(&location).status, 200);
    let counts = hub.counts();
    assert_eq!((counts.resolves, counts.rate_limited), (6, 3));
}

#[test]
fn a_rate_limit_window_resets() {
    let hub = TestHub::start(Options {
        resolve_rate_limit: Some((1, Duration::from_secs(2))),
        rate_limit_retry_after: true,
        ..Options::default()
    })
    .unwrap();
    let url = format!("{}/acme/tiny/resolve/main/config.json", hub.endpoint());
    assert_eq!(get(&url).status, 200);
    let refused = get(&url);
    assert_eq!(refused.status, 429);
    let ratelimit = refused.header("ratelimit").unwrap();
    let t = ratelimit.strip_prefix("\"resolvers\";r=0;t=").unwrap();
    assert!(t == "1" || t == "2", "{ratelimit}");
    assert_eq!(refused.header("retry-after"), Some(t));
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some("\"fixed window\";\"resolvers\";q=1;w=2")
    );
    // `t` is rounded up: after it, a new window has opened.
    std::thread::sleep(Duration::from_secs(t.parse().unwrap()));
    let next = get(&url);
    assert_eq!(next.status, 200);
    assert_eq!(next.header("ratelimit"), Some("\"resolvers\";r=0;t=2"));
}
