//! The hub: one state of users, nicks and channels shared by every listener.
//!
//! It is a plain state machine with no IO: dialect code calls its operations
//! (`join`, `message`, `quit`, ...) with the current time, and the hub queues
//! encoded events on the recipients' [`Peer`]s. The server keeps it behind one
//! lock, so each operation is atomic: every member of a channel sees that
//! channel's events in the same order, a departed user is gone from every list
//! before anyone else acts, and a nick is held at most once.

pub mod event;
mod modes;
mod nicks;
pub mod policy;
mod users;

use std::collections::{HashMap, HashSet, VecDeque};

use std::net::IpAddr;
use std::sync::Arc;

use thin_vec::ThinVec;

pub use event::{
    Dialect, DialectRef, Event, MsgKind, MultilinePart, Peer, Sink, cap, fanout, join_parts,
};

use crate::config::Config;
use crate::names::{ChannelName, NameError, Nickname, casefold, folded};

/// Identifies a connection for its whole life; never reused.
pub type ConnId = u64;

/// Errors of hub operations; each dialect turns them into its own replies.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
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
}

/// User modes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserModes {
    pub invisible: bool,
    pub oper: bool,
    pub wallops: bool,
    pub bot: bool,
    pub secure: bool,
}

/// One connection's user.
///
/// Every connection has one for its whole life, so it holds only what every
/// user needs: what few users have is in [`UserExtra`], boxed, and the host
/// is rendered from the address when shown.
#[derive(Debug)]
pub struct User {
    pub id: ConnId,
    pub peer: Arc<Peer>,
    /// Nick, its key, user name and real name, in one allocation.
    names: Names,
    pub ip: IpAddr,
    pub registered: bool,
    /// Keys of the channels the user is in, in joining order. A `ThinVec`
    /// (one pointer; length and capacity live in its allocation, and an
    /// empty one allocates nothing): with the 32-bit times below, it keeps
    /// every user's record in a 128-byte allocation.
    pub channels: ThinVec<String>,
    pub modes: UserModes,
    /// Unix seconds at connection and at the last message sent (WHOIS idle);
    /// 32 bits are enough until 2106.
    pub signon: u32,
    pub last_active: u32,
    /// `None` while every field of it would be empty.
    extra: Option<Box<UserExtra>>,
}

/// A user's nick, casefolded nick, user name and real name, in one boxed
/// string: one allocation instead of four, and 24 bytes in [`User`] instead
/// of 64 (which keeps every user's record in jemalloc's 96-byte class).
/// They change seldom (a nick change, registration, SETNAME); each change
/// rebuilds the string.
#[derive(Debug, Default)]
struct Names {
    /// `nick`, then the casefolded nick when it differs from the nick (most
    /// nicks are their own key), then the user name, then the real name.
    text: Box<str>,
    /// Lengths of the first three parts. Nicks and user names are bounded by
    /// the configuration far below 64 KiB; a longer one is cut (at a
    /// character boundary) rather than overflow the count.
    nick: u16,
    folded: u16,
    user: u16,
}

impl Names {
    fn nick(&self) -> &str {
        &self.text[..self.nick as usize]
    }

    fn key(&self) -> &str {
        match self.folded {
            0 => self.nick(),
            n => &self.text[self.nick as usize..][..n as usize],
        }
    }

    fn user_start(&self) -> usize {
        self.nick as usize + self.folded as usize
    }

    fn user(&self) -> &str {
        &self.text[self.user_start()..][..self.user as usize]
    }

    fn realname(&self) -> &str {
        &self.text[self.user_start() + self.user as usize..]
    }

    fn new(nick: &str, folded: &str, user: &str, realname: &str) -> Names {
        let nick = cut16(nick);
        let folded = if folded == nick { "" } else { cut16(folded) };
        let user = cut16(user);
        Names {
            text: [nick, folded, user, realname].concat().into_boxed_str(),
            nick: nick.len() as u16,
            folded: folded.len() as u16,
            user: user.len() as u16,
        }
    }
}

/// `s`, cut to at most `u16::MAX` bytes at a character boundary.
fn cut16(s: &str) -> &str {
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// What few users have: an away message, invitations, a MONITOR list.
#[derive(Debug, Default)]
struct UserExtra {
    away: Option<String>,
    /// Channel keys the user was invited to.
    invites: HashSet<String>,
    /// Keys of nicks on this user's MONITOR list.
    monitoring: Vec<String>,
}

impl UserExtra {
    fn is_empty(&self) -> bool {
        self.away.is_none() && self.invites.is_empty() && self.monitoring.is_empty()
    }
}

impl User {
    /// `nick!user@host`.
    pub fn prefix(&self) -> String {
        format!("{}!{}@{}", self.nick(), self.user(), self.host())
    }

    /// The nick, empty until the user has one.
    pub fn nick(&self) -> &str {
        self.names.nick()
    }

    /// The user name (USER's first parameter), empty until registration.
    pub fn user(&self) -> &str {
        self.names.user()
    }

    pub fn realname(&self) -> &str {
        self.names.realname()
    }

    /// The host shown for this user, rendered from its address.
    pub fn host(&self) -> Host {
        Host(self.ip)
    }

    /// The casefolded nick, the user's key in the nick index (empty until
    /// the user has a nick).
    pub fn nick_key(&self) -> &str {
        self.names.key()
    }

    fn set_nick(&mut self, nick: &Nickname) {
        let n = &self.names;
        self.names = Names::new(nick.as_str(), nick.key(), n.user(), n.realname());
    }

    fn set_user(&mut self, user: &str, realname: &str) {
        let n = &self.names;
        self.names = Names::new(n.nick(), n.key(), user, realname);
    }

    fn set_realname(&mut self, realname: &str) {
        let n = &self.names;
        self.names = Names::new(n.nick(), n.key(), n.user(), realname);
    }

    /// The length of [`User::prefix`], without building it.
    pub fn prefix_len(&self) -> usize {
        self.nick().len() + 1 + self.user().len() + 1 + self.host().len()
    }

    /// Appends [`User::prefix`] to `out` (encoding, without a temporary string).
    pub fn put_prefix(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.nick().as_bytes());
        out.push(b'!');
        out.extend_from_slice(self.user().as_bytes());
        out.push(b'@');
        self.host().put(out);
    }

    /// The channel a one-channel dialect (`line`) talks to.
    pub fn current_channel(&self) -> Option<&str> {
        self.channels.last().map(String::as_str)
    }

    pub fn away(&self) -> Option<&str> {
        self.extra.as_ref()?.away.as_deref()
    }

    /// Whether the user was invited to the channel with key `ch_key`.
    pub fn is_invited(&self, ch_key: &str) -> bool {
        self.extra
            .as_ref()
            .is_some_and(|e| e.invites.contains(ch_key))
    }

    /// Keys of the nicks on the user's MONITOR list.
    pub fn monitoring(&self) -> &[String] {
        self.extra.as_ref().map_or(&[], |e| &e.monitoring)
    }

    /// Changes the rare fields; the box goes away again once they are empty.
    fn edit_extra<T>(&mut self, f: impl FnOnce(&mut UserExtra) -> T) -> T {
        let extra = self.extra.get_or_insert_with(Box::default);
        let out = f(extra);
        if extra.is_empty() {
            self.extra = None;
        }
        out
    }
}

/// A user's host as shown to others: its address, IPv4-mapped addresses as
/// plain IPv4, and a leading `0` before a leading `:` ("::1" would break
/// IRC framing).
#[derive(Clone, Copy, Debug)]
pub struct Host(pub IpAddr);

impl Host {
    /// The address as shown: IPv4 for an IPv4 or IPv4-mapped client.
    fn shown(&self) -> Result<std::net::Ipv4Addr, V6Text> {
        match self.0 {
            IpAddr::V4(v4) => Ok(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped().ok_or_else(|| V6Text::new(v6)),
        }
    }

    /// Appends the host to `out`. Every relayed message shows its sender's
    /// host: IPv4 is written digit by digit, as the formatting machinery
    /// costs more than the rest of a delivery, and nothing is allocated.
    pub fn put(&self, out: &mut Vec<u8>) {
        match self.shown() {
            Ok(v4) => {
                for (i, o) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    if o >= 100 {
                        out.push(b'0' + o / 100);
                    }
                    if o >= 10 {
                        out.push(b'0' + o / 10 % 10);
                    }
                    out.push(b'0' + o % 10);
                }
            }
            Err(v6) => out.extend_from_slice(v6.as_bytes()),
        }
    }

    /// The length of the host as shown.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        match self.shown() {
            Ok(v4) => {
                let digits = |o: u8| 1 + usize::from(o >= 10) + usize::from(o >= 100);
                3 + v4.octets().into_iter().map(digits).sum::<usize>()
            }
            Err(v6) => v6.len,
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.shown() {
            Ok(v4) => v4.fmt(f),
            Err(v6) => {
                f.write_str(std::str::from_utf8(v6.as_bytes()).map_err(|_| std::fmt::Error)?)
            }
        }
    }
}

/// An IPv6 host as shown, rendered on the stack. A leading `:` is made `0:`,
/// as a word starting with `:` would end an IRC message's parameters.
struct V6Text {
    buf: [u8; 48],
    len: usize,
}

impl V6Text {
    fn new(v6: std::net::Ipv6Addr) -> V6Text {
        use std::fmt::Write;
        let mut t = V6Text {
            buf: [0; 48],
            len: 0,
        };
        // At most 39 characters: it always fits.
        let _ = write!(t, "{v6}");
        if t.buf[0] == b':' {
            t.buf.copy_within(..t.len, 1);
            t.buf[0] = b'0';
            t.len += 1;
        }
        t
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for V6Text {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Peer({})", self.id)
    }
}

/// A channel member.
#[derive(Debug)]
pub struct Member {
    pub id: ConnId,
    pub peer: Arc<Peer>,
    pub op: bool,
    pub voice: bool,
}

/// Channel modes with no list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChanModes {
    pub invite_only: bool,
    pub moderated: bool,
    pub no_external: bool,
    pub topic_lock: bool,
    pub secret: bool,
    pub private: bool,
    pub key: Option<String>,
    pub limit: Option<usize>,
}

/// An entry of a ban, exception or invite-exception list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    pub mask: String,
    pub set_by: String,
    pub set_at: u64,
}

/// A channel topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topic {
    pub text: String,
    pub set_by: String,
    pub set_at: u64,
}

/// A channel.
#[derive(Debug)]
pub struct Channel {
    pub name: String,
    pub key: String,
    pub created: u64,
    pub topic: Option<Topic>,
    /// Members in joining order.
    pub members: Vec<Member>,
    pub modes: ChanModes,
    pub bans: Vec<ListEntry>,
    pub excepts: Vec<ListEntry>,
    pub invex: Vec<ListEntry>,
    /// The default channel outlives its last member and has no founder.
    pub permanent: bool,
}

impl Channel {
    pub fn member(&self, id: ConnId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub fn member_mut(&mut self, id: ConnId) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    /// Peers of every member except `except`.
    pub fn peers_except(&self, except: ConnId) -> impl Iterator<Item = &Arc<Peer>> {
        self.members
            .iter()
            .filter(move |m| m.id != except)
            .map(|m| &m.peer)
    }
}

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

const WHOWAS_KEEP: usize = 256;

/// Milliseconds since the Unix epoch; the hub's notion of "now".
pub type Millis = u64;

/// Users counted for LUSERS; see [`Hub::counts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Registered users.
    pub registered: usize,
    /// Registered users with `+i`.
    pub invisible: usize,
    /// Users with `+o`.
    pub opers: usize,
}

impl Counts {
    /// Adds (`sign` 1) or removes (-1) `u`'s part of the counts.
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

/// Unix seconds from the hub's clock (milliseconds), saturating in 2106.
fn unix_secs(now_ms: u64) -> u32 {
    u32::try_from(now_ms / 1000).unwrap_or(u32::MAX)
}

/// The hub's tables. Keyed by client-chosen names, so seeded per process
/// (no precomputed collisions); foldhash rather than std's SipHash, which
/// showed in the message path's profile (3 % of server CPU in `rooms`).
pub type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The shared state.
pub struct Hub {
    pub cfg: Arc<Config>,
    /// Set once the server is going down (the text clients are told): a
    /// connection joining afterwards is told and closed at once.
    shutdown: Option<Box<str>>,
    /// Boxed: the table then holds pointers, not 128-byte slots at 7/8 load.
    users: users::UserTable,
    /// Folded nick → user.
    nicks: nicks::NickIndex,
    channels: Map<String, Channel>,
    whowas: VecDeque<WhowasEntry>,
    next_id: ConnId,
    next_msgid: u64,
    /// Fan-out's arena, and the connections whose send queue overflowed
    /// during an operation: they are dropped once the operation is over,
    /// never in the middle of a fan-out.
    sink: Sink,
    /// Unix seconds when the hub started.
    pub created: u64,
    pub max_users: usize,
    /// LUSERS figures, kept as users register, change modes and leave:
    /// counting them on every registration's greeting made each one cost a
    /// pass over every user (quadratic in the number of connections).
    counts: Counts,
    /// MONITOR: folded nick → connections watching it.
    watchers: Map<String, Vec<ConnId>>,
    /// Time of the operation in progress, for the drops that [`Hub::settle`] makes.
    now: Millis,
}

impl Hub {
    /// A hub whose default channel exists from the start, with `+n` and no
    /// operator, so every user of the lobby may set its topic.
    pub fn new(cfg: Arc<Config>, now: Millis) -> Hub {
        let mut channels = Map::default();
        if let Ok(name) = ChannelName::parse(&cfg.default_channel, usize::MAX) {
            channels.insert(
                name.key().to_string(),
                Channel {
                    name: name.as_str().to_string(),
                    key: name.key().to_string(),
                    created: now / 1000,
                    topic: None,
                    members: Vec::new(),
                    modes: ChanModes {
                        no_external: true,
                        ..ChanModes::default()
                    },
                    bans: Vec::new(),
                    excepts: Vec::new(),
                    invex: Vec::new(),
                    permanent: true,
                },
            );
        }
        Hub {
            cfg,
            users: users::UserTable::default(),
            nicks: nicks::NickIndex::default(),
            channels,
            whowas: VecDeque::new(),
            next_id: 1,
            next_msgid: 1,
            sink: Sink::default(),
            shutdown: None,
            created: now / 1000,
            max_users: 0,
            counts: Counts::default(),
            watchers: Map::default(),
            now,
        }
    }

    /// Advances the hub's clock; dialect code calls it before each command.
    pub fn set_now(&mut self, now: Millis) {
        self.now = now;
    }

    /// Allocates an id for a new connection (before its [`Peer`] exists).
    pub fn next_conn_id(&mut self) -> ConnId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Adds a connection with no nick yet.
    pub fn connect(&mut self, peer: Arc<Peer>, ip: IpAddr, now: Millis) -> ConnId {
        let id = peer.id;
        self.users.insert(Box::new(User {
            id,
            peer,
            names: Names::default(),
            ip,
            registered: false,
            channels: ThinVec::new(),
            modes: UserModes::default(),
            signon: unix_secs(now),
            last_active: unix_secs(now),
            extra: None,
        }));
        if let (Some(text), Some(u)) = (&self.shutdown, self.users.get(&id)) {
            u.peer.send_event(&Event::Shutdown { text });
            u.peer.out.shut_down();
        }
        id
    }

    pub fn user(&self, id: ConnId) -> Option<&User> {
        self.users.get(&id)
    }

    pub fn user_mut(&mut self, id: ConnId) -> Option<&mut User> {
        self.users.get_mut(&id)
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

    /// Sets `id`'s user modes. Changes to `invisible` or `oper` must go
    /// through here: the LUSERS counts follow them (`check_invariants`
    /// recounts).
    pub fn set_modes(&mut self, id: ConnId, modes: UserModes) {
        if let Some(u) = self.users.get_mut(&id) {
            self.counts.account(u.registered, u.modes, -1);
            self.counts.account(u.registered, modes, 1);
            u.modes = modes;
        }
    }

    pub fn find_nick(&self, nick: &str) -> Option<&User> {
        self.nicks
            .get(&casefold(nick), &self.users)
            .and_then(|id| self.user(id))
    }

    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.get(&casefold(name))
    }

    pub fn channel_mut(&mut self, name: &str) -> Option<&mut Channel> {
        self.channels.get_mut(&casefold(name))
    }

    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.channels.values()
    }

    pub fn whowas(&self, nick: &str) -> impl Iterator<Item = &WhowasEntry> {
        let key = casefold(nick);
        self.whowas.iter().rev().filter(move |w| w.nick_key == key)
    }

    fn next_msgid(&mut self) -> u64 {
        let m = self.next_msgid;
        self.next_msgid += 1;
        m
    }

    /// Validates `nick` against the configured rules.
    pub fn validate_nick(&self, nick: &str) -> Result<Nickname, HubError> {
        Nickname::parse(nick, self.cfg.limits.nick_length)
            .map_err(|_| HubError::ErroneousNickname(nick.to_string()))
    }

    /// Validates `name` as a channel name.
    pub fn validate_channel(&self, name: &str) -> Result<ChannelName, HubError> {
        ChannelName::parse(name, self.cfg.limits.channel_length).map_err(|e| match e {
            NameError::Empty | NameError::BadChar | NameError::TooLong(_) => {
                HubError::BadChanName(name.to_string())
            }
        })
    }

    /// Ids of every user sharing a channel with `id`, `id` excluded, each once.
    fn neighbours(&self, id: ConnId) -> Vec<Arc<Peer>> {
        let Some(u) = self.users.get(&id) else {
            return Vec::new();
        };
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for key in &u.channels {
            if let Some(ch) = self.channels.get(key) {
                for m in &ch.members {
                    if m.id != id && seen.insert(m.id) {
                        out.push(m.peer.clone());
                    }
                }
            }
        }
        out
    }

    /// Sets or changes `id`'s nick. Users sharing a channel see the change; the
    /// caller tells the user itself. Returns the old `nick!user@host` prefix.
    pub fn set_nick(&mut self, id: ConnId, nick: &str, now: Millis) -> Result<String, HubError> {
        let n = self.validate_nick(nick)?;
        let Some(u) = self.users.get(&id) else {
            return Ok(String::new());
        };
        if let Some(holder) = self.nicks.get(n.key(), &self.users)
            && holder != id
        {
            return Err(HubError::NicknameInUse(nick.to_string()));
        }
        let old_prefix = u.prefix();
        let old_key = u.nick_key().to_string();
        let registered = u.registered;
        if u.nick() == n.as_str() {
            return Ok(old_prefix);
        }
        self.nicks.remove(&old_key, id);
        let Some(u) = self.users.get_mut(&id) else {
            return Ok(old_prefix);
        };
        u.set_nick(&n);
        // Indexed once the user carries the new key (see `NickIndex::insert`).
        self.nicks.insert(n.key(), id, &self.users);
        if registered {
            let peers = self.neighbours(id);
            if let Some(u) = self.users.get(&id) {
                let ev = Event::Nick {
                    who: u,
                    old_prefix: &old_prefix,
                    new: u.nick(),
                    time: now,
                };
                fanout(peers.iter(), &ev, &mut self.sink);
                let wh = WhowasEntry {
                    nick: old_prefix.split('!').next().unwrap_or_default().to_string(),
                    nick_key: old_key.clone(),
                    user: u.user().to_string(),
                    host: u.host().to_string(),
                    realname: u.realname().to_string(),
                    at: now / 1000,
                };
                self.remember(wh);
            }
            if old_key != n.key() {
                self.notify_watchers(&old_key, false);
                self.notify_watchers(n.key(), true);
            }
        }
        self.settle();
        Ok(old_prefix)
    }

    /// Marks `id` as registered (nick, user and realname are set).
    pub fn register(&mut self, id: ConnId, user: &str, realname: &str) {
        let key = if let Some(u) = self.users.get_mut(&id) {
            u.set_user(user, realname);
            if !u.registered {
                self.counts.account(false, u.modes, -1);
                self.counts.account(true, u.modes, 1);
                u.registered = true;
            }
            u.nick_key().to_string()
        } else {
            return;
        };
        self.max_users = self.max_users.max(self.counts.registered);
        self.notify_watchers(&key, true);
        self.settle();
    }

    /// Joins `id` to `name`, creating the channel (with `id` as operator) if it
    /// does not exist. Other members see the join; the caller greets the joiner.
    /// Returns false when the user was already there.
    pub fn join(
        &mut self,
        id: ConnId,
        name: &str,
        key: Option<&str>,
        on_connect: bool,
        now: Millis,
    ) -> Result<bool, HubError> {
        let cname = self.validate_channel(name)?;
        let Some(u) = self.users.get(&id) else {
            return Ok(false);
        };
        if u.channels.iter().any(|c| c == cname.key()) {
            return Ok(false);
        }
        if u.channels.len() >= self.cfg.limits.channels_per_user {
            return Err(HubError::TooManyChannels(cname.to_string()));
        }
        let peer = u.peer.clone();
        let ch = match self.channels.get_mut(cname.key()) {
            Some(ch) => {
                policy::can_join(ch, u, key)?;
                ch.members.push(Member {
                    id,
                    peer,
                    op: false,
                    voice: false,
                });
                ch
            }
            None => self
                .channels
                .entry(cname.key().to_string())
                .or_insert_with(|| Channel {
                    name: cname.as_str().to_string(),
                    key: cname.key().to_string(),
                    created: now / 1000,
                    topic: None,
                    members: vec![Member {
                        id,
                        peer,
                        op: true,
                        voice: false,
                    }],
                    modes: ChanModes {
                        no_external: true,
                        topic_lock: true,
                        ..ChanModes::default()
                    },
                    bans: Vec::new(),
                    excepts: Vec::new(),
                    invex: Vec::new(),
                    permanent: false,
                }),
        };
        let ch_key = ch.key.clone();
        if let Some(u) = self.users.get_mut(&id) {
            u.channels.push(ch_key.clone());
            if u.is_invited(&ch_key) {
                u.edit_extra(|e| e.invites.remove(&ch_key));
            }
        }
        if let (Some(u), Some(ch)) = (self.users.get(&id), self.channels.get(&ch_key)) {
            let ev = Event::Join {
                who: u,
                channel: &ch.name,
                on_connect,
                time: now,
            };
            fanout(ch.peers_except(id), &ev, &mut self.sink);
            // away-notify: members learn at once that the newcomer is away
            // (the render drops this for connections without the cap).
            if let Some(text) = u.away() {
                let away = Event::Away {
                    who: u,
                    text: Some(text),
                    time: now,
                };
                fanout(ch.peers_except(id), &away, &mut self.sink);
            }
        }
        self.settle();
        Ok(true)
    }

    /// Removes `id` from a channel; members (the leaver excluded) see `ev_for`.
    fn leave(&mut self, id: ConnId, ch_key: &str) {
        if let Some(u) = self.users.get_mut(&id) {
            u.channels.retain(|c| c != ch_key);
        }
        if let Some(ch) = self.channels.get_mut(ch_key) {
            ch.members.retain(|m| m.id != id);
            if ch.members.is_empty() && !ch.permanent {
                self.channels.remove(ch_key);
            }
        }
    }

    /// Parts `id` from `name`. Returns the channel's display name.
    pub fn part(
        &mut self,
        id: ConnId,
        name: &str,
        reason: &str,
        now: Millis,
    ) -> Result<String, HubError> {
        let key = casefold(name);
        let ch = self
            .channels
            .get(&key)
            .ok_or_else(|| HubError::NoSuchChannel(name.to_string()))?;
        let (Some(u), Some(_)) = (self.users.get(&id), ch.member(id)) else {
            return Err(HubError::NotOnChannel(ch.name.clone()));
        };
        let ev = Event::Part {
            who: u,
            channel: &ch.name,
            reason,
            time: now,
        };
        fanout(ch.peers_except(id), &ev, &mut self.sink);
        let display = ch.name.clone();
        self.leave(id, &key);
        self.settle();
        Ok(display)
    }

    /// Sends a message from `id` to a channel or a nick. For a nick, returns its
    /// away text so the dialect can tell the sender.
    pub fn message(
        &mut self,
        id: ConnId,
        target: &str,
        text: &str,
        kind: MsgKind,
        client_tags: &str,
        now: Millis,
    ) -> Result<MessageSent, HubError> {
        self.message_parts(id, target, text, &[], kind, client_tags, now)
    }

    /// [`Hub::message`] for a `draft/multiline` batch: `text` is the logical
    /// join of `parts` (see [`join_parts`]), which IRC recipients get as sent.
    #[allow(clippy::too_many_arguments)]
    pub fn message_parts(
        &mut self,
        id: ConnId,
        target: &str,
        text: &str,
        parts: &[MultilinePart],
        kind: MsgKind,
        client_tags: &str,
        now: Millis,
    ) -> Result<MessageSent, HubError> {
        if kind != MsgKind::Tagmsg && text.is_empty() {
            return Err(HubError::NoTextToSend);
        }
        let msgid = self.next_msgid();
        let Some(u) = self.users.get(&id) else {
            return Ok(MessageSent::default());
        };
        let mut sent = MessageSent {
            msgid,
            ..MessageSent::default()
        };
        if target.starts_with('#') {
            let ch = self
                .channels
                .get(&*folded(target))
                .ok_or_else(|| HubError::NoSuchChannel(target.to_string()))?;
            policy::can_send(ch, u, ch.member(id))?;
            let ev = Event::Message {
                from: u,
                target: &ch.name,
                to_channel: true,
                text,
                kind,
                client_tags,
                time: now,
                msgid,
                parts,
            };
            fanout(ch.peers_except(id), &ev, &mut self.sink);
        } else {
            let to = self
                .nicks
                .get(&folded(target), &self.users)
                .and_then(|id| self.users.get(&id))
                .filter(|t| t.registered)
                .ok_or_else(|| HubError::NoSuchNick(target.to_string()))?;
            let ev = Event::Message {
                from: u,
                target: to.nick(),
                to_channel: false,
                text,
                kind,
                client_tags,
                time: now,
                msgid,
                parts,
            };
            if !to.peer.send_event(&ev)
                && to.peer.out.closed() == Some(crate::outbox::Closed::Overflow)
            {
                self.sink.overflowed.push(to.id);
            }
            sent.away = to.away().map(str::to_string);
            sent.target = to.nick().to_string();
        }
        if let Some(u) = self.users.get_mut(&id) {
            u.last_active = unix_secs(now);
        }
        self.settle();
        Ok(sent)
    }

    /// Removes `id` entirely: its channels see it quit, its nick is freed and its
    /// queue closes once the already-queued data is written. Idempotent.
    pub fn quit(&mut self, id: ConnId, reason: &str, now: Millis) {
        self.remove_user(id, reason, now);
        self.settle();
    }

    fn remove_user(&mut self, id: ConnId, reason: &str, now: Millis) {
        if !self.users.contains_key(&id) {
            return;
        }
        let peers = self.neighbours(id);
        let Some(u) = self.users.get(&id) else {
            return;
        };
        if u.registered {
            let ev = Event::Quit {
                who: u,
                reason,
                time: now,
            };
            fanout(peers.iter(), &ev, &mut self.sink);
        }
        let Some(u) = self.users.remove(&id) else {
            return;
        };
        self.counts.account(u.registered, u.modes, -1);
        for key in &u.channels {
            if let Some(ch) = self.channels.get_mut(key) {
                ch.members.retain(|m| m.id != id);
                if ch.members.is_empty() && !ch.permanent {
                    self.channels.remove(key);
                }
            }
        }
        let key = u.nick_key();
        // Unindexed whether registered or not; remembered only if registered.
        if !key.is_empty() && self.nicks.remove(key, id) && u.registered {
            self.remember(WhowasEntry {
                nick: u.nick().to_string(),
                nick_key: key.to_string(),
                user: u.user().to_string(),
                host: u.host().to_string(),
                realname: u.realname().to_string(),
                at: now / 1000,
            });
            self.notify_watchers(key, false);
        }
        for key in u.monitoring() {
            if let Some(w) = self.watchers.get_mut(key) {
                w.retain(|&x| x != id);
                if w.is_empty() {
                    self.watchers.remove(key);
                }
            }
        }
        u.peer.out.close();
    }

    fn remember(&mut self, w: WhowasEntry) {
        if self.whowas.len() >= WHOWAS_KEEP {
            self.whowas.pop_front();
        }
        self.whowas.push_back(w);
    }

    /// Drops every connection whose send queue overflowed, repeatedly, since
    /// telling others about a drop can overflow more queues.
    fn settle(&mut self) {
        while !self.sink.overflowed.is_empty() {
            let mut ids = std::mem::take(&mut self.sink.overflowed);
            // A client past its queue is refused every line until it is
            // removed, so one fan-out of several drops (each one's QUIT to
            // the others) lists the same clients again.
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                if let Some(u) = self.users.get(&id) {
                    tracing::info!(
                        conn = id,
                        nick = u.nick(),
                        "send queue exceeded, dropping client"
                    );
                    self.remove_user(id, "SendQ exceeded", self.now);
                }
            }
        }
    }

    /// Disconnects `target` on behalf of operator `killer`: the target is told
    /// why, its channels see it quit.
    pub fn kill(
        &mut self,
        killer: ConnId,
        target: &str,
        reason: &str,
        now: Millis,
    ) -> Result<(), HubError> {
        let k = self.users.get(&killer).ok_or(HubError::NoPrivileges)?;
        policy::can_kill(k)?;
        let t = self
            .find_nick(target)
            .filter(|t| t.registered)
            .ok_or_else(|| HubError::NoSuchNick(target.to_string()))?;
        t.peer.send_event(&Event::Kill {
            by: k,
            target: t.nick(),
            reason,
            time: now,
        });
        let quit = format!("Killed ({} ({}))", k.nick(), reason);
        let id = t.id;
        self.remove_user(id, &quit, now);
        self.settle();
        Ok(())
    }

    /// Sets a channel topic after checking `id` may. The other members see the
    /// change; the caller echoes it to the setter.
    pub fn set_topic(
        &mut self,
        id: ConnId,
        name: &str,
        text: &str,
        now: Millis,
    ) -> Result<(), HubError> {
        let key = casefold(name);
        let u = self.users.get(&id).ok_or(HubError::NoPrivileges)?;
        let ch = self
            .channels
            .get_mut(&key)
            .ok_or_else(|| HubError::NoSuchChannel(name.to_string()))?;
        policy::can_set_topic(ch, u, ch.member(id))?;
        let text: String = truncate_bytes(text, self.cfg.limits.topic_length).to_string();
        ch.topic = if text.is_empty() {
            None
        } else {
            Some(Topic {
                text: text.clone(),
                set_by: u.prefix(),
                set_at: now / 1000,
            })
        };
        let ch = &self.channels[&key];
        let ev = Event::Topic {
            by: u,
            channel: &ch.name,
            text: &text,
            time: now,
        };
        fanout(ch.peers_except(id), &ev, &mut self.sink);
        self.settle();
        Ok(())
    }

    /// Kicks `target` from a channel on behalf of channel operator `id`. The
    /// other members (the target included) see it; the caller echoes it to `id`.
    pub fn kick(
        &mut self,
        id: ConnId,
        name: &str,
        target: &str,
        reason: &str,
        now: Millis,
    ) -> Result<(), HubError> {
        let key = casefold(name);
        let u = self.users.get(&id).ok_or(HubError::NoPrivileges)?;
        let ch = self
            .channels
            .get(&key)
            .ok_or_else(|| HubError::NoSuchChannel(name.to_string()))?;
        policy::is_chanop(ch, ch.member(id))?;
        let t = self
            .nicks
            .get(&casefold(target), &self.users)
            .and_then(|id| self.users.get(&id))
            .ok_or_else(|| HubError::NoSuchNick(target.to_string()))?;
        if ch.member(t.id).is_none() {
            return Err(HubError::UserNotInChannel(
                ch.name.clone(),
                t.nick().to_string(),
            ));
        }
        let reason = truncate_bytes(reason, self.cfg.limits.kick_length);
        let ev = Event::Kick {
            by: u,
            channel: &ch.name,
            target: t.nick(),
            reason,
            time: now,
        };
        fanout(ch.peers_except(id), &ev, &mut self.sink);
        let tid = t.id;
        self.leave(tid, &key);
        self.settle();
        Ok(())
    }

    /// Sends an event to every member of a channel but `except` (whose
    /// dialect echoes it itself, inside its reply to the command).
    pub fn channel_event(&mut self, ch_key: &str, except: ConnId, ev: &Event<'_>) {
        if let Some(ch) = self.channels.get(ch_key) {
            fanout(ch.peers_except(except), ev, &mut self.sink);
        }
        self.settle();
    }

    /// Sets or clears `id`'s away message; users sharing a channel with
    /// away-notify are told.
    pub fn set_away(&mut self, id: ConnId, text: Option<&str>, now: Millis) {
        let Some(u) = self.users.get_mut(&id) else {
            return;
        };
        u.edit_extra(|e| e.away = text.map(str::to_string));
        let peers = self.neighbours(id);
        if let Some(u) = self.users.get(&id) {
            let ev = Event::Away {
                who: u,
                text,
                time: now,
            };
            fanout(peers.iter(), &ev, &mut self.sink);
        }
        self.settle();
    }

    /// Changes `id`'s real name; users sharing a channel with setname are told.
    pub fn set_realname(&mut self, id: ConnId, realname: &str, now: Millis) {
        let Some(u) = self.users.get_mut(&id) else {
            return;
        };
        u.set_realname(realname);
        let peers = self.neighbours(id);
        if let Some(u) = self.users.get(&id) {
            let ev = Event::Setname {
                who: u,
                realname,
                time: now,
            };
            fanout(peers.iter(), &ev, &mut self.sink);
        }
        self.settle();
    }

    /// Sends an event to every registered user matching `filter`.
    pub fn broadcast(&mut self, ev: &Event<'_>, filter: impl Fn(&User) -> bool) {
        let peers: Vec<_> = self
            .users
            .values()
            .filter(|u| u.registered && filter(u))
            .map(|u| u.peer.clone())
            .collect();
        fanout(peers.iter(), ev, &mut self.sink);
        self.settle();
    }

    /// Tells every connection the server is going down and closes their
    /// queues (each connection then has a short time to flush), now and for
    /// any connection joining later.
    pub fn shutdown(&mut self, text: &str) {
        for u in self.users.values() {
            u.peer.send_event(&Event::Shutdown { text });
            u.peer.out.shut_down();
        }
        self.shutdown = Some(text.into());
    }

    /// Adds `id` as a watcher of `nick` (MONITOR). Returns false past the limit.
    pub fn monitor_add(&mut self, id: ConnId, nick_key: &str) -> bool {
        let limit = self.cfg.limits.monitor;
        let Some(u) = self.users.get_mut(&id) else {
            return false;
        };
        if u.monitoring().iter().any(|k| k == nick_key) {
            return true;
        }
        if u.monitoring().len() >= limit {
            return false;
        }
        u.edit_extra(|e| e.monitoring.push(nick_key.to_string()));
        self.watchers
            .entry(nick_key.to_string())
            .or_default()
            .push(id);
        true
    }

    /// Removes `nick` from `id`'s MONITOR list (or everything with `None`).
    pub fn monitor_remove(&mut self, id: ConnId, nick_key: Option<&str>) {
        let Some(u) = self.users.get_mut(&id) else {
            return;
        };
        let removed: Vec<String> = match nick_key {
            Some(k) => {
                u.edit_extra(|e| e.monitoring.retain(|x| x != k));
                vec![k.to_string()]
            }
            None => u.edit_extra(|e| std::mem::take(&mut e.monitoring)),
        };
        for k in removed {
            if let Some(w) = self.watchers.get_mut(&k) {
                w.retain(|&x| x != id);
                if w.is_empty() {
                    self.watchers.remove(&k);
                }
            }
        }
    }

    fn notify_watchers(&mut self, nick_key: &str, online: bool) {
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
                u.peer.send_event(&Event::Monitor {
                    server: &self.cfg.server_name,
                    to: u.nick(),
                    online,
                    who: &who,
                });
            }
        }
    }
}

impl Hub {
    /// Checks the hub's internal consistency: every index agrees with the
    /// data it indexes. For tests and fuzzing; O(size of the hub).
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
            if u.nick_key() != casefold(u.nick()) {
                return Err(format!("user {id} ({}) has a wrong nick key", u.nick()));
            }
            let n = &u.names;
            if n.folded != 0 && n.key() == n.nick() {
                return Err(format!("user {id} ({}) stores its nick twice", u.nick()));
            }
            if !u.nick_key().is_empty() && self.nicks.get(u.nick_key(), &self.users) != Some(*id) {
                return Err(format!(
                    "user {id} ({}) is not indexed by its nick",
                    u.nick()
                ));
            }
            if u.extra.as_ref().is_some_and(|e| e.is_empty()) {
                return Err(format!("user {id} keeps an empty extra box"));
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

/// What [`Hub::message`] reports to the sender's dialect.
#[derive(Clone, Debug, Default)]
pub struct MessageSent {
    pub msgid: u64,
    /// The recipient's nick as displayed, for a private message; empty for
    /// a channel message (most need no name back: the few that do, echoes,
    /// look the channel up rather than every message copying its name).
    pub target: String,
    /// The recipient's away message, for a private message.
    pub away: Option<String>,
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

/// The wall clock in milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
