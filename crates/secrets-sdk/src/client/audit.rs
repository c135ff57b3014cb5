//! What `SecretsClient` audits: every backend read (`secret.read`, `secret.read.error`) and
//! one cache hit in `AUDIT_SAMPLE_CACHE_HIT_N` (`secret.read.cache_hit`), keyed with the
//! tenant salt; and how its spans name a secret (the keyed reference when a salt is set, else
//! the unkeyed 8-hex [`UriHash`]).

use std::time::Instant;

use secret_audit::{EventType, Outcome, UriHash};
use secret_providers::SecretValue;
use secret_uri::SecretUri;

use super::Inner;
use crate::Error;

impl Inner {
    /// Audits one backend read of `uri` that began at `started`.
    pub(super) fn audit_read(
        &self,
        uri: &SecretUri,
        result: &Result<SecretValue, Error>,
        started: Instant,
    ) {
        if !self.auditor.is_enabled() {
            return;
        }
        let (kind, outcome, code) = match result {
            Ok(_) => (EventType::Read, Outcome::Permit, "OK"),
            Err(error) => (EventType::ReadError, Outcome::Error, error.code()),
        };
        let event = self
            .auditor
            .event(kind, &self.tenant, None, Some(uri))
            .with_outcome(outcome)
            .with_code(code)
            .with_latency(started.elapsed());
        self.auditor.publish(event);
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
