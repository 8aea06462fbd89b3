//! Backpressure: a connection whose lines went to queues past their soft
//! mark pauses its input until those queues drain (or their readers are
//! found to have stopped). The queues tell the server-wide [`Drains`] when
//! they drop back under their mark, or close; paused connections are woken
//! then and look at their own blockers again.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::Waker;

/// The paused connections, woken whenever a queue drains.
#[derive(Default)]
pub struct Drains {
    /// Counts the times the waiters were woken, so that a task knows
    /// whether it is still registered.
    round: AtomicU32,
    /// How many wait: most drains find nobody and take no lock.
    waiting: AtomicUsize,
    waiters: Mutex<Vec<Waker>>,
}

impl Drains {
    /// Wakes `waker` at the next drain; returns the round it is registered
    /// for (see [`Drains::round`]). The caller looks at its blockers again
    /// after registering, or a drain in between would go unseen.
    pub fn wait(&self, waker: &Waker) -> u32 {
        let mut w = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        w.push(waker.clone());
        self.waiting.store(w.len(), Ordering::Release);
        self.round.load(Ordering::Acquire)
    }

    /// Changes each time the waiters are woken: a task registered for an
    /// earlier round is no longer registered.
    pub fn round(&self) -> u32 {
        self.round.load(Ordering::Acquire)
    }

    /// A queue dropped back under its soft mark, or closed.
    pub(super) fn drained(&self) {
        if self.waiting.load(Ordering::Acquire) == 0 {
            return;
        }
        let woken = {
            let mut w = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
            self.round.fetch_add(1, Ordering::AcqRel);
            self.waiting.store(0, Ordering::Release);
            std::mem::take(&mut *w)
        };
        woken.into_iter().for_each(Waker::wake);
    }
}
