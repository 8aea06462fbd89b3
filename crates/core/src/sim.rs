//! The network driven through both dialects' sessions without sockets: the
//! harness of the property tests and the fuzz target, and a small model of
//! what the server does around the core. Input is a script of (client,
//! bytes) steps; delivery plans with a [`Directory`], encodes per recipient
//! and bounds each client's queue; effects run against an in-memory
//! registry.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use crate::config::CoreConfig;
use crate::deliver::Directory;
use crate::dialect::DialectRef;
use crate::effect::{Effect, Outcome};
use crate::ids::{ConnId, IdGen};
use crate::irc::IrcSession;
use crate::line::LineSession;
use crate::notify::{Event, Millis};
use crate::session::{Cx, Output, Outputs, Session, Step};
use crate::state::Network;
use crate::state::changes::{Connect, Quit};
use crate::store::{HistoryStore, MemoryHistory, MemoryRegistry, NameRegistry, Reply};

/// One simulated client.
pub struct SimClient {
    pub id: ConnId,
    session: Box<dyn Session>,
    dialect: DialectRef,
    /// Input not yet ended by a newline.
    partial: Vec<u8>,
    open: bool,
    /// Bytes queued for the client and not drained.
    queued: usize,
    /// Bytes the client received so far (only the count is kept).
    pub received: usize,
}

/// A network with simulated clients.
pub struct Sim {
    pub net: Network,
    pub clients: Vec<SimClient>,
    dir: Directory<usize>,
    registry: MemoryRegistry,
    history: MemoryHistory,
    ids: IdGen,
    /// Bytes a client may have queued before it is dropped.
    send_queue: usize,
    now: Millis,
}

impl Sim {
    pub fn new(cfg: CoreConfig, send_queue: usize) -> Sim {
        let now = 1_700_000_000_000;
        Sim {
            net: Network::new(Arc::new(cfg), now),
            clients: Vec::new(),
            dir: Directory::default(),
            registry: MemoryRegistry::default(),
            history: MemoryHistory::default(),
            ids: IdGen::new(0),
            send_queue,
            now,
        }
    }

    /// The starting point of the randomised tests and the fuzz target: a
    /// 4 KiB send queue (so queues overflow quickly), two registered IRC
    /// users in `#a` and two line users (in the default channel); channel
    /// history is kept (20 messages).
    pub fn mixed() -> Sim {
        let mut cfg = CoreConfig::default();
        // Channel history on, so that messages and CHATHISTORY run effects.
        cfg.limits.history = 20;
        let mut sim = Sim::new(cfg, 4096);
        for irc in [true, true, false, false] {
            let i = sim.connect(irc);
            if irc {
                let lines = format!("NICK n{i}\r\nUSER u 0 * :r\r\nJOIN #a\r\n");
                sim.send(i, lines.as_bytes());
            }
        }
        sim
    }

    /// Connects a client speaking IRC (`irc = true`) or the line dialect.
    pub fn connect(&mut self, irc: bool) -> usize {
        let id = self.ids.next_conn();
        let i = self.clients.len();
        let cfg = self.net.config().clone();
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (session, dialect): (Box<dyn Session>, DialectRef) = if irc {
            let s = IrcSession::new(id, cfg, localhost, Instant::now());
            (Box::new(s), crate::irc::render::IRC)
        } else {
            let seed = u32::try_from(id.serial() % u64::from(u32::MAX)).unwrap_or(1);
            (Box::new(LineSession::new(id, cfg, seed)), crate::line::LINE)
        };
        self.clients.push(SimClient {
            id,
            session,
            dialect,
            partial: Vec::new(),
            open: true,
            queued: 0,
            received: 0,
        });
        self.dir.attach(id, i);
        let mut out = Outputs::default();
        let connect = Connect {
            id,
            ip: localhost,
            secure: false,
            certfp: None,
        };
        let _ = self.net.apply(connect, &mut out, self.now);
        self.deliver(i, out);
        self.call(i, |s, cx| s.start(cx));
        i
    }

    /// Client `i` sends `bytes`, split into lines as the server would.
    pub fn send(&mut self, i: usize, bytes: &[u8]) {
        let Some(c) = self.clients.get_mut(i).filter(|c| c.open) else {
            return;
        };
        c.partial.extend_from_slice(bytes);
        let max = c.session.max_line();
        while let Some(c) = self.clients.get_mut(i).filter(|c| c.open) {
            let Some(nl) = c.partial.iter().position(|&b| b == b'\n') else {
                if c.partial.len() > max {
                    c.partial.clear();
                    self.call(i, |s, cx| s.too_long(cx));
                }
                return;
            };
            let line: Vec<u8> = c.partial.drain(..=nl).take(nl).collect();
            if line.len() > max {
                self.call(i, |s, cx| s.too_long(cx));
            } else {
                self.call(i, |s, cx| s.line(cx, &line));
            }
        }
    }

    /// Client `i` disconnects abruptly.
    pub fn disconnect(&mut self, i: usize) {
        if self.clients.get(i).is_some_and(|c| c.open) {
            self.call(i, |s, cx| {
                s.gone(cx, "Connection reset");
                Step::Close
            });
        }
    }

    /// Empties every client's queue, as if all were reading.
    pub fn drain(&mut self) {
        for c in &mut self.clients {
            c.received += std::mem::take(&mut c.queued);
        }
    }

    /// The network's consistency check, and delivery's view of it.
    pub fn check(&self) -> Result<(), String> {
        self.net.check_invariants()?;
        self.dir.check(&self.net)
    }

    /// Runs one call of client `i`'s session and what it leads to: the
    /// effects it waits on, the delivery of its outputs.
    fn call(&mut self, i: usize, f: impl FnOnce(&mut dyn Session, &mut Cx<'_>) -> Step) {
        let mut out = Outputs::default();
        let mut step = {
            let mut cx = Cx {
                net: &mut self.net,
                out: &mut out,
                now: self.now,
                instant: Instant::now(),
            };
            f(&mut *self.clients[i].session, &mut cx)
        };
        while let Step::Wait(effect) = step {
            let outcome = self.run_effect(effect);
            let mut cx = Cx {
                net: &mut self.net,
                out: &mut out,
                now: self.now,
                instant: Instant::now(),
            };
            step = self.clients[i].session.resume(&mut cx, outcome);
        }
        self.deliver(i, out);
        if step == Step::Close {
            self.close(i);
        }
    }

    fn close(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if c.open {
            c.open = false;
            let id = c.id;
            let mut out = Outputs::default();
            let _ = self.net.apply(
                Quit {
                    id,
                    reason: "Connection closed".into(),
                },
                &mut out,
                self.now,
            );
            self.deliver(i, out);
            self.dir.detach(id);
        }
    }

    fn run_effect(&mut self, effect: Effect) -> Outcome {
        let reply = match effect {
            // No passwords are configured here.
            Effect::CheckServerPassword { .. } | Effect::CheckOper { .. } => {
                return Outcome::Verified(false);
            }
            // Nor accounts.
            Effect::CheckAccount { .. } | Effect::AccountByCert { .. } => {
                return Outcome::Account(None);
            }
            Effect::ScramLookup { .. } => return Outcome::Scram(None),
            Effect::Rehash => return Outcome::Failed("no configuration file here".into()),
            Effect::RegisterAccount { .. }
            | Effect::DropAccount { .. }
            | Effect::SetPassword { .. }
            | Effect::EditCerts { .. }
            | Effect::AccountInfo { .. } => return Outcome::Failed("no accounts here".into()),
            Effect::ClaimNick { key, owner } => self.registry.claim_nick(&key, owner),
            Effect::FoundChannel { key } => self.registry.found_channel(&key),
            Effect::ReleaseNick { key, owner } => {
                return done(self.registry.release_nick(&key, owner));
            }
            Effect::DropChannel { key } => return done(self.registry.drop_channel(&key)),
            Effect::ReleaseOwner { owner } => return done(self.registry.release_owner(owner)),
            Effect::AppendHistory { stored, keep } => {
                return done(self.history.append(vec![*stored], keep));
            }
            Effect::RedactHistory { target, msgid } => {
                return done(self.history.remove(&target, msgid));
            }
            Effect::ForgetHistory { target } => return done(self.history.forget(&target)),
            Effect::RenameHistory { from, to } => return done(self.history.rename(&from, &to)),
            // The simulations keep markers in the network alone.
            Effect::SaveReadMarker { .. }
            | Effect::RenameReadMarkers { .. }
            | Effect::ForgetReadMarkers { .. } => return Outcome::Done,
            Effect::ReadHistory {
                target,
                range,
                kinds,
            } => {
                return match self.history.read_kinds(&target, range, kinds) {
                    Reply::Now(Ok(events)) => Outcome::History(events),
                    _ => Outcome::Failed("history unavailable".into()),
                };
            }
            Effect::HistoryTargets {
                targets,
                prefix,
                from,
                to,
                limit,
            } => {
                return match self.history.latest(targets, prefix, from, to, limit) {
                    Reply::Now(Ok(found)) => Outcome::Targets(found),
                    _ => Outcome::Failed("history unavailable".into()),
                };
            }
        };
        match reply {
            Reply::Now(Ok(yes)) => Outcome::Claimed(yes),
            Reply::Now(Err(e)) => Outcome::Failed(e.to_string()),
            Reply::Later(_) => Outcome::Failed("the in-memory registry answers at once".into()),
        }
    }

    /// Delivers what a call of client `from` produced, then drops the
    /// clients whose queue overflowed (telling others, which may overflow
    /// more).
    fn deliver(&mut self, from: usize, out: Outputs) {
        let mut overflowed = Vec::new();
        let mut pending = vec![(from, out)];
        while let Some((from, out)) = pending.pop() {
            for effect in out.later {
                self.run_effect(effect);
            }
            for item in out.items {
                match item {
                    Output::Note(n) => {
                        let clients = &mut self.clients;
                        let limit = self.send_queue;
                        self.dir.plan(&n, |_, &i| {
                            let c = &mut clients[i];
                            let mut buf = Vec::new();
                            if let Some(v) = c.dialect.variant(&n.event, c.session.caps()) {
                                c.dialect.encode(&n.event, v, &mut buf);
                            }
                            c.queued += buf.len();
                            if c.queued > limit && c.open {
                                overflowed.push(i);
                            }
                        });
                        if let Event::Quit { id, .. } = &n.event
                            && let Some(i) = self.dir.detach(*id)
                        {
                            self.clients[i].open = false;
                        }
                    }
                    Output::Reply(bytes) | Output::Final(bytes) => {
                        self.clients[from].queued += bytes.len();
                    }
                }
            }
            for i in overflowed.drain(..) {
                let c = &mut self.clients[i];
                if !c.open {
                    continue;
                }
                c.open = false;
                let mut out = Outputs::default();
                let quit = Quit {
                    id: c.id,
                    reason: "SendQ exceeded".into(),
                };
                let _ = self.net.apply(quit, &mut out, self.now);
                pending.push((i, out));
            }
        }
    }
}

/// The outcome of an effect nobody waits on.
fn done(r: Reply<Result<(), crate::store::StoreError>>) -> Outcome {
    match r {
        Reply::Now(Err(e)) => Outcome::Failed(e.to_string()),
        _ => Outcome::Done,
    }
}
