//! History in SQL. A conversation's events are ordered by `(time, seq)`:
//! their time, then their arrival (`seq`, the row id); the index on
//! `(target, time)` holds both, so every [`Range`] is one index range scan.
//! A [`Point`] becomes two keys in that order: what is before it is below
//! its low key, what is after it above its high key (a time covers every
//! event of its millisecond, a message only itself).

use std::collections::HashMap;

use bavard_core::MsgId;
use bavard_core::notify::Millis;
use bavard_core::store::{Kinds, Point, Range, StoreError, Stored};
use rusqlite::{Connection, OptionalExtension, params};

use crate::accounts::millis;
use crate::codec;
use crate::failed;

/// A place in a conversation's order: (time, seq).
type Key = (i64, i64);

/// Below every event, above every event.
const FIRST: Key = (i64::MIN, i64::MIN);
const LAST: Key = (i64::MAX, i64::MAX);

/// Adds `events` in order; each conversation they touch keeps its last
/// `keep`. Events of a kind history does not keep are left out (and said).
/// A failure leaves the transaction half done: the caller rolls it back.
pub(crate) fn append(c: &Connection, events: &[Stored], keep: usize) -> rusqlite::Result<()> {
    let mut added: HashMap<&str, (i64, i64)> = HashMap::new();
    let mut insert = c.prepare_cached(
        "INSERT INTO history (target, msgid, time, event) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for e in events {
        let bytes = match codec::encode(&e.event) {
            Ok(b) => b,
            Err(codec::Unsupported(kind)) => {
                tracing::warn!(kind, "history does not keep this kind of event");
                continue;
            }
        };
        let id = match added.get_mut(e.target.as_str()) {
            Some((id, n)) => {
                *n += 1;
                *id
            }
            None => {
                let id = match target_id(c, &e.target)? {
                    Some(id) => id,
                    None => c
                        .prepare_cached("INSERT INTO targets (name) VALUES (?1)")?
                        .insert([&e.target])?,
                };
                added.insert(&e.target, (id, 1));
                id
            }
        };
        insert.execute(params![id, e.msgid.raw() as i64, millis(e.time), bytes])?;
    }
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    for (id, n) in added.into_values() {
        let events: i64 = c.query_row(
            "UPDATE targets SET events = events + ?2 WHERE id = ?1 RETURNING events",
            params![id, n],
            |r| r.get(0),
        )?;
        if events > keep {
            trim(c, id, events - keep)?;
        }
    }
    Ok(())
}

/// Deletes the `n` oldest events of conversation `id`.
fn trim(c: &Connection, id: i64, n: i64) -> rusqlite::Result<()> {
    c.prepare_cached(
        "DELETE FROM history WHERE seq IN \
         (SELECT seq FROM history WHERE target = ?1 ORDER BY time, seq LIMIT ?2)",
    )?
    .execute(params![id, n])?;
    count(c, id, -n)
}

fn count(c: &Connection, id: i64, delta: i64) -> rusqlite::Result<()> {
    c.prepare_cached("UPDATE targets SET events = events + ?2 WHERE id = ?1")?
        .execute(params![id, delta])
        .map(drop)
}

/// The id of conversation `name`, if it has one.
fn target_id(c: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached("SELECT id FROM targets WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()
}

pub(crate) fn remove(c: &Connection, target: &str, msgid: MsgId) -> rusqlite::Result<()> {
    let Some(id) = target_id(c, target)? else {
        return Ok(());
    };
    let gone = c
        .prepare_cached("DELETE FROM history WHERE target = ?1 AND msgid = ?2")?
        .execute(params![id, msgid.raw() as i64])?;
    count(c, id, -(gone as i64))
}

pub(crate) fn forget(c: &Connection, target: &str) -> rusqlite::Result<()> {
    let Some(id) = target_id(c, target)? else {
        return Ok(());
    };
    c.execute("DELETE FROM history WHERE target = ?1", [id])?;
    c.execute("DELETE FROM targets WHERE id = ?1", [id])
        .map(drop)
}

/// Removes the events older than `before`, and the conversations left
/// empty. A scan of the whole table: it runs seldom (the retention task).
pub(crate) fn prune(c: &Connection, before: Millis) -> rusqlite::Result<()> {
    let before = i64::try_from(before).unwrap_or(i64::MAX);
    let gone = c.execute("DELETE FROM history WHERE time < ?1", [before])?;
    if gone > 0 {
        c.execute(
            "UPDATE targets SET events = \
             (SELECT COUNT(*) FROM history WHERE history.target = targets.id)",
            [],
        )?;
        c.execute("DELETE FROM targets WHERE events = 0", [])?;
    }
    Ok(())
}

/// Moves the conversation `from` to `to`, replacing what `to` had.
pub(crate) fn rename(c: &Connection, from: &str, to: &str) -> rusqlite::Result<()> {
    forget(c, to)?;
    c.prepare_cached("UPDATE targets SET name = ?2 WHERE name = ?1")?
        .execute([from, to])
        .map(drop)
}

pub(crate) fn read(
    c: &Connection,
    target: &str,
    range: Range,
    kinds: Kinds,
) -> Result<Vec<Stored>, StoreError> {
    let Some(id) = target_id(c, target).map_err(failed)? else {
        return Ok(Vec::new());
    };
    let conv = Conversation {
        c,
        id,
        target,
        kinds,
    };
    // A point naming a message this conversation does not have: nothing.
    Ok(conv.range(range)?.unwrap_or_default())
}

/// Of `targets`, those whose latest chat message (PRIVMSG or NOTICE) is
/// strictly between `from` and `to`, with its time, the `limit` first from
/// `from`. Other events are told apart once decoded: a conversation's
/// latest rows are read until a message.
pub(crate) fn latest(
    c: &Connection,
    targets: &[String],
    prefix: Option<&str>,
    from: Millis,
    to: Millis,
    limit: usize,
) -> Result<Vec<(String, Millis)>, StoreError> {
    let (lo, hi) = (from.min(to), from.max(to));
    let mut s = c
        .prepare_cached(
            "SELECT time, event FROM history WHERE target = ?1 ORDER BY time DESC, seq DESC",
        )
        .map_err(failed)?;
    let mut found = Vec::new();
    let mut all = targets.to_vec();
    if let Some(p) = prefix {
        // Keys are text: those starting with `p` sort from `p` up to `p`
        // followed by the highest character.
        let mut names = c
            .prepare_cached("SELECT name FROM targets WHERE name >= ?1 AND name < ?2")
            .map_err(failed)?;
        let rows = names
            .query_map([p.to_string(), format!("{p}\u{10FFFF}")], |r| r.get(0))
            .map_err(failed)?;
        for name in rows {
            all.push(name.map_err(failed)?);
        }
    }
    all.sort_unstable();
    all.dedup();
    for t in &all {
        let Some(id) = target_id(c, t).map_err(failed)? else {
            continue;
        };
        let mut rows = s.query([id]).map_err(failed)?;
        let mut at: Option<i64> = None;
        while let Some(row) = rows.next().map_err(failed)? {
            let bytes: Vec<u8> = row.get(1).map_err(failed)?;
            if codec::decode(&bytes).is_ok_and(|e| Kinds::Messages.admits(&e)) {
                at = Some(row.get(0).map_err(failed)?);
                break;
            }
        }
        if let Some(at) = at.map(|at| at.max(0) as u64)
            && at > lo
            && at < hi
        {
            found.push((t.clone(), at));
        }
    }
    found.sort_by_key(|(_, at)| *at);
    if from > to {
        found.reverse();
    }
    found.truncate(limit);
    Ok(found)
}

/// One conversation being read.
struct Conversation<'a> {
    c: &'a Connection,
    id: i64,
    target: &'a str,
    kinds: Kinds,
}

impl Conversation<'_> {
    /// The events of `range`, oldest first; `None` when a point is a
    /// message the conversation does not have.
    fn range(&self, range: Range) -> Result<Option<Vec<Stored>>, StoreError> {
        Ok(Some(match range {
            Range::Latest { after, limit } => {
                let above = match after {
                    Some(p) => match self.bounds(p)? {
                        Some((_, hi)) => hi,
                        None => return Ok(None),
                    },
                    None => FIRST,
                };
                self.between(above, LAST, Dir::Newest, limit)?
            }
            Range::Before { point, limit } => {
                let Some((lo, _)) = self.bounds(point)? else {
                    return Ok(None);
                };
                self.between(FIRST, lo, Dir::Newest, limit)?
            }
            Range::After { point, limit } => {
                let Some((_, hi)) = self.bounds(point)? else {
                    return Ok(None);
                };
                self.between(hi, LAST, Dir::Oldest, limit)?
            }
            Range::Around { point, limit } => {
                let Some((lo, _)) = self.bounds(point)? else {
                    return Ok(None);
                };
                // As many before as after, the point's own events between,
                // all of them even past the limit.
                let mut events = self.between(FIRST, lo, Dir::Newest, limit / 2)?;
                let at_point = match point {
                    Point::Time(t) => self.at_time(t)?,
                    Point::Msgid(_) => 1,
                };
                let rest = limit.saturating_sub(events.len()).max(at_point);
                // From the point on: above the key just below its low one.
                let below = (lo.0, lo.1.saturating_sub(1));
                events.extend(self.between(below, LAST, Dir::Oldest, rest)?);
                events
            }
            Range::Between { from, to, limit } => {
                let (Some(from), Some(to)) = (self.bounds(from)?, self.bounds(to)?) else {
                    return Ok(None);
                };
                if from.1 < to.0 {
                    self.between(from.1, to.0, Dir::Oldest, limit)?
                } else {
                    self.between(to.1, from.0, Dir::Newest, limit)?
                }
            }
        }))
    }

    /// The low and high keys of `p`; `None` for a message not in it.
    fn bounds(&self, p: Point) -> Result<Option<(Key, Key)>, StoreError> {
        match p {
            // Row ids start at 1: (t, 0) is below every event of t.
            Point::Time(t) => Ok(Some(((millis(t), 0), (millis(t), i64::MAX)))),
            Point::Msgid(m) => {
                let key = self
                    .c
                    .prepare_cached(
                        // `+target`: by the msgid index, not by scanning the
                        // conversation.
                        "SELECT time, seq FROM history WHERE msgid = ?1 AND +target = ?2 \
                         ORDER BY time, seq LIMIT 1",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![m.raw() as i64, self.id], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                        .optional()
                    })
                    .map_err(failed)?;
                Ok(key.map(|k| (k, k)))
            }
        }
    }

    /// How many events happened at `t`.
    fn at_time(&self, t: Millis) -> Result<usize, StoreError> {
        self.c
            .prepare_cached("SELECT count(*) FROM history WHERE target = ?1 AND time = ?2")
            .and_then(|mut s| s.query_row(params![self.id, millis(t)], |r| r.get::<_, i64>(0)))
            .map(|n| n as usize)
            .map_err(failed)
    }

    /// The events strictly between `above` and `below`: the `limit` oldest
    /// or newest of them that the conversation's kinds admit, oldest first.
    /// The kinds are told apart once decoded, so a filtered read steps
    /// past the others without a limit in SQL.
    fn between(
        &self,
        above: Key,
        below: Key,
        dir: Dir,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        let order = match dir {
            Dir::Oldest => "ASC",
            Dir::Newest => "DESC",
        };
        let sql = format!(
            "SELECT msgid, time, event FROM history WHERE target = ?1 \
             AND (time, seq) > (?2, ?3) AND (time, seq) < (?4, ?5) \
             ORDER BY time {order}, seq {order} LIMIT ?6"
        );
        let every = self.kinds == Kinds::All;
        let sql_limit = match every {
            true => i64::try_from(limit).unwrap_or(i64::MAX),
            false => -1,
        };
        let mut s = self.c.prepare_cached(&sql).map_err(failed)?;
        let rows = s
            .query_map(
                params![self.id, above.0, above.1, below.0, below.1, sql_limit],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                },
            )
            .map_err(failed)?;
        let mut events = Vec::new();
        for row in rows {
            if events.len() >= limit {
                break;
            }
            let (msgid, time, bytes) = row.map_err(failed)?;
            let event = codec::decode(&bytes).map_err(|codec::Corrupt| {
                StoreError::Unavailable(format!("a damaged history entry in {}", self.target))
            })?;
            if !every && !self.kinds.admits(&event) {
                continue;
            }
            events.push(Stored {
                target: self.target.to_string(),
                msgid: MsgId::from_raw(msgid as u64),
                time: time.max(0) as u64,
                event,
            });
        }
        if dir == Dir::Newest {
            events.reverse();
        }
        Ok(events)
    }
}

/// Which end of a span to take events from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Oldest,
    Newest,
}
