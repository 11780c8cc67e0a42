//! Requests to the Hub and its CDN: retries with backoff for what may pass, redirects followed
//! by hand so that the token only ever goes to the endpoint's own origin, error answers mapped
//! to what they mean, JSON bodies read up to a bound, and the token cut out of every error.

use std::io::Read;
use std::thread;
use std::time::Duration;

use serde::Deserialize;
use ureq::http::{Response, Uri};
use ureq::{Agent, Body};

use super::limits::{Pause, RateLimit};
use super::{ByteRange, HubConfig, HubError};
use crate::repo::Repo;
use crate::report::{Event, Reporter};
use crate::text::{MAX_SHOWN_CHARS, shown};

/// Redirect hops followed before giving up, as the reference client.
const MAX_REDIRECTS: usize = 20;
/// Largest JSON body accepted from the API (a page of 1000 tree entries is ~250 KB).
const MAX_JSON_BYTES: u64 = 64 * 1024 * 1024;
/// What replaces the token in error messages.
const REDACTED: &str = "<redacted>";
/// Retries after the first attempt, for statuses and errors that may pass.
const MAX_RETRIES: u32 = 5;
/// Waits for a rate limit's window to reset, on top of the retries: a window of the Hub's is a
/// few minutes, and other clients may use up the next one too.
const MAX_RATE_LIMIT_WAITS: u32 = 10;
/// Idle connections kept for reuse: more than `--jobs` ever has open.
const MAX_POOLED_CONNECTIONS: usize = 256;

/// An HTTP client for one Hub endpoint. Cheap to clone; clones share connections.
#[derive(Clone)]
pub(super) struct Transport {
    config: HubConfig,
    agent: Agent,
    /// The endpoint's origin: the only one that gets the token.
    pub(super) origin: String,
    /// Set by a `429` that says when its window resets: every request waits for it.
    pause: Pause,
}

impl Transport {
    pub(super) fn new(config: HubConfig) -> Transport {
        let agent: Agent = Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_per_read(Some(config.read_timeout))
            .user_agent(concat!("facehugger/", env!("CARGO_PKG_VERSION")))
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                    .build(),
            )
            // Every connection a sync opens stays pooled between its requests: a new one costs a
            // TLS handshake. Requests are small, so their buffer can be too.
            .max_idle_connections(MAX_POOLED_CONNECTIONS)
            .max_idle_connections_per_host(MAX_POOLED_CONNECTIONS)
            .output_buffer_size(16 * 1024)
            .build()
            .into();
        let origin = origin_of(&config.endpoint);
        Transport {
            config,
            agent,
            origin,
            pause: Pause::default(),
        }
    }

    /// The endpoint.
    pub(super) fn endpoint(&self) -> &str {
        &self.config.endpoint
    }

    /// GET with retries and hand-followed redirects; any answer but 2xx becomes an error.
    /// Returns the response and the URL that gave it. A `429` that says when its rate limit's
    /// window resets pauses every request of the run until then (`reporter` hears of it once).
    pub(super) fn get_ok(
        &self,
        url: &str,
        range: impl Into<Option<ByteRange>>,
        what: &str,
        (repo, revision): (&Repo, Option<&str>),
        reporter: &dyn Reporter,
    ) -> Result<(Response<Body>, String), HubError> {
        let range = range.into();
        let from_hub = origin_of(url) == self.origin;
        let mut attempt = 0;
        let mut rate_limit_waits = 0;
        let resolve = url.contains("/resolve/");
        loop {
            self.pause.wait(resolve);
            let result =
                self.get_following(url, range, what, reporter)
                    .and_then(|(response, final_url)| {
                        let status = response.status().as_u16();
                        if response.status().is_success() {
                            Ok((response, final_url))
                        } else if matches!(status, 401 | 403 | 404 | 410)
                            && origin_of(&final_url) != self.origin
                        {
                            Err(HubError::ExpiredLocation {
                                what: what.to_owned(),
                                status,
                                url: strip_query(&final_url).to_owned(),
                            })
                        } else {
                            Err(self.status_error(response, url, what, repo, revision))
                        }
                    });
            if let Err(HubError::Status {
                rate_limit: Some(limit),
                ..
            }) = &result
                && let Some(wait) = limit.wait()
                && rate_limit_waits < MAX_RATE_LIMIT_WAITS
            {
                self.pause_for(limit, wait, reporter);
                rate_limit_waits += 1;
                continue;
            }
            let retry = match &result {
                // Asking the Hub again gives a fresh CDN link.
                Err(HubError::ExpiredLocation { .. }) => from_hub,
                Err(error) => error.is_transient(),
                Ok(_) => false,
            };
            match result {
                Err(error) if retry && attempt < MAX_RETRIES => {
                    thread::sleep(self.backoff_delay(attempt, &error));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Pauses every request for `wait` (a rate limit's window resets then); the first worker to
    /// hear of the window says so.
    fn pause_for(&self, limit: &RateLimit, wait: Duration, reporter: &dyn Reporter) {
        if self.pause.extend(wait, limit.quota) {
            reporter.event(Event::RateLimited {
                wait,
                resource: &limit.resource,
                quota: limit.quota,
                window_seconds: limit.window_seconds,
            });
        }
    }

    /// The rate limit an answer announces, if it says nothing is left of the window: the next
    /// request would get a `429`, so every request waits for the reset instead.
    fn heed(&self, response: &Response<Body>, reporter: &dyn Reporter) {
        let header = |name: &str| response.headers().get(name)?.to_str().ok();
        if let Some(limit) = header("ratelimit")
            .and_then(|limit| RateLimit::parse(limit, header("ratelimit-policy")))
            && let Some(wait) = limit.wait()
        {
            self.pause_for(&limit, wait, reporter);
        }
    }

    /// The wait before retry number `attempt` (from 0): the configured backoff, doubling, at
    /// most 8 times it.
    pub(crate) fn retry_delay(&self, attempt: u32) -> Duration {
        (self.config.backoff * 2u32.pow(attempt.min(3))).min(self.config.backoff * 8)
    }

    fn backoff_delay(&self, attempt: u32, error: &HubError) -> Duration {
        // Like the reference client: wait what Retry-After asks (capped), plus the base backoff.
        if let HubError::Status {
            retry_after: Some(seconds),
            ..
        } = error
        {
            return Duration::from_secs((*seconds).min(60)) + self.config.backoff;
        }
        self.retry_delay(attempt)
    }

    /// One GET, following redirects by hand. The token goes only to the endpoint's origin, and
    /// only while the redirects have not left it: a URL of the endpoint that another origin
    /// redirects to was chosen by that origin, and gets no token (as the reference client's
    /// HTTP library does). Only http and https targets are followed; a loop, or more than
    /// [`MAX_REDIRECTS`] hops, is an error.
    fn get_following(
        &self,
        url: &str,
        range: Option<ByteRange>,
        what: &str,
        reporter: &dyn Reporter,
    ) -> Result<(Response<Body>, String), HubError> {
        let mut current = url.to_owned();
        let mut visited: Vec<String> = Vec::new();
        let mut on_endpoint = true;
        for _ in 0..=MAX_REDIRECTS {
            on_endpoint = on_endpoint && origin_of(&current) == self.origin;
            let mut request = self.agent.get(&current);
            if let Some(token) = &self.config.token
                && on_endpoint
            {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            if let Some(value) = range.and_then(ByteRange::header) {
                request = request.header("range", value);
            }
            let response = request
                .call()
                .map_err(|error| transport_error(error, what, &current))?;
            if response.status().is_success() || response.status().is_redirection() {
                self.heed(&response, reporter);
            }
            if !response.status().is_redirection() {
                return Ok((response, current));
            }
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            // Read the (small) redirect body so the connection can go back to the pool.
            let mut body = response.into_body().into_reader().take(64 * 1024);
            let _ = std::io::copy(&mut body, &mut std::io::sink());
            let location = location.ok_or_else(|| HubError::InvalidResponse {
                what: what.to_owned(),
                url: strip_query(&current).to_owned(),
                message: format!("a {status} redirect without a Location"),
            })?;
            let next = join_url(&current, &location).ok_or_else(|| HubError::InvalidResponse {
                what: what.to_owned(),
                url: strip_query(&current).to_owned(),
                message: format!(
                    "a redirect to `{}`: only http and https URLs are followed",
                    shown(&location, MAX_SHOWN_CHARS)
                ),
            })?;
            if next == current || visited.contains(&next) {
                return Err(HubError::InvalidResponse {
                    what: what.to_owned(),
                    url: strip_query(&current).to_owned(),
                    message: format!("a redirect loop back to {}", strip_query(&next)),
                });
            }
            visited.push(std::mem::replace(&mut current, next));
        }
        Err(HubError::InvalidResponse {
            what: what.to_owned(),
            url: strip_query(url).to_owned(),
            message: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// The error with the token cut out of all its texts: a hostile server may echo it back in
    /// a message, a URL or a file name, and errors are printed. (A token of fewer than 8
    /// characters is no real token, and cutting it out would garble the message.)
    pub(super) fn redact(&self, error: HubError) -> HubError {
        match self
            .config
            .token
            .as_deref()
            .filter(|token| token.len() >= 8)
        {
            Some(token) => error.map_texts(|text| text.replace(token, REDACTED)),
            None => error,
        }
    }

    /// Maps an error answer to what it means, by the Hub's `X-Error-Code` (hf-protocol.md §2).
    fn status_error(
        &self,
        response: Response<Body>,
        url: &str,
        what: &str,
        repo: &Repo,
        revision: Option<&str>,
    ) -> HubError {
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let code = header("x-error-code").unwrap_or_default();
        let authenticated = self.config.token.is_some();
        let repo_name = repo.to_string();
        match code.as_str() {
            "RepoNotFound" => {
                return HubError::RepoNotFound {
                    repo: repo_name,
                    endpoint: self.config.endpoint.clone(),
                    authenticated,
                };
            }
            "GatedRepo" => {
                return HubError::Gated {
                    repo: repo_name,
                    authenticated,
                };
            }
            "RevisionNotFound" => {
                return HubError::RevisionNotFound {
                    repo: repo_name,
                    revision: revision.unwrap_or_default().to_owned(),
                };
            }
            "EntryNotFound" => {
                return HubError::EntryNotFound {
                    repo: repo_name,
                    revision: revision.unwrap_or_default().to_owned(),
                    path: url.rsplit("/resolve/").next().unwrap_or(url).to_owned(),
                };
            }
            _ => {}
        }
        let retry_after = header("retry-after").and_then(|seconds| seconds.trim().parse().ok());
        let rate_limit = (status == 429)
            .then(|| RateLimit::parse(&header("ratelimit")?, header("ratelimit-policy").as_deref()))
            .flatten()
            .map(Box::new);
        let message = header("x-error-message").unwrap_or_else(|| error_from_body(response));
        // The server's words, printed: no terminal escapes, no screenful.
        let message = shown(&message, 500);
        HubError::Status {
            what: what.to_owned(),
            status,
            url: strip_query(url).to_owned(),
            message,
            retry_after,
            rate_limit,
        }
    }
}

/// The body's `{"error": "..."}`, if it has one (bounded: the body is only read for a message).
fn error_from_body(response: Response<Body>) -> String {
    let mut text = String::new();
    let _ = response
        .into_body()
        .into_reader()
        .take(64 * 1024)
        .read_to_string(&mut text);
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|value| {
            value
                .get("error")?
                .as_str()
                .map(|s| s.chars().take(500).collect())
        })
        .unwrap_or_default()
}

/// A request that got no usable answer. Headers too large to be the Hub's are a bad answer, not
/// a network failure: retrying would not help.
fn transport_error(error: ureq::Error, what: &str, url: &str) -> HubError {
    match error {
        ureq::Error::LargeResponseHeader(_, limit) => HubError::InvalidResponse {
            what: what.to_owned(),
            url: strip_query(url).to_owned(),
            message: format!(
                "response headers larger than {} KiB, which no Hub sends",
                limit / 1024
            ),
        },
        error => HubError::Network {
            what: what.to_owned(),
            origin: origin_of(url),
            message: describe_transport_error(&error),
        },
    }
}

fn describe_transport_error(error: &ureq::Error) -> String {
    match error {
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::ConnectionFailed => "connection failed".to_owned(),
        ureq::Error::Timeout(kind) => format!("timed out ({kind})"),
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

pub(super) fn read_json<T: for<'de> Deserialize<'de>>(
    response: Response<Body>,
    url: &str,
    what: &str,
) -> Result<T, HubError> {
    let text = read_text(response, url, what)?;
    serde_json::from_str(&text).map_err(|error| HubError::InvalidResponse {
        what: what.to_owned(),
        url: strip_query(url).to_owned(),
        message: format!("invalid JSON: {}", shown(&error.to_string(), 300)),
    })
}

/// The body of a JSON answer, at most [`MAX_JSON_BYTES`]: a larger one is refused, before a
/// byte of it is read when its `Content-Length` says so, else once the limit is reached.
pub(super) fn read_text(
    response: Response<Body>,
    url: &str,
    what: &str,
) -> Result<String, HubError> {
    let invalid = |message: String| HubError::InvalidResponse {
        what: what.to_owned(),
        url: strip_query(url).to_owned(),
        message,
    };
    let limit = format!(
        "the most facehugger reads from the API is {} MiB",
        MAX_JSON_BYTES >> 20
    );
    let announced = response
        .headers()
        .get("content-length")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if let Some(length) = announced.filter(|length| *length > MAX_JSON_BYTES) {
        return Err(invalid(format!("an answer of {length} bytes; {limit}")));
    }
    response
        .into_body()
        .with_config()
        .limit(MAX_JSON_BYTES)
        .read_to_string()
        .map_err(|error| match error {
            ureq::Error::BodyExceedsLimit(_) => invalid(format!("an answer too large; {limit}")),
            error => invalid(error.to_string()),
        })
}

/// The URL of `Link: <url>; rel="next"`, if any.
pub(super) fn next_page(response: &Response<Body>) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|param| matches!(param.trim(), "rel=\"next\"" | "rel=next"));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

pub(super) fn content_range_start(response: &Response<Body>) -> Option<u64> {
    let value = response.headers().get("content-range")?.to_str().ok()?;
    let range = value.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

pub(super) fn strip_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// `scheme://host:port`, lowercase, with the default port made explicit: what "same origin" means.
pub(crate) fn origin_of(url: &str) -> String {
    match url.parse::<Uri>() {
        Ok(uri) => {
            let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
            let host = uri.host().unwrap_or("").to_ascii_lowercase();
            let port = uri
                .port_u16()
                .unwrap_or(if scheme == "https" { 443 } else { 80 });
            format!("{scheme}://{host}:{port}")
        }
        Err(_) => String::from("invalid-url"),
    }
}

/// Resolves a `Location` against the URL that answered it (absolute, `//host/...`, `/path` or
/// relative). Only http and https targets are accepted.
fn join_url(base: &str, location: &str) -> Option<String> {
    let base_uri: Uri = base.parse().ok()?;
    let scheme = base_uri.scheme_str()?;
    let authority = base_uri.authority()?.as_str();
    let joined = if location.contains("://") {
        location.to_owned()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = base_uri.path();
        let folder = &path[..path.rfind('/').map_or(0, |slash| slash + 1)];
        format!("{scheme}://{authority}{folder}{location}")
    };
    let uri: Uri = joined.parse().ok()?;
    matches!(uri.scheme_str(), Some("http" | "https")).then_some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_targets_resolve_like_urljoin() {
        let base = "http://hub:1/old-org/tiny/resolve/main/sub/top.txt";
        assert_eq!(
            join_url(base, "/acme/tiny/x").as_deref(),
            Some("http://hub:1/acme/tiny/x")
        );
        assert_eq!(
            join_url(base, "other.txt").as_deref(),
            Some("http://hub:1/old-org/tiny/resolve/main/sub/other.txt")
        );
        assert_eq!(
            join_url(base, "https://cdn:2/b?x=1").as_deref(),
            Some("https://cdn:2/b?x=1")
        );
        assert_eq!(
            join_url(base, "//cdn:3/b").as_deref(),
            Some("http://cdn:3/b")
        );
        assert_eq!(join_url(base, "file:///etc/passwd"), None);
        assert_eq!(join_url(base, "ftp://x/y"), None);
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://HuggingFace.co/api"),
            "https://huggingface.co:443"
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/x"),
            "http://127.0.0.1:8080"
        );
        assert_ne!(
            origin_of("http://127.0.0.1:1/"),
            origin_of("http://127.0.0.1:2/")
        );
    }

    #[test]
    fn link_headers_give_the_next_page() {
        let response = Response::builder()
            .header("link", "<http://h/api?cursor=2>; rel=\"next\"")
            .body(Body::builder().data(""))
            .unwrap();
        assert_eq!(
            next_page(&response).as_deref(),
            Some("http://h/api?cursor=2")
        );
    }

    #[test]
    fn errors_never_carry_the_token() {
        let transport = Transport::new(HubConfig {
            endpoint: "http://hub:1".to_owned(),
            token: Some("hf_secret_token".to_owned()),
            backoff: Duration::from_millis(1),
            read_timeout: Duration::from_secs(1),
        });
        let error = transport.redact(HubError::InvalidResponse {
            what: "listing `hf_secret_token.txt`".to_owned(),
            url: "http://cdn:2/hf_secret_token".to_owned(),
            message: "echo: hf_secret_token".to_owned(),
        });
        let message = error.to_string();
        assert!(!message.contains("hf_secret_token"), "{message}");
        assert_eq!(message.matches(REDACTED).count(), 3, "{message}");
    }
}
