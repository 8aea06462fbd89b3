//! Registered accounts on the KV bucket `bavard_accounts`, shared by every
//! node of a cluster: an account registered through one node logs in on any
//! other, and it is as durable as the nick registry (file storage,
//! replicated, every write acknowledged by a quorum).
//!
//! Two kinds of key:
//!
//! - `a.<account key>` (escaped as [`crate::nick_key`] escapes nicks): the
//!   account as JSON. Its compare-and-set create makes a name one account's.
//! - `f.<fingerprint>`: the key of the account that TLS client certificate
//!   logs in as, for SASL EXTERNAL. Its compare-and-set create makes a
//!   certificate one account's.
//!
//! KV has no transactions, so an account and its certificates are written
//! one key after the other, and the record always goes first: while an
//! account is being created or changed, its record may list a certificate
//! whose `f.` key is not (or no longer) its, never the other way round for
//! a live claim. Hence the rule every reader follows: an `f.` key counts
//! only if the account it names lists that certificate. One that does not
//! is left over (an undone update, a removed certificate, a node that died
//! between two writes) and is taken over by the next account that claims
//! the certificate, so nothing a crash leaves behind blocks a certificate
//! for good. The rule needs fresh reads, which is why the bucket is read
//! through its stream's leader (see `ensure_bucket`'s `direct`).

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv;
use bavard_core::names::casefold;
use bavard_core::store::{Account, AccountStore, Reply, Scram, StoreError};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::registry::escaped_key;

/// How many times a compare-and-set that lost a race is tried again.
const ROUNDS: usize = 5;
/// How many KV reads [`AccountStore::list`] has in flight.
const LIST_CONCURRENCY: usize = 32;
const ACCOUNT_PREFIX: &str = "a.";
const CERTFP_PREFIX: &str = "f.";

/// The KV key of the account whose casefolded name is `key`.
fn account_kv_key(key: &str) -> String {
    escaped_key(ACCOUNT_PREFIX, key)
}

/// The KV key of certificate fingerprint `fp`.
fn certfp_kv_key(fp: &str) -> String {
    escaped_key(CERTFP_PREFIX, fp)
}

/// [`Account`] as stored: core's types carry no serde derives (they are
/// not the wire format of anything else), and a stored record must keep
/// its shape whatever they become.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    name: String,
    password_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scram: Option<ScramRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default)]
    certfps: Vec<String>,
    created: u64,
    /// Set by [`AccountStore::create`], a number of its own: a create whose
    /// ack was lost finds this in the record and knows it is its own, where
    /// another registration of the name (even with the same fields) is
    /// refused. Dropped by the next update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce: Option<u64>,
}

/// [`Scram`] as stored, its bytes in lowercase hex.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct ScramRecord {
    salt: String,
    iterations: u32,
    stored_key: String,
    server_key: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    // Checked first: `from_str_radix` would take a sign.
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A number no other create call gets: random (std's hasher keys are),
/// mixed with the time and a counter.
fn nonce() -> u64 {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    RandomState::new().hash_one((nanos, COUNT.fetch_add(1, Ordering::Relaxed)))
}

fn encode(a: &Account, nonce: Option<u64>) -> Bytes {
    let record = Record {
        name: a.name.clone(),
        password_hash: a.password_hash.clone(),
        scram: a.scram.as_ref().map(|s| ScramRecord {
            salt: hex(&s.salt),
            iterations: s.iterations,
            stored_key: hex(&s.stored_key),
            server_key: hex(&s.server_key),
        }),
        email: a.email.clone(),
        certfps: a.certfps.clone(),
        created: a.created,
        nonce,
    };
    // A struct of strings and integers always serialises.
    Bytes::from(serde_json::to_vec(&record).expect("an account serialises"))
}

fn decode(key: &str, value: &[u8]) -> Result<Account, StoreError> {
    let bad = |why: String| {
        StoreError::Unavailable(format!("the cluster's account bucket: {key}: {why}"))
    };
    let r: Record = serde_json::from_slice(value).map_err(|e| bad(e.to_string()))?;
    let key32 = |hex: &str| -> Result<[u8; 32], StoreError> {
        unhex(hex)
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad(format!("a SCRAM key that is not 32 bytes of hex: {hex:?}")))
    };
    let scram = match r.scram {
        None => None,
        Some(s) => Some(Scram {
            salt: unhex(&s.salt)
                .ok_or_else(|| bad(format!("a salt that is not hex: {:?}", s.salt)))?,
            iterations: s.iterations,
            stored_key: key32(&s.stored_key)?,
            server_key: key32(&s.server_key)?,
        }),
    };
    Ok(Account {
        name: r.name,
        password_hash: r.password_hash,
        scram,
        email: r.email,
        certfps: r.certfps,
        created: r.created,
    })
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("the cluster's account bucket: {what}: {e}"))
}

/// The accounts of the cluster, on bucket `bavard_accounts` (see the
/// module's doc for the keys and why they are written in that order).
///
/// Every method answers [`Reply::Later`]: each is one or more round trips
/// to the stream's leader.
pub struct KvAccounts {
    kv: kv::Store,
}

impl KvAccounts {
    pub(crate) fn new(kv: kv::Store) -> KvAccounts {
        KvAccounts { kv }
    }
}

/// An account as read: the record, its raw value and revision (for a
/// compare-and-set against it).
struct Read {
    account: Account,
    value: Bytes,
    revision: u64,
}

/// The account at `a.<key>`, if there is one (a deleted key is none).
async fn read(kv: &kv::Store, key: &str) -> Result<Option<Read>, StoreError> {
    let kv_key = account_kv_key(key);
    let entry = kv
        .entry(kv_key.as_str())
        .await
        .map_err(|e| unavailable("reading an account", e))?;
    match entry {
        Some(e) if e.operation == kv::Operation::Put => Ok(Some(Read {
            account: decode(&kv_key, &e.value)?,
            value: e.value,
            revision: e.revision,
        })),
        _ => Ok(None),
    }
}

/// Whether the account at `key` lists certificate `fp`: whether its `f.`
/// key, which names it, counts (the module's rule).
async fn lists(kv: &kv::Store, key: &str, fp: &str) -> Result<bool, StoreError> {
    Ok(read(kv, key)
        .await?
        .is_some_and(|r| r.account.certfps.iter().any(|f| f == fp)))
}

/// What [`claim_certfp`] did.
#[derive(Debug, PartialEq)]
enum Claim {
    /// This call wrote the `f.` key: what undoing the call must free.
    Taken,
    /// It already named the account.
    Held,
}

/// Makes certificate `fp` the account `key`'s: creates its `f.` key, or
/// takes over one left over (whose account does not list it);
/// `Exists(fp)` when another account holds it.
async fn claim_certfp(kv: &kv::Store, fp: &str, key: &str) -> Result<Claim, StoreError> {
    let kv_key = certfp_kv_key(fp);
    let value = Bytes::copy_from_slice(key.as_bytes());
    for _ in 0..ROUNDS {
        match kv.create(&kv_key, value.clone()).await {
            Ok(_) => return Ok(Claim::Taken),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(unavailable("claiming a certificate", e)),
        }
        let entry = kv
            .entry(kv_key.as_str())
            .await
            .map_err(|e| unavailable("reading a certificate", e))?;
        // Freed between the two: try again.
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            continue;
        };
        if entry.value == value {
            return Ok(Claim::Held);
        }
        let holder = String::from_utf8_lossy(&entry.value);
        if lists(kv, &holder, fp).await? {
            return Err(StoreError::Exists(fp.to_string()));
        }
        // Left over: ours unless it changed since we read it.
        match kv.update(&kv_key, value.clone(), entry.revision).await {
            Ok(_) => return Ok(Claim::Taken),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
            Err(e) => return Err(unavailable("claiming a certificate", e)),
        }
    }
    Err(StoreError::Unavailable(format!(
        "the cluster's account bucket: certificate {fp} keeps changing hands"
    )))
}

/// Deletes the `f.` key of `fp` if it names account `key`: a
/// revision-checked delete, so a claim by another account meanwhile stands.
async fn release_certfp(kv: &kv::Store, fp: &str, key: &str) -> Result<(), StoreError> {
    let kv_key = certfp_kv_key(fp);
    let entry = kv
        .entry(kv_key.as_str())
        .await
        .map_err(|e| unavailable("reading a certificate", e))?;
    let Some(entry) = entry else { return Ok(()) };
    if entry.operation != kv::Operation::Put || entry.value != key.as_bytes() {
        return Ok(());
    }
    match kv
        .delete_expect_revision(&kv_key, Some(entry.revision))
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => Ok(()),
        Err(e) => Err(unavailable("freeing a certificate", e)),
    }
}

/// [`release_certfp`] for each of `fps`, when freeing is only tidying: an
/// `f.` key left behind does not count (the module's rule), so a failure is
/// logged, not returned.
async fn release_all(kv: &kv::Store, fps: &[String], key: &str) {
    for fp in fps {
        if let Err(e) = release_certfp(kv, fp, key).await {
            tracing::warn!(account = key, fp = %fp, "left a certificate key behind: {e}");
        }
    }
}

/// The distinct fingerprints of `a`, in order.
fn distinct(certfps: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    certfps
        .iter()
        .filter(|f| seen.insert(f.as_str()))
        .cloned()
        .collect()
}

/// Claims every certificate of `fps` for account `key`; on `Exists(fp)` (or
/// an error) frees those this call took and returns it.
async fn claim_all(kv: &kv::Store, fps: &[String], key: &str) -> Result<(), StoreError> {
    let mut taken = Vec::new();
    for fp in fps {
        match claim_certfp(kv, fp, key).await {
            Ok(Claim::Taken) => taken.push(fp.clone()),
            Ok(Claim::Held) => {}
            Err(e) => {
                release_all(kv, &taken, key).await;
                return Err(e);
            }
        }
    }
    Ok(())
}

async fn create(kv: kv::Store, account: Account) -> Result<(), StoreError> {
    let key = casefold(&account.name);
    let kv_key = account_kv_key(&key);
    let value = encode(&account, Some(nonce()));
    let mut revision = None;
    for _ in 0..ROUNDS {
        match kv.create(&kv_key, value.clone()).await {
            Ok(r) => {
                revision = Some(r);
                break;
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(unavailable("creating an account", e)),
        }
        match read(&kv, &key).await? {
            // Ours: our first try landed but its ack was lost.
            Some(r) if r.value == value => {
                revision = Some(r.revision);
                break;
            }
            Some(_) => return Err(StoreError::Exists(account.name)),
            // Deleted between the two: try again.
            None => {}
        }
    }
    let Some(revision) = revision else {
        return Err(StoreError::Unavailable(format!(
            "the cluster's account bucket: account {key} keeps changing"
        )));
    };
    let fps = distinct(&account.certfps);
    if let Err(e) = claim_all(&kv, &fps, &key).await {
        // Undone: the record goes, unless it was changed meanwhile (then
        // it is someone's who saw it).
        match kv.delete_expect_revision(&kv_key, Some(revision)).await {
            Ok(()) => {}
            Err(d) if d.kind() == kv::DeleteErrorKind::WrongLastRevision => {}
            Err(d) => tracing::warn!(account = %key, "left a refused account behind: {d}"),
        }
        return Err(e);
    }
    Ok(())
}

async fn update(kv: kv::Store, account: Account) -> Result<(), StoreError> {
    let key = casefold(&account.name);
    let kv_key = account_kv_key(&key);
    let value = encode(&account, None);
    let mut written = None;
    for _ in 0..ROUNDS {
        let Some(old) = read(&kv, &key).await? else {
            return Err(StoreError::Missing(account.name));
        };
        match kv.update(&kv_key, value.clone(), old.revision).await {
            Ok(revision) => {
                written = Some((old, revision));
                break;
            }
            // Changed since we read it: read it again.
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
            Err(e) => return Err(unavailable("updating an account", e)),
        }
    }
    let Some((old, revision)) = written else {
        return Err(StoreError::Unavailable(format!(
            "the cluster's account bucket: account {key} keeps changing"
        )));
    };
    // Every certificate, not only the added ones: claiming one already
    // held is a read, and it mends an `f.` key a crash left unwritten.
    let fps = distinct(&account.certfps);
    if let Err(e) = claim_all(&kv, &fps, &key).await {
        // Put back as it was, unless changed meanwhile.
        match kv.update(&kv_key, old.value, revision).await {
            Ok(_) => {}
            Err(u) if u.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
            Err(u) => tracing::warn!(account = %key, "could not put an account back: {u}"),
        }
        return Err(e);
    }
    let removed: Vec<String> = (old.account.certfps.into_iter())
        .filter(|f| !fps.contains(f))
        .collect();
    release_all(&kv, &removed, &key).await;
    Ok(())
}

async fn delete(kv: kv::Store, key: String) -> Result<(), StoreError> {
    let kv_key = account_kv_key(&key);
    for _ in 0..ROUNDS {
        let Some(old) = read(&kv, &key).await? else {
            return Err(StoreError::Missing(key));
        };
        match kv.delete_expect_revision(&kv_key, Some(old.revision)).await {
            Ok(()) => {
                release_all(&kv, &old.account.certfps, &key).await;
                return Ok(());
            }
            Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => {}
            Err(e) => return Err(unavailable("deleting an account", e)),
        }
    }
    Err(StoreError::Unavailable(format!(
        "the cluster's account bucket: account {key} keeps changing"
    )))
}

async fn list(kv: kv::Store) -> Result<Vec<Account>, StoreError> {
    let keys: Vec<String> = kv
        .keys()
        .await
        .map_err(|e| unavailable("listing the accounts", e))?
        .try_collect()
        .await
        .map_err(|e| unavailable("listing the accounts", e))?;
    let kv = &kv;
    let mut accounts: Vec<Account> = futures_util::stream::iter(keys)
        .filter(|k| std::future::ready(k.starts_with(ACCOUNT_PREFIX)))
        .map(|k| async move {
            let entry = kv
                .entry(k.as_str())
                .await
                .map_err(|e| unavailable("reading an account", e))?;
            match entry {
                Some(e) if e.operation == kv::Operation::Put => decode(&k, &e.value).map(Some),
                // Deleted since it was listed.
                _ => Ok(None),
            }
        })
        .buffer_unordered(LIST_CONCURRENCY)
        .try_filter_map(|a| std::future::ready(Ok(a)))
        .try_collect()
        .await?;
    // By key, as the other stores list them.
    accounts.sort_by_cached_key(|a| casefold(&a.name));
    Ok(accounts)
}

async fn by_certfp(kv: kv::Store, fp: String) -> Result<Option<Account>, StoreError> {
    let entry = kv
        .entry(certfp_kv_key(&fp))
        .await
        .map_err(|e| unavailable("reading a certificate", e))?;
    let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
        return Ok(None);
    };
    let key = String::from_utf8_lossy(&entry.value);
    // Only if the account lists it (the module's rule).
    Ok(read(&kv, &key)
        .await?
        .map(|r| r.account)
        .filter(|a| a.certfps.contains(&fp)))
}

impl AccountStore for KvAccounts {
    fn get(&self, key: &str) -> Reply<Result<Option<Account>, StoreError>> {
        let kv = self.kv.clone();
        let key = key.to_string();
        Reply::Later(Box::pin(async move {
            Ok(read(&kv, &key).await?.map(|r| r.account))
        }))
    }

    fn create(&self, account: Account) -> Reply<Result<(), StoreError>> {
        Reply::Later(Box::pin(create(self.kv.clone(), account)))
    }

    fn update(&self, account: Account) -> Reply<Result<(), StoreError>> {
        Reply::Later(Box::pin(update(self.kv.clone(), account)))
    }

    fn delete(&self, key: &str) -> Reply<Result<(), StoreError>> {
        Reply::Later(Box::pin(delete(self.kv.clone(), key.to_string())))
    }

    fn list(&self) -> Reply<Result<Vec<Account>, StoreError>> {
        Reply::Later(Box::pin(list(self.kv.clone())))
    }

    fn by_certfp(&self, fp: &str) -> Reply<Result<Option<Account>, StoreError>> {
        Reply::Later(Box::pin(by_certfp(self.kv.clone(), fp.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            name: "Alice".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            scram: Some(Scram {
                salt: vec![0, 1, 0xfe, 0xff],
                iterations: 4096,
                stored_key: [7; 32],
                server_key: [0xa9; 32],
            }),
            email: Some("a@example.org".into()),
            certfps: vec!["ab12".into(), "cd34".into()],
            created: 1_700_000_000_123,
        }
    }

    #[test]
    fn records_round_trip() {
        let a = account();
        assert_eq!(decode("a.alice", &encode(&a, Some(7))), Ok(a.clone()));
        assert_ne!(encode(&a, Some(nonce())), encode(&a, Some(nonce())));
        let bare = Account {
            scram: None,
            email: None,
            certfps: Vec::new(),
            ..a
        };
        let value = encode(&bare, None);
        assert!(!String::from_utf8_lossy(&value).contains("scram"));
        assert_eq!(decode("a.alice", &value), Ok(bare));
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        for value in [
            &b"junk"[..],
            br#"{"name":"a"}"#,
            br#"{"name":"a","password_hash":"h","created":0,"scram":{"salt":"0","iterations":1,"stored_key":"","server_key":""}}"#,
            br#"{"name":"a","password_hash":"h","created":0,"scram":{"salt":"00","iterations":1,"stored_key":"00","server_key":"00"}}"#,
        ] {
            let e = decode("a.a", value).unwrap_err();
            assert!(
                matches!(&e, StoreError::Unavailable(m) if m.contains("account bucket")),
                "{e:?}"
            );
        }
    }

    #[test]
    fn hex_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&all)), Some(all));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("é0"), None);
        assert_eq!(unhex("+f"), None);
    }

    #[test]
    fn keys_are_escaped_and_apart() {
        assert_eq!(account_kv_key("alice"), "a.alice");
        assert_eq!(account_kv_key("[a]"), "a._5Ba_5D");
        assert_eq!(certfp_kv_key("ab12"), "f.ab12");
        assert_eq!(distinct(&["b".into(), "a".into(), "b".into()]), ["b", "a"]);
    }
}
