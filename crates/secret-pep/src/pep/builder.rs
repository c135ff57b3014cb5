//! [`PepBuilder`]: a PEP with a custom PDP, auditor or backend map.

use std::sync::Arc;

use secret_uri::Provider;

use super::shared::Shared;
use super::{Inner, Pep};
use crate::cache::{CacheSettings, GrantCache};
use crate::key::Backends;
use crate::pdp::{DevAllowAll, SecretPolicyService};
use secret_audit::Auditor;
use secret_telemetry::Metrics;

use crate::{PdpSettings, PepConfig, PepError, PepState, StateSettings};

/// Builds a [`Pep`] with a custom PDP or auditor. See [`Pep::builder`].
#[derive(Debug)]
pub struct PepBuilder {
    pub(super) config: PepConfig,
    pub(super) pdp: Option<Arc<dyn SecretPolicyService>>,
    pub(super) auditor: Option<Arc<Auditor>>,
    pub(super) allow_dev_pdp: bool,
    pub(super) backends: Backends,
    pub(super) metrics: Option<Metrics>,
    pub(super) state: Option<PepState>,
}

impl PepBuilder {
    /// Lets an allow-all development PDP ([`DevAllowAll`], `ENABLE_AUTHORIZATION=false`) run
    /// when `ENVIRONMENT` is **unset** — for tests, doctests and benchmarks. It never
    /// overrides an `ENVIRONMENT` that is set to anything outside
    /// [`DEVELOPMENT_ENVIRONMENTS`](crate::DEVELOPMENT_ENVIRONMENTS) (`production`, `staging`,
    /// …): those are refused whatever this says.
    #[must_use]
    pub fn allow_dev_pdp(mut self, allow: bool) -> Self {
        self.allow_dev_pdp = allow;
        self
    }

    /// Uses this PDP instead of the one `config.pdp` names.
    #[must_use]
    pub fn pdp(mut self, pdp: impl SecretPolicyService + 'static) -> Self {
        self.pdp = Some(Arc::new(pdp));
        self
    }

    /// Says which backend (server and namespace, in any stable spelling) serves `provider`'s
    /// URIs. Grants, use counts and denials belong to the resource on its backend, so scheme
    /// aliases that reach one backend share them: a client whose `openbao` and `hashicorp`
    /// URIs both go to one `VAULT_URL` names that URL for both. A provider not named here is
    /// its own backend.
    #[must_use]
    pub fn backend(mut self, provider: Provider, backend: impl Into<String>) -> Self {
        self.backends.set(provider, backend.into());
        self
    }

    /// Audits every decision and read through `auditor` (default: [`Auditor::disabled`]):
    /// keyed events, published without waiting on the network.
    #[must_use]
    pub fn auditor(mut self, auditor: Arc<Auditor>) -> Self {
        self.auditor = Some(auditor);
        self
    }

    /// Records decisions (`secrets.pep.decisions`) and PDP calls (`secrets.pdp.duration`)
    /// with `metrics` (default: [`Metrics::global`], bound by [`Self::build`] to the global
    /// meter provider installed at that moment — install it first, or pass one here).
    ///
    /// ```
    /// # use secret_pep::{PdpSettings, Pep, PepConfig};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = PepConfig::new("t1", "secret".parse()?)
    ///     .with_environment("test")
    ///     .with_pdp(PdpSettings::DisabledForDevelopment);
    /// let metrics = secret_telemetry::Metrics::global(); // or Metrics::new(&meter)
    /// let pep = Pep::builder(config).metrics(metrics).build()?;
    /// # drop(pep);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Keeps the PEP's state in `state` instead of what [`PepConfig::state`] says (by default
    /// the PEP's own memory; `REDIS_URL` puts it on Redis): for instance
    /// `PepState::redis(RedisState::new(&redis_config, tenant)?)` (feature `redis`) so that
    /// every replica shares one replay window, one use count per grant and one negative
    /// cache, or `PepState::memory().with_replay(store)` to share only the `jti`s.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use secret_pep::{MemoryReplayStore, PdpSettings, Pep, PepConfig, PepState};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = PepConfig::new("t1", "secret".parse()?)
    ///     .with_environment("test")
    ///     .with_pdp(PdpSettings::DisabledForDevelopment);
    /// let replay = Arc::new(MemoryReplayStore::new(100_000, 10_000));
    /// let pep = Pep::builder(config).state(PepState::memory().with_replay(replay)).build()?;
    /// # drop(pep);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn state(mut self, state: PepState) -> Self {
        self.state = Some(state);
        self
    }

    /// Validates the configuration and builds the PEP (no network I/O).
    ///
    /// # Errors
    /// `CONFIG`: invalid settings (see [`PepConfig::validate`]), no PDP at all, an invalid
    /// AuthZEN configuration, or an allow-all development PDP
    /// ([`SecretPolicyService::is_development`]) — whether from
    /// [`PdpSettings::DisabledForDevelopment`] or given to [`Self::pdp`] — while `ENVIRONMENT`
    /// is not one of [`DEVELOPMENT_ENVIRONMENTS`](crate::DEVELOPMENT_ENVIRONMENTS) (unset is
    /// accepted only with [`Self::allow_dev_pdp`]). With state on Redis (`REDIS_URL`):
    /// `CONFIG` for a URL the client cannot use, an unreadable `REDIS_CA_BUNDLE`, a build
    /// without the `redis` feature, or a [`RedisState`](crate::PepState) of another tenant.
    /// No connection is made here: the first call connects (bounded by `REDIS_TIMEOUT_MS`).
    pub fn build(self) -> Result<Pep, PepError> {
        let config = self.config;
        config.validate()?;
        let pdp: Arc<dyn SecretPolicyService> = match (self.pdp, &config.pdp) {
            (Some(pdp), _) => pdp,
            (None, PdpSettings::None) => {
                return Err(PepError::invalid(
                    "AUTHZEN_PDP_URL",
                    "is not set: no PDP configured (ENABLE_AUTHORIZATION=false disables \
                     authorization, for local development only)",
                ));
            }
            (None, PdpSettings::DisabledForDevelopment) => {
                // Checked before the constructor logs its warning.
                config.check_dev_pdp(self.allow_dev_pdp)?;
                Arc::new(DevAllowAll::new())
            }
            #[cfg(feature = "authzen")]
            (None, PdpSettings::AuthZen(authzen)) => {
                Arc::new(crate::AuthzenClient::new(authzen.clone())?)
            }
            #[cfg(not(feature = "authzen"))]
            (None, PdpSettings::AuthZen(_)) => {
                return Err(PepError::invalid(
                    "AUTHZEN_PDP_URL",
                    "is set but secret-pep was built without the `authzen` feature",
                ));
            }
        };
        // Whatever path installed it, an allow-all PDP runs only in development.
        if pdp.is_development() {
            config.check_dev_pdp(self.allow_dev_pdp)?;
        }
        let state = match self.state {
            Some(state) => Some(state),
            None => state_from(&config)?,
        };
        #[cfg(feature = "redis")]
        if let Some(redis) = state.as_ref().and_then(|s| s.redis.as_ref())
            && redis.tenant() != config.tenant_id
        {
            return Err(PepError::invalid(
                "TENANT_ID",
                "differs from the tenant the RedisState was made for",
            ));
        }
        let shared = match state {
            Some(state) if !state.is_memory() => Some(Shared::new(
                state,
                config.grant_cache_max_entries,
                config.anti_replay_fail_open,
            )?),
            _ => None,
        };
        let cache = GrantCache::new(CacheSettings {
            negative_ttl: config.negative_cache_ttl,
            negative_jitter: config.negative_cache_jitter,
            grant_max_entries: config.grant_cache_max_entries,
            replay_max_entries: config.anti_replay_max_entries,
            replay_max_per_subject: config.replay_share(),
        });
        Ok(Pep {
            inner: Arc::new(Inner {
                pdp,
                auditor: self
                    .auditor
                    .unwrap_or_else(|| Arc::new(Auditor::disabled())),
                cache,
                shared,
                config,
                backends: self.backends,
                metrics: self.metrics.unwrap_or_else(Metrics::global),
            }),
        })
    }
}

/// The state [`PepConfig::state`] names (`None`: the PEP's own memory).
fn state_from(config: &PepConfig) -> Result<Option<PepState>, PepError> {
    match &config.state {
        StateSettings::Memory => Ok(None),
        #[cfg(feature = "redis")]
        StateSettings::Redis(redis) => {
            let state = crate::RedisState::new(redis, &config.tenant_id)?;
            Ok(Some(PepState::redis(state)))
        }
        #[cfg(not(feature = "redis"))]
        StateSettings::Redis(_) => Err(PepError::invalid(
            "REDIS_URL",
            "is set but secret-pep was built without the `redis` feature",
        )),
    }
}
