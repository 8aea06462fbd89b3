//! The hub: the core's network and this node's delivery behind one lock,
//! as a handle connection tasks share. Its mutex stays private: a call runs
//! a session against the network and delivers what it produced before the
//! lock is released, so every member of a channel sees that channel's
//! events in one order.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bavard_core::effect::Outcome;
use bavard_core::notify::Millis;
use bavard_core::state::changes::{Connect, Quit, Shutdown};
use bavard_core::{ConnId, CoreConfig, Cx, Network, Outputs, Session, Step};

use crate::cluster::link::{Batch, Link};
use crate::delivery::{Delivery, Peer, Wakes};
use crate::effects::{Effects, Later, Secrets, Started};
use crate::metrics::{HubFigures, Metrics};

/// What a session wants after a call through the hub.
pub enum Turn {
    Continue,
    Close,
    /// Its effect did not answer at once: await this, then
    /// [`Hub::resume`]; hold the connection's input meanwhile.
    Wait(Later),
}

struct Inner {
    net: Network,
    delivery: Delivery,
    /// Kept between calls with its capacity.
    out: Outputs,
    /// The last time the network was given: history finds times by
    /// assuming they never decrease, so a wall clock set back waits here.
    clock: Millis,
    /// The other nodes of the network, when clustered.
    link: Option<Link>,
}

impl Inner {
    /// The wall clock, never before the last time given.
    fn now(&mut self) -> Millis {
        self.clock = self.clock.max(now_millis());
        self.clock
    }
}

/// How the send queues treat readers that fall behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendLimits {
    /// A queue that has not moved for this long has a reader that stopped
    /// reading: it holds nobody back.
    pub stall_grace: Duration,
    /// A write that has not moved for this long drops its client
    /// (`Write timeout`).
    pub write_timeout: Duration,
}

/// The shared network and delivery.
pub struct Hub {
    inner: Mutex<Inner>,
    effects: Effects,
    /// [`SendLimits`] in milliseconds, read by every connection's driver
    /// without the lock (and swappable on reload).
    stall_grace_ms: AtomicU64,
    write_timeout_ms: AtomicU64,
    metrics: Metrics,
}

/// The wall clock in milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Hub {
    pub fn new(cfg: Arc<CoreConfig>, effects: Effects, send: SendLimits) -> Hub {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Hub {
            inner: Mutex::new(Inner {
                net: Network::new(cfg, now_millis()),
                delivery: Delivery::new(send.stall_grace),
                out: Outputs::default(),
                clock: 0,
                link: None,
            }),
            effects,
            stall_grace_ms: AtomicU64::new(ms(send.stall_grace)),
            write_timeout_ms: AtomicU64::new(ms(send.write_timeout)),
            metrics: Metrics::default(),
        }
    }

    /// Takes a reloaded configuration: the network's limits, texts and
    /// operators for the next command, the send queues' deadlines and the
    /// secrets for the next check.
    pub fn reconfigure(&self, cfg: Arc<CoreConfig>, send: SendLimits, secrets: Secrets) {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        {
            let mut g = self.lock();
            g.net.set_config(cfg);
            g.delivery.set_grace(send.stall_grace);
        }
        self.stall_grace_ms
            .store(ms(send.stall_grace), Ordering::Relaxed);
        self.write_timeout_ms
            .store(ms(send.write_timeout), Ordering::Relaxed);
        self.effects.set_secrets(secrets);
    }

    /// The send queues' limits now.
    pub fn send_limits(&self) -> SendLimits {
        let d = |a: &AtomicU64| Duration::from_millis(a.load(Ordering::Relaxed));
        SendLimits {
            stall_grace: d(&self.stall_grace_ms),
            write_timeout: d(&self.write_timeout_ms),
        }
    }

    /// Locks the hub. A panic while holding the lock (a bug, never input)
    /// must not take every other connection down with it, so poisoning is
    /// ignored.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn effects(&self) -> &Effects {
        &self.effects
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The figures `/metrics` reads from the network and delivery.
    pub fn figures(&self) -> HubFigures {
        let g = self.lock();
        HubFigures {
            users: g.net.user_count(),
            registered: g.net.counts().registered,
            channels: g.net.channel_count(),
            deliveries: g.delivery.delivered(),
        }
    }

    /// Takes the accounts' read markers kept in the store (at start).
    pub fn load_read_markers(&self, markers: Vec<bavard_core::store::Marker>) {
        self.lock().net.load_read_markers(markers);
    }

    /// Reads the network (tests, status).
    pub fn read<R>(&self, f: impl FnOnce(&Network) -> R) -> R {
        f(&self.lock().net)
    }

    /// A new connection from `ip`: reachable by delivery, in the network
    /// with no nick yet.
    pub fn connect(&self, peer: &Arc<Peer>, ip: IpAddr, secure: bool, certfp: Option<String>) {
        let mut g = self.lock();
        g.delivery.attach(peer.clone());
        let connect = Connect {
            id: peer.id,
            ip,
            secure,
            certfp,
        };
        self.apply_locked(&mut g, connect, Some(peer), &mut Wakes::default());
    }

    /// Calls `f` on `session` (connection `me`) under the lock, runs the
    /// effects it waits on that answer at once, and delivers its outputs;
    /// the writers to wake are added to `wakes`.
    pub fn call<S: Session + ?Sized>(
        &self,
        me: &Arc<Peer>,
        session: &mut S,
        wakes: &mut Wakes,
        f: impl FnOnce(&mut S, &mut Cx<'_>) -> Step,
    ) -> Turn {
        let mut g = self.lock();
        let now = g.now();
        let Inner { net, out, .. } = &mut *g;
        // Registrations are counted as the registered users this call
        // added: the session's registration is one of its commands.
        let registered = net.counts().registered;
        let mut cx = Cx {
            net,
            out,
            now,
            instant: Instant::now(),
        };
        let mut step = f(session, &mut cx);
        let turn = loop {
            match step {
                Step::Continue => break Turn::Continue,
                Step::Close => break Turn::Close,
                Step::Wait(effect) => match self.effects.start(effect) {
                    Started::Now(outcome) => step = session.resume(&mut cx, outcome),
                    Started::Later(f) => break Turn::Wait(f),
                },
            }
        };
        me.set_caps(session.caps());
        let added = g.net.counts().registered.saturating_sub(registered);
        if added > 0 {
            self.metrics.registered(added as u64);
        }
        self.settle(&mut g, Some(me), wakes);
        turn
    }

    /// Gives `session` the outcome of the effect it waited on.
    pub fn resume<S: Session + ?Sized>(
        &self,
        me: &Arc<Peer>,
        session: &mut S,
        wakes: &mut Wakes,
        outcome: Outcome,
    ) -> Turn {
        self.call(me, session, wakes, |s, cx| s.resume(cx, outcome))
    }

    /// Removes a connection for good, whatever it was doing (its task
    /// ended): it leaves the network if it had not, and delivery.
    pub fn remove(&self, id: ConnId, reason: &str) {
        let mut g = self.lock();
        let quit = Quit {
            id,
            reason: reason.to_string(),
        };
        self.apply_locked(&mut g, quit, None, &mut Wakes::default());
        g.delivery.detach(id);
        drop(g);
        self.effects
            .start_detached(bavard_core::effect::Effect::ReleaseOwner { owner: id });
    }

    /// The server is going down: every connection is told and closes, and
    /// so will any that arrives later.
    pub fn shutdown(&self, text: &str) {
        let mut g = self.lock();
        let change = Shutdown {
            text: text.to_string(),
        };
        self.apply_locked(&mut g, change, None, &mut Wakes::default());
    }

    /// Joins a cluster: from now on calls log what other nodes must learn
    /// through `link`, and wait for their turn in the log.
    pub fn link(&self, link: Link) {
        self.lock().link = Some(link);
    }

    /// Leaves the cluster (the node lost it): what still waited for the
    /// log is delivered as it is.
    pub fn unlink(&self) {
        let mut wakes = Wakes::default();
        let mut g = self.lock();
        let Some(mut link) = g.link.take() else {
            return;
        };
        for p in link.drain() {
            g.out.items = p.items;
            let Inner { delivery, out, .. } = &mut *g;
            delivery.deliver(p.me.as_ref(), out, &mut wakes);
        }
    }

    /// Takes a batch from the log, at sequence `seq`: another node's is
    /// replayed and shown; this node's own lets what waited for it through.
    /// `own` says whether this incarnation of this node logged it.
    pub fn from_log(&self, seq: u64, batch: &Batch, own: bool) {
        let mut wakes = Wakes::default();
        let mut g = self.lock();
        let now = g.now();
        let Inner {
            net,
            delivery,
            out,
            link,
            ..
        } = &mut *g;
        let Some(link) = link else {
            return;
        };
        link.applied = seq;
        for rec in &batch.records {
            net.replay(rec, own, link.local, out, now);
        }
        delivery.deliver(None, out, &mut wakes);
        for p in link.ready(own.then_some(batch.serial)) {
            out.items = p.items;
            delivery.deliver(p.me.as_ref(), out, &mut wakes);
        }
        self.settle(&mut g, None, &mut wakes);
    }

    /// How many calls' outputs wait for the log.
    pub fn waiting(&self) -> usize {
        self.lock().link.as_ref().map_or(0, |l| l.pending.len())
    }

    /// Takes a batch another node sent straight here (a private message):
    /// replayed and shown, outside the log's order.
    pub fn from_direct(&self, batch: &Batch) {
        let mut wakes = Wakes::default();
        let mut g = self.lock();
        let now = g.now();
        let Inner {
            net,
            delivery,
            out,
            link,
            ..
        } = &mut *g;
        let local = link.as_ref().map_or(0, |l| l.local);
        for rec in &batch.records {
            net.replay(rec, false, local, out, now);
        }
        delivery.deliver(None, out, &mut wakes);
        self.settle(&mut g, None, &mut wakes);
    }

    /// Logs records this node makes outside any call (a node found gone).
    pub fn log(&self, records: Vec<bavard_core::state::replica::Record>) {
        let mut g = self.lock();
        if let Some(link) = &mut g.link {
            link.after_records(records, None, Vec::new());
        }
    }

    /// The last log sequence applied (0 when not clustered).
    pub fn applied(&self) -> u64 {
        self.lock().link.as_ref().map_or(0, |l| l.applied)
    }

    /// The network's shared part, and the log sequence it stands at.
    pub fn snapshot(&self) -> (u64, bavard_core::state::replica::Snapshot) {
        let g = self.lock();
        (g.link.as_ref().map_or(0, |l| l.applied), g.net.snapshot())
    }

    /// Takes another node's snapshot, before any local user connects.
    pub fn restore(&self, snap: &bavard_core::state::replica::Snapshot) {
        let mut g = self.lock();
        let Inner { net, out, .. } = &mut *g;
        net.restore(snap, out);
        out.items.clear();
    }

    fn apply_locked<C: bavard_core::state::Change>(
        &self,
        g: &mut Inner,
        change: C,
        me: Option<&Arc<Peer>>,
        wakes: &mut Wakes,
    ) {
        let now = g.now();
        let Inner { net, out, .. } = g;
        let _ = net.apply(change, out, now);
        self.settle(g, me, wakes);
    }

    /// Delivers the outputs of a call and starts the effects nobody waits
    /// on; drops the clients whose queue overflowed, repeatedly, since
    /// telling others about a drop can overflow more queues.
    fn settle(&self, g: &mut Inner, mut me: Option<&Arc<Peer>>, wakes: &mut Wakes) {
        let now = g.now();
        let Inner {
            net,
            delivery,
            out,
            link,
            ..
        } = g;
        loop {
            for effect in out.later.drain(..) {
                self.effects.start_detached(effect);
            }
            match link {
                // What others must learn goes to the log; what the call
                // produced is shown in the log's order.
                Some(link) => {
                    let items = std::mem::take(&mut out.items);
                    if let Some(items) = link.after_call(net, me, items) {
                        out.items = items;
                        delivery.deliver(me, out, wakes);
                    }
                }
                None => delivery.deliver(me, out, wakes),
            }
            me = None;
            let dropped = delivery.take_overflowed();
            if dropped.is_empty() {
                return;
            }
            for id in dropped {
                if let Some(u) = net.user(id) {
                    tracing::info!(conn = %id, nick = u.nick(), "send queue exceeded, dropping client");
                    self.metrics.dropped(crate::metrics::Dropped::SendQueue);
                    let quit = Quit {
                        id,
                        reason: "SendQ exceeded".into(),
                    };
                    let _ = net.apply(quit, out, now);
                }
            }
        }
    }
}
