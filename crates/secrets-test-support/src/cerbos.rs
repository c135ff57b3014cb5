//! A throwaway Cerbos PDP for tests: `cerbos server` on a free loopback port, serving a policy
//! folder from disk, with the AuthZEN endpoints (`/.well-known/authzen-configuration`,
//! `/access/v1/evaluation`, `/access/v1/evaluations`) on its HTTP port.
//!
//! ```no_run
//! # fn main() -> Result<(), secrets_test_support::Error> {
//! use secrets_test_support::cerbos::CerbosServer;
//!
//! let mut cerbos = CerbosServer::start(&secrets_test_support::cerbos::policies())?;
//! assert!(cerbos.addr().starts_with("http://127.0.0.1:"));
//! cerbos.stop(); // "PDP down"
//! cerbos.restart()?; // back on the same port
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use crate::launch::{self, LaunchError};
use crate::{Detached, Error, cerbos_bin, free_port, http};

/// How long a fresh server may take to become healthy (generous: CI runs many at once on two
/// cores).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Per readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Unix socket paths longer than this do not fit `sockaddr_un`; fall back to TCP.
const MAX_SOCKET_PATH: usize = 100;

/// A fresh `cerbos server` on a free loopback port, killed (and reaped) on drop.
///
/// The HTTP API (Cerbos' own and AuthZEN) is on [`Self::addr`]; gRPC is on a Unix socket in
/// the server's private temp dir (or a second free port when that path would be too long).
/// Policies are read once from the folder given to [`Self::start`] (no watching), telemetry
/// is off, and the test's `CERBOS_*` variables are not passed on.
pub struct CerbosServer {
    bin: PathBuf,
    port: u16,
    policy_dir: PathBuf,
    /// Private temp dir: `conf.yaml`, `cerbos.log`, `grpc.sock`; for [`Self::start_detached`]
    /// the caller's folder (`cerbos.yaml`, `cerbos.log`, `cerbos-grpc.sock`).
    workdir: PathBuf,
    /// Started by [`Self::start_detached`]: its own process group, policies watched for
    /// changes, and `workdir` is not ours to remove.
    detached: bool,
    child: Option<Child>,
}

impl fmt::Debug for CerbosServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CerbosServer")
            .field("addr", &self.addr())
            .field("pid", &self.pid())
            .field("policy_dir", &self.policy_dir)
            .field("workdir", &self.workdir)
            .finish()
    }
}

impl CerbosServer {
    /// Starts a fresh server for the policies in `policy_dir` and waits until
    /// `/_cerbos/health` reports `SERVING` and the AuthZEN discovery document answers.
    ///
    /// # Errors
    /// `TOOL_MISSING` when `cerbos` is not installed, `IO` when it cannot be started, exits
    /// early (the message has the last log lines; bad policies end up here) or does not
    /// become healthy in time.
    pub fn start(policy_dir: &Path) -> Result<Self, Error> {
        Self::launch(policy_dir, None)
    }

    /// Starts a server, as [`Self::start`], that outlives this process: in its own process
    /// group (a Ctrl-C in the terminal does not reach it), its configuration and log in
    /// `dir`, watching `policy_dir` for changes, never stopped by us. `cargo xtask services
    /// up` starts the shared PDP with it; stop it by its pid.
    ///
    /// # Errors
    /// As [`Self::start`].
    pub fn start_detached(policy_dir: &Path, dir: &Path) -> Result<Detached, Error> {
        let mut server = Self::launch(policy_dir, Some(dir))?;
        // Taken, not killed: dropping a `Child` leaves the process running.
        let pid = server.child.take().map_or(0, |child| child.id());
        Ok(Detached {
            addr: server.addr(),
            port: server.port,
            pid,
            log: server.log_path(),
            root_token: None,
        })
    }

    /// Whether a Cerbos on `127.0.0.1:port` is ready: `/_cerbos/health` says `SERVING` and
    /// the AuthZEN discovery document answers. The one readiness check, for the servers
    /// started here and for `cargo xtask services`.
    pub fn is_ready_at(port: u16) -> bool {
        let socket = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let get = |path: &str| {
            http::request(socket, "GET", path, &[], None, PROBE_TIMEOUT)
                .ok()
                .filter(|r| r.status == 200)
        };
        get("/_cerbos/health").is_some_and(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body)
                .is_ok_and(|v| v["status"] == "SERVING")
        }) && get("/.well-known/authzen-configuration").is_some()
    }

    fn launch(policy_dir: &Path, keep: Option<&Path>) -> Result<Self, Error> {
        let bin = cerbos_bin()?;
        let policy_dir = std::fs::canonicalize(policy_dir).map_err(Error::io(format!(
            "resolve policy dir {}",
            policy_dir.display()
        )))?;
        let workdir = launch::workdir("cerbos", keep)?;
        let mut server = Self {
            bin,
            port: 0,
            policy_dir,
            workdir,
            detached: keep.is_some(),
            child: None,
        };
        let started = launch::on_free_port(|port| {
            server.port = port;
            server.spawn_and_wait()
        });
        started.map_err(|e| server.launch_error(e))?;
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`: the AuthZEN PDP URL (stable across [`Self::restart`]).
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The HTTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the server process is running (it has not been stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The policy folder being served.
    pub fn policy_dir(&self) -> &Path {
        &self.policy_dir
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.workdir.join("cerbos.log")
    }

    /// The configuration file written for each start.
    fn config_path(&self) -> PathBuf {
        self.workdir.join(if self.detached {
            "cerbos.yaml"
        } else {
            "conf.yaml"
        })
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        launch::log_tail(&self.log_path(), lines)
    }

    /// Kills the server and waits for it (idempotent): the port then refuses connections.
    pub fn stop(&mut self) {
        launch::stop_child(&mut self.child);
    }

    /// Stops the server if it runs, then starts it again on the same port with the same
    /// policies (re-read from disk).
    ///
    /// # Errors
    /// `IO` when it does not come back (the port was taken meanwhile, or it is unhealthy).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop();
        let started = launch::on_same_port(|| self.spawn_and_wait());
        started.map_err(|e| self.launch_error(e))
    }

    fn launch_error(&self, error: LaunchError) -> Error {
        launch::launch_error(error, "cerbos server", "cerbos", &self.log_path())
    }

    fn write_config(&self) -> Result<PathBuf, Error> {
        let socket = self.workdir.join(if self.detached {
            "cerbos-grpc.sock"
        } else {
            "grpc.sock"
        });
        let grpc = if socket.as_os_str().len() <= MAX_SOCKET_PATH {
            let _ = std::fs::remove_file(&socket);
            format!("unix:{}", socket.display())
        } else {
            format!("127.0.0.1:{}", free_port()?)
        };
        // JSON strings are valid YAML double-quoted scalars: paths need no further escaping.
        let quote = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
        let yaml = format!(
            "server:\n  httpListenAddr: {http}\n  grpcListenAddr: {grpc}\n\
             storage:\n  driver: disk\n  disk:\n    directory: {dir}\n    watchForChanges: {watch}\n\
             telemetry:\n  disabled: true\n",
            http = quote(&format!("127.0.0.1:{}", self.port)),
            grpc = quote(&grpc),
            dir = quote(&self.policy_dir.to_string_lossy()),
            // A shared server picks up policy edits; a test's serves what it started with.
            watch = self.detached,
        );
        let path = self.config_path();
        std::fs::write(&path, yaml).map_err(Error::io(format!("write {}", path.display())))?;
        Ok(path)
    }

    fn spawn_and_wait(&mut self) -> Result<(), LaunchError> {
        let config = self.write_config().map_err(LaunchError::Other)?;
        let log_path = self.log_path();
        let log = launch::open_log(
            &log_path,
            &format!("--- cerbos server on port {} ---", self.port),
        )?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("server")
            .arg(format!("--config={}", config.display()))
            .arg("--log-level=warn")
            .current_dir(&self.workdir)
            .env("CERBOS_NO_TELEMETRY", "1");
        // The test's own CERBOS_* settings must not steer the server.
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if name.starts_with("CERBOS_") && name != "CERBOS_NO_TELEMETRY" {
                cmd.env_remove(&key);
            }
        }
        let child = launch::spawn(&mut cmd, &self.bin, log, self.detached)?;
        self.child = Some(child);
        let port = self.port;
        launch::Readiness {
            server: "cerbos server",
            process: "cerbos",
            addr: self.addr(),
            state: "healthy",
            in_use: &["address already in use"],
            log_path: &log_path,
            timeout: START_TIMEOUT,
            poll: Duration::from_millis(25),
        }
        .wait(&mut self.child, || Self::is_ready_at(port))
    }
}

impl Drop for CerbosServer {
    fn drop(&mut self) {
        self.stop();
        launch::cleanup("Cerbos", &self.log_path(), &self.workdir, self.detached);
    }
}

/// The workspace's Cerbos test policies (`fixtures/cerbos` in this crate): resource kind
/// `secret`, action `execute`, readers of tenant t1 on mount `secret`; `seven/` grants 7 uses,
/// `short/` a 1 s TTL, `mfa/` an obligation, `classified/` a classification, `denied/` is
/// refused. Its `secret_test.yaml` is the Cerbos test suite `cerbos compile` runs.
pub fn policies() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/cerbos")
}

/// [`CerbosServer::start`] for tests: `None` (after a `SKIP` line) when `cerbos` is not
/// installed and not under CI; panics under `CI=true`, and whenever `cerbos` is installed but
/// fails to start (that is a bug, not a missing tool).
pub fn cerbos_or_skip(policy_dir: &Path) -> Option<CerbosServer> {
    launch::or_skip(
        CerbosServer::start(policy_dir),
        "Cerbos unavailable",
        "Cerbos server failed to start",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random_hex;

    #[test]
    fn serves_authzen_and_restarts_on_the_same_port() -> Result<(), Error> {
        let policies = std::env::temp_dir().join(format!("cerbos-policies-{}", random_hex()));
        std::fs::create_dir_all(&policies).map_err(Error::io("create policy dir"))?;
        std::fs::write(
            policies.join("doc.yaml"),
            "apiVersion: api.cerbos.dev/v1\nresourcePolicy:\n  version: default\n  resource: doc\n  rules:\n    - actions: [\"read\"]\n      effect: EFFECT_ALLOW\n      roles: [\"user\"]\n",
        )
        .map_err(Error::io("write policy"))?;
        let Some(mut cerbos) = cerbos_or_skip(&policies) else {
            return Ok(());
        };
        let socket = SocketAddr::from((Ipv4Addr::LOCALHOST, cerbos.port()));
        let ask = |socket| {
            let body = br#"{"subject":{"type":"user","id":"a"},"resource":{"type":"doc","id":"1"},"action":{"name":"read"}}"#;
            http::request(
                socket,
                "POST",
                "/access/v1/evaluation",
                &[("Content-Type", "application/json")],
                Some(body),
                PROBE_TIMEOUT,
            )
        };
        let response = ask(socket)?;
        assert_eq!(response.status, 200);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&response.body).ok(),
            Some(serde_json::json!({"decision": true}))
        );
        let port = cerbos.port();
        cerbos.stop();
        assert!(!cerbos.is_running());
        assert!(ask(socket).is_err(), "a stopped server refuses connections");
        cerbos.restart()?;
        assert_eq!(cerbos.port(), port);
        assert_eq!(ask(socket)?.status, 200);
        drop(cerbos);
        let _ = std::fs::remove_dir_all(&policies);
        Ok(())
    }
}
