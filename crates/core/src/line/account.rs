//! The line dialect's accounts: `REGISTER <password>` (the current nick),
//! `LOGIN <account> <password>`, `LOGOUT`. Store work goes through effects;
//! failed logins are throttled as for IRC.

use super::Lx;
use super::commands::{Cont, Flow};
use crate::config::Registration;
use crate::effect::{Effect, Outcome, Secret};
use crate::irc::commands::account::MAX_PASSWORD;
use crate::state::ChangeError;
use crate::state::account::SetAccount;

/// What REGISTER or LOGIN waits on.
#[derive(Debug, PartialEq, Eq)]
pub enum Wait {
    Register { account: String },
    Login { account: String },
}

fn logged_in_now(lx: &mut Lx<'_, '_>) -> bool {
    lx.cx.net.user(lx.id).is_some_and(|u| u.account().is_some())
}

/// `REGISTER <password>`: the current nick as an account.
pub fn register(lx: &mut Lx<'_, '_>, nick: &str, password: &str) -> Flow {
    let accounts = &lx.cfg.accounts;
    let refusal = if accounts.registration == Registration::Closed {
        Some("Accounts are created by the administrator only".to_string())
    } else if accounts.require_email {
        Some("This server needs an email address: register over IRC".to_string())
    } else if password.len() > MAX_PASSWORD {
        Some(format!("Passwords have at most {MAX_PASSWORD} bytes"))
    } else if logged_in_now(lx) {
        Some("You are already logged in: LOGOUT first".to_string())
    } else {
        None
    };
    if let Some(text) = refusal {
        lx.notice(&text);
        return Flow::Continue;
    }
    let effect = Effect::RegisterAccount {
        name: nick.to_string(),
        password: Secret(password.to_string()),
        email: None,
        created: lx.cx.now,
    };
    let account = nick.to_string();
    Flow::Wait(effect, Cont::Account(Wait::Register { account }))
}

/// `LOGIN <account> <password>`, unless throttled.
pub fn login(lx: &mut Lx<'_, '_>, account: &str, password: &str) -> Flow {
    let Some(ip) = lx.cx.net.user(lx.id).map(|u| u.ip) else {
        return Flow::Close;
    };
    if let Err(wait) = lx.cx.net.logins.check(account, ip, lx.cx.now) {
        lx.notice(&format!("Too many failed attempts, try again in {wait} s"));
        return Flow::Continue;
    }
    let effect = Effect::CheckAccount {
        account: account.to_string(),
        password: Secret(password.to_string()),
    };
    let account = account.to_string();
    Flow::Wait(effect, Cont::Account(Wait::Login { account }))
}

/// `LOGOUT`.
pub fn logout(lx: &mut Lx<'_, '_>) -> Result<(), ChangeError> {
    let id = lx.id;
    if lx.apply(SetAccount { id, account: None })? {
        lx.notice("You are now logged out");
    } else {
        lx.notice("You are not logged in");
    }
    Ok(())
}

fn set(lx: &mut Lx<'_, '_>, account: &str) -> Result<(), ChangeError> {
    let id = lx.id;
    lx.apply(SetAccount {
        id,
        account: Some(account.to_string()),
    })?;
    tracing::info!(conn = %id, %account, "logged in");
    Ok(())
}

/// REGISTER or LOGIN, once the store answered.
pub fn resume(lx: &mut Lx<'_, '_>, wait: Wait, outcome: Outcome) -> Result<Flow, ChangeError> {
    let ip = lx.cx.net.user(lx.id).map(|u| u.ip);
    match (wait, outcome) {
        (_, Outcome::Failed(why)) => {
            tracing::warn!(conn = %lx.id, error = %why, "line: account store failed");
            lx.notice("Accounts are unavailable right now: try again later");
        }
        (Wait::Register { account }, Outcome::Created(true)) => {
            tracing::info!(conn = %lx.id, %account, "account registered");
            set(lx, &account)?;
            lx.notice(&format!("Account {account} registered: you are logged in"));
        }
        (Wait::Register { account }, _) => {
            lx.notice(&format!("Account {account} already exists: LOGIN instead"));
        }
        (Wait::Login { .. }, Outcome::Account(Some(name))) => {
            lx.cx.net.logins.succeeded(&name);
            set(lx, &name)?;
            lx.notice(&format!("You are now logged in as {name}"));
        }
        (Wait::Login { account }, _) => {
            if let Some(ip) = ip {
                let (now, limits) = (lx.cx.now, lx.cfg.accounts.throttle());
                lx.cx.net.logins.failed(&account, ip, now, limits);
            }
            lx.notice(&format!("Invalid account or password for {account}"));
        }
    }
    Ok(Flow::Continue)
}
