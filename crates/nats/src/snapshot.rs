//! Snapshots and history on request: a node joining a running network asks
//! any live node for the network's state instead of replaying the whole
//! stream, and for the history it lacks.
//!
//! An answer may be larger than the servers' `max_payload` (1 MiB by
//! default), so it travels in chunks, each with a `Bavard-Chunk: <i>/<n>`
//! header, to the requester's inbox. The servers answer in a queue group:
//! one node answers each request. Core NATS keeps one publisher's messages in
//! order to one subscriber, so the chunks arrive in order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use async_nats::{HeaderMap, StatusCode};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use crate::Bus;

pub const SNAPSHOT_SUBJECT: &str = "bavard.snapshot";
const SNAPSHOT_QUEUE: &str = "bavard-snapshot";
/// Where a joining node asks for the history it lacks (see
/// [`Bus::serve_history`]).
pub const HISTORY_SUBJECT: &str = "bavard.history";
const HISTORY_QUEUE: &str = "bavard-history";
const CHUNK_HEADER: &str = "Bavard-Chunk";
/// Room left in a message for its headers.
const HEADER_ROOM: usize = 1024;

/// Answers a request's payload; `None` leaves it unanswered.
pub type Answer = Arc<dyn Fn(Bytes) -> BoxFuture<'static, Option<Bytes>> + Send + Sync>;

impl Bus {
    /// Serves snapshot requests on `bavard.snapshot`, each answered with
    /// `make` (which may copy a large state: better off the workers).
    pub fn serve_snapshots(&self, make: Answer) {
        serve(
            self.client().clone(),
            SNAPSHOT_SUBJECT,
            SNAPSHOT_QUEUE,
            make,
        );
    }

    /// Serves history requests on `bavard.history` with `answer`.
    pub fn serve_history(&self, answer: Answer) {
        serve(
            self.client().clone(),
            HISTORY_SUBJECT,
            HISTORY_QUEUE,
            answer,
        );
    }

    /// Asks any live node for a snapshot: `Ok(None)` when no node serves
    /// them, `Err` when the answer fails or does not come within `timeout`.
    pub async fn request_snapshot(&self, timeout: Duration) -> anyhow::Result<Option<Bytes>> {
        request(self.client(), SNAPSHOT_SUBJECT, Bytes::new(), timeout)
            .await
            .context("asking for a snapshot")
    }

    /// Asks any live node that serves history: as for snapshots.
    pub async fn request_history(
        &self,
        ask: Bytes,
        timeout: Duration,
    ) -> anyhow::Result<Option<Bytes>> {
        request(self.client(), HISTORY_SUBJECT, ask, timeout)
            .await
            .context("asking for history")
    }
}

/// Answers the requests of `subject` in queue group `queue` (one node
/// answers each), in chunks.
fn serve(client: async_nats::Client, subject: &'static str, queue: &'static str, answer: Answer) {
    tokio::spawn(async move {
        let mut sub = match client.queue_subscribe(subject, queue.to_string()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(subject, "serving requests: {e}");
                return;
            }
        };
        while let Some(req) = sub.next().await {
            let Some(reply) = req.reply else { continue };
            let answer = answer.clone();
            let client = client.clone();
            tokio::spawn(async move {
                let Some(whole) = answer(req.payload).await else {
                    return;
                };
                let chunk = (client.server_info().max_payload.max(2 * HEADER_ROOM)) - HEADER_ROOM;
                let n = whole.len().div_ceil(chunk).max(1);
                for i in 0..n {
                    let part = whole.slice(i * chunk..((i + 1) * chunk).min(whole.len()));
                    let mut headers = HeaderMap::new();
                    headers.insert(CHUNK_HEADER, format!("{}/{n}", i + 1).as_str());
                    if let Err(e) = client
                        .publish_with_headers(reply.clone(), headers, part)
                        .await
                    {
                        tracing::warn!(subject, "answering a request: {e}");
                        return;
                    }
                }
                let _ = client.flush().await;
            });
        }
    });
}

/// Sends `payload` to `subject` and gathers the chunks of the answer.
async fn request(
    client: &async_nats::Client,
    subject: &'static str,
    payload: Bytes,
    timeout: Duration,
) -> anyhow::Result<Option<Bytes>> {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await?;
    client.publish_with_reply(subject, inbox, payload).await?;
    let collect = async {
        let mut buf = BytesMut::new();
        let mut next = 1usize;
        while let Some(msg) = sub.next().await {
            if msg.status == Some(StatusCode::NO_RESPONDERS) {
                return Ok(None);
            }
            let (i, n) = msg
                .headers
                .as_ref()
                .and_then(|h| h.get(CHUNK_HEADER))
                .and_then(|v| parse_chunk(v.as_str()))
                .ok_or_else(|| anyhow!("a chunk without its number"))?;
            if i != next {
                bail!("chunk {i}/{n} where {next} was due");
            }
            buf.extend_from_slice(&msg.payload);
            if i == n {
                return Ok(Some(buf.freeze()));
            }
            next += 1;
        }
        bail!("the connection closed while an answer came")
    };
    tokio::time::timeout(timeout, collect)
        .await
        .map_err(|_| anyhow!("no answer within {timeout:?}"))?
}

fn parse_chunk(v: &str) -> Option<(usize, usize)> {
    let (i, n) = v.split_once('/')?;
    let (i, n) = (i.parse().ok()?, n.parse().ok()?);
    (1..=n).contains(&i).then_some((i, n))
}

#[cfg(test)]
mod tests {
    use super::parse_chunk;

    #[test]
    fn chunk_numbers() {
        assert_eq!(parse_chunk("1/1"), Some((1, 1)));
        assert_eq!(parse_chunk("2/3"), Some((2, 3)));
        assert_eq!(parse_chunk("0/3"), None);
        assert_eq!(parse_chunk("4/3"), None);
        assert_eq!(parse_chunk("x"), None);
    }
}
