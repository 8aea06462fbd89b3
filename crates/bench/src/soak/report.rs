//! The soak scenario's own figures and its human-readable table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::report::Report;

/// How one kind of attack ended, over all its connections.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AttackStats {
    /// Attack name (garbage, overlong, flood, half-open, reset, slow-loris,
    /// idle, no-read).
    pub attack: String,
    /// irc or line.
    pub dialect: String,
    /// What the server should do, and the limit responsible.
    pub expected: String,
    /// Connections that ran this attack to its end.
    pub count: u64,
    /// Of those, how many ended as expected.
    pub as_expected: u64,
    /// Of those, how many the server let run past its limit (still open, or
    /// not answering at all): each is a failure.
    pub not_refused: u64,
    /// Attacks cut short by the end of the run (not counted above).
    pub interrupted: u64,
    /// Mean and longest seconds from connecting to the end of the attack.
    pub mean_s: f64,
    pub max_s: f64,
    /// How they ended: the server's last line (host part removed), EOF, reset...
    pub outcomes: BTreeMap<String, u64>,
}

/// One server sample.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RssSample {
    /// Seconds since the start of the chat phase (negative during setup).
    pub t_s: f64,
    pub rss_kib: u64,
    /// Server CPU seconds consumed since the first sample.
    pub cpu_s: f64,
}

/// The user count the server reports once every hostile connection is gone.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LusersCheck {
    /// Registered users (RPL_LOCALUSERS), the observer included.
    pub users: u64,
    /// Connections not registered (RPL_LUSERUNKNOWN).
    pub unknown: u64,
    /// Well-behaved clients + the observer.
    pub expected_users: u64,
    pub ok: bool,
}

/// Server health over the run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Health {
    /// The server process still ran at the end (true when no pid was given).
    pub alive: bool,
    /// Whether a server log was searched.
    pub log_checked: bool,
    /// Lines of the log mentioning "panicked" (at most 10).
    pub panics: Vec<String>,
    /// One sample a second (with --server-pid).
    pub samples: Vec<RssSample>,
    /// RSS before the well-behaved clients connected, and once they were in.
    pub rss_idle_kib: Option<u64>,
    pub rss_loaded_kib: Option<u64>,
    /// Chat phase: first and last samples, min and max after warm-up.
    pub rss_first_kib: Option<u64>,
    pub rss_last_kib: Option<u64>,
    pub rss_min_kib: Option<u64>,
    pub rss_max_kib: Option<u64>,
    /// Seconds of the chat phase left out of min/max/slope.
    pub warmup_s: f64,
    /// Least-squares RSS slope after warm-up.
    pub rss_slope_kib_per_min: Option<f64>,
    /// Server CPU seconds over the chat phase, and as cores.
    pub cpu_s: Option<f64>,
    pub cpu_cores: Option<f64>,
    /// Server CPU seconds over the whole run (setup to end).
    pub cpu_total_s: Option<f64>,
    pub lusers: Option<LusersCheck>,
}

/// The soak scenario's own figures (the common ones are in [`Report`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SoakReport {
    /// No loss/reorder/dup, nobody dropped, server alive, no panic, no ghost,
    /// every attack refused.
    pub passed: bool,
    /// Why not.
    pub failures: Vec<String>,
    pub irc_target: String,
    pub line_target: String,
    pub well_behaved: usize,
    pub irc_clients: usize,
    pub line_clients: usize,
    /// Well-behaved clients that send (the others only listen).
    pub senders: usize,
    pub rooms: usize,
    /// Mean seconds between two messages of one sender.
    pub interval_s: f64,
    /// PINGs the well-behaved IRC clients answered.
    pub pongs: u64,
    /// Well-behaved clients whose connection ended during the run.
    pub well_disconnected: u64,
    pub first_disconnect: Option<String>,
    pub hostile_clients: usize,
    /// Hostile connections attempted (each attack is one).
    pub hostile_connections: u64,
    pub attacks: Vec<AttackStats>,
    pub health: Health,
}

impl SoakReport {
    /// The human-readable report.
    pub fn to_table(&self, r: &Report) -> String {
        let mut o = String::new();
        let w = &mut o;
        let _ = writeln!(
            w,
            "bavard bench soak -> irc {} / line {}: {}",
            self.irc_target,
            self.line_target,
            if self.passed { "PASSED" } else { "FAILED" }
        );
        let _ = writeln!(
            w,
            "{:<22} {} clients ({} irc, {} line, {} sending every {:.1}s ±50%) in {} channels, {} B payload",
            "well-behaved",
            self.well_behaved,
            self.irc_clients,
            self.line_clients,
            self.senders,
            self.interval_s,
            self.rooms,
            r.size
        );
        let c = &r.connect;
        let _ = writeln!(
            w,
            "{:<22} {} ready in {:.2}s",
            "setup", c.registered, c.setup_s
        );
        let _ = writeln!(
            w,
            "{:<22} {:.1}s chat, {:.2}s drain{}",
            "measured",
            r.duration_s,
            r.drain_s,
            if r.drained { "" } else { " (INCOMPLETE)" }
        );
        let _ = writeln!(
            w,
            "{:<22} {} sent, {} of {} deliveries",
            "messages", r.sent, r.received, r.expected
        );
        let _ = writeln!(
            w,
            "{:<22} lost {}, reordered {}, duplicates {}, foreign {}",
            "integrity", r.lost, r.reordered, r.duplicates, r.foreign
        );
        if let Some(p) = &r.latency_us {
            let _ = writeln!(
                w,
                "{:<22} p50 {:.1}ms p99 {:.1}ms max {:.1}ms",
                "latency",
                p.p50 as f64 / 1e3,
                p.p99 as f64 / 1e3,
                p.max as f64 / 1e3
            );
        }
        let _ = writeln!(
            w,
            "{:<22} {} PINGs answered, {} clients dropped{}",
            "keep-alive",
            self.pongs,
            self.well_disconnected,
            self.first_disconnect
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            w,
            "{:<22} {} clients, {} connections",
            "hostile", self.hostile_clients, self.hostile_connections
        );
        let _ = writeln!(
            w,
            "  {:<11} {:<5} {:>5} {:>5} {:>5} {:>6} {:>6}  outcomes",
            "attack", "dial", "n", "ok", "open", "mean", "max"
        );
        for a in &self.attacks {
            let outcomes: Vec<String> = a
                .outcomes
                .iter()
                .map(|(k, v)| format!("{v}× {k}"))
                .collect();
            let _ = writeln!(
                w,
                "  {:<11} {:<5} {:>5} {:>5} {:>5} {:>5.1}s {:>5.1}s  {}",
                a.attack,
                a.dialect,
                a.count,
                a.as_expected,
                a.not_refused,
                a.mean_s,
                a.max_s,
                outcomes.join(" | ")
            );
        }
        let h = &self.health;
        let kib =
            |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{:.1} MiB", v as f64 / 1024.0));
        if !h.samples.is_empty() {
            let _ = writeln!(
                w,
                "{:<22} idle {} -> loaded {}; chat: first {} last {}, after {:.0}s warm-up min {} max {}, slope {}",
                "server RSS",
                kib(h.rss_idle_kib),
                kib(h.rss_loaded_kib),
                kib(h.rss_first_kib),
                kib(h.rss_last_kib),
                h.warmup_s,
                kib(h.rss_min_kib),
                kib(h.rss_max_kib),
                h.rss_slope_kib_per_min
                    .map_or("-".into(), |s| format!("{s:+.0} KiB/min"))
            );
            let _ = writeln!(
                w,
                "{:<22} {:.2} s over the chat ({:.2} cores), {:.2} s in all",
                "server CPU",
                h.cpu_s.unwrap_or(0.0),
                h.cpu_cores.unwrap_or(0.0),
                h.cpu_total_s.unwrap_or(0.0)
            );
        }
        let _ = writeln!(
            w,
            "{:<22} alive {}, panics {}{}",
            "server",
            if h.alive { "yes" } else { "NO" },
            if h.log_checked {
                h.panics.len().to_string()
            } else {
                "(no log)".into()
            },
            h.lusers
                .as_ref()
                .map(|l| format!(
                    ", LUSERS after the attacks: {} users (expected {}), {} unknown",
                    l.users, l.expected_users, l.unknown
                ))
                .unwrap_or_default()
        );
        for p in &h.panics {
            let _ = writeln!(w, "  panic: {p}");
        }
        let _ = writeln!(
            w,
            "{:<22} {:.2} CPU s over {:.2}s = {:.2} cores",
            "loader", r.loader.cpu_s, r.loader.wall_s, r.loader.cores_used
        );
        for warn in &r.warnings {
            let _ = writeln!(w, "warning: {warn}");
        }
        for f in &self.failures {
            let _ = writeln!(w, "FAILURE: {f}");
        }
        o
    }
}
