//! Histograms and process statistics (ours and the server's).

use std::sync::Mutex;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// A latency distribution summary, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// A histogram in µs from 1 µs to 60 s with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds are valid")
}

/// Summarises `h`; `None` when it holds no sample.
pub fn summarize(h: &Histogram<u64>) -> Option<Percentiles> {
    if h.is_empty() {
        return None;
    }
    Some(Percentiles {
        count: h.len(),
        min: h.min(),
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
        mean: h.mean(),
    })
}

/// Latency histograms sharded by client so receivers rarely contend, and
/// so that 1000 clients don't each carry a ~100 KiB histogram.
pub struct ShardedHist {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl ShardedHist {
    /// `n` independent shards.
    pub fn new(n: usize) -> Self {
        Self {
            shards: (0..n.max(1)).map(|_| Mutex::new(new_histogram())).collect(),
        }
    }

    /// Records a batch of µs samples into the shard of client `key`.
    pub fn record_batch(&self, key: usize, samples: &[u64]) {
        if samples.is_empty() {
            return;
        }
        let mut h = self.shards[key % self.shards.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for &s in samples {
            h.saturating_record(s);
        }
    }

    /// All shards merged.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for s in &self.shards {
            let h = s.lock().unwrap_or_else(|e| e.into_inner());
            // Same bounds everywhere, so adding cannot fail.
            let _ = all.add(&*h);
        }
        all
    }
}

/// CPU seconds (user + system) consumed so far by process `pid`, from
/// `/proc/<pid>/stat`.
pub fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces: count from its `)`.
    let after = &s[s.rfind(')')? + 1..];
    let mut f = after.split_whitespace();
    // After `)` comes field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let tck = if tck > 0 { tck as f64 } else { 100.0 };
    Some((utime + stime) as f64 / tck)
}

/// Resident set size of process `pid` in KiB, from `/proc/<pid>/status`.
pub fn proc_rss_kib(pid: u32) -> Option<u64> {
    proc_mem(pid).map(|m| m.rss_kib)
}

/// A process's memory at one moment.
#[derive(Clone, Copy, Debug)]
pub struct MemMark {
    /// Resident set size (`VmRSS`), what other tools report.
    pub rss_kib: u64,
    /// Its anonymous part (`RssAnon`): the RSS without the pages of the
    /// binary and libraries, which a run may touch for the first time and
    /// which vary by hundreds of KiB between runs of the same server.
    pub anon_kib: Option<u64>,
}

/// [`MemMark`] of process `pid`, from `/proc/<pid>/status`.
pub fn proc_mem(pid: u32) -> Option<MemMark> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = s.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some(MemMark {
        rss_kib: field("VmRSS:")?,
        anon_kib: field("RssAnon:"),
    })
}

/// CPU seconds (user + system) used by this process so far.
pub fn self_cpu_seconds() -> f64 {
    // SAFETY: rusage is plain data; getrusage only writes into it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_stats() {
        let pid = std::process::id();
        assert!(proc_cpu_seconds(pid).is_some());
        assert!(proc_rss_kib(pid).unwrap() > 0);
        let m = proc_mem(pid).unwrap();
        assert!(m.anon_kib.is_some_and(|a| a > 0 && a <= m.rss_kib), "{m:?}");
        assert!(self_cpu_seconds() >= 0.0);
    }

    #[test]
    fn sharded_merge() {
        let h = ShardedHist::new(4);
        h.record_batch(0, &[10, 20]);
        h.record_batch(5, &[30]);
        let p = summarize(&h.merged()).unwrap();
        assert_eq!(p.count, 3);
        assert_eq!(p.max, 30);
    }
}
