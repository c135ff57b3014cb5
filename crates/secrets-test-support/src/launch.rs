//! What every server launcher shares: the folder a server keeps its files in, how one launch
//! attempt fails, and starting on a free port (again on another when the port was taken
//! between choosing and binding it, or on the same one after a restart).

use std::path::{Path, PathBuf};
use std::time::Duration;

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
