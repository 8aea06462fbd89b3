//! The nick registry on the KV bucket `bavard_nicks`: the one place in the
//! network where a nick is decided, by JetStream's compare-and-set create.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use async_nats::jetstream::kv;
use bavard_core::ConnId;
use bavard_core::store::{NameRegistry, Reply, StoreError};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

/// How many KV reads [`KvRegistry::release_node`] has in flight.
const SCAN_CONCURRENCY: usize = 32;

/// The KV key of casefolded nick `nick`. KV keys allow only
/// `[-/_=.a-zA-Z0-9]`, while a casefolded IRC nick may hold `[]\^{}|` and
/// non-ASCII: every byte outside `[a-z0-9-]` becomes `_XX` (its hex), `_`
/// itself too, so two nicks never share a key; `n.` sets nicks apart from
/// any other kind of key the bucket may get.
pub fn nick_key(nick: &str) -> String {
    escaped_key("n.", nick)
}

/// `prefix` then `s` escaped as [`nick_key`] does: a valid KV key token that
/// no other `s` maps to (the account bucket's keys are made the same way).
pub(crate) fn escaped_key(prefix: &str, s: &str) -> String {
    let mut k = String::with_capacity(prefix.len() + s.len());
    k.push_str(prefix);
    for b in s.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' {
            k.push(b as char);
        } else {
            k.push_str(&format!("_{b:02X}"));
        }
    }
    k
}

/// Who holds each nick, network-wide, in the bucket `bavard_nicks`: key
/// [`nick_key`], value the owner's [`ConnId::raw`] in decimal, from which
/// [`KvRegistry::release_node`] finds a dead node's nicks.
///
/// Channels are not registered: a channel's state is replicated through the
/// stream, every joiner of a missing channel founds it locally, and two
/// nodes founding one at once converge by the log's order (the second
/// founding applies as a join), so a KV round trip per channel would buy
/// nothing.
pub struct KvRegistry {
    kv: kv::Store,
    /// The keys this node claimed, per owner: what `release_owner` frees
    /// without scanning the bucket.
    held: Arc<Mutex<HashMap<ConnId, Vec<String>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("nick registry: {what}: {e}"))
}

impl KvRegistry {
    pub(crate) fn new(kv: kv::Store) -> KvRegistry {
        KvRegistry {
            kv,
            held: Arc::default(),
        }
    }

    /// See [`crate::Bus::release_node`].
    pub(crate) async fn release_node(&self, number: u16) -> anyhow::Result<usize> {
        let keys: Vec<String> = self
            .kv
            .keys()
            .await
            .context("listing the nicks")?
            .try_collect()
            .await
            .context("listing the nicks")?;
        let kv = &self.kv;
        let freed = futures_util::stream::iter(keys)
            .map(|key| async move {
                let Some(entry) = kv.entry(key.as_str()).await? else {
                    return anyhow::Ok(false);
                };
                if entry.operation != kv::Operation::Put || owner_node(&entry.value) != Some(number)
                {
                    return Ok(false);
                }
                match kv.delete_expect_revision(&key, Some(entry.revision)).await {
                    Ok(()) => Ok(true),
                    // Changed since we read it: someone else's now, or freed.
                    Err(e) if is_wrong_revision(&e) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            })
            .buffer_unordered(SCAN_CONCURRENCY)
            .try_fold(0, |n, freed| async move { Ok(n + usize::from(freed)) })
            .await
            .context("freeing a node's nicks")?;
        lock(&self.held).retain(|owner, _| owner.node() != number);
        Ok(freed)
    }
}

impl KvRegistry {
    /// Frees every channel name: the network starts again with no channel
    /// (no node ran), and names founded in an earlier life are free.
    pub(crate) async fn forget_channels(&self) -> anyhow::Result<usize> {
        let keys: Vec<String> = self
            .kv
            .keys()
            .await
            .context("listing the channels")?
            .try_collect()
            .await
            .context("listing the channels")?;
        let mut n = 0;
        for key in keys.iter().filter(|k| k.starts_with(CHANNEL_PREFIX)) {
            self.kv
                .delete(key)
                .await
                .context("freeing a channel name")?;
            n += 1;
        }
        Ok(n)
    }
}

const CHANNEL_PREFIX: &str = "c.";

/// The bucket key of a (casefolded) channel name.
fn channel_key(key: &str) -> String {
    escaped_key(CHANNEL_PREFIX, key)
}

/// The node of the owner stored as a nick's value.
fn owner_node(value: &[u8]) -> Option<u16> {
    let raw: u64 = std::str::from_utf8(value).ok()?.parse().ok()?;
    Some(ConnId::from_raw(raw).node())
}

fn is_wrong_revision(e: &kv::DeleteError) -> bool {
    e.kind() == kv::DeleteErrorKind::WrongLastRevision
}

fn owner_value(owner: ConnId) -> Bytes {
    Bytes::from(owner.raw().to_string())
}

/// Frees `key` if `owner` holds it: a revision-checked delete, so a claim
/// by someone else between the read and the delete stands.
async fn release(kv: &kv::Store, key: &str, owner: ConnId) -> Result<(), StoreError> {
    let entry = kv
        .entry(key)
        .await
        .map_err(|e| unavailable("reading a nick", e))?;
    let Some(entry) = entry else { return Ok(()) };
    if entry.operation != kv::Operation::Put || entry.value != owner_value(owner) {
        return Ok(());
    }
    match kv.delete_expect_revision(key, Some(entry.revision)).await {
        Ok(()) => Ok(()),
        Err(e) if is_wrong_revision(&e) => Ok(()),
        Err(e) => Err(unavailable("freeing a nick", e)),
    }
}

fn forget(held: &Mutex<HashMap<ConnId, Vec<String>>>, key: &str, owner: ConnId) {
    let mut h = lock(held);
    if let Some(keys) = h.get_mut(&owner) {
        keys.retain(|k| k != key);
        if keys.is_empty() {
            h.remove(&owner);
        }
    }
}

impl NameRegistry for KvRegistry {
    fn claim_nick(&self, key: &str, owner: ConnId) -> Reply<Result<bool, StoreError>> {
        let kv = self.kv.clone();
        let held = self.held.clone();
        let key = nick_key(key);
        Reply::Later(Box::pin(async move {
            // A few rounds: the holder may free it between our create and get.
            for _ in 0..3 {
                match kv.create(&key, owner_value(owner)).await {
                    Ok(_) => {
                        let mut h = lock(&held);
                        let keys = h.entry(owner).or_default();
                        if !keys.contains(&key) {
                            keys.push(key);
                        }
                        return Ok(true);
                    }
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                        let v = kv
                            .get(&key)
                            .await
                            .map_err(|e| unavailable("reading a nick", e))?;
                        match v {
                            // Ours: also when a create whose ack was lost is
                            // retried.
                            Some(v) if v == owner_value(owner) => {
                                let mut h = lock(&held);
                                let keys = h.entry(owner).or_default();
                                if !keys.contains(&key) {
                                    keys.push(key);
                                }
                                return Ok(true);
                            }
                            Some(_) => return Ok(false),
                            None => continue,
                        }
                    }
                    Err(e) => return Err(unavailable("claiming a nick", e)),
                }
            }
            Err(StoreError::Unavailable(format!(
                "nick registry: {key} keeps changing hands"
            )))
        }))
    }

    fn release_nick(&self, key: &str, owner: ConnId) -> Reply<Result<(), StoreError>> {
        let kv = self.kv.clone();
        let held = self.held.clone();
        let key = nick_key(key);
        Reply::Later(Box::pin(async move {
            let r = release(&kv, &key, owner).await;
            forget(&held, &key, owner);
            r
        }))
    }

    fn release_owner(&self, owner: ConnId) -> Reply<Result<(), StoreError>> {
        let kv = self.kv.clone();
        let keys = lock(&self.held).remove(&owner).unwrap_or_default();
        Reply::Later(Box::pin(async move {
            let mut result = Ok(());
            for key in keys {
                if let Err(e) = release(&kv, &key, owner).await {
                    result = Err(e);
                }
            }
            result
        }))
    }

    /// A channel's founder is decided here too, so that of two users
    /// joining a new channel on two nodes at once exactly one gets `+o`
    /// (the other joins it as a plain member).
    fn found_channel(&self, key: &str) -> Reply<Result<bool, StoreError>> {
        let kv = self.kv.clone();
        let key = channel_key(key);
        Reply::Later(Box::pin(async move {
            match kv.create(&key, Bytes::from_static(b"founded")).await {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(unavailable("founding a channel", e)),
            }
        }))
    }

    fn drop_channel(&self, key: &str) -> Reply<Result<(), StoreError>> {
        let kv = self.kv.clone();
        let key = channel_key(key);
        Reply::Later(Box::pin(async move {
            kv.delete(&key)
                .await
                .map_err(|e| unavailable("freeing a channel name", e))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn is_kv_key(k: &str) -> bool {
        k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b))
    }

    #[test]
    fn nick_keys_are_valid_kv_keys() {
        assert_eq!(nick_key("bob"), "n.bob");
        assert_eq!(nick_key("a-9"), "n.a-9");
        assert_eq!(nick_key("a_b"), "n.a_5Fb");
        assert_eq!(nick_key("[x]"), "n._5Bx_5D");
        assert_eq!(nick_key("é"), "n._C3_A9");
        for nick in ["bob", "{}|^\\", "a.b", "a/b", "a=b", "ünï", "A", ""] {
            assert!(is_kv_key(&nick_key(nick)), "{nick:?}");
        }
    }

    #[test]
    fn nick_keys_are_injective() {
        // Every string of up to two bytes over an alphabet with the escape
        // character, hex digits in both cases and the specials.
        let alphabet: Vec<char> = "_5fF0a-[]\\^{}|.é".chars().collect();
        let mut nicks = vec![String::new()];
        for &a in &alphabet {
            nicks.push(a.to_string());
            for &b in &alphabet {
                nicks.push(format!("{a}{b}"));
                for &c in &alphabet[..6] {
                    nicks.push(format!("{a}{b}{c}"));
                }
            }
        }
        let keys: HashSet<String> = nicks.iter().map(|n| nick_key(n)).collect();
        let distinct: HashSet<&String> = nicks.iter().collect();
        assert_eq!(keys.len(), distinct.len());
    }

    #[test]
    fn owner_values_name_their_node() {
        let c = ConnId::new(42, 7);
        assert_eq!(owner_node(&owner_value(c)), Some(42));
        assert_eq!(owner_node(b"junk"), None);
    }
}
