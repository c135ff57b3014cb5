//! [`LoadError`]: why a configuration could not be loaded, resolved or watched.

use std::fmt;
use std::path::PathBuf;

use super::Format;

/// Why a configuration could not be loaded, resolved or watched. No message holds a value
/// from the file or a secret; field paths (`database.password`, `servers[1].token`) and
/// codes say what is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read: missing, unreadable, not a regular file (a FIFO is
    /// refused, never waited on), not UTF-8, or larger than the cap.
    #[error("configuration file {} could not be read: {reason} [CONFIG_IO]", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong, in words of ours.
        reason: &'static str,
        /// The I/O error, if any.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The file's extension names no format this loader reads (`.yaml`, `.yml`, `.json`,
    /// `.toml`).
    #[error("configuration file {} has no known format (.yaml, .yml, .json, .toml) [CONFIG_PARSE]", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The text is not valid in its format, or does not fit the struct.
    #[error("{origin}: {field}: {reason}{at} [CONFIG_PARSE]", at = Location(*line, *column))]
    Parse {
        /// The file, or `(text)`.
        origin: String,
        /// The format read.
        format: Format,
        /// The field path of the error (`.` for the document itself).
        field: String,
        /// What is wrong, in terms of the struct (`missing field `port``, `invalid type,
        /// expected u16`) or of the format (`not valid YAML`); never a value.
        reason: String,
        /// The 1-based line, when the format reports one.
        line: Option<usize>,
        /// The 1-based column, when the format reports one.
        column: Option<usize>,
    },
    /// The struct could not be walked for its references (its own `Serialize` failed).
    #[error("the configuration could not be walked for secret references: {reason} [CONFIG_PARSE]")]
    Walk {
        /// The struct's serialization error.
        reason: String,
    },
    /// Secret references that the file holds but the walk cannot find (a `SecretRef` field
    /// skipped when serializing, or serialized through another serializer such as
    /// `serde_json::to_value`): they would never be resolved, so the configuration is refused
    /// before anything is.
    #[error("{} [CONFIG_UNREACHABLE_REFERENCE]", Unreachable(*count, fields))]
    Unreachable {
        /// How many references cannot be reached.
        count: usize,
        /// The field paths of those the format could locate (at most 16), in creation order.
        fields: Vec<String>,
    },
    /// Secret references could not be resolved (or watched): every one of them, with its
    /// field path and code.
    #[error("{} [CONFIG_SECRETS]", Failures(failures))]
    Secrets {
        /// Each failed reference, in the struct's order.
        failures: Vec<RefFailure>,
    },
}

impl LoadError {
    /// The stable code: `CONFIG_IO`, `CONFIG_PARSE`, `CONFIG_UNREACHABLE_REFERENCE` or
    /// `CONFIG_SECRETS`.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "CONFIG_IO",
            Self::UnknownFormat { .. } | Self::Parse { .. } | Self::Walk { .. } => "CONFIG_PARSE",
            Self::Unreachable { .. } => "CONFIG_UNREACHABLE_REFERENCE",
            Self::Secrets { .. } => "CONFIG_SECRETS",
        }
    }

    /// The failed references of a `CONFIG_SECRETS` error; empty for the others.
    #[must_use]
    pub fn failures(&self) -> &[RefFailure] {
        match self {
            Self::Secrets { failures } => failures,
            _ => &[],
        }
    }
}

/// One secret reference that failed, where it is in the struct.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RefFailure {
    /// The field path (`database.password`, `servers[1].token`, `extra.kafka`), spelled as a
    /// `CONFIG_PARSE` error's: a map key is the file's, escaped and capped at 64 characters.
    pub field: String,
    /// The code: the URI's (`ILLEGAL_SEGMENT`, `TENANT_MOUNT_MISMATCH`, …) when the
    /// reference does not parse, else the resolve's (`NOT_FOUND`, `KEY_NOT_FOUND`,
    /// `TIMEOUT`, …).
    pub code: &'static str,
    /// The resolve's error, when it got that far.
    pub error: Option<std::sync::Arc<crate::Error>>,
}

impl fmt::Display for RefFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.code)
    }
}

struct Failures<'a>(&'a [RefFailure]);

impl fmt::Display for Failures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} secret reference{} failed: ",
            if n == 1 { "" } else { "s" }
        )?;
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

struct Unreachable<'a>(usize, &'a [String]);

impl fmt::Display for Unreachable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(count, fields) = *self;
        let (s, it) = if count == 1 {
            ("", "it")
        } else {
            ("s", "they")
        };
        write!(
            f,
            "{count} secret reference{s} of the configuration cannot be found by walking it (a \
             field skipped when serializing, or serialized through another serializer), so \
             {it} would never be resolved"
        )?;
        if !fields.is_empty() {
            write!(f, ": {}", fields.join(", "))?;
        }
        let unnamed = count.saturating_sub(fields.len());
        if unnamed > 0 && !fields.is_empty() {
            write!(f, " and {unnamed} more")?;
        }
        Ok(())
    }
}

struct Location(Option<usize>, Option<usize>);

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(line), Some(column)) => write!(f, " (line {line}, column {column})"),
            (Some(line), None) => write!(f, " (line {line})"),
            _ => Ok(()),
        }
    }
}
