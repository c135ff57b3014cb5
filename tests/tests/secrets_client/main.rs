//! `SecretsClient` across the crates it joins (secret-uri, secret-providers, the sdk's cache
//! and bootstrap), against real files, a real OpenBao started by `secrets-test-support` and
//! its fault-injecting server: one module per subject, one test binary.
//!
//! Without `bao` installed the real-server tests print `SKIP` and pass locally; under
//! `CI=true` they fail (install it with `cargo xtask services install`).

#[path = "../common/mod.rs"]
mod common;

mod blocking;
mod bootstrap;
mod bootstrap_values;
mod cache;
mod config_matrix;
mod login;
mod outage;
mod rotation;
mod routing;
mod tls_config;
