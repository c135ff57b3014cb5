//! [`Pep`]: the enforcement flow.

mod audit;
mod batch;
mod builder;
mod shared;
mod telemetry;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use secret_audit::Auditor;
use secret_telemetry::Metrics;
use secret_uri::SecretUri;
use subtle::ConstantTimeEq;
use tracing::{Instrument as _, Span};

use crate::cache::{Found, GrantCache, GrantEntry};
use crate::config::MAX_WINDOW;
use crate::key::{Backends, grant_key, pdp_uri};
use crate::pdp::{AccessRequest, SecretPolicyService};
use crate::replay::ReplayTicket;
use crate::{BindingKind, DenyReason, ExecutionContext, Grant, PepConfig, PepError};
use shared::{Shared, SharedUse};
use telemetry::Source;

pub use batch::{BatchItem, BatchReport, BatchStatus};
pub use builder::PepBuilder;

/// The Policy Enforcement Point: decides whether a caller may read a secret, fail closed.
///
/// Cheap to clone (one `Arc`); share one per tenant across tasks.
///
/// # The flow ([`Pep::authorize`])
/// 1. Parse and canonicalize the URI (`ILLEGAL_SEGMENT`, …).
/// 2. Tenant mount guard (`TENANT_MOUNT_MISMATCH`).
/// 3. The caller: subject present (`AUTHZ_DENIED`/`SUBJECT_MISSING`), audience (`AUDIENCE`;
///    a missing `aud` too unless [`PepConfig::require_audience`] is off), a `jti` while
///    anti-replay is on (`JTI_MISSING`, unless [`PepConfig::require_jti`] is off). Checked on
///    every call, so a token for another service cannot ride a warm grant.
/// 4. The token's `exp`, when known: expired (`TOKEN_EXPIRED`), or living longer than the
///    anti-replay store may remember its `jti` (`TOKEN_LIFETIME`).
/// 5. `jti` anti-replay (`REPLAY`, `REPLAY_STORE_FULL`), before any PDP call: a replayed
///    token never costs a PDP call nor shows up as a permit in the PDP's log. The `jti` is
///    remembered for `ANTI_REPLAY_TTL_S`, or until `exp` plus the clock skew when later.
/// 6. The grant for the grant key (the caller's decision inputs, the backend and the
///    resource; see `docs/pep.md`): a live cached one, a cached denial (`NEGATIVE_CACHED`), or
///    the PDP is asked about the canonical URI (`PDP_DENY`, `UNKNOWN_OBLIGATION`,
///    `UNSUPPORTED_OBLIGATION`, `PDP_UNAVAILABLE`, `BINDING_DRIFT` for a PDP that binds to
///    another key). Concurrent misses share one PDP call and its answer.
/// 7. One use taken atomically. A spent grant is dropped and the next call asks the PDP for
///    a fresh decision: no decision ever serves more than its `max_uses` reads.
///
/// Then the caller reads the secret with [`Authorized::uri`], gives the use back with
/// [`Authorized::give_back`] if the read failed before the vault returned data, and reports
/// with [`Pep::audit_read`] — or lets [`Pep::execute`] do it all. Denials are audited by
/// `authorize` itself.
///
/// # Telemetry
/// Each decision runs in a `pep_decision` span (DEBUG) with `outcome` (`permit`, `deny`,
/// `error`), `reason` (a refusal's deny reason or error code, such as `REPLAY` or
/// `PDP_UNAVAILABLE`; for a permit `grant` when a grant the PEP held served it, `pdp` when a
/// fresh PDP decision did), `provider`, `mount` (when the tenant allows it) and the audit's
/// keyed `resource_ref` when auditing is on; never the subject, the `jti`, a token or the
/// URI. Each is counted once in `secrets.pep.decisions` (`outcome`, `reason`). Each PDP call
/// runs in a `pdp_call` span (DEBUG: `decision`, `latency_ms`, `batch_size` for a batch,
/// `cause` of a failure, and `breaker` — `closed`, `open`, `half_open` — from the AuthZEN
/// client) and is timed into `secrets.pdp.duration` (`decision`). The instruments are
/// [`PepBuilder::metrics`]'s, by default [`Metrics::global`] at build.
///
/// # State
/// Grants, use counts, `jti`s and denials live in the PEP's own memory unless
/// [`PepBuilder::state`] (or `REDIS_URL`, feature `redis`) puts them in stores every replica
/// shares; a store that cannot be reached fails closed (`STATE_STORE_UNAVAILABLE`, counted in
/// `secrets.pep.state_store.failures`), anti-replay alone optionally open
/// ([`PepConfig::anti_replay_fail_open`]). See `docs/pep.md`, *Many replicas*.
#[derive(Clone)]
pub struct Pep {
    inner: Arc<Inner>,
}

struct Inner {
    config: PepConfig,
    pdp: Arc<dyn SecretPolicyService>,
    auditor: Arc<Auditor>,
    cache: GrantCache,
    /// The PEP's own state stores ([`PepBuilder::state`]), if any; `None` keeps everything in
    /// `cache` (the default, fastest flow).
    shared: Option<Shared>,
    backends: Backends,
    metrics: Metrics,
}

impl fmt::Debug for Pep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pep")
            .field("tenant", &self.inner.config.tenant_id)
            .field("pdp", &self.inner.pdp)
            .field("auditor", &self.inner.auditor)
            .field("cache", &self.inner.cache)
            .field("shared", &self.inner.shared)
            .field("backends", &self.inner.backends)
            .finish()
    }
}

/// A granted read: the canonical URI to read and the grant it used. Returned by
/// [`Pep::authorize`].
///
/// Dropping it unused wastes one of the grant's uses and skips [`Pep::audit_read`].
#[must_use = "an authorization takes a grant use; read with `uri()` and report with `Pep::audit_read`"]
pub struct Authorized {
    uri: SecretUri,
    entry: Held,
    use_number: u32,
    /// When the use was granted: a read's audited latency runs from here.
    granted_at: Instant,
    /// The URI's audit reference, from the decision's event (the read's reuses it).
    resource_ref: Option<secret_audit::ResourceRef>,
}

impl fmt::Debug for Authorized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorized")
            .field("uri", &self.uri.redacted().to_string())
            .field("grant_id", &self.grant().grant_id)
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
        match &self.entry {
            Held::Local(entry) => &entry.grant,
            Held::Shared(used) => &used.grant,
        }
    }

    /// Which use of the grant this is (1-based).
    #[must_use]
    pub fn use_number(&self) -> u32 {
        self.use_number
    }

    /// Uses left on the grant now (other callers may be taking them). For a grant held in a
    /// shared store ([`PepBuilder::state`]), as of this decision.
    #[must_use]
    pub fn remaining_uses(&self) -> u32 {
        match &self.entry {
            Held::Local(entry) => entry.grant.max_uses.saturating_sub(entry.uses()),
            Held::Shared(used) => used.grant.max_uses.saturating_sub(used.used),
        }
    }

    /// Time left before the grant expires.
    #[must_use]
    pub fn expires_in(&self) -> Duration {
        let expires_at = match &self.entry {
            Held::Local(entry) => entry.expires_at,
            Held::Shared(used) => used.expires_at,
        };
        expires_at.saturating_duration_since(Instant::now())
    }

    /// Gives this use back to the grant, for a read that failed before the vault returned any
    /// data (a connection error, a timeout, a 5xx): the grant then serves one more read.
    /// Atomic, once per authorization (it consumes `self`), and never past `max_uses`: a
    /// decision still serves at most `max_uses` reads that returned data. The `jti` stays
    /// used. Returns whether a use went back (`false` if the count was already zero).
    ///
    /// For a grant held in a shared store ([`PepBuilder::state`], e.g. Redis) the use goes
    /// back by a store call: this spawns it on the current Tokio runtime and returns whether
    /// it was started (`false` outside a runtime). Async code should prefer
    /// [`give_back_async`](Self::give_back_async), which waits for the store's answer.
    pub fn give_back(self) -> bool {
        match self.entry {
            Held::Local(entry) => entry.give_back(),
            Held::Shared(used) => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    drop(runtime.spawn(used.give_back_task()));
                    true
                }
                Err(_) => false,
            },
        }
    }

    /// [`give_back`](Self::give_back), waiting for a shared store's answer: whether a use
    /// went back (`false` if the count was already zero, the grant was replaced or spent, or
    /// the store could not be reached — the use is then lost, never doubled).
    pub async fn give_back_async(self) -> bool {
        match self.entry {
            Held::Local(entry) => entry.give_back(),
            Held::Shared(used) => used.give_back().await,
        }
    }
}

impl Pep {
    /// A PEP using the PDP `config.pdp` names and no auditor.
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

    /// A builder, to set a custom PDP, auditor or backend map.
    #[must_use]
    pub fn builder(config: PepConfig) -> PepBuilder {
        PepBuilder {
            config,
            pdp: None,
            auditor: None,
            allow_dev_pdp: false,
            backends: Backends::default(),
            metrics: None,
            state: None,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &PepConfig {
        &self.inner.config
    }

    /// The grant cache, negative cache and anti-replay store in the PEP's own memory. With a
    /// [`PepState`](crate::PepState) of its own ([`PepBuilder::state`], `REDIS_URL`), the
    /// stores it replaces live there instead and this cache holds only what stayed local.
    #[must_use]
    pub fn cache(&self) -> &GrantCache {
        &self.inner.cache
    }

    /// The instruments decisions and PDP calls are recorded with ([`PepBuilder::metrics`]).
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
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
                let span = telemetry::decision_span();
                span.in_scope(|| self.audit_error(ctx, None, &error));
                self.count_refusal(&span, &error);
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
        let span = telemetry::decision_span();
        self.describe(&span, &uri);
        let started = Instant::now();
        let decided = self.decide(ctx, &uri).instrument(span.clone()).await;
        self.conclude(ctx, uri, decided, started, &span)
    }

    /// A decision as an [`Authorized`], audited and counted either way (`started`: when it
    /// began; `span`: its `pep_decision` span).
    fn conclude(
        &self,
        ctx: &ExecutionContext,
        uri: SecretUri,
        decided: Result<Use, PepError>,
        started: Instant,
        span: &Span,
    ) -> Result<Authorized, PepError> {
        match decided {
            Ok(Use {
                entry,
                use_number,
                source,
            }) => {
                let granted_at = Instant::now();
                let grant = match &entry {
                    Held::Local(local) => &local.grant,
                    Held::Shared(used) => &used.grant,
                };
                let resource_ref =
                    self.audit_granted(ctx, &uri, grant, use_number, granted_at - started);
                Self::record_ref(span, resource_ref.as_ref());
                self.count_permit(span, source);
                Ok(Authorized {
                    uri,
                    entry,
                    use_number,
                    granted_at,
                    resource_ref,
                })
            }
            Err(error) => {
                let resource_ref = span.in_scope(|| self.audit_error(ctx, Some(&uri), &error));
                Self::record_ref(span, resource_ref.as_ref());
                self.count_refusal(span, &error);
                Err(error)
            }
        }
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

    /// Steps 2–7 of the flow.
    async fn decide(&self, ctx: &ExecutionContext, uri: &SecretUri) -> Result<Use, PepError> {
        let config = &self.inner.config;
        config.allowed_mounts.check(uri)?;
        let subject = self.check_caller(ctx)?;
        let now = Instant::now();
        if let Some(shared) = &self.inner.shared {
            return Box::pin(self.decide_shared(shared, ctx, subject, uri, now)).await;
        }
        self.check_token(ctx, subject, now, Replay::Record)?;
        let key = self.key(ctx, subject, uri);
        self.grant(ctx, subject, uri, &key, now).await
    }

    /// Step 6 and 7: a use of the grant for `key`, from the cache or a fresh PDP decision.
    async fn grant(
        &self,
        ctx: &ExecutionContext,
        subject: &str,
        uri: &SecretUri,
        key: &str,
        started: Instant,
    ) -> Result<Use, PepError> {
        let cache = &self.inner.cache;
        // The warm path stays synchronous; the (large) PDP future is boxed off it.
        // Expiry is judged by the clock now; `started` only tells which failure a caller
        // waited on.
        if let Some((entry, use_number)) = cache.take_ready(key, Instant::now()) {
            return Ok(Use::local(entry, use_number, Source::Grant));
        }
        Box::pin(async move {
            match cache.find(key, started).await {
                Found::Used(entry, use_number) => Ok(Use::local(entry, use_number, Source::Grant)),
                Found::Refused(error) => Err(error),
                Found::Vacant(guard) => match self.issue(ctx, subject, uri).await {
                    Ok(entry) => {
                        let entry = Arc::new(entry);
                        // The caller that asked takes its use before anyone else can.
                        let use_number = entry.try_use();
                        guard.grant(Arc::clone(&entry));
                        use_number
                            .map(|n| Use::local(entry, n, Source::Pdp))
                            .ok_or(PepError::denied(DenyReason::UsesExhausted))
                    }
                    Err(error) => {
                        guard.refuse(cache, &error);
                        Err(error)
                    }
                },
            }
        })
        .await
    }

    /// The subject, if the caller is acceptable: subject present, audience, and a `jti` when
    /// required.
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

    /// Steps 4 and 5: the token's lifetime, then its `jti` (recorded, or only checked for a
    /// batch that reads nothing) in the PEP's own memory.
    fn check_token(
        &self,
        ctx: &ExecutionContext,
        subject: &str,
        now: Instant,
        replay: Replay,
    ) -> Result<(), PepError> {
        let lifetime = self.token_lifetime(ctx)?;
        let Some(jti) = self.replay_jti(ctx) else {
            return Ok(());
        };
        let cache = &self.inner.cache;
        match replay {
            Replay::Peek => {
                if cache.seen_jti(ctx.issuer.as_deref(), jti, now) {
                    return Err(PepError::denied(DenyReason::Replay));
                }
                Ok(())
            }
            Replay::Record => {
                let window = self.replay_window(lifetime);
                let until = now
                    .checked_add(window)
                    .or_else(|| now.checked_add(MAX_WINDOW))
                    .unwrap_or(now);
                let ticket = ReplayTicket {
                    issuer: ctx.issuer.as_deref(),
                    subject,
                    jti,
                    until,
                };
                cache.check_replay(ticket, now).map_err(PepError::denied)
            }
        }
    }

    /// Step 4: how long the token still lives (plus the skew), when its `exp` is known;
    /// `TOKEN_EXPIRED`, or `TOKEN_LIFETIME` for a token the replay window cannot cover.
    fn token_lifetime(&self, ctx: &ExecutionContext) -> Result<Option<Duration>, PepError> {
        let config = &self.inner.config;
        let Some(exp) = ctx.exp else {
            return Ok(None);
        };
        let skew = config.anti_replay_clock_skew.as_secs();
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if exp.saturating_add(skew) < unix_now {
            return Err(PepError::denied(DenyReason::TokenExpired));
        }
        let left = exp.saturating_sub(unix_now);
        if config.anti_replay && left > config.anti_replay_max_ttl.as_secs().saturating_add(skew) {
            return Err(PepError::denied(DenyReason::TokenLifetime));
        }
        Ok(Some(Duration::from_secs(left.saturating_add(skew))))
    }

    /// The `jti` to check, while anti-replay is on and the context has one.
    fn replay_jti<'c>(&self, ctx: &'c ExecutionContext) -> Option<&'c str> {
        if !self.inner.config.anti_replay {
            return None;
        }
        ctx.token_jti.as_deref().filter(|j| !j.is_empty())
    }

    /// How long a `jti` is remembered: `ANTI_REPLAY_TTL_S`, or the token's `lifetime` when
    /// longer, at most [`MAX_WINDOW`].
    fn replay_window(&self, lifetime: Option<Duration>) -> Duration {
        let ttl = self.inner.config.anti_replay_ttl;
        lifetime.map_or(ttl, |left| left.max(ttl)).min(MAX_WINDOW)
    }

    fn key(&self, ctx: &ExecutionContext, subject: &str, uri: &SecretUri) -> String {
        let inner = &*self.inner;
        let backend = inner.backends.of(uri.provider());
        grant_key(&inner.config.tenant_id, subject, ctx, backend, uri)
    }

    fn access_request<'a>(
        &'a self,
        ctx: &'a ExecutionContext,
        subject: &'a str,
        uri: &'a SecretUri,
    ) -> AccessRequest<'a> {
        let config = &self.inner.config;
        let mut request = AccessRequest::new(subject, &config.tenant_id, uri, ctx);
        request.purpose = config.purpose.as_deref();
        request.cnf_binding = ctx.sender_binding();
        request.defaults = config.grant_defaults;
        request
    }

    /// Asks the PDP for a grant for `uri` (as its canonical resource id).
    async fn issue(
        &self,
        ctx: &ExecutionContext,
        subject: &str,
        uri: &SecretUri,
    ) -> Result<GrantEntry, PepError> {
        let resource = pdp_uri(uri);
        let request = self.access_request(ctx, subject, &resource);
        let grant = self.ask_pdp(&request).await?;
        // The TTL runs from the answer, not from the question.
        self.accept(grant, ctx, Instant::now())
    }

    /// A PDP's permit as a cached grant, or why it cannot be honored.
    fn accept(
        &self,
        mut grant: Grant,
        ctx: &ExecutionContext,
        issued_at: Instant,
    ) -> Result<GrantEntry, PepError> {
        if grant.wrap_ttl.is_some() || !grant.must_revalidate_on.is_empty() {
            tracing::debug!("PDP permit carries an obligation this PEP cannot honor; denying");
            return Err(PepError::denied(DenyReason::UnsupportedObligation));
        }
        if grant.max_uses == 0 || grant.uses >= grant.max_uses {
            return Err(PepError::denied(DenyReason::UsesExhausted));
        }
        // The grant key holds the caller's binding, so the PEP binds the grant itself; a PDP
        // that bound it to another key or certificate is refused.
        let binding = ctx.sender_binding();
        match grant.cnf_binding.as_deref() {
            None => grant.cnf_binding = binding.map(str::to_owned),
            Some(bound) if same_binding(Some(bound), binding) => {}
            Some(_) => {
                return Err(PepError::BindingDrift {
                    expected: match ctx.binding_kind() {
                        BindingKind::None => BindingKind::Jkt,
                        kind => kind,
                    },
                    presented: ctx.binding_kind(),
                });
            }
        }
        grant.ttl = grant.ttl.min(self.inner.config.grant_ttl_max);
        Ok(GrantEntry::new(grant, issued_at))
    }
}

/// The grant a use was taken from: in the PEP's own memory, or in a shared store.
enum Held {
    Local(Arc<GrantEntry>),
    Shared(Arc<SharedUse>),
}

/// One use of a grant: the grant, which use it is, and what served it.
struct Use {
    entry: Held,
    use_number: u32,
    source: Source,
}

impl Use {
    fn local(entry: Arc<GrantEntry>, use_number: u32, source: Source) -> Self {
        Self {
            entry: Held::Local(entry),
            use_number,
            source,
        }
    }

    fn shared(used: Arc<SharedUse>, source: Source) -> Self {
        Self {
            use_number: used.used,
            entry: Held::Shared(used),
            source,
        }
    }
}

/// Whether a call records its `jti` (a read) or only checks it (a batch that reads nothing).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Replay {
    Record,
    Peek,
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
mod mock_tests;
#[cfg(test)]
mod shared_tests;
#[cfg(test)]
mod telemetry_tests;
#[cfg(test)]
mod tests;
