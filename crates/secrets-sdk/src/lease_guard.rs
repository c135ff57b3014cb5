//! [`LeaseGuard`]: a database lease that belongs to one returned [`Secret`](crate::Secret)
//! (a `VaultClient` read of `db+cred://`), revoked when the last clone of that secret is
//! dropped unless the caller kept it ([`Secret::keep_lease`](crate::Secret::keep_lease)).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use secret_providers::{DbProvider, LeaseId};

/// Revokes its lease on drop, on the client's runtime (fire and forget: a vault that does not
/// answer delays nothing; the lease then ends at its TTL).
pub(crate) struct LeaseGuard {
    provider: DbProvider,
    id: LeaseId,
    runtime: tokio::runtime::Handle,
    kept: AtomicBool,
}

impl LeaseGuard {
    pub(crate) fn new(provider: DbProvider, id: LeaseId, runtime: tokio::runtime::Handle) -> Self {
        Self {
            provider,
            id,
            runtime,
            kept: AtomicBool::new(false),
        }
    }

    /// Leaves the lease to end at its TTL.
    pub(crate) fn keep(&self) {
        self.kept.store(true, Ordering::Relaxed);
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if self.kept.load(Ordering::Relaxed) {
            return;
        }
        let provider = self.provider.clone();
        let id = self.id.clone();
        // On a runtime that was shut down the task is dropped unrun: the lease ends at its TTL.
        self.runtime.spawn(async move {
            if let Err(error) = provider.revoke(&id).await {
                tracing::debug!(
                    code = error.code(),
                    "a request's lease could not be revoked"
                );
            }
        });
    }
}

impl fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseGuard")
            .field("kept", &self.kept.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
