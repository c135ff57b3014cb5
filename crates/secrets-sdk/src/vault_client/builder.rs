//! [`VaultClientBuilder`]: the settings of a [`VaultClient`], explicit or from the environment,
//! and the checks [`build`](VaultClientBuilder::build) makes before it assembles one.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use secrecy::SecretString;
use secret_pep::{ExecutionContext, PdpSettings, Pep, PepConfig, SecretPolicyService};
use secret_providers::{Kv2Config, Kv2Flavor, Kv2Provider, ProviderError};
use secret_uri::Provider;
use zeroize::Zeroizing;

use super::audit::{KeyedAudit, MIN_SALT_BYTES, TenantSalt};
use super::{Core, DEFAULT_IO_THREADS, Inner, TENANT_SALT_ENV, VaultAuditHook, VaultClient};
use crate::Error;
use crate::io_runtime::IoRuntime;

#[cfg(doc)]
use super::ResourceRef;

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
///
/// The PEP variables are read by [`PepConfig::from_lookup`]; empty values count as unset.
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
    audit: Option<Arc<dyn VaultAuditHook>>,
    default_context: Option<ExecutionContext>,
    io_threads: Option<usize>,
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
    /// the other scheme gets the same settings unless a config of its flavor is given too.
    pub fn kv2(mut self, config: Kv2Config) -> Self {
        self.kv2.push(config);
        self
    }

    /// Uses these PEP settings instead of `TENANT_ID`, `TENANT_ALLOWED_MOUNTS` and the other
    /// PEP variables.
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

    /// Sends audit events, with keyed [`ResourceRef`]s, to `hook` (default: none).
    pub fn audit(mut self, hook: impl VaultAuditHook + 'static) -> Self {
        self.audit = Some(Arc::new(hook));
        self
    }

    /// The context used when a call passes `None`, e.g. the service's own identity. Without
    /// one, `None` is an empty context, which the PEP refuses (`SUBJECT_MISSING`).
    pub fn default_context(mut self, ctx: ExecutionContext) -> Self {
        self.default_context = Some(ctx);
        self
    }

    /// Worker threads of the client's I/O runtime (default [`DEFAULT_IO_THREADS`]).
    pub fn io_threads(mut self, threads: usize) -> Self {
        self.io_threads = Some(threads);
        self
    }

    /// Builds the client. No network I/O happens here: the PDP and the vault are contacted
    /// (and the vault logged in to) at the first call.
    ///
    /// # Errors
    /// `CONFIG` naming the missing or invalid setting; the PEP's `CONFIG` errors (e.g. no PDP
    /// configured, development mode in production).
    pub fn build(self) -> Result<VaultClient, Error> {
        let lookup = self.lookup.clone();
        let raw = move |name: &str| lookup.as_ref().and_then(|l| l(name));
        let var = |name: &str| {
            raw(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        // The required settings, named in the documented order when missing.
        if self.kv2.is_empty() {
            if var("VAULT_URL").or_else(|| var("VAULT_ADDR")).is_none() {
                return Err(missing("VAULT_URL", "kv2"));
            }
            let method = var("VAULT_AUTH_METHOD").map(|m| m.to_ascii_lowercase());
            if matches!(method.as_deref(), None | Some("token"))
                && var("VAULT_TOKEN").is_none()
                && var("VAULT_TOKEN_FILE").is_none()
            {
                return Err(missing("VAULT_TOKEN", "kv2"));
            }
        }
        if self.pep_config.is_none() {
            for name in ["TENANT_ID", "TENANT_ALLOWED_MOUNTS"] {
                if var(name).is_none() {
                    return Err(missing(name, "pep_config"));
                }
            }
        }
        let (salt, salt_setting) = match self.salt {
            Some(salt) => (salt, "tenant_salt"),
            None => {
                let text = Zeroizing::new(
                    raw(TENANT_SALT_ENV).ok_or_else(|| missing(TENANT_SALT_ENV, "tenant_salt"))?,
                );
                (SecretString::from(text.trim()), TENANT_SALT_ENV)
            }
        };
        let salt = TenantSalt::new(salt);
        if salt.len() == 0 {
            return Err(missing(salt_setting, "tenant_salt"));
        }
        if salt.len() < MIN_SALT_BYTES {
            return Err(Error::config(
                salt_setting,
                format!("must be at least {MIN_SALT_BYTES} bytes (32 random bytes recommended)"),
            ));
        }

        let mut configs = self.kv2;
        if configs.is_empty() {
            configs.push(
                Kv2Config::from_lookup(Kv2Flavor::HashiCorp, &raw).map_err(vault_config_error)?,
            );
        }
        let provider_for = |flavor: Kv2Flavor| -> Result<Kv2Provider, Error> {
            let mut config = configs
                .iter()
                .rev()
                .find(|c| c.flavor == flavor)
                .or(configs.last())
                .cloned()
                .ok_or_else(|| missing("VAULT_URL", "kv2"))?;
            config.flavor = flavor;
            Kv2Provider::new(config).map_err(vault_config_error)
        };
        let openbao = provider_for(Kv2Flavor::OpenBao)?;
        let hashicorp = provider_for(Kv2Flavor::HashiCorp)?;

        let pep_config = match self.pep_config {
            Some(config) => config,
            None => {
                // A PDP given in code stands in for AUTHZEN_PDP_URL: read the rest as if
                // development mode were set, then clear the PDP setting, so the given PDP
                // decides and no PDP is ever silently allow-all.
                let stand_in = self.pdp.is_some()
                    && var("AUTHZEN_PDP_URL").is_none()
                    && var("ENABLE_AUTHORIZATION").is_none();
                let mut config = PepConfig::from_lookup(|name| {
                    if stand_in && name == "ENABLE_AUTHORIZATION" {
                        Some("false".to_owned())
                    } else {
                        raw(name)
                    }
                })?;
                if stand_in {
                    config.pdp = PdpSettings::None;
                }
                config
            }
        };

        let salt = Arc::new(salt);
        // Grants belong to the resource on its server: both schemes name the server they
        // reach, so `openbao://x` and `hashicorp+kv2://x` on one VAULT_URL share a grant.
        let mut pep = Pep::builder(pep_config)
            .backend(Provider::OpenBao, backend_id(&openbao))
            .backend(Provider::HashiCorp, backend_id(&hashicorp));
        if let Some(pdp) = self.pdp {
            pep = pep.pdp(pdp);
        }
        if let Some(hook) = self.audit {
            pep = pep.audit(KeyedAudit {
                salt: Arc::clone(&salt),
                hook,
            });
        }
        let pep = pep.build()?;

        let io_threads = self.io_threads.unwrap_or(DEFAULT_IO_THREADS);
        if io_threads == 0 {
            return Err(Error::config("io_threads", "must be at least 1"));
        }
        Ok(VaultClient {
            inner: Arc::new(Inner {
                core: Arc::new(Core {
                    pep,
                    openbao,
                    hashicorp,
                    salt,
                }),
                default_context: self.default_context.unwrap_or_default(),
                io_threads,
                runtime: IoRuntime::new(io_threads, "vault-client-io"),
                closed: AtomicBool::new(false),
            }),
        })
    }
}

/// The server a KV v2 provider reads from, for the PEP's resource identity: address and
/// namespace.
fn backend_id(kv2: &Kv2Provider) -> String {
    format!(
        "{}|{}",
        kv2.address().trim_end_matches('/'),
        kv2.namespace().unwrap_or_default()
    )
}

fn missing(setting: &str, builder_method: &str) -> Error {
    Error::config(
        setting,
        format!("is required but not set (or call {builder_method} on the builder)"),
    )
}

/// A provider `CONFIG` error as [`Error::Config`], naming the variable its message starts with
/// (the provider's messages name variables, never values).
fn vault_config_error(error: ProviderError) -> Error {
    let reason = match &error {
        ProviderError::Config { reason, .. } => reason.clone(),
        other => other.code().to_owned(),
    };
    let (setting, reason) = match reason.split_once(' ') {
        Some((name, rest))
            if !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
        {
            (name.to_owned(), rest.to_owned())
        }
        _ => (
            "vault".to_owned(),
            format!("settings are invalid: {reason}"),
        ),
    };
    Error::Config {
        setting,
        reason,
        source: Some(Box::new(error)),
    }
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
}
