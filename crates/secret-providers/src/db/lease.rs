//! What the database engine hands out: [`DbLease`] (credentials and their lease),
//! [`LeaseId`] (a capability, never printed) and [`Renewal`].

use std::fmt;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::value::Selection;
use crate::{ProviderError, SecretValue};

/// A lease id (`database/creds/app/Sr2Xi…`). Whoever holds it can renew or revoke the
/// credentials it names, so it is a secret too: `Debug` prints `LeaseId([REDACTED])`, there is
/// no `Display`, and the text is zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct LeaseId(Zeroizing<String>);

impl LeaseId {
    /// A lease id from its text.
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        Self(Zeroizing::new(id.into()))
    }

    /// The id itself, for a renew or revoke request.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LeaseId([REDACTED])")
    }
}

/// Database credentials as the vault issued them: the whole value
/// `{"username", "password", "ttl", "lease_id"?}` and, for dynamic credentials
/// (`db+cred://`), the lease they live on.
///
/// `Debug` shows the TTL and whether there is a renewable lease, never the value or the
/// lease id.
#[derive(Clone)]
pub struct DbLease {
    pub(crate) value: SecretValue,
    pub(crate) lease: Option<LeaseId>,
    pub(crate) ttl: Duration,
    pub(crate) renewable: bool,
}

impl DbLease {
    /// The lease of dynamic credentials; `None` for a static role's (`db+db://`), which
    /// the vault rotates on its own schedule.
    #[must_use]
    pub fn lease_id(&self) -> Option<&LeaseId> {
        self.lease.as_ref()
    }

    /// How long the credentials were issued for: the lease's duration, or for a static role
    /// the time until the vault rotates its password.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether the lease can be renewed.
    #[must_use]
    pub fn renewable(&self) -> bool {
        self.renewable
    }

    /// The whole value: a JSON object with `username`, `password`, `ttl` (seconds) and, for
    /// dynamic credentials, `lease_id`.
    #[must_use]
    pub fn value(&self) -> &SecretValue {
        &self.value
    }

    /// The whole value (`key` `None`) or one field of it (`username`, `password`), as a URI's
    /// `#key` picks it: both fields of one lease belong to the same database user.
    ///
    /// # Errors
    /// `KEY_NOT_FOUND` for a field the credentials do not have.
    pub fn field(&self, key: Option<&str>, mount: &str) -> Result<SecretValue, ProviderError> {
        let Some(key) = key else {
            return Ok(self.value.clone());
        };
        self.value.clone().select(key).map_err(|e| match e {
            Selection::Missing | Selection::NotObject => ProviderError::KeyNotFound {
                provider: super::NAME,
                mount: mount.to_owned(),
            },
        })
    }
}

impl fmt::Debug for DbLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbLease")
            .field("value", &self.value)
            .field("lease_id", &self.lease)
            .field("ttl", &self.ttl)
            .field("renewable", &self.renewable)
            .finish()
    }
}

/// What a renewal got: the lease's new duration (`lease_duration`), and whether the vault
/// capped it below what was asked (the role's `max_ttl` is near: the lease cannot be renewed
/// much further, and new credentials are due).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Renewal {
    /// The lease's duration from now.
    pub ttl: Duration,
    /// Shorter than the increment asked for (the role's `max_ttl` caps it).
    pub capped: bool,
}
