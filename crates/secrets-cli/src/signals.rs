//! Unix signals for `watch` and `exec --watch`: naming them on the command line
//! (`--restart-signal TERM`), listening for the ones `secrets` handles, and sending one to a
//! child's process group. Depends on no other module of the crate (`cli` uses [`parse`]).

use std::future::Future;
use std::io;

use rustix::process::{Pid, Signal};
use tokio::signal::unix::{SignalKind, signal};

/// The signals that may be named, by their name without `SIG`.
const NAMED: [(&str, Signal); 12] = [
    ("HUP", Signal::HUP),
    ("INT", Signal::INT),
    ("QUIT", Signal::QUIT),
    ("KILL", Signal::KILL),
    ("USR1", Signal::USR1),
    ("USR2", Signal::USR2),
    ("PIPE", Signal::PIPE),
    ("ALRM", Signal::ALARM),
    ("TERM", Signal::TERM),
    ("CONT", Signal::CONT),
    ("WINCH", Signal::WINCH),
    ("ABRT", Signal::ABORT),
];

/// The signals `exec --watch` passes on to its command: SIGINT and SIGTERM also end it.
pub(crate) const FORWARDED: [Signal; 6] = [
    Signal::INT,
    Signal::TERM,
    Signal::HUP,
    Signal::QUIT,
    Signal::USR1,
    Signal::USR2,
];

/// A signal's number from a name (`TERM`, `SIGTERM`, `sigterm`) or a number (`15`): the
/// `value_parser` of `--restart-signal`. Real-time signals are not accepted.
///
/// # Errors
/// A message for clap naming what is accepted.
pub(crate) fn parse(text: &str) -> Result<i32, String> {
    let upper = text.trim().to_ascii_uppercase();
    let found = match upper.parse::<i32>() {
        Ok(number) => Signal::from_named_raw(number),
        Err(_) => {
            let name = upper.strip_prefix("SIG").unwrap_or(&upper);
            NAMED.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
        }
    };
    found.map(Signal::as_raw).ok_or_else(|| {
        let names: Vec<&str> = NAMED.iter().map(|(n, _)| *n).collect();
        format!(
            "not a signal; use a name ({}, with or without SIG) or its number",
            names.join(", ")
        )
    })
}

/// The signal numbered `number` (as [`parse`] returned it); SIGTERM for anything else.
#[must_use]
pub(crate) fn from_number(number: i32) -> Signal {
    Signal::from_named_raw(number).unwrap_or(Signal::TERM)
}

/// Sends `signal` to every process of the process group `pgid` (a child started as the
/// leader of a group of its own: its pid). A group that is already gone is no error.
pub(crate) fn send_group(pgid: Pid, signal: Signal) {
    // ESRCH: nothing is left of it; EPERM: what is left is not ours to signal.
    let _ = rustix::process::kill_process_group(pgid, signal);
}

/// Whether some process of the group `pgid` still runs. Zombies do not count: an orphan's
/// zombie waits for init to reap it, and an init that never reaps (a container's first
/// process) would keep it forever. On Linux `/proc` tells them apart; elsewhere, or without
/// `/proc`, any member counts.
#[must_use]
pub(crate) fn group_running(pgid: Pid) -> bool {
    match rustix::process::test_kill_process_group(pgid) {
        Err(rustix::io::Errno::SRCH) => false,
        _ => running_in_proc(pgid).unwrap_or(true),
    }
}

/// Whether `/proc` lists a process of the group `pgid` that is not a zombie; `None` without
/// a readable `/proc`.
fn running_in_proc(pgid: Pid) -> Option<bool> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let entries = std::fs::read_dir("/proc").ok()?;
    let pgid = pgid.as_raw_nonzero().get();
    Some(entries.flatten().any(|entry| {
        let is_pid = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.bytes().all(|b| b.is_ascii_digit()));
        // A process that exited since the listing has no `stat` any more.
        is_pid
            && std::fs::read_to_string(entry.path().join("stat"))
                .is_ok_and(|stat| runs_in_group(&stat, pgid))
    }))
}

/// Whether a `/proc/PID/stat` line (`pid (comm) state ppid pgrp …`) is of a live process of
/// the group `pgid`. `comm` may hold spaces and parentheses: the fields follow the last `)`.
fn runs_in_group(stat: &str, pgid: i32) -> bool {
    let Some((_, fields)) = stat.rsplit_once(')') else {
        return false;
    };
    let mut fields = fields.split_ascii_whitespace();
    match (fields.next(), fields.next(), fields.next()) {
        (Some(state), Some(_ppid), Some(pgrp)) => {
            pgrp.parse() == Ok(pgid) && !matches!(state, "Z" | "X" | "x")
        }
        _ => false,
    }
}

/// Listens for several signals at once. Listening replaces their default action (ending
/// the process) for as long as `secrets` runs.
#[derive(Debug)]
pub(crate) struct Listener {
    streams: Vec<(Signal, tokio::signal::unix::Signal)>,
}

impl Listener {
    /// Starts listening for `signals`. Must be called inside a runtime with I/O enabled.
    ///
    /// # Errors
    /// When the runtime cannot register a handler.
    pub(crate) fn new(signals: &[Signal]) -> io::Result<Self> {
        let streams = signals
            .iter()
            .map(|&s| Ok((s, signal(SignalKind::from_raw(s.as_raw()))?)))
            .collect::<io::Result<_>>()?;
        Ok(Self { streams })
    }

    /// Runs `work` unless SIGINT or SIGTERM (when listened for) arrives first: then `Err`
    /// with that signal, and `work` is dropped. Other signals received meanwhile are
    /// dropped too: nothing is running yet to pass them on to.
    pub(crate) async fn unless_ended<T>(
        &mut self,
        work: impl Future<Output = T>,
    ) -> Result<T, Signal> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return Ok(done),
                signal = self.recv() => if ends(signal) {
                    return Err(signal);
                },
            }
        }
    }

    /// The next signal received.
    pub(crate) async fn recv(&mut self) -> Signal {
        std::future::poll_fn(|cx| {
            for (signal, stream) in &mut self.streams {
                if stream.poll_recv(cx).is_ready() {
                    return std::task::Poll::Ready(*signal);
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}

/// Whether `signal` asks `secrets` to end (SIGINT, SIGTERM).
#[must_use]
pub(crate) fn ends(signal: Signal) -> bool {
    signal == Signal::INT || signal == Signal::TERM
}

/// The exit code a shell reports for `status`: the code, or 128 + the signal that ended it.
#[must_use]
pub(crate) fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + (signal & 0x7f)).unwrap_or(255),
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn names_and_numbers() {
        for (text, signal) in [
            ("TERM", Signal::TERM),
            ("SIGTERM", Signal::TERM),
            ("sigterm", Signal::TERM),
            (" hup ", Signal::HUP),
            ("INT", Signal::INT),
            ("USR1", Signal::USR1),
            ("SIGUSR2", Signal::USR2),
            ("QUIT", Signal::QUIT),
            ("KILL", Signal::KILL),
            ("15", Signal::TERM),
            ("1", Signal::HUP),
        ] {
            assert_eq!(parse(text), Ok(signal.as_raw()), "{text}");
            assert_eq!(from_number(parse(text).unwrap()), signal);
        }
        for bad in ["", "SIG", "TERMINATE", "0", "-15", "99999", "SIGRTMIN"] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with("not a signal;"), "{bad}: {err}");
        }
    }

    #[test]
    fn exit_codes_are_a_shells() {
        use std::os::unix::process::ExitStatusExt as _;
        use std::process::ExitStatus;
        // Raw wait statuses: the code in the second byte, a signal in the low bits.
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(255 << 8)), 255);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }

    #[test]
    fn stat_lines_of_live_members() {
        let line = |state: &str, pgrp: i32| format!("42 (a (b) c) {state} 1 {pgrp} 42 0 -1 0");
        assert!(runs_in_group(&line("S", 7), 7));
        assert!(runs_in_group(&line("R", 7), 7));
        assert!(runs_in_group(&line("T", 7), 7), "stopped is alive");
        assert!(!runs_in_group(&line("Z", 7), 7), "a zombie is not");
        assert!(!runs_in_group(&line("S", 8), 7));
        assert!(!runs_in_group("42 (sh", 42));
        assert!(!runs_in_group("42 (sh) S", 42));
    }

    /// The group of a child started with `process_group(0)` runs until it exits; a zombie
    /// left unreaped does not count.
    #[test]
    fn a_group_runs_until_its_processes_exit() {
        use std::os::unix::process::CommandExt as _;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
        assert!(group_running(pgid));
        send_group(pgid, Signal::KILL);
        // Dead but not reaped yet: a zombie.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while group_running(pgid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!group_running(pgid));
        assert_eq!(exit_code(child.wait().unwrap()), 137);
        assert!(!group_running(pgid));
    }

    /// SIGINT while the work runs: the work is dropped; other signals do not end it.
    #[test]
    fn unless_ended_stops_at_sigint_only() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // Listening first: from then on SIGINT and SIGUSR2 to this test process are ours.
            let mut listener = Listener::new(&[Signal::INT, Signal::USR2]).unwrap();
            let me = rustix::process::getpid();
            let work = async {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                rustix::process::kill_process(me, Signal::USR2).unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                rustix::process::kill_process(me, Signal::INT).unwrap();
                std::future::pending::<()>().await;
            };
            let started = std::time::Instant::now();
            assert_eq!(listener.unless_ended(work).await, Err(Signal::INT));
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
            assert_eq!(listener.unless_ended(async { 7 }).await, Ok(7));
        });
    }

    #[test]
    fn only_int_and_term_end() {
        assert!(ends(Signal::INT) && ends(Signal::TERM));
        assert!(!ends(Signal::HUP) && !ends(Signal::USR1));
    }
}
