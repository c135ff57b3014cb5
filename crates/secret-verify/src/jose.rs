//! What the access token and the DPoP proof share: the raw header (read before any key is
//! chosen), the algorithm allow-list and the fit between an algorithm and a key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use serde_json::{Map, Value};

/// The asymmetric algorithms a verifier may accept: never `none`, never an HMAC (a public key
/// used as an HMAC secret would let anyone sign).
pub const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::EdDSA,
];

/// The family and curve of a public key, to match against an `alg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    /// The kind of `jwk`, or `None` for a symmetric key or a curve not supported.
    pub(crate) fn of(jwk: &Jwk) -> Option<Self> {
        match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Some(Self::Rsa),
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => Some(Self::P256),
                EllipticCurve::P384 => Some(Self::P384),
                _ => None,
            },
            AlgorithmParameters::OctetKeyPair(okp) => {
                (okp.curve == EllipticCurve::Ed25519).then_some(Self::Ed25519)
            }
            AlgorithmParameters::OctetKey(_) => None,
        }
    }

    /// Whether a signature by `alg` can come from a key of this kind.
    pub(crate) fn fits(self, alg: Algorithm) -> bool {
        match alg {
            Algorithm::ES256 => self == Self::P256,
            Algorithm::ES384 => self == Self::P384,
            Algorithm::EdDSA => self == Self::Ed25519,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => self == Self::Rsa,
            _ => false,
        }
    }
}

/// The most bytes a token or a proof may have: a JWT access token with many claims is a few
/// KiB; past this it is refused unparsed.
pub(crate) const MAX_JWT_BYTES: usize = 16 * 1024;

/// A JWS in compact form, split: its header as JSON, its algorithm (from the allow-list), and
/// the text unchanged. `None` for anything malformed; `Err(())` for an algorithm not allowed.
pub(crate) struct Compact {
    pub(crate) header: Map<String, Value>,
    pub(crate) alg: Algorithm,
}

/// What reading or verifying a compact JWS can find wrong, before token- or proof-specific
/// checks (each maps it onto its own reason).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fault {
    Malformed,
    Algorithm,
    Signature,
}

/// The fault behind a failure of jsonwebtoken's signature check.
pub(crate) fn signature_fault(error: &jsonwebtoken::errors::Error) -> Fault {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => Fault::Algorithm,
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::Crypto(_) => Fault::Signature,
        _ => Fault::Malformed,
    }
}

/// `algorithms` when they are a non-empty list of [`ASYMMETRIC`] ones, else `CONFIG` naming
/// `setting`.
pub(crate) fn asymmetric_only(
    algorithms: &[Algorithm],
    setting: &'static str,
) -> Result<Vec<Algorithm>, crate::VerifyError> {
    if algorithms.is_empty() || !algorithms.iter().all(|a| ASYMMETRIC.contains(a)) {
        return Err(crate::VerifyError::Config {
            setting,
            reason: "must name asymmetric algorithms only (no none, no HMAC)",
        });
    }
    Ok(algorithms.to_vec())
}

impl Compact {
    /// Reads the header of `jws`, checking only its shape and that `alg` is in `allowed`.
    pub(crate) fn read(jws: &str, allowed: &[Algorithm]) -> Result<Self, Fault> {
        if jws.len() > MAX_JWT_BYTES {
            return Err(Fault::Malformed);
        }
        let mut parts = jws.split('.');
        let (Some(header), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Fault::Malformed);
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| Fault::Malformed)?;
        let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(Fault::Malformed);
        };
        // No extension is understood here: a critical one must be refused (RFC 7515
        // §4.1.11), and an unencoded payload (`b64`, RFC 7797) is not a JWT.
        if header.contains_key("crit") || header.contains_key("b64") {
            return Err(Fault::Malformed);
        }
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg,
            _ => return Err(Fault::Malformed),
        };
        // `none`, HMACs and anything unknown are refused here, before serde would read them.
        let alg = allowed
            .iter()
            .copied()
            .find(|a| name(*a) == alg)
            .ok_or(Fault::Algorithm)?;
        Ok(Self { header, alg })
    }

    /// The header's string member `name`, if it is one.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    /// Whether the header's `typ` is `expected` (case-insensitive, with or without the
    /// `application/` prefix, RFC 7515 §4.1.9).
    pub(crate) fn typ_is(&self, expected: &str) -> bool {
        self.text("typ").is_some_and(|typ| {
            let typ = typ
                .get(..12)
                .filter(|p| p.eq_ignore_ascii_case("application/"))
                .map_or(typ, |_| &typ[12..]);
            typ.eq_ignore_ascii_case(expected)
        })
    }
}

/// The JOSE name of an algorithm.
pub(crate) fn name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
    }
}

/// A validation that checks the signature and `alg` only: every claim is checked by this
/// crate, against a `now` the caller gives.
pub(crate) fn signature_only(alg: Algorithm) -> jsonwebtoken::Validation {
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation
}

/// A NumericDate claim (RFC 7519 §2: seconds, possibly fractional) as whole seconds.
pub(crate) fn seconds(value: Option<&Value>) -> Result<Option<u64>, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(whole) = n.as_u64() {
                Ok(Some(whole))
            } else {
                match n.as_f64() {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    Some(f) if (0.0..1.0e15).contains(&f) => Ok(Some(f as u64)),
                    _ => Err(()),
                }
            }
        }
        Some(_) => Err(()),
    }
}
