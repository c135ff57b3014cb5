//! `IssuerKeys` against a scripted HTTP server on loopback: discovery, a key rotation picked
//! up on an unknown `kid`, the refresh interval holding against a flood of unknown `kid`s, and
//! refusals of metadata that names another issuer or of an issuer that cannot be reached.

use std::time::Duration;

use secret_http::ClientConfig;
use secrets_test_support::{Fault, FaultServer};
use serde_json::{Value, json};

use crate::tests::{AUDIENCE, NOW, TestKey, claims};
use crate::{AccessTokenPolicy, DpopPolicy, IssuerKeys, Presented, Verifier};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn metadata(issuer: &str) -> Fault {
    Fault::json(
        200,
        &json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks"), "token_endpoint": format!("{issuer}/token")}),
    )
}

fn jwks(keys: &[&TestKey]) -> Fault {
    Fault::json(
        200,
        &json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<Value>>()}),
    )
}

/// A server for an issuer at its own address, and the issuer's URL.
fn issuer_server() -> Result<(FaultServer, String), Box<dyn std::error::Error>> {
    let server = FaultServer::start(vec![Fault::status(500)])?;
    let issuer = format!("http://{}", server.socket_addr());
    Ok((server, issuer))
}

fn token(key: &TestKey, kid: &str, issuer: &str) -> String {
    let mut c = claims();
    c["iss"] = json!(issuer);
    format!("Bearer {}", key.sign("at+jwt", Some(kid), &c))
}

async fn verify(
    verifier: &Verifier,
    keys: &IssuerKeys,
    authorization: &str,
) -> Result<crate::VerifiedCaller, crate::VerifyError> {
    let presented = Presented {
        authorization,
        dpop: &[],
        method: "GET",
        url: "https://secrets.example/v1/read",
        client_certificate: None,
    };
    verifier.verify_with(&presented, keys, NOW).await
}

fn http() -> ClientConfig {
    ClientConfig::new("issuer").with_timeout(Duration::from_secs(2))
}

#[tokio::test]
async fn keys_are_discovered_and_a_rotation_is_picked_up_on_an_unknown_kid() -> TestResult {
    let (server, issuer) = issuer_server()?;
    let (k1, k2) = (TestKey::new("k1"), TestKey::new("k2"));
    server.set_script(vec![metadata(&issuer), jwks(&[&k1]), jwks(&[&k1, &k2])]);
    let verifier = Verifier::new(
        AccessTokenPolicy::new(&issuer, AUDIENCE),
        DpopPolicy::default(),
    );
    let keys = IssuerKeys::new(&issuer, &http())?.with_min_refresh(Duration::ZERO);

    verify(&verifier, &keys, &token(&k1, "k1", &issuer)).await?;
    verify(&verifier, &keys, &token(&k1, "k1", &issuer)).await?;
    assert_eq!(server.request_count(), 2, "metadata and key set, once");
    // The issuer rotated to k2: the first token naming it fetches the set again.
    verify(&verifier, &keys, &token(&k2, "k2", &issuer)).await?;
    assert_eq!(server.request_count(), 3);
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        ["/.well-known/openid-configuration", "/jwks", "/jwks"]
    );
    Ok(())
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_once_per_interval() -> TestResult {
    let (server, issuer) = issuer_server()?;
    let k1 = TestKey::new("k1");
    server.set_script(vec![metadata(&issuer), jwks(&[&k1])]);
    let verifier = Verifier::new(
        AccessTokenPolicy::new(&issuer, AUDIENCE),
        DpopPolicy::default(),
    );
    let keys = IssuerKeys::new(&issuer, &http())?;
    verify(&verifier, &keys, &token(&k1, "k1", &issuer)).await?;
    let before = server.request_count();
    let forger = TestKey::new("forged");
    let flood: Vec<_> = (0..50)
        .map(|i| {
            let (verifier, keys) = (verifier.clone(), keys.clone());
            let authorization = token(&forger, &format!("kid-{i}"), &issuer);
            tokio::spawn(async move { verify(&verifier, &keys, &authorization).await })
        })
        .collect();
    for task in flood {
        let error = task.await?.expect_err("an unknown key");
        assert_eq!(error.code(), "INVALID_TOKEN");
        assert!(error.to_string().contains("UNKNOWN_KEY"), "{error}");
    }
    assert!(
        server.request_count() <= before + 1,
        "{} fetches for 50 unknown kids",
        server.request_count() - before
    );
    Ok(())
}

#[tokio::test]
async fn rfc_8414_metadata_is_the_fallback_and_another_issuer_is_refused() -> TestResult {
    let (server, issuer) = issuer_server()?;
    let k1 = TestKey::new("k1");
    server.set_script(vec![Fault::status(404), metadata(&issuer), jwks(&[&k1])]);
    let verifier = Verifier::new(
        AccessTokenPolicy::new(&issuer, AUDIENCE),
        DpopPolicy::default(),
    );
    let keys = IssuerKeys::new(&issuer, &http())?;
    verify(&verifier, &keys, &token(&k1, "k1", &issuer)).await?;
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
            "/jwks"
        ]
    );

    let (other, issuer) = issuer_server()?;
    other.set_script(vec![metadata("https://evil.example")]);
    let verifier = Verifier::new(
        AccessTokenPolicy::new(&issuer, AUDIENCE),
        DpopPolicy::default(),
    );
    let keys = IssuerKeys::new(&issuer, &http())?;
    let error = verify(&verifier, &keys, &token(&k1, "k1", &issuer))
        .await
        .expect_err("refused");
    assert_eq!(error.code(), "ISSUER_UNAVAILABLE");
    assert!(!error.to_string().contains("evil"), "{error}");
    Ok(())
}

#[tokio::test]
async fn an_unreachable_issuer_fails_closed_and_a_failed_refresh_keeps_the_set() -> TestResult {
    let (server, issuer) = issuer_server()?;
    let k1 = TestKey::new("k1");
    server.set_script(vec![metadata(&issuer), jwks(&[&k1]), Fault::status(503)]);
    let verifier = Verifier::new(
        AccessTokenPolicy::new(&issuer, AUDIENCE),
        DpopPolicy::default(),
    );
    let keys = IssuerKeys::new(&issuer, &http())?.with_min_refresh(Duration::ZERO);
    verify(&verifier, &keys, &token(&k1, "k1", &issuer)).await?;
    // A refresh for an unknown kid fails: the token is refused, known keys still verify.
    let error = verify(&verifier, &keys, &token(&k1, "k9", &issuer))
        .await
        .expect_err("unknown");
    assert!(error.to_string().contains("UNKNOWN_KEY"), "{error}");
    verify(&verifier, &keys, &token(&k1, "k1", &issuer)).await?;

    let unreachable = "http://127.0.0.1:9";
    let verifier = Verifier::new(
        AccessTokenPolicy::new(unreachable, AUDIENCE),
        DpopPolicy::default(),
    );
    let keys = IssuerKeys::new(unreachable, &http())?;
    let error = verify(&verifier, &keys, &token(&k1, "k1", unreachable))
        .await
        .expect_err("down");
    assert_eq!(error.code(), "ISSUER_UNAVAILABLE");
    // Keys of another issuer than the policy's are a configuration error.
    let keys = IssuerKeys::new(&issuer, &http())?;
    let error = verify(&verifier, &keys, &token(&k1, "k1", unreachable))
        .await
        .expect_err("mixed");
    assert_eq!(error.setting(), Some("issuer"));
    // Not an https URL (nor loopback http): refused at construction.
    assert_eq!(
        IssuerKeys::new("http://issuer.example", &http())
            .err()
            .and_then(|e| e.setting()),
        Some("issuer")
    );
    Ok(())
}

/// A key the issuer withdrew stops verifying once the key set is older than its maximum age,
/// even though every token names a key the set had (found by review: without a maximum age
/// the set was never fetched again).
#[tokio::test]
async fn a_withdrawn_key_stops_verifying_after_the_maximum_age() -> TestResult {
    let (server, issuer) = issuer_server()?;
    let (k1, k2) = (TestKey::new("k1"), TestKey::new("k2"));
    server.set_script(vec![metadata(&issuer), jwks(&[&k1, &k2]), jwks(&[&k2])]);
    let keys = IssuerKeys::new(&issuer, &http())?
        .with_min_refresh(Duration::ZERO)
        .with_max_age(Duration::from_millis(200));
    let verifier = || {
        Verifier::new(
            AccessTokenPolicy::new(&issuer, AUDIENCE),
            DpopPolicy::default(),
        )
    };
    verify(&verifier(), &keys, &token(&k1, "k1", &issuer)).await?;
    verify(&verifier(), &keys, &token(&k2, "k2", &issuer)).await?;
    assert_eq!(server.request_count(), 2, "young enough: no fetch");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let error = verify(&verifier(), &keys, &token(&k1, "k1", &issuer))
        .await
        .expect_err("k1 was withdrawn");
    assert!(error.to_string().contains("UNKNOWN_KEY"), "{error}");
    assert_eq!(server.request_count(), 3);
    verify(&verifier(), &keys, &token(&k2, "k2", &issuer)).await?;
    Ok(())
}

/// An issuer that accepts and never answers does not hang verification: each fetch ends at
/// the client's timeout (two attempts), in `ISSUER_UNAVAILABLE`, and a flood of callers
/// waits on one fetch, not one each.
#[tokio::test]
async fn an_issuer_that_never_answers_ends_in_issuer_unavailable() -> TestResult {
    let (server, issuer) = issuer_server()?;
    server.set_script(vec![Fault::delay(
        Duration::from_secs(30),
        metadata(&issuer),
    )]);
    let keys = IssuerKeys::new(
        &issuer,
        &ClientConfig::new("issuer").with_timeout(Duration::from_millis(200)),
    )?;
    let verifier = Verifier::new(
        AccessTokenPolicy::new(&issuer, AUDIENCE),
        DpopPolicy::default(),
    );
    let k1 = TestKey::new("k1");
    let started = std::time::Instant::now();
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let (verifier, keys) = (verifier.clone(), keys.clone());
            let authorization = token(&k1, "k1", &issuer);
            tokio::spawn(async move { verify(&verifier, &keys, &authorization).await })
        })
        .collect();
    for caller in callers {
        let error = caller.await?.expect_err("no keys");
        assert_eq!(error.code(), "ISSUER_UNAVAILABLE");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        server.request_count() <= 2,
        "{} requests for 20 callers",
        server.request_count()
    );
    Ok(())
}
