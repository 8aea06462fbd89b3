//! A database that cannot grow (`storage.max_size`, as a full disk) costs
//! the chat nothing: messages still reach everyone, history keeps what it
//! had room for, and the server keeps serving.

mod support;

use support::irc::{IrcClient, join};
use support::server::Server;

#[tokio::test]
async fn chat_goes_on_when_the_database_is_full() {
    let mut cfg = bavard::config::Config::default();
    cfg.storage.max_size = 128 * 1024;
    cfg.flood.enabled = false;
    let server = Server::start(cfg).await;
    let caps = ["draft/chathistory", "batch", "server-time", "message-tags"];
    let mut alice = IrcClient::registered(server.irc, "alice").await;
    let mut bob = IrcClient::registered_with_caps(server.irc, "bob", &caps).await;
    join(&mut alice, "#c").await;
    join(&mut bob, "#c").await;
    alice.sync().await;
    let text = "y".repeat(300);
    let n = 2_000;
    for round in 0..20 {
        for i in 0..n / 20 {
            alice
                .send(&format!("PRIVMSG #c :{} {text}", round * (n / 20) + i))
                .await;
        }
        // History reads commit what is queued: many batches, the later
        // ones past the limit.
        bob.send("CHATHISTORY LATEST #c * 1").await;
    }
    let mut got = 0;
    while got < n {
        let m = bob.msg().await;
        if m.command == "PRIVMSG" && m.tag("batch").is_none() {
            got += 1;
        }
    }
    bob.sync().await;
    bob.send("CHATHISTORY LATEST #c * 1000").await;
    let reply = bob.collect_until("BATCH").await;
    let reply: Vec<_> = reply
        .into_iter()
        .chain(bob.collect_until("BATCH").await)
        .collect();
    let kept = reply.iter().filter(|m| m.command == "PRIVMSG").count();
    assert!(kept > 0 && kept < n, "history kept {kept} of {n}");
    // Still serving.
    let mut carol = IrcClient::registered(server.irc, "carol").await;
    join(&mut carol, "#c").await;
    alice.send("PRIVMSG #c :still here").await;
    carol.until(|m| m.command == "PRIVMSG").await;
}
