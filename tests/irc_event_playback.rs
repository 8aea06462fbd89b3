//! IRCv3 `draft/event-playback` over real TCP: the channel events history
//! keeps (JOIN, PART, QUIT, KICK, NICK, TOPIC, MODE, TAGMSGs worth
//! keeping), each replayed under the msgid and time it was relayed with, to
//! the clients that negotiated the capability; the others are played chat
//! messages only, the limit counting those.

mod support;

use support::irc::{IrcClient as Client, Msg, ask};
use support::server::{Server, with_history};

const PLAYBACK: &[&str] = &[
    "draft/chathistory",
    "draft/event-playback",
    "batch",
    "message-tags",
    "server-time",
    "echo-message",
];
const NO_PLAYBACK: &[&str] = &[
    "draft/chathistory",
    "batch",
    "message-tags",
    "server-time",
    "echo-message",
];

/// The lines inside the one `chathistory` batch of `r`, checked.
fn played<'a>(r: &'a [Msg], target: &str) -> &'a [Msg] {
    assert!(r.len() >= 2, "{r:?}");
    assert_eq!(r[0].command, "BATCH", "{r:?}");
    assert_eq!(r[0].params[1..], ["chathistory", target], "{r:?}");
    assert_eq!(r.last().unwrap().command, "BATCH", "{r:?}");
    &r[1..r.len() - 1]
}

fn commands(lines: &[Msg]) -> Vec<&str> {
    lines.iter().map(|m| &*m.command).collect()
}

#[tokio::test]
async fn the_capability_follows_history() {
    for enabled in [true, false] {
        let mut cfg = with_history();
        cfg.history.enabled = enabled;
        let s = Server::start(cfg).await;
        let mut c = Client::connect(s.irc).await;
        c.send("CAP LS 302").await;
        let ls = c.expect("CAP").await;
        let offered = ls.params.last().unwrap().contains("draft/event-playback");
        assert_eq!(offered, enabled);
    }
}

#[tokio::test]
async fn channel_events_are_replayed_as_they_were_relayed() {
    let s = Server::start(with_history()).await;
    let mut a = Client::registered_with_caps(s.irc, "alice", PLAYBACK).await;
    let mut b = Client::registered(s.irc, "bob").await;
    ask(&mut a, "JOIN #ev").await;
    ask(&mut b, "JOIN #ev").await;
    // Every event as alice saw it live (her echoes and what others did).
    let mut live: Vec<Msg> = Vec::new();
    let keep = |r: Vec<Msg>, live: &mut Vec<Msg>| {
        live.extend(
            r.into_iter()
                .filter(|m| m.tag("msgid").is_some() && m.command != "BATCH"),
        );
    };
    keep(ask(&mut a, "TOPIC #ev :the topic").await, &mut live);
    keep(ask(&mut a, "MODE #ev +v bob").await, &mut live);
    keep(ask(&mut a, "PRIVMSG #ev :hello").await, &mut live);
    let mut c = Client::registered(s.irc, "carol").await;
    ask(&mut c, "JOIN #ev").await;
    ask(&mut c, "PART #ev :bye now").await;
    ask(&mut b, "NICK bobby").await;
    ask(&mut c, "JOIN #ev").await;
    c.send("QUIT :gone").await;
    a.until(|m| m.command == "QUIT").await;
    keep(ask(&mut a, "KICK #ev bobby :out").await, &mut live);
    let r = ask(&mut a, "CHATHISTORY LATEST #ev * 50").await;
    let lines = played(&r, "#ev");
    assert_eq!(
        commands(lines),
        [
            "JOIN", "JOIN", "TOPIC", "MODE", "PRIVMSG", "JOIN", "PART", "NICK", "JOIN", "QUIT",
            "KICK"
        ]
    );
    let who = |m: &Msg| {
        m.source
            .as_deref()
            .unwrap()
            .split('!')
            .next()
            .unwrap()
            .to_string()
    };
    let by: Vec<String> = lines.iter().map(who).collect();
    assert_eq!(
        by,
        [
            "alice", "bob", "alice", "alice", "alice", "carol", "carol", "bob", "carol", "carol",
            "alice"
        ]
    );
    assert_eq!(lines[2].params[..], ["#ev", "the topic"]);
    assert_eq!(lines[3].params[..], ["#ev", "+v", "bob"]);
    assert_eq!(lines[6].params[..], ["#ev", "bye now"]);
    assert_eq!(lines[7].params[..], ["bobby"]);
    assert_eq!(lines[9].params[..], ["Quit: gone"]);
    assert_eq!(lines[10].params[..], ["#ev", "bobby", "out"]);
    // Each under its own msgid and a time, the same as when it was relayed.
    let ids: Vec<&str> = lines.iter().map(|m| m.tag("msgid").unwrap()).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    assert!(lines.iter().all(|m| m.tag("time").is_some()));
    for seen in &live {
        let id = seen.tag("msgid").unwrap();
        let replayed = lines.iter().find(|m| m.tag("msgid") == Some(id));
        let replayed = replayed.unwrap_or_else(|| panic!("{seen:?} not replayed"));
        assert_eq!(replayed.command, seen.command);
        assert_eq!(replayed.tag("time"), seen.tag("time"), "{seen:?}");
    }
    let seen = commands(&live);
    for c in ["TOPIC", "MODE", "PRIVMSG", "KICK"] {
        assert!(seen.contains(&c), "{seen:?}");
    }
    // An event's msgid is a reference like a message's.
    let q = format!("CHATHISTORY BEFORE #ev msgid={} 2", ids[6]);
    let r = ask(&mut a, &q).await;
    assert_eq!(commands(played(&r, "#ev")), ["PRIVMSG", "JOIN"]);
}

#[tokio::test]
async fn without_the_capability_only_messages_count() {
    let s = Server::start(with_history()).await;
    let mut a = Client::registered_with_caps(s.irc, "alice", NO_PLAYBACK).await;
    ask(&mut a, "JOIN #ev").await;
    for i in 1..=3 {
        ask(&mut a, &format!("PRIVMSG #ev :m{i}")).await;
        ask(&mut a, &format!("TOPIC #ev :topic {i}")).await;
    }
    ask(&mut a, "NOTICE #ev :n4").await;
    ask(&mut a, "@+draft/persist;+x=y TAGMSG #ev").await;
    ask(&mut a, "MODE #ev +m").await;
    // Two asked, two messages, however many events came between.
    let r = ask(&mut a, "CHATHISTORY LATEST #ev * 2").await;
    let lines = played(&r, "#ev");
    assert_eq!(commands(lines), ["PRIVMSG", "NOTICE"]);
    assert_eq!(lines[0].params[1], "m3");
    let r = ask(&mut a, "CHATHISTORY LATEST #ev * 100").await;
    let texts: Vec<&str> = played(&r, "#ev").iter().map(|m| &*m.params[1]).collect();
    assert_eq!(texts, ["m1", "m2", "m3", "n4"]);
    // The same history, with event-playback: everything, the TAGMSG too.
    let mut b = Client::registered_with_caps(s.irc, "bob", PLAYBACK).await;
    ask(&mut b, "JOIN #ev").await;
    let r = ask(&mut b, "CHATHISTORY LATEST #ev * 4").await;
    let lines = played(&r, "#ev");
    assert_eq!(commands(lines), ["NOTICE", "TAGMSG", "MODE", "JOIN"]);
    assert_eq!(lines[1].tag("+x"), Some("y"));
}

#[tokio::test]
async fn a_quit_and_a_nick_are_kept_in_every_channel_of_their_user() {
    let s = Server::start(with_history()).await;
    let mut a = Client::registered_with_caps(s.irc, "alice", PLAYBACK).await;
    let mut d = Client::registered(s.irc, "dave").await;
    for ch in ["#one", "#two"] {
        ask(&mut a, &format!("JOIN {ch}")).await;
        ask(&mut d, &format!("JOIN {ch}")).await;
    }
    ask(&mut d, "NICK davy").await;
    d.send("QUIT :done").await;
    a.until(|m| m.command == "QUIT").await;
    let mut quits = Vec::new();
    for ch in ["#one", "#two"] {
        let r = ask(&mut a, &format!("CHATHISTORY LATEST {ch} * 2")).await;
        let lines = played(&r, ch);
        assert_eq!(commands(lines), ["NICK", "QUIT"], "{ch}");
        assert_eq!(lines[1].source.as_deref().map(|s| &s[..5]), Some("davy!"));
        quits.push(lines[1].tag("msgid").unwrap().to_string());
    }
    assert_eq!(quits[0], quits[1], "one event, kept twice");
    // A user who leaves no channel behind leaves nothing in history.
    let mut e = Client::registered(s.irc, "eve").await;
    ask(&mut e, "NICK evelyn").await;
    e.send("QUIT").await;
    let r = ask(&mut a, "CHATHISTORY LATEST #one * 1").await;
    assert_eq!(commands(played(&r, "#one")), ["QUIT"]);
}
