//! The error type and its stable codes.

use std::fmt;

/// Why a URI was rejected. Each variant has a stable [`code()`](UriError::code).
///
/// `Display` says what is wrong and at which byte offset of the input; it never repeats the
/// input URI (only a short, escaped scheme or parameter name where that is the problem).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// A structural problem: missing `://`, empty scheme, a second `#`, an empty query parameter
    /// name, `%2f` or `..` in the path, an empty or `.` segment, a disallowed character, or a
    /// control character.
    #[error("illegal segment at byte {offset}: {reason}")]
    IllegalSegment {
        /// Byte offset in the input where the problem starts.
        offset: usize,
        /// What exactly is illegal.
        reason: IllegalSegmentReason,
    },
    /// A path segment contains `*`.
    #[error("invalid wildcard at byte {offset}: `*` is not allowed in a path segment")]
    InvalidWildcard {
        /// Byte offset of the `*`.
        offset: usize,
    },
    /// The scheme names an unknown provider, an engine the provider does not have, or an
    /// empty engine.
    #[error("unsupported engine at byte {offset}: {reason} in scheme `{scheme}`")]
    UnsupportedEngine {
        /// Byte offset where the unsupported part of the scheme starts.
        offset: usize,
        /// What is unsupported.
        reason: EngineReason,
        /// The scheme as written, escaped and cut to 32 characters.
        scheme: String,
    },
    /// A query parameter appears twice.
    #[error("ambiguous query at byte {offset}: parameter `{name}` is repeated")]
    AmbiguousQuery {
        /// Byte offset of the repeated parameter.
        offset: usize,
        /// The parameter name, escaped and cut to 32 characters.
        name: String,
    },
    /// A `mount` query parameter competes with the mount named by the path.
    #[error(
        "double mount source at byte {offset}: the mount is the first path segment; \
         a `mount` query parameter is not allowed"
    )]
    DoubleMountSource {
        /// Byte offset of the `mount` parameter.
        offset: usize,
    },
    /// The mount is not in the tenant's allowed mounts (see [`AllowedMounts`](crate::AllowedMounts)).
    #[error("tenant mount mismatch: mount `{mount}` is not in the allowed mounts")]
    TenantMountMismatch {
        /// The mount that was refused.
        mount: String,
    },
    /// The `version` parameter is not a positive decimal that fits `u64`.
    #[error("invalid version at byte {offset}: {reason}")]
    InvalidVersion {
        /// Byte offset of the version value.
        offset: usize,
        /// What is wrong with it.
        reason: VersionReason,
    },
}

impl UriError {
    /// The stable code of this error, e.g. `"ILLEGAL_SEGMENT"`. Codes are never reused for
    /// another meaning; match on them in metrics and APIs.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::IllegalSegment { .. } => "ILLEGAL_SEGMENT",
            Self::InvalidWildcard { .. } => "INVALID_WILDCARD",
            Self::UnsupportedEngine { .. } => "UNSUPPORTED_ENGINE",
            Self::AmbiguousQuery { .. } => "AMBIGUOUS_QUERY",
            Self::DoubleMountSource { .. } => "DOUBLE_MOUNT_SOURCE",
            Self::TenantMountMismatch { .. } => "TENANT_MOUNT_MISMATCH",
            Self::InvalidVersion { .. } => "INVALID_VERSION",
        }
    }

    /// The byte offset in the input the error points at, when it has one.
    #[must_use]
    pub const fn offset(&self) -> Option<usize> {
        match self {
            Self::IllegalSegment { offset, .. }
            | Self::InvalidWildcard { offset }
            | Self::UnsupportedEngine { offset, .. }
            | Self::AmbiguousQuery { offset, .. }
            | Self::DoubleMountSource { offset }
            | Self::InvalidVersion { offset, .. } => Some(*offset),
            Self::TenantMountMismatch { .. } => None,
        }
    }
}

/// The detail of an [`UriError::IllegalSegment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IllegalSegmentReason {
    /// The input has no `://`.
    MissingSeparator,
    /// Nothing before `://`.
    EmptyScheme,
    /// More than one `#`.
    MultipleFragments,
    /// The `#key` contains a `?` (possible only in `?query#key` order).
    QuestionMarkInKey,
    /// A control character (including a trailing newline).
    ControlCharacter,
    /// A query pair with an empty name (`?=x`).
    EmptyParameterName,
    /// `%2f` (any case) in the path.
    EncodedSlash,
    /// `..` in the path.
    DotDot,
    /// No path segment at all (no mount).
    NoSegment,
    /// An empty path segment (leading `/` or `//`).
    EmptySegment,
    /// A segment that is exactly `.`.
    DotSegment,
    /// A character outside `[A-Za-z0-9._-]` in a segment.
    InvalidCharacter,
}

impl fmt::Display for IllegalSegmentReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingSeparator => "missing `://` after the scheme",
            Self::EmptyScheme => "empty scheme before `://`",
            Self::MultipleFragments => "more than one `#`",
            Self::QuestionMarkInKey => "`?` inside the `#key`",
            Self::ControlCharacter => "control character",
            Self::EmptyParameterName => "query parameter with an empty name",
            Self::EncodedSlash => "encoded slash `%2f` in the path",
            Self::DotDot => "`..` in the path",
            Self::NoSegment => "no path segment (the mount is missing)",
            Self::EmptySegment => "empty path segment",
            Self::DotSegment => "`.` path segment",
            Self::InvalidCharacter => "character outside [A-Za-z0-9._-] in a path segment",
        })
    }
}

/// The detail of an [`UriError::UnsupportedEngine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EngineReason {
    /// The provider part of the scheme is not a known provider.
    UnknownProvider,
    /// The provider is known but has no such engine.
    UnknownEngine,
    /// A `+` with nothing after it.
    EmptyEngine,
}

impl fmt::Display for EngineReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownProvider => "unknown provider",
            Self::UnknownEngine => "the provider has no such engine",
            Self::EmptyEngine => "empty engine after `+`",
        })
    }
}

/// The detail of an [`UriError::InvalidVersion`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VersionReason {
    /// `version` has no value.
    Empty,
    /// A character other than an ASCII digit (a sign included).
    NotDigits,
    /// A leading `0` (`007`).
    LeadingZero,
    /// The value `0`: versions start at 1.
    Zero,
    /// Larger than `u64::MAX`.
    Overflow,
}

impl fmt::Display for VersionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "`version` has no value",
            Self::NotDigits => "`version` must be ASCII digits only",
            Self::LeadingZero => "`version` must not have a leading zero",
            Self::Zero => "`version` must be positive",
            Self::Overflow => "`version` does not fit in 64 bits",
        })
    }
}

/// Escape and shorten a piece of input for an error message.
pub(crate) fn snippet(s: &str) -> String {
    const MAX: usize = 32;
    let mut out = String::with_capacity(s.len().min(MAX) + 3);
    for (n, c) in s.chars().enumerate() {
        if n == MAX {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out
}
