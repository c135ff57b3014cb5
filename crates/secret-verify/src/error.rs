//! [`VerifyError`] and its stable codes.

use std::fmt;

/// Why a caller could not be verified. Messages name the check that failed and never contain
/// the token, the proof, a claim's value or a key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The issuer's metadata or key set could not be read, or is not usable (another
    /// issuer, no signing key). Fail closed: no token of that issuer verifies until it is.
    #[error("token issuer unavailable: the issuer {cause} [ISSUER_UNAVAILABLE]")]
    IssuerUnavailable {
        /// What went wrong; never a URL or a document.
        cause: &'static str,
    },
    /// The access token is not a valid RFC 9068 JWT access token for this resource server.
    #[error("invalid access token: {reason} [INVALID_TOKEN]")]
    InvalidToken {
        /// Which check failed; [`TokenReason::code`] is stable.
        reason: TokenReason,
    },
    /// The DPoP proof (RFC 9449) is missing, malformed or does not prove this request.
    #[error("invalid DPoP proof: {reason} [INVALID_DPOP_PROOF]")]
    InvalidDpopProof {
        /// Which check failed; [`ProofReason::code`] is stable.
        reason: ProofReason,
    },
    /// The token is bound to a key or certificate (`cnf`) other than the one the caller
    /// proved, or the caller proved none.
    #[error("sender binding drift: {reason} [BINDING_DRIFT]")]
    BindingDrift {
        /// What did not match (never a thumbprint).
        reason: &'static str,
    },
    /// The verifier's configuration is invalid. [`setting`](Self::setting) names the setting.
    #[error("invalid verifier configuration: {setting} {reason} [CONFIG]")]
    Config {
        /// The setting at fault.
        setting: &'static str,
        /// What is wrong with it; never its value.
        reason: &'static str,
    },
}

impl VerifyError {
    /// The stable code: `INVALID_TOKEN`, `INVALID_DPOP_PROOF`, `BINDING_DRIFT`,
    /// `ISSUER_UNAVAILABLE` or `CONFIG`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::IssuerUnavailable { .. } => "ISSUER_UNAVAILABLE",
            Self::InvalidToken { .. } => "INVALID_TOKEN",
            Self::InvalidDpopProof { .. } => "INVALID_DPOP_PROOF",
            Self::BindingDrift { .. } => "BINDING_DRIFT",
            Self::Config { .. } => "CONFIG",
        }
    }

    /// The setting a `CONFIG` error is about, else `None`.
    #[must_use]
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            Self::Config { setting, .. } => Some(setting),
            _ => None,
        }
    }

    pub(crate) fn token(reason: TokenReason) -> Self {
        Self::InvalidToken { reason }
    }

    pub(crate) fn issuer(cause: &'static str) -> Self {
        Self::IssuerUnavailable { cause }
    }

    pub(crate) fn proof(reason: ProofReason) -> Self {
        Self::InvalidDpopProof { reason }
    }
}

/// Which check an access token failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenReason {
    /// Not three base64url parts of JSON, or a claim of the wrong type.
    Malformed,
    /// The header's `typ` is not `at+jwt` (RFC 9068 §4).
    Type,
    /// The header's `alg` is not on the allow-list (`none` and HMAC never are), or does not
    /// fit the key.
    Algorithm,
    /// No key of the issuer's set has the header's `kid`.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// `exp` has passed (beyond the allowed skew).
    Expired,
    /// `nbf` or `iat` is in the future (beyond the allowed skew).
    NotYetValid,
    /// `iss` is not the configured issuer.
    Issuer,
    /// `aud` does not name this resource server.
    Audience,
    /// A claim RFC 9068 requires (`iss`, `exp`, `aud`, `sub`, `client_id`, `iat`, `jti`) is
    /// missing.
    MissingClaim,
}

impl TokenReason {
    /// The stable reason code: `TOKEN_MALFORMED`, `TOKEN_TYPE`, `TOKEN_ALGORITHM`,
    /// `UNKNOWN_KEY`, `TOKEN_SIGNATURE`, `TOKEN_EXPIRED` (as the PEP's deny reason), `TOKEN_NOT_YET_VALID`, `TOKEN_ISSUER`,
    /// `AUDIENCE` (the PEP's deny reason for the same condition), `TOKEN_CLAIM_MISSING`.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "TOKEN_MALFORMED",
            Self::Type => "TOKEN_TYPE",
            Self::Algorithm => "TOKEN_ALGORITHM",
            Self::UnknownKey => "UNKNOWN_KEY",
            Self::Signature => "TOKEN_SIGNATURE",
            Self::Expired => "TOKEN_EXPIRED",
            Self::NotYetValid => "TOKEN_NOT_YET_VALID",
            Self::Issuer => "TOKEN_ISSUER",
            Self::Audience => "AUDIENCE",
            Self::MissingClaim => "TOKEN_CLAIM_MISSING",
        }
    }
}

impl fmt::Display for TokenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Which check a DPoP proof failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProofReason {
    /// No proof, more than one, or not three base64url parts of JSON.
    Malformed,
    /// The header's `typ` is not `dpop+jwt`.
    Type,
    /// The header's `alg` is not on the allow-list or does not fit its key.
    Algorithm,
    /// The header has no `jwk`, or it holds a private key or a symmetric one.
    Key,
    /// The signature does not verify with the header's key.
    Signature,
    /// `htm` is not the request's method.
    Method,
    /// `htu` is not the request's URL (query and fragment aside).
    Url,
    /// `iat` is outside the accepted window around now.
    Stale,
    /// `ath` is missing or is not the hash of the access token presented with it.
    AccessTokenHash,
    /// `jti` is missing, empty or longer than 256 bytes.
    MissingClaim,
}

impl ProofReason {
    /// The stable reason code: `PROOF_MALFORMED`, `PROOF_TYPE`, `PROOF_ALGORITHM`, `PROOF_KEY`,
    /// `PROOF_SIGNATURE`, `PROOF_METHOD`, `PROOF_URL`, `PROOF_STALE`, `PROOF_ATH`,
    /// `PROOF_CLAIM_MISSING`.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "PROOF_MALFORMED",
            Self::Type => "PROOF_TYPE",
            Self::Algorithm => "PROOF_ALGORITHM",
            Self::Key => "PROOF_KEY",
            Self::Signature => "PROOF_SIGNATURE",
            Self::Method => "PROOF_METHOD",
            Self::Url => "PROOF_URL",
            Self::Stale => "PROOF_STALE",
            Self::AccessTokenHash => "PROOF_ATH",
            Self::MissingClaim => "PROOF_CLAIM_MISSING",
        }
    }
}

impl fmt::Display for ProofReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl From<crate::jose::Fault> for TokenReason {
    fn from(fault: crate::jose::Fault) -> Self {
        match fault {
            crate::jose::Fault::Malformed => Self::Malformed,
            crate::jose::Fault::Algorithm => Self::Algorithm,
            crate::jose::Fault::Signature => Self::Signature,
        }
    }
}

impl From<crate::jose::Fault> for ProofReason {
    fn from(fault: crate::jose::Fault) -> Self {
        match fault {
            crate::jose::Fault::Malformed => Self::Malformed,
            crate::jose::Fault::Algorithm => Self::Algorithm,
            crate::jose::Fault::Signature => Self::Signature,
        }
    }
}
