//! The `line` dialect: the lab's netcat-friendly protocol, made correct.
//!
//! One command per `\n`-terminated line (a trailing `\r` is dropped), verbs
//! case-insensitive, server lines prefixed `[server] `. See
//! `docs/line-protocol.md` for the specification; [`bavard_proto::line`]
//! parses the commands, [`commands`] executes them.

mod account;
pub mod commands;
mod history;
mod render;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use render::{LINE, LineDialect};

use crate::config::CoreConfig;
use crate::effect::Outcome;
use crate::ids::ConnId;
use crate::oper::OperGate;
use crate::session::{Cx, Session, Step};
use crate::state::changes::Quit;
use crate::state::{Change, ChangeError};
use crate::timers::PartialLineGuard;
use commands::{Cont, Flow};

/// One `line` connection.
pub struct LineSession {
    id: ConnId,
    cfg: Arc<CoreConfig>,
    oper: OperGate,
    partial: PartialLineGuard,
    /// A command waiting on an effect.
    pending: Option<Box<Cont>>,
    /// Guest nick candidates come from here (xorshift), seeded by the server.
    rng: u32,
    /// Operators are spared flood control; cached after each command.
    is_oper: bool,
    /// Nick protection: the protected nick being looked up or in its grace.
    guard: Option<crate::protect::Guard>,
}

/// What a line command works with.
pub struct Lx<'a, 'b> {
    pub cx: &'a mut Cx<'b>,
    pub id: ConnId,
    pub cfg: Arc<CoreConfig>,
    pub oper: &'a mut OperGate,
    rng: &'a mut u32,
}

impl Lx<'_, '_> {
    /// Queues one `[server] ` line for the user.
    pub fn notice(&mut self, text: &str) {
        let mut line = Vec::with_capacity(text.len() + 10);
        line.extend_from_slice(b"[server] ");
        line.extend_from_slice(text.as_bytes());
        line.push(b'\n');
        self.cx.out.reply(line);
    }

    pub fn apply<C: Change>(&mut self, change: C) -> Result<C::Output, ChangeError> {
        self.cx.net.apply(change, self.cx.out, self.cx.now)
    }

    /// A guest nick number, 10000 to 99999.
    fn guest(&mut self) -> u32 {
        crate::protect::guest(self.rng)
    }

    /// A guest nick nobody holds now.
    fn guest_nick(&mut self) -> String {
        crate::protect::guest_nick(self.cx.net, self.id, self.rng)
    }
}

impl LineSession {
    /// A session for connection `id`; `seed` picks its guest nicks.
    pub fn new(id: ConnId, cfg: Arc<CoreConfig>, seed: u32) -> LineSession {
        LineSession {
            id,
            cfg,
            oper: OperGate::default(),
            partial: PartialLineGuard::default(),
            pending: None,
            rng: seed,
            is_oper: false,
            guard: None,
        }
    }

    fn partial_limit(&self) -> Duration {
        Duration::from_secs(self.cfg.limits.partial_line_timeout)
    }

    /// Runs `f` with the command context, then turns its flow into a step.
    fn run(&mut self, cx: &mut Cx<'_>, f: impl FnOnce(&mut Lx<'_, '_>) -> Flow) -> Step {
        if !Arc::ptr_eq(&self.cfg, cx.net.config()) {
            self.cfg = cx.net.config().clone();
        }
        // Nick protection compares the nick before and after the command;
        // off, it costs this per-message path nothing.
        let watching = self.cfg.accounts.nick_protection.is_some() || self.guard.is_some();
        let before = if watching {
            crate::protect::mark(cx.net, self.id)
        } else {
            0
        };
        let flow = {
            let mut lx = Lx {
                cx,
                id: self.id,
                cfg: self.cfg.clone(),
                oper: &mut self.oper,
                rng: &mut self.rng,
            };
            f(&mut lx)
        };
        self.is_oper = cx.net.user(self.id).is_some_and(|u| u.modes.oper);
        match flow {
            Flow::Continue => {
                let guard = &mut self.guard;
                match crate::protect::after(&self.cfg, cx.net, self.id, before, guard) {
                    Some(effect) => Step::Wait(effect),
                    None => Step::Continue,
                }
            }
            Flow::Close => {
                self.quit(cx, "Connection closed");
                Step::Close
            }
            Flow::Wait(effect, cont) => {
                self.pending = Some(Box::new(cont));
                Step::Wait(effect)
            }
        }
    }

    /// Nick protection's lookup answered: warn, and let the grace run.
    fn protect_found(&mut self, cx: &mut Cx<'_>, outcome: Outcome) -> Step {
        let (cfg, now) = (cx.net.config().clone(), cx.instant);
        let found = crate::protect::found(&cfg, cx.net, self.id, &mut self.guard, &outcome, now);
        if let (Some(secs), Some(u)) = (found, cx.net.user(self.id)) {
            let nick = u.nick().to_string();
            let text = format!(
                "[server] The nick {nick} belongs to a registered account: log in \
                 (LOGIN {nick} <password>) within {secs} seconds, or you will be renamed\n"
            );
            cx.out.reply(text.into_bytes());
        }
        Step::Continue
    }

    fn quit(&mut self, cx: &mut Cx<'_>, reason: &str) {
        let quit = Quit {
            id: self.id,
            reason: reason.to_string(),
        };
        let _ = cx.net.apply(quit, cx.out, cx.now);
    }
}

impl Session for LineSession {
    fn id(&self) -> ConnId {
        self.id
    }

    fn max_line(&self) -> usize {
        self.cfg.limits.line_length
    }

    fn start(&mut self, cx: &mut Cx<'_>) -> Step {
        self.run(cx, commands::on_connect)
    }

    fn line(&mut self, cx: &mut Cx<'_>, raw: &[u8]) -> Step {
        // A line ended: a partial line pending after this read started later.
        self.partial.line_done();
        // Invalid UTF-8 is replaced by U+FFFD and the line goes on.
        let text = String::from_utf8_lossy(raw);
        let cmd = bavard_proto::line::parse(&text);
        self.run(cx, |lx| commands::handle(lx, cmd))
    }

    fn resume(&mut self, cx: &mut Cx<'_>, outcome: Outcome) -> Step {
        let Some(cont) = self.pending.take() else {
            if self.guard.as_ref().is_some_and(|g| g.looking_up()) {
                return self.protect_found(cx, outcome);
            }
            return Step::Continue;
        };
        self.run(cx, |lx| commands::resume(lx, *cont, outcome))
    }

    fn too_long(&mut self, cx: &mut Cx<'_>) -> Step {
        self.partial.line_done();
        let max = self.cfg.limits.line_length;
        self.run(cx, |lx| {
            lx.notice(&format!("Line too long (more than {max} bytes): discarded"));
            Flow::Continue
        })
    }

    fn deadline(&self) -> Option<Instant> {
        let partial = self.partial.deadline(self.partial_limit());
        match (partial, self.guard.as_ref().and_then(|g| g.deadline())) {
            (Some(p), Some(g)) => Some(p.min(g)),
            (p, g) => p.or(g),
        }
    }

    fn on_deadline(&mut self, cx: &mut Cx<'_>) -> Step {
        if !self.partial.expired(cx.instant, self.partial_limit()) {
            let (cfg, now, busy) = (cx.net.config().clone(), cx.instant, self.pending.is_some());
            if crate::protect::expired(&cfg, cx.net, self.id, &mut self.guard, now, busy) {
                return self.run(cx, commands::protect_rename);
            }
            return Step::Continue;
        }
        cx.out
            .final_words(b"[server] Timeout: a line was left unfinished\n".to_vec());
        self.quit(cx, "Partial line timeout");
        Step::Close
    }

    fn on_input(&mut self, now: Instant, partial: bool) {
        self.partial.update(now, partial);
    }

    fn farewell(&self, reason: &str) -> Vec<u8> {
        format!("[server] Disconnected: {reason}\n").into_bytes()
    }

    fn flood_exempt(&self) -> bool {
        self.is_oper
    }

    fn gone(&mut self, cx: &mut Cx<'_>, reason: &str) {
        if let Some(u) = cx.net.user(self.id) {
            tracing::info!(conn = %self.id, nick = %u.nick(), %reason, "client disconnected");
        }
        self.quit(cx, reason);
    }
}
