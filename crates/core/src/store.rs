//! The seams to what lives outside a node: who holds a name, the accounts,
//! the history. Each is a trait whose answers may come at once ([`Reply::Now`],
//! the in-memory implementations here) or later ([`Reply::Later`], a future
//! the server awaits: a database, a broker). The core never calls them: it
//! asks through [`crate::effect::Effect`]s, which the server runs against
//! these seams.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};

use crate::ids::{ConnId, MsgId};
use crate::notify::{Event, Millis};

/// An answer now, or a future that gives it.
pub enum Reply<T> {
    Now(T),
    Later(Pin<Box<dyn Future<Output = T> + Send>>),
}

impl<T> std::fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reply::Now(_) => "Reply::Now",
            Reply::Later(_) => "Reply::Later",
        })
    }
}

/// A store could not answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Exists(String),
    #[error("{0} does not exist")]
    Missing(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Who holds each nick and which channels exist, network-wide: the one
/// place a name is decided, so that two users (on any node) never get the
/// same nick and a channel has one founder.
pub trait NameRegistry: Send + Sync {
    /// Claims the casefolded nick `key` for `owner`: true when it is now
    /// `owner`'s (also when it already was).
    fn claim_nick(&self, key: &str, owner: ConnId) -> Reply<Result<bool, StoreError>>;
    /// Gives `key` back, if `owner` holds it.
    fn release_nick(&self, key: &str, owner: ConnId) -> Reply<Result<(), StoreError>>;
    /// Gives back everything `owner` holds (its connection ended).
    fn release_owner(&self, owner: ConnId) -> Reply<Result<(), StoreError>>;
    /// Founds the channel with casefolded key `key`: true for the founder,
    /// false when it exists.
    fn found_channel(&self, key: &str) -> Reply<Result<bool, StoreError>>;
    /// The channel emptied: its name is free again.
    fn drop_channel(&self, key: &str) -> Reply<Result<(), StoreError>>;
}

/// The registry of one node alone.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    names: Mutex<Names>,
}

#[derive(Debug, Default)]
struct Names {
    nicks: HashMap<String, ConnId>,
    /// The nicks each owner holds: one, or two while it changes nick (the
    /// old one is released once the change applied).
    owners: HashMap<ConnId, Vec<String>>,
    channels: std::collections::HashSet<String>,
}

impl Names {
    fn release(&mut self, key: &str, owner: ConnId) {
        if self.nicks.get(key) == Some(&owner) {
            self.nicks.remove(key);
        }
        if let Some(held) = self.owners.get_mut(&owner) {
            held.retain(|k| k != key);
            if held.is_empty() {
                self.owners.remove(&owner);
            }
        }
    }
}

impl NameRegistry for MemoryRegistry {
    fn claim_nick(&self, key: &str, owner: ConnId) -> Reply<Result<bool, StoreError>> {
        let mut n = lock(&self.names);
        let ok = match n.nicks.get(key) {
            Some(o) => *o == owner,
            None => {
                n.nicks.insert(key.to_string(), owner);
                n.owners.entry(owner).or_default().push(key.to_string());
                true
            }
        };
        Reply::Now(Ok(ok))
    }

    fn release_nick(&self, key: &str, owner: ConnId) -> Reply<Result<(), StoreError>> {
        lock(&self.names).release(key, owner);
        Reply::Now(Ok(()))
    }

    fn release_owner(&self, owner: ConnId) -> Reply<Result<(), StoreError>> {
        let mut n = lock(&self.names);
        for key in n.owners.remove(&owner).unwrap_or_default() {
            n.release(&key, owner);
        }
        Reply::Now(Ok(()))
    }

    fn found_channel(&self, key: &str) -> Reply<Result<bool, StoreError>> {
        Reply::Now(Ok(lock(&self.names).channels.insert(key.to_string())))
    }

    fn drop_channel(&self, key: &str) -> Reply<Result<(), StoreError>> {
        lock(&self.names).channels.remove(key);
        Reply::Now(Ok(()))
    }
}

/// A registered account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The name as registered.
    pub name: String,
    /// A password hash in PHC format (argon2), never the password.
    pub password_hash: String,
    pub email: Option<String>,
    /// SHA-256 fingerprints of TLS client certificates that log in as it.
    pub certfps: Vec<String>,
    pub created: Millis,
}

/// The accounts, keyed by casefolded name.
pub trait AccountStore: Send + Sync {
    fn get(&self, key: &str) -> Reply<Result<Option<Account>, StoreError>>;
    /// Adds an account; `Exists` when the name is taken.
    fn create(&self, account: Account) -> Reply<Result<(), StoreError>>;
    /// Replaces an account's record (password change, certificates).
    fn update(&self, account: Account) -> Reply<Result<(), StoreError>>;
    fn delete(&self, key: &str) -> Reply<Result<(), StoreError>>;
    /// Every account, by name.
    fn list(&self) -> Reply<Result<Vec<Account>, StoreError>>;
}

/// Accounts in memory: lost at exit.
#[derive(Debug, Default)]
pub struct MemoryAccounts {
    accounts: Mutex<std::collections::BTreeMap<String, Account>>,
}

impl AccountStore for MemoryAccounts {
    fn get(&self, key: &str) -> Reply<Result<Option<Account>, StoreError>> {
        Reply::Now(Ok(lock(&self.accounts).get(key).cloned()))
    }

    fn create(&self, account: Account) -> Reply<Result<(), StoreError>> {
        let key = crate::names::casefold(&account.name);
        let mut a = lock(&self.accounts);
        Reply::Now(match a.entry(key) {
            std::collections::btree_map::Entry::Occupied(_) => {
                Err(StoreError::Exists(account.name))
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(account);
                Ok(())
            }
        })
    }

    fn update(&self, account: Account) -> Reply<Result<(), StoreError>> {
        let key = crate::names::casefold(&account.name);
        let mut a = lock(&self.accounts);
        Reply::Now(match a.get_mut(&key) {
            Some(slot) => {
                *slot = account;
                Ok(())
            }
            None => Err(StoreError::Missing(account.name)),
        })
    }

    fn delete(&self, key: &str) -> Reply<Result<(), StoreError>> {
        Reply::Now(match lock(&self.accounts).remove(key) {
            Some(_) => Ok(()),
            None => Err(StoreError::Missing(key.to_string())),
        })
    }

    fn list(&self) -> Reply<Result<Vec<Account>, StoreError>> {
        Reply::Now(Ok(lock(&self.accounts).values().cloned().collect()))
    }
}

/// One stored event of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The conversation (see [`history_key`]).
    pub target: String,
    pub msgid: MsgId,
    pub time: Millis,
    pub event: Event,
}

/// The history key of a channel: its serial, which a rename keeps and a
/// later channel of the same name does not share (so history neither splits
/// at a rename nor passes to strangers who found the name again).
pub fn history_key(channel_serial: u64) -> String {
    format!("channel:{channel_serial}")
}

/// A point of a conversation: a time, or a message (its own time, and before
/// or after the messages of the same millisecond by its place).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    Time(Millis),
    Msgid(MsgId),
}

/// Which part of a conversation to read (bounds exclusive, at most `limit`
/// events, oldest first in the answer); the `CHATHISTORY` subcommands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// The latest events, after `after` if given.
    Latest { after: Option<Point>, limit: usize },
    /// The latest events before `point`.
    Before { point: Point, limit: usize },
    /// The first events after `point`.
    After { point: Point, limit: usize },
    /// Events on both sides of `point` (the message itself included).
    Around { point: Point, limit: usize },
    /// Events between the two, counted from `from` (backwards when `from`
    /// is the later one).
    Between {
        from: Point,
        to: Point,
        limit: usize,
    },
}

/// The conversations' past.
pub trait HistoryStore: Send + Sync {
    /// Adds events, in order; a conversation keeps its last `keep`.
    fn append(&self, events: Vec<Stored>, keep: usize) -> Reply<Result<(), StoreError>>;
    fn read(&self, target: &str, range: Range) -> Reply<Result<Vec<Stored>, StoreError>>;
    /// Removes one message (it was redacted).
    fn remove(&self, target: &str, msgid: MsgId) -> Reply<Result<(), StoreError>>;
    /// Forgets a conversation (its channel is gone).
    fn forget(&self, target: &str) -> Reply<Result<(), StoreError>>;
    /// Of `targets`, those whose latest event is strictly between the two
    /// times, with that time: the `limit` first from `from` (backwards when
    /// `from` is the later one).
    fn latest(
        &self,
        targets: Vec<String>,
        from: Millis,
        to: Millis,
        limit: usize,
    ) -> Reply<Result<Vec<(String, Millis)>, StoreError>>;
}

/// History in memory, lost at exit.
#[derive(Debug, Default)]
pub struct MemoryHistory {
    events: Mutex<HashMap<String, VecDeque<Stored>>>,
}

/// Where `p` falls in `q` (sorted by time, then by arrival): the events
/// strictly before it are `q[..lo]`, those strictly after it `q[hi..]`. An
/// unknown msgid is `None`.
fn split(q: &VecDeque<Stored>, p: Point) -> Option<(usize, usize)> {
    match p {
        Point::Time(t) => Some((
            q.partition_point(|e| e.time < t),
            q.partition_point(|e| e.time <= t),
        )),
        Point::Msgid(id) => q.iter().position(|e| e.msgid == id).map(|i| (i, i + 1)),
    }
}

impl HistoryStore for MemoryHistory {
    fn append(&self, events: Vec<Stored>, keep: usize) -> Reply<Result<(), StoreError>> {
        let mut all = lock(&self.events);
        for e in events {
            let q = all.entry(e.target.clone()).or_default();
            q.push_back(e);
            while q.len() > keep {
                q.pop_front();
            }
        }
        all.retain(|_, q| !q.is_empty());
        Reply::Now(Ok(()))
    }

    fn read(&self, target: &str, range: Range) -> Reply<Result<Vec<Stored>, StoreError>> {
        let all = lock(&self.events);
        let Some(q) = all.get(target) else {
            return Reply::Now(Ok(Vec::new()));
        };
        let n = q.len();
        // The indices to return, as a range of `q`.
        let span = |lo: usize, hi: usize| lo..hi.max(lo);
        let r = match range {
            Range::Latest { after, limit } => {
                let lo = after.map_or(Some(0), |p| split(q, p).map(|(_, hi)| hi));
                lo.map(|lo| span(n.saturating_sub(limit).max(lo), n))
            }
            Range::Before { point, limit } => {
                split(q, point).map(|(lo, _)| span(lo.saturating_sub(limit), lo))
            }
            Range::After { point, limit } => {
                split(q, point).map(|(_, hi)| span(hi, hi.saturating_add(limit).min(n)))
            }
            Range::Around { point, limit } => split(q, point).map(|(lo, hi)| {
                // As many before as after, the point's own message between.
                let before = limit / 2;
                let start = lo.saturating_sub(before);
                span(start, start.saturating_add(limit).min(n).max(hi.min(n)))
            }),
            Range::Between { from, to, limit } => match (split(q, from), split(q, to)) {
                (Some((_, fhi)), Some((tlo, _))) if fhi <= tlo => {
                    Some(span(fhi, fhi.saturating_add(limit).min(tlo)))
                }
                (Some((flo, _)), Some((_, thi))) if thi <= flo => {
                    Some(span(flo.saturating_sub(limit).max(thi), flo))
                }
                (Some(_), Some(_)) => Some(0..0),
                _ => None,
            },
        };
        let events = r.map_or_else(Vec::new, |r| q.range(r).cloned().collect());
        Reply::Now(Ok(events))
    }

    fn remove(&self, target: &str, msgid: MsgId) -> Reply<Result<(), StoreError>> {
        let mut all = lock(&self.events);
        if let Some(q) = all.get_mut(target) {
            q.retain(|e| e.msgid != msgid);
            if q.is_empty() {
                all.remove(target);
            }
        }
        Reply::Now(Ok(()))
    }

    fn forget(&self, target: &str) -> Reply<Result<(), StoreError>> {
        lock(&self.events).remove(target);
        Reply::Now(Ok(()))
    }

    fn latest(
        &self,
        targets: Vec<String>,
        from: Millis,
        to: Millis,
        limit: usize,
    ) -> Reply<Result<Vec<(String, Millis)>, StoreError>> {
        let all = lock(&self.events);
        let (lo, hi) = (from.min(to), from.max(to));
        let mut found: Vec<(String, Millis)> = targets
            .into_iter()
            .filter_map(|t| {
                let at = all.get(&t)?.back()?.time;
                (at > lo && at < hi).then_some((t, at))
            })
            .collect();
        found.sort_by_key(|(_, at)| *at);
        if from > to {
            found.reverse();
        }
        found.truncate(limit);
        Reply::Now(Ok(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now<T>(r: Reply<T>) -> T {
        match r {
            Reply::Now(t) => t,
            Reply::Later(_) => panic!("the in-memory stores answer at once"),
        }
    }

    #[test]
    fn a_nick_has_one_holder_until_released() {
        let r = MemoryRegistry::default();
        let (a, b) = (ConnId::new(0, 1), ConnId::new(0, 2));
        assert_eq!(now(r.claim_nick("bob", a)), Ok(true));
        assert_eq!(now(r.claim_nick("bob", a)), Ok(true), "its own");
        assert_eq!(now(r.claim_nick("bob", b)), Ok(false));
        now(r.release_nick("bob", b)).unwrap();
        assert_eq!(now(r.claim_nick("bob", b)), Ok(false), "not b's to release");
        now(r.release_nick("bob", a)).unwrap();
        assert_eq!(now(r.claim_nick("bob", b)), Ok(true));
        now(r.release_owner(b)).unwrap();
        assert_eq!(now(r.claim_nick("bob", a)), Ok(true));
    }

    #[test]
    fn a_channel_has_one_founder_until_dropped() {
        let r = MemoryRegistry::default();
        assert_eq!(now(r.found_channel("#a")), Ok(true));
        assert_eq!(now(r.found_channel("#a")), Ok(false));
        now(r.drop_channel("#a")).unwrap();
        assert_eq!(now(r.found_channel("#a")), Ok(true));
    }

    #[test]
    fn accounts_are_unique_by_folded_name() {
        let s = MemoryAccounts::default();
        let acct = |name: &str| Account {
            name: name.into(),
            password_hash: "$argon2id$x".into(),
            email: None,
            certfps: Vec::new(),
            created: 0,
        };
        now(s.create(acct("Alice"))).unwrap();
        assert_eq!(
            now(s.create(acct("ALICE"))),
            Err(StoreError::Exists("ALICE".into()))
        );
        assert_eq!(now(s.get("alice")).unwrap().unwrap().name, "Alice");
        let mut changed = acct("alice");
        changed.email = Some("a@example.org".into());
        now(s.update(changed)).unwrap();
        assert_eq!(now(s.list()).unwrap().len(), 1);
        now(s.delete("alice")).unwrap();
        assert_eq!(now(s.get("alice")), Ok(None));
        assert!(now(s.delete("alice")).is_err());
    }

    #[test]
    fn history_ranges_are_exclusive_and_bounded() {
        let h = MemoryHistory::default();
        // Events 1..=7 at times 10..=70; 4 and 5 share time 40.
        let ev = |id: u64| Stored {
            target: "#a".into(),
            msgid: MsgId::new(0, id),
            time: if id == 5 { 40 } else { id * 10 },
            event: Event::Shutdown {
                text: id.to_string(),
            },
        };
        now(h.append((1..=7).map(ev).collect(), 6)).unwrap();
        let ids = |r: Range| -> Vec<u64> {
            now(h.read("#a", r))
                .unwrap()
                .iter()
                .map(|e| e.msgid.serial())
                .collect()
        };
        let (t, m) = (Point::Time, |id| Point::Msgid(MsgId::new(0, id)));
        assert_eq!(
            ids(Range::Latest {
                after: None,
                limit: 10
            }),
            [2, 3, 4, 5, 6, 7],
            "six kept"
        );
        assert_eq!(
            ids(Range::Latest {
                after: None,
                limit: 2
            }),
            [6, 7]
        );
        assert_eq!(
            ids(Range::Latest {
                after: Some(m(5)),
                limit: 9
            }),
            [6, 7]
        );
        assert_eq!(
            ids(Range::Latest {
                after: Some(t(40)),
                limit: 9
            }),
            [6, 7]
        );
        assert_eq!(
            ids(Range::Before {
                point: t(60),
                limit: 2
            }),
            [4, 5]
        );
        assert_eq!(
            ids(Range::Before {
                point: m(5),
                limit: 2
            }),
            [3, 4],
            "by place"
        );
        assert_eq!(
            ids(Range::Before {
                point: t(40),
                limit: 9
            }),
            [2, 3]
        );
        assert_eq!(
            ids(Range::After {
                point: t(40),
                limit: 2
            }),
            [6, 7]
        );
        assert_eq!(
            ids(Range::After {
                point: m(4),
                limit: 1
            }),
            [5]
        );
        assert_eq!(
            ids(Range::Around {
                point: m(4),
                limit: 3
            }),
            [3, 4, 5]
        );
        assert_eq!(
            ids(Range::Around {
                point: t(70),
                limit: 4
            }),
            [5, 6, 7]
        );
        assert_eq!(
            ids(Range::Between {
                from: t(20),
                to: t(70),
                limit: 2
            }),
            [3, 4]
        );
        assert_eq!(
            ids(Range::Between {
                from: t(70),
                to: t(20),
                limit: 2
            }),
            [5, 6],
            "backwards: the newest"
        );
        assert_eq!(
            ids(Range::Between {
                from: m(3),
                to: m(6),
                limit: 9
            }),
            [4, 5]
        );
        assert!(
            ids(Range::Between {
                from: m(3),
                to: m(3),
                limit: 9
            })
            .is_empty()
        );
        // An unknown message or conversation is nothing.
        assert!(
            ids(Range::Before {
                point: m(1),
                limit: 9
            })
            .is_empty(),
            "1 is gone"
        );
        assert!(
            now(h.read(
                "#none",
                Range::Latest {
                    after: None,
                    limit: 3
                }
            ))
            .unwrap()
            .is_empty()
        );
        // Removing one message, then the conversation.
        now(h.remove("#a", MsgId::new(0, 6))).unwrap();
        assert_eq!(
            ids(Range::Latest {
                after: None,
                limit: 2
            }),
            [5, 7]
        );
        let latest = now(h.latest(vec!["#a".into(), "#none".into()], 0, 100, 5)).unwrap();
        assert_eq!(latest, [("#a".to_string(), 70)]);
        assert!(
            now(h.latest(vec!["#a".into()], 0, 70, 5))
                .unwrap()
                .is_empty(),
            "exclusive"
        );
        now(h.forget("#a")).unwrap();
        assert!(
            ids(Range::Latest {
                after: None,
                limit: 9
            })
            .is_empty()
        );
    }
}
