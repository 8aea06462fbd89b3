//! Message redaction (IRCv3 `draft/message-redaction`): the network
//! remembers who sent each recent message where, so that `REDACT` can be
//! checked: senders may redact their own messages, channel operators any
//! message in their channel.
//!
//! A message stays redactable for `limits.redact_window` seconds, and at
//! most the last `limits.redact_messages` messages are remembered (40 bytes
//! each): past either bound its id is unknown. There is no history yet;
//! where there is, a redacted message is to leave it too.

use std::collections::VecDeque;

use super::{Change, ChangeError, Network, policy};
use crate::ids::{ConnId, MsgId};
use crate::notify::{Audience, Event, Millis, Notification};
use crate::session::Outputs;

/// Where a message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conversation {
    /// The channel with this [`super::Channel::serial`] (which a rename keeps).
    Channel(u64),
    /// A private message to this user.
    User(ConnId),
}

/// One remembered message.
#[derive(Clone, Copy, Debug)]
struct Sent {
    msgid: MsgId,
    time: Millis,
    from: ConnId,
    to: Conversation,
}

/// The recent messages, oldest first. Message ids grow with each message,
/// so the queue is sorted by id too and a lookup is a binary search.
#[derive(Debug, Default)]
pub struct Redactable {
    recent: VecDeque<Sent>,
}

impl Redactable {
    /// Remembers a message sent now; forgets what is past the window or
    /// beyond the count.
    fn remember(&mut self, sent: Sent, window_ms: u64, keep: usize) {
        while let Some(front) = self.recent.front() {
            if self.recent.len() < keep && front.time.saturating_add(window_ms) >= sent.time {
                break;
            }
            self.recent.pop_front();
        }
        if keep > 0 {
            self.recent.push_back(sent);
        }
    }

    fn position(&self, msgid: MsgId) -> Option<usize> {
        self.recent.binary_search_by_key(&msgid, |s| s.msgid).ok()
    }

    /// How many messages are remembered.
    pub fn len(&self) -> usize {
        self.recent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }
}

impl Network {
    /// Remembers a message just sent by `from` to a channel or a user.
    pub(super) fn remember_message(
        &mut self,
        msgid: MsgId,
        from: ConnId,
        channel: Option<u64>,
        user: ConnId,
        now: Millis,
    ) {
        let l = &self.cfg.limits;
        let (window, keep) = (l.redact_window.saturating_mul(1000), l.redact_messages);
        if window == 0 {
            // Redaction is off: nothing to remember.
            return;
        }
        let to = channel.map_or(Conversation::User(user), Conversation::Channel);
        let sent = Sent {
            msgid,
            time: now,
            from,
            to,
        };
        self.redactable.remember(sent, window, keep);
    }

    pub fn redactable(&self) -> &Redactable {
        &self.redactable
    }
}

/// A user redacts a message of a conversation: `target` is the channel, or
/// the nick of the other side of a private conversation.
pub struct Redact {
    pub by: ConnId,
    pub target: String,
    pub msgid: String,
    pub reason: Option<String>,
}

impl Change for Redact {
    /// The redactor's own copy of the event.
    type Output = Event;
    fn apply(
        self,
        net: &mut Network,
        out: &mut Outputs,
        now: Millis,
    ) -> Result<Event, ChangeError> {
        let u = net.users.get(&self.by).ok_or(ChangeError::NoPrivileges)?;
        let invalid = || ChangeError::RedactInvalidTarget(self.target.clone());
        let unknown = || ChangeError::UnknownMsgid(self.target.clone(), self.msgid.clone());
        // The conversation, as this user may see it.
        let (to, other, shown, audience, chanop) = if self.target.starts_with('#') {
            let ch = net.channel(&self.target).ok_or_else(invalid)?;
            let member = ch.member(self.by).ok_or_else(invalid)?;
            let audience = Audience::Channel {
                key: ch.key.clone(),
                except: Some(self.by),
            };
            let op = policy::is_chanop(ch, Some(member)).is_ok();
            (
                Conversation::Channel(ch.serial),
                None,
                ch.name.to_string(),
                audience,
                op,
            )
        } else {
            let t = net.registered(&self.target).map_err(|_| invalid())?;
            let shown = t.nick().to_string();
            (
                Conversation::User(t.id),
                Some(t.id),
                shown,
                Audience::User(t.id),
                false,
            )
        };
        let msgid = self
            .msgid
            .parse()
            .map(MsgId::from_raw)
            .map_err(|_| unknown())?;
        let i = net.redactable.position(msgid).ok_or_else(unknown)?;
        let sent = net.redactable.recent[i];
        // In a channel, any message of it; in a private conversation, what
        // either side sent the other (what others sent stays unknown).
        let in_conversation = match other {
            None => sent.to == to,
            Some(o) => {
                (sent.from == self.by && sent.to == to)
                    || (sent.from == o && sent.to == Conversation::User(self.by))
            }
        };
        if !in_conversation {
            return Err(unknown());
        }
        let window = net.cfg.limits.redact_window;
        if now.saturating_sub(sent.time) > window.saturating_mul(1000) {
            return Err(ChangeError::RedactWindowExpired(shown, self.msgid, window));
        }
        if sent.from != self.by && !chanop {
            return Err(ChangeError::RedactForbidden(shown, self.msgid));
        }
        net.redactable.recent.remove(i);
        if let Conversation::Channel(_) = to
            && let Some(ch) = net.channel(&self.target)
        {
            // A redacted message leaves the channel's history too.
            out.later.push(crate::effect::Effect::RedactHistory {
                target: crate::store::history_key(&ch.key),
                msgid,
            });
        }
        let author = net
            .users
            .get(&sent.from)
            .map_or_else(|| "someone".to_string(), |a| a.nick().to_string());
        let event = Event::Redact {
            by: u.source(),
            target: shown,
            to_channel: other.is_none(),
            msgid: self.msgid,
            reason: self.reason,
            author,
            time: now,
        };
        out.note(Notification {
            audience,
            event: event.clone(),
        });
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(id: u64, time: Millis) -> Sent {
        Sent {
            msgid: MsgId::from_raw(id),
            time,
            from: ConnId::new(0, 1),
            to: Conversation::Channel(7),
        }
    }

    #[test]
    fn remembers_within_the_window_and_the_count() {
        let mut r = Redactable::default();
        for (id, t) in [(1, 0), (2, 1000), (3, 2000)] {
            r.remember(sent(id, t), 1000, 10);
        }
        // At 2000 with a 1000 ms window, 1 (at 0) is gone, 2 (at 1000) stays.
        assert_eq!(r.position(MsgId::from_raw(1)), None);
        assert_eq!(r.position(MsgId::from_raw(2)), Some(0));
        assert_eq!(r.len(), 2);
        // The count bound: keeping 2, a third pushes out the oldest.
        let mut r = Redactable::default();
        for id in 1..=3 {
            r.remember(sent(id, 0), 1000, 2);
        }
        assert_eq!(r.len(), 2);
        assert_eq!(r.position(MsgId::from_raw(1)), None);
        assert_eq!(r.position(MsgId::from_raw(3)), Some(1));
        // Keeping none remembers nothing.
        let mut r = Redactable::default();
        r.remember(sent(1, 0), 1000, 0);
        assert!(r.is_empty());
    }
}
