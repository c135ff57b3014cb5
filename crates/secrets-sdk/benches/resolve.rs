//! `SecretsClient` latencies.
//!
//! With `SECRETS_BENCH_JSON=<file>` (as `cargo xtask bench` sets it) this starts a throwaway
//! OpenBao dev server and appends one `{"scenario","p50_us","p99_us","n"}` line per scenario:
//!
//! - `cache_hit`: `resolve(&str)` of a cached, canonical `openbao+kv2` URI (no parsing);
//!   `cache_hit_parsed`: `resolve(&SecretUri)`; `cache_hit_noncanonical`: an upper-case
//!   spelling, so the URI is parsed on every call; `cache_hit_blocking`: `resolve_blocking`.
//! - `cache_hit_telemetry`: the `cache_hit` loop on a client built after a discarding OTLP
//!   pipeline (`secret_telemetry::otlp::Pipeline::discarding`: meter provider installed
//!   globally, its `tracing` layer with the default `info` filter as the thread's subscriber):
//!   every hit counted and timed through the bound hit recorder, its TRACE span filtered out.
//!   Batches of the two alternate (the first of each pair rotates), so machine noise hits
//!   both alike; telemetry's cost on a hit is `cache_hit_telemetry` − `cache_hit` (printed).
//!   The other scenarios run without telemetry (their clients are built before the pipeline
//!   is installed).
//! - `file_read_nocache`: `resolve` of a JSON file's `#key` with `cache_file_secrets=false`;
//!   `file_read_nocache_offloaded`: the same with `offload_file_reads(true)` (tokio's
//!   blocking pool); `file_read_sync_nocache`: through `resolve_file_sync`; floor
//!   `file_read_floor`: `std::fs::read` + `serde_json` of the same file, no SDK.
//! - `cold_resolve_kv2`: `resolve` with `refresh` (a real HTTP read every time); floor
//!   `kv2_provider_read`: the `Kv2Provider` alone, no SDK.
//!
//! Sub-microsecond operations are timed in batches of 100 per sample (a pair of
//! `Instant::now()` calls costs ~20–40 ns, as much as a hit), and the sample is the batch
//! time divided by 100. Slower operations are timed one by one. Every scenario warms up
//! first.
//!
//! Without the variable, criterion runs the scenarios that need no server, `file://` hits
//! among them with and without telemetry (`cache_hit_file`, `cache_hit_file_telemetry`):
//! `cargo bench -p secrets-sdk --bench resolve -- cache_hit`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::Criterion;
use secrets_sdk::telemetry::otlp::{OtlpGuard, Pipeline};
use secrets_sdk::uri::{AllowedMounts, SecretUri};
use secrets_sdk::{BootstrapConfig, ResolveOptions, SecretsClient};
use secrets_test_support::OpenBaoServer;
use secrets_test_support::bench::{Latencies, append};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt as _;

const API: &str = "openbao+kv2://secret/app/api#token";
const FILE: &str = "file://demo/db.json#password";
const BATCH: u32 = 100;

fn files() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(root.path().join("demo")).expect("demo dir");
    std::fs::write(
        root.path().join("demo/db.json"),
        r#"{"username":"app","password":"bench-password"}"#,
    )
    .expect("demo file");
    root
}

fn client(
    root: &Path,
    bootstrap: Option<secrets_sdk::providers::Kv2Config>,
    cache_files: bool,
) -> SecretsClient {
    let mut builder = SecretsClient::builder()
        .file_root(root)
        .allowed_mounts(AllowedMounts::from_csv("demo,secret"))
        .cache_file_secrets(cache_files);
    if let Some(bootstrap) = bootstrap {
        builder = builder.bootstrap(bootstrap);
    }
    builder.build().expect("client")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// `samples` samples of `BATCH` calls each, warm-up first.
async fn batched<F, Fut>(samples: usize, mut op: F) -> Latencies
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..samples.min(1000) * BATCH as usize / 10 {
        op().await;
    }
    let mut lat = Latencies::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        for _ in 0..BATCH {
            op().await;
        }
        lat.push(start.elapsed() / BATCH);
    }
    lat
}

/// Telemetry as a service would switch it on, with nothing sent: the discarding pipeline's
/// meter provider installed globally (so clients built from now on record into it) and a
/// subscriber holding its `tracing` layer (default filter `info`), to set as a thread's
/// default around the telemetry scenario; the scenarios without telemetry run with none.
fn telemetry() -> (OtlpGuard, Dispatch) {
    let pipeline = Pipeline::discarding();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(pipeline.layer()));
    (pipeline.install(), dispatch)
}

/// `samples` samples of `BATCH` calls of `plain` and of `traced` each, the batches
/// alternating (which goes first rotates) and `traced` run with `dispatch` as the thread's
/// subscriber; warm-up first.
async fn batched_pair<F, Fut, G, Gut>(
    samples: usize,
    dispatch: &Dispatch,
    mut plain: F,
    mut traced: G,
) -> (Latencies, Latencies)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
    G: FnMut() -> Gut,
    Gut: std::future::Future<Output = ()>,
{
    let warmup = samples.min(1000) * BATCH as usize / 10;
    for _ in 0..warmup {
        plain().await;
    }
    {
        let _traced = tracing::dispatcher::set_default(dispatch);
        for _ in 0..warmup {
            traced().await;
        }
    }
    let mut plain_l = Latencies::with_capacity(samples);
    let mut traced_l = Latencies::with_capacity(samples);
    for i in 0..samples {
        for k in 0..2 {
            if (i + k) % 2 == 0 {
                let start = Instant::now();
                for _ in 0..BATCH {
                    plain().await;
                }
                plain_l.push(start.elapsed() / BATCH);
            } else {
                let _traced = tracing::dispatcher::set_default(dispatch);
                let start = Instant::now();
                for _ in 0..BATCH {
                    traced().await;
                }
                traced_l.push(start.elapsed() / BATCH);
            }
        }
    }
    (plain_l, traced_l)
}

/// `n` calls timed one by one, after `warmup` untimed ones.
async fn single<F, Fut>(n: usize, warmup: usize, mut op: F) -> Latencies
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..warmup {
        op().await;
    }
    let mut lat = Latencies::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        op().await;
        lat.push(start.elapsed());
    }
    lat
}

fn report(path: &Path) {
    let root = files();
    let bao = OpenBaoServer::start().expect("OpenBao dev server (cargo xtask services install)");
    bao.kv_put(
        "secret",
        "app/api",
        &serde_json::json!({"token": "bench-token"}),
    )
    .expect("kv put");
    let bootstrap = BootstrapConfig::token(bao.addr(), bao.root_token());
    let cached = client(root.path(), Some(bootstrap.clone()), true);
    let uncached_files = client(root.path(), None, false);
    let offloaded = SecretsClient::builder()
        .file_root(root.path())
        .allowed_mounts(AllowedMounts::from_csv("demo"))
        .cache_file_secrets(false)
        .offload_file_reads(true)
        .build()
        .expect("client");
    // A bootstrap is the provider's own settings.
    let provider = secrets_sdk::providers::Kv2Provider::new(bootstrap.clone()).unwrap();
    // Everything above records nothing; the client built now records into the pipeline.
    let (guard, dispatch) = telemetry();
    let traced = client(root.path(), Some(bootstrap), true);
    let rt = runtime();
    let mut out = Vec::new();

    rt.block_on(async {
        assert_eq!(
            cached.resolve(API).await.unwrap().expose_str(),
            Some("bench-token")
        );
        {
            let _traced = tracing::dispatcher::set_default(&dispatch);
            assert_eq!(
                traced.resolve(API).await.unwrap().expose_str(),
                Some("bench-token")
            );
        }
        let parsed = SecretUri::parse(API).unwrap();
        let loud = API.replace("openbao+kv2", "OPENBAO+KV2");
        let (plain, with_telemetry) = batched_pair(
            20_000,
            &dispatch,
            || async {
                black_box(cached.resolve(black_box(API)).await.unwrap());
            },
            || async {
                black_box(traced.resolve(black_box(API)).await.unwrap());
            },
        )
        .await;
        println!(
            "telemetry on a cache hit: p50 {:+.1} ns (cache_hit_telemetry {:.1} ns, cache_hit {:.1} ns)",
            (with_telemetry.quantile_us(0.5) - plain.quantile_us(0.5)) * 1000.0,
            with_telemetry.quantile_us(0.5) * 1000.0,
            plain.quantile_us(0.5) * 1000.0,
        );
        out.push(("cache_hit", plain));
        out.push(("cache_hit_telemetry", with_telemetry));
        out.push((
            "cache_hit_parsed",
            batched(20_000, || async {
                black_box(cached.resolve(black_box(&parsed)).await.unwrap());
            })
            .await,
        ));
        out.push((
            "cache_hit_noncanonical",
            batched(5_000, || async {
                black_box(cached.resolve(black_box(loud.as_str())).await.unwrap());
            })
            .await,
        ));
        out.push((
            "file_read_nocache",
            single(20_000, 2_000, || async {
                black_box(uncached_files.resolve(black_box(FILE)).await.unwrap());
            })
            .await,
        ));
        out.push((
            "file_read_nocache_offloaded",
            single(20_000, 2_000, || async {
                black_box(offloaded.resolve(black_box(FILE)).await.unwrap());
            })
            .await,
        ));
        out.push((
            "cold_resolve_kv2",
            single(2_000, 200, || async {
                let refreshed = cached.resolve_with(black_box(API), ResolveOptions::refresh());
                black_box(refreshed.await.unwrap());
            })
            .await,
        ));
        out.push((
            "kv2_provider_read",
            single(2_000, 200, || async {
                black_box(provider.read(black_box(&parsed)).await.unwrap());
            })
            .await,
        ));
    });

    // Synchronous entry points, outside any runtime.
    let blocking = runtime_free(|| {
        black_box(cached.resolve_blocking(black_box(API)).unwrap());
    });
    out.push(("cache_hit_blocking", blocking));
    let mut file_sync = Latencies::with_capacity(20_000);
    for i in 0..22_000 {
        let start = Instant::now();
        black_box(uncached_files.resolve_file_sync(black_box(FILE)).unwrap());
        if i >= 2_000 {
            file_sync.push(start.elapsed());
        }
    }
    out.push(("file_read_sync_nocache", file_sync));
    let file_path = root.path().join("demo/db.json");
    let mut floor = Latencies::with_capacity(20_000);
    for i in 0..22_000 {
        let start = Instant::now();
        let bytes = std::fs::read(black_box(&file_path)).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        black_box(value["password"].as_str());
        if i >= 2_000 {
            floor.push(start.elapsed());
        }
    }
    out.push(("file_read_floor", floor));

    for (scenario, lat) in &out {
        append(path, &lat.json_line(scenario)).expect("write the bench JSON file");
    }
    cached.close();
    traced.close();
    guard.shutdown().expect("shut the discarding pipeline down");
    drop(bao);
}

/// Batched timing of a synchronous operation.
fn runtime_free(mut op: impl FnMut()) -> Latencies {
    for _ in 0..100_000 {
        op();
    }
    let mut lat = Latencies::with_capacity(20_000);
    for _ in 0..20_000 {
        let start = Instant::now();
        for _ in 0..BATCH {
            op();
        }
        lat.push(start.elapsed() / BATCH);
    }
    lat
}

/// `iters` awaited calls inside one `block_on`.
fn timed<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, mut op: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            op().await;
        }
        start.elapsed()
    })
}

fn main() {
    if let Some(path) = secrets_test_support::bench::json_path() {
        report(&path);
        return;
    }
    let root = files();
    let cached = client(root.path(), None, true);
    let uncached = client(root.path(), None, false);
    let parsed = SecretUri::parse(FILE).unwrap();
    let rt = runtime();
    rt.block_on(cached.resolve(FILE)).unwrap();
    let (guard, dispatch) = telemetry();
    let traced = client(root.path(), None, true);
    tracing::dispatcher::with_default(&dispatch, || rt.block_on(traced.resolve(FILE)).unwrap());
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("resolve");
    // One `block_on` per batch, not per call: it costs more than a hit.
    group.bench_function("cache_hit_file", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || async {
                black_box(cached.resolve(black_box(FILE)).await.unwrap());
            })
        });
    });
    group.bench_function("cache_hit_file_telemetry", |b| {
        b.iter_custom(|iters| {
            let _traced = tracing::dispatcher::set_default(&dispatch);
            timed(&rt, iters, || async {
                black_box(traced.resolve(black_box(FILE)).await.unwrap());
            })
        });
    });
    group.bench_function("cache_hit_file_parsed", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || async {
                black_box(cached.resolve(black_box(&parsed)).await.unwrap());
            })
        });
    });
    group.bench_function("file_read_nocache", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || async {
                black_box(uncached.resolve(black_box(FILE)).await.unwrap());
            })
        });
    });
    group.bench_function("file_read_sync_nocache", |b| {
        b.iter(|| uncached.resolve_file_sync(black_box(FILE)).unwrap());
    });
    group.finish();
    c.final_summary();
    guard.shutdown().expect("shut the discarding pipeline down");
    eprintln!(
        "note: set SECRETS_BENCH_JSON=<file> (as `cargo xtask bench` does) for the OpenBao \
         scenarios (cache_hit, cold_resolve_kv2) and JSON output"
    );
}
