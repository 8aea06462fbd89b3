//! Delivery: the core's outputs become bytes in connections' queues.
//!
//! For each notification the core's [`Directory`] names the local
//! connections its audience reaches; the event is encoded once per distinct
//! (dialect, variant) among them into an [`Arena`], and the same bytes are
//! queued to every recipient of that variant by reference. Writers are not
//! woken here: the ones to wake are collected in a [`Wakes`] list the caller
//! owns, so that a connection handling a burst of input wakes each
//! recipient once for the whole burst.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bavard_core::deliver::Directory;
use bavard_core::dialect::DialectRef;
use bavard_core::notify::{Event, Notification};
use bavard_core::{ConnId, Output, Outputs};

use crate::outbox::{Appended, Arena, Closed, Outbox, Shared};

/// A connection as delivery sees it: its queue, its dialect and the
/// capability bits its session negotiated.
pub struct Peer {
    pub id: ConnId,
    pub out: Outbox,
    pub dialect: &'static DialectRef,
    /// The dialect's id, read for every delivery (no call through the
    /// dialect's vtable).
    dialect_id: u8,
    caps: AtomicU32,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Peer({})", self.id)
    }
}

impl Peer {
    pub fn new(id: ConnId, dialect: &'static DialectRef, out: Outbox) -> Peer {
        Peer {
            id,
            out,
            dialect,
            dialect_id: dialect.id(),
            caps: AtomicU32::new(0),
        }
    }

    pub fn caps(&self) -> u32 {
        self.caps.load(Ordering::Relaxed)
    }

    pub fn set_caps(&self, caps: u32) {
        self.caps.store(caps, Ordering::Relaxed)
    }
}

/// Writers to wake once the caller's batch of input has been handled.
#[derive(Default)]
pub struct Wakes {
    peers: Vec<Arc<Peer>>,
    /// Something was queued for a connection other than the caller's.
    fed: bool,
}

impl Wakes {
    /// Whether the input handled fed other connections (a channel's lines).
    pub fn fed_others(&self) -> bool {
        self.fed
    }

    /// Wakes every writer collected, once each; keeps the list's storage.
    pub fn wake_all(&mut self) {
        for p in self.peers.drain(..) {
            p.out.wake();
        }
        self.fed = false;
    }
}

impl Drop for Wakes {
    fn drop(&mut self) {
        self.wake_all();
    }
}

/// The local connections and the encoding scratch of fan-out.
#[derive(Default)]
pub struct Delivery {
    dir: Directory<Arc<Peer>>,
    arena: Arena,
    /// Encoding buffer, kept between fan-outs.
    scratch: Vec<u8>,
    /// The current fan-out's encodings, one per (dialect, variant).
    variants: Vec<(u8, u32, Shared)>,
    /// Connections whose queue overflowed: dropped once the outputs being
    /// delivered are all queued, never in the middle of a fan-out.
    overflowed: Vec<ConnId>,
}

impl Delivery {
    pub fn attach(&mut self, peer: Arc<Peer>) {
        self.dir.attach(peer.id, peer);
    }

    pub fn detach(&mut self, id: ConnId) -> Option<Arc<Peer>> {
        self.dir.detach(id)
    }

    pub fn directory(&self) -> &Directory<Arc<Peer>> {
        &self.dir
    }

    /// Takes the ids of the connections whose queue overflowed.
    pub fn take_overflowed(&mut self) -> Vec<ConnId> {
        let mut ids = std::mem::take(&mut self.overflowed);
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Delivers `out`, produced while serving `me` (the connection whose
    /// replies are in it), in order.
    pub fn deliver(&mut self, me: Option<&Arc<Peer>>, out: &mut Outputs, wakes: &mut Wakes) {
        for item in out.items.drain(..) {
            match item {
                Output::Note(n) => self.notify(&n, me, wakes),
                Output::Reply(bytes) => {
                    if let Some(p) = me {
                        queue(p, p.out.append(&bytes), wakes, &mut self.overflowed);
                    }
                }
                Output::Final(bytes) => {
                    if let Some(p) = me {
                        p.out.push_final(&bytes);
                        p.out.close();
                    }
                }
            }
        }
    }

    fn notify(&mut self, n: &Notification, me: Option<&Arc<Peer>>, wakes: &mut Wakes) {
        let Delivery {
            dir,
            arena,
            scratch,
            variants,
            overflowed,
        } = self;
        // Few variants exist per event (a dialect or two, a handful of cap
        // sets): a linear scan of a tiny vector beats hashing. Most members
        // share the previous member's dialect and capabilities: they reuse
        // its answer without asking the dialect again.
        let mut last: Option<(u8, u32, Option<usize>)> = None;
        dir.plan(n, |_, p| {
            let (d, caps) = (p.dialect_id, p.caps());
            let found = match last {
                Some((ld, lc, found)) if ld == d && lc == caps => found,
                _ => {
                    let found = p.dialect.variant(&n.event, caps).map(|v| {
                        match variants.iter().position(|(cd, cv, _)| *cd == d && *cv == v) {
                            Some(i) => i,
                            None => {
                                scratch.clear();
                                p.dialect.encode(&n.event, v, scratch);
                                variants.push((d, v, arena.put(scratch)));
                                variants.len() - 1
                            }
                        }
                    });
                    last = Some((d, caps, found));
                    found
                }
            };
            if let Some(i) = found {
                if me.is_none_or(|m| m.id != p.id) {
                    wakes.fed = true;
                }
                queue(p, p.out.append_shared(&variants[i].2), wakes, overflowed);
            }
        });
        variants.clear();
        match &n.event {
            // The user left the network: its connection closes once what is
            // queued is written.
            Event::Quit { id, .. } => {
                if let Some(p) = self.dir.detach(*id) {
                    p.out.close();
                }
            }
            Event::Shutdown { .. } => {
                self.dir.plan(n, |_, p| p.out.shut_down());
            }
            _ => {}
        }
    }
}

/// Records what an append asks of the caller.
fn queue(p: &Arc<Peer>, appended: Appended, wakes: &mut Wakes, overflowed: &mut Vec<ConnId>) {
    match appended {
        Appended::Queued => {}
        Appended::NeedsWake => wakes.peers.push(p.clone()),
        Appended::Refused => {
            if p.out.closed() == Some(Closed::Overflow) {
                overflowed.push(p.id);
            }
        }
    }
}
