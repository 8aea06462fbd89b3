//! Query commands over the irc dialect: WHO/WHOX, WHOIS, WHOWAS, ISON,
//! USERHOST, VERSION, TIME, ADMIN, INFO, HELP, and how a `line` user looks
//! in them. Modes no command can set yet (+i, +B, voice) are covered by the
//! unit tests in `crates/core/src/irc/commands/`.

mod support;

use bavard::config::{Config, Oper};
use support::irc::{IrcClient, Msg, cmds};
use support::server::Server;
use tokio::io::{AsyncBufReadExt, BufReader};

const SERVER: &str = "bavard.local";

/// A server with one operator account, `operuser` / `operpassword`.
async fn start_with_oper() -> Server {
    let hash = bavard::passwd::hash("operpassword").expect("hash");
    let cfg = Config {
        opers: vec![Oper {
            name: "operuser".into(),
            password: hash,
        }],
        ..Config::default()
    };
    Server::start(cfg).await
}

async fn oper_up(c: &mut IrcClient) {
    c.send("OPER operuser operpassword").await;
    c.expect("381").await;
    c.sync().await;
}

/// Sends `line` and returns every reply up to and including `end`.
async fn ask(c: &mut IrcClient, line: &str, end: &str) -> Vec<Msg> {
    c.send(line).await;
    c.collect_until(end).await
}

fn find<'a>(ms: &'a [Msg], code: &str) -> &'a Msg {
    ms.iter()
        .find(|m| m.command == code)
        .unwrap_or_else(|| panic!("no {code} in {ms:?}"))
}

#[tokio::test]
async fn who_channel_lists_members_with_flags() {
    let s = start_with_oper().await;
    let mut a = IrcClient::registered(s.irc, "coolNick").await;
    let mut b = IrcClient::registered(s.irc, "otherNick").await;
    a.send("JOIN #chan").await;
    a.expect("366").await;
    b.send("JOIN #chan").await;
    b.expect("366").await;
    oper_up(&mut a).await;
    a.send("AWAY :be right back").await;
    a.expect("306").await;

    let r = ask(&mut b, "WHO #CHAN", "315").await;
    assert_eq!(cmds(&r), ["352", "352", "315"]);
    assert_eq!(
        r[0].params,
        [
            "otherNick",
            "#chan",
            "~coolNick",
            "127.0.0.1",
            SERVER,
            "coolNick",
            "G*@",
            "0 Real coolNick"
        ]
    );
    assert_eq!(r[1].params[5], "otherNick");
    assert_eq!(r[1].params[6], "H");
    // The mask comes back exactly as sent.
    assert_eq!(r[2].params[1], "#CHAN");
}

#[tokio::test]
async fn who_nick_mask_and_everyone() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "coolNick").await;
    let mut b = IrcClient::registered(s.irc, "otherNick").await;
    a.send("AWAY :gone").await;
    a.expect("306").await;

    for mask in ["coolNick", "coolnick", "coolni*", "*Real cool*"] {
        let r = ask(&mut b, &format!("WHO :{mask}"), "315").await;
        assert_eq!(cmds(&r), ["352", "315"], "{mask}");
        assert_eq!(r[0].params[1], "*");
        assert_eq!(r[0].params[5], "coolNick");
        assert_eq!(r[0].params[6], "G");
        // A mask with a space cannot be echoed as a middle parameter.
        let echoed = if mask.contains(' ') { "*" } else { mask };
        assert_eq!(r[1].params[1], echoed);
    }
    let r = ask(&mut b, "WHO idontexist", "315").await;
    assert_eq!(cmds(&r), ["315"]);
    assert_eq!(r[0].params[1], "idontexist");

    for q in ["WHO *", "WHO 0", "WHO"] {
        let r = ask(&mut b, q, "315").await;
        assert_eq!(cmds(&r), ["352", "352", "315"], "{q}");
        // Sorted by nick, so stable.
        assert_eq!(r[0].params[5], "coolNick");
        assert_eq!(r[1].params[5], "otherNick");
    }
    let r = ask(&mut b, "WHO", "315").await;
    assert_eq!(r[2].params[1], "*");
    // Opers only: nobody is one.
    let r = ask(&mut b, "WHO * o", "315").await;
    assert_eq!(cmds(&r), ["315"]);
}

#[tokio::test]
async fn whox_fields_come_in_standard_order() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "coolNick").await;
    let mut b = IrcClient::registered(s.irc, "otherNick").await;
    a.send("JOIN #chan").await;
    a.expect("366").await;

    let fields = "tcuihsnfdlaor";
    let reversed: String = fields.chars().rev().collect();
    for f in [fields, reversed.as_str()] {
        let r = ask(&mut b, &format!("WHO coolNick %{f},123"), "315").await;
        assert_eq!(cmds(&r), ["354", "315"]);
        // The idle field (index 10) depends on the clock: a small number.
        let mut params = r[0].params.clone();
        let idle: u64 = params[10].parse().expect("idle is a number");
        assert!(idle <= 5, "idle {idle}");
        params[10] = "0".into();
        assert_eq!(
            params,
            [
                "otherNick",
                "123",
                "*",
                "~coolNick",
                "255.255.255.255",
                "127.0.0.1",
                SERVER,
                "coolNick",
                "H",
                "0",
                "0",
                "0",
                "n/a",
                "Real coolNick"
            ]
        );
    }
    let r = ask(&mut b, "WHO coolNick %tn,321", "315").await;
    assert_eq!(r[0].params, ["otherNick", "321", "coolNick"]);
    let r = ask(&mut b, "WHO coolNick %na", "315").await;
    assert_eq!(r[0].params, ["otherNick", "coolNick", "0"]);
    // On a channel, the channel field is that channel and flags carry the
    // member prefix.
    let r = ask(&mut b, "WHO #chan %cnf", "315").await;
    assert_eq!(r[0].params, ["otherNick", "#chan", "coolNick", "H@"]);
}

#[tokio::test]
async fn whois_numerics() {
    let s = start_with_oper().await;
    let mut a = IrcClient::registered(s.irc, "nick1").await;
    let mut b = IrcClient::registered(s.irc, "nick2").await;
    b.send("JOIN #chan1").await;
    b.expect("366").await;
    b.send("JOIN #chan2").await;
    b.expect("366").await;
    b.send("AWAY :I'm on a break").await;
    b.expect("306").await;
    oper_up(&mut b).await;

    let r = ask(&mut a, "WHOIS nick2", "318").await;
    assert_eq!(r[0].command, "311", "{r:?}");
    assert_eq!(
        r[0].params,
        ["nick1", "nick2", "~nick2", "127.0.0.1", "*", "Real nick2"]
    );
    assert_eq!(find(&r, "319").params[2], "@#chan1 @#chan2");
    assert_eq!(find(&r, "312").params[..3], ["nick1", "nick2", SERVER]);
    assert_eq!(find(&r, "301").params, ["nick1", "nick2", "I'm on a break"]);
    assert_eq!(find(&r, "313").params[1], "nick2");
    let idle = find(&r, "317");
    assert_eq!(idle.params.len(), 5);
    assert!(idle.params[2].parse::<u64>().is_ok());
    assert!(idle.params[3].parse::<u64>().is_ok());
    assert_eq!(r.last().map(|m| &*m.params[1]), Some("nick2"));
    // The real address goes to the user itself (and opers), not to others.
    assert!(!cmds(&r).contains(&"338"));
    let r = ask(&mut a, "WHOIS nick1", "318").await;
    assert_eq!(find(&r, "338").params[..3], ["nick1", "nick1", "127.0.0.1"]);
    let r = ask(&mut b, "WHOIS nick1", "318").await;
    assert!(cmds(&r).contains(&"338"), "opers see it too");

    // A server parameter naming us, or the nick itself, is accepted.
    for q in [
        format!("WHOIS {SERVER} nick2"),
        "WHOIS nick2 nick2".into(),
        "WHOIS NICK2,nick1".into(),
    ] {
        let r = ask(&mut a, &q, "318").await;
        assert_eq!(r[0].command, "311", "{q}");
        assert_eq!(r[0].params[1], "nick2");
    }
    a.send("WHOIS other.server nick2").await;
    let m = a.msg().await;
    assert_eq!(m.command, "402");
    assert_eq!(m.params[1], "other.server");

    let r = ask(&mut a, "WHOIS nobody", "318").await;
    assert_eq!(cmds(&r), ["401", "318"]);
    assert_eq!(r[1].params[1], "nobody");
    a.send("WHOIS :").await;
    assert_eq!(a.msg().await.command, "431");
}

#[tokio::test]
async fn whowas_after_nick_change_and_quit() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "nick1").await;
    let mut b = IrcClient::registered(s.irc, "nick2").await;
    b.send("NICK renamed").await;
    b.expect("NICK").await;
    let r = ask(&mut a, "WHOWAS nick2", "369").await;
    assert_eq!(cmds(&r), ["314", "312", "369"]);
    assert_eq!(
        r[0].params,
        ["nick1", "nick2", "~nick2", "127.0.0.1", "*", "Real nick2"]
    );
    assert_eq!(r[1].params[..3], ["nick1", "nick2", SERVER]);

    // A second nick2 quits: it comes first.
    let mut c = IrcClient::connect(s.irc).await;
    c.send("NICK nick2").await;
    c.send("USER third 0 * :Third").await;
    c.expect("001").await;
    c.send("QUIT :bye").await;
    c.eof().await;
    b.send("QUIT").await;
    b.eof().await;
    a.sync().await;

    let r = ask(&mut a, "WHOWAS nick2", "369").await;
    assert_eq!(cmds(&r), ["314", "312", "314", "312", "369"]);
    assert_eq!(r[0].params[2], "~third");
    assert_eq!(r[2].params[2], "~nick2");
    for (q, n) in [
        ("WHOWAS NICK2 1", 1),
        ("WHOWAS nick2 0", 2),
        ("WHOWAS nick2 -1", 2),
    ] {
        let r = ask(&mut a, q, "369").await;
        assert_eq!(r.iter().filter(|m| m.command == "314").count(), n, "{q}");
    }
    let r = ask(&mut a, "WHOWAS renamed", "369").await;
    assert_eq!(r[0].params[1], "renamed");

    let r = ask(&mut a, "WHOWAS ghost", "369").await;
    assert_eq!(cmds(&r), ["406", "369"]);
    assert_eq!(r[0].params[1], "ghost");
    let r = ask(&mut a, "WHOWAS :", "369").await;
    assert_eq!(cmds(&r), ["431", "369"]);
}

#[tokio::test]
async fn ison_and_userhost() {
    let s = start_with_oper().await;
    let mut a = IrcClient::registered(s.irc, "Alice").await;
    let mut b = IrcClient::registered(s.irc, "bob").await;
    oper_up(&mut a).await;

    a.send("ISON ALICE nobody BOB").await;
    let m = a.expect("303").await;
    assert_eq!(m.params, ["Alice", "Alice bob"]);
    a.send("ISON :nobody bob alice").await;
    assert_eq!(a.expect("303").await.params[1], "bob Alice");
    a.send("ISON nobody").await;
    assert_eq!(a.expect("303").await.params[1], "");

    b.send("USERHOST bob").await;
    assert_eq!(b.expect("302").await.params[1], "bob=+~bob@127.0.0.1");
    b.send("AWAY :out").await;
    b.expect("306").await;
    b.send("USERHOST alice bob ghost").await;
    assert_eq!(
        b.expect("302").await.params[1],
        "Alice*=+~Alice@127.0.0.1 bob=-~bob@127.0.0.1"
    );
    // At most five nicks are looked at.
    b.send("USERHOST x x x x x bob").await;
    assert_eq!(b.expect("302").await.params[1], "");
}

#[tokio::test]
async fn server_information() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "nick").await;

    let r = ask(&mut a, "VERSION", "005").await;
    assert_eq!(r[0].command, "351");
    assert!(r[0].params[1].starts_with("bavard-"));
    assert_eq!(r[0].params[2], SERVER);
    let rest = a.sync().await;
    assert!(rest.iter().all(|m| m.command == "005"));
    assert!(rest.iter().any(|m| m.params.iter().any(|p| p == "WHOX")));

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    a.send("TIME").await;
    let t = a.expect("391").await;
    assert_eq!(t.params.len(), 5);
    assert_eq!(t.params[1], SERVER);
    let ts: u64 = t.params[2].parse().expect("timestamp");
    assert!(ts >= before && ts <= before + 2);
    assert_eq!(t.params[3], "0");

    let r = ask(&mut a, "ADMIN", "259").await;
    assert_eq!(cmds(&r), ["256", "257", "258", "259"]);
    assert_eq!(r[0].params[1], SERVER);
    assert_eq!(r[3].params[1], "admin@bavard.local");

    for q in ["INFO", "INFO bavard.local", "INFO *local", "INFO nick"] {
        let r = ask(&mut a, q, "374").await;
        assert!(r.len() > 1, "{q}");
        assert!(r[..r.len() - 1].iter().all(|m| m.command == "371"), "{q}");
    }

    for q in [
        "VERSION other.server",
        "TIME x",
        "ADMIN x",
        "INFO invalidserver",
        "MOTD invalid.server.example",
        "LUSERS * x",
    ] {
        a.send(q).await;
        let m = a.msg().await;
        assert_eq!(m.command, "402", "{q}");
        assert_eq!(m.params[1], q.rsplit(' ').next().unwrap_or(""));
    }
    a.send("MOTD bavard.local").await;
    a.expect("376").await;
}

#[tokio::test]
async fn help_topics() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "nick").await;
    let r = ask(&mut a, "HELP", "706").await;
    assert_eq!(r[0].command, "704");
    assert!(r.iter().all(|m| m.params[1] == "*"));
    assert!(r[1..r.len() - 1].iter().all(|m| m.command == "705"));
    assert!(r.iter().any(|m| m.params[2].contains("WHOWAS")));

    let r = ask(&mut a, "HELP privmsg", "706").await;
    assert_eq!(cmds(&r), ["704", "705", "705", "706"]);
    assert!(r.iter().all(|m| m.params[1] == "PRIVMSG"));

    a.send("HELP THISISNOTACOMMAND").await;
    let m = a.msg().await;
    assert_eq!(m.command, "524");
    assert_eq!(m.params[1], "THISISNOTACOMMAND");
}

#[tokio::test]
async fn line_user_in_who_and_whois() {
    let s = Server::start_default().await;
    let mut i = IrcClient::registered(s.irc, "ircy").await;
    i.send("JOIN #lobby").await;
    i.expect("366").await;
    let stream = tokio::net::TcpStream::connect(s.line).await.expect("line");
    let (r, _w) = stream.into_split();
    let mut r = BufReader::new(r).lines();
    r.next_line().await.expect("read").expect("welcome");
    let j = i.expect("JOIN").await;
    let source = j.source.unwrap_or_default();
    let guest = source.split('!').next().unwrap_or_default().to_string();

    let w = ask(&mut i, "WHO #lobby", "315").await;
    assert_eq!(cmds(&w), ["352", "352", "315"]);
    let row = w
        .iter()
        .find(|m| m.param(5) == Some(guest.as_str()))
        .expect("line user listed");
    assert_eq!(row.params[1], "#lobby");
    assert_eq!(row.params[2], "line");
    assert_eq!(row.params[6], "H");
    assert_eq!(row.params[7], "0 line user");

    let w = ask(&mut i, &format!("WHOIS {guest}"), "318").await;
    assert_eq!(w[0].params[2], "line");
    assert_eq!(w[0].params[5], "line user");
    assert_eq!(find(&w, "319").params[2], "#lobby");

    let w = ask(&mut i, &format!("USERHOST {guest}"), "302").await;
    assert_eq!(w[0].params[1], format!("{guest}=+line@127.0.0.1"));
}
