//! `resolve_blocking` outside and inside tokio runtimes, and `resolve_file_sync`.
#![cfg(all(feature = "file", feature = "openbao", feature = "hashicorp"))]

mod common;

use common::{TestResult, bao, builder, demo_files};
use secrets_sdk::SecretsClient;

const API: &str = "openbao+kv2://secret/app/api#token";

fn check(client: &SecretsClient) -> TestResult {
    let token = client.resolve_blocking(API)?;
    assert_eq!(token.expose_str(), Some("bao-token-v1"));
    let user = client.resolve_blocking("file://demo/db.json#username")?;
    assert_eq!(user.expose_str(), Some("app"));
    // A parsed URI works too, and hits the cache.
    let uri = secrets_sdk::uri::SecretUri::parse(API)?;
    assert_eq!(
        client.resolve_blocking(&uri)?.expose_str(),
        Some("bao-token-v1")
    );
    let err = client
        .resolve_blocking("openbao+kv2://secret/app/missing")
        .err();
    assert_eq!(err.map(|e| e.code()), Some("NOT_FOUND"));
    Ok(())
}

#[test]
fn outside_any_runtime() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = bao()? else { return Ok(()) };
    let client = common::client(files.path(), &bao.addr(), bao.root_token())?;
    check(&client)?;
    // The file path needs no runtime at all.
    let sync = client.resolve_file_sync("file://demo/api-key")?;
    assert_eq!(sync.expose_str(), Some("file-api-key"));
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn inside_a_current_thread_runtime() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = bao()? else { return Ok(()) };
    let client = common::client(files.path(), &bao.addr(), bao.root_token())?;
    // Async first, so pooled connections exist; the blocking call must not need this
    // (blocked) runtime to make progress.
    client.resolve("openbao+kv2://secret/app/api").await?;
    check(&client)?;
    // Dropping the client (and its runtime) inside an async context must not panic.
    drop(client);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_a_multi_thread_runtime() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = bao()? else { return Ok(()) };
    let client = common::client(files.path(), &bao.addr(), bao.root_token())?;
    check(&client)?;
    // From a spawned task too.
    let task_client = client.clone();
    let token = tokio::spawn(async move {
        task_client
            .resolve_blocking("hashicorp+kv2://secret/app/api#token")
            .map(|s| s.expose_str().map(str::to_owned))
            .map_err(|e| e.code())
    })
    .await?;
    assert_eq!(token, Ok(Some("bao-token-v1".to_owned())));
    Ok(())
}

#[test]
fn a_client_outlives_the_runtime_that_first_used_it() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = bao()? else { return Ok(()) };
    let client = common::client(files.path(), &bao.addr(), bao.root_token())?;
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(client.resolve("openbao+kv2://secret/app/api"))?;
    }
    // KV v2 I/O lives on the client's runtime, so its connections survived the caller's.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let refreshed =
        runtime.block_on(client.resolve_with(API, secrets_sdk::ResolveOptions::refresh()))?;
    assert_eq!(refreshed.expose_str(), Some("bao-token-v1"));
    Ok(())
}

#[test]
fn resolve_file_sync_serves_files_only() -> TestResult {
    let files = demo_files()?;
    let client = builder(files.path()).build()?;
    let password = client.resolve_file_sync("file://demo/db.json#password")?;
    assert_eq!(password.expose_str(), Some("file-password"));
    // Cached under the canonical key: the async path hits it.
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let again = runtime.block_on(client.resolve("FILE://demo/db.json#password"))?;
    assert_eq!(again.expose_str(), Some("file-password"));
    assert_eq!(client.cache_len(), 1);
    for (uri, code) in [
        ("openbao+kv2://secret/app/api#token", "UNSUPPORTED_PROVIDER"),
        ("file://demo/nope", "NOT_FOUND"),
        ("file://other/db.json", "TENANT_MOUNT_MISMATCH"),
        ("file:/demo", "ILLEGAL_SEGMENT"),
    ] {
        let err = client.resolve_file_sync(uri).err();
        assert_eq!(err.map(|e| e.code()), Some(code), "{uri}");
    }
    Ok(())
}

/// A task of a current-thread runtime holds the in-flight slot of a URI; `resolve_blocking`
/// of the same URI on that thread must not wait for it (the task can never run while the
/// thread is blocked). Found in review; before the fix this hung forever.
#[test]
fn blocking_never_waits_on_a_read_owned_by_its_own_thread() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = bao()? else { return Ok(()) };
    let client = common::client(files.path(), &bao.addr(), bao.root_token())?;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| {
                rt.block_on(async {
                    let leader = client.clone();
                    let task = tokio::spawn(async move { leader.resolve(API).await.map(|_| ()) });
                    // Let the task take the slot and park on its (vault) read.
                    tokio::task::yield_now().await;
                    let value = client
                        .resolve_blocking(API)
                        .map_err(|e| e.code().to_owned())?;
                    let text = value.expose_str().map(str::to_owned);
                    task.await
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.code().to_owned())?;
                    Ok::<_, String>(text)
                })
            });
        let _ = done_tx.send(result);
    });
    let result = done_rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .map_err(|_| "resolve_blocking deadlocked behind its own thread's read")?;
    assert_eq!(result, Ok(Some("bao-token-v1".to_owned())));
    Ok(())
}
