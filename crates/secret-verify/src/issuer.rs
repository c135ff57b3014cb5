//! [`IssuerKeys`]: an issuer's signing keys, found through its metadata and fetched again
//! when a token names a key it does not know, at most once per interval.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use http::Uri;
use secret_http::{ClientConfig, HttpClient, Request, RetryPolicy};
use serde_json::Value;

use crate::error::VerifyError;
use crate::keys::KeySet;

/// The most bytes of an issuer's metadata or key set read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// The least time between two fetches of the key set by default: a flood of tokens naming
/// unknown keys costs the issuer one request per interval, not one per token.
pub const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(30);
/// How long a fetched key set is used before it is fetched again by default: a key the issuer
/// withdraws (a compromised one) stops verifying within this long, even when every token
/// names keys the set still has.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);

/// An issuer's public signing keys, fetched on first use and again (single flight, at most
/// once per [`min_refresh`](Self::with_min_refresh)) when a token names a `kid` the cached set
/// lacks, which is how an issuer's key rotation is picked up, or when the set is older than
/// [`max_age`](Self::with_max_age) (10 minutes), which is how a key the issuer withdrew stops
/// verifying. The key set's URL comes from the
/// issuer's metadata, `/.well-known/openid-configuration` (OpenID Connect Discovery) or,
/// failing that, `/.well-known/oauth-authorization-server` (RFC 8414), whose `issuer` must be
/// the configured one exactly (RFC 8414 §3.3), or it is refused.
#[derive(Clone)]
pub struct IssuerKeys {
    inner: Arc<Inner>,
    min_refresh: Duration,
    max_age: Duration,
}

struct Inner {
    issuer: String,
    base: Uri,
    http: HttpClient,
    /// The key set and when it was fetched.
    keys: RwLock<Option<(Arc<KeySet>, Instant)>>,
    /// Held while fetching: the time of the last fetch, and the key set's URL once known.
    fetch: tokio::sync::Mutex<Fetched>,
}

#[derive(Default)]
struct Fetched {
    at: Option<Instant>,
    jwks_uri: Option<Uri>,
}

impl std::fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKeys")
            .field("issuer", &self.inner.issuer)
            .field("min_refresh", &self.min_refresh)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl IssuerKeys {
    /// Keys of `issuer` (its exact `iss`, an `https` URL, or `http` to loopback), fetched
    /// through a client of `http` (timeout, TLS, CA bundle).
    ///
    /// # Errors
    /// `CONFIG` (`issuer`) for a URL the client would refuse, or a client that cannot be
    /// built.
    pub fn new(issuer: &str, http: &ClientConfig) -> Result<Self, VerifyError> {
        let config_error = |reason| VerifyError::Config {
            setting: "issuer",
            reason,
        };
        let base = secret_http::base_url(issuer, false).map_err(|_| {
            config_error("must be an https URL (or http to loopback) with no query")
        })?;
        let http = HttpClient::new(&http.clone().with_max_body_bytes(MAX_DOCUMENT_BYTES)).map_err(
            |_| config_error("needs an HTTP client that can be built from its settings"),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                issuer: issuer.to_owned(),
                base,
                http,
                keys: RwLock::new(None),
                fetch: tokio::sync::Mutex::new(Fetched::default()),
            }),
            min_refresh: DEFAULT_MIN_REFRESH,
            max_age: DEFAULT_MAX_AGE,
        })
    }

    /// The least time between two fetches of the key set (clones share the keys, each
    /// keeps its own interval).
    #[must_use]
    pub fn with_min_refresh(mut self, min_refresh: Duration) -> Self {
        self.min_refresh = min_refresh;
        self
    }

    /// How long a fetched key set is used before the next call fetches it again (single
    /// flight, no more often than the refresh interval; a failed fetch keeps the set).
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// The issuer these keys are of.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The key set to verify a token naming `kid` with: the cached one when it is younger
    /// than the maximum age and has that key (or the token names none), else a freshly
    /// fetched one, unless the last fetch was less than the refresh interval ago (then the
    /// cached set, which the token's verification refuses with `UNKNOWN_KEY` if it lacks the
    /// key).
    ///
    /// # Errors
    /// `ISSUER_UNAVAILABLE` when no key set was ever fetched and this fetch failed: the
    /// metadata or key set could not be read, is not JSON, names another issuer or holds no
    /// usable key. A failed refresh keeps the cached set.
    pub async fn for_kid(&self, kid: Option<&str>) -> Result<Arc<KeySet>, VerifyError> {
        let usable = |(set, at): &(Arc<KeySet>, Instant)| {
            at.elapsed() < self.max_age && kid.is_none_or(|kid| set.has(kid))
        };
        if let Some((set, _)) = self.cached().filter(usable) {
            return Ok(set);
        }
        let mut fetched = self.inner.fetch.lock().await;
        // Another caller may have fetched while this one waited.
        if let Some((set, _)) = self.cached().filter(usable) {
            return Ok(set);
        }
        let recent = fetched.at.is_some_and(|at| at.elapsed() < self.min_refresh);
        if recent {
            return self
                .cached()
                .map(|(set, _)| set)
                .ok_or(VerifyError::issuer("has no usable key set"));
        }
        fetched.at = Some(Instant::now());
        match self.fetch(&mut fetched).await {
            Ok(set) => {
                let set = Arc::new(set);
                *self
                    .inner
                    .keys
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) =
                    Some((Arc::clone(&set), Instant::now()));
                Ok(set)
            }
            Err(error) => self.cached().map(|(set, _)| set).ok_or(error),
        }
    }

    fn cached(&self) -> Option<(Arc<KeySet>, Instant)> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn fetch(&self, fetched: &mut Fetched) -> Result<KeySet, VerifyError> {
        let jwks_uri = match &fetched.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover().await?;
                fetched.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let document = self.get(&jwks_uri).await?.ok_or(VerifyError::issuer(
            "answered the key set request with an error",
        ))?;
        let text = std::str::from_utf8(&document)
            .map_err(|_| VerifyError::issuer("sent a key set that is not UTF-8"))?;
        KeySet::from_json(text).ok_or(VerifyError::issuer("sent no usable signing key"))
    }

    /// The key set's URL from the issuer's metadata.
    async fn discover(&self) -> Result<Uri, VerifyError> {
        let base = &self.inner.base;
        let origin = format!(
            "{}://{}",
            base.scheme_str().unwrap_or("https"),
            base.authority().map_or("", |a| a.as_str())
        );
        let path = base.path().trim_end_matches('/');
        // OpenID Connect Discovery appends to the issuer; RFC 8414 inserts after the origin.
        let candidates = [
            format!("{origin}{path}/.well-known/openid-configuration"),
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
        ];
        for candidate in candidates {
            let uri: Uri = candidate
                .parse()
                .map_err(|_| VerifyError::issuer("has a URL no metadata URL can be made of"))?;
            let Some(body) = self.get(&uri).await? else {
                continue;
            };
            let Ok(Value::Object(metadata)) = serde_json::from_slice::<Value>(&body) else {
                return Err(VerifyError::issuer(
                    "sent metadata that is not a JSON object",
                ));
            };
            if metadata.get("issuer").and_then(Value::as_str) != Some(self.inner.issuer.as_str()) {
                return Err(VerifyError::issuer("sent metadata naming another issuer"));
            }
            let jwks_uri = metadata
                .get("jwks_uri")
                .and_then(Value::as_str)
                .ok_or(VerifyError::issuer("sent metadata without a jwks_uri"))?;
            return secret_http::base_url(jwks_uri, false)
                .map_err(|_| VerifyError::issuer("names a jwks_uri that is not https"));
        }
        Err(VerifyError::issuer("has no metadata document"))
    }

    /// The body of a `200` to `GET uri`; `None` for a `4xx`.
    async fn get(&self, uri: &Uri) -> Result<Option<secret_http::Body>, VerifyError> {
        // Twice at most: a pooled connection to an issuer that restarted is closed under us.
        let retry = RetryPolicy::attempts(2)
            .with_delays(Duration::from_millis(50), Duration::from_millis(200));
        let response = self
            .inner
            .http
            .send_retrying(&Request::get(uri.clone()).with_idempotent(true), &retry)
            .await
            .map_err(|e| {
                VerifyError::issuer(if e.code() == "STATUS" {
                    "answered with a server error"
                } else {
                    "could not be reached"
                })
            })?;
        match response.status().as_u16() {
            200 => Ok(Some(response.into_body())),
            400..=499 => Ok(None),
            _ => Err(VerifyError::issuer("answered with a server error")),
        }
    }
}

#[cfg(test)]
mod tests;
