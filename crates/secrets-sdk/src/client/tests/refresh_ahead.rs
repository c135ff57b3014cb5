//! Refresh-ahead racing newer values and deletions, with a scripted provider (its reads can
//! be held back): a refresh that started earlier never overwrites a newer value, and never
//! brings back a secret deleted meanwhile. (The real-server tests are in
//! `tests/tests/secrets_client/rotation.rs`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use secret_providers::{
    Probe, ProbeFuture, ProviderError, ReadFuture, SecretProvider, SecretValue,
};
use secret_uri::{AllowedMounts, Provider, SecretUri};

use crate::{ResolveOptions, SecretsClient};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const URI: &str = "openbao+kv2://secret/app#password";

/// A KV-v2-like provider: reads capture the version at their start; the first read of
/// `slow_version` waits `slow_ms` before it answers.
#[derive(Debug, Default)]
struct Scripted {
    version: AtomicU64,
    deleted: AtomicBool,
    slow_version: AtomicU64,
    slow_ms: AtomicU64,
}

impl Scripted {
    fn gone(uri: &SecretUri) -> ProviderError {
        ProviderError::NotFound {
            provider: "openbao",
            mount: uri.mount().to_owned(),
            status: Some(404),
        }
    }
}

impl SecretProvider for Scripted {
    fn name(&self) -> &'static str {
        "openbao"
    }

    fn read<'a>(&'a self, uri: &'a SecretUri) -> ReadFuture<'a> {
        Box::pin(async move {
            let version = self.version.load(SeqCst);
            let deleted = self.deleted.load(SeqCst);
            if version == self.slow_version.load(SeqCst) {
                let ms = self.slow_ms.swap(0, SeqCst);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            if deleted {
                return Err(Self::gone(uri));
            }
            Ok(SecretValue::from_text(format!("value-{version}")).with_version(version))
        })
    }

    fn probe<'a>(&'a self, uri: &'a SecretUri) -> ProbeFuture<'a> {
        Box::pin(async move {
            if self.deleted.load(SeqCst) {
                return Err(Self::gone(uri));
            }
            Ok(Probe::Version(self.version.load(SeqCst)))
        })
    }
}

fn client(provider: &Arc<Scripted>) -> Result<SecretsClient, crate::Error> {
    SecretsClient::builder()
        .allowed_mounts(AllowedMounts::from_csv("secret"))
        .provider(
            Provider::OpenBao,
            Arc::clone(provider) as Arc<dyn SecretProvider>,
        )
        .cache_ttl(Duration::from_secs(1))
        .watch_interval(Duration::from_secs(3600))
        .build()
}

async fn value(client: &SecretsClient) -> String {
    match client.resolve(URI).await {
        Ok(secret) => secret.expose_str().unwrap_or("?").to_owned(),
        Err(error) => error.code().to_owned(),
    }
}

/// A hit in the refresh window (the last 10–20 % of a 1 s TTL) whose read of v2 is slow.
async fn slow_refresh_ahead(provider: &Scripted, client: &SecretsClient, t0: Instant, ms: u64) {
    tokio::time::sleep_until((t0 + Duration::from_millis(920)).into()).await;
    provider.slow_version.store(2, SeqCst);
    provider.slow_ms.store(ms, SeqCst);
    provider.version.store(2, SeqCst);
    assert_eq!(value(client).await, "value-1");
}

#[tokio::test]
async fn a_slow_refresh_never_overwrites_a_newer_value() -> TestResult {
    let provider = Arc::new(Scripted::default());
    provider.version.store(1, SeqCst);
    let client = client(&provider)?;
    let t0 = Instant::now();
    assert_eq!(value(&client).await, "value-1");
    slow_refresh_ahead(&provider, &client, t0, 700).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    provider.version.store(3, SeqCst);
    let fresh = client.resolve_with(URI, ResolveOptions::refresh()).await?;
    assert_eq!(fresh.expose_str(), Some("value-3"));
    // The refresh-ahead's read of v2 lands now: v3 stays.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(value(&client).await, "value-3");
    Ok(())
}

#[tokio::test]
async fn a_slow_refresh_never_brings_back_a_deleted_secret() -> TestResult {
    let provider = Arc::new(Scripted::default());
    provider.version.store(1, SeqCst);
    let client = client(&provider)?;
    let t0 = Instant::now();
    assert_eq!(value(&client).await, "value-1");
    slow_refresh_ahead(&provider, &client, t0, 500).await;
    provider.deleted.store(true, SeqCst);
    tokio::time::sleep_until((t0 + Duration::from_millis(1100)).into()).await;
    assert_eq!(value(&client).await, "NOT_FOUND");
    // The read that started before the deletion lands at about 1.42 s: still gone.
    tokio::time::sleep_until((t0 + Duration::from_millis(1500)).into()).await;
    assert_eq!(value(&client).await, "NOT_FOUND");
    Ok(())
}
