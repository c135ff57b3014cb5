//! Shared fixtures of the `VaultClient` tests: a real OpenBao (behind a counting proxy) and a
//! real Cerbos serving secret-pep's test policies, clients over them, a counting PDP and a
//! recording audit hook.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use secrets_sdk::pep::{
    AccessRequest, AuthzenClient, AuthzenConfig, AuthzenDialect, BatchDecision, BatchRequest,
    Grant, PdpFuture, PdpSettings, PepConfig, SecretPolicyService,
};
use secrets_sdk::providers::{Kv2Auth, Kv2Config, Kv2Flavor, RetryConfig};
use secrets_sdk::{
    ExecutionContext, VaultAuditEvent, VaultAuditHook, VaultClient, VaultClientBuilder,
};
use secrets_test_support::OpenBaoServer;
use secrets_test_support::cerbos::{CerbosServer, cerbos_or_skip};
use secrets_test_support::proxy::CountingProxy;
use serde_json::json;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub const TENANT: &str = "t1";
pub const SALT: &str = "test-tenant-salt-0123456789abcdef";
/// `secret/app/api`: default grant terms (300 s, 1 use).
pub const APP: &str = "openbao+kv2://secret/app/api#token";
/// `secret/seven/api`: the policy grants 7 uses for 60 s.
pub const SEVEN: &str = "openbao+kv2://secret/seven/api#token";
/// `secret/denied/api`: the policy denies it.
pub const DENIED: &str = "openbao+kv2://secret/denied/api#token";

/// secret-pep's Cerbos test policies, used as they are (see docs/pep.md).
pub fn policies() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../secret-pep/tests/policies")
}

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
    AuthzenConfig::new(cerbos.addr())
        .with_dialect(AuthzenDialect::Cerbos)
        .with_timeout(Duration::from_secs(2))
        .with_breaker(3, Duration::from_millis(300))
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
    let pdp = Counting::new(AuthzenClient::new(authzen(&servers.cerbos))?);
    let audit = Arc::new(Recording::default());
    let client = builder(servers)
        .pep_config(config)
        .pdp(Arc::clone(&pdp))
        .audit(Arc::clone(&audit))
        .build()?;
    Ok((client, pdp, audit))
}

/// A reader of tenant t1 with the right audience and this `jti`.
pub fn reader(jti: impl Into<String>) -> ExecutionContext {
    ExecutionContext::new("alice")
        .with_aud(["crud.secrets"])
        .with_roles(["reader"])
        .with_issuer("https://issuer.test")
        .with_jti(jti)
}

/// A unique `jti` per call within a test binary.
pub fn jti() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("jti-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A lookup over fixed variables, for `env_lookup`.
pub fn env(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let map: std::collections::HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    move |name| map.get(name).cloned()
}

/// Counts calls to the PDP it wraps.
#[derive(Debug)]
pub struct Counting<P> {
    pub inner: P,
    pub single: AtomicUsize,
    pub batch: AtomicUsize,
}

impl<P> Counting<P> {
    pub fn new(inner: P) -> Arc<Self> {
        Arc::new(Self {
            inner,
            single: AtomicUsize::new(0),
            batch: AtomicUsize::new(0),
        })
    }

    pub fn single(&self) -> usize {
        self.single.load(Ordering::SeqCst)
    }

    pub fn batches(&self) -> usize {
        self.batch.load(Ordering::SeqCst)
    }
}

impl<P: SecretPolicyService> SecretPolicyService for Counting<P> {
    fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
        self.single.fetch_add(1, Ordering::SeqCst);
        self.inner.authorize_use(request)
    }

    fn authorize_batch<'a>(
        &'a self,
        request: &'a BatchRequest<'a>,
    ) -> PdpFuture<'a, Vec<BatchDecision>> {
        self.batch.fetch_add(1, Ordering::SeqCst);
        self.inner.authorize_batch(request)
    }
}

/// One audit event, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub decision: &'static str,
    pub code: &'static str,
    pub reason: Option<&'static str>,
    pub subject: Option<String>,
    pub grant_id: Option<String>,
    pub use_number: Option<u32>,
    pub resource_ref: Option<String>,
    /// The PEP's unkeyed placeholder, to check the keyed one differs.
    pub unkeyed_ref: Option<String>,
    pub debug: String,
}

/// Keeps every audit event.
#[derive(Debug, Default)]
pub struct Recording {
    pub events: Mutex<Vec<Recorded>>,
}

impl Recording {
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// (decision, code) of each event taken.
    pub fn summary(&self) -> Vec<(&'static str, &'static str)> {
        self.take().iter().map(|e| (e.decision, e.code)).collect()
    }
}

impl VaultAuditHook for Recording {
    fn record(&self, event: &VaultAuditEvent<'_>) {
        let pep = event.event();
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Recorded {
                decision: pep.decision.as_str(),
                code: pep.code,
                reason: pep.reason.map(|r| r.code()),
                subject: pep.subject.map(str::to_owned),
                grant_id: pep.grant_id.map(str::to_owned),
                use_number: pep.use_number,
                resource_ref: event.resource_ref().map(ToString::to_string),
                unkeyed_ref: pep.resource_ref(),
                debug: format!("{event:?}"),
            });
    }
}
