//! The JSON object `uri parse --json` prints and `uri check` writes per line.
//!
//! ```text
//! {"ok":true,"canonical":"…","provider":"openbao","engine":"kv2","mount":"secret","path":["app","api"],"key":"token","params":[["version","3"]]}
//! {"ok":false,"code":"ILLEGAL_SEGMENT","message":"…"}
//! ```
//!
//! Field order is part of the format. The object is encoded by hand into a reused line buffer:
//! `uri check` writes one per input line, and this is several times faster than `serde_json`'s
//! generic serializer (the tests check both agree).

use std::fmt::{self, Display};
use std::io::{self, Write};

use secret_uri::{SecretUri, UriError};
use serde::ser::{Serialize, Serializer};

/// The code for an input line that could not be read as a URI at all (see `uri check --help`).
pub(crate) const BAD_INPUT: &str = "BAD_INPUT";

/// The outcome for one URI.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Report<'a> {
    /// The URI is valid (and passed the mount guard).
    Valid(&'a SecretUri),
    /// The parser or the mount guard rejected it.
    Invalid(&'a UriError),
    /// The input could not be read as a URI; the message must not echo the input.
    BadInput(&'a str),
}

impl<'a> From<&'a Result<SecretUri, UriError>> for Report<'a> {
    fn from(result: &'a Result<SecretUri, UriError>) -> Self {
        match result {
            Ok(uri) => Self::Valid(uri),
            Err(err) => Self::Invalid(err),
        }
    }
}

impl Report<'_> {
    /// Appends the JSON object and `\n` to `buf`. Reuse `buf` across lines: this is the
    /// allocation-free path `uri check` takes.
    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        match *self {
            Self::Valid(uri) => {
                buf.extend_from_slice(b"{\"ok\":true,\"canonical\":");
                push_str(buf, uri.as_str());
                buf.extend_from_slice(b",\"provider\":");
                push_str(buf, uri.provider().as_str());
                buf.extend_from_slice(b",\"engine\":");
                push_opt_str(buf, uri.engine().map(|e| e.as_str()));
                buf.extend_from_slice(b",\"mount\":");
                push_str(buf, uri.mount());
                buf.extend_from_slice(b",\"path\":[");
                for (i, segment) in uri.segments().skip(1).enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    push_str(buf, segment);
                }
                buf.extend_from_slice(b"],\"key\":");
                push_opt_str(buf, uri.key());
                buf.extend_from_slice(b",\"params\":[");
                for (i, (name, value)) in uri.params().enumerate() {
                    buf.extend_from_slice(if i > 0 { b",[" } else { b"[" });
                    push_str(buf, name);
                    buf.push(b',');
                    push_str(buf, value);
                    buf.push(b']');
                }
                buf.extend_from_slice(b"]}\n");
            }
            Self::Invalid(err) => push_invalid(buf, err.code(), err),
            Self::BadInput(message) => push_invalid(buf, BAD_INPUT, &message),
        }
    }

    /// Writes the JSON object followed by `\n`.
    ///
    /// # Errors
    /// Whatever `out` returns.
    pub(crate) fn write_line<W: Write>(&self, mut out: W) -> io::Result<()> {
        let mut buf = Vec::with_capacity(256);
        self.encode(&mut buf);
        out.write_all(&buf)
    }
}

fn push_invalid(buf: &mut Vec<u8>, code: &str, message: &dyn Display) {
    buf.extend_from_slice(b"{\"ok\":false,\"code\":");
    push_str(buf, code);
    buf.extend_from_slice(b",\"message\":\"");
    // Writing into a `Vec` cannot fail; only a broken `Display` impl could, and then the
    // message is cut short but the line stays valid JSON.
    let _ = fmt::write(&mut Escaper(buf), format_args!("{message}"));
    buf.extend_from_slice(b"\"}\n");
}

fn push_opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => push_str(buf, s),
        None => buf.extend_from_slice(b"null"),
    }
}

/// A JSON string, escaped as `serde_json` does: `"`, `\` and control characters only.
fn push_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    push_escaped(buf, s);
    buf.push(b'"');
}

/// For each byte: 0 when it stands for itself, else the letter after `\` (`u`: `\u00XX`).
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

fn push_escaped(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut clean = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = ESCAPE[usize::from(b)];
        if escape == 0 {
            continue;
        }
        buf.extend_from_slice(&bytes[clean..i]);
        if escape == b'u' {
            let (hi, lo) = (HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]);
            buf.extend_from_slice(&[b'\\', b'u', b'0', b'0', hi, lo]);
        } else {
            buf.extend_from_slice(&[b'\\', escape]);
        }
        clean = i + 1;
    }
    buf.extend_from_slice(&bytes[clean..]);
}

/// Escapes `Display` output into a JSON string body without an intermediate `String`.
struct Escaper<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_escaped(self.0, s);
        Ok(())
    }
}

/// A `Display` value serialized (by `serde`) as a JSON string without an intermediate
/// `String`.
pub(crate) struct Message<'a>(pub(crate) &'a dyn Display);

impl Serialize for Message<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::{Value, json};

    use super::*;

    fn line(report: Report<'_>) -> String {
        let mut out = Vec::new();
        report.write_line(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn valid_matches_the_documented_example() {
        let uri = SecretUri::parse("openbao+kv2://secret/app/api#token?version=3").unwrap();
        assert_eq!(
            line(Report::Valid(&uri)),
            r#"{"ok":true,"canonical":"openbao+kv2://secret/app/api#token?version=3","provider":"openbao","engine":"kv2","mount":"secret","path":["app","api"],"key":"token","params":[["version","3"]]}"#
                .to_owned()
                + "\n"
        );
    }

    #[test]
    fn absent_parts_are_null_or_empty() {
        let uri = SecretUri::parse("file://dc-infra").unwrap();
        assert_eq!(
            line(Report::Valid(&uri)),
            "{\"ok\":true,\"canonical\":\"file://dc-infra\",\"provider\":\"file\",\"engine\":null,\
             \"mount\":\"dc-infra\",\"path\":[],\"key\":null,\"params\":[]}\n"
        );
    }

    #[test]
    fn several_params_are_sorted_and_escaped() {
        let uri = SecretUri::parse(r#"db+cred://db/ro#k"ey\?z=1&a=x"y&m"#).unwrap();
        let got: Value = serde_json::from_str(&line(Report::Valid(&uri))).unwrap();
        assert_eq!(
            got,
            json!({
                "ok": true,
                "canonical": r#"db+cred://db/ro#k"ey\?a=x"y&m=&z=1"#,
                "provider": "db",
                "engine": "cred",
                "mount": "db",
                "path": ["ro"],
                "key": r#"k"ey\"#,
                "params": [["a", "x\"y"], ["m", ""], ["z", "1"]],
            })
        );
    }

    #[test]
    fn invalid_and_bad_input() {
        let err = SecretUri::parse("").unwrap_err();
        assert_eq!(
            line(Report::Invalid(&err)),
            "{\"ok\":false,\"code\":\"ILLEGAL_SEGMENT\",\"message\":\"illegal segment at byte 0: \
             missing `://` after the scheme\"}\n"
        );
        assert_eq!(
            line(Report::BadInput("say \"hi\"")),
            "{\"ok\":false,\"code\":\"BAD_INPUT\",\"message\":\"say \\\"hi\\\"\"}\n"
        );
    }

    #[test]
    fn escaping_agrees_with_serde_json() {
        let all_controls: String = (0u8..0x20).map(char::from).collect();
        for s in [
            "",
            "plain",
            "quote\" backslash\\ slash/",
            "ü €\u{10ffff}",
            "\u{7f}\u{80}\u{2028}",
            &all_controls,
            "\"\"\\\\",
        ] {
            let mut ours = Vec::new();
            push_str(&mut ours, s);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }

    #[test]
    fn messages_with_quotes_stay_valid_json() {
        let err = SecretUri::parse("open\"bao://a/b").unwrap_err();
        let got: Value = serde_json::from_str(&line(Report::Invalid(&err))).unwrap();
        assert_eq!(got["code"], "UNSUPPORTED_ENGINE");
        assert_eq!(got["message"], err.to_string());
    }
}
