//! Throwaway OpenBao dev servers and an admin client for setting up test data.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http;
use crate::launch::{self, PORT_ATTEMPTS};
use crate::{Detached, Error, bao_bin, free_port_pair, random_hex};

mod admin;
mod database;
mod tls;

pub use self::admin::AppRoleCredentials;

/// How long a fresh dev server may take to become healthy (generous: CI runs many in parallel
/// on two cores).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Per readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A fresh `bao server -dev` on a free loopback port, killed (and reaped) on drop.
///
/// Dev mode keeps everything in memory, starts unsealed, and mounts KV v2 at `secret/`. Each
/// server gets a random root token; nothing is written to `~/.vault-token`.
///
/// ```no_run
/// # fn main() -> Result<(), secrets_test_support::Error> {
/// use secrets_test_support::OpenBaoServer;
/// use serde_json::json;
///
/// let bao = OpenBaoServer::start()?;
/// let version = bao.kv_put("secret", "app/api", &json!({"token": "s3cr3t"}))?;
/// let (status, body) = bao.api("GET", &format!("secret/data/app/api?version={version}"), None)?;
/// assert_eq!(status, 200);
/// assert_eq!(body["data"]["data"]["token"], "s3cr3t");
/// # Ok(()) }
/// ```
pub struct OpenBaoServer {
    bin: PathBuf,
    port: u16,
    /// Plain-HTTP listener for admin calls and health probes: `port` itself unless TLS.
    admin_port: u16,
    root_token: String,
    mode: Mode,
    /// Private temp dir: `bao.log`, and for TLS `certs/` plus `admin-listener.hcl`; for
    /// [`Self::start_detached`] the caller's folder.
    workdir: PathBuf,
    /// The server's log file.
    log: PathBuf,
    /// Started by [`Self::start_detached`]: its own process group, and `workdir` is not ours
    /// to remove.
    detached: bool,
    child: Option<Child>,
}

impl fmt::Debug for OpenBaoServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenBaoServer")
            .field("addr", &self.addr())
            .field("admin_addr", &self.admin_addr())
            .field("root_token", &"[REDACTED]")
            .field("pid", &self.pid())
            .field("workdir", &self.workdir)
            .finish()
    }
}

/// How the API listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Plain HTTP.
    Plain,
    /// `-dev-tls`: TLS with a CA of the server's own.
    DevTls,
    /// TLS that requires a client certificate signed by the test CA.
    MutualTls,
}

impl OpenBaoServer {
    /// Starts a fresh plain-HTTP dev server and waits until `/v1/sys/health` reports it
    /// unsealed and the `secret/` mount answers.
    pub fn start() -> Result<Self, Error> {
        Self::launch(Mode::Plain, None)
    }

    /// Starts a plain-HTTP dev server, as [`Self::start`], that outlives this process: in its
    /// own process group (a Ctrl-C in the terminal does not reach it), logging to
    /// `dir/openbao.log`, never stopped by us. `cargo xtask services up` starts the shared
    /// server with it; stop it by its pid.
    ///
    /// # Errors
    /// As [`Self::start`].
    pub fn start_detached(dir: &Path) -> Result<Detached, Error> {
        let mut server = Self::launch(Mode::Plain, Some(dir))?;
        // Taken, not killed: dropping a `Child` leaves the process running.
        let pid = server.child.take().map_or(0, |child| child.id());
        Ok(Detached {
            addr: server.addr(),
            port: server.port,
            pid,
            log: server.log_path(),
            root_token: Some(server.root_token.clone()),
        })
    }

    /// Whether an OpenBao on `127.0.0.1:port` (plain HTTP) is ready: `/v1/sys/health` says
    /// unsealed and, given its root token, the `secret/` mount answers. The one readiness
    /// check, for the servers started here and for `cargo xtask services`.
    pub fn is_ready_at(port: u16, root_token: Option<&str>) -> bool {
        let socket = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
        let probe = |path: &str, token: Option<&str>| {
            let headers: Vec<(&str, &str)> =
                token.map(|t| ("X-Vault-Token", t)).into_iter().collect();
            http::request(socket, "GET", path, &headers, None, PROBE_TIMEOUT).ok()
        };
        let healthy = probe("/v1/sys/health", None).is_some_and(|r| {
            r.status == 200
                && serde_json::from_slice::<Value>(&r.body)
                    .is_ok_and(|v| v["sealed"] == Value::Bool(false))
        });
        healthy
            && root_token.is_none_or(|token| {
                probe("/v1/secret/config", Some(token)).is_some_and(|r| r.status == 200)
            })
    }

    fn launch(mode: Mode, keep: Option<&Path>) -> Result<Self, Error> {
        let bin = bao_bin()?;
        let workdir = crate::launch::workdir("bao", keep)?;
        let log = workdir.join(if keep.is_some() {
            "openbao.log"
        } else {
            "bao.log"
        });
        let mut server = Self {
            bin,
            port: 0,
            admin_port: 0,
            root_token: format!("root-{}", random_hex()),
            mode,
            workdir,
            log,
            detached: keep.is_some(),
            child: None,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            server.port = free_port_pair()?;
            server.admin_port = server.port;
            if mode != Mode::Plain {
                // Neither the admin port nor its implicit cluster port (+1) may collide.
                server.admin_port = loop {
                    let candidate = free_port_pair()?;
                    if candidate.abs_diff(server.port) > 1 {
                        break candidate;
                    }
                };
            }
            match server.spawn_and_wait() {
                Err(e) if attempt < PORT_ATTEMPTS && is_addr_in_use(&e) => continue,
                result => return result.map(|()| server),
            }
        }
    }

    /// `http://127.0.0.1:PORT` (or `https://…` for [`Self::start_tls`] and
    /// [`Self::start_mtls`]).
    pub fn addr(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Plain-HTTP address the admin helpers use: equal to [`Self::addr`] unless TLS.
    pub fn admin_addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// The API port (stable across [`Self::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The root token (stable across [`Self::restart`]).
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// Whether the API is served over TLS.
    pub fn is_tls(&self) -> bool {
        self.mode != Mode::Plain
    }

    /// PEM of the CA that signed the TLS server's certificate (`None` for plain HTTP). The
    /// file is regenerated, with a new CA, on every (re)start.
    pub fn ca_cert_path(&self) -> Option<PathBuf> {
        self.is_tls().then(|| self.cert_dir().join("vault-ca.pem"))
    }

    /// PEM of a client certificate the [`Self::start_mtls`] listener accepts (`None` for the
    /// other kinds of server).
    pub fn client_cert_path(&self) -> Option<PathBuf> {
        (self.mode == Mode::MutualTls).then(|| self.cert_dir().join("client-cert.pem"))
    }

    /// The private key (PEM, PKCS#8) of [`Self::client_cert_path`].
    pub fn client_key_path(&self) -> Option<PathBuf> {
        (self.mode == Mode::MutualTls).then(|| self.cert_dir().join("client-key.pem"))
    }

    /// The server's log file (stdout and stderr of every start, appended).
    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    /// The last `lines` lines of the server log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        launch::log_tail(&self.log_path(), lines)
    }

    /// The server's process id, or `None` while stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is alive (it may still be starting).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the server (SIGKILL) and reaps it. Connections then fail with "connection
    /// refused" until [`Self::restart`]. Idempotent.
    pub fn stop(&mut self) {
        launch::stop_child(&mut self.child);
    }

    /// Stops the server (if running) and starts it again on the same port with the same root
    /// token, then waits until healthy.
    ///
    /// Dev-mode storage is in memory: **all data, policies, tokens other than the root token,
    /// auth mounts and namespaces are gone** after a restart, and a TLS server gets a new CA.
    /// Callers re-create what they need.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn_and_wait() {
                // The old socket may linger for a moment, or another process grabbed the port.
                Err(e) if Instant::now() < deadline && is_addr_in_use(&e) => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                result => return result,
            }
        }
    }

    fn cert_dir(&self) -> PathBuf {
        self.workdir.join("certs")
    }

    fn spawn_and_wait(&mut self) -> Result<(), Error> {
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(Error::io(format!("open {}", log_path.display())))?;
        writeln!(
            log,
            "==> secrets-test-support: starting bao on 127.0.0.1:{}",
            self.port
        )
        .map_err(Error::io(format!("write {}", log_path.display())))?;

        let mut cmd = Command::new(&self.bin);
        cmd.args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={}", self.root_token));
        if self.mode == Mode::MutualTls {
            // The dev listener is the plain admin one; the API is a listener of its own.
            let certs = self.cert_dir();
            let _ = std::fs::remove_dir_all(&certs);
            Self::write_test_pki(&certs)?;
            let config = self.workdir.join("mtls-listener.hcl");
            let file = |name: &str| certs.join(name).display().to_string();
            let hcl = format!(
                "listener \"tcp\" {{\n  address = \"127.0.0.1:{}\"\n  \
                 tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n  \
                 tls_client_ca_file = \"{}\"\n  \
                 tls_require_and_verify_client_cert = true\n}}\n",
                self.port,
                file("vault-cert.pem"),
                file("vault-key.pem"),
                file("vault-ca.pem"),
            );
            std::fs::write(&config, hcl)
                .map_err(Error::io(format!("write {}", config.display())))?;
            cmd.arg(format!("-dev-listen-address=127.0.0.1:{}", self.admin_port))
                .arg(format!("-config={}", config.display()));
        } else {
            cmd.arg(format!("-dev-listen-address=127.0.0.1:{}", self.port));
        }
        if self.mode == Mode::DevTls {
            let certs = self.cert_dir();
            // A killed server leaves its read-only cert files behind; start from a clean dir.
            let _ = std::fs::remove_dir_all(&certs);
            std::fs::create_dir_all(&certs)
                .map_err(Error::io(format!("create {}", certs.display())))?;
            let config = self.workdir.join("admin-listener.hcl");
            let hcl = format!(
                "listener \"tcp\" {{\n  address = \"127.0.0.1:{}\"\n  tls_disable = true\n}}\n",
                self.admin_port
            );
            std::fs::write(&config, hcl)
                .map_err(Error::io(format!("write {}", config.display())))?;
            cmd.arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", certs.display()))
                .arg(format!("-config={}", config.display()));
        }
        // The test's own BAO_*/VAULT_* settings must not steer the server.
        for (key, _) in std::env::vars_os() {
            let key_str = key.to_string_lossy();
            if key_str.starts_with("BAO_") || key_str.starts_with("VAULT_") {
                cmd.env_remove(&key);
            }
        }
        if self.detached {
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        }
        let stdout = log.try_clone().map_err(Error::io("clone log handle"))?;
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(log);
        let child = cmd
            .spawn()
            .map_err(Error::io(format!("spawn {}", self.bin.display())))?;
        self.child = Some(child);

        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        self.child = None;
                        return Err(Error::ServerExited {
                            status: status.to_string(),
                            log_tail: self.log_tail(15),
                        });
                    }
                    Ok(None) => {}
                    Err(source) => {
                        self.stop();
                        return Err(Error::Io {
                            context: "poll bao process".into(),
                            source,
                        });
                    }
                }
            }
            if self.ready() {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                self.stop();
                return Err(Error::NotHealthy {
                    addr: self.admin_addr(),
                    waited: started.elapsed(),
                    log_tail: self.log_tail(15),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn ready(&self) -> bool {
        Self::is_ready_at(self.admin_port, Some(&self.root_token))
    }
}

impl Drop for OpenBaoServer {
    fn drop(&mut self) {
        self.stop();
        launch::cleanup("OpenBao", &self.log_path(), &self.workdir, self.detached);
    }
}

fn is_addr_in_use(error: &Error) -> bool {
    matches!(error, Error::ServerExited { log_tail, .. } if log_tail.contains("address already in use"))
}
