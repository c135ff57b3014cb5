//! The one validity check of a URI found in text (`lint`) or in a template (`lint`,
//! `inject`): the parser, the mount guard, then the parameters its provider serves, the same
//! checks both clients run before any I/O. No I/O.

use std::fmt::{self, Display};

use secret_uri::template::TemplateError;
use secret_uri::{AllowedMounts, SecretUri, UriError};
use secrets_sdk::providers::{ProviderError, check_parameters};

/// Why a URI is invalid: the parser or the mount guard refused it, or its provider does not
/// serve one of its query parameters.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum Problem {
    /// Refused by the parser or the mount guard.
    Uri(UriError),
    /// Parsed, but carries a parameter its provider does not serve (`UNKNOWN_PARAMETER`).
    Parameter(ProviderError),
    /// A `{{` before a URI with no `}}` (`UNTERMINATED_REFERENCE`).
    Template(TemplateError),
}

impl Problem {
    /// The stable code, e.g. `ILLEGAL_SEGMENT` or `UNKNOWN_PARAMETER`.
    #[must_use]
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Uri(e) => e.code(),
            Self::Parameter(e) => e.code(),
            Self::Template(e) => e.code(),
        }
    }
}

impl Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uri(e) => e.fmt(f),
            Self::Parameter(e) => e.fmt(f),
            Self::Template(e) => e.fmt(f),
        }
    }
}

/// The parsed URI, or why it is invalid.
///
/// # Errors
/// The parser's or the mount guard's refusal; `UNKNOWN_PARAMETER`.
pub(crate) fn check(text: &str, mounts: &AllowedMounts) -> Result<SecretUri, Problem> {
    let uri = SecretUri::parse_allowed(text, mounts).map_err(Problem::Uri)?;
    check_parameters(&uri).map_err(Problem::Parameter)?;
    Ok(uri)
}
