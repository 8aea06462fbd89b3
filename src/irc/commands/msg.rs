//! Messages: PRIVMSG, NOTICE, TAGMSG, and client `draft/multiline` batches.

use super::{CommandError, Ctx, Flow, report};
use crate::hub::{Event, MsgKind, cap};
use crate::irc::message::{Message, put_escaped_tag_value};
use crate::irc::numeric::*;
use crate::irc::{InBatch, MULTILINE_MAX_BYTES, MULTILINE_MAX_LINES};

/// The client-only (`+`) tags of `m`, re-serialised for relaying.
fn client_tags(m: &Message, caps: u32) -> String {
    if caps & cap::MESSAGE_TAGS == 0 {
        return String::new();
    }
    let mut out = Vec::new();
    for t in m.tags.iter().filter(|t| t.key.starts_with('+')) {
        if !out.is_empty() {
            out.push(b';');
        }
        out.extend_from_slice(t.key.as_bytes());
        if !t.value.is_empty() {
            out.push(b'=');
            put_escaped_tag_value(&mut out, &t.value);
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

fn send(ctx: &mut Ctx<'_>, m: &Message, kind: MsgKind) -> Result<Flow, CommandError> {
    let notice = kind == MsgKind::Notice;
    let verb = match kind {
        MsgKind::Privmsg => "PRIVMSG",
        MsgKind::Notice => "NOTICE",
        MsgKind::Tagmsg => "TAGMSG",
    };
    if let Some(b) = m.tag("batch")
        && kind != MsgKind::Tagmsg
    {
        return add_to_batch(ctx, m, b, notice);
    }
    let Some(targets) = m.param(0).filter(|t| !t.is_empty()) else {
        if notice {
            return Ok(Flow::Continue);
        }
        return Err(CommandError::Numeric(
            ERR_NORECIPIENT,
            vec![format!("({verb})")],
        ));
    };
    let text = m.param(1).unwrap_or("");
    if kind != MsgKind::Tagmsg && text.is_empty() {
        if notice {
            return Ok(Flow::Continue);
        }
        return Err(CommandError::Numeric(ERR_NOTEXTTOSEND, vec![]));
    }
    let targets: Vec<&str> = targets.split(',').filter(|t| !t.is_empty()).collect();
    if targets.len() > ctx.st.cfg.limits.max_targets {
        if !notice {
            ctx.r.num(
                ERR_TOOMANYTARGETS,
                &[targets[ctx.st.cfg.limits.max_targets]],
            );
        }
        return Ok(Flow::Continue);
    }
    let tags = client_tags(m, ctx.r.caps());
    deliver(ctx, &targets, text, kind, &tags)
}

/// Sends `text` to each target, echoing to the sender when it asked for it.
fn deliver(
    ctx: &mut Ctx<'_>,
    targets: &[&str],
    text: &str,
    kind: MsgKind,
    tags: &str,
) -> Result<Flow, CommandError> {
    let id = ctx.st.id;
    let notice = kind == MsgKind::Notice;
    for target in targets {
        match ctx.hub.message(id, target, text, kind, tags, ctx.now) {
            Ok(sent) => {
                if let Some(away) = &sent.away
                    && kind == MsgKind::Privmsg
                {
                    ctx.r.num(RPL_AWAY, &[&sent.target, away]);
                }
                if ctx.r.caps() & cap::ECHO_MESSAGE != 0
                    && let Some(u) = ctx.hub.user(id)
                {
                    ctx.r.event(&Event::Message {
                        from: u,
                        target: &sent.target,
                        to_channel: sent.target.starts_with('#'),
                        text,
                        kind,
                        client_tags: tags,
                        time: ctx.now,
                        msgid: sent.msgid,
                    });
                }
            }
            Err(e) if !notice => report(ctx.r, "PRIVMSG", e.into()),
            Err(_) => {}
        }
    }
    Ok(Flow::Continue)
}

pub fn privmsg(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    send(ctx, m, MsgKind::Privmsg)
}

pub fn notice(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    send(ctx, m, MsgKind::Notice)
}

pub fn tagmsg(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    if ctx.r.caps() & cap::MESSAGE_TAGS == 0 {
        // Without message-tags a TAGMSG carries nothing: ignore it quietly.
        return Ok(Flow::Continue);
    }
    send(ctx, m, MsgKind::Tagmsg)
}

/// `BATCH +id draft/multiline <target>` / `BATCH -id`.
pub fn batch(ctx: &mut Ctx<'_>, m: &Message) -> Result<Flow, CommandError> {
    let reference = m.params[0].as_str();
    if let Some(id) = reference.strip_prefix('+') {
        if m.param(1) != Some("draft/multiline") || ctx.r.caps() & cap::MULTILINE == 0 {
            ctx.r.standard(
                "FAIL",
                "BATCH",
                "INVALID_TYPE",
                &[],
                "Unsupported batch type",
            );
            return Ok(Flow::Continue);
        }
        let Some(target) = m.param(2) else {
            return Err(CommandError::NeedMoreParams);
        };
        if ctx.st.batch.is_some() {
            ctx.r.standard(
                "FAIL",
                "BATCH",
                "MULTILINE_INVALID",
                &[],
                "Nested batches are not supported",
            );
            return Ok(Flow::Continue);
        }
        ctx.st.batch = Some(InBatch {
            id: id.to_string(),
            target: target.to_string(),
            label: m.tag("label").map(str::to_string),
            lines: Vec::new(),
            bytes: 0,
        });
        return Ok(Flow::Continue);
    }
    let Some(id) = reference.strip_prefix('-') else {
        ctx.r.standard(
            "FAIL",
            "BATCH",
            "INVALID_REFERENCE",
            &[],
            "Batch reference must start with + or -",
        );
        return Ok(Flow::Continue);
    };
    let Some(b) = ctx.st.batch.take() else {
        ctx.r.standard(
            "FAIL",
            "BATCH",
            "MULTILINE_INVALID",
            &[],
            "No batch is open",
        );
        return Ok(Flow::Continue);
    };
    if b.id != id {
        ctx.r.standard(
            "FAIL",
            "BATCH",
            "MULTILINE_INVALID",
            &[],
            "Batch reference does not match",
        );
        return Ok(Flow::Continue);
    }
    if b.lines.is_empty() || b.lines.iter().all(|(t, _, _)| t.is_empty()) {
        ctx.r.standard(
            "FAIL",
            "BATCH",
            "MULTILINE_INVALID",
            &[],
            "Empty multiline batch",
        );
        return Ok(Flow::Continue);
    }
    let notice = b.lines.iter().any(|(_, _, n)| *n);
    let mut text = String::with_capacity(b.bytes);
    for (i, (line, concat, _)) in b.lines.iter().enumerate() {
        if i > 0 && !concat {
            text.push('\n');
        }
        text.push_str(line);
    }
    let kind = if notice {
        MsgKind::Notice
    } else {
        MsgKind::Privmsg
    };
    let target = b.target.clone();
    deliver(ctx, &[target.as_str()], &text, kind, "")
}

fn add_to_batch(
    ctx: &mut Ctx<'_>,
    m: &Message,
    id: &str,
    notice: bool,
) -> Result<Flow, CommandError> {
    let Some(b) = ctx.st.batch.as_mut().filter(|b| b.id == id) else {
        ctx.r.standard(
            "FAIL",
            "BATCH",
            "MULTILINE_INVALID",
            &[],
            "Unknown batch reference",
        );
        return Ok(Flow::Continue);
    };
    if m.param(0).map(crate::names::casefold) != Some(crate::names::casefold(&b.target)) {
        ctx.st.batch = None;
        ctx.r.standard(
            "FAIL",
            "BATCH",
            "MULTILINE_INVALID_TARGET",
            &[],
            "Message target differs from the batch target",
        );
        return Ok(Flow::Continue);
    }
    let text = m.param(1).unwrap_or("").to_string();
    let concat = m.tag("draft/multiline-concat").is_some()
        || m.tags.iter().any(|t| t.key == "draft/multiline-concat");
    if concat && text.is_empty() {
        ctx.st.batch = None;
        ctx.r.standard(
            "FAIL",
            "BATCH",
            "MULTILINE_INVALID",
            &[],
            "Concatenated line is empty",
        );
        return Ok(Flow::Continue);
    }
    b.bytes += text.len();
    b.lines.push((text, concat, notice));
    if b.bytes > MULTILINE_MAX_BYTES {
        ctx.st.batch = None;
        ctx.r.standard(
            "FAIL",
            "BATCH",
            "MULTILINE_MAX_BYTES",
            &[&MULTILINE_MAX_BYTES.to_string()],
            "Multiline batch too long",
        );
    } else if b.lines.len() > MULTILINE_MAX_LINES {
        ctx.st.batch = None;
        ctx.r.standard(
            "FAIL",
            "BATCH",
            "MULTILINE_MAX_LINES",
            &[&MULTILINE_MAX_LINES.to_string()],
            "Too many lines in multiline batch",
        );
    }
    Ok(Flow::Continue)
}
