//! Operator and user-state commands: OPER, KILL, WALLOPS, AWAY, SETNAME, MONITOR.

use super::{CommandError, Cont, Ctx, Flow, list};
use crate::effect::{Effect, Outcome};
use crate::names::casefold;
use crate::notify::Event;
use crate::oper::OperCheck;
use crate::state::changes::{
    Kill, Monitor, SetAway, SetRealname, SetUserModes, Unmonitor, Wallops,
};
use crate::state::{UserModes, truncate_bytes};
use bavard_proto::message::Message;
use bavard_proto::numeric::*;

pub fn oper(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    if let Err(secs) = ctx.st.oper.admit(ctx.instant) {
        ctx.r.num_text(
            ERR_PASSWDMISMATCH,
            &[],
            &format!("Too many failed attempts: try again in {secs} s"),
        );
        return Ok(Flow::Continue);
    }
    let (name, password) = (m.params[0].to_string(), m.params[1].to_string());
    let effect = Effect::CheckOper {
        name: name.clone(),
        password,
    };
    Ok(Flow::Wait(effect, Cont::Oper { name }))
}

/// OPER, once the server checked the operator's password.
pub fn oper_checked(ctx: &mut Ctx<'_>, name: &str, outcome: Outcome) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    let granted = outcome == Outcome::Verified(true);
    if ctx.st.oper.record(granted, ctx.instant) == OperCheck::Granted {
        let nick = ctx.nick();
        if let Some(u) = ctx.net.user(id) {
            let modes = UserModes {
                oper: true,
                ..u.modes
            };
            ctx.apply(SetUserModes { id, modes })?;
        }
        tracing::info!(conn = %id, %nick, oper = %name, "operator login");
        ctx.r.num(RPL_YOUREOPER, &[]);
        ctx.r.raw(&format!(":{nick} MODE {nick} :+o"));
    } else {
        tracing::warn!(conn = %id, oper = %name, "failed operator login");
        ctx.r.num(ERR_PASSWDMISMATCH, &[]);
    }
    Ok(Flow::Continue)
}

/// REHASH: asks the server to read its configuration file again.
pub fn rehash(ctx: &mut Ctx<'_>, _m: &Message<'_>) -> Result<Flow, CommandError> {
    if !ctx.net.user(ctx.st.id()).is_some_and(|u| u.modes.oper) {
        return Err(CommandError::Numeric(ERR_NOPRIVILEGES, vec![]));
    }
    Ok(Flow::Wait(Effect::Rehash, Cont::Rehash))
}

/// REHASH, once the server read the file: `382`, or `FAIL REHASH` with
/// why the running configuration stays.
pub fn rehashed(ctx: &mut Ctx<'_>, outcome: Outcome) -> Result<Flow, CommandError> {
    tracing::info!(conn = %ctx.st.id(), nick = %ctx.nick(), ?outcome, "rehash");
    match outcome {
        Outcome::Failed(why) => ctx.r.standard(
            "FAIL",
            "REHASH",
            "CONFIG_INVALID",
            &[],
            &format!("Configuration not reloaded, keeping the running one: {why}"),
        ),
        _ => ctx.r.num(RPL_REHASHING, &["config"]),
    }
    Ok(Flow::Continue)
}

pub fn kill(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let reason = m
        .param(1)
        .filter(|r| !r.is_empty())
        .unwrap_or("No reason given");
    let target = &*m.params[0];
    if casefold(target) == casefold(ctx.r.server()) {
        return Err(CommandError::Numeric(ERR_CANTKILLSERVER, vec![]));
    }
    let id = ctx.st.id();
    ctx.apply(Kill {
        by: id,
        target: target.to_string(),
        reason: reason.to_string(),
    })?;
    tracing::info!(conn = %id, killer = %ctx.nick(), victim = target, "kill");
    if ctx.net.user(id).is_none() {
        // Killed itself.
        return Ok(Flow::Close);
    }
    Ok(Flow::Continue)
}

pub fn wallops(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    ctx.apply(Wallops {
        by: ctx.st.id(),
        text: m.params[0].to_string(),
    })?;
    Ok(Flow::Continue)
}

pub fn away(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let max = ctx.cfg.limits.away_length;
    let text = m
        .param(0)
        .filter(|t| !t.is_empty())
        .map(|t| truncate_bytes(t, max).to_string());
    let away = text.is_some();
    ctx.apply(SetAway {
        id: ctx.st.id(),
        text,
    })?;
    match away {
        true => ctx.r.num(RPL_NOWAWAY, &[]),
        false => ctx.r.num(RPL_UNAWAY, &[]),
    }
    Ok(Flow::Continue)
}

pub fn setname(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
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
    ctx.apply(SetRealname {
        id,
        realname: name.to_string(),
    })?;
    if let Some(u) = ctx.net.user(id) {
        ctx.r.event(&Event::Setname {
            who: u.source(),
            realname: name.to_string(),
            time: ctx.now,
        });
    }
    Ok(Flow::Continue)
}

/// Longest real name accepted by SETNAME.
pub const REALNAME_LEN: usize = 200;

pub fn monitor(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
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
                if ctx.net.validate_nick(nick).is_err() {
                    continue;
                }
                let added = ctx.apply(Monitor {
                    id,
                    nick_key: casefold(nick),
                })?;
                if !added {
                    ctx.r.num_text(
                        ERR_MONLISTFULL,
                        &[&limit.to_string(), &all[i..].join(",")],
                        "Monitor list is full.",
                    );
                    break;
                }
                match ctx.net.find_nick(nick).filter(|u| u.registered) {
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
                ctx.apply(Unmonitor {
                    id,
                    nick_key: Some(casefold(nick)),
                })?;
            }
        }
        "C" => ctx.apply(Unmonitor { id, nick_key: None })?,
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
                match ctx.net.find_nick(&n).filter(|u| u.registered) {
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
fn monitored_display(ctx: &Ctx<'_>) -> Vec<String> {
    ctx.net
        .user(ctx.st.id())
        .map(|u| u.monitoring().to_vec())
        .unwrap_or_default()
}

fn monitor_status(ctx: &mut Ctx<'_>, online: &[String], offline: &[String]) {
    for chunk in online.chunks(10) {
        ctx.r.num(RPL_MONONLINE, &[&chunk.join(",")]);
    }
    for chunk in offline.chunks(20) {
        ctx.r.num(RPL_MONOFFLINE, &[&chunk.join(",")]);
    }
}
