//! AUTHENTICATE (IRCv3 sasl-3.2): PLAIN, EXTERNAL and SCRAM-SHA-256, before
//! registration and after it (re-authentication). The mechanisms' messages
//! are read and checked in [`crate::sasl`]; account lookups and password
//! checks are effects.

use super::account::logged_in;
use super::{CommandError, Cont, Ctx, Flow};
use crate::effect::{Effect, Outcome, Secret};
use crate::irc::state::cap;
use crate::sasl::{
    Chunks, ClientFirst, MECHANISMS, Mechanism, SaslError, ScramServer, authorized,
    challenge_lines, parse_client_first, parse_plain,
};
use bavard_proto::message::Message;
use bavard_proto::numeric::*;

/// A SASL exchange under way on one connection.
#[derive(Debug)]
pub struct Exchange {
    mechanism: Mechanism,
    chunks: Chunks,
    step: Step,
}

/// Where an exchange stands.
#[derive(Debug)]
enum Step {
    /// Waiting for the client's first response.
    First,
    /// SCRAM: the server-first message was sent; waiting for client-final.
    ScramFinal(Box<ScramServer>),
    /// SCRAM: the proof held and the server's signature was sent; the
    /// client's empty answer completes the login.
    ScramDone(String),
}

pub fn authenticate(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let arg = &*m.params[0];
    let id = ctx.st.id();
    if ctx.st.caps & cap::SASL == 0 {
        return fail(ctx, SaslError::Rejected);
    }
    if arg == "*" {
        ctx.st.set_sasl(None);
        ctx.r.num(ERR_SASLABORTED, &[]);
        return Ok(Flow::Continue);
    }
    let Some(exchange) = ctx.st.sasl_mut() else {
        return start(ctx, arg);
    };
    let response = match exchange.chunks.push(arg) {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(Flow::Continue),
        Err(e) => return fail(ctx, e),
    };
    match (exchange.mechanism, &exchange.step) {
        (Mechanism::Plain, Step::First) => {
            ctx.st.set_sasl(None);
            let plain = match parse_plain(&response) {
                Ok(p) => p,
                Err(e) => return fail(ctx, e),
            };
            let effect = Effect::CheckAccount {
                account: plain.authcid,
                password: Secret(plain.password),
            };
            Ok(Flow::Wait(effect, Cont::SaslAccount { authzid: None }))
        }
        (Mechanism::External, Step::First) => {
            ctx.st.set_sasl(None);
            let Ok(authzid) = String::from_utf8(response) else {
                return fail(ctx, SaslError::Malformed);
            };
            let Some(certfp) = ctx.net.user(id).and_then(|u| u.certfp()) else {
                return fail(ctx, SaslError::Rejected);
            };
            let effect = Effect::AccountByCert {
                certfp: certfp.to_string(),
            };
            let authzid = Some(authzid).filter(|a| !a.is_empty());
            Ok(Flow::Wait(effect, Cont::SaslAccount { authzid }))
        }
        (Mechanism::ScramSha256, Step::First) => match parse_client_first(&response) {
            Ok(first) => {
                let account = first.user.clone();
                let cont = Cont::ScramFirst {
                    first: Box::new(first),
                };
                Ok(Flow::Wait(Effect::ScramLookup { account }, cont))
            }
            Err(e) => fail(ctx, e),
        },
        (_, Step::ScramFinal(server)) => match server.finish(&response) {
            Ok(server_final) => {
                let account = server.account.clone();
                exchange.step = Step::ScramDone(account);
                send(ctx, server_final.as_bytes());
                Ok(Flow::Continue)
            }
            Err(e) => fail(ctx, e),
        },
        (_, Step::ScramDone(account)) => {
            let account = account.clone();
            success(ctx, &account)
        }
    }
}

/// `AUTHENTICATE <mechanism>`: a new exchange.
fn start(ctx: &mut Ctx<'_>, name: &str) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    let user = ctx.net.user(id);
    // Once registered a client may log in again (sasl-3.2's
    // re-authentication); before that, once is enough.
    if !ctx.st.registered() && user.is_some_and(|u| u.account().is_some()) {
        ctx.r.num(ERR_SASLALREADY, &[]);
        return Ok(Flow::Continue);
    }
    let Some(mechanism) = Mechanism::parse(name) else {
        ctx.r.num(RPL_SASLMECHS, &[MECHANISMS]);
        return fail(ctx, SaslError::Rejected);
    };
    if mechanism == Mechanism::External && user.and_then(|u| u.certfp()).is_none() {
        return fail(ctx, SaslError::Rejected);
    }
    ctx.st.set_sasl(Some(Exchange {
        mechanism,
        chunks: Chunks::default(),
        step: Step::First,
    }));
    ctx.r.raw("AUTHENTICATE +");
    Ok(Flow::Continue)
}

/// PLAIN or EXTERNAL, once the account was looked up (and its password
/// checked).
pub fn account_checked(
    ctx: &mut Ctx<'_>,
    authzid: Option<String>,
    outcome: Outcome,
) -> Result<Flow, CommandError> {
    match outcome {
        Outcome::Account(Some(account))
            if authorized(authzid.as_deref().unwrap_or(""), &account).is_ok() =>
        {
            success(ctx, &account)
        }
        Outcome::Failed(why) => {
            tracing::warn!(conn = %ctx.st.id(), error = %why, "SASL: account store unavailable");
            fail(ctx, SaslError::Rejected)
        }
        _ => {
            tracing::info!(conn = %ctx.st.id(), "SASL: failed login");
            fail(ctx, SaslError::Rejected)
        }
    }
}

/// SCRAM, once the account's verifiers were looked up: the server-first
/// message.
pub fn scram_found(
    ctx: &mut Ctx<'_>,
    first: ClientFirst,
    outcome: Outcome,
) -> Result<Flow, CommandError> {
    let Outcome::Scram(Some(start)) = outcome else {
        return fail(ctx, SaslError::Rejected);
    };
    let (server, server_first) = match ScramServer::new(first, *start) {
        Ok(x) => x,
        Err(e) => return fail(ctx, e),
    };
    match ctx.st.sasl_mut() {
        Some(exchange) => exchange.step = Step::ScramFinal(Box::new(server)),
        // Aborted meanwhile: nothing to answer.
        None => return Ok(Flow::Continue),
    }
    send(ctx, server_first.as_bytes());
    Ok(Flow::Continue)
}

/// Sends `data` to the client in `AUTHENTICATE` chunks.
fn send(ctx: &mut Ctx<'_>, data: &[u8]) {
    for line in challenge_lines(data) {
        ctx.r.raw(&line);
    }
}

/// Ends the exchange with 904 (905 for an over-long chunk).
fn fail(ctx: &mut Ctx<'_>, e: SaslError) -> Result<Flow, CommandError> {
    ctx.st.set_sasl(None);
    match e {
        SaslError::ChunkTooLong => ctx.r.num(ERR_SASLTOOLONG, &[]),
        _ => ctx.r.num(ERR_SASLFAIL, &[]),
    }
    Ok(Flow::Continue)
}

/// Logs the connection in: 900 then 903.
fn success(ctx: &mut Ctx<'_>, account: &str) -> Result<Flow, CommandError> {
    ctx.st.set_sasl(None);
    logged_in(ctx, account)?;
    ctx.r.num(RPL_SASLSUCCESS, &[]);
    Ok(Flow::Continue)
}

/// Registration completes while an exchange is under way: it is abandoned
/// (906), as sasl-3.2 asks.
pub fn abandon(ctx: &mut Ctx<'_>) {
    if ctx.st.set_sasl(None).is_some() {
        ctx.r.num(ERR_SASLABORTED, &[]);
    }
}
