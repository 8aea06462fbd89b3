//! Admission control for new connections: a total cap, a cap per address
//! (per /64 for IPv6, since one IPv6 host usually owns a whole /64), and a
//! connection rate per address. Pure state; the accept loop consults it.

use std::net::IpAddr;
use std::time::Instant;

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    ServerFull,
    TooManyFromAddress,
    TooFast,
}

impl Refusal {
    /// The reason as shown to the refused client.
    pub fn text(self) -> &'static str {
        match self {
            Refusal::ServerFull => "Server is full, try again later",
            Refusal::TooManyFromAddress => "Too many connections from your address",
            Refusal::TooFast => "Connecting too fast, slow down",
        }
    }
}

/// The address a limit is counted under.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::V6(s.into())
            }
        },
        v4 => v4,
    }
}

#[derive(Debug)]
struct PerAddress {
    open: usize,
    /// Token bucket for the connection rate.
    tokens: f64,
    refilled: Instant,
}

/// Limits configuration, see `[limits]` in the config.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub per_address: usize,
    /// Connections per second per address, and the burst allowed above it.
    pub rate: f64,
    pub burst: f64,
}

/// Open connections and recent connection attempts.
#[derive(Debug)]
pub struct Admission {
    limits: ConnLimits,
    total: usize,
    by_addr: crate::hub::Map<IpAddr, PerAddress>,
    admits_since_sweep: usize,
}

impl Admission {
    pub fn new(limits: ConnLimits) -> Self {
        Admission {
            limits,
            total: 0,
            by_addr: Default::default(),
            admits_since_sweep: 0,
        }
    }

    /// Admits a connection from `ip` (counting it) or says why not.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        self.admits_since_sweep += 1;
        if self.admits_since_sweep >= 4096 {
            self.sweep(now);
        }
        let l = self.limits;
        let e = self.by_addr.entry(address_key(ip)).or_insert(PerAddress {
            open: 0,
            tokens: l.burst,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(e.refilled).as_secs_f64();
        e.tokens = (e.tokens + elapsed * l.rate).min(l.burst);
        e.refilled = now;
        let result = if self.total >= l.max_connections {
            Err(Refusal::ServerFull)
        } else if e.open >= l.per_address {
            Err(Refusal::TooManyFromAddress)
        } else if e.tokens < 1.0 {
            Err(Refusal::TooFast)
        } else {
            e.tokens -= 1.0;
            e.open += 1;
            self.total += 1;
            Ok(())
        };
        if e.open == 0 && e.tokens >= l.burst {
            self.by_addr.remove(&address_key(ip));
        }
        result
    }

    /// Forgets a closed connection from `ip`.
    pub fn release(&mut self, ip: IpAddr) {
        let key = address_key(ip);
        self.total = self.total.saturating_sub(1);
        if let Some(e) = self.by_addr.get_mut(&key) {
            e.open = e.open.saturating_sub(1);
            // An address with no connection is kept while its rate bucket
            // is not full; `sweep` drops it once it would be.
            if e.open == 0 && e.tokens >= self.limits.burst {
                self.by_addr.remove(&key);
            }
        }
    }

    /// Forgets addresses with no connection whose rate bucket has refilled,
    /// so one-off visitors from many addresses do not accumulate.
    fn sweep(&mut self, now: Instant) {
        self.admits_since_sweep = 0;
        let l = self.limits;
        self.by_addr.retain(|_, e| {
            let elapsed = now.saturating_duration_since(e.refilled).as_secs_f64();
            e.open > 0 || e.tokens + elapsed * l.rate < l.burst
        });
    }

    /// Connections currently open.
    pub fn open(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> ConnLimits {
        ConnLimits {
            max_connections: 5,
            per_address: 2,
            rate: 1.0,
            burst: 3.0,
        }
    }

    #[test]
    fn per_address_and_total() {
        let t = Instant::now();
        let mut a = Admission::new(ConnLimits {
            rate: 1000.0,
            burst: 1000.0,
            ..limits()
        });
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(a.admit(ip("10.0.0.1"), t), Ok(()));
        assert_eq!(a.admit(ip("10.0.0.1"), t), Ok(()));
        assert_eq!(a.admit(ip("10.0.0.1"), t), Err(Refusal::TooManyFromAddress));
        // IPv4-mapped IPv6 is the same address.
        assert_eq!(
            a.admit(ip("::ffff:10.0.0.1"), t),
            Err(Refusal::TooManyFromAddress)
        );
        // One IPv6 /64 counts as one address.
        assert_eq!(a.admit(ip("2001:db8::1"), t), Ok(()));
        assert_eq!(a.admit(ip("2001:db8::2"), t), Ok(()));
        assert_eq!(
            a.admit(ip("2001:db8::3"), t),
            Err(Refusal::TooManyFromAddress)
        );
        assert_eq!(a.admit(ip("2001:db8:0:1::3"), t), Ok(()));
        assert_eq!(a.admit(ip("10.0.0.9"), t), Err(Refusal::ServerFull));
        a.release(ip("10.0.0.1"));
        assert_eq!(a.open(), 4);
        assert_eq!(a.admit(ip("10.0.0.1"), t), Ok(()));
    }

    #[test]
    fn rate_with_burst() {
        let t = Instant::now();
        let mut a = Admission::new(ConnLimits {
            per_address: 100,
            max_connections: 100,
            ..limits()
        });
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(a.admit(ip, t), Ok(()));
            a.release(ip);
        }
        assert_eq!(a.admit(ip, t), Err(Refusal::TooFast));
        assert_eq!(a.admit(ip, t + Duration::from_millis(1100)), Ok(()));
    }
}
