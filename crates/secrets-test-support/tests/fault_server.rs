//! The fault server against a raw TCP client (no `bao` needed).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use secrets_test_support::{Fault, FaultServer};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Client {
    fn connect(server: &FaultServer) -> std::io::Result<Self> {
        let stream = TcpStream::connect(server.socket_addr())?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    fn send(&mut self, raw: &str) -> std::io::Result<()> {
        self.writer.write_all(raw.as_bytes())
    }

    fn get(&mut self, path: &str) -> std::io::Result<()> {
        self.send(&format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"))
    }

    /// Reads one response head and exactly `Content-Length` body bytes.
    fn reply(&mut self) -> std::io::Result<Option<Reply>> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((n, v)) = trimmed.split_once(':') {
                headers.push((n.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        let len: usize = reply
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        reply.body = vec![0; len];
        self.reader.read_exact(&mut reply.body)?;
        Ok(Some(reply))
    }

    /// Everything until the server closes.
    fn rest(&mut self) -> std::io::Result<Vec<u8>> {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest)?;
        Ok(rest)
    }
}

fn missing() -> std::io::Error {
    std::io::Error::other("server closed the connection")
}

#[test]
fn script_runs_in_order_over_keep_alive_and_repeats_last_step() -> TestResult {
    let server = FaultServer::start(vec![
        Fault::status(503),
        Fault::json(200, &json!({"ok": true})).with_header("X-Step", "2"),
    ])?;
    let mut client = Client::connect(&server)?;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        client.get("/v1/secret/data/app")?;
        statuses.push(client.reply()?.ok_or_else(missing)?.status);
    }
    assert_eq!(statuses, [503, 200, 200, 200]);
    assert_eq!((server.request_count(), server.connection_count()), (4, 1));

    client.get("/again")?;
    let reply = client.reply()?.ok_or_else(missing)?;
    assert_eq!(reply.header("x-step"), Some("2"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&reply.body)?,
        json!({"ok": true})
    );
    Ok(())
}

#[test]
fn records_method_path_headers_and_bodies_including_pipelined_and_chunked() -> TestResult {
    let server = FaultServer::start(vec![Fault::status(204)])?;
    let mut client = Client::connect(&server)?;
    // Two requests in one write: the server must split them by Content-Length.
    client.send(
        "POST /v1/auth/approle/login HTTP/1.1\r\nHost: t\r\nX-Vault-Namespace: team-a\r\nContent-Length: 13\r\n\r\n{\"role\":\"r\"}\n\
         PUT /v1/x?version=2 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
    )?;
    assert_eq!(client.reply()?.ok_or_else(missing)?.status, 204);
    assert_eq!(client.reply()?.ok_or_else(missing)?.status, 204);

    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/v1/auth/approle/login")
    );
    assert_eq!(seen[0].header("x-vault-namespace"), Some("team-a"));
    assert_eq!(seen[0].json(), Some(json!({"role": "r"})));
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("PUT", "/v1/x?version=2")
    );
    assert_eq!(seen[1].body, b"abcd");
    assert_eq!((seen[0].connection, seen[1].connection), (0, 0));
    Ok(())
}

#[test]
fn close_drops_the_connection_without_a_reply() -> TestResult {
    let server = FaultServer::start(vec![Fault::Close, Fault::status(200)])?;
    let mut client = Client::connect(&server)?;
    client.get("/first")?;
    assert!(client.rest()?.is_empty());

    // A new connection gets the next step.
    let mut client = Client::connect(&server)?;
    client.get("/second")?;
    assert_eq!(client.reply()?.ok_or_else(missing)?.status, 200);
    assert_eq!((server.request_count(), server.connection_count()), (2, 2));
    Ok(())
}

#[test]
fn truncated_declares_more_than_it_sends_then_closes() -> TestResult {
    let server = FaultServer::start(vec![Fault::Truncated {
        declared_len: 100,
        body: b"{\"data\":".to_vec(),
    }])?;
    let mut client = Client::connect(&server)?;
    client.get("/")?;
    let raw = String::from_utf8(client.rest()?)?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no head")?;
    assert!(head.starts_with("HTTP/1.1 200 OK"));
    assert!(head.contains("Content-Length: 100"));
    assert_eq!(body, "{\"data\":");
    Ok(())
}

#[test]
fn huge_streams_exactly_len_bytes_and_keeps_the_connection() -> TestResult {
    let len = 3 * 1024 * 1024 + 7;
    let server = FaultServer::start(vec![Fault::Huge { len }, Fault::status(200)])?;
    let mut client = Client::connect(&server)?;
    client.get("/big")?;
    let reply = client.reply()?.ok_or_else(missing)?;
    assert_eq!(reply.body.len(), len);
    let value: serde_json::Value = serde_json::from_slice(&reply.body)?;
    assert_eq!(value["data"]["metadata"]["version"], 1);
    client.get("/after")?;
    assert_eq!(client.reply()?.ok_or_else(missing)?.status, 200);
    Ok(())
}

#[test]
fn delay_waits_before_the_inner_step() -> TestResult {
    let delay = Duration::from_millis(300);
    let server = FaultServer::start(vec![Fault::delay(delay, Fault::status(502))])?;
    let mut client = Client::connect(&server)?;
    let started = Instant::now();
    client.get("/slow")?;
    assert_eq!(client.reply()?.ok_or_else(missing)?.status, 502);
    assert!(started.elapsed() >= delay);
    Ok(())
}

#[test]
fn connection_close_request_is_honoured_and_set_script_restarts() -> TestResult {
    let server = FaultServer::start(vec![Fault::status(500)])?;
    server.set_script(vec![
        Fault::text(429, "slow down").with_header("Retry-After", "1"),
    ]);
    let mut client = Client::connect(&server)?;
    client.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")?;
    let reply = client.reply()?.ok_or_else(missing)?;
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (429, &b"slow down"[..])
    );
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(client.rest()?.is_empty());
    Ok(())
}

#[test]
fn dropping_the_server_closes_idle_connections_and_the_port() -> TestResult {
    let server = FaultServer::start(vec![Fault::status(200)])?;
    let addr = server.socket_addr();
    let mut client = Client::connect(&server)?;
    client.get("/")?;
    assert!(client.reply()?.is_some());
    drop(server);
    assert!(client.rest().map(|rest| rest.is_empty()).unwrap_or(true));
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    Ok(())
}

#[test]
fn empty_script_answers_500() -> TestResult {
    let server = FaultServer::start(Vec::new())?;
    let mut client = Client::connect(&server)?;
    client.get("/")?;
    assert_eq!(client.reply()?.ok_or_else(missing)?.status, 500);
    Ok(())
}

#[test]
fn hang_never_answers_until_the_server_is_dropped() -> TestResult {
    let server = FaultServer::start(vec![Fault::Hang])?;
    let mut client = Client::connect(&server)?;
    client
        .writer
        .set_read_timeout(Some(Duration::from_millis(300)))?;
    client.get("/hang")?;
    let mut byte = [0u8; 1];
    let silent = client.reader.get_mut().read(&mut byte);
    assert!(
        matches!(&silent, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "{silent:?}"
    );
    assert_eq!(server.request_count(), 1, "the request was read");
    // Dropping the server ends the hang: the connection closes without a reply.
    client
        .writer
        .set_read_timeout(Some(Duration::from_secs(10)))?;
    drop(server);
    assert!(client.rest().map(|rest| rest.is_empty()).unwrap_or(true));
    Ok(())
}
