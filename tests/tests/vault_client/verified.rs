//! Verified callers end to end: a real OpenID provider (`oidc-provider`) issues a DPoP-bound
//! JWT access token, `secret-verify` checks it and a proof of the request, and the context it
//! yields reads a secret through `VaultClient` from a real OpenBao as a real Cerbos allows.
//! The same proof twice is refused by the PEP's replay store; a proof by another key never
//! reaches the PEP.

use std::time::Duration;

use crate::common::vault::{SEVEN, TestResult, counted, servers};
use secret_verify::{AccessTokenPolicy, ClientConfig, DpopPolicy, IssuerKeys, Presented, Verifier};
use secrets_sdk::pep::DenyReason;
use secrets_test_support::jose::EcKey;
use secrets_test_support::oidc::{AUDIENCE, oidc_or_skip};

const URL: &str = "https://secrets.example/v1/credentials";

use secrets_test_support::jose::now_s as now;

#[tokio::test]
async fn a_verified_dpop_caller_reads_once_per_proof() -> TestResult {
    let Some(s) = servers()? else { return Ok(()) };
    let Some(issuer) = oidc_or_skip() else {
        return Ok(());
    };
    let (client, pdp, _audit) = counted(&s)?;
    let verifier = Verifier::new(
        AccessTokenPolicy::new(issuer.issuer(), AUDIENCE),
        DpopPolicy::default(),
    );
    let keys = IssuerKeys::new(
        &issuer.issuer(),
        &ClientConfig::new("issuer").with_timeout(Duration::from_secs(5)),
    )?;
    let holder = EcKey::generate("holder");
    let for_token = holder.dpop_proof("POST", &issuer.token_endpoint(), now(), "t-1", None);
    let token = issuer.token(Some(&for_token))?.access_token;
    let authorization = format!("DPoP {token}");
    let presented = |proof: &str| -> (String, String) { (authorization.clone(), proof.to_owned()) };

    let verify = |(authorization, proof): (String, String)| {
        let (verifier, keys) = (&verifier, &keys);
        async move {
            let proofs = [proof.as_str()];
            verifier
                .verify_with(
                    &Presented {
                        authorization: &authorization,
                        dpop: &proofs,
                        method: "GET",
                        url: URL,
                        client_certificate: None,
                    },
                    keys,
                    now(),
                )
                .await
        }
    };

    let proof = holder.dpop_proof("GET", URL, now(), "read-1", Some(&token));
    let ctx = verify(presented(&proof)).await?.context();
    let secret = client.get_credentials(SEVEN, Some(&ctx)).await?;
    assert_eq!(secret.expose_str(), Some("bao-seven-token"));

    // The same proof again verifies (the verifier keeps no memory) and the PEP refuses it.
    let replayed = verify(presented(&proof)).await?.context();
    let refused = client.get_credentials(SEVEN, Some(&replayed)).await;
    assert_eq!(
        refused.err().and_then(|e| e.deny_reason()),
        Some(DenyReason::Replay)
    );

    // A fresh proof by the same key reads again, on the same grant.
    let fresh = holder.dpop_proof("GET", URL, now(), "read-2", Some(&token));
    let ctx = verify(presented(&fresh)).await?.context();
    client.get_credentials(SEVEN, Some(&ctx)).await?;
    assert_eq!(pdp.single(), 1, "one decision for the key-bound grant");
    assert_eq!(s.reads("seven/api"), 2);

    // A proof by another key is refused before the PEP: nothing more is read or asked.
    let other = EcKey::generate("other");
    let stolen = other.dpop_proof("GET", URL, now(), "read-3", Some(&token));
    let error = verify(presented(&stolen)).await.err();
    assert_eq!(error.map(|e| e.code()), Some("BINDING_DRIFT"));
    assert_eq!((pdp.single(), s.reads("seven/api")), (1, 2));
    Ok(())
}
