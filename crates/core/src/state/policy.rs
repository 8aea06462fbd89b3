//! Permission decisions, one function each, so every dialect applies the same rules.

use super::{ChangeError, Channel, Member, User};
use crate::mask::wildcard_match;

/// The `nick!user@host` masks bans and exceptions are matched against.
fn matches_any(list: &[super::ListEntry], u: &User) -> bool {
    // The common case, and on every message: no list, no formatting.
    if list.is_empty() {
        return false;
    }
    let full = u.prefix();
    let by_ip = format!("{}!{}@{}", u.nick(), u.user(), u.ip);
    list.iter()
        .any(|e| wildcard_match(&e.mask, &full) || wildcard_match(&e.mask, &by_ip))
}

/// Whether `u` is banned from `ch` (a ban not covered by an exception).
pub fn is_banned(ch: &Channel, u: &User) -> bool {
    matches_any(&ch.bans, u) && !matches_any(&ch.excepts, u)
}

/// Whether `u` may send a message to `ch`.
pub fn can_send(ch: &Channel, u: &User, member: Option<&Member>) -> Result<(), ChangeError> {
    let cannot = || Err(ChangeError::CannotSendToChan(ch.name.to_string()));
    match member {
        None if ch.modes.no_external => cannot(),
        Some(m) if m.op || m.voice => Ok(()),
        _ if ch.modes.moderated => cannot(),
        _ if is_banned(ch, u) => cannot(),
        _ => Ok(()),
    }
}

/// Whether `u` may join `ch` with `key`.
pub fn can_join(ch: &Channel, u: &User, key: Option<&str>) -> Result<(), ChangeError> {
    let invited = u.is_invited(&ch.key);
    // An invitation lets one in past the limit too (Modern IRC, `+l`).
    if let Some(limit) = ch.modes.limit
        && ch.members.len() >= limit
        && !invited
    {
        return Err(ChangeError::ChannelIsFull(ch.name.to_string()));
    }
    if ch.modes.invite_only && !invited && !matches_any(&ch.invex, u) {
        return Err(ChangeError::InviteOnlyChan(ch.name.to_string()));
    }
    if let Some(k) = &ch.modes.key
        && key != Some(k.as_str())
    {
        return Err(ChangeError::BadChannelKey(ch.name.to_string()));
    }
    if is_banned(ch, u) && !invited {
        return Err(ChangeError::BannedFromChan(ch.name.to_string()));
    }
    Ok(())
}

/// Whether `member` may change the topic of `ch`.
pub fn can_set_topic(ch: &Channel, u: &User, member: Option<&Member>) -> Result<(), ChangeError> {
    match member {
        None => Err(ChangeError::NotOnChannel(ch.name.to_string())),
        Some(m) if ch.modes.topic_lock && !m.op && !u.modes.oper => {
            Err(ChangeError::ChanOpPrivsNeeded(ch.name.to_string()))
        }
        _ => Ok(()),
    }
}

/// Whether `member` may kick, set channel modes or invite to a `+i` channel.
pub fn is_chanop(ch: &Channel, member: Option<&Member>) -> Result<(), ChangeError> {
    match member {
        None => Err(ChangeError::NotOnChannel(ch.name.to_string())),
        Some(m) if !m.op => Err(ChangeError::ChanOpPrivsNeeded(ch.name.to_string())),
        _ => Ok(()),
    }
}

/// Whether `u` may disconnect other users.
pub fn can_kill(u: &User) -> Result<(), ChangeError> {
    if u.modes.oper {
        Ok(())
    } else {
        Err(ChangeError::NoPrivileges)
    }
}

/// Whether `u` may send WALLOPS.
pub fn can_wallops(u: &User) -> Result<(), ChangeError> {
    can_kill(u)
}
