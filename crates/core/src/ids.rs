//! Identities that can travel between nodes: a connection's and a message's
//! carry the node that made them beside a serial number, so two nodes of one
//! network never hand out the same one.

use std::fmt;

/// Bits of an id above the serial number, naming its node.
const SERIAL_BITS: u32 = 48;
const SERIAL_MASK: u64 = (1 << SERIAL_BITS) - 1;

/// A connection (and the user it carries) for its whole life; never reused.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ConnId(u64);

/// A chat message, for IRCv3 `msgid` (and, later, history and redaction).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct MsgId(u64);

macro_rules! node_id {
    ($t:ident) => {
        impl $t {
            /// The id numbered `serial` on `node` (serials wrap past 2^48).
            pub const fn new(node: u16, serial: u64) -> $t {
                $t(((node as u64) << SERIAL_BITS) | (serial & SERIAL_MASK))
            }

            /// The node that made it.
            pub const fn node(self) -> u16 {
                (self.0 >> SERIAL_BITS) as u16
            }

            pub const fn serial(self) -> u64 {
                self.0 & SERIAL_MASK
            }

            /// The whole id as one number (node and serial).
            pub const fn raw(self) -> u64 {
                self.0
            }

            /// The id whose [`Self::raw`] number is `raw` (as a client
            /// gives it back, e.g. a `msgid` to redact).
            pub const fn from_raw(raw: u64) -> $t {
                $t(raw)
            }
        }

        /// One number, unique across nodes: the serial alone on node 0.
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

node_id!(ConnId);
node_id!(MsgId);

/// Hands out the ids of one node in order.
#[derive(Debug)]
pub struct IdGen {
    node: u16,
    next: u64,
}

impl IdGen {
    pub fn new(node: u16) -> IdGen {
        IdGen { node, next: 1 }
    }

    /// Ids that a restart of the same node does not give again, so message
    /// ids kept in history stay unique: serials start at the milliseconds
    /// since 2026 times 256. A node would have to use more than 256 serials
    /// per millisecond of its whole life (256,000 a second) to reach where
    /// its next start begins; 48 bits last until 2060.
    pub fn from_time(node: u16, now: crate::notify::Millis) -> IdGen {
        IdGen {
            node,
            next: time_serial(now),
        }
    }

    pub fn next_conn(&mut self) -> ConnId {
        ConnId::new(self.node, self.bump())
    }

    pub fn next_msg(&mut self) -> MsgId {
        MsgId::new(self.node, self.bump())
    }

    fn bump(&mut self) -> u64 {
        let n = self.next;
        self.next += 1;
        n
    }
}

/// The first serial of a node started at `now` (see [`IdGen::from_time`]):
/// every serial of an earlier start of the same node is below it.
pub fn time_serial(now: crate::notify::Millis) -> u64 {
    const EPOCH_2026: u64 = 1_767_225_600_000;
    ((now.saturating_sub(EPOCH_2026) << 8) & SERIAL_MASK).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_node() {
        let a = ConnId::new(0, 7);
        let b = ConnId::new(3, 7);
        assert_ne!(a, b);
        assert_eq!((a.node(), a.serial()), (0, 7));
        assert_eq!((b.node(), b.serial()), (3, 7));
        assert_eq!(a.to_string(), "7");
        assert_eq!(MsgId::new(0, 42).to_string(), "42");
        assert_eq!(MsgId::new(1, 0).raw(), 1 << 48);
        let mut g = IdGen::new(2);
        let (x, y) = (g.next_conn(), g.next_msg());
        assert_eq!((x.node(), x.serial(), y.serial()), (2, 1, 2));
    }

    #[test]
    fn a_restart_does_not_reuse_ids() {
        let at = 1_800_000_000_000; // 2027
        let mut first = IdGen::from_time(0, at);
        let last = (0..1000).map(|_| first.next_msg()).last().unwrap();
        // Restarted one second later, after 1,000 messages.
        let mut second = IdGen::from_time(0, at + 1000);
        assert!(second.next_msg() > last);
        // Far in the future, still within 48 bits and increasing.
        let late = IdGen::from_time(0, 2_800_000_000_000).next_msg();
        assert!(late.serial() > last.serial() && late.node() == 0);
        assert_eq!(IdGen::from_time(3, 0).next_msg().serial(), 1, "before 2026");
    }
}
