//! bavard clustered on NATS JetStream, with real processes on loopback:
//! three `nats-server`s routed together and two `bavard` nodes (the
//! binary, so that a node can be killed with SIGKILL), IRC and line clients
//! on different nodes.
//!
//! Skipped when `nats-server` is not installed, except under `CI=true`
//! (`.ci/run` installs it), where that fails.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bavard_nats::harness::{self, NatsCluster};
use support::irc::{IrcClient, join};
use support::line::LineClient;

/// The lease of the tests that kill a node or cut one off: its users quit
/// within it (and a check interval).
const LEASE_MS: u64 = 2000;
/// The lease of the others: long enough (twice JetStream's longest leader
/// election) that losing a NATS server fences nobody, as by default.
const LONG_LEASE_MS: u64 = 20_000;

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Held by each test: one cluster of five processes at a time on a small
/// machine, or leases lapse under the load of the others.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Three NATS servers (and this file's turn), or `None` when the test
/// must be skipped.
async fn nats() -> Option<(NatsCluster, tokio::sync::MutexGuard<'static, ()>)> {
    if !harness::available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "nats-server is needed under CI"
        );
        eprintln!("nats-server not installed: cluster test skipped");
        return None;
    }
    let turn = ONE_AT_A_TIME.lock().await;
    Some((
        NatsCluster::start(3).await.expect("start nats-server"),
        turn,
    ))
}

/// One `bavard` node, killed with SIGKILL when dropped.
struct Node {
    child: Child,
    irc: SocketAddr,
    line: SocketAddr,
}

impl Node {
    fn start(dir: &Path, name: &str, nats: &NatsCluster) -> Node {
        Node::with_lease(dir, name, nats, LONG_LEASE_MS)
    }

    fn with_lease(dir: &Path, name: &str, nats: &NatsCluster, lease_ms: u64) -> Node {
        let (irc, line) = (free_addr(), free_addr());
        let urls: Vec<String> = nats.urls().iter().map(|u| format!("{u:?}")).collect();
        let cfg = dir.join(format!("{name}.toml"));
        let text = format!(
            "[listeners]\nirc = \"{irc}\"\nline = \"{line}\"\nhttp = \"off\"\n\
             line_tls = \"off\"\nirc_tls = \"off\"\n\
             [flood]\nenabled = false\n\
             [storage]\npath = \"{}\"\n\
             [cluster]\nnats = [{}]\nnode = \"{name}\"\nlease_ms = {lease_ms}\n",
            dir.join(format!("{name}.db")).display(),
            urls.join(", ")
        );
        std::fs::write(&cfg, text).expect("write the config");
        let child = Command::new(env!("CARGO_BIN_EXE_bavard"))
            .args(["serve", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn bavard");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(irc).is_err() {
            assert!(Instant::now() < deadline, "node {name} never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Node { child, irc, line }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts node `name` on NATS servers that were just restarted and
/// registers `nick` on it, as a supervisor would: the node listens at once
/// and serves once JetStream has its leaders again (seconds); if it cannot
/// renew its lease meanwhile it fences itself and exits, and is started
/// again.
async fn serving_after_restart(
    dir: &Path,
    name: &str,
    nats: &NatsCluster,
    nick: &str,
) -> (Node, IrcClient) {
    for _ in 0..5 {
        let node = Node::with_lease(dir, name, nats, LEASE_MS);
        let mut c = IrcClient::connect(node.irc).await;
        c.send(&format!("NICK {nick}\r\nUSER {nick} 0 * :R")).await;
        loop {
            match c.line_within(Duration::from_secs(60)).await {
                Some(l) if l.contains(" 376 ") || l.contains(" 422 ") => {
                    c.nick = nick.to_string();
                    return (node, c);
                }
                Some(_) => {}
                None => break,
            }
        }
    }
    panic!("node {name} never served after the restart");
}

/// The PRIVMSG texts `c` receives until it has `n` of them.
async fn texts(c: &mut IrcClient, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < n {
        let m = c.expect("PRIVMSG").await;
        got.push(m.params[1].to_string());
    }
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_across_nodes_in_both_dialects() {
    let Some((nats, _turn)) = nats().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let n1 = Node::start(dir.path(), "n1", &nats);
    let n2 = Node::start(dir.path(), "n2", &nats);

    let mut alice = IrcClient::registered(n1.irc, "alice").await;
    join(&mut alice, "#lobby").await;
    // A line user on the other node lands in #lobby: alice sees it come.
    let mut bob = LineClient::connect(n2.line).await;
    alice.expect("JOIN").await;
    bob.nick("bob").await;
    let nick = alice.expect("NICK").await;
    assert_eq!(nick.params[0], "bob");

    alice.send("PRIVMSG #lobby :hello from n1").await;
    bob.expect("[alice] hello from n1").await;
    bob.send("MSG hello from n2").await;
    let m = alice.expect("PRIVMSG").await;
    assert_eq!(m.params, ["#lobby", "hello from n2"]);
    assert!(m.source.as_deref().unwrap().starts_with("bob!"));

    // WHOIS, NAMES and a private message across nodes.
    let mut carol = IrcClient::registered(n2.irc, "carol").await;
    alice.send("WHOIS carol").await;
    let who = alice.expect("311").await;
    assert_eq!(who.params[1], "carol");
    alice.send("NAMES #lobby").await;
    let names = alice.expect("353").await;
    assert!(names.params[3].contains("bob"), "{names:?}");
    alice.send("PRIVMSG carol :psst").await;
    let pm = carol.expect("PRIVMSG").await;
    assert_eq!(pm.params, ["carol", "psst"]);

    // A nick held on one node is taken on the other.
    let mut dup = IrcClient::connect(n1.irc).await;
    dup.send("NICK carol").await;
    dup.send("USER c 0 * :C").await;
    dup.expect("433").await;

    // A topic and modes set on one node show on the other.
    join(&mut carol, "#ops").await;
    alice.send("JOIN #ops").await;
    alice.expect("366").await;
    carol.send("TOPIC #ops :cluster topic").await;
    alice.until(|m| m.command == "TOPIC").await;
    carol.send("MODE #ops +v alice").await;
    alice.until(|m| m.command == "MODE").await;
    alice.send("NAMES #ops").await;
    let names = alice.expect("353").await;
    assert!(names.params[3].contains("@carol") && names.params[3].contains("+alice"));

    // Metadata set on one node reads the same on the other.
    support::irc::ask(&mut carol, "METADATA * SET avatar :https://c.example/c.png").await;
    support::irc::ask(&mut carol, "METADATA #ops SET url :https://ops.example").await;
    for (query, want) in [
        ("METADATA carol GET avatar", "https://c.example/c.png"),
        ("METADATA #ops GET url", "https://ops.example"),
    ] {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = support::irc::ask(&mut alice, query).await;
            if r.iter()
                .any(|m| m.command == "761" && m.params.last().map(|v| &**v) == Some(want))
            {
                break;
            }
            assert!(Instant::now() < deadline, "{query}: {r:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // A QUIT gets its last words at once; the other node sees it go.
    carol.send("QUIT :bye").await;
    carol.expect("ERROR").await;
    let q = alice.until(|m| m.command == "QUIT").await;
    assert!(q.source.as_deref().unwrap().starts_with("carol!"));
    assert_eq!(q.params[0], "Quit: bye");
    drop((n1, n2));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_nick_claimed_on_two_nodes_goes_to_exactly_one() {
    let Some((nats, _turn)) = nats().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let n1 = Node::start(dir.path(), "n1", &nats);
    let n2 = Node::start(dir.path(), "n2", &nats);
    for round in 0..50 {
        let nick = format!("race{round}");
        let (mut a, mut b) = (
            IrcClient::connect(n1.irc).await,
            IrcClient::connect(n2.irc).await,
        );
        for c in [&mut a, &mut b] {
            c.send(&format!("NICK {nick}\r\nUSER u 0 * :R")).await;
        }
        let outcome = |m: &support::irc::Msg| m.command == "001" || m.command == "433";
        let (ra, rb) = (a.until(outcome).await, b.until(outcome).await);
        let won = [&ra, &rb].iter().filter(|m| m.command == "001").count();
        assert_eq!(won, 1, "round {round}: {ra:?} / {rb:?}");
    }
    // What a nick change costs clustered: the claim (a JetStream create),
    // the release of the old nick, and the log's round trip.
    let mut c = IrcClient::registered(n2.irc, "timer").await;
    let mut took = Vec::new();
    for i in 0..100 {
        let t = Instant::now();
        c.send(&format!("NICK timer{i}")).await;
        c.expect("NICK").await;
        took.push(t.elapsed());
    }
    took.sort();
    eprintln!(
        "NICK through the registry and the log: p50 {:?}, p99 {:?}",
        took[49], took[98]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_member_sees_one_order_of_a_channel() {
    let Some((nats, _turn)) = nats().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let n1 = Node::start(dir.path(), "n1", &nats);
    let n2 = Node::start(dir.path(), "n2", &nats);
    let caps = ["echo-message"];
    let mut a = IrcClient::registered_with_caps(n1.irc, "a", &caps).await;
    let mut b = IrcClient::registered_with_caps(n2.irc, "b", &caps).await;
    let mut watch1 = IrcClient::registered(n1.irc, "w1").await;
    let mut watch2 = IrcClient::registered(n2.irc, "w2").await;
    for c in [&mut a, &mut b, &mut watch1, &mut watch2] {
        join(c, "#order").await;
    }
    // Everyone has seen everyone join before the race starts.
    for c in [&mut a, &mut b, &mut watch1, &mut watch2] {
        c.send("PING sync").await;
        c.expect("PONG").await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for c in [&mut a, &mut b, &mut watch1, &mut watch2] {
        c.sync().await;
    }
    const N: usize = 100;
    for i in 0..N {
        a.send(&format!("PRIVMSG #order :a{i}")).await;
        b.send(&format!("PRIVMSG #order :b{i}")).await;
    }
    let seen = [
        texts(&mut a, 2 * N).await,
        texts(&mut b, 2 * N).await,
        texts(&mut watch1, 2 * N).await,
        texts(&mut watch2, 2 * N).await,
    ];
    for s in &seen[1..] {
        assert_eq!(s, &seen[0]);
    }
    drop((n1, n2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_node_costs_only_its_users() {
    let Some((nats, _turn)) = nats().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let n1 = Node::with_lease(dir.path(), "n1", &nats, LEASE_MS);
    let mut n2 = Node::with_lease(dir.path(), "n2", &nats, LEASE_MS);
    let mut alice = IrcClient::registered(n1.irc, "alice").await;
    join(&mut alice, "#c").await;
    let mut carol = IrcClient::registered(n2.irc, "carol").await;
    join(&mut carol, "#c").await;
    alice.expect("JOIN").await;
    let killed = Instant::now();
    n2.kill();
    let quit = alice.expect("QUIT").await;
    let took = killed.elapsed();
    assert!(quit.source.as_deref().unwrap().starts_with("carol!"));
    assert!(
        took < Duration::from_millis(LEASE_MS * 3),
        "carol quit after {took:?}"
    );
    eprintln!("a killed node's users quit after {took:?} (lease {LEASE_MS} ms)");
    // Her nick is free again, and nothing else happened to alice.
    let _carol2 = IrcClient::registered(n1.irc, "carol").await;
    alice.send("PING end").await;
    let rest = alice.collect_until("PONG").await;
    assert!(
        rest.iter().all(|m| m.command == "PONG"),
        "alice saw more: {rest:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nats_server_lost_pauses_at_most() {
    let Some((mut nats, _turn)) = nats().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let n1 = Node::start(dir.path(), "n1", &nats);
    let n2 = Node::start(dir.path(), "n2", &nats);
    let mut a = IrcClient::registered(n1.irc, "a").await;
    let mut b = IrcClient::registered(n2.irc, "b").await;
    join(&mut a, "#p").await;
    join(&mut b, "#p").await;
    a.expect("JOIN").await;
    nats.kill(0);
    let start = Instant::now();
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let t = Instant::now();
        b.send(&format!("PRIVMSG #p :m{i}")).await;
        // JetStream elects new leaders in 4 to 9 s (nats-server 2.9).
        let line = a.line_within(Duration::from_secs(30)).await.unwrap();
        assert!(line.ends_with(&format!("PRIVMSG #p :m{i}")), "{i}: {line}");
        worst = worst.max(t.elapsed());
    }
    eprintln!(
        "one nats-server of three killed: worst message delay {worst:?} over {:?}",
        start.elapsed()
    );
    drop((n1, n2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_cut_off_from_nats_drops_its_clients() {
    let Some((mut nats, _turn)) = nats().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut n1 = Node::with_lease(dir.path(), "n1", &nats, LEASE_MS);
    let mut a = IrcClient::registered(n1.irc, "a").await;
    let mut l = LineClient::connect(n1.line).await;
    for i in 0..3 {
        nats.kill(i);
    }
    let cut = Instant::now();
    let err = a.expect("ERROR").await;
    assert!(err.params[0].contains("lost the network"), "{err:?}");
    a.eof().await;
    l.until("[server] This server lost the network: reconnect to another server")
        .await;
    l.expect_eof().await;
    let took = cut.elapsed();
    assert!(took < Duration::from_millis(LEASE_MS * 3), "{took:?}");
    // It exits non-zero, for its supervisor to start it again.
    let status = n1.child.wait().unwrap();
    assert!(!status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nats_servers_lost_fence_every_node_and_recovery_agrees() {
    let Some((mut nats, _turn)) = nats().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let n1 = Node::with_lease(dir.path(), "n1", &nats, LEASE_MS);
    let n2 = Node::with_lease(dir.path(), "n2", &nats, LEASE_MS);
    let mut a = IrcClient::registered(n1.irc, "a").await;
    let mut b = IrcClient::registered(n2.irc, "b").await;
    join(&mut a, "#r").await;
    join(&mut b, "#r").await;
    // No quorum: writes fail, both nodes fence and tell their clients.
    nats.kill(0);
    nats.kill(1);
    for c in [&mut a, &mut b] {
        let err = c.until(|m| m.command == "ERROR").await;
        assert!(err.params[0].contains("lost the network"), "{err:?}");
    }
    drop((n1, n2));
    nats.restart(0).await.unwrap();
    nats.restart(1).await.unwrap();
    // Started again (as a supervisor would), the nodes agree.
    let (_n1, mut a) = serving_after_restart(dir.path(), "n1", &nats, "a").await;
    let (_n2, mut b) = serving_after_restart(dir.path(), "n2", &nats, "b").await;
    join(&mut a, "#r").await;
    join(&mut b, "#r").await;
    a.expect("JOIN").await;
    let mut names = Vec::new();
    for c in [&mut a, &mut b] {
        c.send("NAMES #r").await;
        let n = c.expect("353").await;
        let mut v: Vec<String> = n.params[3].split(' ').map(str::to_string).collect();
        v.sort();
        names.push(v);
    }
    assert_eq!(names[0], names[1]);
    assert_eq!(names[0], ["@a", "b"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_registered_on_one_node_logs_in_on_another() {
    let Some((nats, _turn)) = nats().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let n1 = Node::start(dir.path(), "n1", &nats);
    let n2 = Node::start(dir.path(), "n2", &nats);
    support::irc::create_account(n1.irc, "dora", "pw-dora").await;
    // SASL PLAIN on the other node, then a channel message both nodes keep
    // in their history.
    let mut d = IrcClient::logged_in(n2.irc, "dora", "dora").await;
    join(&mut d, "#h").await;
    let mut e = IrcClient::registered_with_caps(
        n1.irc,
        "eve",
        &["draft/chathistory", "batch", "server-time", "message-tags"],
    )
    .await;
    join(&mut e, "#h").await;
    d.send("PRIVMSG #h :kept everywhere").await;
    e.expect("PRIVMSG").await;
    e.send("CHATHISTORY LATEST #h * 10").await;
    let batch = e.collect_until("BATCH").await;
    let lines = e.collect_until("BATCH").await;
    assert!(
        lines
            .iter()
            .any(|m| m.command == "PRIVMSG" && m.params[1] == "kept everywhere"),
        "{batch:?} {lines:?}"
    );
}

/// The texts of the messages `CHATHISTORY LATEST <target>` plays to `c`.
async fn history_of(c: &mut IrcClient, target: &str) -> Vec<String> {
    c.send(&format!("CHATHISTORY LATEST {target} * 50")).await;
    c.collect_until("BATCH").await;
    c.collect_until("BATCH")
        .await
        .into_iter()
        .filter(|m| m.command == "PRIVMSG")
        .map(|m| m.params[1].to_string())
        .collect()
}

/// Logs in to `account` on `addr` as `nick`, with what CHATHISTORY needs,
/// in `#h`.
async fn reader(addr: SocketAddr, nick: &str, account: &str) -> IrcClient {
    let mut c = IrcClient::logged_in(addr, nick, account).await;
    c.send("CAP REQ :draft/chathistory batch server-time message-tags")
        .await;
    let ack = c.expect("CAP").await;
    assert_eq!(ack.params[1], "ACK", "{ack:?}");
    join(&mut c, "#h").await;
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn every_node_has_the_whole_history_and_read_markers() {
    let Some((nats, _turn)) = nats().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let n1 = Node::start(dir.path(), "n1", &nats);
    for who in ["dora", "fred"] {
        support::irc::create_account(n1.irc, who, &format!("pw-{who}")).await;
    }
    let mut d = IrcClient::logged_in(n1.irc, "dora", "dora").await;
    let mut f = IrcClient::logged_in(n1.irc, "fred", "fred").await;
    join(&mut d, "#h").await;
    for text in ["one", "two"] {
        d.send(&format!("PRIVMSG #h :{text}")).await;
    }
    d.send("PRIVMSG fred :before n2").await;
    f.expect("PRIVMSG").await;
    // A node that starts late has what was said before it.
    let mut n2 = Node::start(dir.path(), "n2", &nats);
    let mut r = reader(n2.irc, "reader", "dora").await;
    assert_eq!(history_of(&mut r, "#h").await, ["one", "two"]);
    assert_eq!(history_of(&mut r, "fred").await, ["before n2"]);
    // A private message between two users of n1 is kept on n2 too.
    f.send("PRIVMSG dora :while both run").await;
    d.expect("PRIVMSG").await;
    let want = ["before n2", "while both run"];
    let deadline = Instant::now() + Duration::from_secs(5);
    while history_of(&mut r, "fred").await != want {
        assert!(Instant::now() < deadline, "n2 never kept it");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A node that was away gets what it missed, once.
    drop(r);
    n2.kill();
    d.send("PRIVMSG #h :three").await;
    let _n2 = Node::start(dir.path(), "n2", &nats);
    let mut r = reader(_n2.irc, "reader", "dora").await;
    assert_eq!(history_of(&mut r, "#h").await, ["one", "two", "three"]);
    assert_eq!(history_of(&mut r, "fred").await, want);
    // And what comes next is kept once, not again with what it got.
    d.send("PRIVMSG #h :four").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = history_of(&mut r, "#h").await;
        if got == ["one", "two", "three", "four"] {
            break;
        }
        assert!(Instant::now() < deadline, "{got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The account's read marker moves on both nodes.
    d.send("MARKREAD #h timestamp=2026-01-01T00:00:00.000Z")
        .await;
    let m = r.until(|m| m.command == "MARKREAD").await;
    assert_eq!(m.params[1], "timestamp=2026-01-01T00:00:00.000Z", "{m:?}");
    drop(n1);
}
