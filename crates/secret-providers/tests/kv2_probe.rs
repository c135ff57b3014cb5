//! `Kv2Provider::probe` and `SecretValue::version` against a real OpenBao dev server (one per
//! test binary, shared by the tests that overlap; each test writes under paths of its own):
//! what a probe says after writes, soft deletes, undeletes, destroys, `delete_version_after`
//! and metadata-only secrets, that it agrees with what a read returns, and that a token
//! without `metadata/` access is `PERMISSION_DENIED`.
#![cfg(feature = "openbao")]
#![allow(missing_docs)]

use std::sync::{Arc, OnceLock};

use secret_providers::{
    Kv2Auth, Kv2Config, Kv2Flavor, Kv2Provider, Probe, ProviderError, ProviderRouter,
    SecretProvider,
};
use secret_uri::{Provider, SecretUri};
use secrets_test_support::{LogCapture, OpenBaoServer};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Every line any test of this binary logs (DEBUG and up), through one global subscriber:
/// installed before a test touches a callsite, so no callsite's interest is cached without
/// it (a thread-scoped subscriber races other threads' first hits).
fn logs() -> &'static LogCapture {
    static LOGS: OnceLock<LogCapture> = OnceLock::new();
    LOGS.get_or_init(|| {
        let capture = LogCapture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        // Only this binary's tests install one, all through here.
        let _ = tracing::subscriber::set_global_default(subscriber);
        capture
    })
}

fn provider(bao: &OpenBaoServer, token: &str) -> Result<Kv2Provider, ProviderError> {
    Kv2Provider::new(Kv2Config::new(
        Kv2Flavor::OpenBao,
        bao.addr(),
        Kv2Auth::token(token.to_owned()),
    ))
}

fn uri(text: &str) -> Result<SecretUri, secret_uri::UriError> {
    text.parse()
}

/// The code of a failed probe, or the version of a successful one.
async fn probe(provider: &Kv2Provider, uri: &SecretUri) -> Result<u64, &'static str> {
    match provider.probe(uri).await {
        Ok(Probe::Version(version)) => Ok(version),
        // A KV v2 probe always knows.
        Ok(_) => Err("UNSUPPORTED"),
        Err(error) => Err(error.code()),
    }
}

/// The version a read returns, or its code.
async fn read_version(
    provider: &Kv2Provider,
    uri: &SecretUri,
) -> Result<Option<u64>, &'static str> {
    provider
        .read(uri)
        .await
        .map(|value| value.version())
        .map_err(|e| e.code())
}

#[tokio::test]
async fn probe_follows_writes_deletes_and_destroys() -> TestResult {
    logs();
    let Some(bao) = secrets_test_support::shared_openbao() else {
        return Ok(());
    };
    let kv = provider(&bao, bao.root_token())?;
    let path = "probe/lifecycle";
    let current = uri(&format!("openbao+kv2://secret/{path}"))?;
    let keyed = uri(&format!("openbao+kv2://secret/{path}#password"))?;
    let pinned = |n: u64| uri(&format!("openbao+kv2://secret/{path}?version={n}"));

    assert_eq!(bao.kv_put("secret", path, &json!({"password": "one"}))?, 1);
    assert_eq!(probe(&kv, &current).await, Ok(1));
    assert_eq!(read_version(&kv, &current).await, Ok(Some(1)));

    assert_eq!(bao.kv_put("secret", path, &json!({"password": "two"}))?, 2);
    assert_eq!(probe(&kv, &current).await, Ok(2));
    let value = kv.read(&current).await?;
    assert_eq!(value.version(), Some(2));
    assert_eq!(
        value.expose_json().map(|v| v["password"].clone()),
        Some(json!("two"))
    );
    // `#key` and a pin keep the version the server read.
    let field = kv.read(&keyed).await?;
    assert_eq!(
        (field.expose_str(), field.version()),
        (Some("two"), Some(2))
    );
    let old = kv.read(&pinned(1)?).await?;
    assert_eq!(old.version(), Some(1));
    assert_eq!(probe(&kv, &pinned(1)?).await, Ok(1));
    assert_eq!(probe(&kv, &pinned(2)?).await, Ok(2));
    // The key is not checked by a probe; the version is.
    let pinned_key = uri(&format!("openbao+kv2://secret/{path}#nope?version=1"))?;
    assert_eq!(probe(&kv, &pinned_key).await, Ok(1));
    assert_eq!(probe(&kv, &pinned(3)?).await, Err("NOT_FOUND"));

    // Soft-delete the current version: the probe gives the read's code.
    bao.kv_delete_latest("secret", path)?;
    assert_eq!(probe(&kv, &current).await, Err("VERSION_DELETED"));
    assert_eq!(probe(&kv, &pinned(2)?).await, Err("VERSION_DELETED"));
    assert_eq!(read_version(&kv, &current).await, Err("VERSION_DELETED"));
    // The older version is still there.
    assert_eq!(probe(&kv, &pinned(1)?).await, Ok(1));

    // Undeleted, it is current again.
    bao.kv_undelete_versions("secret", path, &[2])?;
    assert_eq!(probe(&kv, &current).await, Ok(2));
    assert_eq!(read_version(&kv, &current).await, Ok(Some(2)));

    // Destroy version 1: a probe pinned to it gives the read's code, the current one is
    // untouched.
    let (status, _) = bao.api(
        "PUT",
        &format!("secret/destroy/{path}"),
        Some(&json!({"versions": [1]})),
    )?;
    assert_eq!(status, 204);
    assert_eq!(probe(&kv, &pinned(1)?).await, Err("VERSION_DESTROYED"));
    assert_eq!(
        read_version(&kv, &pinned(1)?).await,
        Err("VERSION_DESTROYED")
    );
    assert_eq!(probe(&kv, &current).await, Ok(2));

    // The current version destroyed too.
    bao.kv_destroy_versions("secret", path, &[2])?;
    assert_eq!(probe(&kv, &current).await, Err("VERSION_DESTROYED"));

    // Gone altogether, never there, or in a mount that does not exist.
    bao.kv_delete_metadata("secret", path)?;
    assert_eq!(probe(&kv, &current).await, Err("NOT_FOUND"));
    for missing in [
        "openbao+kv2://secret/probe/never-written",
        "openbao+kv2://secret/probe/never-written?version=1",
        "openbao+kv2://no-such-mount/probe/x",
    ] {
        assert_eq!(
            probe(&kv, &uri(missing)?).await,
            Err("NOT_FOUND"),
            "{missing}"
        );
    }
    Ok(())
}

/// `delete_version_after` gives every version a deletion time in the future: readable, and
/// so current, until then. Metadata written before any data has nothing to read.
#[tokio::test]
async fn probe_reads_deletion_times_and_metadata_only_secrets() -> TestResult {
    logs();
    let Some(bao) = secrets_test_support::shared_openbao() else {
        return Ok(());
    };
    let kv = provider(&bao, bao.root_token())?;

    let expiring = "probe/expiring";
    bao.kv_write_metadata("secret", expiring, &json!({"delete_version_after": "1h"}))?;
    bao.kv_put("secret", expiring, &json!({"a": "b"}))?;
    let (_, metadata) = bao.api("GET", &format!("secret/metadata/{expiring}"), None)?;
    let deletion = metadata["data"]["versions"]["1"]["deletion_time"].as_str();
    assert!(deletion.is_some_and(|t| !t.is_empty()), "{metadata}");
    let current = uri(&format!("openbao+kv2://secret/{expiring}"))?;
    assert_eq!(probe(&kv, &current).await, Ok(1));
    assert_eq!(read_version(&kv, &current).await, Ok(Some(1)));

    let metadata_only = "probe/metadata-only";
    bao.kv_write_metadata("secret", metadata_only, &json!({"max_versions": 2}))?;
    let empty = uri(&format!("openbao+kv2://secret/{metadata_only}"))?;
    assert_eq!(probe(&kv, &empty).await, Err("NOT_FOUND"));
    assert_eq!(read_version(&kv, &empty).await, Err("NOT_FOUND"));

    // Versions pruned by `max_versions` are not found; the rest are.
    for n in 1..=3 {
        bao.kv_put("secret", metadata_only, &json!({"n": n}))?;
    }
    assert_eq!(probe(&kv, &empty).await, Ok(3));
    let pruned = uri(&format!("openbao+kv2://secret/{metadata_only}?version=1"))?;
    assert_eq!(probe(&kv, &pruned).await, Err("NOT_FOUND"));
    assert_eq!(read_version(&kv, &pruned).await, Err("NOT_FOUND"));
    let kept = uri(&format!("openbao+kv2://secret/{metadata_only}?version=2"))?;
    assert_eq!(probe(&kv, &kept).await, Ok(2));
    Ok(())
}

/// A probe reads `metadata/`: a policy that grants only `data/` lets a read through and
/// refuses the probe; the error names neither the path nor the token.
#[tokio::test]
async fn a_token_without_metadata_access_is_denied() -> TestResult {
    logs();
    let Some(bao) = secrets_test_support::shared_openbao() else {
        return Ok(());
    };
    let path = "probe/policy-canary-5e1d";
    bao.kv_put("secret", path, &json!({"k": "v"}))?;
    bao.put_policy(
        "probe-data-only",
        r#"path "secret/data/probe/*" { capabilities = ["read"] }"#,
    )?;
    bao.put_policy(
        "probe-with-metadata",
        r#"path "secret/data/probe/*" { capabilities = ["read"] }
path "secret/metadata/probe/*" { capabilities = ["read"] }"#,
    )?;
    let data_only = bao.create_token(&["probe-data-only"], "10m")?;
    let with_metadata = bao.create_token(&["probe-with-metadata"], "10m")?;
    let secret = uri(&format!("openbao+kv2://secret/{path}"))?;

    let denied = provider(&bao, &data_only)?;
    assert_eq!(read_version(&denied, &secret).await, Ok(Some(1)));
    let error = denied
        .probe(&secret)
        .await
        .err()
        .ok_or("the probe was allowed")?;
    assert!(
        matches!(
            error,
            ProviderError::PermissionDenied {
                status: Some(403),
                ..
            }
        ),
        "{error:?}"
    );
    let shown = format!("{error} {error:?}");
    for hidden in ["canary", data_only.as_str()] {
        assert!(!shown.contains(hidden), "{shown}");
    }

    let allowed = provider(&bao, &with_metadata)?;
    assert_eq!(probe(&allowed, &secret).await, Ok(1));
    Ok(())
}

/// Clients reach probes through the trait and the router.
#[tokio::test]
async fn probes_through_the_router() -> TestResult {
    logs();
    let Some(bao) = secrets_test_support::shared_openbao() else {
        return Ok(());
    };
    let path = "probe/routed";
    bao.kv_put("secret", path, &json!({"k": "v1"}))?;
    bao.kv_put("secret", path, &json!({"k": "v2"}))?;
    let kv = provider(&bao, bao.root_token())?;
    let router = ProviderRouter::new().with(Provider::OpenBao, Arc::new(kv));
    for (text, version) in [
        (format!("openbao+kv2://secret/{path}"), 2),
        (format!("openbao://secret/{path}?version=1"), 1),
    ] {
        let secret = uri(&text)?;
        assert_eq!(
            router.probe(&secret).await?,
            Probe::Version(version),
            "{text}"
        );
        assert_eq!(
            router.read(&secret).await?.version(),
            Some(version),
            "{text}"
        );
        assert_eq!(router.local_path(&secret), None, "KV v2 has no local file");
    }
    let unrouted = uri("file://m/x")?;
    assert_eq!(
        router.probe(&unrouted).await.err().map(|e| e.code()),
        Some("UNSUPPORTED_PROVIDER")
    );
    Ok(())
}

/// A probe is a `secret_read` span with `kind = "probe"`, the status and attempts of its
/// request, and the code of a failure; no path or token in any line (of any test here).
#[test]
fn a_probe_is_traced_without_its_path_or_token() -> TestResult {
    let logs = logs();
    let Some(bao) = secrets_test_support::shared_openbao() else {
        return Ok(());
    };
    // A mount of its own, to tell this test's lines from the others'.
    bao.mount_kv2("probe-traced")?;
    let path = "probe/traced-canary-41aa";
    bao.kv_put("probe-traced", path, &json!({"k": "v"}))?;
    let kv = provider(&bao, bao.root_token())?;
    let found = uri(&format!("openbao+kv2://probe-traced/{path}"))?;
    let missing = uri("openbao+kv2://probe-traced/probe/traced-canary-missing")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (ok, gone) =
        runtime.block_on(async { (probe(&kv, &found).await, probe(&kv, &missing).await) });
    assert_eq!((ok, gone), (Ok(1), Err("NOT_FOUND")));
    let text = logs.text();
    let mine: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("secret_read{provider=\"openbao\" mount=\"probe-traced\""))
        .collect();
    let spans: Vec<&str> = mine
        .iter()
        .copied()
        .filter(|l| l.contains("}: secret_providers::kv2: close"))
        .collect();
    assert_eq!(spans.len(), 2, "{text}");
    for (line, status) in spans.iter().zip(["200", "404"]) {
        for field in [
            "kind=\"probe\"".to_owned(),
            format!("status={status}"),
            "attempts=1".to_owned(),
        ] {
            assert!(line.contains(&field), "{field} in {line}");
        }
    }
    assert!(spans[1].contains("code=\"NOT_FOUND\""), "{}", spans[1]);
    assert!(
        mine.iter()
            .any(|l| l.contains("probe failed") && l.contains("code=\"NOT_FOUND\"")),
        "{text}"
    );
    for hidden in ["canary", bao.root_token()] {
        assert!(!text.contains(hidden), "{hidden} in {text}");
    }
    Ok(())
}
