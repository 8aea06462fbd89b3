//! A connection's deadlines: the session's (keep-alive, registration,
//! partial line) and its closing bound, published as its queue's alarm
//! (`net::alarms` rings it); and the congestion pause of its input.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bavard_core::Session;

use crate::delivery::Peer;

/// How long a closing connection may take to flush to a client that does
/// not read.
const CLOSING_FLUSH: Duration = Duration::from_secs(10);

/// Longest pause of a connection's input for congestion: past it, one more
/// read is handled, so that queues of clients that stopped reading still
/// fill up to their bound and those clients get dropped.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Publishes the connection's next deadline as its alarm: the closing bound
/// once closing (set now if it was not), else the earlier of the session's
/// deadline and any bound.
pub fn publish<S: Session + ?Sized>(
    peer: &Peer,
    session: &S,
    closing: bool,
    exit_by: &mut Option<Instant>,
) {
    let deadline = if closing {
        Some(*exit_by.get_or_insert(Instant::now() + CLOSING_FLUSH))
    } else {
        match (session.deadline(), *exit_by) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    };
    peer.out.set_alarm(deadline);
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

/// Whether a connection whose last read fed others (`fed`) should leave
/// its input unread for now: many queues of the server are past their soft
/// mark (`outbox::Congestion`). Registers the task to be woken when that
/// is no longer so, or after [`MAX_PAUSE`].
pub fn congested(
    fed: bool,
    pause: &mut Option<(Pin<Box<tokio::time::Sleep>>, u32)>,
    peer: &Peer,
    cx: &mut Context<'_>,
) -> bool {
    let c = match peer.out.congestion() {
        Some(c) if fed && c.congested() => c,
        _ => {
            *pause = None;
            return false;
        }
    };
    let (timer, round) =
        pause.get_or_insert_with(|| (Box::pin(tokio::time::sleep(MAX_PAUSE)), c.wait(cx.waker())));
    if *round != c.round() {
        // Woken since, and congested again: register anew.
        *round = c.wait(cx.waker());
    }
    // Checked again after registering: the queues may have drained between.
    if !c.congested() || timer.as_mut().poll(cx).is_ready() {
        *pause = None;
        return false;
    }
    true
}
