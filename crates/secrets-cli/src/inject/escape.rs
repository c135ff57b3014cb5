//! `--escape`: a value quoted for the place in its format where it is inserted.

use std::io::Write as _;

use secrets_sdk::Secret;
use serde_json::Value;
use zeroize::Zeroizing;

use super::{INEXACT_NUMBER, UNQUOTABLE_VALUE};
use crate::cli::Escape;
use crate::quote_context::Quote;

/// Why a value is not inserted: a code and a message that says nothing about the value but
/// the kind of character or number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refused {
    pub(super) code: &'static str,
    pub(super) message: &'static str,
}

fn unquotable(message: &'static str) -> Refused {
    Refused {
        code: UNQUOTABLE_VALUE,
        message,
    }
}

/// Appends `secret`'s value to `out`, quoted for `escape` in `quote`.
///
/// # Errors
/// `INEXACT_NUMBER` for JSON with a number that would be written with other digits than it
/// was read with; `UNQUOTABLE_VALUE` for a value that cannot be quoted so.
pub(super) fn insert(
    out: &mut Vec<u8>,
    secret: &Secret,
    escape: Option<Escape>,
    quote: Quote,
) -> Result<(), Refused> {
    if secret.expose_json().is_some_and(has_inexact_number) {
        return Err(Refused {
            code: INEXACT_NUMBER,
            message: "a number in the value has more significant digits than a 64-bit float \
                      keeps (15), or is beyond 64-bit integers, so it would be written with \
                      other digits than the secret's; store it as a string",
        });
    }
    let text = secret.expose_as_text();
    match (escape, quote) {
        (None, _) => out.extend_from_slice(text.as_bytes()),
        (Some(Escape::Json), Quote::Double) => {
            let json = secret_as_json_string(&text);
            out.extend_from_slice(&json.as_bytes()[1..json.len() - 1]);
        }
        (Some(Escape::Json), _) => out.extend_from_slice(secret.expose_as_json().as_bytes()),
        (Some(Escape::Yaml), Quote::Double) => yaml_double(out, &text),
        (Some(Escape::Yaml), Quote::Single) => yaml_single(out, &text).map_err(unquotable)?,
        (Some(Escape::Yaml), Quote::None) if !secret.is_text() => yaml_flow(out, &text),
        (Some(Escape::Yaml), Quote::None) => {
            out.push(b'"');
            yaml_double(out, &text);
            out.push(b'"');
        }
        (Some(Escape::Shell), _) if text.contains('\0') => {
            return Err(unquotable(
                "the value contains a NUL byte, which no shell word can hold",
            ));
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

/// Whether `value` holds a number that serde_json would write with other digits than it was
/// read with. Without its `arbitrary_precision` feature (which would change every crate's
/// JSON), a number that is not a 64-bit integer is kept as a 64-bit float and written as the
/// shortest decimal that reads back as that float: exactly the number written in the secret
/// when that had at most 15 significant digits (`1.50` is written `1.5`, `1e3` `1000.0`, the
/// same numbers), but not always beyond: `12345678901234567890123` would be written
/// `1.2345678901234568e22`. Refused are a float whose shortest decimal has more than 15
/// significant digits, a subnormal one (fewer digits are exact there), and one beyond the
/// 64-bit integers (an integer that large is not kept exactly, and would come out with an
/// exponent). What the float cannot tell is a number of more digits that rounds to a float
/// with a short decimal (`0.1000000000000000055511151231257827` reads as `0.1`): only the
/// secret's text could, and the provider does not keep it.
fn has_inexact_number(value: &Value) -> bool {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => false,
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            // 2^63: past it, a float may stand for an integer of more than 64 bits.
            let beyond_integers = x.abs() >= 9_223_372_036_854_775_808.0;
            let subnormal = x != 0.0 && x.abs() < f64::MIN_POSITIVE;
            beyond_integers
                || subnormal
                || !x.is_finite()
                || significant_digits(&Zeroizing::new(n.to_string())) > 15
        }
        Value::Array(items) => items.iter().any(has_inexact_number),
        Value::Object(map) => map.values().any(has_inexact_number),
        Value::Null | Value::Bool(_) | Value::String(_) => false,
    }
}

/// The significant digits of a decimal number's text (`-0.00120e5` has 2).
fn significant_digits(number: &str) -> usize {
    let mantissa = number.split(['e', 'E']).next().unwrap_or(number);
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let start = digits.iter().position(|&d| d != b'0');
    let end = digits.iter().rposition(|&d| d != b'0');
    match (start, end) {
        (Some(start), Some(end)) => end - start + 1,
        _ => 0,
    }
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
            // Writing into a Vec cannot fail.
            let _ = write!(out, "\\x{:02X}", u32::from(c));
        } else if not_printed_by_yaml(c) {
            let _ = write!(out, "\\u{:04X}", u32::from(c));
        } else {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// Compact JSON (an object, an array, a number, `true`, `null`) as a YAML flow value. JSON is
/// YAML but for the characters YAML never reads raw, which serde_json leaves raw inside
/// strings: DEL and C1 (a YAML parser refuses the document), NEL and the line and paragraph
/// separators (folded into spaces as line breaks), the BOM, U+FFFE and U+FFFF. Each becomes
/// a `\uXXXX` escape, which JSON and YAML double-quoted strings read alike. They occur only
/// inside strings, and never after an unpaired `\` (serde_json escapes every `\`), so the
/// escape is always read as one.
fn yaml_flow(out: &mut Vec<u8>, json: &str) {
    let mut buf = [0u8; 4];
    for c in json.chars() {
        if not_printed_by_yaml(c) {
            // Writing into a Vec cannot fail.
            let _ = write!(out, "\\u{:04X}", u32::from(c));
        } else {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// The characters past ASCII's controls that YAML does not allow raw in a scalar, or reads as
/// a line break: DEL, C1 (NEL among them), the line and paragraph separators, the BOM,
/// U+FFFE and U+FFFF.
fn not_printed_by_yaml(c: char) -> bool {
    ('\u{7f}'..='\u{9f}').contains(&c)
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
        )
}

/// The contents of a single-quoted YAML scalar: `'` doubled. A line break would be folded
/// and a control character cannot be written, so both are refused.
fn yaml_single(out: &mut Vec<u8>, text: &str) -> Result<(), &'static str> {
    if text
        .chars()
        .any(|c| (c < ' ' && c != '\t') || not_printed_by_yaml(c))
    {
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
    fn numbers_that_would_change_digits_are_found() {
        let inexact = |text: &str| has_inexact_number(&serde_json::from_str(text).unwrap());
        for exact in [
            "0",
            "-0",
            "5432",
            "18446744073709551615",
            "-9223372036854775808",
            "1.5",
            "1.50",
            "0.1",
            "-12.5e-3",
            "123456789012345",
            "0.000123456789012345",
            "1e300",
            r#"{"a": [1, 2.25, {"b": 3}], "c": "12345678901234567890123"}"#,
        ] {
            // 1e300 is beyond the 64-bit integers.
            assert_eq!(inexact(exact), exact == "1e300", "{exact}");
        }
        for changed in [
            "12345678901234567890123",
            "18446744073709551616",
            "-9223372036854775809",
            "3.141592653589793238",
            "1234567890.123456",
            "5e-324",
            r#"{"a": [1, {"b": 123456789012345678901}]}"#,
        ] {
            assert!(inexact(changed), "{changed}");
        }
        // The limit of what the float can tell: more digits that round to a float with a short
        // decimal look like that decimal (this is 0.1's float, written out).
        assert!(!inexact("0.1000000000000000055511151231257827"));
        assert_eq!(significant_digits("-0.00120e5"), 2);
        assert_eq!(significant_digits("0.0"), 0);
        assert_eq!(significant_digits("1.2345678901234568e22"), 17);
    }

    /// Every character YAML escapes or refuses raw, and the ones that end or break quoting.
    fn hostile() -> String {
        let mut text: String = (0u32..0x100).filter_map(char::from_u32).collect();
        text.push_str("\u{2028}\u{2029}\u{feff}\u{fffe}\u{ffff}\u{1f600}");
        text.push_str("\"\\\" '' \\u0041 # : - [ ] { } , & * ! | > % @ `");
        text
    }

    #[test]
    fn json_as_a_yaml_flow_value_parses_back_to_itself() {
        let hostile = hostile();
        for value in [
            serde_json::json!({ "k": hostile, hostile.clone(): [hostile, 1, 2.5, null, true] }),
            serde_json::json!([hostile, {}, []]),
            serde_json::json!({}),
            serde_json::json!(-12.5e-3),
        ] {
            let mut flow = Vec::new();
            yaml_flow(&mut flow, &value.to_string());
            let flow = String::from_utf8(flow).unwrap();
            let document = format!("a: {flow}\nb:\n  - {flow}\n  - c: {flow}\n");
            let parsed: serde_json::Value = serde_yaml_ng::from_str(&document).unwrap();
            assert_eq!(
                parsed,
                serde_json::json!({ "a": value, "b": [value, { "c": value }] })
            );
            // Still JSON, with the same value.
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&flow).unwrap(),
                value
            );
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
