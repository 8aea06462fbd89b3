//! Read markers (`draft/read-marker`) kept in the database over real TCP:
//! an account's markers survive a restart of the server on the same file,
//! on every connection of the account, on JOIN as on MARKREAD; a renamed
//! channel's marker follows it across the restart; a nick's markers are
//! never kept; a dropped account takes its markers with it.

mod support;

use bavard::config::Config;
use support::irc::{IrcClient as Client, ask};
use support::server::{Server, with_history};

/// The marker MARKREAD shows for `target`.
async fn marker(c: &mut Client, target: &str) -> String {
    let r = ask(c, &format!("MARKREAD {target}")).await;
    assert_eq!(r[0].command, "MARKREAD", "{r:?}");
    r[0].params[1].to_string()
}

fn config(dir: &tempfile::TempDir) -> Config {
    let mut cfg = with_history();
    cfg.storage.path = dir.path().join("bavard.db");
    cfg
}

const T1: &str = "timestamp=2022-11-11T11:11:11.111Z";
const T2: &str = "timestamp=2023-01-02T03:04:05.006Z";

#[tokio::test]
async fn an_accounts_markers_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with_db(config(&dir)).await;
    let mut a = Client::registered(s.irc, "alice").await;
    let r = ask(&mut a, "REGISTER * * pw-alice").await;
    assert!(r.iter().any(|m| m.command == "REGISTER"), "{r:?}");
    drop(a);
    let mut a = Client::logged_in(s.irc, "alice", "alice").await;
    ask(&mut a, "JOIN #test").await;
    ask(&mut a, &format!("MARKREAD #test {T1}")).await;
    ask(&mut a, &format!("MARKREAD bob {T2}")).await;
    // Earlier than what is kept: the marker stays.
    ask(&mut a, "MARKREAD bob timestamp=2020-01-01T00:00:00.000Z").await;
    ask(&mut a, "RENAME #test #renamed").await;
    // A user without an account: its marker is its nick's, not kept.
    let mut n = Client::registered_with_caps(s.irc, "nobody", &["draft/read-marker"]).await;
    ask(&mut n, &format!("MARKREAD #test {T1}")).await;
    drop((a, n));
    s.stop().await;

    let s = Server::start_with_db(config(&dir)).await;
    let mut a = Client::logged_in(s.irc, "alys", "alice").await;
    assert_eq!(marker(&mut a, "bob").await, T2);
    assert_eq!(marker(&mut a, "#RENAMED").await, T1, "followed the rename");
    assert_eq!(marker(&mut a, "#test").await, "*");
    // On JOIN, before the end of NAMES.
    let r = ask(&mut a, "JOIN #renamed").await;
    let m = r.iter().position(|m| m.command == "MARKREAD").unwrap();
    assert_eq!(r[m].params[..], ["#renamed", T1]);
    assert_eq!(r[m + 1].command, "366");
    // Every connection of the account shares them; moving one is kept too.
    let mut other = Client::logged_in(s.irc, "alice2", "alice").await;
    let t3 = "timestamp=2024-05-06T07:08:09.010Z";
    ask(&mut other, &format!("MARKREAD bob {t3}")).await;
    assert_eq!(a.expect("MARKREAD").await.params[..], ["bob", t3]);
    let mut n = Client::registered_with_caps(s.irc, "nobody", &["draft/read-marker"]).await;
    assert_eq!(marker(&mut n, "#test").await, "*");
    drop((a, other, n));
    s.stop().await;

    let s = Server::start_with_db(config(&dir)).await;
    let mut a = Client::logged_in(s.irc, "alice", "alice").await;
    assert_eq!(marker(&mut a, "bob").await, t3);
    // Dropped, the account's markers go: registered again, it has none.
    let r = ask(&mut a, "PRIVMSG NickServ :DROP alice pw-alice").await;
    assert!(r.iter().any(|m| m.command == "NOTICE"), "{r:?}");
    let r = ask(&mut a, "REGISTER * * pw-alice").await;
    assert!(r.iter().any(|m| m.command == "REGISTER"), "{r:?}");
    assert_eq!(marker(&mut a, "bob").await, "*");
    drop(a);
    s.stop().await;
    let s = Server::start_with_db(config(&dir)).await;
    let mut a = Client::logged_in(s.irc, "alice", "alice").await;
    assert_eq!(marker(&mut a, "bob").await, "*");
}
