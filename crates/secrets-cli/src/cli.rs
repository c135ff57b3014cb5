//! The command line, as `clap` derive types. New subcommands (`resolve`, `exec`, `get`) are new
//! [`Command`] variants with their own argument struct and module.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secret_uri::AllowedMounts;

/// Parse, check and lint Canonical Secret URIs.
#[derive(Debug, Parser)]
#[command(name = "secrets", version, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 success, 1 invalid URIs found (check, lint), \
                        2 invalid input or usage, I/O error."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and validate Canonical Secret URIs.
    #[command(subcommand)]
    Uri(UriCommand),
    /// Find every secret URI in files and folders and report the invalid ones.
    #[command(long_about = LINT_ABOUT)]
    Lint(LintArgs),
}

/// `secrets uri …`.
#[derive(Debug, Subcommand)]
pub enum UriCommand {
    /// Print the canonical form of one URI.
    #[command(long_about = PARSE_ABOUT)]
    Parse(ParseArgs),
    /// Validate URIs read from stdin, one per line, writing one JSON line per input line.
    #[command(long_about = CHECK_ABOUT)]
    Check(CheckArgs),
}

const PARSE_ABOUT: &str = "\
Print the canonical form of one URI.

An invalid URI prints `CODE: message` on stderr (with --json: the `ok:false` object on \
stdout) and exits 2.";

const CHECK_ABOUT: &str = "\
Validate URIs read from stdin, writing one JSON line per input line, in order.

Each input line is one URI (its `\\n` or `\\r\\n` terminator is not part of it; an empty line \
is an invalid URI). With --jsonl each line is an object {\"uri\": \"…\", \"allowed_mounts\": \
[\"…\"]}; `allowed_mounts` is optional and replaces --allowed-mounts for that line.

Output, one line each:
  {\"ok\":true,\"canonical\":\"…\",\"provider\":\"…\",\"engine\":\"kv2\"|null,\"mount\":\"…\",\
\"path\":[\"…\"],\"key\":\"…\"|null,\"params\":[[\"name\",\"value\"]]}
  {\"ok\":false,\"code\":\"ILLEGAL_SEGMENT\",\"message\":\"…\"}

Besides the parser's codes, `BAD_INPUT` marks a line that could not be read as a URI: not \
UTF-8, or with --jsonl not a JSON object with a string `uri` and an optional non-empty array \
of strings `allowed_mounts`.

Exit 0 when every line is valid, 1 otherwise, 2 on a read error.";

/// Options shared by every command that validates URIs.
#[derive(Debug, Clone, Default, Args)]
pub struct GuardArgs {
    /// Comma-separated mounts a URI may name (the tenant mount guard); any other mount is
    /// TENANT_MOUNT_MISMATCH. Must name at least one mount.
    #[arg(long, value_name = "MOUNT,…", value_parser = parse_allowed_mounts)]
    pub allowed_mounts: Option<AllowedMounts>,
}

impl GuardArgs {
    /// The guard to apply; no flag allows every mount.
    #[must_use]
    pub fn mounts(&self) -> AllowedMounts {
        self.allowed_mounts.clone().unwrap_or_default()
    }
}

/// An empty list would silently turn the guard off (`--allowed-mounts "$UNSET"`), so it is a
/// usage error rather than "allow everything".
fn parse_allowed_mounts(list: &str) -> Result<AllowedMounts, String> {
    let mounts = AllowedMounts::from_csv(list);
    if mounts.is_unrestricted() {
        Err("names no mount; omit --allowed-mounts to allow every mount".to_owned())
    } else {
        Ok(mounts)
    }
}

/// `secrets uri parse`.
#[derive(Debug, Clone, Args)]
pub struct ParseArgs {
    /// The tenant mount guard.
    #[command(flatten)]
    pub guard: GuardArgs,
    /// Print the result as the JSON object `uri check` writes.
    #[arg(long)]
    pub json: bool,
    /// The URI to parse.
    #[arg(value_name = "URI")]
    pub uri: String,
}

/// `secrets uri check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The tenant mount guard.
    #[command(flatten)]
    pub guard: GuardArgs,
    /// Read one JSON object per line: {"uri": "…", "allowed_mounts": ["…"]}.
    #[arg(long)]
    pub jsonl: bool,
}

/// `secrets lint`.
#[derive(Debug, Clone, Args)]
pub struct LintArgs {
    /// The tenant mount guard.
    #[command(flatten)]
    pub guard: GuardArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Files and folders to scan.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
}

const LINT_ABOUT: &str = "\
Find every secret URI in files and folders and report the invalid ones.

A secret URI is a token that starts with a known provider name (openbao, hashicorp, db, \
bootstrap, file, yaml; any case), optionally followed by `+engine`, then `://`, at a word \
boundary. It ends at whitespace, a quote, `,`, `)`, `]`, `}`, `<`, `>` or the end of the line; \
`#key` and `?query` are part of it. Other schemes (https://, …) are not secret URIs.

Folders are walked recursively, skipping hidden folders (except the ones given), `target`, \
`node_modules` and symlinked folders. Binary files (a NUL byte in the first 8 KiB) and files \
over 10 MiB are skipped.

Text output: `path:line:column: CODE message`, one line per invalid URI. LINE and COLUMN are \
1-based; COLUMN counts characters (not bytes) and points at the start of the URI; the byte \
offset in the message is relative to the URI. JSON output: one object per line, \
{\"path\":…,\"line\":…,\"column\":…,\"code\":…,\"message\":…}.

Exit 0 when no invalid URI is found, 1 when some are, 2 on a usage or I/O error.";

/// The `lint` output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `path:line:column: CODE message`.
    Text,
    /// One JSON object per line.
    Json,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn empty_allowed_mounts_is_rejected() {
        let err = Cli::try_parse_from(["secrets", "uri", "parse", "--allowed-mounts", " , ", "x"])
            .err()
            .map(|e| e.kind());
        assert_eq!(err, Some(clap::error::ErrorKind::ValueValidation));
    }

    #[test]
    fn allowed_mounts_are_split() {
        let cli = Cli::try_parse_from(["secrets", "lint", "--allowed-mounts", "a, b", "."]);
        let Ok(Cli {
            command: Command::Lint(args),
        }) = cli
        else {
            panic!("unexpected parse: {cli:?}");
        };
        assert_eq!(args.guard.mounts().iter().collect::<Vec<_>>(), ["a", "b"]);
    }
}
