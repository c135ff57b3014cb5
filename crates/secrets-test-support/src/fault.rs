//! A scripted, misbehaving HTTP/1.1 server on loopback for provider transport tests.

use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::{Error, http};

/// Largest request body the server accepts before dropping the connection.
const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;
/// An idle keep-alive connection is closed after this long, so its thread ends.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the server does with one request. Each request consumes the next step of the script;
/// the last step repeats once the script runs out.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// A complete response. `Content-Length` is added unless `headers` sets it (or
    /// `Transfer-Encoding`), so a test can also send a lying header. The connection stays open
    /// (keep-alive) unless the request said `Connection: close`.
    Respond {
        /// HTTP status code.
        status: u16,
        /// Extra headers, sent as given.
        headers: Vec<(String, String)>,
        /// The body bytes.
        body: Vec<u8>,
    },
    /// Waits, then does the inner step (e.g. a slow or hanging server).
    Delay(Duration, Box<Fault>),
    /// Closes the connection without sending anything.
    Close,
    /// Never answers: holds the connection open, silent, until the server is dropped (a
    /// backend that accepts and hangs).
    Hang,
    /// Sends a `200` whose `Content-Length` is `declared_len` but only `body`, then closes.
    Truncated {
        /// The `Content-Length` header value.
        declared_len: usize,
        /// The bytes actually sent.
        body: Vec<u8>,
    },
    /// A `200` JSON response of exactly `len` bytes (a KV v2 read shape padded with `a`s when
    /// `len` allows), streamed in 64 KiB writes, for response-size limits.
    Huge {
        /// The body length in bytes.
        len: usize,
    },
}

impl Fault {
    /// A JSON response with `Content-Type: application/json`.
    pub fn json(status: u16, body: &Value) -> Self {
        Self::Respond {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// A response with this status and an empty body.
    pub fn status(status: u16) -> Self {
        Self::Respond {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, body: &str) -> Self {
        Self::Respond {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// Waits `delay`, then does `then`.
    pub fn delay(delay: Duration, then: Fault) -> Self {
        Self::Delay(delay, Box::new(then))
    }

    /// Adds a header to a [`Fault::Respond`] (also through [`Fault::Delay`]); other steps are
    /// returned unchanged.
    pub fn with_header(self, name: &str, value: &str) -> Self {
        match self {
            Self::Respond {
                status,
                mut headers,
                body,
            } => {
                headers.push((name.to_owned(), value.to_owned()));
                Self::Respond {
                    status,
                    headers,
                    body,
                }
            }
            Self::Delay(delay, then) => Self::Delay(delay, Box::new(then.with_header(name, value))),
            other => other,
        }
    }
}

/// A request the [`FaultServer`] received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The request target as sent: path and query (`/v1/secret/data/app?version=2`).
    pub path: String,
    /// Headers in arrival order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
    /// Which connection (0-based, in accept order) carried it.
    pub connection: usize,
}

impl RecordedRequest {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

#[derive(Debug, Default)]
struct Shared {
    script: Mutex<(Vec<Fault>, usize)>,
    requests: Mutex<Vec<RecordedRequest>>,
    connections: AtomicUsize,
    open: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking connection thread must not take the whole fixture down with it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn next_fault(&self) -> Fault {
        let mut script = lock(&self.script);
        let (faults, next) = &mut *script;
        let step = faults.get(*next).or(faults.last()).cloned();
        *next += 1;
        step.unwrap_or_else(|| {
            Fault::json(
                500,
                &serde_json::json!({ "errors": ["fault script is empty"] }),
            )
        })
    }
}

/// An HTTP/1.1 server on `127.0.0.1` that answers by script and records what it saw.
///
/// ```
/// # fn main() -> Result<(), secrets_test_support::Error> {
/// use std::time::Duration;
/// use secrets_test_support::{Fault, FaultServer};
///
/// let server = FaultServer::start(vec![
///     Fault::status(503),
///     Fault::delay(Duration::from_millis(50), Fault::Close),
///     Fault::json(200, &serde_json::json!({"data": {"data": {"k": "v"}}})),
/// ])?;
/// let base_url = server.addr(); // "http://127.0.0.1:PORT"
/// // ... point a provider at base_url, then:
/// assert_eq!(server.request_count(), 0);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FaultServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultServer {
    /// Binds a free loopback port and starts serving `script`.
    pub fn start(script: Vec<Fault>) -> Result<Self, Error> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(Error::io("bind fault server on 127.0.0.1:0"))?;
        let addr = listener
            .local_addr()
            .map_err(Error::io("fault server local_addr"))?;
        let shared = Arc::new(Shared {
            script: Mutex::new((script, 0)),
            ..Shared::default()
        });
        let accept_shared = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name(format!("fault-server-{}", addr.port()))
            .spawn(move || accept_loop(&listener, &accept_shared))
            .map_err(Error::io("spawn fault server thread"))?;
        Ok(Self {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many requests were read so far (including ones answered by [`Fault::Close`]).
    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// How many TCP connections were accepted so far (keep-alive reuse keeps this low).
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The requests read so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Replaces the script; the next request gets its first step.
    pub fn set_script(&self, script: Vec<Fault>) {
        *lock(&self.shared.script) = (script, 0);
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for stream in lock(&self.shared.open).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let connection = shared.connections.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.open).push(clone);
        }
        let shared = Arc::clone(shared);
        // Detached: Drop shuts the socket down, which ends the thread's blocking read.
        let _ = std::thread::Builder::new()
            .name(format!("fault-conn-{connection}"))
            .spawn(move || serve(stream, connection, &shared));
    }
}

fn serve(stream: TcpStream, connection: usize, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    while let Ok(Some(request)) = http::read_request(&mut reader, MAX_REQUEST_BODY) {
        let close_requested = request
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
        let head_only = request.method == "HEAD";
        lock(&shared.requests).push(RecordedRequest {
            method: request.method,
            path: request.target,
            headers: request.headers,
            body: request.body,
            connection,
        });
        let fault = shared.next_fault();
        match perform(
            &mut writer,
            &fault,
            close_requested,
            head_only,
            &shared.stop,
        ) {
            Ok(true) if !shared.stop.load(Ordering::SeqCst) => {}
            _ => break,
        }
    }
    let _ = writer.flush();
    let _ = writer.shutdown(Shutdown::Both);
}

/// Carries out one step; `Ok(true)` keeps the connection open for the next request.
fn perform(
    out: &mut TcpStream,
    fault: &Fault,
    close_requested: bool,
    head_only: bool,
    stop: &AtomicBool,
) -> std::io::Result<bool> {
    match fault {
        Fault::Respond {
            status,
            headers,
            body,
        } => {
            let mut head = format!("HTTP/1.1 {status} {}\r\n", http::reason(*status));
            let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            if !has("content-length") && !has("transfer-encoding") {
                head.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            if close_requested {
                head.push_str("Connection: close\r\n");
            }
            head.push_str("\r\n");
            let mut bytes = head.into_bytes();
            if !head_only {
                bytes.extend_from_slice(body);
            }
            out.write_all(&bytes)?;
            out.flush()?;
            Ok(!close_requested)
        }
        Fault::Delay(delay, then) => {
            std::thread::sleep(*delay);
            perform(out, then, close_requested, head_only, stop)
        }
        Fault::Close => Ok(false),
        Fault::Hang => {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(false)
        }
        Fault::Truncated { declared_len, body } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {declared_len}\r\n\r\n"
            );
            out.write_all(head.as_bytes())?;
            out.write_all(body)?;
            out.flush()?;
            Ok(false)
        }
        Fault::Huge { len } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n{}\r\n",
                if close_requested {
                    "Connection: close\r\n"
                } else {
                    ""
                }
            );
            out.write_all(head.as_bytes())?;
            write_huge_body(out, *len)?;
            out.flush()?;
            Ok(!close_requested)
        }
    }
}

fn write_huge_body(out: &mut impl Write, len: usize) -> std::io::Result<()> {
    const PREFIX: &[u8] = br#"{"data":{"data":{"pad":""#;
    const SUFFIX: &[u8] = br#""},"metadata":{"version":1}}}"#;
    let framed = len >= PREFIX.len() + SUFFIX.len();
    let mut padding = if framed {
        len - PREFIX.len() - SUFFIX.len()
    } else {
        len
    };
    if framed {
        out.write_all(PREFIX)?;
    }
    let chunk = [b'a'; 64 * 1024];
    while padding > 0 {
        let n = padding.min(chunk.len());
        out.write_all(&chunk[..n])?;
        padding -= n;
    }
    if framed {
        out.write_all(SUFFIX)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_body_has_exact_length_and_parses() -> Result<(), serde_json::Error> {
        for len in [0, 5, 53, 54, 100, 200_000] {
            let mut out = Vec::new();
            write_huge_body(&mut out, len).map_err(serde_json::Error::io)?;
            assert_eq!(out.len(), len);
            if len >= 53 {
                let value: Value = serde_json::from_slice(&out)?;
                assert_eq!(value["data"]["metadata"]["version"], 1);
            }
        }
        Ok(())
    }

    #[test]
    fn script_repeats_last_step() {
        let shared = Shared {
            script: Mutex::new((vec![Fault::status(500), Fault::status(200)], 0)),
            ..Shared::default()
        };
        let statuses: Vec<Fault> = (0..4).map(|_| shared.next_fault()).collect();
        assert_eq!(
            statuses,
            vec![
                Fault::status(500),
                Fault::status(200),
                Fault::status(200),
                Fault::status(200)
            ]
        );
    }
}
