//! Drives the hub through both dialects' sessions without sockets: the
//! harness of the property tests and fuzz targets. Input is a script of
//! (client, bytes) steps; the clients' queues are drained as it goes.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::hub::{Hub, Peer, now_millis};
use crate::net::conn::{Flow, Session};
use crate::net::framing::{Frame, Framer, Next};
use crate::net::irc_session::IrcSession;
use crate::net::line_session::LineSession;

/// One simulated client.
pub struct SimClient {
    pub peer: Arc<Peer>,
    session: Box<dyn Session>,
    framer: Framer,
    open: bool,
    /// Bytes the client received so far (bounded: only the count).
    pub received: usize,
}

/// A hub with simulated clients.
pub struct Sim {
    pub hub: Mutex<Hub>,
    pub cfg: Arc<Config>,
    pub clients: Vec<SimClient>,
}

impl Sim {
    pub fn new(cfg: Config) -> Sim {
        let cfg = Arc::new(cfg);
        Sim {
            hub: Mutex::new(Hub::new(cfg.clone(), now_millis())),
            cfg,
            clients: Vec::new(),
        }
    }

    /// The starting point of the randomised tests and the hub fuzz target: a
    /// 4 KiB send queue (so queues overflow quickly), two registered IRC users
    /// in `#a` and two line users (in the default channel).
    pub fn mixed() -> Sim {
        let mut cfg = Config::default();
        cfg.limits.send_queue = 4096;
        let mut sim = Sim::new(cfg);
        for irc in [true, true, false, false] {
            let i = sim.connect(irc);
            if irc {
                sim.send(
                    i,
                    format!("NICK n{i}\r\nUSER u 0 * :r\r\nJOIN #a\r\n").as_bytes(),
                );
            }
        }
        sim
    }

    /// Connects a client speaking IRC (`irc = true`) or the line dialect.
    pub fn connect(&mut self, irc: bool) -> usize {
        let peer = {
            let mut h = crate::net::conn::lock(&self.hub);
            let id = h.next_conn_id();
            let dialect: &'static crate::hub::DialectRef = if irc {
                &crate::irc::render::IRC
            } else {
                &crate::line::LINE
            };
            let peer = Arc::new(Peer::new(id, dialect, self.cfg.limits.send_queue));
            h.connect(peer.clone(), IpAddr::V4(Ipv4Addr::LOCALHOST), now_millis());
            peer
        };
        let mut session: Box<dyn Session> = if irc {
            Box::new(IrcSession::new(
                peer.clone(),
                self.cfg.clone(),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
            ))
        } else {
            Box::new(LineSession::new(peer.id, self.cfg.clone()))
        };
        session.start(&self.hub);
        self.clients.push(SimClient {
            peer,
            session,
            framer: Framer::default(),
            open: true,
            received: 0,
        });
        self.clients.len() - 1
    }

    /// Client `i` sends `bytes` (framed into lines as the server would).
    pub fn send(&mut self, i: usize, bytes: &[u8]) {
        let hub = &self.hub;
        let Some(c) = self.clients.get_mut(i).filter(|c| c.open) else {
            return;
        };
        let max = c.session.max_line();
        let session = &mut c.session;
        let next = c.framer.feed(bytes, max, |f| {
            let flow = match f {
                Frame::Line(l) => session.line(hub, l),
                Frame::TooLong => session.too_long(hub),
            };
            if flow == Flow::Close {
                Next::Stop
            } else {
                Next::Continue
            }
        });
        if next == Next::Stop {
            c.open = false;
            c.session.gone(hub, "Connection closed");
        }
    }

    /// Client `i` disconnects abruptly.
    pub fn disconnect(&mut self, i: usize) {
        if let Some(c) = self.clients.get_mut(i).filter(|c| c.open) {
            c.open = false;
            c.session.gone(&self.hub, "Connection reset");
        }
    }

    /// Empties every client's queue, as if all were reading.
    pub fn drain(&mut self) {
        for c in &mut self.clients {
            let batch = c.peer.out.take(crate::outbox::Pending::default());
            c.received += batch.data.to_vec().len();
            if batch.closed.is_some() {
                c.open = false;
            }
        }
    }

    /// The hub's consistency check.
    pub fn check(&self) -> Result<(), String> {
        crate::net::conn::lock(&self.hub).check_invariants()
    }
}
