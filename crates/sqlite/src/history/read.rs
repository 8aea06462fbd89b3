//! Reading a conversation: a [`Range`] becomes a walk over its rows from a
//! [`Key`], in one direction, until enough events are found.

use bavard_core::notify::Millis;
use bavard_core::store::{Kinds, Point, Range, StoreError, Stored};
use rusqlite::{Connection, OptionalExtension, params};

use super::{FIRST, Key, LAST, find_msgid};
use crate::accounts::millis;
use crate::codec::{self, Record};
use crate::failed;

pub(crate) fn read(
    c: &Connection,
    target: &str,
    range: Range,
    kinds: Kinds,
) -> Result<Vec<Stored>, StoreError> {
    let Some(conv) = Conversation::open(c, target, kinds)? else {
        return Ok(Vec::new());
    };
    // A point naming a message this conversation does not have: nothing.
    Ok(conv.range(range)?.unwrap_or_default())
}

/// Of `targets`, those whose latest chat message (PRIVMSG or NOTICE) is
/// strictly between `from` and `to`, with its time, the `limit` first from
/// `from`. Other kinds are told apart once decoded: a conversation is read
/// back from its end until a message.
/// Every conversation that holds events (an emptied one is removed).
pub(crate) fn targets(c: &Connection) -> Result<Vec<String>, StoreError> {
    let mut names = c
        .prepare_cached("SELECT name FROM targets ORDER BY name")
        .map_err(failed)?;
    let rows = names.query_map([], |r| r.get(0)).map_err(failed)?;
    rows.collect::<Result<_, _>>().map_err(failed)
}

pub(crate) fn latest(
    c: &Connection,
    targets: &[String],
    prefix: Option<&str>,
    from: Millis,
    to: Millis,
    limit: usize,
) -> Result<Vec<(String, Millis)>, StoreError> {
    let (lo, hi) = (from.min(to), from.max(to));
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
        let Some(conv) = Conversation::open(c, t, Kinds::Messages)? else {
            continue;
        };
        let last = conv.between(FIRST, LAST, Dir::Newest, 1)?;
        if let Some(at) = last.first().map(|e| e.time)
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
    /// The key of its oldest event kept.
    floor: Key,
    target: &'a str,
    /// The events returned, the others stepped over.
    kinds: Kinds,
}

/// Which end of a span to take events from; also which way rows are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Oldest,
    Newest,
}

impl<'a> Conversation<'a> {
    /// The conversation `target`, if it has a row in `targets`.
    fn open(
        c: &'a Connection,
        target: &'a str,
        kinds: Kinds,
    ) -> Result<Option<Conversation<'a>>, StoreError> {
        let found = c
            .prepare_cached("SELECT id, floor_row, floor_idx FROM targets WHERE name = ?1")
            .and_then(|mut s| {
                s.query_row([target], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
                    .optional()
            })
            .map_err(failed)?;
        Ok(found.map(|(id, floor)| Conversation {
            c,
            id,
            floor,
            target,
            kinds,
        }))
    }

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
                let Some((lo, hi)) = self.bounds(point)? else {
                    return Ok(None);
                };
                // As many before as after, the point's own events between,
                // all of them even past the limit.
                let mut events = self.between(FIRST, lo, Dir::Newest, limit / 2)?;
                let below = (lo.0, lo.1.saturating_sub(1));
                let own = self.between(
                    below,
                    (hi.0, hi.1.saturating_add(1)),
                    Dir::Oldest,
                    usize::MAX,
                )?;
                let rest = limit.saturating_sub(events.len()).max(own.len());
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
            Point::Time(t) => {
                let t = millis(t);
                // The first event at `t` or later, and the first after it.
                let lo = self.first_from(t, "last_time >= ?2", |r| millis(r.time) >= t)?;
                let hi = self.first_from(t, "last_time > ?2", |r| millis(r.time) > t)?;
                Ok(Some((
                    lo.unwrap_or(LAST),
                    hi.map_or(LAST, |k| (k.0, k.1 - 1)),
                )))
            }
            Point::Msgid(m) => {
                let found = find_msgid(self.c, self.id, self.floor, m).map_err(failed)?;
                Ok(found.map(|(row, _, i)| ((row, i as i64), (row, i as i64))))
            }
        }
    }

    /// The key of the first event that `is` holds of, in the first row
    /// whose `cond` (on its last time, `?2` = `t`) holds.
    fn first_from(
        &self,
        t: i64,
        cond: &str,
        is: impl Fn(&Record<'_>) -> bool,
    ) -> Result<Option<Key>, StoreError> {
        let sql = format!(
            "SELECT id, data FROM history WHERE target = ?1 AND {cond} ORDER BY last_time, id LIMIT 1"
        );
        let row = self
            .c
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_row(params![self.id, t], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .optional()
            })
            .map_err(failed)?;
        let Some((id, data)) = row else {
            return Ok(None);
        };
        let records = codec::records(&data).map_err(|_| self.damaged())?;
        Ok(records.iter().position(is).map(|i| (id, i as i64)))
    }

    /// The key just below the floor: what is above it is kept.
    fn below_floor(&self) -> Key {
        (self.floor.0, self.floor.1.saturating_sub(1))
    }

    fn damaged(&self) -> StoreError {
        StoreError::Unavailable(format!("a damaged history entry in {}", self.target))
    }

    /// The next row from `id` on (included) in direction `dir`.
    fn row(&self, id: i64, dir: Dir) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        let sql = match dir {
            Dir::Oldest => {
                "SELECT id, data FROM history WHERE target = ?1 AND id >= ?2 ORDER BY id LIMIT 1"
            }
            Dir::Newest => {
                "SELECT id, data FROM history WHERE target = ?1 AND id <= ?2 ORDER BY id DESC LIMIT 1"
            }
        };
        self.c
            .prepare_cached(sql)
            .and_then(|mut s| {
                s.query_row(params![self.id, id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(failed)
    }

    /// The events strictly between `above` and `below` that the
    /// conversation's kinds admit: the `limit` oldest or newest of them,
    /// oldest first.
    fn between(
        &self,
        above: Key,
        below: Key,
        dir: Dir,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        let mut events = Vec::new();
        let above = above.max(self.below_floor());
        if limit == 0 || above >= below {
            return Ok(events);
        }
        let mut next = match dir {
            Dir::Oldest => above.0,
            Dir::Newest => below.0,
        };
        'rows: while let Some((id, data)) = self.row(next, dir)? {
            if id < above.0 || id > below.0 {
                break;
            }
            let records = codec::records(&data).map_err(|_| self.damaged())?;
            let mut places: Box<dyn Iterator<Item = (usize, &Record<'_>)>> = match dir {
                Dir::Oldest => Box::new(records.iter().enumerate()),
                Dir::Newest => Box::new(records.iter().enumerate().rev()),
            };
            for (i, r) in &mut places {
                let key = (id, i as i64);
                if key <= above || key >= below {
                    continue;
                }
                let event = codec::decode(r.event).map_err(|_| self.damaged())?;
                if !self.kinds.admits(&event) {
                    continue;
                }
                events.push(Stored {
                    target: self.target.to_string(),
                    msgid: r.msgid,
                    time: r.time,
                    event,
                });
                if events.len() >= limit {
                    break 'rows;
                }
            }
            next = match dir {
                Dir::Oldest => id.saturating_add(1),
                Dir::Newest => id.saturating_sub(1),
            };
        }
        if dir == Dir::Newest {
            events.reverse();
        }
        Ok(events)
    }
}
