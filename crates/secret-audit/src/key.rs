//! [`AuditKey`]: the tenant salt that keys resource references and hashed subjects.

use std::fmt;
use std::sync::Arc;

use quick_cache::sync::Cache;
use ring::hmac;
use secret_config::Env;
use secret_uri::SecretUri;
use zeroize::Zeroizing;

use crate::{AuditError, ResourceRef};

/// How many canonical URIs' references a key remembers (about 100 bytes each): a service reads
/// far fewer distinct secrets, and past this the least used are computed again.
const MEMO_ENTRIES: usize = 4096;

/// The setting that holds the salt.
pub const TENANT_SALT_ENV: &str = "SECRET_TENANT_SALT";
/// The setting that names the salt, so that consumers can tell references made with a rotated
/// salt apart.
pub const TENANT_SALT_ID_ENV: &str = "SECRET_TENANT_SALT_ID";
/// The shortest salt accepted, in bytes: a short key can be brute-forced, and then anyone who
/// guesses a URI could confirm it from an audit record. 32 random bytes are recommended.
pub const MIN_SALT_BYTES: usize = 16;
/// The longest key id accepted, in bytes.
pub const MAX_KEY_ID_BYTES: usize = 64;

/// Prefixes every subject before it is keyed. A canonical URI never contains a NUL byte, so no
/// subject's message can equal a URI's: a subject hash is never a valid resource reference of
/// the same salt, and the other way round.
const SUBJECT_DOMAIN: &[u8] = b"\0secret-audit/subject/v1\0";

/// The tenant salt (`SECRET_TENANT_SALT`, the HMAC key) and its optional id
/// (`SECRET_TENANT_SALT_ID`, carried in every event as `resource_ref_key_id`).
///
/// The salt is never kept or shown: the key holds only the HMAC key schedule derived from it
/// once (ring's `hmac::Key`, the two padded-key hash states), so a reference costs two
/// SHA-256 blocks rather than four; `Debug` prints `[REDACTED]` (the key id is not secret and
/// is shown). ring does not zeroize that schedule on drop; deriving it for each reference, as
/// an earlier version did, left as many unzeroized copies behind, one per reference.
///
/// References are remembered per canonical URI (4096 of them, shared by clones): the
/// request path asks for the same URI's reference for its span and each audit event, and a
/// lookup costs a fraction of the HMAC.
#[derive(Clone)]
pub struct AuditKey {
    key: hmac::Key,
    key_id: Option<String>,
    memo: Arc<Cache<Box<str>, ResourceRef>>,
}

impl AuditKey {
    /// A key from `salt` (at least [`MIN_SALT_BYTES`] bytes) and an optional id (1 to
    /// [`MAX_KEY_ID_BYTES`] of `A-Z a-z 0-9 . _ : -`).
    ///
    /// # Errors
    /// `CONFIG` naming `SECRET_TENANT_SALT` for a short salt, or `SECRET_TENANT_SALT_ID` for
    /// an invalid id.
    pub fn new(salt: &[u8], key_id: Option<&str>) -> Result<Self, AuditError> {
        if salt.len() < MIN_SALT_BYTES {
            return Err(AuditError::config(
                TENANT_SALT_ENV,
                format!("must be at least {MIN_SALT_BYTES} bytes (32 random bytes recommended)"),
            ));
        }
        if let Some(id) = key_id {
            let valid = !id.is_empty()
                && id.len() <= MAX_KEY_ID_BYTES
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:_-".contains(&b));
            if !valid {
                return Err(AuditError::config(
                    TENANT_SALT_ID_ENV,
                    format!(
                        "must be 1 to {MAX_KEY_ID_BYTES} characters of A-Z, a-z, 0-9, '.', ':', '_' or '-'"
                    ),
                ));
            }
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, salt),
            key_id: key_id.map(str::to_owned),
            memo: Arc::new(Cache::new(MEMO_ENTRIES)),
        })
    }

    /// Reads `SECRET_TENANT_SALT` (required, surrounding whitespace trimmed) and
    /// `SECRET_TENANT_SALT_ID` (optional) through `lookup`, e.g. `|name| std::env::var(name).ok()`.
    ///
    /// # Errors
    /// `CONFIG` naming the setting: the salt unset, empty or short; the id invalid.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, AuditError> {
        let env = Env::new(lookup);
        // The raw value, so the only copies of the salt are zeroizing ones.
        let raw = Zeroizing::new(
            env.raw(TENANT_SALT_ENV)
                .ok_or_else(|| AuditError::config(TENANT_SALT_ENV, "is not set"))?,
        );
        let salt = raw.trim();
        if salt.is_empty() {
            return Err(AuditError::config(TENANT_SALT_ENV, "is not set"));
        }
        let key_id = env.get(TENANT_SALT_ID_ENV);
        Self::new(salt.as_bytes(), key_id.as_deref())
    }

    /// The salt's id (`SECRET_TENANT_SALT_ID`), when one was given.
    #[must_use]
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The keyed reference of a canonical URI: the first 16 bytes of
    /// HMAC-SHA256(salt, `uri.as_str()`), as 32 lowercase hex digits.
    #[must_use]
    pub fn resource_ref(&self, uri: &SecretUri) -> ResourceRef {
        let canonical = uri.as_str();
        if let Some(known) = self.memo.get(canonical) {
            return known;
        }
        let computed = ResourceRef::from_tag(self.tag(&[canonical.as_bytes()]).as_ref());
        self.memo.insert(canonical.into(), computed);
        computed
    }

    /// The keyed hash of a subject, for `AUDIT_HASH_SUBJECT=true`: 32 lowercase hex digits of
    /// HMAC-SHA256(salt, a domain prefix + subject), so one subject's events still join while
    /// the subject itself is not in the record. Never equal to a [`resource_ref`](Self::resource_ref).
    #[must_use]
    pub fn subject_ref(&self, subject: &str) -> String {
        ResourceRef::from_tag(self.tag(&[SUBJECT_DOMAIN, subject.as_bytes()]).as_ref()).to_string()
    }

    fn tag(&self, parts: &[&[u8]]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.key);
        for part in parts {
            context.update(part);
        }
        context.sign()
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditKey")
            .field("salt", &"[REDACTED]")
            .field("key_id", &self.key_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: [(&str, &str, &str); 3] = [
        (
            "tenant-salt-0001-for-acme-corp-x",
            "openbao+kv2://secret/app/api#token?version=3",
            "8cbd64017dc68f7258e00a0a7a0f572c",
        ),
        (
            "tenant-salt-0001-for-acme-corp-x",
            "file://dc-infra/config.json#password",
            "8f2f4205826405363900cc07640d38ff",
        ),
        (
            "s3cr3t-salt-for-globex-2026-0002",
            "hashicorp+kv2://secret/crud/db",
            "34799e215ddf118f464024ae4a8708bb",
        ),
    ];

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_three_vectors_hold_byte_for_byte() -> Result<(), Box<dyn std::error::Error>> {
        for (salt, uri, expected) in VECTORS {
            let key = AuditKey::new(salt.as_bytes(), None)?;
            let uri = SecretUri::parse(uri)?;
            assert_eq!(key.resource_ref(&uri).as_str(), expected, "{salt}");
        }
        Ok(())
    }

    #[test]
    fn the_reference_is_of_the_canonical_form() -> Result<(), Box<dyn std::error::Error>> {
        let key = AuditKey::new(VECTORS[0].0.as_bytes(), None)?;
        let spelled = SecretUri::parse("OPENBAO+KV2://secret/app/api#token?version=3")?;
        assert_eq!(key.resource_ref(&spelled).as_str(), VECTORS[0].2);
        Ok(())
    }

    /// A remembered reference is the computed one: asked again (the vectors, from the memo),
    /// and for more URIs than the memo holds, twice over, each equal to a fresh key's (whose
    /// memo is empty); a key and its clone share the memo, another salt's key does not.
    #[test]
    fn remembered_references_are_the_computed_ones() -> Result<(), Box<dyn std::error::Error>> {
        let key = AuditKey::new(VECTORS[0].0.as_bytes(), None)?;
        for _ in 0..3 {
            for (salt, uri, expected) in VECTORS.iter().filter(|v| v.0 == VECTORS[0].0) {
                let uri = SecretUri::parse(uri)?;
                assert_eq!(key.resource_ref(&uri).as_str(), *expected, "{salt}");
            }
        }
        let uris = (0..MEMO_ENTRIES + 500)
            .map(|i| SecretUri::parse(&format!("openbao+kv2://secret/app/s{i}#token")))
            .collect::<Result<Vec<_>, _>>()?;
        for _ in 0..2 {
            for uri in &uris {
                let fresh = AuditKey::new(VECTORS[0].0.as_bytes(), None)?;
                assert_eq!(key.resource_ref(uri), fresh.resource_ref(uri), "{uri}");
            }
        }
        let clone = key.clone();
        assert!(Arc::ptr_eq(&key.memo, &clone.memo));
        let other = AuditKey::new(VECTORS[2].0.as_bytes(), None)?;
        let uri = SecretUri::parse(VECTORS[0].1)?;
        assert_ne!(other.resource_ref(&uri), key.resource_ref(&uri));
        Ok(())
    }

    #[test]
    fn subjects_are_keyed_and_domain_separated() -> Result<(), Box<dyn std::error::Error>> {
        let key = AuditKey::new(VECTORS[0].0.as_bytes(), Some("k1"))?;
        let other = AuditKey::new(VECTORS[2].0.as_bytes(), None)?;
        let hashed = key.subject_ref("alice");
        assert_eq!(hashed.len(), 32);
        assert_eq!(hashed, key.subject_ref("alice"));
        assert_ne!(hashed, key.subject_ref("bob"));
        assert_ne!(hashed, other.subject_ref("alice"));
        // The same bytes as a URI and as a subject key differently.
        let uri = SecretUri::parse(VECTORS[0].1)?;
        assert_ne!(
            key.subject_ref(uri.as_str()),
            key.resource_ref(&uri).as_str()
        );
        Ok(())
    }

    #[test]
    fn short_salts_and_bad_ids_are_refused_naming_the_setting() {
        let short = AuditKey::new(b"short-canary", None).err();
        assert_eq!(
            short.as_ref().map(|e| (e.code(), e.setting())),
            Some(("CONFIG", Some("SECRET_TENANT_SALT")))
        );
        assert!(
            !format!(
                "{short:?} {}",
                short.as_ref().map(ToString::to_string).unwrap_or_default()
            )
            .contains("short-canary")
        );
        assert!(AuditKey::new(&[7u8; MIN_SALT_BYTES], None).is_ok());
        for id in ["", "has space", "x\n", &"k".repeat(MAX_KEY_ID_BYTES + 1)] {
            let error = AuditKey::new(&[7u8; 32], Some(id)).err();
            assert_eq!(
                error.as_ref().and_then(AuditError::setting),
                Some("SECRET_TENANT_SALT_ID"),
                "{id:?}"
            );
        }
        assert!(AuditKey::new(&[7u8; 32], Some("2026-01.a_b:c")).is_ok());
    }

    #[test]
    fn from_lookup_reads_both_settings() -> Result<(), AuditError> {
        let vars = lookup(&[
            ("SECRET_TENANT_SALT", "  tenant-salt-0001-for-acme-corp-x\n"),
            ("SECRET_TENANT_SALT_ID", " 2026-q4 "),
        ]);
        let key = AuditKey::from_lookup(&vars)?;
        assert_eq!(key.key_id(), Some("2026-q4"));
        let uri = SecretUri::parse(VECTORS[0].1).map_err(|_| AuditError::bad_record("uri"))?;
        assert_eq!(key.resource_ref(&uri).as_str(), VECTORS[0].2);

        let no_id = AuditKey::from_lookup(&lookup(&[("SECRET_TENANT_SALT", "0123456789abcdef")]))?;
        assert_eq!(no_id.key_id(), None);
        for vars in [
            lookup(&[]),
            lookup(&[("SECRET_TENANT_SALT", "   ")]),
            lookup(&[("SECRET_TENANT_SALT", "too-short")]),
        ] {
            let error = AuditKey::from_lookup(&vars).err();
            assert_eq!(
                error.as_ref().and_then(AuditError::setting),
                Some("SECRET_TENANT_SALT")
            );
        }
        Ok(())
    }

    #[test]
    fn debug_never_shows_the_salt() -> Result<(), AuditError> {
        let key = AuditKey::new(b"canary-salt-0123456789", Some("k1"))?;
        let shown = format!("{key:?} {:?}", key.clone());
        assert!(!shown.contains("canary-salt"), "{shown}");
        assert!(
            shown.contains("[REDACTED]") && shown.contains("k1"),
            "{shown}"
        );
        Ok(())
    }
}
