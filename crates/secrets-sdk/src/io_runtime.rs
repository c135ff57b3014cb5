//! The clients' own I/O runtime.
//!
//! Vault and PDP I/O run on a small runtime the client owns, started at the first call: the
//! connection pool and tokens then live on a runtime the client controls whatever executor
//! polls the caller's future, and blocking calls work inside and outside a runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use tokio::runtime::{Handle, Runtime};

use crate::Error;

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
