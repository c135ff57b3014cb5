//! One server shared by the tests of a binary that overlap in time.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// A server (or any fixture) shared by the tests of one binary while they overlap: the first
/// test to ask starts it, later ones get the same `Arc`, and it is dropped (its process
/// killed) when the last holder lets go. A plain `static` would never be dropped and would
/// leak the process; the next test to ask after that starts a fresh one.
///
/// ```
/// use std::sync::Arc;
/// use secrets_test_support::Shared;
///
/// static SHARED: Shared<String> = Shared::new();
/// let a = SHARED.get_or_start(|| Some("server".to_owned()));
/// let b = SHARED.get_or_start(|| panic!("started twice"));
/// assert!(matches!((&a, &b), (Some(a), Some(b)) if Arc::ptr_eq(a, b)));
/// ```
pub struct Shared<T> {
    slot: Mutex<Weak<T>>,
}

impl<T> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Shared<T> {
    /// An empty slot, for a `static`.
    pub const fn new() -> Self {
        Self {
            slot: Mutex::new(Weak::new()),
        }
    }

    /// The running fixture, or a new one from `start` (`None` passes through: a skipped
    /// server). Concurrent callers wait, so only one starts it.
    pub fn get_or_start(&self, start: impl FnOnce() -> Option<T>) -> Option<Arc<T>> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(fixture) = slot.upgrade() {
            return Some(fixture);
        }
        let fixture = Arc::new(start()?);
        *slot = Arc::downgrade(&fixture);
        Some(fixture)
    }
}
