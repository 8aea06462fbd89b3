//! Every IRC-side limit at its edge: the last value accepted, the first refused
//! or cut, and the timeouts end to end.

mod support;

use std::time::{Duration, Instant};

use bavard::config::Config;
use support::irc::IrcClient;
use support::server::Server;

fn cfg(f: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::default();
    f(&mut c);
    c
}

async fn joined(addr: std::net::SocketAddr, nick: &str, chan: &str) -> IrcClient {
    let mut c = IrcClient::registered(addr, nick).await;
    c.send(&format!("JOIN {chan}")).await;
    c.expect("366").await;
    c
}

#[tokio::test]
async fn max_targets() {
    let s = Server::start(cfg(|c| c.limits.max_targets = 2)).await;
    let mut a = IrcClient::registered(s.irc, "a").await;
    let mut b = IrcClient::registered(s.irc, "b").await;
    let mut c = IrcClient::registered(s.irc, "c").await;
    // Two targets: both delivered.
    a.send("PRIVMSG b,c :two").await;
    assert_eq!(b.expect("PRIVMSG").await.params[1], "two");
    assert_eq!(c.expect("PRIVMSG").await.params[1], "two");
    // Three: 407 naming the first one too many, and nothing delivered.
    a.send("PRIVMSG b,c,a :three").await;
    let e = a.expect("407").await;
    assert_eq!(e.params[1], "a");
    assert!(b.sync().await.is_empty());
    assert!(c.sync().await.is_empty());
}

#[tokio::test]
async fn monitor_list_limit() {
    let s = Server::start(cfg(|c| c.limits.monitor = 2)).await;
    let mut a = IrcClient::registered(s.irc, "a").await;
    a.send("MONITOR + x,y").await;
    let replies = a.sync().await;
    assert!(replies.iter().all(|m| m.command != "734"), "{replies:?}");
    a.send("MONITOR + z").await;
    let e = a.expect("734").await;
    assert_eq!(e.params[1..3], ["2", "z"]);
    // Re-adding a nick already watched is not a new entry.
    a.send("MONITOR + x").await;
    assert!(a.sync().await.iter().all(|m| m.command != "734"));
}

#[tokio::test]
async fn topic_kick_and_away_lengths_cut_at_character_boundaries() {
    let s = Server::start(cfg(|c| {
        c.limits.topic_length = 5;
        c.limits.kick_length = 5;
        c.limits.away_length = 5;
    }))
    .await;
    let mut a = joined(s.irc, "a", "#t").await;
    let mut b = joined(s.irc, "b", "#t").await;
    a.expect("JOIN").await;
    // Exactly at the limit: kept whole.
    a.send("TOPIC #t :12345").await;
    assert_eq!(b.expect("TOPIC").await.params[1], "12345");
    // Over it: cut to 5 bytes, never inside a character ("é" is 2 bytes).
    a.send("TOPIC #t :ééé").await;
    assert_eq!(b.expect("TOPIC").await.params[1], "éé");
    a.send("TOPIC #t :123456").await;
    assert_eq!(a.expect("TOPIC").await.params[1], "12345");
    assert_eq!(b.expect("TOPIC").await.params[1], "12345");

    b.send("AWAY :abcdefgh").await;
    b.expect("306").await;
    a.send("WHOIS b").await;
    let away = a.expect("301").await;
    assert_eq!(away.params[2], "abcde");

    a.send("KICK #t b :123456789").await;
    assert_eq!(b.expect("KICK").await.params[2], "12345");
}

#[tokio::test]
async fn channel_name_length() {
    let s = Server::start(cfg(|c| c.limits.channel_length = 10)).await;
    let mut a = IrcClient::registered(s.irc, "a").await;
    a.send("JOIN #123456789").await;
    assert_eq!(a.expect("JOIN").await.params[0], "#123456789");
    a.send("JOIN #1234567890").await;
    let e = a.expect("403").await;
    assert_eq!(e.params[1], "#1234567890");
}

#[tokio::test]
async fn registration_timeout() {
    let s = Server::start(cfg(|c| c.limits.registration_timeout = 1)).await;
    let mut c = IrcClient::connect(s.irc).await;
    c.send("NICK slow").await;
    let t0 = Instant::now();
    let l = c.line().await.expect("an ERROR line");
    assert_eq!(l, "ERROR :Closing Link: 127.0.0.1 (Registration timed out)");
    assert!(
        t0.elapsed() >= Duration::from_millis(800),
        "{:?}",
        t0.elapsed()
    );
    assert!(c.line().await.is_none(), "closed after the reason");
    // The nick it held is free again.
    let _d = IrcClient::registered(s.irc, "slow").await;
}

#[tokio::test]
async fn ping_timeout_and_keepalive() {
    let s = Server::start(cfg(|c| {
        c.limits.ping_interval = 1;
        c.limits.ping_timeout = 1;
    }))
    .await;
    let mut alive = IrcClient::registered(s.irc, "alive").await;
    let mut dead = IrcClient::registered(s.irc, "dead").await;
    // A client that answers stays, PING after PING.
    for _ in 0..2 {
        let p = alive.expect("PING").await;
        alive.send(&format!("PONG :{}", p.params[0])).await;
    }
    // One that does not is dropped with the reason, about interval + timeout later.
    dead.expect("PING").await;
    let l = dead.line().await.expect("an ERROR line");
    assert_eq!(
        l,
        "ERROR :Closing Link: 127.0.0.1 (Ping timeout: 2 seconds)"
    );
    assert!(dead.line().await.is_none());
    alive.send("WHOIS dead").await;
    alive.expect("401").await;
}
