//! One configuration for every client: a matrix of `VAULT_*`/`OPENBAO_*` settings runs through
//! `Kv2Config::from_lookup` (+ `Kv2Provider::new`), `VaultClient::builder().env_lookup(..)` and
//! `SecretsClient::builder().env_lookup(..)` (the environment level, and a bootstrap file
//! tuned by the environment), and every entry point must end with the same KV v2 settings, or
//! the same `CONFIG` error naming the same variable. Before, `SecretsClient` built its
//! settings from the bootstrap fields alone, so `VAULT_TIMEOUT`, `VAULT_VERIFY_SSL=<ca>`,
//! client certificates, retries and body caps reached two clients out of three.
//!
//! Also: `cache_ttl`/`stale_if_error`/`resolve_deadline` extremes (`Duration::MAX`) are
//! clamped at `build()` instead of panicking at the first insert.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::sdk::{TestResult, env};
use secrets_sdk::SecretsClient;
use secrets_sdk::providers::{
    CaBundleMode, ClientCert, Kv2Auth, Kv2Config, Kv2Flavor, Kv2Provider, ProviderError,
    RetryConfig,
};
use secrets_sdk::uri::{AllowedMounts, Provider};
use secrets_test_support::OpenBaoServer;

/// The fields that matter, comparable.
#[derive(Debug, Clone, PartialEq)]
struct Summary {
    address: String,
    namespace: Option<String>,
    timeout: Duration,
    retry: RetryConfig,
    ca_bundle: Option<PathBuf>,
    ca_bundle_mode: CaBundleMode,
    client_cert: Option<ClientCert>,
    skip_verify: bool,
    max_body_bytes: usize,
    auth: String,
}

impl Summary {
    fn of(config: &Kv2Config) -> Self {
        assert_no_canary(&format!("{config:?}"));
        let auth = match &config.auth {
            Kv2Auth::Token { .. } => "token".to_owned(),
            Kv2Auth::TokenFile { path } => format!("token_file {}", path.display()),
            Kv2Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => format!(
                "approle {mount} {role_id} secret_id={}",
                secret_id.is_some()
            ),
            Kv2Auth::Kubernetes {
                mount,
                role,
                jwt_path,
            } => format!("kubernetes {mount} {role} {}", jwt_path.display()),
            other => format!("{other:?}"),
        };
        Self {
            address: config.address.clone(),
            namespace: config.namespace.clone(),
            timeout: config.timeout,
            retry: config.retry,
            ca_bundle: config.ca_bundle.clone(),
            ca_bundle_mode: config.ca_bundle_mode,
            client_cert: config.client_cert.clone(),
            skip_verify: config.skip_verify,
            max_body_bytes: config.max_body_bytes,
            auth,
        }
    }

    /// Everything but address and auth: what a bootstrap file's tuning must share.
    fn tuning(&self) -> Self {
        Self {
            address: String::new(),
            auth: String::new(),
            ..self.clone()
        }
    }
}

/// What an entry point made of a row: the settings, or `CONFIG` naming a variable.
type Outcome = Result<Summary, String>;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Result<Self, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        OpenBaoServer::write_test_pki(&dir.path().join("pki"))?;
        std::fs::write(dir.path().join("secret-id"), "matrix-secret-id\n")?;
        std::fs::write(dir.path().join("token"), "matrix-token\n")?;
        Ok(Self { dir })
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }
}

fn setting_of(error: &ProviderError) -> String {
    assert_no_canary(&format!("{error} {error:?}"));
    match error {
        ProviderError::Config { setting, .. } => setting.to_string(),
        other => format!("not CONFIG: {}", other.code()),
    }
}

/// The canary values the rows plant: no error may show them.
const CANARIES: [&str; 3] = ["matrix-canary", "matrix-secret-id", "matrix-token"];

fn assert_no_canary(shown: &str) {
    for canary in CANARIES {
        assert!(!shown.contains(canary), "{shown}");
    }
}

fn sdk_setting(error: &secrets_sdk::Error) -> String {
    assert_no_canary(&format!("{error} {error:?}"));
    match (error.code(), error.setting()) {
        ("CONFIG", Some(setting)) => setting.to_owned(),
        (code, _) => format!("not CONFIG: {code} ({error})"),
    }
}

fn via_reader(flavor: Kv2Flavor, vars: &[(&str, &str)]) -> Outcome {
    let lookup = env(vars);
    let config = Kv2Config::from_lookup(flavor, &lookup).map_err(|e| setting_of(&e))?;
    let provider = Kv2Provider::new(config).map_err(|e| setting_of(&e))?;
    Ok(Summary::of(provider.config()))
}

fn via_secrets_client(fx: &Fixture, provider: Provider, vars: &[(&str, &str)]) -> Outcome {
    let mut vars = vars.to_vec();
    vars.push(("SECRETS_ALLOWED_MOUNTS", "secret"));
    let client = SecretsClient::builder()
        .env_lookup(env(&vars))
        .file_root(fx.root())
        .default_bootstrap_path(fx.root().join("no-bootstrap.json"))
        .build()
        .map_err(|e| sdk_setting(&e))?;
    client
        .kv2_config(provider)
        .map(Summary::of)
        .ok_or_else(|| "no KV v2 provider".to_owned())
}

/// A bootstrap file holding `addr` and a token; the row's variables minus address and login.
fn via_bootstrap_file(fx: &Fixture, addr: &str, vars: &[(&str, &str)]) -> Outcome {
    let path = fx.root().join("bootstrap.json");
    let json = serde_json::json!({ "vault_addr": addr, "token": "file-token" });
    std::fs::write(&path, json.to_string()).map_err(|e| e.to_string())?;
    let login = ["_URL", "_ADDR", "_TOKEN", "_TOKEN_FILE", "_AUTH_METHOD"];
    let mut tuning: Vec<(&str, &str)> = vars
        .iter()
        .filter(|(k, _)| !login.iter().any(|l| k.ends_with(l)))
        .copied()
        .collect();
    tuning.push(("SECRETS_ALLOWED_MOUNTS", "secret"));
    let client = SecretsClient::builder()
        .env_lookup(env(&tuning))
        .file_root(fx.root())
        .bootstrap_path(&path)
        .build()
        .map_err(|e| sdk_setting(&e))?;
    client
        .kv2_config(Provider::OpenBao)
        .map(Summary::of)
        .ok_or_else(|| "no KV v2 provider".to_owned())
}

fn via_vault_client(vars: &[(&str, &str)]) -> Outcome {
    let mut vars = vars.to_vec();
    vars.extend([
        ("TENANT_ID", "t1"),
        ("TENANT_ALLOWED_MOUNTS", "secret"),
        ("SECRET_TENANT_SALT", "matrix-salt-0123456789"),
        // A PDP address (no I/O at build), so rows may name any ENVIRONMENT.
        ("AUTHZEN_PDP_URL", "http://127.0.0.1:3592"),
    ]);
    let client = secrets_sdk::VaultClient::builder()
        .env_lookup(env(&vars))
        .build()
        .map_err(|e| sdk_setting(&e))?;
    client
        .kv2_config(Provider::HashiCorp)
        .map(Summary::of)
        .ok_or_else(|| "no KV v2 provider".to_owned())
}

/// The rows: `VAULT_*` settings, each valid for every client.
fn vault_rows(fx: &Fixture) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let base = || {
        vec![
            ("VAULT_URL", "https://vault.example:8200".to_owned()),
            ("VAULT_TOKEN", "s.matrix-canary".to_owned()),
        ]
    };
    let with = |extra: Vec<(&'static str, String)>| {
        let mut vars = base();
        vars.extend(extra);
        vars
    };
    vec![
        ("defaults", base()),
        (
            "timeout, retries, body cap, namespace",
            with(vec![
                ("VAULT_TIMEOUT", "2".into()),
                ("VAULT_RETRY_ATTEMPTS", "5".into()),
                ("VAULT_RETRY_BASE_DELAY_MS", "10".into()),
                ("VAULT_RETRY_MAX_DELAY_MS", "500".into()),
                ("VAULT_MAX_BODY_BYTES", "65536".into()),
                ("VAULT_NAMESPACE", "team-a".into()),
            ]),
        ),
        (
            "VAULT_VERIFY_SSL=<ca path>",
            with(vec![("VAULT_VERIFY_SSL", fx.path("pki/vault-ca.pem"))]),
        ),
        (
            "VAULT_CACERT appended, client certificate",
            with(vec![
                ("VAULT_CACERT", fx.path("pki/vault-ca.pem")),
                ("VAULT_CACERT_MODE", "append".into()),
                ("VAULT_CLIENT_CERT", fx.path("pki/client-cert.pem")),
                ("VAULT_CLIENT_KEY", fx.path("pki/client-key.pem")),
                ("VAULT_TIMEOUT", "0.5".into()),
            ]),
        ),
        (
            "VAULT_VERIFY_SSL=false in dev",
            with(vec![
                ("VAULT_VERIFY_SSL", "false".into()),
                ("ENVIRONMENT", "dev".into()),
            ]),
        ),
        (
            "VAULT_VERIFY_SSL=false allowed explicitly",
            with(vec![
                ("VAULT_VERIFY_SSL", "false".into()),
                ("ENVIRONMENT", "prd".into()),
                ("SECRETS_ALLOW_INSECURE_TLS", "true".into()),
            ]),
        ),
        (
            "empty values are unset",
            with(vec![
                ("VAULT_TIMEOUT", String::new()),
                ("VAULT_NAMESPACE", "  ".into()),
            ]),
        ),
        (
            "token file",
            vec![
                ("VAULT_ADDR", "https://vault.example".into()),
                ("VAULT_TOKEN_FILE", fx.path("token")),
            ],
        ),
        (
            "AppRole with a secret-ID file",
            vec![
                ("VAULT_URL", "https://vault.example".into()),
                ("VAULT_AUTH_METHOD", "approle".into()),
                ("VAULT_ROLE_ID", "role-1".into()),
                ("VAULT_SECRET_ID_FILE", fx.path("secret-id")),
                ("VAULT_AUTH_MOUNT", "approle-ci".into()),
            ],
        ),
        (
            "Kubernetes",
            vec![
                ("VAULT_URL", "https://vault.example".into()),
                ("VAULT_AUTH_METHOD", "kubernetes".into()),
                ("VAULT_KUBERNETES_ROLE", "payments".into()),
                ("VAULT_KUBERNETES_JWT_FILE", fx.path("token")),
                ("VAULT_AUTH_MOUNT", "k8s".into()),
            ],
        ),
    ]
}

/// Rows every client must refuse, with the variable named.
fn vault_error_rows(fx: &Fixture) -> Vec<(Vec<(&'static str, String)>, &'static str)> {
    let with = |extra: Vec<(&'static str, String)>| {
        let mut vars = vec![
            ("VAULT_URL", "https://vault.example:8200".to_owned()),
            ("VAULT_TOKEN", "s.matrix-canary".to_owned()),
        ];
        vars.extend(extra);
        vars
    };
    vec![
        (with(vec![("VAULT_TIMEOUT", "2s".into())]), "VAULT_TIMEOUT"),
        (
            with(vec![
                ("VAULT_NAMESPACE", "ns".into()),
                ("VAULT_RETRY_ATTEMPTS", "matrix-canary".into()),
            ]),
            "VAULT_RETRY_ATTEMPTS",
        ),
        (
            with(vec![("VAULT_CACERT_MODE", "matrix-canary".into())]),
            "VAULT_CACERT_MODE",
        ),
        (
            with(vec![("VAULT_TIMEOUT", "1e30".into())]),
            "VAULT_TIMEOUT",
        ),
        (
            with(vec![("VAULT_VERIFY_SSL", "flase".into())]),
            "VAULT_VERIFY_SSL",
        ),
        (
            with(vec![
                ("VAULT_VERIFY_SSL", "false".into()),
                ("ENVIRONMENT", "prd".into()),
            ]),
            "VAULT_VERIFY_SSL",
        ),
        (
            with(vec![
                ("VAULT_VERIFY_SSL", "false".into()),
                ("ENVIRONMENT", "staging".into()),
            ]),
            "VAULT_VERIFY_SSL",
        ),
        (
            with(vec![
                ("VAULT_VERIFY_SSL", "false".into()),
                ("ENVIRONMENT", "live".into()),
            ]),
            "VAULT_VERIFY_SSL",
        ),
        (
            with(vec![
                ("VAULT_VERIFY_SSL", "false".into()),
                ("VAULT_CACERT", fx.path("pki/vault-ca.pem")),
                ("ENVIRONMENT", "dev".into()),
            ]),
            "VAULT_VERIFY_SSL",
        ),
        (
            with(vec![("VAULT_CACERT", fx.path("pki/missing.pem"))]),
            "VAULT_CACERT",
        ),
        (
            with(vec![("VAULT_CLIENT_CERT", fx.path("pki/client-cert.pem"))]),
            "VAULT_CLIENT_CERT",
        ),
        (
            with(vec![("VAULT_RETRY_ATTEMPTS", "0".into())]),
            "VAULT_RETRY_ATTEMPTS",
        ),
        (
            with(vec![("VAULT_MAX_BODY_BYTES", "-1".into())]),
            "VAULT_MAX_BODY_BYTES",
        ),
        (
            vec![
                ("VAULT_URL", "https://vault.example".into()),
                ("VAULT_AUTH_METHOD", "approle".into()),
                ("VAULT_ROLE_ID", "r".into()),
                ("VAULT_SECRET_ID_FILE", fx.path("missing-secret-id")),
            ],
            "VAULT_SECRET_ID_FILE",
        ),
    ]
}

fn pairs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn every_entry_point_reads_the_same_vault_settings() -> TestResult {
    let fx = Fixture::new()?;
    for (name, vars) in vault_rows(&fx) {
        let vars = pairs(&vars);
        let reader = via_reader(Kv2Flavor::HashiCorp, &vars);
        assert!(reader.is_ok(), "{name}: {reader:?}");
        assert_eq!(via_vault_client(&vars), reader, "VaultClient: {name}");
        assert_eq!(
            via_secrets_client(&fx, Provider::HashiCorp, &vars),
            reader,
            "SecretsClient: {name}"
        );
    }
    Ok(())
}

#[test]
fn every_entry_point_refuses_the_same_mistakes_naming_the_variable() -> TestResult {
    let fx = Fixture::new()?;
    for (vars, setting) in vault_error_rows(&fx) {
        let vars = pairs(&vars);
        let want: Outcome = Err(setting.to_owned());
        assert_eq!(
            via_reader(Kv2Flavor::HashiCorp, &vars),
            want,
            "reader: {vars:?}"
        );
        assert_eq!(via_vault_client(&vars), want, "VaultClient: {vars:?}");
        assert_eq!(
            via_secrets_client(&fx, Provider::HashiCorp, &vars),
            want,
            "SecretsClient: {vars:?}"
        );
    }
    Ok(())
}

/// `SecretsClient` and the reader agree on every row without `VaultClient` (which needs the
/// `vault` feature), for both prefixes.
#[test]
fn secrets_client_reads_what_the_reader_reads() -> TestResult {
    let fx = Fixture::new()?;
    for (name, vars) in vault_rows(&fx) {
        let vault = pairs(&vars);
        let reader = via_reader(Kv2Flavor::HashiCorp, &vault);
        let summary = reader.clone().map_err(|e| format!("{name}: {e}"))?;
        assert_eq!(
            via_secrets_client(&fx, Provider::HashiCorp, &vault),
            reader,
            "{name}"
        );
        // A bootstrap file's address and token get the same tuning.
        if summary.auth == "token" {
            let file = via_bootstrap_file(&fx, &summary.address, &vault)?;
            assert_eq!(file.tuning(), summary.tuning(), "bootstrap file: {name}");
            assert_eq!(file.address, summary.address, "{name}");
        }
        // The same row with OPENBAO_ names.
        let renamed: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.replacen("VAULT_", "OPENBAO_", 1), v.clone()))
            .collect();
        let openbao: Vec<(&str, &str)> = renamed
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let reader = via_reader(Kv2Flavor::OpenBao, &openbao);
        assert!(reader.is_ok(), "{name}: {reader:?}");
        assert_eq!(
            via_secrets_client(&fx, Provider::OpenBao, &openbao),
            reader,
            "OPENBAO {name}"
        );
    }
    for (vars, setting) in vault_error_rows(&fx) {
        let vars = pairs(&vars);
        let want: Outcome = Err(setting.to_owned());
        assert_eq!(via_reader(Kv2Flavor::HashiCorp, &vars), want, "{vars:?}");
        assert_eq!(
            via_secrets_client(&fx, Provider::HashiCorp, &vars),
            want,
            "{vars:?}"
        );
    }
    Ok(())
}

/// Builder settings beat the environment; a bootstrap file's own fields beat its tuning.
#[test]
fn explicit_settings_win_over_the_environment() -> TestResult {
    let fx = Fixture::new()?;
    let vars = [
        ("VAULT_URL", "https://vault.example"),
        ("VAULT_TOKEN", "t"),
        ("VAULT_TIMEOUT", "2"),
        ("VAULT_RETRY_ATTEMPTS", "9"),
        ("SECRETS_ALLOWED_MOUNTS", "secret"),
    ];
    let client = SecretsClient::builder()
        .env_lookup(env(&vars))
        .file_root(fx.root())
        .default_bootstrap_path(fx.root().join("none.json"))
        .vault_timeout(Duration::from_secs(7))
        .vault_retry(RetryConfig::attempts(1))
        .build()?;
    let config = client
        .kv2_config(Provider::HashiCorp)
        .ok_or("no provider")?;
    assert_eq!(
        (config.timeout, config.retry.attempts),
        (Duration::from_secs(7), 1)
    );
    // Duration::MAX for the vault timeout is clamped, not an overflow later.
    let client = SecretsClient::builder()
        .env_lookup(env(&vars))
        .file_root(fx.root())
        .default_bootstrap_path(fx.root().join("none.json"))
        .vault_timeout(Duration::MAX)
        .build()?;
    let config = client
        .kv2_config(Provider::HashiCorp)
        .ok_or("no provider")?;
    assert_eq!(config.timeout, Kv2Config::MAX_TIMEOUT);

    let path = fx.root().join("ns.json");
    std::fs::write(
        &path,
        r#"{"vault_addr": "https://bao.example", "token": "t", "namespace": "file-ns"}"#,
    )?;
    let client = SecretsClient::builder()
        .env_lookup(env(&[
            ("OPENBAO_NAMESPACE", "env-ns"),
            ("VAULT_TIMEOUT", "3"),
            ("SECRETS_ALLOWED_MOUNTS", "secret"),
        ]))
        .file_root(fx.root())
        .bootstrap_path(&path)
        .build()?;
    let config = client.kv2_config(Provider::OpenBao).ok_or("no provider")?;
    assert_eq!(config.namespace.as_deref(), Some("file-ns"));
    assert_eq!(config.timeout, Duration::from_secs(3));
    Ok(())
}

/// `cache_ttl(Duration::MAX)` and `stale_if_error(Duration::MAX)` overflowed `Instant + ttl`
/// at the first insert; `resolve_deadline(Duration::MAX)` the deadline. They are clamped.
#[tokio::test]
async fn duration_max_settings_are_clamped_not_a_panic() -> TestResult {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("demo"))?;
    std::fs::write(root.path().join("demo/key"), "file-value")?;
    let client = SecretsClient::builder()
        .file_root(root.path())
        .allowed_mounts(AllowedMounts::from_csv("demo"))
        .cache_ttl(Duration::MAX)
        .stale_if_error(Duration::MAX)
        .resolve_deadline(Duration::MAX)
        .build()?;
    for _ in 0..2 {
        let value = client.resolve("file://demo/key").await?;
        assert_eq!(value.expose_str(), Some("file-value"));
        let blocking = client.resolve_file_sync("file://demo/key")?;
        assert_eq!(blocking.expose_str(), Some("file-value"));
    }
    assert_eq!(client.cache_len(), 1);
    let shown = format!("{client:?}");
    assert!(shown.contains("31536000s"), "{shown}");

    // The environment's deadline: out of range is CONFIG naming it, never a clamp.
    for text in ["0", "-1", "3601", "18446744073709551615", "soon"] {
        let err = SecretsClient::builder()
            .file_root(root.path())
            .allowed_mounts(AllowedMounts::from_csv("demo"))
            .env_lookup(env(&[("SECRETS_RESOLVE_DEADLINE_S", text)]))
            .default_bootstrap_path(root.path().join("none.json"))
            .build()
            .err();
        assert_eq!(
            err.as_ref().map(|e| (e.code(), e.setting())),
            Some(("CONFIG", Some("SECRETS_RESOLVE_DEADLINE_S"))),
            "{text}"
        );
    }
    let zero = SecretsClient::builder()
        .file_root(root.path())
        .allowed_mounts(AllowedMounts::from_csv("demo"))
        .resolve_deadline(Duration::ZERO)
        .build()
        .err();
    assert_eq!(
        zero.and_then(|e| e.setting().map(str::to_owned)).as_deref(),
        Some("resolve_deadline")
    );
    Ok(())
}
