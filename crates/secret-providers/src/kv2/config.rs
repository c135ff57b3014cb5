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

/// What a configured CA bundle does to the trusted roots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaBundleMode {
    /// Trust only the bundle, as Vault's `VAULT_CACERT` does (the default).
    #[default]
    Replace,
    /// Trust the bundle and the built-in webpki roots.
    Append,
}

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
    /// Accept any server certificate. Refused when the environment is `production`/`prod`.
    pub skip_verify: bool,
    /// Allow plain `http://` to a host that is not loopback.
    pub allow_insecure_http: bool,
    /// The deployment environment (`ENVIRONMENT`); `None` reads `ENVIRONMENT` at
    /// [`Kv2Provider::new`](crate::Kv2Provider::new).
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

    /// Turns certificate verification off (refused in production).
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

    /// Settings from the process environment; `P` is `OPENBAO` or `VAULT` (see
    /// [`Kv2Flavor::env_prefix`]). Files named by `*_SECRET_ID_FILE` are read here; token and
    /// JWT files at first use.
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `P_URL` (or `P_ADDR`) | server address (required) |
    /// | `P_TOKEN`, `P_TOKEN_FILE` | token auth (the default method) |
    /// | `P_AUTH_METHOD` | `token`, `approle` or `kubernetes` |
    /// | `P_AUTH_MOUNT` | auth mount for AppRole/Kubernetes |
    /// | `P_ROLE_ID`, `P_SECRET_ID`, `P_SECRET_ID_FILE` | AppRole |
    /// | `P_KUBERNETES_ROLE`, `P_KUBERNETES_JWT_FILE` | Kubernetes |
    /// | `P_NAMESPACE` | `X-Vault-Namespace` |
    /// | `P_CACERT`, `P_CLIENT_CERT`, `P_CLIENT_KEY` | TLS files (PEM); the CA bundle is the only trust root |
    /// | `P_CACERT_MODE` | `replace` (default) or `append` (also trust the webpki roots) |
    /// | `P_TIMEOUT`, else `VAULT_TIMEOUT` | seconds, fractions allowed |
    /// | `P_VERIFY_SSL`, else `VAULT_VERIFY_SSL` | `true`/`false`, or a CA bundle path |
    /// | `P_RETRY_ATTEMPTS`, `P_RETRY_BASE_DELAY_MS`, `P_RETRY_MAX_DELAY_MS` | retries |
    /// | `P_MAX_BODY_BYTES` | response cap |
    /// | `P_ALLOW_INSECURE_HTTP` | plain HTTP to non-loopback hosts |
    /// | `ENVIRONMENT` | `production`/`prod` refuses `skip_verify` |
    ///
    /// # Errors
    /// `CONFIG` naming the first missing or invalid variable.
    pub fn from_env(flavor: Kv2Flavor) -> Result<Self, ProviderError> {
        Self::from_lookup(flavor, |name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup` (e.g. a bootstrap
    /// file's map, or a test's).
    ///
    /// # Errors
    /// `CONFIG` naming the first missing or invalid variable.
    pub fn from_lookup(
        flavor: Kv2Flavor,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ProviderError> {
        let provider = flavor.name();
        let prefix = flavor.env_prefix();
        let var = |suffix: &str| {
            lookup(&format!("{prefix}_{suffix}"))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        // Shared settings fall back to the original SDK's VAULT_* names.
        let shared = |suffix: &str| {
            var(suffix)
                .or_else(|| lookup(&format!("VAULT_{suffix}")).filter(|v| !v.trim().is_empty()))
        };
        let invalid = |name: &str, what: &str| {
            ProviderError::config(provider, format!("{prefix}_{name} {what}"))
        };

        let address = address_from(flavor, &lookup)
            .ok_or_else(|| ProviderError::config(provider, format!("{prefix}_URL is not set")))?;

        let method = var("AUTH_METHOD")
            .unwrap_or_else(|| "token".into())
            .to_ascii_lowercase();
        let auth = match method.as_str() {
            "token" => match (var("TOKEN"), var("TOKEN_FILE")) {
                (Some(token), _) => Kv2Auth::token(token),
                (None, Some(path)) => Kv2Auth::token_file(path),
                (None, None) => {
                    return Err(ProviderError::config(
                        provider,
                        format!("neither {prefix}_TOKEN nor {prefix}_TOKEN_FILE is set"),
                    ));
                }
            },
            "approle" => {
                let role_id = var("ROLE_ID").ok_or_else(|| invalid("ROLE_ID", "is not set"))?;
                let secret_id = match (var("SECRET_ID"), var("SECRET_ID_FILE")) {
                    (Some(id), _) => Some(SecretString::from(id)),
                    (None, Some(path)) => {
                        let text =
                            std::fs::read_to_string(&path).map_err(|e| ProviderError::Config {
                                provider,
                                reason: format!("{prefix}_SECRET_ID_FILE is unreadable"),
                                source: Some(Box::new(e)),
                            })?;
                        let text = zeroize::Zeroizing::new(text);
                        Some(SecretString::from(text.trim()))
                    }
                    (None, None) => None,
                };
                let auth = Kv2Auth::approle(role_id, secret_id);
                match var("AUTH_MOUNT") {
                    Some(mount) => auth.with_mount(mount),
                    None => auth,
                }
            }
            "kubernetes" | "k8s" => {
                let role = var("KUBERNETES_ROLE")
                    .ok_or_else(|| invalid("KUBERNETES_ROLE", "is not set"))?;
                let mut auth = Kv2Auth::kubernetes(role);
                if let Some(mount) = var("AUTH_MOUNT") {
                    auth = auth.with_mount(mount);
                }
                if let Some(path) = var("KUBERNETES_JWT_FILE") {
                    auth = auth.with_jwt_path(path);
                }
                auth
            }
            _ => {
                return Err(invalid(
                    "AUTH_METHOD",
                    "must be token, approle or kubernetes",
                ));
            }
        };

        let mut config = Self::new(flavor, address, auth);
        config.namespace = var("NAMESPACE");
        config.ca_bundle = var("CACERT").map(PathBuf::from);
        if let Some(mode) = var("CACERT_MODE") {
            config.ca_bundle_mode = match mode.to_ascii_lowercase().as_str() {
                "replace" => CaBundleMode::Replace,
                "append" => CaBundleMode::Append,
                _ => return Err(invalid("CACERT_MODE", "must be replace or append")),
            };
        }
        config.client_cert = match (var("CLIENT_CERT"), var("CLIENT_KEY")) {
            (Some(cert), Some(key)) => Some(ClientCert {
                cert_path: cert.into(),
                key_path: key.into(),
            }),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "CLIENT_CERT",
                    "and _CLIENT_KEY must be set together",
                ));
            }
        };
        if let Some(timeout) = shared("TIMEOUT") {
            config.timeout = timeout
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| invalid("TIMEOUT", "must be a positive number of seconds"))?;
        }
        if let Some(verify) = shared("VERIFY_SSL") {
            match parse_bool(&verify) {
                Some(verify) => config.skip_verify = !verify,
                // As in `requests`' `verify=`: a path is a CA bundle to verify with.
                None => {
                    config.ca_bundle = config
                        .ca_bundle
                        .or_else(|| Some(PathBuf::from(verify.trim())))
                }
            }
        }
        let number = |name: &str| -> Result<Option<u64>, ProviderError> {
            var(name)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| invalid(name, "must be a whole number"))
                })
                .transpose()
        };
        if let Some(attempts) = number("RETRY_ATTEMPTS")? {
            config.retry.attempts =
                u32::try_from(attempts).map_err(|_| invalid("RETRY_ATTEMPTS", "is too large"))?;
        }
        if let Some(ms) = number("RETRY_BASE_DELAY_MS")? {
            config.retry.base_delay = Duration::from_millis(ms);
        }
        if let Some(ms) = number("RETRY_MAX_DELAY_MS")? {
            config.retry.max_delay = Duration::from_millis(ms);
        }
        if let Some(max) = number("MAX_BODY_BYTES")? {
            config.max_body_bytes =
                usize::try_from(max).map_err(|_| invalid("MAX_BODY_BYTES", "is too large"))?;
        }
        if let Some(allow) = var("ALLOW_INSECURE_HTTP") {
            config.allow_insecure_http = parse_bool(&allow)
                .ok_or_else(|| invalid("ALLOW_INSECURE_HTTP", "must be true or false"))?;
        }
        config.environment = lookup("ENVIRONMENT");
        Ok(config)
    }
}

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

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
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
    fn verify_ssl_path_is_a_ca_bundle() -> Result<(), ProviderError> {
        let config = Kv2Config::from_lookup(
            Kv2Flavor::HashiCorp,
            lookup(&[
                ("VAULT_URL", "https://v"),
                ("VAULT_TOKEN_FILE", "/t"),
                ("VAULT_VERIFY_SSL", "/etc/ca.pem"),
            ]),
        )?;
        assert_eq!(config.ca_bundle, Some(PathBuf::from("/etc/ca.pem")));
        assert!(!config.skip_verify);
        assert!(matches!(config.auth, Kv2Auth::TokenFile { .. }));
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
                ("OPENBAO_AUTH_MOUNT", "ar"),
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
    fn invalid_settings_are_config_errors() {
        let cases: &[&[(&str, &str)]] = &[
            &[],
            &[("OPENBAO_URL", "http://x")],
            &[
                ("OPENBAO_URL", "http://x"),
                ("OPENBAO_TOKEN", "t"),
                ("VAULT_TIMEOUT", "soon"),
            ],
            &[
                ("OPENBAO_URL", "http://x"),
                ("OPENBAO_TOKEN", "t"),
                ("OPENBAO_TIMEOUT", "-1"),
            ],
            &[
                ("OPENBAO_URL", "http://x"),
                ("OPENBAO_TOKEN", "t"),
                ("OPENBAO_RETRY_ATTEMPTS", "x"),
            ],
            &[("OPENBAO_URL", "http://x"), ("OPENBAO_AUTH_METHOD", "ldap")],
            &[
                ("OPENBAO_URL", "http://x"),
                ("OPENBAO_AUTH_METHOD", "approle"),
            ],
            &[
                ("OPENBAO_URL", "http://x"),
                ("OPENBAO_TOKEN", "t"),
                ("OPENBAO_CLIENT_CERT", "/c"),
            ],
        ];
        for vars in cases {
            let result = Kv2Config::from_lookup(Kv2Flavor::OpenBao, lookup(vars));
            assert_eq!(result.err().map(|e| e.code()), Some("CONFIG"), "{vars:?}");
        }
    }
}
