//! `secrets exec --watch`: run the command as a child with its secrets, watch those secrets,
//! and restart the child when, and only when, the value of one of them really changed.
//!
//! The variables are prepared as `exec` prepares them (`exec::prepare`: all or nothing), then
//! every secret URI among them is watched. The child is started from the watches' states, and
//! each watch's content digest at that start is recorded: a change whose digest differs from
//! the one the running child was started with is a real change (a new KV v2 version with the
//! same value is not). A restart waits [`SETTLE`] for the rest of a burst, stops the
//! command ([`stop`]), and starts the child again with the latest values; changes that arrive
//! meanwhile join it.
//!
//! The child leads a process group of its own ([`Job`]), and every signal goes to that
//! group: what the command started (`sh -c 'server; …'` and its `server`) stops with it, and
//! none of it keeps an old value beside the new command or outlives `secrets`. A stop sends
//! its signal (and SIGCONT, for stopped members), waits up to `--grace` for the whole group
//! to exit, then SIGKILLs what is left. Signals sent to `secrets` are passed on
//! ([`signals::FORWARDED`]); SIGINT and SIGTERM stop the command so and end `secrets` with
//! the child's status, as does a child that exits on its own (what it left in its group is
//! stopped with SIGTERM). Being outside the terminal's foreground group, the child gets a
//! terminal's Ctrl-C only through `secrets`: once.

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::process::ExitStatus;
use std::time::Duration;

use rustix::process::{Pid, Signal};
use secrets_sdk::watch::WatchItem;
use secrets_sdk::{Secret, SecretsClient};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, sleep_until};

use crate::changes::{self, Merged};
use crate::cli::ExecArgs;
use crate::client::{self, EnvLookup};
use crate::exec::{self, INVALID_ENV_VALUE, NUL_MESSAGE, Prepared, Value, Variable};
use crate::signals::{self, Listener};
use crate::status::Status;

/// How long after a change the restart waits for the rest of its burst (the files of one
/// volume swap, several secrets rotated together): one restart for all of them.
const SETTLE: Duration = Duration::from_millis(200);

/// How often a stop looks whether the rest of the group exited, once the child did.
const POLL: Duration = Duration::from_millis(50);

/// How long a stop waits for the group to go after its SIGKILL.
const KILLED_WAIT: Duration = Duration::from_secs(1);

/// `secrets exec --watch`: prepares as `exec` does (the same messages and exit codes when
/// that fails), then supervises the command until it exits or SIGINT/SIGTERM ends it; its
/// exit status is the result.
///
/// # Errors
/// Write errors on `err`; the runtime or the signal handlers failing to start.
pub(crate) fn run<E: Write>(args: &ExecArgs, env: &EnvLookup, mut err: E) -> io::Result<Status> {
    let Some((program, rest)) = args.command.split_first() else {
        writeln!(err, "secrets exec: no command given after `--`")?;
        return Ok(Status::Failure);
    };
    let prepared = match exec::prepare(args, env, &mut err)? {
        Ok(prepared) => prepared,
        Err(status) => return Ok(status),
    };
    run_prepared(args, program, rest, prepared, true, err)
}

/// Supervises the command with the `prepared` variables until it exits or SIGINT/SIGTERM
/// ends it, then closes the client (which revokes its leases). With `watch` the command is
/// restarted on changes; without, it runs once (`exec` of leased credentials).
///
/// # Errors
/// As [`run`].
pub(crate) fn run_prepared<E: Write>(
    args: &ExecArgs,
    program: &OsStr,
    rest: &[OsString],
    prepared: Prepared,
    watch: bool,
    err: E,
) -> io::Result<Status> {
    let Prepared { variables, client } = prepared;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        // Before anything starts: a signal from now on is ours to pass on, not our end.
        let mut signals = Listener::new(&signals::FORWARDED)?;
        let mut state = State::new(args, program, rest, variables, err);
        let watched = if watch { client.as_ref() } else { None };
        let mut changes = match state.watch(watched, &mut signals).await? {
            Ok(changes) => changes,
            Err(status) => return Ok(status),
        };
        supervise(&mut state, &mut signals, &mut changes).await
    });
    drop(runtime);
    if let Some(client) = client {
        client.close();
    }
    result
}

/// One watched secret.
struct Watched {
    /// The variables it feeds, for messages.
    names: Vec<String>,
    /// Its latest value that an environment variable can hold.
    latest: Secret,
    /// The digest of `latest`; empty when unknown (its watch started on an error).
    digest: String,
}

impl Watched {
    /// `NAME, NAME (redacted URI)`.
    fn label(&self) -> String {
        format!(
            "{} ({})",
            self.names.join(", "),
            self.latest.uri().redacted()
        )
    }
}

/// What the supervisor knows, apart from the child, the signals and the changes.
struct State<'a, E> {
    args: &'a ExecArgs,
    program: &'a OsStr,
    rest: &'a [OsString],
    variables: Vec<Variable>,
    /// For each variable, the watched secret its value comes from.
    sources: Vec<Option<usize>>,
    watched: Vec<Watched>,
    /// The digests the running child was started with, one per watched secret.
    started_with: Vec<String>,
    err: E,
}

impl<'a, E: Write> State<'a, E> {
    fn new(
        args: &'a ExecArgs,
        program: &'a OsStr,
        rest: &'a [OsString],
        variables: Vec<Variable>,
        err: E,
    ) -> Self {
        let mut watched: Vec<Watched> = Vec::new();
        let mut sources = Vec::with_capacity(variables.len());
        for variable in &variables {
            let Value::Secret(secret) = &variable.value else {
                sources.push(None);
                continue;
            };
            let n = match watched
                .iter()
                .position(|w| w.latest.uri().as_str() == secret.uri().as_str())
            {
                Some(n) => n,
                None => {
                    watched.push(Watched {
                        names: Vec::new(),
                        latest: secret.clone(),
                        digest: String::new(),
                    });
                    watched.len() - 1
                }
            };
            watched[n].names.push(variable.name.clone());
            sources.push(Some(n));
        }
        Self {
            args,
            program,
            rest,
            variables,
            sources,
            watched,
            started_with: Vec::new(),
            err,
        }
    }

    /// Watches every secret; their starting states become the values the child starts
    /// with. `None` when there is nothing to watch.
    ///
    /// A SIGINT or SIGTERM while the watches start ends it: exit 128 + N, as a shell reports
    /// a command that signal N ended (none was started).
    async fn watch(
        &mut self,
        client: Option<&SecretsClient>,
        signals: &mut Listener,
    ) -> io::Result<Result<Option<Merged>, Status>> {
        let Some(client) = client else {
            return Ok(Ok(None));
        };
        let uris: Vec<String> = self
            .watched
            .iter()
            .map(|w| w.latest.uri().as_str().to_owned())
            .collect();
        let started = match signals.unless_ended(changes::start(client, &uris)).await {
            Ok(started) => started,
            Err(signal) => return Ok(Err(Status::Exit(ended_by(signal)))),
        };
        let mut streams = Vec::with_capacity(started.len());
        let mut failed = false;
        for (n, result) in started.into_iter().enumerate() {
            match result {
                Ok(stream) => {
                    if let Some(item) = stream.current() {
                        self.absorb(n, item)?;
                    }
                    streams.push(stream);
                }
                // Resolved a moment ago, so hardly reachable: the client closed, a runtime
                // failure.
                Err(e) => {
                    failed = true;
                    let label = self.watched[n].label();
                    writeln!(self.err, "{}: {label}: {}", e.code(), client::message(&e))?;
                }
            }
        }
        if failed {
            return Ok(Err(Status::Findings));
        }
        Ok(Ok(Some(changes::merge(streams))))
    }

    /// Takes in a watch's item: a new value becomes the latest (unless no environment
    /// variable can hold it); an error is a warning, and the child keeps what it has.
    fn absorb(&mut self, n: usize, item: &WatchItem) -> io::Result<()> {
        let watched = &mut self.watched[n];
        match item {
            Ok(change) if change.digest() == watched.digest => {}
            Ok(change) => {
                if Value::Secret(change.secret().clone()).has_nul() {
                    writeln!(
                        self.err,
                        "{INVALID_ENV_VALUE}: {}: {NUL_MESSAGE}; the command keeps the value it \
                         has",
                        watched.names.join(", ")
                    )?;
                } else {
                    watched.latest = change.secret().clone();
                    change.digest().clone_into(&mut watched.digest);
                }
            }
            Err(e) => writeln!(
                self.err,
                "secrets exec: warning: {}: {}: {}; the command keeps the value it has",
                watched.label(),
                e.code(),
                client::message(e)
            )?,
        }
        Ok(())
    }

    /// The variables of the secrets whose latest value differs from the running child's.
    fn changed(&self) -> Vec<&str> {
        self.watched
            .iter()
            .zip(&self.started_with)
            .filter(|(w, started)| w.digest != **started)
            .flat_map(|(w, _)| w.names.iter().map(String::as_str))
            .collect()
    }

    /// Starts the child with the latest values, as the leader of a process group of its
    /// own; the status to exit with when it cannot be started (126, 127).
    fn spawn(&mut self) -> io::Result<Result<Job, Status>> {
        for (variable, source) in self.variables.iter_mut().zip(&self.sources) {
            if let Some(n) = source {
                variable.value = Value::Secret(self.watched[*n].latest.clone());
            }
        }
        let mut command = Command::from(exec::command(
            self.args,
            self.program,
            self.rest,
            &self.variables,
        ));
        // Its own group, so that one signal reaches all it starts (and a terminal's Ctrl-C
        // reaches it only through us). Should `secrets` itself fail, [`Job`]'s drop kills
        // the group; this kills the child if even that is skipped.
        command.process_group(0).kill_on_drop(true);
        match command.spawn() {
            Ok(child) => {
                self.started_with = self.watched.iter().map(|w| w.digest.clone()).collect();
                Ok(Ok(Job::new(child)?))
            }
            Err(error) => Ok(Err(exec::cannot_run(&mut self.err, self.program, &error)?)),
        }
    }
}

/// The running command: the child, which leads a process group of its own, and that group.
struct Job {
    child: Child,
    /// The group: the child's pid.
    pgid: Pid,
    /// The child's status, once it exited (and was reaped).
    status: Option<ExitStatus>,
    /// Whether the group was stopped: nothing is left to kill when this is dropped.
    stopped: bool,
}

impl Job {
    fn new(child: Child) -> io::Result<Self> {
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::other("the started command has no process id"))?;
        Ok(Self {
            child,
            pgid,
            status: None,
            stopped: false,
        })
    }

    /// Sends `signal` to the whole group.
    fn signal(&self, signal: Signal) {
        signals::send_group(self.pgid, signal);
    }

    /// Waits for the child to exit; its status.
    async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self.child.wait().await?;
        self.status = Some(status);
        Ok(status)
    }
}

impl Drop for Job {
    /// `secrets` leaves without stopping the command (an I/O error): none of it outlives us.
    fn drop(&mut self) {
        if !self.stopped {
            self.signal(Signal::KILL);
        }
    }
}

/// How a [`stop`] ended.
struct Stopped {
    /// The child's status.
    status: ExitStatus,
    /// Whether a SIGINT or SIGTERM arrived meanwhile (and was passed on).
    ending: bool,
}

/// Stops the job: `signal` (and SIGCONT, so that a stopped process can act on it) to its
/// group, then up to `grace` for the child and every other process of the group to exit,
/// then SIGKILL for what is left. Signals that arrive meanwhile are passed on to the group;
/// changes (when `changes` is being watched) are taken in by `state`.
async fn stop<E: Write>(
    job: &mut Job,
    signal: Signal,
    state: &mut State<'_, E>,
    signals: &mut Listener,
    changes: &mut Option<Merged>,
) -> io::Result<Stopped> {
    job.signal(signal);
    if signal != Signal::CONT && signal != Signal::KILL {
        job.signal(Signal::CONT);
    }
    let mut deadline = Instant::now() + state.args.grace;
    let mut killed = false;
    let mut ending = false;
    loop {
        if job.status.is_some() && !signals::group_running(job.pgid) {
            break;
        }
        tokio::select! {
            status = job.wait(), if job.status.is_none() => {
                status?;
            }
            // The child exited; the rest of its group has not yet.
            () = sleep(POLL), if job.status.is_some() => {}
            () = sleep_until(deadline) => {
                if killed {
                    // Unkillable for now (in the kernel): the child is waited for below.
                    break;
                }
                job.signal(Signal::KILL);
                killed = true;
                deadline = Instant::now() + KILLED_WAIT;
            }
            signal = signals.recv() => {
                job.signal(signal);
                ending |= signals::ends(signal);
            }
            next = next_change(changes) => match next {
                Some((n, item)) => state.absorb(n, &item)?,
                None => *changes = None,
            },
        }
    }
    // Zombies and all: nothing of it is left to act.
    job.signal(Signal::KILL);
    let status = job.wait().await?;
    job.stopped = true;
    Ok(Stopped { status, ending })
}

/// The exit status for a SIGINT or SIGTERM that arrived before any child was started: what
/// a shell reports for a command that signal ended.
fn ended_by(signal: Signal) -> u8 {
    u8::try_from(128 + signal.as_raw()).unwrap_or(255)
}

/// The next change, or never when nothing is watched (any more).
async fn next_change(changes: &mut Option<Merged>) -> Option<(usize, WatchItem)> {
    match changes {
        Some(changes) => changes.recv().await,
        None => std::future::pending().await,
    }
}

/// Completes at `due`, or never.
async fn until(due: Option<Instant>) {
    match due {
        Some(due) => sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Runs the child, restarting it on changes, until it exits on its own or a SIGINT/SIGTERM
/// passed on to it ends it.
async fn supervise<E: Write>(
    state: &mut State<'_, E>,
    signals: &mut Listener,
    changes: &mut Option<Merged>,
) -> io::Result<Status> {
    let mut job = match state.spawn()? {
        Ok(job) => job,
        Err(status) => return Ok(status),
    };
    let mut due = None;
    loop {
        tokio::select! {
            status = job.wait() => {
                status?;
                // What it left running in its group goes with it; changes no longer matter.
                let stopped = stop(&mut job, Signal::TERM, state, signals, &mut None).await?;
                return Ok(Status::Exit(signals::exit_code(stopped.status)));
            }
            signal = signals.recv() => {
                if signals::ends(signal) {
                    let stopped = stop(&mut job, signal, state, signals, &mut None).await?;
                    return Ok(Status::Exit(signals::exit_code(stopped.status)));
                }
                job.signal(signal);
            }
            next = next_change(changes) => match next {
                Some((n, item)) => {
                    state.absorb(n, &item)?;
                    if due.is_none() && !state.changed().is_empty() {
                        due = Some(Instant::now() + SETTLE);
                    }
                }
                None => *changes = None,
            },
            () = until(due) => {
                due = None;
                // A value that changed back within the burst needs no restart.
                if !state.changed().is_empty()
                    && let Some(status) = restart(state, &mut job, signals, changes).await?
                {
                    return Ok(status);
                }
            }
        }
    }
}

/// Stops the command ([`stop`], with `--restart-signal`) and starts it again with the
/// latest values. `Some(status)` to exit with: a SIGINT/SIGTERM arrived meanwhile (the
/// child's status), or the new child could not be started.
async fn restart<E: Write>(
    state: &mut State<'_, E>,
    job: &mut Job,
    signals: &mut Listener,
    changes: &mut Option<Merged>,
) -> io::Result<Option<Status>> {
    writeln!(
        state.err,
        "secrets exec: {} changed; restarting the command",
        state.changed().join(", ")
    )?;
    let signal = signals::from_number(state.args.restart_signal);
    let stopped = stop(job, signal, state, signals, changes).await?;
    if stopped.ending {
        return Ok(Some(Status::Exit(signals::exit_code(stopped.status))));
    }
    // What arrived while it stopped joins this restart.
    while let Some((n, item)) = changes.as_mut().and_then(Merged::try_recv) {
        state.absorb(n, &item)?;
    }
    match state.spawn()? {
        Ok(new) => {
            *job = new;
            Ok(None)
        }
        Err(status) => Ok(Some(status)),
    }
}
