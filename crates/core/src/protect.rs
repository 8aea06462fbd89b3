//! Nick protection (`accounts.nick_protection`), shared by both dialects:
//! after each call into a session, a nick that changed (or was just
//! registered) and is not the account the user is logged in to is looked up
//! ([`Effect::AccountInfo`]); if it is a registered account's name, the user
//! is warned and gets a grace, after which a still unidentified holder is
//! renamed to a guest nick. Logging out while holding one's account's nick
//! counts as taking it. Time is passed in; the session keeps the
//! [`Guard`] only while a lookup, a grace or a rename is under way.

use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use crate::config::CoreConfig;
use crate::effect::{Effect, Outcome};
use crate::ids::ConnId;
use crate::names::casefold;
use crate::state::Network;

/// A protected nick being watched.
#[derive(Debug)]
pub struct Guard {
    /// The nick, casefolded.
    key: String,
    /// When the grace ends; `None` while the account is looked up.
    until: Option<Instant>,
}

impl Guard {
    /// Whether the account lookup is under way.
    pub fn looking_up(&self) -> bool {
        self.until.is_none()
    }

    /// When the grace ends, once it runs.
    pub fn deadline(&self) -> Option<Instant> {
        self.until
    }
}

/// How long after a rename to a guest nick that did not happen (the
/// registry refused the claim: someone took that guest nick meanwhile) the
/// next guest nick is tried.
pub const RENAME_RETRY: Duration = Duration::from_secs(1);

/// A mark of the user's nick and account (0: not registered), to tell after
/// a call whether either changed, without keeping a copy: a new nick, or a
/// logout while holding the account's nick, may need protecting.
pub fn mark(net: &Network, id: ConnId) -> u64 {
    let Some(u) = net.user(id).filter(|u| u.registered) else {
        return 0;
    };
    // foldhash, not SipHash: this runs around every command while
    // protection is on (the default), and needs no resistance to attack.
    foldhash::fast::FixedState::default().hash_one((u.nick_key(), u.account())) | 1
}

/// Whether `id` holds the nick `key` without being logged in to it.
fn exposed(net: &Network, id: ConnId, key: &str) -> bool {
    net.user(id).is_some_and(|u| {
        u.registered && u.nick_key() == key && u.account().is_none_or(|a| casefold(a) != key)
    })
}

/// After a call that began with the nick marked `before`: the lookup to run
/// when the nick changed to one the user is not logged in to, or the user
/// logged out of the nick it holds. Replaces (or drops) the guard of the
/// previous nick.
pub fn after(
    cfg: &CoreConfig,
    net: &Network,
    id: ConnId,
    before: u64,
    guard: &mut Option<Guard>,
) -> Option<Effect> {
    if cfg.accounts.nick_protection.is_none() {
        *guard = None;
        return None;
    }
    let now = mark(net, id);
    if now == before || now == 0 {
        return None;
    }
    let u = net.user(id)?;
    let key = u.nick_key().to_string();
    if !exposed(net, id, &key) {
        *guard = None;
        return None;
    }
    // Only the account changed, and this nick is already watched: its
    // grace (or rename) goes on rather than starting again.
    if guard.as_ref().is_some_and(|g| g.key == key) {
        return None;
    }
    let account = u.nick().to_string();
    *guard = Some(Guard { key, until: None });
    Some(Effect::AccountInfo { account })
}

/// The lookup answered: the grace in seconds to warn about when the nick is
/// a registered account's (the guard's grace then runs), else `None` (the
/// guard is dropped).
pub fn found(
    cfg: &CoreConfig,
    net: &Network,
    id: ConnId,
    guard: &mut Option<Guard>,
    outcome: &Outcome,
    now: Instant,
) -> Option<u64> {
    let secs = cfg.accounts.nick_protection;
    let g = guard.take()?;
    match (secs, outcome) {
        (Some(secs), Outcome::Info(Some(_))) if exposed(net, id, &g.key) => {
            *guard = Some(Guard {
                key: g.key,
                until: Some(now + Duration::from_secs(secs)),
            });
            Some(secs)
        }
        _ => None,
    }
}

/// At a deadline: whether the grace is over and the user must be renamed.
/// The guard stays, its deadline [`RENAME_RETRY`] away: should the rename's
/// claim fail, the user still holds the nick, and the next deadline tries
/// another guest nick; once renamed, [`after`] drops it. A guard that no
/// longer applies is dropped. `busy`: the session waits on an effect, so
/// the rename waits a second more.
pub fn expired(
    cfg: &CoreConfig,
    net: &Network,
    id: ConnId,
    guard: &mut Option<Guard>,
    now: Instant,
    busy: bool,
) -> bool {
    let Some(g) = guard.as_mut().filter(|g| g.until.is_some_and(|t| now >= t)) else {
        return false;
    };
    if busy {
        g.until = Some(now + Duration::from_secs(1));
        return false;
    }
    if cfg.accounts.nick_protection.is_none() || !exposed(net, id, &g.key) {
        *guard = None;
        return false;
    }
    g.until = Some(now + RENAME_RETRY);
    true
}

/// The next guest nick number (10000 to 99999) from an xorshift state.
pub fn guest(rng: &mut u32) -> u32 {
    let mut x = (*rng).max(1);
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *rng = x;
    10000 + x % 90000
}

/// A guest nick nobody holds now, `guest<number>` (the connection's id
/// when none is found).
pub fn guest_nick(net: &Network, id: ConnId, rng: &mut u32) -> String {
    for _ in 0..1000 {
        let candidate = format!("guest{}", guest(rng));
        if net.find_nick(&candidate).is_none() {
            return candidate;
        }
    }
    format!("guest{}", id.serial())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::effect::AccountInfo;
    use crate::irc::IrcSession;
    use crate::session::{Cx, Output, Outputs, Session, Step};
    use crate::state::changes::Connect;

    /// One IRC session whose effects the test answers.
    struct One {
        net: Network,
        s: IrcSession,
        id: ConnId,
        start: Instant,
    }

    impl One {
        fn new() -> One {
            let mut cfg = CoreConfig::default();
            cfg.accounts.nick_protection = Some(1);
            let cfg = Arc::new(cfg);
            let mut net = Network::new(cfg.clone(), 0);
            let id = ConnId::new(0, 1);
            let ip = "127.0.0.1".parse().expect("ip");
            let connect = Connect {
                id,
                ip,
                secure: false,
                certfp: None,
            };
            net.apply(connect, &mut Outputs::default(), 0)
                .expect("connect");
            let start = Instant::now();
            let s = IrcSession::new(id, cfg, ip, start);
            One { net, s, id, start }
        }

        /// Runs `f` at `secs` after the start; answers every effect it
        /// waits on with `answer`; returns the replies and the effects.
        fn run(
            &mut self,
            secs: u64,
            f: impl FnOnce(&mut IrcSession, &mut Cx<'_>) -> Step,
            answer: &mut dyn FnMut(&Effect) -> Outcome,
        ) -> (String, Vec<Effect>) {
            let instant = self.start + Duration::from_secs(secs);
            let mut out = Outputs::default();
            let mut effects = Vec::new();
            let mut cx = Cx {
                net: &mut self.net,
                out: &mut out,
                now: secs * 1000,
                instant,
            };
            let mut step = f(&mut self.s, &mut cx);
            while let Step::Wait(e) = step {
                let outcome = answer(&e);
                effects.push(e);
                step = self.s.resume(&mut cx, outcome);
            }
            let text = out
                .items
                .iter()
                .filter_map(|o| match o {
                    Output::Reply(b) => Some(String::from_utf8_lossy(b).into_owned()),
                    _ => None,
                })
                .collect();
            (text, effects)
        }

        fn nick(&self) -> String {
            self.net.user(self.id).expect("user").nick().to_string()
        }
    }

    /// Claims succeed; `alice` is a registered account.
    fn world(e: &Effect) -> Outcome {
        match e {
            Effect::ClaimNick { .. } => Outcome::Claimed(true),
            Effect::AccountInfo { account } if casefold(account) == "alice" => {
                Outcome::Info(Some(Box::new(AccountInfo {
                    name: "alice".into(),
                    created: 0,
                    email: None,
                })))
            }
            _ => Outcome::Info(None),
        }
    }

    /// A guest-nick claim the registry refuses leaves the user on the
    /// protected nick only until the next try, [`RENAME_RETRY`] later,
    /// with another guest nick.
    #[test]
    fn a_refused_guest_claim_is_tried_again() {
        let mut c = One::new();
        let (text, _) = c.run(0, |s, cx| s.line(cx, b"NICK alice"), &mut world);
        assert_eq!(text, "");
        let (text, _) = c.run(0, |s, cx| s.line(cx, b"USER a 0 * :a"), &mut world);
        assert!(text.contains("belongs to a registered account"), "{text}");
        let grace_end = c.s.deadline().expect("a deadline");
        assert_eq!(grace_end, c.start + Duration::from_secs(1));

        // The grace ends; the guest nick is taken by then (elsewhere in a
        // cluster): the claim is refused, and the user keeps alice.
        let refuse = &mut |e: &Effect| match e {
            Effect::ClaimNick { .. } => Outcome::Claimed(false),
            e => world(e),
        };
        let (text, tried) = c.run(1, |s, cx| s.on_deadline(cx), refuse);
        assert!(text.contains("You did not identify in time"), "{text}");
        let [Effect::ClaimNick { key: first, .. }] = &tried[..] else {
            panic!("{tried:?}")
        };
        assert_eq!(c.nick(), "alice");
        assert_eq!(
            c.s.deadline(),
            Some(c.start + Duration::from_secs(1) + RENAME_RETRY)
        );

        // The next try, with another guest nick, succeeds (and the guest
        // nick is looked up in turn, as any new nick).
        let (text, tried) = c.run(2, |s, cx| s.on_deadline(cx), &mut world);
        let [
            Effect::ClaimNick { key: second, .. },
            Effect::AccountInfo { .. },
        ] = &tried[..]
        else {
            panic!("{tried:?}")
        };
        assert_ne!(first, second);
        assert!(text.contains(&format!(" NICK {}\r\n", c.nick())), "{text}");
        assert!(c.nick().starts_with("guest"), "{}", c.nick());
        assert!(c.s.deadline() > Some(c.start + Duration::from_secs(60)));
    }
}
