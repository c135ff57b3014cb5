//! Parse throughput over the shared URI mix (`uri-mix.txt`, 20 valid URIs) and 10 invalid ones,
//! each followed by the tenant mount guard.
//!
//! `cargo bench -p secret-uri` runs criterion. With `SECRETS_BENCH_JSON=<file>` set (as
//! `cargo xtask bench` does), it instead appends one JSON line per scenario to that file:
//! `{"scenario":"parse_valid","uris_per_s":…,"mean_ns":…}`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use secret_uri::{AllowedMounts, SecretUri};

const VALID: &str = include_str!("uri-mix.txt");
const INVALID: &str = include_str!("uri-invalid.txt");

fn mounts() -> AllowedMounts {
    AllowedMounts::from_csv("secret,dc-infra,db,local,config,app")
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.is_empty()).collect()
}

/// Parses and guards every URI once; returns how many were valid.
fn run(uris: &[&str], allowed: &AllowedMounts) -> usize {
    uris.iter()
        .filter(|u| SecretUri::parse_allowed(black_box(u), allowed).is_ok())
        .count()
}

fn report(path: &str) {
    let allowed = mounts();
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the bench JSON file");
    for (scenario, text, want_valid) in [
        ("parse_valid", VALID, true),
        ("parse_invalid", INVALID, false),
    ] {
        let uris = lines(text);
        let expected = if want_valid { uris.len() } else { 0 };
        assert_eq!(
            run(&uris, &allowed),
            expected,
            "{scenario}: the mix changed meaning"
        );
        // Time whole passes in 5 rounds of 200 ms and report the median round.
        let mut rounds = Vec::with_capacity(5);
        for _ in 0..5 {
            let start = Instant::now();
            let mut parsed = 0usize;
            while start.elapsed() < Duration::from_millis(200) {
                for _ in 0..100 {
                    black_box(run(&uris, &allowed));
                    parsed += uris.len();
                }
            }
            rounds.push(start.elapsed().as_nanos() as f64 / parsed as f64);
        }
        rounds.sort_by(f64::total_cmp);
        let mean_ns = rounds[rounds.len() / 2];
        let line = format!(
            "{{\"scenario\":\"{scenario}\",\"uris_per_s\":{:.0},\"mean_ns\":{mean_ns:.1}}}",
            1e9 / mean_ns
        );
        println!("{line}");
        writeln!(out, "{line}").expect("write the bench JSON file");
    }
}

fn main() {
    if let Ok(path) = std::env::var("SECRETS_BENCH_JSON") {
        report(&path);
        return;
    }
    let allowed = mounts();
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("parse");
    for (name, text) in [("parse_valid", VALID), ("parse_invalid", INVALID)] {
        let uris = lines(text);
        group.throughput(Throughput::Elements(uris.len() as u64));
        group.bench_function(name, |b| b.iter(|| run(&uris, &allowed)));
    }
    group.finish();
    c.final_summary();
}
