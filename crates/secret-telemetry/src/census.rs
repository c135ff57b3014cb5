//! The label census (feature `census`, tests only): every distinct label set this process
//! records is appended once to `$SECRETS_TELEMETRY_CENSUS_DIR/<pid>.jsonl`, one JSON object
//! per line (`{"metric": …, "labels": {…}}`), so a test can check every label value a full
//! test run emitted against the closed sets of [`names`](crate::names). Without the feature,
//! or without the variable, nothing is written.

use opentelemetry::KeyValue;

/// The variable naming the folder the census writes to.
pub const CENSUS_DIR: &str = "SECRETS_TELEMETRY_CENSUS_DIR";

#[cfg(not(feature = "census"))]
#[inline(always)]
pub(crate) fn note(_metric: &'static str, _labels: &[KeyValue]) {}

#[cfg(feature = "census")]
pub(crate) fn note(metric: &'static str, labels: &[KeyValue]) {
    use std::collections::HashSet;
    use std::io::Write as _;
    use std::sync::{Mutex, OnceLock};

    static DIR: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();

    let Some(dir) = DIR.get_or_init(|| std::env::var_os(CENSUS_DIR).map(Into::into)) else {
        return;
    };
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.to_string().into()))
        .collect();
    let line = serde_json::json!({ "metric": metric, "labels": labels }).to_string();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !seen.insert(line.clone()) {
        return;
    }
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join(format!("{}.jsonl", std::process::id()));
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(file, "{line}");
    }
}
