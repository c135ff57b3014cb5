//! [`Metrics`]: the SDK's instruments, built once per client from a [`Meter`], recorded with
//! labels from closed sets only.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::metrics::{
    BoundCounter, BoundGauge, BoundHistogram, Counter, Gauge, Histogram, Meter,
};
use opentelemetry::{InstrumentationScope, KeyValue};

use crate::bound::{BoundTable, place};
use crate::census;
use crate::names::{
    CACHE_OUTCOMES, OUTCOMES, PDP_DECISIONS, PEP_OUTCOMES, PERMIT_REASONS, PROVIDERS, label, metric,
};

/// The instrumentation scope every instrument of the SDK belongs to.
pub const SCOPE: &str = "secrets-sdk";

/// Bucket boundaries (seconds) of the duration histograms: 10 µs (a cache hit) to 30 s (a
/// vault read at its deadline).
pub const DURATION_BUCKETS: [f64; 16] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 5.0, 30.0,
];

/// The SDK's instruments. Cheap to clone; every client holds one.
///
/// Build it *after* the meter provider is installed ([`Metrics::global`] binds to the global
/// provider of the moment), or from a [`Meter`] of one's own with [`Metrics::new`]. Without a
/// provider, every call is a no-op.
///
/// Every method takes its labels as `&'static str` from closed sets
/// ([`names`](crate::names)): providers, cache outcomes, error codes. Nothing a caller controls
/// (a path, a URI, a subject) can become a label.
#[derive(Clone)]
pub struct Metrics(Arc<Instruments>);

struct Instruments {
    resolve_duration: Histogram<f64>,
    cache_hits: Counter<u64>,
    cache_misses: Counter<u64>,
    cache_evictions: Counter<u64>,
    stale_served: Counter<u64>,
    provider_errors: Counter<u64>,
    pep_decisions: Counter<u64>,
    pdp_duration: Histogram<f64>,
    audit_queue_depth: Gauge<u64>,
    audit_dropped: Counter<u64>,
    token_ttl_remaining: Gauge<f64>,
    last_successful_fetch: Gauge<f64>,
    state_store_failures: Counter<u64>,
    /// The same instruments bound to their closed label sets, at first use.
    bound: Bound,
}

/// Bound instruments of the request path, by the places of their labels in their sets.
struct Bound {
    /// `resolve_duration` by provider, cache outcome, outcome.
    resolve: BoundTable<BoundHistogram<f64>>,
    /// `cache_misses`, `cache_hits` and `stale_served` by provider.
    misses: BoundTable<BoundCounter<u64>>,
    hits: BoundTable<BoundCounter<u64>>,
    stale: BoundTable<BoundCounter<u64>>,
    /// `pep_decisions` of permits, by outcome and permit reason (a refusal's reason is an
    /// error code: recorded unbound).
    permits: BoundTable<BoundCounter<u64>>,
    /// `pdp_duration` by decision.
    pdp: BoundTable<BoundHistogram<f64>>,
    /// `last_successful_fetch` and `token_ttl_remaining` by provider.
    fetched: BoundTable<BoundGauge<f64>>,
    token_ttl: BoundTable<BoundGauge<f64>>,
}

impl Bound {
    fn new() -> Self {
        let providers = [PROVIDERS.len(), 1, 1];
        Self {
            resolve: BoundTable::new([PROVIDERS.len(), CACHE_OUTCOMES.len(), OUTCOMES.len()]),
            misses: BoundTable::new(providers),
            hits: BoundTable::new(providers),
            stale: BoundTable::new(providers),
            permits: BoundTable::new([PEP_OUTCOMES.len(), PERMIT_REASONS.len(), 1]),
            pdp: BoundTable::new([PDP_DECISIONS.len(), 1, 1]),
            fetched: BoundTable::new(providers),
            token_ttl: BoundTable::new(providers),
        }
    }
}

/// The place of a provider label, for a by-provider table.
fn by_provider(provider: &str) -> [Option<usize>; 3] {
    [place(&PROVIDERS, provider), Some(0), Some(0)]
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::global()
    }
}

impl Metrics {
    /// Instruments from the global meter provider installed now (a no-op one if none is).
    #[must_use]
    pub fn global() -> Self {
        let scope = InstrumentationScope::builder(SCOPE)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Self::new(&opentelemetry::global::meter_with_scope(scope))
    }

    /// Instruments from `meter`.
    #[must_use]
    pub fn new(meter: &Meter) -> Self {
        let seconds = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build()
        };
        let counter = |name: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_description(description)
                .build()
        };
        Self(Arc::new(Instruments {
            resolve_duration: seconds(
                metric::RESOLVE_DURATION,
                "Duration of one resolve or get_credentials",
            ),
            cache_hits: counter(metric::CACHE_HITS, "Resolves served fresh from the cache"),
            cache_misses: counter(metric::CACHE_MISSES, "Resolves that read the provider"),
            cache_evictions: counter(metric::CACHE_EVICTIONS, "Cached entries dropped"),
            stale_served: counter(
                metric::STALE_SERVED,
                "Stale values served because the provider failed",
            ),
            provider_errors: counter(metric::PROVIDER_ERRORS, "Provider reads that failed"),
            pep_decisions: counter(metric::PEP_DECISIONS, "PEP decisions"),
            pdp_duration: seconds(metric::PDP_DURATION, "Duration of one PDP call"),
            audit_queue_depth: meter
                .u64_gauge(metric::AUDIT_QUEUE_DEPTH)
                .with_description("Audit events waiting in the queue")
                .build(),
            audit_dropped: counter(metric::AUDIT_DROPPED, "Audit events dropped"),
            token_ttl_remaining: meter
                .f64_gauge(metric::TOKEN_TTL_REMAINING)
                .with_unit("s")
                .with_description("Time left on the provider's token when last seen")
                .build(),
            last_successful_fetch: meter
                .f64_gauge(metric::LAST_SUCCESSFUL_FETCH)
                .with_unit("s")
                .with_description("Unix time of the last successful read from the provider")
                .build(),
            state_store_failures: counter(
                metric::STATE_STORE_FAILURES,
                "Calls to the PEP's shared state store that failed",
            ),
            bound: Bound::new(),
        }))
    }

    /// A recorder for fresh cache hits of `provider`, bound once to its labels so the hit path
    /// pays no attribute lookup (`secrets.cache.hits` and `secrets.resolve.duration` with
    /// `cache = "hit"`, `outcome = "ok"`).
    #[must_use]
    pub fn hit_recorder(&self, provider: &'static str) -> HitRecorder {
        let hits = [KeyValue::new(label::PROVIDER, provider)];
        let duration = resolve_labels(provider, "hit", "ok");
        census::note(metric::CACHE_HITS, &hits);
        census::note(metric::RESOLVE_DURATION, &duration);
        HitRecorder {
            hits: self.0.cache_hits.bind(&hits),
            duration: self.0.resolve_duration.bind(&duration),
        }
    }

    /// One resolve that did not end in a fresh cache hit: its duration, and the cache counter
    /// its outcome moves (`miss`, `refresh` and `off` count as misses; `stale` as
    /// stale-served).
    pub fn resolve(
        &self,
        provider: &'static str,
        cache: &'static str,
        outcome: &'static str,
        elapsed: Duration,
    ) {
        let instruments = &self.0;
        let at = [
            place(&PROVIDERS, provider),
            place(&CACHE_OUTCOMES, cache),
            place(&OUTCOMES, outcome),
        ];
        let bound = instruments.bound.resolve.get(at, || {
            let labels = resolve_labels(provider, cache, outcome);
            census::note(metric::RESOLVE_DURATION, &labels);
            instruments.resolve_duration.bind(&labels)
        });
        match bound {
            Some(bound) => bound.record(elapsed.as_secs_f64()),
            None => {
                let labels = resolve_labels(provider, cache, outcome);
                census::note(metric::RESOLVE_DURATION, &labels);
                instruments
                    .resolve_duration
                    .record(elapsed.as_secs_f64(), &labels);
            }
        }
        let (counter, table, name) = match cache {
            "hit" => (
                &instruments.cache_hits,
                &instruments.bound.hits,
                metric::CACHE_HITS,
            ),
            "miss" | "refresh" | "off" => (
                &instruments.cache_misses,
                &instruments.bound.misses,
                metric::CACHE_MISSES,
            ),
            "stale" => (
                &instruments.stale_served,
                &instruments.bound.stale,
                metric::STALE_SERVED,
            ),
            _ => return,
        };
        let labels = || {
            let labels = [KeyValue::new(label::PROVIDER, provider)];
            census::note(name, &labels);
            labels
        };
        match table.get(by_provider(provider), || counter.bind(&labels())) {
            Some(bound) => bound.add(1),
            None => counter.add(1, &labels()),
        }
    }

    /// `count` cached entries dropped (expired and swept, or pushed out by capacity).
    pub fn cache_evictions(&self, count: u64) {
        if count > 0 {
            census::note(metric::CACHE_EVICTIONS, &[]);
            self.0.cache_evictions.add(count, &[]);
        }
    }

    /// A provider read of `provider` failed with `code` (a code from `docs/errors.md`).
    pub fn provider_error(&self, provider: &'static str, code: &'static str) {
        let labels = [
            KeyValue::new(label::PROVIDER, provider),
            KeyValue::new(label::CODE, code),
        ];
        census::note(metric::PROVIDER_ERRORS, &labels);
        self.0.provider_errors.add(1, &labels);
    }

    /// A provider read of `provider` succeeded now (`secrets.provider.last_successful_fetch`).
    pub fn fetched(&self, provider: &'static str) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let i = &self.0;
        let (table, gauge) = (&i.bound.fetched, &i.last_successful_fetch);
        by_provider_gauge(table, gauge, metric::LAST_SUCCESSFUL_FETCH, provider, now);
    }

    /// What is left of `provider`'s token (`secrets.token.ttl_remaining`).
    pub fn token_ttl(&self, provider: &'static str, remaining: Duration) {
        let i = &self.0;
        let (table, gauge) = (&i.bound.token_ttl, &i.token_ttl_remaining);
        let left = remaining.as_secs_f64();
        by_provider_gauge(table, gauge, metric::TOKEN_TTL_REMAINING, provider, left);
    }

    /// A PEP decision: `outcome` is `permit`, `deny` or `error`; `reason` an error code or
    /// `grant`/`pdp` for a permit.
    pub fn pep_decision(&self, outcome: &'static str, reason: &'static str) {
        let instruments = &self.0;
        let labels = || {
            let labels = [
                KeyValue::new(label::OUTCOME, outcome),
                KeyValue::new(label::REASON, reason),
            ];
            census::note(metric::PEP_DECISIONS, &labels);
            labels
        };
        let at = [
            place(&PEP_OUTCOMES, outcome),
            place(&PERMIT_REASONS, reason),
            Some(0),
        ];
        match instruments
            .bound
            .permits
            .get(at, || instruments.pep_decisions.bind(&labels()))
        {
            Some(bound) => bound.add(1),
            None => instruments.pep_decisions.add(1, &labels()),
        }
    }

    /// One PDP call that took `elapsed` and answered `decision` (`permit`, `deny`, `error`).
    pub fn pdp_call(&self, decision: &'static str, elapsed: Duration) {
        let instruments = &self.0;
        let labels = || {
            let labels = [KeyValue::new(label::DECISION, decision)];
            census::note(metric::PDP_DURATION, &labels);
            labels
        };
        let at = [place(&PDP_DECISIONS, decision), Some(0), Some(0)];
        match instruments
            .bound
            .pdp
            .get(at, || instruments.pdp_duration.bind(&labels()))
        {
            Some(bound) => bound.record(elapsed.as_secs_f64()),
            None => instruments
                .pdp_duration
                .record(elapsed.as_secs_f64(), &labels()),
        }
    }

    /// The audit queue holds `depth` events.
    pub fn audit_queue_depth(&self, depth: u64) {
        census::note(metric::AUDIT_QUEUE_DEPTH, &[]);
        self.0.audit_queue_depth.record(depth, &[]);
    }

    /// `count` audit events were dropped for `reason` (one of
    /// [`DROP_REASONS`](crate::names::DROP_REASONS)).
    pub fn audit_dropped(&self, reason: &'static str, count: u64) {
        if count > 0 {
            let labels = [KeyValue::new(label::REASON, reason)];
            census::note(metric::AUDIT_DROPPED, &labels);
            self.0.audit_dropped.add(count, &labels);
        }
    }

    /// A call to the PEP's shared state store `store` (`replay`, `grant`, `negative`) failed;
    /// `allowed` when anti-replay is configured fail-open and let the request through.
    pub fn state_store_failure(&self, store: &'static str, allowed: bool) {
        let labels = [
            KeyValue::new(label::STORE, store),
            KeyValue::new(label::OUTCOME, if allowed { "allowed" } else { "refused" }),
        ];
        census::note(metric::STATE_STORE_FAILURES, &labels);
        self.0.state_store_failures.add(1, &labels);
    }
}

/// Records `value` on `gauge` by `provider`, bound in `table` when the provider is known.
fn by_provider_gauge(
    table: &BoundTable<BoundGauge<f64>>,
    gauge: &Gauge<f64>,
    name: &'static str,
    provider: &'static str,
    value: f64,
) {
    let labels = || {
        let labels = [KeyValue::new(label::PROVIDER, provider)];
        census::note(name, &labels);
        labels
    };
    match table.get(by_provider(provider), || gauge.bind(&labels())) {
        Some(bound) => bound.record(value),
        None => gauge.record(value, &labels()),
    }
}

fn resolve_labels(
    provider: &'static str,
    cache: &'static str,
    outcome: &'static str,
) -> [KeyValue; 3] {
    [
        KeyValue::new(label::PROVIDER, provider),
        KeyValue::new(label::CACHE, cache),
        KeyValue::new(label::OUTCOME, outcome),
    ]
}

/// Records fresh cache hits of one provider through instruments bound to their labels: two
/// atomic updates, no attribute lookup, no allocation.
#[derive(Clone)]
pub struct HitRecorder {
    hits: BoundCounter<u64>,
    duration: BoundHistogram<f64>,
}

impl fmt::Debug for HitRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HitRecorder").finish_non_exhaustive()
    }
}

impl HitRecorder {
    /// One fresh hit that took `elapsed`.
    #[inline]
    pub fn record(&self, elapsed: Duration) {
        self.hits.add(1);
        self.duration.record(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MetricsCapture;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn bound_hits_and_unbound_resolves_reach_the_exporter_with_their_labels() -> TestResult {
        let capture = MetricsCapture::new();
        let metrics = capture.metrics();
        let hits = metrics.hit_recorder("file");
        for _ in 0..3 {
            hits.record(Duration::from_micros(1));
        }
        metrics.resolve("openbao", "miss", "ok", Duration::from_millis(2));
        metrics.resolve("openbao", "stale", "ok", Duration::from_millis(2));
        metrics.provider_error("openbao", "UNAVAILABLE");
        metrics.pep_decision("deny", "PDP_DENY");
        metrics.pdp_call("deny", Duration::from_millis(3));
        metrics.audit_dropped("queue_full", 2);
        metrics.audit_dropped("queue_full", 0);
        metrics.token_ttl("openbao", Duration::from_secs(90));
        metrics.fetched("openbao");
        metrics.cache_evictions(4);
        metrics.state_store_failure("replay", true);
        let points = capture.points()?;

        let hit = points.named(metric::CACHE_HITS);
        assert_eq!(hit.len(), 1);
        assert_eq!(hit[0].labels, vec![("provider".into(), "file".into())]);
        assert_eq!(hit[0].value, 3.0);
        let durations = points.named(metric::RESOLVE_DURATION);
        assert_eq!(durations.len(), 3, "{durations:?}");
        assert!(durations.iter().any(|p| p.value == 3.0
            && p.label("cache") == Some("hit")
            && p.label("outcome") == Some("ok")));
        assert_eq!(points.sum(metric::CACHE_MISSES), 1.0);
        assert_eq!(points.sum(metric::STALE_SERVED), 1.0);
        let errors = points.named(metric::PROVIDER_ERRORS);
        assert_eq!(
            errors[0].labels,
            vec![
                ("code".into(), "UNAVAILABLE".into()),
                ("provider".into(), "openbao".into())
            ]
        );
        assert_eq!(points.sum(metric::PEP_DECISIONS), 1.0);
        assert_eq!(points.sum(metric::PDP_DURATION), 1.0);
        assert_eq!(points.sum(metric::AUDIT_DROPPED), 2.0);
        assert_eq!(points.sum(metric::TOKEN_TTL_REMAINING), 90.0);
        assert!(points.sum(metric::LAST_SUCCESSFUL_FETCH) > 1.7e9);
        assert_eq!(points.sum(metric::CACHE_EVICTIONS), 4.0);
        assert_eq!(
            points.sum_where(
                metric::STATE_STORE_FAILURES,
                &[("store", "replay"), ("outcome", "allowed")]
            ),
            1.0
        );
        Ok(())
    }

    #[test]
    fn without_a_provider_every_call_is_a_no_op() {
        let metrics = Metrics::global();
        metrics.hit_recorder("file").record(Duration::ZERO);
        metrics.resolve("file", "miss", "error", Duration::MAX);
        assert_eq!(format!("{metrics:?}"), "Metrics { .. }");
    }
}
