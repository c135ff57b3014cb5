//! Text to struct: YAML, JSON or TOML through serde's own format crates, with the field path
//! of an error (`serde_path_to_error`) and a reason that never quotes the file.
//!
//! Format crates' messages quote what they read (`invalid type: string "hunter2", expected
//! u16`; TOML prints the offending line), and a configuration file is exactly where a value
//! typed by mistake would be. So only the schema's side of serde's standard messages is
//! kept (`invalid type, expected u16`, `missing field `port``, `unknown field, expected one
//! of …`). Any other message is either a syntax error, `not valid <format>`, or a data error
//! of the type's own `Deserialize` (a custom check, whose message may well quote the value),
//! [`CUSTOM`]; both with the line and column.

use std::sync::Weak;

use serde::de::DeserializeOwned;

use super::secret_ref::{Mode, PROBE, Slot, deserializing};
use super::{Format, LoadError, path};

/// A deserialized configuration, with every reference its deserialization created.
pub(super) struct Parsed<T> {
    pub(super) value: T,
    /// In creation order; those alive are the value's (see `Session::created`).
    pub(super) created: Vec<Weak<Slot>>,
    /// How the value was read: `locate` reads the same way.
    pub(super) mode: Mode,
}

/// Deserializes `text`, unparsable secret references kept for the caller to report.
///
/// Serde's own reading comes first (a reference that does not parse is an error, so an
/// untagged enum falls through to its next variant, as it would anywhere else); only when a
/// URI was refused is the text read again keeping unparsable references, so that every one
/// of them is reported at once with its field path.
pub(super) fn parse<T: DeserializeOwned>(
    text: &str,
    format: Format,
    origin: &str,
) -> Result<Parsed<T>, LoadError> {
    if format == Format::Yaml && !secret_providers::yaml_flow_within_budget(text.as_bytes()) {
        let reason = "too many flow collections ([…], {…}) for its size".to_owned();
        return Err(error(
            origin,
            Format::Yaml,
            ".".to_owned(),
            Some(reason),
            None,
            None,
        ));
    }
    let read = |mode| {
        let (value, session) = deserializing(mode, None, || read::<T>(text, format));
        let parsed = value.map(|value| Parsed {
            value,
            created: session.created,
            mode,
        });
        (parsed.map_err(|f| f.error(origin, format)), session.refused)
    };
    let strict = match read(Mode::Strict) {
        (Ok(parsed), 0) => return Ok(parsed),
        // A refused URI was swallowed (a flattened `Option` became `None`): reported below.
        (other, _) => other,
    };
    let lenient = read(Mode::Lenient).0?;
    let unparsed = lenient
        .created
        .iter()
        .filter_map(Weak::upgrade)
        .any(|slot| slot.parsed.is_err());
    if unparsed { Ok(lenient) } else { strict }
}

/// Where the reference created `index`-th when `text` was read in `mode` is: its field path,
/// if the format can say (the probe's refusal reaches the top and not, say, an untagged enum
/// that tries its next variant).
pub(super) fn locate<T: DeserializeOwned>(
    text: &str,
    format: Format,
    mode: Mode,
    index: usize,
) -> Option<String> {
    let (result, _) = deserializing(mode, Some(index), || read::<T>(text, format));
    match result {
        Err(failure) if failure.message.contains(PROBE) => Some(failure.field),
        _ => None,
    }
}

/// The reason given for a data error of a type's own `Deserialize` (a custom check on text
/// that is valid in its format), whose message is not shown.
pub(super) const CUSTOM: &str =
    "invalid value (the type's own Deserialize refused it; its message is not shown)";

/// Why a format's deserializer stopped: its own message (never shown: it may quote the file)
/// and what may be shown of it.
struct Failure {
    field: String,
    message: String,
    /// What is wrong: the schema's side of the message, `not valid <format>` or [`CUSTOM`].
    reason: String,
    line: Option<usize>,
    column: Option<usize>,
}

impl Failure {
    fn error(self, origin: &str, format: Format) -> LoadError {
        error(
            origin,
            format,
            self.field,
            Some(self.reason),
            self.line,
            self.column,
        )
    }
}

/// What may be shown of `message`: the schema's side of a standard message; else `not valid
/// <format>` for a syntax error, or [`CUSTOM`] for a data error.
fn reason(message: &str, format: Format, syntax: impl FnOnce() -> bool) -> String {
    schema_side(message).unwrap_or_else(|| {
        if syntax() {
            format!("not valid {}", format.name())
        } else {
            CUSTOM.to_owned()
        }
    })
}

fn read<T: DeserializeOwned>(text: &str, format: Format) -> Result<T, Failure> {
    match format {
        Format::Json => json(text),
        Format::Yaml => yaml(text),
        Format::Toml => toml(text),
    }
}

fn json<T: DeserializeOwned>(text: &str) -> Result<T, Failure> {
    let syntax = |e: &serde_json::Error| e.classify() != serde_json::error::Category::Data;
    let mut de = serde_json::Deserializer::from_str(text);
    let failed = |field: String, e: &serde_json::Error| {
        let message = e.to_string();
        Failure {
            field,
            reason: reason(strip_location(&message), Format::Json, || syntax(e)),
            message,
            line: Some(e.line()),
            column: Some(e.column()),
        }
    };
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = field(e.path(), &e.inner().to_string(), || syntax(e.inner()));
        failed(field, e.inner())
    })?;
    de.end().map_err(|e| failed(".".to_owned(), &e))?;
    Ok(value)
}

fn yaml<T: DeserializeOwned>(text: &str) -> Result<T, Failure> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        let location = inner.location();
        // serde_yaml_ng does not say which: the text is valid YAML when it reads as anything
        // at all.
        let syntax = std::cell::OnceCell::new();
        let syntax = || {
            *syntax.get_or_init(|| serde_yaml_ng::from_str::<serde::de::IgnoredAny>(text).is_err())
        };
        let message = inner.to_string();
        let stripped = strip_location(&message);
        // serde_yaml_ng prefixes a data error with its own path: `a.b: invalid type: …`.
        let unprefixed = stripped
            .split_once(": ")
            .filter(|_| schema_side(stripped).is_none())
            .map_or(stripped, |(_, rest)| rest);
        let limit = ["recursion limit exceeded", "repetition limit exceeded"]
            .into_iter()
            .find(|limit| unprefixed.starts_with(limit));
        let reason = if let Some(limit) = limit {
            // serde_yaml_ng's own bounds on nesting and aliases, whatever the struct.
            format!("not valid YAML ({limit})")
        } else {
            reason(unprefixed, Format::Yaml, syntax)
        };
        Failure {
            field: field(e.path(), stripped, syntax),
            reason,
            line: location.as_ref().map(serde_yaml_ng::Location::line),
            column: location.as_ref().map(serde_yaml_ng::Location::column),
            message,
        }
    })
}

fn toml<T: DeserializeOwned>(text: &str) -> Result<T, Failure> {
    // The whole text is parsed first: what fails later is data.
    let de = ::toml::Deserializer::parse(text)
        .map_err(|e| toml_failure(text, ".".to_owned(), &e, true))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = field(e.path(), e.inner().message(), || false);
        toml_failure(text, field, e.inner(), false)
    })
}

/// The error's field path, spelled as the walk spells a reference's (see `path`).
///
/// An unknown field's own name (`message` says "unknown field `name`") is left out: that
/// segment is the file's text, not the struct's. It is the last segment only when the format
/// read the key itself; inside an internally tagged enum or a flattened struct serde reports
/// it from its buffered copy, where the path ends at the enum's or struct's field, which stays.
/// A key the format could not capture (not a string, number, boolean or character) is `?`,
/// unless it is where a syntax error stopped the format before it read the key.
fn field(path: &serde_path_to_error::Path, message: &str, syntax: impl FnOnce() -> bool) -> String {
    use serde_path_to_error::Segment;
    let mut segments: Vec<&Segment> = path.iter().collect();
    let unknown = message
        .find("unknown field `")
        .map(|at| &message[at + "unknown field `".len()..]);
    if let (Some(unknown), Some(Segment::Map { key })) = (unknown, segments.last())
        && unknown
            .strip_prefix(key.as_str())
            .is_some_and(|rest| rest.starts_with('`'))
    {
        segments.pop();
    }
    if matches!(segments.last(), Some(Segment::Unknown)) && syntax() {
        segments.pop();
    }
    path::spell(segments.into_iter().map(|segment| match segment {
        Segment::Seq { index } => path::Segment::Index(*index),
        Segment::Map { key } | Segment::Enum { variant: key } => path::Segment::Name(key),
        Segment::Unknown => path::Segment::Unknown,
    }))
}

fn toml_failure(text: &str, field: String, e: &::toml::de::Error, syntax: bool) -> Failure {
    let (line, column) = e
        .span()
        .map(|span| line_column(text, span.start))
        .map_or((None, None), |(l, c)| (Some(l), Some(c)));
    Failure {
        field,
        message: e.message().to_owned(),
        reason: reason(e.message(), Format::Toml, || syntax),
        line,
        column,
    }
}

fn error(
    origin: &str,
    format: Format,
    field: String,
    reason: Option<String>,
    line: Option<usize>,
    column: Option<usize>,
) -> LoadError {
    LoadError::Parse {
        origin: origin.to_owned(),
        format,
        field,
        reason: reason.unwrap_or_else(|| format!("not valid {}", format.name())),
        line: line.filter(|&l| l > 0),
        column: column.filter(|&c| c > 0),
    }
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// `message` without a trailing ` at line L column C` (serde_json's and serde_yaml_ng's).
fn strip_location(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |i| &message[..i])
}

/// The schema's side of one of serde's standard data-error messages, or `None` for any other
/// message. Whatever serde quotes from the input (`string "…"`, `unknown field `…``) is cut;
/// what the struct expects stays.
pub(super) fn schema_side(message: &str) -> Option<String> {
    let expected = || {
        message
            .rfind(", expected ")
            .map(|i| message[i + 2..].to_owned())
    };
    let with_expected = |what: &str| {
        Some(match expected() {
            Some(expected) => format!("{what}, {expected}"),
            None => what.to_owned(),
        })
    };
    // Fields named by the struct (`missing field `port``) are the schema's own words.
    for kept in ["missing field `", "duplicate field `"] {
        if let Some(rest) = message.strip_prefix(kept) {
            let name = rest.split('`').next().unwrap_or_default();
            return Some(format!("{kept}{name}`"));
        }
    }
    for (prefix, what) in [
        ("invalid type: ", "invalid type"),
        ("invalid value: ", "invalid value"),
        ("invalid length ", "invalid length"),
        ("unknown field `", "unknown field"),
        ("unknown variant `", "unknown variant"),
    ] {
        if message.starts_with(prefix) {
            return with_expected(what);
        }
    }
    // Messages of serde's derives that name only the struct's types.
    let type_name = |name: &str| name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if let Some(name) = message
        .strip_prefix("data did not match any variant of untagged enum ")
        .filter(|name| type_name(name))
    {
        return Some(format!(
            "data did not match any variant of untagged enum {name}"
        ));
    }
    if let Some(name) = message
        .strip_prefix("no variant of enum ")
        .and_then(|rest| rest.strip_suffix(" found in flattened data"))
        .filter(|name| type_name(name))
    {
        return Some(format!("no variant of enum {name} found in flattened data"));
    }
    if message == "can only flatten structs and maps" {
        return Some(message.to_owned());
    }
    // A `SecretRef`'s own message names only the URI's code.
    if let Some(code) = message
        .strip_prefix("invalid secret URI [")
        .and_then(|rest| rest.split(']').next())
        .filter(|code| code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
    {
        return Some(format!("invalid secret URI [{code}]"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_schema_side_of_serde_messages_is_kept() {
        let cases = [
            (
                r#"invalid type: string "hunter2", expected u16"#,
                Some("invalid type, expected u16"),
            ),
            (
                r#"invalid value: string "a, expected b hunter2", expected one of `x`"#,
                Some("invalid value, expected one of `x`"),
            ),
            (
                "unknown field `hunter2`, expected `host` or `port`",
                Some("unknown field, expected `host` or `port`"),
            ),
            (
                "unknown variant `hunter2`, expected one of `a`, `b`",
                Some("unknown variant, expected one of `a`, `b`"),
            ),
            ("missing field `port`", Some("missing field `port`")),
            (
                "invalid length 3, expected a tuple of size 2",
                Some("invalid length, expected a tuple of size 2"),
            ),
            (
                "invalid secret URI [ILLEGAL_SEGMENT]",
                Some("invalid secret URI [ILLEGAL_SEGMENT]"),
            ),
            ("invalid secret URI [hunter2]", None),
            (
                "data did not match any variant of untagged enum Credential",
                Some("data did not match any variant of untagged enum Credential"),
            ),
            (
                "data did not match any variant of untagged enum hunter 2",
                None,
            ),
            (
                "no variant of enum Mode found in flattened data",
                Some("no variant of enum Mode found in flattened data"),
            ),
            ("expected `,` or `}`", None),
            ("did not find expected key hunter2", None),
        ];
        for (message, kept) in cases {
            assert_eq!(schema_side(message).as_deref(), kept, "{message}");
        }
    }

    #[test]
    fn lines_and_columns_count_from_one() {
        assert_eq!(line_column("a\nbc\n", 3), (2, 2));
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("abc", 99), (1, 4));
    }
}
