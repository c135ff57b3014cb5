//! The `secrets` command line. The binary (`main.rs`) parses the arguments into a [`Cli`] and
//! hands it to [`run`]; those two are this library's whole public API. Everything else is
//! private to the binary, and the integration tests drive the built `secrets` executable.
//!
//! ```text
//! secrets uri parse [--allowed-mounts a,b] [--json] URI      canonical form of one URI
//! secrets uri check [--allowed-mounts a,b] [--jsonl] < FILE  one JSON line per input line
//! secrets lint [--allowed-mounts a,b] [--format text|json] PATH…
//! secrets resolve [CLIENT FLAGS] [--format raw|json] URI…    print secret values, all or nothing
//! secrets exec [CLIENT FLAGS] [--env NAME=URI]… [--env-file FILE]… -- CMD ARGS…
//! secrets exec --watch [--restart-signal SIG] [--grace 10s] [CLIENT FLAGS] … -- CMD ARGS…
//!                                                            run CMD, restart it on rotation
//! secrets inject [CLIENT FLAGS] -i TEMPLATE [-o OUT] [--mode 0600] [--escape json|yaml|shell]
//!                [--dry-run]                                 render `{{ URI }}` references
//! secrets watch [CLIENT FLAGS] [--initial] URI…              one JSON line per change
//! secrets get URI --subject S [--aud A]… [--jti J] [--role R]… [--format raw|json]
//!                                                            one read through the PEP
//! secrets audit-hash URI…                                    audit resource_ref of each URI
//!
//! CLIENT FLAGS: [--bootstrap PATH] [--file-root DIR] [--allowed-mounts a,b] [--refresh]
//! ```
//!
//! Exit codes: 0 success; 1 some URI is invalid (`uri check`, `lint`, `audit-hash`, `inject`) or
//! could not be resolved (`resolve`, `exec`, `inject`, `get`) or watched (`watch`); 2 usage error, configuration or
//! I/O error, or an invalid URI given to `uri parse`. A closed stdout (`secrets … | head`)
//! ends the command quietly with 0. `exec` becomes its command, so its status is the
//! command's; when the command cannot be started it is 127 (not found) or 126. `exec --watch`
//! exits with its child's status (128 + N for signal N); `watch` exits 0 on SIGINT/SIGTERM.
//!
//! ```
//! use clap::Parser as _;
//! use std::process::ExitCode;
//!
//! // Prints `file://demo/db.json#password`, the canonical form.
//! let cli = secrets_cli::Cli::try_parse_from(["secrets", "uri", "parse", "FILE://demo/db.json#password"])?;
//! assert_eq!(secrets_cli::run(cli), ExitCode::SUCCESS);
//! # Ok::<(), clap::Error>(())
//! ```
//!
//! Output formats are in `report.rs` (`uri parse --json`, `uri check`) and `lint.rs`. Besides
//! the parser's codes, `uri check` uses one more, `BAD_INPUT`, for a line that is not UTF-8
//! or, with `--jsonl`, not an object with a string `uri` and an optional non-empty array of
//! strings `allowed_mounts`.
//!
//! # `resolve` and `exec`
//!
//! Both resolve through [`secrets_sdk::SecretsClient`], configured from the environment as
//! `SecretsClient::create()` is (`FILE_MOUNT_PATH`, `SECRETS_BOOTSTRAP_PATH`,
//! `OPENBAO_URL`/`VAULT_URL` and their token variables, `SECRETS_ALLOWED_MOUNTS`), with the
//! client flags on top (`client.rs`). One difference: with neither `--allowed-mounts` nor
//! `SECRETS_ALLOWED_MOUNTS`, any mount is allowed, as this is a local operator tool. Only
//! vault URIs contact a vault, so `file://` secrets need no server:
//!
//! ```text
//! $ secrets resolve --file-root examples/secrets 'file://demo/db.json#password'
//! demo-password-not-a-secret
//! $ secrets exec --file-root examples/secrets --env DB_PASSWORD='file://demo/db.json#password' -- ./server
//! ```
//!
//! - All URIs are resolved concurrently before anything happens. `resolve` prints every
//!   value (raw, or one JSON document each with `--format json`) or, if any URI fails, none:
//!   only `CODE: URI n (redacted URI): message` lines on stderr, exit 1.
//! - `exec` sets one variable per `NAME=URI` (`--env`, `--env-file`); a value that is not a
//!   secret URI passes through unchanged. On any failure the command is not run (exit 1).
//!   Otherwise the process is replaced by the command (Unix `exec`), so its exit status and
//!   signals need no forwarding.
//! - Values reach stdout (`resolve`) or the command's environment (`exec`) and nothing else:
//!   errors name a URI by its redacted form (`file://demo/…`) and a variable by its name.
//!   `RUST_LOG` turns on the SDK's logs on stderr, which never carry values either.
//!
//! # `inject`
//!
//! `inject` renders a template through the same client: each `{{ URI }}` is replaced by the
//! secret's value, and the result replaces a regular file atomically with mode 0600 (a device,
//! FIFO or descriptor link such as `/dev/stdout` is written in place, never renamed over):
//!
//! ```text
//! $ secrets inject --file-root examples/secrets -i examples/templates/app.env.tmpl -o app.env
//! $ secrets inject --escape json -i config.json.tmpl -o config.json
//! ```
//!
//! - The scanner is `secret_uri::template` (its rules: references are `{{ scheme://… }}`,
//!   any other `{{ … }}` is text, `\{{` escapes); `lint` reports template references with
//!   it too. Every reference is validated before anything is resolved, every secret is
//!   resolved concurrently, and on any failure nothing is written: one
//!   `CODE: TEMPLATE:LINE:COLUMN (redacted URI): message` line per failure, exit 1.
//! - The output file is created beside its path with its final mode (`--mode`, default
//!   0600), flushed, then renamed over it; stdout only for `-o -`, or with no `-o` when stdout
//!   is not a terminal. `--escape json|yaml|shell` quotes values for the format around them;
//!   `--dry-run` lists the references, redacted. See `secrets inject --help`.
//!
//! # `watch` and `exec --watch`
//!
//! Both watch secrets through [`secrets_sdk::SecretsClient::watch`], configured as above
//! (`SECRETS_WATCH_INTERVAL_S` sets the KV v2 poll; files are watched by inotify):
//!
//! ```text
//! $ secrets watch --file-root /etc/secret-volume 'file://app/password'
//! {"index":0,"uri":"file://app/…","digest":"9a1f…","at":"2026-12-01T10:00:00.123Z"}
//! $ secrets exec --watch --env DB_PASSWORD='file://app/password' -- ./server
//! ```
//!
//! - `watch` prints one JSON line per change (the URI's position, its redacted form, the KV
//!   v2 version, a content digest keyed per process, the time; or an error code), flushed at
//!   once, never a value; nothing for the starting state unless `--initial`. URIs that
//!   cannot be watched are reported as `resolve` reports them, before anything is printed.
//! - `exec --watch` keeps `secrets` as a supervisor: the command runs as a child and is
//!   restarted (`--restart-signal`, `--grace`, then SIGKILL) when a secret's content digest
//!   differs from the one it was started with, once per burst; signals are passed on; the
//!   child's exit status is ours.
//!
//! `get` reads through [`secrets_sdk::VaultClient`] instead, configured as
//! `VaultClient::from_env()` is; see `secrets get --help`.
//!
//! # Telemetry
//!
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set (and `OTEL_SDK_DISABLED` not `true`), every command
//! exports the SDK's spans and metrics over OTLP/HTTP (protobuf) to that endpoint, so that
//! `secrets resolve` and `secrets get` can be traced:
//!
//! ```text
//! $ OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 secrets resolve --file-root examples/secrets 'file://demo/db.json#password'
//! ```
//!
//! - Configured by the standard variables (`OTEL_EXPORTER_OTLP_HEADERS`,
//!   `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_EXPORTER_OTLP_CERTIFICATE`, …; see
//!   `secrets_sdk::telemetry::otlp`); the service name is `secrets` unless
//!   `OTEL_SERVICE_NAME` says otherwise. `SECRETS_OTEL_FILTER` picks the spans (default
//!   `info`: `secret_resolve`, `get_credentials`; `debug` adds the provider reads, the PEP's
//!   decisions and the HTTP client spans).
//! - The export is flushed before the command exits, on every way out: success, failure,
//!   and `exec` (just before the command replaces this process). It waits at most about
//!   `OTEL_EXPORTER_OTLP_TIMEOUT` (10 s by default) for a collector that does not answer.
//! - Telemetry never changes a command's outcome: a bad `OTEL_*` setting is one line on
//!   stderr naming the setting (`secrets: telemetry disabled: OTEL_EXPORTER_OTLP_TIMEOUT
//!   must be a whole number [CONFIG]`) and the command runs without export; an export that
//!   fails or times out is one line on stderr (`secrets: telemetry: …`) and the exit status is
//!   the command's.
//! - `RUST_LOG` logs on stderr stay as they are: both go through one `tracing` registry, each
//!   layer with its own filter.
//!
//! # Layout
//!
//! Dependencies between the modules go one way: [`run`] (here) → the subcommands (`uri_cmd`,
//! `lint`, `resolve`, `exec`, `inject`, `watch`, `get`; `exec_watch`, which is `exec --watch`,
//! on top of `exec`'s preparation) → `client` (the `SecretsClient` `resolve`, `exec`,
//! `inject` and `watch` build, the error messages they print) and the helpers (`report`,
//! `env_file`, `changes`: many watches as one channel, `check`: the one validity check of a
//! URI `lint` and `inject` share) → `cli` (every subcommand's `clap` arguments and long help),
//! `status` (exit codes) and `signals` (signal names, listening, sending), which depend on
//! no other module. `telemetry` (the `RUST_LOG` logs and the OTLP export)
//! is set up and finished by [`run`]; `exec` finishes it too, before it replaces the
//! process. A subcommand never uses another. A new one adds a
//! `Command` variant and its arguments in `cli.rs`, a module, and an arm in [`run`].
#![forbid(unsafe_code)]

mod audit_hash;
mod changes;
mod check;
mod cli;
mod client;
mod env_file;
mod exec;
mod exec_watch;
mod get;
mod inject;
mod lint;
mod quote_context;
mod report;
mod resolve;
mod signals;
mod status;
mod telemetry;
mod uri_cmd;
mod watch;

use std::io::{self, IsTerminal as _, Write};
use std::process::ExitCode;

pub use cli::Cli;
use cli::{Command, UriCommand};
use status::Status;

/// Runs a parsed command line.
#[must_use]
pub fn run(cli: Cli) -> ExitCode {
    telemetry::init();
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
        Command::Exec(args) if args.watch => {
            with_process_env(|env| exec_watch::run(&args, env, io::stderr()))
        }
        Command::Exec(args) => with_process_env(|env| exec::run(&args, env, io::stderr())),
        Command::Inject(args) => with_process_env(|env| {
            let stdout = io::stdout();
            let terminal = stdout.is_terminal();
            inject::run(
                &args,
                env,
                io::stdin().lock(),
                terminal,
                stdout.lock(),
                io::stderr(),
            )
        }),
        Command::Watch(args) => {
            with_process_env(|env| watch::run(&args, env, io::stdout().lock(), io::stderr()))
        }
        Command::Get(args) => {
            with_process_env(|env| get::run(&args, env, io::stdout().lock(), io::stderr()))
        }
        Command::AuditHash(args) => with_process_env(|env| {
            audit_hash::run(&args, env, io::stdout().lock(), io::stderr().lock())
        }),
    };
    // Whatever was printed is out before the export is flushed (which may wait for a slow
    // collector).
    let _ = io::stdout().flush();
    telemetry::finish();
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
