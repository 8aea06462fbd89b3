//! Flood control: token buckets for lines and bytes per client. Excess input
//! is not dropped but delayed (IRC "fakelag"); a client whose backlog would
//! take longer than a bound to drain is disconnected with `Excess Flood`.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Flood-control settings (`[flood]` in the config).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloodLimits {
    pub lines_per_sec: f64,
    pub burst_lines: f64,
    pub bytes_per_sec: f64,
    pub burst_bytes: f64,
    /// Longest delay the backlog may represent before the client is dropped.
    pub max_delay: Duration,
}

impl FloodLimits {
    /// The limits of the `[flood]` configuration, or `None` when disabled.
    pub fn from_config(c: &crate::config::FloodConfig) -> Option<FloodLimits> {
        c.enabled.then(|| FloodLimits {
            lines_per_sec: c.lines_per_sec,
            burst_lines: c.burst_lines,
            bytes_per_sec: c.bytes_per_sec,
            burst_bytes: c.burst_bytes,
            max_delay: Duration::from_secs_f64(c.max_delay),
        })
    }
}

/// Seconds until a bucket holding `tokens`, refilled at `rate` per second,
/// has `cost` (0 if it has).
fn wait(tokens: f64, rate: f64, cost: f64) -> f64 {
    if tokens >= cost {
        0.0
    } else {
        (cost - tokens) / rate
    }
}

/// What to do with the next line.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Handle it now.
    Go,
    /// Hold it (and everything after it) until this instant.
    Wait(Instant),
}

/// One client's buckets: only their levels, as every client shares the
/// server's limits (40 bytes, in jemalloc's 48-byte class, instead of 80
/// with a copy of the rates in every connection).
#[derive(Debug)]
pub struct Flood {
    lines: f64,
    bytes: f64,
    last: Instant,
    limits: Arc<FloodLimits>,
}

impl Flood {
    pub fn new(limits: Arc<FloodLimits>, now: Instant) -> Flood {
        Flood {
            lines: limits.burst_lines,
            bytes: limits.burst_bytes,
            last: now,
            limits,
        }
    }

    fn refill(&mut self, now: Instant) {
        let secs = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        let l = &*self.limits;
        self.lines = (self.lines + secs * l.lines_per_sec).min(l.burst_lines);
        self.bytes = (self.bytes + secs * l.bytes_per_sec).min(l.burst_bytes);
    }

    /// Seconds until `lines` lines and `bytes` bytes may pass.
    fn wait(&self, lines: f64, bytes: f64) -> f64 {
        let l = &*self.limits;
        wait(self.lines, l.lines_per_sec, lines).max(wait(self.bytes, l.bytes_per_sec, bytes))
    }

    /// Asks to handle a line of `len` bytes; takes its tokens on `Go`.
    pub fn admit(&mut self, len: usize, now: Instant) -> Verdict {
        self.refill(now);
        // A single line larger than the byte burst could never pass: charge
        // it at most the burst.
        let cost = (len as f64).min(self.limits.burst_bytes);
        let wait = self.wait(1.0, cost);
        if wait <= 0.0 {
            self.lines -= 1.0;
            self.bytes -= cost;
            Verdict::Go
        } else {
            Verdict::Wait(now + Duration::from_secs_f64(wait))
        }
    }

    /// Whether a backlog of `lines` lines and `bytes` bytes waiting behind the
    /// current one would take longer than the bound to drain.
    pub fn excessive(&mut self, lines: usize, bytes: usize, now: Instant) -> bool {
        self.refill(now);
        self.wait(lines as f64, bytes as f64) > self.limits.max_delay.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Arc<FloodLimits> {
        Arc::new(FloodLimits {
            lines_per_sec: 2.0,
            burst_lines: 5.0,
            bytes_per_sec: 1000.0,
            burst_bytes: 2000.0,
            max_delay: Duration::from_secs(10),
        })
    }

    #[test]
    fn burst_then_rate() {
        let t = Instant::now();
        let mut f = Flood::new(limits(), t);
        for _ in 0..5 {
            assert_eq!(f.admit(10, t), Verdict::Go);
        }
        assert_eq!(
            f.admit(10, t),
            Verdict::Wait(t + Duration::from_millis(500))
        );
        assert_eq!(f.admit(10, t + Duration::from_millis(500)), Verdict::Go);
        assert!(matches!(
            f.admit(10, t + Duration::from_millis(500)),
            Verdict::Wait(_)
        ));
    }

    #[test]
    fn bytes_limit_too() {
        let t = Instant::now();
        let mut f = Flood::new(limits(), t);
        assert_eq!(f.admit(1500, t), Verdict::Go);
        assert_eq!(
            f.admit(1000, t),
            Verdict::Wait(t + Duration::from_millis(500))
        );
        // A line bigger than the byte burst is charged the burst, so it passes eventually.
        let mut f = Flood::new(limits(), t);
        assert_eq!(f.admit(5000, t), Verdict::Go);
    }

    #[test]
    fn excess_bound() {
        let t = Instant::now();
        let mut f = Flood::new(limits(), t);
        for _ in 0..5 {
            f.admit(1, t);
        }
        assert!(
            !f.excessive(20, 100, t),
            "20 lines at 2/s is 10 s: at the bound"
        );
        assert!(f.excessive(21, 100, t));
        assert!(f.excessive(1, 13_000, t));
    }
}
