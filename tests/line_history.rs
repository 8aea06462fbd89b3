//! The line dialect's `HISTORY [count]` over real TCP: the last messages of
//! the user's channel, each after its time; the default count and the
//! `history.line_history_max` cap at their edges; bad counts; an empty
//! history; history off; across a restart.

mod support;

use support::irc::{IrcClient, ask};
use support::line::{LineClient, named};
use support::server::{Server, with_history};

/// `[YYYY-MM-DD HH:MM:SS] rest` → `rest`, checking the time's form.
fn past(line: &str) -> &str {
    let b = line.as_bytes();
    assert!(
        b.len() > 22 && b[0] == b'[' && b[11] == b' ' && b[20] == b']' && b[21] == b' ',
        "not a past line: {line:?}"
    );
    let digits = [1..5, 6..8, 9..11, 12..14, 15..17, 18..20];
    for r in digits {
        assert!(line[r].bytes().all(|c| c.is_ascii_digit()), "{line:?}");
    }
    &line[22..]
}

/// Sends HISTORY with `args` and reads its answer: the past lines between
/// its two `[server]` lines (the first is returned apart).
async fn history(c: &mut LineClient, args: &str, channel: &str) -> (String, Vec<String>) {
    c.send(&format!("HISTORY{args}")).await;
    let head = c.line().await;
    let lines = c
        .until(&format!("[server] End of the history of {channel}"))
        .await;
    let lines = lines.iter().map(|l| past(l).to_string()).collect();
    (head, lines)
}

#[tokio::test]
async fn history_shows_the_last_messages_of_the_channel() {
    let mut cfg = with_history();
    cfg.history.line_history_max = 25;
    let s = Server::start(cfg).await;
    let mut c = named(&s, &["alice", "bob"]).await;
    for i in 1..=30 {
        c[0].send(&format!("MSG m{i}")).await;
        c[1].expect(&format!("[alice] m{i}")).await;
    }
    // An IRC user's messages are the channel's too, and a NOTICE.
    let mut irc = IrcClient::registered(s.irc, "carol").await;
    ask(&mut irc, "JOIN #lobby").await;
    ask(&mut irc, "NOTICE #lobby :from irc").await;
    c[1].until("[carol] from irc").await;
    let (head, lines) = history(&mut c[1], " 3", "#lobby").await;
    assert_eq!(head, "[server] Last 3 messages of #lobby (times in UTC):");
    assert_eq!(lines, ["[alice] m29", "[alice] m30", "[carol] from irc"]);
    // Without a count: the last 20.
    let (head, lines) = history(&mut c[1], "", "#lobby").await;
    assert_eq!(head, "[server] Last 20 messages of #lobby (times in UTC):");
    assert_eq!(lines[0], "[alice] m12");
    // The cap, at its edge and past it: 25, never more.
    let (_, lines) = history(&mut c[1], " 25", "#lobby").await;
    assert_eq!((lines.len(), &*lines[0]), (25, "[alice] m7"));
    let (head, lines) = history(&mut c[1], " 26", "#lobby").await;
    assert_eq!(head, "[server] Last 25 messages of #lobby (times in UTC):");
    assert_eq!(lines.len(), 25);
    let (_, lines) = history(&mut c[1], " 99999999999999999999999", "#lobby").await;
    assert_eq!(lines.len(), 25);
    // One.
    let (head, lines) = history(&mut c[1], " 1", "#lobby").await;
    assert_eq!(head, "[server] Last 1 message of #lobby (times in UTC):");
    assert_eq!(lines, ["[carol] from irc"]);
    // Joins, nick changes and topics are not messages.
    c[1].send("TOPIC a topic").await;
    c[1].until("[server] bob changed the topic of #lobby to: a topic")
        .await;
    c[0].send("NICK alicia").await;
    c[0].until("[server] You are now known as alicia").await;
    c[1].until("[server] alice is now known as alicia").await;
    let (_, lines) = history(&mut c[1], " 2", "#lobby").await;
    assert_eq!(lines, ["[alice] m30", "[carol] from irc"]);
    c[1].expect_quiet().await;
}

#[tokio::test]
async fn history_refuses_bad_counts_and_says_when_there_is_nothing() {
    let s = Server::start(with_history()).await;
    let mut c = LineClient::connect(s.line).await;
    let usage = "[server] Usage: HISTORY [count], count a whole number from 1 to 100";
    for bad in ["0", "-1", "x", "1.5", "+3", "٣"] {
        c.send(&format!("HISTORY {bad}")).await;
        c.expect(usage).await;
    }
    c.send("HISTORY 1 2").await;
    c.expect("[server] Usage: HISTORY [count]").await;
    c.send("history").await;
    c.expect("[server] No messages in the history of #lobby")
        .await;
    c.send("JOIN #new").await;
    let members = format!("[server] Members of #new: {}", c.nick);
    c.until(&members).await;
    c.send("HISTORY 5").await;
    c.expect("[server] No messages in the history of #new")
        .await;
    // HELP lists it.
    c.send("HELP").await;
    let help = c
        .until("[server]   HELP                    this list")
        .await;
    assert!(
        help.iter().any(|l| l.contains("HISTORY [count]")),
        "{help:?}"
    );
}

#[tokio::test]
async fn history_off_is_said() {
    let mut cfg = with_history();
    cfg.history.enabled = false;
    let s = Server::start(cfg).await;
    let mut c = LineClient::connect(s.line).await;
    c.send("MSG hello").await;
    c.send("HISTORY").await;
    c.expect("[server] History is not kept on this server")
        .await;
}

#[tokio::test]
async fn history_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = with_history();
    cfg.storage.path = dir.path().join("bavard.db");
    let s = Server::start_with_db(cfg.clone()).await;
    let mut c = named(&s, &["alice", "bob"]).await;
    c[0].send("MSG before the restart").await;
    c[1].expect("[alice] before the restart").await;
    drop(c);
    s.stop().await;
    let s = Server::start_with_db(cfg).await;
    let mut c = LineClient::connect(s.line).await;
    let (_, lines) = history(&mut c, "", "#lobby").await;
    assert_eq!(lines, ["[alice] before the restart"]);
}
