//! The network's state: users, nicks, channels, memberships, modes and
//! topics, keyed by ids and names, with no protocol in it.
//!
//! Read it through the queries here; change it only through
//! [`Network::apply`] with one of the [`changes`]: each checks what the
//! shared state forbids, mutates, and leaves the notifications and effects it
//! causes in the caller's [`Outputs`]. The server keeps the network behind
//! one lock, so each change is atomic: every member of a channel sees that
//! channel's events in the same order, a departed user is gone from every
//! list before anyone else acts, and a nick is held at most once.

pub mod account;
pub mod changes;
mod channel;
pub mod ghost;
mod kept;
pub mod markers;
mod message;
pub mod metadata;
mod modes;
mod nicks;
pub mod policy;
pub mod redact;
pub mod rename;
pub mod replica;
mod user;
mod users;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

pub use channel::{ChanModes, Channel, ListEntry, Member, Topic};
pub use modes::{Invite, Invited, ModeChange, ModesSet, SetChannelModes, wire_modes};
pub use user::{Host, User, UserModes};

use crate::config::CoreConfig;
use crate::ids::{ConnId, IdGen, MsgId};
use crate::names::{ChannelName, NameError, Nickname, casefold};
use crate::notify::{Audience, Event, Millis, Notification};
use crate::session::Outputs;

/// Why a change (or a name) was refused; each dialect words it its own way.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("{0}: no such nick")]
    NoSuchNick(String),
    #[error("{0}: no such channel")]
    NoSuchChannel(String),
    #[error("cannot send to {0}")]
    CannotSendToChan(String),
    #[error("you have joined too many channels")]
    TooManyChannels(String),
    #[error("{0}: erroneous nickname")]
    ErroneousNickname(String),
    #[error("{0}: nickname is already in use")]
    NicknameInUse(String),
    #[error("{1} is not on {0}")]
    UserNotInChannel(String, String),
    #[error("you are not on {0}")]
    NotOnChannel(String),
    #[error("{0} is already on {1}")]
    UserOnChannel(String, String),
    #[error("{0} is full")]
    ChannelIsFull(String),
    #[error("{0} is invite only")]
    InviteOnlyChan(String),
    #[error("you are banned from {0}")]
    BannedFromChan(String),
    /// `+R` or `+M`: only users logged in to an account may join or speak.
    #[error("you need to be logged in to an account for {0}")]
    NeedReggedNick(String),
    #[error("wrong key for {0}")]
    BadChannelKey(String),
    #[error("{0}: bad channel name")]
    BadChanName(String),
    #[error("you are not a channel operator of {0}")]
    ChanOpPrivsNeeded(String),
    #[error("permission denied: you are not an operator")]
    NoPrivileges,
    #[error("message too long (more than {0} characters)")]
    MessageTooLong(usize),
    #[error("no text to send")]
    NoTextToSend,
    /// RENAME to a name another channel has: (old, new).
    #[error("{1} is already taken")]
    ChannelNameInUse(String, String),
    /// RENAME refused for another reason: (old, new, why).
    #[error("{0} cannot be renamed to {1}: {2}")]
    CannotRename(String, String, String),
    /// REDACT in a conversation the user is not in: (target).
    #[error("you cannot redact messages in {0}")]
    RedactInvalidTarget(String),
    /// REDACT of a message not remembered in that conversation: (target, msgid).
    #[error("{1}: no such message in {0}, or too old")]
    UnknownMsgid(String, String),
    /// REDACT of someone else's message: (target, msgid).
    #[error("you may not redact {1} in {0}")]
    RedactForbidden(String, String),
    /// REDACT past the window: (target, msgid, window in seconds).
    #[error("{1} in {0} is older than {2} s: it can no longer be redacted")]
    RedactWindowExpired(String, String, u64),
    /// METADATA on a target that does not exist (for this user).
    #[error("{0}: no such metadata target")]
    MetadataInvalidTarget(String),
    /// METADATA SET/CLEAR (or a read) not allowed: (target, key or `*`).
    #[error("you may not change {1} of {0}")]
    MetadataNoPermission(String, String),
    #[error("{0}: invalid metadata key")]
    MetadataKeyInvalid(String),
    /// A value over `limits.metadata_value_bytes`: (key).
    #[error("{0}: value too long")]
    MetadataValueInvalid(String),
    /// `limits.metadata_keys` reached: (target, the limit).
    #[error("{0} has {1} metadata keys already")]
    MetadataLimit(String, usize),
    /// Removing a key that is not set: (target, key).
    #[error("{1} is not set on {0}")]
    MetadataKeyNotSet(String, String),
}

/// A change to the network: applied by [`Network::apply`], the one way
/// state changes.
pub trait Change {
    /// What the change reports back to the command that asked for it.
    type Output;
    fn apply(
        self,
        net: &mut Network,
        out: &mut Outputs,
        now: Millis,
    ) -> Result<Self::Output, ChangeError>;
}

/// The tables, keyed by client-chosen names, are seeded per process (no
/// precomputed collisions); foldhash rather than std's SipHash, which showed
/// in the message path's profile.
pub type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A departed nick, for WHOWAS.
#[derive(Clone, Debug)]
pub struct WhowasEntry {
    pub nick: String,
    pub nick_key: String,
    pub user: String,
    pub host: String,
    pub realname: String,
    pub at: u64,
}

/// WHOWAS entries kept.
const WHOWAS_KEEP: usize = 256;

/// Users counted for LUSERS; see [`Network::counts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub registered: usize,
    pub invisible: usize,
    pub opers: usize,
}

impl Counts {
    /// Adds (`sign` 1) or removes (-1) one user's part of the counts.
    fn account(&mut self, registered: bool, modes: UserModes, sign: isize) {
        let add = |n: &mut usize, yes: bool| {
            if yes {
                *n = n.wrapping_add_signed(sign);
            }
        };
        add(&mut self.registered, registered);
        add(&mut self.invisible, registered && modes.invisible);
        add(&mut self.opers, modes.oper);
    }
}

/// Unix seconds from the network's clock (milliseconds), saturating in 2106.
fn unix_secs(now_ms: u64) -> u32 {
    u32::try_from(now_ms / 1000).unwrap_or(u32::MAX)
}

/// The network.
pub struct Network {
    cfg: Arc<CoreConfig>,
    /// Set once the server is going down (the text clients are told): a
    /// connection arriving afterwards is told at once.
    shutdown: Option<Box<str>>,
    users: users::UserTable,
    /// Folded nick → user.
    nicks: nicks::NickIndex,
    channels: Map<String, Channel>,
    whowas: VecDeque<WhowasEntry>,
    msg_ids: IdGen,
    /// Unix seconds when the network started.
    pub created: u64,
    pub max_users: usize,
    /// LUSERS figures, kept as users come, change modes and leave, so a
    /// registration does not cost a pass over every user.
    counts: Counts,
    /// MONITOR: folded nick → connections watching it.
    watchers: Map<String, Vec<ConnId>>,
    /// draft/read-marker.
    markers: markers::ReadMarkers,
    /// draft/message-redaction: the recent messages.
    redactable: redact::Redactable,
    /// Failed logins, per account and per address.
    pub logins: crate::throttle::LoginThrottle,
}

impl Network {
    /// A network whose default channel exists from the start, with `+n` and
    /// no operator, so every user of the lobby may set its topic.
    pub fn new(cfg: Arc<CoreConfig>, now: Millis) -> Network {
        let mut channels = Map::default();
        if let Ok(name) = ChannelName::parse(&cfg.default_channel, usize::MAX) {
            let mut lobby = Channel::new(&name, now / 1000);
            lobby.modes.topic_lock = false;
            lobby.permanent = true;
            channels.insert(name.key().to_string(), lobby);
        }
        Network {
            msg_ids: IdGen::from_time(cfg.node, now),
            cfg,
            users: users::UserTable::default(),
            nicks: nicks::NickIndex::default(),
            channels,
            whowas: VecDeque::new(),
            shutdown: None,
            created: now / 1000,
            max_users: 0,
            counts: Counts::default(),
            watchers: Map::default(),
            markers: markers::ReadMarkers::default(),
            redactable: redact::Redactable::default(),
            logins: Default::default(),
        }
    }

    /// Applies a change: the only way the network changes.
    pub fn apply<C: Change>(
        &mut self,
        change: C,
        out: &mut Outputs,
        now: Millis,
    ) -> Result<C::Output, ChangeError> {
        change.apply(self, out, now)
    }

    pub fn config(&self) -> &Arc<CoreConfig> {
        &self.cfg
    }

    /// Takes a new configuration (a reload): limits apply to the next command.
    pub fn set_config(&mut self, cfg: Arc<CoreConfig>) {
        self.cfg = cfg;
    }

    pub fn user(&self, id: ConnId) -> Option<&User> {
        self.users.get(&id)
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// How many users are registered, invisible, operators.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    pub fn find_nick(&self, nick: &str) -> Option<&User> {
        self.nicks
            .get(&casefold(nick), &self.users)
            .and_then(|id| self.user(id))
    }

    /// The channel named `name` (any case).
    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.get(&casefold(name))
    }

    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.channels.values()
    }

    /// The departed users who had `nick`, most recent first.
    pub fn whowas(&self, nick: &str) -> impl Iterator<Item = &WhowasEntry> {
        let key = casefold(nick);
        self.whowas.iter().rev().filter(move |w| w.nick_key == key)
    }

    /// Validates `nick` against the configured rules.
    pub fn validate_nick(&self, nick: &str) -> Result<Nickname, ChangeError> {
        Nickname::parse(nick, self.cfg.limits.nick_length)
            .map_err(|_| ChangeError::ErroneousNickname(nick.to_string()))
    }

    /// Validates `name` as a channel name.
    pub fn validate_channel(&self, name: &str) -> Result<ChannelName, ChangeError> {
        ChannelName::parse(name, self.cfg.limits.channel_length).map_err(|e| match e {
            NameError::Empty | NameError::BadChar | NameError::TooLong(_) => {
                ChangeError::BadChanName(name.to_string())
            }
        })
    }

    fn next_msgid(&mut self) -> MsgId {
        self.msg_ids.next_msg()
    }

    /// The registered user holding `nick`, or `NoSuchNick`.
    fn registered(&self, nick: &str) -> Result<&User, ChangeError> {
        self.find_nick(nick)
            .filter(|u| u.registered)
            .ok_or_else(|| ChangeError::NoSuchNick(nick.to_string()))
    }

    /// The user `id` (who issues a change) and the channel `name`: the
    /// preamble of most channel changes.
    fn user_and_channel(&self, id: ConnId, name: &str) -> Result<(&User, &Channel), ChangeError> {
        let u = self.users.get(&id).ok_or(ChangeError::NoPrivileges)?;
        let ch = self
            .channel(name)
            .ok_or_else(|| ChangeError::NoSuchChannel(name.to_string()))?;
        Ok((u, ch))
    }

    /// Everyone sharing a channel with `u`, `u` excluded.
    fn neighbours(u: &User) -> Audience {
        Audience::Channels {
            keys: u.channels.to_vec(),
            except: Some(u.id),
        }
    }

    /// Removes `id` from a channel; the channel goes when its last member
    /// leaves (the default channel stays).
    fn leave(&mut self, id: ConnId, ch_key: &str, out: &mut Outputs) {
        if let Some(u) = self.users.get_mut(&id) {
            u.channels.retain(|c| c != ch_key);
        }
        if let Some(ch) = self.channels.get_mut(ch_key) {
            ch.members.retain(|m| m.id != id);
            if ch.members.is_empty() && !ch.permanent {
                self.channels.remove(ch_key);
                Network::channel_gone(ch_key, out);
            }
        }
    }

    /// Takes `u`, just removed from the users, out of every other table:
    /// its channels (those it leaves empty go; their keys are returned),
    /// its nick (remembered for WHOWAS and its watchers told, if it had
    /// registered), the MONITOR lists it kept. Also whether the nick index
    /// held it.
    fn forget_user(&mut self, u: &User, now: Millis, out: &mut Outputs) -> (Vec<String>, bool) {
        let id = u.id;
        self.counts.account(u.registered, u.modes, -1);
        let mut emptied = Vec::new();
        for key in &u.channels {
            if let Some(ch) = self.channels.get_mut(key) {
                ch.members.retain(|m| m.id != id);
                if ch.members.is_empty() && !ch.permanent {
                    self.channels.remove(key);
                    emptied.push(key.clone());
                }
            }
        }
        let key = u.nick_key();
        let held = !key.is_empty() && self.nicks.remove(key, id);
        if held && u.registered {
            self.remember(WhowasEntry {
                nick: u.nick().to_string(),
                nick_key: key.to_string(),
                user: u.user().to_string(),
                host: u.host().to_string(),
                realname: u.realname().to_string(),
                at: now / 1000,
            });
            self.notify_watchers(key, false, out);
        }
        for key in u.monitoring() {
            if let Some(w) = self.watchers.get_mut(key) {
                w.retain(|&x| x != id);
                if w.is_empty() {
                    self.watchers.remove(key);
                }
            }
        }
        (emptied, held)
    }

    /// A channel emptied and went: its name is free in the registry. Its
    /// history stays, bounded by the history limits, for whoever founds it
    /// again (after a restart, every channel is founded again).
    fn channel_gone(key: &str, out: &mut Outputs) {
        out.later.push(crate::effect::Effect::DropChannel {
            key: key.to_string(),
        });
    }

    fn remember(&mut self, w: WhowasEntry) {
        if self.whowas.len() >= WHOWAS_KEEP {
            self.whowas.pop_front();
        }
        self.whowas.push_back(w);
    }

    /// Tells the users watching `nick_key` (MONITOR) that it came or went.
    fn notify_watchers(&self, nick_key: &str, online: bool, out: &mut Outputs) {
        let Some(ws) = self.watchers.get(nick_key) else {
            return;
        };
        let subject = self
            .nicks
            .get(nick_key, &self.users)
            .and_then(|id| self.users.get(&id));
        let who = match (online, subject) {
            (true, Some(s)) => s.prefix(),
            _ => self
                .whowas
                .back()
                .filter(|w| w.nick_key == nick_key)
                .map(|w| w.nick.to_string())
                .unwrap_or_else(|| nick_key.to_string()),
        };
        for w in ws {
            if let Some(u) = self.users.get(w) {
                out.note(Notification {
                    audience: Audience::User(u.id),
                    event: Event::Monitor {
                        server: self.cfg.server_name.clone(),
                        to: u.nick().to_string(),
                        online,
                        who: who.clone(),
                    },
                });
            }
        }
    }

    /// Also tells `event` (about `u`) to the users MONITORing `u` who share
    /// no channel with it: those who asked for extended-monitor see it.
    fn tell_watchers(&self, u: &User, event: &Event, out: &mut Outputs) {
        let Some(ws) = self.watchers.get(u.nick_key()) else {
            return;
        };
        let lone: Vec<ConnId> = ws
            .iter()
            .copied()
            .filter(|w| *w != u.id)
            .filter(|w| {
                self.users
                    .get(w)
                    .is_some_and(|wu| !wu.channels.iter().any(|c| u.channels.contains(c)))
            })
            .collect();
        if !lone.is_empty() {
            out.note(Notification {
                audience: Audience::Users(lone),
                event: Event::Watched(Box::new(event.clone())),
            });
        }
    }

    /// Tells `event` about `u` to everyone sharing a channel with it, and to
    /// those MONITORing it who share none (extended-monitor).
    fn tell_around(&self, u: &User, event: Event, out: &mut Outputs) {
        self.tell_watchers(u, &event, out);
        out.note(Notification {
            audience: Network::neighbours(u),
            event,
        });
    }

    /// Checks the network's internal consistency: every index agrees with
    /// the data it indexes. For tests and fuzzing; O(size of the network).
    pub fn check_invariants(&self) -> Result<(), String> {
        for id in self.nicks.ids() {
            let u = self
                .users
                .get(&id)
                .ok_or(format!("the nick index holds missing user {id}"))?;
            if u.nick_key().is_empty() {
                return Err(format!("user {id} is indexed without a nick"));
            }
        }
        let named = self.users.values().filter(|u| !u.nick_key().is_empty());
        if self.nicks.len() != named.count() {
            return Err(format!("{} nicks indexed", self.nicks.len()));
        }
        let mut counted = Counts::default();
        for u in self.users.values() {
            counted.account(u.registered, u.modes, 1);
        }
        if counted != self.counts {
            return Err(format!(
                "counts {:?} but users make {counted:?}",
                self.counts
            ));
        }
        for (id, u) in self.users.iter() {
            u.check()?;
            if !u.nick_key().is_empty() && self.nicks.get(u.nick_key(), &self.users) != Some(*id) {
                return Err(format!(
                    "user {id} ({}) is not indexed by its nick",
                    u.nick()
                ));
            }
            for c in &u.channels {
                let ch = self
                    .channels
                    .get(c)
                    .ok_or(format!("user {id} in missing channel {c}"))?;
                if ch.member(*id).is_none() {
                    return Err(format!("user {id} thinks it is in {c}"));
                }
            }
        }
        for (key, ch) in &self.channels {
            if ch.members.is_empty() && !ch.permanent {
                return Err(format!("empty channel {key} kept"));
            }
            let mut seen = HashSet::new();
            for m in &ch.members {
                if !seen.insert(m.id) {
                    return Err(format!("user {} twice in {key}", m.id));
                }
                let u = self
                    .users
                    .get(&m.id)
                    .ok_or(format!("{key} has missing member {}", m.id))?;
                if !u.channels.contains(key) {
                    return Err(format!("{key} lists {} who does not list it", m.id));
                }
            }
        }
        Ok(())
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
