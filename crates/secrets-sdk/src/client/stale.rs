//! Stale-if-error: the claimed refresh of an expired entry, run as a task, and how its
//! outcome settles the entry.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::in_span::InSpan as _;
use secret_providers::{SecretProvider, SecretValue};
use secret_uri::SecretUri;

use super::deadline::{AbortOnDrop, Deadline, RefreshClaim};
use super::read::{joined, spawn_audited};
use super::{Inner, STALE_REFRESH_WAIT, STALE_RETRY_INTERVAL};
use crate::Error;
use crate::secret::{Entry, Secret};

impl Inner {
    /// The claimed refresh of an entry in its stale window, run as a task on the client's
    /// runtime so that neither a slow backend nor a cancelled caller can hold the others up.
    /// The caller waits for it at most [`STALE_REFRESH_WAIT`] (and its deadline), then is
    /// served the stale value while the refresh goes on, bounded by the deadline. The task
    /// settles the entry whatever becomes of the caller (see [`Inner::settle_refresh`]) and
    /// releases the claim when it ends, however it ends.
    pub(super) async fn refresh_stale(
        self: &Arc<Self>,
        provider: &Arc<dyn SecretProvider>,
        uri: &SecretUri,
        claim: RefreshClaim,
        deadline: &Deadline,
    ) -> Result<Secret, Error> {
        let stale = Arc::clone(claim.entry());
        let read = spawn_audited(
            provider,
            deadline.handle(),
            uri,
            self.read_audit(uri),
            &self.metrics,
        );
        let weak = Arc::downgrade(self);
        let owned = uri.clone();
        let bound = deadline.clone();
        let metrics = self.metrics.clone();
        let refresh = deadline.handle().spawn(
            async move {
                let claim = claim;
                let outcome = bound.run(AbortOnDrop(read)).await;
                let result = joined(outcome, &owned, bound.limit(), &metrics);
                // A client dropped meanwhile needs no settling; the claim goes with the task.
                let inner = weak.upgrade().ok_or(Error::Closed)?;
                let settled = inner.settle_refresh(&owned, claim.entry(), result);
                drop(claim);
                settled
            }
            .in_span(tracing::Span::current()),
        );
        let wait = Deadline::new(
            deadline.handle().clone(),
            Instant::now(),
            STALE_REFRESH_WAIT.min(deadline.remaining()),
        );
        match wait.run(refresh).await {
            Some(Ok(settled)) => settled,
            Some(Err(_)) if self.closed.load(Ordering::SeqCst) => Err(Error::Closed),
            Some(Err(join)) => Err(Error::Runtime {
                reason: "the refresh task was cancelled",
                source: Some(Box::new(join)),
            }),
            None => {
                tracing::debug!("refresh still running; serving the stale value meanwhile");
                Ok(Secret(stale))
            }
        }
    }

    /// The end of a refresh of `stale`: a new value replaces it; a transient failure (the
    /// deadline included) serves it and holds off the backend for [`STALE_RETRY_INTERVAL`];
    /// any other answer of the provider (`NOT_FOUND` after a deletion …) removes it.
    fn settle_refresh(
        &self,
        uri: &SecretUri,
        stale: &Arc<Entry>,
        result: Result<SecretValue, Error>,
    ) -> Result<Secret, Error> {
        let key = uri.as_str();
        match result {
            Ok(value) => {
                let entry = Arc::new(self.entry(uri, value));
                self.store(key, &entry);
                Ok(Secret(entry))
            }
            Err(error) => {
                let now = Instant::now();
                if error.is_transient() && now < stale.stale_until {
                    let retry = STALE_RETRY_INTERVAL.min(stale.stale_until - now);
                    stale
                        .retry_after
                        .store(self.nanos(now + retry), Ordering::Relaxed);
                    tracing::warn!(
                        code = error.code(),
                        "backend unavailable; serving a stale value"
                    );
                    return Ok(Secret(Arc::clone(stale)));
                }
                // Only the provider's answer can retire a value; a runtime failure cannot.
                if error.provider_error().is_some() && !error.is_transient() {
                    self.cache
                        .remove_if(key, |cached| Arc::ptr_eq(cached, stale));
                }
                Err(error)
            }
        }
    }
}
