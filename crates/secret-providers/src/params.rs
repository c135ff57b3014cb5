//! Which query parameters each provider serves, and the refusal of every other one.
//!
//! The URI parser keeps the original SDK's permissive query grammar (fleet compatibility);
//! the layer that knows what it serves refuses the rest. Both clients, the providers and the
//! `secrets lint` command call [`check_parameters`], so a misspelt `?verison=2` fails the same
//! way everywhere, before any I/O and before a PDP is asked.

use secret_uri::{Provider, SecretUri};

use crate::ProviderError;

/// The longest parameter name an error repeats; longer ones are cut.
const MAX_SHOWN_NAME: usize = 64;

/// The query parameters `provider` serves: `version` for the KV v2 providers, none for the
/// others.
///
/// ```
/// use secret_providers::served_parameters;
/// use secret_uri::Provider;
/// assert_eq!(served_parameters(Provider::OpenBao), ["version"]);
/// assert!(served_parameters(Provider::File).is_empty());
/// ```
#[must_use]
pub const fn served_parameters(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::OpenBao | Provider::HashiCorp => &["version"],
        _ => &[],
    }
}

/// `Err(UNKNOWN_PARAMETER)` for the first query parameter (in canonical order) that the URI's
/// provider does not serve.
///
/// ```
/// use secret_providers::check_parameters;
/// use secret_uri::SecretUri;
/// let pinned: SecretUri = "openbao+kv2://secret/app/api#token?version=2".parse()?;
/// assert!(check_parameters(&pinned).is_ok());
/// let typo: SecretUri = "openbao+kv2://secret/app/api?verison=2#token".parse()?;
/// assert_eq!(check_parameters(&typo).unwrap_err().code(), "UNKNOWN_PARAMETER");
/// let file: SecretUri = "file://demo/db.json?version=1".parse()?;
/// assert_eq!(check_parameters(&file).unwrap_err().code(), "UNKNOWN_PARAMETER");
/// # Ok::<(), secret_uri::UriError>(())
/// ```
///
/// # Errors
/// [`ProviderError::UnknownParameter`] naming the parameter (never its value).
pub fn check_parameters(uri: &SecretUri) -> Result<(), ProviderError> {
    let served = served_parameters(uri.provider());
    match uri.params().find(|(name, _)| !served.contains(name)) {
        None => Ok(()),
        Some((name, _)) => Err(ProviderError::UnknownParameter {
            provider: uri.provider().as_str(),
            mount: uri.mount().to_owned(),
            name: name.chars().take(MAX_SHOWN_NAME).collect(),
            served: if served.is_empty() {
                "no parameters"
            } else {
                "`version`"
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(uri: &str) -> Option<&'static str> {
        let uri = SecretUri::parse(uri).ok()?;
        check_parameters(&uri).err().map(|e| e.code())
    }

    #[test]
    fn only_served_parameters_pass() {
        for ok in [
            "openbao+kv2://secret/a#k?version=3",
            "openbao://secret/a",
            "hashicorp+kv2://secret/a?version=1",
            "file://demo/db.json#password",
        ] {
            assert_eq!(code(ok), None, "{ok}");
        }
        for bad in [
            "openbao+kv2://secret/a#k?n=1",
            "openbao+kv2://secret/a?verison=2#k",
            "openbao+kv2://secret/a?version=2&x",
            "hashicorp://secret/a?VERSION=2",
            "file://demo/db.json?version=1",
            "file://demo/db.json?x=",
            "db+cred://pg/app?ttl=1",
        ] {
            assert_eq!(code(bad), Some("UNKNOWN_PARAMETER"), "{bad}");
        }
    }

    #[test]
    fn the_message_names_the_parameter_never_its_value() {
        let uri = SecretUri::parse("openbao+kv2://secret/app/api?n=canary-value#token").unwrap();
        let shown = check_parameters(&uri).unwrap_err().to_string();
        assert!(shown.contains("`n`"), "{shown}");
        assert!(!shown.contains("canary"), "{shown}");
        assert!(!shown.contains("app/api"), "{shown}");
        let long = format!("openbao+kv2://secret/a?{}=1", "x".repeat(500));
        let shown = check_parameters(&SecretUri::parse(&long).unwrap())
            .unwrap_err()
            .to_string();
        assert!(shown.len() < 200, "{shown}");
    }
}
