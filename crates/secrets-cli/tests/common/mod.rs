//! Runs the built `secrets` binary (through the test support's runner).
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::process::Command;

pub(crate) use secrets_test_support::cli::Run;

pub(crate) fn secrets(args: &[&str]) -> Run {
    secrets_in(Path::new(env!("CARGO_MANIFEST_DIR")), args, b"")
}

pub(crate) fn secrets_with_stdin(args: &[&str], stdin: &[u8]) -> Run {
    secrets_in(Path::new(env!("CARGO_MANIFEST_DIR")), args, stdin)
}

/// Runs `secrets args…` in `dir` with `stdin` piped in.
pub(crate) fn secrets_in(dir: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_secrets"));
    command.args(args).current_dir(dir);
    let run = secrets_test_support::cli::run(command, stdin);
    assert!(run.signal.is_none(), "terminated by a signal: {run:?}");
    run
}
