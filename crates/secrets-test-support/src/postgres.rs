//! A throwaway PostgreSQL for tests: a fresh cluster (`initdb`) on a free loopback port, with
//! [`stop`](PostgresServer::stop) (a crash) and [`restart`](PostgresServer::restart) on the
//! same port, and sync helpers that log in as the superuser or as any user
//! ([`execute`](PostgresServer::execute), [`roles_like`](PostgresServer::roles_like),
//! [`can_login`](PostgresServer::can_login)): what the tests of OpenBao's database secrets
//! engine need to see a dynamic user appear, log in and be dropped.
//!
//! ```no_run
//! # fn main() -> Result<(), secrets_test_support::Error> {
//! use secrets_test_support::postgres::PostgresServer;
//!
//! let mut pg = PostgresServer::start()?;
//! pg.execute("CREATE ROLE app LOGIN PASSWORD 'pw'")?;
//! assert!(pg.can_login("app", "pw")?);
//! assert!(!pg.can_login("app", "wrong")?);
//! assert_eq!(pg.roles_like("app%")?, vec!["app".to_owned()]);
//! pg.stop(); // "database down": the port refuses connections
//! pg.restart()?; // back on the same port, after crash recovery, with its roles
//! assert!(pg.can_login("app", "pw")?);
//! # Ok(()) }
//! ```
//!
//! The binaries are Debian's package `postgresql` (any version OpenBao's plugin speaks to):
//! see [`pg_bin_dir`]. PostgreSQL refuses to run as root; as root, every PostgreSQL process
//! runs as the `postgres` account that package creates.

use std::fmt;
use std::fs::OpenOptions;
use std::future::Future;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};

use crate::launch::{self, LaunchError};
use crate::{Detached, Error, Shared, random_hex, tools_dir};

/// Overrides the folder holding `initdb`, `pg_ctl` and `postgres` (absolute path).
pub const PG_BIN_DIR_ENV: &str = "SECRETS_TEST_PG_BIN_DIR";

/// The superuser `initdb` creates (`-U`), and the OS account that runs the server as root.
const SUPERUSER: &str = "postgres";
const ACCOUNT: &str = "postgres";
/// Where Debian's packages put each major version's binaries (`<this>/<major>/bin`).
const DEBIAN_LIB: &str = "/usr/lib/postgresql";
/// How long a fresh server may take to accept a login (generous: CI runs many at once on two
/// cores).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Per readiness probe (connect and log in).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Per helper call: connect, log in, run the statement.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// What the missing-tool error tells the reader to install.
const INSTALL_HINT: &str = "Debian's package postgresql (`cargo xtask services install` runs \
                            `apt-get install -y postgresql` as root)";
/// Log phrases that mean the port was taken.
const IN_USE: &[&str] = &["could not bind", "Address already in use"];

/// The folder holding PostgreSQL's `initdb`, `pg_ctl` and `postgres`:
/// `$SECRETS_TEST_PG_BIN_DIR`, else the folder of `pg_ctl` on `PATH` with its links resolved
/// (Debian's `/usr/local/bin/pg_ctl` may link to `/usr/lib/postgresql/15/bin/pg_ctl`), else
/// the newest `/usr/lib/postgresql/<major>/bin` (where Debian's package puts them, off `PATH`),
/// else the folder `.tools/bin/pg_ctl` links to. A folder counts only when it holds all three.
/// The one lookup, for the servers started here and for `cargo xtask services install`.
///
/// # Errors
/// `TOOL_MISSING` (its message says what to install) when no folder holds them.
pub fn pg_bin_dir() -> Result<PathBuf, Error> {
    find_pg_bin_dir(
        std::env::var_os(PG_BIN_DIR_ENV).filter(|v| !v.is_empty()),
        std::env::var_os("PATH"),
        Path::new(DEBIAN_LIB),
        &tools_dir()?,
    )
}

fn find_pg_bin_dir(
    overridden: Option<std::ffi::OsString>,
    path: Option<std::ffi::OsString>,
    debian_lib: &Path,
    tools: &Path,
) -> Result<PathBuf, Error> {
    if let Some(dir) = overridden.map(PathBuf::from) {
        return if holds_binaries(&dir) {
            Ok(dir)
        } else {
            Err(Error::ToolMissing {
                tool: "postgres",
                looked_at: format!(
                    "${PG_BIN_DIR_ENV}={} (needs initdb, pg_ctl and postgres); install \
                     {INSTALL_HINT}",
                    dir.display()
                ),
            })
        };
    }
    // A `pg_ctl` that is a link (or Debian's `pg_wrapper`) says where the real folder is.
    let from_path = path
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("pg_ctl"))
        .filter_map(|pg_ctl| std::fs::canonicalize(pg_ctl).ok());
    let from_tools = std::fs::canonicalize(tools.join("bin/pg_ctl")).ok();
    from_path
        .filter_map(|pg_ctl| pg_ctl.parent().map(Path::to_path_buf))
        .chain(newest_debian_bin(debian_lib))
        .chain(from_tools.and_then(|pg_ctl| pg_ctl.parent().map(Path::to_path_buf)))
        .find(|dir| holds_binaries(dir))
        .ok_or_else(|| Error::ToolMissing {
            tool: "postgres",
            looked_at: format!(
                "`pg_ctl` on PATH, {}/*/bin, {}; install {INSTALL_HINT}",
                debian_lib.display(),
                tools.join("bin/pg_ctl").display()
            ),
        })
}

/// `<lib>/<major>/bin` of the highest numeric major version there.
fn newest_debian_bin(lib: &Path) -> Option<PathBuf> {
    std::fs::read_dir(lib)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

fn holds_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|name| dir.join(name).is_file())
}

/// The OS account PostgreSQL's processes run as when we are root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Account {
    uid: u32,
    gid: u32,
}

/// `None` when not root (the server runs as us); as root the `postgres` account.
///
/// # Errors
/// `TOOL_MISSING` as root when there is no `postgres` account.
fn run_as() -> Result<Option<Account>, Error> {
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    // NSS first (`getent` knows every source), then the file itself.
    let getent = Command::new("getent")
        .args(["passwd", ACCOUNT])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned());
    let passwd = getent.or_else(|| std::fs::read_to_string("/etc/passwd").ok());
    passwd
        .as_deref()
        .and_then(|text| account_in(text, ACCOUNT))
        .map(Some)
        .ok_or_else(|| Error::ToolMissing {
            tool: "postgres",
            looked_at: format!(
                "the account `{ACCOUNT}` (PostgreSQL refuses to run as root, and this process \
                 is root; the package creates the account); install {INSTALL_HINT}"
            ),
        })
}

/// The uid and gid of `name` in `passwd(5)` lines.
fn account_in(passwd: &str, name: &str) -> Option<Account> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        Some(Account {
            uid: fields.next()?.parse().ok()?,
            gid: fields.next()?.parse().ok()?,
        })
    })
}

/// A fresh PostgreSQL cluster on a free loopback port, its processes killed on drop and its
/// folder removed.
///
/// `initdb` makes the cluster (UTF-8, locale `C`, superuser `postgres` with a random password,
/// SCRAM-SHA-256 for every login); the server listens on `127.0.0.1` only, and on a Unix
/// socket in its private folder, with `fsync` and `full_page_writes` off (a test's data need
/// not survive the machine, only the process). Unlike the other servers here a
/// [`restart`](Self::restart) keeps the data: PostgreSQL recovers every commit from the crash
/// that [`stop`](Self::stop) was. `Debug` redacts the superuser's password, which is never on a
/// command line (`initdb` reads it from a file only its owner can read, removed after).
pub struct PostgresServer {
    /// Holds `initdb` and `postgres` ([`pg_bin_dir`]).
    bin_dir: PathBuf,
    port: u16,
    password: String,
    /// Who runs the processes: `None` for us.
    run_as: Option<Account>,
    /// Private temp dir holding `postgres.log` and the server's own folder `postgres/`; for
    /// [`Self::start_detached`] the caller's folder.
    workdir: PathBuf,
    /// Started by [`Self::start_detached`]: its own process group, and `workdir` is not ours
    /// to remove.
    detached: bool,
    /// The postmaster.
    child: Option<Child>,
}

impl fmt::Debug for PostgresServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresServer")
            .field("addr", &self.addr())
            .field("superuser", &SUPERUSER)
            .field("superuser_password", &"[REDACTED]")
            .field("pid", &self.pid())
            .field("run_as_uid", &self.run_as.map(|account| account.uid))
            .field("workdir", &self.workdir)
            .finish()
    }
}

impl PostgresServer {
    /// Makes a fresh cluster, starts it on a free loopback port and waits until the superuser
    /// can log in and run `select 1`.
    ///
    /// # Errors
    /// `TOOL_MISSING` when PostgreSQL is not installed (or, as root, there is no `postgres`
    /// account); `IO` when `initdb` fails or the server cannot be started, exits early (the
    /// message has the last log lines) or does not accept a login in time.
    pub fn start() -> Result<Self, Error> {
        Self::launch(None)
    }

    /// Starts a server, as [`Self::start`], that outlives this process: in its own process
    /// group, its log `dir/postgres.log`, its cluster and socket under `dir/postgres/` (made anew),
    /// never stopped by us. `cargo xtask services up` starts the shared PostgreSQL with it;
    /// stop it by its pid (SIGINT is PostgreSQL's fast shutdown). [`Detached::addr`] is
    /// `postgresql://127.0.0.1:PORT/postgres`, and [`Detached::root_token`] holds the
    /// superuser's password.
    ///
    /// # Errors
    /// As [`Self::start`].
    pub fn start_detached(dir: &Path) -> Result<Detached, Error> {
        let mut server = Self::launch(Some(dir))?;
        // Taken, not killed: dropping a `Child` leaves the process running.
        let pid = server.child.take().map_or(0, |child| child.id());
        Ok(Detached {
            addr: format!("postgresql://{}/postgres", server.addr()),
            port: server.port,
            pid,
            log: server.log_path(),
            root_token: Some(server.password.clone()),
        })
    }

    /// Whether a PostgreSQL on `127.0.0.1:port` is ready: the superuser `postgres` logs in
    /// with `password` and `select 1` answers. The one readiness check, for the servers
    /// started here and for `cargo xtask services`.
    pub fn is_ready_at(port: u16, password: &str) -> bool {
        block_on(PROBE_TIMEOUT, async {
            let client = connect(port, SUPERUSER, password, PROBE_TIMEOUT).await?;
            client.simple_query("select 1").await
        })
        .is_ok_and(|answered| answered.is_ok())
    }

    fn launch(keep: Option<&Path>) -> Result<Self, Error> {
        let bin_dir = pg_bin_dir()?;
        let run_as = run_as()?;
        let workdir = launch::workdir("postgres", keep)?;
        let mut server = Self {
            bin_dir,
            port: 0,
            password: random_hex(),
            run_as,
            workdir,
            detached: keep.is_some(),
            child: None,
        };
        server.init_cluster()?;
        let started = launch::on_free_port(|port| {
            server.port = port;
            server.spawn_and_wait()
        });
        started.map_err(|e| server.launch_error(e))?;
        Ok(server)
    }

    /// `127.0.0.1`, where the server listens.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The server's port (stable across [`Self::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host(), self.port)
    }

    /// The superuser, `postgres`.
    pub fn superuser(&self) -> &'static str {
        SUPERUSER
    }

    /// The superuser's password (random per server, stable across [`Self::restart`]).
    pub fn superuser_password(&self) -> &str {
        &self.password
    }

    /// `postgresql://{{username}}:{{password}}@127.0.0.1:PORT/postgres?sslmode=disable`: the
    /// `connection_url` of OpenBao's `postgresql-database-plugin`, which fills in the
    /// placeholders with the `username` and `password` it was configured with.
    pub fn connection_url_template(&self) -> String {
        format!(
            "postgresql://{{{{username}}}}:{{{{password}}}}@{}/postgres?sslmode=disable",
            self.addr()
        )
    }

    /// The server's process id (the postmaster's), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the server runs (it has not been stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The server's log file (`initdb`'s and every start's output, appended).
    pub fn log_path(&self) -> PathBuf {
        self.workdir.join("postgres.log")
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        launch::log_tail(&self.log_path(), lines)
    }

    /// Kills the server as a crash (SIGKILL, the postmaster and every process it forked) and
    /// waits for it (idempotent): the port then refuses connections and open sessions are
    /// reset. What was committed survives for [`Self::restart`].
    pub fn stop(&mut self) {
        if let Some(pid) = self.pid() {
            kill_children(pid);
        }
        launch::stop_child(&mut self.child);
    }

    /// Stops the server if it runs, then starts it again on the same port, on the same data
    /// (after crash recovery) and with the same superuser password. Clients that reconnect
    /// find it again.
    ///
    /// # Errors
    /// `IO` when it does not come back (the port was taken meanwhile, or it does not accept a
    /// login in time).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop();
        let started = launch::on_same_port(|| self.spawn_and_wait());
        started.map_err(|e| self.launch_error(e))
    }

    /// Runs `sql` (one or more statements, the simple query protocol) as the superuser in
    /// the database `postgres`.
    ///
    /// # Errors
    /// `STOPPED` when the server is not running; `IO` when it cannot log in or a statement
    /// fails (the context has the SQLSTATE; the server's message is the source).
    pub fn execute(&self, sql: &str) -> Result<(), Error> {
        self.superuser_call("execute", |client| async move {
            client.batch_execute(sql).await
        })
    }

    /// The roles whose names match the `LIKE` pattern (`select rolname from pg_roles where
    /// rolname like $1`), sorted.
    ///
    /// # Errors
    /// As [`Self::execute`].
    pub fn roles_like(&self, pattern: &str) -> Result<Vec<String>, Error> {
        self.superuser_call("list roles", |client| async move {
            let rows = client
                .query(
                    "select rolname::text from pg_roles where rolname like $1 order by 1",
                    &[&pattern],
                )
                .await?;
            rows.iter().map(|row| row.try_get(0)).collect()
        })
    }

    /// Whether `user` logs in with `password` (to the database `postgres`, over TCP, SCRAM)
    /// and runs `select 1`: `false` when the server refuses the login (a wrong password, an
    /// unknown or dropped role, one past its `VALID UNTIL`, one without `LOGIN`).
    ///
    /// # Errors
    /// `STOPPED` when the server is not running; `IO` on anything but a refused login (the
    /// server unreachable, `select 1` failing).
    pub fn can_login(&self, user: &str, password: &str) -> Result<bool, Error> {
        if self.child.is_none() {
            return Err(Error::Stopped);
        }
        let port = self.port;
        let answered = block_on(CALL_TIMEOUT, async move {
            let client = match connect(port, user, password, CALL_TIMEOUT).await {
                Ok(client) => client,
                Err(e) if is_refused_login(&e) => return Ok(false),
                Err(e) => return Err(e),
            };
            client.simple_query("select 1").await.map(|_| true)
        });
        answered
            .and_then(|result| result.map_err(|e| self.sql_error("log in", e)))
            .map_err(|e| self.with_addr(e))
    }

    /// Creates a role `name` that can log in, with a random password, unless one exists: the
    /// account an OpenBao static role rotates.
    pub(crate) fn ensure_login_role(&self, name: &str) -> Result<(), Error> {
        let exists = self.superuser_call("look up a role", |client| async move {
            let rows = client
                .query("select 1 from pg_roles where rolname = $1", &[&name])
                .await?;
            Ok(!rows.is_empty())
        })?;
        if exists {
            return Ok(());
        }
        self.execute(&format!(
            "CREATE ROLE {} WITH LOGIN PASSWORD '{}'",
            quote_ident(name),
            random_hex()
        ))
    }

    /// Logs in as the superuser and runs `query` on the client.
    fn superuser_call<'a, T, F, Fut>(&'a self, what: &str, query: F) -> Result<T, Error>
    where
        T: Send,
        F: FnOnce(Client) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send,
    {
        if self.child.is_none() {
            return Err(Error::Stopped);
        }
        let (port, password) = (self.port, self.password.as_str());
        let answered = block_on(CALL_TIMEOUT, async move {
            query(connect(port, SUPERUSER, password, CALL_TIMEOUT).await?).await
        });
        answered
            .and_then(|result| result.map_err(|e| self.sql_error(what, e)))
            .map_err(|e| self.with_addr(e))
    }

    fn sql_error(&self, what: &str, error: tokio_postgres::Error) -> Error {
        let code = error
            .code()
            .map(|code| format!(" (SQLSTATE {})", code.code()))
            .unwrap_or_default();
        Error::Io {
            context: format!("{what} on PostgreSQL at {} failed{code}", self.addr()),
            // The server's message may quote a statement; it stays in the source.
            source: std::io::Error::other(error),
        }
    }

    /// A timeout or runtime error, named with the server's address.
    fn with_addr(&self, error: Error) -> Error {
        match error {
            Error::Io { context, source } if !context.contains(&self.addr()) => Error::Io {
                context: format!("{context} (PostgreSQL at {})", self.addr()),
                source,
            },
            other => other,
        }
    }

    /// The server's own folder (owned by the account that runs it): the cluster `data/` and
    /// the Unix socket.
    fn pg_dir(&self) -> PathBuf {
        self.workdir.join("postgres")
    }

    fn data_dir(&self) -> PathBuf {
        self.pg_dir().join("data")
    }

    /// `bin_dir/<binary>`, run as the server's account in its folder, with none of the
    /// caller's `PG*` settings.
    fn command(&self, binary: &str) -> (Command, PathBuf) {
        let bin = self.bin_dir.join(binary);
        let mut cmd = Command::new(&bin);
        cmd.current_dir(self.pg_dir());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PG") {
                cmd.env_remove(&key);
            }
        }
        if let Some(account) = self.run_as {
            // std drops the supplementary groups too (setgroups) before it switches.
            cmd.uid(account.uid).gid(account.gid);
        }
        (cmd, bin)
    }

    /// `chown`s `path` to the server's account, when that is not us.
    fn hand_over(&self, path: &Path) -> Result<(), Error> {
        match self.run_as {
            Some(account) => std::os::unix::fs::chown(path, Some(account.uid), Some(account.gid))
                .map_err(Error::io(format!("chown {} to {ACCOUNT}", path.display()))),
            None => Ok(()),
        }
    }

    /// `initdb` into a fresh `postgres/data`, the password read from a file only the server's
    /// account can read, removed afterwards.
    fn init_cluster(&self) -> Result<(), Error> {
        let pg_dir = self.pg_dir();
        if self.detached {
            // A detached server's folder is reused by the next `up`.
            match std::fs::remove_dir_all(&pg_dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Io {
                        context: format!("remove {}", pg_dir.display()),
                        source: e,
                    });
                }
            }
        }
        std::fs::create_dir_all(&pg_dir)
            .map_err(Error::io(format!("create {}", pg_dir.display())))?;
        self.hand_over(&pg_dir)?;

        let pwfile = pg_dir.join("superuser-password");
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&pwfile)
            .map_err(Error::io(format!("create {}", pwfile.display())))?;
        file.write_all(format!("{}\n", self.password).as_bytes())
            .map_err(Error::io(format!("write {}", pwfile.display())))?;
        drop(file);
        self.hand_over(&pwfile)?;

        let log_path = self.log_path();
        let (stdout, stderr) =
            launch::open_log(&log_path, "--- initdb ---").map_err(|e| self.launch_error(e))?;
        let (mut cmd, bin) = self.command("initdb");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-U", SUPERUSER, "--auth=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["-E", "UTF8", "--locale=C", "--no-sync"])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let status = cmd.status();
        let _ = std::fs::remove_file(&pwfile);
        let status = status.map_err(Error::io(format!("run {}", bin.display())))?;
        if status.success() {
            return Ok(());
        }
        Err(Error::Io {
            context: format!(
                "initdb failed ({status}); last log lines:\n{}",
                self.log_tail(15)
            ),
            source: std::io::Error::other("initdb failed"),
        })
    }

    fn spawn_and_wait(&mut self) -> Result<(), LaunchError> {
        let log_path = self.log_path();
        let log = launch::open_log(
            &log_path,
            &format!("--- postgres on port {} ---", self.port),
        )?;
        let (mut cmd, bin) = self.command("postgres");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.pg_dir())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off"])
            .args(["-c", "full_page_writes=off"]);
        // `synchronous_commit` stays on: with `fsync` off a commit costs one write(2) into
        // the page cache, and a commit then survives the crash `stop` is (off, the WAL
        // writer may not have written it yet, and recovery forgets it).
        let child = launch::spawn(&mut cmd, &bin, log, self.detached)?;
        self.child = Some(child);
        let password = self.password.clone();
        let port = self.port;
        launch::Readiness {
            server: "postgres",
            process: "postgres",
            addr: self.addr(),
            state: "accepting logins",
            in_use: IN_USE,
            log_path: &log_path,
            timeout: START_TIMEOUT,
            poll: Duration::from_millis(10),
        }
        .wait(&mut self.child, || Self::is_ready_at(port, &password))
    }

    fn launch_error(&self, error: LaunchError) -> Error {
        launch::launch_error(error, "postgres", "postgres", &self.log_path())
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
        launch::cleanup("PostgreSQL", &self.log_path(), &self.workdir, self.detached);
    }
}

/// Kills what the postmaster `pid` forked (backends, checkpointer, …): they would outlive it
/// for a moment, still attached to the shared memory a restart must find released. The
/// postmaster is frozen first so that it forks no more; its caller kills it.
fn kill_children(pid: u32) {
    use rustix::process::{Pid, Signal, kill_process};
    let Some(postmaster) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    if kill_process(postmaster, Signal::STOP).is_err() {
        return;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let ppid = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if ppid == Some(pid)
            && let Some(child) = Pid::from_raw(child)
        {
            let _ = kill_process(child, Signal::KILL);
        }
    }
}

/// Logs in as `user` over TCP (no TLS), its connection driven by a task of the current
/// runtime.
async fn connect(
    port: u16,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Result<Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user(user)
        .password(password)
        .dbname("postgres")
        .application_name("secrets-test-support")
        .ssl_mode(SslMode::Disable)
        .connect_timeout(timeout);
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Whether the server refused the login itself (SQLSTATE class 28: a wrong password, an
/// unknown role, an expired one, one without `LOGIN`).
fn is_refused_login(error: &tokio_postgres::Error) -> bool {
    error
        .code()
        .is_some_and(|code| code.code().starts_with("28"))
}

/// Runs `future` to completion within `timeout` on a current-thread runtime of its own, on a
/// thread of its own: the helpers are sync, and work when called from inside a runtime too.
fn block_on<T: Send>(
    timeout: Duration,
    future: impl Future<Output = T> + Send,
) -> Result<T, Error> {
    std::thread::scope(|scope| {
        let joined = scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(Error::io("build a runtime for a PostgreSQL call"))?;
                runtime
                    .block_on(async { tokio::time::timeout(timeout, future).await })
                    .map_err(|_| Error::Io {
                        context: format!("a PostgreSQL call took longer than {timeout:?}"),
                        source: std::io::Error::from(std::io::ErrorKind::TimedOut),
                    })
            })
            .join();
        joined.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// `name` as a double-quoted SQL identifier (`"` doubled).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// [`PostgresServer::start`] for tests: `None` (after a `SKIP` line) when PostgreSQL is not
/// installed and not under CI; panics under `CI=true` (with what to install), and whenever it
/// is installed but fails to start (that is a bug, not a missing tool).
pub fn postgres_or_skip() -> Option<PostgresServer> {
    launch::or_skip(
        PostgresServer::start(),
        "PostgreSQL unavailable",
        "postgres failed to start",
    )
}

/// One PostgreSQL for every test of this binary that runs while another holds it
/// ([`Shared`]), with the policy of [`postgres_or_skip`]. For tests that keep to roles and
/// tables of their own; a test that stops or restarts the server starts its own.
pub fn shared_postgres() -> Option<Arc<PostgresServer>> {
    static SHARED: Shared<PostgresServer> = Shared::new();
    SHARED.get_or_start(postgres_or_skip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("secrets-test-pg-{name}-{}", &random_hex()[..12]))
    }

    fn fake_bin_dir(dir: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(dir).map_err(Error::io("create"))?;
        for name in ["initdb", "pg_ctl", "postgres"] {
            std::fs::write(dir.join(name), "").map_err(Error::io("write"))?;
        }
        Ok(())
    }

    #[test]
    fn a_missing_installation_says_what_to_install() {
        let nowhere = scratch("nowhere");
        for overridden in [None, Some(nowhere.clone().into_os_string())] {
            let err = find_pg_bin_dir(
                overridden,
                Some(nowhere.clone().into_os_string()),
                &nowhere,
                &nowhere,
            )
            .err()
            .map(|e| (e.code(), e.to_string()));
            let Some((code, message)) = err else {
                panic!("found a PostgreSQL that does not exist");
            };
            assert_eq!(code, "TOOL_MISSING");
            assert!(message.contains("postgresql"), "{message}");
            assert!(
                message.contains("apt-get install -y postgresql"),
                "{message}"
            );
            assert!(
                message.contains("cargo xtask services install"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_linked_pg_ctl_names_its_real_folder_and_debian_s_newest_comes_next() -> Result<(), Error> {
        let root = scratch("find");
        let real = root.join("lib/postgresql/15/bin");
        fake_bin_dir(&real)?;
        fake_bin_dir(&root.join("lib/postgresql/9/bin"))?;
        std::fs::create_dir_all(root.join("lib/postgresql/not-a-version"))
            .map_err(Error::io("create"))?;
        let linked = root.join("local/bin");
        std::fs::create_dir_all(&linked).map_err(Error::io("create"))?;
        std::os::unix::fs::symlink(real.join("pg_ctl"), linked.join("pg_ctl"))
            .map_err(Error::io("symlink"))?;
        let canonical = std::fs::canonicalize(&real).map_err(Error::io("canonicalize"))?;
        let tools = root.join("tools");

        let on_path = Some(linked.into_os_string());
        assert_eq!(
            find_pg_bin_dir(None, on_path, &root.join("none"), &tools)?,
            canonical,
            "the link on PATH, resolved"
        );
        assert_eq!(
            find_pg_bin_dir(None, None, &root.join("lib/postgresql"), &tools)?,
            real,
            "15 is newer than 9"
        );
        let overridden = Some(root.join("lib/postgresql/9/bin").into_os_string());
        assert_eq!(
            find_pg_bin_dir(overridden, None, &root.join("lib/postgresql"), &tools)?,
            root.join("lib/postgresql/9/bin")
        );
        let _ = std::fs::remove_dir_all(&root);
        Ok(())
    }

    #[test]
    fn the_account_comes_from_passwd_lines() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      postgresql:x:7:7::/:/bin/false\n\
                      postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(
            account_in(passwd, "postgres"),
            Some(Account { uid: 101, gid: 104 })
        );
        assert_eq!(account_in(passwd, "nobody"), None);
        assert_eq!(account_in("postgres:x:oops:1::/:/bin/sh", "postgres"), None);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("app"), "\"app\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
