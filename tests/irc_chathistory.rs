//! IRCv3 `draft/chathistory` over real TCP: off with `history.enabled =
//! false`, then with `history.max_per_target`: every subcommand and reference type, refusals, what is
//! kept (channel PRIVMSGs and NOTICEs) and what leaves (redactions), renames,
//! a channel that empties, a restart.

mod support;

use bavard::config::{Config, HistoryConfig};
use support::irc::{IrcClient as Client, Msg, ask, cmds};
use support::server::{Server, with_history};
use tokio::io::AsyncWriteExt;

const CAPS: &[&str] = &[
    "draft/chathistory",
    "batch",
    "message-tags",
    "server-time",
    "echo-message",
    "draft/message-redaction",
];

/// The lines of the one batch a reply is, checking its frame.
fn batch<'a>(r: &'a [Msg], kind: &str, target: Option<&str>) -> &'a [Msg] {
    assert!(r.len() >= 2, "{r:?}");
    assert_eq!(r[0].command, "BATCH", "{r:?}");
    let id = r[0].params[0].strip_prefix('+').unwrap();
    assert_eq!(r[0].params[1], kind);
    assert_eq!(r[0].params.get(2).map(|p| &**p), target);
    assert_eq!(r.last().unwrap().params[0], format!("-{id}"));
    &r[1..r.len() - 1]
}

/// The texts of the messages of a `chathistory` reply.
fn texts(r: &[Msg], target: &str) -> Vec<String> {
    batch(r, "chathistory", Some(target))
        .iter()
        .map(|m| m.params[1].to_string())
        .collect()
}

fn fail(r: &[Msg]) -> Vec<&str> {
    assert_eq!(cmds(r), ["FAIL"], "{r:?}");
    r[0].params.iter().map(|p| &**p).collect()
}

fn kept(n: usize) -> Config {
    Config {
        history: HistoryConfig {
            enabled: true,
            max_per_target: n,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Sends `text` to `chan`; returns the echo's msgid and time.
async fn say(c: &mut Client, chan: &str, text: &str) -> (String, String) {
    let r = ask(c, &format!("PRIVMSG {chan} :{text}")).await;
    let me = format!("{}!", c.nick);
    let echo = r
        .iter()
        .find(|m| m.source.as_deref().is_some_and(|s| s.starts_with(&me)))
        .unwrap();
    let tag = |k: &str| echo.tag(k).unwrap().to_string();
    (tag("msgid"), tag("time"))
}

#[tokio::test]
async fn history_can_be_turned_off() {
    let mut cfg = with_history();
    cfg.history.enabled = false;
    let s = Server::start(cfg).await;
    let mut c = Client::connect(s.irc).await;
    c.send("CAP LS 302").await;
    let ls = c.expect("CAP").await;
    assert!(!ls.params.last().unwrap().contains("chathistory"));
    c.send("CAP REQ :draft/chathistory").await;
    assert_eq!(c.expect("CAP").await.params[1], "NAK");
    c.send("NICK a\r\nUSER a 0 * :a\r\nCAP END").await;
    let burst = c.collect_until("376").await;
    let tokens: Vec<&str> = burst
        .iter()
        .filter(|m| m.command == "005")
        .flat_map(|m| m.params.iter().map(|p| &**p))
        .collect();
    assert!(
        !tokens
            .iter()
            .any(|t| t.starts_with("CHATHISTORY") || t.starts_with("MSGREF"))
    );
    let mut a = Client::registered_with_caps(s.irc, "alice", &["batch"]).await;
    ask(&mut a, "JOIN #h").await;
    ask(&mut a, "PRIVMSG #h :not kept").await;
    let r = ask(&mut a, "CHATHISTORY LATEST #h * 10").await;
    assert!(texts(&r, "#h").is_empty());
}

#[tokio::test]
async fn chathistory_plays_back_what_the_channel_said() {
    let s = Server::start(kept(5)).await;
    let mut a = Client::registered_with_caps(s.irc, "alice", CAPS).await;
    let r = ask(&mut a, "VERSION").await;
    let tokens: Vec<&str> = r
        .iter()
        .flat_map(|m| m.params.iter().map(|p| &**p))
        .collect();
    assert!(tokens.contains(&"CHATHISTORY=5") && tokens.contains(&"MSGREFTYPES=msgid,timestamp"));
    assert!(tokens.contains(&"draft/CHATHISTORY=5"));
    ask(&mut a, "JOIN #h").await;
    let mut ids = Vec::new();
    // Apart by a few milliseconds, so that time references are exact.
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(3));
    for i in 1..=4 {
        ids.push(say(&mut a, "#h", &format!("m{i}")).await);
        pause().await;
    }
    // A NOTICE is kept; a typing TAGMSG, a status message and a private
    // message are not. (The JOIN is kept, and pushed out by the limit.)
    ask(&mut a, "NOTICE #h :n5").await;
    ask(&mut a, "@+typing=active TAGMSG #h").await;
    ask(&mut a, "PRIVMSG @#h :ops").await;
    ask(&mut a, "PRIVMSG alice :self").await;
    pause().await;
    ids.push(say(&mut a, "#h", "m6").await);
    // Five are kept, and one request returns five at most.
    let r = ask(&mut a, "CHATHISTORY LATEST #h * 50").await;
    assert_eq!(texts(&r, "#h"), ["m2", "m3", "m4", "n5", "m6"]);
    let lines = batch(&r, "chathistory", Some("#h"));
    assert_eq!(
        lines[0].tag("msgid"),
        Some(&*ids[1].0),
        "the original msgid"
    );
    assert_eq!(lines[0].tag("time"), Some(&*ids[1].1), "and time");
    assert_eq!(lines[3].command, "NOTICE");
    let id = |i: usize| format!("msgid={}", ids[i].0);
    let time = |i: usize| format!("timestamp={}", ids[i].1);
    let cases = [
        (format!("LATEST #h {} 10", id(2)), vec!["m4", "n5", "m6"]),
        (format!("LATEST #h {} 1", time(1)), vec!["m6"]),
        (format!("BEFORE #h {} 2", id(4)), vec!["m4", "n5"]),
        (format!("BEFORE #H {} 9", time(2)), vec!["m2"]),
        (format!("AFTER #h {} 1", id(1)), vec!["m3"]),
        (format!("AROUND #h {} 3", id(2)), vec!["m2", "m3", "m4"]),
        (
            format!("BETWEEN #h {} {} 9", id(1), id(4)),
            vec!["m3", "m4", "n5"],
        ),
        (format!("BETWEEN #h {} {} 1", id(4), id(1)), vec!["n5"]),
        ("AFTER #h msgid=123456 5".to_string(), vec![]),
    ];
    for (q, want) in cases {
        let r = ask(&mut a, &format!("CHATHISTORY {q}")).await;
        assert_eq!(texts(&r, "#h"), want, "{q}");
    }
}

#[tokio::test]
async fn chathistory_refusals() {
    let s = Server::start(kept(5)).await;
    let mut a = Client::registered_with_caps(s.irc, "alice", CAPS).await;
    let mut b = Client::registered_with_caps(s.irc, "bob", CAPS).await;
    ask(&mut a, "JOIN #h").await;
    ask(&mut b, "JOIN #other").await;
    for (q, code) in [
        ("CHATHISTORY NOPE #h * 5", "INVALID_PARAMS"),
        ("CHATHISTORY LATEST #h *", "INVALID_PARAMS"),
        ("CHATHISTORY LATEST #h * 0", "INVALID_PARAMS"),
        ("CHATHISTORY LATEST #h * x", "INVALID_PARAMS"),
        ("CHATHISTORY BEFORE #h * 5", "INVALID_PARAMS"),
        ("CHATHISTORY BEFORE #h foo=1 5", "INVALID_PARAMS"),
        (
            "CHATHISTORY AFTER #h timestamp=yesterday 5",
            "INVALID_PARAMS",
        ),
        (
            "CHATHISTORY TARGETS msgid=1 timestamp=2020-01-01T00:00:00.000Z 5",
            "INVALID_PARAMS",
        ),
        ("CHATHISTORY LATEST #other * 5", "INVALID_TARGET"),
        ("CHATHISTORY LATEST #nowhere * 5", "INVALID_TARGET"),
        ("CHATHISTORY LATEST bad,nick * 5", "INVALID_TARGET"),
    ] {
        let r = ask(&mut a, q).await;
        assert_eq!(fail(&r)[..2], ["CHATHISTORY", code], "{q}");
    }
    assert_eq!(cmds(&ask(&mut a, "CHATHISTORY").await), ["461"]);
    // Private conversations are not kept: an empty batch.
    ask(&mut a, "PRIVMSG bob :psst").await;
    let r = ask(&mut a, "CHATHISTORY LATEST bob * 5").await;
    assert!(texts(&r, "bob").is_empty());
}

#[tokio::test]
async fn redactions_renames_and_empty_channels() {
    let s = Server::start(kept(10)).await;
    let mut a = Client::registered_with_caps(s.irc, "alice", CAPS).await;
    ask(&mut a, "JOIN #h").await;
    let (gone, _) = say(&mut a, "#h", "oops").await;
    say(&mut a, "#h", "fine").await;
    // A line user's messages are the channel's too.
    let mut line = tokio::net::TcpStream::connect(s.line).await.unwrap();
    line.write_all(b"NICK linus\nJOIN #h\nMSG from line\n")
        .await
        .unwrap();
    a.until(|m| m.command == "PRIVMSG" && m.params[1] == "from line")
        .await;
    ask(&mut a, &format!("REDACT #h {gone}")).await;
    let r = ask(&mut a, "CHATHISTORY LATEST #h * 10").await;
    assert_eq!(texts(&r, "#h"), ["fine", "from line"]);
    // Renamed: the history follows, under the new name.
    ask(&mut a, "RENAME #h #new").await;
    let r = ask(&mut a, "CHATHISTORY LATEST #new * 10").await;
    let lines = batch(&r, "chathistory", Some("#new"));
    assert_eq!(lines[0].params[..2], ["#new", "fine"]);
    // The old name's history moved: a channel founded under it starts empty.
    ask(&mut a, "JOIN #h").await;
    let r = ask(&mut a, "CHATHISTORY LATEST #h * 10").await;
    assert!(texts(&r, "#h").is_empty());
    // Once everyone left, the history stays for the channel founded again.
    drop(line);
    a.expect("QUIT").await;
    ask(&mut a, "PART #new").await;
    ask(&mut a, "JOIN #new").await;
    let r = ask(&mut a, "CHATHISTORY LATEST #new * 10").await;
    assert_eq!(texts(&r, "#new"), ["fine", "from line"]);
}

#[tokio::test]
async fn history_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = kept(10);
    cfg.storage.path = dir.path().join("bavard.db");
    let s = Server::start_with_db(cfg.clone()).await;
    let mut a = Client::registered_with_caps(s.irc, "alice", CAPS).await;
    ask(&mut a, "JOIN #h").await;
    let (id, _) = say(&mut a, "#h", "before the restart").await;
    drop(a);
    s.stop().await;
    let s = Server::start_with_db(cfg).await;
    let mut a = Client::registered_with_caps(s.irc, "alice", CAPS).await;
    // Founded again, in another case: the same conversation.
    ask(&mut a, "JOIN #H").await;
    say(&mut a, "#H", "after").await;
    let r = ask(&mut a, "CHATHISTORY LATEST #h * 10").await;
    assert_eq!(texts(&r, "#H"), ["before the restart", "after"]);
    let lines = batch(&r, "chathistory", Some("#H"));
    assert_eq!(lines[0].tag("msgid"), Some(&*id), "msgids stay unique");
    assert_ne!(lines[1].tag("msgid"), Some(&*id));
}

#[tokio::test]
async fn targets_lists_channels_by_their_latest_message() {
    let s = Server::start(kept(10)).await;
    let mut a = Client::registered_with_caps(s.irc, "alice", CAPS).await;
    for ch in ["#one", "#two", "#quiet"] {
        ask(&mut a, &format!("JOIN {ch}")).await;
    }
    let (_, t1) = say(&mut a, "#one", "first").await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (_, t2) = say(&mut a, "#two", "second").await;
    let q = "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2999-01-01T00:00:00.000Z 10";
    let r = ask(&mut a, q).await;
    let lines = batch(&r, "draft/chathistory-targets", None);
    let got: Vec<Vec<&str>> = lines
        .iter()
        .map(|m| m.params.iter().map(|p| &**p).collect())
        .collect();
    assert_eq!(got, [["TARGETS", "#one", &*t1], ["TARGETS", "#two", &*t2]]);
    // Backwards, one: the latest; bounds are exclusive.
    let q = format!("CHATHISTORY TARGETS timestamp=2999-01-01T00:00:00.000Z timestamp={t1} 1");
    let r = ask(&mut a, &q).await;
    let lines = batch(&r, "draft/chathistory-targets", None);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].params[1], "#two");
}
