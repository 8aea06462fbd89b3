//! The server's health after a soak: alive, panics in its log, RSS slope,
//! and the LUSERS count that shows sessions it forgot to remove.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, sleep, timeout_at};

use super::LusersCheck;
use super::attacks::irc_register;
use super::conn::{Reader, Until, hostile_connect, hostile_source};
use crate::config::BenchConfig;

/// Whether process `pid` still runs (not a zombie).
pub(super) fn pid_alive(pid: u32) -> bool {
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

/// The log's lines mentioning "panicked" (at most 10).
pub(super) fn scan_log(path: &Path) -> anyhow::Result<Vec<String>> {
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
pub(super) fn slope(points: &[(f64, f64)]) -> Option<f64> {
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
pub(super) async fn lusers_check(
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
