//! Messages: PRIVMSG, NOTICE, TAGMSG, and client `draft/multiline` batches.

use super::{CommandError, Ctx, Flow, report};
use crate::irc::state::{InBatch, MULTILINE_MAX_BYTES, MULTILINE_MAX_LINES, cap};
use crate::notify::{Event, MsgKind, MultilinePart, join_parts};
use crate::state::changes;
use bavard_proto::message::{Message, put_escaped_tag_value};
use bavard_proto::numeric::*;

/// The client-only (`+`) tags of `m`, re-serialised for relaying.
fn client_tags(m: &Message<'_>, caps: u32) -> String {
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

fn verb(kind: MsgKind) -> &'static str {
    match kind {
        MsgKind::Privmsg => "PRIVMSG",
        MsgKind::Notice => "NOTICE",
        MsgKind::Tagmsg => "TAGMSG",
    }
}

fn send(ctx: &mut Ctx<'_>, m: &Message<'_>, kind: MsgKind) -> Result<Flow, CommandError> {
    let notice = kind == MsgKind::Notice;
    let verb = verb(kind);
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
    // One target is the common case: no list to build.
    let many: Vec<&str>;
    let targets: &[&str] = if targets.contains(',') {
        many = targets.split(',').filter(|t| !t.is_empty()).collect();
        &many
    } else {
        std::slice::from_ref(&targets)
    };
    if targets.len() > ctx.cfg.limits.max_targets {
        if !notice {
            ctx.r
                .num(ERR_TOOMANYTARGETS, &[targets[ctx.cfg.limits.max_targets]]);
        }
        return Ok(Flow::Continue);
    }
    if kind == MsgKind::Privmsg && too_long_to_relay(ctx, targets, text) {
        // Relayed with our `nick!user@host` source the line would pass 512
        // bytes: refuse it whole (ERR_INPUTTOOLONG) rather than cut it or
        // deliver it in two pieces the client did not write. NOTICE gets no
        // error reply (RFC 2812), so a long NOTICE is split on delivery.
        ctx.r.num(ERR_INPUTTOOLONG, &[]);
        return Ok(Flow::Continue);
    }
    // NickServ answers PRIVMSG, and takes anything else silently.
    if let [one] = targets
        && super::nickserv::is_nickserv(one)
    {
        return match kind {
            MsgKind::Privmsg => super::nickserv::message(ctx, text),
            _ => Ok(Flow::Continue),
        };
    }
    let tags = client_tags(m, ctx.r.caps());
    deliver(ctx, targets, text, &[], kind, &tags)
}

/// Whether `:<our prefix> PRIVMSG <target> :<text>` exceeds 512 bytes for
/// some target (the relayed target has the length of the given one).
fn too_long_to_relay(ctx: &Ctx<'_>, targets: &[&str], text: &str) -> bool {
    let prefix_len = ctx.net.user(ctx.st.id()).map_or(0, |u| u.prefix_len());
    targets.iter().any(|t| {
        let line = 1 + prefix_len + " PRIVMSG ".len() + t.len() + " :".len() + text.len() + 2;
        line > crate::irc::render::MAX_LINE
    })
}

/// Sends `text` to each target, echoing to the sender when it asked for it.
fn deliver(
    ctx: &mut Ctx<'_>,
    targets: &[&str],
    text: &str,
    parts: &[MultilinePart],
    kind: MsgKind,
    tags: &str,
) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    let notice = kind == MsgKind::Notice;
    for target in targets {
        let change = changes::Message {
            from: id,
            target: target.to_string(),
            text: text.to_string(),
            parts: parts.to_vec(),
            kind,
            client_tags: tags.to_string(),
        };
        match ctx.apply(change) {
            Ok(sent) => {
                if let Some(away) = &sent.away
                    && kind == MsgKind::Privmsg
                {
                    ctx.r.num(RPL_AWAY, &[&sent.target, away]);
                }
                if ctx.r.caps() & cap::ECHO_MESSAGE != 0
                    && let Some(u) = ctx.net.user(id)
                {
                    ctx.r.event(&Event::Message {
                        from: u.source(),
                        target: sent.target,
                        to_channel: sent.to_channel,
                        text: text.to_string(),
                        kind,
                        client_tags: tags.to_string(),
                        time: ctx.now,
                        msgid: sent.msgid,
                        parts: parts.to_vec(),
                    });
                }
            }
            Err(e) if !notice => report(ctx.r, verb(kind), e.into()),
            Err(_) => {}
        }
    }
    Ok(Flow::Continue)
}

pub fn privmsg(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    send(ctx, m, MsgKind::Privmsg)
}

pub fn notice(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    send(ctx, m, MsgKind::Notice)
}

pub fn tagmsg(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    if ctx.r.caps() & cap::MESSAGE_TAGS == 0 {
        // Without message-tags a TAGMSG carries nothing: ignore it quietly.
        return Ok(Flow::Continue);
    }
    send(ctx, m, MsgKind::Tagmsg)
}

/// Replies `FAIL BATCH <code> [context] :<text>` and abandons the batch being
/// received, if any: the rest of it is dropped quietly. The FAIL carries the
/// label of the batch's opening line, the command it answers.
fn fail_batch(ctx: &mut Ctx<'_>, code: &str, context: &[&str], text: &str) {
    if let Some(b) = ctx.st.batch.as_mut().filter(|b| !b.dead) {
        ctx.r.set_label(b.label.take());
        // Only the reference is still needed.
        b.dead = true;
        b.target = String::new();
        b.client_tags = String::new();
        b.parts = Vec::new();
    }
    ctx.r.standard("FAIL", "BATCH", code, context, text);
}

/// `BATCH +id draft/multiline <target>` / `BATCH -id`.
pub fn batch(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let reference = &*m.params[0];
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
        let Some(target) = m.param(2).filter(|t| !t.is_empty()) else {
            return Err(CommandError::NeedMoreParams);
        };
        if id.is_empty() {
            ctx.r.standard(
                "FAIL",
                "BATCH",
                "INVALID_REFERENCE",
                &[],
                "Empty batch reference",
            );
            return Ok(Flow::Continue);
        }
        if ctx.st.open_batch().is_some() {
            fail_batch(
                ctx,
                "MULTILINE_INVALID",
                &[],
                "Nested batches are not supported",
            );
            return Ok(Flow::Continue);
        }
        // No ACK now: the label answers the whole batch when it ends.
        let label = ctx.r.take_label();
        ctx.st.batch = Some(Box::new(InBatch {
            id: id.to_string(),
            target: target.to_string(),
            label,
            client_tags: client_tags(m, ctx.r.caps()),
            parts: Vec::new(),
            notice: false,
            bytes: 0,
            dead: false,
        }));
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
    if ctx.st.is_dead_batch(id) {
        // Already answered with a FAIL.
        ctx.st.batch = None;
        return Ok(Flow::Continue);
    }
    if ctx.st.open_batch().is_none_or(|b| b.id != id) {
        fail_batch(ctx, "MULTILINE_INVALID", &[], "No such batch is open");
        return Ok(Flow::Continue);
    }
    let Some(b) = ctx.st.batch.take() else {
        return Ok(Flow::Continue);
    };
    ctx.r.set_label(b.label);
    if b.parts.iter().all(|p| p.text.is_empty()) {
        ctx.r.standard(
            "FAIL",
            "BATCH",
            "MULTILINE_INVALID",
            &[],
            "Empty multiline batch",
        );
        return Ok(Flow::Continue);
    }
    let text = join_parts(&b.parts);
    let kind = if b.notice {
        MsgKind::Notice
    } else {
        MsgKind::Privmsg
    };
    deliver(
        ctx,
        &[b.target.as_str()],
        &text,
        &b.parts,
        kind,
        &b.client_tags,
    )
}

fn add_to_batch(
    ctx: &mut Ctx<'_>,
    m: &Message<'_>,
    id: &str,
    notice: bool,
) -> Result<Flow, CommandError> {
    if ctx.st.is_dead_batch(id) {
        return Ok(Flow::Continue);
    }
    if ctx.st.open_batch().is_none_or(|b| b.id != id) {
        fail_batch(ctx, "MULTILINE_INVALID", &[], "Unknown batch reference");
        return Ok(Flow::Continue);
    }
    let same_target = ctx.st.open_batch().is_some_and(|b| {
        m.param(0).map(crate::names::casefold) == Some(crate::names::casefold(&b.target))
    });
    if !same_target {
        fail_batch(
            ctx,
            "MULTILINE_INVALID_TARGET",
            &[],
            "Message target differs from the batch target",
        );
        return Ok(Flow::Continue);
    }
    let text = m.param(1).unwrap_or("").to_string();
    let concat = m.tags.iter().any(|t| t.key == "draft/multiline-concat");
    if concat && text.is_empty() {
        fail_batch(
            ctx,
            "MULTILINE_INVALID",
            &[],
            "A concatenated line cannot be blank",
        );
        return Ok(Flow::Continue);
    }
    let Some(b) = ctx.st.batch.as_mut() else {
        return Ok(Flow::Continue);
    };
    b.bytes += text.len();
    b.notice |= notice;
    b.parts.push(MultilinePart { text, concat });
    if b.bytes > MULTILINE_MAX_BYTES {
        fail_batch(
            ctx,
            "MULTILINE_MAX_BYTES",
            &[&MULTILINE_MAX_BYTES.to_string()],
            "Multiline batch too long",
        );
    } else if b.parts.len() > MULTILINE_MAX_LINES {
        fail_batch(
            ctx,
            "MULTILINE_MAX_LINES",
            &[&MULTILINE_MAX_LINES.to_string()],
            "Too many lines in multiline batch",
        );
    }
    Ok(Flow::Continue)
}
