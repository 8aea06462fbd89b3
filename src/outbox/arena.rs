//! The arena fan-out writes each line into once, and the lines it shares.

use append_only_bytes::{AppendOnlyBytes, BytesSlice};

/// Arena segment size: large enough that consecutive lines of a busy channel
/// share one, small enough that a queue pinning a few costs little.
pub(super) const SEGMENT: usize = 32 * 1024;

/// Append-only memory that fan-out writes each encoded line into once.
#[derive(Default)]
pub struct Arena {
    cur: AppendOnlyBytes,
}

/// A line in the [`Arena`], ready to be queued to any number of connections.
pub struct Shared {
    pub(super) slice: BytesSlice,
    /// Bytes of its segment from its start to the segment's end: what a queue
    /// holding a reference to it may keep alive.
    pub(super) pin: usize,
}

impl Arena {
    /// Stores `data` and returns a shareable reference to it.
    pub fn put(&mut self, data: &[u8]) -> Shared {
        if self.cur.len() + data.len() > self.cur.capacity() {
            // The full segment lives on as long as queues refer to it.
            self.cur = AppendOnlyBytes::with_capacity(SEGMENT.max(data.len()));
        }
        let start = self.cur.len();
        self.cur.push_slice(data);
        Shared {
            slice: self.cur.slice(start..),
            pin: self.cur.capacity() - start,
        }
    }
}
