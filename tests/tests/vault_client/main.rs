//! `VaultClient` end to end (secrets-sdk + secret-pep + secret-providers): a real OpenBao
//! (behind a counting proxy, so reads that reach the vault are counted) and a real Cerbos
//! (AuthZEN) serving the workspace's test policies, fresh per test (the counts are per server).
//! One module per subject, one test binary.
//!
//! Without `bao` or `cerbos` (or, for `verified`, `oidc-provider`) installed these tests print
//! `SKIP` and pass locally; under `CI=true` they fail (install them with `cargo xtask services
//! install`).

#[path = "../common/mod.rs"]
mod common;

mod coalescing;
mod concurrency;
mod pep;
mod reads;
mod verified;
