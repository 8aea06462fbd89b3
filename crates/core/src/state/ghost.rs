//! NickServ GHOST: a user disconnects another connection holding a nick of
//! its account. Like KILL without the operator's privilege: the caller
//! checked ownership.

use super::changes::Quit;
use super::{Change, ChangeError, Network};
use crate::ids::ConnId;
use crate::notify::{Audience, Event, Millis, Notification};
use crate::session::Outputs;

pub struct Ghost {
    pub by: ConnId,
    pub target: String,
}

impl Change for Ghost {
    type Output = ();
    fn apply(self, net: &mut Network, out: &mut Outputs, now: Millis) -> Result<(), ChangeError> {
        let by = net.users.get(&self.by).ok_or(ChangeError::NoPrivileges)?;
        let t = net.registered(&self.target)?;
        if t.id == self.by {
            return Err(ChangeError::NoPrivileges);
        }
        let reason = format!("GHOST command used by {}", by.nick());
        let tid = t.id;
        out.note(Notification {
            audience: Audience::User(tid),
            event: Event::Kill {
                by: by.source(),
                target: t.nick().to_string(),
                reason: reason.clone(),
                time: now,
            },
        });
        Quit { id: tid, reason }.apply(net, out, now)
    }
}
