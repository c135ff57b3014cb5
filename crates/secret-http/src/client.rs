//! [`HttpClient`]: hyper-util's pooled HTTP/1.1 client over hyper-rustls, one attempt at a
//! time, with the per-attempt timeout, the body cap and the error classification, each attempt
//! in an OpenTelemetry HTTP client span.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tracing::{Instrument as _, Span};

use crate::message::{Body, Request, Response};
use crate::{BoxError, HttpError, Setting, TlsConfig, url};

/// The default per-attempt timeout, 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default response body cap, 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long an idle pooled connection is kept, 30 s: below the 60 s idle timeout common to
/// load balancers and proxies, so that the pool drops a connection before the far side does
/// (a request on a connection the far side is closing fails as `CONNECTION_LOST`).
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

type Pool = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Settings of an [`HttpClient`].
///
/// ```
/// use std::time::Duration;
/// use secret_http::{ClientConfig, TlsConfig};
///
/// let config = ClientConfig::new("openbao")
///     .with_timeout(Duration::from_secs(5))
///     .with_max_body_bytes(64 * 1024)
///     .with_tls(TlsConfig::default().with_ca_bundle("/etc/ssl/bao-ca.pem"));
/// assert_eq!(config.timeout, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Who uses this client (`openbao`, `authzen`): the `client` field of its log events.
    pub name: &'static str,
    /// Per-attempt timeout covering connect, TLS, the response head and the body.
    pub timeout: Duration,
    /// Responses with larger bodies fail with [`HttpError::TooLarge`].
    pub max_body_bytes: usize,
    /// Allow plain `http://` to hosts that are not loopback.
    pub allow_insecure_http: bool,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Trust roots, client certificate, verification.
    pub tls: TlsConfig,
}

impl ClientConfig {
    /// Defaults: [`DEFAULT_TIMEOUT`], [`DEFAULT_MAX_BODY_BYTES`],
    /// [`DEFAULT_POOL_IDLE_TIMEOUT`], the webpki roots, plain HTTP to loopback only.
    #[must_use]
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            timeout: DEFAULT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            allow_insecure_http: false,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            tls: TlsConfig::default(),
        }
    }

    /// Sets the per-attempt timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the response body cap.
    #[must_use]
    pub fn with_max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Allows plain `http://` to hosts that are not loopback.
    #[must_use]
    pub fn with_allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Sets how long idle pooled connections are kept.
    #[must_use]
    pub fn with_pool_idle_timeout(mut self, idle: Duration) -> Self {
        self.pool_idle_timeout = idle;
        self
    }

    /// Sets the TLS settings.
    #[must_use]
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }
}

/// A pooled keep-alive HTTP/1.1 client over rustls (ring); cheap to clone (clones share the
/// pool).
///
/// - [`new`](Self::new) reads the TLS files and does no network I/O.
/// - [`send`](Self::send) makes one attempt; [`send_retrying`](Self::send_retrying) adds the
///   retry policy.
/// - Redirects are never followed: a 3xx is a response like any other.
/// - Requests must run inside a tokio runtime (the pool spawns its connection tasks there).
/// - Telemetry: each attempt is an `http_request` span at DEBUG, an OpenTelemetry HTTP client
///   span: `otel.name` (the method), `otel.kind = "client"`, `http.request.method`,
///   `server.address`, `server.port`, `http.response.status_code` once a head arrives,
///   `error.type` (the status as text from 400 up, else the [`HttpError`] code) and, on a
///   retry, `http.request.resend_count`. Never `url.full`, the path, the query, a header or
///   a body: the path names the secret, headers carry tokens. A disabled span costs one
///   level check.
#[derive(Clone)]
pub struct HttpClient {
    pub(crate) pool: Pool,
    pub(crate) name: &'static str,
    pub(crate) timeout: Duration,
    pub(crate) max_body: usize,
    pub(crate) allow_insecure_http: bool,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Validates the settings, reads the TLS files and builds the idle pool.
    ///
    /// # Errors
    /// [`HttpError::Config`] for a zero timeout or an unusable CA bundle or client
    /// certificate; the setting at fault is a field.
    pub fn new(config: &ClientConfig) -> Result<Self, HttpError> {
        if config.timeout.is_zero() {
            return Err(HttpError::config(Setting::Timeout, "must be positive"));
        }
        let tls = config.tls.build()?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let pool = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .build(connector);
        Ok(Self {
            pool,
            name: config.name,
            timeout: config.timeout,
            max_body: config.max_body_bytes,
            allow_insecure_http: config.allow_insecure_http,
        })
    }

    /// The name given in [`ClientConfig::name`].
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The per-attempt timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The response body cap.
    #[must_use]
    pub fn max_body_bytes(&self) -> usize {
        self.max_body
    }

    /// One attempt: connect (or reuse a pooled connection), send, read the whole body within
    /// the cap, all within the per-attempt timeout (or what is left of the request's
    /// deadline). Any status is a response, unless the request
    /// [expects](Request::with_expect_status) another.
    ///
    /// # Errors
    /// The [`HttpError`] transport classes: `INSECURE_HTTP`, `CONNECT`, `CONNECTION_LOST`,
    /// `TLS`, `TIMEOUT`, `STATUS`, `TOO_LARGE`, `BODY_CUT`, `BAD_FRAMING`.
    ///
    /// The attempt runs in an `http_request` span at DEBUG (see [`HttpClient`]'s docs on
    /// telemetry).
    pub async fn send(&self, request: &Request) -> Result<Response, HttpError> {
        self.attempt(request, 0).await
    }

    /// One attempt in its `http_request` span; `resend_count` is 0 for a first attempt and
    /// counts the attempts before it otherwise.
    pub(crate) async fn attempt(
        &self,
        request: &Request,
        resend_count: u32,
    ) -> Result<Response, HttpError> {
        let span = attempt_span(request, resend_count);
        let result = self
            .attempt_unspanned(request, &span)
            .instrument(span.clone())
            .await;
        if !span.is_disabled() {
            record_outcome(&span, &result);
        }
        result
    }

    async fn attempt_unspanned(
        &self,
        request: &Request,
        span: &Span,
    ) -> Result<Response, HttpError> {
        url::check_request(&request.uri, self.allow_insecure_http)?;
        let timeout = request.deadline.map_or(self.timeout, |deadline| {
            deadline.remaining().min(self.timeout)
        });
        tokio::time::timeout(timeout, self.exchange(request, span))
            .await
            .map_err(|_| HttpError::Timeout { timeout })?
    }

    async fn exchange(&self, request: &Request, span: &Span) -> Result<Response, HttpError> {
        let response = self.pool.request(request.to_hyper()).await.map_err(|e| {
            let connect = e.is_connect();
            classify(Box::new(e), connect)
        })?;
        let (head, body) = response.into_parts();
        let status = head.status.as_u16();
        if !span.is_disabled() {
            // Known as soon as the head arrives, even if the body then fails.
            span.record("http.response.status_code", status);
        }
        if request
            .expect
            .is_some_and(|expected| expected != head.status)
        {
            return Err(HttpError::Status { status });
        }
        let limit = self.max_body as u64;
        let declared = head
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit) {
            return Err(HttpError::TooLarge { limit });
        }
        let collected = Limited::new(body, self.max_body)
            .collect()
            .await
            .map_err(|source| {
                if source.is::<LengthLimitError>() {
                    HttpError::TooLarge { limit }
                } else if connection_broke(source.as_ref()) {
                    HttpError::BodyCut { status, source }
                } else {
                    HttpError::BadFraming { status, source }
                }
            })?;
        Ok(Response {
            status: head.status,
            headers: head.headers,
            body: Body::copy_of(collected.to_bytes()),
            attempts: 1,
        })
    }
}

/// The OpenTelemetry HTTP client span of one attempt (DEBUG), named `http_request`, with
/// `otel.name` the method as the conventions name client spans. Only the method and the
/// server's host and port: never `url.full`, the path or the query (they name the secret),
/// nor a header (they carry tokens) or a body.
///
/// The span and field names are the strings of `secret_telemetry::names::span::HTTP_REQUEST`
/// and `secret_telemetry::names::semconv`, spelled out: this crate sits below
/// `secret-telemetry` in the layers and cannot name them (the providers' tests check that
/// they match).
fn attempt_span(request: &Request, resend_count: u32) -> Span {
    // The values are evaluated only when the span is enabled, and given at creation so that a
    // sampler sees them.
    tracing::debug_span!(
        "http_request",
        otel.name = request.method.as_str(),
        otel.kind = "client",
        http.request.method = request.method.as_str(),
        server.address = server_of(&request.uri).0,
        server.port = server_of(&request.uri).1,
        http.request.resend_count = (resend_count > 0).then_some(resend_count),
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    )
}

/// `error.type` per the conventions: the status code as text for a response of 400 or more
/// (`http.response.status_code` is recorded when the head arrives), else the [`HttpError`]
/// code of a failed attempt.
fn record_outcome(span: &Span, result: &Result<Response, HttpError>) {
    let status = match result {
        Ok(response) => response.status,
        Err(HttpError::Status { status }) => match http::StatusCode::from_u16(*status) {
            Ok(status) => status,
            Err(_) => return,
        },
        Err(error) => {
            span.record("error.type", error.code());
            return;
        }
    };
    if status.as_u16() >= 400 {
        span.record("error.type", status.as_str());
    }
}

/// `server.address` (an IPv6 address without its brackets) and `server.port` (the scheme's
/// default when the URI names none) of a request URI.
pub(crate) fn server_of(uri: &http::Uri) -> (&str, Option<u16>) {
    let host = uri.host().unwrap_or_default();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = uri.port_u16().or(match uri.scheme_str() {
        Some(scheme) if scheme.eq_ignore_ascii_case("https") => Some(443),
        Some(scheme) if scheme.eq_ignore_ascii_case("http") => Some(80),
        _ => None,
    });
    (host, port)
}

/// TLS failures anywhere in the chain come first: a wrong CA stays wrong, so they are never
/// retried. `connect`: the error came from the connector, so the request was never sent.
fn classify(source: BoxError, connect: bool) -> HttpError {
    if causes(source.as_ref()).any(|cause| cause.is::<rustls::Error>()) {
        HttpError::Tls { source }
    } else if connect {
        HttpError::Connect { source }
    } else {
        HttpError::ConnectionLost { source }
    }
}

/// Whether a body error is the connection ending or breaking (EOF before the declared
/// length, a reset) rather than bytes that are not HTTP.
fn connection_broke(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    causes(error).any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                ErrorKind::UnexpectedEof
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
            )
        }) || cause
            .downcast_ref::<hyper::Error>()
            .is_some_and(|e| e.is_incomplete_message() || e.is_canceled())
    })
}

/// An error and its causes, looking inside `io::Error`s (whose `source` skips the error they
/// wrap).
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |current| {
        match current.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        }
    })
}
