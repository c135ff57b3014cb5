//! [`SecretValue`]: a secret read from a provider, wiped from memory on drop.

use std::fmt;

use secrecy::SecretString;
use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

/// The value of one secret: a JSON document (a KV v2 secret, a JSON file, or a JSON scalar or
/// object picked out with `#key`) or plain text (a text file, or a string field picked with
/// `#key`).
///
/// `Debug` and `Display` print `[REDACTED]` (and say nothing of the version); reading the
/// value is an explicit `expose_*` call.
///
/// A value may carry the [`version`](Self::version) it was read at (KV v2's
/// `data.metadata.version`), so a watcher can compare it with what a
/// [`probe`](crate::SecretProvider::probe) reports without reading the value again.
///
/// # Zeroization
/// Text is held in a [`Zeroizing`] string. JSON is held as a [`serde_json::Value`] whose drop
/// walks the tree and zeroizes every string (object keys included) before freeing it; numbers
/// and booleans are not wiped (they are not heap strings). This covers the copies this crate
/// owns. It is best-effort beyond that: the HTTP stack's read buffers and the parser's scratch
/// space for strings with escapes are freed without wiping, and a value the caller copies out
/// (e.g. `expose_str().to_owned()`) is the caller's to wipe.
#[derive(Clone)]
pub struct SecretValue {
    repr: Repr,
    version: Option<u64>,
}

#[derive(Clone)]
enum Repr {
    Text(Zeroizing<String>),
    Json(WipedJson),
}

/// Why a `#key` could not be selected.
#[cfg_attr(not(any(feature = "file", feature = "kv2")), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selection {
    /// The value is an object without that field.
    Missing,
    /// The value is text (or a JSON scalar or array), not an object.
    NotObject,
}

impl SecretValue {
    fn new(repr: Repr) -> Self {
        Self {
            repr,
            version: None,
        }
    }

    /// A text secret.
    #[must_use]
    pub fn from_text(text: impl Into<String>) -> Self {
        Self::new(Repr::Text(Zeroizing::new(text.into())))
    }

    /// A JSON secret. A JSON string becomes a text secret.
    #[must_use]
    pub fn from_json(value: Value) -> Self {
        let mut json = WipedJson(value);
        if let Value::String(text) = &mut json.0 {
            return Self::from_text(std::mem::take(text));
        }
        Self::new(Repr::Json(json))
    }

    /// The version this value was read at, when the provider has versions (KV v2); `None`
    /// for files and for values built in code without [`with_version`](Self::with_version).
    #[must_use]
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// The same value, marked as read at `version`.
    #[must_use]
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    /// Whether this is a text secret.
    #[must_use]
    pub fn is_text(&self) -> bool {
        matches!(self.repr, Repr::Text(_))
    }

    /// The text of a text secret; `None` for JSON.
    #[must_use]
    pub fn expose_str(&self) -> Option<&str> {
        match &self.repr {
            Repr::Text(text) => Some(text),
            Repr::Json(_) => None,
        }
    }

    /// The JSON of a JSON secret (an object, or a number, boolean, null or array selected with
    /// `#key`); `None` for text.
    #[must_use]
    pub fn expose_json(&self) -> Option<&Value> {
        match &self.repr {
            Repr::Text(_) => None,
            Repr::Json(json) => Some(&json.0),
        }
    }

    /// The value as one string: text as is, JSON serialized compactly (`42`, `true`,
    /// `{"a":"b"}`), for callers that need a string (environment variables, connection
    /// strings).
    #[must_use]
    pub fn to_secret_string(&self) -> SecretString {
        match &self.repr {
            Repr::Text(text) => SecretString::from(text.as_str()),
            Repr::Json(json) => {
                let text = Zeroizing::new(json.0.to_string());
                SecretString::from(text.as_str())
            }
        }
    }

    /// Picks one field of a JSON object, keeping the version. A string field becomes a text
    /// secret.
    #[cfg_attr(not(any(feature = "file", feature = "kv2")), allow(dead_code))]
    pub(crate) fn select(self, key: &str) -> Result<Self, Selection> {
        let Repr::Json(mut json) = self.repr else {
            return Err(Selection::NotObject);
        };
        let Value::Object(map) = &mut json.0 else {
            return Err(Selection::NotObject);
        };
        // The rest of the object is wiped when `json` drops.
        let mut field = map
            .remove(key)
            .map(Self::from_json)
            .ok_or(Selection::Missing)?;
        field.version = self.version;
        Ok(field)
    }

    /// A JSON object from a parsed KV v2 `data.data`.
    #[cfg_attr(not(any(feature = "file", feature = "kv2")), allow(dead_code))]
    pub(crate) fn from_object(map: Map<String, Value>) -> Self {
        Self::new(Repr::Json(WipedJson(Value::Object(map))))
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue([REDACTED])")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// A JSON object parsed from a reply (KV v2's `data.data`, the database engine's `data`),
/// wiped on drop unless its map is taken.
#[cfg(feature = "kv2")]
#[derive(serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct WipedMap(pub(crate) Map<String, Value>);

#[cfg(feature = "kv2")]
impl Drop for WipedMap {
    fn drop(&mut self) {
        let mut value = Value::Object(std::mem::take(&mut self.0));
        wipe(&mut value);
    }
}

/// A JSON value whose strings are zeroized on drop.
#[derive(Clone)]
struct WipedJson(Value);

impl Drop for WipedJson {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Zeroizes every string in `value` (object keys too) and leaves `Null` behind: the one
/// wipe for parsed JSON that held a secret (a KV v2 response, a bootstrap file with a token).
///
/// ```
/// let mut document = serde_json::json!({"token": "s.xyz", "nested": ["a"]});
/// secret_providers::wipe_json(&mut document);
/// assert!(document.is_null());
/// ```
pub fn wipe(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => {
            for item in items.iter_mut() {
                wipe(item);
            }
        }
        Value::Object(map) => {
            for (mut key, mut item) in std::mem::take(map) {
                key.zeroize();
                wipe(&mut item);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    *value = Value::Null;
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    #[test]
    fn debug_and_display_are_redacted() {
        let text = SecretValue::from_text("hunter2");
        let json = SecretValue::from_json(json!({"password": "hunter2"}));
        for shown in [format!("{text} {text:?}"), format!("{json} {json:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("[REDACTED]"));
        }
    }

    #[test]
    fn the_version_is_carried_and_never_shown() {
        let plain = SecretValue::from_text("hunter2");
        assert_eq!(plain.version(), None);
        let versioned =
            SecretValue::from_json(json!({"password": "hunter2", "n": 7})).with_version(918_273);
        assert_eq!(versioned.version(), Some(918_273));
        assert_eq!(versioned.clone().with_version(4).version(), Some(4));
        // Debug and Display are unchanged by a version: neither the value nor the version.
        assert_eq!(format!("{versioned:?}"), "SecretValue([REDACTED])");
        assert_eq!(format!("{versioned}"), "[REDACTED]");
        // A selected field keeps the version of the secret it came from.
        let field = versioned.clone().select("password");
        assert_eq!(
            field.as_ref().ok().and_then(SecretValue::version),
            Some(918_273)
        );
        assert_eq!(
            field
                .ok()
                .and_then(|f| f.expose_str().map(str::to_owned))
                .as_deref(),
            Some("hunter2")
        );
        let number = versioned.select("n").ok();
        assert_eq!(
            number.as_ref().and_then(SecretValue::version),
            Some(918_273)
        );
        assert_eq!(
            number.and_then(|n| n.expose_json().cloned()),
            Some(json!(7))
        );
        assert_eq!(
            SecretValue::from_object(Map::new())
                .with_version(1)
                .version(),
            Some(1)
        );
    }

    #[test]
    fn select_returns_strings_as_text_and_others_as_json() {
        let value = SecretValue::from_json(json!({"s": "x", "n": 42, "o": {"a": true}}));
        let s = value
            .clone()
            .select("s")
            .map(|v| v.expose_str().map(str::to_owned));
        assert_eq!(s, Ok(Some("x".to_owned())));
        let n = value.clone().select("n").map(|v| v.expose_json().cloned());
        assert_eq!(n, Ok(Some(json!(42))));
        let o = value.clone().select("o").map(|v| v.expose_json().cloned());
        assert_eq!(o, Ok(Some(json!({"a": true}))));
        assert_eq!(value.select("missing").err(), Some(Selection::Missing));
        assert_eq!(
            SecretValue::from_text("t").select("k").err(),
            Some(Selection::NotObject)
        );
        assert_eq!(
            SecretValue::from_json(json!(1)).select("k").err(),
            Some(Selection::NotObject)
        );
    }

    #[test]
    fn to_secret_string_serializes_json() {
        assert_eq!(
            SecretValue::from_json(json!(42))
                .to_secret_string()
                .expose_secret(),
            "42"
        );
        assert_eq!(
            SecretValue::from_text("t")
                .to_secret_string()
                .expose_secret(),
            "t"
        );
        assert_eq!(
            SecretValue::from_json(json!({"a": "b"}))
                .to_secret_string()
                .expose_secret(),
            r#"{"a":"b"}"#
        );
    }

    #[test]
    fn wipe_clears_strings_and_keys() {
        let mut value = json!({"k": ["a", {"b": "c"}], "n": 1});
        wipe(&mut value);
        assert_eq!(value, Value::Null);
    }
}
