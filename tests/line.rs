//! Integration tests of the `line` dialect over real TCP, against the real
//! server started in-process on an ephemeral port.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bavard::config::{Config, Oper};
use support::TIMEOUT;
use support::line::{LineClient, named};
use support::server::Server;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    for _ in 0..12 {
        help.push(c[0].line().await);
    }
    for verb in [
        "MSG", "PM", "NICK", "WHO", "JOIN", "PART", "LIST", "TOPIC", "OPER", "KILL", "QUIT", "HELP",
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

// ---------------------------------------------------------------- load

/// A connection with a 4 KiB receive buffer, so that the kernel holds little
/// of what the server writes to it while it does not read.
fn small_buffer_client(s: &Server) -> TcpStream {
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    sock.connect(&s.line.into()).expect("connect");
    sock.set_nonblocking(true).expect("nonblocking");
    TcpStream::from_std(sock.into()).expect("from_std")
}

/// A [`small_buffer_client`] past its greeting: in #lobby, nick known.
async fn small_buffer_member(s: &Server) -> LineClient {
    let mut r = LineClient::from_stream(small_buffer_client(s));
    r.expect("[server] Welcome to Chat Server !").await;
    let l = r.line().await;
    r.nick = l
        .strip_prefix("[server] You are ")
        .and_then(|l| l.strip_suffix(", in #lobby. Type HELP for the commands."))
        .expect("greeting")
        .to_string();
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn when_most_readers_fall_behind_the_sender_waits_and_nobody_is_dropped() {
    let mut cfg = Config::default();
    // The queues' bound is the default 1 MiB (soft mark 128 KiB): the
    // sender writes four times as much.
    cfg.flood.enabled = false;
    let s = Server::start(cfg).await;
    let alice = named(&s, &["alice"]).await.remove(0);
    let mut readers = Vec::new();
    for _ in 0..4 {
        // In #lobby once greeted: the chat must not start before.
        readers.push(small_buffer_member(&s).await);
    }
    // Every reader is behind at once (none reads for half a second), which
    // one client cannot cause: the server must stop reading the sender
    // rather than drop them all for their queues.
    let pad = "p".repeat(1000);
    let total = 4000usize;
    let mut chat = Vec::new();
    for k in 0..total {
        chat.extend_from_slice(format!("MSG {k} {pad}\n").as_bytes());
    }
    chat.extend_from_slice(b"MSG done\n");
    let (mut alice_r, mut alice_w) = alice.split();
    let sender = tokio::spawn(async move {
        alice_w.write_all(&chat).await.expect("write");
        alice_w
    });
    // (The kernel's buffers may take all of it from the sender: the server
    // must leave it there rather than queue it.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tasks = Vec::new();
    for mut r in readers {
        let pad = pad.clone();
        tasks.push(tokio::spawn(async move {
            let mut next = 0usize;
            loop {
                let l = r.line().await;
                assert!(!l.ends_with("is disconnected"), "{l}");
                if l.starts_with("[server] ") {
                    continue;
                }
                if l == "[alice] done" {
                    return (next, r);
                }
                assert_eq!(l, format!("[alice] {next} {pad}"), "lost or out of order");
                next += 1;
            }
        }));
    }
    let mut keep = Vec::new();
    for t in tasks {
        let (n, r) = tokio::time::timeout(TIMEOUT * 2, t)
            .await
            .expect("reader stalled")
            .expect("reader failed");
        assert_eq!(n, total);
        keep.push(r);
    }
    let _w = sender.await.expect("sender");
    // Alice hears of nobody leaving.
    tokio::time::timeout(Duration::from_millis(300), async {
        let mut l = String::new();
        while alice_r.read_line(&mut l).await.unwrap_or(0) > 0 {
            assert!(!l.contains("disconnected"), "{l}");
            l.clear();
        }
    })
    .await
    .ok();
    drop(keep);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_that_never_read_are_dropped_even_while_the_sender_is_paused() {
    let mut cfg = Config::default();
    // Soft mark 32 KiB: a few reads of chat past it the queues overflow.
    cfg.limits.send_queue = 256 * 1024;
    cfg.flood.enabled = false;
    let s = Server::start(cfg).await;
    let mut alice = named(&s, &["alice"]).await.remove(0);
    let mut readers = Vec::new();
    for _ in 0..4 {
        let r = small_buffer_member(&s).await;
        alice
            .expect(&format!("[server] {} is connected", r.nick))
            .await;
        readers.push(r);
    }
    // The four never read again: the server is congested and pauses alice,
    // but only for a second at a time, so their queues still fill up and
    // they are dropped instead of holding her back for good.
    let pad = "p".repeat(1000);
    let mut chat = Vec::new();
    for k in 0..8000 {
        chat.extend_from_slice(format!("MSG {k} {pad}\n").as_bytes());
    }
    let t0 = std::time::Instant::now();
    let (mut alice_r, mut alice_w) = alice.split();
    let sender = tokio::spawn(async move {
        // The server closes nothing of alice's: the write completes once
        // the readers are gone and their lines are no longer queued.
        alice_w.write_all(&chat).await.expect("write");
        alice_w
    });
    let mut gone = HashSet::new();
    while gone.len() < readers.len() {
        let mut l = String::new();
        let n = tokio::time::timeout(TIMEOUT * 4, alice_r.read_line(&mut l))
            .await
            .expect("the readers were never dropped")
            .expect("read");
        assert!(n > 0, "alice disconnected");
        if let Some(nick) = l
            .trim_end()
            .strip_prefix("[server] ")
            .and_then(|r| r.strip_suffix(" is disconnected"))
        {
            assert!(readers.iter().any(|r| r.nick == nick), "{l}");
            gone.insert(nick.to_string());
        }
    }
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "dropped after {:?}: the sender was never paused",
        t0.elapsed()
    );
    let _w = tokio::time::timeout(TIMEOUT * 2, sender)
        .await
        .expect("the sender stayed paused")
        .expect("sender");
    drop(readers);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_reader_is_dropped_others_lose_nothing() {
    let mut cfg = Config::default();
    cfg.limits.send_queue = 64 * 1024;
    // The sender needs thousands of lines to fill the queues: that is a flood
    // by the default limits, which are tested on their own.
    cfg.flood.enabled = false;
    let s = Server::start(cfg).await;
    let mut c = named(&s, &["alice", "bob", "carol"]).await;

    // The slow client shrinks its receive buffer so the kernel absorbs little.
    let slow = small_buffer_client(&s);
    // Its nick, from the hub's point of view: learned from the announcement.
    let l = c[0].line().await;
    let slow_nick = l
        .strip_prefix("[server] ")
        .and_then(|r| r.strip_suffix(" is connected"))
        .expect("connect line")
        .to_string();
    c[1].expect(&l).await;
    c[2].expect(&l).await;

    let mut alice = c.remove(0);
    let gone = Arc::new(AtomicBool::new(false));
    // How many messages each reader has seen: the sender keeps at most a
    // window of them in flight, so only the client that never reads falls
    // behind (the readers must not be dropped for merely being slower than
    // a sender writing as fast as loopback allows).
    let progress: Vec<Arc<AtomicUsize>> = (0..c.len()).map(|_| Arc::default()).collect();
    let pad = "p".repeat(1000);
    let mut readers = Vec::new();
    for (cl, seen) in c.drain(..).zip(progress.iter().cloned()) {
        let gone = gone.clone();
        let slow_nick = slow_nick.clone();
        let pad = pad.clone();
        readers.push(tokio::spawn(async move {
            let mut cl = cl;
            let mut next = 0usize;
            let mut saw_drop = false;
            loop {
                let l = cl.line().await;
                if l == format!("[server] {slow_nick} is disconnected") {
                    assert!(!saw_drop);
                    saw_drop = true;
                    gone.store(true, Ordering::SeqCst);
                    continue;
                }
                if l == "[alice] done" {
                    return (next, saw_drop, cl);
                }
                assert_eq!(l, format!("[alice] {next} {pad}"), "{} lost order", cl.nick);
                next += 1;
                seen.store(next, Ordering::SeqCst);
            }
        }));
    }
    let mut sent = 0usize;
    let mut batch = Vec::new();
    let deadline = tokio::time::Instant::now() + TIMEOUT * 2;
    while !gone.load(Ordering::SeqCst) {
        assert!(sent < 20_000, "the slow client was never dropped");
        let slowest = || progress.iter().map(|p| p.load(Ordering::SeqCst)).min();
        while sent - slowest().unwrap_or(sent) > 24 {
            assert!(tokio::time::Instant::now() < deadline, "readers stalled");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        batch.clear();
        for _ in 0..8 {
            batch.extend_from_slice(format!("MSG {sent} {pad}\n").as_bytes());
            sent += 1;
        }
        alice.send_bytes(&batch).await;
        tokio::task::yield_now().await;
    }
    alice.send("MSG done").await;
    let mut keep = Vec::new();
    for r in readers {
        let (n, saw_drop, cl) = tokio::time::timeout(TIMEOUT * 2, r)
            .await
            .expect("reader stalled")
            .expect("reader failed");
        assert_eq!(n, sent, "{} missed messages", cl.nick);
        assert!(saw_drop);
        keep.push(cl);
    }
    for cl in keep.iter_mut() {
        cl.expect_quiet().await;
    }
    alice
        .expect(&format!("[server] {slow_nick} is disconnected"))
        .await;
    alice.expect_quiet().await;
    // The slow client reads what the kernel still held for it: an unbroken
    // prefix of the chat, maybe the reason, then EOF.
    let mut slow = LineClient::from_stream(slow);
    slow.nick = slow_nick.clone();
    slow.expect("[server] Welcome to Chat Server !").await;
    slow.expect(&format!(
        "[server] You are {slow_nick}, in #lobby. Type HELP for the commands."
    ))
    .await;
    let mut rest = Vec::new();
    tokio::time::timeout(
        TIMEOUT,
        tokio::io::AsyncReadExt::read_to_end(&mut slow.reader(), &mut rest),
    )
    .await
    .expect("slow client: no EOF")
    .expect("slow client: read error");
    let rest = String::from_utf8(rest).expect("UTF-8");
    let mut lines: Vec<&str> = rest.lines().collect();
    if lines.last() == Some(&"[server] Disconnected: SendQ exceeded") {
        lines.pop();
    }
    assert!(
        lines.len() < sent,
        "the slow client cannot have got everything"
    );
    for (k, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("[alice] {k} {pad}"));
    }
    drop((slow, c, keep, alice));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hundreds_of_clients_same_order_for_everyone() {
    const N: usize = 300;
    const PER: usize = 3;
    let s = Server::start_default().await;
    let mut clients = Vec::with_capacity(N);
    for _ in 0..N {
        clients.push(LineClient::connect(s.line).await);
    }
    let nicks: Vec<String> = clients.iter().map(|c| c.nick.clone()).collect();
    let index: Arc<HashMap<String, usize>> = Arc::new(
        nicks
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect(),
    );
    let start = Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = Vec::with_capacity(N);
    for (i, c) in clients.into_iter().enumerate() {
        let nicks = nicks.clone();
        let index = index.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            let nick = c.nick.clone();
            let (mut r, mut w) = c.split();
            let next_line = async |r: &mut tokio::io::BufReader<_>| {
                let mut l = String::new();
                let n = tokio::time::timeout(TIMEOUT * 2, r.read_line(&mut l))
                    .await
                    .expect("stalled")
                    .expect("read");
                assert!(n > 0, "EOF");
                l.pop();
                l
            };
            // Everyone connected after this client is announced, in order.
            for later in &nicks[i + 1..] {
                let l = next_line(&mut r).await;
                assert_eq!(l, format!("[server] {later} is connected"), "{nick}");
            }
            start.wait().await;
            let mut out = Vec::new();
            for k in 0..PER {
                out.extend_from_slice(format!("MSG {nick} says {k}\n").as_bytes());
            }
            w.write_all(&out).await.expect("write");
            let mut seen = Vec::with_capacity((N - 1) * PER);
            while seen.len() < (N - 1) * PER {
                let l = next_line(&mut r).await;
                let (from, rest) = l
                    .strip_prefix('[')
                    .and_then(|l| l.split_once("] "))
                    .unwrap_or_else(|| panic!("{nick}: unexpected {l:?}"));
                let k: usize = rest
                    .strip_prefix(&format!("{from} says "))
                    .and_then(|k| k.parse().ok())
                    .unwrap_or_else(|| panic!("{nick}: unexpected {l:?}"));
                let f = *index.get(from).expect("known sender");
                assert_ne!(f, i, "{nick} received its own message");
                seen.push((f, k));
            }
            (i, seen, r, w)
        }));
    }
    let mut all = Vec::with_capacity(N);
    for t in tasks {
        all.push(t.await.expect("client task"));
    }
    // Each client got every other client's messages exactly once, each
    // sender's messages in sending order.
    for (i, seen, _, _) in &all {
        let set: HashSet<_> = seen.iter().collect();
        assert_eq!(set.len(), seen.len(), "client {i} got duplicates");
        let mut last = vec![None; N];
        for &(f, k) in seen {
            assert_eq!(
                last[f].map_or(0, |x: usize| x + 1),
                k,
                "client {i}: sender order"
            );
            last[f] = Some(k);
        }
    }
    // One total order explains every client's view: the "comes right after"
    // relation over all views has no cycle (topological sort succeeds).
    let mut succ: HashMap<(usize, usize), HashSet<(usize, usize)>> = HashMap::new();
    let mut indeg: HashMap<(usize, usize), usize> = HashMap::new();
    for f in 0..N {
        for k in 0..PER {
            indeg.insert((f, k), 0);
        }
    }
    for (_, seen, _, _) in &all {
        for w in seen.windows(2) {
            if succ.entry(w[0]).or_default().insert(w[1]) {
                *indeg.get_mut(&w[1]).expect("node") += 1;
            }
        }
    }
    let mut ready: Vec<_> = indeg
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(n, _)| *n)
        .collect();
    let mut sorted = 0;
    while let Some(n) = ready.pop() {
        sorted += 1;
        for m in succ.get(&n).into_iter().flatten() {
            let d = indeg.get_mut(m).expect("node");
            *d -= 1;
            if *d == 0 {
                ready.push(*m);
            }
        }
    }
    assert_eq!(
        sorted,
        N * PER,
        "clients saw the channel in different orders"
    );
    drop(all);
    s.stop().await;
}

// ---------------------------------------------------------------- shutdown

#[tokio::test(flavor = "multi_thread")]
async fn graceful_shutdown_tells_everyone_and_run_returns() {
    let s = Server::start_default().await;
    let mut c = named(&s, &["alice", "bob", "carol"]).await;
    c[2].send("JOIN #x").await;
    c[2].expect_all(&[
        "[server] You joined #x",
        "[server] No topic is set for #x",
        "[server] Members of #x: carol",
    ])
    .await;
    c[0].expect("[server] carol left #lobby").await;
    c[1].expect("[server] carol left #lobby").await;
    // One client with a half-sent line.
    c[1].send_bytes(b"MSG unfinis").await;
    s.token.cancel();
    for cl in c.iter_mut() {
        cl.expect("[server] Server is shutting down").await;
        cl.expect_eof().await;
    }
    tokio::time::timeout(Duration::from_secs(10), s.handle)
        .await
        .expect("run did not return")
        .expect("run panicked")
        .expect("run failed");
}

/// A client that stopped reading, with megabytes queued for it, cannot hold
/// the server up: the flush at shutdown is bounded (3 s, then a 2 s linger).
#[tokio::test(flavor = "multi_thread")]
async fn shutdown_is_bounded_when_a_client_does_not_read() {
    let mut cfg = Config::default();
    cfg.limits.send_queue = 64 << 20;
    // Thousands of lines to fill the socket buffers: a flood, on purpose.
    cfg.flood.enabled = false;
    let s = Server::start(cfg).await;
    let mut c = named(&s, &["talker", "stuck"]).await;
    let line = format!("MSG {}\n", "x".repeat(1900));
    let burst = line.repeat(100);
    for _ in 0..60 {
        c[0].send_bytes(burst.as_bytes()).await;
    }
    // Far more than loopback buffers hold is now queued for `stuck`.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t0 = std::time::Instant::now();
    s.token.cancel();
    tokio::time::timeout(Duration::from_secs(15), s.handle)
        .await
        .expect("run did not return")
        .expect("run panicked")
        .expect("run failed");
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(8), "shutdown took {took:?}");
    assert!(
        took >= Duration::from_secs(2),
        "stuck was not flushing ({took:?})"
    );
}

#[test]
fn binary_serves_and_exits_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_bavard"))
        .args(["serve", "--line", "127.0.0.1:0", "--irc", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bavard");
    // Kill the child whatever happens below.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stderr = child.stderr.take().expect("stderr");
    let mut child = Reap(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let port = loop {
        let l = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("no listening line in the log");
        if let Some(rest) = l.split("dialect=line addr=").nth(1) {
            let addr: std::net::SocketAddr = rest
                .split_whitespace()
                .next()
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("cannot parse {l:?}"));
            break addr.port();
        }
    };
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut r = BufReader::new(sock.try_clone().expect("clone"));
    let mut l = String::new();
    r.read_line(&mut l).expect("welcome");
    assert_eq!(l, "[server] Welcome to Chat Server !\n");
    l.clear();
    r.read_line(&mut l).expect("greeting");
    assert!(l.starts_with("[server] You are guest"), "{l:?}");
    sock.write_all(b"WHO\n").expect("write");
    l.clear();
    r.read_line(&mut l).expect("who");
    assert!(l.starts_with("[server] guest"), "{l:?}");

    let pid = child.0.id() as libc::pid_t;
    // SAFETY: plain syscall on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    l.clear();
    r.read_line(&mut l).expect("shutdown line");
    assert_eq!(l, "[server] Server is shutting down\n");
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).expect("EOF");
    assert!(rest.is_empty());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.0.try_wait().expect("wait") {
            break st;
        }
        assert!(std::time::Instant::now() < deadline, "server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
}
