//! Routing by scheme against real files and a real OpenBao; lazy authentication.

use crate::common::sdk::{TestResult, bao, builder, client, demo_files, env};
use secrets_sdk::BootstrapConfig;
use secrets_test_support::proxy::CountingProxy;
use serde_json::json;

#[tokio::test]
async fn each_scheme_goes_to_its_provider() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = bao()? else { return Ok(()) };
    let client = client(files.path(), &bao.addr(), bao.root_token())?;

    let password = client.resolve("file://demo/db.json#password").await?;
    assert_eq!(password.expose_str(), Some("file-password"));
    let key = client.resolve("file://demo/api-key").await?;
    assert_eq!(key.expose_str(), Some("file-api-key"));
    let whole = client.resolve("file://demo/db.json").await?;
    assert_eq!(
        whole.expose_json(),
        Some(&json!({"username": "app", "password": "file-password"}))
    );

    // One address (from the bootstrap) serves openbao and hashicorp URIs, with or without
    // the engine.
    for uri in [
        "openbao+kv2://secret/app/api#token",
        "openbao://secret/app/api#token",
        "hashicorp+kv2://secret/app/api#token",
        "HASHICORP://secret/app/api#token",
    ] {
        let token = client.resolve(uri).await?;
        assert_eq!(token.expose_str(), Some("bao-token-v1"), "{uri}");
    }

    for (uri, code) in [
        // A KV v2 mount has no database engine behind it.
        ("db+cred://secret/pg", "NOT_FOUND"),
        ("db://secret/pg", "UNSUPPORTED_PROVIDER"),
        // A bootstrap given in code has no values to serve (`bootstrap_values.rs`).
        ("bootstrap://secret/x", "NOT_CONFIGURED"),
        // `yaml://` is the file provider's: no such file under the root.
        ("yaml://secret/x", "NOT_FOUND"),
        ("file://demo/missing", "NOT_FOUND"),
        ("file://demo/db.json#nope", "KEY_NOT_FOUND"),
        ("openbao+kv2://secret/app/missing", "NOT_FOUND"),
        ("file://other/db.json", "TENANT_MOUNT_MISMATCH"),
        ("file://demo/../etc/passwd", "ILLEGAL_SEGMENT"),
    ] {
        let err = client.resolve(uri).await.err();
        assert_eq!(err.as_ref().map(|e| e.code()), Some(code), "{uri}: {err:?}");
    }
    Ok(())
}

#[tokio::test]
async fn unserved_parameters_are_refused_before_any_read() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = bao()? else { return Ok(()) };
    let proxy = CountingProxy::start(&bao.addr())?;
    let client = client(files.path(), &proxy.addr(), bao.root_token())?;
    for uri in [
        "openbao+kv2://secret/app/api?verison=2#token",
        "openbao+kv2://secret/app/api#token?n=1",
        "hashicorp://secret/app/api#token?version=1&n=2",
        "file://demo/db.json?version=1#password",
    ] {
        let err = client.resolve(uri).await.err();
        assert_eq!(
            err.as_ref().map(|e| e.code()),
            Some("UNKNOWN_PARAMETER"),
            "{uri}: {err:?}"
        );
        let blocking = client.resolve_blocking(uri).err();
        assert_eq!(
            blocking.map(|e| e.code()),
            Some("UNKNOWN_PARAMETER"),
            "{uri}"
        );
    }
    let sync = client.resolve_file_sync("file://demo/db.json?x=1").err();
    assert_eq!(sync.map(|e| e.code()), Some("UNKNOWN_PARAMETER"));
    assert_eq!(proxy.total(), 0, "no request reached the server");
    // The served parameter still works.
    let pinned = client
        .resolve("openbao+kv2://secret/app/api#token?version=1")
        .await?;
    assert_eq!(pinned.expose_str(), Some("bao-token-v1"));
    Ok(())
}

#[tokio::test]
async fn openbao_and_vault_urls_each_serve_their_scheme() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = bao()? else { return Ok(()) };
    // VAULT_URL goes through a counting proxy to the same server, so the route shows.
    let proxy = CountingProxy::start(&bao.addr())?;
    let client = builder(files.path())
        .env_lookup(env(&[
            ("OPENBAO_URL", &bao.addr()),
            ("OPENBAO_TOKEN", bao.root_token()),
            ("VAULT_URL", &proxy.addr()),
            ("VAULT_TOKEN", bao.root_token()),
        ]))
        .default_bootstrap_path(files.path().join("no-bootstrap.json"))
        .build()?;
    client.resolve("openbao+kv2://secret/app/api#token").await?;
    assert_eq!(proxy.count("/v1/secret/data/app/api"), 0);
    client
        .resolve("hashicorp+kv2://secret/app/api#token")
        .await?;
    assert_eq!(proxy.count("/v1/secret/data/app/api"), 1);

    // VAULT_URL alone serves openbao URIs too.
    let vault_only = builder(files.path())
        .env_lookup(env(&[
            ("VAULT_URL", &proxy.addr()),
            ("VAULT_TOKEN", bao.root_token()),
        ]))
        .default_bootstrap_path(files.path().join("no-bootstrap.json"))
        .build()?;
    let token = vault_only
        .resolve("openbao+kv2://secret/app/api#token")
        .await?;
    assert_eq!(token.expose_str(), Some("bao-token-v1"));
    assert_eq!(proxy.count("/v1/secret/data/app/api"), 2);
    Ok(())
}

#[tokio::test]
async fn without_a_vault_files_still_resolve() -> TestResult {
    let files = demo_files()?;
    let client = builder(files.path())
        .env_lookup(env(&[]))
        .default_bootstrap_path(files.path().join("no-bootstrap.json"))
        .build()?;
    assert!(client.bootstrap_source().is_none());
    let password = client.resolve("file://demo/db.json#password").await?;
    assert_eq!(password.expose_str(), Some("file-password"));
    let err = client
        .resolve("openbao+kv2://secret/app/api#token")
        .await
        .err();
    assert_eq!(err.as_ref().map(|e| e.code()), Some("NOT_CONFIGURED"));
    let shown = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        shown.contains("SECRETS_BOOTSTRAP_PATH (not set)"),
        "{shown}"
    );
    assert!(!shown.contains("app/api"), "{shown}");
    Ok(())
}

/// Lazy auth: the client is built and serves files while the vault address is a closed port;
/// the first vault read is the first connection.
#[tokio::test]
async fn nothing_touches_the_network_before_the_first_vault_read() -> TestResult {
    let files = demo_files()?;
    // Port 9 (discard): closed on loopback, and never one a test server picks (those use
    // ephemeral ports, which a port found free a moment ago could become).
    let closed = "http://127.0.0.1:9";
    let client = client(files.path(), closed, "never-sent")?;
    for _ in 0..3 {
        let value = client.resolve("file://demo/db.json#username").await?;
        assert_eq!(value.expose_str(), Some("app"));
    }
    let err = client.resolve("openbao+kv2://secret/app/api").await.err();
    assert_eq!(err.map(|e| e.code()), Some("UNAVAILABLE"));

    let Some(bao) = bao()? else { return Ok(()) };
    let proxy = CountingProxy::start(&bao.addr())?;
    let client = crate::common::sdk::client(files.path(), &proxy.addr(), bao.root_token())?;
    client.resolve("file://demo/api-key").await?;
    client.resolve_file_sync("file://demo/db.json")?;
    assert_eq!(proxy.connection_count(), 0);
    client.resolve("openbao+kv2://secret/app/api#token").await?;
    assert!(proxy.connection_count() >= 1);
    assert_eq!(proxy.count("/v1/secret/data/app/api"), 1);
    Ok(())
}

#[tokio::test]
async fn approle_and_kubernetes_bootstraps_log_in_lazily() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = bao()? else { return Ok(()) };
    bao.put_policy(
        "read-secret",
        r#"path "secret/data/*" { capabilities = ["read"] }"#,
    )?;
    let creds = bao.setup_approle("app", &["read-secret"])?;
    let proxy = CountingProxy::start(&bao.addr())?;
    let client = builder(files.path())
        .bootstrap(BootstrapConfig::approle(
            proxy.addr(),
            creds.role_id.clone(),
            creds.secret_id.clone(),
        ))
        .build()?;
    assert_eq!(proxy.total(), 0);
    let token = client.resolve("openbao+kv2://secret/app/api#token").await?;
    assert_eq!(token.expose_str(), Some("bao-token-v1"));
    assert_eq!(proxy.count("/v1/auth/approle/login"), 1);

    // Kubernetes: building needs no service-account token; the first read tries to log in.
    let client = builder(files.path())
        .bootstrap({
            let mut config = BootstrapConfig::kubernetes(bao.addr(), "app");
            config.auth = config
                .auth
                .with_jwt_path(files.path().join("no-such-token"));
            config
        })
        .build()?;
    let err = client.resolve("openbao+kv2://secret/app/api").await.err();
    assert_eq!(err.map(|e| e.code()), Some("AUTH_FAILED"));
    Ok(())
}
