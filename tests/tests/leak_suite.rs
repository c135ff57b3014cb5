//! One leak suite for the whole SDK (issue 12, part 4).
//!
//! It drives every success and error path of `SecretsClient`, `VaultClient` and the `secrets`
//! CLI it can provoke with canaries planted everywhere a secret can be: a secret value, the
//! vault token, an AppRole secret id, the PDP and OTLP bearer tokens, the tenant salt,
//! sender-binding thumbprints, a `jti`, the caller's subject, and a path segment and file name
//! of every secret's URI (`common/leak.rs` lists them). It captures
//!
//! - every log line at TRACE through a text `fmt` layer and a JSON `fmt` layer (span events,
//!   current span, span list);
//! - every span and its fields as the OpenTelemetry layer exports them, and every metric data
//!   point (the global meter provider, installed before any client is built);
//! - every audit event (`Debug` and OCSF JSON), including what failing sinks were handed;
//! - every error's `Display`, `Debug` and `source()` chain, and the `Debug`/`Display` of
//!   everything returned;
//! - the CLI's stdout and stderr with `RUST_LOG=trace`;
//! - the OTLP requests the CLI sends to a receiver on loopback (raw bytes);
//!
//! and scans all of it for the canaries (as written, in any case, hex- or base64-encoded).
//! A canary may appear only where it is the product: the value a read returns (never scanned:
//! it is the point) and on the stdout of `secrets resolve`/`get`, a URI's path on
//! `secrets uri parse`'s, the subject in an audit event.
//!
//! Every path must also end as it is meant to (the right code, or the canary value), so a
//! path that stopped reaching its error cannot pass unscanned; and every channel must have
//! captured something, so an empty capture cannot pass. The scanner's own tests plant a
//! canary in each channel and see it reported. `LEAK_SUITE_PLANT=1` plants a leak in the
//! suite's own run, to watch it fail; `LEAK_SUITE_DUMP=<dir>` keeps what was captured.
//!
//! The global subscriber can be set once per process, so one test drives every path in turn
//! (`--nocapture` shows the counts: paths driven and bytes scanned per channel).

mod common;

#[path = "leak_suite/audit_paths.rs"]
mod audit_paths;
#[path = "leak_suite/cli_exec.rs"]
mod cli_exec;
#[path = "leak_suite/cli_get.rs"]
mod cli_get;
#[path = "leak_suite/cli_paths.rs"]
mod cli_paths;
#[path = "leak_suite/cli_tools.rs"]
mod cli_tools;
#[path = "leak_suite/fixtures.rs"]
mod fixtures;
#[path = "leak_suite/otlp_paths.rs"]
mod otlp_paths;
#[path = "leak_suite/paths.rs"]
mod paths;
#[path = "leak_suite/run.rs"]
mod run;
#[path = "leak_suite/scanner.rs"]
mod scanner;
#[path = "leak_suite/sdk_paths.rs"]
mod sdk_paths;
#[path = "leak_suite/vault_faults.rs"]
mod vault_faults;
#[path = "leak_suite/vault_paths.rs"]
mod vault_paths;
#[path = "leak_suite/verify_paths.rs"]
mod verify_paths;

use std::collections::BTreeSet;
use std::time::Instant;

use common::TestResult;
use common::leak::{Capture, Channel, TOKEN, VALUE};
use fixtures::Fixtures;
use run::Run;

/// Set to plant a leak in the suite's own run (it must then fail).
const PLANT: &str = "LEAK_SUITE_PLANT";
/// Set to a folder to keep what the suite captured there (`text.log`, `json.log`,
/// `spans.txt`, `metrics.txt`), to read what was scanned.
const DUMP: &str = "LEAK_SUITE_DUMP";

#[test]
fn no_canary_reaches_any_channel() -> TestResult {
    // Before any client exists: clients bind their instruments to the global meter provider
    // when they are built.
    let capture = Capture::global();
    let Some(mut fx) = Fixtures::start()? else {
        return Ok(());
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut run = Run::new();
    sdk_paths::drive(&mut run, &rt, &fx)?;
    vault_paths::drive(&mut run, &rt, &mut fx)?;
    audit_paths::drive(&mut run, &rt, &fx)?;
    verify_paths::drive_all(&mut run)?;
    cli_paths::drive(&mut run, &fx)?;
    let receiver = otlp_paths::drive(&mut run, &fx)?;
    if std::env::var_os(PLANT).is_some() {
        tracing::warn!(token = TOKEN, "a planted leak");
        let span = tracing::info_span!("planted", value = VALUE);
        drop(span);
    }
    drop(rt);

    let text = capture.text();
    let json = capture.json();
    let spans = capture.spans();
    let span_text = capture.span_text();
    let points = capture.points();
    if let Some(dir) = std::env::var_os(DUMP).map(std::path::PathBuf::from) {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("text.log"), &text)?;
        std::fs::write(dir.join("json.log"), &json)?;
        std::fs::write(dir.join("spans.txt"), &span_text)?;
        std::fs::write(dir.join("metrics.txt"), format!("{points:#?}"))?;
    }
    run.scanner.scan(Channel::TextLog, "text layer", &text, &[]);
    run.scanner.scan(Channel::JsonLog, "json layer", &json, &[]);
    run.scanner
        .scan(Channel::Spans, "exported spans", &span_text, &[]);
    run.scanner.scan(
        Channel::Metrics,
        "metric points",
        format!("{points:?}"),
        &[],
    );

    // The report.
    let bytes = run.scanner.bytes();
    let pieces = run.scanner.pieces();
    eprintln!(
        "leak suite: {} paths driven ({} distinct) in {:.1} s ({} errors, {} values); by area: {:?}",
        run.path_count(),
        run.distinct_paths(),
        started.elapsed().as_secs_f64(),
        run.outcomes().0,
        run.outcomes().1,
        run.areas()
    );
    let mut total = 0;
    for channel in Channel::ALL {
        let n = bytes.get(&channel).copied().unwrap_or_default();
        total += n;
        eprintln!(
            "leak suite: {channel:?}: {n} bytes scanned in {} pieces",
            pieces.get(&channel).copied().unwrap_or_default()
        );
    }
    let names: BTreeSet<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    eprintln!(
        "leak suite: {total} bytes scanned in all; {} spans exported ({names:?}); {} metric points; audit events {:?}",
        spans.len(),
        points.0.len(),
        run.audited()
    );

    // Every channel captured something real, every path ended as meant, and no canary is
    // anywhere it may not be. All of it is reported at once.
    let mut problems = Vec::new();
    for channel in Channel::ALL {
        if bytes.get(&channel).copied().unwrap_or_default() < 1000 {
            problems.push(format!("{channel:?} captured (almost) nothing"));
        }
    }
    if json.lines().count() < 1000 {
        problems.push(format!(
            "the JSON layer wrote only {} lines",
            json.lines().count()
        ));
    }
    if let Some(line) = json
        .lines()
        .find(|line| serde_json::from_str::<serde_json::Value>(line).is_err())
    {
        problems.push(format!(
            "the JSON layer wrote a line that is not JSON: {line}"
        ));
    }
    if spans.len() < 500 {
        problems.push(format!("only {} spans exported", spans.len()));
    }
    use secret_telemetry::names::{metric, span};
    // `http_request` spans are exported under their `otel.name`, the method.
    for name in [
        span::RESOLVE,
        span::GET_CREDENTIALS,
        span::READ,
        span::LOGIN,
        span::PEP_DECISION,
        span::PDP_CALL,
        span::AUDIT_PUBLISH,
        "GET",
    ] {
        if !names.contains(name) {
            problems.push(format!("no `{name}` span exported"));
        }
    }
    for name in [
        metric::RESOLVE_DURATION,
        metric::CACHE_HITS,
        metric::CACHE_MISSES,
        metric::PROVIDER_ERRORS,
        metric::PEP_DECISIONS,
        metric::PDP_DURATION,
    ] {
        if points.named(name).is_empty() {
            problems.push(format!("no `{name}` point recorded"));
        }
    }
    for kind in [
        "secret.read",
        "secret.read.error",
        "secret.access.granted",
        "secret.access.denied",
        "secret.read.cache_hit",
    ] {
        if run.audited().get(kind).copied().unwrap_or_default() == 0 {
            problems.push(format!("no `{kind}` audit event"));
        }
    }
    // The CLI's export reached the receiver: its spans (every level) and metrics.
    let exported: BTreeSet<String> = receiver.spans().into_iter().map(|s| s.name).collect();
    for name in [span::RESOLVE, span::GET_CREDENTIALS, span::READ] {
        if !exported.contains(name) {
            problems.push(format!(
                "no `{name}` span reached the OTLP receiver: {exported:?}"
            ));
        }
    }
    if receiver.points_named(metric::RESOLVE_DURATION).is_empty() {
        problems.push(format!(
            "no `{}` point reached the OTLP receiver",
            metric::RESOLVE_DURATION
        ));
    }
    eprintln!(
        "leak suite: the OTLP receiver got {} requests, {} spans ({exported:?}), {} points",
        receiver.raw_requests().len(),
        receiver.spans().len(),
        receiver.points().len()
    );
    if run.path_count() < 500 {
        problems.push(format!("only {} paths driven", run.path_count()));
    }
    for mismatch in run.mismatches() {
        problems.push(format!("path did not end as meant: {mismatch}"));
    }
    for finding in run.scanner.findings() {
        problems.push(format!("LEAK {finding}"));
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    Ok(())
}
