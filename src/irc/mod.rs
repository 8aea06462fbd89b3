//! The `irc` dialect: the IRC client protocol (Modern IRC, RFC 1459/2812 where
//! it is silent) and IRCv3 capabilities, on the shared hub.
//!
//! - [`message`], [`mask`]: parsing and serialising lines, wildcard masks.
//! - [`numeric`], [`reply`]: named numerics; the per-command [`reply::Responder`].
//! - [`render`]: how hub events look to IRC clients.
//! - [`commands`]: the command table and the handlers, one file per family.

pub mod commands;
pub mod render;
pub use bavard_proto::{mask, message, numeric};
pub mod reply;

use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// Abandoned after a FAIL: its remaining lines and its end are dropped
    /// quietly instead of failing once per line.
    pub dead: bool,
}

/// What registration still needs; dropped once the client is registered.
#[derive(Debug)]
pub struct Registration {
    /// Registration must complete before this instant.
    pub by: Instant,
    /// USER parameters once given: (username, realname).
    pub user: Option<(String, String)>,
    /// CAP LS/REQ seen and no CAP END yet.
    pub negotiating: bool,
    /// PASS was given and matched (or no password is configured).
    pub pass_ok: bool,
    /// A PASS was checked: later ones are ignored. Each check costs tens of
    /// milliseconds of CPU (argon2), so checking every PASS line would let one
    /// client keep the server busy hashing.
    pub pass_checked: bool,
}

/// Per-connection IRC state that the hub does not need to know.
///
/// Every connection holds one for its whole life, so what only registration
/// or rare commands need is boxed and absent the rest of the time.
pub struct IrcState {
    pub peer: Arc<Peer>,
    /// `None` once registered.
    pub registration: Option<Box<Registration>>,
    /// Version from `CAP LS <version>`.
    pub cap_version: u32,
    /// The user is an operator, whom flood control spares: cached by the
    /// connection after each command (here, it fits beside `cap_version`).
    pub flood_exempt: bool,
    pub oper: OperGate,
    /// Boxed: rare, and inline it would grow every IRC connection. Kept,
    /// emptied, after a FAIL (see [`InBatch::dead`]).
    pub batch: Option<Box<InBatch>>,
}

impl IrcState {
    /// A connection that must register by `now` plus the registration timeout.
    pub fn new(peer: Arc<Peer>, cfg: &Config, now: Instant) -> IrcState {
        let registration = Registration {
            by: now + Duration::from_secs(cfg.limits.registration_timeout),
            user: None,
            negotiating: false,
            pass_ok: cfg.password.is_none(),
            pass_checked: false,
        };
        IrcState {
            peer,
            registration: Some(Box::new(registration)),
            cap_version: 0,
            flood_exempt: false,
            oper: OperGate::default(),
            batch: None,
        }
    }

    /// The connection's id (its peer's).
    pub fn id(&self) -> ConnId {
        self.peer.id
    }

    /// The batch being received, unless abandoned.
    pub fn open_batch(&self) -> Option<&InBatch> {
        self.batch.as_deref().filter(|b| !b.dead)
    }

    /// Whether `id` names the abandoned batch.
    pub fn is_dead_batch(&self, id: &str) -> bool {
        self.batch.as_ref().is_some_and(|b| b.dead && b.id == id)
    }

    pub fn registered(&self) -> bool {
        self.registration.is_none()
    }
}
