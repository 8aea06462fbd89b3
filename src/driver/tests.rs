//! The driver's parts on fake transports and clocks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Waker;

use bavard_core::CoreConfig;
use bavard_core::irc::IrcSession;
use bavard_core::store::MemoryRegistry;
use tokio::io::ReadBuf;

use super::transport::Stream;
use super::*;
use crate::effects::{Effects, Secrets};
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

fn hub() -> Arc<Hub> {
    let effects = Effects::new(Arc::new(MemoryRegistry::default()), Secrets::default());
    Arc::new(Hub::new(Arc::new(CoreConfig::default()), effects))
}

fn irc_peer(hub: &Hub, serial: u64) -> Arc<Peer> {
    let id = bavard_core::ConnId::new(0, serial);
    let peer = Arc::new(Peer::new(
        id,
        &bavard_core::irc::render::IRC,
        Outbox::new(1 << 20),
    ));
    hub.connect(&peer, "127.0.0.1".parse().unwrap(), false);
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
