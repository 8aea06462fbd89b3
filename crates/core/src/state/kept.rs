//! What history keeps of a channel besides its messages: the events
//! `draft/event-playback` replays (JOIN, PART, QUIT, KICK, NICK, TOPIC,
//! MODE), each under the msgid and time it was relayed with. A QUIT or a
//! NICK concerns every channel of its user, so each of them keeps a copy.

use super::Network;
use crate::effect::Effect;
use crate::notify::Event;
use crate::session::Outputs;
use crate::store::{Stored, history_key};

impl Network {
    /// Asks for `event` to be kept in the history of each channel of
    /// `channel_keys` (casefolded), when history is on. The event carries
    /// its own msgid and time.
    pub(super) fn keep<'k>(
        &self,
        channel_keys: impl IntoIterator<Item = &'k str>,
        event: &Event,
        out: &mut Outputs,
    ) {
        let keep = self.cfg.limits.history;
        if keep == 0 {
            return;
        }
        let Some((msgid, time)) = stamp(event) else {
            return;
        };
        for key in channel_keys {
            out.later.push(Effect::AppendHistory {
                stored: Box::new(Stored {
                    target: history_key(key),
                    msgid,
                    time,
                    event: event.clone(),
                }),
                keep,
            });
        }
    }
}

/// The msgid and time of an event history keeps besides messages.
fn stamp(e: &Event) -> Option<(crate::ids::MsgId, crate::notify::Millis)> {
    match e {
        Event::Join { msgid, time, .. }
        | Event::Part { msgid, time, .. }
        | Event::Quit { msgid, time, .. }
        | Event::Nick { msgid, time, .. }
        | Event::Kick { msgid, time, .. }
        | Event::Topic { msgid, time, .. }
        | Event::Mode { msgid, time, .. } => Some((*msgid, *time)),
        _ => None,
    }
}
