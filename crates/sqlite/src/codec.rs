//! The events history keeps, as bytes: a kind byte, then the variant's
//! fields in order (strings and numbers as LEB128 lengths and values). A
//! hand-written encoding rather than serde in the core: eight variants, no
//! field names repeated in every row, and the core stays free of a
//! serialization framework. Every event carries its msgid and time, as it
//! was relayed. Changing the layout of a kind already written means a
//! schema migration.

use std::sync::Arc;

use bavard_core::notify::{Event, Millis, MsgKind, MultilinePart, Source};
use bavard_core::{ConnId, MsgId};

/// An event kind history does not keep.
#[derive(Debug)]
pub(crate) struct Unsupported(pub(crate) &'static str);

/// Bytes that do not decode to an event: a damaged row.
#[derive(Debug)]
pub(crate) struct Corrupt;

const MESSAGE: u8 = 1;
const JOIN: u8 = 2;
const PART: u8 = 3;
const QUIT: u8 = 4;
const NICK: u8 = 5;
const KICK: u8 = 6;
const TOPIC: u8 = 7;
const MODE: u8 = 8;

/// `e` as bytes; history keeps chat messages and what event-playback
/// replays (JOIN, PART, QUIT, NICK, KICK, TOPIC, MODE).
#[cfg(test)]
pub(crate) fn encode(e: &Event) -> Result<Vec<u8>, Unsupported> {
    let mut out = Vec::with_capacity(64);
    encode_into(e, &mut out)?;
    Ok(out)
}

/// Appends `e` as bytes to `out` (nothing when it is not kept).
fn encode_into(e: &Event, out: &mut Vec<u8>) -> Result<(), Unsupported> {
    let mut w = Writer(out);
    match e {
        Event::Message {
            from,
            target,
            to_channel,
            text,
            kind,
            client_tags,
            time,
            msgid,
            parts,
        } => {
            w.kind(MESSAGE).source(from).str(target).bool(*to_channel);
            w.str(text).u8(kind_byte(*kind)).str(client_tags);
            w.u64(*time).u64(msgid.raw()).u64(parts.len() as u64);
            for p in parts {
                w.str(&p.text).bool(p.concat);
            }
        }
        Event::Join {
            who,
            id,
            channel,
            realname,
            on_connect,
            time,
            msgid,
        } => {
            w.kind(JOIN).source(who).u64(id.raw()).str(channel);
            w.str(realname)
                .bool(*on_connect)
                .u64(*time)
                .u64(msgid.raw());
        }
        Event::Part {
            who,
            id,
            channel,
            reason,
            time,
            msgid,
        } => {
            w.kind(PART).source(who).u64(id.raw()).str(channel);
            w.str(reason).u64(*time).u64(msgid.raw());
        }
        Event::Quit {
            who,
            id,
            reason,
            time,
            msgid,
        } => {
            w.kind(QUIT).source(who).u64(id.raw()).str(reason);
            w.u64(*time).u64(msgid.raw());
        }
        Event::Nick {
            who,
            new,
            time,
            msgid,
        } => {
            w.kind(NICK)
                .source(who)
                .str(new)
                .u64(*time)
                .u64(msgid.raw());
        }
        Event::Kick {
            by,
            channel,
            target,
            target_id,
            reason,
            time,
            msgid,
        } => {
            w.kind(KICK).source(by).str(channel).str(target);
            w.u64(target_id.raw()).str(reason).u64(*time);
            w.u64(msgid.raw());
        }
        Event::Topic {
            by,
            channel,
            text,
            time,
            msgid,
        } => {
            w.kind(TOPIC).source(by).str(channel).str(text);
            w.u64(*time).u64(msgid.raw());
        }
        Event::Mode {
            by,
            channel,
            changes,
            time,
            msgid,
        } => {
            w.kind(MODE).source(by).str(channel).str(changes);
            w.u64(*time).u64(msgid.raw());
        }
        other => return Err(Unsupported(variant_name(other))),
    }
    Ok(())
}

/// The event `bytes` encode.
pub(crate) fn decode(bytes: &[u8]) -> Result<Event, Corrupt> {
    let mut r = Reader(bytes);
    let event = read_event(&mut r)?;
    if r.0.is_empty() {
        Ok(event)
    } else {
        Err(Corrupt)
    }
}

/// Appends one event of a conversation to `chunk`, the bytes of a
/// `history` row: its msgid and time (LEB128), the event's length (four
/// bytes, little-endian: written once the event is), then the event. The
/// length lets a search, a trim or a redaction skip events unread.
pub(crate) fn push(
    chunk: &mut Vec<u8>,
    msgid: MsgId,
    time: Millis,
    e: &Event,
) -> Result<(), Unsupported> {
    let start = chunk.len();
    Writer(chunk).u64(msgid.raw()).u64(time);
    let len_at = chunk.len();
    chunk.extend_from_slice(&[0; 4]);
    if let Err(e) = encode_into(e, chunk) {
        chunk.truncate(start);
        return Err(e);
    }
    let len = u32::try_from(chunk.len() - len_at - 4).unwrap_or(u32::MAX);
    chunk[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Appends an event already encoded (a row of schema 1's table) to `chunk`.
pub(crate) fn push_encoded(chunk: &mut Vec<u8>, msgid: MsgId, time: Millis, event: &[u8]) {
    Writer(chunk).u64(msgid.raw()).u64(time);
    let len = u32::try_from(event.len()).unwrap_or(u32::MAX);
    chunk.extend_from_slice(&len.to_le_bytes());
    chunk.extend_from_slice(event);
}

/// One event of a `history` row, not decoded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record<'a> {
    pub(crate) msgid: MsgId,
    pub(crate) time: Millis,
    /// The event's bytes, for [`decode`].
    pub(crate) event: &'a [u8],
    /// The whole record's bytes.
    pub(crate) bytes: &'a [u8],
}

/// The events of a `history` row, in order, not decoded.
pub(crate) fn records(mut chunk: &[u8]) -> Result<Vec<Record<'_>>, Corrupt> {
    let mut out = Vec::new();
    while !chunk.is_empty() {
        let (rec, rest) = record(chunk)?;
        out.push(rec);
        chunk = rest;
    }
    Ok(out)
}

/// The record at the start of `bytes`, and what follows it.
fn record(bytes: &[u8]) -> Result<(Record<'_>, &[u8]), Corrupt> {
    let mut r = Reader(bytes);
    let (msgid, time) = (MsgId::from_raw(r.u64()?), r.u64()?);
    let len = r.0.get(..4).ok_or(Corrupt)?;
    let len = u32::from_le_bytes(len.try_into().map_err(|_| Corrupt)?) as usize;
    let rest = &r.0[4..];
    let event = rest.get(..len).ok_or(Corrupt)?;
    let used = bytes.len() - rest.len() + len;
    let rec = Record {
        msgid,
        time,
        event,
        bytes: &bytes[..used],
    };
    Ok((rec, &bytes[used..]))
}

/// Queues a history append in `queue`, encoded where it is made: its
/// conversation, how many events that conversation keeps, then the event
/// as a row's record. The writer copies records into rows as they are.
pub(crate) fn push_append(
    queue: &mut Vec<u8>,
    target: &str,
    keep: usize,
    msgid: MsgId,
    time: Millis,
    e: &Event,
) -> Result<(), Unsupported> {
    let start = queue.len();
    Writer(queue).str(target).u64(keep as u64);
    push(queue, msgid, time, e).inspect_err(|_| queue.truncate(start))
}

/// A queued append (see [`push_append`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Queued<'a> {
    pub(crate) target: &'a str,
    pub(crate) keep: usize,
    pub(crate) record: Record<'a>,
}

/// The appends queued in `bytes`, in order.
pub(crate) fn queued(mut bytes: &[u8]) -> Result<Vec<Queued<'_>>, Corrupt> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut r = Reader(bytes);
        let target = r.str()?;
        let keep = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
        let (record, rest) = record(r.0)?;
        out.push(Queued {
            target,
            keep,
            record,
        });
        bytes = rest;
    }
    Ok(out)
}

/// Reads one event, leaving what follows it in `r`.
fn read_event(r: &mut Reader<'_>) -> Result<Event, Corrupt> {
    let event = match r.u8()? {
        MESSAGE => {
            let (from, target, to_channel) = (r.source()?, r.str()?, r.bool()?);
            let (text, kind, client_tags) = (r.string()?, msg_kind(r.u8()?)?, r.string()?);
            let (time, msgid) = (r.u64()?, MsgId::from_raw(r.u64()?));
            let n = r.u64()?;
            // Each part takes two bytes at least: a count past that is damage,
            // not a reason to reserve memory.
            let mut parts =
                Vec::with_capacity(usize::try_from(n).map_err(|_| Corrupt)?.min(r.0.len() / 2));
            for _ in 0..n {
                let (text, concat) = (r.string()?, r.bool()?);
                parts.push(MultilinePart { text, concat });
            }
            Event::Message {
                from,
                target: Arc::from(target),
                to_channel,
                text,
                kind,
                client_tags,
                time,
                msgid,
                parts,
            }
        }
        JOIN => Event::Join {
            who: r.source()?,
            id: ConnId::from_raw(r.u64()?),
            channel: r.string()?,
            realname: r.string()?,
            on_connect: r.bool()?,
            time: r.u64()?,
            msgid: MsgId::from_raw(r.u64()?),
        },
        PART => Event::Part {
            who: r.source()?,
            id: ConnId::from_raw(r.u64()?),
            channel: r.string()?,
            reason: r.string()?,
            time: r.u64()?,
            msgid: MsgId::from_raw(r.u64()?),
        },
        QUIT => Event::Quit {
            who: r.source()?,
            id: ConnId::from_raw(r.u64()?),
            reason: r.string()?,
            time: r.u64()?,
            msgid: MsgId::from_raw(r.u64()?),
        },
        NICK => Event::Nick {
            who: r.source()?,
            new: r.string()?,
            time: r.u64()?,
            msgid: MsgId::from_raw(r.u64()?),
        },
        KICK => Event::Kick {
            by: r.source()?,
            channel: r.string()?,
            target: r.string()?,
            target_id: ConnId::from_raw(r.u64()?),
            reason: r.string()?,
            time: r.u64()?,
            msgid: MsgId::from_raw(r.u64()?),
        },
        TOPIC => Event::Topic {
            by: r.source()?,
            channel: r.string()?,
            text: r.string()?,
            time: r.u64()?,
            msgid: MsgId::from_raw(r.u64()?),
        },
        MODE => Event::Mode {
            by: r.source()?,
            channel: r.string()?,
            changes: r.string()?,
            time: r.u64()?,
            msgid: MsgId::from_raw(r.u64()?),
        },
        _ => return Err(Corrupt),
    };
    Ok(event)
}

fn kind_byte(k: MsgKind) -> u8 {
    match k {
        MsgKind::Privmsg => 0,
        MsgKind::Notice => 1,
        MsgKind::Tagmsg => 2,
    }
}

fn msg_kind(b: u8) -> Result<MsgKind, Corrupt> {
    match b {
        0 => Ok(MsgKind::Privmsg),
        1 => Ok(MsgKind::Notice),
        2 => Ok(MsgKind::Tagmsg),
        _ => Err(Corrupt),
    }
}

/// For the log of an event history was asked to keep and cannot.
fn variant_name(e: &Event) -> &'static str {
    match e {
        Event::Invite { .. } => "INVITE",
        Event::Away { .. } => "AWAY",
        Event::Wallops { .. } => "WALLOPS",
        Event::Kill { .. } => "KILL",
        Event::Setname { .. } => "SETNAME",
        Event::Monitor { .. } => "MONITOR",
        Event::Rename { .. } => "RENAME",
        Event::Redact { .. } => "REDACT",
        Event::Metadata { .. } => "METADATA",
        Event::Shutdown { .. } => "shutdown",
        Event::Watched(_) => "watched",
        _ => "event",
    }
}

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn kind(&mut self, k: u8) -> &mut Self {
        self.u8(k)
    }

    fn u8(&mut self, b: u8) -> &mut Self {
        self.0.push(b);
        self
    }

    fn bool(&mut self, b: bool) -> &mut Self {
        self.u8(u8::from(b))
    }

    /// LEB128: seven bits a byte, low first, the high bit saying "more".
    fn u64(&mut self, mut v: u64) -> &mut Self {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.u8(v as u8)
    }

    fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    /// The prefix carries the nick (up to its `!`), the user and the host.
    fn source(&mut self, s: &Source) -> &mut Self {
        self.str(s.prefix()).bool(s.bot)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, Corrupt> {
        let (&b, rest) = self.0.split_first().ok_or(Corrupt)?;
        self.0 = rest;
        Ok(b)
    }

    fn bool(&mut self) -> Result<bool, Corrupt> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Corrupt),
        }
    }

    fn u64(&mut self) -> Result<u64, Corrupt> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f).checked_shl(shift).ok_or(Corrupt)?;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Corrupt)
    }

    fn str(&mut self) -> Result<&'a str, Corrupt> {
        let len = usize::try_from(self.u64()?).map_err(|_| Corrupt)?;
        if len > self.0.len() {
            return Err(Corrupt);
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        std::str::from_utf8(s).map_err(|_| Corrupt)
    }

    fn string(&mut self) -> Result<String, Corrupt> {
        self.str().map(str::to_string)
    }

    fn source(&mut self) -> Result<Source, Corrupt> {
        let prefix = self.str()?;
        Ok(Source::from_prefix(prefix, self.bool()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> Source {
        Source::new("alice", "~a", "example.org", true)
    }

    #[test]
    fn kept_events_round_trip() {
        let (id, time) = (ConnId::new(1, 7), 1_700_000_000_123);
        let events = [
            Event::Message {
                from: who(),
                target: Arc::from("#lobby"),
                to_channel: true,
                text: "one\ntwo".into(),
                kind: MsgKind::Notice,
                client_tags: "+draft/reply=1;+x=\\s".into(),
                time,
                msgid: MsgId::new(3, u64::MAX),
                parts: vec![
                    MultilinePart {
                        text: "one".into(),
                        concat: false,
                    },
                    MultilinePart {
                        text: "two".into(),
                        concat: true,
                    },
                ],
            },
            Event::Message {
                from: who(),
                target: Arc::from("bob"),
                to_channel: false,
                text: String::new(),
                kind: MsgKind::Tagmsg,
                client_tags: "+draft/persist;+draft/react=\\u{1F44D}".into(),
                time,
                msgid: MsgId::new(0, 1),
                parts: Vec::new(),
            },
            Event::Join {
                who: who(),
                id,
                channel: "#lobby".into(),
                realname: "Alice Liddell".into(),
                on_connect: true,
                time,
                msgid: MsgId::new(0, 1),
            },
            Event::Part {
                who: who(),
                id,
                channel: "#lobby".into(),
                reason: String::new(),
                time,
                msgid: MsgId::new(1, 2),
            },
            Event::Quit {
                who: who(),
                id,
                reason: "bye é".into(),
                time,
                msgid: MsgId::new(2, 3),
            },
            Event::Nick {
                who: who(),
                new: "bob".into(),
                time: 0,
                msgid: MsgId::new(3, 0),
            },
            Event::Kick {
                by: who(),
                channel: "#lobby".into(),
                target: "bob".into(),
                target_id: id,
                reason: "out".into(),
                time,
                msgid: MsgId::new(4, 281474976710655),
            },
            Event::Topic {
                by: Source::from_prefix("server.name", false),
                channel: "#lobby".into(),
                text: "welcome".into(),
                time,
                msgid: MsgId::new(5, 77),
            },
            Event::Mode {
                by: who(),
                channel: "#lobby".into(),
                changes: "+o-v bob alice".into(),
                time: u64::MAX,
                msgid: MsgId::new(6, 12345),
            },
        ];
        for e in events {
            let bytes = encode(&e).unwrap();
            assert_eq!(decode(&bytes).unwrap(), e);
            // Every cut is damage, never a panic or a wrong event.
            for cut in 0..bytes.len() {
                assert!(decode(&bytes[..cut]).is_err(), "{e:?} cut at {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(decode(&longer).is_err());
        }
    }

    #[test]
    fn other_events_are_refused() {
        let e = Event::Shutdown { text: "x".into() };
        assert_eq!(encode(&e).unwrap_err().0, "shutdown");
        assert!(decode(&[0]).is_err());
        assert!(decode(&[99]).is_err());
        // A length far past the end, a number of eleven bytes.
        assert!(decode(&[NICK, 0xff, 0xff, 0xff, 0x0f]).is_err());
        assert!(
            decode(&[
                QUIT, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ])
            .is_err()
        );
    }
}
