//! Integration tests of the `line` dialect over real TCP, against the real
//! server started in-process on an ephemeral port: its commands, chat and
//! framing. Load, slow readers and shutdown are in `line_load.rs`.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use bavard::config::{Config, Oper};
use support::line::{LineClient, named};
use support::server::Server;

// ---------------------------------------------------------------- connect

#[tokio::test(flavor = "multi_thread")]
async fn connect_welcome_unique_valid_guest_nick_and_announce() {
    let s = Server::start_default().await;
    let mut first = LineClient::connect(s.line).await;
    let mut nicks = HashSet::new();
    nicks.insert(first.nick.clone());
    let mut keep = Vec::new();
    for _ in 0..20 {
        let c = LineClient::connect(s.line).await;
        assert!(
            bavard_proto::names::Nickname::parse(&c.nick, 30).is_ok(),
            "guest nick {:?} is not a valid IRC nick",
            c.nick
        );
        assert!(c.nick.starts_with("guest"), "{}", c.nick);
        first
            .expect(&format!("[server] {} is connected", c.nick))
            .await;
        assert!(nicks.insert(c.nick.clone()), "duplicate nick {}", c.nick);
        keep.push(c);
    }
    first.expect_quiet().await;
    drop((first, keep));
    s.stop().await;
}

// ---------------------------------------------------------------- MSG

#[tokio::test(flavor = "multi_thread")]
async fn msg_relayed_to_others_not_sender_nor_other_channels() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob", "carol", "dave"]).await;
    // dave goes elsewhere.
    c[3].send("JOIN #other").await;
    c[3].expect_all(&[
        "[server] You joined #other",
        "[server] No topic is set for #other",
        "[server] Members of #other: dave",
    ])
    .await;
    for cl in &mut c[..3] {
        cl.expect("[server] dave left #lobby").await;
    }
    c[0].send("MSG hello  world ").await;
    c[1].expect("[alice] hello  world ").await;
    c[2].expect("[alice] hello  world ").await;
    c[0].expect_quiet().await;
    c[3].expect_quiet().await;
    drop(c);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn msg_of_2000_characters_relayed_2001_refused() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob"]).await;
    let ok: String = "é".repeat(2000);
    c[0].send(&format!("MSG {ok}")).await;
    c[1].expect(&format!("[alice] {ok}")).await;
    let ascii: String = "a".repeat(2000);
    c[0].send(&format!("MSG {ascii}")).await;
    c[1].expect(&format!("[alice] {ascii}")).await;

    for long in [
        "é".repeat(2001),
        "b".repeat(2001),
        format!("{}é", "c".repeat(2000)),
    ] {
        c[0].send(&format!("MSG {long}")).await;
        c[0].expect("[server] The message must be less than 2000 characters !")
            .await;
    }
    c[1].expect_quiet().await;
    c[0].expect_quiet().await;
    drop(c);
    s.stop().await;
}

// ---------------------------------------------------------------- framing

#[tokio::test(flavor = "multi_thread")]
async fn command_split_across_writes_with_pauses() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob"]).await;
    for part in ["M", "SG hel", "lo wo", "rl", "d\r", "\n"] {
        c[0].send_bytes(part.as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    c[1].expect("[alice] hello world").await;
    // A multi-byte character split between two writes.
    let e = "é".as_bytes();
    c[0].send_bytes(b"MSG caf").await;
    c[0].send_bytes(&e[..1]).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    c[0].send_bytes(&e[1..]).await;
    c[0].send_bytes(b"\n").await;
    c[1].expect("[alice] café").await;
    c[0].expect_quiet().await;
    drop(c);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn several_commands_in_one_write_handled_in_order() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob"]).await;
    c[0].send_bytes(b"MSG one\nMSG two\r\nNICK al\nMSG three\nWHO\n\nmsg four\n")
        .await;
    c[1].expect_all(&[
        "[alice] one",
        "[alice] two",
        "[server] alice is now known as al",
        "[al] three",
        "[al] four",
    ])
    .await;
    c[0].expect_all(&["[server] You are now known as al", "[server] al bob"])
        .await;
    c[0].nick = "al".into();
    c[0].expect_quiet().await;
    c[1].expect_quiet().await;
    drop(c);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crlf_line_endings() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob"]).await;
    c[0].send_bytes(b"NICK ann\r\nMSG hi\r\nWHO\r\n").await;
    c[0].expect_all(&["[server] You are now known as ann", "[server] ann bob"])
        .await;
    c[1].expect_all(&["[server] alice is now known as ann", "[ann] hi"])
        .await;
    // Only one trailing \r is a line ending; inner ones are text.
    c[0].send_bytes(b"MSG a\rb\r\n").await;
    c[1].expect("[ann] a\rb").await;
    drop(c);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_utf8_is_replaced_and_the_connection_goes_on() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob"]).await;
    c[0].send_bytes(b"MSG caf\xc3 \xff\xfe!\n").await;
    c[1].expect("[alice] caf\u{FFFD} \u{FFFD}\u{FFFD}!").await;
    c[0].send("MSG still here").await;
    c[1].expect("[alice] still here").await;
    c[0].expect_quiet().await;
    drop(c);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn overlong_line_reported_once_then_connection_goes_on() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob"]).await;
    let big = vec![b'x'; 100 * 1024];
    c[0].send_bytes(&big).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    c[0].send_bytes(b"\nMSG after\n").await;
    c[0].expect("[server] Line too long (more than 8192 bytes): discarded")
        .await;
    c[1].expect("[alice] after").await;
    c[0].expect_quiet().await;
    c[1].expect_quiet().await;
    // Exactly at the bound is accepted (8192 bytes, newline excluded).
    let exact = format!("MSG {}", "y".repeat(8192 - 4 - 1));
    c[0].send(&format!("{exact}\r")).await;
    c[0].expect("[server] The message must be less than 2000 characters !")
        .await;
    drop(c);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn overlong_line_then_disconnect_does_not_affect_others() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob", "carol"]).await;
    let mut alice = c.remove(0);
    alice.send_bytes(&vec![b'z'; 100 * 1024]).await;
    alice
        .expect("[server] Line too long (more than 8192 bytes): discarded")
        .await;
    drop(alice);
    c[0].expect("[server] alice is disconnected").await;
    c[1].expect("[server] alice is disconnected").await;
    c[0].send("MSG fine").await;
    c[1].expect("[bob] fine").await;
    c[1].expect_quiet().await;
    drop(c);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_line_timeout() {
    let mut cfg = Config::default();
    cfg.limits.partial_line_timeout = 1;
    let s = Server::start(cfg).await;
    let mut c = named(&s, &["alice", "bob"]).await;
    // A complete line, then a partial one started later: the clock of the
    // partial line starts with it, not with the earlier input.
    c[0].send("MSG first").await;
    c[1].expect("[alice] first").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    c[0].send_bytes(b"MSG sec").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    c[0].send_bytes(b"ond\n").await;
    c[1].expect("[alice] second").await;
    c[0].expect_quiet().await;
    // A line left unfinished past the timeout ends the connection.
    c[0].send_bytes(b"MSG never finished").await;
    c[0].expect("[server] Timeout: a line was left unfinished")
        .await;
    c[0].expect_eof().await;
    c[1].expect("[server] alice is disconnected").await;
    drop(c);
    s.stop().await;
}

// ---------------------------------------------------------------- NICK

#[tokio::test(flavor = "multi_thread")]
async fn nick_change_in_use_invalid_too_long() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob"]).await;
    // Seen by the channel, confirmed to the user.
    c[0].send("NICK Alison").await;
    c[0].expect("[server] You are now known as Alison").await;
    c[1].expect("[server] alice is now known as Alison").await;
    c[0].nick = "Alison".into();
    // In use, case-insensitively (and with RFC 1459 folding: [ ~ {).
    c[1].nick("x[y]").await;
    c[0].expect("[server] bob is now known as x[y]").await;
    c[0].send("NICK alison").await;
    c[0].expect("[server] You are now known as alison").await;
    c[1].expect("[server] Alison is now known as alison").await;
    c[0].nick = "alison".into();
    c[1].send("NICK ALISON").await;
    c[1].expect("[server] Nickname ALISON is already in use !")
        .await;
    c[0].send("NICK X{Y}").await;
    c[0].expect("[server] Nickname X{Y} is already in use !")
        .await;
    // Invalid.
    for bad in ["1abc", "-abc", "a.b", "é", "#chan", "a,b", "a:b"] {
        c[0].send(&format!("NICK {bad}")).await;
        c[0].expect(&format!(
            "[server] Invalid nickname {bad}: use letters, digits and -[]\\`_^{{|}}, not starting with a digit or -"
        ))
        .await;
    }
    c[0].send("NICK a b").await;
    c[0].expect("[server] Usage: NICK <name> (no spaces)").await;
    c[0].send("NICK").await;
    c[0].expect("[server] Usage: NICK <name>").await;
    // Length: 30 is fine, 31 is refused.
    let n30 = "n".repeat(30);
    c[0].nick(&n30).await;
    c[1].expect(&format!("[server] alison is now known as {n30}"))
        .await;
    let n31 = "m".repeat(31);
    c[0].send(&format!("NICK {n31}")).await;
    c[0].expect(&format!(
        "[server] Invalid nickname {n31}: at most 30 characters"
    ))
    .await;
    c[1].expect_quiet().await;
    c[0].expect_quiet().await;
    drop(c);
    s.stop().await;
}

// ---------------------------------------------------------------- WHO / QUIT

#[tokio::test(flavor = "multi_thread")]
async fn who_current_other_and_missing_channel() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob", "carol"]).await;
    c[2].send("JOIN #other").await;
    c[2].expect_all(&[
        "[server] You joined #other",
        "[server] No topic is set for #other",
        "[server] Members of #other: carol",
    ])
    .await;
    c[0].expect("[server] carol left #lobby").await;
    c[1].expect("[server] carol left #lobby").await;
    c[0].send("WHO").await;
    c[0].expect("[server] alice bob").await;
    c[0].send("who #OTHER").await;
    c[0].expect("[server] carol").await;
    c[0].send("WHO #missing").await;
    c[0].expect("[server] No such channel: #missing").await;
    c[2].send("WHO #lobby").await;
    c[2].expect("[server] alice bob").await;
    drop(c);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quit_with_and_without_text() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob", "carol"]).await;
    let mut alice = c.remove(0);
    alice.send("QUIT bye  all").await;
    alice.expect_eof().await;
    for o in c.iter_mut() {
        o.expect_all(&["[alice] bye  all", "[server] alice is disconnected"])
            .await;
    }
    let mut bob = c.remove(0);
    bob.send("quit").await;
    bob.expect_eof().await;
    c[0].expect("[server] bob is disconnected").await;
    c[0].send("WHO").await;
    c[0].expect("[server] carol").await;
    // The nick is free again.
    c[0].nick("alice").await;
    drop(c);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn abrupt_disconnect_close_and_reset() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob", "carol"]).await;
    let alice = c.remove(0);
    drop(alice);
    c[0].expect("[server] alice is disconnected").await;
    c[1].expect("[server] alice is disconnected").await;

    let bob = c.remove(0);
    let (r, w) = bob.split();
    let stream = r.into_inner().reunite(w).expect("reunite");
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER");
    drop(stream);
    c[0].expect("[server] bob is disconnected").await;
    c[0].send("WHO").await;
    c[0].expect("[server] carol").await;
    drop(c);
    s.stop().await;
}

// ---------------------------------------------------------------- OPER / KILL

/// argon2 runs unoptimised in debug builds and tests run in parallel.
const OPER_TIMEOUT: Duration = Duration::from_secs(30);

fn oper_config() -> Config {
    // argon2 is slow in debug builds: hash once for the whole file.
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = HASH.get_or_init(|| bavard::passwd::hash("s3cret").expect("hash"));
    let mut cfg = Config::default();
    cfg.opers.push(Oper {
        name: "admin".into(),
        password: hash.clone(),
    });
    cfg
}

#[tokio::test(flavor = "multi_thread")]
async fn oper_login_and_kill() {
    let s = Server::start(oper_config()).await;
    let mut c = named(&s, &["alice", "bob", "carol", "dave"]).await;
    // carol goes elsewhere: she must not see the kill of someone in #lobby.
    c[2].send("JOIN #elsewhere").await;
    c[2].expect_all(&[
        "[server] You joined #elsewhere",
        "[server] No topic is set for #elsewhere",
        "[server] Members of #elsewhere: carol",
    ])
    .await;
    for i in [0, 1, 3] {
        c[i].expect("[server] carol left #lobby").await;
    }
    // Not an operator yet.
    c[0].send("KILL bob go away").await;
    c[0].expect("[server] Permission denied: you are not an operator (see OPER)")
        .await;
    c[0].send("OPER admin").await;
    c[0].expect("[server] Usage: OPER <name> <password>").await;
    c[0].send("OPER admin s3cret").await;
    assert_eq!(
        c[0].line_within(OPER_TIMEOUT).await,
        "[server] You are now an operator"
    );
    c[0].send("KILL nobody x").await;
    c[0].expect("[server] No such nick: nobody").await;
    c[0].send("KILL BOB go  away").await;
    c[1].expect("[alice] go  away").await;
    c[1].expect_eof().await;
    c[0].expect("[server] bob is disconnected").await;
    c[3].expect("[server] bob is disconnected").await;
    c[2].expect_quiet().await;
    // A kill with no text still says something; a target in another channel.
    c[0].send("KILL carol").await;
    c[2].expect("[alice] Killed").await;
    c[2].expect_eof().await;
    c[0].expect_quiet().await;
    c[3].expect_quiet().await;
    drop(c);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oper_wrong_password_refused_then_throttled() {
    let s = Server::start(oper_config()).await;
    let mut c = named(&s, &["alice", "bob"]).await;
    // Each failure doubles the wait before the next check (2 s, 4 s...).
    // Hashing is slow in debug builds, so the first window may pass during the
    // check itself: allow one more failure before requiring the throttle.
    let mut throttled = None;
    for attempt in 0..3 {
        c[0].send("OPER admin wrong").await;
        let l = c[0].line_within(OPER_TIMEOUT).await;
        if attempt > 0 && l.starts_with("[server] Too many failed OPER attempts: try again in ") {
            throttled = Some(l);
            break;
        }
        assert_eq!(l, "[server] Operator login failed: wrong name or password");
    }
    let l = throttled.expect("OPER failures are throttled");
    assert!(l.ends_with(" s"), "{l}");
    c[0].send("KILL bob x").await;
    c[0].expect("[server] Permission denied: you are not an operator (see OPER)")
        .await;
    c[1].expect_quiet().await;
    drop(c);
    s.stop().await;
}

// ---------------------------------------------------------------- channels

#[tokio::test(flavor = "multi_thread")]
async fn join_part_list_topic() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob", "carol"]).await;
    c[0].send("TOPIC").await;
    c[0].expect("[server] No topic is set for #lobby").await;
    c[0].send("TOPIC  welcome all ").await;
    for cl in c.iter_mut() {
        cl.expect("[server] alice changed the topic of #lobby to: welcome all")
            .await;
    }
    c[1].send("topic").await;
    c[1].expect("[server] Topic for #lobby: welcome all").await;

    c[0].send("JOIN #Rust").await;
    c[0].expect_all(&[
        "[server] You joined #Rust",
        "[server] No topic is set for #Rust",
        "[server] Members of #Rust: alice",
    ])
    .await;
    c[1].expect("[server] alice left #lobby").await;
    c[2].expect("[server] alice left #lobby").await;
    c[0].send("TOPIC borrowck").await;
    c[0].expect("[server] alice changed the topic of #Rust to: borrowck")
        .await;
    c[1].send("join #rust").await;
    c[1].expect_all(&[
        "[server] You joined #Rust",
        "[server] Topic for #Rust: borrowck",
        "[server] Members of #Rust: alice bob",
    ])
    .await;
    c[0].expect("[server] bob joined #Rust").await;
    c[2].expect("[server] bob left #lobby").await;
    // The founder is the channel operator; others cannot change a locked topic.
    c[1].send("TOPIC mine").await;
    c[1].expect("[server] You are not a channel operator of #Rust")
        .await;
    c[1].send("JOIN #rust").await;
    c[1].expect("[server] You are already in #Rust").await;
    c[1].send("JOIN rust").await;
    c[1].expect("[server] Invalid channel name rust: it starts with # and has no spaces or commas")
        .await;
    c[1].send("JOIN").await;
    c[1].expect("[server] Usage: JOIN <#channel> [key]").await;

    c[2].send("LIST").await;
    c[2].expect_all(&[
        "[server] 2 channel(s):",
        "[server] #Rust (2 users) borrowck",
        "[server] #lobby (1 user) welcome all",
    ])
    .await;
    // Messages stay in their channel.
    c[0].send("MSG in rust").await;
    c[1].expect("[alice] in rust").await;
    c[2].expect_quiet().await;

    c[1].send("PART").await;
    c[1].expect_all(&[
        "[server] You joined #lobby",
        "[server] Topic for #lobby: welcome all",
        "[server] Members of #lobby: carol bob",
    ])
    .await;
    c[0].expect("[server] bob left #Rust").await;
    c[2].expect("[server] bob joined #lobby").await;
    c[1].send("PART").await;
    c[1].expect("[server] You are already in #lobby").await;
    // The last member leaving removes the channel.
    c[0].send("PART").await;
    c[0].expect_all(&[
        "[server] You joined #lobby",
        "[server] Topic for #lobby: welcome all",
        "[server] Members of #lobby: carol bob alice",
    ])
    .await;
    c[1].expect("[server] alice joined #lobby").await;
    c[2].expect("[server] alice joined #lobby").await;
    c[0].send("LIST").await;
    c[0].expect_all(&[
        "[server] 1 channel(s):",
        "[server] #lobby (3 users) welcome all",
    ])
    .await;
    c[0].send("TOPIC ").await;
    c[0].expect("[server] Topic for #lobby: welcome all").await;
    drop(c);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn private_messages() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob", "carol"]).await;
    c[0].send("PM bob hello  there").await;
    c[1].expect("*alice* hello  there").await;
    c[0].send("privmsg BOB again").await;
    c[1].expect("*alice* again").await;
    c[0].send("PM zed hi").await;
    c[0].expect("[server] No such nick: zed").await;
    c[0].send("PM #lobby hi").await;
    c[0].expect("[server] No such nick: #lobby").await;
    c[0].send("PM bob").await;
    c[0].expect("[server] Usage: PM <nick> <text>").await;
    // Across channels.
    c[1].send("JOIN #x").await;
    c[1].expect_all(&[
        "[server] You joined #x",
        "[server] No topic is set for #x",
        "[server] Members of #x: bob",
    ])
    .await;
    c[0].expect("[server] bob left #lobby").await;
    c[2].expect("[server] bob left #lobby").await;
    c[1].send("PM alice from #x").await;
    c[0].expect("*bob* from #x").await;
    c[0].expect_quiet().await;
    c[1].expect_quiet().await;
    c[2].expect_quiet().await;
    drop(c);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn help_invalid_usage_and_lowercase_verbs() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob"]).await;
    c[0].send("help").await;
    let first = c[0].line().await;
    assert_eq!(first, "[server] Commands (verbs are case-insensitive):");
    let mut help = Vec::new();
    for _ in 0..17 {
        help.push(c[0].line().await);
    }
    for verb in [
        "MSG", "PM", "NICK", "WHO", "JOIN", "PART", "LIST", "TOPIC", "HISTORY", "REGISTER",
        "LOGIN", "LOGOUT", "OPER", "KILL", "REHASH", "QUIT", "HELP",
    ] {
        assert!(
            help.iter()
                .any(|l| l.starts_with(&format!("[server]   {verb} "))),
            "HELP lacks {verb}: {help:?}"
        );
    }
    for bad in ["HELLO", "hello world", "MSGX hi", " ", "\t", "*", "MS G hi"] {
        c[0].send(bad).await;
        if bad.trim().is_empty() {
            continue;
        }
        c[0].expect("[server] Invalid command !").await;
    }
    c[0].send("MSG").await;
    c[0].expect("[server] Usage: MSG <text>").await;
    c[0].send("msg   ").await;
    c[0].expect("[server] Usage: MSG <text>").await;
    c[0].send("KILL").await;
    c[0].expect("[server] Usage: KILL <nick> <text>").await;
    c[0].send("mSg mixed case").await;
    c[1].expect("[alice] mixed case").await;
    c[0].send("who").await;
    c[0].expect("[server] alice bob").await;
    c[0].send("nick ally").await;
    c[0].expect("[server] You are now known as ally").await;
    c[1].expect("[server] alice is now known as ally").await;
    c[0].send("list").await;
    c[0].expect_all(&["[server] 1 channel(s):", "[server] #lobby (2 users)"])
        .await;
    c[0].nick = "ally".into();
    c[0].expect_quiet().await;
    c[1].expect_quiet().await;
    drop(c);
    s.stop().await;
}
