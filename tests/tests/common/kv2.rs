//! KV v2 fixtures: one shared OpenBao per test binary, unique paths, fast-failing provider
//! settings, scripted replies for the fault server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secret_providers::{Kv2Auth, Kv2Config, Kv2Flavor, Kv2Provider, RetryConfig};
use secret_uri::SecretUri;
use secrets_test_support::OpenBaoServer;

pub use super::TestResult;

/// The binary's shared OpenBao ([`secrets_test_support::shared_openbao`]).
pub fn shared_bao() -> Option<Arc<OpenBaoServer>> {
    secrets_test_support::shared_openbao()
}

/// A path unique to this test run, e.g. `t/latest_read-3`.
pub fn unique(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("t/{name}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The URI scheme of a flavor: `openbao+kv2` or `hashicorp+kv2`.
pub fn scheme(flavor: Kv2Flavor) -> &'static str {
    match flavor {
        Kv2Flavor::HashiCorp => "hashicorp+kv2",
        _ => "openbao+kv2",
    }
}

pub fn uri(flavor: Kv2Flavor, rest: &str) -> SecretUri {
    let text = format!("{}://{rest}", scheme(flavor));
    match text.parse() {
        Ok(uri) => uri,
        Err(e) => panic!("test URI {text} does not parse: {e}"),
    }
}

/// Fast-failing settings for tests: short timeout and delays.
pub fn config(flavor: Kv2Flavor, address: &str, auth: Kv2Auth) -> Kv2Config {
    Kv2Config::new(flavor, address, auth)
        .with_timeout(Duration::from_secs(5))
        .with_retry(
            RetryConfig::attempts(3)
                .with_delays(Duration::from_millis(20), Duration::from_millis(100)),
        )
}

pub fn root_provider(
    flavor: Kv2Flavor,
    bao: &OpenBaoServer,
) -> Result<Kv2Provider, secret_providers::ProviderError> {
    Kv2Provider::new(config(
        flavor,
        &bao.addr(),
        Kv2Auth::token(bao.root_token().to_owned()),
    ))
}

/// The error code of a read, or `"OK"`.
pub fn code<T>(result: &Result<T, secret_providers::ProviderError>) -> &'static str {
    result
        .as_ref()
        .err()
        .map_or("OK", secret_providers::ProviderError::code)
}

/// A `lookup-self` answer for a token that never expires.
pub fn lookup_never_expires() -> secrets_test_support::Fault {
    secrets_test_support::Fault::json(
        200,
        &serde_json::json!({"data": {"ttl": 0, "renewable": false}}),
    )
}

/// A KV v2 read answer.
pub fn kv_reply(data: serde_json::Value) -> secrets_test_support::Fault {
    secrets_test_support::Fault::json(
        200,
        &serde_json::json!({"data": {"data": data, "metadata": {"deletion_time": "", "destroyed": false, "version": 1}}}),
    )
}
