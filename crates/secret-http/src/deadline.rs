//! [`Deadline`]: an overall time budget across attempts and retries.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::HttpError;

/// A point in time by which an operation must end, across every attempt and backoff.
///
/// Give it to a [`Request`](crate::Request) with
/// [`with_deadline`](crate::Request::with_deadline), or bound any future with
/// [`run`](Self::run).
///
/// ```
/// use std::time::Duration;
/// use secret_http::Deadline;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
/// let deadline = Deadline::after(Duration::from_millis(20));
/// let late = deadline.run(tokio::time::sleep(Duration::from_secs(5))).await;
/// assert_eq!(late.unwrap_err().code(), "TIMEOUT");
/// assert!(deadline.is_expired());
/// # });
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(Instant);

impl Deadline {
    /// `budget` from now.
    #[must_use]
    pub fn after(budget: Duration) -> Self {
        let now = Instant::now();
        // A budget too large for the clock is as good as none.
        Self(
            now.checked_add(budget)
                .unwrap_or(now + Duration::from_secs(86_400 * 365)),
        )
    }

    /// At `instant`.
    #[must_use]
    pub fn at(instant: std::time::Instant) -> Self {
        Self(Instant::from_std(instant))
    }

    /// The time left (zero once passed).
    #[must_use]
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Whether the deadline has passed.
    #[must_use]
    pub fn is_expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// Runs `future` until it ends or the deadline passes.
    ///
    /// # Errors
    /// [`HttpError::Timeout`] (with the time that was left at the start) when the deadline
    /// passes first; `future` is dropped.
    pub async fn run<F: Future>(self, future: F) -> Result<F::Output, HttpError> {
        let timeout = self.remaining();
        tokio::time::timeout_at(self.0, future)
            .await
            .map_err(|_| HttpError::Timeout { timeout })
    }
}
