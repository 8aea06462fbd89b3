//! Connection timers shared by the dialects, as plain state driven by the
//! connection task's clock (testable without sleeping).
//!
//! Every connection holds these for its whole life, so they keep only the
//! instants that vary; the configured durations are passed in by the caller.

use std::time::{Duration, Instant};

/// Slow-loris guard: a line that stays incomplete for longer than its limit
/// ends the connection, however slowly its bytes trickle in.
#[derive(Debug, Default)]
pub struct PartialLineGuard {
    since: Option<Instant>,
}

impl PartialLineGuard {
    /// Call after each read with whether a partial line is now pending.
    pub fn update(&mut self, now: Instant, partial: bool) {
        match (partial, self.since) {
            (false, _) => self.since = None,
            (true, None) => self.since = Some(now),
            (true, Some(_)) => {}
        }
    }

    /// A line was completed: a partial line pending after this read started
    /// after it, not before.
    pub fn line_done(&mut self) {
        self.since = None;
    }

    /// When the pending partial line expires, given the `limit`.
    pub fn deadline(&self, limit: Duration) -> Option<Instant> {
        self.since.map(|t| t + limit)
    }

    /// Whether the pending partial line has expired at `now`.
    pub fn expired(&self, now: Instant, limit: Duration) -> bool {
        self.deadline(limit).is_some_and(|d| now >= d)
    }
}

/// Keep-alive: PING after `interval` of silence, give up `timeout` later.
#[derive(Clone, Copy, Debug)]
pub struct KeepAliveLimits {
    pub interval: Duration,
    pub timeout: Duration,
}

/// Keep-alive state; see [`KeepAliveLimits`].
#[derive(Debug)]
pub struct KeepAlive {
    /// The last input, or the PING once one is sent.
    since: Instant,
    pinged: bool,
}

/// What the keep-alive wants done.
#[derive(Debug, PartialEq, Eq)]
pub enum KeepAliveAction {
    Nothing,
    SendPing,
    TimedOut,
}

impl KeepAlive {
    pub fn new(now: Instant) -> Self {
        KeepAlive {
            since: now,
            pinged: false,
        }
    }

    /// Any input proves the client is alive.
    pub fn on_input(&mut self, now: Instant) {
        self.since = now;
        self.pinged = false;
    }

    pub fn deadline(&self, l: KeepAliveLimits) -> Instant {
        if self.pinged {
            self.since + l.timeout
        } else {
            self.since + l.interval
        }
    }

    pub fn poll(&mut self, now: Instant, l: KeepAliveLimits) -> KeepAliveAction {
        if now < self.deadline(l) {
            KeepAliveAction::Nothing
        } else if self.pinged {
            KeepAliveAction::TimedOut
        } else {
            self.since = now;
            self.pinged = true;
            KeepAliveAction::SendPing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_pings_then_times_out() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let l = KeepAliveLimits {
            interval: 10 * s,
            timeout: 5 * s,
        };
        let mut k = KeepAlive::new(t0);
        assert_eq!(k.poll(t0 + 9 * s, l), KeepAliveAction::Nothing);
        assert_eq!(k.deadline(l), t0 + 10 * s);
        assert_eq!(k.poll(t0 + 10 * s, l), KeepAliveAction::SendPing);
        assert_eq!(k.deadline(l), t0 + 15 * s);
        assert_eq!(k.poll(t0 + 14 * s, l), KeepAliveAction::Nothing);
        assert_eq!(k.poll(t0 + 15 * s, l), KeepAliveAction::TimedOut);
    }

    #[test]
    fn keepalive_input_resets() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let l = KeepAliveLimits {
            interval: 10 * s,
            timeout: 5 * s,
        };
        let mut k = KeepAlive::new(t0);
        assert_eq!(k.poll(t0 + 10 * s, l), KeepAliveAction::SendPing);
        k.on_input(t0 + 12 * s);
        assert_eq!(k.poll(t0 + 16 * s, l), KeepAliveAction::Nothing);
        assert_eq!(k.deadline(l), t0 + 22 * s);
    }

    #[test]
    fn partial_line_guard() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let limit = 30 * s;
        let mut g = PartialLineGuard::default();
        g.update(t0, false);
        assert_eq!(g.deadline(limit), None);
        g.update(t0, true);
        // Trickling more bytes of the same line does not extend the deadline.
        g.update(t0 + 20 * s, true);
        assert!(!g.expired(t0 + 29 * s, limit));
        assert!(g.expired(t0 + 30 * s, limit));
        g.update(t0 + 31 * s, false);
        assert!(!g.expired(t0 + 100 * s, limit));
    }
}
