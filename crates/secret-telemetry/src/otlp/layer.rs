//! [`SpanLayer`]: the `tracing` layer that turns the SDK's spans into OpenTelemetry spans and
//! hands them, ended, to the pipeline's batch span processor.
//!
//! It does what the SDK's spans need and no more, which makes a span about half as dear as
//! through `tracing-opentelemetry` and the SDK's tracer (measured on the request path, see
//! `docs/telemetry.md`): the span's OpenTelemetry data is built once, when the `tracing` span
//! closes, straight into the [`SpanData`] the exporter takes; nothing is done on enter or
//! exit; no OpenTelemetry [`Context`] is made or made current.
//!
//! - **Ids and parents.** A span whose nearest exported ancestor (per this layer's filter) is
//!   a span of this layer joins its trace as its child; any other span starts a trace.
//! - **Sampling.** The root of each trace asks the OpenTelemetry SDK's sampler as configured by
//!   `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (default: always on); its descendants
//!   follow that decision, which is what every standard sampler decides for them. A span that
//!   is not sampled records nothing.
//! - **Fields** become attributes (strings, integers, floats, booleans; anything else its
//!   `Debug` text), once each: a field recorded again replaces its value. `otel.name` renames
//!   the span, `otel.kind` sets its kind (`client`, `server`, `producer`, `consumer`,
//!   `internal`), `otel.status_code` its status (`error`, `ok`); none is an attribute.
//! - **Events** (log lines inside a span) are not exported as span events: logs go to the
//!   program's log pipeline, and a span carries only the SDK's closed-set attributes.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, IdGenerator as _, RandomIdGenerator, SamplingDecision, ShouldSample,
    SpanData, SpanEvents, SpanLinks, SpanProcessor,
};
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The pipeline's batch span processor, shared by the tracer provider (which flushes and
/// shuts it down) and the [`SpanLayer`] (which hands it ended spans).
#[derive(Debug, Clone)]
pub(super) struct SharedProcessor(pub(super) Arc<BatchSpanProcessor>);

impl SpanProcessor for SharedProcessor {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.0.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.0.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    // The resource was given to the processor before it was shared.
}

/// Turns `tracing` spans into OpenTelemetry spans ([module docs](self)).
pub(super) struct SpanLayer {
    processor: Arc<BatchSpanProcessor>,
    /// `None`: every root is sampled (the default sampler), without asking.
    sampler: Option<Arc<dyn ShouldSample>>,
    scope: InstrumentationScope,
    ids: RandomIdGenerator,
}

impl SpanLayer {
    pub(super) fn new(
        processor: Arc<BatchSpanProcessor>,
        sampler: Option<Arc<dyn ShouldSample>>,
        scope: InstrumentationScope,
    ) -> Self {
        Self {
            processor,
            sampler,
            scope,
            ids: RandomIdGenerator::default(),
        }
    }
}

/// A span of this layer while it is open, in the `tracing` span's extensions.
struct Open {
    trace_id: TraceId,
    span_id: SpanId,
    /// `None` for a span not sampled: it records nothing and is never exported.
    data: Option<Recorded>,
}

/// What a sampled span has recorded so far.
struct Recorded {
    parent: SpanId,
    name: Cow<'static, str>,
    kind: SpanKind,
    status: Status,
    start: SystemTime,
    attributes: Vec<KeyValue>,
}

impl Recorded {
    fn set(&mut self, key: &'static str, value: Value) {
        match key {
            "otel.name" => self.name = Cow::Owned(value.as_str().into_owned()),
            "otel.kind" => {
                self.kind = match value.as_str().as_ref() {
                    "client" => SpanKind::Client,
                    "server" => SpanKind::Server,
                    "producer" => SpanKind::Producer,
                    "consumer" => SpanKind::Consumer,
                    _ => SpanKind::Internal,
                };
            }
            "otel.status_code" => {
                self.status = match value.as_str().as_ref() {
                    "error" | "ERROR" | "Error" => Status::error(""),
                    "ok" | "OK" | "Ok" => Status::Ok,
                    _ => Status::Unset,
                };
            }
            _ => {
                if let Some(kv) = self.attributes.iter_mut().find(|kv| kv.key.as_str() == key) {
                    kv.value = value;
                } else {
                    self.attributes.push(KeyValue::new(key, value));
                }
            }
        }
    }
}

impl Visit for Recorded {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), interned(field.name(), value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), Value::Bool(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), Value::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        // OpenTelemetry has no unsigned integers: a value beyond i64 is its text.
        match i64::try_from(value) {
            Ok(v) => self.set(field.name(), Value::I64(v)),
            Err(_) => self.set(field.name(), Value::from(value.to_string())),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), Value::F64(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.set(field.name(), Value::from(format!("{value:?}")));
    }
}

/// The most bytes of a text attribute [`interned`] keeps.
const INTERNED_MAX: usize = 64;

/// How many texts each thread keeps (a power of two).
const INTERNED_SLOTS: usize = 32;

thread_local! {
    /// The last texts this thread made attributes of, shared by the spans that repeat them:
    /// one slot for each field name and text length (two texts that share a slot take turns).
    static RECENT: std::cell::RefCell<[Option<Arc<str>>; INTERNED_SLOTS]> =
        const { std::cell::RefCell::new([const { None }; INTERNED_SLOTS]) };
}

/// `text`, the value of field `name`, as an attribute value, shared with the last one of this
/// thread in its slot when they are equal: the SDK's span attributes (provider, mount, keyed
/// reference) repeat from one request to the next, and a shared text costs a reference
/// count where a copy costs an allocation here and a free on the exporter's thread. The
/// slot is found from the name's address (a `&'static str` of its callsite) and the text's
/// length, and compared once.
fn interned(name: &'static str, text: &str) -> Value {
    if text.len() > INTERNED_MAX {
        return Value::from(text.to_owned());
    }
    // Fibonacci hashing of the two; which slot does not matter for correctness, only how
    // often equal texts meet in one.
    let mixed = (name.as_ptr() as usize ^ text.len().rotate_left(17))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize);
    let slot = mixed >> (usize::BITS - INTERNED_SLOTS.trailing_zeros());
    RECENT
        .try_with(|recent| {
            let slot = &mut recent.borrow_mut()[slot];
            match slot {
                Some(known) if **known == *text => Arc::clone(known),
                _ => Arc::clone(slot.insert(Arc::from(text))),
            }
        })
        .map_or_else(|_| Value::from(text.to_owned()), Value::from)
}

impl<S> tracing_subscriber::Layer<S> for SpanLayer
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        // The nearest ancestor this layer's filter let through.
        let parent = span.parent().and_then(|parent| {
            parent
                .extensions()
                .get::<Open>()
                .map(|open| (open.trace_id, open.span_id, open.data.is_some()))
        });
        let span_id = self.ids.new_span_id();
        let meta = attrs.metadata();
        let (trace_id, parent_id, sampled) = match parent {
            Some((trace_id, parent_id, sampled)) => (trace_id, parent_id, sampled),
            None => {
                let trace_id = self.ids.new_trace_id();
                let sampled = self.sampler.as_ref().is_none_or(|sampler| {
                    sampler
                        .should_sample(None, trace_id, meta.name(), &SpanKind::Internal, &[], &[])
                        .decision
                        == SamplingDecision::RecordAndSample
                });
                (trace_id, SpanId::INVALID, sampled)
            }
        };
        let data = sampled.then(|| {
            let mut recorded = Recorded {
                parent: parent_id,
                name: Cow::Borrowed(meta.name()),
                kind: SpanKind::Internal,
                status: Status::Unset,
                start: SystemTime::now(),
                attributes: Vec::with_capacity(meta.fields().len()),
            };
            attrs.record(&mut recorded);
            recorded
        });
        span.extensions_mut().insert(Open {
            trace_id,
            span_id,
            data,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(open) = span.extensions_mut().get_mut::<Open>()
            && let Some(data) = &mut open.data
        {
            values.record(data);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(Open {
            trace_id,
            span_id,
            data: Some(data),
        }) = span.extensions_mut().remove::<Open>()
        else {
            return;
        };
        let Recorded {
            parent,
            name,
            kind,
            status,
            start,
            attributes,
        } = data;
        self.processor.on_end(SpanData {
            span_context: SpanContext::new(
                trace_id,
                span_id,
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: parent,
            parent_span_is_remote: false,
            span_kind: kind,
            name,
            start_time: start,
            end_time: SystemTime::now(),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: self.scope.clone(),
        });
    }
}
