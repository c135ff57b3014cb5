//! [`InSpan::in_span`]: a future polled inside a span, the one way the SDK attaches a span to
//! a future.
//!
//! `tracing::Instrument` enters the span for each poll and once more to drop the future. On
//! the request path that last entry costs as much as a poll's (the registry, every layer's
//! filter, an OpenTelemetry layer's end time) and shows nothing: the futures dropped here hold
//! no spans or events of their own. This polls inside the span and drops outside it, with no
//! allocation (`pin-project-lite`, which tokio already uses, projects the pin).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tracing::Span;

/// Polling a future inside a span.
pub(crate) trait InSpan: Future + Sized {
    /// `self`, each poll inside `span` (nothing is entered for a disabled span).
    fn in_span(self, span: Span) -> Polled<Self> {
        Polled { span, inner: self }
    }
}

impl<F: Future> InSpan for F {}

pin_project_lite::pin_project! {
    /// A future each poll of which runs inside a span ([`InSpan::in_span`]).
    pub(crate) struct Polled<F> {
        span: Span,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for Polled<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        this.inner.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the current span's name at each poll and when dropped.
    struct Probe {
        polls: usize,
        seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    }

    /// The current span's name, or `none`.
    fn current() -> String {
        Span::current()
            .metadata()
            .map_or("none", |m| m.name())
            .to_owned()
    }

    impl Probe {
        fn note(&self, what: String) {
            self.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(what);
        }
    }

    impl Future for Probe {
        type Output = ();
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<()> {
            self.note(current());
            self.polls += 1;
            if self.polls < 2 {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.note(format!("drop:{}", current()));
        }
    }

    /// Every poll runs inside the span and the drop outside it; a disabled span is not
    /// entered.
    #[test]
    fn polls_run_inside_the_span_and_the_drop_outside() -> Result<(), Box<dyn std::error::Error>> {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("outer");
            let probe = Probe {
                polls: 0,
                seen: std::sync::Arc::clone(&seen),
            };
            runtime.block_on(probe.in_span(span));
            runtime.block_on(
                Probe {
                    polls: 0,
                    seen: std::sync::Arc::clone(&seen),
                }
                .in_span(Span::none()),
            );
        });
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(
            seen,
            ["outer", "outer", "drop:none", "none", "none", "drop:none"],
            "each poll inside the span, the drop outside; a disabled span entered by none"
        );
        Ok(())
    }
}
