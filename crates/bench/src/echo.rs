//! The `echo` scenario: N connections doing request/response round trips
//! against an echo server, `window` requests outstanding per connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, timeout, timeout_at};

use super::common::{CpuMark, Progress, Shared, cpu_between};
use super::config::BenchConfig;
use super::net::{connect, source_addr};
use super::report::{ConnectStats, Report};
use super::stats::{new_histogram, proc_mem, summarize};
use super::wire::{LineBuf, Stamp, decode, encode};

#[derive(Default)]
struct ConnStats {
    sent: u64,
    received: u64,
    reordered: u64,
    duplicates: u64,
    foreign: u64,
    error: Option<String>,
}

enum Ready {
    Ok(Duration),
    Failed(String),
}

/// Runs `echo`.
pub(crate) async fn run_echo(cfg: &BenchConfig) -> anyhow::Result<Report> {
    let cfg = Arc::new(cfg.clone());
    let n = cfg.clients;
    let sh = Arc::new(Shared::new());
    let mem_before = cfg.server_pid.and_then(proc_mem);
    let sem = Arc::new(Semaphore::new(cfg.connect_concurrency));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    // Connections start sending once all are up, at a common start time.
    let (go_tx, go_rx) = tokio::sync::watch::channel(None::<(u64, u64)>);
    let setup_t0 = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        handles.push(tokio::spawn(echo_conn(
            i,
            cfg.clone(),
            sh.clone(),
            sem.clone(),
            ready_tx.clone(),
            go_rx.clone(),
        )));
    }
    drop(ready_tx);
    let mut conn = ConnectStats {
        attempted: n as u64,
        ..Default::default()
    };
    let mut h_conn = new_histogram();
    while conn.registered + conn.failed < n as u64 {
        match ready_rx.recv().await {
            Some(Ready::Ok(d)) => {
                conn.registered += 1;
                h_conn.saturating_record(d.as_micros() as u64);
            }
            Some(Ready::Failed(e)) => {
                conn.failed += 1;
                conn.first_error.get_or_insert(e);
            }
            None => break,
        }
    }
    conn.connected = conn.registered;
    conn.setup_s = setup_t0.elapsed().as_secs_f64();
    conn.rate_per_s = conn.registered as f64 / conn.setup_s.max(1e-9);
    conn.connect_us = summarize(&h_conn);
    conn.register_us = conn.connect_us.clone();

    let start_ns = sh.now_ns();
    let from_ns = start_ns + cfg.warmup.as_nanos() as u64;
    let until_ns = from_ns + cfg.duration.as_nanos() as u64;
    sh.measure_from_ns.store(from_ns, Ordering::SeqCst);
    let _ = go_tx.send(Some((until_ns, until_ns + cfg.drain.as_nanos() as u64)));
    let progress = {
        let sh = sh.clone();
        Progress::start(cfg.progress, move || {
            format!(
                "t={:+.0}s round trips {}",
                (sh.now_ns() as f64 - from_ns as f64) / 1e9,
                sh.received()
            )
        })
    };
    tokio::time::sleep_until(sh.instant_at(from_ns)).await;
    let mark0 = CpuMark::now(cfg.server_pid);
    let drain_start = sh.instant_at(until_ns);
    let mut total = ConnStats::default();
    let mut warnings = Vec::new();
    for h in handles {
        // Each connection ends by itself at until + drain at the latest.
        match timeout(
            cfg.warmup + cfg.duration + cfg.drain + Duration::from_secs(5),
            h,
        )
        .await
        {
            Ok(Ok(c)) => {
                total.sent += c.sent;
                total.received += c.received;
                total.reordered += c.reordered;
                total.duplicates += c.duplicates;
                total.foreign += c.foreign;
                if total.error.is_none() {
                    total.error = c.error;
                }
            }
            _ => warnings.push("an echo connection did not stop in time".into()),
        }
    }
    let mark1 = CpuMark::now(cfg.server_pid);
    progress.finish();
    let drain_s = Instant::now()
        .saturating_duration_since(drain_start)
        .as_secs_f64();
    if let Some(e) = total.error {
        warnings.push(format!("connection error: {e}"));
    }
    if conn.failed > 0 {
        warnings.push(format!("{} connections failed", conn.failed));
    }
    let (loader, server) = cpu_between(
        cfg.server_pid,
        mark0,
        mark1,
        mem_before,
        conn.registered,
        Some(total.received),
    );
    let dur = cfg.duration.as_secs_f64();
    Ok(Report {
        scenario: cfg.scenario.as_str().into(),
        dialect: cfg.dialect.as_str().into(),
        target: cfg.target.to_string(),
        targets: cfg.targets.iter().map(|t| t.to_string()).collect(),
        // No order to check: vacuously fine.
        order_ok: true,
        clients: n,
        senders: conn.registered as usize,
        size: cfg.size,
        window: Some(cfg.window.unwrap_or(1)),
        warmup_s: cfg.warmup.as_secs_f64(),
        duration_s: dur,
        drain_s,
        drained: total.received >= total.sent,
        sent: total.sent,
        expected: total.sent,
        received: total.received,
        lost: total.sent.saturating_sub(total.received),
        reordered: total.reordered,
        duplicates: total.duplicates,
        foreign: total.foreign,
        sent_per_s: total.sent as f64 / dur,
        deliveries_per_s: total.received as f64 / dur,
        latency_us: summarize(&sh.lat.merged()),
        connect: conn,
        server,
        loader,
        warnings,
        ..Default::default()
    })
}

async fn echo_conn(
    i: usize,
    cfg: Arc<BenchConfig>,
    sh: Arc<Shared>,
    sem: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<Ready>,
    mut go: tokio::sync::watch::Receiver<Option<(u64, u64)>>,
) -> ConnStats {
    let mut st = ConnStats::default();
    let setup = async {
        let _permit = sem.acquire().await.context("semaphore closed")?;
        let t0 = Instant::now();
        let target = cfg.target_for(i);
        let src = source_addr(target, i, cfg.spread_sources);
        let s = timeout_at(t0 + cfg.connect_timeout, connect(target, src))
            .await
            .map_err(|_| anyhow!("connect timed out"))?
            .context("connect")?;
        anyhow::Ok((s, t0.elapsed()))
    }
    .await;
    let mut stream = match setup {
        Ok((s, d)) => {
            let _ = ready.send(Ready::Ok(d));
            s
        }
        Err(e) => {
            let _ = ready.send(Ready::Failed(format!("conn {i}: {e:#}")));
            return st;
        }
    };
    // Copy the value out at once: a watch guard must not live across an await.
    let go_at = match go.wait_for(|g| g.is_some()).await {
        Ok(r) => *r,
        Err(_) => None,
    };
    let Some((until_ns, drain_until_ns)) = go_at else {
        return st;
    };
    let from_ns = sh.measure_from_ns.load(Ordering::SeqCst);
    let window = cfg.window.unwrap_or(1);
    // Requests are lines so that line-oriented echo servers work too.
    let body = cfg.size.saturating_sub(1).max(1);
    let mut lb = LineBuf::new((cfg.size + 64).max(16 * 1024));
    let mut out: Vec<u8> = Vec::with_capacity(window as usize * (cfg.size + 32));
    let mut lat: Vec<u64> = Vec::with_capacity(1024);
    let mut seq = 0u64;
    let mut last_back = 0u64;
    // `sent`/`received` count only measured requests; these count all.
    let mut sent_all = 0u64;
    let mut back_all = 0u64;
    loop {
        let now = sh.now_ns();
        let inflight = sent_all.saturating_sub(back_all);
        if now < until_ns && inflight < window {
            out.clear();
            for _ in inflight..window {
                seq += 1;
                let stamp = Stamp {
                    sender: i as u32,
                    seq,
                    ts_ns: now,
                };
                encode(&mut out, stamp, body);
                out.push(b'\n');
            }
            let k = window - inflight;
            if let Err(e) = stream.write_all(&out).await {
                st.error = Some(e.to_string());
                break;
            }
            sent_all += k;
            if now >= from_ns {
                st.sent += k;
            }
            continue;
        }
        if now >= until_ns && inflight == 0 {
            break;
        }
        let wait_until = if now < until_ns {
            until_ns
        } else {
            drain_until_ns
        };
        match timeout_at(sh.instant_at(wait_until), lb.fill(&mut stream)).await {
            Err(_) if wait_until == drain_until_ns => break,
            Err(_) => continue,
            Ok(Ok(0)) => {
                st.error = Some("closed by server".into());
                break;
            }
            Ok(Err(e)) => {
                st.error = Some(e.to_string());
                break;
            }
            Ok(Ok(_)) => {}
        }
        let now = sh.now_ns();
        let mut measured = 0;
        while let Some(line) = lb.next_line() {
            let Some(m) = decode(line) else {
                st.foreign += 1;
                continue;
            };
            if m.seq == last_back {
                st.duplicates += 1;
                continue;
            }
            if m.seq < last_back {
                st.reordered += 1;
            } else {
                last_back = m.seq;
            }
            back_all += 1;
            if m.ts_ns >= from_ns {
                measured += 1;
                lat.push(now.saturating_sub(m.ts_ns) / 1000);
            }
        }
        st.received += measured;
        sh.received.fetch_add(measured, Ordering::Relaxed);
        sh.lat.record_batch(i, &lat);
        lat.clear();
    }
    st
}
