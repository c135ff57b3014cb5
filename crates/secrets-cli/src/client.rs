//! What `resolve` and `exec` share: building a [`SecretsClient`] from [`ClientArgs`] and the
//! environment, resolving a batch of URIs concurrently, and describing an error without
//! leaking anything.

use std::fmt;
use std::sync::Arc;

use secret_uri::SecretUri;
use secrets_sdk::{
    ALLOWED_MOUNTS_ENV, Error, ResolveOptions, Secret, SecretsClient, SecretsClientBuilder,
};

use crate::cli::ClientArgs;

/// Reads an environment variable; [`process_env`] in the binary, a map in tests.
pub(crate) type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment, read as the SDK's `from_env` reads it.
#[must_use]
pub(crate) fn process_env() -> EnvLookup {
    Arc::new(|name| std::env::var(name).ok())
}

/// Why no client could be built: a usage or configuration error (exit 2).
#[derive(Debug)]
pub(crate) struct ConfigError {
    /// The stable code: the SDK's (`CONFIG`, `BOOTSTRAP_IO`, …) or `CONFIG` for the CLI's own
    /// checks.
    pub(crate) code: &'static str,
    /// What is wrong; names settings and paths, never values.
    pub(crate) message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Builds the client: the flags first, then `env` as `SecretsClient::create()` reads it.
/// With neither `--allowed-mounts` nor `SECRETS_ALLOWED_MOUNTS`, any mount is allowed (a
/// service must name its mounts; an operator at a shell may read any). Does no I/O beyond
/// reading a bootstrap file: the vault is contacted at the first vault read.
///
/// # Errors
/// The SDK's configuration errors (`CONFIG`, `BOOTSTRAP_IO`, `BOOTSTRAP_PARSE`,
/// `BOOTSTRAP_INVALID`), e.g. for an empty `SECRETS_ALLOWED_MOUNTS` or a missing
/// `--bootstrap` file.
pub(crate) fn build(args: &ClientArgs, env: &EnvLookup) -> Result<SecretsClient, ConfigError> {
    finish(builder(args, env))
}

/// The builder [`build`] finishes, for a command that sets more on it.
pub(crate) fn builder(args: &ClientArgs, env: &EnvLookup) -> SecretsClientBuilder {
    let lookup = Arc::clone(env);
    let mut builder = SecretsClient::builder().env_lookup(move |name| lookup(name));
    if let Some(path) = &args.bootstrap {
        builder = builder.bootstrap_path(path);
    }
    if let Some(root) = &args.file_root {
        builder = builder.file_root(root);
    }
    match &args.allowed_mounts {
        Some(mounts) => builder.allowed_mounts(mounts.clone()),
        // Set (even to nothing): the SDK applies it, and refuses an empty list.
        None if env(ALLOWED_MOUNTS_ENV).is_some() => builder,
        None => builder.allow_any_mount(),
    }
}

/// Builds the client, its errors as a [`ConfigError`].
///
/// # Errors
/// As [`build`].
pub(crate) fn finish(builder: SecretsClientBuilder) -> Result<SecretsClient, ConfigError> {
    builder.build().map_err(|e| ConfigError {
        code: e.code(),
        message: message(&e),
    })
}

/// Refuses a `SECRETS_ALLOWED_MOUNTS` that is set but not UTF-8: [`process_env`] cannot read
/// it, and treating it as unset would lift the mount guard.
///
/// # Errors
/// `CONFIG` naming the variable.
pub(crate) fn check_process_env() -> Result<(), ConfigError> {
    match std::env::var(ALLOWED_MOUNTS_ENV) {
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError {
            code: "CONFIG",
            message: format!("invalid configuration: {ALLOWED_MOUNTS_ENV} is not valid UTF-8"),
        }),
        _ => Ok(()),
    }
}

/// Resolves every URI concurrently; the results are in the order of `uris`. `refresh`
/// bypasses the cache for each.
///
/// # Errors
/// Only when the runtime that drives the reads cannot start.
pub(crate) fn resolve_all(
    client: &SecretsClient,
    uris: &[&str],
    refresh: bool,
) -> std::io::Result<Vec<Result<Secret, Error>>> {
    // One thread is enough: file reads are quick and in place, and KV v2 reads run on the
    // client's own runtime, which this one only waits for.
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    Ok(runtime.block_on(async {
        if !refresh {
            return client.resolve_many(uris).await;
        }
        let tasks: Vec<_> = uris
            .iter()
            .map(|uri| {
                let (client, uri) = (client.clone(), (*uri).to_owned());
                tokio::spawn(async move {
                    client
                        .resolve_with(uri.as_str(), ResolveOptions::refresh())
                        .await
                })
            })
            .collect();
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            results.push(task.await.unwrap_or_else(|e| {
                Err(Error::Runtime {
                    reason: "the read task was cancelled",
                    source: Some(Box::new(e)),
                })
            }));
        }
        results
    }))
}

/// The error's message for `CODE: … message` lines: the most specific error's `Display` (the
/// parser's or the provider's, which name the mount, status or byte offset) without its
/// trailing `[CODE]`. Never a value, a token or the full URI.
#[must_use]
pub(crate) fn message(error: &Error) -> String {
    if let Some(uri) = error.uri_error() {
        return uri.to_string();
    }
    let text = match error.provider_error() {
        Some(provider) => provider.to_string(),
        None => error.to_string(),
    };
    let suffix = format!(" [{}]", error.code());
    match text.strip_suffix(&suffix) {
        Some(stripped) => stripped.to_owned(),
        None => text,
    }
}

/// The redacted form of `uri` (`scheme://mount/…`) when it parses, to name it in errors.
#[must_use]
pub(crate) fn redacted(uri: &str) -> Option<String> {
    SecretUri::parse(uri).ok().map(|u| u.redacted().to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use secret_uri::AllowedMounts;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> EnvLookup {
        Arc::new(secrets_test_support::env_map(vars))
    }

    /// A file root with `a/x` and `b/x`.
    fn root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for mount in ["a", "b"] {
            std::fs::create_dir(root.path().join(mount)).unwrap();
            std::fs::write(root.path().join(mount).join("x"), mount).unwrap();
        }
        root
    }

    fn codes(client: &SecretsClient) -> Vec<&'static str> {
        resolve_all(client, &["file://a/x", "file://b/x"], false)
            .unwrap()
            .iter()
            .map(|r| r.as_ref().map_or_else(Error::code, |_| "OK"))
            .collect()
    }

    #[test]
    fn the_mount_guard_comes_from_the_flag_then_the_environment_else_any() {
        let root = root();
        let mut args = ClientArgs {
            file_root: Some(root.path().to_owned()),
            ..ClientArgs::default()
        };
        let any = build(&args, &env(&[])).unwrap();
        assert_eq!(codes(&any), ["OK", "OK"]);

        let from_env = build(&args, &env(&[(ALLOWED_MOUNTS_ENV, "b")])).unwrap();
        assert_eq!(codes(&from_env), ["TENANT_MOUNT_MISMATCH", "OK"]);

        args.allowed_mounts = Some(AllowedMounts::from_csv("a"));
        let flag = build(&args, &env(&[(ALLOWED_MOUNTS_ENV, "b")])).unwrap();
        assert_eq!(codes(&flag), ["OK", "TENANT_MOUNT_MISMATCH"]);
    }

    #[test]
    fn an_empty_mount_list_in_the_environment_is_refused() {
        let err = build(&ClientArgs::default(), &env(&[(ALLOWED_MOUNTS_ENV, " , ")])).unwrap_err();
        assert_eq!(err.code, "CONFIG");
        assert_eq!(
            err.to_string(),
            "CONFIG: invalid configuration: SECRETS_ALLOWED_MOUNTS is empty; list the mounts \
             this service may read"
        );
    }

    #[test]
    fn the_file_root_comes_from_the_flag_then_the_environment() {
        let root = root();
        let other = tempfile::tempdir().unwrap();
        let vars = [("FILE_MOUNT_PATH", root.path().to_str().unwrap())];
        let from_env = build(&ClientArgs::default(), &env(&vars)).unwrap();
        assert_eq!(codes(&from_env), ["OK", "OK"]);
        let args = ClientArgs {
            file_root: Some(other.path().to_owned()),
            ..ClientArgs::default()
        };
        let flag = build(&args, &env(&vars)).unwrap();
        assert_eq!(codes(&flag), ["NOT_FOUND", "NOT_FOUND"]);
    }

    #[test]
    fn a_missing_bootstrap_file_is_a_config_error() {
        let args = ClientArgs {
            bootstrap: Some("/nonexistent/bootstrap.json".into()),
            ..ClientArgs::default()
        };
        let err = build(&args, &env(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "BOOTSTRAP_IO: bootstrap file /nonexistent/bootstrap.json could not be read"
        );
    }

    #[test]
    fn refresh_resolves_in_order_too() {
        let root = root();
        let args = ClientArgs {
            file_root: Some(root.path().to_owned()),
            ..ClientArgs::default()
        };
        let client = build(&args, &env(&[])).unwrap();
        let results = resolve_all(
            &client,
            &["file://b/x", "file://a/missing", "file://a/x"],
            true,
        )
        .unwrap();
        let shown: Vec<String> = results
            .iter()
            .map(|r| match r {
                Ok(secret) => secret.expose_as_text().to_string(),
                Err(e) => e.code().to_owned(),
            })
            .collect();
        assert_eq!(shown, ["b", "NOT_FOUND", "a"]);
    }

    #[test]
    fn messages_are_the_specific_error_without_the_code_suffix() {
        let client = build(&ClientArgs::default(), &env(&[])).unwrap();
        let results = resolve_all(
            &client,
            &["file://a/*", "db://m/x", "openbao+kv2://secret/app#k"],
            false,
        )
        .unwrap();
        let shown: Vec<String> = results
            .iter()
            .map(|r| r.as_ref().map_or_else(message, |_| "OK".to_owned()))
            .collect();
        assert_eq!(
            shown[0],
            "invalid wildcard at byte 9: `*` is not allowed in a path segment"
        );
        assert_eq!(
            shown[1],
            "db: unsupported provider: no provider serves this scheme (built in: file, openbao, hashicorp)"
        );
        assert!(
            shown[2].starts_with("openbao: no vault is configured for this scheme (no bootstrap"),
            "{}",
            shown[2]
        );
        assert!(shown.iter().all(|m| !m.ends_with(']')), "{shown:?}");
    }

    #[test]
    fn redacted_hides_the_path_and_key() {
        assert_eq!(
            redacted("FILE://demo/db.json#password").as_deref(),
            Some("file://demo/…")
        );
        assert_eq!(redacted("file://demo/*"), None);
    }
}
