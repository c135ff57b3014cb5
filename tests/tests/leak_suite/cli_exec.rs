//! `secrets exec`: values reach the command's environment (read back from a file the command
//! writes, never printed), env files and flags with the canaries, malformed ones, values that
//! pass through, a NUL byte, a vault that refuses, a command that is not there.

use secrets_test_support::cli::Invocation;

use super::cli_paths::{ArgRun, Case, Out, check, kv};
use super::fixtures::{Fixtures, file, limited_token};
use super::run::Run;
use crate::common::cli::secrets;
use crate::common::leak::{FILE, SEGMENT, TOKEN, VALUE};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

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

pub(crate) fn execs(run: &mut Run, fx: &Fixtures) -> Result {
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
            "exec bootstrap not configured",
            vec![
                "--env".into(),
                format!("LK=bootstrap://demo/{SEGMENT}/{FILE}"),
            ],
            vec![],
            1,
        ),
        (
            "exec db not a role",
            vec![
                "--env".into(),
                format!("LK=db+cred://demo/{SEGMENT}/{FILE}"),
            ],
            vec![],
            1,
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
