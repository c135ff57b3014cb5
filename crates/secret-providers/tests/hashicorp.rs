//! The real-server suite for the `hashicorp` provider (`hashicorp+kv2://`), against a real
//! OpenBao dev server started by `secrets-test-support`. No HashiCorp Vault binary can be
//! installed here; OpenBao serves the same KV v2 and auth API, so this runs the same suite.
//!
//! Without `bao` installed these tests print `SKIP` and pass locally; under `CI=true` they
//! fail (install it with `cargo xtask services install`).
#![cfg(feature = "hashicorp")]

mod common;

use secret_providers::Kv2Flavor;

kv2_suite!(
    Kv2Flavor::HashiCorp,
    latest_read,
    pinned_version,
    key_selects_one_field,
    missing_key,
    not_found,
    soft_deleted_version,
    destroyed_version,
    deleted_latest,
    future_deletion_time_is_live,
    permission_denied,
    approle_login,
    renewal_across_expiry,
    namespace_header,
    tls,
    server_restart,
    concurrent_first_reads,
);
