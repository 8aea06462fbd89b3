//! Connection timeouts without a timer per connection.
//!
//! Every connection publishes its next deadline (keep-alive, registration,
//! partial line, closing bounds) in its outbox ([`Outbox::set_alarm`]); one
//! task sweeps them all every [`TICK`] and wakes those that are due, and the
//! woken task checks its deadlines itself. A tokio timer per connection
//! would cost 112 bytes in every connection's state (and re-registering it
//! whenever input moves the keep-alive deadline); timeouts here are seconds
//! long, so a quarter of a second of lateness is harmless. Flood control,
//! which needs finer timing, arms a timer only while it holds input back.
//!
//! [`Outbox::set_alarm`]: crate::outbox::Outbox::set_alarm

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::delivery::Peer;
use crate::outbox::AlarmTime;

/// How often deadlines are checked: how late a timeout may fire.
pub const TICK: Duration = Duration::from_millis(250);

/// The connections to sweep.
#[derive(Default)]
pub struct Alarms {
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    peers: Vec<Option<Arc<Peer>>>,
    /// Empty places in `peers`, reused before it grows.
    free: Vec<u32>,
}

impl Alarms {
    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts sweeping `peer`; returns its slot for [`Alarms::remove`].
    pub fn add(&self, peer: Arc<Peer>) -> u32 {
        let mut s = self.slots();
        match s.free.pop() {
            Some(i) => {
                s.peers[i as usize] = Some(peer);
                i
            }
            None => {
                s.peers.push(Some(peer));
                u32::try_from(s.peers.len() - 1).expect("fewer than 2^32 connections")
            }
        }
    }

    /// Stops sweeping the connection in `slot`.
    pub fn remove(&self, slot: u32) {
        let mut s = self.slots();
        if let Some(p) = s.peers.get_mut(slot as usize)
            && p.take().is_some()
        {
            s.free.push(slot);
        }
    }

    /// Wakes every connection whose alarm is due at `now`.
    pub fn sweep(&self, now: Instant) {
        let now = AlarmTime::of(now);
        for p in self.slots().peers.iter().flatten() {
            p.out.ring_if_due(now);
        }
    }

    /// Sweeps every [`TICK`], for as long as it is left running (until the
    /// last connection has ended: closing ones still have deadlines).
    pub async fn run(&self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.sweep(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Signal;
    use std::task::Poll;

    #[test]
    fn slots_are_reused_and_only_due_alarms_ring() {
        let a = Alarms::default();
        let p1 = Arc::new(Peer::new(
            bavard_core::ConnId::new(0, 1),
            &bavard_core::line::LINE,
            crate::outbox::Outbox::new(100),
        ));
        let p2 = Arc::new(Peer::new(
            bavard_core::ConnId::new(0, 2),
            &bavard_core::line::LINE,
            crate::outbox::Outbox::new(100),
        ));
        let s1 = a.add(p1.clone());
        let s2 = a.add(p2.clone());
        assert_ne!(s1, s2);
        let now = Instant::now();
        p1.out.set_alarm(Some(now));
        p2.out.set_alarm(Some(now + Duration::from_secs(60)));
        a.sweep(now + Duration::from_millis(1));
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert_eq!(
            p1.out.poll_ready(&mut cx),
            Poll::Ready(Signal {
                queued: false,
                alarm: true
            }),
            "due: rung"
        );
        assert!(
            p2.out.poll_ready(&mut cx).is_pending(),
            "not due: left alone"
        );
        a.remove(s1);
        a.remove(s1);
        let p3 = Arc::new(Peer::new(
            bavard_core::ConnId::new(0, 3),
            &bavard_core::line::LINE,
            crate::outbox::Outbox::new(100),
        ));
        assert_eq!(a.add(p3), s1, "a freed slot is reused once");
        p2.out.set_alarm(None);
        a.sweep(now + Duration::from_secs(3600));
        assert!(
            p2.out.poll_ready(&mut cx).is_pending(),
            "no alarm: never woken"
        );
    }
}
