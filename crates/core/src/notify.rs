//! What the network tells the world: a [`Notification`] is an owned,
//! protocol-neutral value (an [`Audience`] and an [`Event`]) that delivery
//! turns into bytes for each local connection, and that could as well be
//! stored (history) or sent to another node.

use std::sync::Arc;

use crate::ids::{ConnId, MsgId};

/// Milliseconds since the Unix epoch: the network's notion of "now".
pub type Millis = u64;

/// Who did something, as others see them: `nick!user@host`, the account
/// it is logged in to, and the flags that change how its messages are shown.
/// Cheap to clone: a user who speaks keeps one, and every message it sends
/// shares it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Source {
    /// `nick!user@host`, then the account name, if any: one shared string,
    /// so that carrying the account (for account-tag and extended-join)
    /// costs no pointer of its own in every event.
    text: Arc<str>,
    nick_len: u16,
    /// Where the prefix ends and the account begins.
    prefix_len: u16,
    /// Bot mode (`+B`): IRC messages carry the `bot` tag.
    pub bot: bool,
}

impl Source {
    /// A source from its parts.
    pub fn new(nick: &str, user: &str, host: &str, bot: bool) -> Source {
        Source::from_prefix(&format!("{nick}!{user}@{host}"), bot)
    }

    /// A source from a whole `nick!user@host` (or a bare nick).
    pub fn from_prefix(prefix: &str, bot: bool) -> Source {
        let nick_len = prefix.find('!').unwrap_or(prefix.len());
        Source::shared(Arc::from(prefix), nick_len, prefix.len(), bot)
    }

    /// A source around a text that is already shared: the prefix is its
    /// first `prefix_len` bytes (the nick its first `nick_len`), the
    /// account the rest.
    pub fn shared(text: Arc<str>, nick_len: usize, prefix_len: usize, bot: bool) -> Source {
        let cut = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
        Source {
            nick_len: cut(nick_len),
            prefix_len: cut(prefix_len.min(text.len())),
            text,
            bot,
        }
    }

    /// `nick!user@host`.
    pub fn prefix(&self) -> &str {
        self.text
            .get(..self.prefix_len as usize)
            .unwrap_or(&self.text)
    }

    pub fn nick(&self) -> &str {
        self.text
            .get(..self.nick_len as usize)
            .unwrap_or(&self.text)
    }

    /// The account the user is logged in to, if any.
    pub fn account(&self) -> Option<&str> {
        self.text
            .get(self.prefix_len as usize..)
            .filter(|a| !a.is_empty())
    }
}

/// Kind of a chat message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MsgKind {
    Privmsg,
    Notice,
    /// Tags and no text (IRCv3 TAGMSG).
    Tagmsg,
}

/// One line of a client `draft/multiline` batch.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MultilinePart {
    pub text: String,
    /// `draft/multiline-concat`: continues the previous line without a break.
    pub concat: bool,
}

/// The logical text of a multiline message: lines joined by `\n`, but a
/// concat line continues the previous one.
pub fn join_parts(parts: &[MultilinePart]) -> String {
    let mut text = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 && !p.concat {
            text.push('\n');
        }
        text.push_str(&p.text);
    }
    text
}

/// Something that happened.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    /// A chat message to a channel or to one user.
    Message {
        from: Source,
        /// The channel's name, or the recipient's nick.
        target: Arc<str>,
        to_channel: bool,
        text: String,
        kind: MsgKind,
        /// Client-only tags (`+key=value`), escaped, without `@` or `;` ends.
        client_tags: String,
        time: Millis,
        msgid: MsgId,
        /// The lines of a `draft/multiline` batch as the client sent them
        /// (empty otherwise); `text` is their logical join.
        parts: Vec<MultilinePart>,
    },
    Join {
        who: Source,
        id: ConnId,
        channel: String,
        /// For IRCv3 extended-join.
        realname: String,
        /// The automatic join of a `line` user that just connected.
        on_connect: bool,
        time: Millis,
        /// Its id, as history keeps it (`draft/event-playback`).
        msgid: MsgId,
    },
    Part {
        who: Source,
        id: ConnId,
        channel: String,
        reason: String,
        time: Millis,
        /// Its id, as history keeps it (`draft/event-playback`).
        msgid: MsgId,
    },
    Quit {
        who: Source,
        id: ConnId,
        reason: String,
        time: Millis,
        /// Its id, as history keeps it (`draft/event-playback`).
        msgid: MsgId,
    },
    /// `who` is the user under its old nick.
    Nick {
        who: Source,
        new: String,
        time: Millis,
        /// Its id, as history keeps it (`draft/event-playback`).
        msgid: MsgId,
    },
    Kick {
        by: Source,
        channel: String,
        target: String,
        target_id: ConnId,
        reason: String,
        time: Millis,
        /// Its id, as history keeps it (`draft/event-playback`).
        msgid: MsgId,
    },
    Topic {
        by: Source,
        channel: String,
        text: String,
        time: Millis,
        /// Its id, as history keeps it (`draft/event-playback`).
        msgid: MsgId,
    },
    /// Channel mode changes in wire form (`+o-v alice bob`).
    Mode {
        by: Source,
        channel: String,
        changes: String,
        time: Millis,
        /// Its id, as history keeps it (`draft/event-playback`).
        msgid: MsgId,
    },
    Invite {
        by: Source,
        target: String,
        channel: String,
        /// A copy for the channel's other operators (IRCv3 invite-notify),
        /// shown only to connections that asked for it.
        notify: bool,
        time: Millis,
    },
    Away {
        who: Source,
        text: Option<String>,
        time: Millis,
    },
    Wallops {
        from: Source,
        text: String,
        time: Millis,
    },
    /// The recipient is being disconnected by an operator.
    Kill {
        by: Source,
        target: String,
        reason: String,
        time: Millis,
    },
    /// A user logged in to an account (`Some`) or out (IRCv3 account-notify).
    Account {
        who: Source,
        account: Option<String>,
        time: Millis,
    },
    /// Real name change (IRCv3 setname).
    Setname {
        who: Source,
        realname: String,
        time: Millis,
    },
    /// A nick on the recipient's MONITOR list came online (`who` is its
    /// prefix) or went offline (`who` is its nick).
    Monitor {
        server: String,
        /// The watcher's nick.
        to: String,
        online: bool,
        who: String,
    },
    /// A channel was renamed (IRCv3 `draft/channel-rename`). One copy with
    /// no `to` goes to the channel: clients with the capability see
    /// `RENAME`, `line` users a notice. Then each member gets a copy `to`
    /// it: IRC clients without the capability see it leave the old name
    /// and join the new one, with the new name's topic and names.
    Rename {
        by: Source,
        old: String,
        new: String,
        /// Casefolded names: delivery moves the channel's room.
        old_key: String,
        new_key: String,
        reason: String,
        time: Millis,
        /// The member this copy is for, and the channel as it shows it.
        to: Option<Box<RenameFallback>>,
    },
    /// A message was redacted (IRCv3 `draft/message-redaction`).
    Redact {
        by: Source,
        /// The channel, or the nick the private message went to.
        target: String,
        to_channel: bool,
        msgid: String,
        reason: Option<String>,
        /// The redacted message's sender, by its current nick.
        author: String,
        time: Millis,
    },
    /// A metadata key of a user or a channel changed (IRCv3
    /// `draft/metadata-3`): `RPL_KEYVALUE`, or `RPL_KEYNOTSET` when removed.
    Metadata {
        server: String,
        target: String,
        key: String,
        value: Option<String>,
    },
    /// The server is going down.
    Shutdown { text: String },
    /// Another connection of the same account moved a read marker (IRCv3
    /// `draft/read-marker`): `MARKREAD <target> timestamp=<at>`.
    ReadMarker {
        server: String,
        target: String,
        at: Millis,
    },
    /// An event about a user (its AWAY, its SETNAME) for the users who
    /// MONITOR it and share no channel with it: IRCv3 extended-monitor
    /// shows it to those that asked, as if they shared a channel.
    Watched(Box<Event>),
}

/// What an IRC client without `draft/channel-rename` is shown of a renamed
/// channel: itself leaving and joining, then the channel's topic and names.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RenameFallback {
    /// The member's `nick!user@host` and real name (for extended-join).
    pub member: Source,
    pub realname: String,
    pub server: String,
    /// Shared by every member's copy.
    pub view: std::sync::Arc<ChannelView>,
}

/// A channel's topic and members, as a JOIN greeting shows them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChannelView {
    /// `=`, `@` (secret) or `*` (private), for 353.
    pub symbol: char,
    /// Text, who set it, when (Unix seconds).
    pub topic: Option<(String, String, u64)>,
    /// Each member's `nick!user@host`, operator and voice status.
    pub members: Vec<(Source, bool, bool)>,
}

/// Who should see an event. Channel audiences are resolved by delivery
/// against its own view of who is in a channel *before* the event changes
/// it: the members a PART or KICK leaves, a JOIN does not reach yet.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Audience {
    /// The members of the channel with this (casefolded) key, but one.
    Channel {
        key: Arc<str>,
        except: Option<ConnId>,
    },
    /// Everyone sharing one of these channels, once each, but one.
    Channels {
        keys: Vec<String>,
        except: Option<ConnId>,
    },
    User(ConnId),
    Users(Vec<ConnId>),
    Everyone,
}

/// An event and its audience.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notification {
    pub audience: Audience,
    pub event: Event,
}
