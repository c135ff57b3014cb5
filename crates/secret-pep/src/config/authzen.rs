//! [`AuthzenConfig`]: the AuthZEN PDP client's settings and their environment names.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use secret_config::Env;

use crate::PepError;

/// How AuthZEN requests and responses are shaped for a particular PDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuthzenDialect {
    /// Plain AuthZEN 1.0: roles in `subject.properties.roles`; grant terms from the response
    /// `context` (`ttl`, `max_uses`, `decision_id`, `policy_version`, …).
    #[default]
    Generic,
    /// Cerbos: roles also in `subject.properties["cerbos.roles"]` (its principal roles), the
    /// request asks for `cerbos.includeMeta`, and grant terms are also read from the matched
    /// rule's outputs and `matchedPolicy` in `context["cerbos.response"]`.
    Cerbos,
}

/// Settings of the AuthZEN PDP client.
///
/// `Debug` redacts the token and any `user:password@` part of the URL (such a URL is refused
/// anyway).
#[derive(Clone)]
#[non_exhaustive]
pub struct AuthzenConfig {
    /// The PDP's base URL (`AUTHZEN_PDP_URL`), e.g. `https://pdp.internal:3592`. Plain
    /// `http://` only to loopback unless `allow_insecure_http`.
    pub url: String,
    /// A bearer token for the PDP (`AUTHZEN_PDP_TOKEN`), sent as `Authorization: Bearer`.
    pub token: Option<SecretString>,
    /// Per-request timeout, connect included (`AUTHZEN_TIMEOUT_MS`, default 2 000 ms).
    pub timeout: Duration,
    /// Read `/.well-known/authzen-configuration` before the first decision
    /// (`AUTHZEN_DISCOVERY`, default `true`); otherwise the standard paths under `url` are
    /// used.
    pub discovery: bool,
    /// Request/response shape (`AUTHZEN_DIALECT`: `generic` or `cerbos`).
    pub dialect: AuthzenDialect,
    /// Allow plain `http://` to non-loopback hosts (`AUTHZEN_ALLOW_INSECURE_HTTP`).
    pub allow_insecure_http: bool,
    /// PEM CA certificates for an `https://` PDP (`AUTHZEN_CA_BUNDLE`). They replace the
    /// webpki roots (one rule with `VAULT_CACERT`, from `secret-http`).
    pub ca_bundle: Option<PathBuf>,
    /// Consecutive failures that open the circuit breaker (`AUTHZEN_BREAKER_THRESHOLD`,
    /// default 5; 0 disables it).
    pub breaker_threshold: u32,
    /// How long an open breaker fails fast before one probe (`AUTHZEN_BREAKER_COOLDOWN_MS`,
    /// default 2 000 ms).
    pub breaker_cooldown: Duration,
    /// Responses larger than this are refused (default 256 KiB).
    pub max_response_bytes: usize,
}

impl fmt::Debug for AuthzenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = if url_has_userinfo(&self.url) {
            "[REDACTED: URL with credentials]"
        } else {
            self.url.as_str()
        };
        f.debug_struct("AuthzenConfig")
            .field("url", &url)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("timeout", &self.timeout)
            .field("discovery", &self.discovery)
            .field("dialect", &self.dialect)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("ca_bundle", &self.ca_bundle)
            .field("breaker_threshold", &self.breaker_threshold)
            .field("breaker_cooldown", &self.breaker_cooldown)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

impl AuthzenConfig {
    /// Defaults for the PDP at `url`.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
            timeout: Duration::from_millis(2000),
            discovery: true,
            dialect: AuthzenDialect::Generic,
            allow_insecure_http: false,
            ca_bundle: None,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_millis(2000),
            max_response_bytes: 256 * 1024,
        }
    }

    /// Sets the bearer token.
    #[must_use]
    pub fn with_token(mut self, token: SecretString) -> Self {
        self.token = Some(token);
        self
    }

    /// Sets the per-request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Turns discovery on or off.
    #[must_use]
    pub fn with_discovery(mut self, discovery: bool) -> Self {
        self.discovery = discovery;
        self
    }

    /// Sets the dialect.
    #[must_use]
    pub fn with_dialect(mut self, dialect: AuthzenDialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// Allows plain `http://` to non-loopback hosts.
    #[must_use]
    pub fn with_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Adds a PEM CA bundle.
    #[must_use]
    pub fn with_ca_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_bundle = Some(path.into());
        self
    }

    /// Sets the circuit breaker (`threshold == 0` disables it).
    #[must_use]
    pub fn with_breaker(mut self, threshold: u32, cooldown: Duration) -> Self {
        self.breaker_threshold = threshold;
        self.breaker_cooldown = cooldown;
        self
    }

    pub(super) fn from_lookup(url: String, env: &Env<'_>) -> Result<Self, PepError> {
        if url_has_userinfo(&url) {
            return Err(PepError::invalid("AUTHZEN_PDP_URL", USERINFO_REFUSED));
        }
        let mut config = Self::new(url);
        config.token = env.get("AUTHZEN_PDP_TOKEN").map(SecretString::from);
        config.timeout = env.millis("AUTHZEN_TIMEOUT_MS", config.timeout)?;
        config.discovery = env.flag("AUTHZEN_DISCOVERY", config.discovery)?;
        config.dialect = match env
            .get("AUTHZEN_DIALECT")
            .as_deref()
            .map(str::to_ascii_lowercase)
        {
            None => AuthzenDialect::Generic,
            Some(d) if d == "generic" => AuthzenDialect::Generic,
            Some(d) if d == "cerbos" => AuthzenDialect::Cerbos,
            Some(_) => {
                return Err(PepError::invalid(
                    "AUTHZEN_DIALECT",
                    "must be `generic` or `cerbos`",
                ));
            }
        };
        config.allow_insecure_http = env.flag("AUTHZEN_ALLOW_INSECURE_HTTP", false)?;
        config.ca_bundle = env.path("AUTHZEN_CA_BUNDLE");
        config.breaker_threshold = env.number("AUTHZEN_BREAKER_THRESHOLD", 5)?;
        config.breaker_cooldown =
            env.millis("AUTHZEN_BREAKER_COOLDOWN_MS", config.breaker_cooldown)?;
        Ok(config)
    }
}

/// Why an `AUTHZEN_PDP_URL` with credentials is refused (the setting is named by the error).
pub(crate) const USERINFO_REFUSED: &str =
    "must not carry user:password@ credentials; use AUTHZEN_PDP_TOKEN";

/// Whether the URL's authority has a `user[:password]@` part.
pub(crate) fn url_has_userinfo(url: &str) -> bool {
    let rest = url.trim().split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@')
}
