//! `secrets uri parse`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::secrets;

const EXAMPLE_JSON: &str = r#"{"ok":true,"canonical":"openbao+kv2://secret/app/api#token?version=3","provider":"openbao","engine":"kv2","mount":"secret","path":["app","api"],"key":"token","params":[["version","3"]]}"#;

#[test]
fn prints_the_canonical_form() {
    let run = secrets(&[
        "uri",
        "parse",
        "OPENBAO+KV2://secret/app/api?version=3#token",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "openbao+kv2://secret/app/api#token?version=3\n");
    assert_eq!(run.stderr, "");
}

#[test]
fn json_prints_the_check_object() {
    let run = secrets(&[
        "uri",
        "parse",
        "--json",
        "openbao+kv2://secret/app/api#token?version=3",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{EXAMPLE_JSON}\n"));
    assert_eq!(run.stderr, "");
}

#[test]
fn invalid_prints_code_and_message_on_stderr() {
    let run = secrets(&["uri", "parse", "openbao+kv2://secret/app/*"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "INVALID_WILDCARD: invalid wildcard at byte 25: `*` is not allowed in a path segment\n"
    );
}

#[test]
fn invalid_with_json_prints_the_error_object_on_stdout() {
    let run = secrets(&["uri", "parse", "--json", "openbao+kv9://secret/app"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stdout,
        "{\"ok\":false,\"code\":\"UNSUPPORTED_ENGINE\",\"message\":\"unsupported engine at byte 8: \
         the provider has no such engine in scheme `openbao+kv9`\"}\n"
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn an_empty_uri_is_an_illegal_segment() {
    let run = secrets(&["uri", "parse", ""]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "ILLEGAL_SEGMENT: illegal segment at byte 0: missing `://` after the scheme\n"
    );
}

#[test]
fn allowed_mounts_apply_the_tenant_guard() {
    let ok = secrets(&[
        "uri",
        "parse",
        "--allowed-mounts",
        "config,secret",
        "file://secret/a",
    ]);
    assert_eq!((ok.code, ok.stdout.as_str()), (0, "file://secret/a\n"));

    let refused = secrets(&[
        "uri",
        "parse",
        "--allowed-mounts",
        "config, secret",
        "file://dc-infra/a",
    ]);
    assert_eq!(refused.code, 2);
    assert_eq!(refused.stdout, "");
    assert_eq!(
        refused.stderr,
        "TENANT_MOUNT_MISMATCH: tenant mount mismatch: mount `dc-infra` is not in the allowed mounts\n"
    );

    let json = secrets(&[
        "uri",
        "parse",
        "--json",
        "--allowed-mounts=config",
        "file://dc-infra/a",
    ]);
    assert_eq!(json.code, 2);
    assert_eq!(
        json.stdout,
        "{\"ok\":false,\"code\":\"TENANT_MOUNT_MISMATCH\",\"message\":\"tenant mount mismatch: \
         mount `dc-infra` is not in the allowed mounts\"}\n"
    );
}

#[test]
fn the_guard_runs_after_parsing() {
    // A malformed URI reports its parse error, not a mount mismatch.
    let run = secrets(&[
        "uri",
        "parse",
        "--allowed-mounts",
        "config",
        "file://dc-infra/*",
    ]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.starts_with("INVALID_WILDCARD: "), "{run:?}");
}

#[test]
fn an_empty_mount_list_is_a_usage_error() {
    let run = secrets(&["uri", "parse", "--allowed-mounts", "", "file://a/b"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("names no mount"), "{run:?}");
}

#[test]
fn missing_argument_is_a_usage_error() {
    let run = secrets(&["uri", "parse"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("Usage: secrets uri parse"), "{run:?}");
}
