//! [`BootstrapConfig`]: how a service reaches its vault, loaded before any vault is reachable.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use crate::Error;

/// The well-known bootstrap file, as written by a Vault/OpenBao agent sidecar.
pub const DEFAULT_BOOTSTRAP_PATH: &str = "/vault/secrets/bootstrap.json";
/// The environment variable naming a bootstrap file.
pub const BOOTSTRAP_PATH_ENV: &str = "SECRETS_BOOTSTRAP_PATH";
/// Where Kubernetes mounts the pod's service-account token.
pub const DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Bootstrap files larger than this are refused (they hold a dozen short fields).
const MAX_BOOTSTRAP_BYTES: u64 = 1024 * 1024;

/// How the client logs in to the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AuthMethod {
    /// A token given directly (`token`) or read from a file (`token_file`).
    #[default]
    Token,
    /// AppRole login with `approle_role_id` and `approle_secret_id`.
    AppRole,
    /// Kubernetes login with `kubernetes_role` and the service-account token file.
    Kubernetes,
}

impl AuthMethod {
    /// The name used in bootstrap files: `token`, `approle` or `kubernetes`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::AppRole => "approle",
            Self::Kubernetes => "kubernetes",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Token, Self::AppRole, Self::Kubernetes]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything the client needs to reach and log in to its vault: the bootstrap that solves the
/// "chicken and egg" of needing a secret to reach the secret store.
///
/// Load one with [`BootstrapConfig::discover`] (the full precedence), from a file with
/// [`BootstrapConfig::from_file`], or build one with [`BootstrapConfig::token`] and friends.
/// A bootstrap file is a JSON object with these fields (all but `vault_addr` optional):
///
/// ```json
/// {
///   "vault_addr": "https://bao.internal:8200",
///   "auth_method": "kubernetes",
///   "kubernetes_role": "payments",
///   "namespace": "team-a",
///   "ca_cert_path": "/etc/ssl/vault-ca.pem"
/// }
/// ```
///
/// Unknown fields are rejected by name, so a typo cannot silently fall back to a default.
/// `token` and `approle_secret_id` are [`SecretString`]s: `Debug` prints `[REDACTED]`.
///
/// ```
/// use secrets_sdk::BootstrapConfig;
///
/// let config = BootstrapConfig::from_json(r#"{"vault_addr": "http://127.0.0.1:8200", "token": "s.xyz"}"#, "inline")?;
/// assert_eq!(config.vault_addr, "http://127.0.0.1:8200");
/// assert!(!format!("{config:?}").contains("s.xyz"));
///
/// let typo = BootstrapConfig::from_json(r#"{"vault_addr": "http://x", "tokn": "s.xyz"}"#, "inline");
/// assert_eq!(typo.unwrap_err().to_string(), "bootstrap inline: field `tokn` is not a bootstrap field [BOOTSTRAP_INVALID]");
/// # Ok::<(), secrets_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BootstrapConfig {
    /// The vault's base URL, e.g. `https://bao.internal:8200`. Required.
    #[serde(default)]
    pub vault_addr: String,
    /// How to log in; `token` by default.
    #[serde(default)]
    pub auth_method: AuthMethod,
    /// The Kubernetes auth role (required for `kubernetes`).
    #[serde(default)]
    pub kubernetes_role: Option<String>,
    /// The Kubernetes auth mount; `kubernetes` by default.
    #[serde(default = "default_kubernetes_mount")]
    pub kubernetes_mount: String,
    /// The service-account token file, read at every login (projected tokens rotate).
    #[serde(default = "default_service_account_token_path")]
    pub service_account_token_path: PathBuf,
    /// The AppRole role ID (required for `approle`).
    #[serde(default)]
    pub approle_role_id: Option<String>,
    /// The AppRole secret ID (required for `approle`).
    #[serde(default)]
    pub approle_secret_id: Option<SecretString>,
    /// The AppRole auth mount; `approle` by default.
    #[serde(default = "default_approle_mount")]
    pub approle_mount: String,
    /// A token (for `token`; takes precedence over `token_file`).
    #[serde(default)]
    pub token: Option<SecretString>,
    /// A file holding the token (for `token`), read at first use and again after a `403`.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust.
    #[serde(default)]
    pub ca_cert_path: Option<PathBuf>,
    /// Accept any server certificate (refused when `ENVIRONMENT` is `production`).
    #[serde(default)]
    pub skip_verify: bool,
    /// The vault namespace (`X-Vault-Namespace`).
    #[serde(default)]
    pub namespace: Option<String>,
}

fn default_kubernetes_mount() -> String {
    "kubernetes".into()
}

fn default_approle_mount() -> String {
    "approle".into()
}

fn default_service_account_token_path() -> PathBuf {
    DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH.into()
}

/// The JSON type each field accepts (`null` means "not set" for every field).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Bool,
    Method,
}

const FIELDS: &[(&str, Kind)] = &[
    ("vault_addr", Kind::Text),
    ("auth_method", Kind::Method),
    ("kubernetes_role", Kind::Text),
    ("kubernetes_mount", Kind::Text),
    ("service_account_token_path", Kind::Text),
    ("approle_role_id", Kind::Text),
    ("approle_secret_id", Kind::Text),
    ("approle_mount", Kind::Text),
    ("token", Kind::Text),
    ("token_file", Kind::Text),
    ("ca_cert_path", Kind::Text),
    ("skip_verify", Kind::Bool),
    ("namespace", Kind::Text),
];

/// Where a [`LoadedBootstrap`] came from, in precedence order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BootstrapSource {
    /// A [`BootstrapConfig`] given to the builder.
    Given,
    /// The path given explicitly (the builder's `bootstrap_path`, or `discover(Some(path))`).
    ExplicitPath(PathBuf),
    /// The path in `SECRETS_BOOTSTRAP_PATH`.
    EnvPath(PathBuf),
    /// The well-known path ([`DEFAULT_BOOTSTRAP_PATH`]), which existed.
    DefaultPath(PathBuf),
    /// Environment variables with this prefix: `OPENBAO` (`OPENBAO_URL`, …) or `VAULT`.
    Environment(&'static str),
}

impl fmt::Display for BootstrapSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Given => f.write_str("builder"),
            Self::ExplicitPath(p) => write!(f, "explicit path {}", p.display()),
            Self::EnvPath(p) => write!(f, "{BOOTSTRAP_PATH_ENV}={}", p.display()),
            Self::DefaultPath(p) => write!(f, "default path {}", p.display()),
            Self::Environment(prefix) => write!(f, "environment ({prefix}_*)"),
        }
    }
}

/// A bootstrap and where it was found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadedBootstrap {
    /// The validated bootstrap.
    pub config: BootstrapConfig,
    /// Where it came from.
    pub source: BootstrapSource,
}

impl BootstrapConfig {
    fn with_auth(vault_addr: impl Into<String>, auth_method: AuthMethod) -> Self {
        Self {
            vault_addr: vault_addr.into(),
            auth_method,
            kubernetes_role: None,
            kubernetes_mount: default_kubernetes_mount(),
            service_account_token_path: default_service_account_token_path(),
            approle_role_id: None,
            approle_secret_id: None,
            approle_mount: default_approle_mount(),
            token: None,
            token_file: None,
            ca_cert_path: None,
            skip_verify: false,
            namespace: None,
        }
    }

    /// Token auth with a token.
    #[must_use]
    pub fn token(vault_addr: impl Into<String>, token: impl Into<SecretString>) -> Self {
        let mut config = Self::with_auth(vault_addr, AuthMethod::Token);
        config.token = Some(token.into());
        config
    }

    /// Token auth with a token file.
    #[must_use]
    pub fn token_file(vault_addr: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        let mut config = Self::with_auth(vault_addr, AuthMethod::Token);
        config.token_file = Some(path.into());
        config
    }

    /// AppRole auth at the `approle` mount.
    #[must_use]
    pub fn approle(
        vault_addr: impl Into<String>,
        role_id: impl Into<String>,
        secret_id: impl Into<SecretString>,
    ) -> Self {
        let mut config = Self::with_auth(vault_addr, AuthMethod::AppRole);
        config.approle_role_id = Some(role_id.into());
        config.approle_secret_id = Some(secret_id.into());
        config
    }

    /// Kubernetes auth at the `kubernetes` mount with the default service-account token path.
    #[must_use]
    pub fn kubernetes(vault_addr: impl Into<String>, role: impl Into<String>) -> Self {
        let mut config = Self::with_auth(vault_addr, AuthMethod::Kubernetes);
        config.kubernetes_role = Some(role.into());
        config
    }

    /// Sets the namespace.
    #[must_use]
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets a CA bundle (PEM) to trust.
    #[must_use]
    pub fn with_ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert_path = Some(path.into());
        self
    }

    /// Turns certificate verification off (refused in production).
    #[must_use]
    pub fn with_skip_verify(mut self, skip: bool) -> Self {
        self.skip_verify = skip;
        self
    }

    /// Parses and validates a bootstrap document. `origin` names it in errors (a path).
    ///
    /// # Errors
    /// `BOOTSTRAP_PARSE` (with line and column) for malformed JSON; `BOOTSTRAP_INVALID`
    /// naming the field for an unknown field, a wrong type or a failed
    /// [validation](Self::validate).
    pub fn from_json(text: &str, origin: &str) -> Result<Self, Error> {
        let mut document: Value =
            serde_json::from_str(text).map_err(|e| Error::BootstrapParse {
                origin: origin.to_owned(),
                line: e.line(),
                column: e.column(),
                source: Box::new(e),
            })?;
        let result = Self::from_document(&mut document, origin);
        wipe(&mut document);
        let config = result?;
        config.validate_as(origin, &|field| field.to_owned())?;
        Ok(config)
    }

    fn from_document(document: &mut Value, origin: &str) -> Result<Self, Error> {
        let invalid = |field: &str, reason: &'static str| Error::BootstrapInvalid {
            origin: origin.to_owned(),
            field: field.to_owned(),
            reason,
        };
        let Value::Object(map) = document else {
            return Err(invalid("(document)", "must be a JSON object"));
        };
        // `null` means "not set" for every field.
        let nulls: Vec<String> = map
            .iter()
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| k.clone())
            .collect();
        for key in nulls {
            map.remove(&key);
        }
        for (key, value) in map.iter_mut() {
            let Some((_, kind)) = FIELDS.iter().find(|(name, _)| name == key) else {
                return Err(invalid(&escaped(key), "is not a bootstrap field"));
            };
            match (kind, &mut *value) {
                (Kind::Text, Value::String(_)) | (Kind::Bool, Value::Bool(_)) => {}
                (Kind::Method, Value::String(name)) => match AuthMethod::from_name(name) {
                    Some(method) => *name = method.as_str().to_owned(),
                    None => return Err(invalid(key, "must be token, approle or kubernetes")),
                },
                (Kind::Text | Kind::Method, _) => return Err(invalid(key, "must be a string")),
                (Kind::Bool, _) => return Err(invalid(key, "must be true or false")),
            }
        }
        // Deserializing from `&Value` copies strings out, so the document can be wiped after.
        Self::deserialize(&*document)
            .map_err(|_| invalid("(document)", "does not match the bootstrap schema"))
    }

    /// Reads, parses and validates a bootstrap file.
    ///
    /// # Errors
    /// `BOOTSTRAP_IO` when it cannot be read, then as [`from_json`](Self::from_json).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let io = |source| Error::BootstrapIo {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Zeroizing::new(Vec::new());
        file.take(MAX_BOOTSTRAP_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        let origin = path.display().to_string();
        if bytes.len() as u64 > MAX_BOOTSTRAP_BYTES {
            return Err(Error::BootstrapInvalid {
                origin,
                field: "(document)".into(),
                reason: "is larger than 1 MiB",
            });
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        Self::from_json(text, &origin)
    }

    /// Checks the settings each auth method needs: `vault_addr` is an `http(s)://` URL;
    /// `token` needs `token` or `token_file`; `approle` needs `approle_role_id` and
    /// `approle_secret_id`; `kubernetes` needs `kubernetes_role`. Empty strings count as
    /// missing.
    ///
    /// # Errors
    /// `BOOTSTRAP_INVALID` naming the first field at fault.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_as("config", &|field| field.to_owned())
    }

    /// [`validate`](Self::validate), naming fields through `name` (environment variables for
    /// a bootstrap built from the environment).
    fn validate_as(&self, origin: &str, name: &dyn Fn(&str) -> String) -> Result<(), Error> {
        let invalid = |field: &str, reason: &'static str| Error::BootstrapInvalid {
            origin: origin.to_owned(),
            field: name(field),
            reason,
        };
        let blank = |v: &Option<String>| v.as_deref().is_none_or(|v| v.trim().is_empty());
        let addr = self.vault_addr.trim();
        if addr.is_empty() {
            return Err(invalid("vault_addr", "is required"));
        }
        let lower = addr.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"));
        if rest.is_none_or(str::is_empty) {
            return Err(invalid("vault_addr", "must be an http:// or https:// URL"));
        }
        match self.auth_method {
            AuthMethod::Token => {
                let token = self
                    .token
                    .as_ref()
                    .is_some_and(|t| !t.expose_secret().trim().is_empty());
                let file = self
                    .token_file
                    .as_ref()
                    .is_some_and(|p| !p.as_os_str().is_empty());
                if !token && !file {
                    return Err(invalid(
                        "token",
                        "(or token_file) is required for auth_method token",
                    ));
                }
            }
            AuthMethod::AppRole => {
                if blank(&self.approle_role_id) {
                    return Err(invalid(
                        "approle_role_id",
                        "is required for auth_method approle",
                    ));
                }
                let secret = self
                    .approle_secret_id
                    .as_ref()
                    .is_some_and(|s| !s.expose_secret().trim().is_empty());
                if !secret {
                    return Err(invalid(
                        "approle_secret_id",
                        "is required for auth_method approle",
                    ));
                }
                if self.approle_mount.trim().trim_matches('/').is_empty() {
                    return Err(invalid("approle_mount", "must not be empty"));
                }
            }
            AuthMethod::Kubernetes => {
                if blank(&self.kubernetes_role) {
                    return Err(invalid(
                        "kubernetes_role",
                        "is required for auth_method kubernetes",
                    ));
                }
                if self.kubernetes_mount.trim().trim_matches('/').is_empty() {
                    return Err(invalid("kubernetes_mount", "must not be empty"));
                }
                if self.service_account_token_path.as_os_str().is_empty() {
                    return Err(invalid("service_account_token_path", "must not be empty"));
                }
            }
        }
        Ok(())
    }

    /// A bootstrap from the `PREFIX_*` variables (`OPENBAO` or `VAULT`), read by the one
    /// reader of those settings, `Kv2Config::from_lookup`; `None` when the flavor has no
    /// address (`P_URL`, `P_ADDR`, and `BAO_ADDR` for OpenBao). The bootstrap keeps the
    /// address, login, namespace, CA bundle and `skip_verify`; the client builds its provider
    /// from the reader's full settings.
    ///
    /// # Errors
    /// `CONFIG` naming the variable at fault.
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    pub(crate) fn from_env_prefix(
        prefix: &'static str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, Error> {
        use secret_providers::{Kv2Auth, Kv2Config};
        let flavor = env_flavor(prefix);
        if Kv2Config::address_from_lookup(flavor, lookup).is_none() {
            return Ok(None);
        }
        let kv2 = Kv2Config::from_lookup(flavor, lookup).map_err(config_error)?;
        let method = match &kv2.auth {
            Kv2Auth::AppRole { .. } => AuthMethod::AppRole,
            Kv2Auth::Kubernetes { .. } => AuthMethod::Kubernetes,
            _ => AuthMethod::Token,
        };
        let mut config = Self::with_auth(kv2.address.clone(), method);
        match &kv2.auth {
            Kv2Auth::Token { token } => config.token = Some(token.clone()),
            Kv2Auth::TokenFile { path } => config.token_file = Some(path.clone()),
            Kv2Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                config.approle_mount.clone_from(mount);
                config.approle_role_id = Some(role_id.clone());
                config.approle_secret_id.clone_from(secret_id);
            }
            Kv2Auth::Kubernetes {
                mount,
                role,
                jwt_path,
            } => {
                config.kubernetes_mount.clone_from(mount);
                config.kubernetes_role = Some(role.clone());
                config.service_account_token_path.clone_from(jwt_path);
            }
            _ => {}
        }
        config.namespace.clone_from(&kv2.namespace);
        config.ca_cert_path.clone_from(&kv2.ca_bundle);
        config.skip_verify = kv2.skip_verify;
        Ok(Some(config))
    }

    /// Without a vault feature no provider could use a bootstrap from the environment.
    #[cfg(not(any(feature = "openbao", feature = "hashicorp")))]
    pub(crate) fn from_env_prefix(
        _prefix: &'static str,
        _lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, Error> {
        Ok(None)
    }

    /// Finds the bootstrap with the documented precedence, reading the process environment:
    /// `explicit` → `SECRETS_BOOTSTRAP_PATH` → [`DEFAULT_BOOTSTRAP_PATH`] if it exists →
    /// `OPENBAO_URL` (else `OPENBAO_ADDR`, else `BAO_ADDR`), else `VAULT_URL` (else
    /// `VAULT_ADDR`), with the settings `Kv2Config::from_lookup` reads → `NO_BOOTSTRAP`.
    ///
    /// # Errors
    /// `NO_BOOTSTRAP` listing what was tried; `BOOTSTRAP_IO` when a named file cannot be read
    /// (a path that was given must exist); then as [`from_json`](Self::from_json); `CONFIG`
    /// naming the variable for invalid environment settings.
    pub fn discover(explicit: Option<&Path>) -> Result<LoadedBootstrap, Error> {
        Self::discover_with(
            explicit,
            &|name| std::env::var(name).ok(),
            Path::new(DEFAULT_BOOTSTRAP_PATH),
        )
    }

    /// [`discover`](Self::discover) with the environment read through `lookup` and another
    /// well-known path (for tests, and for callers that keep settings elsewhere).
    ///
    /// # Errors
    /// As [`discover`](Self::discover).
    pub fn discover_with(
        explicit: Option<&Path>,
        lookup: &dyn Fn(&str) -> Option<String>,
        default_path: &Path,
    ) -> Result<LoadedBootstrap, Error> {
        let loaded = |path: &Path, source: BootstrapSource| {
            Self::from_file(path).map(|config| LoadedBootstrap { config, source })
        };
        if let Some(path) = explicit {
            return loaded(path, BootstrapSource::ExplicitPath(path.to_owned()));
        }
        let mut tried = Vec::with_capacity(3);
        match lookup(BOOTSTRAP_PATH_ENV).filter(|p| !p.trim().is_empty()) {
            Some(path) => {
                let path = PathBuf::from(path.trim());
                return loaded(&path, BootstrapSource::EnvPath(path.clone()));
            }
            None => tried.push(format!("{BOOTSTRAP_PATH_ENV} (not set)")),
        }
        match default_path.try_exists() {
            Ok(true) => {
                return loaded(
                    default_path,
                    BootstrapSource::DefaultPath(default_path.to_owned()),
                );
            }
            Ok(false) => tried.push(format!("{} (not found)", default_path.display())),
            Err(source) => {
                return Err(Error::BootstrapIo {
                    path: default_path.to_owned(),
                    source,
                });
            }
        }
        for prefix in ["OPENBAO", "VAULT"] {
            if let Some(config) = Self::from_env_prefix(prefix, lookup)? {
                return Ok(LoadedBootstrap {
                    config,
                    source: BootstrapSource::Environment(prefix),
                });
            }
        }
        tried.push(ENV_LEVEL_TRIED.into());
        Err(Error::NoBootstrap { tried })
    }

    /// The KV v2 provider settings for this bootstrap alone (after
    /// [`validate`](Self::validate)), with no environment tuning. `environment` is the
    /// deployment environment for the `skip_verify` rule (`None`: the provider reads
    /// `ENVIRONMENT`).
    ///
    /// # Errors
    /// As [`to_kv2_config_with`](Self::to_kv2_config_with).
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "openbao", feature = "hashicorp"))))]
    pub fn to_kv2_config(
        &self,
        flavor: secret_providers::Kv2Flavor,
        environment: Option<String>,
    ) -> Result<secret_providers::Kv2Config, Error> {
        self.to_kv2_config_with(flavor, &|name| {
            (name == "ENVIRONMENT")
                .then(|| environment.clone())
                .flatten()
        })
    }

    /// The KV v2 provider settings for this bootstrap with the environment's tuning: the
    /// bootstrap supplies address and login, and the tuning variables read through `lookup`
    /// (`P_TIMEOUT`, `P_CACERT`, `P_VERIFY_SSL`, `P_CLIENT_CERT`/`_KEY`, `P_NAMESPACE`, retries,
    /// body cap, `ENVIRONMENT`, `SECRETS_ALLOW_INSECURE_TLS`; see `Kv2Config::from_lookup`)
    /// apply to it. Where both set the same thing, the bootstrap wins: its `namespace` and
    /// `ca_cert_path` replace the environment's, and its `skip_verify: true` turns
    /// verification off.
    ///
    /// # Errors
    /// As [`validate`](Self::validate); `CONFIG` naming an invalid variable;
    /// `BOOTSTRAP_INVALID` for `skip_verify` outside a development environment, or together
    /// with a CA bundle.
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "openbao", feature = "hashicorp"))))]
    pub fn to_kv2_config_with(
        &self,
        flavor: secret_providers::Kv2Flavor,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<secret_providers::Kv2Config, Error> {
        use secret_providers::{Kv2Auth, Kv2Config};
        self.validate()?;
        let auth = match self.auth_method {
            AuthMethod::Token => match (&self.token, &self.token_file) {
                (Some(token), _) if !token.expose_secret().trim().is_empty() => {
                    Kv2Auth::token(SecretString::from(token.expose_secret().trim()))
                }
                (_, Some(path)) => Kv2Auth::token_file(path.clone()),
                // validate() refused this.
                (_, None) => Kv2Auth::token(SecretString::from("")),
            },
            AuthMethod::AppRole => Kv2Auth::approle(
                self.approle_role_id
                    .as_deref()
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                self.approle_secret_id.clone(),
            )
            .with_mount(self.approle_mount.trim().trim_matches('/')),
            AuthMethod::Kubernetes => Kv2Auth::kubernetes(
                self.kubernetes_role
                    .as_deref()
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            )
            .with_mount(self.kubernetes_mount.trim().trim_matches('/'))
            .with_jwt_path(self.service_account_token_path.clone()),
        };
        let mut config = Kv2Config::new(flavor, self.vault_addr.trim(), auth)
            .tuned_by_lookup(lookup)
            .map_err(config_error)?;
        if let Some(namespace) = self
            .namespace
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            config.namespace = Some(namespace.to_owned());
        }
        if let Some(ca) = self
            .ca_cert_path
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty())
        {
            config.ca_bundle = Some(ca.clone());
        }
        config.skip_verify |= self.skip_verify;
        let invalid = |reason: &'static str| Error::BootstrapInvalid {
            origin: "config".into(),
            field: "skip_verify".into(),
            reason,
        };
        if config.skip_verify && config.ca_bundle.is_some() {
            return Err(invalid(
                "(or VERIFY_SSL=false) turns verification off, which conflicts with a CA bundle",
            ));
        }
        if config.skip_verify && !config.insecure_tls_allowed() {
            return Err(invalid(
                "is refused unless ENVIRONMENT names a development environment (dev, \
                 development, test, local, ci) or SECRETS_ALLOW_INSECURE_TLS=true",
            ));
        }
        Ok(config)
    }
}

/// What the environment level of [`BootstrapConfig::discover`] looked at, for `NO_BOOTSTRAP`.
#[cfg(any(feature = "openbao", feature = "hashicorp"))]
const ENV_LEVEL_TRIED: &str =
    "OPENBAO_URL/OPENBAO_ADDR/BAO_ADDR and VAULT_URL/VAULT_ADDR (not set)";
#[cfg(not(any(feature = "openbao", feature = "hashicorp")))]
const ENV_LEVEL_TRIED: &str = "OPENBAO_*/VAULT_* (not read: built without a vault feature)";

/// The flavor whose variables carry `prefix` (`OPENBAO` or `VAULT`).
#[cfg(any(feature = "openbao", feature = "hashicorp"))]
pub(crate) fn env_flavor(prefix: &str) -> secret_providers::Kv2Flavor {
    if prefix == "VAULT" {
        secret_providers::Kv2Flavor::HashiCorp
    } else {
        secret_providers::Kv2Flavor::OpenBao
    }
}

/// A provider `CONFIG` error as [`Error::Config`] naming the variable its message starts with
/// (the reader's messages name variables, never values); others name the provider's vault.
#[cfg(any(feature = "openbao", feature = "hashicorp"))]
pub(crate) fn config_error(error: secret_providers::ProviderError) -> Error {
    let (setting, reason) = match &error {
        secret_providers::ProviderError::Config { reason, .. } => match reason.split_once(' ') {
            Some((name, rest))
                if !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
            {
                (name.to_owned(), rest.to_owned())
            }
            _ => (
                format!("{} vault", error.provider()),
                format!("is invalid: {reason}"),
            ),
        },
        other => (
            format!("{} vault", other.provider()),
            format!("is invalid ({})", other.code()),
        ),
    };
    Error::Config {
        setting,
        reason,
        source: Some(Box::new(error)),
    }
}

/// An unknown field name, escaped and cut to 64 characters for the error message.
fn escaped(name: &str) -> String {
    let mut out = String::new();
    for (n, c) in name.chars().enumerate() {
        if n == 64 {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out
}

/// Zeroizes every string of a parsed document (keys too): it held the token.
fn wipe(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => {
            for (mut key, mut item) in std::mem::take(map) {
                key.zeroize();
                wipe(&mut item);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    *value = Value::Null;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn invalid_field(result: Result<BootstrapConfig, Error>) -> Option<(String, &'static str)> {
        match result {
            Err(Error::BootstrapInvalid { field, reason, .. }) => Some((field, reason)),
            _ => None,
        }
    }

    #[test]
    fn parses_every_field() -> Result<(), Error> {
        let config = BootstrapConfig::from_json(
            r#"{
                "vault_addr": "https://bao:8200", "auth_method": "Kubernetes",
                "kubernetes_role": "app", "kubernetes_mount": "k8s",
                "service_account_token_path": "/t", "approle_role_id": null,
                "approle_secret_id": null, "approle_mount": "ar", "token": null,
                "token_file": null, "ca_cert_path": "/ca.pem", "skip_verify": false,
                "namespace": "team"
            }"#,
            "t",
        )?;
        assert_eq!(config.auth_method, AuthMethod::Kubernetes);
        assert_eq!(config.kubernetes_mount, "k8s");
        assert_eq!(config.ca_cert_path, Some(PathBuf::from("/ca.pem")));
        assert_eq!(config.namespace.as_deref(), Some("team"));
        Ok(())
    }

    #[test]
    fn defaults() -> Result<(), Error> {
        let config = BootstrapConfig::from_json(r#"{"vault_addr":"http://v","token":"t"}"#, "t")?;
        assert_eq!(config.auth_method, AuthMethod::Token);
        assert_eq!(config.kubernetes_mount, "kubernetes");
        assert_eq!(config.approle_mount, "approle");
        assert_eq!(
            config.service_account_token_path,
            PathBuf::from(DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH)
        );
        assert!(!config.skip_verify);
        Ok(())
    }

    #[test]
    fn every_validation_error_names_its_field() {
        let cases = [
            (r#"{}"#, "vault_addr", "is required"),
            (
                r#"{"vault_addr":"bao:8200","token":"t"}"#,
                "vault_addr",
                "must be an http:// or https:// URL",
            ),
            (
                r#"{"vault_addr":"http://v"}"#,
                "token",
                "(or token_file) is required for auth_method token",
            ),
            (
                r#"{"vault_addr":"http://v","token":"  "}"#,
                "token",
                "(or token_file) is required for auth_method token",
            ),
            (
                r#"{"vault_addr":"http://v","auth_method":"approle","approle_secret_id":"s"}"#,
                "approle_role_id",
                "is required for auth_method approle",
            ),
            (
                r#"{"vault_addr":"http://v","auth_method":"approle","approle_role_id":"r"}"#,
                "approle_secret_id",
                "is required for auth_method approle",
            ),
            (
                r#"{"vault_addr":"http://v","auth_method":"kubernetes"}"#,
                "kubernetes_role",
                "is required for auth_method kubernetes",
            ),
            (
                r#"{"vault_addr":"http://v","auth_method":"ldap"}"#,
                "auth_method",
                "must be token, approle or kubernetes",
            ),
            (
                r#"{"vault_addr":"http://v","token":"t","skip_verify":"yes"}"#,
                "skip_verify",
                "must be true or false",
            ),
            (
                r#"{"vault_addr":"http://v","token":12345}"#,
                "token",
                "must be a string",
            ),
            (
                r#"{"vault_addr":"http://v","tokn":"t"}"#,
                "tokn",
                "is not a bootstrap field",
            ),
            (r#"[1]"#, "(document)", "must be a JSON object"),
        ];
        for (json, field, reason) in cases {
            let got = invalid_field(BootstrapConfig::from_json(json, "t"));
            assert_eq!(got, Some((field.to_owned(), reason)), "{json}");
        }
    }

    #[test]
    fn type_errors_never_quote_the_value() {
        let err = BootstrapConfig::from_json(r#"{"vault_addr":"http://v","token":987654321}"#, "t")
            .err()
            .map(|e| format!("{e} {e:?}"))
            .unwrap_or_default();
        assert!(err.contains("BootstrapInvalid"), "{err}");
        assert!(!err.contains("987654321"), "{err}");
    }

    #[test]
    fn malformed_json_has_line_and_column() {
        let err = BootstrapConfig::from_json(
            "{\n  \"vault_addr\": \"http://v\",\n  \"token\" \"x\"\n}",
            "f.json",
        );
        match err {
            Err(Error::BootstrapParse { line, column, .. }) => assert_eq!((line, column), (3, 11)),
            other => panic!("{other:?}"),
        }
    }

    #[cfg(feature = "openbao")]
    #[test]
    fn environment_levels_and_names() -> Result<(), Error> {
        let none = BootstrapConfig::from_env_prefix("OPENBAO", &lookup(&[]))?;
        assert!(none.is_none());
        let approle = BootstrapConfig::from_env_prefix(
            "VAULT",
            &lookup(&[
                ("VAULT_ADDR", "http://v"),
                ("VAULT_AUTH_METHOD", "approle"),
                ("VAULT_ROLE_ID", "r"),
                ("VAULT_SECRET_ID", "s"),
                ("VAULT_AUTH_MOUNT", "ar"),
            ]),
        )?;
        assert!(approle.is_some_and(|c| c.approle_mount == "ar"
            && c.auth_method == AuthMethod::AppRole
            && c.approle_secret_id.is_some()));
        // BAO_ADDR with BAO_TOKEN, as the `bao` CLI reads them.
        let cli = BootstrapConfig::from_env_prefix(
            "OPENBAO",
            &lookup(&[("BAO_ADDR", "http://127.0.0.1:8200"), ("BAO_TOKEN", "t")]),
        )?;
        assert!(cli.is_some_and(|c| c.vault_addr == "http://127.0.0.1:8200" && c.token.is_some()));
        let missing = BootstrapConfig::from_env_prefix(
            "OPENBAO",
            &lookup(&[
                ("OPENBAO_URL", "http://v"),
                ("OPENBAO_AUTH_METHOD", "kubernetes"),
            ]),
        );
        assert_eq!(
            missing.err().map(|e| e.to_string()),
            Some("invalid configuration: OPENBAO_KUBERNETES_ROLE is not set [CONFIG]".to_owned())
        );
        Ok(())
    }

    #[cfg(feature = "openbao")]
    #[test]
    fn environment_tuning_applies_to_a_bootstrap_file_and_the_file_wins() -> Result<(), Error> {
        use secret_providers::Kv2Flavor;
        use std::time::Duration;
        let file = BootstrapConfig::token("https://bao:8200", "t").with_namespace("from-file");
        let config = file.to_kv2_config_with(
            Kv2Flavor::OpenBao,
            &lookup(&[
                ("OPENBAO_URL", "https://other"),
                ("VAULT_TIMEOUT", "2"),
                ("OPENBAO_NAMESPACE", "from-env"),
                ("OPENBAO_RETRY_ATTEMPTS", "1"),
            ]),
        )?;
        assert_eq!(config.address, "https://bao:8200");
        assert_eq!(config.timeout, Duration::from_secs(2));
        assert_eq!(config.retry.attempts, 1);
        assert_eq!(config.namespace.as_deref(), Some("from-file"));
        // Without a namespace of its own the file gets the environment's.
        let config = BootstrapConfig::token("https://bao:8200", "t")
            .to_kv2_config_with(Kv2Flavor::OpenBao, &lookup(&[("OPENBAO_NAMESPACE", "env")]))?;
        assert_eq!(config.namespace.as_deref(), Some("env"));
        // Invalid tuning is CONFIG naming the variable.
        let err = BootstrapConfig::token("https://bao:8200", "t")
            .to_kv2_config_with(Kv2Flavor::OpenBao, &lookup(&[("VAULT_TIMEOUT", "2s")]))
            .err();
        assert_eq!(err.as_ref().and_then(Error::setting), Some("VAULT_TIMEOUT"));
        Ok(())
    }

    #[cfg(feature = "openbao")]
    #[test]
    fn a_bootstrap_file_skip_verify_follows_the_insecure_tls_rule() {
        use secret_providers::Kv2Flavor;
        let skip = BootstrapConfig::token("https://bao:8200", "t").with_skip_verify(true);
        let field = |result: Result<secret_providers::Kv2Config, Error>| match result {
            Err(Error::BootstrapInvalid { field, .. }) => field,
            Err(other) => format!("other error {}", other.code()),
            Ok(_) => "accepted".into(),
        };
        for environment in ["prd", "live", "staging", "production"] {
            let got = skip
                .to_kv2_config_with(Kv2Flavor::OpenBao, &lookup(&[("ENVIRONMENT", environment)]));
            assert_eq!(field(got), "skip_verify", "{environment}");
        }
        assert!(
            skip.to_kv2_config_with(Kv2Flavor::OpenBao, &lookup(&[("ENVIRONMENT", "dev")]))
                .is_ok_and(|c| c.skip_verify)
        );
        assert!(
            skip.to_kv2_config_with(
                Kv2Flavor::OpenBao,
                &lookup(&[
                    ("ENVIRONMENT", "prd"),
                    ("SECRETS_ALLOW_INSECURE_TLS", "true")
                ])
            )
            .is_ok()
        );
        // A CA bundle and no verification contradict each other.
        let both = skip.clone().with_ca_cert("/etc/ca.pem");
        let got = both.to_kv2_config_with(Kv2Flavor::OpenBao, &lookup(&[("ENVIRONMENT", "dev")]));
        assert_eq!(field(got), "skip_verify");
    }

    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    #[test]
    fn discovery_lists_what_it_tried() {
        let err = BootstrapConfig::discover_with(
            None,
            &lookup(&[]),
            Path::new("/nonexistent/bootstrap.json"),
        )
        .err();
        let shown = err.map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            shown,
            "no bootstrap configuration found; tried SECRETS_BOOTSTRAP_PATH (not set), \
             /nonexistent/bootstrap.json (not found), OPENBAO_URL/OPENBAO_ADDR/BAO_ADDR and \
             VAULT_URL/VAULT_ADDR (not set) [NO_BOOTSTRAP]"
        );
    }

    #[cfg(feature = "openbao")]
    #[test]
    fn maps_into_kv2_config() -> Result<(), Error> {
        use secret_providers::{Kv2Auth, Kv2Flavor};
        let config = BootstrapConfig::kubernetes("http://v", "app")
            .with_namespace("team")
            .to_kv2_config(Kv2Flavor::OpenBao, None)?;
        assert!(
            matches!(&config.auth, Kv2Auth::Kubernetes { mount, role, .. } if mount == "kubernetes" && role == "app")
        );
        assert_eq!(config.namespace.as_deref(), Some("team"));
        let approle = BootstrapConfig::approle("http://v", "r", "canary-secret-id")
            .to_kv2_config(Kv2Flavor::HashiCorp, None)?;
        assert!(matches!(&approle.auth, Kv2Auth::AppRole { mount, .. } if mount == "approle"));
        assert!(!format!("{approle:?}").contains("canary-secret-id"));
        Ok(())
    }
}
