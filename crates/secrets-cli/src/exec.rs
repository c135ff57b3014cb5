//! `secrets exec`: resolve secrets into environment variables, then become the command.
//!
//! Two steps: [`prepare`] reads the assignments and resolves every secret URI (all or
//! nothing; testable in-process), then [`run`] replaces the process with the command
//! (`execvp`, so the command's exit status and signals are ours without forwarding).
//! `exec --watch` (`exec_watch`) prepares the same way, then runs the command as a child
//! built by [`command`].

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::process::Command;

use secret_uri::{Provider, SecretUri};
use secrets_sdk::{Secret, SecretsClient};

use crate::cli::ExecArgs;
use crate::client::{self, EnvLookup};
use crate::env_file::{self, Assignment};
use crate::status::Status;

/// The code for a value an environment variable cannot hold (a NUL byte).
pub(crate) const INVALID_ENV_VALUE: &str = "INVALID_ENV_VALUE";

/// Exit status when the command is not found (as a shell).
pub(crate) const NOT_FOUND_EXIT: u8 = 127;
/// Exit status when the command exists but cannot be run (as a shell).
pub(crate) const CANNOT_RUN_EXIT: u8 = 126;

/// A variable's value, ready to set.
#[derive(Debug)]
pub(crate) enum Value {
    /// Not a secret URI: passed through as written.
    Plain(String),
    /// The resolved secret; its text (JSON compact) is exposed only into the command's
    /// environment.
    Secret(Secret),
}

impl Value {
    /// Whether the value holds a NUL byte, which no environment variable can hold.
    #[must_use]
    pub(crate) fn has_nul(&self) -> bool {
        match self {
            Self::Plain(text) => text.contains('\0'),
            Self::Secret(secret) => secret.expose_as_text().contains('\0'),
        }
    }
}

/// The message for a value with a NUL byte, after `INVALID_ENV_VALUE: NAME: `.
pub(crate) const NUL_MESSAGE: &str =
    "the value contains a NUL byte, which an environment variable cannot hold";

/// A variable to set, after resolution.
#[derive(Debug)]
pub(crate) struct Variable {
    /// The name.
    pub(crate) name: String,
    /// The value.
    pub(crate) value: Value,
}

/// What [`prepare`] hands over: the variables, and the client that resolved their secrets
/// (none when no value was a secret URI), for `exec --watch` to watch them with.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The variables, in definition order.
    pub(crate) variables: Vec<Variable>,
    /// The client; close it when done.
    pub(crate) client: Option<SecretsClient>,
}

/// The providers `secrets exec` resolves: every one the grammar names today (`bootstrap://`
/// from the `--bootstrap` file's `values`). A provider the grammar gains later passes through
/// ([`Kind::Unserved`]) until it is added here.
pub(crate) const SERVED: [Provider; 6] = [
    Provider::File,
    Provider::Yaml,
    Provider::OpenBao,
    Provider::HashiCorp,
    Provider::Db,
    Provider::Bootstrap,
];

/// What `secrets exec` does with a variable's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Kind {
    /// Not a secret URI (`hello`, `https://…`, `file:///srv/repo`): passed through unchanged.
    Plain,
    /// A secret URI of a served provider ([`SERVED`]): resolved, and a failure stops the
    /// command.
    Served,
    /// A valid secret URI of a provider this command does not serve (none today: a scheme
    /// the grammar gains before `exec` serves it): passed through unchanged, with a warning
    /// naming the variable.
    Unserved(Provider),
    /// Starts like a secret URI (`openbao+kv9://…`, `file://demo/*`) but does not parse: passed
    /// through unchanged, with a warning naming the variable and the parser's code.
    Malformed(&'static str),
}

/// Sorts a value: only a value that parses as a secret URI of a served provider is resolved.
///
/// A scheme that names no provider is plain. Of the values that start with a provider's
/// scheme (any case) but do not parse, the ordinary local file URL (`file:///…`, an empty
/// mount) is plain too; the others are [`Kind::Malformed`], so a typo is visible on stderr
/// without breaking a command that never meant a secret.
#[must_use]
pub(crate) fn classify(value: &str) -> Kind {
    match SecretUri::parse(value) {
        Ok(uri) if SERVED.contains(&uri.provider()) => Kind::Served,
        Ok(uri) => Kind::Unserved(uri.provider()),
        Err(error) => match value.split_once("://") {
            Some((scheme, rest)) if has_provider_scheme(scheme) => {
                if scheme.eq_ignore_ascii_case("file") && rest.starts_with('/') {
                    Kind::Plain
                } else {
                    Kind::Malformed(error.code())
                }
            }
            _ => Kind::Plain,
        },
    }
}

/// `provider[+engine]` with a known provider (any case): the start of a secret URI.
fn has_provider_scheme(scheme: &str) -> bool {
    let provider = scheme.split('+').next().unwrap_or("");
    scheme
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'_' | b'.'))
        && Provider::from_name(provider).is_some()
}

/// Whether `value` is resolved: a secret URI of a served provider ([`classify`] says
/// [`Kind::Served`]).
#[must_use]
pub(crate) fn is_secret_uri(value: &str) -> bool {
    classify(value) == Kind::Served
}

/// Reads the env files and `--env` flags (later definitions of a name win) and resolves every
/// secret URI of a served provider among the values, concurrently; other values pass through
/// (see [`classify`]), with a one-line warning on `err` naming the variable when the value
/// looks like a secret URI that is not resolved. On any failure, prints why on `err` (a
/// location, a name and a redacted URI, never a value) and returns the status to exit with:
/// `Failure` for unreadable or malformed input and configuration errors, `Findings` for
/// secrets that could not be resolved.
///
/// # Errors
/// Write errors on `err`; the runtime failing to start.
pub(crate) fn prepare<E: Write>(
    args: &ExecArgs,
    env: &EnvLookup,
    err: &mut E,
) -> io::Result<Result<Prepared, Status>> {
    let assignments = match assignments(args) {
        Ok(assignments) => assignments,
        Err(message) => {
            writeln!(err, "secrets exec: {message}")?;
            return Ok(Err(Status::Failure));
        }
    };
    let uris: Vec<&str> = assignments
        .iter()
        .map(|a| a.value.as_str())
        .filter(|v| is_secret_uri(v))
        .collect();
    // Without secret URIs there is nothing to configure: plain values need no client.
    let (client, mut resolved) = if uris.is_empty() {
        (None, Vec::new().into_iter())
    } else {
        // Without `--watch` the command gets its credentials once: a lease at its end is not
        // replaced (a new database user nobody would use), only renewed while it can be.
        let builder = client::builder(&args.client, env).rotate_leases(args.watch);
        let client = match client::finish(builder) {
            Ok(client) => client,
            Err(e) => {
                writeln!(err, "{e}")?;
                return Ok(Err(Status::Failure));
            }
        };
        let results = client::resolve_all(&client, &uris, args.client.refresh)?;
        (Some(client), results.into_iter())
    };

    let mut variables = Vec::with_capacity(assignments.len());
    let mut failed = false;
    for Assignment { name, value } in assignments {
        let value = if is_secret_uri(&value) {
            match resolved.next() {
                Some(Ok(secret)) => Value::Secret(secret),
                Some(Err(e)) => {
                    failed = true;
                    let label = match client::redacted(&value) {
                        Some(redacted) => format!("{name} ({redacted})"),
                        None => name.clone(),
                    };
                    writeln!(err, "{}: {label}: {}", e.code(), client::message(&e))?;
                    continue;
                }
                // `resolve_all` gives one result per URI; never leave a variable out silently.
                None => {
                    failed = true;
                    writeln!(err, "RUNTIME: {name}: no result")?;
                    continue;
                }
            }
        } else {
            match classify(&value) {
                Kind::Unserved(provider) => writeln!(
                    err,
                    "secrets exec: warning: {name}: `{provider}` secret URIs are not served \
                     here; the value is passed through unchanged",
                    provider = provider.as_str()
                )?,
                Kind::Malformed(code) => writeln!(
                    err,
                    "secrets exec: warning: {name}: not a valid secret URI ({code}); the value \
                     is passed through unchanged"
                )?,
                Kind::Plain | Kind::Served => {}
            }
            Value::Plain(value)
        };
        if value.has_nul() {
            failed = true;
            writeln!(err, "{INVALID_ENV_VALUE}: {name}: {NUL_MESSAGE}")?;
            continue;
        }
        variables.push(Variable { name, value });
    }
    if failed {
        if let Some(client) = client {
            client.close();
        }
        return Ok(Err(Status::Findings));
    }
    Ok(Ok(Prepared { variables, client }))
}

/// The assignments of the env files, then the flags, with one entry per name (the last
/// definition's value, at the first definition's place).
fn assignments(args: &ExecArgs) -> Result<Vec<Assignment>, String> {
    let mut all = Vec::new();
    for path in &args.env_files {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let parsed = env_file::parse(&text)
            .map_err(|e| format!("{}:{}: {}", path.display(), e.line, e.error))?;
        all.extend(parsed);
    }
    for (n, flag) in args.env.iter().enumerate() {
        let parsed =
            env_file::parse_flag(flag).map_err(|e| format!("--env value {}: {e}", n + 1))?;
        all.push(parsed);
    }
    let mut index: HashMap<String, usize> = HashMap::with_capacity(all.len());
    let mut unique: Vec<Assignment> = Vec::with_capacity(all.len());
    for assignment in all {
        match index.get(&assignment.name) {
            Some(&i) => unique[i].value = assignment.value,
            None => {
                index.insert(assignment.name.clone(), unique.len());
                unique.push(assignment);
            }
        }
    }
    Ok(unique)
}

/// Credentials of the vault and the PDP that `exec` removes from the command's environment
/// unless `--keep-credentials` is given.
pub(crate) const CREDENTIAL_VARIABLES: [&str; 14] = [
    "OPENBAO_TOKEN",
    "OPENBAO_TOKEN_FILE",
    "VAULT_TOKEN",
    "VAULT_TOKEN_FILE",
    "BAO_TOKEN",
    "OPENBAO_SECRET_ID",
    "OPENBAO_SECRET_ID_FILE",
    "VAULT_SECRET_ID",
    "VAULT_SECRET_ID_FILE",
    "OPENBAO_ROLE_ID",
    "VAULT_ROLE_ID",
    "AUTHZEN_PDP_TOKEN",
    "SECRETS_BOOTSTRAP_PATH",
    "SECRET_TENANT_SALT",
];

/// `secrets exec`: [`prepare`], then replace this process with the command. Returns only when
/// preparing failed or the command could not be started (`127` not found, `126` otherwise,
/// with a message on `err`).
///
/// # Errors
/// Write errors on `err`; the runtime failing to start.
pub(crate) fn run<E: Write>(args: &ExecArgs, env: &EnvLookup, mut err: E) -> io::Result<Status> {
    let Some((program, rest)) = args.command.split_first() else {
        writeln!(err, "secrets exec: no command given after `--`")?;
        return Ok(Status::Failure);
    };
    let prepared = match prepare(args, env, &mut err)? {
        Ok(prepared) => prepared,
        Err(status) => return Ok(status),
    };
    // Leased credentials are revoked when the command is done: it runs as a child, and
    // `secrets` renews the leases meanwhile.
    if !args.keep_lease
        && prepared
            .client
            .as_ref()
            .is_some_and(|c| c.leases_held() > 0)
    {
        return crate::exec_watch::run_prepared(args, program, rest, prepared, false, err);
    }
    let Prepared { variables, client } = prepared;
    let command = command(args, program, rest, &variables);
    drop(variables);
    drop(client);
    // The process image is replaced: export what the resolves recorded first.
    crate::telemetry::finish();
    match start(command) {
        Ok(status) => Ok(status),
        Err(error) => cannot_run(&mut err, program, &error),
    }
}

/// The command `program rest…` with the variables set and, unless `--keep-credentials`, the
/// credentials removed; the rest of the environment, stdin, stdout and stderr inherited.
#[must_use]
pub(crate) fn command(
    args: &ExecArgs,
    program: &OsStr,
    rest: &[OsString],
    variables: &[Variable],
) -> Command {
    let mut command = Command::new(program);
    command.args(rest);
    if !args.keep_credentials {
        // The child gets the secrets it was given, not the credential to read any other.
        for name in CREDENTIAL_VARIABLES {
            command.env_remove(name);
        }
    }
    for Variable { name, value } in variables {
        match value {
            Value::Plain(text) => command.env(name, text),
            // The exposed copy is zeroized at the end of the statement; the command's own copy
            // lives until the process image is replaced (or the child is started).
            Value::Secret(secret) => command.env(name, &*secret.expose_as_text()),
        };
    }
    command
}

/// Reports that `program` could not be started: exit 127 when it is not found, 126
/// otherwise, as a shell.
///
/// # Errors
/// Write errors on `err`.
pub(crate) fn cannot_run<E: Write>(
    err: &mut E,
    program: &OsStr,
    error: &io::Error,
) -> io::Result<Status> {
    let code = if error.kind() == io::ErrorKind::NotFound {
        NOT_FOUND_EXIT
    } else {
        CANNOT_RUN_EXIT
    };
    writeln!(
        err,
        "secrets exec: cannot run `{}`: {error}",
        program.to_string_lossy()
    )?;
    Ok(Status::Exit(code))
}

/// Replaces the process with `command`: returns only when that fails.
#[cfg(unix)]
fn start(mut command: Command) -> io::Result<Status> {
    use std::os::unix::process::CommandExt as _;
    Err(command.exec())
}

/// Without `exec`: runs `command` as a child and exits with its code.
#[cfg(not(unix))]
fn start(mut command: Command) -> io::Result<Status> {
    let status = command.status()?;
    let code = status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(1);
    Ok(Status::Exit(code))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use super::*;
    use crate::cli::ClientArgs;

    const CANARY: &str = "canary-51d0e2";

    #[test]
    fn only_secret_uris_of_served_providers_are_resolved() {
        for uri in [
            "file://demo/x",
            "FILE://demo/x",
            "file://demo/x?version=2",
            "openbao+kv2://secret/a#k",
            "openbao+kv2://secret/a?verison=2#k",
            "hashicorp://secret/a",
            "HashiCorp+KV2://secret/a",
            "db+cred://database/app#password",
            "DB+DB://database/billing#username",
            "yaml://config/app.yaml#db.password",
            "bootstrap://kafka_password",
            "BOOTSTRAP://db#password",
        ] {
            assert_eq!(classify(uri), Kind::Served, "{uri}");
            assert!(is_secret_uri(uri), "{uri}");
        }
        // Every provider the grammar names is served: a new one must be decided on here.
        for provider in Provider::ALL {
            assert!(SERVED.contains(&provider), "{provider}");
        }
        for (value, kind) in [
            (
                "openbao+kv9://secret/a",
                Kind::Malformed("UNSUPPORTED_ENGINE"),
            ),
            (
                "openbao+kv2://secret/app/*",
                Kind::Malformed("INVALID_WILDCARD"),
            ),
            ("file://demo/a b", Kind::Malformed("ILLEGAL_SEGMENT")),
            ("file://", Kind::Malformed("ILLEGAL_SEGMENT")),
            ("yaml+x.y-z://a", Kind::Malformed("UNSUPPORTED_ENGINE")),
        ] {
            assert_eq!(classify(value), kind, "{value}");
            assert!(!is_secret_uri(value), "{value}");
        }
        for plain in [
            "",
            "hello",
            "https://example.com/?u=file://demo/x",
            " file://demo/x",
            "myfile://demo/x",
            "git+file://demo/x",
            "file:/demo/x",
            "file //demo/x",
            "file:///srv/repo",
            "FILE:///srv/repo/.git",
            "file:///",
        ] {
            assert_eq!(classify(plain), Kind::Plain, "{plain}");
        }
    }

    fn args(root: &std::path::Path, env: &[&str], files: &[&std::path::Path]) -> ExecArgs {
        ExecArgs {
            client: ClientArgs {
                file_root: Some(root.to_owned()),
                ..ClientArgs::default()
            },
            env: env.iter().map(|e| (*e).to_owned()).collect(),
            env_files: files.iter().map(|f| f.to_path_buf()).collect(),
            keep_credentials: false,
            keep_lease: false,
            watch: false,
            restart_signal: 15,
            grace: std::time::Duration::from_secs(10),
            command: vec![OsString::from("true")],
        }
    }

    fn prepared(args: &ExecArgs) -> (Result<Vec<(String, String)>, Status>, String) {
        let env: EnvLookup = Arc::new(|_| None);
        let mut err = Vec::new();
        let result = prepare(args, &env, &mut err).unwrap().map(|prepared| {
            prepared
                .variables
                .into_iter()
                .map(|v| {
                    let text = match v.value {
                        Value::Plain(text) => text,
                        Value::Secret(secret) => secret.expose_as_text().to_string(),
                    };
                    (v.name, text)
                })
                .collect()
        });
        (result, String::from_utf8(err).unwrap())
    }

    fn root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("demo")).unwrap();
        std::fs::write(
            root.path().join("demo/db.json"),
            format!(r#"{{"password":"{CANARY}","port":5432}}"#),
        )
        .unwrap();
        std::fs::write(root.path().join("demo/nul"), "a\0b").unwrap();
        root
    }

    #[test]
    fn resolves_uris_passes_plain_values_and_later_definitions_win() {
        let root = root();
        let file = root.path().join(".env");
        std::fs::write(
            &file,
            "A=file://demo/db.json#password\nB=plain\nC=file://demo/nope\nD=file://demo/db.json\n",
        )
        .unwrap();
        let args = args(
            root.path(),
            &["C=file://demo/db.json#port", "E=https://x"],
            &[&file],
        );
        let (result, err) = prepared(&args);
        assert_eq!(err, "");
        let expected = [
            ("A", CANARY),
            ("B", "plain"),
            ("C", "5432"),
            ("D", &format!(r#"{{"password":"{CANARY}","port":5432}}"#)),
            ("E", "https://x"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()));
        assert_eq!(result, Ok(expected.to_vec()));
    }

    #[test]
    fn every_failure_is_reported_by_name_and_nothing_else() {
        let root = root();
        let args = args(
            root.path(),
            &[
                "OK=file://demo/db.json#password",
                "MISSING=file://demo/nope",
                "BAD=openbao+kv2://secret/x/*",
                "NUL=file://demo/nul",
                "PLAIN_NUL=a\0b",
            ],
            &[],
        );
        let (result, err) = prepared(&args);
        assert_eq!(result, Err(Status::Findings));
        assert_eq!(
            err,
            "NOT_FOUND: MISSING (file://demo/…): file: secret not found in mount `demo`\n\
             secrets exec: warning: BAD: not a valid secret URI (INVALID_WILDCARD); the value is \
             passed through unchanged\n\
             INVALID_ENV_VALUE: NUL: the value contains a NUL byte, which an environment \
             variable cannot hold\n\
             INVALID_ENV_VALUE: PLAIN_NUL: the value contains a NUL byte, which an environment \
             variable cannot hold\n"
        );
    }

    #[test]
    fn malformed_input_is_a_usage_failure_that_names_the_place() {
        let root = root();
        let file = root.path().join("bad.env");
        std::fs::write(&file, format!("# ok\nA=1\n{CANARY}\n")).unwrap();
        let cases: [(ExecArgs, String); 3] = [
            (
                args(root.path(), &[], &[&file]),
                format!("secrets exec: {}:3: expected NAME=VALUE\n", file.display()),
            ),
            (
                args(root.path(), &["A=1", &format!("{CANARY}-x={CANARY}")], &[]),
                "secrets exec: --env value 2: the variable name must match \
                 [A-Za-z_][A-Za-z0-9_]*\n"
                    .to_owned(),
            ),
            (
                args(root.path(), &[], &[&root.path().join("missing.env")]),
                format!(
                    "secrets exec: {}: No such file or directory (os error 2)\n",
                    root.path().join("missing.env").display()
                ),
            ),
        ];
        for (args, expected) in cases {
            let (result, err) = prepared(&args);
            assert_eq!(result, Err(Status::Failure));
            assert_eq!(err, expected);
        }
    }

    #[test]
    fn bootstrap_uris_get_the_bootstrap_files_values() {
        let root = root();
        let bootstrap = root.path().join("bootstrap.json");
        // Nothing listens on port 9: no vault is asked for a bootstrap value.
        std::fs::write(
            &bootstrap,
            format!(
                r#"{{"vault_addr":"http://127.0.0.1:9","token":"t",
                    "values":{{"kafka_password":"{CANARY}","db":{{"user":"app"}}}}}}"#
            ),
        )
        .unwrap();
        let mut args = args(
            root.path(),
            &[
                "KAFKA=bootstrap://kafka_password",
                "USER=bootstrap://db#user",
                "MISSING=bootstrap://db#password",
            ],
            &[],
        );
        args.client.bootstrap = Some(bootstrap);
        let (result, err) = prepared(&args);
        assert_eq!(result, Err(Status::Findings));
        assert_eq!(
            err,
            "KEY_NOT_FOUND: MISSING (bootstrap://db/…): bootstrap: the secret in mount `db` has \
             no such key\n"
        );
        args.env.pop();
        let (result, err) = prepared(&args);
        assert_eq!(err, "");
        assert_eq!(
            result,
            Ok(vec![
                ("KAFKA".to_owned(), CANARY.to_owned()),
                ("USER".to_owned(), "app".to_owned()),
            ])
        );
    }

    #[test]
    fn plain_values_need_no_client() {
        // A bootstrap that does not exist would fail the client; no URI, no client.
        let mut args = args(std::path::Path::new("/nonexistent"), &["A=1"], &[]);
        args.client.bootstrap = Some("/nonexistent/bootstrap.json".into());
        let (result, err) = prepared(&args);
        assert_eq!(result, Ok(vec![("A".to_owned(), "1".to_owned())]));
        assert_eq!(err, "");
        args.env.push("B=file://demo/x".into());
        let (result, err) = prepared(&args);
        assert_eq!(result, Err(Status::Failure));
        assert_eq!(
            err,
            "BOOTSTRAP_IO: bootstrap file /nonexistent/bootstrap.json could not be read\n"
        );
    }
}
