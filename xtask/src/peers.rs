//! `cargo xtask bench --peers`: the same KV v2 read with vaultrs, vault-client-rs and
//! secrets-sdk, from the `peers/` crate outside the workspace, beside a raw hyper floor.
//!
//! Builds and runs `peers/` in release (its own lockfile, its build in `target/peers`), then
//! writes its Markdown table with the date, the machine, rustc and the command to
//! `docs/peers.md`, and the same table into README.md's last section, "Peers side by side".

use std::process::Command;

use anyhow::{Context, bail};

use crate::{cargo, root, services};

/// README.md's section for the latest table (replaced in place, appended when missing).
const README_SECTION: &str = "## Peers side by side";

/// `cargo xtask bench --peers [--rounds N]`.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    match args {
        [] => {}
        [flag, n] if flag == "--rounds" && n.parse::<u32>().is_ok_and(|n| n > 0) => {}
        _ => bail!("usage: cargo xtask bench --peers [--rounds N]"),
    }
    services::ensure_installed()?;
    // The peers crate has a `[workspace]` table of its own, so secrets-test-support would
    // look for `.tools/` under `peers/`: name the binary.
    let bao = secrets_test_support::bao_bin().context("the bao binary")?;
    let target = root().join("target");
    std::fs::create_dir_all(&target)?;
    let json = target.join("peers-results.jsonl");
    let table_path = target.join("peers-table.md");
    for stale in [&json, &table_path] {
        let _ = std::fs::remove_file(stale);
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "--manifest-path",
        "peers/Cargo.toml",
        "--",
    ])
    .args(args)
    // The fuzz task's reason: the inner cargo must not inherit this one's identity.
    .env_remove("CARGO")
    .env("CARGO_TARGET_DIR", target.join("peers"))
    .env(secrets_test_support::BAO_BIN_ENV, &bao)
    .env("SECRETS_BENCH_JSON", &json)
    .env("SECRETS_PEERS_TABLE", &table_path);
    crate::run(cmd)?;

    let table = std::fs::read_to_string(&table_path)
        .with_context(|| format!("the peers run wrote no table at {}", table_path.display()))?;
    let machine = Machine::probe(load.split_whitespace().take(3).collect::<Vec<_>>());
    let command = if args.is_empty() {
        "cargo xtask bench --peers".to_owned()
    } else {
        format!("cargo xtask bench --peers {}", args.join(" "))
    };

    let doc = root().join("docs/peers.md");
    std::fs::write(&doc, peers_doc(&table, &machine, &command))
        .with_context(|| format!("writing {}", doc.display()))?;
    let readme = root().join("README.md");
    let text = std::fs::read_to_string(&readme)
        .with_context(|| format!("reading {}", readme.display()))?;
    std::fs::write(
        &readme,
        with_section(&text, &readme_section(&table, &machine)),
    )
    .with_context(|| format!("writing {}", readme.display()))?;
    eprintln!(
        "bench --peers: wrote {}, {} and the README's \"Peers side by side\"",
        json.display(),
        doc.display()
    );
    Ok(())
}

/// Where and when the run happened.
struct Machine {
    date: String,
    cpus: usize,
    cpu_model: String,
    kernel: String,
    rustc: String,
    load: String,
}

impl Machine {
    fn probe(load: Vec<&str>) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        Self {
            date: output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| output("uname", &["-r"]), |k| k.trim().to_owned()),
            rustc: output("rustc", &["--version"]),
            load: load.join(" "),
        }
    }

    /// `2 CPUs (AMD EPYC …), Linux 6.1.0`.
    fn summary(&self) -> String {
        format!(
            "{} CPUs ({}), Linux {}",
            self.cpus, self.cpu_model, self.kernel
        )
    }
}

/// A command's first line of output, or `unknown`.
fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn peers_doc(table: &str, machine: &Machine, command: &str) -> String {
    format!(
        "# Peers side by side

The same KV v2 read of the same secret from the same real OpenBao dev server with the Rust \
clients a user would pick instead of ours, beside a raw hyper floor. Written by `{command}` \
(the `peers/` crate, outside the workspace like `fuzz/`, so CI builds stay lean); this file \
holds the latest run.

## Latest run

- Date: {date}
- Machine: {summary}; load average at start {load}
- Toolchain: {rustc}, release profile
- Command: `{command}` (runs `cargo run --release --manifest-path peers/Cargo.toml` with \
`CARGO_TARGET_DIR=target/peers`; JSON lines in `target/peers-results.jsonl`)

{table}
## What is measured

- **Every op is a real read.** Each client sends `GET /v1/secret/data/bench/peer`, takes the \
`password` field out of the reply and compares it with the value written: the floor is \
hyper-util's pooled client with a `serde_json::Value` parse (`secrets-test-support`'s \
`floor::HyperFloor`); vaultrs is `kv2::read` into a `serde_json::Value`; vault-client-rs is \
`kv2(\"secret\").read_field(path, \"password\")`; secrets-sdk is a `SecretsClient` with a \
KV v2 token bootstrap resolving `openbao+kv2://secret/bench/peer#password` with \
`ResolveOptions::refresh()` (the cache skipped). Before anything is timed, every client reads \
through a counting proxy that checks one request reached the server per read (and one in \
all for the cache hit).
- **The cache hit is context, not a peer**: `resolve` of the same URI on a warm cache, which \
makes no request. The peers have no cache to compare it with.
- **Sequential**: one task on a 2-worker multi-thread tokio runtime reads in a loop; wall \
time per read, p50 and p99.
- **64 concurrent**: 64 tasks on the same runtime read at once; reads per second over the \
block's wall time, and each read's latency under that load (p99).
- **CPU per op**: the process's user + system CPU time (`CLOCK_PROCESS_CPUTIME_ID`, every \
thread: the caller's runtime and any runtime a client keeps of its own) over the measured \
loop, divided by the reads. The server runs in another process and is not counted. On \
loopback the server dominates wall time, so CPU per op is where a client's own cost shows; \
`× floor` columns divide by the floor's figure from the same run.
- **Noise**: clients alternate in rounds, the order rotating each round, so a busy moment of \
the machine hits all of them alike. Wall-clock figures on these machines still swing by tens \
of percent between runs; compare ratios within one run.
",
        date = machine.date,
        summary = machine.summary(),
        load = machine.load,
        rustc = machine.rustc,
    )
}

fn readme_section(table: &str, machine: &Machine) -> String {
    format!(
        "{README_SECTION}

The same KV v2 read from the same OpenBao dev server with vaultrs, vault-client-rs and \
secrets-sdk, beside a raw hyper floor: `cargo xtask bench --peers`, {date}, {summary}, \
{rustc}. How it is measured, and what each column means: [docs/peers.md](docs/peers.md).

{table}",
        date = machine.date,
        summary = machine.summary(),
        rustc = machine.rustc,
    )
}

/// `text` with its `## Peers side by side` section (up to the next `## ` heading) replaced by
/// `section`, or with `section` appended when there is none.
fn with_section(text: &str, section: &str) -> String {
    let section = section.trim_end();
    let start = if text.starts_with(README_SECTION) {
        Some(0)
    } else {
        text.find(&format!("\n{README_SECTION}\n")).map(|i| i + 1)
    };
    match start {
        Some(start) => {
            let after = &text[start + README_SECTION.len()..];
            let rest = after.find("\n## ").map_or("", |i| &after[i + 1..]);
            if rest.is_empty() {
                format!("{}{section}\n", &text[..start])
            } else {
                format!("{}{section}\n\n{rest}", &text[..start])
            }
        }
        None => format!("{}\n\n{section}\n", text.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_is_appended_once_then_replaced_in_place() {
        let readme = "# secrets-sdk\n\n## Development\n\ncargo xtask ci\n";
        let first = with_section(readme, "## Peers side by side\n\n| a |\n");
        assert_eq!(
            first,
            "# secrets-sdk\n\n## Development\n\ncargo xtask ci\n\n## Peers side by side\n\n| a |\n"
        );
        let second = with_section(&first, "## Peers side by side\n\n| b |\n");
        assert_eq!(second, first.replace("| a |", "| b |"));
        // A section another writer added after it survives.
        let later = format!("{first}\n## Licence\n\nMIT\n");
        assert_eq!(
            with_section(&later, "## Peers side by side\n\n| c |\n"),
            later.replace("| a |", "| c |")
        );
    }
}
