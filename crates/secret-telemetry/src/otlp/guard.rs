//! [`OtlpGuard`]: flushes and shuts the installed providers down, bounded in time.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;

use super::OtlpError;

/// How much longer than the export timeout shutdown waits for the SDK to report, so that
/// its own result (an export error, its timeout) is seen rather than only ours.
const SHUTDOWN_MARGIN: Duration = Duration::from_millis(250);

/// Flushes and shuts the installed pipeline down on [`shutdown`](Self::shutdown), or when
/// dropped (then ignoring errors). Either waits at most about the export timeout.
pub struct OtlpGuard {
    pub(crate) providers: Providers,
}

impl fmt::Debug for OtlpGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpGuard")
            .field("timeout", &self.providers.timeout)
            .field("discarding", &self.providers.discarded.is_some())
            .finish_non_exhaustive()
    }
}

impl OtlpGuard {
    /// Exports what is pending now (finished spans, the metrics collected so far), waiting
    /// at most about the export timeout.
    ///
    /// # Errors
    /// `TIMEOUT` when the endpoint did not answer in time, `OTLP_EXPORT` when it failed.
    pub fn force_flush(&self) -> Result<(), OtlpError> {
        self.providers.force_flush()
    }

    /// Exports what is pending and shuts both providers down, waiting at most about the
    /// export timeout; what was not sent by then is lost. Spans and metrics recorded later
    /// are dropped.
    ///
    /// # Errors
    /// `TIMEOUT` when the endpoint did not answer in time, `OTLP_EXPORT` when it failed.
    pub fn shutdown(mut self) -> Result<(), OtlpError> {
        self.providers.shutdown()
    }

    /// For a [discarding](super::Pipeline::discarding) pipeline, how many spans its exporter
    /// dropped so far; `None` for one that exports.
    #[must_use]
    pub fn discarded_spans(&self) -> Option<u64> {
        self.providers
            .discarded
            .as_ref()
            .map(|counter| counter.load(Ordering::Relaxed))
    }
}

/// The providers and the exporter's runtime; shut down once, when asked or when dropped.
pub(crate) struct Providers {
    pub(crate) tracer: SdkTracerProvider,
    pub(crate) meter: SdkMeterProvider,
    pub(crate) runtime: Option<tokio::runtime::Runtime>,
    pub(crate) timeout: Duration,
    pub(crate) discarded: Option<Arc<AtomicU64>>,
    pub(crate) done: bool,
}

impl Providers {
    pub(crate) fn force_flush(&self) -> Result<(), OtlpError> {
        let (tracer, meter) = (self.tracer.clone(), self.meter.clone());
        bounded(
            self.timeout + SHUTDOWN_MARGIN,
            [
                ("traces", Box::new(move || tracer.force_flush())),
                ("metrics", Box::new(move || meter.force_flush())),
            ],
        )
    }

    fn shutdown(&mut self) -> Result<(), OtlpError> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(());
        }
        let (tracer, meter, timeout) = (self.tracer.clone(), self.meter.clone(), self.timeout);
        let result = bounded(
            timeout + SHUTDOWN_MARGIN,
            [
                (
                    "traces",
                    Box::new(move || tracer.shutdown_with_timeout(timeout)),
                ),
                (
                    "metrics",
                    Box::new(move || meter.shutdown_with_timeout(timeout)),
                ),
            ],
        );
        // Requests still waiting for an answer are dropped with the runtime (without
        // blocking, even inside an async context); the SDK's threads waiting on them wake.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        result
    }
}

impl Drop for Providers {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

type Job = Box<dyn FnOnce() -> OTelSdkResult + Send>;

/// Runs both jobs on threads of their own and waits for them until `limit` has passed; a
/// job still running then is left behind (its thread ends when the SDK gives up).
fn bounded(limit: Duration, jobs: [(&'static str, Job); 2]) -> Result<(), OtlpError> {
    let deadline = Instant::now() + limit;
    let (sender, receiver) = mpsc::channel();
    let mut pending = Vec::with_capacity(jobs.len());
    for (signal, job) in jobs {
        pending.push(signal);
        // The job is shared so that, when no thread can start, it runs here instead (still
        // bounded by the SDK's own timeouts).
        let job = Arc::new(Mutex::new(Some(job)));
        let (theirs, their_sender) = (Arc::clone(&job), sender.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("secrets-otlp-{signal}"))
            .spawn(move || {
                if let Some(job) = take(&theirs) {
                    let _ = their_sender.send((signal, job()));
                }
            });
        if spawned.is_err()
            && let Some(job) = take(&job)
        {
            let _ = sender.send((signal, job()));
        }
    }
    drop(sender);
    let mut first_error = None;
    while !pending.is_empty() {
        match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((signal, result)) => {
                pending.retain(|s| *s != signal);
                if let Err(error) = sdk_result(signal, result, limit) {
                    first_error.get_or_insert(error);
                }
            }
            Err(_) => {
                first_error.get_or_insert(OtlpError::Timeout {
                    signal: pending[0],
                    timeout: limit,
                });
                break;
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn take(job: &Mutex<Option<Job>>) -> Option<Job> {
    job.lock().unwrap_or_else(PoisonError::into_inner).take()
}

fn sdk_result(
    signal: &'static str,
    result: OTelSdkResult,
    limit: Duration,
) -> Result<(), OtlpError> {
    match result {
        Ok(()) | Err(OTelSdkError::AlreadyShutdown) => Ok(()),
        Err(OTelSdkError::Timeout(_)) => Err(OtlpError::Timeout {
            signal,
            timeout: limit,
        }),
        Err(other) => Err(OtlpError::Export {
            signal,
            source: Box::new(other),
        }),
    }
}
