//! The driver of `cargo xtask bench --check`: one no-I/O scenario, a given number of times,
//! for valgrind's callgrind to count the instructions of.
//!
//! `instructions <scenario> <n>` sets the scenario up, warms it up with the same calls it
//! measures, then makes `n` measured calls inside [`callgrind_measured_region`] and prints
//! `ops <count>` (how many operations that was). The guard runs it under
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect=*callgrind_measured_region*`,
//! so only the region is counted, once with `n` and once with `2n`: the difference divided by
//! the extra operations is the cost of one operation, whatever the region's fixed cost is.
//! Nothing but the two `n`s differs between the two processes, so the warm-up, the heap and
//! the caches are in the same state when the region starts.
//!
//! Scenarios (an operation in brackets):
//!
//! - `parse_valid`, `parse_invalid`: `SecretUri::parse_allowed` plus the mount guard over the
//!   shared mixes of `secret-uri`'s parse bench (`uri-mix.txt`, `uri-invalid.txt`, included
//!   from there) [one URI; `n` passes over the mix].
//! - `cache_hit_file`: `SecretsClient::resolve(&str)` of a cached `file://` secret, on a
//!   current-thread runtime, as the resolve bench's `cache_hit_file` [one hit].
//! - `pep_decision_warm`: `Pep::authorize` of a URI whose grant is cached, a fresh `jti` each
//!   call, as the pep bench's `pep_decision_warm` (the contexts are built before the region)
//!   [one decision].
//! - `audit_enqueue`: `QueueSink::publish` of a prepared event, the request path's part of
//!   the audit (`KafkaSink` publishes through the same queue), in steady state: the queue has
//!   grown to hold the region's events before (growing it copies the events, and where the
//!   doublings fall would depend on `n`), and the drainer is held in a delivery for the whole
//!   region, so it never takes from the queue and its thread is never woken: the count does
//!   not depend on thread scheduling [one event].
//!
//! Run it by hand: `cargo bench -p secrets-sdk --bench instructions -- cache_hit_file 1000`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use secrets_sdk::SecretsClient;
use secrets_sdk::audit::{
    AuditConfig, AuditError, AuditEvent, AuditKey, AuditSink, Auditor, EventType, NoopSink,
    QueueConfig, QueueSink, SinkStats, Transport,
};
use secrets_sdk::pep::{
    AccessRequest, ExecutionContext, Grant, PdpFuture, Pep, PepConfig, SecretPolicyService,
};
use secrets_sdk::uri::{AllowedMounts, SecretUri};

/// The parse bench's mixes, not a copy of them.
const VALID: &str = include_str!("../../secret-uri/benches/uri-mix.txt");
const INVALID: &str = include_str!("../../secret-uri/benches/uri-invalid.txt");
/// The parse bench's mount list (every URI of `VALID` is under one of these).
const PARSE_MOUNTS: &str = "secret,dc-infra,db,local,config,app";

const FILE: &str = "file://demo/db.json#password";
const PEP_URI: &str = "openbao+kv2://secret/app/api#token?version=3";
const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
/// Calls made before the region, the same ones it makes.
const WARMUP: usize = 200;

const USAGE: &str = "usage: instructions <parse_valid|parse_invalid|cache_hit_file|\
                     pep_decision_warm|audit_enqueue> <n>";

/// The measured region: callgrind collects from its entry to its return (on this thread
/// only). Never inlined, so that the symbol exists for `--toggle-collect`.
#[inline(never)]
fn callgrind_measured_region<F: FnOnce() -> usize>(ops: F) -> usize {
    black_box(ops())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [scenario, n] = args.as_slice() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let Ok(n) = n.parse::<usize>() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let ops = match scenario.as_str() {
        "parse_valid" => parse(VALID, true, n),
        "parse_invalid" => parse(INVALID, false, n),
        "cache_hit_file" => cache_hit_file(n),
        "pep_decision_warm" => pep_decision_warm(n),
        "audit_enqueue" => audit_enqueue(n),
        _ => {
            eprintln!("unknown scenario `{scenario}`\n{USAGE}");
            std::process::exit(2);
        }
    };
    println!("ops {ops}");
    // Teardown is not measured; skipping it keeps the run short (the audit drainer is held).
    std::process::exit(0);
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.is_empty()).collect()
}

/// Parses and guards every URI once; returns how many were valid.
fn parse_pass(uris: &[&str], allowed: &AllowedMounts) -> usize {
    uris.iter()
        .filter(|u| SecretUri::parse_allowed(black_box(u), allowed).is_ok())
        .count()
}

fn parse(text: &str, valid: bool, n: usize) -> usize {
    let allowed = AllowedMounts::from_csv(PARSE_MOUNTS);
    let uris = lines(text);
    let expected = if valid { uris.len() } else { 0 };
    for _ in 0..WARMUP {
        assert_eq!(
            parse_pass(&uris, &allowed),
            expected,
            "the mix changed meaning"
        );
    }
    let parsed = callgrind_measured_region(|| (0..n).map(|_| parse_pass(&uris, &allowed)).sum());
    assert_eq!(parsed, expected * n);
    uris.len() * n
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

fn cache_hit_file(n: usize) -> usize {
    let root = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(root.path().join("demo")).expect("demo dir");
    std::fs::write(
        root.path().join("demo/db.json"),
        r#"{"username":"app","password":"bench-password"}"#,
    )
    .expect("demo file");
    let client = SecretsClient::builder()
        .file_root(root.path())
        .allowed_mounts(AllowedMounts::from_csv("demo"))
        .cache_file_secrets(true)
        .build()
        .expect("client");
    let rt = runtime();
    rt.block_on(async {
        let first = client.resolve(FILE).await.expect("the file secret");
        assert_eq!(first.expose_str(), Some("bench-password"));
        for _ in 0..WARMUP {
            black_box(client.resolve(black_box(FILE)).await.unwrap());
        }
    });
    callgrind_measured_region(|| {
        rt.block_on(async {
            for _ in 0..n {
                black_box(client.resolve(black_box(FILE)).await.unwrap());
            }
        });
        n
    })
}

/// Permits everything with a practically unlimited grant (the pep bench's double).
#[derive(Debug)]
struct UnlimitedPdp;

impl SecretPolicyService for UnlimitedPdp {
    fn authorize_use<'a>(&'a self, request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
        let grant =
            Grant::new("bench", Duration::from_secs(3600), u32::MAX).bound_to(request.cnf_binding);
        Box::pin(std::future::ready(Ok(grant)))
    }
}

fn context(jti: usize) -> ExecutionContext {
    ExecutionContext::new("alice")
        .with_aud(["crud.secrets"])
        .with_cnf_jkt(JKT)
        .with_issuer("https://issuer.example")
        .with_jti(format!("jti-{jti:016x}"))
}

fn pep_decision_warm(n: usize) -> usize {
    // Room for every `jti` of the run, so that the store never sweeps or refuses.
    let jtis = 4 * (WARMUP + n).max(1 << 16);
    let config = PepConfig::new("tenant-1", AllowedMounts::from_csv("secret,config"))
        .with_capacity(jtis, 1024)
        .with_replay_share(jtis);
    let pep = Pep::builder(config).pdp(UnlimitedPdp).build().unwrap();
    let rt = runtime();
    let warmup: Vec<ExecutionContext> = (0..WARMUP).map(context).collect();
    let measured: Vec<ExecutionContext> = (WARMUP..WARMUP + n).map(context).collect();
    rt.block_on(async {
        for ctx in &warmup {
            let _ = black_box(pep.authorize(ctx, PEP_URI).await.unwrap());
        }
    });
    callgrind_measured_region(|| {
        rt.block_on(async {
            for ctx in &measured {
                let _ = black_box(
                    pep.authorize(black_box(ctx), black_box(PEP_URI))
                        .await
                        .unwrap(),
                );
            }
        });
        measured.len()
    })
}

/// What [`Gated`] does with the next delivery.
const PASS: u8 = 0;
const HOLD_UNTIL_RELEASED: u8 = 1;
const HOLD_FOREVER: u8 = 2;

/// A transport the driver steers: deliveries pass, wait for `release` or never finish.
#[derive(Default)]
struct Gate {
    mode: AtomicU8,
    release: tokio::sync::Notify,
}

struct Gated(Arc<Gate>);

impl Transport for Gated {
    fn deliver<'a>(
        &'a mut self,
        _batch: &'a [AuditEvent],
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>> {
        let gate = Arc::clone(&self.0);
        Box::pin(async move {
            match gate.mode.load(Ordering::SeqCst) {
                PASS => {}
                HOLD_UNTIL_RELEASED => gate.release.notified().await,
                _ => std::future::pending().await,
            }
            Ok(())
        })
    }
}

/// Polls `done` until it holds (the drainer thread works on its own time).
fn wait_for(sink: &QueueSink, done: impl Fn(SinkStats) -> bool) {
    while !done(sink.stats()) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `n` events as the audit_publish bench makes them: a keyed read event about one of 256
/// secrets, with a grant id, use number and latency.
fn events(n: usize) -> Vec<AuditEvent> {
    let auditor = Auditor::new(
        AuditKey::new(b"bench-tenant-salt-0123456789abcdef", None).unwrap(),
        Arc::new(NoopSink::new()),
        &AuditConfig::default(),
    );
    let uris: Vec<SecretUri> = (0..256)
        .map(|i| SecretUri::parse(&format!("openbao+kv2://secret/app/service-{i}#token")).unwrap())
        .collect();
    (0..n)
        .map(|i| {
            auditor
                .event(
                    EventType::Read,
                    "acme",
                    Some("alice"),
                    Some(&uris[i % uris.len()]),
                )
                .with_grant_id(format!("g-{i:08}"))
                .with_use_number(1)
                .with_latency(Duration::from_micros(840))
        })
        .collect()
}

fn audit_enqueue(n: usize) -> usize {
    // The queue as it is in steady state: grown once to hold everything the region publishes
    // (so no publish pays for growing it), then drained; its drainer then held in a delivery
    // for good (so it neither takes from the queue nor is woken while the region runs).
    let grow = WARMUP + n;
    let config = QueueConfig::default()
        .with_capacity(grow)
        .with_attempt_timeout(Duration::from_secs(24 * 3600))
        .with_linger(Duration::ZERO);
    let gate = Arc::new(Gate::default());
    gate.mode.store(HOLD_UNTIL_RELEASED, Ordering::SeqCst);
    let sink = QueueSink::new(Gated(Arc::clone(&gate)), config).unwrap();
    let mut events = events(1 + grow + 1 + WARMUP + n).into_iter();
    let mut publish = |count: usize| {
        for event in events.by_ref().take(count) {
            sink.publish(event);
        }
    };
    publish(1);
    wait_for(&sink, |s| s.in_flight == 1);
    publish(grow);
    assert_eq!(
        sink.stats().queued,
        grow as u64,
        "the queue grew to hold the region"
    );
    gate.mode.store(PASS, Ordering::SeqCst);
    gate.release.notify_one();
    wait_for(&sink, |s| s.delivered == 1 + grow as u64);
    gate.mode.store(HOLD_FOREVER, Ordering::SeqCst);
    publish(1);
    wait_for(&sink, |s| s.in_flight == 1 && s.queued == 0);
    publish(WARMUP);
    let measured: Vec<AuditEvent> = events.collect();
    let ops = callgrind_measured_region(|| {
        let count = measured.len();
        for event in measured {
            sink.publish(event);
        }
        count
    });
    let stats = sink.stats();
    assert_eq!(
        (stats.queued, stats.in_flight, stats.dropped),
        ((WARMUP + n) as u64, 1, 0),
        "every event queued, none taken or dropped"
    );
    // Dropping the sink would wait out its flush bound for the held delivery.
    std::mem::forget(sink);
    ops
}
