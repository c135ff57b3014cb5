//! Servers that outlive the process that started them (`cargo xtask services up`).

use std::fmt;
use std::path::PathBuf;

/// A server started by [`OpenBaoServer::start_detached`](crate::OpenBaoServer::start_detached)
/// or [`CerbosServer::start_detached`](crate::cerbos::CerbosServer::start_detached): healthy
/// when returned, in its own process group, and never stopped by this crate (stop it by
/// [`pid`](Self::pid)). `Debug` redacts the root token.
#[derive(Clone)]
#[non_exhaustive]
pub struct Detached {
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    /// The HTTP port.
    pub port: u16,
    /// The server's process id.
    pub pid: u32,
    /// Its log file.
    pub log: PathBuf,
    /// The server's admin credential: OpenBao's root token, PostgreSQL's superuser password
    /// (`None` for servers without one, such as Cerbos and tansu).
    pub root_token: Option<String>,
}

impl fmt::Debug for Detached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detached")
            .field("addr", &self.addr)
            .field("pid", &self.pid)
            .field("log", &self.log)
            .field(
                "root_token",
                &self.root_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish_non_exhaustive()
    }
}
