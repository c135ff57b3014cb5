//! Property: any event an [`Auditor`] can make, with any text in its free fields, writes to an
//! OCSF record that parses back to the same event; and any text handed to `from_ocsf` is an
//! event or `BAD_RECORD`, never a panic.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use secret_audit::{
    AuditConfig, AuditKey, Auditor, EventType, NoopSink, Outcome, from_ocsf, to_ocsf_bytes,
};
use secret_uri::SecretUri;

fn kind() -> impl Strategy<Value = EventType> {
    prop::sample::select(EventType::ALL.to_vec())
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop::sample::select(vec![Outcome::Permit, Outcome::Deny, Outcome::Error])
}

fn text() -> impl Strategy<Value = String> {
    ".{0,40}"
}

fn uri() -> impl Strategy<Value = Option<SecretUri>> {
    prop::option::of(
        (
            prop::sample::select(vec!["openbao+kv2", "hashicorp", "file", "db+cred"]),
            "[a-z0-9][a-z0-9_-]{0,8}",
            "[a-z0-9/._-]{0,20}",
        )
            .prop_filter_map("a parseable URI", |(scheme, mount, path)| {
                SecretUri::parse(&format!("{scheme}://{mount}/{path}")).ok()
            }),
    )
}

proptest! {
    #[test]
    fn every_event_round_trips(
        kind in kind(),
        outcome in outcome(),
        hash in any::<bool>(),
        uri in uri(),
        tenant in text(),
        subject in prop::option::of(text()),
        code in "[A-Z0-9_.]{1,64}",
        reason in prop::option::of("[A-Z0-9_.]{1,64}"),
        ids in prop::collection::vec(prop::option::of(text()), 8),
        use_number in prop::option::of(any::<u32>()),
        latency_us in prop::option::of(any::<u64>()),
    ) {
        let key = AuditKey::new(b"tenant-salt-0001-for-acme-corp-x", Some("k1"))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let config = AuditConfig::default().with_hash_subject(hash);
        let auditor = Auditor::new(key, Arc::new(NoopSink::new()), &config);
        let mut event = auditor
            .event(kind, &tenant, subject.as_deref(), uri.as_ref())
            .with_outcome(outcome)
            .with_code(code);
        if let Some(reason) = reason {
            event = event.with_reason(reason);
        }
        if let Some(n) = use_number {
            event = event.with_use_number(n);
        }
        if let Some(us) = latency_us {
            event = event.with_latency(Duration::from_micros(us));
        }
        let setters: [fn(secret_audit::AuditEvent, String) -> secret_audit::AuditEvent; 8] = [
            |e, v| e.with_decision_id(v),
            |e, v| e.with_grant_id(v),
            |e, v| e.with_policy_version(v),
            |e, v| e.with_correlation_id(v),
            |e, v| e.with_client_id(v),
            |e, v| e.with_workflow_run_id(v),
            |e, v| e.with_node_id(v),
            |e, v| e.with_system_id(v),
        ];
        for (set, value) in setters.into_iter().zip(ids) {
            if let Some(value) = value {
                event = set(event, value);
            }
        }
        let bytes = to_ocsf_bytes(&event);
        let parsed = from_ocsf(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed, event);
    }

    #[test]
    fn any_text_is_an_event_or_bad_record(input in ".{0,300}") {
        if let Err(error) = from_ocsf(input.as_bytes()) {
            prop_assert_eq!(error.code(), "BAD_RECORD");
        }
    }
}
