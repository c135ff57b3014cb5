//! `NAME=VALUE` assignments for `secrets exec`: `--env` flags and env files.
//!
//! Errors say where (the line, the flag's position) and what is wrong, never the text: a line
//! may hold a plain value that is itself a secret.

use std::fmt;

/// One variable to set.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Assignment {
    /// The variable name, `[A-Za-z_][A-Za-z0-9_]*`.
    pub(crate) name: String,
    /// A secret URI to resolve, or a plain value to pass through.
    pub(crate) value: String,
}

impl fmt::Debug for Assignment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value may be a plain secret.
        f.debug_struct("Assignment")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why a line or flag is not an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyntaxError {
    /// No `=`.
    MissingEquals,
    /// The name is not `[A-Za-z_][A-Za-z0-9_]*`.
    InvalidName,
    /// A quoted value has no closing quote on its line.
    UnterminatedQuote,
    /// Something other than a `#` comment follows a quoted value.
    TextAfterQuote,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingEquals => "expected NAME=VALUE",
            Self::InvalidName => "the variable name must match [A-Za-z_][A-Za-z0-9_]*",
            Self::UnterminatedQuote => "the quoted value has no closing quote on its line",
            Self::TextAfterQuote => "only a # comment may follow a quoted value",
        })
    }
}

/// A bad line in an env file: 1-based line number and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineError {
    /// 1-based line number.
    pub(crate) line: usize,
    /// What is wrong with it.
    pub(crate) error: SyntaxError,
}

/// Whether `name` is a portable environment variable name.
#[must_use]
pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A `--env NAME=VALUE` flag: split at the first `=`, the value taken as is (the shell did the
/// quoting).
///
/// # Errors
/// `MissingEquals`, `InvalidName`.
pub(crate) fn parse_flag(text: &str) -> Result<Assignment, SyntaxError> {
    let (name, value) = text.split_once('=').ok_or(SyntaxError::MissingEquals)?;
    if !is_valid_name(name) {
        return Err(SyntaxError::InvalidName);
    }
    Ok(Assignment {
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

/// Every assignment in an env file, in order (see `secrets exec --help` for the format).
///
/// # Errors
/// The first bad line.
pub(crate) fn parse(text: &str) -> Result<Vec<Assignment>, LineError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut assignments = Vec::new();
    for (n, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(Some(assignment)) => assignments.push(assignment),
            Ok(None) => {}
            Err(error) => return Err(LineError { line: n + 1, error }),
        }
    }
    Ok(assignments)
}

/// One line: `None` for a blank line or a comment.
fn parse_line(line: &str) -> Result<Option<Assignment>, SyntaxError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    // `export NAME=…`, but not a variable named `export…`.
    let line = match line.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => line,
    };
    let (name, value) = line.split_once('=').ok_or(SyntaxError::MissingEquals)?;
    let name = name.trim_end();
    if !is_valid_name(name) {
        return Err(SyntaxError::InvalidName);
    }
    let value = value.trim_start();
    let value = match value.chars().next() {
        Some(quote @ ('"' | '\'')) => {
            let inner = &value[1..];
            let end = inner.find(quote).ok_or(SyntaxError::UnterminatedQuote)?;
            let rest = inner[end + 1..].trim_start();
            if !(rest.is_empty() || rest.starts_with('#')) {
                return Err(SyntaxError::TextAfterQuote);
            }
            &inner[..end]
        }
        // Already trimmed at the end with the line; a `#` is part of the value (`#key`).
        _ => value,
    };
    Ok(Some(Assignment {
        name: name.to_owned(),
        value: value.to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|a| (a.name, a.value))
            .collect()
    }

    #[test]
    fn names() {
        for good in ["A", "_", "_a1", "DB_PASSWORD", "x9"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "Ä", "A=B", "A.B"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_env_file_format() {
        let text = "\u{feff}# comment\n\
                    \n\
                    DB=file://demo/db.json#password\n\
                    export API = 'openbao+kv2://secret/app#token' # trailing comment\n\
                    \texport\tQ=\"a # b\"\r\n\
                    PLAIN=hello world  \n\
                    EMPTY=\n\
                    EQ=a=b\n\
                    exporter=1\n\
                    \x20 # indented comment\n\
                    QQ=\"it's\"\n";
        assert_eq!(
            pairs(text),
            [
                ("DB", "file://demo/db.json#password"),
                ("API", "openbao+kv2://secret/app#token"),
                ("Q", "a # b"),
                ("PLAIN", "hello world"),
                ("EMPTY", ""),
                ("EQ", "a=b"),
                ("exporter", "1"),
                ("QQ", "it's"),
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn bad_lines_are_numbered() {
        let cases = [
            ("A=1\njust-a-value\n", 2, SyntaxError::MissingEquals),
            ("\n\n1A=x\n", 3, SyntaxError::InvalidName),
            ("A-B=x\n", 1, SyntaxError::InvalidName),
            ("=x\n", 1, SyntaxError::InvalidName),
            ("export =x\n", 1, SyntaxError::InvalidName),
            ("A=\"open\n", 1, SyntaxError::UnterminatedQuote),
            ("A='x' y\n", 1, SyntaxError::TextAfterQuote),
        ];
        for (text, line, error) in cases {
            assert_eq!(parse(text), Err(LineError { line, error }), "{text:?}");
        }
    }

    #[test]
    fn flags_take_the_value_as_is() {
        let a = parse_flag("A= 'x'#k ").unwrap();
        assert_eq!((a.name.as_str(), a.value.as_str()), ("A", " 'x'#k "));
        assert_eq!(parse_flag("A"), Err(SyntaxError::MissingEquals));
        assert_eq!(parse_flag(" A=x"), Err(SyntaxError::InvalidName));
    }

    #[test]
    fn debug_hides_the_value() {
        let a = parse_flag("A=canary").unwrap();
        assert!(!format!("{a:?}").contains("canary"));
        assert!(!format!("{:?}", parse("A=canary\nB")).contains("canary"));
    }
}
