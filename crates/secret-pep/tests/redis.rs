//! The PEP's state on a real Redis (feature `redis`): Debian's `redis-server`, started by the
//! test support on a free loopback port. Two `Pep`s on one Redis stand in for two replicas.
//!
//! Most tests share one server, each under a key prefix of its own; the tests that stop,
//! pause or scan the server start their own.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use secret_pep::{
    AccessRequest, DenyReason, ExecutionContext, Grant, MemoryGrantStore, PdpFuture, Pep,
    PepConfig, PepError, PepState, RedisConfig, RedisState, SecretPolicyService,
};
use secret_telemetry::names::metric;
use secret_telemetry::testing::MetricsCapture;
use secrets_test_support::pep::Counting;
use secrets_test_support::redis::{RedisServer, redis_or_skip, shared_redis};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TENANT: &str = "t1";
const STATE_KEY: &[u8] = b"pep-state-key-for-tests-0123456789";
const URI: &str = "openbao+kv2://secret/app/api#token";

/// Permits everyone but `mallory`: `uses` uses for `ttl`.
#[derive(Debug)]
struct Permit {
    uses: u32,
    ttl: Duration,
    delay: Duration,
    issued: AtomicUsize,
}

impl Permit {
    fn counted(uses: u32, ttl: Duration) -> Arc<Counting<Self>> {
        Counting::new(Self {
            uses,
            ttl,
            delay: Duration::ZERO,
            issued: AtomicUsize::new(0),
        })
    }
}

impl SecretPolicyService for Permit {
    fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            if request.subject == "mallory" {
                return Err(PepError::AuthzDenied {
                    reason: DenyReason::PdpDeny,
                });
            }
            let mut grant = Grant::new(format!("grant-{n}"), self.ttl, self.uses);
            grant.decision_id = Some(format!("decision-{n}"));
            Ok(grant)
        })
    }
}

fn ctx(subject: &str, jti: &str) -> ExecutionContext {
    ExecutionContext::new(subject)
        .with_aud(["crud.secrets"])
        .with_issuer("https://issuer.test")
        .with_jti(jti)
}

fn config() -> PepConfig {
    PepConfig::new(TENANT, "secret".parse().unwrap())
        .with_negative_cache(Duration::from_secs(5), Duration::from_millis(200))
        .with_anti_replay(true, Duration::from_secs(3))
}

fn redis_config(url: &str, prefix: &str) -> RedisConfig {
    RedisConfig::new(url, STATE_KEY)
        .unwrap()
        .with_key_prefix(prefix)
        .with_timeouts(Duration::from_millis(400), Duration::from_millis(400))
}

/// A replica: its own `RedisState` (its own connection) on the shared Redis.
fn replica<P: SecretPolicyService + 'static>(url: &str, prefix: &str, pdp: &Arc<P>) -> Pep {
    replica_with(config(), url, prefix, pdp)
}

fn replica_with<P: SecretPolicyService + 'static>(
    config: PepConfig,
    url: &str,
    prefix: &str,
    pdp: &Arc<P>,
) -> Pep {
    let state = RedisState::new(&redis_config(url, prefix), TENANT).unwrap();
    Pep::builder(config)
        .pdp(Arc::clone(pdp))
        .state(PepState::redis(state))
        .build()
        .unwrap()
}

fn keys_with(server: &RedisServer, prefix: &str, kind: &str) -> Vec<String> {
    server
        .keys()
        .unwrap()
        .into_iter()
        .map(|k| String::from_utf8(k).unwrap())
        .filter(|k| k.starts_with(prefix) && k.contains(&format!(":{kind}:")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jti_used_on_one_replica_is_refused_on_the_other() -> TestResult {
    let Some(server) = shared_redis() else {
        return Ok(());
    };
    let pdp = Permit::counted(10, Duration::from_secs(60));
    let (a, b) = (
        replica(&server.url(), "replay:", &pdp),
        replica(&server.url(), "replay:", &pdp),
    );
    let granted = a.authorize(&ctx("alice", "jti-shared"), URI).await?;
    assert_eq!(granted.use_number(), 1);
    let replay = b
        .authorize(&ctx("alice", "jti-shared"), URI)
        .await
        .unwrap_err();
    assert_eq!(replay.deny_reason(), Some(DenyReason::Replay));
    // The replay was refused before the grant: no use taken, no PDP call.
    let next = b.authorize(&ctx("alice", "jti-next"), URI).await?;
    assert_eq!((next.use_number(), pdp.single()), (2, 1));
    // Another issuer's `jti-shared` is another token.
    let other = ctx("alice", "jti-shared").with_issuer("https://other.test");
    assert!(b.authorize(&other, URI).await.is_ok());
    // A batch only checks: it sees the jti as used.
    let batch = b
        .authorize_batch(&ctx("alice", "jti-shared"), &[URI], &[])
        .await
        .unwrap_err();
    assert_eq!(batch.deny_reason(), Some(DenyReason::Replay));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_racing_one_grant_use_each_decision_exactly_max_uses_times() -> TestResult {
    let Some(server) = shared_redis() else {
        return Ok(());
    };
    let pdp = Permit::counted(5, Duration::from_secs(60));
    let peps = [
        replica(&server.url(), "race:", &pdp),
        replica(&server.url(), "race:", &pdp),
    ];
    let mut tasks = Vec::new();
    for (i, pep) in peps.iter().cycle().take(200).enumerate() {
        let pep = pep.clone();
        tasks.push(tokio::spawn(async move {
            let granted = pep
                .authorize(&ctx("alice", &format!("race-{i}")), URI)
                .await?;
            Ok::<_, PepError>((granted.grant().grant_id.clone(), granted.use_number()))
        }));
    }
    let mut per_grant: HashMap<String, Vec<u32>> = HashMap::new();
    for task in tasks {
        let (grant, n) = task.await??;
        per_grant.entry(grant).or_default().push(n);
    }
    for (grant, uses) in &mut per_grant {
        uses.sort_unstable();
        assert_eq!(*uses, [1, 2, 3, 4, 5], "{grant}");
    }
    // Every decision the PDP made was used, exactly five times: 200 reads, 40 decisions.
    assert_eq!(per_grant.len(), 40);
    assert_eq!(pdp.single(), per_grant.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_goes_back_once_and_the_count_never_drops_below_zero() -> TestResult {
    let Some(server) = shared_redis() else {
        return Ok(());
    };
    let pdp = Permit::counted(2, Duration::from_secs(60));
    let (a, b) = (
        replica(&server.url(), "back:", &pdp),
        replica(&server.url(), "back:", &pdp),
    );
    let first = a.authorize(&ctx("alice", "back-1"), URI).await?;
    let second = b.authorize(&ctx("alice", "back-2"), URI).await?;
    assert_eq!((first.use_number(), second.use_number()), (1, 2));
    // B's read failed before the vault answered: its use serves one more read, on A.
    assert!(second.give_back_async().await);
    let third = a.authorize(&ctx("alice", "back-3"), URI).await?;
    assert_eq!((third.use_number(), pdp.single()), (2, 1));
    // The counter is forced to zero (as if the uses were given back elsewhere): a give-back
    // finds nothing to return and leaves it at zero.
    let uses = keys_with(&server, "back:", "uses");
    assert_eq!(uses.len(), 1, "{uses:?}");
    let set = server.command(&["SET", uses[0].as_str(), "0", "KEEPTTL"])?;
    assert_eq!(set, secrets_test_support::redis::Reply::ok());
    assert!(!first.give_back_async().await);
    let count = server.command(&["GET", uses[0].as_str()])?;
    assert_eq!(count.as_bytes(), Some(&b"0"[..]));
    // A use of a grant that was since replaced never goes back to the new one.
    let fourth = a.authorize(&ctx("alice", "back-4"), URI).await?;
    let fifth = b.authorize(&ctx("alice", "back-5"), URI).await?;
    let sixth = b.authorize(&ctx("alice", "back-6"), URI).await?;
    assert_eq!(sixth.use_number(), 1, "the third decision");
    assert_ne!(sixth.grant().grant_id, fourth.grant().grant_id);
    assert!(!fourth.give_back_async().await && !fifth.give_back_async().await);
    assert!(sixth.give_back_async().await);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_expires_with_its_window() -> TestResult {
    let Some(server) = shared_redis() else {
        return Ok(());
    };
    let pdp = Permit::counted(5, Duration::from_millis(700));
    let pep = replica(&server.url(), "expiry:", &pdp);
    let _first = pep.authorize(&ctx("alice", "exp-1"), URI).await?;
    let denied = pep.authorize(&ctx("mallory", "exp-2"), URI).await;
    assert_eq!(denied.unwrap_err().deny_reason(), Some(DenyReason::PdpDeny));
    let entries: Vec<_> = server
        .entries()?
        .into_iter()
        .filter(|e| e.key.starts_with(b"expiry:"))
        .collect();
    let pttl = |kind: &str| -> Vec<i64> {
        entries
            .iter()
            .filter(|e| String::from_utf8_lossy(&e.key).contains(&format!(":{kind}:")))
            .map(|e| e.pttl_ms)
            .collect()
    };
    let (grants, uses, replays, denials) =
        (pttl("grant"), pttl("uses"), pttl("replay"), pttl("deny"));
    assert_eq!(
        (grants.len(), uses.len(), replays.len(), denials.len()),
        (1, 1, 2, 1)
    );
    assert!(
        grants.iter().chain(&uses).all(|t| (1..=700).contains(t)),
        "{entries:?}"
    );
    assert!(
        replays.iter().all(|t| (2000..=3000).contains(t)),
        "{replays:?}"
    );
    assert!(
        denials.iter().all(|t| (4000..=5200).contains(t)),
        "{denials:?}"
    );
    assert!(
        entries.iter().all(|e| e.pttl_ms > 0),
        "every key expires: {entries:?}"
    );
    // Once the grant's TTL has passed, the next read is a fresh decision.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after = pep.authorize(&ctx("alice", "exp-3"), URI).await?;
    assert_eq!((after.use_number(), pdp.single()), (1, 3));
    Ok(())
}

fn failures(capture: &MetricsCapture, store: &str, outcome: &str) -> f64 {
    capture.points().map_or(0.0, |points| {
        points.sum_where(
            metric::STATE_STORE_FAILURES,
            &[("store", store), ("outcome", outcome)],
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_is_state_store_unavailable_within_the_timeout() -> TestResult {
    let Some(mut server) = redis_or_skip() else {
        return Ok(());
    };
    let capture = MetricsCapture::new();
    let pdp = Permit::counted(5, Duration::from_secs(60));
    let state = RedisState::new(&redis_config(&server.url(), "silent:"), TENANT)?;
    let pep = Pep::builder(config())
        .pdp(Arc::clone(&pdp))
        .metrics(capture.metrics())
        .state(PepState::redis(state))
        .build()?;
    let _warm = pep.authorize(&ctx("alice", "silent-1"), URI).await?;
    server.pause()?;
    let started = Instant::now();
    let error = pep
        .authorize(&ctx("alice", "silent-2"), URI)
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(error.code(), "STATE_STORE_UNAVAILABLE", "{error}");
    // The 400 ms timeout, with room for a loaded machine; never a hang.
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert!(waited >= Duration::from_millis(350), "{waited:?}");
    assert_eq!(failures(&capture, "grant", "refused"), 1.0);
    assert_eq!(failures(&capture, "replay", "refused"), 1.0);
    assert_eq!(pdp.single(), 1, "no PDP call without the store");
    server.resume()?;
    let back = poll_until_granted(&pep, "silent-back").await?;
    // The state survived the pause: the same decision serves. The call that timed out was
    // still queued and ran once the server woke: its use and its jti are spent (a lost read,
    // never an extra one).
    assert_eq!(pdp.single(), 1);
    assert!(back.use_number() >= 3, "{}", back.use_number());
    let late = pep
        .authorize(&ctx("alice", "silent-2"), URI)
        .await
        .unwrap_err();
    assert_eq!(late.deny_reason(), Some(DenyReason::Replay));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_never_answers_the_first_connection_fails_within_the_timeout() -> TestResult
{
    // The kernel completes the TCP handshake into the backlog; nothing ever reads or answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("redis://{}", listener.local_addr()?);
    let pdp = Permit::counted(5, Duration::from_secs(60));
    let pep = replica(&url, "mute:", &pdp);
    for jti in ["mute-1", "mute-2"] {
        let started = Instant::now();
        let error = pep.authorize(&ctx("alice", jti), URI).await.unwrap_err();
        assert_eq!(error.code(), "STATE_STORE_UNAVAILABLE", "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(pdp.single(), 0);
    drop(listener);
    Ok(())
}

/// Retries a read (fresh `jti` each time) until the store answers again, for at most 10 s.
async fn poll_until_granted(pep: &Pep, jti: &str) -> Result<secret_pep::Authorized, PepError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        match pep
            .authorize(&ctx("alice", &format!("{jti}-{n}")), URI)
            .await
        {
            Err(e) if e.code() == "STATE_STORE_UNAVAILABLE" && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_refuses_every_read_and_recovers_without_a_new_pep() -> TestResult {
    let Some(mut server) = redis_or_skip() else {
        return Ok(());
    };
    let pdp = Permit::counted(100, Duration::from_secs(60));
    let (a, b) = (
        replica(&server.url(), "down:", &pdp),
        replica(&server.url(), "down:", &pdp),
    );
    let _warm = a.authorize(&ctx("alice", "down-1"), URI).await?;
    server.stop();
    for (i, pep) in [&a, &b, &a].into_iter().enumerate() {
        let error = pep
            .authorize(&ctx("alice", &format!("down-x{i}")), URI)
            .await
            .unwrap_err();
        assert_eq!(error.code(), "STATE_STORE_UNAVAILABLE", "{error}");
        let many = pep
            .authorize_many(&ctx("alice", &format!("down-m{i}")), &[URI])
            .await;
        assert_eq!(many.unwrap_err().code(), "STATE_STORE_UNAVAILABLE");
    }
    assert_eq!(pdp.single(), 1, "nothing decided while the store was down");
    server.restart()?;
    // The restarted server is empty: the next read is a fresh decision, on either replica.
    let back = poll_until_granted(&a, "down-back").await?;
    assert_eq!(back.use_number(), 1);
    let other = poll_until_granted(&b, "down-other").await?;
    assert_eq!(other.grant().grant_id, back.grant().grant_id);
    assert_eq!(pdp.single(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_replay_configured_fail_open_lets_a_call_through_and_counts_it() -> TestResult {
    let Some(mut server) = redis_or_skip() else {
        return Ok(());
    };
    let url = server.url();
    server.stop();
    for fail_open in [true, false] {
        let capture = MetricsCapture::new();
        let pdp = Permit::counted(5, Duration::from_secs(60));
        let redis = RedisState::new(&redis_config(&url, "open:"), TENANT)?;
        let state = PepState::memory()
            .with_replay(redis.replay_store())
            .with_grants(Arc::new(MemoryGrantStore::new(16)));
        let pep = Pep::builder(config().with_anti_replay_fail_open(fail_open))
            .pdp(Arc::clone(&pdp))
            .metrics(capture.metrics())
            .state(state)
            .build()?;
        let result = pep.authorize(&ctx("alice", "open-1"), URI).await;
        if fail_open {
            assert_eq!(result?.use_number(), 1);
            assert_eq!(failures(&capture, "replay", "allowed"), 1.0);
        } else {
            assert_eq!(result.unwrap_err().code(), "STATE_STORE_UNAVAILABLE");
            assert_eq!(failures(&capture, "replay", "refused"), 1.0);
            assert_eq!(pdp.single(), 0);
        }
    }
    // Grants never fail open.
    let pdp = Permit::counted(5, Duration::from_secs(60));
    let pep = replica_with(
        config().with_anti_replay_fail_open(true),
        &url,
        "open:",
        &pdp,
    );
    let error = pep
        .authorize(&ctx("alice", "open-2"), URI)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "STATE_STORE_UNAVAILABLE");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_configured_from_the_environment_share_their_state() -> TestResult {
    let Some(server) = shared_redis() else {
        return Ok(());
    };
    let url = server.url();
    let lookup = move |name: &str| match name {
        "TENANT_ID" => Some(TENANT.to_owned()),
        "TENANT_ALLOWED_MOUNTS" => Some("secret".to_owned()),
        "REDIS_URL" => Some(url.clone()),
        "REDIS_KEY_PREFIX" => Some("env:".to_owned()),
        "SECRET_TENANT_SALT" => Some("tenant-salt-for-env-tests-0123".to_owned()),
        "AUTHZEN_PDP_URL" => Some("http://127.0.0.1:9".to_owned()),
        _ => None,
    };
    let pdp = Permit::counted(5, Duration::from_secs(60));
    let peps: Vec<Pep> = (0..2)
        .map(|_| {
            let config = PepConfig::from_lookup(&lookup).unwrap();
            Pep::builder(config).pdp(Arc::clone(&pdp)).build().unwrap()
        })
        .collect();
    let first = peps[0].authorize(&ctx("alice", "env-1"), URI).await?;
    let second = peps[1].authorize(&ctx("alice", "env-2"), URI).await?;
    assert_eq!(
        (first.use_number(), second.use_number(), pdp.single()),
        (1, 2, 1)
    );
    let replay = peps[1]
        .authorize(&ctx("alice", "env-1"), URI)
        .await
        .unwrap_err();
    assert_eq!(replay.deny_reason(), Some(DenyReason::Replay));
    assert!(!keys_with(&server, "env:secrets:pep:t1:", "grant").is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_speaks_tls_with_the_given_ca() -> TestResult {
    let server = match RedisServer::start_tls() {
        Ok(server) => server,
        Err(e) => {
            secrets_test_support::skip_or_fail(&format!("Redis unavailable: {e}"));
            return Ok(());
        }
    };
    assert!(server.url().starts_with("rediss://"));
    let pdp = Permit::counted(5, Duration::from_secs(60));
    let config = redis_config(&server.url(), "tls:").with_ca_bundle(server.ca_cert_path());
    let pep = Pep::builder(self::config())
        .pdp(Arc::clone(&pdp))
        .state(PepState::redis(RedisState::new(&config, TENANT)?))
        .build()?;
    let granted = pep.authorize(&ctx("alice", "tls-1"), URI).await?;
    assert_eq!(granted.use_number(), 1);
    assert_eq!(keys_with(&server, "tls:", "grant").len(), 1);
    // Without the CA (the webpki roots), the server's certificate is not trusted.
    let untrusted = Pep::builder(self::config())
        .pdp(Arc::clone(&pdp))
        .state(PepState::redis(RedisState::new(
            &redis_config(&server.url(), "tls:"),
            TENANT,
        )?))
        .build()?;
    let error = untrusted
        .authorize(&ctx("alice", "tls-2"), URI)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "STATE_STORE_UNAVAILABLE");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_in_redis_names_a_subject_uri_path_jti_or_the_key() -> TestResult {
    let Some(server) = redis_or_skip() else {
        return Ok(());
    };
    const SUBJECT: &str = "subject-canary-7f3a";
    const JTI: &str = "jti-canary-19bc";
    const PATH: &str = "path-canary-e2d1";
    const KEY: &str = "state-key-canary-0123456789";
    let uri = format!("openbao+kv2://secret/{PATH}/db#password");
    let config = RedisConfig::new(server.url(), KEY.as_bytes())?;
    let pdp = Permit::counted(2, Duration::from_secs(60));
    let pep = Pep::builder(self::config())
        .pdp(Arc::clone(&pdp))
        .state(PepState::redis(RedisState::new(&config, TENANT)?))
        .build()?;
    let caller = |jti: &str| {
        let mut caller = ctx(SUBJECT, jti).with_cnf_jkt("jkt-canary-55aa");
        caller.client_id = Some("client-canary-0b0b".to_owned());
        caller
    };
    let first = pep.authorize(&caller(JTI), &uri).await?;
    assert!(first.give_back_async().await);
    let _second = pep.authorize(&caller(&format!("{JTI}-2")), &uri).await?;
    let _many = pep
        .authorize_many(&caller(&format!("{JTI}-3")), &[uri.as_str(), URI])
        .await?;
    let _batch = pep
        .authorize_batch(&caller(&format!("{JTI}-4")), &[uri.as_str()], &[])
        .await?;
    let _denied = pep
        .authorize(&ctx("mallory", &format!("{JTI}-5")), &uri)
        .await;
    let entries = server.entries()?;
    let kinds = ["replay", "grant", "uses", "deny"];
    for kind in kinds {
        assert!(
            entries
                .iter()
                .any(|e| String::from_utf8_lossy(&e.key).contains(&format!(":{kind}:"))),
            "no {kind} key: {entries:?}"
        );
    }
    for entry in &entries {
        let key = String::from_utf8_lossy(&entry.key);
        assert!(key.starts_with("secrets:pep:t1:"), "{key}");
        for canary in [
            SUBJECT,
            JTI,
            PATH,
            KEY,
            "jkt-canary",
            "client-canary",
            "mallory",
            "alice",
            "app/api",
            "secret/",
            "openbao",
        ] {
            assert!(!entry.contains(canary.as_bytes()), "{canary} in {entry:?}");
        }
    }
    Ok(())
}
