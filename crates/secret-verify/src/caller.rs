//! [`Verifier`]: a request's credentials checked together (token, proof, binding) into a
//! [`VerifiedCaller`], and that into the PEP's `ExecutionContext`.

use secret_pep::ExecutionContext;

use crate::dpop::{DpopPolicy, VerifiedProof};
use crate::error::{ProofReason, TokenReason, VerifyError};
use crate::issuer::IssuerKeys;
use crate::jose::{ASYMMETRIC, Compact};
use crate::keys::KeySet;
use crate::seen::SeenTokens;
use crate::token::{AccessTokenPolicy, VerifiedToken};

/// What a service passes in from the request it terminated. `Debug` shows the scheme, the
/// method, the URL and how many proofs, never the token or a proof.
#[derive(Clone, Copy)]
pub struct Presented<'a> {
    /// The `Authorization` header's value (`DPoP <token>` or `Bearer <token>`).
    pub authorization: &'a str,
    /// Every `DPoP` header value (a request must carry at most one).
    pub dpop: &'a [&'a str],
    /// The request's method.
    pub method: &'a str,
    /// The request's URL as the client used it (scheme, host and path).
    pub url: &'a str,
    /// The client certificate's DER, when the service terminated mutual TLS.
    pub client_certificate: Option<&'a [u8]>,
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            // Only a known scheme is named: a value without one may be the token itself.
            .field(
                "scheme",
                &match bearer_token(self.authorization) {
                    Some((true, _)) => "DPoP",
                    Some((false, _)) => "Bearer",
                    None => "(none or unknown)",
                },
            )
            .field("proofs", &self.dpop.len())
            .field("method", &self.method)
            .field("url", &self.url)
            .field("client_certificate", &self.client_certificate.is_some())
            .finish()
    }
}

/// Checks a request's access token, its DPoP proof and its sender binding.
///
/// A token that verified is remembered (10,000 at most, by its SHA-256, shared by clones)
/// for 60 s: presented again in that time, its signature is not checked again, its expiry
/// and binding are. After the minute it is verified again against the current keys (which
/// [`IssuerKeys`] fetches again at least every 10 minutes).
#[derive(Debug, Clone)]
pub struct Verifier {
    token: AccessTokenPolicy,
    dpop: DpopPolicy,
    seen: SeenTokens,
}

impl Verifier {
    /// A verifier of tokens by `token`'s rules and proofs by `dpop`'s.
    #[must_use]
    pub fn new(token: AccessTokenPolicy, dpop: DpopPolicy) -> Self {
        Self {
            token,
            dpop,
            seen: SeenTokens::default(),
        }
    }

    /// The access-token policy.
    #[must_use]
    pub fn token_policy(&self) -> &AccessTokenPolicy {
        &self.token
    }

    /// The DPoP policy.
    #[must_use]
    pub fn dpop_policy(&self) -> &DpopPolicy {
        &self.dpop
    }

    /// [`verify`](Self::verify) with the issuer's keys as [`IssuerKeys`] has them: fetched on
    /// first use, and again (rate-limited) for a token naming a key the cached set lacks.
    ///
    /// # Errors
    /// As [`verify`](Self::verify); `ISSUER_UNAVAILABLE` when no key set could ever be
    /// fetched; `CONFIG` (`issuer`) when `keys` are another issuer's than the policy's.
    pub async fn verify_with(
        &self,
        presented: &Presented<'_>,
        keys: &IssuerKeys,
        now: u64,
    ) -> Result<VerifiedCaller, VerifyError> {
        if keys.issuer() != self.token.issuer() {
            return Err(VerifyError::Config {
                setting: "issuer",
                reason: "the key source is another issuer's than the token policy's",
            });
        }
        let kid = bearer_token(presented.authorization)
            .and_then(|(_, token)| Compact::read(token, ASYMMETRIC).ok())
            .and_then(|compact| compact.text("kid").map(str::to_owned));
        let set = keys.for_kid(kid.as_deref()).await?;
        self.verify(presented, &set, now)
    }

    /// Verifies what a request presented against the issuer's `keys` at `now`.
    ///
    /// A token bound to a key (`cnf.jkt`) must come as `DPoP <token>` with exactly one proof
    /// of that key for this request; a token bound to a certificate (`cnf.x5t#S256`) needs the
    /// client certificate of that thumbprint. A bound token sent as `Bearer` is refused (RFC
    /// 9449 §7.2), and so is a `DPoP` request whose token is not bound to a key.
    ///
    /// # Errors
    /// `INVALID_TOKEN`, `INVALID_DPOP_PROOF` (each with its reason) or `BINDING_DRIFT`.
    pub fn verify(
        &self,
        presented: &Presented<'_>,
        keys: &KeySet,
        now: u64,
    ) -> Result<VerifiedCaller, VerifyError> {
        let (dpop_scheme, token) = bearer_token(presented.authorization)
            .ok_or(VerifyError::token(TokenReason::Malformed))?;
        let verified = match self.seen.get(token, now) {
            Some(seen) => self.token.still_valid(seen, now)?,
            None => {
                let verified = self.token.verify(token, keys, now)?;
                self.seen.insert(token, &verified, now);
                verified
            }
        };
        let proof = match (&verified.cnf_jkt, dpop_scheme) {
            (Some(jkt), true) => {
                let [proof] = presented.dpop else {
                    return Err(VerifyError::proof(ProofReason::Malformed));
                };
                let proof = self
                    .dpop
                    .verify(proof, presented.method, presented.url, token, now)?;
                // Thumbprints are public (the token carries one): a plain comparison leaks nothing.
                if proof.jkt != *jkt {
                    return Err(VerifyError::BindingDrift {
                        reason: "the DPoP proof is signed by a key other than the token's",
                    });
                }
                Some(proof)
            }
            (Some(_), false) => {
                return Err(VerifyError::BindingDrift {
                    reason: "a token bound to a key was presented as a bearer token",
                });
            }
            (None, true) => {
                return Err(VerifyError::BindingDrift {
                    reason: "a DPoP request presented a token not bound to a key",
                });
            }
            (None, false) => None,
        };
        if let Some(expected) = &verified.cnf_x5t {
            let presented_cert = presented
                .client_certificate
                .map(secret_pep::certificate_thumbprint);
            let matches = presented_cert.is_some_and(|t| t == *expected);
            if !matches {
                return Err(VerifyError::BindingDrift {
                    reason: "the client certificate is not the one the token is bound to",
                });
            }
        }
        Ok(VerifiedCaller {
            token: verified,
            proof,
        })
    }
}

/// The token of an `Authorization` value and whether its scheme is `DPoP` (else `Bearer`);
/// `None` for another scheme or no token.
fn bearer_token(authorization: &str) -> Option<(bool, &str)> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    (!token.is_empty() && (dpop || scheme.eq_ignore_ascii_case("bearer"))).then_some((dpop, token))
}

/// A caller whose token (and proof, for a DPoP-bound token) verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCaller {
    /// The token's verified claims.
    pub token: VerifiedToken,
    /// The verified DPoP proof, for a DPoP-bound token.
    pub proof: Option<VerifiedProof>,
}

impl VerifiedCaller {
    /// The PEP's context from verified claims only: subject, issuer, client id, audiences,
    /// `exp`, roles;
    /// the request's `jti` is the proof's, as `dpop:<key thumbprint>:<jti>` (one per request,
    /// RFC 9449 §11.1), for a DPoP-bound token, else the token's (so a bearer or certificate-bound token reads once per `jti`);
    /// the sender binding is the token's `cnf` the request proved.
    #[must_use]
    pub fn context(&self) -> ExecutionContext {
        let token = &self.token;
        let mut ctx = ExecutionContext::new(token.subject.clone())
            .with_issuer(token.issuer.clone())
            .with_aud(token.audiences.iter().cloned())
            .with_exp(token.exp)
            .with_roles(token.roles.iter().cloned())
            .with_jti(self.proof.as_ref().map_or_else(
                || token.jti.clone(),
                // Any client picks its proofs' `jti`s: scoped by its key, one cannot use up
                // another client's (nor a token's `jti`, which the issuer picks).
                |p| format!("dpop:{}:{}", p.jkt, p.jti),
            ));
        ctx.client_id = Some(token.client_id.clone());
        if let Some(jkt) = &token.cnf_jkt {
            ctx = ctx.with_cnf_jkt(jkt.clone());
        }
        if let Some(x5t) = &token.cnf_x5t {
            ctx = ctx.with_mtls_thumbprint(x5t.clone());
        }
        ctx
    }
}
