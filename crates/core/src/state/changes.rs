//! Every change the network knows, as a value, and how it applies: what it
//! checks, what it mutates, which notifications and effects it leaves.
//!
//! Policy that depends on the shared state (membership, operator status,
//! bans) is checked here, at the moment of applying, so that a change never
//! applies against a state it was not checked against.

use std::net::IpAddr;
use thin_vec::ThinVec;

use super::user::Names;
use super::{
    Change, ChangeError, Channel, Member, Network, Topic, User, UserModes, WhowasEntry, policy,
    truncate_bytes, unix_secs,
};
use crate::effect::Effect;
use crate::ids::{ConnId, MsgId};
use crate::names::{ChannelName, Nickname};
use crate::notify::{Audience, Event, Millis, Notification};
use crate::session::Outputs;

// Re-exported: a message is one of the changes, in a file of its own.
pub use super::message::{Message, MessageSent};

/// A connection joins the network, with no nick yet.
pub struct Connect {
    pub id: ConnId,
    pub ip: IpAddr,
    /// Over TLS (user mode `+Z`).
    pub secure: bool,
    /// The TLS client certificate's SHA-256 fingerprint, if one was shown.
    pub certfp: Option<String>,
}

impl Change for Connect {
    type Output = ();
    fn apply(self, net: &mut Network, out: &mut Outputs, now: Millis) -> Result<(), ChangeError> {
        net.users.insert(Box::new(User {
            id: self.id,
            names: Names::default(),
            ip: self.ip,
            registered: false,
            channels: ThinVec::new(),
            modes: UserModes {
                secure: self.secure,
                ..UserModes::default()
            },
            signon: unix_secs(now),
            last_active: unix_secs(now),
            extra: None,
            spoken: None,
        }));
        if let Some(fp) = self.certfp
            && let Some(u) = net.users.get_mut(&self.id)
        {
            u.edit_extra(|e| e.certfp = Some(fp.into()));
        }
        if let Some(text) = &net.shutdown {
            out.note(Notification {
                audience: Audience::User(self.id),
                event: Event::Shutdown {
                    text: text.to_string(),
                },
            });
        }
        Ok(())
    }
}

/// Sets or changes a nick, already claimed in the name registry. Users
/// sharing a channel see the change; the caller tells the user itself.
pub struct SetNick {
    pub id: ConnId,
    pub nick: Nickname,
}

impl Change for SetNick {
    /// The user's source before the change, and the change's msgid.
    type Output = (crate::notify::Source, MsgId);
    fn apply(
        self,
        net: &mut Network,
        out: &mut Outputs,
        now: Millis,
    ) -> Result<Self::Output, ChangeError> {
        let (id, n) = (self.id, self.nick);
        let u = net.users.get(&id).ok_or(ChangeError::NoPrivileges)?;
        if let Some(holder) = net.nicks.get(n.key(), &net.users)
            && holder != id
        {
            return Err(ChangeError::NicknameInUse(n.as_str().to_string()));
        }
        let old = u.source();
        let old_key = u.nick_key().to_string();
        let registered = u.registered;
        let same = u.nick() == n.as_str();
        let msgid = net.next_msgid();
        if same {
            return Ok((old, msgid));
        }
        net.nicks.remove(&old_key, id);
        let Some(u) = net.users.get_mut(&id) else {
            return Ok((old, msgid));
        };
        u.set_nick(&n);
        // Indexed once the user carries the new key (see `NickIndex::insert`).
        net.nicks.insert(n.key(), id, &net.users);
        // Read markers belong to the nick while there are no accounts.
        net.markers.rename_owner(&old_key, n.key());
        if !old_key.is_empty() && old_key != n.key() {
            out.later.push(Effect::ReleaseNick {
                key: old_key.clone(),
                owner: id,
            });
        }
        if registered && let Some(u) = net.users.get(&id) {
            let event = Event::Nick {
                who: old.clone(),
                new: u.nick().to_string(),
                time: now,
                msgid,
            };
            net.keep(u.channels.iter().map(String::as_str), &event, out);
            out.note(Notification {
                audience: Network::neighbours(u),
                event,
            });
            let wh = WhowasEntry {
                nick: old.nick().to_string(),
                nick_key: old_key.clone(),
                user: u.user().to_string(),
                host: u.host().to_string(),
                realname: u.realname().to_string(),
                at: now / 1000,
            };
            net.remember(wh);
            if old_key != n.key() {
                net.notify_watchers(&old_key, false, out);
                net.notify_watchers(n.key(), true, out);
            }
        }
        Ok((old, msgid))
    }
}

/// Completes registration: the user has a nick, a user name and a real name.
pub struct Register {
    pub id: ConnId,
    pub user: String,
    pub realname: String,
}

impl Change for Register {
    type Output = ();
    fn apply(self, net: &mut Network, out: &mut Outputs, _now: Millis) -> Result<(), ChangeError> {
        let u = net
            .users
            .get_mut(&self.id)
            .ok_or(ChangeError::NoPrivileges)?;
        u.set_user(&self.user, &self.realname);
        if !u.registered {
            net.counts.account(false, u.modes, -1);
            net.counts.account(true, u.modes, 1);
            u.registered = true;
        }
        let key = u.nick_key().to_string();
        net.max_users = net.max_users.max(net.counts.registered);
        net.notify_watchers(&key, true, out);
        Ok(())
    }
}

/// Joins a channel, creating it when it does not exist (the `founder`, who
/// claimed it in the name registry, is its operator). Other members see the
/// join; the caller greets the joiner.
pub struct Join {
    pub id: ConnId,
    pub channel: ChannelName,
    pub key: Option<String>,
    /// The automatic join of a `line` user that just connected.
    pub on_connect: bool,
    pub founder: bool,
}

impl Change for Join {
    /// The join's msgid; `None` when the user was already there.
    type Output = Option<MsgId>;
    fn apply(
        self,
        net: &mut Network,
        out: &mut Outputs,
        now: Millis,
    ) -> Result<Option<MsgId>, ChangeError> {
        let (id, cname) = (self.id, &self.channel);
        let u = net.users.get(&id).ok_or(ChangeError::NoPrivileges)?;
        if u.channels.iter().any(|c| c == cname.key()) {
            return Ok(None);
        }
        if u.channels.len() >= net.cfg.limits.channels_per_user {
            return Err(ChangeError::TooManyChannels(cname.to_string()));
        }
        match net.channels.get_mut(cname.key()) {
            Some(ch) => {
                policy::can_join(ch, u, self.key.as_deref())?;
                ch.members.push(Member {
                    id,
                    op: false,
                    voice: false,
                });
            }
            None => {
                let mut ch = Channel::new(cname, now / 1000);
                ch.serial = net.msg_ids.next_msg().raw();
                ch.members.push(Member {
                    id,
                    op: self.founder,
                    voice: false,
                });
                net.channels.insert(cname.key().to_string(), ch);
            }
        }
        let ch_key = cname.key().to_string();
        if let Some(u) = net.users.get_mut(&id) {
            u.channels.push(ch_key.clone());
            if u.is_invited(&ch_key) {
                u.edit_extra(|e| e.invites.remove(&ch_key));
            }
        }
        let msgid = net.next_msgid();
        if let (Some(u), Some(ch)) = (net.users.get(&id), net.channels.get(&ch_key)) {
            let audience = Audience::Channel {
                key: ch.key.clone(),
                except: Some(id),
            };
            let event = Event::Join {
                who: u.source(),
                id,
                channel: ch.name.to_string(),
                realname: u.realname().to_string(),
                on_connect: self.on_connect,
                time: now,
                msgid,
            };
            net.keep([&*ch.key], &event, out);
            out.note(Notification {
                audience: audience.clone(),
                event,
            });
            // away-notify: members learn at once that the newcomer is away.
            if let Some(text) = u.away() {
                out.note(Notification {
                    audience,
                    event: Event::Away {
                        who: u.source(),
                        text: Some(text.to_string()),
                        time: now,
                    },
                });
            }
        }
        Ok(Some(msgid))
    }
}

/// Leaves a channel. The other members see it; the caller echoes it.
pub struct Part {
    pub id: ConnId,
    pub channel: String,
    pub reason: String,
}

impl Change for Part {
    /// The channel's name as created, and the part's msgid.
    type Output = (String, MsgId);
    fn apply(
        self,
        net: &mut Network,
        out: &mut Outputs,
        now: Millis,
    ) -> Result<Self::Output, ChangeError> {
        let (u, ch) = net.user_and_channel(self.id, &self.channel)?;
        if ch.member(self.id).is_none() {
            return Err(ChangeError::NotOnChannel(ch.name.to_string()));
        }
        let (key, name, who) = (ch.key.clone(), ch.name.to_string(), u.source());
        let msgid = net.next_msgid();
        let event = Event::Part {
            who,
            id: self.id,
            channel: name.clone(),
            reason: self.reason,
            time: now,
            msgid,
        };
        net.keep([&*key], &event, out);
        out.note(Notification {
            audience: Audience::Channel {
                key: key.clone(),
                except: Some(self.id),
            },
            event,
        });
        net.leave(self.id, &key, out);
        Ok((name, msgid))
    }
}

/// Removes a user entirely: its channels see it quit, its nick is freed,
/// its connection closes once what is queued is written. Applying it for a
/// user already gone does nothing.
pub struct Quit {
    pub id: ConnId,
    pub reason: String,
}

impl Change for Quit {
    type Output = ();
    fn apply(self, net: &mut Network, out: &mut Outputs, now: Millis) -> Result<(), ChangeError> {
        let Some(u) = net.users.remove(&self.id) else {
            return Ok(());
        };
        let id = self.id;
        let event = Event::Quit {
            who: u.source(),
            id,
            reason: self.reason,
            time: now,
            msgid: net.next_msgid(),
        };
        net.keep(u.channels.iter().map(String::as_str), &event, out);
        // Unregistered users have no channels: the note only closes them.
        out.note(Notification {
            audience: Network::neighbours(&u),
            event,
        });
        let (emptied, held) = net.forget_user(&u, now, out);
        for key in &emptied {
            Network::channel_gone(key, out);
        }
        let key = u.nick_key();
        net.markers.forget_owner(key);
        if held {
            out.later.push(Effect::ReleaseNick {
                key: key.to_string(),
                owner: id,
            });
        }
        Ok(())
    }
}

/// An operator disconnects a user: the target is told why, its channels
/// see it quit.
pub struct Kill {
    pub by: ConnId,
    pub target: String,
    pub reason: String,
}

impl Change for Kill {
    type Output = ();
    fn apply(self, net: &mut Network, out: &mut Outputs, now: Millis) -> Result<(), ChangeError> {
        let k = net.users.get(&self.by).ok_or(ChangeError::NoPrivileges)?;
        policy::can_kill(k)?;
        let t = net.registered(&self.target)?;
        let quit = format!("Killed ({} ({}))", k.nick(), self.reason);
        let tid = t.id;
        out.note(Notification {
            audience: Audience::User(tid),
            event: Event::Kill {
                by: k.source(),
                target: t.nick().to_string(),
                reason: self.reason,
                time: now,
            },
        });
        Quit {
            id: tid,
            reason: quit,
        }
        .apply(net, out, now)
    }
}

/// Sets or clears a channel topic. Other members see it; the caller echoes it.
pub struct SetTopic {
    pub id: ConnId,
    pub channel: String,
    pub text: String,
}

impl Change for SetTopic {
    /// The channel's name, the topic as set (cut to the limit), and the
    /// change's msgid.
    type Output = (String, String, MsgId);
    fn apply(
        self,
        net: &mut Network,
        out: &mut Outputs,
        now: Millis,
    ) -> Result<Self::Output, ChangeError> {
        let (u, ch) = net.user_and_channel(self.id, &self.channel)?;
        policy::can_set_topic(ch, u, ch.member(self.id))?;
        let text = truncate_bytes(&self.text, net.cfg.limits.topic_length).to_string();
        let (key, name, source) = (ch.key.clone(), ch.name.to_string(), u.source());
        if let Some(ch) = net.channels.get_mut(&*key) {
            ch.topic = (!text.is_empty()).then(|| Topic {
                text: text.clone(),
                set_by: source.prefix().to_string(),
                set_at: now / 1000,
            });
        }
        let msgid = net.next_msgid();
        let event = Event::Topic {
            by: source,
            channel: name.clone(),
            text: text.clone(),
            time: now,
            msgid,
        };
        net.keep([&*key], &event, out);
        out.note(Notification {
            audience: Audience::Channel {
                key,
                except: Some(self.id),
            },
            event,
        });
        Ok((name, text, msgid))
    }
}

/// A channel operator removes a member. Every other member sees it, the
/// target included; the caller echoes it.
pub struct Kick {
    pub by: ConnId,
    pub channel: String,
    pub target: String,
    pub reason: String,
}

impl Change for Kick {
    /// The channel's name, the target's nick, and the kick's msgid.
    type Output = (String, String, MsgId);
    fn apply(
        self,
        net: &mut Network,
        out: &mut Outputs,
        now: Millis,
    ) -> Result<Self::Output, ChangeError> {
        let (u, ch) = net.user_and_channel(self.by, &self.channel)?;
        policy::is_chanop(ch, ch.member(self.by))?;
        let t = net
            .find_nick(&self.target)
            .ok_or_else(|| ChangeError::NoSuchNick(self.target.clone()))?;
        if ch.member(t.id).is_none() {
            return Err(ChangeError::UserNotInChannel(
                ch.name.to_string(),
                t.nick().to_string(),
            ));
        }
        let reason = truncate_bytes(&self.reason, net.cfg.limits.kick_length).to_string();
        let (key, name, tid, tnick) = (
            ch.key.clone(),
            ch.name.to_string(),
            t.id,
            t.nick().to_string(),
        );
        let by = u.source();
        let msgid = net.next_msgid();
        let event = Event::Kick {
            by,
            channel: name.clone(),
            target: tnick.clone(),
            target_id: tid,
            reason,
            time: now,
            msgid,
        };
        net.keep([&*key], &event, out);
        out.note(Notification {
            audience: Audience::Channel {
                key: key.clone(),
                except: Some(self.by),
            },
            event,
        });
        net.leave(tid, &key, out);
        Ok((name, tnick, msgid))
    }
}

/// Sets a user's own modes (LUSERS counts follow).
pub struct SetUserModes {
    pub id: ConnId,
    pub modes: UserModes,
}

impl Change for SetUserModes {
    type Output = ();
    fn apply(self, net: &mut Network, _out: &mut Outputs, _now: Millis) -> Result<(), ChangeError> {
        let u = net
            .users
            .get_mut(&self.id)
            .ok_or(ChangeError::NoPrivileges)?;
        net.counts.account(u.registered, u.modes, -1);
        net.counts.account(u.registered, self.modes, 1);
        u.modes = self.modes;
        Ok(())
    }
}

/// Sets or clears an away message; users sharing a channel are told.
pub struct SetAway {
    pub id: ConnId,
    pub text: Option<String>,
}

impl Change for SetAway {
    type Output = ();
    fn apply(self, net: &mut Network, out: &mut Outputs, now: Millis) -> Result<(), ChangeError> {
        let u = net
            .users
            .get_mut(&self.id)
            .ok_or(ChangeError::NoPrivileges)?;
        u.edit_extra(|e| e.away = self.text.clone());
        let u = net.users.get(&self.id).ok_or(ChangeError::NoPrivileges)?;
        let event = Event::Away {
            who: u.source(),
            text: self.text,
            time: now,
        };
        net.tell_around(u, event, out);
        Ok(())
    }
}

/// Changes a real name; users sharing a channel are told.
pub struct SetRealname {
    pub id: ConnId,
    pub realname: String,
}

impl Change for SetRealname {
    type Output = ();
    fn apply(self, net: &mut Network, out: &mut Outputs, now: Millis) -> Result<(), ChangeError> {
        let u = net
            .users
            .get_mut(&self.id)
            .ok_or(ChangeError::NoPrivileges)?;
        u.set_realname(&self.realname);
        let u = net.users.get(&self.id).ok_or(ChangeError::NoPrivileges)?;
        let event = Event::Setname {
            who: u.source(),
            realname: self.realname,
            time: now,
        };
        net.tell_around(u, event, out);
        Ok(())
    }
}

/// An operator's message to every user with `+w`.
pub struct Wallops {
    pub by: ConnId,
    pub text: String,
}

impl Change for Wallops {
    type Output = ();
    fn apply(self, net: &mut Network, out: &mut Outputs, now: Millis) -> Result<(), ChangeError> {
        let u = net.users.get(&self.by).ok_or(ChangeError::NoPrivileges)?;
        policy::can_wallops(u)?;
        let readers = net
            .users
            .values()
            .filter(|u| u.registered && u.modes.wallops)
            .map(|u| u.id)
            .collect();
        out.note(Notification {
            audience: Audience::Users(readers),
            event: Event::Wallops {
                from: u.source(),
                text: self.text,
                time: now,
            },
        });
        Ok(())
    }
}

/// Adds a nick to a user's MONITOR list.
pub struct Monitor {
    pub id: ConnId,
    pub nick_key: String,
}

impl Change for Monitor {
    /// False when the list is full.
    type Output = bool;
    fn apply(
        self,
        net: &mut Network,
        _out: &mut Outputs,
        _now: Millis,
    ) -> Result<bool, ChangeError> {
        let limit = net.cfg.limits.monitor;
        let u = net
            .users
            .get_mut(&self.id)
            .ok_or(ChangeError::NoPrivileges)?;
        if u.monitoring().contains(&self.nick_key) {
            return Ok(true);
        }
        if u.monitoring().len() >= limit {
            return Ok(false);
        }
        u.edit_extra(|e| e.monitoring.push(self.nick_key.clone()));
        net.watchers.entry(self.nick_key).or_default().push(self.id);
        Ok(true)
    }
}

/// Removes a nick (or, with `None`, every nick) from a MONITOR list.
pub struct Unmonitor {
    pub id: ConnId,
    pub nick_key: Option<String>,
}

impl Change for Unmonitor {
    type Output = ();
    fn apply(self, net: &mut Network, _out: &mut Outputs, _now: Millis) -> Result<(), ChangeError> {
        let u = net
            .users
            .get_mut(&self.id)
            .ok_or(ChangeError::NoPrivileges)?;
        let removed: Vec<String> = match self.nick_key {
            Some(k) => {
                u.edit_extra(|e| e.monitoring.retain(|x| *x != k));
                vec![k]
            }
            None => u.edit_extra(|e| std::mem::take(&mut e.monitoring)),
        };
        for k in removed {
            if let Some(w) = net.watchers.get_mut(&k) {
                w.retain(|&x| x != self.id);
                if w.is_empty() {
                    net.watchers.remove(&k);
                }
            }
        }
        Ok(())
    }
}

/// The server is going down: everyone is told, now and on arrival.
pub struct Shutdown {
    pub text: String,
}

impl Change for Shutdown {
    type Output = ();
    fn apply(self, net: &mut Network, out: &mut Outputs, _now: Millis) -> Result<(), ChangeError> {
        net.shutdown = Some(self.text.clone().into_boxed_str());
        out.note(Notification {
            audience: Audience::Everyone,
            event: Event::Shutdown { text: self.text },
        });
        Ok(())
    }
}
