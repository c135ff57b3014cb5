//! RFC 9068 JWT access tokens: [`AccessTokenPolicy`] and the [`VerifiedToken`] it yields.

use std::fmt;

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::error::{TokenReason, VerifyError};
use crate::jose::{self, Compact};
use crate::keys::KeySet;

/// The largest clock skew a policy accepts, in seconds.
pub const MAX_SKEW_S: u64 = 300;

/// How this resource server validates access tokens (RFC 9068 §4): the issuer, its own
/// audience, the algorithms it accepts, the clock skew it tolerates and the claim roles come
/// from.
#[derive(Debug, Clone)]
pub struct AccessTokenPolicy {
    issuer: String,
    audience: String,
    algorithms: Vec<Algorithm>,
    skew_s: u64,
    roles_claim: String,
}

impl AccessTokenPolicy {
    /// Tokens of `issuer` (its exact `iss`) for `audience` (`SECRETS_AUDIENCE`), signed with
    /// ES256, RS256 or PS256, 60 s of skew, roles from `scope`.
    #[must_use]
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            algorithms: vec![Algorithm::ES256, Algorithm::RS256, Algorithm::PS256],
            skew_s: 60,
            roles_claim: "scope".to_owned(),
        }
    }

    /// The algorithms accepted, from [`ASYMMETRIC`](crate::ASYMMETRIC).
    ///
    /// # Errors
    /// `CONFIG` (`algorithms`) for an empty list or one naming `none` or an HMAC.
    pub fn with_algorithms(mut self, algorithms: &[Algorithm]) -> Result<Self, VerifyError> {
        self.algorithms = jose::asymmetric_only(algorithms, "algorithms")?;
        Ok(self)
    }

    /// The clock skew tolerated on `exp`, `nbf` and `iat`.
    ///
    /// # Errors
    /// `CONFIG` (`skew`) above [`MAX_SKEW_S`].
    pub fn with_skew_s(mut self, skew_s: u64) -> Result<Self, VerifyError> {
        if skew_s > MAX_SKEW_S {
            return Err(VerifyError::Config {
                setting: "skew",
                reason: "must be at most 300 seconds",
            });
        }
        self.skew_s = skew_s;
        Ok(self)
    }

    /// The claim roles come from: an array of strings, or a string of space-separated values
    /// (as `scope`).
    #[must_use]
    pub fn with_roles_claim(mut self, claim: impl Into<String>) -> Self {
        self.roles_claim = claim.into();
        self
    }

    /// The issuer whose tokens this policy accepts.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Verifies `token` against the issuer's `keys` at `now` (seconds since the epoch).
    ///
    /// # Errors
    /// `INVALID_TOKEN` with the [`TokenReason`] of the first check that failed.
    pub fn verify(
        &self,
        token: &str,
        keys: &KeySet,
        now: u64,
    ) -> Result<VerifiedToken, VerifyError> {
        let refuse = |reason| VerifyError::token(reason);
        let compact = Compact::read(token, &self.algorithms).map_err(|f| refuse(f.into()))?;
        if !compact.typ_is("at+jwt") {
            return Err(refuse(TokenReason::Type));
        }
        let (kind, declared, key) = keys
            .find(compact.text("kid"))
            .ok_or(refuse(TokenReason::UnknownKey))?;
        // A key published for one algorithm verifies only that one (RFC 8725 §3.1).
        if !kind.fits(compact.alg) || declared.is_some_and(|alg| alg != jose::name(compact.alg)) {
            return Err(refuse(TokenReason::Algorithm));
        }
        let claims = jsonwebtoken::decode::<Map<String, Value>>(
            token,
            key,
            &jose::signature_only(compact.alg),
        )
        .map_err(|e| refuse(jose::signature_fault(&e).into()))?
        .claims;
        self.check(&claims, now)
    }

    /// `token`, verified earlier, if it has not expired by `now` (beyond the skew).
    pub(crate) fn still_valid(
        &self,
        token: VerifiedToken,
        now: u64,
    ) -> Result<VerifiedToken, VerifyError> {
        if now > token.exp.saturating_add(self.skew_s) {
            return Err(VerifyError::token(TokenReason::Expired));
        }
        Ok(token)
    }

    fn check(&self, claims: &Map<String, Value>, now: u64) -> Result<VerifiedToken, VerifyError> {
        let refuse = |reason| VerifyError::token(reason);
        let text = |name: &str| -> Result<Option<String>, VerifyError> {
            match claims.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(refuse(TokenReason::Malformed)),
            }
        };
        let time = |name: &str| {
            jose::seconds(claims.get(name)).map_err(|()| refuse(TokenReason::Malformed))
        };
        let (iss, sub, client_id, jti) =
            (text("iss")?, text("sub")?, text("client_id")?, text("jti")?);
        let (exp, nbf, iat) = (time("exp")?, time("nbf")?, time("iat")?);
        let audiences = match claims.get("aud") {
            None | Some(Value::Null) => None,
            Some(Value::String(one)) => Some(vec![one.clone()]),
            Some(Value::Array(many)) => Some(
                many.iter()
                    .map(|a| a.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or(refuse(TokenReason::Malformed))?,
            ),
            Some(_) => return Err(refuse(TokenReason::Malformed)),
        };
        // Time first: an expired token is `expired` whatever else it lacks.
        let exp = exp.ok_or(refuse(TokenReason::MissingClaim))?;
        if now > exp.saturating_add(self.skew_s) {
            return Err(refuse(TokenReason::Expired));
        }
        let latest = now.saturating_add(self.skew_s);
        if nbf.is_some_and(|nbf| nbf > latest) || iat.is_some_and(|iat| iat > latest) {
            return Err(refuse(TokenReason::NotYetValid));
        }
        let iss = iss.ok_or(refuse(TokenReason::MissingClaim))?;
        if iss != self.issuer {
            return Err(refuse(TokenReason::Issuer));
        }
        let audiences = audiences.ok_or(refuse(TokenReason::MissingClaim))?;
        if !audiences.contains(&self.audience) {
            return Err(refuse(TokenReason::Audience));
        }
        let (Some(subject), Some(client_id), Some(jti), Some(iat)) = (sub, client_id, jti, iat)
        else {
            return Err(refuse(TokenReason::MissingClaim));
        };
        let roles = match claims.get(&self.roles_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(list)) => list.split_ascii_whitespace().map(str::to_owned).collect(),
            Some(Value::Array(list)) => list
                .iter()
                .map(|r| r.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(refuse(TokenReason::Malformed))?,
            Some(_) => return Err(refuse(TokenReason::Malformed)),
        };
        let (cnf_jkt, cnf_x5t) = match claims.get("cnf") {
            None | Some(Value::Null) => (None, None),
            Some(Value::Object(cnf)) => {
                // A binding this verifier cannot check (`jwk`, `kid`, `jku`, SHA-1 `x5t`, none
                // at all) must not turn the token into a bearer one (RFC 7800).
                if cnf.is_empty() || cnf.keys().any(|k| k != "jkt" && k != "x5t#S256") {
                    return Err(VerifyError::BindingDrift {
                        reason: "the token is bound by a confirmation method this verifier cannot check",
                    });
                }
                let member = |name: &str| match cnf.get(name) {
                    None => Ok(None),
                    Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                    Some(_) => Err(refuse(TokenReason::Malformed)),
                };
                (member("jkt")?, member("x5t#S256")?)
            }
            Some(_) => return Err(refuse(TokenReason::Malformed)),
        };
        Ok(VerifiedToken {
            subject,
            issuer: iss,
            client_id,
            audiences,
            jti,
            exp,
            iat,
            roles,
            cnf_jkt,
            cnf_x5t,
        })
    }
}

/// The claims of an access token that verified. `Debug` leaves out the `jti` and the
/// binding thumbprints.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `sub`.
    pub subject: String,
    /// `iss`.
    pub issuer: String,
    /// `client_id`.
    pub client_id: String,
    /// `aud`, one or more.
    pub audiences: Vec<String>,
    /// `jti`.
    pub jti: String,
    /// `exp`, seconds since the epoch.
    pub exp: u64,
    /// `iat`, seconds since the epoch.
    pub iat: u64,
    /// The roles or scopes of the policy's roles claim.
    pub roles: Vec<String>,
    /// `cnf.jkt`: the token is DPoP-bound to the key of this RFC 7638 thumbprint.
    pub cnf_jkt: Option<String>,
    /// `cnf.x5t#S256`: the token is bound to the client certificate of this thumbprint.
    pub cnf_x5t: Option<String>,
}

impl fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("audiences", &self.audiences)
            .field("exp", &self.exp)
            .field("roles", &self.roles)
            .field("dpop_bound", &self.cnf_jkt.is_some())
            .field("certificate_bound", &self.cnf_x5t.is_some())
            .finish_non_exhaustive()
    }
}
