//! [`ProviderError`]: every way a read can fail, each with a stable code.

use std::borrow::Cow;
use std::time::Duration;

/// A boxed error kept as the `source` of a transport failure (the workspace's one alias,
/// defined in `secret-config`).
pub use secret_config::BoxError;
use secret_config::ConfigError;

/// Why a read failed.
///
/// Every variant has a stable [`code`](Self::code). Messages name the provider, the mount and
/// the HTTP status where there is one; they never contain a secret value, a token, a response
/// body, a secret path, a `#key` or a full secret URI. Transport failures keep their cause as
/// [`std::error::Error::source`] instead of formatting it into the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// No secret at that path (KV v2 `404 {"errors":[]}`, an unknown mount, or a missing file).
    #[error("{provider}: secret not found in mount `{mount}`{} [NOT_FOUND]", status_suffix(*status))]
    NotFound {
        /// Provider name (`file`, `openbao`, `hashicorp`).
        provider: &'static str,
        /// The URI's mount.
        mount: String,
        /// The HTTP status, for KV v2.
        status: Option<u16>,
    },
    /// The secret exists but has no field named by the URI's `#key`.
    #[error("{provider}: the secret in mount `{mount}` has no such key [KEY_NOT_FOUND]")]
    KeyNotFound {
        /// Provider name.
        provider: &'static str,
        /// The URI's mount.
        mount: String,
    },
    /// The requested (or latest) KV v2 version is soft-deleted; it can be undeleted.
    #[error("{provider}: version{} in mount `{mount}` is deleted (HTTP {status}) [VERSION_DELETED]", version_suffix(*version))]
    VersionDeleted {
        /// Provider name.
        provider: &'static str,
        /// The URI's mount.
        mount: String,
        /// The version the server reported, if it did.
        version: Option<u64>,
        /// The HTTP status (404 from current servers).
        status: u16,
    },
    /// The requested (or latest) KV v2 version is destroyed; its data is gone for good.
    #[error("{provider}: version{} in mount `{mount}` is destroyed (HTTP {status}) [VERSION_DESTROYED]", version_suffix(*version))]
    VersionDestroyed {
        /// Provider name.
        provider: &'static str,
        /// The URI's mount.
        mount: String,
        /// The version the server reported, if it did.
        version: Option<u64>,
        /// The HTTP status (404 from current servers).
        status: u16,
    },
    /// The server refused the read (HTTP 403 after one re-authentication), or a file is
    /// unreadable or resolves outside the provider's root.
    #[error("{provider}: permission denied in mount `{mount}`{} [PERMISSION_DENIED]", status_suffix(*status))]
    PermissionDenied {
        /// Provider name.
        provider: &'static str,
        /// The URI's mount.
        mount: String,
        /// The HTTP status, for KV v2.
        status: Option<u16>,
    },
    /// Logging in (or reading the credential to log in with) failed.
    #[error("{provider}: {method} authentication failed{} [AUTH_FAILED]", status_suffix(*status))]
    AuthFailed {
        /// Provider name.
        provider: &'static str,
        /// The auth method: `token`, `approle` or `kubernetes`.
        method: &'static str,
        /// The HTTP status of the login, when the server answered.
        status: Option<u16>,
        /// The local cause (e.g. an unreadable JWT file), when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// Every attempt timed out.
    #[error("{provider}: timed out after {attempts} attempt(s) of {timeout:?} each [TIMEOUT]")]
    Timeout {
        /// Provider name.
        provider: &'static str,
        /// The configured per-attempt timeout.
        timeout: Duration,
        /// Attempts made.
        attempts: u32,
    },
    /// The server could not be reached or kept failing (connection errors, 429, 5xx) after
    /// every attempt.
    #[error("{provider}: unavailable after {attempts} attempt(s){} [UNAVAILABLE]", status_suffix(*status))]
    Unavailable {
        /// Provider name.
        provider: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The HTTP status of the last attempt, if it got one.
        status: Option<u16>,
        /// The transport error of the last attempt, if it failed below HTTP.
        #[source]
        source: Option<BoxError>,
    },
    /// The response was not the JSON the API promises (bad JSON, no `data.data`, a text file
    /// that is not UTF-8).
    #[error("{provider}: malformed response (HTTP {status}): {reason} [MALFORMED_RESPONSE]")]
    MalformedResponse {
        /// Provider name.
        provider: &'static str,
        /// The HTTP status (200 for files).
        status: u16,
        /// What was wrong, without quoting the body.
        reason: &'static str,
    },
    /// The response body or file is larger than the configured cap.
    #[error("{provider}: response larger than {limit} bytes [TOO_LARGE]")]
    TooLarge {
        /// Provider name.
        provider: &'static str,
        /// The cap in bytes.
        limit: u64,
    },
    /// The TLS handshake failed (unknown CA, bad certificate, protocol mismatch).
    #[error("{provider}: TLS handshake failed [TLS]")]
    Tls {
        /// Provider name.
        provider: &'static str,
        /// The handshake error.
        #[source]
        source: BoxError,
    },
    /// The URI selects a `#key` but the secret is plain text, not a JSON object.
    #[error(
        "{provider}: the secret in mount `{mount}` is text, not a JSON object; a #key cannot select from it [NOT_JSON]"
    )]
    NotJson {
        /// Provider name.
        provider: &'static str,
        /// The URI's mount.
        mount: String,
    },
    /// The URI names a provider or engine this provider (or router) does not serve.
    #[error("{provider}: unsupported provider: {what} [UNSUPPORTED_PROVIDER]")]
    UnsupportedProvider {
        /// Provider name (or `router`).
        provider: &'static str,
        /// What is unsupported, e.g. `provider db` or `?version on files`.
        what: String,
    },
    /// The URI names a mount or directory rather than one secret.
    #[error("{provider}: mount `{mount}`: {reason} [INVALID_PATH]")]
    InvalidPath {
        /// Provider name.
        provider: &'static str,
        /// The URI's mount.
        mount: String,
        /// What is wrong, e.g. `names a directory, not a file`.
        reason: &'static str,
    },
    /// The server answered with a status this API does not use for reads (3xx redirects,
    /// which are never followed, 400, 401, 405, …).
    #[error("{provider}: unexpected HTTP {status} in mount `{mount}` [UNEXPECTED_STATUS]")]
    UnexpectedStatus {
        /// Provider name.
        provider: &'static str,
        /// The URI's mount.
        mount: String,
        /// The HTTP status.
        status: u16,
    },
    /// The provider's configuration is invalid (bad URL, insecure settings, unreadable CA).
    /// [`setting`](Self::setting) names the setting at fault.
    #[error("{provider}: invalid configuration: {setting} {reason} [CONFIG]")]
    Config {
        /// Provider name.
        provider: &'static str,
        /// The setting at fault: an environment variable (`OPENBAO_URL`, `VAULT_CACERT`,
        /// `FILE_MAX_BYTES`) when the settings were read from one, else the `Kv2Config`
        /// field (`address`, `skip_verify`, `namespace`, …).
        setting: Cow<'static, str>,
        /// What is wrong with it (`is not set`, `must be true or false`), never its value.
        reason: String,
        /// The local cause, e.g. an unreadable CA bundle.
        #[source]
        source: Option<BoxError>,
    },
    /// The URI carries a query parameter this provider does not serve (KV v2 serves `version`;
    /// `file://` serves none). Refused before any I/O, so a misspelt `?verison=2` can neither
    /// read the latest version silently nor mint a second grant for the same secret.
    #[error(
        "{provider}: unknown query parameter `{name}` in mount `{mount}`; this provider serves {served} [UNKNOWN_PARAMETER]"
    )]
    UnknownParameter {
        /// Provider name.
        provider: &'static str,
        /// The URI's mount.
        mount: String,
        /// The parameter's name (never its value), cut to 64 characters.
        name: String,
        /// What the provider serves, e.g. `` `version` `` or `no parameters`.
        served: &'static str,
    },
    /// The path names something that is not a regular file (a FIFO, a socket, a device, a
    /// terminal); refused before reading so that it can never block a resolve.
    #[error("{provider}: mount `{mount}`: not a regular file [NOT_A_FILE]")]
    NotAFile {
        /// Provider name.
        provider: &'static str,
        /// The URI's mount.
        mount: String,
    },
    /// The vault does not know the lease any more (`sys/leases/renew` answered `lease not
    /// found` or `invalid lease`): it expired, was revoked, or the vault lost its state. The
    /// credentials it carried are gone or about to be; read new ones.
    #[error("{provider}: the lease is not known to the server (HTTP {status}) [LEASE_NOT_FOUND]")]
    LeaseNotFound {
        /// Provider name.
        provider: &'static str,
        /// The HTTP status (400 from current servers).
        status: u16,
    },
    /// A local read failed for a reason other than not-found or permissions.
    #[error("{provider}: I/O error in mount `{mount}` [IO]")]
    Io {
        /// Provider name.
        provider: &'static str,
        /// The URI's mount.
        mount: String,
        /// The I/O error (its message names no path).
        #[source]
        source: std::io::Error,
    },
}

impl ProviderError {
    /// The stable, never-reused code of this error, e.g. `"VERSION_DESTROYED"`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "NOT_FOUND",
            Self::KeyNotFound { .. } => "KEY_NOT_FOUND",
            Self::VersionDeleted { .. } => "VERSION_DELETED",
            Self::VersionDestroyed { .. } => "VERSION_DESTROYED",
            Self::PermissionDenied { .. } => "PERMISSION_DENIED",
            Self::AuthFailed { .. } => "AUTH_FAILED",
            Self::Timeout { .. } => "TIMEOUT",
            Self::Unavailable { .. } => "UNAVAILABLE",
            Self::MalformedResponse { .. } => "MALFORMED_RESPONSE",
            Self::TooLarge { .. } => "TOO_LARGE",
            Self::Tls { .. } => "TLS",
            Self::NotJson { .. } => "NOT_JSON",
            Self::UnsupportedProvider { .. } => "UNSUPPORTED_PROVIDER",
            Self::InvalidPath { .. } => "INVALID_PATH",
            Self::UnexpectedStatus { .. } => "UNEXPECTED_STATUS",
            Self::Config { .. } => "CONFIG",
            Self::Io { .. } => "IO",
            Self::UnknownParameter { .. } => "UNKNOWN_PARAMETER",
            Self::NotAFile { .. } => "NOT_A_FILE",
            Self::LeaseNotFound { .. } => "LEASE_NOT_FOUND",
        }
    }

    /// The provider that failed (`file`, `openbao`, `hashicorp`, `router`).
    #[must_use]
    pub fn provider(&self) -> &'static str {
        match self {
            Self::NotFound { provider, .. }
            | Self::KeyNotFound { provider, .. }
            | Self::VersionDeleted { provider, .. }
            | Self::VersionDestroyed { provider, .. }
            | Self::PermissionDenied { provider, .. }
            | Self::AuthFailed { provider, .. }
            | Self::Timeout { provider, .. }
            | Self::Unavailable { provider, .. }
            | Self::MalformedResponse { provider, .. }
            | Self::TooLarge { provider, .. }
            | Self::Tls { provider, .. }
            | Self::NotJson { provider, .. }
            | Self::UnsupportedProvider { provider, .. }
            | Self::InvalidPath { provider, .. }
            | Self::UnexpectedStatus { provider, .. }
            | Self::Config { provider, .. }
            | Self::Io { provider, .. }
            | Self::UnknownParameter { provider, .. }
            | Self::NotAFile { provider, .. }
            | Self::LeaseNotFound { provider, .. } => provider,
        }
    }

    /// Whether retrying later may succeed (timeouts and unavailability). Callers with a cache
    /// can serve a stale value on these.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::Unavailable { .. })
    }

    /// The setting a `CONFIG` error is about (e.g. `OPENBAO_URL`), else `None`.
    #[must_use]
    pub fn setting(&self) -> Option<&str> {
        match self {
            Self::Config { setting, .. } => Some(setting),
            _ => None,
        }
    }

    /// A shared-reader [`ConfigError`] as this provider's `CONFIG` error (same setting, reason
    /// and source). A plain `From` cannot know which provider read the setting, so the
    /// provider is named here: `.map_err(|e| ProviderError::from_config("file", e))`.
    #[must_use]
    pub fn from_config(provider: &'static str, error: ConfigError) -> Self {
        let (setting, reason, source) = error.into_parts();
        Self::Config {
            provider,
            setting,
            reason: reason.into_owned(),
            source,
        }
    }

    #[cfg_attr(not(feature = "kv2"), allow(dead_code))]
    pub(crate) fn config(
        provider: &'static str,
        setting: impl Into<Cow<'static, str>>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Config {
            provider,
            setting: setting.into(),
            reason: reason.into(),
            source: None,
        }
    }
}

impl ProviderError {
    /// A copy with the same variant, fields and code, for handing one failure to several
    /// callers. Sources are copied as their `Display` chain (they never hold secrets).
    #[cfg_attr(not(feature = "kv2"), allow(dead_code))]
    pub(crate) fn snapshot(&self) -> Self {
        let boxed =
            |source: &BoxError| -> BoxError { Box::new(SourceSnapshot::of(source.as_ref())) };
        match self {
            Self::NotFound {
                provider,
                mount,
                status,
            } => Self::NotFound {
                provider,
                mount: mount.clone(),
                status: *status,
            },
            Self::KeyNotFound { provider, mount } => Self::KeyNotFound {
                provider,
                mount: mount.clone(),
            },
            Self::VersionDeleted {
                provider,
                mount,
                version,
                status,
            } => Self::VersionDeleted {
                provider,
                mount: mount.clone(),
                version: *version,
                status: *status,
            },
            Self::VersionDestroyed {
                provider,
                mount,
                version,
                status,
            } => Self::VersionDestroyed {
                provider,
                mount: mount.clone(),
                version: *version,
                status: *status,
            },
            Self::PermissionDenied {
                provider,
                mount,
                status,
            } => Self::PermissionDenied {
                provider,
                mount: mount.clone(),
                status: *status,
            },
            Self::AuthFailed {
                provider,
                method,
                status,
                source,
            } => Self::AuthFailed {
                provider,
                method,
                status: *status,
                source: source.as_ref().map(boxed),
            },
            Self::Timeout {
                provider,
                timeout,
                attempts,
            } => Self::Timeout {
                provider,
                timeout: *timeout,
                attempts: *attempts,
            },
            Self::Unavailable {
                provider,
                attempts,
                status,
                source,
            } => Self::Unavailable {
                provider,
                attempts: *attempts,
                status: *status,
                source: source.as_ref().map(boxed),
            },
            Self::MalformedResponse {
                provider,
                status,
                reason,
            } => Self::MalformedResponse {
                provider,
                status: *status,
                reason,
            },
            Self::TooLarge { provider, limit } => Self::TooLarge {
                provider,
                limit: *limit,
            },
            Self::Tls { provider, source } => Self::Tls {
                provider,
                source: boxed(source),
            },
            Self::NotJson { provider, mount } => Self::NotJson {
                provider,
                mount: mount.clone(),
            },
            Self::UnsupportedProvider { provider, what } => Self::UnsupportedProvider {
                provider,
                what: what.clone(),
            },
            Self::InvalidPath {
                provider,
                mount,
                reason,
            } => Self::InvalidPath {
                provider,
                mount: mount.clone(),
                reason,
            },
            Self::UnexpectedStatus {
                provider,
                mount,
                status,
            } => Self::UnexpectedStatus {
                provider,
                mount: mount.clone(),
                status: *status,
            },
            Self::Config {
                provider,
                setting,
                reason,
                source,
            } => Self::Config {
                provider,
                setting: setting.clone(),
                reason: reason.clone(),
                source: source.as_ref().map(boxed),
            },
            Self::Io {
                provider,
                mount,
                source,
            } => Self::Io {
                provider,
                mount: mount.clone(),
                source: std::io::Error::new(source.kind(), SourceSnapshot::of(source)),
            },
            Self::UnknownParameter {
                provider,
                mount,
                name,
                served,
            } => Self::UnknownParameter {
                provider,
                mount: mount.clone(),
                name: name.clone(),
                served,
            },
            Self::NotAFile { provider, mount } => Self::NotAFile {
                provider,
                mount: mount.clone(),
            },
            Self::LeaseNotFound { provider, status } => Self::LeaseNotFound {
                provider,
                status: *status,
            },
        }
    }
}

/// The `Display` chain of an error, kept when the error itself cannot be cloned.
#[derive(Debug)]
struct SourceSnapshot {
    message: String,
    source: Option<Box<SourceSnapshot>>,
}

impl SourceSnapshot {
    fn of(error: &(dyn std::error::Error + 'static)) -> Self {
        Self {
            message: error.to_string(),
            source: error.source().map(|s| Box::new(Self::of(s))),
        }
    }
}

impl std::fmt::Display for SourceSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SourceSnapshot {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

fn status_suffix(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

fn version_suffix(version: Option<u64>) -> String {
    version.map(|v| format!(" {v}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_messages_carry_them() {
        let cases: Vec<(ProviderError, &str)> = vec![
            (
                ProviderError::NotFound {
                    provider: "openbao",
                    mount: "secret".into(),
                    status: Some(404),
                },
                "NOT_FOUND",
            ),
            (
                ProviderError::KeyNotFound {
                    provider: "file",
                    mount: "m".into(),
                },
                "KEY_NOT_FOUND",
            ),
            (
                ProviderError::VersionDeleted {
                    provider: "openbao",
                    mount: "secret".into(),
                    version: Some(2),
                    status: 404,
                },
                "VERSION_DELETED",
            ),
            (
                ProviderError::VersionDestroyed {
                    provider: "openbao",
                    mount: "secret".into(),
                    version: None,
                    status: 404,
                },
                "VERSION_DESTROYED",
            ),
            (
                ProviderError::Timeout {
                    provider: "hashicorp",
                    timeout: Duration::from_secs(1),
                    attempts: 3,
                },
                "TIMEOUT",
            ),
            (
                ProviderError::Unavailable {
                    provider: "openbao",
                    attempts: 3,
                    status: Some(503),
                    source: None,
                },
                "UNAVAILABLE",
            ),
            (
                ProviderError::TooLarge {
                    provider: "file",
                    limit: 10,
                },
                "TOO_LARGE",
            ),
            (
                ProviderError::config("openbao", "OPENBAO_URL", "is not set"),
                "CONFIG",
            ),
            (
                ProviderError::UnknownParameter {
                    provider: "openbao",
                    mount: "secret".into(),
                    name: "verison".into(),
                    served: "`version`",
                },
                "UNKNOWN_PARAMETER",
            ),
            (
                ProviderError::NotAFile {
                    provider: "file",
                    mount: "demo".into(),
                },
                "NOT_A_FILE",
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code);
            let shown = error.to_string();
            assert!(shown.ends_with(&format!("[{code}]")), "{shown}");
            assert!(shown.starts_with(error.provider()), "{shown}");
        }
        let unavailable = ProviderError::Unavailable {
            provider: "openbao",
            attempts: 3,
            status: Some(503),
            source: None,
        };
        assert_eq!(
            unavailable.to_string(),
            "openbao: unavailable after 3 attempt(s) (HTTP 503) [UNAVAILABLE]"
        );
        assert!(unavailable.is_transient());
    }

    #[test]
    fn config_errors_carry_their_setting_and_source() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let shared = ConfigError::new("VAULT_CACERT", "names no readable file").with_source(io);
        let error = ProviderError::from_config("hashicorp", shared);
        assert_eq!(error.code(), "CONFIG");
        assert_eq!(error.setting(), Some("VAULT_CACERT"));
        assert_eq!(
            error.to_string(),
            "hashicorp: invalid configuration: VAULT_CACERT names no readable file [CONFIG]"
        );
        assert_eq!(
            error.source().map(ToString::to_string).as_deref(),
            Some("gone")
        );
        let copy = error.snapshot();
        assert_eq!(copy.setting(), Some("VAULT_CACERT"));
        assert_eq!(
            copy.source().map(ToString::to_string).as_deref(),
            Some("gone")
        );
        let not_config = ProviderError::TooLarge {
            provider: "file",
            limit: 1,
        };
        assert_eq!(not_config.setting(), None);
    }
}
