//! Verified callers for the secrets PEP, checked in process: RFC 9068 JWT access tokens, RFC
//! 9449 DPoP proofs and RFC 8705 certificate-bound tokens.
//!
//! The PEP (`secret-pep`) enforces what an [`ExecutionContext`](secret_pep::ExecutionContext)
//! says; a context built from gateway headers is only as strong as the gateway. This crate
//! builds it from what the caller *proved*: an access token whose signature, issuer, audience,
//! type and lifetime verified against the issuer's keys ([`AccessTokenPolicy`], [`KeySet`]),
//! and, for a sender-bound token, a DPoP proof of this request by the token's key
//! ([`DpopPolicy`]) or the client certificate the token names. [`Verifier`] checks them
//! together; [`VerifiedCaller::context`] is the PEP's context, from verified claims only.
//!
//! Refusals have stable codes: `INVALID_TOKEN` and `INVALID_DPOP_PROOF`, each with a reason
//! ([`TokenReason`], [`ProofReason`]), and `BINDING_DRIFT`. No message holds a token, a
//! proof, a claim's value or a key. Signatures are verified by `jsonwebtoken` with ring; only
//! asymmetric algorithms are ever accepted ([`ASYMMETRIC`]).
//!
//! [`IssuerKeys`] finds the issuer's key set through its metadata and fetches it again, at
//! most once per interval, when a token names a key it does not know (a key rotation).
//! Proofs are not remembered here: a proof's `jti` is the context's `jti`, which the PEP's
//! replay store (shared by replicas on Redis) refuses the second time.
//!
//! ```
//! use secret_verify::{AccessTokenPolicy, DpopPolicy, KeySet, Presented, Verifier};
//!
//! let verifier = Verifier::new(
//!     AccessTokenPolicy::new("https://issuer.example", "crud.secrets"),
//!     DpopPolicy::default(),
//! );
//! let keys = KeySet::from_json(r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1",
//!   "x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
//!   "y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}]}"#).expect("a key set");
//! let refused = verifier.verify(
//!     &Presented {
//!         authorization: "Bearer not.a.token",
//!         dpop: &[],
//!         method: "GET",
//!         url: "https://secrets.example/v1/read",
//!         client_certificate: None,
//!     },
//!     &keys,
//!     1_800_000_000,
//! );
//! assert_eq!(refused.map_err(|e| e.code()).err(), Some("INVALID_TOKEN"));
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
mod caller;
mod dpop;
mod error;
mod issuer;
mod jose;
mod keys;
mod seen;
mod token;

pub use caller::{Presented, VerifiedCaller, Verifier};
pub use dpop::{DpopPolicy, VerifiedProof, access_token_hash};
pub use error::{ProofReason, TokenReason, VerifyError};
pub use issuer::{DEFAULT_MAX_AGE, DEFAULT_MIN_REFRESH, IssuerKeys};
pub use jose::ASYMMETRIC;
pub use jsonwebtoken::Algorithm;
pub use keys::KeySet;
/// The HTTP client settings [`IssuerKeys`] fetch with (timeout, TLS, CA bundle).
pub use secret_http::ClientConfig;
pub use token::{AccessTokenPolicy, MAX_SKEW_S, VerifiedToken};

#[cfg(test)]
mod tests;
