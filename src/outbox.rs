//! A connection's bounded outgoing queue.
//!
//! The hub pushes shared, already-encoded [`Bytes`] without blocking; the
//! connection's writer takes everything queued at once and writes it with one
//! vectored syscall. The queue is bounded in bytes: a push that would exceed
//! the bound marks the queue overflowed instead, so a client that stops reading
//! costs the others nothing and is disconnected with `SendQ exceeded`.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

/// Why a queue stopped accepting data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// The connection is closing normally; queued data is still flushed.
    Closing,
    /// The send queue bound was hit; the client is dropped.
    Overflow,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Bytes>,
    bytes: usize,
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
    /// Data to write, oldest first.
    pub data: VecDeque<Bytes>,
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
        // A poisoned lock only means a writer panicked mid-take; the data is
        // still consistent (plain moves), so keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `data`. Returns false if the queue is closed or just overflowed
    /// (the caller then drops the client).
    pub fn push(&self, data: Bytes) -> bool {
        let mut inner = self.lock();
        if inner.closed.is_some() {
            return false;
        }
        if inner.bytes + data.len() > self.limit {
            inner.closed = Some(Closed::Overflow);
            inner.queue.clear();
            inner.bytes = 0;
            drop(inner);
            self.notify.notify_one();
            return false;
        }
        let was_empty = inner.queue.is_empty();
        inner.bytes += data.len();
        inner.queue.push_back(data);
        drop(inner);
        // The writer drains the whole queue per wake-up, so only the first
        // push after a drain needs to wake it.
        if was_empty {
            self.notify.notify_one();
        }
        true
    }

    /// Queues `data` even past the bound: for the last words before a close
    /// (an ERROR line), which must not be lost to the limit.
    pub fn push_final(&self, data: Bytes) {
        let mut inner = self.lock();
        if inner.closed.is_none() {
            inner.bytes += data.len();
            inner.queue.push_back(data);
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
        self.lock().bytes
    }

    /// Takes everything queued, swapping in `spare` (an empty queue whose
    /// capacity is reused, so steady traffic does not allocate).
    pub fn take(&self, spare: VecDeque<Bytes>) -> Batch {
        let mut inner = self.lock();
        inner.bytes = 0;
        let data = std::mem::replace(&mut inner.queue, spare);
        Batch {
            data,
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
        assert!(o.push(Bytes::from_static(b"12345")));
        assert!(o.push(Bytes::from_static(b"12345")));
        assert!(!o.push(Bytes::from_static(b"1")));
        assert_eq!(o.closed(), Some(Closed::Overflow));
        let b = o.take(VecDeque::new());
        assert!(b.data.is_empty(), "an overflowed queue is dropped");
        assert_eq!(b.closed, Some(Closed::Overflow));
    }

    #[test]
    fn take_resets_the_count() {
        let o = Outbox::new(10);
        assert!(o.push(Bytes::from_static(b"1234567890")));
        let b = o.take(VecDeque::new());
        assert_eq!(b.data.len(), 1);
        assert!(o.push(Bytes::from_static(b"1234567890")));
    }

    #[test]
    fn close_keeps_queued_data_and_refuses_more() {
        let o = Outbox::new(100);
        assert!(o.push(Bytes::from_static(b"a")));
        o.push_final(Bytes::from_static(b"bye"));
        o.close();
        assert!(!o.push(Bytes::from_static(b"b")));
        let b = o.take(VecDeque::new());
        assert_eq!(
            b.data,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"bye")]
        );
        assert_eq!(b.closed, Some(Closed::Closing));
    }
}
