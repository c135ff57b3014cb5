//! The queue's `audit_publish` span: one per delivery attempt, with the batch's size, the
//! attempt number, the outcome and a failure's code. Alone in its test binary: the drainer
//! runs on its own thread, so the capturing subscriber is global.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use secret_audit::{
    AuditError, AuditEvent, AuditSink, Auditor, EventType, QueueConfig, QueueSink, RetryConfig,
    Transport,
};
use secret_telemetry::names::span;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

const BOUND: Duration = Duration::from_secs(20);

/// Fails the first `failures` attempts, then delivers.
struct Flaky {
    failures: usize,
}

impl Transport for Flaky {
    fn deliver<'a>(
        &'a mut self,
        _batch: &'a [AuditEvent],
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>> {
        Box::pin(async move {
            if self.failures > 0 {
                self.failures -= 1;
                return Err(AuditError::delivery("broker unreachable", None));
            }
            Ok(())
        })
    }
}

type Closed = Vec<(&'static str, BTreeMap<String, String>)>;

/// Every closed span's name and fields.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Closed>>);

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Fields(BTreeMap::new());
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && let Some(fields) = span.extensions_mut().remove::<Fields>()
        {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((span.name(), fields.0));
        }
    }
}

#[test]
fn every_attempt_is_an_audit_publish_span() -> Result<(), Box<dyn std::error::Error>> {
    let spans = Spans::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(spans.clone()))?;
    let config = QueueConfig::default()
        .with_linger(Duration::from_millis(20))
        .with_retry(
            RetryConfig::default().with_delays(Duration::from_millis(1), Duration::from_millis(5)),
        );
    let sink = QueueSink::new(Flaky { failures: 2 }, config)?;
    let auditor = Auditor::disabled();
    for n in 0..3 {
        sink.publish(
            auditor
                .event(EventType::Read, "acme", Some("alice"), None)
                .with_correlation_id(n.to_string()),
        );
    }
    let report = sink.close(BOUND);
    assert_eq!(report.delivered, 3);

    let seen: Vec<(String, String, String, Option<String>)> = spans
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|(name, _)| *name == span::AUDIT_PUBLISH)
        .map(|(_, f)| {
            let get = |k: &str| f.get(k).cloned().unwrap_or_default();
            (
                get("events"),
                get("attempt"),
                get("outcome"),
                f.get("code").cloned(),
            )
        })
        .collect();
    let error = Some("AUDIT_DELIVERY".to_owned());
    assert_eq!(
        seen,
        [
            ("3".into(), "1".into(), "error".into(), error.clone()),
            ("3".into(), "2".into(), "error".into(), error),
            ("3".into(), "3".into(), "ok".into(), None),
        ]
    );
    Ok(())
}
