//! A chat message (PRIVMSG, NOTICE, TAGMSG) to a channel, a status
//! prefix of a channel, or a nick: who may send it, who gets it, and what
//! history keeps of it.

use std::sync::Arc;

use super::{Change, ChangeError, Network, User, policy, unix_secs};
use crate::effect::Effect;
use crate::ids::{ConnId, MsgId};
use crate::names::folded;
use crate::notify::{Audience, Event, Millis, MsgKind, MultilinePart, Notification};
use crate::session::Outputs;
use crate::store::{Stored, dm_key, history_key};

/// A chat message to a channel or a nick.
pub struct Message {
    pub from: ConnId,
    pub target: String,
    pub text: String,
    /// The lines of a `draft/multiline` batch (empty for one line).
    pub parts: Vec<MultilinePart>,
    pub kind: MsgKind,
    pub client_tags: String,
}

/// What [`Message`] reports to the sender's dialect.
#[derive(Clone, Debug)]
pub struct MessageSent {
    pub msgid: MsgId,
    /// The target as shown: the channel's or the recipient's own spelling.
    pub target: Arc<str>,
    pub to_channel: bool,
    /// The recipient's away message, for a private message.
    pub away: Option<String>,
}

impl Change for Message {
    type Output = MessageSent;
    fn apply(
        self,
        net: &mut Network,
        out: &mut Outputs,
        now: Millis,
    ) -> Result<MessageSent, ChangeError> {
        if self.kind != MsgKind::Tagmsg && self.text.is_empty() {
            return Err(ChangeError::NoTextToSend);
        }
        let u = net.users.get(&self.from).ok_or(ChangeError::NoPrivileges)?;
        // STATUSMSG (`@#chan`, `+#chan`): only the members with that status
        // or a higher one get it.
        let (status, name) = match self.target.as_bytes() {
            [p @ (b'@' | b'+'), b'#', ..] => (Some(char::from(*p)), &self.target[1..]),
            _ => (None, self.target.as_str()),
        };
        // Where it goes, for redaction: a channel's serial, or the user.
        let mut conversation = (None, self.from);
        // draft/chathistory keeps PRIVMSGs and NOTICEs of channels and of
        // private conversations with a logged-in side, status messages
        // excluded, and the TAGMSGs worth replaying; the keys are only
        // built when something is kept, as this is the per-message path.
        let keep = net.cfg.limits.history;
        let kept = keep > 0
            && status.is_none()
            && (self.kind != MsgKind::Tagmsg || worth_keeping(&self.client_tags));
        // Where it is kept: the channel's history, or each logged-in side's.
        let mut keys = Vec::new();
        let (audience, sent) = if name.starts_with('#') {
            let ch = net
                .channels
                .get(&*folded(name))
                .ok_or_else(|| ChangeError::NoSuchChannel(self.target.clone()))?;
            policy::can_send(ch, u, ch.member(self.from))?;
            policy::allows_text(ch, &self.text)?;
            conversation.0 = Some(ch.serial);
            if kept {
                keys.push(history_key(&ch.key));
            }
            match status {
                None => {
                    let audience = Audience::Channel {
                        key: ch.key.clone(),
                        except: Some(self.from),
                    };
                    (audience, (ch.name.clone(), true, None))
                }
                Some(p) => {
                    let ids = ch
                        .members
                        .iter()
                        .filter(|m| m.id != self.from && (m.op || (p == '+' && m.voice)))
                        .map(|m| m.id)
                        .collect();
                    (
                        Audience::Users(ids),
                        (Arc::from(format!("{p}{}", ch.name)), true, None),
                    )
                }
            }
        } else {
            let to = net.registered(&self.target)?;
            let away = to.away().map(str::to_string);
            conversation.1 = to.id;
            if kept {
                keys = dm_keys(u, to);
            }
            (Audience::User(to.id), (Arc::from(to.nick()), false, away))
        };
        let msgid = net.next_msgid();
        net.remember_message(msgid, self.from, conversation.0, conversation.1, now);
        let (target, to_channel, away) = sent;
        let Some(u) = net.users.get_mut(&self.from) else {
            return Err(ChangeError::NoPrivileges);
        };
        u.last_active = unix_secs(now);
        let from = u.speaking_source();
        let event = Event::Message {
            from,
            target: target.clone(),
            to_channel,
            text: self.text,
            kind: self.kind,
            client_tags: self.client_tags,
            time: now,
            msgid,
            parts: self.parts,
        };
        for target in keys {
            let stored = Stored {
                target,
                msgid,
                time: now,
                event: event.clone(),
            };
            out.later.push(Effect::AppendHistory {
                stored: Box::new(stored),
                keep,
            });
        }
        out.note(Notification { audience, event });
        Ok(MessageSent {
            msgid,
            target,
            to_channel,
            away,
        })
    }
}

/// Client-only tags that make a TAGMSG part of the conversation's history:
/// the client asking for it (`draft/persist`, Ergo's and irctest's
/// convention) and reactions. Other TAGMSGs (typing notifications...) are
/// of the moment and are not kept.
pub const KEPT_TAGMSG_TAGS: &[&str] = &["+draft/persist", "+persist", "+draft/react", "+react"];

/// Whether a TAGMSG with these client tags (escaped, `;`-separated) is kept.
pub(super) fn worth_keeping(client_tags: &str) -> bool {
    client_tags
        .split(';')
        .map(|t| t.split_once('=').map_or(t, |(k, _)| k))
        .any(|k| KEPT_TAGMSG_TAGS.contains(&k))
}

/// The history keys of a private message from `a` to `b`: one for each side
/// logged in to an account (once for a message to oneself). Without accounts
/// nothing is kept: the next holder of a nick would read it.
pub(super) fn dm_keys(a: &User, b: &User) -> Vec<String> {
    let name = |u: &User| u.account().unwrap_or(u.nick()).to_string();
    let mut keys: Vec<String> = [(a, b), (b, a)]
        .into_iter()
        .filter_map(|(owner, other)| Some(dm_key(owner.account()?, &name(other))))
        .collect();
    keys.dedup();
    keys
}
