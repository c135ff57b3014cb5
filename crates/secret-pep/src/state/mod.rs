//! The PEP's state behind traits: the anti-replay store ([`ReplayStore`]), the grants with
//! their use counters ([`GrantStore`]) and the negative cache ([`NegativeCache`]), gathered in
//! a [`PepState`].
//!
//! A [`Pep`](crate::Pep) built without a [`PepState`] keeps all three in its own memory
//! ([`GrantCache`](crate::GrantCache)), called directly with no boxed future: that is the
//! default, and the fastest. A [`PepState`] replaces any of them, for instance with the Redis
//! stores of feature `redis` ([`RedisState`](crate::RedisState)) so that N replicas share one
//! replay window, one use count per grant and one negative cache. The in-memory versions of
//! the traits ([`MemoryReplayStore`], [`MemoryGrantStore`], [`MemoryNegativeCache`]) are the
//! same code as the default state, behind the traits.
//!
//! Every store keys by what the PEP hands it: the **grant key** (every input of a decision:
//! tenant, subject, roles, binding, issuer, client, workflow ids, backend and resource; never
//! shown) and a `jti` scoped by its issuer. A store that leaves the process must key by a keyed
//! hash of them (the Redis stores use an HMAC under a key every replica shares) and must never
//! store a subject, URI, path or `jti`.

mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::{BoxError, DenyReason, Grant, PepError};

pub use memory::{MemoryGrantStore, MemoryNegativeCache, MemoryReplayStore};

/// What a store call returns: boxed, so the traits are object safe (`Arc<dyn GrantStore>`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Which store a failure is about: the `store` label of
/// `secrets.pep.state_store.failures` and of `STATE_STORE_UNAVAILABLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreKind {
    /// The anti-replay store.
    Replay,
    /// The grants and their use counters.
    Grant,
    /// The negative cache.
    Negative,
}

impl StoreKind {
    /// `replay`, `grant` or `negative` (`secret_telemetry::names::STATE_STORES`).
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Replay => "replay",
            Self::Grant => "grant",
            Self::Negative => "negative",
        }
    }
}

/// A store could not answer: unreachable, too slow, or an answer it cannot read. The PEP
/// turns it into `STATE_STORE_UNAVAILABLE` (fail closed) — or, for the anti-replay store
/// configured fail-open, lets the request through with a warning and a metric.
///
/// Its message names the store and the cause, never a key, a value or a URL.
#[derive(Debug, thiserror::Error)]
#[error("the {} store {cause}", store.label())]
#[non_exhaustive]
pub struct StoreError {
    /// The store that failed.
    pub store: StoreKind,
    /// What went wrong, e.g. `timed out`.
    pub cause: &'static str,
    /// The underlying error (never holding a key, a value or a password).
    #[source]
    pub source: Option<BoxError>,
}

impl StoreError {
    /// A failure of `store`: `cause` says what went wrong (`timed out`, `is unreachable`, …).
    #[must_use]
    pub fn new(store: StoreKind, cause: &'static str) -> Self {
        Self {
            store,
            cause,
            source: None,
        }
    }

    /// The same failure with its underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }
}

impl From<StoreError> for PepError {
    fn from(error: StoreError) -> Self {
        Self::StateStoreUnavailable {
            store: error.store.label(),
            cause: error.cause,
            source: error.source,
        }
    }
}

/// One `jti` to record: scoped by its issuer, remembered for `window` (the replay window the
/// PEP computed: `ANTI_REPLAY_TTL_S`, or the token's remaining lifetime plus the clock skew
/// when longer), counted against its principal (issuer and subject) where a store caps
/// principals. `Debug` shows neither the `jti` nor the subject.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct ReplayCheck<'a> {
    /// The token's issuer, when known.
    pub issuer: Option<&'a str>,
    /// The token's subject.
    pub subject: &'a str,
    /// The token id.
    pub jti: &'a str,
    /// How long the `jti` must be remembered.
    pub window: Duration,
}

impl<'a> ReplayCheck<'a> {
    /// A check of `jti` from `issuer`, for `subject`, remembered for `window`.
    #[must_use]
    pub fn new(issuer: Option<&'a str>, subject: &'a str, jti: &'a str, window: Duration) -> Self {
        Self {
            issuer,
            subject,
            jti,
            window,
        }
    }
}

impl fmt::Debug for ReplayCheck<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayCheck")
            .field("issuer", &self.issuer)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// What recording a `jti` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recorded {
    /// First use within its window: recorded.
    Fresh,
    /// Already used within its window (`REPLAY`).
    Replay,
    /// The store (or the principal's share of it) is full of live `jti`s
    /// (`REPLAY_STORE_FULL`): refused rather than forgetting one.
    Full,
}

impl Recorded {
    /// `Ok` for a fresh `jti`, else the deny reason.
    pub(crate) fn verdict(self) -> Result<(), DenyReason> {
        match self {
            Self::Fresh => Ok(()),
            Self::Replay => Err(DenyReason::Replay),
            Self::Full => Err(DenyReason::ReplayStoreFull),
        }
    }
}

/// The anti-replay store: each `jti` (scoped by issuer) is accepted once within its window.
///
/// Implementations must be atomic: one `jti` raced by any number of callers, on any number of
/// replicas sharing the store, is [`Recorded::Fresh`] exactly once.
pub trait ReplayStore: Send + Sync + fmt::Debug {
    /// Records the `jti` as used, unless it already was within its window.
    fn record<'a>(&'a self, check: ReplayCheck<'a>) -> StoreFuture<'a, Recorded>;

    /// Whether the `jti` was used within its window, without recording it (a batch that reads
    /// nothing only checks).
    fn seen<'a>(&'a self, check: ReplayCheck<'a>) -> StoreFuture<'a, bool>;
}

/// The right to ask the PDP about one grant key, held by one caller across every replica
/// sharing a [`GrantStore`] (so concurrent misses on N replicas make one PDP decision, not N).
/// A store without cross-process claims hands out [`Claim::none`]; the PEP's own single flight
/// then covers the process.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Claim(Option<String>);

impl Claim {
    /// No claim: the store does not coordinate PDP calls across processes.
    #[must_use]
    pub const fn none() -> Self {
        Self(None)
    }

    /// A claim identified by `token` (random; the store releases it only for this token).
    #[must_use]
    pub fn new(token: impl Into<String>) -> Self {
        Self(Some(token.into()))
    }

    /// The claim's token, if the store hands out claims.
    #[must_use]
    pub fn token(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Claim(held)"
        } else {
            "Claim(none)"
        })
    }
}

/// A stored grant as a [`GrantStore`] hands it out: the grant, its use count and its expiry.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoredGrant {
    /// The grant's terms (without the caller's sender binding, which the PEP puts back: the
    /// binding is part of the grant key).
    pub grant: Grant,
    /// Uses taken so far, this caller's included.
    pub used: u32,
    /// Time left before the grant expires.
    pub expires_in: Duration,
    /// The store's id of this stored grant, so a use given back never reaches a later grant
    /// stored under the same key.
    pub stamp: String,
}

impl StoredGrant {
    /// A stored `grant` with `used` uses taken, expiring in `expires_in`, identified by `stamp`.
    #[must_use]
    pub fn new(grant: Grant, used: u32, expires_in: Duration, stamp: impl Into<String>) -> Self {
        Self {
            grant,
            used,
            expires_in,
            stamp: stamp.into(),
        }
    }
}

/// What [`GrantStore::take`] found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Taken {
    /// A live grant, with one use taken for this caller: its `used` is this use's number.
    Used(Box<StoredGrant>),
    /// No usable grant (none, expired, or spent — a spent one is dropped so that a fresh
    /// decision can be stored). With a claim asked for, the caller now holds it and asks the
    /// PDP; [`Claim::none`] otherwise.
    Vacant(Claim),
    /// No usable grant, and another process holds the claim to ask the PDP (only when a claim
    /// was asked for): look again shortly.
    Busy,
}

/// Grants by grant key, with their use counters.
///
/// Implementations must be atomic: under any concurrency, across every replica sharing the
/// store, a grant serves at most `max_uses` uses ([`take`](Self::take)), a key holds one live
/// grant at a time ([`put`](Self::put): the loser of a race adopts the winner's grant), and a
/// count given back never drops below zero.
pub trait GrantStore: Send + Sync + fmt::Debug {
    /// Takes one use of the live grant for `key`, refusing above its `max_uses`. With `claim`,
    /// a caller that finds no usable grant also tries to claim the PDP call for `key`.
    fn take<'a>(&'a self, key: &'a str, claim: bool) -> StoreFuture<'a, Taken>;

    /// Stores `grant` for `key` for `grant.ttl`, unless a live, unspent one is there (the
    /// loser adopts the winner's), releases `claim`, and takes one use of the grant that now
    /// serves the key when `take_use` (a batch only stores: `used` is then the count so far).
    /// [`Taken::Vacant`] when the grant that serves the key has no use left for this caller.
    fn put<'a>(
        &'a self,
        key: &'a str,
        grant: &'a Grant,
        claim: &'a Claim,
        take_use: bool,
    ) -> StoreFuture<'a, Taken>;

    /// Releases `claim` without storing anything (the PDP refused or failed).
    fn release<'a>(&'a self, key: &'a str, claim: &'a Claim) -> StoreFuture<'a, ()>;

    /// Gives one use back to the grant `stamp` under `key` (a read that failed before the vault
    /// returned data). Never below zero, never to a later grant. Whether a use went back.
    fn give_back<'a>(&'a self, key: &'a str, stamp: &'a str) -> StoreFuture<'a, bool>;

    /// The live, unspent grant for `key`, without taking a use (a batch's look).
    fn peek<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StoredGrant>>;
}

/// PDP denials by grant key, remembered for `NEGATIVE_CACHE_TTL_S` plus up to
/// `NEGATIVE_CACHE_JITTER_MS` of jitter (the PEP computes the TTL of each).
pub trait NegativeCache: Send + Sync + fmt::Debug {
    /// Remembers a denial of `key` for `ttl`.
    fn deny<'a>(&'a self, key: &'a str, reason: DenyReason, ttl: Duration) -> StoreFuture<'a, ()>;

    /// Whether a denial of `key` is remembered.
    fn denied<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool>;
}

/// Where a [`Pep`](crate::Pep) keeps its state: [`PepBuilder::state`](crate::PepBuilder::state).
///
/// [`PepState::memory`] (the default) keeps everything in the PEP's own memory. Any store can be
/// replaced: `PepState::memory().with_replay(…)` shares only the anti-replay window;
/// [`PepState::redis`] (feature `redis`) puts all three on one Redis, where a warm decision is
/// one round trip (one script records the `jti` and takes the use). A negative cache of its own
/// needs a grant store of its own (the in-memory grants keep their denials beside them).
#[derive(Clone, Default)]
pub struct PepState {
    pub(crate) replay: Option<Arc<dyn ReplayStore>>,
    pub(crate) grants: Option<Arc<dyn GrantStore>>,
    pub(crate) negative: Option<Arc<dyn NegativeCache>>,
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<crate::RedisState>,
}

impl fmt::Debug for PepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("PepState");
        s.field("replay", &self.replay)
            .field("grants", &self.grants)
            .field("negative", &self.negative);
        #[cfg(feature = "redis")]
        s.field("redis", &self.redis.is_some());
        s.finish()
    }
}

impl PepState {
    /// Everything in the PEP's own memory (the default).
    #[must_use]
    pub fn memory() -> Self {
        Self::default()
    }

    /// Records `jti`s in `store`.
    #[must_use]
    pub fn with_replay(mut self, store: Arc<dyn ReplayStore>) -> Self {
        self.replay = Some(store);
        #[cfg(feature = "redis")]
        {
            self.redis = None;
        }
        self
    }

    /// Keeps grants and their use counts in `store`.
    #[must_use]
    pub fn with_grants(mut self, store: Arc<dyn GrantStore>) -> Self {
        self.grants = Some(store);
        #[cfg(feature = "redis")]
        {
            self.redis = None;
        }
        self
    }

    /// Keeps PDP denials in `store` (with a grant store of its own).
    #[must_use]
    pub fn with_negative(mut self, store: Arc<dyn NegativeCache>) -> Self {
        self.negative = Some(store);
        #[cfg(feature = "redis")]
        {
            self.redis = None;
        }
        self
    }

    /// All three stores on one Redis: a warm decision is one round trip (one script records
    /// the `jti`, takes the use, or reports a remembered denial).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    #[must_use]
    pub fn redis(state: crate::RedisState) -> Self {
        Self {
            replay: Some(state.replay_store()),
            grants: Some(state.grant_store()),
            negative: Some(state.negative_cache()),
            redis: Some(state),
        }
    }

    /// Whether every store is the PEP's own memory.
    #[must_use]
    pub fn is_memory(&self) -> bool {
        self.replay.is_none() && self.grants.is_none() && self.negative.is_none()
    }

    /// Checks the combination: a negative cache of its own needs a grant store of its own.
    pub(crate) fn validate(&self) -> Result<(), PepError> {
        if self.negative.is_some() && self.grants.is_none() {
            return Err(PepError::invalid(
                "PepState",
                "has a negative cache but no grant store of its own (in-memory grants keep \
                 their denials beside them)",
            ));
        }
        Ok(())
    }
}
