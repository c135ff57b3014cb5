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
//! - `get_credentials_inproc` / `get_credentials_inproc_telemetry`: the same pair with a
//!   provider in memory (scheme `db`) instead of OpenBao: PEP, read task, audit-free path and
//!   telemetry without the network, so telemetry's cost (printed) is not lost in the vault's
//!   round-trip noise.
//! - `floor_concurrent_64` / `concurrent_64`: 64 tasks on a 2-worker multi-thread runtime,
//!   each doing sequential raw GETs / `get_credentials` calls; total ops / elapsed.
//!
//! With `SECRETS_BENCH_JSON=<path>` set, it starts a fresh dev server, warms up, runs floor
//! and subject alternately (so machine noise hits both alike) and appends one JSON line per
//! scenario: `{"scenario":…,"p50_us":…,"p99_us":…,"n":…}` for latencies,
//! `{"scenario":…,"ops_per_s":…,"n":…}` for throughput. Without it, the latency pair runs as
//! criterion benchmarks. Either way it needs `bao` (`cargo xtask services install`); without it
//! the bench prints a note and exits.
//!
//! ```sh
//! SECRETS_BENCH_JSON=/tmp/v.jsonl cargo bench -p secrets-sdk --bench vault
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
use secrets_test_support::bench::{Latencies, OcsfDiscard, append, json_path};
use secrets_test_support::floor::HyperFloor;
use tracing_subscriber::Layer as _;
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
    /// The same client with an audit sink: a queue drained off the request path into OCSF
    /// bytes that are then discarded (what a Kafka sink costs the request path, without the
    /// broker).
    audited: VaultClient,
    sink: Arc<QueueSink>,
    /// The same client built after the discarding telemetry pipeline was installed.
    traced: VaultClient,
    telemetry: OtlpGuard,
    uri: String,
    ctx: ExecutionContext,
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

/// Installs the discarding pipeline: its meter provider globally (clients built from now on
/// record into it) and a global subscriber holding its `tracing` layer (default filter
/// `info`) behind the [`TRACED`] switch.
fn telemetry() -> Result<OtlpGuard, BoxError> {
    let pipeline = Pipeline::discarding();
    // Decided per span (a plain `filter_fn` is cached per callsite at its first use); the
    // hint is the pipeline's default filter, so DEBUG and TRACE callsites are off for all.
    let switch =
        tracing_subscriber::filter::dynamic_filter_fn(|_, _| TRACED.load(Ordering::Relaxed))
            .with_max_level_hint(tracing::level_filters::LevelFilter::INFO);
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(pipeline.layer().with_filter(switch)),
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
            .io_threads(
                std::env::var("TMP_IO")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(2),
            )
    };
    let client = builder().build()?;
    let sink = Arc::new(QueueSink::new(OcsfDiscard, QueueConfig::default())?);
    let audited = builder()
        .audit(Arc::clone(&sink) as Arc<dyn AuditSink>)
        .build()?;
    // Everything above records nothing; the client built now records into the pipeline.
    let telemetry = telemetry()?;
    let traced = builder().build()?;
    let ctx = ExecutionContext::new("bench")
        .with_aud(["crud.secrets"])
        .with_cnf_jkt("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    Ok(Some(Fixture {
        bao,
        client,
        audited,
        sink,
        traced,
        telemetry,
        uri: format!("openbao+kv2://secret/{PATH}#password"),
        ctx,
    }))
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

/// `samples` in-memory reads each of the plain and the telemetry client, alternating (the
/// first of each pair rotates), after a warm-up.
async fn in_memory(fx: &Fixture, samples: usize) -> Result<(Latencies, Latencies), BoxError> {
    for _ in 0..samples / 10 {
        read_uri(fx, &fx.client, IN_MEMORY).await?;
        traced_uri(fx, IN_MEMORY).await?;
    }
    let mut plain = Latencies::with_capacity(samples);
    let mut with_telemetry = Latencies::with_capacity(samples);
    for i in 0..samples {
        for k in 0..2 {
            let started = Instant::now();
            if (i + k) % 2 == 0 {
                read_uri(fx, &fx.client, IN_MEMORY).await?;
                plain.push(started.elapsed());
            } else {
                traced_uri(fx, IN_MEMORY).await?;
                with_telemetry.push(started.elapsed());
            }
        }
    }
    Ok((plain, with_telemetry))
}

fn latencies(fx: &Fixture, path: &std::path::Path) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let floor = HyperFloor::new(&fx.bao, PATH)?;
    let (floor, subject, audited, with_telemetry) = runtime.block_on(async {
        for _ in 0..WARMUP {
            black_box(floor.get().await?);
            get(fx).await?;
            read(fx, &fx.audited).await?;
            traced(fx).await?;
        }
        let mut floor_l = Latencies::with_capacity(SAMPLES);
        let mut subject_l = Latencies::with_capacity(SAMPLES);
        let mut audited_l = Latencies::with_capacity(SAMPLES);
        let mut traced_l = Latencies::with_capacity(SAMPLES);
        for i in 0..SAMPLES {
            // Rotate which goes first so none always follows another.
            for k in 0..4 {
                let started = Instant::now();
                match (i + k) % 4 {
                    0 => {
                        black_box(floor.get().await?);
                        floor_l.push(started.elapsed());
                    }
                    1 => {
                        get(fx).await?;
                        subject_l.push(started.elapsed());
                    }
                    2 => {
                        read(fx, &fx.audited).await?;
                        audited_l.push(started.elapsed());
                    }
                    _ => {
                        traced(fx).await?;
                        traced_l.push(started.elapsed());
                    }
                }
            }
        }
        Ok::<_, BoxError>((floor_l, subject_l, audited_l, traced_l))
    })?;
    let (inproc, inproc_telemetry) = runtime.block_on(in_memory(fx, 20_000))?;
    append(path, &floor.json_line("floor_hyper_get_vault"))?;
    append(path, &subject.json_line("get_credentials_warm"))?;
    append(path, &audited.json_line("get_credentials_warm_audited"))?;
    append(
        path,
        &with_telemetry.json_line("get_credentials_warm_telemetry"),
    )?;
    append(path, &inproc.json_line("get_credentials_inproc"))?;
    append(
        path,
        &inproc_telemetry.json_line("get_credentials_inproc_telemetry"),
    )?;
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

fn throughput(fx: Arc<Fixture>, path: &std::path::Path) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let floor = Arc::new(HyperFloor::new(&fx.bao, PATH)?);
    let floor_op = {
        let floor = Arc::clone(&floor);
        move || {
            let floor = Arc::clone(&floor);
            async move {
                black_box(floor.get().await?);
                Ok(())
            }
        }
    };
    let subject_op = {
        let fx = Arc::clone(&fx);
        move || {
            let fx = Arc::clone(&fx);
            async move { get(&fx).await }
        }
    };
    let (floor_total, subject_total) = runtime.block_on(async {
        // Warm-up: open the connections both sides will use.
        burst(floor_op.clone()).await?;
        burst(subject_op.clone()).await?;
        let (mut floor_total, mut subject_total) = ((0, Duration::ZERO), (0, Duration::ZERO));
        for round in 0..ROUNDS {
            for which in [round % 2, 1 - round % 2] {
                if which == 0 {
                    let (ops, elapsed) = burst(floor_op.clone()).await?;
                    floor_total = (floor_total.0 + ops, floor_total.1 + elapsed);
                } else {
                    let (ops, elapsed) = burst(subject_op.clone()).await?;
                    subject_total = (subject_total.0 + ops, subject_total.1 + elapsed);
                }
            }
        }
        Ok::<_, BoxError>((floor_total, subject_total))
    })?;
    let rate = |(ops, elapsed): (usize, Duration)| ops as f64 / elapsed.as_secs_f64();
    for (scenario, total) in [
        ("floor_concurrent_64", floor_total),
        ("concurrent_64", subject_total),
    ] {
        append(
            path,
            &format!(
                "{{\"scenario\":\"{scenario}\",\"ops_per_s\":{:.1},\"n\":{}}}",
                rate(total),
                total.0
            ),
        )?;
    }
    println!(
        "concurrent_64 / floor_concurrent_64 = {:.3}",
        rate(subject_total) / rate(floor_total)
    );
    Ok(())
}

fn json_run(path: &std::path::Path) -> Result<(), BoxError> {
    let Some(fx) = fixture()? else { return Ok(()) };
    latencies(&fx, path)?;
    throughput(Arc::new(fx), path)
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
