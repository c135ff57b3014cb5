//! The `secrets` command. All logic lives in the `secrets_cli` library so it can be tested
//! without a process; this file only parses the arguments and hands over.
//!
//! ```text
//! secrets resolve --file-root examples/secrets 'file://demo/db.json#password'
//! secrets uri check < uris.txt
//! secrets lint --allowed-mounts secret,dc-infra deploy/
//! ```
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use secrets_cli::Cli;

fn main() -> ExitCode {
    secrets_cli::run(Cli::parse())
}
