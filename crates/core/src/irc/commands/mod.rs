//! The IRC command table and the checks common to every command.
//!
//! Each entry says how many parameters a command needs, whether it is allowed
//! before registration, and gives its help; [`dispatch`] applies those checks
//! (451, 461, 421) before the handler runs, and turns a handler's
//! [`CommandError`] into numerics in one place ([`report`]). A handler that
//! needs IO returns [`Flow::Wait`] with an effect and what to do with its
//! outcome ([`Cont`]); [`resume`] picks the command up there.

pub mod account;
mod chan;
mod conn;
mod history;
mod ircv3;
mod metadata;
mod modes;
mod msg;
pub mod nickserv;
mod oper;
mod query;
pub mod sasl;

use std::sync::Arc;
use std::time::Instant;

pub use chan::member_prefix;
pub use conn::{complete_registration, isupport, welcome};

use super::reply::Responder;
use super::state::IrcState;
use crate::config::CoreConfig;
use crate::effect::{Effect, Outcome};
use crate::notify::Millis;
use crate::session::Outputs;
use crate::state::{Change, ChangeError, Network};
use bavard_proto::message::Message;
use bavard_proto::numeric::{self, Numeric};

/// What a handler works with.
pub struct Ctx<'a> {
    pub net: &'a mut Network,
    pub out: &'a mut Outputs,
    pub st: &'a mut IrcState,
    pub cfg: Arc<CoreConfig>,
    pub r: &'a mut Responder,
    pub now: Millis,
    pub instant: Instant,
}

impl Ctx<'_> {
    /// The requesting user's nick (or `*`).
    pub fn nick(&self) -> String {
        self.r.nick.to_string()
    }

    /// Applies a change to the network on behalf of this command.
    pub fn apply<C: Change>(&mut self, change: C) -> Result<C::Output, ChangeError> {
        self.net.apply(change, self.out, self.now)
    }
}

/// Why a command failed; [`report`] turns it into replies.
#[derive(Debug)]
pub enum CommandError {
    Change(ChangeError),
    NeedMoreParams,
    /// A numeric with its parameters (the default text follows).
    Numeric(Numeric, Vec<String>),
}

impl From<ChangeError> for CommandError {
    fn from(e: ChangeError) -> Self {
        CommandError::Change(e)
    }
}

/// What a command wants after it ran.
#[derive(Debug)]
pub enum Flow {
    Continue,
    Close,
    /// Run the effect, then [`resume`] with [`Cont`].
    Wait(Effect, Cont),
}

/// Where a command waiting on an effect picks up.
#[derive(Debug)]
pub enum Cont {
    /// PASS: the password was checked.
    Pass,
    /// OPER: the operator's password was checked.
    Oper { name: String },
    /// REHASH: the server read its configuration file (or could not).
    Rehash,
    /// NICK: the nick was claimed (or not) in the registry.
    Nick { nick: String },
    /// JOIN: the channel `chans[next]` was founded (or someone was first);
    /// the ones after it are still to join.
    Join {
        chans: Vec<(String, Option<String>)>,
        next: usize,
    },
    /// JOIN: the history played on joining `channel` was read; the
    /// channels from `chans[next]` on are still to join.
    JoinPlayback {
        chans: Vec<(String, Option<String>)>,
        next: usize,
        channel: String,
    },
    /// CHATHISTORY: the history store answered.
    History { command: String, target: String },
    /// CHATHISTORY TARGETS: (history key, channel name) of the user's channels.
    HistoryTargets { names: Vec<(String, String)> },
    /// AUTHENTICATE PLAIN or EXTERNAL: the account was looked up; its
    /// authorization identity, if the client gave one.
    /// `tried`: what the login named (PLAIN's account, EXTERNAL's
    /// certificate), for throttling.
    SaslAccount {
        authzid: Option<String>,
        tried: Option<sasl::Tried>,
    },
    /// AUTHENTICATE SCRAM-SHA-256: the account's verifiers were looked up.
    ScramFirst {
        first: Box<crate::sasl::ClientFirst>,
    },
    /// REGISTER: the account was created (or the name was taken).
    Register { account: String },
    /// A NickServ command waits on the account store.
    NickServ(nickserv::Wait),
    /// RENAME: the new name was claimed (or someone holds it).
    Rename {
        channel: String,
        new: String,
        reason: String,
    },
}

/// A command waiting on an effect, with the replies it has so far.
#[derive(Debug)]
pub struct Pending {
    pub r: Responder,
    pub cont: Cont,
    /// The command's name, for its error replies.
    pub command: &'static str,
}

type Handler = fn(&mut Ctx<'_>, &Message<'_>) -> Result<Flow, CommandError>;

/// One command's metadata.
pub struct Command {
    pub name: &'static str,
    pub min_params: usize,
    pub before_registration: bool,
    pub handler: Handler,
    /// Syntax and what it does, for HELP.
    pub syntax: &'static str,
    pub help: &'static str,
}

const fn c(
    name: &'static str,
    min_params: usize,
    before_registration: bool,
    handler: Handler,
    syntax: &'static str,
    help: &'static str,
) -> Command {
    Command {
        name,
        min_params,
        before_registration,
        handler,
        syntax,
        help,
    }
}

/// Every command, by name.
#[rustfmt::skip]
pub static COMMANDS: &[Command] = &[
    c("ADMIN", 0, false, query::admin, "ADMIN [server]", "Shows who runs this server."),
    c("AUTHENTICATE", 1, true, sasl::authenticate, "AUTHENTICATE mechanism|data|*", "Logs in to an account with SASL (PLAIN, EXTERNAL, SCRAM-SHA-256); * aborts."),
    c("AWAY", 0, false, oper::away, "AWAY [:message]", "Marks you away with a message; no message marks you back."),
    c("BATCH", 1, false, msg::batch, "BATCH (+|-)reference [type [params]]", "Groups messages, e.g. a multiline message."),
    c("CAP", 1, true, conn::cap, "CAP LS|LIST|REQ|END [args]", "Negotiates IRCv3 capabilities."),
    c("CHATHISTORY", 1, false, history::chathistory, "CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN #chan ref [ref] limit, or TARGETS from to limit", "Plays back a channel's past messages (draft/chathistory)."),
    c("HELP", 0, false, query::help, "HELP [command]", "Lists the commands, or explains one."),
    c("HELPOP", 0, false, query::help, "HELPOP [command]", "The same as HELP."),
    c("INFO", 0, false, query::info, "INFO [server]", "Tells about the server software."),
    c("INVITE", 0, false, modes::invite, "INVITE [nick #channel]", "Invites a user to a channel; alone, lists your invitations."),
    c("ISON", 1, false, query::ison, "ISON nick [nick...]", "Tells which of the given nicks are online."),
    c("JOIN", 1, false, chan::join, "JOIN #chan[,#chan...] [key[,key...]]", "Joins channels; JOIN 0 leaves them all."),
    c("KICK", 2, false, modes::kick, "KICK #channel nick[,nick...] [:reason]", "Removes users from a channel (channel operators)."),
    c("KILL", 1, false, oper::kill, "KILL nick :reason", "Disconnects a user (server operators)."),
    c("LINKS", 0, false, query::links, "LINKS [[server] mask]", "Lists the servers of the network: this one alone."),
    c("LIST", 0, false, modes::list, "LIST [#chan[,#chan...]]", "Lists channels with their user counts and topics."),
    c("LUSERS", 0, false, query::lusers, "LUSERS", "Shows user, operator and channel counts."),
    c("MARKREAD", 0, false, ircv3::markread, "MARKREAD target [timestamp=YYYY-MM-DDThh:mm:ss.sssZ]", "Sets or shows when you last read a conversation (draft/read-marker)."),
    c("METADATA", 2, true, metadata::metadata, "METADATA target|* GET|LIST|SET|CLEAR|SUB|UNSUB|SUBS|SYNC [key [:value]]", "Reads and sets metadata on users and channels, and subscribes to keys (draft/metadata-3)."),
    c("MODE", 1, false, modes::mode, "MODE target [modes [params]]", "Shows or changes channel or user modes."),
    c("MONITOR", 1, false, oper::monitor, "MONITOR +|-|C|L|S [nick,...]", "Notifies you when nicks come online or leave."),
    c("MOTD", 0, false, query::motd, "MOTD [server]", "Shows the message of the day."),
    c("NAMES", 0, false, chan::names, "NAMES #chan[,#chan...]", "Lists the members of channels."),
    c("NICK", 0, true, conn::nick, "NICK nick", "Sets or changes your nick."),
    c("NICKSERV", 0, false, nickserv::command, "NICKSERV command [args]", "Talks to NickServ (accounts): the same as PRIVMSG NickServ."),
    c("NOTICE", 0, false, msg::notice, "NOTICE target[,target...] :text", "Sends a notice; never answered automatically."),
    c("NS", 0, false, nickserv::command, "NS command [args]", "The same as NICKSERV."),
    c("OPER", 2, false, oper::oper, "OPER name password", "Logs in as a server operator."),
    c("PART", 1, false, chan::part, "PART #chan[,#chan...] [:reason]", "Leaves channels."),
    c("PASS", 1, true, conn::pass, "PASS password", "Gives the connection password, before registration."),
    c("PING", 1, true, conn::ping, "PING token", "Asks the server to answer PONG with the token."),
    c("PONG", 0, true, conn::pong, "PONG token", "Answers a PING from the server."),
    c("PRIVMSG", 0, false, msg::privmsg, "PRIVMSG target[,target...] :text", "Sends a message to users or channels."),
    c("QUIT", 0, true, conn::quit, "QUIT [:reason]", "Disconnects."),
    c("REDACT", 2, false, ircv3::redact, "REDACT target msgid [:reason]", "Deletes a message: your own, or any in a channel you operate (draft/message-redaction)."),
    c("REGISTER", 3, true, account::register, "REGISTER account|* email|* password", "Registers an account named after your nick, and logs you in to it."),
    c("REHASH", 0, false, oper::rehash, "REHASH", "Reads the configuration file again (server operators)."),
    c("RENAME", 2, false, chan::rename, "RENAME #channel #new [:reason]", "Renames a channel, keeping its members, modes and topic (channel operators)."),
    c("SETNAME", 1, false, oper::setname, "SETNAME :realname", "Changes your real name."),
    c("TAGMSG", 1, false, msg::tagmsg, "TAGMSG target", "Sends only message tags (typing notifications, reactions)."),
    c("TIME", 0, false, query::time, "TIME [server]", "Shows the server's time."),
    c("TOPIC", 1, false, chan::topic, "TOPIC #channel [:topic]", "Shows or sets a channel topic."),
    c("USER", 4, true, conn::user, "USER username 0 * :realname", "Gives your username and real name at registration."),
    c("USERHOST", 1, false, query::userhost, "USERHOST nick [nick...]", "Shows user@host of up to five nicks."),
    c("VERIFY", 2, true, account::verify, "VERIFY account code", "Completes a registration that waits for a code (never: no mail is sent)."),
    c("VERSION", 0, false, query::version, "VERSION [server]", "Shows the server version and its ISUPPORT tokens."),
    c("WALLOPS", 1, false, oper::wallops, "WALLOPS :text", "Sends a message to users with +w (server operators)."),
    c("WHO", 0, false, query::who, "WHO [mask [o][%fields[,token]]]", "Lists users in a channel or matching a mask (WHOX fields: tcuihsnfdlaor)."),
    c("WHOIS", 0, false, query::whois, "WHOIS [server] nick", "Shows details about a user."),
    c("WHOWAS", 0, false, query::whowas, "WHOWAS nick [count]", "Shows who used a nick that is gone."),
];

/// Finds a command by (case-insensitive) name: a binary search of the
/// table, in alphabetical order (a test keeps it so), as every line a
/// client sends looks its verb up.
pub fn lookup(verb: &str) -> Option<&'static Command> {
    let upper = |b: &u8| b.to_ascii_uppercase();
    COMMANDS
        .binary_search_by(|c| c.name.bytes().cmp(verb.bytes().map(|b| upper(&b))))
        .ok()
        .map(|i| &COMMANDS[i])
}

/// Runs one message through the common checks and its handler; returns
/// the flow and the command's name (for a resumed command's errors).
pub fn dispatch(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> (Flow, &'static str) {
    let verb = msg.verb();
    let Some(cmd) = lookup(&verb) else {
        if ctx.st.registered() {
            ctx.r.num(numeric::ERR_UNKNOWNCOMMAND, &[&verb]);
        } else {
            ctx.r.num(numeric::ERR_NOTREGISTERED, &[]);
        }
        return (Flow::Continue, "");
    };
    if !ctx.st.registered() && !cmd.before_registration {
        ctx.r.num(numeric::ERR_NOTREGISTERED, &[]);
        return (Flow::Continue, cmd.name);
    }
    if msg.params.len() < cmd.min_params {
        ctx.r.num(numeric::ERR_NEEDMOREPARAMS, &[cmd.name]);
        return (Flow::Continue, cmd.name);
    }
    let result = (cmd.handler)(ctx, msg);
    (finish(ctx, cmd.name, result), cmd.name)
}

/// Picks up a command that waited on an effect.
pub fn resume(ctx: &mut Ctx<'_>, command: &'static str, cont: Cont, outcome: Outcome) -> Flow {
    let flow = match cont {
        Cont::Pass => conn::pass_checked(ctx, outcome),
        Cont::Oper { name } => oper::oper_checked(ctx, &name, outcome),
        Cont::Rehash => oper::rehashed(ctx, outcome),
        Cont::Nick { nick } => conn::nick_claimed(ctx, &nick, outcome),
        Cont::Join { chans, next } => chan::join_founded(ctx, chans, next, outcome),
        Cont::JoinPlayback {
            chans,
            next,
            channel,
        } => {
            history::played_on_join(ctx, &channel, outcome);
            chan::join_from(ctx, chans, next)
        }
        Cont::Rename {
            channel,
            new,
            reason,
        } => chan::rename_claimed(ctx, channel, new, reason, outcome),
        Cont::SaslAccount { authzid, tried } => sasl::account_checked(ctx, authzid, tried, outcome),
        Cont::ScramFirst { first } => sasl::scram_found(ctx, *first, outcome),
        Cont::Register { account } => account::registered(ctx, &account, outcome),
        Cont::NickServ(wait) => nickserv::resume(ctx, wait, outcome),
        Cont::History { command, target } => Ok(history::played(ctx, &command, &target, outcome)),
        Cont::HistoryTargets { names } => Ok(history::targets_found(ctx, &names, outcome)),
    };
    finish(ctx, command, flow)
}

/// A handler's result as a flow, its error reported.
fn finish(ctx: &mut Ctx<'_>, command: &str, r: Result<Flow, CommandError>) -> Flow {
    match r {
        Ok(flow) => flow,
        Err(e) => {
            report(ctx.r, command, e);
            Flow::Continue
        }
    }
}

/// Turns a command error into its numeric reply.
pub fn report(r: &mut Responder, command: &str, e: CommandError) {
    use numeric::*;
    match e {
        CommandError::NeedMoreParams => r.num(ERR_NEEDMOREPARAMS, &[command]),
        CommandError::Numeric(n, params) => {
            let p: Vec<&str> = params.iter().map(String::as_str).collect();
            r.num(n, &p)
        }
        CommandError::Change(h) => match h {
            ChangeError::NoSuchNick(n) => r.num(ERR_NOSUCHNICK, &[&n]),
            ChangeError::NoSuchChannel(c) | ChangeError::BadChanName(c) => {
                r.num(ERR_NOSUCHCHANNEL, &[&c])
            }
            ChangeError::CannotSendToChan(c) => r.num(ERR_CANNOTSENDTOCHAN, &[&c]),
            ChangeError::TooManyChannels(c) => r.num(ERR_TOOMANYCHANNELS, &[&c]),
            ChangeError::ErroneousNickname(n) => r.num(ERR_ERRONEUSNICKNAME, &[&n]),
            ChangeError::NicknameInUse(n) => r.num(ERR_NICKNAMEINUSE, &[&n]),
            ChangeError::UserNotInChannel(c, n) => r.num(ERR_USERNOTINCHANNEL, &[&n, &c]),
            ChangeError::NotOnChannel(c) => r.num(ERR_NOTONCHANNEL, &[&c]),
            ChangeError::UserOnChannel(n, c) => r.num(ERR_USERONCHANNEL, &[&n, &c]),
            ChangeError::ChannelIsFull(c) => r.num(ERR_CHANNELISFULL, &[&c]),
            ChangeError::InviteOnlyChan(c) => r.num(ERR_INVITEONLYCHAN, &[&c]),
            ChangeError::BannedFromChan(c) => r.num(ERR_BANNEDFROMCHAN, &[&c]),
            ChangeError::BadChannelKey(c) => r.num(ERR_BADCHANNELKEY, &[&c]),
            ChangeError::NeedReggedNick(c) => r.num(ERR_NEEDREGGEDNICK, &[&c]),
            ChangeError::ChanOpPrivsNeeded(c) => r.num(ERR_CHANOPRIVSNEEDED, &[&c]),
            ChangeError::NoPrivileges => r.num(ERR_NOPRIVILEGES, &[]),
            ChangeError::MessageTooLong(_) => r.num(ERR_INPUTTOOLONG, &[]),
            ChangeError::NoTextToSend => r.num(ERR_NOTEXTTOSEND, &[]),
            ChangeError::ChannelNameInUse(old, new) => r.standard(
                "FAIL",
                command,
                "CHANNEL_NAME_IN_USE",
                &[&old, &new],
                "The channel name is already taken",
            ),
            ChangeError::CannotRename(old, new, why) => {
                r.standard("FAIL", command, "CANNOT_RENAME", &[&old, &new], &why)
            }
            ChangeError::RedactInvalidTarget(t) => r.standard(
                "FAIL",
                command,
                "INVALID_TARGET",
                &[&t],
                "You cannot redact messages there",
            ),
            ChangeError::UnknownMsgid(t, id) => r.standard(
                "FAIL",
                command,
                "UNKNOWN_MSGID",
                &[&t, &id],
                "This message does not exist or is too old",
            ),
            ChangeError::RedactForbidden(t, id) => r.standard(
                "FAIL",
                command,
                "REDACT_FORBIDDEN",
                &[&t, &id],
                "You are not allowed to redact this message",
            ),
            ChangeError::MetadataInvalidTarget(t) => {
                r.standard("FAIL", command, "INVALID_TARGET", &[&t], "Invalid target")
            }
            ChangeError::MetadataNoPermission(t, k) => r.standard(
                "FAIL",
                command,
                "KEY_NO_PERMISSION",
                &[&t, &k],
                "You do not have permission to do that",
            ),
            ChangeError::MetadataKeyInvalid(k) => {
                r.standard("FAIL", command, "KEY_INVALID", &[&k], "Invalid key")
            }
            // irctest expects INVALID_VALUE; the draft's table says VALUE_INVALID.
            ChangeError::MetadataValueInvalid(k) => {
                r.standard("FAIL", command, "INVALID_VALUE", &[&k], "Value is too long")
            }
            ChangeError::MetadataLimit(t, max) => r.standard(
                "FAIL",
                command,
                "LIMIT_REACHED",
                &[&t],
                &format!("Metadata limit reached ({max} keys)"),
            ),
            ChangeError::MetadataKeyNotSet(t, k) => {
                r.standard("FAIL", command, "KEY_NOT_SET", &[&t, &k], "Key not set")
            }
            ChangeError::RedactWindowExpired(t, id, secs) => r.standard(
                "FAIL",
                command,
                "REDACT_WINDOW_EXPIRED",
                &[&t, &id, &secs.to_string()],
                "This message can no longer be redacted",
            ),
        },
    }
}

/// Splits a comma-separated list parameter, dropping empty items.
pub fn list(param: &str) -> impl Iterator<Item = &str> {
    param.split(',').filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests;
