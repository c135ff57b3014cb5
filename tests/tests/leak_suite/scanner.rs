//! The suite can fail: a canary planted in each channel, through the same capture and the same
//! scanning code the suite uses, is reported. These tests use captures of their own (a
//! thread-scoped subscriber, a meter provider of their own), never the suite's global one.

use secrets_sdk::audit::{Auditor, EventType};
use secrets_test_support::cli::Invocation;

use super::cli_paths::{Case, Out, check};
use super::run::{Expect, Run};
use crate::common::TestResult;
use crate::common::leak::{
    BAD_TOKEN, CANARIES, Capture, Channel, Class, FILE, JKT, JTI, SEGMENT, SUBJECT, Scanner, TOKEN,
    VALUE, base64_fragments,
};

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 of `bytes` with std's alphabet and padding (independent of the scanner's).
fn encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(STANDARD[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn every_canary_is_found_as_written_in_any_case_in_hex_and_in_base64() {
    for canary in CANARIES {
        let hex: String = canary.text.bytes().map(|b| format!("{b:02X}")).collect();
        let mut forms = vec![
            format!("x={}", canary.text),
            format!("\"{}\"", canary.text.to_ascii_uppercase()),
            format!("hex {hex} end"),
        ];
        // Base64 wherever the canary starts in the encoded bytes, and URL-safe.
        for prefix in ["", "a", "ab", "abc"] {
            let encoded = encode(format!("{prefix}{}:tail", canary.text).as_bytes());
            forms.push(format!("Authorization: Basic {encoded}"));
            forms.push(encoded.replace('+', "-").replace('/', "_"));
        }
        for form in forms {
            let scanner = Scanner::default();
            assert!(
                scanner.scan(Channel::Shown, "planted", &form, &[]) > 0,
                "{} not found in {form}",
                canary.name
            );
            assert_eq!(scanner.findings()[0].canary, canary.name);
            // Allowed where its class is the product.
            let allowed = Scanner::default();
            assert_eq!(
                allowed.scan(Channel::CliStdout, "planted", &form, &[canary.class]),
                0,
                "{form}"
            );
        }
    }
    let scanner = Scanner::default();
    let clean = "INFO secret_resolve{provider=\"file\" mount=\"demo\" uri_hash=1a2b3c4d}: ok";
    assert_eq!(scanner.scan(Channel::TextLog, "clean", clean, &[]), 0);
    assert_eq!(scanner.bytes_in(Channel::TextLog), clean.len() as u64);
    assert!(
        base64_fragments(b"abc", STANDARD).is_empty(),
        "fragments too short to tell apart"
    );
}

#[test]
fn a_planted_log_line_span_field_and_span_event_are_reported_in_every_log_channel() -> TestResult {
    let capture = Capture::new();
    tracing::subscriber::with_default(capture.subscriber(), || {
        let span = tracing::info_span!(
            "secret_resolve",
            provider = "file",
            planted = TOKEN,
            later = tracing::field::Empty
        );
        span.record("later", JKT);
        span.in_scope(|| tracing::debug!(path = %format!("{SEGMENT}/{FILE}"), "reading"));
        tracing::trace!(jti = JTI, "a trace event outside any span");
    });
    let spans = capture.spans();
    assert_eq!(spans.len(), 1, "{spans:?}");
    for (channel, text) in [
        (Channel::TextLog, capture.text()),
        (Channel::JsonLog, capture.json()),
        (Channel::Spans, capture.span_text()),
    ] {
        let scanner = Scanner::default();
        scanner.scan(channel, "planted", &text, &[]);
        let found: Vec<&str> = scanner.findings().iter().map(|f| f.canary).collect();
        assert!(
            found.contains(&"TOKEN") && found.contains(&"JKT"),
            "{channel:?}: a span field (given or recorded later) missed in {text}"
        );
        // The span layer exports no span events (the log layers carry them), so an event's
        // field reaches the logs and only the logs.
        let in_logs = channel != Channel::Spans;
        assert_eq!(
            (found.contains(&"SEGMENT"), found.contains(&"FILE")),
            (in_logs, in_logs),
            "{channel:?}: event fields in {text}"
        );
        assert_eq!(found.contains(&"JTI"), in_logs, "{channel:?}: {text}");
    }
    Ok(())
}

#[test]
fn a_planted_metric_label_is_reported() {
    use opentelemetry::metrics::MeterProvider as _;
    let capture = Capture::new();
    capture.metrics().provider_error("file", "NOT_FOUND");
    let counter = capture
        .meter_provider()
        .meter("planted")
        .u64_counter("planted.reads")
        .build();
    counter.add(
        1,
        &[opentelemetry::KeyValue::new(
            "path",
            format!("{SEGMENT}/{FILE}"),
        )],
    );
    let points = capture.points();
    assert!(
        !points
            .named(secret_telemetry::names::metric::PROVIDER_ERRORS)
            .is_empty(),
        "{points:?}"
    );
    let scanner = Scanner::default();
    assert_eq!(
        scanner.scan(Channel::Metrics, "planted", format!("{points:?}"), &[]),
        2
    );
}

#[test]
fn a_planted_error_message_source_and_audit_event_are_reported() {
    let mut run = Run::new();
    let source = std::io::Error::other(format!("connect to vault with token {BAD_TOKEN}"));
    let error = secrets_sdk::Error::Runtime {
        reason: "planted",
        source: Some(Box::new(source)),
    };
    run.error(
        "planted/error",
        error.code(),
        &error,
        Expect::Code("RUNTIME"),
    );
    // Only the source holds it (its `Display`, its `Debug`, and the outer error's `Debug`).
    let findings = run.scanner.findings();
    assert!(!findings.is_empty());
    assert!(
        findings
            .iter()
            .all(|f| (f.channel, f.canary) == (Channel::Errors, "BAD_TOKEN")),
        "{findings:?}"
    );
    assert!(run.mismatches().is_empty());
    // A code other than the path's purpose is a mismatch, not silence.
    run.error(
        "planted/error",
        error.code(),
        &error,
        Expect::Code("NOT_FOUND"),
    );
    assert_eq!(run.mismatches().len(), 1);

    let mut run = Run::new();
    let auditor = Auditor::disabled();
    let event = auditor
        .event(EventType::Read, "t1", Some(SUBJECT), None)
        .with_grant_id(format!("grant-of-{JTI}"));
    run.audit("planted/audit", &[event]);
    let found: Vec<&str> = run.scanner.findings().iter().map(|f| f.canary).collect();
    // The jti is a finding (in the `Debug` and in the OCSF JSON); the subject is what an audit
    // event is for.
    assert_eq!(found, ["JTI", "JTI"]);
    assert_eq!(run.audited().get("secret.read"), Some(&1));
}

#[test]
fn a_planted_cli_stderr_line_and_a_value_on_the_wrong_stdout_are_reported() {
    let mut run = Run::new();
    check(
        &mut run,
        Case {
            name: "planted".into(),
            invocation: Invocation::new(
                "sh",
                [
                    "-c",
                    &format!("printf '{VALUE}\\n'; echo 'token {TOKEN}' >&2"),
                ],
            ),
            exit: 0,
            out: Out::Value,
            stdout_allows: &[Class::Value],
            stdin: None,
        },
    );
    let found: Vec<(Channel, &str)> = run
        .scanner
        .findings()
        .iter()
        .map(|f| (f.channel, f.canary))
        .collect();
    assert_eq!(found, [(Channel::CliStderr, "TOKEN")]);
    assert!(run.mismatches().is_empty(), "{:?}", run.mismatches());
    // The same value on a stdout that is not a product is a finding, and a wrong exit a
    // mismatch.
    check(
        &mut run,
        Case {
            name: "planted".into(),
            invocation: Invocation::new("sh", ["-c", &format!("printf '{VALUE}\\n'; exit 3")]),
            exit: 1,
            out: Out::Empty,
            stdout_allows: &[],
            stdin: None,
        },
    );
    let found: Vec<(Channel, &str)> = run
        .scanner
        .findings()
        .iter()
        .map(|f| (f.channel, f.canary))
        .collect();
    assert_eq!(
        found,
        [(Channel::CliStderr, "TOKEN"), (Channel::CliStdout, "VALUE")]
    );
    assert_eq!(run.mismatches().len(), 2, "{:?}", run.mismatches());
}

#[test]
fn a_planted_otlp_body_is_reported() -> TestResult {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message as _;

    let attribute = |key: &str, value: String| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    };
    let span = |name: &str, attributes| Span {
        name: name.into(),
        attributes,
        ..Default::default()
    };
    let request = |spans| ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let receiver = secrets_test_support::otlp::OtlpReceiver::start()?;
    let clean = request(vec![span(
        "secret_resolve",
        vec![attribute("provider", "file".into())],
    )]);
    assert_eq!(
        receiver.post_for_test("/v1/traces", &clean.encode_to_vec())?,
        200
    );
    let (bytes, _) = super::otlp_paths::received(&receiver, 0);
    let scanner = Scanner::default();
    assert_eq!(scanner.scan(Channel::Otlp, "clean", &bytes, &[]), 0);

    let planted = request(vec![span(
        "secret_resolve",
        vec![attribute(
            "url.full",
            format!("http://vault/v1/secret/data/{SEGMENT}/{FILE}"),
        )],
    )]);
    assert_eq!(
        receiver.post_for_test("/v1/traces", &planted.encode_to_vec())?,
        200
    );
    let (bytes, _) = super::otlp_paths::received(&receiver, 1);
    scanner.scan(Channel::Otlp, "planted", &bytes, &[]);
    let found: Vec<&str> = scanner.findings().iter().map(|f| f.canary).collect();
    assert_eq!(found, ["SEGMENT", "FILE"]);
    Ok(())
}
