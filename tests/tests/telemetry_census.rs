//! The label census: every metric label value the whole test run emitted is from a closed set.
//!
//! With feature `census` (on in `cargo test --workspace --all-features`) and
//! `SECRETS_TELEMETRY_CENSUS_DIR` set, `secret-telemetry` appends every distinct label set a
//! process records to `<dir>/<pid>.jsonl` — the test binaries, and the `secrets` binaries the
//! CLI suites start. `cargo xtask ci` sets the folder for the suite, then runs
//! [`every_label_the_full_run_emitted_is_from_a_closed_set`] (ignored otherwise) over it.
//!
//! Closed sets: metric names from `secret_telemetry::names::metric::ALL`; per metric, only its
//! documented label keys; `provider`, `cache`, `outcome`, `decision` values from the
//! `names` sets; `code` and `reason` values from the code table of `docs/errors.md` (plus
//! `grant`/`pdp` for permits and the audit drop reasons). A path, URI, subject, key or token
//! in a label fails the check.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use secret_telemetry::census::CENSUS_DIR;
use secret_telemetry::names::{self, label, metric};
use secrets_integration_tests::workspace_root;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The labels each metric may carry.
fn keys_of(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        metric::RESOLVE_DURATION => &[label::PROVIDER, label::CACHE, label::OUTCOME],
        metric::CACHE_HITS | metric::CACHE_MISSES | metric::STALE_SERVED => &[label::PROVIDER],
        metric::CACHE_EVICTIONS | metric::AUDIT_QUEUE_DEPTH => &[],
        metric::PROVIDER_ERRORS => &[label::PROVIDER, label::CODE],
        metric::PEP_DECISIONS => &[label::OUTCOME, label::REASON],
        metric::PDP_DURATION => &[label::DECISION],
        metric::AUDIT_DROPPED => &[label::REASON],
        metric::TOKEN_TTL_REMAINING | metric::LAST_SUCCESSFUL_FETCH => &[label::PROVIDER],
        metric::STATE_STORE_FAILURES => &[label::STORE, label::OUTCOME],
        _ => return None,
    })
}

/// The stable codes of `docs/errors.md`'s table (first column).
fn error_codes() -> BTreeSet<String> {
    let path = workspace_root().join("docs/errors.md");
    let text = fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_owned)
        .collect()
}

/// Whether `value` is allowed for `key` on `name`.
fn allowed(name: &str, key: &str, value: &str, codes: &BTreeSet<String>) -> bool {
    match key {
        label::PROVIDER => names::PROVIDERS.contains(&value),
        label::CACHE => names::CACHE_OUTCOMES.contains(&value),
        label::OUTCOME if name == metric::PEP_DECISIONS => names::PEP_OUTCOMES.contains(&value),
        label::OUTCOME if name == metric::STATE_STORE_FAILURES => {
            names::STATE_STORE_OUTCOMES.contains(&value)
        }
        label::STORE => names::STATE_STORES.contains(&value),
        label::OUTCOME => names::OUTCOMES.contains(&value),
        label::DECISION => names::PDP_DECISIONS.contains(&value),
        label::CODE => codes.contains(value),
        label::REASON if name == metric::AUDIT_DROPPED => names::DROP_REASONS.contains(&value),
        label::REASON => names::PERMIT_REASONS.contains(&value) || codes.contains(value),
        _ => false,
    }
}

/// `"metric key"` (or `"metric"` for an unlabelled one) → the values seen.
type Seen = BTreeMap<String, BTreeSet<String>>;

/// Everything the census in `dir` holds: (distinct label values, problems).
fn check(dir: &Path) -> Result<(Seen, Vec<String>), std::io::Error> {
    let codes = error_codes();
    let mut seen = Seen::new();
    let mut problems = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        for (n, line) in fs::read_to_string(&path)?.lines().enumerate() {
            let at = format!("{}:{}", path.display(), n + 1);
            let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
                problems.push(format!("{at}: not a census record"));
                continue;
            };
            let name = record["metric"].as_str().unwrap_or_default().to_owned();
            let Some(keys) = keys_of(&name) else {
                problems.push(format!("{at}: unknown metric {name:?}"));
                continue;
            };
            let labels = record["labels"].as_object().cloned().unwrap_or_default();
            for (key, value) in &labels {
                let value = value.as_str().unwrap_or_default();
                if !keys.contains(&key.as_str()) {
                    problems.push(format!(
                        "{at}: {name} carries an undocumented label {key:?}"
                    ));
                } else if !allowed(&name, key, value, &codes) {
                    problems.push(format!(
                        "{at}: {name} label {key}={value:?} is outside its closed set"
                    ));
                }
                seen.entry(format!("{name} {key}"))
                    .or_default()
                    .insert(value.to_owned());
            }
            if labels.is_empty() {
                seen.entry(name).or_default();
            }
        }
    }
    Ok((seen, problems))
}

#[test]
#[ignore = "run by `cargo xtask ci` after the whole suite, over SECRETS_TELEMETRY_CENSUS_DIR"]
fn every_label_the_full_run_emitted_is_from_a_closed_set() -> TestResult {
    let dir = std::env::var_os(CENSUS_DIR)
        .ok_or("set SECRETS_TELEMETRY_CENSUS_DIR to the folder the full test run wrote")?;
    let (seen, problems) = check(Path::new(&dir))?;
    for (metric_key, values) in &seen {
        eprintln!("census: {metric_key}: {values:?}");
    }
    assert!(
        problems.is_empty(),
        "label census:\n{}",
        problems.join("\n")
    );
    // A census that saw nothing proves nothing: the full run drives every instrument that
    // the suites exercise, the hot ones at least.
    for required in [
        metric::RESOLVE_DURATION,
        metric::CACHE_HITS,
        metric::CACHE_MISSES,
        metric::PROVIDER_ERRORS,
        metric::PEP_DECISIONS,
        metric::PDP_DURATION,
    ] {
        assert!(
            seen.keys().any(|k| k.starts_with(required)),
            "the full run recorded no {required}: is the census feature on and the folder set?"
        );
    }
    let values: usize = seen.values().map(BTreeSet::len).sum();
    eprintln!(
        "census: {} metric labels, {values} distinct values, all in closed sets",
        seen.len()
    );
    Ok(())
}

fn write(dir: &Path, lines: &[serde_json::Value]) -> std::io::Result<()> {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs::write(dir.join("1.jsonl"), text)
}

#[test]
fn the_check_rejects_a_planted_path_an_unknown_code_and_a_stray_label() -> TestResult {
    let dir = tempfile::tempdir()?;
    write(
        dir.path(),
        &[
            serde_json::json!({"metric": metric::CACHE_HITS, "labels": {"provider": "file"}}),
            serde_json::json!({"metric": metric::PROVIDER_ERRORS,
                "labels": {"provider": "file", "code": "primary/db.json"}}),
            serde_json::json!({"metric": metric::PEP_DECISIONS,
                "labels": {"outcome": "deny", "reason": "REPLAY", "subject": "alice"}}),
            serde_json::json!({"metric": metric::RESOLVE_DURATION,
                "labels": {"provider": "file:///etc", "cache": "hit", "outcome": "ok"}}),
            serde_json::json!({"metric": "secrets.by_path", "labels": {}}),
            serde_json::json!({"metric": metric::AUDIT_DROPPED, "labels": {"reason": "pdp"}}),
        ],
    )?;
    let (_, problems) = check(dir.path())?;
    let text = problems.join("\n");
    assert_eq!(problems.len(), 5, "{text}");
    assert!(text.contains("code=\"primary/db.json\""), "{text}");
    assert!(text.contains("undocumented label \"subject\""), "{text}");
    assert!(text.contains("provider=\"file:///etc\""), "{text}");
    assert!(
        text.contains("unknown metric \"secrets.by_path\""),
        "{text}"
    );
    assert!(text.contains("reason=\"pdp\""), "{text}");
    Ok(())
}

#[test]
fn the_check_accepts_every_closed_value() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut lines = Vec::new();
    for provider in names::PROVIDERS {
        for cache in names::CACHE_OUTCOMES {
            for outcome in names::OUTCOMES {
                lines.push(serde_json::json!({"metric": metric::RESOLVE_DURATION,
                    "labels": {"provider": provider, "cache": cache, "outcome": outcome}}));
            }
        }
        lines.push(serde_json::json!({"metric": metric::PROVIDER_ERRORS,
            "labels": {"provider": provider, "code": "NOT_FOUND"}}));
    }
    for outcome in names::PEP_OUTCOMES {
        for reason in names::PERMIT_REASONS
            .iter()
            .chain(&["REPLAY", "circuit_open"])
        {
            lines.push(serde_json::json!({"metric": metric::PEP_DECISIONS,
                "labels": {"outcome": outcome, "reason": reason}}));
        }
    }
    for reason in names::DROP_REASONS {
        lines.push(
            serde_json::json!({"metric": metric::AUDIT_DROPPED, "labels": {"reason": reason}}),
        );
    }
    lines.push(serde_json::json!({"metric": metric::CACHE_EVICTIONS, "labels": {}}));
    write(dir.path(), &lines)?;
    let (seen, problems) = check(dir.path())?;
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        seen[&format!("{} provider", metric::RESOLVE_DURATION)].len(),
        6
    );
    Ok(())
}

#[test]
fn every_metric_name_has_its_label_keys() {
    for name in metric::ALL {
        assert!(keys_of(name).is_some(), "{name} has no label keys here");
    }
    assert!(
        error_codes().contains("NOT_FOUND"),
        "docs/errors.md table not read"
    );
}
