//! The insecure-TLS rule: `skip_verify` only in a development environment or when allowed.

use super::Kv2Config;
use crate::ProviderError;

impl Kv2Config {
    /// Whether [`skip_verify`](Self::skip_verify) may be used: the environment (this config's,
    /// else the process's `ENVIRONMENT`) is one of [`INSECURE_TLS_ENVIRONMENTS`](Self::INSECURE_TLS_ENVIRONMENTS), or
    /// [`allow_insecure_tls`](Self::allow_insecure_tls) is set. An unset or unknown
    /// environment counts as production.
    #[must_use]
    pub fn insecure_tls_allowed(&self) -> bool {
        if self.allow_insecure_tls {
            return true;
        }
        let environment = self
            .environment
            .clone()
            .or_else(|| secret_config::Env::process().get("ENVIRONMENT"));
        environment.is_some_and(|e| is_development(&e))
    }

    /// `CONFIG` when `skip_verify` is set but not [allowed](Self::insecure_tls_allowed).
    pub(crate) fn check_insecure_tls(&self) -> Result<(), ProviderError> {
        if self.skip_verify && !self.insecure_tls_allowed() {
            return Err(ProviderError::config(
                self.flavor.name(),
                "skip_verify",
                INSECURE_TLS_REFUSED,
            ));
        }
        Ok(())
    }
}

const INSECURE_TLS_REFUSED: &str = "is refused unless ENVIRONMENT names a development \
     environment (dev, development, test, local, ci) or SECRETS_ALLOW_INSECURE_TLS=true";

fn is_development(environment: &str) -> bool {
    let environment = environment.trim();
    Kv2Config::INSECURE_TLS_ENVIRONMENTS
        .iter()
        .any(|d| d.eq_ignore_ascii_case(environment))
}
