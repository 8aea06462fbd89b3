//! Failed-login throttling, per account (or TLS certificate) and per
//! address: after
//! `max_failures` failures within `window` ms, further attempts are refused
//! for `window` ms. One failure never delays the next try (clients and
//! irctest retry at once). Time is passed in; nothing here sleeps.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::names::casefold;
use crate::notify::Millis;

/// What one key (an account or an address) has done lately.
#[derive(Debug, Default)]
struct Record {
    /// Failures since `since`.
    failures: u32,
    since: Millis,
    /// Refused until then.
    blocked_until: Millis,
}

/// Failed logins by key; forgets keys whose window is over.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    records: HashMap<String, Record>,
}

/// The limits, from `accounts.login_failures` and `accounts.login_window`.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_failures: u32,
    pub window: Millis,
}

/// What a login attempt names: an account (a password, SCRAM), or a TLS
/// client certificate by its fingerprint (SASL EXTERNAL, where the account
/// is known only once the certificate is). Each is counted apart from the
/// other, so a password attempt cannot throttle a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject<'a> {
    Account(&'a str),
    Certificate(&'a str),
}

impl<'a> From<&'a str> for Subject<'a> {
    fn from(account: &'a str) -> Subject<'a> {
        Subject::Account(account)
    }
}

impl<'a> From<&'a String> for Subject<'a> {
    fn from(account: &'a String) -> Subject<'a> {
        Subject::Account(account)
    }
}

impl Subject<'_> {
    fn key(self) -> String {
        match self {
            Subject::Account(a) => format!("a:{}", casefold(a)),
            Subject::Certificate(fp) => format!("c:{}", fp.to_ascii_lowercase()),
        }
    }
}

fn keys(subject: Subject<'_>, ip: IpAddr) -> [String; 2] {
    [subject.key(), format!("ip:{ip}")]
}

impl LoginThrottle {
    /// `Err(seconds)` to wait when `subject` or `ip` is throttled at `now`.
    pub fn check<'a>(
        &self,
        subject: impl Into<Subject<'a>>,
        ip: IpAddr,
        now: Millis,
    ) -> Result<(), u64> {
        let wait = keys(subject.into(), ip)
            .iter()
            .filter_map(|k| self.records.get(k))
            .map(|r| r.blocked_until.saturating_sub(now))
            .max()
            .unwrap_or(0);
        match wait {
            0 => Ok(()),
            ms => Err(ms.div_ceil(1000)),
        }
    }

    /// A failed attempt on `subject` from `ip`.
    pub fn failed<'a>(
        &mut self,
        subject: impl Into<Subject<'a>>,
        ip: IpAddr,
        now: Millis,
        l: Limits,
    ) {
        if l.max_failures == 0 {
            return;
        }
        self.records
            .retain(|_, r| now < r.blocked_until || now < r.since + l.window);
        for key in keys(subject.into(), ip) {
            let r = self.records.entry(key).or_default();
            if now >= r.since + l.window {
                r.failures = 0;
                r.since = now;
            }
            r.failures += 1;
            if r.failures >= l.max_failures {
                r.blocked_until = now + l.window;
                r.failures = 0;
                r.since = now;
            }
        }
    }

    /// A successful login forgets the account's (or certificate's)
    /// failures.
    pub fn succeeded<'a>(&mut self, subject: impl Into<Subject<'a>>) {
        self.records.remove(&subject.into().key());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_then_forgets() {
        let l = Limits {
            max_failures: 3,
            window: 60_000,
        };
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let mut t = LoginThrottle::default();
        t.failed("Bob", ip, 0, l);
        assert_eq!(t.check("bob", ip, 1), Ok(()), "one failure never delays");
        t.failed("bob", ip, 1, l);
        t.failed("bob", ip, 2, l);
        assert_eq!(t.check("bob", ip, 3), Err(60));
        // The account is throttled from anywhere, the address for any account.
        assert_eq!(t.check("bob", other, 3), Err(60));
        assert_eq!(t.check("alice", ip, 3), Err(60));
        assert_eq!(t.check("alice", other, 3), Ok(()));
        assert_eq!(t.check("bob", ip, 59_500), Err(1));
        assert_eq!(t.check("bob", ip, 60_002), Ok(()));
        // Failures spread wider than the window never block.
        for i in 0..10 {
            t.failed("carol", other, 200_000 + i * 61_000, l);
        }
        assert_eq!(t.check("carol", other, 900_000), Ok(()));
    }

    #[test]
    fn certificates_count_apart_from_accounts() {
        let l = Limits {
            max_failures: 2,
            window: 10_000,
        };
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let mut t = LoginThrottle::default();
        let cert = Subject::Certificate("AB12");
        t.failed(cert, ip, 0, l);
        t.failed(cert, ip, 1, l);
        assert_eq!(t.check(Subject::Certificate("ab12"), other, 2), Err(10));
        // The address is throttled for passwords too, like any failure.
        assert_eq!(t.check("ab12", ip, 2), Err(10));
        // An account named like the fingerprint is not the certificate.
        assert_eq!(t.check("c:ab12", other, 2), Ok(()));
        assert_eq!(t.check("ab12", other, 2), Ok(()));
        t.succeeded(cert);
        assert_eq!(t.check(cert, other, 3), Ok(()));
    }
}
