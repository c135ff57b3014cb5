//! [`GrantCache`]: grants with TTLs and atomic use counters, the negative cache and the
//! anti-replay store, each a sharded `DashMap` with bounded memory.

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::sync::OnceCell;

use crate::{BindingKind, DenyReason, Grant, PepError};

/// A full map is swept for expired entries at most this often; between sweeps a full map
/// refuses new entries, so a flood cannot turn every call into an O(n) scan.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// The anti-replay keys are already keyed SipHash digests: hashing them again buys nothing.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used for `u64` keys; fold anything else in, FNV-style.
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Sizes and lifetimes of the three stores, from [`PepConfig`](crate::PepConfig).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheSettings {
    pub(crate) negative_ttl: Duration,
    pub(crate) negative_jitter: Duration,
    pub(crate) negative_max_entries: usize,
    pub(crate) replay_ttl: Duration,
    pub(crate) replay_max_entries: usize,
    pub(crate) grant_max_entries: usize,
}

/// A cached grant: the PDP's [`Grant`], its expiry and its live use counter.
pub(crate) struct GrantEntry {
    pub(crate) grant: Grant,
    pub(crate) expires_at: Instant,
    /// The kind of `grant.cnf_binding`, for drift messages.
    pub(crate) binding_kind: BindingKind,
    uses: AtomicU32,
}

impl GrantEntry {
    pub(crate) fn new(grant: Grant, issued_at: Instant, binding_kind: BindingKind) -> Self {
        let uses = AtomicU32::new(grant.uses);
        let expires_at = issued_at.checked_add(grant.ttl).unwrap_or(issued_at);
        let binding_kind = if grant.cnf_binding.is_some() {
            binding_kind
        } else {
            BindingKind::None
        };
        Self {
            grant,
            expires_at,
            binding_kind,
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

    pub(crate) fn uses(&self) -> u32 {
        self.uses.load(Ordering::Acquire)
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

/// One key's place in the grant map. Concurrent misses share it, so one PDP call serves them
/// all (single flight) and they all count uses on the same grant.
#[derive(Default)]
struct Slot {
    cell: OnceCell<Arc<GrantEntry>>,
}

enum Lookup {
    Ready(Arc<GrantEntry>),
    Init(Arc<Slot>),
    Full,
}

/// The PEP's in-memory state: grants keyed by (subject, tenant, canonical URI, `execute`), the
/// negative cache and the anti-replay store. Get it from [`Pep::cache`](crate::Pep::cache).
///
/// - **Grants** expire after their TTL; their uses are counted with a compare-and-swap bounded
///   by `max_uses`. Concurrent misses on one key make one PDP call. A spent grant stays until
///   it expires (a new one before then would reset the count).
/// - **Negative cache**: PDP denials for `NEGATIVE_CACHE_TTL_S` plus up to 500 ms of jitter
///   (so a burst of denied callers does not return to the PDP in lockstep).
/// - **Anti-replay**: `jti`s (scoped by issuer) for `ANTI_REPLAY_TTL_S`, stored as 64-bit keyed
///   SipHash digests (a collision can only cause a false `REPLAY`, never a missed one).
///
/// Each store has a size cap. A full store is swept for expired entries; if still full of live
/// entries, the **anti-replay store fails closed** (`REPLAY_STORE_FULL`) rather than forget a
/// `jti`, a full **grant map** serves the caller with an uncached grant used once (never more
/// uses than the PDP allowed), and a full **negative cache** skips caching (the PDP is asked
/// again).
pub struct GrantCache {
    // Grant keys are long strings hashed twice a decision: aHash (randomly keyed) costs a
    // fraction of SipHash there.
    grants: DashMap<Box<str>, Arc<Slot>, ahash::RandomState>,
    grant_count: AtomicUsize,
    negative: DashMap<Box<str>, Instant, ahash::RandomState>,
    negative_count: AtomicUsize,
    replay: DashMap<u64, Instant, BuildHasherDefault<PassThrough>>,
    replay_count: AtomicUsize,
    replay_hasher: RandomState,
    settings: CacheSettings,
    epoch: Instant,
    grant_sweep_ms: AtomicU64,
    negative_sweep_ms: AtomicU64,
    replay_sweep_ms: AtomicU64,
}

impl fmt::Debug for GrantCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrantCache")
            .field("grants", &self.grant_len())
            .field("negative", &self.negative_len())
            .field("replay", &self.replay_len())
            .field("settings", &self.settings)
            .finish()
    }
}

impl GrantCache {
    pub(crate) fn new(settings: CacheSettings) -> Self {
        Self {
            grants: DashMap::with_hasher(ahash::RandomState::new()),
            grant_count: AtomicUsize::new(0),
            negative: DashMap::with_hasher(ahash::RandomState::new()),
            negative_count: AtomicUsize::new(0),
            replay: DashMap::default(),
            replay_count: AtomicUsize::new(0),
            replay_hasher: RandomState::new(),
            settings,
            epoch: Instant::now(),
            grant_sweep_ms: AtomicU64::new(0),
            negative_sweep_ms: AtomicU64::new(0),
            replay_sweep_ms: AtomicU64::new(0),
        }
    }

    /// Grants held (including spent and not yet swept expired ones).
    #[must_use]
    pub fn grant_len(&self) -> usize {
        self.grant_count.load(Ordering::Relaxed)
    }

    /// Denials held in the negative cache.
    #[must_use]
    pub fn negative_len(&self) -> usize {
        self.negative_count.load(Ordering::Relaxed)
    }

    /// `jti`s held in the anti-replay store.
    #[must_use]
    pub fn replay_len(&self) -> usize {
        self.replay_count.load(Ordering::Relaxed)
    }

    /// Drops every expired grant, denial and `jti`.
    pub fn purge_expired(&self) {
        let now = Instant::now();
        self.sweep_grants(now);
        self.sweep_negative(now);
        self.sweep_replay(now);
    }

    /// Forgets every grant and denial (the anti-replay store is kept: forgetting a `jti` would
    /// let it be replayed). The next call for any key asks the PDP.
    pub fn clear_decisions(&self) {
        self.grants.retain(|_, _| {
            self.grant_count.fetch_sub(1, Ordering::Relaxed);
            false
        });
        self.negative.retain(|_, _| {
            self.negative_count.fetch_sub(1, Ordering::Relaxed);
            false
        });
    }

    /// The grant for `key`: a live cached one, or one issued by `issue` (once for all
    /// concurrent callers of this key).
    pub(crate) async fn get_or_issue<F, Fut>(
        &self,
        key: &str,
        now: Instant,
        issue: F,
    ) -> Result<Arc<GrantEntry>, PepError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<GrantEntry, PepError>>,
    {
        match self.lookup(key, now) {
            Lookup::Ready(entry) => Ok(entry),
            Lookup::Full => issue().await.map(Arc::new),
            Lookup::Init(slot) => {
                let result = slot
                    .cell
                    .get_or_try_init(|| async { issue().await.map(Arc::new) })
                    .await
                    .map(Arc::clone);
                if result.is_err() {
                    // Leave no empty slot behind for keys that never get a grant.
                    self.remove_slot(key, &slot, |s| s.cell.get().is_none());
                }
                result
            }
        }
    }

    /// The live cached grant for `key`, if there is one (the warm path: no PDP, no await).
    pub(crate) fn ready(&self, key: &str, now: Instant) -> Option<Arc<GrantEntry>> {
        let guard = self.grants.get(key)?;
        guard
            .value()
            .cell
            .get()
            .filter(|entry| entry.expires_at > now)
            .map(Arc::clone)
    }

    /// A live cached grant for `key`, without taking a use.
    pub(crate) fn peek(&self, key: &str, now: Instant) -> Option<Arc<GrantEntry>> {
        let slot = self.grants.get(key).map(|s| Arc::clone(s.value()))?;
        slot.cell
            .get()
            .filter(|entry| entry.expires_at > now)
            .map(Arc::clone)
    }

    /// Caches a grant issued outside [`Self::get_or_issue`] (a batch decision), unless a live or
    /// pending one is already there.
    pub(crate) fn insert(&self, key: &str, entry: Arc<GrantEntry>, now: Instant) {
        if !self.room(
            &self.grant_count,
            self.settings.grant_max_entries,
            &self.grant_sweep_ms,
            now,
            |now| self.sweep_grants(now),
        ) {
            return;
        }
        let slot = Arc::new(Slot {
            cell: OnceCell::new_with(Some(entry)),
        });
        match self.grants.entry(Box::from(key)) {
            Entry::Vacant(vacant) => {
                vacant.insert(slot);
                self.grant_count.fetch_add(1, Ordering::Relaxed);
            }
            Entry::Occupied(mut occupied) => {
                let expired = occupied
                    .get()
                    .cell
                    .get()
                    .is_some_and(|e| e.expires_at <= now);
                if expired {
                    occupied.insert(slot);
                }
            }
        }
    }

    fn lookup(&self, key: &str, now: Instant) -> Lookup {
        loop {
            // Bind first: no map guard may be held while the map is swept below.
            let existing = self.grants.get(key).map(|s| Arc::clone(s.value()));
            let slot = match existing {
                Some(slot) => slot,
                None => {
                    let has_room = self.room(
                        &self.grant_count,
                        self.settings.grant_max_entries,
                        &self.grant_sweep_ms,
                        now,
                        |now| self.sweep_grants(now),
                    );
                    if !has_room {
                        return Lookup::Full;
                    }
                    match self.grants.entry(Box::from(key)) {
                        Entry::Occupied(occupied) => Arc::clone(occupied.get()),
                        Entry::Vacant(vacant) => {
                            self.grant_count.fetch_add(1, Ordering::Relaxed);
                            Arc::clone(vacant.insert(Arc::new(Slot::default())).value())
                        }
                    }
                }
            };
            match slot.cell.get() {
                Some(entry) if entry.expires_at > now => return Lookup::Ready(Arc::clone(entry)),
                // Expired: drop it (if nobody replaced it meanwhile) and look again.
                Some(_) => self.remove_slot(key, &slot, |_| true),
                None => return Lookup::Init(slot),
            }
        }
    }

    fn remove_slot(&self, key: &str, slot: &Arc<Slot>, also: impl Fn(&Slot) -> bool) {
        let removed = self.grants.remove_if(key, |_, current| {
            Arc::ptr_eq(current, slot) && also(current)
        });
        if removed.is_some() {
            self.grant_count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether `key` was denied by the PDP within the negative-cache TTL.
    pub(crate) fn is_negative(&self, key: &str, now: Instant) -> bool {
        if self.negative_count.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let Some(expires_at) = self.negative.get(key).map(|e| *e.value()) else {
            return false;
        };
        if expires_at > now {
            return true;
        }
        if self
            .negative
            .remove_if(key, |_, expires| *expires <= now)
            .is_some()
        {
            self.negative_count.fetch_sub(1, Ordering::Relaxed);
        }
        false
    }

    /// Remembers a PDP denial for the TTL plus jitter.
    pub(crate) fn insert_negative(&self, key: &str, now: Instant) {
        if self.settings.negative_ttl.is_zero() {
            return;
        }
        let has_room = self.room(
            &self.negative_count,
            self.settings.negative_max_entries,
            &self.negative_sweep_ms,
            now,
            |now| self.sweep_negative(now),
        );
        if !has_room {
            return;
        }
        // Saturating: `PepConfig::validate` caps both, but a panic here would be a denial of
        // service on the deny path.
        let ttl = self
            .settings
            .negative_ttl
            .saturating_add(crate::util::jitter(self.settings.negative_jitter));
        let expires_at = now.checked_add(ttl).unwrap_or(now);
        if self.negative.insert(Box::from(key), expires_at).is_none() {
            self.negative_count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records `jti` (scoped by `issuer`) as used; `Err(REPLAY)` if it was used within the
    /// anti-replay TTL, `Err(REPLAY_STORE_FULL)` if the store is full of live `jti`s.
    pub(crate) fn check_replay(
        &self,
        issuer: Option<&str>,
        jti: &str,
        now: Instant,
    ) -> Result<(), DenyReason> {
        let digest = self.replay_hasher.hash_one((issuer, jti));
        // An unrepresentable deadline must not forget the `jti` at once (that would let the
        // replay through): fall back to the longest accepted window.
        let expires_at = now
            .checked_add(self.settings.replay_ttl)
            .or_else(|| now.checked_add(crate::config::MAX_WINDOW))
            .unwrap_or(now);
        let max = self.settings.replay_max_entries;
        if self.replay_count.load(Ordering::Relaxed) >= max
            && self.may_sweep(&self.replay_sweep_ms, now)
        {
            self.sweep_replay(now);
        }
        match self.replay.entry(digest) {
            Entry::Occupied(mut seen) => {
                if *seen.get() > now {
                    return Err(DenyReason::Replay);
                }
                *seen.get_mut() = expires_at;
                Ok(())
            }
            Entry::Vacant(vacant) => {
                if self.replay_count.load(Ordering::Relaxed) >= max {
                    return Err(DenyReason::ReplayStoreFull);
                }
                vacant.insert(expires_at);
                self.replay_count.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// Whether a map counted by `count` may take one more entry, sweeping it (rate-limited)
    /// when it is full. Must be called with no guard of that map held.
    fn room(
        &self,
        count: &AtomicUsize,
        max: usize,
        last_sweep: &AtomicU64,
        now: Instant,
        sweep: impl FnOnce(Instant),
    ) -> bool {
        if count.load(Ordering::Relaxed) < max {
            return true;
        }
        if self.may_sweep(last_sweep, now) {
            sweep(now);
        }
        count.load(Ordering::Relaxed) < max
    }

    fn may_sweep(&self, last_sweep: &AtomicU64, now: Instant) -> bool {
        let now_ms = u64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX)
            // 0 means "never swept".
            .max(1);
        let last = last_sweep.load(Ordering::Relaxed);
        let interval = u64::try_from(SWEEP_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now_ms.saturating_sub(last) < interval {
            return false;
        }
        last_sweep
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    fn sweep_grants(&self, now: Instant) {
        self.grants.retain(|_, slot| {
            let keep = slot.cell.get().is_none_or(|e| e.expires_at > now);
            if !keep {
                self.grant_count.fetch_sub(1, Ordering::Relaxed);
            }
            keep
        });
    }

    fn sweep_negative(&self, now: Instant) {
        self.negative.retain(|_, expires_at| {
            let keep = *expires_at > now;
            if !keep {
                self.negative_count.fetch_sub(1, Ordering::Relaxed);
            }
            keep
        });
    }

    fn sweep_replay(&self, now: Instant) {
        self.replay.retain(|_, expires_at| {
            let keep = *expires_at > now;
            if !keep {
                self.replay_count.fetch_sub(1, Ordering::Relaxed);
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn settings() -> CacheSettings {
        CacheSettings {
            negative_ttl: Duration::from_millis(50),
            negative_jitter: Duration::ZERO,
            negative_max_entries: 4,
            replay_ttl: Duration::from_millis(50),
            replay_max_entries: 3,
            grant_max_entries: 2,
        }
    }

    fn entry(ttl: Duration, max_uses: u32, now: Instant) -> GrantEntry {
        GrantEntry::new(Grant::new("g", ttl, max_uses), now, BindingKind::None)
    }

    #[test]
    fn uses_are_bounded_by_max_uses() {
        let e = entry(Duration::from_secs(1), 3, Instant::now());
        assert_eq!(
            (e.try_use(), e.try_use(), e.try_use(), e.try_use()),
            (Some(1), Some(2), Some(3), None)
        );
        assert_eq!(e.uses(), 3);
        let zero = entry(Duration::from_secs(1), 0, Instant::now());
        assert_eq!(zero.try_use(), None);
    }

    #[test]
    fn replay_is_detected_expires_and_fails_closed_when_full() {
        let cache = GrantCache::new(settings());
        let t0 = Instant::now();
        assert_eq!(cache.check_replay(Some("iss"), "a", t0), Ok(()));
        assert_eq!(
            cache.check_replay(Some("iss"), "a", t0),
            Err(DenyReason::Replay)
        );
        // Another issuer's `a` is another token.
        assert_eq!(cache.check_replay(Some("other"), "a", t0), Ok(()));
        assert_eq!(cache.check_replay(None, "b", t0), Ok(()));
        assert_eq!(cache.replay_len(), 3);
        assert_eq!(
            cache.check_replay(None, "c", t0),
            Err(DenyReason::ReplayStoreFull)
        );
        // Once the window has passed, the sweep frees room and old jtis are usable again.
        let t1 = t0 + Duration::from_millis(200);
        assert_eq!(cache.check_replay(None, "c", t1), Ok(()));
        assert_eq!(cache.check_replay(Some("iss"), "a", t1), Ok(()));
        assert!(cache.replay_len() <= 3);
    }

    #[test]
    fn negative_entries_expire() {
        let cache = GrantCache::new(settings());
        let t0 = Instant::now();
        assert!(!cache.is_negative("k", t0));
        cache.insert_negative("k", t0);
        assert!(cache.is_negative("k", t0 + Duration::from_millis(10)));
        assert!(!cache.is_negative("k", t0 + Duration::from_millis(60)));
        assert_eq!(cache.negative_len(), 0);
    }

    #[test]
    fn huge_negative_ttl_and_jitter_do_not_overflow() {
        let cache = GrantCache::new(CacheSettings {
            negative_ttl: Duration::MAX,
            negative_jitter: Duration::from_secs(u64::MAX),
            ..settings()
        });
        let t0 = Instant::now();
        cache.insert_negative("k", t0);
        assert!(cache.negative_len() <= 1);
    }

    #[test]
    fn a_huge_replay_window_still_catches_replays() {
        let cache = GrantCache::new(CacheSettings {
            replay_ttl: Duration::MAX,
            ..settings()
        });
        let t0 = Instant::now();
        assert_eq!(cache.check_replay(None, "j", t0), Ok(()));
        assert_eq!(cache.check_replay(None, "j", t0), Err(DenyReason::Replay));
    }

    #[tokio::test]
    async fn single_flight_then_expiry_then_full_map() {
        let cache = GrantCache::new(settings());
        let calls = AtomicUsize::new(0);
        let issue = |ttl: Duration, now: Instant| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(entry(ttl, 5, now)))
        };
        let t0 = Instant::now();
        let ttl = Duration::from_millis(50);
        let a = cache
            .get_or_issue("k1", t0, || issue(ttl, t0))
            .await
            .unwrap();
        let b = cache
            .get_or_issue("k1", t0, || issue(ttl, t0))
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(cache.peek("k1", t0).is_some());

        let t1 = t0 + Duration::from_millis(60);
        assert!(cache.peek("k1", t1).is_none());
        let c = cache
            .get_or_issue("k1", t1, || issue(ttl, t1))
            .await
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // Fill the map (cap 2) with live grants: the third key is served uncached.
        cache
            .get_or_issue("k2", t1, || issue(ttl, t1))
            .await
            .unwrap();
        assert_eq!(cache.grant_len(), 2);
        let d = cache
            .get_or_issue("k3", t1, || issue(ttl, t1))
            .await
            .unwrap();
        let e = cache
            .get_or_issue("k3", t1, || issue(ttl, t1))
            .await
            .unwrap();
        assert!(!Arc::ptr_eq(&d, &e));
        assert_eq!(cache.grant_len(), 2);
    }

    #[tokio::test]
    async fn failed_issue_leaves_no_slot() {
        let cache = GrantCache::new(settings());
        let t0 = Instant::now();
        let result = cache
            .get_or_issue("k", t0, || {
                std::future::ready(Err(PepError::denied(DenyReason::PdpDeny)))
            })
            .await;
        assert_eq!(result.unwrap_err().deny_reason(), Some(DenyReason::PdpDeny));
        assert_eq!(cache.grant_len(), 0);
    }
}
