//! The [`SecretProvider`] trait and the [`ProviderRouter`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use secret_uri::{Provider, SecretUri};

use crate::{ProviderError, SecretValue};

/// The boxed future returned by [`SecretProvider::read`].
pub type ReadFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SecretValue, ProviderError>> + Send + 'a>>;

/// Something that reads secrets named by Canonical Secret URIs.
///
/// The trait is object safe (`Arc<dyn SecretProvider>`), so a router or a cache can hold
/// providers of different kinds. Concrete providers also have an inherent `async fn read`
/// that skips the boxing.
pub trait SecretProvider: Send + Sync + fmt::Debug {
    /// A short, stable name for logs and errors: `file`, `openbao`, `hashicorp`, `router`.
    fn name(&self) -> &'static str;

    /// Reads the secret (or, with `#key`, one field of it).
    ///
    /// # Errors
    /// A [`ProviderError`]; its [`code`](ProviderError::code) says what went wrong.
    fn read<'a>(&'a self, uri: &'a SecretUri) -> ReadFuture<'a>;
}

impl<P: SecretProvider + ?Sized> SecretProvider for Arc<P> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn read<'a>(&'a self, uri: &'a SecretUri) -> ReadFuture<'a> {
        (**self).read(uri)
    }
}

/// Routes each URI to the provider registered for its scheme's provider.
///
/// ```
/// # #[cfg(feature = "file")] {
/// use std::sync::Arc;
/// use secret_providers::{FileConfig, FileProvider, ProviderRouter, SecretProvider};
/// use secret_uri::{Provider, SecretUri};
///
/// let file = FileProvider::new(FileConfig::new("/run/secrets"));
/// let router = ProviderRouter::new().with(Provider::File, Arc::new(file));
/// assert!(router.get(Provider::File).is_some());
///
/// let uri: SecretUri = "db://pg/app".parse()?;
/// let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// let err = rt.block_on(router.read(&uri)).unwrap_err();
/// assert_eq!(err.code(), "UNSUPPORTED_PROVIDER");
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct ProviderRouter {
    // A handful of providers: a scan beats a hash.
    routes: Vec<(Provider, Arc<dyn SecretProvider>)>,
}

impl ProviderRouter {
    /// A router with no routes.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the route for `provider`.
    #[must_use]
    pub fn with(mut self, provider: Provider, implementation: Arc<dyn SecretProvider>) -> Self {
        self.insert(provider, implementation);
        self
    }

    /// Adds (or replaces) the route for `provider`.
    pub fn insert(&mut self, provider: Provider, implementation: Arc<dyn SecretProvider>) {
        match self.routes.iter_mut().find(|(p, _)| *p == provider) {
            Some(route) => route.1 = implementation,
            None => self.routes.push((provider, implementation)),
        }
    }

    /// The provider registered for `provider`.
    #[must_use]
    pub fn get(&self, provider: Provider) -> Option<&Arc<dyn SecretProvider>> {
        self.routes
            .iter()
            .find(|(p, _)| *p == provider)
            .map(|(_, imp)| imp)
    }

    /// A router from the environment, with each provider whose feature is enabled: `file`
    /// always (from `FILE_MOUNT_PATH`), `openbao` when `OPENBAO_URL` (or `OPENBAO_ADDR`) is set,
    /// `hashicorp` when `VAULT_URL` (or `VAULT_ADDR`) is set. No network I/O happens here.
    ///
    /// # Errors
    /// `CONFIG` when a provider's settings are invalid.
    pub fn from_env() -> Result<Self, ProviderError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    ///
    /// # Errors
    /// `CONFIG` when a provider's settings are invalid.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ProviderError> {
        #[allow(unused_mut)]
        let mut router = Self::new();
        #[cfg(feature = "file")]
        {
            let config = crate::FileConfig::from_lookup(&lookup)?;
            router.insert(Provider::File, Arc::new(crate::FileProvider::new(config)));
        }
        #[cfg(feature = "kv2")]
        {
            let flavors = [
                #[cfg(feature = "openbao")]
                (Provider::OpenBao, crate::Kv2Flavor::OpenBao),
                #[cfg(feature = "hashicorp")]
                (Provider::HashiCorp, crate::Kv2Flavor::HashiCorp),
            ];
            for (provider, flavor) in flavors {
                if crate::Kv2Config::address_from_lookup(flavor, &lookup).is_some() {
                    let config = crate::Kv2Config::from_lookup(flavor, &lookup)?;
                    router.insert(provider, Arc::new(crate::Kv2Provider::new(config)?));
                }
            }
        }
        #[cfg(not(any(feature = "file", feature = "kv2")))]
        let _ = lookup;
        Ok(router)
    }
}

impl fmt::Debug for ProviderRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.routes.iter().map(|(p, imp)| (p.as_str(), imp.name())))
            .finish()
    }
}

impl SecretProvider for ProviderRouter {
    fn name(&self) -> &'static str {
        "router"
    }

    fn read<'a>(&'a self, uri: &'a SecretUri) -> ReadFuture<'a> {
        match self.get(uri.provider()) {
            Some(provider) => provider.read(uri),
            None => Box::pin(std::future::ready(Err(ProviderError::UnsupportedProvider {
                provider: "router",
                what: format!("no provider configured for `{}`", uri.provider()),
            }))),
        }
    }
}

#[cfg(all(test, feature = "file", feature = "openbao", feature = "hashicorp"))]
mod tests {
    use super::*;

    #[test]
    fn from_lookup_registers_configured_providers() -> Result<(), ProviderError> {
        let files_only = ProviderRouter::from_lookup(|_| None)?;
        assert_eq!(format!("{files_only:?}"), r#"{"file": "file"}"#);

        let all = ProviderRouter::from_lookup(|name| match name {
            "OPENBAO_URL" => Some("http://127.0.0.1:8200".into()),
            "OPENBAO_TOKEN" | "VAULT_TOKEN" => Some("t".into()),
            "VAULT_ADDR" => Some("https://vault.example".into()),
            _ => None,
        })?;
        assert_eq!(
            all.get(Provider::OpenBao).map(|p| p.name()),
            Some("openbao")
        );
        assert_eq!(
            all.get(Provider::HashiCorp).map(|p| p.name()),
            Some("hashicorp")
        );

        let insecure = ProviderRouter::from_lookup(|name| match name {
            "VAULT_URL" => Some("http://vault.example".into()),
            "VAULT_TOKEN" => Some("t".into()),
            _ => None,
        });
        assert_eq!(insecure.err().map(|e| e.code()), Some("CONFIG"));
        Ok(())
    }
}
