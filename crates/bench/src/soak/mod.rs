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
//!
//! This file is the run itself; [`well`] has the well-behaved clients,
//! [`attacks`] the hostile ones, [`conn`] what the hostile clients and the
//! observer share, [`health`] the server's checks, [`report`] the figures.

mod attacks;
mod conn;
mod health;
mod report;
mod well;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::bail;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};

use crate::common::{Progress, Shared};
use crate::config::{BenchConfig, Dialect};
use crate::report::{ConnectStats, LoaderStats, Report, ServerStats};
use crate::stats::{new_histogram, proc_cpu_seconds, proc_rss_kib, self_cpu_seconds, summarize};
use attacks::{Attack, HostileCtx, hostile};
use health::{lusers_check, pid_alive, scan_log, slope};
pub use report::{AttackStats, Health, LusersCheck, RssSample, SoakReport};
use well::{Phase, Ready, WellPlan, WellShared, plan, well_client};

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
        // Soak loads one server: the first target.
        targets: vec![cfg.target.to_string()],
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
        // Soak checks loss, reordering and duplicates, not one order.
        order_ok: true,
        order_channels: 0,
        order_compared: 0,
        order_fewer: 0,
        order_mismatches: Vec::new(),
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
    use super::conn::{farewell_of, hostile_source};
    use super::*;
    use std::net::SocketAddr;

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
