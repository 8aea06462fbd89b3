//! The `fanout` and `rooms` scenarios: many clients in channels, some of
//! them sending stamped messages, every client checking what it receives.
//!
//! Each client is two tasks: a reader (parses everything, answers PING via
//! the writer) and a writer (paces this client's messages, if it sends).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior, timeout, timeout_at};

use super::common::{CpuMark, Progress, Shared, cpu_between};
use super::config::{BenchConfig, Dialect, Scenario};
use super::net::{connect, join, quickack, register, source_addr};
use super::order::{self, OrderDigest};
use super::report::{ConnectStats, Report};
use super::stats::{new_histogram, proc_mem, summarize};
use super::wire::{Incoming, LineBuf, Stamp, classify, decode, encode};

/// Receive buffer per client: many lines per read, few syscalls.
const RECV_BUF: usize = 32 * 1024;
/// Most messages one write may carry (bounds bursts after a stall).
const MAX_BATCH: u64 = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Setup,
    Run { until_ns: u64 },
    Stop,
}

struct ChatShared {
    base: Shared,
    /// Per sender: messages sent inside the measured window.
    sent_measured: Vec<AtomicU64>,
    senders_done: AtomicUsize,
    /// Window mode: highest seq of each sender seen by client 0.
    acks: Vec<AtomicU64>,
    notify: Vec<Notify>,
}

/// What a sending client needs.
struct SendCtx {
    sid: u32,
    /// `PRIVMSG #chan :` or `MSG `.
    prefix: Vec<u8>,
    suffix: &'static [u8],
    size: usize,
    /// Messages per second for this sender.
    rate: f64,
    window: Option<u64>,
    /// Fraction of a tick to delay the first one, so senders interleave.
    phase_offset: f64,
}

#[derive(Default, Debug)]
struct RecvStats {
    received: u64,
    reordered: u64,
    duplicates: u64,
    self_echoes: u64,
    foreign: u64,
    overlong: u64,
    /// The measured messages in arrival order, for the one-order check.
    order: OrderDigest,
    /// Why the connection ended before the run did, if it did.
    lost_conn: Option<String>,
}

enum Ready {
    Ok {
        connect: Duration,
        register: Duration,
        confirmed: bool,
    },
    Failed(String),
}

/// Runs `fanout` or `rooms`.
pub(crate) async fn run_chat(cfg: &BenchConfig) -> anyhow::Result<Report> {
    let cfg = Arc::new(cfg.clone());
    let c = cfg.clients;
    let s = cfg.senders;
    let first_sender = c - s;
    let k = match cfg.scenario {
        Scenario::Rooms => cfg.rooms,
        _ => 1,
    };
    let chan_of = |i: usize| match cfg.scenario {
        Scenario::Rooms => format!("{}{}", cfg.channel, i % k),
        _ => cfg.channel.clone(),
    };
    let mut room_size = vec![0u64; k];
    for i in 0..c {
        room_size[i % k] += 1;
    }

    let sh = Arc::new(ChatShared {
        base: Shared::new(),
        sent_measured: (0..s).map(|_| AtomicU64::new(0)).collect(),
        senders_done: AtomicUsize::new(0),
        acks: (0..s).map(|_| AtomicU64::new(0)).collect(),
        notify: (0..s).map(|_| Notify::new()).collect(),
    });
    let mem_before = cfg.server_pid.and_then(proc_mem);
    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let sem = Arc::new(Semaphore::new(cfg.connect_concurrency));
    let (suffix, cmd): (&'static [u8], &str) = match cfg.dialect {
        Dialect::Irc => (b"\r\n", "PRIVMSG"),
        _ => (b"\n", "MSG"),
    };

    let setup_t0 = Instant::now();
    let registered = Arc::new(AtomicU64::new(0));
    let progress = {
        let r = registered.clone();
        Progress::start(cfg.progress, move || {
            format!("setup: {}/{c} clients ready", r.load(Ordering::Relaxed))
        })
    };
    let mut handles = Vec::with_capacity(c);
    for i in 0..c {
        let chan = chan_of(i);
        let send = (i >= first_sender).then(|| {
            let sid = (i - first_sender) as u32;
            let prefix = match cfg.dialect {
                Dialect::Irc => format!("{cmd} {chan} :").into_bytes(),
                _ => format!("{cmd} ").into_bytes(),
            };
            SendCtx {
                sid,
                prefix,
                suffix,
                size: cfg.size,
                rate: cfg.rate / s as f64,
                window: cfg.window,
                phase_offset: f64::from(sid) / s as f64,
            }
        });
        let plan = Plan {
            idx: i,
            nick: format!("{}{}", cfg.nick_prefix, i),
            chan,
            observer: cfg.window.is_some()
                && match cfg.scenario {
                    Scenario::Rooms => i < 2 * k,
                    _ => i == 0,
                },
            send,
        };
        handles.push(tokio::spawn(client(
            plan,
            cfg.clone(),
            sh.clone(),
            sem.clone(),
            ready_tx.clone(),
            phase_rx.clone(),
        )));
    }
    drop(ready_tx);

    let mut conn = ConnectStats {
        attempted: c as u64,
        ..Default::default()
    };
    let mut h_conn = new_histogram();
    let mut h_reg = new_histogram();
    while conn.registered + conn.failed < c as u64 {
        match ready_rx.recv().await {
            Some(Ready::Ok {
                connect,
                register,
                confirmed,
            }) => {
                conn.registered += 1;
                registered.fetch_add(1, Ordering::Relaxed);
                h_conn.saturating_record(connect.as_micros() as u64);
                h_reg.saturating_record(register.as_micros() as u64);
                if !confirmed {
                    conn.join_unconfirmed += 1;
                }
            }
            Some(Ready::Failed(e)) => {
                conn.failed += 1;
                conn.first_error.get_or_insert(e);
            }
            None => break,
        }
    }
    progress.finish();
    conn.connected = h_conn.len();
    conn.setup_s = setup_t0.elapsed().as_secs_f64();
    conn.rate_per_s = conn.registered as f64 / conn.setup_s.max(1e-9);
    conn.connect_us = summarize(&h_conn);
    conn.register_us = summarize(&h_reg);
    if conn.failed > 0 || conn.registered < c as u64 {
        let _ = phase_tx.send(Phase::Stop);
        for h in handles {
            let _ = timeout(Duration::from_secs(2), h).await;
        }
        bail!(
            "{} of {c} clients failed to set up; first error: {}",
            c as u64 - conn.registered,
            conn.first_error.as_deref().unwrap_or("?")
        );
    }

    // Timeline: warm-up, then the measured window, then the drain.
    let b = &sh.base;
    let start_ns = b.now_ns();
    let from_ns = start_ns + cfg.warmup.as_nanos() as u64;
    let until_ns = from_ns + cfg.duration.as_nanos() as u64;
    b.measure_from_ns.store(from_ns, Ordering::SeqCst);
    let _ = phase_tx.send(Phase::Run { until_ns });
    let progress = {
        let sh = sh.clone();
        Progress::start(cfg.progress, move || {
            let b = &sh.base;
            let t = b.now_ns() as f64 / 1e9 - from_ns as f64 / 1e9;
            format!(
                "t={t:+.0}s sent {} received {}",
                b.sent.load(Ordering::Relaxed),
                b.received()
            )
        })
    };
    tokio::time::sleep_until(b.instant_at(from_ns)).await;
    let mark0 = CpuMark::now(cfg.server_pid);
    tokio::time::sleep_until(b.instant_at(until_ns)).await;
    // Senders stop by themselves at `until_ns`; wait for their last write.
    let senders_deadline = Instant::now() + Duration::from_secs(5);
    while sh.senders_done.load(Ordering::SeqCst) < s && Instant::now() < senders_deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut warnings = Vec::new();
    if sh.senders_done.load(Ordering::SeqCst) < s {
        warnings.push("some senders were still blocked writing after the window".into());
    }
    let sent: u64 = sh
        .sent_measured
        .iter()
        .map(|a| a.load(Ordering::SeqCst))
        .sum();
    let expected: u64 = sh
        .sent_measured
        .iter()
        .enumerate()
        .map(|(sid, a)| a.load(Ordering::SeqCst) * (room_size[(first_sender + sid) % k] - 1))
        .sum();
    let drain_t0 = Instant::now();
    while b.received() < expected && drain_t0.elapsed() < cfg.drain {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let drain_s = drain_t0.elapsed().as_secs_f64();
    let mark1 = CpuMark::now(cfg.server_pid);
    progress.finish();
    let _ = phase_tx.send(Phase::Stop);

    let mut total = RecvStats::default();
    // Per channel, the digests of its pure receivers (clients below
    // `first_sender`, which never send).
    let mut digests: Vec<Vec<OrderDigest>> = vec![Vec::new(); k];
    for (i, h) in handles.into_iter().enumerate() {
        match timeout(Duration::from_secs(5), h).await {
            Ok(Ok(r)) => {
                if i < first_sender {
                    digests[i % k].push(r.order);
                }
                total.received += r.received;
                total.reordered += r.reordered;
                total.duplicates += r.duplicates;
                total.self_echoes += r.self_echoes;
                total.foreign += r.foreign;
                total.overlong += r.overlong;
                if total.lost_conn.is_none() {
                    total.lost_conn = r.lost_conn;
                }
            }
            _ => warnings.push("a client task did not stop in time".into()),
        }
    }
    let names: Vec<String> = (0..k).map(chan_of).collect();
    let order = order::check(
        names
            .iter()
            .map(String::as_str)
            .zip(digests.iter().map(Vec::as_slice)),
    );
    if let Some(e) = &total.lost_conn {
        warnings.push(format!("connection lost during the run: {e}"));
    }
    if total.overlong > 0 {
        warnings.push(format!("{} overlong lines dropped", total.overlong));
    }
    if conn.join_unconfirmed > 0 {
        warnings.push(format!(
            "{} joins were not confirmed by the server",
            conn.join_unconfirmed
        ));
    }
    let received = b.received();
    let (loader, server) = cpu_between(
        cfg.server_pid,
        mark0,
        mark1,
        mem_before,
        c as u64,
        Some(received),
    );
    if loader.cores_used > 0.9 * cfg_threads_hint() {
        warnings.push("the loader was busy most of the time: it may be the bottleneck".into());
    }
    let dur = cfg.duration.as_secs_f64();
    Ok(Report {
        scenario: cfg.scenario.as_str().into(),
        dialect: cfg.dialect.as_str().into(),
        target: cfg.target.to_string(),
        targets: cfg.targets.iter().map(|t| t.to_string()).collect(),
        clients: c,
        senders: s,
        rooms: k,
        size: cfg.size,
        rate: cfg.window.is_none().then_some(cfg.rate),
        window: cfg.window,
        warmup_s: cfg.warmup.as_secs_f64(),
        duration_s: dur,
        drain_s,
        drained: received >= expected,
        sent,
        expected,
        received,
        lost: expected.saturating_sub(received),
        reordered: total.reordered,
        duplicates: total.duplicates,
        self_echoes: total.self_echoes,
        foreign: total.foreign,
        order_ok: order.mismatches.is_empty(),
        order_channels: order.channels,
        order_compared: order.compared,
        order_fewer: order.fewer,
        order_mismatches: order.mismatches,
        sent_per_s: sent as f64 / dur,
        deliveries_per_s: received as f64 / dur,
        latency_us: summarize(&b.lat.merged()),
        connect: conn,
        hold_s: None,
        server,
        loader,
        warnings,
        soak: None,
    })
}

/// Number of worker threads of the current runtime (for the bottleneck hint).
fn cfg_threads_hint() -> f64 {
    tokio::runtime::Handle::try_current()
        .map(|h| h.metrics().num_workers() as f64)
        .unwrap_or(1.0)
}

struct Plan {
    idx: usize,
    nick: String,
    chan: String,
    observer: bool,
    send: Option<SendCtx>,
}

/// One client: set up, then read until told to stop.
async fn client(
    plan: Plan,
    cfg: Arc<BenchConfig>,
    sh: Arc<ChatShared>,
    sem: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<Ready>,
    phase: watch::Receiver<Phase>,
) -> RecvStats {
    let setup = async {
        // The permit bounds connections being set up, not connections open.
        let _permit = sem.acquire().await.context("semaphore closed")?;
        let t0 = Instant::now();
        let deadline = t0 + cfg.connect_timeout;
        // Round-robin over the cluster's nodes; the source address must be
        // chosen for the node actually dialled (IPv4 loopback or not).
        let target = cfg.target_for(plan.idx);
        let src = source_addr(target, plan.idx, cfg.spread_sources);
        let mut stream = timeout_at(deadline, connect(target, src))
            .await
            .map_err(|_| anyhow!("connect timed out"))?
            .context("connect")?;
        let t_conn = t0.elapsed();
        // Registration gets its own allowance: a server with a small listen
        // backlog (ngIRCd: 10) can take seconds to accept during a storm.
        let deadline = Instant::now() + cfg.connect_timeout;
        let mut lb = LineBuf::new(RECV_BUF);
        let nick = register(cfg.dialect, &mut stream, &mut lb, &plan.nick, deadline).await?;
        let confirmed = join(
            cfg.dialect,
            &mut stream,
            &mut lb,
            &nick,
            &plan.chan,
            deadline,
        )
        .await?;
        anyhow::Ok((stream, lb, t_conn, t0.elapsed(), confirmed))
    }
    .await;
    let (stream, lb) = match setup {
        Ok((stream, lb, connect, register, confirmed)) => {
            let _ = ready.send(Ready::Ok {
                connect,
                register,
                confirmed,
            });
            (stream, lb)
        }
        Err(e) => {
            let _ = ready.send(Ready::Failed(format!("client {}: {e:#}", plan.idx)));
            return RecvStats::default();
        }
    };
    let (rd, wr) = stream.into_split();
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let is_sender = plan.send.is_some();
    let writer = tokio::spawn(writer(wr, ctl_rx, phase.clone(), plan.send, sh.clone()));
    let abort = writer.abort_handle();
    let ctx = RecvCtx {
        idx: plan.idx,
        dialect: cfg.dialect,
        my_sender: plan
            .idx
            .checked_sub(cfg.clients - cfg.senders)
            .map(|v| v as u32),
        observer: plan.observer,
        nsenders: cfg.senders,
        quickack: cfg.quickack,
    };
    let stats = reader(rd, lb, ctl_tx, phase, ctx, &sh).await;
    if timeout(Duration::from_secs(1), writer).await.is_err() {
        abort.abort();
        if is_sender {
            // The writer never reached its own accounting: do it for it.
            sh.senders_done.fetch_add(1, Ordering::SeqCst);
        }
    }
    stats
}

/// Counts a sender as done however its task ends.
struct DoneGuard<'a>(&'a AtomicUsize);

impl Drop for DoneGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

async fn writer(
    mut wr: OwnedWriteHalf,
    mut ctl: mpsc::UnboundedReceiver<Vec<u8>>,
    mut phase: watch::Receiver<Phase>,
    send: Option<SendCtx>,
    sh: Arc<ChatShared>,
) {
    // Until the run starts, only answer PINGs.
    let run = loop {
        let p = *phase.borrow_and_update();
        match p {
            Phase::Run { until_ns } => break Some(until_ns),
            Phase::Stop => break None,
            Phase::Setup => {}
        }
        tokio::select! {
            Some(m) = ctl.recv() => if wr.write_all(&m).await.is_err() { return },
            r = phase.changed() => if r.is_err() { return },
        }
    };
    if let (Some(until_ns), Some(s)) = (run, &send) {
        let _done = DoneGuard(&sh.senders_done);
        // A write error means the connection is gone; the reader reports it.
        let _ = send_loop(&mut wr, &mut ctl, s, &sh, until_ns).await;
    }
    loop {
        if *phase.borrow_and_update() == Phase::Stop {
            break;
        }
        tokio::select! {
            m = ctl.recv() => match m {
                Some(m) => if wr.write_all(&m).await.is_err() { break },
                None => break,
            },
            r = phase.changed() => if r.is_err() { break },
        }
    }
}

async fn send_loop(
    wr: &mut OwnedWriteHalf,
    ctl: &mut mpsc::UnboundedReceiver<Vec<u8>>,
    s: &SendCtx,
    sh: &ChatShared,
    until_ns: u64,
) -> std::io::Result<()> {
    let b = &sh.base;
    let from_ns = b.measure_from_ns.load(Ordering::SeqCst);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut seq: u64 = 0;
    // Builds `n` messages stamped `now` into `buf` and accounts for them.
    let fill = |buf: &mut Vec<u8>, seq: &mut u64, n: u64, now: u64| {
        buf.clear();
        for _ in 0..n {
            *seq += 1;
            buf.extend_from_slice(&s.prefix);
            let stamp = Stamp {
                sender: s.sid,
                seq: *seq,
                ts_ns: now,
            };
            encode(buf, stamp, s.size);
            buf.extend_from_slice(s.suffix);
        }
        if now >= from_ns {
            sh.sent_measured[s.sid as usize].fetch_add(n, Ordering::Relaxed);
            b.sent.fetch_add(n, Ordering::Relaxed);
        }
    };
    match s.window {
        None => {
            // Pace by schedule, not by sleeping per message: each tick sends
            // whatever is due, so high rates become batched writes.
            let period = Duration::from_secs_f64((1.0 / s.rate).clamp(0.001, 0.1));
            let first = Instant::now() + period.mul_f64(s.phase_offset);
            let mut iv = tokio::time::interval_at(first, period);
            iv.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut sent = 0u64;
            let mut t0: Option<u64> = None;
            loop {
                tokio::select! {
                    biased;
                    Some(m) = ctl.recv() => wr.write_all(&m).await?,
                    _ = iv.tick() => {
                        let now = b.now_ns();
                        if now >= until_ns {
                            return Ok(());
                        }
                        let t0 = *t0.get_or_insert(now);
                        let due = ((now - t0) as f64 * s.rate / 1e9) as u64 + 1;
                        let n = due.saturating_sub(sent).min(MAX_BATCH);
                        if n > 0 {
                            fill(&mut buf, &mut seq, n, now);
                            wr.write_all(&buf).await?;
                            sent += n;
                        }
                    }
                }
            }
        }
        Some(w) => {
            let ack = &sh.acks[s.sid as usize];
            let notify = &sh.notify[s.sid as usize];
            loop {
                let now = b.now_ns();
                if now >= until_ns {
                    return Ok(());
                }
                let inflight = seq.saturating_sub(ack.load(Ordering::Acquire));
                if inflight < w {
                    fill(&mut buf, &mut seq, (w - inflight).min(MAX_BATCH), now);
                    wr.write_all(&buf).await?;
                    continue;
                }
                tokio::select! {
                    biased;
                    Some(m) = ctl.recv() => wr.write_all(&m).await?,
                    _ = notify.notified() => {}
                    // Also re-checks the deadline if deliveries stop.
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        }
    }
}

struct RecvCtx {
    idx: usize,
    dialect: Dialect,
    my_sender: Option<u32>,
    observer: bool,
    nsenders: usize,
    quickack: bool,
}

async fn reader(
    mut rd: OwnedReadHalf,
    mut lb: LineBuf,
    ctl: mpsc::UnboundedSender<Vec<u8>>,
    mut phase: watch::Receiver<Phase>,
    cx: RecvCtx,
    sh: &ChatShared,
) -> RecvStats {
    let b = &sh.base;
    let mut st = RecvStats::default();
    let mut last = vec![0u64; cx.nsenders];
    // Reused across batches: the hot path allocates nothing.
    let mut lat: Vec<u64> = Vec::with_capacity(4096);
    let mut touched: Vec<usize> = Vec::new();
    let mut is_touched = vec![false; if cx.observer { cx.nsenders } else { 0 }];
    loop {
        let now = b.now_ns();
        let from = b.measure_from_ns.load(Ordering::Relaxed);
        let mut measured = 0u64;
        while let Some(line) = lb.next_line() {
            match classify(cx.dialect, line) {
                Incoming::Other => {}
                Incoming::Ping(tok) => {
                    let mut v = Vec::with_capacity(tok.len() + 7);
                    v.extend_from_slice(b"PONG ");
                    v.extend_from_slice(tok);
                    v.extend_from_slice(b"\r\n");
                    let _ = ctl.send(v);
                }
                Incoming::Payload(p) => {
                    let Some(m) = decode(p) else {
                        st.foreign += 1;
                        continue;
                    };
                    let sid = m.sender as usize;
                    if sid >= cx.nsenders {
                        st.foreign += 1;
                        continue;
                    }
                    if Some(m.sender) == cx.my_sender {
                        st.self_echoes += 1;
                        continue;
                    }
                    let prev = last[sid];
                    if m.seq == prev {
                        st.duplicates += 1;
                        continue;
                    }
                    if m.seq < prev {
                        st.reordered += 1;
                    } else {
                        last[sid] = m.seq;
                        if cx.observer && !is_touched[sid] {
                            is_touched[sid] = true;
                            touched.push(sid);
                        }
                    }
                    if m.ts_ns >= from {
                        measured += 1;
                        st.order.push(m.sender, m.seq);
                        lat.push(now.saturating_sub(m.ts_ns) / 1000);
                        if lat.len() == lat.capacity() {
                            b.lat.record_batch(cx.idx, &lat);
                            lat.clear();
                        }
                    }
                }
            }
        }
        if measured > 0 {
            st.received += measured;
            b.received.fetch_add(measured, Ordering::Relaxed);
        }
        b.lat.record_batch(cx.idx, &lat);
        lat.clear();
        for sid in touched.drain(..) {
            is_touched[sid] = false;
            // Several observers may hear a sender (rooms): the furthest counts.
            sh.acks[sid].fetch_max(last[sid], Ordering::Release);
            sh.notify[sid].notify_one();
        }
        if *phase.borrow() == Phase::Stop {
            break;
        }
        if lb.turn_over() {
            tokio::task::yield_now().await;
        }
        tokio::select! {
            r = lb.fill(&mut rd) => match r {
                // After Stop, our own writer's shutdown makes servers close
                // the connection: only an earlier end is worth reporting.
                Ok(0) => {
                    if *phase.borrow() != Phase::Stop {
                        st.lost_conn = Some("closed by server".into());
                    }
                    break;
                }
                Ok(_) => {
                    if cx.quickack {
                        quickack(rd.as_ref());
                    }
                }
                Err(e) => {
                    if *phase.borrow() != Phase::Stop {
                        st.lost_conn = Some(e.to_string());
                    }
                    break;
                }
            },
            r = phase.changed() => {
                if r.is_err() || *phase.borrow() == Phase::Stop {
                    break;
                }
            }
        }
    }
    st.overlong = lb.overlong;
    st
}
