//! The `values` section of a bootstrap file and the provider that serves it as
//! `bootstrap://<name>[#key]`: the few settings a service needs before any vault is reachable,
//! held in the providers' zeroizing [`SecretValue`] and never sent anywhere.
//!
//! ```json
//! {"vault_addr": "https://bao:8200", "token_file": "/run/token",
//!  "values": {"kafka_password": "…", "db": {"password": "…", "user": "app"}}}
//! ```
//!
//! A name is the URI's whole path, mount first (`bootstrap://kafka_password`,
//! `bootstrap://kafka/sasl` for `"kafka/sasl"`); a value is a string (text) or an object of
//! strings, whose fields `#key` picks (`bootstrap://db#password`) as it picks a JSON file's.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use secret_providers::{ProviderError, ReadFuture, SecretProvider, SecretValue};
use secret_uri::{Provider, SecretUri};
use serde_json::Value;

use super::file::escaped;
use crate::Error;

/// The name the provider reports in errors and logs.
const NAME: &str = "bootstrap";

/// The `values` of a bootstrap file, by name; every value wiped when the last clone drops.
/// `Debug` shows how many there are, never a name or a value.
#[derive(Clone, Default)]
pub(crate) struct BootstrapValues {
    values: Arc<HashMap<String, SecretValue>>,
}

impl BootstrapValues {
    /// Checks a document's `values` object and moves its strings into [`SecretValue`]s
    /// (nothing copied: what is left of `section` is the caller's to wipe, as the rest of
    /// the document). `origin` names the file in errors.
    ///
    /// # Errors
    /// `BOOTSTRAP_INVALID` naming the first field at fault: `values` when it is not an object,
    /// `values.<name>` for a name that is not a `bootstrap://` path or a value that is neither
    /// a string nor an object, `values.<name>.<key>` for a field that is not a string.
    pub(crate) fn take(section: &mut Value, origin: &str) -> Result<Self, Error> {
        let invalid = |field: String, reason: &'static str| Error::BootstrapInvalid {
            origin: origin.to_owned(),
            field,
            reason,
        };
        let Value::Object(map) = section else {
            return Err(invalid(
                "values".into(),
                "must be an object of names to values",
            ));
        };
        for (name, value) in map.iter() {
            if !is_name(name) {
                return Err(invalid(
                    format!("values.{}", escaped(name)),
                    "is not a bootstrap:// name (path segments of A-Z a-z 0-9 . _ - joined by /)",
                ));
            }
            match value {
                Value::String(_) => {}
                Value::Object(fields) => {
                    if let Some((key, _)) = fields.iter().find(|(_, field)| !field.is_string()) {
                        return Err(invalid(
                            format!("values.{name}.{}", escaped(key)),
                            "must be a string",
                        ));
                    }
                }
                _ => {
                    return Err(invalid(
                        format!("values.{name}"),
                        "must be a string or an object of strings",
                    ));
                }
            }
        }
        let values = std::mem::take(map)
            .into_iter()
            .map(|(name, value)| (name, SecretValue::from_json(value)))
            .collect();
        Ok(Self {
            values: Arc::new(values),
        })
    }

    /// How many values there are.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// The value named by `uri`'s path (mount and path), or with `#key` that field of it.
    ///
    /// # Errors
    /// `NOT_FOUND` for a name with no value, `KEY_NOT_FOUND` for a `#key` the object lacks,
    /// `NOT_JSON` for a `#key` on a string, `UNKNOWN_PARAMETER` for any query parameter,
    /// `UNSUPPORTED_PROVIDER` for another scheme.
    pub(crate) fn read(&self, uri: &SecretUri) -> Result<SecretValue, ProviderError> {
        if uri.provider() != Provider::Bootstrap || uri.engine().is_some() {
            return Err(ProviderError::UnsupportedProvider {
                provider: NAME,
                what: format!("`{}`", uri.provider()),
            });
        }
        secret_providers::check_parameters(uri)?;
        let mount = uri.mount();
        let name = match uri.path() {
            "" => std::borrow::Cow::Borrowed(mount),
            path => std::borrow::Cow::Owned(format!("{mount}/{path}")),
        };
        let value = self
            .values
            .get(name.as_ref())
            .ok_or_else(|| ProviderError::NotFound {
                provider: NAME,
                mount: mount.to_owned(),
                status: None,
            })?;
        let Some(key) = uri.key() else {
            return Ok(value.clone());
        };
        match value.expose_json() {
            Some(Value::Object(fields)) => fields
                .get(key)
                .map(|field| SecretValue::from_json(field.clone()))
                .ok_or_else(|| ProviderError::KeyNotFound {
                    provider: NAME,
                    mount: mount.to_owned(),
                }),
            _ => Err(ProviderError::NotJson {
                provider: NAME,
                mount: mount.to_owned(),
            }),
        }
    }
}

impl fmt::Debug for BootstrapValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapValues")
            .field("len", &self.values.len())
            .finish_non_exhaustive()
    }
}

/// Whether `name` is what a `bootstrap://` URI's path can spell, exactly: the URI parser's
/// own segment rules, no `#`, no query, no trailing `/`.
fn is_name(name: &str) -> bool {
    SecretUri::parse(&format!("bootstrap://{name}")).is_ok_and(|uri| {
        uri.key().is_none()
            && uri.params().next().is_none()
            && uri.as_str().strip_prefix("bootstrap://") == Some(name)
    })
}

/// Serves `bootstrap://` from a bootstrap's [`BootstrapValues`], in memory: a read never
/// leaves the process, so it answers before any vault is reachable.
#[derive(Debug, Clone)]
pub(crate) struct BootstrapProvider {
    values: BootstrapValues,
}

impl BootstrapProvider {
    /// A provider of these values.
    pub(crate) fn new(values: BootstrapValues) -> Self {
        Self { values }
    }
}

impl SecretProvider for BootstrapProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn serves(&self, uri: &SecretUri) -> bool {
        uri.provider() == Provider::Bootstrap && uri.engine().is_none()
    }

    fn read<'a>(&'a self, uri: &'a SecretUri) -> ReadFuture<'a> {
        Box::pin(std::future::ready(self.values.read(uri)))
    }
}
