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
            ENDPOINT_ENV,
        ),
        (
            OtlpConfig::default().with_endpoint(format!("https://u:{CANARY}@collector.example")),
            ENDPOINT_ENV,
        ),
        (
            OtlpConfig::default().with_traces_endpoint("ftp://collector.example/v1/traces"),
            TRACES_ENDPOINT_ENV,
        ),
        (
            OtlpConfig::default().with_metrics_endpoint("https://collector.example/v1/metrics?x=1"),
            METRICS_ENDPOINT_ENV,
        ),
        (
            OtlpConfig::default().with_header("bad name", CANARY),
            HEADERS_ENV,
        ),
        (
            OtlpConfig::default().with_header("authorization", format!("Bearer {CANARY}\n")),
            HEADERS_ENV,
        ),
        (
            OtlpConfig::default().with_ca_bundle("/nonexistent/otlp-ca.pem"),
            CERTIFICATE_ENV,
        ),
        (
            OtlpConfig::default().with_timeout(Duration::ZERO),
            TIMEOUT_ENV,
        ),
        (
            OtlpConfig::default().with_metric_interval(Duration::ZERO),
            METRIC_INTERVAL_ENV,
        ),
        (
            OtlpConfig::default().with_filter("secrets_sdk=loud"),
            FILTER_ENV,
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

mod export {
    //! Against a real OTLP/HTTP receiver on loopback.

    use std::time::Instant;

    use secrets_test_support::otlp::OtlpReceiver;

    use super::*;

    /// How long a test waits for the receiver before it fails (a deadline, not a timing
    /// assertion).
    const PATIENCE: Duration = Duration::from_secs(20);

    #[test]
    fn spans_metrics_and_headers_reach_the_receiver() -> TestResult {
        let receiver = OtlpReceiver::start()?;
        let config = OtlpConfig::default()
            .with_endpoint(format!("{}/", receiver.addr()))
            .with_header("authorization", format!("Bearer {CANARY}"))
            .with_service_name("otlp-unit")
            // Everything, the exporter's own requests included if they were traced.
            .with_filter("trace");
        let pipeline = Pipeline::new(&config)?;
        let metrics = pipeline.metrics();
        // The process's global subscriber (the only test here to set it), as in a program:
        // the exporter's runtime thread sees it too, so its own requests' spans would be
        // exported if they were not suppressed.
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(pipeline.layer()),
        )?;
        {
            let _resolve =
                tracing::info_span!("secret_resolve", provider = "file", cache = "miss").entered();
            let _read = tracing::debug_span!("secret_read", provider = "file").entered();
            metrics.resolve("file", "miss", "ok", Duration::from_micros(30));
        }
        let guard = pipeline.install();
        guard.force_flush()?;
        assert!(receiver.wait_for(PATIENCE, |r| r.spans().len() >= 2 && !r.points().is_empty()));
        guard.shutdown()?;

        let spans = receiver.spans();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        // Exactly the two spans made here: the export's own HTTP requests are never traced.
        assert_eq!(names, ["secret_read", "secret_resolve"], "{spans:?}");
        let (read, resolve) = (&spans[0], &spans[1]);
        assert_eq!(read.parent_span_id, resolve.span_id);
        assert_eq!(resolve.attribute("provider"), Some("file"));
        assert_eq!(resolve.attribute("cache"), Some("miss"));
        assert_eq!(resolve.service_name.as_deref(), Some("otlp-unit"));
        // No source locations, threads or busy/idle times.
        let keys: Vec<&str> = resolve.attributes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["provider", "cache"], "{resolve:?}");

        let misses = receiver.points_named("secrets.cache.misses");
        assert!(!misses.is_empty());
        assert!(
            misses
                .iter()
                .all(|p| p.attribute("provider") == Some("file") && p.value == 1.0)
        );
        assert!(!receiver.points_named("secrets.resolve.duration").is_empty());

        let requests = receiver.raw_requests();
        let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
        assert!(
            paths.contains(&"/v1/traces") && paths.contains(&"/v1/metrics"),
            "{paths:?}"
        );
        for request in &requests {
            let header = |name: &str| {
                request
                    .headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(
                header("authorization"),
                Some(format!("Bearer {CANARY}").as_str())
            );
            assert_eq!(header("content-type"), Some("application/x-protobuf"));
            assert!(header("user-agent").is_some_and(|ua| ua.starts_with("secrets-sdk/")));
        }
        assert!(receiver.undecodable().is_empty());
        Ok(())
    }

    #[test]
    fn metrics_are_exported_every_interval_without_a_flush() -> TestResult {
        let receiver = OtlpReceiver::start()?;
        let config = OtlpConfig::default()
            .with_endpoint(receiver.addr())
            .with_metric_interval(Duration::from_millis(100));
        let pipeline = Pipeline::new(&config)?;
        pipeline.metrics().provider_error("openbao", "UNAVAILABLE");
        let guard = pipeline.install();
        // Two exports of the same cumulative point, with no flush asked for.
        let exported = receiver.wait_for(PATIENCE, |r| {
            r.points_named("secrets.provider.errors").len() >= 2
        });
        assert!(exported, "{:?}", receiver.metric_names());
        let point = &receiver.points_named("secrets.provider.errors")[0];
        assert_eq!(point.attribute("provider"), Some("openbao"));
        assert_eq!(point.attribute("code"), Some("UNAVAILABLE"));
        assert_eq!(point.value, 1.0);
        drop(guard);
        Ok(())
    }

    #[test]
    fn an_endpoint_that_never_answers_cannot_hang_shutdown() -> TestResult {
        let receiver = OtlpReceiver::start_silent()?;
        let config = OtlpConfig::default()
            .with_endpoint(receiver.addr())
            .with_header("authorization", CANARY)
            .with_timeout(Duration::from_millis(300));
        let pipeline = Pipeline::new(&config)?;
        let metrics = pipeline.metrics();
        let subscriber = tracing_subscriber::registry().with(pipeline.layer());
        tracing::subscriber::with_default(subscriber, || {
            drop(tracing::info_span!("get_credentials").entered());
            metrics.resolve("openbao", "miss", "ok", Duration::from_millis(1));
        });
        let guard = pipeline.install();
        let started = Instant::now();
        let result = guard.shutdown();
        let waited = started.elapsed();
        let error = result
            .err()
            .ok_or("shutdown against a silent endpoint succeeded")?;
        assert!(matches!(error.code(), "TIMEOUT" | "OTLP_EXPORT"), "{error}");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(CANARY), "{shown}");
        // A deadline, far above the 300 ms timeout: shutdown must not wait for the endpoint.
        assert!(waited < PATIENCE, "shutdown took {waited:?}");
        assert!(receiver.wait_for(PATIENCE, |r| !r.raw_requests().is_empty()));
        Ok(())
    }

    #[test]
    fn an_https_endpoint_is_spoken_to_in_tls_only() -> TestResult {
        // A plain-HTTP receiver behind an https:// URL: the exporter's TLS handshake fails,
        // and no request ever reaches the receiver in the clear.
        let receiver = OtlpReceiver::start()?;
        let endpoint = receiver.addr().replacen("http://", "https://", 1);
        let config = OtlpConfig::default()
            .with_endpoint(endpoint)
            .with_header("authorization", CANARY)
            .with_timeout(Duration::from_millis(500));
        let pipeline = Pipeline::new(&config)?;
        let subscriber = tracing_subscriber::registry().with(pipeline.layer());
        tracing::subscriber::with_default(subscriber, || {
            drop(tracing::info_span!("secret_resolve").entered());
        });
        let guard = pipeline.install();
        let error = guard
            .force_flush()
            .err()
            .ok_or("a flush over TLS to plain HTTP succeeded")?;
        assert!(matches!(error.code(), "TIMEOUT" | "OTLP_EXPORT"), "{error}");
        assert!(
            receiver.raw_requests().is_empty(),
            "{:?}",
            receiver.raw_requests()
        );
        drop(guard);
        Ok(())
    }

    #[test]
    fn a_refused_connection_is_an_export_error_not_a_hang() -> TestResult {
        // Bind and release a port: nothing listens there now.
        let port = secrets_test_support::free_port()?;
        let config = OtlpConfig::default()
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_timeout(Duration::from_millis(500));
        let pipeline = Pipeline::new(&config)?;
        let subscriber = tracing_subscriber::registry().with(pipeline.layer());
        tracing::subscriber::with_default(subscriber, || {
            drop(tracing::info_span!("secret_resolve").entered());
        });
        let guard = pipeline.install();
        let error = guard
            .force_flush()
            .err()
            .ok_or("a flush to a closed port succeeded")?;
        assert!(matches!(error.code(), "TIMEOUT" | "OTLP_EXPORT"), "{error}");
        drop(guard);
        Ok(())
    }
}
