//! Circuit breaker, one per provider: after `threshold` consecutive failures calls
//! fail fast for `cooldown`, then a single probe call decides whether it closes again.
//!
//! Time is passed in (`now`) so the state machine is tested without sleeping.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls fail fast until the cool-down ends.
    Open,
    /// The cool-down is over: the next call (only one at a time) is a probe.
    HalfOpen,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open {
        until: Instant,
    },
    /// A probe is in flight; everyone else still fails fast.
    Probing,
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    consecutive_failures: u32,
}

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

/// Why a call was not let through, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    pub retry_in: Duration,
}

/// What a state change means for the caller's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Opened,
    Closed,
}

/// The right to make one call; report its outcome with [`Permit::success`] or
/// [`Permit::failure`].
#[must_use]
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    settled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub state: CircuitState,
    pub consecutive_failures: u32,
    /// Time left in the cool-down while open.
    pub retry_in: Option<Duration>,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            inner: Mutex::new(Inner {
                phase: Phase::Closed,
                consecutive_failures: 0,
            }),
        }
    }

    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    pub fn cooldown(&self) -> Duration {
        self.cooldown
    }

    // The state stays consistent under any panic (plain field writes), so a poisoned
    // lock is still usable.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn acquire(&self, now: Instant) -> Result<Permit<'_>, Rejected> {
        let mut inner = self.lock();
        match inner.phase {
            Phase::Closed => Ok(self.permit(false)),
            Phase::Open { until } if now >= until => {
                inner.phase = Phase::Probing;
                Ok(self.permit(true))
            }
            Phase::Open { until } => Err(Rejected {
                retry_in: until - now,
            }),
            Phase::Probing => Err(Rejected {
                retry_in: Duration::ZERO,
            }),
        }
    }

    fn permit(&self, probe: bool) -> Permit<'_> {
        Permit {
            breaker: self,
            probe,
            settled: false,
        }
    }

    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let inner = self.lock();
        let (state, retry_in) = match inner.phase {
            Phase::Closed => (CircuitState::Closed, None),
            Phase::Open { until } if now >= until => (CircuitState::HalfOpen, None),
            Phase::Open { until } => (CircuitState::Open, Some(until - now)),
            Phase::Probing => (CircuitState::HalfOpen, None),
        };
        Snapshot {
            state,
            consecutive_failures: inner.consecutive_failures,
            retry_in,
        }
    }
}

impl Permit<'_> {
    pub fn success(mut self) -> Transition {
        self.settled = true;
        let mut inner = self.breaker.lock();
        match inner.phase {
            Phase::Closed => {
                inner.consecutive_failures = 0;
                Transition::None
            }
            Phase::Probing if self.probe => {
                inner.phase = Phase::Closed;
                inner.consecutive_failures = 0;
                Transition::Closed
            }
            // A call let through before the circuit opened proves little: only the probe decides.
            _ => Transition::None,
        }
    }

    pub fn failure(mut self, now: Instant) -> Transition {
        self.settled = true;
        let breaker = self.breaker;
        let mut inner = breaker.lock();
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        match inner.phase {
            Phase::Closed if inner.consecutive_failures >= breaker.threshold => {
                inner.phase = Phase::Open {
                    until: now + breaker.cooldown,
                };
                Transition::Opened
            }
            Phase::Probing if self.probe => {
                inner.phase = Phase::Open {
                    until: now + breaker.cooldown,
                };
                Transition::Opened
            }
            _ => Transition::None,
        }
    }
}

impl Drop for Permit<'_> {
    /// A probe abandoned without an outcome (the caller's future was dropped) must not
    /// leave the circuit half-open forever: the next call probes instead.
    fn drop(&mut self) {
        if self.probe && !self.settled {
            let mut inner = self.breaker.lock();
            if matches!(inner.phase, Phase::Probing) {
                inner.phase = Phase::Open {
                    until: Instant::now(),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(30);

    fn fail(b: &Breaker, now: Instant) -> Transition {
        b.acquire(now).expect("let through").failure(now)
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let b = Breaker::new(3, COOL);
        let t = Instant::now();
        assert_eq!(fail(&b, t), Transition::None);
        assert_eq!(fail(&b, t), Transition::None);
        assert_eq!(b.snapshot(t).state, CircuitState::Closed);
        assert_eq!(fail(&b, t), Transition::Opened);
        let snap = b.snapshot(t);
        assert_eq!(snap.state, CircuitState::Open);
        assert_eq!(snap.consecutive_failures, 3);
        assert_eq!(snap.retry_in, Some(COOL));
        let rejected = b.acquire(t + Duration::from_secs(10)).unwrap_err();
        assert_eq!(rejected.retry_in, Duration::from_secs(20));
    }

    #[test]
    fn success_resets_the_count() {
        let b = Breaker::new(3, COOL);
        let t = Instant::now();
        fail(&b, t);
        fail(&b, t);
        assert_eq!(b.acquire(t).unwrap().success(), Transition::None);
        assert_eq!(b.snapshot(t).consecutive_failures, 0);
        fail(&b, t);
        fail(&b, t);
        assert_eq!(b.snapshot(t).state, CircuitState::Closed);
    }

    #[test]
    fn half_open_lets_one_probe_through_and_closes_on_success() {
        let b = Breaker::new(1, COOL);
        let t = Instant::now();
        fail(&b, t);
        let later = t + COOL;
        assert_eq!(b.snapshot(later).state, CircuitState::HalfOpen);
        let probe = b.acquire(later).expect("probe");
        // While the probe is in flight everyone else still fails fast.
        assert!(b.acquire(later).is_err());
        assert_eq!(probe.success(), Transition::Closed);
        let snap = b.snapshot(later);
        assert_eq!(
            (snap.state, snap.consecutive_failures),
            (CircuitState::Closed, 0)
        );
        assert!(b.acquire(later).is_ok());
    }

    #[test]
    fn failed_probe_reopens_for_a_new_cooldown() {
        let b = Breaker::new(2, COOL);
        let t = Instant::now();
        fail(&b, t);
        fail(&b, t);
        let later = t + COOL + Duration::from_secs(1);
        assert_eq!(b.acquire(later).unwrap().failure(later), Transition::Opened);
        let snap = b.snapshot(later);
        assert_eq!(snap.state, CircuitState::Open);
        assert_eq!(snap.retry_in, Some(COOL));
        assert!(b.acquire(later + COOL - Duration::from_secs(1)).is_err());
        assert!(b.acquire(later + COOL).is_ok());
    }

    #[test]
    fn abandoned_probe_lets_the_next_call_probe() {
        let b = Breaker::new(1, COOL);
        let t = Instant::now();
        fail(&b, t);
        drop(b.acquire(t + COOL).expect("probe"));
        let probe = b.acquire(Instant::now() + COOL).expect("next probe");
        assert_eq!(probe.success(), Transition::Closed);
    }

    #[test]
    fn late_outcomes_of_calls_let_through_before_opening_do_not_decide() {
        let b = Breaker::new(1, COOL);
        let t = Instant::now();
        let early = b.acquire(t).unwrap();
        fail(&b, t);
        assert_eq!(early.success(), Transition::None);
        assert_eq!(b.snapshot(t).state, CircuitState::Open);
    }
}
