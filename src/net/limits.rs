//! Admission control for new connections: a total cap, a cap per address
//! (per /64 for IPv6, since one IPv6 host usually owns a whole /64), and a
//! connection rate per address, which exempt networks (loopback by
//! default, so local tools keep working) skip. Pure state; the accept loop
//! consults it.

use std::net::{IpAddr, Ipv6Addr};
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

/// The address a limit is counted under: IPv4 as an IPv4-mapped IPv6
/// address, IPv6 by its /64. An `Ipv6Addr` is 16 bytes aligned to 1, so a
/// table entry stays small (32 bytes) when many clients come from as many
/// addresses.
pub fn address_key(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => v6,
        IpAddr::V6(v6) => {
            let mut s = v6.segments();
            s[4..].fill(0);
            s.into()
        }
    }
}

/// 16 bytes: one per address with a connection open or a rate bucket not
/// yet full.
#[derive(Debug)]
struct PerAddress {
    open: u32,
    /// Token bucket for the connection rate.
    tokens: f32,
    /// When `tokens` was last refilled, in milliseconds since the
    /// [`Admission`] was made.
    refilled: u64,
}

impl PerAddress {
    /// The tokens in the bucket at `now_ms`.
    fn refilled_by(&self, now_ms: u64, l: &ConnLimits) -> f64 {
        let elapsed = now_ms.saturating_sub(self.refilled) as f64 / 1000.0;
        (self.tokens as f64 + elapsed * l.rate).min(l.burst)
    }
}

/// Limits configuration, see `[limits]` in the config.
#[derive(Clone, Debug)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub per_address: usize,
    /// Connections per second per address, and the burst allowed above it.
    pub rate: f64,
    pub burst: f64,
    /// Networks the per-address limits do not apply to (the total does).
    pub exempt: Vec<ipnet::IpNet>,
}

impl ConnLimits {
    fn exempt(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.exempt.iter().any(|n| n.contains(&ip))
    }
}

/// Open connections and recent connection attempts.
#[derive(Debug)]
pub struct Admission {
    limits: ConnLimits,
    total: usize,
    by_addr: bavard_core::state::Map<Ipv6Addr, PerAddress>,
    admits_since_sweep: usize,
    /// The origin of [`PerAddress::refilled`].
    epoch: Instant,
}

impl Admission {
    pub fn new(limits: ConnLimits) -> Self {
        Admission {
            limits,
            total: 0,
            by_addr: Default::default(),
            admits_since_sweep: 0,
            epoch: Instant::now(),
        }
    }

    /// Takes new limits (a reload); the connections open stay counted.
    pub fn set_limits(&mut self, limits: ConnLimits) {
        self.limits = limits;
    }

    fn millis(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// Admits a connection from `ip` (counting it) or says why not.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        if self.total >= self.limits.max_connections {
            return Err(Refusal::ServerFull);
        }
        if self.limits.exempt(ip) {
            self.total += 1;
            return Ok(());
        }
        self.admits_since_sweep += 1;
        if self.admits_since_sweep >= 4096 {
            self.sweep(now);
        }
        let l = &self.limits;
        let now_ms = self.millis(now);
        let key = address_key(ip);
        let e = self.by_addr.entry(key).or_insert(PerAddress {
            open: 0,
            tokens: l.burst as f32,
            refilled: now_ms,
        });
        let mut tokens = e.refilled_by(now_ms, l);
        e.refilled = now_ms;
        let result = if e.open as usize >= l.per_address {
            Err(Refusal::TooManyFromAddress)
        } else if tokens < 1.0 {
            Err(Refusal::TooFast)
        } else {
            tokens -= 1.0;
            e.open += 1;
            self.total += 1;
            Ok(())
        };
        e.tokens = tokens as f32;
        if e.open == 0 && tokens >= l.burst {
            self.by_addr.remove(&key);
        }
        result
    }

    /// Forgets a closed connection from `ip`.
    pub fn release(&mut self, ip: IpAddr) {
        self.total = self.total.saturating_sub(1);
        if self.limits.exempt(ip) {
            return;
        }
        let key = address_key(ip);
        if let Some(e) = self.by_addr.get_mut(&key) {
            e.open = e.open.saturating_sub(1);
            // An address with no connection is kept while its rate bucket
            // is not full; `sweep` drops it once it would be.
            if e.open == 0 && e.tokens >= self.limits.burst as f32 {
                self.by_addr.remove(&key);
            }
        }
    }

    /// Forgets addresses with no connection whose rate bucket has refilled,
    /// so one-off visitors from many addresses do not accumulate.
    fn sweep(&mut self, now: Instant) {
        self.admits_since_sweep = 0;
        let now_ms = self.millis(now);
        let l = &self.limits;
        self.by_addr
            .retain(|_, e| e.open > 0 || e.refilled_by(now_ms, l) < l.burst);
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
            exempt: Vec::new(),
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

    #[test]
    fn one_off_addresses_are_forgotten_once_their_bucket_refills() {
        let t = Instant::now();
        let mut a = Admission::new(ConnLimits {
            max_connections: 100_000,
            ..limits()
        });
        // 4,096 addresses connect once and leave: each bucket is one token
        // short, so each address is remembered (the sweep at the 4,096th
        // admission finds no bucket full)...
        for i in 0..4096u32 {
            let ip = IpAddr::V4(i.into());
            assert_eq!(a.admit(ip, t), Ok(()));
            a.release(ip);
        }
        assert_eq!(a.by_addr.len(), 4096);
        // ...until the next sweep, a second later, when their buckets are full.
        let later = t + Duration::from_millis(1001);
        for i in 0..4096u32 {
            let ip = IpAddr::V4((1_000_000 + i).into());
            assert_eq!(a.admit(ip, later), Ok(()));
            a.release(ip);
        }
        let first = |i: u32| address_key(IpAddr::V4(i.into()));
        assert!((0..4096).all(|i| !a.by_addr.contains_key(&first(i))));
        assert_eq!(a.by_addr.len(), 4096, "the second wave's, not yet full");
        assert_eq!(a.open(), 0);
        // An address keeps its place while a connection is open.
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(a.admit(ip, later), Ok(()));
        assert_eq!(a.by_addr.get(&address_key(ip)).map(|e| e.open), Some(1));
    }

    #[test]
    fn exempt_networks_skip_the_per_address_limits_not_the_total() {
        let t = Instant::now();
        let mut a = Admission::new(ConnLimits {
            exempt: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            ..limits()
        });
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for s in ["127.0.0.1", "127.0.0.1", "::ffff:127.0.0.1", "::1"] {
            assert_eq!(a.admit(ip(s), t), Ok(()), "{s}");
        }
        assert!(a.by_addr.is_empty(), "exempt addresses are not tracked");
        assert_eq!(a.admit(ip("10.0.0.1"), t), Ok(()));
        assert_eq!(a.admit(ip("127.0.0.2"), t), Err(Refusal::ServerFull));
        a.release(ip("127.0.0.1"));
        assert_eq!(a.open(), 4);
        assert_eq!(a.admit(ip("10.0.0.1"), t), Ok(()));
        assert_eq!(a.admit(ip("10.0.0.1"), t), Err(Refusal::ServerFull));
    }

    #[test]
    fn keys_do_not_mix_families_and_records_stay_small() {
        let k = |s: &str| address_key(s.parse().unwrap());
        assert_ne!(k("0.0.0.1"), k("::1"));
        assert_ne!(k("0.0.0.0"), k("::"));
        assert_eq!(k("::1"), k("::2"));
        assert_eq!(k("192.0.2.7"), k("::ffff:192.0.2.7"));
        // One entry per address a botnet (or the idle benchmark) uses.
        assert_eq!(std::mem::size_of::<(Ipv6Addr, PerAddress)>(), 32);
    }
}
