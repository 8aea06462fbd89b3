//! The resolved configuration of one benchmark run.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which workload to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// C clients in one channel, S of them sending: one message, C-1 deliveries.
    Fanout,
    /// C clients spread over K channels, all (or S) sending.
    Rooms,
    /// N registered connections held open: connect rate and memory per connection.
    Idle,
    /// Request/response round trips against an echo server.
    Echo,
    /// Well-behaved clients of both dialects chatting while hostile clients
    /// attack, with the server's RSS and CPU sampled: a bounded soak test.
    Soak,
}

impl Scenario {
    /// The lowercase name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::Rooms => "rooms",
            Scenario::Idle => "idle",
            Scenario::Echo => "echo",
            Scenario::Soak => "soak",
        }
    }
}

/// Which protocol the clients speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// RFC 1459/2812 IRC (NICK/USER, JOIN, PRIVMSG, PING/PONG).
    Irc,
    /// bavard's netcat protocol (`NICK`, `JOIN`, `MSG`, `[nick] text`).
    Line,
    /// Raw bytes to an echo server.
    Echo,
}

impl Dialect {
    /// The lowercase name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Irc => "irc",
            Dialect::Line => "line",
            Dialect::Echo => "echo",
        }
    }

    /// Default port of a server speaking this dialect.
    pub fn default_port(self) -> u16 {
        match self {
            Dialect::Irc => 6667,
            Dialect::Line | Dialect::Echo => 7777,
        }
    }
}

/// Everything a run needs, with every default already applied.
///
/// Build one with [`BenchConfig::new`] and adjust the public fields.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// The workload.
    pub scenario: Scenario,
    /// The protocol.
    pub dialect: Dialect,
    /// Server address (loopback unless the CLI was given `--allow-remote`):
    /// the first of `targets`, the only one `soak` uses.
    pub target: SocketAddr,
    /// Every server address, `target` first: the nodes of a cluster, or just
    /// `target`. Client i of `fanout`, `rooms`, `idle` and `echo` connects to
    /// `targets[i % targets.len()]` (see [`BenchConfig::target_for`]).
    pub targets: Vec<SocketAddr>,
    /// Number of connections (C, or N for `idle`/`echo`).
    pub clients: usize,
    /// Number of sending clients (S); they are the last S clients, so client 0
    /// is a pure receiver whenever S < C.
    pub senders: usize,
    /// Number of channels for `rooms` (K).
    pub rooms: usize,
    /// Total messages per second over all senders (ignored with `window`).
    pub rate: f64,
    /// Window mode: at most this many of a sender's messages in flight
    /// (fanout: as seen by client 0; echo: requests outstanding per connection).
    pub window: Option<u64>,
    /// Payload size in bytes.
    pub size: usize,
    /// Sending before the measured window starts (not counted).
    pub warmup: Duration,
    /// Length of the measured window.
    pub duration: Duration,
    /// Longest wait for outstanding deliveries after sending stops.
    pub drain: Duration,
    /// How long `idle` holds its connections.
    pub hold: Duration,
    /// Connections being set up at the same time.
    pub connect_concurrency: usize,
    /// Per-connection limit for the TCP connect, and again for register + join.
    pub connect_timeout: Duration,
    /// Channel name (fanout) or prefix (rooms: `<channel>0`, `<channel>1`...).
    pub channel: String,
    /// Nick prefix; client i is `<prefix><i>`.
    pub nick_prefix: String,
    /// Server process to sample for CPU time and RSS.
    pub server_pid: Option<u32>,
    /// Bind client sockets to varied 127.x.y.z sources (loopback IPv4 targets
    /// only) so that the ~28k ephemeral ports of one source are not a ceiling.
    pub spread_sources: bool,
    /// Print a progress line on stderr.
    pub progress: bool,
    /// Re-arm TCP_QUICKACK after every read so that our ACKs are never
    /// delayed: shows how much of the latency is a server's Nagle waiting
    /// on the receivers' delayed ACKs (real clients do not do this).
    pub quickack: bool,
    /// `soak`: address of the server's line-dialect listener (`target` is
    /// the IRC one).
    pub line_target: SocketAddr,
    /// `soak`: hostile clients (H).
    pub hostile: usize,
    /// `soak`: mean seconds between two messages of one well-behaved client.
    pub interval: Duration,
    /// `soak`: longest wait for the server to end one attack.
    pub attack_timeout: Duration,
    /// `soak`: server log to search for panics.
    pub server_log: Option<std::path::PathBuf>,
}

impl BenchConfig {
    /// A configuration with the defaults of `scenario`.
    pub fn new(scenario: Scenario, dialect: Dialect, target: SocketAddr) -> Self {
        let clients = match scenario {
            Scenario::Fanout => 100,
            Scenario::Rooms | Scenario::Idle | Scenario::Soak => 1000,
            Scenario::Echo => 16,
        };
        let senders = match scenario {
            Scenario::Fanout => 10,
            _ => clients,
        };
        Self {
            scenario,
            dialect,
            target,
            targets: vec![target],
            clients,
            senders,
            rooms: if scenario == Scenario::Soak { 20 } else { 100 },
            rate: 1000.0,
            window: None,
            size: 100,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(if scenario == Scenario::Soak { 30 } else { 10 }),
            drain: Duration::from_secs(5),
            hold: Duration::from_secs(5),
            connect_concurrency: 500,
            connect_timeout: Duration::from_secs(10),
            channel: "#bench".into(),
            nick_prefix: "bv".into(),
            server_pid: None,
            spread_sources: true,
            progress: false,
            quickack: false,
            line_target: SocketAddr::new(target.ip(), Dialect::Line.default_port()),
            hostile: 100,
            interval: Duration::from_secs(2),
            attack_timeout: Duration::from_secs(40),
            server_log: None,
        }
    }

    /// The server client `i` connects to: round-robin over `targets`.
    pub fn target_for(&self, i: usize) -> SocketAddr {
        match self.targets.len() {
            0 => self.target,
            n => self.targets[i % n],
        }
    }

    /// Checks the combination of options before anything connects.
    pub fn validate(&self) -> anyhow::Result<()> {
        use anyhow::bail;
        // Setting `target` alone after `new` would leave `targets` pointing
        // at the old address: refuse rather than load the wrong server.
        if self.targets.first() != Some(&self.target) {
            bail!("BenchConfig::targets must be non-empty and start with BenchConfig::target");
        }
        if self.clients == 0 {
            bail!("--clients must be at least 1");
        }
        if self.connect_concurrency == 0 {
            bail!("--connect-concurrency must be at least 1");
        }
        match self.scenario {
            Scenario::Fanout | Scenario::Rooms => {
                if self.dialect == Dialect::Echo {
                    bail!(
                        "{} needs a chat dialect (irc or line)",
                        self.scenario.as_str()
                    );
                }
                if self.clients < 2 {
                    bail!("{} needs at least 2 clients", self.scenario.as_str());
                }
                if self.senders == 0 || self.senders > self.clients {
                    bail!("--senders must be in 1..=clients ({})", self.clients);
                }
                if self.window.is_none() && !(self.rate > 0.0 && self.rate.is_finite()) {
                    bail!("--rate must be a positive number");
                }
                if self.window == Some(0) {
                    bail!("--window must be at least 1");
                }
                if self.window.is_some() {
                    // The window is measured by observers that must hear every
                    // sender: client 0 in fanout, the first two members of
                    // each channel in rooms (each hears the other's messages).
                    if self.scenario == Scenario::Fanout && self.senders >= self.clients {
                        bail!("--window needs a non-sending observer: use --senders < --clients");
                    }
                    if self.scenario == Scenario::Rooms && self.clients < 2 * self.rooms {
                        bail!("--window in rooms needs at least two clients per room");
                    }
                }
                if self.scenario == Scenario::Rooms
                    && (self.rooms == 0 || self.rooms > self.clients)
                {
                    bail!("--rooms must be in 1..=clients ({})", self.clients);
                }
                if self.dialect == Dialect::Irc && self.size + self.channel.len() + 40 > 510 {
                    bail!("--size too large for an IRC line (512 bytes at most)");
                }
            }
            Scenario::Echo => {
                if self.dialect != Dialect::Echo {
                    bail!("the echo scenario needs --dialect echo");
                }
                if self.window == Some(0) {
                    bail!("--window must be at least 1");
                }
            }
            Scenario::Idle => {}
            Scenario::Soak => {
                if self.dialect != Dialect::Irc {
                    bail!(
                        "soak takes the IRC address as --target and the line one as --line-target"
                    );
                }
                if self.clients < 4 {
                    bail!("soak needs at least 4 well-behaved clients");
                }
                if self.rooms == 0 || self.rooms * 2 > self.clients {
                    bail!(
                        "--rooms must be in 1..={} (two clients per channel at least)",
                        self.clients / 2
                    );
                }
                if self.interval.is_zero() {
                    bail!("--interval must be positive");
                }
                if self.size + self.channel.len() + 40 > 510 {
                    bail!("--size too large for an IRC line (512 bytes at most)");
                }
            }
        }
        if !self.channel.starts_with('#') && self.dialect != Dialect::Echo {
            bail!("--channel must start with '#'");
        }
        Ok(())
    }
}
