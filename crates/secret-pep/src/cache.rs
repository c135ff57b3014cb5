//! [`GrantCache`]: grants with their live use counters, PDP denials (the negative cache) and
//! the anti-replay store.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use quick_cache::sync::{Cache, DefaultLifecycle, GuardResult, PlaceholderGuard};
use quick_cache::{DefaultHashBuilder, UnitWeighter};

use crate::replay::{ReplayMap, ReplayTicket};
use crate::{DenyReason, Grant, PepError};

/// Sizes and lifetimes of the stores, from [`PepConfig`](crate::PepConfig).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheSettings {
    pub(crate) negative_ttl: Duration,
    pub(crate) negative_jitter: Duration,
    pub(crate) grant_max_entries: usize,
    pub(crate) replay_max_entries: usize,
    pub(crate) replay_max_per_subject: usize,
}

/// A cached grant: the PDP's [`Grant`], its expiry and its live use counter.
pub(crate) struct GrantEntry {
    pub(crate) grant: Grant,
    pub(crate) expires_at: Instant,
    uses: AtomicU32,
}

impl GrantEntry {
    pub(crate) fn new(grant: Grant, issued_at: Instant) -> Self {
        let uses = AtomicU32::new(grant.uses);
        let expires_at = issued_at.checked_add(grant.ttl).unwrap_or(issued_at);
        Self {
            grant,
            expires_at,
            uses,
        }
    }

    /// Takes one use: `Some(n)` for the n-th use (1-based), `None` when all are spent. Under
    /// any concurrency exactly `max_uses` calls get `Some`.
    pub(crate) fn try_use(&self) -> Option<u32> {
        let max = self.grant.max_uses;
        self.uses
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < max).then_some(used + 1)
            })
            .ok()
            .map(|before| before + 1)
    }

    /// Gives one use back (a read that failed before the vault returned data). Never below
    /// zero, so the grant never allows more than `max_uses` reads that returned data.
    pub(crate) fn give_back(&self) -> bool {
        self.uses
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_sub(1)
            })
            .is_ok()
    }

    pub(crate) fn uses(&self) -> u32 {
        self.uses.load(Ordering::Acquire)
    }

    /// Live and not spent.
    pub(crate) fn usable(&self, now: Instant) -> bool {
        self.expires_at > now && self.uses() < self.grant.max_uses
    }
}

impl fmt::Debug for GrantEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrantEntry")
            .field("grant", &self.grant)
            .field("expires_at", &self.expires_at)
            .field("uses", &self.uses())
            .finish()
    }
}

/// A PDP call that gave no grant: shared with the callers that waited on it, and (for a
/// denial) remembered until `until`, the negative cache.
pub(crate) struct Refusal {
    at: Instant,
    until: Instant,
    error: PepError,
}

/// What the map holds for a grant key.
#[derive(Clone)]
pub(crate) enum Slot {
    Granted(Arc<GrantEntry>),
    Refused(Arc<Refusal>),
}

impl Slot {
    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Granted(a), Self::Granted(b)) => Arc::ptr_eq(a, b),
            (Self::Refused(a), Self::Refused(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// What a lookup found for a caller that started at `started`.
pub(crate) enum Found<'a> {
    /// A live grant with a use taken (the n-th).
    Used(Arc<GrantEntry>, u32),
    /// Refused: the error of the PDP call the caller waited on, or `NEGATIVE_CACHED`.
    Refused(PepError),
    /// Nothing usable: the caller asks the PDP and fills the slot with the guard.
    Vacant(IssueGuard<'a>),
}

/// The right to ask the PDP for one key; the callers waiting on it get what is filled in. If
/// dropped unfilled (the asking task was cancelled), one waiter gets the right instead.
pub(crate) struct IssueGuard<'a> {
    guard: PlaceholderGuard<
        'a,
        String,
        Slot,
        UnitWeighter,
        DefaultHashBuilder,
        DefaultLifecycle<String, Slot>,
    >,
}

type GrantMap = Cache<String, Slot>;

/// The PEP's in-memory state: grants and denials keyed by the grant key (caller, backend and
/// resource; see `docs/pep.md`), and the anti-replay store. Get it from
/// [`Pep::cache`](crate::Pep::cache).
///
/// - **Grants** are used until spent or expired, then dropped: the next call asks the PDP
///   again. Uses are counted with a compare-and-swap bounded by `max_uses`, so no PDP decision
///   ever serves more than its `max_uses` reads. Concurrent misses on a key make one PDP call
///   (`quick_cache`'s placeholder: exactly one loader, the others wait); a failed call is
///   handed to the callers that waited on it, and the next caller asks again.
/// - **Negative cache**: PDP denials for `NEGATIVE_CACHE_TTL_S` plus up to
///   `NEGATIVE_CACHE_JITTER_MS` of jitter, in the same map and under the same key as grants.
/// - **Anti-replay**: `jti`s until their window ends, bounded overall and per principal; full
///   means `REPLAY_STORE_FULL`, never forgetting a live `jti`.
///
/// The map holds at most `GRANT_CACHE_MAX_ENTRIES` grants and denials and evicts the least
/// useful ones when full; an evicted grant only means one more PDP decision.
pub struct GrantCache {
    grants: GrantMap,
    replay: ReplayMap,
    settings: CacheSettings,
}

impl fmt::Debug for GrantCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrantCache")
            .field("grants", &self.grant_len())
            .field("replay", &self.replay_len())
            .field("settings", &self.settings)
            .finish()
    }
}

impl GrantCache {
    pub(crate) fn new(settings: CacheSettings) -> Self {
        Self {
            grants: Cache::new(settings.grant_max_entries.max(1)),
            replay: ReplayMap::new(settings.replay_max_entries, settings.replay_max_per_subject),
            settings,
        }
    }

    /// Grants and denials held (including spent or expired ones not yet dropped).
    #[must_use]
    pub fn grant_len(&self) -> usize {
        self.grants.len()
    }

    /// Denials held in the negative cache.
    #[must_use]
    pub fn negative_len(&self) -> usize {
        let now = Instant::now();
        self.grants
            .iter()
            .filter(|(_, slot)| matches!(slot, Slot::Refused(r) if r.until > now))
            .count()
    }

    /// `jti`s held in the anti-replay store.
    #[must_use]
    pub fn replay_len(&self) -> usize {
        self.replay.len()
    }

    /// Drops every spent or expired grant, expired denial and expired `jti`.
    pub fn purge_expired(&self) {
        let now = Instant::now();
        self.grants.retain(|_, slot| match slot {
            Slot::Granted(entry) => entry.usable(now),
            Slot::Refused(refusal) => refusal.until > now,
        });
        self.replay.sweep(now);
    }

    /// Forgets every grant and denial (the anti-replay store is kept: forgetting a `jti` would
    /// let it be replayed). The next call for any key asks the PDP.
    pub fn clear_decisions(&self) {
        self.grants.clear();
    }

    /// The warm path: a live grant for `key` with one use taken, without waiting or awaiting.
    pub(crate) fn take_ready(&self, key: &str, now: Instant) -> Option<(Arc<GrantEntry>, u32)> {
        match self.grants.get(key)? {
            Slot::Granted(entry) if entry.expires_at > now => {
                let n = entry.try_use()?;
                Some((entry, n))
            }
            _ => None,
        }
    }

    /// What `key` holds for a caller that started at `started`, waiting for a PDP call in
    /// flight. Spent or expired grants and expired denials are dropped on the way.
    pub(crate) async fn find(&self, key: &str, started: Instant) -> Found<'_> {
        loop {
            let slot = match self.grants.get(key) {
                Some(slot) => slot,
                None => match self.grants.get_value_or_guard_async(key).await {
                    Ok(slot) => slot,
                    Err(guard) => return Found::Vacant(IssueGuard { guard }),
                },
            };
            // After any wait: judge the slot by the clock now.
            let now = Instant::now();
            match &slot {
                Slot::Granted(entry) if entry.expires_at > now => {
                    if let Some(n) = entry.try_use() {
                        return Found::Used(Arc::clone(entry), n);
                    }
                }
                Slot::Granted(_) => {}
                Slot::Refused(refusal) => {
                    if refusal.at >= started {
                        // This caller waited on that very PDP call: it gets its answer.
                        return Found::Refused(refusal.error.snapshot());
                    }
                    if refusal.until > now {
                        return Found::Refused(PepError::denied(DenyReason::NegativeCached));
                    }
                }
            }
            // Spent, expired, or a stale refusal: drop exactly that slot and look again.
            self.grants.remove_if(key, |current| current.same(&slot));
        }
    }

    /// A live, unspent grant or a live denial for `key`, without waiting and without taking a
    /// use (a batch's look before it asks).
    pub(crate) fn peek(&self, key: &str, now: Instant) -> Option<Slot> {
        match self.grants.get(key)? {
            Slot::Granted(entry) if entry.usable(now) => Some(Slot::Granted(entry)),
            Slot::Refused(refusal) if refusal.until > now => Some(Slot::Refused(refusal)),
            _ => None,
        }
    }

    /// Caches a grant decided outside [`Self::find`] (a batch), unless a usable one or a call
    /// in flight is already there. Returns the grant that now serves the key.
    pub(crate) fn offer(&self, key: &str, entry: Arc<GrantEntry>, now: Instant) -> Arc<GrantEntry> {
        for _ in 0..2 {
            match self.grants.get_value_or_guard(key, Some(Duration::ZERO)) {
                GuardResult::Guard(guard) => {
                    let _ = guard.insert(Slot::Granted(Arc::clone(&entry)));
                    return entry;
                }
                GuardResult::Value(Slot::Granted(existing)) if existing.usable(now) => {
                    return existing;
                }
                GuardResult::Value(stale) => {
                    self.grants.remove_if(key, |current| current.same(&stale));
                }
                // Another caller is asking the PDP for this key right now: leave it to them.
                GuardResult::Timeout => return entry,
            }
        }
        entry
    }

    /// Remembers a batch denial like [`IssueGuard::refuse`], unless something is in flight.
    pub(crate) fn offer_refusal(&self, key: &str, error: &PepError, now: Instant) {
        if let GuardResult::Guard(guard) = self.grants.get_value_or_guard(key, Some(Duration::ZERO))
        {
            let _ = guard.insert(Slot::Refused(Arc::new(self.refusal(error, now))));
        }
    }

    fn refusal(&self, error: &PepError, now: Instant) -> Refusal {
        let cacheable = !self.settings.negative_ttl.is_zero()
            && error.deny_reason().is_some_and(DenyReason::is_cacheable);
        let until = if cacheable {
            // Saturating: `PepConfig::validate` caps both, but a panic here would be a denial
            // of service on the deny path.
            let ttl = self
                .settings
                .negative_ttl
                .saturating_add(crate::util::jitter(self.settings.negative_jitter));
            now.checked_add(ttl).unwrap_or(now)
        } else {
            now
        };
        Refusal {
            at: now,
            until,
            error: error.snapshot(),
        }
    }

    /// Whether `jti` was already used within its window (checked, not recorded).
    pub(crate) fn seen_jti(&self, issuer: Option<&str>, jti: &str, now: Instant) -> bool {
        self.replay.seen(issuer, jti, now)
    }

    /// Records a `jti` as used; `Err(REPLAY)` or `Err(REPLAY_STORE_FULL)`.
    pub(crate) fn check_replay(
        &self,
        ticket: ReplayTicket<'_>,
        now: Instant,
    ) -> Result<(), DenyReason> {
        self.replay.check(ticket, now)
    }
}

impl IssueGuard<'_> {
    /// Fills the slot with a fresh grant (the caller's own use already taken from it).
    pub(crate) fn grant(self, entry: Arc<GrantEntry>) {
        let _ = self.guard.insert(Slot::Granted(entry));
    }

    /// Fills the slot with the PDP call's failure: the waiters get it, later callers get
    /// `NEGATIVE_CACHED` while a denial is remembered, else ask again.
    pub(crate) fn refuse(self, cache: &GrantCache, error: &PepError) {
        let refusal = cache.refusal(error, Instant::now());
        let _ = self.guard.insert(Slot::Refused(Arc::new(refusal)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CacheSettings {
        CacheSettings {
            negative_ttl: Duration::from_millis(50),
            negative_jitter: Duration::ZERO,
            grant_max_entries: 16,
            replay_max_entries: 3,
            replay_max_per_subject: 3,
        }
    }

    fn entry(ttl: Duration, max_uses: u32) -> Arc<GrantEntry> {
        Arc::new(GrantEntry::new(
            Grant::new("g", ttl, max_uses),
            Instant::now(),
        ))
    }

    #[test]
    fn uses_are_bounded_and_given_back_never_below_zero() {
        let e = entry(Duration::from_secs(1), 3);
        assert_eq!(
            (e.try_use(), e.try_use(), e.try_use(), e.try_use()),
            (Some(1), Some(2), Some(3), None)
        );
        assert!(e.give_back());
        assert_eq!(e.try_use(), Some(3));
        let fresh = entry(Duration::from_secs(1), 3);
        assert!(!fresh.give_back(), "nothing taken, nothing to give back");
        assert_eq!(fresh.uses(), 0);
        let zero = entry(Duration::from_secs(1), 0);
        assert_eq!(zero.try_use(), None);
    }

    #[tokio::test]
    async fn a_spent_grant_is_dropped_and_the_next_caller_asks_again() {
        let cache = GrantCache::new(settings());
        let started = Instant::now();
        let Found::Vacant(guard) = cache.find("k", started).await else {
            panic!("empty cache")
        };
        let first = entry(Duration::from_secs(60), 2);
        assert_eq!(first.try_use(), Some(1));
        guard.grant(Arc::clone(&first));
        assert!(matches!(
            cache.take_ready("k", Instant::now()),
            Some((_, 2))
        ));
        assert!(cache.take_ready("k", Instant::now()).is_none(), "spent");
        assert!(matches!(
            cache.find("k", Instant::now()).await,
            Found::Vacant(_)
        ));
    }

    #[tokio::test]
    async fn a_failed_call_goes_to_its_waiters_and_not_to_later_callers() {
        let cache = GrantCache::new(settings());
        let t0 = Instant::now();
        let Found::Vacant(guard) = cache.find("k", t0).await else {
            panic!("empty cache")
        };
        guard.refuse(&cache, &PepError::unavailable(crate::PdpFailure::Timeout));
        // A waiter that started before the failure gets it…
        let Found::Refused(shared) = cache.find("k", t0).await else {
            panic!("the waiter gets the failure")
        };
        assert_eq!(shared.code(), "PDP_UNAVAILABLE");
        // …a later caller asks again (unavailability is not negative-cached).
        assert!(matches!(
            cache.find("k", Instant::now()).await,
            Found::Vacant(_)
        ));
    }

    #[tokio::test]
    async fn denials_are_negative_cached_then_expire() {
        let cache = GrantCache::new(settings());
        let Found::Vacant(guard) = cache.find("k", Instant::now()).await else {
            panic!("empty cache")
        };
        guard.refuse(&cache, &PepError::denied(DenyReason::PdpDeny));
        assert_eq!(cache.negative_len(), 1);
        let later = Instant::now() + Duration::from_millis(1);
        std::thread::sleep(Duration::from_millis(2));
        let Found::Refused(cached) = cache.find("k", later).await else {
            panic!("negative-cached")
        };
        assert_eq!(cached.deny_reason(), Some(DenyReason::NegativeCached));
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(
            cache.find("k", Instant::now()).await,
            Found::Vacant(_)
        ));
    }

    #[test]
    fn huge_negative_ttl_and_jitter_do_not_overflow() {
        let cache = GrantCache::new(CacheSettings {
            negative_ttl: Duration::MAX,
            negative_jitter: Duration::from_secs(u64::MAX),
            ..settings()
        });
        let refusal = cache.refusal(&PepError::denied(DenyReason::PdpDeny), Instant::now());
        assert!(refusal.until >= refusal.at);
    }

    #[test]
    fn a_batch_offer_never_replaces_a_usable_grant() {
        let cache = GrantCache::new(settings());
        let now = Instant::now();
        let first = entry(Duration::from_secs(60), 2);
        assert!(Arc::ptr_eq(
            &cache.offer("k", Arc::clone(&first), now),
            &first
        ));
        let second = entry(Duration::from_secs(60), 2);
        assert!(Arc::ptr_eq(&cache.offer("k", second, now), &first));
        let _ = first.try_use();
        let _ = first.try_use();
        let third = entry(Duration::from_secs(60), 2);
        assert!(
            Arc::ptr_eq(&cache.offer("k", Arc::clone(&third), now), &third),
            "a spent grant is replaced"
        );
    }
}
