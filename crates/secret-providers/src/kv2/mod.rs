//! The KV v2 provider for OpenBao and HashiCorp Vault.

mod auth;
pub(crate) mod config;
#[cfg(feature = "db")]
mod leases;
mod metadata;
mod response;
mod transport;

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::SystemTime;

use secret_telemetry::{Metrics, names};
use secret_uri::{Engine, Provider, SecretUri};
use tracing::Instrument as _;

use self::auth::AuthState;
use self::response::ReadContext;
use self::transport::{Reply, Transport};
use crate::provider::{Probe, ProbeFuture, ReadFuture, SecretProvider};
use crate::{ProviderError, SecretValue};

#[doc(hidden)]
pub use self::metadata::fuzz_metadata_reply;

pub use self::config::{
    CaBundleMode, ClientCert, DEFAULT_KUBERNETES_JWT_PATH, DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMEOUT,
    Kv2Auth, Kv2Config, Kv2Flavor, RetryConfig,
};

/// Reads `openbao+kv2://mount/path#key?version=N` (or `hashicorp+kv2://…`) with
/// `GET /v1/<mount>/data/<path>[?version=N]`.
///
/// - **Cheap to clone and share**: an `Arc` inside; clones share the connection pool and the
///   token.
/// - **Versions**: a value read carries its version ([`SecretValue::version`], the server's
///   `data.metadata.version`). [`probe`](Self::probe) asks `GET /v1/<mount>/metadata/<path>`
///   which version a read would return now, without reading the value: the current version
///   (or the pinned one), or `NOT_FOUND` when it is soft-deleted (and its deletion time has
///   passed: `delete_version_after` sets one in the future), destroyed, pruned, or was never
///   written. It needs `read` on the `metadata/` path in the token's policy.
/// - **Lazy**: [`new`](Self::new) validates settings and does no network I/O. The first read
///   authenticates (concurrent first reads cause one login). A token with TTL 0 is never
///   looked up again; others are renewed (`renew-self`) after two thirds of their TTL, or
///   replaced by logging in again where the method allows it.
/// - **Errors** map what the real server returns: see [`ProviderError`] and
///   `docs/providers.md`. On a `403`, methods that can log in again (AppRole, Kubernetes,
///   token file) check the token with `lookup-self`: a valid token means `PERMISSION_DENIED`
///   at once; a refused one is replaced once and the read retried.
/// - **Retries** of connection errors, timeouts, 429 and 500/502/503/504 use jittered
///   exponential backoff, then give `UNAVAILABLE` (with the attempt count) or `TIMEOUT`.
/// - **Telemetry**: each read is a `secret_read` span (DEBUG) with `provider`, `mount`, and
///   once known `status`, `status_class` (`2xx`…`5xx`), `attempts` (the HTTP attempts of the
///   read request: retries, and the read again after a re-login) and, on failure, `code`. A
///   probe is a `secret_read` span too, with the same fields and `kind = "probe"`.
///   Each login and renewal is a `login` span (DEBUG): `provider`, `auth_method` (`token`,
///   `approle`, `kubernetes`), `kind` (`login` or `renew`), `outcome` (`ok`, `error`) and
///   `code` on failure. Each HTTP attempt is `secret-http`'s `http_request` span inside
///   them. The TTL the server gives a token on login, renewal or lookup is recorded as
///   `secrets.token.ttl_remaining` (by `provider`, the name of the flavor the provider was
///   built for; a token that never expires records none) through
///   [`Kv2Config::metrics`](crate::Kv2Config::metrics). No span or metric carries a path,
///   a token, a role or secret ID, a JWT or a value.
///
/// URIs with no engine (`openbao://secret/app`) are read as KV v2. Reads must run inside a
/// tokio runtime (the connection pool spawns its connection tasks there).
#[derive(Clone)]
pub struct Kv2Provider {
    inner: Arc<Inner>,
}

struct Inner {
    flavor: Kv2Flavor,
    provider: Provider,
    address: String,
    namespace: Option<String>,
    /// The settings this client was built from, for inspection.
    config: Kv2Config,
    transport: Transport,
    auth: AuthState,
}

impl Kv2Provider {
    /// Validates `config` and builds an idle client. No network I/O happens here; TLS files
    /// (CA bundle, client certificate) are read now.
    ///
    /// # Errors
    /// `CONFIG` for an invalid address, plain `http://` to a non-loopback host without
    /// `allow_insecure_http`, `skip_verify` outside a development environment without
    /// `allow_insecure_tls` (see [`Kv2Config::insecure_tls_allowed`]), unreadable TLS files,
    /// or zero attempts or timeout.
    pub fn new(config: Kv2Config) -> Result<Self, ProviderError> {
        config.check_insecure_tls()?;
        let transport = Transport::new(&config)?;
        let provider = match config.flavor {
            Kv2Flavor::OpenBao => Provider::OpenBao,
            Kv2Flavor::HashiCorp => Provider::HashiCorp,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                flavor: config.flavor,
                provider,
                address: config.address.trim().to_owned(),
                namespace: config.namespace.clone(),
                auth: AuthState::new(
                    config.auth.clone(),
                    config.metrics.clone().unwrap_or_else(Metrics::global),
                ),
                config,
                transport,
            }),
        })
    }

    /// [`new`](Self::new) with [`Kv2Config::from_env`].
    ///
    /// # Errors
    /// `CONFIG` as for both.
    pub fn from_env(flavor: Kv2Flavor) -> Result<Self, ProviderError> {
        Self::new(Kv2Config::from_env(flavor)?)
    }

    /// OpenBao or HashiCorp Vault.
    #[must_use]
    pub fn flavor(&self) -> Kv2Flavor {
        self.inner.flavor
    }

    /// The server's address, as configured (trimmed).
    #[must_use]
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// The namespace (`X-Vault-Namespace`), if one is configured.
    #[must_use]
    pub fn namespace(&self) -> Option<&str> {
        self.inner.namespace.as_deref()
    }

    /// Whether `self` and `other` are handles of one client: one connection pool, one token.
    #[must_use]
    pub fn same_client(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The settings this client was built from (secrets stay wrapped; `Debug` redacts them).
    #[must_use]
    pub fn config(&self) -> &Kv2Config {
        &self.inner.config
    }

    /// Reads a secret.
    ///
    /// # Errors
    /// See [`ProviderError`]; the mapping from server answers is in the type docs.
    pub async fn read(&self, uri: &SecretUri) -> Result<SecretValue, ProviderError> {
        let span = self.span(uri);
        let mut trace = ReadTrace::default();
        let result = self
            .inner
            .read(uri, &mut trace)
            .instrument(span.clone())
            .await;
        trace.finish(&span, "read", &result);
        result
    }

    /// The version a read of `uri` would return now, from the secret's metadata, without
    /// reading its value: [`Probe::Version`] of the current version, or of the pinned one
    /// (`?version=N`) while it can still be read. A `#key` is not checked.
    ///
    /// # Errors
    /// As [`read`](Self::read); `NOT_FOUND` when there is no such secret, or its current
    /// (or pinned) version is soft-deleted, destroyed, pruned or was never written.
    pub async fn probe(&self, uri: &SecretUri) -> Result<Probe, ProviderError> {
        let span = self.span(uri);
        span.record("kind", "probe");
        let mut trace = ReadTrace::default();
        let result = self
            .inner
            .probe(uri, &mut trace)
            .instrument(span.clone())
            .await;
        trace.finish(&span, "probe", &result);
        result
    }

    /// The `secret_read` span of a read or probe of `uri`.
    fn span(&self, uri: &SecretUri) -> tracing::Span {
        tracing::debug_span!(
            names::span::READ,
            provider = self.inner.transport.provider,
            mount = uri.mount(),
            kind = tracing::field::Empty,
            status = tracing::field::Empty,
            status_class = tracing::field::Empty,
            attempts = tracing::field::Empty,
            code = tracing::field::Empty,
        )
    }
}

/// What a read learned for its span: the HTTP attempts of its requests and the last status.
#[derive(Default)]
struct ReadTrace {
    attempts: u32,
    status: Option<u16>,
}

impl ReadTrace {
    /// Records what was learned on `span`, and a failure (of a `what`: read, probe) as an
    /// event in it.
    fn finish<T>(
        &self,
        span: &tracing::Span,
        what: &'static str,
        result: &Result<T, ProviderError>,
    ) {
        if !span.is_disabled() {
            span.record("attempts", self.attempts);
            if let Some(status) = self.status {
                span.record("status", status);
                if let Some(class) = status_class(status) {
                    span.record("status_class", class);
                }
            }
            if let Err(error) = result {
                span.record("code", error.code());
            }
        }
        if let Err(error) = result {
            span.in_scope(|| tracing::debug!(code = error.code(), "{what} failed"));
        }
    }
}

/// `2xx`, `3xx`, `4xx` or `5xx`.
fn status_class(status: u16) -> Option<&'static str> {
    match status {
        200..=299 => Some("2xx"),
        300..=399 => Some("3xx"),
        400..=499 => Some("4xx"),
        500..=599 => Some("5xx"),
        _ => None,
    }
}

/// The status a failed request came with, if a response head arrived.
fn failed_status(error: &ProviderError) -> Option<u16> {
    match error {
        ProviderError::Unavailable { status, .. } => *status,
        ProviderError::MalformedResponse { status, .. } => Some(*status),
        _ => None,
    }
}

impl Inner {
    async fn read(
        &self,
        uri: &SecretUri,
        trace: &mut ReadTrace,
    ) -> Result<SecretValue, ProviderError> {
        let url = self.url(uri, "data", true)?;
        let reply = self.get(&url, trace).await?;
        response::read_reply(
            context(self.transport.provider, uri),
            reply.status.as_u16(),
            &reply.body,
        )
    }

    async fn probe(&self, uri: &SecretUri, trace: &mut ReadTrace) -> Result<Probe, ProviderError> {
        // The metadata endpoint describes every version: no `?version=` on the request.
        let url = self.url(uri, "metadata", false)?;
        let reply = self.get(&url, trace).await?;
        metadata::probe_reply(
            context(self.transport.provider, uri),
            reply.status.as_u16(),
            &reply.body,
            SystemTime::now(),
        )
    }

    /// `…/v1/<mount>/<endpoint>/<path>` for `uri` (with `?version=N` when `pin`), after the
    /// checks every request makes first: a URI KV v2 serves, with known parameters, naming a
    /// secret, pinned (if at all) to a version that can exist.
    fn url(&self, uri: &SecretUri, endpoint: &str, pin: bool) -> Result<http::Uri, ProviderError> {
        let provider = self.transport.provider;
        let mount = uri.mount();
        if !serves(uri) {
            return Err(crate::provider::unserved(provider, uri));
        }
        crate::check_parameters(uri)?;
        let path = uri.path();
        if path.is_empty() {
            return Err(ProviderError::InvalidPath {
                provider,
                mount: mount.to_owned(),
                reason: "names only a mount; a KV v2 secret needs a path",
            });
        }
        let version = uri.version();
        if version.is_some_and(|v| i64::try_from(v).is_err()) {
            // KV v2 numbers versions with signed 64-bit integers (and answers 400 above
            // that): no such version can exist.
            return Err(ProviderError::NotFound {
                provider,
                mount: mount.to_owned(),
                status: None,
            });
        }
        let mut target = String::with_capacity(mount.len() + endpoint.len() + path.len() + 32);
        target.push_str(mount);
        target.push('/');
        target.push_str(endpoint);
        target.push('/');
        target.push_str(path);
        if let Some(version) = version.filter(|_| pin) {
            // Writing into a String cannot fail.
            let _ = write!(target, "?version={version}");
        }
        self.transport.url(&target)
    }

    /// A `GET` of `url` with the token, counted in `trace`. On a `403` with a token the
    /// server refuses, methods that can log in again do so once and the request is sent
    /// again; any other answer is the caller's to map.
    async fn get(&self, url: &http::Uri, trace: &mut ReadTrace) -> Result<Reply, ProviderError> {
        self.request(http::Method::GET, url, None, true, trace)
            .await
    }

    /// A request of `url` with the token (and `body`, JSON), counted in `trace`; an
    /// `idempotent` one is retried as [`Transport::send`] says, any other only when it
    /// surely never reached the server ([`Transport::send_once`]). On a `403` with a token
    /// the server refuses, methods that can log in again do so once and the request is sent
    /// again.
    async fn request(
        &self,
        method: http::Method,
        url: &http::Uri,
        body: Option<&bytes::Bytes>,
        idempotent: bool,
        trace: &mut ReadTrace,
    ) -> Result<Reply, ProviderError> {
        let mut reauthenticated = false;
        loop {
            let token = self.auth.token(&self.transport).await?;
            let (sent, attempts) = self
                .transport
                .send_counted(
                    method.clone(),
                    url,
                    Some(&token.header),
                    body.cloned(),
                    idempotent,
                )
                .await;
            trace.attempts += attempts;
            let reply = sent.inspect_err(|error| trace.status = failed_status(error))?;
            let status = reply.status.as_u16();
            trace.status = Some(status);
            if status == 403
                && !reauthenticated
                && self.auth.retry_after_403(&self.transport, &token).await
            {
                tracing::debug!("403 and the token is refused; authenticating again once");
                reauthenticated = true;
                continue;
            }
            return Ok(reply);
        }
    }
}

/// Where a request for `uri` happened, for mapping its answer.
fn context<'a>(provider: &'static str, uri: &'a SecretUri) -> ReadContext<'a> {
    ReadContext {
        provider,
        mount: uri.mount(),
        version: uri.version(),
        key: uri.key(),
    }
}

impl fmt::Debug for Kv2Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kv2Provider")
            .field("provider", &self.inner.provider.as_str())
            .field("address", &self.inner.address)
            .field("namespace", &self.inner.namespace)
            .field("auth", &self.inner.auth.method().method())
            .finish_non_exhaustive()
    }
}

/// Whether KV v2 serves `uri`: an `openbao` or `hashicorp` scheme, with no engine or `kv2`.
/// Either flavor serves both schemes (the server speaks one API); which server a scheme
/// reaches is the router's choice.
fn serves(uri: &SecretUri) -> bool {
    matches!(uri.provider(), Provider::OpenBao | Provider::HashiCorp)
        && matches!(uri.engine(), None | Some(Engine::Kv2))
}

/// The identity of a KV v2 server: its address and namespace, normalized so that every
/// spelling of one server is one identity (a grant must not multiply by spelling the address
/// another way): scheme and host lower case, the scheme's default port dropped, no trailing
/// `/`; the namespace without surrounding blanks or `/`.
pub(crate) fn server_id(address: &str, namespace: Option<&str>) -> String {
    let address = address.trim().trim_end_matches('/');
    let (scheme, rest) = match address.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => (String::new(), address),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let mut authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => Some(":443"),
        "http" => Some(":80"),
        _ => None,
    };
    if let Some(port) = default_port
        && authority.ends_with(port)
        && !authority.ends_with("]")
    {
        authority.truncate(authority.len() - port.len());
    }
    let namespace = namespace.unwrap_or_default().trim().trim_matches('/');
    format!("{scheme}://{authority}{path}|{namespace}")
}

impl SecretProvider for Kv2Provider {
    fn name(&self) -> &'static str {
        self.inner.transport.provider
    }

    fn serves(&self, uri: &SecretUri) -> bool {
        serves(uri)
    }

    fn backend(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Owned(server_id(self.address(), self.namespace()))
    }

    fn read<'a>(&'a self, uri: &'a SecretUri) -> ReadFuture<'a> {
        Box::pin(Kv2Provider::read(self, uri))
    }

    fn probe<'a>(&'a self, uri: &'a SecretUri) -> ProbeFuture<'a> {
        Box::pin(Kv2Provider::probe(self, uri))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_server_is_one_identity() {
        let one = server_id("https://vault.example:8200", Some("ns"));
        for (address, namespace) in [
            ("https://vault.example:8200/", Some("ns")),
            ("HTTPS://VAULT.example:8200", Some("ns")),
            (" https://vault.example:8200 ", Some("/ns/")),
            ("https://vault.example:8200", Some(" ns")),
        ] {
            assert_eq!(
                server_id(address, namespace),
                one,
                "{address} {namespace:?}"
            );
        }
        assert_eq!(
            server_id("https://vault.example:443", None),
            server_id("https://vault.example", Some(""))
        );
        assert_eq!(
            server_id("http://127.0.0.1:80/", None),
            server_id("http://127.0.0.1", None)
        );
        // Different servers stay different.
        for (address, namespace) in [
            ("https://vault.example:8300", Some("ns")),
            ("http://vault.example:8200", Some("ns")),
            ("https://vault.example:8200", Some("other")),
            ("https://vault.example:8200", None),
            ("https://vault.example:8200/v2", Some("ns")),
        ] {
            assert_ne!(
                server_id(address, namespace),
                one,
                "{address} {namespace:?}"
            );
        }
    }

    #[tokio::test]
    async fn uri_shape_errors_need_no_server() -> Result<(), Box<dyn std::error::Error>> {
        // Port 9 (discard) on loopback: nothing is sent for these URIs anyway.
        let config = Kv2Config::new(
            Kv2Flavor::OpenBao,
            "http://127.0.0.1:9",
            Kv2Auth::token("t"),
        );
        let provider = Kv2Provider::new(config)?;
        for (uri, code) in [
            ("openbao+kv2://secret", "INVALID_PATH"),
            ("file://secret/x", "UNSUPPORTED_PROVIDER"),
            ("db+cred://pg/app", "UNSUPPORTED_PROVIDER"),
            ("bootstrap://b/x", "UNSUPPORTED_PROVIDER"),
            ("yaml://y/x", "UNSUPPORTED_PROVIDER"),
            (
                "openbao+kv2://secret/a#k?version=9223372036854775808",
                "NOT_FOUND",
            ),
            (
                "openbao+kv2://secret/a?version=18446744073709551615",
                "NOT_FOUND",
            ),
            ("openbao+kv2://secret/a?verison=2", "UNKNOWN_PARAMETER"),
        ] {
            let uri: SecretUri = uri.parse()?;
            assert_eq!(
                provider.read(&uri).await.err().map(|e| e.code()),
                Some(code),
                "{uri}"
            );
            assert_eq!(
                provider.probe(&uri).await.err().map(|e| e.code()),
                Some(code),
                "probe {uri}"
            );
        }
        Ok(())
    }

    /// A probe asks the metadata endpoint (never with `?version=`), with the token, and logs
    /// in again once after a 403 whose token the server refuses, as a read does.
    #[tokio::test]
    async fn a_probe_asks_the_metadata_and_logs_in_again_once()
    -> Result<(), Box<dyn std::error::Error>> {
        use secrecy::SecretString;
        use secrets_test_support::{Fault, FaultServer};
        let login = |token: &str| {
            Fault::json(
                200,
                &serde_json::json!({"auth": {"client_token": token, "lease_duration": 600, "renewable": true}}),
            )
        };
        let denied = Fault::json(403, &serde_json::json!({"errors": ["permission denied"]}));
        let metadata = serde_json::json!({"data": {"current_version": 4, "versions": {
            "3": {"deletion_time": "", "destroyed": false},
            "4": {"deletion_time": "", "destroyed": false}}}});
        let server = FaultServer::start(vec![
            login("first-token"),
            denied.clone(),
            // lookup-self refuses the token: it is replaced once.
            denied.clone(),
            login("second-token"),
            Fault::json(200, &metadata),
            // The next probe: a token the server still accepts is simply denied.
            denied.clone(),
        ])?;
        let provider = Kv2Provider::new(Kv2Config::new(
            Kv2Flavor::OpenBao,
            server.addr(),
            Kv2Auth::approle("role", Some(SecretString::from("secret-id"))),
        ))?;
        let pinned: SecretUri = "openbao+kv2://secret/team/app#password?version=3".parse()?;
        assert_eq!(provider.probe(&pinned).await?, Probe::Version(3));
        let requests = server.requests();
        let seen: Vec<(&str, &str, Option<&str>)> = requests
            .iter()
            .map(|r| {
                (
                    r.method.as_str(),
                    r.path.as_str(),
                    r.header("x-vault-token"),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("POST", "/v1/auth/approle/login", None),
                ("GET", "/v1/secret/metadata/team/app", Some("first-token")),
                ("GET", "/v1/auth/token/lookup-self", Some("first-token")),
                ("POST", "/v1/auth/approle/login", None),
                ("GET", "/v1/secret/metadata/team/app", Some("second-token")),
            ]
        );
        // Through the trait object too; a 403 right after a re-login is final.
        let dynamic: &dyn SecretProvider = &provider;
        let unpinned: SecretUri = "openbao://secret/team/app".parse()?;
        let error = dynamic.probe(&unpinned).await.err();
        assert_eq!(
            error.as_ref().map(ProviderError::code),
            Some("PERMISSION_DENIED")
        );
        assert_eq!(server.request_count(), 6);
        let shown = format!(
            "{error:?} {}",
            error.as_ref().map(ToString::to_string).unwrap_or_default()
        );
        for hidden in ["team", "app", "token", "secret-id"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn response_bodies_are_wiped_on_every_path() -> Result<(), Box<dyn std::error::Error>> {
        use secrets_test_support::{Fault, FaultServer};
        let lookup = serde_json::json!({"data": {"ttl": 0, "renewable": false}});
        let found =
            serde_json::json!({"data": {"data": {"k": "wipe-me"}, "metadata": {"version": 1}}});
        let deleted = serde_json::json!({"data": {"data": null, "metadata": {"deletion_time": "2026-01-01T00:00:00Z", "version": 2}}});
        let cut = br#"{"data":{"data":{"k":"wipe-"#.to_vec();
        let expected = [
            lookup.to_string().len(),
            found.to_string().len(),
            deleted.to_string().len(),
            cut.len(),
        ];
        let server = FaultServer::start(vec![
            Fault::json(200, &lookup),
            Fault::json(200, &found),
            Fault::json(404, &deleted),
            Fault::Respond {
                status: 200,
                headers: Vec::new(),
                body: cut,
            },
        ])?;
        let provider = Kv2Provider::new(Kv2Config::new(
            Kv2Flavor::OpenBao,
            server.addr(),
            Kv2Auth::token("t"),
        ))?;
        transport::tests::WIPED.with(|w| w.borrow_mut().clear());
        let uri: SecretUri = "openbao+kv2://secret/app".parse()?;
        let codes: Vec<&str> = [
            provider.read(&uri).await.err(),
            provider.read(&uri).await.err(),
            provider.read(&uri).await.err(),
        ]
        .iter()
        .map(|e| e.as_ref().map_or("OK", ProviderError::code))
        .collect();
        assert_eq!(codes, ["OK", "VERSION_DELETED", "MALFORMED_RESPONSE"]);
        let wiped = transport::tests::WIPED.with(|w| w.borrow().clone());
        assert_eq!(wiped, expected);
        Ok(())
    }
}
