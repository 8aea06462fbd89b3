//! The `line` dialect: the lab's netcat-friendly protocol, made correct.
//!
//! One command per `\n`-terminated line (a trailing `\r` is dropped), verbs
//! case-insensitive, server lines prefixed `[server] `. See
//! `docs/line-protocol.md` for the specification.

mod render;

pub use render::LINE;

use crate::hub::{ConnId, Hub, HubError, Millis, MsgKind};
use crate::oper::OperCheck;
pub use bavard_proto::line::{Command, parse};

/// Whether the connection goes on after a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
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
    "  OPER <name> <password>  become a server operator",
    "  KILL <nick> <text>      disconnect a user (operators only)",
    "  QUIT [text]             leave, saying <text> to your channel",
    "  HELP                    this list",
];

/// Refuses a chat text over the configured number of characters.
fn check_length(hub: &Hub, text: &str) -> Result<(), HubError> {
    let max = hub.cfg.limits.message_length;
    // Counting characters costs a pass over the text; skip it when even one
    // byte per character fits.
    if text.len() > max && text.chars().count() > max {
        return Err(HubError::MessageTooLong(max));
    }
    Ok(())
}

/// Queues one `[server] ` line for `id`.
pub fn notice(hub: &Hub, id: ConnId, text: &str) {
    if let Some(u) = hub.user(id) {
        let mut line = String::with_capacity(text.len() + 10);
        line.push_str("[server] ");
        line.push_str(text);
        line.push('\n');
        u.peer.out.push(line.as_bytes());
    }
}

/// Turns a hub error into the line dialect's wording.
pub fn error_text(e: &HubError) -> String {
    match e {
        HubError::MessageTooLong(n) => format!("The message must be less than {n} characters !"),
        HubError::NicknameInUse(n) => format!("Nickname {n} is already in use !"),
        HubError::ErroneousNickname(n) => format!(
            "Invalid nickname {n}: use letters, digits and -[]\\`_^{{|}}, not starting with a digit or -"
        ),
        HubError::NoPrivileges => "Permission denied: you are not an operator (see OPER)".into(),
        HubError::NoSuchNick(n) => format!("No such nick: {n}"),
        HubError::NoSuchChannel(c) => format!("No such channel: {c}"),
        HubError::BadChanName(c) => {
            format!("Invalid channel name {c}: it starts with # and has no spaces or commas")
        }
        HubError::CannotSendToChan(c) => format!("You cannot send to {c}"),
        HubError::ChanOpPrivsNeeded(c) => format!("You are not a channel operator of {c}"),
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

/// Greets a freshly connected user: the welcome line, a guest nick, the
/// default channel. `guest` picks a candidate nick number (the caller's RNG).
pub fn on_connect(hub: &mut Hub, id: ConnId, mut guest: impl FnMut() -> u32, now: Millis) {
    hub.set_now(now);
    let welcome = hub.cfg.welcome.clone();
    notice(hub, id, &welcome);
    let mut nick = String::new();
    for _ in 0..1000 {
        let candidate = format!("guest{}", guest());
        if hub.find_nick(&candidate).is_none() && hub.set_nick(id, &candidate, now).is_ok() {
            nick = candidate;
            break;
        }
    }
    if nick.is_empty() {
        // 1000 collisions means the guest space is exhausted: use the id.
        nick = format!("guest{id}");
        let _ = hub.set_nick(id, &nick, now);
    }
    hub.register(id, "line", "line user");
    let host = hub
        .user(id)
        .map(|u| u.host().to_string())
        .unwrap_or_default();
    tracing::info!(conn = id, %nick, %host, "client connected");
    let lobby = hub.cfg.default_channel.clone();
    match hub.join(id, &lobby, None, true, now) {
        Ok(_) => notice(
            hub,
            id,
            &format!("You are {nick}, in {lobby}. Type HELP for the commands."),
        ),
        Err(e) => notice(hub, id, &error_text(&e)),
    }
}

/// Executes one command for `id`. `oper` is the result of checking an OPER
/// password, which the caller does outside the hub lock (hashing is slow).
pub fn handle(hub: &mut Hub, id: ConnId, cmd: Command<'_>, oper: OperCheck, now: Millis) -> Flow {
    hub.set_now(now);
    let Some(u) = hub.user(id) else {
        return Flow::Close;
    };
    let nick = u.nick().to_string();
    let current = u.current_channel().map(str::to_string);
    let result: Result<(), HubError> = match cmd {
        Command::Empty => Ok(()),
        Command::Msg(text) => match &current {
            Some(ch) => check_length(hub, text).and_then(|_| {
                let name = hub.channel(ch).map(|c| c.name.clone()).unwrap_or_default();
                hub.message(id, &name, text, MsgKind::Privmsg, "", now)
                    .map(|_| ())
            }),
            None => {
                notice(hub, id, "You are in no channel: JOIN one first");
                Ok(())
            }
        },
        Command::Pm { nick: to, .. } if to.starts_with('#') => {
            Err(HubError::NoSuchNick(to.to_string()))
        }
        Command::Pm { nick: to, text } => {
            hub.message(id, to, text, MsgKind::Privmsg, "", now)
                .map(|sent| {
                    if let Some(away) = sent.away {
                        notice(hub, id, &format!("{} is away: {away}", sent.target));
                    }
                })
        }
        Command::Nick(new) if new.chars().count() > hub.cfg.limits.nick_length => {
            let max = hub.cfg.limits.nick_length;
            notice(
                hub,
                id,
                &format!("Invalid nickname {new}: at most {max} characters"),
            );
            Ok(())
        }
        Command::Nick(new) => hub.set_nick(id, new, now).map(|_| {
            if *new != *nick {
                tracing::info!(conn = id, old = %nick, new = %new, "nick change");
                notice(hub, id, &format!("You are now known as {new}"));
            }
        }),
        Command::Who(None) if current.is_none() => {
            notice(hub, id, "You are in no channel: JOIN one first");
            Ok(())
        }
        Command::Who(target) => {
            let name = target.map(str::to_string).or(current.clone());
            match name.as_deref().and_then(|n| hub.channel(n)) {
                Some(ch) if !ch.modes.secret || ch.member(id).is_some() => {
                    let nicks: Vec<&str> = ch
                        .members
                        .iter()
                        .filter_map(|m| hub.user(m.id).map(|u| u.nick()))
                        .collect();
                    let text = nicks.join(" ");
                    notice(hub, id, &text);
                    Ok(())
                }
                _ => Err(HubError::NoSuchChannel(name.unwrap_or_default())),
            }
        }
        Command::Quit(text) => {
            if !text.trim().is_empty()
                && let Some(ch) = &current
            {
                let name = hub.channel(ch).map(|c| c.name.clone()).unwrap_or_default();
                let sent = check_length(hub, text)
                    .and_then(|_| hub.message(id, &name, text, MsgKind::Privmsg, "", now));
                if let Err(e) = sent {
                    notice(hub, id, &error_text(&e));
                }
            }
            let reason = if text.trim().is_empty() {
                "Client Quit".to_string()
            } else {
                format!("Quit: {}", crate::hub::truncate_bytes(text.trim(), 300))
            };
            tracing::info!(conn = id, %nick, "client disconnected");
            hub.quit(id, &reason, now);
            return Flow::Close;
        }
        Command::Oper { name, .. } => {
            match oper {
                OperCheck::Granted => {
                    if let Some(u) = hub.user(id) {
                        let modes = crate::hub::UserModes {
                            oper: true,
                            ..u.modes
                        };
                        hub.set_modes(id, modes);
                    }
                    tracing::info!(conn = id, %nick, oper = name, "operator login");
                    notice(hub, id, "You are now an operator");
                }
                OperCheck::Denied => {
                    tracing::warn!(conn = id, %nick, oper = name, "failed operator login");
                    notice(hub, id, "Operator login failed: wrong name or password");
                }
                OperCheck::Throttled(s) => notice(
                    hub,
                    id,
                    &format!("Too many failed OPER attempts: try again in {s} s"),
                ),
            }
            Ok(())
        }
        Command::Kill { nick: target, text } => {
            let text = if text.is_empty() { "Killed" } else { text };
            hub.kill(id, target, text, now).map(|_| {
                tracing::info!(conn = id, killer = %nick, victim = target, "kill");
            })
        }
        Command::Join { channel, key } => {
            join(hub, id, &nick, current.as_deref(), channel, key, now)
        }
        Command::Part => {
            let lobby = hub.cfg.default_channel.clone();
            if current.as_deref() == Some(crate::names::casefold(&lobby).as_str()) {
                notice(hub, id, &format!("You are already in {lobby}"));
                Ok(())
            } else {
                join(hub, id, &nick, current.as_deref(), &lobby, None, now)
            }
        }
        Command::List => {
            let mut rows: Vec<(String, usize, String)> = hub
                .channels()
                .filter(|c| !(c.modes.secret || c.modes.private) || c.member(id).is_some())
                .map(|c| {
                    (
                        c.name.clone(),
                        c.members.len(),
                        c.topic.as_ref().map(|t| t.text.clone()).unwrap_or_default(),
                    )
                })
                .collect();
            rows.sort();
            notice(hub, id, &format!("{} channel(s):", rows.len()));
            for (name, n, topic) in rows {
                let users = if n == 1 { "user" } else { "users" };
                notice(hub, id, format!("{name} ({n} {users}) {topic}").trim_end());
            }
            Ok(())
        }
        Command::Topic(text) => match (&current, text) {
            (None, _) => {
                notice(hub, id, "You are in no channel: JOIN one first");
                Ok(())
            }
            (Some(ch), None) => {
                let (name, topic) = hub
                    .channel(ch)
                    .map(|c| (c.name.clone(), c.topic.clone()))
                    .unwrap_or_default();
                match topic {
                    Some(t) => notice(hub, id, &format!("Topic for {name}: {}", t.text)),
                    None => notice(hub, id, &format!("No topic is set for {name}")),
                }
                Ok(())
            }
            (Some(ch), Some(text)) => {
                let name = hub.channel(ch).map(|c| c.name.clone()).unwrap_or_default();
                hub.set_topic(id, &name, text, now).map(|_| {
                    if let Some(u) = hub.user(id) {
                        u.peer.send_event(&crate::hub::Event::Topic {
                            by: u,
                            channel: &name,
                            text,
                            time: now,
                        });
                    }
                })
            }
        },
        Command::Help => {
            for l in HELP {
                notice(hub, id, l);
            }
            Ok(())
        }
        Command::Usage(u) => {
            notice(hub, id, &format!("Usage: {u}"));
            Ok(())
        }
        Command::Invalid => {
            notice(hub, id, "Invalid command !");
            Ok(())
        }
    };
    if let Err(e) = result {
        notice(hub, id, &error_text(&e));
    }
    if hub.user(id).is_none() {
        return Flow::Close;
    }
    Flow::Continue
}

/// Moves a user from its current channel to `channel`. The move is checked
/// before leaving, so a refused join keeps the user where it was.
fn join(
    hub: &mut Hub,
    id: ConnId,
    nick: &str,
    current: Option<&str>,
    channel: &str,
    key: Option<&str>,
    now: Millis,
) -> Result<(), HubError> {
    let target = hub.validate_channel(channel)?;
    if current == Some(target.key()) {
        // The channel's own spelling, not the one typed.
        let name = hub
            .channel(target.key())
            .map_or_else(|| target.as_str().to_string(), |c| c.name.clone());
        notice(hub, id, &format!("You are already in {name}"));
        return Ok(());
    }
    if let (Some(ch), Some(u)) = (hub.channel(target.as_str()), hub.user(id)) {
        crate::hub::policy::can_join(ch, u, key)?;
    }
    if let Some(old) = current {
        let old_name = hub.channel(old).map(|c| c.name.clone()).unwrap_or_default();
        hub.part(id, &old_name, "", now)?;
    }
    if let Err(e) = hub.join(id, target.as_str(), key, false, now) {
        // Someone filled the channel between the check and the join cannot
        // happen under the hub lock, but stay safe: fall back to the lobby.
        let lobby = hub.cfg.default_channel.clone();
        let _ = hub.join(id, &lobby, None, false, now);
        return Err(e);
    }
    tracing::debug!(conn = id, nick, channel, "join");
    let Some(ch) = hub.channel(target.as_str()) else {
        return Ok(());
    };
    let name = ch.name.clone();
    let topic = ch.topic.as_ref().map(|t| t.text.clone());
    let members: Vec<String> = ch
        .members
        .iter()
        .filter_map(|m| hub.user(m.id).map(|u| u.nick().to_string()))
        .collect();
    notice(hub, id, &format!("You joined {name}"));
    match topic {
        Some(t) => notice(hub, id, &format!("Topic for {name}: {t}")),
        None => notice(hub, id, &format!("No topic is set for {name}")),
    }
    notice(
        hub,
        id,
        &format!("Members of {name}: {}", members.join(" ")),
    );
    Ok(())
}
