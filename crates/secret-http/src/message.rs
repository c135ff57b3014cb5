//! [`Request`], [`Response`] and the wiped [`Body`]: our own small types, so that hyper's stay
//! out of every signature.

use std::fmt;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};

use crate::Deadline;

/// A request to send with [`HttpClient`](crate::HttpClient): method, URI, headers and a body.
///
/// - The body is wiped when the request is dropped, if nothing else holds it (credentials in
///   a login body).
/// - [`with_expect_status`](Self::with_expect_status): any other status is
///   [`HttpError::Status`](crate::HttpError::Status) and its body is never read.
/// - [`with_idempotent`](Self::with_idempotent) decides what
///   [`send_retrying`](crate::HttpClient::send_retrying) may send again; it defaults to what
///   the method promises (`GET`, `PUT`, `DELETE`, … yes; `POST`, `PATCH` no).
/// - `Debug` shows the method, the origin (never the path or query), the header names (never
///   their values) and the body length.
///
/// ```
/// use http::{Method, StatusCode, header::CONTENT_TYPE, HeaderValue};
/// use secret_http::Request;
///
/// let request = Request::new(Method::POST, "https://pdp.example/access/v1/evaluation".parse()?)
///     .with_header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
///     .with_body(r#"{"subject":{"id":"alice"}}"#)
///     .with_expect_status(StatusCode::OK);
/// assert!(!request.is_idempotent());
/// let shown = format!("{request:?}");
/// assert!(shown.contains("https://pdp.example") && !shown.contains("evaluation") && !shown.contains("alice"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Request {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) idempotent: bool,
    pub(crate) expect: Option<StatusCode>,
    pub(crate) deadline: Option<Deadline>,
}

impl Request {
    /// A request with no headers and an empty body.
    #[must_use]
    pub fn new(method: Method, uri: Uri) -> Self {
        Self {
            idempotent: method.is_idempotent(),
            method,
            uri,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            expect: None,
            deadline: None,
        }
    }

    /// A `GET`.
    #[must_use]
    pub fn get(uri: Uri) -> Self {
        Self::new(Method::GET, uri)
    }

    /// A `POST`.
    #[must_use]
    pub fn post(uri: Uri) -> Self {
        Self::new(Method::POST, uri)
    }

    /// Sets a header (replacing any value it had). Mark secrets with
    /// [`HeaderValue::set_sensitive`] so that HTTP/2 never indexes them.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Sets the body. It is wiped when the request is dropped, if nothing else holds it.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Whether the request may be sent twice with the same effect (see
    /// [`send_retrying`](crate::HttpClient::send_retrying)).
    #[must_use]
    pub fn with_idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// The one status accepted: any other is [`HttpError::Status`](crate::HttpError::Status)
    /// at once, without reading (or waiting for) the body.
    #[must_use]
    pub fn with_expect_status(mut self, status: StatusCode) -> Self {
        self.expect = Some(status);
        self
    }

    /// An overall deadline: each attempt gets at most the time left, and no retry starts
    /// whose backoff would end after it.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The headers, to add to.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The method.
    #[must_use]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URI.
    #[must_use]
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Whether [`send_retrying`](crate::HttpClient::send_retrying) may send it again after a
    /// failure that may have reached the server.
    #[must_use]
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// The per-attempt hyper request.
    pub(crate) fn to_hyper(&self) -> hyper::Request<http_body_util::Full<Bytes>> {
        let mut request = hyper::Request::new(http_body_util::Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        wipe_bytes(std::mem::take(&mut self.body));
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("origin", &Origin(&self.uri))
            .field("headers", &HeaderNames(&self.headers))
            .field("body_len", &self.body.len())
            .field("idempotent", &self.idempotent)
            .finish_non_exhaustive()
    }
}

/// A response that arrived in full, within the body cap.
pub struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
    pub(crate) attempts: u32,
}

impl Response {
    /// How many attempts it took to get this response: 1 from
    /// [`send`](crate::HttpClient::send), the first included from
    /// [`send_retrying`](crate::HttpClient::send_retrying).
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body.
    #[must_use]
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The body, to keep after the rest is dropped.
    #[must_use]
    pub fn into_body(self) -> Body {
        self.body
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &HeaderNames(&self.headers))
            .field("body", &self.body)
            .field("attempts", &self.attempts)
            .finish()
    }
}

/// A response body (a secret, a token) that is zeroized when dropped, on every path.
///
/// The bytes are copied out of hyper's buffers into a buffer of our own; the originals are
/// wiped where nothing else holds them (hyper's read buffer usually still does, and the
/// kernel's socket buffers are out of reach). `Debug` shows the length only.
pub struct Body(Vec<u8>);

impl Body {
    /// Copies `bytes` into a buffer of our own, then wipes `bytes` if nothing else holds it.
    pub(crate) fn copy_of(bytes: Bytes) -> Self {
        let body = Self(bytes.to_vec());
        wipe_bytes(bytes);
        body
    }
}

impl std::ops::Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
        #[cfg(test)]
        tests::WIPED.with(|wiped| wiped.borrow_mut().push(self.0.capacity()));
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Body([REDACTED; {} bytes])", self.0.len())
    }
}

/// Best-effort wipe of a body once nothing else holds it.
pub(crate) fn wipe_bytes(body: Bytes) {
    if let Ok(mut unique) = body.try_into_mut() {
        zeroize::Zeroize::zeroize(unique.as_mut());
    }
}

/// `scheme://authority` of a URI: the path and query may name a secret.
struct Origin<'a>(&'a Uri);

impl fmt::Debug for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.0.scheme_str().unwrap_or_default();
        let authority = self.0.authority().map_or("", |a| a.as_str());
        write!(f, "\"{scheme}://{authority}\"")
    }
}

struct HeaderNames<'a>(&'a HeaderMap);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    thread_local! {
        /// Capacities of the response bodies wiped on this thread.
        pub(crate) static WIPED: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    #[test]
    fn debug_shows_no_path_header_value_or_body() -> Result<(), http::uri::InvalidUri> {
        let mut token = HeaderValue::from_static("s.planted-token");
        token.set_sensitive(true);
        let request =
            Request::get("https://bao.example:8200/v1/secret/data/app?version=2".parse()?)
                .with_header(HeaderName::from_static("x-vault-token"), token)
                .with_body("planted-body");
        let shown = format!("{request:?}");
        for hidden in ["secret/data", "version", "planted"] {
            assert!(!shown.contains(hidden), "{shown}");
        }
        assert!(shown.contains("https://bao.example:8200") && shown.contains("x-vault-token"));
        let body = Body::copy_of(Bytes::from_static(b"planted-secret"));
        assert_eq!(format!("{body:?}"), "Body([REDACTED; 14 bytes])");
        Ok(())
    }

    #[test]
    fn bodies_are_wiped() {
        WIPED.with(|w| w.borrow_mut().clear());
        let unique = Bytes::from(b"secret".to_vec());
        drop(Body::copy_of(unique));
        assert_eq!(WIPED.with(|w| w.borrow().clone()), [6]);

        let shared = bytes::BytesMut::from(&b"login-secret"[..]).freeze();
        let request = Request::post(Uri::from_static("http://127.0.0.1/")).with_body(shared);
        let probe = request.body.clone();
        drop(request);
        assert_eq!(&probe[..], b"login-secret", "still shared: left alone");
    }
}
