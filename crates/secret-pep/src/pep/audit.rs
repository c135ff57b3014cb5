//! The PEP's audit calls: a decision's event (granted, refused), a read's, a refusal a client
//! made before asking, and the caller's ids on each (`crate::audit` builds the events).

use std::sync::Arc;
use std::time::Duration;

use secret_audit::{AuditEvent, Auditor, EventType, Outcome, ResourceRef};
use secret_uri::SecretUri;

use super::{Authorized, Pep};
use crate::{DenyReason, ExecutionContext, Grant, PepError, audit};

impl Pep {
    /// Audits a granted decision (`latency`: how long deciding took); the URI's reference,
    /// for the read's event.
    pub(super) fn audit_granted(
        &self,
        ctx: &ExecutionContext,
        uri: &SecretUri,
        grant: &Grant,
        use_number: u32,
        latency: Duration,
    ) -> Option<ResourceRef> {
        let auditor = &self.inner.auditor;
        if !auditor.is_enabled() {
            return None;
        }
        let event = self
            .event(EventType::AccessGranted, ctx, Some(uri))
            .with_grant_id(grant.grant_id.clone())
            .with_use_number(use_number)
            .with_latency(latency);
        let resource_ref = event.resource_ref().copied();
        auditor.publish(with_decision(event, grant));
        resource_ref
    }

    /// Audits a read after [`Self::authorize`]: `error_code` is `None` when the read
    /// succeeded, else the provider's code (e.g. `Some("NOT_FOUND")`).
    pub fn audit_read(
        &self,
        ctx: &ExecutionContext,
        authorized: &Authorized,
        error_code: Option<&'static str>,
    ) {
        let auditor = &self.inner.auditor;
        if !auditor.is_enabled() {
            return;
        }
        let grant = authorized.grant();
        let (kind, outcome) = match error_code {
            None => (EventType::Read, Outcome::Permit),
            Some(_) => (EventType::ReadError, Outcome::Error),
        };
        let event = self
            .event_keyed(kind, ctx, Some(&authorized.uri), authorized.resource_ref)
            .with_outcome(outcome)
            .with_code(error_code.unwrap_or("OK"))
            .with_grant_id(grant.grant_id.clone())
            .with_use_number(authorized.use_number)
            .with_latency(authorized.granted_at.elapsed());
        auditor.publish(with_decision(event, grant));
    }

    /// Audits a URI a client refused before asking the PEP (`UNSUPPORTED_PROVIDER`,
    /// `UNKNOWN_PARAMETER`, …), so that no refusal leaves no trace. `uri` is `None` when the
    /// text did not parse. Counted as a decision too (`secrets.pep.decisions`, `outcome =
    /// deny`, `reason = code`), in a `pep_decision` span, whether auditing is on or not.
    pub fn audit_refused(
        &self,
        ctx: &ExecutionContext,
        uri: Option<&SecretUri>,
        code: &'static str,
    ) {
        let span = super::telemetry::decision_span();
        if let Some(uri) = uri {
            self.describe(&span, uri);
        }
        self.count(&span, ("deny", code));
        let auditor = &self.inner.auditor;
        if auditor.is_enabled() {
            let event = self
                .event(EventType::AccessDenied, ctx, uri)
                .with_outcome(Outcome::Deny)
                .with_code(code);
            auditor.publish(event);
        }
    }

    /// The auditor events go to (disabled unless [`PepBuilder::auditor`](crate::PepBuilder::auditor) gave one).
    #[must_use]
    pub fn auditor(&self) -> &Arc<Auditor> {
        &self.inner.auditor
    }

    pub(super) fn event(
        &self,
        kind: EventType,
        ctx: &ExecutionContext,
        uri: Option<&SecretUri>,
    ) -> AuditEvent {
        self.event_keyed(kind, ctx, uri, None)
    }

    fn event_keyed(
        &self,
        kind: EventType,
        ctx: &ExecutionContext,
        uri: Option<&SecretUri>,
        resource_ref: Option<ResourceRef>,
    ) -> AuditEvent {
        audit::event(
            &self.inner.auditor,
            &self.inner.config.tenant_id,
            kind,
            ctx,
            uri,
            resource_ref,
        )
    }

    /// Audits a refused decision; the URI's reference, when the event has one.
    pub(super) fn audit_error(
        &self,
        ctx: &ExecutionContext,
        uri: Option<&SecretUri>,
        error: &PepError,
    ) -> Option<ResourceRef> {
        tracing::debug!(
            code = error.code(),
            reason = error.deny_reason().map(DenyReason::code),
            uri = %uri.map(|u| u.redacted().to_string()).unwrap_or_default(),
            correlation_id = ctx.correlation_id.as_deref(),
            "secret read refused"
        );
        let auditor = &self.inner.auditor;
        if !auditor.is_enabled() {
            return None;
        }
        let event = self.event(EventType::AccessDenied, ctx, uri);
        let resource_ref = event.resource_ref().copied();
        auditor.publish(audit::denied(event, error));
        resource_ref
    }
}

/// The PDP's decision id and policy version of `grant`, on `event`.
fn with_decision(mut event: AuditEvent, grant: &Grant) -> AuditEvent {
    if let Some(id) = &grant.decision_id {
        event = event.with_decision_id(id.clone());
    }
    if let Some(version) = &grant.policy_version {
        event = event.with_policy_version(version.clone());
    }
    event
}
