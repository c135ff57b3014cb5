//! OCSF 1.3 API Activity records: [`to_ocsf`] writes one per event, [`from_ocsf`] parses one
//! back, strictly (it reads untrusted input: consumers and tests use it, and it is fuzzed).
//!
//! The mapping is documented field by field in `docs/audit.md`.

use std::borrow::Cow;

use secret_uri::Provider;
use serde::{Deserialize, Serialize};

use crate::event::{MAX_TIME_MS, valid_code};
use crate::{AuditError, AuditEvent, EventId, EventType, Outcome, ResourceRef};

/// The OCSF schema version every record pins in `metadata.version`.
pub const OCSF_VERSION: &str = "1.3.0";
/// The OCSF class: API Activity.
pub const CLASS_UID: u32 = 6003;
/// The OCSF category: Application Activity.
pub const CATEGORY_UID: u32 = 6;
/// The OCSF activity: Read.
pub const ACTIVITY_ID: u32 = 2;
/// `class_uid * 100 + activity_id`.
pub const TYPE_UID: u32 = CLASS_UID * 100 + ACTIVITY_ID;
/// The largest record [`from_ocsf`] reads, in bytes.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// `metadata.product.name` and `vendor_name`.
pub const PRODUCT_NAME: &str = "secrets-sdk";
/// `resources[].type`.
pub const RESOURCE_TYPE: &str = "secret";

const CLASS_NAME: &str = "API Activity";
const CATEGORY_NAME: &str = "Application Activity";
const ACTIVITY_NAME: &str = "Read";
const TYPE_NAME: &str = "API Activity: Read";
const SEVERITY_ID: u32 = 1;
const SEVERITY: &str = "Informational";
const PROFILES: [&str; 1] = ["datetime"];

type Text<'a> = Cow<'a, str>;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record<'a> {
    class_uid: u32,
    class_name: Text<'a>,
    category_uid: u32,
    category_name: Text<'a>,
    activity_id: u32,
    activity_name: Text<'a>,
    type_uid: u32,
    type_name: Text<'a>,
    severity_id: u32,
    severity: Text<'a>,
    status_id: u32,
    status: Text<'a>,
    status_code: Text<'a>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_detail: Option<Text<'a>>,
    time: u64,
    time_dt: Text<'a>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration: Option<u64>,
    metadata: Metadata<'a>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    actor: Option<Actor<'a>>,
    api: Api<'a>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resources: Option<Vec<Resource<'a>>>,
    unmapped: Unmapped<'a>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata<'a> {
    version: Text<'a>,
    uid: Text<'a>,
    product: Product<'a>,
    profiles: Vec<Text<'a>>,
    event_code: Text<'a>,
    tenant_uid: Text<'a>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    correlation_uid: Option<Text<'a>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Product<'a> {
    name: Text<'a>,
    vendor_name: Text<'a>,
    version: Text<'a>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Actor<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<User<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app_uid: Option<Text<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorizations: Option<Vec<Authorization<'a>>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct User<'a> {
    uid: Text<'a>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Authorization<'a> {
    decision: Text<'a>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    policy: Option<Policy<'a>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Policy<'a> {
    version: Text<'a>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Api<'a> {
    operation: Text<'a>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service: Option<Named<'a>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Named<'a> {
    name: Text<'a>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Resource<'a> {
    uid: ResourceRef,
    #[serde(rename = "type")]
    kind: Text<'a>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<Named<'a>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Unmapped<'a> {
    outcome: Text<'a>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject_hashed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource_ref_key_id: Option<Text<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decision_id: Option<Text<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grant_id: Option<Text<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    use_number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    latency_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workflow_run_id: Option<Text<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node_id: Option<Text<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    system_id: Option<Text<'a>>,
}

fn text(value: &str) -> Text<'_> {
    Cow::Borrowed(value)
}

fn opt(value: Option<&str>) -> Option<Text<'_>> {
    value.map(Cow::Borrowed)
}

/// The OCSF caption of `status_id`.
fn status_caption(success: bool) -> (u32, &'static str) {
    if success {
        (1, "Success")
    } else {
        (2, "Failure")
    }
}

/// `actor.authorizations[0].decision`: what the enforcement point decided. A read (or cache
/// hit) only happens after a permit; a refusal is a deny, or an error when undecided.
fn decision(kind: EventType, outcome: Outcome) -> &'static str {
    match (kind, outcome) {
        (EventType::AccessDenied, Outcome::Error) => "Error",
        (EventType::AccessDenied, _) => "Deny",
        _ => "Permit",
    }
}

/// Whether a record of this event carries `actor.authorizations`: every PEP decision, and
/// every event that names the policy version that decided.
fn has_authorization(kind: EventType, policy_version: Option<&str>) -> bool {
    matches!(kind, EventType::AccessGranted | EventType::AccessDenied) || policy_version.is_some()
}

fn record(event: &AuditEvent) -> Record<'_> {
    let (status_id, status) = status_caption(event.outcome.is_success());
    let authorizations =
        has_authorization(event.kind, event.policy_version.as_deref()).then(|| {
            vec![Authorization {
                decision: text(decision(event.kind, event.outcome)),
                policy: event.policy_version.as_deref().map(|version| Policy {
                    version: text(version),
                }),
            }]
        });
    let actor = (event.subject.is_some() || event.client_id.is_some() || authorizations.is_some())
        .then(|| Actor {
            user: event.subject.as_deref().map(|uid| User { uid: text(uid) }),
            app_uid: opt(event.client_id.as_deref()),
            authorizations,
        });
    let resources = event.resource_ref.map(|uid| {
        vec![Resource {
            uid,
            kind: text(RESOURCE_TYPE),
            group: event
                .mount
                .as_deref()
                .map(|name| Named { name: text(name) }),
        }]
    });
    Record {
        class_uid: CLASS_UID,
        class_name: text(CLASS_NAME),
        category_uid: CATEGORY_UID,
        category_name: text(CATEGORY_NAME),
        activity_id: ACTIVITY_ID,
        activity_name: text(ACTIVITY_NAME),
        type_uid: TYPE_UID,
        type_name: text(TYPE_NAME),
        severity_id: SEVERITY_ID,
        severity: text(SEVERITY),
        status_id,
        status: text(status),
        status_code: text(&event.code),
        status_detail: opt(event.reason.as_deref()),
        time: event.time_ms,
        time_dt: Cow::Owned(event.time_rfc3339()),
        duration: event.latency_us.map(|us| us / 1000),
        metadata: Metadata {
            version: text(OCSF_VERSION),
            uid: Cow::Owned(event.id.to_string()),
            product: Product {
                name: text(PRODUCT_NAME),
                vendor_name: text(PRODUCT_NAME),
                version: text(env!("CARGO_PKG_VERSION")),
            },
            profiles: PROFILES.iter().map(|p| text(p)).collect(),
            event_code: text(event.kind.as_str()),
            tenant_uid: text(&event.tenant),
            correlation_uid: opt(event.correlation_id.as_deref()),
        },
        actor,
        api: Api {
            operation: text(event.kind.as_str()),
            service: event.provider.map(|p| Named {
                name: text(p.as_str()),
            }),
        },
        resources,
        unmapped: Unmapped {
            outcome: text(event.outcome.as_str()),
            subject_hashed: event.subject_hashed.then_some(true),
            resource_ref_key_id: opt(event.resource_ref_key_id.as_deref()),
            decision_id: opt(event.decision_id.as_deref()),
            grant_id: opt(event.grant_id.as_deref()),
            use_number: event.use_number,
            latency_us: event.latency_us,
            workflow_run_id: opt(event.workflow_run_id.as_deref()),
            node_id: opt(event.node_id.as_deref()),
            system_id: opt(event.system_id.as_deref()),
        },
    }
}

/// The event as an OCSF 1.3 API Activity record (class 6003, activity Read), as a JSON value.
#[must_use]
pub fn to_ocsf(event: &AuditEvent) -> serde_json::Value {
    // Serializing plain structs of strings and integers into a Value cannot fail.
    serde_json::to_value(record(event)).unwrap_or(serde_json::Value::Null)
}

/// The event as the bytes of one compact OCSF JSON record (what a transport sends).
#[must_use]
pub fn to_ocsf_bytes(event: &AuditEvent) -> Vec<u8> {
    serde_json::to_vec(&record(event)).unwrap_or_default()
}

/// Parses one record written by [`to_ocsf_bytes`] back into the event, strictly: unknown or
/// duplicate fields, other OCSF classes or versions, inconsistent fields (a `time_dt` that is
/// not `time`, a status that is not the outcome's, an outcome the event type does not allow,
/// …) and records over [`MAX_RECORD_BYTES`] are refused.
///
/// # Errors
/// `BAD_RECORD`, naming at most a field and a position, never the input's bytes.
pub fn from_ocsf(bytes: &[u8]) -> Result<AuditEvent, AuditError> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(AuditError::bad_record("the record is larger than 64 KiB"));
    }
    // serde_json's own messages may quote the input, so only its category and position are
    // kept. Its recursion limit bounds nesting.
    let record: Record<'_> = serde_json::from_slice(bytes).map_err(|error| {
        let reason = match error.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "not a JSON document"
            }
            serde_json::error::Category::Data => {
                "not an OCSF API Activity record of this SDK (a field is missing, unknown, repeated or of the wrong type)"
            }
        };
        AuditError::BadRecord {
            reason: Cow::Borrowed(reason),
            line: error.line(),
            column: error.column(),
        }
    })?;
    event(record)
}

fn check(ok: bool, reason: &'static str) -> Result<(), AuditError> {
    if ok {
        Ok(())
    } else {
        Err(AuditError::bad_record(reason))
    }
}

fn owned(text: Option<Text<'_>>) -> Option<String> {
    text.map(Cow::into_owned)
}

fn stable_code(text: Text<'_>, reason: &'static str) -> Result<Cow<'static, str>, AuditError> {
    check(valid_code(&text), reason)?;
    Ok(Cow::Owned(text.into_owned()))
}

fn event(record: Record<'_>) -> Result<AuditEvent, AuditError> {
    check(
        record.class_uid == CLASS_UID
            && record.class_name == CLASS_NAME
            && record.category_uid == CATEGORY_UID
            && record.category_name == CATEGORY_NAME
            && record.activity_id == ACTIVITY_ID
            && record.activity_name == ACTIVITY_NAME
            && record.type_uid == TYPE_UID
            && record.type_name == TYPE_NAME,
        "not OCSF API Activity: Read (class_uid 6003, activity_id 2)",
    )?;
    check(
        record.severity_id == SEVERITY_ID && record.severity == SEVERITY,
        "severity must be Informational",
    )?;
    let metadata = record.metadata;
    check(
        metadata.version == OCSF_VERSION,
        "metadata.version must be 1.3.0",
    )?;
    check(
        metadata.product.name == PRODUCT_NAME
            && metadata.product.vendor_name == PRODUCT_NAME
            && !metadata.product.version.is_empty(),
        "metadata.product is not this SDK",
    )?;
    check(
        metadata.profiles.iter().map(AsRef::as_ref).eq(PROFILES),
        "metadata.profiles must be [\"datetime\"]",
    )?;
    let id: EventId = metadata.uid.parse()?;
    let kind = EventType::from_name(&metadata.event_code)
        .ok_or_else(|| AuditError::bad_record("metadata.event_code is not an event type"))?;
    check(
        record.api.operation == metadata.event_code,
        "api.operation must equal metadata.event_code",
    )?;

    let unmapped = record.unmapped;
    let outcome = Outcome::from_name(&unmapped.outcome)
        .ok_or_else(|| AuditError::bad_record("unmapped.outcome must be PERMIT, DENY or ERROR"))?;
    check(
        kind.allows(outcome),
        "unmapped.outcome does not fit the event type",
    )?;
    let (status_id, status) = status_caption(outcome.is_success());
    check(
        record.status_id == status_id && record.status == status,
        "status_id and status must be the outcome's",
    )?;
    let code = stable_code(record.status_code, "status_code must be a stable code")?;
    let reason = record
        .status_detail
        .map(|detail| stable_code(detail, "status_detail must be a stable code"))
        .transpose()?;

    check(record.time <= MAX_TIME_MS, "time is after year 9999")?;
    let mut event = AuditEvent::blank(id, kind, &metadata.tenant_uid, record.time);
    check(
        record.time_dt == event.time_rfc3339(),
        "time_dt must be time in RFC 3339 (UTC, milliseconds)",
    )?;
    check(
        record.duration == unmapped.latency_us.map(|us| us / 1000),
        "duration must be unmapped.latency_us in whole milliseconds",
    )?;

    let (subject, client_id, authorizations) = match record.actor {
        Some(actor) => {
            check(
                actor.user.is_some() || actor.app_uid.is_some() || actor.authorizations.is_some(),
                "actor must not be empty",
            )?;
            (
                actor.user.map(|u| u.uid.into_owned()),
                owned(actor.app_uid),
                actor.authorizations,
            )
        }
        None => (None, None, None),
    };
    let subject_hashed = match unmapped.subject_hashed {
        None => false,
        Some(true) => {
            check(
                subject
                    .as_deref()
                    .is_some_and(|s| s.parse::<ResourceRef>().is_ok()),
                "a hashed subject must be 32 lowercase hex digits",
            )?;
            true
        }
        Some(false) => {
            return Err(AuditError::bad_record(
                "unmapped.subject_hashed is written only when true",
            ));
        }
    };

    let present = authorizations.is_some();
    let policy_version = match authorizations {
        None => None,
        Some(list) => {
            let [authorization] = <[Authorization<'_>; 1]>::try_from(list).map_err(|_| {
                AuditError::bad_record("actor.authorizations must hold one decision")
            })?;
            check(
                authorization.decision == decision(kind, outcome),
                "actor.authorizations[0].decision does not fit the event",
            )?;
            authorization.policy.map(|p| p.version.into_owned())
        }
    };
    check(
        present == has_authorization(kind, policy_version.as_deref()),
        "actor.authorizations is written for a decision or a policy version, and only then",
    )?;

    let provider = record
        .api
        .service
        .map(|service| {
            Provider::ALL
                .into_iter()
                .find(|p| p.as_str() == service.name)
                .ok_or_else(|| AuditError::bad_record("api.service.name is not a provider"))
        })
        .transpose()?;
    let (resource_ref, mount) = match record.resources {
        None => (None, None),
        Some(list) => {
            let [resource] = <[Resource<'_>; 1]>::try_from(list)
                .map_err(|_| AuditError::bad_record("resources must hold one secret"))?;
            check(
                resource.kind == RESOURCE_TYPE,
                "resources[0].type must be secret",
            )?;
            (
                Some(resource.uid),
                resource.group.map(|g| g.name.into_owned()),
            )
        }
    };
    check(
        resource_ref.is_some() == provider.is_some(),
        "resources and api.service come together (from one URI)",
    )?;

    event.subject = subject;
    event.subject_hashed = subject_hashed;
    event.resource_ref = resource_ref;
    event.resource_ref_key_id = owned(unmapped.resource_ref_key_id);
    event.provider = provider;
    event.mount = mount;
    event.outcome = outcome;
    event.code = code;
    event.reason = reason;
    event.decision_id = owned(unmapped.decision_id);
    event.grant_id = owned(unmapped.grant_id);
    event.policy_version = policy_version;
    event.use_number = unmapped.use_number;
    event.correlation_id = owned(metadata.correlation_uid);
    event.client_id = client_id;
    event.workflow_run_id = owned(unmapped.workflow_run_id);
    event.node_id = owned(unmapped.node_id);
    event.system_id = owned(unmapped.system_id);
    event.latency_us = unmapped.latency_us;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditConfig, AuditKey, Auditor, MemorySink};
    use secret_uri::SecretUri;
    use serde_json::{Value, json};
    use std::sync::Arc;
    use std::time::Duration;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn auditor(hash_subject: bool) -> Result<Auditor, AuditError> {
        let key = AuditKey::new(b"tenant-salt-0001-for-acme-corp-x", Some("2026-q4"))?;
        let config = AuditConfig::default().with_hash_subject(hash_subject);
        Ok(Auditor::new(key, Arc::new(MemorySink::new()), &config))
    }

    /// One full event of each type, and one bare one.
    fn events() -> Result<Vec<AuditEvent>, Box<dyn std::error::Error>> {
        let auditor = auditor(false)?;
        let hashed = auditor_hashed()?;
        let uri = SecretUri::parse("openbao+kv2://secret/app/api#token?version=3")?;
        let file = SecretUri::parse("file://dc-infra/config.json#password")?;
        let full = |event: AuditEvent| {
            event
                .with_decision_id("d-7f3a")
                .with_grant_id("g-19c2")
                .with_policy_version("secrets.v12")
                .with_use_number(2)
                .with_correlation_id("c-0001")
                .with_client_id("crud-service")
                .with_workflow_run_id("run-42")
                .with_node_id("node-3")
                .with_system_id("billing")
                .with_latency(Duration::from_micros(1234))
        };
        Ok(vec![
            full(auditor.event(EventType::AccessGranted, "acme", Some("alice"), Some(&uri))),
            full(auditor.event(EventType::AccessDenied, "acme", Some("alice"), Some(&uri)))
                .with_reason("PDP_DENY"),
            auditor
                .event(EventType::AccessDenied, "acme", Some("alice"), Some(&uri))
                .with_code("PDP_UNAVAILABLE")
                .with_outcome(Outcome::Error),
            auditor
                .event(EventType::AccessDenied, "acme", None, None)
                .with_code("ILLEGAL_SEGMENT"),
            full(auditor.event(EventType::Read, "acme", Some("alice"), Some(&uri))),
            full(auditor.event(EventType::ReadError, "acme", Some("alice"), Some(&uri)))
                .with_code("NOT_FOUND"),
            auditor
                .event(EventType::CacheHit, "acme", None, Some(&file))
                .with_latency(Duration::from_nanos(140)),
            hashed.event(EventType::Read, "acme", Some("alice"), Some(&file)),
            auditor.event(EventType::Read, "", None, None),
        ])
    }

    fn auditor_hashed() -> Result<Auditor, AuditError> {
        auditor(true)
    }

    #[test]
    fn every_event_type_round_trips() -> TestResult {
        let events = events()?;
        for kind in EventType::ALL {
            assert!(events.iter().any(|e| e.kind() == kind), "{kind}");
        }
        for event in &events {
            let bytes = to_ocsf_bytes(event);
            assert_eq!(
                &from_ocsf(&bytes)?,
                event,
                "{}",
                String::from_utf8_lossy(&bytes)
            );
            assert_eq!(serde_json::from_slice::<Value>(&bytes)?, to_ocsf(event));
        }
        Ok(())
    }

    #[test]
    fn the_record_maps_every_field() -> TestResult {
        let event = events()?.remove(1);
        let record = to_ocsf(&event);
        let expected = json!({
            "class_uid": 6003,
            "class_name": "API Activity",
            "category_uid": 6,
            "category_name": "Application Activity",
            "activity_id": 2,
            "activity_name": "Read",
            "type_uid": 600302,
            "type_name": "API Activity: Read",
            "severity_id": 1,
            "severity": "Informational",
            "status_id": 2,
            "status": "Failure",
            "status_code": "AUTHZ_DENIED",
            "status_detail": "PDP_DENY",
            "time": event.time_millis(),
            "time_dt": event.time_rfc3339(),
            "duration": 1,
            "metadata": {
                "version": "1.3.0",
                "uid": event.id().to_string(),
                "product": {
                    "name": "secrets-sdk",
                    "vendor_name": "secrets-sdk",
                    "version": env!("CARGO_PKG_VERSION"),
                },
                "profiles": ["datetime"],
                "event_code": "secret.access.denied",
                "tenant_uid": "acme",
                "correlation_uid": "c-0001",
            },
            "actor": {
                "user": { "uid": "alice" },
                "app_uid": "crud-service",
                "authorizations": [{ "decision": "Deny", "policy": { "version": "secrets.v12" } }],
            },
            "api": { "operation": "secret.access.denied", "service": { "name": "openbao" } },
            "resources": [{
                "uid": "8cbd64017dc68f7258e00a0a7a0f572c",
                "type": "secret",
                "group": { "name": "secret" },
            }],
            "unmapped": {
                "outcome": "DENY",
                "resource_ref_key_id": "2026-q4",
                "decision_id": "d-7f3a",
                "grant_id": "g-19c2",
                "use_number": 2,
                "latency_us": 1234,
                "workflow_run_id": "run-42",
                "node_id": "node-3",
                "system_id": "billing",
            },
        });
        assert_eq!(record, expected);
        Ok(())
    }

    /// A valid record as a JSON value, to break one field at a time.
    fn valid() -> Result<Value, Box<dyn std::error::Error>> {
        Ok(to_ocsf(&events()?.remove(0)))
    }

    fn refused(value: &Value) -> bool {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        matches!(from_ocsf(&bytes), Err(e) if e.code() == "BAD_RECORD")
    }

    #[test]
    fn garbage_is_bad_record() {
        let deep = "[".repeat(100_000);
        let huge = format!("\"{}\"", "x".repeat(MAX_RECORD_BYTES));
        let inputs: [&[u8]; 10] = [
            b"",
            b"null",
            b"[]",
            b"{}",
            b"{\"class_uid\":6003",
            b"\xff\xfe",
            b"{\"class_uid\":6003,\"class_uid\":6003}",
            deep.as_bytes(),
            huge.as_bytes(),
            b"{\"metadata\":{\"uid\":\"s.canary-token\"}}",
        ];
        for input in inputs {
            let error = from_ocsf(input).err();
            assert_eq!(error.as_ref().map(AuditError::code), Some("BAD_RECORD"));
            let shown = format!(
                "{} {:?}",
                error.as_ref().map(ToString::to_string).unwrap_or_default(),
                error
            );
            assert!(!shown.contains("canary"), "{shown}");
        }
    }

    #[test]
    fn every_inconsistency_is_bad_record() -> TestResult {
        let base = valid()?;
        type Edit = Box<dyn Fn(&mut Value)>;
        let edits: Vec<(&str, Edit)> = vec![
            ("class", Box::new(|v| v["class_uid"] = json!(3002))),
            (
                "class name",
                Box::new(|v| v["class_name"] = json!("Authentication")),
            ),
            ("activity", Box::new(|v| v["activity_id"] = json!(1))),
            ("type", Box::new(|v| v["type_uid"] = json!(600301))),
            ("severity", Box::new(|v| v["severity_id"] = json!(5))),
            (
                "version",
                Box::new(|v| v["metadata"]["version"] = json!("1.2.0")),
            ),
            (
                "product",
                Box::new(|v| v["metadata"]["product"]["name"] = json!("other")),
            ),
            (
                "profiles",
                Box::new(|v| v["metadata"]["profiles"] = json!([])),
            ),
            (
                "uid",
                Box::new(|v| v["metadata"]["uid"] = json!("not-a-uuid")),
            ),
            (
                "uid case",
                Box::new(|v| {
                    let upper = v["metadata"]["uid"]
                        .as_str()
                        .unwrap_or_default()
                        .to_uppercase();
                    v["metadata"]["uid"] = json!(upper);
                }),
            ),
            (
                "event code",
                Box::new(|v| v["metadata"]["event_code"] = json!("secret.write")),
            ),
            (
                "operation",
                Box::new(|v| v["api"]["operation"] = json!("secret.read")),
            ),
            ("status", Box::new(|v| v["status_id"] = json!(2))),
            (
                "status caption",
                Box::new(|v| v["status"] = json!("Failure")),
            ),
            (
                "outcome",
                Box::new(|v| v["unmapped"]["outcome"] = json!("DENY")),
            ),
            (
                "outcome name",
                Box::new(|v| v["unmapped"]["outcome"] = json!("permit")),
            ),
            (
                "code",
                Box::new(|v| v["status_code"] = json!("openbao+kv2://secret/app#token")),
            ),
            (
                "detail",
                Box::new(|v| v["status_detail"] = json!("lower case")),
            ),
            (
                "time",
                Box::new(|v| v["time"] = json!(253_402_300_800_000_u64)),
            ),
            (
                "time_dt",
                Box::new(|v| v["time_dt"] = json!("2001-01-01T00:00:00.000Z")),
            ),
            ("negative time", Box::new(|v| v["time"] = json!(-1))),
            ("duration", Box::new(|v| v["duration"] = json!(7))),
            (
                "no duration",
                Box::new(|v| {
                    v.as_object_mut().map(|o| o.remove("duration"));
                }),
            ),
            (
                "use number",
                Box::new(|v| v["unmapped"]["use_number"] = json!(4_294_967_296_u64)),
            ),
            ("empty actor", Box::new(|v| v["actor"] = json!({}))),
            (
                "two decisions",
                Box::new(|v| {
                    let one = v["actor"]["authorizations"][0].clone();
                    v["actor"]["authorizations"] = json!([one.clone(), one]);
                }),
            ),
            (
                "decision",
                Box::new(|v| v["actor"]["authorizations"][0]["decision"] = json!("Deny")),
            ),
            (
                "no decision",
                Box::new(|v| {
                    v["actor"]
                        .as_object_mut()
                        .map(|o| o.remove("authorizations"));
                }),
            ),
            (
                "hashed",
                Box::new(|v| v["unmapped"]["subject_hashed"] = json!(true)),
            ),
            (
                "not hashed",
                Box::new(|v| v["unmapped"]["subject_hashed"] = json!(false)),
            ),
            (
                "provider",
                Box::new(|v| v["api"]["service"]["name"] = json!("OpenBao")),
            ),
            (
                "no provider",
                Box::new(|v| {
                    v["api"].as_object_mut().map(|o| o.remove("service"));
                }),
            ),
            (
                "resource ref",
                Box::new(|v| v["resources"][0]["uid"] = json!("8CBD64017DC68F7258E00A0A7A0F572C")),
            ),
            (
                "resource type",
                Box::new(|v| v["resources"][0]["type"] = json!("file")),
            ),
            (
                "two resources",
                Box::new(|v| {
                    let one = v["resources"][0].clone();
                    v["resources"] = json!([one.clone(), one]);
                }),
            ),
            ("no resource", Box::new(|v| v["resources"] = json!([]))),
            (
                "unknown",
                Box::new(|v| v["uri"] = json!("openbao+kv2://secret/app#token")),
            ),
            (
                "unknown unmapped",
                Box::new(|v| v["unmapped"]["uri"] = json!("x")),
            ),
            (
                "unknown metadata",
                Box::new(|v| v["metadata"]["labels"] = json!([])),
            ),
            (
                "wrong type",
                Box::new(|v| v["metadata"]["tenant_uid"] = json!(7)),
            ),
        ];
        assert!(!refused(&base));
        for (name, edit) in edits {
            let mut value = base.clone();
            edit(&mut value);
            assert!(refused(&value), "{name}");
        }
        for key in [
            "class_uid",
            "time",
            "time_dt",
            "metadata",
            "api",
            "unmapped",
            "status_code",
        ] {
            let mut value = base.clone();
            value.as_object_mut().map(|o| o.remove(key));
            assert!(refused(&value), "without {key}");
        }
        Ok(())
    }

    #[test]
    fn mutated_records_never_panic_and_reparse_stably() -> TestResult {
        // A deterministic xorshift walk over byte flips, insertions and cuts of valid records.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds: Vec<Vec<u8>> = events()?.iter().map(to_ocsf_bytes).collect();
        let mut accepted = 0;
        for round in 0..20_000 {
            let mut bytes = seeds[round % seeds.len()].clone();
            for _ in 0..=(next() % 3) {
                let at = usize::try_from(next()).unwrap_or(0) % bytes.len().max(1);
                match next() % 4 {
                    0 => bytes[at] = next().to_le_bytes()[0],
                    1 => bytes.insert(
                        at,
                        b"\"{}[],:0e-\\u"[usize::try_from(next() % 12).unwrap_or(0)],
                    ),
                    2 => bytes.truncate(at),
                    _ => bytes[at] = bytes[at].wrapping_add(1),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            match from_ocsf(&bytes) {
                Ok(event) => {
                    accepted += 1;
                    assert_eq!(from_ocsf(&to_ocsf_bytes(&event))?, event);
                }
                Err(error) => assert_eq!(error.code(), "BAD_RECORD"),
            }
        }
        // Some mutations keep a record valid (a changed digit of an id or a time); most do not.
        assert!(accepted < 20_000);
        Ok(())
    }
}
