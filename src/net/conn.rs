//! One connection's task: reads lines into its dialect session, writes what
//! the hub queued for it. The task owns the socket and nothing else.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::framing::{Frame, Framer};
use crate::hub::{Hub, Peer};
use crate::outbox::Closed;

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
    /// Timers: keep-alive PINGs, registration deadline... `partial` tells
    /// whether an incomplete line is pending.
    fn on_deadline(&mut self, hub: &Mutex<Hub>, now: Instant, partial: bool) -> Flow;
    /// Any input arrived (resets idle timers).
    fn on_input(&mut self, now: Instant);
    /// After the lines of one read were handled: whether an incomplete line
    /// is now pending (for the partial-line timeout).
    fn after_read(&mut self, _partial: bool, _now: Instant) {}
    /// The last line written before closing for `reason`, bypassing the queue.
    fn farewell(&self, reason: &str) -> Bytes;
    /// Quit reason used when the client vanishes.
    fn gone(&mut self, hub: &Mutex<Hub>, reason: &str);
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

/// Most buffers handed to one vectored write.
const MAX_IOV: usize = 64;

enum ReadOutcome {
    Data,
    WouldBlock,
    Eof,
    Error(std::io::Error),
    Closed,
}

/// Serves one connection until it closes.
pub async fn serve(
    stream: TcpStream,
    addr: SocketAddr,
    hub: Arc<Mutex<Hub>>,
    peer: Arc<Peer>,
    mut session: impl Session,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    session.start(&hub);
    let mut framer = Framer::default();
    let mut pending: VecDeque<Bytes> = VecDeque::new();
    let mut spare: VecDeque<Bytes> = VecDeque::new();
    let mut closing = false;
    let mut reading = true;
    let mut force_exit: Option<Instant> = None;
    let mut quit_reason = "Connection closed".to_string();
    loop {
        let deadline = [session.deadline(), force_exit]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            biased;
            _ = peer.out.ready(), if pending.is_empty() => {
                let batch = peer.out.take(std::mem::take(&mut spare));
                pending = batch.data;
                match batch.closed {
                    Some(Closed::Overflow) => {
                        quit_reason = "SendQ exceeded".into();
                        let bye = session.farewell("SendQ exceeded");
                        let _ = stream.try_write(&bye);
                        break;
                    }
                    Some(Closed::Closing) => closing = true,
                    None => {}
                }
                if pending.is_empty() && closing {
                    break;
                }
            }
            r = stream.writable(), if !pending.is_empty() => {
                if r.is_err() {
                    quit_reason = "Write error".into();
                    break;
                }
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let n = pending.iter().take(MAX_IOV).zip(iov.iter_mut()).map(|(b, s)| *s = IoSlice::new(b)).count();
                match stream.try_write_vectored(&iov[..n]) {
                    Ok(mut written) => {
                        while written > 0 {
                            let Some(front) = pending.front_mut() else { break };
                            if written >= front.len() {
                                written -= front.len();
                                pending.pop_front();
                            } else {
                                front.advance(written);
                                written = 0;
                            }
                        }
                        if pending.is_empty() {
                            // Keep the allocation for the next swap, but not a huge one.
                            if pending.capacity() <= 1024 {
                                spare = std::mem::take(&mut pending);
                            }
                            if closing && peer.out.queued_bytes() == 0 {
                                // Take whatever was pushed just before closing.
                                let rest = peer.out.take(VecDeque::new());
                                pending = rest.data;
                                if pending.is_empty() {
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => {
                        quit_reason = "Write error".into();
                        break;
                    }
                }
            }
            r = stream.readable(), if reading && !closing => {
                if r.is_err() {
                    quit_reason = "Read error".into();
                    break;
                }
                let outcome = READ_BUF.with(|buf| {
                    let mut buf = buf.borrow_mut();
                    match stream.try_read(&mut buf) {
                        Ok(0) => ReadOutcome::Eof,
                        Ok(n) => {
                            session.on_input(Instant::now());
                            let max = session.max_line();
                            let mut flow = Flow::Continue;
                            framer.feed(&buf[..n], max, |frame| {
                                flow = match frame {
                                    Frame::Line(l) => session.line(&hub, l),
                                    Frame::TooLong => session.too_long(&hub),
                                };
                                flow == Flow::Continue
                            });
                            session.after_read(framer.has_partial(), Instant::now());
                            if flow == Flow::Close { ReadOutcome::Closed } else { ReadOutcome::Data }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
                        Err(e) => ReadOutcome::Error(e),
                    }
                });
                match outcome {
                    ReadOutcome::Data | ReadOutcome::WouldBlock => {}
                    ReadOutcome::Closed => {
                        // The session quit the hub; flush what it queued.
                        closing = true;
                        reading = false;
                    }
                    ReadOutcome::Eof => {
                        // The client may only have closed its sending side:
                        // leave the hub now, but still deliver what is queued.
                        reading = false;
                        session.gone(&hub, "Connection closed");
                        peer.out.close();
                    }
                    ReadOutcome::Error(e) => {
                        quit_reason = format!("Read error: {e}");
                        break;
                    }
                }
            }
            _ = shutdown.cancelled(), if force_exit.is_none() => {
                // The server has queued its goodbye; give the flush a bounded time.
                force_exit = Some(Instant::now() + Duration::from_secs(3));
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                let now = Instant::now();
                if force_exit.is_some_and(|t| now >= t) {
                    break;
                }
                if session.on_deadline(&hub, now, framer.has_partial()) == Flow::Close {
                    closing = true;
                    reading = false;
                }
            }
        }
    }
    session.gone(&hub, &quit_reason);
    tracing::debug!(%addr, reason = %quit_reason, "connection closed");
    if reading {
        linger(stream).await;
    }
}

/// Half-closes and waits a little for the peer's EOF: closing with unread
/// input makes the kernel send a reset, which can destroy the last lines written.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
