//! Read markers (IRCv3 `draft/read-marker`): for each owner, the time of the
//! last message it read in each conversation.
//!
//! The owner is who reads: a user logged in to an account is its account
//! (`~` and the casefolded name, which no nick can be), so every connection
//! of the account shares the markers and they outlive a connection; they
//! are written to the marker store as they move
//! ([`crate::store::MarkerStore`]) and loaded from it when the server
//! starts ([`Network::load_read_markers`]), so they outlive a restart. Without
//! an account, a user is its nick: markers are keyed by the casefolded nick,
//! follow it through nick changes and are forgotten when the user quits
//! (keeping them for the next holder of the nick would show one person's
//! reading to another).

use super::{Change, ChangeError, Map, Network, User};
use crate::effect::Effect;
use crate::ids::ConnId;
use crate::names::casefold;
use crate::notify::{Audience, Event, Millis, Notification};
use crate::session::Outputs;
use crate::store::Marker;

/// The owner key of an account's markers: no nick starts with `~`.
fn account_owner(folded_account: &str) -> String {
    format!("~{folded_account}")
}

/// Every owner's markers.
#[derive(Debug, Default)]
pub struct ReadMarkers {
    /// Owner key → (casefolded target, time of the last message read).
    by_owner: Map<String, Vec<(String, Millis)>>,
}

impl ReadMarkers {
    pub fn get(&self, owner: &str, target_key: &str) -> Option<Millis> {
        self.by_owner
            .get(owner)?
            .iter()
            .find(|(t, _)| t == target_key)
            .map(|&(_, at)| at)
    }

    /// Moves `at` forward (never back) and returns the stored time. A new
    /// target past `limit` replaces the one read longest ago.
    fn advance(&mut self, owner: &str, target_key: &str, at: Millis, limit: usize) -> Millis {
        if limit == 0 {
            return at;
        }
        let marks = self.by_owner.entry(owner.to_string()).or_default();
        if let Some((_, stored)) = marks.iter_mut().find(|(t, _)| t == target_key) {
            *stored = (*stored).max(at);
            return *stored;
        }
        if marks.len() >= limit {
            let oldest = marks.iter().enumerate().min_by_key(|(_, (_, at))| *at);
            if let Some((i, _)) = oldest {
                marks.swap_remove(i);
            }
        }
        marks.push((target_key.to_string(), at));
        at
    }

    /// The owner's key changed (a nick change).
    pub(super) fn rename_owner(&mut self, old: &str, new: &str) {
        if old != new
            && let Some(marks) = self.by_owner.remove(old)
        {
            self.by_owner.insert(new.to_string(), marks);
        }
    }

    pub(super) fn forget_owner(&mut self, owner: &str) {
        self.by_owner.remove(owner);
    }

    /// A channel's key changed (a rename): every owner's marker follows.
    pub(super) fn rename_target(&mut self, old: &str, new: &str) {
        for marks in self.by_owner.values_mut() {
            for (t, _) in marks.iter_mut().filter(|(t, _)| t == old) {
                *t = new.to_string();
            }
        }
    }

    /// How many markers are kept, all owners together (for tests).
    pub fn len(&self) -> usize {
        self.by_owner.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Network {
    /// Whose markers `u` reads and sets: its account's, else its nick's.
    fn marker_owner(u: &User) -> std::borrow::Cow<'_, str> {
        match u.account() {
            Some(a) => account_owner(&casefold(a)).into(),
            None => u.nick_key().into(),
        }
    }

    /// Takes the accounts' markers kept in the store (at start, before any
    /// user): each owned by its account, within `limits.read_markers`.
    pub fn load_read_markers(&mut self, markers: Vec<Marker>) {
        let limit = self.cfg.limits.read_markers;
        for m in markers {
            let owner = account_owner(&m.account);
            self.markers.advance(&owner, &m.target, m.at, limit);
        }
    }

    /// When `id` last read in the conversation `target` (a channel or a
    /// nick, which need not exist now).
    pub fn read_marker(&self, id: ConnId, target: &str) -> Option<Millis> {
        let u = self.users.get(&id)?;
        self.markers
            .get(&Network::marker_owner(u), &casefold(target))
    }

    pub fn read_markers(&self) -> &ReadMarkers {
        &self.markers
    }

    /// The account `account` read `target` up to `at` on another node: the
    /// marker moves here too, is saved, and the account's connections are
    /// told.
    pub(super) fn replay_marker(
        &mut self,
        account: &str,
        target: &str,
        at: Millis,
        out: &mut Outputs,
    ) {
        let limit = self.cfg.limits.read_markers;
        let account = casefold(account);
        let key = casefold(target);
        let at = self
            .markers
            .advance(&account_owner(&account), &key, at, limit);
        let readers: Vec<ConnId> = self
            .users
            .values()
            .filter(|u| u.account().is_some_and(|a| casefold(a) == account))
            .map(|u| u.id)
            .collect();
        out.later.push(Effect::SaveReadMarker {
            marker: Marker {
                account,
                target: key,
                at,
            },
            keep: limit,
        });
        out.note(Notification {
            audience: Audience::Users(readers),
            event: Event::ReadMarker {
                server: self.cfg.server_name.clone(),
                target: target.to_string(),
                at,
            },
        });
    }

    /// Every account's markers (for a node that joins a cluster).
    pub(super) fn account_markers(&self) -> Vec<Marker> {
        let mut all: Vec<Marker> = self
            .markers
            .by_owner
            .iter()
            .filter_map(|(owner, marks)| Some((owner.strip_prefix('~')?, marks)))
            .flat_map(|(account, marks)| {
                marks.iter().map(|(target, at)| Marker {
                    account: account.to_string(),
                    target: target.clone(),
                    at: *at,
                })
            })
            .collect();
        all.sort_by(|a, b| (&a.account, &a.target).cmp(&(&b.account, &b.target)));
        all
    }
}

/// A user read a conversation up to `at`.
pub struct MarkRead {
    pub id: ConnId,
    pub target: String,
    pub at: Millis,
}

impl Change for MarkRead {
    /// The stored time: `at`, or a later one read before.
    type Output = Millis;
    fn apply(
        self,
        net: &mut Network,
        out: &mut Outputs,
        now: Millis,
    ) -> Result<Millis, ChangeError> {
        let u = net.users.get(&self.id).ok_or(ChangeError::NoPrivileges)?;
        let owner = Network::marker_owner(u).to_string();
        // No reading in the future: a marker says which messages were read.
        let at = self.at.min(now);
        let limit = net.cfg.limits.read_markers;
        let target = casefold(&self.target);
        let at = net.markers.advance(&owner, &target, at, limit);
        // The account's other connections are told, and the store keeps it.
        if let Some(account) = u.account() {
            out.later.push(Effect::SaveReadMarker {
                marker: Marker {
                    account: casefold(account),
                    target,
                    at,
                },
                keep: limit,
            });
            let others: Vec<ConnId> = net
                .users
                .values()
                .filter(|o| o.id != self.id && o.account() == Some(account))
                .map(|o| o.id)
                .collect();
            // Told even to nobody here: other nodes learn of it from this
            // note (`Network::records_for`).
            out.note(Notification {
                audience: Audience::Users(others),
                event: Event::ReadMarker {
                    server: net.cfg.server_name.clone(),
                    target: self.target,
                    at,
                },
            });
        }
        Ok(at)
    }
}

/// An account was dropped: its markers go, here and in the store.
pub struct ForgetAccountMarkers {
    pub account: String,
}

impl Change for ForgetAccountMarkers {
    type Output = ();
    fn apply(self, net: &mut Network, out: &mut Outputs, _now: Millis) -> Result<(), ChangeError> {
        let account = casefold(&self.account);
        net.markers.forget_owner(&account_owner(&account));
        out.later.push(Effect::ForgetReadMarkers { account });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_only_move_forward_and_stay_bounded() {
        let mut m = ReadMarkers::default();
        assert_eq!(m.advance("a", "#x", 10, 2), 10);
        assert_eq!(m.advance("a", "#x", 5, 2), 10, "never back");
        assert_eq!(m.advance("a", "#x", 20, 2), 20);
        assert_eq!(m.advance("a", "bob", 30, 2), 30);
        // A third target replaces the one read longest ago (#x at 20).
        assert_eq!(m.advance("a", "#y", 15, 2), 15);
        assert_eq!(m.get("a", "#x"), None);
        assert_eq!((m.get("a", "bob"), m.get("a", "#y")), (Some(30), Some(15)));
        assert_eq!(m.len(), 2);
        // Owners are apart; renames follow.
        assert_eq!(m.get("b", "bob"), None);
        m.rename_owner("a", "c");
        m.rename_target("#y", "#z");
        assert_eq!(m.get("c", "#z"), Some(15));
        m.forget_owner("c");
        assert!(m.is_empty());
        // A limit of 0 keeps nothing.
        assert_eq!(m.advance("a", "#x", 10, 0), 10);
        assert_eq!(m.get("a", "#x"), None);
    }
}
