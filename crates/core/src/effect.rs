//! IO a command needs, as values: the core asks, the server runs it off the
//! core (a password hash on a blocking thread, a registry, a store) and feeds
//! the answer back to the session that asked ([`crate::Session::resume`]).
//! While a session waits, its connection's later input waits too, so each
//! client's order (and labeled-response) holds.

use crate::ids::{ConnId, MsgId};
use crate::notify::Millis;
use crate::store::{Range, Stored};

/// Something the core needs done outside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Check the IRC connection password (PASS). Answered by [`Outcome::Verified`].
    CheckServerPassword { password: String },
    /// Check an operator's name and password (OPER). [`Outcome::Verified`].
    CheckOper { name: String, password: String },
    /// Claim a casefolded nick in the name registry for `owner`.
    /// [`Outcome::Claimed`]: false when someone else holds it.
    ClaimNick { key: String, owner: ConnId },
    /// Give a nick back; nobody waits for this one.
    ReleaseNick { key: String, owner: ConnId },
    /// Give back whatever `owner` still holds (its connection ended, maybe
    /// with a claim under way); nobody waits for this one.
    ReleaseOwner { owner: ConnId },
    /// Found the channel with this casefolded key: [`Outcome::Claimed`] is
    /// true for its founder, false when it already exists.
    FoundChannel { key: String },
    /// The channel emptied; nobody waits for this one.
    DropChannel { key: String },
    /// Store a message in its conversation's history, which keeps its last
    /// `keep`; nobody waits for this one.
    AppendHistory { stored: Box<Stored>, keep: usize },
    /// Read a conversation's history: [`Outcome::History`].
    ReadHistory { target: String, range: Range },
    /// Of these conversations, those whose latest message is between two
    /// times, at most `limit`: [`Outcome::Targets`].
    HistoryTargets {
        targets: Vec<String>,
        from: Millis,
        to: Millis,
        limit: usize,
    },
    /// A redacted message leaves its history; nobody waits for this one.
    RedactHistory { target: String, msgid: MsgId },
    /// A channel is gone, and its history with it; nobody waits for this one.
    ForgetHistory { target: String },
}

/// The answer to an [`Effect`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Verified(bool),
    Claimed(bool),
    /// For effects nobody waits on.
    Done,
    /// The messages read, oldest first.
    History(Vec<Stored>),
    /// Conversations and the time of their latest message.
    Targets(Vec<(String, Millis)>),
    /// The effect could not run (a store unreachable...): the command fails
    /// with this text.
    Failed(String),
}
