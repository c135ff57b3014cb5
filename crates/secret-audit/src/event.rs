//! The event model: [`AuditEvent`], its [`EventType`], [`Outcome`] and [`EventId`].

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secret_uri::Provider;
use uuid::Uuid;

use crate::{AuditError, ResourceRef};

/// The last millisecond of year 9999: the latest time an RFC 3339 timestamp can spell.
pub(crate) const MAX_TIME_MS: u64 = 253_402_300_799_999;
/// What an event records in place of a code or reason that is not a stable code.
pub const INVALID_CODE: &str = "INVALID_CODE";
/// An event's code when nothing failed.
pub const OK: &str = "OK";
/// The longest free-text field (ids, policy version) kept, in bytes: longer values, which a
/// caller controls, are cut (at a character boundary) so no record grows without bound.
pub const MAX_FIELD_BYTES: usize = 256;
/// The longest code or reason accepted, in bytes.
const MAX_CODE_BYTES: usize = 64;

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// The PEP granted a read (`secret.access.granted`).
    AccessGranted,
    /// The PEP refused a read, or the URI was refused before the PEP
    /// (`secret.access.denied`).
    AccessDenied,
    /// A read completed (`secret.read`).
    Read,
    /// An authorized read failed at the provider (`secret.read.error`).
    ReadError,
    /// A `SecretsClient` read was served from its cache (`secret.read.cache_hit`); sampled.
    CacheHit,
}

impl EventType {
    /// Every event type.
    pub const ALL: [Self; 5] = [
        Self::AccessGranted,
        Self::AccessDenied,
        Self::Read,
        Self::ReadError,
        Self::CacheHit,
    ];

    /// The stable name, e.g. `"secret.access.granted"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AccessGranted => "secret.access.granted",
            Self::AccessDenied => "secret.access.denied",
            Self::Read => "secret.read",
            Self::ReadError => "secret.read.error",
            Self::CacheHit => "secret.read.cache_hit",
        }
    }

    /// The type of a name, exactly as [`as_str`](Self::as_str) spells it.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The outcome an event of this type has unless told otherwise: `PERMIT` for a grant, a
    /// read and a cache hit, `DENY` for a refusal, `ERROR` for a failed read.
    #[must_use]
    pub const fn default_outcome(self) -> Outcome {
        match self {
            Self::AccessGranted | Self::Read | Self::CacheHit => Outcome::Permit,
            Self::AccessDenied => Outcome::Deny,
            Self::ReadError => Outcome::Error,
        }
    }

    /// Whether events of this type may carry `outcome`: `PERMIT` only for grants, reads and
    /// cache hits; `DENY` or `ERROR` (undecided, e.g. `PDP_UNAVAILABLE`) for a refusal;
    /// `ERROR` for a failed read.
    #[must_use]
    pub const fn allows(self, outcome: Outcome) -> bool {
        matches!(
            (self, outcome),
            (
                Self::AccessGranted | Self::Read | Self::CacheHit,
                Outcome::Permit
            ) | (Self::AccessDenied, Outcome::Deny | Outcome::Error)
                | (Self::ReadError, Outcome::Error)
        )
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the audited step ended. The PEP's decisions map one to one: permit, deny, error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Authorized (and, for a read, read).
    Permit,
    /// Refused by policy, by the tenant mount guard or by the URI parser.
    Deny,
    /// Undecided (the PDP unavailable), or authorized but the read failed.
    Error,
}

impl Outcome {
    /// `"PERMIT"`, `"DENY"` or `"ERROR"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Permit => "PERMIT",
            Self::Deny => "DENY",
            Self::Error => "ERROR",
        }
    }

    /// The outcome of a name, exactly as [`as_str`](Self::as_str) spells it.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Permit, Self::Deny, Self::Error]
            .into_iter()
            .find(|outcome| outcome.as_str() == name)
    }

    /// `true` for [`Permit`](Self::Permit): OCSF status Success; the others are Failure.
    #[must_use]
    pub const fn is_success(self) -> bool {
        matches!(self, Self::Permit)
    }
}

/// The event's unique id: a random (v4) UUID, the consumers' dedupe key. Shown and parsed in
/// the lowercase hyphenated form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(Uuid);

impl EventId {
    pub(crate) fn random() -> Self {
        // A version 4 UUID from a per-thread generator (seeded from the OS): ids must be
        // unique (consumers dedupe on them), not unguessable, and a system call per event
        // would be the largest cost of auditing a read.
        let bytes = fastrand::u128(..).to_le_bytes();
        Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }

    /// The id's 128 bits.
    #[must_use]
    pub const fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

impl FromStr for EventId {
    type Err = AuditError;

    /// The lowercase hyphenated form only (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`), else
    /// `BAD_RECORD`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(text)
            .ok()
            .filter(|id| id.hyphenated().to_string() == text)
            .map(Self)
            .ok_or_else(|| {
                AuditError::bad_record("the event id must be a lowercase hyphenated UUID")
            })
    }
}

/// A stable code as this crate keeps it: 1 to 64 of `A-Z 0-9 _ .`, else `None`. Codes are
/// the workspace's error codes and deny reasons; anything else (a message, a URI) is not one.
pub(crate) fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE_BYTES
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// One audit event: a PEP decision, a completed or failed read, a refused URI, a sampled
/// cache hit.
///
/// Owned and `Send + 'static`, so it can be queued. It has **no URI field**: the
/// [`Auditor`](crate::Auditor) that creates it fills in the keyed
/// [`resource_ref`](Self::resource_ref), the provider and the mount from a `&SecretUri`, and
/// hashes the subject when `AUDIT_HASH_SUBJECT=true`. It never carries a secret value, a
/// token, a `jti` or a sender binding. The setters below add what the caller knows; a code or
/// reason that is not a stable code (`A-Z 0-9 _ .`, at most 64) is recorded as
/// [`INVALID_CODE`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEvent {
    pub(crate) id: EventId,
    pub(crate) kind: EventType,
    pub(crate) time_ms: u64,
    pub(crate) tenant: String,
    pub(crate) subject: Option<String>,
    pub(crate) subject_hashed: bool,
    pub(crate) resource_ref: Option<ResourceRef>,
    pub(crate) resource_ref_key_id: Option<String>,
    pub(crate) provider: Option<Provider>,
    pub(crate) mount: Option<String>,
    pub(crate) outcome: Outcome,
    pub(crate) code: Cow<'static, str>,
    pub(crate) reason: Option<Cow<'static, str>>,
    pub(crate) decision_id: Option<String>,
    pub(crate) grant_id: Option<String>,
    pub(crate) policy_version: Option<String>,
    pub(crate) use_number: Option<u32>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) workflow_run_id: Option<String>,
    pub(crate) node_id: Option<String>,
    pub(crate) system_id: Option<String>,
    pub(crate) latency_us: Option<u64>,
}

fn sanitized(code: Cow<'static, str>) -> Cow<'static, str> {
    if valid_code(&code) {
        code
    } else {
        Cow::Borrowed(INVALID_CODE)
    }
}

impl AuditEvent {
    /// A fresh event of `kind` for `tenant`, now, with a new id, the type's default outcome
    /// and the code `OK` (`AUTHZ_DENIED` for a refusal, `ERROR` for a failed read).
    pub(crate) fn new(kind: EventType, tenant: &str) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .min(MAX_TIME_MS);
        Self::blank(EventId::random(), kind, tenant, now)
    }

    /// An event with this id and time (at most `MAX_TIME_MS`) and nothing else set.
    pub(crate) fn blank(id: EventId, kind: EventType, tenant: &str, time_ms: u64) -> Self {
        let code = match kind {
            EventType::AccessDenied => "AUTHZ_DENIED",
            EventType::ReadError => "ERROR",
            _ => OK,
        };
        Self {
            id,
            kind,
            time_ms: time_ms.min(MAX_TIME_MS),
            tenant: tenant.to_owned(),
            subject: None,
            subject_hashed: false,
            resource_ref: None,
            resource_ref_key_id: None,
            provider: None,
            mount: None,
            outcome: kind.default_outcome(),
            code: Cow::Borrowed(code),
            reason: None,
            decision_id: None,
            grant_id: None,
            policy_version: None,
            use_number: None,
            correlation_id: None,
            client_id: None,
            workflow_run_id: None,
            node_id: None,
            system_id: None,
            latency_us: None,
        }
    }

    /// The outcome, when the event's type allows it (see [`EventType::allows`]); otherwise
    /// the event keeps its outcome. A refusal the PDP could not decide is `ERROR`.
    #[must_use]
    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        if self.kind.allows(outcome) {
            self.outcome = outcome;
        }
        self
    }

    /// The stable code: `OK`, or the error code (`AUTHZ_DENIED`, `PDP_UNAVAILABLE`,
    /// `NOT_FOUND`, `ILLEGAL_SEGMENT`, …).
    #[must_use]
    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.code = sanitized(code.into());
        self
    }

    /// The deny reason code of a refusal (`PDP_DENY`, `REPLAY`, `USES_EXHAUSTED`, …).
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<Cow<'static, str>>) -> Self {
        self.reason = Some(sanitized(reason.into()));
        self
    }

    /// The PDP's decision id.
    #[must_use]
    pub fn with_decision_id(mut self, id: impl Into<String>) -> Self {
        self.decision_id = Some(capped(id.into()));
        self
    }

    /// The grant used.
    #[must_use]
    pub fn with_grant_id(mut self, id: impl Into<String>) -> Self {
        self.grant_id = Some(capped(id.into()));
        self
    }

    /// The version of the policy that decided.
    #[must_use]
    pub fn with_policy_version(mut self, version: impl Into<String>) -> Self {
        self.policy_version = Some(capped(version.into()));
        self
    }

    /// Which use of the grant this read was (1-based).
    #[must_use]
    pub fn with_use_number(mut self, number: u32) -> Self {
        self.use_number = Some(number);
        self
    }

    /// The request's correlation id.
    #[must_use]
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(capped(id.into()));
        self
    }

    /// The OAuth client the caller acts through.
    #[must_use]
    pub fn with_client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(capped(id.into()));
        self
    }

    /// The workflow run.
    #[must_use]
    pub fn with_workflow_run_id(mut self, id: impl Into<String>) -> Self {
        self.workflow_run_id = Some(capped(id.into()));
        self
    }

    /// The workflow node.
    #[must_use]
    pub fn with_node_id(mut self, id: impl Into<String>) -> Self {
        self.node_id = Some(capped(id.into()));
        self
    }

    /// The calling system.
    #[must_use]
    pub fn with_system_id(mut self, id: impl Into<String>) -> Self {
        self.system_id = Some(capped(id.into()));
        self
    }

    /// How long the audited step took (kept in whole microseconds).
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency_us = Some(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        self
    }

    /// The unique id, the consumers' dedupe key.
    #[must_use]
    pub fn id(&self) -> EventId {
        self.id
    }

    /// What the event records.
    #[must_use]
    pub fn kind(&self) -> EventType {
        self.kind
    }

    /// When it happened (millisecond precision).
    #[must_use]
    pub fn time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.time_ms)
    }

    /// When it happened, in milliseconds since the Unix epoch (OCSF's `time`).
    #[must_use]
    pub fn time_millis(&self) -> u64 {
        self.time_ms
    }

    /// When it happened, as RFC 3339 in UTC with milliseconds, e.g.
    /// `2026-12-01T23:43:15.123Z`.
    #[must_use]
    pub fn time_rfc3339(&self) -> String {
        // time_ms never exceeds MAX_TIME_MS, which humantime formats.
        humantime::format_rfc3339_millis(self.time()).to_string()
    }

    /// The tenant.
    #[must_use]
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The subject as given, or its keyed hash when [`subject_hashed`](Self::subject_hashed).
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// Whether [`subject`](Self::subject) is a keyed hash (`AUDIT_HASH_SUBJECT=true`).
    #[must_use]
    pub fn subject_hashed(&self) -> bool {
        self.subject_hashed
    }

    /// The keyed reference to the canonical URI, when the URI parsed.
    #[must_use]
    pub fn resource_ref(&self) -> Option<&ResourceRef> {
        self.resource_ref.as_ref()
    }

    /// The id of the salt that keyed [`resource_ref`](Self::resource_ref) (and a hashed
    /// subject), when `SECRET_TENANT_SALT_ID` is set.
    #[must_use]
    pub fn resource_ref_key_id(&self) -> Option<&str> {
        self.resource_ref_key_id.as_deref()
    }

    /// The URI's provider, when the URI parsed.
    #[must_use]
    pub fn provider(&self) -> Option<Provider> {
        self.provider
    }

    /// The URI's mount, when the URI parsed.
    #[must_use]
    pub fn mount(&self) -> Option<&str> {
        self.mount.as_deref()
    }

    /// How the step ended.
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// `OK` or the stable error code.
    #[must_use]
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The deny reason code of a refusal.
    #[must_use]
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The PDP's decision id.
    #[must_use]
    pub fn decision_id(&self) -> Option<&str> {
        self.decision_id.as_deref()
    }

    /// The grant used.
    #[must_use]
    pub fn grant_id(&self) -> Option<&str> {
        self.grant_id.as_deref()
    }

    /// The version of the policy that decided.
    #[must_use]
    pub fn policy_version(&self) -> Option<&str> {
        self.policy_version.as_deref()
    }

    /// Which use of the grant this read was (1-based).
    #[must_use]
    pub fn use_number(&self) -> Option<u32> {
        self.use_number
    }

    /// The request's correlation id.
    #[must_use]
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// The OAuth client.
    #[must_use]
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// The workflow run.
    #[must_use]
    pub fn workflow_run_id(&self) -> Option<&str> {
        self.workflow_run_id.as_deref()
    }

    /// The workflow node.
    #[must_use]
    pub fn node_id(&self) -> Option<&str> {
        self.node_id.as_deref()
    }

    /// The calling system.
    #[must_use]
    pub fn system_id(&self) -> Option<&str> {
        self.system_id.as_deref()
    }

    /// How long the step took, in whole microseconds.
    #[must_use]
    pub fn latency(&self) -> Option<Duration> {
        self.latency_us.map(Duration::from_micros)
    }
}

/// `text` cut to at most [`MAX_FIELD_BYTES`], at a character boundary.
fn capped(mut text: String) -> String {
    if text.len() > MAX_FIELD_BYTES {
        let mut end = MAX_FIELD_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_static<T: Send + Sync + 'static>() {}

    #[test]
    fn types_and_outcomes_have_stable_names() {
        assert_send_static::<AuditEvent>();
        let names: Vec<_> = EventType::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "secret.access.granted",
                "secret.access.denied",
                "secret.read",
                "secret.read.error",
                "secret.read.cache_hit"
            ]
        );
        for kind in EventType::ALL {
            assert_eq!(EventType::from_name(kind.as_str()), Some(kind));
            assert!(kind.allows(kind.default_outcome()));
        }
        assert_eq!(EventType::from_name("SECRET.READ"), None);
        for outcome in [Outcome::Permit, Outcome::Deny, Outcome::Error] {
            assert_eq!(Outcome::from_name(outcome.as_str()), Some(outcome));
        }
        assert!(!EventType::Read.allows(Outcome::Deny));
        assert!(EventType::AccessDenied.allows(Outcome::Error));
    }

    #[test]
    fn setters_keep_codes_codes() {
        let event = AuditEvent::new(EventType::AccessDenied, "t")
            .with_code("PDP_UNAVAILABLE")
            .with_outcome(Outcome::Error)
            .with_reason("openbao+kv2://secret/app#token")
            .with_latency(Duration::from_nanos(1_999));
        assert_eq!(event.code(), "PDP_UNAVAILABLE");
        assert_eq!(event.outcome(), Outcome::Error);
        assert_eq!(event.reason(), Some("INVALID_CODE"));
        assert_eq!(event.latency(), Some(Duration::from_micros(1)));
        let read = AuditEvent::new(EventType::Read, "t").with_outcome(Outcome::Deny);
        assert_eq!(read.outcome(), Outcome::Permit);
        assert_eq!(read.with_code("").code(), "INVALID_CODE");
        assert_eq!(AuditEvent::new(EventType::ReadError, "t").code(), "ERROR");
    }

    #[test]
    fn ids_are_random_and_parse_strictly() {
        let a = AuditEvent::new(EventType::Read, "t");
        let b = AuditEvent::new(EventType::Read, "t");
        assert_ne!(a.id(), b.id());
        let text = a.id().to_string();
        assert_eq!(text.parse::<EventId>().ok(), Some(a.id()));
        assert!(text.to_uppercase().parse::<EventId>().is_err());
        assert!(text.replace('-', "").parse::<EventId>().is_err());
        assert!(a.time_rfc3339().ends_with('Z'));
        assert_eq!(
            humantime::parse_rfc3339(&a.time_rfc3339()).ok(),
            Some(a.time())
        );
    }
}
