//! Operator login throttling, the same for every dialect. The password
//! itself is checked by the server (an [`crate::effect::Effect::CheckOper`]):
//! argon2 takes tens of milliseconds of CPU, which the core never spends.

use std::time::{Duration, Instant};

/// Outcome of an `OPER` attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperCheck {
    Granted,
    Denied,
    /// Too many failures: refused without checking, retry after this many seconds.
    Throttled(u64),
}

/// Per-connection memory of failed attempts: each failure doubles the wait
/// before the next attempt is even checked (1 s, 2 s, 4 s ... up to 5 min),
/// so guessing is slow and hashing cannot be used to load the server.
///
/// Every connection holds one and almost none ever fails an attempt, so the
/// failure record is boxed: a clean gate is one null pointer.
#[derive(Debug, Default)]
pub struct OperGate {
    failed: Option<Box<Failures>>,
}

#[derive(Debug)]
struct Failures {
    count: u32,
    next_try: Instant,
}

impl OperGate {
    /// Whether an attempt may be checked at `now`; `Err(seconds)` to wait.
    pub fn admit(&self, now: Instant) -> Result<(), u64> {
        match &self.failed {
            Some(f) if now < f.next_try => Err((f.next_try - now).as_secs().max(1)),
            _ => Ok(()),
        }
    }

    /// Records the outcome of a checked attempt.
    pub fn record(&mut self, granted: bool, now: Instant) -> OperCheck {
        if granted {
            self.failed = None;
            return OperCheck::Granted;
        }
        let count = self
            .failed
            .as_ref()
            .map_or(0, |f| f.count)
            .saturating_add(1);
        let wait = Duration::from_secs((1u64 << count.min(9)).min(300));
        self.failed = Some(Box::new(Failures {
            count,
            next_try: now + wait,
        }));
        OperCheck::Denied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_throttle_then_success_resets() {
        let mut g = OperGate::default();
        let t0 = Instant::now();
        assert_eq!(g.admit(t0), Ok(()));
        assert_eq!(g.record(false, t0), OperCheck::Denied);
        // Within the 2 s window even the right password is not checked.
        assert_eq!(g.admit(t0), Err(2));
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(g.admit(t1), Ok(()));
        assert_eq!(g.record(false, t1), OperCheck::Denied);
        assert!(g.admit(t1 + Duration::from_secs(3)).is_err(), "4 s now");
        let t2 = t1 + Duration::from_secs(5);
        assert_eq!(g.admit(t2), Ok(()));
        assert_eq!(g.record(true, t2), OperCheck::Granted);
        assert_eq!(g.admit(t2), Ok(()));
    }
}
