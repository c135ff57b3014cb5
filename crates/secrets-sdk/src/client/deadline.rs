//! What bounds one resolve in time: its deadline, the tasks it starts on the client's runtime
//! (aborted when nobody awaits them any more) and the claim on an expired entry's refresh
//! (released however the refresh ends, so the stale value stays servable).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::task::{JoinError, JoinHandle};

use crate::secret::Entry;

/// Deadlines longer than this are treated as this long (about a year): `Instant` arithmetic
/// with `Duration::MAX` would overflow, and nothing waits that long anyway.
const MAX_DEADLINE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// When a resolve must be done by, with the runtime whose timer enforces it.
#[derive(Clone)]
pub(super) struct Deadline {
    handle: Handle,
    limit: Duration,
    #[cfg_attr(not(any(feature = "openbao", feature = "hashicorp")), allow(dead_code))]
    at: Option<Instant>,
}

impl Deadline {
    /// `limit` after `started`, timed on `handle`'s runtime (the client's own, which has a
    /// timer whatever executor polls the resolve).
    pub(super) fn new(handle: Handle, started: Instant, limit: Duration) -> Self {
        let limit = limit.min(MAX_DEADLINE);
        Self {
            handle,
            limit,
            at: started.checked_add(limit),
        }
    }

    /// The configured limit, for the `TIMEOUT` error.
    pub(super) fn limit(&self) -> Duration {
        self.limit
    }

    /// What is left of it (all of it for an unbounded deadline).
    pub(super) fn remaining(&self) -> Duration {
        self.at.map_or(self.limit, |at| {
            at.saturating_duration_since(Instant::now())
        })
    }

    /// The runtime the resolve's tasks run on.
    pub(super) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `future` until it finishes or the deadline passes (`None`).
    ///
    /// The timer is created inside the client's runtime, so it also fires when the resolve
    /// is polled by another executor (or a runtime without a timer).
    pub(super) async fn run<F: Future>(&self, future: F) -> Option<F::Output> {
        let Some(at) = self.at else {
            return Some(future.await);
        };
        let bounded = {
            let _entered = self.handle.enter();
            tokio::time::timeout_at(tokio::time::Instant::from_std(at), future)
        };
        bounded.await.ok()
    }
}

/// A task on the client's runtime that is aborted when its result is no longer awaited (the
/// resolve hit its deadline or was cancelled), so no retries or logins go on in the
/// background for nobody. A blocking task that already started runs to its end.
pub(super) struct AbortOnDrop<T>(pub(super) JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The one refresh of an expired entry. Dropped on every path, including an aborted task, so
/// the entry (still in the cache) is served stale again and a later caller can claim the next
/// refresh.
pub(super) struct RefreshClaim(Arc<Entry>);

impl RefreshClaim {
    /// Claims the refresh of `entry`, unless another one holds it.
    pub(super) fn try_claim(entry: &Arc<Entry>) -> Option<Self> {
        entry
            .refreshing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .ok()
            .map(|_| Self(Arc::clone(entry)))
    }

    /// The entry being refreshed.
    pub(super) fn entry(&self) -> &Arc<Entry> {
        &self.0
    }
}

impl Drop for RefreshClaim {
    fn drop(&mut self) {
        self.0.refreshing.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_exclusive_and_released_on_drop() -> Result<(), secret_uri::UriError> {
        let now = Instant::now();
        let entry = Arc::new(Entry::new(
            "file://demo/x".parse()?,
            secret_providers::SecretValue::from_text("v"),
            now,
            now,
            now,
        ));
        let first = RefreshClaim::try_claim(&entry);
        assert!(first.is_some());
        assert!(RefreshClaim::try_claim(&entry).is_none());
        drop(first);
        assert!(!entry.refreshing.load(Ordering::Acquire));
        assert!(RefreshClaim::try_claim(&entry).is_some());
        Ok(())
    }

    #[test]
    fn huge_deadlines_do_not_overflow() -> Result<(), std::io::Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let deadline = Deadline::new(runtime.handle().clone(), Instant::now(), Duration::MAX);
        assert_eq!(deadline.limit(), MAX_DEADLINE);
        assert_eq!(runtime.block_on(deadline.run(async { 7 })), Some(7));
        Ok(())
    }

    #[test]
    fn the_timer_fires_when_another_executor_polls() -> Result<(), std::io::Error> {
        let client_runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        // A caller's runtime without a timer: the deadline still fires.
        let caller = tokio::runtime::Builder::new_current_thread().build()?;
        let deadline = Deadline::new(
            client_runtime.handle().clone(),
            Instant::now(),
            Duration::from_millis(50),
        );
        let outcome = caller.block_on(deadline.run(std::future::pending::<()>()));
        assert_eq!(outcome, None);
        Ok(())
    }
}
