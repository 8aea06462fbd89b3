//! Flood control: token buckets for lines and bytes per client. Excess input
//! is not dropped but delayed (IRC "fakelag"); a client whose backlog would
//! take longer than a bound to drain is disconnected with `Excess Flood`.

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

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
}

impl Bucket {
    fn refill(&mut self, secs: f64) {
        self.tokens = (self.tokens + secs * self.rate).min(self.burst);
    }

    /// Seconds until `cost` tokens are available (0 if they are).
    fn wait(&self, cost: f64) -> f64 {
        if self.tokens >= cost {
            0.0
        } else {
            (cost - self.tokens) / self.rate
        }
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

/// One client's buckets.
#[derive(Debug)]
pub struct Flood {
    lines: Bucket,
    bytes: Bucket,
    last: Instant,
    max_delay: Duration,
}

impl Flood {
    pub fn new(l: FloodLimits, now: Instant) -> Flood {
        Flood {
            lines: Bucket {
                tokens: l.burst_lines,
                rate: l.lines_per_sec,
                burst: l.burst_lines,
            },
            bytes: Bucket {
                tokens: l.burst_bytes,
                rate: l.bytes_per_sec,
                burst: l.burst_bytes,
            },
            last: now,
            max_delay: l.max_delay,
        }
    }

    fn refill(&mut self, now: Instant) {
        let secs = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.lines.refill(secs);
        self.bytes.refill(secs);
    }

    /// Asks to handle a line of `len` bytes; takes its tokens on `Go`.
    pub fn admit(&mut self, len: usize, now: Instant) -> Verdict {
        self.refill(now);
        // A single line larger than the byte burst could never pass: charge
        // it at most the burst.
        let cost = (len as f64).min(self.bytes.burst);
        let wait = self.lines.wait(1.0).max(self.bytes.wait(cost));
        if wait <= 0.0 {
            self.lines.tokens -= 1.0;
            self.bytes.tokens -= cost;
            Verdict::Go
        } else {
            Verdict::Wait(now + Duration::from_secs_f64(wait))
        }
    }

    /// Whether a backlog of `lines` lines and `bytes` bytes waiting behind the
    /// current one would take longer than the bound to drain.
    pub fn excessive(&mut self, lines: usize, bytes: usize, now: Instant) -> bool {
        self.refill(now);
        let secs = self
            .lines
            .wait(lines as f64)
            .max(self.bytes.wait(bytes as f64));
        secs > self.max_delay.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> FloodLimits {
        FloodLimits {
            lines_per_sec: 2.0,
            burst_lines: 5.0,
            bytes_per_sec: 1000.0,
            burst_bytes: 2000.0,
            max_delay: Duration::from_secs(10),
        }
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
