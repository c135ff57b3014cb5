//! `secrets lint`, on the fixtures in `tests/fixtures/` and on trees built in a temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::Path;

use common::{secrets, secrets_in};
use serde_json::{Value, json};

/// Every finding in `tests/fixtures`, in walk order (entries sorted by name).
const FIXTURE_FINDINGS: [&str; 11] = [
    "tests/fixtures/.env:3:13: ILLEGAL_SEGMENT illegal segment at byte 18: encoded slash `%2f` in the path",
    "tests/fixtures/.env:4:12: ILLEGAL_SEGMENT illegal segment at byte 14: no path segment (the mount is missing)",
    "tests/fixtures/.env:7:10: INVALID_WILDCARD invalid wildcard at byte 14: `*` is not allowed in a path segment",
    "tests/fixtures/app.yaml:4:13: INVALID_WILDCARD invalid wildcard at byte 25: `*` is not allowed in a path segment",
    "tests/fixtures/app.yaml:7:11: UNSUPPORTED_ENGINE unsupported engine at byte 8: the provider has no such engine in scheme `openbao+kv9`",
    "tests/fixtures/app.yaml:11:39: ILLEGAL_SEGMENT illegal segment at byte 16: `..` in the path",
    // Column 31 counts characters: `ï` and `ü` before the URI are two bytes each.
    "tests/fixtures/app.yaml:12:31: ILLEGAL_SEGMENT illegal segment at byte 21: empty path segment",
    "tests/fixtures/config.json:3:13: INVALID_VERSION invalid version at byte 42: `version` must be positive",
    "tests/fixtures/config.json:4:38: DOUBLE_MOUNT_SOURCE double mount source at byte 22: the mount is the first path segment; a `mount` query parameter is not allowed",
    "tests/fixtures/settings.toml:3:14: AMBIGUOUS_QUERY ambiguous query at byte 39: parameter `version` is repeated",
    "tests/fixtures/settings.toml:5:42: UNSUPPORTED_ENGINE unsupported engine at byte 3: the provider has no such engine in scheme `db+kv2`",
];

#[test]
fn fixtures_folder_text() {
    let run = secrets(&["lint", "tests/fixtures"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout_lines(), FIXTURE_FINDINGS);
    assert_eq!(
        run.stderr,
        "secrets lint: 23 secret URIs in 4 files, 11 invalid\n"
    );
}

#[test]
fn files_given_one_by_one_keep_the_argument_order() {
    let run = secrets(&[
        "lint",
        "tests/fixtures/settings.toml",
        "tests/fixtures/.env",
    ]);
    assert_eq!(run.code, 1);
    let want: Vec<_> = FIXTURE_FINDINGS[9..]
        .iter()
        .chain(&FIXTURE_FINDINGS[..3])
        .copied()
        .collect();
    assert_eq!(run.stdout_lines(), want);
}

#[test]
fn allowed_mounts_add_tenant_findings() {
    let run = secrets(&[
        "lint",
        "--allowed-mounts",
        "secret,dc-infra,db,config,local",
        "tests/fixtures/config.json",
    ]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout_lines(),
        [
            FIXTURE_FINDINGS[7],
            FIXTURE_FINDINGS[8],
            "tests/fixtures/config.json:7:14: TENANT_MOUNT_MISMATCH tenant mount mismatch: mount `other` is not in the allowed mounts",
        ]
    );
}

#[test]
fn json_format() {
    let run = secrets(&["lint", "--format", "json", "tests/fixtures/app.yaml"]);
    assert_eq!(run.code, 1);
    let lines = run.stdout_lines();
    assert_eq!(
        lines[0],
        r#"{"path":"tests/fixtures/app.yaml","line":4,"column":13,"code":"INVALID_WILDCARD","message":"invalid wildcard at byte 25: `*` is not allowed in a path segment"}"#
    );
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        parsed[1..],
        [
            json!({"path": "tests/fixtures/app.yaml", "line": 7, "column": 11, "code": "UNSUPPORTED_ENGINE",
                   "message": "unsupported engine at byte 8: the provider has no such engine in scheme `openbao+kv9`"}),
            json!({"path": "tests/fixtures/app.yaml", "line": 11, "column": 39, "code": "ILLEGAL_SEGMENT",
                   "message": "illegal segment at byte 16: `..` in the path"}),
            json!({"path": "tests/fixtures/app.yaml", "line": 12, "column": 31, "code": "ILLEGAL_SEGMENT",
                   "message": "illegal segment at byte 21: empty path segment"}),
        ]
    );
}

#[test]
fn messages_never_echo_the_uri() {
    let run = secrets(&["lint", "tests/fixtures"]);
    for needle in [
        "kafka-password",
        "app/*",
        "etc/passwd",
        "double-slash",
        "db%2F",
        "readonly?mount",
    ] {
        assert!(!run.stdout.contains(needle), "{needle} in {}", run.stdout);
    }
}

fn write(root: &Path, relative: &str, contents: &[u8]) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

#[test]
fn clean_tree_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.yaml",
        b"x: file://dc-infra/a\ny: https://example.com\n",
    );
    write(dir.path(), "empty.txt", b"");
    let run = secrets_in(dir.path(), &["lint", "."], b"");
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", "secrets lint: 1 secret URIs in 2 files, 0 invalid\n")
    );
}

#[test]
fn walks_nested_folders_and_skips_what_it_should() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let bad = b"key: openbao+kv2://secret/*\n";
    write(root, "top.yaml", bad);
    write(root, "a/b/c/deep.env", bad);
    write(root, "a/.hidden-file.env", bad); // hidden files are scanned
    write(root, "a/.hidden-dir/x.yaml", bad); // and hidden folders, but `.git`
    write(root, ".git/config", bad);
    write(root, "target/debug/x.toml", bad);
    write(root, "web/node_modules/pkg/x.json", bad);
    let mut binary = b"\x7fELF\0\0\0".to_vec();
    binary.extend_from_slice(bad);
    write(root, "a/tool.bin", &binary);
    // NUL after the first 8 KiB: still text.
    let mut late_nul = vec![b' '; 9000];
    late_nul.extend_from_slice(b"\0\n");
    late_nul.extend_from_slice(bad);
    write(root, "a/late-nul.txt", &late_nul);
    let mut big = bad.to_vec();
    big.resize(10 * 1024 * 1024 + 1, b' ');
    write(root, "big.yaml", &big);
    write(root, "crlf.env", b"A=file://x/y\r\nB=file://x/*\r\n");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.join("a"), root.join("z-link-to-dir")).unwrap();
        std::os::unix::fs::symlink(root.join("top.yaml"), root.join("z-link-to-file.yaml"))
            .unwrap();
        std::os::unix::fs::symlink(root.join("missing"), root.join("z-dangling")).unwrap();
    }

    let run = secrets_in(root, &["lint", "."], b"");
    assert_eq!(run.code, 1, "{run:?}");
    let mut want = vec![
        "./a/.hidden-dir/x.yaml:1:6: INVALID_WILDCARD invalid wildcard at byte 21: `*` is not allowed in a path segment",
        "./a/.hidden-file.env:1:6: INVALID_WILDCARD invalid wildcard at byte 21: `*` is not allowed in a path segment",
        "./a/b/c/deep.env:1:6: INVALID_WILDCARD invalid wildcard at byte 21: `*` is not allowed in a path segment",
        "./a/late-nul.txt:2:6: INVALID_WILDCARD invalid wildcard at byte 21: `*` is not allowed in a path segment",
        "./crlf.env:2:3: INVALID_WILDCARD invalid wildcard at byte 9: `*` is not allowed in a path segment",
        "./top.yaml:1:6: INVALID_WILDCARD invalid wildcard at byte 21: `*` is not allowed in a path segment",
    ];
    if cfg!(unix) {
        want.push("./z-link-to-file.yaml:1:6: INVALID_WILDCARD invalid wildcard at byte 21: `*` is not allowed in a path segment");
    }
    assert_eq!(run.stdout_lines(), want);
    let (uris, files) = if cfg!(unix) { (8, 7) } else { (7, 6) };
    assert_eq!(
        run.stderr,
        format!(
            "secrets lint: {uris} secret URIs in {files} files, {} invalid; 2 files skipped:\n\
             secrets lint: skipped ./a/tool.bin: binary (a NUL byte in the first 8 KiB)\n\
             secrets lint: skipped ./big.yaml: too large (10485761 bytes; files over 10485760 bytes are not linted)\n",
            want.len()
        )
    );

    // A skipped folder given as a root is scanned.
    let run = secrets_in(root, &["lint", ".git", "target"], b"");
    assert_eq!(
        run.stdout_lines(),
        [
            ".git/config:1:6: INVALID_WILDCARD invalid wildcard at byte 21: `*` is not allowed in a path segment",
            "target/debug/x.toml:1:6: INVALID_WILDCARD invalid wildcard at byte 21: `*` is not allowed in a path segment",
        ]
    );
}

#[test]
fn missing_path_exits_2_after_scanning_the_rest() {
    let run = secrets(&[
        "lint",
        "tests/no-such-file.yaml",
        "tests/fixtures/settings.toml",
    ]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout_lines(), FIXTURE_FINDINGS[9..]);
    assert!(
        run.stderr
            .starts_with("secrets lint: tests/no-such-file.yaml: "),
        "{}",
        run.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    let no_path = secrets(&["lint"]);
    assert_eq!(no_path.code, 2);
    assert!(no_path.stderr.contains("<PATH>..."), "{no_path:?}");
    let bad_format = secrets(&["lint", "--format", "xml", "tests/fixtures"]);
    assert_eq!(bad_format.code, 2);
    assert_eq!(bad_format.stdout, "");
}

#[test]
fn ci_definitions_in_hidden_folders_are_linted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        ".github/workflows/deploy.yml",
        b"env:\n  TOKEN: openbao+kv2://secret/app/api?verison=2#token\n",
    );
    write(
        root,
        ".gitlab-ci.yml",
        b"variables:\n  DB: file://demo/db.json?version=1#password\n",
    );
    write(
        root,
        ".circleci/config.yml",
        b"x: hashicorp+kv2://secret/app/*\nok: hashicorp+kv2://secret/app#k?version=3\n",
    );
    write(root, ".git/hooks/pre-commit", b"openbao+kv2://secret/*\n");
    let run = secrets_in(root, &["lint", "."], b"");
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout_lines(),
        [
            "./.circleci/config.yml:1:4: INVALID_WILDCARD invalid wildcard at byte 27: `*` is not allowed in a path segment",
            "./.github/workflows/deploy.yml:2:10: UNKNOWN_PARAMETER openbao: unknown query parameter `verison` in mount `secret`; this provider serves `version` [UNKNOWN_PARAMETER]",
            "./.gitlab-ci.yml:2:7: UNKNOWN_PARAMETER file: unknown query parameter `version` in mount `demo`; this provider serves no parameters [UNKNOWN_PARAMETER]",
        ]
    );
    assert_eq!(
        run.stderr,
        "secrets lint: 4 secret URIs in 3 files, 3 invalid\n"
    );
    let json = secrets_in(root, &["lint", "--format", "json", ".github"], b"");
    let record: Value = serde_json::from_str(json.stdout_lines()[0]).unwrap();
    assert_eq!(
        (&record["code"], &record["line"], &record["column"]),
        (&json!("UNKNOWN_PARAMETER"), &json!(2), &json!(10))
    );
}

#[test]
fn a_file_that_is_only_binary_or_large_is_reported_when_given_directly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "blob", b"\0openbao+kv2://secret/*\n");
    let run = secrets_in(root, &["lint", "blob"], b"");
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (
            0,
            "",
            "secrets lint: 0 secret URIs in 0 files, 0 invalid; 1 files skipped:\n\
             secrets lint: skipped blob: binary (a NUL byte in the first 8 KiB)\n"
        )
    );
}
