//! IO a command needs, as values: the core asks, the server runs it off the
//! core (a password hash on a blocking thread, a registry, a store) and feeds
//! the answer back to the session that asked ([`crate::Session::resume`]).
//! While a session waits, its connection's later input waits too, so each
//! client's order (and labeled-response) holds.

use crate::ids::{ConnId, MsgId};
use crate::notify::Millis;
use crate::store::{Kinds, Marker, Range, Scram, Stored};

/// A password on its way to be checked or hashed: its `Debug` shows
/// nothing, so that no log of an effect ever holds one.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// What SCRAM needs of an account: its name as registered, its verifiers,
/// and a fresh nonce from the server (the core has no randomness).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramStart {
    pub account: String,
    pub scram: Scram,
    pub nonce: String,
}

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
    /// Read the events of a conversation's history that `kinds` admits:
    /// [`Outcome::History`].
    ReadHistory {
        target: String,
        range: Range,
        kinds: Kinds,
    },
    /// Of these conversations (and those whose key starts with `prefix`),
    /// those whose latest message is between two times, at most `limit`:
    /// [`Outcome::Targets`].
    HistoryTargets {
        targets: Vec<String>,
        prefix: Option<String>,
        from: Millis,
        to: Millis,
        limit: usize,
    },
    /// A redacted message leaves its history; nobody waits for this one.
    RedactHistory { target: String, msgid: MsgId },
    /// A channel is gone, and its history with it; nobody waits for this one.
    ForgetHistory { target: String },
    /// A channel was renamed, its history moves; nobody waits for this one.
    RenameHistory { from: String, to: String },
    /// An account's read marker moved: kept, the account keeping `keep`;
    /// nobody waits for this one.
    SaveReadMarker { marker: Marker, keep: usize },
    /// A channel was renamed (casefolded names): the accounts' read markers
    /// on it move; nobody waits for this one.
    RenameReadMarkers { from: String, to: String },
    /// An account was dropped, and its read markers with it; nobody waits
    /// for this one.
    ForgetReadMarkers { account: String },
    /// Check an account's password (SASL PLAIN): [`Outcome::Account`], with
    /// the account's name as registered when it matches.
    CheckAccount { account: String, password: Secret },
    /// The SCRAM-SHA-256 verifiers of an account: [`Outcome::Scram`].
    ScramLookup { account: String },
    /// The account a TLS client certificate belongs to (SASL EXTERNAL):
    /// [`Outcome::Account`].
    AccountByCert { certfp: String },
    /// Read the configuration file again and make it the running one
    /// (REHASH): [`Outcome::Done`], or [`Outcome::Failed`] with why not.
    Rehash,
    /// Register an account: the server derives the password's hash and
    /// SCRAM verifiers, then stores it. [`Outcome::Created`]: false when the
    /// name is taken.
    RegisterAccount {
        name: String,
        password: Secret,
        email: Option<String>,
        created: Millis,
    },
    /// What others may know of an account (NickServ INFO):
    /// [`Outcome::Info`].
    AccountInfo { account: String },
    /// Delete an account once its password is checked (NickServ DROP):
    /// [`Outcome::Account`], with its name when it was deleted.
    DropAccount { account: String, password: Secret },
    /// Replace an account's password (NickServ SET PASSWORD): the server
    /// derives a new hash and SCRAM verifiers. [`Outcome::Done`].
    SetPassword { account: String, password: Secret },
    /// Add or remove a TLS client certificate fingerprint of an account,
    /// or neither to list them (NickServ CERT): [`Outcome::Certs`].
    EditCerts {
        account: String,
        edit: Option<CertEdit>,
    },
}

/// A change to an account's certificate fingerprints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertEdit {
    Add(String),
    Del(String),
}

/// What NickServ INFO shows of an account (never its credentials).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountInfo {
    pub name: String,
    pub created: Millis,
    pub email: Option<String>,
}

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
    /// The account logged in to, as registered; `None`: no such account,
    /// or the wrong password.
    Account(Option<String>),
    /// `None`: no such account, or one without SCRAM verifiers.
    Scram(Option<Box<ScramStart>>),
    /// An account was registered (false: the name was taken).
    Created(bool),
    /// `None`: no such account.
    Info(Option<Box<AccountInfo>>),
    /// An account's certificate fingerprints after an edit; `None`: no such
    /// account, or a fingerprint added that belongs to another account.
    Certs(Option<Vec<String>>),
    /// The effect could not run (a store unreachable...): the command fails
    /// with this text.
    Failed(String),
}
