//! Reading a configuration file and resolving its references.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::walk::{Found, references};
use super::{Format, LoadError, RefFailure, parse};
use crate::SecretsClient;

/// Configuration files larger than this are refused (`CONFIG_IO`).
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// Reads the configuration file at `path` (its format from its extension: `.yaml`/`.yml`,
/// `.json`, `.toml`) into `T` and resolves every [`SecretRef`](super::SecretRef) in it
/// through `client`, concurrently.
///
/// Every reference is checked before any is resolved, and every failure is reported at once:
/// a URI that does not parse and a secret that cannot be read both appear in one
/// `CONFIG_SECRETS` error, each with its field path and code.
///
/// # Errors
/// `CONFIG_IO` (unreadable, not a regular file, not UTF-8, over [`MAX_CONFIG_BYTES`]),
/// `CONFIG_PARSE` (an unknown extension, invalid text or a shape that does not fit `T`, with
/// the field path and line), `CONFIG_SECRETS` (every reference that failed).
pub async fn load<T>(client: &SecretsClient, path: impl AsRef<Path>) -> Result<T, LoadError>
where
    T: DeserializeOwned + Serialize,
{
    let config = read_unchecked(path.as_ref())?;
    resolve(client, &config).await?;
    Ok(config)
}

/// [`load`] of text in a given format (`origin` names it in errors).
///
/// # Errors
/// As [`load`], without `CONFIG_IO`.
pub async fn load_str<T>(client: &SecretsClient, text: &str, format: Format) -> Result<T, LoadError>
where
    T: DeserializeOwned + Serialize,
{
    let config = parse::parse(text, format, "(text)")?;
    resolve(client, &config).await?;
    Ok(config)
}

/// Reads and checks a configuration file without resolving anything: its references are
/// parsed (a validator's or a dry run's view; resolve later with [`resolve`]).
///
/// # Errors
/// As [`load`]; `CONFIG_SECRETS` lists only references that do not parse.
pub fn read<T>(path: &Path) -> Result<T, LoadError>
where
    T: DeserializeOwned + Serialize,
{
    let config = read_unchecked(path)?;
    check(&config)?;
    Ok(config)
}

/// The file deserialized, unparsable references kept (for [`resolve`] to report with the
/// others).
fn read_unchecked<T: DeserializeOwned>(path: &Path) -> Result<T, LoadError> {
    let format = Format::from_path(path).ok_or_else(|| LoadError::UnknownFormat {
        path: path.to_owned(),
    })?;
    let io = |reason, source| LoadError::Io {
        path: path.to_owned(),
        reason,
        source,
    };
    let bytes =
        secret_providers::read_local_file(path, MAX_CONFIG_BYTES).map_err(|e| match e.kind() {
            std::io::ErrorKind::FileTooLarge => io("larger than 16 MiB", None),
            std::io::ErrorKind::InvalidInput => io("not a regular file", None),
            std::io::ErrorKind::NotFound => io("not found", Some(e)),
            std::io::ErrorKind::PermissionDenied => io("permission denied", Some(e)),
            _ => io("I/O error", Some(e)),
        })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| io("not UTF-8", None))?;
    parse::parse(text, format, &path.display().to_string())
}

/// Deserializes `text` and checks its references, resolving nothing.
///
/// # Errors
/// `CONFIG_PARSE`; `CONFIG_SECRETS` listing every reference that does not parse.
pub fn from_str<T>(text: &str, format: Format) -> Result<T, LoadError>
where
    T: DeserializeOwned + Serialize,
{
    let config = parse::parse(text, format, "(text)")?;
    check(&config)?;
    Ok(config)
}

/// Every reference that does not parse, as one error.
fn check<T: Serialize>(config: &T) -> Result<(), LoadError> {
    let found = walk(config)?;
    let failures: Vec<RefFailure> = found
        .iter()
        .filter_map(|f| {
            f.slot.parsed.as_ref().err().map(|code| RefFailure {
                field: f.field.clone(),
                code,
                error: None,
            })
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Secrets { failures })
    }
}

pub(super) fn walk<T: Serialize + ?Sized>(config: &T) -> Result<Vec<Found>, LoadError> {
    references(config).map_err(|e| LoadError::Walk { reason: e.0 })
}

/// Resolves every [`SecretRef`](super::SecretRef) of a struct the service deserialized
/// itself, concurrently through `client`. References already resolved are read again (a
/// cache hit, unless the secret's entry expired). On failure the references that did resolve
/// keep their values.
///
/// # Errors
/// `CONFIG_SECRETS` with every reference that failed (field path, code); `CONFIG_PARSE` when
/// the struct's own `Serialize` fails.
pub async fn resolve<T: Serialize + ?Sized>(
    client: &SecretsClient,
    config: &T,
) -> Result<(), LoadError> {
    let found = walk(config)?;
    let mut failures = Vec::new();
    let mut wanted = Vec::with_capacity(found.len());
    for f in &found {
        match &f.slot.parsed {
            Ok(uri) => wanted.push((f, uri.as_str())),
            Err(code) => failures.push((f.field.clone(), *code, None)),
        }
    }
    let results = client
        .resolve_many(wanted.iter().map(|(_, uri)| *uri))
        .await;
    for ((f, _), result) in wanted.iter().zip(results) {
        match result {
            Ok(secret) => f.slot.set(secret),
            Err(error) => failures.push((f.field.clone(), error.code(), Some(Arc::new(error)))),
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    // In the struct's order, whatever failed first.
    let order = |field: &str| found.iter().position(|f| f.field == field);
    failures.sort_by_key(|(field, _, _)| order(field));
    Err(LoadError::Secrets {
        failures: failures
            .into_iter()
            .map(|(field, code, error)| RefFailure { field, code, error })
            .collect(),
    })
}
