//! The driver's parts on fake transports and clocks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Waker;

use bavard_core::CoreConfig;
use bavard_core::irc::IrcSession;
use bavard_core::store::MemoryRegistry;
use tokio::io::ReadBuf;

use super::transport::Stream;
use super::*;
use crate::effects::{Effects, Secrets, Stores};
use crate::outbox::Outbox;

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

fn limits() -> crate::hub::SendLimits {
    crate::hub::SendLimits {
        stall_grace: Duration::from_millis(300),
        write_timeout: Duration::from_secs(5),
    }
}

fn hub() -> Arc<Hub> {
    let effects = Effects::new(
        Arc::new(MemoryRegistry::default()),
        Stores::memory(),
        Secrets::default(),
    );
    Arc::new(Hub::new(Arc::new(CoreConfig::default()), effects, limits()))
}

fn irc_peer(hub: &Hub, serial: u64) -> Arc<Peer> {
    let id = bavard_core::ConnId::new(0, serial);
    let peer = Arc::new(Peer::new(
        id,
        &bavard_core::irc::render::IRC,
        Outbox::new(1 << 20),
    ));
    hub.connect(&peer, "127.0.0.1".parse().unwrap(), false, None);
    peer
}

#[tokio::test]
async fn a_full_read_lets_the_others_run_before_the_next() {
    let hub = hub();
    let peer = irc_peer(&hub, 1);
    let cfg = Arc::new(CoreConfig::default());
    let session = IrcSession::new(peer.id, cfg, "127.0.0.1".parse().unwrap(), Instant::now());
    let reads = Arc::new(AtomicUsize::new(0));
    let input = Endless {
        reads: reads.clone(),
        left: 10,
    };
    let io = Stream::new((input, tokio::io::sink()));
    let conn = serve(io, hub, peer, session, None);
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

/// A transport whose writes land in memory, `chunk` bytes at most each.
#[derive(Default)]
struct Mem {
    written: Vec<u8>,
    chunk: usize,
}

impl Transport for Mem {
    fn poll_lines(
        &mut self,
        _: &mut Context<'_>,
        _: usize,
        _: bool,
        _: &mut dyn FnMut(framing::Frame<'_>) -> framing::Next,
    ) -> Poll<transport::ReadEnd> {
        Poll::Pending
    }
    fn resume(
        &mut self,
        _: usize,
        _: &mut dyn FnMut(framing::Frame<'_>) -> framing::Next,
    ) -> framing::Next {
        framing::Next::Continue
    }
    fn held(&self) -> (usize, usize) {
        (0, 0)
    }
    fn has_partial(&self) -> bool {
        false
    }
    fn poll_write(
        &mut self,
        _: &mut Context<'_>,
        pending: &Pending,
    ) -> Poll<std::io::Result<usize>> {
        let first = pending.first();
        let n = first.len().min(self.chunk.max(1));
        self.written.extend_from_slice(&first[..n]);
        Poll::Ready(Ok(n))
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_drain(&mut self, _: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

/// The writer's state in one place, for the output tests.
struct Out {
    w: output::Writer,
    io: Mem,
    pending: Pending,
    exit_by: Option<Instant>,
    closing: bool,
    due: bool,
}

impl Out {
    fn new(chunk: usize) -> Out {
        Out {
            w: output::Writer::default(),
            io: Mem {
                chunk,
                ..Mem::default()
            },
            pending: Pending::default(),
            exit_by: None,
            closing: false,
            due: false,
        }
    }

    /// Turns of the writer (a few more than it needs), up to its end.
    fn run(&mut self, peer: &Arc<Peer>) -> Vec<output::Step> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut steps = Vec::new();
        for _ in 0..20 {
            let step = self.w.poll(
                &mut cx,
                &mut self.io,
                (peer, &crate::metrics::Metrics::default()),
                &mut self.pending,
                &mut self.exit_by,
                &mut self.closing,
                &mut self.due,
            );
            let busy = matches!(step, output::Step::Busy | output::Step::Idle);
            steps.push(step);
            if !busy {
                break;
            }
        }
        steps
    }
}

fn line_peer(limit: usize) -> Arc<Peer> {
    let id = bavard_core::ConnId::new(0, 9);
    Arc::new(Peer::new(id, &bavard_core::line::LINE, Outbox::new(limit)))
}

#[test]
fn the_writer_defers_a_turn_then_writes_the_batch_in_order() {
    let peer = line_peer(1 << 20);
    assert!(peer.out.push(b"one\n"));
    assert!(peer.out.push(b"two\n"));
    let mut out = Out::new(3);
    let steps = out.run(&peer);
    assert_eq!(
        steps[0],
        output::Step::Idle,
        "a wake-up waits one turn: {steps:?}"
    );
    assert_eq!(out.io.written, b"one\ntwo\n");
    assert!(!out.closing);
}

#[test]
fn a_closed_queue_is_flushed_then_done() {
    let peer = line_peer(1 << 20);
    peer.out.push_final(b"bye\n");
    peer.out.close();
    let mut out = Out::new(64);
    let steps = out.run(&peer);
    assert_eq!(out.io.written, b"bye\n");
    assert!(out.closing);
    assert_eq!(steps.last(), Some(&output::Step::Done), "{steps:?}");
}

#[test]
fn an_overflowed_queue_asks_for_last_words() {
    let peer = line_peer(8);
    assert!(!peer.out.push(b"far more than eight bytes\n"));
    let mut out = Out::new(64);
    let steps = out.run(&peer);
    assert!(steps.contains(&output::Step::Farewell), "{steps:?}");
    assert!(out.io.written.is_empty(), "nothing of the refused line");
}

#[test]
fn a_shutdown_bounds_the_flush() {
    let peer = line_peer(1 << 20);
    assert!(peer.out.push(b"last\n"));
    peer.out.shut_down();
    let mut out = Out::new(64);
    out.run(&peer);
    let left = out.exit_by.expect("bounded") - Instant::now();
    assert!(left <= Duration::from_secs(3), "{left:?}");
    assert!(out.closing);
}

#[test]
fn timers_publish_the_earliest_deadline_and_the_closing_bound() {
    let peer = line_peer(1 << 20);
    let cfg = Arc::new(CoreConfig::default());
    let session = IrcSession::new(peer.id, cfg, "127.0.0.1".parse().unwrap(), Instant::now());
    let mut exit_by = None;
    timers::publish(&peer, &session, false, None, &mut exit_by);
    assert_eq!(exit_by, None, "the session's deadline alone");
    assert!(!timers::write_timed_out(
        &peer,
        Instant::now(),
        Duration::from_secs(1)
    ));
    let later = Instant::now() + Duration::from_secs(2);
    assert!(timers::write_timed_out(
        &peer,
        later,
        Duration::from_secs(1)
    ));
    timers::publish(&peer, &session, true, None, &mut exit_by);
    let left = exit_by.expect("closing is bounded") - Instant::now();
    assert!(left > Duration::from_secs(9) && left <= Duration::from_secs(10));
    let mut cx = Context::from_waker(Waker::noop());
    let past = Some(Instant::now() - Duration::from_millis(1));
    assert!(timers::out_of_time(past, &peer, &mut cx).is_ready());
    assert!(timers::out_of_time(exit_by, &peer, &mut cx).is_pending());
}

#[tokio::test]
async fn a_pause_lasts_while_a_reader_is_behind_and_still_reading() {
    let me = line_peer(1 << 20);
    let reader = line_peer(800);
    let limits = limits();
    let mut cx = Context::from_waker(Waker::noop());
    let mut pause = Some(timers::Pause::new(vec![reader.clone()]));
    assert!(
        !timers::paused(&mut pause, &me, limits, &mut cx),
        "not behind: no pause"
    );
    assert!(pause.is_none());
    reader.touch(Instant::now());
    reader.out.append(&[b'x'; 50]);
    assert_eq!(
        reader.out.append(&[b'x'; 100]),
        crate::outbox::Appended::Behind
    );
    let mut pause = Some(timers::Pause::new(vec![reader.clone()]));
    assert!(
        timers::paused(&mut pause, &me, limits, &mut cx),
        "behind and reading"
    );
    let _ = reader.out.take(Pending::default());
    assert!(!timers::paused(&mut pause, &me, limits, &mut cx), "drained");
    // Behind again, and its queue does not move for the grace: it stopped
    // reading, and holds nobody back.
    reader.out.append(&[b'x'; 150]);
    let mut pause = Some(timers::Pause::new(vec![reader.clone()]));
    assert!(timers::paused(&mut pause, &me, limits, &mut cx));
    tokio::time::sleep(limits.stall_grace + Duration::from_millis(50)).await;
    assert!(!timers::paused(&mut pause, &me, limits, &mut cx), "stalled");
    assert!(pause.is_none());
}

/// PASS is checked on the hashing threads; the lines after it wait for the
/// answer (were NICK and USER handled before it, registration would fail
/// for want of a checked password).
#[tokio::test]
async fn input_waits_for_the_effect_of_the_line_before() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let secrets = Secrets {
        password: Some(crate::passwd::hash("secret").unwrap()),
        opers: Vec::new(),
    };
    let effects = Effects::new(
        Arc::new(MemoryRegistry::default()),
        Stores::memory(),
        secrets,
    );
    let cfg = Arc::new(CoreConfig {
        password_required: true,
        ..CoreConfig::default()
    });
    let hub = Arc::new(Hub::new(cfg.clone(), effects, limits()));
    let peer = irc_peer(&hub, 1);
    let session = IrcSession::new(peer.id, cfg, "127.0.0.1".parse().unwrap(), Instant::now());
    let (client, server) = tokio::io::duplex(1 << 16);
    let io = Stream::new(tokio::io::split(server));
    let task = tokio::spawn(serve(io, hub.clone(), peer, session, None));
    let (rd, mut wr) = tokio::io::split(client);
    wr.write_all(b"PASS secret\r\nNICK alice\r\nUSER u 0 * :r\r\n")
        .await
        .unwrap();
    let mut lines = BufReader::new(rd).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("a reply in time")
        .unwrap()
        .unwrap();
    assert!(first.contains(" 001 alice "), "{first}");
    assert!(hub.read(|n| n.find_nick("alice").is_some_and(|u| u.registered)));
    drop(wr);
    task.abort();
}
