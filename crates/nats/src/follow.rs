//! Following the stream: every message from a sequence on, in order, with
//! any sequence that went missing reported rather than skipped silently.

use std::pin::Pin;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::stream;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::Bus;

/// The ordered consumer's pull expiry, which also sets its idle heartbeat
/// (half of it): a consumer lost with its server is noticed after two
/// missed heartbeats, about this long, instead of the default 30 s.
const EXPIRES: Duration = Duration::from_secs(1);
/// The pause before making the consumer anew after it failed.
const BACKOFF: Duration = Duration::from_millis(200);
/// How long the consumer may be quiet before the stream is asked whether
/// something is due (see `Follower::stalled`).
const QUIET: Duration = Duration::from_secs(2);

/// The stream's messages with their sequences.
pub type Follow = Pin<Box<dyn Stream<Item = anyhow::Result<(u64, Bytes)>> + Send>>;

struct Follower {
    stream: stream::Stream,
    /// The sequence due next.
    expected: u64,
    msgs: Option<pull::Ordered>,
    /// The message found after a gap, yielded after the gap's error.
    after_gap: Option<(u64, Bytes)>,
}

impl Bus {
    /// Follows the stream from sequence `from` (inclusive; 0 is 1) in order,
    /// forever. Sequences are checked to be consecutive: a gap (messages
    /// aged out before they were read, or lost) yields an `Err` describing
    /// it, then the stream goes on after it. The ephemeral ordered consumer
    /// underneath is made anew from the next sequence due whenever it fails
    /// (its server died, the connection moved): such failures are logged,
    /// not yielded. Fails at once only if the first consumer cannot be
    /// made.
    pub async fn follow(&self, from: u64) -> anyhow::Result<Follow> {
        let from = from.max(1);
        let stream = self.inner.stream.clone();
        let first = open(&stream, from).await?;
        let follower = Follower {
            stream,
            expected: from,
            msgs: Some(first),
            after_gap: None,
        };
        Ok(Box::pin(futures_util::stream::unfold(
            follower,
            |mut f| async move {
                let item = f.next().await;
                Some((item, f))
            },
        )))
    }
}

async fn open(stream: &stream::Stream, from: u64) -> anyhow::Result<pull::Ordered> {
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            max_expires: EXPIRES,
            ..Default::default()
        })
        .await
        .context("creating a consumer of the stream")?;
    consumer
        .messages()
        .await
        .context("reading the stream's consumer")
}

impl Follower {
    async fn next(&mut self) -> anyhow::Result<(u64, Bytes)> {
        if let Some(item) = self.after_gap.take() {
            return Ok(item);
        }
        loop {
            let Some(msgs) = self.msgs.as_mut() else {
                match open(&self.stream, self.expected).await {
                    Ok(m) => self.msgs = Some(m),
                    Err(e) => {
                        tracing::warn!(from = self.expected, "following the stream: {e:#}");
                        tokio::time::sleep(BACKOFF).await;
                    }
                }
                continue;
            };
            let next = match tokio::time::timeout(QUIET, msgs.next()).await {
                Ok(next) => next,
                Err(_) => {
                    if stalled(&self.stream, self.expected).await {
                        self.msgs = None;
                    }
                    continue;
                }
            };
            let msg = match next {
                Some(Ok(msg)) => msg,
                Some(Err(e)) => {
                    tracing::warn!(from = self.expected, "following the stream: {e}; again");
                    self.msgs = None;
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
                None => {
                    self.msgs = None;
                    continue;
                }
            };
            let seq = match msg.info() {
                Ok(info) => info.stream_sequence,
                Err(e) => {
                    tracing::warn!("a stream message without its metadata: {e}");
                    self.msgs = None;
                    continue;
                }
            };
            if seq < self.expected {
                // The library made its consumer anew from the stream's start
                // (it does so when the first one failed before delivering
                // anything): make ours from where we are instead.
                tracing::debug!(seq, expected = self.expected, "consumer went back");
                self.msgs = None;
                continue;
            }
            let payload = msg.message.payload.clone();
            if seq == self.expected {
                self.expected += 1;
                return Ok((seq, payload));
            }
            let gap = anyhow!(
                "stream gap: sequences {}..={} missing (next is {seq})",
                self.expected,
                seq - 1
            );
            self.expected = seq + 1;
            self.after_gap = Some((seq, payload));
            return Err(gap);
        }
    }
}

/// Whether a consumer that has been quiet for [`QUIET`] is stuck: the
/// stream has what is due next, or cannot say (its leader is being
/// elected). The library makes a lost consumer anew by itself, but
/// backs off up to 10 s between tries, which would hold the log back
/// long after JetStream has a new leader; making it anew here retries
/// every [`BACKOFF`].
async fn stalled(stream: &stream::Stream, expected: u64) -> bool {
    match tokio::time::timeout(QUIET, stream.get_info()).await {
        Ok(Ok(info)) if info.state.last_sequence < expected => false,
        Ok(Ok(info)) => {
            tracing::warn!(
                expected = expected,
                last = info.state.last_sequence,
                "the stream's consumer is stuck; making it anew"
            );
            true
        }
        Ok(Err(e)) => {
            tracing::debug!("the stream cannot say how far it is: {e}");
            true
        }
        Err(_) => true,
    }
}
