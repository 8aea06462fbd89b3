//! One connection's task: the driver between its transport, its session (in
//! the core, reached through the hub) and its queue.
//!
//! # Layout
//! - [`transport`]: the seam to the bytes: a source of lines in, whole lines
//!   out; [`transport::Stream`] frames TCP and TLS ([`framing`]),
//!   [`websocket::WebSocket`] takes one line per WebSocket message.
//! - [`input`]: lines through flood control into the session, with the
//!   waits for effects.
//! - [`output`]: the queue taken in batches and written.
//! - [`timers`]: the deadlines, published as the queue's alarm.
//! - here: the task itself, and the phases of its ending.

pub mod framing;
pub mod input;
pub mod output;
pub mod timers;
pub mod transport;
pub mod websocket;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bavard_core::Session;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::delivery::{Peer, Wakes};
use crate::effects::Later;
use crate::hub::{Hub, Turn};
use crate::metrics::Dropped;
use crate::net::flood::FloodLimits;
use crate::outbox::Pending;
use input::{Feed, Gate, Outcome};
use output::Writer;
use transport::Transport;

/// How long the last words to a client past its send queue may take.
const FAREWELL_TIME: Duration = Duration::from_millis(100);

/// How long a closing connection waits for the client's EOF.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// Serves one connection until it closes, over any transport. `hub` is
/// dropped when the connection ends, however it ends (a panic included), so
/// it may carry the connection's cleanup too: one value in every
/// connection's state instead of two.
pub fn serve<T, H, S>(
    io: T,
    hub: H,
    peer: Arc<Peer>,
    session: S,
    flood: Option<Arc<FloodLimits>>,
) -> impl std::future::Future<Output = ()>
where
    T: Transport,
    H: AsRef<Hub> + Unpin,
    S: Session + Unpin,
{
    Conn {
        io,
        hub,
        peer,
        session,
        gate: Gate::new(flood),
        busy: None,
        phase: Phase::Start,
        flags: Flags {
            closing: false,
            reading: true,
            peer_gone: false,
            due: false,
            dirty: true,
            writer: Writer::default(),
        },
    }
}

/// How the serving loop ended.
enum End {
    Done,
    /// The send queue overflowed: try to tell the client, then close.
    Farewell(Vec<u8>),
}

/// Where the connection is in its life.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not polled yet: the session greets the client on the first poll.
    Start,
    Serving,
    /// Writing the last words (`pending`) to a client past its send queue,
    /// bounded by `exit_by`.
    Farewell,
    /// We are the ones closing (QUIT, kill, timeout, flood...): half-close
    /// and drain until the client's EOF, bounded by `exit_by`, or unread
    /// input would make the kernel reset the connection and destroy the
    /// last lines, the reason included.
    Shutdown,
    Drain,
}

/// The connection's small state, kept together so it packs into one word.
struct Flags {
    closing: bool,
    reading: bool,
    /// The client closed or broke the connection: no need to drain its input.
    peer_gone: bool,
    /// The alarm rang: check the deadlines (only then is the clock read).
    due: bool,
    /// A deadline may have moved: publish the next one as the alarm.
    dirty: bool,
    writer: Writer,
}

/// One connection's task, written out by hand rather than as an async block
/// around `select!`: each branch future of a `select!` keeps its own
/// references in the state, an async block keeps its captures beside its
/// locals, and this state lives as long as the connection (it is most of an
/// idle connection's memory). Its timeouts ring through the queue's alarm
/// (`net::alarms`) rather than a timer of its own.
struct Conn<T, H, S> {
    io: T,
    hub: H,
    peer: Arc<Peer>,
    session: S,
    gate: Gate,
    /// `None` while the connection is idle.
    busy: Option<Box<Busy>>,
    phase: Phase,
    flags: Flags,
}

/// What a connection holds only while something is under way: bytes not
/// yet written, a bound on its closing, a pause for readers behind, an
/// effect awaited. Dropped whenever all are empty, so an idle connection's task
/// stays small (`net::tests::connection_future_stays_small`).
#[derive(Default)]
struct Busy {
    /// Bytes taken from the queue and not yet written.
    pending: Pending,
    /// The task ends at this instant whatever is left to flush: set when
    /// closing (clients that stopped reading) and at server shutdown.
    exit_by: Option<Instant>,
    /// While input is paused for readers it sent to that are behind.
    pause: Option<Box<timers::Pause>>,
    /// The effect a command waits on; input is held until it answers.
    waiting: Option<Later>,
    /// Writers to wake after a batch of input; kept with its storage while
    /// traffic goes on.
    wakes: Wakes,
}

impl Busy {
    fn is_idle(&self) -> bool {
        self.pending.is_empty()
            && self.exit_by.is_none()
            && self.pause.is_none()
            && self.waiting.is_none()
    }
}

impl<T, H, S> Conn<T, H, S> {
    fn busy(&mut self) -> &mut Busy {
        self.busy.get_or_insert_with(Box::default)
    }

    /// Bounds what is left of the connection to `bound` from now.
    fn end_within(&mut self, bound: Duration) {
        let exit_by = Some(Instant::now() + bound);
        self.busy().exit_by = exit_by;
        self.peer.out.set_alarm(exit_by);
    }
}

impl<T, H, S> std::future::Future for Conn<T, H, S>
where
    T: Transport,
    H: AsRef<Hub> + Unpin,
    S: Session + Unpin,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            match this.phase {
                Phase::Start => {
                    let mut wakes = Wakes::default();
                    let turn = this.hub.as_ref().call(
                        &this.peer,
                        &mut this.session,
                        &mut wakes,
                        |s, cx| s.start(cx),
                    );
                    match turn {
                        Turn::Continue => {}
                        Turn::Close => {
                            this.flags.closing = true;
                            this.flags.reading = false;
                        }
                        Turn::Wait(f) => this.busy().waiting = Some(f),
                    }
                    this.phase = Phase::Serving;
                }
                Phase::Serving => {
                    let served = this.poll_serve(cx);
                    // Nothing held: the box goes (with the pending writes'
                    // storage), so an idle connection holds none.
                    if served.is_pending() && this.busy.as_ref().is_some_and(|b| b.is_idle()) {
                        this.busy = None;
                    }
                    let end = std::task::ready!(served);
                    // Unusual ends left the network with their reason where
                    // they were seen; this one is then a no-op.
                    gone(
                        this.hub.as_ref(),
                        &this.peer,
                        &mut this.session,
                        "Connection closed",
                    );
                    tracing::debug!(id = %this.peer.id, "connection closed");
                    match end {
                        End::Farewell(bye) => {
                            this.busy().pending = Pending::owned(bye);
                            this.phase = Phase::Farewell;
                            this.end_within(FAREWELL_TIME);
                        }
                        End::Done if this.flags.peer_gone => return Poll::Ready(()),
                        End::Done => {
                            this.phase = Phase::Shutdown;
                            this.end_within(LINGER_TIME);
                        }
                    }
                }
                Phase::Farewell => {
                    // Best effort, bounded: the client is not reading.
                    let done = {
                        let b = this.busy.get_or_insert_with(Box::default);
                        match this.io.poll_write(cx, &b.pending) {
                            Poll::Ready(Ok(n)) if n > 0 => {
                                b.pending.advance(n);
                                b.pending.is_empty()
                            }
                            Poll::Ready(_) => true,
                            Poll::Pending => {
                                timers::out_of_time(b.exit_by, &this.peer, cx).is_ready()
                            }
                        }
                    };
                    if !done {
                        return Poll::Pending;
                    }
                    this.busy().pending = Pending::default();
                    this.phase = Phase::Shutdown;
                    this.end_within(LINGER_TIME);
                }
                Phase::Shutdown => match this.io.poll_shutdown(cx) {
                    Poll::Ready(_) => this.phase = Phase::Drain,
                    Poll::Pending => {
                        let exit_by = this.busy.as_ref().and_then(|b| b.exit_by);
                        return timers::out_of_time(exit_by, &this.peer, cx);
                    }
                },
                Phase::Drain => {
                    return match this.io.poll_drain(cx) {
                        Poll::Ready(()) => Poll::Ready(()),
                        Poll::Pending => {
                            let exit_by = this.busy.as_ref().and_then(|b| b.exit_by);
                            timers::out_of_time(exit_by, &this.peer, cx)
                        }
                    };
                }
            }
        }
    }
}

/// The session leaves the network for `reason` (the client vanished or was
/// dropped); later calls are no-ops.
fn gone<S: Session + ?Sized>(hub: &Hub, peer: &Arc<Peer>, session: &mut S, reason: &str) {
    let mut wakes = Wakes::default();
    hub.call(peer, session, &mut wakes, |s, cx| {
        s.gone(cx, reason);
        bavard_core::Step::Continue
    });
}

impl<T: Transport, H: AsRef<Hub>, S: Session> Conn<T, H, S> {
    /// Runs the connection until only its ending is left. Each turn handles
    /// the first ready source in priority order (wake-ups and writes, an
    /// effect's answer, reads, flood control's timer, deadlines) and starts
    /// over; `Pending` once none is ready, each having registered its
    /// wake-up (timeouts through the queue's alarm).
    fn poll_serve(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        let Conn {
            io,
            hub,
            peer,
            session,
            gate,
            busy,
            flags: f,
            ..
        } = self;
        let Busy {
            pending,
            exit_by,
            pause,
            waiting,
            wakes,
        } = &mut **busy.get_or_insert_with(Box::default);
        let hub = (*hub).as_ref();
        // One full read per poll (see below).
        let mut read_enough = false;
        loop {
            let limits = hub.send_limits();
            if f.dirty || (f.closing && exit_by.is_none()) {
                f.dirty = false;
                let writing = (!pending.is_empty()).then_some(limits.write_timeout);
                timers::publish(peer, &*session, f.closing, writing, exit_by);
            }

            let wrote = f.writer.poll(
                cx,
                io,
                (peer, hub.metrics()),
                pending,
                exit_by,
                &mut f.closing,
                &mut f.due,
            );
            match wrote {
                output::Step::Busy => {
                    // A write under way is watched by the write timeout.
                    f.dirty |= !pending.is_empty();
                    continue;
                }
                output::Step::Idle => {}
                output::Step::Overflowed => {
                    // The hub dropped this client while a write to it is
                    // stuck: only the line under way is finished, within
                    // the time a closing client gets to read its last words.
                    gone(hub, peer, session, "SendQ exceeded");
                    f.reading = false;
                    let by = Instant::now() + LINGER_TIME;
                    *exit_by = Some(exit_by.map_or(by, |t| t.min(by)));
                    f.dirty = true;
                    if pending.is_empty() && !f.writer.flushing() {
                        return Poll::Ready(End::Done);
                    }
                    continue;
                }
                output::Step::Farewell => {
                    gone(hub, peer, session, "SendQ exceeded");
                    return Poll::Ready(End::Farewell(session.farewell("SendQ exceeded")));
                }
                output::Step::Done => return Poll::Ready(End::Done),
                output::Step::WriteError => {
                    gone(hub, peer, session, "Write error");
                    f.peer_gone = true;
                    return Poll::Ready(End::Done);
                }
            }

            if let Some(w) = waiting
                && let Poll::Ready(outcome) = w.as_mut().poll(cx)
            {
                *waiting = None;
                f.dirty = true;
                match hub.resume(peer, session, wakes, outcome) {
                    Turn::Continue => {}
                    Turn::Close => {
                        f.closing = true;
                        f.reading = false;
                    }
                    Turn::Wait(next) => *waiting = Some(next),
                }
                if waiting.is_none() && gate.hold.is_none() && !f.closing {
                    let mut feed = Feed {
                        hub,
                        peer,
                        session: &mut *session,
                        wakes,
                        waiting: &mut *waiting,
                    };
                    let outcome = input::resume_held(io, gate, &mut feed);
                    after_input(outcome, hub, peer, session, f);
                }
                wakes.wake_all();
                wait_for_readers(pause, wakes);
                continue;
            }

            // While input is held, reading goes on into the held backlog (so
            // its size shows) up to a bound, past which the client would be
            // dropped anyway.
            let can_read = f.reading
                && !f.closing
                && !read_enough
                && io.held().1 < input::MAX_HELD
                && !timers::paused(pause, peer, limits, cx);
            if can_read {
                let mut feed = Feed {
                    hub,
                    peer,
                    session: &mut *session,
                    wakes,
                    waiting: &mut *waiting,
                };
                if let Poll::Ready(read) = input::poll_input(cx, io, gate, &mut feed) {
                    // Input moves the keep-alive and partial-line deadlines.
                    f.dirty = true;
                    // Each recipient's writer is woken once for the whole
                    // read, and finds its lines queued together.
                    wakes.wake_all();
                    wait_for_readers(pause, wakes);
                    if read.full {
                        // More input is waiting, and this read may have
                        // queued lines for many: let their writers (and every
                        // other connection) have a turn before the next read.
                        read_enough = true;
                        let _ = std::pin::pin!(tokio::task::yield_now()).poll(cx);
                    }
                    match read.outcome {
                        Outcome::Eof => {
                            // The client may only have closed its sending
                            // side: leave the network now, but still deliver
                            // what is queued.
                            f.reading = false;
                            f.peer_gone = true;
                            gone(hub, peer, session, "Connection closed");
                            peer.out.close();
                        }
                        Outcome::Error(e) => {
                            gone(hub, peer, session, &format!("Read error: {e}"));
                            f.peer_gone = true;
                            return Poll::Ready(End::Done);
                        }
                        other => after_input(other, hub, peer, session, f),
                    }
                    continue;
                }
            }

            if !f.closing
                && let Some(hold) = &mut gate.hold
                && hold.as_mut().poll(cx).is_ready()
            {
                // Flood control's wait is over: feed the held input again.
                f.dirty = true;
                if waiting.is_some() {
                    // The effect's answer resumes the input.
                    gate.hold = None;
                } else {
                    let mut feed = Feed {
                        hub,
                        peer,
                        session: &mut *session,
                        wakes,
                        waiting: &mut *waiting,
                    };
                    let outcome = input::resume_held(io, gate, &mut feed);
                    after_input(outcome, hub, peer, session, f);
                }
                wakes.wake_all();
                wait_for_readers(pause, wakes);
                continue;
            }
            if std::mem::take(&mut f.due) {
                let now = Instant::now();
                if exit_by.is_some_and(|t| now >= t) {
                    return Poll::Ready(End::Done);
                }
                if !pending.is_empty() && timers::write_timed_out(peer, now, limits.write_timeout) {
                    // The client stopped reading with lines under way: it
                    // goes, and its queue is not kept waiting for it.
                    hub.metrics().dropped(Dropped::WriteTimeout);
                    gone(hub, peer, session, "Write timeout");
                    f.peer_gone = true;
                    return Poll::Ready(End::Done);
                }
                // The alarm may have rung for a deadline since moved.
                f.dirty = true;
                if !f.closing && session.deadline().is_some_and(|d| now >= d) {
                    let turn = hub.call(peer, session, wakes, |s, cx| s.on_deadline(cx));
                    wakes.wake_all();
                    wait_for_readers(pause, wakes);
                    match turn {
                        Turn::Close => {
                            // Keep-alive, registration or partial line.
                            hub.metrics().dropped(Dropped::Timeout);
                            f.closing = true;
                            f.reading = false;
                        }
                        // Nick protection's rename claims a guest nick (a
                        // session waits from a deadline only when idle).
                        Turn::Wait(next) => *waiting = Some(next),
                        Turn::Continue => {}
                    }
                    f.dirty = true;
                }
                continue;
            }
            return Poll::Pending;
        }
    }
}

/// Pauses the input for the recipients the last input left behind.
fn wait_for_readers(pause: &mut Option<Box<timers::Pause>>, wakes: &mut Wakes) {
    let blockers = wakes.take_blockers();
    if blockers.is_empty() {
        return;
    }
    match pause {
        Some(p) => p.add(blockers),
        None => *pause = Some(timers::Pause::new(blockers)),
    }
}

/// What input handed to the session leaves the connection to do: flush
/// and close when the session closed it; past the flood bound, tell the
/// client why and drop it (what is queued before the reason is still
/// written).
fn after_input<S: Session + ?Sized>(
    outcome: Outcome,
    hub: &Hub,
    peer: &Arc<Peer>,
    session: &mut S,
    f: &mut Flags,
) {
    match outcome {
        Outcome::Closed => {}
        Outcome::Excess if !f.closing => {
            hub.metrics().dropped(Dropped::Flood);
            peer.out.push_final(&session.farewell("Excess Flood"));
            gone(hub, peer, session, "Excess Flood");
        }
        _ => return,
    }
    f.closing = true;
    f.reading = false;
}

/// Half-closes and waits a little for the peer's EOF (refused connections;
/// served ones do the same as the last phases of [`Conn`]): closing with
/// unread input makes the kernel send a reset, which can destroy the last
/// lines written.
pub async fn linger<R, W>(mut rd: R, mut wr: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let _ = wr.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = tokio::io::AsyncReadExt::read(&mut rd, &mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

#[cfg(test)]
mod tests;
