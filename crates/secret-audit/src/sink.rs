//! The [`AuditSink`] trait and the two sinks that need no transport: [`NoopSink`] and
//! [`MemorySink`].

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::AuditEvent;

/// `within` from now, or about a year from now when `within` is too far to represent.
pub(crate) fn deadline_after(within: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(within)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Where audit events go. Object safe (`Arc<dyn AuditSink>`).
///
/// [`publish`](Self::publish) is called on the request path: it never waits on the network
/// (a queueing sink hands the event to its queue; with the `Block` overflow policy it may wait
/// a bounded time for room, by configuration). [`close`](Self::close) flushes what was
/// accepted, within a deadline, and is idempotent.
pub trait AuditSink: Send + Sync + fmt::Debug {
    /// Accepts one event, or drops and counts it (queue full, sink closed).
    fn publish(&self, event: AuditEvent);

    /// Stops intake and delivers what is queued, giving up after `within`. Later calls
    /// return the first call's report without waiting again. It blocks the calling thread
    /// (for at most about `within`): call it at shutdown, not on a runtime's worker in a hot
    /// path.
    fn close(&self, within: Duration) -> CloseReport;

    /// The counters so far.
    fn stats(&self) -> SinkStats;
}

impl<S: AuditSink + ?Sized> AuditSink for Arc<S> {
    fn publish(&self, event: AuditEvent) {
        (**self).publish(event);
    }

    fn close(&self, within: Duration) -> CloseReport {
        (**self).close(within)
    }

    fn stats(&self) -> SinkStats {
        (**self).stats()
    }
}

/// A sink's counters. After [`close`](AuditSink::close), `published == delivered + dropped +
/// lost`; before, the difference is what is queued or being delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkStats {
    /// Events handed to [`publish`](AuditSink::publish).
    pub published: u64,
    /// Events delivered (accepted by the transport, or stored by a [`MemorySink`]).
    pub delivered: u64,
    /// Events dropped at intake: the queue was full (`audit_dropped_total`), or the sink was
    /// closed.
    pub dropped: u64,
    /// Events accepted but not delivered when `close`'s deadline passed.
    pub lost: u64,
    /// Failed or timed-out delivery attempts (each retried).
    pub failed_attempts: u64,
    /// Events waiting in the queue now.
    pub queued: u64,
    /// Events in the batch being delivered now.
    pub in_flight: u64,
    /// The sink can no longer deliver (its transport panicked): every event is dropped and
    /// counted. Alert on it.
    pub stopped: bool,
}

/// What [`close`](AuditSink::close) achieved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseReport {
    /// Events delivered over the sink's life.
    pub delivered: u64,
    /// Events dropped at intake over the sink's life.
    pub dropped: u64,
    /// Events accepted but not delivered: the deadline passed first. Zero on a clean shutdown.
    pub lost: u64,
    /// Whether the deadline passed before everything was delivered.
    pub timed_out: bool,
}

/// Discards every event: the sink when auditing is disabled. It counts what it is handed
/// (`published`) and nothing else.
#[derive(Debug, Default)]
pub struct NoopSink {
    published: AtomicU64,
}

impl NoopSink {
    /// A sink that discards.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl AuditSink for NoopSink {
    fn publish(&self, _event: AuditEvent) {
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    fn close(&self, _within: Duration) -> CloseReport {
        CloseReport::default()
    }

    fn stats(&self) -> SinkStats {
        SinkStats {
            published: self.published.load(Ordering::Relaxed),
            ..SinkStats::default()
        }
    }
}

/// Keeps every event in memory, for tests: [`events`](Self::events) returns them in
/// publication order and [`wait_for`](Self::wait_for) waits, bounded, until enough arrived.
/// After [`close`](AuditSink::close) it drops (and counts) what it is handed.
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<AuditEvent>>,
    arrived: Condvar,
    closed: AtomicBool,
    dropped: AtomicU64,
}

impl MemorySink {
    /// An empty sink.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<AuditEvent>> {
        // A panic while holding the lock leaves a Vec that is still valid.
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The events so far, in publication order.
    #[must_use]
    pub fn events(&self) -> Vec<AuditEvent> {
        self.lock().clone()
    }

    /// Waits until at least `n` events arrived or `timeout` passed; `true` if they did.
    #[must_use]
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = deadline_after(timeout);
        let mut events = self.lock();
        while events.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            events = self
                .arrived
                .wait_timeout(events, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

impl AuditSink for MemorySink {
    fn publish(&self, event: AuditEvent) {
        if self.closed.load(Ordering::Acquire) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.lock().push(event);
        self.arrived.notify_all();
    }

    fn close(&self, _within: Duration) -> CloseReport {
        self.closed.store(true, Ordering::Release);
        let stats = self.stats();
        CloseReport {
            delivered: stats.delivered,
            dropped: stats.dropped,
            lost: 0,
            timed_out: false,
        }
    }

    fn stats(&self) -> SinkStats {
        let delivered = self.lock().len() as u64;
        let dropped = self.dropped.load(Ordering::Relaxed);
        SinkStats {
            published: delivered + dropped,
            delivered,
            dropped,
            ..SinkStats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventType;

    #[test]
    fn memory_sink_keeps_order_and_waits_bounded() {
        let sink = Arc::new(MemorySink::new());
        assert!(!sink.wait_for(1, Duration::from_millis(10)));
        let writer = {
            let sink = Arc::clone(&sink);
            std::thread::spawn(move || {
                for _ in 0..3 {
                    sink.publish(AuditEvent::new(EventType::Read, "t"));
                }
            })
        };
        assert!(sink.wait_for(3, Duration::from_secs(10)));
        assert!(writer.join().is_ok());
        assert_eq!(sink.events().len(), 3);
        let report = sink.close(Duration::ZERO);
        sink.publish(AuditEvent::new(EventType::Read, "t"));
        assert_eq!((report.delivered, report.lost), (3, 0));
        let stats = sink.stats();
        assert_eq!((stats.published, stats.delivered, stats.dropped), (4, 3, 1));
    }

    #[test]
    fn noop_sink_counts_and_discards() {
        let sink: Arc<dyn AuditSink> = Arc::new(NoopSink::new());
        sink.publish(AuditEvent::new(EventType::CacheHit, "t"));
        assert_eq!(sink.stats().published, 1);
        assert_eq!(sink.close(Duration::ZERO), CloseReport::default());
    }
}
