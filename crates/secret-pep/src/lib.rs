//! Policy Enforcement Point for secret reads.
//!
//! Before a Canonical Secret URI is read, a [`Pep`] decides whether the caller (an
//! [`ExecutionContext`]: subject, audiences, `jti`, `exp`, sender binding, …) may read it:
//! tenant mount guard, audience, token lifetime, `jti` anti-replay (before any PDP call),
//! then a [`Grant`] for the resource on its backend from a Policy Decision Point
//! ([`SecretPolicyService`]; an [`AuthzenClient`] for AuthZEN 1.0 PDPs such as Cerbos) and an
//! atomic use count. It fails closed: no PDP configured is a configuration
//! error, an unreachable PDP is `PDP_UNAVAILABLE`, and every refusal has a stable code.
//!
//! ```
//! use std::time::Duration;
//! use secret_pep::{DenyReason, ExecutionContext, PdpSettings, Pep, PepConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Development mode (allow-all PDP, accepted only when ENVIRONMENT is dev, development,
//! // test or local); production uses `PdpSettings::AuthZen(...)`, or `Pep::from_env()` with
//! // AUTHZEN_PDP_URL.
//! let config = PepConfig::new("tenant-1", "secret".parse()?)
//!     .with_environment("dev")
//!     .with_pdp(PdpSettings::DisabledForDevelopment)
//!     .with_grant_defaults(Duration::from_secs(60), 2);
//! let pep = Pep::new(config)?;
//!
//! let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! rt.block_on(async {
//!     let ctx = ExecutionContext::new("alice").with_aud(["crud.secrets"]).with_jti("jti-1");
//!     let granted = pep.authorize(&ctx, "OPENBAO+KV2://secret/app/api#token").await?;
//!     assert_eq!(granted.uri().as_str(), "openbao+kv2://secret/app/api#token");
//!     assert_eq!(granted.use_number(), 1);
//!     // … read `granted.uri()` with a provider, then:
//!     pep.audit_read(&ctx, &granted, None);
//!
//!     // The same jti again is a replay, refused before any PDP call.
//!     let replay = pep.authorize(&ctx, "openbao+kv2://secret/app/api#token").await.unwrap_err();
//!     assert_eq!((replay.code(), replay.deny_reason()), ("AUTHZ_DENIED", Some(DenyReason::Replay)));
//!
//!     // A token for another audience is refused; so is a mount outside the tenant's, and a
//!     // token without a `jti` (`JTI_MISSING`) or without `aud` (`AUDIENCE`).
//!     let other = ExecutionContext::new("alice").with_aud(["billing"]).with_jti("jti-x");
//!     let err = pep.authorize(&other, "openbao+kv2://secret/app/api#token").await.unwrap_err();
//!     assert_eq!(err.deny_reason(), Some(DenyReason::Audience));
//!     let err = pep.authorize(&ctx, "file://infra/key").await.unwrap_err();
//!     assert_eq!(err.code(), "TENANT_MOUNT_MISMATCH");
//!     let no_jti = ExecutionContext::new("alice").with_aud(["crud.secrets"]);
//!     let err = pep.authorize(&no_jti, "openbao+kv2://secret/app/api#token").await.unwrap_err();
//!     assert_eq!(err.deny_reason(), Some(DenyReason::JtiMissing));
//!
//!     // The grant allows two uses. Any spelling of the resource is the same grant; once it
//!     // is spent, the next read is a fresh decision (a new grant), never a lock-out.
//!     let ctx2 = ctx.clone().with_jti("jti-2");
//!     let second = pep.authorize(&ctx2, "openbao://secret/app/api#token").await?;
//!     assert_eq!(second.use_number(), 2);
//!     let ctx3 = ctx.with_jti("jti-3");
//!     let third = pep.authorize(&ctx3, "openbao+kv2://secret/app/api#token").await?;
//!     assert_eq!(third.use_number(), 1);
//!     assert_ne!(third.grant().grant_id, second.grant().grant_id);
//!     Ok::<(), secret_pep::PepError>(())
//! })?;
//! # Ok(()) }
//! ```
//!
//! # How callers use it
//! [`Pep::authorize`] returns an [`Authorized`] (the canonical URI and the grant); the caller
//! reads the secret and reports with [`Pep::audit_read`]. [`Pep::execute`] does all three
//! with a read closure. [`Pep::authorize_many`] authorizes several reads with one token (one
//! `jti` check, one PDP batch); [`Pep::authorize_batch`] only pre-authorizes, reading nothing.
//!
//! # Features
//! - `authzen` (default): [`AuthzenClient`], the AuthZEN 1.0 PDP client (hyper + rustls with
//!   ring).
//! - `axum`: [`ExecutionContext`] as an axum 0.8 extractor reading the context an
//!   authentication layer put in the request extensions (401 when absent).
//! - `redis`: [`RedisState`], the PEP's grants, use counts, anti-replay window and negative
//!   cache on Redis, shared by every replica ([`PepState::redis`], or `REDIS_URL`); a warm
//!   decision is one round trip.
//!
//! See `docs/pep.md` for the flow, the configuration, the error codes and the Cerbos setup.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod audit;
mod cache;
mod config;
mod context;
mod error;
mod gateway;
mod grant;
mod key;
mod pdp;
mod pep;
mod replay;
mod state;
mod thumbprint;
mod util;

pub use cache::GrantCache;
pub use config::{
    AuthzenConfig, AuthzenDialect, DEFAULT_ANTI_REPLAY_MAX_ENTRIES, DEFAULT_AUDIENCE,
    DEVELOPMENT_ENVIRONMENTS, MIN_STATE_KEY_BYTES, PdpSettings, PepConfig, RedisConfig,
    StateSettings,
};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use context::MissingExecutionContext;
pub use context::{ContextHeaders, ExecutionContext, headers};
pub use error::{BindingKind, BoxError, DenyReason, PdpFailure, PepError};
pub use grant::{Grant, GrantDefaults};
#[cfg(feature = "authzen")]
#[cfg_attr(docsrs, doc(cfg(feature = "authzen")))]
pub use pdp::authzen::{AuthzenClient, AuthzenMetadata};
pub use pdp::{
    AccessRequest, BatchDecision, BatchFailure, BatchRequest, DevAllowAll, PdpFuture,
    SecretPolicyService,
};
pub use pep::{Authorized, BatchItem, BatchReport, BatchStatus, Pep, PepBuilder};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use state::redis::RedisState;
pub use state::{
    Claim, GrantStore, MemoryGrantStore, MemoryNegativeCache, MemoryReplayStore, NegativeCache,
    PepState, Recorded, ReplayCheck, ReplayStore, StoreError, StoreFuture, StoreKind, StoredGrant,
    Taken,
};
pub use thumbprint::{certificate_thumbprint, jwk_thumbprint};
