//! Fault injection: make the next few matching requests fail in a chosen way, so tests can show
//! that a client retries, resumes and refuses corrupt data.

use std::io::{self, Read};
use std::thread;
use std::time::Duration;

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

/// Wraps a response body according to the fault (statuses are handled before routing).
pub(crate) fn wrap_body(kind: &FaultKind, body: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
    match kind {
        FaultKind::Corrupt => Box::new(Flipped(body)),
        FaultKind::DropAfter(limit) => Box::new(Dropping {
            inner: body,
            left: *limit,
        }),
        FaultKind::Stall(wait) => Box::new(Stalled {
            inner: body,
            wait: Some(*wait),
        }),
        FaultKind::Status { .. } | FaultKind::IgnoreRange => body,
    }
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
