//! The verifier against a real OpenID provider (`oidc-provider` on loopback, started by the
//! test support): its metadata and key set discovered, its bearer and DPoP-bound JWT access
//! tokens verified, each forged or misused credential refused with its code, and a rotation
//! of its signing key picked up on the first token naming the new key.

use std::time::Duration;

use secret_http::ClientConfig;
use secret_verify::{
    AccessTokenPolicy, DpopPolicy, IssuerKeys, Presented, VerifiedCaller, Verifier, VerifyError,
};
use secrets_test_support::jose::{EcKey, b64url};
use secrets_test_support::oidc::{AUDIENCE, CLIENT_ID, OidcProvider, oidc_or_skip};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const URL: &str = "https://secrets.example/v1/read";

use secrets_test_support::jose::now_s as now;

struct Setup {
    issuer: OidcProvider,
    verifier: Verifier,
    keys: IssuerKeys,
}

fn setup() -> Result<Option<Setup>, Box<dyn std::error::Error>> {
    let Some(issuer) = oidc_or_skip() else {
        return Ok(None);
    };
    let verifier = Verifier::new(
        AccessTokenPolicy::new(issuer.issuer(), AUDIENCE),
        DpopPolicy::default(),
    );
    let keys = IssuerKeys::new(
        &issuer.issuer(),
        &ClientConfig::new("issuer").with_timeout(Duration::from_secs(5)),
    )?
    .with_min_refresh(Duration::ZERO);
    Ok(Some(Setup {
        issuer,
        verifier,
        keys,
    }))
}

async fn check(
    setup: &Setup,
    authorization: &str,
    proofs: &[&str],
    at: u64,
) -> Result<VerifiedCaller, VerifyError> {
    let presented = Presented {
        authorization,
        dpop: proofs,
        method: "GET",
        url: URL,
        client_certificate: None,
    };
    setup
        .verifier
        .verify_with(&presented, &setup.keys, at)
        .await
}

/// The code and reason of a refusal (its message ends with the reason for token and proof
/// refusals), and that it holds no credential.
fn refused(result: Result<VerifiedCaller, VerifyError>, secrets: &[&str]) -> (String, String) {
    let Err(error) = result else {
        panic!("accepted a credential that should be refused");
    };
    let text = format!("{error} {error:?}");
    for secret in secrets {
        assert!(!text.contains(secret), "{text}");
    }
    let reason = text
        .split_once(": ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .unwrap_or_default()
        .to_owned();
    (error.code().to_owned(), reason)
}

#[tokio::test]
async fn a_bearer_token_of_the_provider_verifies_and_forgeries_do_not() -> TestResult {
    let Some(setup) = setup()? else {
        return Ok(());
    };
    let token = setup.issuer.token(None)?;
    assert_eq!(token.token_type, "Bearer");
    let authorization = format!("Bearer {}", token.access_token);
    let caller = check(&setup, &authorization, &[], now()).await?;
    assert_eq!(caller.token.client_id, CLIENT_ID);
    assert_eq!(caller.token.roles, ["reader"]);
    let ctx = caller.context();
    assert_eq!(ctx.subject.as_deref(), Some(CLIENT_ID));
    assert_eq!(ctx.issuer.as_deref(), Some(setup.issuer.issuer().as_str()));

    let (head, signature) = token.access_token.rsplit_once('.').ok_or("a JWT")?;
    let mut altered = signature.as_bytes().to_vec();
    altered[5] = if altered[5] == b'A' { b'B' } else { b'A' };
    let altered = format!("{head}.{}", String::from_utf8(altered)?);
    let (_, payload) = head.split_once('.').ok_or("a JWT")?;
    let none = format!("{}.{payload}.", b64url(br#"{"alg":"none","typ":"at+jwt"}"#));
    let stranger = EcKey::generate("not-published");
    let mut claims: serde_json::Value =
        serde_json::from_slice(&base64_decode(payload).ok_or("base64url claims")?)?;
    let forged = stranger.access_token(&claims);
    claims["aud"] = json!("another.api");
    let cases = [
        (
            "an altered signature",
            altered,
            ("INVALID_TOKEN", "TOKEN_SIGNATURE"),
        ),
        ("alg none", none, ("INVALID_TOKEN", "TOKEN_ALGORITHM")),
        (
            "a key not in the JWKS",
            forged,
            ("INVALID_TOKEN", "UNKNOWN_KEY"),
        ),
    ];
    for (what, bad, (code, reason)) in cases {
        let got = refused(
            check(&setup, &format!("Bearer {bad}"), &[], now()).await,
            &[&bad],
        );
        assert_eq!(got, (code.to_owned(), reason.to_owned()), "{what}");
    }
    // The provider's own token, for another audience, and once expired.
    let other = Verifier::new(
        AccessTokenPolicy::new(setup.issuer.issuer(), "another.api"),
        DpopPolicy::default(),
    );
    let presented = Presented {
        authorization: &authorization,
        dpop: &[],
        method: "GET",
        url: URL,
        client_certificate: None,
    };
    let got = refused(other.verify_with(&presented, &setup.keys, now()).await, &[]);
    assert_eq!(got, ("INVALID_TOKEN".to_owned(), "AUDIENCE".to_owned()));
    let expired = now() + 300 + 61;
    let got = refused(check(&setup, &authorization, &[], expired).await, &[]);
    assert_eq!(
        got,
        ("INVALID_TOKEN".to_owned(), "TOKEN_EXPIRED".to_owned())
    );
    Ok(())
}

#[tokio::test]
async fn a_dpop_bound_token_needs_a_fresh_proof_of_this_request_by_its_key() -> TestResult {
    let Some(setup) = setup()? else {
        return Ok(());
    };
    let holder = EcKey::generate("holder");
    let at_token = holder.dpop_proof(
        "POST",
        &setup.issuer.token_endpoint(),
        now(),
        "p-token",
        None,
    );
    let token = setup.issuer.token(Some(&at_token))?;
    assert_eq!(token.token_type, "DPoP");
    let access = token.access_token;
    let authorization = format!("DPoP {access}");
    let proof = holder.dpop_proof("GET", URL, now(), "p-read-1", Some(&access));
    let caller = check(&setup, &authorization, &[&proof], now()).await?;
    let ctx = caller.context();
    let thumbprint = secret_pep::jwk_thumbprint(&holder.public_jwk().to_string())?;
    assert_eq!(ctx.cnf_jkt.as_deref(), Some(thumbprint.as_str()));
    assert_eq!(
        ctx.token_jti,
        Some(format!("dpop:{thumbprint}:p-read-1")),
        "the proof's jti, scoped by its key"
    );

    let other = EcKey::generate("other");
    let cases = [
        (
            "a proof for another method",
            holder.dpop_proof("POST", URL, now(), "p2", Some(&access)),
            ("INVALID_DPOP_PROOF", "PROOF_METHOD"),
        ),
        (
            "a proof for another URL",
            holder.dpop_proof(
                "GET",
                "https://secrets.example/v1/other",
                now(),
                "p3",
                Some(&access),
            ),
            ("INVALID_DPOP_PROOF", "PROOF_URL"),
        ),
        (
            "a stale iat",
            holder.dpop_proof("GET", URL, now() - 120, "p4", Some(&access)),
            ("INVALID_DPOP_PROOF", "PROOF_STALE"),
        ),
        (
            "a proof without ath",
            holder.dpop_proof("GET", URL, now(), "p5", None),
            ("INVALID_DPOP_PROOF", "PROOF_ATH"),
        ),
        (
            "a proof signed by another key",
            other.dpop_proof("GET", URL, now(), "p6", Some(&access)),
            ("BINDING_DRIFT", "sender"),
        ),
    ];
    for (what, bad, (code, reason)) in cases {
        let got = refused(
            check(&setup, &authorization, &[&bad], now()).await,
            &[&bad, &access],
        );
        assert_eq!(got.0, code, "{what}");
        if code != "BINDING_DRIFT" {
            assert_eq!(got.1, reason, "{what}");
        }
    }
    // The bound token as a bearer token: a downgrade.
    let got = refused(
        check(&setup, &format!("Bearer {access}"), &[], now()).await,
        &[&access],
    );
    assert_eq!(got.0, "BINDING_DRIFT");
    Ok(())
}

#[tokio::test]
async fn an_issuer_key_rotation_is_picked_up_on_the_next_unknown_kid() -> TestResult {
    let Some(mut setup) = setup()? else {
        return Ok(());
    };
    let before = setup.issuer.token(None)?.access_token;
    check(&setup, &format!("Bearer {before}"), &[], now()).await?;
    setup.issuer.rotate()?;
    let after = setup.issuer.token(None)?.access_token;
    assert_ne!(
        kid(&before),
        kid(&after),
        "the rotated provider signs with a new key"
    );
    check(&setup, &format!("Bearer {after}"), &[], now())
        .await
        .map_err(|e| format!("after: {e}"))?;
    // The old key is still published: its tokens still verify.
    check(&setup, &format!("Bearer {before}"), &[], now()).await?;
    Ok(())
}

fn kid(token: &str) -> String {
    token
        .split('.')
        .next()
        .and_then(base64_decode)
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .and_then(|h| h["kid"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}
