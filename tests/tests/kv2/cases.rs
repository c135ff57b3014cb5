//! The KV v2 cases: each a `pub async fn` taking the flavor to build its providers with, run
//! by [`kv2_suite!`](crate) once per flavor against a real OpenBao.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use secret_providers::{
    Kv2Auth, Kv2Flavor, Kv2Provider, ProviderError, ProviderRouter, RetryConfig,
};
use serde_json::json;

use crate::common::TestResult;
use crate::common::kv2::{code, config, root_provider, shared_bao, unique, uri};
use crate::conformance::{Backend, reads_and_fails_alike};

pub(crate) async fn latest_read(flavor: Kv2Flavor) -> TestResult {
    let Some(bao) = shared_bao() else {
        return Ok(());
    };
    let path = unique("latest");
    bao.kv_put("secret", &path, &json!({"password": "v1"}))?;
    bao.kv_put("secret", &path, &json!({"password": "v2", "port": 5432}))?;
    let provider = root_provider(flavor, &bao)?;
    let value = provider
        .read(&uri(flavor, &format!("secret/{path}")))
        .await?;
    assert_eq!(
        value.expose_json(),
        Some(&json!({"password": "v2", "port": 5432}))
    );
    assert!(!value.is_text());
    // Engine-less URIs read KV v2 too.
    let scheme_less = format!("{}://secret/{path}", flavor_provider(flavor));
    let value = provider.read(&scheme_less.parse()?).await?;
    assert_eq!(
        value.expose_json().map(|v| v["password"].clone()),
        Some(json!("v2"))
    );
    Ok(())
}

/// The counter at the end of a [`unique`] path.
fn suffix(path: &str) -> &str {
    path.rsplit('-').next().unwrap_or("0")
}

fn flavor_provider(flavor: Kv2Flavor) -> secret_uri::Provider {
    match flavor {
        Kv2Flavor::HashiCorp => secret_uri::Provider::HashiCorp,
        _ => secret_uri::Provider::OpenBao,
    }
}

pub(crate) async fn pinned_version(flavor: Kv2Flavor) -> TestResult {
    let Some(bao) = shared_bao() else {
        return Ok(());
    };
    let path = unique("pinned");
    bao.kv_put("secret", &path, &json!({"token": "one"}))?;
    bao.kv_put("secret", &path, &json!({"token": "two"}))?;
    bao.kv_put("secret", &path, &json!({"token": "three"}))?;
    let provider = root_provider(flavor, &bao)?;
    for (version, expected) in [(1, "one"), (2, "two"), (3, "three")] {
        let value = provider
            .read(&uri(
                flavor,
                &format!("secret/{path}#token?version={version}"),
            ))
            .await?;
        assert_eq!(value.expose_str(), Some(expected));
    }
    // A version that does not exist yet.
    let future = provider
        .read(&uri(flavor, &format!("secret/{path}?version=9")))
        .await;
    assert_eq!(code(&future), "NOT_FOUND");
    Ok(())
}

pub(crate) async fn key_selects_one_field(flavor: Kv2Flavor) -> TestResult {
    let Some(bao) = shared_bao() else {
        return Ok(());
    };
    let path = unique("key");
    bao.kv_put(
        "secret",
        &path,
        &json!({"user": "app", "port": 5432, "tls": {"ca": "pem"}, "on": true}),
    )?;
    let provider = root_provider(flavor, &bao)?;
    let read = |key: &str| provider.read_owned(uri(flavor, &format!("secret/{path}#{key}")));
    assert_eq!(read("user").await?.expose_str(), Some("app"));
    assert_eq!(read("port").await?.expose_json(), Some(&json!(5432)));
    assert_eq!(
        read("tls").await?.expose_json(),
        Some(&json!({"ca": "pem"}))
    );
    assert_eq!(read("on").await?.expose_json(), Some(&json!(true)));
    Ok(())
}

pub(crate) async fn missing_key(flavor: Kv2Flavor) -> TestResult {
    let Some(bao) = shared_bao() else {
        return Ok(());
    };
    let path = unique("missing-key");
    bao.kv_put("secret", &path, &json!({"user": "app"}))?;
    let provider = root_provider(flavor, &bao)?;
    let result = provider
        .read(&uri(flavor, &format!("secret/{path}#password")))
        .await;
    assert!(
        matches!(result, Err(ProviderError::KeyNotFound { ref mount, .. }) if mount == "secret"),
        "{result:?}"
    );
    Ok(())
}

pub(crate) async fn not_found(flavor: Kv2Flavor) -> TestResult {
    let Some(bao) = shared_bao() else {
        return Ok(());
    };
    let provider = root_provider(flavor, &bao)?;
    let missing = provider
        .read(&uri(flavor, &format!("secret/{}", unique("never-written"))))
        .await;
    assert!(
        matches!(
            missing,
            Err(ProviderError::NotFound {
                status: Some(404),
                ..
            })
        ),
        "{missing:?}"
    );
    let no_mount = provider.read(&uri(flavor, "no-such-mount/app/api")).await;
    assert_eq!(code(&no_mount), "NOT_FOUND");
    let mount_only = provider.read(&uri(flavor, "secret")).await;
    assert_eq!(code(&mount_only), "INVALID_PATH");
    Ok(())
}

pub(crate) async fn soft_deleted_version(flavor: Kv2Flavor) -> TestResult {
    let Some(bao) = shared_bao() else {
        return Ok(());
    };
    let path = unique("soft-deleted");
    bao.kv_put("secret", &path, &json!({"k": "v1"}))?;
    bao.kv_put("secret", &path, &json!({"k": "v2"}))?;
    bao.kv_delete_versions("secret", &path, &[1])?;
    let provider = root_provider(flavor, &bao)?;
    let deleted = provider
        .read(&uri(flavor, &format!("secret/{path}?version=1")))
        .await;
    assert!(
        matches!(
            deleted,
            Err(ProviderError::VersionDeleted {
                version: Some(1),
                status: 404,
                ..
            })
        ),
        "{deleted:?}"
    );
    // The live latest version still reads, and undeleting brings version 1 back.
    assert_eq!(
        provider
            .read(&uri(flavor, &format!("secret/{path}#k")))
            .await?
            .expose_str(),
        Some("v2")
    );
    bao.kv_undelete_versions("secret", &path, &[1])?;
    let back = provider
        .read(&uri(flavor, &format!("secret/{path}#k?version=1")))
        .await?;
    assert_eq!(back.expose_str(), Some("v1"));
    Ok(())
}

pub(crate) async fn destroyed_version(flavor: Kv2Flavor) -> TestResult {
    let Some(bao) = shared_bao() else {
        return Ok(());
    };
    let path = unique("destroyed");
    bao.kv_put("secret", &path, &json!({"k": "v1"}))?;
    bao.kv_put("secret", &path, &json!({"k": "v2"}))?;
    bao.kv_destroy_versions("secret", &path, &[1])?;
    let provider = root_provider(flavor, &bao)?;
    let destroyed = provider
        .read(&uri(flavor, &format!("secret/{path}?version=1")))
        .await;
    assert!(
        matches!(
            destroyed,
            Err(ProviderError::VersionDestroyed {
                version: Some(1),
                status: 404,
                ..
            })
        ),
        "{destroyed:?}"
    );
    bao.kv_destroy_versions("secret", &path, &[2])?;
    let latest = provider.read(&uri(flavor, &format!("secret/{path}"))).await;
    assert_eq!(code(&latest), "VERSION_DESTROYED");
    Ok(())
}

pub(crate) async fn deleted_latest(flavor: Kv2Flavor) -> TestResult {
    let Some(bao) = shared_bao() else {
        return Ok(());
    };
    let path = unique("deleted-latest");
    bao.kv_put("secret", &path, &json!({"k": "v1"}))?;
    bao.kv_put("secret", &path, &json!({"k": "v2"}))?;
    bao.kv_delete_latest("secret", &path)?;
    let provider = root_provider(flavor, &bao)?;
    // No version pinned: the latest is deleted, and there is no fallback to version 1.
    let latest = provider.read(&uri(flavor, &format!("secret/{path}"))).await;
    assert!(
        matches!(
            latest,
            Err(ProviderError::VersionDeleted {
                version: Some(2),
                ..
            })
        ),
        "{latest:?}"
    );
    let older = provider
        .read(&uri(flavor, &format!("secret/{path}#k?version=1")))
        .await?;
    assert_eq!(older.expose_str(), Some("v1"));
    Ok(())
}

pub(crate) async fn future_deletion_time_is_live(flavor: Kv2Flavor) -> TestResult {
    let Some(bao) = shared_bao() else {
        return Ok(());
    };
    let path = unique("delete-after");
    bao.kv_write_metadata("secret", &path, &json!({"delete_version_after": "1h"}))?;
    bao.kv_put("secret", &path, &json!({"k": "live"}))?;
    let (_, raw) = bao.kv_get("secret", &path, None)?;
    assert_ne!(
        raw["data"]["metadata"]["deletion_time"],
        json!(""),
        "the server sets a future deletion_time"
    );
    let provider = root_provider(flavor, &bao)?;
    let value = provider
        .read(&uri(flavor, &format!("secret/{path}#k")))
        .await?;
    assert_eq!(value.expose_str(), Some("live"));
    Ok(())
}

pub(crate) async fn permission_denied(flavor: Kv2Flavor) -> TestResult {
    let Some(bao) = shared_bao() else {
        return Ok(());
    };
    let path = unique("denied");
    bao.kv_put("secret", &path, &json!({"k": "v"}))?;
    let policy = format!("deny-{}", path.replace('/', "-"));
    bao.put_policy(
        &policy,
        &format!("path \"secret/data/t/*\" {{ capabilities = [\"read\"] }}\npath \"secret/data/{path}\" {{ capabilities = [\"deny\"] }}"),
    )?;
    let token = bao.create_token(&[&policy], "1h")?;
    let provider = Kv2Provider::new(config(flavor, &bao.addr(), Kv2Auth::token(token)))?;
    let denied = provider.read(&uri(flavor, &format!("secret/{path}"))).await;
    assert!(
        matches!(
            denied,
            Err(ProviderError::PermissionDenied {
                status: Some(403),
                ..
            })
        ),
        "{denied:?}"
    );
    // The same token reads an allowed path.
    let allowed = unique("allowed");
    bao.kv_put("secret", &allowed, &json!({"k": "ok"}))?;
    assert_eq!(
        provider
            .read(&uri(flavor, &format!("secret/{allowed}#k")))
            .await?
            .expose_str(),
        Some("ok")
    );
    Ok(())
}

/// Enables AppRole through the API, logs in lazily, and logs in again after the token is
/// revoked behind the provider's back (a 403 triggers one re-authentication).
pub(crate) async fn approle_login(flavor: Kv2Flavor) -> TestResult {
    let Some(bao) = shared_bao() else {
        return Ok(());
    };
    let path = unique("approle");
    bao.kv_put("secret", &path, &json!({"k": "via-approle"}))?;
    let role = "app";
    let mount = format!("approle-{}", suffix(&path));
    let policy = format!("read-{}", suffix(&path));
    bao.put_policy(
        &policy,
        &format!("path \"secret/data/{path}\" {{ capabilities = [\"read\"] }}"),
    )?;
    bao.enable_auth(&mount, "approle")?;
    bao.api(
        "POST",
        &format!("auth/{mount}/role/{role}"),
        Some(&json!({"token_policies": [policy], "token_ttl": "1h"})),
    )?;
    let (_, role_id) = bao.api("GET", &format!("auth/{mount}/role/{role}/role-id"), None)?;
    let (_, secret_id) = bao.api(
        "POST",
        &format!("auth/{mount}/role/{role}/secret-id"),
        Some(&json!({})),
    )?;
    let role_id = role_id["data"]["role_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let secret_id = secret_id["data"]["secret_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let auth = Kv2Auth::approle(role_id.clone(), Some(SecretString::from(secret_id.clone())))
        .with_mount(&mount);
    let provider = Kv2Provider::new(config(flavor, &bao.addr(), auth))?;
    let target = uri(flavor, &format!("secret/{path}#k"));
    assert_eq!(
        provider.read(&target).await?.expose_str(),
        Some("via-approle")
    );

    // Revoke every token issued through this mount; the next read gets a 403, logs in
    // again once, and succeeds.
    let (status, _) = bao.api(
        "PUT",
        &format!("sys/leases/revoke-prefix/auth/{mount}/login"),
        None,
    )?;
    assert_eq!(status, 204);
    assert_eq!(
        provider.read(&target).await?.expose_str(),
        Some("via-approle")
    );

    // A wrong secret ID is a 400 from the server: AUTH_FAILED.
    let wrong =
        Kv2Auth::approle(role_id, Some(SecretString::from("wrong".to_owned()))).with_mount(&mount);
    let provider = Kv2Provider::new(config(flavor, &bao.addr(), wrong))?;
    let failed = provider.read(&target).await;
    assert!(
        matches!(
            failed,
            Err(ProviderError::AuthFailed {
                method: "approle",
                status: Some(400),
                ..
            })
        ),
        "{failed:?}"
    );
    Ok(())
}

/// A renewable token with a 3 s TTL stays usable well past 3 s because the provider renews
/// it after two thirds of its TTL; an AppRole token with a 2 s max TTL is replaced by logging
/// in again.
pub(crate) async fn renewal_across_expiry(flavor: Kv2Flavor) -> TestResult {
    let Some(bao) = shared_bao() else {
        return Ok(());
    };
    let path = unique("renew");
    bao.kv_put("secret", &path, &json!({"k": "still-here"}))?;
    let auth = bao.create_token_with(
        &json!({"policies": ["root"], "ttl": "3s", "explicit_max_ttl": "60s", "renewable": true}),
    )?;
    let token = auth["client_token"].as_str().unwrap_or_default().to_owned();
    let provider = Kv2Provider::new(config(flavor, &bao.addr(), Kv2Auth::token(token.clone())))?;
    let target = uri(flavor, &format!("secret/{path}#k"));
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(4_500) {
        assert_eq!(
            provider.read(&target).await?.expose_str(),
            Some("still-here")
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // Without renewal the token would have expired at 3 s.
    let (status, lookup) = bao.api_as(Some(&token), None, "GET", "auth/token/lookup-self", None)?;
    assert_eq!(
        status, 200,
        "the token is alive after its first TTL: {}",
        lookup["errors"]
    );

    // AppRole with a hard 2 s cap: renewal cannot help, logging in again does.
    let mount = format!("approle-short-{}", suffix(&path));
    let policy = format!("read-{}", suffix(&path));
    bao.put_policy(
        &policy,
        &format!("path \"secret/data/{path}\" {{ capabilities = [\"read\"] }}"),
    )?;
    bao.enable_auth(&mount, "approle")?;
    bao.api(
        "POST",
        &format!("auth/{mount}/role/short"),
        Some(&json!({"token_policies": [policy], "token_ttl": "2s", "token_max_ttl": "2s", "bind_secret_id": false, "secret_id_bound_cidrs": ["127.0.0.1/32"]})),
    )?;
    let (_, role_id) = bao.api("GET", &format!("auth/{mount}/role/short/role-id"), None)?;
    let role_id = role_id["data"]["role_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let provider = Kv2Provider::new(config(
        flavor,
        &bao.addr(),
        Kv2Auth::approle(role_id, None).with_mount(&mount),
    ))?;
    assert_eq!(
        provider.read(&target).await?.expose_str(),
        Some("still-here")
    );
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert_eq!(
        provider.read(&target).await?.expose_str(),
        Some("still-here")
    );
    Ok(())
}

pub(crate) async fn namespace_header(flavor: Kv2Flavor) -> TestResult {
    let Some(bao) = shared_bao() else {
        return Ok(());
    };
    let path = unique("ns");
    let namespace = format!("team-{}", suffix(&path));
    bao.create_namespace(&namespace)?;
    let root = bao.root_token();
    let (status, _) = bao.api_as(
        Some(root),
        Some(&namespace),
        "POST",
        "sys/mounts/secret",
        Some(&json!({"type": "kv", "options": {"version": "2"}})),
    )?;
    assert!(
        status == 204 || status == 200,
        "mount in namespace: {status}"
    );
    let (status, _) = bao.api_as(
        Some(root),
        Some(&namespace),
        "POST",
        &format!("secret/data/{path}"),
        Some(&json!({"data": {"k": "in-ns"}})),
    )?;
    assert_eq!(status, 200);

    let in_ns = Kv2Provider::new(
        config(flavor, &bao.addr(), Kv2Auth::token(root.to_owned())).with_namespace(&namespace),
    )?;
    let target = uri(flavor, &format!("secret/{path}#k"));
    assert_eq!(in_ns.read(&target).await?.expose_str(), Some("in-ns"));
    // The root namespace has no such secret.
    let root_ns = root_provider(flavor, &bao)?;
    assert_eq!(code(&root_ns.read(&target).await), "NOT_FOUND");
    Ok(())
}

/// `-dev-tls`: the right CA works; no CA (webpki roots only) or a stale CA fails with `TLS`
/// and is not retried.
pub(crate) async fn tls(flavor: Kv2Flavor) -> TestResult {
    let Some(mut bao) = secrets_test_support::openbao_tls_or_skip() else {
        return Ok(());
    };
    let path = unique("tls");
    bao.kv_put("secret", &path, &json!({"k": "over-tls"}))?;
    let ca = bao.ca_cert_path().ok_or("TLS server without a CA")?;
    let dir = tempfile::tempdir()?;
    let stale_ca = dir.path().join("old-ca.pem");
    std::fs::copy(&ca, &stale_ca)?;
    let target = uri(flavor, &format!("secret/{path}#k"));
    let root = bao.root_token().to_owned();
    let auth = || Kv2Auth::token(root.clone());

    let right = Kv2Provider::new(config(flavor, &bao.addr(), auth()).with_ca_bundle(&ca))?;
    assert_eq!(right.read(&target).await?.expose_str(), Some("over-tls"));
    let appended = Kv2Provider::new(
        config(flavor, &bao.addr(), auth())
            .with_ca_bundle(&ca)
            .with_ca_bundle_mode(secret_providers::CaBundleMode::Append),
    )?;
    assert_eq!(appended.read(&target).await?.expose_str(), Some("over-tls"));

    let no_ca = Kv2Provider::new(config(flavor, &bao.addr(), auth()))?;
    let failed = no_ca.read(&target).await;
    assert!(
        matches!(failed, Err(ProviderError::Tls { .. })),
        "{failed:?}"
    );

    // A client certificate is loaded and offered (the dev listener does not ask for one, so
    // this checks loading; the server's own pair stands in for a client's).
    let certs = ca.parent().ok_or("CA without a directory")?;
    let mtls = Kv2Provider::new(
        config(flavor, &bao.addr(), auth())
            .with_ca_bundle(&ca)
            .with_client_cert(certs.join("vault-cert.pem"), certs.join("vault-key.pem")),
    )?;
    assert_eq!(mtls.read(&target).await?.expose_str(), Some("over-tls"));
    let no_key = Kv2Provider::new(
        config(flavor, &bao.addr(), auth())
            .with_client_cert(certs.join("vault-cert.pem"), certs.join("missing.pem")),
    );
    assert_eq!(no_key.err().map(|e| e.code()), Some("CONFIG"));

    let skip = Kv2Provider::new(
        config(flavor, &bao.addr(), auth())
            .with_skip_verify(true)
            .with_environment("test"),
    )?;
    assert_eq!(skip.read(&target).await?.expose_str(), Some("over-tls"));

    // A restart makes a new CA; the old one is now the wrong CA.
    bao.restart()?;
    bao.kv_put("secret", &path, &json!({"k": "over-tls"}))?;
    let wrong = Kv2Provider::new(config(flavor, &bao.addr(), auth()).with_ca_bundle(&stale_ca))?;
    let started = Instant::now();
    let failed = wrong.read(&target).await;
    assert_eq!(code(&failed), "TLS");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "TLS errors are not retried"
    );
    let ca = bao.ca_cert_path().ok_or("TLS server without a CA")?;
    let right = Kv2Provider::new(config(flavor, &bao.addr(), auth()).with_ca_bundle(&ca))?;
    assert_eq!(right.read(&target).await?.expose_str(), Some("over-tls"));
    Ok(())
}

/// The server restarts between two reads on a kept-alive connection; the next read succeeds.
pub(crate) async fn server_restart(flavor: Kv2Flavor) -> TestResult {
    let Some(mut bao) = secrets_test_support::openbao_or_skip() else {
        return Ok(());
    };
    let path = unique("restart");
    bao.kv_put("secret", &path, &json!({"k": "before"}))?;
    let provider = Kv2Provider::new(
        config(
            flavor,
            &bao.addr(),
            Kv2Auth::token(bao.root_token().to_owned()),
        )
        .with_retry(
            RetryConfig::attempts(5)
                .with_delays(Duration::from_millis(50), Duration::from_millis(500)),
        ),
    )?;
    let target = uri(flavor, &format!("secret/{path}#k"));
    assert_eq!(provider.read(&target).await?.expose_str(), Some("before"));
    bao.restart()?;
    // Dev storage is in memory: write the secret again.
    bao.kv_put("secret", &path, &json!({"k": "after"}))?;
    assert_eq!(provider.read(&target).await?.expose_str(), Some("after"));
    assert_eq!(provider.read(&target).await?.expose_str(), Some("after"));

    // While stopped: connection refused, retried, then UNAVAILABLE with the attempt count.
    bao.stop();
    let down = provider.read(&target).await;
    assert!(
        matches!(
            down,
            Err(ProviderError::Unavailable {
                attempts: 5,
                status: None,
                ..
            })
        ),
        "{down:?}"
    );
    bao.restart()?;
    bao.kv_put("secret", &path, &json!({"k": "again"}))?;
    assert_eq!(provider.read(&target).await?.expose_str(), Some("again"));
    Ok(())
}

/// Concurrent first reads share one login; the provider is cheap to clone and share.
pub(crate) async fn concurrent_first_reads(flavor: Kv2Flavor) -> TestResult {
    let Some(bao) = shared_bao() else {
        return Ok(());
    };
    let path = unique("concurrent");
    bao.kv_put("secret", &path, &json!({"k": "shared"}))?;
    let provider = root_provider(flavor, &bao)?;
    let target = uri(flavor, &format!("secret/{path}#k"));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let provider = provider.clone();
            let target = target.clone();
            tokio::spawn(async move {
                provider
                    .read(&target)
                    .await
                    .map(|v| v.expose_str() == Some("shared"))
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await??);
    }
    Ok(())
}

/// The conformance table (`conformance.rs`), with this flavor's provider behind a router, on
/// a fixture of its own in the shared server.
pub(crate) async fn conformance(flavor: Kv2Flavor) -> TestResult {
    let Some(bao) = shared_bao() else {
        return Ok(());
    };
    let root = unique("conformance");
    bao.kv_put(
        "secret",
        &format!("{root}/app/db"),
        &json!({"user": "app", "password": "pw", "port": 5432, "tls": {"on": true}}),
    )?;
    let versions = format!("{root}/app/versions");
    for v in ["one", "two", "three", "four"] {
        bao.kv_put("secret", &versions, &json!({ "v": v }))?;
    }
    bao.kv_delete_versions("secret", &versions, &[2])?;
    bao.kv_destroy_versions("secret", &versions, &[3])?;
    let gone = format!("{root}/app/gone");
    bao.kv_put("secret", &gone, &json!({"v": "x"}))?;
    bao.kv_delete_latest("secret", &gone)?;
    let router = ProviderRouter::new().with(
        flavor_provider(flavor),
        std::sync::Arc::new(root_provider(flavor, &bao)?),
    );
    let backend = Backend {
        scheme: crate::common::kv2::scheme(flavor),
        mount: "secret",
        root: format!("secret/{root}"),
        versioned: true,
    };
    reads_and_fails_alike(&router, &backend).await
}

/// Extension used by the suite: read with an owned URI (for closures).
pub(crate) trait ReadOwned {
    fn read_owned(
        &self,
        uri: secret_uri::SecretUri,
    ) -> impl std::future::Future<Output = Result<secret_providers::SecretValue, ProviderError>>;
}

impl ReadOwned for Kv2Provider {
    async fn read_owned(
        &self,
        uri: secret_uri::SecretUri,
    ) -> Result<secret_providers::SecretValue, ProviderError> {
        self.read(&uri).await
    }
}
