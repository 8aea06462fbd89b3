//! Channel membership: JOIN, PART, TOPIC, NAMES, RENAME.

use super::{CommandError, Cont, Ctx, Flow, list, report};
use crate::effect::{Effect, Outcome};
use crate::ids::MsgId;
use crate::irc::state::cap;
use crate::names::ChannelName;
use crate::notify::Event;
use crate::state::changes::{Join, Part, SetTopic};
use crate::state::rename::Rename;
use crate::state::{ChangeError, User, policy, truncate_bytes};
use bavard_proto::message::Message;
use bavard_proto::numeric::*;

pub fn join(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    if m.params[0] == "0" {
        let chans = ctx
            .net
            .user(id)
            .map(|u| u.channels.to_vec())
            .unwrap_or_default();
        for key in chans {
            let name = ctx
                .net
                .channel(&key)
                .map(|c| c.name.to_string())
                .unwrap_or(key);
            part_one(ctx, &name, "")?;
        }
        return Ok(Flow::Continue);
    }
    let keys: Vec<&str> = m
        .param(1)
        .map(|k| k.split(',').collect())
        .unwrap_or_default();
    let chans = list(&m.params[0])
        .enumerate()
        .map(|(i, name)| {
            let key = keys.get(i).filter(|k| !k.is_empty()).map(|k| k.to_string());
            (name.to_string(), key)
        })
        .collect();
    join_from(ctx, chans, 0)
}

/// Joins `chans[next..]` in order; stops to found a channel that does not
/// exist yet (claimed in the name registry), and to read the history a
/// client that cannot ask for it is played on joining.
pub(super) fn join_from(
    ctx: &mut Ctx<'_>,
    chans: Vec<(String, Option<String>)>,
    mut next: usize,
) -> Result<Flow, CommandError> {
    while let Some((name, key)) = chans.get(next) {
        next += 1;
        let cname = match ctx.net.validate_channel(name) {
            Ok(c) => c,
            Err(e) => {
                report(ctx.r, "JOIN", e.into());
                continue;
            }
        };
        if ctx.net.channel(name).is_some() {
            if join_one(ctx, cname, key.clone(), false) == Joined::Now
                && let Some(flow) = playback(ctx, &chans, next)
            {
                return Ok(flow);
            }
            continue;
        }
        let full = ctx
            .net
            .user(ctx.st.id())
            .is_some_and(|u| u.channels.len() >= ctx.cfg.limits.channels_per_user);
        if full {
            report(
                ctx.r,
                "JOIN",
                ChangeError::TooManyChannels(name.clone()).into(),
            );
            continue;
        }
        let effect = Effect::FoundChannel {
            key: cname.key().to_string(),
        };
        return Ok(Flow::Wait(
            effect,
            Cont::Join {
                chans,
                next: next - 1,
            },
        ));
    }
    Ok(Flow::Continue)
}

/// JOIN, once the registry said whether this user founds `chans[next]`.
pub fn join_founded(
    ctx: &mut Ctx<'_>,
    chans: Vec<(String, Option<String>)>,
    next: usize,
    outcome: Outcome,
) -> Result<Flow, CommandError> {
    if let Some((name, key)) = chans.get(next) {
        match (outcome, ctx.net.validate_channel(name)) {
            (Outcome::Failed(why), _) => {
                ctx.r
                    .standard("FAIL", "JOIN", "TEMPORARILY_UNAVAILABLE", &[name], &why)
            }
            (outcome, Ok(cname)) => {
                let founder = outcome == Outcome::Claimed(true);
                let ch_key = cname.key().to_string();
                match join_one(ctx, cname, key.clone(), founder) {
                    // Founded but not created: give the name back.
                    Joined::Refused if founder => {
                        ctx.out.later.push(Effect::DropChannel { key: ch_key });
                    }
                    // A channel founded again finds the history it had.
                    Joined::Now => {
                        if let Some(flow) = playback(ctx, &chans, next + 1) {
                            return Ok(flow);
                        }
                    }
                    _ => {}
                }
            }
            (_, Err(e)) => report(ctx.r, "JOIN", e.into()),
        }
    }
    join_from(ctx, chans, next + 1)
}

/// The read of the history played to the client on joining `chans[next -
/// 1]`, when it gets some; the JOIN goes on with `chans[next..]` once it
/// is played.
fn playback(ctx: &Ctx<'_>, chans: &[(String, Option<String>)], next: usize) -> Option<Flow> {
    let (name, _) = chans.get(next.checked_sub(1)?)?;
    let effect = super::history::join_playback(ctx, name)?;
    let cont = Cont::JoinPlayback {
        chans: chans.to_vec(),
        next,
        channel: name.clone(),
    };
    Some(Flow::Wait(effect, cont))
}

/// How a JOIN of one channel went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Joined {
    Now,
    Already,
    Refused,
}

/// Joins one channel and greets the user.
fn join_one(ctx: &mut Ctx<'_>, channel: ChannelName, key: Option<String>, founder: bool) -> Joined {
    let id = ctx.st.id();
    let name = channel.as_str().to_string();
    let change = Join {
        id,
        channel,
        key,
        on_connect: false,
        founder,
    };
    match ctx.apply(change) {
        Ok(Some(msgid)) => {
            joined(ctx, &name, msgid);
            Joined::Now
        }
        Ok(None) => Joined::Already,
        Err(e) => {
            report(ctx.r, "JOIN", e.into());
            Joined::Refused
        }
    }
}

/// Greets a user who just joined `name`: its JOIN echo, the topic, the names.
fn joined(ctx: &mut Ctx<'_>, name: &str, msgid: MsgId) {
    let id = ctx.st.id();
    let (Some(u), Some(ch)) = (ctx.net.user(id), ctx.net.channel(name)) else {
        return;
    };
    ctx.r.event(&Event::Join {
        who: u.source(),
        id,
        channel: ch.name.to_string(),
        realname: u.realname().to_string(),
        on_connect: false,
        time: ctx.now,
        msgid,
    });
    if let Some(t) = &ch.topic {
        ctx.r.num(RPL_TOPIC, &[&ch.name, &t.text]);
        ctx.r.num(
            RPL_TOPICWHOTIME,
            &[&ch.name, &t.set_by, &t.set_at.to_string()],
        );
    }
    let name = ch.name.clone();
    let end = names_list(ctx, &name);
    // draft/read-marker: the channel's marker, before the end of NAMES.
    if ctx.r.caps() & cap::READ_MARKER != 0 {
        let at = ctx.net.read_marker(id, &name);
        super::ircv3::send_marker(ctx, &name, at);
    }
    ctx.r.num(RPL_ENDOFNAMES, &[&end]);
    super::metadata::joined(ctx, &name);
}

fn part_one(ctx: &mut Ctx<'_>, name: &str, reason: &str) -> Result<(), ChangeError> {
    let id = ctx.st.id();
    let who = ctx.net.user(id).map(User::source);
    let (channel, msgid) = ctx.apply(Part {
        id,
        channel: name.to_string(),
        reason: reason.to_string(),
    })?;
    if let Some(who) = who {
        ctx.r.event(&Event::Part {
            who,
            id,
            channel,
            reason: reason.to_string(),
            time: ctx.now,
            msgid,
        });
    }
    Ok(())
}

pub fn part(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let reason = truncate_bytes(m.param(1).unwrap_or(""), 300).to_string();
    for name in list(&m.params[0]) {
        if let Err(e) = part_one(ctx, name, &reason) {
            report(ctx.r, "PART", e.into());
        }
    }
    Ok(Flow::Continue)
}

pub fn topic(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    let name = &*m.params[0];
    let ch = ctx
        .net
        .channel(name)
        .ok_or_else(|| ChangeError::NoSuchChannel(name.to_string()))?;
    let member = ch.member(id).is_some();
    match m.param(1) {
        None => {
            if !member && (ch.modes.secret || ch.modes.private) {
                return Err(ChangeError::NotOnChannel(ch.name.to_string()).into());
            }
            match &ch.topic {
                Some(t) => {
                    ctx.r.num(RPL_TOPIC, &[&ch.name, &t.text]);
                    ctx.r.num(
                        RPL_TOPICWHOTIME,
                        &[&ch.name, &t.set_by, &t.set_at.to_string()],
                    );
                }
                None => ctx.r.num(RPL_NOTOPIC, &[&ch.name]),
            }
        }
        Some(text) => {
            let change = SetTopic {
                id,
                channel: ch.name.to_string(),
                text: text.to_string(),
            };
            let (channel, text, msgid) = ctx.apply(change)?;
            if let Some(u) = ctx.net.user(id) {
                ctx.r.event(&Event::Topic {
                    by: u.source(),
                    channel,
                    text,
                    time: ctx.now,
                    msgid,
                });
            }
        }
    }
    Ok(Flow::Continue)
}

/// `RENAME #old #new [:reason]` (IRCv3 `draft/channel-rename`): checked
/// here, then the new name is claimed in the name registry unless only its
/// case changes.
pub fn rename(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let (old, new) = (&*m.params[0], &*m.params[1]);
    let reason = truncate_bytes(m.param(2).unwrap_or(""), ctx.cfg.limits.kick_length).to_string();
    let ch = ctx
        .net
        .channel(old)
        .ok_or_else(|| ChangeError::NoSuchChannel(old.to_string()))?;
    policy::can_rename(ch, ch.member(ctx.st.id()), new)?;
    let cannot = |why: &str| ChangeError::CannotRename(ch.name.to_string(), new.into(), why.into());
    let Ok(name) = ctx.net.validate_channel(new) else {
        return Err(cannot("Invalid channel name").into());
    };
    if name.key() == &*ch.key {
        return renamed(ctx, ch.name.to_string(), name, reason);
    }
    if ctx.net.channel(new).is_some() {
        return Err(ChangeError::ChannelNameInUse(ch.name.to_string(), new.to_string()).into());
    }
    let cont = Cont::Rename {
        channel: ch.name.to_string(),
        new: new.to_string(),
        reason,
    };
    let key = name.key().to_string();
    Ok(Flow::Wait(Effect::FoundChannel { key }, cont))
}

/// RENAME, once the registry said whether the new name was free.
pub fn rename_claimed(
    ctx: &mut Ctx<'_>,
    channel: String,
    new: String,
    reason: String,
    outcome: Outcome,
) -> Result<Flow, CommandError> {
    match outcome {
        Outcome::Claimed(true) => {
            let name = ctx.net.validate_channel(&new).map_err(|_| {
                ChangeError::CannotRename(
                    channel.clone(),
                    new.clone(),
                    "Invalid channel name".into(),
                )
            })?;
            let key = name.key().to_string();
            let done = renamed(ctx, channel, name, reason);
            if done.is_err() {
                // Claimed but not taken: give the name back.
                ctx.out.later.push(Effect::DropChannel { key });
            }
            done
        }
        Outcome::Failed(why) => Err(ChangeError::CannotRename(channel, new, why).into()),
        _ => Err(ChangeError::ChannelNameInUse(channel, new).into()),
    }
}

/// Applies a rename and echoes it to the renamer.
fn renamed(
    ctx: &mut Ctx<'_>,
    channel: String,
    new: ChannelName,
    reason: String,
) -> Result<Flow, CommandError> {
    let done = ctx.apply(Rename {
        by: ctx.st.id(),
        channel,
        new,
        reason,
    })?;
    for ev in &done.echo {
        ctx.r.event(ev);
    }
    Ok(Flow::Continue)
}

pub fn names(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let Some(p) = m.param(0).filter(|p| !p.is_empty()) else {
        ctx.r.num(RPL_ENDOFNAMES, &["*"]);
        return Ok(Flow::Continue);
    };
    if !p.contains(',') {
        names_of(ctx, p);
        return Ok(Flow::Continue);
    }
    // Several channels (TARGMAX NAMES, the rest dropped silently): each one's
    // 353 lines, then one 366 carrying the list as given.
    let max = ctx.cfg.limits.max_targets;
    for name in list(p).take(max) {
        names_list(ctx, name);
    }
    ctx.r.num(RPL_ENDOFNAMES, &[super::query::middle(p)]);
    Ok(Flow::Continue)
}

/// The prefix characters of a member, highest first (all with multi-prefix).
pub fn member_prefix(op: bool, voice: bool, multi: bool) -> &'static str {
    match (op, voice, multi) {
        (true, true, true) => "@+",
        (true, _, _) => "@",
        (false, true, _) => "+",
        _ => "",
    }
}

/// Whether `viewer` may see that `u` is in `ch`.
pub fn visible_in(u: &User, viewer_is_member: bool) -> bool {
    viewer_is_member || !u.modes.invisible
}

/// RPL_NAMREPLY lines and RPL_ENDOFNAMES for one channel.
pub fn names_of(ctx: &mut Ctx<'_>, name: &str) {
    let end = names_list(ctx, name);
    ctx.r.num(RPL_ENDOFNAMES, &[&end]);
}

/// The RPL_NAMREPLY lines of one channel, when the user may see its members;
/// returns the name its RPL_ENDOFNAMES carries (the channel's own spelling,
/// or the name as given when there is no such channel to show).
fn names_list(ctx: &mut Ctx<'_>, name: &str) -> String {
    let id = ctx.st.id();
    let caps = ctx.r.caps();
    let multi = caps & cap::MULTI_PREFIX != 0;
    let uhnames = caps & cap::USERHOST_IN_NAMES != 0;
    let given = || super::query::middle(name).to_string();
    let Some(ch) = ctx.net.channel(name) else {
        return given();
    };
    let is_member = ch.member(id).is_some();
    if !is_member && ch.modes.secret {
        return given();
    }
    let symbol = if ch.modes.secret {
        "@"
    } else if ch.modes.private {
        "*"
    } else {
        "="
    };
    let mut entries = Vec::with_capacity(ch.members.len());
    for mbr in &ch.members {
        let Some(u) = ctx.net.user(mbr.id) else {
            continue;
        };
        if !visible_in(u, is_member) {
            continue;
        }
        let p = member_prefix(mbr.op, mbr.voice, multi);
        if uhnames {
            entries.push(format!("{p}{}", u.prefix()));
        } else {
            entries.push(format!("{p}{}", u.nick()));
        }
    }
    let chname = ch.name.to_string();
    // ":server 353 nick = #chan :" plus CRLF must fit in 512 bytes.
    let room = 512 - (ctx.r.server().len() + ctx.r.nick.len() + chname.len() + 16);
    let mut line = String::new();
    for e in entries {
        if !line.is_empty() && line.len() + 1 + e.len() > room {
            ctx.r.num(RPL_NAMREPLY, &[symbol, &chname, &line]);
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&e);
    }
    if !line.is_empty() {
        ctx.r.num(RPL_NAMREPLY, &[symbol, &chname, &line]);
    }
    chname
}
