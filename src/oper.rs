//! Operator login, with the password check and its throttling in one place
//! for every dialect.

use std::time::{Duration, Instant};

use crate::config::Config;

/// Outcome of an `OPER` attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperCheck {
    Granted,
    Denied,
    /// Too many failures: refused without checking, retry after this many seconds.
    Throttled(u64),
}

/// Per-connection memory of failed attempts: each failure doubles the wait
/// before the next attempt is even checked (1 s, 2 s, 4 s ... up to 5 min), so
/// guessing is slow and hashing cannot be used to load the server.
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
    /// Checks `name`/`password` against the configured operators. Slow (argon2):
    /// call it outside the hub lock.
    pub fn check(&mut self, cfg: &Config, name: &str, password: &str, now: Instant) -> OperCheck {
        if let Some(f) = &self.failed
            && now < f.next_try
        {
            return OperCheck::Throttled((f.next_try - now).as_secs().max(1));
        }
        let ok = cfg
            .opers
            .iter()
            .find(|o| o.name == name)
            .is_some_and(|o| crate::passwd::verify(&o.password, password));
        if ok {
            self.failed = None;
            OperCheck::Granted
        } else {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Oper;

    #[test]
    fn failures_throttle_then_success_resets() {
        let mut cfg = Config::default();
        cfg.opers.push(Oper {
            name: "admin".into(),
            password: crate::passwd::hash("secret").unwrap(),
        });
        let mut g = OperGate::default();
        let t0 = Instant::now();
        assert_eq!(g.check(&cfg, "admin", "nope", t0), OperCheck::Denied);
        // Within the 2 s window even the right password is not checked.
        assert!(matches!(
            g.check(&cfg, "admin", "secret", t0),
            OperCheck::Throttled(_)
        ));
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(g.check(&cfg, "nobody", "secret", t1), OperCheck::Denied);
        let t2 = t1 + Duration::from_secs(5);
        assert_eq!(g.check(&cfg, "admin", "secret", t2), OperCheck::Granted);
        assert_eq!(g.check(&cfg, "admin", "secret", t2), OperCheck::Granted);
    }
}
