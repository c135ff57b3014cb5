//! Secrets in configuration files (feature `serde`): [`SecretRef`] fields, resolved at load.
//!
//! A service's configuration names its secrets by URI; a [`SecretRef`] field deserializes
//! from one (a typo is a serde error with the URI's code, never the text), prints redacted,
//! and serializes back to the URI. [`load`] reads a YAML, JSON or TOML file (serde's own
//! format crates) and resolves every reference through a [`SecretsClient`](crate::SecretsClient),
//! concurrently, reporting **every** failure at once with its field path and code;
//! [`resolve`] does the same for a struct the service deserialized itself, and [`watch`]
//! keeps the values current as the secrets rotate.
//!
//! References are found by serializing the struct into a serializer that writes nothing, so
//! the struct derives `Serialize` as well as `Deserialize`, and its `SecretRef` fields must not
//! be skipped when serializing (`#[serde(skip_serializing)]`, `skip_serializing_if`) or
//! serialized through another serializer: [`load`] refuses a configuration holding references
//! its walk cannot find (`CONFIG_UNREACHABLE_REFERENCE`).
//!
//! ```
//! use secrets_sdk::{SecretsClient, uri::AllowedMounts};
//! use secrets_sdk::config::{self, Format, SecretRef};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Deserialize, Serialize)]
//! struct Config {
//!     database: Database,
//! }
//!
//! #[derive(Debug, Deserialize, Serialize)]
//! struct Database {
//!     host: String,
//!     password: SecretRef,
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let root = tempfile::tempdir()?;
//! std::fs::create_dir(root.path().join("demo"))?;
//! std::fs::write(root.path().join("demo/db.json"), r#"{"password":"pw"}"#)?;
//! let client = SecretsClient::builder()
//!     .file_root(root.path())
//!     .allowed_mounts(AllowedMounts::from_csv("demo"))
//!     .build()?;
//!
//! let yaml = "database:\n  host: db.internal\n  password: file://demo/db.json#password\n";
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let config: Config = runtime.block_on(config::load_str(&client, yaml, Format::Yaml))?;
//! let password = config.database.password.secret().ok_or("resolved")?;
//! assert_eq!(password.expose_str(), Some("pw"));
//! assert!(!format!("{config:?}").contains("pw\""));
//!
//! // Every failure at once, each with its field path and code, never a value.
//! let yaml = "database:\n  host: h\n  password: fle://demo/x\n";
//! let error = runtime
//!     .block_on(config::load_str::<Config>(&client, yaml, Format::Yaml))
//!     .unwrap_err();
//! assert_eq!(error.code(), "CONFIG_SECRETS");
//! assert_eq!(error.failures()[0].field, "database.password");
//! assert_eq!(error.failures()[0].code, "UNSUPPORTED_ENGINE");
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::Path;

mod error;
mod load;
mod parse;
mod path;
mod secret_ref;
#[cfg(test)]
mod tests;
mod walk;
mod watch;

pub use error::{LoadError, RefFailure};
pub use load::{MAX_CONFIG_BYTES, from_str, load, load_str, read, resolve};
pub use secret_ref::SecretRef;
pub use walk::references_of;
pub use watch::{ConfigWatch, watch};

/// A configuration file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// YAML (`serde_yaml_ng`: one document; alias expansion bounded).
    Yaml,
    /// JSON (`serde_json`).
    Json,
    /// TOML (`toml`).
    Toml,
}

impl Format {
    /// The format a file's extension names: `.yaml`/`.yml`, `.json`, `.toml` (any case).
    #[must_use]
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "yaml" | "yml" => Some(Self::Yaml),
            "json" => Some(Self::Json),
            "toml" => Some(Self::Toml),
            _ => None,
        }
    }

    /// `YAML`, `JSON` or `TOML`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Yaml => "YAML",
            Self::Json => "JSON",
            Self::Toml => "TOML",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
