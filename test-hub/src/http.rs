//! A minimal HTTP/1.1 server: one thread per connection, keep-alive, `Content-Length` bodies.
//! Written for the test hub (rather than using a server crate) so that every byte on the wire
//! is under the test's control: exact headers, slow or broken bodies, lying lengths, bodies
//! without a length.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Largest request head accepted (request line plus headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// An idle keep-alive connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A request as parsed from the wire.
pub(crate) struct Request {
    /// The client's address: requests on one kept-alive connection share it.
    pub(crate) peer: String,
    pub(crate) method: String,
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
}

/// What the handler answers; the server adds `Content-Length` (as `framing` says) and writes it.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Box<dyn Read + Send>,
    /// Bytes of `body` sent.
    pub(crate) len: u64,
    pub(crate) framing: Framing,
}

/// How the end of a body is told on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length: <len>`, the truth; the connection stays open for the next request.
    Honest,
    /// `Content-Length` says this, whatever `len` is: a lying server. The `len` real bytes are
    /// sent, then the connection is closed.
    Claimed(u64),
    /// No `Content-Length`: the body ends when the connection closes.
    UntilClose,
    /// Nothing at all: the connection is closed without an answer.
    Hangup,
}

/// A listening socket served by a background thread until dropped.
pub(crate) struct Listener {
    address: std::net::SocketAddr,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Listener {
    /// Serves each request arriving on `listener` with `handler`.
    pub(crate) fn serve<H>(listener: TcpListener, handler: H) -> io::Result<Listener>
    where
        H: Fn(Request) -> Response + Send + Sync + 'static,
    {
        let address = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let acceptor = {
            let stopping = stopping.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let handler = handler.clone();
                    thread::spawn(move || serve_connection(stream, &*handler));
                }
            })
        };
        Ok(Listener {
            address,
            stopping,
            acceptor: Some(acceptor),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn serve_connection(stream: TcpStream, handler: &(dyn Fn(Request) -> Response + Sync)) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let peer = stream
        .peer_addr()
        .map_or_else(|_| String::from("unknown"), |addr| addr.to_string());
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut writer = io::BufWriter::with_capacity(256 * 1024, write_half);
    loop {
        let request = match read_request(&mut reader, &peer) {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(_) => {
                let _ = writer.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                let _ = writer.flush();
                return;
            }
        };
        let close = request
            .headers
            .iter()
            .any(|(name, value)| name == "connection" && value.eq_ignore_ascii_case("close"));
        let head_only = request.method == "HEAD";
        let response = handler(request);
        if response.framing == Framing::Hangup {
            let _ = writer.get_ref().shutdown(Shutdown::Both);
            return;
        }
        // After a body whose length was not told truthfully, the connection cannot be reused.
        let close = close || response.framing != Framing::Honest;
        if write_response(&mut writer, response, head_only).is_err() || close {
            let _ = writer.flush();
            let _ = writer.get_ref().shutdown(Shutdown::Both);
            return;
        }
    }
}

/// Reads one request head; `Ok(None)` when the client closed the connection between requests.
fn read_request(reader: &mut impl BufRead, peer: &str) -> io::Result<Option<Request>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let read = reader
            .take((MAX_HEAD_BYTES - head.len()) as u64 + 1)
            .read_until(b'\n', &mut head)?;
        if read == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        if head.len() > MAX_HEAD_BYTES {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    let text = String::from_utf8(head).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    let mut lines = text.lines();
    let mut parts = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(url), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(io::ErrorKind::InvalidData.into());
    };
    if !version.starts_with("HTTP/1.") {
        return Err(io::ErrorKind::InvalidData.into());
    }
    let headers = lines
        .filter(|line| !line.is_empty())
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Ok(Some(Request {
        peer: peer.to_owned(),
        method: method.to_string(),
        url: url.to_string(),
        headers,
    }))
}

const BODY_BUFFER_BYTES: usize = 128 * 1024;
const PAGE_BYTES: usize = 4096;

fn write_response(
    writer: &mut io::BufWriter<TcpStream>,
    mut response: Response,
    head_only: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match response.framing {
        Framing::Honest => head.push_str(&format!("Content-Length: {}\r\n", response.len)),
        Framing::Claimed(claimed) => head.push_str(&format!("Content-Length: {claimed}\r\n")),
        Framing::UntilClose => head.push_str("Connection: close\r\n"),
        // Handled before anything is written.
        Framing::Hangup => return Ok(()),
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes())?;
    writer.flush()?;
    if head_only {
        return Ok(());
    }
    // The body bypasses the writer's buffer: one copy fewer.
    let stream = writer.get_mut();
    // Large reads for speed, each written at once, so that a paced (throttled) body leaves at its
    // pace. The buffer starts on a page: copying from the page cache into one that starts just
    // past a page boundary is several times slower.
    let mut body = response.body.as_mut().take(response.len);
    let mut storage = vec![0u8; BODY_BUFFER_BYTES + PAGE_BYTES];
    let offset = storage.as_ptr().align_offset(PAGE_BYTES).min(PAGE_BYTES);
    let buffer = &mut storage[offset..offset + BODY_BUFFER_BYTES];
    loop {
        let read = body.read(buffer)?;
        if read == 0 {
            return Ok(());
        }
        stream.write_all(&buffer[..read])?;
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
