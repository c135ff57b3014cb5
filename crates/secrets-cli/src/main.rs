//! The `secrets` command. All logic lives in the `secrets_cli` library so it can be tested
//! without a process; this file only parses the arguments and hands over.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use secrets_cli::Cli;

fn main() -> ExitCode {
    secrets_cli::run(Cli::parse())
}
