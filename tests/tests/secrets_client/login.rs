//! Logins under faults, against a real OpenBao behind a counting proxy: a login whose
//! response is lost is not sent twice, and a policy that denies both the path and
//! `lookup-self` does not cost a login per denied read.

use std::time::Duration;

use crate::common::sdk::{TestResult, bao, builder, demo_files};
use secrecy::SecretString;
use secrets_sdk::SecretsClient;
use secrets_sdk::providers::{Kv2Auth, Kv2Config, Kv2Flavor, RetryConfig};
use secrets_test_support::OpenBaoServer;
use secrets_test_support::proxy::CountingProxy;
use serde_json::{Value, json};

const API: &str = "openbao+kv2://secret/app/api#token";
const LOGIN: &str = "/v1/auth/approle/login";

/// Creates AppRole `role` (token policies `policies`, no default policy, so no
/// `lookup-self`) with `role_options`, and returns its role ID and a fresh secret ID.
fn approle(
    bao: &OpenBaoServer,
    role: &str,
    policies: &[&str],
    role_options: Value,
) -> Result<(String, String), Box<dyn std::error::Error>> {
    // Enables AppRole if needed (its own helper role is unused here).
    bao.setup_approle("unused", &["default"])?;
    let mut body = json!({
        "token_policies": policies,
        "token_no_default_policy": true,
        "token_ttl": "1h",
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), role_options) {
        body.extend(extra);
    }
    let path = format!("auth/approle/role/{role}");
    let (status, _) = bao.api("POST", &path, Some(&body))?;
    assert_eq!(status, 204, "create role {role}");
    let (_, role_id) = bao.api("GET", &format!("{path}/role-id"), None)?;
    let (_, secret_id) = bao.api("POST", &format!("{path}/secret-id"), Some(&json!({})))?;
    let field = |v: &Value, name: &str| v["data"][name].as_str().map(str::to_owned);
    let role_id = field(&role_id, "role_id").ok_or("no role_id")?;
    let secret_id = field(&secret_id, "secret_id").ok_or("no secret_id")?;
    Ok((role_id, secret_id))
}

fn client(
    files: &std::path::Path,
    address: &str,
    role_id: String,
    secret_id: String,
) -> Result<SecretsClient, secrets_sdk::Error> {
    let auth = Kv2Auth::approle(role_id, Some(SecretString::from(secret_id)));
    let config = Kv2Config::new(Kv2Flavor::OpenBao, address, auth)
        .with_timeout(Duration::from_secs(5))
        .with_retry(
            RetryConfig::attempts(3)
                .with_delays(Duration::from_millis(20), Duration::from_millis(50)),
        );
    builder(files).kv2(config).build()
}

/// A `secret_id` with `secret_id_num_uses=1`; the proxy loses the first login's response
/// after OpenBao handled it (and consumed the `secret_id`). The resolve fails with a
/// transient error, and exactly one login POST reached OpenBao. Before: the login was sent
/// again, found the `secret_id` used up, and the resolve failed with `AUTH_FAILED`.
#[tokio::test]
async fn a_lost_login_response_is_not_retried_into_auth_failed() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = bao()? else { return Ok(()) };
    bao.put_policy(
        "read-app",
        r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
    )?;
    let (role_id, secret_id) = approle(
        &bao,
        "single-use",
        &["read-app"],
        json!({"secret_id_num_uses": 1}),
    )?;
    let proxy = CountingProxy::start(&bao.addr())?;
    proxy.drop_responses(LOGIN, 1);
    let client = client(files.path(), &proxy.addr(), role_id, secret_id)?;

    let first = client.resolve(API).await.err();
    assert_eq!(proxy.dropped_responses(), 1, "the login response was lost");
    assert_eq!(
        proxy.count(LOGIN),
        1,
        "exactly one login POST reached OpenBao"
    );
    let first = first.ok_or("the resolve succeeded without a login response")?;
    assert!(
        matches!(first.code(), "UNAVAILABLE" | "TIMEOUT") && first.is_transient(),
        "{}",
        first.code()
    );
    assert_eq!(proxy.count("/v1/secret/data/app/api"), 0);
    Ok(())
}

/// A role whose policy can neither read the path nor `lookup-self`: every read is denied.
/// Ten denied resolves cause at most two logins (the first, and one re-login), and every
/// resolve is `PERMISSION_DENIED`. Before: each denied read logged in again (four requests,
/// one `secret_id` use per read).
#[tokio::test]
async fn denied_reads_are_not_a_login_each() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = bao()? else { return Ok(()) };
    bao.put_policy(
        "read-elsewhere",
        r#"path "secret/data/elsewhere/*" { capabilities = ["read"] }"#,
    )?;
    let (role_id, secret_id) = approle(&bao, "denied", &["read-elsewhere"], json!({}))?;
    let proxy = CountingProxy::start(&bao.addr())?;
    let client = client(files.path(), &proxy.addr(), role_id, secret_id)?;
    for _ in 0..10 {
        let code = client.resolve(API).await.err().map(|e| e.code());
        assert_eq!(code, Some("PERMISSION_DENIED"));
    }
    let logins = proxy.count(LOGIN);
    assert!(
        (1..=2).contains(&logins),
        "{logins} logins for 10 denied reads"
    );
    let reads = proxy.count("/v1/secret/data/app/api");
    assert!(reads <= 11, "{reads} reads for 10 resolves");
    println!(
        "10 denied resolves: {logins} logins, {reads} reads, {} lookup-self, {} requests",
        proxy.count("/v1/auth/token/lookup-self"),
        proxy.total()
    );
    Ok(())
}
