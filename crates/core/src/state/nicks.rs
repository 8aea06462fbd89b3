//! The nick index: casefolded nick → user, storing only user ids.
//!
//! A map from the key string would keep a second copy of every nick (an
//! allocation) and a 24-byte slot per user; here a slot is the 8-byte id and
//! the key is read from the user record itself, which the hub keeps in step.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::users::UserTable;
use crate::ids::ConnId;

#[derive(Default)]
pub struct NickIndex {
    table: HashTable<ConnId>,
    hasher: foldhash::fast::RandomState,
}

impl NickIndex {
    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The user whose nick key is `key`.
    pub fn get(&self, key: &str, users: &UserTable) -> Option<ConnId> {
        self.table
            .find(self.hash(key), |id| {
                users.get(id).is_some_and(|u| u.nick_key() == key)
            })
            .copied()
    }

    /// Indexes `id` under `key`, which must be its user's nick key in `users`
    /// now (as for every id already indexed: a resize rehashes them all).
    pub fn insert(&mut self, key: &str, id: ConnId, users: &UserTable) {
        let hasher = &self.hasher;
        self.table
            .insert_unique(self.hasher.hash_one(key), id, |id| {
                hasher.hash_one(users.get(id).map_or("", |u| u.nick_key()))
            });
    }

    /// Removes `id` from under `key`; false if it was not there.
    pub fn remove(&mut self, key: &str, id: ConnId) -> bool {
        match self.table.find_entry(self.hash(key), |&x| x == id) {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Every indexed id, in no order.
    pub fn ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.table.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }
}
