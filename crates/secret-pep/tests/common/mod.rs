//! Shared fixtures for secret-pep's integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secret_pep::{
    AccessRequest, AuditEvent, AuditHook, BatchDecision, BatchRequest, ExecutionContext, Grant,
    PdpFuture, Pep, PepConfig, SecretPolicyService,
};
#[cfg(feature = "authzen")]
use secret_pep::{AuthzenClient, AuthzenConfig, AuthzenDialect};
use secret_uri::AllowedMounts;

pub const TENANT: &str = "t1";

/// `tests/policies`, the Cerbos policy folder.
pub fn policies() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/policies")
}

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

/// Counts calls to the PDP it wraps.
#[derive(Debug)]
pub struct Counting<P> {
    pub inner: P,
    pub single: AtomicUsize,
    pub batch: AtomicUsize,
}

impl<P> Counting<P> {
    pub fn new(inner: P) -> Arc<Self> {
        Arc::new(Self {
            inner,
            single: AtomicUsize::new(0),
            batch: AtomicUsize::new(0),
        })
    }

    pub fn single(&self) -> usize {
        self.single.load(Ordering::SeqCst)
    }

    pub fn batches(&self) -> usize {
        self.batch.load(Ordering::SeqCst)
    }
}

impl<P: SecretPolicyService> SecretPolicyService for Counting<P> {
    fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
        self.single.fetch_add(1, Ordering::SeqCst);
        self.inner.authorize_use(request)
    }

    fn authorize_batch<'a>(
        &'a self,
        request: &'a BatchRequest<'a>,
    ) -> PdpFuture<'a, Vec<BatchDecision>> {
        self.batch.fetch_add(1, Ordering::SeqCst);
        self.inner.authorize_batch(request)
    }
}

/// One audit event, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub decision: &'static str,
    pub code: &'static str,
    pub reason: Option<&'static str>,
    pub subject: Option<String>,
    pub grant_id: Option<String>,
    pub resource_ref: Option<String>,
    pub debug: String,
}

/// Keeps every audit event.
#[derive(Debug, Default)]
pub struct RecordingAudit {
    pub events: Mutex<Vec<Recorded>>,
}

impl RecordingAudit {
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

impl AuditHook for RecordingAudit {
    fn record(&self, event: &AuditEvent<'_>) {
        self.events.lock().unwrap().push(Recorded {
            decision: event.decision.as_str(),
            code: event.code,
            reason: event.reason.map(|r| r.code()),
            subject: event.subject.map(str::to_owned),
            grant_id: event.grant_id.map(str::to_owned),
            resource_ref: event.resource_ref(),
            debug: format!("{event:?}"),
        });
    }
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
