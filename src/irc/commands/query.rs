//! Queries: WHO, WHOIS, WHOWAS, ISON, USERHOST, MOTD, LUSERS, VERSION, TIME,
//! ADMIN, INFO, HELP.

use super::{CommandError, Ctx, Flow};
use crate::irc::message::Message;
use crate::irc::numeric::*;

/// RPL_LUSER* replies (also part of the welcome burst).
pub fn send_lusers(ctx: &mut Ctx<'_>) {
    let users = ctx.hub.users().filter(|u| u.registered).count();
    let invisible = ctx
        .hub
        .users()
        .filter(|u| u.registered && u.modes.invisible)
        .count();
    let unknown = ctx.hub.user_count() - users;
    let opers = ctx.hub.users().filter(|u| u.modes.oper).count();
    let channels = ctx.hub.channels().count();
    let max = ctx.hub.max_users.max(users);
    ctx.r.num(
        RPL_LUSERCLIENT,
        &[&format!(
            "There are {} users and {invisible} invisible on 1 servers",
            users - invisible
        )],
    );
    if opers > 0 {
        ctx.r.num(RPL_LUSEROP, &[&opers.to_string()]);
    }
    if unknown > 0 {
        ctx.r.num(RPL_LUSERUNKNOWN, &[&unknown.to_string()]);
    }
    if channels > 0 {
        ctx.r.num(RPL_LUSERCHANNELS, &[&channels.to_string()]);
    }
    ctx.r.num(
        RPL_LUSERME,
        &[&format!("I have {users} clients and 0 servers")],
    );
    ctx.r.num(
        RPL_LOCALUSERS,
        &[
            &users.to_string(),
            &max.to_string(),
            &format!("Current local users {users}, max {max}"),
        ],
    );
    ctx.r.num(
        RPL_GLOBALUSERS,
        &[
            &users.to_string(),
            &max.to_string(),
            &format!("Current global users {users}, max {max}"),
        ],
    );
}

/// The message of the day, or ERR_NOMOTD when none is configured.
pub fn send_motd(ctx: &mut Ctx<'_>) {
    let cfg = ctx.st.cfg.clone();
    if cfg.motd.is_empty() {
        ctx.r.num(ERR_NOMOTD, &[]);
        return;
    }
    ctx.r.num(
        RPL_MOTDSTART,
        &[&format!("- {} Message of the day - ", cfg.server_name)],
    );
    for line in &cfg.motd {
        ctx.r.num(RPL_MOTD, &[&format!("- {line}")]);
    }
    ctx.r.num(RPL_ENDOFMOTD, &[]);
}

pub fn motd(ctx: &mut Ctx<'_>, _m: &Message) -> Result<Flow, CommandError> {
    send_motd(ctx);
    Ok(Flow::Continue)
}

pub fn lusers(ctx: &mut Ctx<'_>, _m: &Message) -> Result<Flow, CommandError> {
    send_lusers(ctx);
    Ok(Flow::Continue)
}

fn todo(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    ctx.r.num(ERR_UNKNOWNCOMMAND, &[&m.command]);
    Ok(Flow::Continue)
}

pub fn who(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    todo(ctx, m)
}
pub fn whois(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    todo(ctx, m)
}
pub fn whowas(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    todo(ctx, m)
}
pub fn ison(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    todo(ctx, m)
}
pub fn userhost(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    todo(ctx, m)
}
pub fn version(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    todo(ctx, m)
}
pub fn time(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    todo(ctx, m)
}
pub fn admin(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    todo(ctx, m)
}
pub fn info(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    todo(ctx, m)
}
pub fn help(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    todo(ctx, m)
}
