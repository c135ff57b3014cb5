//! Running a built command-line binary (the `secrets` CLI) the way a user does: in a cleared
//! environment, with piped stdin, capturing both streams, with a limit for hangs.
//!
//! ```
//! use secrets_test_support::cli::Invocation;
//!
//! # #[cfg(unix)] {
//! let run = Invocation::new("sh", ["-c", "echo out; echo err >&2; exit 3"]).run();
//! assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (3, "out\n", "err\n"));
//! # }
//! ```

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What one run produced.
#[derive(Debug)]
pub struct Run {
    /// The exit code; -1 when a signal ended the process.
    pub code: i32,
    /// The signal that ended the process, if one did.
    pub signal: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl Run {
    /// The lines of stdout.
    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Asserts that none of `values` appears on stderr (nor, unless `on_stdout`, on stdout).
    ///
    /// # Panics
    /// When one does.
    pub fn assert_hidden(&self, values: &[&str], on_stdout: bool) {
        for value in values {
            assert!(!self.stderr.contains(value), "{value} on stderr: {self:?}");
            if !on_stdout {
                assert!(!self.stdout.contains(value), "{value} on stdout: {self:?}");
            }
        }
    }
}

/// Runs `command` with `stdin` piped in (written from a thread of its own, so a large input
/// cannot deadlock against a full stdout pipe) and both streams captured.
///
/// # Panics
/// When the process cannot be started or its output is not UTF-8, and when it printed
/// `panicked` on stderr: a panicking binary fails the test whatever else it checks.
pub fn run(mut command: Command, stdin: &[u8]) -> Run {
    let mut child = match command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("cannot run {command:?}: {e}"),
    };
    let pipe = child.stdin.take();
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(mut pipe) = pipe {
            let _ = pipe.write_all(&input);
        }
    });
    let output = match child.wait_with_output() {
        Ok(output) => output,
        Err(e) => panic!("waiting for {command:?}: {e}"),
    };
    let _ = writer.join();
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        signal: signal(&output.status),
        stdout: utf8(output.stdout, "stdout"),
        stderr: utf8(output.stderr, "stderr"),
    };
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    run
}

fn utf8(bytes: Vec<u8>, stream: &str) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => panic!("{stream} is not UTF-8: {e}"),
    }
}

#[cfg(unix)]
fn signal(status: &ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[cfg(not(unix))]
fn signal(_: &ExitStatus) -> Option<i32> {
    None
}

/// A run of `bin` in a cleared environment: only `PATH` and what the test sets, so a
/// developer's `OPENBAO_ADDR` or `RUST_LOG` cannot change the outcome.
#[derive(Debug, Clone)]
pub struct Invocation {
    bin: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    dir: Option<PathBuf>,
    stdin: Vec<u8>,
}

impl Invocation {
    /// `bin args…`, in the current directory, with no stdin.
    pub fn new<I, S>(bin: impl Into<PathBuf>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self {
            bin: bin.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            dir: None,
            stdin: Vec::new(),
        }
    }

    /// Sets one variable of the otherwise cleared environment.
    #[must_use]
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Runs in `dir`.
    #[must_use]
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Pipes `stdin` in.
    #[must_use]
    pub fn stdin(mut self, stdin: &[u8]) -> Self {
        self.stdin = stdin.to_vec();
        self
    }

    /// The command as it will run.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command.env_clear();
        // PATH, and the label census folder (`cargo xtask ci`), pass through.
        for kept in ["PATH", "SECRETS_TELEMETRY_CENSUS_DIR"] {
            if let Some(value) = std::env::var_os(kept) {
                command.env(kept, value);
            }
        }
        command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(&self.args);
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        command
    }

    /// Runs it to the end. See [`run`] for what panics.
    pub fn run(&self) -> Run {
        run(self.command(), &self.stdin)
    }

    /// Runs with no stdin; `None` when the process had not ended after `limit`, in which case
    /// it is killed, so a hang fails the test instead of stalling the suite.
    ///
    /// # Panics
    /// As [`run`].
    pub fn run_within(&self, limit: Duration) -> Option<Run> {
        let mut command = self.command();
        let mut child = match command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => panic!("cannot run {command:?}: {e}"),
        };
        let drain = |stream: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut stream) = stream {
                    let _ = stream.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let out = drain(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let err = drain(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let deadline = Instant::now() + limit;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => panic!("polling {command:?}: {e}"),
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let run = Run {
            code: status.code().unwrap_or(-1),
            signal: signal(&status),
            stdout: utf8(out.join().unwrap_or_default(), "stdout"),
            stderr: utf8(err.join().unwrap_or_default(), "stderr"),
        };
        assert!(!run.stderr.contains("panicked"), "{run:?}");
        Some(run)
    }

    /// Runs as is (for exact assertions), then again with `RUST_LOG=trace` (every log the
    /// binary writes goes to stderr): same exit, same stdout. Returns both runs.
    ///
    /// # Panics
    /// As [`run`], and when tracing changed the exit or stdout.
    pub fn run_traced(&self) -> (Run, Run) {
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
