//! `secrets exec`: variables reach the command, its exit status is ours, nothing runs when a
//! secret fails, and values never reach our stdout or stderr (also with `RUST_LOG=trace`).
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use crate::common::cli::{Invocation, Run, secrets};
use secrets_test_support::openbao_or_skip;
use serde_json::json;

/// A value that must reach the command's environment and nothing else.
const CANARY: &str = "canary-9b74c9897b";

/// A work dir with `secrets/demo/db.json`; the command runs in it.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("secrets/demo");
    std::fs::create_dir_all(&demo).unwrap();
    std::fs::write(
        demo.join("db.json"),
        format!(r#"{{"password":"{CANARY}","user":"app","port":5432}}"#),
    )
    .unwrap();
    dir
}

/// `secrets exec --file-root secrets FLAGS… -- sh -c SCRIPT`, run in `dir`.
fn exec(dir: &Path, flags: &[&str], script: &str) -> Invocation {
    let mut args = vec!["exec", "--file-root", "secrets"];
    args.extend(flags);
    args.extend(["--", "sh", "-c", script]);
    secrets(args).dir(dir)
}

/// Runs plain and traced; asserts the plain run's exit code and streams, and that `CANARY`
/// reaches neither stream of either run.
fn check(secrets: &Invocation, code: i32, stdout: &str, stderr: &str) -> Run {
    let (plain, traced) = secrets.run_traced();
    assert_eq!(
        (plain.code, plain.stdout.as_str(), plain.stderr.as_str()),
        (code, stdout, stderr),
        "{plain:?}"
    );
    plain.assert_hidden(&[CANARY], false);
    traced.assert_hidden(&[CANARY], false);
    traced
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn passes_the_variables_and_the_exit_code() {
    let dir = workdir();
    let traced = check(
        &exec(
            dir.path(),
            &["--env", "DB_PASSWORD=file://demo/db.json#password"],
            r#"printf "%s" "$DB_PASSWORD" > out; exit 7"#,
        ),
        7,
        "",
        "",
    );
    assert_eq!(read(&dir.path().join("out")), CANARY);
    // The logs were on (and the command's output, had it written any, would follow them).
    assert!(traced.stderr.contains("secret_resolve"), "{traced:?}");
}

#[test]
fn a_json_value_is_compact_json_and_plain_values_pass_through() {
    let dir = workdir();
    check(
        &exec(
            dir.path(),
            &[
                "--env",
                "DB=FILE://demo/db.json",
                "--env",
                "PORT=file://demo/db.json#port",
                "--env",
                "URL=https://example.com/?u=file://demo/db.json",
                "--env",
                "EMPTY=",
            ],
            r#"printf "%s|%s|%s|%s" "$DB" "$PORT" "$URL" "${EMPTY-unset}" > out"#,
        ),
        0,
        "",
        "",
    );
    assert_eq!(
        read(&dir.path().join("out")),
        format!(
            r#"{{"password":"{CANARY}","port":5432,"user":"app"}}|5432|https://example.com/?u=file://demo/db.json|"#
        )
    );
}

#[test]
fn a_failing_uri_does_not_run_the_command() {
    let dir = workdir();
    check(
        &exec(
            dir.path(),
            &[
                "--env",
                "DB_PASSWORD=file://demo/db.json#password",
                "--env",
                "API_KEY=file://demo/missing#key",
                "--env",
                "TOKEN=openbao+kv2://secret/app#token",
                "--env",
                "ENGINE=openbao+kv9://secret/app#token",
            ],
            "touch marker",
        ),
        1,
        "",
        "NOT_FOUND: API_KEY (file://demo/…): file: secret not found in mount `demo`\n\
         NOT_CONFIGURED: TOKEN (openbao+kv2://secret/…): openbao: no vault is configured for \
         this scheme (no bootstrap found; tried SECRETS_BOOTSTRAP_PATH (not set), \
         /vault/secrets/bootstrap.json (not found), OPENBAO_URL/OPENBAO_ADDR/BAO_ADDR \
         and VAULT_URL/VAULT_ADDR (not set))\n\
         secrets exec: warning: ENGINE: not a valid secret URI (UNSUPPORTED_ENGINE); the value \
         is passed through unchanged\n",
    );
    assert!(!dir.path().join("marker").exists());
}

#[test]
fn the_mount_guard_and_configuration_errors_stop_the_command() {
    let dir = workdir();
    let flags = ["--env", "DB_PASSWORD=file://demo/db.json#password"];
    check(
        &exec(dir.path(), &flags, "touch marker").env("SECRETS_ALLOWED_MOUNTS", "prod"),
        1,
        "",
        "TENANT_MOUNT_MISMATCH: DB_PASSWORD (file://demo/…): tenant mount mismatch: mount \
         `demo` is not in the allowed mounts\n",
    );
    check(
        &exec(dir.path(), &flags, "touch marker").env("SECRETS_ALLOWED_MOUNTS", ""),
        2,
        "",
        "CONFIG: invalid configuration: SECRETS_ALLOWED_MOUNTS is empty; list the mounts this \
         service may read\n",
    );
    assert!(!dir.path().join("marker").exists());
    // The flag wins over the environment.
    let mut flags = flags.to_vec();
    flags.extend(["--allowed-mounts", "demo"]);
    check(
        &exec(dir.path(), &flags, "touch marker").env("SECRETS_ALLOWED_MOUNTS", "prod"),
        0,
        "",
        "",
    );
    assert!(dir.path().join("marker").exists());
}

#[test]
fn env_files_with_comments_quotes_and_export() {
    let dir = workdir();
    std::fs::write(
        dir.path().join("app.env"),
        "# database\n\
         \n\
         export DB_PASSWORD=file://demo/db.json#password\n\
         DB_USER = \"file://demo/db.json#user\"  # quoted\n\
         MODE='dev # not a comment'\n\
         GREETING=hello world\n\
         OVERRIDDEN=file://demo/missing\n\
         \x20\x20# indented comment\r\n\
         PORT=file://demo/db.json#port\r\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("second.env"), "GREETING=bonjour\n").unwrap();
    check(
        &exec(
            dir.path(),
            &[
                "--env-file",
                "app.env",
                "--env-file",
                "second.env",
                "--env",
                "OVERRIDDEN=plain",
            ],
            r#"printf "%s|" "$DB_PASSWORD" "$DB_USER" "$MODE" "$GREETING" "$OVERRIDDEN" "$PORT" > out"#,
        ),
        0,
        "",
        "",
    );
    assert_eq!(
        read(&dir.path().join("out")),
        format!("{CANARY}|app|dev # not a comment|bonjour|plain|5432|")
    );
}

#[test]
fn a_malformed_env_file_or_flag_is_a_usage_error() {
    let dir = workdir();
    // A plain value on a line of its own: a typo, and maybe a secret.
    std::fs::write(
        dir.path().join("bad.env"),
        format!("A=1\n\n{CANARY}\nB=2\n"),
    )
    .unwrap();
    check(
        &exec(dir.path(), &["--env-file", "bad.env"], "touch marker"),
        2,
        "",
        "secrets exec: bad.env:3: expected NAME=VALUE\n",
    );
    std::fs::write(
        dir.path().join("name.env"),
        format!("DB-PASSWORD={CANARY}\n"),
    )
    .unwrap();
    check(
        &exec(dir.path(), &["--env-file", "name.env"], "touch marker"),
        2,
        "",
        "secrets exec: name.env:1: the variable name must match [A-Za-z_][A-Za-z0-9_]*\n",
    );
    std::fs::write(dir.path().join("quote.env"), format!("A=\"{CANARY}\n")).unwrap();
    check(
        &exec(dir.path(), &["--env-file", "quote.env"], "touch marker"),
        2,
        "",
        "secrets exec: quote.env:1: the quoted value has no closing quote on its line\n",
    );
    check(
        &exec(
            dir.path(),
            &["--env", "A=1", "--env", CANARY],
            "touch marker",
        ),
        2,
        "",
        "secrets exec: --env value 2: expected NAME=VALUE\n",
    );
    check(
        &exec(
            dir.path(),
            &["--env", &format!("1A={CANARY}")],
            "touch marker",
        ),
        2,
        "",
        "secrets exec: --env value 1: the variable name must match [A-Za-z_][A-Za-z0-9_]*\n",
    );
    check(
        &exec(dir.path(), &["--env-file", "missing.env"], "touch marker"),
        2,
        "",
        "secrets exec: missing.env: No such file or directory (os error 2)\n",
    );
    assert!(!dir.path().join("marker").exists());
}

#[test]
fn the_command_is_required_after_the_separator() {
    let run = secrets(["exec", "--env", "A=1"]).run();
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("<CMD>..."), "{run:?}");
}

#[test]
fn a_missing_command_exits_127_and_a_non_executable_one_126() {
    let dir = workdir();
    let flags = ["--env", "DB_PASSWORD=file://demo/db.json#password"];
    let run = |command: &str| {
        let mut args = vec!["exec", "--file-root", "secrets"];
        args.extend(flags);
        args.extend(["--", command, "arg"]);
        secrets(args).dir(dir.path())
    };
    check(
        &run("no-such-command-4f1e"),
        127,
        "",
        "secrets exec: cannot run `no-such-command-4f1e`: No such file or directory (os error 2)\n",
    );
    std::fs::write(dir.path().join("script"), "#!/bin/sh\ntouch marker\n").unwrap();
    check(
        &run("./script"),
        126,
        "",
        "secrets exec: cannot run `./script`: Permission denied (os error 13)\n",
    );
    assert!(!dir.path().join("marker").exists());
}

#[test]
fn the_command_inherits_the_environment_stdin_and_stdout() {
    let dir = workdir();
    check(
        &exec(
            dir.path(),
            &["--env", "REPLACED=file://demo/db.json#user"],
            r#"cat > in; printf "%s|%s" "$INHERITED" "$REPLACED""#,
        )
        .env("INHERITED", "kept")
        .env("REPLACED", "old")
        .stdin(b"from stdin"),
        0,
        "kept|app",
        "",
    );
    assert_eq!(read(&dir.path().join("in")), "from stdin");
}

/// The command gets the secrets it was given, not the vault credential to read others.
#[test]
fn vault_credentials_are_not_passed_on_unless_asked() {
    let dir = workdir();
    let script = r#"printf "%s|%s|%s" "${VAULT_TOKEN-unset}" "${SECRET_TENANT_SALT-unset}" "$U""#;
    check(
        &exec(dir.path(), &["--env", "U=file://demo/db.json#user"], script)
            .env("VAULT_TOKEN", "s.parent-token")
            .env("SECRET_TENANT_SALT", "parent-salt-0123456789abcdef"),
        0,
        "unset|unset|app",
        "",
    );
    check(
        &exec(
            dir.path(),
            &["--keep-credentials", "--env", "U=file://demo/db.json#user"],
            script,
        )
        .env("VAULT_TOKEN", "s.parent-token")
        .env("SECRET_TENANT_SALT", "parent-salt-0123456789abcdef"),
        0,
        "s.parent-token|parent-salt-0123456789abcdef|app",
        "",
    );
}

/// `exec` replaces the process: the command has our pid, and a signal that kills it is how
/// our process ends (no wrapper that would turn it into an exit code).
#[test]
fn the_command_replaces_the_process() {
    let dir = workdir();
    let secrets = exec(
        dir.path(),
        &["--env", "DB_PASSWORD=file://demo/db.json#password"],
        "echo $$ > pid; kill -TERM $$",
    );
    let mut command = secrets.command();
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    assert_eq!(read(&dir.path().join("pid")).trim(), pid.to_string());
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&output.status),
        Some(15)
    );
    assert_eq!(output.stderr, b"");
    let traced = secrets.clone().env("RUST_LOG", "trace").run();
    assert_eq!(traced.signal, Some(15), "{traced:?}");
    traced.assert_hidden(&[CANARY], false);
}

/// File URLs pass through silently, and values that look like secret URIs but do not parse
/// with a warning naming the variable. Every provider the grammar names is served now
/// (`bootstrap://` was the last one passed through), so no valid secret URI passes through.
#[test]
fn file_urls_and_malformed_uris_pass_through() {
    let dir = workdir();
    let values = [
        ("REPO", "file:///srv/repo"),
        ("LOCAL", "FILE:///home/app/.config"),
        ("TYPO", "openbao+kv9://secret/typo-path"),
        ("BOOT", "bootstrap+x://local/boot-path"),
        ("GLOB", "file://demo/glob-*"),
        ("PASSWORD", "file://demo/db.json#password"),
    ];
    let mut flags = Vec::new();
    let assignments: Vec<String> = values.iter().map(|(n, v)| format!("{n}={v}")).collect();
    for assignment in &assignments {
        flags.extend(["--env", assignment.as_str()]);
    }
    let script =
        r#"printf "%s|%s|%s|%s|%s|%s" "$REPO" "$LOCAL" "$TYPO" "$BOOT" "$GLOB" "$PASSWORD" > out"#;
    let run = check(
        &exec(dir.path(), &flags, script),
        0,
        "",
        "secrets exec: warning: TYPO: not a valid secret URI (UNSUPPORTED_ENGINE); the value is \
         passed through unchanged\n\
         secrets exec: warning: BOOT: not a valid secret URI (UNSUPPORTED_ENGINE); the value is \
         passed through unchanged\n\
         secrets exec: warning: GLOB: not a valid secret URI (INVALID_WILDCARD); the value is \
         passed through unchanged\n",
    );
    // Warnings name variables, never values.
    run.assert_hidden(&["typo-path", "boot-path", "glob-", "srv/repo"], false);
    let passed: Vec<&str> = values[..5].iter().map(|(_, v)| *v).collect();
    assert_eq!(
        read(&dir.path().join("out")),
        format!("{}|{CANARY}", passed.join("|"))
    );

    // Values that are not resolved need no client: an unusable guard does not matter.
    check(
        &exec(
            dir.path(),
            &[
                "--env",
                "REPO=file:///srv/repo",
                "--env",
                "TYPO=openbao+kv9://secret/app",
            ],
            r#"printf "%s" "$REPO""#,
        )
        .env("SECRETS_ALLOWED_MOUNTS", ""),
        0,
        "file:///srv/repo",
        "secrets exec: warning: TYPO: not a valid secret URI (UNSUPPORTED_ENGINE); the value is \
         passed through unchanged\n",
    );
}

/// A loopback address where nothing listens.
fn dead_vault() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

#[test]
fn bootstrap_uris_get_the_bootstrap_files_values_without_a_vault() {
    let dir = workdir();
    std::fs::write(
        dir.path().join("bootstrap.json"),
        json!({
            "vault_addr": dead_vault(),
            "token": "bootstrap-token-hidden",
            "values": {"kafka_password": CANARY, "db": {"user": "app-user"}},
        })
        .to_string(),
    )
    .unwrap();
    let flags = [
        "--bootstrap",
        "bootstrap.json",
        "--env",
        "KAFKA=bootstrap://kafka_password",
        "--env",
        "DB_USER=BOOTSTRAP://db#user",
    ];
    check(
        &exec(
            dir.path(),
            &flags,
            r#"printf "%s|%s" "$KAFKA" "$DB_USER" > out"#,
        ),
        0,
        "",
        "",
    )
    .assert_hidden(&["bootstrap-token-hidden"], false);
    assert_eq!(read(&dir.path().join("out")), format!("{CANARY}|app-user"));

    // A name the file does not hold stops the command; so does a bootstrap without values.
    let mut missing = flags.to_vec();
    missing.extend(["--env", "NOPE=bootstrap://kafka/nope"]);
    check(
        &exec(dir.path(), &missing, "touch marker"),
        1,
        "",
        "NOT_FOUND: NOPE (bootstrap://kafka/…): bootstrap: secret not found in mount `kafka`\n",
    );
    check(
        &exec(dir.path(), &flags[2..], "touch marker"),
        1,
        "",
        "NOT_CONFIGURED: KAFKA (bootstrap://kafka_password): bootstrap: no bootstrap values are \
         configured (no bootstrap found; tried SECRETS_BOOTSTRAP_PATH (not set), \
         /vault/secrets/bootstrap.json (not found), OPENBAO_URL/OPENBAO_ADDR/BAO_ADDR and \
         VAULT_URL/VAULT_ADDR (not set))\n\
         NOT_CONFIGURED: DB_USER (bootstrap://db/…): bootstrap: no bootstrap values are \
         configured (no bootstrap found; tried SECRETS_BOOTSTRAP_PATH (not set), \
         /vault/secrets/bootstrap.json (not found), OPENBAO_URL/OPENBAO_ADDR/BAO_ADDR and \
         VAULT_URL/VAULT_ADDR (not set))\n",
    );
    assert!(!dir.path().join("marker").exists());
}

#[test]
fn plain_values_need_no_configuration() {
    let dir = workdir();
    // An invalid guard only matters once there is a secret to read.
    check(
        &exec(dir.path(), &["--env", "MODE=dev"], r#"printf "%s" "$MODE""#)
            .env("SECRETS_ALLOWED_MOUNTS", ""),
        0,
        "dev",
        "",
    );
}

#[test]
fn a_kv2_secret_from_a_real_openbao() {
    let Some(bao) = openbao_or_skip() else {
        return;
    };
    bao.kv_put(
        "secret",
        "cli/db",
        &json!({"password": CANARY, "port": 5432}),
    )
    .unwrap();
    let dir = workdir();
    let token = bao.root_token().to_owned();
    let traced = check(
        &exec(
            dir.path(),
            &[
                "--refresh",
                "--env",
                "DB_PASSWORD=openbao+kv2://secret/cli/db#password",
                "--env",
                "DB=hashicorp+kv2://secret/cli/db",
                "--env",
                "MISSING_OK=file://demo/db.json#user",
            ],
            r#"printf "%s|%s|%s" "$DB_PASSWORD" "$DB" "$MISSING_OK" > out; exit 3"#,
        )
        .env("OPENBAO_URL", bao.addr())
        .env("OPENBAO_TOKEN", &token),
        3,
        "",
        "",
    );
    assert_eq!(
        read(&dir.path().join("out")),
        format!(r#"{CANARY}|{{"password":"{CANARY}","port":5432}}|app"#)
    );
    assert!(traced.stderr.contains("secret_resolve"), "{traced:?}");
    traced.assert_hidden(&[&token], false);

    check(
        &exec(
            dir.path(),
            &[
                "--env",
                "DB_PASSWORD=openbao+kv2://secret/cli/nope#password",
            ],
            "touch marker",
        )
        .env("OPENBAO_URL", bao.addr())
        .env("OPENBAO_TOKEN", &token),
        1,
        "",
        "NOT_FOUND: DB_PASSWORD (openbao+kv2://secret/…): openbao: secret not found in mount \
         `secret` (HTTP 404)\n",
    );
    assert!(!dir.path().join("marker").exists());
}
