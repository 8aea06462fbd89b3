//! The bus a cluster of bavard nodes shares, on NATS JetStream:
//!
//! - the replicated log of network changes, the stream `BAVARD_NET` on
//!   subject `bavard.net`, which every node publishes to ([`Publisher`]) and
//!   follows in order ([`Bus::follow`]);
//! - the nick registry, the KV bucket `bavard_nicks` ([`KvRegistry`]), so
//!   that two users on two nodes never get the same nick;
//! - registered accounts, the KV bucket `bavard_accounts` ([`KvAccounts`]),
//!   so that an account registered through one node logs in on any other;
//! - node numbers and leases, the KV bucket `bavard_nodes`: each node claims a
//!   number (the high bits of its ids, `bavard_core::ConnId::node`) and keeps
//!   a lease that the others watch, to free a dead node's nicks
//!   ([`Bus::start_lease`], [`Bus::watch_nodes`], [`Bus::release_node`]);
//! - snapshots, asked of any live node on `bavard.snapshot`, so a new node
//!   need not replay the whole log ([`Bus::serve_snapshots`],
//!   [`Bus::request_snapshot`]), and history on `bavard.history`
//!   ([`Bus::serve_history`], [`Bus::request_history`]).
//!
//! [`harness`] starts real `nats-server` clusters for tests, this crate's
//! and the server's.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use futures_util::TryStreamExt;

mod accounts;
mod direct;
mod follow;
pub mod harness;
mod lease;
mod publisher;
mod registry;
mod snapshot;

pub use accounts::KvAccounts;
pub use direct::DirectSender;
pub use follow::Follow;
pub use lease::{LeaseGuard, NodeDown};
pub use publisher::Publisher;
pub use registry::{KvRegistry, nick_key};
pub use snapshot::{Answer, HISTORY_SUBJECT, SNAPSHOT_SUBJECT};

/// The stream that carries the network's changes.
pub const STREAM: &str = "BAVARD_NET";
/// Its only subject.
pub const SUBJECT: &str = "bavard.net";
/// Who holds each nick: key [`nick_key`], value the owner's raw `ConnId`.
pub const NICKS: &str = "bavard_nicks";
/// Registered accounts: `a.<account key>` = the account as JSON,
/// `f.<certificate fingerprint>` = the key of the account it logs in as.
pub const ACCOUNTS: &str = "bavard_accounts";
/// Node numbers (`num.<number>` = node name) and leases (`lease.<node>` =
/// number).
pub const NODES: &str = "bavard_nodes";

/// How long [`Bus::connect`] keeps trying to reach the servers and set up
/// the stream and buckets: a cluster that was just started needs a few
/// seconds to elect its JetStream meta leader.
const CONNECT_FOR: Duration = Duration::from_secs(10);
/// The wait for a JetStream request or publish ack: short, so that a
/// request sent to a server that just died is retried soon on another.
const JS_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the bus is and who this node is.
#[derive(Clone, Debug)]
pub struct BusConfig {
    /// The servers, e.g. `nats://127.0.0.1:4222`; the client also learns the
    /// rest of the cluster from the one it reaches.
    pub urls: Vec<String>,
    /// This node's name, unique in the network: `[A-Za-z0-9_-]`, as it is a
    /// token of KV keys.
    pub node: String,
    /// Copies of the stream and buckets (3 for a cluster of 3 servers, which
    /// survives losing one).
    pub replicas: usize,
    /// A node whose lease is not renewed for this long is declared down.
    pub lease: Duration,
}

/// A node's handle on the bus. Cheap to clone: every clone shares one
/// connection.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: stream::Stream,
    nodes: kv::Store,
    registry: Arc<KvRegistry>,
    accounts: Arc<KvAccounts>,
    cfg: BusConfig,
    number: u16,
    /// The next `Nats-Msg-Id` counter of this node's publishers. It starts
    /// at the microseconds since 1970 so that a restarted node, whose
    /// previous life's ids may still be in JetStream's duplicate window,
    /// never reuses one (its messages would be dropped as duplicates).
    msg_ids: AtomicU64,
}

impl Bus {
    /// Connects (retrying for up to ~10 s), creates the stream and buckets
    /// if missing, and claims this node's number. See the crate's doc.
    pub async fn connect(cfg: BusConfig) -> anyhow::Result<Bus> {
        if cfg.node.is_empty()
            || !cfg
                .node
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            bail!("node name {:?}: want [A-Za-z0-9_-]+", cfg.node);
        }
        if cfg.urls.is_empty() {
            bail!("no NATS server url");
        }
        let deadline = Instant::now() + CONNECT_FOR;
        let client = retry(deadline, "connecting to NATS", || connect_once(&cfg)).await?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(JS_TIMEOUT);
        // A cluster just started has no meta leader for a few seconds: every
        // JetStream request fails until it has, so each step retries.
        let deadline = Instant::now() + 2 * CONNECT_FOR;
        let stream = retry(deadline, "creating the stream", || {
            ensure_stream(&js, cfg.replicas)
        })
        .await?;
        let nicks = retry(deadline, "creating the nicks bucket", || {
            ensure_bucket(&js, NICKS, cfg.replicas, true)
        })
        .await?;
        let nodes = retry(deadline, "creating the nodes bucket", || {
            ensure_bucket(&js, NODES, cfg.replicas, true)
        })
        .await?;
        // Read through the stream's leader, not any replica: see
        // `KvAccounts`, whose certificate index relies on fresh reads.
        let accounts = retry(deadline, "creating the accounts bucket", || {
            ensure_bucket(&js, ACCOUNTS, cfg.replicas, false)
        })
        .await?;
        let number = retry(deadline, "claiming a node number", || {
            claim_number(&nodes, &cfg.node)
        })
        .await?;
        tracing::info!(node = %cfg.node, number, "on the NATS bus");
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        Ok(Bus {
            inner: Arc::new(Inner {
                client,
                js,
                stream,
                nodes,
                registry: Arc::new(KvRegistry::new(nicks)),
                accounts: Arc::new(KvAccounts::new(accounts)),
                cfg,
                number,
                msg_ids: AtomicU64::new(start),
            }),
        })
    }

    /// This node's number, the high bits of the ids it hands out.
    pub fn number(&self) -> u16 {
        self.inner.number
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.inner.cfg.node
    }

    /// The NATS connection, for what this crate does not wrap.
    pub fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// Sequence of the last message in the stream (0 if empty).
    pub async fn last_seq(&self) -> anyhow::Result<u64> {
        let info = self
            .inner
            .stream
            .get_info()
            .await
            .context("asking the stream's state")?;
        Ok(info.state.last_sequence)
    }

    /// The nick registry on bucket `bavard_nicks`.
    pub fn registry(&self) -> Arc<KvRegistry> {
        self.inner.registry.clone()
    }

    /// The registered accounts on bucket `bavard_accounts`, the same on
    /// every node of the cluster.
    pub fn accounts(&self) -> Arc<KvAccounts> {
        self.inner.accounts.clone()
    }

    /// Frees every channel name in the registry (for the first node of a
    /// network that starts again: no channel exists).
    pub async fn forget_channels(&self) -> anyhow::Result<usize> {
        self.inner.registry.forget_channels().await
    }

    /// How long a node may go without renewing its lease.
    pub fn lease(&self) -> Duration {
        self.inner.cfg.lease
    }

    /// Says whether this node has caught up with the network and answers
    /// snapshot requests: a node that starts asks only those that have.
    /// A node starting clears its mark (left by its previous run); a node
    /// declared down loses it.
    pub async fn set_ready(&self, ready: bool) -> anyhow::Result<()> {
        let key = lease::ready_key(self.node());
        let nodes = &self.inner.nodes;
        if ready {
            nodes
                .put(&key, bytes::Bytes::from(self.number().to_string()))
                .await
                .context("marking this node ready")?;
        } else {
            nodes
                .delete(&key)
                .await
                .context("clearing this node's ready mark")?;
        }
        Ok(())
    }

    /// Whether another node holds a lease and has caught up (see
    /// [`Bus::set_ready`]): one that can answer a snapshot request. A node
    /// that died keeps both until a watcher declares it down
    /// ([`Bus::watch_nodes`]), so this can say yes for `lease` after the
    /// last other node died.
    pub async fn others_alive(&self) -> anyhow::Result<bool> {
        let ours = self.node();
        let keys: Vec<String> = self
            .inner
            .nodes
            .keys()
            .await
            .context("listing the leases")?
            .try_collect()
            .await
            .context("listing the leases")?;
        let has = |prefix: &str, node: &str| keys.iter().any(|k| *k == format!("{prefix}{node}"));
        Ok(keys
            .iter()
            .filter_map(|k| k.strip_prefix(lease::LEASE_PREFIX))
            .any(|node| node != ours && has(lease::READY_PREFIX, node)))
    }

    /// Frees every nick whose owner is a connection of node `number` (a
    /// node declared down): a revision-checked delete of each, so a nick
    /// claimed again meanwhile stays claimed. Returns how many it freed.
    pub async fn release_node(&self, number: u16) -> anyhow::Result<usize> {
        self.inner.registry.release_node(number).await
    }
}

/// One attempt at reaching the servers.
async fn connect_once(cfg: &BusConfig) -> anyhow::Result<async_nats::Client> {
    let urls = cfg
        .urls
        .iter()
        .map(|u| u.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .context("a NATS server url")?;
    let client = async_nats::ConnectOptions::new()
        .name(format!("bavard-{}", cfg.node))
        .connection_timeout(Duration::from_secs(2))
        // Unlimited reconnects, soon: a node must be back on the bus within
        // its lease (the default backoff grows to seconds).
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| Duration::from_millis((attempts as u64 * 50).min(500)))
        .connect(urls)
        .await?;
    Ok(client)
}

/// Runs `f` until it succeeds or `deadline` passes (then its last error).
async fn retry<T, F, Fut>(deadline: Instant, what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    loop {
        match f().await {
            Ok(t) => return Ok(t),
            Err(e) if Instant::now() >= deadline => return Err(e.context(what.to_string())),
            Err(e) => {
                tracing::debug!("{what}: {e:#}; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Gets the stream, creating it if missing. Two nodes starting at once may
/// both try to create it: the loser's create fails ("already in use") or
/// succeeds (same config), and it gets the winner's.
async fn ensure_stream(js: &jetstream::Context, replicas: usize) -> anyhow::Result<stream::Stream> {
    if let Ok(s) = js.get_stream(STREAM).await {
        return Ok(s);
    }
    let created = js
        .create_stream(stream::Config {
            name: STREAM.to_string(),
            subjects: vec![SUBJECT.to_string()],
            storage: stream::StorageType::File,
            num_replicas: replicas.max(1),
            max_age: Duration::from_secs(24 * 3600),
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        })
        .await;
    match created {
        Ok(s) => Ok(s),
        Err(e) => js
            .get_stream(STREAM)
            .await
            .map_err(|_| anyhow!(e).context("creating stream BAVARD_NET")),
    }
}

/// Gets the bucket, creating it if missing (one value per key, no history:
/// only the current holder matters). Races as for [`ensure_stream`].
///
/// `direct` lets any replica answer reads (JetStream's direct get): cheaper,
/// but a replica that lags may not have a write acknowledged a moment ago;
/// without it every read goes to the stream's leader. A bucket made before
/// keeps the setting it was made with.
///
/// The bucket's stream is made here, as async-nats' `create_key_value`
/// would: that one first reads the account's info, whose answer from
/// nats-server 2.9 async-nats 0.51 cannot parse (it lacks the `reserved_*`
/// fields of 2.10).
async fn ensure_bucket(
    js: &jetstream::Context,
    bucket: &str,
    replicas: usize,
    direct: bool,
) -> anyhow::Result<kv::Store> {
    if let Ok(s) = js.get_key_value(bucket).await {
        return Ok(s);
    }
    let created = js
        .create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            storage: stream::StorageType::File,
            num_replicas: replicas.max(1),
            allow_rollup: true,
            deny_delete: true,
            allow_direct: direct,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await;
    let got = js.get_key_value(bucket).await;
    match (created, got) {
        (_, Ok(s)) => Ok(s),
        (Err(e), Err(_)) => Err(anyhow!(e).context(format!("creating bucket {bucket}"))),
        (Ok(_), Err(e)) => Err(anyhow!(e).context(format!("opening bucket {bucket}"))),
    }
}

/// 64-bit FNV-1a: the node number must be the same on every start of a
/// node (its nicks and ids are found by it), so no randomised hasher.
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The number a node named `node` tries first.
pub fn preferred_number(node: &str) -> u16 {
    1 + (fnv1a(node) % 65000) as u16
}

/// The number after `n`, skipping 0 (no node has it: ids of node 0 are a
/// single server's).
fn next_number(n: u16) -> u16 {
    n.checked_add(1).unwrap_or(1)
}

/// Claims `num.<n>` = node name, from [`preferred_number`] on; a node keeps
/// the number it already holds (a restart).
async fn claim_number(nodes: &kv::Store, node: &str) -> anyhow::Result<u16> {
    let mut n = preferred_number(node);
    for _ in 0..100 {
        let key = format!("num.{n}");
        match nodes
            .create(&key, Bytes::copy_from_slice(node.as_bytes()))
            .await
        {
            Ok(_) => return Ok(n),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let holder = nodes.get(&key).await.context("reading a node number")?;
                match holder {
                    Some(v) if v == node.as_bytes() => return Ok(n),
                    Some(_) => n = next_number(n),
                    // Deleted between the two: try it again.
                    None => continue,
                }
            }
            Err(e) => return Err(anyhow!(e).context("claiming a node number")),
        }
    }
    bail!("no free node number after 100 tries")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable_and_never_zero() {
        assert_eq!(preferred_number("a"), preferred_number("a"));
        assert_ne!(preferred_number("a"), preferred_number("b"));
        // FNV-1a of the empty string is its offset basis.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
        for name in ["a", "node-1", "x_y", "zzz"] {
            let n = preferred_number(name);
            assert!((1..=65000).contains(&n));
        }
        assert_eq!(next_number(u16::MAX), 1);
        assert_eq!(next_number(7), 8);
    }
}
