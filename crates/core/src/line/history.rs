//! The past of the line user's channel: `HISTORY [count]`, and the last
//! messages played on joining a channel (`history.playback_on_join`, off
//! in a channel with mode `+W`). Both read the history store through an
//! effect, chat messages only, and show each message as the channel showed
//! it, after its time (UTC), between two `[server]` lines.

use super::Lx;
use super::commands::{Cont, Flow};
use crate::dialect::Dialect;
use crate::effect::{Effect, Outcome};
use crate::irc::render::format_time;
use crate::store::{Kinds, Range, Stored, history_key};

/// Messages `HISTORY` shows when no count is given (at most
/// `history.line_history_max`).
pub const DEFAULT_COUNT: usize = 20;

/// What a history read was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// `HISTORY`: an empty history is said.
    Command,
    /// A join: nothing is said of an empty history, or of a failed read.
    Join,
}

/// `HISTORY [count]`: the last `count` messages of the user's channel.
pub fn command(lx: &mut Lx<'_, '_>, current: Option<&str>, count: Option<&str>) -> Flow {
    let max = lx.cfg.limits.line_history.max(1);
    let Some(count) = count.map_or(Some(DEFAULT_COUNT.min(max)), |c| parse_count(c, max)) else {
        lx.notice(&format!(
            "Usage: HISTORY [count], count a whole number from 1 to {max}"
        ));
        return Flow::Continue;
    };
    if lx.cfg.limits.history == 0 {
        lx.notice("History is not kept on this server");
        return Flow::Continue;
    }
    let Some(ch) = current.and_then(|c| lx.cx.net.channel(c)) else {
        lx.notice("You are in no channel: JOIN one first");
        return Flow::Continue;
    };
    let channel = ch.name.to_string();
    read(&ch.key, channel, count, Asked::Command)
}

/// A count as typed: digits only (`+3` or `٣` are not counts a person
/// types), at least 1; more than `max` is `max`, as CHATHISTORY does.
fn parse_count(c: &str, max: usize) -> Option<usize> {
    if c.is_empty() || !c.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits and too long for a number: more than the most.
    let n = c.parse::<usize>().unwrap_or(usize::MAX);
    (n > 0).then(|| n.min(max))
}

/// The read played to a line user who just joined `channel`, if any.
pub fn on_join(lx: &Lx<'_, '_>, channel: &str) -> Option<Flow> {
    let l = &lx.cfg.limits;
    let n = l.playback_on_join.min(l.history);
    let ch = lx.cx.net.channel(channel).filter(|_| n > 0)?;
    if ch.modes.no_playback {
        return None;
    }
    Some(read(&ch.key, ch.name.to_string(), n, Asked::Join))
}

fn read(key: &str, channel: String, count: usize, asked: Asked) -> Flow {
    let effect = Effect::ReadHistory {
        target: history_key(key),
        range: Range::Latest {
            after: None,
            limit: count,
        },
        kinds: Kinds::Messages,
    };
    Flow::Wait(effect, Cont::History { channel, asked })
}

/// The store answered: the messages, oldest first, each line after its
/// time.
pub fn played(lx: &mut Lx<'_, '_>, channel: &str, asked: Asked, outcome: Outcome) -> Flow {
    let events = match outcome {
        Outcome::History(events) => events,
        Outcome::Failed(why) if asked == Asked::Command => {
            lx.notice(&format!("History unavailable: {why}"));
            return Flow::Continue;
        }
        _ => Vec::new(),
    };
    if events.is_empty() {
        if asked == Asked::Command {
            lx.notice(&format!("No messages in the history of {channel}"));
        }
        return Flow::Continue;
    }
    let n = events.len();
    let s = if n == 1 { "" } else { "s" };
    lx.notice(&format!("Last {n} message{s} of {channel} (times in UTC):"));
    let mut out = Vec::new();
    for e in &events {
        write_past(e, &mut out);
    }
    lx.cx.out.reply(out);
    lx.notice(&format!("End of the history of {channel}"));
    Flow::Continue
}

/// `e` as the line dialect shows it, each line after `[YYYY-MM-DD
/// HH:MM:SS] `.
fn write_past(e: &Stored, out: &mut Vec<u8>) {
    let mut shown = Vec::new();
    super::LineDialect.encode(&e.event, 0, &mut shown);
    let mut time = Vec::new();
    format_time(e.time, &mut time);
    // 2026-12-03T19:40:12.345Z: the date, a space, the time to the second.
    let (date, clock) = (&time[..10], &time[11..19]);
    for line in shown.split_inclusive(|&b| b == b'\n') {
        out.push(b'[');
        out.extend_from_slice(date);
        out.push(b' ');
        out.extend_from_slice(clock);
        out.extend_from_slice(b"] ");
        out.extend_from_slice(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MsgId;
    use crate::notify::{Event, MsgKind, Source};

    #[test]
    fn a_past_message_shows_its_time_on_each_line() {
        let e = Stored {
            target: "channel:#lobby".into(),
            msgid: MsgId::new(0, 1),
            time: 1_709_210_096_789,
            event: Event::Message {
                from: Source::new("alice", "~a", "host", false),
                target: "#lobby".into(),
                to_channel: true,
                text: "one\ntwo".into(),
                kind: MsgKind::Privmsg,
                client_tags: String::new(),
                time: 1_709_210_096_789,
                msgid: MsgId::new(0, 1),
                parts: Vec::new(),
            },
        };
        let mut out = Vec::new();
        write_past(&e, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[2024-02-29 12:34:56] [alice] one\n[2024-02-29 12:34:56] [alice] two\n"
        );
    }
}
