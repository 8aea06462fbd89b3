//! AUTHENTICATE (IRCv3 sasl-3.2): PLAIN, EXTERNAL and SCRAM-SHA-256, before
//! registration and after it (re-authentication). The mechanisms' messages
//! are read and checked in [`crate::sasl`]; account lookups and password
//! checks are effects.

use super::account::logged_in;
use super::nickserv::{attempt, throttled};
use super::{CommandError, Cont, Ctx, Flow};
use crate::effect::{Effect, Outcome, Secret};
use crate::irc::state::cap;
use crate::sasl::{
    Chunks, ClientFirst, MECHANISMS, Mechanism, SaslError, ScramServer, authorized,
    challenge_lines, parse_client_first, parse_plain,
};
use crate::throttle::Subject;
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
            if let Some(text) = throttled(ctx, &plain.authcid) {
                ctx.st.set_sasl(None);
                ctx.r.num_text(ERR_SASLFAIL, &[], &text);
                return Ok(Flow::Continue);
            }
            let tried = Some(Tried::Password(plain.authcid.clone()));
            let effect = Effect::CheckAccount {
                account: plain.authcid,
                password: Secret(plain.password),
            };
            Ok(Flow::Wait(
                effect,
                Cont::SaslAccount {
                    authzid: None,
                    tried,
                },
            ))
        }
        (Mechanism::External, Step::First) => {
            ctx.st.set_sasl(None);
            let Ok(authzid) = String::from_utf8(response) else {
                return fail(ctx, SaslError::Malformed);
            };
            let Some(certfp) = ctx.net.user(id).and_then(|u| u.certfp()) else {
                return fail(ctx, SaslError::Rejected);
            };
            let certfp = certfp.to_string();
            // A certificate no account knows is a failed login like a
            // wrong password: counted per certificate and per address.
            if let Some(text) = throttled(ctx, Subject::Certificate(&certfp)) {
                ctx.r.num_text(ERR_SASLFAIL, &[], &text);
                return Ok(Flow::Continue);
            }
            let effect = Effect::AccountByCert {
                certfp: certfp.clone(),
            };
            let authzid = Some(authzid).filter(|a| !a.is_empty());
            let tried = Some(Tried::Certificate(certfp));
            Ok(Flow::Wait(effect, Cont::SaslAccount { authzid, tried }))
        }
        (Mechanism::ScramSha256, Step::First) => match parse_client_first(&response) {
            Ok(first) => {
                let account = first.user.clone();
                if let Some(text) = throttled(ctx, &account) {
                    ctx.st.set_sasl(None);
                    ctx.r.num_text(ERR_SASLFAIL, &[], &text);
                    return Ok(Flow::Continue);
                }
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
            Err(e) => {
                let account = server.account.clone();
                attempt(ctx, &account, false);
                fail(ctx, e)
            }
        },
        (_, Step::ScramDone(account)) => {
            let account = account.clone();
            attempt(ctx, &account, true);
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

/// What a PLAIN or EXTERNAL login tried, counted by the failed-login
/// throttle.
#[derive(Debug)]
pub enum Tried {
    /// PLAIN: the account a password was given for.
    Password(String),
    /// EXTERNAL: the client certificate's fingerprint.
    Certificate(String),
}

/// PLAIN or EXTERNAL, once the account was looked up (and its password
/// checked).
pub fn account_checked(
    ctx: &mut Ctx<'_>,
    authzid: Option<String>,
    tried: Option<Tried>,
    outcome: Outcome,
) -> Result<Flow, CommandError> {
    if let Some(tried) = &tried {
        let ok = matches!(&outcome, Outcome::Account(Some(a))
            if authorized(authzid.as_deref().unwrap_or(""), a).is_ok());
        let subject = match tried {
            Tried::Password(account) => Subject::Account(account),
            Tried::Certificate(fp) => Subject::Certificate(fp),
        };
        attempt(ctx, subject, ok);
    }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use crate::effect::{Effect, Outcome};
    use crate::ids::ConnId;
    use crate::irc::IrcSession;
    use crate::session::{Cx, Output, Outputs, Session, Step};
    use crate::state::changes::Connect;
    use crate::{CoreConfig, Network};

    /// One IRC session on a network of its own, driven line by line.
    struct Client {
        net: Network,
        s: IrcSession,
    }

    impl Client {
        fn new(certfp: Option<&str>) -> Client {
            let cfg = Arc::new(CoreConfig::default());
            let mut net = Network::new(cfg.clone(), 0);
            let id = ConnId::new(0, 1);
            let ip = "127.0.0.1".parse().expect("ip");
            let connect = Connect {
                id,
                ip,
                secure: certfp.is_some(),
                certfp: certfp.map(str::to_string),
            };
            net.apply(connect, &mut Outputs::default(), 0)
                .expect("connect");
            let s = IrcSession::new(id, cfg, ip, Instant::now());
            Client { net, s }
        }

        /// Runs `f` on the session: what it answered, and what it waits on.
        fn call(
            &mut self,
            f: impl FnOnce(&mut IrcSession, &mut Cx<'_>) -> Step,
        ) -> (String, Option<Effect>) {
            let mut out = Outputs::default();
            let mut cx = Cx {
                net: &mut self.net,
                out: &mut out,
                now: 0,
                instant: Instant::now(),
            };
            let step = f(&mut self.s, &mut cx);
            let text = out
                .items
                .iter()
                .filter_map(|o| match o {
                    Output::Reply(b) => Some(String::from_utf8_lossy(b).into_owned()),
                    _ => None,
                })
                .collect();
            let effect = match step {
                Step::Wait(e) => Some(e),
                _ => None,
            };
            (text, effect)
        }

        fn line(&mut self, line: &str) -> (String, Option<Effect>) {
            self.call(|s, cx| s.line(cx, line.as_bytes()))
        }

        fn resume(&mut self, o: Outcome) -> String {
            self.call(|s, cx| s.resume(cx, o)).0
        }
    }

    #[test]
    fn external_logs_in_by_certificate() {
        let mut c = Client::new(Some("ab12"));
        c.line("CAP REQ sasl");
        assert_eq!(c.line("AUTHENTICATE EXTERNAL").0, "AUTHENTICATE +\r\n");
        let (_, effect) = c.line("AUTHENTICATE +");
        assert_eq!(
            effect,
            Some(Effect::AccountByCert {
                certfp: "ab12".into()
            })
        );
        let text = c.resume(Outcome::Account(Some("alice".into())));
        assert!(text.contains(" 900 * *!*@127.0.0.1 alice :"), "{text}");
        assert!(text.contains(" 903 * :"), "{text}");
        assert_eq!(
            c.net.user(ConnId::new(0, 1)).and_then(|u| u.account()),
            Some("alice")
        );

        // An authorization identity other than the account, or no account.
        for (authzid, found) in [("Ym9i", Some("alice")), ("+", None)] {
            let mut c = Client::new(Some("ab12"));
            c.line("CAP REQ sasl");
            c.line("AUTHENTICATE EXTERNAL");
            c.line(&format!("AUTHENTICATE {authzid}"));
            let text = c.resume(Outcome::Account(found.map(str::to_string)));
            assert!(text.contains(" 904 "), "{text}");
        }
        // A store that fails: 904 too.
        let mut c = Client::new(Some("ab12"));
        c.line("CAP REQ sasl");
        c.line("AUTHENTICATE EXTERNAL");
        c.line("AUTHENTICATE +");
        assert!(c.resume(Outcome::Failed("down".into())).contains(" 904 "));
    }

    /// EXTERNAL failures count like wrong passwords: past
    /// `accounts.login_failures` the certificate is refused without a
    /// lookup, and so is PLAIN from the same address.
    #[test]
    fn external_failures_are_throttled() {
        let mut c = Client::new(Some("ab12"));
        c.line("CAP REQ sasl");
        let limit = CoreConfig::default().accounts.login_failures;
        for _ in 0..limit {
            c.line("AUTHENTICATE EXTERNAL");
            let (_, effect) = c.line("AUTHENTICATE +");
            assert!(effect.is_some(), "looked up while under the limit");
            assert!(c.resume(Outcome::Account(None)).contains(" 904 "));
        }
        c.line("AUTHENTICATE EXTERNAL");
        let (text, effect) = c.line("AUTHENTICATE +");
        assert_eq!(effect, None, "no lookup once throttled");
        assert!(
            text.contains(" 904 * :Too many failed attempts, try again in "),
            "{text}"
        );
        c.line("AUTHENTICATE PLAIN");
        let (text, effect) = c.line("AUTHENTICATE AGppbGxlcwBzZXNhbWU=");
        assert_eq!(effect, None);
        assert!(text.contains("Too many failed attempts"), "{text}");

        // A certificate whose account does not match the authorization
        // identity is a failure too; a success clears the certificate.
        let mut c = Client::new(Some("cd34"));
        c.line("CAP REQ sasl");
        for _ in 0..limit - 1 {
            c.line("AUTHENTICATE EXTERNAL");
            c.line("AUTHENTICATE Ym9i");
            assert!(
                c.resume(Outcome::Account(Some("alice".into())))
                    .contains(" 904 ")
            );
        }
        c.line("AUTHENTICATE EXTERNAL");
        c.line("AUTHENTICATE +");
        assert!(
            c.resume(Outcome::Account(Some("alice".into())))
                .contains(" 903 ")
        );
        let account = c.net.logins.check(
            crate::throttle::Subject::Certificate("cd34"),
            "10.9.9.9".parse().unwrap(),
            0,
        );
        assert_eq!(account, Ok(()));
    }

    #[test]
    fn plain_waits_for_the_check_and_never_shows_the_password() {
        let mut c = Client::new(None);
        c.line("CAP REQ sasl");
        c.line("AUTHENTICATE PLAIN");
        // "\0jilles\0sesame"
        let (text, effect) = c.line("AUTHENTICATE AGppbGxlcwBzZXNhbWU=");
        assert_eq!(text, "");
        let effect = effect.expect("waits");
        assert!(!format!("{effect:?}").contains("sesame"), "{effect:?}");
        let text = c.resume(Outcome::Account(None));
        assert!(text.contains(" 904 "), "{text}");
        // The exchange is over: a new mechanism may start.
        assert_eq!(c.line("AUTHENTICATE PLAIN").0, "AUTHENTICATE +\r\n");
        c.line("AUTHENTICATE AGppbGxlcwBzZXNhbWU=");
        let text = c.resume(Outcome::Account(Some("jilles".into())));
        assert!(text.contains(" 900 ") && text.contains(" 903 "), "{text}");
    }

    #[test]
    fn scram_for_an_account_without_verifiers_fails() {
        let mut c = Client::new(None);
        c.line("CAP REQ sasl");
        c.line("AUTHENTICATE SCRAM-SHA-256");
        // "n,,n=user,r=abc"
        let (_, effect) = c.line("AUTHENTICATE biwsbj11c2VyLHI9YWJj");
        assert_eq!(
            effect,
            Some(Effect::ScramLookup {
                account: "user".into()
            })
        );
        assert!(c.resume(Outcome::Scram(None)).contains(" 904 "));
    }
}
