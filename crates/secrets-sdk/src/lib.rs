//! The secrets-sdk facade.
//!
//! Today it re-exports the URI parser; `SecretsClient` and `VaultClient` arrive with the
//! provider and PEP crates.
//!
//! ```
//! let uri: secrets_sdk::uri::SecretUri = "OPENBAO+KV2://secret/app/api#token".parse()?;
//! assert_eq!(uri.to_string(), "openbao+kv2://secret/app/api#token");
//! # Ok::<(), secrets_sdk::uri::UriError>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use secret_uri as uri;
