//! Renaming a channel (IRCv3 `draft/channel-rename`): the channel keeps its
//! members, modes, lists, topic and metadata under its new name.

use std::sync::Arc;

use super::{Change, ChangeError, Channel, Network, policy};
use crate::effect::Effect;
use crate::ids::ConnId;
use crate::names::ChannelName;
use crate::notify::{Audience, ChannelView, Event, Millis, Notification, RenameFallback};
use crate::session::Outputs;

/// A channel operator renames a channel whose new name (when it is not the
/// same name in another case) the caller claimed in the name registry.
/// Every member but the renamer is told (see [`Event::Rename`]); the caller
/// echoes it with [`Renamed::echo`].
pub struct Rename {
    pub by: ConnId,
    pub channel: String,
    pub new: ChannelName,
    pub reason: String,
}

/// What [`Rename`] reports: the renamer's own copies of the event, the
/// shared one and the one for clients without the capability.
#[derive(Debug)]
pub struct Renamed {
    pub echo: [Event; 2],
}

impl Change for Rename {
    type Output = Renamed;
    fn apply(
        self,
        net: &mut Network,
        out: &mut Outputs,
        now: Millis,
    ) -> Result<Renamed, ChangeError> {
        let (u, ch) = net.user_and_channel(self.by, &self.channel)?;
        policy::can_rename(ch, ch.member(self.by), self.new.as_str())?;
        let (old_key, new_key) = (ch.key.to_string(), self.new.key().to_string());
        if old_key != new_key && net.channels.contains_key(&new_key) {
            return Err(ChangeError::ChannelNameInUse(
                ch.name.to_string(),
                self.new.as_str().to_string(),
            ));
        }
        let by = u.source();
        let old = ch.name.to_string();
        let Some(members) = net.move_channel(&old_key, &new_key, self.new.as_str(), out) else {
            return Err(ChangeError::NoSuchChannel(self.channel));
        };
        let Some(ch) = net.channels.get(&new_key) else {
            return Err(ChangeError::NoSuchChannel(self.channel));
        };
        let view = Arc::new(view_of(net, ch));
        if old_key != new_key {
            out.later.push(Effect::DropChannel {
                key: old_key.clone(),
            });
        }
        let event = |to: Option<Box<RenameFallback>>| Event::Rename {
            by: by.clone(),
            old: old.clone(),
            new: self.new.as_str().to_string(),
            old_key: old_key.clone(),
            new_key: new_key.clone(),
            reason: self.reason.clone(),
            time: now,
            to,
        };
        let server = net.cfg.server_name.clone();
        let fallback = |id: ConnId| {
            net.users.get(&id).map(|m| {
                Box::new(RenameFallback {
                    member: m.source(),
                    realname: m.realname().to_string(),
                    server: server.clone(),
                    view: view.clone(),
                })
            })
        };
        // Resolved against the old name, before delivery moves its room.
        out.note(Notification {
            audience: Audience::Channel {
                key: old_key.as_str().into(),
                except: Some(self.by),
            },
            event: event(None),
        });
        for &id in members.iter().filter(|&&id| id != self.by) {
            if let Some(f) = fallback(id) {
                out.note(Notification {
                    audience: Audience::User(id),
                    event: event(Some(f)),
                });
            }
        }
        let mine = fallback(self.by);
        Ok(Renamed {
            echo: [event(None), event(mine)],
        })
    }
}

/// The channel as a JOIN greeting shows it to a member.
fn view_of(net: &Network, ch: &Channel) -> ChannelView {
    let symbol = if ch.modes.secret {
        '@'
    } else if ch.modes.private {
        '*'
    } else {
        '='
    };
    ChannelView {
        symbol,
        topic: ch
            .topic
            .as_ref()
            .map(|t| (t.text.clone(), t.set_by.clone(), t.set_at)),
        members: ch
            .members
            .iter()
            .filter_map(|m| Some((net.users.get(&m.id)?.source(), m.op, m.voice)))
            .collect(),
    }
}

impl Network {
    /// Moves the channel `old_key` to `new_key`, named `name`: its members'
    /// lists, its history and its read markers follow. Its members, or
    /// None when there is no such channel. The origin of a rename and
    /// every node that replays it.
    pub(super) fn move_channel(
        &mut self,
        old_key: &str,
        new_key: &str,
        name: &str,
        out: &mut Outputs,
    ) -> Option<Vec<ConnId>> {
        let mut ch = self.channels.remove(old_key)?;
        ch.name = name.into();
        ch.key = new_key.into();
        let members: Vec<ConnId> = ch.members.iter().map(|m| m.id).collect();
        self.channels.insert(new_key.to_string(), ch);
        if old_key != new_key {
            self.rekey_channel(old_key, new_key, &members);
            out.later.push(Effect::RenameHistory {
                from: crate::store::history_key(old_key),
                to: crate::store::history_key(new_key),
            });
            out.later.push(Effect::RenameReadMarkers {
                from: old_key.to_string(),
                to: new_key.to_string(),
            });
        }
        Some(members)
    }

    /// A channel's key changed from `old` to `new`: its members' lists,
    /// the invitations to it and the read markers on it follow.
    fn rekey_channel(&mut self, old: &str, new: &str, members: &[ConnId]) {
        self.markers.rename_target(old, new);
        for id in members {
            if let Some(u) = self.users.get_mut(id) {
                for key in u.channels.iter_mut().filter(|k| *k == old) {
                    *key = new.to_string();
                }
            }
        }
        let invited: Vec<ConnId> = self
            .users
            .values()
            .filter(|u| u.is_invited(old))
            .map(|u| u.id)
            .collect();
        for id in invited {
            if let Some(u) = self.users.get_mut(&id) {
                u.edit_extra(|e| {
                    e.invites.remove(old);
                    e.invites.insert(new.to_string());
                });
            }
        }
    }
}
