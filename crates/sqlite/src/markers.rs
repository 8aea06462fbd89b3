//! The accounts' read markers in SQL (`read_markers`, schema step 2): one
//! row per account and conversation, both casefolded.

use bavard_core::store::{Marker, StoreError};
use rusqlite::{Connection, params};

use crate::accounts::millis;
use crate::failed;

/// Moves a marker forward; a new one past `keep` replaces the account's
/// marker read longest ago.
pub(crate) fn save(c: &Connection, m: &Marker, keep: usize) -> Result<(), StoreError> {
    if keep == 0 {
        return Ok(());
    }
    let at = millis(m.at);
    let moved = c
        .prepare_cached(
            "UPDATE read_markers SET at = max(at, ?3) WHERE account = ?1 AND target = ?2",
        )
        .and_then(|mut s| s.execute(params![m.account, m.target, at]))
        .map_err(failed)?;
    if moved > 0 {
        return Ok(());
    }
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    // Those past the first `keep - 1` by recency make room for the new one.
    c.prepare_cached(
        "DELETE FROM read_markers WHERE account = ?1 AND target IN \
         (SELECT target FROM read_markers WHERE account = ?1 \
          ORDER BY at DESC, target LIMIT -1 OFFSET ?2)",
    )
    .and_then(|mut s| s.execute(params![m.account, keep - 1]))
    .map_err(failed)?;
    c.prepare_cached("INSERT INTO read_markers (account, target, at) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![m.account, m.target, at]))
        .map(drop)
        .map_err(failed)
}

pub(crate) fn all(c: &Connection) -> Result<Vec<Marker>, StoreError> {
    let mut s = c
        .prepare_cached("SELECT account, target, at FROM read_markers ORDER BY account, target")
        .map_err(failed)?;
    let rows = s
        .query_map([], |r| {
            Ok(Marker {
                account: r.get(0)?,
                target: r.get(1)?,
                at: r.get::<_, i64>(2)?.max(0) as u64,
            })
        })
        .map_err(failed)?;
    rows.collect::<Result<_, _>>().map_err(failed)
}

/// The markers on `from` move to `to`, replacing any there.
pub(crate) fn rename(c: &Connection, from: &str, to: &str) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM read_markers WHERE target = ?2 AND account IN \
         (SELECT account FROM read_markers WHERE target = ?1)",
        [from, to],
    )
    .map_err(failed)?;
    c.execute(
        "UPDATE read_markers SET target = ?2 WHERE target = ?1",
        [from, to],
    )
    .map(drop)
    .map_err(failed)
}

pub(crate) fn forget(c: &Connection, account: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM read_markers WHERE account = ?1", [account])
        .map(drop)
        .map_err(failed)
}
