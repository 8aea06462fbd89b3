//! One connection's task: reads lines into its dialect session, writes what
//! the hub queued for it. The task owns the socket and nothing else.

use std::cell::RefCell;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use std::task::Poll;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::flood::{Flood, FloodLimits, Verdict};
use super::framing::{Frame, Framer, Next};
use crate::hub::{Hub, Peer};
use crate::outbox::{Closed, Pending};

/// Whether the connection goes on.
pub use crate::line::Flow;

/// A dialect's per-connection logic, called by the connection task.
pub trait Session: Send + Unpin {
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
pub trait Duplex: Send + Unpin {
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

/// Turns of the scheduler a woken writer leaves its queue for before taking
/// it, after a small batch and after a large one ([`BUSY_BATCH`] bytes or
/// more): under load, each turn lets more senders' lines join the batch.
const QUIET_TURNS: u8 = 1;
const BUSY_TURNS: u8 = 3;
const BUSY_BATCH: usize = 2048;

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
    /// While input is held back: the timer that releases it. Only flood
    /// control needs timing this fine (see `net::alarms`), and only while
    /// it holds input, so the timer exists only then.
    hold: Option<Pin<Box<tokio::time::Sleep>>>,
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
            match &mut self.hold {
                Some(h) => h.as_mut().reset(t.into()),
                None => self.hold = Some(Box::pin(tokio::time::sleep_until(t.into()))),
            }
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

/// The server is going down: the connection closes, and whatever is left
/// must be flushed within 3 s.
fn exit_soon(f: &mut Flags, exit_by: &mut Option<Instant>) {
    f.closing = true;
    // The bound moved: publish it as the alarm.
    f.dirty = true;
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
pub fn serve<H: AsRef<Mutex<Hub>> + Unpin>(
    io: impl Duplex,
    hub: H,
    peer: Arc<Peer>,
    session: impl Session,
    flood: Option<Arc<FloodLimits>>,
) -> impl std::future::Future<Output = ()> {
    Conn {
        io,
        hub,
        peer,
        session,
        gate: Gate {
            flood: flood.map(|l| Box::new(Flood::new(l, Instant::now()))),
            hold: None,
            excess: false,
        },
        busy: None,
        phase: Phase::Start,
        flags: Flags {
            closing: false,
            reading: true,
            peer_gone: false,
            woken: false,
            flushing: false,
            due: false,
            dirty: true,
            fed: false,
            yielded: 0,
            turns: QUIET_TURNS,
        },
    }
}

/// How long the last words to a client past its send queue may take.
const FAREWELL_TIME: Duration = Duration::from_millis(100);

/// How long a closing connection waits for the client's EOF.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// How the serving loop ended.
enum End {
    Done,
    /// The send queue overflowed: try to tell the client, then close.
    Farewell(Bytes),
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

/// The connection's booleans, kept together so they pack into one word.
struct Flags {
    closing: bool,
    reading: bool,
    /// The client closed or broke the connection: no need to drain its input.
    peer_gone: bool,
    /// A wake-up arrived while a write was under way: take the queue as
    /// soon as the write (and its flush) is done.
    woken: bool,
    /// Everything was written; the stream is being flushed (TLS).
    flushing: bool,
    /// The alarm rang: check the deadlines (only then is the clock read).
    due: bool,
    /// A deadline may have moved: publish the next one as the alarm.
    dirty: bool,
    /// The last read queued lines for other clients.
    fed: bool,
    /// Turns of the scheduler the queue has been left for since the wake-up.
    yielded: u8,
    /// Turns to leave it for at the next wake-up ([`QUIET_TURNS`] or
    /// [`BUSY_TURNS`], from the size of the last batch).
    turns: u8,
}

/// One connection's task, written out by hand rather than as an async block
/// around `select!`: each branch future of a `select!` keeps its own
/// references in the state, an async block keeps its captures beside its
/// locals, and this state lives as long as the connection (it is most of an
/// idle connection's memory). Its timeouts ring through the outbox's alarm
/// (`net::alarms`) rather than a timer of its own.
struct Conn<I, H, S> {
    io: I,
    hub: H,
    peer: Arc<Peer>,
    session: S,
    gate: Gate,
    /// `None` while the connection is idle.
    busy: Option<Box<Busy>>,
    phase: Phase,
    flags: Flags,
}

/// What a connection holds only while something is under way: input not
/// yet framed, bytes not yet written, a bound on its closing. Dropped
/// whenever all are empty, so that an idle connection's task is 256 bytes
/// instead of 384 (tokio rounds a task to a multiple of 128 bytes; see
/// `net::tests::connection_future_stays_small`).
#[derive(Default)]
struct Busy {
    framer: Framer,
    // Bytes taken from the outbox and not yet written.
    pending: Pending,
    // The task ends at this instant whatever is left to flush: set when
    // closing (clients that stopped reading) and at server shutdown.
    exit_by: Option<Instant>,
    // While input is paused for congestion: when to read once anyway, and
    // the round of waiters this task is registered in.
    pause: Option<(Pin<Box<tokio::time::Sleep>>, u32)>,
}

impl Busy {
    fn is_idle(&self) -> bool {
        self.framer.is_idle()
            && self.pending.is_empty()
            && self.exit_by.is_none()
            && self.pause.is_none()
    }
}

impl<I, H, S> Conn<I, H, S> {
    fn busy(&mut self) -> &mut Busy {
        self.busy.get_or_insert_with(Box::default)
    }

    /// Bounds what is left of the connection to `bound` from now.
    fn end_within(&mut self, bound: Duration) {
        let exit_by = Some(Instant::now() + bound);
        self.busy().exit_by = exit_by;
        self.peer.out.set_alarm(exit_by);
    }

    /// Ready once the bound set by [`Conn::end_within`] has passed;
    /// otherwise `Pending`, registered for the alarm sweep's wake-up.
    fn out_of_time(
        exit_by: Option<Instant>,
        peer: &Peer,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<()> {
        loop {
            if exit_by.is_some_and(|t| Instant::now() >= t) {
                return Poll::Ready(());
            }
            // A wake-up for any reason only means: look at the time again.
            std::task::ready!(peer.out.poll_ready(cx));
        }
    }
}

impl<I, H, S> std::future::Future for Conn<I, H, S>
where
    I: Duplex,
    H: AsRef<Mutex<Hub>> + Unpin,
    S: Session,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            match this.phase {
                Phase::Start => {
                    this.session.start(this.hub.as_ref());
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
                    // Unusual ends left the hub with their reason where they
                    // were seen; this one is then a no-op.
                    this.session.gone(this.hub.as_ref(), "Connection closed");
                    tracing::debug!(id = this.peer.id, "connection closed");
                    match end {
                        End::Farewell(bye) => {
                            this.busy().pending = Pending::owned(bye.to_vec());
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
                        let (_, mut wr) = this.io.halves();
                        match poll_write_pending(cx, &mut wr, &b.pending) {
                            Poll::Ready(Ok(n)) if n > 0 => {
                                b.pending.advance(n);
                                b.pending.is_empty()
                            }
                            Poll::Ready(_) => true,
                            Poll::Pending => {
                                Self::out_of_time(b.exit_by, &this.peer, cx).is_ready()
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
                Phase::Shutdown => {
                    let (_, mut wr) = this.io.halves();
                    match Pin::new(&mut wr).poll_shutdown(cx) {
                        Poll::Ready(_) => this.phase = Phase::Drain,
                        Poll::Pending => {
                            let exit_by = this.busy.as_ref().and_then(|b| b.exit_by);
                            return Self::out_of_time(exit_by, &this.peer, cx);
                        }
                    }
                }
                Phase::Drain => {
                    let (mut rd, _) = this.io.halves();
                    return match poll_drain(&mut rd, cx) {
                        Poll::Ready(()) => Poll::Ready(()),
                        Poll::Pending => {
                            let exit_by = this.busy.as_ref().and_then(|b| b.exit_by);
                            Self::out_of_time(exit_by, &this.peer, cx)
                        }
                    };
                }
            }
        }
    }
}

impl<I: Duplex, H: AsRef<Mutex<Hub>>, S: Session> Conn<I, H, S> {
    /// Runs the connection until only its ending is left. Each turn handles the
    /// first ready source in priority order (wake-ups, writes, reads, timers)
    /// and starts over; `Pending` once none is ready, each having registered
    /// its wake-up (timeouts through the outbox's alarm).
    fn poll_serve(&mut self, cx: &mut std::task::Context<'_>) -> Poll<End> {
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
            framer,
            pending,
            exit_by,
            pause,
        } = &mut **busy.get_or_insert_with(Box::default);
        let hub = (*hub).as_ref();
        let peer = &**peer;
        let (mut rd, mut wr) = io.halves();
        // One full read per poll (see below).
        let mut read_enough = false;
        loop {
            // Deadlines move with input and state changes only: the alarm is
            // published then, not on every turn.
            if f.dirty || (f.closing && exit_by.is_none()) {
                f.dirty = false;
                let deadline = if f.closing {
                    // Only the flush is left, bounded for clients that stopped reading.
                    let flush_by = Instant::now() + Duration::from_secs(10);
                    Some(*exit_by.get_or_insert(flush_by))
                } else {
                    match (session.deadline(), *exit_by) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    }
                };
                peer.out.set_alarm(deadline);
            }

            // Polled on every turn, writes under way included, so that a
            // server shutdown is seen even while a client does not read.
            let mut woke = false;
            if let Poll::Ready(signal) = peer.out.poll_ready(cx) {
                f.due |= signal.alarm;
                woke = signal.queued;
            }
            let writing = !pending.is_empty() || f.flushing;
            let defer = !writing
                && if f.yielded == 0 {
                    woke
                } else {
                    f.yielded < f.turns
                };
            if defer {
                // Let the tasks already scheduled run first: under load they
                // queue more lines for this connection, written by the same
                // syscall. The wake-up is deferred until the scheduler has
                // run them (tokio's `yield_now`), for more turns when the
                // last batch showed load.
                f.yielded += 1;
                f.woken = true;
                let _ = std::pin::pin!(tokio::task::yield_now()).poll(cx);
            } else if woke || (f.woken && !writing) {
                f.yielded = 0;
                f.woken = writing;
                if writing {
                    match peer.out.closed() {
                        Some(Closed::Shutdown) => exit_soon(f, exit_by),
                        // The hub dropped this client while a write to it
                        // is stuck: finish only the line under way (never
                        // half a line), within the closing bound, instead
                        // of holding the batch until the client reads.
                        Some(Closed::Overflow) if !f.closing => {
                            session.gone(hub, "SendQ exceeded");
                            pending.cut_after_current_line();
                            f.closing = true;
                            f.reading = false;
                            if pending.is_empty() && !f.flushing {
                                return Poll::Ready(End::Done);
                            }
                        }
                        _ => {}
                    }
                    continue;
                }
                // `pending` is empty here but keeps its storage while traffic goes on.
                let batch = peer.out.take(std::mem::take(pending));
                *pending = batch.data;
                f.turns = if batch.bytes >= BUSY_BATCH {
                    BUSY_TURNS
                } else {
                    QUIET_TURNS
                };
                match batch.closed {
                    Some(Closed::Overflow) => {
                        session.gone(hub, "SendQ exceeded");
                        return Poll::Ready(End::Farewell(session.farewell("SendQ exceeded")));
                    }
                    Some(Closed::Closing) => f.closing = true,
                    Some(Closed::Shutdown) => exit_soon(f, exit_by),
                    None => {}
                }
                if pending.is_empty() && f.closing {
                    return Poll::Ready(End::Done);
                }
                continue;
            }

            if !pending.is_empty()
                && let Poll::Ready(r) = poll_write_pending(cx, &mut wr, pending)
            {
                match r {
                    Ok(0) | Err(_) => {
                        session.gone(hub, "Write error");
                        f.peer_gone = true;
                        return Poll::Ready(End::Done);
                    }
                    Ok(n) => {
                        pending.advance(n);
                        // TLS buffers what it encrypts: push it out next.
                        f.flushing = pending.is_empty();
                    }
                }
                continue;
            }
            if f.flushing
                && let Poll::Ready(r) = Pin::new(&mut wr).poll_flush(cx)
            {
                f.flushing = false;
                if r.is_err() {
                    session.gone(hub, "Write error");
                    return Poll::Ready(End::Done);
                }
                if f.closing {
                    // Take whatever was pushed just before closing.
                    *pending = peer.out.take(Pending::default()).data;
                    if pending.is_empty() {
                        return Poll::Ready(End::Done);
                    }
                }
                continue;
            }

            // While input is held by flood control, reading goes on into the
            // held backlog (so its size shows) up to a bound, past which the
            // client would be dropped anyway.
            let can_read = f.reading
                && !f.closing
                && !read_enough
                && framer.held().len() < MAX_HELD
                && !congested(f, pause, peer, cx);
            if can_read
                && let Poll::Ready(Read { outcome, full, fed }) =
                    poll_input(cx, &mut rd, framer, gate, session, hub)
            {
                // Input moves the keep-alive and partial-line deadlines.
                f.dirty = true;
                f.fed = fed;
                if full {
                    // More input is waiting, and this read may have queued
                    // lines for many: let their writers (and every other
                    // connection) have a turn before the next read, instead
                    // of reading on until tokio's budget runs out.
                    read_enough = true;
                    let _ = std::pin::pin!(tokio::task::yield_now()).poll(cx);
                }
                match outcome {
                    ReadOutcome::Data => {}
                    ReadOutcome::Closed => {
                        // The session left the hub; flush what it queued.
                        f.closing = true;
                        f.reading = false;
                    }
                    ReadOutcome::Eof => {
                        // The client may only have closed its sending side:
                        // leave the hub now, but still deliver what is queued.
                        f.reading = false;
                        f.peer_gone = true;
                        session.gone(hub, "Connection closed");
                        peer.out.close();
                    }
                    ReadOutcome::Error(e) => {
                        session.gone(hub, &format!("Read error: {e}"));
                        f.peer_gone = true;
                        return Poll::Ready(End::Done);
                    }
                }
                drop_if_flooding(gate, peer, session, hub, f);
                continue;
            }

            if !f.closing
                && let Some(hold) = &mut gate.hold
                && hold.as_mut().poll(cx).is_ready()
            {
                // Flood control's wait is over: feed the held input again.
                f.dirty = true;
                let now = Instant::now();
                let max = session.max_line();
                let _wake = crate::hub::event::defer_wakeups();
                let next = framer.resume(max, |fr| gate.frame(session, hub, fr, now));
                if !matches!(next, Next::Hold) {
                    gate.hold = None;
                }
                if matches!(gate.after(framer, session, next, now), ReadOutcome::Closed) {
                    f.closing = true;
                    f.reading = false;
                }
                drop_if_flooding(gate, peer, session, hub, f);
                continue;
            }
            if std::mem::take(&mut f.due) {
                let now = Instant::now();
                if exit_by.is_some_and(|t| now >= t) {
                    return Poll::Ready(End::Done);
                }
                if !f.closing && session.deadline().is_some_and(|d| now >= d) {
                    if session.on_deadline(hub, now) == Flow::Close {
                        f.closing = true;
                        f.reading = false;
                    }
                    f.dirty = true;
                }
                continue;
            }
            return Poll::Pending;
        }
    }
}

/// Past the flood bound: the client is told why and dropped; what is
/// queued before the reason is still written.
fn drop_if_flooding(
    gate: &Gate,
    peer: &Peer,
    session: &mut impl Session,
    hub: &Mutex<Hub>,
    f: &mut Flags,
) {
    if gate.excess {
        peer.out.push_final(&session.farewell("Excess Flood"));
        session.gone(hub, "Excess Flood");
        f.closing = true;
        f.reading = false;
    }
}

/// What one read did.
struct Read {
    outcome: ReadOutcome,
    /// The read filled the buffer: more input is likely waiting.
    full: bool,
    /// Its lines were queued for other clients (a channel's lines).
    fed: bool,
}

/// Reads once and runs what was read through flood control and the session.
fn poll_input<R: AsyncRead + Unpin>(
    cx: &mut std::task::Context<'_>,
    rd: &mut R,
    framer: &mut Framer,
    gate: &mut Gate,
    session: &mut impl Session,
    hub: &Mutex<Hub>,
) -> Poll<Read> {
    READ_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        let mut rb = ReadBuf::new(&mut buf[..]);
        let mut fed = false;
        let outcome = match std::task::ready!(Pin::new(rd).poll_read(cx, &mut rb)) {
            Err(e) => ReadOutcome::Error(e),
            Ok(()) if rb.filled().is_empty() => ReadOutcome::Eof,
            Ok(()) if gate.hold.is_some() => {
                framer.hold_more(rb.filled());
                gate.after(framer, session, Next::Hold, Instant::now())
            }
            Ok(()) => {
                let now = Instant::now();
                let max = session.max_line();
                // Wake the recipients once for the whole read, not per line.
                let wake = crate::hub::event::defer_wakeups();
                let next = framer.feed(rb.filled(), max, |f| gate.frame(session, hub, f, now));
                fed = wake.fed_others();
                gate.after(framer, session, next, now)
            }
        };
        Poll::Ready(Read {
            outcome,
            full: rb.remaining() == 0,
            fed,
        })
    })
}

/// Longest pause of a connection's input for congestion: past it, one more
/// read is handled, so that queues of clients that stopped reading still
/// fill up to their bound and those clients get dropped.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Whether a connection whose last read fed others should leave its input
/// unread for now: many queues of the server are past their soft mark
/// (`outbox::Congestion`). Registers the task to be woken when that is no
/// longer so, or after [`MAX_PAUSE`].
fn congested(
    f: &Flags,
    pause: &mut Option<(Pin<Box<tokio::time::Sleep>>, u32)>,
    peer: &Peer,
    cx: &mut std::task::Context<'_>,
) -> bool {
    let c = match peer.out.congestion() {
        Some(c) if f.fed && c.congested() => c,
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

/// Reads and discards input until the peer's EOF or an error (`Ready`).
fn poll_drain<R: AsyncRead + Unpin>(rd: &mut R, cx: &mut std::task::Context<'_>) -> Poll<()> {
    READ_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        loop {
            let mut rb = ReadBuf::new(&mut buf[..]);
            match std::task::ready!(Pin::new(&mut *rd).poll_read(cx, &mut rb)) {
                Ok(()) if !rb.filled().is_empty() => {}
                _ => return Poll::Ready(()),
            }
        }
    })
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
    let drain = std::future::poll_fn(|cx| poll_drain(&mut rd, cx));
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Waker};

    /// Input that is always there: `left` reads of a full buffer of empty
    /// lines (which an IRC session skips without a reply), then none.
    struct Endless {
        reads: Arc<AtomicUsize>,
        left: usize,
    }

    impl AsyncRead for Endless {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            if self.left == 0 {
                return Poll::Pending;
            }
            self.left -= 1;
            self.reads.fetch_add(1, Ordering::Relaxed);
            while buf.remaining() >= 2 {
                buf.put_slice(b"\r\n");
            }
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_full_read_lets_the_others_run_before_the_next() {
        let cfg = Arc::new(crate::config::Config::default());
        let hub = Arc::new(Mutex::new(Hub::new(cfg.clone(), 0)));
        let peer = Arc::new(Peer::new(1, &crate::irc::render::IRC, 1 << 20));
        let session = super::super::irc_session::IrcSession::new(
            peer.clone(),
            cfg,
            "127.0.0.1".parse().unwrap(),
        );
        let reads = Arc::new(AtomicUsize::new(0));
        let input = Endless {
            reads: reads.clone(),
            left: 10,
        };
        let conn = serve((input, tokio::io::sink()), hub, peer, session, None);
        let mut conn = std::pin::pin!(conn);
        let mut cx = Context::from_waker(Waker::noop());
        for turn in 1..=3 {
            assert!(conn.as_mut().poll(&mut cx).is_pending());
            assert_eq!(
                reads.load(Ordering::Relaxed),
                turn,
                "one full read per turn"
            );
        }
    }
}
