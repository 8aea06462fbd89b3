//! `history.playback_on_join` over real TCP: the last messages of a channel
//! played to whoever joins it and cannot ask for history (IRC without
//! draft/chathistory: a batch with `batch`, plain lines without; line
//! users), never to a client with draft/chathistory, nor in a `+W`
//! channel; exactly the configured number; off at 0.

mod support;

use bavard::config::Config;
use support::irc::{IrcClient, Msg, ask, cmds};
use support::line::LineClient;
use support::server::{Server, with_history};

fn playing(n: usize) -> Config {
    let mut cfg = with_history();
    cfg.history.playback_on_join = n;
    cfg
}

/// alice, in `chan`, says m1..=m`n`; she stays.
async fn talk(s: &Server, chan: &str, n: usize) -> IrcClient {
    let mut a = IrcClient::registered(s.irc, "alice").await;
    ask(&mut a, &format!("JOIN {chan}")).await;
    for i in 1..=n {
        ask(&mut a, &format!("PRIVMSG {chan} :m{i}")).await;
    }
    a
}

/// What JOIN `chan` answers past the end of NAMES.
async fn after_names(c: &mut IrcClient, chan: &str) -> Vec<Msg> {
    let r = ask(c, &format!("JOIN {chan}")).await;
    let end = r.iter().position(|m| m.command == "366").unwrap();
    r[end + 1..].to_vec()
}

fn texts(r: &[Msg]) -> Vec<&str> {
    r.iter()
        .filter(|m| m.command == "PRIVMSG")
        .map(|m| &*m.params[1])
        .collect()
}

#[tokio::test]
async fn irc_clients_without_chathistory_are_played_the_last_messages() {
    let s = Server::start(playing(2)).await;
    let _a = talk(&s, "#p", 3).await;
    // With batch and server-time: a chathistory batch, each line timed.
    let caps = ["batch", "server-time", "message-tags"];
    let mut b = IrcClient::registered_with_caps(s.irc, "bob", &caps).await;
    let r = after_names(&mut b, "#p").await;
    assert_eq!(cmds(&r), ["BATCH", "PRIVMSG", "PRIVMSG", "BATCH"]);
    assert_eq!(r[0].params[1..], ["chathistory", "#p"]);
    assert_eq!(texts(&r), ["m2", "m3"]);
    assert!(
        r[1..3]
            .iter()
            .all(|m| m.tag("time").is_some() && m.tag("msgid").is_some())
    );
    // Without batch, with server-time: plain lines, timed.
    let mut c = IrcClient::registered_with_caps(s.irc, "carol", &["server-time"]).await;
    let r = after_names(&mut c, "#p").await;
    assert_eq!(cmds(&r), ["PRIVMSG", "PRIVMSG"]);
    assert!(r.iter().all(|m| m.tag("time").is_some()));
    assert_eq!(r[0].source.as_deref().map(|s| &s[..6]), Some("alice!"));
    // Without any capability: the plain lines.
    let mut d = IrcClient::registered(s.irc, "dave").await;
    let r = after_names(&mut d, "#p").await;
    assert_eq!(texts(&r), ["m2", "m3"]);
    assert!(r.iter().all(|m| m.tags.is_empty()), "{r:?}");
    // With draft/chathistory the client asks for what it wants: nothing.
    let caps = ["draft/chathistory", "batch"];
    let mut e = IrcClient::registered_with_caps(s.irc, "eve", &caps).await;
    assert!(after_names(&mut e, "#p").await.is_empty());
    // Joining several channels at once: each played after its own names.
    let _f = {
        let mut f = IrcClient::registered(s.irc, "frank").await;
        ask(&mut f, "JOIN #q").await;
        ask(&mut f, "PRIVMSG #q :in q").await;
        f
    };
    let mut g = IrcClient::registered(s.irc, "grace").await;
    let r = ask(&mut g, "JOIN #p,#q").await;
    let shown: Vec<(&str, &str)> = r
        .iter()
        .filter(|m| m.command == "PRIVMSG" || m.command == "366")
        .map(|m| (&*m.command, &*m.params[1]))
        .collect();
    assert_eq!(
        shown,
        [
            ("366", "#p"),
            ("PRIVMSG", "m2"),
            ("PRIVMSG", "m3"),
            ("366", "#q"),
            ("PRIVMSG", "in q")
        ]
    );
}

#[tokio::test]
async fn mode_w_turns_playback_off_in_a_channel() {
    let s = Server::start(playing(5)).await;
    let mut a = talk(&s, "#p", 3).await;
    let r = ask(&mut a, "MODE #p +W").await;
    assert_eq!(cmds(&r), ["MODE"]);
    assert_eq!(ask(&mut a, "MODE #p").await[0].params[2], "+Wnt");
    let mut b = IrcClient::registered(s.irc, "bob").await;
    assert!(after_names(&mut b, "#p").await.is_empty());
    let mut l = LineClient::connect(s.line).await;
    l.send("JOIN #p").await;
    l.until(&format!(
        "[server] Members of #p: alice bob {}",
        l.nick.clone()
    ))
    .await;
    l.expect_quiet().await;
    ask(&mut a, "MODE #p -W").await;
    let mut c = IrcClient::registered(s.irc, "carol").await;
    assert_eq!(texts(&after_names(&mut c, "#p").await), ["m1", "m2", "m3"]);
}

#[tokio::test]
async fn line_users_are_played_the_last_messages_on_joining() {
    let s = Server::start(playing(2)).await;
    let _a = talk(&s, "#lobby", 3).await;
    // On connecting, in the lobby.
    let mut l = LineClient::connect(s.line).await;
    l.expect("[server] Last 2 messages of #lobby (times in UTC):")
        .await;
    for want in ["[alice] m2", "[alice] m3"] {
        let got = l.line().await;
        assert!(got.starts_with("[20") && got.ends_with(want), "{got:?}");
    }
    l.expect("[server] End of the history of #lobby").await;
    // On joining another channel, after the greeting.
    let _b = talk2(&s).await;
    let me = l.nick.clone();
    l.send("JOIN #p").await;
    l.expect_all(&[
        "[server] You joined #p",
        "[server] No topic is set for #p",
        &format!("[server] Members of #p: bob {me}"),
        "[server] Last 1 message of #p (times in UTC):",
    ])
    .await;
    assert!(l.line().await.ends_with("] [bob] only one"));
    l.expect("[server] End of the history of #p").await;
    // An empty history says nothing.
    l.send("JOIN #empty").await;
    l.until(&format!("[server] Members of #empty: {me}")).await;
    l.expect_quiet().await;
}

/// bob says one message in #p and stays.
async fn talk2(s: &Server) -> IrcClient {
    let mut b = IrcClient::registered(s.irc, "bob").await;
    ask(&mut b, "JOIN #p").await;
    ask(&mut b, "PRIVMSG #p :only one").await;
    b
}

#[tokio::test]
async fn playback_is_off_at_zero() {
    let s = Server::start(playing(0)).await;
    let _a = talk(&s, "#lobby", 3).await;
    let mut b = IrcClient::registered(s.irc, "bob").await;
    assert!(after_names(&mut b, "#lobby").await.is_empty());
    let mut l = LineClient::connect(s.line).await;
    l.expect_quiet().await;
}
