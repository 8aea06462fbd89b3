//! What history costs on SQLite, measured rather than guessed
//! (docs/storage.md, "Cost"). Not run by `cargo test`:
//!
//! ```sh
//! cargo test --release -p bavard-sqlite --test cost -- --ignored --nocapture
//! ```
//!
//! `BAVARD_COST_EVENTS` sets how many events are stored (default one million).

use std::time::{Duration, Instant};

use bavard_core::MsgId;
use bavard_core::store::{HistoryStore, Point, Range, conformance};
use bavard_sqlite::SqliteStore;

#[tokio::test]
#[ignore = "a measurement: run it by hand, in release"]
async fn history_appends_reads_and_size() {
    let n: u64 = std::env::var("BAVARD_COST_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let conversations = 10;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bavard.db");
    let s = SqliteStore::open(&path).unwrap();
    // One event per append, as the server stores them.
    let events: Vec<_> = (1..=n)
        .map(|i| conformance::message(&format!("channel:{}", i % conversations), i, i))
        .collect();
    let start = Instant::now();
    for e in events {
        let mut e = Some(e);
        // A full queue refuses the write: wait for the writer and retry.
        while let Some(ev) = e.take() {
            if s.append(vec![ev.clone()], usize::MAX).get().await.is_err() {
                tokio::time::sleep(Duration::from_millis(1)).await;
                e = Some(ev);
            }
        }
    }
    // A read waits for every write queued before it: all are committed.
    s.read(
        "channel:1",
        Range::Latest {
            after: None,
            limit: 1,
        },
    )
    .get()
    .await
    .unwrap();
    let took = start.elapsed();
    println!(
        "appended {n} events in {took:.2?}: {:.0} a second",
        n as f64 / took.as_secs_f64()
    );
    let mut latencies = Vec::new();
    for k in 0..2000 {
        let id = (k * 7919) % n + 1;
        let target = format!("channel:{}", id % conversations);
        let range = if k % 2 == 0 {
            Range::Latest {
                after: None,
                limit: 100,
            }
        } else {
            let point = Point::Msgid(MsgId::new(0, id));
            Range::Before { point, limit: 100 }
        };
        let t = Instant::now();
        s.read(&target, range).get().await.unwrap();
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let at = |q: usize| latencies[latencies.len() * q / 100];
    println!(
        "LATEST/BEFORE of 100: p50 {:.2?}, p99 {:.2?}",
        at(50),
        at(99)
    );
    drop(s);
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!(
        "file: {} MB, {} bytes an event",
        bytes / 1_000_000,
        bytes / n
    );
}
