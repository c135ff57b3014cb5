//! [`VaultClientBuilder`]: the settings of a [`VaultClient`], explicit or from the environment,
//! and the checks [`build`](VaultClientBuilder::build) makes before it assembles one.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use secrecy::SecretString;
use secret_config::Env;
use secret_pep::{ExecutionContext, PdpSettings, Pep, PepConfig, PepState, SecretPolicyService};
use secret_providers::{Kv2Config, Kv2Flavor, ProviderError, SecretProvider};
use secret_uri::Provider;

use secret_audit::{AuditKey, AuditSink};
use secret_telemetry::Metrics;

use super::{Core, DEFAULT_IO_THREADS, Inner, TENANT_SALT_ENV, VaultClient};
use crate::Error;
use crate::io_runtime::IoRuntime;
use crate::routes::Routes;

#[cfg(doc)]
use super::ResourceRef;

/// The default [`VaultClientBuilder::read_deadline`].
const DEFAULT_READ_DEADLINE: Duration = Duration::from_secs(60);
/// The longest [`VaultClientBuilder::read_deadline`].
const MAX_READ_DEADLINE: Duration = Duration::from_secs(3600);

type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Builds a [`VaultClient`]. Every setting can be given explicitly; [`from_env`](Self::from_env)
/// (or [`env_lookup`](Self::env_lookup)) reads the rest from the environment:
///
/// | Variable | Meaning | Default |
/// | --- | --- | --- |
/// | `VAULT_URL` (else `VAULT_ADDR`) | the KV v2 server for `openbao` and `hashicorp` URIs | **required** (or [`kv2`](Self::kv2)) |
/// | `VAULT_TOKEN` | its token | **required**, unless `VAULT_TOKEN_FILE` or another `VAULT_AUTH_METHOD` is set |
/// | `TENANT_ID` | the tenant served | **required** (or [`pep_config`](Self::pep_config)) |
/// | `TENANT_ALLOWED_MOUNTS` | comma list of mounts | **required**, non-empty |
/// | `SECRET_TENANT_SALT` | HMAC key of audit [`ResourceRef`]s, at least 16 bytes | **required** (or [`tenant_salt`](Self::tenant_salt)) |
/// | `VAULT_TIMEOUT`, `VAULT_VERIFY_SSL`, other `VAULT_*` | as `Kv2Config::from_lookup` (HashiCorp flavor) reads them | 30 s, `true` |
/// | `GRANT_TTL_DEFAULT`, `GRANT_MAX_USES_DEFAULT` | grant terms when the PDP gives none | 300 s, 1 |
/// | `NEGATIVE_CACHE_TTL_S`, `ANTI_REPLAY_TTL_S`, … | the PEP's caches | 5 s, 300 s |
/// | `SECRETS_AUDIENCE` | the audience `aud` must contain | `crud.secrets` |
/// | `AUTHZEN_PDP_URL` and `AUTHZEN_*` | the AuthZEN PDP | required unless [`pdp`](Self::pdp) gives one or `ENABLE_AUTHORIZATION=false` |
/// | `REDIS_URL`, `REDIS_KEY_PREFIX`, `PEP_STATE_KEY`, `REDIS_TIMEOUT_MS`, … | the PEP's state (grants, use counts, `jti`s, denials) on Redis, shared by every replica (feature `redis`; [`RedisConfig`](secret_pep::RedisConfig)) | in the client's memory |
///
/// The PEP variables are read by [`PepConfig::from_lookup`]; empty values count as unset.
/// With `REDIS_URL` set, the client's PEP keeps its state in that Redis (a warm decision is
/// one round trip) and fails closed with `STATE_STORE_UNAVAILABLE` when Redis cannot answer
/// within `REDIS_TIMEOUT_MS`; a build without the `redis` feature refuses `REDIS_URL` with
/// `CONFIG`. [`pep_state`](Self::pep_state) gives the state in code instead.
///
/// ```
/// use secrets_sdk::VaultClient;
///
/// let err = VaultClient::builder()
///     .env_lookup(|name| (name == "VAULT_URL").then(|| "http://127.0.0.1:8200".to_owned()))
///     .build()
///     .unwrap_err();
/// assert_eq!((err.code(), err.setting()), ("CONFIG", Some("VAULT_TOKEN")));
/// ```
#[derive(Default)]
#[must_use]
pub struct VaultClientBuilder {
    lookup: Option<Lookup>,
    kv2: Vec<Kv2Config>,
    pep_config: Option<PepConfig>,
    salt: Option<SecretString>,
    pdp: Option<Arc<dyn SecretPolicyService>>,
    audit: Option<Arc<dyn AuditSink>>,
    default_context: Option<ExecutionContext>,
    io_threads: Option<usize>,
    providers: Vec<(Provider, Arc<dyn SecretProvider>)>,
    read_deadline: Option<Duration>,
    coalesce_reads: Option<bool>,
    metrics: Option<Metrics>,
    state: Option<PepState>,
}

impl fmt::Debug for VaultClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClientBuilder")
            .field("from_env", &self.lookup.is_some())
            .field("kv2", &self.kv2)
            .field("pep_config", &self.pep_config)
            .field("salt", &self.salt.as_ref().map(|_| "[REDACTED]"))
            .field("pdp", &self.pdp)
            .field("audit", &self.audit)
            .field("default_context", &self.default_context)
            .field("io_threads", &self.io_threads)
            .field("providers", &self.providers)
            .field("read_deadline", &self.read_deadline)
            .field("coalesce_reads", &self.coalesce_reads)
            .field("metrics", &self.metrics)
            .field("state", &self.state)
            .finish()
    }
}

impl VaultClientBuilder {
    /// Falls back to the process environment for what is not set explicitly.
    pub fn from_env(self) -> Self {
        self.env_lookup(|name| std::env::var(name).ok())
    }

    /// Falls back to variables read through `lookup` (a map in tests, a config store …).
    pub fn env_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.lookup = Some(Arc::new(lookup));
        self
    }

    /// Uses these vault settings instead of `VAULT_*`. The config serves its flavor's scheme;
    /// the other scheme reaches the same server unless a config of its flavor is given too.
    /// Configs naming one server share one provider (one pool, one token).
    pub fn kv2(mut self, config: Kv2Config) -> Self {
        self.kv2.push(config);
        self
    }

    /// Uses these PEP settings instead of `TENANT_ID`, `TENANT_ALLOWED_MOUNTS` and the other
    /// PEP variables (`REDIS_URL` included: the state is then the config's
    /// [`state`](PepConfig::state), in memory unless it says Redis, or
    /// [`pep_state`](Self::pep_state)).
    pub fn pep_config(mut self, config: PepConfig) -> Self {
        self.pep_config = Some(config);
        self
    }

    /// The HMAC key of audit [`ResourceRef`]s (instead of `SECRET_TENANT_SALT`); at least 16
    /// bytes, ideally 32 random ones.
    pub fn tenant_salt(mut self, salt: impl Into<SecretString>) -> Self {
        self.salt = Some(salt.into());
        self
    }

    /// Uses this PDP instead of the one the PEP settings name (then `AUTHZEN_PDP_URL` may be
    /// unset).
    pub fn pdp(mut self, pdp: impl SecretPolicyService + 'static) -> Self {
        self.pdp = Some(Arc::new(pdp));
        self
    }

    /// Audits every decision and read into `sink` (default: none): OCSF-ready events keyed
    /// with the tenant salt ([`ResourceRef`]s, never the URI), published without waiting on
    /// the network; the `AUDIT_*` settings (`AUDIT_HASH_SUBJECT`, …) apply. Close the sink at
    /// shutdown ([`AuditSink::close`]) so nothing queued is lost.
    pub fn audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// The context used when a call passes `None`, e.g. the service's own identity. Without
    /// one, `None` is an empty context, which the PEP refuses (`SUBJECT_MISSING`).
    pub fn default_context(mut self, ctx: ExecutionContext) -> Self {
        self.default_context = Some(ctx);
        self
    }

    /// The longest one provider read may take, whatever it chains (login, retries), default
    /// 60 s, at most 1 h; then `TIMEOUT` (and the use goes back). A provider of one's own that
    /// never answers cannot hang a call.
    pub fn read_deadline(mut self, deadline: Duration) -> Self {
        self.read_deadline = Some(deadline);
        self
    }

    /// Whether a request for a secret that another request of this client is reading right
    /// now waits for that read instead of sending its own (default `true`). Only the vault
    /// read is shared: each request is still authorized, counted and audited on its own. A
    /// request joins only a read under way (same canonical URI, `#key` and `?version=`
    /// included), so its value was read at most one round trip before it asked; nothing is
    /// kept once the read ends. With `false`, every request reads the vault.
    pub fn coalesce_reads(mut self, coalesce: bool) -> Self {
        self.coalesce_reads = Some(coalesce);
        self
    }

    /// Records the client's metrics (`secrets.resolve.duration` with `cache = "none"`,
    /// `secrets.provider.*`) with these instruments instead of [`Metrics::global`].
    ///
    /// Either way the instruments are bound when the client is built: **install your meter
    /// provider (`opentelemetry::global::set_meter_provider`, or
    /// `secrets_sdk::telemetry::otlp` with feature `otlp`) before building the client**, or
    /// pass `Metrics::new(&meter)` here. A client built before any provider was installed
    /// records nothing. Labels are provider, outcome and error codes only.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Keeps the PEP's state (grants and their use counts, the `jti`s of the replay window,
    /// the negative cache) in `state` instead of where the PEP settings say (`REDIS_URL`, else
    /// the client's own memory). For instance `PepState::redis` (feature `redis`) so that
    /// every replica of a service shares one replay window, one use count per grant and one
    /// negative cache; or `PepState::memory().with_replay(store)` to share only the `jti`s.
    ///
    /// Give each client a `RedisState` of its own (made from one
    /// [`RedisConfig`](secret_pep::RedisConfig)): its connection is made at its first call,
    /// on that client's runtime, and lives as long as that runtime. A state made for another
    /// tenant is refused (`CONFIG` naming `TENANT_ID`). No connection is made by `build`.
    ///
    /// ```
    /// # #[cfg(feature = "redis")] {
    /// use secrets_sdk::VaultClient;
    /// use secrets_sdk::pep::{DevAllowAll, PepState, RedisConfig, RedisState};
    ///
    /// let env = |name: &str| match name {
    ///     "VAULT_URL" => Some("http://127.0.0.1:8200".to_owned()),
    ///     "VAULT_TOKEN" => Some("s.example".to_owned()),
    ///     "TENANT_ID" => Some("t1".to_owned()),
    ///     "TENANT_ALLOWED_MOUNTS" => Some("secret".to_owned()),
    ///     "ENVIRONMENT" => Some("test".to_owned()),
    ///     _ => None,
    /// };
    /// // Every replica names the same Redis and the same key (at least 16 bytes).
    /// let redis = RedisConfig::new("redis://127.0.0.1:6379", b"pep-state-key-0123456789abcdef")?
    ///     .with_key_prefix("prod:");
    /// let client = VaultClient::builder()
    ///     .env_lookup(env)
    ///     .tenant_salt("0123456789abcdef0123456789abcdef")
    ///     .pdp(DevAllowAll::new())
    ///     .pep_state(PepState::redis(RedisState::new(&redis, "t1")?))
    ///     .build()?; // no connection yet: the first call connects
    /// # drop(client);
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pep_state(mut self, state: PepState) -> Self {
        self.state = Some(state);
        self
    }

    /// Worker threads of the client's I/O runtime (default [`DEFAULT_IO_THREADS`]).
    pub fn io_threads(mut self, threads: usize) -> Self {
        self.io_threads = Some(threads);
        self
    }

    /// Serves `provider`'s scheme with a provider of one's own (replacing the built-in KV v2
    /// route for `openbao`/`hashicorp`), behind the same PEP: every read of it is authorized
    /// first, counted against its grant and audited. The grant's resource identity names the
    /// provider's [`backend`](SecretProvider::backend). See
    /// [`SecretsClientBuilder::provider`](crate::SecretsClientBuilder::provider) for an example
    /// provider.
    pub fn provider(mut self, provider: Provider, implementation: Arc<dyn SecretProvider>) -> Self {
        self.providers.retain(|(p, _)| *p != provider);
        self.providers.push((provider, implementation));
        self
    }

    /// Builds the client: checks the required settings, then assembles the parts (routes,
    /// PEP, runtime), each built by its own step. No network I/O happens here: the PDP and
    /// the vault are contacted (and the vault logged in to) at the first call.
    ///
    /// # Errors
    /// `CONFIG` naming the missing or invalid setting; the PEP's `CONFIG` errors (e.g. no PDP
    /// configured, development mode in production, an invalid `REDIS_URL` or `PEP_STATE_KEY`,
    /// `REDIS_URL` without the `redis` feature, a [`pep_state`](Self::pep_state) of another
    /// tenant).
    pub fn build(self) -> Result<VaultClient, Error> {
        let lookup = self.lookup.clone();
        let raw = move |name: &str| lookup.as_ref().and_then(|lookup| lookup(name));
        let env = Env::new(&raw);
        self.check_required(&env)?;
        let key = self.audit_key(&env)?;
        // Bound now, to the meter provider of this moment: the client, its KV v2 providers,
        // its PEP and the audit queue it creates record through these.
        let metrics = self.metrics.clone().unwrap_or_else(Metrics::global);
        let routes = self.routes(&env, &metrics)?;
        let io_threads = self.io_threads.unwrap_or(DEFAULT_IO_THREADS);
        if io_threads == 0 {
            return Err(Error::config("io_threads", "must be at least 1"));
        }
        let pep_config = self.pep_settings(&env)?;
        let mut pep = Pep::builder(pep_config).metrics(metrics.clone());
        // Grants belong to the resource on its server: both schemes name the server they
        // reach, so `openbao://x` and `hashicorp+kv2://x` on one VAULT_URL share a grant.
        for (scheme, backend) in backend_ids(&routes) {
            pep = pep.backend(scheme, backend);
        }
        if let Some(pdp) = self.pdp {
            pep = pep.pdp(pdp);
        }
        if let Some(state) = self.state {
            pep = pep.state(state);
        }
        // A sink given in code, else the one the environment asks for (the client owns that
        // one and flushes it on close).
        let owned_sink = match (&self.audit, &self.lookup) {
            (None, Some(_)) => crate::audit_config::env_sink(&env, &metrics)?,
            _ => None,
        };
        if let Some(sink) = self.audit.clone().or_else(|| owned_sink.clone()) {
            let auditor = crate::audit_config::auditor(key.clone(), sink, &env)?;
            pep = pep.auditor(Arc::new(auditor));
        }
        let pep = pep.build()?;
        Ok(VaultClient {
            inner: Arc::new(Inner {
                core: Arc::new(Core {
                    pep,
                    routes,
                    read_deadline: self
                        .read_deadline
                        .unwrap_or(DEFAULT_READ_DEADLINE)
                        .clamp(Duration::from_millis(1), MAX_READ_DEADLINE),
                    key: Arc::new(key),
                    metrics,
                    flights: self
                        .coalesce_reads
                        .unwrap_or(true)
                        .then(super::Flights::default),
                }),
                default_context: self.default_context.unwrap_or_default(),
                io_threads,
                runtime: IoRuntime::new(io_threads, "vault-client-io"),
                closed: AtomicBool::new(false),
                owned_sink,
            }),
        })
    }

    /// The required settings, the first missing one named in the documented order.
    fn check_required(&self, env: &Env<'_>) -> Result<(), Error> {
        if self.kv2.is_empty() {
            if env
                .get("VAULT_URL")
                .or_else(|| env.get("VAULT_ADDR"))
                .is_none()
            {
                return Err(missing("VAULT_URL", "kv2"));
            }
            let method = env.get("VAULT_AUTH_METHOD").map(|m| m.to_ascii_lowercase());
            if matches!(method.as_deref(), None | Some("token"))
                && env.get("VAULT_TOKEN").is_none()
                && env.get("VAULT_TOKEN_FILE").is_none()
            {
                return Err(missing("VAULT_TOKEN", "kv2"));
            }
        }
        if self.pep_config.is_none() {
            for name in ["TENANT_ID", "TENANT_ALLOWED_MOUNTS"] {
                if env.get(name).is_none() {
                    return Err(missing(name, "pep_config"));
                }
            }
        }
        Ok(())
    }

    /// The audit key: the tenant salt, given or from `SECRET_TENANT_SALT` (at least 16
    /// bytes), with `SECRET_TENANT_SALT_ID`. Required: spans and audit events name secrets by
    /// their keyed reference.
    fn audit_key(&self, env: &Env<'_>) -> Result<AuditKey, Error> {
        let setting = if self.salt.is_some() {
            "tenant_salt"
        } else {
            TENANT_SALT_ENV
        };
        crate::audit_config::key(self.salt.as_ref(), env)?
            .ok_or_else(|| missing(setting, "tenant_salt"))
    }

    /// The routes: one KV v2 provider per server (the given configs, else `VAULT_*`; each
    /// recording through the client's metrics unless given its own) for both vault schemes,
    /// then the providers of one's own.
    fn routes(&self, env: &Env<'_>, metrics: &Metrics) -> Result<Routes, Error> {
        let mut configs = self.kv2.clone();
        if configs.is_empty() {
            configs.push(
                Kv2Config::from_lookup(Kv2Flavor::HashiCorp, |name: &str| env.raw(name))
                    .map_err(vault_config_error)?,
            );
        }
        for config in &mut configs {
            config.metrics.get_or_insert_with(|| metrics.clone());
        }
        let mut routes = Routes::new("VaultClient has no vault for this scheme");
        routes.insert_kv2(configs).map_err(vault_config_error)?;
        #[cfg(feature = "db")]
        routes.insert_db();
        for (provider, implementation) in &self.providers {
            routes.insert(*provider, Arc::clone(implementation));
        }
        Ok(routes)
    }

    /// The PEP settings, given or from the environment. A PDP given in code stands in for
    /// `AUTHZEN_PDP_URL`: the rest is read as if development mode were set, then the PDP
    /// setting is cleared, so the given PDP decides and no PDP is ever silently allow-all.
    fn pep_settings(&self, env: &Env<'_>) -> Result<PepConfig, Error> {
        if let Some(config) = &self.pep_config {
            return Ok(config.clone());
        }
        let stand_in = self.pdp.is_some()
            && env.get("AUTHZEN_PDP_URL").is_none()
            && env.get("ENABLE_AUTHORIZATION").is_none();
        let mut config = PepConfig::from_lookup(|name| {
            if stand_in && name == "ENABLE_AUTHORIZATION" {
                Some("false".to_owned())
            } else {
                env.raw(name)
            }
        })?;
        if stand_in {
            config.pdp = PdpSettings::None;
        }
        Ok(config)
    }
}

/// The backend each route names in the PEP's resource identity: the provider's own
/// [`backend`](SecretProvider::backend), shared by the schemes routed to that one provider
/// (so aliases share a grant). Two different provider objects claiming one backend (say two
/// providers of one's own that kept the default, their `name`) are different stores: each is
/// told apart by the first scheme routed to it, so no decision about one serves the other.
fn backend_ids(routes: &Routes) -> Vec<(Provider, String)> {
    let routed: Vec<(Provider, &Arc<dyn SecretProvider>)> = routes.iter().collect();
    routed
        .iter()
        .map(|&(scheme, provider)| {
            let backend = provider.backend().into_owned();
            let shared = routed
                .iter()
                .any(|(_, other)| !Arc::ptr_eq(other, provider) && other.backend() == backend);
            if !shared {
                return (scheme, backend);
            }
            let first = routed
                .iter()
                .find(|(_, other)| Arc::ptr_eq(other, provider))
                .map_or(scheme, |(first, _)| *first);
            (scheme, format!("{}|{backend}", first.as_str()))
        })
        .collect()
}

fn missing(setting: &str, builder_method: &str) -> Error {
    Error::config(
        setting,
        format!("is required but not set (or call {builder_method} on the builder)"),
    )
}

/// A provider error as [`Error::Config`], keeping its setting field (the one conversion,
/// shared with `SecretsClient`).
fn vault_config_error(error: ProviderError) -> Error {
    crate::bootstrap::config_error(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const FULL: [(&str, &str); 6] = [
        ("VAULT_URL", "http://127.0.0.1:8200"),
        ("VAULT_TOKEN", "s.token-canary"),
        ("TENANT_ID", "t1"),
        ("TENANT_ALLOWED_MOUNTS", "secret"),
        ("SECRET_TENANT_SALT", "salt-0123456789abcdef"),
        ("AUTHZEN_PDP_URL", "http://127.0.0.1:3592"),
    ];

    #[test]
    fn each_missing_required_variable_is_named() {
        for (skip, (name, _)) in FULL.iter().enumerate().take(5) {
            let pairs: Vec<_> = FULL
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, p)| *p)
                .collect();
            let err = VaultClient::builder()
                .env_lookup(env(&pairs))
                .build()
                .unwrap_err();
            let name = *name;
            assert_eq!((err.code(), err.setting()), ("CONFIG", Some(name)), "{err}");
            assert!(err.to_string().contains(name), "{err}");
        }
        // An empty value counts as missing.
        let mut pairs = FULL.to_vec();
        pairs[4] = ("SECRET_TENANT_SALT", "  ");
        let err = VaultClient::builder()
            .env_lookup(env(&pairs))
            .build()
            .unwrap_err();
        assert_eq!(err.setting(), Some("SECRET_TENANT_SALT"));
    }

    #[test]
    fn invalid_values_are_named_never_echoed() {
        let mut pairs = FULL.to_vec();
        pairs[4] = ("SECRET_TENANT_SALT", "short-canary");
        let err = VaultClient::builder()
            .env_lookup(env(&pairs))
            .build()
            .unwrap_err();
        assert_eq!(err.setting(), Some("SECRET_TENANT_SALT"));
        assert!(!format!("{err} {err:?}").contains("short-canary"));

        let mut pairs = FULL.to_vec();
        pairs.push(("VAULT_TIMEOUT", "soon-canary"));
        let err = VaultClient::builder()
            .env_lookup(env(&pairs))
            .build()
            .unwrap_err();
        assert_eq!(
            (err.code(), err.setting()),
            ("CONFIG", Some("VAULT_TIMEOUT"))
        );
        assert!(!format!("{err} {err:?}").contains("soon-canary"), "{err:?}");

        // No PDP: the PEP's CONFIG error, naming AUTHZEN_PDP_URL.
        let err = VaultClient::builder()
            .env_lookup(env(&FULL[..5]))
            .build()
            .unwrap_err();
        assert_eq!(err.code(), "CONFIG");
        assert!(err.pep_error().is_some());
        assert!(err.to_string().contains("AUTHZEN_PDP_URL"), "{err}");
    }

    #[test]
    fn a_pdp_in_code_stands_in_for_the_url() -> Result<(), Error> {
        let mut pairs = FULL[..5].to_vec();
        pairs.push(("ENVIRONMENT", "test"));
        let client = VaultClient::builder()
            .env_lookup(env(&pairs))
            .pdp(secret_pep::DevAllowAll::new())
            .build()?;
        assert!(matches!(client.pep().config().pdp, PdpSettings::None));
        let shown = format!("{client:?}");
        assert!(
            !shown.contains("s.token-canary") && !shown.contains("salt-0123"),
            "{shown}"
        );
        Ok(())
    }

    /// A provider of one's own for the `db` scheme.
    #[derive(Debug)]
    struct Creds;

    impl SecretProvider for Creds {
        fn name(&self) -> &'static str {
            "creds"
        }

        fn serves(&self, uri: &secret_uri::SecretUri) -> bool {
            uri.engine() == Some(secret_uri::Engine::Cred)
        }

        fn read<'a>(&'a self, uri: &'a secret_uri::SecretUri) -> secret_providers::ReadFuture<'a> {
            let value = secret_providers::SecretValue::from_text(format!("pw-{}", uri.path()));
            Box::pin(std::future::ready(Ok(value)))
        }
    }

    #[test]
    fn one_route_per_scheme_one_provider_per_server() -> Result<(), Box<dyn std::error::Error>> {
        let mut pairs = FULL[..5].to_vec();
        pairs.push(("ENVIRONMENT", "test"));
        let client = VaultClient::builder()
            .env_lookup(env(&pairs))
            .pdp(secret_pep::DevAllowAll::new())
            .provider(Provider::Db, Arc::new(Creds))
            .build()?;
        let core = &client.inner.core;
        // Both vault schemes reach the one VAULT_URL through one provider.
        let openbao = core.served(&"openbao+kv2://secret/a".parse()?)?;
        let hashicorp = core.served(&"hashicorp://secret/a".parse()?)?;
        assert!(Arc::ptr_eq(openbao, hashicorp));
        assert_eq!(openbao.backend(), "http://127.0.0.1:8200|");
        assert_eq!(
            client
                .kv2_config(Provider::OpenBao)
                .map(|c| c.address.clone()),
            client
                .kv2_config(Provider::HashiCorp)
                .map(|c| c.address.clone())
        );
        for (uri, code) in [
            ("file://secret/a", "UNSUPPORTED_PROVIDER"),
            ("yaml://secret/a", "UNSUPPORTED_PROVIDER"),
            ("db+db://secret/a", "UNSUPPORTED_PROVIDER"),
            ("openbao://secret/a?verison=2", "UNKNOWN_PARAMETER"),
        ] {
            let served = core.served(&uri.parse()?).err().map(|e| e.code());
            assert_eq!(served, Some(code), "{uri}");
        }
        // A provider of one's own is read behind the PEP like any other.
        let ctx = ExecutionContext::new("svc")
            .with_aud(["crud.secrets"])
            .with_jti("jti-1");
        let secret = client.get_credentials_blocking("db+cred://secret/app", Some(&ctx))?;
        assert_eq!(secret.expose_str(), Some("pw-app"));
        Ok(())
    }

    #[test]
    fn different_stores_never_share_a_backend() -> Result<(), Box<dyn std::error::Error>> {
        #[derive(Debug)]
        struct Named;
        impl SecretProvider for Named {
            fn name(&self) -> &'static str {
                "custom"
            }
            fn read<'a>(
                &'a self,
                _uri: &'a secret_uri::SecretUri,
            ) -> secret_providers::ReadFuture<'a> {
                Box::pin(std::future::ready(Ok(
                    secret_providers::SecretValue::from_text("v"),
                )))
            }
        }
        let one: Arc<dyn SecretProvider> = Arc::new(Named);
        let mut routes = Routes::new("");
        routes.insert(Provider::File, Arc::new(Named));
        routes.insert(Provider::Yaml, Arc::new(Named));
        routes.insert(Provider::Db, Arc::clone(&one));
        routes.insert(Provider::Bootstrap, Arc::clone(&one));
        let ids: std::collections::HashMap<_, _> = backend_ids(&routes).into_iter().collect();
        // Two objects named alike: told apart. One object under two schemes: one backend.
        assert_ne!(ids[&Provider::File], ids[&Provider::Yaml]);
        assert_ne!(ids[&Provider::File], ids[&Provider::Db]);
        assert_eq!(ids[&Provider::Db], ids[&Provider::Bootstrap]);
        Ok(())
    }

    /// A caller on a multi-thread runtime polls its request in its own task; one that drops
    /// it mid-read (its own timeout) leaves it to finish: the read completes, once, and is
    /// audited. A provider panic there is `RUNTIME`, not the caller's panic.
    #[test]
    fn a_request_dropped_by_its_caller_still_finishes_and_is_audited()
    -> Result<(), Box<dyn std::error::Error>> {
        use std::sync::atomic::{AtomicUsize, Ordering};

        #[derive(Debug, Default)]
        struct Gate {
            go: tokio::sync::Notify,
            finished: AtomicUsize,
            ran_in: std::sync::Mutex<Vec<Option<tokio::task::Id>>>,
        }
        #[derive(Debug)]
        struct Gated(Arc<Gate>);
        impl SecretProvider for Gated {
            fn name(&self) -> &'static str {
                "gated"
            }
            fn read<'a>(
                &'a self,
                uri: &'a secret_uri::SecretUri,
            ) -> secret_providers::ReadFuture<'a> {
                Box::pin(async move {
                    self.0
                        .ran_in
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(tokio::task::try_id());
                    if uri.path() == "panics" {
                        panic!("a provider bug");
                    }
                    if uri.path() == "gated" {
                        self.0.go.notified().await;
                    }
                    self.0.finished.fetch_add(1, Ordering::SeqCst);
                    Ok(secret_providers::SecretValue::from_text("v"))
                })
            }
        }
        let gate = Arc::new(Gate::default());
        let mut pairs = FULL[..5].to_vec();
        pairs.push(("ENVIRONMENT", "test"));
        let audit = Arc::new(secret_audit::MemorySink::new());
        let pep = PepConfig::new("t1", "secret".parse()?)
            .with_environment("test")
            .with_pdp(PdpSettings::DisabledForDevelopment)
            .with_grant_defaults(Duration::from_secs(60), 1);
        let client = Arc::new(
            VaultClient::builder()
                .env_lookup(env(&pairs))
                .pep_config(pep)
                .provider(Provider::Db, Arc::new(Gated(Arc::clone(&gate))))
                .audit(Arc::clone(&audit) as Arc<dyn secret_audit::AuditSink>)
                .build()?,
        );
        let ctx = |jti: &str| {
            ExecutionContext::new("svc")
                .with_aud(["crud.secrets"])
                .with_jti(jti)
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let (given_up, caller, answered, panicked) = runtime.block_on({
            let client = Arc::clone(&client);
            async move {
                tokio::spawn(async move {
                    let caller = tokio::task::try_id();
                    let given_up = tokio::time::timeout(
                        Duration::from_millis(50),
                        client.get_credentials("db://secret/gated", Some(&ctx("j1"))),
                    )
                    .await
                    .is_err();
                    let answered = client
                        .get_credentials("db://secret/open", Some(&ctx("j2")))
                        .await
                        .map(|s| s.expose_str().map(str::to_owned));
                    let panicked = client
                        .get_credentials("db://secret/panics", Some(&ctx("j3")))
                        .await
                        .err()
                        .map(|e| e.code());
                    (given_up, caller, answered.ok().flatten(), panicked)
                })
                .await
            }
        })?;
        assert!(given_up, "the caller gave up first");
        assert_eq!(answered.as_deref(), Some("v"));
        assert_eq!(panicked, Some("RUNTIME"));
        {
            let ran_in = gate.ran_in.lock().unwrap_or_else(|e| e.into_inner());
            assert_eq!(
                *ran_in,
                [caller, caller, caller],
                "every read polled in its caller's task"
            );
        }
        assert_eq!(
            gate.finished.load(Ordering::SeqCst),
            1,
            "only the open read so far"
        );
        gate.go.notify_one();
        runtime.block_on(async {
            for _ in 0..500 {
                if gate.finished.load(Ordering::SeqCst) == 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        assert_eq!(
            gate.finished.load(Ordering::SeqCst),
            2,
            "the dropped read finished"
        );
        let reads: Vec<_> = audit
            .events()
            .into_iter()
            .filter(|e| {
                matches!(
                    e.kind(),
                    secret_audit::EventType::Read | secret_audit::EventType::ReadError
                )
            })
            .map(|e| (e.kind(), e.code().to_owned()))
            .collect();
        assert_eq!(reads.len(), 3, "{reads:?}");
        assert!(reads.contains(&(secret_audit::EventType::ReadError, "RUNTIME".to_owned())));
        assert_eq!(
            reads
                .iter()
                .filter(|(kind, _)| *kind == secret_audit::EventType::Read)
                .count(),
            2,
            "the dropped read audited as a read: {reads:?}"
        );
        Ok(())
    }

    /// A provider of one's own that never answers, or panics: the call ends (`TIMEOUT` at the
    /// read deadline, `RUNTIME`) and the read is audited.
    #[test]
    fn a_provider_that_hangs_or_panics_cannot_hang_a_call() -> Result<(), Box<dyn std::error::Error>>
    {
        #[derive(Debug)]
        struct Hangs;
        impl SecretProvider for Hangs {
            fn name(&self) -> &'static str {
                "hangs"
            }
            fn read<'a>(
                &'a self,
                uri: &'a secret_uri::SecretUri,
            ) -> secret_providers::ReadFuture<'a> {
                if uri.path() == "panics" {
                    Box::pin(async { panic!("a provider bug") })
                } else {
                    Box::pin(std::future::pending())
                }
            }
        }
        let mut pairs = FULL[..5].to_vec();
        pairs.push(("ENVIRONMENT", "test"));
        let audit = Arc::new(secret_audit::MemorySink::new());
        let capture = secret_telemetry::testing::MetricsCapture::new();
        let pep = PepConfig::new("t1", "secret".parse()?)
            .with_environment("test")
            .with_pdp(PdpSettings::DisabledForDevelopment)
            .with_grant_defaults(Duration::from_secs(60), 1);
        let client = VaultClient::builder()
            .env_lookup(env(&pairs))
            .pep_config(pep)
            .provider(Provider::Db, Arc::new(Hangs))
            .read_deadline(Duration::from_millis(200))
            .audit(Arc::clone(&audit) as Arc<dyn secret_audit::AuditSink>)
            .metrics(capture.metrics())
            .build()?;
        let ctx = |jti: &str| {
            ExecutionContext::new("svc")
                .with_aud(["crud.secrets"])
                .with_jti(jti)
        };
        let hung = client.get_credentials_blocking("db://secret/app", Some(&ctx("j1")));
        assert_eq!(hung.err().map(|e| e.code()), Some("TIMEOUT"));
        // Each call is bounded, the second as the first.
        let again = client.get_credentials_blocking("db://secret/app", Some(&ctx("j2")));
        assert_eq!(again.err().map(|e| e.code()), Some("TIMEOUT"));
        let panicked = client.get_credentials_blocking("db://secret/panics", Some(&ctx("j3")));
        assert_eq!(panicked.err().map(|e| e.code()), Some("RUNTIME"));
        let reads: Vec<_> = audit
            .events()
            .into_iter()
            .filter(|e| e.kind() == secret_audit::EventType::ReadError)
            .map(|e| e.code().to_owned())
            .collect();
        assert_eq!(reads, ["TIMEOUT", "TIMEOUT", "RUNTIME"]);
        // Each counted once as the provider's error: the deadline's, the caught panic's.
        let points = capture.points()?;
        let errors = |code: &str| {
            points.sum_where(
                secret_telemetry::names::metric::PROVIDER_ERRORS,
                &[("provider", "db"), ("code", code)],
            )
        };
        assert_eq!((errors("TIMEOUT"), errors("RUNTIME")), (2.0, 1.0));
        assert_eq!(
            points.sum(secret_telemetry::names::metric::PROVIDER_ERRORS),
            3.0
        );
        Ok(())
    }

    /// Each `get_credentials` is timed as `cache = "none"` under the URI's provider, with its
    /// outcome; each read counts as a fetch or a provider error with its code, for a provider
    /// of one's own too (labelled by the scheme, never by the provider's own name).
    #[test]
    fn get_credentials_is_timed_and_its_reads_counted() -> Result<(), Box<dyn std::error::Error>> {
        use secret_telemetry::names::metric;
        use secret_telemetry::testing::MetricsCapture;

        #[derive(Debug)]
        struct Store;
        impl SecretProvider for Store {
            fn name(&self) -> &'static str {
                "canary-store"
            }
            fn read<'a>(
                &'a self,
                uri: &'a secret_uri::SecretUri,
            ) -> secret_providers::ReadFuture<'a> {
                let result = if uri.path() == "absent" {
                    Err(ProviderError::NotFound {
                        provider: "canary-store",
                        mount: uri.mount().to_owned(),
                        status: None,
                    })
                } else {
                    Ok(secret_providers::SecretValue::from_text("v"))
                };
                Box::pin(std::future::ready(result))
            }
        }
        let mut pairs = FULL[..5].to_vec();
        pairs.push(("ENVIRONMENT", "test"));
        let capture = MetricsCapture::new();
        let client = VaultClient::builder()
            .env_lookup(env(&pairs))
            .pdp(secret_pep::DevAllowAll::new())
            .provider(Provider::Db, Arc::new(Store))
            .metrics(capture.metrics())
            .build()?;
        let ctx = |jti: &str| {
            ExecutionContext::new("svc")
                .with_aud(["crud.secrets"])
                .with_jti(jti)
        };
        client.get_credentials_blocking("db+cred://secret/app", Some(&ctx("j1")))?;
        let codes = [
            client.get_credentials_blocking("db+cred://secret/absent", Some(&ctx("j2"))),
            client.get_credentials_blocking("file://secret/app", Some(&ctx("j3"))),
            client.get_credentials_blocking("not a uri", Some(&ctx("j4"))),
        ]
        .map(|result| result.err().map(|e| e.code()));
        assert_eq!(
            codes,
            [
                Some("NOT_FOUND"),
                Some("UNSUPPORTED_PROVIDER"),
                Some("ILLEGAL_SEGMENT")
            ]
        );

        let points = capture.points()?;
        let timed = |provider: &str, outcome: &str| {
            points.sum_where(
                metric::RESOLVE_DURATION,
                &[
                    ("provider", provider),
                    ("cache", "none"),
                    ("outcome", outcome),
                ],
            )
        };
        assert_eq!((timed("db", "ok"), timed("db", "error")), (1.0, 1.0));
        assert_eq!(timed("file", "error"), 1.0);
        assert_eq!(points.sum(metric::RESOLVE_DURATION), 3.0);
        assert_eq!(
            points.sum_where(
                metric::PROVIDER_ERRORS,
                &[("provider", "db"), ("code", "NOT_FOUND")]
            ),
            1.0
        );
        assert_eq!(points.sum(metric::PROVIDER_ERRORS), 1.0);
        assert!(points.sum_where(metric::LAST_SUCCESSFUL_FETCH, &[("provider", "db")]) > 1.7e9);
        // The PEP records through the client's metrics too: two permits, two refusals.
        let permits = [("outcome", "permit"), ("reason", "pdp")];
        assert_eq!(points.sum_where(metric::PEP_DECISIONS, &permits), 2.0);
        assert_eq!(points.sum(metric::PEP_DECISIONS), 4.0, "{points:?}");
        // No cache: no hit or miss is counted.
        assert_eq!(
            points.sum(metric::CACHE_HITS) + points.sum(metric::CACHE_MISSES),
            0.0
        );
        for point in &points.0 {
            for (_, value) in &point.labels {
                assert!(!value.contains("canary"), "{point:?}");
            }
        }
        Ok(())
    }

    /// A batch refused before the PEP audits every bad item, the unparsable ones included.
    #[test]
    fn a_refused_batch_audits_every_bad_item() -> Result<(), Box<dyn std::error::Error>> {
        let mut pairs = FULL[..5].to_vec();
        pairs.push(("ENVIRONMENT", "test"));
        let audit = Arc::new(secret_audit::MemorySink::new());
        let client = VaultClient::builder()
            .env_lookup(env(&pairs))
            .pdp(secret_pep::DevAllowAll::new())
            .audit(Arc::clone(&audit) as Arc<dyn secret_audit::AuditSink>)
            .build()?;
        let ctx = ExecutionContext::new("svc").with_aud(["crud.secrets"]);
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let refused = runtime.block_on(client.authorize_batch(
            Some(&ctx),
            &["not a uri", "openbao://secret/a?n=1"],
            &["file://secret/b"],
        ));
        assert_eq!(refused.err().map(|e| e.code()), Some("UNKNOWN_PARAMETER"));
        let codes: Vec<_> = audit
            .events()
            .iter()
            .map(|e| (e.kind(), e.code().to_owned()))
            .collect();
        assert_eq!(codes.len(), 3, "{codes:?}");
        assert!(
            codes
                .iter()
                .all(|(kind, _)| *kind == secret_audit::EventType::AccessDenied)
        );
        assert_eq!(codes[1].1, "UNKNOWN_PARAMETER");
        assert_eq!(codes[2].1, "UNSUPPORTED_PROVIDER");
        Ok(())
    }

    /// A provider of one's own that counts its reads.
    #[derive(Debug, Default)]
    struct CountedReads(std::sync::atomic::AtomicUsize);

    impl SecretProvider for CountedReads {
        fn name(&self) -> &'static str {
            "counted"
        }

        fn read<'a>(&'a self, _uri: &'a secret_uri::SecretUri) -> secret_providers::ReadFuture<'a> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let value = secret_providers::SecretValue::from_text("v");
            Box::pin(std::future::ready(Ok(value)))
        }
    }

    fn reader(jti: &str) -> ExecutionContext {
        ExecutionContext::new("svc")
            .with_aud(["crud.secrets"])
            .with_jti(jti)
    }

    /// A state given in code replaces the client's own memory: two clients sharing one replay
    /// store refuse on one a `jti` used on the other.
    #[test]
    fn a_state_given_in_code_is_shared_by_the_clients_given_it()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut pairs = FULL[..5].to_vec();
        pairs.push(("ENVIRONMENT", "test"));
        let replay = Arc::new(secret_pep::MemoryReplayStore::new(1_000, 100));
        let provider = Arc::new(CountedReads::default());
        let client = || {
            VaultClient::builder()
                .env_lookup(env(&pairs))
                .pdp(secret_pep::DevAllowAll::new())
                .provider(
                    Provider::Db,
                    Arc::clone(&provider) as Arc<dyn SecretProvider>,
                )
                .pep_state(PepState::memory().with_replay(Arc::clone(&replay) as _))
                .build()
        };
        let (a, b) = (client()?, client()?);
        let uri = "db+cred://secret/app";
        assert_eq!(
            a.get_credentials_blocking(uri, Some(&reader("j1")))?
                .expose_str(),
            Some("v")
        );
        let replayed = b.get_credentials_blocking(uri, Some(&reader("j1")));
        let replayed = replayed.err().map(|e| (e.code(), e.deny_reason()));
        assert_eq!(
            replayed,
            Some(("AUTHZ_DENIED", Some(secret_pep::DenyReason::Replay)))
        );
        b.get_credentials_blocking(uri, Some(&reader("j2")))?;
        assert_eq!(provider.0.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(replay.len(), 2);
        Ok(())
    }

    /// `REDIS_URL` in a build without the `redis` feature is refused, naming it.
    #[cfg(not(feature = "redis"))]
    #[test]
    fn redis_url_needs_the_redis_feature() {
        let mut pairs = FULL.to_vec();
        pairs.push(("REDIS_URL", "redis://:pw-canary@127.0.0.1:6379"));
        let err = VaultClient::builder()
            .env_lookup(env(&pairs))
            .build()
            .unwrap_err();
        assert_eq!(err.code(), "CONFIG");
        assert_eq!(
            err.pep_error().and_then(secret_pep::PepError::setting),
            Some("REDIS_URL")
        );
        assert!(!format!("{err} {err:?}").contains("pw-canary"), "{err:?}");
    }

    /// With `REDIS_URL`, `from_env` puts the PEP's state in Redis (through secret-pep's
    /// reader): building connects to nothing, and a Redis that cannot be reached fails the call
    /// closed before any read, naming neither the URL nor its password.
    #[cfg(feature = "redis")]
    #[test]
    fn redis_url_puts_the_state_in_redis_and_fails_closed() -> Result<(), Box<dyn std::error::Error>>
    {
        use secret_pep::StateSettings;

        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let mut pairs = FULL[..5].to_vec();
        pairs.extend([
            ("ENVIRONMENT", "test"),
            ("REDIS_URL", "redis://:pw-canary@127.0.0.1:1"),
            ("REDIS_KEY_PREFIX", "unit:"),
            ("REDIS_TIMEOUT_MS", "300"),
            ("REDIS_CONNECT_TIMEOUT_MS", "100"),
        ]);
        let provider = Arc::new(CountedReads::default());
        let client = VaultClient::builder()
            .env_lookup(env(&pairs))
            .pdp(secret_pep::DevAllowAll::new())
            .provider(
                Provider::Db,
                Arc::clone(&provider) as Arc<dyn SecretProvider>,
            )
            .build()?;
        match &client.pep().config().state {
            StateSettings::Redis(redis) => {
                assert_eq!(redis.key_prefix, "unit:");
                assert_eq!(redis.timeout, Duration::from_millis(300));
            }
            other => panic!("state {other:?}"),
        }
        let started = std::time::Instant::now();
        let err = client
            .get_credentials_blocking("db+cred://secret/app", Some(&reader("j1")))
            .unwrap_err();
        assert_eq!(err.code(), "STATE_STORE_UNAVAILABLE", "{err}");
        assert!(err.is_transient());
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(provider.0.load(std::sync::atomic::Ordering::SeqCst), 0);
        let shown = format!("{err} {err:?} {client:?}");
        assert!(
            !shown.contains("pw-canary") && !shown.contains("127.0.0.1:1"),
            "{shown}"
        );

        // A bad URL or key is the PEP's CONFIG, named, never echoed.
        for (name, value) in [
            ("REDIS_URL", "http://pw-canary@h"),
            ("REDIS_TIMEOUT_MS", "0"),
        ] {
            let mut pairs = FULL.to_vec();
            pairs.retain(|(k, _)| *k != name);
            pairs.push((name, value));
            if name != "REDIS_URL" {
                pairs.push(("REDIS_URL", "redis://127.0.0.1:6379"));
            }
            let err = VaultClient::builder()
                .env_lookup(env(&pairs))
                .build()
                .unwrap_err();
            assert_eq!(err.code(), "CONFIG");
            assert_eq!(
                err.pep_error().and_then(secret_pep::PepError::setting),
                Some(name)
            );
            assert!(!format!("{err} {err:?}").contains("pw-canary"), "{err:?}");
        }
        Ok(())
    }

    /// A `RedisState` made for another tenant is refused at build.
    #[cfg(feature = "redis")]
    #[test]
    fn a_redis_state_of_another_tenant_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        use secret_pep::{RedisConfig, RedisState};

        let mut pairs = FULL[..5].to_vec();
        pairs.push(("ENVIRONMENT", "test"));
        let redis = RedisConfig::new("redis://127.0.0.1:6379", b"pep-state-key-0123456789")?;
        let err = VaultClient::builder()
            .env_lookup(env(&pairs))
            .pdp(secret_pep::DevAllowAll::new())
            .pep_state(PepState::redis(RedisState::new(&redis, "t2")?))
            .build()
            .unwrap_err();
        assert_eq!(err.code(), "CONFIG");
        assert_eq!(
            err.pep_error().and_then(secret_pep::PepError::setting),
            Some("TENANT_ID")
        );
        let ok = VaultClient::builder()
            .env_lookup(env(&pairs))
            .pdp(secret_pep::DevAllowAll::new())
            .pep_state(PepState::redis(RedisState::new(&redis, "t1")?))
            .build();
        assert!(ok.is_ok());
        Ok(())
    }
}
