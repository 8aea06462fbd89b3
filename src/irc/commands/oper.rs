//! Operator and user-state commands: OPER, KILL, WALLOPS, AWAY, SETNAME, MONITOR.

use super::{CommandError, Ctx, Flow, list};
use crate::hub::{Event, HubError, UserModes, policy};
use crate::irc::message::Message;
use crate::irc::numeric::*;
use crate::names::casefold;
use crate::oper::OperCheck;

pub fn oper(ctx: &mut Ctx<'_, '_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    match ctx.oper {
        Some(OperCheck::Granted) => {
            let nick = ctx.nick();
            if let Some(u) = ctx.hub.user(id) {
                let modes = UserModes {
                    oper: true,
                    ..u.modes
                };
                ctx.hub.set_modes(id, modes);
            }
            tracing::info!(conn = id, %nick, oper = %m.params[0], "operator login");
            ctx.r.num(RPL_YOUREOPER, &[]);
            ctx.r.raw(&format!(":{nick} MODE {nick} :+o"));
        }
        Some(OperCheck::Throttled(secs)) => {
            ctx.r.num_text(
                ERR_PASSWDMISMATCH,
                &[],
                &format!("Too many failed attempts: try again in {secs} s"),
            );
        }
        _ => {
            tracing::warn!(conn = id, oper = %m.params[0], "failed operator login");
            ctx.r.num(ERR_PASSWDMISMATCH, &[]);
        }
    }
    Ok(Flow::Continue)
}

pub fn kill(ctx: &mut Ctx<'_, '_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let reason = m
        .param(1)
        .filter(|r| !r.is_empty())
        .unwrap_or("No reason given");
    let target = &*m.params[0];
    if casefold(target) == casefold(ctx.r.server()) {
        return Err(CommandError::Numeric(ERR_CANTKILLSERVER, vec![]));
    }
    let id = ctx.st.id();
    ctx.hub.kill(id, target, reason, ctx.now)?;
    tracing::info!(conn = id, killer = %ctx.nick(), victim = target, "kill");
    if ctx.hub.user(id).is_none() {
        // Killed itself.
        return Ok(Flow::Close);
    }
    Ok(Flow::Continue)
}

pub fn wallops(ctx: &mut Ctx<'_, '_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    let u = ctx.hub.user(id).ok_or(HubError::NoPrivileges)?;
    policy::can_wallops(u)?;
    let from = u.prefix();
    ctx.hub.broadcast(
        &Event::Wallops {
            from: &from,
            text: &m.params[0],
            time: ctx.now,
        },
        |u| u.modes.wallops,
    );
    Ok(Flow::Continue)
}

pub fn away(ctx: &mut Ctx<'_, '_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let max = ctx.cfg.limits.away_length;
    let text = m
        .param(0)
        .filter(|t| !t.is_empty())
        .map(|t| crate::hub::truncate_bytes(t, max).to_string());
    ctx.hub.set_away(ctx.st.id(), text.as_deref(), ctx.now);
    match &text {
        Some(_) => ctx.r.num(RPL_NOWAWAY, &[]),
        None => ctx.r.num(RPL_UNAWAY, &[]),
    }
    Ok(Flow::Continue)
}

pub fn setname(ctx: &mut Ctx<'_, '_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    let name = &*m.params[0];
    if name.is_empty() || name.len() > REALNAME_LEN {
        ctx.r.standard(
            "FAIL",
            "SETNAME",
            "INVALID_REALNAME",
            &[],
            "Realname is not valid",
        );
        return Ok(Flow::Continue);
    }
    ctx.hub.set_realname(id, name, ctx.now);
    if let Some(u) = ctx.hub.user(id) {
        ctx.r.event(&Event::Setname {
            who: u,
            realname: name,
            time: ctx.now,
        });
    }
    Ok(Flow::Continue)
}

/// Longest real name accepted by SETNAME.
pub const REALNAME_LEN: usize = 200;

pub fn monitor(ctx: &mut Ctx<'_, '_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    let sub = m.params[0].to_ascii_uppercase();
    let limit = ctx.cfg.limits.monitor;
    match sub.as_str() {
        "+" => {
            let Some(targets) = m.param(1) else {
                return Err(CommandError::NeedMoreParams);
            };
            let mut online = Vec::new();
            let mut offline = Vec::new();
            let all: Vec<&str> = list(targets).collect();
            for (i, nick) in all.iter().enumerate() {
                if ctx.hub.validate_nick(nick).is_err() {
                    continue;
                }
                if !ctx.hub.monitor_add(id, &casefold(nick)) {
                    ctx.r.num_text(
                        ERR_MONLISTFULL,
                        &[&limit.to_string(), &all[i..].join(",")],
                        "Monitor list is full.",
                    );
                    break;
                }
                match ctx.hub.find_nick(nick).filter(|u| u.registered) {
                    Some(u) => online.push(u.prefix()),
                    None => offline.push(nick.to_string()),
                }
            }
            monitor_status(ctx, &online, &offline);
        }
        "-" => {
            let Some(targets) = m.param(1) else {
                return Err(CommandError::NeedMoreParams);
            };
            for nick in list(targets) {
                ctx.hub.monitor_remove(id, Some(&casefold(nick)));
            }
        }
        "C" => ctx.hub.monitor_remove(id, None),
        "L" => {
            let nicks = monitored_display(ctx);
            for chunk in nicks.chunks(20) {
                ctx.r.num(RPL_MONLIST, &[&chunk.join(",")]);
            }
            ctx.r.num(RPL_ENDOFMONLIST, &[]);
        }
        "S" => {
            let nicks = monitored_display(ctx);
            let mut online = Vec::new();
            let mut offline = Vec::new();
            for n in nicks {
                match ctx.hub.find_nick(&n).filter(|u| u.registered) {
                    Some(u) => online.push(u.prefix()),
                    None => offline.push(n),
                }
            }
            monitor_status(ctx, &online, &offline);
        }
        _ => {
            return Err(CommandError::Numeric(
                ERR_UNKNOWNCOMMAND,
                vec!["MONITOR".into()],
            ));
        }
    }
    Ok(Flow::Continue)
}

/// The nicks on `id`'s MONITOR list, as stored (folded).
fn monitored_display(ctx: &Ctx<'_, '_>) -> Vec<String> {
    ctx.hub
        .user(ctx.st.id())
        .map(|u| u.monitoring().to_vec())
        .unwrap_or_default()
}

fn monitor_status(ctx: &mut Ctx<'_, '_>, online: &[String], offline: &[String]) {
    for chunk in online.chunks(10) {
        ctx.r.num(RPL_MONONLINE, &[&chunk.join(",")]);
    }
    for chunk in offline.chunks(20) {
        ctx.r.num(RPL_MONOFFLINE, &[&chunk.join(",")]);
    }
}
