//! The store's two threads, so that no SQLite call ever runs on a tokio
//! worker: one writer, which takes whatever writes are queued and commits
//! them in one transaction, and one reader on a connection of its own (WAL
//! lets it read while the writer commits). Answers go back through oneshot
//! channels, which async callers await as [`Reply::Later`].
//!
//! Reads see every write queued before them: writes are numbered as they
//! are queued, the writer publishes how many it has finished, and a read
//! waits for its number before it runs. A client that sends a message and
//! asks for history at once finds it there.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use bavard_core::MsgId;
use bavard_core::store::{Reply, StoreError, Stored};
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::history;

/// Writes waiting for the writer, at most: past it, history appends are
/// dropped (and said so) rather than held in memory without bound.
const WRITE_QUEUE: usize = 65_536;
/// Reads waiting for the reader, at most.
const READ_QUEUE: usize = 4_096;
/// Writes committed in one transaction, at most.
const BATCH: usize = 4_096;

/// Work for a connection, answered with a `T`.
pub(crate) type Job<T> = Box<dyn FnOnce(&Connection) -> Result<T, StoreError> + Send>;

/// A write, in the order it was queued.
pub(crate) enum Write {
    Append {
        events: Vec<Stored>,
        keep: usize,
    },
    Remove {
        target: String,
        msgid: MsgId,
    },
    Prune {
        before: bavard_core::notify::Millis,
    },
    Rename {
        from: String,
        to: String,
    },
    Forget {
        target: String,
    },
    /// An account change: its batch is committed with `synchronous=FULL`
    /// (on disk, not only in the OS's cache) before it is answered.
    Account {
        job: Job<()>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// A read, and the number of writes that must be finished before it runs.
struct Read {
    after: u64,
    job: Box<dyn FnOnce(&Connection) + Send>,
}

/// Writes queued so far, and the queue.
struct Writes {
    queued: u64,
    tx: SyncSender<Write>,
}

/// The threads and their queues. Dropping it lets the writer finish what
/// is queued, and waits for both threads.
pub(crate) struct Threads {
    writes: Option<Mutex<Writes>>,
    reads: Option<SyncSender<Read>>,
    handles: Vec<JoinHandle<()>>,
}

/// How many writes the writer has finished (committed or failed).
#[derive(Default)]
struct Progress {
    done: Mutex<u64>,
    changed: Condvar,
}

impl Progress {
    fn advance(&self, n: u64) {
        let mut d = lock(&self.done);
        *d = d.saturating_add(n);
        self.changed.notify_all();
    }

    fn wait_for(&self, n: u64) {
        let mut d = lock(&self.done);
        while *d < n {
            d = self.changed.wait(d).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Once the writer is gone, however it ended, reads wait for nothing.
struct Finished(Arc<Progress>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.advance(u64::MAX);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn closed() -> StoreError {
    StoreError::Unavailable("the database is closed".into())
}

impl Threads {
    /// Starts the writer on `writer` and the reader on `reader`.
    pub(crate) fn start(writer: Connection, reader: Connection) -> std::io::Result<Threads> {
        let done = Arc::new(Progress::default());
        let (wtx, wrx) = sync_channel(WRITE_QUEUE);
        let (rtx, rrx) = sync_channel(READ_QUEUE);
        let finished = Finished(done.clone());
        let w = std::thread::Builder::new()
            .name("bavard-db-writer".into())
            .spawn(move || write_loop(writer, wrx, finished))?;
        let r = std::thread::Builder::new()
            .name("bavard-db-reader".into())
            .spawn(move || read_loop(reader, rrx, done))?;
        Ok(Threads {
            writes: Some(Mutex::new(Writes { queued: 0, tx: wtx })),
            reads: Some(rtx),
            handles: vec![w, r],
        })
    }

    /// Queues `w`; an error when the queue is full or closed.
    pub(crate) fn write(&self, w: Write) -> Result<(), StoreError> {
        let Some(writes) = &self.writes else {
            return Err(closed());
        };
        // Numbered and queued under one lock: numbers follow queue order.
        let mut q = lock(writes);
        match q.tx.try_send(w) {
            Ok(()) => {
                q.queued += 1;
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(StoreError::Unavailable(
                "the database is behind: too many writes waiting".into(),
            )),
            Err(TrySendError::Disconnected(_)) => Err(closed()),
        }
    }

    /// An account change, answered once committed to disk.
    pub(crate) fn account(&self, job: Job<()>) -> Reply<Result<(), StoreError>> {
        let (reply, answer) = oneshot::channel();
        if let Err(e) = self.write(Write::Account { job, reply }) {
            return Reply::Now(Err(e));
        }
        later(answer)
    }

    /// Runs `job` on the reader once every write queued so far is finished.
    pub(crate) fn read<T: Send + 'static>(&self, job: Job<T>) -> Reply<Result<T, StoreError>> {
        let (Some(reads), Some(writes)) = (&self.reads, &self.writes) else {
            return Reply::Now(Err(closed()));
        };
        let (reply, answer) = oneshot::channel();
        let read = Read {
            after: lock(writes).queued,
            job: Box::new(move |c| {
                let _ = reply.send(job(c));
            }),
        };
        match reads.try_send(read) {
            Ok(()) => later(answer),
            Err(TrySendError::Full(_)) => Reply::Now(Err(StoreError::Unavailable(
                "the database is behind: too many reads waiting".into(),
            ))),
            Err(TrySendError::Disconnected(_)) => Reply::Now(Err(closed())),
        }
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        // Closing a queue ends its thread once it has emptied it. The reader
        // goes first (its waits end as the writer goes on), so the writer's
        // connection closes last: SQLite checkpoints the WAL into the main
        // file only when the last connection closes, and the reader's
        // (`query_only`) does not.
        self.reads = None;
        let mut handles = self.handles.drain(..).collect::<Vec<_>>();
        let reader = handles.pop();
        let joined = |h: std::thread::JoinHandle<()>| {
            if h.join().is_err() {
                tracing::error!("a database thread panicked");
            }
        };
        reader.into_iter().for_each(joined);
        self.writes = None;
        handles.into_iter().for_each(joined);
    }
}

fn later<T: Send + 'static>(
    answer: oneshot::Receiver<Result<T, StoreError>>,
) -> Reply<Result<T, StoreError>> {
    Reply::Later(Box::pin(async move {
        answer.await.unwrap_or_else(|_| Err(closed()))
    }))
}

fn read_loop(c: Connection, rx: Receiver<Read>, done: Arc<Progress>) {
    while let Ok(Read { after, job }) = rx.recv() {
        done.wait_for(after);
        // One snapshot per read, however many statements it takes (an
        // account and its certificates, while the CLI writes).
        match c.unchecked_transaction() {
            Ok(tx) => job(&tx),
            Err(e) => {
                tracing::warn!(error = %e, "database read failed");
                job(&c);
            }
        }
    }
}

/// What the writer remembers between batches.
struct Writer {
    c: Connection,
    /// Whether the connection runs `synchronous=FULL`.
    full_sync: bool,
    /// Whether the last batch failed, so a full disk is logged once, not
    /// at every batch.
    failing: bool,
}

fn write_loop(c: Connection, rx: Receiver<Write>, finished: Finished) {
    let mut w = Writer {
        c,
        full_sync: true,
        failing: false,
    };
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        w.commit(batch);
        finished.0.advance(n);
    }
}

impl Writer {
    /// Commits `batch`, then answers its account changes.
    fn commit(&mut self, batch: Vec<Write>) {
        // History alone commits without waiting for the disk: in WAL mode it
        // still survives the process being killed, and loses at most the
        // last moments to a power cut. Accounts wait for the disk.
        let full_sync = batch.iter().any(|w| matches!(w, Write::Account { .. }));
        if full_sync != self.full_sync {
            let mode = if full_sync { "FULL" } else { "NORMAL" };
            match self.c.pragma_update(None, "synchronous", mode) {
                Ok(()) => self.full_sync = full_sync,
                Err(e) => tracing::warn!(error = %e, "cannot set synchronous={mode}"),
            }
        }
        let mut answers = Vec::new();
        let committed = run(&mut self.c, batch, &mut answers);
        match &committed {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!("database writes succeed again");
            }
            Ok(()) => {}
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::error!(error = %e, "database writes failing: history is not kept, account changes are refused");
            }
            Err(_) => {}
        }
        for (reply, r) in answers {
            let r = match &committed {
                Ok(()) => r,
                Err(e) => Err(StoreError::Unavailable(e.to_string())),
            };
            let _ = reply.send(r);
        }
    }
}

type Answer = (
    oneshot::Sender<Result<(), StoreError>>,
    Result<(), StoreError>,
);

/// Runs `batch` in one transaction. An account change runs in a savepoint
/// of its own, so a refused one (a name taken) leaves the rest; any SQL
/// failure rolls the whole batch back, and every account change in it is
/// answered with that failure.
fn run(c: &mut Connection, batch: Vec<Write>, answers: &mut Vec<Answer>) -> rusqlite::Result<()> {
    let mut writes = batch.into_iter();
    let r = apply(c, &mut writes, answers);
    if r.is_err() {
        // Answered with the failure by the caller, whatever is said here.
        for w in writes {
            if let Write::Account { reply, .. } = w {
                answers.push((reply, Ok(())));
            }
        }
    }
    r
}

fn apply(
    c: &mut Connection,
    writes: &mut impl Iterator<Item = Write>,
    answers: &mut Vec<Answer>,
) -> rusqlite::Result<()> {
    let mut tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for w in writes {
        match w {
            Write::Append { events, keep } => history::append(&tx, &events, keep)?,
            Write::Remove { target, msgid } => history::remove(&tx, &target, msgid)?,
            Write::Forget { target } => history::forget(&tx, &target)?,
            Write::Prune { before } => history::prune(&tx, before)?,
            Write::Rename { from, to } => history::rename(&tx, &from, &to)?,
            Write::Account { job, reply } => {
                let sp = tx.savepoint()?;
                let r = job(&sp);
                if r.is_ok() {
                    sp.commit()?;
                }
                // Dropping the savepoint otherwise rolls it back.
                answers.push((reply, r));
            }
        }
    }
    tx.commit()
}
