//! The decision flow over a [`PepState`] of its own: the `jti` recorded in the replay store,
//! grants and their uses in the grant store, denials in the negative cache. With Redis for all
//! three ([`PepState::redis`]) a warm decision is one round trip: one script records the
//! `jti` and takes the use.
//!
//! Within a process, concurrent misses on one key still make one PDP call: the first becomes
//! the local loader (a `quick_cache` placeholder), the others wait for its landing. Across
//! processes, the loader claims the PDP call in the store (a token with a TTL): a loader that
//! finds the claim held by another replica waits for its grant. The claim only saves PDP
//! calls; the guarantees are the store's atomic operations: a grant is stored once per key
//! (the loser of a race adopts the winner's), its uses are taken atomically up to
//! `max_uses`, and a `jti` is recorded once.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use secret_uri::SecretUri;

use super::telemetry::Source;
use super::{Pep, Use};
use crate::cache::GrantEntry;
use crate::replay::ReplayTicket;
use crate::state::{
    Claim, GrantStore, MemoryNegativeCache, NegativeCache, PepState, ReplayCheck, ReplayStore,
    StoreError, StoredGrant, Taken,
};
use crate::{DenyReason, ExecutionContext, Grant, PdpFailure, PepError};

/// A fail-open warning is logged at most this often.
const WARN_INTERVAL: Duration = Duration::from_secs(10);
/// How long a loader polls for another replica's grant beyond the claim's TTL.
const BUSY_MARGIN: Duration = Duration::from_secs(1);

/// The stores of a PEP built with a [`PepState`] of its own, and its local single flight.
pub(crate) struct Shared {
    /// `None`: `jti`s stay in the PEP's own memory.
    replay: Option<Arc<dyn ReplayStore>>,
    /// `None`: grants stay in the PEP's own memory (the default flow).
    grants: Option<Arc<dyn GrantStore>>,
    negative: Arc<dyn NegativeCache>,
    /// All three stores on one Redis: one script per warm decision.
    #[cfg(feature = "redis")]
    redis: Option<crate::RedisState>,
    /// The PDP calls in flight in this process, and how the last one of each key landed.
    flights: Cache<String, Arc<Landing>>,
    fail_open: bool,
    epoch: Instant,
    last_warning_ms: AtomicU64,
    claim_wait: Duration,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("replay", &self.replay)
            .field("grants", &self.grants)
            .field("negative", &self.negative)
            .field("fail_open", &self.fail_open)
            .finish_non_exhaustive()
    }
}

/// A PEP's grant store and negative cache.
pub(crate) type Stores<'a> = (&'a Arc<dyn GrantStore>, &'a Arc<dyn NegativeCache>);

/// How a local PDP call for a key ended: at `at`, with a grant stored (`None`) or an error
/// for the callers that waited on it.
struct Landing {
    at: Instant,
    error: Option<PepError>,
}

impl Landing {
    fn new(error: Option<&PepError>) -> Arc<Self> {
        Arc::new(Self {
            at: Instant::now(),
            error: error.map(PepError::snapshot),
        })
    }
}

/// A use of a grant held in a store: what [`Authorized`](super::Authorized) needs to show it
/// and to give it back.
pub(crate) struct SharedUse {
    pub(crate) grant: Grant,
    pub(crate) expires_at: Instant,
    pub(crate) used: u32,
    /// The store, key and stamp a use goes back to (`None`: the grant was never stored).
    back: Option<(Arc<dyn GrantStore>, String, String)>,
}

impl SharedUse {
    /// Gives the use back to the store; `false` when it could not (never stored, spent by
    /// others, replaced, or the store is unreachable).
    pub(crate) async fn give_back(&self) -> bool {
        match &self.back {
            Some((store, key, stamp)) => store.give_back(key, stamp).await.unwrap_or(false),
            None => false,
        }
    }

    /// The store call of [`Self::give_back`], owned, for a task.
    pub(crate) async fn give_back_task(self: Arc<Self>) -> bool {
        self.give_back().await
    }
}

/// What a step of the flow found.
enum Step {
    Used(Box<StoredGrant>),
    Denied,
    Vacant(Claim),
    Busy,
}

impl Shared {
    pub(crate) fn new(
        state: PepState,
        grant_capacity: usize,
        fail_open: bool,
    ) -> Result<Self, PepError> {
        state.validate()?;
        let negative = state
            .negative
            .unwrap_or_else(|| Arc::new(MemoryNegativeCache::new(grant_capacity)));
        #[cfg(feature = "redis")]
        let claim_wait = state
            .redis
            .as_ref()
            .map_or(Duration::from_secs(5), crate::RedisState::claim_ttl);
        #[cfg(not(feature = "redis"))]
        let claim_wait = Duration::from_secs(5);
        Ok(Self {
            replay: state.replay,
            grants: state.grants,
            negative,
            #[cfg(feature = "redis")]
            redis: state.redis,
            flights: Cache::new(grant_capacity.max(1)),
            fail_open,
            epoch: Instant::now(),
            last_warning_ms: AtomicU64::new(0),
            claim_wait: claim_wait + BUSY_MARGIN,
        })
    }

    /// Whether grants live in a store (else in the PEP's own memory).
    pub(crate) fn shares_grants(&self) -> bool {
        self.grants.is_some()
    }

    /// The grant store and the negative cache, when grants live in a store.
    pub(crate) fn stores(&self) -> Option<Stores<'_>> {
        self.grants.as_ref().map(|grants| (grants, &self.negative))
    }

    /// Whether all three stores are one Redis: one script per warm decision.
    fn is_fused(&self) -> bool {
        #[cfg(feature = "redis")]
        {
            self.redis.is_some()
        }
        #[cfg(not(feature = "redis"))]
        {
            false
        }
    }

    /// A warning when failing open, at most every [`WARN_INTERVAL`].
    fn warn_fail_open(&self, error: &StoreError) {
        let now = u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(WARN_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now.saturating_sub(last) < interval {
            return;
        }
        if self
            .last_warning_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::warn!(
                store = error.store.label(),
                cause = error.cause,
                "anti-replay store unavailable: ANTI_REPLAY_FAIL_OPEN=true lets requests through \
                 without a replay check"
            );
        }
    }
}

impl Pep {
    /// A store failure: counted (`secrets.pep.state_store.failures`), as the PEP's error.
    pub(super) fn store_failed(&self, error: StoreError, allowed: bool) -> PepError {
        self.inner
            .metrics
            .state_store_failure(error.store.label(), allowed);
        tracing::debug!(
            store = error.store.label(),
            cause = error.cause,
            allowed,
            "PEP state store call failed"
        );
        PepError::from(error)
    }

    /// Steps 4–7 over the PEP's own state stores.
    pub(super) async fn decide_shared(
        &self,
        shared: &Shared,
        ctx: &ExecutionContext,
        subject: &str,
        uri: &SecretUri,
        now: Instant,
    ) -> Result<Use, PepError> {
        let lifetime = self.token_lifetime(ctx)?;
        let jti = self.replay_jti(ctx);
        let key = self.key(ctx, subject, uri);
        let window = self.replay_window(lifetime);
        let check = jti.map(|jti| ReplayCheck::new(ctx.issuer.as_deref(), subject, jti, window));
        if shared.is_fused() {
            return self
                .shared_grant(shared, ctx, subject, uri, &key, now, check)
                .await;
        }
        if let Some(check) = check {
            self.record_jti(shared, check, now).await?;
        }
        if shared.shares_grants() {
            self.shared_grant(shared, ctx, subject, uri, &key, now, None)
                .await
        } else {
            self.grant(ctx, subject, uri, &key, now).await
        }
    }

    /// Steps 4 and 5 for a batch: the token's lifetime, then its `jti` recorded or checked,
    /// in the PEP's memory or its replay store.
    pub(super) async fn check_token_any(
        &self,
        ctx: &ExecutionContext,
        subject: &str,
        now: Instant,
        replay: super::Replay,
    ) -> Result<(), PepError> {
        let Some(shared) = &self.inner.shared else {
            return self.check_token(ctx, subject, now, replay);
        };
        let lifetime = self.token_lifetime(ctx)?;
        let Some(jti) = self.replay_jti(ctx) else {
            return Ok(());
        };
        let window = self.replay_window(lifetime);
        let check = ReplayCheck::new(ctx.issuer.as_deref(), subject, jti, window);
        match replay {
            super::Replay::Record => self.record_jti(shared, check, now).await,
            super::Replay::Peek => {
                if self.seen_jti(shared, check).await? {
                    Err(PepError::denied(DenyReason::Replay))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Steps 6 and 7 (the `jti` already checked): from the grant store, or the PEP's memory.
    pub(super) async fn use_grant(
        &self,
        ctx: &ExecutionContext,
        subject: &str,
        uri: &SecretUri,
        key: &str,
        started: Instant,
    ) -> Result<Use, PepError> {
        match &self.inner.shared {
            Some(shared) if shared.shares_grants() => {
                Box::pin(self.shared_grant(shared, ctx, subject, uri, key, started, None)).await
            }
            _ => self.grant(ctx, subject, uri, key, started).await,
        }
    }

    /// A batch's PDP denial, remembered in the negative cache of the PEP's stores.
    pub(super) async fn remember_denial(&self, key: &str, error: &PepError) {
        if let Some(shared) = &self.inner.shared {
            self.remember_refusal(shared, key, error).await;
        }
    }

    /// Records the `jti` in the replay store (or the PEP's memory); a store failure refuses,
    /// or with `ANTI_REPLAY_FAIL_OPEN` lets the call through, counted and warned about.
    pub(super) async fn record_jti(
        &self,
        shared: &Shared,
        check: ReplayCheck<'_>,
        now: Instant,
    ) -> Result<(), PepError> {
        let Some(store) = &shared.replay else {
            let until = now
                .checked_add(check.window)
                .or_else(|| now.checked_add(crate::config::MAX_WINDOW))
                .unwrap_or(now);
            let ticket = ReplayTicket {
                issuer: check.issuer,
                subject: check.subject,
                jti: check.jti,
                until,
            };
            return self
                .inner
                .cache
                .check_replay(ticket, now)
                .map_err(PepError::denied);
        };
        match store.record(check).await {
            Ok(recorded) => recorded.verdict().map_err(PepError::denied),
            Err(error) => self.replay_failed(shared, error),
        }
    }

    /// Whether a `jti` was used (a batch's check), from the replay store or the PEP's memory.
    pub(super) async fn seen_jti(
        &self,
        shared: &Shared,
        check: ReplayCheck<'_>,
    ) -> Result<bool, PepError> {
        match &shared.replay {
            None => Ok(self
                .inner
                .cache
                .seen_jti(check.issuer, check.jti, Instant::now())),
            Some(store) => match store.seen(check).await {
                Ok(seen) => Ok(seen),
                Err(error) => self.replay_failed(shared, error).map(|()| false),
            },
        }
    }

    fn replay_failed(&self, shared: &Shared, error: StoreError) -> Result<(), PepError> {
        if shared.fail_open {
            shared.warn_fail_open(&error);
            let _ = self.store_failed(error, true);
            Ok(())
        } else {
            Err(self.store_failed(error, false))
        }
    }

    /// One step: (the `jti`, recorded by the fused script when `replay` is given,) a use of the
    /// live grant, else a remembered denial, else (with `claim`) the claim to ask the PDP.
    async fn step(
        &self,
        shared: &Shared,
        replay: Option<ReplayCheck<'_>>,
        key: &str,
        claim: bool,
    ) -> Result<Step, PepError> {
        #[cfg(feature = "redis")]
        if let Some(redis) = &shared.redis {
            use crate::state::redis::Decided;
            let recorded = replay.is_some();
            return match redis.decide(replay, key, true, claim).await {
                Ok(Decided::Replay) => Err(PepError::denied(DenyReason::Replay)),
                Ok(Decided::Used(stored)) => Ok(Step::Used(stored)),
                Ok(Decided::Denied) => Ok(Step::Denied),
                Ok(Decided::Vacant(claim)) => Ok(Step::Vacant(claim)),
                Ok(Decided::Busy) => Ok(Step::Busy),
                Err(error) => {
                    if recorded {
                        // One script for both: the replay check failed with the grant's.
                        self.inner.metrics.state_store_failure("replay", false);
                    }
                    Err(self.store_failed(error, false))
                }
            };
        }
        #[cfg(not(feature = "redis"))]
        let _ = replay;
        let Some(grants) = &shared.grants else {
            // Never: the shared flow runs only with a grant store (`Shared::shares_grants`).
            return Err(PepError::invalid("PepState", "has no grant store"));
        };
        match grants.take(key, claim).await {
            Ok(Taken::Used(stored)) => Ok(Step::Used(stored)),
            Ok(Taken::Busy) => Ok(Step::Busy),
            Ok(Taken::Vacant(claim)) => match shared.negative.denied(key).await {
                Ok(false) => Ok(Step::Vacant(claim)),
                Ok(true) => {
                    self.release(shared, key, &claim).await;
                    Ok(Step::Denied)
                }
                Err(error) => {
                    self.release(shared, key, &claim).await;
                    Err(self.store_failed(error, false))
                }
            },
            Err(error) => Err(self.store_failed(error, false)),
        }
    }

    async fn release(&self, shared: &Shared, key: &str, claim: &Claim) {
        if claim.token().is_none() {
            return;
        }
        if let Some(store) = &shared.grants
            && let Err(error) = store.release(key, claim).await
        {
            // The claim expires on its own; only its PDP call is delayed for others.
            let _ = self.store_failed(error, false);
        }
    }

    /// Steps 6 and 7 over the grant store: a use of the live grant, or a fresh decision stored
    /// once for every replica.
    #[allow(clippy::too_many_arguments)]
    async fn shared_grant(
        &self,
        shared: &Shared,
        ctx: &ExecutionContext,
        subject: &str,
        uri: &SecretUri,
        key: &str,
        started: Instant,
        mut replay: Option<ReplayCheck<'_>>,
    ) -> Result<Use, PepError> {
        let mut retook: Option<Arc<Landing>> = None;
        loop {
            match self.step(shared, replay.take(), key, false).await? {
                Step::Used(stored) => return Ok(Self::shared_use(shared, key, stored, ctx, None)),
                Step::Denied => return Err(PepError::denied(DenyReason::NegativeCached)),
                Step::Vacant(_) | Step::Busy => {}
            }
            match shared.flights.get_value_or_guard_async(key).await {
                Ok(landing) => {
                    if let Some(error) = &landing.error {
                        if landing.at >= started {
                            // This caller waited on that very PDP call: it gets its answer.
                            return Err(error.snapshot());
                        }
                    } else if !retook
                        .as_ref()
                        .is_some_and(|seen| Arc::ptr_eq(seen, &landing))
                    {
                        // A grant was stored: take a use of it.
                        retook = Some(landing);
                        continue;
                    }
                    // Stale (an old failure, or a grant spent since): drop it, look again.
                    shared
                        .flights
                        .remove_if(key, |current| Arc::ptr_eq(current, &landing));
                }
                Err(guard) => {
                    let (landing, result) = self.load(shared, ctx, subject, uri, key).await;
                    let _ = guard.insert(landing);
                    return result;
                }
            }
        }
    }

    /// The local loader: claims the PDP call in the store, asks, stores the grant (or the
    /// denial) and takes its own use; waits while another replica holds the claim.
    async fn load(
        &self,
        shared: &Shared,
        ctx: &ExecutionContext,
        subject: &str,
        uri: &SecretUri,
        key: &str,
    ) -> (Arc<Landing>, Result<Use, PepError>) {
        let began = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let claim = match self.step(shared, None, key, true).await {
                Err(error) => return (Landing::new(Some(&error)), Err(error)),
                Ok(Step::Used(stored)) => {
                    return (
                        Landing::new(None),
                        Ok(Self::shared_use(shared, key, stored, ctx, None)),
                    );
                }
                Ok(Step::Denied) => {
                    let error = PepError::denied(DenyReason::NegativeCached);
                    return (Landing::new(Some(&error)), Err(error));
                }
                Ok(Step::Busy) => {
                    if began.elapsed() > shared.claim_wait {
                        let error = PepError::unavailable(PdpFailure::Timeout);
                        return (Landing::new(Some(&error)), Err(error));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(25));
                    continue;
                }
                Ok(Step::Vacant(claim)) => claim,
            };
            match self.ask(ctx, subject, uri).await {
                Ok(grant) => match self.store_grant(shared, key, &grant, &claim, ctx).await {
                    Ok(Some(used)) => return (Landing::new(None), Ok(used)),
                    // The grant that serves the key was spent before this caller's use: ask again.
                    Ok(None) => {}
                    Err(error) => {
                        self.release(shared, key, &claim).await;
                        return (Landing::new(Some(&error)), Err(error));
                    }
                },
                Err(error) => {
                    self.remember_refusal(shared, key, &error).await;
                    self.release(shared, key, &claim).await;
                    return (Landing::new(Some(&error)), Err(error));
                }
            }
        }
    }

    /// The PDP's grant for `uri`, accepted (binding, obligations, TTL cap).
    async fn ask(
        &self,
        ctx: &ExecutionContext,
        subject: &str,
        uri: &SecretUri,
    ) -> Result<Grant, PepError> {
        let resource = crate::key::pdp_uri(uri);
        let request = self.access_request(ctx, subject, &resource);
        let grant = self.ask_pdp(&request).await?;
        let entry = self.accept(grant, ctx, Instant::now())?;
        Ok(entry.grant)
    }

    /// Stores a fresh decision (or adopts the one another replica stored) and takes this
    /// caller's use; `None` when the serving grant had no use left.
    async fn store_grant(
        &self,
        shared: &Shared,
        key: &str,
        grant: &Grant,
        claim: &Claim,
        ctx: &ExecutionContext,
    ) -> Result<Option<Use>, PepError> {
        if grant.ttl < Duration::from_millis(1) {
            // A grant that expires at once serves only the caller that asked: nothing to store.
            self.release(shared, key, claim).await;
            let entry = GrantEntry::new(grant.clone(), Instant::now());
            let use_number = entry
                .try_use()
                .ok_or(PepError::denied(DenyReason::UsesExhausted))?;
            let stored = StoredGrant::new(entry.grant, use_number, Duration::ZERO, "");
            return Ok(Some(Self::unstored_use(stored)));
        }
        let Some(store) = &shared.grants else {
            // Never: the shared flow runs only with a grant store (`Shared::shares_grants`).
            return Err(PepError::invalid("PepState", "has no grant store"));
        };
        match store.put(key, grant, claim, true).await {
            Ok(Taken::Used(stored)) => {
                let ours = stored.grant.grant_id == grant.grant_id;
                Ok(Some(Self::shared_use(
                    shared,
                    key,
                    stored,
                    ctx,
                    ours.then_some(Source::Pdp),
                )))
            }
            Ok(Taken::Vacant(_) | Taken::Busy) => Ok(None),
            Err(error) => Err(self.store_failed(error, false)),
        }
    }

    /// A PDP denial the negative cache may remember, remembered there (with jitter).
    async fn remember_refusal(&self, shared: &Shared, key: &str, error: &PepError) {
        let config = &self.inner.config;
        let Some(reason) = error.deny_reason().filter(|r| r.is_cacheable()) else {
            return;
        };
        if config.negative_cache_ttl.is_zero() {
            return;
        }
        let ttl = config
            .negative_cache_ttl
            .saturating_add(crate::util::jitter(config.negative_cache_jitter));
        if let Err(failure) = shared.negative.deny(key, reason, ttl).await {
            // The denial stands; only its memory is lost.
            let _ = self.store_failed(failure, false);
        }
    }

    /// A use of a stored grant, with the caller's binding put back.
    fn shared_use(
        shared: &Shared,
        key: &str,
        stored: Box<StoredGrant>,
        ctx: &ExecutionContext,
        source: Option<Source>,
    ) -> Use {
        let mut stored = *stored;
        stored.grant.cnf_binding = ctx.sender_binding().map(str::to_owned);
        let back = shared
            .grants
            .as_ref()
            .map(|store| (Arc::clone(store), key.to_owned(), stored.stamp));
        let used = SharedUse {
            expires_at: Instant::now() + stored.expires_in,
            used: stored.used,
            grant: stored.grant,
            back,
        };
        Use::shared(Arc::new(used), source.unwrap_or(Source::Grant))
    }

    /// A use of a grant that was never stored (it expired at once).
    fn unstored_use(stored: StoredGrant) -> Use {
        let used = SharedUse {
            expires_at: Instant::now(),
            used: stored.used,
            grant: stored.grant,
            back: None,
        };
        Use::shared(Arc::new(used), Source::Pdp)
    }
}
