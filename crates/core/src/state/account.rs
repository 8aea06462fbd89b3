//! Logging in to an account and out of it: the change, and who is told.

use super::{Change, ChangeError, Network};
use crate::ids::ConnId;
use crate::notify::{Event, Millis};
use crate::session::Outputs;

/// Logs a user in to `account` (as registered), or out with `None`. Users
/// sharing a channel are told (IRCv3 account-notify), and so are those
/// MONITORing it (extended-monitor).
pub struct SetAccount {
    pub id: ConnId,
    pub account: Option<String>,
}

impl Change for SetAccount {
    /// Whether anything changed.
    type Output = bool;
    fn apply(self, net: &mut Network, out: &mut Outputs, now: Millis) -> Result<bool, ChangeError> {
        let u = net
            .users
            .get_mut(&self.id)
            .ok_or(ChangeError::NoPrivileges)?;
        if u.account() == self.account.as_deref() {
            return Ok(false);
        }
        u.set_account(self.account.as_deref());
        let u = net.users.get(&self.id).ok_or(ChangeError::NoPrivileges)?;
        if !u.registered {
            // Nobody sees a connection before it registers.
            return Ok(true);
        }
        let event = Event::Account {
            who: u.source(),
            account: self.account,
            time: now,
        };
        net.tell_around(u, event, out);
        Ok(true)
    }
}
