//! Just enough blocking HTTP/1.1 over `std::net` for admin calls and the fault server.
//!
//! Deliberately tiny and dependency-free: tests of the SDK's real transport must not share code
//! with it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::Error;

const MAX_HEAD: usize = 64 * 1024;

/// A parsed response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// Sends one request on a fresh connection (`Connection: close`) and reads the whole response.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<Response, Error> {
    let peer = addr.to_string();
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(Error::io(format!("connect to {peer}")))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(Error::io("set read timeout"))?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(Error::io("set write timeout"))?;

    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {peer}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    } else if matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.unwrap_or_default());
    stream
        .write_all(&out)
        .map_err(Error::io(format!("send {method} {target} to {peer}")))?;

    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(Error::io(format!(
        "read response to {method} {target} from {peer}"
    )))?;
    parse_response(&raw, method == "HEAD")
        .map_err(|reason| Error::BadResponse { addr: peer, reason })
}

fn parse_response(raw: &[u8], head_only: bool) -> Result<Response, String> {
    let split = find(raw, b"\r\n\r\n").ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "headers are not UTF-8")?;
    let rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers = parse_headers(lines)?;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let body = if head_only || status == 204 || status == 304 {
        Vec::new()
    } else if header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        let mut reader = BufReader::new(rest);
        read_chunked(&mut reader, usize::MAX).map_err(|e| e.to_string())?
    } else if let Some(len) = header("content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| format!("bad Content-Length {len:?}"))?;
        if rest.len() < len {
            return Err(format!("body truncated: {} of {len} bytes", rest.len()));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_headers<'a>(
    lines: impl Iterator<Item = &'a str>,
) -> Result<Vec<(String, String)>, String> {
    lines
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header {line:?}"))?;
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

/// Reads a chunked body (and its trailers), refusing more than `limit` bytes.
pub(crate) fn read_chunked(reader: &mut impl BufRead, limit: usize) -> std::io::Result<Vec<u8>> {
    let invalid = |msg: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_owned());
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(invalid("EOF in chunk size"));
        }
        let size = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len().saturating_add(size) > limit {
            return Err(invalid("chunked body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        line.clear();
        reader.read_line(&mut line)?;
    }
}

/// One request as the fault server read it.
pub(crate) struct ParsedRequest {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// Reads the next request from a keep-alive connection; `Ok(None)` on a clean EOF before it.
pub(crate) fn read_request(
    reader: &mut impl BufRead,
    max_body: usize,
) -> std::io::Result<Option<ParsedRequest>> {
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
    let mut head = String::new();
    loop {
        let before = head.len();
        let n = reader.read_line(&mut head)?;
        if n == 0 {
            return if head.trim().is_empty() {
                Ok(None)
            } else {
                Err(invalid("EOF inside request head".into()))
            };
        }
        if head.len() > MAX_HEAD {
            return Err(invalid("request head too large".into()));
        }
        let line = &head[before..];
        if line == "\r\n" || line == "\n" {
            // Tolerate stray empty lines between pipelined requests (RFC 9112 §2.2).
            if head.trim().is_empty() {
                head.clear();
                continue;
            }
            break;
        }
    }
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!("bad request line {request_line:?}")));
    };
    let headers = parse_headers(lines).map_err(invalid)?;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let body = if header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        read_chunked(reader, max_body)?
    } else if let Some(len) = header("content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {len:?}")))?;
        if len > max_body {
            return Err(invalid(format!("request body of {len} bytes too large")));
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        body
    } else {
        Vec::new()
    };
    Ok(Some(ParsedRequest {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body,
    }))
}

/// The standard reason phrase, or `"Unknown"`.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked_responses() -> Result<(), String> {
        let plain = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", false)?;
        assert_eq!((plain.status, plain.body.as_slice()), (200, &b"{}"[..]));

        let chunked = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let chunked = parse_response(chunked, false)?;
        assert_eq!(
            (chunked.status, chunked.body.as_slice()),
            (404, &b"abcde"[..])
        );

        let empty = parse_response(b"HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n", false)?;
        assert_eq!((empty.status, empty.body.len()), (204, 0));

        let short = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", false);
        assert!(short.is_err_and(|e| e.contains("truncated")));
        Ok(())
    }

    #[test]
    fn reads_pipelined_requests() -> std::io::Result<()> {
        let raw = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyzGET /b?q=1 HTTP/1.1\r\nX-A: 1\r\n\r\n";
        let mut reader = BufReader::new(&raw[..]);
        let first =
            read_request(&mut reader, 1024)?.ok_or_else(|| std::io::Error::other("none"))?;
        assert_eq!(
            (first.method.as_str(), first.target.as_str()),
            ("POST", "/a")
        );
        assert_eq!(first.body, b"xyz");
        let second =
            read_request(&mut reader, 1024)?.ok_or_else(|| std::io::Error::other("none"))?;
        assert_eq!(
            (second.method.as_str(), second.target.as_str()),
            ("GET", "/b?q=1")
        );
        assert_eq!(second.headers, vec![("X-A".to_owned(), "1".to_owned())]);
        assert!(read_request(&mut reader, 1024)?.is_none());
        Ok(())
    }
}
