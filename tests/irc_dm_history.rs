//! What an account keeps over real TCP: private conversations in
//! `draft/chathistory`, kept under each side logged in to an account, never
//! for a nick alone, listed by `CHATHISTORY TARGETS`; and read markers
//! (`draft/read-marker`) shared by the account's connections.

mod support;

use support::irc::{IrcClient as Client, Msg, ask};
use support::server::{Server, with_history};

const CAPS: &[&str] = &["draft/chathistory", "batch", "message-tags", "server-time"];

/// A client registered as `nick` and logged in to the account of that name,
/// which it registers.
async fn member(s: &Server, nick: &str) -> Client {
    let mut c = Client::registered_with_caps(s.irc, nick, CAPS).await;
    let r = ask(&mut c, &format!("REGISTER * * pw-{nick}")).await;
    assert!(r.iter().any(|m| m.command == "REGISTER"), "{r:?}");
    c
}

/// The texts of a `chathistory` batch.
fn texts(r: &[Msg]) -> Vec<String> {
    assert_eq!(r.first().map(|m| &*m.command), Some("BATCH"), "{r:?}");
    r.iter()
        .filter(|m| m.command == "PRIVMSG" || m.command == "NOTICE")
        .map(|m| m.params[1].to_string())
        .collect()
}

async fn latest(c: &mut Client, target: &str) -> Vec<String> {
    texts(&ask(c, &format!("CHATHISTORY LATEST {target} * 10")).await)
}

#[tokio::test]
async fn private_history_belongs_to_the_logged_in_sides() {
    let s = Server::start(with_history()).await;
    let mut a = member(&s, "alice").await;
    let mut b = member(&s, "bob").await;
    let mut c = Client::registered_with_caps(s.irc, "carol", CAPS).await;
    // Apart by a few milliseconds, so that TARGETS has an order.
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(3));
    ask(&mut a, "PRIVMSG bob :hi").await;
    ask(&mut b, "PRIVMSG alice :yo").await;
    pause().await;
    ask(&mut a, "NOTICE carol :c1").await;
    ask(&mut c, "PRIVMSG alice :c2").await;
    pause().await;
    ask(&mut a, "PRIVMSG alice :note to self").await;
    assert_eq!(latest(&mut a, "bob").await, ["hi", "yo"]);
    assert_eq!(latest(&mut b, "ALICE").await, ["hi", "yo"]);
    assert_eq!(latest(&mut a, "carol").await, ["c1", "c2"]);
    assert_eq!(latest(&mut a, "alice").await, ["note to self"]);
    // A nick without an account reads nothing, even its own conversations.
    assert!(latest(&mut c, "alice").await.is_empty());
    // Messages keep the target they were sent to.
    let r = ask(&mut b, "CHATHISTORY LATEST alice * 10").await;
    let to: Vec<&str> = r
        .iter()
        .filter(|m| m.command == "PRIVMSG")
        .map(|m| &*m.params[0])
        .collect();
    assert_eq!(to, ["bob", "alice"]);
    // TARGETS lists the partners, by their latest message.
    let q = "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2999-01-01T00:00:00.000Z 10";
    let r = ask(&mut a, q).await;
    let names: Vec<&str> = r
        .iter()
        .filter(|m| m.command == "CHATHISTORY")
        .map(|m| &*m.params[1])
        .collect();
    assert_eq!(names, ["bob", "carol", "alice"]);
}

#[tokio::test]
async fn read_markers_are_the_accounts() {
    let s = Server::start(with_history()).await;
    let mut a = member(&s, "alice").await;
    ask(&mut a, "CAP REQ draft/read-marker").await;
    let mut other = Client::logged_in(s.irc, "alice2", "alice").await;
    let ts = "timestamp=2022-11-11T11:11:11.111Z";
    ask(&mut a, &format!("MARKREAD #test {ts}")).await;
    // The other connection is told, and reads the same marker.
    let m = other.expect("MARKREAD").await;
    assert_eq!(m.params[..], ["#test", ts]);
    let r = ask(&mut other, "MARKREAD #test").await;
    assert_eq!(r[0].params[..], ["#test", ts]);
    // They outlive the connections.
    drop((a, other));
    let mut again = Client::logged_in(s.irc, "alys", "alice").await;
    let r = ask(&mut again, "MARKREAD #test").await;
    assert_eq!(r[0].params[..], ["#test", ts]);
}
