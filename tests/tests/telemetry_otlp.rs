//! OTLP export end to end: the built `secrets` binary with `OTEL_EXPORTER_OTLP_ENDPOINT` set,
//! against a real OTLP/HTTP receiver on loopback (`secrets_test_support::otlp`, decoding with
//! the published `opentelemetry-proto` types).
//!
//! - `secrets resolve file://…` (no server) delivers a `secret_resolve` span (provider, mount,
//!   cache; no path) and the resolve metrics (`secrets.resolve.duration`,
//!   `secrets.cache.misses` with `provider=file`); the exported bytes hold no canary (the
//!   value, the secret's path, the file's name, the header token).
//! - `secrets get` against a real OpenBao and Cerbos delivers `get_credentials`, and with
//!   `SECRETS_OTEL_FILTER=debug` the HTTP client spans with `http.request.method`,
//!   `server.address`, `http.response.status_code` and never `url.full`.
//! - A receiver that accepts and never answers: the CLI still prints the value and exits 0,
//!   within a deadline.
//! - A bad `OTEL_*` setting: one line on stderr naming it, and the command runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::cli::{Invocation, secrets};
use secrets_test_support::cerbos::{cerbos_or_skip, policies};
use secrets_test_support::openbao_or_skip;
use secrets_test_support::otlp::{OtlpReceiver, ReceivedSpan};

/// The secret value: on stdout, nowhere else.
const VALUE: &str = "otlp-VALUE-3c9e1b";
/// A directory and a file name of the secret's path.
const DIR: &str = "otlp-DIR-5a7f02";
const FILE: &str = "otlp-FILE-8d41c6.json";
/// The collector's auth token, in `OTEL_EXPORTER_OTLP_HEADERS`: sent as a header, never
/// printed, never in an export body.
const HEADER_TOKEN: &str = "otlp-HEADER-TOKEN-e27b90";

/// How long one run of the CLI may take before the test fails (a deadline on the child, not a
/// timing assertion).
const LIMIT: Duration = Duration::from_secs(60);

/// The attributes a `secret_resolve` span may carry: nothing that names the secret.
const RESOLVE_KEYS: [&str; 6] = [
    "provider",
    "mount",
    "cache",
    "uri_hash",
    "resource_ref",
    "code",
];

/// A file root with `app/<DIR>/<FILE>` = `{"password": VALUE}`.
fn root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("app").join(DIR);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(FILE),
        format!(r#"{{"password":"{VALUE}","user":"u"}}"#),
    )
    .unwrap();
    root
}

fn uri() -> String {
    format!("file://app/{DIR}/{FILE}#password")
}

fn resolve(root: &Path, receiver: &OtlpReceiver) -> Invocation {
    secrets([
        "resolve".to_owned(),
        "--file-root".to_owned(),
        root.to_str().unwrap().to_owned(),
        uri(),
    ])
    .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.addr())
    .env(
        "OTEL_EXPORTER_OTLP_HEADERS",
        format!("authorization=Bearer%20{HEADER_TOKEN}"),
    )
}

/// Asserts that no canary (nor the file root) is anywhere in what the receiver got, headers
/// included, except the header token in the `authorization` header it was meant for.
fn assert_no_canary(receiver: &OtlpReceiver, root: &Path) {
    let mut scanned = 0;
    for request in receiver.raw_requests() {
        let body = String::from_utf8_lossy(&request.body);
        let headers: Vec<String> = request
            .headers
            .iter()
            .filter(|(name, _)| name != "authorization")
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        let text = format!(
            "{} {}\n{}\n{body}",
            request.method,
            request.path,
            headers.join("\n")
        );
        for canary in [VALUE, DIR, FILE, HEADER_TOKEN, root.to_str().unwrap()] {
            assert!(!text.contains(canary), "{canary} exported in {text}");
        }
        scanned += request.body.len();
    }
    assert!(scanned > 0, "nothing was exported");
}

fn keys(span: &ReceivedSpan) -> Vec<&str> {
    span.attributes.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn resolve_exports_its_span_and_metrics_with_no_canary() {
    let receiver = OtlpReceiver::start().unwrap();
    let root = root();
    let run = resolve(root.path(), &receiver)
        .run_within(LIMIT)
        .expect("secrets resolve hung");
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, format!("{VALUE}\n").as_str(), ""),
        "{run:?}"
    );

    // The CLI flushed before it exited: everything is there already.
    let spans = receiver.spans_named("secret_resolve");
    assert_eq!(spans.len(), 1, "{:?}", receiver.spans());
    let span = &spans[0];
    assert_eq!(span.attribute("provider"), Some("file"), "{span:?}");
    assert_eq!(span.attribute("mount"), Some("app"), "{span:?}");
    assert_eq!(span.attribute("cache"), Some("miss"), "{span:?}");
    assert_eq!(span.service_name.as_deref(), Some("secrets"));
    for key in keys(span) {
        assert!(
            RESOLVE_KEYS.contains(&key),
            "unexpected attribute {key} on {span:?}"
        );
    }
    // The default filter (info): the DEBUG provider read is not exported.
    assert!(
        receiver.spans_named("secret_read").is_empty(),
        "{:?}",
        receiver.spans()
    );

    let durations = receiver.points_named("secrets.resolve.duration");
    assert!(
        durations
            .iter()
            .any(|p| p.attribute("provider") == Some("file") && p.value >= 1.0),
        "{durations:?}"
    );
    let misses = receiver.points_named("secrets.cache.misses");
    assert!(
        misses
            .iter()
            .any(|p| p.attribute("provider") == Some("file") && p.value == 1.0),
        "{misses:?}"
    );
    assert!(receiver.undecodable().is_empty());
    // The collector's token went where it was meant to, on every request.
    for request in receiver.raw_requests() {
        let auth = request.headers.iter().find(|(k, _)| k == "authorization");
        assert_eq!(
            auth.map(|(_, v)| v.as_str()),
            Some(format!("Bearer {HEADER_TOKEN}").as_str())
        );
    }
    assert_no_canary(&receiver, root.path());
    run.assert_hidden(&[HEADER_TOKEN, DIR, FILE], false);
}

#[test]
fn the_filter_and_service_name_come_from_the_environment() {
    let receiver = OtlpReceiver::start().unwrap();
    let root = root();
    let run = resolve(root.path(), &receiver)
        .env("OTEL_SERVICE_NAME", "billing-cli")
        .env("SECRETS_OTEL_FILTER", "debug")
        .env("RUST_LOG", "trace")
        .run_within(LIMIT)
        .expect("secrets resolve hung");
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, format!("{VALUE}\n").as_str()),
        "{run:?}"
    );
    // Logs on stderr and the export, from one registry.
    assert!(run.stderr.contains("secret_resolve"), "{run:?}");
    run.assert_hidden(&[VALUE, HEADER_TOKEN, DIR, FILE], true);

    let resolve = receiver.spans_named("secret_resolve");
    let read = receiver.spans_named("secret_read");
    assert_eq!(
        (resolve.len(), read.len()),
        (1, 1),
        "{:?}",
        receiver.spans()
    );
    assert_eq!(read[0].parent_span_id, resolve[0].span_id);
    assert_eq!(read[0].attribute("provider"), Some("file"));
    assert!(
        receiver
            .spans()
            .iter()
            .all(|s| s.service_name.as_deref() == Some("billing-cli"))
    );
    assert_no_canary(&receiver, root.path());
}

#[test]
fn an_endpoint_that_never_answers_cannot_hang_the_command() {
    let receiver = OtlpReceiver::start_silent().unwrap();
    let root = root();
    let run = resolve(root.path(), &receiver)
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "1000")
        .run_within(LIMIT)
        .expect("secrets resolve hung on a silent collector");
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, format!("{VALUE}\n").as_str()),
        "{run:?}"
    );
    // One line says the export did not finish; it names no value, path or token.
    assert!(
        run.stderr.starts_with("secrets: telemetry: OTLP "),
        "{run:?}"
    );
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    run.assert_hidden(&[HEADER_TOKEN, DIR, FILE], false);
    // It did try: the receiver holds the requests it never answered.
    assert!(receiver.wait_for(Duration::from_secs(5), |r| !r.raw_requests().is_empty()));
    assert_no_canary(&receiver, root.path());
}

#[test]
fn a_bad_setting_is_named_on_stderr_and_the_command_still_runs() {
    let receiver = OtlpReceiver::start().unwrap();
    let root = root();
    for (name, value, reason) in [
        (
            "OTEL_EXPORTER_OTLP_TIMEOUT",
            HEADER_TOKEN,
            "must be a whole number",
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            HEADER_TOKEN,
            "must be comma-separated key=value pairs",
        ),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "grpc",
            "must be http/protobuf (the only protocol served)",
        ),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "/nonexistent/otlp-ca.pem",
            "names no readable file",
        ),
    ] {
        let run = resolve(root.path(), &receiver)
            .env(name, value)
            .run_within(LIMIT)
            .expect("secrets resolve hung");
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (0, format!("{VALUE}\n").as_str()),
            "{run:?}"
        );
        assert!(
            run.stderr
                .starts_with(&format!("secrets: telemetry disabled: {name} ")),
            "{run:?}"
        );
        assert!(run.stderr.trim_end().ends_with("[CONFIG]"), "{run:?}");
        assert!(
            run.stderr.contains(reason) || name == "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "{run:?}"
        );
        run.assert_hidden(&[HEADER_TOKEN], false);
    }
    // Nothing was exported by the runs with a bad setting.
    assert!(receiver.raw_requests().is_empty());
    // A plain http:// collector elsewhere is refused too, unless allowed.
    let run = resolve(root.path(), &receiver)
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://collector.example:4318",
        )
        .run_within(LIMIT)
        .expect("secrets resolve hung");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.starts_with(
            "secrets: telemetry disabled: OTEL_EXPORTER_OTLP_ENDPOINT is plain http://"
        ),
        "{run:?}"
    );
}

#[test]
fn exec_flushes_before_it_becomes_the_command() {
    let receiver = OtlpReceiver::start().unwrap();
    let root = root();
    let run = secrets([
        "exec".to_owned(),
        "--file-root".to_owned(),
        root.path().to_str().unwrap().to_owned(),
        "--env".to_owned(),
        format!("PASSWORD={}", uri()),
        "--".to_owned(),
        "sh".to_owned(),
        "-c".to_owned(),
        "test -n \"$PASSWORD\" && echo set".to_owned(),
    ])
    .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.addr())
    .run_within(LIMIT)
    .expect("secrets exec hung");
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "set\n", ""),
        "{run:?}"
    );
    assert_eq!(
        receiver.spans_named("secret_resolve").len(),
        1,
        "{:?}",
        receiver.spans()
    );
    assert!(!receiver.points_named("secrets.cache.misses").is_empty());
    assert_no_canary(&receiver, root.path());
}

/// `secrets get` through the PEP against a real OpenBao and a real Cerbos, exporting.
#[test]
fn get_exports_get_credentials_and_http_client_spans() {
    let Some(bao) = openbao_or_skip() else {
        return;
    };
    let Some(cerbos) = cerbos_or_skip(&policies()) else {
        return;
    };
    const GET_VALUE: &str = "otlp-GET-VALUE-91ab3f";
    const JTI: &str = "otlp-JTI-0c77d2";
    const SUBJECT: &str = "alice";
    let path = "seven/otlp-get-path-52e1";
    bao.kv_put("secret", path, &serde_json::json!({"token": GET_VALUE}))
        .unwrap();
    let receiver = OtlpReceiver::start().unwrap();
    let uri = format!("openbao+kv2://secret/{path}#token");
    let vars: Vec<(&str, String)> = vec![
        ("VAULT_URL", bao.addr()),
        ("VAULT_TOKEN", bao.root_token().to_owned()),
        ("TENANT_ID", "t1".to_owned()),
        ("TENANT_ALLOWED_MOUNTS", "secret".to_owned()),
        ("SECRET_TENANT_SALT", "otlp-cli-salt-0123456789".to_owned()),
        ("AUTHZEN_PDP_URL", cerbos.addr()),
        ("AUTHZEN_DIALECT", "cerbos".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.addr()),
        ("SECRETS_OTEL_FILTER", "debug".to_owned()),
    ];
    let run = vars
        .iter()
        .fold(
            secrets([
                "get",
                uri.as_str(),
                "--subject",
                SUBJECT,
                "--role",
                "reader",
                "--aud",
                "crud.secrets",
                "--jti",
                JTI,
            ]),
            |secrets, (k, v)| secrets.env(k, v),
        )
        .run_within(LIMIT)
        .expect("secrets get hung");
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, format!("{GET_VALUE}\n").as_str(), ""),
        "{run:?}"
    );

    let spans = receiver.spans();
    let get = receiver.spans_named("get_credentials");
    assert_eq!(get.len(), 1, "{spans:?}");
    assert_eq!(get[0].service_name.as_deref(), Some("secrets"));
    // HTTP client spans (kind client = 3) for the vault and the PDP, semantic conventions only.
    let http: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.attribute("http.request.method").is_some())
        .collect();
    assert!(http.len() >= 2, "{spans:?}");
    let bao_port = bao.addr().rsplit(':').next().unwrap().to_owned();
    let cerbos_port = cerbos.addr().rsplit(':').next().unwrap().to_owned();
    let ports: Vec<&str> = http
        .iter()
        .filter_map(|s| s.attribute("server.port"))
        .collect();
    assert!(
        ports.contains(&bao_port.as_str()) && ports.contains(&cerbos_port.as_str()),
        "{http:?}"
    );
    for span in &http {
        assert_eq!(span.kind, 3, "{span:?}");
        assert_eq!(
            span.attribute("server.address"),
            Some("127.0.0.1"),
            "{span:?}"
        );
        assert!(
            span.attribute("http.response.status_code").is_some(),
            "{span:?}"
        );
    }
    for span in &spans {
        for (key, value) in &span.attributes {
            assert_ne!(key, "url.full", "{span:?}");
            for canary in [GET_VALUE, JTI, path, bao.root_token()] {
                assert!(!value.contains(canary), "{canary} in {span:?}");
            }
        }
    }
    let raw = String::from_utf8_lossy(&receiver.raw_bytes()).into_owned();
    for canary in [GET_VALUE, JTI, path, bao.root_token(), "url.full"] {
        assert!(!raw.contains(canary), "{canary} exported");
    }
    assert!(
        !receiver.points_named("secrets.pep.decisions").is_empty(),
        "{:?}",
        receiver.metric_names()
    );
}

#[test]
fn no_endpoint_no_export() {
    let receiver = OtlpReceiver::start().unwrap();
    let root = root();
    let run = secrets([
        "resolve".to_owned(),
        "--file-root".to_owned(),
        root.path().to_str().unwrap().to_owned(),
        uri(),
    ])
    // The receiver's address under another name: nothing may go there.
    .env(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        format!("{}/v1/traces", receiver.addr()),
    )
    .run_within(LIMIT)
    .expect("secrets resolve hung");
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:?}");
    assert!(receiver.raw_requests().is_empty());
}
