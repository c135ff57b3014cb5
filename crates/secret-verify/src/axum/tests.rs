//! The verified extractor over real requests: a DPoP-bound token and a proof of the request
//! give the context; no token, two tokens or a proof of another URL are `401`s with their
//! challenge, and the body is the code, never a credential.

use std::sync::Arc;
use std::time::Duration;

use axum_core::extract::FromRequestParts;
use axum_core::response::IntoResponse;
use secrets_test_support::jose::EcKey;
use secrets_test_support::{Fault, FaultServer};
use serde_json::json;

use super::{Verification, Verified};
use crate::{AccessTokenPolicy, ClientConfig, DpopPolicy, IssuerKeys, Verifier};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const ORIGIN: &str = "https://secrets.example";

use secrets_test_support::jose::now_s as now;

#[tokio::test]
async fn the_extractor_verifies_the_request_itself() -> TestResult {
    let server = FaultServer::start(vec![Fault::status(500)])?;
    let issuer = format!("http://{}", server.socket_addr());
    let signer = EcKey::generate("k1");
    server.set_script(vec![
        Fault::json(
            200,
            &json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}),
        ),
        Fault::json(200, &json!({"keys": [signer.jwk()]})),
    ]);
    let keys = IssuerKeys::new(
        &issuer,
        &ClientConfig::new("issuer").with_timeout(Duration::from_secs(2)),
    )?;
    let verifier = Verifier::new(
        AccessTokenPolicy::new(&issuer, "crud.secrets"),
        DpopPolicy::default(),
    );
    let state = Arc::new(Verification::new(
        verifier.clone(),
        keys.clone(),
        format!("{ORIGIN}/"),
    ));
    // The same routes nested under /api: the request's path lacks the prefix.
    let nested = Arc::new(Verification::new(verifier, keys, ORIGIN).with_path_prefix("/api/"));
    let holder = EcKey::generate("holder");
    let jkt = secret_pep::jwk_thumbprint(&holder.public_jwk().to_string())?;
    let token = signer.access_token(&json!({
        "iss": issuer, "sub": "svc", "aud": "crud.secrets", "client_id": "svc",
        "exp": now() + 300, "iat": now(), "jti": "t-1", "scope": "reader", "cnf": {"jkt": jkt},
    }));
    let request = |headers: &[(&str, String)]| {
        let mut builder = http::Request::builder().method("GET").uri("/v1/db?x=1");
        for (name, value) in headers {
            builder = builder.header(*name, value.as_str());
        }
        builder.body(()).map(|r| r.into_parts().0)
    };
    let extract = |mut parts: http::request::Parts| {
        let state = Arc::clone(&state);
        async move { Verified::from_request_parts(&mut parts, &state).await }
    };
    let authorization = ("authorization", format!("DPoP {token}"));
    let proof = holder.dpop_proof(
        "GET",
        &format!("{ORIGIN}/v1/db"),
        now(),
        "p-1",
        Some(&token),
    );

    let Verified(ctx) = extract(request(&[authorization.clone(), ("dpop", proof.clone())])?)
        .await
        .map_err(|r| format!("refused: {:?}", r.0))?;
    assert_eq!(ctx.subject.as_deref(), Some("svc"));
    assert_eq!(ctx.cnf_jkt.as_deref(), Some(jkt.as_str()));
    assert_eq!(ctx.roles, ["reader"]);

    let nested_proof = holder.dpop_proof(
        "GET",
        &format!("{ORIGIN}/api/v1/db"),
        now(),
        "p-3",
        Some(&token),
    );
    let mut parts = request(&[authorization.clone(), ("dpop", nested_proof)])?;
    assert!(
        Verified::from_request_parts(&mut parts, &nested)
            .await
            .is_ok()
    );
    let mut parts = request(&[authorization.clone(), ("dpop", proof.clone())])?;
    assert!(
        Verified::from_request_parts(&mut parts, &nested)
            .await
            .is_err(),
        "a proof of /v1/db is not one of /api/v1/db"
    );

    let other_url = holder.dpop_proof(
        "GET",
        &format!("{ORIGIN}/v1/other"),
        now(),
        "p-2",
        Some(&token),
    );
    let cases = [
        ("no token", vec![], "invalid_token", "INVALID_TOKEN"),
        (
            "two tokens",
            vec![
                authorization.clone(),
                authorization.clone(),
                ("dpop", proof.clone()),
            ],
            "invalid_token",
            "INVALID_TOKEN",
        ),
        (
            "no proof",
            vec![authorization.clone()],
            "invalid_dpop_proof",
            "INVALID_DPOP_PROOF",
        ),
        (
            "a proof of another URL",
            vec![authorization.clone(), ("dpop", other_url.clone())],
            "invalid_dpop_proof",
            "INVALID_DPOP_PROOF",
        ),
    ];
    for (what, headers, challenge, code) in cases {
        let Err(refused) = extract(request(&headers)?).await else {
            panic!("{what}: accepted");
        };
        let response = refused.into_response();
        assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED, "{what}");
        let www = response
            .headers()
            .get(http::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(www.contains(challenge), "{what}: {www}");
        let body = axum_body(response).await;
        assert_eq!(body.trim(), code, "{what}");
        assert!(!body.contains(&token) && !body.contains(&proof));
    }
    Ok(())
}

async fn axum_body(response: axum_core::response::Response) -> String {
    use http_body_util::BodyExt as _;
    response
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default()
}
