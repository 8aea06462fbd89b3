//! The `soak` scenario: a bounded endurance test against a running server.
//!
//! * **Well-behaved clients** (W, half IRC, half line) sit in K channels, each
//!   channel mixing both dialects, and chat at a modest jittered rate with
//!   stamped payloads (sender, per-sender sequence, send time). Membership is
//!   fixed for the whole run, so every receiver knows exactly what it should
//!   get from every other member: losses, reorderings and duplicates are
//!   counted per (receiver, sender) pair. Some IRC clients only listen, so
//!   the server PINGs them and they must answer.
//! * **Hostile clients** (H, both dialects, on their own 127.3.x.y source
//!   addresses so per-address limits never touch the well-behaved ones) cycle
//!   through attacks, each on a fresh connection, and record how each one
//!   ended: the server's farewell line, EOF, reset, or still open.
//! * **Server health** (with the server's pid): RSS and CPU every second, a
//!   RSS slope after warm-up, whether the process is alive at the end, panics
//!   in its log, and a LUSERS count once every hostile connection is gone
//!   (sessions the server forgot to remove show up there).
//!
//! [`SoakReport::passed`] is false on any loss, reordering or duplicate, a
//! well-behaved client dropped, the server dead, a panic in the log, a ghost
//! session, or an attack the server let run past its limit.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};

use super::common::{Progress, Shared};
use super::config::{BenchConfig, Dialect};
use super::net::{connect, join, register, source_addr};
use super::report::{ConnectStats, LoaderStats, Report, ServerStats};
use super::stats::{new_histogram, proc_cpu_seconds, proc_rss_kib, self_cpu_seconds, summarize};
use super::wire::{Incoming, LineBuf, Stamp, classify, decode, encode};

/// Receive buffer of a well-behaved client.
const RECV_BUF: usize = 16 * 1024;
/// Bytes of one overlong line (well past both dialects' limits).
const OVERLONG: usize = 100 * 1024;
/// Lines of one flood.
const FLOOD_LINES: usize = 10_000;
/// Requests a non-reader sends at once (under the default burst of 1000).
const NOREAD_BURST: usize = 900;

// ------------------------------------------------------------------ report

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

// ------------------------------------------------------------------ helpers

/// A small deterministic generator (SplitMix64): `Send`, seedable per task.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ t)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Source address of hostile client `h`: 127.3.0.0/16, away from the
/// well-behaved clients' 127.0.1.1-127.0.4.250.
fn hostile_source(target: SocketAddr, h: usize, spread: bool) -> Option<IpAddr> {
    match target {
        SocketAddr::V4(a) if spread && a.ip().is_loopback() => {
            let k = h % 60_000;
            Some(Ipv4Addr::new(127, 3, (k / 250) as u8, 1 + (k % 250) as u8).into())
        }
        _ => None,
    }
}

/// Connects a hostile client, optionally with a tiny receive buffer.
async fn hostile_connect(
    target: SocketAddr,
    src: Option<IpAddr>,
    rcvbuf: Option<u32>,
) -> io::Result<TcpStream> {
    let sock = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(b) = rcvbuf {
        sock.set_recv_buffer_size(b)?;
    }
    if let Some(ip) = src {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let s = sock.connect(target).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Whether the peer has closed (FIN or RST received), without reading.
fn peer_closed(s: &TcpStream) -> bool {
    // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: valid fd and a buffer of `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    // 1 = ESTABLISHED; CLOSE_WAIT (8) or CLOSE (7) once the server is gone.
    r == 0 && info.tcpi_state != 1
}

/// How reading ended.
#[derive(Debug)]
enum Until {
    Found,
    Eof,
    Reset,
    Error(String),
    Timeout,
}

/// A hostile connection's reading side: lines, and the last few of them.
struct Reader<R> {
    r: R,
    lb: LineBuf,
    last: VecDeque<String>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    fn new(r: R) -> Self {
        Reader {
            r,
            lb: LineBuf::new(16 * 1024),
            last: VecDeque::new(),
        }
    }

    /// Reads until a line satisfies `pred`, the connection ends or `deadline`.
    async fn until(&mut self, deadline: Instant, mut pred: impl FnMut(&[u8]) -> bool) -> Until {
        loop {
            while let Some(l) = self.lb.next_line() {
                if self.last.len() == 4 {
                    self.last.pop_front();
                }
                let keep = &l[..l.len().min(200)];
                self.last
                    .push_back(String::from_utf8_lossy(keep).into_owned());
                if pred(l) {
                    return Until::Found;
                }
            }
            match timeout_at(deadline, self.lb.fill(&mut self.r)).await {
                Err(_) => return Until::Timeout,
                Ok(Ok(0)) => return Until::Eof,
                Ok(Ok(_)) => {}
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => return Until::Reset,
                Ok(Err(e)) => return Until::Error(e.kind().to_string()),
            }
        }
    }

    /// The farewell among the last lines, normalised: `ERROR (<reason>)` for
    /// IRC (the host varies), the `[server]` line as is for line.
    fn farewell(&self) -> Option<String> {
        self.last.iter().rev().find_map(|l| farewell_of(l))
    }

    /// Label for a connection the server ended.
    fn ended(&self, how: &Until, secs: f64) -> String {
        if let Some(f) = self.farewell() {
            return f;
        }
        match how {
            Until::Eof => "EOF, no farewell".into(),
            Until::Reset => "reset, no farewell".into(),
            Until::Error(e) => format!("read error ({e}), no farewell"),
            Until::Timeout => format!("still open after {secs:.0}s"),
            Until::Found => "answered".into(),
        }
    }
}

fn farewell_of(l: &str) -> Option<String> {
    if let Some(rest) = l.strip_prefix("ERROR ") {
        if let (Some(a), Some(b)) = (rest.rfind('('), rest.rfind(')'))
            && a < b
        {
            return Some(format!("ERROR ({})", &rest[a + 1..b]));
        }
        return Some(format!("ERROR {rest}"));
    }
    const LINE: [&str; 6] = [
        "[server] Disconnected:",
        "[server] Timeout:",
        "[server] Too many",
        "[server] Connecting too fast",
        "[server] Server is full",
        "[server] Server is shutting down",
    ];
    LINE.iter().any(|p| l.starts_with(p)).then(|| l.to_string())
}

// ------------------------------------------------------------------ attacks

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Attack {
    Garbage,
    Overlong,
    Flood,
    HalfOpen,
    Reset,
    SlowLoris,
    Idle,
    NoRead,
}

const ATTACKS: [Attack; 8] = [
    Attack::Garbage,
    Attack::Overlong,
    Attack::Flood,
    Attack::HalfOpen,
    Attack::Reset,
    Attack::SlowLoris,
    Attack::Idle,
    Attack::NoRead,
];

impl Attack {
    fn name(self) -> &'static str {
        match self {
            Attack::Garbage => "garbage",
            Attack::Overlong => "overlong",
            Attack::Flood => "flood",
            Attack::HalfOpen => "half-open",
            Attack::Reset => "reset",
            Attack::SlowLoris => "slow-loris",
            Attack::Idle => "idle",
            Attack::NoRead => "no-read",
        }
    }

    /// What the server should do (and the limit that makes it do so).
    fn expected(self, d: Dialect) -> &'static str {
        match (self, d) {
            (Attack::Garbage, _) => "still serving (probe answered)",
            (Attack::Overlong, Dialect::Irc) => {
                "417 Input line too long, still serving [limits.irc_line_length]"
            }
            (Attack::Overlong, _) => "[server] Line too long, still serving [limits.line_length]",
            (Attack::Flood, _) => "closed: Excess Flood [flood.*]",
            (Attack::HalfOpen, _) => "closed by the server after our EOF",
            (Attack::Reset, _) => "reset by us; the session leaves (LUSERS check)",
            (Attack::SlowLoris, Dialect::Irc) => {
                "closed: Partial line timeout [limits.partial_line_timeout]"
            }
            (Attack::SlowLoris, _) => {
                "closed: Timeout: a line was left unfinished [limits.partial_line_timeout]"
            }
            (Attack::Idle, Dialect::Irc) => {
                "closed: Registration timed out [limits.registration_timeout]"
            }
            (Attack::Idle, _) => "kept open (line has no idle limit)",
            (Attack::NoRead, _) => "closed: SendQ exceeded [limits.send_queue]",
        }
    }

    /// Whether `label` is what [`Attack::expected`] describes.
    fn matches(self, d: Dialect, label: &str) -> bool {
        match (self, d) {
            (Attack::Garbage, _) => label == "still serving",
            (Attack::Overlong, Dialect::Irc) => label.starts_with("417"),
            (Attack::Overlong, _) => label.starts_with("[server] Line too long"),
            (Attack::Flood, _) => label.contains("Excess Flood"),
            (Attack::HalfOpen, _) => ended_by_server(label),
            (Attack::Reset, _) => label == "reset by us",
            (Attack::SlowLoris, Dialect::Irc) => label.contains("Partial line timeout"),
            (Attack::SlowLoris, _) => label.contains("left unfinished"),
            (Attack::Idle, Dialect::Irc) => label.contains("Registration timed out"),
            (Attack::Idle, _) => label.starts_with("still open"),
            (Attack::NoRead, _) => label.contains("SendQ exceeded"),
        }
    }

    /// Whether `label` means the server let the attack go on past its limit.
    fn not_refused(self, d: Dialect, label: &str) -> bool {
        match (self, d) {
            (Attack::Garbage | Attack::Overlong, _) => label.starts_with("no answer"),
            (Attack::Reset, _) | (Attack::Idle, Dialect::Line) => false,
            _ => label.starts_with("still open"),
        }
    }
}

fn ended_by_server(label: &str) -> bool {
    label.starts_with("ERROR")
        || label.starts_with("[server]")
        || label.starts_with("EOF")
        || label.starts_with("reset,")
}

/// One finished attack.
struct AttackResult {
    attack: Attack,
    dialect: Dialect,
    /// `None`: cut short by the end of the run.
    label: Option<String>,
    secs: f64,
}

/// What a hostile client needs.
struct HostileCtx {
    irc: SocketAddr,
    line: SocketAddr,
    spread: bool,
    /// Well-behaved channels (joined by some attacks).
    channels: Vec<String>,
    attack_timeout: Duration,
    connections: AtomicU64,
}

/// One hostile client: attacks, one after the other, until told to stop.
async fn hostile(
    h: usize,
    cx: Arc<HostileCtx>,
    mut stop: watch::Receiver<bool>,
    out: mpsc::UnboundedSender<AttackResult>,
) {
    let dialect = if h.is_multiple_of(2) {
        Dialect::Irc
    } else {
        Dialect::Line
    };
    let mut rng = Rng::new(h as u64 + 1);
    let mut k = h / 2;
    let mut serial = 0u64;
    // Spread the first connections over a second.
    let pause = Duration::from_millis(rng.below(1000));
    tokio::select! {
        _ = sleep(pause) => {}
        _ = stop.changed() => return,
    }
    loop {
        if *stop.borrow() {
            return;
        }
        let attack = ATTACKS[k % ATTACKS.len()];
        k += 1;
        serial += 1;
        let t0 = Instant::now();
        cx.connections.fetch_add(1, Ordering::Relaxed);
        let run = run_attack(attack, dialect, h, serial, &cx, &mut rng);
        let label = tokio::select! {
            l = run => Some(l),
            _ = stop.changed() => None,
        };
        let done = label.is_none();
        let _ = out.send(AttackResult {
            attack,
            dialect,
            label,
            secs: t0.elapsed().as_secs_f64(),
        });
        if done {
            return;
        }
        let pause = Duration::from_millis(200 + rng.below(500));
        tokio::select! {
            _ = sleep(pause) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Runs one attack on a fresh connection; returns how it ended.
async fn run_attack(
    attack: Attack,
    d: Dialect,
    h: usize,
    serial: u64,
    cx: &HostileCtx,
    rng: &mut Rng,
) -> String {
    let target = if d == Dialect::Irc { cx.irc } else { cx.line };
    let src = hostile_source(target, h, cx.spread);
    let rcvbuf = (attack == Attack::NoRead).then_some(4096);
    let deadline = Instant::now() + cx.attack_timeout;
    let s = match timeout_at(deadline, hostile_connect(target, src, rcvbuf)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return format!("connect failed: {}", e.kind()),
        Err(_) => return "connect timed out".into(),
    };
    let mut c = Reader::new(s);
    let nick = format!("hx{h}n{serial}");
    let chan = &cx.channels[h % cx.channels.len()];
    let nl: &[u8] = if d == Dialect::Irc { b"\r\n" } else { b"\n" };
    let r = match attack {
        Attack::Garbage => garbage(&mut c, d, nl, deadline, rng).await,
        Attack::Overlong => overlong(&mut c, d, nl, deadline).await,
        Attack::Flood => return flood(c, d, deadline).await,
        Attack::HalfOpen => half_open(&mut c, d, &nick, deadline).await,
        Attack::Reset => reset(&mut c, d, &nick, chan, deadline).await,
        Attack::SlowLoris => slow_loris(&mut c, d, &nick, deadline).await,
        Attack::Idle => idle(&mut c, d, deadline, cx.attack_timeout).await,
        Attack::NoRead => no_read(&mut c, d, &nick, chan, deadline).await,
    };
    r.unwrap_or_else(|e| format!("attack failed: {e:#}"))
}

/// Registers an IRC hostile (some attacks must get past registration).
async fn irc_register(
    c: &mut Reader<TcpStream>,
    nick: &str,
    deadline: Instant,
) -> anyhow::Result<String> {
    register(Dialect::Irc, &mut c.r, &mut c.lb, nick, deadline).await
}

/// The probe that shows a connection is still served, and its answer.
type Probe = (&'static [u8], fn(&[u8]) -> bool);

fn probe(d: Dialect) -> Probe {
    match d {
        Dialect::Irc => (b"PING :soakprobe\r\n", |l: &[u8]| {
            l.windows(9).any(|w| w == b"soakprobe")
        }),
        _ => (b"TOPIC\n", |l: &[u8]| {
            l.starts_with(b"[server] Topic for") || l.starts_with(b"[server] No topic")
        }),
    }
}

/// Sends the probe and waits for its answer.
async fn probe_answer(c: &mut Reader<TcpStream>, d: Dialect, deadline: Instant) -> String {
    let (req, ok) = probe(d);
    if c.r.write_all(req).await.is_err() {
        return "write failed before the probe".into();
    }
    let started = Instant::now();
    match c.until(deadline, ok).await {
        Until::Found => "still serving".into(),
        Until::Timeout => format!(
            "no answer to the probe in {:.0}s",
            started.elapsed().as_secs_f64()
        ),
        how => c.ended(&how, 0.0),
    }
}

/// Random bytes (NULs, invalid UTF-8, stray CRs) in random-length lines.
async fn garbage(
    c: &mut Reader<TcpStream>,
    d: Dialect,
    nl: &[u8],
    deadline: Instant,
    rng: &mut Rng,
) -> anyhow::Result<String> {
    let mut v: Vec<u8> = b"\x00\x00\xff\xfe\xc3\x28\xe2\x82\x00\r\r".to_vec();
    v.extend_from_slice(nl);
    while v.len() < 4096 {
        let n = 1 + rng.below(300);
        for _ in 0..n {
            v.push(rng.next() as u8);
        }
        v.extend_from_slice(nl);
    }
    c.r.write_all(&v).await?;
    Ok(probe_answer(c, d, deadline).await)
}

/// 100 KB without a newline, then the newline, then a probe.
async fn overlong(
    c: &mut Reader<TcpStream>,
    d: Dialect,
    nl: &[u8],
    deadline: Instant,
) -> anyhow::Result<String> {
    let chunk = vec![b'A'; 16 * 1024];
    let mut sent = 0;
    while sent < OVERLONG {
        timeout_at(deadline, c.r.write_all(&chunk))
            .await
            .map_err(|_| anyhow!("writing the overlong line timed out"))??;
        sent += chunk.len();
    }
    c.r.write_all(nl).await?;
    let too_long = |l: &[u8]| match d {
        Dialect::Irc => l.windows(5).any(|w| w == b" 417 "),
        _ => l.starts_with(b"[server] Line too long"),
    };
    let reply = match c.until(deadline, too_long).await {
        Until::Found => c.last.back().cloned().unwrap_or_default(),
        Until::Timeout => return Ok("no answer to the overlong line".into()),
        how => return Ok(c.ended(&how, 0.0)),
    };
    let reply = match d {
        // `:server 417 nick :Input line too long` -> `417 Input line too long`
        Dialect::Irc => match reply.find(" 417 ") {
            Some(i) => {
                let rest = &reply[i + 1..];
                let text = rest.rfind(" :").map_or("", |j| &rest[j + 2..]);
                format!("417 {text}")
            }
            None => reply,
        },
        _ => reply,
    };
    let after = probe_answer(c, d, deadline).await;
    Ok(format!("{reply}; {after}"))
}

/// Thousands of short lines as fast as possible, reading all the while.
async fn flood(c: Reader<TcpStream>, d: Dialect, deadline: Instant) -> String {
    let Reader { r, lb, last } = c;
    let (rd, mut wr) = r.into_split();
    let mut rr = Reader { r: rd, lb, last };
    let line: &[u8] = match d {
        Dialect::Irc => b"PING :flood\r\n",
        _ => b"TOPIC\n",
    };
    let batch: Vec<u8> = line.repeat(500);
    let write = async {
        for _ in 0..FLOOD_LINES / 500 {
            if wr.write_all(&batch).await.is_err() {
                break;
            }
        }
        // Keep the write half open: only the server may end this.
        wr
    };
    let t0 = Instant::now();
    let (wr, how) = tokio::join!(timeout_at(deadline, write), rr.until(deadline, |_| false));
    drop(wr);
    rr.ended(&how, t0.elapsed().as_secs_f64())
}

/// A partial command, then our write side closed; the socket is kept.
async fn half_open(
    c: &mut Reader<TcpStream>,
    d: Dialect,
    nick: &str,
    deadline: Instant,
) -> anyhow::Result<String> {
    let partial = match d {
        Dialect::Irc => format!("NICK {nick}\r\nUSER {nick} 0 * :half\r\nJOIN #half"),
        _ => "MSG half a comm".to_string(),
    };
    c.r.write_all(partial.as_bytes()).await?;
    c.r.shutdown().await?;
    let t0 = Instant::now();
    let how = c.until(deadline, |_| false).await;
    Ok(c.ended(&how, t0.elapsed().as_secs_f64()))
}

/// Joins a busy channel, starts a line, and resets the connection.
async fn reset(
    c: &mut Reader<TcpStream>,
    d: Dialect,
    nick: &str,
    chan: &str,
    deadline: Instant,
) -> anyhow::Result<String> {
    let nick = match d {
        Dialect::Irc => irc_register(c, nick, deadline).await?,
        _ => {
            register(Dialect::Line, &mut c.r, &mut c.lb, nick, deadline).await?;
            nick.to_string()
        }
    };
    join(d, &mut c.r, &mut c.lb, &nick, chan, deadline).await?;
    let cut = match d {
        Dialect::Irc => format!("PRIVMSG {chan} :cut in the mid"),
        _ => "MSG cut in the mid".to_string(),
    };
    c.r.write_all(cut.as_bytes()).await?;
    sleep(Duration::from_millis(50)).await;
    socket2::SockRef::from(&c.r).set_linger(Some(Duration::ZERO))?;
    Ok("reset by us".into())
}

/// One byte every 2 s, never a newline.
async fn slow_loris(
    c: &mut Reader<TcpStream>,
    d: Dialect,
    nick: &str,
    deadline: Instant,
) -> anyhow::Result<String> {
    if d == Dialect::Irc {
        // Registered first, so that only the partial-line limit applies.
        irc_register(c, nick, deadline).await?;
    }
    let text: &[u8] = match d {
        Dialect::Irc => b"PRIVMSG #slow :and slower and slower and slower",
        _ => b"MSG slow and slower and slower and slower and slower",
    };
    let t0 = Instant::now();
    for &b in text.iter().cycle() {
        if c.r.write_all(&[b]).await.is_err() {
            let how = c
                .until(Instant::now() + Duration::from_secs(2), |_| false)
                .await;
            return Ok(c.ended(&how, t0.elapsed().as_secs_f64()));
        }
        let next = (Instant::now() + Duration::from_secs(2)).min(deadline);
        match c.until(next, |_| false).await {
            Until::Timeout if next >= deadline => {
                return Ok(format!(
                    "still open after {:.0}s",
                    t0.elapsed().as_secs_f64()
                ));
            }
            Until::Timeout => {}
            how => return Ok(c.ended(&how, t0.elapsed().as_secs_f64())),
        }
    }
    Ok("unreachable".into())
}

/// Connects and sends nothing (IRC: never registers).
async fn idle(
    c: &mut Reader<TcpStream>,
    d: Dialect,
    deadline: Instant,
    limit: Duration,
) -> anyhow::Result<String> {
    let t0 = Instant::now();
    // line has no idle limit: hold for half the allowance, then leave.
    let until = match d {
        Dialect::Irc => deadline,
        _ => Instant::now() + limit / 2,
    };
    let how = c.until(until, |_| false).await;
    Ok(c.ended(&how, t0.elapsed().as_secs_f64()))
}

/// Joins a busy channel with a tiny receive buffer, asks for large replies
/// and never reads.
async fn no_read(
    c: &mut Reader<TcpStream>,
    d: Dialect,
    nick: &str,
    chan: &str,
    deadline: Instant,
) -> anyhow::Result<String> {
    let nick = match d {
        Dialect::Irc => irc_register(c, nick, deadline).await?,
        _ => {
            register(Dialect::Line, &mut c.r, &mut c.lb, nick, deadline).await?;
            nick.to_string()
        }
    };
    join(d, &mut c.r, &mut c.lb, &nick, chan, deadline).await?;
    // WHO of a busy channel is one line per member; line HELP is 13 lines.
    let req = match d {
        Dialect::Irc => format!("WHO {chan}\r\n"),
        _ => "HELP\n".to_string(),
    };
    let t0 = Instant::now();
    let burst = req.repeat(NOREAD_BURST);
    let mut closed = timeout_at(deadline, c.r.write_all(burst.as_bytes()))
        .await
        .is_ok_and(|r| r.is_err());
    while !closed && Instant::now() < deadline {
        sleep(Duration::from_millis(50)).await;
        if peer_closed(&c.r) {
            closed = true;
            break;
        }
        // 20 requests a second, well under the flood limit.
        if let Ok(Err(_)) = timeout(Duration::from_secs(1), c.r.write_all(req.as_bytes())).await {
            closed = true;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    if !closed {
        return Ok(format!("still open after {secs:.0}s"));
    }
    // Now read what was queued, to the end, for the farewell.
    let how = c
        .until(Instant::now() + Duration::from_secs(5), |_| false)
        .await;
    let label = c.ended(&how, secs);
    Ok(if label.starts_with("still open") {
        // Closed per TCP_INFO, yet data keeps coming: report as is.
        format!("closed (per TCP state) but still sending after {secs:.0}s")
    } else {
        label
    })
}

// ------------------------------------------------------------------ well-behaved

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Setup,
    Run { until_ns: u64 },
    Stop,
}

struct WellShared {
    base: Shared,
    /// Per client: messages sent (0 for listeners).
    sent: Vec<AtomicU64>,
    senders_done: AtomicUsize,
    pongs: AtomicU64,
}

struct WellPlan {
    idx: usize,
    dialect: Dialect,
    room: usize,
    chan: String,
    nick: String,
    sends: bool,
}

#[derive(Default)]
struct WellResult {
    /// Per sender row of this client's channel: deliveries received.
    got: Vec<u64>,
    reordered: u64,
    duplicates: u64,
    foreign: u64,
    lost_conn: Option<String>,
}

/// Layout of the well-behaved clients: client i is in channel i % K, row
/// i / K; rows alternate IRC and line, so every channel mixes both; rows
/// 8, 18, 28... only listen (IRC), so the server PINGs them.
fn plan(cfg: &BenchConfig, idx: usize) -> WellPlan {
    let k = cfg.rooms;
    let row = idx / k;
    let dialect = if row.is_multiple_of(2) {
        Dialect::Irc
    } else {
        Dialect::Line
    };
    WellPlan {
        idx,
        dialect,
        room: idx % k,
        chan: format!("{}{}", cfg.channel, idx % k),
        nick: format!("{}{}", cfg.nick_prefix, idx),
        sends: row % 10 != 8,
    }
}

enum Ready {
    Ok(Duration),
    Failed(String),
}

#[allow(clippy::too_many_arguments)]
async fn well_client(
    p: WellPlan,
    cfg: Arc<BenchConfig>,
    sh: Arc<WellShared>,
    sem: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<Ready>,
    mut phase: watch::Receiver<Phase>,
    rows: usize,
) -> WellResult {
    let target = if p.dialect == Dialect::Irc {
        cfg.target
    } else {
        cfg.line_target
    };
    let setup = async {
        let _permit = sem.acquire().await.context("semaphore closed")?;
        let t0 = Instant::now();
        let deadline = t0 + cfg.connect_timeout;
        let src = source_addr(target, p.idx, cfg.spread_sources);
        let mut s = timeout_at(deadline, connect(target, src))
            .await
            .map_err(|_| anyhow!("connect timed out"))?
            .context("connect")?;
        let deadline = Instant::now() + cfg.connect_timeout;
        let mut lb = LineBuf::new(RECV_BUF);
        let nick = register(p.dialect, &mut s, &mut lb, &p.nick, deadline).await?;
        if !join(p.dialect, &mut s, &mut lb, &nick, &p.chan, deadline).await? {
            bail!("JOIN {} not confirmed", p.chan);
        }
        anyhow::Ok((s, lb, t0.elapsed()))
    }
    .await;
    let (s, mut lb) = match setup {
        Ok((s, lb, t)) => {
            let _ = ready.send(Ready::Ok(t));
            (s, lb)
        }
        Err(e) => {
            let _ = ready.send(Ready::Failed(format!(
                "{} client {}: {e:#}",
                p.dialect.as_str(),
                p.idx
            )));
            return WellResult::default();
        }
    };
    let (mut rd, mut wr) = s.into_split();
    let b = &sh.base;
    let k = cfg.rooms;
    let mut res = WellResult {
        got: vec![0; rows],
        ..Default::default()
    };
    let mut last = vec![0u64; rows];
    let mut lat = Vec::with_capacity(256);
    let mut rng = Rng::new(p.idx as u64 + 0x5eed);
    let prefix = match p.dialect {
        Dialect::Irc => format!("PRIVMSG {} :", p.chan),
        _ => "MSG ".to_string(),
    };
    let nl: &[u8] = if p.dialect == Dialect::Irc {
        b"\r\n"
    } else {
        b"\n"
    };
    let mut seq = 0u64;
    let mut buf = Vec::with_capacity(cfg.size + 64);
    let interval = cfg.interval.as_secs_f64();
    // Before the run: read and answer PINGs only.
    let mut until_ns: Option<u64> = None;
    let mut next_send: Option<Instant> = None;
    let mut sending_done = !p.sends;
    let mark_done = |done: &mut bool| {
        if !*done {
            *done = true;
            sh.senders_done.fetch_add(1, Ordering::SeqCst);
        }
    };
    loop {
        let now_ns = b.now_ns();
        let mut pongs: Vec<Vec<u8>> = Vec::new();
        while let Some(line) = lb.next_line() {
            match classify(p.dialect, line) {
                Incoming::Other => {}
                Incoming::Ping(tok) => {
                    let mut v = b"PONG ".to_vec();
                    v.extend_from_slice(tok);
                    v.extend_from_slice(b"\r\n");
                    pongs.push(v);
                }
                Incoming::Payload(pl) => {
                    let Some(m) = decode(pl) else {
                        res.foreign += 1;
                        continue;
                    };
                    let sid = m.sender as usize;
                    if sid % k != p.room || sid / k >= rows || sid == p.idx {
                        res.foreign += 1;
                        continue;
                    }
                    let row = sid / k;
                    if m.seq == last[row] {
                        res.duplicates += 1;
                        continue;
                    }
                    if m.seq < last[row] {
                        res.reordered += 1;
                    } else {
                        last[row] = m.seq;
                    }
                    res.got[row] += 1;
                    b.received.fetch_add(1, Ordering::Relaxed);
                    lat.push(now_ns.saturating_sub(m.ts_ns) / 1000);
                }
            }
        }
        b.lat.record_batch(p.idx, &lat);
        lat.clear();
        for v in pongs {
            if wr.write_all(&v).await.is_err() {
                res.lost_conn.get_or_insert_with(|| "write error".into());
            }
            sh.pongs.fetch_add(1, Ordering::Relaxed);
        }
        let ph = *phase.borrow();
        match ph {
            Phase::Stop => break,
            Phase::Run { until_ns: u } if until_ns.is_none() => {
                until_ns = Some(u);
                if p.sends {
                    // A random phase, so senders do not tick together.
                    next_send = Some(Instant::now() + cfg.interval.mul_f64(rng.unit()));
                }
            }
            _ => {}
        }
        let send_at = next_send.filter(|_| !sending_done);
        tokio::select! {
            r = lb.fill(&mut rd) => match r {
                Ok(0) => {
                    res.lost_conn.get_or_insert_with(|| "closed by the server".into());
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    res.lost_conn.get_or_insert_with(|| e.to_string());
                    break;
                }
            },
            _ = sleep_until(send_at.unwrap_or_else(Instant::now)), if send_at.is_some() => {
                let now = b.now_ns();
                if until_ns.is_some_and(|u| now >= u) {
                    mark_done(&mut sending_done);
                    continue;
                }
                seq += 1;
                buf.clear();
                buf.extend_from_slice(prefix.as_bytes());
                encode(&mut buf, Stamp { sender: p.idx as u32, seq, ts_ns: now }, cfg.size);
                buf.extend_from_slice(nl);
                if let Err(e) = wr.write_all(&buf).await {
                    res.lost_conn.get_or_insert_with(|| format!("write: {e}"));
                    mark_done(&mut sending_done);
                    break;
                }
                sh.sent[p.idx].fetch_add(1, Ordering::SeqCst);
                b.sent.fetch_add(1, Ordering::Relaxed);
                let gap = interval * (0.5 + rng.unit());
                next_send = Some(Instant::now() + Duration::from_secs_f64(gap));
            }
            r = phase.changed() => if r.is_err() { break },
        }
    }
    mark_done(&mut sending_done);
    // Hold the connection until the run is over (the sender of `phase` is
    // dropped), so that a client that lost its connection early does not
    // change what the LUSERS check counts for the others.
    while phase.changed().await.is_ok() {}
    drop((rd, wr));
    res
}

// ------------------------------------------------------------------ health

fn pid_alive(pid: u32) -> bool {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Field 3, after the command name in parentheses: Z = zombie, X = dead.
    match s
        .rfind(')')
        .and_then(|i| s[i + 1..].split_whitespace().next())
    {
        Some(st) => st != "Z" && st != "X",
        None => false,
    }
}

fn scan_log(path: &Path) -> anyhow::Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(text
        .lines()
        .filter(|l| l.contains("panicked"))
        .take(10)
        .map(|l| l.chars().take(300).collect())
        .collect())
}

/// Least-squares slope of (t, v) in v per unit of t.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mt = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mv = points.iter().map(|p| p.1).sum::<f64>() / n;
    let num: f64 = points.iter().map(|p| (p.0 - mt) * (p.1 - mv)).sum();
    let den: f64 = points.iter().map(|p| (p.0 - mt).powi(2)).sum();
    (den > 0.0).then(|| num / den)
}

/// Connects an observer and asks LUSERS until the count is `expected`
/// users and no unknown connection, or `wait` has passed.
async fn lusers_check(
    cfg: &BenchConfig,
    expected: u64,
    wait: Duration,
) -> anyhow::Result<LusersCheck> {
    let src = hostile_source(cfg.target, 59_999, cfg.spread_sources);
    let deadline = Instant::now() + cfg.connect_timeout;
    let s = timeout_at(deadline, hostile_connect(cfg.target, src, None))
        .await
        .map_err(|_| anyhow!("connect timed out"))??;
    let mut c = Reader::new(s);
    let nick = irc_register(&mut c, "soakobserver", deadline).await?;
    let end = Instant::now() + wait;
    loop {
        c.r.write_all(b"LUSERS\r\n").await?;
        let (mut users, mut unknown) = (None, 0u64);
        let t = Instant::now() + Duration::from_secs(5);
        // `:srv 265 <nick> <users> <max> :...`, `:srv 253 <nick> <n> :...`,
        // and 266 ends the reply.
        let mut seen = |l: &[u8]| {
            let l = String::from_utf8_lossy(l);
            let parts: Vec<&str> = l.split(' ').collect();
            if parts.len() > 3 && parts[2] == nick {
                match parts[1] {
                    "265" => users = parts[3].parse().ok(),
                    "253" => unknown = parts[3].parse().unwrap_or(0),
                    "266" => return true,
                    _ => {}
                }
            }
            false
        };
        match c.until(t, &mut seen).await {
            Until::Found => {}
            Until::Timeout => bail!("no LUSERS reply"),
            how => bail!("observer connection ended: {how:?}"),
        }
        let Some(users) = users else {
            if Instant::now() >= end {
                bail!("no RPL_LOCALUSERS in the LUSERS reply");
            }
            continue;
        };
        let ok = users == expected && unknown == 0;
        if ok || Instant::now() >= end {
            let _ = c.r.write_all(b"QUIT :soak over\r\n").await;
            return Ok(LusersCheck {
                users,
                unknown,
                expected_users: expected,
                ok,
            });
        }
        sleep(Duration::from_millis(500)).await;
    }
}

// ------------------------------------------------------------------ the run

/// Runs `soak`.
pub(crate) async fn run_soak(cfg: &BenchConfig) -> anyhow::Result<Report> {
    let cfg = Arc::new(cfg.clone());
    let w = cfg.clients;
    let k = cfg.rooms;
    let rows = w.div_ceil(k);
    let plans: Vec<WellPlan> = (0..w).map(|i| plan(&cfg, i)).collect();
    let mut members = vec![0u64; k];
    for p in &plans {
        members[p.room] += 1;
    }
    let irc_clients = plans.iter().filter(|p| p.dialect == Dialect::Irc).count();
    let senders = plans.iter().filter(|p| p.sends).count();
    let sh = Arc::new(WellShared {
        base: Shared::new(),
        sent: (0..w).map(|_| AtomicU64::new(0)).collect(),
        senders_done: AtomicUsize::new(0),
        pongs: AtomicU64::new(0),
    });
    let pid = cfg.server_pid;

    // Server sampler: one sample a second for the whole run.
    let samples: Arc<Mutex<Vec<(std::time::Instant, u64, f64)>>> = Arc::default();
    let sampler = pid.map(|pid| {
        let samples = samples.clone();
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(Duration::from_secs(1));
            loop {
                iv.tick().await;
                let (Some(rss), Some(cpu)) = (proc_rss_kib(pid), proc_cpu_seconds(pid)) else {
                    break;
                };
                samples.lock().unwrap_or_else(|e| e.into_inner()).push((
                    std::time::Instant::now(),
                    rss,
                    cpu,
                ));
            }
        })
    });
    let rss_idle = pid.and_then(proc_rss_kib);
    let cpu_start = pid.and_then(proc_cpu_seconds);

    // Setup: every well-behaved client connected, registered and joined.
    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let sem = Arc::new(Semaphore::new(cfg.connect_concurrency));
    let setup_t0 = Instant::now();
    let ready_n = Arc::new(AtomicU64::new(0));
    let progress = {
        let r = ready_n.clone();
        Progress::start(cfg.progress, move || {
            format!("setup: {}/{w} clients ready", r.load(Ordering::Relaxed))
        })
    };
    let mut handles = Vec::with_capacity(w);
    for p in plans {
        handles.push(tokio::spawn(well_client(
            p,
            cfg.clone(),
            sh.clone(),
            sem.clone(),
            ready_tx.clone(),
            phase_rx.clone(),
            rows,
        )));
    }
    drop(ready_tx);
    let mut conn = ConnectStats {
        attempted: w as u64,
        ..Default::default()
    };
    let mut h_reg = new_histogram();
    while conn.registered + conn.failed < w as u64 {
        match ready_rx.recv().await {
            Some(Ready::Ok(t)) => {
                conn.registered += 1;
                ready_n.fetch_add(1, Ordering::Relaxed);
                h_reg.saturating_record(t.as_micros() as u64);
            }
            Some(Ready::Failed(e)) => {
                conn.failed += 1;
                conn.first_error.get_or_insert(e);
            }
            None => break,
        }
    }
    progress.finish();
    conn.connected = conn.registered;
    conn.setup_s = setup_t0.elapsed().as_secs_f64();
    conn.rate_per_s = conn.registered as f64 / conn.setup_s.max(1e-9);
    conn.register_us = summarize(&h_reg);
    if conn.registered < w as u64 {
        drop(phase_tx);
        for h in handles {
            let _ = timeout(Duration::from_secs(2), h).await;
        }
        if let Some(s) = sampler {
            s.abort();
        }
        bail!(
            "{} of {w} well-behaved clients failed to set up; first error: {}",
            w as u64 - conn.registered,
            conn.first_error.as_deref().unwrap_or("?")
        );
    }
    let rss_loaded = pid.and_then(proc_rss_kib);

    // The run: chat and attacks for `duration`.
    let b = &sh.base;
    let start_ns = b.now_ns();
    let until_ns = start_ns + cfg.duration.as_nanos() as u64;
    let run_t0 = std::time::Instant::now();
    let loader_cpu0 = self_cpu_seconds();
    let cpu_run0 = pid.and_then(proc_cpu_seconds);
    b.measure_from_ns.store(start_ns, Ordering::SeqCst);
    let _ = phase_tx.send(Phase::Run { until_ns });

    let hcx = Arc::new(HostileCtx {
        irc: cfg.target,
        line: cfg.line_target,
        spread: cfg.spread_sources,
        channels: (0..k).map(|r| format!("{}{}", cfg.channel, r)).collect(),
        attack_timeout: cfg.attack_timeout,
        connections: AtomicU64::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (res_tx, mut res_rx) = mpsc::unbounded_channel();
    let mut hostiles = Vec::with_capacity(cfg.hostile);
    for h in 0..cfg.hostile {
        hostiles.push(tokio::spawn(hostile(
            h,
            hcx.clone(),
            stop_rx.clone(),
            res_tx.clone(),
        )));
    }
    drop(res_tx);
    let progress = {
        let sh = sh.clone();
        let hcx = hcx.clone();
        let samples = samples.clone();
        Progress::start(cfg.progress, move || {
            let b = &sh.base;
            let t = run_t0.elapsed().as_secs_f64();
            let rss = samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .last()
                .map(|s| format!(", server RSS {:.1} MiB", s.1 as f64 / 1024.0))
                .unwrap_or_default();
            format!(
                "t={t:.0}s sent {} delivered {} hostile connections {}{rss}",
                b.sent.load(Ordering::Relaxed),
                b.received(),
                hcx.connections.load(Ordering::Relaxed)
            )
        })
    };
    sleep_until(b.instant_at(until_ns)).await;
    let _ = stop_tx.send(true);
    let senders_deadline = Instant::now() + Duration::from_secs(5);
    while sh.senders_done.load(Ordering::SeqCst) < senders && Instant::now() < senders_deadline {
        sleep(Duration::from_millis(5)).await;
    }
    let mut warnings = Vec::new();
    if sh.senders_done.load(Ordering::SeqCst) < senders {
        warnings.push("some senders were still blocked writing after the run".into());
    }
    let sent_by: Vec<u64> = sh.sent.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    let sent: u64 = sent_by.iter().sum();
    let expected: u64 = sent_by
        .iter()
        .enumerate()
        .map(|(i, s)| s * (members[i % k] - 1))
        .sum();
    let drain_t0 = Instant::now();
    let drain = cfg.drain.max(Duration::from_secs(10));
    while b.received() < expected && drain_t0.elapsed() < drain {
        sleep(Duration::from_millis(5)).await;
    }
    let drain_s = drain_t0.elapsed().as_secs_f64();
    let run_wall = run_t0.elapsed().as_secs_f64();
    let cpu_run1 = pid.and_then(proc_cpu_seconds);
    let loader_cpu = self_cpu_seconds() - loader_cpu0;
    progress.finish();

    // Hostile results (their tasks stop at once).
    for h in hostiles {
        if timeout(Duration::from_secs(5), h).await.is_err() {
            warnings.push("a hostile client did not stop in time".into());
        }
    }
    let mut by: BTreeMap<(Attack, &'static str), (AttackStats, f64)> = BTreeMap::new();
    while let Ok(r) = res_rx.try_recv() {
        let (a, total) = by.entry((r.attack, r.dialect.as_str())).or_insert_with(|| {
            (
                AttackStats {
                    attack: r.attack.name().into(),
                    dialect: r.dialect.as_str().into(),
                    expected: r.attack.expected(r.dialect).into(),
                    ..Default::default()
                },
                0.0,
            )
        });
        match r.label {
            None => a.interrupted += 1,
            Some(label) => {
                a.count += 1;
                *total += r.secs;
                a.max_s = a.max_s.max(r.secs);
                if r.attack.matches(r.dialect, &label) {
                    a.as_expected += 1;
                }
                if r.attack.not_refused(r.dialect, &label) {
                    a.not_refused += 1;
                }
                *a.outcomes.entry(label).or_insert(0) += 1;
            }
        }
    }
    let attacks: Vec<AttackStats> = by
        .into_values()
        .map(|(mut a, total)| {
            a.mean_s = if a.count > 0 {
                total / a.count as f64
            } else {
                0.0
            };
            a
        })
        .collect();

    // Ghost sessions: once the hostiles are gone, only the well-behaved
    // clients and the observer may be counted.
    let lusers = match lusers_check(&cfg, w as u64 + 1, Duration::from_secs(10)).await {
        Ok(l) => Some(l),
        Err(e) => {
            warnings.push(format!("LUSERS check failed: {e:#}"));
            None
        }
    };

    // Stop the well-behaved clients and collect their counts.
    let _ = phase_tx.send(Phase::Stop);
    let mut results = Vec::with_capacity(w);
    let mut slow = 0;
    let stop_t = Instant::now() + Duration::from_secs(10);
    let mut pending = Vec::new();
    for h in handles {
        pending.push(h);
    }
    // Let every task reach its final wait, then close the channel so they end.
    sleep(Duration::from_millis(100)).await;
    drop(phase_tx);
    for h in pending {
        match timeout_at(stop_t, h).await {
            Ok(Ok(r)) => results.push(r),
            _ => slow += 1,
        }
    }
    if slow > 0 {
        warnings.push(format!("{slow} well-behaved tasks did not stop in time"));
    }
    let mut lost = 0u64;
    let (mut reordered, mut duplicates, mut foreign) = (0, 0, 0);
    let mut received = 0u64;
    let mut well_disconnected = 0;
    let mut first_disconnect = None;
    for (i, r) in results.iter().enumerate() {
        let room = i % k;
        for (row, got) in r.got.iter().enumerate() {
            let sid = row * k + room;
            if sid >= w || sid == i {
                continue;
            }
            lost += sent_by[sid].saturating_sub(*got);
            received += got;
        }
        reordered += r.reordered;
        duplicates += r.duplicates;
        foreign += r.foreign;
        if let Some(e) = &r.lost_conn {
            well_disconnected += 1;
            first_disconnect.get_or_insert_with(|| format!("client {i}: {e}"));
        }
    }

    // Server health.
    if let Some(s) = sampler {
        s.abort();
    }
    let alive = pid.is_none_or(pid_alive);
    let cpu_end = pid.and_then(proc_cpu_seconds);
    let (log_checked, panics) = match &cfg.server_log {
        Some(p) => match scan_log(p) {
            Ok(v) => (true, v),
            Err(e) => {
                warnings.push(format!("{e:#}"));
                (false, Vec::new())
            }
        },
        None => (false, Vec::new()),
    };
    let raw = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let cpu0 = raw.first().map_or(0.0, |s| s.2);
    let samples: Vec<RssSample> = raw
        .iter()
        .map(|(t, rss, cpu)| RssSample {
            t_s: if *t >= run_t0 {
                t.duration_since(run_t0).as_secs_f64()
            } else {
                -run_t0.duration_since(*t).as_secs_f64()
            },
            rss_kib: *rss,
            cpu_s: cpu - cpu0,
        })
        .collect();
    let dur = cfg.duration.as_secs_f64();
    let warmup_s = (dur * 0.1).max(5.0).min(dur / 2.0);
    let chat: Vec<&RssSample> = samples
        .iter()
        .filter(|s| s.t_s >= 0.0 && s.t_s <= dur)
        .collect();
    let settled: Vec<&RssSample> = chat.iter().copied().filter(|s| s.t_s >= warmup_s).collect();
    let pts: Vec<(f64, f64)> = settled
        .iter()
        .map(|s| (s.t_s / 60.0, s.rss_kib as f64))
        .collect();
    let cpu_s = match (cpu_run0, cpu_run1) {
        (Some(a), Some(b)) => Some((b - a).max(0.0)),
        _ => None,
    };
    let health = Health {
        alive,
        log_checked,
        panics,
        rss_idle_kib: rss_idle,
        rss_loaded_kib: rss_loaded,
        rss_first_kib: chat.first().map(|s| s.rss_kib),
        rss_last_kib: chat.last().map(|s| s.rss_kib),
        rss_min_kib: settled.iter().map(|s| s.rss_kib).min(),
        rss_max_kib: settled.iter().map(|s| s.rss_kib).max(),
        warmup_s,
        rss_slope_kib_per_min: slope(&pts),
        cpu_s,
        cpu_cores: cpu_s.map(|c| c / run_wall.max(1e-9)),
        cpu_total_s: match (cpu_start, cpu_end) {
            (Some(a), Some(b)) => Some((b - a).max(0.0)),
            _ => None,
        },
        lusers,
        samples,
    };

    let mut failures = Vec::new();
    if lost > 0 || reordered > 0 || duplicates > 0 {
        failures.push(format!(
            "well-behaved deliveries: lost {lost}, reordered {reordered}, duplicates {duplicates}"
        ));
    }
    if well_disconnected > 0 {
        failures.push(format!(
            "{well_disconnected} well-behaved clients were disconnected (first: {})",
            first_disconnect.as_deref().unwrap_or("?")
        ));
    }
    if !health.alive {
        failures.push("the server process is gone".into());
    }
    if !health.panics.is_empty() {
        failures.push(format!("{} panics in the server log", health.panics.len()));
    }
    if let Some(l) = &health.lusers
        && !l.ok
    {
        failures.push(format!(
            "after the attacks the server counts {} users and {} unknown connections, expected {} and 0",
            l.users, l.unknown, l.expected_users
        ));
    }
    for a in &attacks {
        if a.not_refused > 0 {
            failures.push(format!(
                "{} {}: {} of {} not refused ({})",
                a.dialect, a.attack, a.not_refused, a.count, a.expected
            ));
        } else if a.as_expected < a.count {
            warnings.push(format!(
                "{} {}: {} of {} ended otherwise than \"{}\"",
                a.dialect,
                a.attack,
                a.count - a.as_expected,
                a.count,
                a.expected
            ));
        }
    }
    if sent == 0 {
        failures.push("no message was sent".into());
    }

    let soak = SoakReport {
        passed: failures.is_empty(),
        failures,
        irc_target: cfg.target.to_string(),
        line_target: cfg.line_target.to_string(),
        well_behaved: w,
        irc_clients,
        line_clients: w - irc_clients,
        senders,
        rooms: k,
        interval_s: cfg.interval.as_secs_f64(),
        pongs: sh.pongs.load(Ordering::Relaxed),
        well_disconnected,
        first_disconnect,
        hostile_clients: cfg.hostile,
        hostile_connections: hcx.connections.load(Ordering::Relaxed),
        attacks,
        health,
    };
    let server = pid.map(|pid| ServerStats {
        pid,
        cpu_s: cpu_s.unwrap_or(0.0),
        rss_before_kib: rss_idle,
        rss_after_kib: soak.health.rss_last_kib,
        rss_per_conn_bytes: match (rss_idle, rss_loaded) {
            (Some(a), Some(b)) => Some((b as f64 - a as f64) * 1024.0 / w as f64),
            _ => None,
        },
        // Sampled while the load changes: the RSS figures above are enough.
        anon_per_conn_bytes: None,
        deliveries_per_cpu_s: cpu_s.filter(|c| *c > 0.0).map(|c| received as f64 / c),
    });
    Ok(Report {
        scenario: cfg.scenario.as_str().into(),
        dialect: "irc+line".into(),
        target: cfg.target.to_string(),
        clients: w,
        senders,
        rooms: k,
        size: cfg.size,
        rate: Some(senders as f64 / cfg.interval.as_secs_f64()),
        window: None,
        warmup_s: 0.0,
        duration_s: dur,
        drain_s,
        drained: b.received() >= expected,
        sent,
        expected,
        received,
        lost,
        reordered,
        duplicates,
        self_echoes: 0,
        foreign,
        sent_per_s: sent as f64 / dur,
        deliveries_per_s: received as f64 / dur,
        latency_us: summarize(&b.lat.merged()),
        connect: conn,
        hold_s: None,
        server,
        loader: LoaderStats {
            cpu_s: loader_cpu,
            wall_s: run_wall,
            cores_used: loader_cpu / run_wall.max(1e-9),
        },
        warnings,
        soak: Some(soak),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn farewells_are_normalised() {
        assert_eq!(
            farewell_of("ERROR :Closing Link: 127.3.0.1 (Excess Flood)").as_deref(),
            Some("ERROR (Excess Flood)")
        );
        assert_eq!(
            farewell_of("ERROR :Closing Link: (SendQ exceeded)").as_deref(),
            Some("ERROR (SendQ exceeded)")
        );
        assert_eq!(
            farewell_of("[server] Disconnected: Excess Flood").as_deref(),
            Some("[server] Disconnected: Excess Flood")
        );
        assert_eq!(farewell_of("[server] guest1 is connected"), None);
        assert_eq!(farewell_of(":srv 001 x :Welcome"), None);
    }

    #[test]
    fn slope_of_a_line() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 * i as f64 + 7.0)).collect();
        assert!((slope(&pts).unwrap() - 3.0).abs() < 1e-9);
        assert_eq!(slope(&pts[..2]), None);
    }

    #[test]
    fn layout_mixes_dialects_in_every_channel() {
        let mut cfg = BenchConfig::new(
            super::super::config::Scenario::Soak,
            Dialect::Irc,
            "127.0.0.1:6667".parse().unwrap(),
        );
        cfg.clients = 200;
        cfg.rooms = 20;
        let mut irc = [0; 20];
        let mut line = [0; 20];
        let mut listeners = 0;
        for i in 0..200 {
            let p = plan(&cfg, i);
            match p.dialect {
                Dialect::Irc => irc[p.room] += 1,
                _ => line[p.room] += 1,
            }
            listeners += usize::from(!p.sends);
        }
        assert!(irc.iter().all(|&n| n == 5) && line.iter().all(|&n| n == 5));
        assert_eq!(listeners, 20);
    }

    #[test]
    fn hostile_sources_avoid_the_well_behaved_range() {
        let lo: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(
            hostile_source(lo, 0, true),
            Some("127.3.0.1".parse().unwrap())
        );
        assert_eq!(hostile_source(lo, 0, false), None);
    }
}
