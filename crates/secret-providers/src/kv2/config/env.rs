//! The one environment reader of [`Kv2Config`]: `from_env`, `from_lookup`, `tuned_by_lookup`.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use secret_config::{ConfigError, Env, Setting, parse_bool};

use super::{CaBundleMode, ClientCert, Kv2Auth, Kv2Config, Kv2Flavor};
use crate::ProviderError;

impl Kv2Config {
    /// Settings from the process environment; `P` is `OPENBAO` or `VAULT` (see
    /// [`Kv2Flavor::env_prefix`]). This is the one reader of these variables: `VaultClient`,
    /// `SecretsClient` (with the environment or a bootstrap file) and
    /// [`ProviderRouter`](crate::ProviderRouter) all use it. Files named by `*_SECRET_ID_FILE`
    /// are read here, CA and client-certificate files must exist here; token and JWT files are
    /// read at first use. Empty values count as unset.
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `P_URL`, else `P_ADDR` (else `BAO_ADDR` for OpenBao) | server address (required) |
    /// | `P_TOKEN` (else `BAO_TOKEN` for OpenBao), `P_TOKEN_FILE` | token auth (the default method; the token wins when both are set) |
    /// | `P_AUTH_METHOD` | `token`, `approle` or `kubernetes` (`k8s`) |
    /// | `P_AUTH_MOUNT` | auth mount for AppRole/Kubernetes |
    /// | `P_ROLE_ID`, `P_SECRET_ID` or `P_SECRET_ID_FILE` | AppRole |
    /// | `P_KUBERNETES_ROLE`, `P_KUBERNETES_JWT_FILE` | Kubernetes |
    /// | `T_NAMESPACE` | `X-Vault-Namespace` |
    /// | `T_CACERT`, `T_CLIENT_CERT`, `T_CLIENT_KEY` | TLS files (PEM); the CA bundle is the only trust root |
    /// | `T_CACERT_MODE` | `replace` (default) or `append` (also trust the webpki roots) |
    /// | `T_TIMEOUT` | seconds per attempt, fractions allowed, at most 3600 |
    /// | `T_VERIFY_SSL` | `true`/`false`, or the path of a CA bundle |
    /// | `T_SKIP_VERIFY` | `true` is `T_VERIFY_SSL=false` (a contradicting pair is refused) |
    /// | `T_RETRY_ATTEMPTS`, `T_RETRY_BASE_DELAY_MS`, `T_RETRY_MAX_DELAY_MS` | retries (1–100 attempts, delays up to 1 h) |
    /// | `T_MAX_BODY_BYTES` | response cap (1 B – 1 GiB) |
    /// | `T_ALLOW_INSECURE_HTTP` | plain HTTP to non-loopback hosts |
    /// | `ENVIRONMENT`, `SECRETS_ALLOW_INSECURE_TLS` | `skip_verify` needs a development environment ([`INSECURE_TLS_ENVIRONMENTS`](Self::INSECURE_TLS_ENVIRONMENTS)) or `SECRETS_ALLOW_INSECURE_TLS=true` |
    ///
    /// `T_` is a tuning variable: `P_X`, else `VAULT_X` (the original SDK's names). For OpenBao
    /// the `VAULT_X` fallback applies only while no HashiCorp server is configured
    /// (`VAULT_URL`/`VAULT_ADDR` unset), as those variables then belong to that server;
    /// `VAULT_TIMEOUT` and `VAULT_VERIFY_SSL` always apply, as in the original SDK.
    ///
    /// # Errors
    /// `CONFIG` naming the first missing or invalid variable (never its value).
    pub fn from_env(flavor: Kv2Flavor) -> Result<Self, ProviderError> {
        Self::from_lookup(flavor, |name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup` (a test's map, a
    /// config store).
    ///
    /// # Errors
    /// `CONFIG` naming the first missing or invalid variable.
    pub fn from_lookup(
        flavor: Kv2Flavor,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ProviderError> {
        let reader = Reader::new(flavor, Env::new(&lookup));
        let in_provider = |e| ProviderError::from_config(flavor.name(), e);
        let address = reader
            .address()
            .ok_or_else(|| in_provider(ConfigError::new(reader.own_name("URL"), "is not set")))?;
        let auth = reader.auth().map_err(in_provider)?;
        let mut config = Self::new(flavor, address, auth);
        reader.tune(&mut config).map_err(in_provider)?;
        Ok(config)
    }

    /// The server address `lookup` configures for `flavor` (`P_URL`, else `P_ADDR`, else
    /// `BAO_ADDR` for OpenBao), trimmed; `None` when none is set. A client uses it to decide
    /// whether a flavor is configured at all.
    pub fn address_from_lookup(
        flavor: Kv2Flavor,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Option<String> {
        address_from(flavor, Env::new(&lookup))
    }

    /// Applies the tuning variables of [`from_lookup`](Self::from_lookup) (namespace, TLS
    /// files, verification, timeout, retries, body cap, insecure HTTP, `ENVIRONMENT`,
    /// `SECRETS_ALLOW_INSECURE_TLS`) to these settings: a variable that is set replaces the
    /// field, one that is not leaves it. Address and auth are kept, so a bootstrap file's
    /// address and login get the same tuning as the environment's.
    ///
    /// # Errors
    /// `CONFIG` naming the first invalid variable.
    pub fn tuned_by_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ProviderError> {
        Reader::new(self.flavor, Env::new(&lookup))
            .tune(&mut self)
            .map_err(|e| ProviderError::from_config(self.flavor.name(), e))?;
        Ok(self)
    }
}

/// Secret-ID files larger than this are refused (a secret ID is 36 bytes).
const MAX_SECRET_ID_FILE_BYTES: u64 = 64 * 1024;

/// Reads one flavor's variables through the shared reader; every error names the variable
/// that was read.
struct Reader<'a> {
    flavor: Kv2Flavor,
    env: Env<'a>,
    /// Whether `VAULT_X` may stand in for `OPENBAO_X` tuning variables.
    vault_fallback: bool,
}

impl<'a> Reader<'a> {
    fn new(flavor: Kv2Flavor, env: Env<'a>) -> Self {
        let vault_fallback =
            flavor == Kv2Flavor::HashiCorp || address_from(Kv2Flavor::HashiCorp, env).is_none();
        Self {
            flavor,
            env,
            vault_fallback,
        }
    }

    fn address(&self) -> Option<String> {
        address_from(self.flavor, self.env)
    }

    /// `P_suffix`.
    fn own(&self, suffix: &str) -> Option<Setting> {
        self.env.setting(&self.own_name(suffix))
    }

    /// `P_suffix`, else (for OpenBao) the `bao` CLI's `BAO_suffix` for the TLS and namespace
    /// settings it shares with `BAO_ADDR`, else `VAULT_suffix` where the fallback applies.
    fn tuning(&self, suffix: &str) -> Option<Setting> {
        self.own(suffix)
            .or_else(|| {
                (self.flavor == Kv2Flavor::OpenBao && BAO_CLI_SETTINGS.contains(&suffix))
                    .then(|| self.env.setting(&format!("BAO_{suffix}")))
                    .flatten()
            })
            .or_else(|| {
                self.vault_fallback
                    .then(|| self.env.setting(&format!("VAULT_{suffix}")))
                    .flatten()
            })
    }

    /// `P_suffix`, else `VAULT_suffix` always (the original SDK's shared names).
    fn shared(&self, suffix: &str) -> Option<Setting> {
        self.own(suffix)
            .or_else(|| self.env.setting(&format!("VAULT_{suffix}")))
    }

    fn own_name(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.flavor.env_prefix())
    }

    fn missing(&self, suffix: &str) -> ConfigError {
        ConfigError::new(self.own_name(suffix), "is not set")
    }

    fn auth(&self) -> Result<Kv2Auth, ConfigError> {
        let method = self
            .own("AUTH_METHOD")
            .map_or_else(|| "token".to_owned(), |m| m.value().to_ascii_lowercase());
        let auth = match method.as_str() {
            "token" => {
                let token = self.own("TOKEN").or_else(|| {
                    (self.flavor == Kv2Flavor::OpenBao)
                        .then(|| self.env.setting("BAO_TOKEN"))
                        .flatten()
                });
                match (token, self.own("TOKEN_FILE")) {
                    (Some(token), _) => Kv2Auth::token(token.into_value()),
                    (None, Some(path)) => Kv2Auth::token_file(path.path()),
                    (None, None) => {
                        let file = self.own_name("TOKEN_FILE");
                        return Err(ConfigError::new(
                            self.own_name("TOKEN"),
                            format!("(or {file}) is not set"),
                        ));
                    }
                }
            }
            "approle" => {
                let role_id = self.own("ROLE_ID").ok_or_else(|| self.missing("ROLE_ID"))?;
                let secret_id = match (self.own("SECRET_ID"), self.own("SECRET_ID_FILE")) {
                    (Some(id), _) => Some(SecretString::from(id.into_value())),
                    (None, Some(file)) => Some(secret_id_file(&file)?),
                    (None, None) => None,
                };
                let auth = Kv2Auth::approle(role_id.into_value(), secret_id);
                match self.own("AUTH_MOUNT") {
                    Some(mount) => auth.with_mount(mount.value().trim_matches('/')),
                    None => auth,
                }
            }
            "kubernetes" | "k8s" => {
                let role = self
                    .own("KUBERNETES_ROLE")
                    .ok_or_else(|| self.missing("KUBERNETES_ROLE"))?;
                let mut auth = Kv2Auth::kubernetes(role.into_value());
                if let Some(mount) = self.own("AUTH_MOUNT") {
                    auth = auth.with_mount(mount.value().trim_matches('/'));
                }
                if let Some(path) = self.own("KUBERNETES_JWT_FILE") {
                    auth = auth.with_jwt_path(path.path());
                }
                auth
            }
            _ => {
                return Err(ConfigError::new(
                    self.own_name("AUTH_METHOD"),
                    "must be token, approle or kubernetes",
                ));
            }
        };
        if let Kv2Auth::AppRole { mount, .. } | Kv2Auth::Kubernetes { mount, .. } = &auth
            && mount.is_empty()
        {
            return Err(ConfigError::new(
                self.own_name("AUTH_MOUNT"),
                "must name a mount",
            ));
        }
        Ok(auth)
    }

    fn delay(&self, suffix: &str) -> Result<Option<(Setting, Duration)>, ConfigError> {
        let Some(setting) = self.tuning(suffix) else {
            return Ok(None);
        };
        let delay = Duration::from_millis(setting.number::<u64>()?);
        if delay > Kv2Config::MAX_RETRY_DELAY {
            return Err(setting.invalid("must be at most 3600000 (1 h)"));
        }
        Ok(Some((setting, delay)))
    }

    fn tune(&self, config: &mut Kv2Config) -> Result<(), ConfigError> {
        if let Some(namespace) = self.tuning("NAMESPACE") {
            config.namespace = Some(namespace.into_value());
        }
        let cacert = self.tuning("CACERT");
        if let Some(ca) = &cacert {
            config.ca_bundle = Some(file(ca)?);
        }
        if let Some(mode) = self.tuning("CACERT_MODE") {
            config.ca_bundle_mode = match mode.value().to_ascii_lowercase().as_str() {
                "replace" => CaBundleMode::Replace,
                "append" => CaBundleMode::Append,
                _ => return Err(mode.invalid("must be replace or append")),
            };
        }
        match (self.tuning("CLIENT_CERT"), self.tuning("CLIENT_KEY")) {
            (Some(cert), Some(key)) => {
                config.client_cert = Some(ClientCert {
                    cert_path: file(&cert)?,
                    key_path: file(&key)?,
                });
            }
            (None, None) => {}
            (Some(cert), None) => return Err(cert.invalid("is set without _CLIENT_KEY")),
            (None, Some(key)) => return Err(key.invalid("is set without _CLIENT_CERT")),
        }
        if let Some(timeout) = self.shared("TIMEOUT") {
            config.timeout = timeout.fractional_seconds(Kv2Config::MAX_TIMEOUT)?;
        }
        // `P_SKIP_VERIFY` (Vault's CLI name) says the same as `P_VERIFY_SSL=false`.
        let skip = self.tuning("SKIP_VERIFY");
        if let Some(skip) = &skip {
            let on = skip.flag()?;
            let verify = self.shared("VERIFY_SSL");
            if let Some(verify) = verify.filter(|v| parse_bool(v.value()) == Some(on)) {
                return Err(skip.invalid(format!("contradicts {}", verify.name())));
            }
            if on {
                if let Some(ca) = &cacert {
                    return Err(skip.invalid(format!(
                        "turns verification off, which conflicts with {}",
                        ca.name()
                    )));
                }
                config.skip_verify = true;
            }
        }
        if let Some(verify) = self.shared("VERIFY_SSL") {
            match parse_bool(verify.value()) {
                Some(true) => config.skip_verify = false,
                Some(false) => {
                    if let Some(ca) = &cacert {
                        return Err(verify.invalid(format!(
                            "turns verification off, which conflicts with {}",
                            ca.name()
                        )));
                    }
                    config.skip_verify = true;
                }
                // As in `requests`' `verify=`: a path is a CA bundle to verify with. An
                // explicit CACERT wins.
                None => {
                    let path = file(&verify).map_err(|_| {
                        verify.invalid("must be true, false or the path of a CA bundle file")
                    })?;
                    if cacert.is_none() {
                        config.ca_bundle = Some(path);
                    }
                }
            }
        }
        if let Some(attempts) = self.tuning("RETRY_ATTEMPTS") {
            config.retry.attempts = u32::try_from(attempts.number::<u64>()?)
                .ok()
                .filter(|a| (1..=Kv2Config::MAX_RETRY_ATTEMPTS).contains(a))
                .ok_or_else(|| attempts.invalid("must be between 1 and 100"))?;
        }
        let base = self.delay("RETRY_BASE_DELAY_MS")?;
        let max = self.delay("RETRY_MAX_DELAY_MS")?;
        if let Some((_, delay)) = &base {
            config.retry.base_delay = *delay;
        }
        if let Some((_, delay)) = &max {
            config.retry.max_delay = *delay;
        }
        if config.retry.base_delay > config.retry.max_delay {
            // Name the variable that was set (the other is at its default).
            return Err(match (base, max) {
                (Some((base, _)), _) => base.invalid("must not exceed _RETRY_MAX_DELAY_MS"),
                (None, Some((max, _))) => {
                    max.invalid("must not be below _RETRY_BASE_DELAY_MS (default 100)")
                }
                (None, None) => ConfigError::new("retry", "base delay exceeds the maximum delay"),
            });
        }
        if let Some(max) = self.tuning("MAX_BODY_BYTES") {
            config.max_body_bytes = usize::try_from(max.number::<u64>()?)
                .ok()
                .filter(|m| (1..=Kv2Config::MAX_MAX_BODY_BYTES).contains(m))
                .ok_or_else(|| max.invalid("must be between 1 and 1073741824 (1 GiB)"))?;
        }
        if let Some(allow) = self.tuning("ALLOW_INSECURE_HTTP") {
            config.allow_insecure_http = allow.flag()?;
        }
        if let Some(environment) = self.env.get("ENVIRONMENT") {
            config.environment = Some(environment);
        }
        if let Some(allow) = self.env.flag_opt(Kv2Config::ALLOW_INSECURE_TLS_ENV)? {
            config.allow_insecure_tls = allow;
        }
        if config.skip_verify && !config.insecure_tls_allowed() {
            let setting = skip
                .filter(|s| parse_bool(s.value()) == Some(true))
                .or_else(|| self.shared("VERIFY_SSL"))
                .map_or_else(|| "skip_verify".to_owned(), |s| s.name().to_owned());
            return Err(ConfigError::new(
                setting,
                "turns verification off, which is refused unless ENVIRONMENT names a \
                 development environment (dev, development, test, local, ci) or \
                 SECRETS_ALLOW_INSECURE_TLS=true",
            ));
        }
        Ok(())
    }
}

/// Reads the AppRole secret ID a `*_SECRET_ID_FILE` names (at most 64 KiB, UTF-8, trimmed,
/// not empty); the bytes read are wiped.
fn secret_id_file(file: &Setting) -> Result<SecretString, ConfigError> {
    use std::io::Read as _;
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    std::fs::File::open(file.value())
        .and_then(|f| f.take(MAX_SECRET_ID_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| file.invalid("is unreadable").with_source(e))?;
    if bytes.len() as u64 > MAX_SECRET_ID_FILE_BYTES {
        return Err(file.invalid("is larger than 64 KiB"));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| file.invalid("is not UTF-8"))?
        .trim();
    if text.is_empty() {
        return Err(file.invalid("is empty"));
    }
    Ok(SecretString::from(text))
}

/// A path that must name an existing file now (TLS files are read when the provider is
/// built; naming the variable here beats a later "unreadable CA bundle").
fn file(setting: &Setting) -> Result<PathBuf, ConfigError> {
    let path = setting.path();
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(path),
        Ok(_) => Err(setting.invalid("does not name a file")),
        Err(e) => Err(setting.invalid("names no readable file").with_source(e)),
    }
}

/// The `bao` CLI's own names read for OpenBao beside `BAO_ADDR` and `BAO_TOKEN`: a shell set up
/// for `bao` (`BAO_ADDR`, `BAO_CACERT`, …) configures the client the same way.
const BAO_CLI_SETTINGS: [&str; 5] = [
    "CACERT",
    "CLIENT_CERT",
    "CLIENT_KEY",
    "NAMESPACE",
    "SKIP_VERIFY",
];

/// `P_URL`, else `P_ADDR` (and `BAO_ADDR` for OpenBao, as the `bao` CLI reads it).
fn address_from(flavor: Kv2Flavor, env: Env<'_>) -> Option<String> {
    let prefix = flavor.env_prefix();
    let url = format!("{prefix}_URL");
    let addr = format!("{prefix}_ADDR");
    let bao = (flavor == Kv2Flavor::OpenBao).then_some("BAO_ADDR");
    env.first([url.as_str(), addr.as_str()].into_iter().chain(bao))
        .map(Setting::into_value)
}
