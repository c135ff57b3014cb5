//! How a command ended, and the process exit code it maps to.

use std::process::ExitCode;

/// How a command ended; converts to the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Exit 0: everything was valid (and resolved).
    Success,
    /// Exit 1: the command ran, and found invalid URIs or secrets it could not resolve.
    Findings,
    /// Exit 2: bad usage, a configuration or I/O error, or (`uri parse`) an invalid URI.
    Failure,
    /// This exit code: `exec`'s when its command cannot be started (126, 127), or the
    /// command's own where the process cannot be replaced.
    Exit(u8),
}

impl Status {
    /// The process exit code.
    #[must_use]
    pub(crate) const fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Findings => 1,
            Self::Failure => 2,
            Self::Exit(code) => code,
        }
    }
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> Self {
        Self::from(status.code())
    }
}
