//! What an IRC client without `draft/channel-rename` is shown of a renamed
//! channel (the specification's fallback): itself leaving the old name and
//! joining the new one, then the topic and names a JOIN would bring.

use std::io::Write;

use super::cap;
use super::commands::member_prefix;
use super::render::time_tag;
use crate::notify::{Millis, RenameFallback};
use bavard_proto::numeric::{RPL_ENDOFNAMES, RPL_NAMREPLY, RPL_TOPIC, RPL_TOPICWHOTIME};

pub(super) fn fallback(
    old: &str,
    new: &str,
    reason: &str,
    time: Millis,
    f: &RenameFallback,
    v: u32,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    let (me, nick, server) = (f.member.prefix(), f.member.nick(), &f.server);
    time_tag(out, v, time);
    if reason.is_empty() {
        write!(out, ":{me} PART {old}\r\n")?;
    } else {
        write!(out, ":{me} PART {old} :{reason}\r\n")?;
    }
    time_tag(out, v, time);
    if v & cap::EXTENDED_JOIN != 0 {
        write!(out, ":{me} JOIN {new} * :{}\r\n", f.realname)?;
    } else {
        write!(out, ":{me} JOIN {new}\r\n")?;
    }
    let view = &f.view;
    if let Some((text, by, at)) = &view.topic {
        let (topic, whotime) = (RPL_TOPIC.code, RPL_TOPICWHOTIME.code);
        write!(out, ":{server} {topic:03} {nick} {new} :{text}\r\n")?;
        write!(out, ":{server} {whotime:03} {nick} {new} {by} {at}\r\n")?;
    }
    let multi = v & cap::MULTI_PREFIX != 0;
    let entries = view.members.iter().map(|(who, op, voice)| {
        let shown = if v & cap::USERHOST_IN_NAMES != 0 {
            who.prefix()
        } else {
            who.nick()
        };
        format!("{}{shown}", member_prefix(*op, *voice, multi))
    });
    // ":server 353 nick = #chan :" and CRLF within 512 bytes, as NAMES does.
    let room = 512usize.saturating_sub(server.len() + nick.len() + new.len() + 16);
    let mut line = String::new();
    let names = |line: &str, out: &mut Vec<u8>| {
        let (code, symbol) = (RPL_NAMREPLY.code, view.symbol);
        write!(out, ":{server} {code:03} {nick} {symbol} {new} :{line}\r\n")
    };
    for e in entries {
        if !line.is_empty() && line.len() + 1 + e.len() > room {
            names(&line, out)?;
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&e);
    }
    if !line.is_empty() {
        names(&line, out)?;
    }
    let end = RPL_ENDOFNAMES;
    write!(
        out,
        ":{server} {:03} {nick} {new} :{}\r\n",
        end.code, end.text
    )
}
