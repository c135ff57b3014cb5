//! [`LeaseGuard`]: a database lease that belongs to one returned [`Secret`](crate::Secret)
//! (a `VaultClient` read of `db+cred://`): renewed while the secret lives (at about two
//! thirds of each duration granted, up to the role's `max_ttl`), revoked when the last clone
//! of that secret is dropped unless the caller kept it
//! ([`Secret::keep_lease`](crate::Secret::keep_lease)).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use std::time::Duration;

use secret_providers::{DbProvider, LeaseId};

/// The shortest pause between two renewals, whatever the vault grants.
const MIN_STEP: Duration = Duration::from_millis(200);

/// Revokes its lease on drop, on the client's runtime (fire and forget: a vault that does not
/// answer delays nothing; the lease then ends at its TTL).
pub(crate) struct LeaseGuard {
    provider: DbProvider,
    id: LeaseId,
    runtime: tokio::runtime::Handle,
    kept: AtomicBool,
    renewer: tokio::task::AbortHandle,
}

impl LeaseGuard {
    /// The guard of a lease issued for `ttl`, renewable or not; its renewer starts now.
    pub(crate) fn new(
        provider: DbProvider,
        id: LeaseId,
        ttl: Duration,
        renewable: bool,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        let renewer = runtime
            .spawn(renew(provider.clone(), id.clone(), ttl, renewable))
            .abort_handle();
        Self {
            provider,
            id,
            runtime,
            kept: AtomicBool::new(false),
            renewer,
        }
    }

    /// Leaves the lease to end at its TTL.
    pub(crate) fn keep(&self) {
        self.kept.store(true, Ordering::Relaxed);
    }
}

/// Renews the lease at about two thirds of each grant (jittered ±10 %) until the vault caps
/// it (the role's `max_ttl`) or refuses; a request's lease is not rotated (the caller reads
/// again for new credentials).
async fn renew(provider: DbProvider, id: LeaseId, ttl: Duration, renewable: bool) {
    if !renewable {
        return;
    }
    let mut granted = ttl;
    loop {
        let pause = granted.mul_f64(2.0 / 3.0 * (0.9 + 0.2 * fastrand::f64()));
        tokio::time::sleep(pause.max(MIN_STEP)).await;
        match provider.renew(&id, ttl).await {
            Ok(renewal) if !renewal.capped => granted = renewal.ttl,
            Ok(_) => return,
            Err(error) if error.is_transient() => granted /= 2,
            Err(error) => {
                tracing::debug!(code = error.code(), "a request's lease cannot be renewed");
                return;
            }
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.renewer.abort();
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
