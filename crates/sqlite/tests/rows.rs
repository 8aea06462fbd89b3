//! History kept as rows of runs of events, read back exactly as the
//! in-memory store answers: runs split over several rows and commits, many
//! events in one millisecond across a row's edge, a trimmed conversation
//! whose oldest event sits in the middle of a row, redactions.

use bavard_core::MsgId;
use bavard_core::store::{HistoryStore, MemoryHistory, Point, Range, Stored, conformance};
use bavard_sqlite::SqliteStore;

async fn ids(h: &dyn HistoryStore, r: Range) -> Vec<u64> {
    let events = h.read("#t", r).get().await.unwrap();
    events.iter().map(|e| e.msgid.serial()).collect()
}

fn ranges(points: &[Point], limits: &[usize]) -> Vec<Range> {
    let mut all = Vec::new();
    for &limit in limits {
        all.push(Range::Latest { after: None, limit });
        for &p in points {
            all.push(Range::Latest {
                after: Some(p),
                limit,
            });
            all.push(Range::Before { point: p, limit });
            all.push(Range::After { point: p, limit });
            all.push(Range::Around { point: p, limit });
            for &q in points {
                all.push(Range::Between {
                    from: p,
                    to: q,
                    limit,
                });
            }
        }
    }
    all
}

#[tokio::test]
async fn rows_read_as_the_memory_store_does() {
    let dir = tempfile::tempdir().unwrap();
    let sql = SqliteStore::open(dir.path().join("bavard.db")).unwrap();
    let mem = MemoryHistory::default();
    let keep = 700;
    let mut id = 0;
    // Batch sizes around a row's 256 events; a read after each makes the
    // next batch a commit (and rows) of its own.
    for (batch, n) in [1, 300, 5, 600, 40, 257, 2, 256, 100]
        .into_iter()
        .enumerate()
    {
        for _ in 0..n {
            id += 1;
            // Seven events a millisecond: ties cross rows' edges.
            let e: Stored = conformance::message("#t", id, 1_000 + id / 7);
            sql.append(vec![e.clone()], keep).get().await.unwrap();
            mem.append(vec![e], keep).get().await.unwrap();
        }
        if batch == 5 {
            // Above the floor, below it (already trimmed), unknown.
            for gone in [id - 3, id - 250, 2, 99_999] {
                let m = MsgId::new(0, gone);
                sql.remove("#t", m).get().await.unwrap();
                mem.remove("#t", m).get().await.unwrap();
            }
        }
        let latest = Range::Latest {
            after: None,
            limit: 1,
        };
        assert_eq!(ids(&sql, latest).await, ids(&mem, latest).await);
    }
    let kept = ids(
        &mem,
        Range::Latest {
            after: None,
            limit: 10_000,
        },
    )
    .await;
    assert_eq!(kept.len(), keep, "the last `keep` are kept, exactly");
    let (first, last) = (kept[0], kept[kept.len() - 1]);
    let mut points: Vec<Point> = [
        first - 1,
        first,
        first + 1,
        first + 300,
        last - 1,
        last,
        last + 5,
    ]
    .into_iter()
    .map(|s| Point::Msgid(MsgId::new(0, s)))
    .collect();
    let time = |s: u64| 1_000 + s / 7;
    points.extend(
        [
            0,
            time(first),
            time(first) + 1,
            time(first + 256),
            time(last),
            time(last) + 1,
        ]
        .into_iter()
        .map(Point::Time),
    );
    let mut checked = 0;
    for r in ranges(&points, &[0, 1, 3, 8, 100, 1_000]) {
        assert_eq!(ids(&sql, r).await, ids(&mem, r).await, "{r:?}");
        checked += 1;
    }
    assert!(checked > 1_000);
    // Reopened: the same answers from the file alone.
    drop(sql);
    let sql = SqliteStore::open(dir.path().join("bavard.db")).unwrap();
    for r in ranges(&points[..4], &[3, 100]) {
        assert_eq!(
            ids(&sql, r).await,
            ids(&mem, r).await,
            "after reopening: {r:?}"
        );
    }
}
