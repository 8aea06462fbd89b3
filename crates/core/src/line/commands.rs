//! Executing line-dialect commands against the network.

use crate::dialect::Dialect;
use crate::effect::{Effect, Outcome};
use crate::names::ChannelName;
use crate::notify::{Event, MsgKind};
use crate::oper::OperCheck;
use crate::state::changes::{
    Join, Kill, Message, Part, Quit, Register, SetNick, SetTopic, SetUserModes,
};
use crate::state::{ChangeError, UserModes, policy, truncate_bytes};
use bavard_proto::line::Command;

use super::Lx;

/// What a command wants after it ran.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
    /// Run the effect, then pick up at [`Cont`].
    Wait(Effect, Cont),
}

/// Where a command waiting on an effect picks up.
#[derive(Debug, PartialEq, Eq)]
pub enum Cont {
    /// A guest nick was claimed (or not) for a user who just connected;
    /// `tries` candidates were taken already.
    Guest {
        nick: String,
        tries: u32,
    },
    Nick {
        nick: String,
    },
    Oper {
        name: String,
    },
    /// The server read its configuration file again (or could not).
    Rehash,
    /// A channel to move to was founded (or someone was first).
    Join {
        channel: String,
        key: Option<String>,
    },
    /// REGISTER or LOGIN waits on the account store.
    Account(super::account::Wait),
    /// HISTORY, or a join, waits on the history store.
    History {
        channel: String,
        asked: super::history::Asked,
    },
}

const HELP: &[&str] = &[
    "Commands (verbs are case-insensitive):",
    "  MSG <text>              send <text> to your channel",
    "  PM <nick> <text>        send a private message (received as *nick* text)",
    "  NICK <name>             change your nick",
    "  WHO [#channel]          list the users of your (or that) channel",
    "  JOIN <#channel> [key]   move to a channel (created if needed)",
    "  PART                    go back to the default channel",
    "  LIST                    list channels, member counts and topics",
    "  TOPIC [text]            show or set your channel's topic",
    "  HISTORY [count]         the last messages of your channel (20 if no count)",
    "  REGISTER <password>     register your nick as an account, and log in",
    "  LOGIN <account> <pass>  log in to an account (WHO shows nick(account))",
    "  LOGOUT                  log out of your account",
    "  OPER <name> <password>  become a server operator",
    "  KILL <nick> <text>      disconnect a user (operators only)",
    "  REHASH                  read the configuration file again (operators only)",
    "  QUIT [text]             leave, saying <text> to your channel",
    "  HELP                    this list",
];

/// Guest nick candidates tried before falling back to the connection's id.
const GUEST_TRIES: u32 = 1000;

/// Turns a change error into the line dialect's wording.
pub fn error_text(e: &ChangeError) -> String {
    match e {
        ChangeError::MessageTooLong(n) => format!("The message must be less than {n} characters !"),
        ChangeError::NicknameInUse(n) => format!("Nickname {n} is already in use !"),
        ChangeError::ErroneousNickname(n) => format!(
            "Invalid nickname {n}: use letters, digits and -[]\\`_^{{|}}, not starting with a digit or -"
        ),
        ChangeError::NoPrivileges => "Permission denied: you are not an operator (see OPER)".into(),
        ChangeError::NoSuchNick(n) => format!("No such nick: {n}"),
        ChangeError::NoSuchChannel(c) => format!("No such channel: {c}"),
        ChangeError::BadChanName(c) => {
            format!("Invalid channel name {c}: it starts with # and has no spaces or commas")
        }
        ChangeError::CannotSendToChan(c) => format!("You cannot send to {c}"),
        ChangeError::ChanOpPrivsNeeded(c) => format!("You are not a channel operator of {c}"),
        other => {
            let mut s = other.to_string();
            if let Some(first) = s.get(..1) {
                let up = first.to_ascii_uppercase();
                s.replace_range(..1, &up);
            }
            s
        }
    }
}

/// Greets a freshly connected user and asks for a guest nick.
pub fn on_connect(lx: &mut Lx<'_, '_>) -> Flow {
    let welcome = lx.cfg.welcome.clone();
    lx.notice(&welcome);
    next_guest(lx, 0)
}

/// Claims the next free-looking guest nick, `tries` candidates in.
fn next_guest(lx: &mut Lx<'_, '_>, mut tries: u32) -> Flow {
    let nick = loop {
        if tries >= GUEST_TRIES {
            // The guest space is exhausted: use the id.
            break format!("guest{}", lx.id.serial());
        }
        tries += 1;
        let candidate = format!("guest{}", lx.guest());
        if lx.cx.net.find_nick(&candidate).is_none() {
            break candidate;
        }
    };
    let key = crate::names::casefold(&nick);
    Flow::Wait(
        Effect::ClaimNick { key, owner: lx.id },
        Cont::Guest { nick, tries },
    )
}

/// Registers the new user under its guest nick and puts it in the lobby.
fn guest_claimed(lx: &mut Lx<'_, '_>, nick: String, tries: u32, outcome: Outcome) -> Flow {
    let claimed = outcome == Outcome::Claimed(true);
    let nick = match lx.cx.net.validate_nick(&nick) {
        Ok(n) if claimed => n,
        _ if tries < GUEST_TRIES => return next_guest(lx, tries),
        _ => {
            lx.notice("No guest nick is available: try again later");
            return Flow::Close;
        }
    };
    let id = lx.id;
    let name = nick.as_str().to_string();
    let registered = lx.apply(SetNick { id, nick }).and_then(|_| {
        lx.apply(Register {
            id,
            user: "line".into(),
            realname: "line user".into(),
        })
    });
    if let Err(e) = registered {
        lx.notice(&error_text(&e));
        return Flow::Close;
    }
    let host = lx
        .cx
        .net
        .user(id)
        .map(|u| u.host().to_string())
        .unwrap_or_default();
    tracing::info!(conn = %id, nick = %name, %host, "client connected");
    let lobby = lx.cfg.default_channel.clone();
    let joined = lx.cx.net.validate_channel(&lobby).and_then(|channel| {
        lx.apply(Join {
            id,
            channel,
            key: None,
            on_connect: true,
            founder: false,
        })
    });
    match joined {
        Ok(_) => {
            lx.notice(&format!(
                "You are {name}, in {lobby}. Type HELP for the commands."
            ));
            if let Some(flow) = super::history::on_join(lx, &lobby) {
                return flow;
            }
        }
        Err(e) => lx.notice(&error_text(&e)),
    }
    Flow::Continue
}

/// Refuses a chat text over the configured number of characters.
fn check_length(lx: &Lx<'_, '_>, text: &str) -> Result<(), ChangeError> {
    let max = lx.cfg.limits.message_length;
    // Counting characters costs a pass over the text; skip it when even one
    // byte per character fits.
    if text.len() > max && text.chars().count() > max {
        return Err(ChangeError::MessageTooLong(max));
    }
    Ok(())
}

/// Sends `text` to the user's current channel.
fn say(lx: &mut Lx<'_, '_>, channel: &str, text: &str) -> Result<(), ChangeError> {
    check_length(lx, text)?;
    let name = lx
        .cx
        .net
        .channel(channel)
        .map(|c| c.name.to_string())
        .unwrap_or_default();
    lx.apply(Message {
        from: lx.id,
        target: name,
        text: text.to_string(),
        parts: Vec::new(),
        kind: MsgKind::Privmsg,
        client_tags: String::new(),
    })
    .map(|_| ())
}

/// Executes one command.
pub fn handle(lx: &mut Lx<'_, '_>, cmd: Command<'_>) -> Flow {
    let id = lx.id;
    let Some(u) = lx.cx.net.user(id) else {
        return Flow::Close;
    };
    let nick = u.nick().to_string();
    let current = u.current_channel().map(str::to_string);
    let no_channel = "You are in no channel: JOIN one first";
    let result: Result<Flow, ChangeError> = match cmd {
        Command::Empty => Ok(Flow::Continue),
        Command::Msg(text) => match &current {
            Some(ch) => say(lx, ch, text).map(|_| Flow::Continue),
            None => {
                lx.notice(no_channel);
                Ok(Flow::Continue)
            }
        },
        Command::Pm { nick: to, .. } if to.starts_with('#') => {
            Err(ChangeError::NoSuchNick(to.to_string()))
        }
        Command::Pm { nick: to, text } => {
            let sent = lx.apply(Message {
                from: id,
                target: to.to_string(),
                text: text.to_string(),
                parts: Vec::new(),
                kind: MsgKind::Privmsg,
                client_tags: String::new(),
            });
            sent.map(|sent| {
                if let Some(away) = sent.away {
                    lx.notice(&format!("{} is away: {away}", sent.target));
                }
                Flow::Continue
            })
        }
        Command::Nick(new) if new.chars().count() > lx.cfg.limits.nick_length => {
            let max = lx.cfg.limits.nick_length;
            lx.notice(&format!("Invalid nickname {new}: at most {max} characters"));
            Ok(Flow::Continue)
        }
        Command::Nick(new) => nick_change(lx, new),
        Command::Who(None) if current.is_none() => {
            lx.notice(no_channel);
            Ok(Flow::Continue)
        }
        Command::Who(target) => {
            let name = target.map(str::to_string).or(current.clone());
            let net = &*lx.cx.net;
            match name.as_deref().and_then(|n| net.channel(n)) {
                Some(ch) if !ch.modes.secret || ch.member(id).is_some() => {
                    // A user logged in to an account shows it in
                    // parentheses, which no nick contains.
                    let nicks: Vec<String> = ch
                        .members
                        .iter()
                        .filter_map(|m| net.user(m.id))
                        .map(|u| match u.account() {
                            Some(a) => format!("{}({a})", u.nick()),
                            None => u.nick().to_string(),
                        })
                        .collect();
                    let text = nicks.join(" ");
                    lx.notice(&text);
                    Ok(Flow::Continue)
                }
                _ => Err(ChangeError::NoSuchChannel(name.unwrap_or_default())),
            }
        }
        Command::Quit(text) => {
            if !text.trim().is_empty()
                && let Some(ch) = &current
                && let Err(e) = say(lx, ch, text)
            {
                lx.notice(&error_text(&e));
            }
            let reason = if text.trim().is_empty() {
                "Client Quit".to_string()
            } else {
                format!("Quit: {}", truncate_bytes(text.trim(), 300))
            };
            tracing::info!(conn = %id, %nick, "client disconnected");
            lx.apply(Quit { id, reason }).map(|_| Flow::Close)
        }
        Command::Oper { name, password } => match lx.oper.admit(lx.cx.instant) {
            Err(s) => {
                lx.notice(&format!(
                    "Too many failed OPER attempts: try again in {s} s"
                ));
                Ok(Flow::Continue)
            }
            Ok(()) => Ok(Flow::Wait(
                Effect::CheckOper {
                    name: name.to_string(),
                    password: password.to_string(),
                },
                Cont::Oper {
                    name: name.to_string(),
                },
            )),
        },
        Command::Kill { nick: target, text } => {
            let text = if text.is_empty() { "Killed" } else { text };
            let killed = lx.apply(Kill {
                by: id,
                target: target.to_string(),
                reason: text.to_string(),
            });
            killed.map(|_| {
                tracing::info!(conn = %id, killer = %nick, victim = target, "kill");
                Flow::Continue
            })
        }
        Command::Rehash if !lx.cx.net.user(id).is_some_and(|u| u.modes.oper) => {
            Err(ChangeError::NoPrivileges)
        }
        Command::Rehash => Ok(Flow::Wait(Effect::Rehash, Cont::Rehash)),
        Command::Join { channel, key } => join(lx, current.as_deref(), channel, key),
        Command::Part => {
            let lobby = lx.cfg.default_channel.clone();
            if current.as_deref() == Some(crate::names::casefold(&lobby).as_str()) {
                lx.notice(&format!("You are already in {lobby}"));
                Ok(Flow::Continue)
            } else {
                join(lx, current.as_deref(), &lobby, None)
            }
        }
        Command::List => {
            list(lx);
            Ok(Flow::Continue)
        }
        Command::Topic(text) => topic(lx, current.as_deref(), text).map(|_| Flow::Continue),
        Command::History(count) => Ok(super::history::command(lx, current.as_deref(), count)),
        Command::Help => {
            for l in HELP {
                lx.notice(l);
            }
            Ok(Flow::Continue)
        }
        Command::Register(password) => Ok(super::account::register(lx, &nick, password)),
        Command::Login { account, password } => Ok(super::account::login(lx, account, password)),
        Command::Logout => super::account::logout(lx).map(|_| Flow::Continue),
        Command::Usage(u) => {
            lx.notice(&format!("Usage: {u}"));
            Ok(Flow::Continue)
        }
        Command::Invalid => {
            lx.notice("Invalid command !");
            Ok(Flow::Continue)
        }
    };
    finish(lx, result)
}

/// A command's result as a flow, its error told to the user.
fn finish(lx: &mut Lx<'_, '_>, result: Result<Flow, ChangeError>) -> Flow {
    match result {
        Ok(Flow::Continue) if lx.cx.net.user(lx.id).is_none() => Flow::Close,
        Ok(flow) => flow,
        Err(e) => {
            lx.notice(&error_text(&e));
            if lx.cx.net.user(lx.id).is_none() {
                return Flow::Close;
            }
            Flow::Continue
        }
    }
}

/// Picks up a command that waited on an effect.
pub fn resume(lx: &mut Lx<'_, '_>, cont: Cont, outcome: Outcome) -> Flow {
    let result = match cont {
        Cont::Guest { nick, tries } => return guest_claimed(lx, nick, tries, outcome),
        Cont::Nick { nick } => nick_claimed(lx, &nick, outcome),
        Cont::Oper { name } => {
            oper_checked(lx, &name, outcome == Outcome::Verified(true));
            Ok(Flow::Continue)
        }
        Cont::Rehash => {
            match outcome {
                Outcome::Failed(why) => lx.notice(&format!(
                    "Configuration not reloaded, keeping the running one: {why}"
                )),
                _ => lx.notice("Configuration reloaded"),
            }
            Ok(Flow::Continue)
        }
        Cont::Join { channel, key } => join_founded(lx, &channel, key, outcome),
        Cont::Account(wait) => super::account::resume(lx, wait, outcome),
        Cont::History { channel, asked } => {
            Ok(super::history::played(lx, &channel, asked, outcome))
        }
    };
    finish(lx, result)
}

/// Nick protection's grace is over: the user takes a guest nick.
pub fn protect_rename(lx: &mut Lx<'_, '_>) -> Flow {
    let nick = lx.guest_nick();
    lx.notice(&format!(
        "You did not log in in time: your nick is changed to {nick}"
    ));
    let result = nick_change(lx, &nick);
    finish(lx, result)
}

/// NICK: claims the nick in the registry unless it is the user's own.
fn nick_change(lx: &mut Lx<'_, '_>, new: &str) -> Result<Flow, ChangeError> {
    let n = lx.cx.net.validate_nick(new)?;
    let mine = lx
        .cx
        .net
        .user(lx.id)
        .is_some_and(|u| u.nick_key() == n.key());
    if mine {
        return set_nick(lx, new).map(|_| Flow::Continue);
    }
    if lx.cx.net.find_nick(new).is_some() || crate::irc::commands::nickserv::is_nickserv(new) {
        return Err(ChangeError::NicknameInUse(new.to_string()));
    }
    Ok(Flow::Wait(
        Effect::ClaimNick {
            key: n.key().to_string(),
            owner: lx.id,
        },
        Cont::Nick {
            nick: new.to_string(),
        },
    ))
}

fn nick_claimed(lx: &mut Lx<'_, '_>, nick: &str, outcome: Outcome) -> Result<Flow, ChangeError> {
    match outcome {
        Outcome::Claimed(true) => {
            let set = set_nick(lx, nick);
            if set.is_err() {
                // Claimed but not taken: give it back.
                lx.cx.out.later.push(Effect::ReleaseNick {
                    key: crate::names::casefold(nick),
                    owner: lx.id,
                });
            }
            set.map(|_| Flow::Continue)
        }
        Outcome::Failed(why) => {
            lx.notice(&format!("Cannot change nick now: {why}"));
            Ok(Flow::Continue)
        }
        _ => Err(ChangeError::NicknameInUse(nick.to_string())),
    }
}

fn set_nick(lx: &mut Lx<'_, '_>, new: &str) -> Result<(), ChangeError> {
    let n = lx.cx.net.validate_nick(new)?;
    let (old, _) = lx.apply(SetNick { id: lx.id, nick: n })?;
    if old.nick() != new {
        tracing::info!(conn = %lx.id, old = %old.nick(), %new, "nick change");
        lx.notice(&format!("You are now known as {new}"));
    }
    Ok(())
}

fn oper_checked(lx: &mut Lx<'_, '_>, name: &str, granted: bool) {
    let id = lx.id;
    let nick = lx
        .cx
        .net
        .user(id)
        .map(|u| u.nick().to_string())
        .unwrap_or_default();
    if lx.oper.record(granted, lx.cx.instant) == OperCheck::Granted {
        if let Some(u) = lx.cx.net.user(id) {
            let modes = UserModes {
                oper: true,
                ..u.modes
            };
            let _ = lx.apply(SetUserModes { id, modes });
        }
        tracing::info!(conn = %id, %nick, oper = name, "operator login");
        lx.notice("You are now an operator");
    } else {
        tracing::warn!(conn = %id, %nick, oper = name, "failed operator login");
        lx.notice("Operator login failed: wrong name or password");
    }
}

fn list(lx: &mut Lx<'_, '_>) {
    let id = lx.id;
    let mut rows: Vec<(String, usize, String)> = lx
        .cx
        .net
        .channels()
        .filter(|c| !(c.modes.secret || c.modes.private) || c.member(id).is_some())
        .map(|c| {
            (
                c.name.to_string(),
                c.members.len(),
                c.topic.as_ref().map(|t| t.text.clone()).unwrap_or_default(),
            )
        })
        .collect();
    rows.sort();
    lx.notice(&format!("{} channel(s):", rows.len()));
    for (name, n, topic) in rows {
        let users = if n == 1 { "user" } else { "users" };
        lx.notice(format!("{name} ({n} {users}) {topic}").trim_end());
    }
}

fn topic(
    lx: &mut Lx<'_, '_>,
    current: Option<&str>,
    text: Option<&str>,
) -> Result<(), ChangeError> {
    let Some(ch) = current else {
        lx.notice("You are in no channel: JOIN one first");
        return Ok(());
    };
    let (name, topic) = lx
        .cx
        .net
        .channel(ch)
        .map(|c| (c.name.to_string(), c.topic.clone()))
        .unwrap_or_default();
    let Some(text) = text else {
        match topic {
            Some(t) => lx.notice(&format!("Topic for {name}: {}", t.text)),
            None => lx.notice(&format!("No topic is set for {name}")),
        }
        return Ok(());
    };
    let (channel, text, msgid) = lx.apply(SetTopic {
        id: lx.id,
        channel: name,
        text: text.to_string(),
    })?;
    if let Some(u) = lx.cx.net.user(lx.id) {
        // The setter sees its own change as the others do.
        let ev = Event::Topic {
            by: u.source(),
            channel,
            text,
            time: lx.cx.now,
            msgid,
        };
        let mut line = Vec::new();
        super::render::LineDialect.encode(&ev, 0, &mut line);
        lx.cx.out.reply(line);
    }
    Ok(())
}

/// Moves the user to `channel`, founding it first when it does not exist.
/// The move is checked before leaving, so a refused join keeps the user
/// where it was.
fn join(
    lx: &mut Lx<'_, '_>,
    current: Option<&str>,
    channel: &str,
    key: Option<&str>,
) -> Result<Flow, ChangeError> {
    let target = lx.cx.net.validate_channel(channel)?;
    if current == Some(target.key()) {
        // The channel's own spelling, not the one typed.
        let name = lx
            .cx
            .net
            .channel(target.key())
            .map_or_else(|| target.as_str().to_string(), |c| c.name.to_string());
        lx.notice(&format!("You are already in {name}"));
        return Ok(Flow::Continue);
    }
    let net = &*lx.cx.net;
    match (net.channel(target.as_str()), net.user(lx.id)) {
        (Some(ch), Some(u)) => {
            policy::can_join(ch, u, key)?;
            let name = target.as_str().to_string();
            move_to(lx, target, key.map(str::to_string), false)?;
            Ok(super::history::on_join(lx, &name).unwrap_or(Flow::Continue))
        }
        _ => Ok(Flow::Wait(
            Effect::FoundChannel {
                key: target.key().to_string(),
            },
            Cont::Join {
                channel: channel.to_string(),
                key: key.map(str::to_string),
            },
        )),
    }
}

fn join_founded(
    lx: &mut Lx<'_, '_>,
    channel: &str,
    key: Option<String>,
    outcome: Outcome,
) -> Result<Flow, ChangeError> {
    if let Outcome::Failed(why) = outcome {
        lx.notice(&format!("Cannot join {channel} now: {why}"));
        return Ok(Flow::Continue);
    }
    let founder = outcome == Outcome::Claimed(true);
    let target = lx.cx.net.validate_channel(channel)?;
    let ch_key = target.key().to_string();
    let moved = move_to(lx, target, key, founder);
    if moved.is_err() && founder {
        lx.cx.out.later.push(Effect::DropChannel { key: ch_key });
    }
    moved?;
    // A channel founded again finds the history it had.
    Ok(super::history::on_join(lx, channel).unwrap_or(Flow::Continue))
}

/// Leaves the current channel for `target` and greets the user there.
fn move_to(
    lx: &mut Lx<'_, '_>,
    target: ChannelName,
    key: Option<String>,
    founder: bool,
) -> Result<(), ChangeError> {
    let id = lx.id;
    let current = lx
        .cx
        .net
        .user(id)
        .and_then(|u| u.current_channel().map(str::to_string));
    if let Some(old) = current {
        let channel = lx
            .cx
            .net
            .channel(&old)
            .map(|c| c.name.to_string())
            .unwrap_or_default();
        lx.apply(Part {
            id,
            channel,
            reason: String::new(),
        })?;
    }
    let name = target.as_str().to_string();
    let joined = lx.apply(Join {
        id,
        channel: target,
        key,
        on_connect: false,
        founder,
    });
    if let Err(e) = joined {
        // Nobody can fill the channel between the check and the join on
        // one node; another node can: fall back to the lobby.
        if let Ok(lobby) = lx.cx.net.validate_channel(&lx.cfg.default_channel) {
            let _ = lx.apply(Join {
                id,
                channel: lobby,
                key: None,
                on_connect: false,
                founder: false,
            });
        }
        return Err(e);
    }
    tracing::debug!(conn = %id, channel = %name, "join");
    let Some(ch) = lx.cx.net.channel(&name) else {
        return Ok(());
    };
    let name = ch.name.clone();
    let topic = ch.topic.as_ref().map(|t| t.text.clone());
    let members: Vec<String> = ch
        .members
        .iter()
        .filter_map(|m| lx.cx.net.user(m.id).map(|u| u.nick().to_string()))
        .collect();
    lx.notice(&format!("You joined {name}"));
    match topic {
        Some(t) => lx.notice(&format!("Topic for {name}: {t}")),
        None => lx.notice(&format!("No topic is set for {name}")),
    }
    lx.notice(&format!("Members of {name}: {}", members.join(" ")));
    Ok(())
}
