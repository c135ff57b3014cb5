//! Memory under load (issue 15 part 3): soak scenarios that report the process's resident
//! memory (`VmRSS` in `/proc/self/status`) before and after, and its peak (`VmHWM`, reset at
//! each scenario's start through `/proc/self/clear_refs`).
//!
//! - `soak_pep_jti_1m`: 1 M distinct `jti`s through an in-memory [`Pep`] (the [`DevAllowAll`]
//!   PDP in environment `test`, one warm grant for the caller), its anti-replay store capped
//!   at [`REPLAY_CAP`] with a [`REPLAY_WINDOW`] window. The first `REPLAY_CAP` `jti`s fill the
//!   store exactly (asserted through
//!   [`GrantCache::replay_len`](secrets_sdk::pep::GrantCache::replay_len)):
//!   the resident memory they added over the number held is the bytes per entry. The rest
//!   churn through it: expired `jti`s are swept (the store does that at most every 100 ms,
//!   and only when full) and new ones take their place; while the store is full of live ones
//!   a new `jti` is refused with `REPLAY_STORE_FULL` (fail closed), counted as `refused`. The
//!   store's length is read after every call: its peak may pass the cap by at most one entry
//!   per worker thread (the check and the insert are not one atomic step across shards),
//!   which is asserted, and the store must have been recycled (more `jti`s granted than the
//!   cap).
//! - `soak_cache_100k_uris_cap_10k`: a [`SecretsClient`] with `cache_capacity(10_000)`
//!   resolving 100 k distinct `db+cred://` URIs served by an in-memory provider whose values
//!   carry a recognisable canary (each resolved value is checked). `cache_len()` must stay at
//!   the capacity, and every URI not held must have been counted by the
//!   `secrets.cache.evictions` metric (read back through a [`MetricsCapture`]). That an
//!   evicted value is zeroized is a property of its type (`SecretValue` holds text in a
//!   `Zeroizing<String>`, JSON in a value wiped on drop; unit-tested in `secret-providers`):
//!   freed memory cannot be inspected here without `unsafe`, which the workspace forbids.
//! - `soak_cache_hits_5m`: 5 M cache hits of one warm URI (every one counted by the
//!   `secrets.cache.hits` metric, asserted); resident memory after the warm-up and after the
//!   hits must differ by less than [`HIT_GROWTH_LIMIT_KIB`].
//!
//! Every scenario runs in a fresh process of its own (this binary re-run with
//! `SECRETS_SOAK_SCENARIO=<name>`), so that memory an earlier one freed, still resident in
//! the allocator, does not hide its growth. It runs its calls as one task per worker of a
//! multi-thread tokio runtime, is bounded in count, and stops early at [`DEADLINE`] (then
//! `complete` is `false`).
//!
//! With `SECRETS_BENCH_JSON=<path>` (as `cargo xtask bench` sets it) each scenario appends one
//! JSON line to it: `scenario`, `ops`, `rss_before_kib`, `rss_after_kib`, `hwm_kib`,
//! `delta_kib`, `entries` and `bytes_per_entry` where they mean something, `seconds`, and a
//! few fields of its own. Without it the lines are only printed. Either way a one-line summary
//! per scenario goes to stderr.
//!
//! ```sh
//! SECRETS_BENCH_JSON=/tmp/soak.jsonl cargo bench -p secrets-sdk --bench soak
//! ```
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Display;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secret_telemetry::names::metric::{CACHE_EVICTIONS, CACHE_HITS};
use secret_telemetry::testing::MetricsCapture;
use secrets_sdk::pep::{DenyReason, DevAllowAll, Pep, PepConfig};
use secrets_sdk::providers::{ReadFuture, SecretProvider, SecretValue};
use secrets_sdk::uri::{AllowedMounts, Provider, SecretUri};
use secrets_sdk::{ExecutionContext, SecretsClient};
use secrets_test_support::bench::{append, json_path};

/// No scenario runs its calls longer than this.
const DEADLINE: Duration = Duration::from_secs(50);
/// The deadline is looked at once every this many calls.
const DEADLINE_EVERY: usize = 1024;

const JTIS: usize = 1_000_000;
/// A quarter of the `jti`s: the store is filled, then recycled under churn.
const REPLAY_CAP: usize = 250_000;
/// How long a `jti` is remembered: short, so that the store recycles within the run.
const REPLAY_WINDOW: Duration = Duration::from_millis(100);
const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

const URIS: usize = 100_000;
const CACHE_CAP: usize = 10_000;
const CANARY: &str = "soak-canary-value-";

const HITS: usize = 5_000_000;
const HIT_WARMUP: usize = 100_000;
const HIT_GROWTH_LIMIT_KIB: i64 = 1024;

/// Resident memory now, and its peak, in KiB.
#[derive(Debug, Clone, Copy)]
struct Memory {
    rss_kib: u64,
    hwm_kib: u64,
}

impl Memory {
    /// `VmRSS` and `VmHWM` from `/proc/self/status` (`None` off Linux).
    fn now() -> Option<Self> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let field = |name: &str| -> Option<u64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        };
        Some(Self {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
        })
    }

    fn read() -> Self {
        Self::now().expect("/proc/self/status has VmRSS and VmHWM")
    }

    /// `self − before` in KiB (negative when memory was given back).
    fn delta_kib(self, before: Self) -> i64 {
        i64::try_from(self.rss_kib).unwrap() - i64::try_from(before.rss_kib).unwrap()
    }
}

/// Resets `VmHWM` to the current `VmRSS`, so that the peak is this scenario's own.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Bytes of resident memory per entry that `delta_kib` added for `entries`.
fn bytes_per_entry(delta_kib: i64, entries: usize) -> f64 {
    delta_kib as f64 * 1024.0 / entries.max(1) as f64
}

/// One JSON result line, fields in the order they were added.
struct Line(Vec<(&'static str, String)>);

impl Line {
    fn new(scenario: &str) -> Self {
        Self(vec![("scenario", format!("\"{scenario}\""))])
    }

    fn int(mut self, key: &'static str, value: impl Display) -> Self {
        self.0.push((key, value.to_string()));
        self
    }

    fn float(mut self, key: &'static str, value: f64) -> Self {
        assert!(value.is_finite(), "{key} is {value}");
        self.0.push((key, format!("{value:.3}")));
        self
    }

    fn memory(self, before: Memory, after: Memory) -> Self {
        self.int("rss_before_kib", before.rss_kib)
            .int("rss_after_kib", after.rss_kib)
            .int("hwm_kib", after.hwm_kib)
            .int("delta_kib", after.delta_kib(before))
    }

    fn emit(self, path: Option<&std::path::Path>) {
        let fields: Vec<String> = self.0.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let line = format!("{{{}}}", fields.join(","));
        match path {
            Some(path) => append(path, &line).unwrap(),
            None => println!("{line}"),
        }
    }
}

/// `0..n` split into `parts` contiguous ranges.
fn shares(start: usize, end: usize, parts: usize) -> Vec<(usize, usize)> {
    let n = end - start;
    (0..parts)
        .map(|i| (start + n * i / parts, start + n * (i + 1) / parts))
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

// --- soak_pep_jti_1m ---------------------------------------------------------------------

fn pep() -> Pep {
    let config = PepConfig::new("soak", AllowedMounts::from_csv("secret"))
        // The allow-all PDP runs only in a development environment.
        .with_environment("test")
        .with_grant_defaults(Duration::from_secs(24 * 3600), u32::MAX)
        .with_anti_replay(true, REPLAY_WINDOW)
        // One principal makes every call: its share of the store is the store.
        .with_capacity(REPLAY_CAP, 1_000)
        .with_replay_share(REPLAY_CAP);
    Pep::builder(config)
        .pdp(DevAllowAll::new())
        .build()
        .unwrap()
}

fn context(jti: usize) -> ExecutionContext {
    ExecutionContext::new("soak")
        .with_aud(["crud.secrets"])
        .with_cnf_jkt(JKT)
        .with_jti(format!("soak-jti-{jti:016x}"))
}

const PEP_URI: &str = "openbao+kv2://secret/app/api#token";

/// What one task's share of `jti`s came to.
#[derive(Debug, Default, Clone, Copy)]
struct Churn {
    granted: usize,
    refused: usize,
    peak: usize,
    complete: bool,
}

impl Churn {
    fn add(self, other: Self) -> Self {
        Self {
            granted: self.granted + other.granted,
            refused: self.refused + other.refused,
            peak: self.peak.max(other.peak),
            complete: self.complete && other.complete,
        }
    }
}

/// `jti`s `start..end` through `pep`, stopping at `deadline`.
async fn through_pep(pep: Pep, (start, end): (usize, usize), deadline: Instant) -> Churn {
    let mut churn = Churn {
        complete: true,
        ..Churn::default()
    };
    for (i, jti) in (start..end).enumerate() {
        if i % DEADLINE_EVERY == 0 && Instant::now() > deadline {
            churn.complete = false;
            break;
        }
        match pep.authorize(&context(jti), PEP_URI).await {
            Ok(granted) => {
                let _ = black_box(granted);
                churn.granted += 1;
            }
            Err(e) if e.deny_reason() == Some(DenyReason::ReplayStoreFull) => churn.refused += 1,
            Err(e) => panic!("jti {jti}: unexpected {}: {e}", e.code()),
        }
        churn.peak = churn.peak.max(pep.cache().replay_len());
    }
    churn
}

/// `jti`s `start..end` through `pep`, one task per worker.
fn churn_pep(rt: &tokio::runtime::Runtime, pep: &Pep, start: usize, end: usize) -> Churn {
    let deadline = Instant::now() + DEADLINE;
    rt.block_on(async {
        let tasks: Vec<_> = shares(start, end, workers())
            .into_iter()
            .map(|share| tokio::spawn(through_pep(pep.clone(), share, deadline)))
            .collect();
        let mut total = Churn {
            complete: true,
            ..Churn::default()
        };
        for task in tasks {
            total = total.add(task.await.unwrap());
        }
        total
    })
}

fn soak_pep_jti_1m(rt: &tokio::runtime::Runtime, path: Option<&std::path::Path>) {
    let pep = pep();
    // The one PDP call, and the first `jti`.
    let _warm = rt.block_on(pep.authorize(&context(0), PEP_URI)).unwrap();
    let peak_reset = reset_peak();
    let before = Memory::read();
    let started = Instant::now();

    let fill = churn_pep(rt, &pep, 1, REPLAY_CAP);
    let held = pep.cache().replay_len();
    assert!(fill.complete, "filling the store passed the deadline");
    assert_eq!(fill.refused, 0, "refused while filling: {fill:?}");
    assert_eq!(held, REPLAY_CAP, "the store after {REPLAY_CAP} jtis");
    let at_cap = Memory::read();

    // The churn in two halves: the resident memory between them shows whether it levels off.
    let mid = REPLAY_CAP + (JTIS - REPLAY_CAP) / 2;
    let first = churn_pep(rt, &pep, REPLAY_CAP, mid);
    let halfway = Memory::read();
    let churn = first.add(churn_pep(rt, &pep, mid, JTIS));
    let seconds = started.elapsed().as_secs_f64();
    let after = Memory::read();
    let last = pep.cache().replay_len();
    let total = Churn {
        granted: fill.granted + 1,
        ..fill
    }
    .add(churn);
    let ops = total.granted + total.refused;
    let per_entry = bytes_per_entry(at_cap.delta_kib(before), held);
    assert!(
        total.peak <= REPLAY_CAP + workers(),
        "the store grew past its cap ({REPLAY_CAP}, + {} workers): {}",
        workers(),
        total.peak
    );
    assert!(last <= REPLAY_CAP, "the store ended above its cap: {last}");
    assert!(
        total.granted > REPLAY_CAP,
        "the store was never recycled: {total:?}"
    );

    Line::new("soak_pep_jti_1m")
        .int("ops", ops)
        .memory(before, after)
        .int("entries", held)
        .float("bytes_per_entry", per_entry)
        .float("seconds", seconds)
        .int("cap", REPLAY_CAP)
        .int("window_ms", REPLAY_WINDOW.as_millis())
        .int("rss_at_cap_kib", at_cap.rss_kib)
        .int("rss_mid_churn_kib", halfway.rss_kib)
        .int("peak_entries", total.peak)
        .int("final_entries", last)
        .int("granted", total.granted)
        .int("refused", total.refused)
        .int("complete", total.complete)
        .int("hwm_reset", peak_reset)
        .emit(path);
    eprintln!(
        "soak_pep_jti_1m: {ops} distinct jtis in {seconds:.1} s ({} granted, {} refused \
         REPLAY_STORE_FULL); store cap {REPLAY_CAP}, held {held} when full, peak {}, final \
         {last}; RSS {} → {} KiB at cap ({per_entry:.0} B/entry) → {} KiB halfway through \
         the churn → {} KiB after (Δ {:+} KiB), peak {} KiB",
        total.granted,
        total.refused,
        total.peak,
        before.rss_kib,
        at_cap.rss_kib,
        halfway.rss_kib,
        after.rss_kib,
        after.delta_kib(before),
        after.hwm_kib,
    );
}

// --- soak_cache_100k_uris_cap_10k and soak_cache_hits_5m ---------------------------------

/// Every `db` URI's value is [`CANARY`] followed by its path.
#[derive(Debug)]
struct Canaries;

impl SecretProvider for Canaries {
    fn name(&self) -> &'static str {
        "soak-canaries"
    }

    fn read<'a>(&'a self, uri: &'a SecretUri) -> ReadFuture<'a> {
        let value = format!("{CANARY}{}", uri.path());
        Box::pin(std::future::ready(Ok(SecretValue::from_text(value))))
    }
}

fn client(capture: &MetricsCapture, capacity: usize) -> SecretsClient {
    SecretsClient::builder()
        .allowed_mounts(AllowedMounts::from_csv("pg"))
        .provider(Provider::Db, Arc::new(Canaries))
        .cache_capacity(capacity)
        .metrics(capture.metrics())
        .build()
        .unwrap()
}

fn db_uri(n: usize) -> String {
    format!("db+cred://pg/soak/{n:06}")
}

/// Resolves `db_uri(start..end)`, each value checked against its canary: how many were
/// resolved before `deadline`, and whether all.
async fn resolve_range(
    client: SecretsClient,
    (start, end): (usize, usize),
    deadline: Instant,
) -> (usize, bool) {
    for (i, n) in (start..end).enumerate() {
        if i % DEADLINE_EVERY == 0 && Instant::now() > deadline {
            return (i, false);
        }
        let uri = db_uri(n);
        let secret = client.resolve(uri.as_str()).await.unwrap();
        let expected = format!("{CANARY}soak/{n:06}");
        assert_eq!(secret.expose_str(), Some(expected.as_str()), "{uri}");
    }
    (end - start, true)
}

/// Resolves `db_uri(start..end)`, one task per worker: how many were resolved, and whether
/// all.
fn resolve_all(
    rt: &tokio::runtime::Runtime,
    client: &SecretsClient,
    start: usize,
    end: usize,
) -> (usize, bool) {
    let deadline = Instant::now() + DEADLINE;
    rt.block_on(async {
        let tasks: Vec<_> = shares(start, end, workers())
            .into_iter()
            .map(|share| tokio::spawn(resolve_range(client.clone(), share, deadline)))
            .collect();
        let (mut resolved, mut complete) = (0, true);
        for task in tasks {
            let (n, all) = task.await.unwrap();
            resolved += n;
            complete &= all;
        }
        (resolved, complete)
    })
}

fn soak_cache_100k_uris(rt: &tokio::runtime::Runtime, path: Option<&std::path::Path>) {
    let capture = MetricsCapture::new();
    let client = client(&capture, CACHE_CAP);
    // URI 0 warms the client (runtime threads, the provider's first read) and is counted.
    assert_eq!(resolve_all(rt, &client, 0, 1), (1, true));
    let peak_reset = reset_peak();
    let before = Memory::read();
    let started = Instant::now();

    let (filled, filled_all) = resolve_all(rt, &client, 1, CACHE_CAP);
    assert!(filled_all, "filling the cache passed the deadline");
    let at_cap = Memory::read();
    let held_at_cap = client.cache_len();
    let (churned, complete) = resolve_all(rt, &client, CACHE_CAP, URIS);
    let seconds = started.elapsed().as_secs_f64();
    let after = Memory::read();
    let held = client.cache_len();
    let evictions = capture.points().unwrap().sum(CACHE_EVICTIONS);

    let resolved = 1 + filled + churned;
    assert!(
        held <= CACHE_CAP,
        "cache_len {held} above its capacity {CACHE_CAP}"
    );
    assert!(
        held >= CACHE_CAP * 9 / 10,
        "cache_len {held} well below its capacity {CACHE_CAP}"
    );
    assert_eq!(
        evictions as usize + held,
        resolved,
        "every URI resolved is either held or was counted as evicted"
    );
    let per_entry = bytes_per_entry(at_cap.delta_kib(before), held_at_cap);

    Line::new("soak_cache_100k_uris_cap_10k")
        .int("ops", resolved)
        .memory(before, after)
        .int("entries", held)
        .float("bytes_per_entry", per_entry)
        .float("seconds", seconds)
        .int("cap", CACHE_CAP)
        .int("rss_at_cap_kib", at_cap.rss_kib)
        .int("entries_at_cap", held_at_cap)
        .int("evictions", evictions)
        .int("complete", complete)
        .int("hwm_reset", peak_reset)
        .emit(path);
    eprintln!(
        "soak_cache_100k_uris_cap_10k: {resolved} distinct URIs in {seconds:.1} s; cache_len \
         {held} (cap {CACHE_CAP}), {evictions} evictions counted; RSS {} → {} KiB at cap \
         ({per_entry:.0} B/entry) → {} KiB after (Δ {:+} KiB since at cap), peak {} KiB; \
         evicted values are zeroized by their type (SecretValue), not observed here",
        before.rss_kib,
        at_cap.rss_kib,
        after.rss_kib,
        after.delta_kib(at_cap),
        after.hwm_kib,
    );
}

/// `n` hits of `uri`; whether they finished before `deadline`.
async fn hit(client: SecretsClient, uri: Arc<str>, n: usize, deadline: Instant) -> (usize, bool) {
    for i in 0..n {
        if i % DEADLINE_EVERY == 0 && Instant::now() > deadline {
            return (i, false);
        }
        black_box(client.resolve(&*uri).await.unwrap());
    }
    (n, true)
}

/// `n` hits of `uri` spread over one task per worker: how many were made, and whether all.
fn hit_all(
    rt: &tokio::runtime::Runtime,
    client: &SecretsClient,
    uri: &str,
    n: usize,
) -> (usize, bool) {
    let deadline = Instant::now() + DEADLINE;
    let uri: Arc<str> = Arc::from(uri);
    rt.block_on(async {
        let tasks: Vec<_> = shares(0, n, workers())
            .into_iter()
            .map(|(start, end)| {
                tokio::spawn(hit(client.clone(), Arc::clone(&uri), end - start, deadline))
            })
            .collect();
        let (mut made, mut complete) = (0, true);
        for task in tasks {
            let (n, all) = task.await.unwrap();
            made += n;
            complete &= all;
        }
        (made, complete)
    })
}

fn soak_cache_hits_5m(rt: &tokio::runtime::Runtime, path: Option<&std::path::Path>) {
    let capture = MetricsCapture::new();
    let client = client(&capture, CACHE_CAP);
    let uri = SecretUri::parse("db+cred://pg/soak/warm")
        .unwrap()
        .into_string();
    // The one miss, then hits until the allocator and the metrics' series are warm.
    rt.block_on(client.resolve(uri.as_str())).unwrap();
    let (warm, _) = hit_all(rt, &client, &uri, HIT_WARMUP);
    let peak_reset = reset_peak();
    let before = Memory::read();
    let started = Instant::now();
    let (hits, complete) = hit_all(rt, &client, &uri, HITS);
    let seconds = started.elapsed().as_secs_f64();
    let after = Memory::read();
    let counted = capture.points().unwrap().sum(CACHE_HITS);
    let delta = after.delta_kib(before);

    assert_eq!(
        counted as usize,
        warm + hits,
        "hits counted by secrets.cache.hits"
    );
    assert_eq!(client.cache_len(), 1);
    assert!(
        delta < HIT_GROWTH_LIMIT_KIB,
        "resident memory grew by {delta} KiB over {hits} hits"
    );

    Line::new("soak_cache_hits_5m")
        .int("ops", hits)
        .memory(before, after)
        .int("entries", client.cache_len())
        .float("seconds", seconds)
        .float("ns_per_hit", seconds * 1e9 / hits.max(1) as f64)
        .int("complete", complete)
        .int("hwm_reset", peak_reset)
        .emit(path);
    eprintln!(
        "soak_cache_hits_5m: {hits} hits of one URI in {seconds:.1} s ({:.0} ns each over {} \
         tasks); RSS {} → {} KiB after the hits (Δ {delta:+} KiB, limit < \
         {HIT_GROWTH_LIMIT_KIB}), peak {} KiB",
        seconds * 1e9 / hits.max(1) as f64,
        workers(),
        before.rss_kib,
        after.rss_kib,
        after.hwm_kib,
    );
}

/// Set in the environment of the child process that runs one scenario.
const SCENARIO_ENV: &str = "SECRETS_SOAK_SCENARIO";

type Scenario = fn(&tokio::runtime::Runtime, Option<&std::path::Path>);

const SCENARIOS: &[(&str, Scenario)] = &[
    ("soak_pep_jti_1m", soak_pep_jti_1m),
    ("soak_cache_100k_uris_cap_10k", soak_cache_100k_uris),
    ("soak_cache_hits_5m", soak_cache_hits_5m),
];

fn main() {
    if Memory::now().is_none() {
        eprintln!("soak bench skipped: no VmRSS/VmHWM in /proc/self/status (Linux only)");
        return;
    }
    if let Some(name) = std::env::var_os(SCENARIO_ENV) {
        let (_, scenario) = SCENARIOS
            .iter()
            .find(|(known, _)| name == *known)
            .unwrap_or_else(|| panic!("{SCENARIO_ENV}={name:?} names no scenario"));
        scenario(&runtime(), json_path().as_deref());
        return;
    }
    // Each scenario in a fresh process of its own: memory an earlier one freed, still
    // resident in the allocator's free lists, would hide the next one's growth.
    let exe = std::env::current_exe().unwrap();
    let mut failed = Vec::new();
    for (name, _) in SCENARIOS {
        let status = std::process::Command::new(&exe)
            .env(SCENARIO_ENV, name)
            .status()
            .unwrap();
        if !status.success() {
            failed.push(*name);
        }
    }
    if !failed.is_empty() {
        eprintln!("soak bench: failed: {}", failed.join(", "));
        std::process::exit(1);
    }
}
