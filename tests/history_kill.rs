//! History survives `kill -9`: the `bavard` binary on its default history
//! settings gets messages over TCP in both dialects, is killed a second
//! later, and, started again on the same database, gives them back in
//! order through `CHATHISTORY` and the line dialect's `HISTORY`.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::irc::{IrcClient, join};
use support::line::LineClient;

/// A free port on 127.0.0.1 (bound, then released for the server).
fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// The binary on `dir/bavard.toml` (no `[history]`: the defaults), killed
/// with SIGKILL when dropped.
struct Running(Child);

impl Running {
    fn start(dir: &Path, irc: SocketAddr, line: SocketAddr) -> Running {
        let cfg = dir.join("bavard.toml");
        let text = format!(
            "[listeners]\nirc = \"{irc}\"\nline = \"{line}\"\nhttp = \"off\"\n\
             [flood]\nenabled = false\n\
             [storage]\npath = \"{}\"\n",
            dir.join("bavard.db").display()
        );
        std::fs::write(&cfg, text).expect("write the config");
        let child = Command::new(env!("CARGO_BIN_EXE_bavard"))
            .args(["serve", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn bavard");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(irc).is_err() {
            assert!(Instant::now() < deadline, "the server never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Running(child)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGKILL: no clean shutdown, no checkpoint.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn messages_sent_a_second_before_kill_9_are_in_history() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (irc, line) = (free_addr(), free_addr());
    let caps = ["draft/chathistory", "batch", "server-time", "message-tags"];
    {
        let _server = Running::start(dir.path(), irc, line);
        let mut carol = LineClient::connect(line).await;
        carol.nick("carol").await;
        for i in 1..=150 {
            carol.send(&format!("MSG line {i}")).await;
        }
        let mut alice = IrcClient::registered(irc, "alice").await;
        join(&mut alice, "#kept").await;
        for i in 1..=300 {
            alice.send(&format!("PRIVMSG #kept :message {i}")).await;
        }
        alice.sync().await;
        tokio::time::sleep(Duration::from_millis(1_000)).await;
    }
    let _server = Running::start(dir.path(), irc, line);
    let mut dave = LineClient::connect(line).await;
    dave.nick("dave").await;
    dave.send("HISTORY 100").await;
    let past: Vec<String> = dave
        .until("[server] End of the history of #lobby")
        .await
        .into_iter()
        .filter(|l| l.starts_with('['))
        .filter_map(|l| l.split_once("] [carol] ").map(|(_, t)| t.to_string()))
        .collect();
    let want: Vec<String> = (51..=150).map(|i| format!("line {i}")).collect();
    assert_eq!(past, want, "the line dialect's HISTORY");
    let mut bob = IrcClient::registered_with_caps(irc, "bob", &caps).await;
    join(&mut bob, "#kept").await;
    bob.send("CHATHISTORY LATEST #kept * 1000").await;
    let got = bob.collect_until("BATCH").await;
    let end = bob.collect_until("BATCH").await;
    let texts: Vec<String> = got
        .iter()
        .chain(&end)
        .filter(|m| m.command == "PRIVMSG")
        .map(|m| m.params[1].to_string())
        .collect();
    let want: Vec<String> = (1..=300).map(|i| format!("message {i}")).collect();
    assert_eq!(texts, want);
}
