//! The conversations' past.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::{Reply, StoreError, lock};
use crate::ids::MsgId;
use crate::names::casefold;
use crate::notify::{Event, Millis, MsgKind};

/// One stored event of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stored {
    /// The conversation (see [`history_key`]).
    pub target: String,
    pub msgid: MsgId,
    pub time: Millis,
    pub event: Event,
}

/// The history key of a channel: its casefolded name (its key), which a
/// restart keeps; a rename moves the history to the new name
/// ([`HistoryStore::rename`]).
pub fn history_key(channel_key: &str) -> String {
    format!("channel:{channel_key}")
}

/// The history key of a private conversation as kept for the account
/// `owner`: the other side is named by its account when it has one, else by
/// its nick (so someone who registers a nick later does not find what was
/// said to its previous holder, whose side has no key at all).
pub fn dm_key(owner: &str, other: &str) -> String {
    format!("{}{}", dm_prefix(owner), casefold(other))
}

/// The start of every private conversation key of the account `owner`.
pub fn dm_prefix(owner: &str) -> String {
    format!("dm:{} ", casefold(owner))
}

/// A point of a conversation: a time, or a message (its own time, and before
/// or after the messages of the same millisecond by its place).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Point {
    Time(Millis),
    Msgid(MsgId),
}

/// Which part of a conversation to read (bounds exclusive, at most `limit`
/// events, oldest first in the answer); the `CHATHISTORY` subcommands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// The latest events, after `after` if given.
    Latest { after: Option<Point>, limit: usize },
    /// The latest events before `point`.
    Before { point: Point, limit: usize },
    /// The first events after `point`.
    After { point: Point, limit: usize },
    /// Events on both sides of `point` (the message itself included).
    Around { point: Point, limit: usize },
    /// Events between the two, counted from `from` (backwards when `from`
    /// is the later one).
    Between {
        from: Point,
        to: Point,
        limit: usize,
    },
}

/// Which events a read returns. A client without `draft/event-playback`
/// is played chat messages only, and the limit counts what it gets (as
/// Ergo does): ten messages asked for are ten messages, however many joins
/// and topics came between them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kinds {
    /// PRIVMSG and NOTICE.
    Messages,
    /// Every event kept: TAGMSG, JOIN, PART, QUIT, KICK, NICK, TOPIC, MODE.
    #[default]
    All,
}

impl Kinds {
    /// Whether a read of these kinds returns `e`.
    pub fn admits(self, e: &Event) -> bool {
        match self {
            Kinds::All => true,
            Kinds::Messages => matches!(
                e,
                Event::Message {
                    kind: MsgKind::Privmsg | MsgKind::Notice,
                    ..
                }
            ),
        }
    }
}

/// The conversations' past.
pub trait HistoryStore: Send + Sync {
    /// Adds events, in order; a conversation keeps its last `keep`.
    fn append(&self, events: Vec<Stored>, keep: usize) -> Reply<Result<(), StoreError>>;
    /// Every event of `range`.
    fn read(&self, target: &str, range: Range) -> Reply<Result<Vec<Stored>, StoreError>> {
        self.read_kinds(target, range, Kinds::All)
    }
    /// The events of `range` that `kinds` admits, the limit counting only
    /// those; a point may name an event `kinds` leaves out.
    fn read_kinds(
        &self,
        target: &str,
        range: Range,
        kinds: Kinds,
    ) -> Reply<Result<Vec<Stored>, StoreError>>;
    /// Removes one message (it was redacted).
    fn remove(&self, target: &str, msgid: MsgId) -> Reply<Result<(), StoreError>>;
    /// Forgets a conversation (its channel is gone).
    fn forget(&self, target: &str) -> Reply<Result<(), StoreError>>;
    /// Removes every event older than `before` (the retention).
    fn prune(&self, before: Millis) -> Reply<Result<(), StoreError>>;
    /// Moves a conversation to another key (its channel was renamed),
    /// replacing what that key had.
    fn rename(&self, from: &str, to: &str) -> Reply<Result<(), StoreError>>;
    /// Every conversation that holds events, by key.
    fn targets(&self) -> Reply<Result<Vec<String>, StoreError>>;
    /// Of `targets` and the conversations whose key starts with `prefix`,
    /// those whose latest chat message (PRIVMSG or NOTICE: a channel where
    /// people only came and went has nothing to read) is strictly between
    /// the two times, with that time: the `limit` first from `from`
    /// (backwards when `from` is the later one).
    fn latest(
        &self,
        targets: Vec<String>,
        prefix: Option<String>,
        from: Millis,
        to: Millis,
        limit: usize,
    ) -> Reply<Result<Vec<(String, Millis)>, StoreError>>;
}

/// History in memory, lost at exit.
#[derive(Debug, Default)]
pub struct MemoryHistory {
    events: Mutex<HashMap<String, VecDeque<Stored>>>,
}

/// Where `p` falls in `q` (sorted by time, then by arrival): the events
/// strictly before it are `q[..lo]`, those strictly after it `q[hi..]`. An
/// unknown msgid is `None`.
fn split(q: &VecDeque<Stored>, p: Point) -> Option<(usize, usize)> {
    match p {
        Point::Time(t) => Some((
            q.partition_point(|e| e.time < t),
            q.partition_point(|e| e.time <= t),
        )),
        Point::Msgid(id) => q.iter().position(|e| e.msgid == id).map(|i| (i, i + 1)),
    }
}

impl HistoryStore for MemoryHistory {
    fn append(&self, events: Vec<Stored>, keep: usize) -> Reply<Result<(), StoreError>> {
        let mut all = lock(&self.events);
        for e in events {
            let q = all.entry(e.target.clone()).or_default();
            q.push_back(e);
            while q.len() > keep {
                q.pop_front();
            }
        }
        all.retain(|_, q| !q.is_empty());
        Reply::Now(Ok(()))
    }

    fn read_kinds(
        &self,
        target: &str,
        range: Range,
        kinds: Kinds,
    ) -> Reply<Result<Vec<Stored>, StoreError>> {
        let all = lock(&self.events);
        let Some(full) = all.get(target) else {
            return Reply::Now(Ok(Vec::new()));
        };
        // The admitted events, and the points placed among them: a point is
        // found in the whole conversation, then counted in admitted events.
        let q: VecDeque<&Stored> = full.iter().filter(|e| kinds.admits(&e.event)).collect();
        let admitted = |i: usize| full.range(..i).filter(|e| kinds.admits(&e.event)).count();
        let place = |p: Point| split(full, p).map(|(lo, hi)| (admitted(lo), admitted(hi)));
        let n = q.len();
        // The indices to return, as a range of `q`.
        let span = |lo: usize, hi: usize| lo..hi.max(lo);
        let r = match range {
            Range::Latest { after, limit } => {
                let lo = after.map_or(Some(0), |p| place(p).map(|(_, hi)| hi));
                lo.map(|lo| span(n.saturating_sub(limit).max(lo), n))
            }
            Range::Before { point, limit } => {
                place(point).map(|(lo, _)| span(lo.saturating_sub(limit), lo))
            }
            Range::After { point, limit } => {
                place(point).map(|(_, hi)| span(hi, hi.saturating_add(limit).min(n)))
            }
            Range::Around { point, limit } => place(point).map(|(lo, hi)| {
                // As many before as after, the point's own message between.
                let before = limit / 2;
                let start = lo.saturating_sub(before);
                span(start, start.saturating_add(limit).min(n).max(hi.min(n)))
            }),
            Range::Between { from, to, limit } => match (place(from), place(to)) {
                (Some((_, fhi)), Some((tlo, _))) if fhi <= tlo => {
                    Some(span(fhi, fhi.saturating_add(limit).min(tlo)))
                }
                (Some((flo, _)), Some((_, thi))) if thi <= flo => {
                    Some(span(flo.saturating_sub(limit).max(thi), flo))
                }
                (Some(_), Some(_)) => Some(0..0),
                _ => None,
            },
        };
        let events = r.map_or_else(Vec::new, |r| q.range(r).map(|e| (*e).clone()).collect());
        Reply::Now(Ok(events))
    }

    fn remove(&self, target: &str, msgid: MsgId) -> Reply<Result<(), StoreError>> {
        let mut all = lock(&self.events);
        if let Some(q) = all.get_mut(target) {
            q.retain(|e| e.msgid != msgid);
            if q.is_empty() {
                all.remove(target);
            }
        }
        Reply::Now(Ok(()))
    }

    fn forget(&self, target: &str) -> Reply<Result<(), StoreError>> {
        lock(&self.events).remove(target);
        Reply::Now(Ok(()))
    }

    fn targets(&self) -> Reply<Result<Vec<String>, StoreError>> {
        let mut all: Vec<String> = lock(&self.events).keys().cloned().collect();
        all.sort_unstable();
        Reply::Now(Ok(all))
    }

    fn prune(&self, before: Millis) -> Reply<Result<(), StoreError>> {
        let mut all = lock(&self.events);
        for q in all.values_mut() {
            q.retain(|e| e.time >= before);
        }
        all.retain(|_, q| !q.is_empty());
        Reply::Now(Ok(()))
    }

    fn rename(&self, from: &str, to: &str) -> Reply<Result<(), StoreError>> {
        let mut all = lock(&self.events);
        all.remove(to);
        if let Some(mut q) = all.remove(from) {
            for e in &mut q {
                e.target = to.to_string();
            }
            all.insert(to.to_string(), q);
        }
        Reply::Now(Ok(()))
    }

    fn latest(
        &self,
        mut targets: Vec<String>,
        prefix: Option<String>,
        from: Millis,
        to: Millis,
        limit: usize,
    ) -> Reply<Result<Vec<(String, Millis)>, StoreError>> {
        let all = lock(&self.events);
        if let Some(p) = prefix {
            targets.extend(all.keys().filter(|k| k.starts_with(&p)).cloned());
        }
        targets.sort_unstable();
        targets.dedup();
        let (lo, hi) = (from.min(to), from.max(to));
        let mut found: Vec<(String, Millis)> = targets
            .into_iter()
            .filter_map(|t| {
                let q = all.get(&t)?;
                let at = q
                    .iter()
                    .rev()
                    .find(|e| Kinds::Messages.admits(&e.event))?
                    .time;
                (at > lo && at < hi).then_some((t, at))
            })
            .collect();
        found.sort_by_key(|(_, at)| *at);
        if from > to {
            found.reverse();
        }
        found.truncate(limit);
        Reply::Now(Ok(found))
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryHistory;
    use crate::store::{conformance, tests::run};

    #[test]
    fn memory_history_conforms() {
        run(conformance::history(&MemoryHistory::default()));
    }
}
