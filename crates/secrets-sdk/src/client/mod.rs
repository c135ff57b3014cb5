//! [`SecretsClient`]: routing, the TTL cache with request coalescing, and the blocking entry
//! points.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use quick_cache::sync::{Cache, EntryAction, EntryResult};
use secret_providers::{ProviderError, SecretValue};
use secret_uri::{AllowedMounts, Provider, SecretUri};
use tokio::runtime::Handle;
use tokio::task::{JoinError, JoinHandle};
use tracing::Instrument;
use tracing::field::Empty;

use crate::Error;
use crate::bootstrap::BootstrapSource;
use crate::io_runtime::IoRuntime;
use crate::secret::{Entry, Secret, UriHash, UriInput};

mod builder;
mod deadline;

pub use builder::SecretsClientBuilder;

use deadline::{AbortOnDrop, Deadline, RefreshClaim};

/// The default time a value is served from the cache, 300 s.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
/// The default cache size bound, 10 000 entries.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// The default longest time one resolve may take, 60 s.
pub const DEFAULT_RESOLVE_DEADLINE: Duration = Duration::from_secs(60);
/// The environment variable setting the resolve deadline, in whole seconds.
pub const RESOLVE_DEADLINE_ENV: &str = "SECRETS_RESOLVE_DEADLINE_S";
/// The environment variable listing the mounts the client may read (comma-separated).
pub const ALLOWED_MOUNTS_ENV: &str = "SECRETS_ALLOWED_MOUNTS";
/// After a failed refresh, a stale value is served without asking the backend again for this
/// long (capped by the grace period).
const STALE_RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// The longest a caller refreshing a stale entry waits for the backend before it is served the
/// stale value too (the refresh goes on in the background, bounded by the deadline).
const STALE_REFRESH_WAIT: Duration = Duration::from_secs(1);
/// TTLs and grace periods longer than this (about 10 years) are treated as this long, so that
/// `Duration::MAX` cannot overflow `Instant` arithmetic.
const MAX_CACHE_SPAN: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
/// Bound of the table that hands one failed read to the callers that waited for it.
const FAILURE_SLOTS: usize = 1024;

type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Per-call options for [`SecretsClient::resolve_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolveOptions {
    /// Skip the cache, read from the provider, and put the result in the cache. A failed
    /// refresh leaves a cached value in place when the failure is transient and removes it
    /// otherwise (e.g. `NOT_FOUND` after the secret was deleted).
    pub refresh: bool,
    /// Read without waiting on another task's in-flight read of the same URI. The blocking
    /// API sets it: blocking a thread on a read that a task of that same thread must finish
    /// would never return.
    uncoalesced: bool,
}

impl ResolveOptions {
    /// Options with `refresh` set.
    #[must_use]
    pub fn refresh() -> Self {
        Self {
            refresh: true,
            ..Self::default()
        }
    }
}

/// Resolves Canonical Secret URIs for a service's own configuration: file secrets, and KV v2
/// secrets from OpenBao or HashiCorp Vault with lazy authentication, behind a TTL cache that
/// makes one backend read for any number of concurrent misses on a URI.
///
/// Cheap to clone (an `Arc`); clones share the cache, the providers and the I/O runtime.
/// See the [crate docs](crate) for an example and `docs/secrets-client.md` for every setting.
#[derive(Clone)]
pub struct SecretsClient {
    inner: Arc<Inner>,
}

struct Inner {
    allowed: AllowedMounts,
    #[cfg(feature = "file")]
    file: secret_providers::FileProvider,
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    openbao: Option<secret_providers::Kv2Provider>,
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    hashicorp: Option<secret_providers::Kv2Provider>,
    /// Why no vault is configured, for `NOT_CONFIGURED` errors.
    vault_note: String,
    bootstrap_source: Option<BootstrapSource>,
    cache: Cache<String, Arc<Entry>>,
    failures: Cache<String, Arc<Failure>>,
    settings: CacheSettings,
    epoch: Instant,
    next_sweep: AtomicU64,
    sweep_every: Duration,
    closed: AtomicBool,
    /// Runs KV v2 reads and [`SecretsClient::resolve_blocking`]; created at first use.
    runtime: IoRuntime,
}

#[derive(Debug, Clone, Copy)]
struct CacheSettings {
    ttl: Duration,
    capacity: usize,
    cache_file_secrets: bool,
    stale_if_error: Option<Duration>,
    /// Kept for the builder's setting: file reads always run on the client's blocking pool.
    #[allow(dead_code)]
    offload_file_reads: bool,
    /// The longest one resolve may take, whatever it chains; then `TIMEOUT`.
    resolve_deadline: Duration,
}

/// A failed read, kept so the callers that waited for it get its error instead of each
/// reading again.
struct Failure {
    at: Instant,
    error: Arc<ProviderError>,
}

/// Which provider serves a URI.
enum Route<'a> {
    #[cfg(feature = "file")]
    File(&'a secret_providers::FileProvider),
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    Kv2(&'a secret_providers::Kv2Provider),
    #[cfg(not(any(feature = "file", feature = "openbao", feature = "hashicorp")))]
    #[allow(dead_code)]
    None(std::marker::PhantomData<&'a ()>),
}

/// What the cache did for one resolve, as recorded on the span.
#[derive(Clone, Copy)]
enum CacheState {
    /// A fresh cached value.
    Hit,
    /// Another task's read, waited for.
    Coalesced,
    /// A stale value, served because the backend is unavailable.
    Stale,
    /// Read from the provider and cached.
    Miss,
    /// Read from the provider because of `refresh`.
    Refresh,
    /// Read from the provider, not cached (`cache_file_secrets = false`).
    Off,
}

impl CacheState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Coalesced => "coalesced",
            Self::Stale => "stale",
            Self::Miss => "miss",
            Self::Refresh => "refresh",
            Self::Off => "off",
        }
    }
}

impl SecretsClient {
    /// A client configured from the environment, as the original SDK's `create()`:
    /// the bootstrap precedence (`SECRETS_BOOTSTRAP_PATH` → `/vault/secrets/bootstrap.json` →
    /// `OPENBAO_URL`/`VAULT_URL`), `SECRETS_ALLOWED_MOUNTS` (required) and `FILE_MOUNT_PATH`
    /// (default `/run/secrets`). Without any vault configuration the client still serves
    /// `file://`. No network I/O happens here.
    ///
    /// # Errors
    /// `CONFIG` when `SECRETS_ALLOWED_MOUNTS` is missing or a setting is invalid; bootstrap
    /// errors (`BOOTSTRAP_IO`, `BOOTSTRAP_PARSE`, `BOOTSTRAP_INVALID`) for a bootstrap that
    /// exists but is unusable.
    pub fn create() -> Result<Self, Error> {
        Self::builder().from_env().build()
    }

    /// A builder for everything explicitly; it reads no environment unless told to
    /// ([`SecretsClientBuilder::from_env`]).
    pub fn builder() -> SecretsClientBuilder {
        SecretsClientBuilder::default()
    }

    /// Resolves a URI: from the cache when fresh, else from its provider (one read for any
    /// number of concurrent callers). Accepts `&str`, `&String` or `&SecretUri`; a canonical
    /// URI that is cached is served without parsing.
    ///
    /// KV v2 reads run on the client's own small runtime and file reads on its blocking pool,
    /// so this future can be polled by any executor and a stalled filesystem never holds a
    /// thread that vault I/O needs.
    ///
    /// **Bounded time**: one resolve ends within the resolve deadline
    /// ([`SecretsClientBuilder::resolve_deadline`], default 60 s) whatever lookups, logins,
    /// retries and re-logins it chains; past it, `TIMEOUT`. Callers that waited for that read
    /// get the same `TIMEOUT`; the next resolve tries again.
    ///
    /// **Stale-if-error** ([`SecretsClientBuilder::stale_if_error`]): once a value expires,
    /// one caller refreshes it and every other caller is served the expired value meanwhile
    /// (within the grace period). The refreshing caller waits for the backend at most 1 s,
    /// then is served the stale value too; the refresh goes on in the background (bounded by
    /// the deadline, unaffected by the caller being cancelled) and caches the new value when
    /// it lands. A refresh that fails with `TIMEOUT` or `UNAVAILABLE` keeps the stale value.
    ///
    /// # Errors
    /// See [`Error`]: the URI's and provider's codes (`TIMEOUT` at the deadline),
    /// `NOT_CONFIGURED`, `UNSUPPORTED_PROVIDER`, `TENANT_MOUNT_MISMATCH`, `CLOSED`.
    pub async fn resolve<'a>(&self, uri: impl Into<UriInput<'a>>) -> Result<Secret, Error> {
        self.inner
            .resolve(uri.into(), ResolveOptions::default())
            .await
    }

    /// [`resolve`](Self::resolve) with options, e.g. [`ResolveOptions::refresh`].
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve).
    pub async fn resolve_with<'a>(
        &self,
        uri: impl Into<UriInput<'a>>,
        options: ResolveOptions,
    ) -> Result<Secret, Error> {
        self.inner.resolve(uri.into(), options).await
    }

    /// Resolves every URI concurrently; the results are in the order of `uris`.
    pub async fn resolve_many<I, S>(&self, uris: I) -> Vec<Result<Secret, Error>>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let uris: Vec<S> = uris.into_iter().collect();
        let reads = uris
            .iter()
            .map(|uri| {
                self.inner
                    .resolve(UriInput::Text(uri.as_ref()), ResolveOptions::default())
            })
            .collect();
        join_all(reads).await
    }

    /// Resolves a `file://` URI on the calling thread, with the cache: for configuration
    /// time, before any runtime exists (as the original SDK's `resolve_file_sync`).
    ///
    /// # Errors
    /// `UNSUPPORTED_PROVIDER` for any other scheme (use [`resolve_blocking`](Self::resolve_blocking));
    /// otherwise as [`resolve`](Self::resolve).
    pub fn resolve_file_sync<'a>(&self, uri: impl Into<UriInput<'a>>) -> Result<Secret, Error> {
        self.inner.resolve_file_sync(uri.into())
    }

    /// Resolves any URI from synchronous code. Runs on the client's own runtime, so it works
    /// outside any runtime and also when called from inside a tokio runtime (it blocks the
    /// calling thread, not the caller's executor; prefer [`resolve`](Self::resolve) in async
    /// code). Cache hits, under the canonical form of whatever spelling is given, are
    /// answered on the calling thread. A miss reads the backend itself instead of waiting for
    /// another task's read of the same URI: that task may need the very thread this call
    /// blocks, so waiting could never end. Stale-if-error and the resolve deadline apply as
    /// for [`resolve`](Self::resolve).
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve), plus `RUNTIME` when the client's runtime cannot start.
    pub fn resolve_blocking<'a>(&self, uri: impl Into<UriInput<'a>>) -> Result<Secret, Error> {
        let input = uri.into();
        let inner = &self.inner;
        if inner.closed.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        let started = Instant::now();
        if let Some(secret) = inner.cached(input.key(), started) {
            return Ok(secret);
        }
        // Not a cached canonical spelling: parse here and look the canonical key up, so a
        // `FILE://…` or `?version=3#token` spelling hits as well.
        let owned = match input {
            UriInput::Parsed(uri) => uri.clone(),
            UriInput::Text(text) => {
                let uri = SecretUri::parse(text)?;
                if let Some(secret) = inner.cached(uri.as_str(), started) {
                    return Ok(secret);
                }
                uri
            }
        };
        let handle = inner.io_handle()?;
        let task_inner = Arc::clone(inner);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let span = tracing::Span::current();
        handle.spawn(
            async move {
                let options = ResolveOptions {
                    uncoalesced: true,
                    ..ResolveOptions::default()
                };
                let result = task_inner.resolve(UriInput::Parsed(&owned), options).await;
                // The caller holds the client until it has the result, so the runtime never
                // drops its own last reference to the client.
                drop(task_inner);
                let _ = tx.send(result);
            }
            .instrument(span),
        );
        rx.recv().map_err(|_| Error::Runtime {
            reason: "the read task was cancelled",
            source: None,
        })?
    }

    /// Closes the client: empties the cache (cached values are zeroized once no
    /// [`Secret`] handed out still holds them) and stops its runtime. Later calls fail with
    /// `CLOSED`. Idempotent.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.cache.clear();
        self.inner.failures.clear();
        self.inner.runtime.shutdown();
    }

    /// Whether [`close`](Self::close) was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Relaxed)
    }

    /// How many values the cache holds (expired ones included until they are swept).
    #[must_use]
    pub fn cache_len(&self) -> usize {
        self.inner.cache.len()
    }

    /// Empties the cache.
    pub fn clear_cache(&self) {
        self.inner.cache.clear();
    }

    /// Where the bootstrap came from, when one was used.
    #[must_use]
    pub fn bootstrap_source(&self) -> Option<&BootstrapSource> {
        self.inner.bootstrap_source.as_ref()
    }

    /// The KV v2 settings in effect for `provider` (`OpenBao` or `HashiCorp`), if a vault is
    /// configured for it. Secrets in them stay wrapped; `Debug` redacts them.
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    #[must_use]
    pub fn kv2_config(&self, provider: Provider) -> Option<&secret_providers::Kv2Config> {
        let kv2 = match provider {
            Provider::OpenBao => self.inner.openbao.as_ref(),
            Provider::HashiCorp => self.inner.hashicorp.as_ref(),
            _ => None,
        };
        kv2.map(secret_providers::Kv2Provider::config)
    }
}

impl fmt::Debug for SecretsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let mut s = f.debug_struct("SecretsClient");
        s.field("allowed_mounts", &inner.allowed);
        #[cfg(feature = "file")]
        s.field("file_root", &inner.file.config().root);
        #[cfg(any(feature = "openbao", feature = "hashicorp"))]
        s.field("openbao", &inner.openbao)
            .field("hashicorp", &inner.hashicorp);
        s.field("bootstrap_source", &inner.bootstrap_source)
            .field("cache_ttl", &inner.settings.ttl)
            .field("cache_capacity", &inner.settings.capacity)
            .field("cache_file_secrets", &inner.settings.cache_file_secrets)
            .field("stale_if_error", &inner.settings.stale_if_error)
            .field("closed", &inner.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// A cached entry that may be served at `now`, and how. In its stale window an entry is
    /// served while another caller refreshes it, or for a while after a failed refresh.
    #[inline]
    fn servable(&self, entry: &Entry, now: Instant) -> Option<CacheState> {
        if now < entry.fresh_until {
            Some(CacheState::Hit)
        } else if now < entry.stale_until
            && (entry.refreshing.load(Ordering::Acquire)
                || self.nanos(now) < entry.retry_after.load(Ordering::Relaxed))
        {
            Some(CacheState::Stale)
        } else {
            None
        }
    }

    /// The hit path: a servable entry under `key` (any text; only canonical URIs are keys),
    /// with its span. No allocation, no parsing.
    #[inline]
    fn cached(&self, key: &str, now: Instant) -> Option<Secret> {
        let entry = self.cache.get(key)?;
        let state = self.servable(&entry, now)?;
        Some(self.hit(entry, state, now))
    }

    /// Hands out a cached entry, with its span.
    #[inline]
    fn hit(&self, entry: Arc<Entry>, state: CacheState, now: Instant) -> Secret {
        let span = tracing::debug_span!(
            "secret_resolve",
            provider = entry.uri.provider().as_str(),
            mount = entry.uri.mount(),
            cache = state.as_str(),
            uri_hash = Empty,
        );
        if !span.is_disabled() {
            span.record("uri_hash", tracing::field::display(entry.uri_hash()));
        }
        self.maybe_sweep(now);
        Secret(entry)
    }

    async fn resolve(
        self: &Arc<Self>,
        input: UriInput<'_>,
        options: ResolveOptions,
    ) -> Result<Secret, Error> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        let started = Instant::now();
        if !options.refresh
            && let Some(secret) = self.cached(input.key(), started)
        {
            return Ok(secret);
        }
        let span = tracing::debug_span!(
            "secret_resolve",
            provider = Empty,
            mount = Empty,
            cache = Empty,
            uri_hash = Empty,
            code = Empty,
        );
        let parsed;
        let uri = match input {
            UriInput::Parsed(uri) => uri,
            UriInput::Text(text) => match SecretUri::parse(text) {
                Ok(uri) => {
                    parsed = uri;
                    &parsed
                }
                Err(source) => {
                    span.record("code", source.code());
                    let _entered = span.enter();
                    tracing::debug!(code = source.code(), "invalid secret URI");
                    return Err(Error::Uri { source });
                }
            },
        };
        span.record("provider", uri.provider().as_str());
        span.record("mount", uri.mount());
        if !span.is_disabled() {
            span.record("uri_hash", tracing::field::display(UriHash::of(uri)));
        }
        let result = async {
            self.allowed.check(uri)?;
            self.load(uri, options, started).await
        }
        .instrument(span.clone())
        .await;
        if let Err(error) = &result {
            span.record("code", error.code());
            let _entered = span.enter();
            tracing::debug!(code = error.code(), "resolve failed");
        }
        result
    }

    /// Everything after the hit path: routing, coalesced reads, stale-if-error, all within
    /// the resolve deadline.
    async fn load(
        self: &Arc<Self>,
        uri: &SecretUri,
        options: ResolveOptions,
        started: Instant,
    ) -> Result<Secret, Error> {
        let span = tracing::Span::current();
        let record = |state: CacheState| {
            span.record("cache", state.as_str());
        };
        let route = self.route(uri)?;
        // Before any I/O: a parameter the provider does not serve (`?verison=2`) is a typo,
        // never a silent read of something else.
        secret_providers::check_parameters(uri)
            .map_err(|e| Error::provider(uri.mount(), Arc::new(e)))?;
        let deadline = Deadline::new(self.io_handle()?, started, self.settings.resolve_deadline);
        let key = uri.as_str();
        if !self.cacheable(uri) {
            record(CacheState::Off);
            let value = self.read(&route, uri, &deadline).await?;
            return Ok(Secret(Arc::new(self.entry(uri, value))));
        }
        if options.refresh {
            record(CacheState::Refresh);
            return match self.read(&route, uri, &deadline).await {
                Ok(value) => {
                    let entry = Arc::new(self.entry(uri, value));
                    self.store(key, &entry);
                    Ok(Secret(entry))
                }
                Err(error) => {
                    if error.provider_error().is_some() && !error.is_transient() {
                        self.cache.remove(key);
                    }
                    Err(error)
                }
            };
        }
        loop {
            let now = Instant::now();
            // An entry in its stale window: one caller refreshes it, every other caller is
            // served the stale value meanwhile. None of them waits on another task.
            if let Some(entry) = self.cache.get(key) {
                if let Some(state) = self.servable(&entry, now) {
                    record(state);
                    return Ok(Secret(entry));
                }
                if now < entry.stale_until {
                    let Some(claim) = RefreshClaim::try_claim(&entry) else {
                        record(CacheState::Stale);
                        return Ok(Secret(entry));
                    };
                    let result = self.refresh_stale(&route, uri, claim, &deadline).await;
                    let stale = matches!(&result, Ok(served) if Arc::ptr_eq(&served.0, &entry));
                    record(if stale {
                        CacheState::Stale
                    } else {
                        CacheState::Miss
                    });
                    return result;
                }
            }
            if options.uncoalesced {
                record(CacheState::Miss);
                let value = self.read(&route, uri, &deadline).await?;
                let entry = Arc::new(self.entry(uri, value));
                self.store(key, &entry);
                return Ok(Secret(entry));
            }
            let found = deadline
                .run(self.cache.entry_async(key, |_, entry| {
                    match self.servable(entry, now) {
                        Some(state) => EntryAction::Retain(Some((Arc::clone(entry), state))),
                        // In its stale window: served (or refreshed) above, without a guard.
                        None if now < entry.stale_until => EntryAction::Retain(None),
                        None => EntryAction::ReplaceWithGuard,
                    }
                }))
                .await
                .ok_or_else(|| timed_out(uri, deadline.limit()))?;
            let guard = match found {
                EntryResult::Retained(Some((entry, state))) => {
                    // Loaded after this call started: another task's read, waited for.
                    let state = match state {
                        CacheState::Hit if entry.loaded_at >= started => CacheState::Coalesced,
                        state => state,
                    };
                    record(state);
                    return Ok(Secret(entry));
                }
                EntryResult::Retained(None) | EntryResult::Removed(..) | EntryResult::Timeout => {
                    continue;
                }
                EntryResult::Vacant(guard) | EntryResult::Replaced(guard, _) => guard,
            };
            // The guard came to us because a read we waited for failed: that failure is our
            // answer too, so a burst makes one read even when the backend is down.
            if let Some(failure) = self.failures.get(key)
                && failure.at >= started
            {
                record(CacheState::Coalesced);
                return Err(Error::provider(uri.mount(), Arc::clone(&failure.error)));
            }
            record(CacheState::Miss);
            return match self.read(&route, uri, &deadline).await {
                Ok(value) => {
                    let entry = Arc::new(self.entry(uri, value));
                    // Nothing is cached once the client is closed (its values are wiped).
                    if !self.closed.load(Ordering::SeqCst) {
                        // Fails only if a refresh replaced the placeholder meanwhile; fine.
                        let _ = guard.insert(Arc::clone(&entry));
                    }
                    self.failures.remove(key);
                    Ok(Secret(entry))
                }
                Err(error) => {
                    // Also a deadline hit: the callers waiting on this read get it, and the
                    // next resolve (started later) tries again.
                    if let Some(source) = error.provider_error_arc() {
                        self.failures.insert(
                            key.to_owned(),
                            Arc::new(Failure {
                                at: Instant::now(),
                                error: source,
                            }),
                        );
                    }
                    drop(guard);
                    Err(error)
                }
            };
        }
    }

    /// The claimed refresh of an entry in its stale window, run as a task on the client's
    /// runtime so that neither a slow backend nor a cancelled caller can hold the others up.
    /// The caller waits for it at most [`STALE_REFRESH_WAIT`] (and its deadline), then is
    /// served the stale value while the refresh goes on, bounded by the deadline. The task
    /// settles the entry whatever becomes of the caller (see [`Inner::settle_refresh`]) and
    /// releases the claim when it ends, however it ends.
    async fn refresh_stale(
        self: &Arc<Self>,
        route: &Route<'_>,
        uri: &SecretUri,
        claim: RefreshClaim,
        deadline: &Deadline,
    ) -> Result<Secret, Error> {
        let stale = Arc::clone(claim.entry());
        let read = route.spawn(deadline.handle(), uri);
        let weak = Arc::downgrade(self);
        let owned = uri.clone();
        let bound = deadline.clone();
        let refresh = deadline.handle().spawn(
            async move {
                let claim = claim;
                let outcome = bound.run(AbortOnDrop(read)).await;
                let result = joined(outcome, &owned, bound.limit());
                // A client dropped meanwhile needs no settling; the claim goes with the task.
                let inner = weak.upgrade().ok_or(Error::Closed)?;
                let settled = inner.settle_refresh(&owned, claim.entry(), result);
                drop(claim);
                settled
            }
            .instrument(tracing::Span::current()),
        );
        let wait = Deadline::new(
            deadline.handle().clone(),
            Instant::now(),
            STALE_REFRESH_WAIT.min(deadline.remaining()),
        );
        match wait.run(refresh).await {
            Some(Ok(settled)) => settled,
            Some(Err(_)) if self.closed.load(Ordering::SeqCst) => Err(Error::Closed),
            Some(Err(join)) => Err(Error::Runtime {
                reason: "the refresh task was cancelled",
                source: Some(Box::new(join)),
            }),
            None => {
                tracing::debug!("refresh still running; serving the stale value meanwhile");
                Ok(Secret(stale))
            }
        }
    }

    /// The end of a refresh of `stale`: a new value replaces it; a transient failure (the
    /// deadline included) serves it and holds off the backend for [`STALE_RETRY_INTERVAL`];
    /// any other answer of the provider (`NOT_FOUND` after a deletion …) removes it.
    fn settle_refresh(
        &self,
        uri: &SecretUri,
        stale: &Arc<Entry>,
        result: Result<SecretValue, Error>,
    ) -> Result<Secret, Error> {
        let key = uri.as_str();
        match result {
            Ok(value) => {
                let entry = Arc::new(self.entry(uri, value));
                self.store(key, &entry);
                Ok(Secret(entry))
            }
            Err(error) => {
                let now = Instant::now();
                if error.is_transient() && now < stale.stale_until {
                    let retry = STALE_RETRY_INTERVAL.min(stale.stale_until - now);
                    stale
                        .retry_after
                        .store(self.nanos(now + retry), Ordering::Relaxed);
                    tracing::warn!(
                        code = error.code(),
                        "backend unavailable; serving a stale value"
                    );
                    return Ok(Secret(Arc::clone(stale)));
                }
                // Only the provider's answer can retire a value; a runtime failure cannot.
                if error.provider_error().is_some() && !error.is_transient() {
                    self.cache
                        .remove_if(key, |cached| Arc::ptr_eq(cached, stale));
                }
                Err(error)
            }
        }
    }

    /// Caches a fresh value, unless the client was closed meanwhile (a closed client's cache
    /// stays empty, so its values are wiped once callers drop them).
    fn store(&self, key: &str, entry: &Arc<Entry>) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        self.cache.insert(key.to_owned(), Arc::clone(entry));
        self.failures.remove(key);
    }

    fn entry(&self, uri: &SecretUri, value: SecretValue) -> Entry {
        let now = Instant::now();
        let later = |from: Instant, span: Duration| from + span.min(MAX_CACHE_SPAN);
        let fresh_until = later(now, self.settings.ttl);
        let stale_until = later(
            fresh_until,
            self.settings.stale_if_error.unwrap_or_default(),
        );
        Entry::new(uri.clone(), value, now, fresh_until, stale_until)
    }

    fn cacheable(&self, uri: &SecretUri) -> bool {
        self.settings.cache_file_secrets || uri.provider() != Provider::File
    }

    fn route(&self, uri: &SecretUri) -> Result<Route<'_>, Error> {
        let provider = uri.provider();
        let name = provider.as_str();
        match provider {
            #[cfg(feature = "file")]
            Provider::File => Ok(Route::File(&self.file)),
            #[cfg(feature = "openbao")]
            Provider::OpenBao => self
                .openbao
                .as_ref()
                .or(self.hashicorp.as_ref())
                .map(Route::Kv2)
                .ok_or_else(|| self.not_configured(name)),
            #[cfg(feature = "hashicorp")]
            Provider::HashiCorp => self
                .hashicorp
                .as_ref()
                .or(self.openbao.as_ref())
                .map(Route::Kv2)
                .ok_or_else(|| self.not_configured(name)),
            #[cfg(not(feature = "file"))]
            Provider::File => Err(feature_disabled(name)),
            #[cfg(not(feature = "openbao"))]
            Provider::OpenBao => Err(feature_disabled(name)),
            #[cfg(not(feature = "hashicorp"))]
            Provider::HashiCorp => Err(feature_disabled(name)),
            _ => Err(Error::UnsupportedProvider {
                provider: name,
                reason: "SecretsClient serves file, openbao and hashicorp URIs only",
            }),
        }
    }

    #[allow(dead_code)]
    fn not_configured(&self, provider: &'static str) -> Error {
        Error::NotConfigured {
            provider,
            reason: self.vault_note.clone(),
        }
    }

    /// One provider read, on the client's runtime and within the deadline (see
    /// [`Route::spawn`]); the read is aborted when this future is dropped.
    async fn read(
        &self,
        route: &Route<'_>,
        uri: &SecretUri,
        deadline: &Deadline,
    ) -> Result<SecretValue, Error> {
        let task = route.spawn(deadline.handle(), uri);
        joined(deadline.run(AbortOnDrop(task)).await, uri, deadline.limit())
    }

    fn resolve_file_sync(&self, input: UriInput<'_>) -> Result<Secret, Error> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        let now = Instant::now();
        let only_files = |provider: Provider| Error::UnsupportedProvider {
            provider: provider.as_str(),
            reason: "resolve_file_sync reads file:// URIs only; use resolve or resolve_blocking",
        };
        if let Some(entry) = self.cache.get(input.key())
            && let Some(state) = self.servable(&entry, now)
        {
            if entry.uri.provider() != Provider::File {
                return Err(only_files(entry.uri.provider()));
            }
            return Ok(self.hit(entry, state, now));
        }
        let parsed;
        let uri = match input {
            UriInput::Parsed(uri) => uri,
            UriInput::Text(text) => {
                parsed = SecretUri::parse(text)?;
                &parsed
            }
        };
        if uri.provider() != Provider::File {
            return Err(only_files(uri.provider()));
        }
        self.allowed.check(uri)?;
        let span = tracing::debug_span!(
            "secret_resolve",
            provider = "file",
            mount = uri.mount(),
            cache = Empty,
            uri_hash = Empty,
            code = Empty,
        );
        if !span.is_disabled() {
            span.record("uri_hash", tracing::field::display(UriHash::of(uri)));
        }
        let _entered = span.enter();
        if let Some(entry) = self.cache.get(uri.as_str())
            && self.servable(&entry, now).is_some()
        {
            span.record("cache", CacheState::Hit.as_str());
            return Ok(Secret(entry));
        }
        secret_providers::check_parameters(uri)
            .map_err(|e| Error::provider(uri.mount(), Arc::new(e)))?;
        self.read_file_sync(uri, &span)
    }

    #[cfg(feature = "file")]
    fn read_file_sync(&self, uri: &SecretUri, span: &tracing::Span) -> Result<Secret, Error> {
        // No placeholder wait here: blocking on another task's read could deadlock a
        // single-threaded caller. File reads are cheap; a rare duplicate read is fine.
        match self.file.read_blocking(uri) {
            Ok(value) => {
                let entry = Arc::new(self.entry(uri, value));
                if self.cacheable(uri) {
                    span.record("cache", CacheState::Miss.as_str());
                    self.cache
                        .insert(uri.as_str().to_owned(), Arc::clone(&entry));
                } else {
                    span.record("cache", CacheState::Off.as_str());
                }
                Ok(Secret(entry))
            }
            Err(error) => {
                span.record("code", error.code());
                tracing::debug!(code = error.code(), "resolve failed");
                Err(Error::provider(uri.mount(), Arc::new(error)))
            }
        }
    }

    #[cfg(not(feature = "file"))]
    fn read_file_sync(&self, _uri: &SecretUri, _span: &tracing::Span) -> Result<Secret, Error> {
        Err(feature_disabled("file"))
    }

    /// The client's runtime, started at first use: one worker thread for KV v2 I/O and
    /// blocking calls.
    fn io_handle(&self) -> Result<tokio::runtime::Handle, Error> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        self.runtime.handle().cloned()
    }

    /// Drops expired entries (zeroizing their values) once per sweep interval, piggybacking
    /// on resolves: one caller wins the slot and does it.
    #[inline]
    fn maybe_sweep(&self, now: Instant) {
        let now_ns = self.nanos(now);
        let due = self.next_sweep.load(Ordering::Relaxed);
        if now_ns < due {
            return;
        }
        let next = self.nanos(now + self.sweep_every);
        if self
            .next_sweep
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.cache
                .retain(|_, entry| now < entry.fresh_until.max(entry.stale_until));
        }
    }
}

impl Route<'_> {
    /// The read as a task on the client's runtime (`handle`): KV v2 reads as tasks
    /// (connections then live on a runtime the client controls, whatever runtime the caller
    /// uses), file reads on its blocking pool (a stalled filesystem then holds a blocking
    /// thread, never a thread that vault I/O or the caller's executor needs).
    fn spawn(&self, handle: &Handle, uri: &SecretUri) -> JoinHandle<ProviderResult> {
        let owned = uri.clone();
        match self {
            #[cfg(feature = "file")]
            Route::File(file) => {
                let file = (*file).clone();
                // The resolve's span goes along, so the file provider's events stay inside it.
                let span = tracing::Span::current();
                handle.spawn_blocking(move || {
                    span.in_scope(|| {
                        #[cfg(test)]
                        tests::stall_if_asked(&owned);
                        file.read_blocking(&owned)
                    })
                })
            }
            #[cfg(any(feature = "openbao", feature = "hashicorp"))]
            Route::Kv2(kv2) => {
                let kv2 = (*kv2).clone();
                handle.spawn(
                    async move { kv2.read(&owned).await }.instrument(tracing::Span::current()),
                )
            }
            #[cfg(not(any(feature = "file", feature = "openbao", feature = "hashicorp")))]
            Route::None(_) => handle.spawn(async move {
                Err(ProviderError::UnsupportedProvider {
                    provider: "router",
                    what: format!("provider `{}`", owned.provider()),
                })
            }),
        }
    }
}

type ProviderResult = Result<SecretValue, ProviderError>;

/// A read task's outcome: its result, `RUNTIME` if the task died, `TIMEOUT` if the deadline
/// (`limit`) passed first.
fn joined(
    outcome: Option<Result<ProviderResult, JoinError>>,
    uri: &SecretUri,
    limit: Duration,
) -> Result<SecretValue, Error> {
    match outcome {
        Some(Ok(result)) => result.map_err(|e| Error::provider(uri.mount(), Arc::new(e))),
        Some(Err(join)) => Err(Error::Runtime {
            reason: "the read task was cancelled",
            source: Some(Box::new(join)),
        }),
        None => Err(timed_out(uri, limit)),
    }
}

/// The `TIMEOUT` of a resolve that hit its deadline.
fn timed_out(uri: &SecretUri, limit: Duration) -> Error {
    Error::provider(
        uri.mount(),
        Arc::new(ProviderError::Timeout {
            provider: uri.provider().as_str(),
            timeout: limit,
            attempts: 1,
        }),
    )
}

#[allow(dead_code)]
fn feature_disabled(provider: &'static str) -> Error {
    Error::UnsupportedProvider {
        provider,
        reason: "its cargo feature is disabled in this build",
    }
}

impl Error {
    fn provider_error_arc(&self) -> Option<Arc<ProviderError>> {
        match self {
            Self::Provider { source, .. } => Some(Arc::clone(source)),
            _ => None,
        }
    }
}

/// Polls every future on the caller's task until all are done; outputs in input order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut busy = false;
        for (slot, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => busy = true,
                }
            }
        }
        if busy { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[cfg(all(test, feature = "file"))]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex, PoisonError, Weak};

    /// Released once the stalled-filesystem test is done with it.
    static STALL: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

    /// A file read of a path named `stalled` blocks until the test releases it: a file read
    /// that never returns (a stalled network filesystem), which the file provider itself can
    /// no longer be made to do (it refuses FIFOs and devices).
    pub(super) fn stall_if_asked(uri: &SecretUri) {
        if uri.path() != "stalled" {
            return;
        }
        let (released, wake) = &STALL;
        let mut released = released.lock().unwrap_or_else(PoisonError::into_inner);
        while !*released {
            released = wake.wait(released).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn release_stalled_reads() {
        let (released, wake) = &STALL;
        *released.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
    }

    /// A file read that never returns holds a thread of the client's blocking pool, never
    /// the I/O worker vault reads need nor the caller's executor: from `resolve_blocking` and
    /// from a current-thread runtime, a vault read of another URI completes meanwhile, and
    /// the file resolve ends with `TIMEOUT` at its deadline. Before: the file was read in
    /// place, on the client's only I/O worker (`resolve_blocking`) or on the caller's thread
    /// (`resolve`), and the vault reads hung behind it.
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    #[test]
    fn a_stalled_file_read_blocks_no_vault_read() -> Result<(), Box<dyn std::error::Error>> {
        use secrets_test_support::{Fault, FaultServer};
        let root = tempfile::tempdir()?;
        std::fs::create_dir(root.path().join("m"))?;
        std::fs::write(root.path().join("m/stalled"), "never read")?;
        let kv = serde_json::json!({"data": {"data": {"k": "v"}, "metadata": {"version": 1}}});
        let server = FaultServer::start(vec![Fault::status(403), Fault::json(200, &kv)])?;
        let client = SecretsClient::builder()
            .file_root(root.path())
            .allowed_mounts(AllowedMounts::from_csv("m,secret"))
            .bootstrap(crate::BootstrapConfig::token(server.addr(), "t"))
            .resolve_deadline(Duration::from_secs(2))
            .build()?;
        // Should a read stall a thread it must not, this ends the stall so that the test
        // fails instead of hanging.
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_secs(10));
            release_stalled_reads();
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let stalled = client.clone();
        let file_tx = tx.clone();
        std::thread::spawn(move || {
            let code = stalled
                .resolve_blocking("file://m/stalled")
                .err()
                .map(|e| e.code());
            let _ = file_tx.send(("file", code));
        });
        std::thread::sleep(Duration::from_millis(200));
        let vault = client.clone();
        std::thread::spawn(move || {
            let code = vault
                .resolve_blocking("openbao+kv2://secret/a#k")
                .err()
                .map(|e| e.code());
            let _ = tx.send(("vault", code));
        });
        let first = rx.recv_timeout(Duration::from_secs(20));
        let second = rx.recv_timeout(Duration::from_secs(20));

        // The same from async code on a current-thread runtime: the stalled read must not
        // hold the caller's only thread.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let on_runtime = runtime.block_on(async {
            let stalled = client.clone();
            let file = tokio::spawn(async move {
                stalled
                    .resolve("file://m/stalled")
                    .await
                    .err()
                    .map(|e| e.code())
            });
            tokio::task::yield_now().await;
            let vault = tokio::time::timeout(
                Duration::from_secs(20),
                client.resolve_with("openbao+kv2://secret/a#k", ResolveOptions::refresh()),
            )
            .await
            .map(|r| r.err().map(|e| e.code()));
            let file = tokio::time::timeout(Duration::from_secs(20), file).await;
            (vault, file)
        });
        release_stalled_reads();

        assert_eq!(
            first.ok(),
            Some(("vault", None)),
            "the vault read went first"
        );
        assert_eq!(second.ok(), Some(("file", Some("TIMEOUT"))));
        let (vault, file) = on_runtime;
        assert_eq!(vault.ok(), Some(None), "the async vault read completed");
        assert_eq!(file.ok().and_then(Result::ok), Some(Some("TIMEOUT")));
        Ok(())
    }

    /// The cache holds the only reference to a value once callers drop theirs, so eviction,
    /// replacement and `close` drop it, and `SecretValue`'s drop zeroizes it.
    #[test]
    fn evicted_replaced_and_closed_values_are_dropped() -> Result<(), Box<dyn std::error::Error>> {
        let root = tempfile::tempdir()?;
        std::fs::create_dir(root.path().join("m"))?;
        for i in 0..100 {
            std::fs::write(root.path().join(format!("m/s{i}")), format!("v{i}"))?;
        }
        let client = SecretsClient::builder()
            .file_root(root.path())
            .allowed_mounts(AllowedMounts::from_csv("m"))
            .cache_capacity(32)
            .build()?;
        let mut weak: Vec<Weak<Entry>> = Vec::new();
        for i in 0..100 {
            let secret = client.resolve_file_sync(format!("file://m/s{i}").as_str())?;
            weak.push(Arc::downgrade(&secret.0));
        }
        let alive = weak.iter().filter(|w| w.strong_count() > 0).count();
        assert_eq!(alive, client.cache_len());
        assert!(alive <= 32, "{alive}");

        // A refresh replaces the entry; the old one is dropped.
        let first = client.resolve_file_sync("file://m/s99")?;
        let old = Arc::downgrade(&first.0);
        drop(first);
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        runtime.block_on(client.resolve_with("file://m/s99", ResolveOptions::refresh()))?;
        assert_eq!(old.strong_count(), 0);

        client.close();
        assert!(weak.iter().all(|w| w.strong_count() == 0));
        Ok(())
    }

    #[test]
    fn join_all_keeps_input_order() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let Ok(runtime) = runtime else { return };
        let out = runtime.block_on(join_all(
            [30u64, 0, 10]
                .into_iter()
                .map(|ms| async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    ms
                })
                .collect(),
        ));
        assert_eq!(out, vec![30, 0, 10]);
    }
}
