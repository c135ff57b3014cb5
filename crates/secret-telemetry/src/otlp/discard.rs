//! Exporters that drop everything, for benchmarks and tests: the pipeline does all its work
//! (spans built, batched and handed over; metrics aggregated and collected) except the I/O.

use std::future::{Future, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Drops span batches, counting the spans.
#[derive(Debug, Clone, Default)]
pub(crate) struct DiscardSpans(pub(crate) Arc<AtomicU64>);

impl SpanExporter for DiscardSpans {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        ready(Ok(()))
    }
}

/// Drops metric exports.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DiscardMetrics;

impl PushMetricExporter for DiscardMetrics {
    fn export(&self, _metrics: &ResourceMetrics) -> impl Future<Output = OTelSdkResult> + Send {
        ready(Ok(()))
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}
