//! `VaultClient`s as replicas of one service, their PEP state in one real Redis
//! (`REDIS_URL`, secrets-sdk's `redis` feature), against a real OpenBao and a real Cerbos, each
//! behind a counting proxy: reads are counted where they reach OpenBao, decisions where they
//! reach Cerbos (`POST /access/v1/evaluation`).
//!
//! - `replicas.rs`: a `jti` used on one client is a `REPLAY` on the other (before the PDP and
//!   the vault), a grant one client's decision stored serves the other, a denial is shared;
//!   200 tasks across both clients race a grant of 5 uses: exactly 5 reads per decision.
//! - `outage.rs`: Redis stopped → `STATE_STORE_UNAVAILABLE`, nothing reaches Cerbos or OpenBao;
//!   restarted → both clients recover as they are; paused (never answers) →
//!   `STATE_STORE_UNAVAILABLE` within `REDIS_TIMEOUT_MS`.
//!
//! Every test ends by scanning every key and value in Redis for the suite's canaries (subject,
//! URIs, paths, `jti`s, issuer, value, tenant salt, state key, vault token): none may appear.
//!
//! One `redis-server` for the binary (`common::redis::suite_redis`): tests keep to a key prefix
//! of their own, and the outage test holds the server alone while it stops and pauses it.
//! Without `redis-server`, `bao` or `cerbos` these tests print `SKIP` and pass locally; under
//! `CI=true` they fail (`cargo xtask services install`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod outage;
mod replicas;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use secrets_sdk::pep::AuthzenClient;
use secrets_sdk::{ExecutionContext, VaultClient};
use secrets_test_support::proxy::CountingProxy;
use secrets_test_support::redis::RedisServer;

use common::redis::{STATE_KEY, expect_redis_feature, state_vars};
use common::vault::{Counting, Recording, SALT, Servers, TENANT, env, kv2, servers};

/// The suite's marker: every subject, path, value, `jti` and issuer below contains it.
const MARK: &str = "rcanary";
/// The caller's subject.
const SUBJECT: &str = "rcanary-subject-3b7e";
/// The caller's token issuer (scopes its `jti`s).
const ISSUER: &str = "https://rcanary-issuer.test";
/// The secret's path on mount `secret`: the test policy grants it default terms.
const PATH: &str = "rcanary-path-91c4/api";
/// Its value.
const VALUE: &str = "rcanary-value-5a1f";
/// The grant terms the PEP gives a permit without terms (the policy's default for `PATH`).
const MAX_USES: usize = 5;

/// The secret's URI.
fn uri() -> String {
    format!("openbao+kv2://secret/{PATH}#token")
}

/// A `jti` no other call in this process uses.
fn jti() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{MARK}-jti-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A reader of tenant t1, as the test policy expects one, with this `jti`.
fn caller(jti: &str) -> ExecutionContext {
    ExecutionContext::new(SUBJECT)
        .with_aud(["crud.secrets"])
        .with_roles(["reader"])
        .with_issuer(ISSUER)
        .with_jti(jti)
}

/// OpenBao (with the secret) and Cerbos, each behind a counting proxy.
struct Stack {
    servers: Servers,
    /// In front of Cerbos: every decision the replicas asked for.
    pdp: CountingProxy,
}

impl Stack {
    fn start() -> Result<Option<Self>, secrets_test_support::Error> {
        let Some(servers) = servers()? else {
            return Ok(None);
        };
        servers
            .bao
            .kv_put("secret", PATH, &serde_json::json!({"token": VALUE}))?;
        let pdp = CountingProxy::start(&servers.cerbos.addr())?;
        Ok(Some(Self { servers, pdp }))
    }

    /// Single decisions that reached Cerbos.
    fn decisions(&self) -> usize {
        self.pdp.count("/access/v1/evaluation")
    }

    /// Reads of [`PATH`] that reached OpenBao.
    fn reads(&self) -> usize {
        self.servers.reads(PATH)
    }

    /// What no key or value in Redis may hold.
    fn canaries(&self) -> Vec<String> {
        vec![
            MARK.to_owned(),
            uri(),
            "denied/api".to_owned(),
            "issuer.test".to_owned(),
            SALT.to_owned(),
            STATE_KEY.to_owned(),
            self.servers.bao.root_token().to_owned(),
        ]
    }
}

/// One replica: a client with its own PDP client (counted), audit and Redis connection.
struct Replica {
    client: VaultClient,
    pdp: Arc<Counting<AuthzenClient>>,
    audit: Arc<Recording>,
}

impl Replica {
    /// A client configured as a deployment configures one: the PEP settings and the Redis
    /// state from the environment (`REDIS_URL`, …, read by secret-pep), each call to Redis
    /// bounded by `timeout_ms`; the vault and the PDP (through the proxy) given in code.
    fn new(
        stack: &Stack,
        redis: &RedisServer,
        prefix: &str,
        timeout_ms: u64,
    ) -> Result<Self, secrets_sdk::Error> {
        Self::coalescing(stack, redis, prefix, timeout_ms, true)
    }

    /// As [`Replica::new`], with concurrent reads of one URI sharing the vault read in
    /// flight (`coalesce`, the default) or each reaching the vault.
    fn coalescing(
        stack: &Stack,
        redis: &RedisServer,
        prefix: &str,
        timeout_ms: u64,
        coalesce: bool,
    ) -> Result<Self, secrets_sdk::Error> {
        let authzen = common::authzen(&stack.pdp.addr()).with_discovery(false);
        let pdp = Counting::new(AuthzenClient::new(authzen)?);
        let audit = Arc::new(Recording::default());
        let mut vars: Vec<(&str, String)> = vec![
            ("TENANT_ID", TENANT.to_owned()),
            ("TENANT_ALLOWED_MOUNTS", "secret".to_owned()),
            ("GRANT_TTL_DEFAULT", "300".to_owned()),
            ("GRANT_MAX_USES_DEFAULT", MAX_USES.to_string()),
            ("NEGATIVE_CACHE_TTL_S", "30".to_owned()),
            ("NEGATIVE_CACHE_JITTER_MS", "0".to_owned()),
        ];
        vars.extend(state_vars(redis, prefix, timeout_ms));
        let built = VaultClient::builder()
            .kv2(kv2(&stack.servers))
            .tenant_salt(SALT)
            .env_lookup(env(&vars))
            .pdp(Arc::clone(&pdp))
            .audit(Arc::clone(&audit) as Arc<dyn secrets_sdk::audit::AuditSink>)
            .io_threads(2)
            .coalesce_reads(coalesce)
            .build();
        Ok(Self {
            client: expect_redis_feature(built)?,
            pdp,
            audit,
        })
    }

    /// Reads [`uri`] with this `jti`.
    async fn get(&self, jti: &str) -> Result<secrets_sdk::Secret, secrets_sdk::Error> {
        self.client
            .get_credentials(uri().as_str(), Some(&caller(jti)))
            .await
    }

    /// Reads with fresh `jti`s until a read succeeds (the state store is back), within
    /// `within`; every failure on the way must be `STATE_STORE_UNAVAILABLE`. How many failed.
    async fn recover(&self, within: Duration) -> Result<usize, secrets_sdk::Error> {
        let deadline = Instant::now() + within;
        let mut failed = 0;
        loop {
            match self.get(&jti()).await {
                Ok(secret) => {
                    assert_eq!(secret.expose_str(), Some(VALUE));
                    return Ok(failed);
                }
                Err(e) if e.code() == "STATE_STORE_UNAVAILABLE" && Instant::now() < deadline => {
                    failed += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
