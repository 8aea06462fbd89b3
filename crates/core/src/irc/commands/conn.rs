//! Connection registration and keep-alive: CAP, PASS, NICK, USER, PING, PONG, QUIT.

use super::{CommandError, Cont, Ctx, Flow};
use crate::config::Registration;
use crate::effect::{Effect, Outcome};
use crate::irc::state::{CAPS, IrcState, cap};
use crate::names::Nickname;
use crate::notify::Event;
use crate::state::changes::{Quit, Register, SetNick};
use crate::state::{ChangeError, truncate_bytes};
use bavard_proto::message::Message;
use bavard_proto::numeric::*;

/// Longest username kept (the rest is cut, as ident usernames are short).
pub const USERLEN: usize = 16;

/// Whether the capability with `bit` is offered under `cfg`: history only
/// when some is kept.
fn offered(bit: u32, cfg: &crate::config::CoreConfig) -> bool {
    match bit {
        cap::CHATHISTORY | cap::EVENT_PLAYBACK => cfg.limits.history > 0,
        cap::ACCOUNT_REGISTRATION => cfg.accounts.registration == Registration::Open,
        _ => true,
    }
}

fn caps_string(version: u16, cfg: &crate::config::CoreConfig) -> String {
    CAPS.iter()
        .filter(|&&(_, bit, _)| offered(bit, cfg))
        .map(|&(name, bit, value)| {
            let value = match bit {
                cap::METADATA => super::metadata::cap_value(cfg),
                cap::ACCOUNT_REGISTRATION => super::account::cap_value(cfg),
                _ => value.to_string(),
            };
            if version >= 302 && !value.is_empty() {
                format!("{name}={value}")
            } else {
                name.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn cap(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let sub = m.params[0].to_ascii_uppercase();
    let nick = ctx.nick();
    match sub.as_str() {
        "LS" => {
            if let Some(reg) = &mut ctx.st.registration {
                reg.negotiating = true;
            }
            let v: u16 = m.param(1).and_then(|v| v.parse().ok()).unwrap_or(0);
            if v >= 302 {
                ctx.st.cap_version = v.max(ctx.st.cap_version);
                // CAP LS 302 implies cap-notify.
                ctx.st.caps |= cap::CAP_NOTIFY;
                ctx.r.set_caps(ctx.st.caps);
            }
            let list = caps_string(ctx.st.cap_version, &ctx.cfg);
            ctx.r.server_line(&format!("CAP {nick} LS :{list}"));
        }
        "LIST" => {
            let caps = ctx.st.caps;
            let on: Vec<&str> = CAPS
                .iter()
                .filter(|(_, bit, _)| caps & bit != 0)
                .map(|(n, _, _)| *n)
                .collect();
            ctx.r
                .server_line(&format!("CAP {nick} LIST :{}", on.join(" ")));
        }
        "REQ" => {
            if let Some(reg) = &mut ctx.st.registration {
                reg.negotiating = true;
            }
            let req = m.param(1).unwrap_or("");
            let mut caps = ctx.st.caps;
            let mut ok = !req.trim().is_empty();
            for item in req.split(' ').filter(|s| !s.is_empty()) {
                let (remove, name) = match item.strip_prefix('-') {
                    Some(n) => (true, n),
                    None => (false, item),
                };
                let known = CAPS
                    .iter()
                    .find(|&&(n, bit, _)| n == name && offered(bit, &ctx.cfg));
                match known {
                    // cap-notify cannot be turned off once LS 302 enabled it.
                    Some((_, bit, _))
                        if remove && *bit == cap::CAP_NOTIFY && ctx.st.cap_version >= 302 =>
                    {
                        ok = false
                    }
                    Some((_, bit, _)) if remove => caps &= !bit,
                    Some((_, bit, _)) => caps |= bit,
                    None => ok = false,
                }
            }
            if ok {
                ctx.st.caps = caps;
                ctx.r.set_caps(caps);
                ctx.r
                    .server_line(&format!("CAP {nick} ACK :{}", req.trim()));
            } else {
                ctx.r
                    .server_line(&format!("CAP {nick} NAK :{}", req.trim()));
            }
        }
        "END" => {
            if let Some(reg) = &mut ctx.st.registration {
                reg.negotiating = false;
                return complete_registration(ctx);
            }
        }
        _ => ctx
            .r
            .num_text(ERR_INVALIDCAPCMD, &[&m.params[0]], "Invalid CAP command"),
    }
    Ok(Flow::Continue)
}

const ERR_INVALIDCAPCMD: Numeric = Numeric {
    code: 410,
    text: "",
};

pub fn pass(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let Some(reg) = &mut ctx.st.registration else {
        return Err(CommandError::Numeric(ERR_ALREADYREGISTERED, vec![]));
    };
    if !ctx.cfg.password_required || reg.pass_checked {
        return Ok(Flow::Continue);
    }
    reg.pass_checked = true;
    let password = m.params[0].to_string();
    Ok(Flow::Wait(
        Effect::CheckServerPassword { password },
        Cont::Pass,
    ))
}

/// PASS, once the server checked the password.
pub fn pass_checked(ctx: &mut Ctx<'_>, outcome: Outcome) -> Result<Flow, CommandError> {
    if let Some(reg) = &mut ctx.st.registration {
        reg.pass_ok = outcome == Outcome::Verified(true);
    }
    Ok(Flow::Continue)
}

pub fn nick(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let Some(new) = m.param(0).filter(|n| !n.is_empty()) else {
        return Err(CommandError::Numeric(ERR_NONICKNAMEGIVEN, vec![]));
    };
    let n = ctx.net.validate_nick(new)?;
    if let Some(reg) = &mut ctx.st.registration {
        reg.wanted_nick = Some(new.to_string());
    }
    let id = ctx.st.id();
    let mine = ctx.net.user(id).is_some_and(|u| u.nick_key() == n.key());
    if mine {
        // The user's own nick, maybe in another case: nothing to claim.
        return set_nick(ctx, n);
    }
    if ctx.net.find_nick(new).is_some() || super::nickserv::is_nickserv(new) {
        return Err(ChangeError::NicknameInUse(new.to_string()).into());
    }
    Ok(Flow::Wait(
        Effect::ClaimNick {
            key: n.key().to_string(),
            owner: id,
        },
        Cont::Nick {
            nick: new.to_string(),
        },
    ))
}

/// NICK, once the registry answered the claim.
pub fn nick_claimed(ctx: &mut Ctx<'_>, nick: &str, outcome: Outcome) -> Result<Flow, CommandError> {
    match outcome {
        Outcome::Claimed(true) => {
            let n = ctx.net.validate_nick(nick)?;
            let key = n.key().to_string();
            let set = set_nick(ctx, n);
            if set.is_err() {
                // Claimed but not taken: give it back.
                ctx.out.later.push(Effect::ReleaseNick {
                    key,
                    owner: ctx.st.id(),
                });
            }
            set
        }
        Outcome::Failed(why) => {
            ctx.r
                .standard("FAIL", "NICK", "TEMPORARILY_UNAVAILABLE", &[nick], &why);
            Ok(Flow::Continue)
        }
        _ => Err(ChangeError::NicknameInUse(nick.to_string()).into()),
    }
}

/// Takes the nick (claimed, or the user's own) and tells the user.
fn set_nick(ctx: &mut Ctx<'_>, n: Nickname) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    let new = n.as_str().to_string();
    let (old, msgid) = ctx.apply(SetNick { id, nick: n })?;
    if ctx.st.registered() {
        if old.nick() != new {
            ctx.r.event(&Event::Nick {
                who: old.clone(),
                new: new.clone(),
                time: ctx.now,
                msgid,
            });
            tracing::info!(conn = %id, old = %old.nick(), %new, "nick change");
        }
        ctx.r.nick = new;
        Ok(Flow::Continue)
    } else {
        ctx.r.nick = new;
        complete_registration(ctx)
    }
}

pub fn user(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    if ctx.st.registered() {
        return Err(CommandError::Numeric(ERR_ALREADYREGISTERED, vec![]));
    }
    let raw = &*m.params[0];
    let clean: String = raw
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '@' | '!' | ':'))
        .take(USERLEN - 1)
        .collect();
    // Modern IRC: an empty username or realname is a missing parameter.
    if raw.is_empty() || m.params[3].is_empty() {
        return Err(CommandError::NeedMoreParams);
    }
    if clean.is_empty() {
        // Nothing usable is left (e.g. only emoji): say so, so the client can
        // send another USER instead of waiting for a welcome that never comes.
        return Err(CommandError::Numeric(ERR_INVALIDUSERNAME, vec![]));
    }
    // No ident lookup is done, so the username is marked unverified with '~'.
    if let Some(reg) = &mut ctx.st.registration {
        reg.user = Some((format!("~{clean}"), m.params[3].to_string()));
    }
    complete_registration(ctx)
}

/// Finishes registration once NICK, USER and CAP negotiation are all done.
pub fn complete_registration(ctx: &mut Ctx<'_>) -> Result<Flow, CommandError> {
    let st: &mut IrcState = ctx.st;
    let Some(reg) = &st.registration else {
        return Ok(Flow::Continue);
    };
    if reg.negotiating {
        return Ok(Flow::Continue);
    }
    let Some((user, realname)) = reg.user.clone() else {
        return Ok(Flow::Continue);
    };
    let Some(u) = ctx.net.user(st.id()) else {
        return Ok(Flow::Close);
    };
    if u.nick().is_empty() {
        return Ok(Flow::Continue);
    }
    if !reg.pass_ok {
        ctx.r.num(ERR_PASSWDMISMATCH, &[]);
        let host = u.host();
        ctx.r
            .raw(&format!("ERROR :Closing Link: {host} (Bad Password)"));
        return Ok(Flow::Close);
    }
    let id = st.id();
    super::sasl::abandon(ctx);
    ctx.apply(Register { id, user, realname })?;
    ctx.st.registration = None;
    let host = ctx
        .net
        .user(id)
        .map(|u| u.host().to_string())
        .unwrap_or_default();
    tracing::info!(conn = %id, nick = %ctx.r.nick, %host, "client registered");
    welcome(ctx);
    Ok(Flow::Continue)
}

/// ISUPPORT tokens, truthful to what the server does.
pub fn isupport(cfg: &crate::config::CoreConfig) -> Vec<String> {
    let l = &cfg.limits;
    let mut tokens = vec![
        format!("AWAYLEN={}", l.away_length),
        "BOT=B".into(),
        "CASEMAPPING=rfc1459".into(),
        format!("CHANLIMIT=#:{}", l.channels_per_user),
        "ACCOUNTEXTBAN=a".into(),
        "CHANMODES=beI,k,l,CMRWimnpst".into(),
        format!("CHANNELLEN={}", l.channel_length),
        "CHANTYPES=#".into(),
        "ELIST=CMNTU".into(),
        "EXCEPTS=e".into(),
        // Extended bans without a prefix character: `a:` matches an
        // account, `m:` mutes.
        "EXTBAN=,am".into(),
        "INVEX=I".into(),
        format!("KICKLEN={}", l.kick_length),
        format!("MAXLIST=beI:{}", l.list_entries),
        format!("MAXTARGETS={}", l.max_targets),
        "MODES=4".into(),
        format!("MONITOR={}", l.monitor),
        format!("NETWORK={}", cfg.network),
        format!("NICKLEN={}", l.nick_length),
        "PREFIX=(ov)@+".into(),
        "SAFELIST".into(),
        "STATUSMSG=@+".into(),
        format!(
            "TARGMAX=PRIVMSG:{t},NOTICE:{t},TAGMSG:{t},JOIN:,PART:,KICK:{t},WHOIS:1,NAMES:{t},LIST:1,MONITOR:,ISON:,USERHOST:5",
            t = l.max_targets
        ),
        format!("TOPICLEN={}", l.topic_length),
        format!("USERLEN={USERLEN}"),
        "UTF8ONLY".into(),
        "WHOX".into(),
    ];
    if l.history > 0 {
        // draft/chathistory: the most one request returns (all that is
        // kept; 0 would mean no limit), and how messages are named.
        tokens.push(format!("CHATHISTORY={}", l.history));
        // The draft specification's name, which some clients still look for.
        tokens.push(format!("draft/CHATHISTORY={}", l.history));
        tokens.push("MSGREFTYPES=msgid,timestamp".into());
        tokens.sort();
    }
    tokens
}

/// The welcome burst: 001-005, LUSERS, MOTD.
pub fn welcome(ctx: &mut Ctx<'_>) {
    let Some(u) = ctx.net.user(ctx.st.id()) else {
        return;
    };
    let prefix = u.prefix();
    let cfg = ctx.cfg.clone();
    let version = concat!("bavard-", env!("CARGO_PKG_VERSION"));
    ctx.r.num(
        RPL_WELCOME,
        &[&format!(
            "Welcome to the {} IRC Network {prefix}",
            cfg.network
        )],
    );
    ctx.r.num(
        RPL_YOURHOST,
        &[&format!(
            "Your host is {}, running version {version}",
            cfg.server_name
        )],
    );
    let mut created = Vec::new();
    crate::irc::render::format_time(ctx.net.created * 1000, &mut created);
    ctx.r.num(
        RPL_CREATED,
        &[&format!(
            "This server was created {}",
            String::from_utf8_lossy(&created)
        )],
    );
    ctx.r.num(
        RPL_MYINFO,
        &[
            &cfg.server_name,
            version,
            "BiorwZ",
            "CMRbeIiklmnopstv",
            "beIklov",
        ],
    );
    let tokens = isupport(&cfg);
    for chunk in tokens.chunks(12) {
        let p: Vec<&str> = chunk.iter().map(String::as_str).collect();
        ctx.r.num(RPL_ISUPPORT, &p);
    }
    super::query::send_lusers(ctx);
    super::metadata::registered(ctx);
    super::query::send_motd(ctx);
}

pub fn ping(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let token = &m.params[0];
    if token.is_empty() {
        return Err(CommandError::Numeric(ERR_NOORIGIN, vec![]));
    }
    let server = ctx.r.server().to_string();
    ctx.r.server_line(&format!("PONG {server} :{token}"));
    Ok(Flow::Continue)
}

pub fn pong(_ctx: &mut Ctx<'_>, _m: &Message<'_>) -> Result<Flow, CommandError> {
    // Any input resets the keep-alive timer; nothing else to do.
    Ok(Flow::Continue)
}

pub fn quit(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let reason = match m.param(0).filter(|r| !r.is_empty()) {
        Some(r) => format!("Quit: {}", truncate_bytes(r, 300)),
        None => "Client Quit".to_string(),
    };
    let id = ctx.st.id();
    let host = ctx
        .net
        .user(id)
        .map(|u| u.host().to_string())
        .unwrap_or_default();
    ctx.out
        .final_words(format!("ERROR :Closing Link: {host} ({reason})\r\n").into_bytes());
    ctx.apply(Quit { id, reason })?;
    Ok(Flow::Close)
}
