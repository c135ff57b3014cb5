//! `cargo xtask bench --check [--update]`: instruction counts of the no-I/O scenarios
//! (valgrind `callgrind`) against the committed baseline, [`BASELINE`].
//!
//! Wall time on these machines swings by tens of percent between runs; the number of
//! instructions a binary executes for the same input does not, so a 10 % threshold on it
//! cannot flake. The driver is the `instructions` bench of `secrets-sdk`
//! (`crates/secrets-sdk/benches/instructions.rs`): it runs one scenario's calls inside a
//! function callgrind toggles collection on ([`TOGGLE`]). Each scenario runs twice, with `n`
//! and `2n` calls, and the cost of one operation is the difference in instructions divided by
//! the difference in operations, so the region's fixed cost (a `block_on`, a first call)
//! cancels. The runs share nothing, so they run side by side, one per core.
//!
//! `--check` fails when a scenario costs more than [`THRESHOLD_PERCENT`] more instructions
//! per operation than its baseline, when a scenario has no baseline and when the baseline
//! holds one no longer measured. `--update` measures and rewrites the baseline instead (an
//! explicit commit, reviewed like code). Without valgrind it installs Debian's `valgrind`
//! with apt-get as root, and fails saying what to install otherwise: the guard never skips.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::{cargo, root};

/// The committed baseline, relative to the repository root.
const BASELINE: &str = "bench/instructions-baseline.json";

/// The largest growth in instructions per operation `--check` lets through.
const THRESHOLD_PERCENT: f64 = 10.0;

/// The driver's measured region (`callgrind_measured_region`), as callgrind matches it.
const TOGGLE: &str = "*callgrind_measured_region*";

/// The scenarios, each with the smaller of its two `n`s and what one operation is. An `n`
/// is large enough that the difference dwarfs any wobble and small enough that a run takes
/// about a second under callgrind (valgrind's start-up dominates).
const SCENARIOS: &[(&str, usize, &str)] = &[
    (
        "parse_valid",
        500,
        "one URI of secret-uri's 20-URI mix, parsed and mount-guarded",
    ),
    (
        "parse_invalid",
        1_000,
        "one URI of secret-uri's 10 invalid URIs, refused",
    ),
    (
        "cache_hit_file",
        5_000,
        "one SecretsClient::resolve(&str) hit of a cached file secret",
    ),
    (
        "pep_decision_warm",
        2_000,
        "one Pep::authorize on a cached grant, a fresh jti",
    ),
    (
        "audit_enqueue",
        5_000,
        "one QueueSink::publish of a prepared audit event",
    ),
];

/// `cargo xtask bench --check`, as `ci` runs it.
pub(crate) fn check() -> anyhow::Result<()> {
    run(&[])
}

/// `cargo xtask bench --check [--update]` (the arguments after `--check`).
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let update = match args {
        [] => false,
        [flag] if flag == "--update" => true,
        _ => bail!("usage: cargo xtask bench --check [--update]"),
    };
    let started = Instant::now();
    let valgrind = ensure_valgrind()?;
    let driver = build_driver()?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| "target".into(), PathBuf::from);
    let out_dir = root().join(target).join("callgrind");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    eprintln!(
        "\nbench --check: {} scenarios under {valgrind} (2 runs each)",
        SCENARIOS.len()
    );
    let measuring = Instant::now();
    let measured = measure(&driver, &out_dir)?;
    eprintln!(
        "bench --check: measured in {:.1}s",
        measuring.elapsed().as_secs_f64()
    );
    let now = Machine::current(&valgrind);
    let baseline_path = root().join(BASELINE);
    let baseline = Baseline::read(&baseline_path)?;
    let table = Table::new(&measured, baseline.as_ref());
    print!("{}", table.render());
    if let Some(baseline) = &baseline {
        for warning in baseline.machine.differences(&now) {
            println!("note: {warning}");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if update {
        write_baseline(&baseline_path, &measured, &now)?;
        println!(
            "bench --check --update: wrote {BASELINE} in {elapsed:.1}s; commit it on its own, \
             saying why the counts moved"
        );
        return Ok(());
    }
    if table.failures.is_empty() {
        println!(
            "bench --check: no scenario grew by more than {THRESHOLD_PERCENT:.0} % ({elapsed:.1}s)"
        );
        return Ok(());
    }
    bail!(
        "bench --check failed ({elapsed:.1}s):\n  {}\nIf the change is intended, run `cargo xtask \
         bench --check --update` and commit {BASELINE} with the reason",
        table.failures.join("\n  ")
    )
}

/// The valgrind on PATH (its `--version`), installed with apt-get when missing and root.
fn ensure_valgrind() -> anyhow::Result<String> {
    if let Some(version) = valgrind_version() {
        return Ok(version);
    }
    if !crate::services::is_root() {
        bail!(
            "valgrind is not installed, and the instruction-count guard needs it (it is never \
             skipped, in CI or out): install Debian's package valgrind (`sudo apt-get install \
             -y valgrind`), or put a valgrind (>= 3.16, with callgrind) on PATH, then run \
             `cargo xtask bench --check` again"
        );
    }
    eprintln!("valgrind: installing Debian's valgrind with apt-get");
    crate::services::apt_install("valgrind")?;
    valgrind_version().context("apt-get installed valgrind but `valgrind --version` does not run")
}

fn valgrind_version() -> Option<String> {
    let output = Command::new("valgrind")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Builds the driver (bench profile: release with line tables, symbols kept) and returns its
/// executable.
fn build_driver() -> anyhow::Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args([
        "bench",
        "--no-run",
        "--package",
        "secrets-sdk",
        "--bench",
        "instructions",
        "--message-format=json-render-diagnostics",
    ])
    .stderr(Stdio::inherit())
    .stdin(Stdio::null());
    eprintln!("\n$ cargo bench --no-run --package secrets-sdk --bench instructions");
    let output = cmd.output().context("could not start cargo")?;
    if !output.status.success() {
        bail!(
            "building the instructions driver failed ({})",
            output.status
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| {
            msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "instructions"
        })
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .context("cargo built no `instructions` executable")
}

/// One scenario's result.
#[derive(Debug, Clone)]
struct Measured {
    scenario: &'static str,
    per_op: f64,
}

/// One callgrind run: its instructions in the region and the operations the driver made.
#[derive(Debug, Clone, Copy)]
struct Run {
    instructions: u64,
    ops: u64,
}

/// Runs every scenario with `n` and `2n`, side by side (one run per core).
fn measure(driver: &Path, out_dir: &Path) -> anyhow::Result<Vec<Measured>> {
    let jobs: Vec<(&'static str, usize)> = SCENARIOS
        .iter()
        .flat_map(|&(scenario, n, _)| [(scenario, n), (scenario, 2 * n)])
        .collect();
    let results: Mutex<Vec<Option<anyhow::Result<Run>>>> =
        Mutex::new(jobs.iter().map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(jobs.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(scenario, n)) = jobs.get(i) else {
                        break;
                    };
                    let result = callgrind(driver, out_dir, scenario, n);
                    if let Ok(mut results) = results.lock() {
                        results[i] = Some(result);
                    }
                }
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a callgrind worker panicked"))?;
    let mut runs = Vec::with_capacity(jobs.len());
    for (result, (scenario, n)) in results.into_iter().zip(&jobs) {
        let run = result
            .with_context(|| format!("{scenario} {n}: not run"))?
            .with_context(|| format!("{scenario} {n}"))?;
        runs.push(run);
    }
    let mut measured = Vec::with_capacity(SCENARIOS.len());
    for (pair, &(scenario, _, _)) in runs.chunks(2).zip(SCENARIOS) {
        let [small, large] = pair else {
            bail!("{scenario}: a run is missing");
        };
        if large.ops <= small.ops || large.instructions <= small.instructions {
            bail!(
                "{scenario}: {} ops took {} instructions, {} ops {}: the larger run must cost \
                 more",
                small.ops,
                small.instructions,
                large.ops,
                large.instructions
            );
        }
        let per_op =
            (large.instructions - small.instructions) as f64 / (large.ops - small.ops) as f64;
        measured.push(Measured { scenario, per_op });
    }
    Ok(measured)
}

/// One run of the driver under callgrind, collecting in the measured region only.
fn callgrind(driver: &Path, out_dir: &Path, scenario: &str, n: usize) -> anyhow::Result<Run> {
    let out_file = out_dir.join(format!("{scenario}-{n}.out"));
    let _ = std::fs::remove_file(&out_file);
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={TOGGLE}"))
        .arg(driver)
        .arg(scenario)
        .arg(n.to_string())
        .current_dir(out_dir)
        .stdin(Stdio::null());
    // The same small environment on every machine: its size moves the stack, and variables
    // such as RUST_LOG could change what the code does.
    cmd.env_clear().env("LC_ALL", "C");
    for keep in ["PATH", "VALGRIND_LIB", "TMPDIR"] {
        if let Some(value) = std::env::var_os(keep) {
            cmd.env(keep, value);
        }
    }
    let output = cmd
        .output()
        .context("could not start valgrind (is it on PATH?)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        bail!(
            "the driver failed under callgrind ({}):\n{stdout}{}",
            output.status,
            lines[lines.len().saturating_sub(30)..].join("\n")
        );
    }
    let ops = stdout
        .lines()
        .find_map(|line| line.strip_prefix("ops "))
        .and_then(|ops| ops.trim().parse().ok())
        .with_context(|| format!("the driver printed no `ops <count>` line: {stdout:?}"))?;
    let profile = std::fs::read_to_string(&out_file)
        .with_context(|| format!("reading {}", out_file.display()))?;
    let instructions =
        totals(&profile).with_context(|| format!("no `totals:` line in {}", out_file.display()))?;
    if instructions == 0 {
        bail!(
            "callgrind collected no instructions: the driver's `callgrind_measured_region` \
             (--toggle-collect={TOGGLE}) was not entered, renamed or inlined"
        );
    }
    Ok(Run { instructions, ops })
}

/// The first event's total (`Ir`, the only event collected) of a callgrind profile.
fn totals(profile: &str) -> Option<u64> {
    profile
        .lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or(line.strip_prefix("summary:"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|ir| ir.parse().ok())
}

/// What the counts depend on besides the code: the compiler, the CPU (glibc and memchr pick
/// their routines by the CPU's features) and the core count (quick_cache and DashMap size
/// their shards by it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Machine {
    rustc: String,
    valgrind: String,
    cpu: String,
    cpus: usize,
}

impl Machine {
    fn current(valgrind: &str) -> Self {
        let rustc = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
            .arg("--version")
            .current_dir(root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map_or_else(
                || "unknown".to_owned(),
                |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
            );
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            rustc,
            valgrind: valgrind.to_owned(),
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }

    fn from_json(value: &serde_json::Value) -> Self {
        let text = |key: &str| value[key].as_str().unwrap_or("unknown").to_owned();
        Self {
            rustc: text("rustc"),
            valgrind: text("valgrind"),
            cpu: text("cpu"),
            cpus: value["cpus"]
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0),
        }
    }

    /// How `now` differs from the machine the baseline was measured on.
    fn differences(&self, now: &Self) -> Vec<String> {
        let mut out = Vec::new();
        let mut differ = |what: &str, then: &str, now: &str| {
            if then != now {
                out.push(format!(
                    "the baseline's {what} was {then}, this run's is {now}: counts may move for \
                     that reason alone"
                ));
            }
        };
        differ("compiler", &self.rustc, &now.rustc);
        differ("CPU", &self.cpu, &now.cpu);
        differ("core count", &self.cpus.to_string(), &now.cpus.to_string());
        out
    }
}

/// The committed baseline.
#[derive(Debug)]
struct Baseline {
    per_op: serde_json::Map<String, serde_json::Value>,
    machine: Machine,
}

impl Baseline {
    fn read(path: &Path) -> anyhow::Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let Some(per_op) = value["instructions_per_op"].as_object() else {
            bail!("{}: no `instructions_per_op` object", path.display());
        };
        Ok(Some(Self {
            per_op: per_op.clone(),
            machine: Machine::from_json(&value),
        }))
    }

    fn get(&self, scenario: &str) -> Option<f64> {
        self.per_op
            .get(scenario)
            .and_then(serde_json::Value::as_f64)
    }
}

fn write_baseline(path: &Path, measured: &[Measured], machine: &Machine) -> anyhow::Result<()> {
    let per_op: serde_json::Map<String, serde_json::Value> = measured
        .iter()
        .map(|m| {
            (
                m.scenario.to_owned(),
                serde_json::json!((m.per_op * 10.0).round() / 10.0),
            )
        })
        .collect();
    let ops: serde_json::Map<String, serde_json::Value> = SCENARIOS
        .iter()
        .map(|&(scenario, _, op)| (scenario.to_owned(), serde_json::json!(op)))
        .collect();
    let value = serde_json::json!({
        "note": format!(
            "Instructions per operation (valgrind callgrind, Ir) of the no-I/O scenarios, \
             measured by `cargo xtask bench --check --update` with the driver \
             crates/secrets-sdk/benches/instructions.rs: (Ir of a run with 2n ops - Ir with n \
             ops) / n, collected in the driver's measured region only. `--check` fails when a \
             scenario grows by more than {THRESHOLD_PERCENT:.0} %. Counts depend on the code, \
             the compiler, the CPU's features and the core count (below): update this file in \
             a commit of its own, saying why the counts moved."
        ),
        "rustc": machine.rustc,
        "valgrind": machine.valgrind,
        "cpu": machine.cpu,
        "cpus": machine.cpus,
        "op": ops,
        "instructions_per_op": per_op,
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&value)?;
    std::fs::write(path, format!("{text}\n")).with_context(|| format!("writing {}", path.display()))
}

/// The comparison with the baseline: its rows and what fails the check.
#[derive(Debug)]
struct Table {
    rows: Vec<[String; 5]>,
    failures: Vec<String>,
}

impl Table {
    fn new(measured: &[Measured], baseline: Option<&Baseline>) -> Self {
        let mut rows = Vec::new();
        let mut failures = Vec::new();
        if baseline.is_none() {
            failures.push(format!("no baseline at {BASELINE}"));
        }
        for m in measured {
            let now = format!("{:.1}", m.per_op);
            let Some(then) = baseline.and_then(|b| b.get(m.scenario)) else {
                rows.push([
                    m.scenario.to_owned(),
                    "-".into(),
                    now,
                    "-".into(),
                    "NEW".into(),
                ]);
                if baseline.is_some() {
                    failures.push(format!("{}: not in the baseline", m.scenario));
                }
                continue;
            };
            let change = (m.per_op - then) / then * 100.0;
            let verdict = if change > THRESHOLD_PERCENT {
                failures.push(format!(
                    "{}: {then:.1} -> {:.1} instructions per op ({change:+.1} %, more than \
                     +{THRESHOLD_PERCENT:.0} %)",
                    m.scenario, m.per_op
                ));
                "REGRESSED"
            } else if change > 1.0 {
                "grew (within the allowance)"
            } else if change < -1.0 {
                "improved (--update to keep it)"
            } else {
                "same"
            };
            rows.push([
                m.scenario.to_owned(),
                format!("{then:.1}"),
                now,
                format!("{change:+.1} %"),
                verdict.to_owned(),
            ]);
        }
        if let Some(baseline) = baseline {
            for scenario in baseline.per_op.keys() {
                if !measured.iter().any(|m| m.scenario == scenario) {
                    rows.push([
                        scenario.clone(),
                        baseline
                            .get(scenario)
                            .map_or_else(|| "?".into(), |v| format!("{v:.1}")),
                        "-".into(),
                        "-".into(),
                        "GONE".into(),
                    ]);
                    failures.push(format!("{scenario}: in the baseline, no longer measured"));
                }
            }
        }
        Self { rows, failures }
    }

    fn render(&self) -> String {
        let header = [
            "scenario",
            "baseline",
            "now",
            "change",
            "(instructions per op)",
        ]
        .map(str::to_owned);
        let mut widths = [0usize; 5];
        for row in std::iter::once(&header).chain(&self.rows) {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.len());
            }
        }
        let mut out = String::from("\n");
        for row in std::iter::once(&header).chain(&self.rows) {
            let _ = writeln!(
                out,
                "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(scenario: &'static str, per_op: f64) -> Measured {
        Measured { scenario, per_op }
    }

    fn baseline(pairs: &[(&str, f64)]) -> Baseline {
        Baseline {
            per_op: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::json!(v)))
                .collect(),
            machine: Machine::from_json(&serde_json::Value::Null),
        }
    }

    #[test]
    fn growth_past_the_threshold_fails_and_within_it_passes() {
        let base = baseline(&[("a", 1000.0), ("b", 1000.0), ("c", 1000.0)]);
        let table = Table::new(
            &[
                measured("a", 1101.0),
                measured("b", 1099.0),
                measured("c", 800.0),
            ],
            Some(&base),
        );
        assert_eq!(table.failures.len(), 1, "{:?}", table.failures);
        assert!(table.failures[0].starts_with("a: 1000.0 -> 1101.0"));
        assert_eq!(table.rows[0][4], "REGRESSED");
        assert_eq!(table.rows[1][4], "grew (within the allowance)");
        assert_eq!(table.rows[2][3], "-20.0 %");
        assert_eq!(table.rows[2][4], "improved (--update to keep it)");
    }

    #[test]
    fn new_gone_and_missing_baselines_fail() {
        let base = baseline(&[("a", 1000.0), ("old", 5.0)]);
        let table = Table::new(&[measured("a", 1000.0), measured("new", 1.0)], Some(&base));
        assert_eq!(
            table.failures,
            [
                "new: not in the baseline",
                "old: in the baseline, no longer measured"
            ]
        );
        let none = Table::new(&[measured("a", 1.0)], None);
        assert_eq!(none.failures, [format!("no baseline at {BASELINE}")]);
    }

    #[test]
    fn totals_reads_the_profile_line() {
        let profile =
            "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 42\ntotals: 42\n";
        assert_eq!(totals(profile), Some(42));
        assert_eq!(totals("events: Ir\n"), None);
    }
}
