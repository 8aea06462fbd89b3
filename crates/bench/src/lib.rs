//! `bavard bench`: a load generator for chat servers (think redis-benchmark).
//!
//! It speaks three dialects (`irc`, bavard's `line` protocol, raw `echo`)
//! and runs four scenarios:
//!
//! * `fanout`: C clients in one channel, S of them sending at a total rate
//!   (or with a window of messages in flight). One message = C-1 deliveries.
//! * `rooms`: C clients over K channels, all (or S) of them sending.
//! * `idle`: N registered connections held open (connect rate, RSS/conn).
//! * `echo`: request/response round trips against an echo server.
//! * `soak`: well-behaved clients of both dialects chat in K channels while
//!   hostile clients attack (garbage, overlong lines, floods, half-open and
//!   reset connections, slow-loris, idlers, non-readers); checks zero loss,
//!   counts how each attack ended, samples the server's RSS and CPU.
//!
//! Every payload carries its sender, a per-sender sequence number and its
//! send time on a clock shared by all of the loader's tasks, so receivers
//! can count losses, reorderings and duplicates and measure latency.
//! With `--server-pid`, the server's CPU time over the measured window gives
//! the key figure: deliveries per server CPU-second; its RSS growth per
//! connection is reported whole (`VmRSS`, comparable with any tool) and
//! anonymous only (`RssAnon`, without the binary's pages, steadier).
//!
//! Targets must be loopback addresses unless `--allow-remote` is given.
//! `--target` takes several addresses, the nodes of a cluster: the chat,
//! idle and echo scenarios spread their clients over them round-robin, and
//! the chat scenarios check that all the pure receivers of a channel saw
//! one order of its messages (see the `order` module).
//!
//! Library use (what the tests do):
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use bavard_bench::{BenchConfig, Dialect, Scenario, run_scenario};
//! let mut cfg = BenchConfig::new(Scenario::Fanout, Dialect::Irc, "127.0.0.1:6667".parse()?);
//! cfg.clients = 50;
//! cfg.senders = 5;
//! let report = run_scenario(&cfg).await?;
//! assert_eq!(report.lost, 0);
//! # Ok(()) }
//! ```

mod chat;
mod common;
mod config;
mod echo;
mod idle;
mod net;
mod order;
mod report;
mod soak;
mod stats;
mod wire;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, bail};

pub use config::{BenchConfig, Dialect, Scenario};
pub use order::OrderMismatch;
pub use report::{ConnectStats, LoaderStats, Report, ServerStats};
pub use soak::{AttackStats, Health, LusersCheck, RssSample, SoakReport};
pub use stats::Percentiles;

/// Command-line arguments of `bavard bench`.
#[derive(Clone, Debug, clap::Args)]
#[command(after_help = "Examples:
  bavard bench fanout --target 127.0.0.1:6670 --clients 1000 --senders 10 --rate 1000
  bavard bench fanout --dialect line --window 8 --server-pid $(pidof bavard)
  bavard bench fanout --target 127.0.0.1:6667,127.0.0.1:6668,127.0.0.1:6669 --clients 300
  bavard bench rooms --clients 1000 --rooms 100 --rate 2000 --json
  bavard bench idle --conns 10000 --hold 10 --server-pid 1234
  bavard bench echo --target 127.0.0.1:7777 --conns 50 --size 64
  bavard bench soak --duration 60 --server-pid $(pidof bavard) --server-log /tmp/bavard.log")]
pub struct BenchArgs {
    /// Workload to run.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Protocol (default: irc, or echo for the echo scenario).
    #[arg(long, value_enum)]
    pub dialect: Option<Dialect>,
    /// Server HOST:PORT, or a comma-separated list of them (the nodes of a
    /// cluster): client i connects to the (i mod n)-th; soak uses the first
    /// only, as its IRC listener (default 127.0.0.1:6667 for irc, :7777 for
    /// line/echo).
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT...]")]
    pub target: Option<String>,
    /// Allow a target that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Connections (default: fanout 100, rooms/idle 1000, echo 16;
    /// soak: well-behaved clients, half IRC and half line).
    #[arg(long, visible_alias = "conns", short = 'c')]
    pub clients: Option<usize>,
    /// Sending clients (default: fanout 10, rooms all).
    #[arg(long, short = 's')]
    pub senders: Option<usize>,
    /// Channels for the rooms (default 100) and soak (default 20) scenarios.
    #[arg(long, short = 'k')]
    pub rooms: Option<usize>,
    /// Total messages per second over all senders.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Instead of --rate: messages in flight per sender (fanout: as seen by
    /// client 0; rooms: by the first two members of the sender's channel) or
    /// requests in flight per connection (echo).
    #[arg(long)]
    pub window: Option<u64>,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Measured seconds (default 10; soak 30).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Warm-up seconds before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Longest wait for outstanding deliveries, in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// Seconds the idle scenario holds its connections.
    #[arg(long, default_value_t = 5.0)]
    pub hold: f64,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 500)]
    pub connect_concurrency: usize,
    /// Seconds allowed per connection for connecting, and again for register + join.
    #[arg(long, default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Channel name (fanout) or name prefix (rooms).
    #[arg(long, default_value = "#bench")]
    pub channel: String,
    /// Nick prefix; client i is <prefix><i>.
    #[arg(long, default_value = "bv")]
    pub nick_prefix: String,
    /// Server process id: sample its CPU time and RSS.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Do not spread client source addresses over 127.0.0.0/8.
    #[arg(long)]
    pub no_spread: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Keep TCP_QUICKACK armed on receiving sockets (diagnoses server-side
    /// Nagle + delayed-ACK stalls; real clients do not do this).
    #[arg(long)]
    pub quickack: bool,
    /// No progress line on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Tokio worker threads for the loader.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Options of the soak scenario (boxed: they are rarely used).
    #[command(flatten)]
    pub soak: Box<SoakArgs>,
}

/// Options only the `soak` scenario uses.
#[derive(Clone, Debug, clap::Args)]
pub struct SoakArgs {
    /// soak: the server's line-dialect listener.
    #[arg(long, default_value = "127.0.0.1:7777")]
    pub line_target: String,
    /// soak: hostile clients, each cycling through the attacks.
    #[arg(long, default_value_t = 100)]
    pub hostile: usize,
    /// soak: mean seconds between two messages of one well-behaved client (jittered ±50%).
    #[arg(long, default_value_t = 2.0)]
    pub interval: f64,
    /// soak: longest wait, in seconds, for the server to end one attack
    /// (keep it above the server's flood max_delay and timers).
    #[arg(long, default_value_t = 40.0)]
    pub attack_timeout: f64,
    /// soak: the server's log, searched for "panicked" at the end.
    #[arg(long)]
    pub server_log: Option<std::path::PathBuf>,
}

fn secs(v: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .with_context(|| format!("--{what} must be a non-negative number"))
}

impl BenchArgs {
    /// Resolves defaults and the target into a [`BenchConfig`].
    pub fn to_config(&self) -> anyhow::Result<BenchConfig> {
        let dialect = self.dialect.unwrap_or(match self.scenario {
            Scenario::Echo => Dialect::Echo,
            _ => Dialect::Irc,
        });
        let target_s = self
            .target
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{}", dialect.default_port()));
        let targets = resolve_list(&target_s, self.allow_remote)?;
        let mut cfg = BenchConfig::new(self.scenario, dialect, targets[0]);
        cfg.targets = targets;
        if let Some(c) = self.clients {
            cfg.clients = c;
            if self.scenario != Scenario::Fanout {
                cfg.senders = c;
            }
        }
        if let Some(s) = self.senders {
            cfg.senders = s;
        } else if self.scenario == Scenario::Fanout {
            cfg.senders = cfg.senders.min(cfg.clients.saturating_sub(1)).max(1);
        }
        if let Some(k) = self.rooms {
            cfg.rooms = k;
        }
        cfg.rate = self.rate;
        cfg.window = self.window;
        cfg.size = self.size;
        if let Some(d) = self.duration {
            cfg.duration = secs(d, "duration")?;
        }
        cfg.warmup = secs(self.warmup, "warmup")?;
        cfg.drain = secs(self.drain, "drain")?;
        cfg.hold = secs(self.hold, "hold")?;
        cfg.connect_concurrency = self.connect_concurrency;
        cfg.connect_timeout = secs(self.connect_timeout, "connect-timeout")?;
        cfg.channel = self.channel.clone();
        cfg.nick_prefix = self.nick_prefix.clone();
        cfg.server_pid = self.server_pid;
        cfg.spread_sources = !self.no_spread;
        cfg.progress = !self.quiet;
        cfg.quickack = self.quickack;
        if self.scenario == Scenario::Soak {
            let o = &self.soak;
            cfg.line_target = resolve(&o.line_target, self.allow_remote)?;
            cfg.hostile = o.hostile;
            cfg.interval = secs(o.interval, "interval")?;
            cfg.attack_timeout = secs(o.attack_timeout, "attack-timeout")?;
            cfg.server_log = o.server_log.clone();
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Resolves a comma-separated list of `HOST:PORT`, each as [`resolve`]
/// does, in order; at least one, and no empty item.
fn resolve_list(list: &str, allow_remote: bool) -> anyhow::Result<Vec<SocketAddr>> {
    list.split(',')
        .map(|item| {
            let item = item.trim();
            if item.is_empty() {
                bail!("--target {list:?} has an empty item");
            }
            resolve(item, allow_remote)
        })
        .collect()
}

/// Resolves `HOST:PORT`, refusing non-loopback addresses unless allowed.
fn resolve(target: &str, allow_remote: bool) -> anyhow::Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = target
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve --target {target}"))?
        .collect();
    // Prefer IPv4: source spreading over 127.0.0.0/8 needs it.
    let Some(addr) = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
    else {
        bail!("--target {target} resolves to no address");
    };
    if !addr.ip().is_loopback() && !allow_remote {
        bail!(
            "--target {target} ({addr}) is not a loopback address; \
             pass --allow-remote to load a server you own elsewhere"
        );
    }
    Ok(addr)
}

/// Runs one scenario to completion and returns its report.
///
/// Raises RLIMIT_NOFILE to its hard limit first. Every phase is bounded in
/// time, so this returns even when the server misbehaves.
pub async fn run_scenario(cfg: &BenchConfig) -> anyhow::Result<Report> {
    cfg.validate()?;
    let limit = bavard_sockets::raise_fd_limit();
    let mut report = match cfg.scenario {
        Scenario::Fanout | Scenario::Rooms => chat::run_chat(cfg).await?,
        Scenario::Idle => idle::run_idle(cfg).await?,
        Scenario::Echo => echo::run_echo(cfg).await?,
        Scenario::Soak => soak::run_soak(cfg).await?,
    };
    if cfg.scenario == Scenario::Soak && cfg.targets.len() > 1 {
        report
            .warnings
            .push(format!("soak loaded only the first target, {}", cfg.target));
    }
    if let Some(l) = limit
        && (cfg.clients as u64) + (cfg.hostile as u64) * 2 + 64 > l
    {
        report.warnings.push(format!(
            "open-file limit {l} is close to the connection count"
        ));
    }
    Ok(report)
}

/// Runs a benchmark from the command line and prints its report.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let cfg = args.to_config()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let report = rt.block_on(run_scenario(&cfg))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.to_table());
    }
    // Soak is a pass/fail check: a failure must show in the exit status.
    if let Some(s) = &report.soak
        && !s.passed
    {
        bail!("soak failed: {}", s.failures.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn config(args: &[&str]) -> anyhow::Result<BenchConfig> {
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))?;
        cli.bench.to_config()
    }

    fn addrs(v: &[&str]) -> Vec<SocketAddr> {
        v.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn one_target() {
        let cfg = config(&["fanout", "--target", "127.0.0.1:6690"]).unwrap();
        assert_eq!(cfg.target, "127.0.0.1:6690".parse().unwrap());
        assert_eq!(cfg.targets, vec![cfg.target]);
        // The default is one target too.
        let cfg = config(&["rooms"]).unwrap();
        assert_eq!(cfg.targets, addrs(&["127.0.0.1:6667"]));
    }

    #[test]
    fn three_targets_in_order() {
        let cfg = config(&[
            "fanout",
            "--target",
            "127.0.0.1:6667, 127.0.0.1:6668,[::1]:6669",
        ])
        .unwrap();
        assert_eq!(
            cfg.targets,
            addrs(&["127.0.0.1:6667", "127.0.0.1:6668", "[::1]:6669"])
        );
        assert_eq!(cfg.target, cfg.targets[0]);
    }

    #[test]
    fn remote_target_in_a_list_needs_allow_remote() {
        let list = "127.0.0.1:6667,192.0.2.1:6667";
        let e = config(&["fanout", "--target", list]).unwrap_err();
        assert!(e.to_string().contains("not a loopback"), "{e:#}");
        let cfg = config(&["fanout", "--target", list, "--allow-remote"]).unwrap();
        assert_eq!(cfg.targets, addrs(&["127.0.0.1:6667", "192.0.2.1:6667"]));
    }

    #[test]
    fn empty_target_item_is_refused() {
        for list in ["127.0.0.1:6667,,127.0.0.1:6668", "127.0.0.1:6667,", ",", ""] {
            let e = config(&["fanout", "--target", list]).unwrap_err();
            assert!(e.to_string().contains("empty item"), "{list:?}: {e:#}");
        }
    }

    #[test]
    fn clients_go_round_robin_over_targets() {
        let mut cfg =
            config(&["fanout", "--target", "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3"]).unwrap();
        let ports: Vec<u16> = (0..7).map(|i| cfg.target_for(i).port()).collect();
        assert_eq!(ports, [1, 2, 3, 1, 2, 3, 1]);
        // Each client's source address is chosen for its own target.
        assert_eq!(
            net::source_addr(cfg.target_for(4), 4, true),
            Some("127.0.1.5".parse().unwrap())
        );
        cfg.targets = addrs(&["127.0.0.1:1"]);
        assert!((0..5).all(|i| cfg.target_for(i).port() == 1));
    }

    #[test]
    fn targets_must_start_with_target() {
        let mut cfg = BenchConfig::new(
            Scenario::Fanout,
            Dialect::Irc,
            "127.0.0.1:1".parse().unwrap(),
        );
        cfg.validate().unwrap();
        cfg.target = "127.0.0.1:2".parse().unwrap();
        assert!(cfg.validate().is_err());
        cfg.targets = addrs(&["127.0.0.1:2", "127.0.0.1:3"]);
        cfg.validate().unwrap();
        cfg.targets.clear();
        assert!(cfg.validate().is_err());
    }
}
