//! The workspace's crate for cross-crate integration tests.
//!
//! Today the cross-crate, real-server suites live beside the crate they exercise most:
//! `crates/secrets-sdk/tests/vault_client*.rs` (VaultClient + secret-pep + secret-providers
//! against real OpenBao and Cerbos), `crates/secrets-sdk/tests/` (SecretsClient against real
//! OpenBao), `crates/secret-providers/tests/conformance.rs` (one suite over every provider) and
//! `crates/secrets-cli/tests/` (the binary end to end). Tests that span crates without a
//! natural home go in this crate's `tests/` folder.
