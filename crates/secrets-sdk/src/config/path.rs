//! Field paths: one spelling for every error that names a place in a configuration, whether a
//! deserialization error's (`CONFIG_PARSE`, from `serde_path_to_error`) or a reference's
//! (`CONFIG_SECRETS`, `CONFIG_UNREACHABLE_REFERENCE`, from the walk).
//!
//! Names are joined by `.`, list indexes are `[i]`, the document itself is `.`, and a map key
//! that is not a string, number, boolean or character is `?`, an empty key `""`. A name is a
//! struct's field or variant, or a map's key, which is the file's own text (a name, never a
//! value, but whatever the file's author typed): so every name is shown escaped and capped.
//! Control characters, line and paragraph separators and the invisible formatting characters
//! (bidirectional overrides, zero-width spaces, the BOM) become `\u{…}` and a backslash `\\`,
//! so a key can neither break a log line nor hide what follows it; a name longer than
//! [`MAX_NAME_CHARS`] characters ends in `…` after that many.

use std::fmt::Write as _;

/// The most characters of one name a path shows.
pub(super) const MAX_NAME_CHARS: usize = 64;

/// One step of a path.
#[derive(Debug, Clone, Copy)]
pub(super) enum Segment<'a> {
    /// A struct's field or variant, or a map's key.
    Name(&'a str),
    /// A list's index.
    Index(usize),
    /// A map key that is not a string, number, boolean or character.
    Unknown,
}

/// The path of `segments`, spelled as the module says.
pub(super) fn spell<'a>(segments: impl IntoIterator<Item = Segment<'a>>) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Index(index) => {
                let _ = write!(out, "[{index}]");
            }
            Segment::Name(name) => {
                separate(&mut out);
                push_name(&mut out, name);
            }
            Segment::Unknown => {
                separate(&mut out);
                out.push('?');
            }
        }
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

fn separate(out: &mut String) {
    if !out.is_empty() {
        out.push('.');
    }
}

fn push_name(out: &mut String, name: &str) {
    if name.is_empty() {
        out.push_str("\"\"");
        return;
    }
    for (i, c) in name.chars().enumerate() {
        if i == MAX_NAME_CHARS {
            out.push('…');
            return;
        }
        if c == '\\' {
            out.push_str("\\\\");
        } else if hidden(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
}

/// Characters that do not show as themselves: controls (C0, DEL, C1), line and paragraph
/// separators, and the format characters that move or hide text.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_capped() {
        let long = "k".repeat(10_000);
        let cases = [
            (vec![], "."),
            (vec![Segment::Index(1), Segment::Name("token")], "[1].token"),
            (
                vec![Segment::Name("a"), Segment::Index(0), Segment::Index(2)],
                "a[0][2]",
            ),
            (vec![Segment::Name("m"), Segment::Unknown], "m.?"),
            (vec![Segment::Name("m"), Segment::Name("")], "m.\"\""),
            (
                vec![Segment::Name("line\nbreak\r\u{1b}[31m")],
                "line\\u{a}break\\u{d}\\u{1b}[31m",
            ),
            (
                vec![Segment::Name("\u{202e}txt.exe\u{2028}\u{feff}\u{85}")],
                "\\u{202e}txt.exe\\u{2028}\\u{feff}\\u{85}",
            ),
            (vec![Segment::Name("a\\u{a}")], "a\\\\u{a}"),
            (vec![Segment::Name("héllo wörld")], "héllo wörld"),
        ];
        for (segments, spelled) in cases {
            assert_eq!(spell(segments.clone()), spelled, "{segments:?}");
        }
        let capped = spell([Segment::Name(&long)]);
        assert_eq!(capped, format!("{}…", "k".repeat(MAX_NAME_CHARS)));
    }
}
