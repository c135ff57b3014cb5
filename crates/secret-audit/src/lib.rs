//! Non-leaky audit events for secret reads.
//!
//! Every PEP decision (granted or refused, with its reason and code), every completed or
//! failed read, every URI refused before the PEP and a sample of `SecretsClient` cache hits
//! becomes one [`AuditEvent`]. An event never carries a secret value, a token, a `jti`, a
//! sender binding or the URI: it names the secret by its [`ResourceRef`], the first 16 bytes
//! of HMAC-SHA256 keyed with the tenant salt (`SECRET_TENANT_SALT`) over the canonical URI,
//! and the salt's optional id (`SECRET_TENANT_SALT_ID`) so that a salt can be rotated.
//!
//! - [`AuditKey`] holds the salt (zeroizing, redacted) and computes references and hashed
//!   subjects; [`Auditor`] makes keyed events (there is no URI field to fill) and publishes
//!   them; [`AuditConfig`] reads the `AUDIT_*` settings.
//! - [`AuditSink`] is where events go: [`NoopSink`] (auditing disabled), [`MemorySink`]
//!   (tests), and [`QueueSink`], a bounded queue drained in batches by a background thread
//!   into a [`Transport`] (Kafka, a log pipeline), with retries and a flushing
//!   [`close`](AuditSink::close). Publishing never waits on the network.
//! - [`to_ocsf`] writes an event as an OCSF 1.3 API Activity record (class 6003, activity
//!   Read), the format SIEMs ingest; [`from_ocsf`] parses one back, strictly.
//!
//! The record format, field by field, is in `docs/audit.md`.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use secret_audit::{AuditConfig, AuditKey, AuditSink, Auditor, EventType, MemorySink, from_ocsf, to_ocsf_bytes};
//! use secret_uri::SecretUri;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The reference is keyed: these hold byte for byte.
//! for (salt, uri, reference) in [
//!     ("tenant-salt-0001-for-acme-corp-x", "openbao+kv2://secret/app/api#token?version=3", "8cbd64017dc68f7258e00a0a7a0f572c"),
//!     ("tenant-salt-0001-for-acme-corp-x", "file://dc-infra/config.json#password", "8f2f4205826405363900cc07640d38ff"),
//!     ("s3cr3t-salt-for-globex-2026-0002", "hashicorp+kv2://secret/crud/db", "34799e215ddf118f464024ae4a8708bb"),
//! ] {
//!     let key = AuditKey::new(salt.as_bytes(), None)?;
//!     assert_eq!(key.resource_ref(&SecretUri::parse(uri)?).as_str(), reference);
//! }
//!
//! // An auditor makes keyed events; the URI itself never enters them.
//! let vars = |name: &str| match name {
//!     "SECRET_TENANT_SALT" => Some("tenant-salt-0001-for-acme-corp-x".to_owned()),
//!     "SECRET_TENANT_SALT_ID" => Some("2026-q4".to_owned()),
//!     _ => None,
//! };
//! let sink = Arc::new(MemorySink::new());
//! let auditor = Auditor::new(AuditKey::from_lookup(&vars)?, sink.clone(), &AuditConfig::from_lookup(&vars)?);
//! let uri = SecretUri::parse("openbao+kv2://secret/app/api#token?version=3")?;
//! let event = auditor
//!     .event(EventType::Read, "acme", Some("alice"), Some(&uri))
//!     .with_grant_id("g-1")
//!     .with_use_number(1)
//!     .with_latency(Duration::from_micros(840));
//! auditor.publish(event);
//! assert!(sink.wait_for(1, Duration::from_secs(5)));
//!
//! // As OCSF JSON: keyed, no URI, and it parses back to the same event.
//! let event = &sink.events()[0];
//! let record = to_ocsf_bytes(event);
//! let text = String::from_utf8(record.clone())?;
//! assert!(text.contains("\"uid\":\"8cbd64017dc68f7258e00a0a7a0f572c\""));
//! assert!(text.contains("\"class_uid\":6003") && text.contains("\"version\":\"1.3.0\""));
//! assert!(!text.contains("app/api") && !text.contains("token"));
//! assert_eq!(&from_ocsf(&record)?, event);
//! assert_eq!(from_ocsf(b"{\"class_uid\":4001}").unwrap_err().code(), "BAD_RECORD");
//! # Ok(()) }
//! ```
//!
//! # Features
//! - `kafka`: `KafkaSink` (module `kafka`), events as keyed OCSF records with CloudEvents
//!   headers in `<KAFKA_TOPIC_PREFIX>secrets.audit`, over rskafka; it adds `secret-http` (for
//!   TLS) to `secret-uri`, `secret-config` and `secret-telemetry` (the queue's metrics and
//!   span names), this crate's only workspace dependencies otherwise. See `docs/audit.md`
//!   (The Kafka sink).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod auditor;
mod config;
mod error;
mod event;
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub mod kafka;
mod key;
mod ocsf;
mod queue;
mod resource_ref;
mod sink;
mod uri_hash;

pub use auditor::Auditor;
pub use config::{
    AuditConfig, DEFAULT_BLOCK_WAIT, DEFAULT_SAMPLE_CACHE_HIT_N, HASH_SUBJECT_ENV,
    QUEUE_BLOCK_MS_ENV, QUEUE_CAPACITY_ENV, QUEUE_FULL_ENV, SAMPLE_CACHE_HIT_ENV,
};
pub use error::AuditError;
pub use event::{AuditEvent, EventId, EventType, INVALID_CODE, MAX_FIELD_BYTES, OK, Outcome};
#[cfg(feature = "kafka")]
pub use kafka::{KafkaConfig, KafkaSink, KafkaTransport};
pub use key::{AuditKey, MAX_KEY_ID_BYTES, MIN_SALT_BYTES, TENANT_SALT_ENV, TENANT_SALT_ID_ENV};
pub use ocsf::{
    ACTIVITY_ID, CATEGORY_UID, CLASS_UID, MAX_RECORD_BYTES, OCSF_VERSION, PRODUCT_NAME,
    RESOURCE_TYPE, TYPE_UID, from_ocsf, to_ocsf, to_ocsf_bytes,
};
pub use queue::{Overflow, QueueConfig, QueueSink, RetryConfig, Transport};
pub use resource_ref::ResourceRef;
pub use sink::{AuditSink, CloseReport, MemorySink, NoopSink, SinkStats};
pub use uri_hash::UriHash;
