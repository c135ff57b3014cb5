//! [`AuditConfig`]: the `AUDIT_*` settings.

use std::time::Duration;

use secret_config::Env;

use crate::{AuditError, Overflow, QueueConfig};

/// Audit one cache hit in this many (`0` = none).
pub const SAMPLE_CACHE_HIT_ENV: &str = "AUDIT_SAMPLE_CACHE_HIT_N";
/// Record subjects as keyed hashes.
pub const HASH_SUBJECT_ENV: &str = "AUDIT_HASH_SUBJECT";
/// The queue's capacity, in events.
pub const QUEUE_CAPACITY_ENV: &str = "AUDIT_QUEUE_CAPACITY";
/// What a full queue does: `drop` or `block`.
pub const QUEUE_FULL_ENV: &str = "AUDIT_QUEUE_FULL";
/// How long `block` waits for room, in milliseconds.
pub const QUEUE_BLOCK_MS_ENV: &str = "AUDIT_QUEUE_BLOCK_MS";

/// The default of [`AuditConfig::sample_cache_hit_n`]: every hit. The original SDK audited
/// every read it made and had no sampling, so an operator who installs a sink gets a complete
/// record unless they ask for less.
pub const DEFAULT_SAMPLE_CACHE_HIT_N: u64 = 1;
/// The default wait of `AUDIT_QUEUE_FULL=block`.
pub const DEFAULT_BLOCK_WAIT: Duration = Duration::from_millis(100);

/// The audit settings an [`Auditor`](crate::Auditor) and its [`QueueSink`](crate::QueueSink)
/// read from the environment (or any lookup).
///
/// | Setting | Meaning | Default |
/// |---|---|---|
/// | `AUDIT_SAMPLE_CACHE_HIT_N` | audit one `SecretsClient` cache hit in N; `0` audits none | `1` (every hit) |
/// | `AUDIT_HASH_SUBJECT` | record the subject as a keyed hash | `false` |
/// | `AUDIT_QUEUE_CAPACITY` | events the queue holds (at least 1) | `10000` |
/// | `AUDIT_QUEUE_FULL` | `drop` (count and warn) or `block` (wait, then drop) | `drop` |
/// | `AUDIT_QUEUE_BLOCK_MS` | how long `block` waits for room | `100` |
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AuditConfig {
    /// Audit one cache hit in this many; `0` audits none.
    pub sample_cache_hit_n: u64,
    /// Record subjects as keyed hashes ([`AuditKey::subject_ref`](crate::AuditKey::subject_ref)).
    pub hash_subject: bool,
    /// The queue: capacity and overflow from the settings, the rest defaults.
    pub queue: QueueConfig,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            sample_cache_hit_n: DEFAULT_SAMPLE_CACHE_HIT_N,
            hash_subject: false,
            queue: QueueConfig::default(),
        }
    }
}

impl AuditConfig {
    /// Reads the `AUDIT_*` settings through `lookup` (values trimmed, empty is unset).
    ///
    /// # Errors
    /// `CONFIG` naming the setting: not a whole number, not a boolean, a capacity of 0, a
    /// queue policy other than `drop` or `block`.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, AuditError> {
        let env = Env::new(lookup);
        let defaults = QueueConfig::default();
        let capacity = env.number(QUEUE_CAPACITY_ENV, defaults.capacity)?;
        if capacity == 0 {
            return Err(AuditError::config(QUEUE_CAPACITY_ENV, "must be at least 1"));
        }
        let wait = env.millis(QUEUE_BLOCK_MS_ENV, DEFAULT_BLOCK_WAIT)?;
        let overflow = match env.setting(QUEUE_FULL_ENV) {
            None => Overflow::Drop,
            Some(setting) if setting.value().eq_ignore_ascii_case("drop") => Overflow::Drop,
            Some(setting) if setting.value().eq_ignore_ascii_case("block") => Overflow::Block(wait),
            Some(setting) => return Err(setting.invalid("must be drop or block").into()),
        };
        Ok(Self {
            sample_cache_hit_n: env.number(SAMPLE_CACHE_HIT_ENV, DEFAULT_SAMPLE_CACHE_HIT_N)?,
            hash_subject: env.flag(HASH_SUBJECT_ENV, false)?,
            queue: defaults.with_capacity(capacity).with_overflow(overflow),
        })
    }

    /// The same configuration with this cache-hit sampling (`0` = none).
    #[must_use]
    pub fn with_sample_cache_hit_n(mut self, n: u64) -> Self {
        self.sample_cache_hit_n = n;
        self
    }

    /// The same configuration with subjects hashed, or not.
    #[must_use]
    pub fn with_hash_subject(mut self, hash: bool) -> Self {
        self.hash_subject = hash;
        self
    }

    /// The same configuration with this queue.
    #[must_use]
    pub fn with_queue(mut self, queue: QueueConfig) -> Self {
        self.queue = queue;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<AuditConfig, AuditError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AuditConfig::from_lookup(&move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn defaults() -> Result<(), AuditError> {
        let config = read(&[])?;
        assert_eq!(config, AuditConfig::default());
        assert_eq!(config.sample_cache_hit_n, 1);
        assert!(!config.hash_subject);
        assert_eq!(config.queue.capacity, 10_000);
        assert_eq!(config.queue.overflow, Overflow::Drop);
        Ok(())
    }

    #[test]
    fn every_setting_is_read() -> Result<(), AuditError> {
        let config = read(&[
            ("AUDIT_SAMPLE_CACHE_HIT_N", " 100 "),
            ("AUDIT_HASH_SUBJECT", "true"),
            ("AUDIT_QUEUE_CAPACITY", "64"),
            ("AUDIT_QUEUE_FULL", "Block"),
            ("AUDIT_QUEUE_BLOCK_MS", "250"),
        ])?;
        assert_eq!(config.sample_cache_hit_n, 100);
        assert!(config.hash_subject);
        assert_eq!(config.queue.capacity, 64);
        assert_eq!(
            config.queue.overflow,
            Overflow::Block(Duration::from_millis(250))
        );
        let blocking = read(&[("AUDIT_QUEUE_FULL", "block")])?;
        assert_eq!(blocking.queue.overflow, Overflow::Block(DEFAULT_BLOCK_WAIT));
        assert_eq!(
            read(&[("AUDIT_QUEUE_FULL", "")])?.queue.overflow,
            Overflow::Drop
        );
        Ok(())
    }

    #[test]
    fn errors_name_the_setting_never_the_value() {
        let cases = [
            ("AUDIT_SAMPLE_CACHE_HIT_N", "-1"),
            ("AUDIT_HASH_SUBJECT", "sometimes"),
            ("AUDIT_QUEUE_CAPACITY", "0"),
            ("AUDIT_QUEUE_CAPACITY", "lots"),
            ("AUDIT_QUEUE_FULL", "canary-policy"),
            ("AUDIT_QUEUE_BLOCK_MS", "1.5"),
        ];
        for (name, value) in cases {
            let error = read(&[(name, value)]).err();
            assert_eq!(
                error.as_ref().map(AuditError::code),
                Some("CONFIG"),
                "{name}"
            );
            assert_eq!(error.as_ref().and_then(AuditError::setting), Some(name));
            let shown = format!(
                "{error:?} {}",
                error.as_ref().map(ToString::to_string).unwrap_or_default()
            );
            assert!(!shown.contains(value), "{shown}");
        }
    }
}
