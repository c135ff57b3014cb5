//! The cache side of [`Inner`]: which entries may be served, the hit path, storing fresh
//! values and the sweep of expired ones.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use secret_providers::SecretValue;
use secret_uri::{Provider, SecretUri};
use tracing::field::Empty;

use super::{CacheState, Inner, MAX_CACHE_SPAN};
use crate::secret::{Entry, Secret};

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

    /// Hands out a cached entry, with its span.
    #[inline]
    pub(super) fn hit(&self, entry: Arc<Entry>, state: CacheState, now: Instant) -> Secret {
        let span = tracing::debug_span!(
            "secret_resolve",
            provider = entry.uri.provider().as_str(),
            mount = entry.uri.mount(),
            cache = state.as_str(),
            uri_hash = Empty,
            resource_ref = Empty,
        );
        if !span.is_disabled() {
            match &self.audit_key {
                Some(_) => self.record_uri(&span, &entry.uri),
                None => {
                    span.record("uri_hash", tracing::field::display(entry.uri_hash()));
                }
            }
        }
        self.audit_hit(&entry.uri);
        self.maybe_sweep(now);
        Secret(entry)
    }

    /// Caches a fresh value, unless the client was closed meanwhile (a closed client's cache
    /// stays empty, so its values are wiped once callers drop them).
    pub(super) fn store(&self, key: &str, entry: &Arc<Entry>) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        self.cache.insert(key.to_owned(), Arc::clone(entry));
        self.failures.remove(key);
    }

    pub(super) fn entry(&self, uri: &SecretUri, value: SecretValue) -> Entry {
        let now = Instant::now();
        let later = |from: Instant, span: Duration| from + span.min(MAX_CACHE_SPAN);
        let fresh_until = later(now, self.settings.ttl);
        let stale_until = later(
            fresh_until,
            self.settings.stale_if_error.unwrap_or_default(),
        );
        Entry::new(uri.clone(), value, now, fresh_until, stale_until)
    }

    pub(super) fn cacheable(&self, uri: &SecretUri) -> bool {
        self.settings.cache_file_secrets || uri.provider() != Provider::File
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
            self.cache
                .retain(|_, entry| now < entry.fresh_until.max(entry.stale_until));
        }
    }
}
