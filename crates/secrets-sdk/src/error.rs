//! [`Error`]: every way configuring or resolving can fail, each with a stable code.

use std::path::PathBuf;
use std::sync::Arc;

use secret_providers::{BoxError, ProviderError};
use secret_uri::UriError;

/// Why building a client, resolving a secret or getting credentials failed.
///
/// Every variant has a stable [`code`](Self::code). URI, provider and PEP errors keep the typed
/// error and hand its code through, so callers see `ILLEGAL_SEGMENT`, `NOT_FOUND`,
/// `KEY_NOT_FOUND`, `AUTHZ_DENIED`, `PDP_UNAVAILABLE`, `BINDING_DRIFT`, … directly.
///
/// Messages name the provider, mount, field or setting; they never contain a secret value, a
/// token, a response body or a full secret URI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URI does not parse, or its mount is not in the allowed mounts. The code is the
    /// [`UriError`]'s (`ILLEGAL_SEGMENT`, `TENANT_MOUNT_MISMATCH`, …).
    #[error("invalid secret URI{} [{}]", byte_suffix(.source.offset()), .source.code())]
    Uri {
        /// The parser's error (it never repeats the URI).
        #[source]
        source: UriError,
    },
    /// The provider failed to read the secret. The code is the [`ProviderError`]'s
    /// (`NOT_FOUND`, `PERMISSION_DENIED`, `UNAVAILABLE`, …). Concurrent callers that waited
    /// for the same read share one error, hence the `Arc`.
    #[error("{provider}: reading a secret in mount `{mount}` failed [{}]", .source.code())]
    Provider {
        /// Provider name (`file`, `openbao`, `hashicorp`).
        provider: &'static str,
        /// The URI's mount.
        mount: String,
        /// The provider's error, with the details (status, version, attempts).
        #[source]
        source: Arc<ProviderError>,
    },
    /// No vault is configured for the URI's scheme (no bootstrap file, no `OPENBAO_URL` or
    /// `VAULT_URL`), or, for `bootstrap://`, the bootstrap has no `values` section (or there
    /// is no bootstrap). `file://` URIs still resolve.
    #[error("{provider}: {} ({reason}) [NOT_CONFIGURED]", not_configured(provider))]
    NotConfigured {
        /// The provider the URI names.
        provider: &'static str,
        /// What was looked at.
        reason: String,
    },
    /// The URI names a provider this client does not serve (`db` without an engine,
    /// `bootstrap` through the PEP, `yaml` without its feature, or one whose cargo feature is
    /// off).
    #[error("{provider}: unsupported provider: {reason} [UNSUPPORTED_PROVIDER]")]
    UnsupportedProvider {
        /// The provider the URI names.
        provider: &'static str,
        /// Why it is not served.
        reason: &'static str,
    },
    /// No bootstrap was found at any level of the precedence.
    #[error("no bootstrap configuration found; tried {} [NO_BOOTSTRAP]", .tried.join(", "))]
    NoBootstrap {
        /// Each place looked at, with what was found there, in precedence order.
        tried: Vec<String>,
    },
    /// A bootstrap file named explicitly (or by `SECRETS_BOOTSTRAP_PATH`, or the well-known
    /// path that exists) could not be read.
    #[error("bootstrap file {} could not be read [BOOTSTRAP_IO]", .path.display())]
    BootstrapIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bootstrap file is not well-formed JSON.
    #[error("bootstrap {origin}: malformed JSON at line {line}, column {column} [BOOTSTRAP_PARSE]")]
    BootstrapParse {
        /// Where the bootstrap came from (a path).
        origin: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's error (its message quotes no input).
        #[source]
        source: BoxError,
    },
    /// A bootstrap field is unknown, of the wrong type, missing for the auth method, or
    /// invalid.
    #[error("bootstrap {origin}: field `{field}` {reason} [BOOTSTRAP_INVALID]")]
    BootstrapInvalid {
        /// Where the bootstrap came from (a path, or `environment`).
        origin: String,
        /// The field (or, for the environment, the variable) at fault.
        field: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A client setting is missing or invalid (`SECRETS_ALLOWED_MOUNTS`, cache settings, a
    /// provider's settings).
    #[error("invalid configuration: {setting} {reason} [CONFIG]")]
    Config {
        /// The setting at fault.
        setting: String,
        /// What is wrong with it.
        reason: String,
        /// The underlying error, e.g. a provider's `CONFIG` error.
        #[source]
        source: Option<BoxError>,
    },
    /// The client's own I/O runtime could not start, or the task running a read was lost.
    #[error("the client's I/O runtime failed: {reason} [RUNTIME]")]
    Runtime {
        /// What happened.
        reason: &'static str,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// The client was closed (`SecretsClient::close`, `VaultClient::close`).
    #[error("the client is closed [CLOSED]")]
    Closed,
    /// The Policy Enforcement Point refused the read or could not decide
    /// ([`VaultClient`](crate::VaultClient)). The code is the [`PepError`](secret_pep::PepError)'s:
    /// `AUTHZ_DENIED` (with a [`DenyReason`](secret_pep::DenyReason), see
    /// [`deny_reason`](Self::deny_reason)), `PDP_UNAVAILABLE`, `BINDING_DRIFT`, or `CONFIG` for
    /// invalid PEP settings. The message is the PEP's own: it names the reason, the PDP failure
    /// cause or the binding kinds, never a token, `jti`, thumbprint or URI.
    #[cfg(feature = "vault")]
    #[cfg_attr(docsrs, doc(cfg(feature = "vault")))]
    #[error(transparent)]
    Pep {
        /// The PEP's error.
        source: secret_pep::PepError,
    },
}

impl Error {
    /// The stable, never-reused code of this error: the wrapped [`UriError`]'s,
    /// [`ProviderError`]'s or PEP error's code, or one of `NOT_CONFIGURED`,
    /// `UNSUPPORTED_PROVIDER`, `NO_BOOTSTRAP`, `BOOTSTRAP_IO`, `BOOTSTRAP_PARSE`,
    /// `BOOTSTRAP_INVALID`, `CONFIG`, `RUNTIME`, `CLOSED`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Uri { source } => source.code(),
            Self::Provider { source, .. } => source.code(),
            Self::NotConfigured { .. } => "NOT_CONFIGURED",
            Self::UnsupportedProvider { .. } => "UNSUPPORTED_PROVIDER",
            Self::NoBootstrap { .. } => "NO_BOOTSTRAP",
            Self::BootstrapIo { .. } => "BOOTSTRAP_IO",
            Self::BootstrapParse { .. } => "BOOTSTRAP_PARSE",
            Self::BootstrapInvalid { .. } => "BOOTSTRAP_INVALID",
            Self::Config { .. } => "CONFIG",
            Self::Runtime { .. } => "RUNTIME",
            Self::Closed => "CLOSED",
            #[cfg(feature = "vault")]
            Self::Pep { source } => source.code(),
        }
    }

    /// Why the PEP said no, for an `AUTHZ_DENIED`: `AUDIENCE`, `REPLAY`, `PDP_DENY`,
    /// `USES_EXHAUSTED`, `NEGATIVE_CACHED`, `SUBJECT_MISSING`, `UNKNOWN_OBLIGATION`,
    /// `REPLAY_STORE_FULL` (see [`DenyReason::code`](secret_pep::DenyReason::code)).
    #[cfg(feature = "vault")]
    #[cfg_attr(docsrs, doc(cfg(feature = "vault")))]
    #[must_use]
    pub fn deny_reason(&self) -> Option<secret_pep::DenyReason> {
        self.pep_error().and_then(secret_pep::PepError::deny_reason)
    }

    /// The PEP's error, for [`Error::Pep`].
    #[cfg(feature = "vault")]
    #[cfg_attr(docsrs, doc(cfg(feature = "vault")))]
    #[must_use]
    pub fn pep_error(&self) -> Option<&secret_pep::PepError> {
        match self {
            Self::Pep { source } => Some(source),
            _ => None,
        }
    }

    /// The setting (an environment variable's name, or a builder method's) that a `CONFIG`
    /// error is about, e.g. `Some("SECRET_TENANT_SALT")`.
    #[must_use]
    pub fn setting(&self) -> Option<&str> {
        match self {
            Self::Config { setting, .. } => Some(setting),
            _ => None,
        }
    }

    /// The provider's error, for [`Error::Provider`].
    #[must_use]
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            Self::Provider { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The parser's error, for [`Error::Uri`].
    #[must_use]
    pub fn uri_error(&self) -> Option<&UriError> {
        match self {
            Self::Uri { source } => Some(source),
            _ => None,
        }
    }

    /// Whether retrying later may succeed: the provider timed out or was unavailable, or (for
    /// the `VaultClient`) the PDP was unavailable.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        #[cfg(feature = "vault")]
        if let Self::Pep { source } = self {
            return source.is_transient();
        }
        self.provider_error()
            .is_some_and(ProviderError::is_transient)
    }

    pub(crate) fn config(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Config {
            setting: setting.into(),
            reason: reason.into(),
            source: None,
        }
    }

    pub(crate) fn provider(mount: &str, source: Arc<ProviderError>) -> Self {
        Self::Provider {
            provider: source.provider(),
            mount: mount.to_owned(),
            source,
        }
    }
}

/// What is missing for `provider`'s scheme, in [`Error::NotConfigured`]'s message.
fn not_configured(provider: &str) -> &'static str {
    if provider == secret_uri::Provider::Bootstrap.as_str() {
        "no bootstrap values are configured"
    } else {
        "no vault is configured for this scheme"
    }
}

fn byte_suffix(offset: Option<usize>) -> String {
    offset.map(|o| format!(" at byte {o}")).unwrap_or_default()
}

impl From<UriError> for Error {
    fn from(source: UriError) -> Self {
        Self::Uri { source }
    }
}

/// URI errors (the parser's and the tenant mount guard's) become [`Error::Uri`], so
/// [`Error::uri_error`] finds them whichever client reported them; the rest become
/// [`Error::Pep`].
#[cfg(feature = "vault")]
impl From<secret_pep::PepError> for Error {
    fn from(source: secret_pep::PepError) -> Self {
        match source {
            secret_pep::PepError::Uri { source } => Self::Uri { source },
            source => Self::Pep { source },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_delegate_to_wrapped_errors() {
        let uri = secret_uri::SecretUri::parse("file://a/*").err();
        let uri = uri.map(Error::from);
        assert_eq!(uri.as_ref().map(Error::code), Some("INVALID_WILDCARD"));
        assert_eq!(
            uri.map(|e| e.to_string()).as_deref(),
            Some("invalid secret URI at byte 9 [INVALID_WILDCARD]")
        );
        let provider = Error::provider(
            "secret",
            Arc::new(ProviderError::NotFound {
                provider: "openbao",
                mount: "secret".into(),
                status: Some(404),
            }),
        );
        assert_eq!(provider.code(), "NOT_FOUND");
        assert_eq!(
            provider.to_string(),
            "openbao: reading a secret in mount `secret` failed [NOT_FOUND]"
        );
        assert!(std::error::Error::source(&provider).is_some());
        assert!(!provider.is_transient());
        for (error, code) in [
            (Error::Closed, "CLOSED"),
            (Error::NoBootstrap { tried: vec![] }, "NO_BOOTSTRAP"),
            (
                Error::config("SECRETS_ALLOWED_MOUNTS", "is not set"),
                "CONFIG",
            ),
        ] {
            assert_eq!(error.code(), code);
            assert!(error.to_string().ends_with(&format!("[{code}]")), "{error}");
        }
    }

    #[cfg(feature = "vault")]
    #[test]
    fn pep_errors_keep_their_codes_and_reasons() {
        use secret_pep::{DenyReason, PepError};

        let uri = secret_uri::SecretUri::parse("openbao+kv2://secret/a/*").err();
        let uri = uri.map(|e| Error::from(PepError::from(e)));
        assert!(matches!(uri, Some(Error::Uri { .. })), "{uri:?}");
        assert_eq!(uri.map(|e| e.code()), Some("INVALID_WILDCARD"));

        let denied = Error::from(PepError::AuthzDenied {
            reason: DenyReason::Replay,
        });
        assert_eq!(denied.code(), "AUTHZ_DENIED");
        assert_eq!(denied.deny_reason(), Some(DenyReason::Replay));
        assert_eq!(
            denied.to_string(),
            "authorization denied: the token id (jti) was already used (REPLAY) [AUTHZ_DENIED]"
        );
        assert!(!denied.is_transient());
        assert!(denied.pep_error().is_some());

        let unavailable = Error::from(PepError::PdpUnavailable {
            cause: secret_pep::PdpFailure::Timeout,
            status: None,
            source: None,
        });
        assert_eq!(unavailable.code(), "PDP_UNAVAILABLE");
        assert!(unavailable.is_transient());
        assert_eq!(unavailable.deny_reason(), None);
        assert_eq!(Error::Closed.pep_error().map(PepError::code), None);
        assert_eq!(Error::config("X", "is bad").setting(), Some("X"));
    }
}
