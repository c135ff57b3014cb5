//! KV v2 read latency against a real OpenBao dev server, with its floor measured in the same
//! run.
//!
//! - `floor_hyper_get`: a raw hyper-util pooled keep-alive `GET /v1/secret/data/<path>` with a
//!   pre-built token header, then a `serde_json::Value` parse of the body. Nothing a provider
//!   could do is cheaper.
//! - `cold_read_kv2`: [`Kv2Provider::read`] of the same secret (no cache; the token was looked
//!   up once during warm-up).
//!
//! With `SECRETS_BENCH_JSON=<path>` set, it starts a fresh dev server, warms up, then runs the
//! two scenarios alternately (so machine noise hits both alike) and appends one JSON line per
//! scenario: `{"scenario":"floor_hyper_get","p50_us":…,"p99_us":…,"n":…}`. Without it, the
//! same two run as criterion benchmarks. Either way it needs `bao`
//! (`cargo xtask services install`); without it the bench prints a note and exits.
//!
//! ```sh
//! SECRETS_BENCH_JSON=bench.jsonl cargo bench -p secret-providers --bench kv2
//! ```

use std::hint::black_box;

use secret_providers::{Kv2Auth, Kv2Config, Kv2Flavor, Kv2Provider};
use secret_uri::SecretUri;
use secrets_test_support::OpenBaoServer;
use secrets_test_support::bench::{Latencies, Meter, append};
use secrets_test_support::floor::HyperFloor;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const PATH: &str = "bench/kv2";
const WARMUP: usize = 300;
const SAMPLES: usize = 2000;

struct Fixture {
    // Kept alive for the run; killed on drop.
    _bao: OpenBaoServer,
    runtime: tokio::runtime::Runtime,
    floor: HyperFloor,
    provider: Kv2Provider,
    uri: SecretUri,
}

fn fixture() -> Result<Option<Fixture>, BoxError> {
    let bao = match OpenBaoServer::start() {
        Ok(bao) => bao,
        Err(e @ secrets_test_support::Error::ToolMissing { .. }) => {
            eprintln!("kv2 bench skipped: {e}");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    bao.kv_put(
        "secret",
        PATH,
        &serde_json::json!({"username": "app", "password": "correct-horse-battery-staple", "port": 5432}),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let floor = HyperFloor::new(&bao, PATH)?;
    let config = Kv2Config::new(
        Kv2Flavor::OpenBao,
        bao.addr(),
        Kv2Auth::token(bao.root_token().to_owned()),
    );
    let provider = Kv2Provider::new(config)?;
    let uri: SecretUri = format!("openbao+kv2://secret/{PATH}").parse()?;
    Ok(Some(Fixture {
        _bao: bao,
        runtime,
        floor,
        provider,
        uri,
    }))
}

fn json_run(path: &str) -> Result<(), BoxError> {
    let Some(fx) = fixture()? else { return Ok(()) };
    let (floor, provider) = fx.runtime.block_on(async {
        for _ in 0..WARMUP {
            black_box(fx.floor.get().await?);
            black_box(fx.provider.read(&fx.uri).await?);
        }
        let mut floor = Latencies::with_capacity(SAMPLES);
        let mut provider = Latencies::with_capacity(SAMPLES);
        for i in 0..SAMPLES {
            // Alternate which goes first so neither always follows the other.
            for which in [i % 2, 1 - i % 2] {
                let meter = Meter::start();
                if which == 0 {
                    black_box(fx.floor.get().await?);
                    meter.stop(&mut floor);
                } else {
                    black_box(fx.provider.read(&fx.uri).await?);
                    meter.stop(&mut provider);
                }
            }
        }
        Ok::<_, BoxError>((floor, provider))
    })?;
    let path = std::path::Path::new(path);
    append(path, &floor.json_line("floor_hyper_get"))?;
    append(path, &provider.json_line("cold_read_kv2"))?;
    println!(
        "cold_read_kv2 p50 / floor_hyper_get p50 = {:.3}",
        provider.quantile_us(0.5) / floor.quantile_us(0.5)
    );
    if let (Some(ours), Some(raw)) = (provider.cpu_us_per_op(), floor.cpu_us_per_op()) {
        println!(
            "cold_read_kv2 CPU per op / floor_hyper_get CPU per op = {:.3} ({ours:.1} µs / {raw:.1} µs)",
            ours / raw
        );
    }
    Ok(())
}

fn criterion_run() -> Result<(), BoxError> {
    let Some(fx) = fixture()? else { return Ok(()) };
    let mut criterion = criterion::Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("kv2");
    group.bench_function("floor_hyper_get", |b| {
        b.iter(|| fx.runtime.block_on(fx.floor.get()).map(black_box))
    });
    group.bench_function("cold_read_kv2", |b| {
        b.iter(|| {
            fx.runtime
                .block_on(fx.provider.read(&fx.uri))
                .map(black_box)
        })
    });
    group.finish();
    criterion.final_summary();
    Ok(())
}

fn main() -> Result<(), BoxError> {
    match std::env::var("SECRETS_BENCH_JSON") {
        Ok(path) if !path.is_empty() => json_run(&path),
        _ => criterion_run(),
    }
}
