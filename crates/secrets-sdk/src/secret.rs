//! [`Secret`]: a resolved value as the client hands it out, and the cache entry behind it.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use secrecy::SecretString;
use secret_providers::SecretValue;
use secret_uri::SecretUri;
use zeroize::Zeroizing;

/// One cached (or freshly read) secret. Immutable but for the stale-retry clock and the
/// refresh flag; shared by the cache and every [`Secret`] handed out, so a hit is one `Arc`
/// increment.
pub(crate) struct Entry {
    pub(crate) value: SecretValue,
    pub(crate) uri: SecretUri,
    /// When the read that produced it finished.
    pub(crate) loaded_at: Instant,
    /// Served as a hit until then.
    pub(crate) fresh_until: Instant,
    /// A hit from then on (until `fresh_until`) refreshes the entry in the background
    /// (refresh-ahead); `== fresh_until` when it is never refreshed ahead.
    pub(crate) refresh_at: Instant,
    /// How many times refresh-ahead extended this value without reading it again (the
    /// version was unchanged).
    pub(crate) extensions: u32,
    /// With stale-if-error, servable after a failed refresh until then (`== fresh_until`
    /// without it).
    pub(crate) stale_until: Instant,
    /// Nanoseconds since the client's epoch before which a stale entry is served without
    /// asking the backend again (set after a failed refresh).
    pub(crate) retry_after: AtomicU64,
    /// Set while one caller refreshes this (expired) entry, so that the others are served it
    /// within the stale bound instead of queueing behind that refresh.
    pub(crate) refreshing: AtomicBool,
    hash: OnceLock<UriHash>,
    /// The database lease this value is the only holder of (a `VaultClient` read of
    /// `db+cred://`): revoked when the entry drops, unless kept.
    #[cfg(all(feature = "db", feature = "vault"))]
    pub(crate) lease: Option<crate::lease_guard::LeaseGuard>,
}

impl Entry {
    pub(crate) fn new(
        uri: SecretUri,
        value: SecretValue,
        loaded_at: Instant,
        fresh_until: Instant,
        stale_until: Instant,
    ) -> Self {
        Self {
            value,
            uri,
            loaded_at,
            fresh_until,
            refresh_at: fresh_until,
            extensions: 0,
            stale_until,
            retry_after: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
            hash: OnceLock::new(),
            #[cfg(all(feature = "db", feature = "vault"))]
            lease: None,
        }
    }

    /// The entry as the holder of `lease`.
    #[cfg(all(feature = "db", feature = "vault"))]
    pub(crate) fn with_lease(mut self, lease: crate::lease_guard::LeaseGuard) -> Self {
        self.lease = Some(lease);
        self
    }

    /// The entry refreshed ahead from `at` on.
    pub(crate) fn with_refresh_at(mut self, at: Instant) -> Self {
        self.refresh_at = at.min(self.fresh_until);
        self
    }

    pub(crate) fn uri_hash(&self) -> UriHash {
        *self.hash.get_or_init(|| UriHash::of(&self.uri))
    }
}

pub use secret_audit::UriHash;

/// A resolved secret. Cheap to clone (an `Arc`); `Debug` and `Display` never show the value.
///
/// Reading the value is an explicit `expose_*` call. The cache and every clone share one copy,
/// which is zeroized when the last of them is dropped (see [`SecretValue`]); strings returned
/// by [`expose_as_text`](Self::expose_as_text) and [`expose_as_json`](Self::expose_as_json)
/// are [`Zeroizing`] too.
#[derive(Clone)]
pub struct Secret(pub(crate) Arc<Entry>);

impl Secret {
    /// The canonical URI the value was read for.
    #[must_use]
    pub fn uri(&self) -> &SecretUri {
        &self.0.uri
    }

    /// The value as the provider returned it.
    #[must_use]
    pub fn value(&self) -> &SecretValue {
        &self.0.value
    }

    /// Keeps the database lease this secret holds (a `VaultClient` read of `db+cred://`):
    /// it is no longer revoked when the last clone of this secret is dropped, and ends at its
    /// TTL. Whether the secret held one. (`SecretsClient` leases are the client's: see
    /// [`SecretsClient::keep_leases`](crate::SecretsClient::keep_leases).)
    #[cfg(all(feature = "db", feature = "vault"))]
    pub fn keep_lease(&self) -> bool {
        self.0
            .lease
            .as_ref()
            .map(crate::lease_guard::LeaseGuard::keep)
            .is_some()
    }

    /// Whether the value is text (a text file, or a string field picked with `#key`) rather
    /// than JSON.
    #[must_use]
    pub fn is_text(&self) -> bool {
        self.0.value.is_text()
    }

    /// The text of a text secret; `None` for JSON.
    #[must_use]
    pub fn expose_str(&self) -> Option<&str> {
        self.0.value.expose_str()
    }

    /// The JSON of a JSON secret; `None` for text.
    #[must_use]
    pub fn expose_json(&self) -> Option<&serde_json::Value> {
        self.0.value.expose_json()
    }

    /// The value as raw text, as `secrets resolve` prints it: text as is, JSON compact.
    #[must_use]
    pub fn expose_as_text(&self) -> Zeroizing<String> {
        match self.0.value.expose_str() {
            Some(text) => Zeroizing::new(text.to_owned()),
            None => self.expose_as_json(),
        }
    }

    /// The value as one JSON document, as `secrets resolve --json` prints it: text as a JSON
    /// string (quoted and escaped), JSON compact.
    #[must_use]
    pub fn expose_as_json(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(Vec::with_capacity(64));
        // Writing JSON into a Vec cannot fail.
        let _ = match (self.0.value.expose_str(), self.0.value.expose_json()) {
            (Some(text), _) => serde_json::to_writer(&mut *out, text),
            (None, Some(json)) => serde_json::to_writer(&mut *out, json),
            (None, None) => Ok(()),
        };
        Zeroizing::new(String::from_utf8(std::mem::take(&mut *out)).unwrap_or_default())
    }

    /// The value as a [`SecretString`] (text as is, JSON compact), e.g. for an environment
    /// variable or a connection string.
    #[must_use]
    pub fn to_secret_string(&self) -> SecretString {
        self.0.value.to_secret_string()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("uri", &format_args!("{}", self.0.uri.redacted()))
            .field("value", &format_args!("[REDACTED]"))
            .finish()
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// A URI to resolve: text (parsed, unless it is already a cached canonical URI) or an already
/// parsed [`SecretUri`]. Built implicitly: `client.resolve("file://…")`,
/// `client.resolve(&uri)`.
#[derive(Clone, Copy)]
pub enum UriInput<'a> {
    /// A URI as written.
    Text(&'a str),
    /// A parsed URI.
    Parsed(&'a SecretUri),
}

impl UriInput<'_> {
    /// The text the cache is looked up with first: a canonical URI hits directly.
    pub(crate) fn key(&self) -> &str {
        match self {
            Self::Text(text) => text,
            Self::Parsed(uri) => uri.as_str(),
        }
    }
}

impl fmt::Debug for UriInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(_) => f.write_str("UriInput::Text(..)"),
            Self::Parsed(uri) => write!(f, "UriInput::Parsed({})", uri.redacted()),
        }
    }
}

impl<'a> From<&'a str> for UriInput<'a> {
    fn from(text: &'a str) -> Self {
        Self::Text(text)
    }
}

impl<'a> From<&'a String> for UriInput<'a> {
    fn from(text: &'a String) -> Self {
        Self::Text(text)
    }
}

impl<'a> From<&'a SecretUri> for UriInput<'a> {
    fn from(uri: &'a SecretUri) -> Self {
        Self::Parsed(uri)
    }
}

/// An owned [`UriInput`], for work moved onto the client's runtime.
#[cfg_attr(not(feature = "vault"), allow(dead_code))]
pub(crate) enum OwnedUriInput {
    Text(String),
    Parsed(SecretUri),
}

#[cfg_attr(not(feature = "vault"), allow(dead_code))]
impl OwnedUriInput {
    pub(crate) fn from_input(input: UriInput<'_>) -> Self {
        match input {
            UriInput::Text(text) => Self::Text(text.to_owned()),
            UriInput::Parsed(uri) => Self::Parsed(uri.clone()),
        }
    }

    pub(crate) fn as_input(&self) -> UriInput<'_> {
        match self {
            Self::Text(text) => UriInput::Text(text),
            Self::Parsed(uri) => UriInput::Parsed(uri),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(value: SecretValue) -> Result<Secret, secret_uri::UriError> {
        let now = Instant::now();
        Ok(Secret(Arc::new(Entry::new(
            "file://demo/db.json#password".parse()?,
            value,
            now,
            now,
            now,
        ))))
    }

    #[test]
    fn prints_raw_text_or_json_and_never_debug() -> Result<(), secret_uri::UriError> {
        let text = secret(SecretValue::from_text("a \"quoted\" canary"))?;
        assert_eq!(&*text.expose_as_text(), "a \"quoted\" canary");
        assert_eq!(&*text.expose_as_json(), r#""a \"quoted\" canary""#);
        let json = secret(SecretValue::from_json(
            serde_json::json!({"user": "app", "password": "canary"}),
        ))?;
        assert_eq!(
            &*json.expose_as_json(),
            r#"{"password":"canary","user":"app"}"#
        );
        assert_eq!(&*json.expose_as_text(), &*json.expose_as_json());
        for shown in [format!("{text:?} {text}"), format!("{json:?} {json}")] {
            assert!(!shown.contains("canary"), "{shown}");
            assert!(!shown.contains("db.json"), "{shown}");
        }
        Ok(())
    }
}
