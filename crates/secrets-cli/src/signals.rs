//! Unix signals for `watch` and `exec --watch`: naming them on the command line
//! (`--restart-signal TERM`), listening for the ones `secrets` handles, and sending one to a
//! child. Depends on no other module of the crate (`cli` uses [`parse`]).

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

/// Sends `signal` to the process `pid`. A process that is already gone is no error: it was
/// about to be reaped.
pub(crate) fn send(pid: u32, signal: Signal) {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    // ESRCH: it exited in the meantime; nothing else can fail for our own child.
    let _ = rustix::process::kill_process(pid, signal);
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
    fn only_int_and_term_end() {
        assert!(ends(Signal::INT) && ends(Signal::TERM));
        assert!(!ends(Signal::HUP) && !ends(Signal::USR1));
    }
}
