//! Secret providers: where secrets named by Canonical Secret URIs are actually read.
//!
//! - [`SecretProvider`]: an object-safe async trait (`read(&uri) -> SecretValue`), and
//!   [`ProviderRouter`], which sends each URI to the provider registered for its scheme.
//! - [`FileProvider`] (`file://mount/a/b` → `<root>/mount/a/b`, never outside the root).
//! - [`Kv2Provider`] for OpenBao (`openbao+kv2://`) and HashiCorp Vault (`hashicorp+kv2://`):
//!   the KV v2 HTTP API over hyper 1 + rustls (ring), with lazy auth (token, token file,
//!   AppRole, Kubernetes), renewal, retries with jittered backoff, and the deleted/destroyed
//!   mapping the real server needs.
//! - [`DbProvider`] (feature `db`): `db+cred://mount/role` (dynamic credentials on a lease)
//!   and `db+db://mount/role` (a static role) from the vault's database secrets engine.
//! - [`SecretValue`]: a JSON object, a JSON scalar picked with `#key`, or text; zeroized on
//!   drop, `[REDACTED]` in `Debug`/`Display`.
//! - [`ProviderError`]: `#[non_exhaustive]`, a stable [`code`](ProviderError::code) per
//!   variant; messages never contain values, tokens, bodies or full URIs.
//!
//! ```
//! # #[cfg(feature = "file")] {
//! use secret_providers::{FileConfig, FileProvider, SecretProvider};
//! use secret_uri::SecretUri;
//!
//! let root = tempfile::tempdir()?;
//! std::fs::create_dir_all(root.path().join("app/db"))?;
//! std::fs::write(root.path().join("app/db/creds"), r#"{"user": "app", "password": "s3cr3t"}"#)?;
//!
//! let files = FileProvider::new(FileConfig::new(root.path()));
//! let uri: SecretUri = "file://app/db/creds#password".parse()?;
//!
//! // Blocking, for configuration time…
//! let password = files.read_blocking(&uri)?;
//! assert_eq!(password.expose_str(), Some("s3cr3t"));
//! assert_eq!(format!("{password:?}"), "SecretValue([REDACTED])");
//!
//! // …or async, through the trait.
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! let provider: &dyn SecretProvider = &files;
//! let error = runtime.block_on(provider.read(&"file://app/db/creds#nope".parse()?)).unwrap_err();
//! assert_eq!(error.code(), "KEY_NOT_FOUND");
//! assert_eq!(error.to_string(), "file: the secret in mount `app` has no such key [KEY_NOT_FOUND]");
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Configuration (environment names, TLS, retries) and the full error table are in
//! `docs/providers.md`.
//!
//! # Telemetry
//! Every read is a `secret_read` span at DEBUG (provider, mount, the error `code` on failure;
//! for KV v2 also `status`, `status_class` and the HTTP `attempts`); KV v2 logins and
//! renewals are `login` spans, each HTTP attempt `secret-http`'s `http_request` client span,
//! and the token's TTL is the `secrets.token.ttl_remaining` gauge, recorded through
//! [`Kv2Config::metrics`] (the global meter provider by default). See [`Kv2Provider`]. No
//! span, event or metric names a path, a token, a credential or a value; the provider error
//! metrics are the clients' to record, once for every provider.
//!
//! # Features
//! - `file` (default): [`FileProvider`].
//! - `openbao` (default): [`Kv2Provider`] with [`Kv2Flavor::OpenBao`] (`OPENBAO_*` settings).
//! - `hashicorp` (default): [`Kv2Provider`] with [`Kv2Flavor::HashiCorp`] (`VAULT_*`
//!   settings). `openbao` and `hashicorp` share one KV v2 client; either one pulls in hyper,
//!   hyper-util, hyper-rustls and rustls with the `ring` provider (never `aws-lc-rs`).
//! - `db`: [`DbProvider`], database credentials (`db+cred://`, `db+db://`) from the vault's
//!   database secrets engine over the KV v2 client, with their lease ([`DbLease`],
//!   [`LeaseId`]).
//!
//! # Secrets in memory
//! Tokens and AppRole secret IDs are [`secrecy::SecretString`]s in configuration. A token in
//! use is kept once more as an `X-Vault-Token` header value marked sensitive, which hyper
//! needs and which cannot be zeroized; it is replaced, not copied, on renewal or re-login.
//! Values are wiped as described on [`SecretValue`]; copies inside hyper's and the kernel's
//! buffers are outside this crate's reach.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "db")]
mod db;
mod error;
#[cfg(feature = "file")]
mod file;
#[cfg(feature = "kv2")]
mod kv2;
mod params;
mod provider;
mod value;

#[cfg(feature = "db")]
#[doc(hidden)]
pub use db::fuzz_db_replies;
#[cfg(feature = "db")]
#[cfg_attr(docsrs, doc(cfg(feature = "db")))]
pub use db::{DbLease, DbProvider, LeaseId, Renewal};
pub use error::{BoxError, ProviderError};
#[cfg(feature = "yaml")]
#[cfg_attr(docsrs, doc(cfg(feature = "yaml")))]
pub use file::yaml_flow_within_budget;
#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub use file::{
    DEFAULT_FILE_MAX_BYTES, DEFAULT_FILE_ROOT, FileConfig, FileProvider, read_local_file,
};
#[cfg(feature = "kv2")]
#[doc(hidden)]
pub use kv2::fuzz_metadata_reply;
#[cfg(feature = "kv2")]
#[cfg_attr(docsrs, doc(cfg(any(feature = "openbao", feature = "hashicorp"))))]
pub use kv2::{
    CaBundleMode, ClientCert, DEFAULT_KUBERNETES_JWT_PATH, DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMEOUT,
    Kv2Auth, Kv2Config, Kv2Flavor, Kv2Provider, RetryConfig,
};
pub use params::{check_parameters, served_parameters};
pub use provider::{Probe, ProbeFuture, ProviderRouter, ReadFuture, SecretProvider};
pub use value::{SecretValue, wipe as wipe_json};
