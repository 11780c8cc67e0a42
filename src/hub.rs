//! The Hub's HTTP API, as huggingface_hub 2.4.0 uses it (see hf-protocol.md):
//! - `GET {E}/api/{type}s/{id}/revision/{rev}`: a ref to its commit (`sha`);
//! - `GET {E}/api/{type}s/{id}/tree/{commit}?recursive=true&expand=false`: the commit's files,
//!   paginated with `Link: <url>; rel="next"`; each file carries its etag (`lfs.oid` or `oid`),
//!   so no HEAD per file is needed;
//! - `GET {E}/{prefix}{id}/resolve/{commit}/{path}`: the content, often through a redirect to a
//!   CDN on another origin.
//!
//! Redirects are followed by hand so that the token only ever goes to the endpoint's own origin,
//! never to a CDN. Failures that may pass (429, 5xx, connection errors) are retried with backoff.
//!
//! Nothing a server says is trusted: file paths and etags are checked before they become cache
//! paths, redirects go to http(s) only and neither loop nor go on forever, JSON answers are
//! read up to [`MAX_JSON_BYTES`], and the token is cut out of every error (a hostile server
//! could echo it back, and errors are printed).

use std::fmt;
use std::io::Read;
use std::thread;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use ureq::http::{Response, Uri};
use ureq::{Agent, Body};

use crate::error::{MAX_SHOWN_CHARS, shown};
use crate::repo::{Repo, RepoFile, is_commit_sha, is_lower_hex, validate_repo_path};

/// Python's `quote(s, safe="")`: everything but letters, digits and `_.-~` is escaped.
const QUOTE_ALL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');
/// Python's `quote(path)`: as above, but `/` stays.
const QUOTE_PATH: &AsciiSet = &QUOTE_ALL.remove(b'/');

/// Redirect hops followed before giving up, as the reference client.
const MAX_REDIRECTS: usize = 20;
/// Largest JSON body accepted from the API (a page of 1000 tree entries is ~250 KB).
const MAX_JSON_BYTES: u64 = 64 * 1024 * 1024;
/// What replaces the token in error messages.
const REDACTED: &str = "<redacted>";
/// Retries after the first attempt, for statuses and errors that may pass.
const MAX_RETRIES: u32 = 5;

/// How to reach the Hub: endpoint, token and timing. Built from the environment by
/// [`HubConfig::from_env`], as the reference client reads it.
#[derive(Clone)]
pub struct HubConfig {
    /// `HF_ENDPOINT` without its trailing `/`; default `https://huggingface.co`.
    pub endpoint: String,
    /// The token sent to the endpoint's origin, if any.
    pub token: Option<String>,
    /// The first retry waits this long, doubling up to 8 times it (default 1 s).
    pub backoff: Duration,
    /// Longest silence while reading a response (`HF_HUB_DOWNLOAD_TIMEOUT`, default 10 s).
    pub read_timeout: Duration,
}

impl fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the token.
        f.debug_struct("HubConfig")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("backoff", &self.backoff)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

impl HubConfig {
    /// Reads `HF_ENDPOINT`, the token (`HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN`, the file at
    /// `HF_TOKEN_PATH` or `$HF_HOME/token`; none with `HF_HUB_DISABLE_IMPLICIT_TOKEN`) and
    /// `HF_HUB_DOWNLOAD_TIMEOUT`.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> HubConfig {
        let endpoint = env("HF_ENDPOINT")
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| "https://huggingface.co".to_owned())
            .trim_end_matches('/')
            .to_owned();
        let read_timeout = env("HF_HUB_DOWNLOAD_TIMEOUT")
            .and_then(|value| value.trim().parse::<u64>().ok())
            .unwrap_or(10);
        let backoff = env("FACEHUGGER_BACKOFF_MS")
            .and_then(|value| value.parse::<u64>().ok())
            .map_or(Duration::from_secs(1), Duration::from_millis);
        HubConfig {
            endpoint,
            token: token_from_env(env),
            backoff,
            read_timeout: Duration::from_secs(read_timeout.max(1)),
        }
    }
}

fn token_from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if env("HF_HUB_DISABLE_IMPLICIT_TOKEN").is_some_and(|value| is_truthy(&value)) {
        return None;
    }
    let set = |name: &str| env(name).filter(|value| !value.is_empty());
    if let Some(token) = set("HF_TOKEN").or_else(|| set("HUGGING_FACE_HUB_TOKEN")) {
        return Some(token);
    }
    let path = set("HF_TOKEN_PATH")
        .map(|path| crate::cache::expand(&path, env))
        .unwrap_or_else(|| format!("{}/token", crate::cache::hf_home(env)));
    let token = std::fs::read_to_string(path).ok()?;
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// `1`, `ON`, `YES` or `TRUE`, in any case: the reference client's booleans.
pub fn is_truthy(value: &str) -> bool {
    matches!(
        value.to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

/// A failed request, in terms a user can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The repo does not exist, or is private and the token cannot see it.
    #[error("repository `{repo}` not found at {endpoint}{}", if *authenticated {
        ": check the name, and that your token can read it if it is private"
    } else {
        ": check the name; if it is private, set HF_TOKEN (or HF_TOKEN_PATH) to a token that can read it"
    })]
    RepoNotFound {
        /// The repo as the user wrote it.
        repo: String,
        /// The endpoint asked.
        endpoint: String,
        /// Whether a token was sent.
        authenticated: bool,
    },
    /// The repo is gated and the token (if any) has no access.
    #[error("repository `{repo}` is gated: accept its conditions on the Hub, then set HF_TOKEN to a token of that account{}", if *authenticated { " (the current token has no access)" } else { "" })]
    Gated {
        /// The repo.
        repo: String,
        /// Whether a token was sent.
        authenticated: bool,
    },
    /// The ref does not exist in the repo.
    #[error("revision `{revision}` not found in `{repo}`: check the `ref` in the manifest")]
    RevisionNotFound {
        /// The repo.
        repo: String,
        /// The ref asked for.
        revision: String,
    },
    /// The file is not in the commit.
    #[error("`{path}` not found in `{repo}` at {revision}")]
    EntryNotFound {
        /// The repo.
        repo: String,
        /// The commit.
        revision: String,
        /// The file.
        path: String,
    },
    /// Any other HTTP error status.
    #[error("{what} failed: HTTP {status} from {url}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Status {
        /// What was being done (`listing the files of acme/tiny`).
        what: String,
        /// The status code.
        status: u16,
        /// The URL, without query string.
        url: String,
        /// The Hub's `X-Error-Message` or body `error`, if any.
        message: String,
        /// Seconds to wait before retrying, from `Retry-After`.
        retry_after: Option<u64>,
    },
    /// The server could not be reached or the connection failed.
    #[error(
        "{what} failed: cannot reach {origin}: {message} (check the network and HF_ENDPOINT, or use --offline to work from the cache)"
    )]
    Network {
        /// What was being done.
        what: String,
        /// `scheme://host:port` of the server.
        origin: String,
        /// The cause.
        message: String,
    },
    /// The CDN refused a URL the Hub redirected to (it expired): the Hub must be asked again.
    #[error("{what} failed: HTTP {status} from {url} (an expired download link?)")]
    ExpiredLocation {
        /// What was being done.
        what: String,
        /// The status code.
        status: u16,
        /// The URL, without query string.
        url: String,
    },
    /// The server answered a ranged request with the whole file.
    #[error("{what}: the server does not answer ranged requests")]
    RangeIgnored {
        /// What was being done.
        what: String,
    },
    /// The server answered something that is not what the Hub answers.
    #[error("{what}: unexpected answer from {url}: {message}")]
    InvalidResponse {
        /// What was being done.
        what: String,
        /// The URL.
        url: String,
        /// What is wrong with it.
        message: String,
    },
}

impl HubError {
    /// True for failures worth retrying: rate limits, server errors, network trouble.
    fn is_transient(&self) -> bool {
        match self {
            HubError::Status { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            HubError::Network { .. } => true,
            _ => false,
        }
    }
}

/// A client for one Hub endpoint. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Hub {
    config: HubConfig,
    agent: Agent,
    origin: String,
}

/// A response to a content request.
pub struct Download {
    /// The body, positioned at the requested offset.
    pub body: Body,
    /// The offset the body starts at: the requested one for a 206, 0 for a 200.
    pub offset: u64,
    /// Whether the server answered the range (206), rather than the whole file (200).
    pub partial: bool,
}

/// Where a file's bytes are once the Hub's redirect is followed (the CDN URL). The requests for
/// one file share it, so that every chunk after the first goes straight to the CDN; an expired
/// URL is forgotten and the Hub asked again.
#[derive(Debug, Default)]
pub struct Location(std::sync::Mutex<Option<String>>);

impl Location {
    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, url: Option<String>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = url;
    }
}

/// Bytes `start..end` of a file (`end` exclusive; `None` for the rest of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte, or the end of the file.
    pub end: Option<u64>,
}

impl ByteRange {
    /// The whole file from `start` on.
    pub fn from(start: u64) -> ByteRange {
        ByteRange { start, end: None }
    }

    /// The `Range` header value, if this is not simply the whole file.
    fn header(self) -> Option<String> {
        match self.end {
            Some(end) => Some(format!("bytes={}-{}", self.start, end.saturating_sub(1))),
            None if self.start > 0 => Some(format!("bytes={}-", self.start)),
            None => None,
        }
    }
}

/// Idle connections kept for reuse: more than `--jobs` ever has open.
const MAX_POOLED_CONNECTIONS: usize = 256;

impl Hub {
    /// A client for the configured endpoint.
    pub fn new(config: HubConfig) -> Hub {
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
        Hub {
            config,
            agent,
            origin,
        }
    }

    /// The endpoint, for messages.
    pub fn endpoint(&self) -> &str {
        &self.config.endpoint
    }

    /// Resolves a ref (branch, tag, `refs/pr/N`) to its commit: one request.
    pub fn resolve_revision(&self, repo: &Repo, reference: &str) -> Result<String, HubError> {
        self.revision(repo, reference)
            .map_err(|error| self.redact(error))
    }

    fn revision(&self, repo: &Repo, reference: &str) -> Result<String, HubError> {
        let url = format!(
            "{}/api/{}/{}/revision/{}",
            self.config.endpoint,
            repo.repo_type.plural(),
            repo.id,
            utf8_percent_encode(reference, QUOTE_ALL)
        );
        let what = format!("resolving `{reference}` of `{}`", repo.id);
        #[derive(Deserialize)]
        struct RevisionInfo {
            sha: String,
        }
        let (response, _) = self.get_ok(&url, None, &what, repo, Some(reference))?;
        let info: RevisionInfo = read_json(response, &url, &what)?;
        if !is_commit_sha(&info.sha) {
            return Err(HubError::InvalidResponse {
                what,
                url,
                message: format!(
                    "`sha` is not a 40-hex commit: `{}`",
                    shown(&info.sha, MAX_SHOWN_CHARS)
                ),
            });
        }
        Ok(info.sha)
    }

    /// Lists every file of a commit, following the pagination.
    pub fn list_files(&self, repo: &Repo, commit: &str) -> Result<Vec<RepoFile>, HubError> {
        self.tree(repo, commit).map_err(|error| self.redact(error))
    }

    fn tree(&self, repo: &Repo, commit: &str) -> Result<Vec<RepoFile>, HubError> {
        let what = format!("listing the files of `{}` at {commit}", repo.id);
        let mut url = format!(
            "{}/api/{}/{}/tree/{}?recursive=true&expand=false",
            self.config.endpoint,
            repo.repo_type.plural(),
            repo.id,
            utf8_percent_encode(commit, QUOTE_ALL)
        );
        let mut files = Vec::new();
        loop {
            let (response, _) = self.get_ok(&url, None, &what, repo, Some(commit))?;
            let next = next_page(&response);
            let page = read_text(response, &url, &what)?;
            files.extend(
                parse_tree_page(&page).map_err(|message| HubError::InvalidResponse {
                    what: what.clone(),
                    url: strip_query(&url).to_owned(),
                    message,
                })?,
            );
            match next {
                // The next page must stay on the endpoint: it is sent the token.
                Some(next) if origin_of(&next) == self.origin => url = next,
                Some(next) => {
                    return Err(HubError::InvalidResponse {
                        what,
                        url: strip_query(&url).to_owned(),
                        message: format!(
                            "the next page is on another origin, {}: refused, since the token would go there",
                            shown(&origin_of(&next), MAX_SHOWN_CHARS)
                        ),
                    });
                }
                None => return Ok(files),
            }
        }
    }

    /// Starts downloading bytes of a file. Retries what may pass; follows the redirect to the
    /// CDN without the token, and remembers where it led in `location`.
    pub fn download(
        &self,
        repo: &Repo,
        commit: &str,
        path: &str,
        range: ByteRange,
        location: &Location,
    ) -> Result<Download, HubError> {
        self.start_download(repo, commit, path, range, location)
            .map_err(|error| self.redact(error))
    }

    fn start_download(
        &self,
        repo: &Repo,
        commit: &str,
        path: &str,
        range: ByteRange,
        location: &Location,
    ) -> Result<Download, HubError> {
        let what = format!("downloading `{path}` of `{}`", repo.id);
        let response = match location.get() {
            Some(cdn) => match self.get_ok(&cdn, range, &what, repo, Some(commit)) {
                Ok((response, _)) => Some(response),
                Err(HubError::ExpiredLocation { .. }) => {
                    location.set(None);
                    None
                }
                Err(error) => return Err(error),
            },
            None => None,
        };
        let response = match response {
            Some(response) => response,
            None => {
                let url = format!(
                    "{}/{}{}/resolve/{}/{}",
                    self.config.endpoint,
                    repo.repo_type.url_prefix(),
                    repo.id,
                    commit,
                    utf8_percent_encode(path, QUOTE_PATH)
                );
                let (response, final_url) = self.get_ok(&url, range, &what, repo, Some(commit))?;
                if origin_of(&final_url) != self.origin {
                    location.set(Some(final_url));
                }
                response
            }
        };
        let partial = response.status().as_u16() == 206;
        let offset = if partial {
            content_range_start(&response)
                .filter(|start| *start == range.start)
                .ok_or_else(|| HubError::InvalidResponse {
                    what: what.clone(),
                    url: String::from("the download URL"),
                    message: format!("a 206 answer that does not start at byte {}", range.start),
                })?
        } else {
            0
        };
        Ok(Download {
            body: response.into_body(),
            offset,
            partial,
        })
    }

    /// GET with retries and hand-followed redirects; any answer but 2xx becomes an error.
    /// Returns the response and the URL that gave it.
    fn get_ok(
        &self,
        url: &str,
        range: impl Into<Option<ByteRange>>,
        what: &str,
        repo: &Repo,
        revision: Option<&str>,
    ) -> Result<(Response<Body>, String), HubError> {
        let range = range.into();
        let from_hub = origin_of(url) == self.origin;
        let mut attempt = 0;
        loop {
            let result = self
                .get_following(url, range, what)
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

    /// The wait before retry number `attempt` (from 0): the configured backoff, doubling, at
    /// most 8 times it.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
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
    fn redact(&self, error: HubError) -> HubError {
        let Some(token) = self
            .config
            .token
            .as_deref()
            .filter(|token| token.len() >= 8)
        else {
            return error;
        };
        let clean = |text: String| {
            if text.contains(token) {
                text.replace(token, REDACTED)
            } else {
                text
            }
        };
        match error {
            HubError::RepoNotFound {
                repo,
                endpoint,
                authenticated,
            } => HubError::RepoNotFound {
                repo,
                endpoint: clean(endpoint),
                authenticated,
            },
            HubError::Gated {
                repo,
                authenticated,
            } => HubError::Gated {
                repo,
                authenticated,
            },
            HubError::RevisionNotFound { repo, revision } => HubError::RevisionNotFound {
                repo,
                revision: clean(revision),
            },
            HubError::EntryNotFound {
                repo,
                revision,
                path,
            } => HubError::EntryNotFound {
                repo,
                revision: clean(revision),
                path: clean(path),
            },
            HubError::Status {
                what,
                status,
                url,
                message,
                retry_after,
            } => HubError::Status {
                what: clean(what),
                status,
                url: clean(url),
                message: clean(message),
                retry_after,
            },
            HubError::Network {
                what,
                origin,
                message,
            } => HubError::Network {
                what: clean(what),
                origin: clean(origin),
                message: clean(message),
            },
            HubError::ExpiredLocation { what, status, url } => HubError::ExpiredLocation {
                what: clean(what),
                status,
                url: clean(url),
            },
            HubError::RangeIgnored { what } => HubError::RangeIgnored { what: clean(what) },
            HubError::InvalidResponse { what, url, message } => HubError::InvalidResponse {
                what: clean(what),
                url: clean(url),
                message: clean(message),
            },
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
        let message = header("x-error-message").unwrap_or_else(|| error_from_body(response));
        // The server's words, printed: no terminal escapes, no screenful.
        let message = shown(&message, 500);
        HubError::Status {
            what: what.to_owned(),
            status,
            url: strip_query(url).to_owned(),
            message,
            retry_after,
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

fn read_json<T: for<'de> Deserialize<'de>>(
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
fn read_text(response: Response<Body>, url: &str, what: &str) -> Result<String, HubError> {
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

/// The files of one page of a tree listing (`GET /api/{type}s/{id}/tree/{commit}`), folders left
/// out. Refuses the page if an entry's path or etag could not safely become a cache path.
pub fn parse_tree_page(json: &str) -> Result<Vec<RepoFile>, String> {
    let entries: Vec<TreeEntry> = serde_json::from_str(json).map_err(|error| {
        // serde quotes the offending value, which may be huge.
        format!("invalid JSON: {}", shown(&error.to_string(), 300))
    })?;
    entries
        .into_iter()
        .filter_map(|entry| entry.into_file().transpose())
        .collect()
}

/// One entry of a tree page.
#[derive(Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    oid: String,
    lfs: Option<LfsInfo>,
}

#[derive(Deserialize)]
struct LfsInfo {
    oid: String,
    size: u64,
}

impl TreeEntry {
    /// The file this entry describes; `None` for folders. Refuses paths that would leave the
    /// snapshot folder and etags that are not plain hex, since both become cache paths.
    fn into_file(self) -> Result<Option<RepoFile>, String> {
        if self.kind != "file" {
            return Ok(None);
        }
        validate_repo_path(&self.path).map_err(|why| format!("refusing a {why}"))?;
        let path = shown(&self.path, MAX_SHOWN_CHARS);
        if !is_lower_hex(&self.oid, 40) {
            return Err(format!(
                "`{path}` has an invalid oid `{}`: a git blob id is 40 lowercase hex digits",
                shown(&self.oid, MAX_SHOWN_CHARS)
            ));
        }
        let (size, lfs_sha256) = match self.lfs {
            Some(lfs) => {
                if !is_lower_hex(&lfs.oid, 64) {
                    return Err(format!(
                        "`{path}` has an invalid LFS oid `{}`: a sha256 is 64 lowercase hex digits",
                        shown(&lfs.oid, MAX_SHOWN_CHARS)
                    ));
                }
                (lfs.size, Some(lfs.oid))
            }
            None => (self.size, None),
        };
        Ok(Some(RepoFile {
            path: self.path,
            size,
            blob_id: self.oid,
            lfs_sha256,
        }))
    }
}

/// The URL of `Link: <url>; rel="next"`, if any.
fn next_page(response: &Response<Body>) -> Option<String> {
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

fn content_range_start(response: &Response<Body>) -> Option<u64> {
    let value = response.headers().get("content-range")?.to_str().ok()?;
    let range = value.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

fn strip_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// `scheme://host:port`, lowercase, with the default port made explicit: what "same origin" means.
pub fn origin_of(url: &str) -> String {
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
    fn the_token_comes_from_the_reference_clients_sources() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            token_from_env(&env(&[("HF_TOKEN", "a"), ("HUGGING_FACE_HUB_TOKEN", "b")])).as_deref(),
            Some("a")
        );
        assert_eq!(
            token_from_env(&env(&[("HF_TOKEN", ""), ("HUGGING_FACE_HUB_TOKEN", "b")])).as_deref(),
            Some("b")
        );
        assert_eq!(
            token_from_env(&env(&[
                ("HF_TOKEN", "a"),
                ("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
            ])),
            None
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tok");
        std::fs::write(&file, "  file-token\n").unwrap();
        let path: &'static str = Box::leak(file.to_str().unwrap().to_owned().into_boxed_str());
        let pairs: &'static [(&'static str, &'static str)] =
            Box::leak(Box::new([("HF_TOKEN_PATH", path)]));
        assert_eq!(token_from_env(&env(pairs)).as_deref(), Some("file-token"));
        let config = HubConfig::from_env(&env(&[
            ("HF_TOKEN", "secret"),
            ("HF_ENDPOINT", "http://x:1/"),
        ]));
        assert_eq!(config.endpoint, "http://x:1");
        assert!(!format!("{config:?}").contains("secret"));
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
        let env = |name: &str| match name {
            "HF_TOKEN" => Some("hf_secret_token".to_owned()),
            "HF_ENDPOINT" => Some("http://hub:1".to_owned()),
            _ => None,
        };
        let hub = Hub::new(HubConfig::from_env(&env));
        let error = hub.redact(HubError::InvalidResponse {
            what: "listing `hf_secret_token.txt`".to_owned(),
            url: "http://cdn:2/hf_secret_token".to_owned(),
            message: "echo: hf_secret_token".to_owned(),
        });
        let message = error.to_string();
        assert!(!message.contains("hf_secret_token"), "{message}");
        assert_eq!(message.matches(REDACTED).count(), 3, "{message}");
    }
}
