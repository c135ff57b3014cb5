//! The workspace's crate for cross-crate and real-server tests, and the tidy tests that keep
//! the workspace's shape honest (rust-analyzer's style: plain tests over the sources and
//! `cargo metadata`, run by `cargo test`). Real servers (OpenBao, Cerbos) come from
//! `secrets-test-support`'s launcher; without them a test prints `SKIP` locally and fails
//! under `CI=true` (`cargo xtask services install` installs them).
//!
//! One test binary per subject; the helpers they share are in `tests/common/` (KV v2,
//! `SecretsClient`, `VaultClient` and CLI fixtures over `secrets-test-support`):
//!
//! - `tests/kv2/`: the KV v2 suite, one case list (`kv2/main.rs`, the cases in `kv2/cases.rs`)
//!   that the `openbao` and `hashicorp` providers both run against a real OpenBao, and the
//!   conformance table (`kv2/conformance.rs`) that the file provider runs too.
//! - `tests/kv2_faults.rs`: KV v2 transport faults and request shapes, against the
//!   fault-injecting server.
//! - `tests/kv2_canary.rs`: planted values never reach a provider's errors or logs (its own
//!   binary: it installs a global tracing subscriber).
//! - `tests/pep_cerbos.rs`: the PEP (secret-pep) against a real Cerbos serving the test
//!   policies.
//! - `tests/secrets_client/`: `SecretsClient` (blocking reads, bootstrap precedence, cache,
//!   one configuration for every client, logins under faults, outages, routing, TLS
//!   settings) against real files and a real OpenBao.
//! - `tests/secrets_client_canary.rs`, `tests/vault_client_canary.rs`: the clients' canaries.
//! - `tests/vault_client/`: `VaultClient` (sdk + PEP + providers) against a real OpenBao behind
//!   a counting proxy and a real Cerbos: reads, the PEP's resource identity and batches, 1 000
//!   tasks racing one grant.
//! - `tests/error_codes.rs`: `docs/errors.md` lists exactly the codes the crates return, each
//!   code in one row, and no known condition has two codes.
//! - `tests/tidy.rs`: dependencies follow the layers of `docs/ARCHITECTURE.md`, only
//!   `secret-http` uses rustls directly, and every crate root has `//!` docs with an example
//!   and `#![forbid(unsafe_code)]`.
//!
//! - `tests/audit_kafka.rs`: the Kafka audit sink against a real Kafka-protocol broker
//!   (tansu), read back with a stock client: keyed, ordered per key, whole; a broker restart
//!   and a clean shutdown lose nothing; an exact drop count; a broker that never answers.
//! - `tests/cli/`: the `secrets` binary end to end (`resolve`, `exec`, `get`, `audit-hash`) on
//!   files, a scripted server, a real OpenBao, a real Cerbos and (`get` with Kafka) tansu. Only the CLI package's own tests can
//!   name its binary (`CARGO_BIN_EXE_secrets`), so `common/cli.rs` builds it once per run with
//!   `cargo build -p secrets-cli --bin secrets`, from the sources under test.
//! - `tests/leak_suite.rs` (+ `leak_suite/`): one leak suite for the whole SDK: every path of
//!   both clients, failing audit sinks and the CLI (also exporting over OTLP to a real
//!   receiver), with canary values, tokens, `jti`, subject and path; text and JSON logs at
//!   TRACE, exported spans, metrics, audit events, errors and CLI output all scanned.
//! - `tests/telemetry_otlp.rs`: `secrets resolve`/`get` export spans and metrics over
//!   OTLP/HTTP to the test support's receiver (decoded with `opentelemetry-proto`); a silent
//!   collector cannot hang the CLI.
//! - `tests/telemetry_census.rs`: every metric label value the full run emitted (the census
//!   `cargo xtask ci` collects) is from a closed set.
//!
//! Suites of one crate without a server stay beside it (`secret-pep/tests/authzen_wire.rs`,
//! `secret-providers/tests/file_special.rs`, `secrets-cli/tests/lint.rs`, …).
//!
//! The library holds the helpers the tidy tests share:
//!
//! ```
//! let root = secrets_integration_tests::workspace_root();
//! assert!(root.join("Cargo.toml").is_file());
//! let crates = secrets_integration_tests::crate_dirs();
//! assert!(crates.iter().any(|dir| dir.ends_with("secret-uri")));
//!
//! let json = secrets_integration_tests::Json::parse(r#"{"packages": [{"name": "a\u0062"}]}"#)?;
//! assert_eq!(json.get("packages").items()[0].get("name").as_str(), Some("ab"));
//! # Ok::<(), String>(())
//! ```
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};

/// The workspace root: the parent of this crate's folder. Read when the test runs (cargo sets
/// `CARGO_MANIFEST_DIR` for it), so that a test binary reused from another checkout's build
/// still checks the checkout it runs in.
#[must_use]
pub fn workspace_root() -> PathBuf {
    let here = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    here.parent()
        .map_or_else(|| here.clone(), Path::to_path_buf)
}

/// Every `crates/<name>/` folder that has a `Cargo.toml`, sorted.
#[must_use]
pub fn crate_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(workspace_root().join("crates"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.join("Cargo.toml").is_file())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// Every `.rs` file under `dir`, recursively, sorted.
#[must_use]
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.filter_map(Result::ok).map(|entry| entry.path()) {
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `path` relative to the workspace root, with `/` separators, for messages.
#[must_use]
pub fn display_path(path: &Path) -> String {
    let root = workspace_root();
    let relative = path.strip_prefix(&root).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A JSON value, parsed by [`Json::parse`]: enough to read `cargo metadata` without a
/// dependency (this crate builds in seconds and adds nothing to the lock file).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`, and what [`Json::get`] gives for a missing key.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written.
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, in document order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses one JSON document.
    ///
    /// # Errors
    /// The byte offset and what was expected there.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parser = JsonParser {
            bytes: text.as_bytes(),
            at: 0,
        };
        let value = parser.value()?;
        parser.skip_space();
        if parser.at == parser.bytes.len() {
            Ok(value)
        } else {
            Err(format!("trailing characters at byte {}", parser.at))
        }
    }

    /// The member `key` of an object, else [`Json::Null`].
    #[must_use]
    pub fn get(&self, key: &str) -> &Self {
        match self {
            Self::Object(members) => members
                .iter()
                .find(|(name, _)| name == key)
                .map_or(&Self::Null, |(_, value)| value),
            _ => &Self::Null,
        }
    }

    /// The text of a string.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The items of an array; nothing for anything else.
    #[must_use]
    pub fn items(&self) -> &[Self] {
        match self {
            Self::Array(items) => items,
            _ => &[],
        }
    }
}

struct JsonParser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl JsonParser<'_> {
    fn skip_space(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        let found = self.bytes.get(self.at) == Some(&byte);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(format!(
                "expected `{}` at byte {}",
                char::from(byte),
                self.at
            ))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.skip_space();
        match self.bytes.get(self.at) {
            Some(b'{') => {
                self.at += 1;
                let mut members = Vec::new();
                if !self.eat(b'}') {
                    loop {
                        self.skip_space();
                        let key = self.string()?;
                        self.expect(b':')?;
                        members.push((key, self.value()?));
                        if self.eat(b'}') {
                            break;
                        }
                        self.expect(b',')?;
                    }
                }
                Ok(Json::Object(members))
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.value()?);
                        if self.eat(b']') {
                            break;
                        }
                        self.expect(b',')?;
                    }
                }
                Ok(Json::Array(items))
            }
            Some(b'"') => self.string().map(Json::String),
            _ => self.word(),
        }
    }

    fn word(&mut self) -> Result<Json, String> {
        let start = self.at;
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.'))
        {
            self.at += 1;
        }
        match &self.bytes[start..self.at] {
            b"null" => Ok(Json::Null),
            b"true" => Ok(Json::Bool(true)),
            b"false" => Ok(Json::Bool(false)),
            number
                if number
                    .first()
                    .is_some_and(|b| b.is_ascii_digit() || *b == b'-') =>
            {
                Ok(Json::Number(String::from_utf8_lossy(number).into_owned()))
            }
            _ => Err(format!("expected a JSON value at byte {start}")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        if self.bytes.get(self.at) != Some(&b'"') {
            return Err(format!("expected a string at byte {}", self.at));
        }
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let byte = *self
                .bytes
                .get(self.at)
                .ok_or_else(|| "unterminated string".to_owned())?;
            self.at += 1;
            match byte {
                b'"' => break,
                b'\\' => {
                    let escape = *self
                        .bytes
                        .get(self.at)
                        .ok_or_else(|| "unterminated escape".to_owned())?;
                    self.at += 1;
                    let ch = match escape {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hex = self
                                .bytes
                                .get(self.at..self.at + 4)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or_else(|| format!("bad \\u escape at byte {}", self.at))?;
                            self.at += 4;
                            // Paths and names in cargo metadata need no surrogate pairs.
                            char::from_u32(hex).unwrap_or(char::REPLACEMENT_CHARACTER)
                        }
                        other => char::from(other),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                other => out.push(other),
            }
        }
        String::from_utf8(out).map_err(|e| format!("a string is not UTF-8: {e}"))
    }
}
