//! IRCv3 drafts with a command of their own: MARKREAD (`draft/read-marker`)
//! and REDACT (`draft/message-redaction`).

use super::{CommandError, Ctx, Flow};
use crate::irc::render::{format_time, parse_time};
use crate::state::markers::MarkRead;
use crate::state::redact::Redact;
use crate::state::truncate_bytes;
use bavard_proto::message::Message;

/// `timestamp=<server-time>`, or `*` for none: a marker as MARKREAD shows it.
fn marker_text(at: Option<u64>) -> String {
    match at {
        None => "*".into(),
        Some(ms) => {
            let mut t = b"timestamp=".to_vec();
            format_time(ms, &mut t);
            String::from_utf8_lossy(&t).into_owned()
        }
    }
}

/// `MARKREAD <target> [timestamp=<time>]`: sets (only ever forward) or gets
/// when the user last read a conversation; answered with the stored value.
pub fn markread(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let Some(target) = m.param(0).filter(|t| !t.is_empty()) else {
        ctx.r.standard(
            "FAIL",
            "MARKREAD",
            "NEED_MORE_PARAMS",
            &[],
            "Missing parameters",
        );
        return Ok(Flow::Continue);
    };
    // A conversation is named like a channel or a nick; it need not exist.
    let named = if target.starts_with('#') {
        ctx.net.validate_channel(target).is_ok()
    } else {
        ctx.net.validate_nick(target).is_ok()
    };
    if !named {
        let shown = super::query::middle(target).to_string();
        invalid(ctx, &shown, "Invalid target");
        return Ok(Flow::Continue);
    }
    let id = ctx.st.id();
    let stored = match m.param(1) {
        None => ctx.net.read_marker(id, target),
        Some(ts) => {
            let Some(at) = ts.strip_prefix("timestamp=").and_then(parse_time) else {
                let shown = super::query::middle(ts).to_string();
                invalid(ctx, &shown, "Invalid timestamp");
                return Ok(Flow::Continue);
            };
            let target = target.to_string();
            Some(ctx.apply(MarkRead { id, target, at })?)
        }
    };
    send_marker(ctx, target, stored);
    Ok(Flow::Continue)
}

fn invalid(ctx: &mut Ctx<'_>, what: &str, text: &str) {
    ctx.r
        .standard("FAIL", "MARKREAD", "INVALID_PARAMS", &[what], text);
}

/// `:server MARKREAD <target> <timestamp=...|*>`.
pub fn send_marker(ctx: &mut Ctx<'_>, target: &str, at: Option<u64>) {
    let text = marker_text(at);
    ctx.r.server_line(&format!("MARKREAD {target} {text}"));
}

/// `REDACT <target> <msgid> [:reason]`.
pub fn redact(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let max = ctx.cfg.limits.kick_length;
    let reason = m
        .param(2)
        .filter(|r| !r.is_empty())
        .map(|r| truncate_bytes(r, max).to_string());
    let event = ctx.apply(Redact {
        by: ctx.st.id(),
        target: super::query::middle(&m.params[0]).to_string(),
        msgid: super::query::middle(&m.params[1]).to_string(),
        reason,
    })?;
    ctx.r.event(&event);
    Ok(Flow::Continue)
}
