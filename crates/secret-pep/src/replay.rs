//! The anti-replay store: `jti`s remembered until their window ends, bounded overall and per
//! principal, failing closed when full.

use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::DenyReason;

/// A full store is swept for expired entries at most this often; between sweeps a full store
/// refuses new `jti`s, so a flood cannot turn every call into an O(n) scan.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// The keys are already keyed SipHash digests: hashing them again buys nothing.
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

type DigestMap<V> = DashMap<u64, V, BuildHasherDefault<PassThrough>>;

/// One remembered `jti`: until when, and whose share it counts against.
#[derive(Clone, Copy)]
struct Seen {
    until: Instant,
    principal: u64,
}

/// How long to remember one `jti`, and under which principal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplayTicket<'a> {
    pub(crate) issuer: Option<&'a str>,
    pub(crate) subject: &'a str,
    pub(crate) jti: &'a str,
    /// When the `jti` may be forgotten.
    pub(crate) until: Instant,
}

/// `jti`s (scoped by issuer) stored as 64-bit keyed SipHash digests: a collision can only
/// cause a false `REPLAY`, never a missed one. Each principal (issuer, subject) may hold at
/// most `per_principal` live entries, the whole store `max_entries`; past either, a new `jti`
/// is refused (`REPLAY_STORE_FULL`) rather than an old one forgotten.
pub(crate) struct ReplayMap {
    seen: DigestMap<Seen>,
    count: AtomicUsize,
    per_principal: DigestMap<usize>,
    hasher: RandomState,
    max_entries: usize,
    max_per_principal: usize,
    epoch: Instant,
    last_sweep_ms: AtomicU64,
}

impl fmt::Debug for ReplayMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayMap")
            .field("len", &self.len())
            .field("max_entries", &self.max_entries)
            .field("max_per_principal", &self.max_per_principal)
            .finish()
    }
}

impl ReplayMap {
    pub(crate) fn new(max_entries: usize, max_per_principal: usize) -> Self {
        Self {
            seen: DashMap::default(),
            count: AtomicUsize::new(0),
            per_principal: DashMap::default(),
            hasher: RandomState::new(),
            max_entries,
            max_per_principal: max_per_principal.max(1),
            epoch: Instant::now(),
            last_sweep_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    fn digest(&self, issuer: Option<&str>, jti: &str) -> u64 {
        self.hasher.hash_one((0u8, issuer, jti))
    }

    fn principal(&self, issuer: Option<&str>, subject: &str) -> u64 {
        self.hasher.hash_one((1u8, issuer, subject))
    }

    /// Whether `jti` was used within its window, without recording it (a batch pre-check).
    pub(crate) fn seen(&self, issuer: Option<&str>, jti: &str, now: Instant) -> bool {
        self.seen
            .get(&self.digest(issuer, jti))
            .is_some_and(|seen| seen.until > now)
    }

    /// Records the `jti` as used: `Err(REPLAY)` if it was used within its window,
    /// `Err(REPLAY_STORE_FULL)` if the store, or this principal's share of it, is full of
    /// live `jti`s.
    pub(crate) fn check(&self, ticket: ReplayTicket<'_>, now: Instant) -> Result<(), DenyReason> {
        let digest = self.digest(ticket.issuer, ticket.jti);
        let principal = self.principal(ticket.issuer, ticket.subject);
        if self.len() >= self.max_entries && self.may_sweep(now) {
            self.sweep(now);
        }
        match self.record(digest, principal, ticket.until, now) {
            // This principal's share is full: sweep (rate-limited) and try once more. No
            // guard of either map is held here, as the sweep needs them all.
            Err(DenyReason::ReplayStoreFull) if self.may_sweep(now) => {
                self.sweep(now);
                self.record(digest, principal, ticket.until, now)
            }
            outcome => outcome,
        }
    }

    fn record(
        &self,
        digest: u64,
        principal: u64,
        until: Instant,
        now: Instant,
    ) -> Result<(), DenyReason> {
        let fresh = Seen { until, principal };
        match self.seen.entry(digest) {
            Entry::Occupied(mut held) => {
                let old = *held.get();
                if old.until > now {
                    return Err(DenyReason::Replay);
                }
                // An expired entry is reused in place: the store does not grow.
                if old.principal != principal {
                    if !self.take(principal) {
                        return Err(DenyReason::ReplayStoreFull);
                    }
                    self.release(old.principal);
                }
                *held.get_mut() = fresh;
                Ok(())
            }
            Entry::Vacant(vacant) => {
                if self.len() >= self.max_entries || !self.take(principal) {
                    return Err(DenyReason::ReplayStoreFull);
                }
                vacant.insert(fresh);
                self.count.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// Counts one more live `jti` against `principal`'s share, unless it is full.
    fn take(&self, principal: u64) -> bool {
        let mut held = self.per_principal.entry(principal).or_insert(0);
        if *held >= self.max_per_principal {
            return false;
        }
        *held += 1;
        true
    }

    fn release(&self, principal: u64) {
        if let Entry::Occupied(mut held) = self.per_principal.entry(principal) {
            let n = held.get_mut();
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove();
            }
        }
    }

    fn may_sweep(&self, now: Instant) -> bool {
        let now_ms = u64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX)
            // 0 means "never swept".
            .max(1);
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(SWEEP_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now_ms.saturating_sub(last) < interval {
            return false;
        }
        self.last_sweep_ms
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Drops every expired `jti`.
    pub(crate) fn sweep(&self, now: Instant) {
        let mut freed: Vec<u64> = Vec::new();
        self.seen.retain(|_, seen| {
            let keep = seen.until > now;
            if !keep {
                self.count.fetch_sub(1, Ordering::Relaxed);
                freed.push(seen.principal);
            }
            keep
        });
        for principal in freed {
            self.release(principal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket<'a>(subject: &'a str, jti: &'a str, until: Instant) -> ReplayTicket<'a> {
        ReplayTicket {
            issuer: Some("iss"),
            subject,
            jti,
            until,
        }
    }

    #[test]
    fn replays_are_caught_until_the_window_ends() {
        let store = ReplayMap::new(10, 10);
        let t0 = Instant::now();
        let until = t0 + Duration::from_millis(50);
        assert_eq!(store.check(ticket("a", "j", until), t0), Ok(()));
        assert!(store.seen(Some("iss"), "j", t0));
        assert_eq!(
            store.check(ticket("a", "j", until), t0),
            Err(DenyReason::Replay)
        );
        // Another subject presenting the same (issuer, jti) is the same token.
        assert_eq!(
            store.check(ticket("b", "j", until), t0),
            Err(DenyReason::Replay)
        );
        // Another issuer's `j` is another token.
        let other = ReplayTicket {
            issuer: Some("other"),
            ..ticket("a", "j", until)
        };
        assert_eq!(store.check(other, t0), Ok(()));
        let later = t0 + Duration::from_millis(60);
        assert!(!store.seen(Some("iss"), "j", later));
        assert_eq!(
            store.check(ticket("a", "j", later + Duration::from_secs(1)), later),
            Ok(())
        );
        assert_eq!(store.len(), 2, "the expired entry was reused in place");
    }

    #[test]
    fn one_principal_cannot_fill_the_store_for_everyone() {
        let store = ReplayMap::new(100, 10);
        let t0 = Instant::now();
        let until = t0 + Duration::from_secs(60);
        let ids: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
        let minted: Vec<_> = ids
            .iter()
            .map(|id| store.check(ticket("mallory", id, until), t0))
            .collect();
        assert_eq!(minted.iter().filter(|r| r.is_ok()).count(), 10);
        assert!(
            minted[10..]
                .iter()
                .all(|r| *r == Err(DenyReason::ReplayStoreFull))
        );
        // Everyone else still gets in.
        for (i, subject) in ["alice", "bob", "carol"].into_iter().enumerate() {
            let id = format!("ok{i}");
            assert_eq!(store.check(ticket(subject, &id, until), t0), Ok(()));
        }
        // Once mallory's window has passed, the sweep frees the share.
        let later = until + Duration::from_secs(1);
        assert_eq!(
            store.check(
                ticket("mallory", "again", later + Duration::from_secs(1)),
                later
            ),
            Ok(())
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_full_store_fails_closed() {
        let store = ReplayMap::new(3, 3);
        let t0 = Instant::now();
        let until = t0 + Duration::from_secs(60);
        for (subject, id) in [("a", "1"), ("b", "2"), ("c", "3")] {
            assert_eq!(store.check(ticket(subject, id, until), t0), Ok(()));
        }
        assert_eq!(
            store.check(ticket("d", "4", until), t0),
            Err(DenyReason::ReplayStoreFull)
        );
        assert_eq!(
            store.check(ticket("a", "1", until), t0),
            Err(DenyReason::Replay),
            "a replay stays a replay when the store is full"
        );
    }
}
