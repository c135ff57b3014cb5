//! The OTLP export: every CLI path again with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a real
//! OTLP/HTTP receiver on loopback (every span level exported, a canary bearer header), then
//! every byte the receiver got is scanned; and the export's own failure paths: settings
//! holding the canary header value, a collector that accepts and never answers, one that is
//! down.

use secrets_test_support::otlp::OtlpReceiver;

use super::cli_paths::{self, Case, Out, check};
use super::fixtures::{Fixtures, file};
use super::run::Run;
use crate::common::leak::{Channel, OTEL_HEADER};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// `OTEL_EXPORTER_OTLP_HEADERS`: the canary as a bearer token and as a header of its own.
fn headers() -> String {
    format!("authorization=Bearer%20{OTEL_HEADER},x-lk-key={OTEL_HEADER}")
}

/// The export's settings for `endpoint`, every span level.
fn otel_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.to_owned()),
        ("OTEL_EXPORTER_OTLP_HEADERS", headers()),
        ("OTEL_SERVICE_NAME", "lk-leak-suite".to_owned()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000".to_owned()),
        ("SECRETS_OTEL_FILTER", "trace".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// What the receiver got, as text to scan: each request's line, its headers (the values the
/// suite configured itself replaced: sending them is the point) and its body.
pub(crate) fn received(receiver: &OtlpReceiver, skip: usize) -> (Vec<u8>, usize) {
    let mut bytes = Vec::new();
    let mut sent_header = 0;
    for request in receiver.raw_requests().into_iter().skip(skip) {
        bytes.extend(format!("{} {}\n", request.method, request.path).into_bytes());
        for (name, value) in &request.headers {
            let configured = name.eq_ignore_ascii_case("authorization")
                && value == &format!("Bearer {OTEL_HEADER}")
                || name.eq_ignore_ascii_case("x-lk-key") && value == OTEL_HEADER;
            if configured {
                sent_header += 1;
                bytes.extend(format!("{name}: [the configured header]\n").into_bytes());
            } else {
                bytes.extend(format!("{name}: {value}\n").into_bytes());
            }
        }
        bytes.extend_from_slice(&request.body);
        bytes.push(b'\n');
    }
    (bytes, sent_header)
}

/// Drives the CLI through the receiver; returns the receiver for the caller's checks.
pub(crate) fn drive(run: &mut Run, fx: &Fixtures) -> Result<OtlpReceiver> {
    let receiver = OtlpReceiver::start()?;
    run.cli_area = "otlp";
    run.cli_env = otel_env(&receiver.addr());
    cli_paths::drive(run, fx)?;
    run.cli_env.clear();
    // Everything was flushed before each command exited.
    let (bytes, sent_header) = received(&receiver, 0);
    let scanned = receiver.raw_requests().len();
    if sent_header == 0 {
        run.mismatch("otlp/export", "no request carried the configured header");
    }
    run.scanner
        .scan(Channel::Otlp, "otlp/received requests", &bytes, &[]);
    // The decoded spans and points too (attribute values as the receiver renders them).
    run.scanner.scan(
        Channel::Otlp,
        "otlp/decoded",
        format!("{:?}\n{:?}", receiver.spans(), receiver.points()),
        &[],
    );

    // The export's own failures: the command's outcome stands, and stderr names no value.
    let field = Fixtures::file_uri(file::JSON, "#password");
    let silent = OtlpReceiver::start_silent()?;
    let down = format!("http://127.0.0.1:{}", secrets_test_support::free_port()?);
    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        ("collector never answers", {
            let mut env = otel_env(&silent.addr());
            env.push(("OTEL_EXPORTER_OTLP_TIMEOUT".into(), "300".into()));
            env
        }),
        ("collector down", otel_env(&down)),
        ("timeout holds the header", {
            let mut env = otel_env(&receiver.addr());
            env.push(("OTEL_EXPORTER_OTLP_TIMEOUT".into(), OTEL_HEADER.into()));
            env
        }),
        ("headers malformed", {
            let mut env = otel_env(&receiver.addr());
            env.push((
                "OTEL_EXPORTER_OTLP_HEADERS".into(),
                format!("authorization Bearer {OTEL_HEADER},%zz={OTEL_HEADER}"),
            ));
            env
        }),
        ("endpoint holds the header as a password", {
            let endpoint = receiver
                .addr()
                .replace("http://", &format!("http://lk:{OTEL_HEADER}@"));
            otel_env(&endpoint)
        }),
        ("endpoint is the header", otel_env(OTEL_HEADER)),
        ("protocol is the header", {
            let mut env = otel_env(&receiver.addr());
            env.push(("OTEL_EXPORTER_OTLP_PROTOCOL".into(), OTEL_HEADER.into()));
            env
        }),
    ];
    for (name, env) in cases {
        run.cli_area = "otlp";
        run.cli_env = env;
        check(
            run,
            Case {
                name: format!("resolve, {name}"),
                invocation: cli_paths::resolve(fx, &[&field], &[]),
                exit: 0,
                out: Out::Value,
                stdout_allows: &[crate::common::leak::Class::Value],
                stdin: None,
            },
        );
    }
    run.cli_env.clear();
    run.cli_area = "cli";
    let (bytes, _) = received(&receiver, scanned);
    run.scanner.scan(
        Channel::Otlp,
        "otlp/received after the failures",
        &bytes,
        &[],
    );
    let (bytes, _) = received(&silent, 0);
    run.scanner
        .scan(Channel::Otlp, "otlp/silent collector", &bytes, &[]);
    Ok(receiver)
}
