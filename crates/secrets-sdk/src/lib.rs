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
//!   only one is set); `yaml://` (feature `yaml`) → YAML files under the same root;
//!   `db+cred://`/`db+db://` (feature `db`) → the vault's database engine, on leases;
//!   `bootstrap://` → the bootstrap file's `values`, from memory (`NOT_CONFIGURED` without).
//! - **A TTL cache keyed by the canonical URI** (`FILE://x` and `file://x` are one entry),
//!   bounded in size, where concurrent misses on one URI make **one** backend read, errors
//!   are never cached, and evicted values are zeroized. A hit is a hash lookup and an `Arc`
//!   clone.
//! - **Blocking entry points**: [`SecretsClient::resolve_file_sync`] for configuration time
//!   and [`SecretsClient::resolve_blocking`], which owns its runtime and works inside one too.
//! - **Nothing leaks**: values are [`Secret`]s whose `Debug`/`Display` print `[REDACTED]`;
//!   each resolve has a `secret_resolve` tracing span (INFO; TRACE for a fresh cache hit, so
//!   an INFO or DEBUG filter creates no span on the hit path) with `provider`, `mount`,
//!   `cache` and `uri_hash` (8 hex digits of the URI's SHA-256) or, with a tenant salt, the
//!   keyed `resource_ref`; never the value or the path.
//! - **Metrics** through OpenTelemetry ([`telemetry`]): `secrets.resolve.duration`,
//!   `secrets.cache.hits`/`misses`/`evictions`/`stale_served`, `secrets.provider.errors`, …
//!   labelled by provider, cache outcome, outcome and error code only. Install the meter
//!   provider *before* building a client (or give the builder a
//!   [`Metrics`](telemetry::Metrics)); without one, recording is a no-op.
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
//! # `VaultClient`: reads for a caller, enforced by the PEP
//!
//! `VaultClient` (feature `vault`) reads KV v2 secrets **on behalf of a caller**, per request.
//! Each read is a Policy Enforcement Point decision (tenant mount guard, audience, a grant from
//! an AuthZEN PDP such as Cerbos, sender binding, `jti` anti-replay, one use of the grant),
//! then the read from `VAULT_URL`, then an audit event whose `resource_ref` is an HMAC of the
//! URI keyed with the tenant salt. `#key` returns that field only (`KEY_NOT_FOUND` when it is
//! missing); schemes other than `openbao`/`hashicorp` KV v2 are `UNSUPPORTED_PROVIDER`.
//!
//! ```
//! # #[cfg(feature = "vault")] {
//! use secrets_sdk::pep::{DenyReason, DevAllowAll};
//! use secrets_sdk::{ExecutionContext, VaultClient};
//!
//! // Configuration comes from the environment (or any lookup); what is missing is named.
//! let env = |name: &str| match name {
//!     "VAULT_URL" => Some("http://127.0.0.1:8200".to_owned()),
//!     "VAULT_TOKEN" => Some("s.example".to_owned()),
//!     "TENANT_ID" => Some("t1".to_owned()),
//!     "TENANT_ALLOWED_MOUNTS" => Some("secret".to_owned()),
//!     "ENVIRONMENT" => Some("test".to_owned()),
//!     _ => None,
//! };
//! let err = VaultClient::builder().env_lookup(env).build().unwrap_err();
//! assert_eq!((err.code(), err.setting()), ("CONFIG", Some("SECRET_TENANT_SALT")));
//!
//! // With a salt, and a PDP given in code (here the allow-all one, which runs only in a
//! // development ENVIRONMENT; production sets AUTHZEN_PDP_URL). Nothing touches the network
//! // until the first read.
//! let client = VaultClient::builder()
//!     .env_lookup(env)
//!     .tenant_salt("0123456789abcdef0123456789abcdef")
//!     .pdp(DevAllowAll::new())
//!     .build()?;
//!
//! // Refusals that need no server: a scheme it does not serve, a mount outside the tenant's,
//! // a token issued for another audience.
//! let ctx = ExecutionContext::new("alice").with_aud(["crud.secrets"]).with_jti("jti-1");
//! let err = client.get_credentials_blocking("file://secret/db.json", Some(&ctx)).unwrap_err();
//! assert_eq!(err.code(), "UNSUPPORTED_PROVIDER");
//! let err = client
//!     .get_credentials_blocking("openbao+kv2://billing/db#password", Some(&ctx))
//!     .unwrap_err();
//! assert_eq!(err.code(), "TENANT_MOUNT_MISMATCH");
//! let other = ExecutionContext::new("alice").with_aud(["billing"]);
//! let err = client
//!     .get_credentials_blocking("openbao+kv2://secret/db#password", Some(&other))
//!     .unwrap_err();
//! assert_eq!((err.code(), err.deny_reason()), ("AUTHZ_DENIED", Some(DenyReason::Audience)));
//! # }
//! # Ok::<(), secrets_sdk::Error>(())
//! ```
//!
//! The flow, every setting, the error codes and an axum handler are in
//! `docs/vault-client.md` (and `examples/vault_client_axum.rs`).
//!
//! # Features
//! - `file` (default): `file://` secrets.
//! - `openbao` (default): `openbao+kv2://` secrets from OpenBao.
//! - `hashicorp` (default): `hashicorp+kv2://` secrets from HashiCorp Vault.
//! - `vault` (default): `VaultClient`, with secret-pep and its AuthZEN PDP client (implies
//!   `openbao` and `hashicorp`).
//! - `axum`: `ExecutionContext` as an axum 0.8 extractor (secret-pep's `axum` feature).
//! - `redis`: with `REDIS_URL` set, `VaultClient::from_env` keeps the PEP's state (grants and
//!   use counts, anti-replay, negative cache) in Redis, shared by every replica
//!   (`VaultClientBuilder::pep_state` gives it in code; secret-pep's `redis` feature, see
//!   `docs/deployment.md`). Implies `vault`.
//! - `kafka`: with `ENABLE_KAFKA_PRODUCER=true`, clients built `from_env` publish their audit
//!   events to `<KAFKA_TOPIC_PREFIX>secrets.audit` (secret-audit's Kafka sink).
//! - `yaml`: `yaml://` secrets, YAML files under the file provider's root (`#a.b.0.c`).
//! - `db`: `db+cred://` dynamic database credentials on leases the client renews, rotates
//!   and revokes, and `db+db://` static roles.
//! - `serde`: [`config`]: `SecretRef`, a configuration field that is a secret URI, and
//!   `config::load` of YAML, JSON and TOML files resolving every reference at once.
//! - `otlp`: `telemetry::otlp`, the OTLP/HTTP exporter of the SDK's spans and metrics
//!   (configured by the standard `OTEL_*` variables or in code; install it before building a
//!   client).
//!
//! The sub-crates are re-exported: [`uri`] (the parser), [`providers`], [`audit`] (events,
//! keyed `resource_ref`s, sinks), [`telemetry`] (metrics, span and label names) and, with
//! `vault`, `pep` (secret-pep).
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod audit_config;
mod bootstrap;
mod client;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub mod config;
mod error;
mod finishing;
mod in_span;
mod io_runtime;
mod routes;
mod secret;
#[cfg(feature = "vault")]
mod vault_client;
pub mod watch;

pub use secret_audit as audit;
#[cfg(feature = "vault")]
#[cfg_attr(docsrs, doc(cfg(feature = "vault")))]
pub use secret_pep as pep;
pub use secret_providers as providers;
/// Telemetry (secret-telemetry): the clients' [`Metrics`](telemetry::Metrics), every metric,
/// span and label name with the closed label sets, and (feature `otlp`) the OTLP exporter.
pub use secret_telemetry as telemetry;
pub use secret_uri as uri;
/// Verified callers (secret-verify): an `ExecutionContext` from a verified access token and
/// DPoP proof (or client certificate) rather than from gateway headers.
#[cfg(feature = "verify")]
#[cfg_attr(docsrs, doc(cfg(feature = "verify")))]
pub use secret_verify as verify;

pub use bootstrap::{
    AuthMethod, BOOTSTRAP_PATH_ENV, BootstrapConfig, BootstrapSource, DEFAULT_BOOTSTRAP_PATH,
    DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH, LoadedBootstrap,
};
#[cfg(feature = "db")]
#[cfg_attr(docsrs, doc(cfg(feature = "db")))]
pub use client::DEFAULT_LEASE_OVERLAP;
pub use client::{
    ALLOWED_MOUNTS_ENV, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL, DEFAULT_RESOLVE_DEADLINE,
    DEFAULT_WATCH_INTERVAL, RESOLVE_DEADLINE_ENV, ResolveOptions, SecretsClient,
    SecretsClientBuilder, WATCH_INTERVAL_ENV,
};
pub use error::Error;
pub use secret::{Secret, UriHash, UriInput};
#[cfg(all(feature = "db", feature = "vault"))]
mod lease_guard;
#[cfg(feature = "vault")]
#[cfg_attr(docsrs, doc(cfg(feature = "vault")))]
pub use secret_pep::ExecutionContext;
#[cfg(feature = "vault")]
#[cfg_attr(docsrs, doc(cfg(feature = "vault")))]
pub use vault_client::{
    DEFAULT_IO_THREADS, ResourceRef, TENANT_SALT_ENV, VaultClient, VaultClientBuilder,
};
