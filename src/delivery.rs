//! Delivery: the core's outputs become bytes in connections' queues.
//!
//! For each notification the core's [`Directory`] names the local
//! connections its audience reaches; the event is encoded once per distinct
//! (dialect, variant) among them into an [`Arena`], and the same bytes are
//! queued to every recipient of that variant by reference. Writers are not
//! woken here: the ones to wake are collected in a [`Wakes`] list the caller
//! owns, so that a connection handling a burst of input wakes each
//! recipient once for the whole burst.
//!
//! The same list collects the recipients whose queue is now behind (past
//! its soft mark) while their reader still reads: the connection that sent
//! the lines then waits for them (backpressure). A reader whose queue has
//! not moved for the stall grace has stopped reading: it holds nobody back,
//! and meets its queue's bound (`SendQ exceeded`) or the write timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bavard_core::deliver::Directory;
use bavard_core::dialect::DialectRef;
use bavard_core::notify::{Event, Notification};
use bavard_core::{ConnId, Output, Outputs};

use crate::outbox::{AlarmTime, Appended, Arena, Closed, Outbox, Shared};

/// A connection as delivery sees it: its queue, its dialect and the
/// capability bits its session negotiated.
pub struct Peer {
    pub id: ConnId,
    pub out: Outbox,
    pub dialect: &'static DialectRef,
    caps: AtomicU32,
    /// When the queue was last seen moving (it went from empty to not, or
    /// the writer wrote some of it), as an [`AlarmTime::short`].
    progress: AtomicU32,
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
            caps: AtomicU32::new(0),
            progress: AtomicU32::new(AlarmTime::of(Instant::now()).short()),
        }
    }

    pub fn caps(&self) -> u32 {
        self.caps.load(Ordering::Relaxed)
    }

    pub fn set_caps(&self, caps: u32) {
        self.caps.store(caps, Ordering::Relaxed)
    }

    /// The queue moved at `now`.
    pub fn touch(&self, now: Instant) {
        self.progress
            .store(AlarmTime::of(now).short(), Ordering::Relaxed);
    }

    /// When the queue last moved.
    pub fn progress(&self, now: Instant) -> Instant {
        AlarmTime::instant_of(self.progress.load(Ordering::Relaxed), now)
    }

    /// Whether the queue has not moved for longer than `grace` at `now`:
    /// the reader has stopped reading (meaningful while something is
    /// queued).
    pub fn stalled(&self, now: Instant, grace: Duration) -> bool {
        now.saturating_duration_since(self.progress(now)) > grace
    }
}

/// Writers to wake once the caller's batch of input has been handled, and
/// the readers it must wait for.
#[derive(Default)]
pub struct Wakes {
    peers: Vec<Arc<Peer>>,
    /// Recipients left behind (past their soft mark, still reading).
    blockers: Vec<Arc<Peer>>,
}

impl Wakes {
    /// Wakes every writer collected, once each; keeps the list's storage.
    pub fn wake_all(&mut self) {
        for p in self.peers.drain(..) {
            p.out.wake();
        }
    }

    /// Takes the readers the caller must wait for, each once.
    pub fn take_blockers(&mut self) -> Vec<Arc<Peer>> {
        let mut b = std::mem::take(&mut self.blockers);
        b.sort_unstable_by_key(|p| p.id);
        b.dedup_by_key(|p| p.id);
        b
    }
}

impl Drop for Wakes {
    fn drop(&mut self) {
        self.wake_all();
    }
}

/// The local connections and the encoding scratch of fan-out.
pub struct Delivery {
    /// How long a queue may stand still before its reader counts as having
    /// stopped reading.
    grace: Duration,
    dir: Directory<Arc<Peer>>,
    arena: Arena,
    /// Encoding buffer, kept between fan-outs.
    scratch: Vec<u8>,
    /// The current fan-out's encodings, one per (dialect, variant).
    variants: Vec<(usize, u32, Shared)>,
    /// Connections whose queue overflowed: dropped once the outputs being
    /// delivered are all queued, never in the middle of a fan-out.
    overflowed: Vec<ConnId>,
    /// Events queued to their recipients so far, one per recipient (a
    /// plain integer: it only changes under the hub's lock).
    delivered: u64,
}

impl Delivery {
    /// Delivery with the stall grace `grace` (see [`Peer::stalled`]).
    pub fn new(grace: Duration) -> Delivery {
        Delivery {
            grace,
            dir: Directory::default(),
            arena: Arena::default(),
            scratch: Vec::new(),
            variants: Vec::new(),
            overflowed: Vec::new(),
            delivered: 0,
        }
    }

    /// Events queued to their recipients since the start.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    pub fn set_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

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
        let mut clock = Clock::default();
        for item in out.items.drain(..) {
            match item {
                Output::Note(n) => self.notify(&n, wakes, &mut clock),
                Output::Reply(bytes) => {
                    if let Some(p) = me {
                        let to = Queued {
                            grace: self.grace,
                            wakes,
                            overflowed: &mut self.overflowed,
                            clock: &mut clock,
                            // Replies are not deliveries of events.
                            delivered: &mut 0,
                        };
                        to.record(p, p.out.append(&bytes));
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

    fn notify(&mut self, n: &Notification, wakes: &mut Wakes, clock: &mut Clock) {
        let Delivery {
            grace,
            dir,
            arena,
            scratch,
            variants,
            overflowed,
            delivered,
        } = self;
        let grace = *grace;
        // Few variants exist per event (a dialect or two, a handful of cap
        // sets): a linear scan of a tiny vector beats hashing. Most members
        // share the previous member's dialect and capabilities: they reuse
        // its answer without asking the dialect again.
        let mut last: Option<(usize, u32, Option<usize>)> = None;
        dir.plan(n, |_, p| {
            // Dialects are statics: the address names one, with no call
            // through its vtable for every delivery.
            let (d, caps) = (std::ptr::from_ref(p.dialect).addr(), p.caps());
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
                let to = Queued {
                    grace,
                    wakes: &mut *wakes,
                    overflowed: &mut *overflowed,
                    clock: &mut *clock,
                    delivered: &mut *delivered,
                };
                to.record(p, p.out.append_shared(&variants[i].2));
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

/// The monotonic clock, read at most once per delivery, when needed.
#[derive(Default)]
struct Clock(Option<Instant>);

impl Clock {
    fn now(&mut self) -> Instant {
        *self.0.get_or_insert_with(Instant::now)
    }
}

/// Where what an append asks of the caller is recorded.
struct Queued<'a> {
    grace: Duration,
    wakes: &'a mut Wakes,
    overflowed: &'a mut Vec<ConnId>,
    clock: &'a mut Clock,
    delivered: &'a mut u64,
}

impl Queued<'_> {
    fn record(self, p: &Arc<Peer>, appended: Appended) {
        if !matches!(appended, Appended::Refused) {
            *self.delivered += 1;
        }
        match appended {
            Appended::Queued => {}
            Appended::NeedsWake => {
                // Its stall is counted from now, not from its last write.
                p.touch(self.clock.now());
                self.wakes.peers.push(p.clone());
            }
            Appended::Behind => {
                if !p.stalled(self.clock.now(), self.grace) {
                    self.wakes.blockers.push(p.clone());
                }
            }
            Appended::Refused => {
                if p.out.closed() == Some(Closed::Overflow) {
                    self.overflowed.push(p.id);
                }
            }
        }
    }
}
