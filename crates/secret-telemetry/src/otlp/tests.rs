//! Unit tests of the pipeline: building, refusing bad settings, discarding. The export to a
//! real OTLP/HTTP receiver is tested in `tests/tests/telemetry_otlp.rs` and below with
//! `secrets_test_support::otlp`.

use std::time::Duration;

use tracing_subscriber::prelude::*;

use super::*;

const CANARY: &str = "s.canary-otlp-header-9c2e";

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn refused(config: &OtlpConfig) -> OtlpError {
    match Pipeline::new(config) {
        Ok(pipeline) => panic!("accepted: {pipeline:?}"),
        Err(error) => error,
    }
}

#[test]
fn bad_settings_are_refused_naming_the_setting_and_never_a_value() {
    let cases = [
        (
            OtlpConfig::default().with_endpoint("http://collector.example:4318"),
            OTEL_EXPORTER_OTLP_ENDPOINT,
        ),
        (
            OtlpConfig::default().with_endpoint(format!("https://u:{CANARY}@collector.example")),
            OTEL_EXPORTER_OTLP_ENDPOINT,
        ),
        (
            OtlpConfig::default().with_traces_endpoint("ftp://collector.example/v1/traces"),
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
        ),
        (
            OtlpConfig::default().with_metrics_endpoint("https://collector.example/v1/metrics?x=1"),
            OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
        ),
        (
            OtlpConfig::default().with_header("bad name", CANARY),
            OTEL_EXPORTER_OTLP_HEADERS,
        ),
        (
            OtlpConfig::default().with_header("authorization", format!("Bearer {CANARY}\n")),
            OTEL_EXPORTER_OTLP_HEADERS,
        ),
        (
            OtlpConfig::default().with_ca_bundle("/nonexistent/otlp-ca.pem"),
            OTEL_EXPORTER_OTLP_CERTIFICATE,
        ),
        (
            OtlpConfig::default().with_timeout(Duration::ZERO),
            OTEL_EXPORTER_OTLP_TIMEOUT,
        ),
        (
            OtlpConfig::default().with_metric_interval(Duration::ZERO),
            OTEL_METRIC_EXPORT_INTERVAL,
        ),
        (
            OtlpConfig::default().with_filter("secrets_sdk=loud"),
            SECRETS_OTEL_FILTER,
        ),
    ];
    for (config, setting) in cases {
        let error = refused(&config);
        assert_eq!(error.code(), "CONFIG", "{error}");
        assert_eq!(error.setting(), Some(setting), "{error}");
        let shown = format!("{error} {error:?} {config:?}");
        assert!(!shown.contains(CANARY), "{shown}");
        assert!(error.to_string().starts_with(setting), "{error}");
    }
}

#[test]
fn plain_http_elsewhere_needs_the_flag() -> TestResult {
    let config = OtlpConfig::default().with_endpoint("http://collector.internal:4318");
    assert_eq!(refused(&config).code(), "CONFIG");
    let pipeline = Pipeline::new(&config.with_allow_insecure_http(true))?;
    drop(pipeline);
    Ok(())
}

#[test]
fn building_does_no_io_and_a_dropped_pipeline_shuts_down() -> TestResult {
    // Port 9 (discard) on loopback: nothing listens; building must not care.
    let config = OtlpConfig::default()
        .with_endpoint("http://127.0.0.1:9/base/")
        .with_header("authorization", CANARY)
        .with_timeout(Duration::from_millis(200));
    let pipeline = Pipeline::new(&config)?;
    let shown = format!("{pipeline:?}");
    assert!(!shown.contains(CANARY), "{shown}");
    drop(pipeline);
    Ok(())
}

#[test]
fn the_discarding_pipeline_builds_spans_and_metrics_and_drops_them() -> TestResult {
    let config = OtlpConfig::default().with_filter("debug");
    let pipeline = Pipeline::discarding_with(&config)?;
    let metrics = pipeline.metrics();
    let subscriber = tracing_subscriber::registry().with(pipeline.layer());
    tracing::subscriber::with_default(subscriber, || {
        let _outer = tracing::info_span!("secret_resolve", provider = "file").entered();
        let _inner = tracing::debug_span!("secret_read", provider = "file").entered();
        let _below = tracing::trace_span!("filtered_out").entered();
        metrics.resolve("file", "miss", "ok", Duration::from_micros(5));
    });
    let guard = pipeline.install();
    guard.force_flush()?;
    assert_eq!(guard.discarded_spans(), Some(2));
    guard.shutdown()?;
    Ok(())
}

#[test]
fn the_default_filter_exports_info_spans_only() -> TestResult {
    let pipeline = Pipeline::discarding();
    let subscriber = tracing_subscriber::registry().with(pipeline.layer());
    tracing::subscriber::with_default(subscriber, || {
        drop(tracing::info_span!("get_credentials").entered());
        drop(tracing::debug_span!("http_request").entered());
    });
    let guard = pipeline.install();
    guard.force_flush()?;
    assert_eq!(guard.discarded_spans(), Some(1));
    assert!(format!("{guard:?}").contains("discarding: true"));
    Ok(())
}

#[test]
fn codes_are_stable() {
    let errors = [
        OtlpError::config("X", "is wrong"),
        OtlpError::Runtime {
            source: std::io::Error::other("no threads"),
        },
        OtlpError::SubscriberExists {
            source: "set".into(),
        },
        OtlpError::Timeout {
            signal: "traces",
            timeout: Duration::from_secs(1),
        },
        OtlpError::Export {
            signal: "metrics",
            source: "refused".into(),
        },
    ];
    let codes: Vec<&str> = errors.iter().map(OtlpError::code).collect();
    assert_eq!(
        codes,
        [
            "CONFIG",
            "RUNTIME",
            "SUBSCRIBER_EXISTS",
            "TIMEOUT",
            "OTLP_EXPORT"
        ]
    );
    for error in &errors {
        assert!(
            error.to_string().ends_with(&format!("[{}]", error.code())),
            "{error}"
        );
    }
    assert_eq!(errors[3].setting(), None);
}
