//! The resolve flow of [`Inner`]: parse, guard, route, then the cache's coalesced read (one
//! backend read for any number of concurrent misses), within the resolve deadline.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::in_span::InSpan as _;
use quick_cache::sync::{EntryAction, EntryResult};
use secret_providers::{SecretProvider, SecretValue};
use secret_telemetry::names::span::RESOLVE;
use secret_uri::SecretUri;
use tracing::field::Empty;

use super::deadline::{AbortOnDrop, Deadline, RefreshClaim};
use super::read::{joined, spawn_audited, timed_out};
use super::{CacheState, Failure, Inner, ResolveOptions};
use crate::Error;
use crate::secret::{Secret, UriInput};

impl Inner {
    pub(super) async fn resolve(
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
        let parsed;
        let uri = match input {
            UriInput::Parsed(uri) => uri,
            UriInput::Text(text) => match SecretUri::parse(text) {
                Ok(uri) => {
                    parsed = uri;
                    &parsed
                }
                Err(source) => {
                    // No provider to name: the span says why, no metric counts it.
                    let span = tracing::info_span!(
                        RESOLVE,
                        provider = Empty,
                        mount = Empty,
                        cache = Empty,
                        uri_hash = Empty,
                        resource_ref = Empty,
                        code = source.code(),
                    );
                    let _entered = span.enter();
                    tracing::debug!(code = source.code(), "invalid secret URI");
                    return Err(Error::Uri { source });
                }
            },
        };
        // Another spelling of a cached URI is a fresh hit too, with the hit path's span and
        // metrics.
        if !options.refresh
            && uri.as_str() != input.key()
            && let Some(secret) = self.cached(uri.as_str(), started)
        {
            return Ok(secret);
        }
        // The mount only when the tenant may read it: a caller's other mount names (path
        // segments) stay out of exported spans.
        let allowed = self.allowed.check(uri);
        let mount = allowed.is_ok().then(|| uri.mount());
        let span = tracing::info_span!(
            RESOLVE,
            provider = uri.provider().as_str(),
            mount,
            cache = Empty,
            uri_hash = Empty,
            resource_ref = Empty,
            code = Empty,
        );
        self.record_uri(&span, uri);
        let mut cache = None;
        let result = async {
            allowed?;
            self.load(uri, options, started, &mut cache).await
        }
        .in_span(span.clone())
        .await;
        self.record_resolve(uri, cache, result.is_ok(), started);
        if let Err(error) = &result {
            span.record("code", error.code());
            let _entered = span.enter();
            tracing::debug!(code = error.code(), "resolve failed");
        }
        result
    }

    /// The metrics of one resolve of `uri` that was not served by the hit path:
    /// `secrets.resolve.duration` and the cache counter its outcome moves. `cache` is `None`
    /// when the resolve was refused before the cache was consulted (a mount outside the
    /// allowed ones, a scheme with no route), recorded as `none`.
    pub(super) fn record_resolve(
        &self,
        uri: &SecretUri,
        cache: Option<CacheState>,
        ok: bool,
        started: Instant,
    ) {
        self.metrics.resolve(
            uri.provider().as_str(),
            cache.map_or("none", CacheState::as_str),
            if ok { "ok" } else { "error" },
            started.elapsed(),
        );
    }

    /// Everything after the hit path: routing, coalesced reads, stale-if-error, all within
    /// the resolve deadline.
    /// What the cache did is recorded on the current span and in `cache`.
    async fn load(
        self: &Arc<Self>,
        uri: &SecretUri,
        options: ResolveOptions,
        started: Instant,
        cache: &mut Option<CacheState>,
    ) -> Result<Secret, Error> {
        let span = tracing::Span::current();
        let mut record = |state: CacheState| {
            span.record("cache", state.as_str());
            *cache = Some(state);
        };
        let provider = self.routes.route(uri)?;
        // Before any I/O: a parameter the provider does not serve (`?verison=2`) is a typo,
        // never a silent read of something else.
        secret_providers::check_parameters(uri)
            .map_err(|e| Error::provider(uri.mount(), Arc::new(e)))?;
        let deadline = Deadline::new(self.io_handle()?, started, self.settings.resolve_deadline);
        // Database credentials live on their leases, not in the TTL cache: one lease per
        // role serves all its fields, and none is served past its end.
        #[cfg(feature = "db")]
        if self.leases.serves(uri) {
            let (value, held) = self.lease_read(uri, &deadline).await?;
            record(if held {
                CacheState::Hit
            } else {
                CacheState::Miss
            });
            return Ok(Secret(Arc::new(self.entry(uri, value))));
        }
        let key = uri.as_str();
        if !self.cacheable(uri) {
            record(CacheState::Off);
            let value = self.read(provider, uri, &deadline).await?;
            return Ok(Secret(Arc::new(self.entry(uri, value))));
        }
        if options.refresh {
            record(CacheState::Refresh);
            return match self.read(provider, uri, &deadline).await {
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
                    self.audit_hit(&entry.uri);
                    return Ok(Secret(entry));
                }
                if now < entry.stale_until {
                    let Some(claim) = RefreshClaim::try_claim(&entry) else {
                        record(CacheState::Stale);
                        self.audit_hit(&entry.uri);
                        return Ok(Secret(entry));
                    };
                    let result = self.refresh_stale(provider, uri, claim, &deadline).await;
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
                let value = self.read(provider, uri, &deadline).await?;
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
                    self.audit_hit(&entry.uri);
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
            return match self.read(provider, uri, &deadline).await {
                Ok(value) => {
                    let entry = Arc::new(self.entry(uri, value));
                    // Nothing is cached once the client is closed (its values are wiped).
                    if !self.closed.load(Ordering::SeqCst) {
                        // Fails only if a refresh replaced the placeholder meanwhile; fine.
                        let _ = guard.insert(Arc::clone(&entry));
                        self.served(&entry);
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

    /// One provider read, on the client's runtime and within the deadline (see
    /// [`spawn`]); the read is aborted when this future is dropped.
    pub(super) async fn read(
        &self,
        provider: &Arc<dyn SecretProvider>,
        uri: &SecretUri,
        deadline: &Deadline,
    ) -> Result<SecretValue, Error> {
        let audit = self.read_audit(uri);
        let task = spawn_audited(provider, deadline.handle(), uri, audit, &self.metrics);
        joined(
            deadline.run(AbortOnDrop(task)).await,
            uri,
            deadline.limit(),
            &self.metrics,
        )
    }
}
