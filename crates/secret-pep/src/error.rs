//! [`PepError`] and its stable codes.

use std::borrow::Cow;
use std::fmt;

use secret_config::ConfigError;
use secret_uri::UriError;

/// A boxed error kept as the `source` of a transport or provider failure (the workspace's one
/// alias, defined in `secret-config`).
pub use secret_config::BoxError;

/// Why the PEP refused (or could not complete) a secret read.
///
/// Every variant has a stable [`code`](Self::code). Messages end with the code in brackets and
/// never contain a token, a `jti`, a sender-binding thumbprint, a response body or a full
/// secret URI. URI errors keep the parser's own code (`ILLEGAL_SEGMENT`,
/// `TENANT_MOUNT_MISMATCH`, …) and provider errors the provider's (`NOT_FOUND`, …).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PepError {
    /// The URI is invalid, or its mount is outside the tenant's allowed mounts. The code is the
    /// parser's ([`UriError::code`]).
    #[error(transparent)]
    Uri {
        /// The parser's error.
        #[from]
        source: UriError,
    },
    /// The read is not authorized.
    #[error("authorization denied: {reason} [AUTHZ_DENIED]")]
    AuthzDenied {
        /// Why; [`DenyReason::code`] is stable.
        reason: DenyReason,
    },
    /// The PDP could not be asked or gave no usable answer (refused connection, timeout, HTTP
    /// 4xx/5xx, malformed response, open circuit breaker). Fail closed: nothing is granted, and
    /// nothing is negative-cached, so the next call asks again.
    #[error("policy decision point unavailable: {cause}{} [PDP_UNAVAILABLE]", status_suffix(*status))]
    PdpUnavailable {
        /// What went wrong.
        cause: PdpFailure,
        /// The PDP's HTTP status, when it answered.
        status: Option<u16>,
        /// The transport error, when the failure was below HTTP.
        #[source]
        source: Option<BoxError>,
    },
    /// The caller's sender binding (`cnf_jkt`, else `mtls_thumbprint`) differs from the one the
    /// grant was issued for: the token is being used from another key or client certificate.
    #[error(
        "sender binding drift: the grant is bound to {expected}, the caller presented {presented} [BINDING_DRIFT]"
    )]
    BindingDrift {
        /// The kind of binding the grant carries.
        expected: BindingKind,
        /// The kind of binding the caller presented (different kind, different value, or none).
        presented: BindingKind,
    },
    /// The PEP configuration is invalid or incomplete. [`setting`](Self::setting) names the
    /// setting at fault (`TENANT_ID`, `AUTHZEN_PDP_URL`, `ANTI_REPLAY_TTL_S`, …).
    #[error("invalid PEP configuration: {setting} {reason} [CONFIG]")]
    Config {
        /// The setting at fault: the environment variable (or, for a setting given in code,
        /// the name it has in the environment).
        setting: Cow<'static, str>,
        /// What is wrong with it; never its value.
        reason: String,
        /// The local cause, when there is one (e.g. a `secret-http` setup error).
        #[source]
        source: Option<BoxError>,
    },
    /// A JWK given to [`jwk_thumbprint`](crate::jwk_thumbprint) is not a usable public key.
    #[error("invalid JWK: {reason} [INVALID_JWK]")]
    InvalidJwk {
        /// What is wrong.
        reason: &'static str,
    },
    /// The request's context headers are malformed: a single-value header sent twice (a proxy
    /// that appends instead of replacing must not let the client's value win), a value that
    /// is not UTF-8, or an `x-exp` that is not a whole number of seconds.
    #[error("bad execution context: header `{header}` {reason} [BAD_CONTEXT]")]
    BadContext {
        /// The header's name.
        header: &'static str,
        /// What is wrong with it (never its value).
        reason: &'static str,
    },
    /// The PEP's shared state store (grants and use counts, anti-replay, negative cache; Redis
    /// with the `redis` feature) could not be reached in time or answered wrongly. Fail
    /// closed: nothing is granted (anti-replay alone may be configured fail-open,
    /// `ANTI_REPLAY_FAIL_OPEN`), no use is kept, and the next call asks the store again.
    #[error("PEP state store unavailable: the {store} store {cause} [STATE_STORE_UNAVAILABLE]")]
    StateStoreUnavailable {
        /// Which store: `replay`, `grant` or `negative`.
        store: &'static str,
        /// What went wrong (`timed out`, `is unreachable`, …); never a key, a value or a URL.
        cause: &'static str,
        /// The store's own error, when there is one (never holds a key, value or password).
        #[source]
        source: Option<BoxError>,
    },
    /// The provider read after a granted decision failed (see [`Pep::execute`](crate::Pep::execute)).
    /// The code is the provider's own, e.g. `NOT_FOUND` or `VERSION_DESTROYED`.
    #[error("secret read failed [{code}]")]
    Provider {
        /// The provider's stable code.
        code: &'static str,
        /// The provider's error.
        #[source]
        source: BoxError,
    },
}

impl PepError {
    /// The stable, never-reused code: `AUTHZ_DENIED`, `PDP_UNAVAILABLE`, `BINDING_DRIFT`,
    /// `CONFIG`, `INVALID_JWK`, `BAD_CONTEXT`, `STATE_STORE_UNAVAILABLE`, or the URI parser's
    /// or provider's own code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Uri { source } => source.code(),
            Self::AuthzDenied { .. } => "AUTHZ_DENIED",
            Self::PdpUnavailable { .. } => "PDP_UNAVAILABLE",
            Self::BindingDrift { .. } => "BINDING_DRIFT",
            Self::Config { .. } => "CONFIG",
            Self::InvalidJwk { .. } => "INVALID_JWK",
            Self::BadContext { .. } => "BAD_CONTEXT",
            Self::StateStoreUnavailable { .. } => "STATE_STORE_UNAVAILABLE",
            Self::Provider { code, .. } => code,
        }
    }

    /// The setting a `CONFIG` error is about (e.g. `TENANT_ID`), else `None`.
    #[must_use]
    pub fn setting(&self) -> Option<&str> {
        match self {
            Self::Config { setting, .. } => Some(setting),
            _ => None,
        }
    }

    /// The reason of an `AUTHZ_DENIED`, else `None`.
    #[must_use]
    pub fn deny_reason(&self) -> Option<DenyReason> {
        match self {
            Self::AuthzDenied { reason } => Some(*reason),
            _ => None,
        }
    }

    /// Whether asking again later may succeed (the PDP or the shared state store was
    /// unavailable).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::PdpUnavailable { .. } | Self::StateStoreUnavailable { .. }
        )
    }

    /// Wraps a provider error with its stable code, for the read closure of
    /// [`Pep::execute`](crate::Pep::execute): `.map_err(|e| PepError::provider(e.code(), e))`.
    pub fn provider(code: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Provider {
            code,
            source: source.into(),
        }
    }

    /// A copy for the callers that waited on the same PDP call: same variant, fields and
    /// code; a transport or provider source is kept as its message chain.
    pub(crate) fn snapshot(&self) -> Self {
        match self {
            Self::Uri { source } => Self::Uri {
                source: source.clone(),
            },
            Self::AuthzDenied { reason } => Self::AuthzDenied { reason: *reason },
            Self::PdpUnavailable {
                cause,
                status,
                source,
            } => Self::PdpUnavailable {
                cause: *cause,
                status: *status,
                source: source.as_deref().map(Snapshot::boxed),
            },
            Self::BindingDrift {
                expected,
                presented,
            } => Self::BindingDrift {
                expected: *expected,
                presented: *presented,
            },
            Self::Config {
                setting,
                reason,
                source,
            } => Self::Config {
                setting: setting.clone(),
                reason: reason.clone(),
                source: source.as_deref().map(Snapshot::boxed),
            },
            Self::InvalidJwk { reason } => Self::InvalidJwk { reason },
            Self::BadContext { header, reason } => Self::BadContext { header, reason },
            Self::StateStoreUnavailable {
                store,
                cause,
                source,
            } => Self::StateStoreUnavailable {
                store,
                cause,
                source: source.as_deref().map(Snapshot::boxed),
            },
            Self::Provider { code, source } => Self::Provider {
                code,
                source: Snapshot::boxed(source.as_ref()),
            },
        }
    }

    /// A `CONFIG` error about `setting`.
    pub(crate) fn invalid(
        setting: impl Into<Cow<'static, str>>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Config {
            setting: setting.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// Transitional, for the callers in `pep/builder.rs` that do not name their setting yet
    /// ([`setting`](Self::setting) is `None`); use [`invalid`](Self::invalid).
    pub(crate) const fn denied(reason: DenyReason) -> Self {
        Self::AuthzDenied { reason }
    }

    pub(crate) fn unavailable(cause: PdpFailure) -> Self {
        Self::PdpUnavailable {
            cause,
            status: None,
            source: None,
        }
    }
}

/// A shared-reader error (`secret-config`) as the PEP's `CONFIG`: same setting, reason and
/// source.
impl From<ConfigError> for PepError {
    fn from(error: ConfigError) -> Self {
        let (setting, reason, source) = error.into_parts();
        Self::Config {
            setting,
            reason: reason.into_owned(),
            source,
        }
    }
}

/// The message chain of an error that cannot be cloned (sources never hold secrets).
#[derive(Debug)]
struct Snapshot {
    message: String,
    source: Option<Box<Snapshot>>,
}

impl Snapshot {
    fn of(error: &(dyn std::error::Error + 'static)) -> Self {
        Self {
            message: error.to_string(),
            source: error.source().map(|s| Box::new(Self::of(s))),
        }
    }

    fn boxed(error: &(dyn std::error::Error + Send + Sync + 'static)) -> BoxError {
        Box::new(Self::of(error))
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Snapshot {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// Why an `AUTHZ_DENIED` was returned. Each reason has a stable [`code`](Self::code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DenyReason {
    /// The context's `aud` lacks the secrets audience (or is missing and an audience is
    /// required).
    Audience,
    /// The context's `jti` was already used within the anti-replay window.
    Replay,
    /// The PDP said no.
    PdpDeny,
    /// The grant's `max_uses` are spent; a new grant is asked for once it expires.
    UsesExhausted,
    /// The PDP denied this (subject, tenant, URI) moments ago; the denial is cached briefly.
    NegativeCached,
    /// The context names no subject.
    SubjectMissing,
    /// The PDP permitted with an obligation this PEP does not know how to fulfil.
    UnknownObligation,
    /// The anti-replay store is full of live `jti`s; failing closed rather than forgetting one.
    ReplayStoreFull,
    /// The context carries no `jti` while anti-replay requires one
    /// ([`PepConfig::require_jti`](crate::PepConfig::require_jti), `ANTI_REPLAY_REQUIRE_JTI`).
    JtiMissing,
    /// The token's `exp` is further away than the anti-replay store may remember a `jti`
    /// ([`PepConfig::anti_replay_max_ttl`](crate::PepConfig::anti_replay_max_ttl),
    /// `ANTI_REPLAY_MAX_TTL_S`): it could be replayed after its `jti` was forgotten.
    TokenLifetime,
    /// The token's `exp` has passed (beyond the allowed clock skew).
    TokenExpired,
    /// The PDP permitted with an obligation this PEP knows but cannot honor (`wrap_ttl`,
    /// `must_revalidate_on`): denied rather than dropped.
    UnsupportedObligation,
}

impl DenyReason {
    /// The stable code, e.g. `"REPLAY"`.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Audience => "AUDIENCE",
            Self::Replay => "REPLAY",
            Self::PdpDeny => "PDP_DENY",
            Self::UsesExhausted => "USES_EXHAUSTED",
            Self::NegativeCached => "NEGATIVE_CACHED",
            Self::SubjectMissing => "SUBJECT_MISSING",
            Self::UnknownObligation => "UNKNOWN_OBLIGATION",
            Self::ReplayStoreFull => "REPLAY_STORE_FULL",
            Self::JtiMissing => "JTI_MISSING",
            Self::TokenLifetime => "TOKEN_LIFETIME",
            Self::TokenExpired => "TOKEN_EXPIRED",
            Self::UnsupportedObligation => "UNSUPPORTED_OBLIGATION",
        }
    }

    /// Whether this denial is a decision about (subject, tenant, URI) that the negative cache
    /// may remember. Per-call denials (audience, replay, spent uses) are not cached: caching
    /// them would let one bad token lock out the subject's good ones.
    #[must_use]
    pub(crate) const fn is_cacheable(self) -> bool {
        matches!(
            self,
            Self::PdpDeny | Self::UnknownObligation | Self::UnsupportedObligation
        )
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::Audience => "the token's audience does not include the secrets audience",
            Self::Replay => "the token id (jti) was already used",
            Self::PdpDeny => "the policy decision point denied the request",
            Self::UsesExhausted => "the grant's uses are spent",
            Self::NegativeCached => "denied moments ago (negative cache)",
            Self::SubjectMissing => "no subject in the execution context",
            Self::UnknownObligation => "the decision carries an obligation this PEP cannot fulfil",
            Self::ReplayStoreFull => "the anti-replay store is full",
            Self::JtiMissing => "the token carries no id (jti) to check for replay",
            Self::TokenLifetime => {
                "the token lives longer than the anti-replay window can remember its id"
            }
            Self::TokenExpired => "the token has expired",
            Self::UnsupportedObligation => {
                "the decision carries an obligation this PEP cannot honor"
            }
        };
        write!(f, "{text} ({})", self.code())
    }
}

/// What went wrong when the PDP could not give a usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PdpFailure {
    /// The connection was refused or broke.
    Connect,
    /// The PDP did not answer in time.
    Timeout,
    /// The TLS handshake failed.
    Tls,
    /// The PDP answered with an HTTP error status.
    Status,
    /// The response is not an AuthZEN decision (bad JSON, no boolean `decision`, wrong shape).
    Malformed,
    /// The response is larger than the configured cap.
    TooLarge,
    /// The circuit breaker is open after consecutive failures; the PDP is not being asked.
    CircuitOpen,
    /// The discovery document names another PDP, or endpoints on another origin.
    Discovery,
}

impl PdpFailure {
    /// A short stable name, e.g. `"timeout"`, for logs and metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Tls => "tls",
            Self::Status => "http_status",
            Self::Malformed => "malformed_response",
            Self::TooLarge => "too_large",
            Self::CircuitOpen => "circuit_open",
            Self::Discovery => "discovery_mismatch",
        }
    }
}

impl fmt::Display for PdpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connection failed",
            Self::Timeout => "timed out",
            Self::Tls => "TLS handshake failed",
            Self::Status => "HTTP error",
            Self::Malformed => "malformed response",
            Self::TooLarge => "response too large",
            Self::CircuitOpen => "circuit breaker open",
            Self::Discovery => "discovery metadata does not match the configured PDP",
        })
    }
}

/// The kind of sender binding, named in [`PepError::BindingDrift`] without its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BindingKind {
    /// A DPoP / JWK thumbprint (`cnf.jkt`).
    Jkt,
    /// An mTLS certificate thumbprint (`cnf.x5t#S256`).
    Mtls,
    /// No binding (a bearer token).
    None,
}

impl fmt::Display for BindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Jkt => "a key thumbprint (cnf_jkt)",
            Self::Mtls => "a certificate thumbprint (mtls)",
            Self::None => "no binding",
        })
    }
}

fn status_suffix(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_carry_setting_and_source() {
        use std::error::Error as _;
        let io = std::io::Error::other("gone");
        let error =
            PepError::from(ConfigError::new("AUTHZEN_CA_BUNDLE", "is unreadable").with_source(io));
        assert_eq!(error.code(), "CONFIG");
        assert_eq!(error.setting(), Some("AUTHZEN_CA_BUNDLE"));
        assert_eq!(
            error.to_string(),
            "invalid PEP configuration: AUTHZEN_CA_BUNDLE is unreadable [CONFIG]"
        );
        let copy = error.snapshot();
        assert_eq!(copy.setting(), Some("AUTHZEN_CA_BUNDLE"));
        assert_eq!(
            copy.source().map(ToString::to_string).as_deref(),
            Some("gone")
        );
        assert_eq!(PepError::denied(DenyReason::Replay).setting(), None);
    }

    #[test]
    fn codes_are_stable_and_uri_codes_delegate() {
        let uri = secret_uri::SecretUri::parse("openbao+kv2://secret/a/*").unwrap_err();
        let cases: Vec<(PepError, &str)> = vec![
            (PepError::from(uri), "INVALID_WILDCARD"),
            (PepError::denied(DenyReason::Replay), "AUTHZ_DENIED"),
            (
                PepError::unavailable(PdpFailure::Timeout),
                "PDP_UNAVAILABLE",
            ),
            (
                PepError::BindingDrift {
                    expected: BindingKind::Jkt,
                    presented: BindingKind::None,
                },
                "BINDING_DRIFT",
            ),
            (PepError::invalid("TENANT_ID", "is required"), "CONFIG"),
            (
                PepError::BadContext {
                    header: "x-subject",
                    reason: "is repeated",
                },
                "BAD_CONTEXT",
            ),
            (
                PepError::provider("NOT_FOUND", std::io::Error::other("gone")),
                "NOT_FOUND",
            ),
            (
                PepError::StateStoreUnavailable {
                    store: "grant",
                    cause: "timed out",
                    source: None,
                },
                "STATE_STORE_UNAVAILABLE",
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code);
            if code != "INVALID_WILDCARD" {
                assert!(error.to_string().ends_with(&format!("[{code}]")), "{error}");
            }
        }
        let reasons = [
            (DenyReason::Audience, "AUDIENCE"),
            (DenyReason::Replay, "REPLAY"),
            (DenyReason::PdpDeny, "PDP_DENY"),
            (DenyReason::UsesExhausted, "USES_EXHAUSTED"),
            (DenyReason::NegativeCached, "NEGATIVE_CACHED"),
            (DenyReason::SubjectMissing, "SUBJECT_MISSING"),
            (DenyReason::UnknownObligation, "UNKNOWN_OBLIGATION"),
            (DenyReason::ReplayStoreFull, "REPLAY_STORE_FULL"),
            (DenyReason::JtiMissing, "JTI_MISSING"),
            (DenyReason::TokenLifetime, "TOKEN_LIFETIME"),
            (DenyReason::TokenExpired, "TOKEN_EXPIRED"),
            (DenyReason::UnsupportedObligation, "UNSUPPORTED_OBLIGATION"),
        ];
        for (reason, code) in reasons {
            assert_eq!(reason.code(), code);
            assert_eq!(PepError::denied(reason).deny_reason(), Some(reason));
            assert!(reason.to_string().contains(code));
        }
        let shown = PepError::PdpUnavailable {
            cause: PdpFailure::Status,
            status: Some(503),
            source: None,
        }
        .to_string();
        assert_eq!(
            shown,
            "policy decision point unavailable: HTTP error (HTTP 503) [PDP_UNAVAILABLE]"
        );
    }
}
