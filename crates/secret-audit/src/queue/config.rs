//! How a [`QueueSink`](super::QueueSink) queues, batches and retries: [`QueueConfig`],
//! [`Overflow`] and [`RetryConfig`].

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// The longest backoff delay honoured; longer ones are cut to this.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// The default [`QueueConfig::linger`].
const DEFAULT_LINGER: Duration = Duration::from_millis(2);
/// The longest [`QueueConfig::linger`].
pub(super) const MAX_LINGER: Duration = Duration::from_secs(1);

/// What [`publish`](crate::AuditSink::publish) does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// Drop the event and count it (`audit_dropped_total`), warning once per
    /// `warn_interval`. The request path never waits. The default.
    Drop,
    /// Wait up to this long for room (blocking the publishing thread), then drop and count.
    Block(Duration),
}

/// The backoff between delivery attempts of a failed batch: exponential from `min_delay` by
/// `factor`, with random jitter when `jitter` is set, never more than `max_delay`. There is no
/// attempt limit: a batch is held (and the queue fills, then overflows) until the transport
/// recovers or `close`'s deadline passes.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// The first delay (default 100 ms).
    pub min_delay: Duration,
    /// The longest delay (default 30 s).
    pub max_delay: Duration,
    /// The growth factor (default 2).
    pub factor: f32,
    /// Whether to add random jitter (default yes), so that many clients do not retry in step.
    pub jitter: bool,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            factor: 2.0,
            jitter: true,
        }
    }
}

impl RetryConfig {
    /// The same policy with these delays.
    #[must_use]
    pub fn with_delays(mut self, min_delay: Duration, max_delay: Duration) -> Self {
        self.min_delay = min_delay;
        self.max_delay = max_delay.max(min_delay);
        self
    }

    /// The same policy with this growth factor (at least 1).
    #[must_use]
    pub fn with_factor(mut self, factor: f32) -> Self {
        self.factor = if factor.is_finite() {
            factor.max(1.0)
        } else {
            2.0
        };
        self
    }

    /// The same policy with or without jitter.
    #[must_use]
    pub fn with_jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// The policy with every field in range: delays at most an hour, `min_delay <=
    /// max_delay`, a finite factor of at least 1.
    pub(super) fn normalized(mut self) -> Self {
        self.max_delay = self.max_delay.min(MAX_RETRY_DELAY);
        self.min_delay = self.min_delay.min(self.max_delay);
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            self.factor = 2.0;
        }
        self
    }

    pub(super) fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        let mut builder = ExponentialBuilder::new()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(self.factor)
            .without_max_times();
        if self.jitter {
            builder = builder.with_jitter();
        }
        let max = self.max_delay;
        // backon's jitter adds up to one more delay on top; the cap is a cap.
        builder.build().map(move |delay| delay.min(max))
    }
}

/// How a [`QueueSink`](super::QueueSink) queues, batches and retries.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueueConfig {
    /// The most events waiting in the queue (default 10 000). The batch being delivered is
    /// held apart from the queue, so at most `capacity + batch_max` events are in memory.
    pub capacity: usize,
    /// What a full queue does (default [`Overflow::Drop`]).
    pub overflow: Overflow,
    /// The most events handed to the transport at once (default 500).
    pub batch_max: usize,
    /// The backoff between attempts of a failed batch.
    pub retry: RetryConfig,
    /// The longest one delivery attempt may take (default 10 s): a transport that accepts and
    /// never answers cannot hang the drainer or `close`.
    pub attempt_timeout: Duration,
    /// The shortest time between two warnings about dropped events or failed attempts
    /// (default 60 s).
    pub warn_interval: Duration,
    /// How long dropping a [`QueueSink`](super::QueueSink) that was never closed waits for the queue to drain
    /// (default 1 s).
    pub drop_flush: Duration,
    /// How long the drainer, woken by a first event, waits for more before it takes a batch
    /// smaller than `batch_max` (default 2 ms; at most 1 s). Publishing then wakes the drainer
    /// thread at most once per linger, not once per event: the request path pays an atomic
    /// operation, not a thread wake-up. Closing skips the wait.
    pub linger: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            overflow: Overflow::Drop,
            batch_max: 500,
            retry: RetryConfig::default(),
            attempt_timeout: Duration::from_secs(10),
            warn_interval: Duration::from_secs(60),
            drop_flush: Duration::from_secs(1),
            linger: DEFAULT_LINGER,
        }
    }
}

impl QueueConfig {
    /// The same configuration with this capacity (at least 1).
    #[must_use]
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The same configuration with this overflow policy.
    #[must_use]
    pub fn with_overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// The same configuration with this batch size (at least 1).
    #[must_use]
    pub fn with_batch_max(mut self, batch_max: usize) -> Self {
        self.batch_max = batch_max.max(1);
        self
    }

    /// The same configuration with this retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// The same configuration with this attempt timeout (at least 1 ms).
    #[must_use]
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The same configuration with this linger (at most 1 s).
    #[must_use]
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger.min(MAX_LINGER);
        self
    }

    /// The same configuration with this warning interval.
    #[must_use]
    pub fn with_warn_interval(mut self, interval: Duration) -> Self {
        self.warn_interval = interval;
        self
    }

    /// The same configuration with this flush bound for a sink dropped without `close`.
    #[must_use]
    pub fn with_drop_flush(mut self, bound: Duration) -> Self {
        self.drop_flush = bound;
        self
    }
}
