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
    /// The conversation: a casefolded channel name or nick.
    pub target: String,
    pub msgid: MsgId,
    pub time: Millis,
    pub event: Event,
}

/// Which part of a conversation to read (times in milliseconds, bounds
/// exclusive, at most `limit` events, oldest first in the answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    Latest {
        limit: usize,
    },
    Before {
        time: Millis,
        limit: usize,
    },
    After {
        time: Millis,
        limit: usize,
    },
    Between {
        from: Millis,
        to: Millis,
        limit: usize,
    },
}

/// The conversations' past.
pub trait HistoryStore: Send + Sync {
    /// Adds events, in order.
    fn append(&self, events: Vec<Stored>) -> Reply<Result<(), StoreError>>;
    fn read(&self, target: &str, range: Range) -> Reply<Result<Vec<Stored>, StoreError>>;
}

/// History in memory, the last `per_target` events of each conversation.
#[derive(Debug)]
pub struct MemoryHistory {
    per_target: usize,
    events: Mutex<HashMap<String, VecDeque<Stored>>>,
}

impl MemoryHistory {
    pub fn new(per_target: usize) -> MemoryHistory {
        MemoryHistory {
            per_target,
            events: Mutex::default(),
        }
    }
}

impl HistoryStore for MemoryHistory {
    fn append(&self, events: Vec<Stored>) -> Reply<Result<(), StoreError>> {
        let mut all = lock(&self.events);
        for e in events {
            let q = all.entry(e.target.clone()).or_default();
            if q.len() >= self.per_target {
                q.pop_front();
            }
            q.push_back(e);
        }
        Reply::Now(Ok(()))
    }

    fn read(&self, target: &str, range: Range) -> Reply<Result<Vec<Stored>, StoreError>> {
        let all = lock(&self.events);
        let Some(q) = all.get(target) else {
            return Reply::Now(Ok(Vec::new()));
        };
        let pick = |keep: &dyn Fn(&Stored) -> bool, limit: usize, newest: bool| {
            let mut v: Vec<Stored> = if newest {
                q.iter()
                    .rev()
                    .filter(|e| keep(e))
                    .take(limit)
                    .cloned()
                    .collect()
            } else {
                q.iter().filter(|e| keep(e)).take(limit).cloned().collect()
            };
            if newest {
                v.reverse();
            }
            v
        };
        Reply::Now(Ok(match range {
            Range::Latest { limit } => pick(&|_| true, limit, true),
            Range::Before { time, limit } => pick(&|e| e.time < time, limit, true),
            Range::After { time, limit } => pick(&|e| e.time > time, limit, false),
            Range::Between { from, to, limit } => {
                let (lo, hi) = (from.min(to), from.max(to));
                pick(&|e| e.time > lo && e.time < hi, limit, from > to)
            }
        }))
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
        let h = MemoryHistory::new(5);
        let ev = |t: u64| Stored {
            target: "#a".into(),
            msgid: MsgId::new(0, t),
            time: t,
            event: Event::Shutdown {
                text: t.to_string(),
            },
        };
        now(h.append((1..=7).map(ev).collect())).unwrap();
        let times = |r: Range| -> Vec<u64> {
            now(h.read("#a", r))
                .unwrap()
                .iter()
                .map(|e| e.time)
                .collect()
        };
        assert_eq!(
            times(Range::Latest { limit: 10 }),
            [3, 4, 5, 6, 7],
            "five kept"
        );
        assert_eq!(times(Range::Latest { limit: 2 }), [6, 7]);
        assert_eq!(times(Range::Before { time: 6, limit: 2 }), [4, 5]);
        assert_eq!(times(Range::After { time: 4, limit: 2 }), [5, 6]);
        let between = |from, to| times(Range::Between { from, to, limit: 2 });
        assert_eq!(between(3, 7), [4, 5]);
        assert_eq!(between(7, 3), [5, 6], "backwards: the newest");
        assert!(
            now(h.read("#none", Range::Latest { limit: 3 }))
                .unwrap()
                .is_empty()
        );
    }
}
