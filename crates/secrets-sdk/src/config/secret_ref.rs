//! [`SecretRef`]: a configuration field that is a secret URI, resolved at load.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock, PoisonError, RwLock, Weak};

use secret_uri::{SecretUri, UriError};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::watch;

use crate::Secret;

/// The newtype name a [`SecretRef`] serializes under: ordinary serializers write the inner
/// URI string; the reference walker ([`super::walk`]) recognizes the name.
pub(super) const MARKER: &str = "$secrets_sdk::SecretRef";

thread_local! {
    /// Set while [`super::parse`] deserializes: how unparsable references are treated, and
    /// every reference created.
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
    /// Set while the walker runs: the reference being serialized hands over its slot here.
    static WALKING: Cell<bool> = const { Cell::new(false) };
    static HANDED: RefCell<Option<Arc<Slot>>> = const { RefCell::new(None) };
}

/// How [`super::parse`] deserializes references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// As serde outside the loader: a URI that does not parse is a deserialization error.
    Strict,
    /// A URI that does not parse becomes an unparsed reference (reported with the others,
    /// with its field path) instead of ending the deserialization at the first. Inside an
    /// untagged enum's trials it is still refused: there a refusal is what makes serde try
    /// the next variant.
    Lenient,
}

/// One deserialization's view of its references.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) mode: Mode,
    /// Refuse the reference created `n`-th (counted as `created`), with [`PROBE`]: its error's
    /// path is where that reference is in the file.
    pub(super) probe: Option<usize>,
    /// Every reference created, in order. References created by an untagged enum's trial that
    /// failed are dropped with it, so those still alive are the value's.
    pub(super) created: Vec<Weak<Slot>>,
    /// Strings refused as URIs outside an untagged enum's trials: each one either ended the
    /// deserialization or was swallowed (a flattened `Option` that became `None`).
    pub(super) refused: usize,
}

/// The message of a probe's refusal (see [`Session::probe`]).
pub(super) const PROBE: &str = "$secrets_sdk::probe";

impl Session {
    fn new(mode: Mode, probe: Option<usize>) -> Self {
        Self {
            mode,
            probe,
            created: Vec::new(),
            refused: 0,
        }
    }
}

/// Runs `f` (one deserialization) in a fresh session of `mode`, and returns the session with
/// `f`'s result.
pub(super) fn deserializing<R>(
    mode: Mode,
    probe: Option<usize>,
    f: impl FnOnce() -> R,
) -> (R, Session) {
    /// Puts back the session `f` ran inside of, also when `f` panics.
    struct Restore(Option<Option<Session>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(outer) = self.0.take() {
                SESSION.set(outer);
            }
        }
    }
    let mut restore = Restore(Some(SESSION.replace(Some(Session::new(mode, probe)))));
    let result = f();
    let session = SESSION.replace(restore.0.take().unwrap_or(None));
    (result, session.unwrap_or_else(|| Session::new(mode, probe)))
}

/// What one reference names, and its value once resolved.
pub(super) struct Slot {
    /// The URI, or the code of why it does not parse (only ever inside `load`).
    pub(super) parsed: Result<SecretUri, &'static str>,
    pub(super) value: RwLock<Option<Secret>>,
    /// Dropped with the slot (the last clone of its reference): a watch waiting on it ends
    /// then, not at the secret's next change.
    gone: OnceLock<watch::Sender<()>>,
}

impl Slot {
    pub(super) fn set(&self, secret: Secret) {
        *self.value.write().unwrap_or_else(PoisonError::into_inner) = Some(secret);
    }

    /// A receiver whose `changed()` completes (with an error) once this slot is dropped.
    pub(super) fn on_drop(&self) -> watch::Receiver<()> {
        self.gone.get_or_init(|| watch::channel(()).0).subscribe()
    }
}

/// A configuration field that is a secret reference: a Canonical Secret URI in the file,
/// a [`Secret`] once resolved.
///
/// - Deserializes from a string that is a secret URI. A string that is not one is a serde
///   error `invalid secret URI [CODE]` (the URI's code), which never repeats the text: a
///   value typed where a reference belongs must not reach a log. Other types are refused
///   without naming their value either.
/// - `Debug` and `Display` show the redacted URI (scheme and mount); `Serialize` writes the
///   canonical URI back, never the value.
/// - [`load`](super::load) resolves every reference of a struct concurrently, and
///   [`resolve`](super::resolve) those of a struct deserialized by the service itself;
///   [`watch`](super::watch) keeps them current as the secrets rotate.
/// - Clones share the value: resolving or a rotation is seen through every clone.
///
/// ```
/// use secrets_sdk::config::SecretRef;
///
/// let reference: SecretRef = serde_json::from_str(r#""FILE://demo/db.json#password""#)?;
/// assert_eq!(reference.to_string(), "file://demo/…");
/// assert_eq!(serde_json::to_string(&reference)?, r#""file://demo/db.json#password""#);
/// assert!(reference.secret().is_none()); // not resolved yet
///
/// let error = serde_json::from_str::<SecretRef>(r#""s3cr3t-typed-by-mistake""#).unwrap_err();
/// assert!(error.to_string().starts_with("invalid secret URI [ILLEGAL_SEGMENT]"));
/// assert!(!error.to_string().contains("s3cr3t"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone)]
pub struct SecretRef(pub(super) Arc<Slot>);

impl SecretRef {
    /// A reference to `uri`, not yet resolved.
    #[must_use]
    pub fn new(uri: SecretUri) -> Self {
        Self::from_parsed(Ok(uri))
    }

    fn from_parsed(parsed: Result<SecretUri, &'static str>) -> Self {
        Self(Arc::new(Slot {
            parsed,
            value: RwLock::new(None),
            gone: OnceLock::new(),
        }))
    }

    /// The URI referred to. `None` only for a reference whose text did not parse, which
    /// [`load`](super::load) reports and never returns.
    #[must_use]
    pub fn uri(&self) -> Option<&SecretUri> {
        self.0.parsed.as_ref().ok()
    }

    /// The resolved secret (the latest, under [`watch`](super::watch)); `None` before it is
    /// resolved.
    #[must_use]
    pub fn secret(&self) -> Option<Secret> {
        self.0
            .value
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the reference has a value.
    #[must_use]
    pub fn is_resolved(&self) -> bool {
        self.0
            .value
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

impl FromStr for SecretRef {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SecretUri::parse(s).map(Self::new)
    }
}

impl From<SecretUri> for SecretRef {
    fn from(uri: SecretUri) -> Self {
        Self::new(uri)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.parsed {
            Ok(uri) => fmt::Display::fmt(&uri.redacted(), f),
            Err(code) => write!(f, "(invalid secret URI: {code})"),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({self}")?;
        if self.is_resolved() {
            f.write_str(", resolved")?;
        }
        f.write_str(")")
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if WALKING.get() {
            // The walker wants the slot (a parsed reference or not), never the text.
            HANDED.with(|handed| *handed.borrow_mut() = Some(Arc::clone(&self.0)));
            return serializer.serialize_newtype_struct(MARKER, "");
        }
        match &self.0.parsed {
            Ok(uri) => serializer.serialize_newtype_struct(MARKER, uri.as_str()),
            Err(code) => Err(serde::ser::Error::custom(format_args!(
                "invalid secret URI [{code}]"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // serde tries an untagged enum's variants one by one on a buffered copy of the input,
        // read through its `ContentRefDeserializer`; a refusal is what makes it try the next.
        // (No public API says so: a test pins it, `an_untagged_enum_picks_a_reference_only_for_a_uri`.)
        let trial = std::any::type_name::<D>().contains("ContentRefDeserializer");
        // `any`, not `str`: a format asked for a string quotes what it found instead
        // (serde_json: "invalid type: integer `1234`"); the visitor's own refusals name only
        // the kind.
        deserializer.deserialize_any(UriVisitor { trial })
    }
}

struct UriVisitor {
    /// Deserializing inside an untagged enum's trial: never lenient.
    trial: bool,
}

/// A string that is not a secret URI, by the URI's code alone.
fn refused<E: de::Error>(code: &str) -> E {
    E::custom(format_args!("invalid secret URI [{code}]"))
}

/// Every non-string input is refused by its kind alone: serde's default message would quote
/// the value.
fn not_a_string<E: de::Error>(kind: &str) -> E {
    E::custom(format_args!(
        "invalid type: {kind}, expected a secret URI string"
    ))
}

impl Visitor<'_> for UriVisitor {
    type Value = SecretRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret URI string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<SecretRef, E> {
        let parsed = SecretUri::parse(text).map_err(|e| e.code());
        SESSION.with(|session| {
            let mut session = session.borrow_mut();
            let Some(session) = session.as_mut() else {
                return parsed.map(SecretRef::new).map_err(refused);
            };
            if let Err(code) = parsed
                && (session.mode == Mode::Strict || self.trial)
            {
                if !self.trial {
                    session.refused += 1;
                }
                return Err(refused(code));
            }
            if session.probe == Some(session.created.len()) {
                return Err(E::custom(PROBE));
            }
            let reference = SecretRef::from_parsed(parsed);
            session.created.push(Arc::downgrade(&reference.0));
            Ok(reference)
        })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretRef, E> {
        Err(not_a_string("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretRef, E> {
        Err(not_a_string("a number"))
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<SecretRef, E> {
        Err(not_a_string("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretRef, E> {
        Err(not_a_string("a number"))
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<SecretRef, E> {
        Err(not_a_string("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretRef, E> {
        Err(not_a_string("a number"))
    }

    fn visit_char<E: de::Error>(self, c: char) -> Result<SecretRef, E> {
        self.visit_str(c.encode_utf8(&mut [0; 4]))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<SecretRef, E> {
        Err(not_a_string("bytes"))
    }

    fn visit_none<E: de::Error>(self) -> Result<SecretRef, E> {
        Err(not_a_string("null"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<SecretRef, E> {
        Err(not_a_string("null"))
    }
}

/// Runs `f` with references handing over their slots as they serialize.
pub(super) fn walking<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            WALKING.set(self.0);
            HANDED.with(|handed| handed.borrow_mut().take());
        }
    }
    let _reset = Reset(WALKING.replace(true));
    f()
}

/// The slot the reference just serialized handed over.
pub(super) fn take_handed() -> Option<Arc<Slot>> {
    HANDED.with(|handed| handed.borrow_mut().take())
}
