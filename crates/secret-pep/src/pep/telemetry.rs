//! The PEP's spans and metrics: per decision a `pep_decision` span and one
//! `secrets.pep.decisions` count (`outcome`, `reason`); per PDP call a `pdp_call` span and one
//! `secrets.pdp.duration` point (`decision`).
//!
//! Labels and fields come from closed sets and stable codes only: never the subject, the
//! `jti`, a token, the URI or its path. A span names the provider, the mount (when the
//! tenant allows it) and the keyed `resource_ref` when the audit computed one anyway.

use std::time::{Duration, Instant};

use secret_audit::{Outcome, ResourceRef};
use secret_telemetry::names;
use secret_uri::SecretUri;
use tracing::Span;
use tracing::field::{Empty, display};

use super::Pep;
use crate::pdp::{BatchDecision, BatchFailure};
use crate::{DenyReason, PepError, audit};

/// A decision's `outcome`: one of [`names::PEP_OUTCOMES`].
pub(super) const PERMIT: &str = "permit";
const DENY: &str = "deny";
const ERROR: &str = "error";

/// What served a permit: one of [`names::PERMIT_REASONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// A grant the PEP already held (warm, or decided for another caller moments ago).
    Grant,
    /// A PDP decision made for this call.
    Pdp,
}

impl Source {
    pub(super) const fn reason(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Pdp => "pdp",
        }
    }
}

/// A refusal's `outcome` and `reason`: `error` when nothing was decided (as the audit's
/// outcome), else `deny`; the deny reason's code, else the error's code.
pub(super) fn refusal(error: &PepError) -> (&'static str, &'static str) {
    let outcome = match audit::refusal(error) {
        Outcome::Error => ERROR,
        _ => DENY,
    };
    let reason = error
        .deny_reason()
        .map_or_else(|| error.code(), DenyReason::code);
    (outcome, reason)
}

/// A batch item's `outcome` and `reason` (a permit's from `source`).
pub(super) fn batch_failure(failure: BatchFailure) -> (&'static str, &'static str) {
    match failure {
        BatchFailure::Deny { reason } => (DENY, reason.code()),
        _ => (ERROR, failure.code()),
    }
}

/// The worse of two labelled outcomes (`error` over `deny` over `permit`; the first of equals).
pub(super) fn worse(
    a: Option<(&'static str, &'static str)>,
    b: (&'static str, &'static str),
) -> (&'static str, &'static str) {
    let rank = |outcome: &str| match outcome {
        ERROR => 2,
        DENY => 1,
        _ => 0,
    };
    match a {
        Some(a) if rank(a.0) >= rank(b.0) => a,
        _ => b,
    }
}

/// A `pep_decision` span (DEBUG), its fields filled as the decision goes.
pub(super) fn decision_span() -> Span {
    tracing::debug_span!(
        names::span::PEP_DECISION,
        outcome = Empty,
        reason = Empty,
        provider = Empty,
        mount = Empty,
        resource_ref = Empty,
        items = Empty,
    )
}

/// A `pdp_call` span (DEBUG). `breaker` is filled by a PDP client that has one (AuthZEN).
fn pdp_span(items: Option<usize>) -> Span {
    tracing::debug_span!(
        names::span::PDP_CALL,
        decision = Empty,
        breaker = Empty,
        latency_ms = Empty,
        cause = Empty,
        batch_size = items,
    )
}

/// A single decision's answer as a `decision` label.
fn answer(result: &Result<crate::Grant, PepError>) -> &'static str {
    match result {
        Ok(_) => PERMIT,
        Err(error) if error.deny_reason().is_some() => DENY,
        Err(_) => ERROR,
    }
}

/// A batch's answer: the worst of its items (`error` for a failed call, or fewer answers
/// than questions).
fn batch_answer(result: &Result<Vec<BatchDecision>, PepError>, asked: usize) -> &'static str {
    let Ok(decisions) = result else {
        return ERROR;
    };
    if decisions.len() < asked {
        return ERROR;
    }
    let mut worst = PERMIT;
    for decision in decisions {
        match decision.outcome {
            Ok(_) => {}
            Err(BatchFailure::Deny { .. }) => worst = DENY,
            Err(_) => return ERROR,
        }
    }
    worst
}

impl Pep {
    /// Names `uri`'s provider (and its mount, when the tenant allows it) on `span`.
    pub(super) fn describe(&self, span: &Span, uri: &SecretUri) {
        if span.is_disabled() {
            return;
        }
        span.record("provider", uri.provider().as_str());
        if self.inner.config.allowed_mounts.contains(uri.mount()) {
            span.record("mount", uri.mount());
        }
    }

    /// Counts a decision and writes it on its span.
    pub(super) fn count(&self, span: &Span, (outcome, reason): (&'static str, &'static str)) {
        self.inner.metrics.pep_decision(outcome, reason);
        // A disabled span still looks each field up by name: skip that on the hot path.
        if !span.is_disabled() {
            span.record("outcome", outcome);
            span.record("reason", reason);
        }
    }

    /// Counts a permit served by `source`.
    pub(super) fn count_permit(&self, span: &Span, source: Source) {
        self.count(span, (PERMIT, source.reason()));
    }

    /// Counts a refusal.
    pub(super) fn count_refusal(&self, span: &Span, error: &PepError) {
        self.count(span, refusal(error));
    }

    /// The audit's keyed reference on `span`.
    pub(super) fn record_ref(span: &Span, resource_ref: Option<&ResourceRef>) {
        if let Some(resource_ref) = resource_ref.filter(|_| !span.is_disabled()) {
            span.record("resource_ref", display(resource_ref));
        }
    }

    /// One PDP decision, in a `pdp_call` span, timed into `secrets.pdp.duration`.
    pub(super) async fn ask_pdp(
        &self,
        request: &crate::pdp::AccessRequest<'_>,
    ) -> Result<crate::Grant, PepError> {
        use tracing::Instrument as _;
        let span = pdp_span(None);
        let started = Instant::now();
        let result = self
            .inner
            .pdp
            .authorize_use(request)
            .instrument(span.clone())
            .await;
        self.pdp_answered(
            &span,
            answer(&result),
            started.elapsed(),
            result.as_ref().err(),
        );
        result
    }

    /// One PDP batch of `asked` questions, in a `pdp_call` span, timed into
    /// `secrets.pdp.duration`.
    pub(super) async fn ask_pdp_batch(
        &self,
        request: &crate::pdp::BatchRequest<'_>,
        asked: usize,
    ) -> Result<Vec<BatchDecision>, PepError> {
        use tracing::Instrument as _;
        let span = pdp_span(Some(asked));
        let started = Instant::now();
        let result = self
            .inner
            .pdp
            .authorize_batch(request)
            .instrument(span.clone())
            .await;
        let decision = batch_answer(&result, asked);
        self.pdp_answered(&span, decision, started.elapsed(), result.as_ref().err());
        result
    }

    fn pdp_answered(
        &self,
        span: &Span,
        decision: &'static str,
        elapsed: Duration,
        error: Option<&PepError>,
    ) {
        self.inner.metrics.pdp_call(decision, elapsed);
        if span.is_disabled() {
            return;
        }
        span.record("decision", decision);
        span.record("latency_ms", elapsed.as_secs_f64() * 1000.0);
        if let Some(PepError::PdpUnavailable { cause, .. }) = error {
            span.record("cause", cause.as_str());
        }
    }
}
