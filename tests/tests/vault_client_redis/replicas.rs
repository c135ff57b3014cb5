//! Two clients, one Redis: what one replica's PEP records, the other's sees.

use std::collections::{HashMap, HashSet};

use secrets_sdk::pep::DenyReason;

use crate::common::TestResult;
use crate::common::redis::{assert_no_canary, keys_of, suite_redis};
use crate::common::vault::DENIED;
use crate::{MAX_USES, Replica, Stack, VALUE, caller, jti};

/// A `jti` used on A is refused on B (and the other way round) before the PDP or the vault is
/// asked; the grant A's decision stored serves B without a decision of its own; a denial
/// remembered by A refuses B without asking the PDP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jti_used_on_one_client_is_refused_on_the_other() -> TestResult {
    let Some(redis) = suite_redis() else {
        return Ok(());
    };
    let Some(stack) = Stack::start()? else {
        return Ok(());
    };
    let server = redis.read().await;
    let prefix = "replay-suite:";
    let a = Replica::new(&stack, &server, prefix, 2000)?;
    let b = Replica::new(&stack, &server, prefix, 2000)?;

    let first = jti();
    assert_eq!(a.get(&first).await?.expose_str(), Some(VALUE));
    assert_eq!((stack.decisions(), stack.reads()), (1, 1));

    let replay = b.get(&first).await.unwrap_err();
    assert_eq!(
        (replay.code(), replay.deny_reason()),
        ("AUTHZ_DENIED", Some(DenyReason::Replay)),
        "{replay}"
    );
    assert_eq!(
        (stack.decisions(), stack.reads()),
        (1, 1),
        "a replay reaches neither Cerbos nor OpenBao"
    );

    // B's own fresh jti: use 2 of the grant A's decision stored, no decision of B's own.
    let second = jti();
    assert_eq!(b.get(&second).await?.expose_str(), Some(VALUE));
    assert_eq!((stack.decisions(), stack.reads()), (1, 2));
    assert_eq!(b.pdp.single(), 0, "B never asked the PDP");
    let uses: Vec<_> = a
        .audit
        .take_reads()
        .into_iter()
        .chain(b.audit.take_reads())
        .map(|e| (e.decision, e.grant_id, e.use_number))
        .collect();
    assert_eq!(uses.len(), 2, "{uses:?}");
    assert_eq!(uses[0].1, uses[1].1, "one grant served both replicas");
    assert_eq!(
        (uses[0].2, uses[1].2),
        (Some(1), Some(2)),
        "one use count across replicas"
    );

    // The other way round, through the blocking entry point.
    let client = a.client.clone();
    let ctx = caller(&second);
    let uri = crate::uri();
    let replay = tokio::task::spawn_blocking(move || {
        client.get_credentials_blocking(uri.as_str(), Some(&ctx))
    })
    .await?
    .unwrap_err();
    assert_eq!(replay.deny_reason(), Some(DenyReason::Replay), "{replay}");

    // A denial A's PDP call remembered refuses B from Redis, without a PDP call.
    let denied = |e: secrets_sdk::Error| (e.code(), e.deny_reason());
    let on_a = a
        .client
        .get_credentials(DENIED, Some(&caller(&jti())))
        .await
        .unwrap_err();
    assert_eq!(denied(on_a), ("AUTHZ_DENIED", Some(DenyReason::PdpDeny)));
    assert_eq!(stack.decisions(), 2);
    let on_b = b
        .client
        .get_credentials(DENIED, Some(&caller(&jti())))
        .await
        .unwrap_err();
    assert_eq!(
        denied(on_b),
        ("AUTHZ_DENIED", Some(DenyReason::NegativeCached))
    );
    assert_eq!(stack.decisions(), 2, "the shared denial asked no PDP");
    assert_eq!(
        (a.pdp.single(), b.pdp.single()),
        (2, 0),
        "every decision was A's"
    );

    // What Redis holds: four jti digests (two reads, two denials), one grant and its
    // counter, one denial; named by keyed hashes only.
    assert_eq!(keys_of(&server, prefix, "replay").len(), 4);
    assert_eq!(keys_of(&server, prefix, "grant").len(), 1);
    assert_eq!(keys_of(&server, prefix, "uses").len(), 1);
    assert_eq!(keys_of(&server, prefix, "deny").len(), 1);
    let canaries = stack.canaries();
    let canaries: Vec<&str> = canaries.iter().map(String::as_str).collect();
    assert!(assert_no_canary(&server, &canaries) >= 7);
    Ok(())
}

/// 200 tasks, half on each client, race one grant of 5 uses, each read reaching OpenBao:
/// every read is served, exactly 5 reach OpenBao per decision that reached Cerbos, and each
/// decision's grant served uses 1 to 5, never a sixth, whichever replica took them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_clients_race_a_grant_of_five_uses() -> TestResult {
    race_a_grant_of_five_uses(false, "race-suite:").await
}

/// The same race with the default, concurrent reads of the URI sharing the vault read in
/// flight: the grants are counted exactly as before (one use per request, 40 decisions), only
/// fewer reads reach OpenBao.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_coalescing_clients_race_a_grant_of_five_uses() -> TestResult {
    race_a_grant_of_five_uses(true, "race-coalesced:").await
}

async fn race_a_grant_of_five_uses(coalesce: bool, prefix: &str) -> TestResult {
    let Some(redis) = suite_redis() else {
        return Ok(());
    };
    let Some(stack) = Stack::start()? else {
        return Ok(());
    };
    let server = redis.read().await;
    let a = Replica::coalescing(&stack, &server, prefix, 2000, coalesce)?;
    let b = Replica::coalescing(&stack, &server, prefix, 2000, coalesce)?;

    const TASKS: usize = 200;
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let client = if i % 2 == 0 {
                a.client.clone()
            } else {
                b.client.clone()
            };
            tokio::spawn(async move {
                let uri = crate::uri();
                client
                    .get_credentials(uri.as_str(), Some(&caller(&jti())))
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await??.expose_str(), Some(VALUE));
    }

    let decisions = stack.decisions();
    assert_eq!(
        a.pdp.single() + b.pdp.single(),
        decisions,
        "every PEP decision call reached Cerbos once"
    );
    if coalesce {
        // Each read in flight is shared by the requests that joined it (on one replica).
        assert!(
            (1..=TASKS).contains(&stack.reads()),
            "{} OpenBao reads for {TASKS} requests",
            stack.reads()
        );
    } else {
        assert_eq!(
            stack.reads(),
            TASKS,
            "every served read reached OpenBao once"
        );
    }
    assert!(
        stack.reads() <= MAX_USES * decisions,
        "{} reads from {decisions} decisions of {MAX_USES} uses",
        stack.reads()
    );
    assert_eq!(
        decisions,
        TASKS / MAX_USES,
        "200 = 40 × 5: one decision per 5 reads across both replicas"
    );

    let mut by_grant: HashMap<String, Vec<u32>> = HashMap::new();
    let mut replicas_of: HashMap<String, HashSet<char>> = HashMap::new();
    for (replica, audit) in [('a', &a.audit), ('b', &b.audit)] {
        for event in audit.take_reads() {
            assert_eq!(event.decision, "PERMIT", "{event:?}");
            let (Some(grant), Some(n)) = (event.grant_id, event.use_number) else {
                panic!("a read without its grant and use number");
            };
            by_grant.entry(grant.clone()).or_default().push(n);
            replicas_of.entry(grant).or_default().insert(replica);
        }
    }
    assert_eq!(by_grant.len(), decisions, "every decision was used");
    for uses in by_grant.values_mut() {
        uses.sort_unstable();
        assert_eq!(uses.as_slice(), [1, 2, 3, 4, 5], "uses of one decision");
    }
    let shared = replicas_of.values().filter(|r| r.len() == 2).count();
    eprintln!("{shared} of {decisions} grants served reads on both replicas");

    let canaries = stack.canaries();
    let canaries: Vec<&str> = canaries.iter().map(String::as_str).collect();
    assert!(assert_no_canary(&server, &canaries) >= TASKS);
    Ok(())
}
