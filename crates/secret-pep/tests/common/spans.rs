//! A `tracing` layer that keeps every span (name, parent, fields as recorded) and every
//! event's fields, for tests that assert span fields and that no canary reaches them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// One closed span.
#[derive(Debug, Clone, Default)]
pub struct CapturedSpan {
    /// Its name.
    pub name: &'static str,
    /// Its parent's name, if any.
    pub parent: Option<&'static str>,
    /// Its fields, as recorded (strings unquoted).
    pub fields: BTreeMap<String, String>,
}

impl CapturedSpan {
    /// The value of field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct Captured {
    spans: Vec<CapturedSpan>,
    events: Vec<BTreeMap<String, String>>,
}

/// Clones share what was captured.
#[derive(Clone, Default)]
pub struct SpanCapture(Arc<Mutex<Captured>>);

impl fmt::Debug for SpanCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SpanCapture")
    }
}

impl SpanCapture {
    /// The spans closed so far, in closing order.
    pub fn spans(&self) -> Vec<CapturedSpan> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .spans
            .clone()
    }

    /// The closed spans named `name`.
    pub fn named(&self, name: &str) -> Vec<CapturedSpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// Every span's name and fields and every event's fields, as one text to search.
    pub fn text(&self) -> String {
        let captured = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        for span in &captured.spans {
            out.push_str(&format!("{} {:?}\n", span.name, span.fields));
        }
        for event in &captured.events {
            out.push_str(&format!("event {event:?}\n"));
        }
        out
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanCapture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut captured = CapturedSpan {
            name: span.name(),
            parent: span.parent().map(|p| p.name()),
            fields: BTreeMap::new(),
        };
        attrs.record(&mut Fields(&mut captured.fields));
        span.extensions_mut().insert(captured);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(captured) = span.extensions_mut().get_mut::<CapturedSpan>() {
            values.record(&mut Fields(&mut captured.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .events
            .push(fields);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if let Some(captured) = span.extensions_mut().remove::<CapturedSpan>() {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .spans
                .push(captured);
        }
    }
}
