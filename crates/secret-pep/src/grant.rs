//! [`Grant`]: what a PDP's permit allows, and for how long.

use std::fmt;
use std::time::Duration;

/// A PDP's permit for one (subject, tenant, canonical URI, action `execute`): usable `max_uses`
/// times within `ttl`, from the sender binding it was issued for.
///
/// PDP implementations build one with [`Grant::new`] (taking the defaults from
/// [`AccessRequest::defaults`](crate::AccessRequest)) and fill in what the decision said. The
/// PEP caches it and counts its uses atomically; `uses` here is the count at issue (normally
/// 0), the live count is on [`Authorized`](crate::Authorized).
///
/// `Debug` redacts `cnf_binding`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Grant {
    /// A unique id for this grant (the PEP's, not the PDP's).
    pub grant_id: String,
    /// How long the grant may be used, from issue.
    pub ttl: Duration,
    /// How many reads the grant allows.
    pub max_uses: u32,
    /// Uses already consumed at issue (normally 0).
    pub uses: u32,
    /// The PDP's decision id (for AuthZEN: the response's `decision_id`, else the request's
    /// `X-Request-ID`).
    pub decision_id: Option<String>,
    /// The policy (version) that decided.
    pub policy_version: Option<String>,
    /// A data classification the PDP attached (e.g. `confidential`); carried for callers and
    /// audit.
    pub classification: Option<String>,
    /// Events on which the caller must ask again (carried for callers; the PEP itself
    /// re-asks on expiry, on spent uses and never across sender bindings).
    pub must_revalidate_on: Vec<String>,
    /// The sender binding (`cnf_jkt` or mTLS thumbprint) the grant is bound to; `None` for a
    /// bearer grant.
    pub cnf_binding: Option<String>,
    /// A response-wrapping TTL the PDP asks for (carried for the provider read).
    pub wrap_ttl: Option<Duration>,
}

/// The grant TTL and use count a PDP applies when its decision does not say
/// (`GRANT_TTL_DEFAULT`, `GRANT_MAX_USES_DEFAULT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantDefaults {
    /// Default TTL: 300 s.
    pub ttl: Duration,
    /// Default max uses: 1.
    pub max_uses: u32,
}

impl Default for GrantDefaults {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            max_uses: 1,
        }
    }
}

impl Grant {
    /// A grant with this id, TTL and use count, and nothing else set.
    #[must_use]
    pub fn new(grant_id: impl Into<String>, ttl: Duration, max_uses: u32) -> Self {
        Self {
            grant_id: grant_id.into(),
            ttl,
            max_uses,
            uses: 0,
            decision_id: None,
            policy_version: None,
            classification: None,
            must_revalidate_on: Vec::new(),
            cnf_binding: None,
            wrap_ttl: None,
        }
    }

    /// A grant with a fresh random id and the defaults.
    #[must_use]
    pub fn with_defaults(defaults: GrantDefaults) -> Self {
        Self::new(crate::util::random_id(), defaults.ttl, defaults.max_uses)
    }

    /// Sets the sender binding.
    #[must_use]
    pub fn bound_to(mut self, binding: Option<&str>) -> Self {
        self.cnf_binding = binding.map(str::to_owned);
        self
    }
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("grant_id", &self.grant_id)
            .field("ttl", &self.ttl)
            .field("max_uses", &self.max_uses)
            .field("uses", &self.uses)
            .field("decision_id", &self.decision_id)
            .field("policy_version", &self.policy_version)
            .field("classification", &self.classification)
            .field("must_revalidate_on", &self.must_revalidate_on)
            .field(
                "cnf_binding",
                &self.cnf_binding.as_ref().map(|_| "[REDACTED]"),
            )
            .field("wrap_ttl", &self.wrap_ttl)
            .finish()
    }
}
