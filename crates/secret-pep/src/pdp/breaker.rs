//! A small circuit breaker so a dead PDP is not hammered.
//!
//! Closed: every call goes through. After `threshold` consecutive failures it opens: calls
//! fail fast for `cooldown`. Then one probe at a time goes through (half-open); a success
//! closes it, a failure opens it for another cooldown.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

/// Permission to make one call; report its outcome with [`Permit::success`] or
/// [`Permit::failure`]. Dropped without a report (the call was cancelled), a probe slot is
/// released.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

/// The `breaker` field of a `pdp_call` span when the breaker refused the call.
pub(crate) const OPEN: &str = "open";

/// The longest cooldown honored (1 day): a longer setting is cut to it, so that an absurd
/// `AUTHZEN_BREAKER_COOLDOWN_MS` can neither overflow the deadline (which would disable the
/// cooldown altogether) nor lock the PDP out for years.
pub(crate) const MAX_COOLDOWN: Duration = Duration::from_secs(24 * 3600);

impl Breaker {
    /// `threshold == 0` disables the breaker.
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold,
            cooldown: cooldown.min(MAX_COOLDOWN),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A permit, or `None` while the breaker is open (or a probe is already out).
    pub(crate) fn try_acquire(&self) -> Option<Permit<'_>> {
        if self.threshold == 0 {
            return Some(self.permit(false));
        }
        let mut state = self.state();
        if state.failures < self.threshold {
            return Some(self.permit(false));
        }
        if state.open_until.is_some_and(|until| Instant::now() < until) || state.probing {
            return None;
        }
        state.probing = true;
        Some(self.permit(true))
    }

    fn permit(&self, probe: bool) -> Permit<'_> {
        Permit {
            breaker: self,
            probe,
            reported: false,
        }
    }

    #[cfg(test)]
    fn is_open(&self) -> bool {
        self.state().failures >= self.threshold
    }
}

impl Permit<'_> {
    /// The breaker's state this call went through: `closed`, or `half_open` for the one
    /// probe after a cooldown (a refused call saw [`OPEN`]).
    pub(crate) const fn state(&self) -> &'static str {
        if self.probe { "half_open" } else { "closed" }
    }

    /// The PDP answered: close the breaker.
    pub(crate) fn success(mut self) {
        self.reported = true;
        let mut state = self.breaker.state();
        if state.failures >= self.breaker.threshold && self.breaker.threshold > 0 {
            tracing::info!("PDP circuit breaker closed: the PDP answers again");
        }
        *state = State::default();
    }

    /// The PDP is unreachable or failing: count it, and open the breaker at the threshold.
    pub(crate) fn failure(mut self) {
        self.reported = true;
        let breaker = self.breaker;
        if breaker.threshold == 0 {
            return;
        }
        let mut state = breaker.state();
        state.failures = state.failures.saturating_add(1);
        state.probing = false;
        if state.failures >= breaker.threshold {
            if state.failures == breaker.threshold || self.probe {
                tracing::warn!(
                    failures = state.failures,
                    cooldown_ms = u64::try_from(breaker.cooldown.as_millis()).unwrap_or(u64::MAX),
                    "PDP circuit breaker open: failing fast"
                );
            }
            let now = Instant::now();
            // `cooldown` is at most a day, which any clock can add; if one cannot, fail fast
            // until the next probe rather than not at all.
            state.open_until = Some(now.checked_add(breaker.cooldown).unwrap_or(now));
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            self.breaker.state().probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_then_probes_and_closes() {
        let breaker = Breaker::new(2, Duration::from_millis(30));
        assert_eq!(breaker.try_acquire().map(|p| p.state()), Some("closed"));
        breaker.try_acquire().unwrap().failure();
        assert!(!breaker.is_open());
        breaker.try_acquire().unwrap().failure();
        assert!(breaker.is_open());
        assert!(breaker.try_acquire().is_none(), "fails fast while open");

        std::thread::sleep(Duration::from_millis(40));
        let probe = breaker.try_acquire();
        assert_eq!(probe.as_ref().map(Permit::state), Some("half_open"));
        assert!(breaker.try_acquire().is_none(), "one probe at a time");
        drop(probe);
        // A cancelled probe frees the slot; a failed one re-opens.
        breaker.try_acquire().unwrap().failure();
        assert!(breaker.try_acquire().is_none());

        std::thread::sleep(Duration::from_millis(40));
        breaker.try_acquire().unwrap().success();
        assert!(!breaker.is_open());
        assert!(breaker.try_acquire().is_some());
    }

    #[test]
    fn a_huge_cooldown_still_fails_fast() {
        for cooldown in [Duration::MAX, Duration::from_millis(u64::MAX)] {
            let breaker = Breaker::new(1, cooldown);
            breaker.try_acquire().unwrap().failure();
            assert!(breaker.is_open());
            assert!(
                breaker.try_acquire().is_none(),
                "an overflowing cooldown must not let the next call through"
            );
        }
    }

    #[test]
    fn zero_threshold_disables() {
        let breaker = Breaker::new(0, Duration::from_secs(60));
        for _ in 0..10 {
            breaker.try_acquire().unwrap().failure();
        }
        assert!(breaker.try_acquire().is_some());
    }
}
