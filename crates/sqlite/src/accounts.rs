//! Accounts in SQL: one row per account, keyed by its casefolded name, and
//! one row per certificate fingerprint (its primary key makes a certificate
//! one account's). Each function runs inside the caller's transaction.

use bavard_core::names::casefold;
use bavard_core::store::{Account, Scram, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::failed;

const COLUMNS: &str = "name, password_hash, scram_salt, scram_iterations, \
                       scram_stored_key, scram_server_key, email, created";

pub(crate) fn get(c: &Connection, key: &str) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT key, {COLUMNS} FROM accounts WHERE key = ?1");
    let found = c
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row([key], row).optional())
        .map_err(failed)?;
    found.map(|r| with_certfps(c, r)).transpose()
}

pub(crate) fn list(c: &Connection) -> Result<Vec<Account>, StoreError> {
    let sql = format!("SELECT key, {COLUMNS} FROM accounts ORDER BY key");
    let rows: Vec<_> = c
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_map([], row)?.collect())
        .map_err(failed)?;
    rows.into_iter().map(|r| with_certfps(c, r)).collect()
}

pub(crate) fn by_certfp(c: &Connection, fp: &str) -> Result<Option<Account>, StoreError> {
    let key: Option<String> = c
        .prepare_cached("SELECT account FROM certfps WHERE fp = ?1")
        .and_then(|mut s| s.query_row([fp], |r| r.get(0)).optional())
        .map_err(failed)?;
    match key {
        Some(key) => get(c, &key),
        None => Ok(None),
    }
}

pub(crate) fn create(c: &Connection, a: &Account) -> Result<(), StoreError> {
    let key = casefold(&a.name);
    if exists(c, &key)? {
        return Err(StoreError::Exists(a.name.clone()));
    }
    certfps_free(c, &key, a)?;
    let sql = format!(
        "INSERT INTO accounts (key, {COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    );
    write(c, &sql, &key, a)?;
    put_certfps(c, &key, a)
}

pub(crate) fn update(c: &Connection, a: &Account) -> Result<(), StoreError> {
    let key = casefold(&a.name);
    if !exists(c, &key)? {
        return Err(StoreError::Missing(a.name.clone()));
    }
    certfps_free(c, &key, a)?;
    let sql = "UPDATE accounts SET name = ?2, password_hash = ?3, scram_salt = ?4, \
               scram_iterations = ?5, scram_stored_key = ?6, scram_server_key = ?7, \
               email = ?8, created = ?9 WHERE key = ?1";
    write(c, sql, &key, a)?;
    put_certfps(c, &key, a)
}

pub(crate) fn delete(c: &Connection, key: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM certfps WHERE account = ?1", [key])
        .map_err(failed)?;
    crate::markers::forget(c, key)?;
    match c.execute("DELETE FROM accounts WHERE key = ?1", [key]) {
        Ok(0) => Err(StoreError::Missing(key.to_string())),
        Ok(_) => Ok(()),
        Err(e) => Err(failed(e)),
    }
}

fn exists(c: &Connection, key: &str) -> Result<bool, StoreError> {
    c.prepare_cached("SELECT 1 FROM accounts WHERE key = ?1")
        .and_then(|mut s| s.exists([key]))
        .map_err(failed)
}

/// `Exists(fp)` for the first certificate of `a` another account holds.
fn certfps_free(c: &Connection, key: &str, a: &Account) -> Result<(), StoreError> {
    let mut s = c
        .prepare_cached("SELECT 1 FROM certfps WHERE fp = ?1 AND account != ?2")
        .map_err(failed)?;
    for fp in &a.certfps {
        if s.exists(params![fp, key]).map_err(failed)? {
            return Err(StoreError::Exists(fp.clone()));
        }
    }
    Ok(())
}

/// Replaces the certificates of the account at `key` by those of `a`, in order.
fn put_certfps(c: &Connection, key: &str, a: &Account) -> Result<(), StoreError> {
    c.execute("DELETE FROM certfps WHERE account = ?1", [key])
        .map_err(failed)?;
    crate::markers::forget(c, key)?;
    let mut s = c
        .prepare_cached("INSERT INTO certfps (fp, account, position) VALUES (?1, ?2, ?3)")
        .map_err(failed)?;
    for (i, fp) in a.certfps.iter().enumerate() {
        s.execute(params![fp, key, i as i64]).map_err(failed)?;
    }
    Ok(())
}

/// Runs `sql` (an insert or an update) with the account's columns as
/// parameters 1 (the key) to 9.
fn write(c: &Connection, sql: &str, key: &str, a: &Account) -> Result<(), StoreError> {
    let s = a.scram.as_ref();
    c.execute(
        sql,
        params![
            key,
            a.name,
            a.password_hash,
            s.map(|s| &s.salt),
            s.map(|s| s.iterations),
            s.map(|s| &s.stored_key[..]),
            s.map(|s| &s.server_key[..]),
            a.email,
            millis(a.created),
        ],
    )
    .map(drop)
    .map_err(failed)
}

/// An account's row, before its certificates are read.
struct AccountRow {
    key: String,
    account: Account,
}

fn row(r: &Row<'_>) -> rusqlite::Result<AccountRow> {
    let salt: Option<Vec<u8>> = r.get(3)?;
    let keys: (Option<u32>, Option<Vec<u8>>, Option<Vec<u8>>) = (r.get(4)?, r.get(5)?, r.get(6)?);
    let scram = match (salt, keys) {
        (Some(salt), (Some(iterations), Some(stored), Some(server))) => Some(Scram {
            salt,
            iterations,
            stored_key: key32(stored, 5)?,
            server_key: key32(server, 6)?,
        }),
        _ => None,
    };
    Ok(AccountRow {
        key: r.get(0)?,
        account: Account {
            name: r.get(1)?,
            password_hash: r.get(2)?,
            scram,
            email: r.get(7)?,
            certfps: Vec::new(),
            created: r.get::<_, i64>(8)?.max(0) as u64,
        },
    })
}

/// A SCRAM key of 32 bytes, from column `col`.
fn key32(bytes: Vec<u8>, col: usize) -> rusqlite::Result<[u8; 32]> {
    let len = bytes.len();
    bytes.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            col,
            rusqlite::types::Type::Blob,
            format!("a SCRAM key of {len} bytes, not 32").into(),
        )
    })
}

fn with_certfps(c: &Connection, r: AccountRow) -> Result<Account, StoreError> {
    let mut a = r.account;
    a.certfps = c
        .prepare_cached("SELECT fp FROM certfps WHERE account = ?1 ORDER BY position")
        .and_then(|mut s| s.query_map([&r.key], |r| r.get(0))?.collect())
        .map_err(failed)?;
    Ok(a)
}

/// Milliseconds as SQLite's signed integer; past 2^63 (never) saturates.
pub(crate) fn millis(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}
