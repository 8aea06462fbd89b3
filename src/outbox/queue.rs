//! The bounded queue of one connection: what the hub appends, what the
//! writer takes, and how the writer is woken.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use append_only_bytes::BytesSlice;
use futures_util::task::AtomicWaker;
use thin_vec::ThinVec;

use super::{Drains, Pending, Shared};

/// Part of a queue: a reference into the arena or bytes of this queue's own.
pub(super) enum Piece {
    Shared(BytesSlice),
    Owned(Vec<u8>),
}

impl Piece {
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Piece::Shared(s) => s,
            Piece::Owned(v) => v,
        }
    }
}

/// Why a queue stopped accepting data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// The connection is closing normally; queued data is still flushed.
    Closing,
    /// The send queue bound was hit; the client is dropped.
    Overflow,
    /// The server is going down: queued data is flushed for a short while.
    Shutdown,
}

/// Result of [`Outbox::append`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Queued behind data the writer has not taken yet: it will see it.
    Queued,
    /// Queued into an empty queue: the writer must be woken.
    NeedsWake,
    /// Queued, and the queue is past its soft mark (an eighth of its bound):
    /// its reader is behind, and whoever sent the line should wait for it
    /// to drain (unless the reader has stopped reading altogether).
    Behind,
    /// Refused: the queue is closed, or just overflowed.
    Refused,
}

/// The queue proper, under the outbox's lock. Every field is sized so that
/// the whole [`Peer`](crate::delivery::Peer) that holds it fits jemalloc's
/// 128-byte class behind its `Arc`: an idle connection holds one.
#[derive(Default)]
pub(super) struct Inner {
    /// Older pieces; a thin (one-word) list, since an idle queue has none.
    pub(super) pieces: ThinVec<Piece>,
    /// The newest reference, after `pieces`: kept here, beside the lock,
    /// because nearly every fan-out delivery just extends it.
    last: Option<BytesSlice>,
    /// Bytes queued and not taken: what the bound (32 bits) applies to.
    queued: u32,
    /// Memory the queued pieces keep alive (owned bytes, and referenced
    /// segments from each reference's start on), in the same units.
    pub(super) pinned: u32,
}

impl Inner {
    /// Moves the newest reference behind the older pieces.
    fn settle_last(&mut self) {
        if let Some(s) = self.last.take() {
            self.pieces.push(Piece::Shared(s));
        }
    }

    fn push_owned(&mut self, data: &[u8]) {
        self.settle_last();
        if let Some(Piece::Owned(v)) = self.pieces.last_mut() {
            v.extend_from_slice(data);
        } else {
            self.pieces.push(Piece::Owned(data.to_vec()));
        }
        self.pinned = self.pinned.saturating_add(len32(data.len()));
    }
}

/// The outgoing queue of one connection.
pub struct Outbox {
    inner: Mutex<Inner>,
    /// The writer's wake-up: [`WOKEN`] and [`RANG`] bits, cleared by
    /// [`Outbox::poll_ready`], and the one task to wake. Lighter than a
    /// `Notify` (no waiter list, no lock), and the writer needs no future of
    /// its own to wait on it, which keeps every connection's state smaller.
    signal: AtomicU8,
    waker: AtomicWaker,
    /// When the writer's task wants waking whatever happens (its next
    /// timeout), as an [`AlarmTime`]; `u64::MAX` for never. Read by the
    /// server's alarm sweep, so a connection needs no timer of its own.
    alarm: AtomicU64,
    /// The bound in bytes. 32 bits (a 4 GiB queue is bound enough): with
    /// `signal` and `closed` it fills one word, which keeps every
    /// connection's `Peer` in a smaller allocation.
    limit: u32,
    /// Where the queue tells that it drained (none in unit tests).
    drains: Option<Arc<Drains>>,
    /// Why the queue stopped accepting data ([`Closed`] as a byte, 0 while
    /// open). Changed only under the lock; outside [`Inner`] because a byte
    /// there would cost its struct a whole word of padding.
    closed: AtomicU8,
}

impl Drop for Outbox {
    fn drop(&mut self) {
        // Whoever waited on this queue need not any more.
        if let Some(d) = &self.drains {
            d.drained();
        }
    }
}

/// [`Closed`] as the byte [`Outbox`] keeps it in (0 is open).
fn closed_code(c: Closed) -> u8 {
    match c {
        Closed::Closing => 1,
        Closed::Overflow => 2,
        Closed::Shutdown => 3,
    }
}

fn closed_from(code: u8) -> Option<Closed> {
    match code {
        1 => Some(Closed::Closing),
        2 => Some(Closed::Overflow),
        3 => Some(Closed::Shutdown),
        _ => None,
    }
}

/// A byte count in the queue's 32-bit units (a count past them is past any
/// bound anyway).
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Something was queued, or the queue closed.
const WOKEN: u8 = 1;
/// The alarm rang: a deadline may have passed.
const RANG: u8 = 2;

/// What woke the writer, from [`Outbox::poll_ready`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Signal {
    /// Something was queued, or the queue closed.
    pub queued: bool,
    /// The alarm rang: time to check the deadlines.
    pub alarm: bool,
}

/// A time as alarms compare them: milliseconds since the process's first
/// alarm, plus one (so that a time rounds to the millisecond at or after it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AlarmTime(u64);

/// The origin of [`AlarmTime`]s: the process's first use of one.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl AlarmTime {
    pub fn of(t: Instant) -> AlarmTime {
        let ms = t.saturating_duration_since(epoch()).as_millis();
        AlarmTime(u64::try_from(ms).unwrap_or(u64::MAX - 1) + 1)
    }

    /// The time in 32 bits, wrapping every 49 days: enough to compare
    /// instants less than that apart ([`AlarmTime::instant_of`]).
    pub fn short(self) -> u32 {
        self.0 as u32
    }

    /// The instant a [`AlarmTime::short`] time stands for, taking the one
    /// closest before `now`.
    pub fn instant_of(short: u32, now: Instant) -> Instant {
        let ago = AlarmTime::of(now).short().wrapping_sub(short);
        now - std::time::Duration::from_millis(u64::from(ago))
    }
}

/// What the writer gets from [`Outbox::take`].
pub struct Batch {
    /// Bytes to write.
    pub data: Pending,
    /// How many: a large batch tells the writer it is under load.
    pub bytes: usize,
    /// Set once the queue is closed: write `data`, then shut the connection.
    pub closed: Option<Closed>,
}

impl Outbox {
    /// A queue holding at most `limit` bytes not yet taken by the writer.
    pub fn new(limit: usize) -> Outbox {
        Outbox::with(limit, None)
    }

    /// Like [`Outbox::new`], telling `drains` when it drops back under its
    /// soft mark (see [`Appended::Behind`]).
    pub fn watched(limit: usize, drains: Arc<Drains>) -> Outbox {
        Outbox::with(limit, Some(drains))
    }

    fn with(limit: usize, drains: Option<Arc<Drains>>) -> Outbox {
        Outbox {
            inner: Mutex::new(Inner::default()),
            signal: AtomicU8::new(0),
            waker: AtomicWaker::new(),
            alarm: AtomicU64::new(u64::MAX),
            limit: len32(limit),
            closed: AtomicU8::new(0),
            drains,
        }
    }

    /// Where the queue passes its soft mark (an eighth of its bound).
    fn soft_mark(&self) -> u32 {
        self.limit / 8
    }

    /// Tells the drains when the queue drops from past its soft mark to
    /// under it (`before` to `after` bytes).
    fn recount(&self, before: u32, after: u32) {
        let soft = self.soft_mark();
        if before > soft
            && after <= soft
            && let Some(d) = &self.drains
        {
            d.drained();
        }
    }

    /// Where the queue tells that it drained.
    pub fn drains(&self) -> Option<&Drains> {
        self.drains.as_deref()
    }

    /// Whether the queue is past its soft mark: its reader is behind.
    pub fn behind(&self) -> bool {
        self.lock().queued > self.soft_mark()
    }

    /// Marks the queue closed; only under the lock (`_held`), so that a
    /// holder of the lock sees the state stay as it read it.
    fn set_closed(&self, _held: &Inner, c: Closed) {
        self.closed.store(closed_code(c), Ordering::Relaxed);
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a holder panicked between plain moves;
        // the data is consistent, so keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `len` bytes with `put` unless the queue is closed or would go
    /// over its bound.
    fn append_with(&self, len: usize, put: impl FnOnce(&mut Inner, u32)) -> Appended {
        let mut inner = self.lock();
        if self.closed().is_some() {
            return Appended::Refused;
        }
        if inner.queued as usize + len > self.limit as usize {
            let dropped = std::mem::take(&mut *inner);
            self.recount(dropped.queued, 0);
            self.set_closed(&inner, Closed::Overflow);
            drop(inner);
            // Released outside the lock: freeing may be slow.
            drop(dropped);
            self.wake();
            return Appended::Refused;
        }
        let before = inner.queued;
        put(&mut inner, self.limit);
        // Within the bound, so within 32 bits.
        inner.queued += len as u32;
        if before == 0 {
            Appended::NeedsWake
        } else if inner.queued > self.soft_mark() {
            Appended::Behind
        } else {
            Appended::Queued
        }
    }

    /// Copies `data` into the queue without waking the writer; the caller
    /// wakes it ([`Outbox::wake`]) on [`Appended::NeedsWake`], possibly later.
    pub fn append(&self, data: &[u8]) -> Appended {
        self.append_with(data.len(), |inner, _| inner.push_owned(data))
    }

    /// Queues a line from the [`Arena`](super::Arena), by reference when
    /// possible; like [`Outbox::append`] otherwise.
    pub fn append_shared(&self, line: &Shared) -> Appended {
        self.append_with(line.slice.len(), |inner, limit| {
            if let Some(last) = &mut inner.last
                && last.try_merge(&line.slice).is_ok()
            {
                // Within the segment this reference already pins.
                return;
            }
            if inner.pinned.saturating_add(len32(line.pin)) <= limit {
                inner.settle_last();
                inner.last = Some(line.slice.clone());
                inner.pinned += len32(line.pin);
            } else {
                // Scattered references would pin far more than they carry.
                inner.push_owned(&line.slice);
            }
        })
    }

    /// Appends `data` and wakes the writer if needed. Returns false if the
    /// queue is closed or just overflowed (the caller then drops the client).
    pub fn push(&self, data: &[u8]) -> bool {
        match self.append(data) {
            Appended::NeedsWake => {
                self.wake();
                true
            }
            Appended::Queued | Appended::Behind => true,
            Appended::Refused => false,
        }
    }

    /// Wakes the writer.
    pub fn wake(&self) {
        self.raise(WOKEN);
    }

    /// Sets `bit` in the signal and wakes the writer's task.
    fn raise(&self, bit: u8) {
        self.signal.fetch_or(bit, Ordering::Release);
        self.waker.wake();
    }

    /// Appends `data` even past the bound: for the last words before a close
    /// (an ERROR line), which must not be lost to the limit.
    pub fn push_final(&self, data: &[u8]) {
        let mut inner = self.lock();
        if self.closed().is_none() {
            inner.push_owned(data);
            let before = inner.queued;
            inner.queued = before.saturating_add(len32(data.len()));
            self.recount(before, inner.queued);
        }
    }

    /// Stops accepting data; what is queued is still written, then the
    /// connection closes.
    pub fn close(&self) {
        let inner = self.lock();
        if self.closed().is_none() {
            self.set_closed(&inner, Closed::Closing);
        }
        drop(inner);
        self.wake();
        // Nobody waits for a closing queue to drain.
        if let Some(d) = &self.drains {
            d.drained();
        }
    }

    /// Like [`Outbox::close`], for a server shutdown: the writer gets only a
    /// short time to flush, even if the queue was already closing.
    pub fn shut_down(&self) {
        let inner = self.lock();
        if matches!(self.closed(), None | Some(Closed::Closing)) {
            self.set_closed(&inner, Closed::Shutdown);
        }
        drop(inner);
        self.wake();
    }

    /// The state of the queue, without taking anything.
    pub fn closed(&self) -> Option<Closed> {
        closed_from(self.closed.load(Ordering::Relaxed))
    }

    /// Takes everything queued, leaving `spare`'s (emptied) storage in its
    /// place: a busy connection swaps two piece lists back and forth instead
    /// of allocating one per write; an idle one passes an empty one and holds
    /// no allocation at all.
    pub fn take(&self, spare: Pending) -> Batch {
        let mut pieces = spare.pieces;
        pieces.clear();
        let mut inner = self.lock();
        let bytes = std::mem::take(&mut inner.queued);
        self.recount(bytes, 0);
        let bytes = bytes as usize;
        inner.pinned = 0;
        Batch {
            bytes,
            data: Pending {
                pieces: std::mem::replace(&mut inner.pieces, pieces),
                // Handed over as it is: a lone reference (one delivery at a
                // quiet time) then reaches the writer with no list allocated.
                last: inner.last.take(),
                head: 0,
                offset: 0,
            },
            closed: self.closed(),
        }
    }

    /// Asks for a wake-up at `at` (replacing any earlier request), or none.
    pub fn set_alarm(&self, at: Option<Instant>) {
        let t = at.map_or(u64::MAX, |t| AlarmTime::of(t).0);
        self.alarm.store(t, Ordering::Relaxed);
    }

    /// Wakes the writer, with [`Signal::alarm`], if its alarm is due at
    /// `now` (it may ring up to a millisecond early: the woken task checks
    /// its own deadlines).
    pub fn ring_if_due(&self, now: AlarmTime) {
        if self.alarm.load(Ordering::Relaxed) <= now.0 {
            self.raise(RANG);
        }
    }

    /// Ready once the writer was woken ([`Outbox::wake`]: something was
    /// pushed, or the queue closed; or its alarm rang) since the last time
    /// it was ready, saying why. Only one task, the connection's, may wait
    /// on it.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Signal> {
        let signal = |bits: u8| Signal {
            queued: bits & WOKEN != 0,
            alarm: bits & RANG != 0,
        };
        let bits = self.signal.swap(0, Ordering::Acquire);
        if bits != 0 {
            return Poll::Ready(signal(bits));
        }
        self.waker.register(cx.waker());
        // A wake between the check and the registration found no waker.
        match self.signal.swap(0, Ordering::Acquire) {
            0 => Poll::Pending,
            bits => Poll::Ready(signal(bits)),
        }
    }
}
