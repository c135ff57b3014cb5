//! `secrets inject`: render a template, replacing each `{{ URI }}` by its secret's value.
//!
//! The steps, each all or nothing: read the template (a regular file or stdin, capped,
//! opened without blocking), scan it (`secret_uri::template`, the scanner `lint` uses too),
//! validate every reference, resolve every secret concurrently, render in memory (zeroized
//! when dropped), then write: atomically to a file created with its final mode, or to stdout.
//! Values reach the output only; errors name a reference by its place and redacted URI.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use secret_uri::template::{self, Piece};
use secrets_sdk::Secret;
use zeroize::Zeroizing;

use crate::check::check;
use crate::cli::{Escape, InjectArgs};
use crate::client::{self, EnvLookup};
use crate::quote_context::{Quote, QuoteContext};
use crate::status::Status;

/// The code for a template larger than [`MAX_TEMPLATE_SIZE`].
pub(crate) const TOO_LARGE: &str = "TOO_LARGE";
/// The code for a template that is not a regular file (a FIFO, a device, a folder).
pub(crate) const NOT_A_FILE: &str = "NOT_A_FILE";
/// The code for a value `--escape` cannot quote (a NUL byte for a shell; a line break or a
/// control character in a single-quoted YAML scalar).
pub(crate) const UNQUOTABLE_VALUE: &str = "UNQUOTABLE_VALUE";

/// Templates larger than this are refused: configuration files, not data.
pub(crate) const MAX_TEMPLATE_SIZE: u64 = 16 * 1024 * 1024;

/// Where the rendered template goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// Standard output.
    Stdout,
    /// A file, written atomically.
    File(PathBuf),
}

/// Where `-o` sends the output: `-` is stdout, always; a path is that file; no `-o` is
/// stdout, unless it is a terminal.
///
/// # Errors
/// The message when stdout is a terminal and `-o -` was not given.
pub(crate) fn destination(
    output: Option<&Path>,
    stdout_is_terminal: bool,
) -> Result<Destination, &'static str> {
    match output {
        Some(path) if path.as_os_str() == "-" => Ok(Destination::Stdout),
        Some(path) => Ok(Destination::File(path.to_owned())),
        None if stdout_is_terminal => {
            Err("refusing to write secrets to a terminal; give -o FILE, or -o - to print them")
        }
        None => Ok(Destination::Stdout),
    }
}

/// Why the template could not be read (exit 2).
#[derive(Debug)]
enum ReadError {
    TooLarge,
    NotAFile,
    NotUtf8 { offset: usize },
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge => write!(
                f,
                "{TOO_LARGE}: the template is larger than {MAX_TEMPLATE_SIZE} bytes"
            ),
            Self::NotAFile => write!(f, "{NOT_A_FILE}: the template is not a regular file"),
            Self::NotUtf8 { offset } => {
                write!(f, "the template is not UTF-8 text (at byte {offset})")
            }
            Self::Io(e) => e.fmt(f),
        }
    }
}

/// Reads at most [`MAX_TEMPLATE_SIZE`] bytes of `reader` (stdin).
fn read_capped(reader: impl Read) -> Result<String, ReadError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_TEMPLATE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > MAX_TEMPLATE_SIZE {
        return Err(ReadError::TooLarge);
    }
    utf8(bytes)
}

fn utf8(bytes: Vec<u8>) -> Result<String, ReadError> {
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Reads the template file as every local file is read (`read_local_file`): opened without
/// blocking (a FIFO with no writer would wait in `open(2)` forever), a regular file only,
/// capped.
fn read_template(path: &Path) -> Result<String, ReadError> {
    let bytes = secrets_sdk::providers::read_local_file(path, MAX_TEMPLATE_SIZE).map_err(|e| {
        match e.kind() {
            io::ErrorKind::FileTooLarge => ReadError::TooLarge,
            io::ErrorKind::InvalidInput => ReadError::NotAFile,
            _ => ReadError::Io(e),
        }
    })?;
    utf8(bytes.to_vec())
}

/// A reference that failed, as one stderr line: never a value, never the full URI.
struct Failure {
    code: &'static str,
    line: usize,
    column: usize,
    redacted: Option<String>,
    message: String,
}

/// `secrets inject`. `stdin` is read for `-i -`; `out` gets the output for `-o -` (or no
/// `-o` when `stdout_is_terminal` is false) and the `--dry-run` listing; `err` gets every
/// failure, one a line.
///
/// # Errors
/// Write errors on `out` or `err`; the runtime failing to start.
pub(crate) fn run<O: Write, E: Write>(
    args: &InjectArgs,
    env: &EnvLookup,
    stdin: impl Read,
    stdout_is_terminal: bool,
    mut out: O,
    mut err: E,
) -> io::Result<Status> {
    let destination = match destination(args.output.as_deref(), stdout_is_terminal) {
        Ok(destination) => destination,
        Err(message) if !args.dry_run => {
            writeln!(err, "secrets inject: {message}")?;
            return Ok(Status::Failure);
        }
        Err(_) => Destination::Stdout,
    };
    let from_stdin = args.input.as_os_str() == "-";
    let name = if from_stdin {
        "<stdin>".to_owned()
    } else {
        args.input.display().to_string()
    };
    let read = if from_stdin {
        read_capped(stdin)
    } else {
        read_template(&args.input)
    };
    let text = match read {
        Ok(text) => text,
        Err(e) => {
            writeln!(err, "secrets inject: {name}: {e}")?;
            return Ok(Status::Failure);
        }
    };

    // Scan and validate everything before anything is resolved.
    let mounts = args.client.allowed_mounts.clone().unwrap_or_default();
    let mut pieces = Vec::new();
    let mut failures = Vec::new();
    // Each secret once, by canonical form, in order of first use.
    let mut canonical: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut slots = Vec::new();
    for piece in template::scan(&text) {
        match piece {
            Ok(Piece::Reference(reference)) => match check(reference.text, &mounts) {
                Ok(uri) => {
                    let next = canonical.len();
                    let slot = *index.entry(uri.as_str().to_owned()).or_insert(next);
                    if slot == next {
                        canonical.push(uri.into_string());
                    }
                    slots.push(slot);
                    pieces.push(Piece::Reference(reference));
                }
                Err(problem) => {
                    // As `resolve` prints it: without the provider's trailing `[CODE]`.
                    let message = problem.to_string();
                    let suffix = format!(" [{}]", problem.code());
                    failures.push(Failure {
                        code: problem.code(),
                        line: reference.line,
                        column: reference.column,
                        redacted: None,
                        message: message.strip_suffix(&suffix).unwrap_or(&message).to_owned(),
                    });
                }
            },
            Ok(text) => pieces.push(text),
            Err(error) => failures.push(Failure {
                code: error.code(),
                line: error.line(),
                column: error.column(),
                redacted: None,
                message: error.to_string(),
            }),
        }
    }
    if !failures.is_empty() {
        report(&mut err, &name, &failures)?;
        return Ok(Status::Findings);
    }
    if args.dry_run {
        for piece in &pieces {
            if let Piece::Reference(reference) = piece {
                let shown = client::redacted(reference.text).unwrap_or_default();
                writeln!(out, "{}:{} {shown}", reference.line, reference.column)?;
            }
        }
        out.flush()?;
        return Ok(Status::Success);
    }

    let resolved = if canonical.is_empty() {
        None
    } else {
        let client = match client::build(&args.client, env) {
            Ok(client) => client,
            Err(e) => {
                writeln!(err, "{e}")?;
                return Ok(Status::Failure);
            }
        };
        let uris: Vec<&str> = canonical.iter().map(String::as_str).collect();
        let results = client::resolve_all(&client, &uris, args.client.refresh)?;
        Some((client, results))
    };
    let results = resolved.as_ref().map_or(&[][..], |(_, r)| r.as_slice());

    let mut rendered = Zeroizing::new(Vec::with_capacity(text.len()));
    let mut references = slots.iter();
    let mut context = QuoteContext::new(args.escape);
    for piece in &pieces {
        match piece {
            Piece::Text(literal) => {
                context.feed(literal);
                rendered.extend_from_slice(literal.as_bytes());
            }
            Piece::Reference(reference) => {
                let result = references.next().and_then(|&slot| results.get(slot));
                let failure = |code, message| Failure {
                    code,
                    line: reference.line,
                    column: reference.column,
                    redacted: client::redacted(reference.text),
                    message,
                };
                match result {
                    Some(Ok(secret)) => {
                        let quote = context.quote();
                        if let Err(message) = insert(&mut rendered, secret, args.escape, quote) {
                            failures.push(failure(UNQUOTABLE_VALUE, message.to_owned()));
                        }
                        context.inserted();
                    }
                    Some(Err(e)) => failures.push(failure(e.code(), client::message(e))),
                    // One result per URI; never leave a reference out silently.
                    None => failures.push(failure("RUNTIME", "no result".to_owned())),
                }
            }
        }
    }
    let close = |keep: bool| {
        if let Some((client, _)) = &resolved {
            if keep {
                // Written database credentials are the output's: their leases end at their
                // TTL instead of being revoked by `close`.
                client.keep_leases();
            }
            client.close();
        }
    };
    if !failures.is_empty() {
        drop(rendered);
        close(false);
        report(&mut err, &name, &failures)?;
        return Ok(Status::Findings);
    }
    let written = match &destination {
        Destination::Stdout => out.write_all(&rendered).and_then(|()| out.flush()),
        Destination::File(path) => write_atomically(path, &rendered, args.mode),
    };
    drop(rendered);
    match written {
        Ok(()) => {
            close(true);
            Ok(Status::Success)
        }
        Err(e) if destination == Destination::Stdout => {
            close(false);
            Err(e)
        }
        Err(e) => {
            close(false);
            let path = match &destination {
                Destination::File(path) => path.display().to_string(),
                Destination::Stdout => String::new(),
            };
            writeln!(err, "secrets inject: cannot write {path}: {e}")?;
            Ok(Status::Failure)
        }
    }
}

fn report<E: Write>(err: &mut E, name: &str, failures: &[Failure]) -> io::Result<()> {
    let mut lines = String::new();
    for f in failures {
        let _ = write!(lines, "{}: {name}:{}:{}", f.code, f.line, f.column);
        if let Some(redacted) = &f.redacted {
            let _ = write!(lines, " ({redacted})");
        }
        let _ = writeln!(lines, ": {}", f.message);
    }
    err.write_all(lines.as_bytes())
}

/// Appends `secret`'s value to `out`, quoted for `escape` in `quote`.
///
/// # Errors
/// Why the value cannot be quoted so (the message of an `UNQUOTABLE_VALUE` line); nothing
/// about the value but the kind of character.
fn insert(
    out: &mut Vec<u8>,
    secret: &Secret,
    escape: Option<Escape>,
    quote: Quote,
) -> Result<(), &'static str> {
    let text = secret.expose_as_text();
    match (escape, quote) {
        (None, _) => out.extend_from_slice(text.as_bytes()),
        (Some(Escape::Json), Quote::Double) => {
            let json = secret_as_json_string(&text);
            out.extend_from_slice(&json.as_bytes()[1..json.len() - 1]);
        }
        (Some(Escape::Json), _) => out.extend_from_slice(secret.expose_as_json().as_bytes()),
        (Some(Escape::Yaml), Quote::Double) => yaml_double(out, &text),
        (Some(Escape::Yaml), Quote::Single) => yaml_single(out, &text)?,
        (Some(Escape::Yaml), Quote::None) if !secret.is_text() => {
            // Compact JSON is a YAML flow value.
            out.extend_from_slice(text.as_bytes());
        }
        (Some(Escape::Yaml), Quote::None) => {
            out.push(b'"');
            yaml_double(out, &text);
            out.push(b'"');
        }
        (Some(Escape::Shell), _) if text.contains('\0') => {
            return Err("the value contains a NUL byte, which no shell word can hold");
        }
        (Some(Escape::Shell), Quote::Single) => shell_single(out, &text),
        (Some(Escape::Shell), Quote::Double) => shell_double(out, &text),
        (Some(Escape::Shell), Quote::None) => {
            out.push(b'\'');
            shell_single(out, &text);
            out.push(b'\'');
        }
    }
    Ok(())
}

/// `text` as a quoted JSON string (serde_json's escaping), zeroized when dropped.
fn secret_as_json_string(text: &str) -> Zeroizing<String> {
    let mut json = Zeroizing::new(Vec::with_capacity(text.len() + 2));
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *json, text);
    Zeroizing::new(String::from_utf8(std::mem::take(&mut *json)).unwrap_or_default())
}

/// The contents of a double-quoted YAML scalar: `\` and `"` escaped, and every character
/// YAML does not print (controls, DEL, C1, the line and paragraph separators, BOM, U+FFFE/F).
fn yaml_double(out: &mut Vec<u8>, text: &str) {
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let escaped: Option<&[u8]> = match c {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\n' => Some(b"\\n"),
            '\t' => Some(b"\\t"),
            '\r' => Some(b"\\r"),
            '\0' => Some(b"\\0"),
            '\u{85}' => Some(b"\\N"),
            '\u{2028}' => Some(b"\\L"),
            '\u{2029}' => Some(b"\\P"),
            _ => None,
        };
        if let Some(escaped) = escaped {
            out.extend_from_slice(escaped);
        } else if c < ' ' || ('\u{7f}'..='\u{9f}').contains(&c) {
            out.extend_from_slice(format!("\\x{:02X}", u32::from(c)).as_bytes());
        } else if matches!(c, '\u{feff}' | '\u{fffe}' | '\u{ffff}') {
            out.extend_from_slice(format!("\\u{:04X}", u32::from(c)).as_bytes());
        } else {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// The contents of a single-quoted YAML scalar: `'` doubled. A line break would be folded
/// and a control character cannot be written, so both are refused.
fn yaml_single(out: &mut Vec<u8>, text: &str) -> Result<(), &'static str> {
    if text.chars().any(|c| {
        (c < ' ' && c != '\t')
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
            )
    }) {
        return Err(
            "the value has a line break or a control character, which a single-quoted YAML \
             scalar cannot hold; write the reference as \"{{ URI }}\"",
        );
    }
    for part in text.split('\'').enumerate() {
        if part.0 > 0 {
            out.extend_from_slice(b"''");
        }
        out.extend_from_slice(part.1.as_bytes());
    }
    Ok(())
}

/// The contents of a single-quoted shell word: each `'` closes the quotes, adds an escaped
/// quote and opens them again (`'\''`).
fn shell_single(out: &mut Vec<u8>, text: &str) {
    for (n, part) in text.split('\'').enumerate() {
        if n > 0 {
            out.extend_from_slice(b"'\\''");
        }
        out.extend_from_slice(part.as_bytes());
    }
}

/// The contents of a double-quoted shell word: `\`, `$`, `` ` `` and `"` escaped.
fn shell_double(out: &mut Vec<u8>, text: &str) {
    for &b in text.as_bytes() {
        if matches!(b, b'\\' | b'$' | b'`' | b'"') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// Writes `bytes` to `path` atomically: a new file in the same folder, created with `mode`
/// (never more open than that, whatever the umask, then set to exactly `mode`), written,
/// flushed to disk, renamed over `path` (the target of a symlink), and the folder flushed.
/// On any error the temporary file is removed and `path` is untouched.
///
/// # Errors
/// `path` is not a regular file (or a symlink to one), its folder does not exist, or an I/O
/// error.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let target = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path)?,
        _ => path.to_owned(),
    };
    match fs::metadata(&target) {
        Ok(meta) if !meta.is_file() => {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::other("not a file name"))?;
    let folder = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "its folder does not exist",
        ));
    }
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut file = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(Permissions::from_mode(mode & 0o777))
        .tempfile_in(folder)?;
    file.as_file()
        .set_permissions(Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(&target).map_err(|e| e.error)?;
    // The rename itself is durable once the folder is flushed; some file systems refuse to
    // flush a folder, which does not undo the write.
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn stdout_only_when_not_a_terminal_or_asked_for() {
        let dash = Path::new("-");
        assert_eq!(destination(Some(dash), true), Ok(Destination::Stdout));
        assert_eq!(destination(Some(dash), false), Ok(Destination::Stdout));
        assert_eq!(destination(None, false), Ok(Destination::Stdout));
        assert!(destination(None, true).is_err());
        assert_eq!(
            destination(Some(Path::new("out.env")), true),
            Ok(Destination::File("out.env".into()))
        );
    }

    fn yaml(text: &str) -> String {
        let mut out = Vec::new();
        yaml_double(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn yaml_double_quoted_round_trips() {
        let all_controls: String = (0u8..0x20).map(char::from).collect();
        for value in [
            "",
            "plain",
            "quote\" back\\slash 'single'",
            "line 1\nline 2\r\n\ttab",
            &all_controls,
            "\u{7f}\u{85}\u{9f}\u{a0}\u{2028}\u{2029}\u{feff}\u{fffe}\u{ffff}",
            "ü € 😀 # : - [ ] { } & * ! | > % @ `",
        ] {
            let document = format!("k: \"{}\"\n", yaml(value));
            let parsed: serde_json::Value = serde_yaml_ng::from_str(&document).unwrap();
            assert_eq!(parsed["k"], value, "{document}");
        }
    }

    #[test]
    fn yaml_single_quoted_round_trips_or_refuses() {
        for value in ["", "it's", "''", "a \"b\" \\c\t#d"] {
            let mut out = Vec::new();
            yaml_single(&mut out, value).unwrap();
            let document = format!("k: '{}'\n", String::from_utf8(out).unwrap());
            let parsed: serde_json::Value = serde_yaml_ng::from_str(&document).unwrap();
            assert_eq!(parsed["k"], value, "{document}");
        }
        for value in ["a\nb", "a\rb", "\u{1b}", "\u{2028}"] {
            assert!(yaml_single(&mut Vec::new(), value).is_err(), "{value:?}");
        }
    }

    #[test]
    fn shell_quoting() {
        let single = |text: &str| {
            let mut out = Vec::new();
            shell_single(&mut out, text);
            String::from_utf8(out).unwrap()
        };
        let double = |text: &str| {
            let mut out = Vec::new();
            shell_double(&mut out, text);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(single("it's"), r"it'\''s");
        assert_eq!(single("''"), r"'\'''\''");
        assert_eq!(double(r#"a"$b`c\d'e"#), r#"a\"\$b\`c\\d'e"#);
    }

    #[test]
    fn writes_atomically_with_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.env");
        write_atomically(&path, b"one", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        // Replaced whole, with the new mode; no temporary file left behind.
        write_atomically(&path, b"two", 0o640).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.env"]);
        // Through a symlink: the target is replaced, the link stays.
        let link = dir.path().join("link.env");
        std::os::unix::fs::symlink("out.env", &link).unwrap();
        write_atomically(&link, b"three", 0o600).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&path).unwrap(), b"three");
        // A missing folder and a folder in the way are refused.
        assert!(write_atomically(&dir.path().join("no/such/x"), b"x", 0o600).is_err());
        assert!(write_atomically(dir.path(), b"x", 0o600).is_err());
    }
}
