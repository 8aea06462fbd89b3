//! The WebSocket transport (RFC 6455 as the IRCv3 WebSocket specification
//! uses it): one IRC line per message, without its CRLF, each way.
//!
//! The frames are parsed and written here with `tungstenite`'s frame
//! header codec, over the connection's upgraded stream, rather than by
//! `tungstenite`'s whole protocol object: that one keeps a read buffer of
//! its own in every connection (128 KiB by default), where this transport
//! reads into its worker's shared buffer like the byte-stream one, and
//! holds state only while a frame is unfinished, input is held or bytes
//! wait to be written. An idle WebSocket connection then costs about what
//! an idle TCP one does (docs/web.md).
//!
//! A message's length is bounded while it is read, before its payload
//! arrives: over the session's line length (a trailing CRLF allowed), it is
//! reported once as too long and its bytes are dropped. Text and binary
//! messages are handed over alike; the session checks UTF-8 as it does for
//! TCP input.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{Cursor, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use super::framing::{Frame, Next};
use super::transport::{MAX_IOV, ReadEnd, Transport};
use crate::outbox::Pending;

/// The frames the server sends, as the client's subprotocol asks:
/// `binary.ircv3.net` for binary, text otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frames {
    Text,
    Binary,
}

/// Bytes of frames encoded for one write, at most (a line past it still
/// goes whole).
const WRITE_BATCH: usize = 64 * 1024;

/// Close codes (RFC 6455, 7.4.1).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_PROTOCOL_ERROR: u16 = 1002;

thread_local! {
    // Frames are encoded here, one buffer per worker: only what a partial
    // write leaves is copied into the connection.
    static WRITE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// An upgraded connection speaking WebSocket frames.
pub struct WebSocket<I> {
    io: I,
    frames: Frames,
    /// Only while something is under way: an idle connection holds none.
    state: Option<Box<State>>,
    /// A close frame was queued: no data frame follows it.
    closed: bool,
}

/// What a connection holds between reads while something is under way.
#[derive(Default)]
struct State {
    /// The start of a frame header that is not all in yet.
    head: Vec<u8>,
    /// The frame whose payload is being read.
    frame: Option<Reading>,
    /// The data message being assembled, across its frames.
    msg: Vec<u8>,
    /// A data message has started and its last frame has not come.
    in_message: bool,
    /// The message under way went over the bound: the rest of it is dropped.
    discarding: bool,
    /// The payload of the control frame being read.
    control: Vec<u8>,
    /// Messages the session has not taken yet, in order; `None` for one
    /// that went over the bound.
    held: VecDeque<Option<Vec<u8>>>,
    held_bytes: usize,
    /// Encoded frames not yet written: the rest of a partial write, and
    /// answers to the client's control frames.
    out: Vec<u8>,
}

impl State {
    fn is_idle(&self) -> bool {
        self.head.is_empty()
            && self.frame.is_none()
            && !self.in_message
            && self.held.is_empty()
            && self.out.is_empty()
    }
}

struct Reading {
    header: FrameHeader,
    /// Payload bytes still to come.
    left: u64,
    /// Payload bytes seen (where the mask stands).
    seen: usize,
}

/// How a batch of input ended, besides the session's answer.
enum Fed {
    Next(Next),
    /// The client sent a close frame (its status code, if any).
    Closed(Option<u16>),
}

impl<I> WebSocket<I> {
    pub fn new(io: I, frames: Frames) -> WebSocket<I> {
        WebSocket {
            io,
            frames,
            state: None,
            closed: false,
        }
    }

    fn state(&mut self) -> &mut State {
        self.state.get_or_insert_with(Box::default)
    }

    /// Drops the state once it holds nothing.
    fn tidy(&mut self) {
        if self.state.as_ref().is_some_and(|s| s.is_idle()) {
            self.state = None;
        }
    }

    /// Queues a close frame with `code`, once; nothing is sent after it.
    fn queue_close(&mut self, code: u16) {
        if !std::mem::replace(&mut self.closed, true) {
            let out = &mut self.state().out;
            header(out, OpCode::Control(Control::Close), 2);
            out.extend_from_slice(&code.to_be_bytes());
        }
    }
}

/// Appends a server frame header (final, unmasked) for `len` bytes.
fn header(out: &mut Vec<u8>, opcode: OpCode, len: usize) {
    let h = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    // Writing into a Vec cannot fail.
    let _ = h.format(len as u64, out);
}

/// Appends one line (its CR LF dropped) as one frame.
fn encode_line(out: &mut Vec<u8>, frames: Frames, line: &[u8]) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match frames {
        Frames::Binary => {
            header(out, OpCode::Data(Data::Binary), line.len());
            out.extend_from_slice(line);
        }
        Frames::Text => match std::str::from_utf8(line) {
            Ok(_) => {
                header(out, OpCode::Data(Data::Text), line.len());
                out.extend_from_slice(line);
            }
            // A text frame must be UTF-8, or the client drops the
            // connection; the server's lines are, but a bug must not cost
            // the client its connection.
            Err(_) => {
                let text = String::from_utf8_lossy(line);
                header(out, OpCode::Data(Data::Text), text.len());
                out.extend_from_slice(text.as_bytes());
            }
        },
    }
}

/// Why a frame breaks the protocol.
fn check(h: &FrameHeader, len: u64, in_message: bool) -> Result<(), &'static str> {
    if h.rsv1 || h.rsv2 || h.rsv3 {
        return Err("reserved bits set");
    }
    if h.mask.is_none() {
        return Err("unmasked client frame");
    }
    match h.opcode {
        OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
            Err("reserved opcode")
        }
        OpCode::Control(_) if len > 125 || !h.is_final => {
            Err("oversized or fragmented control frame")
        }
        OpCode::Control(_) => Ok(()),
        OpCode::Data(Data::Continue) if !in_message => Err("continuation outside a message"),
        OpCode::Data(Data::Text | Data::Binary) if in_message => {
            Err("new message inside a message")
        }
        OpCode::Data(_) => Ok(()),
    }
}

/// Hands a complete message (`None`: one over the bound) to the session,
/// or holds it behind the ones held. Returns false once the session stops.
fn deliver(
    st: &mut State,
    item: Option<&[u8]>,
    hold: &mut bool,
    result: &mut Next,
    on_line: &mut dyn FnMut(Frame<'_>) -> Next,
) -> bool {
    let keep = |st: &mut State| {
        st.held_bytes += item.map_or(0, <[u8]>::len);
        st.held.push_back(item.map(<[u8]>::to_vec));
    };
    if *hold {
        keep(st);
        return true;
    }
    let next = on_line(item.map_or(Frame::TooLong, Frame::Line));
    match next {
        Next::Continue => {}
        Next::Stop => {
            *result = Next::Stop;
            return false;
        }
        Next::Hold => {
            keep(st);
            *hold = true;
            *result = Next::Hold;
        }
        Next::Pause => {
            *hold = true;
            *result = Next::Pause;
        }
    }
    true
}

/// Parses `data` into frames and messages; complete messages go to
/// `on_line` (or are held while `holding`, and after the session says so).
fn feed(
    st: &mut State,
    mut data: &[u8],
    max: usize,
    holding: bool,
    on_line: &mut dyn FnMut(Frame<'_>) -> Next,
) -> Result<Fed, &'static str> {
    let mut hold = holding || !st.held.is_empty();
    let mut result = if hold { Next::Hold } else { Next::Continue };
    // A trailing CRLF is allowed past the bound: clients may send one.
    let bound = max as u64 + 2;
    loop {
        if st.frame.is_none() {
            if data.is_empty() {
                break;
            }
            let had = st.head.len();
            let parsed = if had == 0 {
                let mut c = Cursor::new(data);
                FrameHeader::parse(&mut c)
                    .map_err(|_| "invalid frame header")?
                    .map(|(h, len)| (h, len, c.position() as usize))
            } else {
                let take = data.len().min(14 - had);
                st.head.extend_from_slice(&data[..take]);
                let mut c = Cursor::new(&st.head[..]);
                let p = FrameHeader::parse(&mut c).map_err(|_| "invalid frame header")?;
                p.map(|(h, len)| (h, len, c.position() as usize - had))
            };
            let Some((h, len, used)) = parsed else {
                // Not all of the header is in: keep its start (at most 14
                // bytes) for the next read.
                if had == 0 {
                    st.head.extend_from_slice(data);
                }
                break;
            };
            st.head.clear();
            data = &data[used..];
            check(&h, len, st.in_message)?;
            if let OpCode::Data(_) = h.opcode {
                st.in_message = true;
                if !st.discarding && st.msg.len() as u64 + len > bound {
                    st.discarding = true;
                    st.msg = Vec::new();
                    if !deliver(st, None, &mut hold, &mut result, on_line) {
                        return Ok(Fed::Next(result));
                    }
                }
            }
            st.frame = Some(Reading {
                header: h,
                left: len,
                seen: 0,
            });
        }
        let Some(f) = &mut st.frame else { break };
        let n = f.left.min(data.len() as u64) as usize;
        let mask = f.header.mask.unwrap_or_default();
        let control = matches!(f.header.opcode, OpCode::Control(_));
        let dst = if control {
            Some(&mut st.control)
        } else if st.discarding {
            None
        } else {
            Some(&mut st.msg)
        };
        if let Some(dst) = dst {
            let seen = f.seen;
            dst.extend(
                data[..n]
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ mask[(seen + i) % 4]),
            );
        }
        data = &data[n..];
        f.seen += n;
        f.left -= n as u64;
        if f.left > 0 {
            break;
        }
        let Some(done) = st.frame.take() else { break };
        match done.header.opcode {
            OpCode::Control(Control::Ping) => {
                let payload = std::mem::take(&mut st.control);
                header(&mut st.out, OpCode::Control(Control::Pong), payload.len());
                st.out.extend_from_slice(&payload);
            }
            OpCode::Control(Control::Close) => {
                let code = st
                    .control
                    .get(..2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]));
                return Ok(Fed::Closed(code));
            }
            OpCode::Control(_) => {}
            OpCode::Data(_) if done.header.is_final => {
                st.in_message = false;
                if std::mem::take(&mut st.discarding) {
                    continue;
                }
                let mut msg = std::mem::take(&mut st.msg);
                if msg.ends_with(b"\n") {
                    msg.pop();
                }
                if msg.ends_with(b"\r") {
                    msg.pop();
                }
                let go_on = deliver(st, Some(&msg), &mut hold, &mut result, on_line);
                // Its storage serves the next message of this read.
                msg.clear();
                st.msg = msg;
                if !go_on {
                    return Ok(Fed::Next(result));
                }
            }
            OpCode::Data(_) => {}
        }
        st.control.clear();
    }
    if !st.in_message {
        st.msg = Vec::new();
    }
    Ok(Fed::Next(result))
}

impl<I: AsyncRead + AsyncWrite + Unpin> WebSocket<I> {
    /// Writes what is queued in the connection's own buffer.
    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(st) = &mut self.state {
            while !st.out.is_empty() {
                let n = std::task::ready!(Pin::new(&mut self.io).poll_write(cx, &st.out))?;
                if n == 0 {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                st.out.drain(..n);
            }
            st.out = Vec::new();
            self.tidy();
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin + Send> Transport for WebSocket<I> {
    fn poll_lines(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
        holding: bool,
        on_line: &mut dyn FnMut(Frame<'_>) -> Next,
    ) -> Poll<ReadEnd> {
        // Answers to control frames go out as soon as the socket takes them.
        if let Poll::Ready(Err(e)) = self.poll_out(cx) {
            return Poll::Ready(ReadEnd::Error(e));
        }
        let (io, state) = (&mut self.io, &mut self.state);
        let fed = super::transport::read_once(io, cx, |data, full| {
            let st = state.get_or_insert_with(Box::default);
            (feed(st, data, max, holding, on_line), full)
        });
        let end = match std::task::ready!(fed) {
            Err(end) => end,
            Ok((Ok(Fed::Next(next)), full)) => ReadEnd::Data { next, full },
            Ok((Ok(Fed::Closed(code)), _)) => {
                // Answered with the client's own code (RFC 6455, 5.5.1).
                self.queue_close(code.unwrap_or(CLOSE_NORMAL));
                let _ = self.poll_out(cx);
                ReadEnd::Eof
            }
            Ok((Err(why), _)) => {
                self.queue_close(CLOSE_PROTOCOL_ERROR);
                let _ = self.poll_out(cx);
                let kind = std::io::ErrorKind::InvalidData;
                ReadEnd::Error(std::io::Error::new(kind, format!("WebSocket: {why}")))
            }
        };
        self.tidy();
        Poll::Ready(end)
    }

    fn resume(&mut self, _max: usize, on_line: &mut dyn FnMut(Frame<'_>) -> Next) -> Next {
        let Some(st) = &mut self.state else {
            return Next::Continue;
        };
        while let Some(item) = st.held.pop_front() {
            st.held_bytes -= item.as_ref().map_or(0, Vec::len);
            match on_line(item.as_deref().map_or(Frame::TooLong, Frame::Line)) {
                Next::Continue => {}
                Next::Stop => {
                    st.held.clear();
                    st.held_bytes = 0;
                    return Next::Stop;
                }
                Next::Hold => {
                    st.held_bytes += item.as_ref().map_or(0, Vec::len);
                    st.held.push_front(item);
                    return Next::Hold;
                }
                Next::Pause => return Next::Pause,
            }
        }
        self.tidy();
        Next::Continue
    }

    fn held(&self) -> (usize, usize) {
        self.state
            .as_ref()
            .map_or((0, 0), |s| (s.held.len(), s.held_bytes))
    }

    fn has_partial(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(|s| !s.head.is_empty() || s.frame.is_some() || s.in_message)
    }

    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        pending: &Pending,
    ) -> Poll<std::io::Result<usize>> {
        std::task::ready!(self.poll_out(cx))?;
        let mut slices = [IoSlice::new(&[]); MAX_IOV];
        let n = pending.slices(&mut slices);
        let slices = &slices[..n];
        if self.closed {
            // Nothing may follow a close frame: the rest is dropped.
            return Poll::Ready(Ok(slices.iter().map(|s| s.len()).sum()));
        }
        let (io, frames) = (&mut self.io, self.frames);
        let written = WRITE_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            // Pieces hold whole lines: each frame is one.
            let mut consumed = 0;
            'lines: for s in slices {
                let mut rest: &[u8] = s;
                while !rest.is_empty() {
                    let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
                    encode_line(&mut buf, frames, &rest[..end]);
                    consumed += end;
                    rest = &rest[end..];
                    if buf.len() >= WRITE_BATCH {
                        break 'lines;
                    }
                }
            }
            let w = std::task::ready!(Pin::new(io).poll_write(cx, &buf))?;
            // The rest of the frames goes out before anything else.
            let rest = buf.get(w..).filter(|r| w > 0 && !r.is_empty());
            Poll::Ready(Ok::<_, std::io::Error>((
                w,
                consumed,
                rest.map(<[u8]>::to_vec),
            )))
        });
        let (w, consumed, rest) = std::task::ready!(written)?;
        if w == 0 {
            return Poll::Ready(Ok(0));
        }
        if let Some(rest) = rest {
            self.state().out = rest;
        }
        Poll::Ready(Ok(consumed))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::task::ready!(self.poll_out(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.queue_close(CLOSE_NORMAL);
        std::task::ready!(self.poll_out(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        super::transport::discard(&mut self.io, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: masked, as clients must send them.
    fn client_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let h = FrameHeader {
            is_final: fin,
            opcode,
            mask: Some(mask),
            ..FrameHeader::default()
        };
        let mut out = Vec::new();
        h.format(payload.len() as u64, &mut out).unwrap();
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn lines(st: &mut State, data: &[u8], max: usize) -> (Vec<String>, Result<Fed, &'static str>) {
        let mut seen = Vec::new();
        let fed = feed(st, data, max, false, &mut |f| {
            seen.push(match f {
                Frame::Line(l) => String::from_utf8_lossy(l).into_owned(),
                Frame::TooLong => "<too long>".into(),
            });
            Next::Continue
        });
        (seen, fed)
    }

    #[test]
    fn messages_in_any_split_become_lines_without_crlf() {
        let text = OpCode::Data(Data::Text);
        let mut all = client_frame(text, true, b"NICK a\r\n");
        all.extend(client_frame(OpCode::Data(Data::Binary), false, b"PRIV"));
        all.extend(client_frame(OpCode::Control(Control::Ping), true, b"p"));
        all.extend(client_frame(
            OpCode::Data(Data::Continue),
            true,
            b"MSG b :hi",
        ));
        all.extend(client_frame(text, true, &[b'x'; 40]));
        all.extend(client_frame(text, true, b"ok"));
        for split in [1, 2, 3, 7, all.len()] {
            let mut st = State::default();
            let mut got = Vec::new();
            for chunk in all.chunks(split) {
                let (l, fed) = lines(&mut st, chunk, 20);
                assert!(fed.is_ok());
                got.extend(l);
            }
            assert_eq!(
                got,
                ["NICK a", "PRIVMSG b :hi", "<too long>", "ok"],
                "split {split}"
            );
            // The ping was answered with a pong carrying its payload.
            assert_eq!(st.out, [0x8a, 1, b'p']);
            assert!(!st.in_message && st.frame.is_none() && st.head.is_empty());
        }
    }

    #[test]
    fn held_messages_come_back_in_order() {
        let text = OpCode::Data(Data::Text);
        let mut all = client_frame(text, true, b"a");
        all.extend(client_frame(text, true, b"b"));
        all.extend(client_frame(text, true, b"c"));
        let mut st = State::default();
        let mut n = 0;
        let fed = feed(&mut st, &all, 10, false, &mut |_| {
            n += 1;
            if n == 2 { Next::Hold } else { Next::Continue }
        });
        assert!(matches!(fed, Ok(Fed::Next(Next::Hold))));
        assert_eq!(st.held.len(), 2);
        assert_eq!(st.held_bytes, 2);
    }

    #[test]
    fn protocol_errors_and_close_are_reported() {
        let mut st = State::default();
        let unmasked = [0x81, 1, b'x'];
        assert!(lines(&mut st, &unmasked, 10).1.is_err());
        let mut st = State::default();
        let stray = client_frame(OpCode::Data(Data::Continue), true, b"x");
        assert!(lines(&mut st, &stray, 10).1.is_err());
        let mut st = State::default();
        let close = client_frame(
            OpCode::Control(Control::Close),
            true,
            &1001u16.to_be_bytes(),
        );
        assert!(matches!(
            lines(&mut st, &close, 10).1,
            Ok(Fed::Closed(Some(1001)))
        ));
    }

    #[test]
    fn lines_are_framed_without_crlf() {
        let mut out = Vec::new();
        encode_line(&mut out, Frames::Text, b"PING x\r\n");
        assert_eq!(out, b"\x81\x06PING x");
        out.clear();
        encode_line(&mut out, Frames::Binary, b"caf\xe9\r\n");
        assert_eq!(out, b"\x82\x04caf\xe9");
        out.clear();
        encode_line(&mut out, Frames::Text, b"caf\xe9\r\n");
        assert_eq!(&out[2..], "caf\u{fffd}".as_bytes());
    }
}
