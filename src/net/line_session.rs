//! The connection-side of the `line` dialect.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::conn::{Flow, Session, lock};
use super::timers::PartialLineGuard;
use crate::config::Config;
use crate::hub::{ConnId, Hub, now_millis};
use crate::line::{self, Command};
use crate::oper::{OperCheck, OperGate};

/// State of one `line` connection.
pub struct LineSession {
    id: ConnId,
    cfg: Arc<Config>,
    oper: OperGate,
    partial: PartialLineGuard,
    /// Operators are spared flood control; cached after each command.
    is_oper: bool,
}

impl LineSession {
    pub fn new(id: ConnId, cfg: Arc<Config>) -> LineSession {
        LineSession {
            id,
            oper: OperGate::default(),
            partial: PartialLineGuard::default(),
            cfg,
            is_oper: false,
        }
    }
}

impl LineSession {
    fn partial_limit(&self) -> Duration {
        Duration::from_secs(self.cfg.limits.partial_line_timeout)
    }
}

impl Session for LineSession {
    fn max_line(&self) -> usize {
        self.cfg.limits.line_length
    }

    fn start(&mut self, hub: &Mutex<Hub>) {
        let mut h = lock(hub);
        line::on_connect(
            &mut h,
            self.id,
            || rand::random_range(10000..100000),
            now_millis(),
        );
    }

    fn line(&mut self, hub: &Mutex<Hub>, raw: &[u8]) -> Flow {
        // A line ended: a partial line pending after this read started later.
        self.partial.line_done();
        // Invalid UTF-8 is replaced by U+FFFD and the line goes on.
        let text = String::from_utf8_lossy(raw);
        let cmd = line::parse(&text);
        let check = match &cmd {
            Command::Oper { name, password } => {
                self.oper.check(&self.cfg, name, password, Instant::now())
            }
            _ => OperCheck::Denied,
        };
        let mut h = lock(hub);
        let flow = line::handle(&mut h, self.id, cmd, check, now_millis());
        self.is_oper = h.user(self.id).is_some_and(|u| u.modes.oper);
        flow
    }

    fn too_long(&mut self, hub: &Mutex<Hub>) -> Flow {
        self.partial.line_done();
        let h = lock(hub);
        line::notice(
            &h,
            self.id,
            &format!(
                "Line too long (more than {} bytes): discarded",
                self.cfg.limits.line_length
            ),
        );
        Flow::Continue
    }

    fn deadline(&self) -> Option<Instant> {
        self.partial.deadline(self.partial_limit())
    }

    fn on_deadline(&mut self, hub: &Mutex<Hub>, now: Instant) -> Flow {
        if !self.partial.expired(now, self.partial_limit()) {
            return Flow::Continue;
        }
        let mut h = lock(hub);
        line::notice(&h, self.id, "Timeout: a line was left unfinished");
        h.quit(self.id, "Partial line timeout", now_millis());
        Flow::Close
    }

    fn on_input(&mut self, now: Instant, partial: bool) {
        self.partial.update(now, partial);
    }

    fn farewell(&self, reason: &str) -> Bytes {
        Bytes::from(format!("[server] Disconnected: {reason}\n"))
    }

    fn flood_exempt(&self) -> bool {
        self.is_oper
    }

    fn gone(&mut self, hub: &Mutex<Hub>, reason: &str) {
        let mut h = lock(hub);
        if let Some(u) = h.user(self.id) {
            tracing::info!(conn = self.id, nick = %u.nick(), %reason, "client disconnected");
        }
        h.quit(self.id, reason, now_millis());
    }
}
