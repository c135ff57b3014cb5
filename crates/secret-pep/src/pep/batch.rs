//! Batches: [`Pep::authorize_batch`] (decisions only) and [`Pep::authorize_many`] (one
//! `jti` check, one PDP batch, then a use per URI).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use secret_audit::{EventType, Outcome};
use secret_uri::SecretUri;
use tracing::Instrument as _;

use super::telemetry::{self, Source};
use super::{Authorized, Pep, Replay};
use crate::cache::{GrantEntry, Slot};
use crate::key::pdp_uri;
use crate::pdp::{BatchFailure, BatchRequest};
use crate::state::StoredGrant;
use crate::{DenyReason, ExecutionContext, PdpFailure, PepError};

/// The outcome of [`Pep::authorize_batch`]: one item per distinct URI, required ones first.
#[derive(Debug)]
pub struct BatchReport {
    pub(crate) items: Vec<BatchItem>,
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
    /// The grant was spent by other reads, or expired, before this report was made; the next
    /// read asks the PDP again.
    Spent {
        /// Its id.
        grant_id: String,
    },
    /// No grant: `DENY` (with a reason) or `PDP_UNAVAILABLE`.
    Failed(BatchFailure),
}

impl BatchStatus {
    /// `"GRANTED"`, `"SPENT"`, `"AUTHZ_DENIED"` or `"PDP_UNAVAILABLE"`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Granted { .. } => "GRANTED",
            Self::Spent { .. } => "SPENT",
            Self::Failed(failure) => failure.code(),
        }
    }

    /// The status of a grant held in a shared store.
    pub(crate) fn stored(stored: &StoredGrant) -> Self {
        let grant_id = stored.grant.grant_id.clone();
        if stored.expires_in.is_zero() {
            return Self::Spent { grant_id };
        }
        match stored.grant.max_uses.saturating_sub(stored.used) {
            0 => Self::Spent { grant_id },
            remaining_uses => Self::Granted {
                grant_id,
                remaining_uses,
            },
        }
    }

    pub(crate) fn granted(entry: &GrantEntry) -> Self {
        let grant_id = entry.grant.grant_id.clone();
        if entry.expires_at <= Instant::now() {
            // Expired before the report (a zero TTL, a slow batch): nothing is usable.
            return Self::Spent { grant_id };
        }
        match entry.grant.max_uses.saturating_sub(entry.uses()) {
            0 => Self::Spent { grant_id },
            remaining_uses => Self::Granted {
                grant_id,
                remaining_uses,
            },
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

    /// The items without a usable grant (failed or already spent).
    pub fn failures(&self) -> impl Iterator<Item = &BatchItem> + '_ {
        self.items
            .iter()
            .filter(|item| !matches!(item.status, BatchStatus::Granted { .. }))
    }
}

/// One URI to decide in a batch: its PDP id, whether it is required, and its grant key.
struct Planned {
    uri: SecretUri,
    required: bool,
    key: String,
}

impl Pep {
    /// Asks the PDP about many URIs at once (one AuthZEN `evaluations` call) and caches the
    /// grants, so the reads that follow are warm. URIs are deduplicated (as resources, so
    /// aliases count once), required ones first. Nothing is read, no use is taken and the
    /// `jti` is only checked, not recorded: every read still goes through
    /// [`Self::authorize`]. To read several secrets with one token, use
    /// [`Self::authorize_many`].
    ///
    /// # Errors
    /// A URI or tenant-mount error in either list, `SUBJECT_MISSING`, `AUDIENCE`,
    /// `JTI_MISSING`, `TOKEN_EXPIRED`, `TOKEN_LIFETIME` or an already used `jti` (`REPLAY`),
    /// all before any PDP call. Per-URI denials and PDP failures are in the report (`DENY`,
    /// `PDP_UNAVAILABLE`); check [`BatchReport::is_satisfied`].
    pub async fn authorize_batch(
        &self,
        ctx: &ExecutionContext,
        required: &[&str],
        optional: &[&str],
    ) -> Result<BatchReport, PepError> {
        let span = telemetry::decision_span();
        let result = self
            .batch(ctx, required, optional)
            .instrument(span.clone())
            .await;
        span.in_scope(|| match result {
            Err(error) => {
                self.audit_error(ctx, None, &error);
                self.count_refusal(&span, &error);
                Err(error)
            }
            Ok((report, sources)) => {
                self.audit_report(ctx, &report);
                self.count_report(&span, &report, &sources);
                Ok(report)
            }
        })
    }

    /// One decision counted per item of a batch report (a permit's reason from `sources`);
    /// the span shows the worst of them (`error` over `deny` over `permit`).
    fn count_report(&self, span: &tracing::Span, report: &BatchReport, sources: &[Source]) {
        let mut worst = None;
        for (item, source) in report.items.iter().zip(sources) {
            let labels = match &item.status {
                BatchStatus::Granted { .. } | BatchStatus::Spent { .. } => {
                    (telemetry::PERMIT, source.reason())
                }
                BatchStatus::Failed(failure) => telemetry::batch_failure(*failure),
            };
            self.inner.metrics.pep_decision(labels.0, labels.1);
            worst = Some(telemetry::worse(worst, labels));
        }
        if span.is_disabled() {
            return;
        }
        span.record("items", report.items.len());
        if let Some((outcome, reason)) = worst {
            span.record("outcome", outcome);
            span.record("reason", reason);
        }
    }

    /// One decision event per item of a batch report (granted, spent, denied or undecided).
    fn audit_report(&self, ctx: &ExecutionContext, report: &BatchReport) {
        let auditor = self.auditor();
        if !auditor.is_enabled() {
            return;
        }
        for item in &report.items {
            let (kind, outcome) = match &item.status {
                BatchStatus::Granted { .. } | BatchStatus::Spent { .. } => {
                    (EventType::AccessGranted, Outcome::Permit)
                }
                BatchStatus::Failed(BatchFailure::Deny { .. }) => {
                    (EventType::AccessDenied, Outcome::Deny)
                }
                BatchStatus::Failed(_) => (EventType::AccessDenied, Outcome::Error),
            };
            let mut event = self.event(kind, ctx, Some(&item.uri)).with_outcome(outcome);
            event = match &item.status {
                BatchStatus::Granted { grant_id, .. } => event.with_grant_id(grant_id.clone()),
                BatchStatus::Spent { grant_id } => event
                    .with_grant_id(grant_id.clone())
                    .with_code(item.status.code()),
                BatchStatus::Failed(failure) => {
                    let event = event.with_code(failure.code());
                    match failure {
                        BatchFailure::Deny { reason } => event.with_reason(reason.code()),
                        _ => event,
                    }
                }
            };
            auditor.publish(event);
        }
    }

    /// The report, and what served each item (a grant the PEP held, or this call's PDP batch).
    async fn batch(
        &self,
        ctx: &ExecutionContext,
        required: &[&str],
        optional: &[&str],
    ) -> Result<(BatchReport, Vec<Source>), PepError> {
        let config = &self.inner.config;
        let parse = |list: &[&str]| -> Result<Vec<SecretUri>, PepError> {
            list.iter()
                .map(|text| Ok(SecretUri::parse_allowed(text, &config.allowed_mounts)?))
                .collect()
        };
        let required = parse(required)?;
        let optional = parse(optional)?;
        let subject = self.check_caller(ctx)?;
        let now = Instant::now();
        self.check_token_any(ctx, subject, now, Replay::Peek)
            .await?;
        let plan = self.plan(ctx, subject, &required, &optional);
        let outcomes = self.decide_batch(ctx, subject, &plan, now).await?;
        let (items, sources) = plan
            .into_iter()
            .zip(outcomes)
            .map(|(item, (status, source))| {
                let item = BatchItem {
                    uri: item.uri,
                    required: item.required,
                    status,
                };
                (item, source)
            })
            .unzip();
        Ok((BatchReport { items }, sources))
    }

    /// Authorizes reads of several URIs with one token: one `jti` check for them all, one
    /// PDP batch for those without a warm grant, then one use of each URI's grant, in input
    /// order. A URI listed twice takes two uses. Each [`Authorized`] is read and reported
    /// like one from [`Self::authorize`].
    ///
    /// # Errors
    /// The outer error refuses the caller (`SUBJECT_MISSING`, `AUDIENCE`, `JTI_MISSING`,
    /// token lifetime, `REPLAY`, `REPLAY_STORE_FULL`), before any PDP call. Each inner result
    /// is that URI's: a URI or tenant-mount error, a denial, `PDP_UNAVAILABLE`, …
    pub async fn authorize_many(
        &self,
        ctx: &ExecutionContext,
        uris: &[&str],
    ) -> Result<Vec<Result<Authorized, PepError>>, PepError> {
        let config = &self.inner.config;
        // The mount guard first: a call whose every URI is refused spends no token.
        let parsed: Vec<Result<SecretUri, PepError>> = uris
            .iter()
            .map(|text| Ok(SecretUri::parse_allowed(text, &config.allowed_mounts)?))
            .collect();
        let any_valid = parsed.iter().any(Result::is_ok);
        let caller = match self.check_caller(ctx) {
            Ok(subject) => {
                let now = Instant::now();
                if any_valid {
                    self.check_token_any(ctx, subject, now, Replay::Record)
                        .await
                        .map(|()| (subject, now))
                } else {
                    Ok((subject, now))
                }
            }
            Err(error) => Err(error),
        };
        let (subject, started) = match caller {
            Ok(caller) => caller,
            Err(error) => {
                let span = telemetry::decision_span();
                span.in_scope(|| self.audit_error(ctx, None, &error));
                self.count_refusal(&span, &error);
                return Err(error);
            }
        };
        // Decide, in one PDP call, every resource without a usable grant or a live denial.
        let valid: Vec<SecretUri> = parsed
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .cloned()
            .collect();
        let mut plan: Vec<Planned> = Vec::new();
        for item in self.plan(ctx, subject, &valid, &[]) {
            // A store that cannot be asked is asked again by the read itself, which fails.
            if matches!(self.peek_status(&item.key, started).await, Ok(None)) {
                plan.push(item);
            }
        }
        // The keys this call's PDP batch decided: their first use is a fresh decision's.
        let mut fresh: HashSet<String> = HashSet::new();
        if !plan.is_empty() {
            // A failed batch leaves each read to fail (or ask) on its own.
            let _ = self.decide_batch(ctx, subject, &plan, started).await;
            fresh.extend(plan.into_iter().map(|item| item.key));
        }
        let mut out = Vec::with_capacity(parsed.len());
        for result in parsed {
            let span = telemetry::decision_span();
            let outcome = match result {
                Ok(uri) => {
                    self.describe(&span, &uri);
                    let key = self.key(ctx, subject, &uri);
                    let decided = self
                        .use_grant(ctx, subject, &uri, &key, started)
                        .instrument(span.clone())
                        .await
                        .map(|mut used| {
                            if fresh.remove(&key) {
                                used.source = Source::Pdp;
                            }
                            used
                        });
                    self.conclude(ctx, uri, decided, started, &span)
                }
                Err(error) => {
                    span.in_scope(|| self.audit_error(ctx, None, &error));
                    self.count_refusal(&span, &error);
                    Err(error)
                }
            };
            out.push(outcome);
        }
        Ok(out)
    }

    /// The resources to decide: deduplicated by grant key, required first.
    fn plan(
        &self,
        ctx: &ExecutionContext,
        subject: &str,
        required: &[SecretUri],
        optional: &[SecretUri],
    ) -> Vec<Planned> {
        let mut plan: Vec<Planned> = Vec::with_capacity(required.len() + optional.len());
        let mut seen: HashSet<String> = HashSet::with_capacity(plan.capacity());
        for (list, is_required) in [(required, true), (optional, false)] {
            for uri in list {
                let key = self.key(ctx, subject, uri);
                if seen.insert(key.clone()) {
                    plan.push(Planned {
                        uri: pdp_uri(uri),
                        required: is_required,
                        key,
                    });
                }
            }
        }
        plan
    }

    /// A live grant's or a live denial's status for `key`, from the PEP's memory or its
    /// stores; `None` when the PDP must be asked.
    async fn peek_status(&self, key: &str, now: Instant) -> Result<Option<BatchStatus>, PepError> {
        let denied = BatchStatus::Failed(BatchFailure::Deny {
            reason: DenyReason::NegativeCached,
        });
        let Some((grants, negative)) = self.inner.shared.as_ref().and_then(|s| s.stores()) else {
            return Ok(match self.inner.cache.peek(key, now) {
                Some(Slot::Granted(entry)) => Some(BatchStatus::granted(&entry)),
                Some(Slot::Refused(_)) => Some(denied),
                None => None,
            });
        };
        if let Some(stored) = grants
            .peek(key)
            .await
            .map_err(|e| self.store_failed(e, false))?
        {
            return Ok(Some(BatchStatus::stored(&stored)));
        }
        let refused = negative
            .denied(key)
            .await
            .map_err(|e| self.store_failed(e, false))?;
        Ok(refused.then_some(denied))
    }

    /// Keeps a batch's grant for `key` (unless a usable one is there) and reports the one that
    /// serves the key.
    async fn offer_grant(
        &self,
        key: &str,
        entry: GrantEntry,
        now: Instant,
    ) -> Result<BatchStatus, PepError> {
        let Some((grants, _)) = self.inner.shared.as_ref().and_then(|s| s.stores()) else {
            let entry = self.inner.cache.offer(key, Arc::new(entry), now);
            return Ok(BatchStatus::granted(&entry));
        };
        match grants
            .put(key, &entry.grant, &crate::state::Claim::none(), false)
            .await
            .map_err(|e| self.store_failed(e, false))?
        {
            crate::state::Taken::Used(stored) => Ok(BatchStatus::stored(&stored)),
            _ => Ok(BatchStatus::Spent {
                grant_id: entry.grant.grant_id,
            }),
        }
    }

    /// Remembers a batch's refusal of `key` (a denial in the negative cache; in the PEP's
    /// memory, any failure for the reads that wait on this batch).
    async fn offer_refusal(&self, key: &str, error: &PepError, now: Instant) {
        match self.inner.shared.as_ref().and_then(|s| s.stores()) {
            None => self.inner.cache.offer_refusal(key, error, now),
            Some(_) => self.remember_denial(key, error).await,
        }
    }

    /// Decides every planned resource (cached ones from the cache, the rest in one PDP batch),
    /// caches the answers, and returns each one's status and what served it, in plan order.
    async fn decide_batch(
        &self,
        ctx: &ExecutionContext,
        subject: &str,
        plan: &[Planned],
        now: Instant,
    ) -> Result<Vec<(BatchStatus, Source)>, PepError> {
        let mut statuses: Vec<Option<BatchStatus>> = Vec::with_capacity(plan.len());
        for item in plan {
            statuses.push(self.peek_status(&item.key, now).await?);
        }
        let (mut ask_required, mut ask_optional) = (Vec::new(), Vec::new());
        for (item, status) in plan.iter().zip(&statuses) {
            if status.is_none() {
                if item.required {
                    ask_required.push(item.uri.clone());
                } else {
                    ask_optional.push(item.uri.clone());
                }
            }
        }
        let cached = |statuses: Vec<Option<BatchStatus>>| {
            statuses
                .into_iter()
                .flatten()
                .map(|status| (status, Source::Grant))
                .collect()
        };
        let Some(first) = ask_required.first().or(ask_optional.first()) else {
            return Ok(cached(statuses));
        };
        // Which statuses came from the cache (the rest are this call's PDP answers).
        let from_cache: Vec<bool> = statuses.iter().map(Option::is_some).collect();
        let common = self.access_request(ctx, subject, first);
        let ask = BatchRequest::new(common, &ask_required, &ask_optional);
        let asked = ask.plan().len();
        let decisions = match self.ask_pdp_batch(&ask, asked).await {
            Ok(decisions) => decisions,
            Err(error) => {
                tracing::debug!(code = error.code(), "PDP batch failed");
                Vec::new()
            }
        };
        let answered = Instant::now();
        // Where each asked-for URI stands in the plan (the first, if two keys share a PDP id).
        let mut asked: HashMap<&SecretUri, usize> = HashMap::new();
        for (at, (item, status)) in plan.iter().zip(&statuses).enumerate() {
            if status.is_none() {
                asked.entry(&item.uri).or_insert(at);
            }
        }
        for decision in decisions {
            // A decision for a URI not asked about, or a second one for the same URI, is
            // ignored.
            let Some(at) = asked.remove(&decision.uri) else {
                continue;
            };
            let key = &plan[at].key;
            let status = match decision
                .outcome
                .map_err(|failure| match failure {
                    BatchFailure::Deny { reason } => PepError::denied(reason),
                    _ => PepError::unavailable(PdpFailure::Malformed),
                })
                .and_then(|grant| self.accept(grant, ctx, answered))
            {
                Ok(entry) => self.offer_grant(key, entry, answered).await?,
                Err(error) => {
                    self.offer_refusal(key, &error, answered).await;
                    BatchStatus::Failed(BatchFailure::from_error(&error))
                }
            };
            statuses[at] = Some(status);
        }
        // Skipped by the PDP, or the whole batch failed: fail closed, and let the reads that
        // waited on this batch share the failure instead of asking once each.
        let unavailable = PepError::unavailable(PdpFailure::Malformed);
        let mut out = Vec::with_capacity(plan.len());
        for ((item, status), from_cache) in plan.iter().zip(statuses).zip(from_cache) {
            let status = match status {
                Some(status) => status,
                None => {
                    self.offer_refusal(&item.key, &unavailable, answered).await;
                    BatchStatus::Failed(BatchFailure::PdpUnavailable)
                }
            };
            let source = if from_cache {
                Source::Grant
            } else {
                Source::Pdp
            };
            out.push((status, source));
        }
        Ok(out)
    }
}

impl fmt::Debug for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Planned")
            .field("uri", &self.uri.redacted().to_string())
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}
