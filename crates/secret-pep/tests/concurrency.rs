//! Exactness under contention, with an in-process PDP (no server needed): 1 000 tasks on a
//! multi-thread runtime race one grant.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Counting, config, jti, pep_with, reader};
use secret_pep::{AccessRequest, DenyReason, Grant, PdpFuture, Pep, SecretPolicyService};

/// Permits with `max_uses` uses after a short delay, so concurrent misses really overlap.
#[derive(Debug)]
struct SlowPdp {
    max_uses: u32,
}

impl SecretPolicyService for SlowPdp {
    fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(Grant::new("g", Duration::from_secs(60), self.max_uses)
                .bound_to(request.cnf_binding))
        })
    }
}

type Race = Result<(Vec<u32>, Vec<DenyReason>), Box<dyn std::error::Error>>;

/// Runs `tasks` concurrent authorizations of `uri`; returns (use numbers granted, denials).
async fn race(pep: &Pep, uri: &'static str, tasks: usize, same_jti: Option<&'static str>) -> Race {
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let pep = pep.clone();
            let id = same_jti.map_or_else(jti, str::to_owned);
            tokio::spawn(async move { pep.authorize(&reader(id), uri).await })
        })
        .collect();
    let (mut granted, mut denied) = (Vec::new(), Vec::new());
    for handle in handles {
        match handle.await? {
            Ok(authorized) => granted.push(authorized.use_number()),
            Err(e) => denied.push(e.deny_reason().ok_or(e)?),
        }
    }
    granted.sort_unstable();
    Ok((granted, denied))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_tasks_race_a_cold_grant_of_seven_uses() {
    for round in 0..5 {
        let pdp = Counting::new(SlowPdp { max_uses: 7 });
        let (pep, _) = pep_with(config(), Arc::clone(&pdp));
        let (granted, denied) = race(&pep, "openbao+kv2://secret/app/api#token", 1000, None)
            .await
            .unwrap();
        assert_eq!(granted, [1, 2, 3, 4, 5, 6, 7], "round {round}");
        assert_eq!(denied.len(), 993);
        assert!(denied.iter().all(|r| *r == DenyReason::UsesExhausted));
        assert_eq!(pdp.single(), 1, "one PDP call for all concurrent misses");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_tasks_race_a_warm_grant() {
    let pdp = Counting::new(SlowPdp { max_uses: 7 });
    let (pep, _) = pep_with(config(), Arc::clone(&pdp));
    let uri = "openbao+kv2://secret/app/warm";
    let first = pep.authorize(&reader(jti()), uri).await.expect("first use");
    assert_eq!(first.use_number(), 1);
    let (granted, denied) = race(&pep, uri, 1000, None).await.unwrap();
    assert_eq!(granted, [2, 3, 4, 5, 6, 7]);
    assert_eq!(denied.len(), 994);
    assert_eq!(pdp.single(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_jti_raced_by_many_tasks_is_used_once() {
    let pdp = Counting::new(SlowPdp { max_uses: 10_000 });
    let (pep, _) = pep_with(config(), Arc::clone(&pdp));
    let (granted, denied) = race(&pep, "openbao+kv2://secret/app/jti", 1000, Some("one-jti"))
        .await
        .unwrap();
    assert_eq!(granted.len(), 1);
    assert_eq!(denied.len(), 999);
    assert!(denied.iter().all(|r| *r == DenyReason::Replay));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_keys_in_parallel_each_get_exactly_their_uses() {
    let pdp = Counting::new(SlowPdp { max_uses: 3 });
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
                (
                    i % 4,
                    pep.authorize(&reader(jti()), URIS[i % 4]).await.is_ok(),
                )
            })
        })
        .collect();
    let mut per_key = [0; 4];
    for handle in handles {
        let (key, ok) = handle.await.expect("task");
        per_key[key] += usize::from(ok);
    }
    assert_eq!(per_key, [3, 3, 3, 3]);
    assert_eq!(pdp.single(), 4);
}
