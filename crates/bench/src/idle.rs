//! The `idle` scenario: open and register N connections, hold them, and
//! measure connect rate and the server's memory per connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Instant, timeout, timeout_at};

use super::common::{CpuMark, Progress, cpu_between};
use super::config::{BenchConfig, Dialect};
use super::net::{connect, register, source_addr};
use super::report::{ConnectStats, Report};
use super::stats::{new_histogram, proc_mem, summarize};
use super::wire::{Incoming, LineBuf, classify};

/// Idle connections only see PINGs and the odd notice: keep buffers small
/// so that the loader's own memory stays modest at 100k connections.
const IDLE_BUF: usize = 2048;

enum Ready {
    Ok {
        connect: Duration,
        register: Duration,
    },
    Failed(String),
}

/// Runs `idle`.
pub(crate) async fn run_idle(cfg: &BenchConfig) -> anyhow::Result<Report> {
    let cfg = Arc::new(cfg.clone());
    let n = cfg.clients;
    let mem_before = cfg.server_pid.and_then(proc_mem);
    let mark0 = CpuMark::now(cfg.server_pid);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let sem = Arc::new(Semaphore::new(cfg.connect_concurrency));
    let done = Arc::new(AtomicU64::new(0));
    let progress = {
        let done = done.clone();
        Progress::start(cfg.progress, move || {
            format!("connecting: {}/{n}", done.load(Ordering::Relaxed))
        })
    };
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        handles.push(tokio::spawn(idle_conn(
            i,
            cfg.clone(),
            sem.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(ready_tx);
    let mut conn = ConnectStats {
        attempted: n as u64,
        ..Default::default()
    };
    let mut h_conn = new_histogram();
    let mut h_reg = new_histogram();
    let mut last_ok = t0;
    while conn.registered + conn.failed < n as u64 {
        match ready_rx.recv().await {
            Some(Ready::Ok { connect, register }) => {
                conn.registered += 1;
                last_ok = Instant::now();
                h_conn.saturating_record(connect.as_micros() as u64);
                h_reg.saturating_record(register.as_micros() as u64);
            }
            Some(Ready::Failed(e)) => {
                conn.failed += 1;
                conn.first_error.get_or_insert(e);
            }
            None => break,
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    progress.finish();
    conn.connected = h_conn.len();
    conn.setup_s = last_ok.duration_since(t0).as_secs_f64();
    conn.rate_per_s = conn.registered as f64 / conn.setup_s.max(1e-9);
    conn.connect_us = summarize(&h_conn);
    conn.register_us = summarize(&h_reg);

    let progress = Progress::start(cfg.progress, || "holding connections".to_string());
    tokio::time::sleep(cfg.hold).await;
    progress.finish();
    let mark1 = CpuMark::now(cfg.server_pid);
    let (loader, server) = cpu_between(
        cfg.server_pid,
        mark0,
        mark1,
        mem_before,
        conn.registered,
        None,
    );
    let _ = stop_tx.send(true);
    let mut dropped = 0u64;
    for h in handles {
        if let Ok(Ok(true)) = timeout(Duration::from_secs(2), h).await {
            dropped += 1;
        }
    }
    let mut warnings = Vec::new();
    if dropped > 0 {
        warnings.push(format!(
            "{dropped} registered connections were closed by the server during the hold"
        ));
    }
    if conn.failed > 0 {
        warnings.push(format!("{} connections failed", conn.failed));
    }
    Ok(Report {
        scenario: cfg.scenario.as_str().into(),
        dialect: cfg.dialect.as_str().into(),
        target: cfg.target.to_string(),
        targets: cfg.targets.iter().map(|t| t.to_string()).collect(),
        // No order to check: vacuously fine.
        order_ok: true,
        clients: n,
        size: cfg.size,
        connect: conn,
        hold_s: Some(cfg.hold.as_secs_f64()),
        drained: true,
        server,
        loader,
        warnings,
        ..Default::default()
    })
}

/// One idle connection; returns true if the server closed it during the hold.
async fn idle_conn(
    i: usize,
    cfg: Arc<BenchConfig>,
    sem: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<Ready>,
    mut stop: watch::Receiver<bool>,
) -> bool {
    let mut lb = LineBuf::new(IDLE_BUF);
    let setup = async {
        let _permit = sem.acquire().await.context("semaphore closed")?;
        let t0 = Instant::now();
        let deadline = t0 + cfg.connect_timeout;
        let target = cfg.target_for(i);
        let src = source_addr(target, i, cfg.spread_sources);
        let mut stream = timeout_at(deadline, connect(target, src))
            .await
            .map_err(|_| anyhow!("connect timed out"))?
            .context("connect")?;
        let t_conn = t0.elapsed();
        // Registration gets its own allowance: a server with a small listen
        // backlog (ngIRCd: 10) can take seconds to accept during a storm.
        let deadline = Instant::now() + cfg.connect_timeout;
        let nick = format!("{}{}", cfg.nick_prefix, i);
        register(cfg.dialect, &mut stream, &mut lb, &nick, deadline).await?;
        anyhow::Ok((stream, t_conn, t0.elapsed()))
    }
    .await;
    let mut stream: TcpStream = match setup {
        Ok((s, connect, register)) => {
            let _ = ready.send(Ready::Ok { connect, register });
            s
        }
        Err(e) => {
            let _ = ready.send(Ready::Failed(format!("conn {i}: {e:#}")));
            return false;
        }
    };
    loop {
        while let Some(line) = lb.next_line() {
            if let Incoming::Ping(tok) = classify(cfg.dialect, line) {
                if cfg.dialect != Dialect::Irc {
                    continue;
                }
                let mut v = b"PONG ".to_vec();
                v.extend_from_slice(tok);
                v.extend_from_slice(b"\r\n");
                if stream.write_all(&v).await.is_err() {
                    return !*stop.borrow();
                }
            }
        }
        if *stop.borrow() {
            return false;
        }
        tokio::select! {
            r = lb.fill(&mut stream) => match r {
                Ok(0) | Err(_) => return !*stop.borrow(),
                Ok(_) => {}
            },
            _ = stop.changed() => return false,
        }
    }
}
