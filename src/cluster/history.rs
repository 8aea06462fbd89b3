//! One history on every node. A running node keeps every conversation as
//! the others do: it replays every message of the log, and the private
//! messages each node logs for the others' history
//! ([`bavard_core::state::replica::Record::Kept`]). A node that starts
//! while others run lacks what was said while it was away: before it
//! follows the log it asks a running node for each conversation's events
//! newer than its own latest ([`backfill`]), which that node answers from
//! its store ([`answer`]).
//!
//! The running node reads its store after the snapshot was taken, so it
//! may send events the log also brings after the snapshot's sequence: the
//! joining node drops those appends once ([`Synced`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use bavard_core::ids::MsgId;
use bavard_core::notify::Millis;
use bavard_core::store::{HistoryStore, Kinds, Point, Range, Reply, StoreError, Stored};
use bavard_nats::{Answer, Bus};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

/// How long the joining node drops appends it already had from a running
/// node: past it, the log has long moved beyond the snapshot.
const OVERLAP: Duration = Duration::from_secs(120);
/// Conversations asked for at once.
const PARALLEL: usize = 8;
/// How long one answer may take, and how many times it is asked.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);
const ATTEMPTS: usize = 3;
/// Events of one millisecond compared, at most.
const SAME_MS: usize = 10_000;
/// How long a running node waits to reach a joining node's sequence.
const CATCH_UP: Duration = Duration::from_secs(5);

/// A joining node's question, about the history as it stands once the
/// log's sequence `seq` (its snapshot's) is applied: a node that answers
/// waits until it has applied it, so that it has kept all it holds.
#[derive(Debug, Serialize, Deserialize)]
struct Question {
    seq: u64,
    ask: Ask,
}

#[derive(Debug, Serialize, Deserialize)]
enum Ask {
    /// Every conversation with events.
    Targets,
    /// The latest `limit` events of `target`, after `after` if given.
    Latest {
        target: String,
        after: Option<Point>,
        limit: usize,
    },
}

#[derive(Debug, Serialize, Deserialize)]
enum Told {
    Targets(Vec<String>),
    Events(Vec<Stored>),
}

/// The history store of a clustered node: the node's own store, which
/// drops the appends of events a running node already sent it.
pub struct Synced {
    inner: Arc<dyn HistoryStore>,
    had: Mutex<Had>,
}

#[derive(Default)]
struct Had {
    until: Option<Instant>,
    events: HashSet<(String, MsgId)>,
}

impl Synced {
    pub fn new(inner: Arc<dyn HistoryStore>) -> Synced {
        Synced {
            inner,
            had: Mutex::default(),
        }
    }

    fn had(&self) -> std::sync::MutexGuard<'_, Had> {
        self.had.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl HistoryStore for Synced {
    fn append(&self, mut events: Vec<Stored>, keep: usize) -> Reply<Result<(), StoreError>> {
        {
            let mut had = self.had();
            if had.until.is_some_and(|t| Instant::now() >= t) {
                *had = Had::default();
            }
            if !had.events.is_empty() {
                // Each comes once from the log: forget it as it does.
                events.retain(|e| !had.events.remove(&(e.target.clone(), e.msgid)));
            }
        }
        if events.is_empty() {
            return Reply::Now(Ok(()));
        }
        self.inner.append(events, keep)
    }

    fn read_kinds(
        &self,
        target: &str,
        range: Range,
        kinds: Kinds,
    ) -> Reply<Result<Vec<Stored>, StoreError>> {
        self.inner.read_kinds(target, range, kinds)
    }

    fn remove(&self, target: &str, msgid: MsgId) -> Reply<Result<(), StoreError>> {
        self.inner.remove(target, msgid)
    }

    fn forget(&self, target: &str) -> Reply<Result<(), StoreError>> {
        self.inner.forget(target)
    }

    fn targets(&self) -> Reply<Result<Vec<String>, StoreError>> {
        self.inner.targets()
    }

    fn prune(&self, before: Millis) -> Reply<Result<(), StoreError>> {
        self.inner.prune(before)
    }

    fn rename(&self, from: &str, to: &str) -> Reply<Result<(), StoreError>> {
        self.inner.rename(from, to)
    }

    fn latest(
        &self,
        targets: Vec<String>,
        prefix: Option<String>,
        from: Millis,
        to: Millis,
        limit: usize,
    ) -> Reply<Result<Vec<(String, Millis)>, StoreError>> {
        self.inner.latest(targets, prefix, from, to, limit)
    }
}

/// What a running node answers a joining node's questions with;
/// `applied` tells the last log sequence it applied.
pub fn answer(
    history: Arc<dyn HistoryStore>,
    applied: Arc<dyn Fn() -> u64 + Send + Sync>,
) -> Answer {
    Arc::new(move |payload| {
        let (history, applied) = (history.clone(), applied.clone());
        Box::pin(async move {
            let q = match serde_json::from_slice::<Question>(&payload) {
                Ok(q) => q,
                Err(e) => {
                    tracing::warn!(error = %e, "an unreadable history request");
                    return None;
                }
            };
            let deadline = Instant::now() + CATCH_UP;
            while applied() < q.seq {
                if Instant::now() > deadline {
                    let behind = format!("this node has not reached sequence {} yet", q.seq);
                    return Some(serde_json::to_vec(&Err::<Told, _>(behind)).ok()?.into());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let told = match q.ask {
                Ask::Targets => history.targets().get().await.map(Told::Targets),
                Ask::Latest {
                    target,
                    after,
                    limit,
                } => history
                    .read(&target, Range::Latest { after, limit })
                    .get()
                    .await
                    .map(Told::Events),
            };
            let told = told.map_err(|e| e.to_string());
            Some(serde_json::to_vec(&told).ok()?.into())
        })
    })
}

/// Brings this node's history up to a running node's: each conversation
/// gets the events newer than its own latest (its last `keep` at most),
/// and the conversations the network no longer has are forgotten. The
/// events got are dropped if the log brings them again. Nothing to do
/// when no node serves history (this is the first).
pub async fn backfill(bus: &Bus, history: &Synced, keep: usize, seq: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    // From now, should this fail half way; again once done.
    history.had().until = Some(started + OVERLAP);
    let Some(Told::Targets(theirs)) = ask(bus, seq, Ask::Targets).await? else {
        tracing::info!("no running node serves history: keeping this node's own");
        return Ok(());
    };
    let ours = history.inner.targets().get().await?;
    for gone in ours.iter().filter(|t| theirs.binary_search(t).is_err()) {
        history.inner.forget(gone).get().await?;
    }
    let mut fetches = futures_util::stream::iter(theirs.clone())
        .map(|target| async move { one(bus, history, &target, keep, seq).await })
        .buffer_unordered(PARALLEL);
    let mut events = 0;
    while let Some(r) = fetches.next().await {
        events += r?;
    }
    history.had().until = Some(Instant::now() + OVERLAP);
    tracing::info!(
        conversations = theirs.len(),
        events,
        took = ?started.elapsed(),
        "history taken from a running node"
    );
    Ok(())
}

/// Fetches what `target` lacks: the events from the time of its latest on
/// (that millisecond's again, less those it has), or its last `keep`.
async fn one(
    bus: &Bus,
    history: &Synced,
    target: &str,
    keep: usize,
    seq: u64,
) -> anyhow::Result<usize> {
    let newest = history
        .inner
        .read(
            target,
            Range::Latest {
                after: None,
                limit: 1,
            },
        )
        .get()
        .await?;
    let since = newest.first().map(|e| e.time);
    let mut have = HashSet::new();
    if let Some(t) = since {
        let same_ms = Range::Between {
            from: Point::Time(t.saturating_sub(1)),
            to: Point::Time(t + 1),
            limit: SAME_MS,
        };
        for e in history.inner.read(target, same_ms).get().await? {
            have.insert(e.msgid);
        }
    }
    let q = Ask::Latest {
        target: target.to_string(),
        after: since.map(|t| Point::Time(t.saturating_sub(1))),
        limit: keep,
    };
    let Some(Told::Events(mut events)) = ask(bus, seq, q).await? else {
        return Err(anyhow!("no answer about {target}"));
    };
    events.retain(|e| !have.contains(&e.msgid));
    if events.is_empty() {
        return Ok(0);
    }
    let n = events.len();
    // Only recent events may come again from the log.
    let recent = crate::hub::now_millis().saturating_sub(OVERLAP.as_millis() as Millis);
    history.had().events.extend(
        events
            .iter()
            .filter(|e| e.time >= recent)
            .map(|e| (e.target.clone(), e.msgid)),
    );
    history.inner.append(events, keep).get().await?;
    Ok(n)
}

/// Asks a running node, a few times: `None` when none serves history.
async fn ask(bus: &Bus, seq: u64, ask: Ask) -> anyhow::Result<Option<Told>> {
    let payload = bytes::Bytes::from(serde_json::to_vec(&Question { seq, ask })?);
    let mut last = None;
    for _ in 0..ATTEMPTS {
        match bus.request_history(payload.clone(), ASK_TIMEOUT).await {
            Ok(None) => return Ok(None),
            Ok(Some(b)) => {
                let told: Result<Told, String> =
                    serde_json::from_slice(&b).context("a node sent unreadable history")?;
                return told.map(Some).map_err(|e| anyhow!("a node's history: {e}"));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("asked at least once"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bavard_core::store::MemoryHistory;
    use bavard_core::store::conformance::message;

    fn ids(h: &Synced, target: &str) -> Vec<u64> {
        let all = Range::Latest {
            after: None,
            limit: 10,
        };
        match h.read(target, all) {
            Reply::Now(r) => r.unwrap().iter().map(|e| e.msgid.serial()).collect(),
            Reply::Later(_) => unreachable!("in memory"),
        }
    }

    #[test]
    fn what_a_running_node_sent_is_not_appended_again_from_the_log() {
        let h = Synced::new(Arc::new(MemoryHistory::default()));
        let _ = h
            .inner
            .append(vec![message("#a", 1, 10), message("#a", 2, 20)], 10);
        h.had()
            .events
            .extend([("#a".to_string(), MsgId::new(0, 2))]);
        h.had().until = Some(Instant::now() + OVERLAP);
        // 2 comes again from the log, then 3: 2 is dropped, once.
        let _ = h.append(vec![message("#a", 2, 20), message("#a", 3, 30)], 10);
        assert_eq!(ids(&h, "#a"), [1, 2, 3]);
        let _ = h.append(vec![message("#b", 2, 20)], 10);
        assert_eq!(ids(&h, "#b"), [2], "another conversation's");
        // Past the overlap nothing is dropped.
        h.had()
            .events
            .extend([("#c".to_string(), MsgId::new(0, 4))]);
        h.had().until = Some(Instant::now());
        let _ = h.append(vec![message("#c", 4, 40)], 10);
        assert_eq!(ids(&h, "#c"), [4]);
    }
}
