//! The `secrets` command line, as a library so its logic can be tested without a process.
//!
//! ```text
//! secrets uri parse [--allowed-mounts a,b] [--json] URI      canonical form of one URI
//! secrets uri check [--allowed-mounts a,b] [--jsonl] < FILE  one JSON line per input line
//! secrets lint [--allowed-mounts a,b] [--format text|json] PATH…
//! secrets resolve [CLIENT FLAGS] [--format raw|json] URI…    print secret values, all or nothing
//! secrets exec [CLIENT FLAGS] [--env NAME=URI]… [--env-file FILE]… -- CMD ARGS…
//!
//! CLIENT FLAGS: [--bootstrap PATH] [--file-root DIR] [--allowed-mounts a,b] [--refresh]
//! ```
//!
//! Exit codes: 0 success; 1 some URI is invalid (`uri check`, `lint`) or could not be
//! resolved (`resolve`, `exec`); 2 usage error, configuration or I/O error, or an invalid URI
//! given to `uri parse`. A closed stdout (`secrets … | head`) ends the command quietly with 0.
//! `exec` becomes its command, so its status is the command's; when the command cannot be
//! started it is 127 (not found) or 126.
//!
//! Output formats are in [`report`] (`uri parse --json`, `uri check`) and [`lint`]. Besides
//! the parser's codes, `uri check` uses one more, [`report::BAD_INPUT`], for a line that is
//! not UTF-8 or, with `--jsonl`, not an object with a string `uri` and an optional non-empty
//! array of strings `allowed_mounts`.
//!
//! # `resolve` and `exec`
//!
//! Both resolve through [`secrets_sdk::SecretsClient`], configured from the environment as
//! `SecretsClient::create()` is (`FILE_MOUNT_PATH`, `SECRETS_BOOTSTRAP_PATH`,
//! `OPENBAO_URL`/`VAULT_URL` and their token variables, `SECRETS_ALLOWED_MOUNTS`), with the
//! client flags on top ([`client::build`]). One difference: with neither `--allowed-mounts`
//! nor `SECRETS_ALLOWED_MOUNTS`, any mount is allowed, as this is a local operator tool. Only
//! vault URIs contact a vault, so `file://` secrets need no server:
//!
//! ```text
//! $ secrets resolve --file-root examples/secrets 'file://demo/db.json#password'
//! demo-password-not-a-secret
//! $ secrets exec --file-root examples/secrets --env DB_PASSWORD='file://demo/db.json#password' -- ./server
//! ```
//!
//! - All URIs are resolved concurrently before anything happens. [`resolve`] prints every
//!   value (raw, or one JSON document each with `--format json`) or, if any URI fails, none:
//!   only `CODE: URI n (redacted URI): message` lines on stderr, exit 1.
//! - [`exec`] sets one variable per `NAME=URI` (`--env`, `--env-file`); a value that is not a
//!   secret URI passes through unchanged. On any failure the command is not run (exit 1).
//!   Otherwise the process is replaced by the command (Unix `exec`), so its exit status and
//!   signals need no forwarding.
//! - Values reach stdout (`resolve`) or the command's environment (`exec`) and nothing else:
//!   errors name a URI by its redacted form (`file://demo/…`) and a variable by its name.
//!   `RUST_LOG` turns on the SDK's logs on stderr, which never carry values either.
//!
//! The pieces are usable directly:
//!
//! ```
//! use secret_uri::AllowedMounts;
//! use secrets_cli::lint::lint_text;
//!
//! let findings = lint_text("db: openbao+kv2://secret/app/*\n", &AllowedMounts::default());
//! assert_eq!((findings[0].line, findings[0].column), (1, 5));
//! assert_eq!(findings[0].error.code(), "INVALID_WILDCARD");
//!
//! let vars = secrets_cli::env_file::parse("export DB=file://demo/db.json#password\n# note\n")?;
//! assert_eq!(vars[0].name, "DB");
//! assert!(secrets_cli::exec::is_secret_uri(&vars[0].value));
//! # Ok::<(), secrets_cli::env_file::LineError>(())
//! ```
//!
//! Each subcommand has its own module; a new one (`get`) adds a [`cli::Command`] variant, a
//! module, and an arm in [`run`].
#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod env_file;
pub mod exec;
pub mod get;
pub mod lint;
pub mod report;
pub mod resolve;
pub mod uri_cmd;

use std::io::{self, Write};
use std::process::ExitCode;

use cli::{Cli, Command, UriCommand};

/// How a command ended; converts to the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit 0: everything was valid (and resolved).
    Success,
    /// Exit 1: the command ran, and found invalid URIs or secrets it could not resolve.
    Findings,
    /// Exit 2: bad usage, a configuration or I/O error, or (`uri parse`) an invalid URI.
    Failure,
    /// This exit code: `exec`'s when its command cannot be started (126, 127), or the
    /// command's own where the process cannot be replaced.
    Exit(u8),
}

impl Status {
    /// The process exit code.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Findings => 1,
            Self::Failure => 2,
            Self::Exit(code) => code,
        }
    }
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> Self {
        Self::from(status.code())
    }
}

/// Runs a parsed command line.
#[must_use]
pub fn run(cli: Cli) -> ExitCode {
    init_logging();
    let result = match cli.command {
        Command::Uri(UriCommand::Parse(args)) => {
            uri_cmd::parse(&args, io::stdout().lock(), io::stderr().lock())
        }
        Command::Uri(UriCommand::Check(args)) => uri_cmd::check_stdio(&args),
        Command::Lint(args) => lint::run(&args),
        // Not `stderr().lock()`: the client's I/O thread may log to stderr while this one
        // waits for it.
        Command::Resolve(args) => {
            with_process_env(|env| resolve::run(&args, env, io::stdout().lock(), io::stderr()))
        }
        Command::Exec(args) => with_process_env(|env| exec::run(&args, env, io::stderr())),
        Command::Get(args) => {
            with_process_env(|env| get::run(&args, env, io::stdout().lock(), io::stderr()))
        }
    };
    match result {
        Ok(status) => status.into(),
        // The reader went away (`| head`): nothing left to do, and nothing wrong to report.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "secrets: {e}");
            Status::Failure.into()
        }
    }
}

/// Runs `f` with the process environment, once it passed [`client::check_process_env`].
fn with_process_env(
    f: impl FnOnce(&client::EnvLookup) -> io::Result<Status>,
) -> io::Result<Status> {
    if let Err(e) = client::check_process_env() {
        let _ = writeln!(io::stderr(), "{e}");
        return Ok(Status::Failure);
    }
    f(&client::process_env())
}

/// With `RUST_LOG` set, logs on stderr (stdout carries values and reports). The SDK's spans
/// and events never carry a value, a token or a secret path.
fn init_logging() {
    if std::env::var_os("RUST_LOG").is_none() {
        return;
    }
    match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => {
            // Fails only if a subscriber is already set (in-process tests): keep that one.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(io::stderr)
                .try_init();
        }
        Err(e) => {
            let _ = writeln!(io::stderr(), "secrets: ignoring RUST_LOG: {e}");
        }
    }
}
