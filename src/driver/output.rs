//! The output side of a connection: its queue taken in batches and written.
//!
//! A woken writer leaves its queue for a turn or a few of the scheduler
//! before taking it: under load the tasks already scheduled queue more lines
//! for it, written by the same syscall.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::transport::Transport;
use crate::delivery::Peer;
use crate::metrics::Metrics;
use crate::outbox::{Closed, Pending};

/// Turns of the scheduler a woken writer leaves its queue for before taking
/// it, after a small batch and after a large one ([`BUSY_BATCH`] bytes or
/// more): under load, each turn lets more senders' lines join the batch.
const QUIET_TURNS: u8 = 1;
const BUSY_TURNS: u8 = 3;
const BUSY_BATCH: usize = 2048;

/// How long the queue may take to flush once the server is going down.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(3);

/// The writer's state, small enough to sit in the connection's flags.
#[derive(Debug)]
pub struct Writer {
    /// A wake-up arrived while a write was under way: take the queue as
    /// soon as the write (and its flush) is done.
    woken: bool,
    /// Everything was written; the stream is being flushed (TLS).
    flushing: bool,
    /// Turns of the scheduler the queue has been left for since the wake-up.
    yielded: u8,
    /// Turns to leave it for at the next wake-up.
    turns: u8,
}

impl Default for Writer {
    fn default() -> Self {
        Writer {
            woken: false,
            flushing: false,
            yielded: 0,
            turns: QUIET_TURNS,
        }
    }
}

/// What the writer did in one turn.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// It made progress: look again from the top.
    Busy,
    /// Nothing to do now (its wake-up is registered).
    Idle,
    /// The queue overflowed while a write was stuck: only the line under
    /// way is finished, then the connection closes.
    Overflowed,
    /// The queue overflowed: the client gets its last words, then goes.
    Farewell,
    /// Everything is written and the connection is closing.
    Done,
    WriteError,
}

impl Writer {
    pub fn flushing(&self) -> bool {
        self.flushing
    }

    /// One turn of the writer. `due` is set when the alarm rang; `closing`
    /// when the queue closed.
    #[allow(clippy::too_many_arguments)]
    pub fn poll(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut impl Transport,
        (peer, metrics): (&Arc<Peer>, &Metrics),
        pending: &mut Pending,
        exit_by: &mut Option<Instant>,
        closing: &mut bool,
        due: &mut bool,
    ) -> Step {
        // Polled on every turn, writes under way included, so that a server
        // shutdown is seen even while a client does not read.
        let mut woke = false;
        if let Poll::Ready(signal) = peer.out.poll_ready(cx) {
            *due |= signal.alarm;
            woke = signal.queued;
        }
        let writing = !pending.is_empty() || self.flushing;
        let defer = !writing
            && if self.yielded == 0 {
                woke
            } else {
                self.yielded < self.turns
            };
        if defer {
            // Let the tasks already scheduled run first; the wake-up is
            // deferred until the scheduler has run them (tokio's
            // `yield_now`), for more turns when the last batch showed load.
            self.yielded += 1;
            self.woken = true;
            let _ = std::pin::pin!(tokio::task::yield_now()).poll(cx);
            return Step::Idle;
        }
        if woke || (self.woken && !writing) {
            self.yielded = 0;
            self.woken = writing;
            if writing {
                match peer.out.closed() {
                    Some(Closed::Shutdown) => exit_soon(peer, exit_by, closing),
                    Some(Closed::Overflow) if !*closing => {
                        pending.cut_after_current_line();
                        *closing = true;
                        return Step::Overflowed;
                    }
                    _ => {}
                }
                return Step::Busy;
            }
            // `pending` is empty here but keeps its storage while traffic goes on.
            let batch = peer.out.take(std::mem::take(pending));
            *pending = batch.data;
            self.turns = if batch.bytes >= BUSY_BATCH {
                BUSY_TURNS
            } else {
                QUIET_TURNS
            };
            match batch.closed {
                Some(Closed::Overflow) => return Step::Farewell,
                Some(Closed::Closing) => *closing = true,
                Some(Closed::Shutdown) => exit_soon(peer, exit_by, closing),
                None => {}
            }
            if pending.is_empty() && *closing {
                return Step::Done;
            }
            return Step::Busy;
        }
        if !pending.is_empty()
            && let Poll::Ready(r) = io.poll_write(cx, pending)
        {
            return match r {
                Ok(0) | Err(_) => Step::WriteError,
                Ok(n) => {
                    pending.advance(n);
                    metrics.written(n);
                    // The reader is reading (see `Peer::stalled`).
                    peer.touch(Instant::now());
                    // TLS buffers what it encrypts: push it out next.
                    self.flushing = pending.is_empty();
                    Step::Busy
                }
            };
        }
        if self.flushing
            && let Poll::Ready(r) = io.poll_flush(cx)
        {
            self.flushing = false;
            if r.is_err() {
                return Step::WriteError;
            }
            if *closing {
                // Take whatever was pushed just before closing.
                *pending = peer.out.take(Pending::default()).data;
                if pending.is_empty() {
                    return Step::Done;
                }
            }
            return Step::Busy;
        }
        Step::Idle
    }
}

/// The server is going down: the connection closes, and whatever is left
/// must be flushed within [`SHUTDOWN_FLUSH`].
fn exit_soon(peer: &Peer, exit_by: &mut Option<Instant>, closing: &mut bool) {
    *closing = true;
    let by = Instant::now() + SHUTDOWN_FLUSH;
    *exit_by = Some(exit_by.map_or(by, |t| t.min(by)));
    peer.out.set_alarm(*exit_by);
}
