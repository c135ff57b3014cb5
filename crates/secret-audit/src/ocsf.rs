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
