//! `cargo xtask bench`: the benchmark binaries, their JSON lines gathered into one file;
//! `--check` (the callgrind guard) and `--peers` (the peers side by side) live in their own
//! modules.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::{cargo, root, services};

/// Benchmarks `cargo xtask bench` runs, as (package, bench target, features). Each appends JSON
/// lines to the file named by `SECRETS_BENCH_JSON`.
pub(crate) const BENCHES: &[(&str, &str, &str)] = &[
    ("secret-uri", "parse", ""),
    ("secret-providers", "kv2", ""),
    ("secret-pep", "pep", ""),
    ("secret-verify", "verify", ""),
    ("secret-audit", "audit_publish", "kafka"),
    ("secrets-sdk", "resolve", ""),
    ("secrets-sdk", "vault", "redis"),
    ("secrets-sdk", "soak", ""),
];

/// `cargo xtask bench [--json PATH] | --check | --peers`.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        Some("--check") => return crate::callgrind::run(&args[1..]),
        Some("--peers") => return crate::peers::run(&args[1..]),
        _ => {}
    }
    let json_path = match args {
        [] => root().join("target/bench-results.json"),
        [flag, path] if flag == "--json" => PathBuf::from(path),
        _ => bail!(
            "usage: cargo xtask bench [--json PATH] | --check [--update] | --peers [--rounds N]"
        ),
    };
    services::ensure_installed()?;
    let lines_path = root().join("target/bench-results.jsonl");
    std::fs::create_dir_all(root().join("target"))?;
    let _ = std::fs::remove_file(&lines_path);
    for (package, target, features) in BENCHES {
        let mut cmd = cargo();
        cmd.args(["bench", "--package", package, "--bench", target]);
        if !features.is_empty() {
            cmd.args(["--features", features]);
        }
        cmd.env("SECRETS_BENCH_JSON", &lines_path);
        crate::run(cmd)?;
    }
    let text = std::fs::read_to_string(&lines_path)
        .with_context(|| format!("no results in {}", lines_path.display()))?;
    let mut scenarios = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).with_context(|| format!("bad result line: {line}"))?;
        let Some(serde_json::Value::String(name)) = object.remove("scenario") else {
            bail!("result line without a scenario: {line}");
        };
        scenarios.insert(name, serde_json::Value::Object(object));
    }
    let pretty = serde_json::to_string_pretty(&scenarios)?;
    std::fs::write(&json_path, format!("{pretty}\n"))
        .with_context(|| format!("writing {}", json_path.display()))?;
    println!("{pretty}");
    eprintln!("bench: wrote {}", json_path.display());
    Ok(())
}
