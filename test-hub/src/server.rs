//! The two loopback HTTP origins: the Hub (API and resolve URLs) and the CDN that LFS files
//! redirect to.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, anyhow};
use serde::Serialize;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use crate::edge::{RateLimiter, Signer};
use crate::faults::{self, Fault, FaultKind};
use crate::fixtures::{Content, Hub, LoadOptions, RepoInfo, hex, xet_hash};
use crate::http::{Framing, Listener, Request, Response};

/// How the test hub behaves. Build with struct update syntax: `Options { page_size: 5, ..Default::default() }`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory of `*.toml` repo specs.
    pub fixtures: PathBuf,
    /// Hub origin port; 0 picks a free one.
    pub port: u16,
    /// CDN origin port; 0 picks a free one.
    pub cdn_port: u16,
    /// Entries per page of the tree API (the Hub uses 1000).
    pub page_size: usize,
    /// Tokens accepted in `Authorization: Bearer <token>`.
    pub valid_tokens: Vec<String>,
    /// Delay added before answering each request, on both origins.
    pub latency: Duration,
    /// Body bytes per second for each response (one response at a time per connection), or unlimited.
    pub bandwidth: Option<u64>,
    /// Where generated files too large for memory are written; default `<temp dir>/test-hub-data`.
    pub data_dir: Option<PathBuf>,
    /// Size overrides for generated files, keyed by `"<repo id>/<path>"` (e.g. to make
    /// `acme/big/model.bin` 4 GiB for a benchmark).
    pub file_sizes: BTreeMap<String, u64>,
    /// Answer any request with an unknown token `401 Invalid credentials in Authorization header`,
    /// as the real Hub does. Off by default: unknown tokens then count as no token.
    pub reject_invalid_tokens: bool,

    // Today's Hub (hf-protocol.md 1.10): LFS files live in Xet and reach a client with Xet off
    // through the bridge. Each switch is off by default.
    /// Xet metadata: every LFS file is listed with a `xetHash` (see [`xet_hash`](crate::xet_hash))
    /// and its resolve answers carry `X-Xet-Hash` and `Link: <…/xet-read-token/<commit>>;
    /// rel="xet-auth"`. The Xet storage itself is not served: clients must run with Xet off.
    pub xet: bool,
    /// Sign each CDN URL minted by a resolve for that request's exact `Range` header (none: the
    /// whole file) and until [`signed_url_ttl`](Options::signed_url_ttl) from now. The CDN
    /// answers `403` to a request with another `Range`, after the expiry, or with an altered
    /// query.
    pub sign_ranges: bool,
    /// How long a signed CDN URL stays valid (about an hour on the Hub). Zero mints URLs that
    /// have already expired.
    pub signed_url_ttl: Duration,
    /// The CDN answers `400` (`<h1>400</h1>`, as the bridge does for files it cannot serve
    /// whole) to a `GET` without a usable `Range` for a file larger than this. Ranged requests
    /// and `HEAD` still work.
    pub max_unranged_bytes: Option<u64>,
    /// `(quota, window)`: resolve requests (`HEAD`/`GET` on the Hub origin with a `/resolve/`
    /// segment) are counted in fixed windows; beyond `quota` in a window each gets `429` until
    /// the window ends. Every resolve answer carries `RateLimit` and `RateLimit-Policy`. A
    /// window opens with the first resolve after the previous one closed.
    pub resolve_rate_limit: Option<(u64, Duration)>,
    /// With `resolve_rate_limit`, also send `Retry-After` (the same seconds as `RateLimit`'s
    /// `t`) on a 429. The Hub often sends none.
    pub rate_limit_retry_after: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            fixtures: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/hub")),
            port: 0,
            cdn_port: 0,
            page_size: 1000,
            valid_tokens: vec!["hf_test_token".into()],
            latency: Duration::ZERO,
            bandwidth: None,
            data_dir: None,
            file_sizes: BTreeMap::new(),
            reject_invalid_tokens: false,
            xet: false,
            sign_ranges: false,
            signed_url_ttl: Duration::from_secs(3600),
            max_unranged_bytes: None,
            resolve_rate_limit: None,
            rate_limit_retry_after: false,
        }
    }
}

/// Which listener a request reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The Hub endpoint (`HF_ENDPOINT`).
    Hub,
    /// The CDN origin that LFS downloads redirect to.
    Cdn,
}

/// A request as it arrived.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    /// Which listener got it.
    pub origin: Origin,
    /// The client's address: the requests of one kept-alive connection share it.
    pub peer: String,
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// Path and query, still percent-encoded.
    pub url: String,
    /// All headers, names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The status it was answered with; `None` while the answer is being made, or when the
    /// connection was closed without one.
    pub status: Option<u16>,
}

impl LoggedRequest {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.url.split('?').next().unwrap_or_default()
    }

    /// A resolve request: on the Hub origin, with a `/resolve/` segment (what the Hub's
    /// "resolvers" rate limit counts).
    pub fn is_resolve(&self) -> bool {
        self.origin == Origin::Hub && self.path().contains("/resolve/")
    }
}

/// What a client cost the hub, from the request log (see [`TestHub::counts`]; also served as
/// JSON at `GET /_test/counts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    /// Every request on either origin.
    pub requests: usize,
    /// Resolve requests ([`LoggedRequest::is_resolve`]), whatever their answer.
    pub resolves: usize,
    /// CDN requests answered `403` (a signed URL used for another range, or expired).
    pub refused: usize,
    /// Requests answered `429`.
    pub rate_limited: usize,
    /// Body bytes the CDN origin sent (or began to send before a client hung up), to tell how
    /// many times over a client fetched a file.
    pub cdn_body_bytes: u64,
}

/// A running test hub; dropping it stops both listeners.
pub struct TestHub {
    state: Arc<State>,
    // Dropping them stops the listeners.
    _listeners: [Listener; 2],
}

struct State {
    hub: Hub,
    options: Options,
    endpoint: String,
    cdn_origin: String,
    log: Mutex<Log>,
    faults: Mutex<Vec<Fault>>,
    signer: Option<Signer>,
    limiter: Option<RateLimiter>,
    /// Body bytes sent by the CDN origin since the log was last cleared.
    cdn_body_bytes: Arc<AtomicU64>,
}

/// The request log. A request is logged when it arrives and gets its status once answered:
/// it is found again by its number, which clearing the log does not reuse.
#[derive(Default)]
struct Log {
    entries: Vec<LoggedRequest>,
    /// How many requests were logged before `entries[0]`.
    cleared: usize,
}

impl Log {
    /// Logs a request; returns its number.
    fn push(&mut self, request: LoggedRequest) -> usize {
        self.entries.push(request);
        self.cleared + self.entries.len() - 1
    }

    fn set_status(&mut self, number: usize, status: Option<u16>) {
        if let Some(entry) = number
            .checked_sub(self.cleared)
            .and_then(|i| self.entries.get_mut(i))
        {
            entry.status = status;
        }
    }

    fn clear(&mut self) {
        self.cleared += self.entries.len();
        self.entries.clear();
    }
}

impl TestHub {
    /// Loads the fixtures and starts listening on 127.0.0.1.
    pub fn start(options: Options) -> Result<TestHub> {
        let load = LoadOptions {
            data_dir: options.data_dir.clone(),
            file_sizes: options.file_sizes.clone(),
        };
        let hub = Hub::load(&options.fixtures, &load)?;
        // Both origins are known before either serves: each listener's handler needs the state.
        let hub_socket = std::net::TcpListener::bind(("127.0.0.1", options.port))
            .map_err(|e| anyhow!("cannot listen on 127.0.0.1:{}: {e}", options.port))?;
        let cdn_socket = std::net::TcpListener::bind(("127.0.0.1", options.cdn_port))
            .map_err(|e| anyhow!("cannot listen on 127.0.0.1:{}: {e}", options.cdn_port))?;
        let state = Arc::new(State {
            hub,
            endpoint: format!("http://{}", hub_socket.local_addr()?),
            cdn_origin: format!("http://{}", cdn_socket.local_addr()?),
            signer: options
                .sign_ranges
                .then(|| Signer::new(options.signed_url_ttl)),
            limiter: options.resolve_rate_limit.map(|(quota, window)| {
                RateLimiter::new(quota, window, options.rate_limit_retry_after)
            }),
            options,
            log: Mutex::new(Log::default()),
            faults: Mutex::new(Vec::new()),
            cdn_body_bytes: Arc::new(AtomicU64::new(0)),
        });
        let serve = |socket, origin| {
            let state = state.clone();
            Listener::serve(socket, move |request| handle(request, &state, origin))
        };
        let listeners = [
            serve(hub_socket, Origin::Hub)?,
            serve(cdn_socket, Origin::Cdn)?,
        ];
        Ok(TestHub {
            state,
            _listeners: listeners,
        })
    }

    /// The Hub origin, e.g. `http://127.0.0.1:PORT`: the value for `HF_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        self.state.endpoint.clone()
    }

    /// The CDN origin that LFS resolve URLs redirect to.
    pub fn cdn_origin(&self) -> String {
        self.state.cdn_origin.clone()
    }

    /// A snapshot of every request so far, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.state.log().entries.clone()
    }

    /// Resolves, refused CDN requests and 429s in the request log.
    pub fn counts(&self) -> RequestCounts {
        self.state.counts()
    }

    /// Makes the next matching requests fail as the fault says (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        self.state
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(fault);
    }

    /// Forgets the faults not used up yet: the hub is well again.
    pub fn clear_faults(&self) {
        self.state
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Forgets the logged requests.
    pub fn clear_requests(&self) {
        self.state.log().clear();
        self.state.cdn_body_bytes.store(0, Ordering::Relaxed);
    }

    /// The loaded fixtures.
    pub fn hub(&self) -> &Hub {
        &self.state.hub
    }

    /// A fixture repo by type (`model`, `dataset`, `space`) and current id.
    pub fn repo(&self, repo_type: &str, id: &str) -> Option<&RepoInfo> {
        self.state.hub.repo(repo_type, id)
    }

    /// The commit sha a ref name or commit sha resolves to.
    pub fn commit_sha(&self, repo_type: &str, id: &str, rev: &str) -> Option<String> {
        Some(self.repo(repo_type, id)?.commit(rev)?.sha.clone())
    }
}

impl State {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        // A panicking test thread must not hide the log from the others.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn counts(&self) -> RequestCounts {
        let log = self.log();
        let count =
            |keep: &dyn Fn(&LoggedRequest) -> bool| log.entries.iter().filter(|r| keep(r)).count();
        RequestCounts {
            requests: log.entries.len(),
            resolves: count(&|r| r.is_resolve()),
            refused: count(&|r| r.origin == Origin::Cdn && r.status == Some(403)),
            rate_limited: count(&|r| r.status == Some(429)),
            cdn_body_bytes: self.cdn_body_bytes.load(Ordering::Relaxed),
        }
    }
}

fn handle(request: Request, state: &State, origin: Origin) -> Response {
    let logged = LoggedRequest {
        origin,
        peer: request.peer,
        method: request.method,
        url: request.url,
        headers: request.headers,
        status: None,
    };
    if origin == Origin::Hub && logged.path() == "/_test/requests" {
        return into_response(test_requests(state, &logged), None);
    }
    if origin == Origin::Hub && logged.path() == "/_test/counts" {
        return into_response(Reply::json(200, &json!(state.counts())), None);
    }
    let number = state.log().push(logged.clone());
    if !state.options.latency.is_zero() {
        thread::sleep(state.options.latency);
    }
    let mut response = answer(state, origin, logged);
    let status = (response.framing != Framing::Hangup).then_some(response.status);
    state.log().set_status(number, status);
    if origin == Origin::Cdn {
        response.body = Box::new(Counted {
            inner: response.body,
            total: state.cdn_body_bytes.clone(),
        });
    }
    response
}

/// A body that adds what is read of it to a total.
struct Counted {
    inner: Box<dyn Read + Send>,
    total: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.total.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

/// The answer to a logged request: the edge's (rate limit, signed URLs) if it refuses the
/// request, else the injected fault's or the origin's.
fn answer(state: &State, origin: Origin, mut logged: LoggedRequest) -> Response {
    let edge_headers = match edge(state, origin, &logged) {
        Ok(headers) => headers,
        Err(refusal) => return into_response(refusal, state.options.bandwidth),
    };
    let fault = faults::take(
        &mut state.faults.lock().unwrap_or_else(PoisonError::into_inner),
        logged.path(),
    );
    let mut reply = match &fault {
        Some(FaultKind::Status {
            status,
            retry_after,
        }) => {
            let reply = Reply::json(*status, &json!({ "error": "injected fault" }));
            match retry_after {
                Some(seconds) => reply.header("Retry-After", seconds.to_string()),
                None => reply,
            }
        }
        Some(FaultKind::Redirect(location)) => {
            Reply::new(302, format!("Found. Redirecting to {location}"))
                .header("Content-Type", "text/plain; charset=utf-8")
                .header("Location", location.as_str())
        }
        Some(FaultKind::JsonBody(value)) => Reply::json(200, value),
        Some(FaultKind::ErrorMessage { status, message }) => {
            // A text that cannot be a header value (control characters) goes in the body only.
            if message
                .bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
            {
                Reply::hub_error(*status, None, message)
            } else {
                Reply::json(*status, &json!({ "error": message }))
            }
        }
        _ => {
            if fault == Some(FaultKind::IgnoreRange) {
                logged.headers.retain(|(name, _)| name != "range");
            }
            let reply = match origin {
                Origin::Hub => hub_route(state, &logged),
                Origin::Cdn => cdn_route(state, &logged),
            };
            match &fault {
                Some(FaultKind::TreeEntries(extra)) => reply.with_tree_entries(extra),
                Some(FaultKind::NextPage(url)) => {
                    let mut reply = reply;
                    reply
                        .headers
                        .retain(|(name, _)| !name.eq_ignore_ascii_case("link"));
                    reply.header("Link", format!("<{url}>; rel=\"next\""))
                }
                _ => reply,
            }
        }
    };
    reply.headers.extend(edge_headers);
    let response = into_response(reply, state.options.bandwidth);
    match &fault {
        Some(kind) => faults::alter(kind, response),
        None => response,
    }
}

/// What the edge in front of the origins says about a request: `Err` with its refusal, or `Ok`
/// with the headers it adds to the answer.
fn edge(
    state: &State,
    origin: Origin,
    request: &LoggedRequest,
) -> Result<Vec<(String, String)>, Reply> {
    match origin {
        Origin::Hub => {
            let Some(limiter) = state.limiter.as_ref().filter(|_| request.is_resolve()) else {
                return Ok(Vec::new());
            };
            let admission = limiter.admit(Instant::now());
            if !admission.refused {
                return Ok(admission.headers);
            }
            let message =
                "You have exceeded the rate limit for resolvers; wait for the window to reset.";
            let mut reply = Reply::json(429, &json!({ "error": message }));
            reply.headers.extend(admission.headers);
            Err(reply)
        }
        Origin::Cdn => {
            let range = request.header("range");
            if let Some(signer) = &state.signer
                && let Err(message) = signer.check(&request.url, range, SystemTime::now())
            {
                // As S3 words it. The message may quote the request's Range: escaped.
                let message = message
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;");
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"
                );
                return Err(Reply::new(403, body).header("Content-Type", "application/xml"));
            }
            let content = request
                .path()
                .strip_prefix("/blobs/")
                .and_then(|b| state.hub.blob(b));
            if let (Some(limit), Some(content), "GET") = (
                state.options.max_unranged_bytes,
                content,
                request.method.as_str(),
            ) {
                let whole = range.and_then(|r| parse_range(r, content.len())).is_none();
                if whole && content.len() > limit {
                    // What the bridge answers (a bare HTML page) to a request for a file it
                    // cannot serve in one piece.
                    return Err(Reply::new(400, "<h1>400</h1>").header("Content-Type", "text/html"));
                }
            }
            Ok(Vec::new())
        }
    }
}

/// A response before it is written.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

enum Body {
    Bytes(Vec<u8>),
    Content {
        content: Content,
        start: u64,
        end: u64,
    },
}

impl Reply {
    fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Body::Bytes(body.into()),
        }
    }

    fn json(status: u16, value: &Value) -> Reply {
        Reply::new(status, value.to_string()).header("Content-Type", "application/json")
    }

    fn not_found() -> Reply {
        Reply::new(404, "Not Found").header("Content-Type", "text/plain")
    }

    /// A Hub error: JSON body plus the headers huggingface_hub maps to exceptions.
    fn hub_error(status: u16, code: Option<&str>, message: &str) -> Reply {
        let mut reply = Reply::json(status, &json!({ "error": message }));
        if let Some(code) = code {
            reply = reply.header("X-Error-Code", code);
        }
        reply.header("X-Error-Message", message)
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// A JSON array answer (a tree page) with `extra` entries appended.
    fn with_tree_entries(mut self, extra: &[Value]) -> Reply {
        if let Body::Bytes(bytes) = &self.body
            && let Ok(Value::Array(mut entries)) = serde_json::from_slice::<Value>(bytes)
        {
            entries.extend(extra.iter().cloned());
            self.body = Body::Bytes(Value::Array(entries).to_string().into_bytes());
        }
        self
    }
}

fn into_response(reply: Reply, bandwidth: Option<u64>) -> Response {
    let (reader, len): (Box<dyn Read + Send>, u64) = match reply.body {
        Body::Bytes(bytes) => {
            let len = bytes.len() as u64;
            (Box::new(io::Cursor::new(bytes)), len)
        }
        Body::Content {
            content,
            start,
            end,
        } => match content.reader(start, end) {
            Ok(reader) => (reader, end - start),
            Err(error) => {
                let message = format!("cannot read fixture content: {error}").into_bytes();
                let len = message.len() as u64;
                return Response {
                    status: 500,
                    headers: Vec::new(),
                    body: Box::new(io::Cursor::new(message)),
                    len,
                    framing: Framing::Honest,
                };
            }
        },
    };
    let body = match bandwidth {
        Some(rate) => Box::new(Throttled {
            inner: reader,
            rate: rate.max(1),
            start: Instant::now(),
            sent: 0,
        }),
        None => reader,
    };
    Response {
        status: reply.status,
        headers: reply.headers,
        body,
        len,
        framing: Framing::Honest,
    }
}

/// Paces a body to `rate` bytes per second.
struct Throttled {
    inner: Box<dyn Read + Send>,
    rate: u64,
    start: Instant,
    sent: u64,
}

impl Read for Throttled {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Small reads keep the pace smooth at low rates.
        let max = (self.rate / 20).clamp(1, buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..max])?;
        self.sent += n as u64;
        let due = Duration::from_secs_f64(self.sent as f64 / self.rate as f64);
        if let Some(wait) = due.checked_sub(self.start.elapsed()) {
            thread::sleep(wait);
        }
        Ok(n)
    }
}

fn test_requests(state: &State, request: &LoggedRequest) -> Reply {
    match request.method.as_str() {
        "GET" => Reply::json(200, &json!(state.log().entries)),
        "DELETE" => {
            state.log().clear();
            state.cdn_body_bytes.store(0, Ordering::Relaxed);
            Reply::new(204, "")
        }
        _ => Reply::not_found(),
    }
}

/// Whether the request carries a token, and whether it is one of the valid ones.
#[derive(PartialEq)]
enum Auth {
    Anonymous,
    Valid,
    Invalid,
}

fn auth(state: &State, request: &LoggedRequest) -> Auth {
    let Some(value) = request.header("authorization") else {
        return Auth::Anonymous;
    };
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Auth::Invalid,
    };
    if state.options.valid_tokens.iter().any(|t| t == token) {
        Auth::Valid
    } else {
        Auth::Invalid
    }
}

fn hub_route(state: &State, request: &LoggedRequest) -> Reply {
    if request.method != "GET" && request.method != "HEAD" {
        return Reply::not_found();
    }
    let path = request.path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", plural, owner, name, rest @ ..] => {
            let Some(repo_type) = singular(plural) else {
                return Reply::not_found();
            };
            let prefix = format!("/api/{plural}");
            let repo = match find_repo(state, request, repo_type, &prefix, owner, name) {
                Ok(repo) => repo,
                Err(reply) => return reply,
            };
            match rest {
                [] => revision_info(repo, "main"),
                ["revision", rev @ ..] if !rev.is_empty() => {
                    revision_info(repo, &percent_decode(&rev.join("/")))
                }
                ["tree", rev_and_path @ ..] if !rev_and_path.is_empty() => {
                    let (rev, sub) = split_revision(rev_and_path);
                    tree(state, request, repo, &rev, &sub)
                }
                _ => Reply::not_found(),
            }
        }
        [
            kind @ ("datasets" | "spaces"),
            owner,
            name,
            "resolve",
            rev_and_path @ ..,
        ] => resolve(state, request, kind, owner, name, rev_and_path),
        [owner, name, "resolve", rev_and_path @ ..] => {
            resolve(state, request, "", owner, name, rev_and_path)
        }
        _ => Reply::not_found(),
    }
}

fn singular(plural: &str) -> Option<&'static str> {
    match plural {
        "models" => Some("model"),
        "datasets" => Some("dataset"),
        "spaces" => Some("space"),
        _ => None,
    }
}

/// Splits percent-encoded segments into the revision and the rest. Clients encode the revision
/// as one segment (`refs%2Fpr%2F1`); an unencoded `refs/pr/N` is accepted too.
fn split_revision(segments: &[&str]) -> (String, String) {
    let take = match segments {
        ["refs", "pr" | "convert", _, ..] => 3,
        _ => 1,
    }
    .min(segments.len());
    (
        percent_decode(&segments[..take].join("/")),
        percent_decode(&segments[take..].join("/")),
    )
}

/// Finds the repo named in a URL `<prefix>/<owner>/<name>/...`, or the error or rename reply.
fn find_repo<'a>(
    state: &'a State,
    request: &LoggedRequest,
    repo_type: &str,
    prefix: &str,
    owner: &str,
    name: &str,
) -> Result<&'a RepoInfo, Reply> {
    let auth = auth(state, request);
    if auth == Auth::Invalid && state.options.reject_invalid_tokens {
        let message = "Invalid credentials in Authorization header";
        return Err(Reply::hub_error(401, None, message));
    }
    let id = format!("{owner}/{name}");
    let visible = |repo: &RepoInfo| !repo.private || auth == Auth::Valid;
    if let Some(repo) = state.hub.repo(repo_type, &id).filter(|r| visible(r)) {
        if repo.gated && auth != Auth::Valid {
            let message = format!(
                "Access to {repo_type} {id} is restricted. You must have access to it and be authenticated to access it. Please log in."
            );
            return Err(Reply::hub_error(401, Some("GatedRepo"), &message));
        }
        return Ok(repo);
    }
    if let Some(repo) = state.hub.renamed(repo_type, &id).filter(|r| visible(r)) {
        // Same URL under the new id, relative like the Hub's.
        let old = format!("{prefix}/{id}");
        let location = format!("{prefix}/{}{}", repo.id, &request.url[old.len()..]);
        return Err(Reply::new(
            307,
            format!("Temporary Redirect. Redirecting to {location}"),
        )
        .header("Location", location));
    }
    // The Hub answers 401 to anonymous callers, so as not to say whether a private repo exists.
    let status = if auth == Auth::Valid { 404 } else { 401 };
    Err(Reply::hub_error(
        status,
        Some("RepoNotFound"),
        "Repository not found",
    ))
}

fn revision_not_found(rev: &str) -> Reply {
    Reply::hub_error(
        404,
        Some("RevisionNotFound"),
        &format!("Invalid rev id: {rev}"),
    )
}

fn revision_info(repo: &RepoInfo, rev: &str) -> Reply {
    let Some(commit) = repo.commit(rev) else {
        return revision_not_found(rev);
    };
    let index = repo.commits.iter().position(|c| c.sha == commit.sha);
    let siblings: Vec<Value> = commit
        .files
        .iter()
        .map(|f| json!({ "rfilename": f.path }))
        .collect();
    let body = json!({
        "_id": &hex(&Sha1::digest(&repo.id))[..24],
        "id": repo.id,
        "author": repo.id.split('/').next(),
        "sha": commit.sha,
        "lastModified": format!("2024-05-01T12:{:02}:00.000Z", index.unwrap_or(0) % 60),
        "private": repo.private,
        "gated": if repo.gated { json!("auto") } else { json!(false) },
        "disabled": false,
        "tags": [],
        "siblings": siblings,
    });
    Reply::json(200, &body)
}

fn tree(state: &State, request: &LoggedRequest, repo: &RepoInfo, rev: &str, sub: &str) -> Reply {
    let Some(commit) = repo.commit(rev) else {
        return revision_not_found(rev);
    };
    let params = query_params(&request.url);
    let param = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let recursive = param("recursive").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let sub = sub.trim_end_matches('/');
    if !sub.is_empty()
        && !commit
            .tree
            .iter()
            .any(|e| e.path == sub && e.file.is_none())
    {
        return Reply::hub_error(
            404,
            Some("EntryNotFound"),
            &format!("{sub} does not exist on \"{rev}\""),
        )
        .header("X-Repo-Commit", &commit.sha);
    }
    let entries: Vec<_> = commit
        .tree
        .iter()
        .filter(|entry| {
            let rest = if sub.is_empty() {
                Some(entry.path.as_str())
            } else {
                entry
                    .path
                    .strip_prefix(sub)
                    .and_then(|r| r.strip_prefix('/'))
            };
            rest.is_some_and(|rest| recursive || !rest.contains('/'))
        })
        .collect();
    // The cursor is opaque, as the Hub's: the path of the previous page's last entry, in hex.
    // A client can only learn it from the previous page's `Link`, never compute it ahead.
    let cursor = match param("cursor").map(|c| decode_cursor(c)) {
        None => 0,
        Some(Some(last)) => entries.partition_point(|e| e.path.as_str() <= last.as_str()),
        Some(None) => return Reply::hub_error(400, None, "Invalid cursor"),
    };
    let end = entries.len().min(cursor + state.options.page_size.max(1));
    let page: Vec<Value> = entries
        .get(cursor..end)
        .unwrap_or_default()
        .iter()
        .map(|entry| match &entry.file {
            None => json!({ "type": "directory", "oid": entry.oid, "size": 0, "path": entry.path }),
            Some(file) => {
                let mut value =
                    json!({ "type": "file", "oid": file.oid, "size": file.size, "path": file.path });
                if let Some(sha256) = &file.lfs_sha256 {
                    value["lfs"] = json!({
                        "oid": sha256,
                        "size": file.size,
                        "pointerSize": file.pointer_size(),
                    });
                    if state.options.xet {
                        value["xetHash"] = json!(xet_hash(sha256));
                    }
                }
                value
            }
        })
        .collect();
    let mut reply = Reply::json(200, &Value::Array(page));
    if end < entries.len() {
        // The next page is the same URL with the cursor replaced, absolute like the Hub's.
        let mut query: Vec<&str> = request
            .url
            .split_once('?')
            .map(|(_, q)| q.split('&').filter(|p| !p.starts_with("cursor=")).collect())
            .unwrap_or_default();
        let next = format!("cursor={}", hex(entries[end - 1].path.as_bytes()));
        query.push(&next);
        let url = format!("{}{}?{}", state.endpoint, request.path(), query.join("&"));
        reply = reply.header("Link", format!("<{url}>; rel=\"next\""));
    }
    reply
}

/// The path a tree page's cursor stands for.
fn decode_cursor(cursor: &str) -> Option<String> {
    if !cursor.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

fn resolve(
    state: &State,
    request: &LoggedRequest,
    kind: &str,
    owner: &str,
    name: &str,
    rev_and_path: &[&str],
) -> Reply {
    let prefix = if kind.is_empty() {
        String::new()
    } else {
        format!("/{kind}")
    };
    let repo_type = singular(kind).unwrap_or("model");
    let repo = match find_repo(state, request, repo_type, &prefix, owner, name) {
        Ok(repo) => repo,
        Err(reply) => return reply,
    };
    let (rev, path) = split_revision(rev_and_path);
    let Some(commit) = repo.commit(&rev) else {
        return revision_not_found(&rev);
    };
    let Some(file) = commit.file(&path) else {
        return Reply::hub_error(
            404,
            Some("EntryNotFound"),
            &format!("{path} does not exist on \"{rev}\""),
        )
        .header("X-Repo-Commit", &commit.sha);
    };
    let Some(sha256) = &file.lfs_sha256 else {
        let reply = serve_content(request, file.raw_content())
            .header("ETag", format!("\"{}\"", file.oid))
            .header("X-Repo-Commit", &commit.sha);
        return reply;
    };
    let blob = format!("/blobs/{sha256}");
    let query = match &state.signer {
        Some(signer) => signer.sign(&blob, request.header("range"), SystemTime::now()),
        None => {
            let expires = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                + 3600;
            format!("expires={expires}")
        }
    };
    let location = format!("{}{blob}?{query}", state.cdn_origin);
    let reply = Reply::new(302, format!("Found. Redirecting to {location}"))
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Location", location)
        .header("ETag", format!("\"{}\"", file.oid))
        .header("X-Linked-Etag", format!("\"{sha256}\""))
        .header("X-Linked-Size", file.size.to_string())
        .header("X-Repo-Commit", &commit.sha);
    if !state.options.xet {
        return reply;
    }
    let token_url = format!(
        "{}/api/{}s/{}/xet-read-token/{}",
        state.endpoint, repo.repo_type, repo.id, commit.sha
    );
    reply
        .header("X-Xet-Hash", xet_hash(sha256))
        .header("Link", format!("<{token_url}>; rel=\"xet-auth\""))
}

fn cdn_route(state: &State, request: &LoggedRequest) -> Reply {
    let blob = request.path().strip_prefix("/blobs/");
    match (
        request.method.as_str(),
        blob.and_then(|b| state.hub.blob(b)),
    ) {
        ("GET" | "HEAD", Some(content)) => serve_content(request, content)
            .header("ETag", format!("\"{}\"", blob.unwrap_or_default())),
        _ => Reply::not_found(),
    }
}

/// 200 with the whole content, or 206/416 for a `Range` request.
fn serve_content(request: &LoggedRequest, content: &Content) -> Reply {
    let len = content.len();
    let (status, start, end) = match request.header("range").and_then(|r| parse_range(r, len)) {
        None => (200, 0, len),
        Some(Some((start, end))) => (206, start, end),
        Some(None) => {
            return Reply::new(416, "")
                .header("Content-Range", format!("bytes */{len}"))
                .header("Accept-Ranges", "bytes");
        }
    };
    let mut reply = Reply {
        status,
        headers: Vec::new(),
        body: Body::Content {
            content: content.clone(),
            start,
            end,
        },
    }
    .header("Content-Type", "application/octet-stream")
    .header("Accept-Ranges", "bytes");
    if status == 206 {
        let range = format!("bytes {start}-{}/{len}", end - 1);
        reply = reply.header("Content-Range", range);
    }
    reply
}

/// Parses a single `bytes=` range into a half-open interval. `None`: no usable range header
/// (serve everything); `Some(None)`: unsatisfiable.
fn parse_range(header: &str, len: u64) -> Option<Option<(u64, u64)>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        if suffix == 0 || len == 0 {
            return Some(None);
        }
        return Some(Some((len - suffix.min(len), len)));
    }
    let first: u64 = first.parse().ok()?;
    let last = if last.is_empty() {
        u64::MAX
    } else {
        last.parse().ok()?
    };
    if last < first {
        return None;
    }
    if first >= len {
        return Some(None);
    }
    Some(Some((first, last.min(len - 1) + 1)))
}

pub(crate) fn query_params(url: &str) -> Vec<(String, String)> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// Decodes `%XX` escapes (UTF-8); malformed escapes stay as they are.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-0", 10), Some(Some((0, 1))));
        assert_eq!(parse_range("bytes=2-", 10), Some(Some((2, 10))));
        assert_eq!(parse_range("bytes=5-100", 10), Some(Some((5, 10))));
        assert_eq!(parse_range("bytes=-3", 10), Some(Some((7, 10))));
        assert_eq!(parse_range("bytes=10-", 10), Some(None));
        assert_eq!(parse_range("bytes=5-2", 10), None);
        assert_eq!(parse_range("items=1-2", 10), None);
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("refs%2Fpr%2F1"), "refs/pr/1");
        assert_eq!(
            percent_decode("dir%20with%20space/%C3%BC%23%3F%26%2B%3D~%40%3A.txt"),
            "dir with space/ü#?&+=~@:.txt"
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
