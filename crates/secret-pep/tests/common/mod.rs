//! Shared fixtures for secret-pep's integration tests.
#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[cfg(feature = "authzen")]
use secret_pep::{AuthzenClient, AuthzenConfig, AuthzenDialect};
use secret_pep::{ExecutionContext, Pep, PepConfig, SecretPolicyService};
use secret_uri::AllowedMounts;
pub use secrets_test_support::cerbos::policies;
pub use secrets_test_support::pep::{Counting, Recorded, RecordingAudit};

pub const TENANT: &str = "t1";

/// A reader of tenant t1 with the right audience and a fresh `jti`.
pub fn reader(jti: impl Into<String>) -> ExecutionContext {
    ExecutionContext::new("alice")
        .with_aud(["crud.secrets"])
        .with_roles(["reader"])
        .with_issuer("https://issuer.test")
        .with_jti(jti)
}

/// A unique `jti` per call within a test binary.
pub fn jti() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("jti-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// PEP settings for tests: tenant t1 on mount `secret`, a short negative cache without jitter.
pub fn config() -> PepConfig {
    PepConfig::new(TENANT, AllowedMounts::from_csv("secret"))
        .with_negative_cache(Duration::from_millis(300), Duration::ZERO)
}

#[cfg(feature = "authzen")]
/// The AuthZEN client for a Cerbos at `addr`: Cerbos dialect, short timeout, a breaker that
/// opens after 3 failures for 300 ms.
pub fn cerbos_client(addr: &str) -> AuthzenClient {
    AuthzenClient::new(
        AuthzenConfig::new(addr)
            .with_dialect(AuthzenDialect::Cerbos)
            .with_timeout(Duration::from_secs(2))
            .with_breaker(3, Duration::from_millis(300)),
    )
    .expect("valid AuthZEN config")
}

#[cfg(feature = "authzen")]
/// A PEP (test config) over the AuthZEN PDP `authzen` describes.
pub fn authzen_pep(authzen: AuthzenConfig) -> Pep {
    Pep::new(config().with_pdp(secret_pep::PdpSettings::AuthZen(authzen))).expect("valid PEP")
}

/// A PEP over `pdp` with a recording audit hook.
pub fn pep_with<P: SecretPolicyService + 'static>(
    config: PepConfig,
    pdp: Arc<P>,
) -> (Pep, Arc<RecordingAudit>) {
    let audit = Arc::new(RecordingAudit::default());
    let pep = Pep::builder(config)
        .pdp(pdp)
        .audit(Arc::clone(&audit))
        .build()
        .expect("valid PEP config");
    (pep, audit)
}
