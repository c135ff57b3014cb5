//! Database credentials on leases, owned by the client that read them (`db+cred://`,
//! `db+db://` through the built-in [`DbProvider`]).
//!
//! - **One lease, all its fields.** The client holds one lease per role (the URI without its
//!   `#key`): `#username` and `#password` of one role always come from the same lease, so
//!   they name the same database user. The lease is the cache of those URIs: they never
//!   enter the TTL cache, and nothing is served past the lease's end.
//! - **Issued once.** Concurrent first reads of a role make one request to the vault, in a
//!   task of the client's runtime that a cancelled caller does not stop: a lease the vault
//!   issued is always held (and so renewed and revoked), never lost with a dropped future.
//! - **Renewed, then rotated** in the background ([`renew`]): at about two thirds of the
//!   lease's duration (jittered); when the vault caps a renewal (the role's `max_ttl`),
//!   refuses it, or no longer knows the lease (`LEASE_NOT_FOUND`, a restarted vault), new
//!   credentials are read and announced to the role's watchers before the old lease ends (the
//!   overlap). Static roles are read again when the vault rotates them.
//! - **Revoked on close**: current and retiring leases alike, so a clean shutdown leaves no
//!   database user behind.

mod renew;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use secret_providers::{DbLease, DbProvider, LeaseId, ProviderError, SecretValue};
use secret_uri::SecretUri;
use tokio::task::AbortHandle;

use super::Inner;
use super::deadline::Deadline;
use super::read::{ReadMetrics, timed_out};
use crate::Error;

/// The default time before a lease ends at which its successor is read, 30 s (capped at a
/// third of the lease's duration for short leases).
pub const DEFAULT_LEASE_OVERLAP: Duration = Duration::from_secs(30);
/// How long `close` waits for the vault to revoke the client's leases.
const REVOKE_WAIT: Duration = Duration::from_secs(5);
/// A lease is not served in its last moment: a user handed out then could not log in.
const END_MARGIN: Duration = Duration::from_millis(250);
/// A static role's credentials are held at least this long (a vault that reports no
/// rotation time must not make every read a request).
const MIN_STATIC_HOLD: Duration = Duration::from_secs(1);
/// A retired lease is forgotten this long after its end: the vault revoked it by then.
const RETIRED_GRACE: Duration = Duration::from_secs(60);

/// The client's leases, by role.
pub(super) struct Leases {
    provider: Option<DbProvider>,
    by_role: Mutex<HashMap<String, Arc<Role>>>,
    /// Leases replaced by a successor and still alive until they end; revoked by `close`.
    retiring: Mutex<Vec<Retiring>>,
    overlap: Duration,
    /// Whether a lease at its end is replaced by a successor (else it just ends).
    rotate: bool,
    /// Issues under way (readers' and rotations'): `close` waits for them, so a lease the
    /// vault is creating right now is revoked too, never lost with the runtime.
    in_flight: Mutex<usize>,
    settled: std::sync::Condvar,
}

/// One issue under way, counted in [`Leases::in_flight`] until dropped (also when its task is
/// dropped unfinished).
struct InFlight<'a>(&'a Leases);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut count = lock(&self.0.in_flight);
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.0.settled.notify_all();
        }
    }
}

/// A replaced lease, alive until `ends`.
struct Retiring {
    id: LeaseId,
    ends: Instant,
}

/// One role's lease and its renewer.
pub(super) struct Role {
    /// The role's URI, without a `#key`.
    uri: SecretUri,
    held: Mutex<Option<Arc<Held>>>,
    /// One issue at a time: the first caller's, which the others wait for.
    issuing: Arc<tokio::sync::Mutex<()>>,
    renewer: Mutex<Option<AbortHandle>>,
}

/// Credentials the client holds and until when they are valid.
pub(super) struct Held {
    lease: DbLease,
    issued_at: Instant,
    /// Moved forward by each renewal.
    ends: Mutex<Instant>,
}

impl Held {
    fn new(lease: DbLease, now: Instant) -> Self {
        let mut ttl = lease.ttl().min(super::MAX_CACHE_SPAN);
        if lease.lease_id().is_none() {
            ttl = ttl.max(MIN_STATIC_HOLD);
        }
        let ends = now + ttl;
        Self {
            lease,
            issued_at: now,
            ends: Mutex::new(ends),
        }
    }

    fn ends(&self) -> Instant {
        *lock(&self.ends)
    }

    /// Whether it may still be handed out at `now`.
    fn servable(&self, now: Instant) -> bool {
        now + END_MARGIN < self.ends()
    }
}

impl Leases {
    pub(super) fn new(provider: Option<DbProvider>, overlap: Duration, rotate: bool) -> Self {
        Self {
            provider,
            by_role: Mutex::new(HashMap::new()),
            retiring: Mutex::new(Vec::new()),
            overlap,
            rotate,
            in_flight: Mutex::new(0),
            settled: std::sync::Condvar::new(),
        }
    }

    fn start_issue(&self) -> InFlight<'_> {
        *lock(&self.in_flight) += 1;
        InFlight(self)
    }

    /// Waits until no issue is under way, at most until `deadline`.
    fn settle(&self, deadline: Instant) {
        let mut count = lock(&self.in_flight);
        while *count > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(in_flight = *count, "leases still being issued at close");
                return;
            }
            count = self
                .settled
                .wait_timeout(count, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Forgets `role` if it holds nothing and nobody issues for it (a failed first read):
    /// roles that never got a lease do not accumulate.
    fn forget_if_empty(&self, role: &Arc<Role>) {
        let mut by_role = lock(&self.by_role);
        let key = role_key(&role.uri);
        if by_role.get(key).is_some_and(|r| Arc::ptr_eq(r, role))
            && lock(&role.held).is_none()
            && role.issuing.try_lock().is_ok()
        {
            by_role.remove(key);
        }
    }

    /// Makes sure the client still tracks `role` after a lease was installed in it: a
    /// `keep_leases` or `close` that drained the roles meanwhile would otherwise leave the new
    /// lease held by nobody. A role object replaced meanwhile hands its lease to the retiring
    /// ones (revoked by `close`).
    fn keep_tracking(&self, role: &Arc<Role>, held: &Held) {
        let mut by_role = lock(&self.by_role);
        let key = role_key(&role.uri);
        match by_role.get(key) {
            Some(current) if Arc::ptr_eq(current, role) => {}
            Some(_) => {
                drop(by_role);
                self.retire(held);
            }
            None => {
                by_role.insert(key.to_owned(), Arc::clone(role));
            }
        }
    }

    /// Whether this client owns the leases of `uri` (the built-in `db` provider serves it).
    pub(super) fn serves(&self, uri: &SecretUri) -> bool {
        use secret_providers::SecretProvider as _;
        self.provider.as_ref().is_some_and(|p| p.serves(uri))
    }

    /// How many roles hold a lease now (for tests and `Debug`).
    pub(super) fn held(&self) -> usize {
        lock(&self.by_role)
            .values()
            .filter(|role| lock(&role.held).is_some())
            .count()
    }

    fn role(&self, uri: &SecretUri) -> Result<Arc<Role>, Error> {
        let key = role_key(uri);
        let mut by_role = lock(&self.by_role);
        if let Some(role) = by_role.get(key) {
            return Ok(Arc::clone(role));
        }
        let role_uri = SecretUri::parse(key)?;
        let role = Arc::new(Role {
            uri: role_uri,
            held: Mutex::new(None),
            issuing: Arc::new(tokio::sync::Mutex::new(())),
            renewer: Mutex::new(None),
        });
        by_role.insert(key.to_owned(), Arc::clone(&role));
        Ok(role)
    }

    /// The overlap for a lease of `ttl`: the configured one, at most a third of the lease.
    fn overlap_for(&self, ttl: Duration) -> Duration {
        self.overlap.min(ttl / 3)
    }

    pub(super) fn retire(&self, held: &Held) {
        if let Some(id) = held.lease.lease_id() {
            let now = Instant::now();
            let mut retiring = lock(&self.retiring);
            retiring.retain(|r| r.ends + RETIRED_GRACE > now);
            retiring.push(Retiring {
                id: id.clone(),
                ends: held.ends(),
            });
        }
    }

    /// Every lease the client still holds (current and retiring), taken out: `close` revokes
    /// them.
    pub(super) fn drain(&self) -> Vec<LeaseId> {
        let mut ids: Vec<LeaseId> = lock(&self.retiring).drain(..).map(|r| r.id).collect();
        for role in lock(&self.by_role).drain().map(|(_, role)| role) {
            if let Some(renewer) = lock(&role.renewer).take() {
                renewer.abort();
            }
            if let Some(held) = lock(&role.held).take()
                && let Some(id) = held.lease.lease_id()
            {
                ids.push(id.clone());
            }
        }
        ids
    }
}

impl Role {
    fn current(&self, now: Instant) -> Option<Arc<Held>> {
        lock(&self.held)
            .as_ref()
            .filter(|held| held.servable(now))
            .cloned()
    }
}

impl Inner {
    /// A `db` URI's value from the lease of its role: the held one while it is valid, else
    /// one issued now (once, for all concurrent callers), within the resolve deadline.
    /// Whether the value came from the lease held (`true`) or one issued now.
    pub(super) async fn lease_read(
        self: &Arc<Self>,
        uri: &SecretUri,
        deadline: &Deadline,
    ) -> Result<(SecretValue, bool), Error> {
        let role = self.leases.role(uri)?;
        let (held, was_held) = match role.current(Instant::now()) {
            Some(held) => (held, true),
            None => {
                // In a task of its own: a caller that gives up does not drop a lease the
                // vault issued.
                let task = deadline
                    .handle()
                    .spawn(Arc::clone(self).issue(Arc::clone(&role)));
                match deadline.run(task).await {
                    Some(Ok(Ok(held))) => (held, false),
                    Some(Ok(Err(error))) => {
                        self.leases.forget_if_empty(&role);
                        return Err(error);
                    }
                    Some(Err(join)) => {
                        return Err(Error::Runtime {
                            reason: "the lease task was cancelled",
                            source: Some(Box::new(join)),
                        });
                    }
                    None => return Err(timed_out(uri, deadline.limit())),
                }
            }
        };
        let value = held
            .lease
            .field(uri.key(), uri.mount())
            .map_err(|e| Error::provider(uri.mount(), Arc::new(e)))?;
        Ok((value, was_held))
    }

    /// The role's valid lease, or a new one issued, held and given a renewer. Serialized
    /// per role: callers that waited find the lease the first one issued.
    async fn issue(self: Arc<Self>, role: Arc<Role>) -> Result<Arc<Held>, Error> {
        let _one = Arc::clone(&role.issuing).lock_owned().await;
        if let Some(held) = role.current(Instant::now()) {
            return Ok(held);
        }
        self.issue_now(&role, true).await
    }

    /// Issues a lease for `role` now and makes it the current one: the previous one, if
    /// any, retires, and the role's watchers hear of the new credentials. A reader's issue
    /// starts the role's renewer (`renewer`); the renewer's own rotations keep it. The
    /// caller holds the role's `issuing` lock.
    pub(super) async fn issue_now(
        self: &Arc<Self>,
        role: &Arc<Role>,
        renewer: bool,
    ) -> Result<Arc<Held>, Error> {
        let Some(provider) = self.leases.provider.as_ref() else {
            return Err(Error::provider(
                role.uri.mount(),
                Arc::new(ProviderError::UnsupportedProvider {
                    provider: "db",
                    what: "no vault serves database credentials".to_owned(),
                }),
            ));
        };
        let _in_flight = self.leases.start_issue();
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        let uri = &role.uri;
        let counted = ReadMetrics::start(&self.metrics, uri);
        let audit = self.read_audit(uri);
        let mut lease = None;
        // The vault counts the lease from when it got the request, after this: ends measured
        // from here are never later than the vault's.
        let sent = Instant::now();
        let outcome = provider.issue(uri).await.map(|issued| {
            let value = issued.value().clone();
            lease = Some(issued);
            value
        });
        counted.finish(&outcome);
        if let Some(audit) = audit {
            audit.finish(&outcome);
        }
        drop(outcome.map_err(|e| Error::provider(uri.mount(), Arc::new(e)))?);
        let Some(lease) = lease else {
            return Err(Error::Runtime {
                reason: "the issued lease went missing",
                source: None,
            });
        };
        let held = Arc::new(Held::new(lease, sent));
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            // Closed meanwhile: nobody would revoke it later.
            if let Some(id) = held.lease.lease_id() {
                let _ = provider.revoke(id).await;
            }
            return Err(Error::Closed);
        }
        let replaced = lock(&role.held).replace(Arc::clone(&held));
        self.leases.keep_tracking(role, &held);
        if renewer {
            self.start_renewer(role, &held);
        }
        if let Some(old) = replaced {
            self.leases.retire(&old);
            self.announce_lease(&role.uri, &held.lease);
        }
        Ok(held)
    }

    /// Revokes every lease the client holds (waiting up to 5 s for the vault); for `close`,
    /// before the runtime stops.
    pub(super) fn revoke_leases(&self) {
        let deadline = Instant::now() + REVOKE_WAIT;
        // `closed` is set: issues under way end soon, each installing its lease (then drained
        // here) or revoking it itself.
        self.leases.settle(deadline);
        let ids = self.leases.drain();
        let Some(provider) = self.leases.provider.clone() else {
            return;
        };
        if ids.is_empty() {
            return;
        }
        let Ok(handle) = self.runtime.handle().cloned() else {
            return;
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        handle.spawn(async move {
            // All at once: one slow answer does not use up the others' time.
            let revokes = ids.iter().map(|id| provider.revoke(id)).collect();
            let results = super::join::join_all(revokes).await;
            let mut revoked = 0usize;
            for result in results {
                match result {
                    Ok(()) => revoked += 1,
                    Err(error) => {
                        tracing::warn!(code = error.code(), "a lease could not be revoked");
                    }
                }
            }
            let _ = tx.send(revoked);
        });
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(revoked) => tracing::debug!(revoked, "leases revoked on close"),
            Err(_) => tracing::warn!(
                "the vault did not confirm every lease revocation in {REVOKE_WAIT:?}"
            ),
        }
    }
}

/// The role a `db` URI names: its canonical form without `#key` (`db` URIs carry no query).
pub(super) fn role_key(uri: &SecretUri) -> &str {
    let canonical = uri.as_str();
    canonical
        .split_once('#')
        .map_or(canonical, |(role, _)| role)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
