//! Random ids and jitter from `ring`'s system CSPRNG.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use ring::rand::{SecureRandom, SystemRandom};

fn rng() -> &'static SystemRandom {
    static RNG: OnceLock<SystemRandom> = OnceLock::new();
    RNG.get_or_init(SystemRandom::new)
}

/// 32 lowercase hex digits (128 random bits): grant ids and `X-Request-ID`s.
///
/// If the OS generator ever fails, a process-unique (not unpredictable) id is returned: these
/// ids must be unique, not secret.
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if rng().fill(&mut bytes).is_err() {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        bytes[8..].copy_from_slice(&(nanos as u64).to_be_bytes());
    }
    let mut out = String::with_capacity(32);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

/// A uniformly random fraction of `max` (0 when the generator fails).
pub(crate) fn jitter(max: std::time::Duration) -> std::time::Duration {
    if max.is_zero() {
        return max;
    }
    let mut bytes = [0u8; 2];
    if rng().fill(&mut bytes).is_err() {
        return std::time::Duration::ZERO;
    }
    max.mul_f64(f64::from(u16::from_be_bytes(bytes)) / f64::from(u16::MAX))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids_are_hex_and_distinct() {
        let a = random_id();
        let b = random_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn jitter_is_bounded() {
        let max = Duration::from_millis(500);
        for _ in 0..100 {
            assert!(jitter(max) <= max);
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }
}
