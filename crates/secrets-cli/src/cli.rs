//! The command line, as `clap` derive types: every subcommand's arguments and long help live
//! here, so this module depends on no other module of the crate (the command modules and
//! `client` depend on it, never the other way). A new subcommand is a [`Command`] variant, its
//! argument struct here, and its own module.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secret_uri::AllowedMounts;

/// Parse, check and lint Canonical Secret URIs; resolve secrets and run commands with them.
#[derive(Debug, Parser)]
#[command(name = "secrets", version, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 success, 1 invalid URIs found (check, lint) or a secret that \
                  could not be resolved (resolve, exec) or watched (watch), 2 invalid input or \
                  usage, I/O error. `exec` otherwise exits with its command's status; `watch` \
                  runs until SIGINT or SIGTERM and then exits 0.\n\n\
                  With OTEL_EXPORTER_OTLP_ENDPOINT set, the SDK's spans and metrics are \
                  exported over OTLP/HTTP (see the OTEL_* variables); telemetry never changes \
                  the exit status."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Parse and validate Canonical Secret URIs.
    #[command(subcommand)]
    Uri(UriCommand),
    /// Find every secret URI in files and folders and report the invalid ones.
    #[command(long_about = LINT_ABOUT)]
    Lint(LintArgs),
    /// Resolve secret URIs and print their values, one per line.
    #[command(long_about = RESOLVE_ABOUT)]
    Resolve(ResolveArgs),
    /// Run a command with secrets resolved into its environment.
    #[command(long_about = EXEC_ABOUT)]
    Exec(ExecArgs),
    /// Render a template: replace each `{{ URI }}` by the secret's value.
    #[command(long_about = INJECT_ABOUT)]
    Inject(InjectArgs),
    /// Watch secrets and print one JSON line per change (never a value).
    #[command(long_about = WATCH_ABOUT)]
    Watch(WatchArgs),
    /// Read one secret through the Policy Enforcement Point, as a named caller.
    #[command(long_about = GET_ABOUT)]
    Get(GetArgs),
    /// Print each URI's audit `resource_ref` under `SECRET_TENANT_SALT`, one a line.
    #[command(long_about = AUDIT_HASH_ABOUT)]
    AuditHash(AuditHashArgs),
}

const AUDIT_HASH_ABOUT: &str = "\
Print each URI's audit `resource_ref` under `SECRET_TENANT_SALT`, one a line, in order.

The reference is the first 16 bytes of HMAC-SHA256 keyed with the tenant salt over the \
canonical URI, in lowercase hex: what every audit event carries instead of the URI, so an \
operator can search the audit trail for a secret they know (as Vault's `sys/audit-hash`). Any \
spelling of a URI gives its canonical form's reference.

An invalid URI prints `CODE: URI n: message` on stderr and no line (exit 1). A missing or \
short salt is `CONFIG` (exit 2). The salt is never printed.";

/// `secrets audit-hash`: the arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct AuditHashArgs {
    /// The secret URIs.
    #[arg(value_name = "URI", required = true)]
    pub(crate) uris: Vec<String>,
}

/// `secrets uri …`.
#[derive(Debug, Subcommand)]
pub(crate) enum UriCommand {
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
pub(crate) struct GuardArgs {
    /// Comma-separated mounts a URI may name (the tenant mount guard); any other mount is
    /// TENANT_MOUNT_MISMATCH. Must name at least one mount.
    #[arg(long, value_name = "MOUNT,…", value_parser = parse_allowed_mounts)]
    pub(crate) allowed_mounts: Option<AllowedMounts>,
}

impl GuardArgs {
    /// The guard to apply; no flag allows every mount.
    #[must_use]
    pub(crate) fn mounts(&self) -> AllowedMounts {
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
pub(crate) struct ParseArgs {
    /// The tenant mount guard.
    #[command(flatten)]
    pub(crate) guard: GuardArgs,
    /// Print the result as the JSON object `uri check` writes.
    #[arg(long)]
    pub(crate) json: bool,
    /// The URI to parse.
    #[arg(value_name = "URI")]
    pub(crate) uri: String,
}

/// `secrets uri check`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CheckArgs {
    /// The tenant mount guard.
    #[command(flatten)]
    pub(crate) guard: GuardArgs,
    /// Read one JSON object per line: {"uri": "…", "allowed_mounts": ["…"]}.
    #[arg(long)]
    pub(crate) jsonl: bool,
}

/// `secrets lint`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LintArgs {
    /// The tenant mount guard.
    #[command(flatten)]
    pub(crate) guard: GuardArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// Files and folders to scan.
    #[arg(value_name = "PATH", required = true)]
    pub(crate) paths: Vec<PathBuf>,
}

const LINT_ABOUT: &str = "\
Find every secret URI in files and folders and report the invalid ones.

A secret URI is a token that starts with a known provider name (openbao, hashicorp, db, \
bootstrap, file, yaml; any case), optionally followed by `+engine`, then `://`, at a word \
boundary. It ends at whitespace, a quote, `,`, `)`, `]`, `}`, `<`, `>` or the end of the line; \
`#key` and `?query` are part of it. Other schemes (https://, …) are not secret URIs.

Templates are understood as `secrets inject` reads them: the text between `{{` and `}}` is a \
reference when it looks like a URI (`scheme://…`, whatever the scheme), and is then checked as \
a secret URI, so a `{{ fle://x }}` typo is a finding (UNSUPPORTED_ENGINE) and `{{ .Values.x }}` \
is not. A `{{` before a URI with no closing `}}` is UNTERMINATED_REFERENCE. LINE and COLUMN \
point at the URI inside the braces (at the `{{` for UNTERMINATED_REFERENCE).

Folders are walked recursively, skipping `.git`, `target`, `node_modules` and symlinked \
folders; other hidden folders (`.github/workflows`, `.circleci`, …) and hidden files \
(`.gitlab-ci.yml`, `.env`) are linted. Binary files (a NUL byte in the first 8 KiB) and files \
over 10 MiB are skipped, and each skipped file is listed with its reason on stderr after the \
summary.

A URI is invalid when the parser or the mount guard refuses it, or when it carries a query \
parameter its provider does not serve (UNKNOWN_PARAMETER: only `version`, and only on \
openbao and hashicorp URIs), so `?verison=2` fails CI.

Text output: `path:line:column: CODE message`, one line per invalid URI. LINE and COLUMN are \
1-based; COLUMN counts characters (not bytes) and points at the start of the URI; the byte \
offset in the message is relative to the URI. JSON output: one object per line, \
{\"path\":…,\"line\":…,\"column\":…,\"code\":…,\"message\":…}.

Exit 0 when no invalid URI is found, 1 when some are, 2 on a usage or I/O error.";

/// The `lint` output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// `path:line:column: CODE message`.
    Text,
    /// One JSON object per line.
    Json,
}

/// How `resolve` and `exec` reach the secrets. Each flag overrides an environment variable,
/// read as a service's `SecretsClient::create()` reads it.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ClientArgs {
    /// Bootstrap file with the vault's address and credentials [else SECRETS_BOOTSTRAP_PATH,
    /// /vault/secrets/bootstrap.json, then OPENBAO_URL/VAULT_URL with OPENBAO_TOKEN/VAULT_TOKEN
    /// and the other OPENBAO_*/VAULT_* variables].
    #[arg(long, value_name = "PATH")]
    pub(crate) bootstrap: Option<PathBuf>,
    /// Directory file:// URIs resolve under [else FILE_MOUNT_PATH, else /run/secrets].
    #[arg(long, value_name = "DIR")]
    pub(crate) file_root: Option<PathBuf>,
    /// Comma-separated mounts URIs may name (the tenant mount guard); any other mount is
    /// TENANT_MOUNT_MISMATCH. Must name at least one mount [else SECRETS_ALLOWED_MOUNTS; when
    /// neither is set, any mount: this is a local operator tool].
    #[arg(long, value_name = "MOUNT,…", value_parser = parse_allowed_mounts)]
    pub(crate) allowed_mounts: Option<AllowedMounts>,
    /// Read every secret from its provider, bypassing the client's cache. A run starts with
    /// an empty cache, so this only changes a URI given twice: read twice instead of once.
    #[arg(long)]
    pub(crate) refresh: bool,
}

/// How `resolve` prints a value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum ValueFormat {
    /// A string as is, JSON as compact JSON.
    #[default]
    Raw,
    /// One JSON document: a string becomes a quoted JSON string.
    Json,
}

/// `secrets resolve`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ResolveArgs {
    /// Where the secrets are.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// How to print each value.
    #[arg(long, value_enum, default_value_t = ValueFormat::Raw)]
    pub(crate) format: ValueFormat,
    /// The secret URIs to resolve.
    #[arg(value_name = "URI", required = true)]
    pub(crate) uris: Vec<String>,
}

const RESOLVE_ABOUT: &str = "\
Resolve secret URIs and print their values on stdout, one per line, in argument order.

A string value (a text file, or a string field picked with #key) prints as is; a JSON value (a \
whole JSON file or KV v2 secret, or a non-string field) prints as compact JSON. With --format \
json each value is one JSON document (a string becomes a quoted JSON string), so a value with a \
newline stays on one line.

All URIs are resolved, concurrently, before anything is printed. If any fails, nothing is \
printed on stdout: each failure prints `CODE: URI n (redacted URI): message` on stderr (never \
a value, never the full URI) and the exit code is 1.

Configuration comes from the environment, as a service's SecretsClient::create() reads it, \
and the flags override it:
  FILE_MOUNT_PATH          --file-root       where file:// URIs resolve (default /run/secrets)
  SECRETS_BOOTSTRAP_PATH   --bootstrap       a bootstrap file: the vault's address and login
  OPENBAO_URL, OPENBAO_TOKEN, … / VAULT_URL, VAULT_TOKEN, …
                                             the vault, when no bootstrap file is found
  SECRETS_ALLOWED_MOUNTS   --allowed-mounts  the tenant mount guard
Unlike a service, the CLI allows any mount when neither --allowed-mounts nor \
SECRETS_ALLOWED_MOUNTS is set: it is a local operator tool. A vault is contacted (and logged in \
to) only for vault URIs; file:// URIs need no server.

RUST_LOG (e.g. RUST_LOG=secrets_sdk=debug) logs each resolve on stderr: provider, mount, \
cache state and an 8-hex URI hash, never a value or a secret's path.

OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://127.0.0.1:4318) exports the same spans \
(secret_resolve) and the resolve metrics over OTLP/HTTP, flushed before exit; the standard \
OTEL_* variables configure it, SECRETS_OTEL_FILTER picks the spans (default info). A bad \
setting or an unreachable collector is one line on stderr and never changes the outcome.

Exit 0 when every value was printed, 1 when some URI could not be resolved, 2 on a usage or \
configuration error.";

/// `secrets exec`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ExecArgs {
    /// Where the secrets are.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// Sets NAME to the value of URI (a value that is not a secret URI is passed through).
    /// Repeatable; wins over --env-file.
    #[arg(long = "env", value_name = "NAME=URI")]
    pub(crate) env: Vec<String>,
    /// Reads NAME=URI lines from FILE (format: see --help). Repeatable; later files win.
    #[arg(long = "env-file", value_name = "FILE")]
    pub(crate) env_files: Vec<PathBuf>,
    /// Passes the vault credentials of this process (OPENBAO_TOKEN, VAULT_TOKEN, *_SECRET_ID,
    /// …) on to the command; by default they are removed from its environment.
    #[arg(long = "keep-credentials")]
    pub(crate) keep_credentials: bool,
    /// Leaves the database credentials (db+cred:// leases) to live until their TTL: the
    /// command replaces this process as for any other secret. By default `exec` runs the
    /// command as a child, renews the leases while it runs and revokes them when it exits.
    #[arg(long = "keep-lease")]
    pub(crate) keep_lease: bool,
    /// Runs the command as a child and restarts it whenever one of its secrets changes
    /// (see --help); without it the command replaces this process.
    #[arg(long)]
    pub(crate) watch: bool,
    /// With --watch: the signal asking the command to stop before a restart (a name such as
    /// TERM, SIGHUP, INT, USR1, or a number).
    #[arg(
        long,
        value_name = "SIGNAL",
        default_value = "TERM",
        value_parser = crate::signals::parse,
        requires = "watch"
    )]
    pub(crate) restart_signal: i32,
    /// With --watch: how long the command (its whole process group) may take to stop after
    /// --restart-signal, or a SIGINT/SIGTERM passed on, before it is killed (SIGKILL): 10s,
    /// 500ms, 1m, or plain seconds.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = parse_grace,
        requires = "watch"
    )]
    pub(crate) grace: Duration,
    /// The command to run and its arguments, after `--`.
    #[arg(value_name = "CMD", last = true, required = true)]
    pub(crate) command: Vec<OsString>,
}

/// `--grace`: humantime (`10s`, `500ms`, `1m 30s`) or a plain number of seconds.
fn parse_grace(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| e.to_string());
    }
    humantime::parse_duration(text).map_err(|e| format!("{e} (e.g. 10s, 500ms, or seconds)"))
}

const EXEC_ABOUT: &str = "\
Resolve secrets into environment variables, then run a command with them.

Each variable is NAME=VALUE, from --env-file files (in order), then --env flags; a later \
definition of a NAME wins. A VALUE that is a secret URI of a provider this command serves \
(file://, yaml://, openbao+kv2://, openbao://, hashicorp+kv2://, hashicorp://, db+cred://, \
db+db://, bootstrap://; any case) is resolved and the variable gets the secret's value (a string as is, JSON \
as compact JSON). Any other VALUE is passed through unchanged, like a plain value in `op run`: \
ordinary file URLs (file:///srv/repo), https://… and plain text silently; a VALUE that starts \
with a secret URI scheme but does not parse (openbao+kv9://…, file://demo/*), with a one-line warning on \
stderr naming the variable, never the value. NAME must match [A-Za-z_][A-Za-z0-9_]*.

Everything is resolved, concurrently, before the command starts. If anything fails, each \
failure prints `CODE: NAME (redacted URI): message` on stderr, the command is not run, and \
the exit code is 1; a value with a NUL byte, which no environment variable can hold, is \
INVALID_ENV_VALUE. Values are never printed.

The command then replaces this process (exec): it inherits the environment with the variables \
added (replacing inherited ones of the same name) and the vault credentials removed \
(OPENBAO_TOKEN, VAULT_TOKEN, their *_FILE forms, *_SECRET_ID, *_ROLE_ID, AUTHZEN_PDP_TOKEN; \
--keep-credentials keeps them): the command gets the secrets it was given, not the power to \
read others, stdin, stdout and stderr, and receives \
signals directly; its exit status is the exit status. If it cannot be started: exit 127 when \
it is not found, 126 otherwise (e.g. not executable).

Database credentials (db+cred://) live on a lease: then the command runs as a child instead \
(signals passed on, its exit status the exit status), `secrets` renews the lease while it \
runs up to the role's max TTL (without --watch no new user is read then: the command could \
not take it), and revokes it when the command exits, so no database user outlives it. --keep-lease \
leaves the lease to end at its TTL and replaces this process as above.

Env file: one NAME=VALUE per line. Blank lines and lines starting with # are skipped; an \
`export ` prefix is allowed; spaces around NAME and VALUE are trimmed. A VALUE may be quoted \
with \"…\" or '…' (taken literally, no escapes; a # comment may follow the closing quote). In an \
unquoted VALUE a # is part of the value: DB=file://demo/db.json#password. Errors name the file \
and line, never its text.

Configuration (--file-root, --bootstrap, --allowed-mounts and the environment) is as for \
`secrets resolve`; see its --help.

With --watch the command runs as a child instead, and is restarted when, and only when, the \
value of one of its secrets really changed (a new KV v2 version with the same value, or a file \
rewritten with the same bytes, is no change). Every resolved secret URI is watched as `secrets \
watch` does (files: at once, KV v2: every SECRETS_WATCH_INTERVAL_S seconds, default 30). A \
restart sends --restart-signal (default SIGTERM) to the command, waits up to --grace (default \
10s) for it to exit, then kills it (SIGKILL), and starts it again with the secrets re-resolved. \
Changes that arrive together or during a restart make one restart. A secret that becomes \
unreadable (deleted, refused) is a warning on stderr and no restart: the command keeps the \
value it has.

The command runs in a process group of its own, and every signal goes to that whole group: \
what the command started (the server of `sh -c 'server; …'`) is stopped with it, waited for \
within --grace and killed after it, so no old process keeps an old secret beside the new one \
or outlives `secrets`. SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to `secrets` \
are passed on; after SIGINT or SIGTERM `secrets` waits up to --grace for the command to exit, \
then kills it (SIGKILL), and exits with its status (137 when killed). A SIGINT or SIGTERM \
before the command started ends `secrets` at once (130, 143). When the command exits on its \
own, `secrets` exits with its status (128 + N when signal N ended it, as a shell reports it), \
once whatever it left running in its group stopped (SIGTERM, then SIGKILL after --grace). \
At a terminal, the command is not in the terminal's foreground process group: a Ctrl-C \
reaches `secrets` alone, which passes it on, so the command gets one SIGINT. Interactive job \
control is not supported: a command that reads the terminal is stopped (SIGTTIN), and Ctrl-Z \
suspends `secrets` only.

Exit: the command's status; 1 when a secret could not be resolved; 2 on a usage or \
configuration error or an unreadable or malformed env file; 126 or 127 when the command could \
not be run.";

/// How `secrets inject` quotes a value for the format around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Escape {
    /// A JSON value, or a JSON string's contents inside `"…"`.
    Json,
    /// A double-quoted YAML scalar, or its contents inside `"…"` or `'…'`.
    Yaml,
    /// A single-quoted POSIX shell word, or its contents inside `'…'` or `"…"`.
    Shell,
}

/// `secrets inject`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InjectArgs {
    /// Where the secrets are.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// The template; `-` reads stdin.
    #[arg(short = 'i', long = "in", value_name = "TEMPLATE")]
    pub(crate) input: PathBuf,
    /// The file to write (atomically, with --mode); `-` writes to stdout, even a terminal.
    /// Without it the output goes to stdout, unless stdout is a terminal.
    #[arg(short = 'o', long = "out", value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,
    /// The output file's permissions, in octal.
    #[arg(long, value_name = "OCTAL", default_value = "0600", value_parser = parse_mode)]
    pub(crate) mode: u32,
    /// Validate the template and list its references (redacted) on stdout; resolve and write
    /// nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Quote each value for the format around it (see --help); by default values are inserted
    /// verbatim.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub(crate) escape: Option<Escape>,
}

/// `--mode`: octal permission bits (`600`, `0640`, `0o600`), at most `0777`.
fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.trim();
    let digits = digits.strip_prefix("0o").unwrap_or(digits);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 && !digits.is_empty() => Ok(mode),
        Ok(_) => Err("must be at most 0777 (no setuid, setgid or sticky bits)".to_owned()),
        Err(_) => Err("must be octal permission bits, e.g. 0600 or 0640".to_owned()),
    }
}

const INJECT_ABOUT: &str = "\
Render a template: replace each `{{ URI }}` by the value of the secret it names, and write the \
result.

A reference is `{{`, the URI (whitespace around it allowed, newlines included), `}}`: \
`{{ file://demo/db.json#password }}`, `{{openbao+kv2://secret/app/api#token}}`. Text between \
`{{` and `}}` that does not look like a URI (no `scheme://`), such as Go, Helm or Jinja's \
`{{ .Values.name }}`, is copied as is; text that does is a reference and must be a valid \
secret URI, so a typo (`{{ fle://x }}`) fails instead of passing through. A `{{` before a URI \
with no closing `}}` is UNTERMINATED_REFERENCE. `\\{{ URI }}` writes `{{ URI }}` literally, and \
`\\{{{ URI }}}` writes `{{{ URI }}}` (a backslash pair before a reference's braces writes one \
backslash). Every other byte of the template is \
copied unchanged. `secrets lint` checks templates by the same rules.

Every reference is validated first (the parser, the mount guard if --allowed-mounts is given, \
the query parameters): if any is invalid, nothing is resolved. Then every secret is resolved, \
concurrently, each once however often it is referenced. If anything fails, nothing is written: \
each failure prints `CODE: TEMPLATE:LINE:COLUMN (redacted URI): message` on stderr (COLUMN \
counts characters and points at the URI; never a value, never the full URI) and the exit code \
is 1.

Values are inserted verbatim: a string as is, JSON (a whole JSON file or KV v2 secret, or a \
non-string field) as compact JSON. A JSON number is written as the parser keeps it: 64-bit \
integers exactly, other numbers as the shortest decimal of their 64-bit float (1.50 as 1.5, \
1e3 as 1000.0); a number that would lose digits so (more than 15 significant digits, such as \
12345678901234567890123, or beyond the 64-bit integers) is INEXACT_NUMBER, never altered: \
store such a number as a string. --escape quotes each value for the format around it: the \
template's text is read as that format's lexer reads its quotes (shell: '…', \"…\", \\ and # \
comments; json: \"…\"; yaml: a quoted scalar opens where a scalar starts, # comments), and a \
reference inside a quoted string, alone or with other text (\"postgres://app:{{ URI }}@db\"), \
gets the value escaped for that string; anywhere else it becomes one complete quoted token:
  json   inside \"…\": the JSON string's contents (serde_json's escaping; JSON as its text). \
Outside: a JSON value: a string quoted, JSON as is, so numbers and objects keep their type.
  yaml   inside \"…\": a double-quoted scalar's contents; inside '…': a single-quoted \
scalar's (a value with a line break or a control character cannot be single-quoted: \
UNQUOTABLE_VALUE). Outside: a double-quoted scalar, JSON as a flow value (with \\uXXXX for \
the characters YAML does not read raw: DEL, C1, U+2028/9, the BOM).
  shell  inside '…': `'` becomes `'\\''`; inside \"…\": `\\`, `$`, `` ` `` and `\"` get a \
backslash. Outside: one single-quoted word (POSIX sh), so `KEY={{ URI }}` is safe to source. \
A NUL byte cannot be quoted for a shell (UNQUOTABLE_VALUE). Here-documents are not \
recognized: do not use --escape shell for a reference inside one.

Output: with -o PATH naming a regular file, or nothing yet, the result is written \
atomically: to a new file beside PATH, created with --mode (default 0600: never readable by \
others, not even briefly; the umask is not applied), flushed to disk, then renamed over PATH. \
PATH's folder must exist. If PATH is a symlink, the file it points to is replaced (the link \
stays); a symlink to a file that does not exist is refused (DANGLING_SYMLINK: nothing is \
created where a link points), and so is a symlink in a sticky world-writable folder such as \
/tmp that neither you nor the folder's owner owns (UNTRUSTED_SYMLINK, the kernel's \
fs.protected_symlinks rule). A character device or a FIFO (/dev/null, a named pipe, which \
waits for its reader) is written in place, and so is a descriptor's link (/dev/stdout, \
/dev/stderr, /dev/fd/N, /proc/self/fd/N): never renamed over, opened to append (--mode does \
not apply), so `-o /dev/stdout >> app.log` appends to app.log; a link to this process's \
stdout is written through stdout, as -o - is. A folder, a socket or a block device is \
NOT_A_FILE; a refused -o resolves nothing. With -o - the result goes to stdout. Without -o \
it goes to stdout unless stdout is a terminal, which is refused: secrets are not printed on \
a screen by accident. --dry-run resolves and writes \
nothing: it lists each reference as `LINE:COLUMN redacted URI` on stdout.

The template must be a regular file (or `-`, stdin), UTF-8, at most 16 MiB (TOO_LARGE); a \
FIFO or a device is NOT_A_FILE, refused without blocking.

Configuration (--file-root, --bootstrap, --allowed-mounts and the environment) is as for \
`secrets resolve`; see its --help. Database credentials (db+cred://) written to the output \
live on until their lease's TTL.

Exit 0 when the output was written (or, with --dry-run, every reference is valid), 1 when a \
reference is invalid or could not be resolved or quoted, 2 on a usage, configuration or I/O \
error.";

/// `secrets watch`.
#[derive(Debug, Clone, Args)]
pub(crate) struct WatchArgs {
    /// Where the secrets are.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// Also print each URI's starting state, one line each, before the changes.
    #[arg(long)]
    pub(crate) initial: bool,
    /// The secret URIs to watch.
    #[arg(value_name = "URI", required = true)]
    pub(crate) uris: Vec<String>,
}

const WATCH_ABOUT: &str = "\
Watch secret URIs and print one JSON line on stdout per change, until SIGINT or SIGTERM.

Each URI is resolved once when the watch starts: that is its starting state, and nothing is \
printed for it (with --initial, one line per URI, in argument order, as below). Without \
--initial, a starting state that is an error (the secret does not exist yet, …) is a warning \
on stderr, `secrets watch: warning: URI n (redacted URI): CODE: message`, and the URI stays \
watched. Then each \
change prints one line, flushed at once:
  {\"index\":0,\"uri\":\"file://demo/…\",\"version\":3,\"digest\":\"…\",\"at\":\"2026-12-01T10:00:00.123Z\"}
  {\"index\":0,\"uri\":\"file://demo/…\",\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"…\"},\"at\":\"…\"}
`index` is the URI's position among the arguments (from 0) and `uri` its redacted form. \
`version` is the new KV v2 version (absent for files). `digest` stands for the new content: \
32 hex digits of HMAC-SHA-256 under a key drawn at random by this process, so two lines of one \
run have the same digest exactly when the content is the same, and it cannot be reversed or \
compared with another run's. `at` is when the change was seen (UTC). An `error` line says the \
secret became unreadable (deleted, destroyed, refused), once; the watch goes on, and the \
secret coming back is a change. No line ever carries a value, a secret's path or a token.

A change is new content: a file rewritten with the same bytes prints nothing; a new KV v2 \
version prints a line even with the same value. Files are watched by inotify (a rewrite, or \
the kubelet's `..data` swap of a Secret volume, is seen within a second) and checked every \
watch interval too; KV v2 secrets are checked every SECRETS_WATCH_INTERVAL_S seconds (whole \
seconds, default 30, jittered by 10 %) through the metadata endpoint: an unchanged secret \
costs one metadata read per interval and no value read. A backend that is down prints \
nothing; the last state stands.

Configuration (--file-root, --bootstrap, --allowed-mounts and the environment) is as for \
`secrets resolve`; see its --help. Every URI is checked before anything is watched: an \
invalid URI, a mount outside the guard or a provider that is not configured prints `CODE: \
URI n (redacted URI): message` on stderr and exits 1, a configuration error exits 2.

Exit 0 on SIGINT or SIGTERM (and when stdout is closed), 1 when some URI cannot be watched, \
2 on a usage or configuration error.";

/// `secrets get`: the arguments. The subcommand's long help is `GET_ABOUT`.
#[derive(Args, Debug, Clone)]
pub(crate) struct GetArgs {
    /// The secret URI, e.g. `openbao+kv2://secret/app/api#token?version=3`.
    #[arg(value_name = "URI")]
    pub(crate) uri: String,
    /// The caller's subject (the `sub` of its verified token).
    #[arg(long, value_name = "S")]
    pub(crate) subject: String,
    /// An audience of the caller's token; repeat or comma-separate for several.
    #[arg(long = "aud", value_name = "A", value_delimiter = ',')]
    pub(crate) aud: Vec<String>,
    /// The token's `jti`, checked against replay.
    #[arg(long, value_name = "J")]
    pub(crate) jti: Option<String>,
    /// The DPoP key thumbprint (`cnf.jkt`) the token is bound to.
    #[arg(long = "cnf-jkt", value_name = "K")]
    pub(crate) cnf_jkt: Option<String>,
    /// The client certificate thumbprint (`x5t#S256`), used when there is no `--cnf-jkt`.
    #[arg(long = "mtls-thumbprint", value_name = "T")]
    pub(crate) mtls_thumbprint: Option<String>,
    /// A role of the subject, sent to the PDP; repeat or comma-separate for several.
    #[arg(long = "role", value_name = "R", value_delimiter = ',')]
    pub(crate) roles: Vec<String>,
    /// The token's issuer (`iss`); scopes the `jti`.
    #[arg(long, value_name = "ISS")]
    pub(crate) issuer: Option<String>,
    /// The token's expiry (`exp`, seconds since the Unix epoch): refused once past, or when
    /// further away than ANTI_REPLAY_MAX_TTL_S.
    #[arg(long, value_name = "EPOCH_SECONDS")]
    pub(crate) exp: Option<u64>,
    /// How to print the value.
    #[arg(long, value_enum, default_value_t = ValueFormat::Raw)]
    pub(crate) format: ValueFormat,
}

const GET_ABOUT: &str = "\
Read one secret through the Policy Enforcement Point, as the caller the flags describe: a PDP \
grant, the audience, jti anti-replay, the sender binding and one use of the grant, then the KV \
v2 read. With ENABLE_KAFKA_PRODUCER=true (and KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC_PREFIX) \
the decision and read audit events go to <prefix>secrets.audit, flushed before it exits.

Configuration comes from the environment, as a service's VaultClient::from_env() reads it: \
VAULT_URL, VAULT_TOKEN, TENANT_ID, TENANT_ALLOWED_MOUNTS, SECRET_TENANT_SALT and \
AUTHZEN_PDP_URL (or ENABLE_AUTHORIZATION=false for local development) are required; \
VAULT_TIMEOUT, VAULT_VERIFY_SSL, SECRETS_AUDIENCE, GRANT_TTL_DEFAULT, GRANT_MAX_USES_DEFAULT, \
NEGATIVE_CACHE_TTL_S, ANTI_REPLAY_TTL_S and the AUTHZEN_* settings are optional. Only openbao \
and hashicorp KV v2 URIs are served.

Without REDIS_URL one process is one PEP: anti-replay and use counts do not span runs (each \
run starts with no grants and no remembered jti). With REDIS_URL (and PEP_STATE_KEY, else \
SECRET_TENANT_SALT, keying it; REDIS_KEY_PREFIX, REDIS_TIMEOUT_MS optional) the PEP's state \
is in that Redis, as a service's replicas keep it: a jti used by one run, or by a service \
sharing the Redis, is refused (AUTHZ_DENIED, REPLAY) in the next, and runs share the grants' \
use counts; a Redis that cannot answer is STATE_STORE_UNAVAILABLE (exit 1), nothing read. \
The identity flags (--subject, --role, --aud, …) are the operator's assertion, not a \
verified token. Query parameters other than version are refused \
(UNKNOWN_PARAMETER) before the PDP or the vault is asked.

The value prints on stdout as `secrets resolve` prints it: a string as is, JSON as compact \
JSON; with --format json, one JSON document. A failure prints `CODE: message` on stderr \
(never a value, a token or a thumbprint).

Exit 0 when the value was printed, 1 when the read was refused or failed, 2 on a usage or \
configuration error.";

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

    #[test]
    fn resolve_takes_uris_and_client_flags() {
        let cli = Cli::try_parse_from([
            "secrets",
            "resolve",
            "--file-root",
            "examples/secrets",
            "--allowed-mounts",
            "demo",
            "--format",
            "json",
            "--refresh",
            "file://demo/a",
            "file://demo/b",
        ]);
        let Ok(Cli {
            command: Command::Resolve(args),
        }) = cli
        else {
            panic!("unexpected parse: {cli:?}");
        };
        assert_eq!(args.uris, ["file://demo/a", "file://demo/b"]);
        assert_eq!(args.format, ValueFormat::Json);
        assert!(args.client.refresh);
        assert_eq!(
            args.client.file_root.as_deref(),
            Some(std::path::Path::new("examples/secrets"))
        );
        assert!(args.client.bootstrap.is_none());
    }

    #[test]
    fn resolve_needs_a_uri_and_a_non_empty_guard() {
        let kind = |args: &[&str]| Cli::try_parse_from(args).err().map(|e| e.kind());
        assert_eq!(
            kind(&["secrets", "resolve"]),
            Some(clap::error::ErrorKind::MissingRequiredArgument)
        );
        assert_eq!(
            kind(&["secrets", "resolve", "--allowed-mounts", "", "file://a/b"]),
            Some(clap::error::ErrorKind::ValueValidation)
        );
    }

    #[test]
    fn exec_takes_the_command_after_the_separator() {
        let cli = Cli::try_parse_from([
            "secrets",
            "exec",
            "--env",
            "A=file://m/a",
            "--env-file",
            ".env",
            "--",
            "sh",
            "-c",
            "echo --env",
        ]);
        let Ok(Cli {
            command: Command::Exec(args),
        }) = cli
        else {
            panic!("unexpected parse: {cli:?}");
        };
        assert_eq!(args.env, ["A=file://m/a"]);
        assert_eq!(args.env_files, [PathBuf::from(".env")]);
        assert_eq!(args.command, ["sh", "-c", "echo --env"]);

        let kind = |args: &[&str]| Cli::try_parse_from(args).err().map(|e| e.kind());
        // No command, or one not after `--`.
        assert_eq!(
            kind(&["secrets", "exec", "--env", "A=b"]),
            Some(clap::error::ErrorKind::MissingRequiredArgument)
        );
        assert!(kind(&["secrets", "exec", "sh"]).is_some());
    }

    fn exec_args(args: &[&str]) -> Result<ExecArgs, clap::error::ErrorKind> {
        match Cli::try_parse_from(args) {
            Ok(Cli {
                command: Command::Exec(args),
            }) => Ok(args),
            Ok(other) => panic!("unexpected parse: {other:?}"),
            Err(e) => Err(e.kind()),
        }
    }

    #[test]
    fn exec_watch_takes_a_restart_signal_and_a_grace() {
        let args = exec_args(&["secrets", "exec", "--watch", "--", "true"]).unwrap();
        assert!(args.watch);
        assert_eq!(args.restart_signal, 15);
        assert_eq!(args.grace, Duration::from_secs(10));

        let args = exec_args(&[
            "secrets",
            "exec",
            "--watch",
            "--restart-signal",
            "SIGHUP",
            "--grace",
            "500ms",
            "--",
            "true",
        ])
        .unwrap();
        assert_eq!(
            (args.restart_signal, args.grace),
            (1, Duration::from_millis(500))
        );
        for (grace, expected) in [("3", 3_000), ("1m", 60_000), ("1s 500ms", 1_500), ("0", 0)] {
            let args =
                exec_args(&["secrets", "exec", "--watch", "--grace", grace, "--", "true"]).unwrap();
            assert_eq!(args.grace, Duration::from_millis(expected), "{grace}");
        }

        let without = exec_args(&["secrets", "exec", "--", "true"]).unwrap();
        assert!(!without.watch);
        for bad in [
            &[
                "secrets",
                "exec",
                "--watch",
                "--restart-signal",
                "NOPE",
                "--",
                "true",
            ][..],
            &[
                "secrets", "exec", "--watch", "--grace", "soon", "--", "true",
            ],
            &["secrets", "exec", "--watch", "--grace", "1x", "--", "true"],
        ] {
            assert_eq!(
                exec_args(bad).err(),
                Some(clap::error::ErrorKind::ValueValidation),
                "{bad:?}"
            );
        }
        // The restart settings mean nothing without --watch.
        assert_eq!(
            exec_args(&["secrets", "exec", "--grace", "1s", "--", "true"]).err(),
            Some(clap::error::ErrorKind::MissingRequiredArgument)
        );
        assert_eq!(
            exec_args(&["secrets", "exec", "--restart-signal", "HUP", "--", "true"]).err(),
            Some(clap::error::ErrorKind::MissingRequiredArgument)
        );
    }

    #[test]
    fn watch_takes_uris_and_initial() {
        let cli =
            Cli::try_parse_from(["secrets", "watch", "--initial", "file://a/x", "file://b/y"]);
        let Ok(Cli {
            command: Command::Watch(args),
        }) = cli
        else {
            panic!("unexpected parse: {cli:?}");
        };
        assert!(args.initial);
        assert_eq!(args.uris, ["file://a/x", "file://b/y"]);
        assert_eq!(
            Cli::try_parse_from(["secrets", "watch"])
                .err()
                .map(|e| e.kind()),
            Some(clap::error::ErrorKind::MissingRequiredArgument)
        );
    }

    #[test]
    fn inject_takes_a_template_an_output_a_mode_and_an_escape() {
        let parse = |args: &[&str]| match Cli::try_parse_from(args) {
            Ok(Cli {
                command: Command::Inject(args),
            }) => Ok(args),
            Ok(other) => panic!("unexpected parse: {other:?}"),
            Err(e) => Err(e.kind()),
        };
        let args = parse(&["secrets", "inject", "-i", "t.tmpl"]).unwrap();
        assert_eq!(args.input, PathBuf::from("t.tmpl"));
        assert_eq!((args.output, args.mode, args.escape), (None, 0o600, None));
        assert!(!args.dry_run);
        let args = parse(&[
            "secrets",
            "inject",
            "--in",
            "-",
            "--out",
            "-",
            "--mode",
            "640",
            "--escape",
            "json",
            "--dry-run",
        ])
        .unwrap();
        assert_eq!(args.output, Some(PathBuf::from("-")));
        assert_eq!((args.mode, args.escape), (0o640, Some(Escape::Json)));
        for (mode, want) in [("0600", 0o600), ("0o755", 0o755), ("0", 0), ("777", 0o777)] {
            assert_eq!(parse_mode(mode), Ok(want), "{mode}");
        }
        for bad in ["", "0o", "8", "rw", "1777", "-1"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse(&["secrets", "inject"]).err(),
            Some(clap::error::ErrorKind::MissingRequiredArgument)
        );
        assert_eq!(
            parse(&["secrets", "inject", "-i", "t", "--escape", "toml"]).err(),
            Some(clap::error::ErrorKind::InvalidValue)
        );
    }
}
