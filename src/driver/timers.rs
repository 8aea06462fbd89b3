//! A connection's deadlines: the session's (keep-alive, registration,
//! partial line), a stuck write's, and its closing bound, published as its
//! queue's alarm (`net::alarms` rings it); and the pause of its input while
//! readers it sent to catch up (backpressure).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bavard_core::Session;

use crate::delivery::Peer;
use crate::hub::SendLimits;

/// How long a closing connection may take to flush to a client that does
/// not read.
const CLOSING_FLUSH: Duration = Duration::from_secs(10);

/// Publishes the connection's next deadline as its alarm: the closing bound
/// once closing (set now if it was not), else the earliest of the session's
/// deadline, the write timeout of a write under way (`writing`) and any
/// bound.
pub fn publish<S: Session + ?Sized>(
    peer: &Peer,
    session: &S,
    closing: bool,
    writing: Option<Duration>,
    exit_by: &mut Option<Instant>,
) {
    let deadline = if closing {
        Some(*exit_by.get_or_insert(Instant::now() + CLOSING_FLUSH))
    } else {
        let stuck = writing.map(|timeout| peer.progress(Instant::now()) + timeout);
        [session.deadline(), *exit_by, stuck]
            .into_iter()
            .flatten()
            .min()
    };
    peer.out.set_alarm(deadline);
}

/// Whether a write under way has not moved for `timeout` at `now`.
pub fn write_timed_out(peer: &Peer, now: Instant, timeout: Duration) -> bool {
    now >= peer.progress(now) + timeout
}

/// Ready once `exit_by` has passed; otherwise `Pending`, registered for the
/// alarm sweep's wake-up.
pub fn out_of_time(exit_by: Option<Instant>, peer: &Peer, cx: &mut Context<'_>) -> Poll<()> {
    loop {
        if exit_by.is_some_and(|t| Instant::now() >= t) {
            return Poll::Ready(());
        }
        // A wake-up for any reason only means: look at the time again.
        std::task::ready!(peer.out.poll_ready(cx));
    }
}

/// A connection's input, paused until the readers it sent to catch up.
pub struct Pause {
    /// Recipients whose queues its lines left past their soft mark.
    blockers: Vec<Arc<Peer>>,
    /// When the first of them would count as stopped (no progress for the
    /// stall grace), if none drains before.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The round of drain waiters this task is registered in.
    round: Option<u32>,
}

impl Pause {
    pub fn new(blockers: Vec<Arc<Peer>>) -> Box<Pause> {
        Box::new(Pause {
            blockers,
            timer: None,
            round: None,
        })
    }

    /// More readers to wait for.
    pub fn add(&mut self, more: Vec<Arc<Peer>>) {
        self.blockers.extend(more);
    }
}

/// Whether the connection's input stays paused: some recipient it sent to
/// is still behind, and still reading. A recipient whose queue has not
/// moved for the stall grace has stopped reading and holds nobody back (its
/// queue meets its bound, or the write timeout). Registers the task to be
/// woken at the next drain, or when the first recipient would count as
/// stopped.
pub fn paused(
    pause: &mut Option<Box<Pause>>,
    peer: &Peer,
    limits: SendLimits,
    cx: &mut Context<'_>,
) -> bool {
    let Some(p) = pause else {
        return false;
    };
    loop {
        let now = Instant::now();
        let grace = limits.stall_grace;
        p.blockers
            .retain(|b| b.out.closed().is_none() && b.out.behind() && !b.stalled(now, grace));
        let Some(first) = p.blockers.iter().map(|b| b.progress(now)).min() else {
            *pause = None;
            return false;
        };
        if let Some(d) = peer.out.drains()
            && p.round != Some(d.round())
        {
            p.round = Some(d.wait(cx.waker()));
            // A queue may have drained in between: look again.
            continue;
        }
        let at = (first + grace + Duration::from_millis(1)).into();
        let timer = p
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if timer.deadline() != at {
            timer.as_mut().reset(at);
        }
        if timer.as_mut().poll(cx).is_ready() {
            continue;
        }
        return true;
    }
}
