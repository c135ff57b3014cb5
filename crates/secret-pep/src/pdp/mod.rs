//! The Policy Decision Point interface ([`SecretPolicyService`]) and its implementations.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use secret_uri::SecretUri;

use crate::{DenyReason, ExecutionContext, Grant, GrantDefaults, PepError};

#[cfg(feature = "authzen")]
pub(crate) mod authzen;
#[cfg(feature = "authzen")]
mod breaker;

/// The boxed future a [`SecretPolicyService`] returns.
pub type PdpFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PepError>> + Send + 'a>>;

/// One question to the PDP: may `subject` of `tenant` `execute` (read) `uri`?
///
/// `Debug` redacts `cnf_binding` (and the context's token fields) and shows the URI redacted
/// (`scheme://mount/…`).
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct AccessRequest<'a> {
    /// The subject (the token's `sub`).
    pub subject: &'a str,
    /// The tenant the PEP serves (`TENANT_ID`).
    pub tenant: &'a str,
    /// The canonical URI, as the PDP's resource id: a provider's only engine made explicit
    /// (`openbao://x` → `openbao+kv2://x`) and no query parameter but `version`.
    pub uri: &'a SecretUri,
    /// Why the secret is read, when configured (`SECRETS_PURPOSE`).
    pub purpose: Option<&'a str>,
    /// The sender binding the grant will be tied to (`cnf_jkt`, else mTLS thumbprint).
    pub cnf_binding: Option<&'a str>,
    /// The whole caller context. The answer is cached under the grant key, which holds the
    /// subject, roles, issuer, client id, sender binding and workflow ids (not the `jti`, the
    /// `exp` or the correlation id): decide on those only.
    pub context: &'a ExecutionContext,
    /// TTL and use count for a permit whose decision does not say.
    pub defaults: GrantDefaults,
}

impl fmt::Debug for AccessRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessRequest")
            .field("subject", &self.subject)
            .field("tenant", &self.tenant)
            .field("uri", &self.uri.redacted().to_string())
            .field("purpose", &self.purpose)
            .field("cnf_binding", &self.cnf_binding.map(|_| "[REDACTED]"))
            .field("context", self.context)
            .field("defaults", &self.defaults)
            .finish()
    }
}

impl<'a> AccessRequest<'a> {
    /// A request; `purpose` and `cnf_binding` start empty, `defaults` at 300 s / 1 use.
    #[must_use]
    pub fn new(
        subject: &'a str,
        tenant: &'a str,
        uri: &'a SecretUri,
        context: &'a ExecutionContext,
    ) -> Self {
        Self {
            subject,
            tenant,
            uri,
            purpose: None,
            cnf_binding: None,
            context,
            defaults: GrantDefaults::default(),
        }
    }
}

/// Many questions for one subject: `required` URIs first, then `optional` ones. `Debug` shows
/// the URIs redacted.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct BatchRequest<'a> {
    /// The request fields shared by every URI (`uri` is ignored).
    pub common: AccessRequest<'a>,
    /// URIs the caller cannot do without.
    pub required: &'a [SecretUri],
    /// URIs the caller can do without.
    pub optional: &'a [SecretUri],
}

/// The redacted forms of `uris`, for `Debug`.
fn redacted(uris: &[SecretUri]) -> Vec<String> {
    uris.iter().map(|u| u.redacted().to_string()).collect()
}

impl fmt::Debug for BatchRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchRequest")
            .field("common", &self.common)
            .field("required", &redacted(self.required))
            .field("optional", &redacted(self.optional))
            .finish()
    }
}

impl<'a> BatchRequest<'a> {
    /// A batch for `common`'s subject.
    #[must_use]
    pub fn new(
        common: AccessRequest<'a>,
        required: &'a [SecretUri],
        optional: &'a [SecretUri],
    ) -> Self {
        Self {
            common,
            required,
            optional,
        }
    }

    /// The URIs to decide, deduplicated, required ones first (a URI in both lists counts as
    /// required), each with its `required` flag, in first-seen order.
    #[must_use]
    pub fn plan(&self) -> Vec<(&'a SecretUri, bool)> {
        let mut out: Vec<(&'a SecretUri, bool)> =
            Vec::with_capacity(self.required.len() + self.optional.len());
        let mut seen: std::collections::HashSet<&'a SecretUri> =
            std::collections::HashSet::with_capacity(out.capacity());
        let lists: [(&'a [SecretUri], bool); 2] = [(self.required, true), (self.optional, false)];
        for (list, required) in lists {
            for uri in list {
                if seen.insert(uri) {
                    out.push((uri, required));
                }
            }
        }
        out
    }

    /// The single request for one URI of the batch.
    #[must_use]
    pub fn request_for(&self, uri: &'a SecretUri) -> AccessRequest<'a> {
        AccessRequest { uri, ..self.common }
    }
}

/// The PDP's answer for one URI of a batch. `Debug` shows the URI redacted.
#[non_exhaustive]
pub struct BatchDecision {
    /// The URI.
    pub uri: SecretUri,
    /// Whether it was in the required list.
    pub required: bool,
    /// The grant, or why there is none.
    pub outcome: Result<Grant, BatchFailure>,
}

impl fmt::Debug for BatchDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchDecision")
            .field("uri", &self.uri.redacted().to_string())
            .field("required", &self.required)
            .field("outcome", &self.outcome)
            .finish()
    }
}

impl BatchDecision {
    /// A decision.
    #[must_use]
    pub fn new(uri: SecretUri, required: bool, outcome: Result<Grant, BatchFailure>) -> Self {
        Self {
            uri,
            required,
            outcome,
        }
    }
}

/// Why one URI of a batch has no grant. Codes as in the original SDK: `DENY`,
/// `PDP_UNAVAILABLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchFailure {
    /// Denied, for this reason.
    Deny {
        /// The reason (`PDP_DENY`, `UNKNOWN_OBLIGATION`, `NEGATIVE_CACHED`).
        reason: DenyReason,
    },
    /// The PDP could not decide.
    PdpUnavailable,
}

impl BatchFailure {
    /// `"AUTHZ_DENIED"` (the single-read code of a refusal) or `"PDP_UNAVAILABLE"`.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Deny { .. } => "AUTHZ_DENIED",
            Self::PdpUnavailable => "PDP_UNAVAILABLE",
        }
    }

    /// The batch form of a single decision's error.
    #[must_use]
    pub fn from_error(error: &PepError) -> Self {
        match error.deny_reason() {
            Some(reason) => Self::Deny { reason },
            None => Self::PdpUnavailable,
        }
    }
}

/// A Policy Decision Point for secret reads: a PDP decides, the PEP enforces.
///
/// Object safe (`Arc<dyn SecretPolicyService>`), so tests and other crates can plug in their
/// own. Implementations must fail closed: anything other than a clear permit is an `Err`
/// (`AUTHZ_DENIED` for a denial, `PDP_UNAVAILABLE` for no answer).
pub trait SecretPolicyService: Send + Sync + fmt::Debug {
    /// Decides one read; a permit becomes a [`Grant`] bound to `request.cnf_binding`.
    ///
    /// # Errors
    /// `AUTHZ_DENIED` (`PDP_DENY`, `UNKNOWN_OBLIGATION`) or `PDP_UNAVAILABLE`.
    fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant>;

    /// Decides many reads for one subject: one [`BatchDecision`] per URI of
    /// [`BatchRequest::plan`], in that order (deduplicated, required first). The default asks
    /// [`authorize_use`](Self::authorize_use) for each in turn.
    ///
    /// # Errors
    /// Only for failures of the whole batch; per-URI failures are in the decisions.
    fn authorize_batch<'a>(
        &'a self,
        request: &'a BatchRequest<'a>,
    ) -> PdpFuture<'a, Vec<BatchDecision>> {
        Box::pin(async move { Ok(sequential_batch(self, request).await) })
    }

    /// Whether this PDP permits without deciding (development only, like [`DevAllowAll`]).
    /// [`PepBuilder::build`](crate::PepBuilder::build) refuses such a PDP unless `ENVIRONMENT`
    /// is one of [`DEVELOPMENT_ENVIRONMENTS`](crate::DEVELOPMENT_ENVIRONMENTS). Default
    /// `false`; wrappers should forward their inner PDP's answer.
    fn is_development(&self) -> bool {
        false
    }
}

/// A batch as one [`SecretPolicyService::authorize_use`] call per planned URI, in order.
pub(crate) async fn sequential_batch<P: SecretPolicyService + ?Sized>(
    pdp: &P,
    request: &BatchRequest<'_>,
) -> Vec<BatchDecision> {
    let mut out = Vec::new();
    for (uri, required) in request.plan() {
        let single = request.request_for(uri);
        let outcome = pdp
            .authorize_use(&single)
            .await
            .map_err(|e| BatchFailure::from_error(&e));
        out.push(BatchDecision::new(uri.clone(), required, outcome));
    }
    out
}

impl<P: SecretPolicyService + ?Sized> SecretPolicyService for Arc<P> {
    fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
        (**self).authorize_use(request)
    }

    fn authorize_batch<'a>(
        &'a self,
        request: &'a BatchRequest<'a>,
    ) -> PdpFuture<'a, Vec<BatchDecision>> {
        (**self).authorize_batch(request)
    }

    fn is_development(&self) -> bool {
        (**self).is_development()
    }
}

/// Development mode: permits everything with the default TTL and use count.
///
/// [`PepConfig::from_env`](crate::PepConfig::from_env) selects it only when
/// `ENABLE_AUTHORIZATION=false` is set explicitly. However it is installed (that setting or
/// [`PepBuilder::pdp`](crate::PepBuilder::pdp)), [`Pep`](crate::Pep) refuses it (`CONFIG`)
/// unless `ENVIRONMENT` is one of [`DEVELOPMENT_ENVIRONMENTS`](crate::DEVELOPMENT_ENVIRONMENTS),
/// or is unset and [`PepBuilder::allow_dev_pdp`](crate::PepBuilder::allow_dev_pdp) is set.
/// Creating one logs a warning (once per process).
#[derive(Debug)]
pub struct DevAllowAll {
    _private: (),
}

impl DevAllowAll {
    /// The allow-all PDP. Logs `authorization is DISABLED` once per process.
    #[must_use]
    pub fn new() -> Self {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "authorization is DISABLED (ENABLE_AUTHORIZATION=false): every secret read is permitted; never run this in production"
            );
        }
        Self { _private: () }
    }
}

impl Default for DevAllowAll {
    fn default() -> Self {
        Self::new()
    }
}

impl SecretPolicyService for DevAllowAll {
    fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
        let mut grant = Grant::with_defaults(request.defaults).bound_to(request.cnf_binding);
        grant.decision_id = Some("dev-allow-all".to_owned());
        grant.policy_version = Some("dev-allow-all".to_owned());
        Box::pin(std::future::ready(Ok(grant)))
    }

    fn is_development(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_deduplicates_required_first() {
        let p = |s: &str| SecretUri::parse(s).unwrap();
        let required = [p("file://a/x"), p("file://a/y"), p("file://a/x")];
        let optional = [p("file://a/z"), p("FILE://a/y"), p("file://a/z")];
        let ctx = ExecutionContext::new("s");
        let batch = BatchRequest::new(
            AccessRequest::new("s", "t", &required[0], &ctx),
            &required,
            &optional,
        );
        let plan: Vec<(&str, bool)> = batch
            .plan()
            .into_iter()
            .map(|(u, r)| (u.as_str(), r))
            .collect();
        assert_eq!(
            plan,
            [
                ("file://a/x", true),
                ("file://a/y", true),
                ("file://a/z", false)
            ]
        );
    }

    #[tokio::test]
    async fn dev_allow_all_and_default_batch() {
        let pdp = DevAllowAll::new();
        let uri = SecretUri::parse("file://a/x").unwrap();
        let ctx = ExecutionContext::new("s");
        let mut request = AccessRequest::new("s", "t", &uri, &ctx);
        request.cnf_binding = Some("jkt");
        let grant = pdp.authorize_use(&request).await.unwrap();
        assert_eq!((grant.max_uses, grant.ttl.as_secs()), (1, 300));
        assert_eq!(grant.cnf_binding.as_deref(), Some("jkt"));

        let uris = [uri.clone()];
        let batch = BatchRequest::new(request, &uris, &uris);
        let decisions = pdp.authorize_batch(&batch).await.unwrap();
        assert_eq!(decisions.len(), 1);
        assert!(decisions[0].required && decisions[0].outcome.is_ok());
    }

    #[test]
    fn requests_and_decisions_debug_redacted() {
        let uri = SecretUri::parse("openbao+kv2://secret/team/canary-path#key").unwrap();
        let ctx = ExecutionContext::new("s");
        let request = AccessRequest::new("s", "t", &uri, &ctx);
        let uris = [uri.clone()];
        let batch = BatchRequest::new(request, &uris, &uris);
        let decision = BatchDecision::new(uri.clone(), true, Err(BatchFailure::PdpUnavailable));
        for shown in [
            format!("{request:?}"),
            format!("{batch:?}"),
            format!("{decision:?}"),
        ] {
            assert!(!shown.contains("canary-path"), "{shown}");
            assert!(shown.contains("openbao+kv2://secret/…"), "{shown}");
        }
    }

    #[test]
    fn only_the_allow_all_pdp_is_development() {
        assert!(DevAllowAll::new().is_development());
        assert!(Arc::new(DevAllowAll::new()).is_development());
    }
}
