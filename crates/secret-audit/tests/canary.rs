//! Canary: a planted salt, a subject under hashing and a URI with a path, a `#key` and a
//! `?version` appear in no `Debug`, `Display`, OCSF record, error, log line or span (the
//! queue's `audit_publish`, written with its fields when it closes) of this crate.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use secret_audit::{
    AuditConfig, AuditError, AuditEvent, AuditKey, AuditSink, Auditor, EventType, MemorySink,
    QueueConfig, QueueSink, RetryConfig, Transport, from_ocsf, to_ocsf, to_ocsf_bytes,
};
use secret_uri::SecretUri;
use tracing_subscriber::fmt::MakeWriter;

const SALT: &str = "canary-salt-5b0c-0123456789abcdef";
const SUBJECT: &str = "canary-subject-alice";
const URI: &str = "openbao+kv2://secret/canary-path/db#canary-key?version=7";
const CANARIES: [&str; 4] = ["canary-salt", "canary-subject", "canary-path", "canary-key"];

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Refuses every batch, so the queue logs its retry warning, and counts attempts.
struct Refusing;

impl Transport for Refusing {
    fn deliver<'a>(
        &'a mut self,
        _batch: &'a [AuditEvent],
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>> {
        Box::pin(async { Err(AuditError::delivery("broker unreachable", None)) })
    }
}

fn assert_clean(what: &str, shown: &str) {
    for canary in CANARIES {
        assert!(!shown.contains(canary), "{what} shows {canary}: {shown}");
    }
    assert!(
        !shown.contains("version=7"),
        "{what} shows the query: {shown}"
    );
}

#[test]
fn nothing_secret_escapes() -> Result<(), Box<dyn std::error::Error>> {
    let logs = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .finish();
    tracing::subscriber::set_global_default(subscriber)?;

    let vars = |name: &str| match name {
        "SECRET_TENANT_SALT" => Some(SALT.to_owned()),
        "AUDIT_HASH_SUBJECT" => Some("true".to_owned()),
        _ => None,
    };
    let key = AuditKey::from_lookup(&vars)?;
    let config = AuditConfig::from_lookup(&vars)?;
    let memory = Arc::new(MemorySink::new());
    let auditor = Auditor::new(key.clone(), memory.clone(), &config);
    let uri = SecretUri::parse(URI)?;

    let mut shown = vec![
        format!("{key:?}"),
        format!("{auditor:?}"),
        format!("{config:?}"),
    ];
    for kind in EventType::ALL {
        let event = auditor
            .event(kind, "acme", Some(SUBJECT), Some(&uri))
            .with_code("OK")
            // Not a stable code: recorded as INVALID_CODE, never as given.
            .with_reason(URI);
        shown.push(format!("{event:?}"));
        shown.push(to_ocsf(&event).to_string());
        shown.push(String::from_utf8(to_ocsf_bytes(&event))?);
        let event = from_ocsf(&to_ocsf_bytes(&event))?;
        shown.push(format!("{event:?}"));
        auditor.publish(event);
    }
    assert!(memory.wait_for(EventType::ALL.len(), Duration::from_secs(10)));
    shown.push(format!("{:?}", memory.events()));

    // Errors: a short salt, records that carry the canaries.
    let short = AuditKey::new(b"canary-salt-x", None).err();
    shown.push(format!(
        "{short:?} {}",
        short.as_ref().map(ToString::to_string).unwrap_or_default()
    ));
    for record in [
        format!("{{\"uri\":\"{URI}\"}}"),
        format!("{{\"class_uid\":\"{SALT}\"}}"),
        format!("{{\"metadata\":{{\"uid\":\"{SUBJECT}\"}}}}"),
        format!("\"{URI}"),
        format!("{{\"{SUBJECT}\": 1, \"{SUBJECT}\": 2}}"),
    ] {
        let error = from_ocsf(record.as_bytes()).err();
        assert_eq!(error.as_ref().map(AuditError::code), Some("BAD_RECORD"));
        shown.push(format!(
            "{error:?} {}",
            error.as_ref().map(ToString::to_string).unwrap_or_default()
        ));
    }

    // The queue: a full queue and a refusing transport both log.
    let queue = QueueSink::new(
        Refusing,
        QueueConfig::default()
            .with_capacity(1)
            .with_warn_interval(Duration::ZERO)
            .with_retry(
                RetryConfig::default()
                    .with_delays(Duration::from_millis(1), Duration::from_millis(2)),
            ),
    )?;
    for _ in 0..5 {
        queue.publish(auditor.event(EventType::Read, "acme", Some(SUBJECT), Some(&uri)));
    }
    shown.push(format!("{queue:?}"));
    let report = queue.close(Duration::from_millis(200));
    shown.push(format!("{report:?} {:?}", queue.stats()));
    drop(queue);

    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap_or_else(PoisonError::into_inner))
        .into_owned();
    assert!(logged.contains("audit_dropped_total"), "{logged}");
    assert!(logged.contains("AUDIT_DELIVERY"), "{logged}");
    assert!(logged.contains("audit_publish{"), "{logged}");
    shown.push(logged);
    for (i, text) in shown.iter().enumerate() {
        assert_clean(&format!("item {i}"), text);
    }
    Ok(())
}
