//! The flow over a [`PepState`] of its own, with the in-memory stores behind the traits (two
//! PEPs sharing them stand in for two replicas) and failing stores; the same flow against a
//! real Redis is `tests/redis.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};

use secret_telemetry::names::metric;
use secret_telemetry::testing::MetricsCapture;

use super::*;
use crate::pdp::PdpFuture;
use crate::state::{
    Claim, GrantStore, MemoryGrantStore, MemoryNegativeCache, MemoryReplayStore, PepState,
    Recorded, ReplayCheck, ReplayStore, StoreError, StoreFuture, StoreKind, StoredGrant, Taken,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const URI: &str = "openbao+kv2://secret/app/api#token";

/// Permits everyone but `mallory`, with `uses` uses; counts its calls; optionally slow.
#[derive(Debug)]
struct Pdp {
    calls: AtomicUsize,
    uses: u32,
    delay: Duration,
}

impl Pdp {
    fn new(uses: u32) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicUsize::new(0),
            uses,
            delay: Duration::ZERO,
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl SecretPolicyService for Pdp {
    fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            if request.subject == "mallory" {
                return Err(PepError::denied(DenyReason::PdpDeny));
            }
            Ok(Grant::new(
                format!("g{call}"),
                Duration::from_secs(60),
                self.uses,
            ))
        })
    }
}

fn ctx(subject: &str, jti: &str) -> ExecutionContext {
    ExecutionContext::new(subject)
        .with_aud(["crud.secrets"])
        .with_jti(jti)
}

fn config() -> PepConfig {
    PepConfig::new("t1", "secret".parse().expect("mounts"))
        .with_negative_cache(Duration::from_secs(5), Duration::ZERO)
}

/// One set of in-memory stores, as two replicas would share one Redis.
fn stores() -> PepState {
    PepState::memory()
        .with_replay(Arc::new(MemoryReplayStore::new(1000, 1000)))
        .with_grants(Arc::new(MemoryGrantStore::new(100)))
        .with_negative(Arc::new(MemoryNegativeCache::new(100)))
}

fn replica(state: &PepState, pdp: &Arc<Pdp>) -> Pep {
    Pep::builder(config())
        .pdp(Arc::clone(pdp))
        .state(state.clone())
        .build()
        .expect("pep")
}

#[tokio::test]
async fn replicas_share_the_replay_window_the_use_count_and_the_denials() -> TestResult {
    let pdp = Pdp::new(2);
    let state = stores();
    let (a, b) = (replica(&state, &pdp), replica(&state, &pdp));

    let first = a.authorize(&ctx("alice", "j1"), URI).await?;
    assert_eq!((first.use_number(), pdp.calls()), (1, 1));
    let replay = b.authorize(&ctx("alice", "j1"), URI).await.unwrap_err();
    assert_eq!(replay.deny_reason(), Some(DenyReason::Replay));

    // B takes the second use of A's decision; the third read is a fresh decision.
    let second = b.authorize(&ctx("alice", "j2"), URI).await?;
    assert_eq!(second.use_number(), 2);
    assert_eq!(second.grant().grant_id, first.grant().grant_id);
    assert_eq!(second.remaining_uses(), 0);
    assert!(
        second.give_back_async().await,
        "a failed read gives its use back"
    );
    let again = a.authorize(&ctx("alice", "j3"), URI).await?;
    assert_eq!((again.use_number(), pdp.calls()), (2, 1));
    let third = a.authorize(&ctx("alice", "j4"), URI).await?;
    assert_eq!((third.use_number(), pdp.calls()), (1, 2));
    assert_ne!(third.grant().grant_id, first.grant().grant_id);
    // A use of a spent, replaced grant never goes back to the new one.
    assert!(!again.give_back_async().await);

    // A denial on A is remembered for B.
    let denied = a.authorize(&ctx("mallory", "m1"), URI).await.unwrap_err();
    assert_eq!(denied.deny_reason(), Some(DenyReason::PdpDeny));
    let cached = b.authorize(&ctx("mallory", "m2"), URI).await.unwrap_err();
    assert_eq!(cached.deny_reason(), Some(DenyReason::NegativeCached));
    assert_eq!(pdp.calls(), 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_in_one_process_make_one_pdp_call() -> TestResult {
    let pdp = Arc::new(Pdp {
        calls: AtomicUsize::new(0),
        uses: 1000,
        delay: Duration::from_millis(50),
    });
    let pep = replica(&stores(), &pdp);
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let pep = pep.clone();
            tokio::spawn(async move {
                pep.authorize(&ctx("alice", &format!("c{i}")), URI)
                    .await
                    .map(|a| a.use_number())
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await??);
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=100).collect::<Vec<_>>());
    assert_eq!(pdp.calls(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_racing_never_exceed_max_uses_per_decision() -> TestResult {
    let pdp = Pdp::new(5);
    let state = stores();
    let peps = [replica(&state, &pdp), replica(&state, &pdp)];
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let pep = peps[i % 2].clone();
            tokio::spawn(async move {
                pep.authorize(&ctx("alice", &format!("r{i}")), URI)
                    .await
                    .map(|a| (a.grant().grant_id.clone(), a.use_number()))
            })
        })
        .collect();
    let mut per_grant: std::collections::HashMap<String, Vec<u32>> = Default::default();
    for task in tasks {
        let (grant, n) = task.await??;
        per_grant.entry(grant).or_default().push(n);
    }
    for uses in per_grant.values_mut() {
        uses.sort_unstable();
        assert!(uses.len() <= 5, "{uses:?}");
        assert_eq!(*uses, (1..=u32::try_from(uses.len())?).collect::<Vec<_>>());
    }
    assert_eq!(per_grant.values().map(Vec::len).sum::<usize>(), 200);
    assert!(per_grant.len() >= 40 && pdp.calls() >= per_grant.len());
    Ok(())
}

/// A store that is down: every call fails.
#[derive(Debug)]
struct Down;

fn down<T: Send + 'static>(store: StoreKind) -> StoreFuture<'static, T> {
    Box::pin(std::future::ready(Err(StoreError::new(store, "timed out"))))
}

impl ReplayStore for Down {
    fn record<'a>(&'a self, _check: ReplayCheck<'a>) -> StoreFuture<'a, Recorded> {
        down(StoreKind::Replay)
    }

    fn seen<'a>(&'a self, _check: ReplayCheck<'a>) -> StoreFuture<'a, bool> {
        down(StoreKind::Replay)
    }
}

impl GrantStore for Down {
    fn take<'a>(&'a self, _key: &'a str, _claim: bool) -> StoreFuture<'a, Taken> {
        down(StoreKind::Grant)
    }

    fn put<'a>(
        &'a self,
        _key: &'a str,
        _grant: &'a Grant,
        _claim: &'a Claim,
        _take: bool,
    ) -> StoreFuture<'a, Taken> {
        down(StoreKind::Grant)
    }

    fn release<'a>(&'a self, _key: &'a str, _claim: &'a Claim) -> StoreFuture<'a, ()> {
        down(StoreKind::Grant)
    }

    fn give_back<'a>(&'a self, _key: &'a str, _stamp: &'a str) -> StoreFuture<'a, bool> {
        down(StoreKind::Grant)
    }

    fn peek<'a>(&'a self, _key: &'a str) -> StoreFuture<'a, Option<StoredGrant>> {
        down(StoreKind::Grant)
    }
}

fn failures(capture: &MetricsCapture, store: &str, outcome: &str) -> f64 {
    capture.points().map_or(0.0, |points| {
        points.sum_where(
            metric::STATE_STORE_FAILURES,
            &[("store", store), ("outcome", outcome)],
        )
    })
}

#[tokio::test]
async fn an_unreachable_replay_store_refuses_unless_configured_fail_open() -> TestResult {
    for fail_open in [false, true] {
        let capture = MetricsCapture::new();
        let pdp = Pdp::new(5);
        let pep = Pep::builder(config().with_anti_replay_fail_open(fail_open))
            .pdp(Arc::clone(&pdp))
            .metrics(capture.metrics())
            .state(PepState::memory().with_replay(Arc::new(Down)))
            .build()?;
        let result = pep.authorize(&ctx("alice", "j1"), URI).await;
        if fail_open {
            assert_eq!(result?.use_number(), 1);
            assert_eq!(failures(&capture, "replay", "allowed"), 1.0);
        } else {
            let error = result.unwrap_err();
            assert_eq!(error.code(), "STATE_STORE_UNAVAILABLE");
            assert!(error.is_transient());
            assert_eq!(pdp.calls(), 0, "refused before any PDP call");
            assert_eq!(failures(&capture, "replay", "refused"), 1.0);
        }
    }
    Ok(())
}

#[tokio::test]
async fn an_unreachable_grant_store_never_grants_even_fail_open() -> TestResult {
    let capture = MetricsCapture::new();
    let pdp = Pdp::new(5);
    let pep = Pep::builder(config().with_anti_replay_fail_open(true))
        .pdp(Arc::clone(&pdp))
        .metrics(capture.metrics())
        .state(PepState::memory().with_grants(Arc::new(Down)))
        .build()?;
    let error = pep.authorize(&ctx("alice", "j1"), URI).await.unwrap_err();
    assert_eq!(error.code(), "STATE_STORE_UNAVAILABLE");
    assert!(error.to_string().contains("grant store"), "{error}");
    assert_eq!(failures(&capture, "grant", "refused"), 1.0);
    let many = pep.authorize_many(&ctx("alice", "j2"), &[URI]).await?;
    assert_eq!(
        many[0].as_ref().map(|_| ()).unwrap_err().code(),
        "STATE_STORE_UNAVAILABLE"
    );
    let batch = pep
        .authorize_batch(&ctx("alice", "j3"), &[URI], &[])
        .await
        .unwrap_err();
    assert_eq!(batch.code(), "STATE_STORE_UNAVAILABLE");
    Ok(())
}

#[tokio::test]
async fn a_negative_cache_needs_a_grant_store_of_its_own() {
    let error = Pep::builder(config())
        .pdp(Pdp::new(1))
        .state(PepState::memory().with_negative(Arc::new(MemoryNegativeCache::new(4))))
        .build()
        .unwrap_err();
    assert_eq!(error.code(), "CONFIG");
}

#[tokio::test]
async fn batches_decide_into_the_shared_stores() -> TestResult {
    let pdp = Pdp::new(3);
    let state = stores();
    let (a, b) = (replica(&state, &pdp), replica(&state, &pdp));
    let report = a.authorize_batch(&ctx("alice", "b1"), &[URI], &[]).await?;
    assert!(report.is_satisfied(), "{report:?}");
    // The batch only checked its jti: B may still use it, and B's reads use A's grant.
    let read = b.authorize_many(&ctx("alice", "b1"), &[URI, URI]).await?;
    let numbers: Vec<u32> = read
        .iter()
        .map(|r| r.as_ref().map(Authorized::use_number).unwrap_or(0))
        .collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(pdp.calls(), 1, "one decision for the batch and both reads");
    let replay = a
        .authorize_batch(&ctx("alice", "b1"), &[URI], &[])
        .await
        .unwrap_err();
    assert_eq!(replay.deny_reason(), Some(DenyReason::Replay));
    Ok(())
}
