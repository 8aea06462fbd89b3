//! Metadata (IRCv3 `draft/metadata-3`): key-value pairs on users and
//! channels, and each user's subscriptions, the keys it wants to hear about.
//!
//! A user sets its own keys (before registration too), a channel operator
//! its channel's. A change is told to the subscribers of its key who share a
//! channel with the user or MONITOR it, or who are in the channel; never to
//! the one who made it. Bounds (`limits.metadata_*`): keys per user or
//! channel, bytes per key and per value, subscriptions per user.

use std::collections::HashSet;

use super::{Change, ChangeError, Network, User, policy};
use crate::ids::ConnId;
use crate::notify::{Audience, Event, Millis, Notification};
use crate::session::Outputs;

/// Key-value pairs, sorted by key (there are few: a linear store).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata(Vec<(String, String)>);

impl Metadata {
    /// No keys (a constant, for users without metadata).
    pub const EMPTY: Metadata = Metadata(Vec::new());

    pub fn get(&self, key: &str) -> Option<&str> {
        self.position(key).ok().map(|i| self.0[i].1.as_str())
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// Every pair, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets `key`; false when it is new and `max` keys are there already.
    fn set(&mut self, key: &str, value: &str, max: usize) -> bool {
        match self.position(key) {
            Ok(i) => self.0[i].1 = value.to_string(),
            Err(_) if self.0.len() >= max => return false,
            Err(i) => self.0.insert(i, (key.to_string(), value.to_string())),
        }
        true
    }

    /// Removes `key`; false when it was not set.
    fn remove(&mut self, key: &str) -> bool {
        self.position(key).map(|i| self.0.remove(i)).is_ok()
    }

    /// Every pair, by key, for another node.
    pub(super) fn pairs(&self) -> Vec<(String, String)> {
        self.0.clone()
    }

    /// The keys whose value differs between `self` and `other` (set in
    /// one only, or to other values), with `other`'s value.
    fn changes_to<'a>(&self, other: &'a [(String, String)]) -> Vec<(String, Option<&'a str>)> {
        let mut out: Vec<(String, Option<&'a str>)> = other
            .iter()
            .filter(|(k, v)| self.get(k) != Some(v.as_str()))
            .map(|(k, v)| (k.clone(), Some(v.as_str())))
            .collect();
        out.extend(
            self.0
                .iter()
                .filter(|(k, _)| !other.iter().any(|(o, _)| o == k))
                .map(|(k, _)| (k.clone(), None)),
        );
        out
    }
}

/// Whether `key` can be a metadata key: 1 to `max` bytes of `a-z 0-9 _ . / -`.
pub fn valid_key(key: &str, max: usize) -> bool {
    !key.is_empty()
        && key.len() <= max
        && key
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'/' | b'-'))
}

/// Whose metadata a command is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaTarget {
    /// The user itself (`*`, or its nick).
    Me,
    Nick(String),
    Channel(String),
}

/// What a change is about, once resolved.
enum Subject {
    User(ConnId),
    Channel(String),
}

impl Network {
    /// Drops the extra box of `id` if a change left it empty.
    fn tidy_extra(&mut self, id: ConnId) {
        if let Some(u) = self.users.get_mut(&id) {
            u.tidy();
        }
    }

    /// The user or channel `target` names, as `by` may see it, with its
    /// name as shown (`*` for a user with no nick yet).
    fn metadata_subject(
        &self,
        by: &User,
        target: &MetaTarget,
    ) -> Result<(Subject, String), ChangeError> {
        let invalid = |t: &str| ChangeError::MetadataInvalidTarget(t.to_string());
        match target {
            MetaTarget::Me => {
                let shown = if by.nick().is_empty() { "*" } else { by.nick() };
                Ok((Subject::User(by.id), shown.to_string()))
            }
            MetaTarget::Nick(n) => {
                let u = self.registered(n).map_err(|_| invalid(n))?;
                Ok((Subject::User(u.id), u.nick().to_string()))
            }
            MetaTarget::Channel(c) => {
                let ch = self.channel(c).ok_or_else(|| invalid(c))?;
                // A secret or private channel does not exist for outsiders.
                if !policy::can_see_channel(ch, ch.member(by.id)) {
                    return Err(invalid(c));
                }
                Ok((Subject::Channel(ch.key.to_string()), ch.name.to_string()))
            }
        }
    }

    /// The metadata of the user or channel `target` names, for `by` to read.
    pub fn metadata_for(
        &self,
        by: ConnId,
        target: &MetaTarget,
    ) -> Result<(String, Metadata), ChangeError> {
        let u = self.users.get(&by).ok_or(ChangeError::NoPrivileges)?;
        let (subject, shown) = self.metadata_subject(u, target)?;
        match subject {
            Subject::User(id) => {
                let m = self.users.get(&id).map(|t| t.metadata().clone());
                Ok((shown, m.unwrap_or_default()))
            }
            Subject::Channel(key) => {
                let ch = self
                    .channel(&key)
                    .ok_or(ChangeError::NoSuchChannel(shown.clone()))?;
                policy::can_read_metadata(ch, ch.member(by))
                    .map_err(|_| ChangeError::MetadataNoPermission(shown.clone(), "*".into()))?;
                Ok((shown, ch.metadata.clone()))
            }
        }
    }

    /// Who hears of a change to `key` of `subject`: its subscribers among
    /// the users sharing a channel with it or MONITORing it (a user), or
    /// among its members (a channel); never `except`, who made it.
    fn metadata_listeners(&self, subject: &Subject, key: &str, except: ConnId) -> Vec<ConnId> {
        let mut seen = HashSet::new();
        let mut ids = Vec::new();
        let mut consider = |id: ConnId| {
            if id != except
                && self
                    .users
                    .get(&id)
                    .is_some_and(|u| u.registered && u.is_subscribed(key))
                && seen.insert(id)
            {
                ids.push(id);
            }
        };
        match subject {
            Subject::User(uid) => {
                let Some(u) = self.users.get(uid) else {
                    return ids;
                };
                for ch in u.channels.iter().filter_map(|k| self.channels.get(k)) {
                    ch.members.iter().for_each(|m| consider(m.id));
                }
                if let Some(ws) = self.watchers.get(u.nick_key()) {
                    ws.iter().for_each(|&w| consider(w));
                }
            }
            Subject::Channel(key) => {
                if let Some(ch) = self.channels.get(key) {
                    ch.members.iter().for_each(|m| consider(m.id));
                }
            }
        }
        ids
    }

    /// Another node's user `id` has the metadata `pairs` (sorted by key):
    /// taken, and the listeners here told of each key that changed.
    pub(super) fn take_user_metadata(
        &mut self,
        id: ConnId,
        pairs: &[(String, String)],
        out: &mut Outputs,
    ) {
        let Some(u) = self.users.get_mut(&id) else {
            return;
        };
        let changes = u.metadata().changes_to(pairs);
        if changes.is_empty() {
            return;
        }
        *u.metadata_mut() = Metadata(pairs.to_vec());
        u.tidy();
        let shown = u.nick().to_string();
        for (key, value) in changes {
            self.tell_metadata(&Subject::User(id), &shown, &key, value, id, out);
        }
    }

    /// The channel `key` has the metadata `pairs` (sorted), as another
    /// node set it: as [`Network::take_user_metadata`].
    pub(super) fn take_channel_metadata(
        &mut self,
        key: &str,
        pairs: &[(String, String)],
        out: &mut Outputs,
    ) {
        let Some(ch) = self.channels.get_mut(key) else {
            return;
        };
        let changes = ch.metadata.changes_to(pairs);
        if changes.is_empty() {
            return;
        }
        ch.metadata = Metadata(pairs.to_vec());
        let shown = ch.name.to_string();
        let subject = Subject::Channel(key.to_string());
        // Whoever set it is on another node: nobody here is left out.
        let nobody = ConnId::new(0, 0);
        for (k, value) in changes {
            self.tell_metadata(&subject, &shown, &k, value, nobody, out);
        }
    }

    /// Tells the listeners of `key` of `subject` its new value (or that it
    /// was removed).
    fn tell_metadata(
        &self,
        subject: &Subject,
        shown: &str,
        key: &str,
        value: Option<&str>,
        by: ConnId,
        out: &mut Outputs,
    ) {
        let ids = self.metadata_listeners(subject, key, by);
        // A channel's change is told even to nobody here: other nodes
        // learn of it from this note (`Network::records_for`).
        if ids.is_empty() && matches!(subject, Subject::User(_)) {
            return;
        }
        out.note(Notification {
            audience: Audience::Users(ids),
            event: Event::Metadata {
                server: self.cfg.server_name.clone(),
                target: shown.to_string(),
                key: key.to_string(),
                value: value.map(str::to_string),
            },
        });
    }

    /// The metadata of `subject` for writing, when `by` may change it.
    fn metadata_mut(
        &mut self,
        by: ConnId,
        subject: &Subject,
        shown: &str,
        key: &str,
    ) -> Result<&mut Metadata, ChangeError> {
        let no = || ChangeError::MetadataNoPermission(shown.to_string(), key.to_string());
        match subject {
            Subject::User(id) if *id == by => {
                let u = self.users.get_mut(id).ok_or(ChangeError::NoPrivileges)?;
                Ok(u.metadata_mut())
            }
            Subject::User(_) => Err(no()),
            Subject::Channel(k) => {
                let ch = self.channels.get_mut(k).ok_or_else(no)?;
                policy::is_chanop(ch, ch.member(by)).map_err(|_| no())?;
                Ok(&mut ch.metadata)
            }
        }
    }
}

/// Sets (`Some`) or removes (`None`) a key of a user or a channel.
pub struct SetMetadata {
    pub by: ConnId,
    pub target: MetaTarget,
    pub key: String,
    pub value: Option<String>,
}

impl Change for SetMetadata {
    /// The target's name as shown.
    type Output = String;
    fn apply(
        self,
        net: &mut Network,
        out: &mut Outputs,
        _now: Millis,
    ) -> Result<String, ChangeError> {
        let l = &net.cfg.limits;
        let (max_keys, key_bytes, value_bytes) = (
            l.metadata_keys,
            l.metadata_key_bytes,
            l.metadata_value_bytes,
        );
        if !valid_key(&self.key, key_bytes) {
            return Err(ChangeError::MetadataKeyInvalid(self.key));
        }
        if self.value.as_ref().is_some_and(|v| v.len() > value_bytes) {
            return Err(ChangeError::MetadataValueInvalid(self.key));
        }
        let u = net.users.get(&self.by).ok_or(ChangeError::NoPrivileges)?;
        let (subject, shown) = net.metadata_subject(u, &self.target)?;
        let m = net.metadata_mut(self.by, &subject, &shown, &self.key)?;
        let done = match &self.value {
            Some(v) => m.set(&self.key, v, max_keys),
            None => m.remove(&self.key),
        };
        // metadata_mut may have made an extra box that stays empty.
        net.tidy_extra(self.by);
        match &self.value {
            Some(_) if !done => return Err(ChangeError::MetadataLimit(shown, max_keys)),
            None if !done => return Err(ChangeError::MetadataKeyNotSet(shown, self.key)),
            _ => {}
        }
        net.tell_metadata(
            &subject,
            &shown,
            &self.key,
            self.value.as_deref(),
            self.by,
            out,
        );
        Ok(shown)
    }
}

/// Removes every key of a user or a channel.
pub struct ClearMetadata {
    pub by: ConnId,
    pub target: MetaTarget,
}

impl Change for ClearMetadata {
    /// The target's name as shown, and the keys removed.
    type Output = (String, Vec<String>);
    fn apply(
        self,
        net: &mut Network,
        out: &mut Outputs,
        _now: Millis,
    ) -> Result<Self::Output, ChangeError> {
        let u = net.users.get(&self.by).ok_or(ChangeError::NoPrivileges)?;
        let (subject, shown) = net.metadata_subject(u, &self.target)?;
        let m = net.metadata_mut(self.by, &subject, &shown, "*")?;
        let keys: Vec<String> = std::mem::take(m).0.into_iter().map(|(k, _)| k).collect();
        net.tidy_extra(self.by);
        for k in &keys {
            net.tell_metadata(&subject, &shown, k, None, self.by, out);
        }
        Ok((shown, keys))
    }
}

/// Subscribes to keys, in order, up to `limits.metadata_subs`.
pub struct Subscribe {
    pub id: ConnId,
    pub keys: Vec<String>,
}

/// What [`Subscribe`] did with each key.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Subscribed {
    /// Subscribed now, or already.
    pub ok: Vec<String>,
    pub invalid: Vec<String>,
    /// The first key refused for the limit: it and the ones after it were
    /// not processed.
    pub refused: Option<String>,
}

impl Change for Subscribe {
    type Output = Subscribed;
    fn apply(
        self,
        net: &mut Network,
        _out: &mut Outputs,
        _now: Millis,
    ) -> Result<Subscribed, ChangeError> {
        let (max, key_bytes) = (
            net.cfg.limits.metadata_subs,
            net.cfg.limits.metadata_key_bytes,
        );
        let u = net
            .users
            .get_mut(&self.id)
            .ok_or(ChangeError::NoPrivileges)?;
        let mut done = Subscribed::default();
        for key in self.keys {
            if !valid_key(&key, key_bytes) {
                done.invalid.push(key);
            } else if u.is_subscribed(&key) {
                done.ok.push(key);
            } else if u.subscriptions().len() >= max {
                done.refused = Some(key);
                break;
            } else {
                u.edit_extra(|e| e.subscriptions.push(key.clone()));
                done.ok.push(key);
            }
        }
        Ok(done)
    }
}

/// Unsubscribes from keys.
pub struct Unsubscribe {
    pub id: ConnId,
    pub keys: Vec<String>,
}

impl Change for Unsubscribe {
    /// The valid keys (no longer subscribed), and the invalid ones.
    type Output = (Vec<String>, Vec<String>);
    fn apply(
        self,
        net: &mut Network,
        _out: &mut Outputs,
        _now: Millis,
    ) -> Result<Self::Output, ChangeError> {
        let key_bytes = net.cfg.limits.metadata_key_bytes;
        let u = net
            .users
            .get_mut(&self.id)
            .ok_or(ChangeError::NoPrivileges)?;
        let (ok, invalid): (Vec<String>, Vec<String>) =
            self.keys.into_iter().partition(|k| valid_key(k, key_bytes));
        if u.subscriptions().iter().any(|s| ok.contains(s)) {
            u.edit_extra(|e| e.subscriptions.retain(|s| !ok.contains(s)));
        }
        Ok((ok, invalid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_small_lowercase_words() {
        for ok in ["display-name", "a", "im.xmpp", "x/y_z", "0"] {
            assert!(valid_key(ok, 64), "{ok}");
        }
        for bad in ["", "Display", "a b", "$url", ":x", "é"] {
            assert!(!valid_key(bad, 64), "{bad}");
        }
        assert!(valid_key(&"k".repeat(64), 64));
        assert!(!valid_key(&"k".repeat(65), 64));
    }

    #[test]
    fn a_store_is_sorted_and_bounded() {
        let mut m = Metadata::default();
        assert!(m.set("b", "2", 2));
        assert!(m.set("a", "1", 2));
        assert!(!m.set("c", "3", 2), "a third key");
        assert!(m.set("b", "two", 2), "a new value for a key there");
        assert_eq!(m.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "two")]);
        assert!(m.remove("a"));
        assert!(!m.remove("a"));
        assert_eq!((m.get("b"), m.get("a")), (Some("two"), None));
    }
}
