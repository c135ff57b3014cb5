//! Redis fixtures of the suites that keep the PEP's state in Redis (`vault_client_redis`,
//! `cli/get_redis`): one `redis-server` per test binary, the variables that point a
//! `VaultClient` (or `secrets get`) at it, and the scan of every key and value for canaries.
//!
//! The state is configured the way a deployment configures it, through the environment
//! (`REDIS_URL`, read by secret-pep's settings reader), so these helpers compile whether or
//! not the tests crate enables `secrets-sdk/redis`; a client built without it is refused with
//! `CONFIG` naming `REDIS_URL`, and [`expect_redis_feature`] turns that into a clear failure.

use std::sync::Arc;

use secrets_test_support::Shared;
use secrets_test_support::redis::{RedisServer, redis_or_skip};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The HMAC key of the Redis key names (`PEP_STATE_KEY`), shared by every replica.
pub const STATE_KEY: &str = "redis-suite-pep-state-key-5d0c9e41";

/// The Redis of this test binary: tests that only use it share it ([`Self::read`]); a test
/// that stops, pauses or restarts it holds it alone meanwhile ([`Self::write`]). An async
/// lock: the guards are held across the tests' awaits.
pub struct SuiteRedis(RwLock<RedisServer>);

impl SuiteRedis {
    /// Shared use: the server runs while the guard is held.
    pub async fn read(&self) -> RwLockReadGuard<'_, RedisServer> {
        self.0.read().await
    }

    /// [`Self::read`] for a test that is not async.
    pub fn blocking_read(&self) -> RwLockReadGuard<'_, RedisServer> {
        self.0.blocking_read()
    }

    /// Sole use, to stop, pause or restart it.
    pub async fn write(&self) -> RwLockWriteGuard<'_, RedisServer> {
        self.0.write().await
    }
}

/// The binary's one Redis (started by the first test that asks, stopped when the last holder
/// lets go: [`Shared`]), or `None` after a SKIP line when `redis-server` is not installed
/// locally (a panic under CI=true).
pub fn suite_redis() -> Option<Arc<SuiteRedis>> {
    static SHARED: Shared<SuiteRedis> = Shared::new();
    SHARED.get_or_start(|| redis_or_skip().map(|server| SuiteRedis(RwLock::new(server))))
}

/// The variables that keep a PEP's state in `server` under `prefix`, every call bounded by
/// `timeout_ms`.
pub fn state_vars(
    server: &RedisServer,
    prefix: &str,
    timeout_ms: u64,
) -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_URL", server.url()),
        ("REDIS_KEY_PREFIX", prefix.to_owned()),
        ("PEP_STATE_KEY", STATE_KEY.to_owned()),
        ("REDIS_TIMEOUT_MS", timeout_ms.to_string()),
        ("REDIS_CONNECT_TIMEOUT_MS", timeout_ms.to_string()),
    ]
}

/// `built`, or a failure that says the tests crate lacks `secrets-sdk/redis` (a client built
/// without it refuses `REDIS_URL` with `CONFIG`).
///
/// # Panics
/// When `built` is that refusal.
pub fn expect_redis_feature<T>(
    built: Result<T, secrets_sdk::Error>,
) -> Result<T, secrets_sdk::Error> {
    if let Err(error) = &built
        && error
            .pep_error()
            .and_then(secrets_sdk::pep::PepError::setting)
            == Some("REDIS_URL")
        && error.to_string().contains("feature")
    {
        panic!(
            "the tests crate builds secrets-sdk without its `redis` feature: enable it in \
             tests/Cargo.toml (or run with `--features secrets-sdk/redis`): {error}"
        );
    }
    built
}

/// Scans every key and value in `server` (`SCAN`, then each entry's content) and fails when
/// any holds one of `canaries`; returns how many entries were scanned. Keys are the PEP's
/// HMAC-named ones, so a hit names the key and the canary, never the value.
///
/// # Panics
/// When a canary is found, or the scan fails.
pub fn assert_no_canary(server: &RedisServer, canaries: &[&str]) -> usize {
    let entries = server.entries().expect("scan every key and value in Redis");
    for entry in &entries {
        for canary in canaries {
            assert!(
                !entry.contains(canary.as_bytes()),
                "canary {canary:?} in Redis entry {:?}",
                String::from_utf8_lossy(&entry.key)
            );
        }
    }
    entries.len()
}

/// The keys under `prefix` of one `kind` (`replay`, `grant`, `uses`, `deny`, `claim`).
pub fn keys_of(server: &RedisServer, prefix: &str, kind: &str) -> Vec<String> {
    let infix = format!(":{kind}:");
    server
        .keys()
        .expect("list the keys in Redis")
        .into_iter()
        .map(|key| String::from_utf8_lossy(&key).into_owned())
        .filter(|key| key.starts_with(prefix) && key.contains(&infix))
        .collect()
}
