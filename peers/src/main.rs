//! Peers side by side: the same KV v2 read of the same secret from the same real OpenBao dev
//! server with vaultrs, vault-client-rs, secrets-sdk and a raw hyper floor.
//!
//! For each client it measures, on a 2-worker multi-thread tokio runtime:
//!
//! - **sequential**: one caller task reading in a loop; wall time per read (p50, p99) and the
//!   process's CPU time (user + system, every thread) over the loop divided by the reads;
//! - **concurrent**: 64 tasks reading at once; reads per second over the block's wall time,
//!   per-read latency under that load (p50, p99) and CPU per read as above.
//!
//! Each read is a real `GET /v1/secret/data/<path>` (secrets-sdk's with
//! `ResolveOptions::refresh()`, which skips its cache), whose `password` field is extracted and
//! compared with the value written; before measuring, every client reads through a counting
//! proxy that checks one request reached the server per read. secrets-sdk's cache hit is
//! measured too, as context (it makes no request). The OpenBao server is another process: its
//! CPU is not counted.
//!
//! Clients alternate in rounds (the order rotating each round), so machine noise hits all
//! alike. Results go as JSON lines to `$SECRETS_BENCH_JSON` (default
//! `target/peers-results.jsonl`), and a Markdown table to stdout and to `$SECRETS_PEERS_TABLE`
//! when set. `cargo xtask bench --peers` runs this in release and writes `docs/peers.md`.
//!
//! Arguments: `--rounds N` (default 8). Run directly, it needs `$SECRETS_TEST_BAO_BIN` (the
//! `bao` that `cargo xtask services install` puts in `.tools/bin/`).

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use secrets_sdk::uri::AllowedMounts;
use secrets_sdk::{BootstrapConfig, ResolveOptions, SecretsClient};
use secrets_test_support::OpenBaoServer;
use secrets_test_support::bench::{Latencies, append, process_cpu};
use secrets_test_support::floor::HyperFloor;
use secrets_test_support::proxy::CountingProxy;

const MOUNT: &str = "secret";
const PATH: &str = "bench/peer";
const URI: &str = "openbao+kv2://secret/bench/peer#password";
const PASSWORD: &str = "peer-bench-password";
/// Tasks reading at once in the concurrent scenario.
const CONCURRENCY: usize = 64;
/// Worker threads of the runtime every client runs on.
const WORKERS: usize = 2;
/// Sequential reads per client per round.
const SEQUENTIAL_OPS: usize = 300;
/// Reads per task per round in the concurrent scenario.
const OPS_PER_TASK: usize = 32;
/// A cache hit costs ~1000× less than a read: this many times more of them per block.
const CACHED_SCALE: usize = 100;
/// The lockfile, for the peers' exact versions in the table.
const LOCKFILE: &str = include_str!("../Cargo.lock");

/// One client under test.
#[allow(
    clippy::large_enum_variant,
    reason = "five values, each in an Arc for the run"
)]
enum Peer {
    /// hyper-util's pooled client: a `GET` and a `serde_json::Value` parse, nothing else.
    Floor(HyperFloor),
    /// `SecretsClient::resolve_with(uri, ResolveOptions::refresh())`: a real read each time.
    Sdk(SecretsClient),
    /// vaultrs's `kv2::read` into a `serde_json::Value`.
    Vaultrs(vaultrs::client::VaultClient),
    /// vault-client-rs's `kv2(mount).read_field(path, field)`.
    VaultClientRs(vault_client_rs::VaultClient),
    /// `SecretsClient::resolve(uri)` on a warm cache: no request (context, not a peer).
    SdkCached(SecretsClient),
}

impl Peer {
    fn name(&self) -> &'static str {
        match self {
            Self::Floor(_) => "floor",
            Self::Sdk(_) => "secrets_sdk",
            Self::Vaultrs(_) => "vaultrs",
            Self::VaultClientRs(_) => "vault_client_rs",
            Self::SdkCached(_) => "secrets_sdk_cached",
        }
    }

    /// The crate and version (from the lockfile), and what is read.
    fn label(&self) -> String {
        match self {
            Self::Floor(_) => format!(
                "raw hyper floor (hyper-util {})",
                locked_version("hyper-util")
            ),
            Self::Sdk(_) => format!(
                "secrets-sdk {}, `refresh` (real read)",
                locked_version("secrets-sdk")
            ),
            Self::Vaultrs(_) => format!("vaultrs {}", locked_version("vaultrs")),
            Self::VaultClientRs(_) => {
                format!("vault-client-rs {}", locked_version("vault-client-rs"))
            }
            Self::SdkCached(_) => format!(
                "secrets-sdk {}, cache hit (context)",
                locked_version("secrets-sdk")
            ),
        }
    }

    fn is_cached(&self) -> bool {
        matches!(self, Self::SdkCached(_))
    }

    /// One read of the secret's `password`, checked against the value written.
    async fn read(&self) -> anyhow::Result<()> {
        let matches = match self {
            Self::Floor(floor) => {
                let value = floor.get().await.map_err(|e| anyhow!(e))?;
                value["data"]["data"]["password"].as_str() == Some(PASSWORD)
            }
            Self::Sdk(client) => {
                let secret = client.resolve_with(URI, ResolveOptions::refresh()).await?;
                secret.expose_str() == Some(PASSWORD)
            }
            Self::Vaultrs(client) => {
                let data: serde_json::Value = vaultrs::kv2::read(client, MOUNT, PATH).await?;
                data["password"].as_str() == Some(PASSWORD)
            }
            Self::VaultClientRs(client) => {
                client.kv2(MOUNT).read_field(PATH, "password").await? == PASSWORD
            }
            Self::SdkCached(client) => client.resolve(URI).await?.expose_str() == Some(PASSWORD),
        };
        ensure!(matches, "{}: the read returned another value", self.name());
        Ok(())
    }
}

/// The version of `krate` in this crate's lockfile.
fn locked_version(krate: &str) -> String {
    let needle = format!("name = \"{krate}\"\nversion = \"");
    LOCKFILE
        .split_once(needle.as_str())
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or_else(|| "?".to_owned(), |(version, _)| version.to_owned())
}

/// Builds every client against `addr` (the server, or a proxy in front of it). Does no I/O.
fn peers(bao: &OpenBaoServer, addr: &str) -> anyhow::Result<Vec<Arc<Peer>>> {
    let token = bao.root_token();
    let sdk = || {
        SecretsClient::builder()
            .bootstrap(BootstrapConfig::token(addr, token.to_owned()))
            .allowed_mounts(AllowedMounts::from_csv(MOUNT))
            .build()
            .context("secrets-sdk client")
    };
    let vaultrs = vaultrs::client::VaultClient::new(
        vaultrs::client::VaultClientSettingsBuilder::default()
            .address(addr)
            .token(token)
            .build()
            .context("vaultrs settings")?,
    )
    .context("vaultrs client")?;
    let vault_client_rs = vault_client_rs::VaultClient::builder()
        .address(addr)
        .token_str(token)
        .build()
        .context("vault-client-rs client")?;
    Ok(vec![
        Arc::new(Peer::Floor(
            HyperFloor::new(bao, PATH).map_err(|e| anyhow!(e))?,
        )),
        Arc::new(Peer::Sdk(sdk()?)),
        Arc::new(Peer::Vaultrs(vaultrs)),
        Arc::new(Peer::VaultClientRs(vault_client_rs)),
        Arc::new(Peer::SdkCached(sdk()?)),
    ])
}

/// What one client measured over every round.
#[derive(Default)]
struct Tally {
    sequential: Latencies,
    sequential_cpu: Duration,
    concurrent: Latencies,
    concurrent_cpu: Duration,
    concurrent_wall: Duration,
}

impl Tally {
    fn sequential_cpu_us(&self) -> f64 {
        per_op_us(self.sequential_cpu, self.sequential.len())
    }

    fn concurrent_cpu_us(&self) -> f64 {
        per_op_us(self.concurrent_cpu, self.concurrent.len())
    }

    fn ops_per_s(&self) -> f64 {
        self.concurrent.len() as f64 / self.concurrent_wall.as_secs_f64()
    }
}

fn per_op_us(cpu: Duration, ops: usize) -> f64 {
    cpu.as_secs_f64() * 1e6 / ops.max(1) as f64
}

/// `ops` reads one after another in one task: each read's wall time, and the process's CPU
/// time over the loop.
async fn sequential(peer: Arc<Peer>, ops: usize) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let mut samples = Vec::with_capacity(ops);
    let cpu = process_cpu();
    for _ in 0..ops {
        let start = Instant::now();
        peer.read().await?;
        samples.push(start.elapsed());
    }
    Ok((samples, process_cpu().saturating_sub(cpu)))
}

/// `CONCURRENCY` tasks of `per_task` reads each: every read's wall time, the block's wall
/// time and the process's CPU time over the block.
async fn concurrent(
    peer: &Arc<Peer>,
    per_task: usize,
) -> anyhow::Result<(Vec<Duration>, Duration, Duration)> {
    let cpu = process_cpu();
    let wall = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let peer = Arc::clone(peer);
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let start = Instant::now();
                    peer.read().await?;
                    samples.push(start.elapsed());
                }
                anyhow::Ok(samples)
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(CONCURRENCY * per_task);
    for task in tasks {
        samples.extend(task.await.context("a reading task panicked")??);
    }
    Ok((samples, wall.elapsed(), process_cpu().saturating_sub(cpu)))
}

/// Before anything is measured: through a counting proxy, every client's reads (sequential
/// and concurrent) each reach the server once, and the cached client's only the first time.
/// The floor (built for the server itself) is a bare `GET` and needs no check.
async fn check_real_reads(proxy: &CountingProxy, peers: &[Arc<Peer>]) -> anyhow::Result<()> {
    let data_path = format!("/v1/{MOUNT}/data/{PATH}");
    let reads = 10 + CONCURRENCY;
    for peer in peers {
        if matches!(**peer, Peer::Floor(_)) {
            continue;
        }
        proxy.reset();
        tokio::spawn(sequential(Arc::clone(peer), 10)).await??;
        concurrent(peer, 1).await?;
        let expected = if peer.is_cached() { 1 } else { reads };
        let seen = proxy.count(&data_path);
        ensure!(
            seen == expected,
            "{}: {reads} reads made {seen} requests to {data_path}, not {expected}",
            peer.name()
        );
        eprintln!("peers: {}: {reads} reads, {seen} requests", peer.name());
    }
    Ok(())
}

/// Closes the secrets-sdk clients (outside the runtime: each owns an I/O runtime).
fn close(peers: &[Arc<Peer>]) {
    for peer in peers {
        if let Peer::Sdk(client) | Peer::SdkCached(client) = &**peer {
            client.close();
        }
    }
}

fn rounds_arg() -> anyhow::Result<usize> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(8),
        [flag, n] if flag == "--rounds" => {
            let n: usize = n.parse().context("--rounds takes a whole number")?;
            ensure!(n > 0, "--rounds must be at least 1");
            Ok(n)
        }
        _ => bail!("usage: secrets-peers-bench [--rounds N]"),
    }
}

fn main() -> anyhow::Result<()> {
    let rounds = rounds_arg()?;
    let bao = start_openbao()?;
    bao.kv_put(
        MOUNT,
        PATH,
        &serde_json::json!({"username": "app", "password": PASSWORD}),
    )
    .context("writing the secret")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    {
        let proxy = CountingProxy::start(&bao.addr()).context("counting proxy")?;
        let proxied = peers(&bao, &proxy.addr())?;
        runtime.block_on(check_real_reads(&proxy, &proxied))?;
        close(&proxied);
    }
    let peers = peers(&bao, &bao.addr())?;
    let mut tallies: Vec<Tally> = peers.iter().map(|_| Tally::default()).collect();

    runtime.block_on(async {
        // Warm-up: connections open (64 of them), caches and allocators settled.
        for peer in &peers {
            tokio::spawn(sequential(Arc::clone(peer), 200)).await??;
            concurrent(peer, 4).await?;
        }
        for round in 0..rounds {
            eprintln!("peers: round {}/{rounds}", round + 1);
            let order: Vec<usize> = (0..peers.len())
                .map(|i| (i + round) % peers.len())
                .collect();
            for &i in &order {
                let scale = if peers[i].is_cached() {
                    CACHED_SCALE
                } else {
                    1
                };
                let (samples, cpu) =
                    tokio::spawn(sequential(Arc::clone(&peers[i]), SEQUENTIAL_OPS * scale))
                        .await??;
                for d in samples {
                    tallies[i].sequential.push(d);
                }
                tallies[i].sequential_cpu += cpu;
            }
            for &i in &order {
                let scale = if peers[i].is_cached() {
                    CACHED_SCALE
                } else {
                    1
                };
                let (samples, wall, cpu) = concurrent(&peers[i], OPS_PER_TASK * scale).await?;
                for d in samples {
                    tallies[i].concurrent.push(d);
                }
                tallies[i].concurrent_wall += wall;
                tallies[i].concurrent_cpu += cpu;
            }
        }
        anyhow::Ok(())
    })?;
    close(&peers);
    drop(runtime);
    drop(bao);

    let json = match secrets_test_support::bench::json_path() {
        Some(path) => path,
        None => default_json_path()?,
    };
    for (peer, tally) in peers.iter().zip(&tallies) {
        append(&json, &json_line(peer, tally, "sequential"))
            .with_context(|| format!("writing {}", json.display()))?;
        append(&json, &json_line(peer, tally, "concurrent_64"))
            .with_context(|| format!("writing {}", json.display()))?;
    }
    let table = table(&peers, &tallies, rounds);
    println!("\n{table}");
    if let Some(path) = std::env::var_os("SECRETS_PEERS_TABLE") {
        std::fs::write(&path, &table)
            .with_context(|| format!("writing {}", PathBuf::from(&path).display()))?;
    }
    eprintln!("peers: wrote {}", json.display());
    Ok(())
}

/// The repository root: this crate's parent folder.
fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map_or(here.clone(), PathBuf::from)
}

fn default_json_path() -> anyhow::Result<PathBuf> {
    let target = repo_root().join("target");
    std::fs::create_dir_all(&target)?;
    Ok(target.join("peers-results.jsonl"))
}

/// The dev server. secrets-test-support looks for `.tools/` from the nearest folder with a
/// `[workspace]` table, which for this crate is `peers/` itself: run without
/// `$SECRETS_TEST_BAO_BIN` (which `cargo xtask bench --peers` sets), say where it is.
fn start_openbao() -> anyhow::Result<OpenBaoServer> {
    if std::env::var_os(secrets_test_support::BAO_BIN_ENV).is_none() {
        let bao = repo_root().join(".tools/bin/bao");
        bail!(
            "set {}={} (or run `cargo xtask bench --peers`; `cargo xtask services install` \
             installs OpenBao)",
            secrets_test_support::BAO_BIN_ENV,
            bao.display()
        );
    }
    OpenBaoServer::start()
        .context("OpenBao dev server (install it with `cargo xtask services install`)")
}

/// `{"scenario":"peers_<mode>_<client>","p50_us",…,"client_cpu_us_per_op",…}`, with
/// `ops_per_s` for the concurrent mode.
fn json_line(peer: &Peer, tally: &Tally, mode: &str) -> String {
    let (latencies, cpu, throughput) = if mode == "sequential" {
        (&tally.sequential, tally.sequential_cpu_us(), None)
    } else {
        (
            &tally.concurrent,
            tally.concurrent_cpu_us(),
            Some(tally.ops_per_s()),
        )
    };
    let mut line = serde_json::json!({
        "scenario": format!("peers_{mode}_{}", peer.name()),
        "client": peer.label(),
        "p50_us": round3(latencies.quantile_us(0.50)),
        "p99_us": round3(latencies.quantile_us(0.99)),
        "n": latencies.len(),
        "client_cpu_us_per_op": round3(cpu),
        "workers": WORKERS,
    });
    if let Some(ops) = throughput {
        line["ops_per_s"] = serde_json::json!(ops.round());
        line["concurrency"] = serde_json::json!(CONCURRENCY);
    }
    line.to_string()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The Markdown table: one row per client, ratios against the floor measured in the same run
/// (none for the cache hit, which makes no request).
fn table(peers: &[Arc<Peer>], tallies: &[Tally], rounds: usize) -> String {
    let floor = &tallies[0];
    let ratio = |peer: &Peer, x: f64, of: f64| {
        if peer.is_cached() {
            "—".to_owned()
        } else {
            format!("{:.2}×", x / of)
        }
    };
    let mut out = String::new();
    out.push_str(
        "| client | sequential p50 | p99 | CPU/op | CPU × floor \
         | 64 concurrent ops/s | × floor | p99 | CPU/op | CPU × floor |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (peer, tally) in peers.iter().zip(tallies) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            peer.label(),
            fmt_us(tally.sequential.quantile_us(0.50)),
            fmt_us(tally.sequential.quantile_us(0.99)),
            fmt_us(tally.sequential_cpu_us()),
            ratio(peer, tally.sequential_cpu_us(), floor.sequential_cpu_us()),
            fmt_rate(tally.ops_per_s()),
            ratio(peer, tally.ops_per_s(), floor.ops_per_s()),
            fmt_us(tally.concurrent.quantile_us(0.99)),
            fmt_us(tally.concurrent_cpu_us()),
            ratio(peer, tally.concurrent_cpu_us(), floor.concurrent_cpu_us()),
        );
    }
    let _ = writeln!(
        out,
        "\n{rounds} rounds; per round and client {SEQUENTIAL_OPS} sequential reads and \
         {CONCURRENCY} tasks × {OPS_PER_TASK} concurrent reads (the cache hit: {CACHED_SCALE}× \
         as many), on a {WORKERS}-worker tokio runtime. CPU/op is the process's user + system \
         time over the loop per read (the server's is not counted)."
    );
    out
}

/// A time given in microseconds, with its unit and about three significant figures.
fn fmt_us(us: f64) -> String {
    if us < 10.0 {
        format!("{us:.2} µs")
    } else if us < 100.0 {
        format!("{us:.1} µs")
    } else if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 10_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else if us < 100_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{:.0} ms", us / 1000.0)
    }
}

/// Operations per second, `2 152` or `4.31 M`.
fn fmt_rate(ops: f64) -> String {
    if ops >= 1e6 {
        format!("{:.2} M", ops / 1e6)
    } else {
        let whole = format!("{ops:.0}");
        match whole.len() {
            4..=6 => format!(
                "{} {}",
                &whole[..whole.len() - 3],
                &whole[whole.len() - 3..]
            ),
            _ => whole,
        }
    }
}
