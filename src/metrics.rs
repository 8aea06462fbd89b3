//! The server's counters and gauges, and their Prometheus text rendering
//! (`/metrics` on the HTTP listener, docs/web.md lists each one).
//!
//! Every figure is a relaxed atomic bumped where the event is decided, so
//! the hot path pays one uncontended add (deliveries are counted under the
//! hub's lock, as a plain integer in `Delivery`, and read from there). The
//! figures kept elsewhere (users, channels, deliveries) and the process's
//! own (memory, CPU, descriptors) are read when the page is rendered.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// How a connection reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Tcp,
    Tls,
    WebSocket,
}

impl Via {
    const ALL: [Via; 3] = [Via::Tcp, Via::Tls, Via::WebSocket];

    fn label(self) -> &'static str {
        match self {
            Via::Tcp => "tcp",
            Via::Tls => "tls",
            Via::WebSocket => "websocket",
        }
    }
}

/// Why a client was dropped by the server (not by its own QUIT or EOF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Its send queue went past `limits.send_queue`.
    SendQueue,
    /// Its held input went past flood control's bound (`Excess Flood`).
    Flood,
    /// A write stood still for `limits.write_timeout`.
    WriteTimeout,
    /// A session deadline: keep-alive, registration or partial line.
    Timeout,
}

impl Dropped {
    const ALL: [Dropped; 4] = [
        Dropped::SendQueue,
        Dropped::Flood,
        Dropped::WriteTimeout,
        Dropped::Timeout,
    ];

    fn label(self) -> &'static str {
        match self {
            Dropped::SendQueue => "send_queue",
            Dropped::Flood => "flood",
            Dropped::WriteTimeout => "write_timeout",
            Dropped::Timeout => "timeout",
        }
    }
}

/// Why a connection was refused before it was served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    ServerFull,
    PerAddress,
    Rate,
    /// A WebSocket upgrade from an origin not in `http.allowed_origins`.
    Origin,
}

impl Refused {
    const ALL: [Refused; 4] = [
        Refused::ServerFull,
        Refused::PerAddress,
        Refused::Rate,
        Refused::Origin,
    ];

    fn label(self) -> &'static str {
        match self {
            Refused::ServerFull => "server_full",
            Refused::PerAddress => "per_address",
            Refused::Rate => "rate",
            Refused::Origin => "origin",
        }
    }
}

impl From<crate::net::limits::Refusal> for Refused {
    fn from(r: crate::net::limits::Refusal) -> Refused {
        use crate::net::limits::Refusal;
        match r {
            Refusal::ServerFull => Refused::ServerFull,
            Refusal::TooManyFromAddress => Refused::PerAddress,
            Refusal::TooFast => Refused::Rate,
        }
    }
}

/// Dialects a connection's gauge is kept for.
const DIALECTS: [&str; 2] = ["line", "irc"];

/// The counters and gauges one server keeps.
pub struct Metrics {
    /// Open connections, by dialect (line, irc) then [`Via`].
    connections: [AtomicI64; 6],
    registrations: AtomicU64,
    lines_received: AtomicU64,
    bytes_written: AtomicU64,
    drops: [AtomicU64; 4],
    refused: [AtomicU64; 4],
    /// Seconds since the Unix epoch at start.
    started: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            connections: Default::default(),
            registrations: AtomicU64::new(0),
            lines_received: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            drops: Default::default(),
            refused: Default::default(),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}

fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

/// Figures the hub holds, read under its lock when the page is rendered.
#[derive(Clone, Copy, Debug, Default)]
pub struct HubFigures {
    pub users: usize,
    pub registered: usize,
    pub channels: usize,
    pub deliveries: u64,
}

impl Metrics {
    fn slot(irc: bool, via: Via) -> usize {
        usize::from(irc) * 3 + via as usize
    }

    /// A connection opened (`+1`) or closed (`-1`).
    pub fn connection(&self, irc: bool, via: Via, delta: i64) {
        self.connections[Self::slot(irc, via)].fetch_add(delta, Ordering::Relaxed);
    }

    pub fn registered(&self, n: u64) {
        add(&self.registrations, n);
    }

    pub fn line_received(&self) {
        add(&self.lines_received, 1);
    }

    pub fn written(&self, bytes: usize) {
        add(&self.bytes_written, bytes as u64);
    }

    pub fn dropped(&self, why: Dropped) {
        add(&self.drops[why as usize], 1);
    }

    pub fn refused(&self, why: Refused) {
        add(&self.refused[why as usize], 1);
    }

    /// The whole page in the Prometheus text format (version 0.0.4).
    pub fn render(&self, hub: HubFigures) -> String {
        let mut o = String::with_capacity(4096);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        head(
            &mut o,
            "bavard_connections",
            "gauge",
            "Open client connections.",
        );
        for (d, dialect) in DIALECTS.iter().enumerate() {
            for via in Via::ALL {
                let n = self.connections[Self::slot(d == 1, via)].load(Ordering::Relaxed);
                let _ = writeln!(
                    o,
                    "bavard_connections{{dialect=\"{dialect}\",transport=\"{}\"}} {n}",
                    via.label()
                );
            }
        }
        let counters = [
            (
                "bavard_registrations_total",
                "Clients that completed registration.",
                get(&self.registrations),
            ),
            (
                "bavard_messages_received_total",
                "Input lines received from clients (both dialects, every command).",
                get(&self.lines_received),
            ),
            (
                "bavard_deliveries_total",
                "Events (messages, joins, quits...) queued to clients, one per recipient; replies excluded.",
                hub.deliveries,
            ),
            (
                "bavard_written_bytes_total",
                "Bytes written to client connections.",
                get(&self.bytes_written),
            ),
        ];
        for (name, help, v) in counters {
            head(&mut o, name, "counter", help);
            let _ = writeln!(o, "{name} {v}");
        }
        let drops = Dropped::ALL.map(|w| (w.label(), get(&self.drops[w as usize])));
        by_reason(
            &mut o,
            "bavard_dropped_clients_total",
            "Clients the server dropped, by reason.",
            &drops,
        );
        let refused = Refused::ALL.map(|w| (w.label(), get(&self.refused[w as usize])));
        by_reason(
            &mut o,
            "bavard_refused_connections_total",
            "Connections refused before being served, by reason.",
            &refused,
        );
        let gauges = [
            (
                "bavard_users",
                "Connections in the network, registered or not.",
                hub.users,
            ),
            (
                "bavard_registered_users",
                "Registered users.",
                hub.registered,
            ),
            ("bavard_channels", "Channels.", hub.channels),
        ];
        for (name, help, v) in gauges {
            head(&mut o, name, "gauge", help);
            let _ = writeln!(o, "{name} {v}");
        }
        process(&mut o, self.started);
        o
    }
}

/// A counter with one sample per reason.
fn by_reason(o: &mut String, name: &str, help: &str, samples: &[(&str, u64)]) {
    head(o, name, "counter", help);
    for (reason, v) in samples {
        let _ = writeln!(o, "{name}{{reason=\"{reason}\"}} {v}");
    }
}

fn head(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The process's own figures, from /proc (Linux); absent elsewhere.
fn process(o: &mut String, started: f64) {
    head(
        o,
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch, in seconds.",
    );
    let _ = writeln!(o, "process_start_time_seconds {started:.3}");
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // The fields after the command name, which is in parentheses and
        // may itself hold spaces; utime and stime (fields 14 and 15) are
        // the 12th and 13th after it, in USER_HZ ticks, which the kernel
        // fixes at 100 for every program whatever its own tick.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        let num = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        if let (Some(u), Some(s)) = (num(11), num(12)) {
            head(
                o,
                "process_cpu_seconds_total",
                "counter",
                "User and system CPU time spent, in seconds.",
            );
            let _ = writeln!(o, "process_cpu_seconds_total {:.2}", (u + s) / 100.0);
        }
    }
    // In kB in /proc/self/status, which spares knowing the page size.
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
    if let Some(kb) = rss {
        head(
            o,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        let _ = writeln!(o, "process_resident_memory_bytes {}", kb * 1024);
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        head(o, "process_open_fds", "gauge", "Open file descriptors.");
        let _ = writeln!(o, "process_open_fds {}", dir.count());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_and_type_and_counters_move() {
        let m = Metrics::default();
        m.connection(true, Via::WebSocket, 1);
        m.dropped(Dropped::Flood);
        m.refused(Refused::Origin);
        let page = m.render(HubFigures {
            users: 2,
            registered: 1,
            channels: 1,
            deliveries: 7,
        });
        assert!(page.contains("bavard_connections{dialect=\"irc\",transport=\"websocket\"} 1\n"));
        assert!(page.contains("bavard_dropped_clients_total{reason=\"flood\"} 1\n"));
        assert!(page.contains("bavard_refused_connections_total{reason=\"origin\"} 1\n"));
        assert!(page.contains("bavard_deliveries_total 7\n"));
        assert!(page.contains("process_resident_memory_bytes "));
        for line in page.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            assert!(
                page.contains(&format!("# TYPE {name} ")),
                "{name} has no TYPE"
            );
        }
    }
}
