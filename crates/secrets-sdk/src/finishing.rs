//! [`Finishing`]: a request polled in place by its caller's task that, dropped unfinished,
//! finishes as a task of its own.
//!
//! A request must complete once started (its grant's use is taken and audited either way),
//! even when the caller drops it. Spawning every request as a task gives that, but costs a
//! task per request and, on tokio's multi-thread scheduler, one more task in the chain of
//! wake-ups each request makes: caller, request and connection tasks woken one after another
//! overrun the scheduler's LIFO slot (three polls in a row), and every request then wakes the
//! other, parked, worker, which finds nothing to do (measured on a sequential
//! `get_credentials`: 3.5 context switches per request against 1.1 for a raw hyper GET, and
//! ~60 µs of CPU). Polled in place, a request is one more future in its caller's task; only a
//! request dropped unfinished pays for a task, to finish in.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::runtime::Handle;
use tracing::Span;

use crate::in_span::InSpan as _;

/// Why a [`Finishing`] request gave no output: it panicked (the payload is dropped unseen),
/// or it was polled again after it finished.
#[derive(Debug)]
pub(crate) struct Unfinished;

/// A future polled in place that, dropped before it finishes, finishes on `handle` as a task
/// (inside the span that was current when it was made). Its output is the future's, or
/// [`Unfinished`] when the future panicked: the panic is caught, as a task's would be, and
/// does not unwind through the caller.
pub(crate) struct Finishing<F>
where
    F: Future<Output: Send + 'static> + Send + 'static,
{
    future: Option<Pin<Box<F>>>,
    handle: Handle,
    span: Span,
}

impl<F> Finishing<F>
where
    F: Future<Output: Send + 'static> + Send + 'static,
{
    /// `future`, to be polled in place and finished on `handle` if dropped unfinished.
    pub(crate) fn new(future: Pin<Box<F>>, handle: Handle) -> Self {
        Self {
            future: Some(future),
            handle,
            span: Span::current(),
        }
    }
}

impl<F> Future for Finishing<F>
where
    F: Future<Output: Send + 'static> + Send + 'static,
{
    type Output = Result<F::Output, Unfinished>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Finishing` is `Unpin`: the future it polls is boxed.
        let this = &mut *self;
        let Some(future) = this.future.as_mut() else {
            return Poll::Ready(Err(Unfinished));
        };
        let polled: Result<Poll<F::Output>, Box<dyn Any + Send>> =
            std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                this.future = None;
                Poll::Ready(Ok(output))
            }
            Err(_panic) => {
                this.future = None;
                Poll::Ready(Err(Unfinished))
            }
        }
    }
}

impl<F> Drop for Finishing<F>
where
    F: Future<Output: Send + 'static> + Send + 'static,
{
    fn drop(&mut self) {
        if let Some(future) = self.future.take() {
            let span = std::mem::replace(&mut self.span, Span::none());
            // Not awaited: the output (a secret, zeroized on drop) goes nowhere. A runtime
            // that is shutting down drops the task, as it would have dropped it spawned.
            drop(self.handle.spawn(future.in_span(span)));
        }
    }
}

#[cfg(test)]
mod tests;
