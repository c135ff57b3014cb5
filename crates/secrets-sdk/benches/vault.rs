//! `VaultClient::get_credentials` end to end against a real OpenBao dev server, with floors
//! measured in the same run.
//!
//! The PDP is in process ([`DevAllowAll`], grants with effectively unlimited uses), so the
//! measurement is the PEP path plus the provider read, not a PDP round trip. Every call carries
//! a fresh `jti` and a DPoP binding, so anti-replay and the binding check run each time.
//!
//! - `floor_hyper_get_vault`: a raw hyper-util pooled keep-alive `GET /v1/secret/data/<path>`
//!   with a pre-built token header, then a `serde_json::Value` parse (as
//!   `secret-providers/benches/kv2.rs` measures `floor_hyper_get`).
//! - `get_credentials_warm`: `get_credentials` of the same secret's `#password` on a warm grant.
//! - `get_credentials_warm_audited`: the same with an audit sink (a `QueueSink` whose drainer
//!   serializes every event to OCSF JSON and discards it): the audit's cost on the request path
//!   is this p50 minus the one above (two events per call: the decision and the read).
//! - `get_credentials_warm_telemetry`: the same on a client built after a discarding OTLP
//!   pipeline was installed (`secret_telemetry::otlp::Pipeline::discarding`: its meter provider
//!   global, so the client, its PEP and its provider record into it; its `tracing` layer with
//!   the default `info` filter in the global subscriber, so every call's `get_credentials`
//!   span is built, batched and handed to the discarding exporter). The request runs on the
//!   client's own runtime threads, so the subscriber is global; a switch in front of the layer
//!   lets only this scenario's calls through (every scenario pays the switch's check per INFO
//!   callsite, a few ns). Telemetry's cost on the request path is this p50 minus
//!   `get_credentials_warm`'s (printed, with the number of spans the exporter dropped).
//! - `…_task`: `get_credentials_inproc(_telemetry)` and `get_credentials_warm(_telemetry)`
//!   again, called from a task on a 2-worker multi-thread runtime (as a service's handler
//!   calls the client: no hop between runtimes) rather than from a current-thread runtime,
//!   with `floor_hyper_get_vault_task`, the floor on that runtime, in the same rotation (its
//!   CPU per op beside `get_credentials_warm_task`'s).
//! - `get_credentials_inproc` / `get_credentials_inproc_telemetry`: the same pair with a
//!   provider in memory (scheme `db`) instead of OpenBao: PEP, read task, audit-free path and
//!   telemetry without the network, so telemetry's cost (printed) is not lost in the vault's
//!   round-trip noise.
//! - `floor_concurrent_64` / `concurrent_64`: 64 tasks on a 2-worker multi-thread runtime,
//!   each doing sequential raw GETs / `get_credentials` calls of the one secret; total ops /
//!   elapsed. The client shares a read in flight among the requests for the same URI (read
//!   coalescing, its default); `concurrent_64_uncoalesced` is the same client with
//!   `coalesce_reads(false)`, every request a vault read as in the floor. The same again with
//!   the 64 tasks on a current-thread runtime (`…_current_thread`).
//!
//! Every network scenario also reports `client_cpu_us_per_op`: the process's CPU time (user
//! and system, every thread; the server runs in another process) over its operations, divided
//! by their number (`secrets_test_support::bench::Meter`). Measured inside a rotation with
//! other scenarios, a window can also hold their background work (span export, the audit
//! sink's drain), so `get_credentials_warm_cpu_vs_floor` (current-thread caller) and
//! `get_credentials_warm_task_cpu_vs_floor` (from a task on the multi-thread runtime) measure
//! the client against the floor alone: alternating blocks of 200 floor GETs and 200 calls,
//! after a flush of the span exporter, the medians of 30 blocks each.
//! - `get_credentials_warm_redis` / `concurrent_64_redis` (feature `redis`): the same as
//!   `get_credentials_warm` / `concurrent_64` with the PEP's state (grants and use counts, the
//!   `jti`s, denials) in a real Redis (Debian's `redis-server` on a free loopback port, started
//!   here as OpenBao is), as N replicas keep it. Printed beside them: the overhead over
//!   in-memory state (p50 difference, throughput ratio), and the Redis round trips per warm
//!   decision, counted by the server: after the measurement, 500 more warm calls run under a
//!   `MONITOR` connection, which lists every command a client sent (one round trip each) apart
//!   from those a script ran (`[0 lua]`); `INFO commandstats` before and after the measured
//!   calls gives every command executed, inside scripts too. The aim is one round trip per
//!   warm decision, ≤ 150 µs over in-memory state on loopback. `get_credentials_inproc_redis`
//!   is `get_credentials_inproc` with the state in Redis: the same overhead without the
//!   vault's round-trip noise. `floor_redis_set_nx` is the cheapest round trip to the same
//!   server in the same run: a blocking client sending the anti-replay
//!   `SET <key> 1 NX PX 300000`. Without the feature, or without `redis-server`, these are
//!   left out with a note.
//!
//! With `SECRETS_BENCH_JSON=<path>` set, it starts a fresh dev server, warms up, runs floor
//! and subject alternately (so machine noise hits both alike) and appends one JSON line per
//! scenario: `{"scenario":…,"p50_us":…,"p99_us":…,"n":…}` for latencies,
//! `{"scenario":…,"ops_per_s":…,"n":…}` for throughput. Without it, the latency pair runs as
//! criterion benchmarks. Either way it needs `bao` (`cargo xtask services install`); without it
//! the bench prints a note and exits.
//!
//! ```sh
//! SECRETS_BENCH_JSON=/tmp/v.jsonl cargo bench -p secrets-sdk --bench vault --features redis
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use secrets_sdk::audit::{AuditSink, QueueConfig, QueueSink};
use secrets_sdk::pep::{DevAllowAll, PepConfig};
use secrets_sdk::providers::{
    Kv2Auth, Kv2Config, Kv2Flavor, ReadFuture, SecretProvider, SecretValue,
};
use secrets_sdk::telemetry::otlp::{OtlpGuard, Pipeline};
use secrets_sdk::uri::{Provider, SecretUri};
use secrets_sdk::{ExecutionContext, VaultClient};
use secrets_test_support::OpenBaoServer;
use secrets_test_support::bench::{Latencies, Meter, OcsfDiscard, append, json_path, process_cpu};
use secrets_test_support::floor::HyperFloor;
use secrets_test_support::redis::{RedisServer, Reply};
use tracing_subscriber::layer::SubscriberExt as _;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const PATH: &str = "bench/vault";
const WARMUP: usize = 300;
const SAMPLES: usize = 2000;
const TASKS: usize = 64;
const OPS_PER_TASK: usize = 40;
const ROUNDS: usize = 6;

struct Fixture {
    // Kept alive for the run; killed on drop.
    bao: OpenBaoServer,
    client: VaultClient,
    /// The same client without read coalescing: every request reads the vault.
    alone: VaultClient,
    /// The same client with an audit sink: a queue drained off the request path into OCSF
    /// bytes that are then discarded (what a Kafka sink costs the request path, without the
    /// broker).
    audited: VaultClient,
    sink: Arc<QueueSink>,
    /// A pair of fresh clients used only by the CPU measurement, so both have served the
    /// same calls (one built before the pipeline, one after).
    cpu_plain: VaultClient,
    cpu_traced: VaultClient,
    /// The same client built after the discarding telemetry pipeline was installed.
    traced: VaultClient,
    telemetry: OtlpGuard,
    /// The same client with the PEP's state in Redis (`None`: no `redis` feature or no
    /// `redis-server`).
    redis: Option<RedisFixture>,
    uri: String,
    ctx: ExecutionContext,
}

/// A Redis, and the client whose PEP keeps its state there.
struct RedisFixture {
    // Kept alive for the run; killed on drop.
    server: RedisServer,
    client: VaultClient,
}

/// The in-memory secret of the `_inproc` scenarios.
const IN_MEMORY: &str = "db+cred://secret/bench#password";

/// A provider in memory for `db` URIs: the request path without the network.
#[derive(Debug)]
struct InMemory;

impl SecretProvider for InMemory {
    fn name(&self) -> &'static str {
        "in-memory"
    }

    fn read<'a>(&'a self, _uri: &'a SecretUri) -> ReadFuture<'a> {
        Box::pin(std::future::ready(Ok(SecretValue::from_text(
            "correct-horse-battery-staple",
        ))))
    }
}

/// Whether the telemetry layer sees the spans being made: on only around the telemetry
/// scenario's calls.
static TRACED: AtomicBool = AtomicBool::new(false);

/// A global filter that enables nothing unless [`TRACED`] is set. Asked once per span made
/// (INFO and above answer `sometimes`; DEBUG and TRACE callsites, which the pipeline's
/// default filter leaves out, are off for all, and so is the level hint), it adds nothing to a traced span's enters,
/// exits and close, as a per-layer filter in front of the pipeline's layer would (a lookup
/// of the span for each): the traced scenario costs what the pipeline costs.
struct Switch;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Switch {
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if *meta.level() > tracing::Level::INFO {
            tracing::subscriber::Interest::never()
        } else {
            tracing::subscriber::Interest::sometimes()
        }
    }

    fn enabled(
        &self,
        _: &tracing::Metadata<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        TRACED.load(Ordering::Relaxed)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::INFO)
    }
}

/// Installs the discarding pipeline: its meter provider globally (clients built from now on
/// record into it) and a global subscriber holding its `tracing` layer (default filter
/// `info`) behind the [`Switch`].
fn telemetry() -> Result<OtlpGuard, BoxError> {
    let pipeline = Pipeline::discarding();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry()
            .with(pipeline.layer())
            .with(Switch),
    )?;
    Ok(pipeline.install())
}

fn fixture() -> Result<Option<Fixture>, BoxError> {
    let bao = match OpenBaoServer::start() {
        Ok(bao) => bao,
        Err(e @ secrets_test_support::Error::ToolMissing { .. }) => {
            eprintln!("vault bench skipped: {e}");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    bao.kv_put(
        "secret",
        PATH,
        &serde_json::json!({"username": "app", "password": "correct-horse-battery-staple", "port": 5432}),
    )?;
    let pep = PepConfig::new("bench", "secret".parse()?)
        // The allow-all PDP runs only in a development environment.
        .with_environment("test")
        .with_grant_defaults(Duration::from_secs(24 * 3600), u32::MAX)
        .with_capacity(2_000_000, 1_000);
    let builder = || {
        VaultClient::builder()
            .kv2(Kv2Config::new(
                Kv2Flavor::OpenBao,
                bao.addr(),
                Kv2Auth::token(bao.root_token().to_owned()),
            ))
            .pep_config(pep.clone())
            .pdp(DevAllowAll::new())
            .tenant_salt("bench-tenant-salt-0123456789abcdef")
            .provider(Provider::Db, Arc::new(InMemory))
    };
    let client = builder().build()?;
    let alone = builder().coalesce_reads(false).build()?;
    let cpu_plain = builder().build()?;
    let redis = redis_fixture(builder())?;
    let sink = Arc::new(QueueSink::new(OcsfDiscard, QueueConfig::default())?);
    let audited = builder()
        .audit(Arc::clone(&sink) as Arc<dyn AuditSink>)
        .build()?;
    // Everything above records nothing; the client built now records into the pipeline.
    let telemetry = telemetry()?;
    let traced = builder().build()?;
    let cpu_traced = builder().build()?;
    let ctx = ExecutionContext::new("bench")
        .with_aud(["crud.secrets"])
        .with_cnf_jkt("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    Ok(Some(Fixture {
        bao,
        client,
        alone,
        audited,
        sink,
        traced,
        cpu_plain,
        cpu_traced,
        telemetry,
        redis,
        uri: format!("openbao+kv2://secret/{PATH}#password"),
        ctx,
    }))
}

/// A Redis on a free loopback port and a client from `builder` whose PEP keeps its state there
/// (its own connection, as a replica has), or `None` with a note.
#[cfg(feature = "redis")]
fn redis_fixture(
    builder: secrets_sdk::VaultClientBuilder,
) -> Result<Option<RedisFixture>, BoxError> {
    use secrets_sdk::pep::{PepState, RedisConfig, RedisState};

    let server = match RedisServer::start() {
        Ok(server) => server,
        Err(e @ secrets_test_support::Error::ToolMissing { .. }) => {
            eprintln!("vault bench: the _redis scenarios skipped: {e}");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let config = RedisConfig::new(server.url(), b"bench-pep-state-key-0123456789abcdef")?
        .with_key_prefix("bench:");
    let client = builder
        .pep_state(PepState::redis(RedisState::new(&config, "bench")?))
        .build()?;
    Ok(Some(RedisFixture { server, client }))
}

#[cfg(not(feature = "redis"))]
fn redis_fixture(
    _builder: secrets_sdk::VaultClientBuilder,
) -> Result<Option<RedisFixture>, BoxError> {
    eprintln!("vault bench: the _redis scenarios need `--features redis`");
    Ok(None)
}

/// Calls of each Redis command so far (`INFO commandstats`), but `INFO`'s own.
fn command_calls(
    server: &RedisServer,
) -> Result<std::collections::BTreeMap<String, u64>, BoxError> {
    let reply = server.command(&["INFO", "commandstats"])?;
    let Reply::Bulk(Some(text)) = reply else {
        return Err(format!("INFO commandstats answered {reply:?}").into());
    };
    let mut calls = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&text).lines() {
        // cmdstat_evalsha:calls=2000,usec=…,…
        let Some((name, stats)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let n = stats
            .split(',')
            .find_map(|kv| kv.strip_prefix("calls="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if name != "info" {
            calls.insert(name.to_owned(), n);
        }
    }
    Ok(calls)
}

/// Redis commands per call between two [`command_calls`], in total and by command.
fn per_call(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
    calls: usize,
) -> (f64, String) {
    let mut total = 0;
    let mut by_command = Vec::new();
    for (name, n) in after {
        let delta = n - before.get(name).copied().unwrap_or(0);
        if delta > 0 {
            total += delta;
            by_command.push(format!("{name} {:.3}", delta as f64 / calls as f64));
        }
    }
    (total as f64 / calls as f64, by_command.join(", "))
}

/// Runs `calls` warm reads of the Redis client under a `MONITOR` connection and returns, per
/// call, the commands the client sent (its round trips) and those its scripts ran.
async fn monitored_round_trips(
    fx: &Fixture,
    redis: &RedisFixture,
    calls: usize,
) -> Result<(f64, f64), BoxError> {
    use std::io::{BufRead, BufReader, Write};

    let mut stream = std::net::TcpStream::connect(("127.0.0.1", redis.server.port()))?;
    stream.write_all(b"MONITOR\r\n")?;
    let mut lines = BufReader::new(stream.try_clone()?);
    let mut ok = String::new();
    lines.read_line(&mut ok)?;
    if ok.trim_end() != "+OK" {
        return Err(format!("MONITOR answered {ok:?}").into());
    }
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    let done = Arc::new(AtomicBool::new(false));
    let counter = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let (mut sent, mut scripted) = (0_u64, 0_u64);
            let mut line = String::new();
            loop {
                // A read that times out keeps what it read of a line: cleared only once whole.
                match lines.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) => {
                        // `+1700000000.123456 [0 127.0.0.1:54321] "EVALSHA" …`; `[0 lua]`
                        // inside a script.
                        if line.contains(" lua] ") {
                            scripted += 1;
                        } else if line.starts_with('+') {
                            sent += 1;
                        }
                        line.clear();
                    }
                    Err(_) if done.load(Ordering::Acquire) => break,
                    Err(_) => {}
                }
            }
            (sent, scripted)
        })
    };
    for _ in 0..calls {
        read(fx, &redis.client).await?;
    }
    // What the server executed is listed before the client hears its answer; the pause lets
    // the last lines reach the counter.
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, Ordering::Release);
    let (sent, scripted) = counter.join().map_err(|_| "the MONITOR reader panicked")?;
    drop(stream);
    Ok((sent as f64 / calls as f64, scripted as f64 / calls as f64))
}

/// A unique `jti` per call in this process.
fn jti() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("bench-jti-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

async fn get(fx: &Fixture) -> Result<(), BoxError> {
    read(fx, &fx.client).await
}

async fn read(fx: &Fixture, client: &VaultClient) -> Result<(), BoxError> {
    read_uri(fx, client, &fx.uri).await
}

async fn read_uri(fx: &Fixture, client: &VaultClient, uri: &str) -> Result<(), BoxError> {
    let ctx = fx.ctx.clone().with_jti(jti());
    let secret = client.get_credentials(uri, Some(&ctx)).await?;
    black_box(secret.expose_str());
    Ok(())
}

/// [`read_uri`] with the telemetry client, its spans let through to the pipeline.
async fn traced_uri(fx: &Fixture, uri: &str) -> Result<(), BoxError> {
    TRACED.store(true, Ordering::Relaxed);
    let result = read_uri(fx, &fx.traced, uri).await;
    TRACED.store(false, Ordering::Relaxed);
    result
}

/// [`read`] with the telemetry client.
async fn traced(fx: &Fixture) -> Result<(), BoxError> {
    traced_uri(fx, &fx.uri).await
}

/// `samples` in-memory reads each of the plain and the telemetry client (and of the Redis
/// client, when there is one), alternating (the first of each turn rotates), after a warm-up.
async fn in_memory(
    fx: &Fixture,
    samples: usize,
) -> Result<(Latencies, Latencies, Latencies), BoxError> {
    let redis = fx.redis.as_ref();
    for _ in 0..samples / 10 {
        read_uri(fx, &fx.client, IN_MEMORY).await?;
        traced_uri(fx, IN_MEMORY).await?;
        if let Some(redis) = redis {
            read_uri(fx, &redis.client, IN_MEMORY).await?;
        }
    }
    let mut plain = Latencies::with_capacity(samples);
    let mut with_telemetry = Latencies::with_capacity(samples);
    let mut on_redis = Latencies::with_capacity(samples);
    let turns = if redis.is_some() { 3 } else { 2 };
    for i in 0..samples {
        for k in 0..turns {
            let started = Instant::now();
            match (i + k) % turns {
                0 => {
                    read_uri(fx, &fx.client, IN_MEMORY).await?;
                    plain.push(started.elapsed());
                }
                1 => {
                    traced_uri(fx, IN_MEMORY).await?;
                    with_telemetry.push(started.elapsed());
                }
                _ => {
                    if let Some(redis) = redis {
                        read_uri(fx, &redis.client, IN_MEMORY).await?;
                        on_redis.push(started.elapsed());
                    }
                }
            }
        }
    }
    Ok((plain, with_telemetry, on_redis))
}

/// The process's CPU per call, in µs, of the plain and the telemetry client reading `uri`:
/// the median over `blocks` alternating blocks of `per_block` calls each (the first of each
/// turn rotates). The two clients are a fresh pair kept for this measurement, so their state
/// (replay store, grants, connections) is alike. CPU time leaves out the waits (the vault's round trip, wakeups) that make
/// wall-clock differences of a few µs unmeasurable here, and counts every thread: the
/// client's runtime and the span exporter's too.
async fn cpu_per_call(
    fx: &Fixture,
    uri: &str,
    blocks: usize,
    per_block: usize,
) -> Result<(f64, f64), BoxError> {
    let mut plain = Vec::with_capacity(blocks);
    let mut traced = Vec::with_capacity(blocks);
    TRACED.store(true, Ordering::Relaxed);
    for _ in 0..per_block {
        read_uri(fx, &fx.cpu_traced, uri).await?;
    }
    TRACED.store(false, Ordering::Relaxed);
    for _ in 0..per_block {
        read_uri(fx, &fx.cpu_plain, uri).await?;
    }
    let per_call = |started: Duration| {
        (process_cpu().saturating_sub(started)).as_secs_f64() * 1e6 / per_block as f64
    };
    for block in 0..blocks {
        for turn in 0..2 {
            let started = process_cpu();
            if (block + turn) % 2 == 0 {
                for _ in 0..per_block {
                    read_uri(fx, &fx.cpu_plain, uri).await?;
                }
                plain.push(per_call(started));
            } else {
                TRACED.store(true, Ordering::Relaxed);
                for _ in 0..per_block {
                    read_uri(fx, &fx.cpu_traced, uri).await?;
                }
                TRACED.store(false, Ordering::Relaxed);
                traced.push(per_call(started));
            }
        }
    }
    Ok((median(&mut plain), median(&mut traced)))
}

/// CPU per op of the floor and of `get_credentials_warm`, measured apart from every other
/// scenario: `blocks` turns of `per_block` floor GETs and `per_block` client calls (the first
/// of each turn rotates), the medians of the blocks. Nothing else runs meanwhile (the span
/// exporter was flushed first), so no other scenario's background work (span export, the
/// audit sink's drain) lands in these windows.
async fn cpu_against_floor(
    fx: &Fixture,
    floor: &HyperFloor,
    blocks: usize,
    per_block: usize,
) -> Result<(f64, f64), BoxError> {
    fx.telemetry.force_flush()?;
    let mut raw = Vec::with_capacity(blocks);
    let mut ours = Vec::with_capacity(blocks);
    let per_call = |started: Duration| {
        (process_cpu().saturating_sub(started)).as_secs_f64() * 1e6 / per_block as f64
    };
    for block in 0..blocks {
        for turn in 0..2 {
            let started = process_cpu();
            if (block + turn) % 2 == 0 {
                for _ in 0..per_block {
                    black_box(floor.get().await?);
                }
                raw.push(per_call(started));
            } else {
                for _ in 0..per_block {
                    get(fx).await?;
                }
                ours.push(per_call(started));
            }
        }
    }
    Ok((median(&mut raw), median(&mut ours)))
}

/// One `{"scenario":…,"floor_cpu_us_per_op":…,"client_cpu_us_per_op":…,"ratio":…}` line and
/// its printed ratio.
fn floor_cpu_line(
    path: &std::path::Path,
    scenario: &str,
    (raw, ours): (f64, f64),
    n: usize,
) -> Result<(), BoxError> {
    append(
        path,
        &format!(
            "{{\"scenario\":\"{scenario}\",\"floor_cpu_us_per_op\":{raw:.3},\"client_cpu_us_per_op\":{ours:.3},\"ratio\":{:.3},\"n\":{n}}}",
            ours / raw
        ),
    )?;
    println!(
        "{scenario}: CPU per op {:.3}× the floor's ({ours:.1} µs / {raw:.1} µs; medians of alternating blocks, nothing else running)",
        ours / raw
    );
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One `{"scenario":…,"plain_cpu_us_per_op":…,"telemetry_cpu_us_per_op":…}` line and its
/// printed difference.
fn cpu_line(
    path: &std::path::Path,
    scenario: &str,
    (plain, traced): (f64, f64),
    blocks: usize,
    per_block: usize,
) -> Result<(), BoxError> {
    append(
        path,
        &format!(
            "{{\"scenario\":\"{scenario}\",\"plain_cpu_us_per_op\":{plain:.3},\"telemetry_cpu_us_per_op\":{traced:.3},\"telemetry_overhead_cpu_us\":{:.3},\"n\":{}}}",
            traced - plain,
            blocks * per_block
        ),
    )?;
    println!(
        "telemetry CPU cost per call ({scenario}): {:+.2} µs (telemetry {traced:.2} µs, plain {plain:.2} µs of CPU per call; medians of {blocks} blocks of {per_block})",
        traced - plain
    );
    Ok(())
}

fn latencies(fx: &Fixture, path: &std::path::Path) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let floor = HyperFloor::new(&fx.bao, PATH)?;
    let redis = fx.redis.as_ref();
    let (floor, subject, audited, with_telemetry, on_redis) = runtime.block_on(async {
        for _ in 0..WARMUP {
            black_box(floor.get().await?);
            get(fx).await?;
            read(fx, &fx.audited).await?;
            traced(fx).await?;
            if let Some(redis) = redis {
                read(fx, &redis.client).await?;
            }
        }
        let mut floor_l = Latencies::with_capacity(SAMPLES);
        let mut subject_l = Latencies::with_capacity(SAMPLES);
        let mut audited_l = Latencies::with_capacity(SAMPLES);
        let mut traced_l = Latencies::with_capacity(SAMPLES);
        let mut redis_l = Latencies::with_capacity(SAMPLES);
        let mut redis_floor_l = Latencies::with_capacity(SAMPLES);
        let mut resp = redis.map(|r| r.server.connect()).transpose()?;
        let before = redis.map(|r| command_calls(&r.server)).transpose()?;
        let scenarios = if redis.is_some() { 6 } else { 4 };
        for i in 0..SAMPLES {
            // Rotate which goes first so none always follows another.
            for k in 0..scenarios {
                let started = Instant::now();
                let meter = Meter::start();
                match (i + k) % scenarios {
                    0 => {
                        black_box(floor.get().await?);
                        meter.stop(&mut floor_l);
                    }
                    1 => {
                        get(fx).await?;
                        meter.stop(&mut subject_l);
                    }
                    2 => {
                        read(fx, &fx.audited).await?;
                        meter.stop(&mut audited_l);
                    }
                    3 => {
                        traced(fx).await?;
                        meter.stop(&mut traced_l);
                    }
                    4 => {
                        if let Some(redis) = redis {
                            read(fx, &redis.client).await?;
                            meter.stop(&mut redis_l);
                        }
                    }
                    _ => {
                        if let Some(resp) = resp.as_mut() {
                            let key = format!("floor:{}", jti());
                            let reply = resp.command(&["SET", &key, "1", "NX", "PX", "300000"])?;
                            redis_floor_l.push(started.elapsed());
                            black_box(reply);
                        }
                    }
                }
            }
        }
        // Only the Redis client talks to Redis: the commands it sent per warm decision.
        let on_redis = match (redis, before) {
            (Some(redis), Some(before)) => {
                let mut after = command_calls(&redis.server)?;
                // The floor's own SETs are not the client's.
                if let Some(set) = after.get_mut("set") {
                    *set -= redis_floor_l.len() as u64;
                }
                let executed = per_call(&before, &after, SAMPLES);
                let round_trips = monitored_round_trips(fx, redis, 500).await?;
                Some((redis_l, redis_floor_l, executed, round_trips))
            }
            _ => None,
        };
        Ok::<_, BoxError>((floor_l, subject_l, audited_l, traced_l, on_redis))
    })?;
    let (inproc, inproc_telemetry, inproc_redis) = runtime.block_on(in_memory(fx, 20_000))?;
    let inproc_cpu = runtime.block_on(cpu_per_call(fx, IN_MEMORY, 40, 1000))?;
    let warm_cpu = runtime.block_on(cpu_per_call(fx, &fx.uri, 30, 200))?;
    let raw = HyperFloor::new(&fx.bao, PATH)?;
    let vs_floor = runtime.block_on(cpu_against_floor(fx, &raw, 30, 200))?;
    floor_cpu_line(
        path,
        "get_credentials_warm_cpu_vs_floor",
        vs_floor,
        30 * 200,
    )?;
    append(path, &floor.json_line("floor_hyper_get_vault"))?;
    append(path, &subject.json_line("get_credentials_warm"))?;
    append(path, &audited.json_line("get_credentials_warm_audited"))?;
    append(
        path,
        &with_telemetry.json_line("get_credentials_warm_telemetry"),
    )?;
    if let Some((redis_l, floor_l, (executed, by_command), (round_trips, in_scripts))) = &on_redis {
        append(path, &floor_l.json_line("floor_redis_set_nx"))?;
        let line = redis_l.json_line("get_credentials_warm_redis");
        let line = format!(
            "{},\"redis_round_trips_per_call\":{round_trips:.3}}}",
            line.trim_end_matches('}')
        );
        append(path, &line)?;
        println!(
            "Redis state overhead on the request path: p50 {:+.2} µs (get_credentials_warm_redis {:.2} µs, get_credentials_warm {:.2} µs; floor_redis_set_nx {:.2} µs)",
            redis_l.quantile_us(0.5) - subject.quantile_us(0.5),
            redis_l.quantile_us(0.5),
            subject.quantile_us(0.5),
            floor_l.quantile_us(0.5),
        );
        println!(
            "Redis round trips per warm decision (MONITOR): {round_trips:.3}, running {in_scripts:.3} commands inside scripts; commands executed per call (INFO commandstats): {executed:.3} ({by_command})"
        );
    }
    append(path, &inproc.json_line("get_credentials_inproc"))?;
    if !inproc_redis.is_empty() {
        append(
            path,
            &inproc_redis.json_line("get_credentials_inproc_redis"),
        )?;
        println!(
            "Redis state overhead without the network to the vault: p50 {:+.2} µs (get_credentials_inproc_redis {:.2} µs, get_credentials_inproc {:.2} µs)",
            inproc_redis.quantile_us(0.5) - inproc.quantile_us(0.5),
            inproc_redis.quantile_us(0.5),
            inproc.quantile_us(0.5),
        );
    }
    append(
        path,
        &inproc_telemetry.json_line("get_credentials_inproc_telemetry"),
    )?;
    cpu_line(path, "get_credentials_inproc_cpu", inproc_cpu, 40, 1000)?;
    cpu_line(path, "get_credentials_warm_cpu", warm_cpu, 30, 200)?;
    fx.telemetry.force_flush()?;
    println!(
        "telemetry cost without the network: p50 {:+.2} µs (get_credentials_inproc_telemetry {:.2} µs, get_credentials_inproc {:.2} µs)",
        inproc_telemetry.quantile_us(0.5) - inproc.quantile_us(0.5),
        inproc_telemetry.quantile_us(0.5),
        inproc.quantile_us(0.5),
    );
    println!(
        "telemetry cost on the request path: p50 {:+.2} µs (telemetry {:.2} µs, plain {:.2} µs); {:?} spans discarded",
        with_telemetry.quantile_us(0.5) - subject.quantile_us(0.5),
        with_telemetry.quantile_us(0.5),
        subject.quantile_us(0.5),
        fx.telemetry.discarded_spans(),
    );
    println!(
        "get_credentials_warm p50 / floor_hyper_get_vault p50 = {:.3}",
        subject.quantile_us(0.5) / floor.quantile_us(0.5)
    );
    if let (Some(ours), Some(raw)) = (subject.cpu_us_per_op(), floor.cpu_us_per_op()) {
        println!(
            "get_credentials_warm CPU per op / floor_hyper_get_vault CPU per op = {:.3} ({ours:.1} µs / {raw:.1} µs)",
            ours / raw
        );
    }
    println!(
        "audit cost on the request path: p50 {:+.2} µs (audited {:.2} µs, plain {:.2} µs); sink {:?}",
        audited.quantile_us(0.5) - subject.quantile_us(0.5),
        audited.quantile_us(0.5),
        subject.quantile_us(0.5),
        fx.sink.close(Duration::from_secs(10)),
    );
    Ok(())
}

/// 64 tasks × `OPS_PER_TASK` sequential operations; returns (ops, elapsed).
async fn burst<F, Fut>(op: F) -> Result<(usize, Duration), BoxError>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), BoxError>> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                for _ in 0..OPS_PER_TASK {
                    op().await?;
                }
                Ok::<_, BoxError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok((TASKS * OPS_PER_TASK, started.elapsed()))
}

/// The concurrent scenarios for callers on a 2-worker multi-thread runtime, then on a
/// current-thread one (`_current_thread`).
fn throughput(fx: Arc<Fixture>, path: &std::path::Path) -> Result<(), BoxError> {
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    throughput_on(&fx, path, &multi, "")?;
    drop(multi);
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    throughput_on(&fx, path, &current, "_current_thread")
}

/// One concurrent scenario's operation.
type Op = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), BoxError>> + Send>>
        + Send
        + Sync,
>;

fn throughput_on(
    fx: &Arc<Fixture>,
    path: &std::path::Path,
    runtime: &tokio::runtime::Runtime,
    suffix: &str,
) -> Result<(), BoxError> {
    let floor = Arc::new(HyperFloor::new(&fx.bao, PATH)?);
    let client_op = |pick: fn(&Fixture) -> Option<&VaultClient>| -> Op {
        let fx = Arc::clone(fx);
        Arc::new(move || {
            let fx = Arc::clone(&fx);
            Box::pin(async move {
                match pick(&fx) {
                    Some(client) => read(&fx, client).await,
                    None => Ok(()),
                }
            })
        })
    };
    let mut scenarios: Vec<(&str, Op)> = vec![
        ("floor_concurrent_64", {
            let floor = Arc::clone(&floor);
            Arc::new(move || {
                let floor = Arc::clone(&floor);
                Box::pin(async move {
                    black_box(floor.get().await?);
                    Ok(())
                })
            })
        }),
        ("concurrent_64", client_op(|fx| Some(&fx.client))),
        ("concurrent_64_uncoalesced", client_op(|fx| Some(&fx.alone))),
    ];
    if fx.redis.is_some() {
        scenarios.push((
            "concurrent_64_redis",
            client_op(|fx| fx.redis.as_ref().map(|r| &r.client)),
        ));
    }
    let burst_of = |op: &Op| {
        let op = Arc::clone(op);
        burst(move || op())
    };
    let totals = runtime.block_on(async {
        // Warm-up: open the connections every side will use.
        for (_, op) in &scenarios {
            burst_of(op).await?;
        }
        let mut totals = vec![(0, Duration::ZERO, Duration::ZERO); scenarios.len()];
        for round in 0..ROUNDS {
            // Rotate which goes first so none always follows another.
            for k in 0..scenarios.len() {
                let which = (round + k) % scenarios.len();
                let cpu = process_cpu();
                let (ops, elapsed) = burst_of(&scenarios[which].1).await?;
                let cpu = process_cpu().saturating_sub(cpu);
                let total = &mut totals[which];
                *total = (total.0 + ops, total.1 + elapsed, total.2 + cpu);
            }
        }
        Ok::<_, BoxError>(totals)
    })?;
    let rate = |(ops, elapsed, _): (usize, Duration, Duration)| ops as f64 / elapsed.as_secs_f64();
    let cpu = |(ops, _, cpu): (usize, Duration, Duration)| cpu.as_secs_f64() * 1e6 / ops as f64;
    for ((scenario, _), total) in scenarios.iter().zip(&totals) {
        append(
            path,
            &format!(
                "{{\"scenario\":\"{scenario}{suffix}\",\"ops_per_s\":{:.1},\"client_cpu_us_per_op\":{:.3},\"n\":{}}}",
                rate(*total),
                cpu(*total),
                total.0
            ),
        )?;
    }
    let floor_total = totals[0];
    for ((scenario, _), total) in scenarios.iter().zip(&totals).skip(1) {
        println!(
            "{scenario}{suffix} / floor_concurrent_64{suffix} = {:.3} (CPU per op {:.1} µs / {:.1} µs = {:.3})",
            rate(*total) / rate(floor_total),
            cpu(*total),
            cpu(floor_total),
            cpu(*total) / cpu(floor_total),
        );
    }
    Ok(())
}

fn json_run(path: &std::path::Path) -> Result<(), BoxError> {
    let Some(fx) = fixture()? else { return Ok(()) };
    latencies(&fx, path)?;
    let fx = Arc::new(fx);
    from_a_task(Arc::clone(&fx), path)?;
    throughput(fx, path)
}

/// The telemetry pairs again, called from a task on a 2-worker multi-thread runtime, as a
/// service's request handler calls the client: the request runs on that runtime, without the
/// two cross-thread wake-ups per call of the current-thread caller above (whose variation
/// hides a difference of a few µs). `…_task` scenarios.
fn from_a_task(fx: Arc<Fixture>, path: &std::path::Path) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let measured = Arc::clone(&fx);
    let floor = HyperFloor::new(&fx.bao, PATH)?;
    let ((inproc, inproc_telemetry, _), (floor, warm, warm_telemetry), vs_floor) = runtime
        .block_on(runtime.spawn(async move {
            let fx = measured;
            let inproc = in_memory(&fx, 20_000).await?;
            let mut floor_l = Latencies::with_capacity(SAMPLES);
            let mut plain = Latencies::with_capacity(SAMPLES);
            let mut with_telemetry = Latencies::with_capacity(SAMPLES);
            for _ in 0..WARMUP {
                black_box(floor.get().await?);
                get(&fx).await?;
                traced(&fx).await?;
            }
            for i in 0..SAMPLES {
                // Rotate which goes first so none always follows another.
                for k in 0..3 {
                    let meter = Meter::start();
                    match (i + k) % 3 {
                        0 => {
                            black_box(floor.get().await?);
                            meter.stop(&mut floor_l);
                        }
                        1 => {
                            get(&fx).await?;
                            meter.stop(&mut plain);
                        }
                        _ => {
                            traced(&fx).await?;
                            meter.stop(&mut with_telemetry);
                        }
                    }
                }
            }
            let raw = HyperFloor::new(&fx.bao, PATH)?;
            let vs_floor = cpu_against_floor(&fx, &raw, 30, 200).await?;
            Ok::<_, BoxError>((inproc, (floor_l, plain, with_telemetry), vs_floor))
        }))??;
    floor_cpu_line(
        path,
        "get_credentials_warm_task_cpu_vs_floor",
        vs_floor,
        30 * 200,
    )?;
    for (latencies, scenario) in [
        (&inproc, "get_credentials_inproc_task"),
        (&inproc_telemetry, "get_credentials_inproc_telemetry_task"),
        (&floor, "floor_hyper_get_vault_task"),
        (&warm, "get_credentials_warm_task"),
        (&warm_telemetry, "get_credentials_warm_telemetry_task"),
    ] {
        append(path, &latencies.json_line(scenario))?;
    }
    if let (Some(ours), Some(raw)) = (warm.cpu_us_per_op(), floor.cpu_us_per_op()) {
        println!(
            "get_credentials_warm_task CPU per op / floor_hyper_get_vault_task CPU per op = {:.3} ({ours:.1} µs / {raw:.1} µs); p50 {:.3}",
            ours / raw,
            warm.quantile_us(0.5) / floor.quantile_us(0.5),
        );
    }
    for (what, plain, traced) in [
        ("without the network", &inproc, &inproc_telemetry),
        ("on the request path", &warm, &warm_telemetry),
    ] {
        println!(
            "telemetry cost {what}, called from a task: p50 {:+.2} µs ({:.2} µs with, {:.2} µs without)",
            traced.quantile_us(0.5) - plain.quantile_us(0.5),
            traced.quantile_us(0.5),
            plain.quantile_us(0.5),
        );
    }
    Ok(())
}

fn criterion_run() -> Result<(), BoxError> {
    let Some(fx) = fixture()? else { return Ok(()) };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let floor = HyperFloor::new(&fx.bao, PATH)?;
    let mut criterion = criterion::Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("vault");
    group.bench_function("floor_hyper_get_vault", |b| {
        b.iter(|| runtime.block_on(floor.get()).map(black_box))
    });
    group.bench_function("get_credentials_warm", |b| {
        b.iter(|| runtime.block_on(get(&fx)))
    });
    group.bench_function("get_credentials_warm_telemetry", |b| {
        b.iter(|| runtime.block_on(traced(&fx)))
    });
    if let Some(redis) = &fx.redis {
        group.bench_function("get_credentials_warm_redis", |b| {
            b.iter(|| runtime.block_on(read(&fx, &redis.client)))
        });
    }
    group.bench_function("get_credentials_inproc", |b| {
        b.iter(|| runtime.block_on(read_uri(&fx, &fx.client, IN_MEMORY)))
    });
    group.bench_function("get_credentials_inproc_telemetry", |b| {
        b.iter(|| runtime.block_on(traced_uri(&fx, IN_MEMORY)))
    });
    group.finish();
    criterion.final_summary();
    Ok(())
}

fn main() -> Result<(), BoxError> {
    match json_path() {
        Some(path) => json_run(&path),
        None => criterion_run(),
    }
}
