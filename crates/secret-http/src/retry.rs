//! The retry policy: jittered exponential backoff, and what may be sent again.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use crate::{HttpClient, HttpError, Request, Response};

/// The statuses that mean "try again later": 429, 500, 502, 503, 504.
pub const RETRYABLE_STATUSES: [u16; 5] = [429, 500, 502, 503, 504];

/// How often and how patiently [`HttpClient::send_retrying`] tries.
///
/// ```
/// use std::time::Duration;
/// use secret_http::RetryPolicy;
///
/// let policy = RetryPolicy::attempts(5).with_delays(Duration::from_millis(50), Duration::from_secs(1));
/// assert_eq!((policy.attempts, policy.jitter), (5, true));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, including the first (0 counts as 1). Default 3.
    pub attempts: u32,
    /// Delay before the second attempt; it doubles each time. Default 100 ms.
    pub base_delay: Duration,
    /// Upper bound of one delay. Default 2 s.
    pub max_delay: Duration,
    /// Add random jitter to each delay (default on, so clients do not retry in lockstep).
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// The defaults with this many attempts.
    #[must_use]
    pub fn attempts(attempts: u32) -> Self {
        Self {
            attempts,
            ..Self::default()
        }
    }

    /// Sets the base and maximum delay.
    #[must_use]
    pub fn with_delays(mut self, base_delay: Duration, max_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self.max_delay = max_delay;
        self
    }

    /// Turns jitter on or off.
    #[must_use]
    pub fn with_jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }
}

/// The last attempt's failure, with how many attempts were made.
#[derive(Debug, thiserror::Error)]
#[error("gave up after {attempts} attempt(s) [{}]", error.code())]
#[non_exhaustive]
pub struct RetryError {
    /// Attempts made, the failed last one included.
    pub attempts: u32,
    /// How the last attempt failed.
    #[source]
    pub error: HttpError,
}

impl RetryError {
    /// The last attempt's [`code`](HttpError::code).
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.error.code()
    }
}

impl HttpClient {
    /// [`send`](Self::send) with the retry policy. A response with one of
    /// [`RETRYABLE_STATUSES`] counts as a failure ([`HttpError::Status`]); its body is
    /// wiped.
    ///
    /// - An [idempotent](Request::with_idempotent) request is sent again after any
    ///   [transient](HttpError::is_transient) failure: connection errors, timeouts, bodies cut
    ///   off mid-response, 429 and 500/502/503/504.
    /// - Any other request is sent again only when it [surely was not
    ///   handled](HttpError::surely_not_handled): the connection failed (never sent), or 429
    ///   or 503. A login that may have been handled is not sent twice: it may have consumed a
    ///   single-use credential.
    /// - TLS failures, `TOO_LARGE` and other statuses are never retried.
    /// - With a [deadline](Request::with_deadline), no retry starts whose backoff would end
    ///   after it.
    /// - Each attempt is its own `http_request` span; a resent one carries
    ///   `http.request.resend_count` (1 for the second attempt). The response tells how many
    ///   attempts it took ([`Response::attempts`]).
    ///
    /// # Errors
    /// [`RetryError`]: the last attempt's [`HttpError`] and the attempt count.
    pub async fn send_retrying(
        &self,
        request: &Request,
        policy: &RetryPolicy,
    ) -> Result<Response, RetryError> {
        let attempts = AtomicU32::new(0);
        let mut backoff = ExponentialBuilder::new()
            .with_min_delay(policy.base_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.attempts.saturating_sub(1) as usize);
        if policy.jitter {
            backoff = backoff.with_jitter();
        }
        let deadline = request.deadline;
        let result = (|| async {
            // The attempts before this one: its `http.request.resend_count`.
            let resend_count = attempts.fetch_add(1, Ordering::Relaxed);
            let response = self.attempt(request, resend_count).await?;
            let status = response.status().as_u16();
            if RETRYABLE_STATUSES.contains(&status) {
                return Err(HttpError::Status { status });
            }
            Ok(response)
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|error: &HttpError| {
            if request.idempotent {
                error.is_transient()
            } else {
                error.surely_not_handled()
            }
        })
        .adjust(|_, delay| delay.filter(|delay| deadline.is_none_or(|d| *delay < d.remaining())))
        .notify(|error, delay| {
            tracing::debug!(
                client = self.name,
                attempt = attempts.load(Ordering::Relaxed),
                error = error.code(),
                status = error.status(),
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "retrying"
            );
        })
        .await;
        let attempts = attempts.into_inner();
        match result {
            Ok(mut response) => {
                response.attempts = attempts;
                Ok(response)
            }
            Err(error) => Err(RetryError { attempts, error }),
        }
    }
}
