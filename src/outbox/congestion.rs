//! The server's count of queues past their soft mark, and the pause it
//! decides on.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::Waker;

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
    pub(super) over: AtomicU32,
    pub(super) queues: AtomicU32,
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
    pub(super) fn settle(&self) {
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
