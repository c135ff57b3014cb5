//! `SecretsClient` fixtures: demo files in a temp dir, a real OpenBao with a secret, clients.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use secrets_sdk::providers::RetryConfig;
use secrets_sdk::uri::AllowedMounts;
use secrets_sdk::{BootstrapConfig, SecretsClient, SecretsClientBuilder};
use secrets_test_support::{OpenBaoServer, Shared};
use serde_json::json;
use tempfile::TempDir;

pub use super::TestResult;

/// A file root with `demo/db.json` (JSON) and `demo/api-key` (text).
pub fn demo_files() -> std::io::Result<TempDir> {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("demo"))?;
    std::fs::write(
        root.path().join("demo/db.json"),
        r#"{"username":"app","password":"file-password"}"#,
    )?;
    std::fs::write(root.path().join("demo/api-key"), "file-api-key\n")?;
    Ok(root)
}

/// A real OpenBao with `secret/app/api = {"token": "bao-token-v1"}`, or `None` (after a SKIP
/// line) when `bao` is not installed locally.
pub fn bao() -> Result<Option<OpenBaoServer>, secrets_test_support::Error> {
    let Some(bao) = secrets_test_support::openbao_or_skip() else {
        return Ok(None);
    };
    bao.kv_put("secret", "app/api", &json!({"token": "bao-token-v1"}))?;
    Ok(Some(bao))
}

/// [`bao`], one server shared by the tests of this binary that overlap in time
/// ([`secrets_test_support::Shared`]): for tests that only read `secret/app/api`.
pub fn shared_bao() -> Result<Option<Arc<OpenBaoServer>>, secrets_test_support::Error> {
    static SHARED: Shared<OpenBaoServer> = Shared::new();
    let mut failed = None;
    let server = SHARED.get_or_start(|| match bao() {
        Ok(server) => server,
        Err(e) => {
            failed = Some(e);
            None
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(server),
    }
}

/// A builder reading files under `root`, allowed mounts `demo,secret`, fast retries.
pub fn builder(root: &Path) -> SecretsClientBuilder {
    SecretsClient::builder()
        .file_root(root)
        .allowed_mounts(AllowedMounts::from_csv("demo,secret"))
        .vault_retry(RetryConfig::attempts(1))
        .vault_timeout(Duration::from_secs(5))
}

/// [`builder`] with a token bootstrap for `addr`.
pub fn client(root: &Path, addr: &str, token: &str) -> Result<SecretsClient, secrets_sdk::Error> {
    builder(root)
        .bootstrap(BootstrapConfig::token(addr, token))
        .build()
}

/// A lookup over fixed variables, for `env_lookup` (`&str` values, so `&String`s coerce).
pub fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    secrets_test_support::env_map(vars)
}
