//! The real-server suite for the `openbao` provider (`openbao+kv2://`), against a real
//! OpenBao dev server started by `secrets-test-support`.
//!
//! Without `bao` installed these tests print `SKIP` and pass locally; under `CI=true` they
//! fail (install it with `cargo xtask services install`).
#![cfg(feature = "openbao")]

mod common;

use secret_providers::Kv2Flavor;

kv2_suite!(
    Kv2Flavor::OpenBao,
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
