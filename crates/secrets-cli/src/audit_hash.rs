//! `secrets audit-hash`: the keyed `resource_ref` of each URI under `SECRET_TENANT_SALT`, so an
//! operator can search the audit trail for a secret they know (as Vault's `sys/audit-hash`).

use std::io::{self, Write};

use secrets_sdk::audit::AuditKey;
use secrets_sdk::uri::SecretUri;

use crate::cli::AuditHashArgs;
use crate::client::EnvLookup;
use crate::status::Status;

/// Prints one `resource_ref` a line, in the order of the URIs. An invalid URI prints
/// `CODE: URI n: message` on `err` and no line on `out`, and the exit status is 1; a missing
/// or short salt is `CONFIG` (exit 2).
///
/// # Errors
/// Only write errors on `out` or `err`.
pub(crate) fn run<O: Write, E: Write>(
    args: &AuditHashArgs,
    env: &EnvLookup,
    mut out: O,
    mut err: E,
) -> io::Result<Status> {
    let lookup = |name: &str| env(name);
    let key = match AuditKey::from_lookup(&lookup) {
        Ok(key) => key,
        Err(e) => {
            writeln!(err, "{}: invalid configuration: {e}", e.code())?;
            return Ok(Status::Failure);
        }
    };
    let mut status = Status::Success;
    for (at, text) in args.uris.iter().enumerate() {
        match SecretUri::parse(text) {
            Ok(uri) => writeln!(out, "{}", key.resource_ref(&uri))?,
            Err(e) => {
                writeln!(err, "{}: URI {}: {e}", e.code(), at + 1)?;
                status = Status::Findings;
            }
        }
    }
    out.flush()?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn hash(salt: Option<&str>, uris: &[&str]) -> (Status, String, String) {
        let salt = salt.map(str::to_owned);
        let env: EnvLookup = Arc::new(move |name: &str| {
            (name == "SECRET_TENANT_SALT")
                .then(|| salt.clone())
                .flatten()
        });
        let args = AuditHashArgs {
            uris: uris.iter().map(|u| (*u).to_owned()).collect(),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = run(&args, &env, &mut out, &mut err).unwrap_or(Status::Failure);
        (
            status,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    /// The fleet's vectors (issue 11), byte for byte.
    #[test]
    fn the_fleet_vectors_hold() {
        let (status, out, err) = hash(
            Some("tenant-salt-0001-for-acme-corp-x"),
            &[
                "openbao+kv2://secret/app/api#token?version=3",
                "file://dc-infra/config.json#password",
            ],
        );
        assert_eq!((status, err.as_str()), (Status::Success, ""));
        assert_eq!(
            out,
            "8cbd64017dc68f7258e00a0a7a0f572c\n8f2f4205826405363900cc07640d38ff\n"
        );
        let (_, out, _) = hash(
            Some("s3cr3t-salt-for-globex-2026-0002"),
            &["hashicorp+kv2://secret/crud/db"],
        );
        assert_eq!(out, "34799e215ddf118f464024ae4a8708bb\n");
        // Another spelling of the same URI: the same reference.
        let (_, out, _) = hash(
            Some("tenant-salt-0001-for-acme-corp-x"),
            &["OPENBAO+KV2://secret/app/api?version=3#token"],
        );
        assert_eq!(out, "8cbd64017dc68f7258e00a0a7a0f572c\n");
    }

    #[test]
    fn bad_uris_and_salts_are_typed_errors() {
        let (status, out, err) = hash(
            Some("tenant-salt-0001-for-acme-corp-x"),
            &[
                "openbao+kv2://secret/a/*",
                "file://dc-infra/config.json#password",
            ],
        );
        assert_eq!(status, Status::Findings);
        assert_eq!(out, "8f2f4205826405363900cc07640d38ff\n");
        assert!(err.starts_with("INVALID_WILDCARD: URI 1: "), "{err}");

        for salt in [None, Some("short-salt")] {
            let (status, out, err) = hash(salt, &["file://a/b"]);
            assert_eq!((status, out.as_str()), (Status::Failure, ""));
            assert!(err.starts_with("CONFIG: "), "{err}");
            assert!(err.contains("SECRET_TENANT_SALT"), "{err}");
            assert!(!err.contains("short-salt"), "the salt leaked: {err}");
        }
    }
}
