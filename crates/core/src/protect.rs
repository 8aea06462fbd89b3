//! Nick protection (`accounts.nick_protection`), shared by both dialects:
//! after each call into a session, a nick that changed (or was just
//! registered) and is not the account the user is logged in to is looked up
//! ([`Effect::AccountInfo`]); if it is a registered account's name, the user
//! is warned and gets a grace, after which a still unidentified holder is
//! renamed to a guest nick. Time is passed in; the session keeps the
//! [`Guard`] only while a lookup or a grace is under way.

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

/// A mark of the user's nick (0: not registered), to tell after a call
/// whether it changed, without keeping a copy.
pub fn mark(net: &Network, id: ConnId) -> u64 {
    let Some(u) = net.user(id).filter(|u| u.registered) else {
        return 0;
    };
    // foldhash, not SipHash: this runs around every command while
    // protection is on (the default), and needs no resistance to attack.
    foldhash::fast::FixedState::default().hash_one(u.nick_key()) | 1
}

/// Whether `id` holds the nick `key` without being logged in to it.
fn exposed(net: &Network, id: ConnId, key: &str) -> bool {
    net.user(id).is_some_and(|u| {
        u.registered && u.nick_key() == key && u.account().is_none_or(|a| casefold(a) != key)
    })
}

/// After a call that began with the nick marked `before`: the lookup to run
/// when the nick changed to one the user is not logged in to. Replaces (or
/// drops) the guard of the previous nick.
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

/// At a deadline: whether the grace is over and the user must be renamed
/// (the guard is then dropped; also when it no longer applies). `busy`: the
/// session waits on an effect, so the rename waits a second more.
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
    let g = guard.take().expect("a guard");
    cfg.accounts.nick_protection.is_some() && exposed(net, id, &g.key)
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
