//! The `secrets` binary, every run with `RUST_LOG=trace` in a cleared environment: `resolve`,
//! `exec`, `get`, `audit-hash`, `uri parse`, `uri check` and `lint` over the same canaries,
//! successes and every failure. stdout may carry a secret's value only where it is the product
//! (`resolve`, `get`), a URI's path only where the URI is (`uri parse`/`check` of a valid URI);
//! stderr never carries a canary.

use std::path::Path;
use std::time::Duration;

use secrets_test_support::cli::Invocation;
use secrets_test_support::{Fault, FaultServer};
use serde_json::json;

use super::fixtures::{FILE_MAX_BYTES, Fixtures, file, kv_path, limited_token};
use super::paths::{bad_uris, echo_body, echo_text};
use super::run::Run;
use crate::common::cli::secrets;
use crate::common::kv2::lookup_never_expires;
use crate::common::leak::{
    BAD_TOKEN, Channel, Class, FILE, JKT, JTI, PDP_TOKEN, SALT, SECRET_ID, SEGMENT, SUBJECT, TOKEN,
    VALUE, X5T,
};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Variables a run sets besides the defaults.
type Vars = Vec<(&'static str, String)>;
/// (name, variables, exit code).
type VarRun = (&'static str, Vars, i32);
/// (name, arguments, variables, exit code).
type ArgRun = (&'static str, Vec<String>, Vars, i32);
/// (name, URI, flags, variables, exit code, stdout).
type GetRun<'a> = (&'static str, String, Vec<&'a str>, Vars, i32, Out);

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

fn kv(prefix: &str, rest: &str) -> String {
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
    execs(run, fx)?;
    gets(run, fx)?;
    others(run)?;
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

fn exec(fx: &Fixtures, args: &[String], env: &[(&str, String)], script: &str) -> Invocation {
    let mut argv = vec![
        "exec".to_owned(),
        "--file-root".to_owned(),
        fx.root().display().to_string(),
    ];
    argv.extend(args.iter().cloned());
    argv.extend([
        "--".to_owned(),
        "sh".to_owned(),
        "-c".to_owned(),
        script.to_owned(),
    ]);
    let mut invocation = secrets(argv)
        .env("OPENBAO_URL", fx.bao.addr())
        .env("OPENBAO_TOKEN", TOKEN)
        .env("OPENBAO_RETRY_ATTEMPTS", "1");
    for (name, value) in env {
        invocation = invocation.env(name, value);
    }
    invocation
}

fn execs(run: &mut Run, fx: &Fixtures) -> Result {
    let out = fx.outside.path().join("exec-out");
    let write = "printf %s \"$LK\" > \"$OUT\"";
    let out_arg = format!("OUT={}", out.display());
    let field = Fixtures::file_uri(file::JSON, "#password");
    // The value reaches the command's environment (read back from the file it wrote).
    for (name, uri) in [("file", field.clone()), ("kv2", kv("", "#token"))] {
        let _ = std::fs::remove_file(&out);
        check(
            run,
            Case {
                name: format!("exec {name} into the environment"),
                invocation: exec(
                    fx,
                    &[
                        "--env".into(),
                        format!("LK={uri}"),
                        "--env".into(),
                        out_arg.clone(),
                    ],
                    &[],
                    write,
                ),
                exit: 0,
                out: Out::Empty,
                stdout_allows: &[],
                stdin: None,
            },
        );
        let got = std::fs::read_to_string(&out).unwrap_or_default();
        if got != VALUE {
            run.mismatch(
                &format!("cli/exec {name}"),
                "the command did not get the value",
            );
        }
    }
    let env_file = fx.outside.path().join("lk.env");
    std::fs::write(
        &env_file,
        format!(
            "# the canaries\nLK={field}\nOTHER={}\nPLAIN={VALUE}\n",
            kv("", "#token")
        ),
    )?;
    check(
        run,
        Case {
            name: "exec env file".into(),
            invocation: exec(
                fx,
                &[
                    "--env-file".into(),
                    env_file.display().to_string(),
                    "--env".into(),
                    out_arg.clone(),
                ],
                &[],
                write,
            ),
            exit: 0,
            out: Out::Empty,
            stdout_allows: &[],
            stdin: None,
        },
    );
    let bad_file = fx.outside.path().join("lk-bad.env");
    std::fs::write(
        &bad_file,
        format!(
            "LK={field}\nBAD NAME={VALUE}\n{TOKEN}\nQUOTED=\"{VALUE}\nAFTER=\"{VALUE}\" {TOKEN}\n"
        ),
    )?;
    let failing: Vec<ArgRun> = vec![
        (
            "exec malformed env file",
            vec!["--env-file".into(), bad_file.display().to_string()],
            vec![],
            2,
        ),
        (
            "exec bad flag",
            vec!["--env".into(), format!("BAD NAME={VALUE}")],
            vec![],
            2,
        ),
        (
            "exec flag without =",
            vec!["--env".into(), TOKEN.to_owned()],
            vec![],
            2,
        ),
        (
            "exec missing file",
            vec![
                "--env".into(),
                format!("LK={}", Fixtures::file_uri("-absent", "")),
            ],
            vec![],
            1,
        ),
        (
            "exec bad uri",
            vec![
                "--env".into(),
                format!("LK=file://demo/{SEGMENT}/../{FILE}"),
            ],
            vec![],
            0,
        ),
        (
            "exec wildcard passes through",
            vec!["--env".into(), format!("LK=file://demo/{SEGMENT}/*")],
            vec![],
            0,
        ),
        (
            "exec unserved passes through",
            vec![
                "--env".into(),
                format!("LK=db+cred://demo/{SEGMENT}/{FILE}"),
            ],
            vec![],
            0,
        ),
        (
            "exec NUL in the value",
            vec![
                "--env".into(),
                format!("LK={}", Fixtures::file_uri(file::NUL, "")),
            ],
            vec![],
            1,
        ),
        (
            "exec vault refuses",
            vec!["--env".into(), format!("LK={}", kv("", "#token"))],
            vec![("OPENBAO_TOKEN", limited_token())],
            1,
        ),
        (
            "exec vault token kept",
            vec![
                "--keep-credentials".into(),
                "--env".into(),
                format!("LK={}", kv("", "#token")),
            ],
            vec![],
            0,
        ),
    ];
    for (name, args, env, exit) in failing {
        check(
            run,
            Case {
                name: name.into(),
                invocation: exec(fx, &args, &env, "true"),
                exit,
                out: Out::Empty,
                stdout_allows: &[],
                stdin: None,
            },
        );
    }
    // A command that cannot be found.
    let mut argv = vec![
        "exec".to_owned(),
        "--file-root".to_owned(),
        fx.root().display().to_string(),
    ];
    argv.extend([
        "--env".to_owned(),
        format!("LK={field}"),
        "--".to_owned(),
        "/nonexistent-lk/command".to_owned(),
    ]);
    check(
        run,
        Case {
            name: "exec command not found".into(),
            invocation: secrets(argv),
            exit: 127,
            out: Out::Empty,
            stdout_allows: &[],
            stdin: None,
        },
    );
    Ok(())
}

fn get_env(fx: &Fixtures) -> Vec<(&'static str, String)> {
    vec![
        ("VAULT_URL", fx.bao.addr()),
        ("VAULT_TOKEN", TOKEN.to_owned()),
        ("VAULT_RETRY_ATTEMPTS", "1".to_owned()),
        ("TENANT_ID", "t1".to_owned()),
        ("TENANT_ALLOWED_MOUNTS", "secret".to_owned()),
        ("SECRET_TENANT_SALT", SALT.to_owned()),
        ("AUTHZEN_PDP_URL", fx.cerbos.addr()),
        ("AUTHZEN_DIALECT", "cerbos".to_owned()),
        ("AUTHZEN_PDP_TOKEN", PDP_TOKEN.to_owned()),
    ]
}

fn get(fx: &Fixtures, uri: &str, flags: &[&str], env: &[(&str, String)]) -> Invocation {
    let mut argv: Vec<String> = vec![
        "get".into(),
        uri.into(),
        "--subject".into(),
        SUBJECT.into(),
        "--role".into(),
        "reader".into(),
    ];
    argv.extend(flags.iter().map(|f| (*f).to_owned()));
    let mut vars = get_env(fx);
    for (name, value) in env {
        vars.retain(|(k, _)| k != name);
        vars.push((name, value.clone()));
    }
    vars.into_iter()
        .fold(secrets(argv), |inv, (k, v)| inv.env(k, v))
}

fn gets(run: &mut Run, fx: &Fixtures) -> Result {
    let value = [Class::Value];
    let jti = |n: u32| format!("{JTI}-cli-{n}");
    let field = kv("", "#token");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let (expired, soon, far) = (
        (now - 3600).to_string(),
        (now + 600).to_string(),
        (now + 30 * 86_400).to_string(),
    );
    let aud = "crud.secrets";
    let down = format!("http://127.0.0.1:{}", secrets_test_support::free_port()?);
    let pdp_hang = FaultServer::start(vec![Fault::Hang])?;
    let pdp_echo = FaultServer::start(vec![Fault::json(500, &echo_body())])?;
    let pdp_deny = FaultServer::start(vec![Fault::json(
        200,
        &json!({"decision": false, "context": {"reason_admin": {"en": echo_text()}}}),
    )])?;
    let approle = |secret_id: &str| {
        vec![
            ("VAULT_TOKEN", String::new()),
            ("VAULT_AUTH_METHOD", "approle".to_owned()),
            ("VAULT_ROLE_ID", fx.role_id.clone()),
            ("VAULT_SECRET_ID", secret_id.to_owned()),
        ]
    };
    let generic = |addr: String| {
        vec![
            ("AUTHZEN_PDP_URL", addr),
            ("AUTHZEN_DIALECT", "generic".to_owned()),
            ("AUTHZEN_DISCOVERY", "false".to_owned()),
            ("AUTHZEN_TIMEOUT_MS", "300".to_owned()),
        ]
    };
    let (j1, j2, j3, j4, j5, j6, j7, j8, j9) = (
        jti(1),
        jti(2),
        jti(3),
        jti(4),
        jti(5),
        jti(6),
        jti(7),
        jti(8),
        jti(9),
    );
    let runs: Vec<GetRun<'_>> = vec![
        (
            "field",
            field.clone(),
            vec!["--aud", aud, "--jti", &j1, "--cnf-jkt", JKT],
            vec![],
            0,
            Out::Value,
        ),
        (
            "field as json",
            field.clone(),
            vec!["--aud", aud, "--jti", &j2, "--format", "json"],
            vec![],
            0,
            Out::HasValue,
        ),
        (
            "whole",
            kv("", ""),
            vec!["--aud", aud, "--jti", &j3, "--mtls-thumbprint", X5T],
            vec![],
            0,
            Out::HasValue,
        ),
        (
            "seven",
            kv("seven/", "#token"),
            vec![
                "--aud",
                aud,
                "--jti",
                &j4,
                "--issuer",
                "https://issuer.test",
            ],
            vec![],
            0,
            Out::Value,
        ),
        (
            "with exp",
            field.clone(),
            vec!["--aud", aud, "--jti", &j5, "--exp", &soon],
            vec![],
            0,
            Out::Value,
        ),
        (
            "expired",
            field.clone(),
            vec!["--aud", aud, "--jti", &j6, "--exp", &expired],
            vec![],
            1,
            Out::Empty,
        ),
        (
            "token lives too long",
            field.clone(),
            vec!["--aud", aud, "--jti", &j7, "--exp", &far],
            vec![],
            1,
            Out::Empty,
        ),
        (
            "approle",
            field.clone(),
            vec!["--aud", aud, "--jti", &j8],
            approle(SECRET_ID),
            0,
            Out::Value,
        ),
        (
            "warm grant",
            field.clone(),
            vec!["--aud", aud, "--jti", &j9],
            vec![("GRANT_MAX_USES_DEFAULT", "5".to_owned())],
            0,
            Out::Value,
        ),
        (
            "pdp deny",
            kv("denied/", "#token"),
            vec!["--aud", aud, "--jti", &j1],
            vec![],
            1,
            Out::Empty,
        ),
        (
            "unknown obligation",
            kv("mfa/", "#token"),
            vec!["--aud", aud, "--jti", &j1],
            vec![],
            1,
            Out::Empty,
        ),
        (
            "wrong audience",
            field.clone(),
            vec!["--aud", "billing", "--jti", &j1],
            vec![],
            1,
            Out::Empty,
        ),
        (
            "no jti",
            field.clone(),
            vec!["--aud", aud],
            vec![],
            1,
            Out::Empty,
        ),
        (
            "missing key",
            kv("", "#missing"),
            vec!["--aud", aud, "--jti", &j1],
            vec![],
            1,
            Out::Empty,
        ),
        (
            "version destroyed",
            kv("", "#token?version=1"),
            vec!["--aud", aud, "--jti", &j1],
            vec![],
            1,
            Out::Empty,
        ),
        (
            "version deleted",
            kv("", "#token?version=2"),
            vec!["--aud", aud, "--jti", &j1],
            vec![],
            1,
            Out::Empty,
        ),
        (
            "404",
            format!("openbao+kv2://secret/{SEGMENT}/{FILE}-absent"),
            vec!["--aud", aud, "--jti", &j1],
            vec![],
            1,
            Out::Empty,
        ),
        (
            "unknown parameter",
            kv("", "#token?n=1"),
            vec!["--aud", aud, "--jti", &j1],
            vec![],
            1,
            Out::Empty,
        ),
        (
            "file unsupported",
            format!("file://secret/{SEGMENT}/{FILE}"),
            vec!["--aud", aud, "--jti", &j1],
            vec![],
            1,
            Out::Empty,
        ),
        (
            "wildcard",
            format!("openbao+kv2://secret/{SEGMENT}/*"),
            vec!["--aud", aud, "--jti", &j1],
            vec![],
            1,
            Out::Empty,
        ),
        (
            "other mount",
            format!("openbao+kv2://other/{SEGMENT}/{FILE}"),
            vec!["--aud", aud, "--jti", &j1],
            vec![],
            1,
            Out::Empty,
        ),
        (
            "bad token",
            field.clone(),
            vec!["--aud", aud, "--jti", &j1],
            vec![("VAULT_TOKEN", BAD_TOKEN.to_owned())],
            1,
            Out::Empty,
        ),
        (
            "limited token",
            field.clone(),
            vec!["--aud", aud, "--jti", &j1],
            vec![("VAULT_TOKEN", limited_token())],
            1,
            Out::Empty,
        ),
        (
            "approle wrong secret id",
            field.clone(),
            vec!["--aud", aud, "--jti", &j1],
            approle(&format!("{SECRET_ID}-wrong")),
            1,
            Out::Empty,
        ),
        (
            "vault down",
            field.clone(),
            vec!["--aud", aud, "--jti", &j1],
            vec![("VAULT_URL", down.clone())],
            1,
            Out::Empty,
        ),
        (
            "pdp down",
            field.clone(),
            vec!["--aud", aud, "--jti", &j1],
            vec![("AUTHZEN_PDP_URL", down.clone())],
            1,
            Out::Empty,
        ),
        (
            "pdp never answers",
            field.clone(),
            vec!["--aud", aud, "--jti", &j1],
            generic(pdp_hang.addr()),
            1,
            Out::Empty,
        ),
        (
            "pdp echoes the canaries",
            field.clone(),
            vec!["--aud", aud, "--jti", &j1],
            generic(pdp_echo.addr()),
            1,
            Out::Empty,
        ),
        (
            "pdp denies echoing the canaries",
            field.clone(),
            vec!["--aud", aud, "--jti", &j1],
            generic(pdp_deny.addr()),
            1,
            Out::Empty,
        ),
        (
            "salt missing",
            field.clone(),
            vec!["--aud", aud, "--jti", &j1],
            vec![("SECRET_TENANT_SALT", String::new())],
            2,
            Out::Empty,
        ),
        (
            "salt too short",
            field.clone(),
            vec!["--aud", aud, "--jti", &j1],
            vec![("SECRET_TENANT_SALT", "LKSALT-2c8e5b".to_owned())],
            2,
            Out::Empty,
        ),
        (
            "timeout holds the token",
            field.clone(),
            vec!["--aud", aud, "--jti", &j1],
            vec![("VAULT_TIMEOUT", TOKEN.to_owned())],
            2,
            Out::Empty,
        ),
        (
            "pdp address holds the token",
            field.clone(),
            vec!["--aud", aud, "--jti", &j1],
            vec![(
                "AUTHZEN_PDP_URL",
                format!("http://user:{PDP_TOKEN}@127.0.0.1:1"),
            )],
            2,
            Out::Empty,
        ),
        (
            "grant uses hold the token",
            field.clone(),
            vec!["--aud", aud, "--jti", &j1],
            vec![("GRANT_MAX_USES_DEFAULT", TOKEN.to_owned())],
            2,
            Out::Empty,
        ),
        (
            "usage error beside the canaries",
            field.clone(),
            vec!["--aud", aud, "--jti", &j1, "--cnf-jkt", JKT, "--bogus"],
            vec![],
            2,
            Out::Empty,
        ),
    ];
    for (name, uri, flags, env, exit, out) in runs {
        check(
            run,
            Case {
                name: format!("get {name}"),
                invocation: get(fx, &uri, &flags, &env),
                exit,
                out,
                stdout_allows: if exit == 0 { &value } else { &[] },
                stdin: None,
            },
        );
    }
    for (uri, code) in bad_uris("openbao+kv2", "secret") {
        check(
            run,
            Case {
                name: format!("get bad uri {code}"),
                invocation: get(fx, &uri, &["--aud", aud, "--jti", &j1], &[]),
                exit: 1,
                out: Out::Empty,
                stdout_allows: &[],
                stdin: None,
            },
        );
    }
    Ok(())
}

/// `audit-hash`, `uri parse`, `uri check`, `lint`.
fn others(run: &mut Run) -> Result {
    let path_allowed = [Class::Path];
    let field = kv("", "#token");
    let salted = |args: Vec<String>, salt: &str| {
        secrets(std::iter::once("audit-hash".to_owned()).chain(args))
            .env("SECRET_TENANT_SALT", salt)
    };
    for (name, args, salt, exit) in [
        (
            "audit-hash",
            vec![field.clone(), Fixtures::file_uri(file::JSON, "#password")],
            SALT,
            0,
        ),
        (
            "audit-hash bad uri",
            vec![field.clone(), format!("file://demo/{SEGMENT}/*")],
            SALT,
            1,
        ),
        (
            "audit-hash short salt",
            vec![field.clone()],
            "LKSALT-2c8e5b",
            2,
        ),
        ("audit-hash no salt", vec![field.clone()], "", 2),
    ] {
        check(
            run,
            Case {
                name: name.into(),
                invocation: salted(args, salt),
                exit,
                out: Out::Any,
                stdout_allows: &[],
                stdin: None,
            },
        );
    }
    let parse = |args: &[&str]| {
        secrets(
            std::iter::once("uri")
                .chain(std::iter::once("parse"))
                .chain(args.iter().copied()),
        )
    };
    check(
        run,
        Case {
            name: "uri parse".into(),
            invocation: parse(&[&field]),
            exit: 0,
            out: Out::Any,
            stdout_allows: &path_allowed,
            stdin: None,
        },
    );
    check(
        run,
        Case {
            name: "uri parse --json".into(),
            invocation: parse(&["--json", &field]),
            exit: 0,
            out: Out::Any,
            stdout_allows: &path_allowed,
            stdin: None,
        },
    );
    for (uri, code) in bad_uris("openbao+kv2", "secret") {
        let guard = ["--allowed-mounts", "secret"];
        let mut args: Vec<&str> = guard.to_vec();
        args.push(&uri);
        check(
            run,
            Case {
                name: format!("uri parse {code}"),
                invocation: parse(&args),
                exit: 2,
                out: Out::Empty,
                stdout_allows: &[],
                stdin: None,
            },
        );
        let mut json_args = args.clone();
        json_args.insert(0, "--json");
        check(
            run,
            Case {
                name: format!("uri parse --json {code}"),
                invocation: parse(&json_args),
                exit: 2,
                out: Out::Any,
                stdout_allows: &[],
                stdin: None,
            },
        );
    }
    let check_cmd = |jsonl: bool| {
        let mut args = vec!["uri", "check", "--allowed-mounts", "secret,demo"];
        if jsonl {
            args.push("--jsonl");
        }
        secrets(args)
    };
    let valid = format!("{field}\n{}\n", Fixtures::file_uri(file::JSON, "#password"));
    let invalid: String = bad_uris("openbao+kv2", "secret")
        .iter()
        .filter(|(uri, _)| !uri.contains('\n'))
        .map(|(uri, _)| format!("{uri}\n"))
        .collect();
    check(
        run,
        Case {
            name: "uri check valid".into(),
            invocation: check_cmd(false),
            exit: 0,
            out: Out::Any,
            stdout_allows: &path_allowed,
            stdin: Some(valid.into_bytes()),
        },
    );
    check(
        run,
        Case {
            name: "uri check invalid".into(),
            invocation: check_cmd(false),
            exit: 1,
            out: Out::Any,
            stdout_allows: &[],
            stdin: Some(invalid.into_bytes()),
        },
    );
    let wildcard = format!("openbao+kv2://secret/{SEGMENT}/*");
    let jsonl_bad = format!(
        "{{\"uri\": \"{wildcard}\"}}\n{{\"uri\": 7, \"token\": \"{TOKEN}\"}}\n{{\"uri\": \"{field}\", \"allowed_mounts\": [\"other\"]}}\nnot json {VALUE}\n{{\"uri\": \"{field}\", \"allowed_mounts\": []}}\n"
    );
    check(
        run,
        Case {
            name: "uri check --jsonl invalid".into(),
            invocation: check_cmd(true),
            exit: 1,
            out: Out::Any,
            stdout_allows: &[],
            stdin: Some(jsonl_bad.into_bytes()),
        },
    );
    // Not UTF-8.
    let mut bytes = format!("openbao+kv2://secret/{SEGMENT}/").into_bytes();
    bytes.extend([0xff, 0xfe]);
    bytes.extend(format!("{FILE}\n").into_bytes());
    check(
        run,
        Case {
            name: "uri check not utf-8".into(),
            invocation: secrets(["uri", "check"]),
            exit: 1,
            out: Out::Any,
            stdout_allows: &[],
            stdin: Some(bytes),
        },
    );
    // Lint a tree whose files hold invalid URIs naming the canary path.
    let tree = tempfile::tempdir()?;
    write_lint_tree(tree.path())?;
    for format in ["text", "json"] {
        check(
            run,
            Case {
                name: format!("lint {format}"),
                invocation: secrets([
                    "lint",
                    "--allowed-mounts",
                    "secret,demo",
                    "--format",
                    format,
                    &tree.path().display().to_string(),
                ]),
                exit: 1,
                out: Out::Any,
                stdout_allows: &[],
                stdin: None,
            },
        );
    }
    Ok(())
}

fn write_lint_tree(dir: &Path) -> std::io::Result<()> {
    let mut config = String::new();
    for (uri, _) in bad_uris("openbao+kv2", "secret") {
        if !uri.contains('\n') {
            config.push_str(&format!("value: \"{uri}\"\n"));
        }
    }
    config.push_str(&format!(
        "ok: \"{}\"\nverison: \"{}?verison=2\"\n",
        kv("", "#token"),
        kv("", "")
    ));
    std::fs::write(dir.join("app.yaml"), config)?;
    std::fs::write(
        dir.join(".env"),
        format!("PASSWORD={VALUE}\nLK=file://other/{SEGMENT}/{FILE}\n"),
    )?;
    let mut binary = vec![0u8; 16];
    binary.extend(format!("file://demo/{SEGMENT}/*").into_bytes());
    std::fs::write(dir.join("blob.bin"), binary)
}
