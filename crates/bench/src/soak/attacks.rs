//! The soak's hostile clients: the attacks, how each should end, and the
//! loop that runs them one after the other on fresh connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::anyhow;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep, timeout, timeout_at};

use super::conn::{Reader, Rng, Until, hostile_connect, hostile_source, peer_closed};
use crate::config::Dialect;
use crate::net::{join, register};

/// Bytes of one overlong line (well past both dialects' limits).
const OVERLONG: usize = 100 * 1024;
/// Lines of one flood.
const FLOOD_LINES: usize = 10_000;
/// Requests a non-reader sends at once (under the default burst of 1000).
const NOREAD_BURST: usize = 900;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Attack {
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
    pub(super) fn name(self) -> &'static str {
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
    pub(super) fn expected(self, d: Dialect) -> &'static str {
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
    pub(super) fn matches(self, d: Dialect, label: &str) -> bool {
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
    pub(super) fn not_refused(self, d: Dialect, label: &str) -> bool {
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
pub(super) struct AttackResult {
    pub(super) attack: Attack,
    pub(super) dialect: Dialect,
    /// `None`: cut short by the end of the run.
    pub(super) label: Option<String>,
    pub(super) secs: f64,
}

/// What a hostile client needs.
pub(super) struct HostileCtx {
    pub(super) irc: SocketAddr,
    pub(super) line: SocketAddr,
    pub(super) spread: bool,
    /// Well-behaved channels (joined by some attacks).
    pub(super) channels: Vec<String>,
    pub(super) attack_timeout: Duration,
    pub(super) connections: AtomicU64,
}

/// One hostile client: attacks, one after the other, until told to stop.
pub(super) async fn hostile(
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
pub(super) async fn irc_register(
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
