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

/// What the consumer of a frame wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Go on with the next frame.
    Continue,
    /// Stop: the connection is closing; the rest of the input is dropped.
    Stop,
    /// Not now (flood control): keep this line and everything after it for
    /// [`Framer::resume`].
    Hold,
    /// This line is handled, the next ones wait (an effect the command
    /// waits on): keep everything after it for [`Framer::resume`].
    Pause,
}

/// Incremental line splitter for one connection.
#[derive(Debug, Default)]
pub struct Framer {
    /// The start of a line whose newline has not arrived; empty when idle, so an
    /// idle connection holds no buffer.
    partial: Vec<u8>,
    discarding: bool,
    /// Input not yet framed because the consumer said [`Next::Hold`].
    held: Vec<u8>,
}

impl Framer {
    /// Whether an incomplete line is pending (for the slow-loris timeout).
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty() || self.discarding
    }

    /// Nothing pending: no partial line, nothing held.
    pub fn is_idle(&self) -> bool {
        !self.has_partial() && self.held.is_empty()
    }

    /// Input waiting for [`Framer::resume`].
    pub fn held(&self) -> &[u8] {
        &self.held
    }

    /// Feeds newly read bytes; calls `on_frame` for each complete line or
    /// overlong line, in order, until it says otherwise. Must not be called
    /// while input is held.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        max: usize,
        mut on_frame: impl FnMut(Frame<'_>) -> Next,
    ) -> Next {
        while !data.is_empty() {
            let nl = memchr::memchr(b'\n', data);
            if self.discarding {
                match nl {
                    Some(i) => {
                        self.discarding = false;
                        data = &data[i + 1..];
                        continue;
                    }
                    None => return Next::Continue,
                }
            }
            match nl {
                Some(i) => {
                    let chunk = &data[..i];
                    let rest = &data[i + 1..];
                    let next = if self.partial.is_empty() {
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
                        let next = on_frame(Frame::Line(&line));
                        match next {
                            Next::Hold => {
                                // Put the line back in front of the rest.
                                self.held = line;
                                self.held.push(b'\n');
                                self.held.extend_from_slice(rest);
                                return Next::Hold;
                            }
                            Next::Pause => {
                                self.held.extend_from_slice(rest);
                                return Next::Pause;
                            }
                            _ => next,
                        }
                    };
                    match next {
                        Next::Continue => data = rest,
                        Next::Stop => return Next::Stop,
                        Next::Hold => {
                            // `data` still starts with the held line.
                            self.held.extend_from_slice(data);
                            return Next::Hold;
                        }
                        Next::Pause => {
                            self.held.extend_from_slice(rest);
                            return Next::Pause;
                        }
                    }
                }
                None => {
                    if self.partial.len() + data.len() > max {
                        self.partial = Vec::new();
                        self.discarding = true;
                        return on_frame(Frame::TooLong);
                    }
                    self.partial.extend_from_slice(data);
                    return Next::Continue;
                }
            }
        }
        Next::Continue
    }

    /// Appends newly read input behind the held input (while flood control
    /// holds it, reading goes on only to measure the backlog).
    pub fn hold_more(&mut self, data: &[u8]) {
        self.held.extend_from_slice(data);
    }

    /// Feeds the held input again (after the flood-control wait).
    pub fn resume(&mut self, max: usize, on_frame: impl FnMut(Frame<'_>) -> Next) -> Next {
        let held = std::mem::take(&mut self.held);
        self.feed(&held, max, on_frame)
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
                Next::Continue
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
                Next::Continue
            });
        }
        assert_eq!(n, 1);
        assert!(f.partial.capacity() == 0);
    }

    #[test]
    fn pause_keeps_only_the_lines_after() {
        for chunks in [&[&b"a\nb\nc\n"[..]][..], &[b"a", b"\nb\nc\n"]] {
            let mut f = Framer::default();
            let mut seen = Vec::new();
            let mut take = |fr: Frame<'_>| {
                if let Frame::Line(l) = fr {
                    seen.push(String::from_utf8_lossy(l).into_owned());
                }
                Next::Pause
            };
            let mut last = Next::Continue;
            for c in chunks {
                last = f.feed(c, 10, &mut take);
            }
            assert_eq!(last, Next::Pause);
            assert_eq!(f.held(), b"b\nc\n", "{chunks:?}");
            f.resume(10, &mut take);
            assert_eq!(f.held(), b"c\n");
            f.resume(10, &mut take);
            assert!(f.is_idle());
            assert_eq!(seen, ["a", "b", "c"]);
        }
    }

    #[test]
    fn hold_keeps_the_line_and_the_rest_in_order() {
        for chunks in [&[&b"a\nb\nc\nd"[..], b"\n"][..], &[b"a\nb", b"\nc\nd\n"]] {
            let mut f = Framer::default();
            let mut seen = Vec::new();
            let mut budget = 1;
            let take = |fr: Frame<'_>, seen: &mut Vec<String>, budget: &mut i32| match fr {
                Frame::Line(l) if *budget > 0 => {
                    *budget -= 1;
                    seen.push(String::from_utf8_lossy(l).into_owned());
                    Next::Continue
                }
                _ => Next::Hold,
            };
            for c in chunks {
                if f.held().is_empty() {
                    f.feed(c, 10, |fr| take(fr, &mut seen, &mut budget));
                } else {
                    // While held, new input queues behind (the caller does not read).
                    let mut h = f.held.clone();
                    h.extend_from_slice(c);
                    f.held = h;
                }
            }
            while !f.held().is_empty() {
                budget = 1;
                f.resume(10, |fr| take(fr, &mut seen, &mut budget));
            }
            assert_eq!(seen, ["a", "b", "c", "d"], "{chunks:?}");
        }
    }
}
