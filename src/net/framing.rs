//! Splitting a byte stream into lines, with the length bound enforced while
//! reading: a line longer than the bound is never held in memory, it is
//! reported once and skipped up to its newline.

/// What [`Framer::feed`] finds.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line, without `\n` (a `\r` before it is kept: dialects drop it).
    Line(&'a [u8]),
    /// A line went over the bound; its bytes up to the next `\n` are dropped.
    TooLong,
}

/// Incremental line splitter for one connection.
#[derive(Debug, Default)]
pub struct Framer {
    /// The start of a line whose newline has not arrived; empty when idle, so an
    /// idle connection holds no buffer.
    partial: Vec<u8>,
    discarding: bool,
}

impl Framer {
    /// Whether an incomplete line is pending (for the slow-loris timeout).
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty() || self.discarding
    }

    /// Feeds newly read bytes; calls `on_frame` for each complete line or
    /// overlong line, in order, and stops early if it returns false.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        max: usize,
        mut on_frame: impl FnMut(Frame<'_>) -> bool,
    ) {
        while !data.is_empty() {
            let nl = data.iter().position(|&b| b == b'\n');
            if self.discarding {
                match nl {
                    Some(i) => {
                        self.discarding = false;
                        data = &data[i + 1..];
                        continue;
                    }
                    None => return,
                }
            }
            match nl {
                Some(i) => {
                    let chunk = &data[..i];
                    data = &data[i + 1..];
                    let keep_going = if self.partial.is_empty() {
                        if chunk.len() > max {
                            on_frame(Frame::TooLong)
                        } else {
                            on_frame(Frame::Line(chunk))
                        }
                    } else if self.partial.len() + chunk.len() > max {
                        self.partial = Vec::new();
                        on_frame(Frame::TooLong)
                    } else {
                        self.partial.extend_from_slice(chunk);
                        let line = std::mem::take(&mut self.partial);
                        on_frame(Frame::Line(&line))
                    };
                    if !keep_going {
                        return;
                    }
                }
                None => {
                    if self.partial.len() + data.len() > max {
                        self.partial = Vec::new();
                        self.discarding = true;
                        if !on_frame(Frame::TooLong) {
                            return;
                        }
                    } else {
                        self.partial.extend_from_slice(data);
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]], max: usize) -> Vec<String> {
        let mut f = Framer::default();
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c, max, |fr| {
                out.push(match fr {
                    Frame::Line(l) => String::from_utf8_lossy(l).into_owned(),
                    Frame::TooLong => "<too long>".into(),
                });
                true
            });
        }
        out
    }

    #[test]
    fn table() {
        type Case<'a> = (&'a [&'a [u8]], usize, &'a [&'a str]);
        let cases: &[Case<'_>] = &[
            (&[b"a\n"], 10, &["a"]),
            (&[b"a\nb\nc\n"], 10, &["a", "b", "c"]),
            (&[b"he", b"llo", b"\n"], 10, &["hello"]),
            (&[b"a\r\n"], 10, &["a\r"]),
            (&[b"\n\n"], 10, &["", ""]),
            (&[b"no newline"], 10, &[]),
            (&[b"0123456789\n"], 10, &["0123456789"]),
            (&[b"0123456789X\n", b"ok\n"], 10, &["<too long>", "ok"]),
            (
                &[b"01234", b"56789X", b"more", b"\nok\n"],
                10,
                &["<too long>", "ok"],
            ),
            (&[b"01234", b"56789", b"\n"], 10, &["0123456789"]),
            (&[b"01234", b"567890\nok\n"], 10, &["<too long>", "ok"]),
        ];
        for (chunks, max, want) in cases {
            assert_eq!(run(chunks, *max), *want, "{chunks:?}");
        }
    }

    #[test]
    fn overlong_without_newline_is_reported_once_and_not_kept() {
        let mut f = Framer::default();
        let mut n = 0;
        for _ in 0..100 {
            f.feed(&[b'x'; 1000], 512, |_| {
                n += 1;
                true
            });
        }
        assert_eq!(n, 1);
        assert!(f.partial.capacity() == 0);
    }
}
