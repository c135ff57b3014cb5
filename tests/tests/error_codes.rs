//! `docs/errors.md` and the code agree on the stable codes.
//!
//! A tidy test in rust-analyzer's style: it reads the sources of `crates/*/src` (tests left
//! out) with a small lexer and collects every string literal a code can come from:
//!
//! - the match arms of each `fn code(..) -> &'static str` and `fn as_str(..) -> &'static str`
//!   in an `impl` block (`UriError::code`, `DenyReason::code`, `PdpFailure::as_str`, …);
//! - constants that name a code and hold it (`const BAD_INPUT: &str = "BAD_INPUT"`);
//! - `code: "…"` fields of struct literals (`AuditEvent { code: "OK", .. }`).
//!
//! It then checks the table in `docs/errors.md` row by row: each code is in exactly one row, a
//! row names the items that return it, and every item returns exactly the codes the table gives
//! it. Finally, conditions that several crates raise must have one code (compared ignoring
//! case: the PDP causes are lower case by convention).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use secrets_integration_tests::{crate_dirs, display_path, rust_files, workspace_root};

/// `code`/`as_str` functions that return names, not codes. Each entry must still exist.
const NOT_CODES: &[(&str, &str)] = &[
    ("secret_uri::Provider::as_str", "a scheme's provider name"),
    ("secret_uri::Engine::as_str", "a scheme's engine name"),
    (
        "secrets_sdk::AuthMethod::as_str",
        "a bootstrap auth method name",
    ),
    (
        "secrets_sdk::CacheState::as_str",
        "a span field value (cache outcome)",
    ),
    (
        "secret_audit::EventType::as_str",
        "an audit event type name",
    ),
    (
        "secret_audit::SecurityProtocol::as_str",
        "a Kafka security protocol name (KAFKA_SECURITY_PROTOCOL)",
    ),
    (
        "secret_audit::SaslMechanism::as_str",
        "a Kafka SASL mechanism name (KAFKA_SASL_MECHANISM)",
    ),
];

/// Crates that may be absent (the new transport crate, until it lands): what the table and
/// the lists below say about their items is checked once they are in `crates/`.
const OPTIONAL_CRATES: &[&str] = &["secret_http"];

/// Whether `item` (`crate::…`) belongs to an optional crate that is not there.
fn absent(item: &str) -> bool {
    let krate = item.split("::").next().unwrap_or(item);
    OPTIONAL_CRATES.contains(&krate)
        && !workspace_root()
            .join("crates")
            .join(krate.replace('_', "-"))
            .join("Cargo.toml")
            .is_file()
}

/// Conditions more than one item raises, as (item, variant): they must share one code.
const CONDITIONS: &[(&str, &[(&str, &str)])] = &[
    (
        "the URI names a provider, engine or option that is not served",
        &[
            (
                "secret_providers::ProviderError::code",
                "UnsupportedProvider",
            ),
            ("secrets_sdk::Error::code", "UnsupportedProvider"),
        ],
    ),
    (
        "the read is not authorized",
        &[
            ("secret_pep::PepError::code", "AuthzDenied"),
            ("secret_pep::BatchFailure::code", "Deny"),
        ],
    ),
    (
        "the PDP gave no usable answer",
        &[
            ("secret_pep::PepError::code", "PdpUnavailable"),
            ("secret_pep::BatchFailure::code", "PdpUnavailable"),
        ],
    ),
    (
        "invalid configuration",
        &[
            ("secret_providers::ProviderError::code", "Config"),
            ("secret_pep::PepError::code", "Config"),
            ("secrets_sdk::Error::code", "Config"),
            ("secrets_cli::ConfigError.code", "code"),
            ("secret_http::HttpError::code", "Config"),
            ("secret_telemetry::OtlpError::code", "Config"),
        ],
    ),
    (
        "a local I/O operation failed",
        &[
            ("secret_providers::ProviderError::code", "Io"),
            ("secrets_test_support::Error::code", "Io"),
        ],
    ),
    (
        "a server answered with a status the caller does not expect",
        &[
            ("secret_providers::ProviderError::code", "UnexpectedStatus"),
            ("secrets_test_support::Error::code", "UnexpectedStatus"),
        ],
    ),
    (
        "a response is not what the protocol promises",
        &[
            ("secret_providers::ProviderError::code", "MalformedResponse"),
            ("secret_pep::PdpFailure::as_str", "Malformed"),
            ("secrets_test_support::Error::code", "BadResponse"),
        ],
    ),
    (
        "the connection could not be set up",
        &[
            ("secret_http::HttpError::code", "Connect"),
            ("secret_pep::PdpFailure::as_str", "Connect"),
        ],
    ),
    (
        "a request timed out",
        &[
            ("secret_providers::ProviderError::code", "Timeout"),
            ("secret_pep::PdpFailure::as_str", "Timeout"),
            ("secret_http::HttpError::code", "Timeout"),
        ],
    ),
    (
        "the TLS handshake failed",
        &[
            ("secret_providers::ProviderError::code", "Tls"),
            ("secret_pep::PdpFailure::as_str", "Tls"),
            ("secret_http::HttpError::code", "Tls"),
        ],
    ),
    (
        "a response is larger than its cap",
        &[
            ("secret_providers::ProviderError::code", "TooLarge"),
            ("secret_pep::PdpFailure::as_str", "TooLarge"),
            ("secret_http::HttpError::code", "TooLarge"),
        ],
    ),
];

/// Conditions allowed two codes for now, as (condition, why). Empty: every condition has one
/// code. An entry whose condition has come to one code fails the test, so that it is removed.
const KNOWN_SPLITS: &[(&str, &str)] = &[];

#[test]
fn the_table_lists_exactly_the_codes_the_code_returns() {
    let scanned = scan_workspace();
    let table = read_table(&workspace_root().join("docs/errors.md"));
    let mut problems = Vec::new();

    for (item, reason) in NOT_CODES {
        if !scanned.contains_key(*item) && !absent(item) {
            problems.push(format!(
                "NOT_CODES names `{item}` ({reason}), which no longer exists: remove it"
            ));
        }
    }
    let sources: BTreeMap<&str, BTreeSet<&str>> = scanned
        .iter()
        .filter(|(item, _)| !NOT_CODES.iter().any(|(name, _)| name == item))
        .filter(|(_, arms)| !arms.is_empty())
        .map(|(item, arms)| {
            let codes = arms.iter().map(|(_, code)| code.as_str()).collect();
            (item.as_str(), codes)
        })
        .collect();

    let mut rows_of_code: BTreeMap<&str, usize> = BTreeMap::new();
    let mut documented: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for row in &table {
        *rows_of_code.entry(&row.code).or_default() += 1;
        if row.raised_by.is_empty() || row.meaning.is_empty() {
            problems.push(format!(
                "docs/errors.md:{}: `{}` needs its items and a meaning",
                row.line, row.code
            ));
        }
        for item in row.raised_by.iter().filter(|item| !absent(item)) {
            documented.entry(item).or_default().insert(&row.code);
        }
    }
    for (code, rows) in &rows_of_code {
        if *rows > 1 {
            problems.push(format!(
                "docs/errors.md: `{code}` is in {rows} rows; one row per code"
            ));
        }
    }
    for (item, codes) in &sources {
        let listed = documented.get(item).cloned().unwrap_or_default();
        for code in codes.difference(&listed) {
            problems.push(format!(
                "`{item}` returns `{code}`, which docs/errors.md does not list for it"
            ));
        }
    }
    for (item, codes) in &documented {
        let Some(returned) = sources.get(item) else {
            problems.push(format!(
                "docs/errors.md names `{item}`, which returns no code (or does not exist)"
            ));
            continue;
        };
        for code in codes.difference(returned) {
            problems.push(format!(
                "docs/errors.md lists `{code}` for `{item}`, which never returns it"
            ));
        }
    }
    assert_no_problems(&problems);
}

#[test]
fn one_condition_has_one_code() {
    let scanned = scan_workspace();
    let mut problems = Vec::new();
    for (condition, members) in CONDITIONS {
        let mut codes = BTreeSet::new();
        for (item, variant) in members.iter().filter(|(item, _)| !absent(item)) {
            let code = scanned.get(*item).and_then(|arms| {
                arms.iter()
                    .find(|(name, _)| name == variant)
                    .map(|(_, code)| code.to_ascii_uppercase())
            });
            match code {
                Some(code) => {
                    codes.insert(code);
                }
                None => problems.push(format!(
                    "condition \"{condition}\": `{item}` has no `{variant}` arm returning a code; \
                     update CONDITIONS"
                )),
            }
        }
        let known = KNOWN_SPLITS.iter().find(|(name, _)| name == condition);
        match (codes.len() > 1, known) {
            (true, None) => problems.push(format!(
                "condition \"{condition}\" has {} codes: {codes:?}; give it one",
                codes.len()
            )),
            (false, Some(_)) => problems.push(format!(
                "condition \"{condition}\" has one code now: remove it from KNOWN_SPLITS"
            )),
            _ => {}
        }
    }
    for (condition, _) in KNOWN_SPLITS {
        if !CONDITIONS.iter().any(|(name, _)| name == condition) {
            problems.push(format!(
                "KNOWN_SPLITS names \"{condition}\", which is not in CONDITIONS"
            ));
        }
    }
    assert_no_problems(&problems);
}

#[test]
fn the_scanner_sees_arms_consts_and_fields_and_skips_tests() {
    let source = r##"
        /// `fn code` in a comment: { unbalanced
        impl Thing {
            pub const fn code(&self) -> &'static str {
                match self {
                    Self::One { .. } => "ONE",
                    Self::Two(x) if x == '{' => "TWO",
                    Self::Inner { source } => source.code(),
                }
            }
            fn other(&self) -> &'static str { match self { Self::A => "NOT_A_CODE" } }
        }
        impl<H: Hook + ?Sized> Hook for std::sync::Arc<H> {
            fn as_str(self) -> &'static str { match self { Self::X => "x_cause" } }
        }
        fn helper() -> impl Iterator<Item = u8> + 'static { std::iter::empty() }
        pub const BAD: &str = "BAD";
        const ENV: &str = "SOME_ENV_VAR";
        fn event() -> Event<'static> { Event { tenant: "t", code: "OK" } }
        #[cfg(test)]
        mod tests {
            impl Thing { fn code(&self) -> &'static str { match self { Self::T => "TEST_ONLY" } } }
            const TEST_ONLY: &str = "TEST_ONLY";
        }
    "##;
    let mut found = BTreeMap::new();
    scan_source("k", source, &mut found);
    let found: Vec<(String, Vec<(String, String)>)> = found.into_iter().collect();
    let arms = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    assert_eq!(
        found,
        [
            ("k::Arc::as_str".to_owned(), arms(&[("X", "x_cause")])),
            ("k::BAD".to_owned(), arms(&[("BAD", "BAD")])),
            ("k::Event.code".to_owned(), arms(&[("code", "OK")])),
            (
                "k::Thing::code".to_owned(),
                arms(&[("One", "ONE"), ("Two", "TWO")])
            ),
        ]
    );
}

fn assert_no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "docs/errors.md and the code disagree:\n  {}",
        problems.join("\n  ")
    );
}

/// One row of the table in `docs/errors.md`.
#[derive(Debug)]
struct Row {
    line: usize,
    code: String,
    raised_by: Vec<String>,
    meaning: String,
}

/// The rows of the table whose header starts `| Code |`. The code cell holds one backticked
/// code; the "Raised by" cell the backticked items (`crate::Type::fn`, `crate::CONST`,
/// `crate::Struct.code`) that return it.
fn read_table(path: &Path) -> Vec<Row> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rows = Vec::new();
    let mut in_table = false;
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let Some(inner) = line.trim().strip_prefix('|') else {
            in_table = false;
            continue;
        };
        let cells: Vec<&str> = inner
            .trim_end_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        if cells.first() == Some(&"Code") {
            assert!(
                rows.is_empty() && !in_table,
                "docs/errors.md:{line_no}: one table of codes, please"
            );
            in_table = true;
            continue;
        }
        if !in_table
            || cells
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue;
        }
        assert_eq!(
            cells.len(),
            3,
            "docs/errors.md:{line_no}: a row is | Code | Raised by | Meaning |"
        );
        let codes = backticked(cells[0]);
        assert!(
            codes.len() == 1 && is_code(&codes[0]),
            "docs/errors.md:{line_no}: the first cell holds one `CODE`, got {:?}",
            cells[0]
        );
        rows.push(Row {
            line: line_no,
            code: codes[0].clone(),
            raised_by: backticked(cells[1]),
            meaning: cells[2].to_owned(),
        });
    }
    assert!(!rows.is_empty(), "docs/errors.md has no `| Code |` table");
    rows
}

fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// `UPPER_SNAKE`, or `lower_snake` for the PDP causes.
fn is_code(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let upper = s
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    let lower = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    first_ok && (upper || lower)
}

fn is_upper_code(s: &str) -> bool {
    is_code(s) && s.starts_with(|c: char| c.is_ascii_uppercase())
}

/// Item (`crate::Type::fn`, …) → its (variant, code) arms, over every crate's `src/`.
type Scanned = BTreeMap<String, Vec<(String, String)>>;

fn scan_workspace() -> Scanned {
    let mut found = Scanned::new();
    for dir in crate_dirs() {
        let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let krate = name.replace('-', "_");
        let files = rust_files(&dir.join("src"));
        let texts: Vec<(String, String)> = files
            .iter()
            .map(|path| {
                let text = fs::read_to_string(path)
                    .unwrap_or_else(|e| panic!("{}: {e}", display_path(path)));
                (display_path(path), text)
            })
            .collect();
        // Modules declared `#[cfg(test)] mod name;` live in their own files.
        let mut test_modules = BTreeSet::from(["tests".to_owned()]);
        for (_, text) in &texts {
            test_modules.extend(test_module_files(&lex(text)));
        }
        for (path, text) in &texts {
            let stem = Path::new(path)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("");
            let in_test_dir = path.split('/').any(|part| test_modules.contains(part));
            if test_modules.contains(stem) || in_test_dir {
                continue;
            }
            scan_source(&krate, text, &mut found);
        }
    }
    found
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Str(String),
    Lifetime(String),
    Punct(&'static str),
    Other(char),
}

impl Tok {
    fn is(&self, punct: &str) -> bool {
        match self {
            Self::Punct(p) => *p == punct,
            Self::Other(c) => punct.len() == c.len_utf8() && punct.starts_with(*c),
            _ => false,
        }
    }

    fn ident(&self) -> Option<&str> {
        match self {
            Self::Ident(s) => Some(s),
            _ => None,
        }
    }
}

/// Rust tokens, enough to find items: comments dropped, char literals dropped, strings (raw
/// ones too) kept with their text, `=>`, `::` and `->` as one token.
fn lex(text: &str) -> Vec<Tok> {
    let c: Vec<char> = text.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let mut toks = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == '"' {
            let mut s = String::new();
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    s.push(c[i]);
                    i += 1;
                }
                if i < c.len() {
                    s.push(c[i]);
                }
                i += 1;
            }
            i += 1;
            toks.push(Tok::Str(s));
        } else if ch == 'r' && (at(i + 1) == '"' || (at(i + 1) == '#' && raw_start(&c, i + 1))) {
            i = lex_raw(&c, i + 1, &mut toks);
        } else if ch == 'b' && at(i + 1) == 'r' && raw_start(&c, i + 2) {
            i = lex_raw(&c, i + 2, &mut toks);
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                let start = i + 1;
                i += 1;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
                toks.push(Tok::Lifetime(c[start..i].iter().collect()));
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            toks.push(Tok::Ident(c[start..i].iter().collect()));
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
        } else {
            let two = [ch, at(i + 1)];
            let punct = match two {
                ['=', '>'] => Some("=>"),
                [':', ':'] => Some("::"),
                ['-', '>'] => Some("->"),
                _ => None,
            };
            match punct {
                Some(p) => {
                    toks.push(Tok::Punct(p));
                    i += 2;
                }
                None => {
                    toks.push(Tok::Other(ch));
                    i += 1;
                }
            }
        }
    }
    toks
}

/// Whether `c[i..]` is `#*"` (the rest of a raw string's opening).
fn raw_start(c: &[char], mut i: usize) -> bool {
    while c.get(i) == Some(&'#') {
        i += 1;
    }
    c.get(i) == Some(&'"')
}

/// Lexes a raw string whose `#`s (or `"`) start at `i`; returns the index after it.
fn lex_raw(c: &[char], mut i: usize, toks: &mut Vec<Tok>) -> usize {
    let mut hashes = 0;
    while c.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    i += 1;
    let start = i;
    while i < c.len() {
        if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
            toks.push(Tok::Str(c[start..i].iter().collect()));
            return i + 1 + hashes;
        }
        i += 1;
    }
    toks.push(Tok::Str(c[start..].iter().collect()));
    c.len()
}

/// For every `{`, `(`, `[`: the index of its closing token (or the end).
fn closing(toks: &[Tok]) -> Vec<usize> {
    let mut matched = vec![toks.len(); toks.len()];
    let mut stack = Vec::new();
    for (i, tok) in toks.iter().enumerate() {
        if tok.is("{") || tok.is("(") || tok.is("[") {
            stack.push(i);
        } else if (tok.is("}") || tok.is(")") || tok.is("]"))
            && let Some(open) = stack.pop()
        {
            matched[open] = i;
        }
    }
    matched
}

/// Whether an attribute `#[cfg(test)]` (or `#[cfg(all(test, …))]`) starts at `i`.
fn is_cfg_test(toks: &[Tok], i: usize) -> bool {
    let ident = |k: usize| toks.get(i + k).and_then(Tok::ident);
    toks[i].is("#")
        && toks.get(i + 1).is_some_and(|t| t.is("["))
        && ident(2) == Some("cfg")
        && toks.get(i + 3).is_some_and(|t| t.is("("))
        && (ident(4) == Some("test")
            || (ident(4) == Some("all")
                && toks.get(i + 5).is_some_and(|t| t.is("("))
                && ident(6) == Some("test")))
}

/// The index after the item that the `#[cfg(test)]` at `i` applies to.
fn skip_test_item(toks: &[Tok], matched: &[usize], mut i: usize) -> usize {
    // This attribute and any that follow.
    while toks.get(i).is_some_and(|t| t.is("#")) && toks.get(i + 1).is_some_and(|t| t.is("[")) {
        i = matched[i + 1] + 1;
    }
    while i < toks.len() {
        if toks[i].is(";") {
            return i + 1;
        }
        if toks[i].is("{") {
            return matched[i] + 1;
        }
        if toks[i].is("(") || toks[i].is("[") {
            i = matched[i];
        }
        i += 1;
    }
    i
}

/// The names of `#[cfg(test)] mod name;` declarations.
fn test_module_files(toks: &[Tok]) -> Vec<String> {
    let matched = closing(toks);
    let mut names = Vec::new();
    for i in 0..toks.len() {
        if !is_cfg_test(toks, i) {
            continue;
        }
        let mut j = matched[i + 1] + 1;
        while toks.get(j).is_some_and(|t| t.is("#")) {
            j = matched[j + 1] + 1;
        }
        if toks.get(j).and_then(Tok::ident) == Some("mod")
            && let Some(name) = toks.get(j + 1).and_then(Tok::ident)
            && toks.get(j + 2).is_some_and(|t| t.is(";"))
        {
            names.push(name.to_owned());
        }
    }
    names
}

/// Adds the code sources of one file of crate `krate` to `found`.
fn scan_source(krate: &str, text: &str, found: &mut Scanned) {
    let toks = lex(text);
    let matched = closing(&toks);
    // (open brace, close brace, type) of each `impl` block.
    let mut impls: Vec<(usize, usize, String)> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if is_cfg_test(&toks, i) {
            i = skip_test_item(&toks, &matched, i);
            continue;
        }
        let ident = toks[i].ident();
        let item_start = i == 0 || ["}", ";", "]", "{"].iter().any(|p| toks[i - 1].is(p));
        if ident == Some("impl") && item_start {
            if let Some((open, name)) = impl_header(&toks, i) {
                impls.push((open, matched[open], name));
            }
        } else if ident == Some("fn")
            && let Some(name @ ("code" | "as_str")) = toks.get(i + 1).and_then(Tok::ident)
            && let Some(body) = static_str_fn_body(&toks, &matched, i)
            && let Some((_, _, ty)) = impls
                .iter()
                .rev()
                .find(|(open, close, _)| *open < i && i < *close)
        {
            let arms = literal_arms(&toks[body..matched[body]]);
            found
                .entry(format!("{krate}::{ty}::{name}"))
                .or_default()
                .extend(arms);
        } else if ident == Some("const")
            && let Some((name, value)) = code_const(&toks, i)
        {
            found
                .entry(format!("{krate}::{name}"))
                .or_default()
                .push((name.clone(), value));
        } else if ident == Some("code")
            && toks.get(i + 1).is_some_and(|t| t.is(":"))
            && let Some(Tok::Str(value)) = toks.get(i + 2)
            && is_upper_code(value)
            && let Some(open) = (0..i).rev().find(|&j| toks[j].is("{") && matched[j] > i)
            && let Some(ty) = open.checked_sub(1).and_then(|j| toks[j].ident())
        {
            found
                .entry(format!("{krate}::{ty}.code"))
                .or_default()
                .push(("code".to_owned(), value.clone()));
        }
        i += 1;
    }
}

/// The `{` of the `impl` at `i` and the type it is for (`impl X`, `impl T for path::X<..>`).
fn impl_header(toks: &[Tok], i: usize) -> Option<(usize, String)> {
    let open = (i..toks.len()).find(|&j| toks[j].is("{") || toks[j].is(";"))?;
    if !toks[open].is("{") {
        return None;
    }
    let header = &toks[i + 1..open];
    let mut depth = 0i32;
    let mut after_for = None;
    for (k, tok) in header.iter().enumerate() {
        if tok.is("<") {
            depth += 1;
        } else if tok.is(">") && !(k > 0 && header[k - 1].is("-")) {
            depth -= 1;
        } else if depth == 0 && tok.ident() == Some("for") {
            after_for = Some(k + 1);
        }
    }
    let start = after_for.unwrap_or_else(|| {
        // Past the impl's own generics.
        if header.first().is_some_and(|t| t.is("<")) {
            let mut depth = 0;
            for (k, tok) in header.iter().enumerate() {
                if tok.is("<") {
                    depth += 1;
                } else if tok.is(">") {
                    depth -= 1;
                    if depth == 0 {
                        return k + 1;
                    }
                }
            }
        }
        0
    });
    let mut name = None;
    for tok in &header[start..] {
        if tok.is("<") || tok.ident() == Some("where") {
            break;
        }
        if let Some(id) = tok.ident() {
            name = Some(id.to_owned());
        }
    }
    Some((open, name?))
}

/// The index of the body's `{` when the `fn` at `i` returns `&'static str`.
fn static_str_fn_body(toks: &[Tok], matched: &[usize], i: usize) -> Option<usize> {
    let params = i + 2 + usize::from(toks.get(i + 2)?.is("<"));
    let params = (params..toks.len()).find(|&j| toks[j].is("("))?;
    let after = matched[params] + 1;
    let ret = [
        toks.get(after)?,
        toks.get(after + 1)?,
        toks.get(after + 2)?,
        toks.get(after + 3)?,
    ];
    let returns_static_str = ret[0].is("->")
        && ret[1].is("&")
        && *ret[2] == Tok::Lifetime("static".to_owned())
        && ret[3].ident() == Some("str");
    let body = after + 4;
    (returns_static_str && toks.get(body)?.is("{")).then_some(body)
}

/// The `Variant => "CODE"` arms of a body: each `=>` followed by a string literal, named by
/// the last `::Variant` of its pattern.
fn literal_arms(body: &[Tok]) -> Vec<(String, String)> {
    let mut arms = Vec::new();
    let mut arm_start = 0;
    for (k, tok) in body.iter().enumerate() {
        if !tok.is("=>") {
            continue;
        }
        if let Some(Tok::Str(value)) = body.get(k + 1)
            && is_code(value)
        {
            let variant = (arm_start..k)
                .rev()
                .find(|&j| j > 0 && body[j - 1].is("::") && body[j].ident().is_some())
                .and_then(|j| body[j].ident())
                .unwrap_or("?");
            arms.push((variant.to_owned(), value.clone()));
        }
        arm_start = k + 1;
    }
    arms
}

/// `const NAME: &str = "NAME";` (or `&'static str`): a constant that holds its own name.
fn code_const(toks: &[Tok], i: usize) -> Option<(String, String)> {
    let name = toks.get(i + 1)?.ident()?;
    let mut j = i + 2;
    if !(toks.get(j)?.is(":") && toks.get(j + 1)?.is("&")) {
        return None;
    }
    j += 2;
    if matches!(toks.get(j)?, Tok::Lifetime(_)) {
        j += 1;
    }
    if toks.get(j)?.ident() != Some("str") || !toks.get(j + 1)?.is("=") {
        return None;
    }
    match toks.get(j + 2)? {
        Tok::Str(value) if value == name && is_upper_code(value) => {
            Some((name.to_owned(), value.clone()))
        }
        _ => None,
    }
}
