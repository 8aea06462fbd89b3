//! Channel and user modes, KICK, INVITE, LIST.
//!
//! Mode strings are parsed here into `(adding, letter, parameter)` changes
//! (see [`parse_channel_modes`]); parameters are validated and masks
//! normalised before the network applies what it can, so it never sees a
//! malformed key or mask whatever dialect asked.

use super::list as split_list;
use super::{CommandError, Ctx, Flow, report};
use crate::mask::wildcard_match;
use crate::names::casefold;
use crate::notify::Event;
use crate::state::changes::{Kick, SetUserModes};
use crate::state::{
    ChangeError, Channel, Invite, ModeChange, SetChannelModes, User, policy, truncate_bytes,
    wire_modes,
};
use bavard_proto::message::Message;
use bavard_proto::numeric::*;

/// Parameterised changes honoured per MODE command (ISUPPORT `MODES=4`).
pub const MAX_PARAM_MODES: usize = 4;

/// Longest channel key (RFC 2812's `key` grammar allows 23 characters).
const KEY_MAX: usize = 23;

/// Longest list mask we store: `nick!user@host` at our own limits, with room.
const MASK_MAX: usize = 200;

/// One element of a parsed channel mode string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModeItem {
    /// A change to apply: adding, letter, parameter (not yet validated).
    Change(bool, char, Option<String>),
    /// A list mode (`b`, `e`, `I`) without a parameter: show that list.
    Show(char),
    /// A letter the server does not know.
    Unknown(char),
}

/// Parses a channel mode string and its parameters.
///
/// Parameters are taken in order by the letters that use them: list and
/// member modes always, `k` always when setting and when one is left for
/// unsetting, `l` only when setting. After [`MAX_PARAM_MODES`] parameterised
/// changes, further parameterised letters are ignored, as ISUPPORT promises.
/// A letter missing its parameter is dropped (a list letter shows its list).
pub fn parse_channel_modes(modes: &str, args: &[&str]) -> Vec<ModeItem> {
    let mut out = Vec::new();
    let mut args = args.iter();
    let mut add = true;
    let mut with_param = 0usize;
    let mut shown = Vec::new();
    for c in modes.chars() {
        let takes = match c {
            '+' => {
                add = true;
                continue;
            }
            '-' => {
                add = false;
                continue;
            }
            'b' | 'e' | 'I' | 'o' | 'v' => true,
            'k' => true,
            'l' => add,
            'C' | 'M' | 'R' | 'W' | 'i' | 'm' | 'n' | 't' | 's' | 'p' => false,
            _ => {
                out.push(ModeItem::Unknown(c));
                continue;
            }
        };
        if !takes {
            out.push(ModeItem::Change(add, c, None));
            continue;
        }
        if with_param >= MAX_PARAM_MODES {
            continue;
        }
        match args.next() {
            Some(a) => {
                with_param += 1;
                out.push(ModeItem::Change(add, c, Some(a.to_string())));
            }
            None => match c {
                'b' | 'e' | 'I' if !shown.contains(&c) => {
                    shown.push(c);
                    out.push(ModeItem::Show(c));
                }
                // `-k` needs no key to clear it.
                'k' if !add => out.push(ModeItem::Change(false, 'k', None)),
                _ => {}
            },
        }
    }
    out
}

/// Completes a ban-style mask: `nick` → `nick!*@*`, `nick!user` →
/// `nick!user@*`, `user@host` → `*!user@host`; empty parts become `*`.
pub fn normalize_mask(mask: &str) -> String {
    let or_star = |s: &str| {
        if s.is_empty() {
            "*".to_string()
        } else {
            s.to_string()
        }
    };
    let (nick, rest) = match mask.split_once('!') {
        Some((n, r)) => (n, Some(r)),
        None => (mask, None),
    };
    match rest {
        Some(r) => {
            let (user, host) = r.split_once('@').unwrap_or((r, ""));
            format!("{}!{}@{}", or_star(nick), or_star(user), or_star(host))
        }
        None => match nick.split_once('@') {
            Some((user, host)) => format!("*!{}@{}", or_star(user), or_star(host)),
            None => format!("{}!*@*", or_star(nick)),
        },
    }
}

/// Whether `key` can be a channel key: 1 to 23 printable ASCII characters,
/// no `,` (it separates keys in JOIN) and no leading `:` (it would read as a
/// trailing parameter when echoed).
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= KEY_MAX
        && !key.starts_with(':')
        && key.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

/// The `+modes [params]` of RPL_CHANNELMODEIS; the key only for members.
fn mode_string(ch: &Channel, show_key: bool) -> String {
    let m = &ch.modes;
    let mut letters = String::from("+");
    for (on, c) in [
        (m.no_ctcp, 'C'),
        (m.registered_speak, 'M'),
        (m.registered_only, 'R'),
        (m.no_playback, 'W'),
        (m.invite_only, 'i'),
        (m.moderated, 'm'),
        (m.no_external, 'n'),
        (m.private, 'p'),
        (m.secret, 's'),
        (m.topic_lock, 't'),
    ] {
        if on {
            letters.push(c);
        }
    }
    let mut params = Vec::new();
    // `l` before `k`: outsiders get no key parameter, and listing the limit
    // first keeps the parameters they do get aligned with their letters.
    if let Some(l) = m.limit {
        letters.push('l');
        params.push(l.to_string());
    }
    if let Some(k) = &m.key {
        letters.push('k');
        if show_key {
            params.push(k.clone());
        }
    }
    let mut out = letters;
    for p in params {
        out.push(' ');
        out.push_str(&p);
    }
    out
}

pub fn mode(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let target = &*m.params[0];
    if target.starts_with('#') {
        channel_mode(ctx, m, target)
    } else {
        user_mode(ctx, m, target)
    }
}

fn channel_mode(ctx: &mut Ctx<'_>, m: &Message<'_>, name: &str) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    let ch = ctx
        .net
        .channel(name)
        .ok_or_else(|| ChangeError::NoSuchChannel(name.to_string()))?;
    let chname = ch.name.to_string();
    let is_member = ch.member(id).is_some();
    let Some(modestr) = m.param(1) else {
        let shown = mode_string(ch, is_member);
        let created = ch.created.to_string();
        // RPL_CHANNELMODEIS takes the mode parameters as separate words.
        let mut params: Vec<&str> = vec![&chname];
        params.extend(shown.split(' '));
        ctx.r.num(RPL_CHANNELMODEIS, &params);
        ctx.r.num(RPL_CREATIONTIME, &[&chname, &created]);
        return Ok(Flow::Continue);
    };
    let args: Vec<&str> = m.params[2..].iter().map(|p| &**p).collect();
    let items = parse_channel_modes(modestr, &args);
    let wants_change = items.iter().any(|i| matches!(i, ModeItem::Change(..)));
    if wants_change {
        policy::is_chanop(ch, ch.member(id))?;
    }
    let hidden = !is_member && (ch.modes.secret || ch.modes.private);
    let max = ctx.cfg.limits.list_entries;
    let mut list_total = ch.bans.len() + ch.excepts.len() + ch.invex.len();
    let mut changes = Vec::new();
    for item in items {
        match item {
            ModeItem::Unknown(c) => ctx.r.num(ERR_UNKNOWNMODE, &[&c.to_string()]),
            ModeItem::Show(c) => {
                if hidden {
                    ctx.r.num(ERR_NOTONCHANNEL, &[&chname]);
                } else {
                    show_list(ctx, &chname, c);
                }
            }
            ModeItem::Change(add, c, arg) => {
                let Some(change) = validate(ctx, &chname, add, c, arg) else {
                    continue;
                };
                if let (true, 'b' | 'e' | 'I', Some(mask)) = (add, c, &change.arg) {
                    let present = ctx.net.channel(&chname).is_some_and(|ch| {
                        let f = casefold(mask);
                        let list = match c {
                            'b' => &ch.bans,
                            'e' => &ch.excepts,
                            _ => &ch.invex,
                        };
                        list.iter().any(|e| casefold(&e.mask) == f)
                    });
                    if !present {
                        if list_total >= max {
                            ctx.r.num(ERR_BANLISTFULL, &[&chname, &c.to_string()]);
                            continue;
                        }
                        list_total += 1;
                    }
                }
                changes.push(change);
            }
        }
    }
    if changes.is_empty() {
        return Ok(Flow::Continue);
    }
    let set = ctx.apply(SetChannelModes {
        by: id,
        channel: chname.clone(),
        changes,
    })?;
    for e in set.errors {
        report(ctx.r, "MODE", e.into());
    }
    if set.applied.is_empty() {
        return Ok(Flow::Continue);
    }
    if let (Some(u), Some(msgid)) = (ctx.net.user(id), set.msgid) {
        ctx.r.event(&Event::Mode {
            by: u.source(),
            channel: chname,
            changes: wire_modes(&set.applied),
            time: ctx.now,
            msgid,
        });
    }
    Ok(Flow::Continue)
}

/// Checks and normalises one change's parameter; replies ERR_INVALIDMODEPARAM
/// and returns `None` when it cannot be used.
fn validate(
    ctx: &mut Ctx<'_>,
    chname: &str,
    add: bool,
    c: char,
    arg: Option<String>,
) -> Option<ModeChange> {
    let letter = c.to_string();
    let mut invalid = |shown: &str, why: &str| {
        ctx.r
            .num_text(ERR_INVALIDMODEPARAM, &[chname, &letter, shown], why);
    };
    match (c, arg) {
        ('k', Some(k)) if add && !valid_key(&k) => {
            invalid("*", "Invalid key: 1 to 23 printable characters, no comma");
            None
        }
        ('l', Some(l)) if add => match l.parse::<usize>() {
            Ok(n) if n > 0 => Some(ModeChange::new(add, c, Some(n.to_string()))),
            _ => {
                let shown = if l.is_empty() || l.contains(' ') || l.starts_with(':') {
                    "*"
                } else {
                    l.as_str()
                };
                invalid(shown, "Invalid limit: a positive number is expected");
                None
            }
        },
        ('b' | 'e' | 'I', Some(mask)) => {
            // Extended bans: `m:<mask>` mutes (+b) or lifts a mute (+e);
            // `a:<account>` matches the users logged in to an account.
            let norm = match policy::split_extban(&mask) {
                (None, _) => normalize_mask(&mask),
                (Some(policy::MUTE), rest) if c != 'I' && !rest.is_empty() => {
                    format!("{}:{}", policy::MUTE, normalize_mask(rest))
                }
                (Some(policy::ACCOUNT), rest) if !rest.is_empty() => {
                    format!("{}:{rest}", policy::ACCOUNT)
                }
                (Some(_), _) => {
                    invalid("*", "Unknown extended ban (EXTBAN=,am)");
                    return None;
                }
            };
            if mask.is_empty()
                || norm.starts_with(':')
                || norm.contains(' ')
                || norm.len() > MASK_MAX
            {
                invalid("*", "Invalid mask");
                return None;
            }
            Some(ModeChange::new(add, c, Some(norm)))
        }
        (_, arg) => Some(ModeChange::new(add, c, arg)),
    }
}

/// Lists a channel's bans, exceptions or invite exceptions.
fn show_list(ctx: &mut Ctx<'_>, chname: &str, c: char) {
    let (item, end) = match c {
        'b' => (RPL_BANLIST, RPL_ENDOFBANLIST),
        'e' => (RPL_EXCEPTLIST, RPL_ENDOFEXCEPTLIST),
        _ => (RPL_INVEXLIST, RPL_ENDOFINVEXLIST),
    };
    let entries: Vec<(String, String, String)> = ctx
        .net
        .channel(chname)
        .map(|ch| {
            let list = match c {
                'b' => &ch.bans,
                'e' => &ch.excepts,
                _ => &ch.invex,
            };
            list.iter()
                .map(|e| (e.mask.clone(), e.set_by.clone(), e.set_at.to_string()))
                .collect()
        })
        .unwrap_or_default();
    for (mask, by, at) in &entries {
        ctx.r.num(item, &[chname, mask, by, at]);
    }
    ctx.r.num(end, &[chname]);
}

/// `+` followed by the user's mode letters.
fn umode_string(u: &User) -> String {
    let m = &u.modes;
    let mut s = String::from("+");
    for (on, c) in [
        (m.bot, 'B'),
        (m.invisible, 'i'),
        (m.oper, 'o'),
        (u.account().is_some(), 'r'),
        (m.wallops, 'w'),
        (m.secure, 'Z'),
    ] {
        if on {
            s.push(c);
        }
    }
    s
}

fn user_mode(ctx: &mut Ctx<'_>, m: &Message<'_>, target: &str) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    let u = ctx
        .net
        .find_nick(target)
        .filter(|u| u.registered)
        .ok_or_else(|| ChangeError::NoSuchNick(target.to_string()))?;
    if u.id != id {
        return Err(CommandError::Numeric(ERR_USERSDONTMATCH, vec![]));
    }
    let Some(modestr) = m.param(1) else {
        let s = umode_string(u);
        ctx.r.num(RPL_UMODEIS, &[&s]);
        return Ok(Flow::Continue);
    };
    let nick = u.nick().to_string();
    let mut modes = u.modes;
    let mut applied = Vec::new();
    let mut unknown = false;
    let mut add = true;
    for c in modestr.chars() {
        let flag = match c {
            '+' => {
                add = true;
                continue;
            }
            '-' => {
                add = false;
                continue;
            }
            'i' => &mut modes.invisible,
            'w' => &mut modes.wallops,
            'B' => &mut modes.bot,
            // Operator status is gained through OPER only; dropping it is allowed.
            'o' if !add => &mut modes.oper,
            // Set by the server alone (+o via OPER, +Z for TLS, +r for accounts).
            'o' | 'Z' | 'r' => continue,
            _ => {
                unknown = true;
                continue;
            }
        };
        if *flag != add {
            *flag = add;
            applied.push(ModeChange::new(add, c, None));
        }
    }
    if unknown {
        ctx.r.num(ERR_UMODEUNKNOWNFLAG, &[]);
    }
    ctx.apply(SetUserModes { id, modes })?;
    if !applied.is_empty() {
        let wire = wire_modes(&applied);
        ctx.r.raw(&format!(":{nick} MODE {nick} :{wire}"));
    }
    Ok(Flow::Continue)
}

pub fn kick(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    let chans: Vec<&str> = split_list(&m.params[0]).collect();
    let nicks: Vec<&str> = split_list(&m.params[1]).collect();
    // RFC 2812: one channel and several users, or as many channels as users.
    let pairs: Vec<(&str, &str)> = match (chans.len(), nicks.len()) {
        (1, _) => nicks.iter().map(|n| (chans[0], *n)).collect(),
        (c, n) if c == n => chans.iter().copied().zip(nicks.iter().copied()).collect(),
        _ => return Err(CommandError::NeedMoreParams),
    };
    // TARGMAX KICK: targets past the limit are dropped silently (Modern IRC).
    let pairs = &pairs[..pairs.len().min(ctx.cfg.limits.max_targets)];
    let kicker = ctx.nick();
    let reason = m
        .param(2)
        .filter(|r| !r.is_empty())
        .unwrap_or(kicker.as_str());
    let reason = truncate_bytes(reason, ctx.cfg.limits.kick_length).to_string();
    for &(chan, nick) in pairs {
        let target_id = ctx.net.find_nick(nick).map(|u| u.id);
        let change = Kick {
            by: id,
            channel: chan.to_string(),
            target: nick.to_string(),
            reason: reason.clone(),
        };
        let (channel, target, msgid) = match ctx.apply(change) {
            Ok(done) => done,
            Err(e) => {
                report(ctx.r, "KICK", e.into());
                continue;
            }
        };
        if let (Some(u), Some(target_id)) = (ctx.net.user(id), target_id) {
            ctx.r.event(&Event::Kick {
                by: u.source(),
                channel,
                target,
                target_id,
                reason: reason.clone(),
                time: ctx.now,
                msgid,
            });
        }
    }
    Ok(Flow::Continue)
}

pub fn invite(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    match m.params.len() {
        0 => return list_invitations(ctx),
        1 => return Err(CommandError::NeedMoreParams),
        _ => {}
    }
    let invited = ctx.apply(Invite {
        by: ctx.st.id(),
        target: m.params[0].to_string(),
        channel: m.params[1].to_string(),
    })?;
    ctx.r.num(RPL_INVITING, &[&invited.nick, &invited.channel]);
    if let Some(away) = invited.away {
        ctx.r.num(RPL_AWAY, &[&invited.nick, &away]);
    }
    Ok(Flow::Continue)
}

/// `INVITE` alone: the channels the user is invited to and has not joined
/// yet (336 each, by name), then 337.
fn list_invitations(ctx: &mut Ctx<'_>) -> Result<Flow, CommandError> {
    let mut names: Vec<String> = ctx
        .net
        .user(ctx.st.id())
        .map(|u| {
            u.invitations()
                .filter_map(|key| ctx.net.channel(key).map(|c| c.name.to_string()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for name in &names {
        ctx.r.num(RPL_INVITELIST, &[name]);
    }
    ctx.r.num(RPL_ENDOFINVITELIST, &[]);
    Ok(Flow::Continue)
}

/// One LIST filter (ELIST `CMNTU`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum ListFilter {
    /// A channel name or wildcard mask (M); `!mask` negates it (N).
    Mask(String, bool),
    /// More (`>n`) or fewer (`<n`) visible users (U).
    Users(bool, usize),
    /// Created more (`C>n`) or less (`C<n`) than n minutes ago (C).
    Created(bool, u64),
    /// Topic set more (`T>n`) or less (`T<n`) than n minutes ago (T).
    TopicAge(bool, u64),
}

/// Parses one LIST argument; `None` for a malformed condition.
fn parse_list_filter(s: &str) -> Option<ListFilter> {
    let cmp = |rest: &str| -> Option<(bool, u64)> {
        let (more, n) = if let Some(n) = rest.strip_prefix('>') {
            (true, n)
        } else {
            (false, rest.strip_prefix('<')?)
        };
        Some((more, n.parse().ok()?))
    };
    if s.starts_with(['<', '>']) {
        let (more, n) = cmp(s)?;
        return Some(ListFilter::Users(more, usize::try_from(n).ok()?));
    }
    if let Some(rest) = s.strip_prefix('C').filter(|r| r.starts_with(['<', '>'])) {
        let (more, n) = cmp(rest)?;
        return Some(ListFilter::Created(more, n));
    }
    if let Some(rest) = s.strip_prefix('T').filter(|r| r.starts_with(['<', '>'])) {
        let (more, n) = cmp(rest)?;
        return Some(ListFilter::TopicAge(more, n));
    }
    match s.strip_prefix('!') {
        Some(mask) => Some(ListFilter::Mask(mask.to_string(), true)),
        None => Some(ListFilter::Mask(s.to_string(), false)),
    }
}

/// Whether `age` seconds is more (or less) than `minutes`.
fn age_cmp(more: bool, age: u64, minutes: u64) -> bool {
    let limit = minutes.saturating_mul(60);
    if more { age > limit } else { age < limit }
}

pub fn list(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    let filters: Vec<ListFilter> = m
        .params
        .iter()
        .take(2)
        .flat_map(|p| split_list(p))
        .filter_map(parse_list_filter)
        .collect();
    let now = ctx.now / 1000;
    let wanted: Vec<&str> = filters
        .iter()
        .filter_map(|f| match f {
            ListFilter::Mask(mask, false) => Some(mask.as_str()),
            _ => None,
        })
        .collect();
    let mut rows = Vec::new();
    for ch in ctx.net.channels() {
        let is_member = ch.member(id).is_some();
        // A channel nobody is in (the idle default channel) does not exist
        // for IRC; secret and private channels only show to their members.
        if ch.members.is_empty() || (!is_member && (ch.modes.secret || ch.modes.private)) {
            continue;
        }
        let users = ch
            .members
            .iter()
            .filter(|mb| {
                ctx.net
                    .user(mb.id)
                    .is_some_and(|u| super::chan::visible_in(u, is_member))
            })
            .count();
        if !wanted.is_empty() && !wanted.iter().any(|w| wildcard_match(w, &ch.name)) {
            continue;
        }
        let keep = filters.iter().all(|f| match f {
            ListFilter::Mask(_, false) => true,
            ListFilter::Mask(mask, true) => !wildcard_match(mask, &ch.name),
            ListFilter::Users(true, n) => users > *n,
            ListFilter::Users(false, n) => users < *n,
            ListFilter::Created(more, n) => age_cmp(*more, now.saturating_sub(ch.created), *n),
            ListFilter::TopicAge(more, n) => ch
                .topic
                .as_ref()
                .is_some_and(|t| age_cmp(*more, now.saturating_sub(t.set_at), *n)),
        });
        if !keep {
            continue;
        }
        let modes = mode_string(ch, false);
        let letters = modes.split(' ').next().unwrap_or("+");
        let topic = ch.topic.as_ref().map(|t| t.text.as_str()).unwrap_or("");
        let text = match (letters == "+", topic.is_empty()) {
            (true, _) => topic.to_string(),
            (false, true) => format!("[{letters}]"),
            (false, false) => format!("[{letters}] {topic}"),
        };
        rows.push((ch.name.clone(), users.to_string(), text));
    }
    rows.sort();
    ctx.r.num(RPL_LISTSTART, &["Channel"]);
    for (name, users, text) in &rows {
        ctx.r.num(RPL_LIST, &[name, users, text]);
    }
    ctx.r.num(RPL_LISTEND, &[]);
    Ok(Flow::Continue)
}

#[cfg(test)]
mod tests {
    use super::ModeItem::*;
    use super::*;

    fn ch(add: bool, c: char, a: Option<&str>) -> ModeItem {
        Change(add, c, a.map(str::to_string))
    }

    #[test]
    fn parse_mode_strings() {
        let cases: Vec<(&str, Vec<&str>, Vec<ModeItem>)> = vec![
            (
                "+ov-b",
                vec!["alice", "bob", "m!*@*"],
                vec![
                    ch(true, 'o', Some("alice")),
                    ch(true, 'v', Some("bob")),
                    ch(false, 'b', Some("m!*@*")),
                ],
            ),
            (
                "+int",
                vec![],
                vec![
                    ch(true, 'i', None),
                    ch(true, 'n', None),
                    ch(true, 't', None),
                ],
            ),
            ("-l", vec!["5"], vec![ch(false, 'l', None)]),
            ("+l", vec!["5"], vec![ch(true, 'l', Some("5"))]),
            ("+l", vec![], vec![]),
            ("-k", vec![], vec![ch(false, 'k', None)]),
            ("-k", vec!["x"], vec![ch(false, 'k', Some("x"))]),
            ("+k", vec![], vec![]),
            ("b", vec![], vec![Show('b')]),
            ("+bb", vec![], vec![Show('b')]),
            ("+eI", vec![], vec![Show('e'), Show('I')]),
            ("+xm", vec![], vec![Unknown('x'), ch(true, 'm', None)]),
            ("+o", vec![], vec![]),
            (
                "+vvvvv",
                vec!["a", "b", "c", "d", "e"],
                vec![
                    ch(true, 'v', Some("a")),
                    ch(true, 'v', Some("b")),
                    ch(true, 'v', Some("c")),
                    ch(true, 'v', Some("d")),
                ],
            ),
            (
                "+ooooo-s",
                vec!["a", "b", "c", "d", "e"],
                vec![
                    ch(true, 'o', Some("a")),
                    ch(true, 'o', Some("b")),
                    ch(true, 'o', Some("c")),
                    ch(true, 'o', Some("d")),
                    ch(false, 's', None),
                ],
            ),
            ("", vec![], vec![]),
        ];
        for (modes, args, want) in cases {
            assert_eq!(parse_channel_modes(modes, &args), want, "{modes} {args:?}");
        }
    }

    #[test]
    fn masks_are_completed() {
        for (given, want) in [
            ("nick", "nick!*@*"),
            ("nick!user", "nick!user@*"),
            ("user@host", "*!user@host"),
            ("n!u@h", "n!u@h"),
            ("*", "*!*@*"),
            ("!@", "*!*@*"),
            ("n!@h", "n!*@h"),
        ] {
            assert_eq!(normalize_mask(given), want, "{given}");
        }
    }

    #[test]
    fn keys_are_checked() {
        assert!(valid_key("beer"));
        assert!(!valid_key(""));
        assert!(!valid_key("with space"));
        assert!(!valid_key("a,b"));
        assert!(!valid_key(":x"));
        assert!(!valid_key(&"long".repeat(100)));
    }

    #[test]
    fn list_filters() {
        use ListFilter::*;
        assert_eq!(parse_list_filter(">3"), Some(Users(true, 3)));
        assert_eq!(parse_list_filter("<10"), Some(Users(false, 10)));
        assert_eq!(parse_list_filter("C>2"), Some(Created(true, 2)));
        assert_eq!(parse_list_filter("T<5"), Some(TopicAge(false, 5)));
        assert_eq!(parse_list_filter("!#a*"), Some(Mask("#a*".into(), true)));
        assert_eq!(
            parse_list_filter("#chan"),
            Some(Mask("#chan".into(), false))
        );
        assert_eq!(parse_list_filter("Cool"), Some(Mask("Cool".into(), false)));
        assert_eq!(parse_list_filter(">x"), None);
        assert!(age_cmp(true, 181, 3));
        assert!(!age_cmp(true, 180, 3));
        assert!(age_cmp(false, 59, 1));
        assert!(!age_cmp(false, 0, 0));
    }
}
