//! The `secrets` binary, every run with `RUST_LOG=trace` in a cleared environment: `resolve`,
//! `exec`, `get`, `audit-hash`, `uri parse`, `uri check` and `lint` over the same canaries,
//! successes and every failure. stdout may carry a secret's value only where it is the product
//! (`resolve`, `get`), a URI's path only where the URI is (`uri parse`/`check` of a valid URI);
//! stderr never carries a canary.

use std::time::Duration;

use secrets_test_support::cli::Invocation;
use secrets_test_support::{Fault, FaultServer};
use serde_json::json;

use super::fixtures::{FILE_MAX_BYTES, Fixtures, file, kv_path, limited_token};
use super::paths::{bad_uris, echo_body};
use super::run::Run;
use crate::common::cli::secrets;
use crate::common::kv2::lookup_never_expires;
use crate::common::leak::{BAD_TOKEN, Channel, Class, FILE, SECRET_ID, SEGMENT, TOKEN, VALUE};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Variables a run sets besides the defaults.
pub(crate) type Vars = Vec<(&'static str, String)>;
/// (name, variables, exit code).
pub(crate) type VarRun = (&'static str, Vars, i32);
/// (name, arguments, variables, exit code).
pub(crate) type ArgRun = (&'static str, Vec<String>, Vars, i32);
/// (name, URI, flags, variables, exit code, stdout).
pub(crate) type GetRun<'a> = (&'static str, String, Vec<&'a str>, Vars, i32, Out);

/// What a run must print on stdout.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Out {
    /// Exactly `VALUE\n`.
    Value,
    /// Something holding `VALUE` (a whole secret, a JSON string).
    HasValue,
    /// Anything (scanned without allowances unless the run allows).
    Any,
    /// Nothing.
    Empty,
}

/// One CLI run: its exit code is checked, stdout and stderr scanned.
pub(crate) struct Case<'a> {
    pub(crate) name: String,
    pub(crate) invocation: Invocation,
    pub(crate) exit: i32,
    pub(crate) out: Out,
    /// Classes allowed on stdout (the product).
    pub(crate) stdout_allows: &'a [Class],
    /// What to feed on stdin (then the run has no time limit: `run_within` feeds none).
    pub(crate) stdin: Option<Vec<u8>>,
}

pub(crate) fn check(run: &mut Run, case: Case<'_>) {
    let area = if run.cli_area.is_empty() {
        "cli"
    } else {
        run.cli_area
    };
    let path = run.path(format!("{area}/{}", case.name));
    let mut invocation = case.invocation.env("RUST_LOG", "trace");
    for (name, value) in &run.cli_env {
        invocation = invocation.env(name, value);
    }
    let result = match &case.stdin {
        Some(stdin) => invocation.stdin(stdin).run(),
        None => {
            let Some(result) = invocation.run_within(Duration::from_secs(60)) else {
                run.mismatch(&path, "did not finish within 60 s");
                return;
            };
            result
        }
    };
    if result.code != case.exit {
        run.mismatch(
            &path,
            format!(
                "exit {} instead of {}: {}",
                result.code,
                case.exit,
                tail(&result.stderr)
            ),
        );
    }
    let ok = match case.out {
        Out::Value => result.stdout == format!("{VALUE}\n"),
        Out::HasValue => result.stdout.contains(VALUE),
        Out::Any => true,
        Out::Empty => result.stdout.is_empty(),
    };
    if !ok {
        run.mismatch(
            &path,
            format!(
                "stdout is not {:?} ({} bytes)",
                case.out,
                result.stdout.len()
            ),
        );
    }
    run.scanner.scan(
        Channel::CliStdout,
        &path,
        &result.stdout,
        case.stdout_allows,
    );
    run.scanner
        .scan(Channel::CliStderr, &path, &result.stderr, &[]);
}

/// The last lines of a run's stderr, for a mismatch report (scanned like the rest: a leak
/// there is reported as such, not hidden in the mismatch).
fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    lines[lines.len().saturating_sub(3)..]
        .iter()
        .map(|l| l.chars().take(300).collect::<String>())
        .collect::<Vec<_>>()
        .join(" | ")
}

pub(crate) fn kv(prefix: &str, rest: &str) -> String {
    format!("openbao+kv2://secret/{}{rest}", kv_path(prefix))
}

/// `secrets resolve` with the file root and the vault (token from the environment).
pub(crate) fn resolve(fx: &Fixtures, args: &[&str], env: &[(&str, String)]) -> Invocation {
    let mut argv = vec![
        "resolve".to_owned(),
        "--file-root".to_owned(),
        fx.root().display().to_string(),
    ];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let mut invocation = secrets(argv)
        .env("FILE_MAX_BYTES", FILE_MAX_BYTES.to_string())
        .env("OPENBAO_URL", fx.bao.addr())
        .env("OPENBAO_TOKEN", TOKEN)
        .env("OPENBAO_RETRY_ATTEMPTS", "1")
        .env("OPENBAO_TIMEOUT", "2");
    for (name, value) in env {
        invocation = invocation.env(name, value);
    }
    invocation
}

/// Drives every CLI path.
pub(crate) fn drive(run: &mut Run, fx: &Fixtures) -> Result {
    resolves(run, fx)?;
    super::cli_exec::execs(run, fx)?;
    super::cli_get::gets(run, fx)?;
    super::cli_tools::others(run)?;
    Ok(())
}

fn resolves(run: &mut Run, fx: &Fixtures) -> Result {
    let value = [Class::Value];
    let ok = |name: &str, args: &[&str], out: Out| Case {
        name: format!("resolve {name}"),
        invocation: resolve(fx, args, &[]),
        exit: 0,
        out,
        stdout_allows: &value,
        stdin: None,
    };
    let field = Fixtures::file_uri(file::JSON, "#password");
    for case in [
        ok("file field", &[&field], Out::Value),
        ok(
            "file field as json",
            &["--format", "json", &field],
            Out::HasValue,
        ),
        ok(
            "file whole",
            &[&Fixtures::file_uri(file::JSON, "")],
            Out::HasValue,
        ),
        ok(
            "file text",
            &[&Fixtures::file_uri(file::TEXT, "")],
            Out::Value,
        ),
        ok(
            "file twice, refreshed",
            &["--refresh", &field, &field],
            Out::HasValue,
        ),
        ok("kv2 field", &[&kv("", "#token")], Out::Value),
        ok("kv2 whole", &[&kv("", "")], Out::HasValue),
        ok(
            "kv2 pinned version",
            &[&kv("", "#token?version=3")],
            Out::Value,
        ),
        ok("file and kv2", &[&field, &kv("", "#token")], Out::HasValue),
    ] {
        check(run, case);
    }
    let failing = |name: &str, uri: &str| Case {
        name: format!("resolve {name}"),
        invocation: resolve(fx, &[uri, &field], &[]),
        exit: 1,
        out: Out::Empty,
        stdout_allows: &[],
        stdin: None,
    };
    let mut uris: Vec<(String, String)> = vec![
        ("file missing".into(), Fixtures::file_uri("-absent", "")),
        (
            "file missing key".into(),
            Fixtures::file_uri(file::JSON, "#missing"),
        ),
        (
            "file key of text".into(),
            Fixtures::file_uri(file::TEXT, "#password"),
        ),
        ("file fifo".into(), Fixtures::file_uri(file::FIFO, "")),
        ("file socket".into(), Fixtures::file_uri(file::SOCKET, "")),
        ("file too large".into(), Fixtures::file_uri(file::BIG, "")),
        (
            "file symlink escape".into(),
            Fixtures::file_uri(file::ESCAPE, ""),
        ),
        (
            "file symlink to /dev/null".into(),
            Fixtures::file_uri(file::DEVNULL, ""),
        ),
        ("file directory".into(), Fixtures::file_uri(file::DIR, "")),
        (
            "file malformed json".into(),
            Fixtures::file_uri(file::BAD_JSON, "#password"),
        ),
        (
            "file not utf-8".into(),
            Fixtures::file_uri(file::BINARY, ""),
        ),
        (
            "file query".into(),
            Fixtures::file_uri(file::JSON, "?version=2"),
        ),
        ("kv2 missing key".into(), kv("", "#missing")),
        ("kv2 version destroyed".into(), kv("", "#token?version=1")),
        ("kv2 version deleted".into(), kv("", "#token?version=2")),
        (
            "kv2 404".into(),
            format!("openbao+kv2://secret/{SEGMENT}/{FILE}-absent"),
        ),
        ("kv2 unknown parameter".into(), kv("", "?n=1")),
        (
            "unsupported provider".into(),
            format!("db+cred://demo/{SEGMENT}/{FILE}"),
        ),
    ];
    for (uri, code) in bad_uris("file", "demo") {
        uris.push((format!("bad uri {code} {}", uris.len()), uri));
    }
    for (name, uri) in &uris {
        check(run, failing(name, uri));
    }
    // The guard from the environment.
    check(
        run,
        Case {
            name: "resolve outside the allowed mounts".into(),
            invocation: resolve(
                fx,
                &[&field],
                &[("SECRETS_ALLOWED_MOUNTS", "secret".to_owned())],
            ),
            exit: 1,
            out: Out::Empty,
            stdout_allows: &[],
            stdin: None,
        },
    );
    // Other credentials and vaults.
    let down = format!("http://127.0.0.1:{}", secrets_test_support::free_port()?);
    let hang = FaultServer::start(vec![lookup_never_expires(), Fault::Hang])?;
    let echo = FaultServer::start(vec![lookup_never_expires(), Fault::json(500, &echo_body())])?;
    let echo_403 = FaultServer::start(vec![Fault::json(403, &echo_body())])?;
    let malformed = FaultServer::start(vec![
        lookup_never_expires(),
        Fault::json(200, &json!({"data": {"data": VALUE}})),
    ])?;
    let approle = |secret_id: &str| {
        vec![
            ("OPENBAO_TOKEN", String::new()),
            ("OPENBAO_AUTH_METHOD", "approle".to_owned()),
            ("OPENBAO_ROLE_ID", fx.role_id.clone()),
            ("OPENBAO_SECRET_ID", secret_id.to_owned()),
        ]
    };
    let ca = fx.tls.ca_cert_path().ok_or("the TLS vault has no CA")?;
    let jwt = fx.outside.path().join("cli-service-account-token");
    std::fs::write(&jwt, format!("{TOKEN}.{TOKEN}.{TOKEN}\n"))?;
    let vaults: Vec<VarRun> = vec![
        ("approle", approle(SECRET_ID), 0),
        (
            "tls with its CA",
            vec![
                ("OPENBAO_URL", fx.tls.addr()),
                ("OPENBAO_CACERT", ca.display().to_string()),
            ],
            0,
        ),
        (
            "tls without its CA",
            vec![("OPENBAO_URL", fx.tls.addr())],
            1,
        ),
        (
            "kubernetes",
            vec![
                ("OPENBAO_TOKEN", String::new()),
                ("OPENBAO_AUTH_METHOD", "kubernetes".to_owned()),
                ("OPENBAO_KUBERNETES_ROLE", "lk-role".to_owned()),
                ("OPENBAO_KUBERNETES_JWT_FILE", jwt.display().to_string()),
            ],
            1,
        ),
        (
            "approle wrong secret id",
            approle(&format!("{SECRET_ID}-wrong")),
            1,
        ),
        (
            "bad token",
            vec![("OPENBAO_TOKEN", BAD_TOKEN.to_owned())],
            1,
        ),
        ("limited token", vec![("OPENBAO_TOKEN", limited_token())], 1),
        ("vault down", vec![("OPENBAO_URL", down)], 1),
        (
            "vault never answers",
            vec![
                ("OPENBAO_URL", hang.addr()),
                ("OPENBAO_TIMEOUT", "0.3".to_owned()),
            ],
            1,
        ),
        (
            "vault echoes the canaries",
            vec![("OPENBAO_URL", echo.addr())],
            1,
        ),
        (
            "vault refuses the token, echoing",
            vec![("OPENBAO_URL", echo_403.addr())],
            1,
        ),
        (
            "vault malformed answer",
            vec![("OPENBAO_URL", malformed.addr())],
            1,
        ),
        (
            "timeout holds the token",
            vec![("OPENBAO_TIMEOUT", TOKEN.to_owned())],
            2,
        ),
        (
            "retries hold the token",
            vec![("OPENBAO_RETRY_ATTEMPTS", TOKEN.to_owned())],
            2,
        ),
        (
            "address holds the token",
            vec![("OPENBAO_URL", format!("http://user:{TOKEN}@127.0.0.1:1"))],
            2,
        ),
        (
            "address is the token",
            vec![("OPENBAO_URL", TOKEN.to_owned())],
            2,
        ),
        (
            "auth method is the token",
            vec![("OPENBAO_AUTH_METHOD", TOKEN.to_owned())],
            2,
        ),
        (
            "file cap is the token",
            vec![("FILE_MAX_BYTES", TOKEN.to_owned())],
            2,
        ),
        (
            "deadline is the token",
            vec![("SECRETS_RESOLVE_DEADLINE_S", TOKEN.to_owned())],
            2,
        ),
    ];
    for (name, env, exit) in vaults {
        check(
            run,
            Case {
                name: format!("resolve {name}"),
                invocation: resolve(fx, &[&kv("", "#token")], &env),
                exit,
                out: if exit == 0 { Out::Value } else { Out::Empty },
                stdout_allows: &value,
                stdin: None,
            },
        );
    }
    // Bootstrap files.
    let good = fx.outside.path().join("cli-bootstrap.json");
    std::fs::write(
        &good,
        json!({"vault_addr": fx.bao.addr(), "token": TOKEN}).to_string(),
    )?;
    let bad = fx.outside.path().join("cli-bad-bootstrap.json");
    std::fs::write(
        &bad,
        format!(
            "{{\"vault_addr\": \"{}\", \"token\": \"{TOKEN}",
            fx.bao.addr()
        ),
    )?;
    let wrong_type = fx.outside.path().join("cli-typed-bootstrap.json");
    std::fs::write(
        &wrong_type,
        json!({"vault_addr": fx.bao.addr(), "auth_method": TOKEN}).to_string(),
    )?;
    for (name, file, exit) in [
        ("bootstrap file", &good, 0),
        ("malformed bootstrap file", &bad, 2),
        ("bootstrap field holds the token", &wrong_type, 2),
    ] {
        check(
            run,
            Case {
                name: format!("resolve {name}"),
                invocation: resolve(
                    fx,
                    &[
                        "--bootstrap",
                        &file.display().to_string(),
                        &kv("", "#token"),
                    ],
                    &[("OPENBAO_TOKEN", String::new())],
                ),
                exit,
                out: if exit == 0 { Out::Value } else { Out::Empty },
                stdout_allows: &value,
                stdin: None,
            },
        );
    }
    Ok(())
}
