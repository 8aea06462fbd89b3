//! How `line` users see what happens on the hub.

use std::io::Write;

use crate::dialect::{Dialect, DialectRef};
use crate::notify::{Event, MsgKind};

/// The line dialect's encoder.
pub struct LineDialect;

/// What every `line` connection's delivery handle points to.
pub static LINE: DialectRef = &LineDialect;

impl Dialect for LineDialect {
    fn id(&self) -> u8 {
        0
    }

    fn variant(&self, ev: &Event, _caps: u32) -> Option<u32> {
        match ev {
            Event::Message {
                kind: MsgKind::Tagmsg,
                ..
            }
            | Event::Invite { notify: true, .. }
            | Event::Away { .. }
            | Event::Setname { .. }
            | Event::Account { .. }
            | Event::Monitor { .. }
            | Event::Watched(_)
            | Event::Metadata { .. }
            | Event::ReadMarker { .. }
            | Event::Rename { to: Some(_), .. } => None,
            _ => Some(0),
        }
    }

    fn encode(&self, ev: &Event, _variant: u32, out: &mut Vec<u8>) {
        // Writes into a Vec cannot fail.
        let _ = write_event(ev, out);
    }
}

fn write_event(ev: &Event, out: &mut Vec<u8>) -> std::io::Result<()> {
    match ev {
        Event::Message {
            from,
            to_channel: true,
            target,
            text,
            ..
        } => {
            // A status message (IRC `PRIVMSG @#chan`) says who it is for.
            let status = target.starts_with(['@', '+']).then_some(target);
            // A multi-line IRC message becomes one `[nick] ` line per line.
            for line in text.split('\n') {
                out.push(b'[');
                out.extend_from_slice(from.nick().as_bytes());
                if let Some(t) = status {
                    out.extend_from_slice(b" to ");
                    out.extend_from_slice(t.as_bytes());
                }
                out.extend_from_slice(b"] ");
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
        Event::Message { from, text, .. } => {
            for line in text.split('\n') {
                writeln!(out, "*{}* {}", from.nick(), line)?;
            }
        }
        Event::Join {
            who,
            on_connect: true,
            ..
        } => writeln!(out, "[server] {} is connected", who.nick())?,
        Event::Join { who, channel, .. } => {
            writeln!(out, "[server] {} joined {}", who.nick(), channel)?
        }
        Event::Part {
            who,
            channel,
            reason,
            ..
        } => {
            write!(out, "[server] {} left {}", who.nick(), channel)?;
            if !reason.is_empty() {
                write!(out, " ({reason})")?;
            }
            out.push(b'\n');
        }
        Event::Quit { who, .. } => writeln!(out, "[server] {} is disconnected", who.nick())?,
        Event::Nick { who, new, .. } => {
            writeln!(out, "[server] {} is now known as {new}", who.nick())?
        }
        Event::Kick {
            by,
            channel,
            target,
            reason,
            ..
        } => writeln!(
            out,
            "[server] {target} was kicked from {channel} by {} ({reason})",
            by.nick()
        )?,
        Event::Topic {
            by, channel, text, ..
        } if text.is_empty() => {
            writeln!(out, "[server] {} cleared the topic of {channel}", by.nick())?
        }
        Event::Topic {
            by, channel, text, ..
        } => writeln!(
            out,
            "[server] {} changed the topic of {channel} to: {text}",
            by.nick()
        )?,
        Event::Mode {
            by,
            channel,
            changes,
            ..
        } => writeln!(
            out,
            "[server] {} sets mode {changes} on {channel}",
            by.nick()
        )?,
        Event::Invite {
            by,
            target,
            channel,
            ..
        } => writeln!(out, "[server] {} invites {target} to {channel}", by.nick())?,
        Event::Wallops { from, text, .. } => writeln!(out, "[wallops] {}: {text}", from.nick())?,
        Event::Kill { by, reason, .. } => writeln!(out, "[{}] {reason}", by.nick())?,
        Event::Shutdown { text } => writeln!(out, "[server] {text}")?,
        Event::Redact {
            by,
            target,
            to_channel,
            reason,
            author,
            ..
        } => {
            if *to_channel {
                write!(
                    out,
                    "[server] {} deleted a message by {author} in {target}",
                    by.nick()
                )?;
            } else {
                write!(
                    out,
                    "[server] {} deleted a private message to you",
                    by.nick()
                )?;
            }
            if let Some(r) = reason {
                write!(out, " ({r})")?;
            }
            out.push(b'\n');
        }
        Event::Rename {
            by,
            old,
            new,
            reason,
            ..
        } => {
            write!(out, "[server] {} renamed {old} to {new}", by.nick())?;
            if !reason.is_empty() {
                write!(out, " ({reason})")?;
            }
            out.push(b'\n');
        }
        Event::Away { .. }
        | Event::Setname { .. }
        | Event::Account { .. }
        | Event::Monitor { .. }
        | Event::Watched(_)
        | Event::Metadata { .. }
        | Event::ReadMarker { .. } => {}
    }
    Ok(())
}
