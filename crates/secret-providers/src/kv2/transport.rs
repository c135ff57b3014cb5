//! HTTP/1.1 keep-alive transport: hyper-util's pooled client over rustls (ring), with
//! per-attempt timeouts, a body cap and retries with jittered exponential backoff.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::config::{CaBundleMode, Kv2Config, RetryConfig};
use crate::{BoxError, ProviderError};

pub(crate) const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-vault-token");
pub(crate) const NAMESPACE_HEADER: HeaderName = HeaderName::from_static("x-vault-namespace");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The pooled client and what every request shares.
pub(crate) struct Transport {
    pub(crate) provider: &'static str,
    client: HttpClient,
    /// `scheme://authority[/prefix]/v1/`.
    base: String,
    namespace: Option<HeaderValue>,
    timeout: Duration,
    retry: RetryConfig,
    max_body: usize,
}

/// A response that came back in full.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: WipedBody,
}

/// A response body (a secret, a token) that is zeroized when dropped, on every path.
pub(crate) struct WipedBody(Vec<u8>);

impl WipedBody {
    /// Copies `bytes` into a buffer of our own, then wipes `bytes` if nothing else holds it
    /// (hyper's read buffer usually still does; see the crate docs).
    fn copy_of(bytes: Bytes) -> Self {
        let body = Self(bytes.to_vec());
        wipe_bytes(bytes);
        body
    }
}

impl std::ops::Deref for WipedBody {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for WipedBody {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
        #[cfg(test)]
        tests::WIPED.with(|wiped| wiped.borrow_mut().push(self.0.capacity()));
    }
}

/// One attempt's failure, before retry policy and mapping.
#[derive(Debug)]
enum AttemptError {
    Timeout,
    /// Could not connect: the request was never sent.
    Connect(BoxError),
    /// The connection broke after it was established, before a response head arrived: the
    /// request may have reached the server.
    Transport(BoxError),
    Tls(BoxError),
    /// 429, 500, 502, 503, 504.
    Status(StatusCode),
    TooLarge,
    /// The connection broke off mid-body after the head (with this status) arrived.
    BodyCut(StatusCode, BoxError),
    /// The body is not valid HTTP framing (e.g. a bad chunk), after a head with this status.
    BadFraming(StatusCode),
}

/// Which failed attempts may be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replay {
    /// Reads and renewals: retry connection errors, timeouts, cut bodies, 429 and 5xx.
    Idempotent,
    /// Logins: retry only when the request was surely not acted on: the connection failed
    /// (so it was never sent), or the server refused it before handling it (429, 503:
    /// sealed, standby, rate-limited). A login that may have been handled is not sent
    /// again: it may have consumed a single-use credential (an AppRole `secret_id` with
    /// `secret_id_num_uses`), and a second attempt would turn a lost response into
    /// `AUTH_FAILED`.
    NotSent,
}

impl AttemptError {
    fn retryable(&self, replay: Replay) -> bool {
        match replay {
            Replay::Idempotent => matches!(
                self,
                Self::Timeout
                    | Self::Connect(_)
                    | Self::Transport(_)
                    | Self::Status(_)
                    | Self::BodyCut(..)
            ),
            Replay::NotSent => match self {
                Self::Connect(_) => true,
                Self::Status(status) => matches!(status.as_u16(), 429 | 503),
                _ => false,
            },
        }
    }
}

impl Transport {
    /// Validates the address and TLS settings and builds the (idle) client: no network I/O.
    pub(crate) fn new(config: &Kv2Config) -> Result<Self, ProviderError> {
        let provider = config.flavor.name();
        let uri: Uri = config
            .address
            .trim()
            .parse()
            .map_err(|e: http::uri::InvalidUri| {
                config_error(provider, "address is not a URL", e)
            })?;
        let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
        let host = uri.host().unwrap_or_default();
        if host.is_empty() {
            return Err(ProviderError::config(provider, "address has no host"));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(ProviderError::config(
                provider,
                "address must not carry credentials",
            ));
        }
        if uri.query().is_some() {
            return Err(ProviderError::config(
                provider,
                "address must not have a query",
            ));
        }
        match scheme.as_str() {
            "https" => {}
            "http" if is_loopback(host) || config.allow_insecure_http => {}
            "http" => {
                return Err(ProviderError::config(
                    provider,
                    "plain http:// is only allowed to loopback hosts unless allow_insecure_http is set",
                ));
            }
            _ => {
                return Err(ProviderError::config(
                    provider,
                    "address must be http:// or https://",
                ));
            }
        }
        if config.skip_verify {
            let environment = config
                .environment
                .clone()
                .or_else(|| std::env::var("ENVIRONMENT").ok());
            if environment.is_some_and(|e| {
                matches!(
                    e.trim().to_ascii_lowercase().as_str(),
                    "production" | "prod"
                )
            }) {
                return Err(ProviderError::config(
                    provider,
                    "skip_verify is refused when ENVIRONMENT is production",
                ));
            }
            tracing::warn!(
                provider,
                "TLS certificate verification is disabled (skip_verify)"
            );
        }
        if config.retry.attempts == 0 {
            return Err(ProviderError::config(
                provider,
                "retry attempts must be at least 1",
            ));
        }
        if config.timeout.is_zero() {
            return Err(ProviderError::config(provider, "timeout must be positive"));
        }
        let namespace = config
            .namespace
            .as_deref()
            .map(str::trim)
            .filter(|ns| !ns.is_empty())
            .map(|ns| {
                HeaderValue::from_str(ns)
                    .map_err(|e| config_error(provider, "namespace is not a valid header value", e))
            })
            .transpose()?;

        let tls = tls_config(config)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);

        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
        let prefix = uri.path().trim_end_matches('/');
        let base = format!("{scheme}://{authority}{prefix}/v1/");
        Ok(Self {
            provider,
            client,
            base,
            namespace,
            timeout: config.timeout,
            retry: config.retry,
            max_body: config.max_body_bytes,
        })
    }

    /// `base` + `path` (which must not start with `/`) as a request URI.
    pub(crate) fn url(&self, path: &str) -> Result<Uri, ProviderError> {
        let mut url = String::with_capacity(self.base.len() + path.len());
        url.push_str(&self.base);
        url.push_str(path);
        Uri::try_from(url).map_err(|e| config_error(self.provider, "request URL is invalid", e))
    }

    /// Sends an idempotent request, retrying connection errors, timeouts, bodies cut off
    /// mid-response, 429 and 500/502/503/504. Other statuses are returned to the caller.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &Uri,
        token: Option<&HeaderValue>,
        body: Option<Bytes>,
    ) -> Result<Reply, ProviderError> {
        self.send_with(method, url, token, body, Replay::Idempotent)
            .await
    }

    /// Sends a request that must not be handled twice (a login): retried only when it was
    /// surely never sent (connection refused) or refused unhandled (429, 503). A lost
    /// response is `UNAVAILABLE` or `TIMEOUT`, transient, and the caller logs in again later.
    pub(crate) async fn send_once(
        &self,
        method: Method,
        url: &Uri,
        token: Option<&HeaderValue>,
        body: Option<Bytes>,
    ) -> Result<Reply, ProviderError> {
        self.send_with(method, url, token, body, Replay::NotSent)
            .await
    }

    async fn send_with(
        &self,
        method: Method,
        url: &Uri,
        token: Option<&HeaderValue>,
        body: Option<Bytes>,
        replay: Replay,
    ) -> Result<Reply, ProviderError> {
        let attempts = AtomicU32::new(0);
        let body = body.unwrap_or_default();
        let mut backoff = ExponentialBuilder::new()
            .with_min_delay(self.retry.base_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.attempts.saturating_sub(1) as usize);
        if self.retry.jitter {
            backoff = backoff.with_jitter();
        }
        let result = (|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(method.clone(), url, token, body.clone())
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|error| error.retryable(replay))
        .notify(|error, delay| {
            tracing::debug!(
                provider = self.provider,
                attempt = attempts.load(Ordering::Relaxed),
                error = error.describe(),
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "retrying"
            );
        })
        .await;
        wipe_bytes(body);
        let attempts = attempts.into_inner();
        result.map_err(|error| self.map_error(error, attempts))
    }

    async fn attempt(
        &self,
        method: Method,
        url: &Uri,
        token: Option<&HeaderValue>,
        body: Bytes,
    ) -> Result<Reply, AttemptError> {
        let has_body = !body.is_empty();
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = url.clone();
        let headers = request.headers_mut();
        if let Some(token) = token {
            headers.insert(TOKEN_HEADER, token.clone());
        }
        if let Some(namespace) = &self.namespace {
            headers.insert(NAMESPACE_HEADER, namespace.clone());
        }
        if has_body {
            headers.insert(CONTENT_TYPE, JSON);
        }
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                let connect = e.is_connect();
                classify(Box::new(e), connect)
            })?;
            let (head, body) = response.into_parts();
            let declared = head
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > self.max_body as u64) {
                return Err(AttemptError::TooLarge);
            }
            let collected = Limited::new(body, self.max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<LengthLimitError>() {
                        AttemptError::TooLarge
                    } else if connection_broke(e.as_ref()) {
                        AttemptError::BodyCut(head.status, e)
                    } else {
                        AttemptError::BadFraming(head.status)
                    }
                })?;
            Ok(Reply {
                status: head.status,
                body: WipedBody::copy_of(collected.to_bytes()),
            })
        };
        let reply = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| AttemptError::Timeout)??;
        match reply.status.as_u16() {
            429 | 500 | 502 | 503 | 504 => Err(AttemptError::Status(reply.status)),
            _ => Ok(reply),
        }
    }

    fn map_error(&self, error: AttemptError, attempts: u32) -> ProviderError {
        let provider = self.provider;
        match error {
            AttemptError::Timeout => ProviderError::Timeout {
                provider,
                timeout: self.timeout,
                attempts,
            },
            AttemptError::Connect(source) | AttemptError::Transport(source) => {
                ProviderError::Unavailable {
                    provider,
                    attempts,
                    status: None,
                    source: Some(source),
                }
            }
            AttemptError::Tls(source) => ProviderError::Tls { provider, source },
            AttemptError::Status(status) => ProviderError::Unavailable {
                provider,
                attempts,
                status: Some(status.as_u16()),
                source: None,
            },
            AttemptError::TooLarge => ProviderError::TooLarge {
                provider,
                limit: self.max_body as u64,
            },
            // The server answered, but the connection broke mid-body: an outage, not a
            // malformed answer, so a cache may serve its stale value.
            AttemptError::BodyCut(status, source) => ProviderError::Unavailable {
                provider,
                attempts,
                status: Some(status.as_u16()),
                source: Some(source),
            },
            AttemptError::BadFraming(status) => ProviderError::MalformedResponse {
                provider,
                status: status.as_u16(),
                reason: "the response body is not valid HTTP framing",
            },
        }
    }
}

impl AttemptError {
    fn describe(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect(_) => "connect error",
            Self::Transport(_) => "connection error",
            Self::Tls(_) => "tls",
            Self::Status(status) => match status.as_u16() {
                429 => "HTTP 429",
                500 => "HTTP 500",
                502 => "HTTP 502",
                503 => "HTTP 503",
                504 => "HTTP 504",
                _ => "HTTP error",
            },
            Self::TooLarge => "too large",
            Self::BodyCut(..) => "body cut",
            Self::BadFraming(_) => "bad framing",
        }
    }
}

/// TLS failures are not retried: a wrong CA stays wrong. `connect`: the error came from the
/// connector, so the request was never sent.
fn classify(error: BoxError, connect: bool) -> AttemptError {
    if causes(error.as_ref()).any(|cause| cause.is::<rustls::Error>()) {
        return AttemptError::Tls(error);
    }
    if connect {
        AttemptError::Connect(error)
    } else {
        AttemptError::Transport(error)
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

/// Best-effort wipe of a request body (login credentials) once nothing else holds it.
fn wipe_bytes(body: Bytes) {
    if let Ok(mut unique) = body.try_into_mut() {
        zeroize::Zeroize::zeroize(unique.as_mut());
    }
}

fn config_error(
    provider: &'static str,
    reason: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> ProviderError {
    ProviderError::Config {
        provider,
        reason: reason.to_owned(),
        source: Some(Box::new(source)),
    }
}

/// `localhost`, 127.0.0.0/8 and `::1`.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn tls_config(config: &Kv2Config) -> Result<rustls::ClientConfig, ProviderError> {
    let provider = config.flavor.name();
    let crypto = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&crypto))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| config_error(provider, "TLS setup failed", e))?;
    let builder = if config.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(crypto)))
    } else {
        let roots = root_store(config)?;
        builder.with_root_certificates(roots)
    };
    let tls = match &config.client_cert {
        None => builder.with_no_client_auth(),
        Some(client) => {
            let chain = read_certs(provider, &client.cert_path, "client certificate")?;
            let key = PrivateKeyDer::from_pem_file(&client.key_path)
                .map_err(|e| config_error(provider, "client key is unreadable or not PEM", e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| config_error(provider, "client certificate and key do not fit", e))?
        }
    };
    Ok(tls)
}

/// The CA bundle alone (Vault's meaning of `VAULT_CACERT`), the bundle plus the webpki roots
/// with [`CaBundleMode::Append`], or the webpki roots when no bundle is set.
fn root_store(config: &Kv2Config) -> Result<rustls::RootCertStore, ProviderError> {
    let provider = config.flavor.name();
    let webpki = || rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let Some(path) = &config.ca_bundle else {
        return Ok(webpki());
    };
    let mut roots = match config.ca_bundle_mode {
        CaBundleMode::Append => webpki(),
        _ => rustls::RootCertStore::empty(),
    };
    let mut added = 0;
    for cert in read_certs(provider, path, "CA bundle")? {
        roots
            .add(cert)
            .map_err(|e| config_error(provider, "CA bundle holds an invalid certificate", e))?;
        added += 1;
    }
    if added == 0 {
        return Err(ProviderError::config(
            provider,
            "CA bundle holds no PEM certificate",
        ));
    }
    Ok(roots)
}

fn read_certs(
    provider: &'static str,
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, ProviderError> {
    let unreadable = |e| config_error(provider, &format!("{what} is unreadable or not PEM"), e);
    CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)
}

/// `skip_verify`: accepts any certificate but still checks handshake signatures.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{Kv2Auth, Kv2Flavor};

    thread_local! {
        /// Capacities of the response bodies wiped on this thread.
        pub(crate) static WIPED: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    fn config(address: &str) -> Kv2Config {
        Kv2Config::new(Kv2Flavor::OpenBao, address, Kv2Auth::token("t"))
    }

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        for ok in [
            "http://127.0.0.1:8200",
            "http://127.1.2.3",
            "http://localhost:1",
            "http://[::1]:8200",
            "https://bao.example",
        ] {
            assert!(Transport::new(&config(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8200",
            "http://bao.example",
            "ftp://127.0.0.1",
            "bao:8200",
            "https://",
            "https://x?y=1",
            "https://user:pass@bao.example",
        ] {
            let code = Transport::new(&config(bad)).err().map(|e| e.code());
            assert_eq!(code, Some("CONFIG"), "{bad}");
        }
        assert!(
            Transport::new(&config("http://bao.example").with_allow_insecure_http(true)).is_ok()
        );
    }

    #[test]
    fn skip_verify_is_refused_in_production() {
        let prod = config("https://bao.example")
            .with_skip_verify(true)
            .with_environment("Production");
        assert_eq!(
            Transport::new(&prod).err().map(|e| e.code()),
            Some("CONFIG")
        );
        let dev = config("https://bao.example")
            .with_skip_verify(true)
            .with_environment("dev");
        assert!(Transport::new(&dev).is_ok());
    }

    #[test]
    fn base_url_keeps_a_path_prefix() -> Result<(), ProviderError> {
        let transport = Transport::new(&config("https://proxy.example/vault/"))?;
        assert_eq!(
            transport.url("secret/data/a")?.to_string(),
            "https://proxy.example/vault/v1/secret/data/a"
        );
        Ok(())
    }

    #[test]
    fn a_ca_bundle_replaces_the_webpki_roots_unless_appended() -> Result<(), ProviderError> {
        let bundle = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/test-ca.pem");
        let webpki = webpki_roots::TLS_SERVER_ROOTS.len();
        let none = root_store(&config("https://bao.example"))?;
        assert_eq!(none.len(), webpki);
        let only = root_store(&config("https://bao.example").with_ca_bundle(bundle))?;
        assert_eq!(
            only.len(),
            1,
            "Vault's meaning: the bundle is the only trust root"
        );
        let appended = root_store(
            &config("https://bao.example")
                .with_ca_bundle(bundle)
                .with_ca_bundle_mode(CaBundleMode::Append),
        )?;
        assert_eq!(appended.len(), webpki + 1);
        Ok(())
    }

    #[test]
    fn unreadable_ca_bundle_is_a_config_error() {
        let missing = config("https://bao.example").with_ca_bundle("/nonexistent/ca.pem");
        assert_eq!(
            Transport::new(&missing).err().map(|e| e.code()),
            Some("CONFIG")
        );
        let zero = config("https://bao.example").with_retry(RetryConfig::attempts(0));
        assert_eq!(
            Transport::new(&zero).err().map(|e| e.code()),
            Some("CONFIG")
        );
    }
}
