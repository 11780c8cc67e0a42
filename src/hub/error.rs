//! What can go wrong talking to the Hub, in terms a user can act on.

use super::RateLimit;

/// A failed request.
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
        /// The rate limit a `429` says was reached (`RateLimit`, `RateLimit-Policy`).
        rate_limit: Option<Box<RateLimit>>,
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
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            HubError::Status { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            HubError::Network { .. } => true,
            _ => false,
        }
    }

    /// The same error with `edit` applied to each of its texts.
    pub(crate) fn map_texts(self, edit: impl Fn(String) -> String) -> HubError {
        use HubError::*;
        match self {
            RepoNotFound {
                repo,
                endpoint,
                authenticated,
            } => RepoNotFound {
                repo: edit(repo),
                endpoint: edit(endpoint),
                authenticated,
            },
            Gated {
                repo,
                authenticated,
            } => Gated {
                repo: edit(repo),
                authenticated,
            },
            RevisionNotFound { repo, revision } => RevisionNotFound {
                repo: edit(repo),
                revision: edit(revision),
            },
            EntryNotFound {
                repo,
                revision,
                path,
            } => EntryNotFound {
                repo: edit(repo),
                revision: edit(revision),
                path: edit(path),
            },
            Status {
                what,
                status,
                url,
                message,
                retry_after,
                rate_limit,
            } => Status {
                what: edit(what),
                status,
                url: edit(url),
                message: edit(message),
                retry_after,
                rate_limit,
            },
            Network {
                what,
                origin,
                message,
            } => Network {
                what: edit(what),
                origin: edit(origin),
                message: edit(message),
            },
            ExpiredLocation { what, status, url } => ExpiredLocation {
                what: edit(what),
                status,
                url: edit(url),
            },
            RangeIgnored { what } => RangeIgnored { what: edit(what) },
            InvalidResponse { what, url, message } => InvalidResponse {
                what: edit(what),
                url: edit(url),
                message: edit(message),
            },
        }
    }
}
