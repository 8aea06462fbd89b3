//! The IRC command table and the checks common to every command.
//!
//! Each entry says how many parameters a command needs, whether it is allowed
//! before registration; [`dispatch`] applies those checks (451, 461, 421) before
//! the handler runs, and turns a handler's [`CommandError`] into numerics in
//! one place ([`report`]).

mod chan;
mod conn;
mod modes;
mod msg;
mod oper;
mod query;

pub use conn::{complete_registration, welcome};

use super::IrcState;
use super::message::Message;
use super::numeric::{self, Numeric};
use super::reply::Responder;
use crate::config::Config;
use crate::hub::{Hub, HubError, Millis};
use crate::oper::OperCheck;

/// What a handler can use.
/// `'s`: what the responder borrows (the server name), outliving the command.
pub struct Ctx<'a, 's> {
    pub hub: &'a mut Hub,
    pub st: &'a mut IrcState,
    pub cfg: &'a Config,
    pub r: &'a mut Responder<'s>,
    pub now: Millis,
    /// Result of the OPER password check, done before the hub was locked.
    pub oper: Option<OperCheck>,
}

impl Ctx<'_, '_> {
    /// The requesting user's nick (or `*`).
    pub fn nick(&self) -> String {
        self.r.nick.to_string()
    }
}

/// Why a command failed; [`report`] turns it into replies.
#[derive(Debug)]
pub enum CommandError {
    Hub(HubError),
    NeedMoreParams,
    /// A numeric with its parameters (the default text follows).
    Numeric(Numeric, Vec<String>),
}

impl From<HubError> for CommandError {
    fn from(e: HubError) -> Self {
        CommandError::Hub(e)
    }
}

pub type CmdResult = Result<(), CommandError>;

/// Whether the connection goes on.
pub use crate::line::Flow;

type Handler = fn(&mut Ctx<'_, '_>, &Message<'_>) -> Result<Flow, CommandError>;

/// One command's metadata.
pub struct Command {
    pub name: &'static str,
    pub min_params: usize,
    pub before_registration: bool,
    pub handler: Handler,
}

const fn c(
    name: &'static str,
    min_params: usize,
    before_registration: bool,
    handler: Handler,
) -> Command {
    Command {
        name,
        min_params,
        before_registration,
        handler,
    }
}

/// Every command, by name.
pub static COMMANDS: &[Command] = &[
    c("ADMIN", 0, false, query::admin),
    c("AWAY", 0, false, oper::away),
    c("BATCH", 1, false, msg::batch),
    c("CAP", 1, true, conn::cap),
    c("HELP", 0, false, query::help),
    c("INFO", 0, false, query::info),
    c("INVITE", 2, false, modes::invite),
    c("ISON", 1, false, query::ison),
    c("JOIN", 1, false, chan::join),
    c("KICK", 2, false, modes::kick),
    c("KILL", 1, false, oper::kill),
    c("LIST", 0, false, modes::list),
    c("LUSERS", 0, false, query::lusers),
    c("MODE", 1, false, modes::mode),
    c("MONITOR", 1, false, oper::monitor),
    c("MOTD", 0, false, query::motd),
    c("NAMES", 0, false, chan::names),
    c("NICK", 0, true, conn::nick),
    c("NOTICE", 0, false, msg::notice),
    c("OPER", 2, false, oper::oper),
    c("PART", 1, false, chan::part),
    c("PASS", 1, true, conn::pass),
    c("PING", 1, true, conn::ping),
    c("PONG", 0, true, conn::pong),
    c("PRIVMSG", 0, false, msg::privmsg),
    c("QUIT", 0, true, conn::quit),
    c("SETNAME", 1, false, oper::setname),
    c("TAGMSG", 1, false, msg::tagmsg),
    c("TIME", 0, false, query::time),
    c("TOPIC", 1, false, chan::topic),
    c("USER", 4, true, conn::user),
    c("USERHOST", 1, false, query::userhost),
    c("VERSION", 0, false, query::version),
    c("WALLOPS", 1, false, oper::wallops),
    c("WHO", 0, false, query::who),
    c("WHOIS", 0, false, query::whois),
    c("WHOWAS", 0, false, query::whowas),
];

/// Finds a command by (case-insensitive) name.
pub fn lookup(verb: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(verb))
}

/// Runs one message through the common checks and its handler.
pub fn dispatch(ctx: &mut Ctx<'_, '_>, msg: &Message<'_>) -> Flow {
    let verb = msg.verb();
    let Some(cmd) = lookup(&verb) else {
        if ctx.st.registered() {
            ctx.r.num(numeric::ERR_UNKNOWNCOMMAND, &[&verb]);
        } else {
            ctx.r.num(numeric::ERR_NOTREGISTERED, &[]);
        }
        return Flow::Continue;
    };
    if !ctx.st.registered() && !cmd.before_registration {
        ctx.r.num(numeric::ERR_NOTREGISTERED, &[]);
        return Flow::Continue;
    }
    if msg.params.len() < cmd.min_params {
        ctx.r.num(numeric::ERR_NEEDMOREPARAMS, &[cmd.name]);
        return Flow::Continue;
    }
    match (cmd.handler)(ctx, msg) {
        Ok(flow) => flow,
        Err(e) => {
            report(ctx.r, cmd.name, e);
            Flow::Continue
        }
    }
}

/// Turns a command error into its numeric reply.
pub fn report(r: &mut Responder<'_>, command: &str, e: CommandError) {
    use numeric::*;
    match e {
        CommandError::NeedMoreParams => r.num(ERR_NEEDMOREPARAMS, &[command]),
        CommandError::Numeric(n, params) => {
            let p: Vec<&str> = params.iter().map(String::as_str).collect();
            r.num(n, &p)
        }
        CommandError::Hub(h) => match h {
            HubError::NoSuchNick(n) => r.num(ERR_NOSUCHNICK, &[&n]),
            HubError::NoSuchChannel(c) | HubError::BadChanName(c) => {
                r.num(ERR_NOSUCHCHANNEL, &[&c])
            }
            HubError::CannotSendToChan(c) => r.num(ERR_CANNOTSENDTOCHAN, &[&c]),
            HubError::TooManyChannels(c) => r.num(ERR_TOOMANYCHANNELS, &[&c]),
            HubError::ErroneousNickname(n) => r.num(ERR_ERRONEUSNICKNAME, &[&n]),
            HubError::NicknameInUse(n) => r.num(ERR_NICKNAMEINUSE, &[&n]),
            HubError::UserNotInChannel(c, n) => r.num(ERR_USERNOTINCHANNEL, &[&n, &c]),
            HubError::NotOnChannel(c) => r.num(ERR_NOTONCHANNEL, &[&c]),
            HubError::UserOnChannel(n, c) => r.num(ERR_USERONCHANNEL, &[&n, &c]),
            HubError::ChannelIsFull(c) => r.num(ERR_CHANNELISFULL, &[&c]),
            HubError::InviteOnlyChan(c) => r.num(ERR_INVITEONLYCHAN, &[&c]),
            HubError::BannedFromChan(c) => r.num(ERR_BANNEDFROMCHAN, &[&c]),
            HubError::BadChannelKey(c) => r.num(ERR_BADCHANNELKEY, &[&c]),
            HubError::ChanOpPrivsNeeded(c) => r.num(ERR_CHANOPRIVSNEEDED, &[&c]),
            HubError::NoPrivileges => r.num(ERR_NOPRIVILEGES, &[]),
            HubError::MessageTooLong(_) => r.num(ERR_INPUTTOOLONG, &[]),
            HubError::NoTextToSend => r.num(ERR_NOTEXTTOSEND, &[]),
        },
    }
}

/// Splits a comma-separated list parameter, dropping empty items.
pub fn list(param: &str) -> impl Iterator<Item = &str> {
    param.split(',').filter(|s| !s.is_empty())
}
