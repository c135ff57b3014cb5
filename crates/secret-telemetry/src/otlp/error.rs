//! [`OtlpError`]: what can go wrong setting up, flushing or shutting down the export.

use std::borrow::Cow;
use std::time::Duration;

/// A boxed error kept as the `source` of an [`OtlpError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the OTLP pipeline could not be built, flushed or shut down.
///
/// Every variant has a stable [`code`](Self::code). Messages name the setting (by its
/// environment variable, also for settings made in code) or the signal, never a value: no
/// header (which may hold a token), no URL, no file content. Causes are kept as
/// [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpError {
    /// A setting is missing or invalid (an endpoint that is not `http(s)://host`, plain
    /// `http://` to a host that is not loopback, malformed headers, an unreadable CA bundle,
    /// a zero timeout, a filter that does not parse).
    #[error("{setting} {reason} [CONFIG]")]
    Config {
        /// The setting at fault, e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`.
        setting: Cow<'static, str>,
        /// What is wrong with it, never its value.
        reason: Cow<'static, str>,
        /// The local cause (secret-http's error, an unreadable file), when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The exporter's own I/O thread (a one-thread tokio runtime) could not start.
    #[error("the OTLP exporter's runtime could not start [RUNTIME]")]
    Runtime {
        /// The I/O error of starting it.
        #[source]
        source: std::io::Error,
    },
    /// [`Pipeline::init`](super::Pipeline::init): a global `tracing` subscriber is already
    /// set. Compose [`Pipeline::layer`](super::Pipeline::layer) into that one instead.
    #[error("a global tracing subscriber is already set [SUBSCRIBER_EXISTS]")]
    SubscriberExists {
        /// tracing-subscriber's error.
        #[source]
        source: BoxError,
    },
    /// Flushing or shutting down `signal` (`traces` or `metrics`) did not finish in time:
    /// the endpoint did not answer. What was not sent is lost; nothing waits any longer.
    #[error("OTLP {signal} export did not finish within {timeout:?} [TIMEOUT]")]
    Timeout {
        /// `traces` or `metrics`.
        signal: &'static str,
        /// The time it was given.
        timeout: Duration,
    },
    /// Exporting `signal` (`traces` or `metrics`) failed (the endpoint refused the
    /// connection or answered an error status): what was not sent is lost.
    #[error("OTLP {signal} export failed [OTLP_EXPORT]")]
    Export {
        /// `traces` or `metrics`.
        signal: &'static str,
        /// The OpenTelemetry SDK's error.
        #[source]
        source: BoxError,
    },
}

impl OtlpError {
    /// The stable code: `CONFIG`, `RUNTIME`, `SUBSCRIBER_EXISTS`, `TIMEOUT` or `OTLP_EXPORT`.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Config { .. } => "CONFIG",
            Self::Runtime { .. } => "RUNTIME",
            Self::SubscriberExists { .. } => "SUBSCRIBER_EXISTS",
            Self::Timeout { .. } => "TIMEOUT",
            Self::Export { .. } => "OTLP_EXPORT",
        }
    }

    /// The setting at fault, for [`Config`](Self::Config) errors.
    #[must_use]
    pub fn setting(&self) -> Option<&str> {
        match self {
            Self::Config { setting, .. } => Some(setting),
            _ => None,
        }
    }

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

    pub(crate) fn config_from(
        setting: impl Into<Cow<'static, str>>,
        reason: impl Into<Cow<'static, str>>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::Config {
            setting: setting.into(),
            reason: reason.into(),
            source: Some(source.into()),
        }
    }
}

impl From<secret_config::ConfigError> for OtlpError {
    fn from(error: secret_config::ConfigError) -> Self {
        let (setting, reason, source) = error.into_parts();
        Self::Config {
            setting,
            reason,
            source,
        }
    }
}
