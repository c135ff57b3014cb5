//! The client's metrics and span levels, read back from an in-memory meter provider
//! ([`MetricsCapture`]) and a capturing subscriber: what each resolve counts, under which
//! labels, and that a fresh hit creates no span under an INFO or DEBUG filter.

use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, PoisonError};

use secret_providers::{ProviderError, ReadFuture, SecretProvider, SecretValue};
use secret_telemetry::names::{self, metric};
use secret_telemetry::testing::{MetricsCapture, Points};
use tracing_subscriber::layer::{Context, SubscriberExt as _};

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The directory name, file name and value planted: none may appear in a label.
const PLANTED: [&str; 3] = ["canary-dir", "canary-file", "canary-value"];

fn files(names: &[&str]) -> std::io::Result<tempfile::TempDir> {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("canary-dir"))?;
    for name in names {
        std::fs::write(root.path().join("canary-dir").join(name), "canary-value")?;
    }
    Ok(root)
}

fn builder(root: &std::path::Path, capture: &MetricsCapture) -> SecretsClientBuilder {
    SecretsClient::builder()
        .file_root(root)
        .allowed_mounts(AllowedMounts::from_csv("canary-dir,pg"))
        .metrics(capture.metrics())
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Every label is one of the closed sets of [`names`] (or a code of `docs/errors.md`), and
/// no value contains anything planted.
fn assert_closed_labels(points: &Points) {
    const ERRORS: &str = include_str!("../../../../../docs/errors.md");
    for point in &points.0 {
        assert!(
            metric::ALL.contains(&point.metric.as_str()),
            "unknown metric {point:?}"
        );
        for (key, value) in &point.labels {
            let closed = match key.as_str() {
                names::label::PROVIDER => names::PROVIDERS.contains(&value.as_str()),
                names::label::CACHE => names::CACHE_OUTCOMES.contains(&value.as_str()),
                names::label::OUTCOME => names::OUTCOMES.contains(&value.as_str()),
                names::label::CODE => ERRORS.contains(&format!("| `{value}` |")),
                _ => false,
            };
            assert!(closed, "label {key}={value} is outside the closed sets");
            for planted in PLANTED {
                assert!(!value.contains(planted), "{planted} in {point:?}");
            }
        }
    }
}

/// One miss, then hits through every entry point and spelling: one miss, N hits, both timed,
/// all labelled `provider = "file"`.
#[test]
fn a_miss_then_hits_count_by_provider() -> TestResult {
    let root = files(&["canary-file"])?;
    let capture = MetricsCapture::new();
    let client = builder(root.path(), &capture).build()?;
    let uri = "file://canary-dir/canary-file";
    assert_eq!(
        client.resolve_file_sync(uri)?.expose_str(),
        Some("canary-value")
    );
    client.resolve_file_sync(uri)?;
    client.resolve_file_sync("FILE://canary-dir/canary-file")?;
    client.resolve_blocking(uri)?;
    client.resolve_blocking("FILE://canary-dir/canary-file")?;
    let parsed = SecretUri::parse(uri)?;
    runtime()?.block_on(async {
        client.resolve(uri).await?;
        client.resolve("FILE://canary-dir/canary-file").await?;
        client.resolve(&parsed).await
    })?;
    let hits = 7.0;

    let points = capture.points()?;
    let file = [("provider", "file")];
    assert_eq!(points.sum_where(metric::CACHE_MISSES, &file), 1.0);
    assert_eq!(points.sum_where(metric::CACHE_HITS, &file), hits);
    assert_eq!(points.sum(metric::CACHE_HITS), hits);
    let timed = |cache: &str| {
        points.sum_where(
            metric::RESOLVE_DURATION,
            &[("provider", "file"), ("cache", cache), ("outcome", "ok")],
        )
    };
    assert_eq!((timed("miss"), timed("hit")), (1.0, hits));
    assert!(points.sum_where(metric::LAST_SUCCESSFUL_FETCH, &file) > 1.7e9);
    assert_eq!(points.sum(metric::PROVIDER_ERRORS), 0.0);
    assert_closed_labels(&points);
    Ok(())
}

/// A missing file and an unreadable one (a directory) are provider errors with their codes
/// and `outcome = "error"` resolves, through the async and the synchronous paths; a mount
/// outside the allowed ones reads nothing and is timed as `cache = "none"`.
#[test]
fn failed_reads_count_their_code() -> TestResult {
    let root = files(&[])?;
    std::fs::create_dir(root.path().join("canary-dir/canary-file"))?;
    let capture = MetricsCapture::new();
    let client = builder(root.path(), &capture).build()?;
    let missing = "file://canary-dir/canary-absent";
    let unreadable = "file://canary-dir/canary-file";
    let codes = [
        client.resolve_blocking(missing).err().map(|e| e.code()),
        client.resolve_file_sync(missing).err().map(|e| e.code()),
        client.resolve_file_sync(unreadable).err().map(|e| e.code()),
        client
            .resolve_blocking("file://elsewhere/canary-file")
            .err()
            .map(|e| e.code()),
    ];
    assert_eq!(
        codes,
        [
            Some("NOT_FOUND"),
            Some("NOT_FOUND"),
            Some("INVALID_PATH"),
            Some("TENANT_MOUNT_MISMATCH")
        ]
    );

    let points = capture.points()?;
    let error = |code: &str| {
        points.sum_where(
            metric::PROVIDER_ERRORS,
            &[("provider", "file"), ("code", code)],
        )
    };
    assert_eq!((error("NOT_FOUND"), error("INVALID_PATH")), (2.0, 1.0));
    assert_eq!(points.sum(metric::PROVIDER_ERRORS), 3.0);
    let failed = |cache: &str| {
        points.sum_where(
            metric::RESOLVE_DURATION,
            &[("provider", "file"), ("cache", cache), ("outcome", "error")],
        )
    };
    assert_eq!((failed("miss"), failed("none")), (3.0, 1.0));
    assert_eq!(points.sum(metric::CACHE_HITS), 0.0);
    assert_eq!(points.sum(metric::LAST_SUCCESSFUL_FETCH), 0.0);
    assert_closed_labels(&points);
    Ok(())
}

/// A provider of one's own (`db`) whose reads fail with `UNAVAILABLE` once told to.
#[derive(Debug, Default)]
struct Flaky {
    down: AtomicBool,
}

impl SecretProvider for Flaky {
    fn name(&self) -> &'static str {
        "canary-provider-name"
    }

    fn read<'a>(&'a self, _uri: &'a SecretUri) -> ReadFuture<'a> {
        let result = if self.down.load(Ordering::SeqCst) {
            Err(ProviderError::Unavailable {
                provider: "canary-provider-name",
                attempts: 1,
                status: None,
                source: None,
            })
        } else {
            Ok(SecretValue::from_text("canary-value"))
        };
        Box::pin(std::future::ready(result))
    }
}

/// Stale-if-error: the refresh that fails counts a provider error under the URI's provider
/// (not the provider object's name), and each stale value served counts as stale-served.
#[test]
fn stale_values_served_while_the_provider_fails_are_counted() -> TestResult {
    let root = files(&[])?;
    let capture = MetricsCapture::new();
    let flaky = Arc::new(Flaky::default());
    let client = builder(root.path(), &capture)
        .provider(Provider::Db, Arc::clone(&flaky) as Arc<dyn SecretProvider>)
        .cache_ttl(Duration::from_millis(100))
        .stale_if_error(Duration::from_secs(30))
        .build()?;
    let uri = "db+cred://pg/canary-file";
    let runtime = runtime()?;
    runtime.block_on(client.resolve(uri))?;
    flaky.down.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(150));
    // Refreshed, failed, served stale; then served stale without asking the provider.
    for _ in 0..2 {
        let served = runtime.block_on(client.resolve(uri))?;
        assert_eq!(served.expose_str(), Some("canary-value"));
    }

    let points = capture.points()?;
    let db = [("provider", "db")];
    assert_eq!(points.sum_where(metric::CACHE_MISSES, &db), 1.0);
    assert_eq!(points.sum_where(metric::STALE_SERVED, &db), 2.0);
    assert_eq!(
        points.sum_where(
            metric::PROVIDER_ERRORS,
            &[("provider", "db"), ("code", "UNAVAILABLE")]
        ),
        1.0
    );
    assert_eq!(points.sum(metric::PROVIDER_ERRORS), 1.0);
    let stale = [("provider", "db"), ("cache", "stale"), ("outcome", "ok")];
    assert_eq!(points.sum_where(metric::RESOLVE_DURATION, &stale), 2.0);
    assert_closed_labels(&points);
    Ok(())
}

/// Entries pushed out by the capacity bound and entries dropped by the sweep once expired
/// both count as evictions.
#[test]
fn pushed_out_and_expired_entries_count_as_evictions() -> TestResult {
    let names: Vec<String> = (0..100).map(|i| format!("canary-file-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let root = files(&refs)?;

    let capture = MetricsCapture::new();
    let bounded = builder(root.path(), &capture).cache_capacity(32).build()?;
    for name in &names {
        bounded.resolve_file_sync(format!("file://canary-dir/{name}").as_str())?;
    }
    let pushed_out = 100 - bounded.cache_len();
    assert!(pushed_out >= 68, "{pushed_out}");
    let points = capture.points()?;
    assert_eq!(points.sum(metric::CACHE_EVICTIONS), pushed_out as f64);

    let capture = MetricsCapture::new();
    let expiring = builder(root.path(), &capture)
        .cache_ttl(Duration::from_millis(50))
        .build()?;
    for name in &names[..3] {
        expiring.resolve_file_sync(format!("file://canary-dir/{name}").as_str())?;
    }
    assert_eq!(capture.points()?.sum(metric::CACHE_EVICTIONS), 0.0);
    // The sweep runs at most once a second, from a hit: past it, a fresh entry's hit sweeps
    // the three expired ones.
    std::thread::sleep(Duration::from_millis(1100));
    let fresh = "file://canary-dir/canary-file-99";
    expiring.resolve_file_sync(fresh)?;
    expiring.resolve_file_sync(fresh)?;
    assert_eq!(expiring.cache_len(), 1);
    let points = capture.points()?;
    assert_eq!(points.sum(metric::CACHE_EVICTIONS), 3.0);
    assert_closed_labels(&points);
    Ok(())
}

/// The spans a subscriber was asked to create: name and level.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<(&'static str, tracing::Level)>>>);

impl Spans {
    fn resolves(&self) -> Vec<tracing::Level> {
        let spans = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        spans
            .iter()
            .filter(|(name, _)| *name == names::span::RESOLVE)
            .map(|(_, level)| *level)
            .collect()
    }

    fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: Context<'_, S>,
    ) {
        let metadata = attrs.metadata();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((metadata.name(), *metadata.level()));
    }
}

/// Under a DEBUG filter a miss creates one INFO `secret_resolve` span and a fresh hit none;
/// under TRACE the hit's span is there, at TRACE.
#[test]
fn a_fresh_hit_creates_no_span_under_debug() -> TestResult {
    let root = files(&["canary-file"])?;
    let capture = MetricsCapture::new();
    let client = builder(root.path(), &capture).build()?;
    let uri = "file://canary-dir/canary-file";
    let spans = Spans::default();

    let debug = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::DEBUG)
        .with(spans.clone());
    tracing::subscriber::with_default(debug, || -> Result<(), Error> {
        client.resolve_file_sync(uri)?;
        assert_eq!(spans.resolves(), [tracing::Level::INFO], "the miss");
        spans.clear();
        client.resolve_file_sync(uri)?;
        client.resolve_blocking(uri)?;
        assert!(
            spans.resolves().is_empty(),
            "the hits: {:?}",
            spans.resolves()
        );
        Ok(())
    })?;

    let trace = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::TRACE)
        .with(spans.clone());
    tracing::subscriber::with_default(trace, || client.resolve_file_sync(uri))?;
    assert_eq!(
        spans.resolves(),
        [tracing::Level::TRACE],
        "a hit under TRACE"
    );
    assert_eq!(capture.points()?.sum(metric::CACHE_HITS), 3.0);
    Ok(())
}

/// The KV v2 providers the builder makes record through the client's metrics (a config given
/// its own keeps them).
#[cfg(any(feature = "openbao", feature = "hashicorp"))]
#[test]
fn kv2_providers_record_through_the_clients_metrics() -> TestResult {
    let root = files(&[])?;
    let capture = MetricsCapture::new();
    let client = builder(root.path(), &capture)
        .bootstrap(crate::BootstrapConfig::token("http://127.0.0.1:1", "t"))
        .build()?;
    let configs: Vec<_> = [Provider::OpenBao, Provider::HashiCorp]
        .into_iter()
        .filter_map(|p| client.kv2_config(p))
        .collect();
    assert!(!configs.is_empty());
    assert!(configs.iter().all(|c| c.metrics.is_some()));
    Ok(())
}

/// A provider of one's own (`db`) that answers only after a minute.
#[derive(Debug, Default)]
struct Sluggish;

impl SecretProvider for Sluggish {
    fn name(&self) -> &'static str {
        "canary-provider-name"
    }

    fn read<'a>(&'a self, _uri: &'a SecretUri) -> ReadFuture<'a> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(SecretValue::from_text("canary-value"))
        })
    }
}

/// A read aborted at the resolve deadline is the provider's `TIMEOUT`; a caller that gives
/// up first (its own timeout drops the resolve) is no provider error at all.
#[test]
fn a_deadline_counts_a_timeout_and_a_caller_giving_up_counts_nothing() -> TestResult {
    let root = files(&[])?;
    let runtime = runtime()?;
    let client = |capture: &MetricsCapture, deadline: Duration| {
        builder(root.path(), capture)
            .provider(Provider::Db, Arc::new(Sluggish) as Arc<dyn SecretProvider>)
            .resolve_deadline(deadline)
            .build()
    };
    let uri = "db+cred://pg/canary-file";
    let timeout = [("provider", "db"), ("code", "TIMEOUT")];

    let capture = MetricsCapture::new();
    let bounded = client(&capture, Duration::from_millis(100))?;
    let error = runtime
        .block_on(bounded.resolve(uri))
        .err()
        .ok_or("a read past its deadline succeeded")?;
    assert_eq!(error.code(), "TIMEOUT");
    let points = capture.points()?;
    assert_eq!(points.sum_where(metric::PROVIDER_ERRORS, &timeout), 1.0);
    assert_closed_labels(&points);

    let capture = MetricsCapture::new();
    let patient = client(&capture, Duration::from_secs(30))?;
    let gave_up = runtime.block_on(async {
        tokio::time::timeout(Duration::from_millis(100), patient.resolve(uri)).await
    });
    assert!(gave_up.is_err(), "the caller's own timeout fired");
    // The aborted read task is dropped on the client's runtime: give it a moment.
    std::thread::sleep(Duration::from_millis(200));
    let points = capture.points()?;
    assert_eq!(points.sum(metric::PROVIDER_ERRORS), 0.0, "{points:?}");
    Ok(())
}

/// The `mount` field of every `secret_resolve` span, as recorded.
#[derive(Clone, Default)]
struct Mounts(Arc<Mutex<Vec<Option<String>>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Mounts {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: Context<'_, S>,
    ) {
        struct Visit(Option<String>);
        impl tracing::field::Visit for Visit {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "mount" {
                    self.0 = Some(value.to_owned());
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                if field.name() == "mount" {
                    self.0 = Some(format!("{value:?}"));
                }
            }
        }
        if attrs.metadata().name() == names::span::RESOLVE {
            let mut visit = Visit(None);
            attrs.record(&mut visit);
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(visit.0);
        }
    }
}

/// A mount outside the allowed ones is refused, and its name (a caller's path segment) is
/// not in the span; an allowed mount is.
#[test]
fn a_mount_the_tenant_may_not_read_stays_out_of_the_span() -> TestResult {
    let root = files(&["canary-file"])?;
    let capture = MetricsCapture::new();
    let client = builder(root.path(), &capture).build()?;
    let runtime = runtime()?;
    let mounts = Mounts::default();
    let subscriber = tracing_subscriber::registry().with(mounts.clone());
    tracing::subscriber::with_default(subscriber, || {
        for uri in [
            "file://canary-payroll/x.json",
            "openbao+kv2://canary-payroll/app#k",
        ] {
            let sync = client.resolve_file_sync(uri).err().map(|e| e.code());
            let run = runtime
                .block_on(client.resolve(uri))
                .err()
                .map(|e| e.code());
            assert!(
                sync.is_some() && run == Some("TENANT_MOUNT_MISMATCH"),
                "{uri}"
            );
        }
        client.resolve_file_sync("file://canary-dir/canary-file")
    })?;
    let seen = mounts
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert!(seen.len() >= 4, "{seen:?}");
    assert!(
        seen.iter().flatten().all(|m| !m.contains("canary-payroll")),
        "{seen:?}"
    );
    assert_eq!(
        seen.last(),
        Some(&Some("canary-dir".to_owned())),
        "{seen:?}"
    );
    Ok(())
}
