//! The store's two threads, so that no SQLite call ever runs on a tokio
//! worker: one writer, which takes whatever writes are queued and commits
//! them in one transaction, and one reader on a connection of its own (WAL
//! lets it read while the writer commits). Answers go back through oneshot
//! channels, which async callers await as [`Reply::Later`].
//!
//! History writes wait up to [`FLUSH_INTERVAL`] to be committed together: a
//! busy channel's messages of that span become one row (`history`), and the
//! cost of a commit is shared by thousands of messages rather than paid by
//! each. An account change, a read and the store's end commit at once.
//!
//! Reads see every write queued before them: writes are numbered as they
//! are queued, the writer publishes how many it has finished, and a read
//! waits for its number before it runs. A client that sends a message and
//! asks for history at once finds it there.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bavard_core::MsgId;
use bavard_core::store::{Reply, StoreError, Stored};
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::history;

/// Writes waiting for the writer, at most: past it, history appends are
/// dropped (and said so) rather than held in memory without bound.
const WRITE_QUEUE: usize = 262_144;
/// Reads waiting for the reader, at most.
const READ_QUEUE: usize = 4_096;
/// How long a history write may wait for others to share its commit: the
/// most a `kill -9` can lose of what the server has sent (plus the commit
/// itself, a few milliseconds).
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

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

/// Writes queued and not yet taken by the writer.
#[derive(Default)]
struct Pending {
    writes: Vec<Write>,
    /// Writes queued since the start (taken or not).
    queued: u64,
    /// Commit what is queued now, without waiting for the interval.
    flush: bool,
    /// No more writes: the writer finishes what is queued and ends.
    closed: bool,
}

/// The writer's queue, and what wakes the writer.
#[derive(Default)]
struct Queue {
    pending: Mutex<Pending>,
    wake: Condvar,
}

/// The threads and their queues. Dropping it lets the writer finish what
/// is queued, and waits for both threads.
pub(crate) struct Threads {
    writes: Arc<Queue>,
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
        let queue = Arc::new(Queue::default());
        let (rtx, rrx) = sync_channel(READ_QUEUE);
        let finished = Finished(done.clone());
        let q = queue.clone();
        let w = std::thread::Builder::new()
            .name("bavard-db-writer".into())
            .spawn(move || write_loop(writer, &q, finished))?;
        let r = std::thread::Builder::new()
            .name("bavard-db-reader".into())
            .spawn(move || read_loop(reader, rrx, done))?;
        Ok(Threads {
            writes: queue,
            reads: Some(rtx),
            handles: vec![w, r],
        })
    }

    /// Queues `w`; an error when the queue is full or closed.
    pub(crate) fn write(&self, w: Write) -> Result<(), StoreError> {
        // Numbered and queued under one lock: numbers follow queue order.
        let mut q = lock(&self.writes.pending);
        if q.closed {
            return Err(closed());
        }
        if q.writes.len() >= WRITE_QUEUE {
            return Err(StoreError::Unavailable(
                "the database is behind: too many writes waiting".into(),
            ));
        }
        // History waits for company; anything else is committed at once.
        let urgent = !matches!(w, Write::Append { .. });
        q.writes.push(w);
        q.queued += 1;
        if urgent && !q.flush {
            q.flush = true;
            self.writes.wake.notify_one();
        }
        Ok(())
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
        let Some(reads) = &self.reads else {
            return Reply::Now(Err(closed()));
        };
        let (reply, answer) = oneshot::channel();
        let after = {
            // What the read waits for is committed now, not at the interval.
            let mut q = lock(&self.writes.pending);
            if !q.writes.is_empty() && !q.flush {
                q.flush = true;
                self.writes.wake.notify_one();
            }
            q.queued
        };
        let read = Read {
            after,
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
        lock(&self.writes.pending).closed = true;
        self.writes.wake.notify_one();
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
    /// What the writer knows of the conversations it writes to.
    history: history::Cache,
}

fn write_loop(c: Connection, queue: &Queue, finished: Finished) {
    let mut w = Writer {
        c,
        full_sync: true,
        failing: false,
        history: history::Cache::default(),
    };
    let mut last = Instant::now();
    // The queue's two buffers: one filling, one being written, so neither
    // grows again from nothing at every batch.
    let mut spare = Vec::new();
    loop {
        let mut batch = {
            let mut q = lock(&queue.pending);
            loop {
                let due = last + FLUSH_INTERVAL;
                let now = Instant::now();
                if !q.writes.is_empty() && (q.flush || q.closed || now >= due) {
                    break;
                }
                if q.closed {
                    return;
                }
                // Nothing queued: sleep until something urgent arrives or
                // the interval of what does arrive runs out.
                let wait = if q.writes.is_empty() {
                    FLUSH_INTERVAL
                } else {
                    due - now
                };
                q = queue
                    .wake
                    .wait_timeout(q, wait)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            q.flush = false;
            std::mem::swap(&mut q.writes, &mut spare);
            spare
        };
        last = Instant::now();
        let n = batch.len() as u64;
        w.commit(batch.drain(..));
        spare = batch;
        finished.0.advance(n);
    }
}

impl Writer {
    /// Commits `batch`, then answers its account changes.
    fn commit(&mut self, batch: std::vec::Drain<'_, Write>) {
        // History alone commits without waiting for the disk: in WAL mode it
        // still survives the process being killed, and loses at most the
        // last moments to a power cut. Accounts wait for the disk.
        let full_sync = batch
            .as_slice()
            .iter()
            .any(|w| matches!(w, Write::Account { .. }));
        if full_sync != self.full_sync {
            let mode = if full_sync { "FULL" } else { "NORMAL" };
            match self.c.pragma_update(None, "synchronous", mode) {
                Ok(()) => self.full_sync = full_sync,
                Err(e) => tracing::warn!(error = %e, "cannot set synchronous={mode}"),
            }
        }
        let mut answers = Vec::new();
        let committed = run(&mut self.c, &mut self.history, batch, &mut answers);
        if committed.is_err() {
            // The rolled-back batch may have changed what it remembers.
            self.history = history::Cache::default();
        }
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
fn run(
    c: &mut Connection,
    cache: &mut history::Cache,
    batch: std::vec::Drain<'_, Write>,
    answers: &mut Vec<Answer>,
) -> rusqlite::Result<()> {
    let mut writes = batch;
    let r = apply(c, cache, &mut writes, answers);
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
    cache: &mut history::Cache,
    writes: &mut impl Iterator<Item = Write>,
    answers: &mut Vec<Answer>,
) -> rusqlite::Result<()> {
    let mut tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Appends in a row are written together: one row per conversation.
    let mut appends = history::Appends::default();
    for w in writes {
        if !matches!(w, Write::Append { .. }) {
            appends.write(&tx, cache)?;
        }
        match w {
            Write::Append { events, keep } => appends.add(events, keep),
            Write::Remove { target, msgid } => history::remove(&tx, cache, &target, msgid)?,
            Write::Forget { target } => history::forget(&tx, cache, &target)?,
            Write::Prune { before } => history::prune(&tx, cache, before)?,
            Write::Rename { from, to } => history::rename(&tx, cache, &from, &to)?,
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
    appends.write(&tx, cache)?;
    tx.commit()
}
