//! 1 000 tasks on a multi-thread runtime race one cold grant with `max_uses = 7` through
//! `VaultClient::get_credentials`, against a real Cerbos and a real OpenBao: every task is
//! served and each Cerbos decision serves exactly 7 reads (the last one 6). Without read
//! coalescing exactly the served reads reach OpenBao (counted by a proxy in front of it);
//! with it (the default) fewer do, and the uses are counted all the same.

use std::collections::HashMap;

use crate::common::vault::{SEVEN, TestResult, builder, counted_on, jti, reader, servers};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_max_uses_succeed_and_reach_the_vault() -> TestResult {
    race(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_max_uses_succeed_when_reads_are_shared() -> TestResult {
    race(true).await
}

async fn race(coalesce: bool) -> TestResult {
    let Some(s) = servers()? else { return Ok(()) };
    let (client, pdp, audit) = counted_on(&s, builder(&s).coalesce_reads(coalesce))?;

    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get_credentials(SEVEN, Some(&reader(jti()))).await })
        })
        .collect();
    for task in tasks {
        let secret = task.await??;
        assert_eq!(secret.expose_str(), Some("bao-seven-token"));
    }
    assert_eq!(
        pdp.single(),
        143,
        "1 000 = 142 × 7 + 6: one decision per 7 reads"
    );
    if coalesce {
        let reads = s.reads("seven/api");
        assert!(
            (1..1000).contains(&reads),
            "concurrent reads of one secret were shared: {reads} reached OpenBao"
        );
    } else {
        assert_eq!(
            s.reads("seven/api"),
            1000,
            "exactly the granted reads reach OpenBao"
        );
    }

    let mut by_grant: HashMap<String, Vec<u32>> = HashMap::new();
    for event in audit
        .take_reads()
        .into_iter()
        .filter(|e| e.decision == "PERMIT")
    {
        if let (Some(grant), Some(n)) = (event.grant_id, event.use_number) {
            by_grant.entry(grant).or_default().push(n);
        }
    }
    let mut partial = Vec::new();
    for uses in by_grant.values_mut() {
        uses.sort_unstable();
        if uses.as_slice() != [1, 2, 3, 4, 5, 6, 7] {
            partial.push(uses.clone());
        }
    }
    assert_eq!(by_grant.len(), 143);
    assert_eq!(
        partial,
        [vec![1, 2, 3, 4, 5, 6]],
        "no decision served more than 7"
    );

    // The blocking entry point, raced from plain threads, keeps the count too.
    let other = "openbao+kv2://secret/seven/other#token";
    let before = pdp.single();
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || client.get_credentials_blocking(other, Some(&reader(jti()))))
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| "thread panicked")??;
    }
    if !coalesce {
        assert_eq!(s.reads("seven/other"), 50);
    }
    assert_eq!(pdp.single() - before, 8, "50 = 7 × 7 + 1");
    Ok(())
}
