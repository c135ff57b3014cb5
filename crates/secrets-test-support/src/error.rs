use std::time::Duration;

/// Everything that can go wrong while setting up a test fixture.
///
/// Messages name the tool, address and HTTP status, and quote the server's own `errors` strings
/// or log lines (which may mention test-only dev tokens), never secret values read back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tool binary (`bao`, `cerbos`, `tansu`, `redis-server`) is not installed.
    #[error("{tool} binary not found (looked at {looked_at}); run `cargo xtask services install`")]
    ToolMissing {
        /// `"bao"`, `"cerbos"`, `"tansu"`, `"redis-server"`, `"node"` or `"oidc-provider"`.
        tool: &'static str,
        /// The paths that were checked, comma separated.
        looked_at: String,
    },
    /// No ancestor of the start directories holds `.tools/` or a workspace `Cargo.toml`.
    #[error("repository root not found above {start}")]
    RepoRootNotFound {
        /// The directories the search started from.
        start: String,
    },
    /// A local I/O operation (spawn, bind, connect, file write) failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The server process exited before it became healthy.
    #[error("OpenBao dev server exited early ({status}); last log lines:\n{log_tail}")]
    ServerExited {
        /// The exit status as printed by the OS.
        status: String,
        /// The last lines of the server's log.
        log_tail: String,
    },
    /// The server did not answer `/v1/sys/health` in time.
    #[error(
        "OpenBao dev server on {addr} not healthy after {waited:?}; last log lines:\n{log_tail}"
    )]
    NotHealthy {
        /// The address polled.
        addr: String,
        /// How long we waited.
        waited: Duration,
        /// The last lines of the server's log.
        log_tail: String,
    },
    /// The server was stopped with [`OpenBaoServer::stop`](crate::OpenBaoServer::stop).
    #[error("OpenBao dev server is stopped; call restart() first")]
    Stopped,
    /// A response could not be parsed as HTTP/1.1.
    #[error("malformed HTTP response from {addr}: {reason}")]
    BadResponse {
        /// The peer.
        addr: String,
        /// What was wrong.
        reason: String,
    },
    /// An admin call returned a status the helper did not expect.
    #[error("{method} {path} returned HTTP {status}: {errors}")]
    UnexpectedStatus {
        /// The HTTP method.
        method: String,
        /// The request path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The server's `errors` array, joined (not the full body).
        errors: String,
    },
}

impl Error {
    /// A stable, never-reused code for this error kind.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ToolMissing { .. } => "TOOL_MISSING",
            Self::RepoRootNotFound { .. } => "REPO_ROOT_NOT_FOUND",
            Self::Io { .. } => "IO",
            Self::ServerExited { .. } => "SERVER_EXITED",
            Self::NotHealthy { .. } => "NOT_HEALTHY",
            Self::Stopped => "STOPPED",
            Self::BadResponse { .. } => "MALFORMED_RESPONSE",
            Self::UnexpectedStatus { .. } => "UNEXPECTED_STATUS",
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
