//! Development tasks for secrets-sdk, run as `cargo xtask <task>`.
//!
//! If `cargo xtask ci` passes locally, CI (`.ci/run`) is green: it is the same command.

mod bench;
mod callgrind;
mod peers;
mod services;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, bail};

const HELP: &str = "\
cargo xtask <task>

Tasks:
  ci                        fmt check, clippy -D warnings, all tests (real servers), doc -D warnings,
                            cargo deny check bans licenses sources
  services up|down|status|install
                            install (under .tools/) and start/stop the real servers tests need
  bench [--json PATH]       run the benchmarks; write one JSON object per scenario
                            (default PATH: target/bench-results.json)
  bench --check [--update]  instruction counts (callgrind) of the no-I/O scenarios against the
                            committed baseline: fails when one grows by more than 10 %;
                            --update rewrites bench/instructions-baseline.json (commit it)
  bench --peers [--rounds N]
                            the same KV v2 read with vaultrs, vault-client-rs and secrets-sdk
                            (peers/, outside the workspace)
  fuzz [--seconds N]        short cargo-fuzz run of every fuzz target (stable toolchain with
                            RUSTC_BOOTSTRAP=1; installs cargo-fuzz if missing)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("services") => services::run(rest),
        Some("bench") => bench::run(rest),
        Some("fuzz") => fuzz(rest),
        _ => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root (xtask lives one level below it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    // `cargo run` gave this process its package's variables; build scripts that watch one
    // (ring's watches CARGO_MANIFEST_DIR) would rebuild everything above them, and again at
    // the next plain build.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&&*name)
        {
            cmd.env_remove(&*name);
        }
    }
    cmd
}

/// Runs a command, echoing it, and fails when it fails.
fn run(mut cmd: Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}").replace('"', "");
    eprintln!("\n$ {shown}");
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    eprintln!("  ({:.1}s)", start.elapsed().as_secs_f64());
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

fn ci() -> anyhow::Result<()> {
    let start = Instant::now();
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run(fmt)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy)?;

    // The integration tests start their own servers from `.tools/`; install them first.
    services::ensure_installed()?;
    // Every metric label set the suite records (feature `census`, on with --all-features)
    // lands in this folder; the census test then checks each against its closed set.
    let census = root().join("target").join("telemetry-census");
    if census.exists() {
        std::fs::remove_dir_all(&census)
            .with_context(|| format!("could not clear {}", census.display()))?;
    }
    let mut test = cargo();
    test.args(["test", "--workspace", "--all-features"])
        .env("SECRETS_TELEMETRY_CENSUS_DIR", &census);
    run(test)?;
    let mut labels = cargo();
    labels
        .args([
            "test",
            "--all-features",
            "-p",
            "secrets-integration-tests",
            "--test",
            "telemetry_census",
            "--",
            "--ignored",
            "--exact",
            "every_label_the_full_run_emitted_is_from_a_closed_set",
        ])
        .env("SECRETS_TELEMETRY_CENSUS_DIR", &census);
    run(labels)?;

    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps", "--all-features"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run(doc)?;

    // The deterministic performance guard: instruction counts against the baseline.
    callgrind::check()?;

    ensure_cargo_tool("cargo-deny", "deny")?;
    let mut deny = cargo();
    // `advisories` needs the advisory database from the network, which CI does not have.
    deny.args([
        "deny",
        "--all-features",
        "check",
        "bans",
        "licenses",
        "sources",
    ]);
    run(deny)?;

    eprintln!("\nci: all green in {:.0}s", start.elapsed().as_secs_f64());
    Ok(())
}

/// Installs a cargo subcommand with `cargo install --locked` when it is missing.
fn ensure_cargo_tool(package: &str, subcommand: &str) -> anyhow::Result<()> {
    let present = cargo()
        .args([subcommand, "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    let mut install = cargo();
    install.args(["install", "--locked", package]);
    run(install)
}

/// The cargo-fuzz targets under `fuzz/`, each with its seed folder `fuzz/seeds/<target>`.
const FUZZ_TARGETS: &[&str] = &[
    "parse",
    "context_headers",
    "audit_record",
    "kv2_metadata",
    "verified_caller",
    "db_replies",
    "template",
    "config",
    "bootstrap",
    "yaml_flow",
];

/// A short cargo-fuzz run of every target, `seconds` each. cargo-fuzz needs nightly
/// features (sanitizer flags); the stable toolchain provides them with `RUSTC_BOOTSTRAP=1`,
/// so no nightly toolchain is needed.
fn fuzz(args: &[String]) -> anyhow::Result<()> {
    let seconds: u32 = match args {
        [] => 30,
        [flag, n] if flag == "--seconds" => n.parse().context("--seconds takes a whole number")?,
        _ => bail!("usage: cargo xtask fuzz [--seconds N]"),
    };
    let has_fuzz = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_fuzz {
        let mut install = cargo();
        install.args(["install", "--locked", "cargo-fuzz"]);
        run(install)?;
    }
    for target in FUZZ_TARGETS {
        let corpus = root().join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let mut cmd = Command::new("cargo");
        cmd.current_dir(root().join("fuzz"))
            .env_remove("CARGO")
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", target])
            .arg(&corpus)
            .arg(root().join("fuzz/seeds").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"));
        run(cmd)?;
    }
    Ok(())
}
