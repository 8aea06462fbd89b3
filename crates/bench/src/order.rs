//! The one-order check of the chat scenarios: did every member of a
//! channel see that channel's messages in the same order?
//!
//! Each client that never sends (a pure receiver) folds the (sender,
//! sequence number) of every benchmark message it accepts, in arrival
//! order, into an [`OrderDigest`]: a running 64-bit hash and a count.
//! Messages stamped before the measured window (the warm-up) are left out;
//! the measured window's messages count however late they arrive, drain
//! included. Duplicates are left out too (they are reported on their own).
//!
//! At the end, [`check`] groups each channel's receivers by count: those
//! that received the channel's highest count must all hold the same hash.
//! Receivers with fewer messages missed some; their hash cannot match and
//! says nothing about order, so they are counted apart, not as violations.
//!
//! Senders are not compared: a sender does not receive its own messages,
//! so its sequence differs from everyone else's by construction.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// FNV-1a 64-bit offset basis: a non-zero start, so that an empty
/// sequence and a sequence of zero keys differ.
const BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV 64-bit prime.
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// One receiver's running digest of the messages it accepted, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OrderDigest {
    /// Order-sensitive hash of the (sender, seq) pairs seen so far.
    pub hash: u64,
    /// Messages folded in.
    pub count: u64,
}

impl Default for OrderDigest {
    fn default() -> Self {
        Self {
            hash: BASIS,
            count: 0,
        }
    }
}

impl OrderDigest {
    /// Folds in one message. The rotation makes the step order-sensitive
    /// and carries high bits down; the multiply spreads each key over the
    /// whole word. Sender and seq go in as separate steps so that no
    /// packing of the two can collide (e.g. sender 1 seq 0 vs sender 0 seq 2^32).
    #[inline]
    pub fn push(&mut self, sender: u32, seq: u64) {
        let mut h = self.hash;
        h = (h.rotate_left(5) ^ u64::from(sender)).wrapping_mul(PRIME);
        h = (h.rotate_left(5) ^ seq).wrapping_mul(PRIME);
        self.hash = h;
        self.count += 1;
    }
}

/// A channel whose fullest receivers disagree on the order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderMismatch {
    /// Channel name.
    pub channel: String,
    /// Distinct hashes among the receivers with the channel's highest count.
    pub distinct: usize,
    /// Receivers with the channel's highest count.
    pub receivers: usize,
}

/// The outcome of [`check`] over all channels of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct OrderSummary {
    /// Channels with at least one pure receiver (the ones checked).
    pub channels: u64,
    /// Receivers compared (those with their channel's highest count).
    pub compared: u64,
    /// Receivers left out because they received fewer messages.
    pub fewer: u64,
    /// Channels where the compared receivers disagree.
    pub mismatches: Vec<OrderMismatch>,
}

/// Checks each channel's pure receivers: `channels` holds, per channel, its
/// name and the digests of its pure receivers.
pub(crate) fn check<'a>(
    channels: impl IntoIterator<Item = (&'a str, &'a [OrderDigest])>,
) -> OrderSummary {
    let mut out = OrderSummary::default();
    for (name, digests) in channels {
        let Some(max) = digests.iter().map(|d| d.count).max() else {
            continue;
        };
        out.channels += 1;
        let mut hashes: HashMap<u64, usize> = HashMap::new();
        for d in digests {
            if d.count == max {
                *hashes.entry(d.hash).or_default() += 1;
            } else {
                out.fewer += 1;
            }
        }
        let receivers: usize = hashes.values().sum();
        out.compared += receivers as u64;
        if hashes.len() > 1 {
            out.mismatches.push(OrderMismatch {
                channel: name.to_string(),
                distinct: hashes.len(),
                receivers,
            });
        }
    }
    out
}

/// Appends the report's `order` line(s) to a table: `channels` checked,
/// `compared` and `fewer` receivers, the `mismatches`.
pub(crate) fn write_lines(
    w: &mut String,
    channels: u64,
    compared: u64,
    fewer: u64,
    mismatches: &[OrderMismatch],
) {
    /// Beyond this many, mismatching channels are only counted.
    const SHOWN: usize = 5;
    if channels == 0 {
        let _ = writeln!(
            w,
            "{:<22} not checked: no client only receives (use --senders < --clients)",
            "order"
        );
        return;
    }
    if mismatches.is_empty() {
        let _ = writeln!(
            w,
            "{:<22} one order in {channels}/{channels} channels ({compared} receivers compared)",
            "order"
        );
    } else {
        for m in mismatches.iter().take(SHOWN) {
            let _ = writeln!(
                w,
                "{:<22} DIFFERENT orders in channel {}: {} distinct hashes among {} receivers",
                "order", m.channel, m.distinct, m.receivers
            );
        }
        let _ = writeln!(
            w,
            "{:<22} DIFFERENT orders in {}/{channels} channels ({compared} receivers compared{})",
            "order",
            mismatches.len(),
            if mismatches.len() > SHOWN {
                format!("; {} more channels not listed", mismatches.len() - SHOWN)
            } else {
                String::new()
            }
        );
    }
    if fewer > 0 {
        let _ = writeln!(w, "{:<22} receivers with fewer messages: {fewer}", "");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(msgs: &[(u32, u64)]) -> OrderDigest {
        let mut d = OrderDigest::default();
        for &(s, q) in msgs {
            d.push(s, q);
        }
        d
    }

    #[test]
    fn digest_depends_on_order_and_content() {
        let a = digest(&[(0, 1), (1, 1), (0, 2)]);
        assert_eq!(a, digest(&[(0, 1), (1, 1), (0, 2)]));
        assert_eq!(a.count, 3);
        assert_ne!(a.hash, digest(&[(1, 1), (0, 1), (0, 2)]).hash);
        assert_ne!(a.hash, digest(&[(0, 1), (1, 2), (0, 2)]).hash);
        // Sender and seq are not interchangeable.
        assert_ne!(digest(&[(1, 2)]).hash, digest(&[(2, 1)]).hash);
        assert_ne!(digest(&[(0, 0)]).hash, OrderDigest::default().hash);
    }

    #[test]
    fn same_order_everywhere_is_ok() {
        let d = digest(&[(0, 1), (1, 1), (0, 2)]);
        let a = [d, d, d];
        let b = [digest(&[(2, 1)]); 2];
        let s = check([("#a", &a[..]), ("#b", &b[..])]);
        assert_eq!(s.channels, 2);
        assert_eq!(s.compared, 5);
        assert_eq!(s.fewer, 0);
        assert!(s.mismatches.is_empty());
    }

    #[test]
    fn different_orders_are_reported_per_channel() {
        let x = digest(&[(0, 1), (1, 1)]);
        let y = digest(&[(1, 1), (0, 1)]);
        let z = digest(&[(0, 1), (0, 1)]);
        let bad = [x, y, x, z];
        let good = [x, x];
        let s = check([("#ok", &good[..]), ("#bad", &bad[..])]);
        assert_eq!(s.channels, 2);
        assert_eq!(s.compared, 6);
        assert_eq!(
            s.mismatches,
            vec![OrderMismatch {
                channel: "#bad".into(),
                distinct: 3,
                receivers: 4,
            }]
        );
        let mut t = String::new();
        write_lines(&mut t, s.channels, s.compared, s.fewer, &s.mismatches);
        assert!(
            t.contains("DIFFERENT orders in channel #bad: 3 distinct hashes among 4 receivers"),
            "{t}"
        );
        assert!(t.contains("DIFFERENT orders in 1/2 channels"), "{t}");
    }

    #[test]
    fn receivers_with_fewer_messages_are_set_apart() {
        let full = digest(&[(0, 1), (1, 1), (0, 2)]);
        // Missed (1, 1): a different hash, but not an order violation.
        let short = digest(&[(0, 1), (0, 2)]);
        let ds = [full, short, full, digest(&[])];
        let s = check([("#c", &ds[..])]);
        assert_eq!((s.channels, s.compared, s.fewer), (1, 2, 2));
        assert!(s.mismatches.is_empty());
        let mut t = String::new();
        write_lines(&mut t, s.channels, s.compared, s.fewer, &s.mismatches);
        assert!(
            t.contains("one order in 1/1 channels (2 receivers compared)"),
            "{t}"
        );
        assert!(t.contains("receivers with fewer messages: 2"), "{t}");
    }

    #[test]
    fn channels_without_pure_receivers_are_not_checked() {
        let s = check([("#a", &[][..])]);
        assert_eq!(s, OrderSummary::default());
        let mut t = String::new();
        write_lines(&mut t, 0, 0, 0, &[]);
        assert!(t.contains("not checked"), "{t}");
    }
}
