//! The KV v2 suite, object_store style: one case list that every KV v2 provider runs.
//!
//! The cases are `pub async fn`s in `kv2/cases.rs`, each taking the flavor to build its
//! providers with; [`kv2_suite!`] below names each case once and runs it for
//! `openbao+kv2://` (`Kv2Flavor::OpenBao`) and `hashicorp+kv2://` (`Kv2Flavor::HashiCorp`).
//! No HashiCorp Vault binary can be installed here; OpenBao serves the same KV v2 and auth
//! API, so both flavors run against a real OpenBao dev server started by
//! `secrets-test-support` (one per binary, shared while tests overlap; the cases that stop or
//! break a server start their own). The `conformance` case is the table in
//! `kv2/conformance.rs`, which the file provider runs too (`file_conformance`), over the
//! object-safe `SecretProvider` trait.
//!
//! Without `bao` installed these tests print `SKIP` and pass locally; under `CI=true` they
//! fail (install it with `cargo xtask services install`).

mod cases;
#[path = "../common/mod.rs"]
mod common;
mod conformance;

/// One test per case and flavor: `openbao::<case>` and `hashicorp::<case>`.
macro_rules! kv2_suite {
    (@flavor $module:ident, $flavor:ident, $($case:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> crate::common::TestResult {
                    crate::cases::$case(secret_providers::Kv2Flavor::$flavor).await
                }
            )*
        }
    };
    ($($case:ident),* $(,)?) => {
        kv2_suite!(@flavor openbao, OpenBao, $($case),*);
        kv2_suite!(@flavor hashicorp, HashiCorp, $($case),*);
    };
}

// The case list.
kv2_suite!(
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
    conformance,
);

/// The file provider runs the conformance table (the cases that apply to an unversioned
/// store), and the router refuses what nothing serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_conformance() -> common::TestResult {
    conformance::file().await
}
