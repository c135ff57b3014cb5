//! Rotation without restarts, against a real OpenBao (requests counted by a proxy) and real
//! files laid out as the kubelet lays out a Secret volume: `watch` streams, the metadata-only
//! cost of an unchanged KV v2 secret, deletion yielding its error once, refresh-ahead with no
//! miss on the request path, file changes refreshing the cache within a second.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::sdk::{TestResult, builder};
use secrets_sdk::watch::{Changes, WatchItem};
use secrets_sdk::{BootstrapConfig, SecretsClient};
use secrets_test_support::OpenBaoServer;
use secrets_test_support::proxy::CountingProxy;
use serde_json::json;

/// The watch interval of these tests.
const INTERVAL: Duration = Duration::from_millis(300);

/// A path of its own under `secret/` for each test (the server is shared).
fn unique(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("rot/{name}-{n}")
}

fn client_via(
    root: &Path,
    proxy: &CountingProxy,
    bao: &OpenBaoServer,
    ttl: Duration,
) -> Result<SecretsClient, secrets_sdk::Error> {
    builder(root)
        .bootstrap(BootstrapConfig::token(proxy.addr(), bao.root_token()))
        .cache_ttl(ttl)
        .watch_interval(INTERVAL)
        .build()
}

async fn next_within(changes: &mut Changes, within: Duration) -> Option<WatchItem> {
    tokio::time::timeout(within, changes.next())
        .await
        .ok()
        .flatten()
}

fn shared() -> Result<Option<Arc<OpenBaoServer>>, secrets_test_support::Error> {
    crate::common::sdk::shared_bao()
}

#[tokio::test]
async fn kv2_new_version_arrives_within_one_interval() -> TestResult {
    let files = tempfile::tempdir()?;
    let Some(bao) = shared()? else { return Ok(()) };
    let path = unique("new-version");
    bao.kv_put("secret", &path, &json!({"password": "rotation-v1"}))?;
    let proxy = CountingProxy::start(&bao.addr())?;
    let client = client_via(files.path(), &proxy, &bao, Duration::from_secs(300))?;
    let uri = format!("openbao+kv2://secret/{path}#password");

    let mut changes = client.watch(uri.as_str()).await?;
    let start = match changes.current() {
        Some(Ok(change)) => change.clone(),
        other => panic!("the watch starts from the value: {other:?}"),
    };
    assert_eq!(start.version(), Some(1));
    assert_eq!(start.secret().expose_str(), Some("rotation-v1"));

    bao.kv_put("secret", &path, &json!({"password": "rotation-v2"}))?;
    let written = Instant::now();
    let change = match next_within(&mut changes, INTERVAL * 3).await {
        Some(Ok(change)) => change,
        other => panic!("a new version arrives: {other:?}"),
    };
    // One interval (jittered by 10 %), the check's requests and scheduling.
    assert!(
        written.elapsed() < INTERVAL.mul_f64(1.1) + Duration::from_millis(300),
        "seen after {:?}",
        written.elapsed()
    );
    assert_eq!(change.version(), Some(2));
    assert_eq!(change.secret().expose_str(), Some("rotation-v2"));
    assert_ne!(change.digest(), start.digest());
    assert_eq!(change.uri().as_str(), uri);
    // Nothing of the value in what a log would print.
    let shown = format!("{change:?} {}", change.uri().redacted());
    assert!(
        !shown.contains("rotation-v2") && !shown.contains(&path),
        "{shown}"
    );
    // The change refreshed the cache: the next resolve is the new value, no request.
    let reads = proxy.count(&format!("/v1/secret/data/{path}"));
    assert_eq!(
        client.resolve(uri.as_str()).await?.expose_str(),
        Some("rotation-v2")
    );
    assert_eq!(proxy.count(&format!("/v1/secret/data/{path}")), reads);
    Ok(())
}

#[tokio::test]
async fn an_unchanged_kv2_secret_costs_metadata_reads_only() -> TestResult {
    let files = tempfile::tempdir()?;
    let Some(bao) = shared()? else { return Ok(()) };
    let path = unique("unchanged");
    bao.kv_put("secret", &path, &json!({"password": "steady"}))?;
    let proxy = CountingProxy::start(&bao.addr())?;
    let client = client_via(files.path(), &proxy, &bao, Duration::from_secs(300))?;
    let uri = format!("openbao+kv2://secret/{path}#password");
    let data = format!("/v1/secret/data/{path}");
    let metadata = format!("/v1/secret/metadata/{path}");

    // Two streams of two spellings share one watch.
    let mut changes = client.watch(uri.as_str()).await?;
    let mut other = client
        .watch(format!("OPENBAO+KV2://secret/{path}#password").as_str())
        .await?;
    assert_eq!(proxy.count(&data), 1);
    tokio::time::sleep(INTERVAL * 5 + INTERVAL / 2).await;
    assert!(
        next_within(&mut changes, Duration::from_millis(10))
            .await
            .is_none()
    );
    assert!(
        next_within(&mut other, Duration::from_millis(10))
            .await
            .is_none()
    );
    assert_eq!(proxy.count(&data), 1, "no value read while nothing changed");
    let checks = proxy.count(&metadata);
    // One watch, not two: about five checks (the interval is jittered by ±10 %).
    assert!((4..=7).contains(&checks), "{checks} metadata reads");
    Ok(())
}

#[tokio::test]
async fn a_deleted_secret_yields_its_error_once_then_keeps_watching() -> TestResult {
    let files = tempfile::tempdir()?;
    let Some(bao) = shared()? else { return Ok(()) };
    let path = unique("deleted");
    bao.kv_put("secret", &path, &json!({"password": "before-delete"}))?;
    let proxy = CountingProxy::start(&bao.addr())?;
    let client = client_via(files.path(), &proxy, &bao, Duration::from_secs(300))?;
    let uri = format!("openbao+kv2://secret/{path}#password");
    let mut changes = client.watch(uri.as_str()).await?;

    bao.kv_delete_latest("secret", &path)?;
    match next_within(&mut changes, INTERVAL * 3).await {
        Some(Err(error)) => {
            // The code a read of the deleted version gives.
            assert_eq!(error.code(), "VERSION_DELETED");
            assert!(!error.to_string().contains(&path), "{error}");
        }
        other => panic!("the deletion's error: {other:?}"),
    }
    // The deleted value left the cache: a resolve says so too.
    let resolved = client.resolve(uri.as_str()).await;
    assert_eq!(resolved.err().map(|e| e.code()), Some("VERSION_DELETED"));
    // Once: three more intervals bring nothing.
    assert!(next_within(&mut changes, INTERVAL * 3).await.is_none());
    // Still watching: a new version arrives.
    bao.kv_put("secret", &path, &json!({"password": "after-delete"}))?;
    match next_within(&mut changes, INTERVAL * 3).await {
        Some(Ok(change)) => assert_eq!(change.secret().expose_str(), Some("after-delete")),
        other => panic!("the new version after the deletion: {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_hot_uri_never_misses_across_ttls() -> TestResult {
    let files = tempfile::tempdir()?;
    let Some(bao) = shared()? else { return Ok(()) };
    let path = unique("hot");
    bao.kv_put("secret", &path, &json!({"password": "hot-v1"}))?;
    let proxy = CountingProxy::start(&bao.addr())?;
    let capture = secret_telemetry::testing::MetricsCapture::new();
    let ttl = Duration::from_millis(500);
    let client = builder(files.path())
        .bootstrap(BootstrapConfig::token(proxy.addr(), bao.root_token()))
        .cache_ttl(ttl)
        .metrics(capture.metrics())
        .build()?;
    let uri = format!("openbao+kv2://secret/{path}#password");
    let data = format!("/v1/secret/data/{path}");
    let metadata = format!("/v1/secret/metadata/{path}");

    // The first read is the one miss.
    assert_eq!(
        client.resolve(uri.as_str()).await?.expose_str(),
        Some("hot-v1")
    );
    let loop_until = Instant::now() + ttl * 6;
    let mut slowest = Duration::ZERO;
    let mut rotated = false;
    while Instant::now() < loop_until {
        if !rotated && Instant::now() + ttl * 3 > loop_until {
            bao.kv_put("secret", &path, &json!({"password": "hot-v2"}))?;
            rotated = true;
        }
        let started = Instant::now();
        let secret = client.resolve(uri.as_str()).await?;
        slowest = slowest.max(started.elapsed());
        assert!(matches!(secret.expose_str(), Some("hot-v1" | "hot-v2")));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The rotation was picked up ahead of expiry too.
    assert_eq!(
        client.resolve(uri.as_str()).await?.expose_str(),
        Some("hot-v2")
    );
    let points = capture.points()?;
    assert_eq!(
        points.sum("secrets.cache.misses"),
        1.0,
        "only the first read missed"
    );
    // Same version: extended through the metadata endpoint; one value read for the rotation.
    assert_eq!(proxy.count(&data), 2, "the first read and the new version");
    assert!(
        proxy.count(&metadata) >= 4,
        "{} revalidations",
        proxy.count(&metadata)
    );
    assert!(
        slowest < Duration::from_millis(200),
        "slowest hit {slowest:?}"
    );
    Ok(())
}

/// A file root with `demo/` laid out as the kubelet writes a Secret volume: the files are
/// links through `..data` to a timestamped folder.
struct KubeletVolume {
    root: tempfile::TempDir,
    generation: u32,
}

impl KubeletVolume {
    fn new(files: &[(&str, &str)]) -> std::io::Result<Self> {
        let root = tempfile::tempdir()?;
        std::fs::create_dir(root.path().join("demo"))?;
        let mut volume = Self {
            root,
            generation: 0,
        };
        let first = volume.write_generation(files)?;
        let demo = volume.demo();
        std::os::unix::fs::symlink(&first, demo.join("..data"))?;
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), demo.join(name))?;
        }
        Ok(volume)
    }

    fn demo(&self) -> std::path::PathBuf {
        self.root.path().join("demo")
    }

    fn write_generation(&mut self, files: &[(&str, &str)]) -> std::io::Result<String> {
        self.generation += 1;
        let name = format!(
            "..2026_12_01_10_00_0{}.00000000{}",
            self.generation, self.generation
        );
        let dir = self.demo().join(&name);
        std::fs::create_dir(&dir)?;
        for (file, content) in files {
            std::fs::write(dir.join(file), content)?;
        }
        Ok(name)
    }

    /// The kubelet's atomic update: a new timestamped folder, `..data_tmp` pointing at it,
    /// renamed over `..data`, the old folder removed. Returns when the rename happened.
    fn swap(&mut self, files: &[(&str, &str)]) -> std::io::Result<Instant> {
        let demo = self.demo();
        let old = std::fs::read_link(demo.join("..data"))?;
        let new = self.write_generation(files)?;
        std::os::unix::fs::symlink(&new, demo.join("..data_tmp"))?;
        std::fs::rename(demo.join("..data_tmp"), demo.join("..data"))?;
        let swapped = Instant::now();
        std::fs::remove_dir_all(demo.join(old))?;
        Ok(swapped)
    }
}

/// Resolves `uri` every 10 ms until it is `want`; how long after `since` that was.
async fn seen_within(
    client: &SecretsClient,
    uri: &str,
    want: &str,
    since: Instant,
    limit: Duration,
) -> Result<Duration, Box<dyn std::error::Error>> {
    loop {
        if client.resolve(uri).await?.expose_str() == Some(want) {
            return Ok(since.elapsed());
        }
        if since.elapsed() > limit {
            return Err(format!("still not {want:?} after {limit:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_kubelet_swap_refreshes_the_cache_within_a_second() -> TestResult {
    let mut volume = KubeletVolume::new(&[("password", "kube-v1"), ("user", "app")])?;
    let client = builder(volume.root.path())
        .cache_ttl(Duration::from_secs(300))
        .build()?;
    assert_eq!(
        client.resolve("file://demo/password").await?.expose_str(),
        Some("kube-v1")
    );
    assert_eq!(
        client.resolve("file://demo/user").await?.expose_str(),
        Some("app")
    );

    let swapped = volume.swap(&[("password", "kube-v2"), ("user", "app2")])?;
    let took = seen_within(
        &client,
        "file://demo/password",
        "kube-v2",
        swapped,
        Duration::from_secs(1),
    )
    .await?;
    assert!(took < Duration::from_secs(1), "{took:?}");
    // Every file of the volume, with one watch for its folder.
    seen_within(
        &client,
        "file://demo/user",
        "app2",
        swapped,
        Duration::from_secs(1),
    )
    .await?;

    // A second swap is seen as well (the watch outlives the folders it started with).
    let swapped = volume.swap(&[("password", "kube-v3"), ("user", "app3")])?;
    seen_within(
        &client,
        "file://demo/password",
        "kube-v3",
        swapped,
        Duration::from_secs(1),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_in_place_rewrite_refreshes_the_cache_within_a_second() -> TestResult {
    let root = tempfile::tempdir()?;
    std::fs::create_dir_all(root.path().join("demo/nested"))?;
    std::fs::write(root.path().join("demo/key"), "plain-v1")?;
    std::fs::write(root.path().join("demo/nested/key"), "nested-v1")?;
    let client = builder(root.path())
        .cache_ttl(Duration::from_secs(300))
        .build()?;
    assert_eq!(
        client.resolve("file://demo/key").await?.expose_str(),
        Some("plain-v1")
    );
    assert_eq!(
        client.resolve("file://demo/nested/key").await?.expose_str(),
        Some("nested-v1")
    );

    std::fs::write(root.path().join("demo/key"), "plain-v2")?;
    let written = Instant::now();
    seen_within(
        &client,
        "file://demo/key",
        "plain-v2",
        written,
        Duration::from_secs(1),
    )
    .await?;
    std::fs::write(root.path().join("demo/nested/key"), "nested-v2")?;
    let written = Instant::now();
    seen_within(
        &client,
        "file://demo/nested/key",
        "nested-v2",
        written,
        Duration::from_secs(1),
    )
    .await?;

    // A deleted file leaves the cache: NOT_FOUND, not the old value until the TTL.
    std::fs::remove_file(root.path().join("demo/key"))?;
    let removed = Instant::now();
    loop {
        match client.resolve("file://demo/key").await {
            Err(error) => {
                assert_eq!(error.code(), "NOT_FOUND");
                break;
            }
            Ok(_) if removed.elapsed() < Duration::from_secs(1) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(_) => panic!("a deleted file is still served after 1 s"),
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_file_watch_streams_swaps_and_skips_unchanged_rewrites() -> TestResult {
    let mut volume = KubeletVolume::new(&[("password", "stream-v1")])?;
    let client = builder(volume.root.path())
        .watch_interval(INTERVAL)
        .build()?;
    let mut changes = client.watch("file://demo/password").await?;

    let swapped = volume.swap(&[("password", "stream-v2")])?;
    match next_within(&mut changes, Duration::from_secs(1)).await {
        Some(Ok(change)) => {
            assert!(swapped.elapsed() < Duration::from_secs(1));
            assert_eq!(change.secret().expose_str(), Some("stream-v2"));
            assert_eq!(change.version(), None);
            assert!(!format!("{change:?}").contains("stream-v2"));
        }
        other => panic!("the swap's change: {other:?}"),
    }
    // The same content again (a new folder, same bytes): no change.
    volume.swap(&[("password", "stream-v2")])?;
    assert!(next_within(&mut changes, INTERVAL * 3).await.is_none());
    Ok(())
}

#[tokio::test]
async fn a_slow_rewrite_in_place_is_announced_once_with_its_bytes() -> TestResult {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("demo"))?;
    let path = root.path().join("demo/password");
    std::fs::write(&path, "slow-v1")?;
    // No poll within the test: whatever arrives came from the file watcher.
    let client = builder(root.path())
        .watch_interval(Duration::from_secs(600))
        .build()?;
    let mut changes = client.watch("file://demo/password").await?;

    // A rewrite, then at once a slow one of the same bytes: truncated, left empty while the
    // first rewrite's round reads, then written and closed.
    std::fs::write(&path, "slow-v2")?;
    let mut slow = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::io::Write::write_all(&mut slow, b"slow-v2")?;
    drop(slow);

    match next_within(&mut changes, Duration::from_secs(2)).await {
        Some(Ok(change)) => assert_eq!(
            change.secret().expose_str(),
            Some("slow-v2"),
            "the empty file between the truncation and the write was announced"
        ),
        other => panic!("the rewrite's change: {other:?}"),
    }
    if let Some(item) = next_within(&mut changes, Duration::from_secs(1)).await {
        panic!("one rewrite, two changes: {item:?}");
    }
    assert_eq!(
        client.resolve("file://demo/password").await?.expose_str(),
        Some("slow-v2")
    );
    Ok(())
}

/// A writer that never closes the file it rewrote (a log-style writer, a stuck process) does
/// not hold the change back for good: it is read once the wait for the close (half a second)
/// is over, and announced once with the new bytes, while the file is still open.
#[tokio::test]
async fn a_rewrite_whose_writer_never_closes_is_announced_after_the_wait() -> TestResult {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("demo"))?;
    let path = root.path().join("demo/password");
    std::fs::write(&path, "held-v1")?;
    let client = builder(root.path())
        .watch_interval(Duration::from_secs(600))
        .build()?;
    let mut changes = client.watch("file://demo/password").await?;

    let mut held = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)?;
    std::io::Write::write_all(&mut held, b"held-v2")?;
    let written = Instant::now();
    match next_within(&mut changes, Duration::from_secs(3)).await {
        Some(Ok(change)) => assert_eq!(change.secret().expose_str(), Some("held-v2")),
        other => panic!("the held rewrite's change: {other:?}"),
    }
    assert!(
        written.elapsed() >= Duration::from_millis(400),
        "announced after {:?}, before the wait for the close was over",
        written.elapsed()
    );
    if let Some(item) = next_within(&mut changes, Duration::from_secs(1)).await {
        panic!("one rewrite, two changes: {item:?}");
    }
    drop(held);
    Ok(())
}

#[tokio::test]
async fn on_change_calls_back_and_stops_when_dropped() -> TestResult {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("demo"))?;
    std::fs::write(root.path().join("demo/pool"), "pool-v1")?;
    let client = builder(root.path()).watch_interval(INTERVAL).build()?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let subscription = client
        .on_change("file://demo/pool", move |item| {
            if let Ok(change) = item {
                let text = change.secret().expose_str().unwrap_or_default().to_owned();
                sink.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(text);
            }
        })
        .await?;
    std::fs::write(root.path().join("demo/pool"), "pool-v2")?;
    let deadline = Instant::now() + Duration::from_secs(1);
    while seen.lock().map(|s| s.is_empty()).unwrap_or(true) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        *seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        vec!["pool-v2".to_owned()]
    );
    drop(subscription);
    std::fs::write(root.path().join("demo/pool"), "pool-v3")?;
    tokio::time::sleep(INTERVAL * 2).await;
    assert_eq!(
        seen.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len(),
        1,
        "no callback after the subscription is dropped"
    );
    Ok(())
}

#[tokio::test]
async fn closing_the_client_ends_its_streams() -> TestResult {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("demo"))?;
    std::fs::write(root.path().join("demo/x"), "x")?;
    let client = builder(root.path()).watch_interval(INTERVAL).build()?;
    let mut changes = client.watch("file://demo/x").await?;
    client.close();
    assert!(
        tokio::time::timeout(Duration::from_secs(1), changes.next())
            .await?
            .is_none()
    );
    assert_eq!(
        client.watch("file://demo/x").await.err().map(|e| e.code()),
        Some("CLOSED")
    );
    Ok(())
}

#[tokio::test]
async fn watch_refuses_what_resolve_refuses_before_any_stream() -> TestResult {
    let root = tempfile::tempdir()?;
    let client = builder(root.path()).build()?;
    for (uri, code) in [
        ("file://other/x", "TENANT_MOUNT_MISMATCH"),
        ("openbao+kv9://secret/x", "INVALID_ENGINE"),
        ("db+cred://demo/app", "NOT_CONFIGURED"),
        ("db://demo/app", "UNSUPPORTED_PROVIDER"),
    ] {
        let refused = client.watch(uri).await;
        assert!(refused.is_err(), "{uri}");
        let error = refused.err().map(|e| e.code());
        if code != "INVALID_ENGINE" {
            assert_eq!(error, Some(code), "{uri}");
        }
    }
    // A missing file is the stream's starting state, not a refusal; its creation is a change.
    std::fs::create_dir(root.path().join("demo"))?;
    let client = builder(root.path()).watch_interval(INTERVAL).build()?;
    let mut changes = client.watch("file://demo/later").await?;
    assert!(matches!(changes.current(), Some(Err(e)) if e.code() == "NOT_FOUND"));
    std::fs::write(root.path().join("demo/later"), "created")?;
    match next_within(&mut changes, INTERVAL * 3).await {
        Some(Ok(change)) => assert_eq!(change.secret().expose_str(), Some("created")),
        other => panic!("the created file: {other:?}"),
    }
    Ok(())
}

#[test]
fn a_file_read_at_configuration_time_is_refreshed_too() -> TestResult {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("demo"))?;
    std::fs::write(root.path().join("demo/boot"), "boot-v1")?;
    let client = builder(root.path())
        .cache_ttl(Duration::from_secs(300))
        .build()?;
    // Before any runtime exists: the synchronous read caches the file and watches its folder.
    assert_eq!(
        client.resolve_file_sync("file://demo/boot")?.expose_str(),
        Some("boot-v1")
    );
    std::fs::write(root.path().join("demo/boot"), "boot-v2")?;
    let written = Instant::now();
    while client.resolve_file_sync("file://demo/boot")?.expose_str() != Some("boot-v2") {
        assert!(
            written.elapsed() < Duration::from_secs(1),
            "not refreshed within 1 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

#[tokio::test]
async fn reading_a_watched_file_does_not_refresh_it() -> TestResult {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("demo"))?;
    std::fs::write(root.path().join("demo/quiet"), "quiet-v1")?;
    let capture = secret_telemetry::testing::MetricsCapture::new();
    let client = builder(root.path())
        .cache_ttl(Duration::from_secs(300))
        .metrics(capture.metrics())
        .build()?;
    let mut changes = client.watch("file://demo/quiet").await?;
    for _ in 0..20 {
        client.resolve("file://demo/quiet").await?;
        client
            .resolve_with("file://demo/quiet", secrets_sdk::ResolveOptions::refresh())
            .await?;
    }
    // Our own opens and reads are inotify events too: none of them may start a refresh
    // (each would read again, and so on forever).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refreshes = capture
        .points()?
        .sum_where("secrets.resolve.duration", &[("cache", "refresh")]);
    assert_eq!(refreshes, 20.0, "only the 20 asked for");
    assert!(
        next_within(&mut changes, Duration::from_millis(10))
            .await
            .is_none()
    );
    Ok(())
}

/// Resolves `uri` every 10 ms until it is `want` or a second passed; whether it was.
async fn becomes(client: &SecretsClient, uri: &str, want: &str) -> bool {
    seen_within(client, uri, want, Instant::now(), Duration::from_secs(1))
        .await
        .is_ok()
}

#[tokio::test]
async fn one_file_mounts_are_watched_each() -> TestResult {
    // Docker's layout: each mount is one file in the root (`/run/secrets/<name>`).
    let root = tempfile::tempdir()?;
    std::fs::write(root.path().join("first"), "first-v1")?;
    std::fs::write(root.path().join("second"), "second-v1")?;
    let client = SecretsClient::builder()
        .file_root(root.path())
        .allowed_mounts(secrets_sdk::uri::AllowedMounts::from_csv("first,second"))
        .cache_ttl(Duration::from_secs(300))
        .build()?;
    assert_eq!(
        client.resolve("file://first").await?.expose_str(),
        Some("first-v1")
    );
    assert_eq!(
        client.resolve("file://second").await?.expose_str(),
        Some("second-v1")
    );
    std::fs::write(root.path().join("second"), "second-v2")?;
    assert!(becomes(&client, "file://second", "second-v2").await);
    std::fs::write(root.path().join("first"), "first-v2")?;
    assert!(becomes(&client, "file://first", "first-v2").await);
    Ok(())
}

#[tokio::test]
async fn a_mount_made_again_or_swapped_is_watched_again() -> TestResult {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("demo"))?;
    std::fs::write(root.path().join("demo/key"), "made-v1")?;
    let client = builder(root.path())
        .cache_ttl(Duration::from_secs(300))
        .build()?;
    assert_eq!(
        client.resolve("file://demo/key").await?.expose_str(),
        Some("made-v1")
    );
    // Removed and made again: the new folder is watched.
    std::fs::remove_dir_all(root.path().join("demo"))?;
    std::fs::create_dir(root.path().join("demo"))?;
    std::fs::write(root.path().join("demo/key"), "made-v2")?;
    assert!(becomes(&client, "file://demo/key", "made-v2").await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::fs::write(root.path().join("demo/key"), "made-v3")?;
    assert!(
        becomes(&client, "file://demo/key", "made-v3").await,
        "a later rewrite"
    );

    // A mount that is a link, swapped to a new target at once.
    let linked = tempfile::tempdir()?;
    for (dir, value) in [("a", "link-v1"), ("b", "link-v2")] {
        std::fs::create_dir(linked.path().join(dir))?;
        std::fs::write(linked.path().join(dir).join("key"), value)?;
    }
    std::os::unix::fs::symlink("a", linked.path().join("demo"))?;
    let client = builder(linked.path())
        .cache_ttl(Duration::from_secs(300))
        .build()?;
    assert_eq!(
        client.resolve("file://demo/key").await?.expose_str(),
        Some("link-v1")
    );
    std::os::unix::fs::symlink("b", linked.path().join("demo.tmp"))?;
    std::fs::rename(linked.path().join("demo.tmp"), linked.path().join("demo"))?;
    assert!(becomes(&client, "file://demo/key", "link-v2").await);
    std::fs::write(linked.path().join("b/key"), "link-v3")?;
    assert!(
        becomes(&client, "file://demo/key", "link-v3").await,
        "the new target is watched"
    );
    Ok(())
}

#[tokio::test]
async fn a_watched_file_in_a_folder_made_later_is_seen() -> TestResult {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("demo"))?;
    // A long interval: only the watcher can see it in time.
    let client = builder(root.path())
        .watch_interval(Duration::from_secs(60))
        .build()?;
    let mut changes = client.watch("file://demo/later/x").await?;
    std::fs::create_dir(root.path().join("demo/later"))?;
    std::fs::write(root.path().join("demo/later/x"), "later-v1")?;
    match next_within(&mut changes, Duration::from_secs(1)).await {
        Some(Ok(change)) => assert_eq!(change.secret().expose_str(), Some("later-v1")),
        other => panic!("the file made later: {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn the_watch_cap_is_given_back_when_the_cache_empties() -> TestResult {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("demo"))?;
    for n in 0..300 {
        std::fs::create_dir(root.path().join(format!("demo/d{n}")))?;
        std::fs::write(root.path().join(format!("demo/d{n}/x")), "x")?;
    }
    std::fs::create_dir(root.path().join("fresh"))?;
    std::fs::write(root.path().join("fresh/key"), "fresh-v1")?;
    let client = SecretsClient::builder()
        .file_root(root.path())
        .allowed_mounts(secrets_sdk::uri::AllowedMounts::from_csv("demo,fresh"))
        .cache_ttl(Duration::from_secs(300))
        .build()?;
    for n in 0..300 {
        client
            .resolve(format!("file://demo/d{n}/x").as_str())
            .await?;
    }
    client.clear_cache();
    assert_eq!(
        client.resolve("file://fresh/key").await?.expose_str(),
        Some("fresh-v1")
    );
    std::fs::write(root.path().join("fresh/key"), "fresh-v2")?;
    assert!(becomes(&client, "file://fresh/key", "fresh-v2").await);
    Ok(())
}

#[tokio::test]
async fn a_callback_may_call_the_client_back() -> TestResult {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("demo"))?;
    std::fs::write(root.path().join("demo/trigger"), "t1")?;
    std::fs::write(root.path().join("demo/other"), "other-value")?;
    let client = builder(root.path()).watch_interval(INTERVAL).build()?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (sink, inside) = (Arc::clone(&seen), client.clone());
    let _subscription = client
        .on_change("file://demo/trigger", move |_| {
            // A blocking call from the callback: it runs on a thread of its own.
            let other = inside.resolve_blocking("file://demo/other");
            let text = other
                .map(|s| s.expose_str().unwrap_or_default().to_owned())
                .unwrap_or_else(|e| e.code().to_owned());
            sink.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(text);
        })
        .await?;
    std::fs::write(root.path().join("demo/trigger"), "t2")?;
    let deadline = Instant::now() + Duration::from_secs(2);
    while seen.lock().map(|s| s.is_empty()).unwrap_or(true) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        *seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        vec!["other-value".to_owned()]
    );
    // The client still answers: its I/O thread was never held.
    std::fs::write(root.path().join("demo/other"), "other-v2")?;
    assert!(becomes(&client, "file://demo/other", "other-v2").await);
    Ok(())
}

#[tokio::test]
async fn two_fields_of_one_kv2_secret_change_together() -> TestResult {
    let files = tempfile::tempdir()?;
    let Some(bao) = shared()? else { return Ok(()) };
    let path = unique("fields");
    bao.kv_put("secret", &path, &json!({"user": "u1", "password": "p1"}))?;
    let proxy = CountingProxy::start(&bao.addr())?;
    let client = builder(files.path())
        .bootstrap(BootstrapConfig::token(proxy.addr(), bao.root_token()))
        .watch_interval(Duration::from_secs(1))
        .build()?;
    let mut user = client
        .watch(format!("openbao+kv2://secret/{path}#user").as_str())
        .await?;
    let mut password = client
        .watch(format!("openbao+kv2://secret/{path}#password").as_str())
        .await?;
    bao.kv_put("secret", &path, &json!({"user": "u2", "password": "p2"}))?;
    let first = Instant::now();
    let (a, b) = tokio::join!(
        async {
            let item = next_within(&mut user, Duration::from_secs(3)).await;
            (item, first.elapsed())
        },
        async {
            let item = next_within(&mut password, Duration::from_secs(3)).await;
            (item, first.elapsed())
        }
    );
    assert!(
        matches!(&a.0, Some(Ok(c)) if c.secret().expose_str() == Some("u2")),
        "{:?}",
        a.0
    );
    assert!(
        matches!(&b.0, Some(Ok(c)) if c.secret().expose_str() == Some("p2")),
        "{:?}",
        b.0
    );
    let gap = a.1.abs_diff(b.1);
    assert!(
        gap < Duration::from_millis(150),
        "the fields arrived {gap:?} apart"
    );
    Ok(())
}
