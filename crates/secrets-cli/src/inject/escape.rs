//! `--escape`: a value quoted for the place in its format where it is inserted.

use secrets_sdk::Secret;
use zeroize::Zeroizing;

use crate::cli::Escape;
use crate::quote_context::Quote;

/// Appends `secret`'s value to `out`, quoted for `escape` in `quote`.
///
/// # Errors
/// Why the value cannot be quoted so (the message of an `UNQUOTABLE_VALUE` line); nothing
/// about the value but the kind of character.
pub(super) fn insert(
    out: &mut Vec<u8>,
    secret: &Secret,
    escape: Option<Escape>,
    quote: Quote,
) -> Result<(), &'static str> {
    let text = secret.expose_as_text();
    match (escape, quote) {
        (None, _) => out.extend_from_slice(text.as_bytes()),
        (Some(Escape::Json), Quote::Double) => {
            let json = secret_as_json_string(&text);
            out.extend_from_slice(&json.as_bytes()[1..json.len() - 1]);
        }
        (Some(Escape::Json), _) => out.extend_from_slice(secret.expose_as_json().as_bytes()),
        (Some(Escape::Yaml), Quote::Double) => yaml_double(out, &text),
        (Some(Escape::Yaml), Quote::Single) => yaml_single(out, &text)?,
        (Some(Escape::Yaml), Quote::None) if !secret.is_text() => {
            // Compact JSON is a YAML flow value.
            out.extend_from_slice(text.as_bytes());
        }
        (Some(Escape::Yaml), Quote::None) => {
            out.push(b'"');
            yaml_double(out, &text);
            out.push(b'"');
        }
        (Some(Escape::Shell), _) if text.contains('\0') => {
            return Err("the value contains a NUL byte, which no shell word can hold");
        }
        (Some(Escape::Shell), Quote::Single) => shell_single(out, &text),
        (Some(Escape::Shell), Quote::Double) => shell_double(out, &text),
        (Some(Escape::Shell), Quote::None) => {
            out.push(b'\'');
            shell_single(out, &text);
            out.push(b'\'');
        }
    }
    Ok(())
}

/// `text` as a quoted JSON string (serde_json's escaping), zeroized when dropped.
fn secret_as_json_string(text: &str) -> Zeroizing<String> {
    let mut json = Zeroizing::new(Vec::with_capacity(text.len() + 2));
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *json, text);
    Zeroizing::new(String::from_utf8(std::mem::take(&mut *json)).unwrap_or_default())
}

/// The contents of a double-quoted YAML scalar: `\` and `"` escaped, and every character
/// YAML does not print (controls, DEL, C1, the line and paragraph separators, BOM, U+FFFE/F).
fn yaml_double(out: &mut Vec<u8>, text: &str) {
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let escaped: Option<&[u8]> = match c {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\n' => Some(b"\\n"),
            '\t' => Some(b"\\t"),
            '\r' => Some(b"\\r"),
            '\0' => Some(b"\\0"),
            '\u{85}' => Some(b"\\N"),
            '\u{2028}' => Some(b"\\L"),
            '\u{2029}' => Some(b"\\P"),
            _ => None,
        };
        if let Some(escaped) = escaped {
            out.extend_from_slice(escaped);
        } else if c < ' ' || ('\u{7f}'..='\u{9f}').contains(&c) {
            out.extend_from_slice(format!("\\x{:02X}", u32::from(c)).as_bytes());
        } else if matches!(c, '\u{feff}' | '\u{fffe}' | '\u{ffff}') {
            out.extend_from_slice(format!("\\u{:04X}", u32::from(c)).as_bytes());
        } else {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// The contents of a single-quoted YAML scalar: `'` doubled. A line break would be folded
/// and a control character cannot be written, so both are refused.
fn yaml_single(out: &mut Vec<u8>, text: &str) -> Result<(), &'static str> {
    if text.chars().any(|c| {
        (c < ' ' && c != '\t')
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
            )
    }) {
        return Err(
            "the value has a line break or a control character, which a single-quoted YAML \
             scalar cannot hold; write the reference as \"{{ URI }}\"",
        );
    }
    for part in text.split('\'').enumerate() {
        if part.0 > 0 {
            out.extend_from_slice(b"''");
        }
        out.extend_from_slice(part.1.as_bytes());
    }
    Ok(())
}

/// The contents of a single-quoted shell word: each `'` closes the quotes, adds an escaped
/// quote and opens them again (`'\''`).
fn shell_single(out: &mut Vec<u8>, text: &str) {
    for (n, part) in text.split('\'').enumerate() {
        if n > 0 {
            out.extend_from_slice(b"'\\''");
        }
        out.extend_from_slice(part.as_bytes());
    }
}

/// The contents of a double-quoted shell word: `\`, `$`, `` ` `` and `"` escaped.
fn shell_double(out: &mut Vec<u8>, text: &str) {
    for &b in text.as_bytes() {
        if matches!(b, b'\\' | b'$' | b'`' | b'"') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn yaml(text: &str) -> String {
        let mut out = Vec::new();
        yaml_double(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn yaml_double_quoted_round_trips() {
        let all_controls: String = (0u8..0x20).map(char::from).collect();
        for value in [
            "",
            "plain",
            "quote\" back\\slash 'single'",
            "line 1\nline 2\r\n\ttab",
            &all_controls,
            "\u{7f}\u{85}\u{9f}\u{a0}\u{2028}\u{2029}\u{feff}\u{fffe}\u{ffff}",
            "ü € 😀 # : - [ ] { } & * ! | > % @ `",
        ] {
            let document = format!("k: \"{}\"\n", yaml(value));
            let parsed: serde_json::Value = serde_yaml_ng::from_str(&document).unwrap();
            assert_eq!(parsed["k"], value, "{document}");
        }
    }

    #[test]
    fn yaml_single_quoted_round_trips_or_refuses() {
        for value in ["", "it's", "''", "a \"b\" \\c\t#d"] {
            let mut out = Vec::new();
            yaml_single(&mut out, value).unwrap();
            let document = format!("k: '{}'\n", String::from_utf8(out).unwrap());
            let parsed: serde_json::Value = serde_yaml_ng::from_str(&document).unwrap();
            assert_eq!(parsed["k"], value, "{document}");
        }
        for value in ["a\nb", "a\rb", "\u{1b}", "\u{2028}"] {
            assert!(yaml_single(&mut Vec::new(), value).is_err(), "{value:?}");
        }
    }

    #[test]
    fn shell_quoting() {
        let single = |text: &str| {
            let mut out = Vec::new();
            shell_single(&mut out, text);
            String::from_utf8(out).unwrap()
        };
        let double = |text: &str| {
            let mut out = Vec::new();
            shell_double(&mut out, text);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(single("it's"), r"it'\''s");
        assert_eq!(single("''"), r"'\'''\''");
        assert_eq!(double(r#"a"$b`c\d'e"#), r#"a\"\$b\`c\\d'e"#);
    }
}
