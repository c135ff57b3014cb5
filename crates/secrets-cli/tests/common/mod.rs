//! Runs the built `secrets` binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// What a run of `secrets` produced.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

pub(crate) fn secrets(args: &[&str]) -> Run {
    secrets_in(Path::new(env!("CARGO_MANIFEST_DIR")), args, b"")
}

pub(crate) fn secrets_with_stdin(args: &[&str], stdin: &[u8]) -> Run {
    secrets_in(Path::new(env!("CARGO_MANIFEST_DIR")), args, stdin)
}

/// Runs `secrets args…` in `dir` with `stdin` piped in.
pub(crate) fn secrets_in(dir: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_secrets"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    // A separate writer so a large input cannot deadlock against a full stdout pipe.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let run = Run {
        code: output.status.code().expect("terminated by a signal"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    };
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    run
}
