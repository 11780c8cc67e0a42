//! The Hub's HTTP API, as huggingface_hub 2.4.0 uses it (see hf-protocol.md):
//! - `GET {E}/api/{type}s/{id}/revision/{rev}`: a ref to its commit (`sha`);
//! - `GET {E}/api/{type}s/{id}/tree/{commit}?recursive=true&expand=false`: the commit's files,
//!   paginated with `Link: <url>; rel="next"`; each file carries its etag (`lfs.oid` or `oid`),
//!   so no HEAD per file is needed;
//! - `GET {E}/{prefix}{id}/resolve/{commit}/{path}`: the content, often through a redirect to a
//!   CDN on another origin.
//!
//! [`transport`] sends the requests (retries, redirects, the token's confinement to the
//! endpoint); [`tree`] reads the listing's wire format. Nothing a server says is trusted: file
//! paths and etags are checked before they become cache paths, redirects go to http(s) only and
//! neither loop nor go on forever, JSON answers are read up to a bound, and the token is cut out
//! of every error (a hostile server could echo it back, and errors are printed).

mod config;
mod error;
mod limits;
mod transport;
mod tree;

use std::sync::Arc;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use ureq::Body;
use ureq::http::Response;

pub(crate) use config::HubConfig;
pub use error::HubError;
pub use limits::RateLimit;
pub(crate) use transport::origin_of;
use transport::{Transport, content_range_start, next_page, read_json, read_text, strip_query};
pub use tree::parse_tree_page;

use crate::repo::{CommitId, Repo, RepoFile};
use crate::report::Reporter;
use crate::text::{MAX_SHOWN_CHARS, shown};

/// Python's `quote(s, safe="")`: everything but letters, digits and `_.-~` is escaped.
const QUOTE_ALL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');
/// Python's `quote(path)`: as above, but `/` stays.
const QUOTE_PATH: &AsciiSet = &QUOTE_ALL.remove(b'/');

/// A client for one Hub endpoint. Cheap to clone; clones share connections. A rate limit it
/// meets is told to `reporter`.
#[derive(Clone)]
pub(crate) struct Hub<'r> {
    transport: Transport,
    reporter: &'r dyn Reporter,
}

/// A response to a content request.
pub(crate) struct Download {
    /// The body, positioned at the requested offset.
    pub(crate) body: Body,
    /// The offset the body starts at: the requested one for a 206, 0 for a 200.
    pub(crate) offset: u64,
    /// Whether the server answered the range (206), rather than the whole file (200).
    pub(crate) partial: bool,
}

/// Bytes `start..end` of a file (`end` exclusive; `None` for the rest of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    /// First byte.
    pub(crate) start: u64,
    /// One past the last byte, or the end of the file.
    pub(crate) end: Option<u64>,
}

impl ByteRange {
    /// The `Range` header value, if this is not simply the whole file.
    fn header(self) -> Option<String> {
        match self.end {
            Some(end) => Some(format!("bytes={}-{}", self.start, end.saturating_sub(1))),
            None if self.start > 0 => Some(format!("bytes={}-", self.start)),
            None => None,
        }
    }
}

impl<'r> Hub<'r> {
    /// A client for the configured endpoint.
    pub(crate) fn new(config: HubConfig, reporter: &'r dyn Reporter) -> Hub<'r> {
        Hub {
            transport: Transport::new(config),
            reporter,
        }
    }

    /// The endpoint, for messages.
    pub(crate) fn endpoint(&self) -> &str {
        self.transport.endpoint()
    }

    /// The wait before retry number `attempt` (from 0).
    pub(crate) fn retry_delay(&self, attempt: u32) -> std::time::Duration {
        self.transport.retry_delay(attempt)
    }

    /// Resolves a ref (branch, tag, `refs/pr/N`) to its commit: one request.
    pub(crate) fn resolve_revision(
        &self,
        repo: &Repo,
        reference: &str,
    ) -> Result<CommitId, HubError> {
        self.revision(repo, reference)
            .map_err(|error| self.transport.redact(error))
    }

    fn revision(&self, repo: &Repo, reference: &str) -> Result<CommitId, HubError> {
        let url = format!(
            "{}/api/{}/{}/revision/{}",
            self.endpoint(),
            repo.repo_type.plural(),
            repo.id,
            utf8_percent_encode(reference, QUOTE_ALL)
        );
        let what = format!("resolving `{reference}` of `{}`", repo.id);
        #[derive(Deserialize)]
        struct RevisionInfo {
            sha: String,
        }
        let (response, _) =
            self.transport
                .get_ok(&url, None, &what, (repo, Some(reference)), self.reporter)?;
        let info: RevisionInfo = read_json(response, &url, &what)?;
        CommitId::parse(&info.sha).ok_or_else(|| HubError::InvalidResponse {
            what,
            url,
            message: format!(
                "`sha` is not a 40-hex commit: `{}`",
                shown(&info.sha, MAX_SHOWN_CHARS)
            ),
        })
    }

    /// Lists every file of a commit, following the pagination.
    pub(crate) fn list_files(
        &self,
        repo: &Repo,
        commit: &CommitId,
    ) -> Result<Vec<Arc<RepoFile>>, HubError> {
        self.tree(repo, commit)
            .map_err(|error| self.transport.redact(error))
    }

    /// Follows the pages. The cursor of the next page is in the `Link` header, so its request
    /// goes out as soon as this page's headers are in, while another thread reads and parses
    /// the bodies in order: for a large dataset's hundred pages, their transfer overlaps the next
    /// requests' round trips.
    fn tree(&self, repo: &Repo, commit: &CommitId) -> Result<Vec<Arc<RepoFile>>, HubError> {
        let what = format!("listing the files of `{}` at {commit}", repo.id);
        let mut url = format!(
            "{}/api/{}/{}/tree/{commit}?recursive=true&expand=false",
            self.endpoint(),
            repo.repo_type.plural(),
            repo.id,
        );
        std::thread::scope(|scope| {
            // Made here, so that an early return drops the sender before the scope waits for the
            // reader.
            let (pages, arriving) = std::sync::mpsc::channel::<(String, Response<Body>)>();
            let reader = scope.spawn(|| {
                let mut files = Vec::new();
                for (url, response) in arriving {
                    let page = read_text(response, &url, &what)?;
                    let page =
                        parse_tree_page(&page).map_err(|message| HubError::InvalidResponse {
                            what: what.clone(),
                            url: strip_query(&url).to_owned(),
                            message,
                        })?;
                    files.extend(page.into_iter().map(Arc::new));
                }
                Ok(files)
            });
            let fetched = loop {
                let (response, _) = self.transport.get_ok(
                    &url,
                    None,
                    &what,
                    (repo, Some(commit.as_str())),
                    self.reporter,
                )?;
                let next = next_page(&response);
                // The reader stops early only on a bad page: no use asking for more.
                if reader.is_finished() || pages.send((url.clone(), response)).is_err() {
                    break Ok(());
                }
                match next {
                    // The next page must stay on the endpoint: it is sent the token.
                    Some(next) if origin_of(&next) == self.transport.origin => url = next,
                    Some(next) => {
                        break Err(HubError::InvalidResponse {
                            what: what.clone(),
                            url: strip_query(&url).to_owned(),
                            message: format!(
                                "the next page is on another origin, {}: refused, since the token would go there",
                                shown(&origin_of(&next), MAX_SHOWN_CHARS)
                            ),
                        });
                    }
                    None => break Ok(()),
                }
            };
            drop(pages);
            let files = reader.join().unwrap_or_else(|_| {
                Err(HubError::InvalidResponse {
                    what: what.clone(),
                    url: strip_query(&url).to_owned(),
                    message: "reading the pages panicked".into(),
                })
            });
            fetched.and(files)
        })
    }

    /// Starts downloading bytes of a file: resolves it with the range (so that a bridge URL is
    /// signed for exactly that range) and follows the redirect to the CDN without the token.
    /// Retries what may pass, asking the Hub again each time: a CDN link may have expired.
    pub(crate) fn download(
        &self,
        repo: &Repo,
        commit: &CommitId,
        path: &str,
        range: ByteRange,
    ) -> Result<Download, HubError> {
        self.start_download(repo, commit, path, range)
            .map_err(|error| self.transport.redact(error))
    }

    fn start_download(
        &self,
        repo: &Repo,
        commit: &CommitId,
        path: &str,
        range: ByteRange,
    ) -> Result<Download, HubError> {
        let what = format!("downloading `{path}` of `{}`", repo.id);
        let url = format!(
            "{}/{}{}/resolve/{commit}/{}",
            self.endpoint(),
            repo.repo_type.url_prefix(),
            repo.id,
            utf8_percent_encode(path, QUOTE_PATH)
        );
        let (response, _) = self.transport.get_ok(
            &url,
            range,
            &what,
            (repo, Some(commit.as_str())),
            self.reporter,
        )?;
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
}
