//! History in SQL. A row of `history` holds a run of one conversation's
//! events, in order (codec's records): what one batch of the writer added
//! to it. A busy channel costs one row per batch rather than one per
//! message, and reading 100 lines reads a few rows.
//!
//! A conversation's order is its rows' ids, then the events' places in
//! them: a [`Key`]. Times never decrease along that order (the hub's clock
//! does not go back), so a time is found by the index on `(target,
//! last_time)`, and a msgid by the one on `(target, max_msgid, min_msgid)`.
//! A `Point` becomes two keys: what is before it is below its low key,
//! what is after it above its high key (a time covers every event of its
//! millisecond, a message only itself).
//!
//! A conversation keeps its last `max_per_target` events exactly, without
//! rewriting a row at every commit: its *floor* (in `targets`) is the key of
//! its oldest event kept; readers skip what is below it, and the writer
//! deletes a row once all of it is.

use std::collections::HashMap;

use bavard_core::MsgId;
use bavard_core::notify::Millis;
use rusqlite::{Connection, OptionalExtension, params};

use crate::accounts::millis;
use crate::codec::{self, Record};

/// A place in a conversation's order: (row id, place in the row).
type Key = (i64, i64);

/// Below every event, above every event.
const FIRST: Key = (i64::MIN, i64::MIN);
const LAST: Key = (i64::MAX, i64::MAX);

/// Events in one row, at most: a read of 100 lines decodes a row or two,
/// not everything a flood added to a channel in one commit.
const ROW_EVENTS: usize = 256;

/// Conversations the writer remembers at most; past it, it forgets them
/// all (and reads them again as needed).
const CACHED: usize = 65_536;

/// A conversation as the writer knows it: its id, how many events it
/// keeps, and the key of the oldest.
#[derive(Clone, Copy, Debug)]
struct Known {
    id: i64,
    events: i64,
    floor: Key,
}

/// What the writer remembers of the conversations it writes to, so that a
/// batch does not look each one up again. Cleared when a batch fails.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    known: HashMap<String, Known>,
}

impl Cache {
    fn get(&mut self, c: &Connection, name: &str) -> rusqlite::Result<Option<Known>> {
        if let Some(k) = self.known.get(name) {
            return Ok(Some(*k));
        }
        let found = c
            .prepare_cached("SELECT id, events, floor_row, floor_idx FROM targets WHERE name = ?1")?
            .query_row([name], |r| {
                Ok(Known {
                    id: r.get(0)?,
                    events: r.get(1)?,
                    floor: (r.get(2)?, r.get(3)?),
                })
            })
            .optional()?;
        if let Some(k) = found {
            self.remember(name, k);
        }
        Ok(found)
    }

    /// Conversation `name`, created if it is new.
    fn ensure(&mut self, c: &Connection, name: &str) -> rusqlite::Result<Known> {
        if let Some(k) = self.get(c, name)? {
            return Ok(k);
        }
        let id = c
            .prepare_cached("INSERT INTO targets (name) VALUES (?1)")?
            .insert([name])?;
        let k = Known {
            id,
            events: 0,
            floor: (0, 0),
        };
        self.remember(name, k);
        Ok(k)
    }

    fn remember(&mut self, name: &str, k: Known) {
        if self.known.len() >= CACHED && !self.known.contains_key(name) {
            self.known.clear();
        }
        self.known.insert(name.to_string(), k);
    }

    /// Saves what changed of conversation `k` (named `name`).
    fn save(&mut self, c: &Connection, name: &str, k: Known) -> rusqlite::Result<()> {
        c.prepare_cached(
            "UPDATE targets SET events = ?2, floor_row = ?3, floor_idx = ?4 WHERE id = ?1",
        )?
        .execute(params![k.id, k.events, k.floor.0, k.floor.1])?;
        self.remember(name, k);
        Ok(())
    }
}

/// History appends queued one after the other (a span of the batch's
/// encoded appends, `codec::push_append`), written together.
#[derive(Debug, Default)]
pub(crate) struct Appends {
    /// The span of the batch's appends not written yet.
    span: std::ops::Range<usize>,
    chunk: Vec<u8>,
}

impl Appends {
    /// Adds the batch's appends up to byte `end`.
    pub(crate) fn add(&mut self, end: usize) {
        self.span.end = end;
    }

    /// Writes what was added of `queued` (the batch's appends): a row per
    /// conversation (or a few: at most [`ROW_EVENTS`] each). Each keeps
    /// its last `keep` events.
    pub(crate) fn write(
        &mut self,
        c: &Connection,
        cache: &mut Cache,
        queued: &[u8],
    ) -> rusqlite::Result<()> {
        let end = self.span.end;
        let span = std::mem::replace(&mut self.span, end..end);
        let Some(bytes) = queued.get(span).filter(|b| !b.is_empty()) else {
            return Ok(());
        };
        // Encoded by this process moments ago: damage is a bug, not a file.
        let events = codec::queued(bytes).map_err(|_| corrupt(0))?;
        // Each conversation's events, in order; conversations in the order
        // they first appear.
        let mut order: Vec<(&str, usize, Vec<codec::Record<'_>>)> = Vec::new();
        let mut place: foldhash::HashMap<&str, usize> = foldhash::HashMap::default();
        for e in &events {
            let i = *place.entry(e.target).or_insert_with(|| {
                order.push((e.target, e.keep, Vec::new()));
                order.len() - 1
            });
            order[i].1 = e.keep;
            order[i].2.push(e.record);
        }
        let mut insert = c.prepare_cached(
            "INSERT INTO history (target, first_time, last_time, min_msgid, max_msgid, events, data) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (target, keep, run) in order {
            let keep = i64::try_from(keep).unwrap_or(i64::MAX);
            let mut added = 0;
            let mut k = None;
            for part in run.chunks(ROW_EVENTS) {
                self.chunk.clear();
                let mut span = Span::default();
                for r in part {
                    self.chunk.extend_from_slice(r.bytes);
                    span.add(r.msgid, r.time);
                }
                let known = match k {
                    Some(known) => known,
                    None => *k.insert(cache.ensure(c, target)?),
                };
                insert.execute(params![
                    known.id,
                    span.first_time,
                    span.last_time,
                    span.min_msgid,
                    span.max_msgid,
                    span.events,
                    self.chunk
                ])?;
                added += span.events;
            }
            let Some(mut known) = k else {
                continue;
            };
            known.events += added;
            let over = known.events - keep;
            if over > 0 {
                trim(c, &mut known, over)?;
            }
            cache.save(c, target, known)?;
        }
        // A flood's batch can be large: its buffer is not kept.
        if self.chunk.capacity() > 1 << 20 {
            self.chunk = Vec::new();
        }
        Ok(())
    }
}

/// What a row holds: its times, its msgids and how many events.
#[derive(Debug, Default)]
struct Span {
    first_time: i64,
    last_time: i64,
    min_msgid: i64,
    max_msgid: i64,
    events: i64,
}

impl Span {
    fn add(&mut self, msgid: MsgId, time: Millis) {
        let (m, t) = (msgid.raw() as i64, millis(time));
        if self.events == 0 {
            (self.first_time, self.min_msgid, self.max_msgid) = (t, m, m);
        }
        self.last_time = t;
        self.min_msgid = self.min_msgid.min(m);
        self.max_msgid = self.max_msgid.max(m);
        self.events += 1;
    }

    fn of(records: &[Record<'_>]) -> Span {
        let mut s = Span::default();
        for r in records {
            s.add(r.msgid, r.time);
        }
        s
    }
}

/// A row whose data cannot be read: said, and treated as a failed write.
fn corrupt(id: i64) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(format!("damaged history row {id}").into())
}

/// Replaces row `id` with `kept` of its events (deleting it if none are).
fn rewrite(c: &Connection, id: i64, kept: &[Record<'_>]) -> rusqlite::Result<()> {
    if kept.is_empty() {
        c.prepare_cached("DELETE FROM history WHERE id = ?1")?
            .execute([id])?;
        return Ok(());
    }
    let data: Vec<u8> = kept.iter().flat_map(|r| r.bytes).copied().collect();
    let s = Span::of(kept);
    c.prepare_cached(
        "UPDATE history SET first_time = ?2, last_time = ?3, min_msgid = ?4, max_msgid = ?5, \
         events = ?6, data = ?7 WHERE id = ?1",
    )?
    .execute(params![
        id,
        s.first_time,
        s.last_time,
        s.min_msgid,
        s.max_msgid,
        s.events,
        data
    ])?;
    Ok(())
}

/// Raises the floor of conversation `k` by `n` events, deleting the rows
/// left wholly below it.
fn trim(c: &Connection, k: &mut Known, n: i64) -> rusqlite::Result<()> {
    let mut left = n;
    let mut next = c.prepare_cached(
        "SELECT id, events FROM history WHERE target = ?1 AND id >= ?2 ORDER BY id LIMIT 1",
    )?;
    while left > 0 {
        let Some((row, events)) = next
            .query_row(params![k.id, k.floor.0], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()?
        else {
            break;
        };
        let below = if row == k.floor.0 { k.floor.1 } else { 0 };
        let kept = events - below;
        if kept <= left {
            c.prepare_cached("DELETE FROM history WHERE id = ?1")?
                .execute([row])?;
            left -= kept;
            k.floor = (row + 1, 0);
        } else {
            k.floor = (row, below + left);
            left = 0;
        }
    }
    k.events -= n - left;
    Ok(())
}

/// The row of conversation `target` holding `msgid` (above `floor`), its
/// data and the message's place in it.
fn find_msgid(
    c: &Connection,
    target: i64,
    floor: Key,
    msgid: MsgId,
) -> rusqlite::Result<Option<(i64, Vec<u8>, usize)>> {
    let m = msgid.raw() as i64;
    let mut s = c.prepare_cached(
        "SELECT id, data FROM history WHERE target = ?1 AND max_msgid >= ?2 AND min_msgid <= ?2 \
         ORDER BY max_msgid",
    )?;
    let mut rows = s.query(params![target, m])?;
    while let Some(r) = rows.next()? {
        let (id, data): (i64, Vec<u8>) = (r.get(0)?, r.get(1)?);
        let records = codec::records(&data).map_err(|_| corrupt(id))?;
        if let Some(i) = records.iter().position(|r| r.msgid == msgid)
            && (id, i as i64) >= floor
        {
            return Ok(Some((id, data, i)));
        }
    }
    Ok(None)
}

pub(crate) fn remove(
    c: &Connection,
    cache: &mut Cache,
    target: &str,
    msgid: MsgId,
) -> rusqlite::Result<()> {
    let Some(mut k) = cache.get(c, target)? else {
        return Ok(());
    };
    let Some((row, data, i)) = find_msgid(c, k.id, k.floor, msgid)? else {
        return Ok(());
    };
    // Above the floor: the places below it in this row do not move.
    let mut records = codec::records(&data).map_err(|_| corrupt(row))?;
    records.remove(i);
    rewrite(c, row, &records)?;
    k.events -= 1;
    cache.save(c, target, k)
}

pub(crate) fn forget(c: &Connection, cache: &mut Cache, target: &str) -> rusqlite::Result<()> {
    let Some(k) = cache.get(c, target)? else {
        return Ok(());
    };
    c.execute("DELETE FROM history WHERE target = ?1", [k.id])?;
    c.execute("DELETE FROM targets WHERE id = ?1", [k.id])?;
    cache.known.remove(target);
    Ok(())
}

/// Removes the events older than `before`, and the conversations left
/// empty. Scans the whole table: it runs seldom (the retention task). A
/// row cut at its start loses what was below its conversation's floor too,
/// and the floor goes to its start.
pub(crate) fn prune(c: &Connection, cache: &mut Cache, before: Millis) -> rusqlite::Result<()> {
    let before = i64::try_from(before).unwrap_or(i64::MAX);
    cache.known.clear();
    c.execute("DELETE FROM history WHERE last_time < ?1", [before])?;
    let mut partly = c.prepare(
        "SELECT h.id, h.data, t.floor_row, t.floor_idx FROM history h JOIN targets t ON t.id = h.target \
         WHERE h.first_time < ?1 AND h.last_time >= ?1",
    )?;
    let rows = partly
        .query_map([before], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (id, data, floor_row, floor_idx) in &rows {
        let records = codec::records(data).map_err(|_| corrupt(*id))?;
        let mut from = records.partition_point(|r| millis(r.time) < before);
        if id == floor_row {
            from = from.max(usize::try_from(*floor_idx).unwrap_or(0));
        }
        rewrite(c, *id, &records[from..])?;
        if id == floor_row {
            c.execute(
                "UPDATE targets SET floor_idx = 0 WHERE floor_row = ?1",
                [id],
            )?;
        }
    }
    // A floor whose row went moves to the start of the next; then each
    // count is what its rows hold above the floor (none are below its row).
    c.execute_batch(
        "UPDATE targets SET floor_idx = 0 WHERE floor_idx > 0 AND \
           NOT EXISTS (SELECT 1 FROM history WHERE id = targets.floor_row);
         UPDATE targets SET events = \
           (SELECT coalesce(sum(events), 0) FROM history WHERE history.target = targets.id) - floor_idx;
         DELETE FROM history WHERE target IN (SELECT id FROM targets WHERE events <= 0);
         DELETE FROM targets WHERE events <= 0;",
    )
}

/// Moves the conversation `from` to `to`, replacing what `to` had.
pub(crate) fn rename(
    c: &Connection,
    cache: &mut Cache,
    from: &str,
    to: &str,
) -> rusqlite::Result<()> {
    forget(c, cache, to)?;
    cache.known.remove(from);
    c.prepare_cached("UPDATE targets SET name = ?2 WHERE name = ?1")?
        .execute([from, to])
        .map(drop)
}

/// Schema 2's conversion: the events of `history_v1` (a row each) become
/// rows of runs, in each conversation's order; the old table goes.
pub(crate) fn convert_v1(c: &Connection) -> rusqlite::Result<()> {
    let mut insert = c.prepare(
        "INSERT INTO history (target, first_time, last_time, min_msgid, max_msgid, events, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut flush = |target: i64, span: &mut Span, chunk: &mut Vec<u8>| -> rusqlite::Result<()> {
        if span.events > 0 {
            insert.execute(params![
                target,
                span.first_time,
                span.last_time,
                span.min_msgid,
                span.max_msgid,
                span.events,
                &chunk[..]
            ])?;
        }
        *span = Span::default();
        chunk.clear();
        Ok(())
    };
    let mut old =
        c.prepare("SELECT target, msgid, time, event FROM history_v1 ORDER BY target, time, seq")?;
    let mut rows = old.query([])?;
    let (mut target, mut span, mut chunk) = (None, Span::default(), Vec::new());
    while let Some(r) = rows.next()? {
        let t: i64 = r.get(0)?;
        let (msgid, time) = (
            MsgId::from_raw(r.get::<_, i64>(1)? as u64),
            r.get::<_, i64>(2)?.max(0) as u64,
        );
        if target != Some(t) || span.events as usize >= ROW_EVENTS {
            if let Some(prev) = target {
                flush(prev, &mut span, &mut chunk)?;
            }
            target = Some(t);
        }
        codec::push_encoded(&mut chunk, msgid, time, r.get_ref(3)?.as_blob()?);
        span.add(msgid, time);
    }
    if let Some(prev) = target {
        flush(prev, &mut span, &mut chunk)?;
    }
    drop(rows);
    c.execute_batch("DROP TABLE history_v1;")
}

mod read;

pub(crate) use read::{latest, read, targets};
