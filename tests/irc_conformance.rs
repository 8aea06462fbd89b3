//! Behaviours the irctest conformance suite checks (registration, CAP,
//! labeled-response, echo-message, message-tags, draft/multiline, away-notify,
//! bot mode, line lengths), each over real TCP, error paths included.

mod support;

use support::irc::{IrcClient, Msg, cmds, join};
use support::server::Server;

const ML: &[&str] = &[
    "message-tags",
    "batch",
    "echo-message",
    "server-time",
    "labeled-response",
    "draft/multiline",
];
const ML_FALLBACK: &[&str] = &[
    "message-tags",
    "batch",
    "echo-message",
    "server-time",
    "labeled-response",
];
const LABELS: &[&str] = &["echo-message", "batch", "labeled-response"];

fn has(m: &Msg, key: &str) -> bool {
    m.tags.iter().any(|t| t.key == key)
}

// ---------------------------------------------------------------- registration

#[tokio::test]
async fn user_with_empty_realname_or_unusable_username_is_refused() {
    let s = Server::start_default().await;
    let mut c = IrcClient::connect(s.irc).await;
    c.send("NICK foo").await;
    c.send("USER username * * :").await;
    let m = c.msg().await;
    assert_eq!(m.command, "461");
    assert_eq!(m.params[1], "USER");
    c.send("USER 😊😊😊 * * :realname").await;
    let m = c.msg().await;
    assert_eq!(m.command, "468", "{m:?}");
    // The client may try again and register.
    c.send("USER username * * :realname").await;
    c.expect("001").await;
}

#[tokio::test]
async fn registration_burst_order() {
    let s = Server::start_default().await;
    let mut c = IrcClient::connect(s.irc).await;
    c.send("NICK foo").await;
    c.send("USER foo * * :foo").await;
    let mut got = Vec::new();
    loop {
        let m = c.msg().await;
        let end = m.command == "376" || m.command == "422";
        got.push(m);
        if end {
            break;
        }
    }
    assert_eq!(cmds(&got[..4]), ["001", "002", "003", "004"]);
    assert!(got.iter().all(|m| m.params[0] == "foo"));
    let myinfo = &got[3];
    assert_eq!(myinfo.params[1], "bavard.local");
    for p in &myinfo.params[3..] {
        assert!(p.chars().all(|c| c.is_ascii_alphabetic()), "{p}");
    }
    let isupport: Vec<&Msg> = got.iter().filter(|m| m.command == "005").collect();
    for m in isupport {
        assert!(m.params.len() <= 15);
        assert!(m.params.iter().all(|p| p.is_ascii()));
    }
}

// ------------------------------------------------------------------------ CAP

#[tokio::test]
async fn cap_negotiation_edge_cases() {
    let s = Server::start_default().await;
    let mut c = IrcClient::connect(s.irc).await;
    c.send("CAP LIST").await;
    let m = c.msg().await;
    assert_eq!(m.params, ["*", "LIST", ""]);
    c.send("CAP NOTACOMMAND").await;
    let m = c.msg().await;
    assert_eq!(m.command, "410");
    assert_eq!(&m.params[..2], ["*", "NOTACOMMAND"]);
    // 3.1 clients: one line, no values; chghost is not offered (no host ever changes).
    c.send("CAP LS").await;
    let m = c.msg().await;
    assert_eq!(m.params.len(), 3, "{m:?}");
    assert!(!m.params[2].contains('='));
    assert!(!m.params[2].split(' ').any(|c| c == "chghost"));
    c.send("CAP LS 302").await;
    let m = c.msg().await;
    assert!(m.params[2].contains("draft/multiline=max-bytes=4096,max-lines=32"));
    c.send("CAP REQ :foo multi-prefix bar").await;
    let m = c.msg().await;
    assert_eq!(m.params[1..], ["NAK", "foo multi-prefix bar"]);
    c.send("CAP REQ :chghost").await;
    assert_eq!(c.msg().await.params[1], "NAK");
    c.send("CAP REQ :multi-prefix").await;
    assert_eq!(c.msg().await.params[1..], ["ACK", "multi-prefix"]);
    c.send("NICK foo").await;
    c.send("USER u s e r").await;
    c.send("CAP END").await;
    c.expect("001").await;
}

// ----------------------------------------------------------- labeled-response

#[tokio::test]
async fn labeled_response_on_every_kind_of_reply() {
    let s = Server::start_default().await;
    let mut c = IrcClient::registered_with_caps(s.irc, "bar", &["batch", "labeled-response"]).await;
    // No reply: ACK.
    c.send("@label=98765 PONG adhoctestline").await;
    let ms = c.sync().await;
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0].command, "ACK");
    assert_eq!(ms[0].tag("label"), Some("98765"));
    // One reply: labeled, no batch.
    c.send("@label=1 PING adhoc").await;
    let m = c.msg().await;
    assert_eq!(m.command, "PONG");
    assert_eq!(m.tag("label"), Some("1"));
    // Unknown command.
    c.send("@label=deadbeef NONEXISTENT_COMMAND").await;
    let m = c.msg().await;
    assert_eq!(m.command, "421");
    assert_eq!(m.tag("label"), Some("deadbeef"));
    // Several replies: one labeled batch.
    c.send("@label=12345 JOIN #xyz").await;
    let ms = c.sync().await;
    assert!(ms.len() >= 4, "{ms:?}");
    assert_eq!(ms[0].command, "BATCH");
    assert_eq!(ms[0].tag("label"), Some("12345"));
    assert_eq!(ms[0].params[1], "labeled-response");
    let id = &ms[0].params[0][1..];
    assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    assert_eq!(ms.last().unwrap().params, [format!("-{id}")]);
    for m in &ms[1..ms.len() - 1] {
        assert_eq!(m.tag("batch"), Some(id), "{m:?}");
    }
}

#[tokio::test]
async fn labeled_echo_carries_the_label_and_recipients_do_not() {
    let s = Server::start_default().await;
    let mut foo = IrcClient::registered_with_caps(s.irc, "foo", LABELS).await;
    let mut bar = IrcClient::registered_with_caps(s.irc, "bar", LABELS).await;
    let mut carl = IrcClient::registered_with_caps(s.irc, "carl", LABELS).await;
    foo.send("@label=12345 PRIVMSG bar :hi").await;
    let m = foo.msg().await;
    assert_eq!(m.command, "PRIVMSG");
    assert_eq!(m.tag("label"), Some("12345"));
    let m = bar.msg().await;
    assert!(m.tags.is_empty(), "{m:?}");

    // Several echoes: a batch.
    foo.send("@label=2 NOTICE bar,carl :hi").await;
    let ms = foo.sync().await;
    assert_eq!(cmds(&ms), ["BATCH", "NOTICE", "NOTICE", "BATCH"]);
    assert_eq!(ms[0].tag("label"), Some("2"));
    assert!(bar.msg().await.tags.is_empty());
    assert!(carl.msg().await.tags.is_empty());

    // To oneself: the delivery and the echo, only one labeled.
    foo.send("@label=3 PRIVMSG foo :hi").await;
    let ms = foo.sync().await;
    assert_eq!(cmds(&ms), ["PRIVMSG", "PRIVMSG"]);
    let labels: Vec<_> = ms.iter().filter_map(|m| m.tag("label")).collect();
    assert_eq!(labels, ["3"]);
}

#[tokio::test]
async fn direct_message_echo_keeps_client_tags_and_msgid() {
    let s = Server::start_default().await;
    let caps = &["batch", "labeled-response", "echo-message", "message-tags"];
    let mut a = IrcClient::registered_with_caps(s.irc, "bar-0123456789", caps).await;
    let mut b = IrcClient::registered_with_caps(s.irc, "qux-0123456789", caps).await;
    a.send("@label=xyz;+example-client-tag=example-value PRIVMSG qux-0123456789 :hi there")
        .await;
    let echo = a.msg().await;
    let delivery = b.msg().await;
    assert_eq!(echo.tag("label"), Some("xyz"));
    for m in [&echo, &delivery] {
        assert_eq!(m.params, ["qux-0123456789", "hi there"]);
        assert_eq!(m.tag("+example-client-tag"), Some("example-value"));
    }
    assert!(delivery.tag("label").is_none());
    assert!(echo.tag("msgid").is_some());
    assert_eq!(echo.tag("msgid"), delivery.tag("msgid"));
}

#[tokio::test]
async fn channel_message_echo_names_the_channel_as_created() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered_with_caps(s.irc, "alice", &["echo-message"]).await;
    let mut b = IrcClient::registered(s.irc, "bob").await;
    join(&mut a, "#Rust").await;
    join(&mut b, "#rust").await;
    a.sync().await;
    a.send("PRIVMSG #RUST :hi").await;
    let echo = a.msg().await;
    let delivery = b.msg().await;
    for m in [&echo, &delivery] {
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, ["#Rust", "hi"]);
    }
    // A private message's echo names the recipient as registered.
    a.send("PRIVMSG BOB :psst").await;
    assert_eq!(a.msg().await.params, ["bob", "psst"]);
    assert_eq!(b.msg().await.params, ["bob", "psst"]);
}

// ---------------------------------------------------------------- message-tags

#[tokio::test]
async fn tag_length_limits() {
    let s = Server::start_default().await;
    let mut a =
        IrcClient::registered_with_caps(s.irc, "alice", &["message-tags", "echo-message"]).await;
    let mut b = IrcClient::registered_with_caps(s.irc, "bob", &["message-tags"]).await;
    join(&mut a, "#test").await;
    join(&mut b, "#test").await;
    a.sync().await;
    let max = format!("@foo=bar;+baz={} TAGMSG #test", "a".repeat(4081));
    a.send(&max).await;
    let echo = a.msg().await;
    let relay = b.msg().await;
    assert_eq!(echo.tag("+baz").map(str::len), Some(4081));
    assert_eq!(relay.tag("+baz").map(str::len), Some(4081));
    assert!(relay.tag("foo").is_none(), "server tags are not relayed");
    let excess = format!("@foo=bar;+baz={} TAGMSG #test", "a".repeat(4082));
    a.send(&excess).await;
    assert_eq!(a.msg().await.command, "417");
    assert!(b.sync().await.is_empty());
}

#[tokio::test]
async fn privmsg_too_long_to_relay_is_refused_whole() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "nick1").await;
    let mut b = IrcClient::registered(s.irc, "nick2").await;
    a.send("PRIVMSG nick2 :a").await;
    let relayed = b.line().await.unwrap();
    // What the relay adds to the line the client sent.
    let overhead = relayed.len() - "PRIVMSG nick2 :a".len();
    let room = 512 - "PRIVMSG nick2 :".len() - 2 - overhead;
    let fits = "a".repeat(room - 4) + "😃";
    a.send(&format!("PRIVMSG nick2 :{fits}")).await;
    let got = b.msg().await;
    assert_eq!(got.params[1], fits);
    assert!(a.sync().await.is_empty());
    let over = "a".repeat(room + 1);
    a.send(&format!("PRIVMSG nick2 :{over}")).await;
    assert_eq!(a.msg().await.command, "417");
    assert!(b.sync().await.is_empty(), "nothing delivered");
    // A line over 512 bytes from the client is refused, the connection stays.
    a.send(&format!("PING {}", "x".repeat(506))).await;
    assert_eq!(a.msg().await.command, "417");
    join(&mut a, "#still-here").await;
}

// -------------------------------------------------------------- draft/multiline

/// alice and bob speak multiline, charlie only the fallback; all in #test.
async fn three_in_test(s: &Server) -> (IrcClient, IrcClient, IrcClient) {
    let mut a = IrcClient::registered_with_caps(s.irc, "alice", ML).await;
    let mut b = IrcClient::registered_with_caps(s.irc, "bob", ML).await;
    let mut c = IrcClient::registered_with_caps(s.irc, "charlie", ML_FALLBACK).await;
    join(&mut a, "#test").await;
    join(&mut b, "#test").await;
    join(&mut c, "#test").await;
    a.sync().await;
    b.sync().await;
    (a, b, c)
}

#[tokio::test]
async fn multiline_batch_is_relayed_as_sent() {
    let s = Server::start_default().await;
    let (mut a, mut b, mut c) = three_in_test(&s).await;
    a.send("@label=xyz BATCH +123 draft/multiline #test").await;
    a.send("@batch=123 PRIVMSG #test hello").await;
    a.send("@batch=123 PRIVMSG #test :#how is ").await;
    a.send("@batch=123;draft/multiline-concat PRIVMSG #test :everyone?")
        .await;
    a.send("BATCH -123").await;

    // The echo: no ACK for the opening line, the label on the batch start.
    let echo = a.sync().await;
    assert_eq!(
        cmds(&echo),
        ["BATCH", "PRIVMSG", "PRIVMSG", "PRIVMSG", "BATCH"]
    );
    let start = &echo[0];
    assert_eq!(start.tag("label"), Some("xyz"));
    assert_eq!(start.params[1..], ["draft/multiline", "#test"]);
    let msgid = start.tag("msgid").expect("msgid").to_string();
    let time = start.tag("time").expect("time").to_string();
    for m in &echo[1..4] {
        assert!(!has(m, "msgid") && !has(m, "time"), "{m:?}");
    }
    assert!(has(&echo[3], "draft/multiline-concat"));
    assert!(!has(&echo[2], "draft/multiline-concat"));
    assert_eq!(echo[4].params[0][1..], start.params[0][1..]);

    let relay = b.sync().await;
    assert_eq!(cmds(&relay), cmds(&echo));
    let id = &relay[0].params[0][1..];
    assert_eq!(relay[0].tag("msgid"), Some(msgid.as_str()));
    assert_eq!(relay[0].tag("time"), Some(time.as_str()));
    assert!(relay[0].tag("label").is_none());
    let texts: Vec<&str> = relay[1..4].iter().map(|m| &*m.params[1]).collect();
    assert_eq!(texts, ["hello", "#how is ", "everyone?"]);
    for m in &relay[1..4] {
        assert_eq!(m.tag("batch"), Some(id));
    }
    assert!(has(&relay[3], "draft/multiline-concat"));

    // Fallback: one PRIVMSG per line, same time, msgid on the first only.
    let fallback = c.sync().await;
    assert_eq!(cmds(&fallback), ["PRIVMSG", "PRIVMSG", "PRIVMSG"]);
    let ids: Vec<Option<&str>> = fallback.iter().map(|m| m.tag("msgid")).collect();
    assert_eq!(ids, [Some(msgid.as_str()), None, None]);
    for m in &fallback {
        assert_eq!(m.tag("time"), Some(time.as_str()));
        assert!(!has(m, "draft/multiline-concat"));
    }
}

#[tokio::test]
async fn multiline_blank_lines_and_client_tags() {
    let s = Server::start_default().await;
    let (mut a, mut b, mut c) = three_in_test(&s).await;
    a.send("@label=xyz;+client-only-tag BATCH +123 draft/multiline #test")
        .await;
    a.send("@batch=123 PRIVMSG #test :").await;
    a.send("@batch=123 PRIVMSG #test :#how is ").await;
    a.send("@batch=123;draft/multiline-concat PRIVMSG #test :everyone?")
        .await;
    a.send("BATCH -123").await;
    a.sync().await;
    let relay = b.sync().await;
    let texts: Vec<&str> = relay[1..relay.len() - 1]
        .iter()
        .map(|m| &*m.params[1])
        .collect();
    assert_eq!(texts, ["", "#how is ", "everyone?"]);
    assert!(has(&relay[0], "+client-only-tag"));
    let fallback = c.sync().await;
    let texts: Vec<&str> = fallback.iter().map(|m| &*m.params[1]).collect();
    assert_eq!(texts, ["#how is ", "everyone?"]);
    assert!(fallback.iter().all(|m| has(m, "+client-only-tag")));
    assert_eq!(fallback[0].tag("msgid"), relay[0].tag("msgid"));
}

#[tokio::test]
async fn multiline_errors_abandon_the_batch() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered_with_caps(s.irc, "alice", ML).await;
    join(&mut a, "#test").await;
    // Unknown reference.
    a.send("BATCH +123 draft/multiline #test").await;
    a.send("@batch=231 PRIVMSG #test :hi").await;
    let m = a.msg().await;
    assert_eq!(m.command, "FAIL");
    assert_eq!(m.params[..2], ["BATCH", "MULTILINE_INVALID"]);
    // The rest of the abandoned batch is dropped quietly.
    a.send("@batch=123 PRIVMSG #test :hi").await;
    a.send("BATCH -123").await;
    assert!(a.sync().await.is_empty());
    // A blank concat line.
    a.send("@label=l1 BATCH +123 draft/multiline #test").await;
    a.send("@batch=123 PRIVMSG #test :hi").await;
    a.send("@batch=123;draft/multiline-concat PRIVMSG #test :")
        .await;
    let m = a.msg().await;
    assert_eq!(m.params[..2], ["BATCH", "MULTILINE_INVALID"]);
    assert_eq!(
        m.tag("label"),
        Some("l1"),
        "the FAIL answers the labeled batch"
    );
    // Too many lines.
    a.send("BATCH +124 draft/multiline #test").await;
    for _ in 0..33 {
        a.send("@batch=124 PRIVMSG #test hi").await;
    }
    let m = a.msg().await;
    assert_eq!(m.params[..3], ["BATCH", "MULTILINE_MAX_LINES", "32"]);
    // Too many bytes.
    a.send("BATCH +234 draft/multiline #test").await;
    for _ in 0..11 {
        a.send(&format!("@batch=234 PRIVMSG #test {}", "x".repeat(400)))
            .await;
    }
    let m = a.msg().await;
    assert_eq!(m.params[..3], ["BATCH", "MULTILINE_MAX_BYTES", "4096"]);
    // Another target inside the batch.
    a.send("BATCH +9 draft/multiline #test").await;
    a.send("@batch=9 PRIVMSG #other :hi").await;
    let m = a.msg().await;
    assert_eq!(m.params[..2], ["BATCH", "MULTILINE_INVALID_TARGET"]);
    // Without the cap, no batch can be opened.
    let mut plain = IrcClient::registered(s.irc, "plain").await;
    plain.send("BATCH +1 draft/multiline #test").await;
    let m = plain.msg().await;
    assert_eq!(m.params[..2], ["BATCH", "INVALID_TYPE"]);
    // An empty batch.
    a.send("BATCH +e draft/multiline #test").await;
    a.send("BATCH -e").await;
    let m = a.msg().await;
    assert_eq!(m.params[..2], ["BATCH", "MULTILINE_INVALID"]);
}

#[tokio::test]
async fn multiline_to_an_away_user_nests_in_the_labeled_batch() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered_with_caps(s.irc, "alice", ML).await;
    let mut b = IrcClient::registered(s.irc, "bob").await;
    b.send("AWAY :gone").await;
    b.expect("306").await;
    a.send("@label=n BATCH +1 draft/multiline bob").await;
    a.send("@batch=1 PRIVMSG bob :one").await;
    a.send("@batch=1 PRIVMSG bob :two").await;
    a.send("BATCH -1").await;
    let ms = a.sync().await;
    assert_eq!(
        cmds(&ms),
        [
            "BATCH", "301", "BATCH", "PRIVMSG", "PRIVMSG", "BATCH", "BATCH"
        ]
    );
    let outer = &ms[0].params[0][1..];
    assert_eq!(ms[0].tag("label"), Some("n"));
    assert_eq!(ms[1].tag("batch"), Some(outer));
    assert_eq!(ms[2].tag("batch"), Some(outer));
    let inner = &ms[2].params[0][1..];
    for m in &ms[3..5] {
        assert_eq!(m.tags.iter().filter(|t| t.key == "batch").count(), 1);
        assert_eq!(m.tag("batch"), Some(inner));
    }
    // bob (no caps) gets two plain lines.
    let got = b.sync().await;
    let texts: Vec<&str> = got.iter().map(|m| &*m.params[1]).collect();
    assert_eq!(texts, ["one", "two"]);
    assert!(got.iter().all(|m| m.tags.is_empty()));
}

// ---------------------------------------------------- away-notify, bot mode

#[tokio::test]
async fn away_user_joining_is_announced_with_away_notify() {
    let s = Server::start_default().await;
    let mut foo = IrcClient::registered_with_caps(s.irc, "foo", &["away-notify"]).await;
    let mut plain = IrcClient::registered(s.irc, "plain").await;
    join(&mut foo, "#chan").await;
    join(&mut plain, "#chan").await;
    foo.sync().await;
    let mut bar = IrcClient::registered(s.irc, "bar").await;
    bar.send("AWAY :i'm already away").await;
    bar.expect("306").await;
    join(&mut bar, "#chan").await;
    let ms = foo.sync().await;
    assert_eq!(cmds(&ms), ["JOIN", "AWAY"]);
    assert_eq!(ms[1].params, ["i'm already away"]);
    assert!(ms[1].source.as_deref().unwrap().starts_with("bar!"));
    assert_eq!(
        cmds(&plain.sync().await),
        ["JOIN"],
        "no AWAY without the cap"
    );
}

#[tokio::test]
async fn bot_messages_carry_the_bot_tag() {
    let s = Server::start_default().await;
    let mut bot = IrcClient::registered(s.irc, "botnick").await;
    bot.send("MODE botnick +B").await;
    let m = bot.expect("MODE").await;
    assert_eq!(m.params, ["botnick", "+B"]);
    let mut user = IrcClient::registered_with_caps(s.irc, "usernick", &["message-tags"]).await;
    let mut plain = IrcClient::registered(s.irc, "plain").await;
    bot.send("PRIVMSG usernick,plain :beep boop").await;
    let m = user.msg().await;
    assert_eq!(m.params, ["usernick", "beep boop"]);
    assert!(has(&m, "bot"));
    assert!(!has(&m, "draft/bot"));
    assert!(plain.msg().await.tags.is_empty());
    bot.send("MODE botnick -B").await;
    bot.expect("MODE").await;
    bot.send("PRIVMSG usernick :human now").await;
    assert!(!has(&user.msg().await, "bot"));
}
