//! [`Routes`]: the one routing path of both clients, a [`ProviderRouter`] of
//! `Arc<dyn SecretProvider>` with the client's words for a URI it does not serve.

use std::fmt;
use std::sync::Arc;

use secret_providers::{ProviderRouter, SecretProvider};
use secret_uri::{Provider, SecretUri};

use crate::Error;

/// Which provider serves each scheme, for one client.
#[derive(Clone, Default)]
pub(crate) struct Routes {
    router: ProviderRouter,
    /// The KV v2 providers among the routes, each with the scheme it serves, for
    /// inspection (`kv2_config`); one provider per server, whatever schemes reach it.
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    kv2: Vec<(Provider, secret_providers::Kv2Provider)>,
    /// The built-in `db` provider, when it serves the `db` schemes (no provider of one's own
    /// replaced it): the client owns the leases it issues.
    #[cfg(feature = "db")]
    db: Option<secret_providers::DbProvider>,
    /// Why no vault is configured, for `NOT_CONFIGURED` errors.
    vault_note: String,
    /// Whether `bootstrap://` is served by the built-in values provider (no provider of
    /// one's own replaced it): values already in memory, never cached again.
    bootstrap_values: bool,
    /// Why `bootstrap://` has no values, for a client that serves them (`NOT_CONFIGURED`);
    /// `None` for a client that never does (`VaultClient`: `UNSUPPORTED_PROVIDER`).
    bootstrap_note: Option<String>,
}

impl Routes {
    /// Routes with a note saying why a vault scheme has no route (`NOT_CONFIGURED`).
    pub(crate) fn new(vault_note: impl Into<String>) -> Self {
        Self {
            vault_note: vault_note.into(),
            ..Self::default()
        }
    }

    /// Routes `provider` to `implementation`, replacing a built-in route.
    pub(crate) fn insert(&mut self, provider: Provider, implementation: Arc<dyn SecretProvider>) {
        #[cfg(any(feature = "openbao", feature = "hashicorp"))]
        self.kv2.retain(|(scheme, _)| *scheme != provider);
        #[cfg(feature = "db")]
        if provider == Provider::Db {
            self.db = None;
        }
        if provider == Provider::Bootstrap {
            self.bootstrap_values = false;
        }
        self.router.insert(provider, implementation);
    }

    /// Routes `bootstrap://` to a bootstrap's values, or, without any, records why: then
    /// `NOT_CONFIGURED` with that reason (a client that serves bootstrap values).
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    pub(crate) fn insert_bootstrap(
        &mut self,
        values: Result<crate::bootstrap::BootstrapValues, String>,
    ) {
        match values {
            Ok(values) => {
                let provider = crate::bootstrap::BootstrapProvider::new(values);
                self.insert(Provider::Bootstrap, Arc::new(provider));
                self.bootstrap_values = true;
            }
            Err(reason) => self.bootstrap_note = Some(reason),
        }
    }

    /// Whether `bootstrap://` is served by the built-in provider of the bootstrap's values.
    pub(crate) fn serves_bootstrap_values(&self) -> bool {
        self.bootstrap_values
    }

    /// Routes the vault schemes to one KV v2 provider per server
    /// ([`ProviderRouter::insert_kv2`]).
    ///
    /// # Errors
    /// `CONFIG` (naming the setting) for an invalid configuration.
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    pub(crate) fn insert_kv2(
        &mut self,
        configs: Vec<secret_providers::Kv2Config>,
    ) -> Result<(), secret_providers::ProviderError> {
        let routed = self.router.insert_kv2(configs)?;
        for (scheme, provider) in routed {
            self.kv2.retain(|(s, _)| *s != scheme);
            self.kv2.push((scheme, provider));
        }
        Ok(())
    }

    /// Routes the `db` schemes to the built-in [`DbProvider`](secret_providers::DbProvider)
    /// over the OpenBao server's client (else HashiCorp Vault's), when one is configured.
    #[cfg(feature = "db")]
    pub(crate) fn insert_db(&mut self) {
        let vault = [Provider::OpenBao, Provider::HashiCorp]
            .into_iter()
            .find_map(|p| {
                self.kv2
                    .iter()
                    .find(|(s, _)| *s == p)
                    .map(|(_, kv2)| kv2.clone())
            });
        if let Some(vault) = vault {
            let db = secret_providers::DbProvider::new(vault);
            self.router.insert(Provider::Db, Arc::new(db.clone()));
            self.db = Some(db);
        }
    }

    /// The built-in `db` provider, if it serves the `db` schemes.
    #[cfg(feature = "db")]
    pub(crate) fn db(&self) -> Option<&secret_providers::DbProvider> {
        self.db.as_ref()
    }

    /// Every route: the scheme and its provider.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Provider, &Arc<dyn SecretProvider>)> {
        self.router
            .providers()
            .filter_map(|p| self.router.get(p).map(|imp| (p, imp)))
    }

    /// The provider that serves `uri`: the router's one check, in the client's words.
    ///
    /// # Errors
    /// `NOT_CONFIGURED` for a vault scheme this build serves but no vault is configured for,
    /// and for `bootstrap://` in a client without bootstrap values; `UNSUPPORTED_PROVIDER`
    /// for any other scheme with no route (a disabled feature, `db` without an engine,
    /// `bootstrap` through the PEP) or an engine its provider does not serve.
    #[inline]
    pub(crate) fn route(&self, uri: &SecretUri) -> Result<&Arc<dyn SecretProvider>, Error> {
        self.router.route(uri).map_err(|error| {
            let provider = uri.provider();
            let name = provider.as_str();
            if self.router.get(provider).is_some() {
                return Error::provider(uri.mount(), Arc::new(error));
            }
            match provider {
                Provider::Db if cfg!(feature = "db") && uri.engine().is_some() => {
                    Error::NotConfigured {
                        provider: name,
                        reason: self.vault_note.clone(),
                    }
                }
                Provider::OpenBao | Provider::HashiCorp if vault_feature(provider) => {
                    Error::NotConfigured {
                        provider: name,
                        reason: self.vault_note.clone(),
                    }
                }
                Provider::Bootstrap => match &self.bootstrap_note {
                    Some(reason) => Error::NotConfigured {
                        provider: name,
                        reason: reason.clone(),
                    },
                    None if !cfg!(any(feature = "openbao", feature = "hashicorp")) => {
                        Error::UnsupportedProvider {
                            provider: name,
                            reason: "its cargo feature (openbao or hashicorp) is disabled in \
                                     this build",
                        }
                    }
                    None => Error::UnsupportedProvider {
                        provider: name,
                        reason: "bootstrap values are the service's own configuration, \
                                 served by SecretsClient, never through the PEP",
                    },
                },
                Provider::OpenBao | Provider::HashiCorp | Provider::File => {
                    Error::UnsupportedProvider {
                        provider: name,
                        reason: "its cargo feature is disabled in this build",
                    }
                }
                _ => Error::UnsupportedProvider {
                    provider: name,
                    reason: "no provider serves this scheme (built in: file, openbao, hashicorp)",
                },
            }
        })
    }

    /// The KV v2 settings in effect for `provider`, if a KV v2 server serves it.
    #[cfg(any(feature = "openbao", feature = "hashicorp"))]
    pub(crate) fn kv2_config(&self, provider: Provider) -> Option<&secret_providers::Kv2Config> {
        self.kv2
            .iter()
            .find(|(scheme, _)| *scheme == provider)
            .map(|(_, kv2)| kv2.config())
    }
}

/// Whether this build serves the vault scheme `provider`.
fn vault_feature(provider: Provider) -> bool {
    let served = [
        #[cfg(feature = "openbao")]
        Provider::OpenBao,
        #[cfg(feature = "hashicorp")]
        Provider::HashiCorp,
    ];
    served.contains(&provider)
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (scheme, provider) in self.iter() {
            #[cfg(any(feature = "openbao", feature = "hashicorp"))]
            if let Some((_, kv2)) = self.kv2.iter().find(|(s, _)| *s == scheme) {
                map.entry(&scheme.as_str(), kv2);
                continue;
            }
            map.entry(&scheme.as_str(), &provider);
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unserved_schemes_in_the_clients_words() -> Result<(), secret_uri::UriError> {
        let routes = Routes::new("no bootstrap found");
        for (uri, code) in [
            (
                "db+cred://pg/app",
                if cfg!(feature = "db") {
                    "NOT_CONFIGURED"
                } else {
                    "UNSUPPORTED_PROVIDER"
                },
            ),
            ("db://pg/app", "UNSUPPORTED_PROVIDER"),
            ("yaml://y/x", "UNSUPPORTED_PROVIDER"),
            // Never through the PEP's routes, which have no bootstrap note.
            ("bootstrap://b/x", "UNSUPPORTED_PROVIDER"),
        ] {
            let uri = SecretUri::parse(uri)?;
            assert_eq!(routes.route(&uri).err().map(|e| e.code()), Some(code));
        }
        #[cfg(any(feature = "openbao", feature = "hashicorp"))]
        {
            let mut client = Routes::new("no bootstrap found");
            client.insert_bootstrap(Err("no bootstrap found".into()));
            let uri = SecretUri::parse("bootstrap://b/x")?;
            let error = client.route(&uri).err();
            assert_eq!(error.as_ref().map(Error::code), Some("NOT_CONFIGURED"));
            assert_eq!(
                error.map(|e| e.to_string()).as_deref(),
                Some(
                    "bootstrap: no bootstrap values are configured (no bootstrap found) \
                     [NOT_CONFIGURED]"
                )
            );
            let pep = routes.route(&uri).err().map(|e| e.to_string());
            assert!(pep.is_some_and(|e| e.contains("never through the PEP")));
        }
        let vault = SecretUri::parse("openbao://secret/a")?;
        let expected = if cfg!(feature = "openbao") {
            "NOT_CONFIGURED"
        } else {
            "UNSUPPORTED_PROVIDER"
        };
        assert_eq!(routes.route(&vault).err().map(|e| e.code()), Some(expected));
        Ok(())
    }
}
