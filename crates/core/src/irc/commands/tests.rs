//! Queries in cases that need modes and states set up directly (+i, +B,
//! voice, TLS, secret channels): the network is built through changes and
//! one command is dispatched at a time.

use std::sync::Arc;
use std::time::Instant;

use super::query::{pack, parse_who_options};
use super::*;
use crate::ids::{ConnId, IdGen};
use crate::irc::reply::Responder;
use crate::irc::state::{IrcState, cap};
use crate::names::ChannelName;
use crate::state::changes::{Connect, Join, Register, SetNick, SetUserModes};
use crate::state::{ModeChange, SetChannelModes, UserModes};

const NOW: u64 = 1_700_000_000_000;

struct World {
    net: Network,
    ids: IdGen,
    out: Outputs,
}

impl World {
    fn new() -> World {
        World {
            net: Network::new(Arc::new(CoreConfig::default()), NOW),
            ids: IdGen::new(0),
            out: Outputs::default(),
        }
    }

    fn apply<C: Change>(&mut self, c: C) -> C::Output {
        self.net
            .apply(c, &mut self.out, NOW)
            .expect("change applies")
    }

    fn user(&mut self, nick: &str) -> ConnId {
        let id = self.ids.next_conn();
        let ip = "127.0.0.1".parse().expect("ip");
        self.apply(Connect {
            id,
            ip,
            secure: false,
            certfp: None,
        });
        let nick = self.net.validate_nick(nick).expect("nick");
        let user = format!("~{nick}");
        let realname = format!("Real {nick}");
        self.apply(SetNick { id, nick });
        self.apply(Register { id, user, realname });
        id
    }

    fn join(&mut self, id: ConnId, chan: &str) {
        let channel = ChannelName::parse(chan, 50).expect("channel");
        let founder = self.net.channel(chan).is_none();
        self.apply(Join {
            id,
            channel,
            key: None,
            on_connect: false,
            founder,
        });
    }

    fn modes(&mut self, id: ConnId, f: impl FnOnce(&mut UserModes)) {
        let mut modes = self.net.user(id).expect("user").modes;
        f(&mut modes);
        self.apply(SetUserModes { id, modes });
    }

    fn chanmode(&mut self, by: ConnId, chan: &str, mode: char, arg: Option<&str>) {
        let changes = vec![ModeChange::new(true, mode, arg.map(str::to_string))];
        let channel = chan.to_string();
        self.apply(SetChannelModes {
            by,
            channel,
            changes,
        });
    }

    /// Runs `line` as `id` with `caps`; returns the reply lines.
    fn run(&mut self, id: ConnId, caps: u32, line: &str) -> Vec<String> {
        let nick = self
            .net
            .user(id)
            .map(|u| u.nick().to_string())
            .unwrap_or_default();
        let cfg = self.net.config().clone();
        let mut st = IrcState::new(id, &cfg, Instant::now());
        st.registration = None;
        st.caps = caps;
        let mut r = Responder::new(cfg.clone(), &nick, caps, None);
        let m = Message::parse(line).expect("parse");
        let mut ctx = Ctx {
            net: &mut self.net,
            out: &mut self.out,
            st: &mut st,
            cfg,
            r: &mut r,
            now: NOW + 5000,
            instant: Instant::now(),
        };
        dispatch(&mut ctx, &m);
        String::from_utf8(r.finish())
            .expect("utf8")
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn codes(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap_or(""))
        .collect()
}

#[test]
fn the_table_is_sorted_and_found_in_any_case() {
    assert!(COMMANDS.windows(2).all(|w| w[0].name < w[1].name));
    for c in COMMANDS {
        assert_eq!(lookup(c.name).map(|f| f.name), Some(c.name));
        assert_eq!(
            lookup(&c.name.to_ascii_lowercase()).map(|f| f.name),
            Some(c.name)
        );
    }
    assert!(lookup("NOPE").is_none() && lookup("").is_none() && lookup("PRIVMSGX").is_none());
}

#[test]
fn every_command_has_help() {
    for c in COMMANDS {
        assert!(c.syntax.starts_with(c.name), "{}", c.name);
        assert!(!c.help.is_empty(), "no help for {}", c.name);
    }
}

#[test]
fn whox_options() {
    let (flags, w) = parse_who_options("o%rnt,42");
    let w = w.expect("whox");
    assert_eq!(flags, "o");
    assert_eq!(w.fields, "tnr");
    assert_eq!(w.token, "42");
    let (_, w) = parse_who_options("%t,:bad");
    assert_eq!(w.expect("whox").token, "0");
    assert!(parse_who_options("o").1.is_none());
}

#[test]
fn invisible_hidden_from_masks_unless_shared() {
    let mut w = World::new();
    let evan = w.user("evan");
    let shiv = w.user("shivaram");
    w.modes(evan, |m| m.invisible = true);
    assert_eq!(codes(&w.run(shiv, 0, "WHO eva*")), ["315"]);
    assert_eq!(codes(&w.run(shiv, 0, "WHO *")), ["352", "315"]);
    // A plain nick is answered anyway.
    assert_eq!(codes(&w.run(shiv, 0, "WHO evan")), ["352", "315"]);
    // Invisible users are hidden from WHO on a channel one is not in.
    w.join(evan, "#test");
    assert_eq!(codes(&w.run(shiv, 0, "WHO #test")), ["315"]);
    // WHOIS does not list the channels of an invisible user to outsiders.
    assert!(!codes(&w.run(shiv, 0, "WHOIS evan")).contains(&"319"));
    w.join(shiv, "#test");
    assert_eq!(codes(&w.run(shiv, 0, "WHO eva*")), ["352", "315"]);
    assert_eq!(codes(&w.run(shiv, 0, "WHO #test")), ["352", "352", "315"]);
    assert!(codes(&w.run(shiv, 0, "WHOIS evan")).contains(&"319"));
}

#[test]
fn bot_flag_and_whois_bot() {
    let mut w = World::new();
    let bot = w.user("botnick");
    let me = w.user("usernick");
    w.modes(bot, |m| m.bot = true);
    w.join(bot, "#chan");
    w.join(me, "#chan");
    let who = w.run(me, 0, "WHO #chan");
    assert!(
        who[0].contains(" #chan ~botnick 127.0.0.1 bavard.local botnick HB@ :0 Real botnick"),
        "{who:?}"
    );
    let whois = w.run(me, 0, "WHOIS botnick");
    let bots: Vec<_> = whois.iter().filter(|l| l.contains(" 335 ")).collect();
    assert_eq!(bots.len(), 1, "{whois:?}");
    assert!(bots[0].ends_with(" 335 usernick botnick :is a bot"));
}

#[test]
fn multi_prefix_in_who_and_whois() {
    let mut w = World::new();
    let foo = w.user("foo");
    w.join(foo, "#chan");
    w.chanmode(foo, "#chan", 'v', Some("foo"));
    let who = w.run(foo, cap::MULTI_PREFIX, "WHO #chan");
    assert!(who[0].contains(" foo H@+ :0 "), "{who:?}");
    let who = w.run(foo, 0, "WHO #chan");
    assert!(who[0].contains(" foo H@ :0 "), "{who:?}");
    let whois = w.run(foo, cap::MULTI_PREFIX, "WHOIS foo");
    assert!(
        whois.iter().any(|l| l.ends_with(" 319 foo foo :@+#chan")),
        "{whois:?}"
    );
}

#[test]
fn secret_channels_and_secure() {
    let mut w = World::new();
    let a = w.user("alice");
    let b = w.user("bob");
    w.join(a, "#hidden");
    w.join(a, "#open");
    w.chanmode(a, "#hidden", 's', None);
    w.modes(a, |m| m.secure = true);
    assert_eq!(codes(&w.run(b, 0, "WHO #hidden")), ["315"]);
    let whois = w.run(b, 0, "WHOIS alice");
    assert!(
        whois.iter().any(|l| l.ends_with(" 319 bob alice :@#open")),
        "{whois:?}"
    );
    assert!(
        whois.iter().any(|l| l.contains(" 671 bob alice ")),
        "{whois:?}"
    );
    // Someone else's address is not disclosed to a non-operator.
    assert!(!codes(&whois).contains(&"338"));
    let whois = w.run(a, 0, "WHOIS alice");
    assert!(
        whois
            .iter()
            .any(|l| l.ends_with(" 319 alice alice :@#hidden @#open")),
        "{whois:?}"
    );
}

#[test]
fn whox_ip_withheld_from_others() {
    let mut w = World::new();
    let a = w.user("alice");
    let b = w.user("bob");
    let r = w.run(b, 0, "WHO alice %in");
    assert!(r[0].ends_with(" 354 bob 255.255.255.255 :alice"), "{r:?}");
    let r = w.run(a, 0, "WHO alice %in");
    assert!(r[0].ends_with(" 354 alice 127.0.0.1 :alice"), "{r:?}");
    w.modes(b, |m| m.oper = true);
    let r = w.run(b, 0, "WHO alice %in");
    assert!(r[0].ends_with(" 354 bob 127.0.0.1 :alice"), "{r:?}");
    // The `o` flag keeps operators only.
    assert_eq!(codes(&w.run(a, 0, "WHO * o")), ["352", "315"]);
    assert!(w.run(a, 0, "WHO * o")[0].contains(" bob H* :0 "));
}

#[test]
fn echoed_parameters_keep_framing() {
    let mut w = World::new();
    let a = w.user("alice");
    let r = w.run(a, 0, "WHOIS :no body");
    assert_eq!(r[0], ":bavard.local 401 alice * :No such nick/channel");
    let r = w.run(a, 0, "WHO :a b");
    assert_eq!(r, [":bavard.local 315 alice * :End of WHO list"]);
    let r = w.run(a, 0, "HELP ::x");
    assert!(r[0].starts_with(":bavard.local 524 alice * :"), "{r:?}");
    let r = w.run(a, 0, "TIME :a b");
    assert!(r[0].starts_with(":bavard.local 402 alice * :"), "{r:?}");
}

#[test]
fn pack_splits_at_room() {
    let items = ["aaaa", "bbbb", "cccc"].map(String::from);
    assert_eq!(pack(items, 9), ["aaaa bbbb", "cccc"]);
    assert!(pack(Vec::<String>::new(), 9).is_empty());
}
