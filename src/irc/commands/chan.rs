//! Channel membership: JOIN, PART, TOPIC, NAMES.

use super::{CommandError, Ctx, Flow, list, report};
use crate::hub::{Event, HubError, User, cap};
use crate::irc::message::Message;
use crate::irc::numeric::*;

pub fn join(ctx: &mut Ctx<'_, '_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    if m.params[0] == "0" {
        let chans = ctx
            .hub
            .user(id)
            .map(|u| u.channels.to_vec())
            .unwrap_or_default();
        for key in chans {
            let name = ctx.hub.channel(&key).map(|c| c.name.clone()).unwrap_or(key);
            part_one(ctx, &name, "")?;
        }
        return Ok(Flow::Continue);
    }
    let keys: Vec<&str> = m
        .param(1)
        .map(|k| k.split(',').collect())
        .unwrap_or_default();
    for (i, name) in m.params[0].split(',').filter(|s| !s.is_empty()).enumerate() {
        let key = keys.get(i).copied().filter(|k| !k.is_empty());
        match ctx.hub.join(id, name, key, false, ctx.now) {
            Ok(true) => joined(ctx, name),
            Ok(false) => {}
            Err(e) => report(ctx.r, "JOIN", e.into()),
        }
    }
    Ok(Flow::Continue)
}

/// Greets a user who just joined `name`: its JOIN echo, the topic, the names.
fn joined(ctx: &mut Ctx<'_, '_>, name: &str) {
    let id = ctx.st.id();
    let (Some(u), Some(ch)) = (ctx.hub.user(id), ctx.hub.channel(name)) else {
        return;
    };
    ctx.r.event(&Event::Join {
        who: u,
        channel: &ch.name,
        on_connect: false,
        time: ctx.now,
    });
    if let Some(t) = &ch.topic {
        ctx.r.num(RPL_TOPIC, &[&ch.name, &t.text]);
        ctx.r.num(
            RPL_TOPICWHOTIME,
            &[&ch.name, &t.set_by, &t.set_at.to_string()],
        );
    }
    let name = ch.name.clone();
    names_of(ctx, &name);
}

fn part_one(ctx: &mut Ctx<'_, '_>, name: &str, reason: &str) -> Result<(), HubError> {
    let id = ctx.st.id();
    let display = ctx.hub.part(id, name, reason, ctx.now)?;
    if let Some(u) = ctx.hub.user(id) {
        ctx.r.event(&Event::Part {
            who: u,
            channel: &display,
            reason,
            time: ctx.now,
        });
    }
    Ok(())
}

pub fn part(ctx: &mut Ctx<'_, '_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let reason = m.param(1).unwrap_or("").to_string();
    let reason = crate::hub::truncate_bytes(&reason, 300).to_string();
    for name in list(&m.params[0]) {
        if let Err(e) = part_one(ctx, name, &reason) {
            report(ctx.r, "PART", e.into());
        }
    }
    Ok(Flow::Continue)
}

pub fn topic(ctx: &mut Ctx<'_, '_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    let name = &*m.params[0];
    let ch = ctx
        .hub
        .channel(name)
        .ok_or_else(|| HubError::NoSuchChannel(name.to_string()))?;
    let member = ch.member(id).is_some();
    match m.param(1) {
        None => {
            if !member && (ch.modes.secret || ch.modes.private) {
                return Err(HubError::NotOnChannel(ch.name.clone()).into());
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
            let display = ch.name.clone();
            ctx.hub.set_topic(id, &display, text, ctx.now)?;
            let text = ctx
                .hub
                .channel(&display)
                .and_then(|c| c.topic.as_ref().map(|t| t.text.clone()))
                .unwrap_or_default();
            if let Some(u) = ctx.hub.user(id) {
                ctx.r.event(&Event::Topic {
                    by: u,
                    channel: &display,
                    text: &text,
                    time: ctx.now,
                });
            }
        }
    }
    Ok(Flow::Continue)
}

pub fn names(ctx: &mut Ctx<'_, '_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    match m.param(0).filter(|p| !p.is_empty()) {
        None => ctx.r.num(RPL_ENDOFNAMES, &["*"]),
        Some(p) => {
            for name in list(p) {
                names_of(ctx, name);
            }
        }
    }
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
pub fn names_of(ctx: &mut Ctx<'_, '_>, name: &str) {
    let id = ctx.st.id();
    let caps = ctx.r.caps();
    let multi = caps & cap::MULTI_PREFIX != 0;
    let uhnames = caps & cap::USERHOST_IN_NAMES != 0;
    let Some(ch) = ctx.hub.channel(name) else {
        ctx.r.num(RPL_ENDOFNAMES, &[name]);
        return;
    };
    let is_member = ch.member(id).is_some();
    if !is_member && ch.modes.secret {
        ctx.r.num(RPL_ENDOFNAMES, &[name]);
        return;
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
        let Some(u) = ctx.hub.user(mbr.id) else {
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
    let chname = ch.name.clone();
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
    ctx.r.num(RPL_ENDOFNAMES, &[&chname]);
}
