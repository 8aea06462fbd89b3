//! Channel modes and INVITE as changes.
//!
//! Dialects parse and validate what their users type; these changes only
//! check permissions that depend on the shared state (membership, operator
//! status), mutate it, and report what actually changed, so every dialect
//! shows the same outcome.

use super::{Change, ChangeError, Channel, ListEntry, Network, policy};
use crate::ids::{ConnId, MsgId};
use crate::names::casefold;
use crate::notify::{Audience, Event, Millis, Notification};
use crate::session::Outputs;

/// One mode change.
///
/// Letters: `C i m n t s p` flags, `k` key, `l` limit, `o v` member status,
/// `b e I` ban / exception / invite-exception lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModeChange {
    /// Adding (true) or removing.
    pub add: bool,
    pub mode: char,
    pub arg: Option<String>,
}

impl ModeChange {
    pub fn new(add: bool, mode: char, arg: Option<String>) -> ModeChange {
        ModeChange { add, mode, arg }
    }
}

/// The wire form of changes: `+o-v alice bob`.
pub fn wire_modes(changes: &[ModeChange]) -> String {
    let mut letters = String::new();
    let mut params: Vec<&str> = Vec::new();
    let mut sign = None;
    for c in changes {
        if sign != Some(c.add) {
            letters.push(if c.add { '+' } else { '-' });
            sign = Some(c.add);
        }
        letters.push(c.mode);
        if let Some(a) = &c.arg {
            params.push(a);
        }
    }
    let mut out = letters;
    for p in params {
        out.push(' ');
        out.push_str(p);
    }
    out
}

/// Mode changes on a channel by one of its operators. Changes that would
/// not alter anything (setting a mode already set, removing an absent list
/// entry...) are dropped silently; changes aimed at a missing nick or a
/// non-member are dropped with an error. The members (but the setter) see
/// what changed; the caller echoes it.
pub struct SetChannelModes {
    pub by: ConnId,
    pub channel: String,
    pub changes: Vec<ModeChange>,
}

/// What [`SetChannelModes`] did: the changes applied, with parameters in
/// their canonical form (the target's nick as registered, the list mask as
/// stored), and the errors of the rejected ones, in order.
#[derive(Debug, Default)]
pub struct ModesSet {
    pub applied: Vec<ModeChange>,
    pub errors: Vec<ChangeError>,
    /// The msgid of the MODE members saw (when something changed).
    pub msgid: Option<MsgId>,
}

impl Change for SetChannelModes {
    type Output = ModesSet;
    fn apply(
        self,
        net: &mut Network,
        out: &mut Outputs,
        now: Millis,
    ) -> Result<ModesSet, ChangeError> {
        let (id, name) = (self.by, &self.channel);
        let key = casefold(name);
        let (setter, ch) = net.user_and_channel(id, name)?;
        let setter = setter.source();
        policy::is_chanop(ch, ch.member(id))?;
        let list_max = net.cfg.limits.list_entries;
        let mut applied = Vec::new();
        let mut errors = Vec::new();
        for ModeChange { add, mode, arg } in &self.changes {
            let (add, mode) = (*add, *mode);
            match mode {
                'o' | 'v' => {
                    let Some(nick) = arg else { continue };
                    let Ok(t) = net.registered(nick) else {
                        errors.push(ChangeError::NoSuchNick(nick.clone()));
                        continue;
                    };
                    let (tid, tnick) = (t.id, t.nick().to_string());
                    let Some(ch) = net.channels.get_mut(&key) else {
                        break;
                    };
                    let chname = ch.name.clone();
                    let Some(m) = ch.member_mut(tid) else {
                        errors.push(ChangeError::UserNotInChannel(chname.to_string(), tnick));
                        continue;
                    };
                    let flag = if mode == 'o' { &mut m.op } else { &mut m.voice };
                    if *flag != add {
                        *flag = add;
                        applied.push(ModeChange::new(add, mode, Some(tnick)));
                    }
                }
                'b' | 'e' | 'I' => {
                    let Some(mask) = arg else { continue };
                    let Some(ch) = net.channels.get_mut(&key) else {
                        break;
                    };
                    let total = ch.bans.len() + ch.excepts.len() + ch.invex.len();
                    let list = match mode {
                        'b' => &mut ch.bans,
                        'e' => &mut ch.excepts,
                        _ => &mut ch.invex,
                    };
                    // Masks compare under the IRC casemapping, so `-b BAR!*@*`
                    // lifts `+b bar!*@*`.
                    let folded = casefold(mask);
                    let pos = list.iter().position(|e| casefold(&e.mask) == folded);
                    match (add, pos) {
                        (true, None) if total < list_max => {
                            list.push(ListEntry {
                                mask: mask.clone(),
                                set_by: setter.prefix().to_string(),
                                set_at: now / 1000,
                            });
                            applied.push(ModeChange::new(true, mode, Some(mask.clone())));
                        }
                        (false, Some(i)) => {
                            let e = list.remove(i);
                            applied.push(ModeChange::new(false, mode, Some(e.mask)));
                        }
                        // Already there, absent, or the lists are full (the
                        // dialect checks that first to say so).
                        _ => {}
                    }
                }
                _ => {
                    let Some(ch) = net.channels.get_mut(&key) else {
                        break;
                    };
                    if let Some(change) = set_simple_mode(ch, add, mode, arg.as_deref()) {
                        applied.push(change);
                    }
                }
            }
        }
        let mut msgid = None;
        if !applied.is_empty() {
            let id_taken = net.next_msgid();
            if let Some(ch) = net.channels.get(&key) {
                msgid = Some(id_taken);
                let event = Event::Mode {
                    by: setter,
                    channel: ch.name.to_string(),
                    changes: wire_modes(&applied),
                    time: now,
                    msgid: id_taken,
                };
                net.keep([&*ch.key], &event, out);
                out.note(Notification {
                    audience: Audience::Channel {
                        key: ch.key.clone(),
                        except: Some(id),
                    },
                    event,
                });
            }
        }
        Ok(ModesSet {
            applied,
            errors,
            msgid,
        })
    }
}

/// Invites a user to a channel: it may then join past `+i`, `+l` and bans.
/// The target sees the INVITE, and so do the channel's other operators that
/// asked for invite-notify; the caller answers the inviter.
pub struct Invite {
    pub by: ConnId,
    pub target: String,
    pub channel: String,
}

/// What [`Invite`] reports to the inviter's dialect.
#[derive(Debug)]
pub struct Invited {
    pub nick: String,
    pub channel: String,
    pub away: Option<String>,
}

impl Change for Invite {
    type Output = Invited;
    fn apply(
        self,
        net: &mut Network,
        out: &mut Outputs,
        now: Millis,
    ) -> Result<Invited, ChangeError> {
        let id = self.by;
        let u = net.users.get(&id).ok_or(ChangeError::NoPrivileges)?;
        let t = net.registered(&self.target)?;
        let ch = net
            .channel(&self.channel)
            .ok_or_else(|| ChangeError::NoSuchChannel(self.channel.clone()))?;
        let Some(m) = ch.member(id) else {
            return Err(ChangeError::NotOnChannel(ch.name.to_string()));
        };
        if ch.modes.invite_only && !m.op {
            return Err(ChangeError::ChanOpPrivsNeeded(ch.name.to_string()));
        }
        if ch.member(t.id).is_some() {
            return Err(ChangeError::UserOnChannel(
                t.nick().to_string(),
                ch.name.to_string(),
            ));
        }
        let event = |notify| Event::Invite {
            by: u.source(),
            target: t.nick().to_string(),
            channel: ch.name.to_string(),
            notify,
            time: now,
        };
        out.note(Notification {
            audience: Audience::User(t.id),
            event: event(false),
        });
        // IRCv3 invite-notify: the other operators learn who was let in.
        let ops = ch
            .members
            .iter()
            .filter(|m| m.op && m.id != id && m.id != t.id)
            .map(|m| m.id)
            .collect();
        out.note(Notification {
            audience: Audience::Users(ops),
            event: event(true),
        });
        let invited = Invited {
            nick: t.nick().to_string(),
            channel: ch.name.to_string(),
            away: t.away().map(str::to_string),
        };
        let (tid, key) = (t.id, ch.key.to_string());
        if let Some(t) = net.users.get_mut(&tid) {
            t.edit_extra(|e| e.invites.insert(key));
        }
        Ok(invited)
    }
}

/// Applies a flag, key or limit change; returns it as it should be shown when
/// it changed something.
fn set_simple_mode(
    ch: &mut Channel,
    add: bool,
    mode: char,
    arg: Option<&str>,
) -> Option<ModeChange> {
    let m = &mut ch.modes;
    let flag = match mode {
        'i' => &mut m.invite_only,
        'm' => &mut m.moderated,
        'n' => &mut m.no_external,
        't' => &mut m.topic_lock,
        's' => &mut m.secret,
        'p' => &mut m.private,
        'C' => &mut m.no_ctcp,
        'M' => &mut m.registered_speak,
        'R' => &mut m.registered_only,
        'W' => &mut m.no_playback,
        'k' => {
            return match (add, arg) {
                (true, Some(k)) if m.key.as_deref() != Some(k) => {
                    m.key = Some(k.to_string());
                    Some(ModeChange::new(true, 'k', Some(k.to_string())))
                }
                // The removed key is not repeated: `*` keeps the parameter
                // count that clients expect for `-k` without revealing it.
                (false, _) if m.key.take().is_some() => {
                    Some(ModeChange::new(false, 'k', Some("*".into())))
                }
                _ => None,
            };
        }
        'l' => {
            let limit = arg.and_then(|a| a.parse::<usize>().ok());
            return match (add, limit) {
                (true, Some(n)) if n > 0 && m.limit != Some(n) => {
                    m.limit = Some(n);
                    Some(ModeChange::new(true, 'l', Some(n.to_string())))
                }
                (false, _) if m.limit.take().is_some() => Some(ModeChange::new(false, 'l', None)),
                _ => None,
            };
        }
        _ => return None,
    };
    if *flag == add {
        return None;
    }
    *flag = add;
    Some(ModeChange::new(add, mode, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::ChannelName;

    fn channel() -> Channel {
        let mut ch = Channel::new(&ChannelName::parse("#t", 50).unwrap(), 0);
        ch.modes = Default::default();
        ch
    }

    #[test]
    fn simple_modes_report_only_real_changes() {
        let mut ch = channel();
        let s = |v: &str| Some(v.to_string());
        let cases: Vec<(bool, char, Option<&str>, Option<ModeChange>)> = vec![
            (true, 'i', None, Some(ModeChange::new(true, 'i', None))),
            (true, 'i', None, None),
            (false, 'm', None, None),
            (
                true,
                'k',
                Some("a"),
                Some(ModeChange::new(true, 'k', s("a"))),
            ),
            (true, 'k', Some("a"), None),
            (
                true,
                'k',
                Some("b"),
                Some(ModeChange::new(true, 'k', s("b"))),
            ),
            (false, 'k', None, Some(ModeChange::new(false, 'k', s("*")))),
            (false, 'k', None, None),
            (
                true,
                'l',
                Some("3"),
                Some(ModeChange::new(true, 'l', s("3"))),
            ),
            (true, 'l', Some("3"), None),
            (true, 'l', Some("0"), None),
            (false, 'l', None, Some(ModeChange::new(false, 'l', None))),
            (false, 'l', None, None),
            (true, 'x', None, None),
        ];
        for (add, mode, arg, want) in cases {
            assert_eq!(
                set_simple_mode(&mut ch, add, mode, arg),
                want,
                "{add} {mode}"
            );
        }
        assert!(ch.modes.invite_only);
        assert_eq!(ch.modes.key, None);
        assert_eq!(ch.modes.limit, None);
    }

    #[test]
    fn wire_form_groups_signs() {
        let c = |a: bool, m: char, p: Option<&str>| ModeChange::new(a, m, p.map(str::to_string));
        assert_eq!(
            wire_modes(&[c(true, 'o', Some("alice")), c(false, 'v', Some("bob"))]),
            "+o-v alice bob"
        );
        assert_eq!(
            wire_modes(&[
                c(true, 'i', None),
                c(true, 'l', Some("3")),
                c(false, 'k', Some("*"))
            ]),
            "+il-k 3 *"
        );
        assert_eq!(wire_modes(&[]), "");
    }
}
