//! Delivery planning: which local connections an audience reaches.
//!
//! A [`Directory`] holds this node's connections (a handle each, whatever
//! the server delivers through) and, per channel, its local members. It
//! follows the notifications it plans for: a JOIN adds its user to the
//! channel after the others were told, a PART, KICK or QUIT removes its
//! user after. So an audience is always resolved against the channel as the
//! event found it, and users of other nodes are simply not here.

use std::collections::HashSet;
use std::sync::Arc;

use crate::ids::ConnId;
use crate::notify::{Audience, Event, Notification};
use crate::state::Map;

/// This node's connections and the channels they are in.
pub struct Directory<H> {
    conns: Map<ConnId, H>,
    /// Channel key → its local members, in joining order.
    rooms: Map<Arc<str>, Vec<(ConnId, H)>>,
    /// Scratch set for audiences spanning several channels.
    seen: HashSet<ConnId, foldhash::fast::RandomState>,
}

impl<H> Default for Directory<H> {
    fn default() -> Self {
        Directory {
            conns: Map::default(),
            rooms: Map::default(),
            seen: HashSet::default(),
        }
    }
}

impl<H: Clone> Directory<H> {
    /// A local connection, reachable from now on.
    pub fn attach(&mut self, id: ConnId, handle: H) {
        self.conns.insert(id, handle);
    }

    /// Forgets a connection (it must be in no channel any more).
    pub fn detach(&mut self, id: ConnId) -> Option<H> {
        self.conns.remove(&id)
    }

    pub fn get(&self, id: ConnId) -> Option<&H> {
        self.conns.get(&id)
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Every local connection.
    pub fn handles(&self) -> impl Iterator<Item = (ConnId, &H)> {
        self.conns.iter().map(|(id, h)| (*id, h))
    }

    /// Calls `f` for each local connection `n` reaches, each once, then
    /// follows the membership change `n` makes (if any).
    pub fn plan(&mut self, n: &Notification, mut f: impl FnMut(ConnId, &H)) {
        match &n.audience {
            Audience::Channel { key, except } => {
                if let Some(room) = self.rooms.get(&**key) {
                    for (id, h) in room {
                        if Some(*id) != *except {
                            f(*id, h);
                        }
                    }
                }
            }
            Audience::Channels { keys, except } => {
                self.seen.clear();
                for key in keys {
                    let Some(room) = self.rooms.get(key.as_str()) else {
                        continue;
                    };
                    for (id, h) in room {
                        if Some(*id) != *except && self.seen.insert(*id) {
                            f(*id, h);
                        }
                    }
                }
            }
            Audience::User(id) => {
                if let Some(h) = self.conns.get(id) {
                    f(*id, h);
                }
            }
            Audience::Users(ids) => {
                for id in ids {
                    if let Some(h) = self.conns.get(id) {
                        f(*id, h);
                    }
                }
            }
            Audience::Everyone => {
                for (id, h) in &self.conns {
                    f(*id, h);
                }
            }
        }
        self.follow(n);
    }

    /// The membership change an event makes, for the local users it concerns.
    fn follow(&mut self, n: &Notification) {
        match (&n.event, &n.audience) {
            (Event::Join { id, .. }, Audience::Channel { key, .. }) => {
                if let Some(h) = self.conns.get(id) {
                    self.rooms
                        .entry(key.clone())
                        .or_default()
                        .push((*id, h.clone()));
                }
            }
            (Event::Part { id, .. }, Audience::Channel { key, .. })
            | (Event::Kick { target_id: id, .. }, Audience::Channel { key, .. }) => {
                self.leave(key, *id)
            }
            (Event::Quit { id, .. }, Audience::Channels { keys, .. }) => {
                for key in keys {
                    self.leave(key, *id);
                }
            }
            // The channel's room moves with its name (the first copy of a
            // rename moves it; the members' own copies find it moved).
            (
                Event::Rename {
                    old_key, new_key, ..
                },
                _,
            ) if old_key != new_key => {
                if let Some(room) = self.rooms.remove(old_key.as_str()) {
                    self.rooms.insert(Arc::from(new_key.as_str()), room);
                }
            }
            _ => {}
        }
    }

    fn leave(&mut self, key: &str, id: ConnId) {
        if let Some(room) = self.rooms.get_mut(key) {
            room.retain(|(m, _)| *m != id);
            if room.is_empty() {
                self.rooms.remove(key);
            }
        }
    }

    /// The local members of a channel, as delivery sees them (for tests
    /// that compare it with the network's view).
    pub fn room(&self, key: &str) -> impl Iterator<Item = ConnId> + '_ {
        self.rooms.get(key).into_iter().flatten().map(|(id, _)| *id)
    }

    /// Whether delivery's view of channels agrees with the network's, for
    /// the local connections.
    pub fn check(&self, net: &crate::state::Network) -> Result<(), String> {
        for ch in net.channels() {
            let want: Vec<ConnId> = ch
                .members
                .iter()
                .map(|m| m.id)
                .filter(|id| self.conns.contains_key(id))
                .collect();
            let got: Vec<ConnId> = self.room(&ch.key).collect();
            if want != got {
                return Err(format!("{}: members {want:?}, delivery {got:?}", ch.key));
            }
        }
        for key in self.rooms.keys() {
            if net.channels().all(|c| c.key != *key) {
                return Err(format!("delivery keeps the gone channel {key}"));
            }
        }
        Ok(())
    }
}
