//! The connection-side of the `irc` dialect.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::conn::{Flow, Session, lock};
use super::timers::{KeepAlive, KeepAliveAction, KeepAliveLimits, PartialLineGuard};
use crate::config::Config;
use crate::hub::{Host, Hub, Peer, cap, now_millis};
use crate::irc::IrcState;
use crate::irc::commands::{Ctx, dispatch};
use crate::irc::message::{MAX_TAGS_SECTION_LEN, Message, ParseError};
use crate::irc::numeric::*;
use crate::irc::reply::Responder;

/// State of one IRC connection.
pub struct IrcSession {
    st: IrcState,
    /// Beside `st`, not in it: a command borrows both at once (the responder
    /// borrows the server name while the state is lent to the command).
    cfg: Arc<Config>,
    keepalive: KeepAlive,
    partial: PartialLineGuard,
    /// The client's address, for the host in `ERROR :Closing Link:` lines
    /// (rendered only then, instead of a string per connection). IPv4 as
    /// mapped: an `Ipv6Addr` is 16 bytes, an `IpAddr` 17, and the one byte
    /// would take the session from a 112-byte allocation to a 128-byte one.
    ip: Ipv6Addr,
}

/// The responder for one line from the client in `st`.
fn responder<'s>(cfg: &'s Config, st: &IrcState, hub: &Hub, label: Option<&str>) -> Responder<'s> {
    let nick = hub.user(st.id()).map(|u| u.nick()).unwrap_or("");
    let caps = st.peer.caps();
    let label = label
        .filter(|_| caps & cap::LABELED_RESPONSE != 0)
        .map(str::to_string);
    Responder::new(&cfg.server_name, nick, caps, label)
}

impl IrcSession {
    pub fn new(peer: Arc<Peer>, cfg: Arc<Config>, ip: IpAddr) -> IrcSession {
        let now = Instant::now();
        IrcSession {
            keepalive: KeepAlive::new(now),
            partial: PartialLineGuard::default(),
            ip: match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            },
            st: IrcState::new(peer, &cfg, now),
            cfg,
        }
    }

    fn keepalive_limits(&self) -> KeepAliveLimits {
        let l = &self.cfg.limits;
        KeepAliveLimits {
            interval: Duration::from_secs(l.ping_interval),
            timeout: Duration::from_secs(l.ping_timeout),
        }
    }

    fn partial_limit(&self) -> Duration {
        Duration::from_secs(self.cfg.limits.partial_line_timeout)
    }

    fn responder<'s>(&'s self, hub: &Hub, label: Option<&str>) -> Responder<'s> {
        responder(&self.cfg, &self.st, hub, label)
    }

    /// Sends `ERROR` and leaves the hub.
    fn close(&mut self, hub: &Mutex<Hub>, reason: &str) -> Flow {
        let mut h = lock(hub);
        let host = h
            .user(self.st.id())
            .map(|u| u.host().to_string())
            .unwrap_or_default();
        self.st
            .peer
            .out
            .push_final(format!("ERROR :Closing Link: {host} ({reason})\r\n").as_bytes());
        h.quit(self.st.id(), reason, now_millis());
        Flow::Close
    }
}

impl Session for IrcSession {
    fn max_line(&self) -> usize {
        // Tags have their own budget on top of the 512-byte message.
        MAX_TAGS_SECTION_LEN + self.cfg.limits.irc_line_length
    }

    fn start(&mut self, _hub: &Mutex<Hub>) {
        // Nothing to announce: IRC clients are greeted once they register.
    }

    fn line(&mut self, hub: &Mutex<Hub>, raw: &[u8]) -> Flow {
        self.partial.line_done();
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(|&b| b == b' ') {
            return Flow::Continue;
        }
        let text = match std::str::from_utf8(raw) {
            Ok(t) => t,
            Err(_) => {
                // UTF8ONLY: refuse the line, keep the connection.
                let lossy = String::from_utf8_lossy(raw);
                let parsed = Message::parse_client(&lossy).ok();
                let cmd = parsed
                    .as_ref()
                    .map_or_else(|| "*".into(), |m| m.verb().into_owned());
                let h = lock(hub);
                let mut r = self.responder(&h, parsed.as_ref().and_then(|m| m.tag("label")));
                r.standard(
                    "FAIL",
                    &cmd,
                    "INVALID_UTF8",
                    &[],
                    "Message rejected: this server only accepts UTF-8",
                );
                r.send(&self.st.peer);
                return Flow::Continue;
            }
        };
        let msg = match Message::parse_client(text) {
            Ok(m) => m,
            Err(ParseError::TagsTooLong { .. }) => return self.too_long(hub),
            Err(_) => return Flow::Continue,
        };
        // The 512-byte limit applies to the message without its tags.
        let body_len = if text.starts_with('@') {
            text.find(' ').map_or(0, |i| text.len() - i - 1)
        } else {
            text.len()
        };
        if body_len + 2 > self.cfg.limits.irc_line_length {
            return self.too_long(hub);
        }
        // Slow checks happen before taking the hub lock.
        let mut oper = None;
        if msg.is_command("PASS") && !self.st.registered() {
            if let (Some(hash), Some(given), Some(reg)) =
                (&self.cfg.password, msg.param(0), &mut self.st.registration)
                && !reg.pass_checked
            {
                reg.pass_checked = true;
                reg.pass_ok = crate::passwd::verify(hash, given);
            }
        } else if msg.is_command("OPER") && msg.params.len() >= 2 && self.st.registered() {
            oper = Some(self.st.oper.check(
                &self.cfg,
                &msg.params[0],
                &msg.params[1],
                Instant::now(),
            ));
        }
        let mut h = lock(hub);
        let now = now_millis();
        h.set_now(now);
        let IrcSession { st, cfg, .. } = self;
        let mut r = responder(cfg, st, &h, msg.tag("label"));
        let flow = {
            let mut ctx = Ctx {
                hub: &mut h,
                st,
                cfg,
                r: &mut r,
                now,
                oper,
            };
            dispatch(&mut ctx, &msg)
        };
        r.send(&self.st.peer);
        self.st.flood_exempt = h.user(self.st.id()).is_some_and(|u| u.modes.oper);
        if flow == Flow::Close {
            h.quit(self.st.id(), "Connection closed", now);
        }
        flow
    }

    fn too_long(&mut self, hub: &Mutex<Hub>) -> Flow {
        self.partial.line_done();
        let h = lock(hub);
        let mut r = self.responder(&h, None);
        r.num(ERR_INPUTTOOLONG, &[]);
        r.send(&self.st.peer);
        Flow::Continue
    }

    fn deadline(&self) -> Option<Instant> {
        let t = match &self.st.registration {
            Some(reg) => reg.by,
            None => self.keepalive.deadline(self.keepalive_limits()),
        };
        Some(match self.partial.deadline(self.partial_limit()) {
            Some(p) => p.min(t),
            None => t,
        })
    }

    fn on_deadline(&mut self, hub: &Mutex<Hub>, now: Instant) -> Flow {
        if self.partial.expired(now, self.partial_limit()) {
            return self.close(hub, "Partial line timeout");
        }
        if let Some(reg) = &self.st.registration {
            if now >= reg.by {
                return self.close(hub, "Registration timed out");
            }
            return Flow::Continue;
        }
        let limits = self.keepalive_limits();
        match self.keepalive.poll(now, limits) {
            KeepAliveAction::Nothing => Flow::Continue,
            KeepAliveAction::SendPing => {
                let ping = format!("PING :{}\r\n", self.cfg.server_name);
                self.st.peer.out.push(ping.as_bytes());
                Flow::Continue
            }
            KeepAliveAction::TimedOut => {
                let secs = self.cfg.limits.ping_interval + self.cfg.limits.ping_timeout;
                self.close(hub, &format!("Ping timeout: {secs} seconds"))
            }
        }
    }

    fn on_input(&mut self, now: Instant, partial: bool) {
        self.keepalive.on_input(now);
        self.partial.update(now, partial);
    }

    fn farewell(&self, reason: &str) -> Bytes {
        Bytes::from(format!(
            "ERROR :Closing Link: {} ({reason})\r\n",
            Host(IpAddr::V6(self.ip))
        ))
    }

    fn flood_exempt(&self) -> bool {
        self.st.flood_exempt
    }

    fn gone(&mut self, hub: &Mutex<Hub>, reason: &str) {
        let mut h = lock(hub);
        if let Some(u) = h.user(self.st.id())
            && u.registered
        {
            tracing::info!(conn = self.st.id(), nick = %u.nick(), %reason, "client disconnected");
        }
        h.quit(self.st.id(), reason, now_millis());
    }
}
