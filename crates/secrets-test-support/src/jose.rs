//! ES256 keys for tests of verified callers: a P-256 key pair (ring) that signs compact JWSs,
//! access tokens and RFC 9449 DPoP proofs, and publishes its JWK.
//!
//! ```
//! use secrets_test_support::jose::EcKey;
//!
//! let key = EcKey::generate("k1");
//! let proof = key.dpop_proof("GET", "https://rs.example/v1/read", 1_800_000_000, "p-1", None);
//! assert_eq!(proof.split('.').count(), 3);
//! assert_eq!(key.jwk()["kid"], "k1");
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

/// A P-256 signing key with its public JWK.
pub struct EcKey {
    pair: EcdsaKeyPair,
    kid: String,
    x: String,
    y: String,
}

impl std::fmt::Debug for EcKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl EcKey {
    /// A fresh key named `kid`.
    ///
    /// # Panics
    /// If the system's random source fails.
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn generate(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("a generated key parses");
        let point = pair.public_key().as_ref();
        let (x, y) = (b64url(&point[1..33]), b64url(&point[33..65]));
        Self {
            pair,
            kid: kid.to_owned(),
            x,
            y,
        }
    }

    /// The key's id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK as an issuer publishes it: `kty`, `crv`, `x`, `y`, `kid`, `use`, `alg`.
    #[must_use]
    pub fn jwk(&self) -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": self.x, "y": self.y,
               "kid": self.kid, "use": "sig", "alg": "ES256"})
    }

    /// The bare public JWK a DPoP proof carries: `kty`, `crv`, `x`, `y`.
    #[must_use]
    pub fn public_jwk(&self) -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": self.x, "y": self.y})
    }

    /// A compact JWS of `claims` under `header` (which should say `"alg":"ES256"`).
    ///
    /// # Panics
    /// If signing fails (it does not, for a valid key).
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("signed");
        format!("{input}.{}", b64url(signature.as_ref()))
    }

    /// An RFC 9068 access token (`typ` `at+jwt`, this key's `kid`) of `claims`.
    #[must_use]
    pub fn access_token(&self, claims: &Value) -> String {
        self.sign(
            &json!({"alg": "ES256", "typ": "at+jwt", "kid": self.kid}),
            claims,
        )
    }

    /// An RFC 9449 DPoP proof by this key for `method` `url` at `iat` with `jti`, with
    /// `ath` when it accompanies `access_token`.
    #[must_use]
    pub fn dpop_proof(
        &self,
        method: &str,
        url: &str,
        iat: u64,
        jti: &str,
        access_token: Option<&str>,
    ) -> String {
        let mut claims = json!({"htm": method, "htu": url, "iat": iat, "jti": jti});
        if let Some(token) = access_token {
            claims["ath"] = json!(access_token_hash(token));
        }
        self.sign(
            &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.public_jwk()}),
            &claims,
        )
    }
}

/// Seconds since the Unix epoch now (the `iat` of a proof made now).
#[must_use]
pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Base64url without padding.
#[must_use]
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A DPoP proof's `ath`: the base64url SHA-256 of the access token.
#[must_use]
pub fn access_token_hash(token: &str) -> String {
    b64url(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}
