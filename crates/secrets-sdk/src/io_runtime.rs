//! The clients' own I/O runtime, and where a request runs.
//!
//! A `VaultClient` request, and a `SecretsClient` read from an async provider, runs on the
//! caller's runtime when that is a multi-thread tokio
//! runtime with a timer ([`request_runtime`], [`callers_runtime`]): no hop between runtimes,
//! which costs two cross-thread wakeups per request (measured: `concurrent_64` 0.80× its
//! raw-hyper floor with the hop, 1.09× without). A `VaultClient` request is polled there in
//! its caller's own task ([`Finishing`](crate::finishing::Finishing)), not as a task of its
//! own. Otherwise (a current-thread runtime, another executor, blocking
//! calls, a runtime without timers) it runs on a small runtime the client owns, started at
//! the first call, so any executor can poll the future and blocking calls work inside and
//! outside a runtime. Connections made by a request live on the runtime it ran on; the pool
//! drops those of a runtime that shut down and connects again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use tokio::runtime::{Handle, Runtime};

use crate::Error;

/// The runtime a request runs on: the caller's, when it is a multi-thread runtime with a
/// timer, else the client's own (`io`).
pub(crate) fn request_runtime(io: &Handle) -> Handle {
    callers_runtime().unwrap_or_else(|| io.clone())
}

/// The caller's runtime, when a request may run there: a multi-thread tokio runtime with a
/// timer (its workers keep polling the connections a request made there; a current-thread
/// runtime polls them only while one of its callers waits).
pub(crate) fn callers_runtime() -> Option<Handle> {
    Handle::try_current().ok().filter(|current| {
        current.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread && has_timer()
    })
}

/// Whether the runtime this thread is in has a timer (the request's timeouts need one). A
/// runtime built without `enable_time` panics when a timer is made, so this makes one under
/// `catch_unwind`, once per thread (a thread of a multi-thread runtime stays in it).
fn has_timer() -> bool {
    thread_local! {
        static HAS_TIMER: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
    }
    HAS_TIMER.with(|known| {
        if let Some(has) = known.get() {
            return has;
        }
        let has = std::panic::catch_unwind(|| {
            drop(tokio::time::sleep(std::time::Duration::ZERO));
        })
        .is_ok();
        known.set(Some(has));
        has
    })
}

/// A lazily started multi-thread runtime, shut down without blocking on `close` or drop.
#[derive(Debug)]
pub(crate) struct IoRuntime {
    threads: usize,
    thread_name: &'static str,
    /// Owns the runtime; taken by [`IoRuntime::shutdown`] (or drop).
    runtime: Mutex<Option<Runtime>>,
    /// The runtime's handle, for the lock-free fast path.
    handle: OnceLock<Handle>,
    closed: AtomicBool,
}

impl IoRuntime {
    pub(crate) fn new(threads: usize, thread_name: &'static str) -> Self {
        Self {
            threads: threads.max(1),
            thread_name,
            runtime: Mutex::new(None),
            handle: OnceLock::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// The runtime's handle, starting it at first use.
    ///
    /// # Errors
    /// `CLOSED` after [`shutdown`](Self::shutdown); `RUNTIME` when it cannot start.
    pub(crate) fn handle(&self) -> Result<&Handle, Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Some(handle) = self.handle.get() {
            return Ok(handle);
        }
        let mut runtime = self.runtime.lock().unwrap_or_else(PoisonError::into_inner);
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Some(handle) = self.handle.get() {
            return Ok(handle);
        }
        let started = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.threads)
            .thread_name(self.thread_name)
            .enable_all()
            .build()
            .map_err(|e| Error::Runtime {
                reason: "could not start the I/O runtime",
                source: Some(Box::new(e)),
            })?;
        let handle = self.handle.get_or_init(|| started.handle().clone());
        *runtime = Some(started);
        Ok(handle)
    }

    /// Stops the runtime without blocking (fine inside an async context). Idempotent.
    pub(crate) fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(runtime) = runtime {
            runtime.shutdown_background();
        }
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io() -> Result<Runtime, std::io::Error> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("client-io")
            .enable_all()
            .build()
    }

    fn thread_name() -> String {
        std::thread::current().name().unwrap_or_default().to_owned()
    }

    #[test]
    fn a_multi_thread_caller_runs_its_requests() -> Result<(), Box<dyn std::error::Error>> {
        let io = io()?;
        let caller = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("caller")
            .enable_all()
            .build()?;
        let ran_on = caller.block_on(async {
            request_runtime(io.handle())
                .spawn(async { thread_name() })
                .await
        })?;
        assert_eq!(ran_on, "caller");
        Ok(())
    }

    #[test]
    fn other_callers_hop_to_the_clients_runtime() -> Result<(), Box<dyn std::error::Error>> {
        let io = io()?;
        // A current-thread runtime: its one thread may be blocked by the caller.
        let current = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let ran_on = current.block_on(async {
            request_runtime(io.handle())
                .spawn(async { thread_name() })
                .await
        })?;
        assert_eq!(ran_on, "client-io");
        // A multi-thread runtime without a timer: the request's timeouts would panic there.
        let timerless = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_io()
            .build()?;
        let slept = timerless.block_on(async {
            request_runtime(io.handle())
                .spawn(async {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    thread_name()
                })
                .await
        })?;
        assert_eq!(slept, "client-io");
        // No runtime at all.
        let outside = request_runtime(io.handle());
        assert_eq!(
            io.block_on(outside.spawn(async { thread_name() }))?,
            "client-io"
        );
        Ok(())
    }
}
