//! Runs the built `secrets` binary.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a run of `secrets` produced.
#[derive(Debug)]
pub(crate) struct Run {
    /// The exit code; -1 when a signal ended the process.
    pub(crate) code: i32,
    /// The signal that ended the process, if one did.
    pub(crate) signal: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Asserts that none of `values` appears on stderr (nor, unless `on_stdout`, on stdout).
    pub(crate) fn assert_hidden(&self, values: &[&str], on_stdout: bool) {
        for value in values {
            assert!(!self.stderr.contains(value), "{value} on stderr: {self:?}");
            if !on_stdout {
                assert!(!self.stdout.contains(value), "{value} on stdout: {self:?}");
            }
        }
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
    let mut command = Command::new(env!("CARGO_BIN_EXE_secrets"));
    command.args(args).current_dir(dir);
    let run = run(command, stdin);
    assert!(run.signal.is_none(), "terminated by a signal: {run:?}");
    run
}

fn run(mut command: Command, stdin: &[u8]) -> Run {
    let mut child = command
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
        code: output.status.code().unwrap_or(-1),
        signal: signal(&output.status),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    };
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    run
}

#[cfg(unix)]
fn signal(status: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[cfg(not(unix))]
fn signal(_: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// The repository root (for the shipped examples).
pub(crate) fn repo_root() -> PathBuf {
    secrets_test_support::repo_root().expect("the repository root")
}

/// A run of `secrets` in a cleared environment: only `PATH` and what the test sets, so a
/// developer's `OPENBAO_ADDR` or `RUST_LOG` cannot change the outcome.
#[derive(Debug, Clone)]
pub(crate) struct Secrets {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    dir: PathBuf,
    stdin: Vec<u8>,
}

impl Secrets {
    pub(crate) fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self {
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            stdin: Vec::new(),
        }
    }

    pub(crate) fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    pub(crate) fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    pub(crate) fn stdin(mut self, stdin: &[u8]) -> Self {
        self.stdin = stdin.to_vec();
        self
    }

    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_secrets"));
        command.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(&self.args)
            .current_dir(&self.dir);
        command
    }

    pub(crate) fn run(&self) -> Run {
        run(self.command(), &self.stdin)
    }

    /// Runs with no stdin; `None` when the process had not ended after `limit`, in which case
    /// it is killed, so a hang fails the test instead of stalling the suite.
    pub(crate) fn run_within(&self, limit: std::time::Duration) -> Option<Run> {
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
            text
        });
        let err = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let run = Run {
            code: status.code().unwrap_or(-1),
            signal: signal(&status),
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        };
        assert!(!run.stderr.contains("panicked"), "{run:?}");
        Some(run)
    }

    /// Runs as is (for exact assertions), then again with `RUST_LOG=trace` (every log the
    /// SDK and the CLI write goes to stderr): same exit, same stdout. Returns both runs.
    pub(crate) fn run_traced(&self) -> (Run, Run) {
        let plain = self.run();
        let traced = self.clone().env("RUST_LOG", "trace").run();
        assert_eq!(
            (plain.code, plain.signal, &plain.stdout),
            (traced.code, traced.signal, &traced.stdout),
            "RUST_LOG=trace changed the outcome: {traced:?}"
        );
        (plain, traced)
    }
}
