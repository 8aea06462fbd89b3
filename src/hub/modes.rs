//! Hub-side state changes behind channel modes and INVITE.
//!
//! Dialects parse and validate what their users type; these methods only
//! check permissions that depend on the shared state (membership, operator
//! status), mutate it, and report what actually changed, so every dialect shows
//! the same outcome. Fan-out of the resulting MODE is left to the caller: it
//! alone knows the wire form of the changes it asked for.

use super::{Channel, ConnId, Event, Hub, HubError, ListEntry, Millis, cap, fanout, policy};
use crate::names::casefold;

/// One mode change: adding (true) or removing, the mode letter, its parameter.
///
/// Letters: `i m n t s p` flags, `k` key, `l` limit, `o v` member status,
/// `b e I` ban / exception / invite-exception lists. A tuple rather than a
/// struct so dialects can build and read it without naming this module.
pub type ModeChange = (bool, char, Option<String>);

/// What [`Hub::invite`] reports to the inviter's dialect.
pub type Invited = (String, String, Option<String>);

impl Hub {
    /// Mutable access to a channel by its already folded key.
    fn channel_by_key_mut(&mut self, key: &str) -> Option<&mut Channel> {
        self.channels.get_mut(key)
    }

    /// Applies mode changes on `name` on behalf of `id`, who must be a channel
    /// operator. Changes that would not alter anything (setting a mode already
    /// set, removing an absent list entry...) are dropped silently; changes
    /// aimed at a missing nick or a non-member are dropped with an error.
    /// Nothing is sent: the caller broadcasts the applied changes.
    ///
    /// Returns the applied changes, with parameters in their canonical form
    /// (the target's nick as registered, the list mask as stored), and the
    /// errors of the rejected ones, in order.
    pub fn apply_channel_modes(
        &mut self,
        id: ConnId,
        name: &str,
        changes: &[ModeChange],
        now: Millis,
    ) -> Result<(Vec<ModeChange>, Vec<HubError>), HubError> {
        let key = casefold(name);
        let setter = self.users.get(&id).ok_or(HubError::NoPrivileges)?;
        let setter_prefix = setter.prefix();
        let ch = self
            .channels
            .get(&key)
            .ok_or_else(|| HubError::NoSuchChannel(name.to_string()))?;
        policy::is_chanop(ch, ch.member(id))?;
        let list_max = self.cfg.limits.list_entries;
        let mut applied = Vec::new();
        let mut errors = Vec::new();
        for (add, mode, arg) in changes {
            let (add, mode) = (*add, *mode);
            match mode {
                'o' | 'v' => {
                    let Some(nick) = arg else { continue };
                    let Some(t) = self.find_nick(nick).filter(|t| t.registered) else {
                        errors.push(HubError::NoSuchNick(nick.clone()));
                        continue;
                    };
                    let (tid, tnick) = (t.id, t.nick().to_string());
                    let Some(ch) = self.channel_by_key_mut(&key) else {
                        break;
                    };
                    let chname = ch.name.clone();
                    let Some(m) = ch.member_mut(tid) else {
                        errors.push(HubError::UserNotInChannel(chname, tnick));
                        continue;
                    };
                    let flag = if mode == 'o' { &mut m.op } else { &mut m.voice };
                    if *flag != add {
                        *flag = add;
                        applied.push((add, mode, Some(tnick)));
                    }
                }
                'b' | 'e' | 'I' => {
                    let Some(mask) = arg else { continue };
                    let Some(ch) = self.channel_by_key_mut(&key) else {
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
                                set_by: setter_prefix.clone(),
                                set_at: now / 1000,
                            });
                            applied.push((true, mode, Some(mask.clone())));
                        }
                        (false, Some(i)) => {
                            let e = list.remove(i);
                            applied.push((false, mode, Some(e.mask)));
                        }
                        // Already there, absent, or the lists are full (the
                        // dialect checks that first to say so).
                        _ => {}
                    }
                }
                _ => {
                    let Some(ch) = self.channel_by_key_mut(&key) else {
                        break;
                    };
                    if let Some(change) = set_simple_mode(ch, add, mode, arg.as_deref()) {
                        applied.push(change);
                    }
                }
            }
        }
        Ok((applied, errors))
    }

    /// Invites `target` to `name` on behalf of `id`: the target may then join
    /// past `+i`, `+l` and bans. The target sees the INVITE, and so do the
    /// channel operators with `invite-notify`; the caller answers the inviter.
    ///
    /// Returns the target's nick, the channel's name and the target's away
    /// message.
    pub fn invite(
        &mut self,
        id: ConnId,
        target: &str,
        name: &str,
        now: Millis,
    ) -> Result<Invited, HubError> {
        let u = self.users.get(&id).ok_or(HubError::NoPrivileges)?;
        // Field-level lookups (not `find_nick`) so the overflow list stays
        // borrowable while `u`, `t` and `ch` are held.
        let t = self
            .nicks
            .get(&casefold(target), &self.users)
            .and_then(|tid| self.users.get(&tid))
            .filter(|t| t.registered)
            .ok_or_else(|| HubError::NoSuchNick(target.to_string()))?;
        let key = casefold(name);
        let ch = self
            .channels
            .get(&key)
            .ok_or_else(|| HubError::NoSuchChannel(name.to_string()))?;
        let Some(m) = ch.member(id) else {
            return Err(HubError::NotOnChannel(ch.name.clone()));
        };
        if ch.modes.invite_only && !m.op {
            return Err(HubError::ChanOpPrivsNeeded(ch.name.clone()));
        }
        if ch.member(t.id).is_some() {
            return Err(HubError::UserOnChannel(
                t.nick().to_string(),
                ch.name.clone(),
            ));
        }
        let ev = Event::Invite {
            by: u,
            target: t.nick(),
            channel: &ch.name,
            time: now,
        };
        if !t.peer.send_event(&ev) && t.peer.out.closed() == Some(crate::outbox::Closed::Overflow) {
            self.sink.overflowed.push(t.id);
        }
        // IRCv3 invite-notify: the other operators learn who was let in.
        let ops = ch
            .members
            .iter()
            .filter(|m| m.op && m.id != id && m.id != t.id)
            .filter(|m| m.peer.has_cap(cap::INVITE_NOTIFY))
            .map(|m| &m.peer);
        fanout(ops, &ev, &mut self.sink);
        let out = (
            t.nick().to_string(),
            ch.name.clone(),
            t.away().map(str::to_string),
        );
        let tid = t.id;
        if let Some(t) = self.users.get_mut(&tid) {
            t.edit_extra(|e| e.invites.insert(key));
        }
        self.settle();
        Ok(out)
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
        'k' => {
            return match (add, arg) {
                (true, Some(k)) if m.key.as_deref() != Some(k) => {
                    m.key = Some(k.to_string());
                    Some((true, 'k', Some(k.to_string())))
                }
                // The removed key is not repeated: `*` keeps the parameter
                // count that clients expect for `-k` without revealing it.
                (false, _) if m.key.take().is_some() => Some((false, 'k', Some("*".into()))),
                _ => None,
            };
        }
        'l' => {
            let limit = arg.and_then(|a| a.parse::<usize>().ok());
            return match (add, limit) {
                (true, Some(n)) if n > 0 && m.limit != Some(n) => {
                    m.limit = Some(n);
                    Some((true, 'l', Some(n.to_string())))
                }
                (false, _) if m.limit.take().is_some() => Some((false, 'l', None)),
                _ => None,
            };
        }
        _ => return None,
    };
    if *flag == add {
        return None;
    }
    *flag = add;
    Some((add, mode, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::ChanModes;

    fn channel() -> Channel {
        Channel {
            name: "#t".into(),
            key: "#t".into(),
            created: 0,
            topic: None,
            members: Vec::new(),
            modes: ChanModes::default(),
            bans: Vec::new(),
            excepts: Vec::new(),
            invex: Vec::new(),
            permanent: false,
        }
    }

    #[test]
    fn simple_modes_report_only_real_changes() {
        let mut ch = channel();
        let s = |v: &str| Some(v.to_string());
        let cases: Vec<(bool, char, Option<&str>, Option<ModeChange>)> = vec![
            (true, 'i', None, Some((true, 'i', None))),
            (true, 'i', None, None),
            (false, 'm', None, None),
            (true, 'k', Some("a"), Some((true, 'k', s("a")))),
            (true, 'k', Some("a"), None),
            (true, 'k', Some("b"), Some((true, 'k', s("b")))),
            (false, 'k', None, Some((false, 'k', s("*")))),
            (false, 'k', None, None),
            (true, 'l', Some("3"), Some((true, 'l', s("3")))),
            (true, 'l', Some("3"), None),
            (true, 'l', Some("0"), None),
            (false, 'l', None, Some((false, 'l', None))),
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
}
