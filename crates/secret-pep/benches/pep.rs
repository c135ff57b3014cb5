//! The PEP decision on a warm grant, with a fresh `jti` each call and no network.
//!
//! - `pep_decision_warm`: [`Pep::authorize`] for a URI whose grant is cached: parse,
//!   canonicalize, mount guard, audience, anti-replay insert of a new `jti`, the grant key
//!   (caller, backend, resource; a DPoP binding), the grant lookup (grants and denials in one
//!   map), atomic use count. The PDP is an
//!   in-process double that is only asked once, during warm-up.
//! - `pep_floor_parse_guard`: `SecretUri::parse_allowed` of the same URI, the least any PEP
//!   must do, measured in the same run for the ratio.
//! - `pep_decision_warm_audited`: the same decision on a PEP with an auditor, plus
//!   [`Pep::audit_read`]: the two events a `VaultClient` read publishes (granted, read), keyed
//!   and handed to a `QueueSink` whose drainer serializes them to OCSF off the request path.
//!   Its p50 minus `pep_decision_warm`'s is the audit's cost on the request path.
//!
//! - `pep_decision_warm_redis` (feature `redis`, with `redis-server` installed): the same
//!   decision with the PEP's state on a local Redis (`PepState::redis`), one call per
//!   sample; `redis_floor_ping` is one `PING` round trip on the same kind of connection, the
//!   floor of any call to Redis. The report also gives the round trips per warm decision,
//!   as the PEP's client counts them (`RedisState::calls`) and as the server does (script
//!   calls in `INFO commandstats`).
//!
//! With `SECRETS_BENCH_JSON=<path>` (as `cargo xtask bench` sets it) each scenario appends
//! `{"scenario":…,"p50_us":…,"p99_us":…,"n":…}`. A single call is about a microsecond and
//! `Instant::now()` costs tens of nanoseconds, so each sample times a batch of
//! [`BATCH`] calls and records the per-call mean of that batch (p99 is therefore the p99 of
//! 10-call means). Without the variable it runs as a criterion benchmark.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use secret_audit::{AuditConfig, AuditKey, AuditSink, Auditor, QueueConfig, QueueSink};
use secret_pep::{
    AccessRequest, ExecutionContext, Grant, PdpFuture, Pep, PepConfig, SecretPolicyService,
};
use secret_uri::{AllowedMounts, SecretUri};
use secrets_test_support::bench::{Latencies, OcsfDiscard, append, json_path};

const URI: &str = "openbao+kv2://secret/app/api#token?version=3";
const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
const BATCH: usize = 10;
const SAMPLES: usize = 20_000;
const WARMUP: usize = 20_000;

/// Permits everything with a long, practically unlimited grant; counts nothing.
#[derive(Debug)]
struct UnlimitedPdp;

impl SecretPolicyService for UnlimitedPdp {
    fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
        let grant =
            Grant::new("bench", Duration::from_secs(3600), u32::MAX).bound_to(request.cnf_binding);
        Box::pin(std::future::ready(Ok(grant)))
    }
}

fn pep() -> Pep {
    Pep::builder(config()).pdp(UnlimitedPdp).build().unwrap()
}

fn config() -> PepConfig {
    // One principal makes every call here: its share of the anti-replay store is the store.
    let jtis = 4 * (SAMPLES * BATCH + WARMUP);
    PepConfig::new("tenant-1", AllowedMounts::from_csv("secret,config"))
        .with_capacity(jtis, 1024)
        .with_replay_share(jtis)
}

/// A PEP auditing into a queue sink, and the sink.
fn audited_pep() -> (Pep, Arc<QueueSink>) {
    let sink = Arc::new(
        QueueSink::new(OcsfDiscard, QueueConfig::default().with_capacity(1 << 20)).unwrap(),
    );
    let key = AuditKey::new(b"bench-tenant-salt-0123456789abcdef", None).unwrap();
    let auditor = Auditor::new(
        key,
        Arc::clone(&sink) as Arc<dyn AuditSink>,
        &AuditConfig::default(),
    );
    let pep = Pep::builder(config())
        .pdp(UnlimitedPdp)
        .auditor(Arc::new(auditor))
        .build()
        .unwrap();
    (pep, sink)
}

fn context(jti: u64) -> ExecutionContext {
    ExecutionContext::new("alice")
        .with_aud(["crud.secrets"])
        .with_cnf_jkt(JKT)
        .with_issuer("https://issuer.example")
        .with_jti(format!("jti-{jti:016x}"))
}

fn report(path: &std::path::Path) {
    let pep = pep();
    let (audited, sink) = audited_pep();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mounts = AllowedMounts::from_csv("secret,config");
    let mut next_jti = 0u64;
    let (warm, floor, with_audit) = runtime.block_on(async {
        // Warm-up: the one PDP call, cache growth, branch predictors.
        for _ in 0..WARMUP {
            next_jti += 1;
            let _ = pep.authorize(&context(next_jti), URI).await.unwrap();
            next_jti += 1;
            let granted = audited.authorize(&context(next_jti), URI).await.unwrap();
            audited.audit_read(&context(0), &granted, None);
        }
        let mut warm = Latencies::with_capacity(SAMPLES);
        let mut floor = Latencies::with_capacity(SAMPLES);
        let mut with_audit = Latencies::with_capacity(SAMPLES);
        let mut contexts: Vec<ExecutionContext> = (0..BATCH).map(|_| context(0)).collect();
        for _ in 0..SAMPLES {
            for ctx in &mut contexts {
                next_jti += 1;
                ctx.token_jti = Some(format!("jti-{next_jti:016x}"));
            }
            let start = Instant::now();
            for ctx in &contexts {
                let _ = black_box(pep.authorize(black_box(ctx), black_box(URI)).await.unwrap());
            }
            warm.push(start.elapsed() / BATCH as u32);

            let start = Instant::now();
            for _ in 0..BATCH {
                black_box(SecretUri::parse_allowed(black_box(URI), &mounts).unwrap());
            }
            floor.push(start.elapsed() / BATCH as u32);

            for ctx in &mut contexts {
                next_jti += 1;
                ctx.token_jti = Some(format!("jti-{next_jti:016x}"));
            }
            let start = Instant::now();
            for ctx in &contexts {
                let granted = audited
                    .authorize(black_box(ctx), black_box(URI))
                    .await
                    .unwrap();
                audited.audit_read(ctx, &granted, None);
                let _ = black_box(granted);
            }
            with_audit.push(start.elapsed() / BATCH as u32);
        }
        (warm, floor, with_audit)
    });
    let report = sink.close(Duration::from_secs(30));
    append(path, &warm.json_line("pep_decision_warm")).unwrap();
    append(path, &floor.json_line("pep_floor_parse_guard")).unwrap();
    append(path, &with_audit.json_line("pep_decision_warm_audited")).unwrap();
    eprintln!(
        "audit cost on the request path (decision + read events): p50 {:+.3} µs (audited \
         {:.3} µs, plain {:.3} µs); sink delivered {}, dropped {}, lost {}",
        with_audit.quantile_us(0.5) - warm.quantile_us(0.5),
        with_audit.quantile_us(0.5),
        warm.quantile_us(0.5),
        report.delivered,
        report.dropped,
        report.lost
    );
    eprintln!(
        "pep_decision_warm p50 is {:.1}x the parse+guard floor",
        warm.quantile_us(0.5) / floor.quantile_us(0.5)
    );
}

/// The warm decision with the state on a local Redis, its floor (a `PING`) and the commands
/// per decision. Skipped (with a note) when `redis-server` cannot be started.
#[cfg(feature = "redis")]
fn report_redis(path: &std::path::Path) {
    use secret_pep::{PepState, RedisConfig, RedisState};
    use secrets_test_support::redis::RedisServer;

    const REDIS_SAMPLES: usize = 5_000;
    let server = match RedisServer::start() {
        Ok(server) => server,
        Err(e) => {
            eprintln!("pep_decision_warm_redis skipped: {e}");
            return;
        }
    };
    // Script invocations the server has run (`EVALSHA`, and `EVAL` had it forgotten one).
    let scripts = || -> u64 {
        let info = server.command(&["INFO", "commandstats"]).unwrap();
        let text = String::from_utf8_lossy(info.as_bytes().unwrap()).into_owned();
        text.lines()
            .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
            .filter_map(|l| {
                l.split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    };
    let redis = RedisConfig::new(server.url(), b"bench-state-key-0123456789").unwrap();
    let state = RedisState::new(&redis, "tenant-1").unwrap();
    let pep = Pep::builder(config())
        .pdp(UnlimitedPdp)
        .state(PepState::redis(state.clone()))
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let (warm, floor, client_calls, server_scripts) = runtime.block_on(async {
        let mut ping = redis::aio::ConnectionManager::new(client).await.unwrap();
        let mut next_jti = 1u64 << 40;
        for _ in 0..2_000 {
            next_jti += 1;
            let _ = pep.authorize(&context(next_jti), URI).await.unwrap();
            let _: String = redis::cmd("PING").query_async(&mut ping).await.unwrap();
        }
        let (calls, scripts_before) = (state.calls(), scripts());
        let mut warm = Latencies::with_capacity(REDIS_SAMPLES);
        for _ in 0..REDIS_SAMPLES {
            next_jti += 1;
            let ctx = context(next_jti);
            let start = Instant::now();
            let _ = black_box(
                pep.authorize(black_box(&ctx), black_box(URI))
                    .await
                    .unwrap(),
            );
            warm.push(start.elapsed());
        }
        let n = REDIS_SAMPLES as f64;
        let client_calls = (state.calls() - calls) as f64 / n;
        let server_scripts = (scripts() - scripts_before) as f64 / n;
        let mut floor = Latencies::with_capacity(REDIS_SAMPLES);
        for _ in 0..REDIS_SAMPLES {
            let start = Instant::now();
            let _: String = redis::cmd("PING").query_async(&mut ping).await.unwrap();
            floor.push(start.elapsed());
        }
        (warm, floor, client_calls, server_scripts)
    });
    append(path, &warm.json_line("pep_decision_warm_redis")).unwrap();
    append(path, &floor.json_line("redis_floor_ping")).unwrap();
    eprintln!(
        "pep_decision_warm_redis p50 {:.1} µs = PING floor {:.1} µs + {:.1} µs; per warm \
         decision: {client_calls:.2} round trips (client), {server_scripts:.2} scripts run \
         (server)",
        warm.quantile_us(0.5),
        floor.quantile_us(0.5),
        warm.quantile_us(0.5) - floor.quantile_us(0.5),
    );
}

fn main() {
    if let Some(path) = json_path() {
        report(&path);
        #[cfg(feature = "redis")]
        report_redis(&path);
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // Criterion runs as many calls as fit its time, more than one PEP's anti-replay store
    // holds: a fresh (warmed) PEP takes over every `ROTATE` calls, outside the timed routine.
    const ROTATE: u64 = 1 << 19;
    let warmed = || {
        let pep = pep();
        let _warm = runtime
            .block_on(pep.authorize(&context(u64::MAX), URI))
            .unwrap();
        pep
    };
    let pep = std::cell::RefCell::new(warmed());
    let mounts = AllowedMounts::from_csv("secret,config");
    let mut next_jti = 0u64;
    let mut c = Criterion::default().configure_from_args();
    c.bench_function("pep_decision_warm", |b| {
        b.iter_batched(
            || {
                next_jti += 1;
                if next_jti.is_multiple_of(ROTATE) {
                    *pep.borrow_mut() = warmed();
                }
                context(next_jti)
            },
            |ctx| runtime.block_on(pep.borrow().authorize(&ctx, URI)).unwrap(),
            BatchSize::SmallInput,
        );
    });
    c.bench_function("pep_floor_parse_guard", |b| {
        b.iter(|| SecretUri::parse_allowed(black_box(URI), &mounts).unwrap());
    });
    c.final_summary();
}
