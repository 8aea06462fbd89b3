//! Channel and user modes, KICK, INVITE, LIST.

use super::{CommandError, Ctx, Flow};
use crate::irc::message::Message;
use crate::irc::numeric::*;

pub fn mode(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    ctx.r.num(ERR_UNKNOWNCOMMAND, &[&m.command]);
    Ok(Flow::Continue)
}

pub fn kick(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    ctx.r.num(ERR_UNKNOWNCOMMAND, &[&m.command]);
    Ok(Flow::Continue)
}

pub fn invite(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    ctx.r.num(ERR_UNKNOWNCOMMAND, &[&m.command]);
    Ok(Flow::Continue)
}

pub fn list(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    ctx.r.num(ERR_UNKNOWNCOMMAND, &[&m.command]);
    Ok(Flow::Continue)
}
