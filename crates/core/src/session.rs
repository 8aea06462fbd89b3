//! The seam between a connection and the core: a dialect's [`Session`] takes
//! input with the time, and leaves everything it causes in [`Outputs`]: events
//! for an audience, bytes for its own connection, effects to run.

use std::time::Instant;

use crate::effect::Effect;
use crate::ids::ConnId;
use crate::notify::{Millis, Notification};
use crate::state::Network;

/// What a call into the core produced, in order.
#[derive(Debug, Default)]
pub struct Outputs {
    pub items: Vec<Output>,
    /// Effects to start without waiting for them (a nick given back).
    pub later: Vec<Effect>,
}

/// One output, in the order it happened.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// An event for its audience.
    Note(Notification),
    /// Bytes for the connection being served.
    Reply(Vec<u8>),
    /// The last bytes for the connection being served: it closes after them.
    Final(Vec<u8>),
}

impl Outputs {
    pub fn note(&mut self, n: Notification) {
        self.items.push(Output::Note(n));
    }

    pub fn reply(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.items.push(Output::Reply(bytes));
        }
    }

    pub fn final_words(&mut self, bytes: Vec<u8>) {
        self.items.push(Output::Final(bytes));
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.later.is_empty()
    }

    /// The notifications, in order (for tests and history).
    pub fn notes(&self) -> impl Iterator<Item = &Notification> {
        self.items.iter().filter_map(|o| match o {
            Output::Note(n) => Some(n),
            _ => None,
        })
    }
}

/// Everything a call into the core works with.
pub struct Cx<'a> {
    pub net: &'a mut Network,
    pub out: &'a mut Outputs,
    /// Wall-clock time, for events and timestamps.
    pub now: Millis,
    /// Monotonic time, for the session's timers.
    pub instant: Instant,
}

/// What a session wants after a call.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// The connection ends: its queue is flushed, then it closes.
    Close,
    /// Run the effect and call [`Session::resume`] with its outcome; until
    /// then, hold the connection's input.
    Wait(Effect),
}

/// One connection's dialect logic, driven by the server's connection task.
pub trait Session: Send {
    /// This connection's id.
    fn id(&self) -> ConnId;
    /// Longest accepted input line in bytes, newline excluded.
    fn max_line(&self) -> usize;
    /// Bits that change how events are encoded for this connection (the
    /// IRC capabilities it negotiated); delivery passes them to the dialect.
    fn caps(&self) -> u32 {
        0
    }
    /// Once, after the connection joined the network.
    fn start(&mut self, cx: &mut Cx<'_>) -> Step;
    /// One complete input line.
    fn line(&mut self, cx: &mut Cx<'_>, line: &[u8]) -> Step;
    /// An input line went over [`Session::max_line`].
    fn too_long(&mut self, cx: &mut Cx<'_>) -> Step;
    /// The outcome of the effect of the last [`Step::Wait`].
    fn resume(&mut self, cx: &mut Cx<'_>, outcome: crate::effect::Outcome) -> Step;
    /// When [`Session::on_deadline`] should next run, if ever.
    fn deadline(&self) -> Option<Instant>;
    /// Timers: keep-alive, registration deadline, slow-loris guard.
    fn on_deadline(&mut self, cx: &mut Cx<'_>) -> Step;
    /// Input arrived; `partial`: an unfinished line is pending.
    fn on_input(&mut self, now: Instant, partial: bool);
    /// The last line for a client dropped for `reason`, written past its queue.
    fn farewell(&self, reason: &str) -> Vec<u8>;
    /// The client vanished or was dropped: leave the network.
    fn gone(&mut self, cx: &mut Cx<'_>, reason: &str);
    /// Whether flood control spares this client (operators).
    fn flood_exempt(&self) -> bool {
        false
    }
}

/// A boxed session is a session (the server boxes them: a connection's
/// task then holds a pointer, not the whole session).
impl<S: Session + ?Sized> Session for Box<S> {
    fn id(&self) -> ConnId {
        (**self).id()
    }
    fn max_line(&self) -> usize {
        (**self).max_line()
    }
    fn caps(&self) -> u32 {
        (**self).caps()
    }
    fn start(&mut self, cx: &mut crate::Cx<'_>) -> crate::Step {
        (**self).start(cx)
    }
    fn line(&mut self, cx: &mut crate::Cx<'_>, line: &[u8]) -> crate::Step {
        (**self).line(cx, line)
    }
    fn too_long(&mut self, cx: &mut crate::Cx<'_>) -> crate::Step {
        (**self).too_long(cx)
    }
    fn resume(&mut self, cx: &mut crate::Cx<'_>, outcome: crate::effect::Outcome) -> crate::Step {
        (**self).resume(cx, outcome)
    }
    fn deadline(&self) -> Option<std::time::Instant> {
        (**self).deadline()
    }
    fn on_deadline(&mut self, cx: &mut crate::Cx<'_>) -> crate::Step {
        (**self).on_deadline(cx)
    }
    fn on_input(&mut self, now: std::time::Instant, partial: bool) {
        (**self).on_input(now, partial)
    }
    fn farewell(&self, reason: &str) -> Vec<u8> {
        (**self).farewell(reason)
    }
    fn gone(&mut self, cx: &mut crate::Cx<'_>, reason: &str) {
        (**self).gone(cx, reason)
    }
    fn flood_exempt(&self) -> bool {
        (**self).flood_exempt()
    }
}
