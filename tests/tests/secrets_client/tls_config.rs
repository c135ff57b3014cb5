//! The environment's TLS and login settings reach `SecretsClient`, against real OpenBao
//! servers: `VAULT_VERIFY_SSL=<ca>` and `VAULT_CACERT` against `bao server -dev-tls`, a client
//! certificate against a listener that requires one, AppRole with a secret-ID file, and the
//! rule that turns verification off only in development environments. Before one reader
//! served every client, `SecretsClient` read none of these (`TLS` errors, unreachable mTLS
//! servers, `BOOTSTRAP_INVALID` for `OPENBAO_SECRET_ID_FILE`).

use std::path::Path;

use crate::common::sdk::{TestResult, builder, demo_files, env};
use secrets_sdk::SecretsClient;
use secrets_test_support::OpenBaoServer;
use serde_json::json;

const OPENBAO_API: &str = "openbao+kv2://secret/app/api#token";
const VAULT_API: &str = "hashicorp+kv2://secret/app/api#token";

/// The server, or `None` when `bao` is missing: then `openbao_or_skip` applies the skip
/// policy (a SKIP line locally, a failure under `CI=true`).
fn started(server: Result<OpenBaoServer, secrets_test_support::Error>) -> Option<OpenBaoServer> {
    match server {
        Ok(server) => Some(server),
        Err(secrets_test_support::Error::ToolMissing { .. }) => {
            secrets_test_support::openbao_or_skip().map(|_| panic!("bao was missing, then found"))
        }
        Err(e) => panic!("OpenBao did not start: {e}"),
    }
}

fn with_secret(bao: OpenBaoServer) -> Result<OpenBaoServer, secrets_test_support::Error> {
    bao.kv_put("secret", "app/api", &json!({"token": "over-tls"}))?;
    Ok(bao)
}

/// A client from these variables only (no bootstrap file), files under `root`.
fn from_vars(root: &Path, vars: &[(&str, &str)]) -> Result<SecretsClient, secrets_sdk::Error> {
    builder(root)
        .env_lookup(env(vars))
        .default_bootstrap_path(root.join("no-bootstrap.json"))
        .build()
}

/// A client from a token bootstrap file for `addr`, tuned by these variables.
fn from_file(
    root: &Path,
    addr: &str,
    token: &str,
    vars: &[(&str, &str)],
) -> Result<SecretsClient, Box<dyn std::error::Error>> {
    let path = root.join("bootstrap.json");
    std::fs::write(
        &path,
        json!({ "vault_addr": addr, "token": token }).to_string(),
    )?;
    Ok(builder(root)
        .env_lookup(env(vars))
        .bootstrap_path(&path)
        .build()?)
}

async fn token(client: &SecretsClient, uri: &str) -> Result<String, secrets_sdk::Error> {
    let secret = client.resolve(uri).await?;
    Ok(secret.expose_str().unwrap_or_default().to_owned())
}

async fn code(client: &SecretsClient, uri: &str) -> Option<&'static str> {
    client.resolve(uri).await.err().map(|e| e.code())
}

#[tokio::test]
async fn verify_ssl_path_and_cacert_against_dev_tls() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = started(OpenBaoServer::start_tls().and_then(with_secret)) else {
        return Ok(());
    };
    let root = files.path();
    let ca = bao.ca_cert_path().ok_or("TLS server without a CA")?;
    let ca = ca.to_str().ok_or("CA path is not UTF-8")?;
    let (addr, root_token) = (bao.addr(), bao.root_token());

    // Without a CA the server's certificate is unknown: the settings below are what fix it.
    let untrusted = from_vars(root, &[("VAULT_URL", &addr), ("VAULT_TOKEN", root_token)])?;
    assert_eq!(code(&untrusted, VAULT_API).await, Some("TLS"));

    for (name, tls) in [("VAULT_VERIFY_SSL", ca), ("VAULT_CACERT", ca)] {
        // The environment level, each flavor.
        let vault = from_vars(
            root,
            &[
                ("VAULT_URL", &addr),
                ("VAULT_TOKEN", root_token),
                (name, tls),
            ],
        )?;
        assert_eq!(token(&vault, VAULT_API).await?, "over-tls", "{name}");
        let openbao = from_vars(
            root,
            &[
                ("OPENBAO_URL", &addr),
                ("OPENBAO_TOKEN", root_token),
                (name, tls),
            ],
        )?;
        assert_eq!(token(&openbao, OPENBAO_API).await?, "over-tls", "{name}");
        // A bootstrap file gives address and token; the environment's CA applies to it.
        let file = from_file(root, &addr, root_token, &[(name, tls)])?;
        assert_eq!(token(&file, OPENBAO_API).await?, "over-tls", "{name}");
    }
    let own_prefix = from_vars(
        root,
        &[
            ("OPENBAO_URL", &addr),
            ("OPENBAO_TOKEN", root_token),
            ("OPENBAO_CACERT", ca),
        ],
    )?;
    assert_eq!(token(&own_prefix, OPENBAO_API).await?, "over-tls");
    Ok(())
}

#[tokio::test]
async fn a_client_certificate_against_a_listener_that_requires_one() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = started(OpenBaoServer::start_mtls().and_then(with_secret)) else {
        return Ok(());
    };
    let root = files.path();
    let text = |p: Option<std::path::PathBuf>| -> Result<String, &'static str> {
        p.and_then(|p| p.to_str().map(str::to_owned))
            .ok_or("no such file")
    };
    let (ca, cert, key) = (
        text(bao.ca_cert_path())?,
        text(bao.client_cert_path())?,
        text(bao.client_key_path())?,
    );
    let (addr, root_token) = (bao.addr(), bao.root_token());

    let mtls = from_vars(
        root,
        &[
            ("VAULT_URL", &addr),
            ("VAULT_TOKEN", root_token),
            ("VAULT_CACERT", &ca),
            ("VAULT_CLIENT_CERT", &cert),
            ("VAULT_CLIENT_KEY", &key),
        ],
    )?;
    assert_eq!(token(&mtls, VAULT_API).await?, "over-tls");
    // A bootstrap file with the environment's client certificate.
    let file = from_file(
        root,
        &addr,
        root_token,
        &[
            ("OPENBAO_CACERT", &ca),
            ("OPENBAO_CLIENT_CERT", &cert),
            ("OPENBAO_CLIENT_KEY", &key),
        ],
    )?;
    assert_eq!(token(&file, OPENBAO_API).await?, "over-tls");

    // The listener really requires it: the same settings without the certificate fail, and
    // so does a certificate from a CA the server does not trust.
    let without = from_vars(
        root,
        &[
            ("VAULT_URL", &addr),
            ("VAULT_TOKEN", root_token),
            ("VAULT_CACERT", &ca),
        ],
    )?;
    let refused = without.resolve(VAULT_API).await.err();
    assert!(
        matches!(
            refused.as_ref().map(|e| e.code()),
            Some("TLS" | "UNAVAILABLE")
        ),
        "{refused:?}"
    );
    let rogue = root.join("rogue");
    OpenBaoServer::write_test_pki(&rogue)?;
    let rogue_cert = rogue.join("client-cert.pem").display().to_string();
    let rogue_key = rogue.join("client-key.pem").display().to_string();
    let untrusted = from_vars(
        root,
        &[
            ("VAULT_URL", &addr),
            ("VAULT_TOKEN", root_token),
            ("VAULT_CACERT", &ca),
            ("VAULT_CLIENT_CERT", &rogue_cert),
            ("VAULT_CLIENT_KEY", &rogue_key),
        ],
    )?;
    let refused = untrusted.resolve(VAULT_API).await.err();
    assert!(
        matches!(
            refused.as_ref().map(|e| e.code()),
            Some("TLS" | "UNAVAILABLE")
        ),
        "{refused:?}"
    );
    Ok(())
}

#[tokio::test]
async fn approle_with_a_secret_id_file() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = started(OpenBaoServer::start().and_then(with_secret)) else {
        return Ok(());
    };
    let root = files.path();
    bao.put_policy(
        "read-app",
        r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
    )?;
    let addr = bao.addr();
    for prefix in ["OPENBAO", "VAULT"] {
        let creds = bao.setup_approle(&format!("app-{prefix}"), &["read-app"])?;
        let secret_id_file = root.join(format!("{prefix}-secret-id"));
        std::fs::write(&secret_id_file, format!("{}\n", creds.secret_id))?;
        let secret_id_file = secret_id_file.display().to_string();
        let names =
            ["URL", "AUTH_METHOD", "ROLE_ID", "SECRET_ID_FILE"].map(|n| format!("{prefix}_{n}"));
        let client = from_vars(
            root,
            &[
                (&names[0], &addr),
                (&names[1], "approle"),
                (&names[2], &creds.role_id),
                (&names[3], &secret_id_file),
            ],
        )?;
        let uri = if prefix == "VAULT" {
            VAULT_API
        } else {
            OPENBAO_API
        };
        assert_eq!(token(&client, uri).await?, "over-tls", "{prefix}");
        // The secret ID never shows.
        let shown = format!(
            "{client:?} {:?}",
            client.kv2_config(secrets_sdk::uri::Provider::OpenBao)
        );
        assert!(!shown.contains(&creds.secret_id), "{prefix}");
    }
    Ok(())
}

#[tokio::test]
async fn skip_verify_only_in_development_environments() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = started(OpenBaoServer::start_tls().and_then(with_secret)) else {
        return Ok(());
    };
    let root = files.path();
    let (addr, root_token) = (bao.addr(), bao.root_token());
    let vars = |extra: &[(&'static str, &'static str)]| {
        let mut vars = vec![
            ("VAULT_URL", addr.clone()),
            ("VAULT_TOKEN", root_token.to_owned()),
            ("VAULT_VERIFY_SSL", "false".to_owned()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        vars
    };
    let build = |vars: Vec<(&str, String)>| {
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        from_vars(root, &pairs)
    };

    let mut refused: Vec<&[(&str, &str)]> = vec![
        &[("ENVIRONMENT", "prd")],
        &[("ENVIRONMENT", "live")],
        &[("ENVIRONMENT", "staging")],
        &[("ENVIRONMENT", "production")],
        &[("ENVIRONMENT", "prd"), ("SECRETS_ALLOW_INSECURE_TLS", "no")],
    ];
    if std::env::var_os("ENVIRONMENT").is_none() {
        // Unset counts as production.
        refused.push(&[]);
    }
    for extra in refused {
        let err = build(vars(extra)).err();
        assert_eq!(
            err.as_ref().map(|e| (e.code(), e.setting())),
            Some(("CONFIG", Some("VAULT_VERIFY_SSL"))),
            "{extra:?}: {err:?}"
        );
    }
    let typo = build(vars(&[("SECRETS_ALLOW_INSECURE_TLS", "yes!")])).err();
    assert_eq!(
        typo.as_ref().and_then(secrets_sdk::Error::setting),
        Some("SECRETS_ALLOW_INSECURE_TLS")
    );
    // A bootstrap file's skip_verify follows the same rule.
    let path = root.join("skip.json");
    std::fs::write(
        &path,
        json!({ "vault_addr": addr, "token": root_token, "skip_verify": true }).to_string(),
    )?;
    let err = builder(root)
        .env_lookup(env(&[("ENVIRONMENT", "staging")]))
        .bootstrap_path(&path)
        .build()
        .err();
    assert_eq!(err.map(|e| e.code()), Some("BOOTSTRAP_INVALID"));

    // Accepted where it may be used, and then it really skips verification.
    for extra in [
        &[("ENVIRONMENT", "dev")][..],
        &[("ENVIRONMENT", "Development")],
        &[("ENVIRONMENT", "test")],
        &[("ENVIRONMENT", "local")],
        &[
            ("ENVIRONMENT", "prd"),
            ("SECRETS_ALLOW_INSECURE_TLS", "true"),
        ],
    ] {
        let client = build(vars(extra))?;
        assert_eq!(token(&client, VAULT_API).await?, "over-tls", "{extra:?}");
    }
    let client = builder(root)
        .env_lookup(env(&[("ENVIRONMENT", "local")]))
        .bootstrap_path(&path)
        .build()?;
    assert_eq!(token(&client, OPENBAO_API).await?, "over-tls");
    Ok(())
}
