//! Leases: how the nodes learn that one of them died, to free its nicks.
//!
//! Each node puts `lease.<node>` = its number in `bavard_nodes` every
//! `lease / 8`; the others declare it down once they have not seen a put for
//! `lease`, by their own monotonic clocks (no clock is compared across
//! machines). A node that cannot renew fences itself at `3/4 lease` after
//! its last put that succeeded, a quarter of the lease before the others
//! can declare it down, so a node that is declared down has already stopped
//! serving. A JetStream leader election (seconds, when a NATS server dies)
//! fails renewals meanwhile: it must end within `3/4 lease` less a period,
//! 12.5 s with the default lease of 20 s.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::Bus;

pub(crate) const LEASE_PREFIX: &str = "lease.";
/// How often the watcher looks for expired leases.
const TICK: Duration = Duration::from_millis(250);
/// How soon a failed renewal is tried again.
const RETRY: Duration = Duration::from_millis(250);

pub(crate) fn lease_key(node: &str) -> String {
    format!("{LEASE_PREFIX}{node}")
}

/// Marks a node that has caught up with the network and answers snapshot
/// requests.
pub(crate) const READY_PREFIX: &str = "ready.";

pub(crate) fn ready_key(node: &str) -> String {
    format!("{READY_PREFIX}{node}")
}

/// A node whose lease expired: its connections are gone, its nicks are to
/// be freed ([`Bus::release_node`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeDown {
    pub node: String,
    pub number: u16,
}

/// Keeps the lease task of [`Bus::start_lease`] alive: dropping it stops
/// renewing (the others then declare this node down, as for a crash; the
/// lease key is left for them to expire).
#[must_use = "dropping the guard stops renewing the lease"]
pub struct LeaseGuard {
    task: JoinHandle<()>,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the watcher knows of another node's lease.
struct Seen {
    number: u16,
    revision: u64,
    at: Instant,
}

impl Bus {
    /// Keeps this node's lease: puts `lease.<node>` = `<number>` every
    /// `lease / 8`, and [`RETRY`] after a put that failed. The receiver
    /// turns `true` (fenced) once no put issued in the last `3/4 lease` has
    /// succeeded: the node must stop serving, since
    /// the others declare it down at `lease`. Fencing is for good: the task
    /// stops renewing then, as the others may already have freed this
    /// node's nicks; the node rejoins by starting anew (a new [`Bus`]).
    pub fn start_lease(&self) -> (watch::Receiver<bool>, LeaseGuard) {
        let (tx, rx) = watch::channel(false);
        let kv = self.inner.nodes.clone();
        let key = lease_key(self.node());
        let value = Bytes::from(self.number().to_string());
        let period = self.inner.cfg.lease / 8;
        let fence_after = self.inner.cfg.lease * 3 / 4;
        let task = tokio::spawn(async move {
            // Measured from when the put was issued: the others saw it later,
            // so they declare us down after we fence.
            let mut last_ok = Instant::now();
            let mut next_put = Instant::now();
            let mut put: Option<(Instant, JoinHandle<bool>)> = None;
            loop {
                let idle = put.is_none();
                tokio::select! {
                    r = async {
                        match put.as_mut() {
                            Some((_, task)) => task.await,
                            None => std::future::pending().await,
                        }
                    } => {
                        let (issued, _) = put.take().expect("a put");
                        if r.unwrap_or(false) {
                            last_ok = last_ok.max(issued);
                        } else {
                            // A stream electing a leader answers "no stream"
                            // for seconds: retry soon, not a period later, so
                            // one failure does not use up the fencing margin.
                            next_put = next_put.min(Instant::now() + RETRY.min(period));
                        }
                    }
                    () = tokio::time::sleep_until(next_put.into()), if idle => {
                        let (kv, key, value) = (kv.clone(), key.clone(), value.clone());
                        let issued = Instant::now();
                        put = Some((issued, tokio::spawn(async move {
                            match tokio::time::timeout(fence_after, kv.put(&key, value)).await {
                                Ok(Ok(_)) => true,
                                Ok(Err(e)) => {
                                    tracing::warn!("renewing the lease: {e}");
                                    false
                                }
                                Err(_) => {
                                    tracing::warn!("renewing the lease: timed out");
                                    false
                                }
                            }
                        })));
                        next_put = issued + period;
                    }
                    () = tokio::time::sleep_until((last_ok + fence_after).into()) => {
                        tracing::error!("lease not renewed for {fence_after:?}: fenced");
                        let _ = tx.send(true);
                        if let Some((_, task)) = put {
                            task.abort();
                        }
                        return;
                    }
                }
            }
        });
        (rx, LeaseGuard { task })
    }

    /// Watches the other nodes' leases: yields a [`NodeDown`] once a node's
    /// lease has not been renewed for `lease`, measured by the local
    /// monotonic clock from the last update seen (from now for those
    /// present at start). It then deletes that lease (revision-checked, so
    /// a node that came back keeps its new one) and forgets the node, which
    /// re-appears with its next put. Never yields for this node.
    ///
    /// It declares nothing while it may be the one cut off: when the
    /// connection is down every clock restarts, and before yielding it reads
    /// the lease directly, since a watch that stalled (its consumer was on a
    /// server that died) would otherwise make every node look dead.
    /// The task ends when the receiver is dropped.
    pub fn watch_nodes(&self) -> mpsc::Receiver<NodeDown> {
        let (tx, rx) = mpsc::channel(64);
        let bus = self.clone();
        tokio::spawn(async move {
            let kv = bus.inner.nodes.clone();
            let lease = bus.inner.cfg.lease;
            let ours = bus.node().to_string();
            let mut seen: HashMap<String, Seen> = HashMap::new();
            let mut watch: Option<kv::Watch> = None;
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                if tx.is_closed() {
                    return;
                }
                if watch.is_none() {
                    match kv.watch_with_history(format!("{LEASE_PREFIX}*")).await {
                        Ok(w) => watch = Some(w),
                        Err(e) => tracing::warn!("watching the leases: {e}"),
                    }
                    restart_clocks(&mut seen);
                }
                tokio::select! {
                    e = async {
                        match watch.as_mut() {
                            Some(w) => w.next().await,
                            None => std::future::pending().await,
                        }
                    } => match e {
                        Some(Ok(entry)) => note(&mut seen, &ours, &entry),
                        Some(Err(e)) => {
                            tracing::warn!("watching the leases: {e}");
                            watch = None;
                        }
                        None => watch = None,
                    },
                    _ = tick.tick() => {
                        if bus.client().connection_state() != State::Connected {
                            restart_clocks(&mut seen);
                            continue;
                        }
                        let expired: Vec<String> = seen
                            .iter()
                            .filter(|(_, s)| s.at.elapsed() >= lease)
                            .map(|(n, _)| n.clone())
                            .collect();
                        for node in expired {
                            if !confirm_down(&kv, &node, &mut seen, &mut watch).await {
                                continue;
                            }
                            let s = seen.remove(&node).expect("seen");
                            let down = NodeDown { node: node.clone(), number: s.number };
                            tracing::info!(node, number = s.number, "node down: lease expired");
                            if tx.send(down).await.is_err() {
                                return;
                            }
                            if let Err(e) = kv
                                .delete_expect_revision(lease_key(&node), Some(s.revision))
                                .await
                            {
                                tracing::debug!(node, "deleting an expired lease: {e}");
                            }
                            // It serves nobody any more (see `Bus::set_ready`).
                            if let Err(e) = kv.delete(ready_key(&node)).await {
                                tracing::debug!(node, "deleting a lost node's ready mark: {e}");
                            }
                        }
                    }
                }
            }
        });
        rx
    }
}

fn restart_clocks(seen: &mut HashMap<String, Seen>) {
    let now = Instant::now();
    for s in seen.values_mut() {
        s.at = now;
    }
}

/// Takes in an update of the leases.
fn note(seen: &mut HashMap<String, Seen>, ours: &str, entry: &kv::Entry) {
    let Some(node) = entry.key.strip_prefix(LEASE_PREFIX) else {
        return;
    };
    if node == ours {
        return;
    }
    match entry.operation {
        kv::Operation::Put => {
            let Some(number) = std::str::from_utf8(&entry.value)
                .ok()
                .and_then(|v| v.parse().ok())
            else {
                tracing::warn!(node, "a lease whose value is not a node number");
                return;
            };
            seen.insert(
                node.to_string(),
                Seen {
                    number,
                    revision: entry.revision,
                    at: Instant::now(),
                },
            );
        }
        // Declared down by another watcher (or us).
        kv::Operation::Delete | kv::Operation::Purge => {
            seen.remove(node);
        }
    }
}

/// Whether `node`'s lease really is the one last seen: a read of the key
/// itself. When it moved on, the watch had stalled: it is made anew and
/// every clock restarts. When the read fails, nothing is declared now.
async fn confirm_down(
    kv: &kv::Store,
    node: &str,
    seen: &mut HashMap<String, Seen>,
    watch: &mut Option<kv::Watch>,
) -> bool {
    let Some(s) = seen.get(node) else {
        return false;
    };
    match kv.entry(lease_key(node)).await {
        Ok(Some(e)) if e.revision == s.revision => true,
        // Deleted meanwhile: declared down by another watcher; it is down
        // all the same, and releasing a node twice is harmless.
        Ok(None) => true,
        Ok(Some(e)) if e.operation != kv::Operation::Put => true,
        Ok(Some(_)) => {
            tracing::warn!("the lease watch fell behind; watching anew");
            *watch = None;
            restart_clocks(seen);
            false
        }
        Err(e) => {
            tracing::warn!(node, "reading a lease: {e}");
            restart_clocks(seen);
            false
        }
    }
}
