//! Arbitrary bytes never panic the audit record parser: every input is either an event that
//! writes back to a record parsing to the same event, or `BAD_RECORD`. Each input is also
//! spliced into a valid record, so the fuzzer reaches the field checks without a corpus.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use secret_audit::{AuditConfig, AuditKey, Auditor, EventType, NoopSink, from_ocsf, to_ocsf_bytes};
use secret_uri::SecretUri;

/// One valid record with every field set.
fn valid() -> &'static [u8] {
    static VALID: OnceLock<Vec<u8>> = OnceLock::new();
    VALID.get_or_init(|| {
        let key = AuditKey::new(b"tenant-salt-0001-for-acme-corp-x", Some("2026-q4"))
            .expect("a 32-byte salt is accepted");
        let config = AuditConfig::default().with_hash_subject(true);
        let auditor = Auditor::new(key, Arc::new(NoopSink::new()), &config);
        let uri = SecretUri::parse("openbao+kv2://secret/app/api#token?version=3")
            .expect("the URI parses");
        let event = auditor
            .event(EventType::AccessDenied, "acme", Some("alice"), Some(&uri))
            .with_reason("PDP_DENY")
            .with_decision_id("d-1")
            .with_grant_id("g-1")
            .with_policy_version("v12")
            .with_use_number(2)
            .with_correlation_id("c-1")
            .with_client_id("crud")
            .with_workflow_run_id("run-1")
            .with_node_id("node-1")
            .with_system_id("billing")
            .with_latency(std::time::Duration::from_micros(1234));
        to_ocsf_bytes(&event)
    })
}

fn check(bytes: &[u8]) {
    match from_ocsf(bytes) {
        Ok(event) => {
            let again = from_ocsf(&to_ocsf_bytes(&event)).expect("a written record parses");
            assert_eq!(again, event);
            let _ = format!("{event:?}");
        }
        Err(error) => {
            assert_eq!(error.code(), "BAD_RECORD");
            let _ = error.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // The first byte picks where, the second how much of the valid record is replaced by the rest.
    if let [at, cut, rest @ ..] = data {
        let mut record = valid().to_vec();
        let at = usize::from(*at) * record.len() / 256;
        let end = (at + usize::from(*cut % 16)).min(record.len());
        record.splice(at..end, rest.iter().copied());
        check(&record);
    }
});
