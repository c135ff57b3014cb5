//! The queue's telemetry: `secrets.audit.dropped` in step with the sink's counters, by reason
//! (`queue_full`, `stopped`, `transport_failed`), and `secrets.audit.queue_depth` from the
//! drainer (the `audit_publish` span is in `publish_span.rs`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use secret_audit::{
    AuditError, AuditEvent, AuditSink, Auditor, EventType, QueueConfig, QueueSink, RetryConfig,
    SinkStats, Transport,
};
use secret_telemetry::names::{DROP_REASONS, metric};
use secret_telemetry::testing::{MetricsCapture, Points};
use tokio::sync::Semaphore;

const BOUND: Duration = Duration::from_secs(20);

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn event(n: usize) -> AuditEvent {
    Auditor::disabled()
        .event(EventType::Read, "acme", Some("alice"), None)
        .with_correlation_id(n.to_string())
}

/// Counts attempts; waits (bounded) for a number of them.
#[derive(Clone, Default)]
struct Attempts(Arc<(Mutex<usize>, Condvar)>);

impl Attempts {
    fn add(&self) {
        let (count, changed) = &*self.0;
        *count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        changed.notify_all();
    }

    fn wait(&self, n: usize) -> bool {
        let (count, changed) = &*self.0;
        let deadline = Instant::now() + BOUND;
        let mut seen = count.lock().unwrap_or_else(PoisonError::into_inner);
        while *seen < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            seen = changed
                .wait_timeout(seen, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// Delivers once a permit is released.
struct Gated {
    attempts: Attempts,
    gate: Arc<Semaphore>,
}

impl Transport for Gated {
    fn deliver<'a>(
        &'a mut self,
        _batch: &'a [AuditEvent],
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>> {
        Box::pin(async move {
            self.attempts.add();
            let permit = self
                .gate
                .acquire()
                .await
                .map_err(|_| AuditError::delivery("gate closed", None))?;
            permit.forget();
            Ok(())
        })
    }
}

/// Fails the first `failures` attempts, then delivers.
struct Flaky {
    attempts: Attempts,
    failures: usize,
}

impl Transport for Flaky {
    fn deliver<'a>(
        &'a mut self,
        _batch: &'a [AuditEvent],
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>> {
        Box::pin(async move {
            self.attempts.add();
            if self.failures > 0 {
                self.failures -= 1;
                return Err(AuditError::delivery("broker unreachable", None));
            }
            Ok(())
        })
    }
}

/// Panics in `deliver`.
struct Panicking;

impl Transport for Panicking {
    fn deliver<'a>(
        &'a mut self,
        _batch: &'a [AuditEvent],
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>> {
        Box::pin(async { panic!("transport bug") })
    }
}

fn fast_retry() -> RetryConfig {
    RetryConfig::default().with_delays(Duration::from_millis(1), Duration::from_millis(5))
}

fn dropped(points: &Points, reason: &str) -> f64 {
    points.sum_where(metric::AUDIT_DROPPED, &[("reason", reason)])
}

/// The metric's reasons add up to the sink's counters: `queue_full` + `stopped` are
/// `dropped`, `transport_failed` is `lost`; no other reason appears.
#[allow(clippy::cast_precision_loss)]
fn assert_in_step(points: &Points, stats: SinkStats) {
    for point in points.named(metric::AUDIT_DROPPED) {
        assert!(
            DROP_REASONS.contains(&point.label("reason").unwrap_or_default()),
            "{point:?}"
        );
    }
    assert_eq!(
        dropped(points, "queue_full") + dropped(points, "stopped"),
        stats.dropped as f64,
        "{stats:?} {points:?}"
    );
    assert_eq!(
        dropped(points, "transport_failed"),
        stats.lost as f64,
        "{stats:?}"
    );
}

fn depth(points: &Points) -> Option<f64> {
    points
        .named(metric::AUDIT_QUEUE_DEPTH)
        .first()
        .map(|p| p.value)
}

#[test]
fn a_full_queue_and_a_closed_one_count_their_drops_and_the_drainer_the_depth() -> TestResult {
    let capture = MetricsCapture::new();
    let (attempts, gate) = (Attempts::default(), Arc::new(Semaphore::new(0)));
    let transport = Gated {
        attempts: attempts.clone(),
        gate: Arc::clone(&gate),
    };
    let config = QueueConfig::default()
        .with_capacity(8)
        .with_batch_max(4)
        .with_linger(Duration::ZERO);
    let sink = QueueSink::with_metrics(transport, config, capture.metrics())?;

    // One event in flight holds the drainer; eight fill the queue, five more are dropped.
    sink.publish(event(0));
    assert!(attempts.wait(1));
    for n in 1..=13 {
        sink.publish(event(n));
    }
    let points = capture.points()?;
    assert_eq!(dropped(&points, "queue_full"), 5.0);
    assert_eq!(
        depth(&points),
        Some(0.0),
        "the first batch took the only event"
    );
    assert_in_step(&points, sink.stats());

    // The first batch delivered, the drainer takes four of the eight: four wait.
    gate.add_permits(1);
    assert!(attempts.wait(2));
    assert_eq!(depth(&capture.points()?), Some(4.0));

    gate.add_permits(1_000);
    let report = sink.close(BOUND);
    assert_eq!((report.delivered, report.dropped, report.lost), (9, 5, 0));
    sink.publish(event(99));
    let points = capture.points()?;
    assert_eq!(dropped(&points, "stopped"), 1.0);
    assert_eq!(depth(&points), Some(0.0));
    assert_in_step(&points, sink.stats());
    Ok(())
}

#[test]
fn a_failing_transport_counts_what_close_gives_up_on() -> TestResult {
    let capture = MetricsCapture::new();
    let attempts = Attempts::default();
    let transport = Flaky {
        attempts: attempts.clone(),
        failures: usize::MAX,
    };
    let config = QueueConfig::default()
        .with_batch_max(2)
        .with_linger(Duration::ZERO)
        .with_retry(fast_retry());
    let sink = QueueSink::with_metrics(transport, config, capture.metrics())?;
    for n in 0..5 {
        sink.publish(event(n));
    }
    assert!(attempts.wait(3));
    // Recorded after a failed attempt: the batch of two is out, the rest wait.
    let waiting = depth(&capture.points()?);
    assert!(matches!(waiting, Some(d) if d >= 1.0), "{waiting:?}");

    let report = sink.close(Duration::from_millis(100));
    assert_eq!((report.delivered, report.lost), (0, 5));
    let points = capture.points()?;
    assert_eq!(dropped(&points, "transport_failed"), 5.0);
    assert_in_step(&points, sink.stats());
    Ok(())
}

#[test]
fn a_dead_drainer_counts_its_drops_as_stopped_and_its_batch_as_lost() -> TestResult {
    let capture = MetricsCapture::new();
    let sink = QueueSink::with_metrics(Panicking, QueueConfig::default(), capture.metrics())?;
    sink.publish(event(0));
    let deadline = Instant::now() + BOUND;
    while !sink.stats().stopped && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(sink.stats().stopped);
    for n in 1..=3 {
        sink.publish(event(n));
    }
    let report = sink.close(BOUND);
    assert_eq!((report.dropped, report.lost), (3, 1));
    let points = capture.points()?;
    assert_eq!(dropped(&points, "stopped"), 3.0);
    assert_eq!(dropped(&points, "transport_failed"), 1.0);
    assert_in_step(&points, sink.stats());
    Ok(())
}
