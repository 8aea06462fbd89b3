//! Connection timers shared by the dialects, as plain state driven by the
//! connection task's clock (testable without sleeping).

use std::time::{Duration, Instant};

/// Slow-loris guard: a line that stays incomplete for longer than `limit`
/// ends the connection, however slowly its bytes trickle in.
#[derive(Debug)]
pub struct PartialLineGuard {
    since: Option<Instant>,
    limit: Duration,
}

impl PartialLineGuard {
    pub fn new(limit: Duration) -> Self {
        PartialLineGuard { since: None, limit }
    }

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

    /// When the pending partial line expires.
    pub fn deadline(&self) -> Option<Instant> {
        self.since.map(|t| t + self.limit)
    }

    /// Whether the pending partial line has expired at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|d| now >= d)
    }
}

/// Keep-alive: PING after `interval` of silence, give up `timeout` later.
#[derive(Debug)]
pub struct KeepAlive {
    last_input: Instant,
    ping_sent: Option<Instant>,
    interval: Duration,
    timeout: Duration,
}

/// What the keep-alive wants done.
#[derive(Debug, PartialEq, Eq)]
pub enum KeepAliveAction {
    Nothing,
    SendPing,
    TimedOut,
}

impl KeepAlive {
    pub fn new(now: Instant, interval: Duration, timeout: Duration) -> Self {
        KeepAlive {
            last_input: now,
            ping_sent: None,
            interval,
            timeout,
        }
    }

    /// Any input proves the client is alive.
    pub fn on_input(&mut self, now: Instant) {
        self.last_input = now;
        self.ping_sent = None;
    }

    pub fn deadline(&self) -> Instant {
        match self.ping_sent {
            Some(t) => t + self.timeout,
            None => self.last_input + self.interval,
        }
    }

    pub fn poll(&mut self, now: Instant) -> KeepAliveAction {
        match self.ping_sent {
            Some(t) if now >= t + self.timeout => KeepAliveAction::TimedOut,
            Some(_) => KeepAliveAction::Nothing,
            None if now >= self.last_input + self.interval => {
                self.ping_sent = Some(now);
                KeepAliveAction::SendPing
            }
            None => KeepAliveAction::Nothing,
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
        let mut k = KeepAlive::new(t0, 10 * s, 5 * s);
        assert_eq!(k.poll(t0 + 9 * s), KeepAliveAction::Nothing);
        assert_eq!(k.deadline(), t0 + 10 * s);
        assert_eq!(k.poll(t0 + 10 * s), KeepAliveAction::SendPing);
        assert_eq!(k.deadline(), t0 + 15 * s);
        assert_eq!(k.poll(t0 + 14 * s), KeepAliveAction::Nothing);
        assert_eq!(k.poll(t0 + 15 * s), KeepAliveAction::TimedOut);
    }

    #[test]
    fn keepalive_input_resets() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut k = KeepAlive::new(t0, 10 * s, 5 * s);
        assert_eq!(k.poll(t0 + 10 * s), KeepAliveAction::SendPing);
        k.on_input(t0 + 12 * s);
        assert_eq!(k.poll(t0 + 16 * s), KeepAliveAction::Nothing);
        assert_eq!(k.deadline(), t0 + 22 * s);
    }

    #[test]
    fn partial_line_guard() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut g = PartialLineGuard::new(30 * s);
        g.update(t0, false);
        assert_eq!(g.deadline(), None);
        g.update(t0, true);
        // Trickling more bytes of the same line does not extend the deadline.
        g.update(t0 + 20 * s, true);
        assert!(!g.expired(t0 + 29 * s));
        assert!(g.expired(t0 + 30 * s));
        g.update(t0 + 31 * s, false);
        assert!(!g.expired(t0 + 100 * s));
    }
}
