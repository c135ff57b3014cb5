//! A throwaway Redis for tests: Debian's `redis-server` on a free loopback port, keeping
//! nothing on disk, with [`stop`](RedisServer::stop) and [`restart`](RedisServer::restart) on
//! the same port for "state store down" tests, and a small RESP client
//! ([`RespConnection`]) over `std::net` to look at what the code under test stored,
//! independent of the Redis client that code uses.
//!
//! ```no_run
//! # fn main() -> Result<(), secrets_test_support::Error> {
//! use secrets_test_support::redis::{RedisServer, Reply};
//!
//! let mut redis = RedisServer::start()?;
//! assert!(redis.url().starts_with("redis://127.0.0.1:"));
//! assert_eq!(redis.command(&["SET", "k", "v"])?, Reply::ok());
//! redis.stop(); // "Redis down": the port refuses connections
//! redis.restart()?; // back on the same port, empty
//! assert_eq!(redis.command(&["DBSIZE"])?, Reply::Integer(0));
//! # Ok(()) }
//! ```

use std::fmt;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::launch::{self, LaunchError};
use crate::{Detached, Error, OpenBaoServer, Shared, free_port, tools_dir};

/// Overrides the `redis-server` binary (absolute path).
pub const REDIS_BIN_ENV: &str = "SECRETS_TEST_REDIS_BIN";

/// How long a fresh server may take to answer (generous: CI runs many at once on two cores).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Per readiness probe, and per call of a [`RespConnection`] unless told otherwise.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest bulk string or array the RESP client accepts (Redis' own limit is 512 MiB).
const MAX_BULK: usize = 64 << 20;
/// Nesting the RESP client follows before it calls a reply malformed.
const MAX_DEPTH: usize = 16;
/// What the missing-tool error tells the reader to install.
const INSTALL_HINT: &str = "Debian's package redis-server (`cargo xtask services install` \
                            runs `apt-get install -y redis-server` as root)";

/// The `redis-server` binary: `$SECRETS_TEST_REDIS_BIN`, else `redis-server` on `PATH`, else
/// `.tools/bin/redis-server` (the link `cargo xtask services install` makes).
///
/// # Errors
/// `TOOL_MISSING` (its message says what to install) when none is a file.
pub fn redis_bin() -> Result<PathBuf, Error> {
    find_redis(
        std::env::var_os(REDIS_BIN_ENV).filter(|v| !v.is_empty()),
        std::env::var_os("PATH"),
        &tools_dir()?,
    )
}

fn find_redis(
    overridden: Option<std::ffi::OsString>,
    path: Option<std::ffi::OsString>,
    tools: &Path,
) -> Result<PathBuf, Error> {
    if let Some(path) = overridden.map(PathBuf::from) {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::ToolMissing {
                tool: "redis-server",
                looked_at: format!(
                    "${REDIS_BIN_ENV}={}; install {INSTALL_HINT}",
                    path.display()
                ),
            })
        };
    }
    let mut candidates: Vec<PathBuf> = path
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("redis-server"))
        .collect();
    candidates.push(tools.join("bin/redis-server"));
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| Error::ToolMissing {
            tool: "redis-server",
            looked_at: format!(
                "`redis-server` on PATH, {}; install {INSTALL_HINT}",
                tools.join("bin/redis-server").display()
            ),
        })
}

/// A fresh `redis-server` on a free loopback port, killed (and reaped) on drop.
///
/// Bound to `127.0.0.1` only with `protected-mode yes`, no persistence (`save ""`,
/// `appendonly no`): a [`restart`](Self::restart) comes back on the same port with no keys.
/// Its configuration, log and working dir are a private temp dir. With a password
/// ([`Self::start_with_password`]) the server requires `AUTH` (`requirepass`); the password is
/// in the configuration file, not on the command line, and `Debug` redacts it. With TLS
/// ([`Self::start_tls`]) [`Self::port`] speaks only TLS, and a plain admin port serves the
/// helpers here.
pub struct RedisServer {
    bin: PathBuf,
    /// What clients use: plain, or TLS only.
    port: u16,
    /// Plain RESP for readiness and the helpers: `port` unless TLS.
    admin_port: u16,
    tls: bool,
    password: Option<String>,
    /// Private temp dir holding `redis.conf` and `redis.log`; for [`Self::start_detached`]
    /// the caller's folder.
    workdir: PathBuf,
    /// Started by [`Self::start_detached`]: its own process group, and `workdir` is not ours
    /// to remove.
    detached: bool,
    /// Frozen by [`Self::pause`].
    paused: bool,
    child: Option<Child>,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("url", &self.url_with("[REDACTED]"))
            .field("admin_port", &self.admin_port)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("pid", &self.pid())
            .field("paused", &self.paused)
            .field("workdir", &self.workdir)
            .finish()
    }
}

impl RedisServer {
    /// Starts a fresh server without a password and waits until it answers `PING` with
    /// `PONG`.
    ///
    /// # Errors
    /// `TOOL_MISSING` when `redis-server` is not installed, `IO` when it cannot be started,
    /// exits early (the message has the last log lines) or does not answer in time.
    pub fn start() -> Result<Self, Error> {
        Self::launch(None, false, None)
    }

    /// Starts a fresh server, as [`Self::start`], that requires `password` (`requirepass`,
    /// the `default` user's password): [`Self::url`] carries it, a client without it gets
    /// `NOAUTH`.
    ///
    /// # Errors
    /// As [`Self::start`].
    pub fn start_with_password(password: impl Into<String>) -> Result<Self, Error> {
        Self::launch(Some(password.into()), false, None)
    }

    /// Starts a fresh server, as [`Self::start`], whose [`Self::port`] speaks only TLS
    /// ([`Self::url`] is `rediss://127.0.0.1:PORT`), with a certificate for `localhost` and
    /// `127.0.0.1` signed by the CA at [`Self::ca_cert_path`] (made anew per server, kept
    /// across [`Self::restart`]; client certificates are not asked for). The helpers here
    /// ([`Self::command`], [`Self::entries`], readiness) use a second, plain port on loopback,
    /// [`Self::admin_port`].
    ///
    /// # Errors
    /// As [`Self::start`], and `IO` when the test PKI cannot be written.
    pub fn start_tls() -> Result<Self, Error> {
        Self::launch(None, true, None)
    }

    /// [`Self::start_tls`] with a password, as [`Self::start_with_password`].
    ///
    /// # Errors
    /// As [`Self::start_tls`].
    pub fn start_tls_with_password(password: impl Into<String>) -> Result<Self, Error> {
        Self::launch(Some(password.into()), true, None)
    }

    /// Starts a server without a password, as [`Self::start`], that outlives this process: in
    /// its own process group, `redis.conf` and `redis.log` in `dir` (also its working dir),
    /// never stopped by us. `cargo xtask services up` starts the shared Redis with it; stop it
    /// by its pid. [`Detached::addr`] is the URL `redis://127.0.0.1:PORT`.
    ///
    /// # Errors
    /// As [`Self::start`].
    pub fn start_detached(dir: &Path) -> Result<Detached, Error> {
        let mut server = Self::launch(None, false, Some(dir))?;
        // Taken, not killed: dropping a `Child` leaves the process running.
        let pid = server.child.take().map_or(0, |child| child.id());
        Ok(Detached {
            addr: server.url(),
            port: server.port,
            pid,
            log: server.log_path(),
            root_token: None,
        })
    }

    /// Whether a Redis on `127.0.0.1:port` is ready: it answers `PING` with `PONG` (after
    /// `AUTH password` when given). The one readiness check, for the servers started here and
    /// for `cargo xtask services`.
    pub fn is_ready_at(port: u16, password: Option<&str>) -> bool {
        RespConnection::connect(port, password)
            .and_then(|mut conn| conn.command(&["PING"]))
            .is_ok_and(|reply| reply == Reply::Simple("PONG".into()))
    }

    fn launch(password: Option<String>, tls: bool, keep: Option<&Path>) -> Result<Self, Error> {
        let bin = redis_bin()?;
        let workdir = launch::workdir("redis", keep)?;
        if tls {
            OpenBaoServer::write_test_pki(&workdir)?;
        }
        let mut server = Self {
            bin,
            port: 0,
            admin_port: 0,
            tls,
            password,
            workdir,
            detached: keep.is_some(),
            paused: false,
            child: None,
        };
        let started = launch::on_free_port(|port| {
            server.port = port;
            server.admin_port = if tls {
                free_port().map_err(LaunchError::Other)?
            } else {
                port
            };
            server.spawn_and_wait()
        });
        started.map_err(|e| server.launch_error(e))?;
        Ok(server)
    }

    /// `redis://127.0.0.1:PORT`, or `redis://:PASSWORD@127.0.0.1:PORT` (percent-encoded) with
    /// a password; `rediss://…` with TLS: the value for `REDIS_URL` (stable across
    /// [`Self::restart`]).
    pub fn url(&self) -> String {
        match &self.password {
            None => self.url_with(""),
            Some(password) => self.url_with(&percent_encode(password)),
        }
    }

    fn url_with(&self, password: &str) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        match self.password {
            None => format!("{scheme}://{}", self.addr()),
            Some(_) => format!("{scheme}://:{password}@{}", self.addr()),
        }
    }

    /// Whether [`Self::port`] speaks TLS ([`Self::start_tls`]).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The CA that signed a TLS server's certificate (PEM), for the client's trust store; the
    /// file exists only for [`Self::start_tls`].
    pub fn ca_cert_path(&self) -> PathBuf {
        self.workdir.join("vault-ca.pem")
    }

    /// The plain-RESP port of a TLS server (the helpers' and readiness'); [`Self::port`]
    /// without TLS.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The password the server requires, if any.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the server process is running (it has not been stopped; a paused server
    /// runs).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.workdir.join("redis.log")
    }

    fn conf_path(&self) -> PathBuf {
        self.workdir.join("redis.conf")
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        launch::log_tail(&self.log_path(), lines)
    }

    /// Kills the server (SIGKILL, as a crash) and waits for it (idempotent): the port then
    /// refuses connections, open connections are reset, and every key is gone.
    pub fn stop(&mut self) {
        launch::stop_child(&mut self.child);
        self.paused = false;
    }

    /// Stops the server if it runs, then starts it again on the same port (and with the same
    /// password), empty. Clients that reconnect to [`Self::url`] find it again.
    ///
    /// # Errors
    /// `IO` when it does not come back (the port was taken meanwhile, or it does not answer).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop();
        let started = launch::on_same_port(|| self.spawn_and_wait());
        started.map_err(|e| self.launch_error(e))
    }

    /// Freezes the server (SIGSTOP) for "Redis hangs" tests: connections still open (the
    /// kernel accepts them) but nothing is answered, so every call of a client times out.
    /// [`Self::resume`] thaws it; [`Self::stop`] and drop work on a paused server too.
    ///
    /// # Errors
    /// `STOPPED` when the server is not running, `IO` when `kill -STOP` fails.
    pub fn pause(&mut self) -> Result<(), Error> {
        self.signal("-STOP")?;
        self.paused = true;
        Ok(())
    }

    /// Thaws a server frozen by [`Self::pause`] (idempotent); what it held is still there.
    ///
    /// # Errors
    /// `STOPPED` when the server is not running, `IO` when `kill -CONT` fails.
    pub fn resume(&mut self) -> Result<(), Error> {
        self.signal("-CONT")?;
        self.paused = false;
        Ok(())
    }

    fn signal(&self, signal: &str) -> Result<(), Error> {
        let pid = self.pid().ok_or(Error::Stopped)?;
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .stdin(Stdio::null())
            .status()
            .map_err(Error::io(format!("run `kill {signal} {pid}`")))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Io {
                context: format!("`kill {signal} {pid}` failed with {status}"),
                source: std::io::Error::other("kill failed"),
            })
        }
    }

    /// A new [`RespConnection`] to this server, authenticated when it has a password.
    ///
    /// # Errors
    /// `IO` when it cannot connect or `AUTH` is refused, `MALFORMED_RESPONSE` on a reply that
    /// is not RESP.
    pub fn connect(&self) -> Result<RespConnection, Error> {
        if self.child.is_none() {
            return Err(Error::Stopped);
        }
        RespConnection::connect(self.admin_port, self.password.as_deref())
    }

    /// Runs one command on a fresh connection ([`Self::connect`]). A Redis error is a
    /// [`Reply::Error`], not an `Err`.
    ///
    /// # Errors
    /// As [`Self::connect`], and `IO` when the server does not answer in time.
    pub fn command<A: AsRef<[u8]>>(&self, args: &[A]) -> Result<Reply, Error> {
        self.connect()?.command(args)
    }

    /// Every key in the current database (`SCAN` to the end), in no particular order.
    ///
    /// # Errors
    /// As [`Self::command`], and `MALFORMED_RESPONSE` when `SCAN` answers something else.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, Error> {
        self.connect()?.scan_keys()
    }

    /// Every key with its type, remaining time to live and content ([`Entry`]): what a leak
    /// test scans for canaries, and what a TTL test reads.
    ///
    /// # Errors
    /// As [`Self::keys`].
    pub fn entries(&self) -> Result<Vec<Entry>, Error> {
        let mut conn = self.connect()?;
        let keys = conn.scan_keys()?;
        keys.into_iter().map(|key| conn.entry(key)).collect()
    }

    fn launch_error(&self, error: LaunchError) -> Error {
        launch::launch_error(error, "redis-server", "redis-server", &self.log_path())
    }

    /// The configuration: loopback only, no persistence, no dangerous surprises.
    fn write_conf(&self) -> Result<(), Error> {
        let mut conf = format!(
            "# Written by secrets-test-support for one test server.\n\
             port {admin_port}\n\
             bind 127.0.0.1\n\
             protected-mode yes\n\
             daemonize no\n\
             supervised no\n\
             save \"\"\n\
             appendonly no\n\
             dir {dir}\n\
             logfile \"\"\n\
             loglevel notice\n\
             databases 16\n",
            admin_port = self.admin_port,
            dir = quote_conf(&self.workdir.display().to_string()),
        );
        if self.tls {
            let file = |name: &str| quote_conf(&self.workdir.join(name).display().to_string());
            conf.push_str(&format!(
                "tls-port {port}\n\
                 tls-cert-file {cert}\n\
                 tls-key-file {key}\n\
                 tls-ca-cert-file {ca}\n\
                 tls-auth-clients no\n",
                port = self.port,
                cert = file("vault-cert.pem"),
                key = file("vault-key.pem"),
                ca = file("vault-ca.pem"),
            ));
        }
        if let Some(password) = &self.password {
            conf.push_str(&format!("requirepass {}\n", quote_conf(password)));
        }
        let path = self.conf_path();
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            // The configuration may hold the password.
            .mode(0o600)
            .open(&path)
            .map_err(Error::io(format!("create {}", path.display())))?;
        file.write_all(conf.as_bytes())
            .map_err(Error::io(format!("write {}", path.display())))
    }

    fn spawn_and_wait(&mut self) -> Result<(), LaunchError> {
        self.write_conf().map_err(LaunchError::Other)?;
        let log_path = self.log_path();
        let log = launch::open_log(
            &log_path,
            &format!("--- redis-server on port {} ---", self.port),
        )?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg(self.conf_path()).current_dir(&self.workdir);
        let child = launch::spawn(&mut cmd, &self.bin, log, self.detached)?;
        self.child = Some(child);
        launch::Readiness {
            server: "redis-server",
            process: "redis-server",
            addr: self.addr(),
            state: "ready",
            in_use: &["in use"],
            log_path: &log_path,
            timeout: START_TIMEOUT,
            poll: Duration::from_millis(10),
        }
        .wait(&mut self.child, || {
            Self::is_ready_at(self.admin_port, self.password.as_deref())
        })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        launch::cleanup("redis", &self.log_path(), &self.workdir, self.detached);
    }
}

/// [`RedisServer::start`] for tests: `None` (after a `SKIP` line) when `redis-server` is not
/// installed and not under CI; panics under `CI=true` (with what to install), and whenever
/// `redis-server` is installed but fails to start (that is a bug, not a missing tool).
pub fn redis_or_skip() -> Option<RedisServer> {
    or_skip(RedisServer::start())
}

/// [`RedisServer::start_with_password`] with the policy of [`redis_or_skip`].
pub fn redis_with_password_or_skip(password: &str) -> Option<RedisServer> {
    or_skip(RedisServer::start_with_password(password))
}

fn or_skip(started: Result<RedisServer, Error>) -> Option<RedisServer> {
    launch::or_skip(started, "Redis unavailable", "redis-server failed to start")
}

/// One Redis for every test of this binary that runs while another holds it ([`Shared`]),
/// with the policy of [`redis_or_skip`]. For tests that keep to a key prefix of their own; a
/// test that stops, pauses, restarts or flushes the server starts its own.
pub fn shared_redis() -> Option<Arc<RedisServer>> {
    static SHARED: Shared<RedisServer> = Shared::new();
    SHARED.get_or_start(redis_or_skip)
}

/// One RESP2 reply.
#[derive(Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`, `+PONG`: a simple string.
    Simple(String),
    /// `-ERR …`, `-NOAUTH …`: an error reply, kept whole.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$…`: a bulk string, `None` for the null bulk string (`$-1`, a missing key).
    Bulk(Option<Vec<u8>>),
    /// `*…`: an array, `None` for the null array (`*-1`).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Self {
        Self::Simple("OK".into())
    }

    /// The bytes of a simple or bulk string; `None` otherwise (and for a null bulk string).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Simple(s) => Some(s.as_bytes()),
            Self::Bulk(Some(b)) => Some(b),
            _ => None,
        }
    }

    /// The integer of an integer reply.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Integer(n) => Some(*n),
            _ => None,
        }
    }

    /// The elements of a (non-null) array.
    pub fn as_array(&self) -> Option<&[Reply]> {
        match self {
            Self::Array(Some(items)) => Some(items),
            _ => None,
        }
    }

    /// Every string this reply holds, flattened (an array's elements in order).
    pub fn strings(&self) -> Vec<Vec<u8>> {
        match self {
            Self::Simple(_) | Self::Bulk(_) => {
                self.as_bytes().map(<[u8]>::to_vec).into_iter().collect()
            }
            Self::Array(Some(items)) => items.iter().flat_map(Reply::strings).collect(),
            Self::Error(_) | Self::Integer(_) | Self::Array(None) => Vec::new(),
        }
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Simple(s) => write!(f, "+{s}"),
            Self::Error(e) => write!(f, "-{e}"),
            Self::Integer(n) => write!(f, ":{n}"),
            Self::Bulk(None) => f.write_str("$nil"),
            Self::Bulk(Some(b)) => write!(f, "${:?}", String::from_utf8_lossy(b)),
            Self::Array(None) => f.write_str("*nil"),
            Self::Array(Some(items)) => f.debug_list().entries(items).finish(),
        }
    }
}

/// One key as [`RedisServer::entries`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// The key.
    pub key: Vec<u8>,
    /// `TYPE`: `string`, `hash`, `list`, `set`, `zset`, `stream`, or `none` when it expired
    /// meanwhile.
    pub kind: String,
    /// `PTTL`: milliseconds left, `-1` without an expiry, `-2` when gone.
    pub pttl_ms: i64,
    /// The content: a string's value; a hash's fields and values, a list's, set's elements; a
    /// sorted set's members and scores; a stream's ids and fields (as `XRANGE` lists them).
    pub values: Vec<Vec<u8>>,
}

impl Entry {
    /// Whether `needle` occurs in the key or any value.
    pub fn contains(&self, needle: &[u8]) -> bool {
        let hit = |hay: &[u8]| !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle);
        hit(&self.key) || self.values.iter().any(|v| hit(v))
    }
}

/// A blocking RESP2 connection to a Redis on loopback, independent of any Redis client crate:
/// what tests use to look at and arrange what is stored. Every call has a timeout
/// ([`Self::set_timeout`], 2 s by default).
pub struct RespConnection {
    reader: BufReader<TcpStream>,
    peer: String,
}

impl fmt::Debug for RespConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RespConnection")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl RespConnection {
    /// Connects to `127.0.0.1:port`, then sends `AUTH password` when given.
    ///
    /// # Errors
    /// `IO` when it cannot connect or `AUTH` is refused, `MALFORMED_RESPONSE` on a reply that
    /// is not RESP.
    pub fn connect(port: u16, password: Option<&str>) -> Result<Self, Error> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let peer = addr.to_string();
        let stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
            .map_err(Error::io(format!("connect to redis at {peer}")))?;
        let _ = stream.set_nodelay(true);
        let mut conn = Self {
            reader: BufReader::new(stream),
            peer,
        };
        conn.set_timeout(PROBE_TIMEOUT)?;
        if let Some(password) = password {
            match conn.command(&["AUTH", password])? {
                Reply::Simple(ok) if ok == "OK" => {}
                // The error text is Redis' own (`WRONGPASS …`); it never echoes the password.
                other => {
                    return Err(Error::Io {
                        context: format!("AUTH refused by redis at {}: {other:?}", conn.peer),
                        source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
                    });
                }
            }
        }
        Ok(conn)
    }

    /// The read and write timeout of every later call.
    ///
    /// # Errors
    /// `IO` when the socket refuses it.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), Error> {
        let stream = self.reader.get_ref();
        stream
            .set_read_timeout(Some(timeout))
            .map_err(Error::io("set read timeout"))?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(Error::io("set write timeout"))
    }

    /// Sends one command (its arguments as bulk strings) and reads its reply. A Redis error
    /// is a [`Reply::Error`], not an `Err`.
    ///
    /// # Errors
    /// `IO` when the connection fails or times out, `MALFORMED_RESPONSE` on a reply that is
    /// not RESP.
    pub fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply, Error> {
        let mut frame = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            let arg = arg.as_ref();
            frame.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            frame.extend_from_slice(arg);
            frame.extend_from_slice(b"\r\n");
        }
        self.reader
            .get_mut()
            .write_all(&frame)
            .map_err(Error::io(format!(
                "send a command to redis at {}",
                self.peer
            )))?;
        self.read_reply(0)
    }

    /// Every key (`SCAN` to the end).
    fn scan_keys(&mut self) -> Result<Vec<Vec<u8>>, Error> {
        let mut keys = Vec::new();
        let mut cursor = b"0".to_vec();
        loop {
            let reply = self.command(&[b"SCAN".as_slice(), &cursor, b"COUNT", b"1000"])?;
            let (next, batch) = match reply.as_array() {
                Some([next, Reply::Array(Some(batch))]) => (next.as_bytes(), batch),
                _ => return Err(self.malformed(format!("SCAN answered {reply:?}"))),
            };
            let next = next.ok_or_else(|| self.malformed("SCAN without a cursor".into()))?;
            keys.extend(
                batch
                    .iter()
                    .filter_map(|k| k.as_bytes().map(<[u8]>::to_vec)),
            );
            if next == b"0" {
                return Ok(keys);
            }
            cursor = next.to_vec();
        }
    }

    fn entry(&mut self, key: Vec<u8>) -> Result<Entry, Error> {
        let kind = self.command(&[b"TYPE".as_slice(), &key])?;
        let kind = kind
            .as_bytes()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .ok_or_else(|| self.malformed(format!("TYPE answered {kind:?}")))?;
        let read: &[&[u8]] = match kind.as_str() {
            "string" => &[b"GET"],
            "hash" => &[b"HGETALL"],
            "list" => &[b"LRANGE", b"0", b"-1"],
            "set" => &[b"SMEMBERS"],
            "zset" => &[b"ZRANGE", b"0", b"-1", b"WITHSCORES"],
            "stream" => &[b"XRANGE", b"-", b"+"],
            _ => &[],
        };
        let values = match read.split_first() {
            Some((verb, rest)) => {
                let mut args: Vec<&[u8]> = vec![verb, &key];
                args.extend_from_slice(rest);
                match self.command(&args)? {
                    Reply::Error(e) => return Err(self.malformed(format!("{kind} read: -{e}"))),
                    reply => reply.strings(),
                }
            }
            None => Vec::new(),
        };
        let pttl = self.command(&[b"PTTL".as_slice(), &key])?;
        let pttl_ms = pttl
            .as_int()
            .ok_or_else(|| self.malformed(format!("PTTL answered {pttl:?}")))?;
        Ok(Entry {
            key,
            kind,
            pttl_ms,
            values,
        })
    }

    fn malformed(&self, reason: String) -> Error {
        Error::BadResponse {
            addr: self.peer.clone(),
            reason,
        }
    }

    fn read_line(&mut self) -> Result<Vec<u8>, Error> {
        let mut line = Vec::new();
        let read = (&mut self.reader)
            .take(MAX_BULK as u64)
            .read_until(b'\n', &mut line)
            .map_err(Error::io(format!(
                "read a reply from redis at {}",
                self.peer
            )))?;
        if read == 0 {
            return Err(Error::Io {
                context: format!("redis at {} closed the connection", self.peer),
                source: std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
            });
        }
        if !line.ends_with(b"\r\n") {
            return Err(self.malformed("a reply line without CRLF".into()));
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn read_reply(&mut self, depth: usize) -> Result<Reply, Error> {
        if depth > MAX_DEPTH {
            return Err(self.malformed("reply nested too deep".into()));
        }
        let line = self.read_line()?;
        let Some((&marker, rest)) = line.split_first() else {
            return Err(self.malformed("an empty reply line".into()));
        };
        let text = String::from_utf8_lossy(rest).into_owned();
        let length = |conn: &Self| -> Result<Option<usize>, Error> {
            let n: i64 = text
                .parse()
                .map_err(|_| conn.malformed(format!("bad length `{text}`")))?;
            match usize::try_from(n) {
                Ok(n) if n <= MAX_BULK => Ok(Some(n)),
                Ok(_) => Err(conn.malformed(format!("length {n} too large"))),
                Err(_) if n == -1 => Ok(None),
                Err(_) => Err(conn.malformed(format!("bad length {n}"))),
            }
        };
        match marker {
            b'+' => Ok(Reply::Simple(text)),
            b'-' => Ok(Reply::Error(text)),
            b':' => text
                .parse()
                .map(Reply::Integer)
                .map_err(|_| self.malformed(format!("bad integer `{text}`"))),
            b'$' => {
                let Some(n) = length(self)? else {
                    return Ok(Reply::Bulk(None));
                };
                let mut body = vec![0u8; n + 2];
                self.reader
                    .read_exact(&mut body)
                    .map_err(Error::io(format!(
                        "read a reply from redis at {}",
                        self.peer
                    )))?;
                if !body.ends_with(b"\r\n") {
                    return Err(self.malformed("a bulk string without CRLF".into()));
                }
                body.truncate(n);
                Ok(Reply::Bulk(Some(body)))
            }
            b'*' => {
                let Some(n) = length(self)? else {
                    return Ok(Reply::Array(None));
                };
                let items = (0..n)
                    .map(|_| self.read_reply(depth + 1))
                    .collect::<Result<_, _>>()?;
                Ok(Reply::Array(Some(items)))
            }
            other => Err(self.malformed(format!("unknown reply type {:?}", char::from(other)))),
        }
    }
}

/// A value for `redis.conf`: double-quoted, with `\` and `"` escaped (the parser's
/// `sdssplitargs` rules), so a path or password with spaces stays one argument.
fn quote_conf(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            _ => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for the URL's userinfo.
fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::free_port;

    fn ping(redis: &RedisServer) -> Result<Reply, Error> {
        redis.command(&["PING"])
    }

    #[test]
    fn answers_ping_and_restarts_on_the_same_port_empty() -> Result<(), Error> {
        let Some(mut redis) = redis_or_skip() else {
            return Ok(());
        };
        let port = redis.port();
        assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}"));
        assert_eq!(ping(&redis)?, Reply::Simple("PONG".into()));
        assert!(RedisServer::is_ready_at(port, None));

        assert_eq!(
            redis.command(&["SET", "k", "v", "PX", "60000"])?,
            Reply::ok()
        );
        assert_eq!(
            redis.command(&["GET", "k"])?,
            Reply::Bulk(Some(b"v".to_vec()))
        );
        // The anti-replay primitive: the second `SET NX` of one key is refused.
        assert_eq!(
            redis.command(&["SET", "j", "1", "NX", "PX", "60000"])?,
            Reply::ok()
        );
        assert_eq!(
            redis.command(&["SET", "j", "1", "NX", "PX", "60000"])?,
            Reply::Bulk(None)
        );
        // A connection opened before the stop is reset by it.
        let mut before = redis.connect()?;
        assert_eq!(before.command(&["PING"])?, Reply::Simple("PONG".into()));

        redis.stop();
        assert!(!redis.is_running());
        assert!(
            !RedisServer::is_ready_at(port, None),
            "a stopped server refuses connections"
        );
        assert_eq!(ping(&redis).err().map(|e| e.code()), Some("STOPPED"));
        assert_eq!(
            before.command(&["PING"]).err().map(|e| e.code()),
            Some("IO"),
            "the old connection is gone"
        );

        redis.restart()?;
        assert_eq!(redis.port(), port);
        assert!(redis.is_running());
        assert_eq!(ping(&redis)?, Reply::Simple("PONG".into()));
        assert_eq!(
            redis.command(&["GET", "k"])?,
            Reply::Bulk(None),
            "no persistence"
        );
        assert_eq!(redis.command(&["DBSIZE"])?, Reply::Integer(0));
        Ok(())
    }

    #[test]
    fn runs_loopback_only_without_persistence() -> Result<(), Error> {
        let Some(redis) = redis_or_skip() else {
            return Ok(());
        };
        let get = |name: &str| -> Result<Vec<Vec<u8>>, Error> {
            Ok(redis.command(&["CONFIG", "GET", name])?.strings())
        };
        assert_eq!(get("bind")?, vec![b"bind".to_vec(), b"127.0.0.1".to_vec()]);
        assert_eq!(get("protected-mode")?[1], b"yes");
        assert_eq!(get("save")?[1], b"");
        assert_eq!(get("appendonly")?[1], b"no");
        Ok(())
    }

    #[test]
    fn a_password_is_required_and_carried_by_the_url() -> Result<(), Error> {
        let password = "p@ss word/1";
        let Some(mut redis) = redis_with_password_or_skip(password) else {
            return Ok(());
        };
        let port = redis.port();
        assert_eq!(
            redis.url(),
            format!("redis://:p%40ss%20word%2F1@127.0.0.1:{port}")
        );
        assert!(RedisServer::is_ready_at(port, Some(password)));
        assert!(
            !RedisServer::is_ready_at(port, None),
            "NOAUTH without the password"
        );
        assert!(!RedisServer::is_ready_at(port, Some("wrong")));
        let mut anonymous = RespConnection::connect(port, None)?;
        assert!(
            matches!(anonymous.command(&["GET", "k"])?, Reply::Error(e) if e.starts_with("NOAUTH")),
        );
        let wrong = RespConnection::connect(port, Some("wrong")).err();
        assert_eq!(wrong.as_ref().map(Error::code), Some("IO"));
        assert!(
            !wrong
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("wrong")
        );
        assert!(
            !format!("{redis:?}").contains(password),
            "Debug redacts the password"
        );

        redis.restart()?;
        assert!(
            RedisServer::is_ready_at(port, Some(password)),
            "same password after restart"
        );
        assert!(!RedisServer::is_ready_at(port, None));
        Ok(())
    }

    #[test]
    fn entries_show_every_key_with_its_content_and_ttl() -> Result<(), Error> {
        let Some(redis) = redis_or_skip() else {
            return Ok(());
        };
        let mut conn = redis.connect()?;
        assert_eq!(
            conn.command(&["SET", "s", "canary-1", "PX", "60000"])?,
            Reply::ok()
        );
        assert_eq!(
            conn.command(&["HSET", "h", "uses", "3", "f", "canary-2"])?,
            Reply::Integer(2)
        );
        assert_eq!(conn.command(&["RPUSH", "l", "a", "b"])?, Reply::Integer(2));
        let mut entries = redis.entries()?;
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        let keys: Vec<&[u8]> = entries.iter().map(|e| e.key.as_slice()).collect();
        assert_eq!(keys, vec![b"h".as_slice(), b"l", b"s"]);
        assert_eq!(entries[0].kind, "hash");
        assert_eq!(entries[0].pttl_ms, -1);
        assert!(entries[0].contains(b"canary-2"));
        assert_eq!(entries[1].values, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(entries[2].kind, "string");
        assert!(
            (1..=60_000).contains(&entries[2].pttl_ms),
            "{:?}",
            entries[2]
        );
        assert!(entries[2].contains(b"canary-1"));
        assert!(!entries.iter().any(|e| e.contains(b"canary-3")));
        Ok(())
    }

    #[test]
    fn a_paused_server_times_out_and_resumes_with_its_data() -> Result<(), Error> {
        let Some(mut redis) = redis_or_skip() else {
            return Ok(());
        };
        assert_eq!(redis.command(&["SET", "k", "v"])?, Reply::ok());
        redis.pause()?;
        let mut conn = RespConnection::connect(redis.port(), None)?;
        conn.set_timeout(Duration::from_millis(200))?;
        assert_eq!(
            conn.command(&["PING"]).err().map(|e| e.code()),
            Some("IO"),
            "no answer while paused"
        );
        redis.resume()?;
        assert_eq!(
            redis.command(&["GET", "k"])?,
            Reply::Bulk(Some(b"v".to_vec()))
        );
        Ok(())
    }

    #[test]
    fn a_tls_server_speaks_tls_on_its_port_and_plain_on_the_admin_port() -> Result<(), Error> {
        let mut redis = match RedisServer::start_tls_with_password("pw") {
            Ok(redis) => redis,
            Err(e @ Error::ToolMissing { .. }) => {
                crate::skip_or_fail(&format!("Redis unavailable: {e}"));
                return Ok(());
            }
            Err(e) => panic!("redis-server with TLS failed to start: {e}"),
        };
        let (port, admin) = (redis.port(), redis.admin_port());
        assert_ne!(port, admin);
        assert_eq!(redis.url(), format!("rediss://:pw@127.0.0.1:{port}"));
        assert!(
            !format!("{redis:?}").contains(":pw@"),
            "Debug redacts the password"
        );
        assert!(redis.ca_cert_path().is_file());
        assert!(RedisServer::is_ready_at(admin, Some("pw")));
        assert!(
            !RedisServer::is_ready_at(port, Some("pw")),
            "plain RESP on the TLS port"
        );
        assert_eq!(
            redis.command(&["CONFIG", "GET", "tls-port"])?.strings()[1],
            port.to_string().as_bytes()
        );
        // A real TLS round trip with Debian's redis-cli (redis-tools, which redis-server
        // depends on) when it is there.
        let cli = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("redis-cli"))
            .find(|p| p.is_file());
        let tls_ping = |redis: &RedisServer| -> Option<String> {
            let output = Command::new(cli.as_ref()?)
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "--tls",
                    "--cacert",
                ])
                .arg(redis.ca_cert_path())
                .args(["--no-auth-warning", "-a", "pw", "PING"])
                .stdin(Stdio::null())
                .output()
                .ok()?;
            Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        };
        match tls_ping(&redis) {
            Some(pong) => assert_eq!(pong, "PONG"),
            None => eprintln!("redis-cli not on PATH: no TLS round trip checked"),
        }
        redis.restart()?;
        assert_eq!((redis.port(), redis.admin_port()), (port, admin));
        assert!(RedisServer::is_ready_at(admin, Some("pw")));
        if let Some(pong) = tls_ping(&redis) {
            assert_eq!(pong, "PONG", "the same CA after a restart");
        }
        Ok(())
    }

    #[test]
    fn a_port_nobody_serves_is_not_ready() -> Result<(), Error> {
        let port = free_port()?;
        assert!(!RedisServer::is_ready_at(port, None));
        assert_eq!(
            RespConnection::connect(port, None).err().map(|e| e.code()),
            Some("IO"),
            "connection refused"
        );
        Ok(())
    }

    #[test]
    fn a_missing_binary_says_what_to_install() {
        let tools = std::env::temp_dir().join("secrets-test-no-such-tools");
        let empty = std::env::temp_dir().join("secrets-test-no-such-bin");
        for overridden in [None, Some(empty.clone().into_os_string())] {
            let err = find_redis(overridden, Some(empty.clone().into_os_string()), &tools)
                .err()
                .map(|e| (e.code(), e.to_string()));
            let Some((code, message)) = err else {
                panic!("found a redis-server that does not exist");
            };
            assert_eq!(code, "TOOL_MISSING");
            assert!(message.contains("redis-server"), "{message}");
            assert!(
                message.contains("apt-get install -y redis-server"),
                "{message}"
            );
            assert!(
                message.contains("cargo xtask services install"),
                "{message}"
            );
        }
    }

    #[test]
    fn conf_values_are_quoted_and_urls_encoded() {
        assert_eq!(quote_conf(r#"a "b"\c"#), r#""a \"b\"\\c""#);
        assert_eq!(percent_encode("aZ9-._~"), "aZ9-._~");
        assert_eq!(percent_encode("@:/ "), "%40%3A%2F%20");
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() -> Result<(), Error> {
        use std::net::TcpListener;
        for garbage in [
            b"?what\r\n".as_slice(),
            b"$99999999999\r\n",
            b"*-7\r\n",
            b":nope\r\n",
            b"+no crlf\n",
        ] {
            let listener =
                TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(Error::io("bind"))?;
            let port = listener.local_addr().map_err(Error::io("addr"))?.port();
            let serve = std::thread::spawn(move || {
                if let Ok((mut stream, _)) = listener.accept() {
                    let mut buf = [0u8; 64];
                    let _ = stream.read(&mut buf);
                    let _ = stream.write_all(garbage);
                }
            });
            let mut conn = RespConnection::connect(port, None)?;
            let code = conn.command(&["PING"]).err().map(|e| e.code());
            assert_eq!(
                code,
                Some("MALFORMED_RESPONSE"),
                "{:?}",
                String::from_utf8_lossy(garbage)
            );
            let _ = serve.join();
        }
        Ok(())
    }
}
