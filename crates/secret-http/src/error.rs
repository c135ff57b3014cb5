//! [`HttpError`]: the one classification of what can go wrong on the wire.

use std::fmt;
use std::time::Duration;

/// A boxed error kept as the `source` of a transport failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The setting a [`HttpError::Config`] is about, so that each client can name it in its own
/// terms (`VAULT_CACERT`, `AUTHZEN_CA_BUNDLE`, …) without reading the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Setting {
    /// The base URL of the server.
    Url,
    /// [`TlsConfig::ca_bundle`](crate::TlsConfig::ca_bundle).
    CaBundle,
    /// The certificate chain of [`TlsConfig::client_cert`](crate::TlsConfig::client_cert).
    ClientCert,
    /// The private key of [`TlsConfig::client_cert`](crate::TlsConfig::client_cert).
    ClientKey,
    /// [`ClientConfig::timeout`](crate::ClientConfig::timeout).
    Timeout,
    /// [`RetryPolicy::attempts`](crate::RetryPolicy::attempts).
    RetryAttempts,
    /// The TLS stack itself (protocol versions of the crypto provider).
    Tls,
}

impl Setting {
    /// A short stable name, e.g. `"ca_bundle"` (a name, not an error code).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Url => "url",
            Self::CaBundle => "ca_bundle",
            Self::ClientCert => "client_cert",
            Self::ClientKey => "client_key",
            Self::Timeout => "timeout",
            Self::RetryAttempts => "retry_attempts",
            Self::Tls => "tls",
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a request (or building a client) failed.
///
/// Every variant has a stable [`code`](Self::code). Messages name the class of failure and the
/// HTTP status where there is one; they never contain a URL, a header value or a body. The
/// underlying error (hyper's, rustls', an `io::Error` for an unreadable file) is kept as
/// [`std::error::Error::source`], never formatted into the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// A setting is unusable (a URL that is not `http(s)://host`, an unreadable CA bundle, a
    /// client key that does not fit its certificate, a zero timeout).
    #[error("invalid HTTP client setting `{setting}`: {reason} [CONFIG]")]
    Config {
        /// The setting at fault.
        setting: Setting,
        /// What is wrong, without the setting's value.
        reason: &'static str,
        /// The local cause (an `io::Error`, a PEM or rustls error), when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// Plain `http://` to a host that is not loopback, without the client allowing it.
    #[error("plain http:// is only allowed to loopback hosts [INSECURE_HTTP]")]
    InsecureHttp,
    /// The connection could not be set up (refused, DNS, connect timeout): the request was
    /// never sent.
    #[error("HTTP connection failed [CONNECT]")]
    Connect {
        /// The connector's error.
        #[source]
        source: BoxError,
    },
    /// The connection broke after it was set up and before a response head arrived: the
    /// request may have reached the server.
    #[error("HTTP connection lost before a response [CONNECTION_LOST]")]
    ConnectionLost {
        /// hyper's error.
        #[source]
        source: BoxError,
    },
    /// The TLS handshake failed (unknown CA, bad certificate, protocol mismatch). A wrong CA
    /// stays wrong, so this is never retried.
    #[error("TLS handshake failed [TLS]")]
    Tls {
        /// The error chain holding rustls' error.
        #[source]
        source: BoxError,
    },
    /// No complete response within the per-attempt timeout or the request's deadline.
    #[error("no response within {timeout:?} [TIMEOUT]")]
    Timeout {
        /// The time the attempt was given.
        timeout: Duration,
    },
    /// The server answered with a status the request does not accept: one other than
    /// [`Request::with_expect_status`](crate::Request::with_expect_status), or (for
    /// [`HttpClient::send_retrying`](crate::HttpClient::send_retrying)) one of
    /// [`RETRYABLE_STATUSES`](crate::RETRYABLE_STATUSES) on the last attempt.
    #[error("HTTP {status} [STATUS]")]
    Status {
        /// The HTTP status.
        status: u16,
    },
    /// The response body is larger than the cap (by `Content-Length` or as it streamed).
    #[error("response larger than {limit} bytes [TOO_LARGE]")]
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The connection ended or broke mid-body, after a head with this status.
    #[error("response body cut off after HTTP {status} [BODY_CUT]")]
    BodyCut {
        /// The status of the head that did arrive.
        status: u16,
        /// hyper's error.
        #[source]
        source: BoxError,
    },
    /// The body is not valid HTTP framing (a bad chunk), after a head with this status.
    #[error("response body is not valid HTTP framing after HTTP {status} [BAD_FRAMING]")]
    BadFraming {
        /// The status of the head that did arrive.
        status: u16,
        /// hyper's error.
        #[source]
        source: BoxError,
    },
}

impl HttpError {
    /// The stable, never-reused code of this error, e.g. `"BODY_CUT"`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config { .. } => "CONFIG",
            Self::InsecureHttp => "INSECURE_HTTP",
            Self::Connect { .. } => "CONNECT",
            Self::ConnectionLost { .. } => "CONNECTION_LOST",
            Self::Tls { .. } => "TLS",
            Self::Timeout { .. } => "TIMEOUT",
            Self::Status { .. } => "STATUS",
            Self::TooLarge { .. } => "TOO_LARGE",
            Self::BodyCut { .. } => "BODY_CUT",
            Self::BadFraming { .. } => "BAD_FRAMING",
        }
    }

    /// The HTTP status of the response this error came with, if a head arrived.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status }
            | Self::BodyCut { status, .. }
            | Self::BadFraming { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether sending the same request again may succeed: connection failures, timeouts,
    /// cut bodies and [retryable statuses](crate::RETRYABLE_STATUSES). What may actually be
    /// resent also depends on whether the request is idempotent; see
    /// [`HttpClient::send_retrying`](crate::HttpClient::send_retrying).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { .. }
            | Self::ConnectionLost { .. }
            | Self::Timeout { .. }
            | Self::BodyCut { .. } => true,
            Self::Status { status } => crate::RETRYABLE_STATUSES.contains(status),
            _ => false,
        }
    }

    /// Whether the request surely was not acted on: it was never sent (connection refused),
    /// or the server refused it before handling it (429; 503: sealed, standby, overloaded).
    /// Only these failures of a non-idempotent request are retried.
    #[must_use]
    pub fn surely_not_handled(&self) -> bool {
        match self {
            Self::Connect { .. } => true,
            Self::Status { status } => matches!(status, 429 | 503),
            _ => false,
        }
    }

    pub(crate) fn config(setting: Setting, reason: &'static str) -> Self {
        Self::Config {
            setting,
            reason,
            source: None,
        }
    }

    pub(crate) fn config_from(
        setting: Setting,
        reason: &'static str,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::Config {
            setting,
            reason,
            source: Some(source.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_messages_end_with_them() {
        let io = || -> BoxError { Box::new(std::io::Error::other("x")) };
        let cases = [
            (
                HttpError::config(Setting::CaBundle, "holds no PEM"),
                "CONFIG",
            ),
            (HttpError::InsecureHttp, "INSECURE_HTTP"),
            (HttpError::Connect { source: io() }, "CONNECT"),
            (
                HttpError::ConnectionLost { source: io() },
                "CONNECTION_LOST",
            ),
            (HttpError::Tls { source: io() }, "TLS"),
            (
                HttpError::Timeout {
                    timeout: Duration::from_secs(1),
                },
                "TIMEOUT",
            ),
            (HttpError::Status { status: 503 }, "STATUS"),
            (HttpError::TooLarge { limit: 10 }, "TOO_LARGE"),
            (
                HttpError::BodyCut {
                    status: 200,
                    source: io(),
                },
                "BODY_CUT",
            ),
            (
                HttpError::BadFraming {
                    status: 200,
                    source: io(),
                },
                "BAD_FRAMING",
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code);
            assert!(error.to_string().ends_with(&format!("[{code}]")), "{error}");
        }
        assert_eq!(
            HttpError::config(Setting::CaBundle, "holds no PEM certificate").to_string(),
            "invalid HTTP client setting `ca_bundle`: holds no PEM certificate [CONFIG]"
        );
    }

    #[test]
    fn what_may_be_sent_again() {
        let io = || -> BoxError { Box::new(std::io::Error::other("x")) };
        for status in [429, 500, 502, 503, 504] {
            assert!(HttpError::Status { status }.is_transient(), "{status}");
        }
        for status in [400, 403, 404, 501] {
            assert!(!HttpError::Status { status }.is_transient(), "{status}");
        }
        assert!(HttpError::Connect { source: io() }.surely_not_handled());
        assert!(HttpError::Status { status: 503 }.surely_not_handled());
        assert!(!HttpError::Status { status: 500 }.surely_not_handled());
        assert!(!HttpError::ConnectionLost { source: io() }.surely_not_handled());
        assert!(!HttpError::Tls { source: io() }.is_transient());
        assert!(!HttpError::TooLarge { limit: 1 }.is_transient());
    }
}
