//! The in-memory stores behind the traits: the code of the PEP's default state ([`ReplayMap`],
//! [`GrantEntry`]), for a [`PepState`](super::PepState) that mixes them with shared ones and for
//! testing the traits' contract.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quick_cache::sync::{Cache, GuardResult};

use super::{
    Claim, GrantStore, NegativeCache, Recorded, ReplayCheck, ReplayStore, StoreFuture, StoredGrant,
    Taken,
};
use crate::cache::GrantEntry;
use crate::replay::{ReplayMap, ReplayTicket};
use crate::{DenyReason, Grant};

/// `jti`s in this process's memory: the default anti-replay store behind [`ReplayStore`],
/// bounded overall and per principal (`REPLAY_STORE_FULL` when full of live `jti`s).
pub struct MemoryReplayStore {
    map: ReplayMap,
}

impl fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("map", &self.map)
            .finish()
    }
}

impl MemoryReplayStore {
    /// At most `max_entries` live `jti`s, `max_per_principal` of them for one principal.
    #[must_use]
    pub fn new(max_entries: usize, max_per_principal: usize) -> Self {
        Self {
            map: ReplayMap::new(max_entries, max_per_principal),
        }
    }

    /// `jti`s held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no `jti` is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn record_now(&self, check: ReplayCheck<'_>) -> Recorded {
        let now = Instant::now();
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
        match self.map.check(ticket, now) {
            Ok(()) => Recorded::Fresh,
            Err(DenyReason::Replay) => Recorded::Replay,
            Err(_) => Recorded::Full,
        }
    }
}

impl ReplayStore for MemoryReplayStore {
    fn record<'a>(&'a self, check: ReplayCheck<'a>) -> StoreFuture<'a, Recorded> {
        let recorded = self.record_now(check);
        Box::pin(std::future::ready(Ok(recorded)))
    }

    fn seen<'a>(&'a self, check: ReplayCheck<'a>) -> StoreFuture<'a, bool> {
        let seen = self.map.seen(check.issuer, check.jti, Instant::now());
        Box::pin(std::future::ready(Ok(seen)))
    }
}

/// A grant with the store's id of it.
struct Held {
    entry: GrantEntry,
    stamp: String,
}

impl Held {
    fn stored(&self, used: u32, now: Instant) -> StoredGrant {
        StoredGrant::new(
            self.entry.grant.clone(),
            used,
            self.entry.expires_at.saturating_duration_since(now),
            self.stamp.clone(),
        )
    }
}

/// Grants and their use counters in this process's memory, behind [`GrantStore`]: the
/// default grant cache's compare-and-swap counters, bounded to `capacity` grants. It hands out
/// no claims (the PEP's single flight covers the process).
pub struct MemoryGrantStore {
    grants: Cache<String, Arc<Held>>,
    next_stamp: AtomicU64,
}

impl fmt::Debug for MemoryGrantStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryGrantStore")
            .field("grants", &self.grants.len())
            .finish()
    }
}

impl MemoryGrantStore {
    /// At most `capacity` grants (the least useful are evicted: one more PDP decision each).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            grants: Cache::new(capacity.max(1)),
            next_stamp: AtomicU64::new(1),
        }
    }

    /// Grants held (spent or expired ones not yet dropped included).
    #[must_use]
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// Whether no grant is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take_now(&self, key: &str) -> Taken {
        let Some(held) = self.grants.get(key) else {
            return Taken::Vacant(Claim::none());
        };
        let now = Instant::now();
        if held.entry.expires_at > now
            && let Some(n) = held.entry.try_use()
        {
            return Taken::Used(Box::new(held.stored(n, now)));
        }
        // Spent or expired: drop exactly that grant, so that a fresh decision can be stored.
        self.grants
            .remove_if(key, |current| Arc::ptr_eq(current, &held));
        Taken::Vacant(Claim::none())
    }

    fn put_now(&self, key: &str, grant: &Grant, take_use: bool) -> Taken {
        let now = Instant::now();
        let fresh = || {
            let stamp = self.next_stamp.fetch_add(1, Ordering::Relaxed).to_string();
            Arc::new(Held {
                entry: GrantEntry::new(grant.clone(), now),
                stamp,
            })
        };
        let mut serving = None;
        for _ in 0..4 {
            match self.grants.get_value_or_guard(key, Some(Duration::ZERO)) {
                GuardResult::Guard(guard) => {
                    let held = fresh();
                    let _ = guard.insert(Arc::clone(&held));
                    serving = Some(held);
                    break;
                }
                GuardResult::Value(existing) if existing.entry.usable(now) => {
                    serving = Some(existing);
                    break;
                }
                GuardResult::Value(stale) => {
                    self.grants
                        .remove_if(key, |current| Arc::ptr_eq(current, &stale));
                }
                // Another caller is inserting right now: look again.
                GuardResult::Timeout => std::thread::yield_now(),
            }
        }
        // Could not store (contention): this caller's grant serves only this caller.
        let held = serving.unwrap_or_else(fresh);
        if !take_use {
            return Taken::Used(Box::new(held.stored(held.entry.uses(), now)));
        }
        match held.entry.try_use() {
            Some(n) => Taken::Used(Box::new(held.stored(n, now))),
            None => Taken::Vacant(Claim::none()),
        }
    }
}

impl GrantStore for MemoryGrantStore {
    fn take<'a>(&'a self, key: &'a str, _claim: bool) -> StoreFuture<'a, Taken> {
        let taken = self.take_now(key);
        Box::pin(std::future::ready(Ok(taken)))
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        grant: &'a Grant,
        _claim: &'a Claim,
        take_use: bool,
    ) -> StoreFuture<'a, Taken> {
        let taken = self.put_now(key, grant, take_use);
        Box::pin(std::future::ready(Ok(taken)))
    }

    fn release<'a>(&'a self, _key: &'a str, _claim: &'a Claim) -> StoreFuture<'a, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn give_back<'a>(&'a self, key: &'a str, stamp: &'a str) -> StoreFuture<'a, bool> {
        let back = self
            .grants
            .get(key)
            .is_some_and(|held| held.stamp == stamp && held.entry.give_back());
        Box::pin(std::future::ready(Ok(back)))
    }

    fn peek<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StoredGrant>> {
        let now = Instant::now();
        let found = self
            .grants
            .get(key)
            .filter(|held| held.entry.usable(now))
            .map(|held| held.stored(held.entry.uses(), now));
        Box::pin(std::future::ready(Ok(found)))
    }
}

/// PDP denials in this process's memory, behind [`NegativeCache`], bounded to `capacity`.
pub struct MemoryNegativeCache {
    denials: Cache<String, Instant>,
}

impl fmt::Debug for MemoryNegativeCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryNegativeCache")
            .field("denials", &self.denials.len())
            .finish()
    }
}

impl MemoryNegativeCache {
    /// At most `capacity` denials.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            denials: Cache::new(capacity.max(1)),
        }
    }
}

impl NegativeCache for MemoryNegativeCache {
    fn deny<'a>(&'a self, key: &'a str, _reason: DenyReason, ttl: Duration) -> StoreFuture<'a, ()> {
        let now = Instant::now();
        self.denials
            .insert(key.to_owned(), now.checked_add(ttl).unwrap_or(now));
        Box::pin(std::future::ready(Ok(())))
    }

    fn denied<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        let now = Instant::now();
        let denied = match self.denials.get(key) {
            Some(until) if until > now => true,
            Some(until) => {
                self.denials.remove_if(key, |current| *current == until);
                false
            }
            None => false,
        };
        Box::pin(std::future::ready(Ok(denied)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(taken: Taken) -> StoredGrant {
        match taken {
            Taken::Used(stored) => *stored,
            other => panic!("expected a use, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_jti_is_fresh_once_per_window_and_full_fails_closed()
    -> Result<(), super::super::StoreError> {
        let store = MemoryReplayStore::new(2, 2);
        let check = |jti| ReplayCheck::new(Some("iss"), "alice", jti, Duration::from_millis(40));
        assert_eq!(store.record(check("a")).await?, Recorded::Fresh);
        assert!(store.seen(check("a")).await?);
        assert!(!store.seen(check("b")).await?);
        assert_eq!(store.record(check("a")).await?, Recorded::Replay);
        assert_eq!(store.record(check("b")).await?, Recorded::Fresh);
        assert_eq!(store.record(check("c")).await?, Recorded::Full);
        assert_eq!(store.len(), 2);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!store.seen(check("a")).await?);
        assert_eq!(store.record(check("a")).await?, Recorded::Fresh);
        Ok(())
    }

    #[tokio::test]
    async fn uses_are_bounded_given_back_never_below_zero_nor_to_a_later_grant()
    -> Result<(), super::super::StoreError> {
        let store = MemoryGrantStore::new(8);
        assert!(matches!(store.take("k", true).await?, Taken::Vacant(c) if c.token().is_none()));
        let grant = Grant::new("g1", Duration::from_secs(60), 2);
        let first = used(store.put("k", &grant, &Claim::none(), true).await?);
        assert_eq!((first.used, first.grant.grant_id.as_str()), (1, "g1"));
        // A second decision for the key loses the race and adopts the first grant.
        let other = Grant::new("g2", Duration::from_secs(60), 2);
        let adopted = used(store.put("k", &other, &Claim::none(), true).await?);
        assert_eq!((adopted.used, adopted.grant.grant_id.as_str()), (2, "g1"));
        assert!(
            matches!(store.take("k", false).await?, Taken::Vacant(_)),
            "spent"
        );
        assert!(store.peek("k").await?.is_none());
        // The spent grant was dropped: a fresh one is stored; the old stamp reaches nothing.
        let fresh = used(store.put("k", &other, &Claim::none(), true).await?);
        assert_eq!((fresh.used, fresh.grant.grant_id.as_str()), (1, "g2"));
        assert!(!store.give_back("k", &first.stamp).await?);
        assert!(store.give_back("k", &fresh.stamp).await?);
        assert!(
            !store.give_back("k", &fresh.stamp).await?,
            "never below zero"
        );
        let peeked = store.peek("k").await?.map(|s| s.used);
        assert_eq!(peeked, Some(0));
        // A batch stores without taking a use.
        let stored = used(store.put("b", &grant, &Claim::none(), false).await?);
        assert_eq!(stored.used, 0);
        assert_eq!(used(store.take("b", false).await?).used, 1);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_takes_never_exceed_max_uses() -> Result<(), super::super::StoreError> {
        let store = Arc::new(MemoryGrantStore::new(8));
        let grant = Grant::new("g", Duration::from_secs(60), 7);
        let _ = store.put("k", &grant, &Claim::none(), false).await?;
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.take("k", false).await })
            })
            .collect();
        let mut uses = Vec::new();
        for task in tasks {
            if let Ok(Ok(Taken::Used(stored))) = task.await {
                uses.push(stored.used);
            }
        }
        uses.sort_unstable();
        assert_eq!(uses, (1..=7).collect::<Vec<_>>());
        Ok(())
    }

    #[tokio::test]
    async fn grants_expire() -> Result<(), super::super::StoreError> {
        let store = MemoryGrantStore::new(8);
        let grant = Grant::new("g", Duration::from_millis(30), 5);
        let _ = used(store.put("k", &grant, &Claim::none(), true).await?);
        assert!(
            store
                .peek("k")
                .await?
                .is_some_and(|s| s.expires_in <= Duration::from_millis(30))
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(matches!(store.take("k", false).await?, Taken::Vacant(_)));
        assert!(store.is_empty(), "the expired grant was dropped");
        Ok(())
    }

    #[tokio::test]
    async fn denials_are_remembered_for_their_ttl() -> Result<(), super::super::StoreError> {
        let cache = MemoryNegativeCache::new(8);
        assert!(!cache.denied("k").await?);
        cache
            .deny("k", DenyReason::PdpDeny, Duration::from_millis(30))
            .await?;
        assert!(cache.denied("k").await?);
        assert!(!cache.denied("other").await?);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(!cache.denied("k").await?);
        Ok(())
    }
}
