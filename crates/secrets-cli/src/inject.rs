//! `secrets inject`: render a template, replacing each `{{ URI }}` by its secret's value.
//!
//! The steps, each all or nothing: read the template (a regular file or stdin, capped,
//! opened without blocking), scan it (`secret_uri::template`, the scanner `lint` uses too),
//! validate every reference, resolve every secret concurrently, render in memory (zeroized
//! when dropped), then write: atomically to a file created with its final mode, in place to a
//! device, a FIFO or a descriptor's link (`inject/output.rs`), or to stdout.
//! Values reach the output only; errors name a reference by its place and redacted URI.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use secret_uri::template::{self, Piece};
use zeroize::Zeroizing;

use crate::check::check;
use crate::cli::InjectArgs;
use crate::client::{self, EnvLookup};
use crate::quote_context::QuoteContext;
use crate::status::Status;

mod escape;
mod output;

use escape::insert;
use output::Target;

/// The code for a template larger than [`MAX_TEMPLATE_SIZE`].
pub(crate) const TOO_LARGE: &str = "TOO_LARGE";
/// The code for a template that is not a regular file (a FIFO, a device, a folder).
pub(crate) const NOT_A_FILE: &str = "NOT_A_FILE";
/// The code for a value `--escape` cannot quote (a NUL byte for a shell; a line break or a
/// control character in a single-quoted YAML scalar).
pub(crate) const UNQUOTABLE_VALUE: &str = "UNQUOTABLE_VALUE";
/// The code for a JSON number that cannot be written with the digits it was read with (more
/// than a 64-bit float keeps, or beyond 64-bit integers).
pub(crate) const INEXACT_NUMBER: &str = "INEXACT_NUMBER";

/// Templates larger than this are refused: configuration files, not data.
pub(crate) const MAX_TEMPLATE_SIZE: u64 = 16 * 1024 * 1024;

/// Where the rendered template goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// Standard output.
    Stdout,
    /// The path given with `-o`: a file written atomically, or a device, FIFO or descriptor
    /// link written in place ([`output::resolve`]).
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

    // Where the output goes, before anything is resolved: a refused -o costs no vault read.
    let target = match &destination {
        Destination::Stdout => Target::Stdout,
        Destination::File(path) => match output::resolve(path) {
            Ok(target) => target,
            Err(e) => {
                writeln!(err, "secrets inject: cannot write {}: {e}", path.display())?;
                return Ok(Status::Failure);
            }
        },
    };

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
                        if let Err(refused) = insert(&mut rendered, secret, args.escape, quote) {
                            failures.push(failure(refused.code, refused.message.to_owned()));
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
    let written = match &target {
        Target::Stdout => out.write_all(&rendered).and_then(|()| out.flush()),
        Target::Replace(path) => output::write_atomically(path, &rendered, args.mode),
        Target::Stream(path) => output::write_in_place(path, &rendered),
    };
    drop(rendered);
    match written {
        Ok(()) => {
            close(true);
            Ok(Status::Success)
        }
        // A closed stdout (`| head`) ends the command quietly, as for -o -.
        Err(e) if target == Target::Stdout => {
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
}
