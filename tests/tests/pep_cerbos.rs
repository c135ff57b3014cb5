//! The PEP against a real PDP: a Cerbos (`cerbos server`, AuthZEN API) serving the
//! workspace's test policies (`secrets_test_support::cerbos::policies()`), one shared by the
//! tests of this binary; the tests that stop it start their own. Each test counts the PDP
//! calls of its own PEP.
//!
//! Without `cerbos` installed these tests print `SKIP` and pass locally; under `CI=true` they
//! fail (install it with `cargo xtask services install`).
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::cerbos_client;
use secret_pep::{
    AuthzenClient, AuthzenConfig, BatchFailure, BatchStatus, DenyReason, ExecutionContext,
    PdpFailure, PepError,
};
use secrets_test_support::Shared;
use secrets_test_support::cerbos::policies;
use secrets_test_support::cerbos::{CerbosServer, cerbos_or_skip};
use secrets_test_support::pep::{Counting, jti, pep_config as config, pep_with, reader};

const APP: &str = "openbao+kv2://secret/app/api#token";
const SEVEN: &str = "openbao+kv2://secret/seven/api#token";
const DENIED: &str = "openbao+kv2://secret/denied/api#token";

use common::TestResult;

/// A Cerbos of the test's own, for tests that stop it.
fn own_cerbos() -> Option<CerbosServer> {
    cerbos_or_skip(&policies())
}

/// The binary's shared Cerbos.
fn cerbos() -> Option<Arc<CerbosServer>> {
    static SHARED: Shared<CerbosServer> = Shared::new();
    SHARED.get_or_start(own_cerbos)
}

fn reason(result: Result<impl std::fmt::Debug, PepError>) -> Option<DenyReason> {
    result.err().and_then(|e| e.deny_reason())
}

#[tokio::test]
async fn permit_gives_a_grant_with_the_policy_terms() -> TestResult {
    let Some(cerbos) = cerbos() else {
        return Ok(());
    };
    let pdp = Counting::new(cerbos_client(&cerbos.addr()));
    let (pep, audit) = pep_with(config(), Arc::clone(&pdp));

    let ctx = reader(jti()).with_correlation_id("corr-1");
    let granted = pep
        .authorize(&ctx, "OPENBAO+KV2://secret/app/api?#token")
        .await?;
    assert_eq!(granted.uri().as_str(), APP);
    assert_eq!(granted.use_number(), 1);
    let grant = granted.grant();
    assert_eq!((grant.max_uses, grant.ttl), (1, Duration::from_secs(300)));
    assert_eq!(
        grant.policy_version.as_deref(),
        Some("resource.secret.vdefault")
    );
    let decision_id = grant.decision_id.as_deref().unwrap_or_default();
    assert_eq!(decision_id.len(), 32, "the X-Request-ID: {decision_id}");
    pep.audit_read(&ctx, &granted, None);

    // TTL and uses from the matched rule's outputs.
    let seven = pep.authorize(&reader(jti()), SEVEN).await?;
    assert_eq!(
        (seven.grant().max_uses, seven.grant().ttl.as_secs()),
        (7, 60)
    );
    let classified = pep
        .authorize(&reader(jti()), "openbao+kv2://secret/classified/x")
        .await?;
    assert_eq!(
        classified.grant().classification.as_deref(),
        Some("confidential")
    );

    // `execute` authorizes, reads and audits.
    let read = pep
        .execute(
            &reader(jti()),
            "openbao+kv2://secret/other/x",
            |uri| async move { Ok::<_, PepError>(format!("read {}", uri.path())) },
        )
        .await?;
    assert_eq!(read, "read other/x");
    assert_eq!(pdp.single(), 4);

    // Every decision is audited (granted), and each read once more.
    let events = audit.take_reads();
    let summary: Vec<_> = events.iter().map(|e| (e.decision, e.code)).collect();
    assert_eq!(summary, [("PERMIT", "OK"), ("PERMIT", "OK")]);
    assert_eq!(events[0].grant_id.as_deref(), Some(grant.grant_id.as_str()));
    assert!(events[0].resource_ref.is_some());
    Ok(())
}

#[tokio::test]
async fn deny_then_negative_cache_then_expiry() -> TestResult {
    let Some(cerbos) = cerbos() else {
        return Ok(());
    };
    let pdp = Counting::new(cerbos_client(&cerbos.addr()));
    let (pep, audit) = pep_with(config(), Arc::clone(&pdp));

    assert_eq!(
        reason(pep.authorize(&reader(jti()), DENIED).await),
        Some(DenyReason::PdpDeny)
    );
    assert_eq!(
        reason(pep.authorize(&reader(jti()), DENIED).await),
        Some(DenyReason::NegativeCached)
    );
    assert_eq!(pdp.single(), 1, "the cached denial did not reach the PDP");
    assert_eq!(pep.cache().negative_len(), 1);

    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        reason(pep.authorize(&reader(jti()), DENIED).await),
        Some(DenyReason::PdpDeny)
    );
    assert_eq!(pdp.single(), 2, "after the TTL the PDP is asked again");

    // A role the policy does not know is denied too, and so is a subject without roles.
    let guest = ExecutionContext::new("mallory")
        .with_aud(["crud.secrets"])
        .with_jti(jti())
        .with_roles(["guest"]);
    assert_eq!(
        reason(pep.authorize(&guest, APP).await),
        Some(DenyReason::PdpDeny)
    );
    let no_roles = ExecutionContext::new("bob")
        .with_aud(["crud.secrets"])
        .with_jti(jti());
    assert_eq!(
        reason(pep.authorize(&no_roles, APP).await),
        Some(DenyReason::PdpDeny)
    );

    let events = audit.take();
    assert!(
        events
            .iter()
            .all(|e| e.decision == "DENY" && e.code == "AUTHZ_DENIED")
    );
    let reasons: Vec<_> = events.iter().filter_map(|e| e.reason).collect();
    assert_eq!(
        reasons,
        [
            "PDP_DENY",
            "NEGATIVE_CACHED",
            "PDP_DENY",
            "PDP_DENY",
            "PDP_DENY"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn audience_missing_or_wrong() -> TestResult {
    let Some(cerbos) = cerbos() else {
        return Ok(());
    };
    let pdp = Counting::new(cerbos_client(&cerbos.addr()));
    let (pep, _) = pep_with(config(), Arc::clone(&pdp));

    let wrong = reader(jti()).with_aud(["billing", "crud"]);
    assert_eq!(
        reason(pep.authorize(&wrong, APP).await),
        Some(DenyReason::Audience)
    );
    assert_eq!(pdp.single(), 0, "refused before the PDP");
    // No `aud` at all is denied by default …
    let missing = reader(jti()).with_aud(Vec::<String>::new());
    assert_eq!(
        reason(pep.authorize(&missing, APP).await),
        Some(DenyReason::Audience)
    );
    assert_eq!(pdp.single(), 0, "refused before the PDP");

    // … and passes only when the audience requirement is turned off.
    let (lenient, _) = pep_with(config().with_required_audience(false), Arc::clone(&pdp));
    let missing = reader(jti()).with_aud(Vec::<String>::new());
    assert!(lenient.authorize(&missing, SEVEN).await.is_ok());
    let wrong = reader(jti()).with_aud(["billing"]);
    assert_eq!(
        reason(lenient.authorize(&wrong, SEVEN).await),
        Some(DenyReason::Audience)
    );
    // A custom audience.
    let (custom, _) = pep_with(config().with_audience("vault.read"), pdp);
    let ctx = reader(jti()).with_aud(["vault.read"]);
    assert!(custom.authorize(&ctx, SEVEN).await.is_ok());
    assert_eq!(
        reason(custom.authorize(&reader(jti()), SEVEN).await),
        Some(DenyReason::Audience)
    );
    Ok(())
}

#[tokio::test]
async fn jti_replay_on_warm_and_cold_grants() -> TestResult {
    let Some(cerbos) = cerbos() else {
        return Ok(());
    };
    let pdp = Counting::new(cerbos_client(&cerbos.addr()));
    let (pep, _) = pep_with(config(), Arc::clone(&pdp));

    // Warm grant (7 uses): the original SDK let a replayed jti through here.
    let ctx = reader("jti-warm");
    let _ = pep.authorize(&ctx, SEVEN).await?;
    assert_eq!(
        reason(pep.authorize(&ctx, SEVEN).await),
        Some(DenyReason::Replay)
    );
    assert!(pep.authorize(&reader(jti()), SEVEN).await.is_ok());
    assert_eq!(pdp.single(), 1);

    // Cold grant: a jti already seen elsewhere is a replay even when the PDP is asked.
    assert_eq!(
        reason(
            pep.authorize(&ctx, "openbao+kv2://secret/seven/other")
                .await
        ),
        Some(DenyReason::Replay)
    );
    // The same jti from another issuer is another token.
    let other_issuer = reader("jti-warm").with_issuer("https://other.test");
    assert!(pep.authorize(&other_issuer, SEVEN).await.is_ok());

    // Deployments whose tokens reuse one jti can turn the check off.
    let (lenient, _) = pep_with(
        config().with_anti_replay(false, Duration::from_secs(300)),
        pdp,
    );
    let reused = reader("jti-reused");
    let _ = lenient.authorize(&reused, SEVEN).await?;
    assert!(lenient.authorize(&reused, SEVEN).await.is_ok());
    Ok(())
}

#[tokio::test]
async fn each_sender_binding_gets_its_own_grant() -> TestResult {
    let Some(cerbos) = cerbos() else {
        return Ok(());
    };
    let pdp = Counting::new(cerbos_client(&cerbos.addr()));
    let (pep, audit) = pep_with(config(), Arc::clone(&pdp));

    let bound = reader(jti()).with_cnf_jkt("jkt-one");
    let granted = pep.authorize(&bound, SEVEN).await?;
    assert_eq!(granted.grant().cnf_binding.as_deref(), Some("jkt-one"));
    let again = pep
        .authorize(&reader(jti()).with_cnf_jkt("jkt-one"), SEVEN)
        .await?;
    assert_eq!(again.use_number(), 2, "the same key rides its warm grant");
    assert_eq!(pdp.single(), 1);

    // Another key, no key, or a certificate with the same value: never the first key's grant
    // (the grant key holds the binding), so the PDP decides for each and binds its grant to it.
    for (n, (other, binding)) in [
        (reader(jti()).with_cnf_jkt("jkt-two"), Some("jkt-two")),
        (reader(jti()), None),
        (
            reader(jti()).with_mtls_thumbprint("jkt-one"),
            Some("jkt-one"),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let own = pep.authorize(&other, SEVEN).await?;
        assert_eq!(own.use_number(), 1);
        assert_eq!(own.grant().cnf_binding.as_deref(), binding);
        assert_ne!(own.grant().grant_id, granted.grant().grant_id);
        assert_eq!(pdp.single(), n + 2);
    }
    // A second key of a subject the policy denies is denied by the PDP, not served.
    let guest = ExecutionContext::new("alice")
        .with_aud(["crud.secrets"])
        .with_jti(jti())
        .with_cnf_jkt("jkt-one");
    assert_eq!(
        reason(pep.authorize(&guest, SEVEN).await),
        Some(DenyReason::PdpDeny)
    );
    assert!(audit.take().iter().all(|e| e.code != "BINDING_DRIFT"));
    Ok(())
}

#[tokio::test]
async fn a_spent_grant_is_replaced_by_a_fresh_cerbos_decision() -> TestResult {
    let Some(cerbos) = cerbos() else {
        return Ok(());
    };
    let pdp = Counting::new(cerbos_client(&cerbos.addr()));
    let (pep, _) = pep_with(config(), Arc::clone(&pdp));

    // GRANT_MAX_USES_DEFAULT is 1: the second read is a second decision, not a lock-out.
    let first = pep.authorize(&reader(jti()), APP).await?;
    let second = pep.authorize(&reader(jti()), APP).await?;
    assert_eq!((first.use_number(), second.use_number()), (1, 1));
    assert_ne!(first.grant().grant_id, second.grant().grant_id);
    assert_eq!(pdp.single(), 2, "one decision per use");
    assert_eq!(
        pep.cache().negative_len(),
        0,
        "spent uses are not negative-cached"
    );

    // `short/` grants live 1 s: after that the PDP is asked again.
    let short = "openbao+kv2://secret/short/x";
    let _ = pep.authorize(&reader(jti()), short).await?;
    let _ = pep.authorize(&reader(jti()), short).await?;
    assert_eq!(pdp.single(), 3);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let renewed = pep.authorize(&reader(jti()), short).await?;
    assert_eq!(renewed.use_number(), 1);
    assert_eq!(pdp.single(), 4);
    Ok(())
}

#[tokio::test]
async fn unknown_obligations_deny() -> TestResult {
    let Some(cerbos) = cerbos() else {
        return Ok(());
    };
    let (pep, _) = pep_with(config(), Counting::new(cerbos_client(&cerbos.addr())));
    assert_eq!(
        reason(
            pep.authorize(&reader(jti()), "openbao+kv2://secret/mfa/x")
                .await
        ),
        Some(DenyReason::UnknownObligation)
    );
    assert_eq!(
        reason(
            pep.authorize(&reader(jti()), "openbao+kv2://secret/mfa/x")
                .await
        ),
        Some(DenyReason::NegativeCached)
    );
    Ok(())
}

#[tokio::test]
async fn pdp_stopped_is_unavailable_and_recovery_is_immediate() -> TestResult {
    let Some(mut cerbos) = own_cerbos() else {
        return Ok(());
    };
    let pdp = Counting::new(cerbos_client(&cerbos.addr()));
    let (pep, audit) = pep_with(config(), Arc::clone(&pdp));
    let _ = pep.authorize(&reader(jti()), SEVEN).await?;

    cerbos.stop();
    let err = pep.authorize(&reader(jti()), APP).await.unwrap_err();
    assert_eq!(err.code(), "PDP_UNAVAILABLE");
    assert!(matches!(
        err,
        PepError::PdpUnavailable {
            cause: PdpFailure::Connect,
            ..
        }
    ));
    assert!(err.is_transient());
    assert_eq!(
        pep.cache().negative_len(),
        0,
        "unavailability is not cached"
    );
    // A warm grant still serves: the decision was already made.
    assert!(pep.authorize(&reader(jti()), SEVEN).await.is_ok());

    cerbos.restart()?;
    let recovered = pep.authorize(&reader(jti()), APP).await?;
    assert_eq!(recovered.use_number(), 1);
    // Each decision is audited: granted, undecided (not a denial), granted from the warm
    // grant, granted again after the restart.
    let codes: Vec<_> = audit
        .take()
        .iter()
        .map(|e| (e.kind, e.decision, e.code))
        .collect();
    assert_eq!(
        codes,
        [
            ("secret.access.granted", "PERMIT", "OK"),
            ("secret.access.denied", "ERROR", "PDP_UNAVAILABLE"),
            ("secret.access.granted", "PERMIT", "OK"),
            ("secret.access.granted", "PERMIT", "OK"),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn breaker_fails_fast_then_probes() -> TestResult {
    let Some(mut cerbos) = own_cerbos() else {
        return Ok(());
    };
    let pdp = Counting::new(cerbos_client(&cerbos.addr()));
    let (pep, _) = pep_with(config(), Arc::clone(&pdp));
    cerbos.stop();
    // Threshold 3: three connection failures, then the breaker answers without the network.
    for _ in 0..3 {
        let err = pep.authorize(&reader(jti()), APP).await.unwrap_err();
        assert!(
            matches!(
                err,
                PepError::PdpUnavailable {
                    cause: PdpFailure::Connect,
                    ..
                }
            ),
            "{err}"
        );
    }
    let err = pep.authorize(&reader(jti()), APP).await.unwrap_err();
    assert!(
        matches!(
            err,
            PepError::PdpUnavailable {
                cause: PdpFailure::CircuitOpen,
                ..
            }
        ),
        "{err}"
    );

    cerbos.restart()?;
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(
        pep.authorize(&reader(jti()), APP).await.is_ok(),
        "the probe closes it"
    );
    assert!(pep.authorize(&reader(jti()), SEVEN).await.is_ok());
    Ok(())
}

#[tokio::test]
async fn discovery_against_cerbos() -> TestResult {
    let Some(cerbos) = cerbos() else {
        return Ok(());
    };
    let client = cerbos_client(&cerbos.addr());
    let metadata = client.discover().await?;
    assert_eq!(metadata.policy_decision_point, cerbos.addr());
    assert_eq!(
        metadata.access_evaluation_endpoint,
        format!("{}/access/v1/evaluation", cerbos.addr())
    );
    assert_eq!(
        metadata.access_evaluations_endpoint,
        Some(format!("{}/access/v1/evaluations", cerbos.addr()))
    );
    // `localhost` works too: Cerbos answers with the Host it was asked for.
    let localhost = format!("http://localhost:{}/", cerbos.port());
    let by_name = AuthzenClient::new(AuthzenConfig::new(&localhost))?;
    assert_eq!(
        by_name.discover().await?.policy_decision_point,
        format!("http://localhost:{}", cerbos.port())
    );
    Ok(())
}

#[tokio::test]
async fn batch_is_deduplicated_required_first_in_one_call() -> TestResult {
    // Its own server: the test ends by stopping it.
    let Some(cerbos) = own_cerbos() else {
        return Ok(());
    };
    let pdp = Counting::new(cerbos_client(&cerbos.addr()));
    let (pep, _) = pep_with(config(), Arc::clone(&pdp));

    let mfa = "openbao+kv2://secret/mfa/x";
    let report = pep
        .authorize_batch(
            &reader(jti()),
            &[APP, SEVEN, "OPENBAO+KV2://secret/app/api#token"],
            &[DENIED, APP, mfa],
        )
        .await?;
    assert_eq!(pdp.batches(), 1);
    assert_eq!(pdp.single(), 0);
    let summary: Vec<_> = report
        .items()
        .iter()
        .map(|i| (i.uri.as_str(), i.required, i.status.code()))
        .collect();
    assert_eq!(
        summary,
        [
            (APP, true, "GRANTED"),
            (SEVEN, true, "GRANTED"),
            (DENIED, false, "AUTHZ_DENIED"),
            (mfa, false, "AUTHZ_DENIED"),
        ]
    );
    assert_eq!(
        report.items()[2].status,
        BatchStatus::Failed(BatchFailure::Deny {
            reason: DenyReason::PdpDeny
        })
    );
    assert_eq!(
        report.items()[3].status,
        BatchStatus::Failed(BatchFailure::Deny {
            reason: DenyReason::UnknownObligation
        })
    );
    assert!(report.is_satisfied());
    assert_eq!(report.failures().count(), 2);

    // The grants are warm: reads need no PDP call; denials are negative-cached.
    let granted = pep.authorize(&reader(jti()), SEVEN).await?;
    assert_eq!(granted.grant().max_uses, 7);
    assert_eq!(
        reason(pep.authorize(&reader(jti()), DENIED).await),
        Some(DenyReason::NegativeCached)
    );
    assert_eq!((pdp.single(), pdp.batches()), (0, 1));

    // A required denial leaves the batch unsatisfied; warm items need no new call.
    let report = pep
        .authorize_batch(
            &reader(jti()),
            &["openbao+kv2://secret/denied/b", SEVEN],
            &[],
        )
        .await?;
    assert!(!report.is_satisfied());
    assert_eq!(report.items()[1].status.code(), "GRANTED");
    assert_eq!(pdp.batches(), 2);

    // With the PDP down, every undecided item is PDP_UNAVAILABLE.
    drop(cerbos);
    let report = pep
        .authorize_batch(&reader(jti()), &["openbao+kv2://secret/new/x"], &[])
        .await?;
    assert_eq!(report.items()[0].status.code(), "PDP_UNAVAILABLE");
    Ok(())
}

#[tokio::test]
async fn tenant_mount_guard_runs_before_the_pdp() -> TestResult {
    let Some(cerbos) = cerbos() else {
        return Ok(());
    };
    let pdp = Counting::new(cerbos_client(&cerbos.addr()));
    let (pep, audit) = pep_with(config(), Arc::clone(&pdp));

    for uri in ["openbao+kv2://config/app#k", "file://secret-other/x"] {
        let err = pep.authorize(&reader(jti()), uri).await.unwrap_err();
        assert_eq!(err.code(), "TENANT_MOUNT_MISMATCH", "{uri}");
    }
    let err = pep
        .authorize(&reader(jti()), "openbao+kv2://secret/a/*")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_WILDCARD");
    let err = pep
        .authorize_batch(&reader(jti()), &[APP], &["openbao+kv2://config/x"])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "TENANT_MOUNT_MISMATCH");
    assert_eq!((pdp.single(), pdp.batches()), (0, 0));
    let codes: Vec<_> = audit.take().iter().map(|e| (e.decision, e.code)).collect();
    assert_eq!(
        codes,
        [
            ("DENY", "TENANT_MOUNT_MISMATCH"),
            ("DENY", "TENANT_MOUNT_MISMATCH"),
            ("DENY", "INVALID_WILDCARD"),
            ("DENY", "TENANT_MOUNT_MISMATCH"),
        ]
    );

    // A PEP for tenant t2: the resource's `tenant` attribute reaches the policy, which only
    // lets tenant t1's secrets be read.
    let (other_tenant, _) = pep_with(
        secret_pep::PepConfig::new("t2", "secret".parse()?),
        Counting::new(cerbos_client(&cerbos.addr())),
    );
    assert_eq!(
        reason(other_tenant.authorize(&reader(jti()), APP).await),
        Some(DenyReason::PdpDeny)
    );
    Ok(())
}

#[test]
fn policies_compile_and_pass_their_test_suite() -> TestResult {
    let bin = match secrets_test_support::cerbos_bin() {
        Ok(bin) => bin,
        Err(e) => {
            secrets_test_support::skip_or_fail(&format!("Cerbos unavailable: {e}"));
            return Ok(());
        }
    };
    let output = std::process::Command::new(bin)
        .arg("compile")
        .arg(policies())
        .output()?;
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("OK"), "{printed}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_max_uses_succeed_under_contention() -> TestResult {
    let Some(cerbos) = cerbos() else {
        return Ok(());
    };
    let pdp = Counting::new(cerbos_client(&cerbos.addr()));
    let (pep, _) = pep_with(config(), Arc::clone(&pdp));

    // 1 000 tasks race one cold grant (max_uses = 7 from the policy). A spent grant is
    // replaced by a fresh decision, so every task is served, and no decision serves more
    // than seven reads.
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let pep = pep.clone();
            tokio::spawn(async move { pep.authorize(&reader(jti()), SEVEN).await })
        })
        .collect();
    let mut uses: std::collections::HashMap<String, Vec<u32>> = Default::default();
    for task in tasks {
        let authorized = task.await??;
        uses.entry(authorized.grant().grant_id.clone())
            .or_default()
            .push(authorized.use_number());
    }
    let partial: Vec<_> = uses
        .values_mut()
        .filter_map(|numbers| {
            numbers.sort_unstable();
            (numbers.as_slice() != [1, 2, 3, 4, 5, 6, 7]).then(|| numbers.clone())
        })
        .collect();
    // 1 000 = 142 × 7 + 6: one decision serves the last six.
    assert_eq!(partial, [vec![1, 2, 3, 4, 5, 6]], "{uses:?}");
    assert_eq!(uses.len(), 143);
    assert_eq!(pdp.single(), 143, "one Cerbos decision per seven reads");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_first_cerbos_call_lost_on_the_way_back_leaves_one_live_grant() -> TestResult {
    let Some(cerbos) = cerbos() else {
        return Ok(());
    };
    // The first decision's answer is lost between Cerbos and the PEP while 200 tasks wait.
    let proxy = secrets_test_support::proxy::CountingProxy::start(&cerbos.addr())?;
    proxy.drop_responses("/access/v1/evaluation", 1);
    let pdp = Counting::new(cerbos_client(&proxy.addr()));
    let (pep, _) = pep_with(config(), Arc::clone(&pdp));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let pep = pep.clone();
            tokio::spawn(async move { pep.authorize(&reader(jti()), SEVEN).await })
        })
        .collect();
    let mut uses: std::collections::HashMap<String, Vec<u32>> = Default::default();
    let mut unavailable = 0;
    for task in tasks {
        match task.await? {
            Ok(authorized) => uses
                .entry(authorized.grant().grant_id.clone())
                .or_default()
                .push(authorized.use_number()),
            Err(e) => {
                assert_eq!(e.code(), "PDP_UNAVAILABLE", "{e}");
                unavailable += 1;
            }
        }
    }
    assert_eq!(proxy.dropped_responses(), 1);
    assert!(unavailable >= 1, "the caller whose answer was lost sees it");
    // Exactly one live grant at a time: every decision but the last served all 7 uses, none
    // more; no orphan grant served a second set beside it.
    let mut partial = 0;
    for numbers in uses.values_mut() {
        numbers.sort_unstable();
    }
    for numbers in uses.values() {
        let expected: Vec<u32> = (1..=u32::try_from(numbers.len())?).collect();
        assert_eq!(*numbers, expected, "{uses:?}");
        assert!(numbers.len() <= 7, "{uses:?}");
        partial += usize::from(numbers.len() < 7);
    }
    assert!(partial <= 1, "{uses:?}");
    assert_eq!(
        pdp.single(),
        uses.len() + 1,
        "one failed call, then one per grant"
    );
    Ok(())
}
