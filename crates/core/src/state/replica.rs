//! The network copied between nodes: facts about users and channels, the
//! notifications that happened, and node failures, as values a cluster
//! carries in one ordered log; [`Network::replay`] applies one received
//! from another node, [`Network::snapshot`] and [`Network::restore`] bring a
//! node that starts late up to date.
//!
//! A user belongs to the node it is connected to: only that node changes
//! it, and others take its [`UserFact`] as it is sent. A channel has members
//! on many nodes: its membership follows the JOIN, PART, KICK and QUIT
//! notifications, and its modes, lists, topic and member ranks follow the
//! last [`ChannelFact`] in the log. Every node, the origin included, applies
//! channel facts in the log's order, so every node ends up with the state
//! of the last one even when two nodes changed a channel at once.

use std::net::IpAddr;

use thin_vec::ThinVec;

use super::message::{dm_keys, worth_keeping};
use super::user::Names;
use super::{ChanModes, Channel, ListEntry, Member, Network, Topic, User, UserModes};
use crate::effect::Effect;
use crate::ids::ConnId;
use crate::names::{ChannelName, Nickname, casefold};
use crate::notify::{Audience, Event, Millis, MsgKind, Notification};
use crate::session::Outputs;
use crate::store::history_key;

/// A registered user as every node sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserFact {
    pub id: ConnId,
    pub nick: String,
    pub user: String,
    pub realname: String,
    pub ip: IpAddr,
    pub modes: UserModes,
    pub signon: u32,
    pub away: Option<String>,
    pub account: Option<String>,
    /// Its metadata (draft/metadata-3), by key.
    #[serde(default)]
    pub metadata: Vec<(String, String)>,
}

impl UserFact {
    /// Whether this is what `u` shows others now.
    fn describes(&self, u: &User) -> bool {
        self.nick == u.nick()
            && self.user == u.user()
            && self.realname == u.realname()
            && self.ip == u.ip
            && self.modes == u.modes
            && self.signon == u.signon
            && self.away.as_deref() == u.away()
            && self.account.as_deref() == u.account()
            && u.metadata()
                .iter()
                .eq(self.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// A member's rank in a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rank {
    pub id: ConnId,
    pub op: bool,
    pub voice: bool,
}

/// A channel's settings and its members' ranks, in joining order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChannelFact {
    pub name: String,
    pub created: u64,
    pub topic: Option<Topic>,
    pub modes: ChanModes,
    pub bans: Vec<ListEntry>,
    pub excepts: Vec<ListEntry>,
    pub invex: Vec<ListEntry>,
    pub ranks: Vec<Rank>,
    /// Its metadata (draft/metadata-3), by key.
    #[serde(default)]
    pub metadata: Vec<(String, String)>,
}

/// One entry of the log a cluster shares.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Record {
    /// A user of the origin node registered or changed.
    User(UserFact),
    /// Something happened on the origin node.
    Note(Notification),
    /// A channel's state after the origin's change.
    Channel(ChannelFact),
    /// A private message, for the other nodes' history only: the
    /// recipient's node had it straight ([`direct_to`]), and keeps it as the
    /// origin does; the others keep it for either side logging in there.
    Kept(Notification),
    /// An account read a conversation up to a time (draft/read-marker):
    /// every node moves the marker and tells the account's connections.
    Marker {
        account: String,
        target: String,
        at: Millis,
    },
    /// A node stopped (its lease expired, or it started again): its users
    /// whose connection serial is below `before` quit.
    NodeDown {
        node: u16,
        before: u64,
        reason: String,
    },
}

/// The shared part of a network, for a node that joins late.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub users: Vec<UserFact>,
    pub channels: Vec<ChannelFact>,
    /// The accounts' read markers.
    #[serde(default)]
    pub markers: Vec<crate::store::Marker>,
}

/// What a node has told the others of its own users: their last facts.
#[derive(Debug, Default)]
pub struct Told {
    facts: super::Map<ConnId, UserFact>,
}

/// The node a notification of node `local` goes straight to, rather than
/// through the log: a private message to a user of that node, which no
/// other node shows or keeps.
pub fn direct_to(n: &Notification, local: u16) -> Option<u16> {
    match (&n.event, &n.audience) {
        (
            Event::Message {
                to_channel: false, ..
            },
            Audience::User(id),
        ) if id.node() != local => Some(id.node()),
        _ => None,
    }
}

/// Whether other nodes must learn of `n`, which happened on node `local`
/// (through the log).
fn shared(n: &Notification, local: u16, told: &Told) -> bool {
    if direct_to(n, local).is_some() {
        return false;
    }
    match &n.event {
        Event::Shutdown { .. } | Event::ReadMarker { .. } | Event::Monitor { .. } => return false,
        // A user the others never saw (it had not registered) leaves
        // quietly.
        Event::Quit { id, .. } if id.node() == local => return told.facts.contains_key(id),
        _ => {}
    }
    match &n.audience {
        Audience::Channel { .. } | Audience::Channels { .. } | Audience::Everyone => true,
        Audience::User(id) => id.node() != local,
        Audience::Users(ids) => ids.iter().any(|id| id.node() != local),
    }
}

impl Network {
    /// What other nodes must learn of a call on node `local` that served
    /// `me` and produced `items`: the caller's fact if it changed, the
    /// notifications others may see, then the facts of the channels they
    /// changed. `told` follows what was sent.
    pub fn records_for(
        &self,
        local: u16,
        me: Option<ConnId>,
        told: &mut Told,
        items: &[crate::session::Output],
    ) -> Vec<Record> {
        let mut records = Vec::new();
        // Compared in place: this runs after every command, messages
        // included, and a user's public state seldom changes.
        if let Some(id) = me
            && let Some(u) = self.users.get(&id).filter(|u| u.registered)
            && !told.facts.get(&id).is_some_and(|f| f.describes(u))
            && let Some(f) = self.user_fact(id)
        {
            told.facts.insert(id, f.clone());
            records.push(Record::User(f));
        }
        let mut channels: Vec<&str> = Vec::new();
        for item in items {
            let crate::session::Output::Note(n) = item else {
                continue;
            };
            if let Event::ReadMarker { target, at, .. } = &n.event
                && let Some(account) = me
                    .and_then(|id| self.users.get(&id))
                    .and_then(|u| u.account())
            {
                records.push(Record::Marker {
                    account: account.to_string(),
                    target: target.clone(),
                    at: *at,
                });
            }
            if let Event::Metadata { target, .. } = &n.event
                && let Some(ch) = self.channel(target)
                && !channels.contains(&&*ch.key)
            {
                channels.push(&ch.key);
            }
            if !shared(n, local, told) {
                continue;
            }
            if let Event::Quit { id, .. } = &n.event {
                told.facts.remove(id);
            }
            if let (
                Event::Join { .. } | Event::Mode { .. } | Event::Topic { .. } | Event::Kick { .. },
                Audience::Channel { key, .. },
            ) = (&n.event, &n.audience)
                && !channels.contains(&&**key)
            {
                channels.push(key);
            }
            records.push(Record::Note(n.clone()));
        }
        records.extend(
            channels
                .into_iter()
                .filter_map(|k| self.channel_fact(k))
                .map(Record::Channel),
        );
        records
    }

    /// The fact about user `id`, if it is registered.
    pub fn user_fact(&self, id: ConnId) -> Option<UserFact> {
        let u = self.users.get(&id).filter(|u| u.registered)?;
        Some(UserFact {
            id,
            nick: u.nick().to_string(),
            user: u.user().to_string(),
            realname: u.realname().to_string(),
            ip: u.ip,
            modes: u.modes,
            signon: u.signon,
            away: u.away().map(str::to_string),
            account: u.account().map(str::to_string),
            metadata: u.metadata().pairs(),
        })
    }

    /// The fact about the channel with key `key`, if it exists.
    pub fn channel_fact(&self, key: &str) -> Option<ChannelFact> {
        let ch = self.channels.get(key)?;
        Some(ChannelFact {
            name: ch.name.to_string(),
            created: ch.created,
            topic: ch.topic.clone(),
            modes: ch.modes.clone(),
            bans: ch.bans.clone(),
            excepts: ch.excepts.clone(),
            invex: ch.invex.clone(),
            ranks: ch
                .members
                .iter()
                .map(|m| Rank {
                    id: m.id,
                    op: m.op,
                    voice: m.voice,
                })
                .collect(),
            metadata: ch.metadata.pairs(),
        })
    }

    /// Every registered user and every channel, in id and name order.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot {
            users: self
                .users
                .values()
                .filter_map(|u| self.user_fact(u.id))
                .collect(),
            channels: self
                .channels
                .keys()
                .filter_map(|k| self.channel_fact(k))
                .collect(),
            markers: self.account_markers(),
        };
        s.users.sort_by_key(|u| u.id);
        s.channels.sort_by(|a, b| a.name.cmp(&b.name));
        s
    }

    /// Takes the users and channels of `snap` (a network that has no users
    /// of its own yet).
    pub fn restore(&mut self, snap: &Snapshot, out: &mut Outputs) {
        for f in &snap.users {
            self.upsert_user(f, out);
        }
        for f in &snap.channels {
            let Some(key) = self.found_remote(&f.name, f.created) else {
                continue;
            };
            for r in &f.ranks {
                self.add_member(&key, r.id);
            }
            self.set_channel(f, out);
        }
        for m in &snap.markers {
            self.replay_marker(&m.account, &m.target, m.at, out);
        }
    }

    /// What the other nodes keep of `n` without showing it: a private
    /// message, which goes straight to its recipient's node (or stays on
    /// this one) but which every node's history keeps, for either side
    /// logging in anywhere. None when no side has an account (nothing is
    /// kept then) or history is off.
    pub fn kept_elsewhere(&self, n: &Notification) -> Option<Record> {
        let (
            Event::Message {
                from,
                to_channel: false,
                ..
            },
            Audience::User(to),
        ) = (&n.event, &n.audience)
        else {
            return None;
        };
        let has_account = |u: Option<&User>| u.is_some_and(|u| u.account().is_some());
        (self.cfg.limits.history > 0
            && (has_account(self.users.get(to)) || has_account(self.find_nick(from.nick()))))
        .then(|| Record::Kept(n.clone()))
    }

    /// Applies `rec` on this node, number `local`: the state changes, and
    /// what local users must see is left in `out`. A record this node
    /// logged itself (`own`) changed the state when it happened and its
    /// notifications are delivered from there; its channel facts apply
    /// again, in the log's order.
    pub fn replay(&mut self, rec: &Record, own: bool, local: u16, out: &mut Outputs, now: Millis) {
        match rec {
            Record::User(f) if !own => self.upsert_user(f, out),
            Record::Note(n) if !own => self.replay_note(n, out),
            // The recipient's node had it straight, and kept it then.
            Record::Kept(n)
                if !own && !matches!(n.audience, Audience::User(id) if id.node() == local) =>
            {
                self.replay_message(&n.event, out)
            }
            Record::Kept(_) => {}
            Record::Marker {
                account,
                target,
                at,
            } if !own => self.replay_marker(account, target, *at, out),
            Record::Marker { .. } => {}
            Record::Channel(f) => self.set_channel(f, out),
            Record::NodeDown {
                node,
                before,
                reason,
            } => self.node_down(*node, *before, reason, out, now),
            Record::User(_) | Record::Note(_) => {}
        }
    }

    /// Creates or updates a user of another node.
    fn upsert_user(&mut self, f: &UserFact, out: &mut Outputs) {
        let Ok(nick) = Nickname::parse(&f.nick, usize::MAX) else {
            return;
        };
        let id = f.id;
        let old_key = self.users.get(&id).map(|u| u.nick_key().to_string());
        if old_key.is_none() {
            self.users.insert(Box::new(User {
                id,
                names: Names::default(),
                ip: f.ip,
                registered: true,
                channels: ThinVec::new(),
                modes: UserModes::default(),
                signon: f.signon,
                last_active: f.signon,
                extra: None,
                spoken: None,
            }));
            self.counts.account(true, UserModes::default(), 1);
        }
        let Some(u) = self.users.get_mut(&id) else {
            return;
        };
        self.counts.account(true, u.modes, -1);
        self.counts.account(true, f.modes, 1);
        u.modes = f.modes;
        u.set_user(&f.user, &f.realname);
        u.set_nick(&nick);
        u.set_account(f.account.as_deref());
        u.edit_extra(|e| e.away = f.away.clone());
        self.take_user_metadata(id, &f.metadata, out);
        let renamed = old_key.as_deref() != Some(nick.key());
        if renamed {
            if let Some(old) = old_key.as_deref().filter(|k| !k.is_empty()) {
                self.nicks.remove(old, id);
                self.notify_watchers(old, false, out);
            }
            // The registry granted the nick to its node; a stale holder
            // here (a user of a node that failed) gives way.
            if self.nicks.get(nick.key(), &self.users).is_none() {
                self.nicks.insert(nick.key(), id, &self.users);
            }
            self.notify_watchers(nick.key(), true, out);
        }
        self.max_users = self.max_users.max(self.counts.registered);
    }

    /// The channel named `name`, created (as another node founded it) if
    /// missing; its key.
    fn found_remote(&mut self, name: &str, created: u64) -> Option<String> {
        let cname = ChannelName::parse(name, usize::MAX).ok()?;
        let key = cname.key().to_string();
        if !self.channels.contains_key(&key) {
            let mut ch = Channel::new(&cname, created);
            ch.serial = self.msg_ids.next_msg().raw();
            self.channels.insert(key.clone(), ch);
        }
        Some(key)
    }

    fn add_member(&mut self, key: &str, id: ConnId) {
        let Some(u) = self.users.get_mut(&id) else {
            return;
        };
        let Some(ch) = self.channels.get_mut(key) else {
            return;
        };
        if ch.member(id).is_none() {
            ch.members.push(Member {
                id,
                op: false,
                voice: false,
            });
            u.channels.push(key.to_string());
            if u.is_invited(key) {
                u.edit_extra(|e| e.invites.remove(key));
            }
        }
    }

    /// Takes a channel's settings and ranks from `f`; members it lists that
    /// are not (or no longer) here are left out.
    fn set_channel(&mut self, f: &ChannelFact, out: &mut Outputs) {
        let key = casefold(&f.name);
        self.take_channel_metadata(&key, &f.metadata, out);
        let Some(ch) = self.channels.get_mut(&key) else {
            return;
        };
        ch.topic = f.topic.clone();
        ch.modes = f.modes.clone();
        ch.bans = f.bans.clone();
        ch.excepts = f.excepts.clone();
        ch.invex = f.invex.clone();
        ch.created = ch.created.min(f.created);
        for r in &f.ranks {
            if let Some(m) = ch.member_mut(r.id) {
                m.op = r.op;
                m.voice = r.voice;
            }
        }
    }

    /// A notification from another node: the state it implies, what history
    /// keeps of it, and the notification itself for local users.
    fn replay_note(&mut self, n: &Notification, out: &mut Outputs) {
        let channel_key = match &n.audience {
            Audience::Channel { key, .. } => Some(key.to_string()),
            _ => None,
        };
        match (&n.event, channel_key) {
            (
                Event::Join {
                    id, channel, time, ..
                },
                Some(key),
            ) => {
                if self.found_remote(channel, *time / 1000).is_some() {
                    self.add_member(&key, *id);
                }
                self.keep([key.as_str()], &n.event, out);
            }
            (Event::Part { id, .. }, Some(key))
            | (Event::Kick { target_id: id, .. }, Some(key)) => {
                self.keep([key.as_str()], &n.event, out);
                // The origin frees the name of a channel that emptied.
                let effects = out.later.len();
                self.leave(*id, &key, out);
                out.later.truncate(effects);
            }
            (Event::Topic { .. } | Event::Mode { .. }, Some(key)) => {
                self.keep([key.as_str()], &n.event, out)
            }
            // The channel moves here too (each node its own history);
            // delivery moves the room as the note goes out.
            (
                Event::Rename {
                    old_key,
                    new_key,
                    new,
                    to: None,
                    ..
                },
                Some(_),
            ) => {
                self.move_channel(old_key, new_key, new, out);
            }
            (Event::Quit { id, time, .. }, _) => {
                if let Some(u) = self.users.get(id) {
                    let keys = u.channels.to_vec();
                    self.keep(keys.iter().map(String::as_str), &n.event, out);
                }
                out.note(n.clone());
                self.drop_user(*id, out, *time);
                return;
            }
            (Event::Nick { new, .. }, _) => {
                if let Some(u) = self.find_nick(new) {
                    let keys = u.channels.to_vec();
                    self.keep(keys.iter().map(String::as_str), &n.event, out);
                }
            }
            (
                Event::Invite {
                    target, channel, ..
                },
                _,
            ) => {
                let key = casefold(channel);
                if let Some(id) = self.nicks.get(&casefold(target), &self.users)
                    && let Some(u) = self.users.get_mut(&id)
                {
                    u.edit_extra(|e| e.invites.insert(key));
                }
            }
            (Event::Message { .. }, _) => self.replay_message(&n.event, out),
            (
                Event::Redact {
                    target,
                    to_channel: true,
                    msgid,
                    ..
                },
                _,
            ) => {
                if let Ok(raw) = msgid.parse::<u64>() {
                    out.later.push(Effect::RedactHistory {
                        target: history_key(&casefold(target)),
                        msgid: crate::ids::MsgId::from_raw(raw),
                    });
                }
            }
            _ => {}
        }
        out.note(n.clone());
    }

    /// Keeps a message of another node where its origin kept it, and
    /// remembers it for redaction.
    fn replay_message(&mut self, e: &Event, out: &mut Outputs) {
        let Event::Message {
            from,
            target,
            to_channel,
            kind,
            client_tags,
            time,
            msgid,
            ..
        } = e
        else {
            return;
        };
        let Some(sender) = self.find_nick(from.nick()).map(|u| u.id) else {
            return;
        };
        // WHOIS idle time, as on the sender's node.
        if let Some(u) = self.users.get_mut(&sender) {
            u.last_active = u.last_active.max(super::unix_secs(*time));
        }
        let limit = self.cfg.limits.history;
        let keep = limit > 0 && (*kind != MsgKind::Tagmsg || worth_keeping(client_tags));
        let mut keys = Vec::new();
        if *to_channel {
            // Status messages (`@#chan`) are not kept: no channel has
            // their target's name.
            let Some(ch) = self.channels.get(&casefold(target)) else {
                return;
            };
            if keep {
                keys.push(history_key(&ch.key));
            }
            let serial = ch.serial;
            self.remember_message(*msgid, sender, Some(serial), sender, *time);
        } else if let Some(to) = self.find_nick(target) {
            let to_id = to.id;
            if keep && let Some(s) = self.users.get(&sender) {
                keys = dm_keys(s, to);
            }
            self.remember_message(*msgid, sender, None, to_id, *time);
        }
        for target in keys {
            out.later.push(Effect::AppendHistory {
                stored: Box::new(crate::store::Stored {
                    target,
                    msgid: *msgid,
                    time: *time,
                    event: e.clone(),
                }),
                keep: limit,
            });
        }
    }

    /// Removes a user of another node, which already told its quit; the
    /// keys of the channels that emptied.
    fn drop_user(&mut self, id: ConnId, out: &mut Outputs, now: Millis) -> Vec<String> {
        match self.users.remove(&id) {
            Some(u) => self.forget_user(&u, now, out).0,
            None => Vec::new(),
        }
    }

    /// Node `node` is gone: its users older than `before` quit, for every
    /// user here to see.
    fn node_down(&mut self, node: u16, before: u64, reason: &str, out: &mut Outputs, now: Millis) {
        let gone: Vec<ConnId> = self
            .users
            .values()
            .map(|u| u.id)
            .filter(|id| id.node() == node && id.serial() < before)
            .collect();
        for id in gone {
            let Some(u) = self.users.get(&id) else {
                continue;
            };
            let event = Event::Quit {
                who: u.source(),
                id,
                reason: reason.to_string(),
                time: now,
                msgid: self.msg_ids.next_msg(),
            };
            self.keep(u.channels.iter().map(String::as_str), &event, out);
            out.note(Notification {
                audience: Network::neighbours(u),
                event,
            });
            // Nobody is left to free the names of the channels only its
            // users were in: every node does (a name freed twice is free).
            for key in self.drop_user(id, out, now) {
                Network::channel_gone(&key, out);
            }
        }
    }
}

#[cfg(test)]
mod tests;
