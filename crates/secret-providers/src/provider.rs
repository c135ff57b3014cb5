//! The [`SecretProvider`] trait and the [`ProviderRouter`]: the one place that decides which
//! provider serves a URI.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use secret_uri::{Provider, SecretUri};

use crate::{ProviderError, SecretValue};

/// The boxed future returned by [`SecretProvider::read`].
pub type ReadFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SecretValue, ProviderError>> + Send + 'a>>;

/// The boxed future returned by [`SecretProvider::probe`].
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<Probe, ProviderError>> + Send + 'a>>;

/// What a provider can tell about a secret without reading its value: how watchers and
/// refresh-ahead learn whether a cached value is still current without fetching it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Probe {
    /// The version a read of the URI would return now: KV v2's `current_version` for an
    /// unpinned URI, the pinned version for `?version=N` (when it is still readable).
    Version(u64),
    /// The provider cannot tell without reading the value (the caller reads it and compares).
    Unsupported,
}

/// Something that reads secrets named by Canonical Secret URIs.
///
/// The trait is object safe (`Arc<dyn SecretProvider>`), so a router or a cache can hold
/// providers of different kinds, including a team's own: implement `name` and `read` (and
/// `serves` when the provider serves only some engines of its scheme), then register it with
/// [`ProviderRouter::insert`] or a client builder's `provider` method. Concrete providers also
/// have an inherent `async fn read` that skips the boxing.
pub trait SecretProvider: Send + Sync + fmt::Debug {
    /// A short, stable name for logs and errors: `file`, `openbao`, `hashicorp`, `router`.
    fn name(&self) -> &'static str;

    /// Whether this provider serves the URI's scheme: its provider and engine. The router asks
    /// before every read ([`ProviderRouter::route`]); the built-in providers refuse what they
    /// do not serve with `UNSUPPORTED_PROVIDER` when called directly. The default serves every
    /// URI routed to it.
    fn serves(&self, uri: &SecretUri) -> bool {
        let _ = uri;
        true
    }

    /// The server (or store) this provider reads from, for a policy decision's resource
    /// identity: two schemes that reach one server name one backend, so a grant of a
    /// resource is not multiplied by spelling its scheme another way. The default is
    /// [`name`](Self::name).
    fn backend(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.name())
    }

    /// Reads the secret (or, with `#key`, one field of it).
    ///
    /// # Errors
    /// A [`ProviderError`]; its [`code`](ProviderError::code) says what went wrong.
    fn read<'a>(&'a self, uri: &'a SecretUri) -> ReadFuture<'a>;

    /// What a read of `uri` would return now, without reading the value: KV v2 answers from
    /// the metadata endpoint. The default is [`Probe::Unsupported`].
    ///
    /// # Errors
    /// The code a [`read`](Self::read) would give: `VERSION_DELETED` or `VERSION_DESTROYED`
    /// for a soft-deleted or destroyed current (or pinned) version, `NOT_FOUND` for a secret
    /// (or version) that does not exist; `PERMISSION_DENIED` when the metadata may not be
    /// read (KV v2 needs `read` on `<mount>/metadata/<path>`; clients then read the value).
    fn probe<'a>(&'a self, uri: &'a SecretUri) -> ProbeFuture<'a> {
        let _ = uri;
        Box::pin(std::future::ready(Ok(Probe::Unsupported)))
    }

    /// The local file a read of `uri` opens, when this provider reads local files: clients
    /// watch its directory to see it change. The default is `None` (nothing to watch).
    fn local_path(&self, uri: &SecretUri) -> Option<PathBuf> {
        let _ = uri;
        None
    }

    /// Whether reads are blocking calls (files): clients then call
    /// [`read_blocking`](Self::read_blocking) on a blocking pool instead of polling
    /// [`read`](Self::read) on an async worker. Default `false`.
    fn reads_block(&self) -> bool {
        false
    }

    /// The read on the calling thread, for providers whose [`reads_block`](Self::reads_block).
    ///
    /// # Errors
    /// As [`read`](Self::read). The default, for async providers, is `UNSUPPORTED_PROVIDER`.
    fn read_blocking(&self, uri: &SecretUri) -> Result<SecretValue, ProviderError> {
        let _ = uri;
        Err(ProviderError::UnsupportedProvider {
            provider: self.name(),
            what: "blocking reads (this provider reads asynchronously)".to_owned(),
        })
    }
}

impl<P: SecretProvider + ?Sized> SecretProvider for Arc<P> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn serves(&self, uri: &SecretUri) -> bool {
        (**self).serves(uri)
    }

    fn backend(&self) -> Cow<'_, str> {
        (**self).backend()
    }

    fn read<'a>(&'a self, uri: &'a SecretUri) -> ReadFuture<'a> {
        (**self).read(uri)
    }

    fn probe<'a>(&'a self, uri: &'a SecretUri) -> ProbeFuture<'a> {
        (**self).probe(uri)
    }

    fn local_path(&self, uri: &SecretUri) -> Option<PathBuf> {
        (**self).local_path(uri)
    }

    fn reads_block(&self) -> bool {
        (**self).reads_block()
    }

    fn read_blocking(&self, uri: &SecretUri) -> Result<SecretValue, ProviderError> {
        (**self).read_blocking(uri)
    }
}

/// The `UNSUPPORTED_PROVIDER` error of `provider` for a URI it does not serve.
pub(crate) fn unserved(provider: &'static str, uri: &SecretUri) -> ProviderError {
    let what = match uri.engine() {
        Some(engine) => format!("`{}+{}`", uri.provider(), engine.as_str()),
        None => format!("`{}`", uri.provider()),
    };
    ProviderError::UnsupportedProvider { provider, what }
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

    /// The provider that serves `uri`: the one registered for its scheme's provider, if it
    /// [serves](SecretProvider::serves) the URI's engine. This is the one "is this URI served"
    /// check of every client.
    ///
    /// # Errors
    /// `UNSUPPORTED_PROVIDER` when no registered provider serves the URI.
    pub fn route(&self, uri: &SecretUri) -> Result<&Arc<dyn SecretProvider>, ProviderError> {
        match self.get(uri.provider()) {
            Some(provider) if provider.serves(uri) => Ok(provider),
            Some(provider) => Err(unserved(provider.name(), uri)),
            None => Err(unserved("router", uri)),
        }
    }

    /// The schemes with a route, in registration order.
    pub fn providers(&self) -> impl Iterator<Item = Provider> + '_ {
        self.routes.iter().map(|(p, _)| *p)
    }

    /// Routes the vault schemes to KV v2 servers, one [`Kv2Provider`](crate::Kv2Provider) per
    /// server whatever aliases reach it:
    /// - each config's flavor names its scheme (`openbao` or `hashicorp`); a later config for
    ///   a scheme replaces an earlier one;
    /// - configs naming one server (address and namespace) share one provider, built from the
    ///   first of them: one connection pool and one token state;
    /// - a vault scheme (of an enabled feature) without a config of its own is routed to the
    ///   last server given, so `openbao://x` and `hashicorp://x` both reach a lone
    ///   `VAULT_URL`.
    ///
    /// Returns each routed scheme with its provider. No network I/O happens here.
    ///
    /// # Errors
    /// `CONFIG` when a config is invalid ([`Kv2Provider::new`](crate::Kv2Provider::new)).
    #[cfg(feature = "kv2")]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "openbao", feature = "hashicorp"))))]
    pub fn insert_kv2(
        &mut self,
        configs: impl IntoIterator<Item = crate::Kv2Config>,
    ) -> Result<Vec<(Provider, crate::Kv2Provider)>, ProviderError> {
        // One provider per server, and one `Arc` of it, so every route to a server is the
        // same object.
        type Server = (String, crate::Kv2Provider, Arc<dyn SecretProvider>);
        let mut servers: Vec<Server> = Vec::new();
        let mut routes: Vec<(Provider, usize)> = Vec::new();
        for config in configs {
            let scheme = match config.flavor {
                crate::Kv2Flavor::OpenBao => Provider::OpenBao,
                crate::Kv2Flavor::HashiCorp => Provider::HashiCorp,
            };
            let id = crate::kv2::server_id(&config.address, config.namespace.as_deref());
            let server = match servers.iter().position(|(known, ..)| *known == id) {
                Some(at) => at,
                None => {
                    let provider = crate::Kv2Provider::new(config)?;
                    let shared: Arc<dyn SecretProvider> = Arc::new(provider.clone());
                    servers.push((id, provider, shared));
                    servers.len() - 1
                }
            };
            routes.retain(|(p, _)| *p != scheme);
            routes.push((scheme, server));
        }
        // The vault schemes this build serves.
        let schemes = [
            #[cfg(feature = "openbao")]
            Provider::OpenBao,
            #[cfg(feature = "hashicorp")]
            Provider::HashiCorp,
        ];
        if let Some(&(_, last)) = routes.last() {
            for scheme in schemes {
                if !routes.iter().any(|(p, _)| *p == scheme) {
                    routes.push((scheme, last));
                }
            }
        }
        routes.retain(|(scheme, _)| schemes.contains(scheme));
        Ok(routes
            .into_iter()
            .map(|(scheme, server)| {
                let (_, provider, shared) = &servers[server];
                self.insert(scheme, Arc::clone(shared));
                (scheme, provider.clone())
            })
            .collect())
    }

    /// A router from the environment, with each provider whose feature is enabled: `file`
    /// always (from `FILE_MOUNT_PATH`), `openbao` when `OPENBAO_URL` (or `OPENBAO_ADDR`) is set,
    /// `hashicorp` when `VAULT_URL` (or `VAULT_ADDR`) is set; with only one of them set, both
    /// vault schemes reach it ([`insert_kv2`](Self::insert_kv2)). No network I/O happens here.
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
                crate::Kv2Flavor::OpenBao,
                #[cfg(feature = "hashicorp")]
                crate::Kv2Flavor::HashiCorp,
            ];
            let mut configs = Vec::new();
            for flavor in flavors {
                if crate::Kv2Config::address_from_lookup(flavor, &lookup).is_some() {
                    configs.push(crate::Kv2Config::from_lookup(flavor, &lookup)?);
                }
            }
            router.insert_kv2(configs)?;
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

    fn serves(&self, uri: &SecretUri) -> bool {
        self.route(uri).is_ok()
    }

    fn read<'a>(&'a self, uri: &'a SecretUri) -> ReadFuture<'a> {
        match self.route(uri) {
            Ok(provider) => provider.read(uri),
            Err(error) => Box::pin(std::future::ready(Err(error))),
        }
    }

    fn probe<'a>(&'a self, uri: &'a SecretUri) -> ProbeFuture<'a> {
        match self.route(uri) {
            Ok(provider) => provider.probe(uri),
            Err(error) => Box::pin(std::future::ready(Err(error))),
        }
    }

    fn local_path(&self, uri: &SecretUri) -> Option<PathBuf> {
        self.route(uri).ok()?.local_path(uri)
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

    fn same(router: &ProviderRouter, a: Provider, b: Provider) -> bool {
        match (router.get(a), router.get(b)) {
            (Some(a), Some(b)) => a.backend() == b.backend(),
            _ => false,
        }
    }

    #[test]
    fn one_kv2_provider_per_server_whatever_reaches_it() -> Result<(), ProviderError> {
        use crate::{Kv2Auth, Kv2Config, Kv2Flavor};
        let config = |flavor, address: &str| Kv2Config::new(flavor, address, Kv2Auth::token("t"));

        // A lone VAULT_URL serves both schemes with one provider (one pool, one token).
        let mut lone = ProviderRouter::new();
        let routes = lone.insert_kv2([config(Kv2Flavor::HashiCorp, "http://127.0.0.1:8200")])?;
        assert_eq!(routes.len(), 2);
        assert!(same(&lone, Provider::OpenBao, Provider::HashiCorp));
        assert!(routes.iter().all(|(_, p)| p.same_client(&routes[0].1)));

        // Two spellings of one server (a trailing `/`) are one server.
        let mut aliased = ProviderRouter::new();
        let routes = aliased.insert_kv2([
            config(Kv2Flavor::OpenBao, "http://127.0.0.1:8200"),
            config(Kv2Flavor::HashiCorp, "http://127.0.0.1:8200/"),
        ])?;
        assert!(routes[0].1.same_client(&routes[1].1));

        // Two servers: each scheme reaches its own.
        let mut two = ProviderRouter::new();
        two.insert_kv2([
            config(Kv2Flavor::OpenBao, "http://127.0.0.1:8200"),
            config(Kv2Flavor::HashiCorp, "http://127.0.0.1:8300"),
        ])?;
        assert!(!same(&two, Provider::OpenBao, Provider::HashiCorp));
        assert_eq!(
            two.get(Provider::HashiCorp)
                .map(|p| p.backend().into_owned()),
            Some("http://127.0.0.1:8300|".to_owned())
        );

        // Nothing given, nothing routed.
        let mut none = ProviderRouter::new();
        assert!(none.insert_kv2([])?.is_empty());
        assert_eq!(none.providers().count(), 0);
        Ok(())
    }

    /// A provider of one's own, serving one engine of the `db` scheme.
    #[derive(Debug)]
    struct Creds;

    impl SecretProvider for Creds {
        fn name(&self) -> &'static str {
            "creds"
        }

        fn serves(&self, uri: &SecretUri) -> bool {
            uri.engine() == Some(secret_uri::Engine::Cred)
        }

        fn read<'a>(&'a self, _uri: &'a SecretUri) -> ReadFuture<'a> {
            Box::pin(std::future::ready(Ok(SecretValue::from_text("pw"))))
        }
    }

    #[tokio::test]
    async fn route_is_the_one_served_check() -> Result<(), Box<dyn std::error::Error>> {
        let router = ProviderRouter::new().with(Provider::Db, Arc::new(Creds));
        let value = router.read(&"db+cred://pg/app".parse()?).await?;
        assert_eq!(value.expose_str(), Some("pw"));

        for (uri, names) in [
            // Registered, but the engine is not served.
            ("db+db://pg/app", "creds: unsupported provider: `db+db`"),
            // No route at all.
            ("yaml://y/x", "router: unsupported provider: `yaml`"),
            ("file://m/x", "router: unsupported provider: `file`"),
        ] {
            let uri: SecretUri = uri.parse()?;
            let error = router.route(&uri).err().ok_or("routed")?;
            assert_eq!(error.code(), "UNSUPPORTED_PROVIDER");
            assert!(error.to_string().starts_with(names), "{error}");
            assert!(!router.serves(&uri));
            let read = router.read(&uri).await.err().map(|e| e.code());
            assert_eq!(read, Some("UNSUPPORTED_PROVIDER"));
        }
        // An async provider has no blocking read.
        let uri: SecretUri = "db+cred://pg/app".parse()?;
        assert!(!Creds.reads_block());
        assert_eq!(
            Creds.read_blocking(&uri).err().map(|e| e.code()),
            Some("UNSUPPORTED_PROVIDER")
        );
        Ok(())
    }
}
