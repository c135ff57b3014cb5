//! One provider read of a resolve: a task on the client's runtime (or its blocking pool),
//! bounded by the resolve deadline, what its outcome means, and the one place both clients
//! count provider reads ([`ReadMetrics`]).

use std::sync::Arc;
use std::time::Duration;

use crate::in_span::InSpan as _;
use secret_providers::{ProviderError, SecretProvider, SecretValue};
use secret_telemetry::Metrics;
use secret_uri::SecretUri;
use tokio::runtime::Handle;
use tokio::task::{JoinError, JoinHandle};

use super::audit::ReadAudit;
use crate::Error;

/// The read as a task: async reads (KV v2) on the caller's runtime when it is a multi-thread
/// one with a timer, else on the client's (`handle`; see
/// [`request_runtime`](crate::io_runtime::request_runtime)); blocking reads (files) on the
/// client's blocking pool, so a stalled filesystem holds a blocking thread, never a thread
/// that vault I/O or the caller's executor needs. The read is counted
/// in `metrics` ([`ReadMetrics`]).
#[cfg(feature = "vault")]
pub(crate) fn spawn(
    provider: &Arc<dyn SecretProvider>,
    handle: &Handle,
    uri: &SecretUri,
    metrics: &Metrics,
) -> JoinHandle<ProviderResult> {
    spawn_audited(provider, handle, uri, None, metrics)
}

/// [`spawn`], auditing the read inside the task (`audit`): however the caller ends (a
/// timeout, a dropped future), a read that ran is audited once.
pub(super) fn spawn_audited(
    provider: &Arc<dyn SecretProvider>,
    handle: &Handle,
    uri: &SecretUri,
    audit: Option<ReadAudit>,
    metrics: &Metrics,
) -> JoinHandle<ProviderResult> {
    let provider = Arc::clone(provider);
    let owned = uri.clone();
    let counted = ReadMetrics::start(metrics, uri);
    // The resolve's span goes along, so the provider's events stay inside it.
    let span = tracing::Span::current();
    if provider.reads_block() {
        handle.spawn_blocking(move || {
            span.in_scope(|| {
                #[cfg(all(test, feature = "file"))]
                super::tests::stall_if_asked(&owned);
                let result = provider.read_blocking(&owned);
                counted.finish(&result);
                if let Some(audit) = audit {
                    audit.finish(&result);
                }
                result
            })
        })
    } else {
        // On the caller's multi-thread runtime when there is one (no hop between runtimes),
        // else on the client's.
        crate::io_runtime::request_runtime(handle).spawn(
            async move {
                let result = provider.read(&owned).await;
                counted.finish(&result);
                if let Some(audit) = audit {
                    audit.finish(&result);
                }
                result
            }
            .in_span(span),
        )
    }
}

/// An async provider's read polled in place (by the request's own task, no task of its
/// own), counted in `metrics` as [`spawn`]'s are: its answer, or `None` when the provider
/// panicked (counted as its `RUNTIME` error). Dropped unfinished (a deadline passed), it
/// counts nothing: the deadline's enforcer counts the `TIMEOUT`.
///
/// The `VaultClient`'s reads run so: the request is already a task of its own, which a
/// dropped caller does not cancel, so a second task for the read only added a spawn, a
/// wakeup and a poll per call. A provider must not block the thread in `read` (that is
/// what [`SecretProvider::reads_block`] is for).
#[cfg(feature = "vault")]
pub(crate) async fn in_place(
    provider: &Arc<dyn SecretProvider>,
    uri: &SecretUri,
    metrics: &Metrics,
) -> Option<ProviderResult> {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::task::Poll;
    let counted = ReadMetrics::start(metrics, uri);
    let mut read = provider.read(uri);
    // After a panic the read is not polled again (it is dropped with this future).
    let answer = std::future::poll_fn(|cx| {
        match catch_unwind(AssertUnwindSafe(|| read.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => Poll::Ready(Some(result)),
            Err(_panic) => Poll::Ready(None),
        }
    })
    .await;
    match &answer {
        Some(result) => counted.finish(result),
        None => counted.panicked(),
    }
    answer
}

/// One provider read's metrics, the one place both clients count provider reads (the
/// `SecretsClient`'s async, stale-refresh and `resolve_file_sync` reads, the `VaultClient`'s,
/// built-in providers and one's own alike): [`finish`](Self::finish)ed with the provider's
/// answer, `secrets.provider.last_successful_fetch` for a value, `secrets.provider.errors`
/// with its code for an error. Dropped unfinished by a panicking provider it counts a
/// `RUNTIME` error; aborted at a deadline, the deadline's enforcer counts the `TIMEOUT`
/// ([`joined`]); aborted because the caller dropped the resolve, nothing. The `provider`
/// label is the URI's provider (a closed set), never the provider object's own name.
pub(super) struct ReadMetrics {
    metrics: Metrics,
    provider: &'static str,
    done: bool,
}

impl ReadMetrics {
    /// A read of `uri` about to start.
    pub(super) fn start(metrics: &Metrics, uri: &SecretUri) -> Self {
        Self {
            metrics: metrics.clone(),
            provider: uri.provider().as_str(),
            done: false,
        }
    }

    /// Counts a read whose provider panicked (caught, so the drop cannot tell).
    #[cfg(feature = "vault")]
    fn panicked(mut self) {
        self.done = true;
        self.metrics.provider_error(self.provider, "RUNTIME");
    }

    /// Counts the provider's answer.
    pub(super) fn finish(mut self, result: &ProviderResult) {
        self.done = true;
        match result {
            Ok(_) => self.metrics.fetched(self.provider),
            Err(error) => self.metrics.provider_error(self.provider, error.code()),
        }
    }
}

impl Drop for ReadMetrics {
    fn drop(&mut self) {
        // A provider that panicked is a `RUNTIME` error. A read dropped unfinished otherwise
        // was aborted: at the deadline (counted as `TIMEOUT` by whoever enforced it, see
        // [`joined`]) or because the caller gave up, which is no provider error at all.
        if !self.done && std::thread::panicking() {
            self.metrics.provider_error(self.provider, "RUNTIME");
        }
    }
}

pub(crate) type ProviderResult = Result<SecretValue, ProviderError>;

/// A read task's outcome: its result, `RUNTIME` if the task died, `TIMEOUT` if the deadline
/// (`limit`) passed first (counted in `metrics` as the provider's `TIMEOUT`).
pub(super) fn joined(
    outcome: Option<Result<ProviderResult, JoinError>>,
    uri: &SecretUri,
    limit: Duration,
    metrics: &Metrics,
) -> Result<SecretValue, Error> {
    match outcome {
        Some(Ok(result)) => result.map_err(|e| Error::provider(uri.mount(), Arc::new(e))),
        Some(Err(join)) => Err(Error::Runtime {
            reason: "the read task was cancelled",
            source: Some(Box::new(join)),
        }),
        None => {
            metrics.provider_error(uri.provider().as_str(), "TIMEOUT");
            Err(timed_out(uri, limit))
        }
    }
}

/// The `TIMEOUT` of a resolve that hit its deadline.
pub(super) fn timed_out(uri: &SecretUri, limit: Duration) -> Error {
    Error::provider(
        uri.mount(),
        Arc::new(ProviderError::Timeout {
            provider: uri.provider().as_str(),
            timeout: limit,
            attempts: 1,
        }),
    )
}

impl Error {
    pub(super) fn provider_error_arc(&self) -> Option<Arc<ProviderError>> {
        match self {
            Self::Provider { source, .. } => Some(Arc::clone(source)),
            _ => None,
        }
    }
}
