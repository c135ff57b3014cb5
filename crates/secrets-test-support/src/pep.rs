//! PEP test doubles (feature `pep`): a PDP wrapper that counts its calls, an audit hook
//! that keeps every event, and the caller the suites read as ([`reader`] of [`TENANT`] with
//! a fresh [`jti`]).
//!
//! ```
//! use std::sync::Arc;
//!
//! use secret_pep::{DevAllowAll, Pep, PepConfig};
//! use secrets_test_support::pep::{Counting, RecordingAudit};
//!
//! let pdp = Counting::new(DevAllowAll::new());
//! let audit = Arc::new(RecordingAudit::default());
//! let pep = Pep::builder(PepConfig::new("t1", "secret".parse()?).with_environment("test"))
//!     .pdp(Arc::clone(&pdp))
//!     .audit(Arc::clone(&audit))
//!     .build()?;
//! # drop(pep);
//! assert_eq!((pdp.single(), pdp.batches()), (0, 0));
//! assert!(audit.take().is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use secret_pep::{
    AccessRequest, AuditEvent, AuditHook, BatchDecision, BatchRequest, ExecutionContext, Grant,
    PdpFuture, Pep, PepConfig, SecretPolicyService,
};

/// The tenant the test policies (`cerbos::policies`) grant readers on mount `secret`.
pub const TENANT: &str = "t1";

/// A reader of [`TENANT`] as the test policies expect one: subject `alice`, audience
/// `crud.secrets`, role `reader`, issuer `https://issuer.test`, and this `jti`.
///
/// ```
/// let ctx = secrets_test_support::pep::reader(secrets_test_support::pep::jti());
/// assert_eq!(ctx.roles, ["reader"]);
/// ```
pub fn reader(jti: impl Into<String>) -> ExecutionContext {
    ExecutionContext::new("alice")
        .with_aud(["crud.secrets"])
        .with_roles(["reader"])
        .with_issuer("https://issuer.test")
        .with_jti(jti)
}

/// PEP settings the suites share: [`TENANT`] on mount `secret`, a 300 ms negative cache
/// without jitter, no PDP yet.
pub fn pep_config() -> PepConfig {
    let mounts = match "secret".parse() {
        Ok(mounts) => mounts,
        Err(e) => panic!("mount list `secret`: {e}"),
    };
    PepConfig::new(TENANT, mounts).with_negative_cache(Duration::from_millis(300), Duration::ZERO)
}

/// A PEP over `pdp` with a [`RecordingAudit`] hook, and that hook.
///
/// # Panics
/// When `config` does not build a PEP (a test's own mistake).
pub fn pep_with<P: SecretPolicyService + 'static>(
    config: PepConfig,
    pdp: Arc<P>,
) -> (Pep, Arc<RecordingAudit>) {
    let audit = Arc::new(RecordingAudit::default());
    let pep = Pep::builder(config)
        .pdp(pdp)
        .audit(Arc::clone(&audit))
        .build();
    match pep {
        Ok(pep) => (pep, audit),
        Err(e) => panic!("test PEP config does not build: {e}"),
    }
}

/// A `jti` no other call in this process returns (`jti-0`, `jti-1`, …).
pub fn jti() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("jti-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Counts calls to the PDP it wraps: [`single`](Self::single) decisions and
/// [`batches`](Self::batches).
#[derive(Debug)]
pub struct Counting<P> {
    /// The PDP that decides.
    pub inner: P,
    /// `authorize_use` calls so far.
    pub single: AtomicUsize,
    /// `authorize_batch` calls so far.
    pub batch: AtomicUsize,
}

impl<P> Counting<P> {
    /// Wraps `inner`, shared so the test keeps a handle to the counts.
    pub fn new(inner: P) -> Arc<Self> {
        Arc::new(Self {
            inner,
            single: AtomicUsize::new(0),
            batch: AtomicUsize::new(0),
        })
    }

    /// `authorize_use` calls so far.
    pub fn single(&self) -> usize {
        self.single.load(Ordering::SeqCst)
    }

    /// `authorize_batch` calls so far.
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
    /// `AuditDecision::as_str`.
    pub decision: &'static str,
    /// The event's stable code.
    pub code: &'static str,
    /// The deny reason's code.
    pub reason: Option<&'static str>,
    /// The caller's subject.
    pub subject: Option<String>,
    /// The grant that served (or was refused).
    pub grant_id: Option<String>,
    /// Which use of the grant this read was.
    pub use_number: Option<u32>,
    /// The reference the hook publishes: the PEP's own, or a client's keyed one.
    pub resource_ref: Option<String>,
    /// The PEP's unkeyed placeholder, to check a keyed reference differs from it.
    pub unkeyed_ref: Option<String>,
    /// The event's `Debug` output, for leak checks.
    pub debug: String,
}

impl Recorded {
    /// The PEP's event as it is: both references are the PEP's own.
    pub fn from_pep(event: &AuditEvent<'_>) -> Self {
        let resource_ref = event.resource_ref();
        Self {
            decision: event.decision.as_str(),
            code: event.code,
            reason: event.reason.map(|r| r.code()),
            subject: event.subject.map(str::to_owned),
            grant_id: event.grant_id.map(str::to_owned),
            use_number: event.use_number,
            unkeyed_ref: resource_ref.clone(),
            resource_ref,
            debug: format!("{event:?}"),
        }
    }
}

/// Keeps every audit event, in order. An [`AuditHook`] itself; a client's own hook trait can
/// [`push`](Self::push) into it.
#[derive(Debug, Default)]
pub struct RecordingAudit {
    /// The events so far.
    pub events: Mutex<Vec<Recorded>>,
}

impl RecordingAudit {
    /// Appends one event.
    pub fn push(&self, event: Recorded) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }

    /// The events so far, leaving none.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// (decision, code) of each event taken.
    pub fn summary(&self) -> Vec<(&'static str, &'static str)> {
        self.take().iter().map(|e| (e.decision, e.code)).collect()
    }
}

impl AuditHook for RecordingAudit {
    fn record(&self, event: &AuditEvent<'_>) {
        self.push(Recorded::from_pep(event));
    }
}
