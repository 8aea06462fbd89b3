//! CHATHISTORY (IRCv3 `draft/chathistory`): the past messages of a channel
//! the user is in, or of a private conversation of the user's account, read
//! from the history store (`limits.history` kept per conversation). A user
//! not logged in has no private history: the next holder of its nick would
//! read it.

use super::query::middle;
use super::{CommandError, Cont, Ctx, Flow};
use crate::effect::{Effect, Outcome};
use crate::ids::MsgId;
use crate::irc::render::{format_time, parse_time};
use crate::irc::state::cap;
use crate::notify::Event;
use crate::store::{Kinds, Point, Range, Stored, dm_key, dm_prefix, history_key};
use bavard_proto::message::Message;

fn fail(ctx: &mut Ctx<'_>, code: &str, context: &[&str], text: &str) -> Result<Flow, CommandError> {
    let context: Vec<String> = context.iter().map(|c| middle(c).to_string()).collect();
    let context: Vec<&str> = context.iter().map(String::as_str).collect();
    ctx.r.standard("FAIL", "CHATHISTORY", code, &context, text);
    Ok(Flow::Continue)
}

/// `timestamp=<time>` or `msgid=<id>`.
fn point(s: &str) -> Option<Point> {
    if let Some(t) = s.strip_prefix("timestamp=") {
        return parse_time(t).map(Point::Time);
    }
    let id = s.strip_prefix("msgid=")?.parse().ok()?;
    Some(Point::Msgid(MsgId::from_raw(id)))
}

pub fn chathistory(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let sub = m.params[0].to_ascii_uppercase();
    let want = match sub.as_str() {
        "LATEST" | "BEFORE" | "AFTER" | "AROUND" | "TARGETS" => 4,
        "BETWEEN" => 5,
        _ => return fail(ctx, "INVALID_PARAMS", &[&m.params[0]], "Unknown subcommand"),
    };
    if m.params.len() < want {
        return fail(ctx, "INVALID_PARAMS", &[&sub], "Insufficient parameters");
    }
    let max = ctx.cfg.limits.history.max(1);
    let limit = match m.params[want - 1].parse::<usize>() {
        Ok(n) if n > 0 => n.min(max),
        _ => {
            let given = &m.params[want - 1];
            return fail(ctx, "INVALID_PARAMS", &[&sub, given], "Invalid limit");
        }
    };
    // The references: after the target, or (TARGETS) in its place.
    let first = if sub == "TARGETS" { 1 } else { 2 };
    let mut points = Vec::new();
    for p in &m.params[first..want - 1] {
        let star = sub == "LATEST" && p == "*";
        let timestamp_only = sub == "TARGETS" && !p.starts_with("timestamp=");
        match point(p) {
            _ if star => points.push(None),
            Some(pt) if !timestamp_only => points.push(Some(pt)),
            _ => {
                return fail(
                    ctx,
                    "INVALID_PARAMS",
                    &[&sub, p],
                    "Invalid message reference",
                );
            }
        }
    }
    if sub == "TARGETS" {
        return targets(ctx, &points, limit);
    }
    let target = &*m.params[1];
    let Some((name, key)) = conversation(ctx, target) else {
        return fail(
            ctx,
            "INVALID_TARGET",
            &[&sub, target],
            "Messages could not be retrieved",
        );
    };
    // Only LATEST takes `*` (None); the others' references are all Some.
    let at = points.first().copied().flatten().unwrap_or(Point::Time(0));
    let range = match sub.as_str() {
        "LATEST" => Range::Latest {
            after: points.first().copied().flatten(),
            limit,
        },
        "BEFORE" => Range::Before { point: at, limit },
        "AFTER" => Range::After { point: at, limit },
        "AROUND" => Range::Around { point: at, limit },
        _ => Range::Between {
            from: at,
            to: points.get(1).copied().flatten().unwrap_or(Point::Time(0)),
            limit,
        },
    };
    let Some(key) = key.filter(|_| ctx.cfg.limits.history > 0) else {
        return Ok(played(ctx, &sub, &name, Outcome::History(Vec::new())));
    };
    Ok(Flow::Wait(
        Effect::ReadHistory {
            target: key,
            range,
            kinds: playback_kinds(ctx.r.caps()),
        },
        Cont::History {
            command: sub,
            target: name.to_string(),
        },
    ))
}

/// What a client is played of history: every event kept with
/// `draft/event-playback`, else its chat messages.
pub(crate) fn playback_kinds(caps: u32) -> Kinds {
    if caps & cap::EVENT_PLAYBACK != 0 {
        Kinds::All
    } else {
        Kinds::Messages
    }
}

/// The conversation `target` names for the user: its name as shown and its
/// history key (none for a nick while not logged in). `None` when it names no
/// channel the user is in and no valid nick.
fn conversation(ctx: &Ctx<'_>, target: &str) -> Option<(String, Option<String>)> {
    if target.starts_with('#') {
        let ch = ctx.net.channel(target)?;
        ch.member(ctx.st.id())?;
        return Some((ch.name.to_string(), Some(history_key(&ch.key))));
    }
    ctx.net.validate_nick(target).ok()?;
    let me = ctx.net.user(ctx.st.id()).and_then(|u| u.account());
    // The other side by its account while it is logged in, else its nick.
    let other = ctx.net.find_nick(target).and_then(|u| u.account());
    let key = me.map(|me| dm_key(me, other.unwrap_or(target)));
    Some((target.to_string(), key))
}

/// CHATHISTORY, once the store answered: a `chathistory` batch of the
/// messages, each as it was relayed (its time and msgid), under the
/// channel's current name.
pub fn played(ctx: &mut Ctx<'_>, command: &str, name: &str, outcome: Outcome) -> Flow {
    let events: Vec<Stored> = match outcome {
        Outcome::History(events) => events,
        Outcome::Failed(why) => {
            let _ = fail(ctx, "MESSAGE_ERROR", &[command, name], &why);
            return Flow::Continue;
        }
        _ => Vec::new(),
    };
    play(ctx, name, events);
    Flow::Continue
}

/// The read of what a client that just joined `name` is played of its
/// history: the last `history.playback_on_join` chat messages, for a
/// client without draft/chathistory (which asks for what it wants) in a
/// channel without `+W`.
pub fn join_playback(ctx: &Ctx<'_>, name: &str) -> Option<Effect> {
    let l = &ctx.cfg.limits;
    let n = l.playback_on_join.min(l.history);
    if n == 0 || ctx.r.caps() & cap::CHATHISTORY != 0 {
        return None;
    }
    let ch = ctx.net.channel(name)?;
    if ch.modes.no_playback {
        return None;
    }
    Some(Effect::ReadHistory {
        target: history_key(&ch.key),
        range: Range::Latest {
            after: None,
            limit: n,
        },
        kinds: Kinds::Messages,
    })
}

/// The history read for a join, played: as a `chathistory` batch with
/// `batch`, else as plain lines (with their time under server-time). A
/// failed read plays nothing: the client did not ask.
pub fn played_on_join(ctx: &mut Ctx<'_>, name: &str, outcome: Outcome) {
    if let Outcome::History(events) = outcome
        && !events.is_empty()
    {
        play(ctx, name, events);
    }
}

/// `events` of the channel or conversation `name`, in a `chathistory`
/// batch when the client has `batch`.
fn play(ctx: &mut Ctx<'_>, name: &str, events: Vec<Stored>) {
    ctx.r.start_batch("chathistory", &[name]);
    for mut s in events {
        // A channel's events under its current name; private ones as sent.
        if name.starts_with('#') {
            under_name(&mut s.event, name);
        }
        ctx.r.event(&s.event);
    }
    ctx.r.end_batch();
}

/// Names the channel of a kept event `name` (its name now: a renamed
/// channel's history is played under its new name).
pub(crate) fn under_name(e: &mut Event, name: &str) {
    match e {
        Event::Message { target, .. } => *target = name.into(),
        Event::Join { channel, .. }
        | Event::Part { channel, .. }
        | Event::Kick { channel, .. }
        | Event::Topic { channel, .. }
        | Event::Mode { channel, .. } => *channel = name.to_string(),
        _ => {}
    }
}

/// `CHATHISTORY TARGETS <from> <to> <limit>`: the user's channels and
/// private conversations (by the other side's casefolded name) whose
/// latest message is between the two times.
fn targets(
    ctx: &mut Ctx<'_>,
    points: &[Option<Point>],
    limit: usize,
) -> Result<Flow, CommandError> {
    let time = |i: usize| match points.get(i) {
        Some(Some(Point::Time(t))) => *t,
        _ => 0,
    };
    let (from, to) = (time(0), time(1));
    let names: Vec<(String, String)> = ctx
        .net
        .user(ctx.st.id())
        .map(|u| {
            u.channels
                .iter()
                .filter_map(|k| ctx.net.channel(k))
                .map(|ch| (history_key(&ch.key), ch.name.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let prefix = ctx
        .net
        .user(ctx.st.id())
        .and_then(|u| u.account())
        .map(dm_prefix);
    if ctx.cfg.limits.history == 0 || (names.is_empty() && prefix.is_none()) {
        return Ok(targets_found(ctx, &names, Outcome::Targets(Vec::new())));
    }
    let effect = Effect::HistoryTargets {
        targets: names.iter().map(|(k, _)| k.clone()).collect(),
        prefix,
        from,
        to,
        limit,
    };
    Ok(Flow::Wait(effect, Cont::HistoryTargets { names }))
}

/// CHATHISTORY TARGETS, once the store answered: a
/// `draft/chathistory-targets` batch of `CHATHISTORY TARGETS <name> <time>`.
pub fn targets_found(ctx: &mut Ctx<'_>, names: &[(String, String)], outcome: Outcome) -> Flow {
    let found = match outcome {
        Outcome::Targets(found) => found,
        Outcome::Failed(why) => {
            let _ = fail(ctx, "MESSAGE_ERROR", &["TARGETS"], &why);
            return Flow::Continue;
        }
        _ => Vec::new(),
    };
    ctx.r.start_batch("draft/chathistory-targets", &[]);
    let partner = |key: &str| Some(key.strip_prefix("dm:")?.split_once(' ')?.1.to_string());
    for (key, at) in found {
        let channel = names.iter().find(|(k, _)| *k == key);
        if let Some(name) = channel.map(|(_, n)| n.clone()).or_else(|| partner(&key)) {
            let mut t = Vec::new();
            format_time(at, &mut t);
            let t = String::from_utf8_lossy(&t);
            ctx.r
                .server_line(&format!("CHATHISTORY TARGETS {name} {t}"));
        }
    }
    ctx.r.end_batch();
    Flow::Continue
}
