//! How IRC connections see hub events. Each event is encoded once per
//! variant: the subset of a connection's capabilities that changes its form
//! (server-time, message-tags, extended-join, multiline...).

use std::io::Write;

use super::cap;
use crate::dialect::{Dialect, DialectRef};
use crate::ids::MsgId;
use crate::notify::{Event, MsgKind, MultilinePart, Source};
use bavard_proto::numeric::{RPL_KEYNOTSET, RPL_KEYVALUE};

/// The IRC dialect's encoder.
pub struct IrcDialect;

/// What every IRC connection's delivery handle points to.
pub static IRC: DialectRef = &IrcDialect;

/// Longest line we send, CRLF included, without tags (RFC 1459's 512).
pub const MAX_LINE: usize = 512;

/// Formats Unix milliseconds as IRCv3 server-time (`2024-01-31T12:34:56.789Z`).
pub fn format_time(ms: u64, out: &mut Vec<u8>) {
    let secs = ms / 1000;
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    );
}

/// Parses IRCv3 server-time (`2024-01-31T12:34:56.789Z`, exactly that form)
/// into Unix milliseconds; `None` for anything else or before 1970.
pub fn parse_time(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 24 || s.get(4..5) != Some("-") || s.get(23..) != Some("Z") {
        return None;
    }
    let seps = [(7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.')];
    if seps.iter().any(|&(i, c)| b[i] != c) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    if hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    // Days since 1970-01-01 from the civil date (Howard Hinnant's algorithm,
    // the inverse of format_time's).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs * 1000 + ms).ok()
}

/// The tags a message carries besides server-time.
#[derive(Clone, Copy, Default)]
struct MsgTags<'a> {
    msgid: Option<MsgId>,
    /// The sender has bot mode (`+B`): IRCv3 bot-mode's `bot` tag (the
    /// ratified name; `draft/bot` was the draft's).
    bot: bool,
    /// Client-only tags, already escaped.
    client: &'a str,
    /// The sender's account (IRCv3 account-tag).
    account: Option<&'a str>,
}

/// Writes the tag section (`@a;b `) for an event, if any tag applies.
fn tags(out: &mut Vec<u8>, variant: u32, time: u64, m: MsgTags<'_>) {
    let start = out.len();
    let sep = |out: &mut Vec<u8>| {
        out.push(if out.len() == start { b'@' } else { b';' });
    };
    if variant & cap::SERVER_TIME != 0 {
        sep(out);
        out.extend_from_slice(b"time=");
        format_time(time, out);
    }
    // Account names are nicks: nothing in them needs escaping.
    if variant & cap::ACCOUNT_TAG != 0
        && let Some(account) = m.account
    {
        sep(out);
        out.extend_from_slice(b"account=");
        out.extend_from_slice(account.as_bytes());
    }
    if variant & cap::MESSAGE_TAGS != 0 {
        if let Some(id) = m.msgid {
            sep(out);
            let _ = write!(out, "msgid={id}");
        }
        if m.bot {
            sep(out);
            out.extend_from_slice(b"bot");
        }
        if !m.client.is_empty() {
            sep(out);
            out.extend_from_slice(m.client.as_bytes());
        }
    }
    if out.len() != start {
        out.push(b' ');
    }
}

/// Appends `parts` to `out`, in order.
fn put(out: &mut Vec<u8>, parts: &[&str]) {
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
}

/// Tags of events that are not messages: server-time only.
pub(super) fn time_tag(out: &mut Vec<u8>, variant: u32, time: u64) {
    tags(out, variant, time, MsgTags::default());
}

/// Tags of what a user did besides messages: server-time and its account.
fn user_tags(out: &mut Vec<u8>, variant: u32, time: u64, who: &Source) {
    let m = MsgTags {
        account: who.account(),
        ..MsgTags::default()
    };
    tags(out, variant, time, m);
}

/// Tags of a channel event history keeps (JOIN, PART, QUIT, KICK, NICK,
/// TOPIC, MODE): those of [`user_tags`], and its msgid, which a client may
/// name in `CHATHISTORY`.
fn kept_tags(out: &mut Vec<u8>, variant: u32, time: u64, who: &Source, msgid: MsgId) {
    let m = MsgTags {
        account: who.account(),
        msgid: Some(msgid),
        ..MsgTags::default()
    };
    tags(out, variant, time, m);
}

/// Splits `text` into pieces that fit an IRC line after `overhead` bytes,
/// cutting at character boundaries (and preferring spaces).
pub fn split_text(text: &str, room: usize) -> Vec<&str> {
    let room = room.max(16);
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > room {
        let mut cut = room;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(sp) = rest[..cut].rfind(' ')
            && sp > room / 2
        {
            cut = sp + 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out.push(rest);
    out
}

fn nick_of(prefix: &str) -> &str {
    prefix.split('!').next().unwrap_or(prefix)
}

impl Dialect for IrcDialect {
    fn id(&self) -> u8 {
        1
    }

    fn variant(&self, ev: &Event, caps: u32) -> Option<u32> {
        let time = caps & cap::SERVER_TIME;
        // What a user did carries its account for those that asked.
        let user = caps & (cap::SERVER_TIME | cap::ACCOUNT_TAG);
        // What history keeps carries its msgid too.
        let kept = caps & (cap::SERVER_TIME | cap::ACCOUNT_TAG | cap::MESSAGE_TAGS);
        Some(match ev {
            Event::Message {
                kind: MsgKind::Tagmsg,
                ..
            } if caps & cap::MESSAGE_TAGS == 0 => return None,
            Event::Message { .. } => {
                caps & (cap::SERVER_TIME
                    | cap::MESSAGE_TAGS
                    | cap::MULTILINE
                    | cap::BATCH
                    | cap::ACCOUNT_TAG)
            }
            Event::Join { .. } => kept | caps & cap::EXTENDED_JOIN,
            Event::Account { .. } if caps & cap::ACCOUNT_NOTIFY == 0 => return None,
            Event::Away { .. } if caps & cap::AWAY_NOTIFY == 0 => return None,
            Event::Setname { .. } if caps & cap::SETNAME == 0 => return None,
            Event::Invite { notify: true, .. } if caps & cap::INVITE_NOTIFY == 0 => return None,
            Event::Shutdown { .. } | Event::Kill { .. } | Event::Monitor { .. } => 0,
            Event::Watched(_) if caps & cap::EXTENDED_MONITOR == 0 => return None,
            Event::Watched(inner) => return self.variant(inner, caps),
            // The shared copy for clients with the capability, each member's
            // own for the others; none when only the case changed.
            Event::Redact { .. } if caps & cap::MESSAGE_REDACTION == 0 => return None,
            Event::Metadata { .. } if caps & cap::METADATA == 0 => return None,
            Event::Metadata { .. } => 0,
            Event::ReadMarker { .. } if caps & cap::READ_MARKER == 0 => return None,
            Event::ReadMarker { .. } => 0,
            Event::Rename { to: None, .. } if caps & cap::CHANNEL_RENAME != 0 => time,
            Event::Rename { to: None, .. } => return None,
            Event::Rename { .. } if caps & cap::CHANNEL_RENAME != 0 => return None,
            Event::Rename {
                old_key, new_key, ..
            } if old_key == new_key => return None,
            Event::Rename { .. } => {
                caps & (cap::SERVER_TIME
                    | cap::EXTENDED_JOIN
                    | cap::MULTI_PREFIX
                    | cap::USERHOST_IN_NAMES)
            }
            Event::Part { .. }
            | Event::Quit { .. }
            | Event::Nick { .. }
            | Event::Kick { .. }
            | Event::Topic { .. }
            | Event::Mode { .. } => kept,
            Event::Invite { .. }
            | Event::Away { .. }
            | Event::Setname { .. }
            | Event::Account { .. }
            | Event::Redact { .. } => user,
            _ => time,
        })
    }

    fn encode(&self, ev: &Event, variant: u32, out: &mut Vec<u8>) {
        let _ = encode(ev, variant, out);
    }
}

fn encode(ev: &Event, v: u32, out: &mut Vec<u8>) -> std::io::Result<()> {
    match ev {
        Event::Message {
            from,
            target,
            text,
            kind,
            client_tags,
            time,
            msgid,
            parts,
            ..
        } => {
            let (time, msgid) = (*time, *msgid);
            let verb = match kind {
                MsgKind::Privmsg => "PRIVMSG",
                MsgKind::Notice => "NOTICE",
                MsgKind::Tagmsg => "TAGMSG",
            };
            let mt = MsgTags {
                msgid: Some(msgid),
                bot: from.bot,
                client: client_tags,
                account: from.account(),
            };
            // The common cases are written piece by piece: no formatting
            // machinery, no temporary prefix string.
            if *kind == MsgKind::Tagmsg {
                tags(out, v, time, mt);
                put(out, &[":", from.prefix(), " TAGMSG ", target, "\r\n"]);
                return Ok(());
            }
            // ":" prefix " " verb " " target " :" text CRLF
            let overhead = 1 + from.prefix().len() + 1 + verb.len() + 1 + target.len() + 2 + 2;
            if parts.is_empty() && overhead + text.len() <= MAX_LINE && !text.contains('\n') {
                tags(out, v, time, mt);
                put(
                    out,
                    &[
                        ":",
                        from.prefix(),
                        " ",
                        verb,
                        " ",
                        target,
                        " :",
                        text,
                        "\r\n",
                    ],
                );
                return Ok(());
            }
            let prefix = from.prefix();
            // The lines to send: a multiline batch's lines as the client sent
            // them, or the lines of a long text (from a `line` user).
            let owned;
            let lines: &[MultilinePart] = if parts.is_empty() {
                owned = text
                    .split('\n')
                    .map(|l| MultilinePart {
                        text: l.to_string(),
                        concat: false,
                    })
                    .collect::<Vec<_>>();
                &owned
            } else {
                parts
            };
            // Each line cut to fit 512 bytes: (piece, continues the previous).
            let room = MAX_LINE.saturating_sub(overhead);
            let pieces = lines.iter().flat_map(|l| {
                split_text(&l.text, room)
                    .into_iter()
                    .enumerate()
                    .map(move |(i, p)| (p, i > 0 || l.concat))
            });
            if v & cap::MULTILINE != 0 && v & cap::BATCH != 0 {
                // One logical message: a draft/multiline batch whose start
                // carries the message's tags; its lines carry none but the
                // batch reference (and concat).
                let id = format!("ml{msgid}");
                tags(out, v, time, mt);
                write!(out, ":{prefix} BATCH +{id} draft/multiline {target}\r\n")?;
                for (p, concat) in pieces {
                    write!(out, "@batch={id}")?;
                    if concat {
                        out.extend_from_slice(b";draft/multiline-concat");
                    }
                    write!(out, " :{prefix} {verb} {target} :{p}\r\n")?;
                }
                write!(out, ":{prefix} BATCH -{id}\r\n")?;
            } else {
                // Fallback (multiline spec): every non-blank line on its own,
                // all with the message's time and tags, the msgid on the first.
                let mut first = true;
                for (p, _) in pieces.filter(|(p, _)| !p.is_empty()) {
                    let t = MsgTags {
                        msgid: if first { Some(msgid) } else { None },
                        ..mt
                    };
                    first = false;
                    tags(out, v, time, t);
                    write!(out, ":{prefix} {verb} {target} :{p}\r\n")?;
                }
            }
        }
        Event::Join {
            who,
            channel,
            realname,
            time,
            msgid,
            ..
        } => {
            kept_tags(out, v, *time, who, *msgid);
            if v & cap::EXTENDED_JOIN != 0 {
                let account = who.account().unwrap_or("*");
                write!(
                    out,
                    ":{} JOIN {channel} {account} :{realname}\r\n",
                    who.prefix()
                )?;
            } else {
                write!(out, ":{} JOIN {channel}\r\n", who.prefix())?;
            }
        }
        Event::Part {
            who,
            channel,
            reason,
            time,
            msgid,
            ..
        } => {
            kept_tags(out, v, *time, who, *msgid);
            if reason.is_empty() {
                write!(out, ":{} PART {channel}\r\n", who.prefix())?;
            } else {
                write!(out, ":{} PART {channel} :{reason}\r\n", who.prefix())?;
            }
        }
        Event::Quit {
            who,
            reason,
            time,
            msgid,
            ..
        } => {
            kept_tags(out, v, *time, who, *msgid);
            write!(out, ":{} QUIT :{reason}\r\n", who.prefix())?;
        }
        Event::Nick {
            who,
            new,
            time,
            msgid,
        } => {
            kept_tags(out, v, *time, who, *msgid);
            write!(out, ":{} NICK {new}\r\n", who.prefix())?;
        }
        Event::Kick {
            by,
            channel,
            target,
            reason,
            time,
            msgid,
            ..
        } => {
            kept_tags(out, v, *time, by, *msgid);
            write!(
                out,
                ":{} KICK {channel} {target} :{reason}\r\n",
                by.prefix()
            )?;
        }
        Event::Topic {
            by,
            channel,
            text,
            time,
            msgid,
        } => {
            kept_tags(out, v, *time, by, *msgid);
            write!(out, ":{} TOPIC {channel} :{text}\r\n", by.prefix())?;
        }
        Event::Mode {
            by,
            channel,
            changes,
            time,
            msgid,
        } => {
            kept_tags(out, v, *time, by, *msgid);
            write!(out, ":{} MODE {channel} {changes}\r\n", by.prefix())?;
        }
        Event::Invite {
            by,
            target,
            channel,
            time,
            ..
        } => {
            user_tags(out, v, *time, by);
            write!(out, ":{} INVITE {target} {channel}\r\n", by.prefix())?;
        }
        Event::Away { who, text, time } => {
            user_tags(out, v, *time, who);
            match text {
                Some(t) => write!(out, ":{} AWAY :{t}\r\n", who.prefix())?,
                None => write!(out, ":{} AWAY\r\n", who.prefix())?,
            }
        }
        Event::Wallops { from, text, time } => {
            user_tags(out, v, *time, from);
            write!(out, ":{} WALLOPS :{text}\r\n", from.prefix())?;
        }
        Event::Kill {
            by, target, reason, ..
        } => {
            write!(out, ":{} KILL {target} :{reason}\r\n", by.prefix())?;
            write!(
                out,
                "ERROR :Closing Link: {target} (Killed ({} ({reason})))\r\n",
                by.nick()
            )?;
        }
        Event::Account { who, account, time } => {
            user_tags(out, v, *time, who);
            let account = account.as_deref().unwrap_or("*");
            write!(out, ":{} ACCOUNT {account}\r\n", who.prefix())?;
        }
        Event::Setname {
            who,
            realname,
            time,
        } => {
            user_tags(out, v, *time, who);
            write!(out, ":{} SETNAME :{realname}\r\n", who.prefix())?;
        }
        Event::Monitor {
            server,
            to,
            online,
            who,
        } => {
            if *online {
                write!(out, ":{server} 730 {to} :{who}\r\n")?;
            } else {
                write!(out, ":{server} 731 {to} :{}\r\n", nick_of(who))?;
            }
        }
        Event::Shutdown { text } => write!(out, "ERROR :{text}\r\n")?,
        Event::Watched(inner) => encode(inner, v, out)?,
        // As Ergo and irctest have it: the numerics of a GET, for `*`.
        Event::ReadMarker { server, target, at } => {
            write!(out, ":{server} MARKREAD {target} timestamp=")?;
            format_time(*at, out);
            out.extend_from_slice(b"\r\n");
        }
        Event::Metadata {
            server,
            target,
            key,
            value,
        } => match value {
            Some(value) => write!(
                out,
                ":{server} {:03} * {target} {key} * :{value}\r\n",
                RPL_KEYVALUE.code
            )?,
            None => write!(
                out,
                ":{server} {:03} * {target} {key} :{}\r\n",
                RPL_KEYNOTSET.code, RPL_KEYNOTSET.text
            )?,
        },
        Event::Redact {
            by,
            target,
            msgid,
            reason,
            time,
            ..
        } => {
            user_tags(out, v, *time, by);
            write!(out, ":{} REDACT {target} {msgid}", by.prefix())?;
            if let Some(r) = reason {
                write!(out, " :{r}")?;
            }
            out.extend_from_slice(b"\r\n");
        }
        Event::Rename {
            by,
            old,
            new,
            reason,
            time,
            to: None,
            ..
        } => {
            user_tags(out, v, *time, by);
            write!(out, ":{} RENAME {old} {new} :{reason}\r\n", by.prefix())?;
        }
        Event::Rename {
            old,
            new,
            reason,
            time,
            to: Some(f),
            ..
        } => super::rename::fallback(old, new, reason, *time, f, v, out)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_time() {
        let mut v = Vec::new();
        format_time(0, &mut v);
        assert_eq!(v, b"1970-01-01T00:00:00.000Z");
        v.clear();
        format_time(1_709_210_096_789, &mut v);
        assert_eq!(String::from_utf8(v).unwrap(), "2024-02-29T12:34:56.789Z");
    }

    #[test]
    fn server_time_parses_back() {
        for ms in [0, 1_709_210_096_789, 951_782_400_000, 4_102_444_799_999] {
            let mut v = Vec::new();
            format_time(ms, &mut v);
            assert_eq!(parse_time(std::str::from_utf8(&v).unwrap()), Some(ms));
        }
        for bad in [
            "",
            "*",
            "2019-01-04T14:33:26.123",
            "2019-01-04T14:33:26Z",
            "2019-01-04 14:33:26.123Z",
            "2019-13-04T14:33:26.123Z",
            "2019-02-29T14:33:26.123Z",
            "2019-01-04T24:00:00.000Z",
            "2019-01-04T14:33:26.12xZ",
            "+019-01-04T14:33:26.123Z",
            "1969-12-31T23:59:59.999Z",
            "not-a-timestamp",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        assert_eq!(
            parse_time("2020-02-29T00:00:00.000Z"),
            Some(1_582_934_400_000)
        );
    }

    #[test]
    fn split_at_char_boundaries() {
        let text = "é".repeat(1000);
        let parts = split_text(&text, 400);
        assert!(parts.iter().all(|p| p.len() <= 400));
        assert_eq!(parts.concat(), text);
        let words = "word ".repeat(200);
        let parts = split_text(&words, 100);
        assert_eq!(parts.concat(), words);
        assert!(parts[0].ends_with(' '));
    }
}
