//! The bytes a writer took from its queue and has yet to write.

use std::io::IoSlice;

use append_only_bytes::BytesSlice;
use thin_vec::ThinVec;

use super::queue::Piece;

/// Bytes taken from a queue and not yet written: `pieces`, then `last`.
#[derive(Default)]
pub struct Pending {
    pub(super) pieces: ThinVec<Piece>,
    pub(super) last: Option<BytesSlice>,
    /// Pieces before this one are written (and emptied).
    pub(super) head: usize,
    /// Bytes of the first unwritten piece already written.
    pub(super) offset: usize,
}

impl Pending {
    /// Bytes of the connection's own to write (its last words, past the queue).
    pub fn owned(bytes: Vec<u8>) -> Pending {
        Pending {
            pieces: thin_vec::thin_vec![Piece::Owned(bytes)],
            ..Pending::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.head == self.pieces.len() && self.last.is_none()
    }

    /// Every piece's bytes, in order, the written part of the first included.
    pub(super) fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.pieces[self.head..]
            .iter()
            .map(Piece::bytes)
            .chain(self.last.as_deref())
    }

    /// The unwritten bytes of each piece, in order.
    fn unwritten(&self) -> impl Iterator<Item = &[u8]> {
        self.pieces()
            .enumerate()
            .map(|(i, b)| if i == 0 { &b[self.offset..] } else { b })
    }

    /// The unwritten bytes of the first piece (for writers that cannot
    /// gather; never empty unless [`Pending::is_empty`]).
    pub fn first(&self) -> &[u8] {
        self.unwritten().next().unwrap_or(&[])
    }

    /// Fills `out` with the unwritten bytes, in order, for one vectored
    /// write; returns how many slices were set.
    pub fn slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, b) in out.iter_mut().zip(self.unwritten()) {
            *slot = IoSlice::new(b);
            n += 1;
        }
        n
    }

    /// Marks `n` more bytes as written, releasing finished pieces.
    pub fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(len) = self.pieces().next().map(<[u8]>::len) else {
                break;
            };
            let left = len - self.offset;
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            self.offset = 0;
            if let Some(done) = self.pieces.get_mut(self.head) {
                // Released now: the rest may take a while to write.
                *done = Piece::Owned(Vec::new());
                self.head += 1;
            } else {
                self.last = None;
            }
        }
    }

    /// Drops everything after the line being written, so that a connection
    /// given up on ends on a whole line. Pieces hold whole lines, so the
    /// line under way ends inside the first piece.
    pub fn cut_after_current_line(&mut self) {
        let Some(first) = self.pieces().next() else {
            return;
        };
        let done = &first[..self.offset];
        if done.is_empty() || done.ends_with(b"\n") {
            // At a line boundary: nothing more needs writing.
            self.pieces.clear();
            self.last = None;
            self.head = 0;
            self.offset = 0;
            return;
        }
        let rest = &first[self.offset..];
        let end = self.offset + memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        match self.pieces.get_mut(self.head) {
            Some(Piece::Shared(s)) => s.slice_(..end),
            Some(Piece::Owned(v)) => v.truncate(end),
            None => {
                if let Some(s) = &mut self.last {
                    s.slice_(..end);
                }
                return;
            }
        }
        self.pieces.truncate(self.head + 1);
        self.last = None;
    }

    /// Every unwritten byte, copied (tests and the socket-free simulator).
    pub fn to_vec(&self) -> Vec<u8> {
        self.unwritten().flatten().copied().collect()
    }
}
