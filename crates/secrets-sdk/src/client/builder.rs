//! [`SecretsClientBuilder`]: explicit settings, the environment fallback and bootstrap
//! discovery, validated into a [`SecretsClient`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use secrecy::SecretString;
use secret_audit::{AuditKey, AuditSink, Auditor};
use secret_providers::SecretProvider;
use secret_telemetry::Metrics;
use secret_uri::{AllowedMounts, Provider};

use super::{
    ALLOWED_MOUNTS_ENV, CacheSettings, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL,
    DEFAULT_RESOLVE_DEADLINE, DEFAULT_WATCH_INTERVAL, FAILURE_SLOTS, Inner, Lookup,
    RESOLVE_DEADLINE_ENV, SecretsClient, WATCH_INTERVAL_ENV,
};
use crate::Error;
use crate::bootstrap::LoadedBootstrap;
#[cfg(any(feature = "openbao", feature = "hashicorp"))]
use crate::bootstrap::{BootstrapConfig, BootstrapSource, DEFAULT_BOOTSTRAP_PATH};
use crate::io_runtime::IoRuntime;
use crate::routes::Routes;

/// The auditor, the key spans use, the tenant events name, and the sink the client owns.
type AuditParts = (
    Arc<Auditor>,
    Option<AuditKey>,
    String,
    Option<Arc<dyn AuditSink>>,
);

/// Builds a [`SecretsClient`]. Every setting is explicit; [`from_env`](Self::from_env) (or
/// [`env_lookup`](Self::env_lookup)) adds the environment as the fallback for what is not
/// set, with the bootstrap precedence of [`BootstrapConfig::discover`].
///
/// The vault settings come from the one reader that `VaultClient` and `ProviderRouter` use
/// too, `Kv2Config::from_lookup`: from the environment level it reads everything; a bootstrap
/// file (or a `Kv2Config` given to [`bootstrap`](Self::bootstrap)) supplies address and login
/// and the environment's tuning variables (`P_TIMEOUT`, `P_CACERT`, `P_VERIFY_SSL`,
/// `P_CLIENT_CERT`/`_KEY`, `P_NAMESPACE`, retries, body cap) apply to it
/// ([`BootstrapConfig::tuned`]). The client's own settings (`SECRETS_ALLOWED_MOUNTS`,
/// `SECRETS_RESOLVE_DEADLINE_S`, `FILE_*`) are read by the same shared reader
/// (`secret-config`): trimmed, empty counts as unset. [`vault_timeout`](Self::vault_timeout) and
/// [`vault_retry`](Self::vault_retry) beat the environment; [`kv2`](Self::kv2) replaces it.
///
/// ```
/// use std::time::Duration;
/// use secrets_sdk::{SecretsClient, uri::AllowedMounts};
///
/// let client = SecretsClient::builder()
///     .file_root("/run/secrets")
///     .allowed_mounts(AllowedMounts::from_csv("demo,secret"))
///     .cache_ttl(Duration::from_secs(60))
///     .build()?;
/// # Ok::<(), secrets_sdk::Error>(())
/// ```
#[derive(Default)]
#[must_use]
pub struct SecretsClientBuilder {
    lookup: Option<Lookup>,
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    bootstrap: Option<secret_providers::Kv2Config>,
    bootstrap_path: Option<PathBuf>,
    default_bootstrap_path: Option<PathBuf>,
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    kv2: Vec<secret_providers::Kv2Config>,
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    vault_timeout: Option<Duration>,
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    vault_retry: Option<secret_providers::RetryConfig>,
    file_root: Option<PathBuf>,
    file_max_bytes: Option<u64>,
    allowed_mounts: Option<AllowedMounts>,
    any_mount: bool,
    cache_ttl: Option<Duration>,
    cache_capacity: Option<usize>,
    cache_file_secrets: Option<bool>,
    stale_if_error: Option<Duration>,
    offload_file_reads: bool,
    resolve_deadline: Option<Duration>,
    watch_interval: Option<Duration>,
    #[cfg(feature = "db")]
    lease_overlap: Option<Duration>,
    #[cfg(feature = "db")]
    rotate_leases: Option<bool>,
    refresh_ahead: Option<bool>,
    providers: Vec<(Provider, Arc<dyn SecretProvider>)>,
    audit: Option<Arc<dyn AuditSink>>,
    tenant_salt: Option<SecretString>,
    tenant_id: Option<String>,
    metrics: Option<Metrics>,
}

impl fmt::Debug for SecretsClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut builder = f.debug_struct("SecretsClientBuilder");
        builder.field("from_env", &self.lookup.is_some());
        // Kv2Config's Debug redacts the token and the secret ID.
        #[cfg(any(feature = "openbao", feature = "hashicorp"))]
        builder.field("bootstrap", &self.bootstrap);
        builder
            .field("bootstrap_path", &self.bootstrap_path)
            .field("file_root", &self.file_root)
            .field("allowed_mounts", &self.allowed_mounts)
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_capacity", &self.cache_capacity)
            .field("cache_file_secrets", &self.cache_file_secrets)
            .field("stale_if_error", &self.stale_if_error)
            .field("providers", &self.providers)
            .field("audit", &self.audit)
            .field(
                "tenant_salt",
                &self.tenant_salt.as_ref().map(|_| "[REDACTED]"),
            )
            .field("tenant_id", &self.tenant_id)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl SecretsClientBuilder {
    /// The longest [`cache_ttl`](Self::cache_ttl): 365 days. Longer values (up to
    /// `Duration::MAX`, "forever") are clamped to it.
    pub const MAX_CACHE_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
    /// The longest [`stale_if_error`](Self::stale_if_error) grace: 365 days; longer values are
    /// clamped to it.
    pub const MAX_STALE_IF_ERROR: Duration = Duration::from_secs(365 * 24 * 3600);
    /// The longest [`resolve_deadline`](Self::resolve_deadline): 1 h. A longer builder value
    /// is clamped to it; a longer `SECRETS_RESOLVE_DEADLINE_S` is refused (`CONFIG`).
    pub const MAX_RESOLVE_DEADLINE: Duration = Duration::from_secs(3600);
    /// The longest [`watch_interval`](Self::watch_interval): one day.
    pub const MAX_WATCH_INTERVAL: Duration = Duration::from_secs(86_400);

    /// Serves `provider`'s scheme with a provider of one's own, replacing the built-in one
    /// (file, KV v2) for that scheme: how a team adds a backend without forking. Any scheme
    /// the URI grammar names can be served (`db+cred://`, `yaml://`, …); the provider's
    /// [`serves`](SecretProvider::serves) says which engines. Its reads get the client's
    /// cache, coalescing, stale-if-error and deadline like any other; a provider whose
    /// [`reads_block`](SecretProvider::reads_block) is read on the client's blocking pool.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use secrets_sdk::providers::{ProviderError, ReadFuture, SecretProvider, SecretValue};
    /// use secrets_sdk::uri::{AllowedMounts, Provider, SecretUri};
    /// use secrets_sdk::SecretsClient;
    ///
    /// /// Database passwords from a team's own store.
    /// #[derive(Debug)]
    /// struct Passwords;
    ///
    /// impl SecretProvider for Passwords {
    ///     fn name(&self) -> &'static str {
    ///         "passwords"
    ///     }
    ///     fn read<'a>(&'a self, uri: &'a SecretUri) -> ReadFuture<'a> {
    ///         let value = format!("pw-for-{}", uri.path());
    ///         Box::pin(async move { Ok::<_, ProviderError>(SecretValue::from_text(value)) })
    ///     }
    /// }
    ///
    /// let client = SecretsClient::builder()
    ///     .allowed_mounts(AllowedMounts::from_csv("pg"))
    ///     .provider(Provider::Db, Arc::new(Passwords))
    ///     .build()?;
    /// let secret = client.resolve_blocking("db+cred://pg/app")?;
    /// assert_eq!(secret.expose_str(), Some("pw-for-app"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn provider(mut self, provider: Provider, implementation: Arc<dyn SecretProvider>) -> Self {
        self.providers.retain(|(p, _)| *p != provider);
        self.providers.push((provider, implementation));
        self
    }

    /// Audits every backend read and one cache hit in `AUDIT_SAMPLE_CACHE_HIT_N` into `sink`
    /// (default: none): events keyed with the tenant salt ([`tenant_salt`](Self::tenant_salt)
    /// or `SECRET_TENANT_SALT`, required then) for the tenant [`tenant_id`](Self::tenant_id)
    /// (or `TENANT_ID`, required then), published without waiting on the network. Close the
    /// sink at shutdown so nothing queued is lost. With a salt, spans name secrets by their
    /// keyed `resource_ref` instead of the unkeyed `uri_hash`.
    pub fn audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// The HMAC key of audit references (instead of `SECRET_TENANT_SALT`); at least 16 bytes,
    /// ideally 32 random ones.
    pub fn tenant_salt(mut self, salt: impl Into<SecretString>) -> Self {
        self.tenant_salt = Some(salt.into());
        self
    }

    /// The tenant audit events name (instead of `TENANT_ID`).
    pub fn tenant_id(mut self, tenant: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant.into());
        self
    }

    /// Records the client's metrics (`secrets.resolve.duration`, `secrets.cache.*`,
    /// `secrets.provider.*`) with these instruments instead of [`Metrics::global`].
    ///
    /// Either way the instruments are bound when the client is built: **install your meter
    /// provider (`opentelemetry::global::set_meter_provider`, or
    /// `secrets_sdk::telemetry::otlp` with feature `otlp`) before building the client**, or
    /// pass `Metrics::new(&meter)` here. A client built before any provider was installed
    /// records nothing. Labels are provider, cache outcome, outcome and error codes only.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

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

    /// Uses this bootstrap file (it must exist), before any other bootstrap source.
    pub fn bootstrap_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.bootstrap_path = Some(path.into());
        self
    }

    /// Uses these settings as the bootstrap (address and login; see
    /// [`BootstrapConfig::token`] and friends), before any other bootstrap source. They are
    /// [validated](BootstrapConfig::validate) as a bootstrap file would be, and the
    /// environment's tuning applies to them ([`BootstrapConfig::tuned`]);
    /// [`kv2`](Self::kv2) takes settings exactly as given instead.
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "openbao", feature = "hashicorp"))))]
    pub fn bootstrap(mut self, config: secret_providers::Kv2Config) -> Self {
        self.bootstrap = Some(config);
        self
    }

    /// Replaces the well-known bootstrap path [`DEFAULT_BOOTSTRAP_PATH`] looked at with
    /// [`from_env`](Self::from_env).
    pub fn default_bootstrap_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.default_bootstrap_path = Some(path.into());
        self
    }

    /// Adds a KV v2 provider with these exact settings; it serves its flavor's scheme
    /// (and the other one, when nothing else does), replacing one from the bootstrap.
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "openbao", feature = "hashicorp"))))]
    pub fn kv2(mut self, config: secret_providers::Kv2Config) -> Self {
        self.kv2.push(config);
        self
    }

    /// The per-attempt timeout of vault requests made with the bootstrap's settings (default
    /// `P_TIMEOUT`/`VAULT_TIMEOUT` with [`from_env`](Self::from_env), else 30 s); it beats the
    /// environment.
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "openbao", feature = "hashicorp"))))]
    pub fn vault_timeout(mut self, timeout: Duration) -> Self {
        self.vault_timeout = Some(timeout);
        self
    }

    /// The retry policy of vault requests made with the bootstrap's settings (default
    /// `P_RETRY_*` with [`from_env`](Self::from_env), else 3 attempts); it beats the
    /// environment.
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "openbao", feature = "hashicorp"))))]
    pub fn vault_retry(mut self, retry: secret_providers::RetryConfig) -> Self {
        self.vault_retry = Some(retry);
        self
    }

    /// The directory `file://` URIs resolve under (else `FILE_MOUNT_PATH`, else
    /// `/run/secrets`).
    pub fn file_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.file_root = Some(root.into());
        self
    }

    /// Files larger than this are refused with `TOO_LARGE` (else `FILE_MAX_BYTES`, else
    /// 1 MiB).
    pub fn file_max_bytes(mut self, max: u64) -> Self {
        self.file_max_bytes = Some(max);
        self
    }

    /// The mounts URIs may name (else `SECRETS_ALLOWED_MOUNTS`, which is then required). An
    /// empty set is refused: use [`allow_any_mount`](Self::allow_any_mount) to opt out.
    pub fn allowed_mounts(mut self, mounts: AllowedMounts) -> Self {
        self.allowed_mounts = Some(mounts);
        self
    }

    /// Lets URIs name any mount (no tenant mount guard).
    pub fn allow_any_mount(mut self) -> Self {
        self.any_mount = true;
        self
    }

    /// The longest one resolve may take, whatever lookups, logins, retries and re-logins it
    /// chains (default [`DEFAULT_RESOLVE_DEADLINE`], else `SECRETS_RESOLVE_DEADLINE_S`, whole
    /// seconds from 1 to 3600); past it the resolve fails with `TIMEOUT`. At most
    /// [`MAX_RESOLVE_DEADLINE`](Self::MAX_RESOLVE_DEADLINE); zero is refused.
    pub fn resolve_deadline(mut self, deadline: Duration) -> Self {
        self.resolve_deadline = Some(deadline);
        self
    }

    /// How long a value is served from the cache (default 300 s; at most
    /// [`MAX_CACHE_TTL`](Self::MAX_CACHE_TTL), to which longer values are clamped).
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = Some(ttl);
        self
    }

    /// The cache size bound in entries (default 10 000); the least useful entries are evicted.
    pub fn cache_capacity(mut self, entries: usize) -> Self {
        self.cache_capacity = Some(entries);
        self
    }

    /// Whether `file://` values are cached (default `true`). Off, every resolve reads the
    /// file, so a rotated file is seen at once.
    pub fn cache_file_secrets(mut self, cache: bool) -> Self {
        self.cache_file_secrets = Some(cache);
        self
    }

    /// No effect: file reads always run on the client's blocking pool, bounded by the resolve
    /// deadline, so a stalled filesystem never holds a thread vault I/O or the caller needs.
    /// Kept for compatibility.
    pub fn offload_file_reads(mut self, offload: bool) -> Self {
        self.offload_file_reads = offload;
        self
    }

    /// Serves an expired value for up to `grace` past its TTL while the backend is
    /// unavailable (`TIMEOUT`/`UNAVAILABLE`); off by default. After a failed refresh the
    /// stale value is served without asking the backend again for 5 s. At most
    /// [`MAX_STALE_IF_ERROR`](Self::MAX_STALE_IF_ERROR), to which longer values are clamped.
    /// While one caller refreshes an expired value, every other caller is served it; the
    /// refreshing caller waits at most 1 s, then is served it too, while the refresh goes on
    /// in the background within the resolve deadline.
    pub fn stale_if_error(mut self, grace: Duration) -> Self {
        self.stale_if_error = Some(grace);
        self
    }

    /// How often a watched secret is checked ([`SecretsClient::watch`](crate::SecretsClient::watch);
    /// default [`DEFAULT_WATCH_INTERVAL`](crate::DEFAULT_WATCH_INTERVAL), else
    /// `SECRETS_WATCH_INTERVAL_S`, whole seconds from 1 to 86 400), jittered by ±10 %. Files
    /// are also checked at once when their directory changes. At least 10 ms.
    pub fn watch_interval(mut self, interval: Duration) -> Self {
        self.watch_interval = Some(interval);
        self
    }

    /// How long before a database lease ends its successor is read and announced
    /// (`db+cred://` at its role's `max_ttl`; default
    /// [`DEFAULT_LEASE_OVERLAP`](crate::DEFAULT_LEASE_OVERLAP), 30 s), so a connection pool
    /// can swap users while the old one still works. At most a third of the lease's
    /// duration.
    #[cfg(feature = "db")]
    pub fn lease_overlap(mut self, overlap: Duration) -> Self {
        self.lease_overlap = Some(overlap);
        self
    }

    /// Whether a database lease that cannot be renewed any further (its role's `max_ttl`, a
    /// refused renewal, a vault that lost it) is replaced by new credentials in the
    /// background and announced to watchers (default `true`). With `false` the lease is
    /// renewed up to its end and then dropped: nothing is read ahead, and the next read after
    /// its end issues a new lease. For a holder that cannot take new credentials anyway, such
    /// as a command started once with them (`secrets exec` without `--watch`): rotating would
    /// only create a database user nobody uses.
    #[cfg(feature = "db")]
    pub fn rotate_leases(mut self, rotate: bool) -> Self {
        self.rotate_leases = Some(rotate);
        self
    }

    /// Whether a value read in the last 10–20 % of its TTL is refreshed in the background
    /// before it expires, so a hot URI never misses (default `true`). KV v2 values are
    /// revalidated through the metadata endpoint: the same version extends the entry without
    /// reading the value again. Files are refreshed by their watcher instead.
    pub fn refresh_ahead(mut self, on: bool) -> Self {
        self.refresh_ahead = Some(on);
        self
    }

    /// Builds the client. No network I/O happens here: the vault is contacted (and logged in
    /// to) at the first vault read.
    ///
    /// # Errors
    /// `CONFIG` for missing allowed mounts or invalid settings; bootstrap errors for a
    /// bootstrap that was given or found but is unusable.
    pub fn build(self) -> Result<SecretsClient, Error> {
        let lookup = self.lookup.clone();
        let var = |name: &str| lookup.as_ref().and_then(|l| l(name));
        let env = secret_config::Env::new(&var);
        // Bound now, to the meter provider of this moment: the client, its KV v2 providers
        // and the audit queue it creates record through these.
        let metrics = self.metrics.clone().unwrap_or_else(Metrics::global);

        let allowed = if self.any_mount {
            AllowedMounts::default()
        } else {
            // Set but empty (or only commas) is an operator's mistake worth naming as such,
            // so this one reads the raw value: `AllowedMounts` then finds it unrestricted.
            let (mounts, setting) = match (&self.allowed_mounts, env.raw(ALLOWED_MOUNTS_ENV)) {
                (Some(mounts), _) => (mounts.clone(), "allowed_mounts"),
                (None, Some(list)) => (AllowedMounts::from_csv(&list), ALLOWED_MOUNTS_ENV),
                (None, None) => {
                    return Err(Error::config(
                        ALLOWED_MOUNTS_ENV,
                        "is not set (or call allowed_mounts / allow_any_mount on the builder)",
                    ));
                }
            };
            if mounts.is_unrestricted() {
                return Err(Error::config(
                    setting,
                    "is empty; list the mounts this service may read",
                ));
            }
            mounts
        };

        let resolve_deadline = match (self.resolve_deadline, env.setting(RESOLVE_DEADLINE_ENV)) {
            (Some(deadline), _) => deadline.min(Self::MAX_RESOLVE_DEADLINE),
            (None, Some(setting)) => match setting.number::<u64>() {
                Ok(secs) if secs > 0 && secs <= Self::MAX_RESOLVE_DEADLINE.as_secs() => {
                    Duration::from_secs(secs)
                }
                _ => {
                    return Err(Error::config(
                        RESOLVE_DEADLINE_ENV,
                        "must be a whole number of seconds from 1 to 3600",
                    ));
                }
            },
            (None, None) => DEFAULT_RESOLVE_DEADLINE,
        };
        if resolve_deadline.is_zero() {
            return Err(Error::config("resolve_deadline", "must be positive"));
        }
        let watch_interval = match (self.watch_interval, env.setting(WATCH_INTERVAL_ENV)) {
            (Some(interval), _) => {
                interval.clamp(Duration::from_millis(10), Self::MAX_WATCH_INTERVAL)
            }
            (None, Some(setting)) => match setting.number::<u64>() {
                Ok(secs) if secs > 0 && secs <= Self::MAX_WATCH_INTERVAL.as_secs() => {
                    Duration::from_secs(secs)
                }
                _ => {
                    return Err(Error::config(
                        WATCH_INTERVAL_ENV,
                        "must be a whole number of seconds from 1 to 86400",
                    ));
                }
            },
            (None, None) => DEFAULT_WATCH_INTERVAL,
        };
        // Clamped so `now + ttl + grace` cannot overflow the clock.
        let settings = CacheSettings {
            resolve_deadline,
            ttl: self
                .cache_ttl
                .unwrap_or(DEFAULT_CACHE_TTL)
                .min(Self::MAX_CACHE_TTL),
            capacity: self.cache_capacity.unwrap_or(DEFAULT_CACHE_CAPACITY),
            cache_file_secrets: self.cache_file_secrets.unwrap_or(true),
            stale_if_error: self
                .stale_if_error
                .filter(|g| !g.is_zero())
                .map(|g| g.min(Self::MAX_STALE_IF_ERROR)),
            offload_file_reads: self.offload_file_reads,
            refresh_ahead: self.refresh_ahead.unwrap_or(true),
        };
        if settings.capacity == 0 {
            return Err(Error::config("cache_capacity", "must be at least 1"));
        }

        #[cfg(feature = "file")]
        let file = {
            let mut config = secret_providers::FileConfig::from_lookup(|name| var(name))
                .map_err(crate::bootstrap::config_error)?;
            if let Some(root) = &self.file_root {
                config.root.clone_from(root);
            }
            if let Some(max) = self.file_max_bytes {
                config = config.with_max_bytes(max);
            }
            secret_providers::FileProvider::new(config)
        };

        let (loaded, vault_note) = self.find_bootstrap(lookup.as_ref())?;
        let bootstrap_source = loaded.as_ref().map(|l| l.source.clone());
        if let Some(source) = &bootstrap_source {
            tracing::debug!(source = %source, "bootstrap loaded");
        }
        #[cfg(any(feature = "openbao", feature = "hashicorp"))]
        let (loaded, bootstrap_values) = LoadedBootstrap::split_values(loaded, &vault_note);

        let (auditor, audit_key, tenant, owned_sink) = self.auditor(&env, &metrics)?;
        let mut routes = Routes::new(vault_note);
        #[cfg(feature = "file")]
        {
            let file = Arc::new(file);
            // `yaml://` is read by the same provider: one root, one guard, one size cap.
            #[cfg(feature = "yaml")]
            routes.insert(Provider::Yaml, Arc::clone(&file) as Arc<dyn SecretProvider>);
            routes.insert(Provider::File, file);
        }
        #[cfg(any(feature = "openbao", feature = "hashicorp"))]
        routes
            .insert_kv2(self.vault_configs(loaded, &var, &metrics)?)
            .map_err(crate::bootstrap::config_error)?;
        #[cfg(not(any(feature = "openbao", feature = "hashicorp")))]
        drop(loaded);
        #[cfg(feature = "db")]
        routes.insert_db();
        // `bootstrap://` from the bootstrap's own values, in memory: no vault is asked.
        #[cfg(any(feature = "openbao", feature = "hashicorp"))]
        routes.insert_bootstrap(bootstrap_values);
        for (provider, implementation) in self.providers {
            routes.insert(provider, implementation);
        }
        #[cfg(feature = "db")]
        let leases = super::leases::Leases::new(
            routes.db().cloned(),
            self.lease_overlap.unwrap_or(super::DEFAULT_LEASE_OVERLAP),
            self.rotate_leases.unwrap_or(true),
        );

        let sweep_every = (settings.ttl / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let epoch = Instant::now();
        let watches = super::watch::Watches::new(watch_interval)?;
        let inner = |this: &std::sync::Weak<Inner>| Inner {
            this: this.clone(),
            allowed,
            routes,
            auditor,
            audit_key,
            tenant: Arc::from(tenant),
            owned_sink,
            bootstrap_source,
            cache: super::cache::entry_cache(settings.capacity, &metrics),
            failures: Cache::new(FAILURE_SLOTS),
            settings,
            epoch,
            next_sweep: AtomicU64::new(u64::try_from(sweep_every.as_nanos()).unwrap_or(u64::MAX)),
            sweep_every,
            closed: AtomicBool::new(false),
            runtime: IoRuntime::new(1, "secrets-sdk-io"),
            hits: super::cache::hit_recorders(),
            metrics,
            watches,
            #[cfg(feature = "db")]
            leases,
        };
        Ok(SecretsClient {
            inner: Arc::new_cyclic(inner),
        })
    }

    /// The auditor (disabled without a sink), the key spans use (whenever a salt is set) and
    /// the tenant events name.
    fn auditor(
        &self,
        env: &secret_config::Env<'_>,
        metrics: &Metrics,
    ) -> Result<AuditParts, Error> {
        let key = crate::audit_config::key(self.tenant_salt.as_ref(), env)?;
        // A sink given in code, else the one the environment asks for (owned: flushed by
        // `SecretsClient::close`).
        let owned_sink = match (&self.audit, &self.lookup) {
            (None, Some(_)) => crate::audit_config::env_sink(env, metrics)?,
            _ => None,
        };
        let tenant = self
            .tenant_id
            .clone()
            .or_else(|| env.get("TENANT_ID"))
            .unwrap_or_default();
        let Some(sink) = self.audit.clone().or_else(|| owned_sink.clone()) else {
            return Ok((Arc::new(Auditor::disabled()), key, tenant, None));
        };
        let Some(audit_key) = key.clone() else {
            return Err(Error::config(
                crate::audit_config::TENANT_SALT_ENV,
                "is required for audit (or call tenant_salt on the builder)",
            ));
        };
        if tenant.is_empty() {
            return Err(Error::config(
                "TENANT_ID",
                "is required for audit (or call tenant_id on the builder)",
            ));
        }
        let auditor = crate::audit_config::auditor(audit_key, sink, env)?;
        Ok((Arc::new(auditor), key, tenant, owned_sink))
    }

    /// The bootstrap to use, if any, and otherwise why there is none.
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    fn find_bootstrap(
        &self,
        lookup: Option<&Lookup>,
    ) -> Result<(Option<LoadedBootstrap>, String), Error> {
        if let Some(config) = &self.bootstrap {
            BootstrapConfig::validate(config)?;
            return Ok((Some(LoadedBootstrap::given(config.clone())), String::new()));
        }
        if let Some(path) = &self.bootstrap_path {
            let source = BootstrapSource::ExplicitPath(path.clone());
            return Ok((
                Some(LoadedBootstrap::from_file(path, source)?),
                String::new(),
            ));
        }
        let Some(lookup) = lookup else {
            return Ok((
                None,
                "the builder was given no bootstrap and no environment".into(),
            ));
        };
        let default_path = self
            .default_bootstrap_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BOOTSTRAP_PATH));
        match BootstrapConfig::discover_with(None, &|name| lookup(name), &default_path) {
            Ok(loaded) => Ok((Some(loaded), String::new())),
            Err(Error::NoBootstrap { tried }) => Ok((
                None,
                format!("no bootstrap found; tried {}", tried.join(", ")),
            )),
            Err(error) => Err(error),
        }
    }

    /// Without a vault feature there is nothing a bootstrap could configure.
    #[cfg(not(any(feature = "openbao", feature = "hashicorp")))]
    #[allow(clippy::unused_self, clippy::unnecessary_wraps)]
    fn find_bootstrap(
        &self,
        _lookup: Option<&Lookup>,
    ) -> Result<(Option<LoadedBootstrap>, String), Error> {
        Ok((None, "built without a vault feature".into()))
    }

    /// The KV v2 settings of every vault level found, in order: the bootstrap's (or the
    /// environment's), then those given with [`kv2`](Self::kv2); each records its metrics
    /// through the client's unless it was given its own.
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    fn vault_configs(
        &self,
        loaded: Option<LoadedBootstrap>,
        var: &dyn Fn(&str) -> Option<String>,
        metrics: &Metrics,
    ) -> Result<Vec<secret_providers::Kv2Config>, Error> {
        use secret_providers::{Kv2Config, Kv2Flavor};

        use crate::bootstrap::config_error;

        // Explicit builder settings beat the environment's tuning.
        let tune = |mut config: Kv2Config| {
            if let Some(timeout) = self.vault_timeout {
                config.timeout = timeout.min(Kv2Config::MAX_TIMEOUT);
            }
            if let Some(retry) = self.vault_retry {
                config.retry = retry;
            }
            config
        };
        let mut configs = Vec::new();
        if let Some(loaded) = loaded {
            match loaded.source {
                // The environment level: the one reader's settings, in full.
                BootstrapSource::Environment(_) => {
                    let flavor = loaded.config.flavor;
                    configs.push(tune(loaded.config));
                    // Both OPENBAO_URL and VAULT_URL set: each scheme gets its own server.
                    if flavor == Kv2Flavor::OpenBao
                        && Kv2Config::address_from_lookup(Kv2Flavor::HashiCorp, var).is_some()
                    {
                        configs.push(tune(
                            Kv2Config::from_lookup(Kv2Flavor::HashiCorp, var)
                                .map_err(config_error)?,
                        ));
                    }
                }
                // A file or a given bootstrap: its address and login, the environment's tuning.
                _ => configs.push(tune(BootstrapConfig::tuned(&loaded.config, var)?)),
            }
        }
        configs.extend(self.kv2.iter().cloned());
        for config in &mut configs {
            config.metrics.get_or_insert_with(|| metrics.clone());
        }
        Ok(configs)
    }
}
