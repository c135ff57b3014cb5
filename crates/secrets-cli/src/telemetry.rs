//! The command's telemetry: logs on stderr with `RUST_LOG`, OTLP export of the SDK's spans
//! and metrics with `OTEL_EXPORTER_OTLP_ENDPOINT`, both layers in one `tracing` registry.
//!
//! [`init`] runs before any client is built (so the clients' metrics bind to the installed
//! meter provider); [`finish`] flushes and shuts the export down, waiting at most about
//! `OTEL_EXPORTER_OTLP_TIMEOUT`, and runs on every way out: after the command in
//! [`run`](crate::run), and in `exec` just before the process image is replaced.
//!
//! Telemetry never changes a command's outcome: a bad `OTEL_*` setting, a collector that is
//! down or never answers, are one line on stderr (naming the setting, never a value) and the
//! command runs and exits as it would without.

use std::io::{self, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};

use secrets_sdk::telemetry::otlp::{ENDPOINT_ENV, OtlpConfig, OtlpGuard, Pipeline};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The service name when `OTEL_SERVICE_NAME` is not set.
pub(crate) const SERVICE_NAME: &str = "secrets";

/// `OTEL_SDK_DISABLED=true` turns the export off even with an endpoint set (the
/// OpenTelemetry convention).
const SDK_DISABLED_ENV: &str = "OTEL_SDK_DISABLED";

/// The installed export, until [`finish`] takes it.
static GUARD: Mutex<Option<OtlpGuard>> = Mutex::new(None);

fn guard() -> MutexGuard<'static, Option<OtlpGuard>> {
    GUARD.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sets the subscriber (a stderr log layer filtered by `RUST_LOG`, an OTLP layer filtered by
/// `SECRETS_OTEL_FILTER`, either or both) and installs the export.
pub(crate) fn init() {
    let logs = log_filter().map(|filter| {
        tracing_subscriber::fmt::layer()
            .with_writer(io::stderr)
            .with_filter(filter)
    });
    let pipeline = pipeline();
    if logs.is_none() && pipeline.is_none() {
        return;
    }
    let otlp = pipeline.as_ref().map(|pipeline| pipeline.layer());
    // Fails only if a subscriber is already set (in-process tests): keep that one.
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(otlp)
        .try_init();
    if let Some(pipeline) = pipeline {
        *guard() = Some(pipeline.install());
    }
}

/// Flushes and shuts the export down (once; later calls do nothing). A failure is one line
/// on stderr; it never changes the exit status.
pub(crate) fn finish() {
    let installed = guard().take();
    if let Some(installed) = installed
        && let Err(e) = installed.shutdown()
    {
        let _ = writeln!(io::stderr(), "secrets: telemetry: {e}");
    }
}

/// With `RUST_LOG` set, the filter of the stderr logs (stdout carries values and reports).
/// The SDK's spans and events never carry a value, a token or a secret path.
fn log_filter() -> Option<tracing_subscriber::EnvFilter> {
    std::env::var_os("RUST_LOG")?;
    match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => Some(filter),
        Err(e) => {
            let _ = writeln!(io::stderr(), "secrets: ignoring RUST_LOG: {e}");
            None
        }
    }
}

/// The OTLP pipeline when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is
/// not `true`), configured by the standard variables, service name `secrets` unless
/// `OTEL_SERVICE_NAME` says otherwise. A bad setting: one line on stderr, no export.
fn pipeline() -> Option<Pipeline> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    if !set(ENDPOINT_ENV) {
        return None;
    }
    if std::env::var(SDK_DISABLED_ENV).is_ok_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return None;
    }
    let built = OtlpConfig::default()
        .with_service_name(SERVICE_NAME)
        .read_process_env()
        .and_then(|config| Pipeline::new(&config));
    match built {
        Ok(pipeline) => Some(pipeline),
        Err(e) => {
            let _ = writeln!(io::stderr(), "secrets: telemetry disabled: {e}");
            None
        }
    }
}
