//! Lazy authentication, renewal and re-login.
//!
//! The current token lives behind a `std` `RwLock` so the read path costs one uncontended read
//! lock and an `Arc` clone; logins and renewals are serialized by an async mutex so concurrent
//! first reads cause one login.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use secrecy::ExposeSecret;
use secret_telemetry::{Metrics, names};
use tracing::Instrument as _;
use zeroize::Zeroizing;

use super::config::Kv2Auth;
use super::response::{Lease, auth_reply, lookup_reply};
use super::transport::Transport;
use crate::ProviderError;

/// Renew (or log in again) once this share of the token's lifetime has passed.
const RENEW_AT: (u32, u32) = (2, 3);
/// Stop using a token this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_millis(500);
/// After a 403 made us log in again, further 403s within this interval are answered
/// `PERMISSION_DENIED` without `lookup-self` or another login: a policy that denies the path
/// (and `lookup-self`) would otherwise cost a login, and a `secret_id` use, on every read.
const REAUTH_AFTER_403_INTERVAL: Duration = Duration::from_secs(30);
/// Leases longer than this (about 10 years) are treated as this long: the server's `u64`
/// would otherwise overflow `Instant` arithmetic.
const MAX_LEASE: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// A token ready to put on the wire.
pub(crate) struct Token {
    /// The token as an `X-Vault-Token` value, marked sensitive. It is the one long-lived copy
    /// of a token obtained by login; `HeaderValue` cannot be zeroized, see the crate docs.
    pub(crate) header: HeaderValue,
    pub(crate) generation: u64,
    /// `None`: never expires (TTL 0), nothing to renew.
    renew_at: Option<Instant>,
    expires_at: Option<Instant>,
    renewable: bool,
}

impl Token {
    fn needs_refresh(&self, now: Instant) -> bool {
        self.renew_at.is_some_and(|at| now >= at)
    }

    fn usable(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now + EXPIRY_MARGIN < at)
    }
}

pub(crate) struct AuthState {
    method: Kv2Auth,
    current: RwLock<Option<Arc<Token>>>,
    refresh: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    /// The last failed refresh and when it ended, so tasks that queued on `refresh` before
    /// it share its result instead of each logging in again against a failing server.
    /// Cleared by a successful refresh.
    last_failure: Mutex<Option<(Instant, ProviderError)>>,
    /// The newest generation a 403 has already been allowed to replace.
    reauthenticated: AtomicU64,
    /// When a 403 last made us drop the token and log in again.
    last_403_reauth: Mutex<Option<Instant>>,
    /// Where each TTL the server tells us is recorded (`secrets.token.ttl_remaining`).
    metrics: Metrics,
}

impl AuthState {
    pub(crate) fn new(method: Kv2Auth, metrics: Metrics) -> Self {
        Self {
            metrics,
            method,
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            last_failure: Mutex::new(None),
            reauthenticated: AtomicU64::new(0),
            last_403_reauth: Mutex::new(None),
        }
    }

    pub(crate) fn method(&self) -> &Kv2Auth {
        &self.method
    }

    fn load(&self) -> Option<Arc<Token>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn store(&self, token: Option<Arc<Token>>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = token;
    }

    /// A token to send: the current one, or a fresh one after logging in or renewing.
    pub(crate) async fn token(&self, transport: &Transport) -> Result<Arc<Token>, ProviderError> {
        let current = self.load();
        if let Some(token) = &current {
            // Tokens that never expire skip the clock entirely.
            if token.renew_at.is_none() {
                return Ok(Arc::clone(token));
            }
            let now = Instant::now();
            if !token.needs_refresh(now) {
                return Ok(Arc::clone(token));
            }
            // Due for renewal but still valid: one task renews, the others keep reading.
            if token.usable(now) {
                let Ok(_guard) = self.refresh.try_lock() else {
                    return Ok(Arc::clone(token));
                };
                return self.refresh_recorded(transport).await;
            }
        }
        let waiting_since = Instant::now();
        let _guard = self.refresh.lock().await;
        if let Some(error) = self.failure_since(waiting_since) {
            return Err(error);
        }
        self.refresh_recorded(transport).await
    }

    /// A copy of the refresh failure that ended after `since`, if the last refresh failed.
    fn failure_since(&self, since: Instant) -> Option<ProviderError> {
        let last = self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &*last {
            Some((at, error)) if *at >= since => Some(error.snapshot()),
            _ => None,
        }
    }

    /// [`refresh_locked`](Self::refresh_locked), remembering its failure for the tasks
    /// queued behind it.
    async fn refresh_recorded(&self, transport: &Transport) -> Result<Arc<Token>, ProviderError> {
        let result = self.refresh_locked(transport).await;
        let record = result
            .as_ref()
            .err()
            .map(|e| (Instant::now(), e.snapshot()));
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = record;
        result
    }

    /// After a read with `token` got a 403: whether to read again with a new token.
    ///
    /// OpenBao answers 403 both for a bad token and for a path outside the policy, so the
    /// token is checked with `lookup-self` first. Only if that is refused too is the token
    /// dropped so the next [`token`](Self::token) authenticates again, at most once per token
    /// generation and once per [`REAUTH_AFTER_403_INTERVAL`].
    pub(crate) async fn retry_after_403(&self, transport: &Transport, token: &Token) -> bool {
        if !self.method.can_reauthenticate() {
            return false;
        }
        let now = Instant::now();
        if self.reauthenticated_since(now) {
            // Another task's re-login already replaced the denied token (or is under way):
            // retrying with that one costs no login.
            let replaced = self
                .load()
                .is_none_or(|current| current.generation != token.generation);
            if !replaced {
                tracing::debug!(
                    provider = transport.provider,
                    "403 soon after a re-login: permission denied"
                );
            }
            return replaced;
        }
        let valid = match self.lookup_status(transport, &token.header).await {
            Ok(status) => status == StatusCode::OK,
            Err(error) => {
                tracing::debug!(
                    provider = transport.provider,
                    code = error.code(),
                    "lookup-self after 403 failed; keeping the token"
                );
                true
            }
        };
        if valid {
            tracing::debug!(
                provider = transport.provider,
                "403 with a valid token: permission denied"
            );
            return false;
        }
        let retry = self.invalidate(token.generation);
        if retry {
            *self
                .last_403_reauth
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(now);
        }
        retry
    }

    /// Whether a 403 made us log in again less than [`REAUTH_AFTER_403_INTERVAL`] ago.
    fn reauthenticated_since(&self, now: Instant) -> bool {
        self.last_403_reauth
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| now.saturating_duration_since(at) < REAUTH_AFTER_403_INTERVAL)
    }

    /// Drops `generation` so the next [`token`](Self::token) authenticates again. Returns
    /// whether a retry can use another token: false once this generation has been replaced
    /// after a 403 and no newer token exists.
    fn invalidate(&self, generation: u64) -> bool {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        // Under the write lock, so of two tasks denied on one generation the first drops it
        // and the second sees it gone.
        let first = self.reauthenticated.fetch_max(generation, Ordering::AcqRel) < generation;
        match current.as_ref() {
            Some(t) if t.generation == generation => {
                if first {
                    *current = None;
                }
                first
            }
            // Another task already replaced it (or is about to log in): retry with that.
            _ => true,
        }
    }

    /// With the refresh lock held: re-check, then renew or authenticate.
    async fn refresh_locked(&self, transport: &Transport) -> Result<Arc<Token>, ProviderError> {
        let now = Instant::now();
        let current = self.load();
        tracing::trace!(
            provider = transport.provider,
            has_token = current.is_some(),
            due = current.as_ref().is_some_and(|t| t.needs_refresh(now)),
            "token refresh check"
        );
        match current {
            Some(token) if !token.needs_refresh(now) => Ok(token),
            // Renewal is tried even when our (rounded-down) estimate says the token is about to
            // expire: the server knows better, and a failure falls back below.
            Some(token) if token.renewable => match self.renew(transport, &token).await {
                Ok(renewed) => Ok(renewed),
                Err(error) if error.is_transient() && token.usable(now) => {
                    tracing::warn!(
                        provider = transport.provider,
                        code = error.code(),
                        "token renewal failed; will retry"
                    );
                    Ok(self.refresh_later(&token, now))
                }
                Err(error) if self.method.can_reauthenticate() => {
                    tracing::debug!(
                        provider = transport.provider,
                        code = error.code(),
                        "renewal failed; logging in again"
                    );
                    self.authenticate(transport).await
                }
                Err(error) => {
                    tracing::warn!(
                        provider = transport.provider,
                        code = error.code(),
                        "token renewal failed"
                    );
                    Ok(self.keep_without_renewal(&token))
                }
            },
            Some(token) if !self.method.can_reauthenticate() => {
                // A static token we cannot replace: keep using it; the server decides.
                Ok(self.keep_without_renewal(&token))
            }
            current => match (self.authenticate(transport).await, current) {
                // The server is briefly away but the old token still works: use it meanwhile.
                (Err(error), Some(token)) if error.is_transient() && token.usable(now) => {
                    tracing::warn!(
                        provider = transport.provider,
                        code = error.code(),
                        "login failed; will retry"
                    );
                    Ok(self.refresh_later(&token, now))
                }
                (result, _) => result,
            },
        }
    }

    /// The same token, due for another refresh attempt halfway to its expiry (at least 1 s).
    fn refresh_later(&self, token: &Token, now: Instant) -> Arc<Token> {
        let left = token
            .expires_at
            .map_or(Duration::ZERO, |at| at.saturating_duration_since(now));
        let later = Arc::new(Token {
            header: token.header.clone(),
            generation: token.generation,
            renew_at: Some(now + (left / 2).max(Duration::from_secs(1))),
            expires_at: token.expires_at,
            renewable: token.renewable,
        });
        self.store(Some(Arc::clone(&later)));
        later
    }

    fn keep_without_renewal(&self, token: &Token) -> Arc<Token> {
        let kept = Arc::new(Token {
            header: token.header.clone(),
            generation: token.generation,
            renew_at: None,
            expires_at: None,
            renewable: false,
        });
        self.store(Some(Arc::clone(&kept)));
        kept
    }

    fn install(&self, header: HeaderValue, lease: &Lease, obtained: Instant) -> Arc<Token> {
        let (renew_at, expires_at) = if lease.ttl == 0 {
            (None, None)
        } else {
            lease_deadlines(Duration::from_secs(lease.ttl), obtained)
        };
        let token = Arc::new(Token {
            header,
            generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
            renew_at,
            expires_at,
            renewable: lease.renewable,
        });
        self.store(Some(Arc::clone(&token)));
        token
    }

    /// [`renew_unspanned`](Self::renew_unspanned) in a `login` span of kind `renew`.
    async fn renew(
        &self,
        transport: &Transport,
        token: &Token,
    ) -> Result<Arc<Token>, ProviderError> {
        let span = self.login_span(transport, "renew");
        let result = self
            .renew_unspanned(transport, token)
            .instrument(span.clone())
            .await;
        record_outcome(&span, &result);
        result
    }

    /// [`authenticate_unspanned`](Self::authenticate_unspanned) in a `login` span of kind
    /// `login`.
    async fn authenticate(&self, transport: &Transport) -> Result<Arc<Token>, ProviderError> {
        let span = self.login_span(transport, "login");
        let result = self
            .authenticate_unspanned(transport)
            .instrument(span.clone())
            .await;
        record_outcome(&span, &result);
        result
    }

    /// The `login` span (DEBUG) of one login or renewal: the provider, the auth method (a
    /// closed set: `token`, `approle`, `kubernetes`) and the kind, then `outcome` and, on
    /// failure, `code`. Never the token, role, role ID, secret ID or JWT, nor the auth mount.
    fn login_span(&self, transport: &Transport, kind: &'static str) -> tracing::Span {
        tracing::debug_span!(
            names::span::LOGIN,
            provider = transport.provider,
            auth_method = self.method.method(),
            kind,
            outcome = tracing::field::Empty,
            code = tracing::field::Empty,
        )
    }

    /// A TTL the server gave for our token (on login, renewal or lookup). TTL 0 means the
    /// token never expires (or the server did not say): nothing to count down, no point.
    fn record_ttl(&self, provider: &'static str, ttl: u64) {
        if ttl > 0 {
            self.metrics.token_ttl(provider, Duration::from_secs(ttl));
        }
    }

    async fn renew_unspanned(
        &self,
        transport: &Transport,
        token: &Token,
    ) -> Result<Arc<Token>, ProviderError> {
        let provider = transport.provider;
        let url = transport.url("auth/token/renew-self")?;
        let started = Instant::now();
        let reply = transport
            .send(
                Method::POST,
                &url,
                Some(&token.header),
                Some(Bytes::from_static(b"{}")),
            )
            .await?;
        if reply.status != StatusCode::OK {
            return Err(auth_failed(provider, "token", Some(reply.status)));
        }
        let lease = auth_reply(&reply.body).ok_or(ProviderError::MalformedResponse {
            provider,
            status: 200,
            reason: "renew-self response has no `auth`",
        })?;
        if lease.ttl == 0 {
            // Only `lookup-self` on a non-expiring token means "never expires"; a renewal
            // without a lease says nothing, so log in again (or look the token up again).
            tracing::debug!(provider, "renewal returned no lease; authenticating again");
            return self.authenticate(transport).await;
        }
        tracing::debug!(provider, ttl_s = lease.ttl, "token renewed");
        self.record_ttl(provider, lease.ttl);
        Ok(self.install(token.header.clone(), &lease, started))
    }

    async fn authenticate_unspanned(
        &self,
        transport: &Transport,
    ) -> Result<Arc<Token>, ProviderError> {
        let provider = transport.provider;
        let started = Instant::now();
        let (header, lease) = match &self.method {
            Kv2Auth::Token { token } => {
                let header = header_value(provider, token.expose_secret())?;
                let lease = self.lookup(transport, &header).await?;
                (header, lease)
            }
            Kv2Auth::TokenFile { path } => {
                let text = read_secret_file(path).map_err(|e| auth_io(provider, "token", e))?;
                let header = header_value(provider, text.trim())?;
                let lease = self.lookup(transport, &header).await?;
                (header, lease)
            }
            Kv2Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let mut body = serde_json::json!({ "role_id": role_id });
                if let Some(secret_id) = secret_id {
                    body["secret_id"] = secret_id.expose_secret().into();
                }
                self.login(transport, "approle", mount, body).await?
            }
            Kv2Auth::Kubernetes {
                mount,
                role,
                jwt_path,
            } => {
                let jwt =
                    read_secret_file(jwt_path).map_err(|e| auth_io(provider, "kubernetes", e))?;
                let body = serde_json::json!({ "role": role, "jwt": jwt.trim() });
                self.login(transport, "kubernetes", mount, body).await?
            }
        };
        self.record_ttl(provider, lease.ttl);
        let token = self.install(header, &lease, started);
        tracing::debug!(
            provider,
            method = self.method.method(),
            ttl_s = lease.ttl,
            renewable = lease.renewable,
            "authenticated"
        );
        Ok(token)
    }

    /// What the server says about a token we were given: TTL 0 means it never expires, so
    /// no further lookups are made. A token that may not look itself up is used as is.
    async fn lookup(
        &self,
        transport: &Transport,
        header: &HeaderValue,
    ) -> Result<Lease, ProviderError> {
        let url = transport.url("auth/token/lookup-self")?;
        let reply = transport
            .send(Method::GET, &url, Some(header), None)
            .await?;
        let lease = (reply.status == StatusCode::OK)
            .then(|| lookup_reply(&reply.body))
            .flatten();
        Ok(lease.unwrap_or_else(|| {
            tracing::debug!(
                provider = transport.provider,
                status = reply.status.as_u16(),
                "token lookup-self unavailable"
            );
            Lease {
                token: None,
                ttl: 0,
                renewable: false,
            }
        }))
    }

    /// The status `lookup-self` answers for `header`.
    async fn lookup_status(
        &self,
        transport: &Transport,
        header: &HeaderValue,
    ) -> Result<StatusCode, ProviderError> {
        let url = transport.url("auth/token/lookup-self")?;
        let reply = transport
            .send(Method::GET, &url, Some(header), None)
            .await?;
        if reply.status == StatusCode::OK
            && let Some(lease) = lookup_reply(&reply.body)
        {
            self.record_ttl(transport.provider, lease.ttl);
        }
        Ok(reply.status)
    }

    async fn login(
        &self,
        transport: &Transport,
        method: &'static str,
        mount: &str,
        mut body: serde_json::Value,
    ) -> Result<(HeaderValue, Lease), ProviderError> {
        let provider = transport.provider;
        let url = transport.url(&format!("auth/{}/login", mount.trim_matches('/')))?;
        // `send` wipes the payload once the request is done with it.
        let payload = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        crate::value::wipe(&mut body);
        // Sent at most once: a retry after a lost response could find a single-use
        // `secret_id` already consumed and turn a transient failure into `AUTH_FAILED`.
        let reply = transport
            .send_once(Method::POST, &url, None, Some(payload))
            .await?;
        if reply.status != StatusCode::OK {
            return Err(auth_failed(provider, method, Some(reply.status)));
        }
        let mut lease = auth_reply(&reply.body).ok_or(ProviderError::MalformedResponse {
            provider,
            status: 200,
            reason: "login response has no `auth`",
        })?;
        let token = lease
            .token
            .take()
            .ok_or_else(|| auth_failed(provider, method, Some(reply.status)))?;
        Ok((header_value(provider, &token)?, lease))
    }
}

/// `outcome` (`ok` or `error`) and, on failure, the error's `code`.
fn record_outcome<T>(span: &tracing::Span, result: &Result<T, ProviderError>) {
    if span.is_disabled() {
        return;
    }
    match result {
        Ok(_) => span.record("outcome", "ok"),
        Err(error) => span.record("outcome", "error").record("code", error.code()),
    };
}

/// When to renew and when a lease of `ttl` obtained at `obtained` ends, clamped to
/// [`MAX_LEASE`]. `None` only if even the clamped deadline does not fit in an `Instant`.
fn lease_deadlines(ttl: Duration, obtained: Instant) -> (Option<Instant>, Option<Instant>) {
    let ttl = ttl.min(MAX_LEASE);
    let renew_after = ttl
        .checked_mul(RENEW_AT.0)
        .map_or(ttl, |scaled| scaled / RENEW_AT.1);
    let expires_at = obtained.checked_add(ttl);
    let renew_at = obtained.checked_add(renew_after).or(expires_at);
    (renew_at, expires_at)
}

fn header_value(provider: &'static str, token: &str) -> Result<HeaderValue, ProviderError> {
    let mut header = HeaderValue::from_str(token).map_err(|_| {
        ProviderError::config(
            provider,
            "token",
            "holds characters not allowed in a header",
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}

fn read_secret_file(path: &std::path::Path) -> std::io::Result<Zeroizing<String>> {
    std::fs::read_to_string(path).map(Zeroizing::new)
}

fn auth_failed(
    provider: &'static str,
    method: &'static str,
    status: Option<StatusCode>,
) -> ProviderError {
    ProviderError::AuthFailed {
        provider,
        method,
        status: status.map(|s| s.as_u16()),
        source: None,
    }
}

fn auth_io(provider: &'static str, method: &'static str, source: std::io::Error) -> ProviderError {
    ProviderError::AuthFailed {
        provider,
        method,
        status: None,
        source: Some(Box::new(source)),
    }
}
