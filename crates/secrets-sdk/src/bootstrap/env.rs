//! The environment level of the bootstrap and the environment's tuning of a bootstrap file:
//! both read by the one reader of `OPENBAO_*`/`VAULT_*`, `Kv2Config::from_lookup`.

use secret_providers::{Kv2Config, Kv2Flavor};

use super::config_error;

use crate::Error;

/// The settings of the `PREFIX_*` variables (`OPENBAO` or `VAULT`), in full; `None` when the
/// flavor has no address (`P_URL`, `P_ADDR`, and `BAO_ADDR` for OpenBao).
///
/// # Errors
/// `CONFIG` naming the variable at fault.
pub(super) fn from_env_prefix(
    prefix: &'static str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Kv2Config>, Error> {
    let flavor = env_flavor(prefix);
    if Kv2Config::address_from_lookup(flavor, lookup).is_none() {
        return Ok(None);
    }
    Kv2Config::from_lookup(flavor, lookup)
        .map(Some)
        .map_err(config_error)
}

/// A bootstrap's address and login with the environment's tuning; the bootstrap's
/// namespace, CA bundle and `skip_verify` win over the environment's.
pub(super) fn tuned(
    bootstrap: &Kv2Config,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Kv2Config, Error> {
    super::file::validate(bootstrap, "config")?;
    // Verification is decided below, once the environment's word is in.
    let mut base = bootstrap.clone();
    base.skip_verify = false;
    let mut config = base.tuned_by_lookup(lookup).map_err(config_error)?;
    if bootstrap.namespace.is_some() {
        config.namespace.clone_from(&bootstrap.namespace);
    }
    if bootstrap.ca_bundle.is_some() {
        config.ca_bundle.clone_from(&bootstrap.ca_bundle);
    }
    config.skip_verify |= bootstrap.skip_verify;
    let invalid = |reason: &'static str| Error::BootstrapInvalid {
        origin: "config".into(),
        field: "skip_verify".into(),
        reason,
    };
    if config.skip_verify && config.ca_bundle.is_some() {
        return Err(invalid(
            "(or VERIFY_SSL=false) turns verification off, which conflicts with a CA bundle",
        ));
    }
    if config.skip_verify && !config.insecure_tls_allowed() {
        return Err(invalid(
            "is refused unless ENVIRONMENT names a development environment (dev, \
             development, test, local, ci) or SECRETS_ALLOW_INSECURE_TLS=true",
        ));
    }
    Ok(config)
}

/// The flavor whose variables carry `prefix` (`OPENBAO` or `VAULT`).
fn env_flavor(prefix: &str) -> Kv2Flavor {
    if prefix == "VAULT" {
        Kv2Flavor::HashiCorp
    } else {
        Kv2Flavor::OpenBao
    }
}
