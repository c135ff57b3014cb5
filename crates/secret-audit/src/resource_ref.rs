//! [`ResourceRef`]: the keyed reference to a canonical secret URI that audit records carry
//! instead of the URI.

use std::fmt;
use std::str::FromStr;

use crate::AuditError;

/// A keyed, non-reversible reference to a canonical secret URI: the first 16 bytes of
/// HMAC-SHA256(key = `SECRET_TENANT_SALT`, message = the canonical URI), as 32 lowercase hex
/// digits. Made by [`AuditKey::resource_ref`](crate::AuditKey::resource_ref).
///
/// Records about one secret share it (joinable across events and services of one tenant);
/// another salt gives another reference; and unlike an unkeyed hash, nobody without the salt
/// can confirm a guessed URI from it. It parses back ([`FromStr`]) from exactly 32 lowercase
/// hex digits, and (de)serializes as that string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceRef([u8; 32]);

const HEX: &[u8; 16] = b"0123456789abcdef";

impl ResourceRef {
    /// The reference of an HMAC tag: the hex of its first 16 bytes (all of them when shorter).
    pub(crate) fn from_tag(tag: &[u8]) -> Self {
        Self(hex_prefix(tag))
    }

    /// The 32 lowercase hex digits.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored (from_tag and from_str guarantee it).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The lowercase hex of the first `N / 2` bytes of `bytes` (`'0'`-padded when shorter): the
/// text of a [`ResourceRef`] or a [`UriHash`](crate::UriHash).
pub(crate) fn hex_prefix<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [b'0'; N];
    for (i, byte) in bytes.iter().take(N / 2).enumerate() {
        out[2 * i] = HEX[usize::from(byte >> 4)];
        out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
    }
    out
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceRef({})", self.as_str())
    }
}

impl FromStr for ResourceRef {
    type Err = AuditError;

    /// Exactly 32 lowercase hex digits, else `BAD_RECORD`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = text.as_bytes();
        let valid = bytes.len() == 32 && bytes.iter().all(|b| HEX.contains(b));
        let out: [u8; 32] = bytes.try_into().ok().filter(|_| valid).ok_or_else(|| {
            AuditError::bad_record("resource_ref must be 32 lowercase hex digits")
        })?;
        Ok(Self(out))
    }
}

impl serde::Serialize for ResourceRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ResourceRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse()
            .map_err(|_| serde::de::Error::custom("resource_ref must be 32 lowercase hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_of_the_first_sixteen_bytes() {
        let tag: Vec<u8> = (0u8..32).collect();
        let reference = ResourceRef::from_tag(&tag);
        assert_eq!(reference.as_str(), "000102030405060708090a0b0c0d0e0f");
        assert_eq!(reference.to_string(), reference.as_str());
        assert_eq!(
            format!("{reference:?}"),
            "ResourceRef(000102030405060708090a0b0c0d0e0f)"
        );
        assert_eq!(
            reference.as_str().parse::<ResourceRef>().ok(),
            Some(reference)
        );
    }

    #[test]
    fn parses_exactly_thirty_two_lowercase_hex_digits() {
        let good = "8cbd64017dc68f7258e00a0a7a0f572c";
        assert_eq!(
            good.parse::<ResourceRef>()
                .map(|r| r.to_string())
                .ok()
                .as_deref(),
            Some(good)
        );
        for bad in [
            "",
            "8cbd64017dc68f7258e00a0a7a0f572",
            "8cbd64017dc68f7258e00a0a7a0f572c0",
            "8CBD64017DC68F7258E00A0A7A0F572C",
            "8cbd64017dc68f7258e00a0a7a0f572g",
            " 8cbd64017dc68f7258e00a0a7a0f572",
            "ééééééééééééééé", // 30 bytes of UTF-8
            "8cbd64017dc68f7258e00a0a7a0f57é",
        ] {
            let error = bad.parse::<ResourceRef>().err();
            assert_eq!(error.map(|e| e.code()), Some("BAD_RECORD"), "{bad:?}");
        }
    }

    #[test]
    fn serde_is_the_string() -> Result<(), serde_json::Error> {
        let reference: ResourceRef = serde_json::from_str("\"34799e215ddf118f464024ae4a8708bb\"")?;
        assert_eq!(
            serde_json::to_string(&reference)?,
            "\"34799e215ddf118f464024ae4a8708bb\""
        );
        assert!(
            serde_json::from_str::<ResourceRef>("\"34799E215DDF118F464024AE4A8708BB\"").is_err()
        );
        assert!(serde_json::from_str::<ResourceRef>("17").is_err());
        Ok(())
    }
}
