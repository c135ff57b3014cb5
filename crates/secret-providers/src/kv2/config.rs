//! Settings of a [`Kv2Provider`](crate::Kv2Provider): struct, builder methods and environment.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::ProviderError;

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

/// How the provider authenticates. Nothing is sent until the first read.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Kv2Auth {
    /// A token given directly. A `403` cannot be fixed by logging in again.
    Token {
        /// The token.
        token: SecretString,
    },
    /// A token read from a file (trimmed), e.g. written by an agent. The file is read again
    /// after a `403`, so a rotated token is picked up.
    TokenFile {
        /// The file holding the token.
        path: PathBuf,
    },
    /// AppRole: `POST /v1/auth/<mount>/login` with `role_id` and `secret_id`.
    AppRole {
        /// The auth mount, `approle` by default.
        mount: String,
        /// The role ID (an identifier, not a secret).
        role_id: String,
        /// The secret ID; `None` for roles with `bind_secret_id=false`.
        secret_id: Option<SecretString>,
    },
    /// Kubernetes: `POST /v1/auth/<mount>/login` with `role` and the service-account JWT, read
    /// from `jwt_path` at every login (projected tokens rotate).
    Kubernetes {
        /// The auth mount, `kubernetes` by default.
        mount: String,
        /// The Kubernetes auth role.
        role: String,
        /// The service-account token file.
        jwt_path: PathBuf,
    },
}

impl Kv2Auth {
    /// Token authentication.
    #[must_use]
    pub fn token(token: impl Into<SecretString>) -> Self {
        Self::Token {
            token: token.into(),
        }
    }

    /// Token authentication from a file.
    #[must_use]
    pub fn token_file(path: impl Into<PathBuf>) -> Self {
        Self::TokenFile { path: path.into() }
    }

    /// AppRole at the default `approle` mount.
    #[must_use]
    pub fn approle(role_id: impl Into<String>, secret_id: Option<SecretString>) -> Self {
        Self::AppRole {
            mount: "approle".into(),
            role_id: role_id.into(),
            secret_id,
        }
    }

    /// Kubernetes at the default `kubernetes` mount with the default JWT path.
    #[must_use]
    pub fn kubernetes(role: impl Into<String>) -> Self {
        Self::Kubernetes {
            mount: "kubernetes".into(),
            role: role.into(),
            jwt_path: DEFAULT_KUBERNETES_JWT_PATH.into(),
        }
    }

    /// Sets the auth mount of AppRole or Kubernetes (ignored for tokens).
    #[must_use]
    pub fn with_mount(mut self, new_mount: impl Into<String>) -> Self {
        if let Self::AppRole { mount, .. } | Self::Kubernetes { mount, .. } = &mut self {
            *mount = new_mount.into();
        }
        self
    }

    /// Sets the JWT path of Kubernetes (ignored otherwise).
    #[must_use]
    pub fn with_jwt_path(mut self, path: impl Into<PathBuf>) -> Self {
        if let Self::Kubernetes { jwt_path, .. } = &mut self {
            *jwt_path = path.into();
        }
        self
    }

    /// The method name used in errors and logs: `token`, `approle` or `kubernetes`.
    #[must_use]
    pub fn method(&self) -> &'static str {
        match self {
            Self::Token { .. } | Self::TokenFile { .. } => "token",
            Self::AppRole { .. } => "approle",
            Self::Kubernetes { .. } => "kubernetes",
        }
    }

    /// Whether a rejected token can be replaced by authenticating again.
    pub(crate) fn can_reauthenticate(&self) -> bool {
        !matches!(self, Self::Token { .. })
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
/// ```
#[derive(Debug, Clone)]
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

    /// Settings from the process environment; `P` is `OPENBAO` or `VAULT` (see
    /// [`Kv2Flavor::env_prefix`]). This is the one reader of these variables: `VaultClient`,
    /// `SecretsClient` (with the environment or a bootstrap file) and
    /// [`ProviderRouter`](crate::ProviderRouter) all use it. Files named by `*_SECRET_ID_FILE`
    /// are read here, CA and client-certificate files must exist here; token and JWT files are
    /// read at first use. Empty values count as unset.
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `P_URL`, else `P_ADDR` (else `BAO_ADDR` for OpenBao) | server address (required) |
    /// | `P_TOKEN` (else `BAO_TOKEN` for OpenBao), `P_TOKEN_FILE` | token auth (the default method; the token wins when both are set) |
    /// | `P_AUTH_METHOD` | `token`, `approle` or `kubernetes` (`k8s`) |
    /// | `P_AUTH_MOUNT` | auth mount for AppRole/Kubernetes |
    /// | `P_ROLE_ID`, `P_SECRET_ID` or `P_SECRET_ID_FILE` | AppRole |
    /// | `P_KUBERNETES_ROLE`, `P_KUBERNETES_JWT_FILE` | Kubernetes |
    /// | `T_NAMESPACE` | `X-Vault-Namespace` |
    /// | `T_CACERT`, `T_CLIENT_CERT`, `T_CLIENT_KEY` | TLS files (PEM); the CA bundle is the only trust root |
    /// | `T_CACERT_MODE` | `replace` (default) or `append` (also trust the webpki roots) |
    /// | `T_TIMEOUT` | seconds per attempt, fractions allowed, at most 3600 |
    /// | `T_VERIFY_SSL` | `true`/`false`, or the path of a CA bundle |
    /// | `T_SKIP_VERIFY` | `true` is `T_VERIFY_SSL=false` (a contradicting pair is refused) |
    /// | `T_RETRY_ATTEMPTS`, `T_RETRY_BASE_DELAY_MS`, `T_RETRY_MAX_DELAY_MS` | retries (1–100 attempts, delays up to 1 h) |
    /// | `T_MAX_BODY_BYTES` | response cap (1 B – 1 GiB) |
    /// | `T_ALLOW_INSECURE_HTTP` | plain HTTP to non-loopback hosts |
    /// | `ENVIRONMENT`, `SECRETS_ALLOW_INSECURE_TLS` | `skip_verify` needs a development environment ([`INSECURE_TLS_ENVIRONMENTS`](Self::INSECURE_TLS_ENVIRONMENTS)) or `SECRETS_ALLOW_INSECURE_TLS=true` |
    ///
    /// `T_` is a tuning variable: `P_X`, else `VAULT_X` (the original SDK's names). For OpenBao
    /// the `VAULT_X` fallback applies only while no HashiCorp server is configured
    /// (`VAULT_URL`/`VAULT_ADDR` unset), as those variables then belong to that server;
    /// `VAULT_TIMEOUT` and `VAULT_VERIFY_SSL` always apply, as in the original SDK.
    ///
    /// # Errors
    /// `CONFIG` naming the first missing or invalid variable (never its value).
    pub fn from_env(flavor: Kv2Flavor) -> Result<Self, ProviderError> {
        Self::from_lookup(flavor, |name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup` (a test's map, a
    /// config store).
    ///
    /// # Errors
    /// `CONFIG` naming the first missing or invalid variable.
    pub fn from_lookup(
        flavor: Kv2Flavor,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ProviderError> {
        let reader = Reader::new(flavor, &lookup);
        let address = Self::address_from_lookup(flavor, &lookup).ok_or_else(|| {
            ProviderError::config(
                flavor.name(),
                format!("{}_URL is not set", flavor.env_prefix()),
            )
        })?;
        let auth = reader.auth()?;
        Self::new(flavor, address, auth).tuned_by_lookup(&lookup)
    }

    /// The server address `lookup` configures for `flavor` (`P_URL`, else `P_ADDR`, else
    /// `BAO_ADDR` for OpenBao), trimmed; `None` when none is set. A client uses it to decide
    /// whether a flavor is configured at all.
    pub fn address_from_lookup(
        flavor: Kv2Flavor,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Option<String> {
        address_from(flavor, &lookup)
    }

    /// Applies the tuning variables of [`from_lookup`](Self::from_lookup) (namespace, TLS
    /// files, verification, timeout, retries, body cap, insecure HTTP, `ENVIRONMENT`,
    /// `SECRETS_ALLOW_INSECURE_TLS`) to these settings: a variable that is set replaces the
    /// field, one that is not leaves it. Address and auth are kept, so a bootstrap file's
    /// address and login get the same tuning as the environment's.
    ///
    /// # Errors
    /// `CONFIG` naming the first invalid variable.
    pub fn tuned_by_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ProviderError> {
        Reader::new(self.flavor, &lookup).tune(&mut self)?;
        Ok(self)
    }

    /// Whether [`skip_verify`](Self::skip_verify) may be used: the environment (this config's,
    /// else the process's `ENVIRONMENT`) is one of [`INSECURE_TLS_ENVIRONMENTS`](Self::INSECURE_TLS_ENVIRONMENTS), or
    /// [`allow_insecure_tls`](Self::allow_insecure_tls) is set. An unset or unknown
    /// environment counts as production.
    #[must_use]
    pub fn insecure_tls_allowed(&self) -> bool {
        if self.allow_insecure_tls {
            return true;
        }
        let environment = self
            .environment
            .clone()
            .or_else(|| std::env::var("ENVIRONMENT").ok());
        environment.is_some_and(|e| is_development(&e))
    }

    /// `CONFIG` when `skip_verify` is set but not [allowed](Self::insecure_tls_allowed).
    pub(crate) fn check_insecure_tls(&self) -> Result<(), ProviderError> {
        if self.skip_verify && !self.insecure_tls_allowed() {
            return Err(ProviderError::config(
                self.flavor.name(),
                INSECURE_TLS_REFUSED.to_owned(),
            ));
        }
        Ok(())
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

/// Secret-ID files larger than this are refused (a secret ID is 36 bytes).
const MAX_SECRET_ID_FILE_BYTES: u64 = 64 * 1024;

const INSECURE_TLS_REFUSED: &str = "skip_verify is refused unless ENVIRONMENT names a development \
     environment (dev, development, test, local, ci) or SECRETS_ALLOW_INSECURE_TLS=true";

fn is_development(environment: &str) -> bool {
    let environment = environment.trim();
    Kv2Config::INSECURE_TLS_ENVIRONMENTS
        .iter()
        .any(|d| d.eq_ignore_ascii_case(environment))
}

/// A variable that is set: its name (for messages) and trimmed, non-empty value.
struct Setting {
    name: String,
    value: String,
}

/// Reads one flavor's variables; every message names the variable that was read.
struct Reader<'a, L> {
    flavor: Kv2Flavor,
    lookup: &'a L,
    /// Whether `VAULT_X` may stand in for `OPENBAO_X` tuning variables.
    vault_fallback: bool,
}

impl<'a, L: Fn(&str) -> Option<String>> Reader<'a, L> {
    fn new(flavor: Kv2Flavor, lookup: &'a L) -> Self {
        let vault_fallback =
            flavor == Kv2Flavor::HashiCorp || address_from(Kv2Flavor::HashiCorp, lookup).is_none();
        Self {
            flavor,
            lookup,
            vault_fallback,
        }
    }

    fn provider(&self) -> &'static str {
        self.flavor.name()
    }

    fn named(&self, name: String) -> Option<Setting> {
        let value = (self.lookup)(&name)?.trim().to_owned();
        (!value.is_empty()).then_some(Setting { name, value })
    }

    /// `P_suffix`.
    fn own(&self, suffix: &str) -> Option<Setting> {
        self.named(format!("{}_{suffix}", self.flavor.env_prefix()))
    }

    /// `P_suffix`, else (for OpenBao) the `bao` CLI's `BAO_suffix` for the TLS and namespace
    /// settings it shares with `BAO_ADDR`, else `VAULT_suffix` where the fallback applies.
    fn tuning(&self, suffix: &str) -> Option<Setting> {
        self.own(suffix)
            .or_else(|| {
                (self.flavor == Kv2Flavor::OpenBao && BAO_CLI_SETTINGS.contains(&suffix))
                    .then(|| self.named(format!("BAO_{suffix}")))
                    .flatten()
            })
            .or_else(|| {
                self.vault_fallback
                    .then(|| self.named(format!("VAULT_{suffix}")))
                    .flatten()
            })
    }

    /// `P_suffix`, else `VAULT_suffix` always (the original SDK's shared names).
    fn shared(&self, suffix: &str) -> Option<Setting> {
        self.own(suffix)
            .or_else(|| self.named(format!("VAULT_{suffix}")))
    }

    fn own_name(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.flavor.env_prefix())
    }

    fn invalid(&self, name: &str, what: &str) -> ProviderError {
        ProviderError::config(self.provider(), format!("{name} {what}"))
    }

    fn auth(&self) -> Result<Kv2Auth, ProviderError> {
        let method = self
            .own("AUTH_METHOD")
            .map_or_else(|| "token".to_owned(), |m| m.value.to_ascii_lowercase());
        let auth = match method.as_str() {
            "token" => {
                let token = self.own("TOKEN").or_else(|| {
                    (self.flavor == Kv2Flavor::OpenBao)
                        .then(|| self.named("BAO_TOKEN".into()))
                        .flatten()
                });
                match (token, self.own("TOKEN_FILE")) {
                    (Some(token), _) => Kv2Auth::token(token.value),
                    (None, Some(path)) => Kv2Auth::token_file(path.value),
                    (None, None) => {
                        let token = self.own_name("TOKEN");
                        let file = self.own_name("TOKEN_FILE");
                        return Err(self.invalid(&token, &format!("(or {file}) is not set")));
                    }
                }
            }
            "approle" => {
                let role_id = self
                    .own("ROLE_ID")
                    .ok_or_else(|| self.invalid(&self.own_name("ROLE_ID"), "is not set"))?;
                let secret_id = match (self.own("SECRET_ID"), self.own("SECRET_ID_FILE")) {
                    (Some(id), _) => Some(SecretString::from(id.value)),
                    (None, Some(file)) => Some(self.secret_id_file(&file)?),
                    (None, None) => None,
                };
                let auth = Kv2Auth::approle(role_id.value, secret_id);
                match self.own("AUTH_MOUNT") {
                    Some(mount) => auth.with_mount(mount.value.trim_matches('/')),
                    None => auth,
                }
            }
            "kubernetes" | "k8s" => {
                let role = self
                    .own("KUBERNETES_ROLE")
                    .ok_or_else(|| self.invalid(&self.own_name("KUBERNETES_ROLE"), "is not set"))?;
                let mut auth = Kv2Auth::kubernetes(role.value);
                if let Some(mount) = self.own("AUTH_MOUNT") {
                    auth = auth.with_mount(mount.value.trim_matches('/'));
                }
                if let Some(path) = self.own("KUBERNETES_JWT_FILE") {
                    auth = auth.with_jwt_path(path.value);
                }
                auth
            }
            _ => {
                return Err(self.invalid(
                    &self.own_name("AUTH_METHOD"),
                    "must be token, approle or kubernetes",
                ));
            }
        };
        if let Kv2Auth::AppRole { mount, .. } | Kv2Auth::Kubernetes { mount, .. } = &auth
            && mount.is_empty()
        {
            return Err(self.invalid(&self.own_name("AUTH_MOUNT"), "must name a mount"));
        }
        Ok(auth)
    }

    fn secret_id_file(&self, file: &Setting) -> Result<SecretString, ProviderError> {
        use std::io::Read as _;
        let unreadable = |e: std::io::Error| ProviderError::Config {
            provider: self.provider(),
            reason: format!("{} is unreadable", file.name),
            source: Some(Box::new(e)),
        };
        let mut bytes = zeroize::Zeroizing::new(Vec::new());
        std::fs::File::open(&file.value)
            .and_then(|f| f.take(MAX_SECRET_ID_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(unreadable)?;
        if bytes.len() as u64 > MAX_SECRET_ID_FILE_BYTES {
            return Err(self.invalid(&file.name, "is larger than 64 KiB"));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| self.invalid(&file.name, "is not UTF-8"))?
            .trim();
        if text.is_empty() {
            return Err(self.invalid(&file.name, "is empty"));
        }
        Ok(SecretString::from(text))
    }

    /// A path that must name an existing file now (TLS files are read when the provider is
    /// built; naming the variable here beats a later "unreadable CA bundle").
    fn file(&self, setting: &Setting) -> Result<PathBuf, ProviderError> {
        let path = PathBuf::from(&setting.value);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(path),
            Ok(_) => Err(self.invalid(&setting.name, "does not name a file")),
            Err(e) => Err(ProviderError::Config {
                provider: self.provider(),
                reason: format!("{} names no readable file", setting.name),
                source: Some(Box::new(e)),
            }),
        }
    }

    fn boolean(&self, setting: &Setting) -> Result<bool, ProviderError> {
        parse_bool(&setting.value)
            .ok_or_else(|| self.invalid(&setting.name, "must be true or false"))
    }

    fn number(&self, suffix: &str) -> Result<Option<(String, u64)>, ProviderError> {
        self.tuning(suffix)
            .map(|s| match s.value.parse::<u64>() {
                Ok(n) => Ok((s.name, n)),
                Err(_) => Err(self.invalid(&s.name, "must be a whole number")),
            })
            .transpose()
    }

    fn delay(&self, suffix: &str) -> Result<Option<(String, Duration)>, ProviderError> {
        match self.number(suffix)? {
            Some((name, ms)) if Duration::from_millis(ms) > Kv2Config::MAX_RETRY_DELAY => {
                Err(self.invalid(&name, "must be at most 3600000 (1 h)"))
            }
            Some((name, ms)) => Ok(Some((name, Duration::from_millis(ms)))),
            None => Ok(None),
        }
    }

    fn tune(&self, config: &mut Kv2Config) -> Result<(), ProviderError> {
        if let Some(namespace) = self.tuning("NAMESPACE") {
            config.namespace = Some(namespace.value);
        }
        let cacert = self.tuning("CACERT");
        if let Some(ca) = &cacert {
            config.ca_bundle = Some(self.file(ca)?);
        }
        if let Some(mode) = self.tuning("CACERT_MODE") {
            config.ca_bundle_mode = match mode.value.to_ascii_lowercase().as_str() {
                "replace" => CaBundleMode::Replace,
                "append" => CaBundleMode::Append,
                _ => return Err(self.invalid(&mode.name, "must be replace or append")),
            };
        }
        match (self.tuning("CLIENT_CERT"), self.tuning("CLIENT_KEY")) {
            (Some(cert), Some(key)) => {
                config.client_cert = Some(ClientCert {
                    cert_path: self.file(&cert)?,
                    key_path: self.file(&key)?,
                });
            }
            (None, None) => {}
            (Some(cert), None) => {
                return Err(self.invalid(&cert.name, "is set without _CLIENT_KEY"));
            }
            (None, Some(key)) => {
                return Err(self.invalid(&key.name, "is set without _CLIENT_CERT"));
            }
        }
        if let Some(timeout) = self.shared("TIMEOUT") {
            config.timeout = timeout
                .value
                .parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .filter(|d| !d.is_zero() && *d <= Kv2Config::MAX_TIMEOUT)
                .ok_or_else(|| {
                    self.invalid(
                        &timeout.name,
                        "must be a positive number of seconds, at most 3600",
                    )
                })?;
        }
        // `P_SKIP_VERIFY` (Vault's CLI name) says the same as `P_VERIFY_SSL=false`.
        let skip = self.tuning("SKIP_VERIFY");
        if let Some(skip) = &skip {
            let on = self.boolean(skip)?;
            let verify = self.shared("VERIFY_SSL");
            if let Some(verify) = verify.as_ref().filter(|v| parse_bool(&v.value) == Some(on)) {
                return Err(self.invalid(&skip.name, &format!("contradicts {}", verify.name)));
            }
            if on {
                if let Some(ca) = &cacert {
                    return Err(self.invalid(
                        &skip.name,
                        &format!("turns verification off, which conflicts with {}", ca.name),
                    ));
                }
                config.skip_verify = true;
            }
        }
        if let Some(verify) = self.shared("VERIFY_SSL") {
            match parse_bool(&verify.value) {
                Some(true) => config.skip_verify = false,
                Some(false) => {
                    if let Some(ca) = &cacert {
                        return Err(self.invalid(
                            &verify.name,
                            &format!("turns verification off, which conflicts with {}", ca.name),
                        ));
                    }
                    config.skip_verify = true;
                }
                // As in `requests`' `verify=`: a path is a CA bundle to verify with. An
                // explicit CACERT wins.
                None => {
                    let path = self.file(&verify).map_err(|_| {
                        self.invalid(
                            &verify.name,
                            "must be true, false or the path of a CA bundle file",
                        )
                    })?;
                    if cacert.is_none() {
                        config.ca_bundle = Some(path);
                    }
                }
            }
        }
        if let Some((name, attempts)) = self.number("RETRY_ATTEMPTS")? {
            config.retry.attempts = u32::try_from(attempts)
                .ok()
                .filter(|a| (1..=Kv2Config::MAX_RETRY_ATTEMPTS).contains(a))
                .ok_or_else(|| self.invalid(&name, "must be between 1 and 100"))?;
        }
        let base = self.delay("RETRY_BASE_DELAY_MS")?;
        let max = self.delay("RETRY_MAX_DELAY_MS")?;
        if let Some((_, delay)) = &base {
            config.retry.base_delay = *delay;
        }
        if let Some((_, delay)) = &max {
            config.retry.max_delay = *delay;
        }
        if config.retry.base_delay > config.retry.max_delay {
            // Name the variable that was set (the other is at its default).
            return Err(match (base, max) {
                (Some((name, _)), _) => self.invalid(&name, "must not exceed _RETRY_MAX_DELAY_MS"),
                (None, Some((name, _))) => self.invalid(
                    &name,
                    "must not be below _RETRY_BASE_DELAY_MS (default 100)",
                ),
                (None, None) => self.invalid("retry", "base delay exceeds the maximum delay"),
            });
        }
        if let Some((name, max)) = self.number("MAX_BODY_BYTES")? {
            config.max_body_bytes = usize::try_from(max)
                .ok()
                .filter(|m| (1..=Kv2Config::MAX_MAX_BODY_BYTES).contains(m))
                .ok_or_else(|| self.invalid(&name, "must be between 1 and 1073741824 (1 GiB)"))?;
        }
        if let Some(allow) = self.tuning("ALLOW_INSECURE_HTTP") {
            config.allow_insecure_http = self.boolean(&allow)?;
        }
        if let Some(environment) = self.named("ENVIRONMENT".into()) {
            config.environment = Some(environment.value);
        }
        if let Some(allow) = self.named(Kv2Config::ALLOW_INSECURE_TLS_ENV.into()) {
            config.allow_insecure_tls = self.boolean(&allow)?;
        }
        if config.skip_verify && !config.insecure_tls_allowed() {
            let name = skip
                .filter(|s| parse_bool(&s.value) == Some(true))
                .or_else(|| self.shared("VERIFY_SSL"))
                .map_or_else(|| "skip_verify".to_owned(), |s| s.name);
            return Err(self.invalid(
                &name,
                "turns verification off, which is refused unless ENVIRONMENT names a \
                 development environment (dev, development, test, local, ci) or \
                 SECRETS_ALLOW_INSECURE_TLS=true",
            ));
        }
        Ok(())
    }
}

/// The `bao` CLI's own names read for OpenBao beside `BAO_ADDR` and `BAO_TOKEN`: a shell set up
/// for `bao` (`BAO_ADDR`, `BAO_CACERT`, …) configures the client the same way.
const BAO_CLI_SETTINGS: [&str; 5] = [
    "CACERT",
    "CLIENT_CERT",
    "CLIENT_KEY",
    "NAMESPACE",
    "SKIP_VERIFY",
];

/// `P_URL`, else `P_ADDR` (and `BAO_ADDR` for OpenBao, as the `bao` CLI reads it).
pub(crate) fn address_from(
    flavor: Kv2Flavor,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let prefix = flavor.env_prefix();
    let mut names = vec![format!("{prefix}_URL"), format!("{prefix}_ADDR")];
    if flavor == Kv2Flavor::OpenBao {
        names.push("BAO_ADDR".into());
    }
    names
        .iter()
        .filter_map(|n| lookup(n))
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    /// The reason of a `CONFIG` error, or a description of what came instead.
    fn reason(result: Result<Kv2Config, ProviderError>) -> String {
        match result {
            Err(ProviderError::Config { reason, .. }) => reason,
            Err(other) => format!("not CONFIG: {}", other.code()),
            Ok(_) => "accepted".into(),
        }
    }

    const BASE: [(&str, &str); 2] = [("OPENBAO_URL", "https://bao:8200"), ("OPENBAO_TOKEN", "t")];

    fn with_base<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut vars = BASE.to_vec();
        vars.extend_from_slice(extra);
        vars
    }

    #[test]
    fn reads_prefixed_names_with_vault_fallbacks() -> Result<(), ProviderError> {
        let config = Kv2Config::from_lookup(
            Kv2Flavor::OpenBao,
            lookup(&[
                ("OPENBAO_URL", "https://bao:8200"),
                ("OPENBAO_TOKEN", "s.canary"),
                ("OPENBAO_NAMESPACE", "team"),
                ("VAULT_TIMEOUT", "2.5"),
                ("VAULT_VERIFY_SSL", "false"),
                ("ENVIRONMENT", "dev"),
                ("OPENBAO_RETRY_ATTEMPTS", "5"),
            ]),
        )?;
        assert_eq!(config.address, "https://bao:8200");
        assert_eq!(config.namespace.as_deref(), Some("team"));
        assert_eq!(config.timeout, Duration::from_millis(2500));
        assert!(config.skip_verify);
        assert_eq!(config.retry.attempts, 5);
        assert!(matches!(config.auth, Kv2Auth::Token { .. }));
        assert!(!format!("{config:?}").contains("s.canary"));
        Ok(())
    }

    #[test]
    fn verify_ssl_path_is_a_ca_bundle_and_cacert_wins() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let (a, b) = (dir.path().join("a.pem"), dir.path().join("b.pem"));
        std::fs::write(&a, "a")?;
        std::fs::write(&b, "b")?;
        let (a_text, b_text) = (a.display().to_string(), b.display().to_string());
        let config = Kv2Config::from_lookup(
            Kv2Flavor::HashiCorp,
            lookup(&[
                ("VAULT_URL", "https://v"),
                ("VAULT_TOKEN_FILE", "/t"),
                ("VAULT_VERIFY_SSL", &a_text),
            ]),
        )?;
        assert_eq!(config.ca_bundle, Some(a.clone()));
        assert!(!config.skip_verify);
        assert!(matches!(config.auth, Kv2Auth::TokenFile { .. }));
        let both = Kv2Config::from_lookup(
            Kv2Flavor::HashiCorp,
            lookup(&[
                ("VAULT_URL", "https://v"),
                ("VAULT_TOKEN", "t"),
                ("VAULT_VERIFY_SSL", &a_text),
                ("VAULT_CACERT", &b_text),
            ]),
        )?;
        assert_eq!(both.ca_bundle, Some(b));
        Ok(())
    }

    #[test]
    fn vault_names_stand_in_for_openbao_only_without_a_vault_server() -> Result<(), ProviderError> {
        let alone = Kv2Config::from_lookup(
            Kv2Flavor::OpenBao,
            lookup(&with_base(&[
                ("VAULT_NAMESPACE", "ns"),
                ("VAULT_RETRY_ATTEMPTS", "7"),
                ("VAULT_TIMEOUT", "4"),
            ])),
        )?;
        assert_eq!(alone.namespace.as_deref(), Some("ns"));
        assert_eq!(alone.retry.attempts, 7);
        assert_eq!(alone.timeout, Duration::from_secs(4));
        let two_servers = Kv2Config::from_lookup(
            Kv2Flavor::OpenBao,
            lookup(&with_base(&[
                ("VAULT_URL", "https://vault"),
                ("VAULT_NAMESPACE", "ns"),
                ("VAULT_RETRY_ATTEMPTS", "7"),
                ("VAULT_TIMEOUT", "4"),
            ])),
        )?;
        assert_eq!(two_servers.namespace, None);
        assert_eq!(two_servers.retry.attempts, 3);
        // VAULT_TIMEOUT and VAULT_VERIFY_SSL are the original SDK's shared names.
        assert_eq!(two_servers.timeout, Duration::from_secs(4));
        // BAO_ADDR, BAO_TOKEN and BAO_CACERT, as the `bao` CLI reads them: a shell set up for
        // `bao` with VAULT_URL also set must not lose its CA.
        let ca_dir =
            tempfile::tempdir().map_err(|e| ProviderError::config("test", e.to_string()))?;
        let ca = ca_dir.path().join("ca.pem");
        std::fs::write(&ca, "not parsed here")
            .map_err(|e| ProviderError::config("test", e.to_string()))?;
        let ca_text = ca.display().to_string();
        let bao_cli = Kv2Config::from_lookup(
            Kv2Flavor::OpenBao,
            lookup(&[
                ("BAO_ADDR", "https://127.0.0.1:8200"),
                ("BAO_TOKEN", "t"),
                ("BAO_CACERT", &ca_text),
                ("BAO_NAMESPACE", "team"),
                ("VAULT_URL", "https://vault.example"),
            ]),
        )?;
        assert_eq!(bao_cli.ca_bundle.as_deref(), Some(ca.as_path()));
        assert_eq!(bao_cli.namespace.as_deref(), Some("team"));
        let cli = Kv2Config::from_lookup(
            Kv2Flavor::OpenBao,
            lookup(&[("BAO_ADDR", "http://127.0.0.1:8200"), ("BAO_TOKEN", "t")]),
        )?;
        assert_eq!(cli.address, "http://127.0.0.1:8200");
        assert!(matches!(cli.auth, Kv2Auth::Token { .. }));
        Ok(())
    }

    #[test]
    fn skip_verify_needs_a_development_environment_or_an_explicit_allow() {
        let process_environment = std::env::var("ENVIRONMENT").is_ok();
        let refused: &[&[(&str, &str)]] = &[
            &[("ENVIRONMENT", "prd")],
            &[("ENVIRONMENT", "live")],
            &[("ENVIRONMENT", "staging")],
            &[("ENVIRONMENT", "ci")],
            &[("ENVIRONMENT", "production")],
            &[("ENVIRONMENT", "Prod")],
            &[("ENVIRONMENT", "develop")],
            &[
                ("ENVIRONMENT", "prd"),
                ("SECRETS_ALLOW_INSECURE_TLS", "false"),
            ],
        ];
        for extra in refused {
            let mut vars = with_base(&[("VAULT_VERIFY_SSL", "false")]);
            vars.extend_from_slice(extra);
            let got = reason(Kv2Config::from_lookup(Kv2Flavor::OpenBao, lookup(&vars)));
            assert!(
                got.starts_with("VAULT_VERIFY_SSL turns verification off"),
                "{extra:?}: {got}"
            );
        }
        if !process_environment {
            let unset = with_base(&[("OPENBAO_VERIFY_SSL", "no")]);
            let got = reason(Kv2Config::from_lookup(Kv2Flavor::OpenBao, lookup(&unset)));
            assert!(
                got.starts_with("OPENBAO_VERIFY_SSL turns verification off"),
                "{got}"
            );
        }
        let accepted: &[&[(&str, &str)]] = &[
            &[("ENVIRONMENT", "dev")],
            &[("ENVIRONMENT", " Development ")],
            &[("ENVIRONMENT", "TEST")],
            &[("ENVIRONMENT", "local")],
            &[
                ("ENVIRONMENT", "prd"),
                ("SECRETS_ALLOW_INSECURE_TLS", "true"),
            ],
            &[("SECRETS_ALLOW_INSECURE_TLS", "1")],
        ];
        for extra in accepted {
            let mut vars = with_base(&[("VAULT_VERIFY_SSL", "false")]);
            vars.extend_from_slice(extra);
            let config = Kv2Config::from_lookup(Kv2Flavor::OpenBao, lookup(&vars));
            assert!(config.is_ok_and(|c| c.skip_verify), "{extra:?}");
        }
        let typo = with_base(&[
            ("VAULT_VERIFY_SSL", "false"),
            ("SECRETS_ALLOW_INSECURE_TLS", "ture"),
        ]);
        assert_eq!(
            reason(Kv2Config::from_lookup(Kv2Flavor::OpenBao, lookup(&typo))),
            "SECRETS_ALLOW_INSECURE_TLS must be true or false"
        );
        // Programmatic settings follow the same rule (checked again by Kv2Provider::new).
        let code = Kv2Config::new(Kv2Flavor::OpenBao, "https://b", Kv2Auth::token("t"))
            .with_skip_verify(true)
            .with_environment("staging");
        assert!(!code.insecure_tls_allowed());
        assert!(
            code.clone()
                .with_allow_insecure_tls(true)
                .insecure_tls_allowed()
        );
        assert_eq!(
            code.check_insecure_tls().err().map(|e| e.code()),
            Some("CONFIG")
        );
        assert!(code.with_environment("local").insecure_tls_allowed());
    }

    #[test]
    fn approle_secret_id_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("secret-id");
        std::fs::write(&file, "canary-secret-id\n")?;
        let path = file.display().to_string();
        let approle = |extra: &[(&'static str, &str)]| {
            let mut vars = vec![
                ("OPENBAO_URL", "http://127.0.0.1:8200"),
                ("OPENBAO_AUTH_METHOD", "approle"),
                ("OPENBAO_ROLE_ID", "r"),
            ];
            vars.extend_from_slice(extra);
            Kv2Config::from_lookup(Kv2Flavor::OpenBao, lookup(&vars))
        };
        let config = approle(&[("OPENBAO_SECRET_ID_FILE", &path)])?;
        match &config.auth {
            Kv2Auth::AppRole {
                secret_id: Some(id),
                ..
            } => {
                use secrecy::ExposeSecret;
                assert_eq!(id.expose_secret(), "canary-secret-id");
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{config:?}").contains("canary"));
        let missing = dir.path().join("missing").display().to_string();
        let got = reason(approle(&[("OPENBAO_SECRET_ID_FILE", &missing)]));
        assert_eq!(got, "OPENBAO_SECRET_ID_FILE is unreadable");
        std::fs::write(&file, " \n")?;
        assert_eq!(
            reason(approle(&[("OPENBAO_SECRET_ID_FILE", &path)])),
            "OPENBAO_SECRET_ID_FILE is empty"
        );
        let dir_path = dir.path().display().to_string();
        assert_eq!(
            reason(approle(&[("OPENBAO_SECRET_ID_FILE", &dir_path)])),
            "OPENBAO_SECRET_ID_FILE is unreadable"
        );
        // bind_secret_id=false roles have no secret ID.
        assert!(matches!(
            approle(&[])?.auth,
            Kv2Auth::AppRole {
                secret_id: None,
                ..
            }
        ));
        Ok(())
    }

    #[test]
    fn approle_and_kubernetes_from_env() -> Result<(), ProviderError> {
        let approle = Kv2Config::from_lookup(
            Kv2Flavor::OpenBao,
            lookup(&[
                ("OPENBAO_ADDR", "http://127.0.0.1:8200"),
                ("OPENBAO_AUTH_METHOD", "AppRole"),
                ("OPENBAO_ROLE_ID", "r"),
                ("OPENBAO_SECRET_ID", "s"),
                ("OPENBAO_AUTH_MOUNT", "/ar/"),
            ]),
        )?;
        assert!(
            matches!(&approle.auth, Kv2Auth::AppRole { mount, secret_id: Some(_), .. } if mount == "ar")
        );
        let k8s = Kv2Config::from_lookup(
            Kv2Flavor::OpenBao,
            lookup(&[
                ("OPENBAO_URL", "http://x"),
                ("OPENBAO_AUTH_METHOD", "kubernetes"),
                ("OPENBAO_KUBERNETES_ROLE", "app"),
            ]),
        )?;
        assert!(
            matches!(&k8s.auth, Kv2Auth::Kubernetes { mount, jwt_path, .. } if mount == "kubernetes" && jwt_path.ends_with("token"))
        );
        Ok(())
    }

    #[test]
    fn tuning_applies_to_given_address_and_auth() -> Result<(), ProviderError> {
        let config = Kv2Config::new(Kv2Flavor::OpenBao, "https://file", Kv2Auth::kubernetes("r"))
            .with_namespace("from-file")
            .tuned_by_lookup(lookup(&[
                ("OPENBAO_URL", "https://env"),
                ("OPENBAO_TOKEN", "t"),
                ("VAULT_TIMEOUT", "2"),
                ("OPENBAO_MAX_BODY_BYTES", "4096"),
            ]))?;
        assert_eq!(config.address, "https://file");
        assert!(matches!(config.auth, Kv2Auth::Kubernetes { .. }));
        assert_eq!(config.namespace.as_deref(), Some("from-file"));
        assert_eq!(config.timeout, Duration::from_secs(2));
        assert_eq!(config.max_body_bytes, 4096);
        Ok(())
    }

    #[test]
    fn invalid_settings_name_the_variable_and_never_the_value() -> Result<(), std::io::Error> {
        let dir = tempfile::tempdir()?;
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x")?;
        let ca = ca.display().to_string();
        let dir_text = dir.path().display().to_string();
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![], "OPENBAO_URL is not set"),
            (vec![("OPENBAO_URL", " ")], "OPENBAO_URL is not set"),
            (
                vec![("OPENBAO_URL", "http://x")],
                "OPENBAO_TOKEN (or OPENBAO_TOKEN_FILE) is not set",
            ),
            (
                vec![("OPENBAO_URL", "http://x"), ("OPENBAO_AUTH_METHOD", "ldap")],
                "OPENBAO_AUTH_METHOD must be token, approle or kubernetes",
            ),
            (
                vec![
                    ("OPENBAO_URL", "http://x"),
                    ("OPENBAO_AUTH_METHOD", "approle"),
                ],
                "OPENBAO_ROLE_ID is not set",
            ),
            (
                vec![
                    ("OPENBAO_URL", "http://x"),
                    ("OPENBAO_AUTH_METHOD", "kubernetes"),
                    ("OPENBAO_KUBERNETES_ROLE", "r"),
                    ("OPENBAO_AUTH_MOUNT", "//"),
                ],
                "OPENBAO_AUTH_MOUNT must name a mount",
            ),
            (
                with_base(&[("VAULT_TIMEOUT", "soon-canary")]),
                "VAULT_TIMEOUT must be",
            ),
            (
                with_base(&[("OPENBAO_TIMEOUT", "-1")]),
                "OPENBAO_TIMEOUT must be",
            ),
            (
                with_base(&[("OPENBAO_TIMEOUT", "0")]),
                "OPENBAO_TIMEOUT must be",
            ),
            (
                with_base(&[("OPENBAO_TIMEOUT", "3601")]),
                "OPENBAO_TIMEOUT must be",
            ),
            (
                with_base(&[("OPENBAO_TIMEOUT", "1e300")]),
                "OPENBAO_TIMEOUT must be",
            ),
            (
                with_base(&[("OPENBAO_TIMEOUT", "NaN")]),
                "OPENBAO_TIMEOUT must be",
            ),
            (
                with_base(&[("OPENBAO_TIMEOUT", "inf")]),
                "OPENBAO_TIMEOUT must be",
            ),
            (
                with_base(&[("VAULT_VERIFY_SSL", "flase")]),
                "VAULT_VERIFY_SSL must be true, false or the path of a CA bundle file",
            ),
            (
                with_base(&[("VAULT_VERIFY_SSL", &dir_text)]),
                "VAULT_VERIFY_SSL must be true, false or the path of a CA bundle file",
            ),
            (
                with_base(&[
                    ("VAULT_VERIFY_SSL", "false"),
                    ("OPENBAO_CACERT", &ca),
                    ("ENVIRONMENT", "dev"),
                ]),
                "VAULT_VERIFY_SSL turns verification off, which conflicts with OPENBAO_CACERT",
            ),
            (
                with_base(&[("VAULT_SKIP_VERIFY", "true"), ("VAULT_VERIFY_SSL", "true")]),
                "VAULT_SKIP_VERIFY contradicts VAULT_VERIFY_SSL",
            ),
            (
                with_base(&[("OPENBAO_SKIP_VERIFY", "maybe")]),
                "OPENBAO_SKIP_VERIFY must be true or false",
            ),
            (
                with_base(&[("OPENBAO_SKIP_VERIFY", "true"), ("ENVIRONMENT", "prd")]),
                "OPENBAO_SKIP_VERIFY turns verification off, which is refused",
            ),
            (
                with_base(&[("OPENBAO_CACERT", "/nonexistent/canary.pem")]),
                "OPENBAO_CACERT names no readable file",
            ),
            (
                with_base(&[("OPENBAO_CACERT", &dir_text)]),
                "OPENBAO_CACERT does not name a file",
            ),
            (
                with_base(&[("OPENBAO_CACERT_MODE", "merge")]),
                "OPENBAO_CACERT_MODE must be replace or append",
            ),
            (
                with_base(&[("OPENBAO_CLIENT_CERT", &ca)]),
                "OPENBAO_CLIENT_CERT is set without _CLIENT_KEY",
            ),
            (
                with_base(&[("VAULT_CLIENT_KEY", &ca)]),
                "VAULT_CLIENT_KEY is set without _CLIENT_CERT",
            ),
            (
                with_base(&[
                    ("OPENBAO_CLIENT_CERT", &ca),
                    ("OPENBAO_CLIENT_KEY", "/nonexistent"),
                ]),
                "OPENBAO_CLIENT_KEY names no readable file",
            ),
            (
                with_base(&[("OPENBAO_RETRY_ATTEMPTS", "x")]),
                "OPENBAO_RETRY_ATTEMPTS must be a whole number",
            ),
            (
                with_base(&[("OPENBAO_RETRY_ATTEMPTS", "0")]),
                "OPENBAO_RETRY_ATTEMPTS must be between 1 and 100",
            ),
            (
                with_base(&[("OPENBAO_RETRY_ATTEMPTS", "101")]),
                "OPENBAO_RETRY_ATTEMPTS must be between 1 and 100",
            ),
            (
                with_base(&[("OPENBAO_RETRY_ATTEMPTS", "18446744073709551616")]),
                "OPENBAO_RETRY_ATTEMPTS must be a whole number",
            ),
            (
                with_base(&[("OPENBAO_RETRY_MAX_DELAY_MS", "18446744073709551615")]),
                "OPENBAO_RETRY_MAX_DELAY_MS must be at most 3600000 (1 h)",
            ),
            (
                with_base(&[("OPENBAO_RETRY_BASE_DELAY_MS", "5000")]),
                "OPENBAO_RETRY_BASE_DELAY_MS must not exceed _RETRY_MAX_DELAY_MS",
            ),
            (
                with_base(&[("VAULT_RETRY_MAX_DELAY_MS", "50")]),
                "VAULT_RETRY_MAX_DELAY_MS must not be below _RETRY_BASE_DELAY_MS",
            ),
            (
                with_base(&[("OPENBAO_MAX_BODY_BYTES", "0")]),
                "OPENBAO_MAX_BODY_BYTES must be between 1 and 1073741824 (1 GiB)",
            ),
            (
                with_base(&[("OPENBAO_MAX_BODY_BYTES", "18446744073709551615")]),
                "OPENBAO_MAX_BODY_BYTES must be between 1 and 1073741824 (1 GiB)",
            ),
            (
                with_base(&[("OPENBAO_ALLOW_INSECURE_HTTP", "yes please")]),
                "OPENBAO_ALLOW_INSECURE_HTTP must be true or false",
            ),
        ];
        for (vars, want) in cases {
            let got = reason(Kv2Config::from_lookup(Kv2Flavor::OpenBao, lookup(&vars)));
            assert!(got.starts_with(want), "{vars:?}: {got}");
            assert!(!got.contains("canary"), "{got}");
        }
        // Empty values count as unset: defaults, not errors.
        let empty = Kv2Config::from_lookup(
            Kv2Flavor::OpenBao,
            lookup(&with_base(&[
                ("VAULT_TIMEOUT", ""),
                ("OPENBAO_RETRY_ATTEMPTS", " "),
            ])),
        );
        assert!(empty.is_ok_and(|c| c.timeout == DEFAULT_TIMEOUT && c.retry.attempts == 3));
        Ok(())
    }
}
