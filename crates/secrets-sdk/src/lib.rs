//! Resolve Canonical Secret URIs in a service: the secrets-sdk facade.
//!
//! [`SecretsClient`] is how a service loads its own configuration secrets at start-up and at
//! run time, without a policy decision point:
//!
//! - **Bootstrap before any vault is reachable**: `file://` secrets need no vault, and the
//!   vault's address and credentials come from a [`BootstrapConfig`] (a file, or the
//!   environment). Nothing touches the network until the first vault read, which logs in.
//! - **Routing by scheme**: `file://` → files under `FILE_MOUNT_PATH`; `openbao[+kv2]://` and
//!   `hashicorp[+kv2]://` → KV v2 at `OPENBAO_URL` / `VAULT_URL` (one address serves both when
//!   only one is set); `db`, `bootstrap`, `yaml` → `UNSUPPORTED_PROVIDER`.
//! - **A TTL cache keyed by the canonical URI** (`FILE://x` and `file://x` are one entry),
//!   bounded in size, where concurrent misses on one URI make **one** backend read, errors
//!   are never cached, and evicted values are zeroized. A hit is a hash lookup and an `Arc`
//!   clone.
//! - **Blocking entry points**: [`SecretsClient::resolve_file_sync`] for configuration time
//!   and [`SecretsClient::resolve_blocking`], which owns its runtime and works inside one too.
//! - **Nothing leaks**: values are [`Secret`]s whose `Debug`/`Display` print `[REDACTED]`;
//!   each resolve has a `secret_resolve` tracing span (DEBUG) with `provider`, `mount`,
//!   `cache` and `uri_hash` (8 hex digits of the URI's SHA-256), never the value or the path.
//!
//! ```
//! use secrets_sdk::{SecretsClient, uri::AllowedMounts};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let root = tempfile::tempdir()?;
//! std::fs::create_dir(root.path().join("demo"))?;
//! std::fs::write(root.path().join("demo/db.json"), r#"{"username":"app","password":"pw"}"#)?;
//!
//! let client = SecretsClient::builder()
//!     .file_root(root.path())
//!     .allowed_mounts(AllowedMounts::from_csv("demo"))
//!     .build()?;
//!
//! // Synchronous, for configuration time.
//! let password = client.resolve_file_sync("FILE://demo/db.json#password")?;
//! assert_eq!(password.expose_str(), Some("pw"));
//! assert_eq!(format!("{password:?}"), "Secret { uri: file://demo/…, value: [REDACTED] }");
//!
//! // Async (any provider); the canonical URI is the cache key, so this is a hit.
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! let same = runtime.block_on(client.resolve("file://demo/db.json#password"))?;
//! assert_eq!(same.expose_str(), Some("pw"));
//!
//! // Every error has a stable code.
//! let err = client.resolve_blocking("openbao+kv2://demo/app#token").unwrap_err();
//! assert_eq!(err.code(), "NOT_CONFIGURED");
//! let err = client.resolve_blocking("file://other/x").unwrap_err();
//! assert_eq!(err.code(), "TENANT_MOUNT_MISMATCH");
//! # Ok(()) }
//! ```
//!
//! Configuration (environment names, bootstrap fields, precedence, cache semantics, error
//! codes) is documented in `docs/secrets-client.md`.
//!
//! # Features
//! - `file` (default): `file://` secrets.
//! - `openbao` (default): `openbao+kv2://` secrets from OpenBao.
//! - `hashicorp` (default): `hashicorp+kv2://` secrets from HashiCorp Vault.
//!
//! The sub-crates are re-exported: [`uri`] (the parser) and [`providers`].
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bootstrap;
mod client;
mod error;
mod secret;

pub use secret_providers as providers;
pub use secret_uri as uri;

pub use bootstrap::{
    AuthMethod, BOOTSTRAP_PATH_ENV, BootstrapConfig, BootstrapSource, DEFAULT_BOOTSTRAP_PATH,
    DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH, LoadedBootstrap,
};
pub use client::{
    ALLOWED_MOUNTS_ENV, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL, ResolveOptions, SecretsClient,
    SecretsClientBuilder,
};
pub use error::Error;
pub use secret::{Secret, UriHash, UriInput};
