//! Exactness under contention, with an in-process PDP (no server needed): 1 000 tasks on a
//! multi-thread runtime race one grant.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{Counting, config, jti, pep_with, reader};
use secret_pep::{AccessRequest, DenyReason, Grant, PdpFuture, Pep, SecretPolicyService};

/// Permits with `max_uses` uses after a short delay, so concurrent misses really overlap;
/// each decision has its own grant id.
#[derive(Debug)]
struct SlowPdp {
    max_uses: u32,
    decisions: std::sync::atomic::AtomicUsize,
}

impl SlowPdp {
    fn new(max_uses: u32) -> Self {
        Self {
            max_uses,
            decisions: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl SecretPolicyService for SlowPdp {
    fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
        let n = self
            .decisions
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(
                Grant::new(format!("g{n}"), Duration::from_secs(60), self.max_uses)
                    .bound_to(request.cnf_binding),
            )
        })
    }
}

/// The use numbers each grant served, sorted; and the denials.
type Race = Result<(HashMap<String, Vec<u32>>, Vec<DenyReason>), Box<dyn std::error::Error>>;

/// Runs `tasks` concurrent authorizations of `uri`.
async fn race(pep: &Pep, uri: &'static str, tasks: usize, same_jti: Option<&'static str>) -> Race {
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let pep = pep.clone();
            let id = same_jti.map_or_else(jti, str::to_owned);
            tokio::spawn(async move { pep.authorize(&reader(id), uri).await })
        })
        .collect();
    let (mut granted, mut denied) = (HashMap::<String, Vec<u32>>::new(), Vec::new());
    for handle in handles {
        match handle.await? {
            Ok(authorized) => granted
                .entry(authorized.grant().grant_id.clone())
                .or_default()
                .push(authorized.use_number()),
            Err(e) => denied.push(e.deny_reason().ok_or(e)?),
        }
    }
    for uses in granted.values_mut() {
        uses.sort_unstable();
    }
    Ok((granted, denied))
}

/// Every grant served exactly uses 1..=max, but at most one (the last) served fewer.
fn assert_exact(granted: &HashMap<String, Vec<u32>>, max_uses: u32) {
    let full: Vec<u32> = (1..=max_uses).collect();
    let partial: Vec<_> = granted.values().filter(|uses| **uses != full).collect();
    assert!(partial.len() <= 1, "{granted:?}");
    for uses in partial {
        let expected: Vec<u32> = (1..=u32::try_from(uses.len()).unwrap_or(0)).collect();
        assert_eq!(*uses, expected, "{granted:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_tasks_race_a_cold_grant_of_seven_uses() {
    for round in 0..3 {
        let pdp = Counting::new(SlowPdp::new(7));
        let (pep, _) = pep_with(config(), Arc::clone(&pdp));
        let (granted, denied) = race(&pep, "openbao+kv2://secret/app/api#token", 1000, None)
            .await
            .unwrap();
        assert!(denied.is_empty(), "round {round}: {denied:?}");
        assert_exact(&granted, 7);
        // 1 000 = 142 × 7 + 6: exactly one decision per seven reads.
        assert_eq!(granted.len(), 143, "round {round}");
        assert_eq!(pdp.single(), 143, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_tasks_race_a_warm_grant() {
    let pdp = Counting::new(SlowPdp::new(7));
    let (pep, _) = pep_with(config(), Arc::clone(&pdp));
    let uri = "openbao+kv2://secret/app/warm";
    let first = pep.authorize(&reader(jti()), uri).await.expect("first use");
    assert_eq!(first.use_number(), 1);
    let (mut granted, denied) = race(&pep, uri, 999, None).await.unwrap();
    assert!(denied.is_empty());
    let warm = granted.remove(&first.grant().grant_id).unwrap_or_default();
    assert_eq!(
        warm,
        [2, 3, 4, 5, 6, 7],
        "the warm grant serves its six uses"
    );
    // 999 - 6 = 993 = 141 × 7 + 6.
    assert_exact(&granted, 7);
    assert_eq!(pdp.single(), 1 + 142);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_jti_raced_by_many_tasks_is_used_once() {
    let pdp = Counting::new(SlowPdp::new(10_000));
    let (pep, _) = pep_with(config(), Arc::clone(&pdp));
    let (granted, denied) = race(&pep, "openbao+kv2://secret/app/jti", 1000, Some("one-jti"))
        .await
        .unwrap();
    assert_eq!(granted.values().map(Vec::len).sum::<usize>(), 1);
    assert_eq!(denied.len(), 999);
    assert!(denied.iter().all(|r| *r == DenyReason::Replay));
    assert_eq!(pdp.single(), 1, "replays cost no PDP call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_keys_in_parallel_each_get_exactly_their_uses() {
    let pdp = Counting::new(SlowPdp::new(3));
    let (pep, _) = pep_with(config(), Arc::clone(&pdp));
    const URIS: [&str; 4] = [
        "openbao+kv2://secret/k/1",
        "openbao+kv2://secret/k/2",
        "openbao+kv2://secret/k/3",
        "openbao+kv2://secret/k/4",
    ];
    let handles: Vec<_> = (0..800)
        .map(|i| {
            let pep = pep.clone();
            tokio::spawn(async move {
                let authorized = pep.authorize(&reader(jti()), URIS[i % 4]).await;
                (
                    i % 4,
                    authorized.map(|a| (a.grant().grant_id.clone(), a.use_number())),
                )
            })
        })
        .collect();
    let mut per_key: [HashMap<String, Vec<u32>>; 4] = Default::default();
    for handle in handles {
        let (key, result) = handle.await.expect("task");
        let (grant, n) = result.expect("served");
        per_key[key].entry(grant).or_default().push(n);
    }
    for granted in &mut per_key {
        for uses in granted.values_mut() {
            uses.sort_unstable();
        }
        assert_exact(granted, 3);
        // 200 reads of a key = 66 × 3 + 2.
        assert_eq!(granted.len(), 67);
    }
    assert_eq!(pdp.single(), 4 * 67);
}
