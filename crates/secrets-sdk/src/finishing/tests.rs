use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn multi_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Polled in place: in the caller's own task, no task of its own.
#[test]
fn a_request_runs_in_its_callers_task() -> TestResult {
    let runtime = multi_thread()?;
    let (caller, ran_in) = runtime.block_on(async {
        tokio::spawn(async {
            let caller = tokio::task::id();
            let ran_in = Finishing::new(
                Box::pin(async {
                    tokio::task::yield_now().await;
                    tokio::task::id()
                }),
                Handle::current(),
            )
            .await;
            (caller, ran_in.ok())
        })
        .await
    })?;
    assert_eq!(ran_in, Some(caller));
    Ok(())
}

/// Dropped unfinished (the caller's timeout, a `select!`), the request finishes as a task,
/// inside the span current when it was made, and only once.
#[test]
fn a_request_dropped_unfinished_finishes_on_its_own_in_its_span() -> TestResult {
    let subscriber = tracing_subscriber::registry();
    let dispatch = tracing::Dispatch::new(subscriber);
    // The workers see the spans too (the finishing task runs on one).
    let workers = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            std::mem::forget(tracing::dispatcher::set_default(&workers));
        })
        .build()?;
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let spans = Arc::new(std::sync::Mutex::new(Vec::new()));
    let go = Arc::new(Notify::new());
    let outcome = tracing::dispatcher::with_default(&dispatch, || {
        let request = {
            let (started, finished, spans, go) = (
                Arc::clone(&started),
                Arc::clone(&finished),
                Arc::clone(&spans),
                Arc::clone(&go),
            );
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                go.notified().await;
                let current = Span::current().metadata().map(|m| m.name());
                spans
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(current);
                finished.fetch_add(1, Ordering::SeqCst);
            }
        };
        let span = tracing::info_span!("get_credentials_caller");
        let _entered = span.enter();
        let handle = runtime.handle().clone();
        runtime.block_on(async move {
            tokio::time::timeout(
                Duration::from_millis(20),
                Finishing::new(Box::pin(request), handle),
            )
            .await
        })
    });
    assert!(outcome.is_err(), "the caller gave up first");
    assert_eq!(started.load(Ordering::SeqCst), 1);
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    go.notify_one();
    runtime.block_on(async {
        for _ in 0..500 {
            if finished.load(Ordering::SeqCst) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert_eq!(finished.load(Ordering::SeqCst), 1, "it finished, once");
    assert_eq!(
        started.load(Ordering::SeqCst),
        1,
        "and was not started again"
    );
    assert_eq!(
        *spans.lock().unwrap_or_else(|e| e.into_inner()),
        [Some("get_credentials_caller")]
    );
    Ok(())
}

/// A panic in the request is caught, not unwound through the caller, and a finished request
/// polled again answers `Unfinished` rather than polling a finished future.
#[test]
fn a_panic_is_caught_and_a_finished_request_is_not_polled_again() -> TestResult {
    let runtime = multi_thread()?;
    let (panicked, again, after) = runtime.block_on(async {
        tokio::spawn(async {
            let panicked = Finishing::new(
                Box::pin(async {
                    tokio::task::yield_now().await;
                    if std::hint::black_box(true) {
                        panic!("a request bug");
                    }
                    1
                }),
                Handle::current(),
            )
            .await;
            let mut done = Finishing::new(Box::pin(async { 2 }), Handle::current());
            let first = std::future::poll_fn(|cx| Pin::new(&mut done).poll(cx)).await;
            let again = std::future::poll_fn(|cx| Pin::new(&mut done).poll(cx)).await;
            (
                panicked.is_err(),
                (first.ok(), again.is_err()),
                "caller goes on",
            )
        })
        .await
    })?;
    assert!(panicked);
    assert_eq!(again, (Some(2), true));
    assert_eq!(after, "caller goes on");
    Ok(())
}

/// Dropped after its runtime shut down: no panic, the request is dropped with the task that
/// could not start.
#[test]
fn dropped_after_the_runtime_shut_down_it_is_dropped_quietly() -> TestResult {
    let runtime = multi_thread()?;
    let finished = Arc::new(AtomicUsize::new(0));
    let pending = {
        let finished = Arc::clone(&finished);
        Finishing::new(
            Box::pin(async move {
                std::future::pending::<()>().await;
                finished.fetch_add(1, Ordering::SeqCst);
            }),
            runtime.handle().clone(),
        )
    };
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(pending);
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    Ok(())
}
