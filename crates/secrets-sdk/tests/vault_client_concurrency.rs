//! 1 000 tasks on a multi-thread runtime race one cold grant with `max_uses = 7` through
//! `VaultClient::get_credentials`, against a real Cerbos and a real OpenBao: exactly 7
//! succeed, the other 993 are `USES_EXHAUSTED`, the PDP is asked once, and exactly 7 reads
//! reach OpenBao (counted by a proxy in front of it).
#![cfg(feature = "vault")]

mod vault_client_support;

use secrets_sdk::pep::DenyReason;
use vault_client_support::{SEVEN, TestResult, counted, jti, reader, servers};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_max_uses_succeed_and_reach_the_vault() -> TestResult {
    let Some(s) = servers()? else { return Ok(()) };
    let (client, pdp, audit) = counted(&s)?;

    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get_credentials(SEVEN, Some(&reader(jti()))).await })
        })
        .collect();
    let (mut values, mut exhausted) = (Vec::new(), 0);
    for task in tasks {
        match task.await? {
            Ok(secret) => values.push(secret.expose_str().map(str::to_owned)),
            Err(e) if e.deny_reason() == Some(DenyReason::UsesExhausted) => exhausted += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(values.len(), 7);
    assert!(
        values
            .iter()
            .all(|v| v.as_deref() == Some("bao-seven-token"))
    );
    assert_eq!(exhausted, 993);
    assert_eq!(pdp.single(), 1, "concurrent misses share one PDP call");
    assert_eq!(
        s.reads("seven/api"),
        7,
        "exactly the granted reads reach OpenBao"
    );

    let events = audit.take();
    let mut uses: Vec<_> = events
        .iter()
        .filter(|e| e.decision == "PERMIT")
        .filter_map(|e| e.use_number)
        .collect();
    uses.sort_unstable();
    assert_eq!(uses, [1, 2, 3, 4, 5, 6, 7]);
    let denied = events
        .iter()
        .filter(|e| e.reason == Some("USES_EXHAUSTED"))
        .count();
    assert_eq!(denied, 993);

    // The blocking entry point, raced from plain threads, keeps the count too.
    let other = "openbao+kv2://secret/seven/other#token";
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || client.get_credentials_blocking(other, Some(&reader(jti()))))
        })
        .collect();
    let mut ok = 0;
    for thread in threads {
        if thread.join().map_err(|_| "thread panicked")?.is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 7);
    assert_eq!(s.reads("seven/other"), 7);
    Ok(())
}
