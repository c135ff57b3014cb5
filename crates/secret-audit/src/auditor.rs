//! [`Auditor`]: makes keyed events and hands them to a sink.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use secret_uri::SecretUri;

use crate::{AuditConfig, AuditEvent, AuditKey, AuditSink, EventType, NoopSink, ResourceRef};

/// Makes [`AuditEvent`]s that are already keyed, and publishes them to its sink.
///
/// [`event`](Self::event) fills in what only the auditor may: the keyed `resource_ref`, the
/// provider and mount from the URI (which itself never enters the event), the salt's key id,
/// and the subject, hashed when `AUDIT_HASH_SUBJECT=true`. The PEP and the clients hold one
/// `Auditor` and call [`publish`](Self::publish), which never waits on the network.
pub struct Auditor {
    key: Option<AuditKey>,
    sink: Arc<dyn AuditSink>,
    hash_subject: bool,
    cache_hit_sample_n: u64,
    cache_hits: AtomicU64,
}

impl fmt::Debug for Auditor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auditor")
            .field("key", &self.key)
            .field("sink", &self.sink)
            .field("hash_subject", &self.hash_subject)
            .field("cache_hit_sample_n", &self.cache_hit_sample_n)
            .finish_non_exhaustive()
    }
}

impl Auditor {
    /// An auditor keying with `key`, publishing to `sink`, with the sampling and subject
    /// hashing of `config` (its queue settings are for whoever builds the sink).
    #[must_use]
    pub fn new(key: AuditKey, sink: Arc<dyn AuditSink>, config: &AuditConfig) -> Self {
        Self {
            key: Some(key),
            sink,
            hash_subject: config.hash_subject,
            cache_hit_sample_n: config.sample_cache_hit_n,
            cache_hits: AtomicU64::new(0),
        }
    }

    /// Auditing off: a [`NoopSink`], no key, no cache hits sampled. Events it makes carry no
    /// URI-derived fields at all.
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            key: None,
            sink: Arc::new(NoopSink::new()),
            hash_subject: false,
            cache_hit_sample_n: 0,
            cache_hits: AtomicU64::new(0),
        }
    }

    /// Whether this auditor has a key (it is not [`disabled`](Self::disabled)).
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.key.is_some()
    }

    /// The sink events go to.
    #[must_use]
    pub fn sink(&self) -> &Arc<dyn AuditSink> {
        &self.sink
    }

    /// A new event of `kind` for `tenant` about `uri` (when it parsed) on behalf of `subject`:
    /// keyed `resource_ref`, provider, mount and key id from the URI and the key; the subject
    /// as given, or its keyed hash. Add the rest with the event's `with_*` setters, then
    /// [`publish`](Self::publish) it.
    #[must_use]
    pub fn event(
        &self,
        kind: EventType,
        tenant: &str,
        subject: Option<&str>,
        uri: Option<&SecretUri>,
    ) -> AuditEvent {
        self.event_keyed(kind, tenant, subject, uri, None)
    }

    /// [`event`](Self::event) with `uri`'s reference already computed by this auditor (from an
    /// earlier event about the same URI, e.g. the decision before a read): one HMAC per
    /// request instead of one per event. `None` computes it.
    #[must_use]
    pub fn event_keyed(
        &self,
        kind: EventType,
        tenant: &str,
        subject: Option<&str>,
        uri: Option<&SecretUri>,
        resource_ref: Option<ResourceRef>,
    ) -> AuditEvent {
        let mut event = AuditEvent::new(kind, tenant);
        let Some(key) = &self.key else {
            event.subject = subject.map(str::to_owned);
            return event;
        };
        event.resource_ref_key_id = key.key_id().map(str::to_owned);
        if let Some(uri) = uri {
            event.resource_ref = Some(resource_ref.unwrap_or_else(|| key.resource_ref(uri)));
            event.provider = Some(uri.provider());
            event.mount = Some(uri.mount().to_owned());
        }
        event.subject = subject.map(|subject| {
            if self.hash_subject {
                key.subject_ref(subject)
            } else {
                subject.to_owned()
            }
        });
        event.subject_hashed = self.hash_subject && subject.is_some();
        event
    }

    /// An identity of the caller other than the subject (an OAuth client id, which for
    /// client-credentials tokens usually *is* the subject) as events should carry it: its
    /// keyed hash when `AUDIT_HASH_SUBJECT=true`, else as given.
    #[must_use]
    pub fn identity(&self, id: &str) -> String {
        match &self.key {
            Some(key) if self.hash_subject => key.subject_ref(id),
            _ => id.to_owned(),
        }
    }

    /// Hands `event` to the sink; never waits on the network.
    pub fn publish(&self, event: AuditEvent) {
        self.sink.publish(event);
    }

    /// Whether this cache hit is one to audit: one in `AUDIT_SAMPLE_CACHE_HIT_N` (the first
    /// hit, then every N-th), counted lock-free; never with N = 0 or when disabled.
    #[must_use]
    pub fn sample_cache_hit(&self) -> bool {
        match self.cache_hit_sample_n {
            0 => false,
            1 => true,
            n => self
                .cache_hits
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemorySink, to_ocsf_bytes};
    use std::time::Duration;

    const SALT: &str = "tenant-salt-0001-for-acme-corp-x";

    fn auditor(
        config: &AuditConfig,
    ) -> Result<(Auditor, Arc<MemorySink>), Box<dyn std::error::Error>> {
        let sink = Arc::new(MemorySink::new());
        let key = AuditKey::new(SALT.as_bytes(), Some("2026-q4"))?;
        Ok((Auditor::new(key, sink.clone(), config), sink))
    }

    #[test]
    fn events_are_keyed_from_the_uri() -> Result<(), Box<dyn std::error::Error>> {
        let (auditor, sink) = auditor(&AuditConfig::default())?;
        let uri = SecretUri::parse("openbao+kv2://secret/app/api#token?version=3")?;
        let event = auditor
            .event(EventType::Read, "acme", Some("alice"), Some(&uri))
            .with_use_number(1);
        assert_eq!(
            event.resource_ref().map(|r| r.as_str()),
            Some("8cbd64017dc68f7258e00a0a7a0f572c")
        );
        assert_eq!(event.provider(), Some(secret_uri::Provider::OpenBao));
        assert_eq!(event.mount(), Some("secret"));
        assert_eq!(event.resource_ref_key_id(), Some("2026-q4"));
        assert_eq!(
            (event.subject(), event.subject_hashed()),
            (Some("alice"), false)
        );
        auditor.publish(event.clone());
        assert!(sink.wait_for(1, Duration::from_secs(5)));
        assert_eq!(sink.events(), [event]);

        let refused = auditor.event(EventType::AccessDenied, "acme", None, None);
        assert_eq!(
            (refused.resource_ref(), refused.provider(), refused.mount()),
            (None, None, None)
        );
        Ok(())
    }

    #[test]
    fn client_ids_are_hashed_with_subjects_and_long_ids_are_cut()
    -> Result<(), Box<dyn std::error::Error>> {
        let (plain, _) = auditor(&AuditConfig::default())?;
        let (hashing, _) = auditor(&AuditConfig::default().with_hash_subject(true))?;
        assert_eq!(plain.identity("svc-payments"), "svc-payments");
        let hashed = hashing.identity("svc-payments");
        assert_ne!(hashed, "svc-payments");
        assert_eq!(
            hashed,
            hashing
                .event(EventType::Read, "t", Some("svc-payments"), None)
                .subject()
                .unwrap_or_default()
        );
        assert_eq!(Auditor::disabled().identity("x"), "x");

        let long = "é".repeat(crate::MAX_FIELD_BYTES);
        let event = plain
            .event(EventType::Read, "t", None, None)
            .with_correlation_id(long.clone())
            .with_client_id(long.clone())
            .with_policy_version(long);
        for field in [
            event.correlation_id(),
            event.client_id(),
            event.policy_version(),
        ] {
            let field = field.unwrap_or_default();
            assert!(
                field.len() <= crate::MAX_FIELD_BYTES && field.len() >= crate::MAX_FIELD_BYTES - 1
            );
            assert!(field.chars().all(|c| c == 'é'));
        }
        Ok(())
    }

    #[test]
    fn subjects_are_hashed_on_request() -> Result<(), Box<dyn std::error::Error>> {
        let (auditor, _) = auditor(&AuditConfig::default().with_hash_subject(true))?;
        let event = auditor.event(
            EventType::AccessGranted,
            "acme",
            Some("canary-subject"),
            None,
        );
        let key = AuditKey::new(SALT.as_bytes(), None)?;
        assert_eq!(
            event.subject(),
            Some(key.subject_ref("canary-subject").as_str())
        );
        assert!(event.subject_hashed());
        let shown = format!(
            "{event:?} {}",
            String::from_utf8_lossy(&to_ocsf_bytes(&event))
        );
        assert!(!shown.contains("canary-subject"), "{shown}");
        let anonymous = auditor.event(EventType::AccessGranted, "acme", None, None);
        assert!(!anonymous.subject_hashed());
        Ok(())
    }

    #[test]
    fn cache_hits_are_sampled_one_in_n() -> Result<(), Box<dyn std::error::Error>> {
        let (every, _) = auditor(&AuditConfig::default())?;
        assert!((0..10).all(|_| every.sample_cache_hit()));
        let (none, _) = auditor(&AuditConfig::default().with_sample_cache_hit_n(0))?;
        assert!((0..10).all(|_| !none.sample_cache_hit()));
        assert!(!Auditor::disabled().sample_cache_hit());

        let (sampled, _) = auditor(&AuditConfig::default().with_sample_cache_hit_n(4))?;
        let sampled = Arc::new(sampled);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let sampled = Arc::clone(&sampled);
                std::thread::spawn(move || (0..1000).filter(|_| sampled.sample_cache_hit()).count())
            })
            .collect();
        let total: usize = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
        assert_eq!(total, 8000 / 4);
        Ok(())
    }

    #[test]
    fn disabled_auditing_keys_nothing() -> Result<(), Box<dyn std::error::Error>> {
        let auditor = Auditor::disabled();
        assert!(!auditor.is_enabled());
        let uri = SecretUri::parse("file://dc-infra/config.json#password")?;
        let event = auditor.event(EventType::Read, "acme", Some("alice"), Some(&uri));
        assert_eq!((event.resource_ref(), event.mount()), (None, None));
        auditor.publish(event);
        assert_eq!(auditor.sink().stats().published, 1);
        assert!(!format!("{auditor:?}").contains("dc-infra"));
        Ok(())
    }
}
