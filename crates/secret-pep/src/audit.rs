//! The PEP's audit trail: one event per decision (granted or refused), per read (completed or
//! failed) and per URI a client refuses before asking. Events are made by the
//! [`Auditor`] of `secret-audit`, so they are already keyed (`resource_ref`, never the URI) and
//! never carry a value, a token, a `jti` or a binding. With auditing off (the default) nothing
//! is built.

use secret_audit::{AuditEvent, Auditor, EventType, Outcome, ResourceRef};
use secret_uri::SecretUri;

use crate::{DenyReason, ExecutionContext, PepError};

/// An event of `kind` about `uri` for `ctx`'s caller, with the caller's ids (`resource_ref`:
/// the URI's reference when an earlier event of the request computed it).
pub(crate) fn event(
    auditor: &Auditor,
    tenant: &str,
    kind: EventType,
    ctx: &ExecutionContext,
    uri: Option<&SecretUri>,
    resource_ref: Option<ResourceRef>,
) -> AuditEvent {
    let mut event = auditor.event_keyed(kind, tenant, ctx.subject_str(), uri, resource_ref);
    if let Some(id) = &ctx.correlation_id {
        event = event.with_correlation_id(id.clone());
    }
    if let Some(id) = &ctx.client_id {
        // Hashed with the subject: for client-credentials tokens it is the subject.
        event = event.with_client_id(auditor.identity(id));
    }
    if let Some(id) = &ctx.workflow_run_id {
        event = event.with_workflow_run_id(id.clone());
    }
    if let Some(id) = &ctx.node_id {
        event = event.with_node_id(id.clone());
    }
    if let Some(id) = &ctx.system_id {
        event = event.with_system_id(id.clone());
    }
    event
}

/// A refusal's outcome: `ERROR` when nothing was decided (the PDP or the shared state store
/// was unavailable, a configuration or provider failure), else `DENY`.
pub(crate) fn refusal(error: &PepError) -> Outcome {
    match error {
        PepError::PdpUnavailable { .. }
        | PepError::StateStoreUnavailable { .. }
        | PepError::Provider { .. }
        | PepError::Config { .. } => Outcome::Error,
        _ => Outcome::Deny,
    }
}

/// A refused decision's event: the error's code and deny reason.
pub(crate) fn denied(event: AuditEvent, error: &PepError) -> AuditEvent {
    let event = event.with_outcome(refusal(error)).with_code(error.code());
    match error.deny_reason() {
        Some(reason) => event.with_reason(DenyReason::code(reason)),
        None => event,
    }
}
