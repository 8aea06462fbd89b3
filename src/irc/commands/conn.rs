//! Connection registration and keep-alive: CAP, PASS, NICK, USER, PING, PONG, QUIT.

use super::{CommandError, Ctx, Flow};
use crate::hub::{Event, cap};
use crate::irc::message::Message;
use crate::irc::numeric::*;
use crate::irc::{CAPS, IrcState};

/// Longest username kept (the rest is cut, as ident usernames are short).
pub const USERLEN: usize = 16;

fn caps_string(version: u32) -> String {
    CAPS.iter()
        .map(|(name, _, value)| {
            if version >= 302 && !value.is_empty() {
                format!("{name}={value}")
            } else {
                name.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn cap(ctx: &mut Ctx<'_, '_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let sub = m.params[0].to_ascii_uppercase();
    let nick = ctx.nick();
    match sub.as_str() {
        "LS" => {
            if let Some(reg) = &mut ctx.st.registration {
                reg.negotiating = true;
            }
            let v: u32 = m.param(1).and_then(|v| v.parse().ok()).unwrap_or(0);
            if v >= 302 {
                ctx.st.cap_version = v.max(ctx.st.cap_version);
                // CAP LS 302 implies cap-notify.
                let caps = ctx.st.peer.caps() | cap::CAP_NOTIFY;
                ctx.st.peer.set_caps(caps);
                ctx.r.set_caps(caps);
            }
            let list = caps_string(ctx.st.cap_version);
            ctx.r.server_line(&format!("CAP {nick} LS :{list}"));
        }
        "LIST" => {
            let caps = ctx.st.peer.caps();
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
            let mut caps = ctx.st.peer.caps();
            let mut ok = !req.trim().is_empty();
            for item in req.split(' ').filter(|s| !s.is_empty()) {
                let (remove, name) = match item.strip_prefix('-') {
                    Some(n) => (true, n),
                    None => (false, item),
                };
                match CAPS.iter().find(|(n, _, _)| *n == name) {
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
                ctx.st.peer.set_caps(caps);
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
                return Ok(complete_registration(ctx));
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

pub fn pass(ctx: &mut Ctx<'_, '_>, _m: &Message<'_>) -> Result<Flow, CommandError> {
    if ctx.st.registered() {
        return Err(CommandError::Numeric(ERR_ALREADYREGISTERED, vec![]));
    }
    // The password itself was checked by the session before the hub lock.
    Ok(Flow::Continue)
}

pub fn nick(ctx: &mut Ctx<'_, '_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let Some(new) = m.param(0).filter(|n| !n.is_empty()) else {
        return Err(CommandError::Numeric(ERR_NONICKNAMEGIVEN, vec![]));
    };
    let id = ctx.st.id();
    let old_prefix = ctx.hub.set_nick(id, new, ctx.now)?;
    if ctx.st.registered() {
        if let Some(u) = ctx.hub.user(id) {
            if old_prefix != u.prefix() {
                ctx.r.event(&Event::Nick {
                    who: u,
                    old_prefix: &old_prefix,
                    new: u.nick(),
                    time: ctx.now,
                });
                tracing::info!(conn = id, old = %old_prefix, new = %u.nick(), "nick change");
            }
            ctx.r.nick = u.nick().to_string();
        }
        Ok(Flow::Continue)
    } else {
        ctx.r.nick = new.to_string();
        Ok(complete_registration(ctx))
    }
}

pub fn user(ctx: &mut Ctx<'_, '_>, m: &Message<'_>) -> Result<Flow, CommandError> {
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
    Ok(complete_registration(ctx))
}

/// Finishes registration once NICK, USER and CAP negotiation are all done.
pub fn complete_registration(ctx: &mut Ctx<'_, '_>) -> Flow {
    let st: &mut IrcState = ctx.st;
    let Some(reg) = &st.registration else {
        return Flow::Continue;
    };
    if reg.negotiating {
        return Flow::Continue;
    }
    let Some((user, realname)) = &reg.user else {
        return Flow::Continue;
    };
    let Some(u) = ctx.hub.user(st.id()) else {
        return Flow::Close;
    };
    if u.nick().is_empty() {
        return Flow::Continue;
    }
    if !reg.pass_ok {
        ctx.r.num(ERR_PASSWDMISMATCH, &[]);
        let host = u.host();
        ctx.r
            .raw(&format!("ERROR :Closing Link: {host} (Bad Password)"));
        return Flow::Close;
    }
    ctx.hub.register(st.id(), user, realname);
    st.registration = None;
    let host = ctx
        .hub
        .user(st.id())
        .map(|u| u.host().to_string())
        .unwrap_or_default();
    tracing::info!(conn = st.id(), nick = %ctx.r.nick, %host, "client registered");
    welcome(ctx);
    Flow::Continue
}

/// ISUPPORT tokens, truthful to what the server does.
pub fn isupport(cfg: &crate::config::Config) -> Vec<String> {
    let l = &cfg.limits;
    vec![
        format!("AWAYLEN={}", l.away_length),
        "BOT=B".into(),
        "CASEMAPPING=rfc1459".into(),
        format!("CHANLIMIT=#:{}", l.channels_per_user),
        "CHANMODES=beI,k,l,imnpst".into(),
        format!("CHANNELLEN={}", l.channel_length),
        "CHANTYPES=#".into(),
        "ELIST=CMNTU".into(),
        "EXCEPTS=e".into(),
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
        format!(
            "TARGMAX=PRIVMSG:{t},NOTICE:{t},TAGMSG:{t},JOIN:,PART:,KICK:1,WHOIS:1,NAMES:1,LIST:1,MONITOR:,ISON:,USERHOST:5",
            t = l.max_targets
        ),
        format!("TOPICLEN={}", l.topic_length),
        format!("USERLEN={USERLEN}"),
        "UTF8ONLY".into(),
        "WHOX".into(),
    ]
}

/// The welcome burst: 001-005, LUSERS, MOTD.
pub fn welcome(ctx: &mut Ctx<'_, '_>) {
    let Some(u) = ctx.hub.user(ctx.st.id()) else {
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
    crate::irc::render::format_time(ctx.hub.created * 1000, &mut created);
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
            "beIiklmnopstv",
            "beIklov",
        ],
    );
    let tokens = isupport(&cfg);
    for chunk in tokens.chunks(12) {
        let p: Vec<&str> = chunk.iter().map(String::as_str).collect();
        ctx.r.num(RPL_ISUPPORT, &p);
    }
    super::query::send_lusers(ctx);
    super::query::send_motd(ctx);
}

pub fn ping(ctx: &mut Ctx<'_, '_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let token = &m.params[0];
    if token.is_empty() {
        return Err(CommandError::Numeric(ERR_NOORIGIN, vec![]));
    }
    let server = ctx.r.server().to_string();
    ctx.r.server_line(&format!("PONG {server} :{token}"));
    Ok(Flow::Continue)
}

pub fn pong(_ctx: &mut Ctx<'_, '_>, _m: &Message<'_>) -> Result<Flow, CommandError> {
    // Any input resets the keep-alive timer; nothing else to do.
    Ok(Flow::Continue)
}

pub fn quit(ctx: &mut Ctx<'_, '_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let reason = match m.param(0).filter(|r| !r.is_empty()) {
        Some(r) => format!("Quit: {}", crate::hub::truncate_bytes(r, 300)),
        None => "Client Quit".to_string(),
    };
    let host = ctx
        .hub
        .user(ctx.st.id())
        .map(|u| u.host().to_string())
        .unwrap_or_default();
    ctx.st
        .peer
        .out
        .push_final(format!("ERROR :Closing Link: {host} ({reason})\r\n").as_bytes());
    ctx.hub.quit(ctx.st.id(), &reason, ctx.now);
    Ok(Flow::Close)
}
