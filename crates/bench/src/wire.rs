//! Wire formats: the measurement payload, line splitting, and classifying
//! incoming lines per dialect. Everything here is on the hot path, so it
//! works on borrowed byte slices and never allocates per line.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::config::Dialect;

/// Marks our payloads so that foreign chatter is never mistaken for one.
const MARK: &[u8] = b"bv";

/// What a payload tells the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Sender id (dense, `0..senders`).
    pub sender: u32,
    /// Per-sender sequence number, starting at 1.
    pub seq: u64,
    /// Send time in ns since the run's clock origin.
    pub ts_ns: u64,
}

/// Appends `bv<sender>,<seq>,<ts>,` padded with `x` up to `size` bytes.
///
/// The payload has no spaces or colons, so every dialect carries it as is.
/// It is longer than `size` only when `size` cannot hold the header.
pub fn encode(out: &mut Vec<u8>, stamp: Stamp, size: usize) {
    let start = out.len();
    out.extend_from_slice(MARK);
    push_u64(out, u64::from(stamp.sender));
    out.push(b',');
    push_u64(out, stamp.seq);
    out.push(b',');
    push_u64(out, stamp.ts_ns);
    out.push(b',');
    if out.len() - start < size {
        out.resize(start + size, b'x');
    }
}

/// Decimal formatting without going through `fmt`, which is measurably
/// slower when building hundreds of thousands of messages per second.
fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Parses a payload produced by [`encode`]; `None` for anything else.
pub fn decode(p: &[u8]) -> Option<Stamp> {
    let rest = p.strip_prefix(MARK)?;
    let (sender, rest) = take_num(rest)?;
    let (seq, rest) = take_num(rest)?;
    let (ts_ns, _) = take_num(rest)?;
    Some(Stamp {
        sender: u32::try_from(sender).ok()?,
        seq,
        ts_ns,
    })
}

fn take_num(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut v: u64 = 0;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' => v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?,
            b',' if i > 0 => return Some((v, &b[i + 1..])),
            _ => return None,
        }
    }
    None
}

/// What an incoming line means to the loader.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// IRC `PING <token>`: must be answered with `PONG <token>`.
    Ping(&'a [u8]),
    /// A chat message body (or an echoed request), possibly ours.
    Payload(&'a [u8]),
    /// Anything else (numerics, notices, joins...): ignored.
    Other,
}

/// Classifies one line (without its terminator) for `dialect`.
pub fn classify(dialect: Dialect, line: &[u8]) -> Incoming<'_> {
    match dialect {
        Dialect::Irc => classify_irc(line),
        Dialect::Line => classify_line(line),
        Dialect::Echo => Incoming::Payload(line),
    }
}

fn classify_irc(line: &[u8]) -> Incoming<'_> {
    if let Some(tok) = line.strip_prefix(b"PING ") {
        return Incoming::Ping(tok);
    }
    // Only `:<src> PRIVMSG <target> :<text>` can carry a payload.
    if line.first() != Some(&b':') {
        return Incoming::Other;
    }
    let Some(sp) = find(line, b' ') else {
        return Incoming::Other;
    };
    let Some(after) = line[sp + 1..].strip_prefix(b"PRIVMSG ") else {
        return Incoming::Other;
    };
    match find_colon_param(after) {
        Some(i) => Incoming::Payload(&after[i..]),
        None => Incoming::Other,
    }
}

/// Index just past the ` :` that starts the trailing parameter.
fn find_colon_param(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b" :").map(|i| i + 2)
}

fn classify_line(line: &[u8]) -> Incoming<'_> {
    if line.starts_with(b"[server]") || line.first() != Some(&b'[') {
        return Incoming::Other;
    }
    // `[<nick>] <text>`: nicks cannot contain `]`, so the first one ends it.
    match find(line, b']') {
        Some(i) if line.get(i + 1) == Some(&b' ') => Incoming::Payload(&line[i + 2..]),
        _ => Incoming::Other,
    }
}

#[inline]
pub(crate) fn find(b: &[u8], needle: u8) -> Option<usize> {
    b.iter().position(|&c| c == needle)
}

/// Reads that fill a [`LineBuf`] one reader may do before letting the others
/// run. Without a bound a socket that always has data is read until tokio's
/// budget of 128 operations runs out (4 MiB of 32 KiB reads), and with deep
/// windows the sockets read last fall megabytes behind, so the server sees
/// them as stragglers; yielding after every full read instead cost the
/// saturated fan-out to 1,000 a tenth of its batching.
pub const FULL_READS_PER_TURN: u32 = 4;

/// A receive buffer that yields complete lines without copying them.
///
/// One big read fetches many lines at once; the unfinished tail is moved to
/// the front only when the buffer is full, so the copy cost is amortised.
pub struct LineBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Set when a line overflowed the buffer: its remainder is skipped.
    discarding: bool,
    /// Lines dropped because they were longer than the buffer.
    pub overlong: u64,
    /// Reads in a row that filled the buffer (see [`LineBuf::turn_over`]).
    full_reads: u32,
}

impl LineBuf {
    /// A buffer of `cap` bytes (lines longer than that are dropped).
    pub fn new(cap: usize) -> Self {
        Self {
            buf: vec![0; cap.max(64)].into_boxed_slice(),
            start: 0,
            end: 0,
            discarding: false,
            overlong: 0,
            full_reads: 0,
        }
    }

    /// Reads once from `r`; returns the byte count (0 on EOF).
    ///
    /// Cancel-safe: all bookkeeping happens before or after the single
    /// `read().await`, so it can sit in a `select!`.
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                // One line fills the whole buffer: give up on it.
                self.start = 0;
                self.end = 0;
                self.discarding = true;
                self.overlong += 1;
            }
        }
        let n = r.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        self.full_reads = if n > 0 && self.end == self.buf.len() {
            self.full_reads + 1
        } else {
            0
        };
        Ok(n)
    }

    /// Whether a reader among many sockets should let the others run before
    /// reading this one again: true once per [`FULL_READS_PER_TURN`] reads in
    /// a row that each filled all the room offered (the socket holds more).
    pub fn turn_over(&mut self) -> bool {
        if self.full_reads < FULL_READS_PER_TURN {
            return false;
        }
        self.full_reads = 0;
        true
    }

    /// The next complete line, without `\n` or `\r\n`.
    pub fn next_line(&mut self) -> Option<&[u8]> {
        loop {
            let i = find(&self.buf[self.start..self.end], b'\n')?;
            let line_start = self.start;
            self.start += i + 1;
            if self.discarding {
                self.discarding = false;
                continue;
            }
            let mut line = &self.buf[line_start..line_start + i];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            return Some(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_roundtrip_and_padding() {
        let mut v = Vec::new();
        let s = Stamp {
            sender: 7,
            seq: 123,
            ts_ns: 9_876_543_210,
        };
        encode(&mut v, s, 100);
        assert_eq!(v.len(), 100);
        assert!(v.iter().all(|c| c.is_ascii_graphic()));
        assert_eq!(decode(&v), Some(s));
        v.clear();
        encode(&mut v, s, 4);
        assert_eq!(decode(&v), Some(s));
        assert_eq!(decode(b"bv1,2"), None);
        assert_eq!(decode(b"hello"), None);
    }

    #[test]
    fn classify_lines() {
        assert_eq!(
            classify(Dialect::Irc, b":a!b@c PRIVMSG #x :bv1,2,3,xx"),
            Incoming::Payload(b"bv1,2,3,xx")
        );
        assert_eq!(
            classify(Dialect::Irc, b"PING :srv"),
            Incoming::Ping(b":srv")
        );
        assert_eq!(
            classify(Dialect::Irc, b":srv 001 n :Welcome"),
            Incoming::Other
        );
        assert_eq!(
            classify(Dialect::Line, b"[guest1] bv1,2,3,"),
            Incoming::Payload(b"bv1,2,3,")
        );
        assert_eq!(
            classify(Dialect::Line, b"[server] Welcome"),
            Incoming::Other
        );
    }

    #[tokio::test]
    async fn linebuf_splits_and_drops_overlong() {
        let data: &[u8] =
            b"a\r\nbb\n0123456789012345678901234567890123456789012345678901234567890123456789\nc\n";
        let mut r = data;
        let mut lb = LineBuf::new(64);
        let mut got = Vec::new();
        while lb.fill(&mut r).await.unwrap() > 0 {
            while let Some(l) = lb.next_line() {
                got.push(l.to_vec());
            }
        }
        assert_eq!(got, vec![b"a".to_vec(), b"bb".to_vec(), b"c".to_vec()]);
        assert_eq!(lb.overlong, 1);
    }

    #[tokio::test]
    async fn a_socket_that_always_has_data_gives_up_its_turn() {
        let n = FULL_READS_PER_TURN as usize;
        let mut always = tokio::io::repeat(b'\n');
        let mut lb = LineBuf::new(64);
        let mut turns = Vec::new();
        for _ in 0..3 * n {
            assert_eq!(lb.fill(&mut always).await.unwrap(), 64);
            while lb.next_line().is_some() {}
            turns.push(lb.turn_over());
        }
        let want: Vec<bool> = (1..=3 * n).map(|i| i % n == 0).collect();
        assert_eq!(turns, want, "one turn per {n} full reads");

        // A short read ends the streak: the socket was drained.
        for _ in 0..n - 1 {
            lb.fill(&mut always).await.unwrap();
            while lb.next_line().is_some() {}
        }
        let mut short: &[u8] = b"x\n";
        lb.fill(&mut short).await.unwrap();
        assert!(!lb.turn_over());
        lb.fill(&mut always).await.unwrap();
        assert!(!lb.turn_over(), "the streak restarted after the short read");
    }
}
