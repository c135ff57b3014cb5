//! A counting TCP proxy for tests: put it in front of a real server and count the HTTP requests
//! that reach it, by path.
//!
//! ```no_run
//! # fn main() -> Result<(), secrets_test_support::Error> {
//! use secrets_test_support::OpenBaoServer;
//! use secrets_test_support::proxy::CountingProxy;
//!
//! let bao = OpenBaoServer::start()?;
//! let proxy = CountingProxy::start(&bao.addr())?;
//! // ... point the client under test at proxy.addr(), run it, then:
//! assert_eq!(proxy.count("/v1/secret/data/app/api"), 0);
//! # Ok(()) }
//! ```
//!
//! Bytes are forwarded unchanged in both directions (so keep-alive, chunking and pipelining
//! work as with the real server), unless [`CountingProxy::drop_responses`] asks it to lose
//! some responses: the request still reaches the server, the client never hears back. Each request is parsed and recorded before its bytes go on,
//! so a client that got a response always finds its request counted. Only plain HTTP can be
//! counted: the proxy does not terminate TLS.

use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{Error, http};

/// Requests with bodies larger than this are still forwarded but no longer parsed.
const MAX_PARSED_BODY: usize = 16 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One request seen by a [`CountingProxy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The query string (after `?`), if any.
    pub query: Option<String>,
    /// Which accepted connection carried it (0-based, in accept order).
    pub connection: usize,
}

#[derive(Debug, Default)]
struct Shared {
    requests: Mutex<Vec<ProxiedRequest>>,
    connections: AtomicUsize,
    stop: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
    /// The path whose next responses are lost, and how many more.
    drop_rule: Mutex<Option<(String, usize)>>,
    dropped: AtomicUsize,
}

impl Shared {
    /// Whether the response to a request for `path` is to be lost (and counts it).
    fn take_drop(&self, path: &str) -> bool {
        let mut rule = lock(&self.drop_rule);
        match &mut *rule {
            Some((target, left)) if target == path && *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }
}

/// A loopback TCP proxy that forwards to one upstream and records every HTTP/1.1 request line
/// passing through. Stopped (listener closed, connections shut down) on drop.
#[derive(Debug)]
pub struct CountingProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl CountingProxy {
    /// Starts a proxy on a free loopback port in front of `upstream`: `http://host:port`
    /// (as [`OpenBaoServer::addr`](crate::OpenBaoServer::addr) returns) or `host:port`.
    pub fn start(upstream: &str) -> Result<Self, Error> {
        let authority = upstream
            .strip_prefix("http://")
            .unwrap_or(upstream)
            .trim_end_matches('/');
        let target = authority
            .to_socket_addrs()
            .map_err(Error::io(format!("resolve upstream {authority}")))?
            .next()
            .ok_or_else(|| Error::BadResponse {
                addr: authority.to_owned(),
                reason: "the upstream address resolves to nothing".into(),
            })?;
        Self::start_to(target)
    }

    /// Starts a proxy in front of the socket address `upstream`.
    pub fn start_to(upstream: SocketAddr) -> Result<Self, Error> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(Error::io("bind counting proxy on 127.0.0.1:0"))?;
        let addr = listener
            .local_addr()
            .map_err(Error::io("counting proxy local_addr"))?;
        let shared = Arc::new(Shared::default());
        let accept_shared = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name(format!("counting-proxy-{}", addr.port()))
            .spawn(move || accept_loop(&listener, upstream, &accept_shared))
            .map_err(Error::io("spawn counting proxy thread"))?;
        Ok(Self {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// `http://127.0.0.1:PORT`: give this to the client under test.
    pub fn addr(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests had exactly this path (query string ignored).
    pub fn count(&self, path: &str) -> usize {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    /// How many requests had a path starting with `prefix`.
    pub fn count_prefix(&self, prefix: &str) -> usize {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    }

    /// How many requests were seen so far.
    pub fn total(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// How many TCP connections were accepted so far.
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Forgets the requests seen so far (connections stay open).
    pub fn reset(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Loses the responses to the next `count` requests whose path (query ignored) is
    /// `path`: each request is forwarded to the server, which handles it and answers; the
    /// answer is discarded and the client's connection closed without a byte of it (a
    /// response lost on the way back, e.g. to a login that consumed a single-use
    /// credential).
    pub fn drop_responses(&self, path: &str, count: usize) {
        *lock(&self.shared.drop_rule) = Some((path.to_owned(), count));
    }

    /// How many responses were lost by [`drop_responses`](Self::drop_responses) so far.
    pub fn dropped_responses(&self) -> usize {
        self.shared.dropped.load(Ordering::SeqCst)
    }
}

impl Drop for CountingProxy {
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept_loop(listener: &TcpListener, upstream: SocketAddr, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let connection = shared.connections.fetch_add(1, Ordering::SeqCst);
        let Ok(server) = TcpStream::connect_timeout(&upstream, CONNECT_TIMEOUT) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        {
            let mut open = lock(&shared.open);
            for stream in [&client, &server] {
                if let Ok(clone) = stream.try_clone() {
                    open.push(clone);
                }
            }
        }
        let (Ok(client_read), Ok(server_write)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        let upstream_shared = Arc::clone(shared);
        let downstream_shared = Arc::clone(shared);
        // Set while the request in flight on this connection is one whose response is lost
        // (HTTP/1.1 clients here send the next request only after the previous response).
        let swallow = Arc::new(AtomicBool::new(false));
        let up_swallow = Arc::clone(&swallow);
        // Detached: Drop shuts the sockets down, which ends both threads' blocking reads.
        let _ = std::thread::Builder::new()
            .name(format!("proxy-up-{connection}"))
            .spawn(move || {
                let connection = Connection {
                    id: connection,
                    swallow: &up_swallow,
                };
                forward_requests(client_read, server_write, &connection, &upstream_shared);
            });
        let _ = std::thread::Builder::new()
            .name(format!("proxy-down-{connection}"))
            .spawn(move || forward_responses(server, client, &swallow, &downstream_shared));
    }
}

/// One proxied connection, as the client → server thread sees it.
struct Connection<'a> {
    id: usize,
    swallow: &'a AtomicBool,
}

/// Client → server: parses each request, records it, and only then forwards its exact bytes,
/// so a request is always counted before its response can reach the client.
fn forward_requests(
    client: TcpStream,
    mut server: TcpStream,
    connection: &Connection<'_>,
    shared: &Shared,
) {
    let mut reader = BufReader::new(Recorder {
        from: client,
        pending: Vec::new(),
    });
    loop {
        match http::read_request(&mut reader, MAX_PARSED_BODY) {
            Ok(Some(request)) => {
                let (path, query) = match request.target.split_once('?') {
                    Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
                    None => (request.target, None),
                };
                if shared.take_drop(&path) {
                    connection.swallow.store(true, Ordering::SeqCst);
                }
                lock(&shared.requests).push(ProxiedRequest {
                    method: request.method,
                    path,
                    query,
                    connection: connection.id,
                });
                // What the parser consumed is this request; what is still buffered belongs to
                // the next one.
                let buffered = reader.buffer().len();
                let recorder = reader.get_mut();
                let consumed = recorder.pending.len() - buffered;
                if server.write_all(&recorder.pending[..consumed]).is_err() {
                    break;
                }
                recorder.pending.drain(..consumed);
            }
            Ok(None) => {
                let _ = server.write_all(&reader.get_ref().pending);
                break;
            }
            Err(_) => {
                // Not HTTP we can parse (or too large): forward the rest unchanged, uncounted.
                let recorder = reader.get_mut();
                if server.write_all(&recorder.pending).is_ok() {
                    let _ = std::io::copy(&mut recorder.from, &mut server);
                }
                break;
            }
        }
    }
    let _ = server.shutdown(Shutdown::Write);
}

/// Server → client: a plain copy, except that a response to be lost is read (so the server
/// surely handled the request) and dropped, and both connections are closed.
fn forward_responses(
    mut server: TcpStream,
    mut client: TcpStream,
    swallow: &AtomicBool,
    shared: &Shared,
) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if swallow.load(Ordering::SeqCst) {
            shared.dropped.fetch_add(1, Ordering::SeqCst);
            break;
        }
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = client.flush();
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
}

/// A reader that keeps a copy of every byte read, until it is forwarded.
struct Recorder {
    from: TcpStream,
    pending: Vec<u8>,
}

impl Read for Recorder {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.from.read(buf)?;
        self.pending.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Fault, FaultServer};

    #[test]
    fn counts_requests_on_keep_alive_connections() -> Result<(), Error> {
        let server = FaultServer::start(vec![Fault::text(200, "ok"); 4])?;
        let proxy = CountingProxy::start(&server.addr())?;
        let mut stream =
            TcpStream::connect(proxy.socket_addr()).map_err(Error::io("connect to the proxy"))?;
        let two = "GET /v1/a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n\
                   POST /v1/b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
        stream
            .write_all(two.as_bytes())
            .map_err(Error::io("write"))?;
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while seen.windows(2).filter(|w| w == b"ok").count() < 2 {
            let n = stream.read(&mut buf).map_err(Error::io("read"))?;
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        assert_eq!(proxy.count("/v1/a"), 1);
        assert_eq!(proxy.count("/v1/b"), 1);
        assert_eq!(proxy.count_prefix("/v1/"), 2);
        assert_eq!(proxy.requests()[0].query.as_deref(), Some("x=1"));
        assert_eq!(proxy.connection_count(), 1);
        // What the upstream got is what was sent.
        let upstream = server.requests();
        assert_eq!(upstream.len(), 2);
        assert_eq!(upstream[1].body, b"abc");
        Ok(())
    }

    #[test]
    fn dropped_responses_reach_the_server_but_not_the_client() -> Result<(), Error> {
        let server = FaultServer::start(vec![Fault::text(200, "ok")])?;
        let proxy = CountingProxy::start(&server.addr())?;
        proxy.drop_responses("/v1/login", 1);
        let exchange = |path: &str| -> Result<Vec<u8>, Error> {
            let mut stream = TcpStream::connect(proxy.socket_addr())
                .map_err(Error::io("connect to the proxy"))?;
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(Error::io("set_read_timeout"))?;
            let request = format!(
                "POST {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{{}}"
            );
            stream
                .write_all(request.as_bytes())
                .map_err(Error::io("write"))?;
            let mut seen = Vec::new();
            let _ = stream.read_to_end(&mut seen);
            Ok(seen)
        };
        assert!(exchange("/v1/login")?.is_empty(), "the response was lost");
        assert_eq!(server.request_count(), 1, "the server handled the request");
        assert_eq!(proxy.dropped_responses(), 1);
        // Only the first one: the next login gets its answer.
        assert!(exchange("/v1/login")?.starts_with(b"HTTP/1.1 200"));
        assert!(exchange("/v1/other")?.starts_with(b"HTTP/1.1 200"));
        assert_eq!((proxy.count("/v1/login"), server.request_count()), (2, 3));
        Ok(())
    }
}
