//! Refresh-ahead: a cached value read in the last stretch of its TTL is refreshed in the
//! background before it expires, so callers of a hot URI never meet a miss.
//!
//! - **When.** An entry's refresh window is the last 10–20 % of its TTL (jittered per entry,
//!   so entries cached together do not refresh together). The first fresh hit inside it
//!   claims the refresh (single-flight: the entry's `refreshing` flag); later hits are served
//!   as usual. Only entries read inside their window are refreshed, so the work is bounded by
//!   what callers actually read, never by the cache's size.
//! - **How.** A versioned value (KV v2) is revalidated through the provider's
//!   [`probe`](secret_providers::SecretProvider::probe) (the metadata endpoint): the same
//!   version extends the entry by a TTL without reading the value again; a new version (or
//!   a provider that cannot tell) reads the value. A failed refresh leaves the entry to
//!   expire as it would have, and the next attempt waits 5 s; a secret found deleted leaves
//!   the cache.
//! - **What.** KV v2 and other async providers; files have their watcher instead
//!   (`watch::files`). Off with `SecretsClientBuilder::refresh_ahead(false)`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use secret_providers::Probe;
use secret_uri::Provider;

use super::deadline::Deadline;
use super::{Inner, STALE_RETRY_INTERVAL};

/// Unchanged versions extend a value without reading it at most this many times in a row;
/// then the value is read again, so a revoked `data/` permission (with `metadata/` still
/// readable) is noticed within this many TTLs.
const MAX_EXTENSIONS: u32 = 12;
use crate::Error;
use crate::secret::{Entry, Secret};

/// Whether entries of `provider` are refreshed ahead (files have their watcher).
pub(super) fn refreshed_ahead(provider: Provider) -> bool {
    !matches!(provider, Provider::File | Provider::Yaml)
}

/// When an entry fresh until `fresh_until` after a TTL of `ttl` starts refreshing ahead: the
/// last 10–20 % of the TTL, jittered.
pub(super) fn refresh_at(fresh_until: Instant, ttl: Duration) -> Instant {
    let window = ttl.mul_f64(0.1 + 0.1 * fastrand::f64());
    fresh_until.checked_sub(window).unwrap_or(fresh_until)
}

impl Inner {
    /// A fresh hit at `now` inside `entry`'s refresh window: claims and starts its refresh,
    /// unless one runs or the last one failed less than 5 s ago.
    #[cold]
    #[inline(never)]
    pub(super) fn refresh_ahead(&self, entry: &Arc<Entry>, now: Instant) {
        if self.nanos(now) < entry.retry_after.load(Ordering::Relaxed)
            || entry
                .refreshing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let (Some(inner), Ok(handle)) = (self.this.upgrade(), self.io_handle()) else {
            entry.refreshing.store(false, Ordering::Release);
            return;
        };
        let entry = Arc::clone(entry);
        handle.spawn(async move {
            let result = inner.revalidate(&entry).await;
            if let Err(error) = result {
                tracing::debug!(
                    code = error.code(),
                    "refresh-ahead failed; the value expires as it would have"
                );
                let retry = inner.nanos(Instant::now() + STALE_RETRY_INTERVAL);
                entry.retry_after.store(retry, Ordering::Relaxed);
                if error.provider_error().is_some() && !error.is_transient() {
                    inner
                        .cache
                        .remove_if(entry.uri.as_str(), |cached| Arc::ptr_eq(cached, &entry));
                    // A watched secret learns it now, not at its next poll.
                    if let Some(watched) = inner.watches.get(entry.uri.as_str()) {
                        let _ = inner.settle(&watched, Err(error));
                    }
                }
            }
            entry.refreshing.store(false, Ordering::Release);
        });
    }

    /// Revalidates (or reads again) `entry` and caches the result.
    async fn revalidate(&self, entry: &Arc<Entry>) -> Result<(), Error> {
        let uri = &entry.uri;
        let provider = Arc::clone(self.routes.route(uri)?);
        let deadline = Deadline::new(
            self.io_handle()?,
            Instant::now(),
            self.settings.resolve_deadline,
        );
        if let Some(version) = entry.value.version()
            && entry.extensions < MAX_EXTENSIONS
        {
            match deadline.run(provider.probe(uri)).await {
                Some(Ok(Probe::Version(current))) if current == version => {
                    let mut extended = self.entry(uri, entry.value.clone());
                    extended.extensions = entry.extensions + 1;
                    // Unless something newer was cached meanwhile, or the value removed.
                    self.swap(uri.as_str(), entry, &Arc::new(extended));
                    return Ok(());
                }
                // A new version, or a provider that cannot tell: read the value.
                Some(Ok(_)) => {}
                // No `metadata/` capability: read the value instead.
                Some(Err(error)) if error.code() == "PERMISSION_DENIED" => {}
                Some(Err(error)) => return Err(Error::provider(uri.mount(), Arc::new(error))),
                None => return Err(super::read::timed_out(uri, deadline.limit())),
            }
        }
        let value = self.read(&provider, uri, &deadline).await?;
        let fresh = Arc::new(self.entry(uri, value));
        // Only over the entry this refresh started from: a read that began earlier never
        // overwrites a newer value, nor brings back one removed meanwhile.
        if self.swap(uri.as_str(), entry, &fresh) {
            self.changed(&Secret(fresh));
        }
        Ok(())
    }
}
