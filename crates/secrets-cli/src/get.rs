//! `secrets get`: read one secret through the Policy Enforcement Point, as a named caller.
//!
//! ```text
//! secrets get URI --subject S [--aud A]… [--jti J] [--cnf-jkt K] [--mtls-thumbprint T]
//!                 [--role R]… [--format raw|json]
//! ```
//!
//! The client is `secrets_sdk::VaultClient`, configured from the environment as
//! `VaultClient::from_env()` reads it: `VAULT_URL`, `VAULT_TOKEN`, `TENANT_ID`,
//! `TENANT_ALLOWED_MOUNTS`, `SECRET_TENANT_SALT` and `AUTHZEN_PDP_URL` (or
//! `ENABLE_AUTHORIZATION=false` for local development) are required; see
//! `docs/vault-client.md`. The read is a full PEP decision: PDP grant, audience, `jti`
//! anti-replay, sender binding, one use of the grant; with `ENABLE_KAFKA_PRODUCER=true` its
//! decision and read events go to Kafka, flushed before the command exits.
//!
//! Without `REDIS_URL` one process is one PEP: anti-replay and use counts live in the process
//! and do not span runs (every run starts with no grants and no remembered `jti`s). With
//! `REDIS_URL` set (the CLI is built with the sdk's `redis` feature) the PEP's state lives in
//! that Redis, read by secret-pep's own settings reader (`REDIS_KEY_PREFIX`, `PEP_STATE_KEY`
//! else `SECRET_TENANT_SALT`, `REDIS_TIMEOUT_MS`, …): the run is one more replica of the
//! services sharing that Redis, so a `jti` one run used is a `REPLAY` in the next, and grants
//! and their use counts are shared; a Redis that cannot answer is `STATE_STORE_UNAVAILABLE`
//! (exit 1) with nothing read. The identity flags are the operator's assertion, not a verified
//! token. It is a tool for operators and tests, not a way for a caller to prove who it is.
//!
//! Output: the value on stdout, as `secrets resolve` prints it (raw text for a string, compact
//! JSON otherwise; `--format json`: one JSON document either way). Errors: `CODE: message` on
//! stderr, never a value, token or thumbprint. Exit codes: 0 the value was printed; 1 the read
//! was refused or failed (`AUTHZ_DENIED`, `PDP_UNAVAILABLE`, `NOT_FOUND`, an invalid URI, …);
//! 2 the configuration is missing or invalid (`CONFIG`), or (from clap) a usage error.

use std::io::{self, Write};

use secrets_sdk::{ExecutionContext, VaultClient};

use crate::cli::{GetArgs, ValueFormat};
use crate::client::{self, EnvLookup};
use crate::status::Status;

impl GetArgs {
    /// The caller these flags describe.
    #[must_use]
    pub(crate) fn context(&self) -> ExecutionContext {
        let mut ctx = ExecutionContext::new(self.subject.trim())
            .with_aud(self.aud.iter().map(|a| a.trim()).filter(|a| !a.is_empty()))
            .with_roles(
                self.roles
                    .iter()
                    .map(|r| r.trim())
                    .filter(|r| !r.is_empty()),
            );
        ctx.token_jti.clone_from(&self.jti);
        ctx.issuer.clone_from(&self.issuer);
        ctx.exp = self.exp;
        ctx.cnf_jkt.clone_from(&self.cnf_jkt);
        ctx.mtls_thumbprint.clone_from(&self.mtls_thumbprint);
        ctx
    }
}

/// `secrets get`: builds the client from `env`, reads `args.uri` as the caller the flags
/// describe, and prints the value on `out`, or `CODE: message` on `err`.
///
/// Returns `Success` (exit 0) when the value was printed, `Findings` (exit 1) when the read was
/// refused or failed, `Failure` (exit 2) when the client could not be configured.
///
/// # Errors
/// Only write errors on `out` or `err`.
pub(crate) fn run<O: Write, E: Write>(
    args: &GetArgs,
    env: &EnvLookup,
    out: O,
    err: E,
) -> io::Result<Status> {
    let lookup = std::sync::Arc::clone(env);
    let client = VaultClient::builder()
        .env_lookup(move |name| lookup(name))
        .build();
    get(args, client, out, err)
}

/// [`run`] with a given client (or the error building it).
///
/// # Errors
/// Only write errors on `out` or `err`.
pub(crate) fn get<O: Write, E: Write>(
    args: &GetArgs,
    client: Result<VaultClient, secrets_sdk::Error>,
    mut out: O,
    mut err: E,
) -> io::Result<Status> {
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            writeln!(err, "{}: {}", e.code(), client::message(&e))?;
            return Ok(Status::Failure);
        }
    };
    let result = client.get_credentials_blocking(args.uri.as_str(), Some(&args.context()));
    client.close();
    match result {
        Ok(secret) => {
            let value = match args.format {
                ValueFormat::Raw => secret.expose_as_text(),
                ValueFormat::Json => secret.expose_as_json(),
            };
            out.write_all(value.as_bytes())?;
            out.write_all(b"\n")?;
            out.flush()?;
            Ok(Status::Success)
        }
        Err(e) => {
            writeln!(err, "{}: {}", e.code(), client::message(&e))?;
            Ok(if e.code() == "CONFIG" {
                Status::Failure
            } else {
                Status::Findings
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use clap::Parser;
    use secrets_sdk::pep::{DevAllowAll, PepConfig};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        get: GetArgs,
    }

    fn parse(args: &[&str]) -> Result<GetArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("get").chain(args.iter().copied())).map(|c| c.get)
    }

    /// A client that needs no server: URIs it refuses never reach one.
    fn offline_client() -> Result<VaultClient, secrets_sdk::Error> {
        VaultClient::builder()
            .env_lookup(|name| match name {
                "VAULT_URL" => Some("http://127.0.0.1:9".to_owned()),
                "VAULT_TOKEN" => Some("s.offline".to_owned()),
                _ => None,
            })
            .pep_config(PepConfig::new("t1", "secret".parse()?).with_environment("test"))
            .pdp(DevAllowAll::new())
            .tenant_salt("offline-test-salt-0123456789")
            .build()
    }

    fn run_get(
        args: &GetArgs,
        client: Result<VaultClient, secrets_sdk::Error>,
    ) -> (Status, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = get(args, client, &mut out, &mut err).unwrap_or(Status::Failure);
        (
            status,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    #[test]
    fn flags_build_the_context() -> Result<(), clap::Error> {
        let args = parse(&[
            "openbao+kv2://secret/app#token",
            "--subject",
            "alice",
            "--aud",
            "crud.secrets,billing",
            "--aud",
            "other",
            "--jti",
            "j-1",
            "--cnf-jkt",
            "jkt",
            "--mtls-thumbprint",
            "x5t",
            "--role",
            "reader",
        ])?;
        let ctx = args.context();
        assert_eq!(ctx.subject.as_deref(), Some("alice"));
        assert_eq!(ctx.aud, ["crud.secrets", "billing", "other"]);
        assert_eq!(ctx.roles, ["reader"]);
        assert_eq!(ctx.token_jti.as_deref(), Some("j-1"));
        assert_eq!(ctx.sender_binding(), Some("jkt"));
        assert_eq!(ctx.mtls_thumbprint.as_deref(), Some("x5t"));
        // --subject is required.
        let missing = parse(&["openbao+kv2://secret/app"]).map(drop);
        assert_eq!(
            missing.map_err(|e| e.kind()),
            Err(clap::error::ErrorKind::MissingRequiredArgument)
        );
        Ok(())
    }

    #[test]
    fn configuration_errors_exit_2_and_refusals_exit_1() -> Result<(), Box<dyn std::error::Error>> {
        let args = parse(&["file://secret/app", "--subject", "alice"])?;
        let env: EnvLookup = std::sync::Arc::new(|_| None);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = run(&args, &env, &mut out, &mut err)?;
        let err = String::from_utf8(err)?;
        assert_eq!((status.code(), out.as_slice()), (2, &b""[..]));
        assert!(
            err.starts_with("CONFIG: ") && err.contains("VAULT_URL"),
            "{err}"
        );
        assert!(!err.ends_with("[CONFIG]\n"), "{err}");

        let (status, out, err) = run_get(&args, offline_client());
        assert_eq!((status.code(), out.as_str()), (1, ""));
        assert!(err.starts_with("UNSUPPORTED_PROVIDER: "), "{err}");

        let args = parse(&[
            "openbao+kv2://secret/app#token",
            "--subject",
            "alice",
            "--aud",
            "billing",
        ])?;
        let (status, _, err) = run_get(&args, offline_client());
        assert_eq!(status.code(), 1);
        assert!(
            err.starts_with("AUTHZ_DENIED: ") && err.contains("AUDIENCE"),
            "{err}"
        );

        let args = parse(&["openbao+kv2://other/app", "--subject", "alice"])?;
        let (status, _, err) = run_get(&args, offline_client());
        assert_eq!(status.code(), 1);
        assert!(err.starts_with("TENANT_MOUNT_MISMATCH: "), "{err}");
        Ok(())
    }

    #[test]
    fn unserved_parameters_touch_no_server() -> Result<(), Box<dyn std::error::Error>> {
        let vault = secrets_test_support::FaultServer::start(Vec::new())?;
        let pdp = secrets_test_support::FaultServer::start(Vec::new())?;
        let vars: Vec<(&str, String)> = vec![
            ("VAULT_URL", vault.addr()),
            ("VAULT_TOKEN", "s.offline".to_owned()),
            ("TENANT_ID", "t1".to_owned()),
            ("TENANT_ALLOWED_MOUNTS", "secret".to_owned()),
            ("SECRET_TENANT_SALT", "cli-test-salt-0123456789".to_owned()),
            ("AUTHZEN_PDP_URL", pdp.addr()),
        ];
        let env: EnvLookup = Arc::new(secrets_test_support::env_map(&vars));
        for uri in [
            "openbao+kv2://secret/app/api#token?n=1",
            "openbao+kv2://secret/app/api?verison=2#token",
        ] {
            let args = parse(&[
                uri,
                "--subject",
                "alice",
                "--aud",
                "crud.secrets",
                "--jti",
                "j",
            ])?;
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let status = run(&args, &env, &mut out, &mut err)?;
            let err = String::from_utf8(err)?;
            assert_eq!((status.code(), out.as_slice()), (1, &b""[..]), "{err}");
            assert!(err.starts_with("UNKNOWN_PARAMETER: "), "{err}");
        }
        assert_eq!(
            (vault.connection_count(), pdp.connection_count()),
            (0, 0),
            "neither the vault nor the PDP was contacted"
        );
        Ok(())
    }

    /// With `REDIS_URL` the run keeps the PEP's state in Redis; one that cannot be reached
    /// fails the read closed (exit 1) before the PDP or the vault is asked, naming neither the
    /// URL nor its password.
    #[test]
    fn an_unreachable_redis_fails_closed() -> Result<(), Box<dyn std::error::Error>> {
        let vault = secrets_test_support::FaultServer::start(Vec::new())?;
        let pdp = secrets_test_support::FaultServer::start(Vec::new())?;
        let vars: Vec<(&str, String)> = vec![
            ("VAULT_URL", vault.addr()),
            ("VAULT_TOKEN", "s.offline".to_owned()),
            ("TENANT_ID", "t1".to_owned()),
            ("TENANT_ALLOWED_MOUNTS", "secret".to_owned()),
            ("SECRET_TENANT_SALT", "cli-test-salt-0123456789".to_owned()),
            ("AUTHZEN_PDP_URL", pdp.addr()),
            // Nothing listens on port 1: every connection is refused.
            ("REDIS_URL", "redis://:pw-canary@127.0.0.1:1".to_owned()),
            ("REDIS_TIMEOUT_MS", "300".to_owned()),
            ("REDIS_CONNECT_TIMEOUT_MS", "100".to_owned()),
        ];
        let env: EnvLookup = Arc::new(secrets_test_support::env_map(&vars));
        let args = parse(&[
            "openbao+kv2://secret/app/api#token",
            "--subject",
            "alice",
            "--aud",
            "crud.secrets",
            "--jti",
            "j",
        ])?;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = run(&args, &env, &mut out, &mut err)?;
        let err = String::from_utf8(err)?;
        assert_eq!((status.code(), out.as_slice()), (1, &b""[..]), "{err}");
        assert!(err.starts_with("STATE_STORE_UNAVAILABLE: "), "{err}");
        assert!(
            !err.contains("pw-canary") && !err.contains("127.0.0.1:1"),
            "{err}"
        );
        assert_eq!(
            (vault.connection_count(), pdp.connection_count()),
            (0, 0),
            "neither the vault nor the PDP was contacted"
        );
        Ok(())
    }
}
