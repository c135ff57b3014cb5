//! Helpers for the benchmark binaries that `cargo xtask bench` runs.
//!
//! A bench binary checks [`json_path`]; when it is set, it measures with [`Latencies`] and
//! appends one JSON line per scenario with [`append`].

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// The file named by `SECRETS_BENCH_JSON`, when `cargo xtask bench` runs this binary.
#[must_use]
pub fn json_path() -> Option<PathBuf> {
    std::env::var_os("SECRETS_BENCH_JSON").map(PathBuf::from)
}

/// Per-operation latencies of one scenario, and (when measured with [`Meter`]) the process's
/// CPU time per operation.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<Duration>,
    cpu: Duration,
    cpu_ops: usize,
}

/// Measures one operation's wall time and the process's CPU time (every thread: the
/// client's runtime too; a server in another process is not counted).
///
/// ```
/// use secrets_test_support::bench::{Latencies, Meter};
///
/// let mut latencies = Latencies::default();
/// let meter = Meter::start();
/// std::hint::black_box((0..1000).sum::<u64>());
/// meter.stop(&mut latencies);
/// assert_eq!(latencies.len(), 1);
/// assert!(latencies.cpu_us_per_op().is_some());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Meter {
    wall: std::time::Instant,
    cpu: Duration,
}

impl Meter {
    /// Starts measuring.
    #[must_use]
    pub fn start() -> Self {
        Self {
            cpu: process_cpu(),
            wall: std::time::Instant::now(),
        }
    }

    /// Records the operation's wall and CPU time in `latencies`.
    pub fn stop(self, latencies: &mut Latencies) {
        let wall = self.wall.elapsed();
        latencies.push(wall);
        latencies.push_cpu(process_cpu().saturating_sub(self.cpu));
    }
}

impl Latencies {
    /// An empty set with room for `n` samples.
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        Self {
            samples: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    /// Records one operation.
    pub fn push(&mut self, d: Duration) {
        self.samples.push(d);
    }

    /// Records one operation's CPU time.
    pub fn push_cpu(&mut self, cpu: Duration) {
        self.cpu += cpu;
        self.cpu_ops += 1;
    }

    /// The process's mean CPU time per operation in microseconds, when measured.
    #[must_use]
    pub fn cpu_us_per_op(&self) -> Option<f64> {
        (self.cpu_ops > 0).then(|| self.cpu.as_secs_f64() * 1e6 / self.cpu_ops as f64)
    }

    /// How many operations were recorded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// `true` when nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The `q` quantile (0.0..=1.0) in microseconds, nearest-rank.
    #[must_use]
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.samples.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1].as_secs_f64() * 1e6
    }

    /// `{"scenario":…,"p50_us":…,"p99_us":…,"n":…}`, with `"client_cpu_us_per_op":…` when
    /// CPU was measured.
    #[must_use]
    pub fn json_line(&self, scenario: &str) -> String {
        let cpu = self
            .cpu_us_per_op()
            .map(|us| format!(",\"client_cpu_us_per_op\":{us:.3}"))
            .unwrap_or_default();
        format!(
            "{{\"scenario\":\"{scenario}\",\"p50_us\":{:.3},\"p99_us\":{:.3},\"n\":{}{cpu}}}",
            self.quantile_us(0.50),
            self.quantile_us(0.99),
            self.samples.len()
        )
    }
}

/// The CPU time (user and system, every thread) this process has used so far: the
/// `CLOCK_PROCESS_CPUTIME_ID` clock, in nanoseconds. CPU per operation, unlike wall time,
/// leaves out waiting (for a server in another process, for a wakeup), so it shows the
/// client's own cost.
#[must_use]
pub fn process_cpu() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or_default(),
        u32::try_from(now.tv_nsec).unwrap_or_default(),
    )
}

/// Appends one JSON line to `path` and echoes it on stdout.
///
/// # Errors
/// When the file cannot be opened or written.
pub fn append(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    println!("{line}");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{line}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut l = Latencies::with_capacity(100);
        for us in 1..=100u64 {
            l.push(Duration::from_micros(us));
        }
        assert!((l.quantile_us(0.5) - 50.0).abs() < 1e-9);
        assert!((l.quantile_us(0.99) - 99.0).abs() < 1e-9);
        assert_eq!(
            l.json_line("x"),
            "{\"scenario\":\"x\",\"p50_us\":50.000,\"p99_us\":99.000,\"n\":100}"
        );
    }
}

/// An audit transport that serializes each event to OCSF JSON and discards it: what a sink's
/// drainer does off the request path, without a broker, for benchmarks of the audit's
/// request-path cost.
#[cfg(feature = "pep")]
#[derive(Debug, Default)]
pub struct OcsfDiscard;

#[cfg(feature = "pep")]
impl secret_audit::Transport for OcsfDiscard {
    fn deliver<'a>(
        &'a mut self,
        batch: &'a [secret_audit::AuditEvent],
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), secret_audit::AuditError>> + Send + 'a>,
    > {
        for event in batch {
            std::hint::black_box(secret_audit::to_ocsf_bytes(event));
        }
        Box::pin(std::future::ready(Ok(())))
    }
}
