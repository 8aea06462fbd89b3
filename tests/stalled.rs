//! Readers that fall behind and readers that stopped, at the edges of the
//! rule: a reader that reads is never dropped for a burst (the sender waits
//! for it), a reader that stopped holds nobody back and is dropped when its
//! queue fills or its write stays stuck; in both dialects.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bavard::config::{Config, Oper};
use support::irc::IrcClient;
use support::line::LineClient;
use support::server::Server;
use support::small_buffer_stream;

/// A configuration with an operator (exempt from flood control), a 256 KiB
/// send queue (soft mark 32 KiB) and the default stall grace (1 s).
fn config() -> Config {
    // argon2 is slow in debug builds: hash once for the whole file.
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = HASH.get_or_init(|| bavard::passwd::hash("s3cret").expect("hash"));
    let mut cfg = Config::default();
    cfg.opers.push(Oper {
        name: "admin".into(),
        password: hash.clone(),
    });
    cfg.limits.send_queue = 256 * 1024;
    cfg
}

/// Bytes of padding in a line-dialect chat line, and in an IRC one (whose
/// lines are 512 bytes at most).
const PAD: usize = 1000;
const IRC_PAD: usize = 400;

/// `count` chat lines, numbered.
fn flood(count: usize, irc: bool) -> Vec<u8> {
    let pad = "p".repeat(if irc { IRC_PAD } else { PAD });
    let mut out = Vec::new();
    for k in 0..count {
        let line = if irc {
            format!("PRIVMSG #lobby :{k} {pad}\r\n")
        } else {
            format!("MSG {k} {pad}\n")
        };
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// A line operator in #lobby.
async fn line_operator(s: &Server) -> LineClient {
    let mut c = LineClient::connect(s.line).await;
    c.send("OPER admin s3cret").await;
    // Others may come and go meanwhile.
    while c.line().await != "[server] You are now an operator" {}
    c
}

/// Reads a line reader's flood to its end (`count` lines from `from`, in
/// order); returns the nicks it saw disconnected meanwhile.
async fn read_line_flood(r: &mut LineClient, from: &str, count: usize) -> HashSet<String> {
    let pad = "p".repeat(PAD);
    let mut gone = HashSet::new();
    let mut next = 0;
    while next < count {
        let l = r.line_within(Duration::from_secs(30)).await;
        if let Some(nick) = l
            .strip_prefix("[server] ")
            .and_then(|l| l.strip_suffix(" is disconnected"))
        {
            gone.insert(nick.to_string());
            continue;
        }
        if l.starts_with("[server] ") {
            continue;
        }
        assert_eq!(l, format!("[{from}] {next} {pad}"), "lost or out of order");
        next += 1;
    }
    gone
}

/// Waits for a line reader to see every nick of `nicks` disconnected.
async fn line_sees_gone(r: &mut LineClient, mut gone: HashSet<String>, nicks: &[String]) {
    while nicks.iter().any(|n| !gone.contains(n)) {
        let l = r.line_within(Duration::from_secs(15)).await;
        if let Some(nick) = l
            .strip_prefix("[server] ")
            .and_then(|l| l.strip_suffix(" is disconnected"))
        {
            gone.insert(nick.to_string());
        }
    }
}

/// One flood of `count` lines to #lobby by an operator, with one reader and
/// `stalled` members that never read; returns the time until the reader had
/// every line, after checking every stalled member was dropped.
async fn line_flood_with_stalled(s: &Server, stalled: usize, count: usize) -> Duration {
    let mut reader = LineClient::connect(s.line).await;
    let mut quiet = Vec::new();
    for _ in 0..stalled {
        quiet.push(LineClient::small_buffer(s.line).await);
    }
    let sender = line_operator(s).await;
    let from = sender.nick.clone();
    let (_sr, mut sw) = sender.split();
    let data = flood(count, false);
    let t0 = Instant::now();
    let writer = tokio::spawn(async move {
        tokio::io::AsyncWriteExt::write_all(&mut sw, &data)
            .await
            .expect("write");
        sw
    });
    let gone = read_line_flood(&mut reader, &from, count).await;
    let took = t0.elapsed();
    let nicks: Vec<String> = quiet.iter().map(|c| c.nick.clone()).collect();
    line_sees_gone(&mut reader, gone, &nicks).await;
    let _w = writer.await.expect("writer");
    took
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_members_of_a_flooded_channel_cost_the_reader_little() {
    let s = Server::start(config()).await;
    let lines = 4000;
    let base = line_flood_with_stalled(&s, 0, lines).await;
    // The rule's promise: within three times the time without stalled
    // members, or that time and five seconds (the stall grace, 1 s, is
    // what the reader waits at most).
    let bound = (base * 3).max(base + Duration::from_secs(5));
    for stalled in [1, 5, 50] {
        let took = line_flood_with_stalled(&s, stalled, lines).await;
        assert!(
            took <= bound,
            "{stalled} stalled: {took:?}, without: {base:?}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_at_half_the_floods_rate_loses_nothing_and_stays() {
    let s = Server::start(config()).await;
    let mut slow = LineClient::small_buffer(s.line).await;
    let sender = line_operator(&s).await;
    let from = sender.nick.clone();
    let (mut sr, mut sw) = sender.split();
    let count = 3000;
    let data = flood(count, false);
    let t0 = Instant::now();
    let writer = tokio::spawn(async move {
        tokio::io::AsyncWriteExt::write_all(&mut sw, &data)
            .await
            .expect("write");
        sw
    });
    // A pause every 50 lines: about half the rate the flood arrives at, and
    // far behind its queue's soft mark within a few hundred lines.
    let pad = "p".repeat(PAD);
    let mut k = 0;
    while k < count {
        if k % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(8)).await;
        }
        let l = slow.line_within(Duration::from_secs(30)).await;
        if l.starts_with("[server] ") {
            assert!(!l.ends_with("disconnected"), "{l}");
            continue;
        }
        assert_eq!(l, format!("[{from}] {k} {pad}"), "lost or out of order");
        k += 1;
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(400),
        "the reader did not read slowly"
    );
    let _w = writer.await.expect("writer");
    // Nobody left: the sender heard of no disconnection.
    let mut l = String::new();
    let quiet = tokio::time::timeout(
        Duration::from_millis(300),
        tokio::io::AsyncBufReadExt::read_line(&mut sr, &mut l),
    )
    .await;
    assert!(quiet.is_err() || !l.contains("disconnected"), "{l}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_resumes_within_the_grace_is_waited_for() {
    let s = Server::start(config()).await;
    let mut paused = LineClient::small_buffer(s.line).await;
    let sender = line_operator(&s).await;
    let from = sender.nick.clone();
    let (_sr, mut sw) = sender.split();
    let count = 3000;
    let data = flood(count, false);
    let writer = tokio::spawn(async move {
        tokio::io::AsyncWriteExt::write_all(&mut sw, &data)
            .await
            .expect("write");
        sw
    });
    // Not a line read for 600 ms, under the 1 s grace: its queue passes its
    // mark, and the sender waits instead of burying it.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let gone = read_line_flood(&mut paused, &from, count).await;
    assert!(gone.is_empty(), "{gone:?}");
    let _w = writer.await.expect("writer");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn irc_stalled_members_are_dropped_and_the_reader_gets_everything() {
    let s = Server::start(config()).await;
    let mut reader = IrcClient::registered(s.irc, "reader").await;
    reader.send("JOIN #lobby").await;
    reader.expect("366").await;
    let mut quiet = Vec::new();
    for i in 0..5 {
        let mut c = IrcClient::from_stream(small_buffer_stream(s.irc))
            .register(&format!("quiet{i}"))
            .await;
        c.send("JOIN #lobby").await;
        c.expect("366").await;
        quiet.push(c);
    }
    let mut sender = IrcClient::registered(s.irc, "sender").await;
    sender.send("OPER admin s3cret").await;
    sender.expect("381").await;
    sender.send("JOIN #lobby").await;
    sender.expect("366").await;
    reader.sync().await;
    let count = 8000;
    // Written by a task of its own: the sender waits for the reader.
    let writer = tokio::spawn(async move {
        sender.send_raw(&flood(count, true)).await;
        sender
    });
    let pad = "p".repeat(IRC_PAD);
    let mut next = 0;
    let mut quits = HashSet::new();
    while next < count || quits.len() < quiet.len() {
        let m = reader.msg().await;
        match &*m.command {
            "PRIVMSG" => {
                assert_eq!(m.params[1], format!("{next} {pad}"), "lost or out of order");
                next += 1;
            }
            "QUIT" => {
                assert_eq!(m.params[0], "SendQ exceeded", "{m:?}");
                quits.insert(m.source.unwrap_or_default().to_string());
            }
            _ => {}
        }
    }
    assert!(quits.iter().all(|q| q.starts_with("quiet")), "{quits:?}");
    let _sender = writer.await.expect("writer");
    // Clients dropped for their queue, still connected and not reading, do
    // not hold the shutdown up (their stuck write is bounded).
    let t0 = Instant::now();
    s.stop().await;
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    drop(quiet);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_stuck_past_the_timeout_drops_its_client() {
    let mut cfg = config();
    // A queue too large to fill: only the write timeout can end it.
    cfg.limits.send_queue = 16 << 20;
    cfg.limits.stall_grace_ms = 100;
    cfg.limits.write_timeout = 1;
    let s = Server::start(cfg).await;
    let mut observer = IrcClient::registered(s.irc, "observer").await;
    observer.send("JOIN #lobby").await;
    observer.expect("366").await;
    let stuck = LineClient::small_buffer(s.line).await;
    observer.expect("JOIN").await;
    let sender = line_operator(&s).await;
    let (_sr, mut sw) = sender.split();
    let t0 = Instant::now();
    tokio::io::AsyncWriteExt::write_all(&mut sw, &flood(4000, false))
        .await
        .expect("write");
    let quit = observer
        .until(|m| {
            m.command == "QUIT"
                && m.source
                    .as_deref()
                    .is_some_and(|s| s.starts_with(&*stuck.nick))
        })
        .await;
    assert_eq!(quit.params[0], "Write timeout", "{quit:?}");
    assert!(t0.elapsed() >= Duration::from_secs(1), "{:?}", t0.elapsed());
    drop(stuck);
    s.stop().await;
}
