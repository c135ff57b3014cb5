//! Where the PEP keeps its state ([`StateSettings`]) and the Redis settings ([`RedisConfig`]).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secret_config::Env;
use zeroize::Zeroizing;

use crate::PepError;

/// The shortest key accepted for the keyed hashes of Redis keys (`PEP_STATE_KEY`), in bytes.
pub const MIN_STATE_KEY_BYTES: usize = 16;
/// The longest accepted `REDIS_TIMEOUT_MS` and `REDIS_CONNECT_TIMEOUT_MS` (60 s).
const MAX_REDIS_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a [`Pep`](crate::Pep) built from a [`PepConfig`](crate::PepConfig) keeps its grants,
/// use counts, `jti`s and denials (unless [`PepBuilder::state`](crate::PepBuilder::state)
/// says otherwise).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum StateSettings {
    /// In the PEP's own memory (the default): one process, one state.
    #[default]
    Memory,
    /// On Redis (`REDIS_URL`; feature `redis`): every replica of the tenant shares one replay
    /// window, one use count per grant and one negative cache.
    Redis(RedisConfig),
}

/// How to reach the Redis that holds the PEP's shared state, and how to key it.
///
/// Read from the environment by [`PepConfig::from_lookup`](crate::PepConfig::from_lookup):
///
/// | Variable | Meaning | Default |
/// | --- | --- | --- |
/// | `REDIS_URL` | `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS: rustls with ring, the webpki roots or `REDIS_CA_BUNDLE`) | none: in-memory state |
/// | `REDIS_KEY_PREFIX` | prepended to every key | empty |
/// | `PEP_STATE_KEY` | the key (at least 16 bytes) of the HMAC that names every Redis key; every replica of the tenant must share it | `SECRET_TENANT_SALT` |
/// | `REDIS_TIMEOUT_MS` | bound on every call, connecting included (`STATE_STORE_UNAVAILABLE` past it) | 1 000 |
/// | `REDIS_CONNECT_TIMEOUT_MS` | bound on one connection attempt | 1 000 |
/// | `REDIS_CA_BUNDLE` | PEM CA certificates for `rediss://`; they replace the webpki roots | none |
///
/// `Debug` shows the URL's scheme only (a URL may hold a password) and never the key.
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    url: Zeroizing<String>,
    state_key: Zeroizing<Vec<u8>>,
    /// Prepended to every key (`REDIS_KEY_PREFIX`), e.g. `prod:`.
    pub key_prefix: String,
    /// Bound on every call, connecting included (`REDIS_TIMEOUT_MS`, default 1 s).
    pub timeout: Duration,
    /// Bound on one connection attempt (`REDIS_CONNECT_TIMEOUT_MS`, default 1 s).
    pub connect_timeout: Duration,
    /// PEM CA certificates for `rediss://` (`REDIS_CA_BUNDLE`); they replace the webpki roots.
    pub ca_bundle: Option<PathBuf>,
    /// How long a replica's claim to ask the PDP about a grant key holds before another
    /// replica may ask (default 5 s): longer than the PDP's timeout.
    pub claim_ttl: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &format_args!("{}://[REDACTED]", self.scheme()))
            .field("state_key", &"[REDACTED]")
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("ca_bundle", &self.ca_bundle)
            .field("claim_ttl", &self.claim_ttl)
            .finish()
    }
}

impl RedisConfig {
    /// Redis at `url` (`redis://` or `rediss://`), its keys named by an HMAC under
    /// `state_key` (at least [`MIN_STATE_KEY_BYTES`]; every replica of the tenant must use the
    /// same one).
    ///
    /// # Errors
    /// `CONFIG` naming `REDIS_URL` (not a `redis://` or `rediss://` URL with a host) or
    /// `PEP_STATE_KEY` (too short); never the value.
    pub fn new(url: impl Into<String>, state_key: &[u8]) -> Result<Self, PepError> {
        Self::with_setting(url.into(), state_key, "PEP_STATE_KEY")
    }

    fn with_setting(
        url: String,
        state_key: &[u8],
        key_setting: &'static str,
    ) -> Result<Self, PepError> {
        let url = Zeroizing::new(url.trim().to_owned());
        check_url(&url)?;
        if state_key.len() < MIN_STATE_KEY_BYTES {
            return Err(PepError::invalid(
                key_setting,
                format!(
                    "must be at least {MIN_STATE_KEY_BYTES} bytes to key the PEP's Redis state \
                     (32 random bytes recommended)"
                ),
            ));
        }
        Ok(Self {
            url,
            state_key: Zeroizing::new(state_key.to_vec()),
            key_prefix: String::new(),
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            ca_bundle: None,
            claim_ttl: Duration::from_secs(5),
        })
    }

    /// Reads the Redis settings (see the table above); `None` when `REDIS_URL` is not set.
    pub(crate) fn from_env(env: &Env<'_>) -> Result<Option<Self>, PepError> {
        let Some(url) = env.raw("REDIS_URL").map(Zeroizing::new) else {
            return Ok(None);
        };
        if url.trim().is_empty() {
            return Ok(None);
        }
        let (key, setting) = match env.raw("PEP_STATE_KEY").map(Zeroizing::new) {
            Some(key) if !key.trim().is_empty() => (key, "PEP_STATE_KEY"),
            _ => match env.raw("SECRET_TENANT_SALT").map(Zeroizing::new) {
                Some(salt) if !salt.trim().is_empty() => (salt, "SECRET_TENANT_SALT"),
                _ => {
                    return Err(PepError::invalid(
                        "PEP_STATE_KEY",
                        "is required with REDIS_URL (or SECRET_TENANT_SALT): the HMAC key of \
                         the PEP's Redis keys, shared by every replica",
                    ));
                }
            },
        };
        let mut config = Self::with_setting(url.to_string(), key.trim().as_bytes(), setting)?;
        config.key_prefix = env.get("REDIS_KEY_PREFIX").unwrap_or_default();
        config.timeout = env.millis("REDIS_TIMEOUT_MS", config.timeout)?;
        config.connect_timeout = env.millis("REDIS_CONNECT_TIMEOUT_MS", config.connect_timeout)?;
        config.ca_bundle = env.path("REDIS_CA_BUNDLE");
        config.validate()?;
        Ok(Some(config))
    }

    /// Sets the key prefix.
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets the bound on every call and on one connection attempt.
    #[must_use]
    pub fn with_timeouts(mut self, call: Duration, connect: Duration) -> Self {
        self.timeout = call;
        self.connect_timeout = connect;
        self
    }

    /// Uses the PEM CA certificates in `path` for `rediss://` instead of the webpki roots.
    #[must_use]
    pub fn with_ca_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_bundle = Some(path.into());
        self
    }

    /// Sets how long a claim to ask the PDP holds.
    #[must_use]
    pub fn with_claim_ttl(mut self, ttl: Duration) -> Self {
        self.claim_ttl = ttl;
        self
    }

    /// `redis` or `rediss` (TLS).
    #[must_use]
    pub fn scheme(&self) -> &'static str {
        if is_tls(&self.url) { "rediss" } else { "redis" }
    }

    /// The URL (may hold a password).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The key of the keyed hashes.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn state_key(&self) -> &[u8] {
        &self.state_key
    }

    /// Checks the timeouts.
    pub(crate) fn validate(&self) -> Result<(), PepError> {
        for (value, setting) in [
            (self.timeout, "REDIS_TIMEOUT_MS"),
            (self.connect_timeout, "REDIS_CONNECT_TIMEOUT_MS"),
        ] {
            if value.is_zero() || value > MAX_REDIS_TIMEOUT {
                return Err(PepError::invalid(
                    setting,
                    "must be between 1 and 60000 milliseconds",
                ));
            }
        }
        if self.claim_ttl.is_zero() || self.claim_ttl > MAX_REDIS_TIMEOUT {
            return Err(PepError::invalid(
                "RedisConfig::claim_ttl",
                "must be between 1 ms and 60 s",
            ));
        }
        Ok(())
    }
}

fn is_tls(url: &str) -> bool {
    url.get(..9)
        .is_some_and(|s| s.eq_ignore_ascii_case("rediss://"))
}

/// `redis://` or `rediss://` with a host; the error never holds the URL.
fn check_url(url: &str) -> Result<(), PepError> {
    let rest = if is_tls(url) {
        &url[9..]
    } else if url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("redis://"))
    {
        &url[8..]
    } else {
        return Err(PepError::invalid(
            "REDIS_URL",
            "must be a redis:// or rediss:// URL",
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(PepError::invalid("REDIS_URL", "must name a host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef-state";

    #[test]
    fn urls_are_checked_and_never_shown() {
        for good in [
            "redis://127.0.0.1:6379",
            "REDISS://u:pw@cache.internal/2",
            "redis://h",
        ] {
            assert!(RedisConfig::new(good, KEY).is_ok(), "{good}");
        }
        for bad in [
            "http://h",
            "redis://",
            "redis://:6379",
            "redis:/h",
            "h:6379",
            "",
        ] {
            let err = RedisConfig::new(bad, KEY).unwrap_err();
            assert_eq!(err.setting(), Some("REDIS_URL"), "{bad}");
        }
        let config = RedisConfig::new("rediss://svc:hunter2-canary@cache:6380", KEY).unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("cache:6380"),
            "{shown}"
        );
        assert!(shown.contains("rediss://[REDACTED]"), "{shown}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        let err = RedisConfig::new("redis://pw-canary@", KEY).unwrap_err();
        assert!(!format!("{err} {err:?}").contains("pw-canary"));
        let short = RedisConfig::new("redis://h", b"short").unwrap_err();
        assert_eq!(short.setting(), Some("PEP_STATE_KEY"));
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn settings_from_the_environment() -> Result<(), PepError> {
        let lookup = env_of(&[]);
        assert!(RedisConfig::from_env(&Env::new(&lookup))?.is_none());
        let lookup = env_of(&[
            ("REDIS_URL", "redis://:pw@127.0.0.1:7000"),
            ("REDIS_KEY_PREFIX", "prod:"),
            ("REDIS_TIMEOUT_MS", "250"),
            ("SECRET_TENANT_SALT", "tenant-salt-0123456789"),
        ]);
        let config = RedisConfig::from_env(&Env::new(&lookup))?.unwrap();
        assert_eq!(config.key_prefix, "prod:");
        assert_eq!(config.timeout, Duration::from_millis(250));
        assert_eq!(config.state_key(), b"tenant-salt-0123456789");
        let lookup = env_of(&[
            ("REDIS_URL", "redis://127.0.0.1:7000"),
            ("PEP_STATE_KEY", "pep-state-key-0123456789"),
            ("SECRET_TENANT_SALT", "tenant-salt-0123456789"),
        ]);
        let config = RedisConfig::from_env(&Env::new(&lookup))?.unwrap();
        assert_eq!(config.state_key(), b"pep-state-key-0123456789");
        for (pairs, setting) in [
            (&[("REDIS_URL", "redis://h")][..], "PEP_STATE_KEY"),
            (
                &[
                    ("REDIS_URL", "redis://h"),
                    ("SECRET_TENANT_SALT", "short-canary"),
                ][..],
                "SECRET_TENANT_SALT",
            ),
            (
                &[
                    ("REDIS_URL", "redis://h"),
                    ("PEP_STATE_KEY", "pep-state-key-0123456789"),
                    ("REDIS_TIMEOUT_MS", "0"),
                ][..],
                "REDIS_TIMEOUT_MS",
            ),
            (
                &[
                    ("REDIS_URL", "memcached://pw-canary@h"),
                    ("PEP_STATE_KEY", "pep-state-key-0123456789"),
                ][..],
                "REDIS_URL",
            ),
        ] {
            let lookup = move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            };
            let err = RedisConfig::from_env(&Env::new(&lookup)).unwrap_err();
            assert_eq!(err.setting(), Some(setting));
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("canary"), "{shown}");
        }
        Ok(())
    }
}
