//! IO a command needs, as values: the core asks, the server runs it off the
//! core (a password hash on a blocking thread, a registry, a store) and feeds
//! the answer back to the session that asked ([`crate::Session::resume`]).
//! While a session waits, its connection's later input waits too, so each
//! client's order (and labeled-response) holds.

use crate::ids::ConnId;

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
}

/// The answer to an [`Effect`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Verified(bool),
    Claimed(bool),
    /// For effects nobody waits on.
    Done,
    /// The effect could not run (a store unreachable...): the command fails
    /// with this text.
    Failed(String),
}
