//! The bootstrap file: strict JSON (unknown fields and wrong types refused by name), read
//! into the providers' [`Kv2Config`] and, from its optional `values` section, the
//! [`BootstrapValues`] `bootstrap://` serves; and the checks every bootstrap must pass.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use secret_providers::{Kv2Auth, Kv2Config};
use serde::Deserialize;
use serde_json::Value;

use super::values::BootstrapValues;
use super::{AuthMethod, DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH, default_flavor};
use crate::Error;

/// Bootstrap files larger than this are refused (a dozen short fields and a few values).
pub(crate) const MAX_BOOTSTRAP_BYTES: u64 = 1024 * 1024;

/// The JSON type each field accepts (`null` means "not set" for every field).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Bool,
    Method,
    /// The `values` section: an object, checked name by name by [`BootstrapValues::take`].
    Values,
}

const FIELDS: &[(&str, Kind)] = &[
    ("vault_addr", Kind::Text),
    ("auth_method", Kind::Method),
    ("kubernetes_role", Kind::Text),
    ("kubernetes_mount", Kind::Text),
    ("service_account_token_path", Kind::Text),
    ("approle_role_id", Kind::Text),
    ("approle_secret_id", Kind::Text),
    ("approle_mount", Kind::Text),
    ("token", Kind::Text),
    ("token_file", Kind::Text),
    ("ca_cert_path", Kind::Text),
    ("skip_verify", Kind::Bool),
    ("namespace", Kind::Text),
    ("values", Kind::Values),
];

/// The file's fields as written: the wire format only, turned into a [`Kv2Config`] at once.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    #[serde(default)]
    vault_addr: String,
    #[serde(default)]
    auth_method: Option<String>,
    #[serde(default)]
    kubernetes_role: Option<String>,
    #[serde(default)]
    kubernetes_mount: Option<String>,
    #[serde(default)]
    service_account_token_path: Option<PathBuf>,
    #[serde(default)]
    approle_role_id: Option<String>,
    #[serde(default)]
    approle_secret_id: Option<SecretString>,
    #[serde(default)]
    approle_mount: Option<String>,
    #[serde(default)]
    token: Option<SecretString>,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    ca_cert_path: Option<PathBuf>,
    #[serde(default)]
    skip_verify: bool,
    #[serde(default)]
    namespace: Option<String>,
    /// Checked and taken out of the document by [`BootstrapValues::take`], never copied here.
    #[serde(default, rename = "values")]
    _values: Option<serde::de::IgnoredAny>,
}

impl Fields {
    fn into_config(self) -> Kv2Config {
        let method = self
            .auth_method
            .as_deref()
            .and_then(AuthMethod::from_name)
            .unwrap_or_default();
        let text = |v: Option<String>| v.map(|v| v.trim().to_owned()).unwrap_or_default();
        let mount = |v: Option<String>, default: &str| {
            v.map_or_else(
                || default.to_owned(),
                |m| m.trim().trim_matches('/').to_owned(),
            )
        };
        let auth = match method {
            AuthMethod::AppRole => {
                Kv2Auth::approle(text(self.approle_role_id), self.approle_secret_id)
                    .with_mount(mount(self.approle_mount, "approle"))
            }
            AuthMethod::Kubernetes => Kv2Auth::kubernetes(text(self.kubernetes_role))
                .with_mount(mount(self.kubernetes_mount, "kubernetes"))
                .with_jwt_path(
                    self.service_account_token_path
                        .unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH.into()),
                ),
            // A token wins over a token file; a blank token with a file uses the file.
            _ => match (self.token, self.token_file) {
                (Some(token), Some(path)) if token.expose_secret().trim().is_empty() => {
                    Kv2Auth::token_file(path)
                }
                (Some(token), _) => {
                    Kv2Auth::token(SecretString::from(token.expose_secret().trim()))
                }
                (None, Some(path)) => Kv2Auth::token_file(path),
                (None, None) => Kv2Auth::token(SecretString::from("")),
            },
        };
        let mut config = Kv2Config::new(default_flavor(), self.vault_addr.trim(), auth);
        config.namespace = self
            .namespace
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        config.ca_bundle = self.ca_cert_path.filter(|p| !p.as_os_str().is_empty());
        config.skip_verify = self.skip_verify;
        config
    }
}

/// A bootstrap document's settings and, when it has a `values` section, its values.
pub(crate) type Parsed = (Kv2Config, Option<BootstrapValues>);

/// Parses and validates a bootstrap document; `origin` names it in errors.
pub(super) fn from_json(text: &str, origin: &str) -> Result<Parsed, Error> {
    let mut document: Value = serde_json::from_str(text).map_err(|e| Error::BootstrapParse {
        origin: origin.to_owned(),
        line: e.line(),
        column: e.column(),
        source: Box::new(e),
    })?;
    let result = from_document(&mut document, origin);
    secret_providers::wipe_json(&mut document);
    let parsed = result?;
    validate(&parsed.0, origin)?;
    Ok(parsed)
}

fn from_document(document: &mut Value, origin: &str) -> Result<Parsed, Error> {
    let invalid = |field: &str, reason: &'static str| Error::BootstrapInvalid {
        origin: origin.to_owned(),
        field: field.to_owned(),
        reason,
    };
    let Value::Object(map) = document else {
        return Err(invalid("(document)", "must be a JSON object"));
    };
    // `null` means "not set" for every field.
    map.retain(|_, v| !v.is_null());
    for (key, value) in map.iter() {
        let Some((_, kind)) = FIELDS.iter().find(|(name, _)| name == key) else {
            return Err(invalid(&escaped(key), "is not a bootstrap field"));
        };
        match (kind, value) {
            (Kind::Text, Value::String(_))
            | (Kind::Bool, Value::Bool(_))
            | (Kind::Values, Value::Object(_)) => {}
            (Kind::Method, Value::String(name)) if AuthMethod::from_name(name).is_some() => {}
            (Kind::Method, Value::String(_)) => {
                return Err(invalid(key, "must be token, approle or kubernetes"));
            }
            (Kind::Text | Kind::Method, _) => return Err(invalid(key, "must be a string")),
            (Kind::Bool, _) => return Err(invalid(key, "must be true or false")),
            (Kind::Values, _) => {
                return Err(invalid(key, "must be an object of names to values"));
            }
        }
    }
    // Deserializing from `&Value` copies strings out, so the document can be wiped after.
    let config = Fields::deserialize(&*document)
        .map(Fields::into_config)
        .map_err(|_| invalid("(document)", "does not match the bootstrap schema"))?;
    // The values are moved out of the document, not copied: what is left is wiped with it.
    let values = match document.get_mut("values") {
        Some(section) => Some(BootstrapValues::take(section, origin)?),
        None => None,
    };
    Ok((config, values))
}

/// Reads, parses and validates a bootstrap file.
pub(super) fn from_file(path: &Path) -> Result<Parsed, Error> {
    let io = |source| Error::BootstrapIo {
        path: path.to_owned(),
        source,
    };
    let origin = path.display().to_string();
    // A regular file only, opened without blocking (a FIFO at the path never stalls start-up),
    // capped; the bytes are wiped when dropped.
    let bytes = secret_providers::read_local_file(path, MAX_BOOTSTRAP_BYTES).map_err(|e| {
        if e.kind() == std::io::ErrorKind::FileTooLarge {
            Error::BootstrapInvalid {
                origin: origin.clone(),
                field: "(document)".into(),
                reason: "is larger than 1 MiB",
            }
        } else {
            io(e)
        }
    })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    from_json(text, &origin)
}

/// The checks every bootstrap passes, naming bootstrap-file fields.
pub(super) fn validate(config: &Kv2Config, origin: &str) -> Result<(), Error> {
    let invalid = |field: &str, reason: &'static str| Error::BootstrapInvalid {
        origin: origin.to_owned(),
        field: field.to_owned(),
        reason,
    };
    let blank = |v: &str| v.trim().is_empty();
    let addr = config.address.trim();
    if addr.is_empty() {
        return Err(invalid("vault_addr", "is required"));
    }
    let lower = addr.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    if rest.is_none_or(str::is_empty) {
        return Err(invalid("vault_addr", "must be an http:// or https:// URL"));
    }
    match &config.auth {
        Kv2Auth::Token { token } if blank(token.expose_secret()) => Err(invalid(
            "token",
            "(or token_file) is required for auth_method token",
        )),
        Kv2Auth::TokenFile { path } if path.as_os_str().is_empty() => Err(invalid(
            "token",
            "(or token_file) is required for auth_method token",
        )),
        Kv2Auth::AppRole {
            mount,
            role_id,
            secret_id,
        } => {
            if blank(role_id) {
                return Err(invalid(
                    "approle_role_id",
                    "is required for auth_method approle",
                ));
            }
            if secret_id.as_ref().is_none_or(|s| blank(s.expose_secret())) {
                return Err(invalid(
                    "approle_secret_id",
                    "is required for auth_method approle",
                ));
            }
            if blank(mount.trim_matches('/')) {
                return Err(invalid("approle_mount", "must not be empty"));
            }
            Ok(())
        }
        Kv2Auth::Kubernetes {
            mount,
            role,
            jwt_path,
        } => {
            if blank(role) {
                return Err(invalid(
                    "kubernetes_role",
                    "is required for auth_method kubernetes",
                ));
            }
            if blank(mount.trim_matches('/')) {
                return Err(invalid("kubernetes_mount", "must not be empty"));
            }
            if jwt_path.as_os_str().is_empty() {
                return Err(invalid("service_account_token_path", "must not be empty"));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A field name from the file, escaped and cut to 64 characters for an error message.
pub(super) fn escaped(name: &str) -> String {
    let mut out = String::new();
    for (n, c) in name.chars().enumerate() {
        if n == 64 {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out
}
