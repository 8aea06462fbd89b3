//! Snapshots on request: a node joining a running network asks any live
//! node for the network's state instead of replaying the whole stream.
//!
//! A snapshot may be larger than the servers' `max_payload` (1 MiB by
//! default), so it travels in chunks, each with a `Bavard-Chunk: <i>/<n>`
//! header, to the requester's inbox. The servers answer in a queue group:
//! one node makes each snapshot. Core NATS keeps one publisher's messages in
//! order to one subscriber, so the chunks arrive in order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use async_nats::{HeaderMap, StatusCode};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::Bus;

pub const SNAPSHOT_SUBJECT: &str = "bavard.snapshot";
const QUEUE: &str = "bavard-snapshot";
const CHUNK_HEADER: &str = "Bavard-Chunk";
/// Room left in a message for its headers.
const HEADER_ROOM: usize = 1024;

impl Bus {
    /// Serves snapshot requests on `bavard.snapshot`: each is answered with
    /// `make()`, run on a blocking thread (it may copy a large state).
    pub fn serve_snapshots(&self, make: Arc<dyn Fn() -> Bytes + Send + Sync>) {
        let client = self.client().clone();
        tokio::spawn(async move {
            let mut sub = match client
                .queue_subscribe(SNAPSHOT_SUBJECT, QUEUE.to_string())
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("serving snapshots: {e}");
                    return;
                }
            };
            while let Some(req) = sub.next().await {
                let Some(reply) = req.reply else { continue };
                let make = make.clone();
                let client = client.clone();
                tokio::spawn(async move {
                    let snapshot = match tokio::task::spawn_blocking(move || make()).await {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::error!("making a snapshot: {e}");
                            return;
                        }
                    };
                    let chunk =
                        (client.server_info().max_payload.max(2 * HEADER_ROOM)) - HEADER_ROOM;
                    let n = snapshot.len().div_ceil(chunk).max(1);
                    for i in 0..n {
                        let part = snapshot.slice(i * chunk..((i + 1) * chunk).min(snapshot.len()));
                        let mut headers = HeaderMap::new();
                        headers.insert(CHUNK_HEADER, format!("{}/{n}", i + 1).as_str());
                        if let Err(e) = client
                            .publish_with_headers(reply.clone(), headers, part)
                            .await
                        {
                            tracing::warn!("sending a snapshot: {e}");
                            return;
                        }
                    }
                    let _ = client.flush().await;
                });
            }
        });
    }

    /// Asks any live node for a snapshot: `Ok(None)` when no node serves
    /// them, `Err` when the answer fails or does not come within `timeout`.
    pub async fn request_snapshot(&self, timeout: Duration) -> anyhow::Result<Option<Bytes>> {
        let client = self.client();
        let inbox = client.new_inbox();
        let mut sub = client
            .subscribe(inbox.clone())
            .await
            .context("asking for a snapshot")?;
        client
            .publish_with_reply(SNAPSHOT_SUBJECT, inbox, Bytes::new())
            .await
            .context("asking for a snapshot")?;
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
                    .ok_or_else(|| anyhow!("a snapshot chunk without its number"))?;
                if i != next {
                    bail!("snapshot chunk {i}/{n} where {next} was due");
                }
                buf.extend_from_slice(&msg.payload);
                if i == n {
                    return Ok(Some(buf.freeze()));
                }
                next += 1;
            }
            bail!("the connection closed while a snapshot came")
        };
        tokio::time::timeout(timeout, collect)
            .await
            .map_err(|_| anyhow!("no snapshot within {timeout:?}"))?
    }
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
