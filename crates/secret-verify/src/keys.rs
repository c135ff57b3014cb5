//! [`KeySet`]: an issuer's signing keys (a JWK Set, RFC 7517 §5), ready to verify with.

use std::fmt;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;
use serde_json::Value;

use crate::jose::KeyKind;

/// The most keys a set may hold; an issuer publishes a handful.
const MAX_KEYS: usize = 64;

/// One usable signing key.
struct Key {
    kid: Option<String>,
    kind: KeyKind,
    /// The `alg` the key was published for, when it names one.
    alg: Option<String>,
    decoding: DecodingKey,
}

/// An issuer's public signing keys, parsed once.
///
/// Keys that cannot sign tokens are left out rather than failing the set: `use` other than
/// `sig`, symmetric (`oct`) keys, curves not supported, private members, members that do not
/// parse. A set with no usable key is refused.
pub struct KeySet {
    keys: Vec<Key>,
}

impl KeySet {
    /// Parses a JWK Set document (`{"keys":[…]}`): `None` when it is not one, holds more than
    /// 64 keys, or no usable signing key.
    #[must_use]
    pub fn from_json(jwks: &str) -> Option<Self> {
        let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(jwks) else {
            return None;
        };
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return None;
        };
        if entries.len() > MAX_KEYS {
            return None;
        }
        let keys: Vec<Key> = entries.iter().filter_map(usable).collect();
        (!keys.is_empty()).then_some(Self { keys })
    }

    /// How many usable keys the set holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key (never, for a set that parsed).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key has this `kid`.
    #[must_use]
    pub fn has(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The key a token's header names (its kind, the `alg` it was published for, the key): by
    /// `kid`, or the only key when the header has none.
    pub(crate) fn find(&self, kid: Option<&str>) -> Option<(KeyKind, Option<&str>, &DecodingKey)> {
        let key = match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }?;
        Some((key.kind, key.alg.as_deref(), &key.decoding))
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field(
                "kids",
                &self
                    .keys
                    .iter()
                    .map(|k| k.kid.as_deref())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// `entry` as a signing key, when it is one.
fn usable(entry: &Value) -> Option<Key> {
    let object = entry.as_object()?;
    if object.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
        return None;
    }
    // A published private key is a misconfigured issuer: its keys are not trusted for it.
    if ["d", "p", "q", "k"].iter().any(|m| object.contains_key(*m)) {
        return None;
    }
    let jwk: Jwk = serde_json::from_value(entry.clone()).ok()?;
    let kind = KeyKind::of(&jwk)?;
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        kind,
        alg: object.get("alg").and_then(Value::as_str).map(str::to_owned),
        decoding,
    })
}
