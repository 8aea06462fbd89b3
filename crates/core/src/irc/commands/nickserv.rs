//! NickServ, the built-in pseudo-user: `/msg NickServ <command>` (or the
//! `NS`/`NICKSERV` commands), answered by NOTICEs from
//! `NickServ!NickServ@services.<server>`. Store work goes through effects,
//! as for SASL and REGISTER.

use super::account::{MAX_PASSWORD, logged_in, logged_out, valid_email};
use super::{CommandError, Cont, Ctx, Flow};
use crate::config::Registration;
use crate::effect::{CertEdit, Effect, Outcome, Secret};
use crate::names::casefold;
use crate::state::account::SetAccount;
use crate::state::ghost::Ghost;
use crate::state::markers::ForgetAccountMarkers;
use crate::throttle::Subject;
use bavard_proto::message::Message;

/// The pseudo-user's nick, which nobody else may take.
pub const NICK: &str = "NickServ";

/// Whether `nick` names NickServ (any case).
pub fn is_nickserv(nick: &str) -> bool {
    casefold(nick) == "nickserv"
}

/// What NickServ waits on.
#[derive(Debug)]
pub enum Wait {
    Register { account: String },
    Identify { account: String },
    Info { asked: String },
    Ghost { nick: String, recover: bool },
    Drop { account: String },
    SetPassword,
    Cert { edit: Option<CertEdit> },
}

const HELP: &[&str] = &[
    "NickServ commands:",
    "  REGISTER <password> [email]    register your nick as an account",
    "  IDENTIFY [account] <password>  log in to an account",
    "  LOGOUT                         log out",
    "  INFO [account]                 show an account",
    "  GHOST <nick> [password]        disconnect who holds a nick of your account",
    "  RECOVER <nick> [password]      GHOST, then take the nick",
    "  DROP <account> <password>      delete an account",
    "  SET PASSWORD <new>             change your password",
    "  CERT ADD [fp] | DEL <fp> | LIST  TLS certificates for SASL EXTERNAL",
];

/// A NOTICE from NickServ to the client.
fn say(ctx: &mut Ctx<'_>, text: &str) {
    let server = ctx.cfg.server_name.clone();
    let nick = ctx.nick();
    ctx.r.raw(&format!(
        ":{NICK}!{NICK}@services.{server} NOTICE {nick} :{text}"
    ));
}

fn done(ctx: &mut Ctx<'_>, text: &str) -> Result<Flow, CommandError> {
    say(ctx, text);
    Ok(Flow::Continue)
}

/// `NS <command>` / `NICKSERV <command>`.
pub fn command(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let words: Vec<&str> = m.params.iter().map(|p| &**p).collect();
    message(ctx, &words.join(" "))
}

/// The account the user is logged in to.
fn account(ctx: &Ctx<'_>) -> Option<String> {
    ctx.net
        .user(ctx.st.id())
        .and_then(|u| u.account())
        .map(str::to_string)
}

/// The refusal's text when failed logins from this user or for `subject`
/// (an account, or a certificate) are throttled.
pub fn throttled<'a>(ctx: &Ctx<'_>, subject: impl Into<Subject<'a>>) -> Option<String> {
    let ip = ctx.net.user(ctx.st.id())?.ip;
    let wait = ctx.net.logins.check(subject, ip, ctx.now).err()?;
    Some(format!("Too many failed attempts, try again in {wait} s"))
}

/// Records a login attempt's result for throttling.
pub fn attempt<'a>(ctx: &mut Ctx<'_>, subject: impl Into<Subject<'a>>, ok: bool) {
    let Some(ip) = ctx.net.user(ctx.st.id()).map(|u| u.ip) else {
        return;
    };
    if ok {
        ctx.net.logins.succeeded(subject);
    } else {
        let limits = ctx.cfg.accounts.throttle();
        ctx.net.logins.failed(subject, ip, ctx.now, limits);
    }
}

/// Checks `password` for `account`, then picks up at `wait`, unless
/// throttled.
fn check(
    ctx: &mut Ctx<'_>,
    account: &str,
    password: &str,
    wait: Wait,
) -> Result<Flow, CommandError> {
    if let Some(text) = throttled(ctx, account) {
        return done(ctx, &text);
    }
    let effect = Effect::CheckAccount {
        account: account.to_string(),
        password: Secret(password.to_string()),
    };
    Ok(Flow::Wait(effect, Cont::NickServ(wait)))
}

/// One message to NickServ.
pub fn message(ctx: &mut Ctx<'_>, text: &str) -> Result<Flow, CommandError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let verb = words
        .first()
        .map(|w| w.to_ascii_uppercase())
        .unwrap_or_default();
    let args = words.get(1..).unwrap_or_default();
    let nick = ctx.nick();
    let me = account(ctx);
    match (verb.as_str(), args) {
        ("REGISTER", [password, rest @ ..]) if rest.len() <= 1 => {
            register(ctx, &nick, password, rest.first().copied())
        }
        ("IDENTIFY" | "LOGIN", [password]) => {
            let wait = Wait::Identify {
                account: nick.clone(),
            };
            check(ctx, &nick, password, wait)
        }
        ("IDENTIFY" | "LOGIN", [account, password]) => {
            let wait = Wait::Identify {
                account: account.to_string(),
            };
            check(ctx, account, password, wait)
        }
        ("LOGOUT", []) if me.is_none() => done(ctx, "You are not logged in"),
        ("LOGOUT", []) => {
            logged_out(ctx)?;
            done(ctx, "You are now logged out")
        }
        ("INFO", [] | [_]) => {
            let asked = args.first().map_or(nick, |a| a.to_string());
            let effect = Effect::AccountInfo {
                account: asked.clone(),
            };
            Ok(Flow::Wait(effect, Cont::NickServ(Wait::Info { asked })))
        }
        ("GHOST" | "RECOVER", [target, password @ ..]) if password.len() <= 1 => {
            let recover = verb == "RECOVER";
            let target = target.to_string();
            if ctx
                .net
                .find_nick(&target)
                .is_none_or(|u| u.id == ctx.st.id())
            {
                return done(ctx, &format!("{target} is not online, or is you"));
            }
            if me
                .as_deref()
                .is_some_and(|a| casefold(a) == casefold(&target))
            {
                return ghost(ctx, &target, recover);
            }
            match password.first() {
                Some(p) => {
                    let wait = Wait::Ghost {
                        nick: target.clone(),
                        recover,
                    };
                    check(ctx, &target, p, wait)
                }
                None => done(
                    ctx,
                    &format!("Access denied: you are not logged in to {target}"),
                ),
            }
        }
        ("DROP", [account, password]) => {
            if let Some(text) = throttled(ctx, *account) {
                return done(ctx, &text);
            }
            let effect = Effect::DropAccount {
                account: account.to_string(),
                password: Secret(password.to_string()),
            };
            let wait = Wait::Drop {
                account: account.to_string(),
            };
            Ok(Flow::Wait(effect, Cont::NickServ(wait)))
        }
        ("SET" | "CERT", _) if me.is_none() => done(ctx, "You must be logged in (IDENTIFY) first"),
        ("SET", [what, password]) if what.eq_ignore_ascii_case("PASSWORD") => {
            if password.len() > MAX_PASSWORD {
                return done(ctx, &format!("Passwords have at most {MAX_PASSWORD} bytes"));
            }
            let effect = Effect::SetPassword {
                account: me.unwrap_or_default(),
                password: Secret(password.to_string()),
            };
            Ok(Flow::Wait(effect, Cont::NickServ(Wait::SetPassword)))
        }
        ("CERT", [sub, fp @ ..]) if fp.len() <= 1 => {
            let fp = fp.first().map(|f| f.to_ascii_lowercase());
            let edit = match (sub.to_ascii_uppercase().as_str(), fp) {
                ("LIST", None) => None,
                ("ADD", Some(fp)) => Some(CertEdit::Add(fp)),
                ("ADD", None) => match ctx.net.user(ctx.st.id()).and_then(|u| u.certfp()) {
                    Some(fp) => Some(CertEdit::Add(fp.to_string())),
                    None => {
                        return done(
                            ctx,
                            "You have no TLS client certificate: give its fingerprint",
                        );
                    }
                },
                ("DEL", Some(fp)) => Some(CertEdit::Del(fp)),
                _ => return done(ctx, "Syntax: CERT ADD [fp] | CERT DEL <fp> | CERT LIST"),
            };
            let effect = Effect::EditCerts {
                account: me.unwrap_or_default(),
                edit: edit.clone(),
            };
            Ok(Flow::Wait(effect, Cont::NickServ(Wait::Cert { edit })))
        }
        ("HELP", _) | ("", _) => {
            for l in HELP {
                say(ctx, l);
            }
            Ok(Flow::Continue)
        }
        _ => done(
            ctx,
            &format!("Unknown command or wrong parameters: {verb} (try HELP)"),
        ),
    }
}

/// REGISTER <password> [email]: the current nick as an account.
fn register(
    ctx: &mut Ctx<'_>,
    nick: &str,
    password: &str,
    email: Option<&str>,
) -> Result<Flow, CommandError> {
    let accounts = ctx.cfg.accounts.clone();
    if accounts.registration == Registration::Closed {
        return done(ctx, "Accounts are created by the administrator only");
    }
    if account(ctx).is_some() {
        return done(ctx, "You are already logged in to an account");
    }
    if email.is_some_and(|e| !valid_email(e)) || (accounts.require_email && email.is_none()) {
        return done(ctx, "A valid email address is required");
    }
    if password.len() > MAX_PASSWORD {
        return done(ctx, &format!("Passwords have at most {MAX_PASSWORD} bytes"));
    }
    let effect = Effect::RegisterAccount {
        name: nick.to_string(),
        password: Secret(password.to_string()),
        email: email.map(str::to_string),
        created: ctx.now,
    };
    let wait = Wait::Register {
        account: nick.to_string(),
    };
    Ok(Flow::Wait(effect, Cont::NickServ(wait)))
}

/// Disconnects who holds `target`; with `recover`, takes the nick.
fn ghost(ctx: &mut Ctx<'_>, target: &str, recover: bool) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    ctx.apply(Ghost {
        by: id,
        target: target.to_string(),
    })?;
    say(ctx, &format!("{target} has been ghosted"));
    if !recover {
        return Ok(Flow::Continue);
    }
    let key = casefold(target);
    let cont = Cont::Nick {
        nick: target.to_string(),
    };
    Ok(Flow::Wait(Effect::ClaimNick { key, owner: id }, cont))
}

/// A NickServ command, once its effect answered.
pub fn resume(ctx: &mut Ctx<'_>, wait: Wait, outcome: Outcome) -> Result<Flow, CommandError> {
    if let Outcome::Failed(why) = &outcome {
        tracing::warn!(conn = %ctx.st.id(), error = %why, "NickServ: account store failed");
        return done(ctx, "The account store is unavailable: try again later");
    }
    match (wait, outcome) {
        (Wait::Register { account }, Outcome::Created(true)) => {
            tracing::info!(conn = %ctx.st.id(), %account, "account registered");
            logged_in(ctx, &account)?;
            done(
                ctx,
                &format!("Account {account} registered; you are logged in"),
            )
        }
        (Wait::Register { account }, _) => done(ctx, &format!("Account {account} already exists")),
        (Wait::Identify { account }, Outcome::Account(Some(name))) => {
            attempt(ctx, &account, true);
            logged_in(ctx, &name)?;
            done(ctx, &format!("You are now identified for {name}"))
        }
        (Wait::Identify { account }, _) => {
            attempt(ctx, &account, false);
            tracing::info!(conn = %ctx.st.id(), "NickServ: failed login");
            done(ctx, &format!("Invalid account or password for {account}"))
        }
        (Wait::Info { asked }, Outcome::Info(Some(info))) => {
            let mine = account(ctx).is_some_and(|a| casefold(&a) == casefold(&info.name));
            say(ctx, &format!("Information on {}:", info.name));
            let mut when = Vec::new();
            crate::irc::render::format_time(info.created, &mut when);
            say(
                ctx,
                &format!("Registered: {}", String::from_utf8_lossy(&when)),
            );
            let online: Vec<String> = ctx
                .net
                .users()
                .filter(|u| {
                    u.account()
                        .is_some_and(|a| casefold(a) == casefold(&info.name))
                })
                .map(|u| u.nick().to_string())
                .collect();
            if !online.is_empty() {
                say(ctx, &format!("Logged in now: {}", online.join(" ")));
            }
            if let (true, Some(email)) = (mine, &info.email) {
                say(ctx, &format!("Email: {email}"));
            }
            let _ = asked;
            Ok(Flow::Continue)
        }
        (Wait::Info { asked }, _) => done(ctx, &format!("{asked} is not registered")),
        (Wait::Ghost { nick, recover }, Outcome::Account(Some(name)))
            if casefold(&name) == casefold(&nick) =>
        {
            attempt(ctx, &nick, true);
            ghost(ctx, &nick, recover)
        }
        (Wait::Ghost { nick, .. }, _) => {
            attempt(ctx, &nick, false);
            done(ctx, &format!("Access denied for {nick}"))
        }
        (Wait::Drop { .. }, Outcome::Account(Some(name))) => {
            let key = casefold(&name);
            let users: Vec<_> = ctx
                .net
                .users()
                .filter(|u| u.account().is_some_and(|a| casefold(a) == key))
                .map(|u| u.id)
                .collect();
            for id in users {
                if id == ctx.st.id() {
                    logged_out(ctx)?;
                } else {
                    ctx.apply(SetAccount { id, account: None })?;
                }
            }
            ctx.apply(ForgetAccountMarkers {
                account: name.clone(),
            })?;
            tracing::info!(conn = %ctx.st.id(), account = %name, "account dropped");
            done(ctx, &format!("Account {name} has been dropped"))
        }
        (Wait::Drop { account }, _) => {
            attempt(ctx, &account, false);
            done(ctx, &format!("Invalid account or password for {account}"))
        }
        (Wait::SetPassword, Outcome::Done) => done(ctx, "Your password has been changed"),
        (Wait::Cert { edit }, Outcome::Certs(Some(fps))) => match edit {
            Some(CertEdit::Add(fp)) => done(ctx, &format!("Added certificate fingerprint {fp}")),
            Some(CertEdit::Del(fp)) => done(ctx, &format!("Removed certificate fingerprint {fp}")),
            None => {
                say(ctx, &format!("Certificate fingerprints: {}", fps.len()));
                for fp in fps {
                    say(ctx, &format!("  {fp}"));
                }
                Ok(Flow::Continue)
            }
        },
        (Wait::Cert { .. }, _) => done(ctx, "That fingerprint belongs to another account"),
        (Wait::SetPassword, _) => done(ctx, "Your password could not be changed"),
    }
}
