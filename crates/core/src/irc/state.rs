//! What one IRC connection remembers between lines: capabilities,
//! registration, a client batch under way, a command waiting on an effect.

use std::time::{Duration, Instant};

use super::commands::Pending;
use super::commands::sasl::Exchange;
use crate::config::CoreConfig;
use crate::ids::ConnId;
use crate::notify::MultilinePart;
use crate::oper::OperGate;

/// IRCv3 capability bits a connection negotiated; they change how events
/// render (delivery hands them to [`super::render::IrcDialect`]).
pub mod cap {
    pub const SERVER_TIME: u32 = 1 << 0;
    pub const MESSAGE_TAGS: u32 = 1 << 1;
    pub const ECHO_MESSAGE: u32 = 1 << 2;
    pub const MULTI_PREFIX: u32 = 1 << 3;
    pub const EXTENDED_JOIN: u32 = 1 << 4;
    pub const AWAY_NOTIFY: u32 = 1 << 5;
    pub const EXTENDED_MONITOR: u32 = 1 << 6;
    pub const CHANNEL_RENAME: u32 = 1 << 7;
    pub const READ_MARKER: u32 = 1 << 8;
    pub const SETNAME: u32 = 1 << 9;
    pub const INVITE_NOTIFY: u32 = 1 << 10;
    pub const USERHOST_IN_NAMES: u32 = 1 << 11;
    pub const BATCH: u32 = 1 << 12;
    pub const LABELED_RESPONSE: u32 = 1 << 13;
    pub const CAP_NOTIFY: u32 = 1 << 14;
    pub const MULTILINE: u32 = 1 << 15;
    pub const STANDARD_REPLIES: u32 = 1 << 16;
    pub const MESSAGE_REDACTION: u32 = 1 << 17;
    pub const METADATA: u32 = 1 << 18;
    pub const CHATHISTORY: u32 = 1 << 19;
    pub const SASL: u32 = 1 << 20;
    pub const ACCOUNT_NOTIFY: u32 = 1 << 21;
    pub const ACCOUNT_TAG: u32 = 1 << 22;
    pub const ACCOUNT_REGISTRATION: u32 = 1 << 23;
    pub const EVENT_PLAYBACK: u32 = 1 << 24;
}

/// Capabilities we advertise, with their bit and `CAP LS 302` value.
pub const CAPS: &[(&str, u32, &str)] = &[
    ("account-notify", cap::ACCOUNT_NOTIFY, ""),
    ("account-tag", cap::ACCOUNT_TAG, ""),
    ("away-notify", cap::AWAY_NOTIFY, ""),
    ("batch", cap::BATCH, ""),
    ("cap-notify", cap::CAP_NOTIFY, ""),
    // Its value comes from the configuration (see `conn::cap_value`).
    ("draft/account-registration", cap::ACCOUNT_REGISTRATION, ""),
    ("draft/channel-rename", cap::CHANNEL_RENAME, ""),
    // Offered only when history is kept (`conn::offered`).
    ("draft/chathistory", cap::CHATHISTORY, ""),
    // Offered only when history is kept (`conn::offered`).
    ("draft/event-playback", cap::EVENT_PLAYBACK, ""),
    ("draft/message-redaction", cap::MESSAGE_REDACTION, ""),
    // Its value comes from the configuration (see `conn::cap_value`).
    ("draft/metadata-3", cap::METADATA, ""),
    (
        "draft/multiline",
        cap::MULTILINE,
        "max-bytes=4096,max-lines=32",
    ),
    ("draft/read-marker", cap::READ_MARKER, ""),
    ("echo-message", cap::ECHO_MESSAGE, ""),
    ("extended-join", cap::EXTENDED_JOIN, ""),
    ("extended-monitor", cap::EXTENDED_MONITOR, ""),
    ("invite-notify", cap::INVITE_NOTIFY, ""),
    ("labeled-response", cap::LABELED_RESPONSE, ""),
    ("message-tags", cap::MESSAGE_TAGS, ""),
    ("multi-prefix", cap::MULTI_PREFIX, ""),
    ("sasl", cap::SASL, "PLAIN,EXTERNAL,SCRAM-SHA-256"),
    ("server-time", cap::SERVER_TIME, ""),
    ("setname", cap::SETNAME, ""),
    ("standard-replies", cap::STANDARD_REPLIES, ""),
    ("userhost-in-names", cap::USERHOST_IN_NAMES, ""),
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
    pub parts: Vec<MultilinePart>,
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
    /// The nick last asked for with NICK, even if taken: `REGISTER *`
    /// before a nick was granted names the account after it.
    pub wanted_nick: Option<String>,
    /// A PASS was checked: later ones are ignored. Each check costs tens of
    /// milliseconds of CPU (argon2), so checking every PASS line would let one
    /// client keep the server busy hashing.
    pub pass_checked: bool,
}

/// Per-connection IRC state that the network does not need to know.
///
/// Every connection holds one for its whole life, so what only registration
/// or rare commands need is boxed and absent the rest of the time.
pub struct IrcState {
    pub id: ConnId,
    /// The capabilities negotiated ([`cap`] bits).
    pub caps: u32,
    /// `None` once registered.
    pub registration: Option<Box<Registration>>,
    /// Version from `CAP LS <version>` (302 is the latest).
    pub cap_version: u16,
    /// The user is an operator, whom flood control spares: cached by the
    /// connection after each command (here, it fits beside `cap_version`).
    pub flood_exempt: bool,
    pub oper: OperGate,
    /// Boxed: rare, and inline it would grow every IRC connection. Kept,
    /// emptied, after a FAIL (see [`InBatch::dead`]).
    pub batch: Option<Box<InBatch>>,
    /// What a connection holds only for a while: a command waiting on an
    /// effect, a SASL exchange. One box for both, absent the rest of the
    /// time, keeps every connection's session in its allocator class.
    aside: Option<Box<Aside>>,
}

/// See [`IrcState::aside`].
#[derive(Debug, Default)]
struct Aside {
    pending: Option<Pending>,
    sasl: Option<Exchange>,
    /// Nick protection: the protected nick being looked up or in its grace.
    guard: Option<crate::protect::Guard>,
}

impl IrcState {
    /// A connection that must register by `now` plus the registration timeout.
    pub fn new(id: ConnId, cfg: &CoreConfig, now: Instant) -> IrcState {
        let registration = Registration {
            by: now + Duration::from_secs(cfg.limits.registration_timeout),
            user: None,
            negotiating: false,
            pass_ok: !cfg.password_required,
            wanted_nick: None,
            pass_checked: false,
        };
        IrcState {
            id,
            caps: 0,
            registration: Some(Box::new(registration)),
            cap_version: 0,
            flood_exempt: false,
            oper: OperGate::default(),
            batch: None,
            aside: None,
        }
    }

    /// The connection's id.
    pub fn id(&self) -> ConnId {
        self.id
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

    /// Changes what is held aside; the box goes once it holds nothing.
    fn edit_aside<T>(&mut self, f: impl FnOnce(&mut Aside) -> T) -> T {
        let aside = self.aside.get_or_insert_with(Box::default);
        let out = f(aside);
        if aside.pending.is_none() && aside.sasl.is_none() && aside.guard.is_none() {
            self.aside = None;
        }
        out
    }

    /// Keeps a command waiting on an effect.
    pub fn set_pending(&mut self, p: Pending) {
        self.edit_aside(|a| a.pending = Some(p));
    }

    /// Whether a command waits on an effect.
    pub fn has_pending(&self) -> bool {
        self.aside.as_ref().is_some_and(|a| a.pending.is_some())
    }

    /// The command waiting on an effect, if any.
    pub fn take_pending(&mut self) -> Option<Pending> {
        self.aside.as_ref()?.pending.as_ref()?;
        self.edit_aside(|a| a.pending.take())
    }

    /// Nick protection's guard, if a lookup or a grace is under way.
    pub fn guard(&self) -> Option<&crate::protect::Guard> {
        self.aside.as_ref()?.guard.as_ref()
    }

    /// Runs `f` on nick protection's guard.
    pub fn edit_guard<T>(&mut self, f: impl FnOnce(&mut Option<crate::protect::Guard>) -> T) -> T {
        self.edit_aside(|a| f(&mut a.guard))
    }

    /// The SASL exchange under way.
    pub fn sasl_mut(&mut self) -> Option<&mut Exchange> {
        self.aside.as_mut()?.sasl.as_mut()
    }

    /// Starts or ends (`None`) a SASL exchange; the one ended, if any.
    pub fn set_sasl(&mut self, sasl: Option<Exchange>) -> Option<Exchange> {
        if sasl.is_none() && self.aside.as_ref().is_none_or(|a| a.sasl.is_none()) {
            return None;
        }
        self.edit_aside(|a| std::mem::replace(&mut a.sasl, sasl))
    }
}
