//! The AuthZEN 1.0 (OpenID Authorization API) PDP client.
//!
//! `POST {pdp}/access/v1/evaluation` (and `/access/v1/evaluations` for batches) over
//! `secret-http`'s pooled HTTP/1.1 client with rustls (ring), shared with the KV v2 provider.
//! Fail closed: anything but a 200 with a boolean `decision` is `PDP_UNAVAILABLE`;
//! `decision: false` is `AUTHZ_DENIED` (`PDP_DENY`); a permit with obligations is
//! `AUTHZ_DENIED` (`UNKNOWN_OBLIGATION`). The body shapes and the Cerbos dialect are in
//! [`wire`].

mod wire;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};
use secrecy::ExposeSecret;
use secret_http::{
    Body, ClientConfig, HttpClient, HttpError, Request, Response, Setting, TlsConfig,
};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::breaker::Breaker;
use super::{
    AccessRequest, BatchDecision, BatchFailure, BatchRequest, PdpFuture, SecretPolicyService,
};
use crate::{AuthzenConfig, Grant, PdpFailure, PepError};

const WELL_KNOWN: &str = "/.well-known/authzen-configuration";
const EVALUATION_PATH: &str = "/access/v1/evaluation";
const EVALUATIONS_PATH: &str = "/access/v1/evaluations";
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// An AuthZEN 1.0 PDP client: a [`SecretPolicyService`] that asks a remote PDP such as Cerbos.
///
/// - **Request**: `subject {type: "user", id, properties {roles, issuer, client_id}}`,
///   `resource {type: "secret", id: <canonical URI>, properties {tenant, mount, provider,
///   engine, path}}`, `action {name: "execute"}`, `context {purpose, correlation_id,
///   workflow_run_id, node_id, system_id, cnf_binding}`, with a random `X-Request-ID`.
/// - **Discovery** (on by default): before the first decision, `GET
///   /.well-known/authzen-configuration`; metadata whose `policy_decision_point` is not the
///   configured URL, or whose endpoints are on another origin, is refused.
/// - **Permit**: `decision: true` becomes a [`Grant`] whose TTL, max uses, decision id,
///   policy version, classification, `must_revalidate_on` and wrap TTL come from the
///   response `context` (`ttl`, `max_uses`, `decision_id`, `policy_version`,
///   `classification`, `must_revalidate_on`, `wrap_ttl`; Cerbos rule outputs count too) or the
///   defaults. Any `obligations` deny: this PEP fulfils none.
/// - **Failures**: refused connections, timeouts, TLS errors, HTTP 4xx/5xx and malformed
///   bodies are `PDP_UNAVAILABLE`. After `breaker_threshold` consecutive connection failures,
///   timeouts or 5xx/429, calls fail fast (`circuit_open`) for `breaker_cooldown`, then one
///   probe goes through. Each request writes the breaker's state (`closed`, `open`,
///   `half_open`) on the current span's `breaker` field: the [`Pep`](crate::Pep)'s
///   `pdp_call` span, which also carries the decision and latency.
/// - **Transport**: `secret-http`, the client the KV v2 provider uses too: HTTP/1.1
///   keep-alive over rustls (ring, TLS 1.2 and 1.3), redirects never followed, plain
///   `http://` only to loopback hosts unless `allow_insecure_http`, one attempt per call
///   within `timeout`, bodies capped at `max_response_bytes` and wiped after use.
/// - **CA bundle**: `AUTHZEN_CA_BUNDLE` ([`AuthzenConfig::ca_bundle`]) *replaces* the
///   webpki roots, the one rule of every client (as `VAULT_CACERT` does for the KV v2
///   provider). Before `secret-http` it was added to them: a PDP whose certificate comes
///   from a public CA now needs that CA in the bundle, or no bundle.
#[derive(Clone)]
pub struct AuthzenClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: AuthzenConfig,
    client: HttpClient,
    base: Base,
    authorization: Option<HeaderValue>,
    endpoints: OnceCell<Endpoints>,
    breaker: Breaker,
}

/// The configured PDP URL, normalized: lowercase scheme and host, no default port, no
/// trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Base {
    origin: String,
    path: String,
}

impl Base {
    fn parse(url: &str) -> Option<Self> {
        let uri: Uri = url.trim().parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let host = uri.host().filter(|h| !h.is_empty())?.to_ascii_lowercase();
        if uri.query().is_some() || !matches!(scheme.as_str(), "http" | "https") {
            return None;
        }
        let default_port = if scheme == "https" { 443 } else { 80 };
        let origin = match uri.port_u16() {
            Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
            _ => format!("{scheme}://{host}"),
        };
        Some(Self {
            origin,
            path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    fn url(&self) -> String {
        format!("{}{}", self.origin, self.path)
    }
}

#[derive(Debug)]
struct Endpoints {
    evaluation: Uri,
    evaluations: Option<Uri>,
}

/// The PDP's `/.well-known/authzen-configuration`, as accepted by [`AuthzenClient::discover`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthzenMetadata {
    /// The PDP identifier; equal to the configured URL.
    pub policy_decision_point: String,
    /// The single-evaluation endpoint (the default path when the document omits it).
    pub access_evaluation_endpoint: String,
    /// The batch endpoint, when the PDP has one.
    pub access_evaluations_endpoint: Option<String>,
}

impl fmt::Debug for AuthzenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthzenClient")
            .field("url", &self.inner.base.url())
            .field("dialect", &self.inner.config.dialect)
            .field("discovery", &self.inner.config.discovery)
            .field(
                "token",
                &self.inner.authorization.as_ref().map(|_| "[REDACTED]"),
            )
            .finish_non_exhaustive()
    }
}

impl AuthzenClient {
    /// Validates the settings and builds the (idle) client: no network I/O.
    ///
    /// # Errors
    /// `CONFIG` for a URL that is not `http(s)://host[:port][/path]` (one with
    /// `user:password@` credentials included), plain `http://` to a
    /// non-loopback host without `allow_insecure_http`, a zero timeout, an unusable token or
    /// CA bundle.
    pub fn new(config: AuthzenConfig) -> Result<Self, PepError> {
        if crate::config::url_has_userinfo(&config.url) {
            return Err(PepError::invalid(
                "AUTHZEN_PDP_URL",
                crate::config::USERINFO_REFUSED,
            ));
        }
        let base = Base::parse(&config.url).ok_or_else(|| {
            PepError::invalid(
                "AUTHZEN_PDP_URL",
                "must be http(s)://host[:port][/path] without a query",
            )
        })?;
        // The shared guard: plain http:// only to loopback unless allowed.
        secret_http::base_url(&config.url, config.allow_insecure_http).map_err(config_error)?;
        if config.timeout.is_zero() {
            return Err(PepError::invalid("AUTHZEN_TIMEOUT_MS", "must be positive"));
        }
        let authorization = config
            .token
            .as_ref()
            .map(|token| {
                // The formatted copy of the token is wiped once the header holds it.
                let bearer =
                    zeroize::Zeroizing::new(format!("Bearer {}", token.expose_secret().trim()));
                let mut value = HeaderValue::from_str(&bearer).map_err(|_| {
                    PepError::invalid("AUTHZEN_PDP_TOKEN", "is not a valid header value")
                })?;
                value.set_sensitive(true);
                Ok::<_, PepError>(value)
            })
            .transpose()?;

        let client = HttpClient::new(
            &ClientConfig::new("authzen")
                .with_timeout(config.timeout)
                .with_max_body_bytes(config.max_response_bytes)
                .with_allow_insecure_http(config.allow_insecure_http)
                .with_tls(tls_config(&config)),
        )
        .map_err(config_error)?;
        let breaker = Breaker::new(config.breaker_threshold, config.breaker_cooldown);
        let endpoints = OnceCell::new();
        if !config.discovery {
            let defaults = Endpoints {
                evaluation: endpoint(&base, EVALUATION_PATH)?,
                evaluations: Some(endpoint(&base, EVALUATIONS_PATH)?),
            };
            // A fresh cell cannot be full.
            let _ = endpoints.set(defaults);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                client,
                base,
                authorization,
                endpoints,
                breaker,
            }),
        })
    }

    /// The configured PDP URL, normalized.
    #[must_use]
    pub fn url(&self) -> String {
        self.inner.base.url()
    }

    /// Fetches and checks `/.well-known/authzen-configuration` now (a startup probe). With
    /// discovery on, its endpoints are used from then on.
    ///
    /// # Errors
    /// `PDP_UNAVAILABLE`: the PDP could not be reached, or (`discovery_mismatch`) the
    /// document's `policy_decision_point` is not the configured URL or an endpoint is on
    /// another origin.
    pub async fn discover(&self) -> Result<AuthzenMetadata, PepError> {
        let (metadata, endpoints) = self.fetch_metadata().await?;
        if self.inner.config.discovery {
            let _ = self.inner.endpoints.set(endpoints);
        }
        Ok(metadata)
    }

    async fn endpoints(&self) -> Result<&Endpoints, PepError> {
        self.inner
            .endpoints
            .get_or_try_init(|| async { self.fetch_metadata().await.map(|(_, e)| e) })
            .await
    }

    async fn fetch_metadata(&self) -> Result<(AuthzenMetadata, Endpoints), PepError> {
        let base = &self.inner.base;
        // RFC 8414 style: the well-known segment goes between the origin and the path.
        let url = uri(&format!("{}{WELL_KNOWN}{}", base.origin, base.path))?;
        let document = self
            .exchange(Method::GET, &url, None, &crate::util::random_id())
            .await?;
        let field = |name: &str| document.get(name).and_then(Value::as_str);
        let mismatch = || PepError::unavailable(PdpFailure::Discovery);
        let pdp = field("policy_decision_point").ok_or_else(mismatch)?;
        if Base::parse(pdp).as_ref() != Some(base) {
            tracing::warn!(
                configured = %base.url(),
                "AuthZEN discovery names another policy_decision_point; refusing it"
            );
            return Err(mismatch());
        }
        let endpoint_of = |name: &str| -> Result<Option<Uri>, PepError> {
            let Some(text) = field(name) else {
                return Ok(None);
            };
            match Base::parse(text) {
                Some(parsed) if parsed.origin == base.origin => uri(text).map(Some),
                _ => {
                    tracing::warn!(
                        endpoint = name,
                        "AuthZEN discovery points an endpoint at another origin; refusing it"
                    );
                    Err(mismatch())
                }
            }
        };
        let evaluation = match endpoint_of("access_evaluation_endpoint")? {
            Some(url) => url,
            None => endpoint(base, EVALUATION_PATH)?,
        };
        let evaluations = endpoint_of("access_evaluations_endpoint")?;
        let metadata = AuthzenMetadata {
            policy_decision_point: pdp.to_owned(),
            access_evaluation_endpoint: evaluation.to_string(),
            access_evaluations_endpoint: evaluations.as_ref().map(Uri::to_string),
        };
        Ok((
            metadata,
            Endpoints {
                evaluation,
                evaluations,
            },
        ))
    }

    async fn evaluate(&self, request: &AccessRequest<'_>) -> Result<Grant, PepError> {
        let endpoints = self.endpoints().await?;
        let request_id = crate::util::random_id();
        let mut body = wire::shared_body(self.inner.config.dialect, request, &request_id);
        body.insert("resource".into(), wire::resource(request));
        let reply = self
            .exchange(
                Method::POST,
                &endpoints.evaluation,
                Some(Value::Object(body)),
                &request_id,
            )
            .await?;
        wire::decision_to_grant(&reply, request, &request_id)
    }

    async fn evaluate_batch(
        &self,
        batch: &BatchRequest<'_>,
    ) -> Result<Vec<BatchDecision>, PepError> {
        let plan = batch.plan();
        if plan.is_empty() {
            return Ok(Vec::new());
        }
        let endpoints = self.endpoints().await?;
        let Some(url) = &endpoints.evaluations else {
            return Ok(super::sequential_batch(self, batch).await);
        };
        let request_id = crate::util::random_id();
        let mut body = wire::shared_body(self.inner.config.dialect, &batch.common, &request_id);
        let evaluations: Vec<Value> = plan
            .iter()
            .map(|(uri, _)| json!({ "resource": wire::resource(&batch.request_for(uri)) }))
            .collect();
        body.insert("evaluations".into(), Value::Array(evaluations));
        let reply = self
            .exchange(Method::POST, url, Some(Value::Object(body)), &request_id)
            .await?;
        let items = reply
            .get("evaluations")
            .and_then(Value::as_array)
            .filter(|items| items.len() == plan.len())
            .ok_or_else(|| PepError::unavailable(PdpFailure::Malformed))?;
        Ok(plan
            .iter()
            .zip(items)
            .map(|((uri, required), item)| {
                let single = batch.request_for(uri);
                let outcome = wire::decision_to_grant(item, &single, &request_id)
                    .map_err(|e| BatchFailure::from_error(&e));
                BatchDecision::new((*uri).clone(), *required, outcome)
            })
            .collect())
    }

    /// One request through the breaker; a 200 JSON body, or `PDP_UNAVAILABLE`. An evaluation's
    /// breaker state goes on the current span's `breaker` field (the PEP's `pdp_call` span).
    async fn exchange(
        &self,
        method: Method,
        url: &Uri,
        body: Option<Value>,
        request_id: &str,
    ) -> Result<Value, PepError> {
        let permit = self.inner.breaker.try_acquire();
        let state = permit.as_ref().map_or(super::breaker::OPEN, |p| p.state());
        // The evaluation's state only: the discovery GET runs in the same `pdp_call` span, and
        // an OpenTelemetry span keeps every recorded value (a second record is a duplicate
        // attribute, not a replacement).
        if method != Method::GET {
            tracing::Span::current().record("breaker", state);
        }
        let permit = permit.ok_or_else(|| PepError::unavailable(PdpFailure::CircuitOpen))?;
        match self.send(method, url, body, request_id).await {
            Ok(body) => {
                permit.success();
                serde_json::from_slice(&body).map_err(|_| {
                    tracing::debug!(request_id, "PDP response is not JSON");
                    PepError::unavailable(PdpFailure::Malformed)
                })
            }
            Err(failure) => {
                if is_outage(&failure) {
                    permit.failure();
                } else {
                    permit.success();
                }
                let error = pdp_unavailable(failure);
                tracing::debug!(request_id, error = %error, "PDP request failed");
                Err(error)
            }
        }
    }

    /// One attempt (a PDP call is never retried: the breaker and the caller decide), a 200
    /// body within `max_response_bytes`; any other status fails at once, its body unread.
    async fn send(
        &self,
        method: Method,
        url: &Uri,
        body: Option<Value>,
        request_id: &str,
    ) -> Result<Body, HttpError> {
        let inner = &*self.inner;
        let payload = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let mut request = Request::new(method, url.clone())
            .with_body(payload)
            .with_expect_status(StatusCode::OK);
        let headers = request.headers_mut();
        headers.insert(ACCEPT, JSON);
        headers.insert(CONTENT_TYPE, JSON);
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.insert(REQUEST_ID, id);
        }
        if let Some(auth) = &inner.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        inner.client.send(&request).await.map(Response::into_body)
    }
}

impl SecretPolicyService for AuthzenClient {
    fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
        Box::pin(self.evaluate(request))
    }

    fn authorize_batch<'a>(
        &'a self,
        request: &'a BatchRequest<'a>,
    ) -> PdpFuture<'a, Vec<BatchDecision>> {
        Box::pin(self.evaluate_batch(request))
    }
}

fn uri(text: &str) -> Result<Uri, PepError> {
    Uri::try_from(text).map_err(|_| {
        PepError::invalid(
            "AUTHZEN_PDP_URL",
            "does not form a valid endpoint URL (or discovery named an invalid one)",
        )
    })
}

fn endpoint(base: &Base, path: &str) -> Result<Uri, PepError> {
    uri(&format!("{}{}{path}", base.origin, base.path))
}

/// Failures that say the PDP is down (and count towards the breaker): no connection, no
/// answer in time, a failed handshake, 5xx and 429. A 4xx, an oversized or cut body are
/// answers from a live PDP.
fn is_outage(failure: &HttpError) -> bool {
    match failure {
        HttpError::Timeout { .. }
        | HttpError::Connect { .. }
        | HttpError::ConnectionLost { .. }
        | HttpError::Tls { .. } => true,
        HttpError::Status { status } => *status >= 500 || *status == 429,
        _ => false,
    }
}

/// `PDP_UNAVAILABLE` with the failure's class; a transport error is kept as the source.
fn pdp_unavailable(failure: HttpError) -> PepError {
    let (cause, status, source) = match failure {
        HttpError::Timeout { .. } => (PdpFailure::Timeout, None, None),
        HttpError::Status { status } => (PdpFailure::Status, Some(status), None),
        HttpError::TooLarge { .. } => (PdpFailure::TooLarge, None, None),
        HttpError::Tls { .. } => (PdpFailure::Tls, None, Some(failure)),
        // Refused, lost before or during the response, bad framing.
        other => (PdpFailure::Connect, None, Some(other)),
    };
    PepError::PdpUnavailable {
        cause,
        status,
        source: source.map(|e| Box::new(e) as crate::BoxError),
    }
}

/// `AUTHZEN_CA_BUNDLE` under the one rule of `secret-http`: the bundle replaces the webpki
/// roots.
fn tls_config(config: &AuthzenConfig) -> TlsConfig {
    let mut tls = TlsConfig::default();
    tls.ca_bundle.clone_from(&config.ca_bundle);
    tls
}

/// A `secret-http` setting error in the PEP's terms (the variable it comes from), keeping the
/// error as the source.
fn config_error(error: HttpError) -> PepError {
    let (setting, reason) = match &error {
        HttpError::InsecureHttp => (
            "AUTHZEN_PDP_URL",
            "uses plain http://, which is only allowed to loopback hosts unless \
             AUTHZEN_ALLOW_INSECURE_HTTP is set"
                .to_owned(),
        ),
        HttpError::Config {
            setting, reason, ..
        } => {
            let name = match setting {
                Setting::Url => "AUTHZEN_PDP_URL",
                Setting::CaBundle => "AUTHZEN_CA_BUNDLE",
                Setting::Timeout => "AUTHZEN_TIMEOUT_MS",
                other => other.name(),
            };
            (name, (*reason).to_owned())
        }
        other => (
            "AUTHZEN_PDP_URL",
            format!(
                "names a PDP whose client could not be set up ({})",
                other.code()
            ),
        ),
    };
    PepError::Config {
        setting: setting.into(),
        reason,
        source: Some(Box::new(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        for ok in [
            "http://127.0.0.1:3592",
            "http://localhost:1/pdp/",
            "http://[::1]:3592",
            "https://pdp.example",
        ] {
            assert!(AuthzenClient::new(AuthzenConfig::new(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:3592",
            "http://pdp.example",
            "ftp://127.0.0.1",
            "pdp:3592",
            "https://x?y=1",
        ] {
            let code = AuthzenClient::new(AuthzenConfig::new(bad))
                .err()
                .map(|e| e.code());
            assert_eq!(code, Some("CONFIG"), "{bad}");
        }
        assert!(
            AuthzenClient::new(AuthzenConfig::new("http://pdp.example").with_insecure_http(true))
                .is_ok()
        );
        assert_eq!(
            Base::parse("HTTPS://PDP.example:443/x/").map(|b| b.url()),
            Some("https://pdp.example/x".to_owned())
        );
    }

    #[test]
    fn credentials_in_the_url_are_refused() {
        let err = AuthzenClient::new(AuthzenConfig::new("http://user:s3cret@127.0.0.1:3592"))
            .unwrap_err();
        assert_eq!(err.code(), "CONFIG");
        assert!(!err.to_string().contains("s3cret"));
    }
}
