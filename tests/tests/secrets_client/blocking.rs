//! `resolve_blocking` outside and inside tokio runtimes, and `resolve_file_sync`. The tests
//! only read, so they share one OpenBao.

use crate::common::sdk::{TestResult, builder, demo_files, shared_bao};
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
    let Some(bao) = shared_bao()? else {
        return Ok(());
    };
    let client = crate::common::sdk::client(files.path(), &bao.addr(), bao.root_token())?;
    check(&client)?;
    // The file path needs no runtime at all.
    let sync = client.resolve_file_sync("file://demo/api-key")?;
    assert_eq!(sync.expose_str(), Some("file-api-key"));
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn inside_a_current_thread_runtime() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = shared_bao()? else {
        return Ok(());
    };
    let client = crate::common::sdk::client(files.path(), &bao.addr(), bao.root_token())?;
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
    let Some(bao) = shared_bao()? else {
        return Ok(());
    };
    let client = crate::common::sdk::client(files.path(), &bao.addr(), bao.root_token())?;
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
    let Some(bao) = shared_bao()? else {
        return Ok(());
    };
    let client = crate::common::sdk::client(files.path(), &bao.addr(), bao.root_token())?;
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
    let Some(bao) = shared_bao()? else {
        return Ok(());
    };
    let client = crate::common::sdk::client(files.path(), &bao.addr(), bao.root_token())?;
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

/// `resolve_blocking` looks the cache up under the canonical form of any spelling. Before:
/// a non-canonical spelling missed every time and read the backend on each call.
#[test]
fn resolve_blocking_hits_the_canonical_key_of_any_spelling() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = shared_bao()? else {
        return Ok(());
    };
    let proxy = secrets_test_support::proxy::CountingProxy::start(&bao.addr())?;
    let client = crate::common::sdk::client(files.path(), &proxy.addr(), bao.root_token())?;
    for uri in [
        "openbao+kv2://secret/app/api#token?version=1",
        "OPENBAO+KV2://secret/app/api#token?version=1",
        "openbao+kv2://secret/app/api?version=1#token",
        "OPENBAO+kv2://secret/app/api?version=1#token",
    ] {
        for _ in 0..3 {
            assert_eq!(
                client.resolve_blocking(uri)?.expose_str(),
                Some("bao-token-v1"),
                "{uri}"
            );
        }
    }
    assert_eq!(proxy.count("/v1/secret/data/app/api"), 1);
    for uri in [
        "FILE://demo/api-key",
        "file://demo/api-key",
        "File://demo/api-key",
    ] {
        assert_eq!(
            client.resolve_blocking(uri)?.expose_str(),
            Some("file-api-key")
        );
    }
    assert_eq!(client.cache_len(), 2);
    Ok(())
}

/// `resolve_blocking` applies stale-if-error like `resolve`. Before: its reads bypassed the
/// fallback and returned the backend's error.
#[test]
fn resolve_blocking_serves_a_stale_value_while_the_backend_fails() -> TestResult {
    use secrets_test_support::{Fault, FaultServer};
    let files = demo_files()?;
    let kv = serde_json::json!({"data": {"data": {"token": "v1"}, "metadata": {"version": 1}}});
    let server = FaultServer::start(vec![Fault::status(403), Fault::json(200, &kv)])?;
    let client = builder(files.path())
        .bootstrap(secrets_sdk::BootstrapConfig::token(server.addr(), "t"))
        .cache_ttl(std::time::Duration::from_millis(200))
        .stale_if_error(std::time::Duration::from_secs(60))
        .build()?;
    assert_eq!(client.resolve_blocking(API)?.expose_str(), Some("v1"));
    server.set_script(vec![Fault::status(503)]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    for spelling in [API, "OPENBAO+KV2://secret/app/api#token"] {
        assert_eq!(client.resolve_blocking(spelling)?.expose_str(), Some("v1"));
    }
    assert_eq!(client.cache_len(), 1);
    Ok(())
}

/// A FIFO without a writer under the root: a vault read of another URI still completes, and
/// the file resolve ends at once with `NOT_A_FILE` (the file provider refuses FIFOs) or, with a
/// provider that would open it, at the resolve deadline with `TIMEOUT` (the read then holds a
/// thread of the client's blocking pool, never the worker vault reads need). Before both
/// fixes, the FIFO read ran on the client's only I/O worker and every vault read hung. A file
/// read that really stalls is tested in `client::tests::a_stalled_file_read_blocks_no_vault_read`.
#[cfg(unix)]
#[test]
fn a_hanging_file_read_does_not_block_vault_reads() -> TestResult {
    use std::time::{Duration, Instant};
    let files = demo_files()?;
    let Some(bao) = shared_bao()? else {
        return Ok(());
    };
    let fifo = files.path().join("demo/pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
    assert!(made.success(), "mkfifo failed");
    let client = builder(files.path())
        .bootstrap(secrets_sdk::BootstrapConfig::token(
            bao.addr(),
            bao.root_token(),
        ))
        .resolve_deadline(Duration::from_secs(3))
        .build()?;
    let (file_tx, file_rx) = std::sync::mpsc::channel();
    let file_client = client.clone();
    std::thread::spawn(move || {
        let started = Instant::now();
        let code = file_client
            .resolve_blocking("file://demo/pipe")
            .err()
            .map(|e| e.code());
        let _ = file_tx.send((code, started.elapsed()));
    });
    std::thread::sleep(Duration::from_millis(200));
    let (vault_tx, vault_rx) = std::sync::mpsc::channel();
    let vault_client = client.clone();
    std::thread::spawn(move || {
        let value = vault_client
            .resolve_blocking(API)
            .map(|s| s.expose_str().map(str::to_owned))
            .map_err(|e| e.code());
        let _ = vault_tx.send(value);
    });
    let vault = vault_rx.recv_timeout(Duration::from_secs(20));
    let file = file_rx.recv_timeout(Duration::from_secs(20));
    // Release the reader blocked in open(), if any: a writer that opens and closes.
    {
        use std::os::unix::fs::OpenOptionsExt;
        const O_NONBLOCK: i32 = 0o4000;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(O_NONBLOCK)
            .open(&fifo);
    }
    assert_eq!(
        vault.map_err(|_| "the vault read hung behind the file read")?,
        Ok(Some("bao-token-v1".to_owned()))
    );
    let (code, took) = file.map_err(|_| "the file resolve outlived its deadline")?;
    assert!(
        matches!(code, Some("TIMEOUT" | "NOT_A_FILE")),
        "{code:?} after {took:?}"
    );
    Ok(())
}
