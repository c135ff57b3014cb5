//! `secrets_sdk::config`: a service's configuration with nested `SecretRef` fields, loaded from
//! YAML, JSON and TOML files and resolved against files and a real OpenBao; every failure
//! reported at once with its field path; nothing printed or re-serialized holds a value;
//! `config::watch` follows a new vault version.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::sdk::{TestResult, builder, demo_files, shared_bao};
use secrets_sdk::BootstrapConfig;
use secrets_sdk::config::{self, Format, LoadError, SecretRef};
use serde::{Deserialize, Serialize};
use serde_json::json;

const FILE_CANARY: &str = "CANARY-config-file-5e21";
const VAULT_CANARY: &str = "CANARY-config-vault-b7c4";

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ServiceConfig {
    name: String,
    database: Database,
    api: Api,
    #[serde(default)]
    replicas: Vec<Replica>,
    #[serde(default)]
    extra: BTreeMap<String, SecretRef>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Database {
    host: String,
    port: u16,
    password: SecretRef,
    user: Option<SecretRef>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Api {
    token: SecretRef,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Replica {
    host: String,
    token: SecretRef,
}

const YAML: &str = "\
name: orders
database:
  host: db.internal
  port: 5432
  password: file://demo/config-canary.json#password
  user: FILE://demo/db.json#username
api:
  token: openbao+kv2://secret/app/config-canary#token
replicas:
  - host: r1
    token: openbao+kv2://secret/app/config-canary#token
  - host: r2
    token: file://demo/api-key
extra:
  kafka: openbao://secret/app/api#token
";

const JSON: &str = r#"{
  "name": "orders",
  "database": {"host": "db.internal", "port": 5432,
               "password": "file://demo/config-canary.json#password",
               "user": "FILE://demo/db.json#username"},
  "api": {"token": "openbao+kv2://secret/app/config-canary#token"},
  "replicas": [{"host": "r1", "token": "openbao+kv2://secret/app/config-canary#token"},
               {"host": "r2", "token": "file://demo/api-key"}],
  "extra": {"kafka": "openbao://secret/app/api#token"}
}"#;

const TOML: &str = r#"
name = "orders"

[database]
host = "db.internal"
port = 5432
password = "file://demo/config-canary.json#password"
user = "FILE://demo/db.json#username"

[api]
token = "openbao+kv2://secret/app/config-canary#token"

[[replicas]]
host = "r1"
token = "openbao+kv2://secret/app/config-canary#token"

[[replicas]]
host = "r2"
token = "file://demo/api-key"

[extra]
kafka = "openbao://secret/app/api#token"
"#;

fn plant(root: &Path) -> std::io::Result<()> {
    std::fs::write(
        root.join("demo/config-canary.json"),
        json!({"password": FILE_CANARY}).to_string(),
    )
}

fn text(reference: &SecretRef) -> Option<String> {
    reference
        .secret()
        .and_then(|s| s.expose_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_references_resolve_from_files_and_openbao_in_every_format() -> TestResult {
    let Some(bao) = shared_bao()? else {
        return Ok(());
    };
    bao.kv_put(
        "secret",
        "app/config-canary",
        &json!({"token": VAULT_CANARY}),
    )?;
    let files = demo_files()?;
    plant(files.path())?;
    let client = builder(files.path())
        .bootstrap(BootstrapConfig::token(bao.addr(), bao.root_token()))
        .build()?;
    let dir = tempfile::tempdir()?;
    for (name, text_of_file) in [("app.yaml", YAML), ("app.json", JSON), ("app.toml", TOML)] {
        let path = dir.path().join(name);
        std::fs::write(&path, text_of_file)?;
        let config: ServiceConfig = config::load(&client, &path).await?;
        assert_eq!(config.name, "orders");
        assert_eq!(config.database.port, 5432);
        assert_eq!(
            text(&config.database.password).as_deref(),
            Some(FILE_CANARY),
            "{name}"
        );
        let user = config.database.user.as_ref().ok_or("user")?;
        assert_eq!(text(user).as_deref(), Some("app"), "{name}");
        assert_eq!(
            text(&config.api.token).as_deref(),
            Some(VAULT_CANARY),
            "{name}"
        );
        assert_eq!(
            text(&config.replicas[0].token).as_deref(),
            Some(VAULT_CANARY)
        );
        assert_eq!(
            text(&config.replicas[1].token).as_deref(),
            Some("file-api-key")
        );
        assert_eq!(
            text(&config.extra["kafka"]).as_deref(),
            Some("bao-token-v1")
        );

        // Printing and re-serializing (to each format) show URIs, never values.
        let printed = format!(
            "{config:?}\n{config:#?}\n{}\n{}\n{}",
            serde_json::to_string(&config)?,
            serde_yaml_ng::to_string(&config)?,
            toml::to_string(&config)?,
        );
        for canary in [FILE_CANARY, VAULT_CANARY, "file-api-key", "bao-token-v1"] {
            assert!(!printed.contains(canary), "{name}: {printed}");
        }
        let back: serde_json::Value = serde_json::to_value(&config)?;
        assert_eq!(
            back["api"]["token"],
            "openbao+kv2://secret/app/config-canary#token"
        );
        assert_eq!(back["database"]["user"], "file://demo/db.json#username");
    }
    client.close();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_uri_and_a_missing_secret_are_both_reported_with_their_fields() -> TestResult {
    let Some(bao) = shared_bao()? else {
        return Ok(());
    };
    let files = demo_files()?;
    let client = builder(files.path())
        .bootstrap(BootstrapConfig::token(bao.addr(), bao.root_token()))
        .build()?;
    let yaml = format!(
        "name: orders\n\
         database:\n  host: h\n  port: 1\n  password: '{FILE_CANARY}'\n\
         api:\n  token: openbao+kv2://secret/app/absent-config#token\n\
         replicas:\n  - host: r1\n    token: file://demo/api-key\n  - host: r2\n    token: file://other/x\n"
    );
    let error = config::load_str::<ServiceConfig>(&client, &yaml, Format::Yaml)
        .await
        .err()
        .ok_or("the load fails")?;
    assert_eq!(error.code(), "CONFIG_SECRETS");
    let failures: Vec<(String, &str)> = error
        .failures()
        .iter()
        .map(|f| (f.field.clone(), f.code))
        .collect();
    assert_eq!(
        failures,
        [
            ("database.password".to_owned(), "ILLEGAL_SEGMENT"),
            ("api.token".to_owned(), "NOT_FOUND"),
            ("replicas[1].token".to_owned(), "TENANT_MOUNT_MISMATCH"),
        ]
    );
    let shown = format!("{error}\n{error:?}");
    assert!(!shown.contains(FILE_CANARY), "{shown}");
    assert!(!shown.contains("absent-config"), "no secret path: {shown}");
    assert!(
        shown.contains("3 secret references failed: database.password: ILLEGAL_SEGMENT"),
        "{shown}"
    );

    // A shape error stops the load before anything is resolved, with its field and line.
    let error = config::load_str::<ServiceConfig>(
        &client,
        &format!("name: orders\ndatabase:\n  host: h\n  port: {FILE_CANARY}\n"),
        Format::Yaml,
    )
    .await
    .err()
    .ok_or("a parse error")?;
    let LoadError::Parse { field, line, .. } = &error else {
        return Err(format!("{error:?}").into());
    };
    assert_eq!((field.as_str(), *line), ("database.port", Some(4)));
    assert!(!format!("{error} {error:?}").contains(FILE_CANARY));
    client.close();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_config_follows_a_new_vault_version() -> TestResult {
    let Some(bao) = shared_bao()? else {
        return Ok(());
    };
    bao.kv_put("secret", "app/config-watch", &json!({"token": "watch-v1"}))?;
    let files = demo_files()?;
    plant(files.path())?;
    let client = builder(files.path())
        .bootstrap(BootstrapConfig::token(bao.addr(), bao.root_token()))
        .watch_interval(Duration::from_millis(200))
        .build()?;
    let yaml = YAML.replace("app/config-canary", "app/config-watch");
    let config: ServiceConfig = config::load_str(&client, &yaml, Format::Yaml).await?;
    assert_eq!(text(&config.api.token).as_deref(), Some("watch-v1"));
    let mut watch = config::watch(&client, &config).await?;
    assert_eq!(watch.len(), 6);

    bao.kv_put("secret", "app/config-watch", &json!({"token": "watch-v2"}))?;
    let mut changed = Vec::new();
    while changed.len() < 2 {
        let field = tokio::time::timeout(Duration::from_secs(20), watch.changed())
            .await?
            .ok_or("a change")?;
        changed.push(field);
    }
    changed.sort();
    assert_eq!(changed, ["api.token", "replicas[0].token"]);
    assert_eq!(text(&config.api.token).as_deref(), Some("watch-v2"));
    assert_eq!(text(&config.replicas[0].token).as_deref(), Some("watch-v2"));
    assert_eq!(
        text(&config.database.password).as_deref(),
        Some(FILE_CANARY)
    );
    drop(watch);
    client.close();
    Ok(())
}
