//! PEP test doubles (feature `pep`): a PDP wrapper that counts its calls, an audit sink
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
//!     .auditor(audit.auditor())
//!     .build()?;
//! # drop(pep);
//! assert_eq!((pdp.single(), pdp.batches()), (0, 0));
//! assert!(audit.take().is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use secret_audit::{
    AuditConfig, AuditEvent, AuditKey, AuditSink, Auditor, CloseReport, EventType, SinkStats,
};
use secret_pep::{
    AccessRequest, BatchDecision, BatchRequest, ExecutionContext, Grant, PdpFuture, Pep, PepConfig,
    SecretPolicyService,
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

/// A PEP over `pdp` auditing into a [`RecordingAudit`], and that sink.
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
        .auditor(audit.auditor())
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

/// The audit salt the test support keys events with ([`RecordingAudit::auditor`]).
pub const AUDIT_SALT: &str = "test-support-audit-salt-0123456789";

/// One audit event, in the shape the suites assert on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The event type (`secret.access.granted`, `secret.read`, …).
    pub kind: &'static str,
    /// The outcome: `PERMIT`, `DENY` or `ERROR`.
    pub decision: &'static str,
    /// The event's stable code (`OK` or an error code).
    pub code: &'static str,
    /// The deny reason's code.
    pub reason: Option<&'static str>,
    /// The caller's subject (as given, or keyed-hashed).
    pub subject: Option<String>,
    /// The grant that served (or was refused).
    pub grant_id: Option<String>,
    /// Which use of the grant this was.
    pub use_number: Option<u32>,
    /// The keyed reference to the URI.
    pub resource_ref: Option<String>,
    /// The event's `Debug` output and OCSF JSON, for leak checks.
    pub debug: String,
}

impl Recorded {
    /// The event as the suites see it.
    pub fn from_event(event: &AuditEvent) -> Self {
        Self {
            kind: event.kind().as_str(),
            decision: event.outcome().as_str(),
            code: intern(event.code()),
            reason: event.reason().map(intern),
            subject: event.subject().map(str::to_owned),
            grant_id: event.grant_id().map(str::to_owned),
            use_number: event.use_number(),
            resource_ref: event.resource_ref().map(|r| r.as_str().to_owned()),
            debug: format!(
                "{event:?} {}",
                String::from_utf8_lossy(&secret_audit::to_ocsf_bytes(event))
            ),
        }
    }

    /// Whether this is a decision event (granted or denied), not a read.
    pub fn is_decision(&self) -> bool {
        self.kind == EventType::AccessGranted.as_str()
            || self.kind == EventType::AccessDenied.as_str()
    }
}

/// Codes are a small fixed vocabulary: each distinct one is kept once for the process, so
/// tests compare `&'static str`s.
fn intern(code: &str) -> &'static str {
    static CODES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut codes = CODES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = codes.iter().find(|known| **known == code) {
        return known;
    }
    let leaked: &'static str = Box::leak(code.to_owned().into_boxed_str());
    codes.push(leaked);
    leaked
}

/// Keeps every audit event, in order: an [`AuditSink`] behind an [`Auditor`] keyed with
/// [`AUDIT_SALT`] ([`auditor`](Self::auditor)).
#[derive(Debug, Default)]
pub struct RecordingAudit {
    /// The events so far.
    pub events: Mutex<Vec<AuditEvent>>,
}

impl RecordingAudit {
    /// An auditor publishing into this sink, keyed with [`AUDIT_SALT`].
    ///
    /// # Panics
    /// Never: the salt is long enough.
    pub fn auditor(self: &Arc<Self>) -> Arc<Auditor> {
        let key = match AuditKey::new(AUDIT_SALT.as_bytes(), None) {
            Ok(key) => key,
            Err(e) => panic!("test audit salt refused: {e}"),
        };
        let sink: Arc<dyn AuditSink> = Arc::clone(self) as Arc<dyn AuditSink>;
        Arc::new(Auditor::new(key, sink, &AuditConfig::default()))
    }

    /// The events so far, leaving none.
    pub fn take_events(&self) -> Vec<AuditEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The events so far as [`Recorded`], leaving none.
    pub fn take(&self) -> Vec<Recorded> {
        self.take_events()
            .iter()
            .map(Recorded::from_event)
            .collect()
    }

    /// The read events so far (not the decisions), leaving none.
    pub fn take_reads(&self) -> Vec<Recorded> {
        self.take()
            .into_iter()
            .filter(|e| !e.is_decision())
            .collect()
    }

    /// (decision, code) of each event taken.
    pub fn summary(&self) -> Vec<(&'static str, &'static str)> {
        self.take()
            .into_iter()
            .map(|e| (e.decision, e.code))
            .collect()
    }

    /// (decision, code) of each read event taken (decisions left out).
    pub fn read_summary(&self) -> Vec<(&'static str, &'static str)> {
        self.take_reads()
            .into_iter()
            .map(|e| (e.decision, e.code))
            .collect()
    }
}

impl AuditSink for RecordingAudit {
    fn publish(&self, event: AuditEvent) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }

    fn close(&self, _within: Duration) -> CloseReport {
        CloseReport::default()
    }

    fn stats(&self) -> SinkStats {
        SinkStats::default()
    }
}
