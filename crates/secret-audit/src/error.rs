//! [`AuditError`]: one error type for the crate, with stable codes.

use std::borrow::Cow;
use std::time::Duration;

use secret_config::{BoxError, ConfigError};

/// What went wrong while configuring, delivering or parsing audit events.
///
/// Every variant has a stable [`code`](Self::code). Messages end with the code in brackets and
/// never contain a salt, a subject, a secret URI or the bytes of a record being parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A missing or invalid setting (`SECRET_TENANT_SALT`, `AUDIT_QUEUE_CAPACITY`, …).
    #[error("invalid audit configuration: {setting} {reason} [CONFIG]")]
    Config {
        /// The setting at fault, e.g. `SECRET_TENANT_SALT`.
        setting: Cow<'static, str>,
        /// What is wrong with it; never its value.
        reason: Cow<'static, str>,
        /// The local cause, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A transport could not deliver a batch (the broker is down, refused it, …). The queue
    /// keeps the batch and retries it.
    #[error("audit delivery failed: {reason} [AUDIT_DELIVERY]")]
    Delivery {
        /// What failed, e.g. `broker unreachable`; never an event's content.
        reason: Cow<'static, str>,
        /// The transport's own error.
        #[source]
        source: Option<BoxError>,
    },
    /// One delivery attempt did not finish within the queue's `attempt_timeout` (or within
    /// what was left of `close`'s deadline).
    #[error("audit delivery attempt timed out after {} ms [AUDIT_TIMEOUT]", .after.as_millis())]
    Timeout {
        /// How long the attempt was given.
        after: Duration,
    },
    /// The queue's background thread or its runtime could not be started.
    #[error("the audit queue could not start its drainer [AUDIT_START]")]
    Start {
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Bytes that are not an audit record of this crate (an OCSF API Activity event as
    /// [`to_ocsf`](crate::to_ocsf) writes it), or a malformed `resource_ref`.
    #[error("not an audit record: {reason}{} [BAD_RECORD]", position(*.line, *.column))]
    BadRecord {
        /// What is wrong, naming a field at most; never the input's bytes.
        reason: Cow<'static, str>,
        /// The 1-based line of the JSON error, or 0 when not known.
        line: usize,
        /// The 1-based column of the JSON error, or 0 when not known.
        column: usize,
    },
}

fn position(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" at line {line} column {column}")
    }
}

impl AuditError {
    /// The stable code: `CONFIG`, `AUDIT_DELIVERY`, `AUDIT_TIMEOUT`, `AUDIT_START` or
    /// `BAD_RECORD`.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Config { .. } => "CONFIG",
            Self::Delivery { .. } => "AUDIT_DELIVERY",
            Self::Timeout { .. } => "AUDIT_TIMEOUT",
            Self::Start { .. } => "AUDIT_START",
            Self::BadRecord { .. } => "BAD_RECORD",
        }
    }

    /// The setting a `CONFIG` error is about, e.g. `Some("SECRET_TENANT_SALT")`.
    #[must_use]
    pub fn setting(&self) -> Option<&str> {
        match self {
            Self::Config { setting, .. } => Some(setting),
            _ => None,
        }
    }

    /// A `CONFIG` error about `setting`.
    pub(crate) fn config(
        setting: impl Into<Cow<'static, str>>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::Config {
            setting: setting.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// An `AUDIT_DELIVERY` error for a transport: `reason` names what failed, never an
    /// event's content; `source` is the transport's own error.
    pub fn delivery(reason: impl Into<Cow<'static, str>>, source: Option<BoxError>) -> Self {
        Self::Delivery {
            reason: reason.into(),
            source,
        }
    }

    /// A `BAD_RECORD` error without a position.
    pub(crate) fn bad_record(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::BadRecord {
            reason: reason.into(),
            line: 0,
            column: 0,
        }
    }
}

impl From<ConfigError> for AuditError {
    fn from(error: ConfigError) -> Self {
        let (setting, reason, source) = error.into_parts();
        Self::Config {
            setting,
            reason,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages_are_stable() {
        let cases = [
            (
                AuditError::config("SECRET_TENANT_SALT", "is not set"),
                "CONFIG",
                "invalid audit configuration: SECRET_TENANT_SALT is not set [CONFIG]",
            ),
            (
                AuditError::delivery("broker unreachable", None),
                "AUDIT_DELIVERY",
                "audit delivery failed: broker unreachable [AUDIT_DELIVERY]",
            ),
            (
                AuditError::Timeout {
                    after: Duration::from_millis(1500),
                },
                "AUDIT_TIMEOUT",
                "audit delivery attempt timed out after 1500 ms [AUDIT_TIMEOUT]",
            ),
            (
                AuditError::BadRecord {
                    reason: "not JSON".into(),
                    line: 1,
                    column: 7,
                },
                "BAD_RECORD",
                "not an audit record: not JSON at line 1 column 7 [BAD_RECORD]",
            ),
            (
                AuditError::bad_record("class_uid must be 6003"),
                "BAD_RECORD",
                "not an audit record: class_uid must be 6003 [BAD_RECORD]",
            ),
        ];
        for (error, code, message) in cases {
            assert_eq!(error.code(), code);
            assert_eq!(error.to_string(), message);
        }
        let from: AuditError = ConfigError::new("AUDIT_QUEUE_FULL", "must be drop or block").into();
        assert_eq!(
            (from.code(), from.setting()),
            ("CONFIG", Some("AUDIT_QUEUE_FULL"))
        );
        assert_eq!(AuditError::bad_record("x").setting(), None);
    }
}
