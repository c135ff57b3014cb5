//! [`SecretsClient`]: its public API and state. The jobs live in their own modules: `load`
//! (the resolve flow and coalesced reads), `cache` (what may be served, the hit path, the
//! sweep), `stale` (stale-if-error refreshes), `read` (one provider read as a task, bounded
//! by the deadline), `sync_file` (`resolve_file_sync`), `join`, `deadline` and `builder`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::in_span::InSpan as _;
use quick_cache::sync::Cache;
use secret_audit::{AuditKey, Auditor};
use secret_providers::ProviderError;
use secret_telemetry::{HitRecorder, Metrics};
use secret_uri::{AllowedMounts, Provider, SecretUri};

use crate::Error;
use crate::bootstrap::BootstrapSource;
use crate::io_runtime::IoRuntime;
use crate::routes::Routes;
use crate::secret::{Secret, UriInput};

mod audit;

mod builder;
mod cache;
mod deadline;
mod join;
#[cfg(feature = "db")]
mod leases;
mod load;
mod read;
mod refresh_ahead;
mod stale;
mod sync_file;
#[cfg(all(test, feature = "file"))]
mod tests;
mod watch;

pub use builder::SecretsClientBuilder;
#[cfg(feature = "db")]
pub use leases::DEFAULT_LEASE_OVERLAP;
#[cfg(feature = "vault")]
pub(crate) use read::{in_place as read_in_place, spawn as spawn_read};

use cache::EntryCache;
pub use watch::{DEFAULT_WATCH_INTERVAL, WATCH_INTERVAL_ENV};

use join::join_all;

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
    /// This client itself, for the background tasks it starts (refresh-ahead, file events).
    this: std::sync::Weak<Inner>,
    allowed: AllowedMounts,
    /// Which provider serves each scheme.
    routes: Routes,
    /// Audits backend reads and sampled cache hits (disabled unless the builder was given a
    /// sink).
    auditor: Arc<Auditor>,
    /// The tenant salt, when configured: spans name secrets by their keyed reference.
    audit_key: Option<AuditKey>,
    /// The tenant audit events name.
    tenant: Arc<str>,
    /// The audit sink the client created from the environment (`ENABLE_KAFKA_PRODUCER`):
    /// flushed by [`SecretsClient::close`].
    owned_sink: Option<Arc<dyn secret_audit::AuditSink>>,
    bootstrap_source: Option<BootstrapSource>,
    cache: EntryCache,
    failures: Cache<String, Arc<Failure>>,
    settings: CacheSettings,
    epoch: Instant,
    next_sweep: AtomicU64,
    sweep_every: Duration,
    closed: AtomicBool,
    /// Runs KV v2 reads and [`SecretsClient::resolve_blocking`]; created at first use.
    runtime: IoRuntime,
    /// The client's instruments, bound to the meter provider installed when it was built.
    metrics: Metrics,
    /// Fresh hits of each provider (indexed as [`Provider::ALL`]), bound at the provider's
    /// first hit so the hit path records without an attribute lookup or an allocation.
    hits: [std::sync::OnceLock<HitRecorder>; Provider::ALL.len()],
    /// The watched secrets and the file watcher.
    watches: watch::Watches,
    /// The database credentials the client holds, on their leases.
    #[cfg(feature = "db")]
    leases: leases::Leases,
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
    /// Whether hot entries are refreshed before they expire (`refresh_ahead`).
    refresh_ahead: bool,
}

/// A failed read, kept so the callers that waited for it get its error instead of each
/// reading again.
struct Failure {
    at: Instant,
    error: Arc<ProviderError>,
}

/// What the cache did for one resolve, as recorded on the span and in the metrics' `cache`
/// label (`secret_telemetry::names::CACHE_OUTCOMES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
            .in_span(span),
        );
        rx.recv().map_err(|_| Error::Runtime {
            reason: "the read task was cancelled",
            source: None,
        })?
    }

    /// Closes the client: revokes the database credentials it holds (`db+cred://` leases,
    /// waiting up to 5 s for the vault), empties the cache (cached values are zeroized once no
    /// [`Secret`] handed out still holds them), stops its runtime, and flushes the audit sink
    /// it created from the environment (`ENABLE_KAFKA_PRODUCER`; up to 10 s). A sink given to
    /// [`SecretsClientBuilder::audit`] is the caller's to close. Later calls fail with
    /// `CLOSED`. Idempotent.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        #[cfg(feature = "db")]
        self.inner.revoke_leases();
        self.inner.watches.clear();
        self.inner.cache.clear();
        self.inner.failures.clear();
        self.inner.runtime.shutdown();
        crate::audit_config::close_owned(self.inner.owned_sink.as_ref());
    }

    /// Watches a secret for changes: a new version (KV v2, checked through the metadata
    /// endpoint every watch interval, [`SecretsClientBuilder::watch_interval`], default 30 s
    /// jittered; an unchanged secret costs no value read) or new content (files: at once on a
    /// change of their directory, the kubelet's `..data` swap included, and at the interval).
    /// The secret is resolved first, as the stream's starting point
    /// ([`Changes::current`](crate::watch::Changes::current)); the stream then yields each
    /// change, and the typed error of a secret that is deleted, destroyed or refused, once,
    /// after which it keeps watching. Transient failures (the backend down) yield nothing.
    /// Every change also refreshes the cache. Streams of one URI (any spelling) share one
    /// watch; it ends with its last stream, or when the client is closed (streams then end).
    ///
    /// # Errors
    /// Before any stream exists: the URI's code, `TENANT_MOUNT_MISMATCH`,
    /// `UNSUPPORTED_PROVIDER`, `NOT_CONFIGURED`, `CLOSED`, `RUNTIME`. A provider error while
    /// reading the starting point is the stream's starting state, not an error here.
    pub async fn watch<'a>(
        &self,
        uri: impl Into<UriInput<'a>>,
    ) -> Result<crate::watch::Changes, Error> {
        self.inner.watch(uri.into()).await
    }

    /// Calls `f` with every change of a secret (see [`watch`](Self::watch)), in order, until
    /// the returned [`Subscription`](crate::watch::Subscription) is dropped: for example to
    /// hand a rotated database password to a connection pool. `f` runs on a thread of the
    /// client's blocking pool, never on its I/O thread, so it may block, and may call the
    /// client (`resolve_blocking` included); changes queue behind it.
    ///
    /// # Errors
    /// As [`watch`](Self::watch).
    pub async fn on_change<'a, F>(
        &self,
        uri: impl Into<UriInput<'a>>,
        mut f: F,
    ) -> Result<crate::watch::Subscription, Error>
    where
        F: FnMut(&crate::watch::WatchItem) + Send + 'static,
    {
        let mut changes = self.inner.watch(uri.into()).await?;
        let handle = self.inner.io_handle()?;
        let (cancel, mut cancelled) = tokio::sync::oneshot::channel::<()>();
        let runtime = handle.clone();
        // A blocking-pool thread: `f` may block (a pool swap, `resolve_blocking`) without
        // holding the thread that drives the client's timers and I/O.
        handle.spawn_blocking(move || {
            while let Some(item) = runtime.block_on(async {
                tokio::select! {
                    biased;
                    _ = &mut cancelled => None,
                    item = changes.next() => item,
                }
            }) {
                f(&item);
            }
        });
        Ok(crate::watch::Subscription {
            _cancel: Some(cancel),
        })
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

    /// How many database roles the client holds a lease of (`db+cred://`, `db+db://`).
    #[cfg(feature = "db")]
    #[must_use]
    pub fn leases_held(&self) -> usize {
        self.inner.leases.held()
    }

    /// Gives up the leases the client holds without revoking them: they are no longer
    /// renewed and end at their TTL, and [`close`](Self::close) leaves them alone. For
    /// credentials handed to something that outlives the client (`secrets resolve` prints
    /// them). The next read of a role issues a new lease.
    #[cfg(feature = "db")]
    pub fn keep_leases(&self) {
        let kept = self.inner.leases.drain().len();
        tracing::debug!(kept, "leases left to end at their TTL");
    }

    /// Empties the cache (and stops watching the folders of files only the cache held).
    pub fn clear_cache(&self) {
        self.inner.cache.clear();
        #[cfg(feature = "file")]
        self.inner.watches.files.forget_served();
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
        self.inner.routes.kv2_config(provider)
    }
}

impl fmt::Debug for SecretsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let mut s = f.debug_struct("SecretsClient");
        s.field("allowed_mounts", &inner.allowed)
            .field("providers", &inner.routes)
            .field("bootstrap_source", &inner.bootstrap_source)
            .field("cache_ttl", &inner.settings.ttl)
            .field("cache_capacity", &inner.settings.capacity)
            .field("cache_file_secrets", &inner.settings.cache_file_secrets)
            .field("stale_if_error", &inner.settings.stale_if_error)
            .field("closed", &inner.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// The client's runtime, started at first use: one worker thread for KV v2 I/O and
    /// blocking calls.
    fn io_handle(&self) -> Result<tokio::runtime::Handle, Error> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        self.runtime.handle().cloned()
    }
}
