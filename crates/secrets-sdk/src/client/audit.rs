//! What `SecretsClient` audits: every backend read (`secret.read`, `secret.read.error`) and
//! one cache hit in `AUDIT_SAMPLE_CACHE_HIT_N` (`secret.read.cache_hit`), keyed with the
//! tenant salt; and how its spans name a secret (the keyed reference when a salt is set, else
//! the unkeyed 8-hex [`UriHash`]).

use std::sync::Arc;
use std::time::Instant;

use secret_audit::{Auditor, EventType, Outcome, UriHash};
use secret_providers::{ProviderError, SecretValue};
use secret_uri::SecretUri;

use super::Inner;

impl Inner {
    /// The audit of one backend read of `uri`, to finish inside the read's task; `None` when
    /// auditing is off.
    pub(super) fn read_audit(&self, uri: &SecretUri) -> Option<ReadAudit> {
        self.auditor.is_enabled().then(|| ReadAudit {
            auditor: Arc::clone(&self.auditor),
            tenant: Arc::clone(&self.tenant),
            uri: uri.clone(),
            started: Instant::now(),
            done: false,
        })
    }

    /// Audits a value served from the cache, one in `AUDIT_SAMPLE_CACHE_HIT_N`.
    #[inline]
    pub(super) fn audit_hit(&self, uri: &SecretUri) {
        if self.auditor.is_enabled() && self.auditor.sample_cache_hit() {
            let event = self
                .auditor
                .event(EventType::CacheHit, &self.tenant, None, Some(uri));
            self.auditor.publish(event);
        }
    }

    /// Names `uri` on `span`: its keyed `resource_ref` when a tenant salt is configured, else
    /// its unkeyed `uri_hash`.
    #[inline]
    pub(super) fn record_uri(&self, span: &tracing::Span, uri: &SecretUri) {
        if span.is_disabled() {
            return;
        }
        match &self.audit_key {
            Some(key) => {
                span.record(
                    "resource_ref",
                    tracing::field::display(key.resource_ref(uri)),
                );
            }
            None => {
                span.record("uri_hash", tracing::field::display(UriHash::of(uri)));
            }
        }
    }
}

/// One backend read's audit, carried into the read's task: [`finish`](Self::finish)ed with
/// the provider's answer (`secret.read` or `secret.read.error` with its code), or, when the
/// task is aborted first (the resolve deadline, every waiter gone), recorded on drop as a
/// `secret.read.error` with `TIMEOUT`. So every read that began is audited once.
pub(crate) struct ReadAudit {
    auditor: Arc<Auditor>,
    tenant: Arc<str>,
    uri: SecretUri,
    started: Instant,
    done: bool,
}

impl ReadAudit {
    /// Audits the provider's answer.
    pub(crate) fn finish(mut self, result: &Result<SecretValue, ProviderError>) {
        self.done = true;
        let code = result.as_ref().err().map(ProviderError::code);
        self.publish(code);
    }

    fn publish(&self, error_code: Option<&'static str>) {
        let (kind, outcome, code) = match error_code {
            None => (EventType::Read, Outcome::Permit, "OK"),
            Some(code) => (EventType::ReadError, Outcome::Error, code),
        };
        let event = self
            .auditor
            .event(kind, &self.tenant, None, Some(&self.uri))
            .with_outcome(outcome)
            .with_code(code)
            .with_latency(self.started.elapsed());
        self.auditor.publish(event);
    }
}

impl Drop for ReadAudit {
    fn drop(&mut self) {
        if !self.done {
            self.publish(Some("TIMEOUT"));
        }
    }
}
