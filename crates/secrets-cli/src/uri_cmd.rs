//! `secrets uri parse` and `secrets uri check`.

use std::borrow::Cow;
use std::io::{self, BufRead, Write};

use secret_uri::{AllowedMounts, SecretUri};
use serde_json::error::Category;

use crate::cli::{CheckArgs, ParseArgs};
use crate::report::Report;
use crate::status::Status;

/// `secrets uri parse`: the canonical form (or the JSON report) of one URI.
///
/// # Errors
/// Only write errors on `out` or `err`.
pub(crate) fn parse<O: Write, E: Write>(
    args: &ParseArgs,
    mut out: O,
    mut err: E,
) -> io::Result<Status> {
    let result = SecretUri::parse_allowed(&args.uri, &args.guard.mounts());
    if args.json {
        Report::from(&result).write_line(&mut out)?;
    } else {
        match &result {
            Ok(uri) => writeln!(out, "{uri}")?,
            Err(e) => writeln!(err, "{}: {e}", e.code())?,
        }
    }
    out.flush()?;
    Ok(if result.is_ok() {
        Status::Success
    } else {
        Status::Failure
    })
}

/// What [`check`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CheckSummary {
    /// Input lines read (and output lines written).
    pub(crate) lines: u64,
    /// Lines that were not a valid URI.
    pub(crate) invalid: u64,
}

impl CheckSummary {
    /// `Success` when every line was valid, `Findings` otherwise.
    #[must_use]
    pub(crate) fn status(&self) -> Status {
        if self.invalid == 0 {
            Status::Success
        } else {
            Status::Findings
        }
    }
}

/// `secrets uri check` on stdin and stdout.
///
/// # Errors
/// Read errors on stdin, write errors on stdout (a broken pipe included).
pub(crate) fn check_stdio(args: &CheckArgs) -> io::Result<Status> {
    let stdin = io::stdin().lock();
    let stdout = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    check(stdin, stdout, args).map(|summary| summary.status())
}

/// `secrets uri check`: one JSON line on `out` per line of `input`, in order. Streams; holds
/// one line at a time.
///
/// # Errors
/// Read errors on `input`, write errors on `out`. Bad lines are reported, not errors.
pub(crate) fn check<R: BufRead, W: Write>(
    mut input: R,
    mut out: W,
    args: &CheckArgs,
) -> io::Result<CheckSummary> {
    let mounts = args.guard.mounts();
    let mut summary = CheckSummary::default();
    // One input and one output line buffer for the whole stream.
    let mut line_in = Vec::with_capacity(512);
    let mut line_out = Vec::with_capacity(512);
    loop {
        line_in.clear();
        if input.read_until(b'\n', &mut line_in)? == 0 {
            break;
        }
        let line = strip_terminator(&line_in);
        line_out.clear();
        let valid = if args.jsonl {
            check_json_line(line, &mounts, &mut line_out)
        } else {
            check_uri_line(line, &mounts, &mut line_out)
        };
        out.write_all(&line_out)?;
        summary.lines += 1;
        summary.invalid += u64::from(!valid);
    }
    out.flush()?;
    Ok(summary)
}

/// Removes one `\n` and a `\r` before it: the terminator is not part of the URI. Nothing else
/// is trimmed, so a stray space is reported rather than hidden.
fn strip_terminator(line: &[u8]) -> &[u8] {
    match line.strip_suffix(b"\n") {
        Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
        None => line,
    }
}

/// Encodes the report for one plain line into `out`; `true` when the URI is valid.
fn check_uri_line(line: &[u8], mounts: &AllowedMounts, out: &mut Vec<u8>) -> bool {
    let Ok(text) = std::str::from_utf8(line) else {
        Report::BadInput("the line is not valid UTF-8").encode(out);
        return false;
    };
    let result = SecretUri::parse_allowed(text, mounts);
    Report::from(&result).encode(out);
    result.is_ok()
}

/// One `--jsonl` input line.
#[derive(serde::Deserialize)]
struct JsonLine<'a> {
    #[serde(borrow)]
    uri: Cow<'a, str>,
    allowed_mounts: Option<Vec<String>>,
}

/// Encodes the report for one `--jsonl` line into `out`; `true` when the URI is valid.
fn check_json_line(line: &[u8], mounts: &AllowedMounts, out: &mut Vec<u8>) -> bool {
    let input: JsonLine<'_> = match serde_json::from_slice(line) {
        Ok(input) => input,
        Err(e) => {
            // serde_json's messages can quote the input; say what is wrong without it.
            let message = match e.classify() {
                Category::Data => Cow::Borrowed(
                    "expected an object with a string `uri` and an optional array of strings \
                     `allowed_mounts`",
                ),
                Category::Eof if line.trim_ascii().is_empty() => {
                    Cow::Borrowed("the line is empty; expected a JSON object")
                }
                Category::Eof => Cow::Borrowed("the line is not valid JSON: it ends early"),
                Category::Io | Category::Syntax => Cow::Owned(format!(
                    "the line is not valid JSON (error at column {})",
                    e.column()
                )),
            };
            Report::BadInput(&message).encode(out);
            return false;
        }
    };
    let line_mounts;
    let mounts = match input.allowed_mounts {
        None => mounts,
        Some(list) => {
            line_mounts = AllowedMounts::new(list);
            if line_mounts.is_unrestricted() {
                // As with the flag: an empty list must not quietly lift the guard.
                Report::BadInput(
                    "`allowed_mounts` names no mount; omit it to use --allowed-mounts",
                )
                .encode(out);
                return false;
            }
            &line_mounts
        }
    };
    let result = SecretUri::parse_allowed(&input.uri, mounts);
    Report::from(&result).encode(out);
    result.is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::cli::GuardArgs;

    fn run(input: &str, jsonl: bool, allowed: Option<&str>) -> (CheckSummary, Vec<String>) {
        let args = CheckArgs {
            guard: GuardArgs {
                allowed_mounts: allowed.map(AllowedMounts::from_csv),
            },
            jsonl,
        };
        let mut out = Vec::new();
        let summary = check(input.as_bytes(), &mut out, &args).unwrap();
        let text = String::from_utf8(out).unwrap();
        (summary, text.lines().map(str::to_owned).collect())
    }

    fn code(line: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        match (&v["ok"], &v["code"]) {
            (serde_json::Value::Bool(true), _) => "OK".to_owned(),
            (_, serde_json::Value::String(code)) => code.clone(),
            _ => panic!("malformed output line {line}"),
        }
    }

    #[test]
    fn terminators() {
        assert_eq!(strip_terminator(b"a\r\n"), b"a");
        assert_eq!(strip_terminator(b"a\n"), b"a");
        assert_eq!(strip_terminator(b"a"), b"a");
        assert_eq!(strip_terminator(b"a\r"), b"a\r");
        assert_eq!(strip_terminator(b"a\n\n"), b"a\n");
        assert_eq!(strip_terminator(b" a \n"), b" a ");
    }

    #[test]
    fn one_output_line_per_input_line() {
        let (summary, lines) = run("file://a/b\n\n  \r\nfile://a/*\r\nfile://x", false, None);
        let codes: Vec<_> = lines.iter().map(|l| code(l)).collect();
        assert_eq!(
            codes,
            [
                "OK",
                "ILLEGAL_SEGMENT",
                "ILLEGAL_SEGMENT",
                "INVALID_WILDCARD",
                "OK"
            ]
        );
        assert_eq!(
            summary,
            CheckSummary {
                lines: 5,
                invalid: 3
            }
        );
        assert_eq!(summary.status(), Status::Findings);
    }

    #[test]
    fn empty_input_is_clean() {
        let (summary, lines) = run("", false, None);
        assert!(lines.is_empty());
        assert_eq!(summary.status(), Status::Success);
    }

    #[test]
    fn invalid_utf8_is_bad_input() {
        let args = CheckArgs {
            guard: GuardArgs::default(),
            jsonl: false,
        };
        let mut out = Vec::new();
        let summary = check(&b"file://a/\xff\nfile://a\n"[..], &mut out, &args).unwrap();
        let text = String::from_utf8(out).unwrap();
        let codes: Vec<_> = text.lines().map(code).collect();
        assert_eq!(codes, ["BAD_INPUT", "OK"]);
        assert_eq!(summary.invalid, 1);
    }

    #[test]
    fn jsonl_mounts_override_the_flag() {
        let input = concat!(
            r#"{"uri": "file://a/x"}"#,
            "\n",
            r#"{"uri": "file://b/x"}"#,
            "\n",
            r#"{"uri": "file://b/x", "allowed_mounts": ["b"]}"#,
            "\n",
            r#"{"uri": "file://a/x", "allowed_mounts": ["b"]}"#,
            "\n",
            r#"{"uri": "file://a/x", "allowed_mounts": null, "extra": 1}"#,
            "\n",
        );
        let (_, lines) = run(input, true, Some("a"));
        let codes: Vec<_> = lines.iter().map(|l| code(l)).collect();
        assert_eq!(
            codes,
            [
                "OK",
                "TENANT_MOUNT_MISMATCH",
                "OK",
                "TENANT_MOUNT_MISMATCH",
                "OK"
            ]
        );
    }

    #[test]
    fn jsonl_bad_input_never_echoes_the_line() {
        let input = concat!(
            "not json file://a/secret-name\n",
            "{\"url\": \"file://a/secret-name\"}\n",
            "{\"uri\": 7}\n",
            "[\"file://a/secret-name\"]\n",
            "{\"uri\": \"file://a/x\", \"allowed_mounts\": []}\n",
            "{\"uri\": \"file://a/x\", \"allowed_mounts\": \"file://a/secret-name\"}\n",
            "{\"uri\": \"file://a/x\"} trailing\n",
            "\n",
        );
        let (summary, lines) = run(input, true, None);
        assert_eq!(
            summary,
            CheckSummary {
                lines: 8,
                invalid: 8
            }
        );
        for line in &lines {
            assert_eq!(code(line), "BAD_INPUT", "{line}");
            assert!(!line.contains("secret-name"), "{line}");
        }
    }

    #[test]
    fn jsonl_escapes_are_decoded() {
        let (_, lines) = run("{\"uri\": \"file:\\/\\/a\\u002fb\"}\n", true, None);
        assert_eq!(code(&lines[0]), "OK");
        assert!(lines[0].contains(r#""canonical":"file://a/b""#));
    }
}
