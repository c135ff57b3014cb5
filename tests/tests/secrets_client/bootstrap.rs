//! The bootstrap precedence, level by level, against a real OpenBao: each level's bootstrap
//! holds the working token while every lower level holds a wrong one, so a read succeeds only
//! if the right level won. Then validation errors through files and the environment, and
//! `SecretsClient::create()` on the real process environment (in a child process).

use std::path::Path;

use crate::common::sdk::{TestResult, bao, builder, demo_files, env};
use secrets_sdk::{BootstrapConfig, BootstrapSource, SecretsClient};

const API: &str = "openbao+kv2://secret/app/api#token";

type Level<'a> = (
    &'a str,
    bool,
    bool,
    bool,
    Vec<(&'a str, String)>,
    BootstrapSource,
);

fn write_bootstrap(path: &Path, addr: &str, token: &str) -> std::io::Result<()> {
    let json = serde_json::json!({ "vault_addr": addr, "token": token });
    std::fs::write(path, json.to_string())
}

#[tokio::test]
async fn each_precedence_level_wins_over_the_ones_below() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = bao()? else { return Ok(()) };
    let dir = files.path();
    let (addr, good) = (bao.addr(), bao.root_token().to_owned());
    let bad = "wrong-token";
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{good}\n"))?;
    let explicit = dir.join("explicit.json");
    let from_env = dir.join("env.json");
    let default = dir.join("default.json");

    // (name, explicit path?, SECRETS_BOOTSTRAP_PATH?, default file?, env vars, expected)
    let levels: Vec<Level<'_>> = vec![
        (
            "explicit path",
            true,
            true,
            true,
            vec![("OPENBAO_URL", addr.clone()), ("OPENBAO_TOKEN", bad.into())],
            BootstrapSource::ExplicitPath(explicit.clone()),
        ),
        (
            "SECRETS_BOOTSTRAP_PATH",
            false,
            true,
            true,
            vec![("OPENBAO_URL", addr.clone()), ("OPENBAO_TOKEN", bad.into())],
            BootstrapSource::EnvPath(from_env.clone()),
        ),
        (
            "default path",
            false,
            false,
            true,
            vec![("OPENBAO_URL", addr.clone()), ("OPENBAO_TOKEN", bad.into())],
            BootstrapSource::DefaultPath(default.clone()),
        ),
        (
            "OPENBAO_URL",
            false,
            false,
            false,
            vec![
                ("OPENBAO_URL", addr.clone()),
                ("OPENBAO_TOKEN", good.clone()),
                ("VAULT_URL", "http://127.0.0.1:9".into()),
                ("VAULT_TOKEN", bad.into()),
            ],
            BootstrapSource::Environment("OPENBAO"),
        ),
        (
            "VAULT_URL with a token file",
            false,
            false,
            false,
            vec![
                ("VAULT_URL", addr.clone()),
                ("VAULT_TOKEN_FILE", token_file.display().to_string()),
            ],
            BootstrapSource::Environment("VAULT"),
        ),
    ];
    for (name, use_explicit, use_env_path, use_default, vars, expected) in levels {
        // The winning level holds the good token, the ones below it a wrong one.
        let mut winner_written = false;
        for (enabled, path) in [
            (use_explicit, &explicit),
            (use_env_path, &from_env),
            (use_default, &default),
        ] {
            if enabled {
                let token = if winner_written { bad } else { good.as_str() };
                write_bootstrap(path, &addr, token)?;
                winner_written = true;
            }
        }
        if !use_default {
            let _ = std::fs::remove_file(&default);
        }
        let mut vars: Vec<(&str, String)> = vars;
        if use_env_path {
            vars.push(("SECRETS_BOOTSTRAP_PATH", from_env.display().to_string()));
        }
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut b = builder(dir)
            .env_lookup(env(&pairs))
            .default_bootstrap_path(&default);
        if use_explicit {
            b = b.bootstrap_path(&explicit);
        }
        let client = b.build()?;
        assert_eq!(client.bootstrap_source(), Some(&expected), "{name}");
        let token = client.resolve(API).await;
        assert_eq!(
            token
                .map(|t| t.expose_str().map(str::to_owned))
                .ok()
                .flatten()
                .as_deref(),
            Some("bao-token-v1"),
            "{name}"
        );
    }

    // No level at all: files still work, vault URIs are NOT_CONFIGURED, and discovery says
    // what it tried.
    let _ = std::fs::remove_file(&default);
    let none = builder(dir)
        .env_lookup(env(&[]))
        .default_bootstrap_path(&default)
        .build()?;
    assert_eq!(none.bootstrap_source(), None);
    assert_eq!(
        none.resolve(API).await.err().map(|e| e.code()),
        Some("NOT_CONFIGURED")
    );
    let err = BootstrapConfig::discover_with(None, &|_| None, &default).err();
    assert_eq!(err.as_ref().map(|e| e.code()), Some("NO_BOOTSTRAP"));
    let shown = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(shown.contains(&default.display().to_string()), "{shown}");
    Ok(())
}

#[test]
fn a_named_bootstrap_that_is_missing_is_an_error_not_a_fall_through() -> TestResult {
    let files = demo_files()?;
    let missing = files.path().join("missing.json");
    let vars = [
        (
            "SECRETS_BOOTSTRAP_PATH",
            missing.to_str().unwrap_or_default(),
        ),
        ("OPENBAO_URL", "http://127.0.0.1:8200"),
        ("OPENBAO_TOKEN", "t"),
    ];
    let via_env = builder(files.path()).env_lookup(env(&vars)).build().err();
    assert_eq!(via_env.map(|e| e.code()), Some("BOOTSTRAP_IO"));
    let explicit = builder(files.path()).bootstrap_path(&missing).build().err();
    assert_eq!(explicit.map(|e| e.code()), Some("BOOTSTRAP_IO"));
    Ok(())
}

#[test]
fn every_validation_error_through_a_file() -> TestResult {
    let files = demo_files()?;
    let path = files.path().join("bootstrap.json");
    let cases: &[(&str, &str, Option<&str>)] = &[
        (
            "{\"vault_addr\": \"http://v\",\n \"token\": \"t\",,}",
            "BOOTSTRAP_PARSE",
            None,
        ),
        ("", "BOOTSTRAP_PARSE", None),
        (
            r#"{"vault_adr": "http://v", "token": "t"}"#,
            "BOOTSTRAP_INVALID",
            Some("vault_adr"),
        ),
        (r#"{"token": "t"}"#, "BOOTSTRAP_INVALID", Some("vault_addr")),
        (
            r#"{"vault_addr": "ftp://v", "token": "t"}"#,
            "BOOTSTRAP_INVALID",
            Some("vault_addr"),
        ),
        (
            r#"{"vault_addr": "http://v"}"#,
            "BOOTSTRAP_INVALID",
            Some("token"),
        ),
        (
            r#"{"vault_addr": "http://v", "auth_method": "approle", "approle_secret_id": "s"}"#,
            "BOOTSTRAP_INVALID",
            Some("approle_role_id"),
        ),
        (
            r#"{"vault_addr": "http://v", "auth_method": "approle", "approle_role_id": "r"}"#,
            "BOOTSTRAP_INVALID",
            Some("approle_secret_id"),
        ),
        (
            r#"{"vault_addr": "http://v", "auth_method": "kubernetes"}"#,
            "BOOTSTRAP_INVALID",
            Some("kubernetes_role"),
        ),
        (
            r#"{"vault_addr": "http://v", "auth_method": "kubernetes", "kubernetes_role": "r", "kubernetes_mount": ""}"#,
            "BOOTSTRAP_INVALID",
            Some("kubernetes_mount"),
        ),
        (
            r#"{"vault_addr": "http://v", "auth_method": "oidc"}"#,
            "BOOTSTRAP_INVALID",
            Some("auth_method"),
        ),
        (
            r#"{"vault_addr": "http://v", "token": "t", "skip_verify": "no"}"#,
            "BOOTSTRAP_INVALID",
            Some("skip_verify"),
        ),
    ];
    for (json, code, field) in cases {
        std::fs::write(&path, json)?;
        let err = builder(files.path()).bootstrap_path(&path).build().err();
        assert_eq!(err.as_ref().map(|e| e.code()), Some(*code), "{json}");
        match (err, field) {
            (Some(secrets_sdk::Error::BootstrapInvalid { field: got, .. }), Some(want)) => {
                assert_eq!(&got, want, "{json}");
            }
            (Some(secrets_sdk::Error::BootstrapParse { line, column, .. }), None) => {
                assert!(line >= 1, "{json} (column {column})");
            }
            (other, _) => panic!("{json}: {other:?}"),
        }
    }
    // Line and column point at the error.
    std::fs::write(
        &path,
        "{\n  \"vault_addr\": \"http://v\",\n  \"token\": \"t\",,\n}",
    )?;
    let err = BootstrapConfig::from_file(&path).err();
    assert!(
        matches!(
            err,
            Some(secrets_sdk::Error::BootstrapParse {
                line: 3,
                column: 16,
                ..
            })
        ),
        "{err:?}"
    );
    Ok(())
}

/// The environment level is read by the one reader (`Kv2Config::from_lookup`): its errors are
/// `CONFIG` naming the variable, as `VaultClient`'s are.
#[test]
fn environment_validation_names_the_variable() -> TestResult {
    let files = demo_files()?;
    let missing = files.path().join("missing-secret-id");
    let missing = missing.display().to_string();
    for (vars, setting) in [
        (
            vec![
                ("OPENBAO_URL", "http://v"),
                ("OPENBAO_AUTH_METHOD", "approle"),
            ],
            "OPENBAO_ROLE_ID",
        ),
        (vec![("VAULT_URL", "http://v")], "VAULT_TOKEN"),
        (
            vec![("OPENBAO_URL", "http://v"), ("OPENBAO_AUTH_METHOD", "ldap")],
            "OPENBAO_AUTH_METHOD",
        ),
        (
            vec![
                ("OPENBAO_URL", "http://v"),
                ("OPENBAO_AUTH_METHOD", "approle"),
                ("OPENBAO_ROLE_ID", "r"),
                ("OPENBAO_SECRET_ID_FILE", missing.as_str()),
            ],
            "OPENBAO_SECRET_ID_FILE",
        ),
        (
            vec![
                ("VAULT_URL", "http://v"),
                ("VAULT_TOKEN", "t"),
                ("VAULT_TIMEOUT", "2s"),
            ],
            "VAULT_TIMEOUT",
        ),
        (vec![("BAO_ADDR", "http://v")], "OPENBAO_TOKEN"),
    ] {
        let err = builder(files.path())
            .env_lookup(env(&vars))
            .default_bootstrap_path(files.path().join("none.json"))
            .build()
            .err();
        assert_eq!(
            err.as_ref().map(|e| (e.code(), e.setting())),
            Some(("CONFIG", Some(setting))),
            "{vars:?}: {err:?}"
        );
    }
    Ok(())
}

/// `OPENBAO_SECRET_ID_FILE` was `BOOTSTRAP_INVALID` at the environment level: the bootstrap
/// had its own reader, which knew no secret-ID file.
#[test]
fn an_approle_secret_id_file_at_the_environment_level() -> TestResult {
    let files = demo_files()?;
    let file = files.path().join("secret-id");
    std::fs::write(&file, "not-a-real-secret-id\n")?;
    let path = file.display().to_string();
    for prefix in ["OPENBAO", "VAULT"] {
        let names =
            ["URL", "AUTH_METHOD", "ROLE_ID", "SECRET_ID_FILE"].map(|n| format!("{prefix}_{n}"));
        let vars = [
            (names[0].as_str(), "http://127.0.0.1:8200"),
            (names[1].as_str(), "approle"),
            (names[2].as_str(), "role"),
            (names[3].as_str(), path.as_str()),
        ];
        let client = builder(files.path())
            .env_lookup(env(&vars))
            .default_bootstrap_path(files.path().join("none.json"))
            .build()?;
        let provider = if prefix == "VAULT" {
            secrets_sdk::uri::Provider::HashiCorp
        } else {
            secrets_sdk::uri::Provider::OpenBao
        };
        let config = client.kv2_config(provider).ok_or("no KV v2 provider")?;
        assert!(
            matches!(
                &config.auth,
                secrets_sdk::providers::Kv2Auth::AppRole { secret_id: Some(_), role_id, .. } if role_id == "role"
            ),
            "{prefix}"
        );
    }
    Ok(())
}

#[test]
fn allowed_mounts_are_required() -> TestResult {
    let files = demo_files()?;
    let bare = || SecretsClient::builder().file_root(files.path());
    for (vars, setting) in [
        (vec![], "SECRETS_ALLOWED_MOUNTS"),
        (
            vec![("SECRETS_ALLOWED_MOUNTS", " , ")],
            "SECRETS_ALLOWED_MOUNTS",
        ),
    ] {
        let err = bare().env_lookup(env(&vars)).build().err();
        match err {
            Some(secrets_sdk::Error::Config { setting: got, .. }) => assert_eq!(got, setting),
            other => panic!("{vars:?}: {other:?}"),
        }
    }
    let client = bare()
        .env_lookup(env(&[("SECRETS_ALLOWED_MOUNTS", "demo")]))
        .default_bootstrap_path(files.path().join("none.json"))
        .build()?;
    assert!(client.resolve_file_sync("file://demo/api-key").is_ok());
    let err = client.resolve_file_sync("file://secret/x").err();
    assert_eq!(err.map(|e| e.code()), Some("TENANT_MOUNT_MISMATCH"));
    assert!(bare().allow_any_mount().build().is_ok());
    Ok(())
}

const CHILD: &str = "SECRETS_SDK_TEST_CREATE_CHILD";

/// The libtest name of [`create_child`]: its module path without the crate's name.
fn child_test_name() -> String {
    let module = module_path!();
    let inner = module.split_once("::").map_or("", |(_, rest)| rest);
    if inner.is_empty() {
        "create_child".to_owned()
    } else {
        format!("{inner}::create_child")
    }
}

/// `SecretsClient::create()` reads the real process environment. Setting process variables
/// in a test would race with other tests, so a child process (this test binary, filtered to
/// `create_child`) runs with them.
#[test]
fn create_reads_the_process_environment() -> TestResult {
    let files = demo_files()?;
    let Some(bao) = bao()? else { return Ok(()) };
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command
        .args([
            "--exact",
            &child_test_name(),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("SECRETS_ALLOWED_MOUNTS", "demo,secret")
        .env("FILE_MOUNT_PATH", files.path())
        .env("OPENBAO_URL", bao.addr())
        .env("OPENBAO_TOKEN", bao.root_token());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if (key.starts_with("VAULT_") || key == "SECRETS_BOOTSTRAP_PATH" || key == "OPENBAO_ADDR")
            && key != CHILD
        {
            command.env_remove(&key);
        }
    }
    let output = command.output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("create-child-ok"), "{stdout}");
    Ok(())
}

#[test]
fn create_child() -> TestResult {
    if std::env::var_os(CHILD).is_none() {
        return Ok(());
    }
    let client = SecretsClient::create()?;
    assert_eq!(
        client.bootstrap_source(),
        Some(&BootstrapSource::Environment("OPENBAO"))
    );
    let password = client.resolve_file_sync("file://demo/db.json#password")?;
    assert_eq!(password.expose_str(), Some("file-password"));
    let token = client.resolve_blocking(API)?;
    assert_eq!(token.expose_str(), Some("bao-token-v1"));
    println!("create-child-ok");
    Ok(())
}
