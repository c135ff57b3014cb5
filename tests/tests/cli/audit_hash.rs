//! `secrets audit-hash`: the fleet's `resource_ref` vectors, byte for byte, through the binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::cli::secrets;

/// (salt, URI, resource_ref): other services in the fleet join on these.
const VECTORS: [(&str, &str, &str); 3] = [
    (
        "tenant-salt-0001-for-acme-corp-x",
        "openbao+kv2://secret/app/api#token?version=3",
        "8cbd64017dc68f7258e00a0a7a0f572c",
    ),
    (
        "tenant-salt-0001-for-acme-corp-x",
        "file://dc-infra/config.json#password",
        "8f2f4205826405363900cc07640d38ff",
    ),
    (
        "s3cr3t-salt-for-globex-2026-0002",
        "hashicorp+kv2://secret/crud/db",
        "34799e215ddf118f464024ae4a8708bb",
    ),
];

#[test]
fn the_fleet_vectors_hold_through_the_binary() {
    for (salt, uri, expected) in VECTORS {
        let run = secrets(["audit-hash", uri])
            .env("SECRET_TENANT_SALT", salt)
            .run();
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (0, format!("{expected}\n").as_str(), ""),
            "{uri}"
        );
    }
    // Several at once, in order; an invalid one is its typed error, the others still print.
    let run = secrets([
        "audit-hash",
        VECTORS[0].1,
        "openbao+kv2://secret/*",
        VECTORS[1].1,
    ])
    .env("SECRET_TENANT_SALT", VECTORS[0].0)
    .run();
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, format!("{}\n{}\n", VECTORS[0].2, VECTORS[1].2));
    assert!(
        run.stderr.starts_with("INVALID_WILDCARD: URI 2: "),
        "{run:?}"
    );
}

#[test]
fn no_salt_is_a_configuration_error_that_names_it() {
    let run = secrets(["audit-hash", VECTORS[0].1]).run();
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:?}");
    assert!(run.stderr.starts_with("CONFIG: "), "{run:?}");
    assert!(run.stderr.contains("SECRET_TENANT_SALT"), "{run:?}");
    let run = secrets(["audit-hash", VECTORS[0].1])
        .env("SECRET_TENANT_SALT", "too-short")
        .run();
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        !run.stderr.contains("too-short"),
        "the salt leaked: {run:?}"
    );
}
