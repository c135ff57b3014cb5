use super::*;
use crate::pdp::{BatchDecision, BatchRequest, DevAllowAll, PdpFuture};
use crate::{BatchFailure, PdpFailure, PdpSettings};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

const URI: &str = "openbao+kv2://secret/app/api#token";
const ISSUER: &str = "https://issuer.test";

/// A scripted PDP: permits a `reader` of [`ISSUER`] whose client is not `evil` and whose
/// node is not `blocked`, with `uses` uses and `ttl`; counts calls; can fail its first call,
/// answer slowly, bind elsewhere or attach an obligation.
#[derive(Debug)]
struct Script {
    calls: AtomicUsize,
    batches: AtomicUsize,
    uses: u32,
    ttl: Duration,
    delay: Duration,
    fail_first: bool,
    bind_to: Option<&'static str>,
    wrap_ttl: bool,
    seen: Mutex<Vec<String>>,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            calls: AtomicUsize::new(0),
            batches: AtomicUsize::new(0),
            uses: 5,
            ttl: Duration::from_secs(60),
            delay: Duration::ZERO,
            fail_first: false,
            bind_to: None,
            wrap_ttl: false,
            seen: Mutex::new(Vec::new()),
        }
    }
}

impl Script {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn decide(&self, request: &AccessRequest<'_>, call: usize) -> Result<Grant, PepError> {
        if self.fail_first && call == 0 {
            return Err(PepError::unavailable(PdpFailure::Connect));
        }
        let ctx = request.context;
        let permit = ctx.roles.iter().any(|r| r == "reader")
            && ctx.issuer.as_deref() == Some(ISSUER)
            && ctx.client_id.as_deref() != Some("evil")
            && ctx.node_id.as_deref() != Some("blocked");
        if !permit {
            return Err(PepError::denied(DenyReason::PdpDeny));
        }
        let mut grant = Grant::new(format!("g{call}"), self.ttl, self.uses);
        grant.cnf_binding = self.bind_to.map(str::to_owned);
        if self.wrap_ttl {
            grant.wrap_ttl = Some(Duration::from_secs(30));
        }
        Ok(grant)
    }
}

impl SecretPolicyService for Script {
    fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(request.uri.as_str().to_owned());
        }
        Box::pin(async move {
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            self.decide(request, call)
        })
    }

    fn authorize_batch<'a>(
        &'a self,
        request: &'a BatchRequest<'a>,
    ) -> PdpFuture<'a, Vec<BatchDecision>> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            let mut out = Vec::new();
            for (uri, required) in request.plan() {
                let single = request.request_for(uri);
                let call = self.calls.load(Ordering::SeqCst) + 1000;
                let outcome = self
                    .decide(&single, call)
                    .map_err(|e| BatchFailure::from_error(&e));
                out.push(BatchDecision::new(uri.clone(), required, outcome));
            }
            Ok(out)
        })
    }
}

fn config() -> PepConfig {
    PepConfig::new("t1", "secret".parse().unwrap())
}

fn reader(jti: &str) -> ExecutionContext {
    ExecutionContext::new("alice")
        .with_aud(["crud.secrets"])
        .with_roles(["reader"])
        .with_issuer(ISSUER)
        .with_jti(jti)
}

fn next_jti() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("t-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn pep(config: PepConfig, pdp: Arc<Script>) -> Pep {
    Pep::builder(config).pdp(pdp).build().unwrap()
}

fn reason<T>(result: Result<T, PepError>) -> Option<DenyReason> {
    result.err().and_then(|e| e.deny_reason())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[tokio::test]
async fn a_warm_grant_serves_only_tokens_the_pdp_decided_on() {
    let pdp = Arc::new(Script::default());
    let pep = pep(config(), Arc::clone(&pdp));
    let _ = pep.authorize(&reader("j1"), URI).await.unwrap();
    let _ = pep.authorize(&reader("j2"), URI).await.unwrap();
    assert_eq!(pdp.calls(), 1, "warm grant reused by the same token shape");

    // Same subject, other roles / issuer / client: the PDP is asked again and says no.
    let no_roles = reader("j3").with_roles(Vec::<String>::new());
    assert_eq!(
        reason(pep.authorize(&no_roles, URI).await),
        Some(DenyReason::PdpDeny)
    );
    let other_issuer = reader("j4").with_issuer("https://other.test");
    assert_eq!(
        reason(pep.authorize(&other_issuer, URI).await),
        Some(DenyReason::PdpDeny)
    );
    let mut evil = reader("j5");
    evil.client_id = Some("evil".to_owned());
    assert_eq!(
        reason(pep.authorize(&evil, URI).await),
        Some(DenyReason::PdpDeny)
    );
    assert_eq!(pdp.calls(), 4);
    // Their denials are negative-cached under their own keys, not the reader's.
    assert_eq!(
        reason(pep.authorize(&no_roles.with_jti("j6"), URI).await),
        Some(DenyReason::NegativeCached)
    );
    assert_eq!(
        pep.authorize(&reader("j7"), URI)
            .await
            .unwrap()
            .use_number(),
        3
    );
    assert_eq!(pdp.calls(), 4);

    // A second DPoP key of the same subject gets its own grant, bound by the PEP to it.
    let k1 = pep
        .authorize(&reader("j10").with_cnf_jkt("key-one"), URI)
        .await
        .unwrap();
    let k2 = pep
        .authorize(&reader("j11").with_cnf_jkt("key-two"), URI)
        .await
        .unwrap();
    assert_eq!(pdp.calls(), 6);
    assert_eq!(k1.grant().cnf_binding.as_deref(), Some("key-one"));
    assert_eq!(k2.grant().cnf_binding.as_deref(), Some("key-two"));
    let mtls = pep
        .authorize(&reader("j12").with_mtls_thumbprint("key-one"), URI)
        .await
        .unwrap();
    assert_eq!(mtls.use_number(), 1, "a certificate is another binding");
}

#[tokio::test]
async fn every_spelling_of_a_resource_shares_one_grant_and_one_denial() {
    let pdp = Arc::new(Script {
        uses: 7,
        ..Script::default()
    });
    let shared = Pep::builder(config())
        .pdp(Arc::clone(&pdp))
        .backend(secret_uri::Provider::OpenBao, "https://vault:8200")
        .backend(secret_uri::Provider::HashiCorp, "https://vault:8200")
        .build()
        .unwrap();
    let base = "openbao+kv2://secret/seven/api#token";
    for _ in 0..7 {
        let _ = shared.authorize(&reader(&next_jti()), base).await.unwrap();
    }
    assert_eq!(pdp.calls(), 1);
    // Aliases do not get seven more uses each: the grant is spent, so each next read is a
    // fresh decision, and every decision serves at most seven reads.
    let aliases = [
        "openbao+kv2://secret/seven/api#token?n=1",
        "openbao+kv2://secret/seven/api?n=2#token",
        "openbao://secret/seven/api#token",
        "hashicorp+kv2://secret/seven/api#token",
        "HASHICORP://secret/seven/api/#token",
    ];
    let mut uses_by_grant: HashMap<String, u32> = HashMap::new();
    for round in 0..14 {
        let alias = aliases[round % aliases.len()];
        let authorized = shared.authorize(&reader(&next_jti()), alias).await.unwrap();
        *uses_by_grant
            .entry(authorized.grant().grant_id.clone())
            .or_default() += 1;
    }
    assert_eq!(pdp.calls(), 3, "14 more reads are two more decisions");
    assert!(uses_by_grant.values().all(|n| *n == 7), "{uses_by_grant:?}");
    assert_eq!(shared.cache().grant_len(), 1, "aliases do not fill the map");
    // The PDP saw one canonical id, with the engine made explicit and no unserved parameter.
    let seen = pdp.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .all(|id| id == base || id == "hashicorp+kv2://secret/seven/api#token"),
        "{seen:?}"
    );

    // A denial under one spelling is the negative cache for all of them.
    let denied = reader(&next_jti()).with_roles(["nobody"]);
    assert_eq!(
        reason(shared.authorize(&denied, base).await),
        Some(DenyReason::PdpDeny)
    );
    let calls = pdp.calls();
    for alias in aliases {
        let again = denied.clone().with_jti(next_jti());
        assert_eq!(
            reason(shared.authorize(&again, alias).await),
            Some(DenyReason::NegativeCached),
            "{alias}"
        );
    }
    assert_eq!(
        pdp.calls(),
        calls,
        "no alias slipped past the negative cache"
    );
}

#[tokio::test]
async fn workflow_ids_sent_to_the_pdp_are_part_of_the_grant() {
    let pdp = Arc::new(Script::default());
    let pep = pep(config(), Arc::clone(&pdp));
    let mut x = reader(&next_jti());
    x.node_id = Some("node-x".into());
    let _ = pep.authorize(&x, URI).await.unwrap();
    // Y differs only in a decision input the PDP sees: it does not ride X's permit…
    let mut y = reader(&next_jti());
    y.node_id = Some("blocked".into());
    assert_eq!(
        reason(pep.authorize(&y, URI).await),
        Some(DenyReason::PdpDeny)
    );
    // …and its denial does not block X.
    let _ = pep
        .authorize(&x.clone().with_jti(next_jti()), URI)
        .await
        .unwrap();
    assert_eq!(pdp.calls(), 2);
    // A per-call correlation id is not a decision input: no new PDP call.
    let _ = pep
        .authorize(&x.with_jti(next_jti()).with_correlation_id("c-2"), URI)
        .await
        .unwrap();
    assert_eq!(pdp.calls(), 2);
}

#[tokio::test]
async fn a_replayed_token_never_reaches_the_pdp() {
    let pdp = Arc::new(Script::default());
    let pep = pep(config(), Arc::clone(&pdp));
    let ctx = reader("once");
    let _ = pep.authorize(&ctx, URI).await.unwrap();
    assert_eq!(pdp.calls(), 1);
    // A cold resource with the replayed jti: refused before the PDP.
    assert_eq!(
        reason(pep.authorize(&ctx, "openbao+kv2://secret/app/cold").await),
        Some(DenyReason::Replay)
    );
    assert_eq!(pdp.calls(), 1);
    let report = pep.authorize_batch(&ctx, &[URI], &[]).await;
    assert_eq!(reason(report), Some(DenyReason::Replay));
    assert_eq!(pdp.calls() + pdp.batches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_jti_is_remembered_until_the_token_expires() {
    let pdp = Arc::new(Script::default());
    let short = config().with_anti_replay(true, Duration::from_millis(30));
    let pep = pep(short, Arc::clone(&pdp));
    let exp = unix_now() + 120;
    let ctx = reader(&next_jti()).with_exp(exp);
    let _ = pep.authorize(&ctx, URI).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(
        reason(pep.authorize(&ctx, URI).await),
        Some(DenyReason::Replay),
        "ANTI_REPLAY_TTL_S has passed, but the token still lives"
    );
    // Without exp, the window is ANTI_REPLAY_TTL_S.
    let plain = reader(&next_jti());
    let _ = pep.authorize(&plain, URI).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(pep.authorize(&plain, URI).await.is_ok());

    // Lifetimes at the extremes.
    for (exp, expected) in [
        (unix_now() + 7200, DenyReason::TokenLifetime),
        (u64::MAX, DenyReason::TokenLifetime),
        (unix_now() - 3600, DenyReason::TokenExpired),
        (0, DenyReason::TokenExpired),
    ] {
        let calls = pdp.calls();
        let ctx = reader(&next_jti()).with_exp(exp);
        assert_eq!(
            reason(pep.authorize(&ctx, URI).await),
            Some(expected),
            "{exp}"
        );
        assert_eq!(pdp.calls(), calls);
    }
    // Within the clock skew, a just-expired token still passes.
    let ctx = reader(&next_jti()).with_exp(unix_now() - 5);
    assert!(pep.authorize(&ctx, URI).await.is_ok());
}

#[tokio::test]
async fn one_principal_cannot_lock_everyone_out_of_the_replay_store() {
    let pdp = Arc::new(Script {
        uses: 1000,
        ..Script::default()
    });
    let pep = pep(
        config().with_capacity(100, 100).with_replay_share(5),
        Arc::clone(&pdp),
    );
    let mallory = |jti: &str| reader(jti).with_roles(["reader"]);
    let mut refused = 0;
    for i in 0..20 {
        let mut ctx = mallory(&format!("m{i}"));
        ctx.subject = Some("mallory".into());
        if reason(pep.authorize(&ctx, URI).await) == Some(DenyReason::ReplayStoreFull) {
            refused += 1;
        }
    }
    assert_eq!(refused, 15, "mallory keeps her share of 5");
    for subject in ["alice", "bob", "carol"] {
        for i in 0..5 {
            let mut ctx = reader(&format!("{subject}-{i}"));
            ctx.subject = Some(subject.into());
            assert!(pep.authorize(&ctx, URI).await.is_ok(), "{subject} {i}");
        }
    }
}

#[tokio::test]
async fn a_spent_grant_is_replaced_by_a_fresh_decision() {
    // The defaults: 1 use, 300 s. A second read is a second decision, not a lock-out.
    let pdp = Arc::new(Script {
        uses: 1,
        ttl: Duration::from_secs(24 * 3600),
        ..Script::default()
    });
    let pep = pep(config(), Arc::clone(&pdp));
    for n in 1..=3 {
        let authorized = pep.authorize(&reader(&next_jti()), URI).await.unwrap();
        assert_eq!(authorized.use_number(), 1);
        assert_eq!(pdp.calls(), n);
    }
    // A batch does not report the spent grant as granted: it asks again.
    let report = pep
        .authorize_batch(&reader(&next_jti()), &[URI], &[])
        .await
        .unwrap();
    assert!(matches!(
        report.items()[0].status,
        BatchStatus::Granted {
            remaining_uses: 1,
            ..
        }
    ));
    assert_eq!(pdp.batches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_use_given_back_serves_one_more_read_and_no_more() {
    let pdp = Arc::new(Script {
        uses: 2,
        ..Script::default()
    });
    let pep = pep(config(), Arc::clone(&pdp));
    let first = pep.authorize(&reader(&next_jti()), URI).await.unwrap();
    assert!(
        first.give_back(),
        "the read failed before data: the use goes back"
    );
    let a = pep.authorize(&reader(&next_jti()), URI).await.unwrap();
    let b = pep.authorize(&reader(&next_jti()), URI).await.unwrap();
    assert_eq!((a.use_number(), b.use_number()), (1, 2));
    assert_eq!(pdp.calls(), 1);
    let c = pep.authorize(&reader(&next_jti()), URI).await.unwrap();
    assert_eq!(pdp.calls(), 2, "two data reads spent the first decision");
    assert_eq!(c.use_number(), 1);
    // Giving back to a dropped grant changes nothing for the live one.
    assert!(a.give_back());
    let d = pep.authorize(&reader(&next_jti()), URI).await.unwrap();
    assert_eq!(d.grant().grant_id, c.grant().grant_id);
    assert_eq!(d.use_number(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_first_call_leaves_exactly_one_live_grant() {
    let pdp = Arc::new(Script {
        uses: 7,
        delay: Duration::from_millis(100),
        fail_first: true,
        ..Script::default()
    });
    let pep = pep(config(), Arc::clone(&pdp));
    let race = |tasks: usize| {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let pep = pep.clone();
                tokio::spawn(async move { pep.authorize(&reader(&next_jti()), URI).await })
            })
            .collect();
        async move {
            let mut by_grant: HashMap<String, u32> = HashMap::new();
            let mut failed = 0;
            for handle in handles {
                match handle.await.unwrap() {
                    Ok(a) => *by_grant.entry(a.grant().grant_id.clone()).or_default() += 1,
                    Err(e) => {
                        assert_eq!(e.code(), "PDP_UNAVAILABLE");
                        failed += 1;
                    }
                }
            }
            (by_grant, failed)
        }
    };
    // 200 tasks wait on the first call, which fails: they share its failure; nothing is left
    // behind that could hold a second grant.
    let (by_grant, failed) = race(200).await;
    assert!(by_grant.values().all(|n| *n <= 7), "{by_grant:?}");
    let succeeded: u32 = by_grant.values().sum();
    assert_eq!(succeeded as usize + failed, 200);
    let calls_after_failure = pdp.calls();
    // 200 more: every decision serves exactly seven reads but the last.
    let (by_grant, failed) = race(200).await;
    assert_eq!(failed, 0);
    let full = by_grant.values().filter(|n| **n == 7).count();
    assert!(by_grant.values().all(|n| *n <= 7), "{by_grant:?}");
    assert!(full >= by_grant.len() - 1, "{by_grant:?}");
    assert_eq!(pdp.calls() - calls_after_failure, by_grant.len());
    assert_eq!(pep.cache().grant_len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ttl_runs_from_the_answer_and_is_rechecked_after_waiting() {
    // A slow PDP and a grant shorter than its answer time: still usable by the waiters.
    let slow = Arc::new(Script {
        uses: 100,
        ttl: Duration::from_millis(300),
        delay: Duration::from_millis(400),
        ..Script::default()
    });
    let pep_slow = pep(config(), Arc::clone(&slow));
    let handles: Vec<_> = (0..5)
        .map(|_| {
            let pep = pep_slow.clone();
            tokio::spawn(async move { pep.authorize(&reader(&next_jti()), URI).await })
        })
        .collect();
    for handle in handles {
        assert!(handle.await.unwrap().is_ok());
    }
    assert_eq!(slow.calls(), 1);

    // A zero TTL: the waiters must not use the expired grant; each asks again.
    let instant = Arc::new(Script {
        uses: 100,
        ttl: Duration::ZERO,
        delay: Duration::from_millis(50),
        ..Script::default()
    });
    let pep_zero = pep(config(), Arc::clone(&instant));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let pep = pep_zero.clone();
            tokio::spawn(async move { pep.authorize(&reader(&next_jti()), URI).await })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.await.unwrap().unwrap().use_number(), 1);
    }
    assert_eq!(instant.calls(), 4);
}

#[tokio::test]
async fn obligations_the_pep_cannot_honor_deny() {
    let pdp = Arc::new(Script {
        wrap_ttl: true,
        ..Script::default()
    });
    let pep = pep(config(), Arc::clone(&pdp));
    assert_eq!(
        reason(pep.authorize(&reader(&next_jti()), URI).await),
        Some(DenyReason::UnsupportedObligation)
    );
    assert_eq!(
        reason(pep.authorize(&reader(&next_jti()), URI).await),
        Some(DenyReason::NegativeCached)
    );
    let mut grant = Grant::new("g", Duration::from_secs(1), 1);
    grant.must_revalidate_on = vec!["role_change".into()];
    assert_eq!(
        reason(pep.accept(grant, &reader("x"), Instant::now())),
        Some(DenyReason::UnsupportedObligation)
    );
    let zero = Grant::new("g", Duration::from_secs(1), 0);
    assert_eq!(
        reason(pep.accept(zero, &reader("x"), Instant::now())),
        Some(DenyReason::UsesExhausted)
    );
}

#[tokio::test]
async fn binding_drift_remains_for_a_pdp_that_binds_elsewhere() {
    let pdp = Arc::new(Script {
        bind_to: Some("someone-else"),
        ..Script::default()
    });
    let pep = pep(config(), pdp);
    let err = pep
        .authorize(&reader("d1").with_cnf_jkt("mine"), URI)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "BINDING_DRIFT");
    assert!(!err.to_string().contains("mine"), "{err}");
    let bearer = pep.authorize(&reader("d2"), URI).await.unwrap_err();
    assert_eq!(bearer.code(), "BINDING_DRIFT");
}

#[tokio::test]
async fn many_reads_with_one_token_check_its_jti_once_and_ask_the_pdp_once() {
    let pdp = Arc::new(Script::default());
    let pep = pep(config(), Arc::clone(&pdp));
    let ctx = reader("batch-jti");
    let uris = [
        "openbao+kv2://secret/app/a#k",
        "openbao+kv2://secret/app/b#k",
        "file://infra/x",
        "openbao+kv2://secret/app/a#k",
        "not a uri",
    ];
    let results = pep.authorize_many(&ctx, &uris).await.unwrap();
    let codes: Vec<&str> = results
        .iter()
        .map(|r| r.as_ref().map_or_else(PepError::code, |_| "OK"))
        .collect();
    assert_eq!(
        codes,
        ["OK", "OK", "TENANT_MOUNT_MISMATCH", "OK", "ILLEGAL_SEGMENT"]
    );
    let uses: Vec<u32> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(Authorized::use_number))
        .collect();
    assert_eq!(uses, [1, 1, 2], "a URI listed twice takes two uses");
    assert_eq!(
        (pdp.batches.load(Ordering::SeqCst), pdp.calls()),
        (1, 0),
        "one batch, no single calls"
    );
    // The token is now used.
    assert_eq!(
        reason(pep.authorize_many(&ctx, &uris[..1]).await),
        Some(DenyReason::Replay)
    );
    // A batch pre-check does not spend the jti: one read may follow.
    let fresh = reader("pre-check");
    assert!(
        pep.authorize_batch(&fresh, &[URI], &[])
            .await
            .unwrap()
            .is_satisfied()
    );
    assert!(pep.authorize(&fresh, URI).await.is_ok());
}

#[tokio::test]
async fn a_batch_never_serves_a_grant_that_expired_while_it_waited() {
    let pdp = Arc::new(Script {
        ttl: Duration::from_millis(150),
        delay: Duration::from_millis(300),
        ..Script::default()
    });
    let pep = pep(config(), Arc::clone(&pdp));
    let a = "openbao+kv2://secret/app/a#k";
    let first = pep.authorize(&reader(&next_jti()), a).await.unwrap();
    // `a` is warm, `b` is not: the batch for `b` takes longer than `a`'s grant lives.
    let results = pep
        .authorize_many(&reader(&next_jti()), &[a, "openbao+kv2://secret/app/b#k"])
        .await
        .unwrap();
    let again = results[0].as_ref().unwrap();
    assert_ne!(
        again.grant().grant_id,
        first.grant().grant_id,
        "the expired grant served a read"
    );
}

#[tokio::test]
async fn a_batch_reports_an_expired_grant_as_spent() {
    let pdp = Arc::new(Script {
        ttl: Duration::ZERO,
        ..Script::default()
    });
    let pep = pep(config(), pdp);
    let report = pep
        .authorize_batch(&reader(&next_jti()), &[URI], &[])
        .await
        .unwrap();
    assert_eq!(report.items()[0].status.code(), "SPENT");
    assert!(!report.is_satisfied());
}

#[tokio::test]
async fn a_batch_refused_by_the_mount_guard_spends_no_token() {
    let pdp = Arc::new(Script::default());
    let pep = pep(config(), Arc::clone(&pdp));
    let ctx = reader("kept");
    let results = pep
        .authorize_many(&ctx, &["file://infra/x", "openbao+kv2://other/y"])
        .await
        .unwrap();
    assert!(results.iter().all(|r| {
        r.as_ref()
            .is_err_and(|e| e.code() == "TENANT_MOUNT_MISMATCH")
    }));
    assert_eq!(pdp.calls() + pdp.batches.load(Ordering::SeqCst), 0);
    assert!(
        pep.authorize(&ctx, URI).await.is_ok(),
        "the jti was not spent"
    );
}

#[test]
fn spent_grants_are_reported_as_spent() {
    let entry = GrantEntry::new(Grant::new("g", Duration::from_secs(5), 1), Instant::now());
    assert!(matches!(
        BatchStatus::granted(&entry),
        BatchStatus::Granted {
            remaining_uses: 1,
            ..
        }
    ));
    let _ = entry.try_use();
    let spent = BatchStatus::granted(&entry);
    assert_eq!(spent.code(), "SPENT");
}

#[tokio::test]
async fn jti_and_audience_are_required_by_default() {
    let pdp = Arc::new(Script::default());
    let strict = pep(config(), Arc::clone(&pdp));
    let mut no_jti = reader("x");
    no_jti.token_jti = None;
    assert_eq!(
        reason(strict.authorize(&no_jti, URI).await),
        Some(DenyReason::JtiMissing)
    );
    assert_eq!(
        reason(strict.authorize(&reader(""), URI).await),
        Some(DenyReason::JtiMissing)
    );
    let no_aud = reader("a1").with_aud(Vec::<String>::new());
    assert_eq!(
        reason(strict.authorize(&no_aud, URI).await),
        Some(DenyReason::Audience)
    );
    assert_eq!(
        reason(strict.authorize_batch(&no_jti, &[URI], &[]).await),
        Some(DenyReason::JtiMissing)
    );
    assert_eq!(pdp.calls(), 0, "refused before the PDP");

    let lenient = pep(
        config()
            .with_required_jti(false)
            .with_required_audience(false),
        Arc::clone(&pdp),
    );
    let _ = lenient.authorize(&no_jti, URI).await.unwrap();
    let _ = lenient.authorize(&no_aud, URI).await.unwrap();
    let no_replay = pep(
        config().with_anti_replay(false, Duration::from_secs(1)),
        Arc::clone(&pdp),
    );
    let _ = no_replay.authorize(&no_jti, URI).await.unwrap();
}

#[test]
fn an_allow_all_pdp_runs_only_in_development() {
    // The process ENVIRONMENT is unset in tests (check_dev_pdp_with covers it being set).
    if std::env::var_os("ENVIRONMENT").is_some() {
        return;
    }
    let build = |env: &str, allow: bool, via_settings: bool| {
        let config = config().with_environment(env);
        let builder = if via_settings {
            Pep::builder(config.with_pdp(PdpSettings::DisabledForDevelopment))
        } else {
            Pep::builder(config).pdp(Arc::new(DevAllowAll::new()))
        };
        builder
            .allow_dev_pdp(allow)
            .build()
            .map(|_| ())
            .map_err(|e| e.code())
    };
    for via_settings in [true, false] {
        for env in ["dev", " Development ", "test", "local"] {
            assert_eq!(build(env, false, via_settings), Ok(()), "{env}");
        }
        for env in [
            "production",
            "prod",
            "prd",
            "staging",
            "live",
            "ci",
            "CI",
            "Production ",
        ] {
            assert_eq!(build(env, false, via_settings), Err("CONFIG"), "{env}");
            assert_eq!(
                build(env, true, via_settings),
                Err("CONFIG"),
                "{env} + allow"
            );
        }
        assert_eq!(build("", false, via_settings), Err("CONFIG"));
        assert_eq!(build("", true, via_settings), Ok(()));
    }
    let real = Pep::builder(config().with_environment("production"))
        .pdp(Arc::new(Script::default()))
        .build();
    assert!(real.is_ok());
}

#[test]
fn batch_items_debug_redacted() {
    let uri = SecretUri::parse("openbao+kv2://secret/team/canary-path#key").unwrap();
    let item = BatchItem {
        uri,
        required: true,
        status: BatchStatus::Failed(BatchFailure::PdpUnavailable),
    };
    let shown = format!("{:?}", BatchReport { items: vec![item] });
    assert!(!shown.contains("canary-path"), "{shown}");
    assert!(shown.contains("openbao+kv2://secret/…"), "{shown}");
}

#[test]
fn binding_comparison() {
    assert!(same_binding(None, None));
    assert!(same_binding(Some("a"), Some("a")));
    assert!(!same_binding(Some("a"), Some("b")));
    assert!(!same_binding(Some("a"), None));
    assert!(!same_binding(None, Some("a")));
    assert!(!same_binding(Some("a"), Some("ab")));
}
