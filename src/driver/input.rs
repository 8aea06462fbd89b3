//! The input side of a connection: lines from the transport, through flood
//! control, into the session (through the hub), one effect wait at a time.
//! Input that must wait (flood control's delay, an effect a command waits
//! on) is held by the transport and handed over again later, in order.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bavard_core::Session;

use super::framing::{Frame, Next};
use super::transport::{ReadEnd, Transport};
use crate::delivery::{Peer, Wakes};
use crate::effects::Later;
use crate::hub::{Hub, Turn};
use crate::net::flood::{Flood, FloodLimits, Verdict};

/// Most input held back by flood control; a client past it is flooding
/// whatever the rates say, and is dropped with `Excess Flood`.
pub const MAX_HELD: usize = 256 * 1024;

/// What input did to the connection.
#[derive(Debug)]
pub enum Outcome {
    Data,
    Eof,
    Error(std::io::Error),
    /// The session closed the connection.
    Closed,
    /// The input held back went past the flood bound: the client is dropped.
    Excess,
}

/// Flood control between the transport and the session.
pub struct Gate {
    /// Boxed: the buckets would otherwise sit in every connection's state,
    /// flood control on or off.
    flood: Option<Box<Flood>>,
    /// While input is held back: the timer that releases it. Only flood
    /// control needs timing this fine (see `net::alarms`), and only while
    /// it holds input, so the timer exists only then.
    pub hold: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// Who handles the lines: the session, through the hub, for this peer.
pub struct Feed<'a, S: ?Sized> {
    pub hub: &'a Hub,
    pub peer: &'a Arc<Peer>,
    pub session: &'a mut S,
    pub wakes: &'a mut Wakes,
    /// Set when the session waits on an effect that did not answer at once.
    pub waiting: &'a mut Option<Later>,
}

impl Gate {
    pub fn new(flood: Option<Arc<FloodLimits>>) -> Gate {
        Gate {
            flood: flood.map(|l| Box::new(Flood::new(l, Instant::now()))),
            hold: None,
        }
    }

    /// Runs one frame through flood control and the session.
    fn frame<S: Session + ?Sized>(
        &mut self,
        feed: &mut Feed<'_, S>,
        frame: Frame<'_>,
        now: Instant,
    ) -> Next {
        if let (Some(flood), Frame::Line(l)) = (&mut self.flood, &frame)
            && !feed.session.flood_exempt()
            && let Verdict::Wait(t) = flood.admit(l.len(), now)
        {
            match &mut self.hold {
                Some(h) => h.as_mut().reset(t.into()),
                None => self.hold = Some(Box::pin(tokio::time::sleep_until(t.into()))),
            }
            return Next::Hold;
        }
        feed.hub.metrics().line_received();
        let turn = match frame {
            Frame::Line(l) => feed
                .hub
                .call(feed.peer, feed.session, feed.wakes, |s, cx| s.line(cx, l)),
            Frame::TooLong => feed
                .hub
                .call(feed.peer, feed.session, feed.wakes, |s, cx| s.too_long(cx)),
        };
        match turn {
            Turn::Continue => Next::Continue,
            Turn::Close => Next::Stop,
            Turn::Wait(f) => {
                *feed.waiting = Some(f);
                Next::Pause
            }
        }
    }

    /// Bookkeeping after input was framed: the session's timers, the flood
    /// bound.
    fn after<S: Session + ?Sized>(
        &mut self,
        session: &mut S,
        io: &impl Transport,
        next: Next,
        now: Instant,
    ) -> Outcome {
        session.on_input(now, io.has_partial());
        match next {
            Next::Stop => Outcome::Closed,
            Next::Continue | Next::Pause => Outcome::Data,
            Next::Hold => {
                let (lines, bytes) = io.held();
                let excess = match &mut self.flood {
                    Some(flood) => bytes >= MAX_HELD || flood.excessive(lines, bytes, now),
                    None => false,
                };
                if excess {
                    Outcome::Excess
                } else {
                    Outcome::Data
                }
            }
        }
    }

    /// Input is held: by flood control, or for an effect.
    pub fn holding(&self, waiting: bool) -> bool {
        self.hold.is_some() || waiting
    }
}

/// What one read did.
pub struct Read {
    pub outcome: Outcome,
    /// The read filled the buffer: more input is likely waiting.
    pub full: bool,
}

/// Reads once and runs what was read through flood control and the session.
pub fn poll_input<T: Transport, S: Session + ?Sized>(
    cx: &mut Context<'_>,
    io: &mut T,
    gate: &mut Gate,
    feed: &mut Feed<'_, S>,
) -> Poll<Read> {
    let max = feed.session.max_line();
    let holding = gate.holding(feed.waiting.is_some());
    let now = Instant::now();
    let end =
        std::task::ready!(io.poll_lines(cx, max, holding, &mut |fr| gate.frame(feed, fr, now)));
    Poll::Ready(match end {
        ReadEnd::Data { next, full } => Read {
            outcome: gate.after(feed.session, io, next, now),
            full,
        },
        ReadEnd::Eof => Read {
            outcome: Outcome::Eof,
            full: false,
        },
        ReadEnd::Error(e) => Read {
            outcome: Outcome::Error(e),
            full: false,
        },
    })
}

/// Hands the held input to the session again (flood control's wait is
/// over, or the effect a command waited on answered).
pub fn resume_held<T: Transport, S: Session + ?Sized>(
    io: &mut T,
    gate: &mut Gate,
    feed: &mut Feed<'_, S>,
) -> Outcome {
    let max = feed.session.max_line();
    let now = Instant::now();
    let next = io.resume(max, &mut |fr| gate.frame(feed, fr, now));
    if next != Next::Hold {
        gate.hold = None;
    }
    gate.after(feed.session, io, next, now)
}
