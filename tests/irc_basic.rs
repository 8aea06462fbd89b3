//! Registration, channels and messages over the irc dialect, and the bridge
//! to the line dialect.

mod support;

use support::irc::IrcClient;
use support::server::Server;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::test]
async fn register_join_and_talk() {
    let s = Server::start_default().await;
    let mut a = IrcClient::registered(s.irc, "alice").await;
    let mut b = IrcClient::registered(s.irc, "bob").await;
    a.send("JOIN #t").await;
    let j = a.expect("JOIN").await;
    assert_eq!(j.source.as_deref(), Some("alice!~alice@127.0.0.1"));
    let names = a.expect("353").await;
    assert_eq!(names.params[3], "@alice");
    a.expect("366").await;
    b.send("JOIN #t").await;
    b.expect("366").await;
    let j = a.expect("JOIN").await;
    assert!(j.source.unwrap().starts_with("bob!"));
    b.send("PRIVMSG #t :hello there").await;
    let m = a.expect("PRIVMSG").await;
    assert_eq!(m.params, ["#t", "hello there"]);
    assert!(b.sync().await.is_empty(), "no echo without echo-message");
}

#[tokio::test]
async fn line_and_irc_users_share_a_channel() {
    let s = Server::start_default().await;
    let mut i = IrcClient::registered(s.irc, "ircy").await;
    i.send("JOIN #lobby").await;
    i.expect("366").await;
    let stream = tokio::net::TcpStream::connect(s.line).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r).lines();
    let welcome = r.next_line().await.unwrap().unwrap();
    assert_eq!(welcome, "[server] Welcome to Chat Server !");
    let j = i.expect("JOIN").await;
    let guest = j.source.unwrap();
    assert!(guest.contains("!line@"), "{guest}");
    w.write_all(b"MSG hi from nc\n").await.unwrap();
    let m = i.expect("PRIVMSG").await;
    assert_eq!(m.params, ["#lobby", "hi from nc"]);
    i.send("PRIVMSG #lobby :hi from irc").await;
    loop {
        let l = r.next_line().await.unwrap().unwrap();
        if l == "[ircy] hi from irc" {
            break;
        }
    }
    // A 2000-character line message reaches IRC split at character boundaries.
    let long = "é".repeat(2000);
    w.write_all(format!("MSG {long}\n").as_bytes())
        .await
        .unwrap();
    let mut got = String::new();
    while got.chars().count() < 2000 {
        let m = i.expect("PRIVMSG").await;
        assert!(m.to_string().len() <= 510);
        got.push_str(&m.params[1]);
    }
    assert_eq!(got, long);
}

#[tokio::test]
async fn unknown_and_unregistered_commands() {
    let s = Server::start_default().await;
    let mut c = IrcClient::connect(s.irc).await;
    c.send("PRIVMSG x :y").await;
    assert_eq!(c.msg().await.command, "451");
    c.send("NICK a").await;
    c.send("USER a 0 * :A").await;
    c.expect("001").await;
    c.send("FOOBAR").await;
    let m = c.expect("421").await;
    assert_eq!(m.params[1], "FOOBAR");
    c.send("JOIN").await;
    let m = c.expect("461").await;
    assert_eq!(m.params[1], "JOIN");
}
