//! The `irc` dialect: the IRC client protocol (Modern IRC, RFC 1459/2812
//! where it is silent) and IRCv3 capabilities, on the shared network.
//!
//! - [`IrcSession`]: one connection's line handling, timers and waits.
//! - [`state`]: what a connection remembers (capabilities, registration).
//! - [`commands`]: the command table and the handlers, one file per family.
//! - [`reply`]: the per-command [`reply::Responder`] (labeled-response).
//! - [`render`]: how events look to IRC clients.

pub mod commands;
mod rename;
pub mod render;
pub mod reply;
pub mod state;

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use commands::{Ctx, Flow, Pending};
use reply::Responder;
pub use state::{CAPS, IrcState, cap};

use crate::config::CoreConfig;
use crate::effect::Outcome;
use crate::ids::ConnId;
use crate::session::{Cx, Session, Step};
use crate::state::Host;
use crate::state::changes::Quit;
use crate::timers::{KeepAlive, KeepAliveAction, KeepAliveLimits, PartialLineGuard};
use bavard_proto::message::{MAX_TAGS_SECTION_LEN, Message, ParseError};
use bavard_proto::numeric::ERR_INPUTTOOLONG;

/// One IRC connection.
pub struct IrcSession {
    st: IrcState,
    /// The configuration as of the last call (timers read it between calls).
    cfg: Arc<CoreConfig>,
    keepalive: KeepAlive,
    partial: PartialLineGuard,
    /// The client's address, for `ERROR :Closing Link:` lines (rendered
    /// only then). IPv4 as mapped: an `Ipv6Addr` is 16 bytes, an `IpAddr` 17.
    ip: Ipv6Addr,
}

impl IrcSession {
    pub fn new(id: ConnId, cfg: Arc<CoreConfig>, ip: IpAddr, now: Instant) -> IrcSession {
        IrcSession {
            keepalive: KeepAlive::new(now),
            partial: PartialLineGuard::default(),
            ip: match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            },
            st: IrcState::new(id, &cfg, now),
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

    /// Follows a configuration reload.
    fn refresh(&mut self, cx: &Cx<'_>) {
        if !Arc::ptr_eq(&self.cfg, cx.net.config()) {
            self.cfg = cx.net.config().clone();
        }
    }

    /// A responder for one line from the client.
    fn responder(&self, cx: &Cx<'_>, label: Option<&str>) -> Responder {
        let nick = cx.net.user(self.st.id()).map_or("", |u| u.nick());
        let caps = self.st.caps;
        let label = label
            .filter(|_| caps & cap::LABELED_RESPONSE != 0)
            .map(str::to_string);
        Responder::new(self.cfg.clone(), nick, caps, label)
    }

    /// Runs `f` as a command with `r` answering it; queues the replies,
    /// keeps them aside when the command waits on an effect.
    fn command(
        &mut self,
        cx: &mut Cx<'_>,
        mut r: Responder,
        f: impl FnOnce(&mut Ctx<'_>) -> (Flow, &'static str),
    ) -> Step {
        // Nick protection compares the nick before and after the command;
        // off, it costs this per-message path nothing.
        let watching = self.cfg.accounts.nick_protection.is_some() || self.st.guard().is_some();
        let before = if watching {
            crate::protect::mark(cx.net, self.st.id())
        } else {
            0
        };
        let (flow, command) = {
            let mut ctx = Ctx {
                net: cx.net,
                out: cx.out,
                st: &mut self.st,
                cfg: self.cfg.clone(),
                r: &mut r,
                now: cx.now,
                instant: cx.instant,
            };
            f(&mut ctx)
        };
        let id = self.st.id();
        match flow {
            Flow::Wait(effect, cont) => {
                self.st.set_pending(Pending { r, cont, command });
                return Step::Wait(effect);
            }
            Flow::Continue => cx.out.reply(r.finish()),
            Flow::Close => {
                cx.out.reply(r.finish());
                let _ = cx.net.apply(
                    Quit {
                        id,
                        reason: "Connection closed".into(),
                    },
                    cx.out,
                    cx.now,
                );
                return Step::Close;
            }
        }
        self.st.flood_exempt = cx.net.user(id).is_some_and(|u| u.modes.oper);
        let (cfg, net) = (&self.cfg, &*cx.net);
        let lookup = if !watching {
            None
        } else {
            self.st
                .edit_guard(|g| crate::protect::after(cfg, net, id, before, g))
        };
        match lookup {
            Some(effect) => Step::Wait(effect),
            None => Step::Continue,
        }
    }

    /// Nick protection's lookup answered: NickServ warns, and the grace runs.
    fn protect_found(&mut self, cx: &mut Cx<'_>, outcome: Outcome) -> Step {
        let (id, now) = (self.st.id(), cx.instant);
        let (cfg, net) = (&self.cfg, &*cx.net);
        let found = self
            .st
            .edit_guard(|g| crate::protect::found(cfg, net, id, g, &outcome, now));
        if let (Some(secs), Some(u)) = (found, cx.net.user(id)) {
            let nick = u.nick();
            let ns = commands::nickserv::NICK;
            let text = format!(
                ":{ns}!{ns}@services.{} NOTICE {nick} :The nick {nick} belongs to a \
                 registered account: identify (/msg {ns} IDENTIFY <password>, or SASL) \
                 within {secs} seconds, or you will be renamed\r\n",
                self.cfg.server_name
            );
            cx.out.reply(text.into_bytes());
        }
        Step::Continue
    }

    /// Nick protection's grace is over: the user takes a guest nick, through
    /// NICK's claim.
    fn protect_rename(&mut self, cx: &mut Cx<'_>) -> Step {
        let id = self.st.id();
        let mut rng = (id.serial() as u32) ^ (cx.now as u32);
        let nick = crate::protect::guest_nick(cx.net, id, &mut rng);
        let r = self.responder(cx, None);
        self.command(cx, r, |ctx| {
            let ns = commands::nickserv::NICK;
            let text = format!(
                ":{ns}!{ns}@services.{} NOTICE {} :You did not identify in time: \
                 your nick is changed to {nick}",
                ctx.cfg.server_name,
                ctx.nick()
            );
            ctx.r.raw(&text);
            let effect = crate::effect::Effect::ClaimNick {
                key: crate::names::casefold(&nick),
                owner: id,
            };
            (Flow::Wait(effect, commands::Cont::Nick { nick }), "NICK")
        })
    }

    /// Sends `ERROR` and leaves the network.
    fn close(&mut self, cx: &mut Cx<'_>, reason: &str) -> Step {
        cx.out.final_words(self.farewell(reason));
        let quit = Quit {
            id: self.st.id(),
            reason: reason.to_string(),
        };
        let _ = cx.net.apply(quit, cx.out, cx.now);
        Step::Close
    }
}

impl Session for IrcSession {
    fn id(&self) -> ConnId {
        self.st.id()
    }

    fn max_line(&self) -> usize {
        // Tags have their own budget on top of the 512-byte message.
        MAX_TAGS_SECTION_LEN + self.cfg.limits.irc_line_length
    }

    fn caps(&self) -> u32 {
        self.st.caps
    }

    fn start(&mut self, _cx: &mut Cx<'_>) -> Step {
        // Nothing to announce: IRC clients are greeted once they register.
        Step::Continue
    }

    fn line(&mut self, cx: &mut Cx<'_>, raw: &[u8]) -> Step {
        self.refresh(cx);
        self.partial.line_done();
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(|&b| b == b' ') {
            return Step::Continue;
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            // UTF8ONLY: refuse the line, keep the connection.
            let lossy = String::from_utf8_lossy(raw);
            let parsed = Message::parse_client(&lossy).ok();
            let cmd = parsed
                .as_ref()
                .map_or_else(|| "*".into(), |m| m.verb().into_owned());
            let mut r = self.responder(cx, parsed.as_ref().and_then(|m| m.tag("label")));
            r.standard(
                "FAIL",
                &cmd,
                "INVALID_UTF8",
                &[],
                "Message rejected: this server only accepts UTF-8",
            );
            cx.out.reply(r.finish());
            return Step::Continue;
        };
        let msg = match Message::parse_client(text) {
            Ok(m) => m,
            Err(ParseError::TagsTooLong { .. }) => return self.too_long(cx),
            Err(_) => return Step::Continue,
        };
        // The 512-byte limit applies to the message without its tags.
        let body_len = if text.starts_with('@') {
            text.find(' ').map_or(0, |i| text.len() - i - 1)
        } else {
            text.len()
        };
        if body_len + 2 > self.cfg.limits.irc_line_length {
            return self.too_long(cx);
        }
        let r = self.responder(cx, msg.tag("label"));
        self.command(cx, r, |ctx| commands::dispatch(ctx, &msg))
    }

    fn resume(&mut self, cx: &mut Cx<'_>, outcome: Outcome) -> Step {
        self.refresh(cx);
        let Some(p) = self.st.take_pending() else {
            if self.st.guard().is_some_and(|g| g.looking_up()) {
                return self.protect_found(cx, outcome);
            }
            return Step::Continue;
        };
        let Pending { r, cont, command } = p;
        self.command(cx, r, |ctx| {
            (commands::resume(ctx, command, cont, outcome), command)
        })
    }

    fn too_long(&mut self, cx: &mut Cx<'_>) -> Step {
        self.partial.line_done();
        let mut r = self.responder(cx, None);
        r.num(ERR_INPUTTOOLONG, &[]);
        cx.out.reply(r.finish());
        Step::Continue
    }

    fn deadline(&self) -> Option<Instant> {
        let t = match &self.st.registration {
            Some(reg) => reg.by,
            None => self.keepalive.deadline(self.keepalive_limits()),
        };
        let t = match self.st.guard().and_then(|g| g.deadline()) {
            Some(g) => g.min(t),
            None => t,
        };
        Some(match self.partial.deadline(self.partial_limit()) {
            Some(p) => p.min(t),
            None => t,
        })
    }

    fn on_deadline(&mut self, cx: &mut Cx<'_>) -> Step {
        self.refresh(cx);
        let now = cx.instant;
        if self.partial.expired(now, self.partial_limit()) {
            return self.close(cx, "Partial line timeout");
        }
        if let Some(reg) = &self.st.registration {
            if now >= reg.by {
                return self.close(cx, "Registration timed out");
            }
            return Step::Continue;
        }
        let (id, cfg, net) = (self.st.id(), &self.cfg, &*cx.net);
        let busy = self.st.has_pending();
        if self.st.guard().is_some()
            && self
                .st
                .edit_guard(|g| crate::protect::expired(cfg, net, id, g, now, busy))
        {
            return self.protect_rename(cx);
        }
        let limits = self.keepalive_limits();
        match self.keepalive.poll(now, limits) {
            KeepAliveAction::Nothing => Step::Continue,
            KeepAliveAction::SendPing => {
                let ping = format!("PING :{}\r\n", self.cfg.server_name);
                cx.out.reply(ping.into_bytes());
                Step::Continue
            }
            KeepAliveAction::TimedOut => {
                let secs = self.cfg.limits.ping_interval + self.cfg.limits.ping_timeout;
                self.close(cx, &format!("Ping timeout: {secs} seconds"))
            }
        }
    }

    fn on_input(&mut self, now: Instant, partial: bool) {
        self.keepalive.on_input(now);
        self.partial.update(now, partial);
    }

    fn farewell(&self, reason: &str) -> Vec<u8> {
        format!(
            "ERROR :Closing Link: {} ({reason})\r\n",
            Host(IpAddr::V6(self.ip))
        )
        .into_bytes()
    }

    fn flood_exempt(&self) -> bool {
        self.st.flood_exempt
    }

    fn gone(&mut self, cx: &mut Cx<'_>, reason: &str) {
        let id = self.st.id();
        if let Some(u) = cx.net.user(id)
            && u.registered
        {
            tracing::info!(conn = %id, nick = %u.nick(), %reason, "client disconnected");
        }
        let quit = Quit {
            id,
            reason: reason.to_string(),
        };
        let _ = cx.net.apply(quit, cx.out, cx.now);
    }
}
