//! The SQLite store on real files in temporary directories: the seams'
//! conformance cases, durability across `kill -9`, files it must refuse,
//! migrations, and two stores sharing one file (the CLI while the server
//! runs).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bavard_core::MsgId;
use bavard_core::store::{
    AccountStore, HistoryStore, Marker, MarkerStore, MemoryAccounts, MemoryHistory, MemoryMarkers,
    Point, Range, conformance,
};
use bavard_sqlite::{OpenError, SCHEMA_VERSION, SqliteStore};

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("bavard.db")
}

fn latest(limit: usize) -> Range {
    Range::Latest { after: None, limit }
}

/// The same cases pass on the in-memory stores and on SQLite.
#[tokio::test]
async fn both_stores_answer_alike() {
    conformance::history(&MemoryHistory::default()).await;
    conformance::accounts(&MemoryAccounts::default()).await;
    conformance::markers(&MemoryMarkers::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(db(&dir)).unwrap();
    conformance::history(&s).await;
    conformance::accounts(&s).await;
    conformance::markers(&s).await;
}

/// A file of schema version 2 (before read markers were kept) gains the
/// markers' table and keeps what it had; an account deleted takes its
/// markers with it.
#[tokio::test]
async fn a_version_2_file_is_migrated_to_keep_read_markers() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let s = SqliteStore::open(&path).unwrap();
        s.create(conformance::account("alice")).get().await.unwrap();
    }
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("DROP TABLE read_markers; PRAGMA user_version = 2;")
        .unwrap();
    drop(c);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(pragma(&path, "user_version"), i64::from(SCHEMA_VERSION));
    assert!(s.get("alice").get().await.unwrap().is_some());
    let marker = Marker {
        account: "alice".into(),
        target: "#a".into(),
        at: 42,
    };
    s.save(marker.clone(), 10).get().await.unwrap();
    drop(s);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.all().get().await, Ok(vec![marker]));
    AccountStore::delete(&s, "alice").get().await.unwrap();
    assert_eq!(s.all().get().await, Ok(Vec::new()));
}

/// Written, dropped, reopened: everything is there, in order.
#[tokio::test]
async fn what_is_written_is_read_back_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SqliteStore::open(db(&dir)).unwrap();
        s.create(conformance::account("Alice")).get().await.unwrap();
        let events = (1..=2000).map(|i| conformance::message("#a", i, 1000 + i / 3));
        for e in events {
            s.append(vec![e], 1500).get().await.unwrap();
        }
    }
    let s = SqliteStore::open(db(&dir)).unwrap();
    assert!(s.get("alice").get().await.unwrap().is_some());
    let all = s.read("#a", latest(5000)).get().await.unwrap();
    let ids: Vec<u64> = all.iter().map(|e| e.msgid.serial()).collect();
    assert_eq!(
        ids,
        (501..=2000).collect::<Vec<_>>(),
        "the last 1500, in order"
    );
    let around = Range::Around {
        point: Point::Msgid(MsgId::new(0, 1000)),
        limit: 3,
    };
    let ids: Vec<u64> = s
        .read("#a", around)
        .get()
        .await
        .unwrap()
        .iter()
        .map(|e| e.msgid.serial())
        .collect();
    assert_eq!(ids, [999, 1000, 1001]);
}

/// Set by [`killed_after_acknowledging`] for the copy of this test binary
/// it starts: the database that copy writes to.
const CHILD_DB: &str = "BAVARD_SQLITE_TEST_CHILD_DB";

/// Not a test of its own: the process [`killed_after_acknowledging`] kills.
/// It writes, says so once every write is acknowledged, and waits.
#[tokio::test]
#[ignore = "run by killed_after_acknowledging"]
async fn child_writes_and_waits() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let s = SqliteStore::open(path).unwrap();
    s.create(conformance::account("Alice")).get().await.unwrap();
    for i in 1..=100 {
        s.append(vec![conformance::message("#a", i, i)], 1000)
            .get()
            .await
            .unwrap();
    }
    // A read waits for the writes queued before it.
    assert_eq!(s.read("#a", latest(1)).get().await.unwrap().len(), 1);
    println!("written");
    std::thread::sleep(std::time::Duration::from_secs(60));
}

/// An acknowledged account and the history read back survive `kill -9`
/// the next instant.
#[test]
fn killed_after_acknowledging() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_writes_and_waits",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DB, db(&dir))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let said = out
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("written"));
    // SIGKILL: no destructor, no checkpoint, no clean close.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(said, "the child never finished writing");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = SqliteStore::open(db(&dir)).unwrap();
        assert_eq!(s.get("alice").get().await.unwrap().unwrap().name, "Alice");
        assert_eq!(s.read("#a", latest(1000)).get().await.unwrap().len(), 100);
    });
}

fn open_err(path: &Path) -> OpenError {
    SqliteStore::open(path).expect_err("the open should fail")
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    std::fs::write(&path, "this is not a database\n".repeat(300)).unwrap();
    let e = open_err(&path);
    assert!(matches!(e, OpenError::Corrupt { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("not a usable database"), "{msg}");
}

/// A database whose pages were overwritten: the check at open finds it.
#[test]
fn a_damaged_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let s = SqliteStore::open(&path).unwrap();
        rt.block_on(async {
            let events = (1..=3000)
                .map(|i| conformance::message("#a", i, i))
                .collect();
            s.append(events, 10_000).get().await.unwrap();
            s.read("#a", latest(1)).get().await.unwrap();
        });
    }
    // Keep the header (page 1), damage every page after the fourth.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8 * 4096, "{} bytes", bytes.len());
    for b in bytes.iter_mut().skip(4 * 4096).step_by(7) {
        *b ^= 0x5a;
    }
    std::fs::write(&path, bytes).unwrap();
    let e = open_err(&path);
    assert!(matches!(e, OpenError::Corrupt { .. }), "{e:?}");
}

#[test]
fn a_path_that_cannot_be_created_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/bavard.db");
    let e = open_err(&missing);
    assert!(matches!(e, OpenError::Unusable { .. }), "{e:?}");
    assert!(e.to_string().contains("no/such/dir/bavard.db"), "{e}");
    // A directory where the file should be, a file where a directory should.
    let e = open_err(dir.path());
    assert!(matches!(e, OpenError::Unusable { .. }), "{e:?}");
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let e = open_err(&file.join("bavard.db"));
    assert!(matches!(e, OpenError::Unusable { .. }), "{e:?}");
}

fn pragma(path: &Path, name: &str) -> i64 {
    let c = rusqlite::Connection::open(path).unwrap();
    c.pragma_query_value(None, name, |r| r.get(0)).unwrap()
}

#[test]
fn an_empty_file_is_migrated_and_a_newer_schema_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    std::fs::write(&path, "").unwrap();
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(pragma(&path, "user_version"), i64::from(SCHEMA_VERSION));
    // Opening again migrates nothing.
    drop(SqliteStore::open(&path).unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(c);
    let e = open_err(&path);
    assert!(matches!(e, OpenError::TooNew { .. }), "{e:?}");
    assert!(e.to_string().contains("newer than this bavard"), "{e}");
}

#[test]
fn another_programs_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("CREATE TABLE notes (text TEXT)").unwrap();
    drop(c);
    let e = open_err(&path);
    assert!(matches!(e, OpenError::Foreign { .. }), "{e:?}");
}

/// The server and the CLI on one file: each sees the other's writes.
#[tokio::test]
async fn two_stores_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = SqliteStore::open(db(&dir)).unwrap();
    let cli = SqliteStore::open(db(&dir)).unwrap();
    cli.create(conformance::account("bob")).get().await.unwrap();
    assert!(server.get("bob").get().await.unwrap().is_some());
    // Both write at once: the busy timeout lets each wait for the other.
    let (a, b) = tokio::join!(
        async {
            for i in 0..50 {
                server
                    .create(conformance::account(&format!("s{i}")))
                    .get()
                    .await
                    .unwrap();
            }
        },
        async {
            for i in 0..50 {
                cli.create(conformance::account(&format!("c{i}")))
                    .get()
                    .await
                    .unwrap();
            }
        }
    );
    let ((), ()) = (a, b);
    assert_eq!(cli.list().get().await.unwrap().len(), 101);
    server.delete("bob").get().await.unwrap();
    assert_eq!(cli.get("bob").get().await, Ok(None));
    drop(cli);
    server
        .append(vec![conformance::message("#a", 1, 1)], 10)
        .get()
        .await
        .unwrap();
    assert_eq!(server.read("#a", latest(5)).get().await.unwrap().len(), 1);
}

/// Pruning recounts what each conversation has left, so that the per-target
/// cap still counts right, and drops the conversations it empties.
#[tokio::test]
async fn pruning_recounts_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(db(&dir)).unwrap();
    let events = (1..=5).map(|i| conformance::message("#a", i, i * 10));
    s.append(events.collect(), 100).get().await.unwrap();
    s.prune(30).get().await.unwrap();
    s.append(vec![conformance::message("#a", 6, 60)], 3)
        .get()
        .await
        .unwrap();
    let left = s.read("#a", latest(10)).get().await.unwrap();
    let ids: Vec<u64> = left.iter().map(|e| e.msgid.serial()).collect();
    assert_eq!(ids, [4, 5, 6]);
    s.prune(1000).get().await.unwrap();
    let all = s.latest(Vec::new(), Some("#".into()), 0, 2000, 10);
    assert!(all.get().await.unwrap().is_empty(), "no conversation left");
}

/// A store at its size limit refuses what needs more room, as on a full
/// disk (a batch of history that does not fit is not kept, and logged);
/// what it holds stays readable, and the file stays within the limit.
#[tokio::test]
async fn a_full_store_refuses_writes_and_keeps_what_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open_with(db(&dir), 256 * 1024).unwrap();
    s.create(conformance::account("Alice")).get().await.unwrap();
    // Far more than 256 KiB: the later batches cannot be kept.
    let text = "x".repeat(400);
    for i in 1..=2_000u64 {
        let mut e = conformance::message("#a", i, i);
        if let bavard_core::notify::Event::Message { text: t, .. } = &mut e.event {
            *t = text.clone();
        }
        s.append(vec![e], 100_000).get().await.unwrap();
        if i % 100 == 0 {
            // A read commits what is queued: batches of 100.
            s.read("#a", latest(1)).get().await.unwrap();
        }
    }
    let kept = s.read("#a", latest(5_000)).get().await.unwrap();
    assert!(!kept.is_empty() && kept.len() < 2_000, "{}", kept.len());
    assert!(s.get("alice").get().await.unwrap().is_some());
    let size = std::fs::metadata(db(&dir)).unwrap().len();
    assert!(size <= 256 * 1024, "{size} bytes");
    // Reopened without the limit: history is kept again.
    drop(s);
    let s = SqliteStore::open(db(&dir)).unwrap();
    s.append(vec![conformance::message("#a", 5_000, 5_000)], 100_000)
        .get()
        .await
        .unwrap();
    let last = s.read("#a", latest(1)).get().await.unwrap();
    assert_eq!(last[0].msgid.serial(), 5_000);
}
