//! How a dialect turns events into bytes.
//!
//! Delivery asks the recipient's dialect for the *variant* of an event its
//! connection needs (from the capability bits the connection negotiated),
//! encodes the event once per distinct variant, and queues the same bytes
//! to every recipient of that variant.

use crate::notify::Event;

/// One dialect's encoder.
pub trait Dialect: Send + Sync {
    /// Small number naming the dialect inside a fan-out's encoding cache.
    fn id(&self) -> u8;
    /// The variant of `ev` a connection with `caps` needs, or `None` when
    /// such a connection does not see this event at all.
    fn variant(&self, ev: &Event, caps: u32) -> Option<u32>;
    /// Appends the wire form of `ev` in `variant` to `out`.
    fn encode(&self, ev: &Event, variant: u32, out: &mut Vec<u8>);
}

/// A dialect as a connection refers to it: a static holding the trait
/// object, so that a connection holds a thin pointer (8 bytes, not 16).
pub type DialectRef = &'static dyn Dialect;
