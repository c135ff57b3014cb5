//! [`Run`]: what one pass of the suite drove and showed. Every path is named and counted, its
//! outcome checked against what the path is meant to provoke (so a path that silently stopped
//! reaching its error cannot pass as scanned), and everything it returned is scanned.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt::Write as _;

use secrets_sdk::Secret;
use secrets_sdk::audit::{AuditEvent, to_ocsf_bytes};

use crate::common::leak::{Channel, Class, OTHER_VALUE, Scanner, VALUE};

/// What a path must end in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expect {
    /// A secret whose text is exactly [`VALUE`].
    Value,
    /// A secret whose text (a whole JSON object) holds [`VALUE`] and [`OTHER_VALUE`].
    Whole,
    /// An error with this code; `AUTHZ_DENIED/REASON` also fixes the deny reason.
    Code(&'static str),
    /// An error with one of these codes (a condition two layers may report, e.g. a bad token
    /// refused at login or at the read).
    OneOf(&'static [&'static str]),
}

impl Expect {
    /// Whether an error with `code` (`CODE` or `CODE/REASON`) is what this expects: an
    /// expectation without a reason accepts any.
    fn accepts_code(self, code: &str) -> bool {
        let one = |want: &str| {
            want == code || (!want.contains('/') && code.split('/').next() == Some(want))
        };
        match self {
            Expect::Code(want) => one(want),
            Expect::OneOf(codes) => codes.iter().any(|want| one(want)),
            _ => false,
        }
    }
}

/// The suite's tally: paths, mismatches, and the scanner every piece goes through.
#[derive(Debug, Default)]
pub(crate) struct Run {
    /// The scanner of every channel.
    pub(crate) scanner: Scanner,
    paths: Vec<String>,
    /// Paths per area (`sdk`, `vault`, `cli`, …).
    areas: BTreeMap<String, usize>,
    mismatches: Vec<String>,
    errors: usize,
    values: usize,
    /// Audit events scanned, by event type.
    audited: BTreeMap<&'static str, usize>,
    /// The area CLI runs are counted under (`cli` unless set).
    pub(crate) cli_area: &'static str,
    /// Variables every CLI run gets besides its own (the OTLP export's).
    pub(crate) cli_env: Vec<(String, String)>,
}

impl Run {
    /// A run with the standard canaries.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Counts one driven path (`area/what`).
    pub(crate) fn path(&mut self, name: impl Into<String>) -> String {
        let name = name.into();
        let area = name.split('/').next().unwrap_or_default().to_owned();
        *self.areas.entry(area).or_default() += 1;
        self.paths.push(name.clone());
        name
    }

    /// Paths driven so far.
    pub(crate) fn path_count(&self) -> usize {
        self.paths.len()
    }

    /// Distinct path names (a name driven twice, e.g. a batch's items, counts once).
    pub(crate) fn distinct_paths(&self) -> usize {
        self.paths
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    }

    /// Paths per area.
    pub(crate) fn areas(&self) -> &BTreeMap<String, usize> {
        &self.areas
    }

    /// Errors and values seen.
    pub(crate) fn outcomes(&self) -> (usize, usize) {
        (self.errors, self.values)
    }

    /// Outcomes that were not what the path is meant to provoke.
    pub(crate) fn mismatches(&self) -> &[String] {
        &self.mismatches
    }

    /// Notes a mismatch.
    pub(crate) fn mismatch(&mut self, path: &str, what: impl std::fmt::Display) {
        self.mismatches.push(format!("{path}: {what}"));
    }

    /// One read's result on `path`: its outcome is checked against `expect`; a secret's
    /// `Display`/`Debug` (and its value's) are scanned as [`Channel::Shown`], an error as
    /// [`Channel::Errors`]. The exposed value is the product and is not scanned.
    pub(crate) fn secret(
        &mut self,
        path: &str,
        result: &Result<Secret, secrets_sdk::Error>,
        expect: Expect,
    ) {
        match result {
            Ok(secret) => {
                self.values += 1;
                self.show(
                    path,
                    format!(
                        "{secret} {secret:?} {} {:?} {:?}",
                        secret.value(),
                        secret.value(),
                        secret.to_secret_string()
                    ),
                );
                let text = secret.expose_as_text();
                let ok = match expect {
                    Expect::Value => text.as_str() == VALUE,
                    Expect::Whole => text.contains(VALUE) && text.contains(OTHER_VALUE),
                    Expect::Code(_) | Expect::OneOf(_) => false,
                };
                if !ok {
                    let shape = if text.contains(VALUE) {
                        "the canary"
                    } else {
                        "another value"
                    };
                    self.mismatch(path, format!("expected {expect:?}, got {shape}"));
                }
            }
            Err(error) => {
                let code = match error.deny_reason() {
                    Some(reason) => format!("{}/{}", error.code(), reason.code()),
                    None => error.code().to_owned(),
                };
                self.error(path, &code, error, expect);
            }
        }
    }

    /// An error on `path` with its `code`: checked against `expect`, and its `Display`,
    /// `Debug` and every `source()` (each `Display` and `Debug`) scanned.
    pub(crate) fn error(
        &mut self,
        path: &str,
        code: &str,
        error: &(dyn StdError + 'static),
        expect: Expect,
    ) {
        self.errors += 1;
        if !expect.accepts_code(code) {
            self.mismatch(path, format!("expected {expect:?}, got {code}: {error}"));
        }
        self.scanner.scan(Channel::Errors, path, chain(error), &[]);
    }

    /// Audit events: each one's `Debug` and OCSF JSON, scanned as [`Channel::Audit`] (where
    /// the subject is allowed: naming who read is what the audit trail is for).
    pub(crate) fn audit(&mut self, source: &str, events: &[AuditEvent]) {
        let mut text = String::new();
        for event in events {
            *self.audited.entry(event.kind().as_str()).or_default() += 1;
            let _ = writeln!(text, "{event:?}");
            text.push_str(&String::from_utf8_lossy(&to_ocsf_bytes(event)));
            text.push('\n');
        }
        self.scanner
            .scan(Channel::Audit, source, text, &[Class::Subject]);
    }

    /// Audit events scanned so far, by event type.
    pub(crate) fn audited(&self) -> &BTreeMap<&'static str, usize> {
        &self.audited
    }

    /// `Debug`/`Display` of something a call returned or was configured with.
    pub(crate) fn show(&mut self, source: &str, text: impl AsRef<str>) {
        self.scanner
            .scan(Channel::Shown, source, text.as_ref(), &[]);
    }

    /// As [`show`](Self::show), for text that may name the caller (an `ExecutionContext`, a
    /// builder holding one) or, with `uris`, the caller's own URIs (a batch report lists them).
    pub(crate) fn show_allowing(&mut self, source: &str, text: impl AsRef<str>, allowed: &[Class]) {
        self.scanner
            .scan(Channel::Shown, source, text.as_ref(), allowed);
    }
}

/// `Display`, `Debug` and every `source()` of `error`, one a line.
pub(crate) fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut out = format!("{error}\n{error:?}\n");
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = writeln!(out, "caused by: {cause}\n{cause:?}");
        source = cause.source();
    }
    out
}
