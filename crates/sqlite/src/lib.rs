//! bavard's accounts and history in one embedded SQLite file
//! (docs/storage.md): [`SqliteStore`] implements the core's
//! [`AccountStore`], [`HistoryStore`] and [`MarkerStore`] seams.
//!
//! # Layout
//! - [`schema`]: opening a file: settings (WAL), checks, migrations, and
//!   [`OpenError`].
//! - `threads`: the writer thread (batched transactions) and the reader
//!   thread; nothing here blocks the caller.
//! - `accounts`, `history`, `markers`: the SQL of each seam.
//! - `codec`: the events history keeps, as bytes.
//!
//! Account changes are answered once committed to disk; history writes are
//! queued and answered at once, and any read sees every write queued before
//! it.

mod accounts;
mod codec;
mod history;
mod markers;
pub mod schema;
mod threads;

use std::path::{Path, PathBuf};

use bavard_core::MsgId;
use bavard_core::notify::Millis;
use bavard_core::store::{
    Account, AccountStore, HistoryStore, Kinds, Marker, MarkerStore, Range, Reply, StoreError,
    Stored,
};

pub use schema::{OpenError, SCHEMA_VERSION};
use threads::{Threads, Write};

/// The writer connection's page cache, in KiB (as `PRAGMA cache_size`
/// takes it: negative). Filled only as far as writes need it.
const WRITER_CACHE_KIB: i64 = -32_768;

/// The accounts and the history, in the SQLite file at [`Self::path`].
/// Cheap to share behind an `Arc`; dropping the last one finishes the
/// queued writes and closes the file.
pub struct SqliteStore {
    path: PathBuf,
    threads: Threads,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating it if missing, checking it and
    /// bringing its schema up to date; starts its threads. Several
    /// processes may open one file (the server and `bavard account`).
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, OpenError> {
        Self::open_with(path, 0)
    }

    /// Opens the database at `path` as [`Self::open`] does, and lets it hold
    /// at most `max_bytes` (0: no limit; a file already larger stays as it
    /// is and cannot grow). Past it, writes fail as on a full disk.
    pub fn open_with(path: impl AsRef<Path>, max_bytes: u64) -> Result<SqliteStore, OpenError> {
        let path = path.as_ref();
        let writer = schema::connect(path, true)?;
        let reader = schema::connect(path, false)?;
        let unusable = |reason: String| OpenError::Unusable {
            path: path.to_path_buf(),
            reason,
        };
        reader
            .pragma_update(None, "query_only", true)
            .map_err(|e| unusable(e.to_string()))?;
        // A commit of a busy second's history touches thousands of pages:
        // with SQLite's default 2 MB cache it would spill them mid-way and
        // read back pages it wrote moments before.
        writer
            .pragma_update(None, "cache_size", WRITER_CACHE_KIB)
            .map_err(|e| unusable(e.to_string()))?;
        if max_bytes > 0 {
            let page: i64 = writer
                .pragma_query_value(None, "page_size", |r| r.get(0))
                .map_err(|e| unusable(e.to_string()))?;
            let max = i64::try_from(max_bytes).unwrap_or(i64::MAX);
            let pages = (max / page.max(1)).max(1);
            writer
                .pragma_update(None, "max_page_count", pages)
                .map_err(|e| unusable(e.to_string()))?;
        }
        let threads = Threads::start(writer, reader)
            .map_err(|e| unusable(format!("cannot start its threads: {e}")))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            threads,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a history write; `Now` either way: nobody waits for these.
    fn queue(&self, w: Write) -> Reply<Result<(), StoreError>> {
        Reply::Now(self.threads.write(w))
    }
}

/// A SQLite failure, as the seams report it.
pub(crate) fn failed(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl AccountStore for SqliteStore {
    fn get(&self, key: &str) -> Reply<Result<Option<Account>, StoreError>> {
        let key = key.to_string();
        self.threads.read(Box::new(move |c| accounts::get(c, &key)))
    }

    fn create(&self, account: Account) -> Reply<Result<(), StoreError>> {
        self.threads
            .account(Box::new(move |c| accounts::create(c, &account)))
    }

    fn update(&self, account: Account) -> Reply<Result<(), StoreError>> {
        self.threads
            .account(Box::new(move |c| accounts::update(c, &account)))
    }

    fn delete(&self, key: &str) -> Reply<Result<(), StoreError>> {
        let key = key.to_string();
        self.threads
            .account(Box::new(move |c| accounts::delete(c, &key)))
    }

    fn list(&self) -> Reply<Result<Vec<Account>, StoreError>> {
        self.threads.read(Box::new(accounts::list))
    }

    fn by_certfp(&self, fp: &str) -> Reply<Result<Option<Account>, StoreError>> {
        let fp = fp.to_string();
        self.threads
            .read(Box::new(move |c| accounts::by_certfp(c, &fp)))
    }
}

impl HistoryStore for SqliteStore {
    fn append(&self, events: Vec<Stored>, keep: usize) -> Reply<Result<(), StoreError>> {
        Reply::Now(self.threads.append(&events, keep))
    }

    fn read_kinds(
        &self,
        target: &str,
        range: Range,
        kinds: Kinds,
    ) -> Reply<Result<Vec<Stored>, StoreError>> {
        let target = target.to_string();
        self.threads
            .read(Box::new(move |c| history::read(c, &target, range, kinds)))
    }

    fn remove(&self, target: &str, msgid: MsgId) -> Reply<Result<(), StoreError>> {
        let target = target.to_string();
        self.queue(Write::Remove { target, msgid })
    }

    fn forget(&self, target: &str) -> Reply<Result<(), StoreError>> {
        let target = target.to_string();
        self.queue(Write::Forget { target })
    }

    fn prune(&self, before: Millis) -> Reply<Result<(), StoreError>> {
        self.queue(Write::Prune { before })
    }

    fn rename(&self, from: &str, to: &str) -> Reply<Result<(), StoreError>> {
        let (from, to) = (from.to_string(), to.to_string());
        self.queue(Write::Rename { from, to })
    }

    fn targets(&self) -> Reply<Result<Vec<String>, StoreError>> {
        self.threads.read(Box::new(history::targets))
    }

    fn latest(
        &self,
        targets: Vec<String>,
        prefix: Option<String>,
        from: Millis,
        to: Millis,
        limit: usize,
    ) -> Reply<Result<Vec<(String, Millis)>, StoreError>> {
        self.threads.read(Box::new(move |c| {
            history::latest(c, &targets, prefix.as_deref(), from, to, limit)
        }))
    }
}

/// Marker writes are small and rare (a client reading), so each goes with
/// the account changes: committed with the writer's next batch, durably.
impl MarkerStore for SqliteStore {
    fn save(&self, marker: Marker, keep: usize) -> Reply<Result<(), StoreError>> {
        self.threads
            .account(Box::new(move |c| markers::save(c, &marker, keep)))
    }

    fn all(&self) -> Reply<Result<Vec<Marker>, StoreError>> {
        self.threads.read(Box::new(markers::all))
    }

    fn rename(&self, from: &str, to: &str) -> Reply<Result<(), StoreError>> {
        let (from, to) = (from.to_string(), to.to_string());
        self.threads
            .account(Box::new(move |c| markers::rename(c, &from, &to)))
    }

    fn forget(&self, account: &str) -> Reply<Result<(), StoreError>> {
        let account = account.to_string();
        self.threads
            .account(Box::new(move |c| markers::forget(c, &account)))
    }
}
