//! RFC 9449 DPoP proofs: [`DpopPolicy`] and the [`VerifiedProof`] it yields.

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, decode};
use serde_json::{Map, Value};

use crate::error::{ProofReason, VerifyError};
use crate::jose::{self, Compact, KeyKind};

/// The longest proof `jti` accepted, in bytes.
const MAX_JTI_BYTES: usize = 256;

/// How proofs are checked (RFC 9449 §4.3): the algorithms accepted, how old a proof's `iat`
/// may be and how far in the future (clock skew). A `DPoP-Nonce` challenge is not issued:
/// freshness rests on `iat` and the replay store's memory of each proof's `jti`.
#[derive(Debug, Clone)]
pub struct DpopPolicy {
    algorithms: Vec<Algorithm>,
    max_age_s: u64,
    skew_s: u64,
}

impl Default for DpopPolicy {
    /// ES256, RS256, PS256 or EdDSA; a proof at most 60 s old, at most 5 s ahead.
    fn default() -> Self {
        Self {
            algorithms: vec![
                Algorithm::ES256,
                Algorithm::RS256,
                Algorithm::PS256,
                Algorithm::EdDSA,
            ],
            max_age_s: 60,
            skew_s: 5,
        }
    }
}

impl DpopPolicy {
    /// The algorithms accepted, from [`ASYMMETRIC`](crate::ASYMMETRIC).
    ///
    /// # Errors
    /// `CONFIG` (`dpop_algorithms`) for an empty list or one naming an HMAC.
    pub fn with_algorithms(mut self, algorithms: &[Algorithm]) -> Result<Self, VerifyError> {
        self.algorithms = jose::asymmetric_only(algorithms, "dpop_algorithms")?;
        Ok(self)
    }

    /// How old (`max_age_s`) and how far ahead (`skew_s`) a proof's `iat` may be.
    ///
    /// # Errors
    /// `CONFIG` (`dpop_window`) for an age of zero or above 300 s, or a skew above 60 s.
    pub fn with_window(mut self, max_age_s: u64, skew_s: u64) -> Result<Self, VerifyError> {
        if max_age_s == 0 || max_age_s > 300 || skew_s > 60 {
            return Err(VerifyError::Config {
                setting: "dpop_window",
                reason: "the age must be 1 to 300 seconds and the skew at most 60",
            });
        }
        self.max_age_s = max_age_s;
        self.skew_s = skew_s;
        Ok(self)
    }

    /// How long a proof stays acceptable: what the replay store must remember its `jti` for.
    #[must_use]
    pub fn lifetime_s(&self) -> u64 {
        self.max_age_s + self.skew_s
    }

    /// Verifies `proof` for a request of `method` to `url` (the URL the client used, as the
    /// service sees it), presented with `access_token`, at `now` (seconds since the epoch).
    /// The proof's `jti` is returned for the caller's replay store: this does not remember it.
    ///
    /// # Errors
    /// `INVALID_DPOP_PROOF` with the [`ProofReason`] of the first check that failed.
    pub fn verify(
        &self,
        proof: &str,
        method: &str,
        url: &str,
        access_token: &str,
        now: u64,
    ) -> Result<VerifiedProof, VerifyError> {
        let refuse = |reason| VerifyError::proof(reason);
        let compact = Compact::read(proof, &self.algorithms).map_err(|f| refuse(f.into()))?;
        if !compact.typ_is("dpop+jwt") {
            return Err(refuse(ProofReason::Type));
        }
        let (jwk_json, kind, key) = proof_key(&compact.header).ok_or(refuse(ProofReason::Key))?;
        if !kind.fits(compact.alg) {
            return Err(refuse(ProofReason::Algorithm));
        }
        let claims = decode::<Map<String, Value>>(proof, &key, &jose::signature_only(compact.alg))
            .map_err(|e| refuse(jose::signature_fault(&e).into()))?
            .claims;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if text("htm") != Some(method) {
            return Err(refuse(ProofReason::Method));
        }
        match (text("htu").and_then(target), target(url)) {
            (Some(claimed), Some(requested)) if claimed == requested => {}
            _ => return Err(refuse(ProofReason::Url)),
        }
        let iat = jose::seconds(claims.get("iat"))
            .ok()
            .flatten()
            .ok_or(refuse(ProofReason::Stale))?;
        if iat > now.saturating_add(self.skew_s) || now > iat.saturating_add(self.max_age_s) {
            return Err(refuse(ProofReason::Stale));
        }
        if text("ath") != Some(access_token_hash(access_token).as_str()) {
            return Err(refuse(ProofReason::AccessTokenHash));
        }
        let jti = text("jti")
            .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_BYTES)
            .ok_or(refuse(ProofReason::MissingClaim))?
            .to_owned();
        let jkt = secret_pep::jwk_thumbprint(&jwk_json).map_err(|_| refuse(ProofReason::Key))?;
        Ok(VerifiedProof { jti, iat, jkt })
    }
}

/// The proof's public key from its header: its JSON (for the thumbprint), kind and key.
/// `None` without a `jwk`, or with a private or symmetric one.
fn proof_key(header: &Map<String, Value>) -> Option<(String, KeyKind, DecodingKey)> {
    let Some(Value::Object(jwk)) = header.get("jwk") else {
        return None;
    };
    if ["d", "p", "q", "k"].iter().any(|m| jwk.contains_key(*m)) {
        return None;
    }
    let json = Value::Object(jwk.clone()).to_string();
    let parsed: Jwk = serde_json::from_str(&json).ok()?;
    let kind = KeyKind::of(&parsed)?;
    let key = DecodingKey::from_jwk(&parsed).ok()?;
    Some((json, kind, key))
}

/// `ath` (RFC 9449 §4.2): the base64url SHA-256 of the access token's ASCII bytes, the same
/// digest and encoding as an RFC 8705 certificate thumbprint.
#[must_use]
pub fn access_token_hash(access_token: &str) -> String {
    secret_pep::certificate_thumbprint(access_token.as_bytes())
}

/// A URL as `htu` is compared (RFC 9449 §4.3, RFC 3986 §6.2.2-3): scheme and host in lower
/// case, the scheme's default port dropped, an empty path as `/`, no query or fragment. `None`
/// for what is not an absolute `http`/`https` URL.
fn target(url: &str) -> Option<String> {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |at| rest.split_at(at));
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}{path}"))
}

/// A DPoP proof that verified: its `jti` (for the replay store), `iat`, and the RFC 7638
/// thumbprint of its key (to compare with the token's `cnf.jkt`). `Debug` leaves out the
/// `jti` and the thumbprint.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The proof's `jti`.
    pub jti: String,
    /// The proof's `iat`, seconds since the epoch.
    pub iat: u64,
    /// The RFC 7638 thumbprint of the proof's key.
    pub jkt: String,
}

impl std::fmt::Debug for VerifiedProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedProof")
            .field("iat", &self.iat)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::target;

    #[test]
    fn targets_compare_as_rfc_3986_normalizes_them() {
        let same = [
            (
                "https://rs.example/v1/secret",
                "HTTPS://RS.Example:443/v1/secret?x=1#f",
            ),
            ("http://127.0.0.1:8200", "http://127.0.0.1:8200/"),
            ("http://host/", "http://host:80/"),
        ];
        for (a, b) in same {
            assert_eq!(target(a), target(b), "{a} {b}");
            assert!(target(a).is_some());
        }
        let different = [
            (
                "https://rs.example/v1/secret",
                "https://rs.example/v1/Secret",
            ),
            ("https://rs.example/a", "http://rs.example/a"),
            ("https://rs.example:8443/a", "https://rs.example/a"),
        ];
        for (a, b) in different {
            assert_ne!(target(a), target(b), "{a} {b}");
        }
        for bad in [
            "",
            "rs.example/a",
            "ftp://rs.example/a",
            "https:///a",
            "https://u@rs/a",
        ] {
            assert_eq!(target(bad), None, "{bad}");
        }
    }
}
