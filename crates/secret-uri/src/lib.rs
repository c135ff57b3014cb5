//! Parser and canonicalizer for *Canonical Secret URIs*.
//!
//! A Canonical Secret URI names one secret (or one field of it) in a secret store:
//!
//! ```text
//! scheme://mount[/segment…][#key][?query]      e.g. openbao+kv2://secret/app/api#token?version=3
//! ```
//!
//! Everything else in secrets-sdk (provider routing, caches, grant keys, audit references) is
//! keyed by the canonical form this crate computes, which is byte-for-byte the one the original
//! Python SDK computes for valid input. This crate does no I/O and depends only on `nom` and
//! `thiserror` (plus `serde` behind a feature), so validators and linters can use it alone.
//!
//! ```
//! use secret_uri::{AllowedMounts, Engine, Provider, SecretUri};
//!
//! let uri: SecretUri = "OPENBAO+KV2://secret/app/api?version=3#token".parse()?;
//! assert_eq!(uri.as_str(), "openbao+kv2://secret/app/api#token?version=3");
//! assert_eq!(uri.provider(), Provider::OpenBao);
//! assert_eq!(uri.engine(), Some(Engine::Kv2));
//! assert_eq!((uri.mount(), uri.path(), uri.key()), ("secret", "app/api", Some("token")));
//! assert_eq!(uri.version(), Some(3));
//! assert_eq!(uri.redacted().to_string(), "openbao+kv2://secret/…");
//!
//! // Every error has a stable code and a byte offset.
//! let err = "openbao+kv2://secret/app/*".parse::<SecretUri>().unwrap_err();
//! assert_eq!((err.code(), err.offset()), ("INVALID_WILDCARD", Some(25)));
//!
//! // The tenant mount guard is a separate, explicit step.
//! let allowed: AllowedMounts = "secret,config".parse()?;
//! assert!(allowed.check(&uri).is_ok());
//! let other: SecretUri = "file://dc-infra/kafka-password".parse()?;
//! assert_eq!(allowed.check(&other).unwrap_err().code(), "TENANT_MOUNT_MISMATCH");
//! # Ok::<(), secret_uri::UriError>(())
//! ```
//!
//! The grammar, the canonical form and every error code are specified in `docs/uri-spec.md`.
//!
//! # Features
//! - `serde`: `SecretUri` serializes as its canonical string and deserializes by parsing.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod parse;
mod scheme;
pub mod template;

use std::fmt;
use std::str::FromStr;

pub use error::{EngineReason, IllegalSegmentReason, UriError, VersionReason};
pub use scheme::{Engine, Provider};

/// A parsed, validated Canonical Secret URI. It owns its canonical string; accessors borrow
/// from it. Equality, ordering and hashing are those of the canonical string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretUri {
    // `canonical` comes first so the derived orderings follow the canonical string; every
    // other field is derived from it.
    canonical: String,
    provider: Provider,
    engine: Option<Engine>,
    /// Offset of the mount (just past `://`).
    path_start: usize,
    /// End of the mount segment.
    mount_end: usize,
    /// End of the last segment.
    path_end: usize,
    /// End of `#key`; equal to `path_end` when there is no key.
    key_end: usize,
    version: Option<u64>,
}

impl SecretUri {
    /// Parses and canonicalizes `input`.
    ///
    /// # Errors
    /// A [`UriError`] naming the first rule the input breaks (see `docs/uri-spec.md`).
    pub fn parse(input: &str) -> Result<Self, UriError> {
        parse::parse(input)
    }

    /// Parses `input`, then applies the tenant mount guard.
    ///
    /// # Errors
    /// As [`SecretUri::parse`], then `TENANT_MOUNT_MISMATCH` for a mount outside `allowed`.
    pub fn parse_allowed(input: &str, allowed: &AllowedMounts) -> Result<Self, UriError> {
        // Checked in place: the result is returned as it was built, never moved out and back.
        let parsed = parse::parse(input);
        if let Ok(uri) = &parsed {
            allowed.check(uri)?;
        }
        parsed
    }

    /// The canonical form: lowercase scheme, `://`, segments joined by `/`, `#key` if any,
    /// then `?` and the query pairs sorted by name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// Consumes the URI, returning its canonical string.
    #[must_use]
    pub fn into_string(self) -> String {
        self.canonical
    }

    /// The provider named by the scheme.
    #[must_use]
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The engine named by the scheme, if any (`openbao://x/y` has none).
    #[must_use]
    pub fn engine(&self) -> Option<Engine> {
        self.engine
    }

    /// The canonical scheme, e.g. `openbao+kv2`.
    #[must_use]
    pub fn scheme(&self) -> &str {
        &self.canonical[..self.path_start - 3]
    }

    /// The mount: the first path segment.
    #[must_use]
    pub fn mount(&self) -> &str {
        &self.canonical[self.path_start..self.mount_end]
    }

    /// Every path segment, the mount first.
    pub fn segments(&self) -> impl DoubleEndedIterator<Item = &str> + '_ {
        self.canonical[self.path_start..self.path_end].split('/')
    }

    /// The segments after the mount joined by `/`; empty when the URI names only a mount.
    #[must_use]
    pub fn path(&self) -> &str {
        if self.mount_end == self.path_end {
            ""
        } else {
            &self.canonical[self.mount_end + 1..self.path_end]
        }
    }

    /// The `#key` selecting one field of the secret, if any (an empty `#` means none).
    #[must_use]
    pub fn key(&self) -> Option<&str> {
        (self.key_end > self.path_end).then(|| &self.canonical[self.path_end + 1..self.key_end])
    }

    /// The query pairs, sorted by name. A name given without `=` has the value `""`.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let query = self.canonical.get(self.key_end + 1..).unwrap_or("");
        query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
    }

    /// The value of one query parameter.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The pinned version (`?version=N`), validated as a positive integer.
    #[must_use]
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// A display form safe for logs: scheme and mount only, e.g. `openbao+kv2://secret/…`.
    #[must_use]
    pub fn redacted(&self) -> Redacted<'_> {
        Redacted(self)
    }
}

impl fmt::Display for SecretUri {
    /// Writes the canonical form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl fmt::Debug for SecretUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SecretUri").field(&self.canonical).finish()
    }
}

impl FromStr for SecretUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse::parse(s)
    }
}

impl TryFrom<&str> for SecretUri {
    type Error = UriError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        parse::parse(s)
    }
}

impl AsRef<str> for SecretUri {
    fn as_ref(&self) -> &str {
        &self.canonical
    }
}

/// The log-safe display of a [`SecretUri`]: `scheme://mount/…`. See [`SecretUri::redacted`].
/// `Debug` shows the same redacted form (`Redacted("scheme://mount/…")`), never the path.
#[derive(Clone, Copy)]
pub struct Redacted<'a>(&'a SecretUri);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Redacted")
            .field(&format_args!("{self}"))
            .finish()
    }
}

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = self.0;
        f.write_str(&uri.canonical[..uri.mount_end])?;
        if uri.mount_end < uri.canonical.len() {
            f.write_str("/…")?;
        }
        Ok(())
    }
}

/// The tenant mount guard: the set of mounts a tenant may read from.
///
/// An empty set restricts nothing; callers that require a non-empty set (the PEP) check
/// [`AllowedMounts::is_unrestricted`] at configuration time. Matching is case-sensitive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedMounts {
    // A short list scans faster than it hashes; tenants have a handful of mounts.
    mounts: Vec<Box<str>>,
}

impl AllowedMounts {
    /// A set from mount names; blanks are trimmed, empty names and duplicates dropped.
    pub fn new<I, S>(mounts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Self::default();
        for mount in mounts {
            let mount = mount.as_ref().trim();
            if !mount.is_empty() && !out.contains(mount) {
                out.mounts.push(mount.into());
            }
        }
        out
    }

    /// A set from a comma-separated list, as in `SECRETS_ALLOWED_MOUNTS=secret,config`.
    #[must_use]
    pub fn from_csv(list: &str) -> Self {
        Self::new(list.split(','))
    }

    /// `true` when the set is empty and so allows every mount.
    #[must_use]
    pub fn is_unrestricted(&self) -> bool {
        self.mounts.is_empty()
    }

    /// `true` when `mount` is in the set.
    #[must_use]
    pub fn contains(&self, mount: &str) -> bool {
        self.mounts.iter().any(|m| **m == *mount)
    }

    /// The mounts, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.mounts.iter().map(|m| &**m)
    }

    /// Applies the guard to a parsed URI.
    ///
    /// # Errors
    /// `TENANT_MOUNT_MISMATCH` when the set is non-empty and lacks the URI's mount.
    #[inline]
    pub fn check(&self, uri: &SecretUri) -> Result<(), UriError> {
        // The mount's bytes: its offsets are the parser's, so no boundary checks are needed.
        let mount = uri.canonical.as_bytes().get(uri.path_start..uri.mount_end);
        if self.is_unrestricted() || self.mounts.iter().any(|m| Some(m.as_bytes()) == mount) {
            Ok(())
        } else {
            Err(UriError::TenantMountMismatch {
                mount: uri.mount().to_owned(),
            })
        }
    }
}

impl FromStr for AllowedMounts {
    type Err = UriError;

    /// Parses a comma-separated list; never fails.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::from_csv(s))
    }
}

impl<S: AsRef<str>> FromIterator<S> for AllowedMounts {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self::new(iter)
    }
}

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl serde::Serialize for SecretUri {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.canonical)
    }
}

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> serde::Deserialize<'de> for SecretUri {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        parse::parse(&text).map_err(|e| serde::de::Error::custom(format_args!("{}: {e}", e.code())))
    }
}

#[cfg(test)]
mod tests;
