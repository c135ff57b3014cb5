//! Metrics captured in memory, for tests (feature `testing`): a meter provider of its own
//! whose exports a test reads back as flat [`Point`]s.

use std::fmt;

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

use crate::{Metrics, SCOPE};

/// A meter provider of its own with an in-memory exporter.
pub struct MetricsCapture {
    provider: SdkMeterProvider,
    exporter: InMemoryMetricExporter,
}

impl fmt::Debug for MetricsCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsCapture").finish_non_exhaustive()
    }
}

impl Default for MetricsCapture {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsCapture {
    /// A fresh provider; nothing is installed globally.
    #[must_use]
    pub fn new() -> Self {
        let exporter = InMemoryMetricExporter::default();
        let reader = PeriodicReader::builder(exporter.clone()).build();
        Self {
            provider: SdkMeterProvider::builder().with_reader(reader).build(),
            exporter,
        }
    }

    /// The SDK's instruments, recording into this capture.
    #[must_use]
    pub fn metrics(&self) -> Metrics {
        Metrics::new(&self.provider.meter(SCOPE))
    }

    /// The provider, to install globally (`opentelemetry::global::set_meter_provider`).
    #[must_use]
    pub fn provider(&self) -> SdkMeterProvider {
        self.provider.clone()
    }

    /// Flushes and returns every data point exported so far (cumulative).
    ///
    /// # Errors
    /// The provider could not flush.
    pub fn points(&self) -> Result<Points, opentelemetry_sdk::error::OTelSdkError> {
        self.provider.force_flush()?;
        let exported = self
            .exporter
            .get_finished_metrics()
            .map_err(|e| opentelemetry_sdk::error::OTelSdkError::InternalFailure(e.to_string()))?;
        // Cumulative temporality: the latest export holds every point.
        Ok(Points(exported.last().map(points).unwrap_or_default()))
    }
}

/// One data point: a metric, its labels (sorted by key), and its value (a sum, a gauge's value
/// or a histogram's count).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The metric name.
    pub metric: String,
    /// `(key, value)`, sorted by key.
    pub labels: Vec<(String, String)>,
    /// A counter's sum, a gauge's value, or a histogram's count.
    pub value: f64,
}

impl Point {
    /// The value of label `key`.
    #[must_use]
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The data points of one export.
#[derive(Debug, Clone, Default)]
pub struct Points(pub Vec<Point>);

impl Points {
    /// The points of `metric`.
    #[must_use]
    pub fn named(&self, metric: &str) -> Vec<&Point> {
        self.0.iter().filter(|p| p.metric == metric).collect()
    }

    /// The sum of the values of `metric` over all its label sets.
    #[must_use]
    pub fn sum(&self, metric: &str) -> f64 {
        self.named(metric).iter().map(|p| p.value).sum()
    }

    /// The sum of the values of `metric` whose labels include every `(key, value)` of `with`.
    #[must_use]
    pub fn sum_where(&self, metric: &str, with: &[(&str, &str)]) -> f64 {
        self.named(metric)
            .iter()
            .filter(|p| with.iter().all(|(k, v)| p.label(k) == Some(v)))
            .map(|p| p.value)
            .sum()
    }
}

#[allow(clippy::cast_precision_loss)]
fn points(resource: &ResourceMetrics) -> Vec<Point> {
    let mut out = Vec::new();
    for scope in resource.scope_metrics() {
        for metric in scope.metrics() {
            let mut push = |attrs: &mut dyn Iterator<Item = &KeyValue>, value: f64| {
                let mut labels: Vec<(String, String)> = attrs
                    .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                    .collect();
                labels.sort();
                out.push(Point {
                    metric: metric.name().to_owned(),
                    labels,
                    value,
                });
            };
            match metric.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                    for p in sum.data_points() {
                        push(&mut p.attributes(), p.value() as f64);
                    }
                }
                AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                    for p in h.data_points() {
                        push(&mut p.attributes(), p.count() as f64);
                    }
                }
                AggregatedMetrics::F64(MetricData::Gauge(g)) => {
                    for p in g.data_points() {
                        push(&mut p.attributes(), p.value());
                    }
                }
                AggregatedMetrics::U64(MetricData::Gauge(g)) => {
                    for p in g.data_points() {
                        push(&mut p.attributes(), p.value() as f64);
                    }
                }
                _ => {}
            }
        }
    }
    out
}
