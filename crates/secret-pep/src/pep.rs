//! [`Pep`]: the enforcement flow.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secret_uri::SecretUri;
use subtle::ConstantTimeEq;

use crate::cache::{CacheSettings, GrantCache, GrantEntry};
use crate::pdp::{AccessRequest, BatchFailure, BatchRequest, DevAllowAll, SecretPolicyService};
use crate::{
    AuditDecision, AuditEvent, AuditHook, DenyReason, ExecutionContext, Grant, NoopAudit,
    PdpSettings, PepConfig, PepError,
};

/// The Policy Enforcement Point: decides whether a caller may read a secret, fail closed.
///
/// Cheap to clone (one `Arc`); share one per tenant across tasks.
///
/// # The flow ([`Pep::authorize`])
/// 1. Parse and canonicalize the URI (`ILLEGAL_SEGMENT`, …).
/// 2. Tenant mount guard (`TENANT_MOUNT_MISMATCH`).
/// 3. Subject present (`AUTHZ_DENIED`/`SUBJECT_MISSING`), audience (`AUDIENCE`); the audience
///    is checked on every call, so a token for another service cannot ride a warm grant.
/// 4. Negative cache (`NEGATIVE_CACHED`).
/// 5. Grant for (subject, tenant, canonical URI, `execute`): a live cached one, or the PDP is
///    asked (`PDP_DENY`, `UNKNOWN_OBLIGATION`, `PDP_UNAVAILABLE`); concurrent misses share one
///    PDP call. Denials are negative-cached; unavailability is not.
/// 6. Sender binding: the grant's binding vs the caller's `cnf_jkt`, else mTLS thumbprint,
///    compared in constant time (`BINDING_DRIFT`).
/// 7. `jti` anti-replay on every call that carries one, cold or warm grant (`REPLAY`).
/// 8. One use taken atomically (`USES_EXHAUSTED`): exactly `max_uses` calls succeed.
///
/// Then the caller reads the secret with [`Authorized::uri`] and reports the outcome with
/// [`Pep::audit_read`] — or lets [`Pep::execute`] do both. Denials are audited by `authorize`
/// itself.
#[derive(Clone)]
pub struct Pep {
    inner: Arc<Inner>,
}

struct Inner {
    config: PepConfig,
    pdp: Arc<dyn SecretPolicyService>,
    audit: Arc<dyn AuditHook>,
    cache: GrantCache,
}

impl fmt::Debug for Pep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pep")
            .field("tenant", &self.inner.config.tenant_id)
            .field("pdp", &self.inner.pdp)
            .field("audit", &self.inner.audit)
            .field("cache", &self.inner.cache)
            .finish()
    }
}

/// Builds a [`Pep`] with a custom PDP or audit hook. See [`Pep::builder`].
#[derive(Debug)]
pub struct PepBuilder {
    config: PepConfig,
    pdp: Option<Arc<dyn SecretPolicyService>>,
    audit: Option<Arc<dyn AuditHook>>,
}

impl PepBuilder {
    /// Uses this PDP instead of the one `config.pdp` names.
    #[must_use]
    pub fn pdp(mut self, pdp: impl SecretPolicyService + 'static) -> Self {
        self.pdp = Some(Arc::new(pdp));
        self
    }

    /// Sends audit events to `hook` (default: [`NoopAudit`]).
    #[must_use]
    pub fn audit(mut self, hook: impl AuditHook + 'static) -> Self {
        self.audit = Some(Arc::new(hook));
        self
    }

    /// Validates the configuration and builds the PEP (no network I/O).
    ///
    /// # Errors
    /// `CONFIG`: invalid settings (see [`PepConfig::validate`]), no PDP at all, development
    /// mode in production, or an invalid AuthZEN configuration.
    pub fn build(self) -> Result<Pep, PepError> {
        let config = self.config;
        config.validate()?;
        let pdp: Arc<dyn SecretPolicyService> = match (self.pdp, &config.pdp) {
            (Some(pdp), _) => pdp,
            (None, PdpSettings::None) => {
                return Err(PepError::config(
                    "no PDP configured: set AUTHZEN_PDP_URL (or ENABLE_AUTHORIZATION=false for local development only)",
                ));
            }
            (None, PdpSettings::DisabledForDevelopment) => {
                if config.is_production() {
                    return Err(PepError::config(
                        "ENABLE_AUTHORIZATION=false is refused when ENVIRONMENT is production",
                    ));
                }
                Arc::new(DevAllowAll::new())
            }
            #[cfg(feature = "authzen")]
            (None, PdpSettings::AuthZen(authzen)) => {
                Arc::new(crate::AuthzenClient::new(authzen.clone())?)
            }
            #[cfg(not(feature = "authzen"))]
            (None, PdpSettings::AuthZen(_)) => {
                return Err(PepError::config(
                    "AUTHZEN_PDP_URL is set but secret-pep was built without the `authzen` feature",
                ));
            }
        };
        let cache = GrantCache::new(CacheSettings {
            negative_ttl: config.negative_cache_ttl,
            negative_jitter: config.negative_cache_jitter,
            negative_max_entries: config.grant_cache_max_entries,
            replay_ttl: config.anti_replay_ttl,
            replay_max_entries: config.anti_replay_max_entries,
            grant_max_entries: config.grant_cache_max_entries,
        });
        Ok(Pep {
            inner: Arc::new(Inner {
                pdp,
                audit: self.audit.unwrap_or_else(|| Arc::new(NoopAudit)),
                cache,
                config,
            }),
        })
    }
}

/// A granted read: the canonical URI to read and the grant it used. Returned by
/// [`Pep::authorize`].
pub struct Authorized {
    uri: SecretUri,
    entry: Arc<GrantEntry>,
    use_number: u32,
}

impl fmt::Debug for Authorized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorized")
            .field("uri", &self.uri.redacted().to_string())
            .field("grant_id", &self.entry.grant.grant_id)
            .field("use_number", &self.use_number)
            .finish()
    }
}

impl Authorized {
    /// The canonical URI to read.
    #[must_use]
    pub fn uri(&self) -> &SecretUri {
        &self.uri
    }

    /// The canonical URI, owned.
    #[must_use]
    pub fn into_uri(self) -> SecretUri {
        self.uri
    }

    /// The grant this read used.
    #[must_use]
    pub fn grant(&self) -> &Grant {
        &self.entry.grant
    }

    /// Which use of the grant this is (1-based).
    #[must_use]
    pub fn use_number(&self) -> u32 {
        self.use_number
    }

    /// Uses left on the grant now (other callers may be taking them).
    #[must_use]
    pub fn remaining_uses(&self) -> u32 {
        self.entry.grant.max_uses.saturating_sub(self.entry.uses())
    }

    /// Time left before the grant expires.
    #[must_use]
    pub fn expires_in(&self) -> Duration {
        self.entry
            .expires_at
            .saturating_duration_since(Instant::now())
    }
}

/// The outcome of [`Pep::authorize_batch`]: one item per distinct URI, required ones first.
#[derive(Debug)]
pub struct BatchReport {
    items: Vec<BatchItem>,
}

/// One URI of a [`BatchReport`].
#[derive(Debug)]
#[non_exhaustive]
pub struct BatchItem {
    /// The canonical URI.
    pub uri: SecretUri,
    /// Whether it was required.
    pub required: bool,
    /// A grant is cached for it, or why not.
    pub status: BatchStatus,
}

/// The status of one [`BatchItem`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchStatus {
    /// A grant is cached (already or now).
    Granted {
        /// Its id.
        grant_id: String,
        /// Uses left.
        remaining_uses: u32,
    },
    /// No grant: `DENY` (with a reason) or `PDP_UNAVAILABLE`.
    Failed(BatchFailure),
}

impl BatchStatus {
    /// `"GRANTED"`, `"DENY"` or `"PDP_UNAVAILABLE"`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Granted { .. } => "GRANTED",
            Self::Failed(failure) => failure.code(),
        }
    }

    fn granted(entry: &GrantEntry) -> Self {
        Self::Granted {
            grant_id: entry.grant.grant_id.clone(),
            remaining_uses: entry.grant.max_uses.saturating_sub(entry.uses()),
        }
    }
}

impl BatchReport {
    /// The items, required first.
    #[must_use]
    pub fn items(&self) -> &[BatchItem] {
        &self.items
    }

    /// Whether every required URI has a grant.
    #[must_use]
    pub fn is_satisfied(&self) -> bool {
        self.items
            .iter()
            .all(|item| !item.required || matches!(item.status, BatchStatus::Granted { .. }))
    }

    /// The items without a grant.
    pub fn failures(&self) -> impl Iterator<Item = &BatchItem> + '_ {
        self.items
            .iter()
            .filter(|item| matches!(item.status, BatchStatus::Failed(_)))
    }
}

impl Pep {
    /// A PEP using the PDP `config.pdp` names and no audit hook.
    ///
    /// # Errors
    /// As [`PepBuilder::build`].
    pub fn new(config: PepConfig) -> Result<Self, PepError> {
        Self::builder(config).build()
    }

    /// A PEP from [`PepConfig::from_env`].
    ///
    /// # Errors
    /// As [`PepConfig::from_env`] and [`PepBuilder::build`].
    pub fn from_env() -> Result<Self, PepError> {
        Self::new(PepConfig::from_env()?)
    }

    /// A builder, to set a custom PDP or audit hook.
    #[must_use]
    pub fn builder(config: PepConfig) -> PepBuilder {
        PepBuilder {
            config,
            pdp: None,
            audit: None,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &PepConfig {
        &self.inner.config
    }

    /// The grant cache, negative cache and anti-replay store.
    #[must_use]
    pub fn cache(&self) -> &GrantCache {
        &self.inner.cache
    }

    /// Decides whether `ctx` may read `uri` now, taking one use of its grant. See the flow on
    /// [`Pep`]. A denial or error is audited here; after reading, call [`Self::audit_read`].
    ///
    /// # Errors
    /// A URI code, `AUTHZ_DENIED` (with a [`DenyReason`]), `BINDING_DRIFT` or
    /// `PDP_UNAVAILABLE`.
    pub async fn authorize(
        &self,
        ctx: &ExecutionContext,
        uri: &str,
    ) -> Result<Authorized, PepError> {
        match SecretUri::parse(uri) {
            Ok(uri) => self.authorize_uri(ctx, uri).await,
            Err(error) => {
                let error = PepError::from(error);
                self.audit_error(ctx, None, &error);
                Err(error)
            }
        }
    }

    /// [`Self::authorize`] for an already parsed URI.
    ///
    /// # Errors
    /// As [`Self::authorize`].
    pub async fn authorize_uri(
        &self,
        ctx: &ExecutionContext,
        uri: SecretUri,
    ) -> Result<Authorized, PepError> {
        match self.decide(ctx, &uri).await {
            Ok((entry, use_number)) => Ok(Authorized {
                uri,
                entry,
                use_number,
            }),
            Err(error) => {
                self.audit_error(ctx, Some(&uri), &error);
                Err(error)
            }
        }
    }

    /// Audits a read after [`Self::authorize`]: `error_code` is `None` when the read
    /// succeeded, else the provider's code (e.g. `Some("NOT_FOUND")`).
    pub fn audit_read(
        &self,
        ctx: &ExecutionContext,
        authorized: &Authorized,
        error_code: Option<&'static str>,
    ) {
        let grant = &authorized.entry.grant;
        let mut event = self.event(ctx, Some(&authorized.uri));
        event.decision = if error_code.is_some() {
            AuditDecision::Error
        } else {
            AuditDecision::Permit
        };
        event.code = error_code.unwrap_or("OK");
        event.grant_id = Some(&grant.grant_id);
        event.decision_id = grant.decision_id.as_deref();
        event.policy_version = grant.policy_version.as_deref();
        event.use_number = Some(authorized.use_number);
        self.inner.audit.record(&event);
    }

    /// Authorizes, runs `read` on the canonical URI, and audits the outcome: the whole PEP
    /// flow in one call. Map provider errors with [`PepError::provider`] so their codes
    /// survive (`router.read(&uri).await.map_err(|e| PepError::provider(e.code(), e))`).
    ///
    /// ```
    /// # use secret_pep::{ExecutionContext, PdpSettings, Pep, PepConfig, PepError};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pep = Pep::new(PepConfig::new("t1", "secret".parse()?)
    /// #     .with_pdp(PdpSettings::DisabledForDevelopment))?;
    /// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
    /// let ctx = ExecutionContext::new("alice").with_aud(["crud.secrets"]);
    /// let uri = "openbao+kv2://secret/app/api#token";
    /// let read = rt.block_on(pep.execute(&ctx, uri, |uri| async move {
    ///     // A provider read of the canonical URI goes here.
    ///     Err::<String, _>(PepError::provider("NOT_FOUND", std::io::Error::other("no such secret")))
    /// }));
    /// assert_eq!(read.unwrap_err().code(), "NOT_FOUND");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Self::authorize`], then whatever `read` returns.
    pub async fn execute<T, F, Fut>(
        &self,
        ctx: &ExecutionContext,
        uri: &str,
        read: F,
    ) -> Result<T, PepError>
    where
        F: FnOnce(SecretUri) -> Fut,
        Fut: Future<Output = Result<T, PepError>>,
    {
        let authorized = self.authorize(ctx, uri).await?;
        let outcome = read(authorized.uri.clone()).await;
        let code = outcome.as_ref().err().map(PepError::code);
        self.audit_read(ctx, &authorized, code);
        outcome
    }

    /// Asks the PDP about many URIs at once (one AuthZEN `evaluations` call) and caches the
    /// grants, so the reads that follow are warm. URIs are deduplicated, required ones first.
    /// Nothing is read and no use is taken: every read still goes through
    /// [`Self::authorize`], which enforces binding, replay and uses.
    ///
    /// # Errors
    /// A URI or tenant-mount error in either list, `SUBJECT_MISSING` or `AUDIENCE`. Per-URI
    /// denials and PDP failures are in the report (`DENY`, `PDP_UNAVAILABLE`); check
    /// [`BatchReport::is_satisfied`].
    pub async fn authorize_batch(
        &self,
        ctx: &ExecutionContext,
        required: &[&str],
        optional: &[&str],
    ) -> Result<BatchReport, PepError> {
        let result = self.batch(ctx, required, optional).await;
        if let Err(error) = &result {
            self.audit_error(ctx, None, error);
        }
        result
    }

    async fn batch(
        &self,
        ctx: &ExecutionContext,
        required: &[&str],
        optional: &[&str],
    ) -> Result<BatchReport, PepError> {
        let inner = &*self.inner;
        let config = &inner.config;
        let parse = |list: &[&str]| -> Result<Vec<SecretUri>, PepError> {
            list.iter()
                .map(|text| {
                    let uri = SecretUri::parse(text)?;
                    config.allowed_mounts.check(&uri)?;
                    Ok(uri)
                })
                .collect()
        };
        let required = parse(required)?;
        let optional = parse(optional)?;
        let subject = self.check_caller(ctx)?;
        let binding = ctx.sender_binding();
        let now = Instant::now();

        let first = required.first().or(optional.first());
        let Some(first) = first else {
            return Ok(BatchReport { items: Vec::new() });
        };
        let common = self.access_request(ctx, subject, first, binding);
        let plan = BatchRequest::new(common, &required, &optional).plan();
        let mut items = Vec::with_capacity(plan.len());
        let (mut ask_required, mut ask_optional) = (Vec::new(), Vec::new());
        for (uri, is_required) in plan {
            let key = grant_key(subject, &config.tenant_id, uri);
            let status = if inner.cache.is_negative(&key, now) {
                Some(BatchStatus::Failed(BatchFailure::Deny {
                    reason: DenyReason::NegativeCached,
                }))
            } else {
                inner
                    .cache
                    .peek(&key, now)
                    .map(|entry| BatchStatus::granted(&entry))
            };
            if status.is_none() {
                if is_required {
                    ask_required.push(uri.clone());
                } else {
                    ask_optional.push(uri.clone());
                }
            }
            items.push((uri.clone(), is_required, status));
        }

        if !ask_required.is_empty() || !ask_optional.is_empty() {
            let ask = BatchRequest::new(common, &ask_required, &ask_optional);
            let decisions = match inner.pdp.authorize_batch(&ask).await {
                Ok(decisions) => decisions,
                Err(error) => {
                    tracing::debug!(code = error.code(), "PDP batch failed");
                    Vec::new()
                }
            };
            for decision in decisions {
                let key = grant_key(subject, &config.tenant_id, &decision.uri);
                let status = match decision.outcome {
                    Ok(grant) => {
                        let entry = Arc::new(self.entry(grant, now, ctx));
                        inner.cache.insert(&key, Arc::clone(&entry), now);
                        BatchStatus::granted(&entry)
                    }
                    Err(failure) => {
                        if let BatchFailure::Deny { reason } = failure
                            && reason.is_cacheable()
                        {
                            inner.cache.insert_negative(&key, now);
                        }
                        BatchStatus::Failed(failure)
                    }
                };
                if let Some(item) = items
                    .iter_mut()
                    .find(|(uri, _, status)| status.is_none() && *uri == decision.uri)
                {
                    item.2 = Some(status);
                }
            }
        }

        let items = items
            .into_iter()
            .map(|(uri, required, status)| BatchItem {
                uri,
                required,
                // The PDP skipped it (or the whole batch failed): fail closed.
                status: status.unwrap_or(BatchStatus::Failed(BatchFailure::PdpUnavailable)),
            })
            .collect();
        Ok(BatchReport { items })
    }

    /// Steps 2–8 of the flow.
    async fn decide(
        &self,
        ctx: &ExecutionContext,
        uri: &SecretUri,
    ) -> Result<(Arc<GrantEntry>, u32), PepError> {
        let inner = &*self.inner;
        let config = &inner.config;
        config.allowed_mounts.check(uri)?;
        let subject = self.check_caller(ctx)?;
        let binding = ctx.sender_binding();
        let key = grant_key(subject, &config.tenant_id, uri);
        let now = Instant::now();
        if inner.cache.is_negative(&key, now) {
            return Err(PepError::denied(DenyReason::NegativeCached));
        }
        // The warm path stays synchronous; the (large) PDP future is boxed off it.
        let entry = match inner.cache.ready(&key, now) {
            Some(entry) => entry,
            None => {
                Box::pin(
                    inner
                        .cache
                        .get_or_issue(&key, now, || self.issue(ctx, subject, uri, binding, &key)),
                )
                .await?
            }
        };
        if entry.binding_kind != ctx.binding_kind()
            || !same_binding(entry.grant.cnf_binding.as_deref(), binding)
        {
            return Err(PepError::BindingDrift {
                expected: entry.binding_kind,
                presented: ctx.binding_kind(),
            });
        }
        if config.anti_replay
            && let Some(jti) = ctx.token_jti.as_deref().filter(|j| !j.is_empty())
        {
            inner
                .cache
                .check_replay(ctx.issuer.as_deref(), jti, now)
                .map_err(PepError::denied)?;
        }
        let use_number = entry
            .try_use()
            .ok_or(PepError::denied(DenyReason::UsesExhausted))?;
        Ok((entry, use_number))
    }

    /// Subject present and audience acceptable; returns the subject.
    fn check_caller<'c>(&self, ctx: &'c ExecutionContext) -> Result<&'c str, PepError> {
        let config = &self.inner.config;
        let subject = ctx
            .subject_str()
            .ok_or(PepError::denied(DenyReason::SubjectMissing))?;
        let audience_ok = if ctx.aud.is_empty() {
            !config.require_audience
        } else {
            ctx.aud.contains(&config.audience)
        };
        if !audience_ok {
            return Err(PepError::denied(DenyReason::Audience));
        }
        Ok(subject)
    }

    fn access_request<'a>(
        &'a self,
        ctx: &'a ExecutionContext,
        subject: &'a str,
        uri: &'a SecretUri,
        binding: Option<&'a str>,
    ) -> AccessRequest<'a> {
        let config = &self.inner.config;
        let mut request = AccessRequest::new(subject, &config.tenant_id, uri, ctx);
        request.purpose = config.purpose.as_deref();
        request.cnf_binding = binding;
        request.defaults = config.grant_defaults;
        request
    }

    /// Asks the PDP for a grant (the single-flight initializer of [`GrantCache`]).
    async fn issue(
        &self,
        ctx: &ExecutionContext,
        subject: &str,
        uri: &SecretUri,
        binding: Option<&str>,
        key: &str,
    ) -> Result<GrantEntry, PepError> {
        let inner = &*self.inner;
        let now = Instant::now();
        // Callers that queued behind a denied request see its denial here.
        if inner.cache.is_negative(key, now) {
            return Err(PepError::denied(DenyReason::NegativeCached));
        }
        let request = self.access_request(ctx, subject, uri, binding);
        match inner.pdp.authorize_use(&request).await {
            Ok(grant) => Ok(self.entry(grant, now, ctx)),
            Err(error) => {
                if error.deny_reason().is_some_and(DenyReason::is_cacheable) {
                    inner.cache.insert_negative(key, Instant::now());
                }
                Err(error)
            }
        }
    }

    fn entry(&self, mut grant: Grant, issued_at: Instant, ctx: &ExecutionContext) -> GrantEntry {
        grant.ttl = grant.ttl.min(self.inner.config.grant_ttl_max);
        GrantEntry::new(grant, issued_at, ctx.binding_kind())
    }

    fn event<'a>(
        &'a self,
        ctx: &'a ExecutionContext,
        uri: Option<&'a SecretUri>,
    ) -> AuditEvent<'a> {
        AuditEvent {
            tenant: &self.inner.config.tenant_id,
            subject: ctx.subject_str(),
            uri,
            decision: AuditDecision::Deny,
            code: "OK",
            reason: None,
            grant_id: None,
            decision_id: None,
            policy_version: None,
            use_number: None,
            client_id: ctx.client_id.as_deref(),
            correlation_id: ctx.correlation_id.as_deref(),
            workflow_run_id: ctx.workflow_run_id.as_deref(),
            node_id: ctx.node_id.as_deref(),
            system_id: ctx.system_id.as_deref(),
        }
    }

    fn audit_error(&self, ctx: &ExecutionContext, uri: Option<&SecretUri>, error: &PepError) {
        let decision = match error {
            PepError::PdpUnavailable { .. }
            | PepError::Provider { .. }
            | PepError::Config { .. } => AuditDecision::Error,
            _ => AuditDecision::Deny,
        };
        tracing::debug!(
            code = error.code(),
            reason = error.deny_reason().map(DenyReason::code),
            uri = %uri.map(|u| u.redacted().to_string()).unwrap_or_default(),
            correlation_id = ctx.correlation_id.as_deref(),
            "secret read refused"
        );
        let mut event = self.event(ctx, uri);
        event.decision = decision;
        event.code = error.code();
        event.reason = error.deny_reason();
        self.inner.audit.record(&event);
    }
}

/// The grant key: subject and tenant length-prefixed (so no subject can forge another's
/// key), the action, then the canonical URI.
fn grant_key(subject: &str, tenant: &str, uri: &SecretUri) -> String {
    let uri = uri.as_str();
    let mut key = String::with_capacity(subject.len() + tenant.len() + uri.len() + 32);
    for field in [subject, tenant] {
        push_decimal(&mut key, field.len());
        key.push(':');
        key.push_str(field);
    }
    key.push_str("execute:");
    key.push_str(uri);
    key
}

fn push_decimal(out: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|d| char::from(*d)));
}

/// Both absent, or both present and equal. The bytes are compared without early exit and the
/// verdict taken with `subtle`, so the time does not depend on where they differ (lengths are
/// not secret: thumbprints have a fixed length).
fn same_binding(grant: Option<&str>, caller: Option<&str>) -> bool {
    match (grant, caller) {
        (None, None) => true,
        (Some(a), Some(b)) if a.len() == b.len() => {
            let diff = a
                .bytes()
                .zip(b.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y));
            bool::from(diff.ct_eq(&0))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_keys_cannot_collide_across_fields() {
        let uri = SecretUri::parse("file://m/x").unwrap();
        assert_ne!(grant_key("a:b", "c", &uri), grant_key("a", "b:c", &uri));
        assert_eq!(grant_key("s", "t", &uri), "1:s1:texecute:file://m/x");
        let long = "s".repeat(1234);
        assert!(grant_key(&long, "", &uri).starts_with("1234:s"));
    }

    #[test]
    fn binding_comparison() {
        assert!(same_binding(None, None));
        assert!(same_binding(Some("a"), Some("a")));
        assert!(!same_binding(Some("a"), Some("b")));
        assert!(!same_binding(Some("a"), None));
        assert!(!same_binding(None, Some("a")));
        assert!(!same_binding(Some("a"), Some("ab")));
    }
}
