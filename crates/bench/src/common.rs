//! State shared by the loader's tasks, progress output and server sampling.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::report::{LoaderStats, ServerStats};
use super::stats::{MemMark, ShardedHist, proc_cpu_seconds, proc_mem, self_cpu_seconds};

/// Counters and the clock every task of a run shares.
pub struct Shared {
    /// Origin of all payload timestamps; one monotonic clock for the whole
    /// process, so a sender's and a receiver's readings compare directly.
    pub clock: std::time::Instant,
    /// Messages stamped at or after this many ns are measured; `u64::MAX`
    /// (nothing measured) until the run starts.
    pub measure_from_ns: AtomicU64,
    /// Measured deliveries so far (progress and drain).
    pub received: AtomicU64,
    /// Measured sends so far (progress).
    pub sent: AtomicU64,
    /// Latency samples in µs.
    pub lat: ShardedHist,
}

impl Shared {
    /// Fresh state with the clock starting now.
    pub fn new() -> Self {
        Self {
            clock: std::time::Instant::now(),
            measure_from_ns: AtomicU64::new(u64::MAX),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            lat: ShardedHist::new(32),
        }
    }

    /// Nanoseconds since the clock origin.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// The tokio instant `ns` after the clock origin.
    pub fn instant_at(&self, ns: u64) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.clock + Duration::from_nanos(ns))
    }

    /// Measured deliveries so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// A once-a-second status line on stderr (`\r`-overwritten on a terminal,
/// a plain line every 5 s otherwise, so logs stay readable).
pub struct Progress {
    task: Option<JoinHandle<()>>,
    tty: bool,
}

impl Progress {
    /// Starts printing `line()` if `enabled`.
    pub fn start(enabled: bool, line: impl Fn() -> String + Send + 'static) -> Self {
        let tty = std::io::stderr().is_terminal();
        if !enabled {
            return Self { task: None, tty };
        }
        let every = Duration::from_secs(if tty { 1 } else { 5 });
        let task = tokio::spawn(async move {
            let mut iv = tokio::time::interval(every);
            iv.tick().await;
            loop {
                iv.tick().await;
                let mut e = std::io::stderr().lock();
                if tty {
                    let _ = write!(e, "\r{}\x1b[K", line());
                } else {
                    let _ = writeln!(e, "{}", line());
                }
                let _ = e.flush();
            }
        });
        Self {
            task: Some(task),
            tty,
        }
    }

    /// Stops printing and clears the line.
    pub fn finish(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            if self.tty {
                let _ = write!(std::io::stderr(), "\r\x1b[K");
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// CPU readings of the server and of the loader at one instant.
#[derive(Clone, Copy, Debug)]
pub struct CpuMark {
    server: Option<f64>,
    loader: f64,
    at: std::time::Instant,
}

impl CpuMark {
    /// Samples now (`pid` = the server, if known).
    pub fn now(pid: Option<u32>) -> Self {
        Self {
            server: pid.and_then(proc_cpu_seconds),
            loader: self_cpu_seconds(),
            at: std::time::Instant::now(),
        }
    }
}

/// Loader and server figures between two marks.
pub fn cpu_between(
    pid: Option<u32>,
    a: CpuMark,
    b: CpuMark,
    mem_before: Option<MemMark>,
    conns: u64,
    work: Option<u64>,
) -> (LoaderStats, Option<ServerStats>) {
    let wall = b.at.duration_since(a.at).as_secs_f64();
    let cpu = (b.loader - a.loader).max(0.0);
    let loader = LoaderStats {
        cpu_s: cpu,
        wall_s: wall,
        cores_used: if wall > 0.0 { cpu / wall } else { 0.0 },
    };
    let server = pid.map(|pid| {
        let cpu_s = match (a.server, b.server) {
            (Some(x), Some(y)) => (y - x).max(0.0),
            _ => 0.0,
        };
        let mem_after = proc_mem(pid);
        let per_conn = |x: Option<u64>, y: Option<u64>| match (x, y) {
            (Some(x), Some(y)) if conns > 0 => Some((y as f64 - x as f64) * 1024.0 / conns as f64),
            _ => None,
        };
        let rss_before = mem_before.map(|m| m.rss_kib);
        let rss_after = mem_after.map(|m| m.rss_kib);
        ServerStats {
            pid,
            cpu_s,
            rss_before_kib: rss_before,
            rss_after_kib: rss_after,
            rss_per_conn_bytes: per_conn(rss_before, rss_after),
            anon_per_conn_bytes: per_conn(
                mem_before.and_then(|m| m.anon_kib),
                mem_after.and_then(|m| m.anon_kib),
            ),
            deliveries_per_cpu_s: work.filter(|_| cpu_s > 0.0).map(|w| w as f64 / cpu_s),
        }
    });
    (loader, server)
}
