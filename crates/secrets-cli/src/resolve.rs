//! `secrets resolve`: print the values of secret URIs, all or nothing.

use std::io::{self, Write};

use crate::cli::{ResolveArgs, ValueFormat};
use crate::client::{self, EnvLookup};
use crate::status::Status;

/// `secrets resolve`: resolves every URI (concurrently), then prints one value per line on
/// `out`, in argument order. If any URI fails, `out` gets nothing and `err` gets one
/// `CODE: URI n (redacted URI): message` line per failure, in argument order: a script never
/// consumes a partial result.
///
/// Returns `Success`, `Findings` (some URI failed) or `Failure` (the client could not be
/// configured; `CODE: message` on `err`).
///
/// # Errors
/// Write errors on `out` or `err`; the runtime failing to start.
pub(crate) fn run<O: Write, E: Write>(
    args: &ResolveArgs,
    env: &EnvLookup,
    mut out: O,
    mut err: E,
) -> io::Result<Status> {
    let client = match client::build(&args.client, env) {
        Ok(client) => client,
        Err(e) => {
            writeln!(err, "{e}")?;
            return Ok(Status::Failure);
        }
    };
    let uris: Vec<&str> = args.uris.iter().map(String::as_str).collect();
    let results = client::resolve_all(&client, &uris, args.client.refresh)?;

    let mut failed = false;
    for (n, (uri, result)) in uris.iter().zip(&results).enumerate() {
        if let Err(e) = result {
            failed = true;
            let label = match client::redacted(uri) {
                Some(redacted) => format!("URI {} ({redacted})", n + 1),
                None => format!("URI {}", n + 1),
            };
            writeln!(err, "{}: {label}: {}", e.code(), client::message(e))?;
        }
    }
    if failed {
        client.close();
        return Ok(Status::Findings);
    }
    for secret in results.iter().flatten() {
        let value = match args.format {
            ValueFormat::Raw => secret.expose_as_text(),
            ValueFormat::Json => secret.expose_as_json(),
        };
        out.write_all(value.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    drop(results);
    // Printed database credentials are the caller's: their leases end at their TTL instead
    // of being revoked by `close`.
    client.keep_leases();
    // Empties the cache, so the values are zeroized now rather than at exit.
    client.close();
    Ok(Status::Success)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use super::*;
    use crate::cli::ClientArgs;

    const CANARY: &str = "canary-7f3a9c";

    fn run_in(
        root: &std::path::Path,
        format: ValueFormat,
        uris: &[&str],
    ) -> (Status, String, String) {
        let args = ResolveArgs {
            client: ClientArgs {
                file_root: Some(root.to_owned()),
                ..ClientArgs::default()
            },
            format,
            uris: uris.iter().map(|u| (*u).to_owned()).collect(),
        };
        let env: EnvLookup = Arc::new(|_| None);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = run(&args, &env, &mut out, &mut err).unwrap();
        (
            status,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("demo")).unwrap();
        std::fs::write(
            root.path().join("demo/db.json"),
            format!(r#"{{"user":"app","password":"{CANARY}","port":5432}}"#),
        )
        .unwrap();
        std::fs::write(root.path().join("demo/pem"), "line 1\nline 2").unwrap();
        root
    }

    #[test]
    fn prints_raw_or_json_values_in_order() {
        let root = root();
        let uris = [
            "file://demo/db.json#password",
            "file://demo/db.json#port",
            "file://demo/pem",
        ];
        let (status, out, err) = run_in(root.path(), ValueFormat::Raw, &uris);
        assert_eq!((status, err.as_str()), (Status::Success, ""));
        assert_eq!(out, format!("{CANARY}\n5432\nline 1\nline 2\n"));
        let (status, out, err) = run_in(root.path(), ValueFormat::Json, &uris);
        assert_eq!((status, err.as_str()), (Status::Success, ""));
        assert_eq!(out, format!("\"{CANARY}\"\n5432\n\"line 1\\nline 2\"\n"));
    }

    #[test]
    fn one_failure_prints_no_value() {
        let root = root();
        let (status, out, err) = run_in(
            root.path(),
            ValueFormat::Raw,
            &[
                "file://demo/db.json#password",
                "file://demo/nope",
                "file://demo/*",
            ],
        );
        assert_eq!(status, Status::Findings);
        assert_eq!(out, "");
        assert_eq!(
            err,
            "NOT_FOUND: URI 2 (file://demo/…): file: secret not found in mount `demo`\n\
             INVALID_WILDCARD: URI 3: invalid wildcard at byte 12: `*` is not allowed in a path \
             segment\n"
        );
    }

    #[test]
    fn a_config_error_is_a_failure() {
        let args = ResolveArgs {
            client: ClientArgs {
                bootstrap: Some("/nonexistent/b.json".into()),
                ..ClientArgs::default()
            },
            format: ValueFormat::Raw,
            uris: vec!["file://demo/x".into()],
        };
        let env: EnvLookup = Arc::new(|_| None);
        let mut err = Vec::new();
        let status = run(&args, &env, io::sink(), &mut err).unwrap();
        assert_eq!(status, Status::Failure);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "BOOTSTRAP_IO: bootstrap file /nonexistent/b.json could not be read\n"
        );
    }
}
