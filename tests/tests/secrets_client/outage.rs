//! `SecretsClient` during a backend outage, against the fault-injecting server: stale values
//! served while a refresh hangs, a cancelled refresh, a body cut mid-response, the resolve
//! deadline, and the share of resolves served over an outage window.
//!
//! Time is scaled down (TTLs of a few hundred milliseconds, outages of seconds). Bounds on
//! elapsed time only catch hangs; they are generous for a loaded 2-core machine.

use std::time::{Duration, Instant};

use crate::common::sdk::{TestResult, builder, demo_files};
use secrets_sdk::providers::RetryConfig;
use secrets_sdk::{BootstrapConfig, SecretsClient};
use secrets_test_support::{Fault, FaultServer};
use serde_json::json;

const API: &str = "openbao+kv2://secret/app/api#token";
const API_PATH: &str = "/v1/secret/data/app/api";

fn kv_reply(token: &str) -> Fault {
    Fault::json(
        200,
        &json!({"data": {"data": {"token": token}, "metadata": {"version": 1}}}),
    )
}

/// `lookup-self` refused: the token is then used as is (no further lookups), and the next
/// step answers the first read.
fn script(then: Fault) -> Vec<Fault> {
    vec![Fault::status(403), then]
}

fn reads(server: &FaultServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path == API_PATH)
        .count()
}

/// A client with a short TTL and a long stale-if-error grace, primed with `v1`.
async fn primed(
    server: &FaultServer,
    files: &std::path::Path,
    deadline: Duration,
) -> Result<SecretsClient, Box<dyn std::error::Error>> {
    let client = builder(files)
        .bootstrap(BootstrapConfig::token(server.addr(), "t"))
        .cache_ttl(Duration::from_millis(200))
        .stale_if_error(Duration::from_secs(60))
        .resolve_deadline(deadline)
        .build()?;
    assert_eq!(client.resolve(API).await?.expose_str(), Some("v1"));
    Ok(client)
}

async fn expire() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// While one caller's refresh hangs on the backend, every other caller is served the stale
/// value at once instead of queueing behind it, and the refreshing caller after at most 1 s.
/// Before: all of them waited for the refresh (up to 3 × 30 s), so a caller with a 1 s budget
/// got nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_refresh_does_not_hold_up_other_callers() -> TestResult {
    let files = demo_files()?;
    let server = FaultServer::start(script(kv_reply("v1")))?;
    let client = primed(&server, files.path(), Duration::from_secs(5)).await?;
    server.set_script(vec![Fault::Hang]);
    expire().await;

    let refresher = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .resolve(API)
                .await
                .map(|s| s.expose_str().map(str::to_owned))
                .map_err(|e| e.code())
        })
    };
    // Until the refresher's read reaches the server, nobody holds the refresh.
    let waited = Instant::now();
    while reads(&server) < 2 && waited.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(reads(&server), 2, "the refresh reached the backend");
    for _ in 0..50 {
        let served = tokio::time::timeout(Duration::from_secs(1), client.resolve(API)).await;
        let value = served.map_err(|_| "a caller queued behind the hanging refresh")??;
        assert_eq!(value.expose_str(), Some("v1"));
    }
    assert_eq!(
        reads(&server),
        2,
        "no caller but the refresher asked the backend"
    );
    // The refresher itself is served the stale value after waiting a while (1 s), and the
    // refresh goes on in the background: still no second read.
    let refreshed = tokio::time::timeout(Duration::from_secs(20), refresher).await??;
    assert_eq!(refreshed, Ok(Some("v1".to_owned())));
    assert_eq!(client.resolve(API).await?.expose_str(), Some("v1"));
    assert_eq!(reads(&server), 2);
    Ok(())
}

/// A refresh whose caller is cancelled (`tokio::time::timeout`) leaves the stale value in the
/// cache, and the refresh itself goes on in the background: later callers get the stale value
/// at once (no `TIMEOUT`, no second read while the first still runs). Before: the cancelled
/// refresh had already taken the entry out of the cache, and the next caller read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_refresh_keeps_the_stale_value() -> TestResult {
    let files = demo_files()?;
    let server = FaultServer::start(script(kv_reply("v1")))?;
    let client = primed(&server, files.path(), Duration::from_secs(60)).await?;
    server.set_script(vec![Fault::Hang]);
    expire().await;
    let cancelled = tokio::time::timeout(Duration::from_millis(300), client.resolve(API)).await;
    assert!(cancelled.is_err(), "the refresh hung and was cancelled");
    assert_eq!(client.cache_len(), 1);
    for _ in 0..20 {
        let served = tokio::time::timeout(Duration::from_secs(1), client.resolve(API)).await;
        let served = served.map_err(|_| "a later caller was not served the stale value")??;
        assert_eq!(served.expose_str(), Some("v1"));
    }
    assert_eq!(reads(&server), 2, "one refresh, still running");
    Ok(())
}

/// A refresh slower than the refreshing caller's wait still lands: the caller is served the
/// stale value, and the new value replaces it in the cache when the read completes, without a
/// second read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_refresh_lands_after_its_caller_was_served() -> TestResult {
    let files = demo_files()?;
    let server = FaultServer::start(script(kv_reply("v1")))?;
    let client = primed(&server, files.path(), Duration::from_secs(30)).await?;
    server.set_script(vec![Fault::delay(Duration::from_secs(3), kv_reply("v2"))]);
    expire().await;
    let first = tokio::time::timeout(Duration::from_secs(20), client.resolve(API)).await??;
    assert!(matches!(first.expose_str(), Some("v1" | "v2")));
    let waited = Instant::now();
    let mut latest = first.expose_str().map(str::to_owned);
    while latest.as_deref() != Some("v2") && waited.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        latest = client.resolve(API).await?.expose_str().map(str::to_owned);
    }
    assert_eq!(latest.as_deref(), Some("v2"));
    assert_eq!(reads(&server), 2, "the one refresh read");
    Ok(())
}

/// Dropping the client while a refresh runs in the background neither panics nor hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_client_during_a_background_refresh() -> TestResult {
    let files = demo_files()?;
    let server = FaultServer::start(script(kv_reply("v1")))?;
    let client = primed(&server, files.path(), Duration::from_secs(2)).await?;
    server.set_script(vec![Fault::delay(
        Duration::from_millis(1500),
        kv_reply("v2"),
    )]);
    expire().await;
    let served = tokio::time::timeout(Duration::from_secs(20), client.resolve(API)).await??;
    assert_eq!(served.expose_str(), Some("v1"));
    drop(client);
    // The refresh ends after the client is gone; nothing is left to settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        served.expose_str(),
        Some("v1"),
        "a handed-out value stays readable"
    );
    Ok(())
}

/// A refresh whose response is cut mid-body (declared `Content-Length`, short body, closed)
/// is a transient `UNAVAILABLE`: the stale value is served and stays. Before: it was
/// `MALFORMED_RESPONSE`, which removed the good value from the cache.
#[tokio::test]
async fn a_body_cut_mid_refresh_serves_the_stale_value() -> TestResult {
    let files = demo_files()?;
    let server = FaultServer::start(script(kv_reply("v1")))?;
    let client = primed(&server, files.path(), Duration::from_secs(10)).await?;
    server.set_script(vec![Fault::Truncated {
        declared_len: 400,
        body: br#"{"data":{"data":{"token":"v2"#.to_vec(),
    }]);
    expire().await;
    for _ in 0..3 {
        assert_eq!(client.resolve(API).await?.expose_str(), Some("v1"));
    }
    assert_eq!(client.cache_len(), 1);

    // Without stale-if-error the caller sees the transient code, not MALFORMED_RESPONSE.
    let strict = builder(files.path())
        .bootstrap(BootstrapConfig::token(server.addr(), "t"))
        .build()?;
    let err = strict.resolve(API).await.err();
    assert_eq!(err.as_ref().map(|e| e.code()), Some("UNAVAILABLE"));
    assert!(err.is_some_and(|e| e.is_transient()));
    Ok(())
}

/// Stale-if-error covers outages only: a refresh the server answers `404` (the secret was
/// deleted) retires the stale value instead of serving it.
#[tokio::test]
async fn a_refresh_answered_not_found_retires_the_stale_value() -> TestResult {
    let files = demo_files()?;
    let server = FaultServer::start(script(kv_reply("v1")))?;
    let client = primed(&server, files.path(), Duration::from_secs(10)).await?;
    server.set_script(vec![Fault::json(404, &json!({"errors": []}))]);
    expire().await;
    let err = client.resolve(API).await.err();
    assert_eq!(err.map(|e| e.code()), Some("NOT_FOUND"));
    assert_eq!(client.cache_len(), 0);
    Ok(())
}

/// A server that accepts and never answers, a 1 s per-attempt timeout and 10 attempts (over
/// 10 s of retries), a 3 s resolve deadline: the resolve ends with `TIMEOUT` near 3 s. Callers
/// that waited for that read get the same `TIMEOUT`; nothing is cached, and the next resolve
/// tries again and succeeds once the server answers. Before: the deadline was not enforced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resolve_deadline_bounds_a_hanging_backend() -> TestResult {
    let files = demo_files()?;
    let server = FaultServer::start(vec![Fault::status(403), Fault::Hang])?;
    let client = builder(files.path())
        .bootstrap(BootstrapConfig::token(server.addr(), "t"))
        .vault_timeout(Duration::from_secs(1))
        .vault_retry(
            RetryConfig::attempts(10)
                .with_delays(Duration::from_millis(10), Duration::from_millis(20)),
        )
        .resolve_deadline(Duration::from_secs(3))
        .build()?;
    let started = Instant::now();
    let leader = {
        let client = client.clone();
        tokio::spawn(async move { client.resolve(API).await.map(drop).map_err(|e| e.code()) })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waiter = {
        let client = client.clone();
        tokio::spawn(async move { client.resolve(API).await.map(drop).map_err(|e| e.code()) })
    };
    let bound = Duration::from_secs(8);
    let leader = tokio::time::timeout(bound, leader).await?;
    let waiter = tokio::time::timeout(bound, waiter).await?;
    let elapsed = started.elapsed();
    assert_eq!(leader?, Err("TIMEOUT"));
    assert_eq!(waiter?, Err("TIMEOUT"));
    println!("deadline 3 s, 10 attempts of 1 s: TIMEOUT after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(6), "took {elapsed:?}");
    assert_eq!(client.cache_len(), 0);

    server.set_script(vec![kv_reply("v1")]);
    let after = tokio::time::timeout(bound, client.resolve(API)).await??;
    assert_eq!(after.expose_str(), Some("v1"));
    Ok(())
}

/// A resolve that hit its deadline (or whose caller gave up) leaves nothing running: its
/// read task is aborted, so the remaining retries never reach the server.
#[tokio::test]
async fn a_deadline_hit_stops_the_retries() -> TestResult {
    let files = demo_files()?;
    let server = FaultServer::start(vec![Fault::status(403), Fault::Hang])?;
    let client = builder(files.path())
        .bootstrap(BootstrapConfig::token(server.addr(), "t"))
        .vault_timeout(Duration::from_millis(300))
        .vault_retry(
            RetryConfig::attempts(20)
                .with_delays(Duration::from_millis(10), Duration::from_millis(20)),
        )
        .resolve_deadline(Duration::from_secs(1))
        .build()?;
    let result = tokio::time::timeout(Duration::from_secs(10), client.resolve(API)).await?;
    assert_eq!(result.err().map(|e| e.code()), Some("TIMEOUT"));
    let at_deadline = server.request_count();
    // 20 attempts of 300 ms would go on for about 5 s more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = server.request_count();
    assert!(
        later <= at_deadline + 1,
        "{at_deadline} requests at the deadline, {later} two seconds later"
    );

    // The same for a caller that gives up before the deadline.
    let cancelled = tokio::time::timeout(Duration::from_millis(400), client.resolve(API)).await;
    assert!(cancelled.is_err());
    let at_cancel = server.request_count();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = server.request_count();
    assert!(
        later <= at_cancel + 1,
        "{at_cancel} requests at the cancel, {later} two seconds later"
    );
    Ok(())
}

/// The deadline covers the whole chain: an AppRole login that hangs, not only the read.
#[tokio::test]
async fn the_resolve_deadline_covers_the_login() -> TestResult {
    use secrets_sdk::providers::{Kv2Auth, Kv2Config, Kv2Flavor};
    let files = demo_files()?;
    let server = FaultServer::start(vec![Fault::Hang])?;
    let config = Kv2Config::new(
        Kv2Flavor::OpenBao,
        server.addr(),
        Kv2Auth::approle("role", None),
    )
    .with_timeout(Duration::from_secs(30));
    let client = builder(files.path())
        .kv2(config)
        .resolve_deadline(Duration::from_secs(2))
        .build()?;
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), client.resolve(API)).await?;
    assert_eq!(result.err().map(|e| e.code()), Some("TIMEOUT"));
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

/// `Duration::MAX` for the deadline, the TTL and the grace period never panics: the client
/// clamps them (or `build()` refuses them with `CONFIG`).
#[tokio::test]
async fn huge_durations_do_not_overflow() -> TestResult {
    let files = demo_files()?;
    let server = FaultServer::start(script(kv_reply("v1")))?;
    let built = builder(files.path())
        .bootstrap(BootstrapConfig::token(server.addr(), "t"))
        .resolve_deadline(Duration::MAX)
        .cache_ttl(Duration::MAX)
        .stale_if_error(Duration::MAX)
        .build();
    let client = match built {
        Err(refused) if refused.code() == "CONFIG" => return Ok(()),
        other => other?,
    };
    assert_eq!(client.resolve(API).await?.expose_str(), Some("v1"));
    assert_eq!(client.resolve(API).await?.expose_str(), Some("v1"));
    assert_eq!(
        client.resolve("file://demo/api-key").await?.expose_str(),
        Some("file-api-key")
    );
    assert_eq!(reads(&server), 1);
    Ok(())
}

/// The share of resolves served during an outage: the backend hangs for 7 s (35 TTLs of
/// 200 ms, and longer than the 5 s pause between refreshes, so several refreshes hang) while
/// requests arrive at a steady rate, one resolve every 5 ms, each given 3 s by its caller
/// (`tokio::time::timeout`), as a request handler would. Every resolve inside the stale bound
/// must be served within that budget: each refreshing caller at the 1 s deadline, all others
/// at once. Before: every resolve that arrived while a refresh hung (for the 5 s vault
/// timeout) queued behind it, and most ran out of budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_during_an_outage_window() -> TestResult {
    let files = demo_files()?;
    let server = FaultServer::start(script(kv_reply("v1")))?;
    let client = primed(&server, files.path(), Duration::from_secs(1)).await?;
    server.set_script(vec![Fault::Hang]);
    let outage = Duration::from_secs(7);
    let budget = Duration::from_secs(3);
    let started = Instant::now();
    let mut resolves = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while started.elapsed() < outage {
        tick.tick().await;
        let client = client.clone();
        resolves.spawn(async move {
            let one = Instant::now();
            let result = tokio::time::timeout(budget, client.resolve(API)).await;
            let served = matches!(&result, Ok(Ok(secret)) if secret.expose_str() == Some("v1"));
            (served, one.elapsed())
        });
    }
    let (mut served, mut failed, mut slow) = (0usize, 0usize, 0usize);
    while let Some(joined) = resolves.join_next().await {
        let (ok, took) = joined?;
        if ok {
            served += 1;
        } else {
            failed += 1;
        }
        slow += usize::from(took > Duration::from_millis(500));
    }
    let total = served + failed;
    let share = 100.0 * served as f64 / total.max(1) as f64;
    println!(
        "outage availability: {served}/{total} resolves served within {budget:?} ({share:.2} %) \
         over {:?}; {slow} took over 500 ms; {} backend reads",
        started.elapsed(),
        reads(&server) - 1,
    );
    assert!(total > 100, "only {total} resolves ran");
    assert_eq!(failed, 0, "{failed} of {total} resolves were not served");
    Ok(())
}
