//! Permission decisions, one function each, so every dialect applies the same rules.

use super::{ChangeError, Channel, Member, User};
use crate::mask::wildcard_match;

/// The extended-ban type of a mute (`m:<mask>` in `+b` and `+e`, ISUPPORT
/// `EXTBAN=,am`): a matching user stays in the channel but cannot speak.
pub const MUTE: char = 'm';

/// The extended-ban type that matches an account (`a:<account>`, with
/// wildcards, in `+b`, `+e` and `+I`; ISUPPORT `ACCOUNTEXTBAN=a`): it
/// matches only users logged in to a matching account, never a nick.
pub const ACCOUNT: char = 'a';

/// Splits a list entry into its extended-ban type and mask: `m:nick!*@*` is
/// `(Some('m'), "nick!*@*")`, a plain mask has no type. Nicks cannot contain
/// `:`, so a letter and a colon never start a plain `nick!user@host` mask.
pub fn split_extban(mask: &str) -> (Option<char>, &str) {
    match mask.as_bytes() {
        [t, b':', ..] if t.is_ascii_alphabetic() => (Some(char::from(*t)), &mask[2..]),
        _ => (None, mask),
    }
}

/// Whether an `a:` entry of `list` matches the account `u` is logged in to.
fn matches_account(list: &[super::ListEntry], u: &User) -> bool {
    let Some(account) = u.account() else {
        return false;
    };
    let account = crate::names::casefold(account);
    list.iter()
        .map(|e| split_extban(&e.mask))
        .filter(|(k, _)| *k == Some(ACCOUNT))
        .any(|(_, m)| wildcard_match(&crate::names::casefold(m), &account))
}

/// Whether an entry of `list` names `u`: a plain mask matching its
/// `nick!user@host`, or an `a:` entry matching its account.
fn names_user(list: &[super::ListEntry], u: &User) -> bool {
    matches_any(list, u, None) || matches_account(list, u)
}

/// Whether an entry of `list` of extended-ban type `kind` (`None`: plain
/// masks) matches `u`'s `nick!user@host`, by host or by address.
fn matches_any(list: &[super::ListEntry], u: &User, kind: Option<char>) -> bool {
    let mut masks = list
        .iter()
        .map(|e| split_extban(&e.mask))
        .filter(|(k, _)| *k == kind)
        .peekable();
    // The common case, and on every message: no entry, no formatting.
    if masks.peek().is_none() {
        return false;
    }
    let full = u.prefix();
    let by_ip = format!("{}!{}@{}", u.nick(), u.user(), u.ip);
    masks.any(|(_, m)| wildcard_match(m, &full) || wildcard_match(m, &by_ip))
}

/// Whether `u` is banned from `ch` (a ban not covered by an exception).
pub fn is_banned(ch: &Channel, u: &User) -> bool {
    names_user(&ch.bans, u) && !names_user(&ch.excepts, u)
}

/// Whether `u` is muted in `ch`: an `m:` ban matches it and no exception,
/// plain or `m:`, covers it.
pub fn is_muted(ch: &Channel, u: &User) -> bool {
    matches_any(&ch.bans, u, Some(MUTE))
        && !names_user(&ch.excepts, u)
        && !matches_any(&ch.excepts, u, Some(MUTE))
}

/// Whether `u` may send a message to `ch`.
pub fn can_send(ch: &Channel, u: &User, member: Option<&Member>) -> Result<(), ChangeError> {
    let cannot = || Err(ChangeError::CannotSendToChan(ch.name.to_string()));
    match member {
        None if ch.modes.no_external => cannot(),
        Some(m) if m.op || m.voice => Ok(()),
        _ if ch.modes.moderated => cannot(),
        _ if ch.modes.registered_speak && u.account().is_none() => {
            Err(ChangeError::NeedReggedNick(ch.name.to_string()))
        }
        _ if is_banned(ch, u) || is_muted(ch, u) => cannot(),
        _ => Ok(()),
    }
}

/// Whether `text` may go to `ch`: with `+C` no CTCP but ACTION (`/me`).
pub fn allows_text(ch: &Channel, text: &str) -> Result<(), ChangeError> {
    let ctcp = text.starts_with('\u{1}');
    let action = text
        .strip_prefix("\u{1}ACTION")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\u{1}']));
    if ch.modes.no_ctcp && ctcp && !action {
        return Err(ChangeError::CannotSendToChan(ch.name.to_string()));
    }
    Ok(())
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
    if ch.modes.invite_only && !invited && !names_user(&ch.invex, u) {
        return Err(ChangeError::InviteOnlyChan(ch.name.to_string()));
    }
    if ch.modes.registered_only && u.account().is_none() && !invited {
        return Err(ChangeError::NeedReggedNick(ch.name.to_string()));
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

/// Whether `member` may rename `ch` to `new`: a channel operator may, but
/// not the default channel, whose name the configuration gives.
pub fn can_rename(ch: &Channel, member: Option<&Member>, new: &str) -> Result<(), ChangeError> {
    if ch.permanent {
        return Err(ChangeError::CannotRename(
            ch.name.to_string(),
            new.to_string(),
            "The default channel keeps its name".into(),
        ));
    }
    is_chanop(ch, member)
}

/// Whether a user (a member or not) may know that `ch` exists: a secret or
/// private channel shows only to its members.
pub fn can_see_channel(ch: &Channel, member: Option<&Member>) -> bool {
    member.is_some() || !(ch.modes.secret || ch.modes.private)
}

/// Whether `member` may read `ch`'s metadata: its members may.
pub fn can_read_metadata(ch: &Channel, member: Option<&Member>) -> Result<(), ChangeError> {
    match member {
        Some(_) => Ok(()),
        None => Err(ChangeError::NotOnChannel(ch.name.to_string())),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::ChannelName;

    #[test]
    fn extbans_are_a_letter_and_a_colon() {
        assert_eq!(split_extban("m:bar!*@*"), (Some('m'), "bar!*@*"));
        assert_eq!(split_extban("m:"), (Some('m'), ""));
        assert_eq!(split_extban("bar!*@*"), (None, "bar!*@*"));
        // An IPv6 host is no extban, nor is a mask starting with a colon.
        assert_eq!(split_extban("*!*@::1"), (None, "*!*@::1"));
        assert_eq!(split_extban(":m"), (None, ":m"));
        assert_eq!(split_extban("1:x"), (None, "1:x"));
    }

    #[test]
    fn no_ctcp_lets_action_through() {
        let mut ch = Channel::new(&ChannelName::parse("#c", 50).unwrap(), 0);
        let ctcp = "\u{1}PING 1\u{1}";
        assert!(allows_text(&ch, ctcp).is_ok(), "only with +C");
        ch.modes.no_ctcp = true;
        for ok in [
            "hi",
            "\u{1}ACTION waves\u{1}",
            "\u{1}ACTION\u{1}",
            "\u{1}ACTION",
            "a\u{1}b",
        ] {
            assert!(allows_text(&ch, ok).is_ok(), "{ok:?}");
        }
        for refused in [ctcp, "\u{1}ACTIONS\u{1}", "\u{1}", "\u{1}VERSION"] {
            assert!(allows_text(&ch, refused).is_err(), "{refused:?}");
        }
    }
}
