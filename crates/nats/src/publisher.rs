//! The ordered publisher: the node's changes go to the stream in the order
//! they were sent, without the sender ever waiting for NATS.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{Bus, SUBJECT};

/// Publishes sent but not yet acknowledged, at most: enough to keep a
/// round trip's worth of changes in flight, few enough to resend quickly
/// after a failure.
const WINDOW: usize = 256;
/// The pause before resending after a failure.
const BACKOFF: Duration = Duration::from_millis(100);

type AckFuture = Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

/// Sends payloads to the stream in order. Cheap to clone; every clone feeds
/// the same task, so the order is the order of `send` calls across clones.
/// The task ends once every clone is dropped and what they sent is settled.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::UnboundedSender<Bytes>,
}

impl Publisher {
    /// Queues `payload` for the stream; never blocks nor awaits (the queue is
    /// unbounded: the server's own backpressure is its clients').
    pub fn send(&self, payload: Bytes) {
        // Fails only once the task has ended, which it does not while a
        // sender lives.
        let _ = self.tx.send(payload);
    }
}

struct Item {
    /// `Nats-Msg-Id`: JetStream drops a resend of a payload it already
    /// stored (within its two minutes' duplicate window).
    id: String,
    payload: Bytes,
    /// The ack of its latest send; `None` when it is to be (re)sent.
    ack: Option<AckFuture>,
    /// Set at the first failure it sees: it is dropped once this passes.
    deadline: Option<Instant>,
}

impl Bus {
    /// An ordered publisher to `bavard.net`: payloads are pipelined (up to
    /// 256 unacknowledged) and their acks awaited in order. A failed publish
    /// or ack resends it, with the same `Nats-Msg-Id` (`<node>-<counter>`)
    /// so JetStream drops duplicates, and everything after it in flight,
    /// until it succeeds or `give_up` has passed since the failure; then
    /// `on_error` is told and the next payloads go on.
    ///
    /// Order holds when what the stream stored of the window is a prefix of
    /// it, as when a connection or a server is lost: the resent ones that
    /// were stored are dropped as duplicates, the others follow in order. If
    /// JetStream stored a later one but lost an earlier one (a leader lost
    /// mid-window), the earlier one lands after it: that is detected from the
    /// acks' sequences and told to `on_error` too.
    pub fn publisher(
        &self,
        give_up: Duration,
        on_error: Box<dyn Fn(String) + Send + Sync>,
    ) -> Publisher {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(self.clone(), rx, give_up, on_error));
        Publisher { tx }
    }

    fn next_msg_id(&self) -> String {
        let n = self.inner.msg_ids.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.inner.cfg.node)
    }
}

async fn send(bus: &Bus, id: &str, payload: Bytes) -> Result<AckFuture, PublishError> {
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
    let ack = bus
        .inner
        .js
        .publish_with_headers(SUBJECT, headers, payload)
        .await?;
    Ok(ack.into_future())
}

/// After a failure: everything in flight is resent (after [`BACKOFF`]), and
/// what has been failing for `give_up` at the front is dropped.
fn failed(
    window: &mut VecDeque<Item>,
    give_up: Duration,
    on_error: &(dyn Fn(String) + Send + Sync),
    why: &str,
) -> Instant {
    let now = Instant::now();
    for item in window.iter_mut() {
        item.ack = None;
        item.deadline.get_or_insert(now + give_up);
    }
    while window
        .front()
        .is_some_and(|i| i.deadline.is_some_and(|d| d <= now))
    {
        let item = window.pop_front().expect("a front");
        on_error(format!(
            "gave up publishing {} ({} bytes) after {give_up:?}: {why}",
            item.id,
            item.payload.len()
        ));
    }
    now + BACKOFF
}

async fn run(
    bus: Bus,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    give_up: Duration,
    on_error: Box<dyn Fn(String) + Send + Sync>,
) {
    let mut window: VecDeque<Item> = VecDeque::new();
    let mut closed = false;
    // While set, nothing is (re)sent before it.
    let mut retry_at: Option<Instant> = None;
    let mut last_seq = 0u64;
    loop {
        if closed && window.is_empty() {
            return;
        }
        if retry_at.is_none_or(|t| Instant::now() >= t) {
            retry_at = None;
            // The unsent ones are a suffix of the window: sent in order.
            let mut err = None;
            for item in window.iter_mut().filter(|i| i.ack.is_none()) {
                let (id, payload) = (item.id.clone(), item.payload.clone());
                match send(&bus, &id, payload).await {
                    Ok(ack) => item.ack = Some(ack),
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = err {
                if e.kind() == PublishErrorKind::MaxPayloadExceeded {
                    // Never going to fit: drop it at once.
                    if let Some(i) = window.iter().position(|i| i.ack.is_none()) {
                        let item = window.remove(i).expect("an item");
                        on_error(format!("dropped {}: {e}", item.id));
                    }
                } else {
                    retry_at = Some(failed(&mut window, give_up, &*on_error, &e.to_string()));
                }
                continue;
            }
        }
        let room = !closed && window.len() < WINDOW;
        let retry = async {
            match retry_at {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            r = async {
                match window.front_mut().and_then(|i| i.ack.as_mut()) {
                    Some(ack) => ack.await,
                    None => std::future::pending().await,
                }
            } => match r {
                Ok(ack) => {
                    let item = window.pop_front().expect("a front");
                    if ack.sequence <= last_seq {
                        on_error(format!(
                            "{} stored at {} after {last_seq}: out of order",
                            item.id, ack.sequence
                        ));
                    }
                    last_seq = last_seq.max(ack.sequence);
                }
                Err(e) => {
                    tracing::debug!("publish ack failed: {e}; resending");
                    retry_at = Some(failed(&mut window, give_up, &*on_error, &e.to_string()));
                }
            },
            m = rx.recv(), if room => match m {
                Some(payload) => window.push_back(Item {
                    id: bus.next_msg_id(),
                    payload,
                    ack: None,
                    deadline: None,
                }),
                None => closed = true,
            },
            () = retry => {}
        }
    }
}
