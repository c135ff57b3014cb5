//! The AuthZEN 1.0 (OpenID Authorization API) PDP client.
//!
//! `POST {pdp}/access/v1/evaluation` (and `/access/v1/evaluations` for batches) over
//! hyper-util's pooled HTTP/1.1 client with rustls (ring). Fail closed: anything but a 200
//! with a boolean `decision` is `PDP_UNAVAILABLE`; `decision: false` is `AUTHZ_DENIED`
//! (`PDP_DENY`); a permit with obligations is `AUTHZ_DENIED` (`UNKNOWN_OBLIGATION`).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::ExposeSecret;
use secret_uri::SecretUri;
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;

use super::breaker::Breaker;
use super::{
    AccessRequest, BatchDecision, BatchFailure, BatchRequest, PdpFuture, SecretPolicyService,
};
use crate::{AuthzenConfig, AuthzenDialect, BoxError, DenyReason, Grant, PdpFailure, PepError};

const WELL_KNOWN: &str = "/.well-known/authzen-configuration";
const EVALUATION_PATH: &str = "/access/v1/evaluation";
const EVALUATIONS_PATH: &str = "/access/v1/evaluations";
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
/// The longest TTL (and wrap TTL) a decision may carry, in seconds; more is malformed.
const MAX_TERM_SECONDS: f64 = 10.0 * 365.0 * 24.0 * 3600.0;

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

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
///   probe goes through.
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

/// One HTTP exchange's failure, before mapping.
enum Failure {
    Timeout,
    Connect(BoxError),
    Tls(BoxError),
    Status(StatusCode),
    TooLarge,
    BodyCut(BoxError),
}

impl Failure {
    /// Failures that say the PDP is down (and count towards the breaker).
    fn is_outage(&self) -> bool {
        match self {
            Self::Timeout | Self::Connect(_) | Self::Tls(_) => true,
            Self::Status(status) => status.is_server_error() || status.as_u16() == 429,
            Self::TooLarge | Self::BodyCut(_) => false,
        }
    }

    fn into_error(self) -> PepError {
        let (cause, status, source) = match self {
            Self::Timeout => (PdpFailure::Timeout, None, None),
            Self::Connect(e) => (PdpFailure::Connect, None, Some(e)),
            Self::Tls(e) => (PdpFailure::Tls, None, Some(e)),
            Self::Status(s) => (PdpFailure::Status, Some(s.as_u16()), None),
            Self::TooLarge => (PdpFailure::TooLarge, None, None),
            Self::BodyCut(e) => (PdpFailure::Connect, None, Some(e)),
        };
        PepError::PdpUnavailable {
            cause,
            status,
            source,
        }
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
            return Err(PepError::config(crate::config::USERINFO_REFUSED));
        }
        let base = Base::parse(&config.url).ok_or_else(|| {
            PepError::config("AUTHZEN_PDP_URL must be http(s)://host[:port][/path] without a query")
        })?;
        let insecure = base.origin.starts_with("http://");
        let host = base
            .origin
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        if insecure && !is_loopback(host) && !config.allow_insecure_http {
            return Err(PepError::config(
                "plain http:// to the PDP is only allowed to loopback hosts unless AUTHZEN_ALLOW_INSECURE_HTTP is set",
            ));
        }
        if config.timeout.is_zero() {
            return Err(PepError::config("AUTHZEN_TIMEOUT_MS must be positive"));
        }
        let authorization = config
            .token
            .as_ref()
            .map(|token| {
                // The formatted copy of the token is wiped once the header holds it.
                let bearer =
                    zeroize::Zeroizing::new(format!("Bearer {}", token.expose_secret().trim()));
                let mut value = HeaderValue::from_str(&bearer).map_err(|_| {
                    PepError::config("AUTHZEN_PDP_TOKEN is not a valid header value")
                })?;
                value.set_sensitive(true);
                Ok::<_, PepError>(value)
            })
            .transpose()?;

        let tls = tls_config(&config)?;
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
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
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
        let mut body = self.shared_body(request, &request_id);
        body.insert("resource".into(), resource(request));
        let reply = self
            .exchange(
                Method::POST,
                &endpoints.evaluation,
                Some(Value::Object(body)),
                &request_id,
            )
            .await?;
        decision_to_grant(&reply, request, &request_id)
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
        let mut body = self.shared_body(&batch.common, &request_id);
        let evaluations: Vec<Value> = plan
            .iter()
            .map(|(uri, _)| json!({ "resource": resource(&batch.request_for(uri)) }))
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
                let outcome = decision_to_grant(item, &single, &request_id)
                    .map_err(|e| BatchFailure::from_error(&e));
                BatchDecision::new((*uri).clone(), *required, outcome)
            })
            .collect())
    }

    /// `subject`, `action` and `context`: everything but the resource.
    fn shared_body(&self, request: &AccessRequest<'_>, request_id: &str) -> Map<String, Value> {
        let ctx = request.context;
        let mut subject_props = Map::new();
        subject_props.insert("roles".into(), json!(ctx.roles));
        if self.inner.config.dialect == AuthzenDialect::Cerbos && !ctx.roles.is_empty() {
            subject_props.insert("cerbos.roles".into(), json!(ctx.roles));
        }
        insert_opt(&mut subject_props, "issuer", ctx.issuer.as_deref());
        insert_opt(&mut subject_props, "client_id", ctx.client_id.as_deref());

        let mut context = Map::new();
        insert_opt(&mut context, "purpose", request.purpose);
        // No correlation id: it changes per call, and everything the PDP sees must be in the
        // grant key (it reaches the PDP as the `X-Request-ID` of logs only via the audit hook).
        insert_opt(
            &mut context,
            "workflow_run_id",
            ctx.workflow_run_id.as_deref(),
        );
        insert_opt(&mut context, "node_id", ctx.node_id.as_deref());
        insert_opt(&mut context, "system_id", ctx.system_id.as_deref());
        insert_opt(&mut context, "cnf_binding", request.cnf_binding);
        if self.inner.config.dialect == AuthzenDialect::Cerbos {
            context.insert("cerbos.includeMeta".into(), Value::Bool(true));
            context.insert("cerbos.requestId".into(), json!(request_id));
        }

        let mut body = Map::new();
        body.insert(
            "subject".into(),
            json!({ "type": "user", "id": request.subject, "properties": subject_props }),
        );
        body.insert("action".into(), json!({ "name": "execute" }));
        body.insert("context".into(), Value::Object(context));
        body
    }

    /// One request through the breaker; a 200 JSON body, or `PDP_UNAVAILABLE`.
    async fn exchange(
        &self,
        method: Method,
        url: &Uri,
        body: Option<Value>,
        request_id: &str,
    ) -> Result<Value, PepError> {
        let permit = self
            .inner
            .breaker
            .try_acquire()
            .ok_or_else(|| PepError::unavailable(PdpFailure::CircuitOpen))?;
        match self.send(method, url, body, request_id).await {
            Ok(bytes) => {
                permit.success();
                serde_json::from_slice(&bytes).map_err(|_| {
                    tracing::debug!(request_id, "PDP response is not JSON");
                    PepError::unavailable(PdpFailure::Malformed)
                })
            }
            Err(failure) => {
                if failure.is_outage() {
                    permit.failure();
                } else {
                    permit.success();
                }
                let error = failure.into_error();
                tracing::debug!(request_id, error = %error, "PDP request failed");
                Err(error)
            }
        }
    }

    async fn send(
        &self,
        method: Method,
        url: &Uri,
        body: Option<Value>,
        request_id: &str,
    ) -> Result<Bytes, Failure> {
        let inner = &*self.inner;
        let payload = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let mut request = Request::new(Full::new(payload));
        *request.method_mut() = method;
        *request.uri_mut() = url.clone();
        let headers = request.headers_mut();
        headers.insert(ACCEPT, JSON);
        headers.insert(CONTENT_TYPE, JSON);
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.insert(REQUEST_ID, id);
        }
        if let Some(auth) = &inner.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        let max = inner.config.max_response_bytes;
        let exchange = async {
            let response = inner
                .client
                .request(request)
                .await
                .map_err(|e| classify(Box::new(e)))?;
            let (head, body) = response.into_parts();
            if head.status != StatusCode::OK {
                return Err(Failure::Status(head.status));
            }
            let declared = head
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > max as u64) {
                return Err(Failure::TooLarge);
            }
            let collected = Limited::new(body, max).collect().await.map_err(|e| {
                if e.is::<LengthLimitError>() {
                    Failure::TooLarge
                } else {
                    Failure::BodyCut(e)
                }
            })?;
            Ok(collected.to_bytes())
        };
        tokio::time::timeout(inner.config.timeout, exchange)
            .await
            .map_err(|_| Failure::Timeout)?
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

fn insert_opt(map: &mut Map<String, Value>, name: &str, value: Option<&str>) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        map.insert(name.to_owned(), Value::String(value.to_owned()));
    }
}

fn resource(request: &AccessRequest<'_>) -> Value {
    let uri = request.uri;
    let mut props = Map::new();
    props.insert("tenant".into(), json!(request.tenant));
    props.insert("mount".into(), json!(uri.mount()));
    props.insert("provider".into(), json!(uri.provider().as_str()));
    insert_opt(&mut props, "engine", uri.engine().map(|e| e.as_str()));
    props.insert("path".into(), json!(uri.path()));
    insert_opt(&mut props, "key", uri.key());
    if let Some(version) = uri.version() {
        props.insert("version".into(), json!(version));
    }
    json!({ "type": "secret", "id": uri.as_str(), "properties": props })
}

/// An AuthZEN decision object (`{"decision": bool, "context": {...}}`) as a grant.
fn decision_to_grant(
    decision: &Value,
    request: &AccessRequest<'_>,
    request_id: &str,
) -> Result<Grant, PepError> {
    let malformed = || PepError::unavailable(PdpFailure::Malformed);
    let permitted = decision
        .get("decision")
        .and_then(Value::as_bool)
        .ok_or_else(malformed)?;
    if !permitted {
        return Err(PepError::denied(DenyReason::PdpDeny));
    }
    let terms = grant_terms(decision.get("context"), request.uri);
    match terms.get("obligations") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) if list.is_empty() => {}
        Some(_) => {
            tracing::debug!(request_id, "PDP permit carries obligations; denying");
            return Err(PepError::denied(DenyReason::UnknownObligation));
        }
    }
    let mut grant = Grant::with_defaults(request.defaults).bound_to(request.cnf_binding);
    if let Some(ttl) = first(&terms, &["ttl", "ttl_s", "grant_ttl"]) {
        grant.ttl = seconds(ttl).ok_or_else(malformed)?;
    }
    if let Some(uses) = terms.get("max_uses") {
        let uses = uses.as_u64().ok_or_else(malformed)?;
        grant.max_uses = u32::try_from(uses).unwrap_or(u32::MAX);
    }
    grant.decision_id = Some(match terms.get("decision_id") {
        Some(id) => id.as_str().ok_or_else(malformed)?.to_owned(),
        None => request_id.to_owned(),
    });
    grant.policy_version = string_term(&terms, "policy_version")?;
    grant.classification = string_term(&terms, "classification")?;
    grant.must_revalidate_on = match terms.get("must_revalidate_on") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(malformed)?,
        Some(_) => return Err(malformed()),
    };
    if let Some(wrap) = terms.get("wrap_ttl") {
        grant.wrap_ttl = Some(seconds(wrap).ok_or_else(malformed)?);
    }
    Ok(grant)
}

fn first<'a>(terms: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|name| terms.get(*name))
}

fn seconds(value: &Value) -> Option<Duration> {
    let secs = value.as_f64()?;
    (secs.is_finite() && (0.0..=MAX_TERM_SECONDS).contains(&secs))
        .then(|| Duration::from_secs_f64(secs))
}

fn string_term(terms: &Map<String, Value>, name: &str) -> Result<Option<String>, PepError> {
    match terms.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(PepError::unavailable(PdpFailure::Malformed)),
    }
}

/// The grant terms of a decision `context`: its own top-level keys, plus (for Cerbos) the
/// `val` objects of the outputs of the result for this URI, and the matched policy as the
/// policy version.
fn grant_terms(context: Option<&Value>, uri: &SecretUri) -> Map<String, Value> {
    let mut terms = Map::new();
    let Some(Value::Object(context)) = context else {
        return terms;
    };
    for (key, value) in context {
        if key != "cerbos.response" {
            terms.insert(key.clone(), value.clone());
        }
    }
    let results = context
        .get("cerbos.response")
        .and_then(|r| r.get("results"))
        .and_then(Value::as_array);
    let result = results.and_then(|results| {
        results.iter().find(|r| {
            r.get("resource")
                .and_then(|res| res.get("id"))
                .and_then(Value::as_str)
                == Some(uri.as_str())
        })
    });
    if let Some(result) = result {
        let outputs = result.get("outputs").and_then(Value::as_array);
        for output in outputs.into_iter().flatten() {
            let action = output.get("action").and_then(Value::as_str);
            if action.is_some_and(|a| a != "execute") {
                continue;
            }
            if let Some(Value::Object(val)) = output.get("val") {
                for (key, value) in val {
                    terms.insert(key.clone(), value.clone());
                }
            }
        }
        let matched = result
            .get("meta")
            .and_then(|m| m.get("actions"))
            .and_then(|a| a.get("execute"))
            .and_then(|e| e.get("matchedPolicy"))
            .and_then(Value::as_str);
        if let Some(policy) = matched
            && !terms.contains_key("policy_version")
        {
            terms.insert("policy_version".into(), Value::String(policy.to_owned()));
        }
    }
    terms
}

fn uri(text: &str) -> Result<Uri, PepError> {
    Uri::try_from(text).map_err(|_| PepError::config("the PDP endpoint URL is invalid"))
}

fn endpoint(base: &Base, path: &str) -> Result<Uri, PepError> {
    uri(&format!("{}{}{path}", base.origin, base.path))
}

/// `localhost`, 127.0.0.0/8 and `::1` (host with an optional `:port`).
fn is_loopback(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// TLS failures below hyper are `Tls`, everything else `Connect`.
fn classify(error: BoxError) -> Failure {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(current) = next {
        if current.is::<rustls::Error>()
            || current
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return Failure::Tls(error);
        }
        next = current.source();
    }
    Failure::Connect(error)
}

fn tls_config(config: &AuthzenConfig) -> Result<rustls::ClientConfig, PepError> {
    let crypto = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(crypto)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|_| PepError::config("TLS setup failed"))?;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = &config.ca_bundle {
        let unreadable = || PepError::config("AUTHZEN_CA_BUNDLE is unreadable or not PEM");
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|_| unreadable())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| unreadable())?;
        if certs.is_empty() {
            return Err(PepError::config(
                "AUTHZEN_CA_BUNDLE holds no PEM certificate",
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|_| PepError::config("AUTHZEN_CA_BUNDLE holds an invalid certificate"))?;
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExecutionContext, GrantDefaults};

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

    fn request<'a>(uri: &'a SecretUri, ctx: &'a ExecutionContext) -> AccessRequest<'a> {
        let mut request = AccessRequest::new("alice", "t1", uri, ctx);
        request.defaults = GrantDefaults {
            ttl: Duration::from_secs(300),
            max_uses: 1,
        };
        request
    }

    #[test]
    fn decisions_become_grants() {
        let uri = SecretUri::parse("openbao+kv2://secret/app#k").unwrap();
        let ctx = ExecutionContext::new("alice");
        let req = request(&uri, &ctx);

        let bare = decision_to_grant(&json!({"decision": true}), &req, "rid").unwrap();
        assert_eq!((bare.ttl.as_secs(), bare.max_uses), (300, 1));
        assert_eq!(bare.decision_id.as_deref(), Some("rid"));

        let full = decision_to_grant(
            &json!({"decision": true, "context": {
                "ttl": 30, "max_uses": 7, "decision_id": "d-1", "policy_version": "v9",
                "classification": "secret", "must_revalidate_on": ["role_change"], "wrap_ttl": 60,
                "obligations": []
            }}),
            &req,
            "rid",
        )
        .unwrap();
        assert_eq!((full.ttl.as_secs(), full.max_uses), (30, 7));
        assert_eq!(full.decision_id.as_deref(), Some("d-1"));
        assert_eq!(full.policy_version.as_deref(), Some("v9"));
        assert_eq!(full.classification.as_deref(), Some("secret"));
        assert_eq!(full.must_revalidate_on, ["role_change"]);
        assert_eq!(full.wrap_ttl, Some(Duration::from_secs(60)));

        let cerbos = decision_to_grant(
            &json!({"decision": true, "context": {"cerbos.response": {"results": [
                {"resource": {"id": "openbao+kv2://secret/other"}, "outputs": [{"action": "execute", "val": {"max_uses": 99}}]},
                {"resource": {"id": "openbao+kv2://secret/app#k"},
                 "meta": {"actions": {"execute": {"matchedPolicy": "resource.secret.vdefault"}}},
                 "outputs": [{"action": "execute", "src": "r#x", "val": {"max_uses": 7, "ttl": 60}}]}
            ]}}}),
            &req,
            "rid",
        )
        .unwrap();
        assert_eq!((cerbos.ttl.as_secs(), cerbos.max_uses), (60, 7));
        assert_eq!(
            cerbos.policy_version.as_deref(),
            Some("resource.secret.vdefault")
        );

        let code = |v: Value| {
            decision_to_grant(&v, &req, "rid")
                .map_err(|e| (e.code(), e.deny_reason()))
                .err()
        };
        assert_eq!(
            code(json!({"decision": false})),
            Some(("AUTHZ_DENIED", Some(DenyReason::PdpDeny)))
        );
        assert_eq!(
            code(json!({"decision": true, "context": {"obligations": ["mfa"]}})),
            Some(("AUTHZ_DENIED", Some(DenyReason::UnknownObligation)))
        );
        for malformed in [
            json!({}),
            json!({"decision": "yes"}),
            json!({"decision": true, "context": {"ttl": -1}}),
            json!({"decision": true, "context": {"max_uses": "many"}}),
            json!({"decision": true, "context": {"must_revalidate_on": [1]}}),
        ] {
            assert_eq!(code(malformed), Some(("PDP_UNAVAILABLE", None)));
        }
    }

    #[test]
    fn credentials_in_the_url_are_refused() {
        let err = AuthzenClient::new(AuthzenConfig::new("http://user:s3cret@127.0.0.1:3592"))
            .unwrap_err();
        assert_eq!(err.code(), "CONFIG");
        assert!(!err.to_string().contains("s3cret"));
    }
}
