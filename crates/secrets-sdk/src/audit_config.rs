//! The clients' audit settings: the tenant salt as an [`AuditKey`] and an [`Auditor`] over a
//! sink. The events themselves, their keyed `resource_ref` and the sinks are `secret-audit`'s.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use secret_audit::{AuditConfig, AuditError, AuditKey, AuditSink, Auditor, MIN_SALT_BYTES};
use secret_config::Env;
use zeroize::Zeroizing;

use crate::Error;

pub(crate) use secret_audit::{TENANT_SALT_ENV, TENANT_SALT_ID_ENV};

/// The tenant salt given to a builder (`tenant_salt`) or read from `SECRET_TENANT_SALT`, with
/// its optional id (`SECRET_TENANT_SALT_ID`), as the key of audit references. `None` when
/// neither is set (or the value is blank).
pub(crate) fn key(given: Option<&SecretString>, env: &Env<'_>) -> Result<Option<AuditKey>, Error> {
    let (salt, setting) = match given {
        Some(salt) => (
            Zeroizing::new(salt.expose_secret().trim().to_owned()),
            "tenant_salt",
        ),
        None => match env.raw(TENANT_SALT_ENV) {
            Some(text) => {
                let text = Zeroizing::new(text);
                (Zeroizing::new(text.trim().to_owned()), TENANT_SALT_ENV)
            }
            None => return Ok(None),
        },
    };
    if salt.is_empty() {
        return Ok(None);
    }
    if salt.len() < MIN_SALT_BYTES {
        return Err(Error::config(
            setting,
            format!("must be at least {MIN_SALT_BYTES} bytes (32 random bytes recommended)"),
        ));
    }
    let key_id = env.get(TENANT_SALT_ID_ENV);
    AuditKey::new(salt.as_bytes(), key_id.as_deref())
        .map(Some)
        .map_err(audit_config_error)
}

/// How long closing a client waits for the audit sink it created to deliver what is queued.
pub(crate) const CLOSE_FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

/// The sink the environment asks for: with `ENABLE_KAFKA_PRODUCER=true`, the Kafka sink of
/// the `KAFKA_*` settings; `None` otherwise.
///
/// # Errors
/// `CONFIG` naming the setting; `ENABLE_KAFKA_PRODUCER` itself when this build has no `kafka`
/// feature (never silently unaudited).
pub(crate) fn env_sink(
    env: &Env<'_>,
    metrics: &secret_telemetry::Metrics,
) -> Result<Option<Arc<dyn AuditSink>>, Error> {
    #[cfg(feature = "kafka")]
    {
        let lookup = |name: &str| env.raw(name);
        let sink = secret_audit::KafkaSink::from_lookup_with_metrics(&lookup, metrics.clone())
            .map_err(audit_config_error)?;
        Ok(sink.map(|sink| Arc::new(sink) as Arc<dyn AuditSink>))
    }
    #[cfg(not(feature = "kafka"))]
    {
        let _ = metrics;
        let enabled = env
            .flag("ENABLE_KAFKA_PRODUCER", false)
            .map_err(|e| audit_config_error(AuditError::from(e)))?;
        if enabled {
            return Err(Error::config(
                "ENABLE_KAFKA_PRODUCER",
                "is true but this build has no `kafka` feature",
            ));
        }
        Ok(None)
    }
}

/// Closes a sink the client created, logging what it could not deliver.
pub(crate) fn close_owned(sink: Option<&Arc<dyn AuditSink>>) {
    if let Some(sink) = sink {
        let report = sink.close(CLOSE_FLUSH);
        if report.lost > 0 || report.dropped > 0 {
            tracing::warn!(
                lost = report.lost,
                dropped = report.dropped,
                "audit events were not delivered"
            );
        }
    }
}

/// An auditor keyed with `key` publishing to `sink`, with the `AUDIT_*` settings of `env`.
pub(crate) fn auditor(
    key: AuditKey,
    sink: Arc<dyn AuditSink>,
    env: &Env<'_>,
) -> Result<Auditor, Error> {
    let lookup = |name: &str| env.raw(name);
    let config = AuditConfig::from_lookup(&lookup).map_err(audit_config_error)?;
    Ok(Auditor::new(key, sink, &config))
}

/// An audit `CONFIG` error as [`Error::Config`], with its setting and reason.
pub(crate) fn audit_config_error(error: AuditError) -> Error {
    let (setting, reason) = match &error {
        AuditError::Config {
            setting, reason, ..
        } => (setting.to_string(), reason.to_string()),
        other => (
            "audit".to_owned(),
            format!("cannot start [{}]", other.code()),
        ),
    };
    Error::Config {
        setting,
        reason,
        source: Some(Box::new(error)),
    }
}
