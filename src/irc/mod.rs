//! The `irc` dialect: the IRC client protocol (Modern IRC, RFC 1459/2812 where
//! it is silent) and IRCv3 capabilities, on the shared hub.
//!
//! - [`message`], [`mask`]: parsing and serialising lines, wildcard masks.
//! - [`numeric`], [`reply`]: named numerics; the per-command [`reply::Responder`].
//! - [`render`]: how hub events look to IRC clients.
//! - [`commands`]: the command table and the handlers, one file per family.

pub mod commands;
pub mod mask;
pub mod message;
pub mod numeric;
pub mod render;
pub mod reply;

use std::sync::Arc;

use crate::config::Config;
use crate::hub::{ConnId, Peer};
use crate::oper::OperGate;

/// Capabilities we advertise, with their bit and `CAP LS 302` value.
pub const CAPS: &[(&str, u32, &str)] = &[
    ("away-notify", crate::hub::cap::AWAY_NOTIFY, ""),
    ("batch", crate::hub::cap::BATCH, ""),
    ("cap-notify", crate::hub::cap::CAP_NOTIFY, ""),
    (
        "draft/multiline",
        crate::hub::cap::MULTILINE,
        "max-bytes=4096,max-lines=32",
    ),
    ("echo-message", crate::hub::cap::ECHO_MESSAGE, ""),
    ("extended-join", crate::hub::cap::EXTENDED_JOIN, ""),
    ("invite-notify", crate::hub::cap::INVITE_NOTIFY, ""),
    ("labeled-response", crate::hub::cap::LABELED_RESPONSE, ""),
    ("message-tags", crate::hub::cap::MESSAGE_TAGS, ""),
    ("multi-prefix", crate::hub::cap::MULTI_PREFIX, ""),
    ("server-time", crate::hub::cap::SERVER_TIME, ""),
    ("setname", crate::hub::cap::SETNAME, ""),
    ("standard-replies", crate::hub::cap::STANDARD_REPLIES, ""),
    ("userhost-in-names", crate::hub::cap::USERHOST_IN_NAMES, ""),
];

/// Multiline limits advertised above.
pub const MULTILINE_MAX_BYTES: usize = 4096;
pub const MULTILINE_MAX_LINES: usize = 32;

/// A `draft/multiline` batch being received from the client.
#[derive(Debug)]
pub struct InBatch {
    pub id: String,
    pub target: String,
    /// The label of the opening `BATCH +`: labeled-response puts it on the
    /// reply to the whole batch (the echo), not on an ACK of the opening line.
    pub label: Option<String>,
    /// Client-only tags of the opening `BATCH +`, relayed with the message.
    pub client_tags: String,
    pub parts: Vec<crate::hub::MultilinePart>,
    /// Some line was a NOTICE: the whole message is one.
    pub notice: bool,
    /// Bytes of text received so far.
    pub bytes: usize,
}

/// Per-connection IRC state that the hub does not need to know.
pub struct IrcState {
    pub id: ConnId,
    pub peer: Arc<Peer>,
    pub cfg: Arc<Config>,
    pub registered: bool,
    /// USER parameters once given: (username, realname).
    pub user: Option<(String, String)>,
    /// CAP LS/REQ seen before registration and no CAP END yet.
    pub negotiating: bool,
    /// Version from `CAP LS <version>`.
    pub cap_version: u32,
    /// PASS was given and matched (or no password is configured).
    pub pass_ok: bool,
    pub oper: OperGate,
    /// Boxed: rare, and inline it would grow every IRC connection.
    pub batch: Option<Box<InBatch>>,
    /// Reference of a batch abandoned after a FAIL: its remaining lines and
    /// its end are dropped quietly instead of failing once per line.
    pub dead_batch: Option<String>,
}

impl IrcState {
    pub fn new(id: ConnId, peer: Arc<Peer>, cfg: Arc<Config>) -> IrcState {
        let pass_ok = cfg.password.is_none();
        IrcState {
            id,
            peer,
            cfg,
            registered: false,
            user: None,
            negotiating: false,
            cap_version: 0,
            pass_ok,
            oper: OperGate::default(),
            batch: None,
            dead_batch: None,
        }
    }
}
