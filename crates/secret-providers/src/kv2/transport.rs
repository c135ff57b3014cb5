//! The KV v2 side of the wire: the server's `…/v1/` base URL, the Vault headers, and the
//! mapping of `secret-http`'s failures to [`ProviderError`]. The client itself (pool, rustls
//! with ring, CA bundle and client certificate, the loopback rule, body cap and wipe,
//! per-attempt timeout, retries with jittered backoff) is `secret-http`'s, shared with the PEP.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};
use secret_http::{
    ClientConfig, HttpClient, HttpError, Request, RetryError, RetryPolicy, Setting, TlsConfig,
};

use super::config::Kv2Config;
use crate::ProviderError;

pub(crate) const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-vault-token");
pub(crate) const NAMESPACE_HEADER: HeaderName = HeaderName::from_static("x-vault-namespace");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The pooled client and what every request shares.
pub(crate) struct Transport {
    pub(crate) provider: &'static str,
    client: HttpClient,
    /// `scheme://authority[/prefix]/v1/`.
    base: String,
    namespace: Option<HeaderValue>,
    timeout: Duration,
    retry: RetryPolicy,
    max_body: usize,
}

/// A response that came back in full.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: WipedBody,
}

/// A response body (a secret, a token); `secret-http` zeroizes it when dropped, on every path.
pub(crate) struct WipedBody(secret_http::Body);

impl std::ops::Deref for WipedBody {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// Tests record each reply body that reaches its drop (where `secret-http` wipes it).
#[cfg(test)]
impl Drop for WipedBody {
    fn drop(&mut self) {
        tests::WIPED.with(|wiped| wiped.borrow_mut().push(self.0.len()));
    }
}

impl Transport {
    /// Validates the address and TLS settings and builds the (idle) client: no network I/O.
    pub(crate) fn new(config: &Kv2Config) -> Result<Self, ProviderError> {
        let provider = config.flavor.name();
        let uri = secret_http::base_url(&config.address, config.allow_insecure_http)
            .map_err(|e| config_error(provider, e))?;
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
                    "skip_verify",
                    "is refused when ENVIRONMENT is production",
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
                "retry.attempts",
                "must be at least 1",
            ));
        }
        if config.timeout.is_zero() {
            return Err(ProviderError::config(
                provider,
                "timeout",
                "must be positive",
            ));
        }
        let namespace = config
            .namespace
            .as_deref()
            .map(str::trim)
            .filter(|ns| !ns.is_empty())
            .map(|ns| {
                HeaderValue::from_str(ns).map_err(|e| ProviderError::Config {
                    provider,
                    setting: "namespace".into(),
                    reason: "is not a valid header value".to_owned(),
                    source: Some(Box::new(e)),
                })
            })
            .transpose()?;
        let client = HttpClient::new(
            &ClientConfig::new(provider)
                .with_timeout(config.timeout)
                .with_max_body_bytes(config.max_body_bytes)
                .with_allow_insecure_http(config.allow_insecure_http)
                .with_tls(tls_config(config)),
        )
        .map_err(|e| config_error(provider, e))?;

        let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
        let authority = uri.authority().map_or("", |a| a.as_str());
        let prefix = uri.path().trim_end_matches('/');
        let base = format!("{scheme}://{authority}{prefix}/v1/");
        let retry = RetryPolicy::attempts(config.retry.attempts)
            .with_delays(config.retry.base_delay, config.retry.max_delay)
            .with_jitter(config.retry.jitter);
        Ok(Self {
            provider,
            client,
            base,
            namespace,
            timeout: config.timeout,
            retry,
            max_body: config.max_body_bytes,
        })
    }

    /// `base` + `path` (which must not start with `/`) as a request URI.
    pub(crate) fn url(&self, path: &str) -> Result<Uri, ProviderError> {
        let mut url = String::with_capacity(self.base.len() + path.len());
        url.push_str(&self.base);
        url.push_str(path);
        Uri::try_from(url).map_err(|e| ProviderError::Config {
            provider: self.provider,
            setting: "address".into(),
            reason: "does not form a valid request URL".to_owned(),
            source: Some(Box::new(e)),
        })
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
        self.send_with(method, url, token, body, true).await
    }

    /// Sends a request that must not be handled twice (a login): retried only when it was
    /// surely never sent (connection refused) or refused unhandled (429, 503). A lost
    /// response is `UNAVAILABLE` or `TIMEOUT`, transient, and the caller logs in again later.
    /// It may have consumed a single-use credential (an AppRole `secret_id` with
    /// `secret_id_num_uses`): a second attempt would turn a lost response into `AUTH_FAILED`.
    pub(crate) async fn send_once(
        &self,
        method: Method,
        url: &Uri,
        token: Option<&HeaderValue>,
        body: Option<Bytes>,
    ) -> Result<Reply, ProviderError> {
        self.send_with(method, url, token, body, false).await
    }

    async fn send_with(
        &self,
        method: Method,
        url: &Uri,
        token: Option<&HeaderValue>,
        body: Option<Bytes>,
        idempotent: bool,
    ) -> Result<Reply, ProviderError> {
        self.send_counted(method, url, token, body, idempotent)
            .await
            .0
    }

    /// The request body (login credentials) is wiped when the request is dropped.
    pub(crate) async fn send_counted(
        &self,
        method: Method,
        url: &Uri,
        token: Option<&HeaderValue>,
        body: Option<Bytes>,
        idempotent: bool,
    ) -> (Result<Reply, ProviderError>, u32) {
        let mut request = Request::new(method, url.clone()).with_idempotent(idempotent);
        let headers = request.headers_mut();
        if let Some(token) = token {
            headers.insert(TOKEN_HEADER, token.clone());
        }
        if let Some(namespace) = &self.namespace {
            headers.insert(NAMESPACE_HEADER, namespace.clone());
        }
        if let Some(body) = body.filter(|b| !b.is_empty()) {
            request.headers_mut().insert(CONTENT_TYPE, JSON);
            request = request.with_body(body);
        }
        match self.client.send_retrying(&request, &self.retry).await {
            Ok(response) => {
                let attempts = response.attempts();
                let reply = Reply {
                    status: response.status(),
                    body: WipedBody(response.into_body()),
                };
                (Ok(reply), attempts)
            }
            Err(error) => {
                let attempts = error.attempts;
                (Err(self.map_error(error)), attempts)
            }
        }
    }

    fn map_error(&self, failed: RetryError) -> ProviderError {
        let provider = self.provider;
        let attempts = failed.attempts;
        let error = failed.error;
        match error {
            HttpError::Timeout { .. } => ProviderError::Timeout {
                provider,
                timeout: self.timeout,
                attempts,
            },
            HttpError::Connect { .. } | HttpError::ConnectionLost { .. } => {
                ProviderError::Unavailable {
                    provider,
                    attempts,
                    status: None,
                    source: Some(Box::new(error)),
                }
            }
            HttpError::Tls { .. } => ProviderError::Tls {
                provider,
                source: Box::new(error),
            },
            HttpError::Status { status } => ProviderError::Unavailable {
                provider,
                attempts,
                status: Some(status),
                source: None,
            },
            HttpError::TooLarge { .. } => ProviderError::TooLarge {
                provider,
                limit: self.max_body as u64,
            },
            // The server answered, but the connection broke mid-body: an outage, not a
            // malformed answer, so a cache may serve its stale value.
            HttpError::BodyCut { status, .. } => ProviderError::Unavailable {
                provider,
                attempts,
                status: Some(status),
                source: Some(Box::new(error)),
            },
            HttpError::BadFraming { status, .. } => ProviderError::MalformedResponse {
                provider,
                status,
                reason: "the response body is not valid HTTP framing",
            },
            HttpError::Config { .. } | HttpError::InsecureHttp => config_error(provider, error),
            other => ProviderError::Unavailable {
                provider,
                attempts,
                status: other.status(),
                source: Some(Box::new(other)),
            },
        }
    }
}

/// The KV v2 settings' TLS part: the one CA bundle rule of `secret-http` (the bundle replaces
/// the webpki roots unless [`secret_http::CaBundleMode::Append`]).
fn tls_config(config: &Kv2Config) -> TlsConfig {
    let mut tls = TlsConfig::default()
        .with_skip_verify(config.skip_verify)
        .with_ca_bundle_mode(config.ca_bundle_mode);
    tls.ca_bundle.clone_from(&config.ca_bundle);
    if let Some(client) = &config.client_cert {
        tls = tls.with_client_cert(secret_http::ClientCert::new(
            &client.cert_path,
            &client.key_path,
        ));
    }
    tls
}

/// A `secret-http` configuration error naming the `Kv2Config` field it is about (`address`,
/// `ca_bundle`, …), keeping the error as the source.
fn config_error(provider: &'static str, error: HttpError) -> ProviderError {
    let (setting, reason) = match &error {
        HttpError::InsecureHttp => (
            "address",
            "uses plain http://, which is only allowed to loopback hosts unless \
             allow_insecure_http is set"
                .to_owned(),
        ),
        HttpError::Config {
            setting, reason, ..
        } => {
            let field = match setting {
                Setting::Url => "address",
                Setting::CaBundle => "ca_bundle",
                Setting::ClientCert => "client_cert",
                Setting::ClientKey => "client_cert.key_path",
                Setting::Timeout => "timeout",
                Setting::RetryAttempts => "retry.attempts",
                other => other.name(),
            };
            (field, (*reason).to_owned())
        }
        other => (
            "tls",
            format!("could not set up the HTTP client ({})", other.code()),
        ),
    };
    ProviderError::Config {
        provider,
        setting: setting.into(),
        reason,
        source: Some(Box::new(error)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{Kv2Auth, Kv2Flavor, RetryConfig};

    thread_local! {
        /// Lengths of the response bodies dropped (and so wiped) on this thread.
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
        let insecure = Transport::new(&config("http://bao.example")).err();
        assert_eq!(
            insecure.map(|e| e.to_string()).as_deref(),
            Some(
                "openbao: invalid configuration: address uses plain http://, which is only \
                 allowed to loopback hosts unless allow_insecure_http is set [CONFIG]"
            )
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
    fn the_ca_bundle_mode_reaches_the_shared_rule() -> Result<(), ProviderError> {
        let bundle = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/test-ca.pem");
        let replace = tls_config(&config("https://bao.example").with_ca_bundle(bundle));
        assert_eq!(replace.ca_bundle_mode, secret_http::CaBundleMode::Replace);
        assert_eq!(
            replace.ca_bundle.as_deref(),
            Some(std::path::Path::new(bundle))
        );
        let append = tls_config(
            &config("https://bao.example")
                .with_ca_bundle(bundle)
                .with_ca_bundle_mode(secret_http::CaBundleMode::Append),
        );
        assert_eq!(append.ca_bundle_mode, secret_http::CaBundleMode::Append);
        Transport::new(&config("https://bao.example").with_ca_bundle(bundle))?;
        Ok(())
    }

    #[test]
    fn unreadable_ca_bundle_is_a_config_error() {
        let missing = config("https://bao.example").with_ca_bundle("/nonexistent/ca.pem");
        let error = Transport::new(&missing).err();
        assert_eq!(error.as_ref().map(ProviderError::code), Some("CONFIG"));
        assert_eq!(
            error.as_ref().map(ToString::to_string).as_deref(),
            Some("openbao: invalid configuration: ca_bundle is unreadable or not PEM [CONFIG]")
        );
        assert_eq!(
            error.as_ref().and_then(ProviderError::setting),
            Some("ca_bundle")
        );
        assert!(error.as_ref().and_then(std::error::Error::source).is_some());
        let zero = config("https://bao.example").with_retry(RetryConfig::attempts(0));
        assert_eq!(
            Transport::new(&zero).err().map(|e| e.code()),
            Some("CONFIG")
        );
    }
}
