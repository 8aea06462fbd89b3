//! The `line` dialect's commands: one command per `\n`-terminated line (a
//! trailing `\r` is dropped), verbs case-insensitive. `docs/line-protocol.md`
//! specifies the protocol; executing the commands is the core's business.

/// A parsed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// A blank line: ignored.
    Empty,
    Msg(&'a str),
    Nick(&'a str),
    Who(Option<&'a str>),
    Quit(&'a str),
    Oper {
        name: &'a str,
        password: &'a str,
    },
    Kill {
        nick: &'a str,
        text: &'a str,
    },
    Rehash,
    Join {
        channel: &'a str,
        key: Option<&'a str>,
    },
    Part,
    List,
    Topic(Option<&'a str>),
    Pm {
        nick: &'a str,
        text: &'a str,
    },
    Help,
    /// The last messages of the current channel: the count as typed.
    History(Option<&'a str>),
    /// Registers the current nick as an account.
    Register(&'a str),
    Login {
        account: &'a str,
        password: &'a str,
    },
    Logout,
    /// A known verb with missing arguments: the usage to show.
    Usage(&'static str),
    Invalid,
}

/// Splits off the first space-separated word; the rest keeps its inner spaces.
fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches(' ');
    match s.find(' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

/// Parses one line (without its `\n`; a trailing `\r` is dropped here).
pub fn parse(line: &str) -> Command<'_> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() {
        return Command::Empty;
    }
    let (verb, rest) = word(line);
    let upper = verb.to_ascii_uppercase();
    let arg = rest.trim();
    match upper.as_str() {
        // MSG keeps its text exactly, inner and edge spaces included.
        "MSG" if rest.trim().is_empty() => Command::Usage("MSG <text>"),
        "MSG" => Command::Msg(rest),
        "NICK" => match word(arg) {
            ("", _) => Command::Usage("NICK <name>"),
            (n, "") => Command::Nick(n),
            _ => Command::Usage("NICK <name> (no spaces)"),
        },
        "WHO" => match word(arg) {
            ("", _) => Command::Who(None),
            (c, _) => Command::Who(Some(c)),
        },
        "QUIT" => Command::Quit(rest),
        "OPER" => match (word(arg), arg) {
            ((name, pw), _) if !name.is_empty() && !pw.trim().is_empty() => Command::Oper {
                name,
                password: pw.trim(),
            },
            _ => Command::Usage("OPER <name> <password>"),
        },
        "KILL" => match word(arg) {
            ("", _) => Command::Usage("KILL <nick> <text>"),
            (nick, text) => Command::Kill {
                nick,
                text: text.trim(),
            },
        },
        "JOIN" => match word(arg) {
            ("", _) => Command::Usage("JOIN <#channel> [key]"),
            (channel, key) => Command::Join {
                channel,
                key: Some(key.trim()).filter(|k| !k.is_empty()),
            },
        },
        "PART" => Command::Part,
        "REHASH" => Command::Rehash,
        "LIST" => Command::List,
        "TOPIC" if arg.is_empty() => Command::Topic(None),
        "TOPIC" => Command::Topic(Some(arg)),
        "PM" | "PRIVMSG" => match word(arg) {
            (nick, text) if !nick.is_empty() && !text.trim().is_empty() => {
                Command::Pm { nick, text }
            }
            _ => Command::Usage("PM <nick> <text>"),
        },
        "HELP" => Command::Help,
        "HISTORY" => match word(arg) {
            ("", _) => Command::History(None),
            (count, "") => Command::History(Some(count)),
            _ => Command::Usage("HISTORY [count]"),
        },
        "REGISTER" if arg.is_empty() => Command::Usage("REGISTER <password>"),
        "REGISTER" => Command::Register(arg),
        "LOGIN" => match word(arg) {
            (account, pw) if !account.is_empty() && !pw.trim().is_empty() => Command::Login {
                account,
                password: pw.trim(),
            },
            _ => Command::Usage("LOGIN <account> <password>"),
        },
        "LOGOUT" => Command::Logout,
        _ => Command::Invalid,
    }
}

#[cfg(test)]
mod tests;
