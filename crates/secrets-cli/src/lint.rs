//! `secrets lint`: find secret URIs in text files and report the invalid ones.
//!
//! Two parts: [`find_uris`] and [`scan_text`] are pure functions over text; [`run`] walks the
//! file system and prints. The walk is deterministic (folder entries sorted by name) so output
//! can be compared in CI.
//!
//! A URI is invalid when the parser or the mount guard refuses it, or when it carries a query
//! parameter its provider does not serve (`UNKNOWN_PARAMETER`, the same check both clients run
//! before any I/O), so a misspelt `?verison=2` fails CI instead of silently reading the latest
//! version. Templates are understood: a `{{ URI }}` reference (whatever its scheme, so a
//! `{{ fle://x }}` typo is found) is checked as a URI, and an unclosed `{{` before a URI is a
//! finding; the scanner is `secret_uri::template`, the one `secrets inject` renders with.
//! Hidden folders (`.github/workflows`, `.circleci`, …) are linted; only `.git`,
//! `target` and `node_modules` are not. Every file skipped as too large or binary is listed on
//! stderr with the summary, so nothing goes unlinted without a word.

use std::ffi::{OsStr, OsString};
use std::fmt::Display;
use std::fs::{self, File, FileType};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use secret_uri::template::{self, Piece};
use secret_uri::{AllowedMounts, Provider};

use crate::check::{Problem, check};
use crate::cli::{Format, LintArgs};
use crate::report::Message;
use crate::status::Status;

/// Files larger than this are skipped: lock files and data dumps, not configuration.
pub(crate) const MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;

/// A NUL byte this early means a binary file.
const BINARY_SNIFF_LEN: usize = 8 * 1024;

/// Folder names never descended into. Other hidden folders (CI definitions live in
/// `.github`, `.gitlab`, `.circleci`) are linted.
const SKIPPED_DIRS: [&str; 3] = [".git", "target", "node_modules"];

/// A secret URI found in a line: where it starts and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    /// Byte offset of the token in the line.
    pub(crate) start: usize,
    /// The token, from the scheme to its last character.
    pub(crate) text: &'a str,
}

/// Every token in `line` that starts with a known provider name (any case), optionally
/// `+engine`, then `://`, at a word boundary; see `secrets lint --help` for where it ends.
#[must_use]
pub(crate) fn find_uris(line: &str) -> FindUris<'_> {
    FindUris { line, pos: 0 }
}

/// The iterator returned by [`find_uris`].
#[derive(Debug, Clone)]
pub(crate) struct FindUris<'a> {
    line: &'a str,
    pos: usize,
}

impl<'a> Iterator for FindUris<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let line = self.line;
        loop {
            let sep = self.pos + line.get(self.pos..)?.find("://")?;
            let after = sep + 3;
            // The scheme is the longest run of scheme characters before `://`, so a preceding
            // letter, digit, `+`, `-`, `_` or `.` makes it a different (unknown) word:
            // `git+file://`, `my-db://` and `mongodb://` are not ours.
            let start = line[..sep]
                .rfind(|c: char| !is_scheme_char(c))
                .map_or(0, |i| {
                    i + line[i..].chars().next().map_or(1, char::len_utf8)
                });
            let boundary = !line[..start].ends_with(char::is_alphanumeric);
            let provider = line[start..sep].split('+').next().unwrap_or("");
            if !boundary || Provider::from_name(provider).is_none() {
                self.pos = after;
                continue;
            }
            let end = line[after..]
                .find(ends_token)
                .map_or(line.len(), |i| after + i);
            self.pos = end;
            return Some(Token {
                start,
                text: &line[start..end],
            });
        }
    }
}

fn is_scheme_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '_' | '.')
}

/// `#` and `?` are part of a URI (key and query); a YAML or `.env` comment is preceded by
/// whitespace, which ends the token first.
fn ends_token(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | ',' | ')' | ']' | '}' | '<' | '>')
}

/// An invalid URI found by [`lint_text`].
#[derive(Debug)]
pub(crate) struct Finding {
    /// 1-based line number.
    pub(crate) line: usize,
    /// 1-based column, in characters, of the start of the URI.
    pub(crate) column: usize,
    /// Why the URI is invalid.
    pub(crate) error: Problem,
}

/// Every invalid secret URI in `text`, in order (see [`scan_text`]).
#[cfg(test)]
#[must_use]
pub(crate) fn lint_text(text: &str, mounts: &AllowedMounts) -> Vec<Finding> {
    scan_text(text, mounts).findings
}

/// What [`scan_text`] found in one text.
#[derive(Debug)]
pub(crate) struct Linted {
    /// How many secret URIs: `{{ URI }}` references and bare URIs.
    pub(crate) uris: u64,
    /// The invalid ones, by line and column.
    pub(crate) findings: Vec<Finding>,
}

/// Lints `text`: each `{{ URI }}` reference (found by `secret_uri::template::scan`, whatever
/// its scheme, so `{{ fle://x }}` is a finding) and each bare secret URI ([`find_uris`]) outside
/// them. An unclosed `{{` before a URI is a finding too (`UNTERMINATED_REFERENCE`). Lines end
/// at `\n`; a `\r` before it is dropped.
#[must_use]
pub(crate) fn scan_text(text: &str, mounts: &AllowedMounts) -> Linted {
    let mut findings = Vec::new();
    let mut uris = 0;
    // The references first: the bare-URI scan skips what their spans hold.
    let mut spans = Vec::new();
    for piece in template::scan(text) {
        match piece {
            Ok(Piece::Reference(reference)) => {
                uris += 1;
                if let Err(error) = check(reference.text, mounts) {
                    findings.push(Finding {
                        line: reference.line,
                        column: reference.column,
                        error,
                    });
                }
                spans.push(reference.span);
            }
            Ok(Piece::Text(_)) => {}
            Err(error) => findings.push(Finding {
                line: error.line(),
                column: error.column(),
                error: Problem::Template(error),
            }),
        }
    }
    let (mut next_span, mut line_start) = (0, 0);
    for (n, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        // Columns are counted on from the previous finding, so a long minified line with
        // many findings stays linear.
        let (mut counted, mut column) = (0, 1);
        for token in find_uris(line) {
            let at = line_start + token.start;
            while spans
                .get(next_span)
                .is_some_and(|s: &Range<usize>| s.end <= at)
            {
                next_span += 1;
            }
            if spans.get(next_span).is_some_and(|s| s.start <= at) {
                continue;
            }
            uris += 1;
            if let Err(error) = check(token.text, mounts) {
                column += line[counted..token.start].chars().count();
                counted = token.start;
                findings.push(Finding {
                    line: n + 1,
                    column,
                    error,
                });
            }
        }
        line_start += raw.len() + 1;
    }
    // Stable: two findings never share a place.
    findings.sort_by_key(|f| (f.line, f.column));
    Linted { uris, findings }
}

/// `secrets lint`: scans `args.paths`, prints findings on stdout and unreadable paths on
/// stderr.
///
/// # Errors
/// Write errors on stdout (a broken pipe included). Unreadable files are reported and make
/// the status `Failure`, but the scan goes on.
pub(crate) fn run(args: &LintArgs) -> io::Result<Status> {
    let mut linter = Linter {
        mounts: args.guard.mounts(),
        format: args.format,
        out: io::BufWriter::new(io::stdout().lock()),
        findings: 0,
        failures: 0,
        files: 0,
        uris: 0,
        skipped: Vec::new(),
    };
    for root in &args.paths {
        linter.root(root)?;
    }
    linter.out.flush()?;
    // A summary on stderr, so stdout stays one finding a line for tools.
    let mut summary = format!(
        "secrets lint: {} secret URIs in {} files, {} invalid",
        linter.uris, linter.files, linter.findings
    );
    if !linter.skipped.is_empty() {
        summary.push_str(&format!("; {} files skipped:", linter.skipped.len()));
    }
    for (path, why) in &linter.skipped {
        summary.push_str(&format!(
            "\nsecrets lint: skipped {}: {why}",
            path.display()
        ));
    }
    eprintln!("{summary}");
    Ok(if linter.failures > 0 {
        Status::Failure
    } else if linter.findings > 0 {
        Status::Findings
    } else {
        Status::Success
    })
}

struct Linter<W> {
    mounts: AllowedMounts,
    format: Format,
    out: W,
    findings: u64,
    failures: u64,
    files: u64,
    uris: u64,
    /// Files not linted, and why, in walk order.
    skipped: Vec<(PathBuf, Skipped)>,
}

/// Why a file was not linted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skipped {
    TooLarge(u64),
    Binary,
}

impl Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge(len) => write!(
                f,
                "too large ({len} bytes; files over {MAX_FILE_SIZE} bytes are not linted)"
            ),
            Self::Binary => f.write_str("binary (a NUL byte in the first 8 KiB)"),
        }
    }
}

impl<W: Write> Linter<W> {
    /// A path given on the command line: followed if it is a symlink, scanned even if hidden.
    fn root(&mut self, path: &Path) -> io::Result<()> {
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => self.dir(path),
            Ok(meta) if meta.is_file() => self.file(path, meta.len()),
            Ok(_) => {
                self.fail(path, &"not a file or folder");
                Ok(())
            }
            Err(e) => {
                self.fail(path, &e);
                Ok(())
            }
        }
    }

    fn dir(&mut self, dir: &Path) -> io::Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.fail(dir, &e);
                return Ok(());
            }
        };
        let mut children: Vec<(OsString, FileType)> = Vec::new();
        for entry in entries {
            match entry.and_then(|e| Ok((e.file_name(), e.file_type()?))) {
                Ok(child) => children.push(child),
                Err(e) => self.fail(dir, &e),
            }
        }
        children.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (name, kind) in children {
            let path = dir.join(&name);
            if kind.is_dir() {
                if !skip_dir(&name) {
                    self.dir(&path)?;
                }
            } else if kind.is_file() || kind.is_symlink() {
                // A symlink is scanned when it points at a file; symlinked folders are not
                // followed (no cycles, no scanning outside the tree), dangling links ignored.
                match fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => self.file(&path, meta.len())?,
                    Ok(_) => {}
                    Err(e) if kind.is_symlink() && e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => self.fail(&path, &e),
                }
            }
        }
        Ok(())
    }

    fn file(&mut self, path: &Path, len: u64) -> io::Result<()> {
        if len > MAX_FILE_SIZE {
            self.skipped.push((path.to_owned(), Skipped::TooLarge(len)));
            return Ok(());
        }
        let mut bytes = Vec::new();
        let read = File::open(path).and_then(|f| f.take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes));
        if let Err(e) = read {
            self.fail(path, &e);
            return Ok(());
        }
        // The file may have grown since its size was read.
        if bytes.len() as u64 > MAX_FILE_SIZE {
            let len = fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
            self.skipped.push((path.to_owned(), Skipped::TooLarge(len)));
            return Ok(());
        }
        if bytes[..bytes.len().min(BINARY_SNIFF_LEN)].contains(&0) {
            self.skipped.push((path.to_owned(), Skipped::Binary));
            return Ok(());
        }
        // Latin-1 and other stray bytes become U+FFFD; URIs are ASCII, so nothing is lost.
        let text = String::from_utf8_lossy(&bytes);
        self.files += 1;
        let linted = scan_text(&text, &self.mounts);
        self.uris += linted.uris;
        for finding in linted.findings {
            self.findings += 1;
            self.print(path, &finding)?;
        }
        Ok(())
    }

    fn print(&mut self, path: &Path, finding: &Finding) -> io::Result<()> {
        let code = finding.error.code();
        match self.format {
            Format::Text => writeln!(
                self.out,
                "{}:{}:{}: {code} {}",
                path.display(),
                finding.line,
                finding.column,
                finding.error
            ),
            Format::Json => {
                let record = JsonFinding {
                    path: &path.to_string_lossy(),
                    line: finding.line,
                    column: finding.column,
                    code,
                    message: Message(&finding.error),
                };
                serde_json::to_writer(&mut self.out, &record)?;
                self.out.write_all(b"\n")
            }
        }
    }

    fn fail(&mut self, path: &Path, err: &dyn Display) {
        self.failures += 1;
        // Best effort: if stderr is gone there is nobody to tell.
        let _ = writeln!(io::stderr(), "secrets lint: {}: {err}", path.display());
    }
}

#[derive(serde::Serialize)]
struct JsonFinding<'a> {
    path: &'a str,
    line: usize,
    column: usize,
    code: &'static str,
    message: Message<'a>,
}

fn skip_dir(name: &OsStr) -> bool {
    SKIPPED_DIRS.iter().any(|skipped| name == *skipped)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn texts(line: &str) -> Vec<&str> {
        find_uris(line).map(|t| t.text).collect()
    }

    #[test]
    fn finds_known_schemes_any_case() {
        assert_eq!(
            texts("a: openbao+kv2://secret/app#token?version=3 # comment"),
            ["openbao+kv2://secret/app#token?version=3"]
        );
        assert_eq!(texts("OpenBao+KV2://s/a"), ["OpenBao+KV2://s/a"]);
        assert_eq!(
            texts("x=file://m/a,db+cred://db/ro;yaml://c/a.yaml#k"),
            ["file://m/a", "db+cred://db/ro;yaml://c/a.yaml#k"]
        );
        assert_eq!(texts("hashicorp://s/x"), ["hashicorp://s/x"]);
        assert_eq!(texts("bootstrap://l/t"), ["bootstrap://l/t"]);
    }

    #[test]
    fn unknown_engines_are_found() {
        assert_eq!(texts("openbao+kv9://s/a"), ["openbao+kv9://s/a"]);
        assert_eq!(texts("openbao+://s/a"), ["openbao+://s/a"]);
        assert_eq!(texts("openbao+kv2+x://s/a"), ["openbao+kv2+x://s/a"]);
    }

    #[test]
    fn other_schemes_and_non_boundaries_are_not() {
        for line in [
            "https://example.com/openbao",
            "mongodb://host/db",
            "git+file://repo",
            "my-openbao://s/a",
            "my_file://s/a",
            "x.file://s/a",
            "xfile://s/a",
            "éfile://s/a",
            "+openbao://s/a",
            "openbao:/s/a",
            "openbao",
            "",
        ] {
            assert_eq!(texts(line), Vec::<&str>::new(), "{line}");
        }
    }

    #[test]
    fn delimiters_end_tokens() {
        for (line, want) in [
            (r#"{"uri": "file://m/a"}"#, "file://m/a"),
            ("['file://m/a']", "file://m/a"),
            ("`file://m/a`", "file://m/a"),
            ("(file://m/a)", "file://m/a"),
            ("<file://m/a>", "file://m/a"),
            ("{file://m/a}", "file://m/a"),
            ("file://m/a\tnext", "file://m/a"),
            ("=file://m/a", "file://m/a"),
            ("/file://m/a", "file://m/a"),
            ("ü file://m/a", "file://m/a"),
        ] {
            assert_eq!(texts(line), [want], "{line}");
        }
    }

    #[test]
    fn a_uri_inside_a_query_is_part_of_the_token() {
        assert_eq!(
            texts("file://m/a?next=file://m/b x"),
            ["file://m/a?next=file://m/b"]
        );
    }

    #[test]
    fn start_is_a_byte_offset() {
        let line = "ü: file://m/a";
        let token = find_uris(line).next().unwrap();
        assert_eq!(token.start, 4);
        assert_eq!(&line[token.start..], "file://m/a");
    }

    #[test]
    fn lint_text_reports_lines_and_char_columns() {
        let text =
            "ok: file://m/a\r\nbad: \"openbao+kv2://s/*\"\n\nü: file://m/a file://m/b/../c\n";
        let found: Vec<_> = lint_text(text, &AllowedMounts::default())
            .into_iter()
            .map(|f| (f.line, f.column, f.error.code()))
            .collect();
        assert_eq!(
            found,
            [(2, 7, "INVALID_WILDCARD"), (4, 15, "ILLEGAL_SEGMENT")]
        );
    }

    #[test]
    fn several_findings_on_one_line() {
        let columns: Vec<_> = lint_text(
            "ü file://a/* é file://b/* file://c/*",
            &AllowedMounts::default(),
        )
        .iter()
        .map(|f| (f.line, f.column))
        .collect();
        assert_eq!(columns, [(1, 3), (1, 16), (1, 27)]);
    }

    #[test]
    fn lint_text_applies_the_mount_guard() {
        let found = lint_text("file://a/x file://b/x", &AllowedMounts::from_csv("a"));
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].column, found[0].error.code()),
            (12, "TENANT_MOUNT_MISMATCH")
        );
    }

    #[test]
    fn skipped_dirs() {
        for name in [".git", "target", "node_modules"] {
            assert!(skip_dir(name.as_ref()), "{name}");
        }
        for name in [
            "src",
            "config",
            "targets",
            ".github",
            ".gitlab",
            ".circleci",
            ".venv",
            ".git2",
            ".GIT",
        ] {
            assert!(!skip_dir(name.as_ref()), "{name}");
        }
    }

    #[test]
    fn unknown_parameters_are_findings() {
        let text = "a: openbao+kv2://secret/app/api?verison=2#token\n\
                    b: openbao+kv2://secret/app/api#token?version=2\n\
                    c: hashicorp://secret/x?VERSION=2 file://demo/db.json?version=1\n\
                    d: openbao+kv2://secret/app/api?version=2&n=canary-value\n";
        let found: Vec<_> = lint_text(text, &AllowedMounts::default())
            .into_iter()
            .map(|f| (f.line, f.column, f.error.code(), f.error.to_string()))
            .collect();
        let codes: Vec<_> = found.iter().map(|f| (f.0, f.1, f.2)).collect();
        assert_eq!(
            codes,
            [
                (1, 4, "UNKNOWN_PARAMETER"),
                (3, 4, "UNKNOWN_PARAMETER"),
                (3, 35, "UNKNOWN_PARAMETER"),
                (4, 4, "UNKNOWN_PARAMETER"),
            ]
        );
        assert!(found[0].3.contains("`verison`"), "{}", found[0].3);
        // Parameter names, never values or paths.
        for (.., message) in &found {
            assert!(!message.contains("canary"), "{message}");
            assert!(!message.contains("app/api"), "{message}");
        }
    }

    #[test]
    fn template_references_are_linted_once_with_their_place() {
        let text = "ok: {{ file://m/a }}\n\
                    typo: {{ fle://m/a }}\n\
                    bad: \"{{file://m/*}}\" and file://m/b/*\n\
                    helm: {{ .Values.x }} {{ x file://m/c/* }}\n\
                    open: {{ openbao+kv2://s/a\n";
        let linted = scan_text(text, &AllowedMounts::default());
        let found: Vec<_> = linted
            .findings
            .iter()
            .map(|f| (f.line, f.column, f.error.code()))
            .collect();
        assert_eq!(
            found,
            [
                (2, 10, "UNSUPPORTED_ENGINE"),
                (3, 9, "INVALID_WILDCARD"),
                (3, 27, "INVALID_WILDCARD"),
                // Not a reference: the bare URI inside is linted as any other.
                (4, 28, "INVALID_WILDCARD"),
                (5, 7, "UNTERMINATED_REFERENCE"),
            ]
        );
        // Three references, and the three bare URIs outside them (the unclosed one included).
        assert_eq!(linted.uris, 6);
    }
}
