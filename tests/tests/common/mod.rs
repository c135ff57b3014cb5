//! Helpers the suites of this crate share. Each test binary compiles all of them (`mod
//! common;`), so what one suite does not use is allowed to be dead there.
#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

pub mod cli;
pub mod kafka;
pub mod kv2;
pub mod leak;
pub mod redis;
pub mod sdk;
pub mod vault;

use std::time::Duration;

use secret_pep::{AuthzenClient, AuthzenConfig, AuthzenDialect};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The AuthZEN settings for a Cerbos at `addr`: Cerbos dialect, 2 s timeout, a breaker that
/// opens after 3 failures for 300 ms.
pub fn authzen(addr: &str) -> AuthzenConfig {
    AuthzenConfig::new(addr)
        .with_dialect(AuthzenDialect::Cerbos)
        .with_timeout(Duration::from_secs(2))
        .with_breaker(3, Duration::from_millis(300))
}

/// The AuthZEN client over [`authzen`].
pub fn cerbos_client(addr: &str) -> AuthzenClient {
    AuthzenClient::new(authzen(addr)).expect("valid AuthZEN config")
}
