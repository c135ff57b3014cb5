//! `db+cred://` leases against a scripted vault (the test support's fault server): what the
//! real server cannot be made to do on cue. A lease of no duration, a vault slow to issue
//! while the client closes or rotates, slow revocations at close, `keep_leases` racing an
//! issue, a static role with no rotation time: no hot loop, no lease left unrevoked, `close`
//! bounded.

use std::time::{Duration, Instant};

use secret_uri::AllowedMounts;
use secrets_sdk::{BootstrapConfig, SecretsClient};
use secrets_test_support::{Fault, FaultServer};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn creds(lease: &str, ttl: u64, renewable: bool) -> Fault {
    Fault::json(
        200,
        &json!({"lease_id": lease, "renewable": renewable, "lease_duration": ttl,
                "data": {"username": format!("u-{lease}"), "password": "pw"}}),
    )
}

/// A scripted vault: the token lookup the client makes first, then `script`.
fn vault(mut script: Vec<Fault>) -> Result<FaultServer, secrets_test_support::Error> {
    script.insert(
        0,
        Fault::json(
            200,
            &json!({"data": {"ttl": 0, "renewable": false, "policies": ["root"]}}),
        ),
    );
    FaultServer::start(script)
}

fn client(server: &FaultServer, overlap: Duration) -> Result<SecretsClient, secrets_sdk::Error> {
    SecretsClient::builder()
        .allowed_mounts(AllowedMounts::from_csv("database"))
        .bootstrap(BootstrapConfig::token(server.addr(), "root"))
        .lease_overlap(overlap)
        .build()
}

/// The requests the vault got: (creds, renews, revoked lease ids).
fn seen(server: &FaultServer) -> (usize, usize, Vec<String>) {
    let requests = server.requests();
    let count = |part: &str| requests.iter().filter(|r| r.path.contains(part)).count();
    let revoked = requests
        .iter()
        .filter(|r| r.path.contains("sys/leases/revoke"))
        .filter_map(|r| r.json())
        .filter_map(|j| j["lease_id"].as_str().map(str::to_owned))
        .collect();
    (count("creds/"), count("sys/leases/renew"), revoked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_of_no_duration_is_refused_and_revoked_never_renewed_in_a_loop() -> TestResult {
    let server = vault(vec![
        creds("database/creds/app/L0", 0, true),
        Fault::status(204),
    ])?;
    let client = client(&server, Duration::from_secs(30))?;
    let read = client.resolve("db+cred://database/app#password").await;
    assert_eq!(read.err().map(|e| e.code()), Some("MALFORMED_RESPONSE"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (issued, renewed, revoked) = seen(&server);
    assert_eq!((issued, renewed), (1, 0), "one issue, no renewal loop");
    assert_eq!(
        revoked,
        ["database/creds/app/L0"],
        "the unusable lease is revoked"
    );
    assert_eq!(client.leases_held(), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_that_grants_nothing_rotates_without_spinning() -> TestResult {
    let server = vault(vec![
        creds("database/creds/app/L1", 1, true),
        // Every renewal grants nothing; every issue after the first gives a new lease.
        Fault::json(
            200,
            &json!({"lease_id": "database/creds/app/L1", "lease_duration": 0}),
        ),
        creds("database/creds/app/L2", 1, true),
        Fault::json(
            200,
            &json!({"lease_id": "database/creds/app/L2", "lease_duration": 0}),
        ),
    ])?;
    let client = client(&server, Duration::from_secs(30))?;
    client.resolve("db+cred://database/app#password").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (issued, renewed, _) = seen(&server);
    // One step at least 200 ms apart: a handful, never hundreds.
    assert!(
        issued + renewed < 20,
        "{issued} issues and {renewed} renewals in 2 s"
    );
    client.close();
    Ok(())
}

#[test]
fn close_while_the_vault_is_issuing_revokes_what_it_issued() -> TestResult {
    let server = vault(vec![
        Fault::delay(
            Duration::from_millis(1500),
            creds("database/creds/app/L1", 60, true),
        ),
        Fault::status(204),
    ])?;
    let client = client(&server, Duration::from_secs(30))?;
    let reader = client.clone();
    let read = std::thread::spawn(move || {
        reader
            .resolve_blocking("db+cred://database/app#password")
            .map(|_| ())
            .map_err(|e| e.code())
    });
    std::thread::sleep(Duration::from_millis(300));
    let closing = Instant::now();
    client.close();
    assert!(
        closing.elapsed() < Duration::from_secs(6),
        "close is bounded"
    );
    let outcome = read.join().map_err(|_| "the reader panicked")?;
    assert_eq!(
        outcome,
        Err("CLOSED"),
        "the reader learns the client closed"
    );
    assert_eq!(
        seen(&server).2,
        ["database/creds/app/L1"],
        "the issued lease is revoked"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_during_a_rotation_revokes_the_old_lease_and_its_successor() -> TestResult {
    let server = vault(vec![
        creds("database/creds/app/L1", 3, false),
        Fault::delay(
            Duration::from_millis(2000),
            creds("database/creds/app/L2", 3, false),
        ),
        Fault::status(204),
    ])?;
    let client = client(&server, Duration::from_secs(1))?;
    client.resolve("db+cred://database/app#password").await?;
    // The rotation starts at about 2 s; its issue is answered at about 4 s.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(seen(&server).0, 2, "the rotation is under way");
    let closer = client.clone();
    tokio::task::spawn_blocking(move || closer.close()).await?;
    let mut revoked = seen(&server).2;
    revoked.sort();
    assert_eq!(revoked, ["database/creds/app/L1", "database/creds/app/L2"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_revokes_every_lease_at_once_within_its_bound() -> TestResult {
    let server = vault(vec![
        creds("database/creds/a/L1", 60, true),
        creds("database/creds/b/L2", 60, true),
        creds("database/creds/c/L3", 60, true),
        creds("database/creds/d/L4", 60, true),
        Fault::delay(Duration::from_millis(2000), Fault::status(204)),
    ])?;
    let client = client(&server, Duration::from_secs(30))?;
    for role in ["a", "b", "c", "d"] {
        client
            .resolve(format!("db+cred://database/{role}#password").as_str())
            .await?;
    }
    let closer = client.clone();
    let took = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        closer.close();
        started.elapsed()
    })
    .await?;
    assert!(
        took < Duration::from_secs(4),
        "concurrent revokes: {took:?}"
    );
    assert_eq!(seen(&server).2.len(), 4, "every lease's revoke was sent");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_leases_during_an_issue_still_tracks_the_new_lease() -> TestResult {
    let server = vault(vec![
        Fault::delay(
            Duration::from_millis(1000),
            creds("database/creds/app/L1", 60, true),
        ),
        Fault::status(204),
    ])?;
    let client = client(&server, Duration::from_secs(30))?;
    let reader = client.clone();
    let read = tokio::spawn(async move {
        reader
            .resolve("db+cred://database/app#password")
            .await
            .map(|_| ())
            .map_err(|e| e.code())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.keep_leases();
    assert_eq!(read.await?, Ok(()));
    assert_eq!(
        client.leases_held(),
        1,
        "the lease issued after keep_leases is held"
    );
    // Served from it: no second user for the role.
    client.resolve("db+cred://database/app#username").await?;
    assert_eq!(seen(&server).0, 1);
    let closer = client.clone();
    tokio::task::spawn_blocking(move || closer.close()).await?;
    assert_eq!(seen(&server).2, ["database/creds/app/L1"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_role_without_a_rotation_time_is_not_read_on_every_resolve() -> TestResult {
    let server = vault(vec![Fault::json(
        200,
        &json!({"lease_id": "", "renewable": false, "lease_duration": 0,
                "data": {"username": "s", "password": "p", "ttl": 0}}),
    )])?;
    let client = client(&server, Duration::from_secs(30))?;
    for _ in 0..20 {
        client.resolve("db+db://database/st#password").await?;
    }
    assert_eq!(seen(&server).0, 1, "held for a while, not read per resolve");
    client.close();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_rotation_a_capped_lease_just_ends_and_the_next_read_issues_anew() -> TestResult {
    let server = vault(vec![
        creds("database/creds/app/L1", 3, true),
        // The renewal at ~2 s is capped at 1 s: the role's max TTL.
        Fault::json(
            200,
            &json!({"lease_id": "database/creds/app/L1", "lease_duration": 1}),
        ),
        creds("database/creds/app/L2", 30, true),
        Fault::status(204),
    ])?;
    let client = SecretsClient::builder()
        .allowed_mounts(AllowedMounts::from_csv("database"))
        .bootstrap(BootstrapConfig::token(server.addr(), "root"))
        .lease_overlap(Duration::from_secs(30))
        .rotate_leases(false)
        .build()?;
    let first = client.resolve("db+cred://database/app#username").await?;
    assert_eq!(first.expose_str(), Some("u-database/creds/app/L1"));
    // Past the capped end (≤ 3.3 s): renewed once, and no successor read ahead of it.
    tokio::time::sleep(Duration::from_millis(3600)).await;
    let (issued, renewed, _) = seen(&server);
    assert_eq!(
        (issued, renewed),
        (1, 1),
        "(issues, renewals) before the lease's end"
    );
    let next = client.resolve("db+cred://database/app#username").await?;
    assert_eq!(
        next.expose_str(),
        Some("u-database/creds/app/L2"),
        "the ended lease is not served: the read issued a new one"
    );
    let closer = client.clone();
    tokio::task::spawn_blocking(move || closer.close()).await?;
    let mut revoked = seen(&server).2;
    revoked.sort();
    assert_eq!(revoked, ["database/creds/app/L1", "database/creds/app/L2"]);
    Ok(())
}
