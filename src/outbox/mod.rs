//! A connection's bounded outgoing queue, and the arena fan-out shares lines from.
//!
//! The hub appends already-encoded lines without blocking; the connection's
//! writer takes everything queued at once and writes it with one syscall.
//!
//! A line fanned out to many connections is written once into an [`Arena`]
//! and each recipient's queue refers to it: a recipient whose previous queued
//! line ends where the new one starts (the common case: consecutive lines of
//! a busy channel) just extends its last reference, so a delivery touches
//! one cache line of the recipient's queue, no reference count and no copy.
//! Lines for a single connection (replies) are copied into a buffer of its own.
//!
//! The queue is bounded in bytes: an append that would exceed the bound marks
//! the queue overflowed instead, so a client that stops reading costs the
//! others nothing and is disconnected with `SendQ exceeded`. A reference keeps
//! the rest of its arena segment alive, so references are also bounded by the
//! memory they pin: past the bound, lines are copied instead.
//!
//! Past an eighth of its bound (its soft mark) a queue is behind: the
//! connection whose line it was pauses its input until the queue drains
//! (backpressure, `driver::timers`), unless the queue's reader has stopped
//! reading altogether; [`Drains`] wakes the paused connections when queues
//! drain.
//!
//! # Layout
//! - `arena.rs`: the [`Arena`] fan-out writes each line into once, and its
//!   [`Shared`] lines.
//! - `queue.rs`: the queue itself, [`Outbox`], with what it hands out
//!   ([`Appended`], [`Closed`], [`Signal`], [`AlarmTime`], [`Batch`]) and
//!   each queue's soft mark.
//! - `pending.rs`: [`Pending`], the bytes a writer took and has yet to write.
//! - `backpressure.rs`: [`Drains`], where paused connections wait for the
//!   queues they fed to drain.
//! - `tests.rs`: the unit tests of all of it.

mod arena;
mod backpressure;
mod pending;
mod queue;
#[cfg(test)]
mod tests;

pub use arena::{Arena, Shared};
pub use backpressure::Drains;
pub use pending::Pending;
pub use queue::{AlarmTime, Appended, Batch, Closed, Outbox, Signal};
