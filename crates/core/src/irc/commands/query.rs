//! Queries: WHO, WHOIS, WHOWAS, ISON, USERHOST, MOTD, LUSERS, VERSION, TIME,
//! ADMIN, INFO, HELP.
//!
//! None of these change the hub; they only read it and answer the requester.
//! Visibility follows one rule throughout: a user marked invisible (`+i`), or
//! a secret/private channel, is only revealed to someone sharing a channel
//! with it. The exception is a user named exactly (WHO/WHOIS by nick): knowing
//! the nick already tells that the user exists, so the user is shown, but its
//! channels still follow the rule.

use super::chan::{member_prefix, visible_in};
use super::{COMMANDS, CommandError, Ctx, Flow};
use crate::irc::render::format_time;
use crate::irc::state::cap;
use crate::mask::wildcard_match;
use crate::state::{Channel, User};
use bavard_proto::message::Message;
use bavard_proto::numeric::*;

/// The version string of VERSION and INFO, the same as RPL_YOURHOST's.
const VERSION: &str = concat!("bavard-", env!("CARGO_PKG_VERSION"));

/// Room for the variable part of a reply line: 512 bytes minus the source,
/// numeric, client nick, fixed parameters and separators (generously counted),
/// so list replies (319, 303, 302) never exceed the line limit.
fn room(ctx: &Ctx<'_>, fixed: &[&str]) -> usize {
    let used = ctx.r.server().len()
        + ctx.r.nick.len()
        + fixed.iter().map(|p| p.len() + 1).sum::<usize>()
        + 16;
    512usize.saturating_sub(used).max(64)
}

/// Joins `items` with spaces into lines no longer than `room` bytes.
pub(super) fn pack(items: impl IntoIterator<Item = String>, room: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for it in items {
        if !line.is_empty() && line.len() + 1 + it.len() > room {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&it);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `s` if it can be sent as a middle parameter, else `*`. Replies echo
/// client-supplied masks and nicks before their trailing text; one that is
/// empty, has a space or starts with ':' (possible when the client sent it as
/// a trailing parameter) would shift every following parameter.
pub(super) fn middle(s: &str) -> &str {
    if s.is_empty() || s.contains(' ') || s.starts_with(':') {
        "*"
    } else {
        s
    }
}

/// Whether a `[server]` parameter names this server. A nick also counts: on a
/// single server every user is local, and RFC 2812 lets clients address a
/// query "to the server that user is on" by giving the nick.
fn is_us(ctx: &Ctx<'_>, target: &str) -> bool {
    target.is_empty()
        || wildcard_match(target, ctx.r.server())
        || ctx.net.find_nick(target).is_some_and(|u| u.registered)
}

/// ERR_NOSUCHSERVER unless the optional server parameter `i` names us.
fn check_server(ctx: &Ctx<'_>, m: &Message<'_>, i: usize) -> Result<(), CommandError> {
    match m.param(i) {
        Some(t) if !is_us(ctx, t) => Err(CommandError::Numeric(
            ERR_NOSUCHSERVER,
            vec![middle(t).to_string()],
        )),
        _ => Ok(()),
    }
}

/// Whether the requester may see the real address of `u`: only the user
/// itself and operators, since hosts may one day be cloaked.
fn sees_ip(ctx: &Ctx<'_>, u: &User) -> bool {
    u.id == ctx.st.id() || requester(ctx).is_some_and(|me| me.modes.oper)
}

fn requester<'a>(ctx: &'a Ctx<'_>) -> Option<&'a User> {
    ctx.net.user(ctx.st.id())
}

/// Whether `a` and `b` are in at least one common channel.
fn share_channel(a: &User, b: &User) -> bool {
    a.channels.iter().any(|k| b.channels.contains(k))
}

fn idle_secs(ctx: &Ctx<'_>, u: &User) -> u64 {
    (ctx.now / 1000).saturating_sub(u.last_active.into())
}

/// Human-readable UTC time of a Unix timestamp in seconds.
fn human_time(secs: u64) -> String {
    let mut out = Vec::new();
    format_time(secs.saturating_mul(1000), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------- LUSERS, MOTD

/// RPL_LUSER* replies (also part of the welcome burst).
pub fn send_lusers(ctx: &mut Ctx<'_>) {
    let counts = ctx.net.counts();
    let (users, invisible, opers) = (counts.registered, counts.invisible, counts.opers);
    let unknown = ctx.net.user_count() - users;
    let channels = ctx.net.channel_count();
    let max = ctx.net.max_users.max(users);
    ctx.r.num(
        RPL_LUSERCLIENT,
        &[&format!(
            "There are {} users and {invisible} invisible on 1 servers",
            users - invisible
        )],
    );
    if opers > 0 {
        ctx.r.num(RPL_LUSEROP, &[&opers.to_string()]);
    }
    if unknown > 0 {
        ctx.r.num(RPL_LUSERUNKNOWN, &[&unknown.to_string()]);
    }
    if channels > 0 {
        ctx.r.num(RPL_LUSERCHANNELS, &[&channels.to_string()]);
    }
    ctx.r.num(
        RPL_LUSERME,
        &[&format!("I have {users} clients and 0 servers")],
    );
    ctx.r.num(
        RPL_LOCALUSERS,
        &[
            &users.to_string(),
            &max.to_string(),
            &format!("Current local users {users}, max {max}"),
        ],
    );
    ctx.r.num(
        RPL_GLOBALUSERS,
        &[
            &users.to_string(),
            &max.to_string(),
            &format!("Current global users {users}, max {max}"),
        ],
    );
}

/// The message of the day, or ERR_NOMOTD when none is configured.
pub fn send_motd(ctx: &mut Ctx<'_>) {
    let cfg = ctx.cfg.clone();
    if cfg.motd.is_empty() {
        ctx.r.num(ERR_NOMOTD, &[]);
        return;
    }
    ctx.r.num(
        RPL_MOTDSTART,
        &[&format!("- {} Message of the day - ", cfg.server_name)],
    );
    for line in &cfg.motd {
        ctx.r.num(RPL_MOTD, &[&format!("- {line}")]);
    }
    ctx.r.num(RPL_ENDOFMOTD, &[]);
}

/// `MOTD [server]`.
pub fn motd(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    check_server(ctx, m, 0)?;
    send_motd(ctx);
    Ok(Flow::Continue)
}

/// `LUSERS [mask [server]]`: the mask is meaningless on one server, the
/// server is checked.
pub fn lusers(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    check_server(ctx, m, 1)?;
    send_lusers(ctx);
    Ok(Flow::Continue)
}

// ------------------------------------------------------------------------ WHO

/// One WHOX field letter, in the order replies must list them.
const WHOX_ORDER: &str = "tcuihsnfdlaor";

/// A parsed WHOX request (`%<fields>[,<token>]`).
pub(super) struct Whox {
    /// Requested standard fields, in reply order.
    pub(super) fields: String,
    pub(super) token: String,
}

/// Splits WHO's second parameter into its flags (before `%`) and the WHOX
/// request (after it).
pub(super) fn parse_who_options(opt: &str) -> (&str, Option<Whox>) {
    let Some((flags, rest)) = opt.split_once('%') else {
        return (opt, None);
    };
    let (fields, token) = rest.split_once(',').unwrap_or((rest, ""));
    // Unknown letters are ignored and duplicates collapse, as the spec asks
    // for exactly the requested standard fields in the standard order.
    let fields: String = WHOX_ORDER.chars().filter(|c| fields.contains(*c)).collect();
    // The token is at most three digits; anything else could break the reply
    // framing (spaces, a leading ':'), so it is replaced rather than echoed.
    let token =
        if !token.is_empty() && token.len() <= 3 && token.bytes().all(|b| b.is_ascii_digit()) {
            token.to_string()
        } else {
            "0".to_string()
        };
    (flags, Some(Whox { fields, token }))
}

/// Everything a WHO reply line says about one user.
struct WhoRow {
    channel: String,
    user: String,
    ip: String,
    host: String,
    nick: String,
    flags: String,
    idle: u64,
    realname: String,
    /// The account, `0` when logged out (WHOX `%a`).
    account: String,
}

fn who_row(ctx: &Ctx<'_>, u: &User, channel: &str, prefix: &str) -> WhoRow {
    let mut flags = String::from(if u.away().is_some() { "G" } else { "H" });
    if u.modes.oper {
        flags.push('*');
    }
    if u.modes.bot {
        flags.push('B');
    }
    flags.push_str(prefix);
    WhoRow {
        channel: channel.to_string(),
        user: u.user().to_string(),
        // WHOX asks for a placeholder when the address is withheld.
        ip: if sees_ip(ctx, u) {
            u.host().to_string()
        } else {
            "255.255.255.255".into()
        },
        host: u.host().to_string(),
        nick: u.nick().to_string(),
        flags,
        idle: idle_secs(ctx, u),
        realname: u.realname().to_string(),
        account: u.account().unwrap_or("0").to_string(),
    }
}

fn send_who_row(ctx: &mut Ctx<'_>, row: &WhoRow, whox: Option<&Whox>) {
    let server = ctx.r.server().to_string();
    match whox {
        Some(w) => {
            let mut p: Vec<String> = Vec::with_capacity(w.fields.len());
            for f in w.fields.chars() {
                p.push(match f {
                    't' => w.token.clone(),
                    'c' => row.channel.clone(),
                    'u' => row.user.clone(),
                    'i' => row.ip.clone(),
                    'h' => row.host.clone(),
                    's' => server.clone(),
                    'n' => row.nick.to_string(),
                    'f' => row.flags.clone(),
                    'd' => "0".into(),
                    'l' => row.idle.to_string(),
                    'a' => row.account.clone(),
                    // Channel op levels do not exist here.
                    'o' => "n/a".into(),
                    _ => row.realname.clone(),
                });
            }
            let refs: Vec<&str> = p.iter().map(String::as_str).collect();
            ctx.r.num(RPL_WHOSPCRPL, &refs);
        }
        None => ctx.r.num(
            RPL_WHOREPLY,
            &[
                &row.channel,
                &row.user,
                &row.host,
                &server,
                &row.nick,
                &row.flags,
                &format!("0 {}", row.realname),
            ],
        ),
    }
}

/// Rows for `WHO #channel`: its members the requester may see.
fn who_channel(ctx: &Ctx<'_>, ch: &Channel, opers_only: bool) -> Vec<WhoRow> {
    let multi = ctx.r.caps() & cap::MULTI_PREFIX != 0;
    let is_member = ch.member(ctx.st.id()).is_some();
    if !is_member && (ch.modes.secret || ch.modes.private) {
        return Vec::new();
    }
    ch.members
        .iter()
        .filter_map(|m| {
            let u = ctx.net.user(m.id)?;
            let shown = visible_in(u, is_member) && (!opers_only || u.modes.oper);
            shown.then(|| who_row(ctx, u, &ch.name, member_prefix(m.op, m.voice, multi)))
        })
        .collect()
}

/// Rows for a nick or a mask over nick, user, host, realname and
/// `nick!user@host`.
fn who_mask(ctx: &Ctx<'_>, mask: &str, opers_only: bool) -> Vec<WhoRow> {
    let has_wildcard = mask.contains(['*', '?']);
    // A plain nick is answered even for an invisible user: the requester
    // already knows the nick, and `WHO nick` is how clients look one up.
    if !has_wildcard && let Some(u) = ctx.net.find_nick(mask).filter(|u| u.registered) {
        if opers_only && !u.modes.oper {
            return Vec::new();
        }
        return vec![who_row(ctx, u, "*", "")];
    }
    let me = requester(ctx);
    let everyone = mask.is_empty() || mask == "*" || mask == "0";
    let mut users: Vec<&User> = ctx
        .net
        .users()
        .filter(|u| u.registered && (!opers_only || u.modes.oper))
        .filter(|u| {
            everyone
                || wildcard_match(mask, u.nick())
                || wildcard_match(mask, u.user())
                || wildcard_match(mask, &u.host().to_string())
                || wildcard_match(mask, u.realname())
                || wildcard_match(mask, &u.prefix())
        })
        .filter(|u| {
            !u.modes.invisible || u.id == ctx.st.id() || me.is_some_and(|me| share_channel(me, u))
        })
        .collect();
    // The hub keeps users in a hash map; sort so replies are stable.
    users.sort_by(|a, b| a.nick_key().cmp(b.nick_key()));
    users
        .into_iter()
        .map(|u| who_row(ctx, u, "*", ""))
        .collect()
}

/// `WHO [mask [flags][%fields[,token]]]`.
pub fn who(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let mask = m.param(0).unwrap_or("");
    let (flags, whox) = parse_who_options(m.param(1).unwrap_or(""));
    // `%` with no known field would produce empty 354 lines: answer the
    // classic way instead.
    let whox = whox.filter(|w| !w.fields.is_empty());
    let opers_only = flags.contains('o');
    let rows = match ctx.net.channel(mask) {
        Some(ch) if mask.starts_with('#') => who_channel(ctx, ch, opers_only),
        _ => who_mask(ctx, mask, opers_only),
    };
    for row in &rows {
        send_who_row(ctx, row, whox.as_ref());
    }
    // The end numeric repeats the mask exactly as the client sent it (Modern
    // IRC), unless that would break the line's framing.
    ctx.r.num(RPL_ENDOFWHO, &[middle(mask)]);
    Ok(Flow::Continue)
}

// ---------------------------------------------------------------------- WHOIS

/// Server description used in RPL_WHOISSERVER and RPL_LINKS.
fn server_info(ctx: &Ctx<'_>) -> String {
    ctx.cfg.description.clone()
}

/// `WHOIS [server] nick`: only the first of a comma list is answered
/// (TARGMAX WHOIS:1).
pub fn whois(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let (server, targets) = match m.params.len() {
        0 | 1 => (None, m.param(0).unwrap_or("")),
        _ => (m.param(0), m.param(1).unwrap_or("")),
    };
    if let Some(s) = server
        && !is_us(ctx, s)
    {
        return Err(CommandError::Numeric(
            ERR_NOSUCHSERVER,
            vec![middle(s).to_string()],
        ));
    }
    let Some(target) = targets.split(',').find(|t| !t.is_empty()) else {
        return Err(CommandError::Numeric(ERR_NONICKNAMEGIVEN, vec![]));
    };
    let target = middle(target).to_string();
    if super::nickserv::is_nickserv(&target) {
        let (nick, server) = (super::nickserv::NICK, ctx.r.server().to_string());
        let host = format!("services.{server}");
        ctx.r
            .num(RPL_WHOISUSER, &[nick, nick, &host, "*", "Account services"]);
        ctx.r.num(
            RPL_WHOISSERVER,
            &[nick, &server, &ctx.cfg.description.clone()],
        );
        ctx.r.num(RPL_ENDOFWHOIS, &[nick]);
        return Ok(Flow::Continue);
    }
    let Some(u) = ctx.net.find_nick(&target).filter(|u| u.registered) else {
        ctx.r.num(ERR_NOSUCHNICK, &[&target]);
        ctx.r.num(RPL_ENDOFWHOIS, &[&target]);
        return Ok(Flow::Continue);
    };
    let multi = ctx.r.caps() & cap::MULTI_PREFIX != 0;
    let me = ctx.st.id();
    let server = ctx.r.server().to_string();
    let nick = u.nick().to_string();

    ctx.r.num(
        RPL_WHOISUSER,
        &[&nick, u.user(), &u.host().to_string(), "*", u.realname()],
    );

    // Channels: a secret or private one, or any channel of an invisible
    // user, only when the requester is in it too.
    let chans: Vec<String> = u
        .channels
        .iter()
        .filter_map(|key| {
            let ch = ctx.net.channel(key)?;
            let mine = ch.member(me).is_some();
            if !mine && (ch.modes.secret || ch.modes.private) {
                return None;
            }
            if !visible_in(u, mine) {
                return None;
            }
            let mbr = ch.member(u.id)?;
            Some(format!(
                "{}{}",
                member_prefix(mbr.op, mbr.voice, multi),
                ch.name
            ))
        })
        .collect();
    let r = room(ctx, &[&nick]);
    for line in pack(chans, r) {
        ctx.r.num(RPL_WHOISCHANNELS, &[&nick, &line]);
    }

    ctx.r
        .num(RPL_WHOISSERVER, &[&nick, &server, &server_info(ctx)]);
    if let Some(away) = u.away() {
        ctx.r.num(RPL_AWAY, &[&nick, away]);
    }
    if u.modes.oper {
        ctx.r.num(RPL_WHOISOPERATOR, &[&nick]);
    }
    if let Some(account) = u.account() {
        ctx.r.num(RPL_WHOISACCOUNT, &[&nick, account]);
    }
    if u.modes.bot {
        ctx.r.num(RPL_WHOISBOT, &[&nick]);
    }
    if u.modes.secure {
        ctx.r.num(RPL_WHOISSECURE, &[&nick]);
    }
    if sees_ip(ctx, u) {
        ctx.r
            .num(RPL_WHOISACTUALLY, &[&nick, &u.host().to_string()]);
    }
    ctx.r.num(
        RPL_WHOISIDLE,
        &[&nick, &idle_secs(ctx, u).to_string(), &u.signon.to_string()],
    );
    let md = u.metadata().clone();
    super::metadata::whois(ctx, &nick, &md);
    // The end numeric echoes the nick as the client asked for it.
    ctx.r.num(RPL_ENDOFWHOIS, &[&target]);
    Ok(Flow::Continue)
}

// --------------------------------------------------------------------- WHOWAS

/// `WHOWAS nick [count]`: most recent first; a count of zero or less (or one
/// that is not a number) means every entry.
pub fn whowas(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let given = m.param(0).unwrap_or("");
    let Some(target) = given.split(',').find(|t| !t.is_empty()) else {
        // RFC 2812: every WHOWAS answer ends with RPL_ENDOFWHOWAS, errors too.
        ctx.r.num(ERR_NONICKNAMEGIVEN, &[]);
        ctx.r.num(RPL_ENDOFWHOWAS, &[middle(given)]);
        return Ok(Flow::Continue);
    };
    let count = m
        .param(1)
        .and_then(|c| c.trim().parse::<i64>().ok())
        .filter(|&c| c > 0)
        .map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
    let server = ctx.r.server().to_string();
    let entries: Vec<_> = ctx.net.whowas(target).take(count).cloned().collect();
    if entries.is_empty() {
        ctx.r.num(ERR_WASNOSUCHNICK, &[middle(target)]);
    }
    for w in &entries {
        ctx.r.num(
            RPL_WHOWASUSER,
            &[&w.nick, &w.user, &w.host, "*", &w.realname],
        );
        // The trailing text of 312 in a WHOWAS answer is when the nick left.
        ctx.r
            .num(RPL_WHOISSERVER, &[&w.nick, &server, &human_time(w.at)]);
    }
    ctx.r.num(RPL_ENDOFWHOWAS, &[middle(given)]);
    Ok(Flow::Continue)
}

// ----------------------------------------------------------- ISON, USERHOST

/// Nicks given to ISON/USERHOST, whether as several parameters or as one
/// space-separated trailing parameter.
fn nick_args<'m>(m: &'m Message<'_>) -> impl Iterator<Item = &'m str> {
    m.params.iter().flat_map(|p| p.split_whitespace())
}

/// `ISON nick...`: the ones online, spelled as the server knows them.
pub fn ison(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let mut seen = std::collections::HashSet::new();
    let mut online = Vec::new();
    for n in nick_args(m) {
        if let Some(u) = ctx.net.find_nick(n).filter(|u| u.registered)
            && seen.insert(u.id)
        {
            online.push(u.nick().to_string());
        }
    }
    // One line only (the reply format has no continuation): drop what
    // does not fit rather than exceed the line limit.
    let r = room(ctx, &[]);
    let line = pack(online, r).into_iter().next().unwrap_or_default();
    ctx.r.num(RPL_ISON, &[&line]);
    Ok(Flow::Continue)
}

/// `USERHOST nick{ nick}`: up to five `nick[*]=(+|-)user@host` entries.
pub fn userhost(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let entries: Vec<String> = nick_args(m)
        .take(5)
        .filter_map(|n| {
            let u = ctx.net.find_nick(n).filter(|u| u.registered)?;
            Some(format!(
                "{}{}={}{}@{}",
                u.nick(),
                if u.modes.oper { "*" } else { "" },
                if u.away().is_some() { '-' } else { '+' },
                u.user(),
                u.host()
            ))
        })
        .collect();
    ctx.r.num(RPL_USERHOST, &[&entries.join(" ")]);
    Ok(Flow::Continue)
}

// ------------------------------------------- VERSION, TIME, ADMIN, INFO

/// `VERSION [server]`: RPL_VERSION then the ISUPPORT tokens again, as
/// Modern IRC asks.
pub fn version(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    check_server(ctx, m, 0)?;
    let server = ctx.r.server().to_string();
    ctx.r.num(
        RPL_VERSION,
        &[VERSION, &server, "chat server with line and IRC dialects"],
    );
    let cfg = ctx.cfg.clone();
    let tokens = super::conn::isupport(&cfg);
    for chunk in tokens.chunks(12) {
        let p: Vec<&str> = chunk.iter().map(String::as_str).collect();
        ctx.r.num(RPL_ISUPPORT, &p);
    }
    Ok(Flow::Continue)
}

/// `LINKS [[server] mask]`: the network is this one server, so its only
/// entry is itself (hop count 0), when it matches the mask.
pub fn links(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let mask = match m.params.len() {
        0 => None,
        1 => m.param(0),
        _ => {
            check_server(ctx, m, 0)?;
            m.param(1)
        }
    }
    .filter(|mask| !mask.is_empty());
    let server = ctx.r.server().to_string();
    if mask.is_none_or(|mask| wildcard_match(mask, &server)) {
        let info = format!("0 {}", server_info(ctx));
        ctx.r.num(RPL_LINKS, &[&server, &server, &info]);
    }
    ctx.r.num(RPL_ENDOFLINKS, &[middle(mask.unwrap_or("*"))]);
    Ok(Flow::Continue)
}

/// `TIME [server]`: `391 <server> <unix time> <offset> :<human time>`, the
/// form with a machine-readable timestamp (offset 0: we report UTC).
pub fn time(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    check_server(ctx, m, 0)?;
    let server = ctx.r.server().to_string();
    let secs = ctx.now / 1000;
    ctx.r.num(
        RPL_TIME,
        &[&server, &secs.to_string(), "0", &human_time(secs)],
    );
    Ok(Flow::Continue)
}

/// `ADMIN [server]`: 256-259 from the configuration.
pub fn admin(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    check_server(ctx, m, 0)?;
    let server = ctx.r.server().to_string();
    let a = ctx.cfg.admin.clone();
    ctx.r.num(RPL_ADMINME, &[&server]);
    ctx.r.num(RPL_ADMINLOC1, &[&a.location]);
    ctx.r.num(RPL_ADMINLOC2, &[&a.description]);
    ctx.r.num(RPL_ADMINEMAIL, &[&a.email]);
    Ok(Flow::Continue)
}

/// `INFO [server]`: a few RPL_INFO lines then RPL_ENDOFINFO.
pub fn info(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    check_server(ctx, m, 0)?;
    let lines = [
        VERSION.to_string(),
        "A chat server with one shared hub and two dialects:".to_string(),
        "  line, for netcat and telnet, and IRC with IRCv3 extensions.".to_string(),
        format!("Network: {}", ctx.cfg.network),
        format!("Online since {}", human_time(ctx.net.created)),
    ];
    for l in &lines {
        ctx.r.num(RPL_INFO, &[l]);
    }
    ctx.r.num(RPL_ENDOFINFO, &[]);
    Ok(Flow::Continue)
}

// ----------------------------------------------------------------------- HELP

/// `HELP [topic]`: 704 first line, 705 the body, 706 the last line; 524 when
/// there is no help on the topic.
pub fn help(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let topic = m.param(0).filter(|t| !t.is_empty());
    let Some(topic) = topic else {
        ctx.r.num(RPL_HELPSTART, &["*", "** bavard help **"]);
        ctx.r.num(
            RPL_HELPTXT,
            &["*", "Try HELP <command> for a specific command."],
        );
        ctx.r.num(RPL_HELPTXT, &["*", "Commands:"]);
        let names = COMMANDS.iter().map(|c| c.name.to_string());
        for line in pack(names, 60) {
            ctx.r.num(RPL_HELPTXT, &["*", &format!("  {line}")]);
        }
        ctx.r.num(RPL_ENDOFHELP, &["*", "End of /HELP"]);
        return Ok(Flow::Continue);
    };
    let Some(super::Command {
        name, syntax, help, ..
    }) = super::lookup(topic)
    else {
        return Err(CommandError::Numeric(
            ERR_HELPNOTFOUND,
            vec![middle(topic).to_string()],
        ));
    };
    ctx.r.num(RPL_HELPSTART, &[name, &format!("** {name} **")]);
    ctx.r
        .num(RPL_HELPTXT, &[name, &format!("Syntax: {syntax}")]);
    ctx.r.num(RPL_HELPTXT, &[name, help]);
    ctx.r.num(RPL_ENDOFHELP, &[name, "End of /HELP"]);
    Ok(Flow::Continue)
}
