//! The PEP's resource identity, use give-back and batched reads through `VaultClient`,
//! against a real OpenBao (behind a counting proxy) and a real Cerbos.

use std::time::Duration;

use crate::common::vault::{
    APP, SALT, SEVEN, TestResult, counted, jti, pep_config, reader, servers,
};
use secrets_sdk::pep::DenyReason;
use secrets_sdk::providers::{Kv2Auth, Kv2Config, Kv2Flavor, RetryConfig};
use secrets_test_support::{Fault, FaultServer};
use serde_json::json;

#[tokio::test]
async fn every_spelling_of_a_secret_shares_one_grant() -> TestResult {
    let Some(s) = servers()? else { return Ok(()) };
    let (client, pdp, _) = counted(&s)?;
    // The policy grants 7 uses of `secret/seven/api`. Both schemes reach the one VAULT_URL,
    // with or without the engine: one resource, one grant, one count.
    let aliases = [
        SEVEN,
        "openbao://secret/seven/api#token",
        "hashicorp+kv2://secret/seven/api#token",
        "HASHICORP://secret/seven/api/#token",
        "openbao+kv2://secret/seven/api/#token",
    ];
    for i in 0..14 {
        let secret = client
            .get_credentials(aliases[i % aliases.len()], Some(&reader(jti())))
            .await?;
        assert_eq!(secret.expose_str(), Some("bao-seven-token"));
    }
    assert_eq!(
        pdp.single(),
        2,
        "14 reads of 7-use grants are two decisions"
    );
    assert_eq!(s.reads("seven/api"), 14);
    assert_eq!(
        client.pep().cache().grant_len(),
        1,
        "aliases do not fill the map"
    );

    // Unserved parameters are refused before the PDP and the vault.
    for uri in [
        "openbao+kv2://secret/seven/api#token?n=1",
        "openbao+kv2://secret/seven/api?verison=2#token",
    ] {
        let err = client
            .get_credentials(uri, Some(&reader(jti())))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "UNKNOWN_PARAMETER", "{uri}");
    }
    let batch = client
        .authorize_batch(Some(&reader(jti())), &["openbao://secret/app/api?n=1"], &[])
        .await
        .unwrap_err();
    assert_eq!(batch.code(), "UNKNOWN_PARAMETER");
    assert_eq!((pdp.single(), pdp.batches()), (2, 0));
    assert_eq!(s.reads("seven/api"), 14);

    // A denial under one spelling holds for all of them.
    let denied = "openbao+kv2://secret/denied/api#token";
    assert_eq!(
        client
            .get_credentials(denied, Some(&reader(jti())))
            .await
            .err()
            .and_then(|e| e.deny_reason()),
        Some(DenyReason::PdpDeny)
    );
    for alias in [
        "openbao://secret/denied/api#token",
        "hashicorp+kv2://secret/denied/api#token",
    ] {
        let err = client
            .get_credentials(alias, Some(&reader(jti())))
            .await
            .unwrap_err();
        assert_eq!(
            err.deny_reason(),
            Some(DenyReason::NegativeCached),
            "{alias}"
        );
    }
    assert_eq!(pdp.single(), 3);
    Ok(())
}

#[tokio::test]
async fn a_read_that_fails_before_data_gives_its_use_back() -> TestResult {
    let Some(s) = servers()? else { return Ok(()) };
    // A vault that first answers 503, then serves the secret.
    let vault = FaultServer::start(vec![
        Fault::status(503),
        Fault::json(
            200,
            &json!({"data": {"data": {"token": "from-fault-vault"},
                    "metadata": {"deletion_time": "", "destroyed": false, "version": 1}}}),
        ),
    ])?;
    let kv2 = Kv2Config::new(
        Kv2Flavor::OpenBao,
        vault.addr(),
        Kv2Auth::token("t".to_owned()),
    )
    .with_retry(RetryConfig::attempts(1))
    .with_timeout(Duration::from_secs(5));
    let pdp = crate::common::vault::Counting::new(secrets_sdk::pep::AuthzenClient::new(
        crate::common::vault::authzen(&s.cerbos),
    )?);
    let client = secrets_sdk::VaultClient::builder()
        .kv2(kv2)
        .pep_config(pep_config(&s))
        .tenant_salt(SALT)
        .pdp(std::sync::Arc::clone(&pdp))
        .build()?;
    // `secret/app/api` grants one use.
    let err = client
        .get_credentials(APP, Some(&reader(jti())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UNAVAILABLE");
    let secret = client.get_credentials(APP, Some(&reader(jti()))).await?;
    assert_eq!(secret.expose_str(), Some("from-fault-vault"));
    assert_eq!(
        pdp.single(),
        1,
        "the failed read gave its use back: one decision served the one data read"
    );
    // The use was given back once, not twice: the next read is a fresh decision.
    let _ = client.get_credentials(APP, Some(&reader(jti()))).await;
    assert_eq!(pdp.single(), 2);
    Ok(())
}

#[tokio::test]
async fn many_secrets_with_one_token() -> TestResult {
    let Some(s) = servers()? else { return Ok(()) };
    let (client, pdp, audit) = counted(&s)?;
    let ctx = reader(jti());
    let uris = [
        APP,
        SEVEN,
        "file://secret/x",
        "openbao+kv2://secret/app/api#token?n=1",
        "openbao+kv2://secret/denied/api#token",
        "openbao+kv2://secret/app/missing#token",
        SEVEN,
    ];
    let results = client.get_credentials_many(&uris, Some(&ctx)).await?;
    let shown: Vec<Result<Option<String>, &str>> = results
        .iter()
        .map(|r| match r {
            Ok(secret) => Ok(secret.expose_str().map(str::to_owned)),
            Err(e) => Err(e.code()),
        })
        .collect();
    assert_eq!(
        shown,
        [
            Ok(Some("bao-app-token".to_owned())),
            Ok(Some("bao-seven-token".to_owned())),
            Err("UNSUPPORTED_PROVIDER"),
            Err("UNKNOWN_PARAMETER"),
            Err("AUTHZ_DENIED"),
            Err("NOT_FOUND"),
            Ok(Some("bao-seven-token".to_owned())),
        ]
    );
    assert_eq!(
        (pdp.batches(), pdp.single()),
        (1, 0),
        "one AuthZEN batch, no single calls"
    );
    assert_eq!(s.reads("seven/api"), 2);
    assert_eq!(s.reads("app/api"), 1);
    // One jti check for the whole call: the same token again is a replay, refused before
    // the PDP and the vault.
    let again = client.get_credentials_many(&uris[..2], Some(&ctx)).await;
    assert_eq!(
        again.err().and_then(|e| e.deny_reason()),
        Some(DenyReason::Replay)
    );
    assert_eq!(pdp.batches(), 1);
    assert!(
        audit
            .take()
            .iter()
            .all(|e| !e.debug.contains("bao-seven-token"))
    );
    Ok(())
}
