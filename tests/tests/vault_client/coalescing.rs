//! Concurrent requests for one secret share the vault read in flight
//! (`VaultClientBuilder::coalesce_reads`, on by default), and share nothing else: each is
//! authorized, counted and audited on its own, other keys and versions are read on their own,
//! a finished read is never served again, and a vault that never answers times every joined
//! request out at the deadline at once. Against a real OpenBao and Cerbos, and a scripted
//! vault for what the real one cannot be made to do.

use std::time::{Duration, Instant};

use secrets_sdk::pep::{DevAllowAll, PepConfig};
use secrets_sdk::providers::{Kv2Auth, Kv2Config, Kv2Flavor, RetryConfig};
use secrets_sdk::{Error, Secret, VaultClient};
use secrets_test_support::pep::TENANT;
use secrets_test_support::{Fault, FaultServer};
use serde_json::json;

use crate::common::kv2::{kv_reply, lookup_never_expires};
use crate::common::vault::{SALT, TestResult, counted, jti, reader, servers};

/// `n` concurrent `get_credentials` calls, `uris[i % len]` each, with fresh `jti`s.
async fn burst(
    client: &VaultClient,
    uris: &[&'static str],
    n: usize,
) -> Vec<Result<Secret, Error>> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (client, uri) = (client.clone(), uris[i % uris.len()]);
            tokio::spawn(async move { client.get_credentials(uri, Some(&reader(jti()))).await })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.unwrap_or_else(|e| panic!("request task: {e}")));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_reads_still_take_one_use_per_request_and_a_finished_read_is_not_served()
-> TestResult {
    let Some(s) = servers()? else { return Ok(()) };
    let (client, pdp, audit) = counted(&s)?;
    // Five spellings of one resource: 7-use grants (Cerbos policy), two canonical schemes.
    let aliases = [
        "openbao+kv2://secret/seven/api#token",
        "openbao://secret/seven/api#token",
        "hashicorp+kv2://secret/seven/api#token",
        "HASHICORP://secret/seven/api/#token",
        "openbao+kv2://secret/seven/api/#token",
    ];
    for result in burst(&client, &aliases, 70).await {
        assert_eq!(result?.expose_str(), Some("bao-seven-token"));
    }
    assert_eq!(
        pdp.single(),
        10,
        "70 requests of 7-use grants: 10 decisions"
    );
    let reads = audit
        .take_reads()
        .into_iter()
        .filter(|e| e.decision == "PERMIT")
        .count();
    assert_eq!(reads, 70, "every request's read is audited");
    let shared = s.reads("seven/api");
    assert!(
        (1..70).contains(&shared),
        "{shared} vault reads for 70 concurrent requests"
    );
    // Sequential requests each read the vault: nothing is kept after a read lands.
    for _ in 0..3 {
        client
            .get_credentials(aliases[0], Some(&reader(jti())))
            .await?;
    }
    assert_eq!(s.reads("seven/api"), shared + 3);
    Ok(())
}

/// The KV v2 reads the scripted vault got (their paths).
fn reads(vault: &FaultServer) -> Vec<String> {
    vault
        .requests()
        .into_iter()
        .map(|r| r.path)
        .filter(|path| path.starts_with("/v1/secret/data/"))
        .collect()
}

/// A scripted vault behind a client with the development PDP (allows all), `deadline`, and
/// read coalescing unless `alone`.
fn scripted(
    script: Vec<Fault>,
    deadline: Duration,
    alone: bool,
) -> Result<(FaultServer, VaultClient), Box<dyn std::error::Error>> {
    // The token lookup the client makes first, then `script`.
    let vault = FaultServer::start([vec![lookup_never_expires()], script].concat())?;
    let kv2 = Kv2Config::new(
        Kv2Flavor::OpenBao,
        vault.addr(),
        Kv2Auth::token("t".to_owned()),
    )
    .with_retry(RetryConfig::attempts(1))
    .with_timeout(Duration::from_secs(30));
    let client = VaultClient::builder()
        .kv2(kv2)
        .pep_config(
            PepConfig::new(TENANT, "secret".parse()?)
                .with_environment("test")
                .with_grant_defaults(Duration::from_secs(300), 1000),
        )
        .pdp(DevAllowAll::new())
        .tenant_salt(SALT)
        .read_deadline(deadline)
        .coalesce_reads(!alone)
        .build()?;
    Ok((vault, client))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_that_never_answers_times_out_every_joined_request_at_once() -> TestResult {
    let (vault, client) = scripted(
        vec![
            Fault::delay(Duration::from_secs(20), kv_reply(json!({"token": "late"}))),
            kv_reply(json!({"token": "fresh"})),
        ],
        Duration::from_millis(400),
        false,
    )?;
    let started = Instant::now();
    let results = burst(&client, &["openbao+kv2://secret/app/api#token"], 16).await;
    let took = started.elapsed();
    for result in results {
        assert_eq!(result.err().map(|e| e.code()), Some("TIMEOUT"));
    }
    assert!(
        took < Duration::from_secs(3),
        "16 joined requests ended with the one read's deadline: {took:?}"
    );
    assert_eq!(reads(&vault).len(), 1, "one read for all of them");
    // The timed-out flight is gone: the next request reads again, and is served.
    let secret = client
        .get_credentials("openbao+kv2://secret/app/api#token", Some(&reader(jti())))
        .await?;
    assert_eq!(secret.expose_str(), Some("fresh"));
    assert_eq!(reads(&vault).len(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_keys_and_versions_are_never_served_from_each_others_read() -> TestResult {
    // Every read is slow, so all the requests overlap.
    let slow = || {
        vec![Fault::delay(
            Duration::from_millis(300),
            kv_reply(json!({"token": "T", "user": "U"})),
        )]
    };
    let (vault, client) = scripted(slow(), Duration::from_secs(10), false)?;
    let uris = [
        "openbao+kv2://secret/app/api#token",
        "openbao+kv2://secret/app/api#user",
        "openbao+kv2://secret/app/api#token?version=1",
    ];
    let results = burst(&client, &uris, 30).await;
    for (i, result) in results.into_iter().enumerate() {
        let want = if i % 3 == 1 { "U" } else { "T" };
        assert_eq!(result?.expose_str(), Some(want), "{}", uris[i % 3]);
    }
    let mut paths = reads(&vault);
    paths.sort();
    assert_eq!(
        paths.len(),
        3,
        "one read per key and version, each shared by its own requests: {paths:?}"
    );
    assert_eq!(
        paths.iter().filter(|p| p.contains("version=1")).count(),
        1,
        "{paths:?}"
    );
    // Without coalescing every request reads.
    let (vault, client) = scripted(slow(), Duration::from_secs(10), true)?;
    for result in burst(&client, &uris[..1], 12).await {
        assert_eq!(result?.expose_str(), Some("T"));
    }
    assert_eq!(reads(&vault).len(), 12);
    Ok(())
}
