//! The cache side of [`Inner`]: which entries may be served, the hit path, storing fresh
//! values, the sweep of expired ones, and the evictions both count.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, UnitWeighter};
use secret_providers::SecretValue;
use secret_telemetry::names::span::RESOLVE;
use secret_telemetry::{HitRecorder, Metrics};
use secret_uri::{Provider, SecretUri};
use tracing::field::Empty;

use super::{CacheState, Inner, MAX_CACHE_SPAN};
use crate::secret::{Entry, Secret};

/// The value cache: canonical URI → entry, counting the entries its capacity pushes out.
pub(super) type EntryCache = Cache<String, Arc<Entry>, UnitWeighter, DefaultHashBuilder, Evictions>;

/// A cache holding about `capacity` entries whose evictions count in `metrics`.
pub(super) fn entry_cache(capacity: usize, metrics: &Metrics) -> EntryCache {
    Cache::with(
        capacity,
        capacity as u64,
        UnitWeighter,
        DefaultHashBuilder::default(),
        Evictions(metrics.clone()),
    )
}

/// The cache's lifecycle: counts the entries pushed out by capacity
/// (`secrets.cache.evictions`, once per insert that evicted any) and, as quick_cache's default
/// does, drops up to two of them after the shard lock is released.
#[derive(Clone)]
pub(super) struct Evictions(Metrics);

impl Lifecycle<String, Arc<Entry>> for Evictions {
    type RequestState = (u64, [Option<Arc<Entry>>; 2]);

    #[inline]
    fn begin_request(&self) -> Self::RequestState {
        (0, [None, None])
    }

    fn on_evict(&self, state: &mut Self::RequestState, _key: String, value: Arc<Entry>) {
        state.0 += 1;
        if let Some(slot) = state.1.iter_mut().find(|slot| slot.is_none()) {
            *slot = Some(value);
        }
    }

    #[inline]
    fn end_request(&self, (evicted, _): Self::RequestState) {
        self.0.cache_evictions(evicted);
    }
}

/// Where `provider` sits in [`Provider::ALL`] (the order of `Inner::hits`).
#[inline]
fn provider_index(provider: Provider) -> usize {
    match provider {
        Provider::OpenBao => 0,
        Provider::HashiCorp => 1,
        Provider::Db => 2,
        Provider::Bootstrap => 3,
        Provider::File => 4,
        Provider::Yaml => 5,
        other => Provider::ALL
            .iter()
            .position(|p| *p == other)
            .unwrap_or_default(),
    }
}

/// One slot per provider, in [`Provider::ALL`]'s order, for its bound hit recorder: bound at
/// the provider's first hit, so a client exports no series for providers it never served.
pub(super) fn hit_recorders() -> [OnceLock<HitRecorder>; Provider::ALL.len()] {
    std::array::from_fn(|_| OnceLock::new())
}

impl Inner {
    pub(super) fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// A cached entry that may be served at `now`, and how. In its stale window an entry is
    /// served while another caller refreshes it, or for a while after a failed refresh.
    #[inline]
    pub(super) fn servable(&self, entry: &Entry, now: Instant) -> Option<CacheState> {
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
    pub(super) fn cached(&self, key: &str, now: Instant) -> Option<Secret> {
        let entry = self.cache.get(key)?;
        let state = self.servable(&entry, now)?;
        Some(self.hit(entry, state, now))
    }

    /// Hands out a cached entry that was looked up at `now`, with its span and metrics. A
    /// fresh hit's span is at TRACE, so under an INFO or DEBUG filter it is never created, and
    /// its metrics go through the provider's bound recorder (no attribute lookup, no
    /// allocation, one clock read); a stale one is an INFO span and a `stale` resolve.
    #[inline]
    pub(super) fn hit(&self, entry: Arc<Entry>, state: CacheState, now: Instant) -> Secret {
        let provider = entry.uri.provider();
        if state == CacheState::Hit {
            let span = tracing::trace_span!(
                RESOLVE,
                provider = provider.as_str(),
                mount = entry.uri.mount(),
                cache = "hit",
                uri_hash = Empty,
                resource_ref = Empty,
            );
            self.name_entry(&span, &entry);
            self.hits[provider_index(provider)]
                .get_or_init(|| self.metrics.hit_recorder(provider.as_str()))
                .record(now.elapsed());
            if now >= entry.refresh_at {
                self.refresh_ahead(&entry, now);
            }
        } else {
            let span = tracing::info_span!(
                RESOLVE,
                provider = provider.as_str(),
                mount = entry.uri.mount(),
                cache = state.as_str(),
                uri_hash = Empty,
                resource_ref = Empty,
            );
            self.name_entry(&span, &entry);
            self.metrics
                .resolve(provider.as_str(), state.as_str(), "ok", now.elapsed());
        }
        self.audit_hit(&entry.uri);
        self.maybe_sweep(now);
        Secret(entry)
    }

    /// Names a cached entry on its span: the keyed reference with a salt, else the entry's
    /// (memoized) unkeyed hash.
    #[inline]
    fn name_entry(&self, span: &tracing::Span, entry: &Entry) {
        if span.is_disabled() {
            return;
        }
        match &self.audit_key {
            Some(_) => self.record_uri(span, &entry.uri),
            None => {
                span.record("uri_hash", tracing::field::display(entry.uri_hash()));
            }
        }
    }

    /// Caches a fresh value, unless the client was closed meanwhile (a closed client's cache
    /// stays empty, so its values are wiped once callers drop them).
    pub(super) fn store(&self, key: &str, entry: &Arc<Entry>) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        self.cache.insert(key.to_owned(), Arc::clone(entry));
        self.failures.remove(key);
        self.served(entry);
    }

    /// Replaces `old` under `key` by `new` if the cache still holds `old` (one step under the
    /// shard's lock): a background refresh never overwrites a newer value, and never brings
    /// back a value removed meanwhile (a deleted secret). Whether it did.
    pub(super) fn swap(&self, key: &str, old: &Arc<Entry>, new: &Arc<Entry>) -> bool {
        if self.closed.load(Ordering::SeqCst) {
            return false;
        }
        let swapped = matches!(
            self.cache.entry(key, Some(Duration::ZERO), |_, cached| {
                let same = Arc::ptr_eq(cached, old);
                if same {
                    *cached = Arc::clone(new);
                }
                quick_cache::sync::EntryAction::Retain(same)
            }),
            quick_cache::sync::EntryResult::Retained(true)
        );
        if swapped {
            self.failures.remove(key);
        }
        swapped
    }

    /// A file value that entered the cache: its directory is watched from now on, so a
    /// change refreshes it without waiting for the TTL (see `watch::files`).
    #[inline]
    pub(super) fn served(&self, entry: &Entry) {
        #[cfg(feature = "file")]
        if matches!(entry.uri.provider(), Provider::File | Provider::Yaml)
            && let Some(inner) = self.this.upgrade()
            && let Ok(provider) = self.routes.route(&entry.uri)
            && let Some(path) = provider.local_path(&entry.uri)
        {
            self.watches.files.serve(&inner, &entry.uri, &path);
        }
        #[cfg(not(feature = "file"))]
        let _ = entry;
    }

    pub(super) fn entry(&self, uri: &SecretUri, value: SecretValue) -> Entry {
        let now = Instant::now();
        let later = |from: Instant, span: Duration| from + span.min(MAX_CACHE_SPAN);
        let fresh_until = later(now, self.settings.ttl);
        let stale_until = later(
            fresh_until,
            self.settings.stale_if_error.unwrap_or_default(),
        );
        let entry = Entry::new(uri.clone(), value, now, fresh_until, stale_until);
        if self.settings.refresh_ahead && super::refresh_ahead::refreshed_ahead(uri.provider()) {
            let at = super::refresh_ahead::refresh_at(fresh_until, self.settings.ttl);
            entry.with_refresh_at(at)
        } else {
            entry
        }
    }

    /// Whether a value read for `uri` goes into the cache: not files with
    /// `cache_file_secrets(false)`, and never the bootstrap's values, which are in memory
    /// already and never change (a cached copy would only be a second one).
    pub(super) fn cacheable(&self, uri: &SecretUri) -> bool {
        match uri.provider() {
            Provider::File | Provider::Yaml => self.settings.cache_file_secrets,
            Provider::Bootstrap => !self.routes.serves_bootstrap_values(),
            _ => true,
        }
    }

    /// Drops expired entries (zeroizing their values) once per sweep interval, piggybacking
    /// on resolves: one caller wins the slot and does it.
    #[inline]
    pub(super) fn maybe_sweep(&self, now: Instant) {
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
            self.sweep(now);
        }
    }

    /// Drops every entry past its stale window, counting them as evictions.
    #[cold]
    pub(super) fn sweep(&self, now: Instant) {
        let dropped = Cell::new(0u64);
        self.cache.retain(|_, entry| {
            let keep = now < entry.fresh_until.max(entry.stale_until);
            if !keep {
                dropped.set(dropped.get() + 1);
            }
            keep
        });
        self.metrics.cache_evictions(dropped.get());
    }
}
