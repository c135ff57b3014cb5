//! [`PepConfig`]: struct, builder methods and environment.

mod authzen;
mod state;

use std::time::Duration;

use secret_config::Env;
use secret_uri::AllowedMounts;

use crate::{GrantDefaults, PepError};

pub use authzen::{AuthzenConfig, AuthzenDialect};
pub(crate) use authzen::{USERINFO_REFUSED, url_has_userinfo};
pub use state::{MIN_STATE_KEY_BYTES, RedisConfig, StateSettings};

/// The default secrets audience (`SECRETS_AUDIENCE`).
pub const DEFAULT_AUDIENCE: &str = "crud.secrets";

/// The `ENVIRONMENT` values (compared trimmed, case-insensitively) in which the allow-all
/// development PDP ([`DevAllowAll`](crate::DevAllowAll), `ENABLE_AUTHORIZATION=false`) may run.
/// Any other value, or none, refuses it: an unknown or forgotten `ENVIRONMENT` is treated as
/// production. `ci` is not one of them: CI runners often hold production credentials.
pub const DEVELOPMENT_ENVIRONMENTS: [&str; 4] = ["dev", "development", "test", "local"];

/// The default size of the anti-replay store (`ANTI_REPLAY_MAX_ENTRIES`): 1 000 000 `jti`s,
/// about 3 300 reads/s sustained over the default 300 s window (the benchmarks reach about
/// 3 000/s against one vault), at roughly 48 bytes each when full.
pub const DEFAULT_ANTI_REPLAY_MAX_ENTRIES: usize = 1_000_000;

/// The longest accepted `NEGATIVE_CACHE_TTL_S` (1 h): a denial remembered longer would hide
/// policy changes, and absurd values would overflow deadline arithmetic.
pub(crate) const MAX_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(3600);
/// The longest accepted `NEGATIVE_CACHE_JITTER_MS` (60 s).
pub(crate) const MAX_NEGATIVE_CACHE_JITTER: Duration = Duration::from_secs(60);
/// The longest accepted `ANTI_REPLAY_TTL_S`, `ANTI_REPLAY_MAX_TTL_S` and `GRANT_TTL_DEFAULT`
/// (7 days).
pub(crate) const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest accepted `ANTI_REPLAY_CLOCK_SKEW_S` (1 h).
pub(crate) const MAX_CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// Settings of a [`Pep`](crate::Pep).
///
/// Build one with [`PepConfig::new`] and the `with_*` methods, or read it from the environment
/// with [`PepConfig::from_env`]. [`Pep::new`](crate::Pep::new) validates it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PepConfig {
    /// The tenant this PEP serves (`TENANT_ID`, required).
    pub tenant_id: String,
    /// The mounts the tenant may read (`TENANT_ALLOWED_MOUNTS`, required, non-empty).
    pub allowed_mounts: AllowedMounts,
    /// The audience a context's `aud` must contain (`SECRETS_AUDIENCE`, default
    /// `crud.secrets`).
    pub audience: String,
    /// Deny a context with no `aud` at all (`SECRETS_AUDIENCE_REQUIRED`, default `true`). Set
    /// it to `false` only for token issuers that never set `aud`; a context whose `aud` lacks
    /// the audience is denied either way.
    pub require_audience: bool,
    /// Sent to the PDP as the read's purpose (`SECRETS_PURPOSE`, optional).
    pub purpose: Option<String>,
    /// TTL and use count of a permit whose decision does not say (`GRANT_TTL_DEFAULT`, 300 s;
    /// `GRANT_MAX_USES_DEFAULT`, 1).
    pub grant_defaults: GrantDefaults,
    /// The longest TTL accepted from a PDP; longer ones are cut (default 24 h).
    pub grant_ttl_max: Duration,
    /// How many grants are cached at most (`GRANT_CACHE_MAX_ENTRIES`, default 100 000).
    pub grant_cache_max_entries: usize,
    /// How long a PDP denial is remembered (`NEGATIVE_CACHE_TTL_S`, default 5 s; 0 disables).
    pub negative_cache_ttl: Duration,
    /// Up to this much random extra on each denial's TTL (`NEGATIVE_CACHE_JITTER_MS`,
    /// default 500 ms).
    pub negative_cache_jitter: Duration,
    /// Check every `jti` for replay (`ANTI_REPLAY_ENABLED`, default `true`). Turn it off only
    /// for deployments whose tokens reuse one `jti` across calls.
    pub anti_replay: bool,
    /// While anti-replay is on, deny a context without a `jti` (`AUTHZ_DENIED` / `JTI_MISSING`)
    /// instead of letting it skip the replay check (`ANTI_REPLAY_REQUIRE_JTI`, default `true`).
    pub require_jti: bool,
    /// How long a `jti` is remembered (`ANTI_REPLAY_TTL_S`, default 300 s; at least the
    /// token lifetime).
    pub anti_replay_ttl: Duration,
    /// How many `jti`s are remembered at most (`ANTI_REPLAY_MAX_ENTRIES`, default
    /// [`DEFAULT_ANTI_REPLAY_MAX_ENTRIES`]); when full of live ones, calls with a new `jti` are
    /// denied (`REPLAY_STORE_FULL`). Size it as peak reads per second × the longest window a
    /// `jti` is kept (`ANTI_REPLAY_TTL_S`, or the token lifetime plus the skew when longer).
    pub anti_replay_max_entries: usize,
    /// How many live `jti`s one principal (issuer and subject) may hold in the store
    /// (`ANTI_REPLAY_MAX_PER_SUBJECT`, default a tenth of `anti_replay_max_entries`): a
    /// principal minting tokens fills its own share (`REPLAY_STORE_FULL` for it alone), not
    /// everyone's.
    pub anti_replay_max_per_subject: Option<usize>,
    /// The longest token lifetime accepted (`ANTI_REPLAY_MAX_TTL_S`, default 3600 s): a token
    /// whose `exp` is further away is refused (`TOKEN_LIFETIME`), since its `jti` would have to
    /// be remembered that long.
    pub anti_replay_max_ttl: Duration,
    /// Clock skew allowed on `exp` (`ANTI_REPLAY_CLOCK_SKEW_S`, default 60 s): a `jti` is kept
    /// until `exp` plus this, and a token is expired only this long after its `exp`.
    pub anti_replay_clock_skew: Duration,
    /// When the anti-replay store is a shared one (Redis) and cannot be reached, let the
    /// request through without a replay check instead of refusing it
    /// (`ANTI_REPLAY_FAIL_OPEN`, default `false`). Each such request is counted
    /// (`secrets.pep.state_store.failures`, `store = replay`, `outcome = allowed`) and a
    /// warning is logged (at most every 10 s). Grants and the negative cache always fail
    /// closed.
    pub anti_replay_fail_open: bool,
    /// Where grants, use counts, `jti`s and denials live (`REDIS_URL` set: on Redis, feature
    /// `redis`), unless [`PepBuilder::state`](crate::PepBuilder::state) says otherwise.
    pub state: StateSettings,
    /// Which PDP decides.
    pub pdp: PdpSettings,
    /// The deployment environment (`ENVIRONMENT`). The allow-all development PDP is accepted
    /// only when it is one of [`DEVELOPMENT_ENVIRONMENTS`]. `None` reads `ENVIRONMENT` when
    /// the PEP is built.
    pub environment: Option<String>,
}

/// Which PDP a [`PepConfig`] uses.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PdpSettings {
    /// No PDP configured: [`Pep::new`](crate::Pep::new) fails unless one is given with
    /// [`PepBuilder::pdp`](crate::PepBuilder::pdp). Never fails open.
    None,
    /// An AuthZEN 1.0 PDP (`AUTHZEN_PDP_URL`).
    AuthZen(AuthzenConfig),
    /// Development mode: every read is permitted (`ENABLE_AUTHORIZATION=false`). A warning is
    /// logged; [`Pep::new`](crate::Pep::new) refuses it unless `ENVIRONMENT` is one of
    /// [`DEVELOPMENT_ENVIRONMENTS`].
    DisabledForDevelopment,
}

impl PepConfig {
    /// Defaults for `tenant_id` reading from `allowed_mounts`, with no PDP yet (set one with
    /// [`Self::with_pdp`] or give one to [`PepBuilder::pdp`](crate::PepBuilder::pdp)).
    #[must_use]
    pub fn new(tenant_id: impl Into<String>, allowed_mounts: AllowedMounts) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            allowed_mounts,
            audience: DEFAULT_AUDIENCE.to_owned(),
            require_audience: true,
            purpose: None,
            grant_defaults: GrantDefaults::default(),
            grant_ttl_max: Duration::from_secs(24 * 3600),
            grant_cache_max_entries: 100_000,
            negative_cache_ttl: Duration::from_secs(5),
            negative_cache_jitter: Duration::from_millis(500),
            anti_replay: true,
            require_jti: true,
            anti_replay_ttl: Duration::from_secs(300),
            anti_replay_max_entries: DEFAULT_ANTI_REPLAY_MAX_ENTRIES,
            anti_replay_max_per_subject: None,
            anti_replay_max_ttl: Duration::from_secs(3600),
            anti_replay_clock_skew: Duration::from_secs(60),
            anti_replay_fail_open: false,
            state: StateSettings::Memory,
            pdp: PdpSettings::None,
            environment: None,
        }
    }

    /// Reads the configuration from the process environment. See [`Self::from_lookup`].
    ///
    /// # Errors
    /// As [`Self::from_lookup`].
    pub fn from_env() -> Result<Self, PepError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests):
    ///
    /// | Variable | Meaning | Default |
    /// | --- | --- | --- |
    /// | `TENANT_ID` | tenant served | required |
    /// | `TENANT_ALLOWED_MOUNTS` | comma list of mounts | required, non-empty |
    /// | `SECRETS_AUDIENCE` | audience required in `aud` | `crud.secrets` |
    /// | `SECRETS_AUDIENCE_REQUIRED` | deny a context without `aud` | `true` |
    /// | `SECRETS_PURPOSE` | purpose sent to the PDP | none |
    /// | `GRANT_TTL_DEFAULT` | grant TTL, seconds | 300 |
    /// | `GRANT_MAX_USES_DEFAULT` | grant uses | 1 |
    /// | `GRANT_CACHE_MAX_ENTRIES` | cached grants | 100 000 |
    /// | `NEGATIVE_CACHE_TTL_S` | denial TTL, seconds | 5 |
    /// | `NEGATIVE_CACHE_JITTER_MS` | extra random denial TTL | 500 |
    /// | `ANTI_REPLAY_ENABLED` | check `jti` on every call | `true` |
    /// | `ANTI_REPLAY_REQUIRE_JTI` | deny a context without `jti` (while anti-replay is on) | `true` |
    /// | `ANTI_REPLAY_TTL_S` | `jti` memory, seconds | 300 |
    /// | `ANTI_REPLAY_MAX_ENTRIES` | `jti`s remembered | 1 000 000 |
    /// | `ANTI_REPLAY_MAX_PER_SUBJECT` | `jti`s one principal may hold | a tenth of the store |
    /// | `ANTI_REPLAY_MAX_TTL_S` | longest token lifetime (`exp` − now) accepted, seconds | 3600 |
    /// | `ANTI_REPLAY_CLOCK_SKEW_S` | skew allowed on `exp`, seconds | 60 |
    /// | `ANTI_REPLAY_FAIL_OPEN` | let calls through when a shared anti-replay store is unreachable | `false` |
    /// | `REDIS_URL`, `REDIS_KEY_PREFIX`, `PEP_STATE_KEY`, `REDIS_TIMEOUT_MS`, `REDIS_CONNECT_TIMEOUT_MS`, `REDIS_CA_BUNDLE` | the PEP's state on Redis; see [`RedisConfig`] | in memory |
    /// | `ENABLE_AUTHORIZATION` | `false` = development mode (allow all) | `true` |
    /// | `AUTHZEN_PDP_URL` | the AuthZEN PDP | required unless `ENABLE_AUTHORIZATION=false` |
    /// | `AUTHZEN_PDP_TOKEN`, `AUTHZEN_TIMEOUT_MS`, `AUTHZEN_DISCOVERY`, `AUTHZEN_DIALECT`, `AUTHZEN_ALLOW_INSECURE_HTTP`, `AUTHZEN_CA_BUNDLE`, `AUTHZEN_BREAKER_THRESHOLD`, `AUTHZEN_BREAKER_COOLDOWN_MS` | see [`AuthzenConfig`] | |
    /// | `ENVIRONMENT` | development mode needs one of [`DEVELOPMENT_ENVIRONMENTS`] | none |
    ///
    /// Booleans are `true`/`false`/`1`/`0`/`yes`/`no`/`on`/`off`; anything else is an error,
    /// so a typo never flips a security switch.
    ///
    /// # Errors
    /// `CONFIG` naming the variable that is missing or invalid (never its value), and when no
    /// PDP is configured and `ENABLE_AUTHORIZATION=false` is not set: the PEP never fails open
    /// by default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, PepError> {
        let env = Env::new(&lookup);
        let tenant_id = env
            .get("TENANT_ID")
            .ok_or_else(|| PepError::invalid("TENANT_ID", "is required"))?;
        let mounts = env
            .get("TENANT_ALLOWED_MOUNTS")
            .map(|list| AllowedMounts::from_csv(&list))
            .unwrap_or_default();
        let mut config = Self::new(tenant_id, mounts);
        if let Some(audience) = env.get("SECRETS_AUDIENCE") {
            config.audience = audience;
        }
        config.require_audience = env.flag("SECRETS_AUDIENCE_REQUIRED", true)?;
        config.purpose = env.get("SECRETS_PURPOSE");
        config.grant_defaults.ttl = env.seconds("GRANT_TTL_DEFAULT", config.grant_defaults.ttl)?;
        config.grant_defaults.max_uses =
            env.number("GRANT_MAX_USES_DEFAULT", config.grant_defaults.max_uses)?;
        config.grant_cache_max_entries =
            env.number("GRANT_CACHE_MAX_ENTRIES", config.grant_cache_max_entries)?;
        config.negative_cache_ttl =
            env.seconds("NEGATIVE_CACHE_TTL_S", config.negative_cache_ttl)?;
        config.negative_cache_jitter =
            env.millis("NEGATIVE_CACHE_JITTER_MS", config.negative_cache_jitter)?;
        config.anti_replay = env.flag("ANTI_REPLAY_ENABLED", true)?;
        config.require_jti = env.flag("ANTI_REPLAY_REQUIRE_JTI", true)?;
        config.anti_replay_ttl = env.seconds("ANTI_REPLAY_TTL_S", config.anti_replay_ttl)?;
        config.anti_replay_max_entries =
            env.number("ANTI_REPLAY_MAX_ENTRIES", config.anti_replay_max_entries)?;
        if let Some(share) = env.number_opt("ANTI_REPLAY_MAX_PER_SUBJECT")? {
            config.anti_replay_max_per_subject = Some(share);
        }
        config.anti_replay_max_ttl =
            env.seconds("ANTI_REPLAY_MAX_TTL_S", config.anti_replay_max_ttl)?;
        config.anti_replay_clock_skew =
            env.seconds("ANTI_REPLAY_CLOCK_SKEW_S", config.anti_replay_clock_skew)?;
        config.anti_replay_fail_open = env.flag("ANTI_REPLAY_FAIL_OPEN", false)?;
        if let Some(redis) = RedisConfig::from_env(&env)? {
            config.state = StateSettings::Redis(redis);
        }
        config.environment = env.get("ENVIRONMENT");

        let enabled = env.flag("ENABLE_AUTHORIZATION", true)?;
        let url = env.get("AUTHZEN_PDP_URL");
        config.pdp = match (enabled, url) {
            (false, url) => {
                if url.is_some() {
                    tracing::warn!(
                        "ENABLE_AUTHORIZATION=false: AUTHZEN_PDP_URL is ignored, every read is permitted"
                    );
                }
                PdpSettings::DisabledForDevelopment
            }
            (true, Some(url)) => PdpSettings::AuthZen(AuthzenConfig::from_lookup(url, &env)?),
            (true, None) => {
                return Err(PepError::invalid(
                    "AUTHZEN_PDP_URL",
                    "is not set: no PDP configured (ENABLE_AUTHORIZATION=false disables \
                     authorization, for local development only)",
                ));
            }
        };
        config.validate()?;
        Ok(config)
    }

    /// Sets the PDP.
    #[must_use]
    pub fn with_pdp(mut self, pdp: PdpSettings) -> Self {
        self.pdp = pdp;
        self
    }

    /// Sets the audience.
    #[must_use]
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// Denies contexts without `aud` (`true`, the default) or lets them pass (`false`).
    #[must_use]
    pub fn with_required_audience(mut self, required: bool) -> Self {
        self.require_audience = required;
        self
    }

    /// Sets the purpose sent to the PDP.
    #[must_use]
    pub fn with_purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = Some(purpose.into());
        self
    }

    /// Sets the default grant TTL and use count.
    #[must_use]
    pub fn with_grant_defaults(mut self, ttl: Duration, max_uses: u32) -> Self {
        self.grant_defaults = GrantDefaults { ttl, max_uses };
        self
    }

    /// Sets the negative-cache TTL and maximum jitter.
    #[must_use]
    pub fn with_negative_cache(mut self, ttl: Duration, jitter: Duration) -> Self {
        self.negative_cache_ttl = ttl;
        self.negative_cache_jitter = jitter;
        self
    }

    /// Requires (the default) or stops requiring a `jti` on every call while anti-replay is on.
    #[must_use]
    pub fn with_required_jti(mut self, required: bool) -> Self {
        self.require_jti = required;
        self
    }

    /// Turns per-call `jti` anti-replay on or off and sets its window.
    #[must_use]
    pub fn with_anti_replay(mut self, enabled: bool, ttl: Duration) -> Self {
        self.anti_replay = enabled;
        self.anti_replay_ttl = ttl;
        self
    }

    /// Sets the size caps of the anti-replay store and the grant cache.
    #[must_use]
    pub fn with_capacity(
        mut self,
        anti_replay_max_entries: usize,
        grant_max_entries: usize,
    ) -> Self {
        self.anti_replay_max_entries = anti_replay_max_entries;
        self.grant_cache_max_entries = grant_max_entries;
        self
    }

    /// Sets the longest accepted token lifetime and the clock skew allowed on `exp`.
    #[must_use]
    pub fn with_token_lifetime(mut self, max_ttl: Duration, clock_skew: Duration) -> Self {
        self.anti_replay_max_ttl = max_ttl;
        self.anti_replay_clock_skew = clock_skew;
        self
    }

    /// Sets how many live `jti`s one principal may hold in the anti-replay store.
    #[must_use]
    pub fn with_replay_share(mut self, per_subject: usize) -> Self {
        self.anti_replay_max_per_subject = Some(per_subject);
        self
    }

    /// The per-principal share of the anti-replay store in effect: the configured one, else a
    /// tenth of the store (at least 1).
    #[must_use]
    pub fn replay_share(&self) -> usize {
        self.anti_replay_max_per_subject
            .unwrap_or(self.anti_replay_max_entries / 10)
            .max(1)
    }

    /// Sets where the PEP's state lives.
    #[must_use]
    pub fn with_state(mut self, state: StateSettings) -> Self {
        self.state = state;
        self
    }

    /// Lets calls through (`true`) or refuses them (`false`, the default) when a shared
    /// anti-replay store cannot be reached.
    #[must_use]
    pub fn with_anti_replay_fail_open(mut self, fail_open: bool) -> Self {
        self.anti_replay_fail_open = fail_open;
        self
    }

    /// Sets the deployment environment.
    #[must_use]
    pub fn with_environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Checks the settings that do not depend on the PDP.
    ///
    /// # Errors
    /// `CONFIG` for an empty tenant, empty `TENANT_ALLOWED_MOUNTS`, empty audience, a zero
    /// default TTL or use count, a zero-sized store, a window beyond its cap
    /// (`NEGATIVE_CACHE_TTL_S` 1 h, `NEGATIVE_CACHE_JITTER_MS` 60 s, `ANTI_REPLAY_TTL_S` and
    /// `GRANT_TTL_DEFAULT` 7 days), or an AuthZEN URL with `user:password@` credentials.
    pub fn validate(&self) -> Result<(), PepError> {
        if self.tenant_id.trim().is_empty() {
            return Err(PepError::invalid("TENANT_ID", "must not be empty"));
        }
        if self.allowed_mounts.is_unrestricted() {
            return Err(PepError::invalid(
                "TENANT_ALLOWED_MOUNTS",
                "is required and must name at least one mount",
            ));
        }
        if self.audience.trim().is_empty() {
            return Err(PepError::invalid("SECRETS_AUDIENCE", "must not be empty"));
        }
        if self.grant_defaults.ttl.is_zero() {
            return Err(PepError::invalid("GRANT_TTL_DEFAULT", "must be positive"));
        }
        if self.grant_defaults.max_uses == 0 {
            return Err(PepError::invalid(
                "GRANT_MAX_USES_DEFAULT",
                "must be at least 1",
            ));
        }
        if self.anti_replay && self.anti_replay_ttl.is_zero() {
            return Err(PepError::invalid(
                "ANTI_REPLAY_TTL_S",
                "must be positive while anti-replay is enabled",
            ));
        }
        if self.anti_replay && self.anti_replay_max_entries == 0 {
            return Err(PepError::invalid(
                "ANTI_REPLAY_MAX_ENTRIES",
                "must be positive while anti-replay is enabled",
            ));
        }
        if self.anti_replay_max_per_subject == Some(0) {
            return Err(PepError::invalid(
                "ANTI_REPLAY_MAX_PER_SUBJECT",
                "must be positive",
            ));
        }
        if self.grant_cache_max_entries == 0 {
            return Err(PepError::invalid(
                "GRANT_CACHE_MAX_ENTRIES",
                "must be positive",
            ));
        }
        let caps = [
            (
                self.negative_cache_ttl,
                MAX_NEGATIVE_CACHE_TTL,
                "NEGATIVE_CACHE_TTL_S",
                "must be at most 3600",
            ),
            (
                self.negative_cache_jitter,
                MAX_NEGATIVE_CACHE_JITTER,
                "NEGATIVE_CACHE_JITTER_MS",
                "must be at most 60000",
            ),
            (
                self.anti_replay_ttl,
                MAX_WINDOW,
                "ANTI_REPLAY_TTL_S",
                "must be at most 604800 (7 days)",
            ),
            (
                self.grant_defaults.ttl,
                MAX_WINDOW,
                "GRANT_TTL_DEFAULT",
                "must be at most 604800 (7 days)",
            ),
            (
                self.anti_replay_max_ttl,
                MAX_WINDOW,
                "ANTI_REPLAY_MAX_TTL_S",
                "must be at most 604800 (7 days)",
            ),
            (
                self.anti_replay_clock_skew,
                MAX_CLOCK_SKEW,
                "ANTI_REPLAY_CLOCK_SKEW_S",
                "must be at most 3600",
            ),
        ];
        for (value, max, setting, reason) in caps {
            if value > max {
                return Err(PepError::invalid(setting, reason));
            }
        }
        if let PdpSettings::AuthZen(authzen) = &self.pdp
            && url_has_userinfo(&authzen.url)
        {
            return Err(PepError::invalid("AUTHZEN_PDP_URL", USERINFO_REFUSED));
        }
        if let StateSettings::Redis(redis) = &self.state {
            redis.validate()?;
        }
        Ok(())
    }

    /// Whether the allow-all development PDP may run: every `ENVIRONMENT` that is set — the
    /// process variable and `environment` given in code — is one of
    /// [`DEVELOPMENT_ENVIRONMENTS`], and at least one is set unless `unset_ok` (the explicit
    /// [`PepBuilder::allow_dev_pdp`](crate::PepBuilder::allow_dev_pdp) opt-in). No value set
    /// in code overrides `ENVIRONMENT=production` in the process.
    pub(crate) fn check_dev_pdp(&self, unset_ok: bool) -> Result<(), PepError> {
        let process = Env::process().get("ENVIRONMENT");
        self.check_dev_pdp_with(process.as_deref(), unset_ok)
    }

    fn check_dev_pdp_with(&self, process: Option<&str>, unset_ok: bool) -> Result<(), PepError> {
        let normalize = |e: &str| {
            let e = e.trim().to_ascii_lowercase();
            (!e.is_empty()).then_some(e)
        };
        let named: Vec<String> = [self.environment.as_deref(), process]
            .into_iter()
            .flatten()
            .filter_map(normalize)
            .collect();
        let allowed = if named.is_empty() {
            unset_ok
        } else {
            named
                .iter()
                .all(|name| DEVELOPMENT_ENVIRONMENTS.contains(&name.as_str()))
        };
        if allowed {
            Ok(())
        } else {
            Err(PepError::invalid(
                "ENVIRONMENT",
                "must be one of dev, development, test, local for the allow-all development \
                 PDP (ENABLE_AUTHORIZATION=false, DevAllowAll)",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_and_authzen_from_env() -> Result<(), PepError> {
        let config = PepConfig::from_lookup(lookup(&[
            ("TENANT_ID", "t1"),
            ("TENANT_ALLOWED_MOUNTS", "secret, config"),
            ("AUTHZEN_PDP_URL", "http://127.0.0.1:3592"),
            ("AUTHZEN_DIALECT", "Cerbos"),
            ("AUTHZEN_TIMEOUT_MS", "750"),
            ("GRANT_MAX_USES_DEFAULT", "3"),
        ]))?;
        assert_eq!(config.tenant_id, "t1");
        assert!(config.allowed_mounts.contains("config"));
        assert_eq!(config.audience, "crud.secrets");
        assert_eq!(config.grant_defaults.ttl, Duration::from_secs(300));
        assert_eq!(config.grant_defaults.max_uses, 3);
        assert_eq!(config.negative_cache_ttl, Duration::from_secs(5));
        assert_eq!(config.anti_replay_ttl, Duration::from_secs(300));
        assert!(config.anti_replay);
        let PdpSettings::AuthZen(authzen) = &config.pdp else {
            panic!("expected AuthZEN, got {:?}", config.pdp);
        };
        assert_eq!(authzen.dialect, AuthzenDialect::Cerbos);
        assert_eq!(authzen.timeout, Duration::from_millis(750));
        assert!(authzen.discovery);
        Ok(())
    }

    #[test]
    fn never_fails_open_by_default() {
        let base = [("TENANT_ID", "t1"), ("TENANT_ALLOWED_MOUNTS", "secret")];
        let err = PepConfig::from_lookup(lookup(&base)).unwrap_err();
        assert_eq!(err.code(), "CONFIG");
        assert!(err.to_string().contains("AUTHZEN_PDP_URL"), "{err}");

        for typo in ["flase", "disabled"] {
            let mut pairs = base.to_vec();
            pairs.push(("ENABLE_AUTHORIZATION", typo));
            let err = PepConfig::from_lookup(lookup(&pairs)).unwrap_err();
            assert!(err.to_string().contains("ENABLE_AUTHORIZATION"), "{err}");
            assert!(!err.to_string().contains(typo), "value echoed: {err}");
        }

        let mut pairs = base.to_vec();
        pairs.push(("ENABLE_AUTHORIZATION", "false"));
        let config = PepConfig::from_lookup(lookup(&pairs)).unwrap();
        assert!(matches!(config.pdp, PdpSettings::DisabledForDevelopment));
    }

    #[test]
    fn tenant_and_mounts_are_required() {
        let err =
            PepConfig::from_lookup(lookup(&[("TENANT_ALLOWED_MOUNTS", "secret")])).unwrap_err();
        assert!(err.to_string().contains("TENANT_ID"));
        for mounts in [None, Some(""), Some(" , ")] {
            let mut pairs = vec![("TENANT_ID", "t1"), ("ENABLE_AUTHORIZATION", "false")];
            if let Some(m) = mounts {
                pairs.push(("TENANT_ALLOWED_MOUNTS", m));
            }
            let err = PepConfig::from_lookup(lookup(&pairs)).unwrap_err();
            assert!(err.to_string().contains("TENANT_ALLOWED_MOUNTS"), "{err}");
        }
        let bad = PepConfig::from_lookup(lookup(&[
            ("TENANT_ID", "t1"),
            ("TENANT_ALLOWED_MOUNTS", "secret"),
            ("ENABLE_AUTHORIZATION", "false"),
            ("GRANT_TTL_DEFAULT", "-1"),
        ]))
        .unwrap_err();
        assert!(bad.to_string().contains("GRANT_TTL_DEFAULT"));
    }

    #[test]
    fn fail_closed_defaults_and_their_opt_outs() -> Result<(), PepError> {
        let base = [
            ("TENANT_ID", "t1"),
            ("TENANT_ALLOWED_MOUNTS", "secret"),
            ("ENABLE_AUTHORIZATION", "false"),
        ];
        let config = PepConfig::from_lookup(lookup(&base))?;
        assert!(config.require_audience && config.require_jti);
        let new = PepConfig::new("t1", AllowedMounts::from_csv("secret"));
        assert!(new.require_audience && new.require_jti);
        let mut pairs = base.to_vec();
        pairs.push(("SECRETS_AUDIENCE_REQUIRED", "false"));
        pairs.push(("ANTI_REPLAY_REQUIRE_JTI", "no"));
        let config = PepConfig::from_lookup(lookup(&pairs))?;
        assert!(!config.require_audience && !config.require_jti);
        Ok(())
    }

    #[test]
    fn absurd_windows_are_refused() {
        let base = [
            ("TENANT_ID", "t1"),
            ("TENANT_ALLOWED_MOUNTS", "secret"),
            ("ENABLE_AUTHORIZATION", "false"),
        ];
        let max = u64::MAX.to_string();
        for (name, value) in [
            ("NEGATIVE_CACHE_TTL_S", max.as_str()),
            ("NEGATIVE_CACHE_TTL_S", "3601"),
            ("NEGATIVE_CACHE_JITTER_MS", max.as_str()),
            ("ANTI_REPLAY_TTL_S", max.as_str()),
            ("GRANT_TTL_DEFAULT", max.as_str()),
        ] {
            let mut pairs = base.to_vec();
            pairs.push((name, value));
            let err = PepConfig::from_lookup(lookup(&pairs)).unwrap_err();
            assert_eq!(err.code(), "CONFIG");
            assert!(err.to_string().contains(name), "{err}");
        }
        let mut pairs = base.to_vec();
        pairs.push(("NEGATIVE_CACHE_TTL_S", "3600"));
        assert!(PepConfig::from_lookup(lookup(&pairs)).is_ok());
    }

    #[test]
    fn code_cannot_override_a_production_environment() {
        let config = |env: Option<&str>| {
            let mut c = PepConfig::new("t1", AllowedMounts::from_csv("secret"));
            c.environment = env.map(str::to_owned);
            c
        };
        let check = |code: Option<&str>, process: Option<&str>, unset_ok: bool| {
            config(code).check_dev_pdp_with(process, unset_ok).is_ok()
        };
        assert!(check(Some("dev"), None, false));
        assert!(check(None, Some("test"), false));
        assert!(check(Some("dev"), Some("local"), false));
        // The process says production: nothing in code overrides it.
        assert!(!check(Some("dev"), Some("production"), true));
        assert!(!check(Some("dev"), Some(" Production "), true));
        assert!(!check(Some("production"), Some("dev"), true));
        // CI runners hold production credentials: ci is not development.
        assert!(!check(Some("ci"), None, true));
        assert!(!check(None, Some("CI"), true));
        // Unset (or empty) everywhere: only with the explicit opt-in.
        assert!(!check(None, None, false));
        assert!(check(Some(" "), Some(""), true));
    }

    #[test]
    fn replay_window_settings_are_read_and_capped() -> Result<(), PepError> {
        let base = [
            ("TENANT_ID", "t1"),
            ("TENANT_ALLOWED_MOUNTS", "secret"),
            ("ENABLE_AUTHORIZATION", "false"),
        ];
        let config = PepConfig::from_lookup(lookup(&base))?;
        assert_eq!(
            config.anti_replay_max_entries,
            DEFAULT_ANTI_REPLAY_MAX_ENTRIES
        );
        assert_eq!(config.replay_share(), DEFAULT_ANTI_REPLAY_MAX_ENTRIES / 10);
        assert_eq!(config.anti_replay_max_ttl, Duration::from_secs(3600));
        let mut pairs = base.to_vec();
        pairs.extend([
            ("ANTI_REPLAY_MAX_ENTRIES", "50"),
            ("ANTI_REPLAY_MAX_PER_SUBJECT", "7"),
            ("ANTI_REPLAY_MAX_TTL_S", "600"),
            ("ANTI_REPLAY_CLOCK_SKEW_S", "5"),
        ]);
        let config = PepConfig::from_lookup(lookup(&pairs))?;
        assert_eq!(config.replay_share(), 7);
        assert_eq!(config.anti_replay_max_ttl, Duration::from_secs(600));
        assert_eq!(config.anti_replay_clock_skew, Duration::from_secs(5));
        let max = u64::MAX.to_string();
        for (name, value) in [
            ("ANTI_REPLAY_MAX_PER_SUBJECT", "0"),
            ("ANTI_REPLAY_MAX_TTL_S", max.as_str()),
            ("ANTI_REPLAY_CLOCK_SKEW_S", "3601"),
        ] {
            let mut pairs = base.to_vec();
            pairs.push((name, value));
            let err = PepConfig::from_lookup(lookup(&pairs)).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        Ok(())
    }

    #[test]
    fn pdp_url_credentials_are_refused() {
        let url = "https://svc:hunter2@pdp.internal:3592/";
        let err = PepConfig::from_lookup(lookup(&[
            ("TENANT_ID", "t1"),
            ("TENANT_ALLOWED_MOUNTS", "secret"),
            ("AUTHZEN_PDP_URL", url),
        ]))
        .unwrap_err();
        assert_eq!(err.code(), "CONFIG");
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err}");

        let authzen = AuthzenConfig::new(url);
        assert!(!format!("{authzen:?}").contains("hunter2"));
        let config = PepConfig::new("t1", AllowedMounts::from_csv("secret"))
            .with_pdp(PdpSettings::AuthZen(authzen));
        assert_eq!(config.validate().unwrap_err().code(), "CONFIG");

        assert!(url_has_userinfo("http://u@h"));
        assert!(!url_has_userinfo("http://h:1/p@x?q=@"));
        assert!(!url_has_userinfo("http://127.0.0.1:3592"));
    }

    #[test]
    fn every_config_error_names_its_setting_as_a_field_and_never_the_value() {
        const CANARY: &str = "s.pep-canary";
        let base = [
            ("TENANT_ID", "t1"),
            ("TENANT_ALLOWED_MOUNTS", "secret"),
            ("AUTHZEN_PDP_URL", "https://pdp.internal"),
        ];
        let rows: &[(&[(&str, &str)], &str)] = &[
            (&[("TENANT_ID", "")], "TENANT_ID"),
            (&[("TENANT_ALLOWED_MOUNTS", ",")], "TENANT_ALLOWED_MOUNTS"),
            (&[("ENABLE_AUTHORIZATION", CANARY)], "ENABLE_AUTHORIZATION"),
            (&[("ANTI_REPLAY_ENABLED", CANARY)], "ANTI_REPLAY_ENABLED"),
            (&[("ANTI_REPLAY_TTL_S", "0")], "ANTI_REPLAY_TTL_S"),
            (
                &[("ANTI_REPLAY_MAX_ENTRIES", "0")],
                "ANTI_REPLAY_MAX_ENTRIES",
            ),
            (
                &[("ANTI_REPLAY_MAX_PER_SUBJECT", CANARY)],
                "ANTI_REPLAY_MAX_PER_SUBJECT",
            ),
            (&[("GRANT_MAX_USES_DEFAULT", "0")], "GRANT_MAX_USES_DEFAULT"),
            (
                &[("NEGATIVE_CACHE_JITTER_MS", "60001")],
                "NEGATIVE_CACHE_JITTER_MS",
            ),
            (&[("AUTHZEN_TIMEOUT_MS", CANARY)], "AUTHZEN_TIMEOUT_MS"),
            (&[("AUTHZEN_DIALECT", CANARY)], "AUTHZEN_DIALECT"),
            (&[("AUTHZEN_PDP_URL", "")], "AUTHZEN_PDP_URL"),
            (
                &[("AUTHZEN_PDP_URL", "https://u:s.pep-canary@pdp")],
                "AUTHZEN_PDP_URL",
            ),
        ];
        for (extra, setting) in rows {
            let mut vars = base.to_vec();
            vars.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
            vars.extend_from_slice(extra);
            let err = PepConfig::from_lookup(lookup(&vars)).err();
            assert_eq!(
                err.as_ref().map(PepError::code),
                Some("CONFIG"),
                "{extra:?}"
            );
            assert_eq!(
                err.as_ref().and_then(PepError::setting),
                Some(*setting),
                "{extra:?}"
            );
            let shown = err.map(|e| format!("{e} {e:?}")).unwrap_or_default();
            assert!(
                shown.starts_with(&format!("invalid PEP configuration: {setting} ")),
                "{shown}"
            );
            assert!(!shown.contains(CANARY), "value echoed: {shown}");
        }
        // The same spellings as the providers' reader: one boolean parser.
        for (text, on) in [("on", true), ("YES", true), ("0", false), ("Off", false)] {
            let mut vars = base.to_vec();
            vars.push(("ANTI_REPLAY_REQUIRE_JTI", text));
            let config = PepConfig::from_lookup(lookup(&vars));
            assert_eq!(config.map(|c| c.require_jti).ok(), Some(on), "{text}");
        }
    }
}
