//! IRCv3 drafts over real TCP: `draft/channel-rename`, `draft/read-marker`
//! and `draft/message-redaction`, their errors and edges, and what line
//! users see of them.

mod ircsupport;

use ircsupport::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Sends `line` and returns everything it produced (up to a PING round trip;
/// both go out in one write, so Nagle's algorithm does not hold the second).
async fn ask(c: &mut Client, line: &str) -> Vec<Msg> {
    c.send_raw(format!("{line}\r\nPING :sync\r\n").as_bytes())
        .await;
    let mut out = Vec::new();
    loop {
        let m = c.msg().await;
        if m.command == "PONG" && m.params.last().is_some_and(|p| p == "sync") {
            return out;
        }
        out.push(m);
    }
}

fn cmds(ms: &[Msg]) -> Vec<&str> {
    ms.iter().map(|m| &*m.command).collect()
}

async fn join(c: &mut Client, chan: &str) {
    ask(c, &format!("JOIN {chan}")).await;
}

/// A line-dialect client: its lines, and its writer.
struct Line {
    r: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    w: OwnedWriteHalf,
}

impl Line {
    async fn connect(s: &Server) -> Line {
        let stream = tokio::net::TcpStream::connect(s.line).await.unwrap();
        let (r, w) = stream.into_split();
        Line {
            r: BufReader::new(r).lines(),
            w,
        }
    }

    async fn send(&mut self, line: &str) {
        self.w
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }

    /// Reads lines until `want`; returns the ones before it.
    async fn until(&mut self, want: &str) -> Vec<String> {
        let mut before = Vec::new();
        loop {
            let l = tokio::time::timeout(TIMEOUT, self.r.next_line())
                .await
                .expect("timed out waiting for a line")
                .unwrap()
                .expect("unexpected EOF");
            if l == want {
                return before;
            }
            before.push(l);
        }
    }
}

// -------------------------------------------------------------- channel-rename

const RENAME: &str = "draft/channel-rename";

#[tokio::test]
async fn rename_keeps_the_channel_and_tells_each_member_its_way() {
    let s = start_default().await;
    let mut alice = Client::registered_with_caps(s.irc, "alice", &[RENAME]).await;
    join(&mut alice, "#old").await;
    ask(&mut alice, "TOPIC #old :the topic").await;
    ask(&mut alice, "MODE #old +sk sesame").await;
    let mut carol = Client::registered_with_caps(s.irc, "carol", &[RENAME]).await;
    let mut bob = Client::registered_with_caps(s.irc, "bob", &["multi-prefix"]).await;
    for c in [&mut carol, &mut bob] {
        join(c, "#old sesame").await;
    }
    ask(&mut alice, "MODE #old +v bob").await;
    let mut line = Line::connect(&s).await;
    line.send("JOIN #old sesame").await;
    line.until("[server] You joined #old").await;
    for c in [&mut alice, &mut carol, &mut bob] {
        c.sync().await;
    }

    let r = ask(&mut alice, "RENAME #old #New :tidy up").await;
    assert_eq!(cmds(&r), ["RENAME"]);
    assert_eq!(r[0].params, ["#old", "#New", "tidy up"]);
    assert!(r[0].source.as_deref().unwrap().starts_with("alice!"));
    let got = carol.sync().await;
    assert_eq!(cmds(&got), ["RENAME"]);
    assert_eq!(got[0].params, ["#old", "#New", "tidy up"]);
    // Without the capability: PART, JOIN, topic and names of the new name.
    let got = bob.sync().await;
    assert_eq!(cmds(&got), ["PART", "JOIN", "332", "333", "353", "366"]);
    assert!(got[0].source.as_deref().unwrap().starts_with("bob!"));
    assert_eq!(got[0].params, ["#old", "tidy up"]);
    assert_eq!(got[1].params, ["#New"]);
    assert_eq!(got[2].params, ["bob", "#New", "the topic"]);
    assert_eq!(got[4].params[..3], ["bob", "@", "#New"]);
    let names: Vec<&str> = got[4].params[3].split(' ').collect();
    assert_eq!(names[..3], ["@alice", "carol", "+bob"]);
    assert_eq!(got[5].params[1], "#New");
    line.until("[server] alice renamed #old to #New (tidy up)")
        .await;

    // Everything stayed: modes, topic, key, members; the line user talks there.
    let r = ask(&mut bob, "MODE #new").await;
    assert_eq!(r[0].params[1..], ["#New", "+nstk", "sesame"]);
    line.send("MSG still here").await;
    let m = alice.expect("PRIVMSG").await;
    assert_eq!(m.params, ["#New", "still here"]);
    bob.sync().await;
    assert_eq!(cmds(&ask(&mut bob, "PRIVMSG #old :hello?").await), ["403"]);
    // The old name is free: a newcomer founds it.
    let mut dave = Client::registered(s.irc, "dave").await;
    let r = ask(&mut dave, "JOIN #old").await;
    let names = r.iter().find(|m| m.command == "353").unwrap();
    assert_eq!(names.params[3], "@dave");
}

#[tokio::test]
async fn rename_refusals_and_case_changes() {
    let s = start_default().await;
    let mut op = Client::registered_with_caps(s.irc, "op", &[RENAME]).await;
    let mut plain = Client::registered(s.irc, "plain").await;
    join(&mut op, "#a").await;
    join(&mut op, "#b").await;
    join(&mut plain, "#a").await;
    op.sync().await;
    let r = ask(&mut plain, "RENAME #a #c").await;
    assert_eq!(cmds(&r), ["482"]);
    let r = ask(&mut plain, "RENAME #b #c").await;
    assert_eq!(cmds(&r), ["442"]);
    let r = ask(&mut plain, "RENAME #none #c").await;
    assert_eq!(cmds(&r), ["403"]);
    let r = ask(&mut plain, "RENAME #a").await;
    assert_eq!(cmds(&r), ["461"]);
    let r = ask(&mut op, "RENAME #a #B :taken").await;
    assert_eq!(cmds(&r), ["FAIL"]);
    assert_eq!(
        r[0].params[..4],
        ["RENAME", "CHANNEL_NAME_IN_USE", "#a", "#B"]
    );
    let long = format!("#{}", "x".repeat(50));
    for bad in ["nohash", "#a,b", &long] {
        let r = ask(&mut op, &format!("RENAME #a {bad}")).await;
        assert_eq!(
            r[0].params[..4],
            ["RENAME", "CANNOT_RENAME", "#a", bad],
            "{bad}"
        );
    }
    // The default channel keeps its name, whoever asks.
    join(&mut plain, "#lobby").await;
    let r = ask(&mut plain, "RENAME #lobby #hall").await;
    assert_eq!(
        r[0].params[..4],
        ["RENAME", "CANNOT_RENAME", "#lobby", "#hall"]
    );
    plain.sync().await;
    // Only the case changes: shown to clients with the capability alone.
    let r = ask(&mut op, "RENAME #a #A").await;
    assert_eq!(r[0].params, ["#a", "#A", ""]);
    assert!(plain.sync().await.is_empty());
    let r = ask(&mut plain, "NAMES #a").await;
    assert_eq!(r[0].params[2], "#A");
    // A renamer without the capability gets the fallback itself.
    let mut old = Client::registered(s.irc, "oldie").await;
    join(&mut old, "#x").await;
    let r = ask(&mut old, "RENAME #x #y").await;
    assert_eq!(cmds(&r), ["PART", "JOIN", "353", "366"]);
    assert_eq!(r[0].params, ["#x"]);
}
