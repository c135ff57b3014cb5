//! `secrets audit-hash`, `uri parse`, `uri check` and `lint` over URIs naming the canary path:
//! the path may be on stdout only where the URI is the product (a valid URI parsed or checked).

use std::path::Path;

use super::cli_paths::{Case, Out, check, kv};
use super::fixtures::{Fixtures, file};
use super::paths::bad_uris;
use super::run::Run;
use crate::common::cli::secrets;
use crate::common::leak::{Class, FILE, SALT, SEGMENT, TOKEN, VALUE};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// `audit-hash`, `uri parse`, `uri check`, `lint`.
pub(crate) fn others(run: &mut Run) -> Result {
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
