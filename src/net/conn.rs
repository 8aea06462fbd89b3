//! One connection's task: reads lines into its dialect session, writes what
//! the hub queued for it. The task owns the socket and nothing else.

use std::cell::RefCell;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use std::future::poll_fn;
use std::task::Poll;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::flood::{Flood, FloodLimits, Verdict};
use super::framing::{Frame, Framer, Next};
use crate::hub::{Hub, Peer};
use crate::outbox::{Closed, Pending};

/// Whether the connection goes on.
pub use crate::line::Flow;

/// A dialect's per-connection logic, called by the connection task.
pub trait Session: Send {
    /// Longest accepted line in bytes, newline excluded.
    fn max_line(&self) -> usize;
    /// Called once, after the peer is in the hub.
    fn start(&mut self, hub: &Mutex<Hub>);
    /// Handles one complete line. May lock the hub (more than once: slow work
    /// such as password hashing happens between locks).
    fn line(&mut self, hub: &Mutex<Hub>, line: &[u8]) -> Flow;
    /// A line went over [`Session::max_line`].
    fn too_long(&mut self, hub: &Mutex<Hub>) -> Flow;
    /// When [`Session::on_deadline`] should next run, if ever.
    fn deadline(&self) -> Option<Instant>;
    /// Timers: keep-alive PINGs, registration deadline, slow-loris guard.
    fn on_deadline(&mut self, hub: &Mutex<Hub>, now: Instant) -> Flow;
    /// Input arrived and was handled; `partial` tells whether an incomplete
    /// line is left pending (resets idle timers, arms the slow-loris guard).
    fn on_input(&mut self, now: Instant, partial: bool);
    /// The last line written before closing for `reason`, bypassing the queue.
    fn farewell(&self, reason: &str) -> Bytes;
    /// Leaves the hub for `reason` (the client vanished or was dropped).
    fn gone(&mut self, hub: &Mutex<Hub>, reason: &str);
    /// Whether flood control spares this client (operators).
    fn flood_exempt(&self) -> bool {
        false
    }
}

/// A byte stream the connection task reads and writes at once: gives its
/// two halves, borrowed from it. A TCP stream splits for free (the halves
/// are references); an owned split would cost every connection an `Arc`.
pub trait Duplex: Send {
    type Read<'a>: AsyncRead + Unpin + Send
    where
        Self: 'a;
    type Write<'a>: AsyncWrite + Unpin + Send
    where
        Self: 'a;
    fn halves(&mut self) -> (Self::Read<'_>, Self::Write<'_>);
}

impl Duplex for tokio::net::TcpStream {
    type Read<'a> = tokio::net::tcp::ReadHalf<'a>;
    type Write<'a> = tokio::net::tcp::WriteHalf<'a>;
    fn halves(&mut self) -> (Self::Read<'_>, Self::Write<'_>) {
        self.split()
    }
}

/// Separate halves (TLS: `tokio::io::split`).
impl<R, W> Duplex for (R, W)
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    type Read<'a>
        = &'a mut R
    where
        Self: 'a;
    type Write<'a>
        = &'a mut W
    where
        Self: 'a;
    fn halves(&mut self) -> (Self::Read<'_>, Self::Write<'_>) {
        (&mut self.0, &mut self.1)
    }
}

/// Locks the hub. A panic while holding the lock (a bug, never input) must not
/// take every other connection down with it, so poisoning is ignored.
pub fn lock(hub: &Mutex<Hub>) -> MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    // One read buffer per worker thread instead of one per connection: an
    // idle connection then holds no buffer at all.
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; 64 * 1024]);
}

/// Most input held back by flood control; a client past it is flooding
/// whatever the rates say, and is dropped with `Excess Flood`.
const MAX_HELD: usize = 256 * 1024;

/// Most slices gathered into one vectored write.
const MAX_IOV: usize = 64;

enum ReadOutcome {
    Data,
    Eof,
    Error(std::io::Error),
    Closed,
}

/// Flood control between the framer and the session.
struct Gate {
    /// Boxed: the buckets would otherwise sit in every connection's state,
    /// flood control on or off.
    flood: Option<Box<Flood>>,
    /// Held input may be resumed at this instant.
    hold_until: Option<Instant>,
    /// The held backlog went past the flood bound.
    excess: bool,
}

impl Gate {
    /// Runs one frame through flood control and the session.
    fn frame(
        &mut self,
        session: &mut impl Session,
        hub: &Mutex<Hub>,
        frame: Frame<'_>,
        now: Instant,
    ) -> Next {
        if let (Some(flood), Frame::Line(l)) = (&mut self.flood, &frame)
            && !session.flood_exempt()
            && let Verdict::Wait(t) = flood.admit(l.len(), now)
        {
            self.hold_until = Some(t);
            return Next::Hold;
        }
        let flow = match frame {
            Frame::Line(l) => session.line(hub, l),
            Frame::TooLong => session.too_long(hub),
        };
        if flow == Flow::Close {
            Next::Stop
        } else {
            Next::Continue
        }
    }

    /// Bookkeeping after a batch of input was framed.
    fn after(
        &mut self,
        framer: &Framer,
        session: &mut impl Session,
        next: Next,
        now: Instant,
    ) -> ReadOutcome {
        session.on_input(now, framer.has_partial());
        match next {
            Next::Stop => ReadOutcome::Closed,
            Next::Continue => ReadOutcome::Data,
            Next::Hold => {
                if let Some(flood) = &mut self.flood {
                    let held = framer.held();
                    let lines = held.iter().filter(|&&b| b == b'\n').count();
                    self.excess = held.len() >= MAX_HELD || flood.excessive(lines, held.len(), now);
                }
                ReadOutcome::Data
            }
        }
    }
}

/// The server is going down: whatever is left must be flushed within 3 s.
fn exit_soon(exit_by: &mut Option<Instant>) {
    let by = Instant::now() + Duration::from_secs(3);
    *exit_by = Some(exit_by.map_or(by, |t| t.min(by)));
}

/// Writes some of `pending`, gathering its pieces into one `writev` when the
/// stream supports it (TLS may not: it then takes one piece at a time).
fn poll_write_pending<W: AsyncWrite + Unpin>(
    cx: &mut std::task::Context<'_>,
    wr: &mut W,
    pending: &Pending,
) -> Poll<std::io::Result<usize>> {
    if wr.is_write_vectored() {
        let mut slices = [IoSlice::new(&[]); MAX_IOV];
        let n = pending.slices(&mut slices);
        Pin::new(wr).poll_write_vectored(cx, &slices[..n])
    } else {
        Pin::new(wr).poll_write(cx, pending.first())
    }
}

/// Serves one connection until it closes, over any byte stream (plain TCP,
/// TLS...). `hub` gives the hub; it is dropped when the connection ends,
/// however it ends (a panic included), so it may carry the connection's
/// cleanup too: one value in every connection's state instead of two.
pub fn serve<H: AsRef<Mutex<Hub>>>(
    mut io: impl Duplex,
    hub: H,
    peer: Arc<Peer>,
    mut session: impl Session,
    flood: Option<FloodLimits>,
) -> impl std::future::Future<Output = ()> {
    // Made here and captured, rather than made inside from its limits: the
    // block would keep both.
    let mut gate = Gate {
        flood: flood.map(|l| Box::new(Flood::new(l, Instant::now()))),
        hold_until: None,
        excess: false,
    };
    // An `async move` block rather than an `async fn`: an async fn keeps each
    // argument twice in its state (as passed, and as the local it is moved
    // into), and this state lives as long as the connection.
    async move {
        let hub = hub.as_ref();
        session.start(hub);
        let (mut rd, mut wr) = io.halves();
        let mut framer = Framer::default();
        // Bytes taken from the outbox and not yet written.
        let mut pending = Pending::default();
        let mut closing = false;
        let mut reading = true;
        // The client closed or broke the connection: no need to drain its input.
        let mut peer_gone = false;
        // The task ends at this instant whatever is left to flush: set when
        // closing (clients that stopped reading) and at server shutdown.
        let mut exit_by: Option<Instant> = None;
        // A wake-up arrived while a write was under way: take the queue as
        // soon as the write is done.
        let mut woken = false;
        // One timer for the connection's life, moved only when the deadline
        // changes: arming a fresh timer on every loop turn costs on the hot path.
        // (The armed deadline is read back from the timer, not kept twice.)
        let far = || Instant::now() + Duration::from_secs(3600);
        let timer = tokio::time::sleep_until(far().into());
        tokio::pin!(timer);
        loop {
            // In a block of its own: locals alive across the `select!` below
            // would take room in every connection's state.
            {
                let deadline = if closing {
                    // Only the flush is left, bounded for clients that stopped reading.
                    let flush_by = Instant::now() + Duration::from_secs(10);
                    Some(*exit_by.get_or_insert(flush_by))
                } else {
                    [session.deadline(), exit_by, gate.hold_until]
                        .into_iter()
                        .flatten()
                        .min()
                };
                let armed = timer.deadline().into_std();
                match deadline {
                    Some(d) if d != armed => timer.as_mut().reset(d.into()),
                    // No deadline: leave a far one armed rather than re-arming.
                    None if armed <= Instant::now() => timer.as_mut().reset(far().into()),
                    _ => {}
                }
            }
            // While input is held by flood control, reading goes on into the held
            // backlog (so its size shows) up to a bound, past which the client
            // would be dropped anyway.
            let can_read = reading && !closing && framer.held().len() < MAX_HELD;
            tokio::select! {
                biased;
                // Polled on every turn, writes under way included, so that a
                // server shutdown is seen even while a client does not read.
                _ = poll_fn(|cx| peer.out.poll_ready(cx)) => {
                    if !pending.is_empty() {
                        woken = true;
                        match peer.out.closed() {
                            Some(Closed::Shutdown) => {
                                closing = true;
                                exit_soon(&mut exit_by);
                            }
                            // The hub dropped this client while a write to it
                            // is stuck: finish only the line under way (never
                            // half a line), within the closing bound, instead
                            // of holding the batch until the client reads.
                            Some(Closed::Overflow) if !closing => {
                                session.gone(hub, "SendQ exceeded");
                                pending.cut_after_current_line();
                                closing = true;
                                reading = false;
                                if pending.is_empty() {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        continue;
                    }
                    // `pending` is empty here but keeps its storage while traffic goes on.
                    let batch = peer.out.take(std::mem::take(&mut pending));
                    pending = batch.data;
                    match batch.closed {
                        Some(Closed::Overflow) => {
                            session.gone(hub, "SendQ exceeded");
                            let bye = session.farewell("SendQ exceeded");
                            // Best effort, bounded: the client is not reading.
                            // Boxed: a rare path should not grow every connection's state.
                            let _ = Box::pin(tokio::time::timeout(Duration::from_millis(100), wr.write_all(&bye))).await;
                            break;
                        }
                        Some(Closed::Closing) => closing = true,
                        Some(Closed::Shutdown) => {
                            closing = true;
                            exit_soon(&mut exit_by);
                        }
                        None => {}
                    }
                    if pending.is_empty() && closing {
                        break;
                    }
                }
                r = poll_fn(|cx| poll_write_pending(cx, &mut wr, &pending)), if !pending.is_empty() => {
                    match r {
                        Ok(0) | Err(_) => {
                            session.gone(hub, "Write error");
                            peer_gone = true;
                            break;
                        }
                        Ok(n) => {
                            pending.advance(n);
                            if pending.is_empty() {
                                // TLS buffers what it encrypts: push it out now.
                                if poll_fn(|cx| Pin::new(&mut wr).poll_flush(cx)).await.is_err() {
                                    session.gone(hub, "Write error");
                                    break;
                                }
                                // Keep the storage while more is coming; free it
                                // when the connection goes quiet, so an idle
                                // connection holds none.
                                if peer.out.queued_bytes() == 0 {
                                    pending = Pending::default();
                                }
                                if std::mem::take(&mut woken) {
                                    // The wake-up was spent during the write:
                                    // have the queue taken on the next turn.
                                    peer.out.wake();
                                }
                                if closing {
                                    // Take whatever was pushed just before closing.
                                    pending = peer.out.take(Pending::default()).data;
                                    if pending.is_empty() {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                }
                outcome = poll_fn(|cx| READ_BUF.with(|buf| {
                    let mut buf = buf.borrow_mut();
                    let mut rb = ReadBuf::new(&mut buf[..]);
                    match Pin::new(&mut rd).poll_read(cx, &mut rb) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(Err(e)) => Poll::Ready(ReadOutcome::Error(e)),
                        Poll::Ready(Ok(())) if rb.filled().is_empty() => Poll::Ready(ReadOutcome::Eof),
                        Poll::Ready(Ok(())) if gate.hold_until.is_some() => {
                            framer.hold_more(rb.filled());
                            Poll::Ready(gate.after(&framer, &mut session, Next::Hold, Instant::now()))
                        }
                        Poll::Ready(Ok(())) => {
                            let now = Instant::now();
                            let max = session.max_line();
                            // Wake the recipients once for the whole read, not per line.
                            let _wake = crate::hub::event::defer_wakeups();
                            let next = framer.feed(rb.filled(), max, |f| gate.frame(&mut session, hub, f, now));
                            Poll::Ready(gate.after(&framer, &mut session, next, now))
                        }
                    }
                })), if can_read => {
                    match outcome {
                        ReadOutcome::Data => {}
                        ReadOutcome::Closed => {
                            // The session left the hub; flush what it queued.
                            closing = true;
                            reading = false;
                        }
                        ReadOutcome::Eof => {
                            // The client may only have closed its sending side:
                            // leave the hub now, but still deliver what is queued.
                            reading = false;
                            peer_gone = true;
                            session.gone(hub, "Connection closed");
                            peer.out.close();
                        }
                        ReadOutcome::Error(e) => {
                            session.gone(hub, &format!("Read error: {e}"));
                            peer_gone = true;
                            break;
                        }
                    }
                    if gate.excess {
                        peer.out.push_final(&session.farewell("Excess Flood"));
                        session.gone(hub, "Excess Flood");
                        closing = true;
                        reading = false;
                    }
                }
                _ = &mut timer => {
                    let now = Instant::now();
                    if exit_by.is_some_and(|t| now >= t) {
                        break;
                    }
                    if gate.hold_until.is_some_and(|t| now >= t) && !closing {
                        gate.hold_until = None;
                        let max = session.max_line();
                        let _wake = crate::hub::event::defer_wakeups();
                        let next = framer.resume(max, |f| gate.frame(&mut session, hub, f, now));
                        if matches!(gate.after(&framer, &mut session, next, now), ReadOutcome::Closed) {
                            closing = true;
                            reading = false;
                        }
                        if gate.excess {
                            peer.out.push_final(&session.farewell("Excess Flood"));
                            session.gone(hub, "Excess Flood");
                            closing = true;
                            reading = false;
                        }
                    }
                    if session.on_deadline(hub, now) == Flow::Close {
                        closing = true;
                        reading = false;
                    }
                }
            }
        }
        // Unusual ends left the hub with their reason where they were seen;
        // this one is then a no-op.
        session.gone(hub, "Connection closed");
        tracing::debug!(id = peer.id, "connection closed");
        if !peer_gone {
            // We are the ones closing (QUIT, kill, timeout, flood...): half-close
            // and drain, or unread input would make the kernel reset the
            // connection and destroy the last lines, the reason included.
            // Boxed: only reached at the end, no need to carry it all along.
            Box::pin(linger(rd, wr)).await;
        }
    }
}

/// Half-closes and waits a little for the peer's EOF: closing with unread
/// input makes the kernel send a reset, which can destroy the last lines written.
pub async fn linger<R, W>(mut rd: R, mut wr: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let _ = wr.shutdown().await;
    // On the heap: this rarely-awaited buffer would otherwise sit in every
    // connection's future.
    let mut buf = vec![0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
