//! Arbitrary text never panics `secrets_sdk::config` in any of its formats (YAML, JSON, TOML),
//! and what it says about a bad file keeps its promise of quoting nothing from it: a
//! `CONFIG_PARSE` error's field path is made of the struct's own names and list indexes, and
//! its reason is one of the schema-side forms (`missing field `port``, `invalid type,
//! expected u16`, `not valid YAML`, …). What parses has every reference found by the walk.
//!
//! Input: one byte picks the format, the rest is the text.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use secrets_sdk::config::{self, Format, LoadError, SecretRef};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Config {
    name: String,
    database: Option<Database>,
    #[serde(default)]
    servers: Vec<Server>,
    mode: Option<Mode>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Database {
    port: u16,
    password: SecretRef,
}

#[derive(Debug, Deserialize, Serialize)]
struct Server {
    host: String,
    token: Option<SecretRef>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Plain,
    Keyed { key: SecretRef },
}

const NAMES: &[&str] = &[
    "name", "database", "servers", "mode", "port", "password", "host", "token", "plain", "keyed",
    "key",
];

const REASONS: &[&str] = &[
    "not valid YAML",
    "not valid JSON",
    "not valid TOML",
    "too many flow collections",
    "missing field `",
    "duplicate field `",
    "invalid type",
    "invalid value",
    "invalid length",
    "unknown field",
    "unknown variant",
    "invalid secret URI [",
];

const FORMATS: [Format; 3] = [Format::Yaml, Format::Json, Format::Toml];

/// A field path names the struct's fields, list indexes and, for an error inside a key the
/// struct ignores, that key of the file (a name, as `serde_path_to_error` spells paths; a
/// key may itself hold dots).
fn check_field(field: &str) {
    if field == "." {
        return;
    }
    let mut rest = field;
    let mut first = true;
    while !rest.is_empty() {
        let (segment, after) = rest.split_once('.').unwrap_or((rest, ""));
        let name = segment.split('[').next().unwrap_or_default();
        let indexes_ok = segment.split('[').skip(1).all(|index| {
            index
                .strip_suffix(']')
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        });
        // A struct read from a sequence (`[…]` at the top) starts with an index.
        let known = NAMES.contains(&name) || (first && name.is_empty() && segment.starts_with('['));
        if !(known && indexes_ok) {
            // The file's own key (decoded, so not always a substring of the text; it may hold
            // dots and brackets), the last segment the path can name.
            return;
        }
        rest = after;
        first = false;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    let format = FORMATS[usize::from(pick) % FORMATS.len()];
    match config::from_str::<Config>(text, format) {
        Ok(config) => {
            let found = config::references_of(&config).expect("a parsed config walks");
            let expected = usize::from(config.database.is_some())
                + config.servers.iter().filter(|s| s.token.is_some()).count()
                + usize::from(matches!(config.mode, Some(Mode::Keyed { .. })));
            assert_eq!(found.len(), expected);
            let fields: BTreeSet<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
            assert_eq!(fields.len(), found.len(), "one path per reference");
            for (field, reference) in &found {
                check_field(field);
                assert!(reference.uri().is_some(), "a checked reference parsed");
            }
        }
        Err(LoadError::Parse { field, reason, .. }) => {
            check_field(&field);
            assert!(
                REASONS.iter().any(|r| reason.starts_with(r)),
                "a reason of another form: {reason:?}"
            );
            if let Some(name) = reason
                .strip_prefix("missing field `")
                .or_else(|| reason.strip_prefix("duplicate field `"))
            {
                assert!(NAMES.contains(&name.trim_end_matches('`')), "{reason:?}");
            }
        }
        Err(LoadError::Secrets { failures }) => {
            assert!(!failures.is_empty());
            for failure in &failures {
                check_field(&failure.field);
                assert!(failure.error.is_none(), "nothing was resolved");
            }
        }
        Err(other) => panic!("unexpected error: {other:?}"),
    }
});
