//! Messages straight to one node, on core NATS (not the stream): what
//! only that node's users may see, such as a private message, goes to it
//! without being stored and replicated three times.
//!
//! Core NATS delivers at most once and keeps one publisher's order on one
//! connection; a message to a node that is down is lost with it (its users
//! are gone too).

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::Bus;

/// The subject of node `number`'s direct messages.
fn subject(number: u16) -> String {
    format!("bavard.node.{number}")
}

/// Sends direct messages in the order given, from one task.
#[derive(Clone)]
pub struct DirectSender {
    tx: mpsc::UnboundedSender<(u16, Bytes)>,
}

impl DirectSender {
    /// Queues `payload` for node `number`; never blocks.
    pub fn send(&self, number: u16, payload: Bytes) {
        let _ = self.tx.send((number, payload));
    }
}

impl Bus {
    /// A sender of direct messages (its task ends when every clone is
    /// dropped).
    pub fn direct_sender(&self) -> DirectSender {
        let (tx, mut rx) = mpsc::unbounded_channel::<(u16, Bytes)>();
        let client = self.client().clone();
        tokio::spawn(async move {
            while let Some((number, payload)) = rx.recv().await {
                if let Err(e) = client.publish(subject(number), payload).await {
                    tracing::warn!(number, "a direct message was not sent: {e}");
                }
            }
        });
        DirectSender { tx }
    }

    /// This node's direct messages, as they come.
    pub async fn direct_messages(
        &self,
    ) -> anyhow::Result<std::pin::Pin<Box<dyn futures_util::Stream<Item = Bytes> + Send>>> {
        let sub = self.client().subscribe(subject(self.number())).await?;
        Ok(Box::pin(sub.map(|m| m.payload)))
    }
}
