//! Shared fixtures of the `VaultClient` tests: a real OpenBao (behind a counting proxy) and a
//! real Cerbos serving the workspace's test policies, clients over them, a counting PDP and a
//! recording audit sink (the shared pieces come from `secrets-test-support`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use secrets_sdk::pep::{AuthzenClient, AuthzenConfig, AuthzenDialect, PdpSettings, PepConfig};
use secrets_sdk::providers::{Kv2Auth, Kv2Config, Kv2Flavor, RetryConfig};
use secrets_sdk::{ExecutionContext, VaultClient, VaultClientBuilder};
use secrets_test_support::OpenBaoServer;
pub use secrets_test_support::cerbos::policies;
use secrets_test_support::cerbos::{CerbosServer, cerbos_or_skip};
use secrets_test_support::pep::RecordingAudit;
pub use secrets_test_support::pep::{Counting, Recorded};
use secrets_test_support::proxy::CountingProxy;
use serde_json::json;

pub use super::TestResult;
pub use secrets_test_support::pep::{TENANT, jti, reader};

pub const SALT: &str = "test-tenant-salt-0123456789abcdef";
/// `secret/app/api`: default grant terms (300 s, 1 use).
pub const APP: &str = "openbao+kv2://secret/app/api#token";
/// `secret/seven/api`: the policy grants 7 uses for 60 s.
pub const SEVEN: &str = "openbao+kv2://secret/seven/api#token";
/// `secret/denied/api`: the policy denies it.
pub const DENIED: &str = "openbao+kv2://secret/denied/api#token";

/// A real OpenBao with the test secrets, a counting proxy in front of it, and a real Cerbos.
pub struct Servers {
    pub bao: OpenBaoServer,
    pub proxy: CountingProxy,
    pub cerbos: CerbosServer,
}

impl Servers {
    /// The proxy's count of reads of `secret/<path>` (any version).
    pub fn reads(&self, path: &str) -> usize {
        self.proxy.count(&format!("/v1/secret/data/{path}"))
    }

    /// Every KV v2 read that reached OpenBao.
    pub fn all_reads(&self) -> usize {
        self.proxy.count_prefix("/v1/secret/data/")
    }
}

/// Both servers, or `None` after a SKIP line when a tool is missing (a panic under CI=true).
pub fn servers() -> Result<Option<Servers>, secrets_test_support::Error> {
    let Some(bao) = secrets_test_support::openbao_or_skip() else {
        return Ok(None);
    };
    let Some(cerbos) = cerbos_or_skip(&policies()) else {
        return Ok(None);
    };
    for (path, token) in [
        ("app/api", "bao-app-token"),
        ("seven/api", "bao-seven-token"),
        ("seven/other", "bao-seven-other"),
        ("short/x", "bao-short-token"),
        ("denied/api", "bao-denied-token"),
        ("mfa/x", "bao-mfa-token"),
        ("new/x", "bao-new-token"),
    ] {
        bao.kv_put("secret", path, &json!({"token": token, "user": "app"}))?;
    }
    let proxy = CountingProxy::start(&bao.addr())?;
    Ok(Some(Servers { bao, proxy, cerbos }))
}

/// The vault settings for `servers`: through the proxy, one attempt, 5 s timeout.
pub fn kv2(servers: &Servers) -> Kv2Config {
    Kv2Config::new(
        Kv2Flavor::OpenBao,
        servers.proxy.addr(),
        Kv2Auth::token(servers.bao.root_token().to_owned()),
    )
    .with_retry(RetryConfig::attempts(1))
    .with_timeout(Duration::from_secs(5))
}

/// The AuthZEN settings for `cerbos`: Cerbos dialect, 2 s timeout, a breaker that opens after
/// 3 failures for 300 ms.
pub fn authzen(cerbos: &CerbosServer) -> AuthzenConfig {
    super::authzen(&cerbos.addr())
}

/// PEP settings: tenant t1 on mount `secret`, a 300 ms negative cache without jitter, Cerbos.
pub fn pep_config(servers: &Servers) -> PepConfig {
    PepConfig::new(TENANT, "secret".parse().unwrap())
        .with_negative_cache(Duration::from_millis(300), Duration::ZERO)
        .with_pdp(PdpSettings::AuthZen(authzen(&servers.cerbos)))
}

/// A builder over `servers` with the test settings and salt.
pub fn builder(servers: &Servers) -> VaultClientBuilder {
    VaultClient::builder()
        .kv2(kv2(servers))
        .pep_config(pep_config(servers))
        .tenant_salt(SALT)
}

/// A client, its counted PDP and its recorded audit events.
pub type Counted = (VaultClient, Arc<Counting<AuthzenClient>>, Arc<Recording>);

/// A client over `servers` whose PDP calls are counted and whose audit events are kept.
pub fn counted(servers: &Servers) -> Result<Counted, secrets_sdk::Error> {
    counted_with(servers, pep_config(servers))
}

/// [`counted`] with these PEP settings.
pub fn counted_with(servers: &Servers, config: PepConfig) -> Result<Counted, secrets_sdk::Error> {
    counted_on(servers, builder(servers).pep_config(config))
}

/// [`counted`] from `builder` (over `servers`).
pub fn counted_on(
    servers: &Servers,
    builder: VaultClientBuilder,
) -> Result<Counted, secrets_sdk::Error> {
    let pdp = Counting::new(AuthzenClient::new(authzen(&servers.cerbos))?);
    let audit = Arc::new(Recording::default());
    let client = builder
        .pdp(Arc::clone(&pdp))
        .audit(Arc::clone(&audit) as Arc<dyn secrets_sdk::audit::AuditSink>)
        .build()?;
    Ok((client, pdp, audit))
}

/// The audit events of a `VaultClient` (keyed with the client's own salt): the test support's
/// recording sink.
pub type Recording = RecordingAudit;

/// A lookup over fixed variables, for `env_lookup`.
pub fn env(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    secrets_test_support::env_map(vars)
}
