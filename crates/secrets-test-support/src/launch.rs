//! What every server launcher shares: the folder a server keeps its files in, how one launch
//! attempt fails, and starting on a free port (again on another when the port was taken
//! between choosing and binding it, or on the same one after a restart).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, free_port, random_hex};

/// Launch attempts before a taken port is an error.
pub(crate) const PORT_ATTEMPTS: usize = 6;

/// How one launch attempt ended badly.
pub(crate) enum LaunchError {
    /// The process exited; `in_use` when its log says the port was taken.
    Exited { status: String, in_use: bool },
    /// Anything else, already a crate error.
    Other(Error),
}

/// The folder a server of `kind` keeps its files in: `keep` (a detached server's), or a fresh
/// one under the temp dir (`secrets-test-<kind>-<pid>-<random>`), created.
///
/// # Errors
/// `IO` when it cannot be created.
pub(crate) fn workdir(kind: &str, keep: Option<&Path>) -> Result<PathBuf, Error> {
    let workdir = keep.map_or_else(
        || {
            std::env::temp_dir().join(format!(
                "secrets-test-{kind}-{}-{}",
                std::process::id(),
                &random_hex()[..12]
            ))
        },
        Path::to_path_buf,
    );
    std::fs::create_dir_all(&workdir)
        .map_err(Error::io(format!("create {}", workdir.display())))?;
    Ok(workdir)
}

/// Runs `attempt` on fresh free ports until it succeeds, trying another port (up to
/// [`PORT_ATTEMPTS`]) only when the server found its port taken.
pub(crate) fn on_free_port(
    mut attempt: impl FnMut(u16) -> Result<(), LaunchError>,
) -> Result<(), LaunchError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let port = free_port().map_err(LaunchError::Other)?;
        match attempt(port) {
            Err(LaunchError::Exited { in_use: true, .. }) if tries < PORT_ATTEMPTS => {}
            other => return other,
        }
    }
}

/// Runs `attempt` until it succeeds, pausing between tries when the port (kept across a
/// restart) is still held by the old process's socket.
pub(crate) fn on_same_port(
    mut attempt: impl FnMut() -> Result<(), LaunchError>,
) -> Result<(), LaunchError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt() {
            Err(LaunchError::Exited { in_use: true, .. }) if tries < PORT_ATTEMPTS => {
                std::thread::sleep(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// The last `lines` lines of the log at `path` (empty when it cannot be read).
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Kills the child (if any) and waits for it; already-exited is fine, `wait` reaps it.
pub(crate) fn stop_child(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// What a server's drop does after stopping it: keep the log (and say where, naming the
/// server `kind`) when the thread panics, else remove the work folder unless it is a detached
/// server's.
pub(crate) fn cleanup(kind: &str, log_path: &Path, workdir: &Path, detached: bool) {
    if std::thread::panicking() {
        eprintln!(
            "secrets-test-support: {kind} log kept at {}",
            log_path.display()
        );
    } else if !detached {
        let _ = std::fs::remove_dir_all(workdir);
    }
}

/// The log at `log_path` opened for appending, with `banner` written as a line: the handles
/// for the server's stdout and stderr.
pub(crate) fn open_log(log_path: &Path, banner: &str) -> Result<(File, File), LaunchError> {
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(Error::io(format!("open {}", log_path.display())))
        .map_err(LaunchError::Other)?;
    let _ = writeln!(log, "{banner}");
    let stdout = log
        .try_clone()
        .map_err(Error::io("clone log handle"))
        .map_err(LaunchError::Other)?;
    Ok((stdout, log))
}

/// Spawns `cmd` (the program `bin`) with no stdin and stdout and stderr into `log`, in a
/// process group of its own when `detached`.
pub(crate) fn spawn(
    cmd: &mut Command,
    bin: &Path,
    (stdout, stderr): (File, File),
    detached: bool,
) -> Result<Child, LaunchError> {
    if detached {
        std::os::unix::process::CommandExt::process_group(cmd, 0);
    }
    cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    cmd.spawn()
        .map_err(Error::io(format!("spawn {}", bin.display())))
        .map_err(LaunchError::Other)
}

/// How [`wait_ready`] waits for one server and words its errors.
pub(crate) struct Readiness<'a> {
    /// The server in messages: `redis-server`, `tansu broker`.
    pub server: &'a str,
    /// Its process in the poll error: `poll {process} process`.
    pub process: &'a str,
    /// Where it listens, for the timeout message.
    pub addr: String,
    /// What it is not yet after the timeout: `ready`, `healthy`.
    pub state: &'a str,
    /// Log phrases that mean the port was taken.
    pub in_use: &'a [&'a str],
    /// The log, for its last lines.
    pub log_path: &'a Path,
    /// How long it may take.
    pub timeout: Duration,
    /// The pause between probes.
    pub poll: Duration,
}

impl Readiness<'_> {
    /// Polls `child` until `ready` says yes: an early exit is [`LaunchError::Exited`] (the
    /// child is then gone), an error polling it or the timeout (with the last log lines)
    /// stops it.
    pub(crate) fn wait(
        &self,
        child: &mut Option<Child>,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), LaunchError> {
        let started = Instant::now();
        loop {
            if let Some(running) = child.as_mut() {
                match running.try_wait() {
                    Ok(Some(status)) => {
                        *child = None;
                        let tail = log_tail(self.log_path, 15);
                        return Err(LaunchError::Exited {
                            status: status.to_string(),
                            in_use: self.in_use.iter().any(|phrase| tail.contains(phrase)),
                        });
                    }
                    Ok(None) => {}
                    Err(source) => {
                        stop_child(child);
                        return Err(LaunchError::Other(Error::Io {
                            context: format!("poll {} process", self.process),
                            source,
                        }));
                    }
                }
            }
            if ready() {
                return Ok(());
            }
            if started.elapsed() > self.timeout {
                stop_child(child);
                return Err(LaunchError::Other(Error::Io {
                    context: format!(
                        "{} on {} not {} after {:?}; last log lines:\n{}",
                        self.server,
                        self.addr,
                        self.state,
                        started.elapsed(),
                        log_tail(self.log_path, 15)
                    ),
                    source: std::io::Error::from(std::io::ErrorKind::TimedOut),
                }));
            }
            std::thread::sleep(self.poll);
        }
    }
}

/// A [`LaunchError`] as the crate error: an early exit names `server` and quotes the last
/// lines of the log at `log_path`, its source `{process} exited`.
pub(crate) fn launch_error(
    error: LaunchError,
    server: &str,
    process: &str,
    log_path: &Path,
) -> Error {
    match error {
        LaunchError::Exited { status, .. } => Error::Io {
            context: format!(
                "{server} exited early ({status}); last log lines:\n{}",
                log_tail(log_path, 15)
            ),
            source: std::io::Error::other(format!("{process} exited")),
        },
        LaunchError::Other(e) => e,
    }
}

/// The `*_or_skip` policy: the server, `None` (after a `SKIP` line, `{unavailable}: …`) when
/// its tool is missing and not under CI; panics (`{failed}: …`) on any other error.
pub(crate) fn or_skip<T>(started: Result<T, Error>, unavailable: &str, failed: &str) -> Option<T> {
    match started {
        Ok(server) => Some(server),
        Err(e @ Error::ToolMissing { .. }) => {
            crate::skip_or_fail(&format!("{unavailable}: {e}"));
            None
        }
        Err(e) => panic!("{failed}: {e}"),
    }
}
