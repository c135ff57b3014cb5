//! Where in its output format a `secrets inject` reference stands: outside any quotes, inside
//! a double-quoted or inside a single-quoted string. The template's literal text is fed in
//! order, and the state at each reference decides how `--escape` quotes the value, so a
//! reference inside a longer string (`DSN="postgres://app:{{ URI }}@db"`) is escaped for that
//! string and never breaks out of it.
//!
//! The rules follow each format's lexer as far as quoting goes:
//! - **shell** (POSIX sh): `'…'` has no escapes; `"…"` ends at an unescaped `"`; outside
//!   quotes `\` escapes the next character and `#` at the start of a word comments out the
//!   rest of the line (so `# don't` opens nothing).
//! - **json**: `"…"` with `\` escapes; JSON has no single quotes and no comments.
//! - **yaml**: a quote opens a quoted scalar only where a scalar starts (at the start of a
//!   line's content, after a space, a tab or `[`, `{`, `,`), so `name: don't` opens nothing;
//!   `"…"` with `\` escapes, `'…'` with `''` for a quote; `#` after a space starts a comment.
//!
//! Inserted values do not change the state: each is escaped for the place it is inserted.

use crate::cli::Escape;

/// The quotes around a place in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quote {
    None,
    Double,
    Single,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Outside,
    /// Outside, the last character a `\` (shell): the next one is literal.
    Escaped,
    Comment,
    Double,
    /// In `"…"`, after a `\`.
    DoubleEscaped,
    Single,
    /// YAML: a `'` in `'…'` that closes the scalar unless another `'` follows.
    SingleQuoteSeen,
}

/// The quote state of one template, fed its literal text in order.
#[derive(Debug)]
pub(crate) struct QuoteContext {
    escape: Option<Escape>,
    state: State,
    /// The last character fed (`None` at the start).
    last: Option<char>,
}

impl QuoteContext {
    pub(crate) fn new(escape: Option<Escape>) -> Self {
        Self {
            escape,
            state: State::Outside,
            last: None,
        }
    }

    /// The quotes a value inserted here stands in.
    pub(crate) fn quote(&self) -> Quote {
        match self.state {
            State::Double | State::DoubleEscaped => Quote::Double,
            State::Single => Quote::Single,
            // A `\` then a value: the value's first character is the escaped one; quoting
            // it as a whole word keeps the rest safe.
            State::Outside | State::Escaped | State::Comment | State::SingleQuoteSeen => {
                Quote::None
            }
        }
    }

    /// A value was inserted: the character before what follows is part of a word.
    pub(crate) fn inserted(&mut self) {
        match self.state {
            State::Escaped => self.state = State::Outside,
            State::DoubleEscaped => self.state = State::Double,
            State::SingleQuoteSeen => self.state = State::Outside,
            _ => {}
        }
        self.last = Some('x');
    }

    /// Feeds literal template text.
    pub(crate) fn feed(&mut self, text: &str) {
        for c in text.chars() {
            self.step(c);
            self.last = Some(c);
        }
    }

    fn step(&mut self, c: char) {
        let Some(escape) = self.escape else { return };
        self.state = match (escape, self.state) {
            (_, State::Comment) => {
                if c == '\n' {
                    State::Outside
                } else {
                    State::Comment
                }
            }
            (_, State::Double) => match c {
                '\\' => State::DoubleEscaped,
                '"' => State::Outside,
                _ => State::Double,
            },
            (_, State::DoubleEscaped) => State::Double,
            (Escape::Shell, State::Single) => {
                if c == '\'' {
                    State::Outside
                } else {
                    State::Single
                }
            }
            (_, State::Single) => {
                if c == '\'' {
                    State::SingleQuoteSeen
                } else {
                    State::Single
                }
            }
            // `''` inside a YAML single-quoted scalar is a quote; anything else ends it.
            (_, State::SingleQuoteSeen) => {
                if c == '\'' {
                    State::Single
                } else {
                    self.state = State::Outside;
                    return self.step(c);
                }
            }
            (Escape::Shell, State::Escaped) => State::Outside,
            (Escape::Shell, State::Outside) => match c {
                '\\' => State::Escaped,
                '\'' => State::Single,
                '"' => State::Double,
                '#' if self.word_start() => State::Comment,
                _ => State::Outside,
            },
            (Escape::Json, _) => match c {
                '"' => State::Double,
                _ => State::Outside,
            },
            (Escape::Yaml, _) => match c {
                '"' if self.scalar_start() => State::Double,
                '\'' if self.scalar_start() => State::Single,
                '#' if self.last.is_none_or(|l| l == ' ' || l == '\t' || l == '\n') => {
                    State::Comment
                }
                _ => State::Outside,
            },
        };
    }

    /// Shell: a `#` here starts a comment.
    fn word_start(&self) -> bool {
        self.last
            .is_none_or(|l| l.is_whitespace() || matches!(l, ';' | '&' | '|' | '(' | ')'))
    }

    /// YAML: a quote here opens a quoted scalar.
    fn scalar_start(&self) -> bool {
        self.last
            .is_none_or(|l| matches!(l, ' ' | '\t' | '\n' | '\r' | '[' | '{' | ',' | '-' | ':'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_end(escape: Escape, text: &str) -> Quote {
        let mut context = QuoteContext::new(Some(escape));
        context.feed(text);
        context.quote()
    }

    #[test]
    fn shell_quotes_comments_and_escapes() {
        let cases = [
            ("X=", Quote::None),
            ("X='", Quote::Single),
            ("X=\"", Quote::Double),
            ("DSN=\"postgres://app:", Quote::Double),
            ("DSN='postgres://app:", Quote::Single),
            ("X=\"a'b", Quote::Double),
            ("X='a\"b", Quote::Single),
            ("X=\"a\\\"b", Quote::Double),
            ("X=\"done\" Y=", Quote::None),
            ("# don't\nX=", Quote::None),
            ("X=a#b'", Quote::Single),
            ("X=\\'", Quote::None),
            ("X='it'\\''s ", Quote::Single),
        ];
        for (text, quote) in cases {
            assert_eq!(at_end(Escape::Shell, text), quote, "{text:?}");
        }
    }

    #[test]
    fn json_strings_with_escapes() {
        assert_eq!(at_end(Escape::Json, r#"{"a": "#), Quote::None);
        assert_eq!(at_end(Escape::Json, r#"{"a": ""#), Quote::Double);
        assert_eq!(
            at_end(Escape::Json, r#"{"dsn": "postgres://app:"#),
            Quote::Double
        );
        assert_eq!(at_end(Escape::Json, r#"{"a": "x\"y"#), Quote::Double);
        assert_eq!(at_end(Escape::Json, r#"{"a": "x\\", "b": "#), Quote::None);
    }

    #[test]
    fn yaml_quotes_only_where_a_scalar_starts() {
        let cases = [
            ("a: ", Quote::None),
            ("a: \"", Quote::Double),
            ("a: '", Quote::Single),
            ("a: don't\nb: ", Quote::None),
            ("a: 'it''s ", Quote::Single),
            ("a: 'x'\nb: ", Quote::None),
            ("a: \"postgres://app:", Quote::Double),
            ("- '", Quote::Single),
            ("a: [\"", Quote::Double),
            ("a: 1 # don't\nb: ", Quote::None),
        ];
        for (text, quote) in cases {
            assert_eq!(at_end(Escape::Yaml, text), quote, "{text:?}");
        }
    }

    #[test]
    fn without_escape_nothing_is_tracked() {
        let mut context = QuoteContext::new(None);
        context.feed("\"");
        assert_eq!(context.quote(), Quote::None);
    }
}
