//! [`UriHash`]: the unkeyed 8-hex hash of a canonical URI, for log lines of clients without
//! an audit salt.

use std::fmt;

use secret_uri::SecretUri;

/// The first 8 hex digits of the SHA-256 of a canonical URI: correlates log lines and spans
/// about one secret within one service when no tenant salt is configured (a `SecretsClient`
/// without audit).
///
/// What it is not: a secret, or a join key. It is **unkeyed**, so anyone who guesses a URI can
/// compute it, and 32 bits collide across a large fleet. Audit records carry the keyed
/// [`ResourceRef`](crate::ResourceRef) instead, and so do spans wherever a salt is configured.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UriHash([u8; 8]);

impl UriHash {
    /// The hash of `uri`'s canonical form.
    #[must_use]
    pub fn of(uri: &SecretUri) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, uri.as_str().as_bytes());
        Self(crate::resource_ref::hex_prefix(digest.as_ref()))
    }

    /// The 8 hex digits.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for UriHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for UriHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UriHash({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_hex_of_the_canonical_form() -> Result<(), secret_uri::UriError> {
        let canonical = SecretUri::parse("openbao+kv2://secret/app/api#token?version=3")?;
        let other = SecretUri::parse("OPENBAO+KV2://secret/app/api?version=3#token")?;
        let hash = UriHash::of(&canonical);
        assert_eq!(hash, UriHash::of(&other));
        assert_eq!(hash.as_str().len(), 8);
        assert!(
            hash.as_str()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(format!("{hash:?}"), format!("UriHash({hash})"));
        // The first 4 bytes of SHA-256 over the canonical form, in hex.
        let full = ring::digest::digest(&ring::digest::SHA256, canonical.as_str().as_bytes());
        let expected: String = full.as_ref()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hash.as_str(), expected);
        Ok(())
    }
}
