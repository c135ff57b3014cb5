//! `secrets get`: reads through the PEP as the canary subject with the canary `jti` and
//! thumbprints, every refusal, failing vaults and PDPs, and configuration holding the canaries.

use secrets_test_support::{Fault, FaultServer};
use serde_json::json;

use secrets_test_support::cli::Invocation;

use super::cli_paths::{Case, GetRun, Out, check, kv};
use super::fixtures::{Fixtures, limited_token};
use super::paths::{bad_uris, echo_body, echo_text};
use super::run::Run;
use crate::common::cli::secrets;
use crate::common::leak::{
    BAD_TOKEN, Class, FILE, JKT, JTI, PDP_TOKEN, SALT, SECRET_ID, SEGMENT, SUBJECT, TOKEN, X5T,
};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

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

pub(crate) fn gets(run: &mut Run, fx: &Fixtures) -> Result {
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
