//! Captured log output, for the canary tests that assert a secret reaches no log line.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

/// A shared, growing buffer that a `tracing_subscriber::fmt` subscriber writes into.
///
/// Clones share the buffer; a closure returning a clone is a `MakeWriter`:
///
/// ```
/// use std::io::Write as _;
///
/// let logs = secrets_test_support::LogCapture::default();
/// let writer = logs.clone();
/// let make_writer = move || writer.clone(); // `.with_writer(make_writer)`
/// make_writer().write_all(b"INFO secret_read mount=secret\n")?;
/// assert!(logs.text().contains("secret_read"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Installs the process's global subscriber: every event and span at TRACE, with span
    /// enter/exit/close events and their fields, no colours, written into the returned
    /// capture. For a test binary (or a child process) of its own: a process has one.
    ///
    /// # Errors
    /// A global subscriber is already set.
    pub fn install_global() -> Result<Self, tracing::subscriber::SetGlobalDefaultError> {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)?;
        Ok(logs)
    }

    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The length only: what was captured may be what a test checks for leaks.
impl fmt::Debug for LogCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.0.lock().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("LogCapture").field("bytes", &len).finish()
    }
}
