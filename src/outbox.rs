//! A connection's bounded outgoing queue.
//!
//! The hub appends already-encoded lines without blocking; the connection's
//! writer takes everything queued at once and writes it with one syscall.
//! Lines are copied into one contiguous buffer per connection: for chat-sized
//! lines a copy is cheaper than sharing a reference-counted buffer, whose
//! counter every recipient on every core would otherwise fight over.
//!
//! The queue is bounded in bytes: an append that would exceed the bound marks
//! the queue overflowed instead, so a client that stops reading costs the
//! others nothing and is disconnected with `SendQ exceeded`.

use std::sync::Mutex;

use tokio::sync::Notify;

/// Why a queue stopped accepting data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// The connection is closing normally; queued data is still flushed.
    Closing,
    /// The send queue bound was hit; the client is dropped.
    Overflow,
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

#[derive(Default)]
struct Inner {
    buf: Vec<u8>,
    closed: Option<Closed>,
}

/// The outgoing queue of one connection.
pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    limit: usize,
}

/// What the writer gets from [`Outbox::take`].
pub struct Batch {
    /// Bytes to write.
    pub data: Vec<u8>,
    /// Set once the queue is closed: write `data`, then shut the connection.
    pub closed: Option<Closed>,
}

impl Outbox {
    /// A queue holding at most `limit` bytes not yet taken by the writer.
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a holder panicked between plain moves;
        // the data is consistent, so keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `data` without waking the writer; the caller wakes it
    /// ([`Outbox::wake`]) on [`Appended::NeedsWake`], possibly later.
    pub fn append(&self, data: &[u8]) -> Appended {
        let mut inner = self.lock();
        if inner.closed.is_some() {
            return Appended::Refused;
        }
        if inner.buf.len() + data.len() > self.limit {
            inner.closed = Some(Closed::Overflow);
            inner.buf = Vec::new();
            drop(inner);
            self.notify.notify_one();
            return Appended::Refused;
        }
        let was_empty = inner.buf.is_empty();
        inner.buf.extend_from_slice(data);
        if was_empty {
            Appended::NeedsWake
        } else {
            Appended::Queued
        }
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
        self.notify.notify_one();
    }

    /// Appends `data` even past the bound: for the last words before a close
    /// (an ERROR line), which must not be lost to the limit.
    pub fn push_final(&self, data: &[u8]) {
        let mut inner = self.lock();
        if inner.closed.is_none() {
            inner.buf.extend_from_slice(data);
        }
    }

    /// Stops accepting data; what is queued is still written, then the
    /// connection closes.
    pub fn close(&self) {
        let mut inner = self.lock();
        if inner.closed.is_none() {
            inner.closed = Some(Closed::Closing);
        }
        drop(inner);
        self.notify.notify_one();
    }

    /// The state of the queue, without taking anything.
    pub fn closed(&self) -> Option<Closed> {
        self.lock().closed
    }

    /// Bytes queued and not yet taken.
    pub fn queued_bytes(&self) -> usize {
        self.lock().buf.len()
    }

    /// Takes everything queued, leaving `spare` (emptied) in its place: a
    /// busy connection swaps two buffers back and forth instead of allocating
    /// (and faulting in) a fresh one per write; an idle one passes an empty
    /// `Vec` and holds no buffer at all.
    pub fn take(&self, mut spare: Vec<u8>) -> Batch {
        spare.clear();
        let mut inner = self.lock();
        Batch {
            data: std::mem::replace(&mut inner.buf, spare),
            closed: inner.closed,
        }
    }

    /// Waits until something was pushed or the queue closed.
    pub async fn ready(&self) {
        self.notify.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_in_bytes() {
        let o = Outbox::new(10);
        assert_eq!(o.append(b"12345"), Appended::NeedsWake);
        assert_eq!(o.append(b"12345"), Appended::Queued);
        assert!(!o.push(b"1"));
        assert_eq!(o.closed(), Some(Closed::Overflow));
        let b = o.take(Vec::new());
        assert!(b.data.is_empty(), "an overflowed queue is dropped");
        assert_eq!(b.closed, Some(Closed::Overflow));
    }

    #[test]
    fn take_resets_the_count() {
        let o = Outbox::new(10);
        assert!(o.push(b"1234567890"));
        assert_eq!(o.take(Vec::new()).data, b"1234567890");
        assert_eq!(o.append(b"1234567890"), Appended::NeedsWake);
    }

    #[test]
    fn close_keeps_queued_data_and_refuses_more() {
        let o = Outbox::new(100);
        assert!(o.push(b"a"));
        o.push_final(b"bye");
        o.close();
        assert!(!o.push(b"b"));
        let b = o.take(Vec::new());
        assert_eq!(b.data, b"abye");
        assert_eq!(b.closed, Some(Closed::Closing));
    }
}
