//! `VaultClient` end to end: a real OpenBao (behind a counting proxy, so reads that reach the
//! vault are counted) and a real Cerbos (AuthZEN) serving the workspace's test policies, fresh per
//! test.
//!
//! Without `bao` or `cerbos` installed these tests print `SKIP` and pass locally; under
//! `CI=true` they fail (install both with `cargo xtask services install`).

use std::time::Duration;

use crate::common::vault::{
    APP, DENIED, SALT, SEVEN, Servers, TENANT, TestResult, authzen, builder, counted, counted_with,
    env, jti, pep_config, reader, servers,
};
use secrets_sdk::pep::{
    AccessRequest, AuthzenClient, AuthzenConfig, BatchFailure, BatchStatus, DenyReason, Grant,
    PdpFailure, PdpFuture, PepError, SecretPolicyService,
};
use secrets_sdk::uri::SecretUri;
use secrets_sdk::{Error, ExecutionContext, VaultClient};
use serde_json::json;

fn reason<T: std::fmt::Debug>(result: Result<T, Error>) -> Option<DenyReason> {
    result.err().and_then(|e| e.deny_reason())
}

fn code<T: std::fmt::Debug>(result: Result<T, Error>) -> Option<&'static str> {
    result.err().map(|e| e.code())
}

fn setup() -> Result<Option<Servers>, Box<dyn std::error::Error>> {
    Ok(servers()?)
}

#[tokio::test]
async fn permit_returns_the_whole_secret_or_one_field() -> TestResult {
    let Some(s) = setup()? else { return Ok(()) };
    let (client, pdp, audit) = counted(&s)?;

    // `#key`: the field only, as text.
    let token = client
        .get_credentials("OPENBAO+KV2://secret/app/api?#token", Some(&reader(jti())))
        .await?;
    assert_eq!(token.expose_str(), Some("bao-app-token"));
    assert_eq!(token.uri().as_str(), APP);
    assert_eq!(
        format!("{token:?}"),
        "Secret { uri: openbao+kv2://secret/…, value: [REDACTED] }"
    );
    assert_eq!(token.to_string(), "[REDACTED]");

    // No `#key`: the whole secret, a JSON object.
    let whole = client
        .get_credentials("openbao+kv2://secret/app/api", Some(&reader(jti())))
        .await?;
    assert_eq!(
        whole.expose_json(),
        Some(&json!({"token": "bao-app-token", "user": "app"}))
    );

    // `hashicorp+kv2://` is served by the same VAULT_URL; `?version=` pins a version.
    let v2 = s
        .bao
        .kv_put("secret", "app/api", &json!({"token": "bao-app-token-v2"}))?;
    assert_eq!(v2, 2);
    let pinned = client
        .get_credentials(
            "hashicorp+kv2://secret/app/api#token?version=1",
            Some(&reader(jti())),
        )
        .await?;
    assert_eq!(pinned.expose_str(), Some("bao-app-token"));
    let latest = client
        .get_credentials("hashicorp://secret/app/api#token", Some(&reader(jti())))
        .await?;
    assert_eq!(latest.expose_str(), Some("bao-app-token-v2"));
    assert_eq!(pdp.single(), 4, "four canonical URIs, four grants");
    assert_eq!(s.reads("app/api"), 4);

    // Every read is audited with the keyed resource_ref (not the PEP's unkeyed placeholder).
    let events = audit.take_reads();
    assert_eq!(events.len(), 4);
    let uri: SecretUri = APP.parse()?;
    let keyed = client.resource_ref(&uri).to_string();
    assert_eq!(keyed.len(), 32);
    let first = &events[0];
    assert_eq!(
        (first.decision, first.code, first.use_number),
        ("PERMIT", "OK", Some(1))
    );
    assert_eq!(first.resource_ref.as_deref(), Some(keyed.as_str()));
    assert!(first.debug.contains(&keyed), "{}", first.debug);
    assert!(!first.debug.contains("app/api"), "{}", first.debug);
    Ok(())
}

#[tokio::test]
async fn missing_fields_and_secrets_are_typed_and_audited() -> TestResult {
    let Some(s) = setup()? else { return Ok(()) };
    let (client, _, audit) = counted(&s)?;

    // The original returned {key: None}; here a missing field is KEY_NOT_FOUND.
    let err = client
        .get_credentials("openbao+kv2://secret/app/api#nope", Some(&reader(jti())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "KEY_NOT_FOUND");
    assert_eq!(
        err.to_string(),
        "openbao: reading a secret in mount `secret` failed [KEY_NOT_FOUND]"
    );
    assert!(err.provider_error().is_some());
    let err = client
        .get_credentials("openbao+kv2://secret/no/such#token", Some(&reader(jti())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "NOT_FOUND");
    let err = client
        .get_credentials(
            "openbao+kv2://secret/app/api#token?version=9",
            Some(&reader(jti())),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "NOT_FOUND");
    s.bao.kv_delete_latest("secret", "seven/other")?;
    let err = client
        .get_credentials(
            "openbao+kv2://secret/seven/other#token",
            Some(&reader(jti())),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "VERSION_DELETED");

    // The grant was used and the failed read audited with the provider's code.
    assert_eq!(
        audit.read_summary(),
        [
            ("ERROR", "KEY_NOT_FOUND"),
            ("ERROR", "NOT_FOUND"),
            ("ERROR", "NOT_FOUND"),
            ("ERROR", "VERSION_DELETED"),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn deny_then_negative_cache_then_expiry() -> TestResult {
    let Some(s) = setup()? else { return Ok(()) };
    let (client, pdp, audit) = counted(&s)?;

    let err = client
        .get_credentials(DENIED, Some(&reader(jti())))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.deny_reason()),
        ("AUTHZ_DENIED", Some(DenyReason::PdpDeny))
    );
    // The deny reason is exposed, in the type and the message.
    let shown = err.to_string();
    assert!(
        shown.contains("(PDP_DENY)") && shown.ends_with("[AUTHZ_DENIED]"),
        "{shown}"
    );
    assert!(!err.is_transient());
    assert_eq!(
        reason(client.get_credentials(DENIED, Some(&reader(jti()))).await),
        Some(DenyReason::NegativeCached)
    );
    assert_eq!(pdp.single(), 1, "the cached denial did not reach the PDP");
    assert_eq!(client.pep().cache().negative_len(), 1);

    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        reason(client.get_credentials(DENIED, Some(&reader(jti()))).await),
        Some(DenyReason::PdpDeny)
    );
    assert_eq!(pdp.single(), 2, "after the TTL the PDP is asked again");

    // A role the policy does not know is denied too.
    let guest = ExecutionContext::new("mallory")
        .with_aud(["crud.secrets"])
        .with_roles(["guest"])
        .with_jti(jti());
    assert_eq!(
        reason(client.get_credentials(APP, Some(&guest)).await),
        Some(DenyReason::PdpDeny)
    );
    assert_eq!(s.all_reads(), 0, "no denial reached the vault");
    let events = audit.take();
    let reasons: Vec<_> = events.iter().filter_map(|e| e.reason).collect();
    assert_eq!(
        reasons,
        ["PDP_DENY", "NEGATIVE_CACHED", "PDP_DENY", "PDP_DENY"]
    );
    assert!(
        events
            .iter()
            .all(|e| e.decision == "DENY" && e.resource_ref.is_some())
    );
    Ok(())
}

#[tokio::test]
async fn audience_missing_or_wrong() -> TestResult {
    let Some(s) = setup()? else { return Ok(()) };
    let (client, pdp, _) = counted_with(&s, pep_config(&s).with_required_audience(true))?;

    let wrong = reader(jti()).with_aud(["billing", "crud"]);
    assert_eq!(
        reason(client.get_credentials(SEVEN, Some(&wrong)).await),
        Some(DenyReason::Audience)
    );
    // No `aud` at all is refused too (SECRETS_AUDIENCE_REQUIRED), also on a warm grant.
    client.get_credentials(SEVEN, Some(&reader(jti()))).await?;
    let missing = reader(jti()).with_aud(Vec::<String>::new());
    assert_eq!(
        reason(client.get_credentials(SEVEN, Some(&missing)).await),
        Some(DenyReason::Audience)
    );
    assert_eq!(pdp.single(), 1, "refusals never reach the PDP");
    assert_eq!(s.reads("seven/api"), 1, "… nor the vault");

    // For issuers that never set `aud`, a missing one can be let through; a wrong one never.
    let (lenient, _, _) = counted_with(&s, pep_config(&s).with_required_audience(false))?;
    let missing = reader(jti()).with_aud(Vec::<String>::new());
    assert!(lenient.get_credentials(SEVEN, Some(&missing)).await.is_ok());
    let wrong = reader(jti()).with_aud(["billing"]);
    assert_eq!(
        reason(lenient.get_credentials(SEVEN, Some(&wrong)).await),
        Some(DenyReason::Audience)
    );
    // A custom audience (SECRETS_AUDIENCE).
    let (custom, _, _) = counted_with(&s, pep_config(&s).with_audience("vault.read"))?;
    let ctx = reader(jti()).with_aud(["vault.read"]);
    assert!(custom.get_credentials(SEVEN, Some(&ctx)).await.is_ok());
    assert_eq!(
        reason(custom.get_credentials(SEVEN, Some(&reader(jti()))).await),
        Some(DenyReason::Audience)
    );
    Ok(())
}

#[tokio::test]
async fn jti_replay_on_warm_and_cold_grants() -> TestResult {
    let Some(s) = setup()? else { return Ok(()) };
    let (client, pdp, _) = counted(&s)?;

    // Warm grant (7 uses): the original SDK let a replayed jti through here.
    let ctx = reader("jti-warm");
    client.get_credentials(SEVEN, Some(&ctx)).await?;
    assert_eq!(
        reason(client.get_credentials(SEVEN, Some(&ctx)).await),
        Some(DenyReason::Replay)
    );
    assert!(
        client
            .get_credentials(SEVEN, Some(&reader(jti())))
            .await
            .is_ok()
    );
    assert_eq!(pdp.single(), 1);

    // Cold grant: a jti already seen is a replay even when the PDP is asked.
    assert_eq!(
        reason(
            client
                .get_credentials("openbao+kv2://secret/seven/other#token", Some(&ctx))
                .await
        ),
        Some(DenyReason::Replay)
    );
    assert_eq!(s.reads("seven/api"), 2, "replays never reach the vault");
    assert_eq!(s.reads("seven/other"), 0);
    Ok(())
}

#[tokio::test]
async fn binding_drift_is_refused() -> TestResult {
    let Some(s) = setup()? else { return Ok(()) };
    let (client, _, audit) = counted(&s)?;

    // A grant asked for by a token bound to `jkt-one` serves only that key.
    let bound = reader(jti()).with_cnf_jkt("jkt-one");
    client.get_credentials(SEVEN, Some(&bound)).await?;
    let victim_grant = audit.take()[0].grant_id.clone();
    // Other keys, no key, or the same value as an mTLS thumbprint never take a use of it:
    // they are refused as drift, or (a PEP that keys grants by binding) decided on their own.
    for (thief, presented) in [
        (reader(jti()).with_cnf_jkt("jkt-two"), "a key thumbprint"),
        (reader(jti()), "no binding"),
        (
            reader(jti()).with_mtls_thumbprint("jkt-one"),
            "a certificate",
        ),
    ] {
        if let Err(err) = client.get_credentials(SEVEN, Some(&thief)).await {
            assert_eq!(err.code(), "BINDING_DRIFT", "{err}");
            assert!(matches!(
                err.pep_error(),
                Some(PepError::BindingDrift { .. })
            ));
            let shown = format!("{err} {err:?}");
            assert!(shown.contains(presented), "{shown}");
            assert!(!shown.contains("jkt-"), "binding value leaked: {shown}");
        }
    }
    client
        .get_credentials(SEVEN, Some(&reader(jti()).with_cnf_jkt("jkt-one")))
        .await?;
    let victim_uses: Vec<_> = audit
        .take_reads()
        .into_iter()
        .filter(|e| e.decision == "PERMIT" && e.grant_id == victim_grant)
        .filter_map(|e| e.use_number)
        .collect();
    assert_eq!(victim_uses, [2], "no other binding took a use of the grant");

    // A grant bound to another key than the caller's (here a PDP that rebinds its grants) is
    // refused as drift on every read, before the vault.
    let rebinding = Rebinding(AuthzenClient::new(authzen(&s.cerbos))?);
    let audit = std::sync::Arc::new(crate::common::vault::Recording::default());
    let client = builder(&s)
        .pdp(rebinding)
        .audit(std::sync::Arc::clone(&audit) as std::sync::Arc<dyn secrets_sdk::audit::AuditSink>)
        .build()?;
    let before = s.all_reads();
    for ctx in [
        reader(jti()).with_cnf_jkt("jkt-one"),
        reader(jti()).with_cnf_jkt("jkt-one"),
    ] {
        let err = client.get_credentials(APP, Some(&ctx)).await.unwrap_err();
        assert_eq!(err.code(), "BINDING_DRIFT");
        assert!(!format!("{err} {err:?}").contains("jkt-"), "{err:?}");
    }
    assert_eq!(s.all_reads(), before);
    assert_eq!(
        audit.summary(),
        [("DENY", "BINDING_DRIFT"), ("DENY", "BINDING_DRIFT")]
    );
    Ok(())
}

/// A PDP that binds every grant to a key the caller never presented.
#[derive(Debug)]
struct Rebinding<P>(P);

impl<P: SecretPolicyService> SecretPolicyService for Rebinding<P> {
    fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
        Box::pin(async move {
            let grant = self.0.authorize_use(request).await?;
            Ok(grant.bound_to(Some("jkt-someone-else")))
        })
    }
}

#[tokio::test]
async fn a_spent_grant_is_a_fresh_decision_not_a_lock_out() -> TestResult {
    let Some(s) = setup()? else { return Ok(()) };
    let (client, pdp, _) = counted(&s)?;

    // GRANT_MAX_USES_DEFAULT is 1: every read is its own decision, and none is refused.
    for n in 1..=3 {
        let token = client.get_credentials(APP, Some(&reader(jti()))).await?;
        assert_eq!(token.expose_str(), Some("bao-app-token"));
        assert_eq!(pdp.single(), n);
    }
    assert_eq!(s.reads("app/api"), 3);

    // `short/` grants live 1 s: after that the PDP is asked again.
    let short = "openbao+kv2://secret/short/x#token";
    client.get_credentials(short, Some(&reader(jti()))).await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let renewed = client.get_credentials(short, Some(&reader(jti()))).await?;
    assert_eq!(renewed.expose_str(), Some("bao-short-token"));
    assert_eq!(pdp.single(), 5);
    Ok(())
}

#[tokio::test]
async fn pdp_stopped_is_unavailable_and_restart_recovers() -> TestResult {
    let Some(mut s) = setup()? else { return Ok(()) };
    let (client, _, audit) = counted(&s)?;
    client.get_credentials(SEVEN, Some(&reader(jti()))).await?;

    s.cerbos.stop();
    let err = client
        .get_credentials(APP, Some(&reader(jti())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "PDP_UNAVAILABLE");
    assert!(matches!(
        err.pep_error(),
        Some(PepError::PdpUnavailable {
            cause: PdpFailure::Connect,
            ..
        })
    ));
    assert!(err.is_transient());
    assert_eq!(
        client.pep().cache().negative_len(),
        0,
        "not negative-cached"
    );
    // A warm grant still serves: the decision was already made.
    assert!(
        client
            .get_credentials(SEVEN, Some(&reader(jti())))
            .await
            .is_ok()
    );

    s.cerbos.restart()?;
    let recovered = client.get_credentials(APP, Some(&reader(jti()))).await?;
    assert_eq!(recovered.expose_str(), Some("bao-app-token"));
    // Granted and read; undecided; granted from the warm grant and read; granted and read
    // after the restart.
    assert_eq!(
        audit.summary(),
        [
            ("PERMIT", "OK"),
            ("PERMIT", "OK"),
            ("ERROR", "PDP_UNAVAILABLE"),
            ("PERMIT", "OK"),
            ("PERMIT", "OK"),
            ("PERMIT", "OK"),
            ("PERMIT", "OK"),
        ]
    );
    assert_eq!(s.reads("app/api"), 1);
    Ok(())
}

#[tokio::test]
async fn from_env_with_discovery_against_cerbos() -> TestResult {
    let Some(s) = setup()? else { return Ok(()) };
    let vars = |pdp_url: String| {
        vec![
            ("VAULT_URL", s.proxy.addr()),
            ("VAULT_TOKEN", s.bao.root_token().to_owned()),
            ("VAULT_TIMEOUT", "5".to_owned()),
            ("TENANT_ID", TENANT.to_owned()),
            ("TENANT_ALLOWED_MOUNTS", "secret, other".to_owned()),
            ("SECRET_TENANT_SALT", SALT.to_owned()),
            ("AUTHZEN_PDP_URL", pdp_url),
            ("AUTHZEN_DIALECT", "cerbos".to_owned()),
            ("GRANT_MAX_USES_DEFAULT", "2".to_owned()),
        ]
    };
    // Discovery is on by default: the first call reads Cerbos' well-known metadata. Cerbos
    // answers with the host it was asked for, so `localhost` works as well as 127.0.0.1.
    for pdp_url in [
        s.cerbos.addr(),
        format!("http://localhost:{}/", s.cerbos.port()),
    ] {
        let client = VaultClient::builder()
            .env_lookup(env(&vars(pdp_url)))
            .build()?;
        assert_eq!(client.tenant_id(), TENANT);
        let ctx = reader(jti());
        let token = client.get_credentials(APP, Some(&ctx)).await?;
        assert_eq!(token.expose_str(), Some("bao-app-token"));
        // GRANT_MAX_USES_DEFAULT from the environment: the read above was use 1 of 2.
        let second = client.pep().authorize(&reader(jti()), APP).await?;
        assert_eq!((second.use_number(), second.grant().max_uses), (2, 2));
    }
    // A PDP whose discovery document cannot be read fails closed.
    let client = VaultClient::builder()
        .env_lookup(env(&vars(format!("{}/not-a-pdp", s.cerbos.addr()))))
        .build()?;
    let err = client
        .get_credentials(APP, Some(&reader(jti())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "PDP_UNAVAILABLE", "{err}");
    // Discovery as a startup probe, with the same settings.
    let metadata = AuthzenClient::new(AuthzenConfig::new(s.cerbos.addr()))?
        .discover()
        .await?;
    assert_eq!(metadata.policy_decision_point, s.cerbos.addr());
    Ok(())
}

#[tokio::test]
async fn batch_prefetches_grants_in_one_call() -> TestResult {
    let Some(s) = setup()? else { return Ok(()) };
    let (client, pdp, _) = counted(&s)?;

    let mfa = "openbao+kv2://secret/mfa/x#token";
    let report = client
        .authorize_batch(
            Some(&reader(jti())),
            &[APP, SEVEN, "OPENBAO+KV2://secret/app/api#token"],
            &[DENIED, APP, mfa],
        )
        .await?;
    assert_eq!((pdp.batches(), pdp.single()), (1, 0));
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
        report.items()[3].status,
        BatchStatus::Failed(BatchFailure::Deny {
            reason: DenyReason::UnknownObligation
        })
    );
    assert!(report.is_satisfied());
    assert_eq!(s.all_reads(), 0, "a batch reads nothing");

    // The grants are warm: reads need no PDP call; denials are negative-cached.
    let token = client.get_credentials(SEVEN, Some(&reader(jti()))).await?;
    assert_eq!(token.expose_str(), Some("bao-seven-token"));
    client.get_credentials(APP, Some(&reader(jti()))).await?;
    assert_eq!(
        reason(client.get_credentials(DENIED, Some(&reader(jti()))).await),
        Some(DenyReason::NegativeCached)
    );
    assert_eq!((pdp.single(), pdp.batches()), (0, 1));

    // A scheme the client cannot read is refused before the PDP.
    let err = client
        .authorize_batch(Some(&reader(jti())), &[APP], &["file://secret/x"])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UNSUPPORTED_PROVIDER");
    assert_eq!(pdp.batches(), 1);
    Ok(())
}

#[tokio::test]
async fn tenant_mount_guard_and_unsupported_schemes_come_first() -> TestResult {
    let Some(s) = setup()? else { return Ok(()) };
    let (client, pdp, audit) = counted(&s)?;

    for (uri, expected) in [
        ("openbao+kv2://config/app#token", "TENANT_MOUNT_MISMATCH"),
        ("hashicorp+kv2://secret-other/x", "TENANT_MOUNT_MISMATCH"),
        ("openbao+kv2://secret/a/*", "INVALID_WILDCARD"),
        // The original sent file:// (and every other scheme) to the vault.
        ("file://secret/app/api", "UNSUPPORTED_PROVIDER"),
        ("db://secret/app", "UNSUPPORTED_PROVIDER"),
        ("yaml://secret/app", "UNSUPPORTED_PROVIDER"),
        ("bootstrap://secret/app", "UNSUPPORTED_PROVIDER"),
    ] {
        let result = client.get_credentials(uri, Some(&reader(jti()))).await;
        assert_eq!(code(result), Some(expected), "{uri}");
    }
    let err = client
        .get_credentials("file://secret/app/api", Some(&reader(jti())))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::UnsupportedProvider {
            provider: "file",
            ..
        }
    ));
    assert!(
        client
            .get_credentials("openbao+kv2://config/app", Some(&reader(jti())))
            .await
            .unwrap_err()
            .uri_error()
            .is_some()
    );
    assert_eq!((pdp.single(), s.all_reads()), (0, 0));
    // Mount and URI refusals are audited by the PEP; an unsupported scheme never reaches it
    // but is audited as refused before it (no refusal leaves no trace).
    assert_eq!(
        audit.summary(),
        [
            ("DENY", "TENANT_MOUNT_MISMATCH"),
            ("DENY", "TENANT_MOUNT_MISMATCH"),
            ("DENY", "INVALID_WILDCARD"),
            ("DENY", "UNSUPPORTED_PROVIDER"),
            ("DENY", "UNSUPPORTED_PROVIDER"),
            ("DENY", "UNSUPPORTED_PROVIDER"),
            ("DENY", "UNSUPPORTED_PROVIDER"),
            ("DENY", "UNSUPPORTED_PROVIDER"),
            ("DENY", "TENANT_MOUNT_MISMATCH"),
        ]
    );

    // A client for tenant t2: the policy only lets tenant t1's secrets be read.
    let (other_tenant, _, _) = counted_with(
        &s,
        secrets_sdk::pep::PepConfig::new("t2", "secret".parse()?),
    )?;
    assert_eq!(
        reason(
            other_tenant
                .get_credentials(APP, Some(&reader(jti())))
                .await
        ),
        Some(DenyReason::PdpDeny)
    );
    Ok(())
}

#[tokio::test]
async fn no_context_uses_the_default_or_is_refused() -> TestResult {
    let Some(s) = setup()? else { return Ok(()) };
    let client = builder(&s).build()?;
    assert_eq!(
        reason(client.get_credentials(APP, None).await),
        Some(DenyReason::SubjectMissing)
    );
    // A whole context: the service's identity, audience, roles and (for this one call) jti.
    let service = ExecutionContext::new("svc-app")
        .with_aud(["crud.secrets"])
        .with_roles(["reader"])
        .with_jti(jti());
    let client = builder(&s).default_context(service).build()?;
    let token = client.get_credentials(SEVEN, None).await?;
    assert_eq!(token.expose_str(), Some("bao-seven-token"));
    Ok(())
}

/// `get_credentials_blocking` outside any runtime, then inside a current-thread and a
/// multi-thread runtime (no "cannot start a runtime from within a runtime" panic), and after
/// the runtime that first used the client is gone.
#[test]
fn blocking_inside_and_outside_a_runtime() -> TestResult {
    let Some(s) = setup()? else { return Ok(()) };
    let client = builder(&s).build()?;

    let outside = client.get_credentials_blocking(SEVEN, Some(&reader(jti())))?;
    assert_eq!(outside.expose_str(), Some("bao-seven-token"));

    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let inside = current.block_on(async {
        // Async first, so connections would live on this runtime if the client let them.
        client.get_credentials(SEVEN, Some(&reader(jti()))).await?;
        client.get_credentials_blocking(SEVEN, Some(&reader(jti())))
    })?;
    assert_eq!(inside.expose_str(), Some("bao-seven-token"));
    drop(current);

    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let clone = client.clone();
    let inside = multi.block_on(async move {
        tokio::spawn(async move { clone.get_credentials_blocking(SEVEN, Some(&reader(jti()))) })
            .await
    })??;
    assert_eq!(inside.expose_str(), Some("bao-seven-token"));

    // Errors come back typed through the blocking path too.
    let err = client
        .get_credentials_blocking("file://secret/x", Some(&reader(jti())))
        .unwrap_err();
    assert_eq!(err.code(), "UNSUPPORTED_PROVIDER");
    assert_eq!(s.reads("seven/api"), 4);

    // Dropping the client inside an async context is fine; a closed client says so.
    multi.block_on(async move {
        let other = client.clone();
        client.close();
        assert!(other.is_closed());
        assert_eq!(
            code(other.get_credentials(SEVEN, Some(&reader(jti()))).await),
            Some("CLOSED")
        );
        assert_eq!(
            code(other.get_credentials_blocking(SEVEN, Some(&reader(jti())))),
            Some("CLOSED")
        );
        drop(other);
    });
    Ok(())
}

#[test]
fn missing_configuration_is_a_typed_error_naming_the_variable() -> TestResult {
    let full = [
        ("VAULT_URL", "http://127.0.0.1:8200".to_owned()),
        ("VAULT_TOKEN", "s.canary-token".to_owned()),
        ("TENANT_ID", TENANT.to_owned()),
        ("TENANT_ALLOWED_MOUNTS", "secret".to_owned()),
        ("SECRET_TENANT_SALT", SALT.to_owned()),
        ("AUTHZEN_PDP_URL", "http://127.0.0.1:3592".to_owned()),
    ];
    for missing in 0..5 {
        let vars: Vec<_> = full
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != missing)
            .map(|(_, v)| v.clone())
            .collect();
        let err = VaultClient::builder()
            .env_lookup(env(&vars))
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        assert_eq!(err.setting(), Some(full[missing].0));
        assert!(err.to_string().ends_with("[CONFIG]"));
    }
    // Development mode is explicit, and refused in production.
    let mut vars = full[..5].to_vec();
    vars.push(("ENABLE_AUTHORIZATION", "false".to_owned()));
    let mut dev = vars.clone();
    dev.push(("ENVIRONMENT", "test".to_owned()));
    assert!(VaultClient::builder().env_lookup(env(&dev)).build().is_ok());
    vars.push(("ENVIRONMENT", "production".to_owned()));
    let err = VaultClient::builder()
        .env_lookup(env(&vars))
        .build()
        .unwrap_err();
    assert_eq!(err.code(), "CONFIG");
    assert!(err.to_string().contains("ENABLE_AUTHORIZATION"), "{err}");
    Ok(())
}
