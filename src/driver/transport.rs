//! The seam between a connection's driver and its transport: a source of
//! lines on the way in, whole lines written on the way out.
//!
//! [`Stream`] is the byte-stream transport (TCP, TLS): it frames input into
//! lines with a bound enforced while reading. A message-oriented transport
//! ([`super::websocket::WebSocket`]: one line per frame) implements the
//! same trait.

use std::cell::RefCell;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::framing::{Frame, Framer, Next};
use crate::outbox::Pending;

/// What one read did.
#[derive(Debug)]
pub enum ReadEnd {
    /// Input was framed; `full`: the read filled the buffer, more is likely
    /// waiting.
    Data {
        next: Next,
        full: bool,
    },
    /// The peer closed its side.
    Eof,
    Error(std::io::Error),
}

/// A connection's transport, as its driver uses it.
pub trait Transport: Send + Unpin {
    /// Reads once; hands each complete line (or overlong one) to `on_line`
    /// until it answers [`Next::Hold`] or [`Next::Stop`]. While input is
    /// held (`holding`), what is read is kept behind it unframed.
    fn poll_lines(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
        holding: bool,
        on_line: &mut dyn FnMut(Frame<'_>) -> Next,
    ) -> Poll<ReadEnd>;
    /// Hands the held input to `on_line` again.
    fn resume(&mut self, max: usize, on_line: &mut dyn FnMut(Frame<'_>) -> Next) -> Next;
    /// Lines and bytes held back (what flood control measures).
    fn held(&self) -> (usize, usize);
    /// An unfinished line is pending (the slow-loris guard's concern).
    fn has_partial(&self) -> bool;
    /// Writes some of `pending` (whole lines, in order).
    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        pending: &Pending,
    ) -> Poll<std::io::Result<usize>>;
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>>;
    /// Closes the sending side.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>>;
    /// Reads and discards input until the peer's end or an error (`Ready`).
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// A byte stream the connection reads and writes at once: gives its two
/// halves, borrowed from it. A TCP stream splits for free (the halves are
/// references); an owned split would cost every connection an `Arc`.
pub trait Duplex: Send + Unpin {
    type Read<'a>: AsyncRead + Unpin + Send
    where
        Self: 'a;
    type Write<'a>: AsyncWrite + Unpin + Send
    where
        Self: 'a;
    fn halves(&mut self) -> (Self::Read<'_>, Self::Write<'_>);
}

impl Duplex for tokio::net::TcpStream {
    type Read<'a> = tokio::net::tcp::ReadHalf<'a>;
    type Write<'a> = tokio::net::tcp::WriteHalf<'a>;
    fn halves(&mut self) -> (Self::Read<'_>, Self::Write<'_>) {
        self.split()
    }
}

/// Separate halves (TLS: `tokio::io::split`).
impl<R, W> Duplex for (R, W)
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    type Read<'a>
        = &'a mut R
    where
        Self: 'a;
    type Write<'a>
        = &'a mut W
    where
        Self: 'a;
    fn halves(&mut self) -> (Self::Read<'_>, Self::Write<'_>) {
        (&mut self.0, &mut self.1)
    }
}

thread_local! {
    // One read buffer per worker thread instead of one per connection: an
    // idle connection then holds no buffer at all.
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; 64 * 1024]);
}

/// Most slices gathered into one vectored write.
pub(super) const MAX_IOV: usize = 64;

/// A byte stream framed into lines.
pub struct Stream<I> {
    io: I,
    /// Only while a line is unfinished or input is held: an idle connection
    /// holds no framer.
    framer: Option<Box<Framer>>,
}

impl<I: Duplex> Stream<I> {
    pub fn new(io: I) -> Stream<I> {
        Stream { io, framer: None }
    }

    /// The stream itself (a refused connection is told why on it).
    pub fn into_inner(self) -> I {
        self.io
    }

    /// Drops the framer once it holds nothing.
    fn tidy(&mut self) {
        if self.framer.as_ref().is_some_and(|f| f.is_idle()) {
            self.framer = None;
        }
    }
}

impl<I: Duplex> Transport for Stream<I> {
    fn poll_lines(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
        holding: bool,
        on_line: &mut dyn FnMut(Frame<'_>) -> Next,
    ) -> Poll<ReadEnd> {
        let (mut rd, _) = self.io.halves();
        let framer = &mut self.framer;
        let end = read_once(&mut rd, cx, |data, full| {
            let framer = framer.get_or_insert_with(Box::default);
            let next = if holding {
                framer.hold_more(data);
                Next::Hold
            } else {
                framer.feed(data, max, on_line)
            };
            ReadEnd::Data { next, full }
        })
        .map(|r| r.unwrap_or_else(|end| end));
        drop(rd);
        self.tidy();
        end
    }

    fn resume(&mut self, max: usize, on_line: &mut dyn FnMut(Frame<'_>) -> Next) -> Next {
        let next = match &mut self.framer {
            Some(f) => f.resume(max, on_line),
            None => Next::Continue,
        };
        self.tidy();
        next
    }

    fn held(&self) -> (usize, usize) {
        self.framer.as_ref().map_or((0, 0), |f| {
            let held = f.held();
            (held.iter().filter(|&&b| b == b'\n').count(), held.len())
        })
    }

    fn has_partial(&self) -> bool {
        self.framer.as_ref().is_some_and(|f| f.has_partial())
    }

    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        pending: &Pending,
    ) -> Poll<std::io::Result<usize>> {
        let (_, mut wr) = self.io.halves();
        // One `writev` of the pieces when the stream supports it (TLS may
        // not: it then takes one piece at a time).
        if wr.is_write_vectored() {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let n = pending.slices(&mut slices);
            Pin::new(&mut wr).poll_write_vectored(cx, &slices[..n])
        } else {
            Pin::new(&mut wr).poll_write(cx, pending.first())
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let (_, mut wr) = self.io.halves();
        Pin::new(&mut wr).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let (_, mut wr) = self.io.halves();
        Pin::new(&mut wr).poll_shutdown(cx)
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let (mut rd, _) = self.io.halves();
        discard(&mut rd, cx)
    }
}

/// Reads once into the worker's buffer and hands what came to `take`, with
/// whether it filled the buffer (more is likely waiting); the peer's end
/// or an error instead as `Err`.
pub(super) fn read_once<T>(
    rd: &mut (impl AsyncRead + Unpin),
    cx: &mut Context<'_>,
    take: impl FnOnce(&[u8], bool) -> T,
) -> Poll<Result<T, ReadEnd>> {
    READ_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        let mut rb = ReadBuf::new(&mut buf[..]);
        Poll::Ready(
            match std::task::ready!(Pin::new(rd).poll_read(cx, &mut rb)) {
                Err(e) => Err(ReadEnd::Error(e)),
                Ok(()) if rb.filled().is_empty() => Err(ReadEnd::Eof),
                Ok(()) => Ok(take(rb.filled(), rb.remaining() == 0)),
            },
        )
    })
}

/// Reads and discards input until the peer's end or an error (`Ready`).
pub(super) fn discard(rd: &mut (impl AsyncRead + Unpin), cx: &mut Context<'_>) -> Poll<()> {
    READ_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        loop {
            let mut rb = ReadBuf::new(&mut buf[..]);
            match std::task::ready!(Pin::new(&mut *rd).poll_read(cx, &mut rb)) {
                Ok(()) if !rb.filled().is_empty() => {}
                _ => return Poll::Ready(()),
            }
        }
    })
}
