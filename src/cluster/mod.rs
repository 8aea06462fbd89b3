//! Many nodes, one network: the nodes of a cluster share one ordered log
//! (a NATS JetStream stream) and a nick registry (a JetStream key-value
//! bucket), through `bavard-nats`.
//!
//! - A nick is claimed with a compare-and-set in the registry before the
//!   change that takes it applies: two nodes never both grant it.
//! - What a call changes that other nodes must know goes to the log as a
//!   batch of records ([`link`]); every node, the origin included, shows
//!   channel events in the log's order.
//! - Each node renews a lease; a node whose lease lapses is declared gone
//!   by the others, which log its users' quit and free their nicks. A node
//!   that cannot renew its own lease for 3/4 of it fences itself: it tells
//!   its clients and drops them rather than diverge, and exits.
//! - A node that starts while others run takes a snapshot of the network
//!   from one of them, and the history it lacks ([`history`]), and follows
//!   the log from where the snapshot was taken.
//!
//! `docs/cluster.md` has the design, the bounds and how to run it.

pub mod history;
pub mod link;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bavard_core::state::replica::{Record, Snapshot};
use bavard_nats::{Bus, BusConfig};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;
use link::{Batch, Link};

/// `[cluster]`: the NATS servers and this node's name.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// NATS servers (any of them will do; the client moves between them).
    pub nats: Vec<String>,
    /// This node's name, unique in the network.
    pub node: String,
    /// Milliseconds a node may go without renewing its lease before the
    /// others count it gone (its users quit); it fences itself at 3/4 of
    /// it. 5/8 of it must outlast a JetStream leader election (up to 10 s
    /// seen with nats-server 2.9), or losing one NATS server fences every
    /// node.
    pub lease_ms: u64,
    /// Copies JetStream keeps of the log and the registry (at most the
    /// number of NATS servers).
    pub replicas: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nats: vec!["nats://127.0.0.1:4222".into()],
            node: String::new(),
            lease_ms: 20_000,
            replicas: 3,
        }
    }
}

impl ClusterConfig {
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.len() <= 32
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !name_ok(&self.node) {
            return Err("cluster.node must be 1 to 32 letters, digits, - or _".into());
        }
        if self.nats.is_empty() {
            return Err("cluster.nats must list at least one NATS server".into());
        }
        if !(500..=600_000).contains(&self.lease_ms) {
            return Err("cluster.lease_ms must be 500 to 600000".into());
        }
        if !(1..=5).contains(&self.replicas) {
            return Err("cluster.replicas must be 1 to 5".into());
        }
        Ok(())
    }

    fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
}

/// A snapshot as one node sends it to another.
#[derive(Serialize, Deserialize)]
struct Taken {
    /// The last log sequence it includes.
    seq: u64,
    snapshot: Snapshot,
}

/// How long a publish may keep failing before the node fences itself:
/// longer than a JetStream leader election (4 to 9 s in nats-server 2.9).
const PUBLISH_GIVE_UP: Duration = Duration::from_secs(20);

/// Connects to the cluster's NATS servers and takes a node number.
pub async fn connect(cfg: &ClusterConfig) -> anyhow::Result<Bus> {
    let bus = Bus::connect(BusConfig {
        urls: cfg.nats.clone(),
        node: cfg.node.clone(),
        replicas: cfg.replicas,
        lease: cfg.lease(),
    })
    .await
    .with_context(|| format!("cannot join the cluster through {}", cfg.nats.join(", ")))?;
    tracing::info!(
        node = bus.node(),
        number = bus.number(),
        "connected to the cluster"
    );
    Ok(bus)
}

/// A node's history, kept as the others keep theirs: its store, and how
/// many events a conversation keeps.
pub struct History {
    pub store: Arc<history::Synced>,
    pub keep: usize,
}

/// A node in its cluster; dropping it stops its lease (the others then
/// count the node gone).
pub struct Joined {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _lease: bavard_nats::LeaseGuard,
}

impl Joined {
    /// Waits (a few seconds at most) until what this node logged, its
    /// users' quits among them, is in the log.
    pub async fn close(self, hub: &Hub) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while hub.waiting() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Brings `hub` (whose node started at connection serial `first_serial`)
/// into the network: the state from a running node, the log from there,
/// the lease, and the watch over the other nodes. `fence` is cancelled when
/// the node loses the cluster.
pub async fn join(
    bus: Bus,
    hub: Arc<Hub>,
    first_serial: u64,
    fence: CancellationToken,
    history: Option<History>,
) -> anyhow::Result<Joined> {
    let number = bus.number();
    // The lease first: a node that restarts renews at once the lease of its
    // previous run, which the others would otherwise count as lapsed (and
    // declare this new run gone) while it catches up.
    let (mut fenced, lease) = bus.start_lease();
    bus.set_ready(false).await?;
    // Watching next: the leases of nodes that died while none ran are
    // declared gone (and removed) after a lease, so that catching up does
    // not wait forever for them to answer.
    let mut downs = bus.watch_nodes();
    let from = catch_up(&bus, &hub, bus.lease()).await?;
    // What was said while this node was away, before the log goes on.
    // Chat matters more than a complete history: a node that cannot get
    // it serves with its own, and says so.
    if let Some(h) = &history
        && let Err(e) = history::backfill(&bus, &h.store, h.keep, from.saturating_sub(1)).await
    {
        tracing::error!(
            error = %format!("{e:#}"),
            "history not taken from a running node: it lacks what was said meanwhile"
        );
    }
    let publisher = bus.publisher(PUBLISH_GIVE_UP, {
        let fence = fence.clone();
        Box::new(move |why| {
            tracing::error!(%why, "the cluster's log refused a write: fencing");
            fence.cancel();
        })
    });
    let direct = bus.direct_sender();
    let mut link = Link::new(
        number,
        first_serial,
        Box::new(move |b| publisher.send(b)),
        Box::new(move |node, b| direct.send(node, b)),
    );
    link.applied = from.saturating_sub(1);
    hub.link(link);
    // Users of an earlier run of this node, if it stopped without the
    // others noticing, quit now.
    hub.log(vec![Record::NodeDown {
        node: number,
        before: first_serial,
        reason: format!("{} restarted", bus.node()),
    }]);
    // And the nicks they held are free (nothing of this run holds one yet).
    match bus.release_node(number).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(nicks = n, "nicks of this node's previous run freed"),
        Err(e) => tracing::warn!(error = %e, "nicks of this node's previous run not freed"),
    }
    let mut tasks = vec![tokio::spawn(follow(
        bus.clone(),
        hub.clone(),
        from,
        first_serial,
        fence.clone(),
    ))];
    let mut direct = bus.direct_messages().await?;
    tasks.push(tokio::spawn({
        let hub = hub.clone();
        async move {
            while let Some(payload) = direct.next().await {
                match Batch::decode(&payload) {
                    Ok(batch) => hub.from_direct(&batch),
                    Err(e) => tracing::error!(error = %e, "unreadable direct message, dropped"),
                }
            }
        }
    }));
    bus.serve_snapshots(Arc::new({
        let hub = hub.clone();
        move |_| {
            let hub = hub.clone();
            // Off the workers: it copies the whole network.
            Box::pin(async move {
                let taken = tokio::task::spawn_blocking(move || {
                    let (seq, snapshot) = hub.snapshot();
                    serde_json::to_vec(&Taken { seq, snapshot })
                        .expect("snapshots always serialise")
                })
                .await
                .ok()?;
                Some(taken.into())
            })
        }
    }));
    tasks.push(tokio::spawn({
        let fence = fence.clone();
        async move {
            while fenced.changed().await.is_ok() {
                if *fenced.borrow() {
                    tracing::error!("cannot renew this node's lease: fencing");
                    fence.cancel();
                    return;
                }
            }
        }
    }));
    tasks.push(tokio::spawn({
        let (bus, hub) = (bus.clone(), hub.clone());
        async move {
            while let Some(d) = downs.recv().await {
                tracing::warn!(
                    node = d.node,
                    number = d.number,
                    "node lost: its users quit"
                );
                // Its nicks first: whoever sees its users quit may take
                // their nicks at once.
                match bus.release_node(d.number).await {
                    Ok(n) => tracing::info!(node = d.node, nicks = n, "nicks freed"),
                    Err(e) => tracing::error!(node = d.node, error = %e, "nicks not freed"),
                }
                // Only the run that died: ids are numbered from the time
                // a run started, and a run starting after now is not it.
                let before = bavard_core::ids::time_serial(crate::hub::now_millis());
                hub.log(vec![Record::NodeDown {
                    node: d.number,
                    before,
                    reason: format!("{} lost", d.node),
                }]);
            }
        }
    }));
    if let Some(h) = history {
        let hub = hub.clone();
        let applied = Arc::new(move || hub.applied());
        bus.serve_history(history::answer(h.store, applied));
    }
    bus.set_ready(true).await?;
    Ok(Joined {
        tasks,
        _lease: lease,
    })
}

/// Takes the network from a running node, if any; the log sequence to
/// follow from.
async fn catch_up(bus: &Bus, hub: &Hub, lease: Duration) -> anyhow::Result<u64> {
    let deadline = tokio::time::Instant::now() + lease + Duration::from_secs(15);
    loop {
        // Read before asking who runs: a node that becomes ready after
        // the question logs its users after this.
        let end = bus.last_seq().await?;
        if !bus.others_alive().await? {
            // Nobody runs: whatever the log holds is over, and no channel
            // exists any more.
            let freed = bus.forget_channels().await?;
            tracing::info!(freed, "first node of the network: starting empty");
            return Ok(end + 1);
        }
        match bus.request_snapshot(Duration::from_secs(3)).await {
            Ok(Some(bytes)) => {
                let taken: Taken =
                    serde_json::from_slice(&bytes).context("a node sent a bad snapshot")?;
                hub.restore(&taken.snapshot);
                tracing::info!(
                    seq = taken.seq,
                    users = taken.snapshot.users.len(),
                    channels = taken.snapshot.channels.len(),
                    "network taken from a running node"
                );
                return Ok(taken.seq + 1);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "snapshot request failed, retrying"),
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("other nodes hold leases but none sent the network's state");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Applies the log from `from` on, in order: a sequence seen again is
/// skipped, a gap makes it read again from the first one missing.
async fn follow(bus: Bus, hub: Arc<Hub>, from: u64, incarnation: u64, fence: CancellationToken) {
    let number = bus.number();
    let mut next = from;
    loop {
        let mut log = match bus.follow(next).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the cluster's log, retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
        };
        while let Some(item) = log.next().await {
            let (seq, payload) = match item {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the log again from {next}");
                    break;
                }
            };
            if seq < next {
                continue;
            }
            if seq > next {
                tracing::warn!(seq, next, "gap in the log: reading it again");
                break;
            }
            next = seq + 1;
            match Batch::decode(&payload) {
                Ok(batch) => {
                    let own = batch.node == number && batch.incarnation == incarnation;
                    hub.from_log(seq, &batch, own);
                }
                Err(e) => tracing::error!(seq, error = %e, "unreadable batch in the log, skipped"),
            }
        }
        if fence.is_cancelled() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn cluster_section_is_checked() {
        assert!(Config::parse("").unwrap().cluster.is_none());
        let c = Config::parse("[cluster]\nnode = \"n1\"\n").unwrap();
        let cl = c.cluster.unwrap();
        assert_eq!(cl.nats, ["nats://127.0.0.1:4222"]);
        assert_eq!((cl.lease_ms, cl.replicas), (20_000, 3));
        for bad in [
            "[cluster]\n",
            "[cluster]\nnode = \"a b\"\n",
            "[cluster]\nnode = \"n1\"\nnats = []\n",
            "[cluster]\nnode = \"n1\"\nlease_ms = 499\n",
            "[cluster]\nnode = \"n1\"\nlease_ms = 600001\n",
            "[cluster]\nnode = \"n1\"\nreplicas = 0\n",
            "[cluster]\nnode = \"n1\"\nreplicas = 6\n",
            "[cluster]\nnode = \"n1\"\nnodes = 3\n",
        ] {
            assert!(Config::parse(bad).is_err(), "{bad:?} accepted");
        }
        let edge = "[cluster]\nnode = \"abcdefghijklmnopqrstuvwxyz012345\"\nlease_ms = 500\nreplicas = 5\n";
        assert!(Config::parse(edge).is_ok());
        let long = "[cluster]\nnode = \"abcdefghijklmnopqrstuvwxyz0123456\"\n";
        assert!(Config::parse(long).is_err());
    }
}
