//! The bootstrap: how a service reaches its vault, found before any vault is reachable.
//!
//! A bootstrap is the providers' own [`Kv2Config`](secret_providers::Kv2Config), never a
//! second model of it: [`BootstrapConfig`]'s constructors, the bootstrap file
//! ([`file`]: strict JSON, every error naming its field) and the environment level
//! ([`env`]: `Kv2Config::from_lookup`, the one reader of `OPENBAO_*`/`VAULT_*`) all produce
//! one. A bootstrap file may also carry a `values` section ([`values`]), which the
//! `SecretsClient` serves as `bootstrap://<name>` from memory. This module holds the
//! precedence ([`BootstrapConfig::discover`]) and where a bootstrap came from
//! ([`BootstrapSource`]).

use std::fmt;
#[cfg(any(feature = "openbao", feature = "hashicorp"))]
use std::path::Path;
use std::path::PathBuf;

#[cfg(any(feature = "openbao", feature = "hashicorp"))]
use secrecy::SecretString;
#[cfg(any(feature = "openbao", feature = "hashicorp"))]
use secret_providers::{Kv2Auth, Kv2Config, Kv2Flavor};

use crate::Error;

#[cfg(any(feature = "openbao", feature = "hashicorp"))]
mod env;
#[cfg(any(feature = "openbao", feature = "hashicorp"))]
mod file;
#[cfg(test)]
mod tests;
#[cfg(any(feature = "openbao", feature = "hashicorp"))]
mod values;

#[cfg(any(feature = "openbao", feature = "hashicorp"))]
pub(crate) use values::{BootstrapProvider, BootstrapValues};

/// The well-known bootstrap file, as written by a Vault/OpenBao agent sidecar.
pub const DEFAULT_BOOTSTRAP_PATH: &str = "/vault/secrets/bootstrap.json";
/// The environment variable naming a bootstrap file.
pub const BOOTSTRAP_PATH_ENV: &str = "SECRETS_BOOTSTRAP_PATH";
/// Where Kubernetes mounts the pod's service-account token.
pub const DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// The `auth_method` values of a bootstrap file. The login itself is the providers'
/// `Kv2Auth`; this only names the file's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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

    /// The method a bootstrap file names, case-insensitively.
    #[cfg_attr(not(any(feature = "openbao", feature = "hashicorp")), allow(dead_code))]
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

/// Where the vault settings come from before any vault is reachable: the "chicken and egg"
/// of needing a secret to reach the secret store.
///
/// Not a settings type of its own: every function here returns (or checks) the providers'
/// [`Kv2Config`](secret_providers::Kv2Config), so a bootstrap is exactly what the KV v2
/// provider is built from. Load one with [`discover`](Self::discover) (the full precedence),
/// from a file with [`from_file`](Self::from_file), or build one with
/// [`token`](Self::token) and friends.
///
/// A bootstrap file is a JSON object with these fields (all but `vault_addr` optional):
///
/// ```json
/// {
///   "vault_addr": "https://bao.internal:8200",
///   "auth_method": "kubernetes",
///   "kubernetes_role": "payments",
///   "namespace": "team-a",
///   "ca_cert_path": "/etc/ssl/vault-ca.pem",
///   "values": {"kafka_password": "…", "db": {"user": "app", "password": "…"}}
/// }
/// ```
///
/// Unknown fields are rejected by name, so a typo cannot silently fall back to a default.
/// `token` and `approle_secret_id` end up as `SecretString`s: `Debug` prints `[REDACTED]`.
///
/// `values` holds the few settings a service needs before any vault is reachable: each name
/// is a `bootstrap://` path (`kafka_password`, `kafka/sasl`), each value a string or an object
/// of strings (`bootstrap://db#password` picks a field). A client built with this file
/// ([`discover`](Self::discover), `SecretsClientBuilder::bootstrap_path`) serves them from
/// memory, wiped when it drops; [`from_json`](Self::from_json) and
/// [`from_file`](Self::from_file) check them and return only the vault settings. A wrong
/// type or name is `BOOTSTRAP_INVALID` naming `values.<name>`, never the value.
///
/// ```
/// # #[cfg(feature = "openbao")] {
/// use secrets_sdk::BootstrapConfig;
/// use secrets_sdk::providers::Kv2Auth;
///
/// let config = BootstrapConfig::from_json(r#"{"vault_addr": "http://127.0.0.1:8200", "token": "s.xyz"}"#, "inline")?;
/// assert_eq!(config.address, "http://127.0.0.1:8200");
/// assert!(matches!(config.auth, Kv2Auth::Token { .. }));
/// assert!(!format!("{config:?}").contains("s.xyz"));
///
/// let typo = BootstrapConfig::from_json(r#"{"vault_addr": "http://x", "tokn": "s.xyz"}"#, "inline");
/// assert_eq!(typo.unwrap_err().to_string(), "bootstrap inline: field `tokn` is not a bootstrap field [BOOTSTRAP_INVALID]");
/// # }
/// # Ok::<(), secrets_sdk::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct BootstrapConfig {}

#[cfg(any(feature = "openbao", feature = "hashicorp"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "openbao", feature = "hashicorp"))))]
impl BootstrapConfig {
    /// Token auth with a token.
    #[must_use]
    pub fn token(vault_addr: impl Into<String>, token: impl Into<SecretString>) -> Kv2Config {
        Kv2Config::new(default_flavor(), vault_addr, Kv2Auth::token(token))
    }

    /// Token auth with a token file (read at first use and again after a `403`).
    #[must_use]
    pub fn token_file(vault_addr: impl Into<String>, path: impl Into<PathBuf>) -> Kv2Config {
        Kv2Config::new(default_flavor(), vault_addr, Kv2Auth::token_file(path))
    }

    /// AppRole auth at the `approle` mount.
    #[must_use]
    pub fn approle(
        vault_addr: impl Into<String>,
        role_id: impl Into<String>,
        secret_id: impl Into<SecretString>,
    ) -> Kv2Config {
        let auth = Kv2Auth::approle(role_id, Some(secret_id.into()));
        Kv2Config::new(default_flavor(), vault_addr, auth)
    }

    /// Kubernetes auth at the `kubernetes` mount with the default service-account token
    /// path ([`DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH`]).
    #[must_use]
    pub fn kubernetes(vault_addr: impl Into<String>, role: impl Into<String>) -> Kv2Config {
        let auth = Kv2Auth::kubernetes(role).with_jwt_path(DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH);
        Kv2Config::new(default_flavor(), vault_addr, auth)
    }

    /// Parses and validates a bootstrap document. `origin` names it in errors (a path).
    ///
    /// A `values` section is checked too, then wiped: the vault settings are returned.
    ///
    /// # Errors
    /// `BOOTSTRAP_PARSE` (with line and column) for malformed JSON; `BOOTSTRAP_INVALID`
    /// naming the field for an unknown field, a wrong type (`values.<name>` for a value) or a
    /// failed [validation](Self::validate).
    pub fn from_json(text: &str, origin: &str) -> Result<Kv2Config, Error> {
        file::from_json(text, origin).map(|(config, _)| config)
    }

    /// Reads, parses and validates a bootstrap file (its `values` checked, then wiped; a
    /// client given the path serves them).
    ///
    /// # Errors
    /// `BOOTSTRAP_IO` when it cannot be read, then as [`from_json`](Self::from_json).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Kv2Config, Error> {
        file::from_file(path.as_ref()).map(|(config, _)| config)
    }

    /// Checks what a bootstrap must have, naming bootstrap-file fields: the address
    /// (`vault_addr`) is an `http(s)://` URL; token auth has a token or token file; AppRole
    /// has a role ID, a secret ID and a mount; Kubernetes has a role, a mount and a
    /// service-account token path. Blank strings count as missing.
    ///
    /// # Errors
    /// `BOOTSTRAP_INVALID` naming the first field at fault.
    pub fn validate(config: &Kv2Config) -> Result<(), Error> {
        file::validate(config, "config")
    }

    /// The settings a client builds its provider from: the bootstrap supplies address and
    /// login, and the environment's tuning variables read through `lookup` (`P_TIMEOUT`,
    /// `P_CACERT`, `P_VERIFY_SSL`, `P_CLIENT_CERT`/`_KEY`, `P_NAMESPACE`, retries, body cap,
    /// `ENVIRONMENT`, `SECRETS_ALLOW_INSECURE_TLS`; see `Kv2Config::from_lookup`) apply to
    /// it. Where both set the same thing, the bootstrap wins: its namespace and CA bundle
    /// replace the environment's, and its `skip_verify` turns verification off.
    ///
    /// # Errors
    /// As [`validate`](Self::validate); `CONFIG` naming an invalid variable;
    /// `BOOTSTRAP_INVALID` for `skip_verify` outside a development environment, or together
    /// with a CA bundle.
    pub fn tuned(
        config: &Kv2Config,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Kv2Config, Error> {
        env::tuned(config, lookup)
    }

    /// Finds the bootstrap with the documented precedence, reading the process environment:
    /// `explicit` → `SECRETS_BOOTSTRAP_PATH` → [`DEFAULT_BOOTSTRAP_PATH`] if it exists →
    /// `OPENBAO_URL` (else `OPENBAO_ADDR`, else `BAO_ADDR`), else `VAULT_URL` (else
    /// `VAULT_ADDR`), with every setting `Kv2Config::from_lookup` reads → `NO_BOOTSTRAP`.
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
        let loaded =
            |path: &Path, source: BootstrapSource| LoadedBootstrap::from_file(path, source);
        if let Some(path) = explicit {
            return loaded(path, BootstrapSource::ExplicitPath(path.to_owned()));
        }
        let env = secret_config::Env::new(lookup);
        let mut tried = Vec::with_capacity(3);
        match env.path(BOOTSTRAP_PATH_ENV) {
            Some(path) => return loaded(&path, BootstrapSource::EnvPath(path.clone())),
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
            if let Some(config) = env::from_env_prefix(prefix, lookup)? {
                return Ok(LoadedBootstrap {
                    config,
                    source: BootstrapSource::Environment(prefix),
                    values: None,
                });
            }
        }
        tried.push(ENV_LEVEL_TRIED.into());
        Err(Error::NoBootstrap { tried })
    }
}

/// The flavor a bootstrap that names none (a file, a constructor) is for: OpenBao when that
/// feature is on; a client serves both vault schemes from it either way.
#[cfg(any(feature = "openbao", feature = "hashicorp"))]
pub(crate) fn default_flavor() -> Kv2Flavor {
    if cfg!(feature = "openbao") {
        Kv2Flavor::OpenBao
    } else {
        Kv2Flavor::HashiCorp
    }
}

/// A provider error as [`Error::Config`]: a `CONFIG` error keeps its setting (a field, never
/// parsed out of the message); any other names the provider's vault. The provider error is
/// kept as the source.
pub(crate) fn config_error(error: secret_providers::ProviderError) -> Error {
    let (setting, reason) = match (&error, error.setting()) {
        (secret_providers::ProviderError::Config { reason, .. }, Some(setting)) => {
            (setting.to_owned(), reason.clone())
        }
        (other, _) => (
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

/// What the environment level of [`BootstrapConfig::discover`] looked at, for `NO_BOOTSTRAP`.
#[cfg(any(feature = "openbao", feature = "hashicorp"))]
const ENV_LEVEL_TRIED: &str =
    "OPENBAO_URL/OPENBAO_ADDR/BAO_ADDR and VAULT_URL/VAULT_ADDR (not set)";

/// Where a [`LoadedBootstrap`] came from, in precedence order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BootstrapSource {
    /// A bootstrap given to the builder.
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
    /// The validated settings: for a file or a given bootstrap, its address and login (the
    /// environment's tuning applies with [`BootstrapConfig::tuned`]); for the environment
    /// level, everything `Kv2Config::from_lookup` read.
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "openbao", feature = "hashicorp"))))]
    pub config: Kv2Config,
    /// Where it came from.
    pub source: BootstrapSource,
    /// A bootstrap file's `values` section, when it has one: what the client serves as
    /// `bootstrap://`. Kept inside the crate, so values leave it only through a resolve.
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    pub(crate) values: Option<BootstrapValues>,
}

#[cfg(any(feature = "openbao", feature = "hashicorp"))]
impl LoadedBootstrap {
    /// A bootstrap given in code: settings only, no values.
    pub(crate) fn given(config: Kv2Config) -> Self {
        Self {
            config,
            source: BootstrapSource::Given,
            values: None,
        }
    }

    /// Reads, parses and validates the bootstrap file at `path`, values included.
    pub(crate) fn from_file(path: &Path, source: BootstrapSource) -> Result<Self, Error> {
        file::from_file(path).map(|(config, values)| Self {
            config,
            source,
            values,
        })
    }

    /// The values of `loaded` taken out for the client to serve, or why there are none
    /// (`vault_note`, why there is no bootstrap, when there is none), for `NOT_CONFIGURED`.
    pub(crate) fn split_values(
        loaded: Option<Self>,
        vault_note: &str,
    ) -> (Option<Self>, Result<BootstrapValues, String>) {
        let Some(mut loaded) = loaded else {
            return (None, Err(vault_note.to_owned()));
        };
        let values = loaded.values.take().ok_or_else(|| loaded.no_values_note());
        (Some(loaded), values)
    }

    /// Why `bootstrap://` is not served with this bootstrap, when it has no `values` section:
    /// for `NOT_CONFIGURED`.
    pub(crate) fn no_values_note(&self) -> String {
        match &self.source {
            BootstrapSource::Given => {
                "the bootstrap was given in code, as settings without values".into()
            }
            BootstrapSource::Environment(prefix) => format!(
                "the bootstrap is the environment ({prefix}_*), which holds no values; they \
                 come from a bootstrap file's `values` section"
            ),
            source => format!("the bootstrap file ({source}) has no `values` section"),
        }
    }
}
