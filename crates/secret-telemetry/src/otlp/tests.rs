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
fn spans_reach_an_exporter_of_yours_on_force_flush_and_bad_settings_are_refused() -> TestResult {
    use opentelemetry_sdk::trace::{BatchConfigBuilder, InMemorySpanExporter};
    let spans = InMemorySpanExporter::default();
    // A scheduled delay no test waits for: only force_flush can hand the spans over.
    let batch = || {
        BatchConfigBuilder::default()
            .with_scheduled_delay(Duration::from_secs(3600))
            .build()
    };
    let config = OtlpConfig::default().with_filter("debug");
    let pipeline = Pipeline::with_span_exporter(&config, spans.clone(), batch())?;
    let subscriber = tracing_subscriber::registry().with(pipeline.layer());
    tracing::subscriber::with_default(subscriber, || {
        let outer = tracing::info_span!("secret_resolve", provider = "file");
        outer.in_scope(|| drop(tracing::debug_span!("secret_read").entered()));
        drop(tracing::trace_span!("filtered_out").entered());
    });
    assert!(spans.get_finished_spans()?.is_empty());
    pipeline.force_flush()?;
    let finished = spans.get_finished_spans()?;
    let names: Vec<&str> = finished.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(names, ["secret_read", "secret_resolve"]);
    assert_eq!(
        finished[0].parent_span_id,
        finished[1].span_context.span_id()
    );

    let bad = OtlpConfig::default().with_filter("[{");
    let error = Pipeline::with_span_exporter(&bad, InMemorySpanExporter::default(), batch())
        .err()
        .ok_or("a filter that does not parse was accepted")?;
    assert_eq!(error.code(), "CONFIG");
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

mod spans {
    //! The span layer ([`super::layer::SpanLayer`]): what each `tracing` span becomes.

    use std::sync::Arc;

    use opentelemetry::Value;
    use opentelemetry::trace::{SpanId, SpanKind, Status};
    use opentelemetry_sdk::trace::{
        BatchSpanProcessor, InMemorySpanExporter, Sampler, ShouldSample, SpanData,
    };
    use tracing_subscriber::filter::Targets;

    use super::super::layer::SpanLayer;
    use super::*;

    /// The spans `make` ends under a layer with `sampler` (`AlwaysOn`: none, as the
    /// pipeline does for the default) and filter `info`.
    fn exported(sampler: Sampler, make: impl FnOnce()) -> Vec<SpanData> {
        let exporter = InMemorySpanExporter::default();
        let batch = Arc::new(BatchSpanProcessor::builder(exporter.clone()).build());
        let sampler = (!matches!(sampler, Sampler::AlwaysOn))
            .then(|| Arc::new(sampler) as Arc<dyn ShouldSample>);
        let layer = SpanLayer::new(Arc::clone(&batch), sampler, scope());
        let filter: Targets = "info".parse().unwrap_or_default();
        let subscriber = tracing_subscriber::registry().with(layer.with_filter(filter));
        tracing::subscriber::with_default(subscriber, make);
        let _ = opentelemetry_sdk::trace::SpanProcessor::force_flush(&*batch);
        exporter.get_finished_spans().unwrap_or_default()
    }

    fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name} in {spans:?}"))
    }

    fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn a_child_joins_its_nearest_exported_ancestor_and_a_root_starts_a_trace() {
        let spans = exported(Sampler::AlwaysOn, || {
            let _outer = tracing::info_span!("outer").entered();
            let _filtered = tracing::debug_span!("filtered").entered();
            let _inner = tracing::info_span!("inner").entered();
            // An explicit root inside them all.
            drop(tracing::info_span!(parent: None, "root").entered());
        });
        assert_eq!(spans.len(), 3, "{spans:?}");
        let (outer, inner, root) = (
            named(&spans, "outer"),
            named(&spans, "inner"),
            named(&spans, "root"),
        );
        assert_eq!(outer.parent_span_id, SpanId::INVALID);
        assert_eq!(inner.parent_span_id, outer.span_context.span_id());
        assert_eq!(inner.span_context.trace_id(), outer.span_context.trace_id());
        assert_eq!(root.parent_span_id, SpanId::INVALID);
        assert_ne!(root.span_context.trace_id(), outer.span_context.trace_id());
        for span in &spans {
            assert!(span.span_context.is_sampled() && span.span_context.is_valid());
            assert!(span.start_time <= span.end_time);
            assert_eq!(span.instrumentation_scope.name(), SCOPE);
        }
    }

    #[test]
    fn fields_become_attributes_once_each_and_otel_fields_set_name_kind_and_status() {
        let spans = exported(Sampler::AlwaysOn, || {
            let span = tracing::info_span!(
                "get_credentials",
                provider = "openbao",
                attempts = 2_u64,
                huge = u64::MAX,
                negative = -3_i64,
                ratio = 0.5_f64,
                cached = true,
                code = tracing::field::Empty,
                shown = ?vec![1, 2],
                otel.name = "GET",
                otel.kind = "client",
                otel.status_code = tracing::field::Empty,
            );
            span.record("code", "TIMEOUT");
            span.record("code", "NOT_FOUND");
            span.record("otel.status_code", "error");
            tracing::info!(parent: &span, "an event inside is not exported");
        });
        let span = named(&spans, "GET");
        assert_eq!(span.span_kind, SpanKind::Client);
        assert_eq!(span.status, Status::error(""));
        assert!(span.events.is_empty(), "{:?}", span.events);
        let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "provider", "attempts", "huge", "negative", "ratio", "cached", "shown", "code"
            ],
            "{span:?}"
        );
        assert_eq!(attribute(span, "provider"), Some(&Value::from("openbao")));
        assert_eq!(attribute(span, "attempts"), Some(&Value::I64(2)));
        assert_eq!(
            attribute(span, "huge"),
            Some(&Value::from(u64::MAX.to_string()))
        );
        assert_eq!(attribute(span, "negative"), Some(&Value::I64(-3)));
        assert_eq!(attribute(span, "ratio"), Some(&Value::F64(0.5)));
        assert_eq!(attribute(span, "cached"), Some(&Value::Bool(true)));
        assert_eq!(attribute(span, "shown"), Some(&Value::from("[1, 2]")));
        // Recorded twice: the last value, once.
        assert_eq!(attribute(span, "code"), Some(&Value::from("NOT_FOUND")));
    }

    #[test]
    fn a_trace_is_sampled_whole_or_not_at_all() {
        assert!(
            exported(Sampler::AlwaysOff, || {
                let _outer = tracing::info_span!("outer", provider = "file").entered();
                drop(tracing::info_span!("inner").entered());
            })
            .is_empty()
        );
        // Half the traces: each one exported is complete, and some are and some are not.
        let spans = exported(Sampler::TraceIdRatioBased(0.5), || {
            for _ in 0..200 {
                let _outer = tracing::info_span!("outer").entered();
                drop(tracing::info_span!("inner").entered());
            }
        });
        let outers: Vec<&SpanData> = spans.iter().filter(|s| s.name == "outer").collect();
        let inners: Vec<&SpanData> = spans.iter().filter(|s| s.name == "inner").collect();
        assert!((20..180).contains(&outers.len()), "{}", outers.len());
        assert_eq!(outers.len(), inners.len());
        for inner in inners {
            assert!(
                outers
                    .iter()
                    .any(|o| o.span_context.span_id() == inner.parent_span_id
                        && o.span_context.trace_id() == inner.span_context.trace_id())
            );
        }
    }

    #[test]
    fn repeated_texts_are_shared_and_long_ones_copied() {
        let long = "x".repeat(200);
        let spans = exported(Sampler::AlwaysOn, || {
            for _ in 0..3 {
                drop(tracing::info_span!("s", mount = "team-a", long = long.as_str()).entered());
            }
        });
        assert_eq!(spans.len(), 3);
        for span in &spans {
            assert_eq!(attribute(span, "mount"), Some(&Value::from("team-a")));
            assert_eq!(attribute(span, "long"), Some(&Value::from(long.clone())));
        }
    }

    #[test]
    fn texts_that_share_a_slot_take_turns_and_each_keeps_its_own_value() {
        // Same field, same length: one slot, alternately replaced.
        let mounts = ["team-a", "team-b", "team-a", "team-c", "team-b"];
        let spans = exported(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)), || {
            for mount in mounts {
                drop(tracing::info_span!("s", mount, other = mount).entered());
            }
        });
        let seen: Vec<Option<&Value>> = spans.iter().map(|s| attribute(s, "mount")).collect();
        let expected: Vec<Value> = mounts.iter().map(|m| Value::from(*m)).collect();
        assert_eq!(seen, expected.iter().map(Some).collect::<Vec<_>>());
        for span in &spans {
            assert_eq!(attribute(span, "other"), attribute(span, "mount"));
        }
    }

    #[test]
    fn only_the_samplers_that_take_every_root_skip_the_asking() {
        for every in [None, Some("always_on"), Some("parentbased_always_on")] {
            assert!(super::super::samples_every_root(every), "{every:?}");
        }
        for other in [
            "always_off",
            "traceidratio",
            "parentbased_traceidratio",
            "parentbased_always_off",
            "ALWAYS_ON",
            " always_on",
            "",
            "xray",
        ] {
            assert!(!super::super::samples_every_root(Some(other)), "{other}");
        }
    }
}
