//! [`ExecutionContext`]: who is asking, with which token, from which workflow.

use std::fmt;

use http::HeaderMap;

/// The caller of one secret read: the verified claims of its token plus tracing ids.
///
/// Build it from claims your authentication layer has **verified** (signature, expiry, issuer),
/// with [`ExecutionContext::new`] and the `with_*` methods, or by assigning fields. With the
/// `axum` feature it is an extractor that reads the context such a layer put in the request
/// extensions. [`ExecutionContext::from_headers`] exists for deployments behind a gateway that
/// verifies the token and sets the headers itself.
///
/// `Debug` redacts `token_jti`, `cnf_jkt` and `mtls_thumbprint`.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecutionContext {
    /// The token's `sub`: whom grants are issued to.
    pub subject: Option<String>,
    /// The token's `aud` values.
    pub aud: Vec<String>,
    /// The token's `jti`, checked against replay. Treat it as sensitive: it is never logged.
    pub token_jti: Option<String>,
    /// The DPoP / `cnf.jkt` key thumbprint the token is bound to (RFC 7638, see
    /// [`jwk_thumbprint`](crate::jwk_thumbprint)).
    pub cnf_jkt: Option<String>,
    /// The client certificate thumbprint (`x5t#S256`, RFC 8705, see
    /// [`certificate_thumbprint`](crate::certificate_thumbprint)), used when there is no
    /// `cnf_jkt`.
    pub mtls_thumbprint: Option<String>,
    /// The token's `iss`; scopes the `jti` in the anti-replay store.
    pub issuer: Option<String>,
    /// The OAuth client the token was issued to.
    pub client_id: Option<String>,
    /// A request correlation id, carried in audit events (never sent to the PDP).
    pub correlation_id: Option<String>,
    /// The workflow run this read belongs to.
    pub workflow_run_id: Option<String>,
    /// The workflow node this read belongs to.
    pub node_id: Option<String>,
    /// The calling system.
    pub system_id: Option<String>,
    /// The subject's roles, sent to the PDP as subject properties.
    pub roles: Vec<String>,
    /// The token's `exp` (seconds since the Unix epoch). Its `jti` is remembered until then
    /// (plus the clock skew), and a token that lives longer than the anti-replay store may
    /// remember it is refused (`TOKEN_LIFETIME`).
    pub exp: Option<u64>,
}

pub use crate::gateway::{ContextHeaders, headers};

impl ExecutionContext {
    /// A context for `subject` with nothing else set.
    #[must_use]
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: Some(subject.into()),
            ..Self::default()
        }
    }

    /// Reads the context from the original SDK's eight headers (`x-subject`, `x-aud`,
    /// `x-jti`, `x-cnf-jkt`, `x-mtls-thumbprint`, `x-issuer`, `x-client-id`,
    /// `x-correlation-id`) and no others: [`ContextHeaders::original`]. To also trust
    /// `x-roles`, `x-exp` or the workflow ids, name them with [`ContextHeaders::trust`].
    ///
    /// # Security
    /// Headers are whatever the client sent. Use this **only** behind a gateway that verifies
    /// the token, sets these headers from its claims and strips any the client sent itself
    /// (and for `x-mtls-thumbprint`, terminates mTLS). Prefer building the context from
    /// verified claims.
    ///
    /// # Errors
    /// `BAD_CONTEXT` for a repeated header or a value that is not UTF-8 (see
    /// [`ContextHeaders::read`]).
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, crate::PepError> {
        ContextHeaders::original().read(headers)
    }

    /// Sets the audiences.
    #[must_use]
    pub fn with_aud<I, S>(mut self, aud: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.aud = aud.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the token id.
    #[must_use]
    pub fn with_jti(mut self, jti: impl Into<String>) -> Self {
        self.token_jti = Some(jti.into());
        self
    }

    /// Sets the DPoP key thumbprint.
    #[must_use]
    pub fn with_cnf_jkt(mut self, jkt: impl Into<String>) -> Self {
        self.cnf_jkt = Some(jkt.into());
        self
    }

    /// Sets the client certificate thumbprint.
    #[must_use]
    pub fn with_mtls_thumbprint(mut self, thumbprint: impl Into<String>) -> Self {
        self.mtls_thumbprint = Some(thumbprint.into());
        self
    }

    /// Sets the issuer.
    #[must_use]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Sets the correlation id.
    #[must_use]
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Sets the token's expiry (`exp`, seconds since the Unix epoch).
    #[must_use]
    pub fn with_exp(mut self, exp: u64) -> Self {
        self.exp = Some(exp);
        self
    }

    /// Sets the roles.
    #[must_use]
    pub fn with_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// The sender binding grants are tied to: `cnf_jkt`, else `mtls_thumbprint` (empty values
    /// count as absent).
    #[must_use]
    pub fn sender_binding(&self) -> Option<&str> {
        nonempty(&self.cnf_jkt).or_else(|| nonempty(&self.mtls_thumbprint))
    }

    /// The kind of [`sender_binding`](Self::sender_binding).
    #[must_use]
    pub fn binding_kind(&self) -> crate::BindingKind {
        if nonempty(&self.cnf_jkt).is_some() {
            crate::BindingKind::Jkt
        } else if nonempty(&self.mtls_thumbprint).is_some() {
            crate::BindingKind::Mtls
        } else {
            crate::BindingKind::None
        }
    }

    pub(crate) fn subject_str(&self) -> Option<&str> {
        nonempty(&self.subject)
    }
}

fn nonempty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

impl fmt::Debug for ExecutionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("ExecutionContext")
            .field("subject", &self.subject)
            .field("aud", &self.aud)
            .field("token_jti", &redacted(&self.token_jti))
            .field("cnf_jkt", &redacted(&self.cnf_jkt))
            .field("mtls_thumbprint", &redacted(&self.mtls_thumbprint))
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("correlation_id", &self.correlation_id)
            .field("workflow_run_id", &self.workflow_run_id)
            .field("node_id", &self.node_id)
            .field("system_id", &self.system_id)
            .field("roles", &self.roles)
            .field("exp", &self.exp)
            .finish()
    }
}

/// The `axum` extractor: the [`ExecutionContext`] an authentication layer inserted into the
/// request extensions after verifying the caller's token.
///
/// ```text
/// // In your auth middleware, after verifying the token:
/// request.extensions_mut().insert(ExecutionContext::new(claims.sub).with_aud(claims.aud));
/// // In a handler:
/// async fn handler(ctx: ExecutionContext) -> String { /* pep.authorize(&ctx, …) */ }
/// ```
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl<S: Send + Sync> axum_core::extract::FromRequestParts<S> for ExecutionContext {
    type Rejection = MissingExecutionContext;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ExecutionContext>()
            .cloned()
            .ok_or(MissingExecutionContext)
    }
}

/// The rejection of the `axum` extractor when no authentication layer put an
/// [`ExecutionContext`] in the request extensions: `401 Unauthorized`.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingExecutionContext;

#[cfg(feature = "axum")]
impl fmt::Display for MissingExecutionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no verified execution context on the request")
    }
}

#[cfg(feature = "axum")]
impl std::error::Error for MissingExecutionContext {}

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for MissingExecutionContext {
    fn into_response(self) -> axum_core::response::Response {
        (http::StatusCode::UNAUTHORIZED, "unauthorized").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtls_is_the_fallback_binding_and_debug_redacts() {
        let ctx = ExecutionContext::new("bob")
            .with_jti("jti-canary")
            .with_mtls_thumbprint("mtls-canary")
            .with_cnf_jkt("");
        assert_eq!(ctx.sender_binding(), Some("mtls-canary"));
        assert_eq!(ctx.binding_kind(), crate::BindingKind::Mtls);
        let shown = format!("{ctx:?}");
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("[REDACTED]"));
    }

    #[cfg(feature = "axum")]
    #[tokio::test]
    async fn axum_extractor_reads_extensions_or_rejects_with_401() {
        use axum_core::extract::FromRequestParts;
        use axum_core::response::IntoResponse;

        let (mut parts, ()) = http::Request::new(()).into_parts();
        let rejected = ExecutionContext::from_request_parts(&mut parts, &()).await;
        assert_eq!(rejected, Err(MissingExecutionContext));
        let response = MissingExecutionContext.into_response();
        assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);

        parts.extensions.insert(ExecutionContext::new("alice"));
        let ctx = ExecutionContext::from_request_parts(&mut parts, &()).await;
        assert_eq!(ctx.ok().and_then(|c| c.subject), Some("alice".to_owned()));
    }
}
