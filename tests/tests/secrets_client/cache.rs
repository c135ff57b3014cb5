//! The cache against a real OpenBao (requests counted by a proxy) and real files: canonical
//! keys, TTL, refresh, the size bound, coalescing, errors not cached, stale-if-error.

use std::sync::Arc;
use std::time::Duration;

use crate::common::sdk::{TestResult, bao, builder, demo_files};
use secrets_sdk::{BootstrapConfig, ResolveOptions, SecretsClient};
use secrets_test_support::proxy::CountingProxy;
use secrets_test_support::{Fault, FaultServer};
use serde_json::json;

const API: &str = "openbao+kv2://secret/app/api#token";
const API_PATH: &str = "/v1/secret/data/app/api";

#[tokio::test]
async fn cache_is_keyed_by_the_canonical_uri() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = bao()? else { return Ok(()) };
    let proxy = CountingProxy::start(&bao.addr())?;
    let client = crate::common::sdk::client(files.path(), &proxy.addr(), bao.root_token())?;
    for uri in [
        API,
        "OPENBAO+KV2://secret/app/api#token",
        "openbao+KV2://secret/app/api#token",
    ] {
        assert_eq!(
            client.resolve(uri).await?.expose_str(),
            Some("bao-token-v1")
        );
    }
    assert_eq!(proxy.count(API_PATH), 1);
    assert_eq!(client.cache_len(), 1);

    // The original's file-cache switch missed `FILE://`; here both spellings are one key.
    let uncached = builder(files.path()).cache_file_secrets(false).build()?;
    uncached.resolve("FILE://demo/api-key").await?;
    uncached.resolve("file://demo/api-key").await?;
    assert_eq!(uncached.cache_len(), 0);
    let cached = builder(files.path()).build()?;
    cached.resolve("FILE://demo/api-key").await?;
    cached.resolve("file://demo/api-key").await?;
    assert_eq!(cached.cache_len(), 1);
    Ok(())
}

#[tokio::test]
async fn ttl_expiry_and_refresh() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = bao()? else { return Ok(()) };
    let proxy = CountingProxy::start(&bao.addr())?;
    let client = builder(files.path())
        .bootstrap(BootstrapConfig::token(proxy.addr(), bao.root_token()))
        .cache_ttl(Duration::from_millis(400))
        .build()?;
    assert_eq!(
        client.resolve(API).await?.expose_str(),
        Some("bao-token-v1")
    );
    bao.kv_put("secret", "app/api", &json!({"token": "bao-token-v2"}))?;
    // Within the TTL: the cached value, no request.
    assert_eq!(
        client.resolve(API).await?.expose_str(),
        Some("bao-token-v1")
    );
    assert_eq!(proxy.count(API_PATH), 1);

    // Refresh bypasses the cache and repopulates it.
    let refreshed = client.resolve_with(API, ResolveOptions::refresh()).await?;
    assert_eq!(refreshed.expose_str(), Some("bao-token-v2"));
    assert_eq!(proxy.count(API_PATH), 2);
    assert_eq!(
        client.resolve(API).await?.expose_str(),
        Some("bao-token-v2")
    );
    assert_eq!(proxy.count(API_PATH), 2);

    // After the TTL: read again.
    bao.kv_put("secret", "app/api", &json!({"token": "bao-token-v3"}))?;
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        client.resolve(API).await?.expose_str(),
        Some("bao-token-v3")
    );
    assert_eq!(proxy.count(API_PATH), 3);

    // A refresh that finds the secret gone drops the cached value.
    bao.kv_delete_metadata("secret", "app/api")?;
    let gone = client
        .resolve_with(API, ResolveOptions::refresh())
        .await
        .err();
    assert_eq!(gone.map(|e| e.code()), Some("NOT_FOUND"));
    let again = client.resolve(API).await.err();
    assert_eq!(again.map(|e| e.code()), Some("NOT_FOUND"));
    assert_eq!(proxy.count(API_PATH), 5);
    Ok(())
}

#[tokio::test]
async fn file_cache_switch_and_ttl() -> TestResult {
    let files = demo_files()?;
    let key = files.path().join("demo/api-key");
    let cached = builder(files.path())
        .cache_ttl(Duration::from_millis(300))
        .build()?;
    let uncached = builder(files.path()).cache_file_secrets(false).build()?;
    let read = |client: &SecretsClient| {
        client
            .resolve_file_sync("file://demo/api-key")
            .map(|s| s.expose_str().map(str::to_owned))
    };
    assert_eq!(read(&cached)?.as_deref(), Some("file-api-key"));
    assert_eq!(read(&uncached)?.as_deref(), Some("file-api-key"));
    std::fs::write(&key, "rotated")?;
    assert_eq!(read(&cached)?.as_deref(), Some("file-api-key"));
    assert_eq!(read(&uncached)?.as_deref(), Some("rotated"));
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(read(&cached)?.as_deref(), Some("rotated"));
    Ok(())
}

#[tokio::test]
async fn eviction_at_the_size_bound() -> TestResult {
    let files = demo_files()?;
    for i in 0..200 {
        std::fs::write(files.path().join(format!("demo/s{i}")), format!("v{i}"))?;
    }
    let client = builder(files.path()).cache_capacity(40).build()?;
    for i in 0..200 {
        let value = client.resolve(format!("file://demo/s{i}").as_str()).await?;
        assert_eq!(value.expose_str(), Some(format!("v{i}").as_str()));
        assert!(client.cache_len() <= 40, "{} > 40", client.cache_len());
    }
    assert!(client.cache_len() >= 20, "{}", client.cache_len());
    // Rewrite every file: at most `capacity` values can still come from the cache, the rest
    // were evicted and are read again. (The policy is scan-resistant, not LRU: which ones
    // stay is its choice.)
    for i in 0..200 {
        std::fs::write(files.path().join(format!("demo/s{i}")), "new")?;
    }
    let mut cached = 0;
    for i in 0..200 {
        let value = client.resolve(format!("file://demo/s{i}").as_str()).await?;
        cached += usize::from(value.expose_str() != Some("new"));
    }
    assert!(
        (1..=40).contains(&cached),
        "{cached} values came from the cache"
    );
    Ok(())
}

type Outcome = Result<Option<String>, &'static str>;

/// Resolves `uri` from 100 tasks released together by a barrier.
async fn burst(
    client: &SecretsClient,
    uri: &'static str,
) -> Result<Vec<Outcome>, tokio::task::JoinError> {
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let client = client.clone();
        let barrier = Arc::clone(&barrier);
        tasks.spawn(async move {
            barrier.wait().await;
            client
                .resolve(uri)
                .await
                .map(|s| s.expose_str().map(str::to_owned))
                .map_err(|e| e.code())
        });
    }
    let mut results = Vec::new();
    while let Some(result) = tasks.join_next().await {
        results.push(result?);
    }
    Ok(results)
}

/// 100 concurrent resolves of one uncached URI: exactly one request reaches the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_make_one_read() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = bao()? else { return Ok(()) };
    bao.kv_put("secret", "app/burst", &json!({"token": "burst-value"}))?;
    let proxy = CountingProxy::start(&bao.addr())?;
    let client = crate::common::sdk::client(files.path(), &proxy.addr(), bao.root_token())?;

    let results = burst(&client, "openbao+kv2://secret/app/burst#token").await?;
    assert_eq!(results.len(), 100);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().ok().and_then(Option::as_deref) == Some("burst-value")),
        "{results:?}"
    );
    assert_eq!(proxy.count("/v1/secret/data/app/burst"), 1);
    assert_eq!(proxy.count("/v1/auth/token/lookup-self"), 1);

    // resolve_many: concurrent, in order, duplicates coalesced.
    bao.kv_put("secret", "app/many", &json!({"a": "1", "b": "2"}))?;
    let many = client
        .resolve_many([
            "openbao+kv2://secret/app/many#b",
            "openbao+kv2://secret/app/many#a",
            "openbao+kv2://secret/app/many#b",
            "file://demo/db.json#username",
            "bootstrap://secret/x",
        ])
        .await;
    let shown: Vec<Outcome> = many
        .iter()
        .map(|r| {
            r.as_ref()
                .map(|s| s.expose_str().map(str::to_owned))
                .map_err(|e| e.code())
        })
        .collect();
    assert_eq!(
        shown,
        vec![
            Ok(Some("2".to_owned())),
            Ok(Some("1".to_owned())),
            Ok(Some("2".to_owned())),
            Ok(Some("app".to_owned())),
            // A bootstrap given in code has no values.
            Err("NOT_CONFIGURED"),
        ]
    );
    assert_eq!(proxy.count("/v1/secret/data/app/many"), 2);
    Ok(())
}

/// A failed read is shared with every caller that waited for it (one request, not 100 in a
/// row), and not cached: the next call reads again. The server answers slowly so that all
/// 100 callers are surely waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_failures_make_one_read() -> TestResult {
    let files = demo_files()?;
    let not_found = Fault::json(404, &json!({"errors": []}));
    let server = FaultServer::start(vec![
        Fault::status(403), // lookup-self: the token is then used as is
        Fault::delay(Duration::from_millis(300), not_found.clone()),
        not_found,
    ])?;
    let client = crate::common::sdk::client(files.path(), &server.addr(), "t")?;
    let reads = || {
        server
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/secret/data/app/absent")
            .count()
    };
    let results = burst(&client, "openbao+kv2://secret/app/absent").await?;
    assert!(
        results.iter().all(|r| r == &Err("NOT_FOUND")),
        "{results:?}"
    );
    assert_eq!(reads(), 1);
    let again = client
        .resolve("openbao+kv2://secret/app/absent")
        .await
        .err();
    assert_eq!(again.map(|e| e.code()), Some("NOT_FOUND"));
    assert_eq!(reads(), 2);
    Ok(())
}

#[tokio::test]
async fn stale_if_error_serves_an_expired_value_while_the_vault_is_down() -> TestResult {
    let files = demo_files()?;
    let Some(mut bao) = bao()? else { return Ok(()) };
    let proxy = CountingProxy::start(&bao.addr())?;
    let stale = builder(files.path())
        .bootstrap(BootstrapConfig::token(proxy.addr(), bao.root_token()))
        .cache_ttl(Duration::from_millis(200))
        .stale_if_error(Duration::from_millis(1500))
        .build()?;
    let strict = builder(files.path())
        .bootstrap(BootstrapConfig::token(bao.addr(), bao.root_token()))
        .cache_ttl(Duration::from_millis(200))
        .build()?;
    for client in [&stale, &strict] {
        assert_eq!(
            client.resolve(API).await?.expose_str(),
            Some("bao-token-v1")
        );
    }
    bao.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Expired: one refresh attempt fails (the proxy accepts, the server is gone), then the
    // stale value is served.
    let before = proxy.connection_count();
    let served = stale.resolve(API).await?;
    assert_eq!(served.expose_str(), Some("bao-token-v1"));
    let attempted = proxy.connection_count();
    assert!(attempted > before, "no refresh was attempted");
    // Served again without asking the backend.
    assert_eq!(stale.resolve(API).await?.expose_str(), Some("bao-token-v1"));
    assert_eq!(proxy.connection_count(), attempted);
    // Without stale-if-error the expired value is not served.
    let err = strict.resolve(API).await.err();
    assert_eq!(err.map(|e| e.code()), Some("UNAVAILABLE"));

    // Past the grace period the stale value is gone.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let err = stale.resolve(API).await.err();
    assert_eq!(err.map(|e| e.code()), Some("UNAVAILABLE"));
    Ok(())
}

#[tokio::test]
async fn close_empties_the_cache_and_refuses_later_calls() -> TestResult {
    let files = demo_files()?;
    let client = builder(files.path()).build()?;
    client.resolve("file://demo/api-key").await?;
    assert_eq!(client.cache_len(), 1);
    client.close();
    client.close();
    assert!(client.is_closed());
    assert_eq!(client.cache_len(), 0);
    let codes = [
        client
            .resolve("file://demo/api-key")
            .await
            .err()
            .map(|e| e.code()),
        client
            .resolve_file_sync("file://demo/api-key")
            .err()
            .map(|e| e.code()),
        client
            .resolve_blocking("file://demo/api-key")
            .err()
            .map(|e| e.code()),
    ];
    assert_eq!(codes, [Some("CLOSED"); 3]);
    Ok(())
}
