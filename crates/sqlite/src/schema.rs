//! Opening the file: the connection's settings, the checks that refuse a
//! file bavard cannot use (with a message naming it), and the schema's
//! migrations, counted by `PRAGMA user_version`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

/// `PRAGMA application_id` of a bavard database ("bavd"): a SQLite file of
/// another program is refused rather than migrated.
const APPLICATION_ID: i64 = 0x6261_7664;

/// How long a statement waits for a lock another connection holds (the
/// `bavard account` CLI while the server writes, or the other way round).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One version's change of the schema: SQL, then Rust for what SQL cannot
/// do (events re-encoded).
struct Step {
    sql: &'static str,
    then: Option<fn(&Connection) -> rusqlite::Result<()>>,
}

/// The schema, one step per version: a database at version `n` has run the
/// first `n`. Steps are never edited once released, only added.
const MIGRATIONS: &[Step] = &[
    // 1: accounts and history, a row per event.
    Step {
        sql: "CREATE TABLE accounts (
        key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        scram_salt BLOB,
        scram_iterations INTEGER,
        scram_stored_key BLOB,
        scram_server_key BLOB,
        email TEXT,
        created INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE certfps (
        fp TEXT PRIMARY KEY,
        account TEXT NOT NULL REFERENCES accounts (key) ON DELETE CASCADE,
        position INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX certfps_by_account ON certfps (account);
    CREATE TABLE targets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        events INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE history (
        seq INTEGER PRIMARY KEY,
        target INTEGER NOT NULL,
        msgid INTEGER NOT NULL,
        time INTEGER NOT NULL,
        event BLOB NOT NULL
    );
    CREATE INDEX history_by_time ON history (target, time);
    CREATE INDEX history_by_msgid ON history (msgid);",
        then: None,
    },
    // 2: history, a row per run of a conversation's events (what one commit
    // added): the row-per-event table is converted, then dropped.
    Step {
        sql: "DROP INDEX history_by_time;
    DROP INDEX history_by_msgid;
    ALTER TABLE history RENAME TO history_v1;
    CREATE TABLE history (
        id INTEGER PRIMARY KEY,
        target INTEGER NOT NULL,
        first_time INTEGER NOT NULL,
        last_time INTEGER NOT NULL,
        min_msgid INTEGER NOT NULL,
        max_msgid INTEGER NOT NULL,
        events INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    CREATE INDEX history_by_target ON history (target);
    CREATE INDEX history_by_time ON history (target, last_time);
    CREATE INDEX history_by_msgid ON history (target, max_msgid, min_msgid);
    ALTER TABLE targets ADD COLUMN floor_row INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE targets ADD COLUMN floor_idx INTEGER NOT NULL DEFAULT 0;",
        then: Some(crate::history::convert_v1),
    },
    // 3: the accounts' read markers (draft/read-marker).
    Step {
        sql: "CREATE TABLE read_markers (
        account TEXT NOT NULL,
        target TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (account, target)
    ) WITHOUT ROWID;
    CREATE INDEX read_markers_by_target ON read_markers (target);",
        then: None,
    },
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file or its directory cannot be created, read or written.
    #[error("cannot use the database {path}: {reason}")]
    Unusable { path: PathBuf, reason: String },
    /// Not a SQLite database, or a damaged one.
    #[error("{path} is not a usable database ({reason}); restore it from a backup or move it away")]
    Corrupt { path: PathBuf, reason: String },
    /// A SQLite database of another program.
    #[error("{path} is a SQLite database of another program, not bavard's")]
    Foreign { path: PathBuf },
    /// Written by a newer bavard: this one does not know its schema.
    #[error(
        "{path} has schema version {found}, newer than this bavard's {supported}: run a newer bavard"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
}

impl OpenError {
    /// The error `e` is for the file at `path`.
    fn sqlite(path: &Path, e: rusqlite::Error) -> OpenError {
        let path = path.to_path_buf();
        let reason = e.to_string();
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                OpenError::Corrupt { path, reason }
            }
            _ => OpenError::Unusable { path, reason },
        }
    }
}

/// A connection to `path`, created if missing, in WAL mode, checked for
/// damage; with `migrate`, its schema brought up to [`SCHEMA_VERSION`].
pub(crate) fn connect(path: &Path, migrate: bool) -> Result<Connection, OpenError> {
    let err = |e| OpenError::sqlite(path, e);
    // SQLite only says "unable to open database file".
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(OpenError::Unusable {
            path: path.to_path_buf(),
            reason: format!("{} is not a directory", dir.display()),
        });
    }
    // No URI parsing: a path is a path.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut c = Connection::open_with_flags(path, flags).map_err(err)?;
    c.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    // SQLite opens a file it may not write read-only, silently.
    if c.is_readonly(rusqlite::MAIN_DB).map_err(err)? {
        return Err(OpenError::Unusable {
            path: path.to_path_buf(),
            reason: "the file is read-only".into(),
        });
    }
    // The first statement reads the header: a file that is not a database
    // fails here. WAL lets readers go on while the writer commits.
    let mode: String = c
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::Unusable {
            path: path.to_path_buf(),
            reason: format!("WAL mode unavailable (journal mode {mode})"),
        });
    }
    // Commit means on disk: every write is durable unless the writer says
    // otherwise for a batch (see `threads`).
    c.pragma_update(None, "synchronous", "FULL").map_err(err)?;
    c.pragma_update(None, "foreign_keys", true).map_err(err)?;
    if migrate {
        check(&c).map_err(|reason| OpenError::Corrupt {
            path: path.to_path_buf(),
            reason,
        })?;
        migrate_to_latest(&mut c, path)?;
    }
    Ok(c)
}

/// SQLite's own consistency check of the file's structure (pages, indexes'
/// order), without the slower cross-check of every index entry.
fn check(c: &Connection) -> Result<(), String> {
    let verdict: String = c
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if verdict == "ok" {
        Ok(())
    } else {
        Err(verdict)
    }
}

/// Runs the migrations `c`'s database lacks, in one transaction taken
/// before reading the version, so two processes opening a new file at once
/// do not both migrate it.
fn migrate_to_latest(c: &mut Connection, path: &Path) -> Result<(), OpenError> {
    let err = |e| OpenError::sqlite(path, e);
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let version: u32 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err)?;
    let app: i64 = tx
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(err)?;
    let tables: i64 = tx
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(err)?;
    let foreign = if version == 0 {
        tables > 0
    } else {
        app != APPLICATION_ID
    };
    if foreign {
        return Err(OpenError::Foreign {
            path: path.to_path_buf(),
        });
    }
    if version > SCHEMA_VERSION {
        return Err(OpenError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    for step in &MIGRATIONS[version as usize..] {
        tx.execute_batch(step.sql).map_err(err)?;
        if let Some(then) = step.then {
            then(&tx).map_err(err)?;
        }
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(err)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(err)?;
    tx.commit().map_err(err)?;
    tracing::info!(path = %path.display(), from = version, to = SCHEMA_VERSION, "database schema migrated");
    Ok(())
}

#[cfg(test)]
mod tests {
    use bavard_core::store::{HistoryStore, Range, conformance};
    use rusqlite::params;

    use super::*;
    use crate::codec;

    /// A file of schema 1 (a row per event) is read back alike, in order,
    /// once converted to rows of runs.
    #[tokio::test]
    async fn schema_1_history_is_converted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bavard.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0].sql).unwrap();
            c.pragma_update(None, "application_id", APPLICATION_ID)
                .unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
            c.execute("INSERT INTO targets (name, events) VALUES ('#a', 600)", [])
                .unwrap();
            for i in 1..=600u64 {
                let e = conformance::message("#a", i, 1_000 + i / 2);
                c.execute(
                    "INSERT INTO history (target, msgid, time, event) VALUES (1, ?1, ?2, ?3)",
                    params![i as i64, e.time as i64, codec::encode(&e.event).unwrap()],
                )
                .unwrap();
            }
        }
        let s = crate::SqliteStore::open(&path).unwrap();
        let all = s
            .read(
                "#a",
                Range::Latest {
                    after: None,
                    limit: 1_000,
                },
            )
            .get()
            .await
            .unwrap();
        let ids: Vec<u64> = all.iter().map(|e| e.msgid.serial()).collect();
        assert_eq!(ids, (1..=600).collect::<Vec<_>>());
        assert_eq!(all[0], conformance::message("#a", 1, 1_000));
        drop(s);
        let c = Connection::open(&path).unwrap();
        let version: u32 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let rows: i64 = c
            .query_row("SELECT count(*) FROM history", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3, "runs of 256 events");
    }
}
