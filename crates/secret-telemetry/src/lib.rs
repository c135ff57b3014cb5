//! Telemetry for secrets-sdk: OpenTelemetry metrics whose labels come from closed sets only,
//! the names of every metric, span and attribute the SDK emits, and (feature `otlp`) an OTLP
//! exporter over the workspace's one HTTP/TLS stack.
//!
//! The SDK's crates record through one [`Metrics`] per client, built from the global meter
//! provider (or a [`Meter`](opentelemetry::metrics::Meter) of one's own). Labels are
//! `&'static str` values from the sets in [`names`]: the provider, the cache outcome, a stable
//! error code, a decision. Never a path, URI, subject, key or token, so no label can name a
//! secret and no label set grows with traffic.
//!
//! ```
//! use std::time::Duration;
//! use secret_telemetry::{Metrics, names};
//!
//! // Without a meter provider installed every call is a no-op; with one, these reach it.
//! let metrics = Metrics::global();
//! let hits = metrics.hit_recorder("file"); // bound once: the hit path does no lookup
//! hits.record(Duration::from_nanos(80));
//! metrics.resolve("openbao", "miss", "ok", Duration::from_millis(3));
//! metrics.provider_error("openbao", "UNAVAILABLE");
//! assert!(names::CACHE_OUTCOMES.contains(&"miss"));
//! assert_eq!(names::metric::RESOLVE_DURATION, "secrets.resolve.duration");
//! ```
//!
//! # Features
//! - `otlp`: [`otlp`] installs OTLP/HTTP (protobuf) exporters for traces and metrics,
//!   configured by the standard `OTEL_*` variables or by code, sending through `secret-http`
//!   (rustls with ring), and the `tracing` layer that turns the SDK's spans into OTLP spans;
//!   [`otlp::Pipeline::discarding`] does the same work with exporters that drop everything,
//!   for benchmarks.
//! - `census`: tests only; see [`census`].
//! - `testing`: `testing::MetricsCapture`, metrics captured in memory for tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bound;
pub mod census;
mod metrics;
pub mod names;
#[cfg(feature = "otlp")]
pub mod otlp;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use metrics::{DURATION_BUCKETS, HitRecorder, Metrics, SCOPE};
