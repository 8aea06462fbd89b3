//! The users by connection id: a table of boxed records hashed by the id
//! each record carries, so a slot is one pointer (8 bytes) instead of the id
//! beside the pointer (16).

use std::hash::BuildHasher;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use super::User;
use crate::ids::ConnId;

#[derive(Default)]
pub struct UserTable {
    table: HashTable<Box<User>>,
    hasher: foldhash::fast::RandomState,
}

impl UserTable {
    fn hash(&self, id: ConnId) -> u64 {
        self.hasher.hash_one(id)
    }

    pub fn get(&self, id: &ConnId) -> Option<&User> {
        self.table
            .find(self.hash(*id), |u| u.id == *id)
            .map(|u| &**u)
    }

    pub fn get_mut(&mut self, id: &ConnId) -> Option<&mut User> {
        self.table
            .find_mut(self.hash(*id), |u| u.id == *id)
            .map(|u| &mut **u)
    }

    /// Adds `user` under its id, replacing any record with that id.
    pub fn insert(&mut self, user: Box<User>) {
        let hasher = &self.hasher;
        match self.table.entry(
            hasher.hash_one(user.id),
            |u| u.id == user.id,
            |u| hasher.hash_one(u.id),
        ) {
            Entry::Occupied(mut e) => *e.get_mut() = user,
            Entry::Vacant(e) => {
                e.insert(user);
            }
        }
    }

    pub fn remove(&mut self, id: &ConnId) -> Option<Box<User>> {
        let entry = self
            .table
            .find_entry(self.hash(*id), |u| u.id == *id)
            .ok()?;
        Some(entry.remove().0)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn values(&self) -> impl Iterator<Item = &User> + '_ {
        self.table.iter().map(|u| &**u)
    }

    /// Every user with its id, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&ConnId, &User)> + '_ {
        self.table.iter().map(|u| (&u.id, &**u))
    }
}
