//! The audit hook: one non-leaky event per decision and per read.

use std::fmt;

use ring::digest::{SHA256, digest};
use secret_uri::SecretUri;

use crate::DenyReason;

/// Receives one [`AuditEvent`] per denied decision and per completed read.
///
/// Called inline on the request path: implementations must not block (hand the event to a
/// queue). The audit crate fills this in (Kafka, keyed `resource_ref`s); [`NoopAudit`] is the
/// default.
pub trait AuditHook: Send + Sync + fmt::Debug {
    /// Records one event. It carries no secret value, token, `jti` or binding.
    fn record(&self, event: &AuditEvent<'_>);
}

impl<H: AuditHook + ?Sized> AuditHook for std::sync::Arc<H> {
    fn record(&self, event: &AuditEvent<'_>) {
        (**self).record(event);
    }
}

/// Discards every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopAudit;

impl AuditHook for NoopAudit {
    fn record(&self, _event: &AuditEvent<'_>) {}
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditDecision {
    /// Authorized and read.
    Permit,
    /// Refused: `AUTHZ_DENIED`, `BINDING_DRIFT`, or a URI / tenant-mount error.
    Deny,
    /// Undecided (`PDP_UNAVAILABLE`), or authorized but the provider read failed.
    Error,
}

impl AuditDecision {
    /// `"PERMIT"`, `"DENY"` or `"ERROR"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Permit => "PERMIT",
            Self::Deny => "DENY",
            Self::Error => "ERROR",
        }
    }
}

/// One audited decision or read. It never carries a secret value, a token, a `jti` or a
/// sender-binding value. `Debug` shows the URI redacted (`scheme://mount/…`) with its
/// [`resource_ref`](Self::resource_ref), so logging an event does not log the URI.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct AuditEvent<'a> {
    /// The tenant the PEP serves.
    pub tenant: &'a str,
    /// The subject, when the context named one.
    pub subject: Option<&'a str>,
    /// The canonical URI, when it parsed. Hooks should publish a keyed reference to it (see
    /// [`Self::resource_ref`]) rather than the URI itself.
    pub uri: Option<&'a SecretUri>,
    /// Permit, deny or error.
    pub decision: AuditDecision,
    /// `OK`, or the stable error code (`AUTHZ_DENIED`, `NOT_FOUND`, `TENANT_MOUNT_MISMATCH`, …).
    pub code: &'static str,
    /// The reason of an `AUTHZ_DENIED`.
    pub reason: Option<DenyReason>,
    /// The grant used.
    pub grant_id: Option<&'a str>,
    /// The PDP's decision id.
    pub decision_id: Option<&'a str>,
    /// The policy (version) that decided.
    pub policy_version: Option<&'a str>,
    /// Which use of the grant this read was (1-based).
    pub use_number: Option<u32>,
    /// The OAuth client.
    pub client_id: Option<&'a str>,
    /// The correlation id.
    pub correlation_id: Option<&'a str>,
    /// The workflow run.
    pub workflow_run_id: Option<&'a str>,
    /// The workflow node.
    pub node_id: Option<&'a str>,
    /// The calling system.
    pub system_id: Option<&'a str>,
}

impl fmt::Debug for AuditEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditEvent")
            .field("tenant", &self.tenant)
            .field("subject", &self.subject)
            .field("uri", &self.uri.map(|u| u.redacted().to_string()))
            .field("resource_ref", &self.resource_ref())
            .field("decision", &self.decision)
            .field("code", &self.code)
            .field("reason", &self.reason)
            .field("grant_id", &self.grant_id)
            .field("decision_id", &self.decision_id)
            .field("policy_version", &self.policy_version)
            .field("use_number", &self.use_number)
            .field("client_id", &self.client_id)
            .field("correlation_id", &self.correlation_id)
            .field("workflow_run_id", &self.workflow_run_id)
            .field("node_id", &self.node_id)
            .field("system_id", &self.system_id)
            .finish()
    }
}

impl AuditEvent<'_> {
    /// A short, stable reference to the URI: the first 16 bytes of SHA-256 over the
    /// canonical form, hex. A placeholder until the audit crate's keyed (HMAC with the
    /// tenant salt) `resource_ref`: unkeyed, it can be confirmed by anyone who guesses the URI.
    #[must_use]
    pub fn resource_ref(&self) -> Option<String> {
        let uri = self.uri?;
        let hash = digest(&SHA256, uri.as_str().as_bytes());
        Some(
            hash.as_ref()[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ref_is_stable_hex() {
        let uri = SecretUri::parse("openbao+kv2://secret/app#k").unwrap();
        let event = AuditEvent {
            tenant: "t",
            subject: None,
            uri: Some(&uri),
            decision: AuditDecision::Deny,
            code: "AUTHZ_DENIED",
            reason: Some(DenyReason::PdpDeny),
            grant_id: None,
            decision_id: None,
            policy_version: None,
            use_number: None,
            client_id: None,
            correlation_id: None,
            workflow_run_id: None,
            node_id: None,
            system_id: None,
        };
        let reference = event.resource_ref().unwrap();
        assert_eq!(reference.len(), 32);
        assert_eq!(event.resource_ref(), Some(reference));
        assert_eq!(AuditDecision::Deny.as_str(), "DENY");
        let shown = format!("{event:?}");
        assert!(
            shown.contains("openbao+kv2://secret/…") && !shown.contains("#k"),
            "{shown}"
        );
    }
}
