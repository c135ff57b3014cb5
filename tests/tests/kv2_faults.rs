//! Transport faults and request shapes, against `secrets-test-support`'s scripted HTTP/1.1
//! server on loopback. These need no OpenBao.
//!
//! With token auth the first request of a fresh provider is `GET auth/token/lookup-self`, so
//! most scripts start with [`common::kv2::lookup_never_expires`].

mod common;

use std::time::{Duration, Instant};

use common::TestResult;
use common::kv2::{code, config, kv_reply, lookup_never_expires, uri};
use secrecy::SecretString;
use secret_providers::{Kv2Auth, Kv2Flavor, Kv2Provider, ProviderError, RetryConfig};
use secrets_test_support::{Fault, FaultServer};
use serde_json::json;

const FLAVOR: Kv2Flavor = Kv2Flavor::OpenBao;

fn provider(server: &FaultServer) -> Result<Kv2Provider, ProviderError> {
    Kv2Provider::new(config(
        FLAVOR,
        &server.addr(),
        Kv2Auth::token("s.test-token"),
    ))
}

fn reads(server: &FaultServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path.contains("/data/"))
        .count()
}

#[tokio::test]
async fn slow_reply_times_out_within_the_configured_bound() -> TestResult {
    let server = FaultServer::start(vec![
        lookup_never_expires(),
        Fault::delay(Duration::from_secs(3), kv_reply(json!({"k": "late"}))),
    ])?;
    let timeout = Duration::from_millis(300);
    let retry =
        RetryConfig::attempts(2).with_delays(Duration::from_millis(10), Duration::from_millis(20));
    let provider = Kv2Provider::new(
        config(FLAVOR, &server.addr(), Kv2Auth::token("s.t"))
            .with_timeout(timeout)
            .with_retry(retry),
    )?;
    let started = Instant::now();
    let result = provider.read(&uri(FLAVOR, "secret/app/api")).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(ProviderError::Timeout { attempts: 2, .. })),
        "{result:?}"
    );
    // Two attempts of 300 ms plus at most 40 ms of backoff (with jitter), and some slack.
    assert!(elapsed < Duration::from_millis(1_200), "took {elapsed:?}");
    assert!(elapsed >= timeout * 2, "took {elapsed:?}");
    Ok(())
}

#[tokio::test]
async fn a_500_then_200_succeeds() -> TestResult {
    let server = FaultServer::start(vec![
        lookup_never_expires(),
        Fault::json(500, &json!({"errors": ["internal"]})),
        kv_reply(json!({"k": "v"})),
    ])?;
    let value = provider(&server)?
        .read(&uri(FLAVOR, "secret/app/api#k"))
        .await?;
    assert_eq!(value.expose_str(), Some("v"));
    assert_eq!(reads(&server), 2);
    Ok(())
}

#[tokio::test]
async fn retryable_statuses_are_retried() -> TestResult {
    for status in [429, 502, 504] {
        let server = FaultServer::start(vec![
            lookup_never_expires(),
            Fault::status(status),
            kv_reply(json!({"k": "v"})),
        ])?;
        let value = provider(&server)?
            .read(&uri(FLAVOR, "secret/app/api#k"))
            .await?;
        assert_eq!(value.expose_str(), Some("v"), "after {status}");
    }
    Ok(())
}

#[tokio::test]
async fn three_503_are_unavailable_after_three_attempts() -> TestResult {
    let server = FaultServer::start(vec![
        lookup_never_expires(),
        Fault::json(503, &json!({"errors": ["Vault is sealed"]})),
    ])?;
    let result = provider(&server)?
        .read(&uri(FLAVOR, "secret/app/api"))
        .await;
    assert!(
        matches!(
            result,
            Err(ProviderError::Unavailable {
                attempts: 3,
                status: Some(503),
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(reads(&server), 3);
    Ok(())
}

#[tokio::test]
async fn connection_refused_is_unavailable() -> TestResult {
    let port = secrets_test_support::free_port()?;
    let provider = Kv2Provider::new(config(
        FLAVOR,
        &format!("http://127.0.0.1:{port}"),
        Kv2Auth::token("s.t"),
    ))?;
    let result = provider.read(&uri(FLAVOR, "secret/app/api")).await;
    match &result {
        Err(
            e @ ProviderError::Unavailable {
                attempts: 3,
                status: None,
                ..
            },
        ) => {
            assert!(
                std::error::Error::source(e).is_some(),
                "the transport error is kept as the source"
            );
        }
        other => panic!("expected UNAVAILABLE, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_closed_connection_is_retried() -> TestResult {
    let server = FaultServer::start(vec![
        lookup_never_expires(),
        Fault::Close,
        kv_reply(json!({"k": "v"})),
    ])?;
    let value = provider(&server)?
        .read(&uri(FLAVOR, "secret/app/api#k"))
        .await?;
    assert_eq!(value.expose_str(), Some("v"));
    Ok(())
}

#[tokio::test]
async fn truncated_json_is_malformed() -> TestResult {
    // Complete HTTP, cut JSON.
    let cut = Fault::Respond {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: br#"{"data":{"data":{"k":"v"#.to_vec(),
    };
    let server = FaultServer::start(vec![lookup_never_expires(), cut])?;
    let result = provider(&server)?
        .read(&uri(FLAVOR, "secret/app/api"))
        .await;
    assert_eq!(code(&result), "MALFORMED_RESPONSE");
    assert_eq!(reads(&server), 1, "a malformed answer is not retried");

    // 200 without data.data.
    let server = FaultServer::start(vec![
        lookup_never_expires(),
        Fault::json(200, &json!({"data": {}})),
    ])?;
    assert_eq!(
        code(
            &provider(&server)?
                .read(&uri(FLAVOR, "secret/app/api"))
                .await
        ),
        "MALFORMED_RESPONSE"
    );
    Ok(())
}

/// The body stops short of its Content-Length and the connection closes: the server is
/// failing, the answer is not malformed. A read retries it, and after the last attempt it is
/// a transient `UNAVAILABLE` (so a cache falls back to its stale value instead of dropping it).
#[tokio::test]
async fn a_body_cut_mid_response_is_unavailable_and_retried() -> TestResult {
    let cut = Fault::Truncated {
        declared_len: 500,
        body: br#"{"data":{"data":{"k":"#.to_vec(),
    };
    let server = FaultServer::start(vec![
        lookup_never_expires(),
        cut.clone(),
        kv_reply(json!({"k": "v"})),
    ])?;
    let value = provider(&server)?
        .read(&uri(FLAVOR, "secret/app/api#k"))
        .await?;
    assert_eq!(value.expose_str(), Some("v"));
    assert_eq!(reads(&server), 2, "the cut read was retried");

    let server = FaultServer::start(vec![lookup_never_expires(), cut])?;
    let result = provider(&server)?
        .read(&uri(FLAVOR, "secret/app/api"))
        .await;
    assert!(
        matches!(
            &result,
            Err(e @ ProviderError::Unavailable {
                attempts: 3,
                status: Some(200),
                ..
            }) if e.is_transient()
        ),
        "{result:?}"
    );
    assert_eq!(reads(&server), 3);
    Ok(())
}

/// A login whose response is lost after the server got it (the connection closes, or the
/// server never answers) is not sent again: with a single-use `secret_id` the second
/// attempt would be refused, turning a transient failure into `AUTH_FAILED`. The failure is
/// transient, and the next read logs in afresh.
#[tokio::test]
async fn a_login_that_may_have_been_received_is_not_retried() -> TestResult {
    let logins = |server: &FaultServer| {
        server
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/auth/approle/login")
            .count()
    };
    let auth = || Kv2Auth::approle("r", Some(SecretString::from("single-use".to_owned())));
    let server = FaultServer::start(vec![
        Fault::Close,
        login_reply("s.ok"),
        kv_reply(json!({"k": "v"})),
    ])?;
    let provider = Kv2Provider::new(config(FLAVOR, &server.addr(), auth()))?;
    let first = provider.read(&uri(FLAVOR, "secret/app/api#k")).await;
    assert!(
        matches!(&first, Err(e @ ProviderError::Unavailable { attempts: 1, .. }) if e.is_transient()),
        "{first:?}"
    );
    assert_eq!(logins(&server), 1, "the lost login was not sent again");
    let second = provider.read(&uri(FLAVOR, "secret/app/api#k")).await?;
    assert_eq!(second.expose_str(), Some("v"));
    assert_eq!(logins(&server), 2);

    // A server that takes the login and never answers: one attempt, then TIMEOUT.
    let server = FaultServer::start(vec![Fault::Hang])?;
    let provider = Kv2Provider::new(
        config(FLAVOR, &server.addr(), auth()).with_timeout(Duration::from_millis(300)),
    )?;
    let result = provider.read(&uri(FLAVOR, "secret/app/api")).await;
    assert!(
        matches!(result, Err(ProviderError::Timeout { attempts: 1, .. })),
        "{result:?}"
    );
    assert_eq!(logins(&server), 1);

    // A cut-off login answer is not retried either.
    let server = FaultServer::start(vec![Fault::Truncated {
        declared_len: 200,
        body: br#"{"auth":{"client_token":"s."#.to_vec(),
    }])?;
    let provider = Kv2Provider::new(config(FLAVOR, &server.addr(), auth()))?;
    let result = provider.read(&uri(FLAVOR, "secret/app/api")).await;
    assert_eq!(code(&result), "UNAVAILABLE");
    assert_eq!(logins(&server), 1);
    Ok(())
}

/// Reads and lookups are idempotent: a connection closed before any answer is retried.
#[tokio::test]
async fn a_read_whose_response_is_lost_is_retried() -> TestResult {
    let server = FaultServer::start(vec![
        login_reply("s.ok"),
        Fault::Close,
        Fault::Close,
        kv_reply(json!({"k": "v"})),
    ])?;
    let provider = Kv2Provider::new(config(FLAVOR, &server.addr(), Kv2Auth::approle("r", None)))?;
    let value = provider.read(&uri(FLAVOR, "secret/app/api#k")).await?;
    assert_eq!(value.expose_str(), Some("v"));
    assert_eq!(reads(&server), 3);
    Ok(())
}

/// A policy that denies both the path and `lookup-self`: the first denied read logs in again
/// once; later denied reads within the interval are `PERMISSION_DENIED` with one request
/// each, instead of a lookup, a login (a `secret_id` use) and a second read every time.
#[tokio::test]
async fn re_login_after_403_is_rate_limited() -> TestResult {
    let denied = Fault::json(403, &json!({"errors": ["permission denied"]}));
    let server = FaultServer::start(vec![
        login_reply("s.one"),
        denied.clone(),
        denied.clone(),
        login_reply("s.two"),
        denied,
    ])?;
    let provider = Kv2Provider::new(config(FLAVOR, &server.addr(), Kv2Auth::approle("r", None)))?;
    for _ in 0..10 {
        let result = provider.read(&uri(FLAVOR, "secret/app/api")).await;
        assert_eq!(code(&result), "PERMISSION_DENIED");
    }
    let requests = server.requests();
    let count = |path: &str| requests.iter().filter(|r| r.path == path).count();
    assert_eq!(
        count("/v1/auth/approle/login"),
        2,
        "first login + one re-login"
    );
    assert_eq!(count("/v1/auth/token/lookup-self"), 1);
    assert_eq!(
        count("/v1/secret/data/app/api"),
        11,
        "one request per later read"
    );
    Ok(())
}

#[tokio::test]
async fn a_huge_body_is_too_large() -> TestResult {
    // Declared by Content-Length: refused before reading it.
    let server = FaultServer::start(vec![
        lookup_never_expires(),
        Fault::Huge {
            len: 3 * 1024 * 1024,
        },
    ])?;
    let result = provider(&server)?
        .read(&uri(FLAVOR, "secret/app/api"))
        .await;
    assert!(
        matches!(
            result,
            Err(ProviderError::TooLarge {
                limit: 1_048_576,
                ..
            })
        ),
        "{result:?}"
    );

    // Chunked, so only counting stops it.
    let mut chunked = Vec::new();
    for _ in 0..8 {
        chunked.extend_from_slice(format!("{:x}\r\n", 1024).as_bytes());
        chunked.extend_from_slice(&[b'a'; 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let server = FaultServer::start(vec![
        lookup_never_expires(),
        Fault::Respond {
            status: 200,
            headers: vec![("Transfer-Encoding".into(), "chunked".into())],
            body: chunked,
        },
    ])?;
    let small = Kv2Provider::new(
        config(FLAVOR, &server.addr(), Kv2Auth::token("s.t")).with_max_body_bytes(4096),
    )?;
    let result = small.read(&uri(FLAVOR, "secret/app/api")).await;
    assert!(
        matches!(result, Err(ProviderError::TooLarge { limit: 4096, .. })),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn redirects_are_not_followed() -> TestResult {
    let redirect =
        Fault::status(307).with_header("Location", "http://127.0.0.1:1/v1/secret/data/app/api");
    let server = FaultServer::start(vec![lookup_never_expires(), redirect])?;
    let result = provider(&server)?
        .read(&uri(FLAVOR, "secret/app/api"))
        .await;
    assert!(
        matches!(
            result,
            Err(ProviderError::UnexpectedStatus { status: 307, .. })
        ),
        "{result:?}"
    );
    assert_eq!(server.request_count(), 2);
    Ok(())
}

#[tokio::test]
async fn request_shape_headers_and_keep_alive() -> TestResult {
    let server = FaultServer::start(vec![lookup_never_expires(), kv_reply(json!({"k": "v"}))])?;
    let provider = Kv2Provider::new(
        config(FLAVOR, &server.addr(), Kv2Auth::token("s.shape")).with_namespace("team-a"),
    )?;
    provider
        .read(&uri(FLAVOR, "secret/app/x/y#k?version=3"))
        .await?;
    provider.read(&uri(FLAVOR, "secret/app/x/y")).await?;
    let requests = server.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1/auth/token/lookup-self",
            "/v1/secret/data/app/x/y?version=3",
            "/v1/secret/data/app/x/y"
        ]
    );
    for request in &requests {
        assert_eq!(request.method, "GET");
        assert_eq!(request.header("x-vault-token"), Some("s.shape"));
        assert_eq!(request.header("x-vault-namespace"), Some("team-a"));
    }
    assert_eq!(server.connection_count(), 1, "one kept-alive connection");
    Ok(())
}

#[tokio::test]
async fn a_token_that_never_expires_is_looked_up_once() -> TestResult {
    let server = FaultServer::start(vec![lookup_never_expires(), kv_reply(json!({"k": "v"}))])?;
    let provider = provider(&server)?;
    for _ in 0..5 {
        provider.read(&uri(FLAVOR, "secret/app/api")).await?;
    }
    let lookups = server
        .requests()
        .iter()
        .filter(|r| r.path.contains("lookup-self"))
        .count();
    assert_eq!((lookups, reads(&server)), (1, 5));
    Ok(())
}

#[tokio::test]
async fn a_static_token_gets_no_second_chance_on_403() -> TestResult {
    let server = FaultServer::start(vec![
        lookup_never_expires(),
        Fault::json(403, &json!({"errors": ["permission denied"]})),
    ])?;
    let result = provider(&server)?
        .read(&uri(FLAVOR, "secret/app/api"))
        .await;
    assert!(
        matches!(
            result,
            Err(ProviderError::PermissionDenied {
                status: Some(403),
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(server.request_count(), 2);
    Ok(())
}

fn login_reply(token: &str) -> Fault {
    Fault::json(
        200,
        &json!({"auth": {"client_token": token, "lease_duration": 3600, "renewable": true}}),
    )
}

#[tokio::test]
async fn concurrent_first_reads_cause_one_login() -> TestResult {
    let server = FaultServer::start(vec![
        Fault::delay(Duration::from_millis(100), login_reply("s.from-login")),
        kv_reply(json!({"k": "v"})),
    ])?;
    let auth = Kv2Auth::approle("role-1", Some(SecretString::from("secret-1".to_owned())));
    let provider = Kv2Provider::new(config(FLAVOR, &server.addr(), auth))?;
    assert_eq!(server.request_count(), 0, "new() does no network I/O");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move {
                provider
                    .read(&uri(FLAVOR, "secret/app/api#k"))
                    .await
                    .map(|v| v.is_text())
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await??);
    }
    let requests = server.requests();
    let logins: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/v1/auth/approle/login")
        .collect();
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].method, "POST");
    assert_eq!(logins[0].header("x-vault-token"), None);
    assert_eq!(
        logins[0].json(),
        Some(json!({"role_id": "role-1", "secret_id": "secret-1"}))
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.path.contains("/data/"))
            .all(|r| r.header("x-vault-token") == Some("s.from-login"))
    );
    Ok(())
}

#[tokio::test]
async fn approle_403_with_a_refused_token_logs_in_again_once_then_denies() -> TestResult {
    let denied = Fault::json(403, &json!({"errors": ["permission denied"]}));
    let server = FaultServer::start(vec![
        login_reply("s.one"),
        denied.clone(),
        // lookup-self refuses s.one too: the token is bad, so log in again.
        denied.clone(),
        login_reply("s.two"),
        // Denied right after a fresh login: no second re-login.
        denied,
    ])?;
    let provider = Kv2Provider::new(config(FLAVOR, &server.addr(), Kv2Auth::approle("r", None)))?;
    let result = provider.read(&uri(FLAVOR, "secret/app/api")).await;
    assert_eq!(code(&result), "PERMISSION_DENIED");
    let seen: Vec<(String, Option<String>)> = server
        .requests()
        .into_iter()
        .map(|r| (r.path.clone(), r.header("x-vault-token").map(str::to_owned)))
        .collect();
    let step = |path: &str, token: Option<&str>| (path.to_owned(), token.map(str::to_owned));
    assert_eq!(
        seen,
        [
            step("/v1/auth/approle/login", None),
            step("/v1/secret/data/app/api", Some("s.one")),
            step("/v1/auth/token/lookup-self", Some("s.one")),
            step("/v1/auth/approle/login", None),
            step("/v1/secret/data/app/api", Some("s.two")),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn approle_403_with_a_valid_token_is_denied_without_login() -> TestResult {
    let denied = Fault::json(
        403,
        &json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]}),
    );
    let lookup_ok = Fault::json(
        200,
        &json!({"data": {"ttl": 3000, "renewable": true, "expire_time": "x"}}),
    );
    let server = FaultServer::start(vec![
        login_reply("s.one"),
        denied.clone(),
        lookup_ok.clone(),
        denied,
        lookup_ok,
    ])?;
    let provider = Kv2Provider::new(config(FLAVOR, &server.addr(), Kv2Auth::approle("r", None)))?;
    for _ in 0..2 {
        let result = provider.read(&uri(FLAVOR, "secret/outside/policy")).await;
        assert!(
            matches!(
                result,
                Err(ProviderError::PermissionDenied {
                    status: Some(403),
                    ..
                })
            ),
            "{result:?}"
        );
    }
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v1/auth/approle/login",
            "/v1/secret/data/outside/policy",
            "/v1/auth/token/lookup-self",
            "/v1/secret/data/outside/policy",
            "/v1/auth/token/lookup-self",
        ],
        "exactly one login"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_login_is_shared_with_queued_readers() -> TestResult {
    let server = FaultServer::start(vec![Fault::delay(
        Duration::from_millis(150),
        Fault::json(503, &json!({"errors": ["Vault is sealed"]})),
    )])?;
    let provider = Kv2Provider::new(config(FLAVOR, &server.addr(), Kv2Auth::approle("r", None)))?;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move { provider.read(&uri(FLAVOR, "secret/app/api")).await })
        })
        .collect();
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(code(&task.await?));
    }
    assert_eq!(codes, ["UNAVAILABLE"; 20]);
    assert_eq!(
        server.request_count(),
        3,
        "one login's three attempts, not one login per reader"
    );
    Ok(())
}

#[tokio::test]
async fn a_huge_lease_does_not_overflow() -> TestResult {
    let server = FaultServer::start(vec![
        Fault::json(
            200,
            &json!({"data": {"ttl": u64::MAX, "renewable": true, "expire_time": "x"}}),
        ),
        kv_reply(json!({"k": "v"})),
    ])?;
    let provider = provider(&server)?;
    for _ in 0..2 {
        provider.read(&uri(FLAVOR, "secret/app/api")).await?;
    }
    assert_eq!(server.request_count(), 3, "one lookup, two reads");

    let server = FaultServer::start(vec![
        Fault::json(
            200,
            &json!({"auth": {"client_token": "s.long", "lease_duration": u64::MAX, "renewable": true}}),
        ),
        kv_reply(json!({"k": "v"})),
    ])?;
    let provider = Kv2Provider::new(config(FLAVOR, &server.addr(), Kv2Auth::approle("r", None)))?;
    for _ in 0..2 {
        provider.read(&uri(FLAVOR, "secret/app/api")).await?;
    }
    assert_eq!(server.request_count(), 3, "one login, two reads");
    Ok(())
}

#[tokio::test]
async fn a_renewal_without_a_lease_looks_the_token_up_again() -> TestResult {
    let server = FaultServer::start(vec![
        Fault::json(
            200,
            &json!({"data": {"ttl": 1, "renewable": true, "expire_time": "x"}}),
        ),
        kv_reply(json!({"k": "v"})),
        Fault::json(
            200,
            &json!({"auth": {"client_token": "s.t", "lease_duration": 0, "renewable": true}}),
        ),
        Fault::json(
            200,
            &json!({"data": {"ttl": 3600, "renewable": true, "expire_time": "x"}}),
        ),
        kv_reply(json!({"k": "v"})),
    ])?;
    let provider = provider(&server)?;
    provider.read(&uri(FLAVOR, "secret/app/api")).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    provider.read(&uri(FLAVOR, "secret/app/api")).await?;
    provider.read(&uri(FLAVOR, "secret/app/api")).await?;
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v1/auth/token/lookup-self",
            "/v1/secret/data/app/api",
            "/v1/auth/token/renew-self",
            "/v1/auth/token/lookup-self",
            "/v1/secret/data/app/api",
            "/v1/secret/data/app/api",
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_body_cut_short_reports_its_real_status() -> TestResult {
    let server = FaultServer::start(vec![
        lookup_never_expires(),
        Fault::Respond {
            status: 404,
            headers: vec![("Transfer-Encoding".into(), "chunked".into())],
            body: b"zz\r\nnot a chunk".to_vec(),
        },
    ])?;
    let result = provider(&server)?
        .read(&uri(FLAVOR, "secret/app/api"))
        .await;
    assert!(
        matches!(
            result,
            Err(ProviderError::MalformedResponse { status: 404, .. })
        ),
        "{result:?}"
    );
    Ok(())
}

/// No Kubernetes cluster is available here, so the login request is checked against a local
/// HTTP stand-in that answers like OpenBao's Kubernetes auth method.
#[tokio::test]
async fn kubernetes_login_against_a_local_stand_in() -> TestResult {
    let dir = tempfile::tempdir()?;
    let jwt_path = dir.path().join("token");
    std::fs::write(&jwt_path, "eyJhbGciOiJSUzI1NiJ9.payload.signature\n")?;
    let server = FaultServer::start(vec![login_reply("s.from-k8s"), kv_reply(json!({"k": "v"}))])?;
    let auth = Kv2Auth::kubernetes("app")
        .with_mount("k8s-prod")
        .with_jwt_path(&jwt_path);
    let provider = Kv2Provider::new(config(FLAVOR, &server.addr(), auth))?;
    assert_eq!(
        provider
            .read(&uri(FLAVOR, "secret/app/api#k"))
            .await?
            .expose_str(),
        Some("v")
    );
    let requests = server.requests();
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("POST", "/v1/auth/k8s-prod/login")
    );
    assert_eq!(
        requests[0].json(),
        Some(json!({"role": "app", "jwt": "eyJhbGciOiJSUzI1NiJ9.payload.signature"}))
    );
    assert_eq!(requests[1].header("x-vault-token"), Some("s.from-k8s"));

    // A rejected login and a missing JWT file are AUTH_FAILED.
    let server = FaultServer::start(vec![Fault::json(400, &json!({"errors": ["invalid role"]}))])?;
    let auth = Kv2Auth::kubernetes("app").with_jwt_path(&jwt_path);
    let result = Kv2Provider::new(config(FLAVOR, &server.addr(), auth))?
        .read(&uri(FLAVOR, "secret/a/b"))
        .await;
    assert!(
        matches!(
            result,
            Err(ProviderError::AuthFailed {
                method: "kubernetes",
                status: Some(400),
                ..
            })
        ),
        "{result:?}"
    );
    let auth = Kv2Auth::kubernetes("app").with_jwt_path(dir.path().join("missing"));
    let result = Kv2Provider::new(config(FLAVOR, &server.addr(), auth))?
        .read(&uri(FLAVOR, "secret/a/b"))
        .await;
    assert!(
        matches!(result, Err(ProviderError::AuthFailed { status: None, .. })),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_token_file_is_read_again_after_403() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("token");
    std::fs::write(&path, "s.old\n")?;
    let server = FaultServer::start(vec![lookup_never_expires(), kv_reply(json!({"k": "v"}))])?;
    let provider = Kv2Provider::new(config(FLAVOR, &server.addr(), Kv2Auth::token_file(&path)))?;
    provider.read(&uri(FLAVOR, "secret/app/api")).await?;
    // An agent rotates the token file; the server now refuses the old token.
    std::fs::write(&path, "s.new\n")?;
    server.set_script(vec![
        Fault::json(403, &json!({"errors": ["permission denied"]})),
        // lookup-self refuses the old token as well.
        Fault::json(403, &json!({"errors": ["permission denied"]})),
        lookup_never_expires(),
        kv_reply(json!({"k": "v"})),
    ]);
    provider.read(&uri(FLAVOR, "secret/app/api")).await?;
    let seen: Vec<(String, Option<String>)> = server
        .requests()
        .into_iter()
        .map(|r| (r.path.clone(), r.header("x-vault-token").map(str::to_owned)))
        .collect();
    let token = |t: &str| Some(t.to_owned());
    assert_eq!(
        seen,
        [
            ("/v1/auth/token/lookup-self".to_owned(), token("s.old")),
            ("/v1/secret/data/app/api".to_owned(), token("s.old")),
            ("/v1/secret/data/app/api".to_owned(), token("s.old")),
            ("/v1/auth/token/lookup-self".to_owned(), token("s.old")),
            ("/v1/auth/token/lookup-self".to_owned(), token("s.new")),
            ("/v1/secret/data/app/api".to_owned(), token("s.new")),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn renewable_tokens_are_renewed_before_expiry() -> TestResult {
    let server = FaultServer::start(vec![
        Fault::json(
            200,
            &json!({"data": {"ttl": 1, "renewable": true, "expire_time": "x"}}),
        ),
        kv_reply(json!({"k": "v"})),
        Fault::json(
            200,
            &json!({"auth": {"client_token": "s.t", "lease_duration": 3600, "renewable": true}}),
        ),
        kv_reply(json!({"k": "v"})),
    ])?;
    let provider = provider(&server)?;
    provider.read(&uri(FLAVOR, "secret/app/api")).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    provider.read(&uri(FLAVOR, "secret/app/api")).await?;
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v1/auth/token/lookup-self",
            "/v1/secret/data/app/api",
            "/v1/auth/token/renew-self",
            "/v1/secret/data/app/api"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_renewal_keeps_the_still_valid_token() -> TestResult {
    let unavailable = Fault::json(503, &json!({"errors": ["Vault is sealed"]}));
    let server = FaultServer::start(vec![
        Fault::json(
            200,
            &json!({"data": {"ttl": 3, "renewable": true, "expire_time": "x"}}),
        ),
        kv_reply(json!({"k": "v"})),
        unavailable.clone(),
        unavailable.clone(),
        unavailable,
        kv_reply(json!({"k": "v"})),
    ])?;
    let provider = provider(&server)?;
    provider.read(&uri(FLAVOR, "secret/app/api")).await?;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    provider.read(&uri(FLAVOR, "secret/app/api")).await?;
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v1/auth/token/lookup-self",
            "/v1/secret/data/app/api",
            "/v1/auth/token/renew-self",
            "/v1/auth/token/renew-self",
            "/v1/auth/token/renew-self",
            "/v1/secret/data/app/api",
        ]
    );
    Ok(())
}
