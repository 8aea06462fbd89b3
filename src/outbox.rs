//! A connection's bounded outgoing queue, and the arena fan-out shares lines from.
//!
//! The hub appends already-encoded lines without blocking; the connection's
//! writer takes everything queued at once and writes it with one syscall.
//!
//! A line fanned out to many connections is written once into an [`Arena`]
//! and each recipient's queue refers to it: a recipient whose previous queued
//! line ends where the new one starts (the common case: consecutive lines of
//! a busy channel) just extends its last reference, so a delivery touches
//! one cache line of the recipient's queue, no reference count and no copy.
//! Lines for a single connection (replies) are copied into a buffer of its own.
//!
//! The queue is bounded in bytes: an append that would exceed the bound marks
//! the queue overflowed instead, so a client that stops reading costs the
//! others nothing and is disconnected with `SendQ exceeded`. A reference keeps
//! the rest of its arena segment alive, so references are also bounded by the
//! memory they pin: past the bound, lines are copied instead.
//!
//! Past an eighth of its bound (its soft mark) a queue counts as behind in
//! the server's [`Congestion`]: when many queues are, clients are reading
//! slower than the server produces, and the connections feeding them pause
//! their input until the queues drain, instead of queueing on until every
//! reader is dropped. One slow reader among many never pauses anyone: it
//! meets its bound alone.

use std::io::IoSlice;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use append_only_bytes::{AppendOnlyBytes, BytesSlice};
use futures_util::task::AtomicWaker;
use thin_vec::ThinVec;

/// Arena segment size: large enough that consecutive lines of a busy channel
/// share one, small enough that a queue pinning a few costs little.
const SEGMENT: usize = 32 * 1024;

/// Append-only memory that fan-out writes each encoded line into once.
#[derive(Default)]
pub struct Arena {
    cur: AppendOnlyBytes,
}

/// A line in the [`Arena`], ready to be queued to any number of connections.
pub struct Shared {
    slice: BytesSlice,
    /// Bytes of its segment from its start to the segment's end: what a queue
    /// holding a reference to it may keep alive.
    pin: usize,
}

impl Arena {
    /// Stores `data` and returns a shareable reference to it.
    pub fn put(&mut self, data: &[u8]) -> Shared {
        if self.cur.len() + data.len() > self.cur.capacity() {
            // The full segment lives on as long as queues refer to it.
            self.cur = AppendOnlyBytes::with_capacity(SEGMENT.max(data.len()));
        }
        let start = self.cur.len();
        self.cur.push_slice(data);
        Shared {
            slice: self.cur.slice(start..),
            pin: self.cur.capacity() - start,
        }
    }
}

/// Part of a queue: a reference into the arena or bytes of this queue's own.
enum Piece {
    Shared(BytesSlice),
    Owned(Vec<u8>),
}

impl Piece {
    fn bytes(&self) -> &[u8] {
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
    /// Refused: the queue is closed, or just overflowed.
    Refused,
}

/// The queue proper, under the outbox's lock. Every field is sized so that
/// the whole [`Peer`](crate::hub::event::Peer) that holds it fits jemalloc's
/// 128-byte class behind its `Arc`: an idle connection holds one.
#[derive(Default)]
struct Inner {
    /// Older pieces; a thin (one-word) list, since an idle queue has none.
    pieces: ThinVec<Piece>,
    /// The newest reference, after `pieces`: kept here, beside the lock,
    /// because nearly every fan-out delivery just extends it.
    last: Option<BytesSlice>,
    /// Bytes queued and not taken: what the bound (32 bits) applies to.
    queued: u32,
    /// Memory the queued pieces keep alive (owned bytes, and referenced
    /// segments from each reference's start on), in the same units.
    pinned: u32,
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

/// How many of the server's queues are past their soft mark, out of how
/// many. The server becomes congested when more than a quarter of them are
/// (two at least: one client alone never is), and stays so until at most an
/// eighth are: the queues of the slowest then drain too, instead of being
/// left to overflow as soon as the others have caught up. Connections that
/// feed others pause their input while it is
/// [`congested`](Congestion::congested), registered to be woken when it no
/// longer is.
#[derive(Default)]
pub struct Congestion {
    over: AtomicU32,
    queues: AtomicU32,
    on: AtomicBool,
    /// Counts the times the waiters were woken, so that a task knows whether
    /// it is still registered.
    round: AtomicU32,
    /// Also orders the changes of `on`, made from the counts read under it.
    waiters: Mutex<Vec<Waker>>,
}

impl Congestion {
    /// Connections that feed others should leave their input unread.
    pub fn congested(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Wakes `waker` once the server is no longer congested; returns the
    /// round it is registered for (see [`Congestion::round`]). The caller
    /// checks [`Congestion::congested`] again after registering, or a
    /// change in between would go unseen.
    pub fn wait(&self, waker: &Waker) -> u32 {
        let mut w = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        w.push(waker.clone());
        self.round.load(Ordering::Relaxed)
    }

    /// Changes each time the waiters are woken: a task registered for an
    /// earlier round is no longer registered.
    pub fn round(&self) -> u32 {
        self.round.load(Ordering::Relaxed)
    }

    /// Called after every change of the counts (only queues crossing their
    /// soft mark, and queues coming and going, change them).
    fn settle(&self) {
        let mut w = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        let over = u64::from(self.over.load(Ordering::Relaxed));
        let queues = u64::from(self.queues.load(Ordering::Relaxed));
        if !self.congested() && over >= 2 && over * 4 > queues {
            self.on.store(true, Ordering::Relaxed);
        } else if self.congested() && over * 8 <= queues {
            self.on.store(false, Ordering::Relaxed);
            self.round.fetch_add(1, Ordering::Relaxed);
            std::mem::take(&mut *w).into_iter().for_each(Waker::wake);
        }
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
    /// The server's count this queue takes part in (none in unit tests).
    congestion: Option<Arc<Congestion>>,
    /// Why the queue stopped accepting data ([`Closed`] as a byte, 0 while
    /// open). Changed only under the lock; outside [`Inner`] because a byte
    /// there would cost its struct a whole word of padding.
    closed: AtomicU8,
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if let Some(c) = &self.congestion {
            let queued = self
                .inner
                .get_mut()
                .map_or_else(|e| e.into_inner().queued, |i| i.queued);
            self.recount(queued, 0);
            c.queues.fetch_sub(1, Ordering::Relaxed);
            c.settle();
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

impl AlarmTime {
    pub fn of(t: Instant) -> AlarmTime {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        let epoch = *EPOCH.get_or_init(Instant::now);
        let ms = t.saturating_duration_since(epoch).as_millis();
        AlarmTime(u64::try_from(ms).unwrap_or(u64::MAX - 1) + 1)
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

    /// Like [`Outbox::new`], counted in the server's `congestion`.
    pub fn counted(limit: usize, congestion: Arc<Congestion>) -> Outbox {
        congestion.queues.fetch_add(1, Ordering::Relaxed);
        congestion.settle();
        Outbox::with(limit, Some(congestion))
    }

    fn with(limit: usize, congestion: Option<Arc<Congestion>>) -> Outbox {
        Outbox {
            inner: Mutex::new(Inner::default()),
            signal: AtomicU8::new(0),
            waker: AtomicWaker::new(),
            alarm: AtomicU64::new(u64::MAX),
            limit: len32(limit),
            closed: AtomicU8::new(0),
            congestion,
        }
    }

    /// Where the queue passes its soft mark (an eighth of its bound).
    fn soft_mark(&self) -> u32 {
        self.limit / 8
    }

    /// Keeps the server's count right as the queue goes from `before` to
    /// `after` bytes; under the lock, so that changes count in order.
    fn recount(&self, before: u32, after: u32) {
        if let Some(c) = &self.congestion {
            let soft = self.soft_mark();
            match (before > soft, after > soft) {
                (false, true) => c.over.fetch_add(1, Ordering::Relaxed),
                (true, false) => c.over.fetch_sub(1, Ordering::Relaxed),
                _ => return,
            };
            c.settle();
        }
    }

    /// The server's count this queue takes part in.
    pub fn congestion(&self) -> Option<&Congestion> {
        self.congestion.as_deref()
    }

    /// Marks the queue closed; only under the lock (`_held`), so that a
    /// holder of the lock sees the state stay as it read it.
    fn set_closed(&self, _held: &Inner, c: Closed) {
        self.closed.store(closed_code(c), Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
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
        self.recount(before, inner.queued);
        let was_empty = before == 0;
        if was_empty {
            Appended::NeedsWake
        } else {
            Appended::Queued
        }
    }

    /// Copies `data` into the queue without waking the writer; the caller
    /// wakes it ([`Outbox::wake`]) on [`Appended::NeedsWake`], possibly later.
    pub fn append(&self, data: &[u8]) -> Appended {
        self.append_with(data.len(), |inner, _| inner.push_owned(data))
    }

    /// Queues a line from the [`Arena`], by reference when possible; like
    /// [`Outbox::append`] otherwise.
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
            Appended::Queued => true,
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

/// Bytes taken from a queue and not yet written: `pieces`, then `last`.
#[derive(Default)]
pub struct Pending {
    pieces: ThinVec<Piece>,
    last: Option<BytesSlice>,
    /// Pieces before this one are written (and emptied).
    head: usize,
    /// Bytes of the first unwritten piece already written.
    offset: usize,
}

impl Pending {
    /// Bytes of the connection's own to write (its last words, past the queue).
    pub fn owned(bytes: Vec<u8>) -> Pending {
        Pending {
            pieces: thin_vec::thin_vec![Piece::Owned(bytes)],
            ..Pending::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.head == self.pieces.len() && self.last.is_none()
    }

    /// Every piece's bytes, in order, the written part of the first included.
    fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.pieces[self.head..]
            .iter()
            .map(Piece::bytes)
            .chain(self.last.as_deref())
    }

    /// The unwritten bytes of each piece, in order.
    fn unwritten(&self) -> impl Iterator<Item = &[u8]> {
        self.pieces()
            .enumerate()
            .map(|(i, b)| if i == 0 { &b[self.offset..] } else { b })
    }

    /// The unwritten bytes of the first piece (for writers that cannot
    /// gather; never empty unless [`Pending::is_empty`]).
    pub fn first(&self) -> &[u8] {
        self.unwritten().next().unwrap_or(&[])
    }

    /// Fills `out` with the unwritten bytes, in order, for one vectored
    /// write; returns how many slices were set.
    pub fn slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, b) in out.iter_mut().zip(self.unwritten()) {
            *slot = IoSlice::new(b);
            n += 1;
        }
        n
    }

    /// Marks `n` more bytes as written, releasing finished pieces.
    pub fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(len) = self.pieces().next().map(<[u8]>::len) else {
                break;
            };
            let left = len - self.offset;
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            self.offset = 0;
            if let Some(done) = self.pieces.get_mut(self.head) {
                // Released now: the rest may take a while to write.
                *done = Piece::Owned(Vec::new());
                self.head += 1;
            } else {
                self.last = None;
            }
        }
    }

    /// Drops everything after the line being written, so that a connection
    /// given up on ends on a whole line. Pieces hold whole lines, so the
    /// line under way ends inside the first piece.
    pub fn cut_after_current_line(&mut self) {
        let Some(first) = self.pieces().next() else {
            return;
        };
        let done = &first[..self.offset];
        if done.is_empty() || done.ends_with(b"\n") {
            // At a line boundary: nothing more needs writing.
            self.pieces.clear();
            self.last = None;
            self.head = 0;
            self.offset = 0;
            return;
        }
        let rest = &first[self.offset..];
        let end = self.offset + memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        match self.pieces.get_mut(self.head) {
            Some(Piece::Shared(s)) => s.slice_(..end),
            Some(Piece::Owned(v)) => v.truncate(end),
            None => {
                if let Some(s) = &mut self.last {
                    s.slice_(..end);
                }
                return;
            }
        }
        self.pieces.truncate(self.head + 1);
        self.last = None;
    }

    /// Every unwritten byte, copied (tests and the socket-free simulator).
    pub fn to_vec(&self) -> Vec<u8> {
        self.unwritten().flatten().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(o: &Outbox) -> Vec<u8> {
        o.take(Pending::default()).data.to_vec()
    }

    #[test]
    fn bounded_in_bytes() {
        let o = Outbox::new(10);
        assert_eq!(o.append(b"12345"), Appended::NeedsWake);
        assert_eq!(o.append(b"12345"), Appended::Queued);
        assert!(!o.push(b"1"));
        assert_eq!(o.closed(), Some(Closed::Overflow));
        let b = o.take(Pending::default());
        assert!(b.data.is_empty(), "an overflowed queue is dropped");
        assert_eq!(b.closed, Some(Closed::Overflow));
    }

    /// A waker that counts its wake-ups.
    struct CountWake(std::sync::atomic::AtomicUsize);
    impl std::task::Wake for CountWake {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn congestion_counts_queues_past_their_soft_mark() {
        // Eight queues of 800 bytes (soft mark 100). Each case acts on them
        // in turn, then gives (queues past the mark, congested).
        #[derive(Clone, Copy)]
        enum Op {
            /// Pushes that many bytes to queues `0..n`.
            Fill(usize, usize),
            Push(usize, usize),
            Take(usize),
            Final(usize, usize),
            Overflow(usize),
            Drop(usize),
        }
        use Op::*;
        let cases: &[(&str, &[Op], u32, bool)] = &[
            ("at the mark is not past it", &[Fill(8, 100)], 0, false),
            ("one past it", &[Push(0, 101)], 1, false),
            (
                "counted once however far",
                &[Push(0, 101), Push(0, 300)],
                1,
                false,
            ),
            ("small pushes add up", &[Push(0, 60), Push(0, 60)], 1, false),
            (
                "a quarter is not more than a quarter",
                &[Fill(2, 101)],
                2,
                false,
            ),
            ("three of eight is", &[Fill(3, 101)], 3, true),
            (
                "last words count too",
                &[Fill(2, 101), Final(2, 101)],
                3,
                true,
            ),
            ("congested down to two", &[Fill(3, 101), Take(0)], 2, true),
            (
                "clear at one in eight",
                &[Fill(3, 101), Take(0), Take(1)],
                1,
                false,
            ),
            (
                "not again before a quarter",
                &[Fill(3, 101), Take(0), Take(1), Push(0, 101)],
                2,
                false,
            ),
            (
                "an overflow empties a queue",
                &[Fill(3, 101), Overflow(0), Take(1)],
                1,
                false,
            ),
            (
                "queues that go count out",
                &[Fill(2, 101), Drop(7), Drop(6)],
                2,
                true,
            ),
            (
                "and so do their bytes",
                &[Fill(3, 101), Drop(0), Drop(1)],
                1,
                true,
            ),
            (
                "till the last",
                &[Fill(3, 101), Drop(0), Drop(1), Drop(2)],
                0,
                false,
            ),
            (
                "one alone never",
                &[
                    Push(0, 101),
                    Drop(7),
                    Drop(6),
                    Drop(5),
                    Drop(4),
                    Drop(3),
                    Drop(2),
                ],
                1,
                false,
            ),
            (
                "two of three are",
                &[Fill(2, 101), Drop(7), Drop(6), Drop(5), Drop(4), Drop(3)],
                2,
                true,
            ),
        ];
        for &(name, ops, over, congested) in cases {
            let c = Arc::new(Congestion::default());
            let mut q: Vec<Option<Outbox>> = (0..8)
                .map(|_| Some(Outbox::counted(800, c.clone())))
                .collect();
            let push = |q: &Option<Outbox>, n: usize| {
                assert!(q.as_ref().unwrap().push(&vec![b'x'; n]), "{name}");
            };
            for &op in ops {
                match op {
                    Fill(k, n) => q[..k].iter().for_each(|q| push(q, n)),
                    Push(i, n) => push(&q[i], n),
                    Final(i, n) => q[i].as_ref().unwrap().push_final(&vec![b'x'; n]),
                    Take(i) => drop(q[i].as_ref().unwrap().take(Pending::default())),
                    Overflow(i) => assert!(!q[i].as_ref().unwrap().push(&[b'x'; 800]), "{name}"),
                    Drop(i) => q[i] = None,
                }
            }
            assert_eq!(c.over.load(Ordering::Relaxed), over, "{name}");
            assert_eq!(c.congested(), congested, "{name}");
            drop(q);
            assert_eq!(c.over.load(Ordering::Relaxed), 0, "{name}: all gone");
            assert_eq!(c.queues.load(Ordering::Relaxed), 0, "{name}: all gone");
            assert!(!c.congested(), "{name}: all gone");
        }
    }

    #[test]
    fn waiters_are_woken_when_congestion_clears() {
        let c = Arc::new(Congestion::default());
        let (a, b) = (
            Outbox::counted(800, c.clone()),
            Outbox::counted(800, c.clone()),
        );
        let counter = Arc::new(CountWake(Default::default()));
        let waker = Waker::from(counter.clone());
        assert!(a.push(&[0; 200]) && b.push(&[0; 200]));
        assert!(c.congested());
        let round = c.wait(&waker);
        assert_eq!(c.round(), round);
        drop(a.take(Pending::default()));
        assert!(c.congested(), "one of two is more than an eighth");
        assert_eq!(counter.0.load(Ordering::Relaxed), 0);
        drop(b.take(Pending::default()));
        assert!(!c.congested());
        assert_eq!(counter.0.load(Ordering::Relaxed), 1);
        assert_ne!(c.round(), round, "no longer registered");
        assert!(a.push(&[0; 200]) && b.push(&[0; 200]));
        drop((a.take(Pending::default()), b.take(Pending::default())));
        assert_eq!(counter.0.load(Ordering::Relaxed), 1, "woken once per wait");
    }

    #[test]
    fn take_resets_the_count() {
        let o = Outbox::new(10);
        assert!(o.push(b"1234567890"));
        assert_eq!(drain(&o), b"1234567890");
        assert_eq!(o.append(b"1234567890"), Appended::NeedsWake);
        // The batch reports its size (the writer's load signal), once.
        assert_eq!(o.take(Pending::default()).bytes, 10);
        assert_eq!(o.take(Pending::default()).bytes, 0);
    }

    #[test]
    fn close_keeps_queued_data_and_refuses_more() {
        let o = Outbox::new(100);
        assert!(o.push(b"a"));
        o.push_final(b"bye");
        o.close();
        assert!(!o.push(b"b"));
        let b = o.take(Pending::default());
        assert_eq!(b.data.to_vec(), b"abye");
        assert_eq!(b.closed, Some(Closed::Closing));
    }

    #[test]
    fn closing_states_only_move_forward() {
        // (steps, state after them): a shutdown overrides a normal close,
        // nothing overrides an overflow, a close does not undo a shutdown.
        let cases: [(&[&str], Option<Closed>); 6] = [
            (&[], None),
            (&["close"], Some(Closed::Closing)),
            (&["shut_down"], Some(Closed::Shutdown)),
            (&["close", "shut_down"], Some(Closed::Shutdown)),
            (&["shut_down", "close"], Some(Closed::Shutdown)),
            (&["overflow", "close", "shut_down"], Some(Closed::Overflow)),
        ];
        for (steps, want) in cases {
            let o = Outbox::new(4);
            for s in steps {
                match *s {
                    "close" => o.close(),
                    "shut_down" => o.shut_down(),
                    _ => assert!(!o.push(b"12345")),
                }
            }
            assert_eq!(o.closed(), want, "{steps:?}");
            assert_eq!(o.take(Pending::default()).closed, want, "{steps:?}");
        }
    }

    #[test]
    fn last_words_pass_the_bound_but_not_a_close() {
        let o = Outbox::new(4);
        assert!(o.push(b"1234"));
        o.push_final(b"ERROR\r\n");
        assert_eq!(drain(&o), b"1234ERROR\r\n");
        o.close();
        o.push_final(b"late");
        assert!(drain(&o).is_empty());
    }

    #[test]
    fn consecutive_shared_lines_extend_one_reference() {
        let mut arena = Arena::default();
        let o = Outbox::new(1 << 20);
        for i in 0..100 {
            let line = arena.put(format!("line {i}\n").as_bytes());
            o.append_shared(&line);
        }
        let b = o.take(Pending::default()).data;
        assert_eq!(b.pieces().count(), 1);
        // Handed to the writer as it is: no list allocated on the way.
        assert_eq!(b.pieces.capacity(), 0);
        let want: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(b.to_vec(), want.as_bytes());
    }

    #[test]
    fn shared_and_owned_lines_keep_their_order() {
        let mut arena = Arena::default();
        let o = Outbox::new(1 << 20);
        let a = arena.put(b"a\n");
        let skipped = arena.put(b"not for o\n");
        let c = arena.put(b"c\n");
        o.append_shared(&a);
        o.append(b"reply\n");
        o.append_shared(&c);
        o.append_shared(&arena.put(b"d\n"));
        drop(skipped);
        assert_eq!(drain(&o), b"a\nreply\nc\nd\n");
    }

    #[test]
    fn the_bound_counts_bytes_not_references() {
        let mut arena = Arena::default();
        let o = Outbox::new(10);
        assert_eq!(o.append_shared(&arena.put(b"12345")), Appended::NeedsWake);
        assert_eq!(o.append_shared(&arena.put(b"12345")), Appended::Queued);
        assert_eq!(o.append_shared(&arena.put(b"1")), Appended::Refused);
        assert_eq!(o.closed(), Some(Closed::Overflow));
    }

    #[test]
    fn scattered_references_are_copied_past_the_pin_bound() {
        let mut arena = Arena::default();
        let o = Outbox::new(3 * SEGMENT);
        let mut want = Vec::new();
        // One line for `o` per segment: each reference would pin a segment.
        for i in 0..10 {
            let line = format!("{i}\n");
            o.append_shared(&arena.put(line.as_bytes()));
            want.extend_from_slice(line.as_bytes());
            arena.put(&vec![b'x'; SEGMENT - 2]);
        }
        let inner = o.lock();
        assert!(
            inner.pinned as usize <= 3 * SEGMENT + want.len(),
            "pinned {}",
            inner.pinned
        );
        let shared = inner
            .pieces
            .iter()
            .filter(|p| matches!(p, Piece::Shared(_)))
            .count();
        assert!(shared <= 3, "{shared} references");
        drop(inner);
        assert_eq!(drain(&o), want);
    }

    #[test]
    fn a_cut_keeps_only_the_rest_of_the_line_under_way() {
        let mut arena = Arena::default();
        let fill = || {
            let o = Outbox::new(1 << 20);
            o.append(b"one\r\ntwo\r\n");
            o.append_shared(&Arena::default().put(b"three\r\n"));
            o.take(Pending::default()).data
        };
        // (bytes written before the cut, what is left to write after it)
        let cases: &[(usize, &[u8])] = &[
            (0, b""),
            (2, b"e\r\n"),
            (4, b"\n"),
            (5, b""),
            (6, b"wo\r\n"),
            (10, b""),
            (12, b"ree\r\n"),
        ];
        for &(written, want) in cases {
            let mut p = fill();
            p.advance(written);
            p.cut_after_current_line();
            assert_eq!(p.to_vec(), want, "after {written} bytes");
        }
        // A shared first piece is cut the same way.
        let o = Outbox::new(1 << 20);
        o.append_shared(&arena.put(b"alpha\r\n"));
        o.append_shared(&arena.put(b"beta\r\n"));
        let mut p = o.take(Pending::default()).data;
        p.advance(3);
        p.cut_after_current_line();
        assert_eq!(p.to_vec(), b"ha\r\n");
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let mut arena = Arena::default();
        let o = Outbox::new(1 << 20);
        o.append_shared(&arena.put(b"hello "));
        o.append(b"big ");
        o.append_shared(&arena.put(b"world\n"));
        let mut p = o.take(Pending::default()).data;
        let mut out = Vec::new();
        for step in [1, 4, 3, 100] {
            let mut io = [IoSlice::new(&[]); 4];
            let n = p.slices(&mut io);
            let all: Vec<u8> = io[..n].iter().flat_map(|s| s.to_vec()).collect();
            let k = step.min(all.len());
            out.extend_from_slice(&all[..k]);
            p.advance(k);
        }
        assert!(p.is_empty());
        assert_eq!(out, b"hello big world\n");
    }
}
