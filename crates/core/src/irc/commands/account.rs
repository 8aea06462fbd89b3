//! Accounts: REGISTER and VERIFY (IRCv3 draft/account-registration), and
//! what logging in means for a connection.

use super::{CommandError, Cont, Ctx, Flow};
use crate::config::{CoreConfig, Registration};
use crate::effect::{Effect, Outcome, Secret};
use crate::names::casefold;
use crate::state::account::SetAccount;
use bavard_proto::message::Message;
use bavard_proto::numeric::*;

/// Shortest password REGISTER accepts, in bytes (`WEAK_PASSWORD` below):
/// any but the empty one, as clients and test suites (irctest's `bar`) use
/// short ones and the server has no policy of its own to enforce.
pub const MIN_PASSWORD: usize = 1;
/// Longest password accepted, in bytes (`UNACCEPTABLE_PASSWORD` above): as
/// much as `bavard account add` reads, and more than any passphrase needs;
/// it bounds the work one registration asks of argon2.
pub const MAX_PASSWORD: usize = 600;

/// The `draft/account-registration` capability's value.
pub fn cap_value(cfg: &CoreConfig) -> String {
    let a = &cfg.accounts;
    let flags = [
        (a.before_connect, "before-connect"),
        (a.require_email, "email-required"),
    ];
    let on: Vec<&str> = flags.iter().filter(|f| f.0).map(|f| f.1).collect();
    on.join(",")
}

/// Logs the connection in to `account` (as registered) and says so (900).
pub fn logged_in(ctx: &mut Ctx<'_>, account: &str) -> Result<(), CommandError> {
    let id = ctx.st.id();
    ctx.apply(SetAccount {
        id,
        account: Some(account.to_string()),
    })?;
    let Some(u) = ctx.net.user(id) else {
        return Ok(());
    };
    let or_star = |s: &str| {
        if s.is_empty() {
            "*".to_string()
        } else {
            s.to_string()
        }
    };
    let (nick, user) = (or_star(u.nick()), or_star(u.user()));
    let mask = format!("{nick}!{user}@{}", u.host());
    tracing::info!(conn = %id, %nick, %account, "logged in");
    ctx.r.num(
        RPL_LOGGEDIN,
        &[
            &mask,
            account,
            &format!("You are now logged in as {account}"),
        ],
    );
    Ok(())
}

/// Logs the connection out of its account and says so (901).
pub fn logged_out(ctx: &mut Ctx<'_>) -> Result<(), CommandError> {
    let id = ctx.st.id();
    ctx.apply(SetAccount { id, account: None })?;
    if let Some(u) = ctx.net.user(id) {
        let mask = format!("{}!{}@{}", u.nick(), u.user(), u.host());
        ctx.r.num(RPL_LOGGEDOUT, &[&mask]);
    }
    Ok(())
}

/// An address with a user part and a dotted domain (never checked further:
/// no mail is sent).
pub fn valid_email(e: &str) -> bool {
    matches!(e.split_once('@'), Some((user, host)) if !user.is_empty() && host.contains('.'))
}

/// `FAIL REGISTER <code> <account> :<text>`.
fn refuse(ctx: &mut Ctx<'_>, code: &str, account: &str, text: &str) -> Result<Flow, CommandError> {
    ctx.r.standard("FAIL", "REGISTER", code, &[account], text);
    Ok(Flow::Continue)
}

/// `REGISTER <account|*> <email|*> <password>`: an account named after the
/// client's nick.
pub fn register(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let (wanted, email, password) = (&*m.params[0], &*m.params[1], &*m.params[2]);
    let id = ctx.st.id();
    let accounts = ctx.cfg.accounts.clone();
    if accounts.registration == Registration::Closed {
        let text = "Accounts are created by the administrator only";
        return refuse(ctx, "TEMPORARILY_UNAVAILABLE", wanted, text);
    }
    if !ctx.st.registered() && !accounts.before_connect {
        let text = "Complete the connection before registering an account";
        return refuse(ctx, "COMPLETE_CONNECTION_REQUIRED", wanted, text);
    }
    let Some(u) = ctx.net.user(id) else {
        return Ok(Flow::Close);
    };
    if u.account().is_some() {
        let text = "You are already logged in to an account";
        return refuse(ctx, "ALREADY_AUTHENTICATED", wanted, text);
    }
    // The nick the client has, or the one it last asked for.
    let nick = match (u.nick(), &ctx.st.registration) {
        ("", Some(reg)) => reg.wanted_nick.clone().unwrap_or_default(),
        (nick, _) => nick.to_string(),
    };
    let name = if wanted == "*" {
        nick.clone()
    } else {
        wanted.to_string()
    };
    if name.is_empty() {
        return refuse(ctx, "NEED_NICK", wanted, "Choose a nick first");
    }
    if ctx.net.validate_nick(&name).is_err() {
        return refuse(
            ctx,
            "BAD_ACCOUNT_NAME",
            &name,
            "That is not a valid account name",
        );
    }
    if casefold(&name) != casefold(&nick) {
        let text = "The account must be named after your nick";
        return refuse(ctx, "ACCOUNT_NAME_MUST_BE_NICK", &name, text);
    }
    // A nick someone else is using cannot be registered from under them.
    if ctx
        .net
        .find_nick(&name)
        .is_some_and(|holder| holder.id != id)
    {
        let text = "That nick is in use by someone else";
        return refuse(ctx, "ACCOUNT_EXISTS", &name, text);
    }
    let email = match email {
        "*" => None,
        e => Some(e.to_string()),
    };
    if !email.as_deref().is_none_or(valid_email) || (accounts.require_email && email.is_none()) {
        return refuse(
            ctx,
            "INVALID_EMAIL",
            &name,
            "A valid email address is required",
        );
    }
    if password.len() < MIN_PASSWORD {
        let text = "The password is empty";
        return refuse(ctx, "WEAK_PASSWORD", &name, text);
    }
    if password.len() > MAX_PASSWORD || password == "*" {
        let text = &format!("Passwords have at most {MAX_PASSWORD} bytes");
        return refuse(ctx, "UNACCEPTABLE_PASSWORD", &name, text);
    }
    let effect = Effect::RegisterAccount {
        name: name.clone(),
        password: Secret(password.to_string()),
        email,
        created: ctx.now,
    };
    Ok(Flow::Wait(effect, Cont::Register { account: name }))
}

/// REGISTER, once the store answered.
pub fn registered(
    ctx: &mut Ctx<'_>,
    account: &str,
    outcome: Outcome,
) -> Result<Flow, CommandError> {
    match outcome {
        Outcome::Created(true) => {
            tracing::info!(conn = %ctx.st.id(), %account, "account registered");
            // Logged in at once: no verification, as no mail is sent.
            logged_in(ctx, account)?;
            ctx.r.server_line(&format!(
                "REGISTER SUCCESS {account} :Account successfully registered"
            ));
            Ok(Flow::Continue)
        }
        Outcome::Failed(why) => {
            tracing::warn!(conn = %ctx.st.id(), error = %why, "registration failed");
            let text = "Accounts cannot be registered right now";
            refuse(ctx, "TEMPORARILY_UNAVAILABLE", account, text)
        }
        _ => refuse(
            ctx,
            "ACCOUNT_EXISTS",
            account,
            "That account already exists",
        ),
    }
}

/// `VERIFY <account> <code>`: nothing is ever waiting for a code, as no
/// mail is sent.
pub fn verify(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    ctx.r.standard(
        "FAIL",
        "VERIFY",
        "INVALID_CODE",
        &[&m.params[0]],
        "No verification is pending for this account",
    );
    Ok(Flow::Continue)
}
