//! The `secrets` command line, as a library so its logic can be tested without a process.
//!
//! ```text
//! secrets uri parse [--allowed-mounts a,b] [--json] URI      canonical form of one URI
//! secrets uri check [--allowed-mounts a,b] [--jsonl] < FILE  one JSON line per input line
//! secrets lint [--allowed-mounts a,b] [--format text|json] PATH…
//! ```
//!
//! Exit codes: 0 success; 1 some URI is invalid (`uri check`, `lint`); 2 usage error, I/O
//! error, or an invalid URI given to `uri parse`. A closed stdout (`secrets … | head`) ends the
//! command quietly with 0.
//!
//! Output formats are in [`report`] (`uri parse --json`, `uri check`) and [`lint`]. Besides
//! the parser's codes, `uri check` uses one more, [`report::BAD_INPUT`], for a line that is
//! not UTF-8 or, with `--jsonl`, not an object with a string `uri` and an optional non-empty
//! array of strings `allowed_mounts`.
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
//! ```
//!
//! Each subcommand has its own module; a new one (`resolve`, `exec`, `get`) adds a
//! [`cli::Command`] variant, a module, and an arm in [`run`].
#![forbid(unsafe_code)]

pub mod cli;
pub mod lint;
pub mod report;
pub mod uri_cmd;

use std::io::{self, Write};
use std::process::ExitCode;

use cli::{Cli, Command, UriCommand};

/// How a command ended; converts to the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit 0: everything was valid.
    Success,
    /// Exit 1: the command ran, and found invalid URIs.
    Findings,
    /// Exit 2: bad usage, an I/O error, or (`uri parse`) an invalid URI.
    Failure,
}

impl Status {
    /// The process exit code.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Findings => 1,
            Self::Failure => 2,
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
    let result = match cli.command {
        Command::Uri(UriCommand::Parse(args)) => {
            uri_cmd::parse(&args, io::stdout().lock(), io::stderr().lock())
        }
        Command::Uri(UriCommand::Check(args)) => uri_cmd::check_stdio(&args),
        Command::Lint(args) => lint::run(&args),
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
