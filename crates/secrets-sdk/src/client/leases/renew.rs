//! The renewer of one role's lease, a task on the client's runtime for as long as the client
//! holds the role: it renews the lease at about two thirds of each duration granted
//! (jittered ±10 %), and reads new credentials, announcing them to the role's watchers, when
//! the lease cannot go on (unless the client was built with `rotate_leases(false)`: then the
//! renewer stops there and the lease just ends): the vault capped a renewal (the role's `max_ttl`: rotated `overlap`
//! before the end), refused it, or no longer knows the lease (rotated at once). A static
//! role's credentials are read again just after the vault rotates them. A transient failure
//! (the vault down) is retried with backoff until the lease ends.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::{Held, Role, lock};
use crate::client::Inner;

/// First and longest pause after a failed renewal or rotation.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// A static role is read again this long after the vault's rotation time.
const STATIC_REREAD_DELAY: Duration = Duration::from_millis(500);
/// A static role the vault gave no rotation time is read again this often.
const STATIC_REREAD_DEFAULT: Duration = Duration::from_secs(3600);
/// The shortest pause between two steps of a renewer, whatever the vault says: a lease of no
/// duration, or a renewal granting nothing, never makes it spin.
const MIN_STEP: Duration = Duration::from_millis(200);

/// What the renewer does next, and when.
enum Step {
    Renew(Instant),
    Rotate(Instant),
}

/// Where a lease stands for its renewer.
struct Course {
    held: Arc<Held>,
    /// The last renewal (or the issue) and the duration it granted.
    renewed_at: Instant,
    granted: Duration,
    /// The lease cannot be renewed further: the next step is its successor.
    last: bool,
    failures: u32,
    /// After a failure: try again then.
    retry_at: Option<Instant>,
}

impl Course {
    fn new(held: Arc<Held>) -> Self {
        let last = !held.lease.renewable();
        Self {
            renewed_at: held.issued_at,
            granted: held.lease.ttl(),
            held,
            last,
            failures: 0,
            retry_at: None,
        }
    }

    fn step(&self, overlap: Duration) -> Step {
        if let Some(at) = self.retry_at {
            return if self.last {
                Step::Rotate(at)
            } else {
                Step::Renew(at)
            };
        }
        let ends = self.held.ends();
        if self.held.lease.lease_id().is_none() {
            // A static role: the vault rotates its password at the end of the TTL.
            let at = if self.held.lease.ttl().is_zero() {
                self.held.issued_at + STATIC_REREAD_DEFAULT
            } else {
                ends + STATIC_REREAD_DELAY
            };
            return Step::Rotate(at);
        }
        if self.last {
            return Step::Rotate(ends.checked_sub(overlap).unwrap_or(ends));
        }
        let jitter = 0.9 + 0.2 * fastrand::f64();
        Step::Renew(self.renewed_at + self.granted.mul_f64(2.0 / 3.0 * jitter))
    }

    fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
        let backoff = RETRY_FIRST
            .saturating_mul(1 << self.failures.min(6))
            .min(RETRY_MAX);
        let now = Instant::now();
        // Never past the lease's end while it still has time left.
        let left = self.held.ends().saturating_duration_since(now);
        let pause = if left > Duration::ZERO {
            backoff.min(left / 2).max(Duration::from_millis(50))
        } else {
            backoff
        };
        self.retry_at = Some(now + pause);
    }
}

impl Inner {
    /// Starts the renewer of `role`'s lease `held` (replacing any earlier one).
    pub(super) fn start_renewer(self: &Arc<Self>, role: &Arc<Role>, held: &Arc<Held>) {
        let Ok(handle) = self.io_handle() else {
            return;
        };
        let task = handle.spawn(run(
            Arc::downgrade(self),
            Arc::downgrade(role),
            Arc::clone(held),
        ));
        if let Some(old) = lock(&role.renewer).replace(task.abort_handle()) {
            old.abort();
        }
    }
}

async fn run(inner: Weak<Inner>, role: Weak<Role>, held: Arc<Held>) {
    let mut course = Course::new(held);
    loop {
        let Some(overlap) = inner
            .upgrade()
            .map(|i| i.leases.overlap_for(course.held.lease.ttl()))
        else {
            return;
        };
        let step = course.step(overlap);
        let at = match step {
            Step::Renew(at) | Step::Rotate(at) => at,
        };
        let at = at.max(Instant::now() + MIN_STEP);
        tokio::time::sleep_until(at.into()).await;
        let (Some(inner), Some(role)) = (inner.upgrade(), role.upgrade()) else {
            return;
        };
        if inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        course.retry_at = None;
        match step {
            Step::Renew(_) => renew(&inner, &mut course).await,
            Step::Rotate(_) if !inner.leases.rotate && course.held.lease.lease_id().is_some() => {
                // Not replaced (`rotate_leases(false)`): it lasts until its end, and the
                // next read after that issues a new one.
                tracing::debug!("the lease cannot be renewed further; it is not replaced");
                return;
            }
            Step::Rotate(_) => {
                if !rotate(&inner, &role, &mut course).await {
                    return;
                }
            }
        }
    }
}

/// One renewal of the course's lease.
async fn renew(inner: &Arc<Inner>, course: &mut Course) {
    let (Some(provider), Some(id)) = (inner.leases.provider.as_ref(), course.held.lease.lease_id())
    else {
        course.last = true;
        return;
    };
    let increment = course.held.lease.ttl();
    // Measured before the request: the vault's new end is never earlier than this plus the
    // duration it grants.
    let sent = Instant::now();
    match provider.renew(id, increment).await {
        Ok(renewal) => {
            *lock(&course.held.ends) = sent + renewal.ttl.min(crate::client::MAX_CACHE_SPAN);
            course.renewed_at = sent;
            course.granted = renewal.ttl;
            course.failures = 0;
            if renewal.capped {
                tracing::debug!(
                    ttl_s = renewal.ttl.as_secs(),
                    "the lease reached its max TTL; its successor is read before it ends"
                );
                course.last = true;
            }
        }
        Err(error) if error.is_transient() => {
            tracing::debug!(code = error.code(), "lease renewal failed; retrying");
            course.failed();
        }
        Err(error) => {
            // Refused, or the vault lost the lease (a restart): new credentials now.
            tracing::debug!(code = error.code(), "lease cannot be renewed; rotating");
            course.last = true;
            course.retry_at = Some(Instant::now());
        }
    }
}

/// Reads the role's next credentials and announces them; on failure, tries again later while
/// the lease lasts. Whether the renewer goes on: once the lease ended and its successor
/// cannot be read, the role is left empty (the next read issues anew) and the renewer stops.
async fn rotate(inner: &Arc<Inner>, role: &Arc<Role>, course: &mut Course) -> bool {
    let issuing = Arc::clone(&role.issuing);
    let _one = issuing.lock().await;
    // A reader may have issued a fresh lease meanwhile (the old one had ended): follow it.
    let current = lock(&role.held).clone();
    if let Some(current) = current
        && !Arc::ptr_eq(&current, &course.held)
    {
        *course = Course::new(current);
        return true;
    }
    match inner.issue_now(role, false).await {
        // Announced to the role's watchers by `issue_now`.
        Ok(next) => {
            *course = Course::new(next);
            true
        }
        Err(error) if Instant::now() >= course.held.ends() => {
            tracing::debug!(
                code = error.code(),
                "the lease ended and no new credentials could be read; the next read tries"
            );
            let mut held = lock(&role.held);
            if held.as_ref().is_some_and(|h| Arc::ptr_eq(h, &course.held)) {
                *held = None;
                drop(held);
                // Ended by our clock; `close` still revokes it should the vault disagree.
                inner.leases.retire(&course.held);
            }
            false
        }
        Err(error) => {
            tracing::debug!(
                code = error.code(),
                "reading new credentials failed; retrying"
            );
            course.failed();
            true
        }
    }
}
