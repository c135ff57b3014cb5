//! The queue's contracts: an exact drop count under overflow, the Block policy, nothing lost
//! on a clean shutdown, retries that keep order, a transport that never answers bounded by
//! `attempt_timeout` and close's deadline, and many publishing threads.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use secret_audit::{
    AuditConfig, AuditError, AuditEvent, AuditKey, AuditSink, Auditor, EventType, Overflow,
    QueueConfig, QueueSink, RetryConfig, Transport,
};
use secret_uri::SecretUri;
use tokio::sync::Semaphore;

/// Every bounded wait of these tests: generous, so a slow machine never fails them; a test
/// that hits it has hung.
const BOUND: Duration = Duration::from_secs(20);

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// What a transport saw: every attempt's batch size and every delivered event, in order.
#[derive(Clone, Default)]
struct Record(Arc<(Mutex<Seen>, Condvar)>);

#[derive(Default)]
struct Seen {
    attempts: Vec<usize>,
    delivered: Vec<AuditEvent>,
}

impl Record {
    fn update(&self, f: impl FnOnce(&mut Seen)) {
        let (lock, changed) = &*self.0;
        f(&mut lock.lock().unwrap_or_else(PoisonError::into_inner));
        changed.notify_all();
    }

    fn read<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.0.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Waits (bounded) until `done` holds; `true` if it did.
    fn wait(&self, done: impl Fn(&Seen) -> bool) -> bool {
        let (lock, changed) = &*self.0;
        let deadline = Instant::now() + BOUND;
        let mut seen = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while !done(&seen) {
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

/// Delivers once a permit is released: holds the drainer in its first attempt.
struct Gated {
    record: Record,
    gate: Arc<Semaphore>,
}

impl Transport for Gated {
    fn deliver<'a>(
        &'a mut self,
        batch: &'a [AuditEvent],
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>> {
        Box::pin(async move {
            self.record.update(|seen| seen.attempts.push(batch.len()));
            let permit = self
                .gate
                .acquire()
                .await
                .map_err(|_| AuditError::delivery("gate closed", None))?;
            permit.forget();
            self.record
                .update(|seen| seen.delivered.extend_from_slice(batch));
            Ok(())
        })
    }
}

/// Fails the first `failures` attempts, then delivers.
struct Flaky {
    record: Record,
    failures: usize,
}

impl Transport for Flaky {
    fn deliver<'a>(
        &'a mut self,
        batch: &'a [AuditEvent],
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>> {
        Box::pin(async move {
            self.record.update(|seen| seen.attempts.push(batch.len()));
            if self.failures > 0 {
                self.failures -= 1;
                return Err(AuditError::delivery("broker unreachable", None));
            }
            self.record
                .update(|seen| seen.delivered.extend_from_slice(batch));
            Ok(())
        })
    }
}

/// Accepts and never answers.
struct Silent {
    attempts: Arc<AtomicUsize>,
}

impl Transport for Silent {
    fn deliver<'a>(
        &'a mut self,
        _batch: &'a [AuditEvent],
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        Box::pin(std::future::pending())
    }
}

fn auditor() -> Result<Auditor, AuditError> {
    let key = AuditKey::new(b"tenant-salt-0001-for-acme-corp-x", None)?;
    Ok(Auditor::new(
        key,
        Arc::new(secret_audit::NoopSink::new()),
        &AuditConfig::default(),
    ))
}

/// Event `n`, numbered in its correlation id, about one of three secrets.
fn event(auditor: &Auditor, uris: &[SecretUri], n: usize) -> AuditEvent {
    auditor
        .event(
            EventType::Read,
            "acme",
            Some("alice"),
            Some(&uris[n % uris.len()]),
        )
        .with_correlation_id(n.to_string())
}

fn uris() -> Result<Vec<SecretUri>, secret_uri::UriError> {
    [
        "openbao+kv2://secret/a#k",
        "openbao+kv2://secret/b",
        "file://infra/c.json#p",
    ]
    .into_iter()
    .map(SecretUri::parse)
    .collect()
}

fn fast_retry() -> RetryConfig {
    RetryConfig::default().with_delays(Duration::from_millis(1), Duration::from_millis(5))
}

/// Runs `f` on a thread and fails the test instead of hanging if it does not return in time.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(BOUND * 2)
        .map_err(|_| "hung past its bound".to_owned())
}

#[test]
fn overflow_drops_exactly_what_does_not_fit() -> TestResult {
    const CAPACITY: usize = 8;
    const MORE: usize = 30;
    let (auditor, uris) = (auditor()?, uris()?);
    let (record, gate) = (Record::default(), Arc::new(Semaphore::new(0)));
    let transport = Gated {
        record: record.clone(),
        gate: Arc::clone(&gate),
    };
    let config = QueueConfig::default()
        .with_capacity(CAPACITY)
        .with_batch_max(4)
        .with_warn_interval(Duration::ZERO);
    let sink = QueueSink::new(transport, config)?;

    // One event goes in flight and holds the drainer at the gate.
    sink.publish(event(&auditor, &uris, 0));
    assert!(record.wait(|seen| seen.attempts.len() == 1));
    let in_flight = record.read(|seen| seen.attempts[0]);
    assert_eq!(in_flight, 1);
    for n in 1..=MORE {
        sink.publish(event(&auditor, &uris, n));
    }
    let published = 1 + MORE;
    let stats = sink.stats();
    assert_eq!(stats.published, published as u64);
    assert_eq!(stats.dropped, (published - CAPACITY - in_flight) as u64);
    assert_eq!((stats.queued, stats.in_flight), (CAPACITY as u64, 1));

    gate.add_permits(1_000);
    let report = sink.close(BOUND);
    assert_eq!(report.delivered, (CAPACITY + in_flight) as u64);
    assert_eq!((report.lost, report.timed_out), (0, false));
    assert_eq!(report.dropped, (published - CAPACITY - in_flight) as u64);
    // The first CAPACITY + 1 events were kept, in order.
    let ids: Vec<String> = record.read(|seen| {
        seen.delivered
            .iter()
            .filter_map(|e| e.correlation_id().map(str::to_owned))
            .collect()
    });
    let expected: Vec<String> = (0..=CAPACITY).map(|n| n.to_string()).collect();
    assert_eq!(ids, expected);
    Ok(())
}

#[test]
fn block_waits_for_room_then_delivers() -> TestResult {
    let (auditor, uris) = (Arc::new(auditor()?), uris()?);
    let (record, gate) = (Record::default(), Arc::new(Semaphore::new(0)));
    let transport = Gated {
        record: record.clone(),
        gate: Arc::clone(&gate),
    };
    let config = QueueConfig::default()
        .with_capacity(2)
        .with_overflow(Overflow::Block(BOUND));
    let sink = Arc::new(QueueSink::new(transport, config)?);
    sink.publish(event(&auditor, &uris, 0));
    assert!(record.wait(|seen| seen.attempts.len() == 1));
    sink.publish(event(&auditor, &uris, 1));
    sink.publish(event(&auditor, &uris, 2));

    // The queue is full: the next publisher waits.
    let (done_tx, done_rx) = mpsc::channel();
    let blocked = {
        let (sink, auditor, uris) = (Arc::clone(&sink), Arc::clone(&auditor), uris.clone());
        std::thread::spawn(move || {
            sink.publish(event(&auditor, &uris, 3));
            let _ = done_tx.send(());
        })
    };
    assert!(
        done_rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "a Block publisher returned while the queue was full"
    );
    gate.add_permits(1_000);
    assert!(
        done_rx.recv_timeout(BOUND).is_ok(),
        "the Block publisher never got room"
    );
    assert!(blocked.join().is_ok());
    let report = sink.close(BOUND);
    assert_eq!((report.delivered, report.dropped, report.lost), (4, 0, 0));
    Ok(())
}

#[test]
fn block_gives_up_after_its_wait_and_counts_the_drop() -> TestResult {
    let (auditor, uris) = (auditor()?, uris()?);
    let (record, gate) = (Record::default(), Arc::new(Semaphore::new(0)));
    let transport = Gated {
        record: record.clone(),
        gate: Arc::clone(&gate),
    };
    let config = QueueConfig::default()
        .with_capacity(1)
        .with_overflow(Overflow::Block(Duration::from_millis(20)));
    let sink = QueueSink::new(transport, config)?;
    sink.publish(event(&auditor, &uris, 0));
    assert!(record.wait(|seen| seen.attempts.len() == 1));
    sink.publish(event(&auditor, &uris, 1));
    sink.publish(event(&auditor, &uris, 2));
    assert_eq!(sink.stats().dropped, 1);
    gate.add_permits(10);
    let report = sink.close(BOUND);
    assert_eq!((report.delivered, report.dropped, report.lost), (2, 1, 0));
    Ok(())
}

#[test]
fn close_flushes_everything_and_stops_intake() -> TestResult {
    const EVENTS: usize = 5_000;
    let (auditor, uris) = (auditor()?, uris()?);
    let record = Record::default();
    let transport = Flaky {
        record: record.clone(),
        failures: 0,
    };
    let sink = QueueSink::new(transport, QueueConfig::default().with_batch_max(64))?;
    for n in 0..EVENTS {
        sink.publish(event(&auditor, &uris, n));
    }
    let report = sink.close(BOUND);
    assert_eq!(report.delivered, EVENTS as u64);
    assert_eq!(
        (report.dropped, report.lost, report.timed_out),
        (0, 0, false)
    );
    assert_eq!(record.read(|seen| seen.delivered.len()), EVENTS);
    assert!(record.read(|seen| seen.attempts.iter().all(|&n| n <= 64)));

    // Closed: intake stops, and a second close reports the same without waiting.
    sink.publish(event(&auditor, &uris, EVENTS));
    assert_eq!(sink.stats().dropped, 1);
    let again = sink.close(BOUND);
    assert_eq!((again.delivered, again.lost), (report.delivered, 0));
    Ok(())
}

#[test]
fn a_failing_transport_that_recovers_gets_every_event_in_order() -> TestResult {
    const EVENTS: usize = 200;
    let (auditor, uris) = (auditor()?, uris()?);
    let record = Record::default();
    let transport = Flaky {
        record: record.clone(),
        failures: 5,
    };
    let config = QueueConfig::default()
        .with_batch_max(16)
        .with_retry(fast_retry());
    let sink = QueueSink::new(transport, config)?;
    let published: Vec<AuditEvent> = (0..EVENTS).map(|n| event(&auditor, &uris, n)).collect();
    for event in &published {
        sink.publish(event.clone());
    }
    assert!(record.wait(|seen| seen.delivered.len() == EVENTS));
    let report = sink.close(BOUND);
    assert_eq!((report.delivered, report.lost), (EVENTS as u64, 0));
    assert_eq!(sink.stats().failed_attempts, 5);
    let delivered = record.read(|seen| seen.delivered.clone());
    // Every event exactly once, in publication order (so in order per resource_ref).
    assert_eq!(delivered, published);
    for uri in &uris {
        let reference = AuditKey::new(b"tenant-salt-0001-for-acme-corp-x", None)?.resource_ref(uri);
        let of = |events: &[AuditEvent]| -> Vec<String> {
            events
                .iter()
                .filter(|e| e.resource_ref() == Some(&reference))
                .filter_map(|e| e.correlation_id().map(str::to_owned))
                .collect()
        };
        assert_eq!(of(&delivered), of(&published));
    }
    Ok(())
}

#[test]
fn a_transport_that_never_answers_is_bounded() -> TestResult {
    let (auditor, uris) = (auditor()?, uris()?);
    let attempts = Arc::new(AtomicUsize::new(0));
    let transport = Silent {
        attempts: Arc::clone(&attempts),
    };
    let config = QueueConfig::default()
        .with_attempt_timeout(Duration::from_millis(50))
        .with_retry(fast_retry());
    let sink = QueueSink::new(transport, config)?;
    for n in 0..10 {
        sink.publish(event(&auditor, &uris, n));
    }
    // Attempts time out and are retried: the drainer is not stuck in the first one.
    let deadline = Instant::now() + BOUND;
    while attempts.load(Ordering::Relaxed) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(attempts.load(Ordering::Relaxed) >= 3);
    assert_eq!(sink.stats().delivered, 0);

    let report = bounded(move || {
        let report = sink.close(Duration::from_millis(300));
        (report, sink.stats())
    })?;
    let (report, stats) = report;
    assert_eq!(
        (report.delivered, report.lost, report.timed_out),
        (0, 10, true)
    );
    assert_eq!(
        stats.published,
        stats.delivered + stats.dropped + stats.lost
    );
    assert!(stats.failed_attempts >= 3);
    Ok(())
}

#[test]
fn dropping_without_close_flushes_best_effort() -> TestResult {
    let (auditor, uris) = (auditor()?, uris()?);
    let record = Record::default();
    let transport = Flaky {
        record: record.clone(),
        failures: 0,
    };
    let sink = QueueSink::new(transport, QueueConfig::default().with_drop_flush(BOUND))?;
    for n in 0..100 {
        sink.publish(event(&auditor, &uris, n));
    }
    bounded(move || drop(sink))?;
    assert_eq!(record.read(|seen| seen.delivered.len()), 100);

    // A silent transport: dropping gives up after drop_flush, it does not hang.
    let transport = Silent {
        attempts: Arc::new(AtomicUsize::new(0)),
    };
    let config = QueueConfig::default().with_drop_flush(Duration::from_millis(100));
    let sink = QueueSink::new(transport, config)?;
    sink.publish(event(&auditor, &uris, 0));
    bounded(move || drop(sink))?;
    Ok(())
}

#[test]
fn many_threads_publish_and_the_counts_add_up() -> TestResult {
    const THREADS: usize = 8;
    const EACH: usize = 2_000;
    let (auditor, uris) = (Arc::new(auditor()?), Arc::new(uris()?));
    let record = Record::default();
    let transport = Flaky {
        record: record.clone(),
        failures: 2,
    };
    let config = QueueConfig::default()
        .with_capacity(256)
        .with_batch_max(32)
        .with_retry(fast_retry());
    let sink = Arc::new(QueueSink::new(transport, config)?);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (sink, auditor, uris) =
                (Arc::clone(&sink), Arc::clone(&auditor), Arc::clone(&uris));
            std::thread::spawn(move || {
                for n in 0..EACH {
                    sink.publish(event(&auditor, &uris, t * EACH + n));
                }
            })
        })
        .collect();
    for thread in threads {
        assert!(thread.join().is_ok());
    }
    let report = sink.close(BOUND);
    let stats = sink.stats();
    assert_eq!(stats.published, (THREADS * EACH) as u64);
    assert_eq!(report.lost, 0);
    assert_eq!(stats.published, report.delivered + report.dropped);
    let delivered = record.read(|seen| seen.delivered.clone());
    assert_eq!(delivered.len() as u64, report.delivered);
    let mut ids: Vec<_> = delivered.iter().map(AuditEvent::id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), delivered.len(), "an event was delivered twice");
    // Each thread's events arrive in the order it published them.
    for t in 0..THREADS {
        let numbers: Vec<usize> = delivered
            .iter()
            .filter_map(|e| e.correlation_id()?.parse().ok())
            .filter(|n| n / EACH == t)
            .collect();
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "thread {t} out of order"
        );
    }
    Ok(())
}

/// Blocks its thread outright inside `deliver` (a badly written transport).
struct Stuck;

impl Transport for Stuck {
    fn deliver<'a>(
        &'a mut self,
        _batch: &'a [AuditEvent],
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>> {
        Box::pin(async {
            std::thread::sleep(Duration::from_secs(5));
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

#[test]
fn a_transport_that_blocks_its_thread_does_not_hang_close() -> TestResult {
    let (auditor, uris) = (auditor()?, uris()?);
    let sink = QueueSink::new(Stuck, QueueConfig::default())?;
    for n in 0..5 {
        sink.publish(event(&auditor, &uris, n));
    }
    let (report, stats) = bounded(move || {
        let report = sink.close(Duration::from_millis(100));
        let stats = sink.stats();
        // Dropping the closed sink does not wait again.
        drop(sink);
        (report, stats)
    })?;
    assert_eq!(
        (report.delivered, report.lost, report.timed_out),
        (0, 5, true)
    );
    assert_eq!(
        stats.published,
        stats.delivered + stats.dropped + stats.lost
    );
    Ok(())
}

#[test]
fn a_transport_that_panics_loses_only_what_it_held() -> TestResult {
    let (auditor, uris) = (auditor()?, uris()?);
    let sink = QueueSink::new(Panicking, QueueConfig::default())?;
    for n in 0..5 {
        sink.publish(event(&auditor, &uris, n));
    }
    let report = bounded(move || sink.close(BOUND))?;
    assert_eq!((report.delivered, report.dropped, report.lost), (0, 0, 5));
    Ok(())
}

#[test]
fn out_of_range_settings_are_brought_into_range() -> TestResult {
    let (auditor, uris) = (auditor()?, uris()?);
    let record = Record::default();
    let transport = Flaky {
        record: record.clone(),
        failures: 1,
    };
    let mut config = QueueConfig::default();
    config.batch_max = 0;
    config.capacity = 0;
    config.attempt_timeout = Duration::ZERO;
    config.retry.factor = f32::NAN;
    config.retry.min_delay = Duration::MAX;
    config.retry.max_delay = Duration::MAX;
    let sink = QueueSink::new(transport, config)?;
    assert_eq!((sink.config().batch_max, sink.config().capacity), (1, 1));
    sink.publish(event(&auditor, &uris, 0));
    // A huge deadline is no panic; the batch is retried once (after the delay is cut short
    // by close) and delivered.
    let report = bounded(move || sink.close(Duration::MAX))?;
    assert_eq!((report.delivered, report.lost), (1, 0));
    Ok(())
}

/// Events published close together go out in few batches: the drainer lingers after its
/// first wake-up instead of waking (and delivering) once per event; close does not wait for
/// the linger.
#[test]
fn a_burst_is_delivered_in_few_batches() -> TestResult {
    const EVENTS: usize = 200;
    let (auditor, uris) = (auditor()?, uris()?);
    let record = Record::default();
    let transport = Flaky {
        record: record.clone(),
        failures: 0,
    };
    let config = QueueConfig::default().with_linger(Duration::from_millis(300));
    let sink = QueueSink::new(transport, config)?;
    for n in 0..EVENTS {
        sink.publish(event(&auditor, &uris, n));
    }
    assert!(record.wait(|seen| seen.delivered.len() == EVENTS));
    let batches = record.read(|seen| seen.attempts.len());
    // A 300 ms linger spans the whole burst; a loaded machine may split it once or twice.
    assert!(batches <= 5, "{batches} batches for {EVENTS} events");

    assert_eq!(sink.close(BOUND).delivered, EVENTS as u64);

    // A sink lingering 10 s: close delivers at once instead of waiting the linger out.
    let record = Record::default();
    let transport = Flaky {
        record: record.clone(),
        failures: 0,
    };
    let config = QueueConfig::default().with_linger(Duration::from_secs(10));
    let sink = QueueSink::new(transport, config)?;
    sink.publish(event(&auditor, &uris, 0));
    assert_eq!(
        record.read(|seen| seen.attempts.len()),
        0,
        "still lingering"
    );
    let started = Instant::now();
    let report = sink.close(BOUND);
    assert_eq!((report.delivered, report.lost), (1, 0));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "close waited out the linger: {:?}",
        started.elapsed()
    );
    Ok(())
}

/// After the transport panicked, nothing drains the queue: publishers never wait for room
/// that will not come (even with `Block`), every event is dropped and counted, and the stats
/// say the sink stopped.
#[test]
fn a_dead_drainer_never_stalls_publishers() -> TestResult {
    let (auditor, uris) = (auditor()?, uris()?);
    let config = QueueConfig::default()
        .with_capacity(2)
        .with_overflow(Overflow::Block(Duration::from_secs(5)));
    let sink = QueueSink::new(Panicking, config)?;
    sink.publish(event(&auditor, &uris, 0));
    let deadline = Instant::now() + BOUND;
    while !sink.stats().stopped && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(sink.stats().stopped, "the drainer's death is visible");
    let started = Instant::now();
    for n in 1..=6 {
        sink.publish(event(&auditor, &uris, n));
    }
    // Six Block waits of 5 s would take 30 s; dropping at once takes none.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let stats = sink.stats();
    assert_eq!((stats.published, stats.dropped), (7, 6));
    Ok(())
}
