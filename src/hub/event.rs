//! What the hub tells connections, and how it is encoded once per dialect.
//!
//! An [`Event`] is what happened (a message, a join, a quit...). Each
//! connection has a [`Peer`]: its outgoing queue, its [`Dialect`] (which
//! encodes events into bytes) and its capability bits. Fan-out asks each
//! recipient's dialect for a *variant* key, encodes the event once per distinct
//! variant, and pushes the same shared [`Bytes`] to every recipient of that
//! variant.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use std::cell::RefCell;

use super::{ConnId, User};
use crate::outbox::{Appended, Arena, Closed, Outbox, Shared};

/// IRCv3 capability bits a connection negotiated; they change how events render.
pub mod cap {
    pub const SERVER_TIME: u32 = 1 << 0;
    pub const MESSAGE_TAGS: u32 = 1 << 1;
    pub const ECHO_MESSAGE: u32 = 1 << 2;
    pub const MULTI_PREFIX: u32 = 1 << 3;
    pub const EXTENDED_JOIN: u32 = 1 << 4;
    pub const AWAY_NOTIFY: u32 = 1 << 5;
    pub const SETNAME: u32 = 1 << 9;
    pub const INVITE_NOTIFY: u32 = 1 << 10;
    pub const USERHOST_IN_NAMES: u32 = 1 << 11;
    pub const BATCH: u32 = 1 << 12;
    pub const LABELED_RESPONSE: u32 = 1 << 13;
    pub const CAP_NOTIFY: u32 = 1 << 14;
    pub const MULTILINE: u32 = 1 << 15;
    pub const STANDARD_REPLIES: u32 = 1 << 16;
}

/// One line of a client `draft/multiline` batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultilinePart {
    pub text: String,
    /// `draft/multiline-concat`: joins the previous line with no line break.
    pub concat: bool,
}

/// The logical text of a multiline message: lines joined by `\n`, except
/// that a concat line continues the previous one.
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

/// Kind of a chat message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgKind {
    Privmsg,
    Notice,
    /// A message with tags and no text (IRCv3 TAGMSG).
    Tagmsg,
}

/// Something that happened, addressed to the connections that should see it.
#[derive(Debug)]
pub enum Event<'a> {
    /// A chat message to a channel or to one user.
    Message {
        from: &'a User,
        /// Channel name, or the recipient's nick for a private message.
        target: &'a str,
        /// True when `target` is a channel.
        to_channel: bool,
        text: &'a str,
        kind: MsgKind,
        /// Client-only tags (`+key=value`) already escaped, without `@` or `;` ends.
        client_tags: &'a str,
        time: u64,
        msgid: u64,
        /// The lines of a `draft/multiline` batch exactly as the client sent
        /// them (empty for an ordinary message). `text` is their logical
        /// join; IRC clients need the original lines to get the same batch
        /// back (multiline) or each non-blank line separately (fallback).
        parts: &'a [MultilinePart],
    },
    Join {
        who: &'a User,
        channel: &'a str,
        /// True for the automatic join of a `line` user that just connected.
        on_connect: bool,
        time: u64,
    },
    Part {
        who: &'a User,
        channel: &'a str,
        reason: &'a str,
        time: u64,
    },
    Quit {
        who: &'a User,
        reason: &'a str,
        time: u64,
    },
    Nick {
        who: &'a User,
        old_prefix: &'a str,
        new: &'a str,
        time: u64,
    },
    Kick {
        by: &'a User,
        channel: &'a str,
        target: &'a str,
        reason: &'a str,
        time: u64,
    },
    Topic {
        by: &'a User,
        channel: &'a str,
        text: &'a str,
        time: u64,
    },
    /// Channel mode changes, already in wire form (`+o-v alice bob`).
    Mode {
        by: &'a str,
        channel: &'a str,
        changes: &'a str,
        time: u64,
    },
    Invite {
        by: &'a User,
        target: &'a str,
        channel: &'a str,
        time: u64,
    },
    Away {
        who: &'a User,
        text: Option<&'a str>,
        time: u64,
    },
    Wallops {
        from: &'a str,
        text: &'a str,
        time: u64,
    },
    /// The recipient is being disconnected by an operator.
    Kill {
        by: &'a User,
        target: &'a str,
        reason: &'a str,
        time: u64,
    },
    /// Real name change (IRCv3 setname).
    Setname {
        who: &'a User,
        realname: &'a str,
        time: u64,
    },
    /// A nick on the recipient's MONITOR list came online (`who` is its
    /// prefix) or went offline (`who` is its nick).
    Monitor {
        server: &'a str,
        /// The watcher's nick.
        to: &'a str,
        online: bool,
        who: &'a str,
    },
    /// The server is going down.
    Shutdown { text: &'a str },
}

/// How one dialect encodes events.
pub trait Dialect: Send + Sync {
    /// Small number naming the dialect inside a fan-out's encoding cache.
    fn id(&self) -> u8;
    /// The variant of `ev` a connection with `caps` needs, or `None` when such a
    /// connection does not receive this event at all.
    fn variant(&self, ev: &Event<'_>, caps: u32) -> Option<u32>;
    /// Appends the wire form of `ev` in `variant` to `out`.
    fn encode(&self, ev: &Event<'_>, variant: u32, out: &mut Vec<u8>);
}

/// A dialect as a connection refers to it: a static holding the trait
/// object, so that every [`Peer`] holds a thin pointer (8 bytes, not 16:
/// that keeps `Arc<Peer>` in a smaller allocation class).
pub type DialectRef = &'static dyn Dialect;

/// A connection as the hub sees it.
pub struct Peer {
    pub id: ConnId,
    pub out: Outbox,
    pub dialect: &'static DialectRef,
    caps: AtomicU32,
}

impl Peer {
    pub fn new(id: ConnId, dialect: &'static DialectRef, send_queue: usize) -> Peer {
        Peer::with_outbox(id, dialect, Outbox::new(send_queue))
    }

    /// A peer around a given queue (the server's are counted in its
    /// congestion: [`Outbox::counted`]).
    pub fn with_outbox(id: ConnId, dialect: &'static DialectRef, out: Outbox) -> Peer {
        Peer {
            id,
            out,
            dialect,
            caps: AtomicU32::new(0),
        }
    }

    pub fn caps(&self) -> u32 {
        self.caps.load(Ordering::Relaxed)
    }

    pub fn set_caps(&self, caps: u32) {
        self.caps.store(caps, Ordering::Relaxed)
    }

    pub fn has_cap(&self, c: u32) -> bool {
        self.caps() & c != 0
    }

    /// Encodes `ev` for this one peer and queues it.
    pub fn send_event(&self, ev: &Event<'_>) -> bool {
        match self.dialect.variant(ev, self.caps()) {
            Some(v) => {
                let mut buf = Vec::with_capacity(128);
                self.dialect.encode(ev, v, &mut buf);
                self.out.push(&buf)
            }
            None => true,
        }
    }
}

/// Writers to wake once the current batch of input has been handled.
#[derive(Default)]
struct Deferred {
    /// A [`defer_wakeups`] guard is alive on this thread.
    active: bool,
    /// Fan-out queued something since the guard was taken.
    fed: bool,
    /// Kept between batches with its capacity: no allocation per batch.
    peers: Vec<Arc<Peer>>,
}

thread_local! {
    static DEFERRED: RefCell<Deferred> = RefCell::new(Deferred::default());
}

/// While the returned guard lives, fan-out queues data without waking the
/// recipients' writers; dropping it wakes each of them once. A connection
/// handling a burst of lines holds one, so each recipient's writer finds the
/// whole burst queued and writes it with one syscall instead of one per line.
pub fn defer_wakeups() -> WakeGuard {
    let outermost = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if d.active {
            return false;
        }
        d.active = true;
        d.fed = false;
        true
    });
    WakeGuard { outermost }
}

/// See [`defer_wakeups`].
pub struct WakeGuard {
    outermost: bool,
}

impl WakeGuard {
    /// Fan-out (a channel's lines) queued something for someone since the
    /// guard was taken: the input handled under it fed others.
    pub fn fed_others(&self) -> bool {
        DEFERRED.with(|d| d.borrow().fed)
    }
}

impl Drop for WakeGuard {
    fn drop(&mut self) {
        if !self.outermost {
            return;
        }
        let mut peers = DEFERRED.with(|d| {
            let mut d = d.borrow_mut();
            d.active = false;
            std::mem::take(&mut d.peers)
        });
        for p in peers.drain(..) {
            p.out.wake();
        }
        DEFERRED.with(|d| d.borrow_mut().peers = peers);
    }
}

/// Wakes `p`'s writer now, or when the current [`defer_wakeups`] guard drops.
fn wake(p: &Arc<Peer>) {
    let deferred = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if d.active {
            d.peers.push(p.clone());
        }
        d.active
    });
    if !deferred {
        p.out.wake();
    }
}

/// Where fan-out puts its work: the arena lines are encoded into, and the
/// connections whose queue overflowed (dropped when the hub settles).
#[derive(Default)]
pub struct Sink {
    pub overflowed: Vec<ConnId>,
    arena: Arena,
    /// Encoding buffer, kept between fan-outs.
    scratch: Vec<u8>,
    /// The current fan-out's encodings, one per (dialect, variant).
    variants: Vec<(u8, u32, Shared)>,
}

/// Encodes `ev` once per distinct (dialect, variant) among `peers` into the
/// arena and queues it to each by reference; records the ids whose queue
/// overflowed.
pub fn fanout<'p>(peers: impl IntoIterator<Item = &'p Arc<Peer>>, ev: &Event<'_>, sink: &mut Sink) {
    // Few variants exist per event (a dialect or two, a handful of cap sets):
    // a linear scan of a tiny vector beats hashing. Most members share the
    // previous member's dialect and capabilities: they reuse its answer
    // without asking the dialect again.
    let mut last: Option<(u8, u32, Option<usize>)> = None;
    let mut fed = false;
    for p in peers {
        let (d, caps) = (p.dialect.id(), p.caps());
        let found = match last {
            Some((ld, lc, found)) if ld == d && lc == caps => found,
            _ => {
                let found = p.dialect.variant(ev, caps).map(|v| {
                    match sink
                        .variants
                        .iter()
                        .position(|(cd, cv, _)| *cd == d && *cv == v)
                    {
                        Some(i) => i,
                        None => {
                            sink.scratch.clear();
                            p.dialect.encode(ev, v, &mut sink.scratch);
                            let line = sink.arena.put(&sink.scratch);
                            sink.variants.push((d, v, line));
                            sink.variants.len() - 1
                        }
                    }
                });
                last = Some((d, caps, found));
                found
            }
        };
        let Some(i) = found else {
            continue;
        };
        match p.out.append_shared(&sink.variants[i].2) {
            Appended::Queued => fed = true,
            Appended::NeedsWake => {
                fed = true;
                wake(p);
            }
            Appended::Refused => {
                if p.out.closed() == Some(Closed::Overflow) {
                    sink.overflowed.push(p.id);
                }
            }
        }
    }
    sink.variants.clear();
    if fed {
        DEFERRED.with(|d| d.borrow_mut().fed = true);
    }
}
