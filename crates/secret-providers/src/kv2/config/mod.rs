//! Settings of a [`Kv2Provider`](crate::Kv2Provider): struct, builder methods and environment.

use std::path::PathBuf;
use std::time::Duration;

mod auth;
mod env;
mod insecure_tls;

pub use self::auth::Kv2Auth;

/// The default per-attempt timeout (`VAULT_TIMEOUT`), 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default response body cap, 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Where Kubernetes mounts the pod's service-account token.
pub const DEFAULT_KUBERNETES_JWT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Which server family a KV v2 provider talks to. Both speak the same HTTP API; they differ in
/// their provider name (`openbao`, `hashicorp`) and environment prefix (`OPENBAO_`, `VAULT_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kv2Flavor {
    /// OpenBao: `openbao+kv2://` URIs, `OPENBAO_*` settings.
    OpenBao,
    /// HashiCorp Vault: `hashicorp+kv2://` URIs, `VAULT_*` settings.
    HashiCorp,
}

impl Kv2Flavor {
    /// The provider name used in errors and logs.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::OpenBao => "openbao",
            Self::HashiCorp => "hashicorp",
        }
    }

    /// The environment variable prefix, without the trailing `_`.
    #[must_use]
    pub const fn env_prefix(self) -> &'static str {
        match self {
            Self::OpenBao => "OPENBAO",
            Self::HashiCorp => "VAULT",
        }
    }
}

/// Retries of connection errors, timeouts, 429 and 500/502/503/504: exponential backoff with
/// jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Attempts in all, including the first (at least 1). Default 3.
    pub attempts: u32,
    /// Delay before the second attempt; it doubles each time. Default 100 ms.
    pub base_delay: Duration,
    /// Upper bound of one delay. Default 2 s.
    pub max_delay: Duration,
    /// Add random jitter to each delay (default on, so clients do not retry in lockstep).
    pub jitter: bool,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            jitter: true,
        }
    }
}

impl RetryConfig {
    /// The defaults with this many attempts.
    #[must_use]
    pub fn attempts(attempts: u32) -> Self {
        Self {
            attempts,
            ..Self::default()
        }
    }

    /// Sets the base and maximum delay.
    #[must_use]
    pub fn with_delays(mut self, base_delay: Duration, max_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self.max_delay = max_delay;
        self
    }
}

/// What a configured CA bundle does to the trusted roots: `secret-http`'s one rule for every
/// client (replace by default, as Vault's `VAULT_CACERT` does).
pub use secret_http::CaBundleMode;

/// A client certificate for mutual TLS: PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate chain (PEM).
    pub cert_path: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
}

/// Settings of a [`Kv2Provider`](crate::Kv2Provider).
///
/// Build one with [`Kv2Config::new`] and the `with_*` methods, or from the environment with
/// [`Kv2Config::from_env`]. [`Kv2Provider::new`](crate::Kv2Provider::new) validates it.
///
/// ```
/// use std::time::Duration;
/// use secret_providers::{Kv2Auth, Kv2Config, Kv2Flavor, RetryConfig};
///
/// let config = Kv2Config::new(Kv2Flavor::OpenBao, "https://bao.internal:8200", Kv2Auth::token("s.xxx"))
///     .with_namespace("team-a")
///     .with_timeout(Duration::from_secs(5))
///     .with_retry(RetryConfig::attempts(5));
/// assert!(!format!("{config:?}").contains("s.xxx"));
///
/// // A `user:password@` part is refused by `Kv2Provider::new`, and never shown.
/// let config = Kv2Config::new(Kv2Flavor::OpenBao, "https://u:hunter2@bao:8200", Kv2Auth::token("t"));
/// assert!(!format!("{config:?}").contains("hunter2"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Kv2Config {
    /// OpenBao or HashiCorp Vault.
    pub flavor: Kv2Flavor,
    /// Base URL, e.g. `https://bao.internal:8200` (a path prefix is kept).
    pub address: String,
    /// How to authenticate.
    pub auth: Kv2Auth,
    /// Sent as `X-Vault-Namespace` when set.
    pub namespace: Option<String>,
    /// Trusted CA certificates (PEM). By default they replace the webpki roots; see
    /// [`ca_bundle_mode`](Self::ca_bundle_mode).
    pub ca_bundle: Option<PathBuf>,
    /// Whether [`ca_bundle`](Self::ca_bundle) replaces the webpki roots (the default) or is
    /// added to them.
    pub ca_bundle_mode: CaBundleMode,
    /// A client certificate for mutual TLS.
    pub client_cert: Option<ClientCert>,
    /// Per-attempt timeout covering connect, response and body.
    pub timeout: Duration,
    /// Retry policy.
    pub retry: RetryConfig,
    /// Responses with larger bodies fail with `TOO_LARGE`.
    pub max_body_bytes: usize,
    /// Accept any server certificate. Refused unless the environment is a development one
    /// ([`INSECURE_TLS_ENVIRONMENTS`](Self::INSECURE_TLS_ENVIRONMENTS)) or [`allow_insecure_tls`](Self::allow_insecure_tls) is
    /// set.
    pub skip_verify: bool,
    /// Allow [`skip_verify`](Self::skip_verify) in any environment
    /// (`SECRETS_ALLOW_INSECURE_TLS=true`).
    pub allow_insecure_tls: bool,
    /// Allow plain `http://` to a host that is not loopback.
    pub allow_insecure_http: bool,
    /// The deployment environment (`ENVIRONMENT`) for the `skip_verify` rule; `None` reads
    /// the process's `ENVIRONMENT` at [`Kv2Provider::new`](crate::Kv2Provider::new).
    pub environment: Option<String>,
    /// Where the provider records its metrics (`secrets.token.ttl_remaining`). `None` (the
    /// default): [`Metrics::global`](secret_telemetry::Metrics::global), bound when
    /// [`Kv2Provider::new`](crate::Kv2Provider::new) builds the provider, so it reaches a
    /// meter provider installed before that. Not read from the environment.
    pub metrics: Option<secret_telemetry::Metrics>,
}

impl std::fmt::Debug for Kv2Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv2Config")
            .field("flavor", &self.flavor)
            .field("address", &redact_userinfo(&self.address))
            .field("auth", &self.auth)
            .field("namespace", &self.namespace)
            .field("ca_bundle", &self.ca_bundle)
            .field("ca_bundle_mode", &self.ca_bundle_mode)
            .field("client_cert", &self.client_cert)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("skip_verify", &self.skip_verify)
            .field("allow_insecure_tls", &self.allow_insecure_tls)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("environment", &self.environment)
            .field("metrics", &self.metrics)
            .finish()
    }
}

/// The address with any `user:password@` part of its authority replaced by `***@` (the
/// provider refuses such an address, but a config holding one can still be printed).
fn redact_userinfo(address: &str) -> std::borrow::Cow<'_, str> {
    let start = address.find("://").map_or(0, |i| i + 3);
    let end = address[start..]
        .find(['/', '?', '#'])
        .map_or(address.len(), |i| start + i);
    match address[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &address[..start], &address[start + at..]).into(),
        None => address.into(),
    }
}

impl Kv2Config {
    /// Settings with defaults: 30 s timeout, 3 attempts, 1 MiB body cap, certificate
    /// verification on.
    #[must_use]
    pub fn new(flavor: Kv2Flavor, address: impl Into<String>, auth: Kv2Auth) -> Self {
        Self {
            flavor,
            address: address.into(),
            auth,
            namespace: None,
            ca_bundle: None,
            ca_bundle_mode: CaBundleMode::Replace,
            client_cert: None,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryConfig::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            skip_verify: false,
            allow_insecure_tls: false,
            allow_insecure_http: false,
            environment: None,
            metrics: None,
        }
    }

    /// Sets the namespace.
    #[must_use]
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Trusts the CA certificates in this PEM file, and by default only them (see
    /// [`with_ca_bundle_mode`](Self::with_ca_bundle_mode)).
    #[must_use]
    pub fn with_ca_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_bundle = Some(path.into());
        self
    }

    /// Whether the CA bundle replaces the webpki roots ([`CaBundleMode::Replace`], the
    /// default) or is added to them ([`CaBundleMode::Append`]).
    #[must_use]
    pub fn with_ca_bundle_mode(mut self, mode: CaBundleMode) -> Self {
        self.ca_bundle_mode = mode;
        self
    }

    /// Sets a client certificate for mutual TLS.
    #[must_use]
    pub fn with_client_cert(
        mut self,
        cert_path: impl Into<PathBuf>,
        key_path: impl Into<PathBuf>,
    ) -> Self {
        self.client_cert = Some(ClientCert {
            cert_path: cert_path.into(),
            key_path: key_path.into(),
        });
        self
    }

    /// Sets the per-attempt timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the response body cap.
    #[must_use]
    pub fn with_max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Turns certificate verification off (refused outside a development environment unless
    /// [`with_allow_insecure_tls`](Self::with_allow_insecure_tls)).
    #[must_use]
    pub fn with_skip_verify(mut self, skip: bool) -> Self {
        self.skip_verify = skip;
        self
    }

    /// Allows plain HTTP to non-loopback hosts.
    #[must_use]
    pub fn with_allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Sets the deployment environment for the `skip_verify` guard.
    #[must_use]
    pub fn with_environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Allows [`skip_verify`](Self::skip_verify) outside a development environment, as
    /// `SECRETS_ALLOW_INSECURE_TLS=true` does.
    #[must_use]
    pub fn with_allow_insecure_tls(mut self, allow: bool) -> Self {
        self.allow_insecure_tls = allow;
        self
    }

    /// Records the provider's metrics through `metrics` (a client's own, or one built from a
    /// meter of one's own) instead of the global meter provider. See
    /// [`metrics`](Self::metrics).
    #[must_use]
    pub fn with_metrics(mut self, metrics: secret_telemetry::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

impl Kv2Config {
    /// The `ENVIRONMENT` values (trimmed, case-insensitive) in which `skip_verify` is
    /// accepted without `SECRETS_ALLOW_INSECURE_TLS=true`: the PEP's development
    /// environments. Any other value, or none, counts as production.
    ///
    /// `ci` is not one of them (as for the PEP's allow-all PDP): CI runners often hold
    /// production credentials.
    pub const INSECURE_TLS_ENVIRONMENTS: [&'static str; 4] =
        ["dev", "development", "test", "local"];
    /// The variable that allows `skip_verify` outside a development environment.
    pub const ALLOW_INSECURE_TLS_ENV: &'static str = "SECRETS_ALLOW_INSECURE_TLS";
    /// The longest accepted per-attempt timeout (`P_TIMEOUT`), 1 h.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
    /// The longest accepted retry delay (`P_RETRY_*_DELAY_MS`), 1 h.
    pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
    /// The most attempts accepted (`P_RETRY_ATTEMPTS`).
    pub const MAX_RETRY_ATTEMPTS: u32 = 100;
    /// The largest accepted response cap (`P_MAX_BODY_BYTES`), 1 GiB.
    pub const MAX_MAX_BODY_BYTES: usize = 1 << 30;
}

#[cfg(test)]
mod tests;
