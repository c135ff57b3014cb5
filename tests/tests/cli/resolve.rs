//! `secrets resolve`, on file secrets in a temp dir, a scripted HTTP server and a real
//! OpenBao. Every scenario also runs with `RUST_LOG=trace` and checks that the planted values
//! never reach stderr.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use crate::common::cli::{Invocation, Run, repo_root, secrets};
use secrets_test_support::{Fault, FaultServer, openbao_or_skip};
use serde_json::json;

/// A value that must appear on stdout only, and only when asked for.
const CANARY: &str = "canary-d41d8cd98f";
/// Another field of the same secret, never asked for in the error scenarios.
const OTHER: &str = "other-e3b0c44298";

/// A file root with `demo/db.json` (an object), `demo/api-key` (text) and `other/x`.
fn root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let demo = root.path().join("demo");
    std::fs::create_dir(&demo).unwrap();
    std::fs::write(
        demo.join("db.json"),
        format!(r#"{{"username":"app","password":"{CANARY}","port":5432,"tls":{{"on":true}}}}"#),
    )
    .unwrap();
    std::fs::write(demo.join("api-key"), format!("{OTHER}\n")).unwrap();
    std::fs::create_dir(root.path().join("other")).unwrap();
    std::fs::write(root.path().join("other/x"), "x").unwrap();
    root
}

fn resolve(root: &Path, args: &[&str]) -> Invocation {
    let mut all = vec!["resolve".to_owned(), "--file-root".to_owned()];
    all.push(root.to_str().unwrap().to_owned());
    all.extend(args.iter().map(|a| (*a).to_owned()));
    secrets(all)
}

/// Runs plain and traced; asserts the exit code, stdout and stderr of the plain run, and that
/// in both runs `hidden` values are on neither stream and `CANARY` is never on stderr, and on
/// stdout only when the expected `stdout` has it.
fn check(secrets: &Invocation, code: i32, stdout: &str, stderr: &str, hidden: &[&str]) -> Run {
    let (plain, traced) = secrets.run_traced();
    assert_eq!(
        (plain.code, plain.stdout.as_str(), plain.stderr.as_str()),
        (code, stdout, stderr),
        "{plain:?}"
    );
    for run in [&plain, &traced] {
        run.assert_hidden(hidden, false);
        if !stdout.contains(CANARY) {
            run.assert_hidden(&[CANARY], false);
        }
        run.assert_hidden(&[CANARY], true);
    }
    traced
}

#[test]
fn a_field_prints_raw_or_as_a_json_string() {
    let root = root();
    let uri = "file://demo/db.json#password";
    let traced = check(
        &resolve(root.path(), &[uri]),
        0,
        &format!("{CANARY}\n"),
        "",
        &[OTHER],
    );
    // The logs were on, and carried the resolve span.
    assert!(traced.stderr.contains("secret_resolve"), "{traced:?}");
    check(
        &resolve(root.path(), &["--format", "json", uri]),
        0,
        &format!("\"{CANARY}\"\n"),
        "",
        &[OTHER],
    );
    // A non-string field is JSON either way.
    check(
        &resolve(root.path(), &["FILE://demo/db.json#tls"]),
        0,
        "{\"on\":true}\n",
        "",
        &[OTHER],
    );
}

#[test]
fn a_whole_object_prints_as_compact_json_and_text_as_is() {
    let root = root();
    let object =
        format!(r#"{{"password":"{CANARY}","port":5432,"tls":{{"on":true}},"username":"app"}}"#);
    for format in ["raw", "json"] {
        check(
            &resolve(root.path(), &["--format", format, "file://demo/db.json"]),
            0,
            &format!("{object}\n"),
            "",
            &[OTHER],
        );
    }
    // The file provider drops the file's final newline.
    check(
        &resolve(root.path(), &["file://demo/api-key"]),
        0,
        &format!("{OTHER}\n"),
        "",
        &[],
    );
    check(
        &resolve(root.path(), &["--format", "json", "file://demo/api-key"]),
        0,
        &format!("\"{OTHER}\"\n"),
        "",
        &[],
    );
}

#[test]
fn several_uris_print_in_argument_order() {
    let root = root();
    let uris = [
        "file://other/x",
        "file://demo/db.json#port",
        "file://demo/db.json#password",
        "file://demo/db.json#username",
        "file://other/x",
    ];
    let mut args = vec!["--format", "json", "--refresh"];
    args.extend(uris);
    check(
        &resolve(root.path(), &args),
        0,
        &format!("\"x\"\n5432\n\"{CANARY}\"\n\"app\"\n\"x\"\n"),
        "",
        &[OTHER],
    );
    check(
        &resolve(root.path(), &uris),
        0,
        &format!("x\n5432\n{CANARY}\napp\nx\n"),
        "",
        &[OTHER],
    );
}

#[test]
fn a_missing_file_is_not_found_and_nothing_is_printed() {
    let root = root();
    check(
        &resolve(
            root.path(),
            &[
                "file://demo/db.json#password",
                "file://demo/nope.json#password",
            ],
        ),
        1,
        "",
        "NOT_FOUND: URI 2 (file://demo/…): file: secret not found in mount `demo`\n",
        &["nope.json", "#password"],
    );
    check(
        &resolve(root.path(), &["file://demo/db.json#missing"]),
        1,
        "",
        "KEY_NOT_FOUND: URI 1 (file://demo/…): file: the secret in mount `demo` has no such key\n",
        &["db.json", "missing"],
    );
}

#[test]
fn a_bad_uri_prints_its_code() {
    let root = root();
    check(
        &resolve(
            root.path(),
            &["file://demo/db.json#password", "file://demo/../etc/passwd"],
        ),
        1,
        "",
        "ILLEGAL_SEGMENT: URI 2: illegal segment at byte 12: `..` in the path\n",
        &["passwd"],
    );
    check(
        &resolve(root.path(), &["openbao+kv9://secret/app#token"]),
        1,
        "",
        "UNSUPPORTED_ENGINE: URI 1: unsupported engine at byte 8: the provider has no such \
         engine in scheme `openbao+kv9`\n",
        &["token"],
    );
}

#[test]
fn db_uris_need_a_vault_and_an_engine() {
    let root = root();
    check(
        &resolve(root.path(), &["db+cred://postgres/app-role#password"]),
        1,
        "",
        "NOT_CONFIGURED: URI 1 (db+cred://postgres/…): db: no vault is configured for this \
         scheme (no bootstrap found; tried SECRETS_BOOTSTRAP_PATH (not set), \
         /vault/secrets/bootstrap.json (not found), OPENBAO_URL/OPENBAO_ADDR/BAO_ADDR and \
         VAULT_URL/VAULT_ADDR (not set))\n",
        &["app-role"],
    );
    // No engine says neither dynamic nor static credentials.
    check(
        &resolve(root.path(), &["db://postgres/app-role#password"]),
        1,
        "",
        "UNSUPPORTED_PROVIDER: URI 1 (db://postgres/…): db: unsupported provider: \
         no provider serves this scheme (built in: file, openbao, hashicorp)\n",
        &["app-role"],
    );
}

#[test]
fn a_vault_uri_without_a_vault_is_not_configured() {
    let root = root();
    check(
        &resolve(
            root.path(),
            &[
                "file://demo/db.json#password",
                "openbao+kv2://secret/app/db#password",
            ],
        ),
        1,
        "",
        "NOT_CONFIGURED: URI 2 (openbao+kv2://secret/…): openbao: no vault is configured for \
         this scheme (no bootstrap found; tried SECRETS_BOOTSTRAP_PATH (not set), \
         /vault/secrets/bootstrap.json (not found), OPENBAO_URL/OPENBAO_ADDR/BAO_ADDR and \
         VAULT_URL/VAULT_ADDR (not set))\n",
        &["app/db"],
    );
}

#[test]
fn the_mount_guard_comes_from_the_flag_then_the_environment() {
    let root = root();
    let uris = ["file://demo/db.json#port", "file://other/x"];
    let mismatch = |n: usize, mount: &str| {
        format!(
            "TENANT_MOUNT_MISMATCH: URI {n} (file://{mount}/…): tenant mount mismatch: mount \
             `{mount}` is not in the allowed mounts\n"
        )
    };
    // Neither: any mount.
    check(&resolve(root.path(), &uris), 0, "5432\nx\n", "", &[]);
    // The environment.
    check(
        &resolve(root.path(), &uris).env("SECRETS_ALLOWED_MOUNTS", "demo"),
        1,
        "",
        &mismatch(2, "other"),
        &[],
    );
    // The flag wins.
    let mut args = vec!["--allowed-mounts", "other"];
    args.extend(uris);
    check(
        &resolve(root.path(), &args).env("SECRETS_ALLOWED_MOUNTS", "demo"),
        1,
        "",
        &mismatch(1, "demo"),
        &[],
    );
}

#[test]
fn an_empty_mount_list_is_a_usage_error() {
    let root = root();
    let run = resolve(
        root.path(),
        &["--allowed-mounts", " ,", "file://demo/db.json#password"],
    )
    .run();
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:?}");
    assert!(
        run.stderr
            .contains("names no mount; omit --allowed-mounts to allow every mount"),
        "{run:?}"
    );
    check(
        &resolve(root.path(), &["file://demo/db.json#password"]).env("SECRETS_ALLOWED_MOUNTS", ""),
        2,
        "",
        "CONFIG: invalid configuration: SECRETS_ALLOWED_MOUNTS is empty; list the mounts this \
         service may read\n",
        &[],
    );
}

/// Unreadable is not unset: a guard that cannot be read must not become "any mount".
#[cfg(unix)]
#[test]
fn a_non_utf8_mount_list_is_a_config_error() {
    use std::os::unix::ffi::OsStrExt as _;
    let root = root();
    check(
        &resolve(root.path(), &["file://demo/db.json#password"]).env(
            "SECRETS_ALLOWED_MOUNTS",
            std::ffi::OsStr::from_bytes(b"demo\xff"),
        ),
        2,
        "",
        "CONFIG: invalid configuration: SECRETS_ALLOWED_MOUNTS is not valid UTF-8\n",
        &[],
    );
}

#[test]
fn file_mount_path_is_the_root_without_the_flag() {
    let root = root();
    check(
        &secrets(["resolve", "file://demo/db.json#password"]).env("FILE_MOUNT_PATH", root.path()),
        0,
        &format!("{CANARY}\n"),
        "",
        &[OTHER],
    );
    // The flag wins over the environment.
    let empty = tempfile::tempdir().unwrap();
    check(
        &resolve(empty.path(), &["file://demo/db.json#password"])
            .env("FILE_MOUNT_PATH", root.path()),
        1,
        "",
        "NOT_FOUND: URI 1 (file://demo/…): file: secret not found in mount `demo`\n",
        &[],
    );
}

/// `bootstrap://` values come from the bootstrap file, with nothing listening at its vault
/// address: no vault is needed, or asked.
#[test]
fn bootstrap_values_resolve_without_a_vault() {
    let root = root();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let vault = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let bootstrap = root.path().join("bootstrap.json");
    std::fs::write(
        &bootstrap,
        json!({
            "vault_addr": vault,
            "token": "bootstrap-token-hidden",
            "values": {"kafka_password": CANARY, "db": {"user": "app", "password": OTHER}},
        })
        .to_string(),
    )
    .unwrap();
    let uris = [
        "bootstrap://kafka_password",
        "bootstrap://db#user",
        "bootstrap://db",
    ];
    let mut args = vec!["--bootstrap", bootstrap.to_str().unwrap()];
    args.extend(uris);
    check(
        &resolve(root.path(), &args),
        0,
        &format!("{CANARY}\napp\n{{\"password\":\"{OTHER}\",\"user\":\"app\"}}\n"),
        "",
        &["bootstrap-token-hidden"],
    );
    // Through SECRETS_BOOTSTRAP_PATH too; a missing name fails alone, printing nothing.
    check(
        &resolve(root.path(), &["bootstrap://db#user", "bootstrap://db#port"])
            .env("SECRETS_BOOTSTRAP_PATH", &bootstrap),
        1,
        "",
        "KEY_NOT_FOUND: URI 2 (bootstrap://db/…): bootstrap: the secret in mount `db` has no \
         such key\n",
        &[OTHER, "bootstrap-token-hidden"],
    );
    // A wrong type is refused by its field, before anything resolves.
    std::fs::write(
        &bootstrap,
        json!({"vault_addr": vault, "token": "t", "values": {"db": {"password": CANARY, "port": 5432}}})
            .to_string(),
    )
    .unwrap();
    check(
        &resolve(
            root.path(),
            &["--bootstrap", bootstrap.to_str().unwrap(), "bootstrap://db"],
        ),
        2,
        "",
        &format!(
            "BOOTSTRAP_INVALID: bootstrap {}: field `values.db.port` must be a string\n",
            bootstrap.display()
        ),
        &[],
    );
}

#[test]
fn a_missing_bootstrap_file_is_a_config_error() {
    let root = root();
    let missing = root.path().join("no-bootstrap.json");
    check(
        &resolve(
            root.path(),
            &[
                "--bootstrap",
                missing.to_str().unwrap(),
                "file://demo/db.json#password",
            ],
        ),
        2,
        "",
        &format!(
            "BOOTSTRAP_IO: bootstrap file {} could not be read\n",
            missing.display()
        ),
        &[],
    );
    check(
        &resolve(root.path(), &["file://demo/db.json#password"])
            .env("SECRETS_BOOTSTRAP_PATH", &missing),
        2,
        "",
        &format!(
            "BOOTSTRAP_IO: bootstrap file {} could not be read\n",
            missing.display()
        ),
        &[],
    );
}

/// With a vault configured, `file://` URIs make no request; a vault URI makes one, with the
/// token from the environment, which never shows.
#[test]
fn file_uris_never_touch_the_vault() {
    let token = "s.token-canary-0f9e8d";
    let server = FaultServer::start(vec![Fault::json(404, &json!({"errors": []}))]).unwrap();
    let root = root();
    let with_vault = |secrets: Invocation| {
        secrets
            .env("OPENBAO_URL", server.addr())
            .env("OPENBAO_TOKEN", token)
    };
    check(
        &with_vault(resolve(
            root.path(),
            &["file://demo/db.json#password", "file://other/x"],
        )),
        0,
        &format!("{CANARY}\nx\n"),
        "",
        &[token, OTHER],
    );
    assert_eq!(server.request_count(), 0);

    check(
        &with_vault(resolve(
            root.path(),
            &["openbao+kv2://secret/app/db#password"],
        )),
        1,
        "",
        "NOT_FOUND: URI 1 (openbao+kv2://secret/…): openbao: secret not found in mount \
         `secret` (HTTP 404)\n",
        &[token, "app/db"],
    );
    // One read per run (plain and traced, after the token lookup), with the token from
    // OPENBAO_TOKEN.
    let requests = server.requests();
    let reads = requests
        .iter()
        .filter(|r| r.path == "/v1/secret/data/app/db")
        .count();
    assert_eq!(reads, 2, "{requests:?}");
    for request in &requests {
        assert_eq!(request.header("x-vault-token"), Some(token));
    }
}

/// Against a real OpenBao: KV v2 fields and objects, both schemes on the one configured
/// address, a bootstrap file, and the canary and root token kept out of stderr.
#[test]
fn kv2_secrets_from_a_real_openbao() {
    let Some(bao) = openbao_or_skip() else {
        return;
    };
    bao.kv_put(
        "secret",
        "cli/db",
        &json!({"password": CANARY, "user": "app", "port": 5432}),
    )
    .unwrap();
    bao.kv_put("secret", "cli/api", &json!({"token": OTHER}))
        .unwrap();
    let root = root();
    let token = bao.root_token().to_owned();
    let from_env = |args: &[&str]| {
        resolve(root.path(), args)
            .env("OPENBAO_URL", bao.addr())
            .env("OPENBAO_TOKEN", &token)
    };

    let traced = check(
        &from_env(&["openbao+kv2://secret/cli/db#password"]),
        0,
        &format!("{CANARY}\n"),
        "",
        &[&token, OTHER],
    );
    assert!(traced.stderr.contains("secret_read"), "{traced:?}");
    check(
        &from_env(&[
            "--format",
            "json",
            "--refresh",
            "openbao+kv2://secret/cli/db",
            "hashicorp+kv2://secret/cli/db#port",
            "file://other/x",
            "OPENBAO://secret/cli/db#user",
        ]),
        0,
        &format!(
            "{{\"password\":\"{CANARY}\",\"port\":5432,\"user\":\"app\"}}\n5432\n\"x\"\n\"app\"\n"
        ),
        "",
        &[&token, OTHER],
    );
    check(
        &from_env(&[
            "openbao+kv2://secret/cli/db#password",
            "openbao+kv2://secret/cli/db#nope",
        ]),
        1,
        "",
        "KEY_NOT_FOUND: URI 2 (openbao+kv2://secret/…): openbao: the secret in mount `secret` \
         has no such key\n",
        &[&token, OTHER],
    );

    // The same from a bootstrap file, with nothing in the environment.
    let bootstrap = root.path().join("bootstrap.json");
    std::fs::write(
        &bootstrap,
        json!({"vault_addr": bao.addr(), "token": token}).to_string(),
    )
    .unwrap();
    check(
        &resolve(
            root.path(),
            &[
                "--bootstrap",
                bootstrap.to_str().unwrap(),
                "--allowed-mounts",
                "secret",
                "openbao+kv2://secret/cli/api#token",
            ],
        ),
        0,
        &format!("{OTHER}\n"),
        "",
        &[&token, CANARY],
    );
}

/// The README's main-job command: the shipped example, no server, no environment.
#[test]
fn the_readme_command_resolves_the_shipped_example() {
    let run = secrets([
        "resolve",
        "--file-root",
        "examples/secrets",
        "file://demo/db.json#password",
    ])
    .dir(repo_root())
    .run();
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "demo-password-not-a-secret\n", "")
    );
}

#[test]
fn help_explains_configuration_and_the_mount_default() {
    let run = secrets(["resolve", "--help"]).run();
    assert_eq!(run.code, 0);
    for needle in [
        "SECRETS_ALLOWED_MOUNTS",
        "FILE_MOUNT_PATH",
        "OPENBAO_URL",
        "--format <FORMAT>",
        "local operator tool",
        "nothing is printed on stdout",
    ] {
        assert!(run.stdout.contains(needle), "{needle}: {}", run.stdout);
    }
}

/// A bound on runs that used to hang forever; generous for a loaded machine.
const HANG: Duration = Duration::from_secs(10);

/// A FIFO under the root used to block `resolve` forever in `open(2)`. Now: `NOT_A_FILE`, at
/// once, for the FIFO and for a symlink to it, and the other URIs are not printed either.
#[cfg(unix)]
#[test]
fn a_fifo_is_not_a_file_and_resolve_returns() {
    let root = root();
    let status = std::process::Command::new("mkfifo")
        .arg(root.path().join("demo/pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    std::os::unix::fs::symlink("pipe", root.path().join("demo/to-pipe")).unwrap();
    for uri in ["file://demo/pipe", "file://demo/to-pipe"] {
        let run = resolve(root.path(), &["file://demo/db.json#password", uri])
            .run_within(HANG)
            .unwrap_or_else(|| panic!("`secrets resolve {uri}` did not return within {HANG:?}"));
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (
                1,
                "",
                "NOT_A_FILE: URI 2 (file://demo/…): file: mount `demo`: not a regular file\n"
            ),
            "{uri}"
        );
        run.assert_hidden(&[CANARY], false);
    }
}

/// A parameter the provider does not serve (`?verison=2`) is refused before any I/O: the
/// vault behind both schemes sees no connection at all, so a typo can neither read the latest
/// version silently nor spend a login.
#[test]
fn an_unknown_parameter_fails_and_touches_no_server() {
    let token = "s.token-canary-7c1d2e";
    let server = FaultServer::start(vec![Fault::json(
        200,
        &json!({"data": {"data": {"token": CANARY}, "metadata": {"version": 2}}}),
    )])
    .unwrap();
    let root = root();
    for (uri, code_line) in [
        (
            "openbao+kv2://secret/app/api?verison=2#token",
            "UNKNOWN_PARAMETER: URI 1 (openbao+kv2://secret/…): openbao: unknown query parameter \
             `verison` in mount `secret`; this provider serves `version`\n",
        ),
        (
            "hashicorp+kv2://secret/app/api#token?Version=2",
            "UNKNOWN_PARAMETER: URI 1 (hashicorp+kv2://secret/…): hashicorp: unknown query \
             parameter `Version` in mount `secret`; this provider serves `version`\n",
        ),
        (
            "file://demo/db.json?version=1#password",
            "UNKNOWN_PARAMETER: URI 1 (file://demo/…): file: unknown query parameter `version` in \
             mount `demo`; this provider serves no parameters\n",
        ),
    ] {
        check(
            &resolve(root.path(), &[uri])
                .env("OPENBAO_URL", server.addr())
                .env("OPENBAO_TOKEN", token)
                .env("VAULT_URL", server.addr())
                .env("VAULT_TOKEN", token),
            1,
            "",
            code_line,
            &[token, "app/api"],
        );
    }
    assert_eq!(server.request_count(), 0, "{:?}", server.requests());
    assert_eq!(server.connection_count(), 0);
}

#[test]
fn a_yaml_file_by_dotted_path() {
    let root = root();
    std::fs::write(
        root.path().join("demo/app.yaml"),
        format!("db:\n  password: {CANARY}\n  port: 5432\nservers:\n  - token: {OTHER}\n"),
    )
    .unwrap();
    check(
        &resolve(
            root.path(),
            &[
                "yaml://demo/app.yaml#db.password",
                "yaml://demo/app.yaml#db.port",
            ],
        ),
        0,
        &format!("{CANARY}\n5432\n"),
        "",
        &[OTHER],
    );
    check(
        &resolve(root.path(), &["yaml://demo/app.yaml#servers.1.token"]),
        1,
        "",
        "KEY_NOT_FOUND: URI 1 (yaml://demo/…): yaml: the secret in mount `demo` has no such key\n",
        &[OTHER],
    );
}
