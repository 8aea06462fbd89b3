//! The connection-side of the `line` dialect.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::conn::{Flow, Session, lock};
use crate::config::Config;
use crate::hub::{ConnId, Hub, now_millis};
use crate::line::{self, Command};
use crate::oper::{OperCheck, OperGate};

/// State of one `line` connection.
pub struct LineSession {
    id: ConnId,
    cfg: Arc<Config>,
    oper: OperGate,
    /// When the current partial line started (slow-loris guard).
    partial_since: Option<Instant>,
}

impl LineSession {
    pub fn new(id: ConnId, cfg: Arc<Config>) -> LineSession {
        LineSession {
            id,
            cfg,
            oper: OperGate::default(),
            partial_since: None,
        }
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
        self.partial_since = None;
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
        line::handle(&mut h, self.id, cmd, check, now_millis())
    }

    fn too_long(&mut self, hub: &Mutex<Hub>) -> Flow {
        self.partial_since = None;
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
        self.partial_since
            .map(|t| t + Duration::from_secs(self.cfg.limits.partial_line_timeout))
    }

    fn on_deadline(&mut self, hub: &Mutex<Hub>, now: Instant, partial: bool) -> Flow {
        if !partial {
            self.partial_since = None;
            return Flow::Continue;
        }
        match self.partial_since {
            Some(t) if now >= t + Duration::from_secs(self.cfg.limits.partial_line_timeout) => {
                let mut h = lock(hub);
                line::notice(&h, self.id, "Timeout: a line was left unfinished");
                h.quit(self.id, "Partial line timeout", now_millis());
                Flow::Close
            }
            Some(_) => Flow::Continue,
            None => {
                self.partial_since = Some(now);
                Flow::Continue
            }
        }
    }

    fn on_input(&mut self, _now: Instant) {}

    fn after_read(&mut self, partial: bool, now: Instant) {
        // The clock starts when a line is left incomplete and is not restarted
        // by more bytes of that line: trickling one byte at a time does not
        // keep a line alive forever. A completed line clears it (see `line`).
        if !partial {
            self.partial_since = None;
        } else if self.partial_since.is_none() {
            self.partial_since = Some(now);
        }
    }

    fn farewell(&self, reason: &str) -> Bytes {
        Bytes::from(format!("[server] Disconnected: {reason}\n"))
    }

    fn gone(&mut self, hub: &Mutex<Hub>, reason: &str) {
        let mut h = lock(hub);
        if let Some(u) = h.user(self.id) {
            tracing::info!(conn = self.id, nick = %u.nick, %reason, "client disconnected");
        }
        h.quit(self.id, reason, now_millis());
    }
}
