//! A channel: its members, modes, lists and topic.

use crate::ids::ConnId;

/// A channel member.
#[derive(Debug)]
pub struct Member {
    pub id: ConnId,
    pub op: bool,
    pub voice: bool,
}

/// Channel modes with no list.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChanModes {
    pub invite_only: bool,
    pub moderated: bool,
    pub no_external: bool,
    pub topic_lock: bool,
    pub secret: bool,
    pub private: bool,
    /// `+C`: no CTCP but ACTION.
    pub no_ctcp: bool,
    /// `+R`: only users logged in to an account may join.
    pub registered_only: bool,
    /// `+M`: only users logged in to an account (or voiced) may speak.
    pub registered_speak: bool,
    /// `+W`: no history played to those who join (`history.playback_on_join`).
    pub no_playback: bool,
    pub key: Option<String>,
    pub limit: Option<usize>,
}

/// An entry of a ban, exception or invite-exception list.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListEntry {
    pub mask: String,
    pub set_by: String,
    pub set_at: u64,
}

/// A channel topic.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Topic {
    pub text: String,
    pub set_by: String,
    pub set_at: u64,
}

/// A channel.
#[derive(Debug)]
pub struct Channel {
    /// Shared with the notifications that name the channel (its messages).
    pub name: std::sync::Arc<str>,
    pub key: std::sync::Arc<str>,
    /// Unique for the network's life, unlike the name (which a rename
    /// changes and a later channel may take): what remembered messages
    /// point at.
    pub serial: u64,
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
    /// draft/metadata-3, set by its operators.
    pub metadata: super::metadata::Metadata,
}

impl Channel {
    /// A new channel: `+nt`, no members yet.
    pub fn new(name: &crate::names::ChannelName, created: u64) -> Channel {
        Channel {
            name: name.as_str().into(),
            key: name.key().into(),
            serial: 0,
            created,
            topic: None,
            members: Vec::new(),
            modes: ChanModes {
                no_external: true,
                topic_lock: true,
                ..ChanModes::default()
            },
            bans: Vec::new(),
            excepts: Vec::new(),
            invex: Vec::new(),
            permanent: false,
            metadata: Default::default(),
        }
    }

    pub fn member(&self, id: ConnId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub fn member_mut(&mut self, id: ConnId) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }
}
