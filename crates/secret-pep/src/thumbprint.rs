//! Sender-binding thumbprints: RFC 7638 JWK thumbprints (DPoP `cnf.jkt`) and RFC 8705
//! certificate thumbprints (`cnf.x5t#S256`), both SHA-256 and base64url without padding.

use ring::digest::{SHA256, digest};
use serde_json::{Map, Value};

use crate::PepError;

/// The RFC 7638 SHA-256 thumbprint of a public JWK (JSON text), base64url without padding:
/// the value of a DPoP-bound token's `cnf.jkt` (RFC 9449).
///
/// Only the members RFC 7638 requires for the key type are hashed, in lexicographic order:
/// `EC` (`crv`, `kty`, `x`, `y`), `RSA` (`e`, `kty`, `n`), `OKP` (`crv`, `kty`, `x`) and `oct`
/// (`k`, `kty`); other members (`kid`, `alg`, `use`, private parts) do not change it.
///
/// ```
/// let jwk = r#"{"kty":"EC","crv":"P-256",
///   "x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
///   "y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}"#;
/// assert_eq!(
///     secret_pep::jwk_thumbprint(jwk)?,
///     "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
/// );
/// # Ok::<(), secret_pep::PepError>(())
/// ```
///
/// # Errors
/// `INVALID_JWK` when the text is not a JSON object, has no known `kty`, or lacks a required
/// member (or has one that is not a string).
pub fn jwk_thumbprint(jwk_json: &str) -> Result<String, PepError> {
    let value: Value = serde_json::from_str(jwk_json).map_err(|_| PepError::InvalidJwk {
        reason: "not valid JSON",
    })?;
    let Value::Object(jwk) = value else {
        return Err(PepError::InvalidJwk {
            reason: "not a JSON object",
        });
    };
    let kty = jwk
        .get("kty")
        .and_then(Value::as_str)
        .ok_or(PepError::InvalidJwk {
            reason: "missing `kty`",
        })?;
    // Required members in lexicographic order (RFC 7638 §3.2, RFC 8037 §2 for OKP).
    let members: &[&str] = match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        "oct" => &["k", "kty"],
        _ => {
            return Err(PepError::InvalidJwk {
                reason: "unsupported `kty`",
            });
        }
    };
    let mut canonical = Map::new();
    for member in members {
        let text = jwk
            .get(*member)
            .and_then(Value::as_str)
            .ok_or(PepError::InvalidJwk {
                reason: "a member required for this `kty` is missing or not a string",
            })?;
        canonical.insert((*member).to_owned(), Value::String(text.to_owned()));
    }
    // serde_json's map is ordered by key and its compact output has no whitespace: exactly
    // the RFC 7638 form (the members are plain ASCII, so escaping never differs).
    let text = Value::Object(canonical).to_string();
    Ok(base64url(digest(&SHA256, text.as_bytes()).as_ref()))
}

/// The RFC 8705 certificate thumbprint `x5t#S256` of a DER-encoded X.509 certificate:
/// SHA-256 of the DER bytes, base64url without padding. Compare it with an mTLS-bound token's
/// `cnf.x5t#S256` and pass it as [`ExecutionContext::mtls_thumbprint`](crate::ExecutionContext).
#[must_use]
pub fn certificate_thumbprint(der: &[u8]) -> String {
    base64url(digest(&SHA256, der).as_ref())
}

/// Base64url without padding (RFC 4648 §5), for 32-byte digests and short ids.
pub(crate) fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC7638_RSA_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    #[test]
    fn rfc7638_rsa_example() -> Result<(), PepError> {
        let jwk = format!(
            r#"{{"kty":"RSA","n":"{RFC7638_RSA_N}","e":"AQAB","alg":"RS256","kid":"2011-04-29"}}"#
        );
        assert_eq!(
            jwk_thumbprint(&jwk)?,
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        Ok(())
    }

    #[test]
    fn p256_example_from_rfc9449_and_optional_members_do_not_matter() -> Result<(), PepError> {
        // The DPoP (RFC 9449 §6.1) example key; its `jkt` is computed per RFC 7638.
        let bare = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;
        let decorated = r#"{"use":"sig","crv":"P-256","kid":"k1","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","alg":"ES256"}"#;
        let expected = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
        assert_eq!(jwk_thumbprint(bare)?, expected);
        assert_eq!(jwk_thumbprint(decorated)?, expected);
        Ok(())
    }

    #[test]
    fn invalid_jwks_are_rejected_with_a_code() {
        for bad in [
            "not json",
            "[]",
            r#"{"crv":"P-256"}"#,
            r#"{"kty":"XYZ"}"#,
            r#"{"kty":"EC","crv":"P-256","x":"a"}"#,
            r#"{"kty":"RSA","n":1,"e":"AQAB"}"#,
        ] {
            let err = jwk_thumbprint(bad).unwrap_err();
            assert_eq!(err.code(), "INVALID_JWK", "{bad}");
        }
    }

    #[test]
    fn certificate_thumbprint_matches_openssl() {
        // `openssl x509 -outform der | openssl dgst -sha256 -binary | base64url` of a
        // self-signed P-256 test certificate (CN=pep-test).
        let hex = "3082017a30820121a00302010202147c9e949b5e8165fa6cee427cca08b02fd6ab4429300a06082a8648ce3d04030230\
                   133111300f06035504030c087065702d74657374301e170d3236313132383133343033385a170d333631313235313334\
                   3033385a30133111300f06035504030c087065702d746573743059301306072a8648ce3d020106082a8648ce3d030107\
                   03420004f5fe2b50703dfb57101281fa3731a19e967cbfce714c18b6f9d30b282bb8e61bd8953672f469dcd94a723c37\
                   dace5064ec6b48eb8e06b9a93a6a1255ef9131e3a3533051301d0603551d0e04160414232db64f64623c7ead6339d1ad\
                   238e42d8e54565301f0603551d23041830168014232db64f64623c7ead6339d1ad238e42d8e54565300f0603551d1301\
                   01ff040530030101ff300a06082a8648ce3d04030203470030440220060be3ebe8a6582cc71443e19aeb9d3e0e33dc94\
                   1e457780c7ba8857b05b876402202727e9d1313965c2ca18f66f03bd948b01f8d0d0fb3099b4d4a9600a931cf813";
        let der: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(der.len(), 382);
        assert_eq!(
            certificate_thumbprint(&der),
            "hrlFUhFlj7o1PoXwGNkwIpWP2CDX-r3wRpSNtNXY4IA"
        );
    }

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(input.as_bytes()), output);
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
