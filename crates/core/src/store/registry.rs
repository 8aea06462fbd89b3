//! Who holds each name, network-wide.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Reply, StoreError, lock};
use crate::ids::ConnId;

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

/// The registry of a server that is the whole network: it grants every
/// claim and keeps nothing. On one node the network state is already the
/// one place a name is decided: a nick or a channel is taken when its change
/// applies, under the hub's lock, and a change that finds the name taken
/// fails there (a founder who finds the channel created joins it as a plain
/// member). Keeping a second table of every nick would cost each idle
/// connection about 170 bytes (docs/performance.md).
#[derive(Debug, Default)]
pub struct SoleRegistry;

impl NameRegistry for SoleRegistry {
    fn claim_nick(&self, _key: &str, _owner: ConnId) -> Reply<Result<bool, StoreError>> {
        Reply::Now(Ok(true))
    }

    fn release_nick(&self, _key: &str, _owner: ConnId) -> Reply<Result<(), StoreError>> {
        Reply::Now(Ok(()))
    }

    fn release_owner(&self, _owner: ConnId) -> Reply<Result<(), StoreError>> {
        Reply::Now(Ok(()))
    }

    fn found_channel(&self, _key: &str) -> Reply<Result<bool, StoreError>> {
        Reply::Now(Ok(true))
    }

    fn drop_channel(&self, _key: &str) -> Reply<Result<(), StoreError>> {
        Reply::Now(Ok(()))
    }
}

/// A registry of its own, in memory, as a cluster's shared one behaves:
/// each name held by one owner until released. The simulations use it to
/// exercise the claim and release paths.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::now;

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
}
