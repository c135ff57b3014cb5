//! The axum extractor's verified mode (feature `axum`): [`Verified`] verifies the request's
//! own credentials (the `Authorization` and `DPoP` headers, the method and URL, the client
//! certificate a TLS terminator left in the extensions) and yields the PEP's context.
//!
//! ```
//! use std::sync::Arc;
//! use secret_verify::axum::{Verification, Verified};
//! use secret_verify::{AccessTokenPolicy, ClientConfig, DpopPolicy, IssuerKeys, Verifier};
//!
//! # fn main() -> Result<(), secret_verify::VerifyError> {
//! let issuer = "https://issuer.example";
//! let verification = Arc::new(Verification::new(
//!     Verifier::new(AccessTokenPolicy::new(issuer, "crud.secrets"), DpopPolicy::default()),
//!     IssuerKeys::new(issuer, &ClientConfig::new("issuer"))?,
//!     "https://secrets.example",
//! ));
//! // axum: Router::new().route("/db", get(handler)).with_state(verification)
//! async fn handler(Verified(ctx): Verified) -> String {
//!     // client.get_credentials(uri, Some(&ctx)).await …
//!     format!("{:?}", ctx.subject)
//! }
//! # let _ = handler; Ok(()) }
//! ```

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum_core::extract::{FromRef, FromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use secret_pep::ExecutionContext;

use crate::{IssuerKeys, Presented, TokenReason, Verifier, VerifyError};

/// What [`Verified`] checks requests with: the verifier, the issuer's keys and this service's
/// public origin (`https://secrets.example`: the scheme and authority clients use, which a
/// DPoP proof's `htu` names; behind a proxy the request's own `Host` may differ). Give it as
/// the router's state (or a part of it, through `FromRef`) in an `Arc`.
#[derive(Debug)]
pub struct Verification {
    verifier: Verifier,
    keys: IssuerKeys,
    origin: String,
    prefix: String,
}

impl Verification {
    /// Requests checked by `verifier` with `keys`, for a service reached at `origin`.
    #[must_use]
    pub fn new(verifier: Verifier, keys: IssuerKeys, origin: impl Into<String>) -> Self {
        Self {
            verifier,
            keys,
            origin: origin.into().trim_end_matches('/').to_owned(),
            prefix: String::new(),
        }
    }

    /// The path the router that extracts [`Verified`] is nested under (`Router::nest("/api",
    /// …)` strips it from the request's URI before the handler sees it), so that a proof's
    /// `htu` is compared with the URL the client used: `origin` + `prefix` + path.
    #[must_use]
    pub fn with_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().trim_end_matches('/').to_owned();
        self
    }
}

/// The client certificate (DER) a TLS-terminating layer put in the request extensions, for
/// certificate-bound tokens (RFC 8705).
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub Vec<u8>);

/// The extractor: the PEP's context of a caller whose token and proof verified.
#[derive(Debug, Clone)]
pub struct Verified(pub ExecutionContext);

/// A refused request: `401` with an RFC 6750 / RFC 9449 `WWW-Authenticate` challenge
/// (`invalid_token`, `invalid_dpop_proof`) and the code as the body; `503` when the issuer's
/// keys cannot be had; `500` for a configuration error. Never the credentials.
#[derive(Debug)]
pub struct Refused(pub VerifyError);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let (status, challenge) = match &self.0 {
            VerifyError::InvalidDpopProof { .. } => (
                StatusCode::UNAUTHORIZED,
                Some(r#"DPoP error="invalid_dpop_proof""#),
            ),
            VerifyError::InvalidToken { .. } | VerifyError::BindingDrift { .. } => (
                StatusCode::UNAUTHORIZED,
                Some(r#"DPoP error="invalid_token", Bearer error="invalid_token""#),
            ),
            VerifyError::IssuerUnavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, None),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
        };
        let mut response = (status, format!("{code}\n")).into_response();
        if let Some(challenge) = challenge {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

impl<S> FromRequestParts<S> for Verified
where
    Arc<Verification>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Refused;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let verification = Arc::<Verification>::from_ref(state);
        let malformed = || Refused(VerifyError::token(TokenReason::Malformed));
        let mut authorizations = parts.headers.get_all(AUTHORIZATION).iter();
        let (Some(authorization), None) = (authorizations.next(), authorizations.next()) else {
            return Err(malformed());
        };
        let authorization = authorization.to_str().map_err(|_| malformed())?;
        // A proof that is not visible ASCII is no proof: it counts, so that two are refused.
        let proofs: Vec<&str> = parts
            .headers
            .get_all("dpop")
            .iter()
            .map(|v| v.to_str().unwrap_or(""))
            .collect();
        let url = format!(
            "{}{}{}",
            verification.origin,
            verification.prefix,
            parts.uri.path()
        );
        let certificate = parts
            .extensions
            .get::<ClientCertificate>()
            .map(|c| c.0.clone());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let caller = verification
            .verifier
            .verify_with(
                &Presented {
                    authorization,
                    dpop: &proofs,
                    method: parts.method.as_str(),
                    url: &url,
                    client_certificate: certificate.as_deref(),
                },
                &verification.keys,
                now,
            )
            .await
            .map_err(Refused)?;
        Ok(Self(caller.context()))
    }
}

#[cfg(test)]
mod tests;
