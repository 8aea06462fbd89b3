//! The soak's well-behaved clients: where each sits, and the client that
//! chats, answers PINGs and counts what it receives from every other member.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout_at};

use super::conn::Rng;
use crate::common::Shared;
use crate::config::{BenchConfig, Dialect};
use crate::net::{connect, join, register, source_addr};
use crate::wire::{Incoming, LineBuf, Stamp, classify, decode, encode};

/// Receive buffer of a well-behaved client.
const RECV_BUF: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Setup,
    Run { until_ns: u64 },
    Stop,
}

pub(super) struct WellShared {
    pub(super) base: Shared,
    /// Per client: messages sent (0 for listeners).
    pub(super) sent: Vec<AtomicU64>,
    pub(super) senders_done: AtomicUsize,
    pub(super) pongs: AtomicU64,
}

pub(super) struct WellPlan {
    pub(super) idx: usize,
    pub(super) dialect: Dialect,
    pub(super) room: usize,
    pub(super) chan: String,
    pub(super) nick: String,
    pub(super) sends: bool,
}

#[derive(Default)]
pub(super) struct WellResult {
    /// Per sender row of this client's channel: deliveries received.
    pub(super) got: Vec<u64>,
    pub(super) reordered: u64,
    pub(super) duplicates: u64,
    pub(super) foreign: u64,
    pub(super) lost_conn: Option<String>,
}

/// Layout of the well-behaved clients: client i is in channel i % K, row
/// i / K; rows alternate IRC and line, so every channel mixes both; rows
/// 8, 18, 28... only listen (IRC), so the server PINGs them.
pub(super) fn plan(cfg: &BenchConfig, idx: usize) -> WellPlan {
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

pub(super) enum Ready {
    Ok(Duration),
    Failed(String),
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn well_client(
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
