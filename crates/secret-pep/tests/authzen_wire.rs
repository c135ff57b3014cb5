//! The AuthZEN client on the wire, against a scripted HTTP server (no PDP needed): request
//! shape, `X-Request-ID`, bearer token, discovery checks and fail-closed error mapping.
#![cfg(feature = "authzen")]

mod common;

use std::time::Duration;

use common::{authzen_pep, config, jti, reader};
use secret_pep::{AuthzenClient, AuthzenConfig, AuthzenDialect, PdpFailure, Pep, PepError};
use secrets_test_support::{Fault, FaultServer};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const APP: &str = "openbao+kv2://secret/app/api#token";

fn unavailable(result: Result<impl std::fmt::Debug, PepError>) -> (PdpFailure, Option<u16>) {
    match result {
        Err(PepError::PdpUnavailable { cause, status, .. }) => (cause, status),
        other => panic!("expected PDP_UNAVAILABLE, got {other:?}"),
    }
}

#[tokio::test]
async fn request_shape_request_id_and_token() -> TestResult {
    let server = FaultServer::start(vec![Fault::json(
        200,
        &json!({"decision": true, "context": {"decision_id": "dec-9", "ttl": 30, "max_uses": 2}}),
    )])?;
    let client = AuthzenConfig::new(server.addr())
        .with_discovery(false)
        .with_token("pdp-token".to_owned().into());
    let pep = authzen_pep(client);
    let mut ctx = reader(jti())
        .with_cnf_jkt("jkt-1")
        .with_correlation_id("corr-7");
    ctx.client_id = Some("cli".into());
    ctx.workflow_run_id = Some("run-1".into());
    let granted = pep.authorize(&ctx, APP).await?;
    assert_eq!(granted.grant().decision_id.as_deref(), Some("dec-9"));
    assert_eq!(
        (granted.grant().max_uses, granted.grant().ttl.as_secs()),
        (2, 30)
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/access/v1/evaluation")
    );
    let id = request.header("x-request-id").unwrap_or_default();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(request.header("authorization"), Some("Bearer pdp-token"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        Some(json!({
            "subject": {"type": "user", "id": "alice", "properties": {
                "roles": ["reader"], "issuer": "https://issuer.test", "client_id": "cli"
            }},
            "resource": {"type": "secret", "id": APP, "properties": {
                "tenant": "t1", "mount": "secret", "provider": "openbao", "engine": "kv2",
                "path": "app/api", "key": "token"
            }},
            "action": {"name": "execute"},
            // No per-call correlation id: everything the PDP sees is in the grant key.
            "context": {"workflow_run_id": "run-1", "cnf_binding": "jkt-1"}
        }))
    );
    Ok(())
}

#[tokio::test]
async fn the_pdp_gets_the_canonical_id_with_key_and_version() -> TestResult {
    let server = FaultServer::start(vec![Fault::json(200, &json!({"decision": true}))])?;
    let pep = authzen_pep(AuthzenConfig::new(server.addr()).with_discovery(false));
    let _granted = pep
        .authorize(
            &reader(jti()),
            "OPENBAO://secret/app/api?version=2&n=1#token",
        )
        .await?;
    let body = server.requests()[0].json().unwrap_or_default();
    assert_eq!(
        body["resource"]["id"],
        json!("openbao+kv2://secret/app/api#token?version=2")
    );
    assert_eq!(body["resource"]["properties"]["key"], json!("token"));
    assert_eq!(body["resource"]["properties"]["version"], json!(2));
    assert_eq!(body["resource"]["properties"]["engine"], json!("kv2"));
    Ok(())
}

#[tokio::test]
async fn cerbos_dialect_adds_roles_meta_and_request_id() -> TestResult {
    let server = FaultServer::start(vec![Fault::json(200, &json!({"decision": true}))])?;
    let pep = authzen_pep(
        AuthzenConfig::new(server.addr())
            .with_discovery(false)
            .with_dialect(AuthzenDialect::Cerbos),
    );
    let _granted = pep.authorize(&reader(jti()), APP).await?;
    let request = &server.requests()[0];
    let body = request.json().unwrap_or_default();
    assert_eq!(
        body["subject"]["properties"]["cerbos.roles"],
        json!(["reader"])
    );
    assert_eq!(body["context"]["cerbos.includeMeta"], json!(true));
    assert_eq!(
        body["context"]["cerbos.requestId"].as_str(),
        request.header("x-request-id")
    );
    Ok(())
}

#[tokio::test]
async fn http_errors_timeouts_and_garbage_fail_closed() -> TestResult {
    let server = FaultServer::start(vec![
        Fault::json(500, &json!({"error": "boom"})),
        Fault::json(403, &json!({"error": "no"})),
        Fault::json(200, &json!({"decision": "true"})),
        Fault::text(200, "not json"),
        Fault::json(200, &json!({"decision": true, "context": {"max_uses": -1}})),
        Fault::Close,
        Fault::delay(
            Duration::from_millis(800),
            Fault::json(200, &json!({"decision": true})),
        ),
        Fault::Huge { len: 400 * 1024 },
        Fault::status(302).with_header("Location", "http://127.0.0.1:1/"),
    ])?;
    let pep = authzen_pep(
        AuthzenConfig::new(server.addr())
            .with_discovery(false)
            .with_timeout(Duration::from_millis(300))
            .with_breaker(0, Duration::ZERO),
    );
    let mut seen = Vec::new();
    for _ in 0..9 {
        seen.push(unavailable(pep.authorize(&reader(jti()), APP).await));
    }
    assert_eq!(
        seen,
        [
            (PdpFailure::Status, Some(500)),
            (PdpFailure::Status, Some(403)),
            (PdpFailure::Malformed, None),
            (PdpFailure::Malformed, None),
            (PdpFailure::Malformed, None),
            (PdpFailure::Connect, None),
            (PdpFailure::Timeout, None),
            (PdpFailure::TooLarge, None),
            (PdpFailure::Status, Some(302)),
        ]
    );
    assert_eq!(pep.cache().negative_len(), 0);
    let shown = PepError::PdpUnavailable {
        cause: PdpFailure::Status,
        status: Some(500),
        source: None,
    }
    .to_string();
    assert!(
        !shown.contains("boom"),
        "no response body in messages: {shown}"
    );
    Ok(())
}

#[tokio::test]
async fn client_errors_do_not_open_the_breaker() -> TestResult {
    let server = FaultServer::start(vec![Fault::json(400, &json!({}))])?;
    let pep = authzen_pep(
        AuthzenConfig::new(server.addr())
            .with_discovery(false)
            .with_breaker(2, Duration::from_secs(60)),
    );
    for _ in 0..5 {
        let (cause, status) = unavailable(pep.authorize(&reader(jti()), APP).await);
        assert_eq!((cause, status), (PdpFailure::Status, Some(400)));
    }
    assert_eq!(server.request_count(), 5, "a PDP that answers 4xx is alive");

    server.set_script(vec![Fault::status(503)]);
    for _ in 0..2 {
        unavailable(pep.authorize(&reader(jti()), APP).await);
    }
    let (cause, _) = unavailable(pep.authorize(&reader(jti()), APP).await);
    assert_eq!(cause, PdpFailure::CircuitOpen);
    assert_eq!(server.request_count(), 7);
    Ok(())
}

#[tokio::test]
async fn discovery_refuses_another_pdp_or_origin() -> TestResult {
    let server = FaultServer::start(vec![])?;
    let addr = server.addr();
    let doc = |pdp: &str, eval: &str| {
        json!({
            "policy_decision_point": pdp,
            "access_evaluation_endpoint": eval,
        })
    };
    let cases = [
        (
            doc(
                "http://evil.example",
                &format!("{addr}/access/v1/evaluation"),
            ),
            false,
        ),
        (
            doc(&addr, "http://evil.example/access/v1/evaluation"),
            false,
        ),
        (json!({"access_evaluation_endpoint": "x"}), false),
        (
            doc(&format!("{addr}/"), &format!("{addr}/custom/eval")),
            true,
        ),
    ];
    for (document, ok) in cases {
        server.set_script(vec![Fault::json(200, &document)]);
        let client = AuthzenClient::new(AuthzenConfig::new(&addr))?;
        let result = client.discover().await;
        if ok {
            let metadata = result?;
            assert_eq!(
                metadata.access_evaluation_endpoint,
                format!("{addr}/custom/eval")
            );
            assert_eq!(metadata.access_evaluations_endpoint, None);
        } else {
            assert_eq!(
                unavailable(result),
                (PdpFailure::Discovery, None),
                "{document}"
            );
        }
    }
    let paths: Vec<_> = server.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths
            .iter()
            .all(|p| p == "/.well-known/authzen-configuration")
    );

    // Lazy discovery on the first decision, then the advertised endpoint; without a batch
    // endpoint a batch falls back to single evaluations.
    server.set_script(vec![
        Fault::json(200, &doc(&addr, &format!("{addr}/custom/eval"))),
        Fault::json(200, &json!({"decision": true})),
        Fault::json(200, &json!({"decision": false})),
    ]);
    let before = server.request_count();
    let pep = authzen_pep(AuthzenConfig::new(&addr));
    let _granted = pep.authorize(&reader(jti()), APP).await?;
    let report = pep
        .authorize_batch(&reader(jti()), &["openbao+kv2://secret/b"], &[])
        .await?;
    assert_eq!(report.items()[0].status.code(), "AUTHZ_DENIED");
    let paths: Vec<_> = server.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        paths,
        [
            "/.well-known/authzen-configuration",
            "/custom/eval",
            "/custom/eval"
        ]
    );

    // A failed discovery is not cached: the next call tries again.
    server.set_script(vec![
        Fault::status(503),
        Fault::json(200, &doc(&addr, &format!("{addr}/access/v1/evaluation"))),
        Fault::json(200, &json!({"decision": true})),
    ]);
    let pep = authzen_pep(AuthzenConfig::new(&addr));
    unavailable(pep.authorize(&reader(jti()), APP).await);
    assert!(pep.authorize(&reader(jti()), APP).await.is_ok());
    Ok(())
}

#[tokio::test]
async fn batch_wire_format_and_length_check() -> TestResult {
    let server = FaultServer::start(vec![
        Fault::json(
            200,
            &json!({"evaluations": [
                {"decision": true, "context": {"max_uses": 3}},
                {"decision": false}
            ]}),
        ),
        Fault::json(200, &json!({"evaluations": [{"decision": true}]})),
    ])?;
    let pep = authzen_pep(AuthzenConfig::new(server.addr()).with_discovery(false));
    let report = pep
        .authorize_batch(
            &reader(jti()),
            &["openbao+kv2://secret/a"],
            &["openbao+kv2://secret/b", "openbao+kv2://secret/a"],
        )
        .await?;
    let codes: Vec<_> = report.items().iter().map(|i| i.status.code()).collect();
    assert_eq!(codes, ["GRANTED", "AUTHZ_DENIED"]);
    let request = &server.requests()[0];
    assert_eq!(request.path, "/access/v1/evaluations");
    let body = request.json().unwrap_or_default();
    let ids: Vec<_> = body["evaluations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"]["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids, ["openbao+kv2://secret/a", "openbao+kv2://secret/b"]);
    assert_eq!(body["action"], json!({"name": "execute"}));

    // A response with the wrong number of decisions grants nothing.
    let report = pep
        .authorize_batch(
            &reader(jti()),
            &["openbao+kv2://secret/c", "openbao+kv2://secret/d"],
            &[],
        )
        .await?;
    let codes: Vec<_> = report.items().iter().map(|i| i.status.code()).collect();
    assert_eq!(codes, ["PDP_UNAVAILABLE", "PDP_UNAVAILABLE"]);
    assert!(!report.is_satisfied());
    Ok(())
}

#[test]
fn from_env_builds_an_authzen_pep_and_refuses_dev_mode_in_production() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let from_env = secret_pep::PepConfig::from_lookup(env(&[
        ("TENANT_ID", "t1"),
        ("TENANT_ALLOWED_MOUNTS", "secret"),
        ("AUTHZEN_PDP_URL", "http://127.0.0.1:9"),
    ]))
    .unwrap();
    assert!(Pep::new(from_env).is_ok());

    let from_env = secret_pep::PepConfig::from_lookup(env(&[
        ("TENANT_ID", "t1"),
        ("TENANT_ALLOWED_MOUNTS", "secret"),
        ("AUTHZEN_PDP_URL", "http://pdp.example"),
    ]))
    .unwrap();
    assert_eq!(Pep::new(from_env).unwrap_err().code(), "CONFIG");

    // Development mode needs a development ENVIRONMENT; anything else is production.
    for (environment, ok) in [
        ("production", false),
        ("staging", false),
        ("prd", false),
        ("dev", true),
        ("test", true),
    ] {
        let from_env = secret_pep::PepConfig::from_lookup(|name| match name {
            "TENANT_ID" => Some("t1".to_owned()),
            "TENANT_ALLOWED_MOUNTS" => Some("secret".to_owned()),
            "ENABLE_AUTHORIZATION" => Some("false".to_owned()),
            "ENVIRONMENT" => Some(environment.to_owned()),
            _ => None,
        })
        .unwrap();
        match Pep::new(from_env) {
            Ok(_) => assert!(ok, "{environment} accepted"),
            Err(err) => {
                assert!(!ok, "{environment} refused: {err}");
                assert_eq!(err.code(), "CONFIG");
                assert!(err.to_string().contains("ENVIRONMENT"), "{err}");
            }
        }
    }

    // No PDP at all: never fail open.
    let err = Pep::new(config()).unwrap_err();
    assert!(err.to_string().contains("no PDP configured"), "{err}");
}
