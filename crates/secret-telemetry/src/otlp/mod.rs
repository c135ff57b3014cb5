//! OTLP export (feature `otlp`): the SDK's spans and metrics sent to an OpenTelemetry
//! Collector (or any OTLP/HTTP receiver) as protobuf over HTTP, through the workspace's one
//! HTTP/TLS stack.
//!
//! # What it installs
//! A [`Pipeline`] holds an OpenTelemetry tracer provider (a batch span processor) and a meter
//! provider (a periodic reader), both exporting with `opentelemetry-otlp`'s http/protobuf
//! exporters, whose requests go through `secret-http` (rustls with ring, plain `http://` to
//! loopback only unless allowed, bounded response bodies, a timeout on every request). No
//! reqwest, no tonic, no second TLS stack. The SDK exports from its own threads; the requests
//! run on the pipeline's own one-thread tokio runtime, so nothing needs a runtime of the
//! caller's.
//!
//! - [`Pipeline::layer`]: the `tracing` layer that turns the SDK's spans into OpenTelemetry
//!   spans (each exported span's data built once, when it closes, and handed to the batch
//!   span processor; parents from `tracing`'s span tree; the root of each trace asks the
//!   `OTEL_TRACES_SAMPLER` sampler, its descendants follow; fields become attributes and
//!   `otel.name`, `otel.kind`, `otel.status_code` set name, kind and status; log events are
//!   not exported as span events), with its own filter (default `info`, so the SDK's INFO
//!   spans `secret_resolve` and `get_credentials` are exported and its DEBUG spans are not;
//!   `SECRETS_OTEL_FILTER=debug` adds the provider reads, logins, PEP decisions, PDP calls and
//!   the HTTP client spans, `info,secret_http=debug` the HTTP client spans alone). Compose it
//!   with your other layers in one registry.
//! - [`Pipeline::install`]: sets the global meter provider (so [`Metrics::global`], and so
//!   every client built *afterwards*, records into it) and the global tracer provider, and
//!   returns the [`OtlpGuard`].
//! - [`Pipeline::init`]: both at once, for a program without a subscriber of its own.
//! - [`OtlpGuard`]: flushes and shuts both providers down on [`shutdown`](OtlpGuard::shutdown)
//!   or when dropped, waiting at most about the export timeout: an endpoint that accepts and
//!   never answers cannot hang the program's exit. What was not sent by then is lost.
//! - [`Pipeline::discarding`]: the same layer and providers with exporters that drop
//!   everything, for benchmarks (the cost of telemetry without the network) and tests.
//! - [`Pipeline::with_span_exporter`]: the same layer and batch span processor into a span
//!   exporter of yours (an in-memory one in tests, as the workspace's leak suite does), metrics
//!   dropped; [`Pipeline::force_flush`] hands over what was batched without installing it.
//!
//! The exporter's own requests are never traced or logged (they would be exported again).
//! Spans carry only the SDK's non-sensitive attributes (provider, mount, cache outcome,
//! codes, status classes, counts, keyed references); source locations, thread names and
//! busy/idle times are not added.
//!
//! # Configuration
//! [`OtlpConfig`] reads the standard variables and can be set in code, later settings over
//! earlier ones ([`OtlpConfig::read_env`]):
//!
//! | Variable | Meaning | Default |
//! |---|---|---|
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL; `/v1/traces` and `/v1/metrics` are appended | `http://localhost:4318` |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` | full URL of one signal, used as is | |
//! | `OTEL_EXPORTER_OTLP_HEADERS` | `key=value,…`, values percent-encoded; may hold a token, never logged or shown | none |
//! | `OTEL_SERVICE_NAME` | `service.name` | `unknown_service` (the CLI: `secrets`) |
//! | `OTEL_EXPORTER_OTLP_TIMEOUT` | milliseconds per export, and the bound on shutdown | `10000` |
//! | `OTEL_METRIC_EXPORT_INTERVAL` | milliseconds between metric exports | `60000` |
//! | `OTEL_EXPORTER_OTLP_PROTOCOL` | only `http/protobuf` is served | `http/protobuf` |
//! | `OTEL_EXPORTER_OTLP_CERTIFICATE` | PEM CA bundle; replaces the webpki roots | webpki roots |
//! | `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`, `OTEL_EXPORTER_OTLP_CLIENT_KEY` | PEM client certificate and key (mutual TLS), both or neither | none |
//! | `SECRETS_OTEL_FILTER` | which spans are exported (`tracing` filter directives) | `info` |
//! | `SECRETS_OTEL_ALLOW_INSECURE_HTTP` | `true`: plain `http://` to a host that is not loopback | `false` |
//!
//! The OpenTelemetry SDK itself still reads `OTEL_BSP_*` (batch sizes and delay) and
//! `OTEL_TRACES_SAMPLER*` from the process environment. Metrics are cumulative.
//!
//! Errors ([`OtlpError`]) name the setting by its variable, never its value.
//!
//! # Example
//! ```
//! use std::time::Duration;
//! use secret_telemetry::{Metrics, otlp::Pipeline};
//! use tracing_subscriber::prelude::*;
//!
//! // Benchmarks and tests: all the work of telemetry, nothing sent.
//! let pipeline = Pipeline::discarding();
//! let subscriber = tracing_subscriber::registry().with(pipeline.layer());
//! let guard = pipeline.install();
//! let metrics = Metrics::global(); // built after install: records into the pipeline
//! tracing::subscriber::with_default(subscriber, || {
//!     let _span = tracing::info_span!("secret_resolve", provider = "file").entered();
//!     metrics.resolve("file", "miss", "ok", Duration::from_micros(40));
//! });
//! guard.force_flush()?;
//! assert_eq!(guard.discarded_spans(), Some(1));
//! guard.shutdown()?;
//! # Ok::<(), secret_telemetry::otlp::OtlpError>(())
//! ```
//!
//! A service exporting to its collector, configured by the environment:
//!
//! ```no_run
//! use secret_telemetry::otlp::{OtlpConfig, Pipeline};
//! use tracing_subscriber::prelude::*;
//!
//! // `billing` unless OTEL_SERVICE_NAME says otherwise.
//! let config = OtlpConfig::default().with_service_name("billing").read_process_env()?;
//! let pipeline = Pipeline::new(&config)?;
//! let logs = tracing_subscriber::EnvFilter::from_default_env(); // RUST_LOG
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer().with_filter(logs))
//!     .with(pipeline.layer())
//!     .init();
//! let guard = pipeline.install();
//! // … build the SecretsClient / VaultClient now, so its metrics reach the pipeline …
//! if let Err(e) = guard.shutdown() {
//!     eprintln!("telemetry: {e}");
//! }
//! # Ok::<(), secret_telemetry::otlp::OtlpError>(())
//! ```

mod config;
mod discard;
mod error;
mod filter;
mod guard;
mod layer;
mod transport;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::InstrumentationScope;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{
    BatchConfig, BatchSpanProcessor, SdkTracerProvider, ShouldSample, SpanExporter,
    SpanProcessor as _,
};
use secret_http::{ClientCert, ClientConfig, HttpClient, HttpError, Setting, TlsConfig};
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

pub use config::{
    ALLOW_INSECURE_HTTP_ENV, CERTIFICATE_ENV, CLIENT_CERTIFICATE_ENV, CLIENT_KEY_ENV,
    DEFAULT_ENDPOINT, DEFAULT_FILTER, DEFAULT_METRIC_INTERVAL, DEFAULT_SERVICE_NAME,
    DEFAULT_TIMEOUT, ENDPOINT_ENV, FILTER_ENV, HEADERS_ENV, METRIC_INTERVAL_ENV,
    METRICS_ENDPOINT_ENV, OtlpConfig, PROTOCOL_ENV, SERVICE_NAME_ENV, TIMEOUT_ENV,
    TRACES_ENDPOINT_ENV,
};
pub use error::{BoxError, OtlpError};
pub use guard::OtlpGuard;

use crate::{Metrics, SCOPE};
use discard::{DiscardMetrics, DiscardSpans};
use guard::Providers;
use transport::Transport;

/// Tracer and meter providers exporting over OTLP (or discarding), not yet installed.
///
/// Build it with [`new`](Self::new) (or [`discarding`](Self::discarding)), compose
/// [`layer`](Self::layer) into the program's subscriber, then [`install`](Self::install)
/// it. Dropping a pipeline that was never installed shuts it down.
pub struct Pipeline {
    /// The batch span processor the [`layer`](Self::layer) hands ended spans to (the tracer
    /// provider holds it too, and flushes and shuts it down).
    spans: Arc<BatchSpanProcessor>,
    /// The sampler of `OTEL_TRACES_SAMPLER`, asked at the root of each trace; `None` when
    /// it samples every root.
    sampler: Option<Arc<dyn ShouldSample>>,
    filter: String,
    providers: Providers,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("filter", &self.filter)
            .field("discarding", &self.providers.discarded.is_some())
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Checks `config`, reads its TLS files and builds the exporters, the providers and the
    /// exporter's one-thread runtime. No network I/O: a collector that is down shows at the
    /// first export, never here.
    ///
    /// # Errors
    /// `CONFIG` naming the setting: an endpoint that is not `http(s)://host[:port][/path]` (or
    /// carries credentials or a query), plain `http://` to a host that is not loopback without
    /// [`SECRETS_OTEL_ALLOW_INSECURE_HTTP`](ALLOW_INSECURE_HTTP_ENV), an invalid header name or
    /// value, an unreadable CA bundle or client certificate, a zero timeout or interval, a filter
    /// that does not parse. `RUNTIME` when the exporter's thread cannot start.
    pub fn new(config: &OtlpConfig) -> Result<Self, OtlpError> {
        let filter = check(config)?;
        let traces_url = signal_url(
            config.traces_endpoint.as_deref(),
            &config.endpoint,
            "v1/traces",
        );
        let metrics_url = signal_url(
            config.metrics_endpoint.as_deref(),
            &config.endpoint,
            "v1/metrics",
        );
        let traces_setting = if config.traces_endpoint.is_some() {
            TRACES_ENDPOINT_ENV
        } else {
            ENDPOINT_ENV
        };
        let metrics_setting = if config.metrics_endpoint.is_some() {
            METRICS_ENDPOINT_ENV
        } else {
            ENDPOINT_ENV
        };
        check_url(&traces_url, traces_setting, config.allow_insecure_http)?;
        check_url(&metrics_url, metrics_setting, config.allow_insecure_http)?;
        let headers = header_map(config)?;
        let mut tls = TlsConfig::default();
        if let Some(ca) = &config.ca_bundle {
            tls = tls.with_ca_bundle(ca);
        }
        if let Some((cert, key)) = &config.client_cert {
            tls = tls.with_client_cert(ClientCert::new(cert, key));
        }
        let client = HttpClient::new(
            &ClientConfig::new("otlp")
                .with_timeout(config.timeout)
                .with_allow_insecure_http(config.allow_insecure_http)
                .with_tls(tls),
        )
        .map_err(http_config_error)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("secrets-otlp")
            .enable_all()
            .build()
            .map_err(|source| OtlpError::Runtime { source })?;
        let transport = Transport::new(client, runtime.handle().clone(), headers);

        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(transport.clone())
            .with_endpoint(traces_url)
            .with_protocol(Protocol::HttpBinary)
            .with_timeout(config.timeout)
            .build()
            .map_err(exporter_error)?;
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_http_client(transport)
            .with_endpoint(metrics_url)
            .with_protocol(Protocol::HttpBinary)
            .with_timeout(config.timeout)
            .build()
            .map_err(exporter_error)?;
        Ok(Self::assemble(
            config,
            filter,
            (spans, BatchConfig::default()),
            metrics,
            Some(runtime),
            None,
        ))
    }

    /// A pipeline whose exporters drop everything, with the default settings (filter
    /// `info`, one metric collection a minute): spans are still built, batched and handed
    /// to the exporter, metrics still aggregated. For benchmarks and tests.
    #[must_use]
    pub fn discarding() -> Self {
        let config = OtlpConfig::default();
        let filter = config.filter.clone();
        let counter = Arc::default();
        Self::assemble(
            &config,
            filter,
            (DiscardSpans(Arc::clone(&counter)), BatchConfig::default()),
            DiscardMetrics,
            None,
            Some(counter),
        )
    }

    /// [`discarding`](Self::discarding) with `config`'s filter, service name, timeout and
    /// metric interval (its endpoints, headers and TLS files are not used).
    ///
    /// # Errors
    /// `CONFIG` for a filter that does not parse, a zero timeout or interval.
    pub fn discarding_with(config: &OtlpConfig) -> Result<Self, OtlpError> {
        let filter = check(config)?;
        let counter = Arc::default();
        Ok(Self::assemble(
            config,
            filter,
            (DiscardSpans(Arc::clone(&counter)), BatchConfig::default()),
            DiscardMetrics,
            None,
            Some(counter),
        ))
    }

    /// Spans through the same layer and batch span processor into an exporter of yours (an
    /// in-memory one in tests, stdout, another protocol), batched as `batch` says; metrics
    /// aggregated and dropped, as by [`discarding_with`](Self::discarding_with), whose
    /// settings of `config` it uses. [`force_flush`](Self::force_flush) hands the batch over
    /// without installing the pipeline.
    ///
    /// # Errors
    /// `CONFIG` for a filter that does not parse, a zero timeout or interval.
    pub fn with_span_exporter(
        config: &OtlpConfig,
        spans: impl SpanExporter + 'static,
        batch: BatchConfig,
    ) -> Result<Self, OtlpError> {
        let filter = check(config)?;
        Ok(Self::assemble(
            config,
            filter,
            (spans, batch),
            DiscardMetrics,
            None,
            None,
        ))
    }

    /// Exports the spans finished so far and the metrics collected so far, waiting at most
    /// about the export timeout; as [`OtlpGuard::force_flush`], for a pipeline not installed.
    ///
    /// # Errors
    /// `TIMEOUT` when the exporter did not finish in time, `OTLP_EXPORT` when it failed.
    pub fn force_flush(&self) -> Result<(), OtlpError> {
        self.providers.force_flush()
    }

    fn assemble(
        config: &OtlpConfig,
        filter: String,
        (spans, batch): (impl SpanExporter + 'static, BatchConfig),
        metrics: impl opentelemetry_sdk::metrics::exporter::PushMetricExporter,
        runtime: Option<tokio::runtime::Runtime>,
        discarded: Option<Arc<AtomicU64>>,
    ) -> Self {
        let resource = Resource::builder_empty()
            .with_service_name(config.service_name.clone())
            .build();
        // Built before the meter provider is installed: the span processor's own
        // diagnostics counter binds to whatever global provider there is now, not to ours.
        // One batch processor: the provider flushes and shuts it down, the layer hands it
        // ended spans. It takes the resource before it is shared.
        let mut batch = BatchSpanProcessor::builder(spans)
            .with_batch_config(batch)
            .build();
        batch.set_resource(&resource);
        let batch = Arc::new(batch);
        let tracer_provider = SdkTracerProvider::builder()
            .with_span_processor(layer::SharedProcessor(Arc::clone(&batch)))
            .with_resource(resource.clone())
            .build();
        // The SDK's own reading of OTEL_TRACES_SAMPLER(_ARG), unless it samples every root
        // (the default): then the layer need not ask.
        let sampler = (!samples_every_root(std::env::var("OTEL_TRACES_SAMPLER").ok().as_deref()))
            .then(|| {
                Arc::from(opentelemetry_sdk::trace::Config::default().sampler)
                    as Arc<dyn ShouldSample>
            });
        let meter_provider = SdkMeterProvider::builder()
            .with_reader(
                PeriodicReader::builder(metrics)
                    .with_interval(config.metric_interval)
                    .build(),
            )
            .with_resource(resource)
            .build();
        Self {
            spans: batch,
            sampler,
            filter,
            providers: Providers {
                tracer: tracer_provider,
                meter: meter_provider,
                runtime,
                timeout: config.timeout,
                discarded,
                done: false,
            },
        }
    }

    /// The `tracing` layer that exports spans through this pipeline, filtered by the
    /// configured directives. Compose it with other layers (each with its own filter) in one
    /// registry; it can be made more than once.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync + 'static,
    {
        // The directives were parsed when the pipeline was built.
        let filter = filter::SpanFilter::new(&self.filter);
        layer::SpanLayer::new(Arc::clone(&self.spans), self.sampler.clone(), scope())
            .with_filter(filter)
    }

    /// [`Metrics`] recording into this pipeline's meter provider, without installing it.
    #[must_use]
    pub fn metrics(&self) -> Metrics {
        Metrics::new(&self.providers.meter.meter_with_scope(scope()))
    }

    /// Sets the global meter provider (so that [`Metrics::global`], called afterwards,
    /// records into this pipeline) and the global tracer provider.
    #[must_use = "dropping the guard shuts the pipeline down"]
    pub fn install(self) -> OtlpGuard {
        opentelemetry::global::set_meter_provider(self.providers.meter.clone());
        opentelemetry::global::set_tracer_provider(self.providers.tracer.clone());
        OtlpGuard {
            providers: self.providers,
        }
    }

    /// Sets a global `tracing` subscriber holding [`layer`](Self::layer) alone, then
    /// [`install`](Self::install)s. For a program with no subscriber of its own; otherwise
    /// compose the layer into that one.
    ///
    /// # Errors
    /// `SUBSCRIBER_EXISTS` when a global subscriber is already set (nothing is installed).
    pub fn init(self) -> Result<OtlpGuard, OtlpError> {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        tracing_subscriber::registry()
            .with(self.layer())
            .try_init()
            .map_err(|e| OtlpError::SubscriberExists {
                source: Box::new(e),
            })?;
        Ok(self.install())
    }
}

/// Whether `OTEL_TRACES_SAMPLER` (its value, if set) is one the OpenTelemetry SDK reads as
/// sampling the root of every trace: unset, `always_on` or `parentbased_always_on`. Any other
/// value goes to the SDK's own reading (and its warnings), even one it falls back on.
fn samples_every_root(sampler: Option<&str>) -> bool {
    matches!(sampler, None | Some("always_on" | "parentbased_always_on"))
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// Checks what every pipeline uses; returns the filter's directives.
fn check(config: &OtlpConfig) -> Result<String, OtlpError> {
    if config.timeout.is_zero() {
        return Err(OtlpError::config(TIMEOUT_ENV, "must be positive"));
    }
    if config.metric_interval.is_zero() {
        return Err(OtlpError::config(METRIC_INTERVAL_ENV, "must be positive"));
    }
    EnvFilter::try_new(&config.filter)
        .map_err(|e| OtlpError::config_from(FILTER_ENV, "is not a valid tracing filter", e))?;
    Ok(config.filter.clone())
}

/// The signal's own URL as is, or the base URL with `/v1/<signal>` appended.
fn signal_url(own: Option<&str>, base: &str, path: &str) -> String {
    match own {
        Some(url) => url.trim().to_owned(),
        None => format!("{}/{path}", base.trim().trim_end_matches('/')),
    }
}

fn check_url(url: &str, setting: &'static str, allow_insecure_http: bool) -> Result<(), OtlpError> {
    match secret_http::base_url(url, allow_insecure_http) {
        Ok(_) => Ok(()),
        Err(HttpError::InsecureHttp) => Err(OtlpError::config(
            setting,
            concat!(
                "is plain http:// to a host that is not loopback ",
                "(SECRETS_OTEL_ALLOW_INSECURE_HTTP=true allows it)"
            ),
        )),
        Err(e) => Err(OtlpError::config_from(
            setting,
            "must be an http(s)://host[:port][/path] URL without credentials or query",
            e,
        )),
    }
}

fn header_map(config: &OtlpConfig) -> Result<HeaderMap, OtlpError> {
    let mut headers = HeaderMap::with_capacity(config.headers.len());
    for (name, value) in &config.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            OtlpError::config(
                HEADERS_ENV,
                "has a name that is not a valid HTTP header name",
            )
        })?;
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            OtlpError::config(
                HEADERS_ENV,
                "has a value that is not a valid HTTP header value",
            )
        })?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    Ok(headers)
}

/// secret-http's setting, named by the variable that sets it.
fn http_config_error(error: HttpError) -> OtlpError {
    let setting = match &error {
        HttpError::Config { setting, .. } => match setting {
            Setting::CaBundle => CERTIFICATE_ENV,
            Setting::ClientCert => CLIENT_CERTIFICATE_ENV,
            Setting::ClientKey => CLIENT_KEY_ENV,
            Setting::Timeout => TIMEOUT_ENV,
            _ => ENDPOINT_ENV,
        },
        _ => ENDPOINT_ENV,
    };
    let reason = match &error {
        HttpError::Config { reason, .. } => *reason,
        _ => "is unusable",
    };
    OtlpError::config_from(setting, reason, error)
}

fn exporter_error(error: opentelemetry_otlp::ExporterBuildError) -> OtlpError {
    OtlpError::config_from(
        "OTEL_EXPORTER_OTLP_*",
        "was refused by the OpenTelemetry OTLP exporter",
        error,
    )
}

#[cfg(test)]
mod tests;
