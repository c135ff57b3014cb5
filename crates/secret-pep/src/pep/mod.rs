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
    AuditDecision, AuditEvent, AuditHook, BindingKind, DenyReason, ExecutionContext, Grant,
    NoopAudit, PdpSettings, PepConfig, PepError,
};

/// The Policy Enforcement Point: decides whether a caller may read a secret, fail closed.
///
/// Cheap to clone (one `Arc`); share one per tenant across tasks.
///
/// # The flow ([`Pep::authorize`])
/// 1. Parse and canonicalize the URI (`ILLEGAL_SEGMENT`, …).
/// 2. Tenant mount guard (`TENANT_MOUNT_MISMATCH`).
/// 3. Subject present (`AUTHZ_DENIED`/`SUBJECT_MISSING`), audience (`AUDIENCE`; a missing
///    `aud` too unless [`PepConfig::require_audience`] is off), a `jti` while anti-replay is on
///    (`JTI_MISSING`, unless [`PepConfig::require_jti`] is off). Checked on every call, so a
///    token for another service cannot ride a warm grant.
/// 4. Negative cache (`NEGATIVE_CACHED`).
/// 5. Grant for (tenant, subject, issuer, client id, sorted roles, sender binding, `execute`,
///    canonical URI) — everything the PDP decides on: a live cached one, or the PDP is asked
///    (`PDP_DENY`, `UNKNOWN_OBLIGATION`, `PDP_UNAVAILABLE`); concurrent misses share one PDP
///    call. Denials are negative-cached; unavailability is not.
/// 6. Sender binding: the grant's binding vs the caller's `cnf_jkt`, else mTLS thumbprint,
///    compared in constant time (`BINDING_DRIFT`). As the key holds the binding, this fails
///    only when a PDP bound its grant to something other than what was asked.
/// 7. `jti` anti-replay on every call, cold or warm grant (`REPLAY`).
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
    allow_dev_pdp: bool,
}

impl PepBuilder {
    /// Lets an allow-all development PDP ([`DevAllowAll`], `ENABLE_AUTHORIZATION=false`) run
    /// when `ENVIRONMENT` is **unset** — for tests, doctests and benchmarks. It never
    /// overrides an `ENVIRONMENT` that is set to anything outside
    /// [`DEVELOPMENT_ENVIRONMENTS`](crate::DEVELOPMENT_ENVIRONMENTS) (`production`, `staging`,
    /// …): those are refused whatever this says.
    #[must_use]
    pub fn allow_dev_pdp(mut self, allow: bool) -> Self {
        self.allow_dev_pdp = allow;
        self
    }

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
    /// `CONFIG`: invalid settings (see [`PepConfig::validate`]), no PDP at all, an invalid
    /// AuthZEN configuration, or an allow-all development PDP
    /// ([`SecretPolicyService::is_development`]) — whether from
    /// [`PdpSettings::DisabledForDevelopment`] or given to [`Self::pdp`] — while `ENVIRONMENT`
    /// is not one of [`DEVELOPMENT_ENVIRONMENTS`](crate::DEVELOPMENT_ENVIRONMENTS) (unset is
    /// accepted only with [`Self::allow_dev_pdp`]).
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
                // Checked before the constructor logs its warning.
                config.check_dev_pdp(self.allow_dev_pdp)?;
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
        // Whatever path installed it, an allow-all PDP runs only in development.
        if pdp.is_development() {
            config.check_dev_pdp(self.allow_dev_pdp)?;
        }
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
///
/// Dropping it unused wastes one of the grant's uses and skips [`Pep::audit_read`].
#[must_use = "an authorization takes a grant use; read with `uri()` and report with `Pep::audit_read`"]
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

/// One URI of a [`BatchReport`]. `Debug` shows the URI redacted.
#[non_exhaustive]
pub struct BatchItem {
    /// The canonical URI.
    pub uri: SecretUri,
    /// Whether it was required.
    pub required: bool,
    /// A grant is cached for it, or why not.
    pub status: BatchStatus,
}

impl fmt::Debug for BatchItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchItem")
            .field("uri", &self.uri.redacted().to_string())
            .field("required", &self.required)
            .field("status", &self.status)
            .finish()
    }
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
            allow_dev_pdp: false,
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
    /// #     .with_environment("test")
    /// #     .with_pdp(PdpSettings::DisabledForDevelopment))?;
    /// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
    /// let ctx = ExecutionContext::new("alice").with_aud(["crud.secrets"]).with_jti("jti-1");
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
            let key = grant_key(&config.tenant_id, subject, ctx, uri);
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
                let key = grant_key(&config.tenant_id, subject, ctx, &decision.uri);
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
        let key = grant_key(&config.tenant_id, subject, ctx, uri);
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
        check_binding(&entry, ctx)?;
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

    /// Subject present, audience acceptable and, when required, a `jti` to check for replay;
    /// returns the subject.
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
        if config.anti_replay
            && config.require_jti
            && ctx.token_jti.as_deref().is_none_or(str::is_empty)
        {
            return Err(PepError::denied(DenyReason::JtiMissing));
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

/// The grant key: everything the PDP decides on about the caller — tenant, subject, issuer,
/// client id, the sorted and deduplicated roles and the sender binding (kind and value), each
/// length-prefixed so no value can forge another's — then the action and the canonical URI.
/// A token that differs in any of them (other roles, issuer, client or key) gets its own grant
/// from the PDP and never rides another token's.
fn grant_key(tenant: &str, subject: &str, ctx: &ExecutionContext, uri: &SecretUri) -> String {
    // Length-prefixed fields (`len:value`), so no two different inputs make the same key. No
    // digest: the key never leaves process memory, and hashing was most of a warm decision.
    let uri = uri.as_str();
    let mut key = KeyInput(String::with_capacity(256 + uri.len()));
    key.field("v2");
    key.field(tenant);
    key.field(subject);
    let mut roles: Vec<&str> = ctx.roles.iter().map(String::as_str).collect();
    roles.sort_unstable();
    roles.dedup();
    key.count(roles.len());
    for role in roles {
        key.field(role);
    }
    key.field(match ctx.binding_kind() {
        BindingKind::Jkt => "j",
        BindingKind::Mtls => "m",
        BindingKind::None => "-",
    });
    key.field(ctx.sender_binding().unwrap_or_default());
    key.optional(ctx.issuer.as_deref());
    key.optional(ctx.client_id.as_deref());
    key.0.push_str("execute:");
    key.0.push_str(uri);
    key.0
}

/// The grant key under construction: length-prefixed fields.
struct KeyInput(String);

impl KeyInput {
    fn field(&mut self, value: &str) {
        self.number(value.len());
        self.0.push(':');
        self.0.push_str(value);
    }

    /// Decimal digits without `fmt` (this runs on every decision).
    fn number(&mut self, mut n: usize) {
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
        for &digit in &digits[at..] {
            self.0.push(char::from(digit));
        }
    }

    /// A count of the fields that follow, `n#` (a length prefix ends in `:` instead).
    fn count(&mut self, n: usize) {
        self.number(n);
        self.0.push('#');
    }

    /// An absent field is `-`, which no length prefix starts with.
    fn optional(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.field(value),
            None => self.0.push('-'),
        }
    }
}

/// Step 6: the grant's binding must be the caller's, same kind and value. The grant key holds
/// the caller's binding, so a grant is only found by callers presenting the binding it was
/// asked for; this still catches a PDP whose grant is bound to something other than what was
/// asked (defence in depth).
fn check_binding(entry: &GrantEntry, ctx: &ExecutionContext) -> Result<(), PepError> {
    if entry.binding_kind != ctx.binding_kind()
        || !same_binding(entry.grant.cnf_binding.as_deref(), ctx.sender_binding())
    {
        return Err(PepError::BindingDrift {
            expected: entry.binding_kind,
            presented: ctx.binding_kind(),
        });
    }
    Ok(())
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
    use crate::pdp::PdpFuture;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const URI: &str = "openbao+kv2://secret/app/api#token";
    const ISSUER: &str = "https://issuer.test";

    /// Permits a `reader` of [`ISSUER`] whose client is not `evil` (5 uses, bound to the
    /// request's binding, or to `bind_to` when set); counts calls.
    #[derive(Debug, Default)]
    struct RolePdp {
        calls: AtomicUsize,
        bind_to: Option<&'static str>,
    }

    impl SecretPolicyService for RolePdp {
        fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let ctx = request.context;
            let permit = ctx.roles.iter().any(|r| r == "reader")
                && ctx.issuer.as_deref() == Some(ISSUER)
                && ctx.client_id.as_deref() != Some("evil");
            let outcome = if permit {
                let binding = self.bind_to.or(request.cnf_binding);
                Ok(Grant::new("g", Duration::from_secs(60), 5).bound_to(binding))
            } else {
                Err(PepError::denied(DenyReason::PdpDeny))
            };
            Box::pin(std::future::ready(outcome))
        }
    }

    fn config() -> PepConfig {
        PepConfig::new("t1", "secret".parse().unwrap())
    }

    fn reader(jti: &str) -> ExecutionContext {
        ExecutionContext::new("alice")
            .with_aud(["crud.secrets"])
            .with_roles(["reader"])
            .with_issuer(ISSUER)
            .with_jti(jti)
    }

    fn pep(config: PepConfig, pdp: Arc<RolePdp>) -> Pep {
        Pep::builder(config).pdp(pdp).build().unwrap()
    }

    fn reason<T>(result: Result<T, PepError>) -> Option<DenyReason> {
        result.err().and_then(|e| e.deny_reason())
    }

    #[tokio::test]
    async fn a_warm_grant_serves_only_tokens_the_pdp_decided_on() {
        let pdp = Arc::new(RolePdp::default());
        let pep = pep(config(), Arc::clone(&pdp));
        let calls = || pdp.calls.load(Ordering::SeqCst);
        let _ = pep.authorize(&reader("j1"), URI).await.unwrap();
        let _ = pep.authorize(&reader("j2"), URI).await.unwrap();
        assert_eq!(calls(), 1, "warm grant reused by the same token shape");

        // Same subject, other roles / issuer / client: the PDP is asked again and says no.
        let no_roles = reader("j3").with_roles(Vec::<String>::new());
        assert_eq!(
            reason(pep.authorize(&no_roles, URI).await),
            Some(DenyReason::PdpDeny)
        );
        assert_eq!(calls(), 2);
        let other_issuer = reader("j4").with_issuer("https://other.test");
        assert_eq!(
            reason(pep.authorize(&other_issuer, URI).await),
            Some(DenyReason::PdpDeny)
        );
        assert_eq!(calls(), 3);
        let mut evil = reader("j5");
        evil.client_id = Some("evil".to_owned());
        assert_eq!(
            reason(pep.authorize(&evil, URI).await),
            Some(DenyReason::PdpDeny)
        );
        assert_eq!(calls(), 4);

        // Their denials are negative-cached under their own keys, not the reader's.
        assert_eq!(
            reason(pep.authorize(&no_roles.with_jti("j6"), URI).await),
            Some(DenyReason::NegativeCached)
        );
        assert_eq!(
            pep.authorize(&reader("j7"), URI)
                .await
                .unwrap()
                .use_number(),
            3
        );
        assert_eq!(calls(), 4);

        // Role order and duplicates do not matter.
        let _ = pep
            .authorize(&reader("j8").with_roles(["reader", "ops"]), URI)
            .await
            .unwrap();
        let same = reader("j9").with_roles(["ops", "reader", "ops"]);
        assert_eq!(pep.authorize(&same, URI).await.unwrap().use_number(), 2);
        assert_eq!(calls(), 5);

        // A second DPoP key of the same subject gets its own grant, not BINDING_DRIFT.
        let k1 = pep
            .authorize(&reader("j10").with_cnf_jkt("key-one"), URI)
            .await
            .unwrap();
        let k2 = pep
            .authorize(&reader("j11").with_cnf_jkt("key-two"), URI)
            .await
            .unwrap();
        assert_eq!(calls(), 7);
        assert_eq!(k1.grant().cnf_binding.as_deref(), Some("key-one"));
        assert_eq!(k2.grant().cnf_binding.as_deref(), Some("key-two"));
        assert_eq!((k1.use_number(), k2.use_number()), (1, 1));
        let mtls = pep
            .authorize(&reader("j12").with_mtls_thumbprint("key-one"), URI)
            .await
            .unwrap();
        assert_eq!(
            mtls.use_number(),
            1,
            "a certificate is another binding than a key"
        );
        assert_eq!(calls(), 8);
    }

    #[tokio::test]
    async fn a_batch_warms_only_its_own_token_shape() {
        let pdp = Arc::new(RolePdp::default());
        let pep = pep(config(), Arc::clone(&pdp));
        let report = pep
            .authorize_batch(&reader("b1"), &[URI], &[])
            .await
            .unwrap();
        assert!(report.is_satisfied());
        let no_roles = reader("b2").with_roles(Vec::<String>::new());
        assert_eq!(
            reason(pep.authorize(&no_roles, URI).await),
            Some(DenyReason::PdpDeny)
        );
        assert_eq!(
            pep.authorize(&reader("b3"), URI)
                .await
                .unwrap()
                .use_number(),
            1
        );
        assert_eq!(pdp.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn binding_drift_remains_for_a_pdp_that_binds_elsewhere() {
        let pdp = Arc::new(RolePdp {
            bind_to: Some("someone-else"),
            ..RolePdp::default()
        });
        let pep = pep(config(), pdp);
        let err = pep
            .authorize(&reader("d1").with_cnf_jkt("mine"), URI)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "BINDING_DRIFT");
        assert!(!err.to_string().contains("mine"), "{err}");
    }

    #[test]
    fn check_binding_compares_kind_and_value() {
        let now = Instant::now();
        let bound = |b: Option<&str>, kind| {
            GrantEntry::new(
                Grant::new("g", Duration::from_secs(1), 1).bound_to(b),
                now,
                kind,
            )
        };
        let jkt_a = bound(Some("a"), BindingKind::Jkt);
        let ctx = ExecutionContext::new("s");
        assert!(check_binding(&jkt_a, &ctx.clone().with_cnf_jkt("a")).is_ok());
        for presented in [
            ctx.clone().with_cnf_jkt("b"),
            ctx.clone().with_mtls_thumbprint("a"),
            ctx.clone(),
        ] {
            let err = check_binding(&jkt_a, &presented).unwrap_err();
            assert_eq!(err.code(), "BINDING_DRIFT");
        }
        let unbound = bound(None, BindingKind::None);
        assert!(check_binding(&unbound, &ctx).is_ok());
        assert!(check_binding(&unbound, &ctx.with_cnf_jkt("a")).is_err());
    }

    #[tokio::test]
    async fn jti_and_audience_are_required_by_default() {
        let pdp = Arc::new(RolePdp::default());
        let strict = pep(config(), Arc::clone(&pdp));
        let mut no_jti = reader("x");
        no_jti.token_jti = None;
        assert_eq!(
            reason(strict.authorize(&no_jti, URI).await),
            Some(DenyReason::JtiMissing)
        );
        let empty_jti = reader("");
        assert_eq!(
            reason(strict.authorize(&empty_jti, URI).await),
            Some(DenyReason::JtiMissing)
        );
        let no_aud = reader("a1").with_aud(Vec::<String>::new());
        assert_eq!(
            reason(strict.authorize(&no_aud, URI).await),
            Some(DenyReason::Audience)
        );
        assert_eq!(
            reason(strict.authorize_batch(&no_jti, &[URI], &[]).await),
            Some(DenyReason::JtiMissing)
        );
        assert_eq!(
            pdp.calls.load(Ordering::SeqCst),
            0,
            "refused before the PDP"
        );

        // The opt-outs.
        let lenient = pep(
            config()
                .with_required_jti(false)
                .with_required_audience(false),
            Arc::clone(&pdp),
        );
        let _ = lenient.authorize(&no_jti, URI).await.unwrap();
        let _ = lenient.authorize(&no_aud, URI).await.unwrap();
        let no_replay = pep(
            config().with_anti_replay(false, Duration::from_secs(1)),
            Arc::clone(&pdp),
        );
        let _ = no_replay.authorize(&no_jti, URI).await.unwrap();
    }

    #[test]
    fn an_allow_all_pdp_runs_only_in_development() {
        let build = |env: &str, allow: bool, via_settings: bool| {
            let config = config().with_environment(env);
            let builder = if via_settings {
                Pep::builder(config.with_pdp(PdpSettings::DisabledForDevelopment))
            } else {
                Pep::builder(config).pdp(Arc::new(DevAllowAll::new()))
            };
            builder
                .allow_dev_pdp(allow)
                .build()
                .map(|_| ())
                .map_err(|e| e.code())
        };
        for via_settings in [true, false] {
            for env in ["dev", " Development ", "test", "local", "CI"] {
                assert_eq!(build(env, false, via_settings), Ok(()), "{env}");
            }
            for env in [
                "production",
                "prod",
                "prd",
                "staging",
                "live",
                "Production ",
            ] {
                assert_eq!(build(env, false, via_settings), Err("CONFIG"), "{env}");
                assert_eq!(
                    build(env, true, via_settings),
                    Err("CONFIG"),
                    "{env} + allow"
                );
            }
            // Unset (empty counts as unset): only with the explicit builder opt-in.
            assert_eq!(build("", false, via_settings), Err("CONFIG"));
            assert_eq!(build("", true, via_settings), Ok(()));
        }
        // A real PDP does not care about the environment.
        let real = Pep::builder(config().with_environment("production"))
            .pdp(Arc::new(RolePdp::default()))
            .build();
        assert!(real.is_ok());
    }

    #[test]
    fn batch_items_debug_redacted() {
        let uri = SecretUri::parse("openbao+kv2://secret/team/canary-path#key").unwrap();
        let item = BatchItem {
            uri,
            required: true,
            status: BatchStatus::Failed(BatchFailure::PdpUnavailable),
        };
        let shown = format!("{:?}", BatchReport { items: vec![item] });
        assert!(!shown.contains("canary-path"), "{shown}");
        assert!(shown.contains("openbao+kv2://secret/…"), "{shown}");
    }

    #[test]
    fn grant_keys_separate_every_decision_input() {
        let uri = SecretUri::parse("file://m/x").unwrap();
        let ctx = ExecutionContext::new("s")
            .with_roles(["a", "b"])
            .with_issuer("i")
            .with_cnf_jkt("k");
        let key = |tenant: &str, subject: &str, ctx: &ExecutionContext| {
            grant_key(tenant, subject, ctx, &uri)
        };
        let base = key("t", "s", &ctx);
        assert!(base.ends_with("execute:file://m/x"), "{base}");
        assert!(base.starts_with("2:v21:t1:s2#1:a1:b1:j1:k1:i-"), "{base}");
        let long = "x".repeat(1234);
        assert!(key(&long, "s", &ctx).starts_with("2:v21234:x"));
        assert_ne!(key("a:b", "c", &ctx), key("a", "b:c", &ctx));
        let mut client = ctx.clone();
        client.client_id = Some("c".to_owned());
        let variants = [
            key("t", "s2", &ctx),
            key("t2", "s", &ctx),
            key("t", "s", &ctx.clone().with_roles(["a"])),
            key("t", "s", &ctx.clone().with_roles(["ab"])),
            key("t", "s", &ctx.clone().with_issuer("j")),
            key("t", "s", &client),
            key("t", "s", &ctx.clone().with_cnf_jkt("k2")),
            key(
                "t",
                "s",
                &ctx.clone().with_cnf_jkt("").with_mtls_thumbprint("k"),
            ),
            grant_key("t", "s", &ctx, &SecretUri::parse("file://m/y").unwrap()),
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(*v, base, "variant {i}");
        }
        assert_eq!(
            base,
            key("t", "s", &ctx.clone().with_roles(["b", "a", "a"]))
        );
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
