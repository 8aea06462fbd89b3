//! The hub's side of a cluster: what a call produced waits for its place in
//! the shared log before local users see it, so that every member of a
//! channel, on every node, sees that channel's events in the log's order.
//!
//! After each call the network names the records other nodes must learn
//! ([`Network::records_for`]); they go to the log as one batch, and the
//! call's outputs (its notifications and the caller's replies, in the order
//! they happened) wait in [`Link::pending`] until the batch comes back from
//! the log. Outputs of calls that told nobody else wait behind the batches
//! queued before them, so a connection's replies keep their order. Batches
//! of other nodes are replayed and delivered as they arrive.

use std::collections::VecDeque;
use std::sync::Arc;

use bavard_core::state::replica::{Record, Told, direct_to};
use bavard_core::{Network, Output};

use crate::delivery::Peer;

/// One batch as the log carries it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Batch {
    /// The node that logged it, and which run of it (the first connection
    /// serial of that run: a restarted node does not take the batches of
    /// its previous run for its own).
    pub node: u16,
    pub incarnation: u64,
    /// Its number among that node's batches, from 1.
    pub serial: u64,
    pub records: Vec<Record>,
}

impl Batch {
    pub fn encode(&self) -> bytes::Bytes {
        serde_json::to_vec(self)
            .expect("records always serialise")
            .into()
    }

    pub fn decode(bytes: &[u8]) -> Result<Batch, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// A call's outputs waiting for their turn.
pub struct Pending {
    /// The batch they wait for, or none: they wait only for those before.
    pub batch: Option<u64>,
    pub me: Option<Arc<Peer>>,
    pub items: Vec<Output>,
}

/// What the hub keeps of its cluster.
pub struct Link {
    /// This node's number, and its run.
    pub local: u16,
    incarnation: u64,
    told: Told,
    pub pending: VecDeque<Pending>,
    next: u64,
    send: Box<dyn Fn(bytes::Bytes) + Send + Sync>,
    /// Sends a batch straight to one node (see [`direct_to`]).
    direct: Box<dyn Fn(u16, bytes::Bytes) + Send + Sync>,
    /// The last log sequence applied (what a snapshot is taken at).
    pub applied: u64,
}

impl Link {
    /// A link for node `local` that logs batches through `send`, which
    /// must keep their order, and sends straight to a node through `direct`.
    pub fn new(
        local: u16,
        incarnation: u64,
        send: Box<dyn Fn(bytes::Bytes) + Send + Sync>,
        direct: Box<dyn Fn(u16, bytes::Bytes) + Send + Sync>,
    ) -> Link {
        Link {
            local,
            incarnation,
            told: Told::default(),
            pending: VecDeque::new(),
            next: 1,
            send,
            direct,
            applied: 0,
        }
    }

    /// Takes a call's outputs: logs what others must learn; returns the
    /// outputs to deliver now, if nothing before them waits.
    pub fn after_call(
        &mut self,
        net: &Network,
        me: Option<&Arc<Peer>>,
        mut items: Vec<Output>,
    ) -> Option<Vec<Output>> {
        let records = net.records_for(self.local, me.map(|p| p.id), &mut self.told, &items);
        // Private messages to users of other nodes go straight there, now;
        // every node's history keeps them, which nothing here waits for.
        let mut kept = Vec::new();
        for o in &items {
            let Output::Note(n) = o else { continue };
            if let Some(node) = direct_to(n, self.local) {
                let b = Batch {
                    node: self.local,
                    incarnation: self.incarnation,
                    serial: 0,
                    records: vec![Record::Note(n.clone())],
                };
                (self.direct)(node, b.encode());
            }
            kept.extend(net.kept_elsewhere(n));
        }
        if !kept.is_empty() {
            self.log_batch(kept);
        }
        // A connection closing on its last words (QUIT, an error) gets them
        // now, if nothing of its own waits before them: its driver ends
        // the connection once its queue is written, and would not wait for
        // the log. What others are told still waits for its turn.
        let closing = items.iter().any(|o| matches!(o, Output::Final(_)));
        if closing
            && let Some(p) = me
            && !self
                .pending
                .iter()
                .any(|w| w.me.as_ref().is_some_and(|m| m.id == p.id))
        {
            let (now, later): (Vec<Output>, Vec<Output>) = items
                .into_iter()
                .partition(|o| !matches!(o, Output::Note(_)));
            items = later;
            if let Some(more) = self.after_records(records, None, items) {
                return Some(now.into_iter().chain(more).collect());
            }
            return Some(now);
        }
        self.after_records(records, me, items)
    }

    /// Logs `records` (made by this node), and queues `items` behind them.
    pub fn after_records(
        &mut self,
        records: Vec<Record>,
        me: Option<&Arc<Peer>>,
        items: Vec<Output>,
    ) -> Option<Vec<Output>> {
        let batch = (!records.is_empty()).then(|| self.log_batch(records));
        if batch.is_none() && self.pending.is_empty() {
            return Some(items);
        }
        if batch.is_none() && items.is_empty() {
            return None;
        }
        self.pending.push_back(Pending {
            batch,
            me: me.cloned(),
            items,
        });
        None
    }

    /// Sends `records` to the log as this node's next batch: its serial.
    fn log_batch(&mut self, records: Vec<Record>) -> u64 {
        let serial = self.next;
        self.next += 1;
        let b = Batch {
            node: self.local,
            incarnation: self.incarnation,
            serial,
            records,
        };
        (self.send)(b.encode());
        serial
    }

    /// The outputs whose turn came now that this node's batch `serial`
    /// came back from the log (`None`: only those that waited on nothing).
    pub fn ready(&mut self, serial: Option<u64>) -> Vec<Pending> {
        let mut out = Vec::new();
        while let Some(p) = self.pending.front() {
            let due = match (p.batch, serial) {
                (None, _) => true,
                (Some(b), Some(s)) => b <= s,
                (Some(_), None) => false,
            };
            if !due {
                break;
            }
            out.extend(self.pending.pop_front());
        }
        out
    }

    /// Everything that still waits, for a node leaving the cluster.
    pub fn drain(&mut self) -> Vec<Pending> {
        self.pending.drain(..).collect()
    }
}
