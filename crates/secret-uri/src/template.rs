//! `{{ URI }}` references in text templates: a pure scanner, no I/O.
//!
//! [`scan`] splits a template into the [`Piece`]s a renderer (`secrets inject`) copies or
//! replaces and a linter (`secrets lint`) checks: literal text, and [`Reference`]s, each with
//! its byte span, the line and column of its URI and the URI's text (trimmed).
//!
//! ```
//! use secret_uri::template::{Piece, scan};
//!
//! let template = "DB_PASSWORD={{ file://demo/db.json#password }}\nNAME={{ .Values.name }}\n";
//! let mut refs = Vec::new();
//! for piece in scan(template) {
//!     match piece? {
//!         Piece::Reference(r) => refs.push((r.line, r.column, r.text, r.parse()?)),
//!         Piece::Text(_) => {}
//!     }
//! }
//! assert_eq!(refs.len(), 1);
//! let (line, column, text, uri) = &refs[0];
//! assert_eq!((*line, *column, *text), (1, 16, "file://demo/db.json#password"));
//! assert_eq!(uri.redacted().to_string(), "file://demo/…");
//!
//! // An unclosed `{{` before a URI is an error, never text that silently passes through.
//! let err = scan("a: {{ file://demo/x\n").find_map(Result::err).unwrap();
//! assert_eq!((err.code(), err.offset()), ("UNTERMINATED_REFERENCE", 3));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Rules
//!
//! - A *span* is `{{`, then anything up to the first `}}` after it. A run of more than two
//!   `{` opens the span at its last two (`{{{ x }}` is `{` and the span `{{ x }}`), and the
//!   span closes at the first `}}` (`{{ x }}}` is the span and `}`), so JSON braces around a
//!   reference need no spaces. Spans do not nest: a `{{` before the closing `}}` means the
//!   first `{{` is not closed.
//! - A span is a *reference* when its inner text, trimmed of whitespace (newlines
//!   included), looks like a URI: it starts with a scheme (ASCII letters, digits, `+`, `-`,
//!   `.`, `_`; possibly none) followed by `://`. Its text must then be a valid secret URI
//!   (see [`Reference::parse`]): a typo such as `{{ fle://x }}` or `{{ https://… }}` is a
//!   reference with an invalid URI, never literal text.
//! - Any other span (`{{ .Values.name }}`, `{{- if .x }}`, `{{}}`) is literal text, copied
//!   byte for byte, so templates of Go, Helm, Jinja or Mustache can carry references too.
//! - A `{{` with no `}}` before the next `{{` (or the end) is an error,
//!   [`TemplateError::Unterminated`], when the text after it looks like a URI; otherwise it
//!   is literal text.
//! - Escaping: a backslash right before the `{{` of a reference makes that span literal text:
//!   `\{{ file://x }}` gives `{{ file://x }}`. Before a run of more than two `{`, the
//!   backslash is right before the run and escapes it whole: `\{{{ file://x }}}` gives
//!   `{{{ file://x }}}` (never `\{` and the secret). In a run of backslashes right before
//!   the braces that open a reference, each pair gives one backslash and an odd one left over
//!   escapes: `\\{{ file://x }}` is `\` then the reference. Backslashes anywhere else,
//!   before a span that is not a reference included, are literal text.
//! - Lines are counted at `\n`; columns are 1-based and count characters (not bytes), as
//!   `secrets lint` reports them.

use std::ops::Range;

use crate::{SecretUri, UriError};

/// Splits `template` into literal text and `{{ URI }}` references, in order (see the
/// [module docs](self) for the rules). An error does not end the scan: the `{{` it reports
/// is literal text, and the pieces after it follow, so a caller can list every problem.
///
/// Concatenating the [`Piece::Text`]s and the references' values renders the template; the
/// text pieces are slices of `template`, so rendering copies only what it keeps.
#[must_use]
pub fn scan(template: &str) -> Scan<'_> {
    Scan {
        template,
        text_start: 0,
        search: 0,
        pending: None,
        close: None,
        at: Position {
            offset: 0,
            line: 1,
            column: 1,
        },
    }
}

/// A piece of a template, as [`scan`] yields it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Literal text, to be copied as is.
    Text(&'a str),
    /// A `{{ URI }}` reference, to be replaced by the secret's value.
    Reference(Reference<'a>),
}

/// One `{{ URI }}` reference in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reference<'a> {
    /// The byte range of the whole reference in the template, from `{{` to `}}` inclusive.
    pub span: Range<usize>,
    /// The URI as written between the braces, trimmed of whitespace.
    pub text: &'a str,
    /// The byte offset of [`text`](Self::text) in the template.
    pub text_offset: usize,
    /// The 1-based line of the URI's first character.
    pub line: usize,
    /// The 1-based column, in characters, of the URI's first character.
    pub column: usize,
}

impl Reference<'_> {
    /// Parses the reference's URI.
    ///
    /// # Errors
    /// As [`SecretUri::parse`]; the error's offset is relative to [`text`](Self::text).
    pub fn parse(&self) -> Result<SecretUri, UriError> {
        SecretUri::parse(self.text)
    }
}

/// Why a template cannot be rendered. Each variant has a stable [`code()`](Self::code).
///
/// `Display` names the line and column; it never repeats the template's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A `{{` followed by what looks like a URI has no closing `}}` (before the next `{{` or
    /// the end of the template).
    #[error("unterminated reference at line {line}, column {column}: `{{{{` has no closing `}}}}`")]
    Unterminated {
        /// The byte offset of the `{{` in the template.
        offset: usize,
        /// Its 1-based line.
        line: usize,
        /// Its 1-based column, in characters.
        column: usize,
    },
}

impl TemplateError {
    /// The stable code of this error: `"UNTERMINATED_REFERENCE"`. Codes are never reused for
    /// another meaning.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Unterminated { .. } => "UNTERMINATED_REFERENCE",
        }
    }

    /// The byte offset in the template the error points at.
    #[must_use]
    pub const fn offset(&self) -> usize {
        match self {
            Self::Unterminated { offset, .. } => *offset,
        }
    }

    /// The 1-based line the error points at.
    #[must_use]
    pub const fn line(&self) -> usize {
        match self {
            Self::Unterminated { line, .. } => *line,
        }
    }

    /// The 1-based column, in characters, the error points at.
    #[must_use]
    pub const fn column(&self) -> usize {
        match self {
            Self::Unterminated { column, .. } => *column,
        }
    }
}

/// The iterator returned by [`scan`].
#[derive(Debug, Clone)]
pub struct Scan<'a> {
    template: &'a str,
    /// Where the literal text not yet yielded starts.
    text_start: usize,
    /// Where to look for the next `{{`.
    search: usize,
    /// What comes right after the text being yielded.
    pending: Option<Result<Piece<'a>, TemplateError>>,
    /// The last position counted; positions only move forward, so counting stays linear.
    at: Position,
    /// The first `}}` at or after some offset (`None`: none there), remembered: each `{{`
    /// would otherwise search the rest of the text again, quadratic in `{{`s without `}}`.
    close: Option<(usize, Option<usize>)>,
}

#[derive(Debug, Clone, Copy)]
struct Position {
    offset: usize,
    line: usize,
    column: usize,
}

impl Scan<'_> {
    /// Line and column of `offset`, which must not be before the last one asked for.
    fn position(&mut self, offset: usize) -> (usize, usize) {
        let skipped = self.template.get(self.at.offset..offset).unwrap_or("");
        for c in skipped.chars() {
            if c == '\n' {
                self.at.line += 1;
                self.at.column = 1;
            } else {
                self.at.column += 1;
            }
        }
        self.at.offset = offset.max(self.at.offset);
        (self.at.line, self.at.column)
    }
}

impl<'a> Iterator for Scan<'a> {
    type Item = Result<Piece<'a>, TemplateError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(pending) = self.pending.take() {
            return Some(pending);
        }
        let template = self.template;
        let bytes = template.as_bytes();
        loop {
            let Some(found) = find(template, "{{", self.search) else {
                // The rest is text.
                let rest = &template[self.text_start..];
                self.text_start = template.len();
                self.search = template.len();
                return (!rest.is_empty()).then_some(Ok(Piece::Text(rest)));
            };
            let mut open = found;
            while bytes.get(open + 2) == Some(&b'{') {
                open += 1;
            }
            let inner_start = open + 2;
            let close = match self.close {
                // The first `}}` from an earlier offset is also the first from here, if it is
                // not before here; no `}}` from there means none from here.
                Some((from, found))
                    if from <= inner_start && found.is_none_or(|c| c >= inner_start) =>
                {
                    found
                }
                _ => {
                    let found = find(template, "}}", inner_start);
                    self.close = Some((inner_start, found));
                    found
                }
            };
            let next_open = find(template, "{{", inner_start);
            let closed = close.filter(|&c| next_open.is_none_or(|n| c < n));
            let inner_end = closed.or(next_open).unwrap_or(template.len());
            let inner = &template[inner_start..inner_end];
            if !looks_like_uri(inner.trim_start()) {
                // Literal text, braces and all: look on after it.
                self.search = closed.map_or(inner_start, |c| c + 2);
                continue;
            }
            // Backslashes right before the braces that open the reference (all of them:
            // `\{{{` escapes as `\{{` does): pairs give one each, an odd one escapes.
            let slashes = bytes[self.text_start..found]
                .iter()
                .rev()
                .take_while(|&&b| b == b'\\')
                .count();
            let kept = &template[self.text_start..found - slashes + slashes / 2];
            if slashes % 2 == 1 {
                // The span is literal, braces and all; a reference after its `{{` is still
                // found.
                self.text_start = found;
                self.search = closed.map_or(inner_start, |c| c + 2);
                if kept.is_empty() {
                    continue;
                }
                return Some(Ok(Piece::Text(kept)));
            }
            if slashes > 0 && found < open {
                // The halved backslashes, then (on the next call) the braces before the span:
                // two slices of the template, as the backslashes dropped lie between them.
                self.text_start = found;
                self.search = found;
                return Some(Ok(Piece::Text(kept)));
            }
            let text = &template[self.text_start..open - slashes + slashes / 2];
            let piece = match closed {
                Some(close) => {
                    let lead = inner.len() - inner.trim_start().len();
                    let text_offset = inner_start + lead;
                    let (line, column) = self.position(text_offset);
                    self.text_start = close + 2;
                    self.search = close + 2;
                    Ok(Piece::Reference(Reference {
                        span: open..close + 2,
                        text: inner.trim(),
                        text_offset,
                        line,
                        column,
                    }))
                }
                None => {
                    let (line, column) = self.position(open);
                    // The `{{` is text from here on; the scan goes on after it.
                    self.text_start = open;
                    self.search = inner_start;
                    Err(TemplateError::Unterminated {
                        offset: open,
                        line,
                        column,
                    })
                }
            };
            if text.is_empty() {
                return Some(piece);
            }
            self.pending = Some(piece);
            return Some(Ok(Piece::Text(text)));
        }
    }
}

/// The first `needle` in `haystack` at or after byte `from`.
fn find(haystack: &str, needle: &str, from: usize) -> Option<usize> {
    haystack.get(from..)?.find(needle).map(|i| from + i)
}

/// Whether `text` starts with a (possibly empty) run of scheme characters and `://`.
fn looks_like_uri(text: &str) -> bool {
    let scheme = text
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.' | b'_'))
        .count();
    text[scheme..].starts_with("://")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// The pieces, as `T:text`, `R:line:column:text` and `E:code@offset`.
    fn pieces(template: &str) -> Vec<String> {
        scan(template)
            .map(|p| match p {
                Ok(Piece::Text(t)) => format!("T:{t}"),
                Ok(Piece::Reference(r)) => format!("R:{}:{}:{}", r.line, r.column, r.text),
                Err(e) => format!("E:{}@{}", e.code(), e.offset()),
            })
            .collect()
    }

    /// Text pieces joined, each reference as `<text>`: the template as rendered.
    fn rendered(template: &str) -> String {
        scan(template)
            .map(|p| match p {
                Ok(Piece::Text(t)) => t.to_owned(),
                Ok(Piece::Reference(r)) => format!("<{}>", r.text),
                Err(_) => String::new(),
            })
            .collect()
    }

    #[test]
    fn references_and_text_in_order() {
        assert_eq!(
            pieces("a={{ file://m/a }}\nb={{file://m/b#k}}!"),
            [
                "T:a=",
                "R:1:6:file://m/a",
                "T:\nb=",
                "R:2:5:file://m/b#k",
                "T:!"
            ]
        );
        assert_eq!(pieces(""), Vec::<String>::new());
        assert_eq!(pieces("no references"), ["T:no references"]);
        assert_eq!(pieces("{{ file://m/a }}"), ["R:1:4:file://m/a"]);
    }

    #[test]
    fn whitespace_of_any_kind_is_trimmed() {
        assert_eq!(pieces("{{\n\t file://m/a \r\n}}"), ["R:2:3:file://m/a"]);
    }

    #[test]
    fn spans_and_offsets() {
        let template = "ü: {{  yaml://c/a.yaml#db.port }} x";
        let Some(Ok(Piece::Reference(r))) = scan(template).nth(1) else {
            panic!("{:?}", pieces(template));
        };
        assert_eq!(&template[r.span.clone()], "{{  yaml://c/a.yaml#db.port }}");
        assert_eq!(&template[r.text_offset..][..r.text.len()], r.text);
        // `ü` is two bytes, one column.
        assert_eq!((r.span.start, r.text_offset, r.column), (4, 8, 8));
        assert_eq!(r.parse().unwrap().as_str(), "yaml://c/a.yaml#db.port");
    }

    #[test]
    fn other_spans_are_text() {
        for template in [
            "{{ .Values.name }}",
            "{{- if .x }}y{{ end -}}",
            "{{}}",
            "{{ }}",
            "{{ \"file://m/a\" }}",
            "{{ x file://m/a }}",
            "{{ file:/m/a }}",
            "}} {{",
            "{ file://m/a }",
            "{{",
            "a {{ b",
            "{{{{}}}}",
        ] {
            assert_eq!(pieces(template), [format!("T:{template}")], "{template}");
        }
    }

    #[test]
    fn uri_like_text_is_a_reference_even_when_invalid() {
        assert_eq!(
            pieces("{{ fle://x }}{{ https://e.com/ }}{{ ://m/a }}{{ file://m/a b }}"),
            [
                "R:1:4:fle://x",
                "R:1:17:https://e.com/",
                "R:1:37:://m/a",
                "R:1:49:file://m/a b"
            ]
        );
        let codes: Vec<_> = scan("{{ fle://x }} {{ file://m/* }}")
            .filter_map(|p| match p {
                Ok(Piece::Reference(r)) => Some(r.parse().unwrap_err().code()),
                _ => None,
            })
            .collect();
        assert_eq!(codes, ["UNSUPPORTED_ENGINE", "INVALID_WILDCARD"]);
    }

    #[test]
    fn braces_around_references() {
        assert_eq!(
            pieces(r#"{"a":{{{file://m/a}}}}"#),
            ["T:{\"a\":{", "R:1:9:file://m/a", "T:}}"]
        );
        assert_eq!(
            pieces("{{{ file://m/a }}}"),
            ["T:{", "R:1:5:file://m/a", "T:}"]
        );
    }

    #[test]
    fn spans_do_not_nest() {
        // The stray `{{` is text; the reference after it is found.
        assert_eq!(
            pieces("a: {{ stray\nb: {{ file://m/a }}"),
            ["T:a: {{ stray\nb: ", "R:2:7:file://m/a"]
        );
        assert_eq!(
            rendered("{{ .x {{ file://m/a }} }}"),
            "{{ .x <file://m/a> }}"
        );
    }

    #[test]
    fn unterminated_references_are_errors_and_the_scan_goes_on() {
        assert_eq!(
            pieces("x {{ file://m/a\n{{ file://m/b }}"),
            [
                "T:x ",
                "E:UNTERMINATED_REFERENCE@2",
                "T:{{ file://m/a\n",
                "R:2:4:file://m/b"
            ]
        );
        assert_eq!(
            pieces("{{file://m/a }"),
            ["E:UNTERMINATED_REFERENCE@0", "T:{{file://m/a }"]
        );
        let err = scan("é\n  {{ fle://").find_map(Result::err).unwrap();
        assert_eq!(
            err,
            TemplateError::Unterminated {
                offset: 5,
                line: 2,
                column: 3
            }
        );
        assert_eq!(
            err.to_string(),
            "unterminated reference at line 2, column 3: `{{` has no closing `}}`"
        );
    }

    #[test]
    fn backslashes_escape_references_only() {
        assert_eq!(rendered(r"\{{ file://m/a }}"), "{{ file://m/a }}");
        assert_eq!(rendered(r"\\{{ file://m/a }}"), r"\<file://m/a>");
        assert_eq!(rendered(r"\\\{{ file://m/a }}"), r"\{{ file://m/a }}");
        assert_eq!(rendered(r"\\\\{{ file://m/a }}"), r"\\<file://m/a>");
        assert_eq!(rendered(r"x\{{ file://m/a }}y"), "x{{ file://m/a }}y");
        // Before more than two braces, the backslash escapes the run they open together.
        assert_eq!(rendered(r"\{{{ file://m/a }}}"), "{{{ file://m/a }}}");
        assert_eq!(rendered(r"\{{{{ file://m/a }}"), "{{{{ file://m/a }}");
        assert_eq!(rendered(r"\\{{{ file://m/a }}}"), r"\{<file://m/a>}");
        assert_eq!(rendered(r"\\\{{{ file://m/a }}}"), r"\{{{ file://m/a }}}");
        assert_eq!(rendered(r"{\{{ file://m/a }}}"), "{{{ file://m/a }}}");
        assert_eq!(
            pieces(r"a\\{{{ file://m/a }}}"),
            [r"T:a\", "T:{", "R:1:8:file://m/a", "T:}"]
        );
        // Not before a reference: kept as written.
        for literal in [
            r"\{{ .Values.x }}",
            r"\\",
            r"a\b",
            r"\{ file://m/a }",
            r"\{{",
        ] {
            assert_eq!(rendered(literal), literal, "{literal}");
        }
        // An escaped unterminated `{{` is text, not an error.
        assert_eq!(pieces(r"\{{ file://m/a"), ["T:{{ file://m/a"]);
        // Inside an escaped span a reference is still found after its `{{`.
        assert_eq!(
            rendered(r"\{{ file://m/a {{ file://m/b }}"),
            "{{ file://m/a <file://m/b>"
        );
    }

    #[test]
    fn text_pieces_cover_the_template_without_escapes() {
        let template = "a {{ file://m/a }} b {{ .c }} d {{ file://m/b }}\né {{ file://m/c }}";
        let mut rebuilt = String::new();
        for piece in scan(template) {
            match piece.unwrap() {
                Piece::Text(t) => rebuilt.push_str(t),
                Piece::Reference(r) => rebuilt.push_str(&template[r.span]),
            }
        }
        assert_eq!(rebuilt, template);
    }

    #[test]
    fn lines_and_columns_count_characters() {
        let lines: Vec<_> = scan("é {{ file://a/b }}\n\nüü{{file://c/d}}")
            .filter_map(|p| match p {
                Ok(Piece::Reference(r)) => Some((r.line, r.column)),
                _ => None,
            })
            .collect();
        assert_eq!(lines, [(1, 6), (3, 5)]);
    }

    proptest::proptest! {
        /// Without backslashes, the text pieces and the references' spans are the template,
        /// in order; every reference's text is inside its span.
        #[test]
        fn pieces_cover_any_template(template in "[{} \nfile:/ma.é#x]{0,64}") {
            let mut rebuilt = String::new();
            for piece in scan(&template) {
                match piece {
                    Ok(Piece::Text(t)) => rebuilt.push_str(t),
                    Ok(Piece::Reference(r)) => {
                        proptest::prop_assert!(r.span.start + 2 <= r.text_offset);
                        proptest::prop_assert!(r.text_offset + r.text.len() + 2 <= r.span.end);
                        rebuilt.push_str(&template[r.span]);
                    }
                    Err(e) => proptest::prop_assert!(template[e.offset()..].starts_with("{{")),
                }
            }
            proptest::prop_assert_eq!(rebuilt, template);
        }

        #[test]
        fn never_panics(template in "[{}\\ a:/\n]{0,64}") {
            for piece in scan(&template) {
                let _ = piece.map_err(|e| e.to_string());
            }
        }
    }
}
