//! The `db` provider: database credentials from the vault's database secrets engine.
//!
//! - `db+cred://<mount>/<role>` reads `GET /v1/<mount>/creds/<role>`: dynamic credentials, a
//!   fresh database user on a lease of the role's TTL, renewable up to its `max_ttl`.
//! - `db+db://<mount>/<role>` reads `GET /v1/<mount>/static-creds/<role>`: a static role's
//!   current password, which the vault rotates on its own schedule (no lease).
//!
//! `#username` and `#password` pick a field; the whole value is
//! `{"username", "password", "ttl", "lease_id"?}`. This mapping is ours (`docs/uri-spec.md`):
//! the original SDK defined the schemes, not their meaning.
//!
//! A [`DbProvider`] talks to the vault through a [`Kv2Provider`]'s client (its one
//! connection pool and token). [`DbProvider::issue`], [`renew`](DbProvider::renew) and
//! [`revoke`](DbProvider::revoke) are the lease calls a client that owns leases makes;
//! `SecretsClient` keeps one lease per role and renews, rotates and revokes it. A bare
//! [`SecretProvider::read`] issues credentials whose lease nobody renews or revokes: they
//! live until the role's TTL.

mod lease;
mod reply;

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use secret_uri::{Engine, Provider, SecretUri};

pub use self::lease::{DbLease, LeaseId, Renewal};
use self::reply::Issued;
#[doc(hidden)]
pub use self::reply::fuzz_db_replies;
use crate::provider::{ReadFuture, SecretProvider};
use crate::{Kv2Provider, ProviderError};

/// The provider name of `db` errors and spans.
pub(crate) const NAME: &str = "db";

/// Reads database credentials from the vault a [`Kv2Provider`] talks to, through that
/// client's one connection pool and token: `db+cred://<mount>/<role>` from
/// `<mount>/creds/<role>` (a new database user on a lease), `db+db://<mount>/<role>` from
/// `<mount>/static-creds/<role>`. `#username` and `#password` pick a field of the whole value
/// `{"username", "password", "ttl", "lease_id"?}` (`docs/uri-spec.md`). A bare
/// [`SecretProvider::read`] issues credentials whose lease nobody renews or revokes; clients
/// that own leases use [`issue`](Self::issue), [`renew`](Self::renew) and
/// [`revoke`](Self::revoke).
///
/// ```
/// use secret_providers::{DbProvider, Kv2Auth, Kv2Config, Kv2Flavor, Kv2Provider, SecretProvider};
/// use secret_uri::SecretUri;
///
/// let vault = Kv2Provider::new(Kv2Config::new(
///     Kv2Flavor::OpenBao,
///     "http://127.0.0.1:8200",
///     Kv2Auth::token("root".to_owned()),
/// ))?;
/// let db = DbProvider::new(vault);
/// assert!(db.serves(&"db+cred://database/app#password".parse::<SecretUri>()?));
/// assert!(db.serves(&"db+db://database/billing".parse::<SecretUri>()?));
/// // No engine says neither dynamic nor static: not served.
/// assert!(!db.serves(&"db://database/app".parse::<SecretUri>()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct DbProvider {
    vault: Kv2Provider,
}

impl DbProvider {
    /// A provider over `vault`'s client (no I/O).
    #[must_use]
    pub fn new(vault: Kv2Provider) -> Self {
        Self { vault }
    }

    /// The vault client the credentials come from.
    #[must_use]
    pub fn vault(&self) -> &Kv2Provider {
        &self.vault
    }

    /// Issues credentials for `uri`'s role (its `#key` is not applied: see
    /// [`DbLease::field`]). For `db+cred://` every call creates a new database user on a new
    /// lease, so the request is never retried once it may have reached the server.
    ///
    /// # Errors
    /// `UNSUPPORTED_PROVIDER` for a URI this provider does not serve, `INVALID_PATH` unless
    /// the path is one role name, `NOT_FOUND` for an unknown role or mount,
    /// `PERMISSION_DENIED`, `MALFORMED_RESPONSE`, and the transport's errors.
    pub async fn issue(&self, uri: &SecretUri) -> Result<DbLease, ProviderError> {
        let issued = issued(uri).ok_or_else(|| crate::provider::unserved(NAME, uri))?;
        crate::check_parameters(uri)?;
        let mount = uri.mount();
        let role = uri.path();
        if role.is_empty() || role.contains('/') {
            return Err(ProviderError::InvalidPath {
                provider: NAME,
                mount: mount.to_owned(),
                reason: "a database URI names a mount and one role: db+cred://<mount>/<role>",
            });
        }
        let endpoint = match issued {
            Issued::Dynamic => "creds",
            Issued::Static => "static-creds",
        };
        let target = format!("{mount}/{endpoint}/{role}");
        let reply = self
            .vault
            .lease_call(
                "issue",
                mount,
                Method::GET,
                &target,
                None,
                issued == Issued::Static,
            )
            .await?;
        let lease = reply::creds_reply(issued, mount, reply.status, &reply.body);
        if lease.is_err()
            && let Some(id) = reply::lease_id_of(&reply.body)
        {
            // The vault made a user we cannot hand out: it goes now, not at its TTL.
            if let Err(error) = self.revoke(&id).await {
                tracing::debug!(
                    code = error.code(),
                    "an unusable lease could not be revoked"
                );
            }
        }
        lease
    }

    /// Renews `lease` by `increment` (`PUT sys/leases/renew`). The vault may grant less (the
    /// role's `max_ttl`): [`Renewal::capped`].
    ///
    /// # Errors
    /// `LEASE_NOT_FOUND` when the vault does not know the lease (expired, revoked, or lost
    /// in a restart), `PERMISSION_DENIED`, `UNEXPECTED_STATUS`, `MALFORMED_RESPONSE`, and the
    /// transport's errors.
    pub async fn renew(
        &self,
        lease: &LeaseId,
        increment: Duration,
    ) -> Result<Renewal, ProviderError> {
        // Whole seconds, at least one: what is asked is what a capped grant compares with.
        let increment = Duration::from_secs(increment.as_secs().max(1));
        let body = lease_body(lease, Some(increment));
        let reply = self
            .vault
            .lease_call(
                "renew",
                "sys",
                Method::PUT,
                "sys/leases/renew",
                Some(body),
                true,
            )
            .await?;
        reply::renew_reply(increment, reply.status, &reply.body)
    }

    /// Revokes `lease` (`PUT sys/leases/revoke`): the vault drops the database user. A lease
    /// the vault no longer knows is already gone, and is no error.
    ///
    /// # Errors
    /// `PERMISSION_DENIED`, `UNEXPECTED_STATUS`, and the transport's errors.
    pub async fn revoke(&self, lease: &LeaseId) -> Result<(), ProviderError> {
        let body = lease_body(lease, None);
        let reply = self
            .vault
            .lease_call(
                "revoke",
                "sys",
                Method::PUT,
                "sys/leases/revoke",
                Some(body),
                true,
            )
            .await?;
        reply::revoke_reply(reply.status, &reply.body)
    }
}

/// `{"lease_id": …, "increment": N}` (whole seconds, at least 1).
fn lease_body(lease: &LeaseId, increment: Option<Duration>) -> Bytes {
    let mut body = serde_json::json!({ "lease_id": lease.expose() });
    if let Some(increment) = increment {
        body["increment"] = serde_json::Value::from(increment.as_secs().max(1));
    }
    let bytes = Bytes::from(body.to_string());
    crate::wipe_json(&mut body);
    bytes
}

/// Which endpoint serves `uri`, if this provider serves it at all.
fn issued(uri: &SecretUri) -> Option<Issued> {
    match (uri.provider(), uri.engine()) {
        (Provider::Db, Some(Engine::Cred)) => Some(Issued::Dynamic),
        (Provider::Db, Some(Engine::Db)) => Some(Issued::Static),
        _ => None,
    }
}

impl fmt::Debug for DbProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbProvider")
            .field("vault", &self.vault)
            .finish()
    }
}

impl SecretProvider for DbProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn serves(&self, uri: &SecretUri) -> bool {
        issued(uri).is_some()
    }

    fn backend(&self) -> Cow<'_, str> {
        self.vault.backend()
    }

    fn read<'a>(&'a self, uri: &'a SecretUri) -> ReadFuture<'a> {
        Box::pin(async move {
            let lease = self.issue(uri).await?;
            lease.field(uri.key(), uri.mount())
        })
    }
}
