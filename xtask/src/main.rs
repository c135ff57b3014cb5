//! Development tasks for secrets-sdk, run as `cargo xtask <task>`.

mod services;

use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <task>

Tasks:
  ci                      fmt check, clippy -D warnings, tests (real servers), doc -D warnings, cargo deny
  services up|down|status install (under .tools/) and start/stop the real servers tests need
  bench [--json PATH]     run the benchmarks and write one JSON object per scenario
  fuzz [--seconds N]      short cargo-fuzz smoke run of the URI parser (needs nightly)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("services") => services::run(&args[1..]),
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
