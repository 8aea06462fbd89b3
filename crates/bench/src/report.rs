//! The result of a run, as JSON or as a human-readable table.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::order::{self, OrderMismatch};
use super::stats::Percentiles;

fn yes() -> bool {
    true
}

/// Connection setup figures.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConnectStats {
    /// Connections tried.
    pub attempted: u64,
    /// TCP connects that succeeded.
    pub connected: u64,
    /// Connections that completed registration (and join, for chat scenarios).
    pub registered: u64,
    /// Connections that failed (connect, registration, join or timeout).
    pub failed: u64,
    /// `line` dialect: joins whose confirmation never came (proceeded anyway).
    pub join_unconfirmed: u64,
    /// Registered connections per second of setup.
    pub rate_per_s: f64,
    /// Time from starting the setup to the last registration.
    pub setup_s: f64,
    /// TCP connect time.
    pub connect_us: Option<Percentiles>,
    /// Connect + registration (+ join) time.
    pub register_us: Option<Percentiles>,
    /// The first failure, to tell what went wrong.
    pub first_error: Option<String>,
}

/// Server-side figures (with `--server-pid`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServerStats {
    /// The sampled process.
    pub pid: u32,
    /// CPU seconds (user + system) over the measured window (+ drain), or
    /// over setup + hold for `idle`.
    pub cpu_s: f64,
    /// RSS before the first connection.
    pub rss_before_kib: Option<u64>,
    /// RSS at the end (all connections still open).
    pub rss_after_kib: Option<u64>,
    /// (after - before) / registered connections.
    pub rss_per_conn_bytes: Option<f64>,
    /// The same for the anonymous part of the RSS (`RssAnon`), which leaves
    /// out the binary's pages: steadier between runs.
    #[serde(default)]
    pub anon_per_conn_bytes: Option<f64>,
    /// The key figure: deliveries (or round trips) per server CPU second.
    pub deliveries_per_cpu_s: Option<f64>,
}

/// The loader's own cost, to tell whether it was the bottleneck.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LoaderStats {
    /// CPU seconds used by the loader over the same interval as the server's.
    pub cpu_s: f64,
    /// Wall-clock seconds of that interval.
    pub wall_s: f64,
    /// cpu_s / wall_s: near the worker-thread count means loader-bound.
    pub cores_used: f64,
}

/// Everything one run measured. Serialises to the `--json` output.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// fanout, rooms, idle or echo.
    pub scenario: String,
    /// irc, line or echo.
    pub dialect: String,
    /// Server address (the first of `targets`).
    pub target: String,
    /// Every server address the clients were spread over, `target` first.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Connections.
    pub clients: usize,
    /// Sending clients.
    pub senders: usize,
    /// Channels (1 for fanout, K for rooms, 0 otherwise).
    pub rooms: usize,
    /// Payload bytes.
    pub size: usize,
    /// Target total send rate (rate mode).
    pub rate: Option<f64>,
    /// In-flight window (window mode).
    pub window: Option<u64>,
    /// Warm-up seconds (not measured).
    pub warmup_s: f64,
    /// Measured window in seconds.
    pub duration_s: f64,
    /// Seconds spent waiting for outstanding deliveries.
    pub drain_s: f64,
    /// Whether every expected delivery arrived before the drain timeout.
    pub drained: bool,
    /// Messages (requests) sent in the measured window.
    pub sent: u64,
    /// Deliveries expected: each sent message times the other members of its channel.
    pub expected: u64,
    /// Deliveries (round trips) received of messages sent in the window.
    pub received: u64,
    /// expected - received after the drain.
    pub lost: u64,
    /// Messages that arrived with a lower sequence number than one already seen.
    pub reordered: u64,
    /// Messages seen twice in a row.
    pub duplicates: u64,
    /// Our own messages echoed back to us (IRC echo-message); not counted.
    pub self_echoes: u64,
    /// Payload-like lines that did not parse as ours.
    pub foreign: u64,
    /// fanout/rooms: no channel's pure receivers disagree on the order of
    /// its messages (true as well when nothing was checked).
    #[serde(default = "yes")]
    pub order_ok: bool,
    /// fanout/rooms: channels whose order was checked (those with a pure receiver).
    #[serde(default)]
    pub order_channels: u64,
    /// fanout/rooms: pure receivers compared (their channel's highest count).
    #[serde(default)]
    pub order_compared: u64,
    /// fanout/rooms: pure receivers left out of the comparison because they
    /// received fewer messages than others of their channel.
    #[serde(default)]
    pub order_fewer: u64,
    /// fanout/rooms: the channels whose receivers saw different orders.
    #[serde(default)]
    pub order_mismatches: Vec<OrderMismatch>,
    /// sent / duration.
    pub sent_per_s: f64,
    /// received / duration: deliveries/s (round trips/s for echo).
    pub deliveries_per_s: f64,
    /// Delivery (round trip) latency.
    pub latency_us: Option<Percentiles>,
    /// Connection setup.
    pub connect: ConnectStats,
    /// Seconds `idle` held its connections.
    pub hold_s: Option<f64>,
    /// Server-side figures (with `--server-pid`).
    pub server: Option<ServerStats>,
    /// The loader's own CPU.
    pub loader: LoaderStats,
    /// Anything suspicious seen during the run.
    pub warnings: Vec<String>,
    /// The soak scenario's own figures (hostile attacks, server health).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<super::soak::SoakReport>,
}

fn pct_row(out: &mut String, label: &str, p: &Option<Percentiles>) {
    match p {
        Some(p) => {
            let _ = writeln!(
                out,
                "{label:<22} p50 {} p90 {} p99 {} p99.9 {} max {} (n={})",
                fmt_us(p.p50),
                fmt_us(p.p90),
                fmt_us(p.p99),
                fmt_us(p.p999),
                fmt_us(p.max),
                p.count
            );
        }
        None => {
            let _ = writeln!(out, "{label:<22} -");
        }
    }
}

fn fmt_us(us: u64) -> String {
    if us >= 10_000_000 {
        format!("{:.1}s", us as f64 / 1e6)
    } else if us >= 10_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else {
        format!("{us}µs")
    }
}

fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}

impl Report {
    /// The human-readable table printed without `--json`.
    pub fn to_table(&self) -> String {
        if let Some(s) = &self.soak {
            return s.to_table(self);
        }
        let mut o = String::new();
        let w = &mut o;
        let targets = if self.targets.len() > 1 {
            format!("{} ({} nodes)", self.targets.join(","), self.targets.len())
        } else {
            self.target.clone()
        };
        let _ = writeln!(
            w,
            "bavard bench {} ({}) -> {targets}",
            self.scenario, self.dialect
        );
        let mode = match (self.window, self.rate) {
            (Some(win), _) => format!("window {win}"),
            (None, Some(r)) => format!("rate {r} msg/s"),
            _ => String::new(),
        };
        match self.scenario.as_str() {
            "idle" => {
                let _ = writeln!(w, "{:<22} {} connections", "setup", self.clients);
            }
            "echo" => {
                let _ = writeln!(
                    w,
                    "{:<22} {} connections, {} B requests, {}",
                    "setup", self.clients, self.size, mode
                );
            }
            _ => {
                let _ = writeln!(
                    w,
                    "{:<22} {} clients, {} senders, {} rooms, {} B payload, {}",
                    "setup", self.clients, self.senders, self.rooms, self.size, mode
                );
            }
        }
        let c = &self.connect;
        let _ = writeln!(
            w,
            "{:<22} {} registered / {} attempted, {} failed, {}/s over {:.2}s",
            "connections",
            c.registered,
            c.attempted,
            c.failed,
            fmt_rate(c.rate_per_s),
            c.setup_s
        );
        if c.join_unconfirmed > 0 {
            let _ = writeln!(w, "{:<22} {}", "joins unconfirmed", c.join_unconfirmed);
        }
        if let Some(e) = &c.first_error {
            let _ = writeln!(w, "{:<22} {e}", "first error");
        }
        pct_row(w, "connect time", &c.connect_us);
        pct_row(w, "register time", &c.register_us);
        if self.scenario == "idle" {
            let _ = writeln!(w, "{:<22} {:.1}s", "held for", self.hold_s.unwrap_or(0.0));
        } else {
            let unit = if self.scenario == "echo" {
                "round trips"
            } else {
                "deliveries"
            };
            let _ = writeln!(
                w,
                "{:<22} {:.2}s (+{:.2}s warm-up, {:.2}s drain{})",
                "measured",
                self.duration_s,
                self.warmup_s,
                self.drain_s,
                if self.drained { "" } else { ", INCOMPLETE" }
            );
            let _ = writeln!(
                w,
                "{:<22} {} ({}/s)",
                "sent",
                self.sent,
                fmt_rate(self.sent_per_s)
            );
            let _ = writeln!(
                w,
                "{:<22} {} of {} expected ({}/s)",
                unit,
                self.received,
                self.expected,
                fmt_rate(self.deliveries_per_s)
            );
            let _ = writeln!(
                w,
                "{:<22} lost {}, reordered {}, duplicates {}",
                "integrity", self.lost, self.reordered, self.duplicates
            );
            pct_row(w, "latency", &self.latency_us);
            if matches!(self.scenario.as_str(), "fanout" | "rooms") {
                order::write_lines(
                    w,
                    self.order_channels,
                    self.order_compared,
                    self.order_fewer,
                    &self.order_mismatches,
                );
            }
        }
        if let Some(s) = &self.server {
            let kib = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v} KiB"));
            let _ = writeln!(
                w,
                "{:<22} pid {}: {:.3} CPU s, RSS {} -> {}",
                "server",
                s.pid,
                s.cpu_s,
                kib(s.rss_before_kib),
                kib(s.rss_after_kib)
            );
            match (s.rss_per_conn_bytes, s.anon_per_conn_bytes) {
                (Some(b), Some(a)) => {
                    let _ = writeln!(
                        w,
                        "{:<22} {b:.0} B (anonymous {a:.0} B)",
                        "server RSS per conn"
                    );
                }
                (Some(b), None) => {
                    let _ = writeln!(w, "{:<22} {b:.0} B", "server RSS per conn");
                }
                _ => {}
            }
            if let Some(d) = s.deliveries_per_cpu_s {
                let _ = writeln!(w, "{:<22} {}", "per server CPU s", fmt_rate(d));
            }
        }
        let l = &self.loader;
        let _ = writeln!(
            w,
            "{:<22} {:.3} CPU s over {:.2}s = {:.2} cores",
            "loader", l.cpu_s, l.wall_s, l.cores_used
        );
        for warn in &self.warnings {
            let _ = writeln!(w, "warning: {warn}");
        }
        o
    }
}
