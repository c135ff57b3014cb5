//! [`QueueSink`]: a bounded queue drained in batches by a background thread into a
//! [`Transport`], with retries, so that publishing never waits on the network.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use secret_telemetry::{Metrics, names};
use tokio::sync::Notify;
use tracing::Instrument as _;
use tracing::field::Empty;

mod config;

use config::MAX_LINGER;
pub use config::{Overflow, QueueConfig, RetryConfig};

use crate::sink::deadline_after;
use crate::{AuditError, AuditEvent, AuditSink, CloseReport, SinkStats};

/// How long `close` waits for the drainer thread beyond its deadline (the drainer bounds every
/// attempt by the deadline, so it normally ends well within this).
const JOIN_GRACE: Duration = Duration::from_millis(500);

/// `secrets.audit.dropped` reasons ([`names::DROP_REASONS`]): intake refused, the queue full.
const QUEUE_FULL: &str = "queue_full";
/// Accepted events the transport did not deliver before `close`'s deadline (`lost`).
const TRANSPORT_FAILED: &str = "transport_failed";
/// Intake refused: the sink is closed, or its drainer is gone.
const STOPPED: &str = "stopped";

/// Delivers batches of events somewhere (a Kafka topic, a log pipeline). Implemented by the
/// transports; the [`QueueSink`] calls it from its own thread, one batch at a time, in order.
///
/// A batch is delivered whole or not at all: on `Err` (or when the attempt exceeds
/// `attempt_timeout` and its future is dropped) the same batch is offered again after a
/// backoff. A transport should therefore be idempotent per event id (consumers dedupe on it).
/// It must not block its thread (await instead) and must not panic; if it does, `close`
/// still returns within its deadline and reports what was left as lost.
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use secret_audit::{AuditError, AuditEvent, AuditSink, Auditor, EventType, QueueConfig, QueueSink, Transport, to_ocsf_bytes};
///
/// /// Writes one OCSF JSON line per event (a stand-in for a broker).
/// struct Lines(Arc<Mutex<Vec<u8>>>);
///
/// impl Transport for Lines {
///     fn deliver<'a>(
///         &'a mut self,
///         batch: &'a [AuditEvent],
///     ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>> {
///         Box::pin(async move {
///             let mut out = self.0.lock().map_err(|_| AuditError::delivery("poisoned", None))?;
///             for event in batch {
///                 out.extend(to_ocsf_bytes(event));
///                 out.push(b'\n');
///             }
///             Ok(())
///         })
///     }
/// }
///
/// # fn main() -> Result<(), AuditError> {
/// let out = Arc::new(Mutex::new(Vec::new()));
/// let sink = QueueSink::new(Lines(out.clone()), QueueConfig::default())?;
/// let auditor = Auditor::disabled(); // an enabled one keys the events it makes
/// sink.publish(auditor.event(EventType::Read, "acme", Some("alice"), None));
/// let report = sink.close(Duration::from_secs(5));
/// assert_eq!((report.delivered, report.lost), (1, 0));
/// assert_eq!(out.lock().map(|o| o.split(|&b| b == b'\n').count()).ok(), Some(2));
/// # Ok(()) }
/// ```
pub trait Transport: Send + 'static {
    /// Delivers `batch`, in order.
    fn deliver<'a>(
        &'a mut self,
        batch: &'a [AuditEvent],
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>>;
}

/// Lets one caller through per interval, lock-free.
#[derive(Debug)]
struct RateLimit {
    start: Instant,
    interval_ms: u64,
    next_ms: AtomicU64,
}

impl RateLimit {
    fn new(interval: Duration) -> Self {
        Self {
            start: Instant::now(),
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            next_ms: AtomicU64::new(0),
        }
    }

    fn ready(&self) -> bool {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now.saturating_add(self.interval_ms),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<AuditEvent>,
    in_flight: usize,
    /// Set by `close`: intake stops and the drainer must be done by then.
    deadline: Option<Instant>,
    /// `close` gave up waiting for the drainer and counted everything left as lost.
    abandoned: bool,
    /// The drainer is gone (its transport panicked): nothing will drain the queue, so
    /// publishing drops (and counts) at once instead of filling it or waiting for room.
    drainer_dead: bool,
}

#[derive(Debug)]
struct Shared {
    config: QueueConfig,
    state: Mutex<State>,
    /// Signalled when the drainer takes a batch (room for `Block` publishers) and on close.
    space: Condvar,
    /// Wakes the drainer: an event was queued, or close began.
    wake: Notify,
    /// Cuts a backoff sleep short when close begins.
    closing: Notify,
    published: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    lost: AtomicU64,
    failed_attempts: AtomicU64,
    drop_warning: RateLimit,
    failure_warning: RateLimit,
    metrics: Metrics,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every unlock; a panic elsewhere does not corrupt it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One event refused at intake, for `reason` (`queue_full` or `stopped`).
    fn count_drop(&self, reason: &'static str) {
        let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        self.metrics.audit_dropped(reason, 1);
        if self.drop_warning.ready() {
            tracing::warn!(
                audit_dropped_total = total,
                capacity = self.config.capacity,
                "audit queue full or closed: events dropped"
            );
        }
    }

    /// `count` accepted events that will not be delivered (`lost`).
    fn count_lost(&self, count: u64) {
        self.lost.fetch_add(count, Ordering::Relaxed);
        self.metrics.audit_dropped(TRANSPORT_FAILED, count);
    }
}

/// Set on the drainer thread: when it unwinds (a transport panicked), the queue is marked
/// dead and every waiting publisher is woken, so none waits for room that will never come.
struct DrainerWatch<'a>(&'a Shared);

impl Drop for DrainerWatch<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().drainer_dead = true;
            self.0.space.notify_all();
            tracing::error!("the audit transport panicked: audit events are dropped from now on");
        }
    }
}

/// A sink that queues events in memory (bounded) and delivers them in batches through a
/// [`Transport`] from a background thread running its own current-thread tokio runtime, so it
/// works under any runtime or none, and publishing never waits on the network.
///
/// - **Full queue:** [`Overflow::Drop`] drops and counts exactly (`stats().dropped`, the
///   `audit_dropped_total` of the warning logged once per `warn_interval`);
///   [`Overflow::Block`] waits a bounded time for room first.
/// - **Transport down:** the batch is retried with capped, jittered exponential backoff, each
///   attempt bounded by `attempt_timeout`; it is held, not dropped, and new events keep
///   queueing up to `capacity`. Events are delivered in publication order.
/// - **[`close`](AuditSink::close):** stops intake, delivers everything queued, joins the
///   thread and reports; if the deadline passes first, what was left is reported `lost`.
///   Nothing queued is lost on a clean shutdown.
/// - **Dropped without `close`:** flushes best-effort for `drop_flush`, never hangs.
///
/// # Telemetry
/// Each delivery attempt runs in an `audit_publish` span (DEBUG, a root span on the drainer
/// thread: `events`, `attempt`, `outcome` `ok`/`error`, the failure's `code`).
/// `secrets.audit.dropped` counts what [`stats`](AuditSink::stats) counts, by reason:
/// `queue_full` and `stopped` (closed, or the drainer gone) make up `dropped`,
/// `transport_failed` (accepted, not delivered before `close`'s deadline) is `lost`.
/// `secrets.audit.queue_depth` is recorded by the drainer when it takes a batch and after
/// each failed attempt, never on the publishing path. The instruments are those given to
/// [`with_metrics`](Self::with_metrics), else [`Metrics::global`] at construction.
pub struct QueueSink {
    shared: Arc<Shared>,
    closer: Mutex<Closer>,
}

#[derive(Debug)]
struct Closer {
    thread: Option<JoinHandle<()>>,
    done: Option<mpsc::Receiver<()>>,
    report: Option<CloseReport>,
}

impl fmt::Debug for QueueSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueSink")
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl QueueSink {
    /// Starts the drainer thread for `transport`, recording its metrics with
    /// [`Metrics::global`] (bound to the global meter provider installed now).
    ///
    /// # Errors
    /// `AUDIT_START` when the thread or its runtime cannot be created.
    pub fn new(transport: impl Transport, config: QueueConfig) -> Result<Self, AuditError> {
        Self::with_metrics(transport, config, Metrics::global())
    }

    /// [`new`](Self::new), recording `secrets.audit.queue_depth` and `secrets.audit.dropped`
    /// with `metrics`.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_metrics(
        transport: impl Transport,
        config: QueueConfig,
        metrics: Metrics,
    ) -> Result<Self, AuditError> {
        // The fields are public: bring each into range (as the with_* setters do).
        let config = QueueConfig {
            capacity: config.capacity.max(1),
            batch_max: config.batch_max.max(1),
            attempt_timeout: config.attempt_timeout.max(Duration::from_millis(1)),
            retry: config.retry.normalized(),
            linger: config.linger.min(MAX_LINGER),
            ..config
        };
        let warn_interval = config.warn_interval;
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State::default()),
            space: Condvar::new(),
            wake: Notify::new(),
            closing: Notify::new(),
            published: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            drop_warning: RateLimit::new(warn_interval),
            failure_warning: RateLimit::new(warn_interval),
            metrics,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|source| AuditError::Start { source })?;
        let (done_tx, done_rx) = mpsc::channel();
        let drainer = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("secret-audit-drain".to_owned())
            .spawn(move || {
                // Marks the queue dead if the transport panics out of the drainer.
                let _watch = DrainerWatch(&drainer);
                runtime.block_on(drain(&drainer, transport));
                drop(runtime);
                // The receiver may be gone (close gave up); nothing to do then.
                let _ = done_tx.send(());
            })
            .map_err(|source| AuditError::Start { source })?;
        Ok(Self {
            shared,
            closer: Mutex::new(Closer {
                thread: Some(thread),
                done: Some(done_rx),
                report: None,
            }),
        })
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &QueueConfig {
        &self.shared.config
    }

    fn report(&self) -> CloseReport {
        let lost = self.shared.lost.load(Ordering::Relaxed);
        CloseReport {
            delivered: self.shared.delivered.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            lost,
            timed_out: lost > 0,
        }
    }
}

impl AuditSink for QueueSink {
    fn publish(&self, event: AuditEvent) {
        let shared = &*self.shared;
        shared.published.fetch_add(1, Ordering::Relaxed);
        let mut state = shared.lock();
        if let Overflow::Block(max_wait) = shared.config.overflow
            && state.deadline.is_none()
            && !state.drainer_dead
            && state.queue.len() >= shared.config.capacity
        {
            let until = deadline_after(max_wait);
            while state.deadline.is_none()
                && !state.drainer_dead
                && state.queue.len() >= shared.config.capacity
            {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                state = shared
                    .space
                    .wait_timeout(state, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
        let refused = if state.deadline.is_some() || state.drainer_dead {
            Some(STOPPED)
        } else if state.queue.len() >= shared.config.capacity {
            Some(QUEUE_FULL)
        } else {
            None
        };
        if let Some(reason) = refused {
            drop(state);
            shared.count_drop(reason);
            return;
        }
        state.queue.push_back(event);
        drop(state);
        shared.wake.notify_one();
    }

    fn close(&self, within: Duration) -> CloseReport {
        let mut closer = self.closer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(report) = closer.report {
            return report;
        }
        let deadline = deadline_after(within);
        self.shared.lock().deadline = Some(deadline);
        self.shared.space.notify_all();
        self.shared.wake.notify_one();
        self.shared.closing.notify_one();

        let wait = deadline
            .saturating_duration_since(Instant::now())
            .saturating_add(JOIN_GRACE);
        let finished = closer.done.take().is_none_or(|done| {
            !matches!(
                done.recv_timeout(wait),
                Err(mpsc::RecvTimeoutError::Timeout)
            )
        });
        if finished {
            if let Some(thread) = closer.thread.take() {
                // The drainer has returned (or panicked); joining is immediate.
                let _ = thread.join();
            }
        } else {
            // The transport blocks its thread outright (a future that never yields): leave
            // the thread behind.
            closer.thread = None;
        }
        // What is left is lost: everything, if the drainer was left behind (it will count
        // nothing more); what a drainer that panicked left (a transport must not panic).
        let mut state = self.shared.lock();
        state.abandoned = !finished;
        let left = (state.queue.len() + state.in_flight) as u64;
        state.queue.clear();
        state.in_flight = 0;
        drop(state);
        self.shared.count_lost(left);
        self.shared.metrics.audit_queue_depth(0);
        let report = self.report();
        closer.report = Some(report);
        report
    }

    fn stats(&self) -> SinkStats {
        let state = self.shared.lock();
        let (queued, in_flight) = (state.queue.len() as u64, state.in_flight as u64);
        let stopped = state.drainer_dead;
        drop(state);
        let shared = &*self.shared;
        SinkStats {
            published: shared.published.load(Ordering::Relaxed),
            delivered: shared.delivered.load(Ordering::Relaxed),
            dropped: shared.dropped.load(Ordering::Relaxed),
            lost: shared.lost.load(Ordering::Relaxed),
            failed_attempts: shared.failed_attempts.load(Ordering::Relaxed),
            queued,
            in_flight,
            stopped,
        }
    }
}

impl Drop for QueueSink {
    fn drop(&mut self) {
        let bound = self.shared.config.drop_flush;
        let report = self.close(bound);
        if report.lost > 0 {
            tracing::warn!(
                lost = report.lost,
                "audit queue dropped without close: events not delivered"
            );
        }
    }
}

/// The drainer: takes batches in order and delivers each until it succeeds or the close
/// deadline passes.
async fn drain(shared: &Shared, mut transport: impl Transport) {
    loop {
        let mut lingered = false;
        let (batch, depth): (Vec<AuditEvent>, usize) = loop {
            let woken = shared.wake.notified();
            let linger = {
                let mut state = shared.lock();
                let waiting = state.queue.len();
                if waiting > 0
                    && !lingered
                    && waiting < shared.config.batch_max
                    && state.deadline.is_none()
                    && !shared.config.linger.is_zero()
                {
                    true
                } else if waiting > 0 {
                    let n = waiting.min(shared.config.batch_max);
                    state.in_flight = n;
                    break (state.queue.drain(..n).collect(), waiting - n);
                } else if state.deadline.is_some() {
                    return;
                } else {
                    false
                }
            };
            if linger {
                // More events may be on their way: take them in this batch. Publishers meanwhile
                // only store a wake-up permit (no thread wake); `close` ends the wait early.
                lingered = true;
                let closing = shared.closing.notified();
                tokio::select! {
                    () = tokio::time::sleep(shared.config.linger) => {}
                    () = closing => {}
                }
                continue;
            }
            woken.await;
        };
        shared.space.notify_all();
        shared.metrics.audit_queue_depth(depth as u64);
        let delivered = deliver(shared, &mut transport, &batch).await;
        let mut state = shared.lock();
        state.in_flight = 0;
        if state.abandoned {
            return;
        }
        if delivered {
            shared
                .delivered
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
        } else {
            // The close deadline passed: this batch and everything still queued is lost.
            let lost = batch.len() + state.queue.len();
            state.queue.clear();
            drop(state);
            shared.count_lost(lost as u64);
            return;
        }
    }
}

/// Delivers one batch, retrying with backoff; `false` when the close deadline passed first.
/// Each attempt is an `audit_publish` span.
async fn deliver(shared: &Shared, transport: &mut impl Transport, batch: &[AuditEvent]) -> bool {
    let mut backoff = shared.config.retry.backoff();
    let mut attempt: u32 = 0;
    loop {
        attempt = attempt.saturating_add(1);
        let deadline = shared.lock().deadline;
        let mut limit = shared.config.attempt_timeout;
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            limit = limit.min(left);
        }
        let span = tracing::debug_span!(
            parent: None,
            names::span::AUDIT_PUBLISH,
            events = batch.len(),
            attempt,
            outcome = Empty,
            code = Empty,
        );
        let attempted = transport.deliver(batch).instrument(span.clone());
        let error = match tokio::time::timeout(limit, attempted).await {
            Ok(Ok(())) => {
                span.record("outcome", "ok");
                return true;
            }
            Ok(Err(error)) => error,
            Err(_) => AuditError::Timeout { after: limit },
        };
        span.record("outcome", "error");
        span.record("code", error.code());
        drop(span);
        shared.failed_attempts.fetch_add(1, Ordering::Relaxed);
        let depth = shared.lock().queue.len();
        shared.metrics.audit_queue_depth(depth as u64);
        if shared.failure_warning.ready() {
            tracing::warn!(
                code = error.code(),
                batch = batch.len(),
                "audit delivery failed, retrying: {error}"
            );
        }
        let delay = backoff.next().unwrap_or(shared.config.retry.max_delay);
        let closing = shared.closing.notified();
        tokio::pin!(closing);
        // Register for the close signal before reading the deadline, so a close that comes
        // in between still cuts the sleep short.
        closing.as_mut().enable();
        let sleep = match shared.lock().deadline {
            Some(deadline) => delay.min(deadline.saturating_duration_since(Instant::now())),
            None => delay,
        };
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = &mut closing => {}
        }
    }
}
