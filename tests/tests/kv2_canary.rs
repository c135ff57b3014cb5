//! The canary: a known secret value, token and AppRole secret ID go through successful reads,
//! every error path and a TRACE-level log capture, and must appear in no error's `Display` or
//! `Debug` (nor their sources), no value's `Debug`/`Display`, and no captured log line or span
//! field.
//!
//! One test function, because it installs the process-wide tracing subscriber.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::kv2::{config, kv_reply, lookup_never_expires, uri};
use secrecy::SecretString;
use secret_providers::{
    FileConfig, FileProvider, Kv2Auth, Kv2Config, Kv2Flavor, Kv2Provider, ProviderError,
    RetryConfig, SecretProvider, SecretValue,
};
use secrets_test_support::{Fault, FaultServer, LogCapture};
use serde_json::json;

const VALUE: &str = "CANARY-VALUE-7f3a9c";
const TOKEN: &str = "CANARY-TOKEN-7f3a9c";
const SECRET_ID: &str = "CANARY-SECRET-ID-7f3a9c";
const FLAVOR: Kv2Flavor = Kv2Flavor::OpenBao;

struct Seen {
    texts: Vec<String>,
}

impl Seen {
    fn error(&mut self, error: &ProviderError) {
        self.texts.push(format!("{error}"));
        self.texts.push(format!("{error:?}"));
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            self.texts.push(format!("{cause} / {cause:?}"));
            source = cause.source();
        }
    }

    fn result(&mut self, result: &Result<SecretValue, ProviderError>) -> Option<String> {
        match result {
            Ok(value) => {
                self.texts.push(format!("{value} {value:?}"));
                value
                    .expose_str()
                    .map(str::to_owned)
                    .or_else(|| value.expose_json().map(|v| v.to_string()))
            }
            Err(error) => {
                self.error(error);
                Some(error.code().to_owned())
            }
        }
    }
}

#[test]
fn secrets_never_leak_into_errors_or_logs() -> common::TestResult {
    let capture = LogCapture::install_global()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut seen = Seen { texts: Vec::new() };
    runtime.block_on(exercise(&mut seen))?;
    drop(runtime);

    let logs = capture.text();
    assert!(logs.contains("secret_read"), "the capture works: {logs}");
    assert!(logs.contains("TRACE"), "TRACE level was captured");
    for canary in [VALUE, TOKEN, SECRET_ID] {
        assert!(!logs.contains(canary), "{canary} leaked into the logs");
        for text in &seen.texts {
            assert!(!text.contains(canary), "{canary} leaked: {text}");
        }
    }
    assert!(
        seen.texts.len() > 40,
        "enough paths were exercised: {}",
        seen.texts.len()
    );
    Ok(())
}

async fn exercise(seen: &mut Seen) -> common::TestResult {
    // Files: success, key, and every error.
    let dir = tempfile::tempdir()?;
    let mount = dir.path().join("m");
    std::fs::create_dir_all(&mount)?;
    std::fs::write(mount.join("json"), format!(r#"{{"password":"{VALUE}"}}"#))?;
    std::fs::write(mount.join("text"), VALUE)?;
    std::fs::write(mount.join("big"), VALUE.repeat(100))?;
    let file = FileProvider::new(FileConfig::new(dir.path()).with_max_bytes(512));
    for target in [
        "file://m/json",
        "file://m/json#password",
        "file://m/json#nope",
        "file://m/text",
        "file://m/text#k",
        "file://m/big",
        "file://m/none",
        "file://m",
    ] {
        let got = seen.result(&file.read(&target.parse()?).await);
        if target == "file://m/json#password" {
            assert_eq!(got.as_deref(), Some(VALUE), "the canary was really read");
        }
    }
    seen.texts.push(format!("{file:?}"));

    // Real OpenBao, when installed (always under CI).
    if let Some(bao) = common::kv2::shared_bao() {
        let canary_token =
            bao.create_token_with(&json!({"id": TOKEN, "policies": ["root"], "ttl": "1h"}))?;
        assert_eq!(canary_token["client_token"], json!(TOKEN));
        bao.kv_put("secret", "canary/app", &json!({"password": VALUE}))?;
        bao.kv_put("secret", "canary/app", &json!({"password": VALUE, "v": 2}))?;
        bao.kv_delete_versions("secret", "canary/app", &[1])?;
        bao.kv_put("secret", "canary/gone", &json!({"password": VALUE}))?;
        bao.kv_destroy_versions("secret", "canary/gone", &[1])?;
        let provider = Kv2Provider::new(config(FLAVOR, &bao.addr(), Kv2Auth::token(TOKEN)))?;
        seen.texts.push(format!("{provider:?}"));
        for rest in [
            "secret/canary/app",
            "secret/canary/app#password",
            "secret/canary/app#nope",
            "secret/canary/app?version=1",
            "secret/canary/gone",
            "secret/canary/none",
            "secret",
            "nomount/x",
        ] {
            let got = seen.result(&provider.read(&uri(FLAVOR, rest)).await);
            if rest == "secret/canary/app#password" {
                assert_eq!(got.as_deref(), Some(VALUE), "the canary was really read");
            }
        }
        // 403 with the canary token's access taken away.
        bao.put_policy(
            "canary-deny",
            "path \"secret/*\" { capabilities = [\"deny\"] }",
        )?;
        let limited = bao.create_token(&["canary-deny"], "1h")?;
        let denied = Kv2Provider::new(config(FLAVOR, &bao.addr(), Kv2Auth::token(limited)))?;
        assert_eq!(
            seen.result(&denied.read(&uri(FLAVOR, "secret/canary/app")).await)
                .as_deref(),
            Some("PERMISSION_DENIED")
        );

        // AppRole with a canary secret ID: a successful login, then a wrong one.
        let credentials = bao.setup_approle("canary", &["default"])?;
        let (status, _) = bao.api(
            "POST",
            "auth/approle/role/canary/custom-secret-id",
            Some(&json!({"secret_id": SECRET_ID})),
        )?;
        assert_eq!(status, 200);
        let approle = Kv2Auth::approle(
            credentials.role_id.clone(),
            Some(SecretString::from(SECRET_ID.to_owned())),
        );
        let approle = Kv2Provider::new(config(FLAVOR, &bao.addr(), approle))?;
        seen.result(&approle.read(&uri(FLAVOR, "secret/canary/app")).await);
        let wrong = Kv2Auth::approle(
            credentials.role_id,
            Some(SecretString::from(format!("{SECRET_ID}-wrong"))),
        );
        let wrong = Kv2Provider::new(config(FLAVOR, &bao.addr(), wrong))?;
        assert_eq!(
            seen.result(&wrong.read(&uri(FLAVOR, "secret/canary/app")).await)
                .as_deref(),
            Some("AUTH_FAILED")
        );
        bao.revoke_token(TOKEN)?;
    }

    // Faults whose bodies carry the canary.
    let value_body = |status| {
        Fault::json(
            status,
            &json!({"errors": [VALUE], "data": {"data": {"password": VALUE}}}),
        )
    };
    let scripts: Vec<Vec<Fault>> = vec![
        vec![lookup_never_expires(), kv_reply(json!({"password": VALUE}))],
        vec![lookup_never_expires(), value_body(500)],
        vec![lookup_never_expires(), value_body(403)],
        vec![lookup_never_expires(), value_body(400)],
        vec![lookup_never_expires(), value_body(307)],
        vec![
            lookup_never_expires(),
            Fault::Respond {
                status: 200,
                headers: Vec::new(),
                body: format!(r#"{{"data":{{"data":{{"password":"{VALUE}"#).into_bytes(),
            },
        ],
        vec![
            lookup_never_expires(),
            Fault::json(200, &json!({"data": {"data": VALUE}})),
        ],
        vec![
            lookup_never_expires(),
            Fault::Truncated {
                declared_len: 4096,
                body: format!(r#"{{"data":{{"data":{{"password":"{VALUE}"#).into_bytes(),
            },
        ],
        vec![
            lookup_never_expires(),
            Fault::delay(Duration::from_millis(500), value_body(200)),
        ],
        vec![Fault::json(403, &json!({"errors": [TOKEN]}))],
    ];
    for script in scripts {
        let server = FaultServer::start(script)?;
        let config = Kv2Config::new(FLAVOR, server.addr(), Kv2Auth::token(TOKEN))
            .with_timeout(Duration::from_millis(200))
            .with_max_body_bytes(64 * 1024)
            .with_retry(
                RetryConfig::attempts(2)
                    .with_delays(Duration::from_millis(5), Duration::from_millis(10)),
            );
        seen.texts.push(format!("{config:?}"));
        let provider = Kv2Provider::new(config)?;
        seen.result(
            &provider
                .read(&uri(FLAVOR, "secret/canary/app#password"))
                .await,
        );
        seen.result(&provider.read(&uri(FLAVOR, "secret/canary/app")).await);
    }
    // Login rejected, with the secret ID in the request and the server echoing it.
    let server = FaultServer::start(vec![Fault::json(400, &json!({"errors": [SECRET_ID]}))])?;
    let approle = Kv2Auth::approle("r", Some(SecretString::from(SECRET_ID.to_owned())));
    seen.texts.push(format!("{approle:?}"));
    let provider = Kv2Provider::new(config(FLAVOR, &server.addr(), approle))?;
    seen.result(&provider.read(&uri(FLAVOR, "secret/canary/app")).await);
    assert!(
        String::from_utf8_lossy(&server.requests()[0].body).contains(SECRET_ID),
        "the secret ID was sent"
    );

    // A config error mentioning a bad token header value.
    let bad = Kv2Provider::new(config(
        FLAVOR,
        &server.addr(),
        Kv2Auth::token(format!("{TOKEN}\n")),
    ))?;
    seen.result(&bad.read(&uri(FLAVOR, "secret/canary/app")).await);

    // The dyn path.
    let dynamic: Arc<dyn SecretProvider> = Arc::new(file);
    seen.result(&dynamic.read(&"file://m/json".parse()?).await);
    Ok(())
}
