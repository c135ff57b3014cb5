//! Test fixtures for secrets-sdk's integration tests (unpublished).
//!
//! - [`OpenBaoServer`]: a fresh `bao server -dev` per test on a free loopback port (plain HTTP
//!   or `-dev-tls`), killed on drop, with [`restart`](OpenBaoServer::restart) for
//!   "server restarted mid-test" and admin helpers ([`api`](OpenBaoServer::api),
//!   [`kv_put`](OpenBaoServer::kv_put), [`create_token`](OpenBaoServer::create_token), …) that
//!   talk plain HTTP/1.1 over `std::net`, independent of the SDK under test.
//! - [`FaultServer`]: a scripted HTTP/1.1 server that delays, hangs, closes, truncates or
//!   floods, and records every request.
//! - [`proxy::CountingProxy`]: a counting proxy in front of a real server, that can also lose
//!   chosen responses on the way back.
//! - [`cerbos::CerbosServer`]: a fresh `cerbos server` (AuthZEN API) per test, serving the
//!   workspace's test policies, [`cerbos::policies`] (`fixtures/cerbos`).
//! - [`tansu::TansuServer`]: a fresh `tansu broker` (a Kafka-protocol broker, in-memory
//!   storage) per test, with [`stop`](tansu::TansuServer::stop) and
//!   [`restart`](tansu::TansuServer::restart) on the same port for "broker down" tests, and
//!   [`tansu::shared_tansu`] for one per test binary.
//! - [`redis::RedisServer`]: a fresh Debian `redis-server` on a free loopback port (no
//!   persistence; optional password; `start_tls` for `rediss://`), with stop/restart on the
//!   same port and pause/resume for "store down" and "store never answers" tests, and
//!   [`redis::RedisServer::entries`] to scan every key and value for leaks.
//! - [`postgres::PostgresServer`]: a fresh PostgreSQL cluster (Debian's `postgresql`; as root
//!   run as its `postgres` account) on a free loopback port, with stop (a crash) and restart
//!   on the same port, sync helpers to run SQL, list roles and try a login, and
//!   [`postgres::shared_postgres`] for one per test binary; OpenBao's database secrets engine
//!   against it: [`OpenBaoServer::enable_database`], [`OpenBaoServer::create_db_role`],
//!   [`OpenBaoServer::create_static_db_role`].
//! - Helpers the suites share: [`env_map`] (a fixed environment for `env_lookup`),
//!   [`LogCapture`] (a log buffer for canary tests) and, with the `pep` feature,
//!   [`pep::Counting`] (counts PDP calls) and [`pep::RecordingAudit`] (keeps audit events).
//! - `otlp::OtlpReceiver` (feature `otlp`): an OTLP/HTTP receiver on loopback that decodes
//!   exports with the published `opentelemetry-proto` types, keeps their raw bytes for canary
//!   scans, and can accept and never answer.
//! - [`cli`]: runs a built binary (the `secrets` CLI) in a cleared environment and captures
//!   what it printed.
//! - [`Shared`]: one server per test binary while its tests overlap ([`shared_openbao`]).
//! - [`openbao_or_skip`]: the skip policy. Locally a missing `bao` prints `SKIP` and the test
//!   returns; under `CI=true` it fails the test.
//!
//! [`OpenBaoServer::start_detached`], [`cerbos::CerbosServer::start_detached`] and
//! [`tansu::TansuServer::start_detached`] start the same servers to outlive the caller
//! ([`Detached`]): `cargo xtask services up` runs its
//! shared servers through them, so starting and health-checking a server has one home.
//!
//! The `bao` binary comes from `cargo xtask services install` (under the git-ignored
//! `.tools/`), or from `$SECRETS_TEST_BAO_BIN`. See `docs/services.md`.
//!
//! ```
//! use secrets_test_support::{Fault, FaultServer};
//!
//! # fn main() -> Result<(), secrets_test_support::Error> {
//! // A server that fails once, then answers.
//! let server = FaultServer::start(vec![
//!     Fault::status(503),
//!     Fault::json(200, &serde_json::json!({"data": {"data": {"token": "t"}}})),
//! ])?;
//! assert!(server.addr().starts_with("http://127.0.0.1:"));
//!
//! // A real OpenBao, or a SKIP line when it is not installed (a failure under CI=true).
//! if let Some(bao) = secrets_test_support::openbao_or_skip() {
//!     bao.kv_put("secret", "app/api", &serde_json::json!({"token": "t"}))?;
//! }
//! # Ok(()) }
//! ```
//!
//! Features: `pep` (default) for the PEP test doubles in [`pep`] (a normal dependency on
//! `secret-pep`, whose own tests use this crate as a dev-dependency: no cycle among normal
//! dependencies); `floor` for `floor::HyperFloor`, the raw hyper GET the benchmarks compare
//! against; `otlp` (default) for `otlp::OtlpReceiver`, an OTLP/HTTP receiver on loopback that decodes
//! exports with the published `opentelemetry-proto` types and keeps their raw bytes.

#![forbid(unsafe_code)]

pub mod bench;
pub mod cerbos;
pub mod cli;
mod detached;
mod env;
mod error;
mod fault;
#[cfg(feature = "floor")]
pub mod floor;
mod http;
pub mod jose;
mod launch;
mod logs;
pub mod oidc;
mod openbao;
#[cfg(feature = "otlp")]
pub mod otlp;
mod paths;
#[cfg(feature = "pep")]
pub mod pep;
pub mod postgres;
pub mod proxy;
pub mod redis;
mod shared;
pub mod tansu;

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};

pub use detached::Detached;
pub use env::env_map;
pub use error::Error;
pub use fault::{Fault, FaultServer, RecordedRequest};
pub use logs::LogCapture;
pub use openbao::{AppRoleCredentials, OpenBaoServer};
pub use paths::{
    BAO_BIN_ENV, CERBOS_BIN_ENV, NODE_BIN_ENV, OIDC_MODULE_ENV, TANSU_BIN_ENV, bao_bin, cerbos_bin,
    node_bin, oidc_provider_module, repo_root, tansu_bin, tools_dir,
};
pub use shared::Shared;

/// A loopback TCP port that was free a moment ago (bind to port 0, read it, release it).
///
/// Another process may take it before you bind it; prefer binding port 0 yourself when you can.
pub fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(Error::io("bind 127.0.0.1:0 to find a free port"))?;
    let port = listener
        .local_addr()
        .map_err(Error::io("read local_addr"))?
        .port();
    Ok(port)
}

/// A free port `p` with `p + 1` free too: `bao` puts its cluster listener on the API port + 1.
pub(crate) fn free_port_pair() -> Result<u16, Error> {
    for _ in 0..50 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(Error::io("bind 127.0.0.1:0 to find a free port"))?;
        let port = listener
            .local_addr()
            .map_err(Error::io("read local_addr"))?
            .port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return Ok(port);
        }
    }
    // Extremely unlikely; the cluster listener failing to bind is not fatal to `bao` anyway.
    free_port()
}

/// 32 hex digits from std's per-process random SipHash keys: unique and unguessable enough for
/// test tokens and temp dir names, without a `rand` dependency.
pub(crate) fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher, RandomState};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    (0..2)
        .map(|_| {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
            hasher.write_u128(nanos);
            hasher.write_u32(std::process::id());
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

/// Whether tests run under CI (`CI=true` or `CI=1`), where a missing tool is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Reports that a test cannot run: prints `SKIP: {reason}` to stderr, or panics under
/// [`in_ci`] so that CI never passes by skipping.
pub fn skip_or_fail(reason: &str) {
    if in_ci() {
        panic!("{reason} (CI=true: tests that need a tool must not skip)");
    }
    eprintln!("SKIP: {reason}");
}

/// [`OpenBaoServer::start`] for tests: `None` (after a `SKIP` line) when `bao` is not
/// installed and not under CI; panics under CI, and whenever `bao` is installed but fails to
/// start (that is a bug, not a missing tool).
pub fn openbao_or_skip() -> Option<OpenBaoServer> {
    or_skip(OpenBaoServer::start())
}

/// One plain-HTTP OpenBao for every test of this binary that runs while another holds it
/// ([`Shared`]), with the policy of [`openbao_or_skip`]. For tests that only write under
/// paths of their own; a test that stops, restarts or reconfigures the server starts its own.
pub fn shared_openbao() -> Option<std::sync::Arc<OpenBaoServer>> {
    static SHARED: Shared<OpenBaoServer> = Shared::new();
    SHARED.get_or_start(openbao_or_skip)
}

/// [`OpenBaoServer::start_tls`] with the policy of [`openbao_or_skip`].
pub fn openbao_tls_or_skip() -> Option<OpenBaoServer> {
    or_skip(OpenBaoServer::start_tls())
}

fn or_skip(started: Result<OpenBaoServer, Error>) -> Option<OpenBaoServer> {
    match started {
        Ok(server) => Some(server),
        Err(e @ Error::ToolMissing { .. }) => {
            skip_or_fail(&format!("OpenBao unavailable: {e}"));
            None
        }
        Err(e) => panic!("OpenBao dev server failed to start: {e}"),
    }
}
