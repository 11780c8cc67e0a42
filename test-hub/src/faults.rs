//! Fault injection: make the next few matching requests fail in a chosen way, so tests can show
//! that a client retries, resumes and refuses corrupt data, and that it stands up to a hostile
//! hub: unsafe file paths and etags, redirects to other schemes or origins, lying lengths,
//! oversized answers (see `fixtures/hub/README.md`).

use std::io::{self, Read};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::http::{Framing, Response};

/// A fault for the next `times` requests (on either origin) whose path contains `path_contains`.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Substring of the request path (before `?`) that selects the requests.
    pub path_contains: String,
    /// What goes wrong.
    pub kind: FaultKind,
    /// How many matching requests it hits; then it is spent.
    pub times: usize,
    /// How many matching requests pass unharmed before it starts.
    pub skip: usize,
}

/// What goes wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer this status (no `X-Error-Code`), with `Retry-After` if given.
    Status {
        /// The status code, e.g. 429 or 503.
        status: u16,
        /// Seconds for `Retry-After`.
        retry_after: Option<u64>,
    },
    /// Serve the right length with wrong bytes (every byte flipped).
    Corrupt,
    /// Announce the full length, send this many body bytes, then reset the connection.
    DropAfter(u64),
    /// Answer a `Range` request with `200` and the whole content, as some servers do.
    IgnoreRange,
    /// Wait this long before sending the body.
    Stall(Duration),
    /// Close the connection without answering: a server or proxy that went away.
    Hangup,

    // A hostile hub. Each answers what no real Hub answers, to show the client refuses it.
    /// Answer `302 Found` with this `Location` (any text: another scheme, another origin, a
    /// relative URL, the request's own URL for a loop) instead of the real answer.
    Redirect(String),
    /// Append these raw entries to the JSON array of a tree page (`/tree/` requests): e.g. a file
    /// whose `path` is `../x` or whose `oid` is not hex.
    TreeEntries(Vec<Value>),
    /// Answer `200` with this JSON instead of the real answer (e.g. a revision whose `sha` is a
    /// path).
    JsonBody(Value),
    /// Give the answer a `Link: <url>; rel="next"` header, as if another page were there.
    NextPage(String),
    /// Answer this status with `X-Error-Message` and a JSON `error` set to this text, e.g. one
    /// that echoes the token back (only the JSON when the text has control characters, which a
    /// header cannot carry).
    ErrorMessage {
        /// The status code.
        status: u16,
        /// The message.
        message: String,
    },
    /// Send the real body, but announce `Content-Length` plus this many bytes (negative:
    /// fewer), then close the connection.
    LyingLength(i64),
    /// Append this many bytes (`x`) to the body, with a `Content-Length` that counts them.
    ExtraBytes(u64),
    /// The real JSON answer, preceded by whitespace up to `bytes` in all: valid JSON, generated
    /// as it is sent (never held in memory). Without `content_length` the body has no length
    /// and ends when the connection closes.
    HugeJson {
        /// Size of the whole body.
        bytes: u64,
        /// Whether `Content-Length` announces it.
        content_length: bool,
    },
    /// Add a response header `X-Padding` of this many bytes.
    HugeHeader(usize),
}

impl Fault {
    /// A fault hitting the next `times` requests whose path contains `path_contains`.
    pub fn new(path_contains: &str, kind: FaultKind, times: usize) -> Fault {
        Fault {
            path_contains: path_contains.to_owned(),
            kind,
            times,
            skip: 0,
        }
    }

    /// A `status` answer (with `Retry-After: retry_after` seconds if given) for the next `times`
    /// requests whose path contains `path_contains`.
    pub fn status(
        path_contains: &str,
        status: u16,
        retry_after: Option<u64>,
        times: usize,
    ) -> Fault {
        Fault::new(
            path_contains,
            FaultKind::Status {
                status,
                retry_after,
            },
            times,
        )
    }

    /// The same fault, starting only after `skip` matching requests have passed.
    pub fn after(self, skip: usize) -> Fault {
        Fault { skip, ..self }
    }
}

/// Takes one use of the first live fault matching `path`.
pub(crate) fn take(faults: &mut [Fault], path: &str) -> Option<FaultKind> {
    let fault = faults
        .iter_mut()
        .find(|fault| fault.times > 0 && path.contains(&fault.path_contains))?;
    if fault.skip > 0 {
        fault.skip -= 1;
        return None;
    }
    fault.times -= 1;
    Some(fault.kind.clone())
}

/// Alters a response on its way out according to the fault: its body, length or headers. (The
/// faults that replace or edit the answer itself are applied before, when it is made.)
pub(crate) fn alter(kind: &FaultKind, mut response: Response) -> Response {
    match kind {
        FaultKind::Corrupt => response.body = Box::new(Flipped(response.body)),
        FaultKind::DropAfter(limit) => {
            response.body = Box::new(Dropping {
                inner: response.body,
                left: *limit,
            });
        }
        FaultKind::Stall(wait) => {
            response.body = Box::new(Stalled {
                inner: response.body,
                wait: Some(*wait),
            });
        }
        FaultKind::Hangup => response.framing = Framing::Hangup,
        FaultKind::LyingLength(delta) => {
            let claimed = response.len.saturating_add_signed(*delta);
            response.framing = Framing::Claimed(claimed);
        }
        FaultKind::ExtraBytes(extra) => {
            response.body = Box::new(response.body.chain(io::repeat(b'x').take(*extra)));
            response.len += extra;
        }
        FaultKind::HugeJson {
            bytes,
            content_length,
        } => {
            let padding = bytes.saturating_sub(response.len);
            response.body = Box::new(io::repeat(b' ').take(padding).chain(response.body));
            response.len += padding;
            if !content_length {
                response.framing = Framing::UntilClose;
            }
        }
        FaultKind::HugeHeader(size) => {
            response
                .headers
                .push(("X-Padding".to_owned(), "p".repeat(*size)));
        }
        FaultKind::Status { .. }
        | FaultKind::IgnoreRange
        | FaultKind::Redirect(_)
        | FaultKind::TreeEntries(_)
        | FaultKind::JsonBody(_)
        | FaultKind::NextPage(_)
        | FaultKind::ErrorMessage { .. } => {}
    }
    response
}

struct Flipped(Box<dyn Read + Send>);

impl Read for Flipped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        buf[..n].iter_mut().for_each(|byte| *byte = !*byte);
        Ok(n)
    }
}

struct Dropping {
    inner: Box<dyn Read + Send>,
    left: u64,
}

impl Read for Dropping {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // The error makes the server close the connection mid-body.
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "injected drop",
            ));
        }
        let max = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

struct Stalled {
    inner: Box<dyn Read + Send>,
    wait: Option<Duration>,
}

impl Read for Stalled {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(wait) = self.wait.take() {
            thread::sleep(wait);
        }
        self.inner.read(buf)
    }
}
