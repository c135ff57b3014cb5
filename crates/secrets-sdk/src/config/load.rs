//! Reading a configuration file and resolving its references.

use std::collections::HashSet;
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
/// the field path and line), `CONFIG_UNREACHABLE_REFERENCE` (references in `T` that its
/// `Serialize` hides from the walk, so they could not be resolved), `CONFIG_SECRETS` (every
/// reference that failed).
pub async fn load<T>(client: &SecretsClient, path: impl AsRef<Path>) -> Result<T, LoadError>
where
    T: DeserializeOwned + Serialize,
{
    let (config, found) = read_unchecked(path.as_ref())?;
    resolve_found(client, &found).await?;
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
    let (config, found) = checked(text, format, "(text)")?;
    resolve_found(client, &found).await?;
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
    let (config, found) = read_unchecked(path)?;
    check(&found)?;
    Ok(config)
}

/// The file deserialized and its references found, unparsable ones kept (for the caller to
/// report with the others).
fn read_unchecked<T>(path: &Path) -> Result<(T, Vec<Found>), LoadError>
where
    T: DeserializeOwned + Serialize,
{
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
    checked(text, format, &path.display().to_string())
}

/// At most this many unreachable references are located (each one is a reading of the text).
const MAX_LOCATED: usize = 16;

/// `text` deserialized and its references found by the walk, unparsable ones kept. Every
/// reference the deserialization created must be among them: one the walk cannot see would
/// never be resolved (nor its URI checked), and `load` would succeed without it.
///
/// # Errors
/// `CONFIG_PARSE`; `CONFIG_UNREACHABLE_REFERENCE` naming the fields of those it cannot see.
fn checked<T>(text: &str, format: Format, origin: &str) -> Result<(T, Vec<Found>), LoadError>
where
    T: DeserializeOwned + Serialize,
{
    let parsed = parse::parse::<T>(text, format, origin)?;
    let found = walk(&parsed.value)?;
    let reachable: HashSet<*const _> = found.iter().map(|f| Arc::as_ptr(&f.slot)).collect();
    let hidden: Vec<usize> = parsed
        .created
        .iter()
        .enumerate()
        .filter(|(_, slot)| slot.strong_count() > 0 && !reachable.contains(&slot.as_ptr()))
        .map(|(index, _)| index)
        .collect();
    if hidden.is_empty() {
        return Ok((parsed.value, found));
    }
    let fields = hidden
        .iter()
        .take(MAX_LOCATED)
        .filter_map(|&index| parse::locate::<T>(text, format, parsed.mode, index))
        .collect();
    Err(LoadError::Unreachable {
        count: hidden.len(),
        fields,
    })
}

/// Deserializes `text` and checks its references, resolving nothing.
///
/// # Errors
/// `CONFIG_PARSE`; `CONFIG_UNREACHABLE_REFERENCE`; `CONFIG_SECRETS` listing every reference
/// that does not parse.
pub fn from_str<T>(text: &str, format: Format) -> Result<T, LoadError>
where
    T: DeserializeOwned + Serialize,
{
    let (config, found) = checked(text, format, "(text)")?;
    check(&found)?;
    Ok(config)
}

/// Every reference that does not parse, as one error.
fn check(found: &[Found]) -> Result<(), LoadError> {
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
    resolve_found(client, &walk(config)?).await
}

/// Resolves the references `found` (see [`resolve`]).
async fn resolve_found(client: &SecretsClient, found: &[Found]) -> Result<(), LoadError> {
    let mut failures = Vec::new();
    let mut wanted = Vec::with_capacity(found.len());
    for f in found {
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
